/* The engine's plumbing against the contract: the clock's range, history
 * times, the catch-up's stamp, the user-change hook on a state change
 * alone, the policy cache on a host store, retries, argument checks of
 * the queries and what-if, malformed receipts, and the guard's codes
 * (R-SC-2, R-OP-6, R-OP-8, R-IV-1, R-IV-2, R-RC-1, R-ST-6).
 *
 * Found by mutation testing (2026-12-07): each test kills a change to
 * lib/engine.c, engine_policy.c, engine_query.c, receipt.c, whatif.c or
 * store_guard.c that the other suites let through. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "engine_fixture.h"
#include "fwd_store.h"
#include "internal.h" /* risk_hmac_sha256: to re-seal a malformed receipt */

#include <stdio.h>
#include <stdlib.h>

TestSuite(engine_plumbing, .init = fx_open, .fini = fx_close);

/* ---- a host store (not built in: the engine guards it) over the memory
 * store, with one injectable misbehaviour at a time ---- */
static int meta_code; /* non-zero: get_meta returns it */

static int hs_get_meta(void *c, void *t, const char *k, uint8_t *b, size_t cap, size_t *l)
{
    (void)c;
    if (meta_code)
        return meta_code;
    return FWD.in.get_meta(FWD.in.ctx, t, k, b, cap, l);
}
/* a lenient host: an out-of-range min_level lists the high users */
static int hs_list_users(void *c, risk_level m, risk_user_visit_fn fn, void *a)
{
    (void)c;
    return FWD.in.list_users(FWD.in.ctx, (unsigned)m > RISK_LEVEL_HIGH ? RISK_LEVEL_HIGH : m, fn, a);
}

/* The fixture's engine over the host store (retries: 0 for the default). */
static void hs_open(uint32_t retries)
{
    fx_close();
    meta_code = 0;
    risk_store s;
    cr_assert(eq(int, fwd_memory(&s), RISK_OK));
    s.get_meta = hs_get_meta;
    s.list_users = hs_list_users;
    fx_open_on(&s, NULL, 0, retries);
}

/* An engine over the memory store whose clock answers `t`. */
static int64_t fixed_t;
static int64_t fixed_clock(void *ud) { (void)ud; return fixed_t; }
static risk_engine *clock_engine(int64_t t)
{
    fixed_t = t;
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fixed_clock;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &st, &o), RISK_OK));
    return e;
}

struct hist_last {
    int n;
    int64_t at;
};
static int hist_last_cb(const risk_history *h, void *ud)
{
    struct hist_last *l = ud;
    l->n++;
    l->at = risk_history_at(h);
    return 0;
}

/* ================================================================== */

/* librisk.h risk_engine_now ("ms since the epoch"; every time is
 * 0 ≤ t < RISK_TIME_MAX) — mutants engine.c clock clamps (#0, #1): a host
 * clock that answers -1 (RISK_TIME_NONE) or RISK_TIME_MAX is clamped into
 * range, and a history item is never stamped with an invalid time. */
Test(engine_plumbing, clock_is_clamped_into_the_valid_range)
{
    risk_engine *e = clock_engine(-1);
    cr_expect(eq(i64, risk_engine_now(e), 0));
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, "u"), RISK_OK));
    cr_assert(eq(int, risk_engine_upsert_user(e, "admin", u), RISK_OK), "%s", risk_error_last());
    risk_user_free(u);
    struct hist_last l = { 0 };
    cr_assert(eq(int, risk_engine_history(e, "u", hist_last_cb, &l), RISK_OK));
    cr_expect(eq(int, l.n, 1));
    cr_expect(eq(i64, l.at, 0));
    risk_engine_free(e);

    e = clock_engine(RISK_TIME_MAX);
    cr_expect(eq(i64, risk_engine_now(e), RISK_TIME_MAX - 1));
    risk_engine_free(e);
}

/* docs/store.md "What the engine checks" (R-ST-1) — mutant store_guard.c
 * code() without `rc >= RISK_EVERIFY` (#155): an unknown negative result
 * from a host's callback is RISK_ESTORE, not passed through as is. */
Test(engine_plumbing, unknown_negative_store_code_is_a_store_error)
{
    hs_open(0);
    meta_code = -999;
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "p", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    cr_expect(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_ESTORE));
    meta_code = RISK_EVERIFY - 1;
    cr_expect(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_ESTORE));
    meta_code = 0;
    cr_expect(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_OK));
    risk_policy_free(p);
}

static int count_ev_cb(const risk_event *ev, void *ud)
{
    (void)ev;
    ++*(int *)ud;
    return 0;
}

/* R-IV-1 (librisk.h risk_engine_events: "flags 0 or RISK_EVENTS_ACTIVE") —
 * mutant engine_query.c unknown-flag check dropped (#107): an unknown flag
 * bit is RISK_EINVAL naming flags, and nothing is visited. */
Test(engine_plumbing, events_unknown_flags_are_einval)
{
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    int n = 0;
    cr_expect(eq(int, risk_engine_events(fx, "u", 2u, count_ev_cb, &n), RISK_EINVAL));
    cr_expect(eq(int, n, 0));
    cr_expect(strstr(risk_error_last(), "flags") != NULL, "%s", risk_error_last());
    cr_expect(eq(int, risk_engine_events(fx, "u", RISK_EVENTS_ACTIVE | 0x80000000u, count_ev_cb, &n),
                 RISK_EINVAL));
    cr_expect(eq(int, risk_engine_events(fx, "u", RISK_EVENTS_ACTIVE, count_ev_cb, &n), RISK_OK));
    cr_expect(eq(int, n, 1));
}

/* R-ST-6 / docs/decisions.md ("after max_conflict_retries (default 8, at
 * most 1000) retries the operation fails with RISK_ECONFLICT") — mutants
 * engine.c default retries 8→1 / 8→0 (#21, #22), retry bound off by one
 * (#64 `attempt + 1 >=`, #66 `attempt >`), no retry (#65): with the default,
 * 8 conflicts in a row are retried away (9 commits), a 9th fails. */
Test(engine_plumbing, default_conflict_retries_are_eight)
{
    hs_open(0);
    FWD.conflicts = 8;
    cr_expect(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 0), RISK_OK), "%s",
              risk_error_last());
    cr_expect(eq(int, FWD.commits, 9));
    cr_expect(eq(int, fx_level("u"), RISK_LEVEL_LOW));
    FWD.commits = 0;
    FWD.conflicts = 9;
    cr_expect(eq(int, fx_event("u", "e2", "x", RISK_LEVEL_HIGH, 1), RISK_ECONFLICT));
    cr_expect(eq(int, FWD.commits, 9));
    FWD.conflicts = 0;
    cr_expect(eq(int, fx_level("u"), RISK_LEVEL_LOW)); /* e2 not stored */
}

/* Same for the user-policy changes (engine_policy.c policy_op) — mutants
 * #98 (no retry) and #99 (retries without bound): 2 retries configured,
 * 2 conflicts retried away, a 3rd fails after 3 commits. */
Test(engine_plumbing, policy_change_conflict_retries_are_bounded)
{
    hs_open(2);
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "p", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    FWD.conflicts = 2;
    cr_expect(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_OK), "%s", risk_error_last());
    cr_expect(eq(int, FWD.commits, 3));
    FWD.commits = 0;
    FWD.conflicts = 3;
    cr_expect(eq(int, risk_engine_policy_remove(fx, "admin", "p"), RISK_ECONFLICT));
    cr_expect(eq(int, FWD.commits, 3));
    FWD.conflicts = 0;
    risk_policy_free(p);
}

/* R-OP-8 ("a hook called after commit whenever a user's level or state
 * changes") — mutant engine.c uop_hooks without `b->state != a->state`
 * (#58): an event that arrives already past its aging period puts the
 * user at risk (R-US-1) without raising its level (it no longer counts,
 * R-SC-2): state none → at_risk, level none → none, detail none → none;
 * the hook is called for that change. */
Test(engine_plumbing, op8_state_only_change_calls_the_hook)
{
    fx_user("u", -1, 0);
    fx_now = T0 + 400 * DAY;
    memset(&fx_ch, 0, sizeof fx_ch);
    cr_assert(eq(int, fx_event("u", "old", "x", RISK_LEVEL_LOW, 0), RISK_OK), "%s",
              risk_error_last());
    cr_expect(eq(int, fx_ch.calls, 1));
    cr_expect(eq(int, fx_ch.before, RISK_LEVEL_NONE));
    cr_expect(eq(int, fx_ch.after, RISK_LEVEL_NONE));
    cr_expect(eq(int, fx_ch.state_after, RISK_STATE_AT_RISK));
}

/* R-OP-6 / docs/decisions.md (a host store has no policy count: the
 * engine's own policy changes must drop its cache) — mutant
 * engine_policy.c policy_change without policies_invalidate (#86): on a
 * host store, a sign-in right after this engine set or removed a policy
 * decides under the new policy set. */
Test(engine_plumbing, own_policy_change_drops_the_cache_on_a_host_store)
{
    hs_open(0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 0), RISK_OK));
    cr_assert(eq(int, fx_signin("u", NULL), RISK_DECISION_ALLOW)); /* cache: no policy */
    fx_policy("p", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    cr_expect(eq(int, fx_signin("u", NULL), RISK_DECISION_BLOCK));
    cr_assert(eq(int, risk_engine_policy_remove(fx, "admin", "p"), RISK_OK));
    cr_expect(eq(int, fx_signin("u", NULL), RISK_DECISION_ALLOW));
}

/* R-RC-1 / librisk.h risk_receipt_verify ("RISK_EVERIFY altered, malformed,
 * or another key"; receipt.c: every line a known key, in the fixed order)
 * — mutant receipt.c key check without the length (#134): a receipt whose
 * key is cut short ("user=" for "user_id=", "=" alone) is malformed even
 * when its mac is right for its bytes. */
static const uint8_t gk[32] = { 7, 1, 2, 3 };
static int reseal_verify(const char *r, const char *from, const char *to)
{
    const char *at = strstr(r, from);
    cr_assert_not_null(at);
    char buf[4096];
    size_t head = (size_t)(at - r);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)head, r, to, at + strlen(from));
    char *mac = strstr(buf, "mac=");
    cr_assert_not_null(mac);
    uint8_t m[32];
    risk_hmac_sha256(gk, sizeof gk, buf, (size_t)(mac - buf), m);
    for (int i = 0; i < 32; i++)
        sprintf(mac + 4 + 2 * i, "%02x", m[i]);
    strcpy(mac + 68, "\n");
    return risk_receipt_verify(buf, gk, sizeof gk);
}
Test(engine_plumbing, rc1_malformed_receipts_are_refused)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    o.receipt_key = gk;
    o.receipt_key_len = sizeof gk;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &st, &o), RISK_OK));
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_verdict_want_receipt(v, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(e, "alice", v), RISK_OK), "%s", risk_error_last());
    const char *r = risk_verdict_receipt(v);
    cr_assert_not_null(r);
    cr_assert(eq(int, risk_receipt_verify(r, gk, sizeof gk), RISK_OK));
    cr_assert(eq(int, reseal_verify(r, "\nuser_id=", "\nuser_id="), RISK_OK)); /* the helper itself */
    cr_expect(eq(int, reseal_verify(r, "\nuser_id=", "\nuser="), RISK_EVERIFY));
    cr_expect(eq(int, reseal_verify(r, "\ndecision=", "\n="), RISK_EVERIFY));
    cr_expect(eq(int, reseal_verify(r, "\nlevel=", "\nlev="), RISK_EVERIFY));
    /* a second mac line, right for every byte before it (the first mac
     * line included): malformed, not the one that counts (receipt.c's
     * `&& !mac_line` on the mac key) */
    char two[4096];
    snprintf(two, sizeof two, "%smac=", r);
    size_t before = strlen(two) - 4;
    uint8_t m[32];
    risk_hmac_sha256(gk, sizeof gk, two, before, m);
    for (int i = 0; i < 32; i++)
        sprintf(two + before + 4 + 2 * i, "%02x", m[i]);
    strcat(two, "\n");
    cr_expect(eq(int, risk_receipt_verify(two, gk, sizeof gk), RISK_EVERIFY));
    risk_verdict_free(v);
    risk_engine_free(e);
}

/* R-WI-1 / librisk.h risk_engine_what_if ("RISK_EINVAL … two policies of
 * one name") — mutant whatif.c duplicate scan `j + 1 < i` (#140): two
 * policies of one name next to each other (the only pair of a set of two)
 * are refused. */
Test(engine_plumbing, wi1_two_policies_of_one_name_are_einval)
{
    risk_policy *p[3] = { NULL, NULL, NULL };
    cr_assert(eq(int, risk_policy_new(&p[0], "same", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_policy_new(&p[1], "same", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_policy_new(&p[2], "other", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), RISK_OK));
    risk_what_if *w = NULL;
    cr_expect(eq(int, risk_engine_what_if(&w, fx, (const risk_policy *const *)p, 2, T0), RISK_EINVAL));
    cr_expect(eq(ptr, w, NULL));
    risk_policy *q[3] = { p[2], p[0], p[1] }; /* adjacent at the end */
    cr_expect(eq(int, risk_engine_what_if(&w, fx, (const risk_policy *const *)q, 3, T0), RISK_EINVAL));
    cr_expect(eq(ptr, w, NULL));
    for (int i = 0; i < 3; i++)
        risk_policy_free(p[i]);
}

struct hist_at {
    int n;
    int64_t at[8];
};
static int hist_at_cb(const risk_history *h, void *ud)
{
    struct hist_at *l = ud;
    if (l->n < 8)
        l->at[l->n] = risk_history_at(h);
    l->n++;
    return 0;
}

/* SPEC §2 history item / R-AU-1 (an item records when the operation ran,
 * the engine's now) — mutant engine.c uop_history `h.at = o->now - 1`
 * (#38): every user history item is stamped with the operation's time. */
Test(engine_plumbing, history_items_carry_the_operation_time)
{
    fx_now = T0 + 5 * MINUTE;
    fx_user("u", -1, 0);
    fx_now = T0 + 7 * MINUTE;
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 6), RISK_OK));
    fx_now = T0 + 9 * MINUTE;
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e1", NULL), RISK_OK));
    struct hist_at l = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "u", hist_at_cb, &l), RISK_OK));
    cr_assert(eq(int, l.n, 3));
    cr_expect(eq(i64, l.at[0], T0 + 5 * MINUTE));
    cr_expect(eq(i64, l.at[1], T0 + 7 * MINUTE));
    cr_expect(eq(i64, l.at[2], T0 + 9 * MINUTE));
}

/* R-SC-2 / R-US (risk_updated_at: when aging changed the user, the time the
 * last event it closed aged) — mutant engine.c uop_catch_up keeps the first
 * aged time instead of the latest (#42): two events aging 10 minutes apart,
 * closed by one catch-up: the user changed when the later one aged. */
Test(engine_plumbing, sc2_catch_up_stamps_the_last_aging_time)
{
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e2", "x", RISK_LEVEL_LOW, 10), RISK_OK));
    fx_now = T0 + 400 * DAY;
    uint64_t users = 0, events = 0; /* the sweep: one catch-up per due user */
    cr_assert(eq(int, risk_engine_expire(fx, &users, &events), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(u64, users, 1));
    cr_assert(eq(u64, events, 2));
    risk_user *u = fx_get("u");
    risk_event *e2 = fx_ev("e2");
    cr_expect(eq(int, risk_user_risk_state(u), RISK_STATE_NONE));
    cr_expect(eq(i64, risk_user_risk_updated_at(u), risk_event_closed_at(e2)));
    cr_expect(gt(i64, risk_user_risk_updated_at(u), T0 + 10 * MINUTE));
    risk_event_free(e2);
    risk_user_free(u);
}

/* R-IV-2 (stored bytes are never trusted) — mutant engine_policy.c
 * policy_op without the `hl != 32` check (#93): a policy chain head of the
 * wrong length in the store is RISK_ECORRUPT, and nothing is changed. */
Test(engine_plumbing, iv2_short_policy_chain_head_is_corrupt)
{
    hs_open(0);
    void *t = NULL;
    static const uint8_t five[5] = { 1, 2, 3, 4, 5 };
    cr_assert(eq(int, FWD.in.begin(FWD.in.ctx, NULL, &t), RISK_OK));
    cr_assert(eq(int, FWD.in.put_meta(FWD.in.ctx, t, "chain:policies", five, sizeof five), RISK_OK));
    cr_assert(eq(int, FWD.in.commit(FWD.in.ctx, t), RISK_OK));
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "p", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    cr_expect(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_ECORRUPT));
    risk_policy_free(p);
    cr_expect(eq(int, fx_history_count(NULL), 0));
}

static int count_user_cb(const risk_user *u, void *ud)
{
    (void)u;
    ++*(int *)ud;
    return 0;
}

/* R-IV-1 (enum values out of range → RISK_EINVAL) — mutant engine_query.c
 * risk_engine_users bound `> RISK_LEVEL_HIGH + 1` (#114). The memory store
 * refuses the level itself, which masks the mutant; a host store need not. */
Test(engine_plumbing, iv1_users_min_level_out_of_range)
{
    hs_open(0); /* a host store that does not check min_level itself */
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 0), RISK_OK));
    int n = 0;
    cr_expect(eq(int, risk_engine_users(fx, (risk_level)(RISK_LEVEL_HIGH + 1), count_user_cb, &n),
                 RISK_EINVAL));
    cr_expect(eq(int, n, 0));
    cr_expect(eq(int, risk_engine_users(fx, RISK_LEVEL_HIGH, count_user_cb, &n), RISK_OK));
    cr_expect(eq(int, n, 1));
}

/* R-WI-1 accessors (librisk.h: out of range → 0 / NULL) — mutants whatif.c
 * risk_what_if_count `decision > N_DECISIONS` (#143) and risk_what_if_user
 * `i > count` (#144): decision 3 counts nothing, and the i-th user of a
 * bucket of i users is NULL. */
Test(engine_plumbing, wi1_accessors_out_of_range)
{
    fx_user("a", -1, 0);
    risk_what_if *w = NULL;
    cr_assert(eq(int, risk_engine_what_if(&w, fx, NULL, 0, T0), RISK_OK));
    cr_assert(eq(sz, risk_what_if_count(w, RISK_DECISION_ALLOW, RISK_REASON_NONE), 1));
    cr_expect(eq(sz, risk_what_if_count(w, (risk_decision)3, RISK_REASON_NONE), 0));
    cr_expect(eq(ptr, (void *)risk_what_if_user(w, (risk_decision)3, RISK_REASON_NONE, 0), NULL));
    cr_expect(eq(ptr, (void *)risk_what_if_user(w, RISK_DECISION_ALLOW, RISK_REASON_NONE, 1), NULL));
    cr_expect(eq(ptr, (void *)risk_what_if_user(w, RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, 0),
                 NULL));
    risk_what_if_free(w);
}

