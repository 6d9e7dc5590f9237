/* Tests of the canonical record encoding (lib/codec.c, docs/encoding.md):
 * round trips (R-ST-3), a decoder that trusts nothing (R-IV-2), and
 * allocation failures while decoding (R-IV-3). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "internal.h"

static void fini(void)
{
    alloc_fail_reset();
}

TestSuite(codec, .fini = fini);

/* ---- record builders: `full` sets every optional field ---- */

static const uint8_t chain_a[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                                    31, 0xFF};

static void *make_user(int full)
{
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, full ? "alice@contoso.com \xC3\xA9" : "u1"), RISK_OK));
    if (full) {
        cr_assert(eq(int, risk_user_set_mfa_registered(u, 1, 1000), RISK_OK));
        cr_assert(eq(int, risk_user_set_deleted(u, 1), RISK_OK));
        cr_assert(eq(int, risk_user_set_password_state(u, 1, 1, 5000), RISK_OK));
        cr_assert(eq(int,
                     risk_user_set_risk(u, RISK_LEVEL_HIGH, RISK_STATE_CONFIRMED_COMPROMISED,
                                        RISK_DETAIL_AGED_OUT, RISK_TIME_MAX - 1, UINT64_MAX,
                                        0, 123456789, UINT32_MAX),
                     RISK_OK));
        cr_assert(eq(int, risk_user_set_version(u, 77), RISK_OK));
        cr_assert(eq(int, risk_user_set_chain_head(u, chain_a), RISK_OK));
    }
    return u;
}

static void *make_event(int full)
{
    risk_event *e = NULL;
    cr_assert(eq(int, risk_event_new(&e, "ev-1", "u1", "leakedCredentials", RISK_LEVEL_MEDIUM,
                                     1000),
                 RISK_OK));
    if (full) {
        cr_assert(eq(int, risk_event_set_timing(e, RISK_TIMING_OFFLINE), RISK_OK));
        cr_assert(eq(int, risk_event_set_ip(e, "2001:db8::1"), RISK_OK));
        cr_assert(eq(int, risk_event_set_location(e, "Z\xC3\xBCrich, CH"), RISK_OK));
        cr_assert(eq(int, risk_event_set_source(e, ""), RISK_OK));
        cr_assert(eq(int, risk_event_set_note(e, "line one\n\tline two"), RISK_OK));
        cr_assert(eq(int, risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_IGNORED, 2000,
                                                 "admin"),
                     RISK_OK));
    }
    return e;
}

static void *make_policy(int full)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "pol", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    if (full) {
        cr_assert(eq(int, risk_policy_set_mode(p, RISK_MODE_REPORT_ONLY), RISK_OK));
        const char *inc[] = {"zed", "amy", "bob", "\xE2\x82\xAC"};
        for (size_t i = 0; i < 4; i++)
            cr_assert(eq(int, risk_policy_include_add(p, inc[i]), RISK_OK));
        cr_assert(eq(int, risk_policy_exclude_add(p, "bob"), RISK_OK));
        cr_assert(eq(int, risk_policy_exclude_add(p, "break-glass"), RISK_OK));
    }
    return p;
}

static void *make_history(int full)
{
    risk_history *h = NULL;
    cr_assert(eq(int, risk_history_new(&h, full ? UINT64_MAX : 1, 0, "system",
                                       full ? RISK_HISTORY_POLICY_REMOVE : RISK_HISTORY_INGEST,
                                       full ? "u1" : NULL, full ? "ev-1" : NULL,
                                       full ? "pol" : NULL),
                 RISK_OK));
    if (full) {
        cr_assert(eq(int, risk_history_set_change(h, RISK_LEVEL_NONE, RISK_LEVEL_HIGH,
                                                  RISK_STATE_NONE, RISK_STATE_AT_RISK, 3,
                                                  "before\nafter"),
                     RISK_OK));
        cr_assert(eq(int, risk_history_set_chain(h, chain_a), RISK_OK));
    }
    return h;
}

/* ---- one table over the four kinds ---- */

static int enc_user(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_user_encode(b, c, l, r); }
static int enc_event(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_event_encode(b, c, l, r); }
static int enc_policy(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_policy_encode(b, c, l, r); }
static int enc_history(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_history_encode(b, c, l, r); }
static int dec_user(void **o, const uint8_t *b, size_t n) { return risk_user_decode((risk_user **)o, b, n); }
static int dec_event(void **o, const uint8_t *b, size_t n) { return risk_event_decode((risk_event **)o, b, n); }
static int dec_policy(void **o, const uint8_t *b, size_t n) { return risk_policy_decode((risk_policy **)o, b, n); }
static int dec_history(void **o, const uint8_t *b, size_t n) { return risk_history_decode((risk_history **)o, b, n); }
static void free_user(void *p) { risk_user_free(p); }
static void free_event(void *p) { risk_event_free(p); }
static void free_policy(void *p) { risk_policy_free(p); }
static void free_history(void *p) { risk_history_free(p); }

typedef struct kind {
    const char *name;
    void *(*make)(int full);
    int (*enc)(uint8_t *, size_t, size_t *, const void *);
    int (*dec)(void **, const uint8_t *, size_t);
    void (*free)(void *);
} kind;

static const kind kinds[] = {
    {"user", make_user, enc_user, dec_user, free_user},
    {"event", make_event, enc_event, dec_event, free_event},
    {"policy", make_policy, enc_policy, dec_policy, free_policy},
    {"history", make_history, enc_history, dec_history, free_history},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

/* Encode into a fresh malloc'd buffer (measure, then write). */
static uint8_t *encode_new(const kind *k, const void *rec, size_t *n)
{
    size_t need = 0;
    cr_assert(eq(int, k->enc(NULL, 0, &need, rec), RISK_OK), "%s measure: %s", k->name,
              risk_error_last());
    uint8_t *buf = malloc(need);
    cr_assert_not_null(buf);
    size_t got = 0;
    cr_assert(eq(int, k->enc(buf, need, &got, rec), RISK_OK), "%s encode: %s", k->name,
              risk_error_last());
    cr_assert(eq(sz, got, need));
    *n = got;
    return buf;
}

/* Decoding must succeed and re-encode to exactly the same bytes. */
static void assert_canonical(const kind *k, const uint8_t *buf, size_t n)
{
    void *rec = NULL;
    cr_assert(eq(int, k->dec(&rec, buf, n), RISK_OK), "%s decode: %s", k->name,
              risk_error_last());
    size_t n2;
    uint8_t *again = encode_new(k, rec, &n2);
    cr_assert(eq(sz, n2, n), "%s: re-encoded length differs", k->name);
    cr_assert(eq(int, memcmp(again, buf, n), 0), "%s: re-encoding differs", k->name);
    free(again);
    k->free(rec);
}

/* memmem without _GNU_SOURCE. */
static uint8_t *find(uint8_t *hay, size_t n, const void *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* ---- round trips (R-ST-3) ---- */

/* R-ST-3: every field of a user survives encode/decode, optional ones present and absent. */
Test(codec, user_round_trip)
{
    for (int full = 0; full <= 1; full++) {
        risk_user *u = make_user(full), *d = NULL;
        size_t n;
        uint8_t *buf = encode_new(&kinds[0], u, &n);
        cr_assert(eq(int, risk_user_decode(&d, buf, n), RISK_OK), "%s", risk_error_last());
        cr_assert(eq(str, (char *)risk_user_id(d), (char *)risk_user_id(u)));
        cr_assert(eq(int, risk_user_mfa_registered(d), full));
        cr_assert(eq(i64, risk_user_mfa_registered_at(d), full ? 1000 : RISK_TIME_NONE));
        cr_assert(eq(int, risk_user_deleted(d), full));
        cr_assert(eq(int, risk_user_must_change_password(d), full));
        cr_assert(eq(int, risk_user_reset_required(d), full));
        cr_assert(eq(i64, risk_user_remediated_at(d), full ? 5000 : RISK_TIME_NONE));
        cr_assert(eq(u32, risk_user_risk_level(d), full ? RISK_LEVEL_HIGH : RISK_LEVEL_NONE));
        cr_assert(eq(u32, risk_user_risk_state(d), full ? RISK_STATE_CONFIRMED_COMPROMISED : 0));
        cr_assert(eq(u32, risk_user_risk_detail(d), full ? RISK_DETAIL_AGED_OUT : 0));
        cr_assert(eq(i64, risk_user_risk_updated_at(d), full ? RISK_TIME_MAX - 1 : -1));
        cr_assert(eq(u64, risk_user_score(d), full ? UINT64_MAX : 0));
        cr_assert(eq(i64, risk_user_risk_since(d), full ? 0 : RISK_TIME_NONE));
        cr_assert(eq(i64, risk_user_next_change_at(d), full ? 123456789 : RISK_TIME_NONE));
        cr_assert(eq(u32, risk_user_active_events(d), full ? UINT32_MAX : 0));
        cr_assert(eq(u64, risk_user_version(d), full ? 77 : 0));
        cr_assert(eq(int, memcmp(risk_user_chain_head(d), risk_user_chain_head(u), 32), 0));
        assert_canonical(&kinds[0], buf, n);
        free(buf);
        risk_user_free(u);
        risk_user_free(d);
    }
}

static int streq_opt(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* R-ST-3: every field of an event survives encode/decode (active and closed). */
Test(codec, event_round_trip)
{
    for (int full = 0; full <= 1; full++) {
        risk_event *e = make_event(full), *d = NULL;
        size_t n;
        uint8_t *buf = encode_new(&kinds[1], e, &n);
        cr_assert(eq(int, risk_event_decode(&d, buf, n), RISK_OK), "%s", risk_error_last());
        cr_assert(eq(str, (char *)risk_event_id(d), "ev-1"));
        cr_assert(eq(str, (char *)risk_event_user_id(d), "u1"));
        cr_assert(eq(str, (char *)risk_event_type(d), "leakedCredentials"));
        cr_assert(eq(u32, risk_event_level(d), RISK_LEVEL_MEDIUM));
        cr_assert(eq(i64, risk_event_detected_at(d), 1000));
        cr_assert(eq(u32, risk_event_timing(d), full ? RISK_TIMING_OFFLINE : RISK_TIMING_REALTIME));
        cr_assert(streq_opt(risk_event_ip(d), risk_event_ip(e)));
        cr_assert(streq_opt(risk_event_location(d), risk_event_location(e)));
        cr_assert(streq_opt(risk_event_source(d), risk_event_source(e)));
        cr_assert(streq_opt(risk_event_note(d), risk_event_note(e)));
        cr_assert(streq_opt(risk_event_closed_by(d), full ? "admin" : NULL));
        cr_assert(eq(u32, risk_event_state_get(d), full ? RISK_EVENT_CLOSED : RISK_EVENT_ACTIVE));
        cr_assert(eq(u32, risk_event_close_reason(d), full ? RISK_CLOSE_IGNORED : RISK_CLOSE_NONE));
        cr_assert(eq(i64, risk_event_closed_at(d), full ? 2000 : RISK_TIME_NONE));
        if (full)
            cr_assert(eq(str, (char *)risk_event_ip(d), "2001:db8::1"));
        assert_canonical(&kinds[1], buf, n);
        free(buf);
        risk_event_free(e);
        risk_event_free(d);
    }
}

/* R-ST-3: a policy's mode, threshold, control and sorted lists survive. */
Test(codec, policy_round_trip)
{
    for (int full = 0; full <= 1; full++) {
        risk_policy *p = make_policy(full), *d = NULL;
        size_t n;
        uint8_t *buf = encode_new(&kinds[2], p, &n);
        cr_assert(eq(int, risk_policy_decode(&d, buf, n), RISK_OK), "%s", risk_error_last());
        cr_assert(eq(str, (char *)risk_policy_name(d), "pol"));
        cr_assert(eq(u32, risk_policy_mode_get(d), full ? RISK_MODE_REPORT_ONLY : RISK_MODE_ON));
        cr_assert(eq(u32, risk_policy_threshold(d), RISK_LEVEL_HIGH));
        cr_assert(eq(u32, risk_policy_control(d), RISK_CONTROL_BLOCK));
        cr_assert(eq(sz, risk_policy_include_count(d), full ? 4 : 0));
        cr_assert(eq(sz, risk_policy_exclude_count(d), full ? 2 : 0));
        for (size_t i = 0; i < risk_policy_include_count(d); i++)
            cr_assert(eq(str, (char *)risk_policy_include_at(d, i),
                         (char *)risk_policy_include_at(p, i)));
        if (full) {
            cr_assert(eq(str, (char *)risk_policy_include_at(d, 0), "amy"));
            cr_assert(eq(str, (char *)risk_policy_exclude_at(d, 1), "break-glass"));
            cr_assert(eq(int, risk_policy_applies_to(d, "bob"), 0));
            cr_assert(eq(int, risk_policy_applies_to(d, "zed"), 1));
        }
        assert_canonical(&kinds[2], buf, n);
        free(buf);
        risk_policy_free(p);
        risk_policy_free(d);
    }
}

/* R-ST-3, R-AU-1: history items round-trip; the body is the encoding without the chain. */
Test(codec, history_round_trip_and_body)
{
    for (int full = 0; full <= 1; full++) {
        risk_history *h = make_history(full), *d = NULL;
        size_t n;
        uint8_t *buf = encode_new(&kinds[3], h, &n);
        cr_assert(eq(int, risk_history_decode(&d, buf, n), RISK_OK), "%s", risk_error_last());
        cr_assert(eq(u64, risk_history_seq(d), full ? UINT64_MAX : 1));
        cr_assert(eq(i64, risk_history_at(d), 0));
        cr_assert(eq(str, (char *)risk_history_actor(d), "system"));
        cr_assert(eq(u32, risk_history_action_get(d),
                     full ? RISK_HISTORY_POLICY_REMOVE : RISK_HISTORY_INGEST));
        cr_assert(streq_opt(risk_history_user_id(d), full ? "u1" : NULL));
        cr_assert(streq_opt(risk_history_event_id(d), full ? "ev-1" : NULL));
        cr_assert(streq_opt(risk_history_policy(d), full ? "pol" : NULL));
        cr_assert(streq_opt(risk_history_note(d), full ? "before\nafter" : NULL));
        cr_assert(eq(u32, risk_history_level_after(d), full ? RISK_LEVEL_HIGH : 0));
        cr_assert(eq(u32, risk_history_state_after(d), full ? RISK_STATE_AT_RISK : 0));
        cr_assert(eq(u32, risk_history_changed(d), full ? 3 : 0));
        cr_assert(eq(int, memcmp(risk_history_chain(d), risk_history_chain(h), 32), 0));
        assert_canonical(&kinds[3], buf, n);

        /* The body: same bytes minus the trailing 32-byte chain. */
        size_t bn = 0;
        cr_assert(eq(int, risk_history_encode_body(NULL, 0, &bn, h), RISK_OK));
        cr_assert(eq(sz, bn, n - 32));
        uint8_t *body = malloc(bn);
        cr_assert(eq(int, risk_history_encode_body(body, bn, &bn, h), RISK_OK));
        cr_assert(eq(int, memcmp(body, buf, bn), 0));
        /* The chain does not enter the body. */
        uint8_t other[32] = {0};
        cr_assert(eq(int, risk_history_set_chain(h, other), RISK_OK));
        uint8_t *body2 = malloc(bn);
        cr_assert(eq(int, risk_history_encode_body(body2, bn, &bn, h), RISK_OK));
        cr_assert(eq(int, memcmp(body, body2, bn), 0));
        free(body);
        free(body2);
        free(buf);
        risk_history_free(h);
        risk_history_free(d);
    }
}

/* R-AU-1: the chain's input is written field by field on the hot path; its
 * bytes must equal the table-driven encoding's for every shape of item
 * (absent and long strings, multi-byte varints, every enum value), and a
 * buffer without room for the worst case takes the measuring path. */
Test(codec, history_body_direct_equals_table)
{
    static char big[RISK_NOTE_MAX + 1];
    memset(big, 'n', sizeof big - 1);
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 2000; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        char ev[40], usr[200];
        snprintf(ev, sizeof ev, "ev-%llu", (unsigned long long)(r % 100000));
        memset(usr, 'u', sizeof usr);
        usr[1 + r % (sizeof usr - 1)] = 0; /* 1..199 bytes: one- and two-byte lengths */
        size_t nl = (r >> 8) % 3 == 0 ? (r >> 16) % (sizeof big - 1) : 0;
        const char *note = nl ? big + (sizeof big - 1 - nl) : NULL;
        risk_history *h = NULL;
        risk_history_action act =
            (risk_history_action)((r >> 9) % (RISK_HISTORY_POLICY_REMOVE + 1));
        cr_assert(eq(int, risk_history_new(&h, (r >> 3) & 1 ? r : r % 128,
                                           (int64_t)(r % RISK_TIME_MAX),
                                           (r >> 5) & 1 ? "system" : usr, act,
                                           (r >> 20) & 1 ? usr : NULL, (r >> 21) & 1 ? ev : NULL,
                                           (r >> 22) & 1 ? "pol" : NULL),
                     RISK_OK), "%s", risk_error_last());
        cr_assert(eq(int, risk_history_set_change(h, (risk_level)((r >> 24) % 4),
                                                  (risk_level)((r >> 26) % 4),
                                                  (risk_state)((r >> 28) % 6),
                                                  (risk_state)((r >> 31) % 6), (uint32_t)(r >> 34),
                                                  note),
                     RISK_OK), "%s", risk_error_last());
        size_t n = 0, bn = 0, big_n = 0;
        uint8_t *full = encode_new(&kinds[3], h, &n);
        uint8_t *body = malloc(n + 200);
        cr_assert(eq(int, risk_history_encode_body(body, n + 200, &bn, h), RISK_OK));
        cr_assert(eq(sz, bn, n - 32));
        cr_assert(eq(int, memcmp(body, full, bn), 0), "item %d", i);
        /* exactly the body's size: too small for the worst case bound */
        cr_assert(eq(int, risk_history_encode_body(body, bn, &big_n, h), RISK_OK));
        cr_assert(eq(sz, big_n, bn));
        cr_assert(eq(int, memcmp(body, full, bn), 0));
        cr_assert(eq(int, risk_history_encode_body(body, bn - 1, &big_n, h), RISK_ERANGE));
        free(body);
        free(full);
        risk_history_free(h);
    }
}

/* R-ST-3: the journal encodes users and events it holds as handles
 * without checking their strings again; the bytes must be the canonical
 * ones, and structure and ranges are still refused. */
Test(codec, trusted_encoders_same_bytes)
{
    for (int full = 0; full <= 1; full++) {
        risk_user *u = make_user(full);
        risk_event *e = make_event(full);
        size_t n = 0, tn = 0;
        uint8_t *a = encode_new(&kinds[0], u, &n), t[4096];
        cr_assert(eq(int, risk_user_encode_trusted(t, sizeof t, &tn, u), RISK_OK));
        cr_assert(eq(sz, tn, n));
        cr_assert(eq(int, memcmp(a, t, n), 0));
        free(a);
        a = encode_new(&kinds[1], e, &n);
        cr_assert(eq(int, risk_event_encode_trusted(t, sizeof t, &tn, e), RISK_OK));
        cr_assert(eq(sz, tn, n));
        cr_assert(eq(int, memcmp(a, t, n), 0));
        free(a);
        e->state = RISK_EVENT_CLOSED; /* closed without reason: refused */
        e->reason = RISK_CLOSE_NONE;
        cr_assert(eq(int, risk_event_encode_trusted(t, sizeof t, &tn, e), RISK_EINVAL));
        u->level = 9; /* out of range */
        cr_assert(eq(int, risk_user_encode_trusted(t, sizeof t, &tn, u), RISK_EINVAL));
        u->level = RISK_LEVEL_NONE;
        risk_user_free(u);
        e->state = RISK_EVENT_ACTIVE;
        risk_event_free(e);
    }
}

/* R-ST-3: the exact bytes of docs/encoding.md's example (a re-implementation can check itself). */
Test(codec, documented_bytes)
{
    risk_user *u = make_user(0);
    uint8_t want[52] = {'U', 1, 2, 'u', '1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t got[64];
    size_t n = 0;
    cr_assert(eq(int, risk_user_encode(got, sizeof got, &n, u), RISK_OK));
    cr_assert(eq(sz, n, sizeof want));
    cr_assert(eq(int, memcmp(got, want, n), 0));
    risk_user_free(u);

    /* Event: detected_at 1000 is varint(1001) = E9 07; optional strings absent = 00. */
    risk_event *e = make_event(0);
    uint8_t ewant[] = {'E', 1, 4, 'e', 'v', '-', '1', 2, 'u', '1', 17, 'l', 'e', 'a', 'k', 'e',
                       'd', 'C', 'r', 'e', 'd', 'e', 'n', 't', 'i', 'a', 'l', 's', 2, 0xE9,
                       0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert(eq(int, risk_event_encode(got, sizeof got, &n, e), RISK_OK));
    cr_assert(eq(sz, n, sizeof ewant));
    cr_assert(eq(int, memcmp(got, ewant, n), 0));
    risk_event_free(e);
}

/* ---- measure and ERANGE ---- */

/* R-ST-3: NULL/0 measures; a short buffer is RISK_ERANGE with the needed length. */
Test(codec, measure_and_erange)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        const kind *k = &kinds[i];
        void *rec = k->make(1);
        size_t need = 0, n = 0;
        cr_assert(eq(int, k->enc(NULL, 0, &need, rec), RISK_OK));
        cr_assert(gt(sz, need, 2));
        uint8_t *buf = malloc(need + 8);
        memset(buf, 0xAA, need + 8);
        cr_assert(eq(int, k->enc(buf, need - 1, &n, rec), RISK_ERANGE), "%s", k->name);
        cr_assert(eq(sz, n, need));
        for (size_t j = need - 1; j < need + 8; j++)
            cr_assert(eq(u8, buf[j], 0xAA), "%s wrote past cap", k->name);
        n = 0;
        cr_assert(eq(int, k->enc(NULL, 5, &n, rec), RISK_ERANGE));
        cr_assert(eq(sz, n, need));
        cr_assert(eq(int, k->enc(buf, need + 8, &n, rec), RISK_OK));
        cr_assert(eq(sz, n, need));
        cr_assert(eq(int, k->enc(buf, need, NULL, rec), RISK_EINVAL));
        cr_assert(eq(int, k->enc(buf, need, &n, NULL), RISK_EINVAL));
        void *out = NULL;
        cr_assert(eq(int, k->dec(NULL, buf, n), RISK_EINVAL));
        cr_assert(eq(int, k->dec(&out, NULL, 3), RISK_EINVAL));
        cr_assert(eq(int, k->dec(&out, NULL, 0), RISK_ECORRUPT));
        cr_assert_null(out);
        free(buf);
        k->free(rec);
    }
}

/* R-IV-1: the encoder refuses a record it could not read back (EINVAL, not bad bytes). */
Test(codec, encoder_refuses_invalid_records)
{
    risk_user *u = make_user(0);
    u->level = 9;
    size_t n;
    cr_assert(eq(int, risk_user_encode(NULL, 0, &n, u), RISK_EINVAL));
    cr_assert(contains(risk_error_last(), "level"), "%s", risk_error_last());
    risk_user_free(u);

    risk_event *e = make_event(0);
    e->state = RISK_EVENT_CLOSED; /* closed without reason/time/actor */
    cr_assert(eq(int, risk_event_encode(NULL, 0, &n, e), RISK_EINVAL));
    risk_event_free(e);

    risk_policy *p = make_policy(1);
    char *t = p->include[0];
    p->include[0] = p->include[1];
    p->include[1] = t; /* unsorted */
    cr_assert(eq(int, risk_policy_encode(NULL, 0, &n, p), RISK_EINVAL));
    cr_assert(contains(risk_error_last(), "sorted"), "%s", risk_error_last());
    p->include[1] = p->include[0];
    p->include[0] = t;
    risk_policy_free(p);
}

/* ---- R-IV-2: corrupt input ---- */

/* R-IV-2: every proper prefix of a valid encoding is RISK_ECORRUPT, naming a byte. */
Test(codec, truncation_at_every_length)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        const kind *k = &kinds[i];
        for (int full = 0; full <= 1; full++) {
            void *rec = k->make(full);
            size_t n;
            uint8_t *buf = encode_new(k, rec, &n);
            for (size_t len = 0; len < n; len++) {
                /* A copy of exactly len bytes, so ASan sees any over-read. */
                uint8_t *pre = malloc(len ? len : 1);
                memcpy(pre, buf, len);
                void *out = NULL;
                cr_assert(eq(int, k->dec(&out, pre, len), RISK_ECORRUPT), "%s prefix %zu",
                          k->name, len);
                cr_assert_null(out);
                cr_assert(contains(risk_error_last(), "byte"), "%s", risk_error_last());
                free(pre);
            }
            free(buf);
            k->free(rec);
        }
    }
}

/* R-IV-2: every single-bit flip is rejected or yields a record that re-encodes to the flipped bytes. */
Test(codec, every_bit_flip)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        const kind *k = &kinds[i];
        for (int full = 0; full <= 1; full++) {
            void *rec = k->make(full);
            size_t n, rejected = 0, accepted = 0;
            uint8_t *buf = encode_new(k, rec, &n);
            uint8_t *flip = malloc(n);
            for (size_t bit = 0; bit < n * 8; bit++) {
                memcpy(flip, buf, n);
                flip[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                void *out = NULL;
                int rc = k->dec(&out, flip, n);
                if (rc == RISK_OK) {
                    accepted++;
                    size_t n2;
                    uint8_t *again = encode_new(k, out, &n2);
                    cr_assert(eq(sz, n2, n), "%s bit %zu", k->name, bit);
                    cr_assert(eq(int, memcmp(again, flip, n), 0), "%s bit %zu", k->name, bit);
                    free(again);
                    k->free(out);
                } else {
                    cr_assert(eq(int, rc, RISK_ECORRUPT), "%s bit %zu", k->name, bit);
                    rejected++;
                }
            }
            /* The header bits alone (16) are always rejected. */
            cr_assert(ge(sz, rejected, 16), "%s: %zu rejected", k->name, rejected);
            cr_assert(gt(sz, accepted, 0), "%s: no flip accepted (chain/text bits should be)",
                      k->name);
            free(flip);
            free(buf);
            k->free(rec);
        }
    }
}

/* Decode bytes and expect RISK_ECORRUPT with `needle` in the message. */
static void expect_corrupt(const kind *k, const uint8_t *b, size_t n, const char *needle)
{
    void *out = NULL;
    int rc = k->dec(&out, b, n);
    if (rc == RISK_OK)
        k->free(out);
    cr_assert(eq(int, rc, RISK_ECORRUPT), "%s: expected ECORRUPT (%s)", k->name, needle);
    cr_assert(contains(risk_error_last(), needle), "%s: message '%s' lacks '%s'", k->name,
              risk_error_last(), needle);
}

/* The minimal user "u1": offsets per docs/encoding.md. */
static uint8_t *user_bytes(size_t *n)
{
    risk_user *u = make_user(0);
    uint8_t *b = encode_new(&kinds[0], u, n);
    risk_user_free(u);
    return b;
}

/* R-IV-2: wrong kind tag, wrong version and trailing bytes are rejected. */
Test(codec, header_and_trailing)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        const kind *k = &kinds[i];
        void *rec = k->make(1);
        size_t n;
        uint8_t *buf = encode_new(k, rec, &n);
        uint8_t *big = malloc(n + 1);
        memcpy(big, buf, n);
        big[n] = 0;
        expect_corrupt(k, big, n + 1, "trailing");
        big[0] = 'X';
        expect_corrupt(k, big, n, "kind tag");
        memcpy(big, buf, n);
        big[1] = RISK_CODEC_VERSION + 1;
        expect_corrupt(k, big, n, "version");
        big[1] = 0;
        expect_corrupt(k, big, n, "version");
        /* Another kind's valid bytes are not this kind. */
        const kind *o = &kinds[(i + 1) % N_KINDS];
        void *orec = o->make(0);
        size_t on;
        uint8_t *obuf = encode_new(o, orec, &on);
        expect_corrupt(k, obuf, on, "kind tag");
        free(obuf);
        o->free(orec);
        free(big);
        free(buf);
        k->free(rec);
    }
}

/* R-IV-2: oversized or overlong length fields, non-minimal and 64-bit-overflowing varints. */
Test(codec, oversized_lengths_and_varints)
{
    size_t n;
    uint8_t *b = user_bytes(&n);
    uint8_t *c = malloc(n + 16);

    /* id length 257 (varint 81 02) — over RISK_ID_MAX. */
    uint8_t big[300] = {'U', 1, 0x81, 0x02};
    memset(big + 4, 'a', 257);
    expect_corrupt(&kinds[0], big, sizeof big, "over the limit");
    /* A length far beyond the input. */
    memcpy(c, b, n);
    c[2] = 0x7F; /* id length 127 but only ~50 bytes follow */
    expect_corrupt(&kinds[0], c, n, "truncated");
    /* A huge varint length (2^63) must not wrap any bound check. */
    uint8_t huge[] = {'U', 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    expect_corrupt(&kinds[0], huge, sizeof huge, "over the limit");
    /* Eleven continuation bytes: over 64 bits. */
    uint8_t over[] = {'U', 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    expect_corrupt(&kinds[0], over, sizeof over, "64 bits");
    /* Non-minimal: id length 2 written as 82 00. */
    c[0] = 'U';
    c[1] = 1;
    c[2] = 0x82;
    c[3] = 0x00;
    memcpy(c + 4, b + 3, n - 3);
    expect_corrupt(&kinds[0], c, n + 1, "non-minimal");
    /* A time past 2^53: mfa_registered_at (byte 9) = varint(2^53 + 1). */
    size_t m = 0;
    memcpy(c, b, 9);
    m = 9;
    uint64_t v = (uint64_t)RISK_TIME_MAX + 1;
    while (v >= 0x80) {
        c[m++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    c[m++] = (uint8_t)v;
    memcpy(c + m, b + 10, n - 10);
    expect_corrupt(&kinds[0], c, m + n - 10, "out of range");
    /* active_events (byte 17) over 32 bits: varint(2^32) = 80 80 80 80 10. */
    memcpy(c, b, 17);
    uint8_t v32[] = {0x80, 0x80, 0x80, 0x80, 0x10};
    memcpy(c + 17, v32, 5);
    memcpy(c + 22, b + 18, n - 18);
    expect_corrupt(&kinds[0], c, n + 4, "32 bits");
    free(c);
    free(b);

    /* Policy include count 100001 and a count larger than the remaining bytes allow. */
    uint8_t pol[] = {'P', 1, 3, 'p', 'o', 'l', 1, 3, 1, 0xA1, 0x8D, 0x06, 0, 0};
    expect_corrupt(&kinds[2], pol, sizeof pol, "too many");
    uint8_t pol2[] = {'P', 1, 3, 'p', 'o', 'l', 1, 3, 1, 50, 1, 'a', 0};
    expect_corrupt(&kinds[2], pol2, sizeof pol2, "truncated");
}

/* R-IV-2: strings are validated exactly like the setters: UTF-8, controls, NUL, type charset, empty ids. */
Test(codec, invalid_strings_inside)
{
    size_t n;
    uint8_t *b = user_bytes(&n); /* id "u1" at bytes 3..4 */
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    c[3] = 0xFF;
    expect_corrupt(&kinds[0], c, n, "UTF-8");
    c[3] = 0xC3; /* truncated two-byte sequence */
    c[4] = '1';
    expect_corrupt(&kinds[0], c, n, "UTF-8");
    c[3] = 0x01;
    expect_corrupt(&kinds[0], c, n, "control");
    c[3] = 0x00;
    expect_corrupt(&kinds[0], c, n, "NUL");
    free(c);
    /* An empty id. */
    c = malloc(n);
    c[0] = 'U';
    c[1] = 1;
    c[2] = 0;
    memcpy(c + 3, b + 5, n - 5);
    expect_corrupt(&kinds[0], c, n - 2, "empty");
    free(c);
    free(b);

    /* Event type with a space (bytes 11.. hold "leakedCredentials"). */
    risk_event *e = make_event(0);
    b = encode_new(&kinds[1], e, &n);
    b[11] = ' ';
    expect_corrupt(&kinds[1], b, n, "[A-Za-z0-9_.-]");
    free(b);
    risk_event_free(e);

    /* A note keeps tab/newline but refuses other controls and surrogates (ED A0 80). */
    risk_history *h = make_history(1);
    b = encode_new(&kinds[3], h, &n);
    uint8_t *note = find(b, n, "before\nafter", 12);
    cr_assert_not_null(note);
    note[0] = 0x1B;
    expect_corrupt(&kinds[3], b, n, "control");
    note[0] = 0xED;
    note[1] = 0xA0;
    note[2] = 0x80;
    expect_corrupt(&kinds[3], b, n, "UTF-8");
    free(b);
    risk_history_free(h);
}

/* R-IV-2: enums, flags and presence bytes out of range are rejected. */
Test(codec, out_of_range_enums)
{
    size_t n;
    uint8_t *b = user_bytes(&n);
    /* flags at 5..8, level 11, state 12, detail 13 */
    const struct {
        size_t at;
        uint8_t v;
        const char *needle;
    } cases[] = {{5, 2, "flag"},         {8, 0xFF, "flag"},      {11, 4, "level"},
                 {12, 6, "state"},       {13, 9, "detail"},      {14, 0x80, "non-minimal"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t saved = b[cases[i].at];
        b[cases[i].at] = cases[i].v;
        expect_corrupt(&kinds[0], b, n, cases[i].needle);
        b[cases[i].at] = saved;
    }
    free(b);

    /* Event: level 0 (none) is not an event level; state 2; reason 7; presence byte 2. */
    risk_event *e = make_event(0);
    b = encode_new(&kinds[1], e, &n);
    /* ... 'l'..'s' ends at 27, level 28, detected 29-30, timing 31, ip 32, loc 33, src 34,
     * state 35, reason 36, closed_at 37, closed_by 38, note 39 */
    const struct {
        size_t at;
        uint8_t v;
        const char *needle;
    } ev[] = {{28, 0, "level"}, {28, 4, "level"}, {31, 2, "timing"}, {32, 2, "presence"},
              {35, 2, "state"}, {36, 7, "reason"}, {39, 2, "presence"}};
    for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++) {
        uint8_t saved = b[ev[i].at];
        b[ev[i].at] = ev[i].v;
        expect_corrupt(&kinds[1], b, n, ev[i].needle);
        b[ev[i].at] = saved;
    }
    assert_canonical(&kinds[1], b, n);
    free(b);
    risk_event_free(e);

    /* History action 18 (one past policy_remove). */
    risk_history *h = make_history(0);
    b = encode_new(&kinds[3], h, &n);
    /* seq 1 at 2, at varint(1) at 3, actor 4..10, action 11 */
    cr_assert(eq(u8, b[11], RISK_HISTORY_INGEST));
    b[11] = 18;
    expect_corrupt(&kinds[3], b, n, "action");
    free(b);
    risk_history_free(h);
}

/* R-IV-2, R-EV-1: state, reason, closed_at and closed_by must agree. */
Test(codec, event_state_consistency)
{
    risk_event *e = make_event(0);
    size_t n;
    uint8_t *b = encode_new(&kinds[1], e, &n);
    b[35] = RISK_EVENT_CLOSED; /* closed with no reason, time, actor */
    expect_corrupt(&kinds[1], b, n, "byte 35");
    b[35] = RISK_EVENT_ACTIVE;
    b[36] = RISK_CLOSE_RESOLVED; /* active with a reason */
    expect_corrupt(&kinds[1], b, n, "close reason");
    free(b);
    risk_event_free(e);

    /* A closed event whose reason is set but closed_by is absent. */
    e = make_event(1);
    b = encode_new(&kinds[1], e, &n);
    void *d = NULL;
    cr_assert(eq(int, risk_event_decode((risk_event **)&d, b, n), RISK_OK));
    risk_event_free(d);
    uint8_t *admin = find(b, n, "\x01\x05" "admin", 7);
    cr_assert_not_null(admin);
    uint8_t *c = malloc(n);
    size_t pre = (size_t)(admin - b);
    memcpy(c, b, pre);
    c[pre] = 0; /* closed_by absent */
    memcpy(c + pre + 1, admin + 7, n - pre - 7);
    expect_corrupt(&kinds[1], c, n - 6, "closed_by");
    free(c);
    free(b);
    risk_event_free(e);
}

/* R-IV-2: policy lists must be strictly ascending (sorted, no duplicates). */
Test(codec, policy_lists_sorted_unique)
{
    uint8_t ok[] = {'P', 1, 3, 'p', 'o', 'l', 1, 3, 1, 2, 1, 'a', 1, 'b', 0};
    void *d = NULL;
    cr_assert(eq(int, risk_policy_decode((risk_policy **)&d, ok, sizeof ok), RISK_OK), "%s",
              risk_error_last());
    risk_policy_free(d);
    uint8_t unsorted[] = {'P', 1, 3, 'p', 'o', 'l', 1, 3, 1, 2, 1, 'b', 1, 'a', 0};
    expect_corrupt(&kinds[2], unsorted, sizeof unsorted, "sorted");
    uint8_t dup[] = {'P', 1, 3, 'p', 'o', 'l', 1, 3, 1, 0, 2, 1, 'a', 1, 'a'};
    expect_corrupt(&kinds[2], dup, sizeof dup, "exclude[1]");
    uint8_t empty_id[] = {'P', 1, 3, 'p', 'o', 'l', 1, 3, 1, 1, 0, 0};
    expect_corrupt(&kinds[2], empty_id, sizeof empty_id, "empty");
}

/* ---- R-IV-3: allocation failure while decoding ---- */

/* R-IV-3: every allocation of every decoder may fail: RISK_ENOMEM, nothing leaks, no output. */
Test(codec, decode_allocation_failure_sweep)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        const kind *k = &kinds[i];
        void *rec = k->make(1);
        size_t n;
        uint8_t *buf = encode_new(k, rec, &n);
        void *out = NULL;
        int rc;
        long failures = 0;
        ALLOC_FAIL_SWEEP(rc, out = NULL, k->dec(&out, buf, n), {
            cr_assert_null(out);
            failures++;
        });
        cr_assert(eq(int, rc, RISK_OK), "%s: %s", k->name, risk_error_last());
        cr_assert(gt(long, failures, 1), "%s: sweep injected only %ld failures", k->name,
                  failures);
        assert_canonical(k, buf, n);
        k->free(out);
        alloc_fail_reset();
        free(buf);
        k->free(rec);
    }
}
