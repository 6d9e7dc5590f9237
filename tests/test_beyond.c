/* SPEC §10: the tamper-evident history, policy what-if, per-type aging and
 * decision receipts. Tampering is simulated by a store wrapper whose
 * read_history changes what the verifier sees: any byte of any item, a
 * removed, reordered or inserted item, a truncated history. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <librisk.h>
#include <librisk/store.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1764000000000)
#define MIN INT64_C(60000)

static int64_t now_ms = T0;
static int64_t clock_fn(void *ud)
{
    (void)ud;
    return now_ms;
}

/* ---- a tampering view of the history ---- */

enum tamper { NONE, FLIP, DROP, SWAP, INSERT, TRUNCATE };

static struct {
    risk_store inner;
    enum tamper mode;
    uint64_t target;   /* the seq to tamper with */
    size_t byte;       /* FLIP: which byte of its encoding */
    int applied;       /* the tamper happened (FLIP: and decoded) */
    uint64_t flipped_seq; /* FLIP: the changed item's sequence number */
    risk_history *held; /* SWAP: the item held back */
    risk_history_visit_fn fn;
    void *arg;
    int dismiss_after_view; /* the next view_user's user is dismissed once read */
} W;

static int tamper_visit(const risk_history *h, void *arg)
{
    (void)arg;
    uint64_t seq = risk_history_seq(h);
    if (W.mode == TRUNCATE && seq >= W.target) {
        W.applied = 1;
        return 0;
    }
    if (seq != W.target || W.mode == NONE)
        return W.fn(h, W.arg);
    switch (W.mode) {
    case DROP:
        W.applied = 1;
        return 0;
    case SWAP: /* deliver this one after the next */
        cr_assert(eq(int, risk_history_dup(&W.held, h), RISK_OK));
        W.target = seq + 1;
        W.mode = NONE;
        return 0;
    case INSERT: {
        /* a forged item that claims to belong to the same user */
        risk_history *f = NULL;
        cr_assert(eq(int, risk_history_dup(&f, h), RISK_OK));
        cr_assert(eq(int, risk_history_set_seq(f, seq), RISK_OK));
        int rc = W.fn(f, W.arg);
        risk_history_free(f);
        W.applied = 1;
        return rc ? rc : W.fn(h, W.arg);
    }
    case FLIP: {
        uint8_t buf[4096];
        size_t len = 0;
        cr_assert(eq(int, risk_history_encode(buf, sizeof buf, &len, h), RISK_OK));
        if (W.byte >= len)
            return W.fn(h, W.arg);
        buf[W.byte] ^= 0x01;
        risk_history *f = NULL;
        if (risk_history_decode(&f, buf, len) != RISK_OK)
            return W.fn(h, W.arg); /* not a decodable change: the codec catches it */
        W.applied = 1;
        W.flipped_seq = risk_history_seq(f);
        int rc = W.fn(f, W.arg);
        risk_history_free(f);
        return rc;
    }
    default:
        return W.fn(h, W.arg);
    }
}

static int swap_visit(const risk_history *h, void *arg)
{
    int rc = tamper_visit(h, arg);
    if (rc == 0 && W.held && risk_history_seq(h) == W.target) {
        rc = W.fn(W.held, W.arg);
        risk_history_free(W.held);
        W.held = NULL;
        W.applied = 1;
    }
    return rc;
}

static int w_read_history(void *ctx, const char *user, uint64_t since, risk_history_visit_fn fn,
                          void *arg)
{
    (void)ctx;
    W.fn = fn;
    W.arg = arg;
    return W.inner.read_history(W.inner.ctx, user, since, swap_visit, arg);
}

static void w_close(void *ctx)
{
    (void)ctx;
    W.inner.close(W.inner.ctx);
}

static risk_engine *E;
static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";

/* An administrator's dismiss, from another thread (as it would come). */
static void *dismiss_thread(void *user)
{
    uint32_t closed = 0;
    return (void *)(intptr_t)risk_engine_dismiss(E, "admin", user, NULL, &closed);
}

/* view_user, then (once, if asked) the user dismissed before the decision
 * goes on: an operation that lands between a sign-in's decision and its
 * receipt. Nothing of the store is held here. */
static int w_view_user(void *ctx, const char *id, risk_user_visit_fn fn, void *arg)
{
    int rc = W.inner.view_user(ctx, id, fn, arg);
    if (W.dismiss_after_view) {
        W.dismiss_after_view = 0;
        pthread_t th;
        void *res = NULL;
        cr_assert(eq(int, pthread_create(&th, NULL, dismiss_thread, (void *)id), 0));
        pthread_join(th, &res);
        cr_assert(eq(int, (int)(intptr_t)res, RISK_OK));
    }
    return rc;
}

static risk_engine *open_engine(const risk_scoring *sc)
{
    memset(&W, 0, sizeof W);
    now_ms = T0;
    cr_assert(eq(int, risk_memory_store_new(&W.inner), RISK_OK));
    risk_store s = W.inner; /* ctx stays the memory store's: wrappers use W */
    s.read_history = w_read_history;
    s.close = w_close;
    s.view_user = w_view_user;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = clock_fn;
    o.scoring = sc;
    o.receipt_key = key;
    o.receipt_key_len = sizeof key;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &s, &o), RISK_OK), "%s", risk_error_last());
    return e;
}

static void ingest(const char *user, const char *id, const char *type, risk_level l, int64_t at)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, id, user, type, l, at), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(E, "detector", ev, 0), RISK_OK), "%s", risk_error_last());
    risk_event_free(ev);
}

static void mfa_user(const char *id, int mfa)
{
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, id), RISK_OK));
    if (mfa)
        cr_assert(eq(int, risk_user_set_mfa_registered(u, 1, T0 - MIN), RISK_OK));
    cr_assert(eq(int, risk_engine_upsert_user(E, "admin", u), RISK_OK));
    risk_user_free(u);
}

static void policy(const char *name, risk_level t, risk_control c)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, name, t, c), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(E, "admin", p), RISK_OK));
    risk_policy_free(p);
}

/* A history of a few dozen items over several users and the policy set. */
static uint64_t populate(void)
{
    policy("block-high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK);
    mfa_user("alice", 1);
    mfa_user("bob", 0);
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof id, "a%d", i);
        ingest("alice", id, "leakedCredentials", (risk_level)(1 + i % 3), T0 + i);
        snprintf(id, sizeof id, "b%d", i);
        ingest("bob", id, "anonymizedIPAddress", RISK_LEVEL_LOW, T0 + i);
    }
    cr_assert(eq(int, risk_engine_resolve(E, "admin", "a1", "n"), RISK_OK));
    cr_assert(eq(int, risk_engine_dismiss(E, "admin", "bob", NULL, NULL), RISK_OK));
    policy("require-medium", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE);
    cr_assert(eq(int, risk_engine_password_changed(E, "alice", "alice", RISK_PASSWORD_SECURE_CHANGE), RISK_OK));
    risk_anchor a;
    cr_assert(eq(int, risk_engine_history_anchor(E, &a), RISK_OK));
    return a.seq;
}

static void close_engine(void)
{
    risk_engine_free(E);
    E = NULL;
}

/* R-AU-1: each item has a chain hash linking it to its subject's chain. */
Test(audit, untouched_history_verifies, .fini = close_engine)
{
    E = open_engine(NULL);
    uint64_t last = populate();
    cr_assert(gt(u64, last, 15));
    uint64_t bad = 99;
    cr_assert(eq(int, risk_engine_verify_history(E, NULL, &bad), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(u64, bad, 0));
    risk_anchor a;
    cr_assert(eq(int, risk_engine_history_anchor(E, &a), RISK_OK));
    cr_assert(eq(u64, a.seq, last));
    cr_assert(eq(u32, a.subjects, 3)); /* alice, bob, the policy set */
    cr_assert(eq(int, risk_engine_verify_history(E, &a, NULL), RISK_OK));
}

/* R-AU-2: changing any one byte of any history item is found, and the
 * item's sequence number is named (unless the byte makes it undecodable,
 * which the codec rejects, R-IV-2). */
Test(audit, any_changed_byte_is_found, .fini = close_engine)
{
    E = open_engine(NULL);
    uint64_t last = populate();
    int tested = 0;
    for (uint64_t seq = 1; seq <= last; seq++) {
        for (size_t byte = 0; byte < 400; byte++) {
            W.mode = FLIP;
            W.target = seq;
            W.byte = byte;
            W.applied = 0;
            uint64_t bad = 0;
            int rc = risk_engine_verify_history(E, NULL, &bad);
            if (!W.applied)
                continue;
            tested++;
            cr_assert(eq(int, rc, RISK_EVERIFY), "flip of byte %zu of item %llu unseen", byte,
                      (unsigned long long)seq);
            /* a changed seq names the item by its new number or flags order */
            cr_assert(bad != 0, "item %llu byte %zu: no item named", (unsigned long long)seq, byte);
            if (W.flipped_seq == seq) /* the number kept: that item is named */
                cr_assert(eq(u64, bad, seq), "byte %zu", byte);
        }
    }
    W.mode = NONE;
    cr_assert(gt(int, tested, 500));
    cr_assert(eq(int, risk_engine_verify_history(E, NULL, NULL), RISK_OK));
}

/* R-AU-2: an item removed from inside a chain, two items swapped, a forged
 * item inserted: each is found, by sequence number. */
Test(audit, removed_reordered_inserted_items_are_found, .fini = close_engine)
{
    E = open_engine(NULL);
    uint64_t last = populate();
    for (uint64_t seq = 1; seq < last; seq++) {
        enum tamper modes[] = { DROP, SWAP, INSERT };
        for (int m = 0; m < 3; m++) {
            W.mode = modes[m];
            W.target = seq;
            W.applied = 0;
            uint64_t bad = 0;
            int rc = risk_engine_verify_history(E, NULL, &bad);
            W.mode = NONE;
            risk_history_free(W.held);
            W.held = NULL;
            cr_assert(eq(int, rc, RISK_EVERIFY), "mode %d at %llu unseen", m,
                      (unsigned long long)seq);
        }
    }
}

/* R-AU-3: removing the newest items is found against an anchor taken
 * before (and by the record heads); the anchor round-trips as text. */
Test(audit, truncation_is_found_against_an_anchor, .fini = close_engine)
{
    E = open_engine(NULL);
    uint64_t last = populate();
    risk_anchor a, b;
    cr_assert(eq(int, risk_engine_history_anchor(E, &a), RISK_OK));
    char text[RISK_ANCHOR_TEXT_MAX];
    cr_assert(eq(int, risk_anchor_format(text, sizeof text, &a), RISK_OK));
    cr_assert(eq(int, risk_anchor_parse(&b, text), RISK_OK));
    cr_assert(eq(int, memcmp(&a, &b, sizeof a), 0));
    cr_assert(eq(int, risk_anchor_parse(&b, "librisk-anchor 1 5 2 zz"), RISK_EINVAL));
    for (uint64_t cut = 1; cut <= last; cut++) {
        W.mode = TRUNCATE;
        W.target = cut;
        cr_assert(eq(int, risk_engine_verify_history(E, &a, NULL), RISK_EVERIFY), "cut at %llu",
                  (unsigned long long)cut);
    }
    W.mode = NONE;
    /* Later items do not disturb an old anchor. */
    ingest("carol", "c1", "x", RISK_LEVEL_LOW, T0);
    cr_assert(eq(int, risk_engine_verify_history(E, &a, NULL), RISK_OK), "%s", risk_error_last());
}

/* R-AU-3, R-IV-1: an anchor's text is read exactly as it is written; a
 * corrupted or other-version one is refused, not read as another anchor. */
Test(audit, anchor_text_is_strict)
{
    static const char h[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char t[256];
    risk_anchor b;
    snprintf(t, sizeof t, " librisk-anchor 1 5 2 %s\n", h);
    cr_assert(eq(int, risk_anchor_parse(&b, t), RISK_OK));
    cr_assert(eq(u64, b.seq, 5));
    cr_assert(eq(u32, b.subjects, 2));
    cr_assert(eq(int, b.hash[31], 0xff));
    const char *bad[] = {
        "librisk-anchor 12 5 2 %s",  "librisk-anchor1 5 2 %s",   "librisk-anchor 2 5 2 %s",
        "librisk-anchor 1 -1 2 %s",  "librisk-anchor 1 +5 2 %s", "librisk-anchor 1 5 -0 %s",
        "librisk-anchor 1 5  2 %s",  "librisk-anchor 1 5 4294967296 %s",
        "librisk-anchor 1 99999999999999999999 2 %s", "librisk-anchor 1 5 2 %sx",
        "librisk-anchor 1 5 2 %.63s", "librisk-anchor 1 5 2 A%.63s",
        "librisk-anchor 1 05 2 %s",  "librisk-anchor 1 5 02 %s", /* fuzzing: read as 5, 2 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(t, sizeof t, bad[i], h);
        cr_assert(eq(int, risk_anchor_parse(&b, t), RISK_EINVAL), "%s", t);
    }
    snprintf(t, sizeof t, "librisk-anchor 1 18446744073709551615 4294967295 %s", h);
    cr_assert(eq(int, risk_anchor_parse(&b, t), RISK_OK));
    cr_assert(eq(u64, b.seq, UINT64_MAX));
    b.version = RISK_ANCHOR_VERSION + 1; /* this library writes version 1 only */
    cr_assert(eq(int, risk_anchor_format(t, sizeof t, &b), RISK_EINVAL));
}

/* ---- what-if ---- */

/* R-WI-1: counts per decision and reason, users paged, nothing changed;
 * R-WI-2: after the policies are set, real sign-ins decide the same. */
Test(whatif, predicts_real_sign_ins, .fini = close_engine)
{
    E = open_engine(NULL);
    for (int i = 0; i < 40; i++) {
        char u[16], ev[16];
        snprintf(u, sizeof u, "u%02d", i);
        mfa_user(u, i % 2);
        if (i % 3 == 0)
            continue;
        snprintf(ev, sizeof ev, "e%02d", i);
        ingest(u, ev, "leakedCredentials", (risk_level)(1 + i % 3), T0 - (i % 5) * 90 * RISK_DAY_MS);
    }
    risk_policy *p[2] = { NULL, NULL };
    cr_assert(eq(int, risk_policy_new(&p[0], "medium", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE), RISK_OK));
    cr_assert(eq(int, risk_policy_new(&p[1], "high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_policy_exclude_add(p[1], "u05"), RISK_OK));
    int64_t at = T0 + 10 * RISK_DAY_MS;
    risk_anchor before, after;
    cr_assert(eq(int, risk_engine_history_anchor(E, &before), RISK_OK));
    risk_what_if *w = NULL;
    cr_assert(eq(int, risk_engine_what_if(&w, E, (const risk_policy *const *)p, 2, at), RISK_OK));
    cr_assert(eq(int, risk_engine_history_anchor(E, &after), RISK_OK));
    cr_assert(eq(int, memcmp(&before, &after, sizeof before), 0)); /* nothing changed */
    cr_assert(eq(sz, risk_what_if_total(w), 40));
    size_t sum = 0;
    for (int d = 0; d < 3; d++)
        for (int r = 0; r < 8; r++)
            sum += risk_what_if_count(w, (risk_decision)d, (risk_reason)r);
    cr_assert(eq(sz, sum, 40));
    cr_assert(gt(sz, risk_what_if_count(w, RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL), 0));
    cr_assert(gt(sz, risk_what_if_count(w, RISK_DECISION_ALLOW, RISK_REASON_NONE), 0));
    /* Now set them and sign everyone in at the same time. */
    cr_assert(eq(int, risk_engine_policy_set(E, "admin", p[0]), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(E, "admin", p[1]), RISK_OK));
    now_ms = at;
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    for (int d = 0; d < 3; d++)
        for (int r = 0; r < 8; r++)
            for (size_t i = 0; i < risk_what_if_count(w, (risk_decision)d, (risk_reason)r); i++) {
                const char *u = risk_what_if_user(w, (risk_decision)d, (risk_reason)r, i);
                cr_assert(eq(int, risk_engine_sign_in(E, u, v), RISK_OK));
                cr_assert(eq(int, risk_verdict_decision(v), d), "%s", u);
                cr_assert(eq(int, risk_verdict_reason(v), r), "%s", u);
            }
    cr_assert_null(risk_what_if_user(w, RISK_DECISION_ALLOW, RISK_REASON_NONE, 1000));
    risk_verdict_free(v);
    risk_what_if_free(w);
    risk_policy_free(p[0]);
    risk_policy_free(p[1]);
}

/* R-WI-2, R-OP-6: a candidate set naming one policy twice could never be
 * installed (a store holds one per name): refused, nothing predicted. */
Test(whatif, refuses_two_policies_of_one_name, .fini = close_engine)
{
    E = open_engine(NULL);
    risk_policy *p[3] = { NULL, NULL, NULL };
    cr_assert(eq(int, risk_policy_new(&p[0], "p", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_policy_new(&p[1], "q", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_policy_new(&p[2], "p", RISK_LEVEL_MEDIUM,
                                      RISK_CONTROL_REQUIRE_PASSWORD_CHANGE), RISK_OK));
    risk_what_if *w = NULL;
    cr_assert(eq(int, risk_engine_what_if(&w, E, (const risk_policy *const *)p, 3, T0),
                 RISK_EINVAL));
    cr_assert_null(w);
    cr_assert(strstr(risk_error_last(), "policies[2]: name 'p'") != NULL, "%s",
              risk_error_last());
    cr_assert(eq(int, risk_engine_what_if(&w, E, (const risk_policy *const *)p, 2, T0), RISK_OK));
    risk_what_if_free(w);
    for (int i = 0; i < 3; i++)
        risk_policy_free(p[i]);
}

/* R-RC-1: the receipt's events are those of the record decided on. An
 * operation between the decision and the receipt's read (here a dismiss
 * of every event) used to give a signed "block at level high" naming no
 * event; the sign-in now sees the user changed and decides again. */
Test(receipt, names_the_events_of_the_record_decided_on, .fini = close_engine)
{
    E = open_engine(NULL);
    policy("block-high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK);
    ingest("alice", "e1", "leakedCredentials", RISK_LEVEL_HIGH, T0);
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_verdict_want_receipt(v, 1), RISK_OK));
    W.dismiss_after_view = 1;
    cr_assert(eq(int, risk_engine_sign_in(E, "alice", v), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, W.dismiss_after_view, 0)); /* the dismiss did land in between */
    const char *r = risk_verdict_receipt(v);
    cr_assert_not_null(r);
    cr_assert(eq(int, risk_verdict_decision(v), RISK_DECISION_ALLOW), "%s", r);
    cr_assert_not_null(strstr(r, "decision=allow\n"), "%s", r);
    cr_assert_not_null(strstr(r, "level=none\n"), "%s", r);
    cr_assert_null(strstr(r, "event="), "%s", r);
    cr_assert(eq(int, risk_receipt_verify(r, key, sizeof key), RISK_OK), "%s", risk_error_last());
    risk_verdict_free(v);
}

/* ---- per-type aging ---- */

/* R-SC-8: an override per detection type, exactly at the boundary, shown
 * by the explanation. */
Test(aging, per_type_override_at_the_boundary, .fini = close_engine)
{
    risk_type_aging ta[] = { { "unfamiliarFeatures", 30 * RISK_DAY_MS } };
    risk_scoring sc;
    risk_scoring_init(&sc);
    sc.type_aging = ta;
    sc.type_aging_count = 1;
    E = open_engine(&sc);
    ingest("u", "e1", "unfamiliarFeatures", RISK_LEVEL_MEDIUM, T0);
    ingest("u", "e2", "leakedCredentials", RISK_LEVEL_LOW, T0);
    now_ms = T0 + 30 * RISK_DAY_MS - 1;
    risk_explanation *ex = NULL;
    cr_assert(eq(int, risk_engine_explain(&ex, E, "u"), RISK_OK));
    cr_assert(eq(int, risk_explanation_result(ex)->level, RISK_LEVEL_MEDIUM));
    size_t i = strcmp(risk_explanation_event_id(ex, 0), "e1") == 0 ? 0 : 1;
    cr_assert(eq(int, risk_explanation_type_override(ex, i), 1));
    cr_assert(eq(i64, risk_explanation_aging_ms(ex, i), 30 * RISK_DAY_MS));
    cr_assert(eq(int, risk_explanation_type_override(ex, 1 - i), 0));
    cr_assert(eq(i64, risk_explanation_aging_ms(ex, 1 - i), 180 * RISK_DAY_MS));
    risk_explanation_free(ex);
    now_ms = T0 + 30 * RISK_DAY_MS;
    cr_assert(eq(int, risk_engine_explain(&ex, E, "u"), RISK_OK));
    cr_assert(eq(int, risk_explanation_result(ex)->level, RISK_LEVEL_LOW));
    cr_assert(eq(int, risk_explanation_aged(ex, i), 1));
    risk_explanation_free(ex);
    /* R-SC-6: once the catch-up has closed it (reason aged), the
     * explanation at the same time still says it aged out */
    uint64_t users = 0, closed = 0;
    cr_assert(eq(int, risk_engine_expire(E, &users, &closed), RISK_OK));
    cr_assert(eq(u64, closed, 1));
    cr_assert(eq(int, risk_engine_explain(&ex, E, "u"), RISK_OK));
    size_t j = strcmp(risk_explanation_event_id(ex, 0), "e1") == 0 ? 0 : 1;
    cr_assert(eq(int, (int)risk_explanation_state(ex, j), RISK_EVENT_CLOSED));
    cr_assert(eq(int, risk_explanation_aged(ex, j), 1));
    cr_assert(eq(int, risk_explanation_counted(ex, j), 0));
    cr_assert(eq(int, risk_explanation_aged(ex, 1 - j), 0));
    risk_explanation_free(ex);
}

/* ---- receipts ---- */

/* R-RC-1: a receipt names user, time, level, policy, reason and the
 * counted events; it verifies under the key; any altered byte fails. */
Test(receipt, verifies_and_any_change_fails, .fini = close_engine)
{
    E = open_engine(NULL);
    policy("block-high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK);
    ingest("alice", "e1", "leakedCredentials", RISK_LEVEL_HIGH, T0);
    ingest("alice", "e2", "unfamiliarFeatures", RISK_LEVEL_LOW, T0 + 1);
    cr_assert(eq(int, risk_engine_resolve(E, "admin", "e2", NULL), RISK_OK));
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(E, "alice", v), RISK_OK));
    cr_assert_null(risk_verdict_receipt(v)); /* only when asked */
    cr_assert(eq(int, risk_verdict_want_receipt(v, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(E, "alice", v), RISK_OK));
    const char *r = risk_verdict_receipt(v);
    cr_assert_not_null(r);
    cr_assert_not_null(strstr(r, "user_id=alice\n"));
    cr_assert_not_null(strstr(r, "decision=block\n"));
    cr_assert_not_null(strstr(r, "policy=block-high\n"));
    cr_assert_not_null(strstr(r, "event=e1\n"));
    cr_assert_null(strstr(r, "event=e2\n")); /* closed: did not count */
    cr_assert(eq(int, risk_receipt_verify(r, key, sizeof key), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, risk_receipt_verify(r, (const uint8_t *)"another key, 16+", 16), RISK_EVERIFY));
    char *copy = strdup(r);
    size_t len = strlen(copy);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            copy[i] ^= (char)(1 << bit);
            if (copy[i] != '\0')
                cr_assert(eq(int, risk_receipt_verify(copy, key, sizeof key), RISK_EVERIFY),
                          "byte %zu bit %d", i, bit);
            copy[i] ^= (char)(1 << bit);
        }
    }
    free(copy);
    risk_verdict_free(v);
}
