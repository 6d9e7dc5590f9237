/* The journal's trusted encoders (lib/codec.c): users and events the
 * journal commits are written field by field when plainly in range; the
 * bytes must equal the canonical encoder's for every shape of record
 * (absent and long strings, one- and multi-byte varints, every enum
 * value), and a buffer without room for the worst case takes the
 * table-driven path (R-ST-3). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static uint64_t next(uint64_t *r)
{
    *r ^= *r << 13, *r ^= *r >> 7, *r ^= *r << 17;
    return *r;
}

/* A time in range, or (opt) sometimes none; small ones too (short varints). */
static int64_t rtime(uint64_t *r, int opt)
{
    uint64_t v = next(r);
    if (opt && v % 4 == 0)
        return RISK_TIME_NONE;
    return (int64_t)(v % 3 == 0 ? v % 200 : (v >> 8) % (uint64_t)RISK_TIME_MAX);
}

/* An id of 1..RISK_ID_MAX bytes (one- and two-byte length varints). */
static void rand_id(uint64_t *r, char id[RISK_ID_MAX + 1], int i)
{
    size_t n = 1 + next(r) % RISK_ID_MAX;
    memset(id, 'a' + (char)(i % 26), n);
    id[n] = 0;
}

/* canonical == trusted, then trusted with exactly the room it needs */
static void same_bytes(int (*canon)(uint8_t *, size_t, size_t *, const void *),
                       int (*trusted)(uint8_t *, size_t, size_t *, const void *), const void *rec,
                       int i)
{
    static uint8_t a[4096], b[4096];
    size_t na = 0, nb = 0;
    cr_assert(eq(int, canon(a, sizeof a, &na, rec), RISK_OK), "%d: %s", i, risk_error_last());
    cr_assert(eq(int, trusted(b, sizeof b, &nb, rec), RISK_OK), "%d", i);
    cr_assert(eq(sz, nb, na), "record %d", i);
    cr_assert(eq(int, memcmp(a, b, na), 0), "record %d", i);
    memset(b, 0, sizeof b);
    cr_assert(eq(int, trusted(b, na, &nb, rec), RISK_OK), "%d", i); /* below the worst case */
    cr_assert(eq(int, memcmp(a, b, na), 0), "record %d", i);
    cr_assert(eq(int, trusted(b, na - 1, &nb, rec), RISK_ERANGE), "%d", i);
}

static int canon_user(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_user_encode(b, c, l, r); }
static int trusted_user(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_user_encode_trusted(b, c, l, r); }
static int canon_event(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_event_encode(b, c, l, r); }
static int trusted_event(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_event_encode_trusted(b, c, l, r); }

Test(codec_trusted, user_direct_equals_table)
{
    char id[RISK_ID_MAX + 1];
    uint64_t r = 0x243f6a8885a308d3ULL;
    for (int i = 0; i < 2000; i++) {
        rand_id(&r, id, i);
        risk_user *u = NULL;
        cr_assert(eq(int, risk_user_new(&u, id), RISK_OK));
        uint64_t v = next(&r);
        int64_t mfa_at = rtime(&r, 1);
        cr_assert(eq(int, risk_user_set_mfa_registered(u, mfa_at != RISK_TIME_NONE, mfa_at),
                     RISK_OK), "%s", risk_error_last());
        cr_assert(eq(int, risk_user_set_deleted(u, (int)(v & 1)), RISK_OK));
        cr_assert(eq(int, risk_user_set_password_state(u, (int)(v >> 1 & 1), (int)(v >> 2 & 1),
                                                       rtime(&r, 1)),
                     RISK_OK), "%s", risk_error_last());
        cr_assert(eq(int, risk_user_set_risk(u, (risk_level)(v >> 3 & 3),
                                             (risk_state)((v >> 5) % 6),
                                             (risk_detail)((v >> 8) % 9), rtime(&r, 1),
                                             v >> 12 & 1 ? next(&r) : v % 100, rtime(&r, 1),
                                             rtime(&r, 1), (uint32_t)(v >> 13 & 1 ? v >> 32 : v % 50)),
                     RISK_OK), "%s", risk_error_last());
        cr_assert(eq(int, risk_user_set_version(u, v >> 14 & 1 ? next(&r) : v % 100), RISK_OK));
        uint8_t head[32];
        for (int k = 0; k < 32; k++)
            head[k] = (uint8_t)(next(&r));
        cr_assert(eq(int, risk_user_set_chain_head(u, head), RISK_OK));
        same_bytes(canon_user, trusted_user, u, i);
        risk_user_free(u);
    }
}

Test(codec_trusted, event_direct_equals_table)
{
    static char note[RISK_NOTE_MAX + 1], info[RISK_INFO_MAX + 1];
    memset(note, 'n', sizeof note - 1);
    memset(info, 'i', sizeof info - 1);
    char id[RISK_ID_MAX + 1];
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 2000; i++) {
        rand_id(&r, id, i);
        uint64_t v = next(&r);
        risk_event *e = NULL;
        cr_assert(eq(int, risk_event_new(&e, id, v & 1 ? "u" : id, v & 2 ? "leakedCredentials" : "x",
                                         (risk_level)(1 + (v >> 2) % 3), rtime(&r, 0)),
                     RISK_OK), "%s", risk_error_last());
        cr_assert(eq(int, risk_event_set_timing(e, (risk_timing)(v >> 4 & 1)), RISK_OK));
        const char *s3[3];
        for (int k = 0; k < 3; k++) {
            uint64_t w = next(&r);
            s3[k] = w % 3 == 0 ? NULL : info + (sizeof info - 1 - (1 + w % RISK_INFO_MAX));
        }
        cr_assert(eq(int, risk_event_set_ip(e, s3[0]), RISK_OK));
        cr_assert(eq(int, risk_event_set_location(e, s3[1]), RISK_OK));
        cr_assert(eq(int, risk_event_set_source(e, s3[2]), RISK_OK));
        if (v >> 5 & 1) {
            risk_close_reason reason = (risk_close_reason)(1 + (v >> 6) % RISK_CLOSE_AGED);
            cr_assert(eq(int, risk_event_set_closing(e, RISK_EVENT_CLOSED, reason, rtime(&r, 0),
                                                     v >> 9 & 1 ? "admin" : id),
                         RISK_OK), "%s", risk_error_last());
        }
        size_t nl = (v >> 10) % 3 == 0 ? 1 + (v >> 12) % RISK_NOTE_MAX : 0;
        cr_assert(eq(int, risk_event_set_note(e, nl ? note + (sizeof note - 1 - nl) : NULL),
                     RISK_OK), "%s", risk_error_last());
        same_bytes(canon_event, trusted_event, e, i);
        risk_event_free(e);
    }
}
