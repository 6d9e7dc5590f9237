/* Rules at their edges, one test each, written where a mutation of the
 * library was
 * caught by no test naming its rule: the incremental ingest's floor and
 * risk_since, the details that make a detection "the same", flags that
 * dismiss and upsert must leave alone, the actor of bulk closings and
 * policy changes, hooks after failed operations, a reused verdict after a
 * store failure, the R-EV-7 boundary. Each fails on its mutant. */
/* The shared fixture's helpers this program does not use are fine. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "engine_fixture.h"

#include <stdio.h>

TestSuite(rules, .init = fx_open, .fini = fx_close);

/* R-PO-11: MFA registered between the first and a later event does not
 * count (earliest active event), through the ordinary incremental ingest. */
Test(rules, po11_earliest_event_incremental)
{
    fx_policy("p", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("u", 10, 0); /* MFA at T0+10 min */
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 5), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e2", "x", RISK_LEVEL_LOW, 20), RISK_OK));
    risk_reason r;
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_BLOCK));
    cr_assert(eq(int, r, RISK_REASON_MFA_REGISTERED_DURING_RISK));
}

/* R-EV-7 boundary: detected exactly at the remediation → not reactivatable. */
Test(rules, ev7_at_remediation_time)
{
    fx_user("u", 0, 0);
    fx_now = T0 + 10 * MINUTE;
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_LOW, 10), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e", NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_SECURE_CHANGE), RISK_OK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e", NULL), RISK_ETRANSITION));
}

/* R-DI-1: dismiss leaves the password flags as they were. */
Test(rules, di1_flags_untouched)
{
    fx_user("u", 0, 0);
    char pw[32];
    cr_assert(eq(int, risk_engine_require_reset(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
    cr_assert(eq(int, risk_engine_require_reset(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "u", NULL, NULL), RISK_OK));
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_must_change_password(u), 1));
    cr_assert(eq(int, risk_user_reset_required(u), 1));
    risk_user_free(u);
}

/* R-DI-4: a failure in the middle does not stop the later users. */
Test(rules, di4_later_users_processed)
{
    fx_user("a", 0, 0);
    fx_user("b", 0, 0);
    cr_assert(eq(int, fx_event("b", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    const char *ids[] = { "a", "missing", "b" };
    int res[3];
    uint32_t closed[3];
    cr_assert(eq(int, risk_engine_dismiss_bulk(fx, "admin", ids, 3, NULL, res, closed), 1));
    cr_assert(eq(u32, closed[2], 1));
    cr_assert(eq(int, fx_state("b"), RISK_STATE_DISMISSED));
}

/* R-SC-4: the floor through the engine's incremental ingest (custom weights
 * where one high event alone would not reach high by score). */
static void open_flat(void)
{
    static risk_scoring sc;
    risk_scoring_init(&sc);
    sc.weight_low = sc.weight_medium = sc.weight_high = 1;
    fx_open_with(&sc, 0);
}
Test(rules_flat, sc4_floor_incremental, .init = open_flat, .fini = fx_close)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_risk_level(u), RISK_LEVEL_HIGH)); /* stored level */
    risk_user_free(u);
    cr_assert(eq(int, fx_event("u", "e2", "x", RISK_LEVEL_LOW, 2), RISK_OK));
    u = fx_get("u");
    cr_assert(eq(int, risk_user_risk_level(u), RISK_LEVEL_HIGH));
    risk_user_free(u);
}

/* R-OP-1/R-OP-7: a changed ip/location/source under a taken id is not "the same event". */
Test(rules, op1_details_differ)
{
    fx_user("u", 0, 0);
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e1", "u", "x", RISK_LEVEL_LOW, T0), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "d", ev, 0), RISK_OK));
    cr_assert(eq(int, risk_event_set_ip(ev, "10.0.0.1"), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "d", ev, 0), RISK_EEXISTS));
    cr_assert(eq(int, risk_engine_ingest(fx, "d", ev, RISK_INGEST_UPDATE), RISK_OK));
    risk_event *got = fx_ev("e1");
    cr_assert_not_null(risk_event_ip(got));
    cr_assert(eq(str, (char *)risk_event_ip(got), "10.0.0.1"));
    risk_event_free(got);
    risk_event_free(ev);
}

/* R-OP-4: upsert does not change the password flags (derived/ops-owned). */
Test(rules, op4_upsert_keeps_flags)
{
    fx_user("u", 0, 0);
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
    fx_user("u", 0, 0); /* re-sync from the directory */
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_must_change_password(u), 1));
    risk_user_free(u);
}

/* R-OP-8: a change of state alone (level unchanged) calls the hook. */
Test(rules, op8_state_only_change)
{
    fx_user("u", 0, 0);
    int calls = fx_ch.calls;
    cr_assert(eq(int, risk_engine_confirm_safe(fx, "admin", "u"), RISK_OK)); /* none -> confirmed_safe */
    cr_assert(eq(int, fx_ch.calls, calls + 1));
    cr_assert(eq(int, fx_ch.state_after, RISK_STATE_CONFIRMED_SAFE));
}

/* R-EV-2: ignore with an empty note is EINVAL. */
Test(rules, ev2_ignore_empty_note)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_ignore(fx, "admin", "e", ""), RISK_EINVAL));
    cr_assert(eq(int, fx_evstate("e"), RISK_EVENT_ACTIVE));
}

/* R-OP-0: an event closed by dismiss-all or a remediation records the actor. */
Test(rules, op0_closed_by_for_bulk_closings)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_dismiss(fx, "alice-admin", "u", NULL, NULL), RISK_OK));
    risk_event *ev = fx_ev("e1");
    cr_assert(eq(str, (char *)risk_event_closed_by(ev), "alice-admin"));
    risk_event_free(ev);
}

/* R-OP-6: a policy change's history item names the actor. */
static int last_actor(const risk_history *h, void *ud)
{
    snprintf(ud, 64, "%s", risk_history_actor(h));
    return 0;
}
Test(rules, op6_policy_history_actor)
{
    fx_policy("p1", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    char actor[64] = "";
    cr_assert(eq(int, risk_engine_history_feed(fx, 0, last_actor, actor), RISK_OK));
    cr_assert(eq(str, actor, "admin"));
}

/* R-IN-2 / R-OP-8: hooks run only after a commit; a failed operation calls none. */
static risk_store inner;
static int fail_append;
static int failing_append(void *ctx, void *txn, const risk_history *h)
{
    return fail_append ? RISK_EIO : inner.append_history(ctx, txn, h);
}
Test(rules_failing_store, in2_no_hook_on_failed_op, .fini = fx_close)
{
    cr_assert(eq(int, risk_memory_store_new(&inner), RISK_OK));
    risk_store st = inner;
    st.append_history = failing_append;
    fx_open_on(&st, NULL, 0, 0);
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    int calls = fx_ch.calls;
    fail_append = 1;
    cr_assert(risk_engine_false_positive(fx, "admin", "e1", NULL) != RISK_OK);
    fail_append = 0;
    cr_assert(eq(int, fx_fb.calls, 0));
    cr_assert(eq(int, fx_ch.calls, calls));
}

/* R-PO-9: a reused verdict that said allow says block after a store failure. */
static int fail_view;
static int failing_view(void *ctx, const char *id, risk_user_visit_fn visit, void *arg)
{
    return fail_view ? RISK_EIO : inner.view_user(ctx, id, visit, arg);
}
static int failing_get_user(void *ctx, void *txn, const char *id, risk_user **out)
{
    return fail_view ? RISK_EIO : inner.get_user(ctx, txn, id, out);
}
Test(rules_failing_store, po9_reused_verdict_fails_closed, .fini = fx_close)
{
    fx_now = T0;
    cr_assert(eq(int, risk_memory_store_new(&inner), RISK_OK));
    risk_store st = inner;
    if (st.view_user)
        st.view_user = failing_view;
    st.get_user = failing_get_user;
    cr_assert(eq(int, risk_engine_new(&fx, &st, NULL), RISK_OK));
    fx_user("u", 0, 0);
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(fx, "u", v), RISK_OK));
    cr_assert(eq(int, risk_verdict_decision(v), RISK_DECISION_ALLOW));
    fail_view = 1;
    int rc = risk_engine_sign_in(fx, "u", v);
    fail_view = 0;
    cr_assert(rc != RISK_OK);
    cr_assert(eq(int, risk_verdict_decision(v), RISK_DECISION_BLOCK));
    cr_assert(eq(int, risk_verdict_reason(v), RISK_REASON_STORE_ERROR));
    risk_verdict_free(v);
}
