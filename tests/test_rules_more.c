/* Rules at their edges, second round (as tests/test_rules.c): one test per
 * library mutant that a second mutation audit found no test catching, each
 * naming its rule. Each passes on the library and failed on its mutant. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "engine_fixture.h"
#include "internal.h" /* risk_policy fields, as tests/test_policy.c */

#include <stdio.h>
#include <stdlib.h>

TestSuite(rules_more, .init = fx_open, .fini = fx_close);

/* One history item's fields, and a walk's last two items and count. */
struct item {
    risk_history_action action;
    char event_id[32];
    risk_level level_before, level_after;
    risk_state state_before, state_after;
    uint32_t changed;
};
struct last_item {
    int n;
    struct item it, prev; /* the last item, and the one before it */
};
static int last_item_cb(const risk_history *h, void *ud)
{
    struct last_item *l = ud;
    const char *ev = risk_history_event_id(h);
    l->n++;
    l->prev = l->it;
    l->it.action = risk_history_action_get(h);
    snprintf(l->it.event_id, sizeof l->it.event_id, "%s", ev ? ev : "");
    l->it.level_before = risk_history_level_before(h);
    l->it.level_after = risk_history_level_after(h);
    l->it.state_before = risk_history_state_before(h);
    l->it.state_after = risk_history_state_after(h);
    l->it.changed = risk_history_changed(h);
    return 0;
}

/* R-PO-11 / R-OP-4 (mutant upsert_explicit_time_ignored): a host that upserts
 * an already registered user with an explicit registration time sets it
 * (SPEC §2: "set by the host"); a corrected earlier time makes MFA count. */
Test(rules_more, po11_upsert_corrects_registration_time)
{
    fx_policy("p", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("u", 10, 0); /* MFA at T0+10 min */
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 5), RISK_OK));
    risk_reason r;
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_BLOCK));
    cr_assert(eq(int, r, RISK_REASON_MFA_REGISTERED_DURING_RISK));
    fx_user("u", 0, 0); /* the host corrects it: registered at T0 */
    risk_user *u = fx_get("u");
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), T0));
    risk_user_free(u);
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, r, RISK_REASON_RISK_LEVEL));
}

/* R-OP-4 / R-PO-11 (mutant upsert_unreg_keeps_time): a user upserted as not
 * registered has no registration time. */
Test(rules_more, op4_unregister_clears_registration_time)
{
    fx_user("u", 10, 0);
    fx_user("u", -1, 0);
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_mfa_registered(u), 0));
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), RISK_TIME_NONE));
    risk_user_free(u);
}

/* R-SC-2 boundary on the incremental ingest (mutant ingest_incr_aged_boundary):
 * an event arriving with detected_at + period == now is aged already and
 * never counts: the ingest's history item and the hook see level none. */
Test(rules_more, sc2_arrives_exactly_aged)
{
    fx_user("u", -1, 0);
    fx_now = T0 + 180 * DAY;
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    struct last_item l = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "u", last_item_cb, &l), RISK_OK));
    cr_assert(eq(int, l.it.action, RISK_HISTORY_INGEST));
    cr_assert(eq(int, l.it.level_after, RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_ch.after, RISK_LEVEL_NONE));
}

/* R-EV-7 / R-PW-1 (mutant temp_pw_no_remediated_at): a temporary password is
 * a remediation: it sets remediated_at, and an event resolved before it
 * cannot be reactivated. */
Test(rules_more, ev7_temporary_password_is_remediation)
{
    fx_user("u", -1, 0);
    fx_now = T0 + 10 * MINUTE;
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_LOW, 5), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e", NULL), RISK_OK));
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
    risk_user *u = fx_get("u");
    cr_assert(eq(i64, risk_user_remediated_at(u), T0 + 10 * MINUTE));
    risk_user_free(u);
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e", NULL), RISK_ETRANSITION));
    cr_assert(eq(int, fx_evstate("e"), RISK_EVENT_CLOSED));
}

/* R-PW-1 / R-PO-7 (mutant temp_pw_keeps_reset_required; docs/decisions.md "A
 * temporary password clears reset_required"): after the temporary password
 * and the user's own (insecure) change, nothing is left to require. */
Test(rules_more, pw1_temporary_password_clears_reset_required)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, risk_engine_require_reset(fx, "admin", "u"), RISK_OK));
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_reset_required(u), 0));
    risk_user_free(u);
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_INSECURE), RISK_OK));
    risk_reason r;
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_ALLOW));
    cr_assert(eq(int, r, RISK_REASON_NONE));
}

/* R-SC-5 / R-US-3 (mutant compromised_no_dedupe): confirming a user
 * compromised again adds no second admin event; the item records 0 changed. */
Test(rules_more, sc5_confirm_compromised_twice_one_event)
{
    fx_user("u", -1, 0);
    cr_assert(eq(int, risk_engine_confirm_compromised(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, risk_engine_confirm_compromised(fx, "admin", "u"), RISK_OK));
    risk_user *u = fx_get("u");
    cr_assert(eq(u32, risk_user_active_events(u), 1));
    cr_assert(eq(u64, risk_user_score(u), 9));
    risk_user_free(u);
    struct last_item l = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "u", last_item_cb, &l), RISK_OK));
    cr_assert(eq(int, l.it.action, RISK_HISTORY_CONFIRM_COMPROMISED));
    cr_assert(eq(u32, l.it.changed, 0));
}

/* R-SC-2 (mutant aged_closed_at_now; docs/decisions.md "closed_at of an aged
 * event is detected_at + period"): the catch-up that runs late still dates
 * the closing when the event aged, as system. */
Test(rules_more, sc2_aged_closed_at_is_when_it_aged)
{
    fx_user("u", -1, 0);
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    fx_now = T0 + 200 * DAY;
    uint32_t closed = 0;
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "u", NULL, &closed), RISK_OK));
    cr_assert(eq(u32, closed, 0)); /* the catch-up closed it first */
    risk_event *ev = fx_ev("e");
    cr_assert(eq(int, risk_event_close_reason(ev), RISK_CLOSE_AGED));
    cr_assert(eq(i64, risk_event_closed_at(ev), T0 + 180 * DAY));
    cr_assert(eq(str, (char *)risk_event_closed_by(ev), "system"));
    risk_event_free(ev);
}

/* R-IV-1 / §7 (mutants opts_temp_len_min, opts_temp_len_max, opts_key_len,
 * opts_retries_max): engine options just outside their documented ranges
 * (temp_password_length 12–128, receipt_key_len ≥ 16, at most 1000
 * conflict retries) are RISK_EINVAL; the bounds themselves are accepted. */
/* An engine over a fresh memory store with options o: its result (the
 * engine, if made, is freed; the store too if it was refused). */
static int engine_new_with(const risk_engine_options *o)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    risk_engine *e = NULL;
    int rc = risk_engine_new(&e, &st, o);
    if (rc == RISK_OK)
        risk_engine_free(e);
    else if (st.close)
        st.close(st.ctx);
    return rc;
}

static int try_opts(uint32_t pwlen, size_t keylen, uint32_t retries)
{
    static const uint8_t key[64] = { 1 };
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.temp_password_length = pwlen;
    o.receipt_key = keylen ? key : NULL;
    o.receipt_key_len = keylen;
    o.max_conflict_retries = retries;
    return engine_new_with(&o);
}
Test(rules_more, iv1_engine_option_bounds)
{
    cr_assert(eq(int, try_opts(12, 0, 0), RISK_OK));
    cr_assert(eq(int, try_opts(11, 0, 0), RISK_EINVAL));
    cr_assert(eq(int, try_opts(128, 0, 0), RISK_OK));
    cr_assert(eq(int, try_opts(129, 0, 0), RISK_EINVAL));
    cr_assert(eq(int, try_opts(0, 16, 0), RISK_OK));
    cr_assert(eq(int, try_opts(0, 15, 0), RISK_EINVAL));
    cr_assert(eq(int, try_opts(0, 0, 1000), RISK_OK));
    cr_assert(eq(int, try_opts(0, 0, 1001), RISK_EINVAL));
}

/* ---- what-if, receipts, anchors (SPEC §10) ---- */

static risk_policy *mk_policy(const char *name, risk_level t, risk_control c)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, name, t, c), RISK_OK));
    return p;
}

/* R-WI-2 boundary (mutant wi_due_strict): at exactly detected_at + period
 * the event has aged (R-SC-2): the what-if predicts what a sign-in at that
 * time decides, allow. */
Test(rules_more, wi2_what_if_at_exact_aging_time)
{
    fx_user("u", -1, 0);
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    risk_policy *p = mk_policy("block-low", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK);
    int64_t at = T0 + 180 * DAY;
    risk_what_if *w = NULL;
    cr_assert(eq(int, risk_engine_what_if(&w, fx, (const risk_policy *const *)&p, 1, at), RISK_OK));
    cr_assert(eq(sz, risk_what_if_count(w, RISK_DECISION_ALLOW, RISK_REASON_NONE), 1));
    cr_assert(eq(sz, risk_what_if_count(w, RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL), 0));
    risk_what_if_free(w);
    /* and reality agrees */
    cr_assert(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_OK));
    risk_policy_free(p);
    fx_now = at;
    cr_assert(eq(int, fx_signin("u", NULL), RISK_DECISION_ALLOW));
}

/* R-WI-1 (mutant wi_no_sort): each bucket's users are paged by id
 * (librisk.h: "the i-th user (by id)"), whatever the store's listing order
 * (highest level first). */
Test(rules_more, wi1_users_paged_by_id)
{
    fx_user("a", -1, 0);
    fx_user("b", -1, 0);
    cr_assert(eq(int, fx_event("a", "ea", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    cr_assert(eq(int, fx_event("b", "eb", "x", RISK_LEVEL_HIGH, 0), RISK_OK));
    risk_policy *p = mk_policy("block-low", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK);
    risk_what_if *w = NULL;
    cr_assert(eq(int, risk_engine_what_if(&w, fx, (const risk_policy *const *)&p, 1, T0), RISK_OK));
    cr_assert(eq(sz, risk_what_if_count(w, RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL), 2));
    cr_assert(eq(str, (char *)risk_what_if_user(w, RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, 0), "a"));
    cr_assert(eq(str, (char *)risk_what_if_user(w, RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, 1), "b"));
    risk_what_if_free(w);
    risk_policy_free(p);
}

static const uint8_t rc_key[32] = "0123456789abcdef0123456789abcdef";
static risk_store ro_inner;
static int ro_on;
static int ro_put_user(void *ctx, void *txn, const risk_user *u)
{
    return ro_on ? RISK_EREADONLY : ro_inner.put_user(ctx, txn, u);
}

static risk_engine *rc_engine(int readonly_wrapper)
{
    risk_store st;
    fx_now = T0;
    ro_on = 0;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    ro_inner = st;
    if (readonly_wrapper)
        st.put_user = ro_put_user;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    o.receipt_key = rc_key;
    o.receipt_key_len = sizeof rc_key;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &st, &o), RISK_OK), "%s", risk_error_last());
    return e;
}

/* R-RC-1 boundary (mutant rc_aged_boundary): on a store that cannot write
 * the aging catch-up, a sign-in at exactly detected_at + period decides on
 * the aged view (R-SC-2); its receipt names no event: the one past its
 * period did not count. */
Test(rules_more, rc1_receipt_omits_event_aged_at_decision_time)
{
    risk_engine *e = rc_engine(1);
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e", "u", "x", RISK_LEVEL_LOW, T0), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(e, "detector", ev, 0), RISK_OK));
    risk_event_free(ev);
    ro_on = 1;
    fx_now = T0 + 180 * DAY;
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_verdict_want_receipt(v, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(e, "u", v), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, risk_verdict_level(v), RISK_LEVEL_NONE));
    const char *r = risk_verdict_receipt(v);
    cr_assert_not_null(r);
    cr_assert_null(strstr(r, "\nevent="), "%s", r);
    cr_assert(eq(int, risk_receipt_verify(r, rc_key, sizeof rc_key), RISK_OK));
    risk_verdict_free(v);
    risk_engine_free(e);
}

/* R-RC-1 (mutant rc_mac_len_unchecked): a receipt altered after its mac
 * (a character appended to the mac line) fails verification. */
Test(rules_more, rc1_altered_mac_line_fails)
{
    risk_engine *e = rc_engine(0);
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_verdict_want_receipt(v, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(e, "u", v), RISK_OK));
    const char *r = risk_verdict_receipt(v);
    cr_assert(eq(int, risk_receipt_verify(r, rc_key, sizeof rc_key), RISK_OK));
    size_t n = strlen(r);
    char *copy = malloc(n + 2);
    memcpy(copy, r, n - 1); /* without the final newline */
    memcpy(copy + n - 1, "0\n", 3);
    cr_assert(eq(int, risk_receipt_verify(copy, rc_key, sizeof rc_key), RISK_EVERIFY));
    free(copy);
    risk_verdict_free(v);
    risk_engine_free(e);
}

/* R-IV-1 (mutant rc_want_2): want is 0 or 1; anything else is EINVAL. */
Test(rules_more, iv1_want_receipt_range)
{
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_verdict_want_receipt(v, 2), RISK_EINVAL));
    cr_assert(eq(int, risk_verdict_want_receipt(v, -1), RISK_EINVAL));
    risk_verdict_free(v);
}

/* R-AU-3 (mutants au_anchor_subjects, au_anchor_lastseq): an anchor that
 * does not describe the history fails verification: one claiming more
 * chains than the history has, or items past its end. */
Test(rules_more, au3_anchor_fields_checked)
{
    fx_user("a", -1, 0);
    fx_user("b", -1, 0);
    cr_assert(eq(int, fx_event("a", "e", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    risk_anchor a;
    cr_assert(eq(int, risk_engine_history_anchor(fx, &a), RISK_OK));
    uint64_t bad = 0;
    cr_assert(eq(int, risk_engine_verify_history(fx, &a, &bad), RISK_OK));
    risk_anchor more = a;
    more.subjects++;
    cr_assert(eq(int, risk_engine_verify_history(fx, &more, &bad), RISK_EVERIFY));
    risk_anchor ahead = a;
    ahead.seq += 5;
    cr_assert(eq(int, risk_engine_verify_history(fx, &ahead, &bad), RISK_EVERIFY));
}

/* R-OP-1 / R-OP-7 (mutant ingest_update_other_user2): the update flag only
 * updates a detection of the same user; an id taken by another user's event
 * is RISK_EEXISTS even with the flag, and that event is untouched. */
Test(rules_more, op7_update_flag_other_user_is_eexists)
{
    fx_user("a", -1, 0);
    fx_user("b", -1, 0);
    cr_assert(eq(int, fx_event("a", "e", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e", "b", "x", RISK_LEVEL_HIGH, T0), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "detector", ev, RISK_INGEST_UPDATE), RISK_EEXISTS));
    risk_event_free(ev);
    risk_event *got = fx_ev("e");
    cr_assert(eq(str, (char *)risk_event_user_id(got), "a"));
    cr_assert(eq(int, risk_event_level(got), RISK_LEVEL_LOW));
    risk_event_free(got);
    cr_assert(eq(int, fx_level("b"), RISK_LEVEL_NONE));
}

/* R-IV-1 (mutant bulk_ingest_flags_unchecked): the bulk ingest checks its
 * flags like the single one, even with nothing to ingest. */
Test(rules_more, iv1_bulk_ingest_unknown_flags)
{
    int res[1];
    cr_assert(eq(int, risk_engine_ingest_bulk(fx, "detector", NULL, 0, 0x4, res), RISK_EINVAL));
    cr_assert(eq(int, fx_history_count(NULL), 0));
}

/* §2 risk_updated_at (mutant put_user_no_state_stamp): a change of state
 * alone (an event already past its period arrives for a known user: none →
 * at_risk, level and detail stay none; R-US-1, R-SC-2) is a change:
 * risk_updated_at is its time, not the aging's. */
Test(rules_more, us1_state_only_change_stamps_updated_at)
{
    fx_user("u", -1, 0);
    fx_now = T0 + 200 * DAY;
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_risk_level(u), RISK_LEVEL_NONE));
    cr_assert(eq(i64, risk_user_risk_updated_at(u), T0 + 200 * DAY));
    risk_user_free(u);
}

/* R-IV-1 (mutants opts_refuse_2, opts_key_null_len): refuse_unknown_users
 * is 0 or 1; a receipt key length without a key is EINVAL. */
static int try_opts2(uint32_t refuse, size_t keylen_without_key)
{
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.refuse_unknown_users = refuse;
    o.receipt_key = NULL;
    o.receipt_key_len = keylen_without_key;
    return engine_new_with(&o);
}
Test(rules_more, iv1_engine_option_flags)
{
    cr_assert(eq(int, try_opts2(1, 0), RISK_OK));
    cr_assert(eq(int, try_opts2(2, 0), RISK_EINVAL));
    cr_assert(eq(int, try_opts2(0, 16), RISK_EINVAL));
}

/* R-PO-9 / R-IV-1 (mutant signin_badid_no_failclosed): a sign-in refused
 * for a bad user id leaves a reused verdict at block, not its last allow. */
Test(rules_more, po9_bad_id_verdict_fails_closed)
{
    risk_reason r;
    cr_assert(eq(int, fx_signin("nobody", &r), RISK_DECISION_ALLOW));
    cr_assert(eq(int, risk_engine_sign_in(fx, "", fx_verdict), RISK_EINVAL));
    cr_assert(eq(int, risk_verdict_decision(fx_verdict), RISK_DECISION_BLOCK));
    cr_assert(eq(int, risk_verdict_reason(fx_verdict), RISK_REASON_STORE_ERROR));
}

/* R-IV-1 (mutants pol_check_control_range, pol_check_mode_range): the pure
 * decision refuses a policy whose control or mode is just past its range. */
Test(rules_more, iv1_decide_policy_enum_bounds)
{
    risk_policy *p = mk_policy("p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK);
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, "u"), RISK_OK));
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    const risk_policy *const *ps = (const risk_policy *const *)&p;
    cr_assert(eq(int, risk_decide(v, ps, 1, u, RISK_LEVEL_LOW, T0), RISK_OK));
    p->control = RISK_CONTROL_BLOCK + 1;
    cr_assert(eq(int, risk_decide(v, ps, 1, u, RISK_LEVEL_LOW, T0), RISK_EINVAL));
    p->control = RISK_CONTROL_BLOCK;
    p->mode = RISK_MODE_REPORT_ONLY + 1;
    cr_assert(eq(int, risk_decide(v, ps, 1, u, RISK_LEVEL_LOW, T0), RISK_EINVAL));
    cr_assert(eq(int, risk_verdict_decision(v), RISK_DECISION_BLOCK));
    risk_verdict_free(v);
    risk_user_free(u);
    risk_policy_free(p);
}


/* R-OP-6 (mutant policy_remove_missing_ok): removing a policy that does
 * not exist is RISK_ENOTFOUND and writes no history item, whatever the
 * store's remove does with a missing name (here: an idempotent delete). */
static risk_store idem_inner;
static int idem_remove_policy(void *ctx, void *txn, const char *name)
{
    int rc = idem_inner.remove_policy(ctx, txn, name);
    return rc == RISK_ENOTFOUND ? RISK_OK : rc;
}
Test(rules_more, op6_remove_missing_policy_idempotent_store)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    idem_inner = st;
    st.remove_policy = idem_remove_policy;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &st, NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_remove(e, "admin", "nope"), RISK_ENOTFOUND));
    int n = 0;
    cr_assert(eq(int, risk_engine_history_feed(e, 0, fx_hist_count_cb, &n), RISK_OK));
    cr_assert(eq(int, n, 0));
    risk_engine_free(e);
}

/* R-IV-1 / R-SC-1 (mutant sc_check_detected_max): the pure scoring refuses
 * an event time at 2^53 (the range is 0 <= t < 2^53). */
Test(rules_more, iv1_score_detected_at_bound)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e", "u", "x", RISK_LEVEL_LOW, T0), RISK_OK));
    const risk_event *const evs[1] = { ev };
    risk_score_result r;
    ev->detected_at = RISK_TIME_MAX - 1;
    cr_assert(eq(int, risk_score(&r, NULL, evs, 1, T0), RISK_OK));
    ev->detected_at = RISK_TIME_MAX;
    cr_assert(eq(int, risk_score(&r, NULL, evs, 1, T0), RISK_EINVAL));
    risk_event_free(ev);
}

/* R-DI-4 (mutant dismiss_bulk_closed_unset): the per-user result includes
 * the count for every user, 0 for one that failed or had nothing active. */
Test(rules_more, di4_bulk_counts_every_user)
{
    fx_user("a", -1, 0);
    const char *ids[] = { "missing", "a" };
    int res[2] = { 99, 99 };
    uint32_t closed[2] = { 77, 77 };
    cr_assert(eq(int, risk_engine_dismiss_bulk(fx, "admin", ids, 2, NULL, res, closed), 1));
    cr_assert(eq(int, res[0], RISK_ENOTFOUND));
    cr_assert(eq(int, res[1], RISK_OK));
    cr_assert(eq(u32, closed[0], 0));
    cr_assert(eq(u32, closed[1], 0));
}

/* R-IV-1 (review, 2026-12-07): a sign-in asking for a receipt of an engine
 * without a receipt key is RISK_EINVAL before anything is written; it was
 * refused only after the aging catch-up had committed. The fixture's
 * engine has no key. */
Test(rules_more, iv1_receipt_without_key_writes_nothing)
{
    fx_user("u", -1, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    fx_now = T0 + 181 * DAY; /* the low event's aging is due */
    struct last_item before = { 0 }, after = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "u", last_item_cb, &before), RISK_OK));
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_verdict_want_receipt(v, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(fx, "u", v), RISK_EINVAL));
    cr_assert(eq(int, risk_verdict_decision(v), RISK_DECISION_BLOCK)); /* R-PO-9 */
    const char *ids[] = { "u" };
    risk_verdict *vs[] = { v };
    int res[1] = { 0 };
    cr_assert(eq(int, risk_engine_sign_in_bulk(fx, ids, 1, vs, res), 1));
    cr_assert(eq(int, res[0], RISK_EINVAL));
    risk_verdict_free(v);
    cr_assert(eq(int, risk_engine_history(fx, "u", last_item_cb, &after), RISK_OK));
    cr_assert(eq(int, after.n, before.n)); /* no aging item was committed */
    cr_assert(eq(int, after.it.action, RISK_HISTORY_INGEST));
}

static int count_event(const risk_event *ev, void *ud)
{
    (void)ev;
    ++*(int *)ud;
    return 0;
}

/* R-IV-1 (review, 2026-12-07): a call that succeeds leaves no failure's
 * message: listing an unknown user's events (nothing to visit) set
 * RISK_ENOTFOUND as the thread's last error. */
Test(rules_more, iv1_success_on_unknown_user_sets_no_error)
{
    int n = 0;
    risk_error_clear();
    cr_assert(eq(int, risk_engine_events(fx, "nobody", 0, count_event, &n), RISK_OK));
    cr_assert(eq(int, n, 0));
    cr_assert(eq(int, risk_error_last_code(), RISK_OK), "%s", risk_error_last());
    struct last_item l = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "nobody", last_item_cb, &l), RISK_OK));
    cr_assert(eq(int, l.n, 0));
    cr_assert(eq(int, risk_error_last_code(), RISK_OK), "%s", risk_error_last());
    risk_reason r;
    cr_assert(eq(int, fx_signin("nobody", &r), RISK_DECISION_ALLOW)); /* R-PO-8 */
    cr_assert(eq(int, risk_error_last_code(), RISK_OK), "%s", risk_error_last());
}

/* R-IV-1 (review, 2026-12-07): a policy list is bounded where it is built;
 * a list one past what the encoding holds was accepted, then installed by
 * the memory store and refused by the journal. */
Test(rules_more, iv1_policy_list_bounded_at_add)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "big", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), RISK_OK));
    char id[16];
    for (unsigned i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "%08u", i);
        cr_assert(eq(int, risk_policy_exclude_add(p, id), RISK_OK));
    }
    cr_assert(eq(int, risk_policy_exclude_add(p, "x-one-more"), RISK_EINVAL));
    cr_assert(eq(int, risk_policy_exclude_add(p, "00000007"), RISK_OK)); /* present: no-op */
    cr_assert(eq(int, risk_policy_include_add(p, "x"), RISK_OK)); /* the other list */
    size_t len = 0;
    cr_assert(eq(int, risk_policy_encode(NULL, 0, &len, p), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_OK));
    risk_policy_free(p);
}

struct age_order {
    char ids[16][16];
    int n;
};
static int age_order_cb(const risk_history *h, void *ud)
{
    struct age_order *a = ud;
    if (risk_history_action_get(h) == RISK_HISTORY_AGE && a->n < 16)
        snprintf(a->ids[a->n++], sizeof a->ids[0], "%s", risk_history_user_id(h));
    return 0;
}

/* R-SC-2 / R-AU-1 (review, 2026-12-07): expire catches users up in id
 * order, whatever order the store lists them in (the memory store lists
 * by hash), so the same operations give the same history, seqs and
 * chains on every store. */
Test(rules_more, sc2_expire_in_user_id_order)
{
    static const char *const ids[] = { "u9", "u3", "u7", "u1", "u5", "u0", "u8", "u2", "u6",
                                       "u4", "ua", "uf", "ub", "ue", "uc", "ud" };
    char ev[16];
    for (int i = 0; i < 16; i++) {
        snprintf(ev, sizeof ev, "e-%s", ids[i]);
        cr_assert(eq(int, fx_event(ids[i], ev, "x", RISK_LEVEL_LOW, 0), RISK_OK));
    }
    fx_now = T0 + 200 * DAY;
    uint64_t users = 0, events = 0;
    cr_assert(eq(int, risk_engine_expire(fx, &users, &events), RISK_OK));
    cr_assert(eq(u64, users, 16));
    struct age_order a = { .n = 0 };
    cr_assert(eq(int, risk_engine_history_feed(fx, 0, age_order_cb, &a), RISK_OK));
    cr_assert(eq(int, a.n, 16));
    for (int i = 1; i < a.n; i++)
        cr_assert(lt(str, a.ids[i - 1], a.ids[i]), "age items: %s before %s", a.ids[i - 1],
                  a.ids[i]);
}

/* ---- found by mutation testing (2026-12-07): each fails on a mutant
 * of the decision core that the suites above let through ---- */

/* R-SC-7: only "zero weights for all levels" is invalid. A scoring where
 * only medium events weigh anything is valid and scores. */
Test(rules_more_pure, sc7_only_medium_weight_is_valid)
{
    risk_scoring sc;
    cr_assert(eq(int, risk_scoring_init(&sc), RISK_OK));
    sc.weight_low = 0;
    sc.weight_medium = 3;
    sc.weight_high = 0;
    cr_assert(eq(int, risk_scoring_check(&sc), RISK_OK), "%s", risk_error_last());
    risk_event *e = NULL;
    cr_assert(eq(int, risk_event_new(&e, "e1", "u", "x", RISK_LEVEL_MEDIUM, T0), RISK_OK));
    risk_score_result r;
    const risk_event *evs[] = { e };
    cr_assert(eq(int, risk_score(&r, &sc, evs, 1, T0 + MINUTE), RISK_OK), "%s",
              risk_error_last());
    cr_assert(eq(u64, r.score, 3));
    cr_assert(eq(int, (int)r.level, RISK_LEVEL_MEDIUM));
    risk_event_free(e);
}

/* R-IN-2: reactivating a false-positive event calls the feedback hook with
 * the feedback withdrawn, for that event; reactivating a resolved event
 * (no feedback was given) calls nothing. */
Test(rules_more, in2_withdraw_only_for_false_positive)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "res", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, fx_event("u", "fp", "x", RISK_LEVEL_LOW, 2), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "res", NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_false_positive(fx, "admin", "fp", NULL), RISK_OK));
    cr_assert(eq(int, fx_fb.calls, 1));
    cr_assert(eq(int, fx_fb.withdrawn_calls, 0));

    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "res", NULL), RISK_OK));
    cr_assert(eq(int, fx_fb.calls, 1), "reactivating a resolved event gave feedback");
    cr_assert(eq(int, fx_fb.withdrawn_calls, 0));

    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "fp", NULL), RISK_OK));
    cr_assert(eq(int, fx_fb.calls, 2));
    cr_assert(eq(int, fx_fb.withdrawn_calls, 1));
    cr_assert(eq(str, fx_fb.last, "fp"));
}

/* R-PO-10: a secure password change clears must_change_password (set by
 * an admin's temporary password, R-PW-1); the next sign-in is allowed. */
Test(rules_more, po10_secure_change_clears_must_change_password)
{
    fx_policy("p", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    fx_now = T0 + 10 * MINUTE;
    char pw[64];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
    risk_reason r;
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, r, RISK_REASON_TEMPORARY_PASSWORD));
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_SECURE_CHANGE),
                 RISK_OK));
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_must_change_password(u), 0));
    risk_user_free(u);
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_ALLOW));
    cr_assert(eq(int, r, RISK_REASON_NONE));
}


/* SPEC §2 mfa_registered_at, R-PO-11: an upsert that registers MFA without
 * a time stamps the upsert's time; registered during an active risk, MFA
 * does not count for self-remediation. */
Test(rules_more, po11_registration_without_time_takes_upsert_time)
{
    fx_policy("p", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("u", -1, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 5), RISK_OK));
    fx_now = T0 + 10 * MINUTE;
    risk_user *w = NULL;
    cr_assert(eq(int, risk_user_new(&w, "u"), RISK_OK));
    cr_assert(eq(int, risk_user_set_mfa_registered(w, 1, RISK_TIME_NONE), RISK_OK),
              "%s", risk_error_last());
    cr_assert(eq(int, risk_engine_upsert_user(fx, "admin", w), RISK_OK), "%s",
              risk_error_last());
    risk_user_free(w);
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_mfa_registered(u), 1));
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), T0 + 10 * MINUTE));
    risk_user_free(u);
    risk_reason r;
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_BLOCK));
    cr_assert(eq(int, r, RISK_REASON_MFA_REGISTERED_DURING_RISK));
    cr_assert(eq(int, risk_engine_require_reset(fx, "admin", "u"), RISK_ENOMFA));
}

/* The audit item of every kind of operation (SPEC §2 "History item"):
 * the user's level and state before and after, and the number of events
 * the action changed (mutants history_level_before, history_state_before,
 * history_changed: the items recorded the level after, the state after,
 * or 0 changed, and no test saw it). Each step's "after" is also the
 * user as stored, its "before" the user as stored before the step. */
/* Run one step on user "u" and check the item it wrote. */
#define STEP(call, act, ev, lb, la, sa, k)                                                  \
    do {                                                                                    \
        risk_state sb_ = fx_state("u");                                                     \
        struct last_item b_ = { 0 }, a_ = { 0 };                                            \
        cr_assert(eq(int, risk_engine_history(fx, "u", last_item_cb, &b_), RISK_OK));      \
        cr_assert(eq(int, (call), RISK_OK), "%s: %s", #call, risk_error_last());            \
        cr_assert(eq(int, risk_engine_history(fx, "u", last_item_cb, &a_), RISK_OK));      \
        cr_assert(eq(int, a_.n, b_.n + 1), "%s", #call);                                    \
        const struct item *s_ = &a_.it;                                                     \
        cr_expect(eq(int, s_->action, (act)), "%s", #call);                                 \
        cr_expect(eq(str, (char *)s_->event_id, (ev)), "%s", #call);                        \
        cr_expect(eq(int, s_->level_before, (lb)), "%s: level before", #call);             \
        cr_expect(eq(int, s_->level_after, (la)), "%s: level after", #call);               \
        cr_expect(eq(int, s_->level_after, fx_level("u")), "%s", #call);                    \
        cr_expect(eq(int, s_->state_before, sb_), "%s: state before", #call);              \
        cr_expect(eq(int, s_->state_after, (sa)), "%s: state after", #call);               \
        cr_expect(eq(int, s_->state_after, fx_state("u")), "%s", #call);                    \
        cr_expect(eq(u32, s_->changed, (k)), "%s: events changed", #call);                 \
    } while (0)

Test(rules_more, history_items_record_before_after_and_changed)
{
    char pw[32];
    fx_user("u", 0, 0); /* MFA registered before any risk */
    STEP(fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_HISTORY_INGEST, "e1",
         RISK_LEVEL_NONE, RISK_LEVEL_HIGH, RISK_STATE_AT_RISK, 1);
    STEP(fx_event("u", "e2", "anonymizedIPAddress", RISK_LEVEL_LOW, 2), RISK_HISTORY_INGEST, "e2",
         RISK_LEVEL_HIGH, RISK_LEVEL_HIGH, RISK_STATE_AT_RISK, 1);
    STEP(risk_engine_resolve(fx, "admin", "e1", NULL), RISK_HISTORY_RESOLVE, "e1",
         RISK_LEVEL_HIGH, RISK_LEVEL_LOW, RISK_STATE_AT_RISK, 1);
    STEP(risk_engine_reactivate(fx, "admin", "e1", NULL), RISK_HISTORY_REACTIVATE, "e1",
         RISK_LEVEL_LOW, RISK_LEVEL_HIGH, RISK_STATE_AT_RISK, 1);
    STEP(risk_engine_dismiss(fx, "admin", "u", NULL, NULL), RISK_HISTORY_DISMISS_ALL, "",
         RISK_LEVEL_HIGH, RISK_LEVEL_NONE, RISK_STATE_DISMISSED, 2);
    STEP(risk_engine_dismiss(fx, "admin", "u", NULL, NULL), RISK_HISTORY_DISMISS_ALL, "",
         RISK_LEVEL_NONE, RISK_LEVEL_NONE, RISK_STATE_DISMISSED, 0); /* R-DI-3 */
    STEP(fx_event("u", "e3", "atypicalTravel", RISK_LEVEL_MEDIUM, 3), RISK_HISTORY_INGEST, "e3",
         RISK_LEVEL_NONE, RISK_LEVEL_MEDIUM, RISK_STATE_AT_RISK, 1);
    STEP(fx_event("u", "e4", "maliciousIPAddress", RISK_LEVEL_LOW, 4), RISK_HISTORY_INGEST, "e4",
         RISK_LEVEL_MEDIUM, RISK_LEVEL_MEDIUM, RISK_STATE_AT_RISK, 1);
    STEP(risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw),
         RISK_HISTORY_TEMPORARY_PASSWORD, "", RISK_LEVEL_MEDIUM, RISK_LEVEL_NONE,
         RISK_STATE_REMEDIATED, 2);
    STEP(risk_engine_confirm_compromised(fx, "admin", "u"), RISK_HISTORY_CONFIRM_COMPROMISED, "",
         RISK_LEVEL_NONE, RISK_LEVEL_HIGH, RISK_STATE_CONFIRMED_COMPROMISED, 1);
    STEP(risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_SECURE_CHANGE),
         RISK_HISTORY_SECURE_PASSWORD_CHANGE, "", RISK_LEVEL_HIGH, RISK_LEVEL_NONE,
         RISK_STATE_REMEDIATED, 1);
}

/* R-SC-2, R-US-5 with the history of SPEC §2 (mutant #46 of the plumbing audit:
 * the catch-up inside an operation left the operation's "before" at the
 * level and state before the aging): an operation on a user whose risk
 * aged out meanwhile first writes the aging's item (low → none), then its
 * own, whose "before" is what the aging left, not what was stored. */
Test(rules_more, an_operation_after_aging_records_the_aged_state_as_before)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "l1", "anonymizedIPAddress", RISK_LEVEL_LOW, 1), RISK_OK));
    fx_now = T0 + 181 * DAY; /* the low event's 180 days are over */
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "u", NULL, NULL), RISK_OK));
    struct last_item t = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "u", last_item_cb, &t), RISK_OK));
    cr_assert(eq(int, t.prev.action, RISK_HISTORY_AGE));
    cr_assert(eq(int, t.prev.level_before, RISK_LEVEL_LOW));
    cr_assert(eq(int, t.prev.level_after, RISK_LEVEL_NONE));
    cr_assert(eq(int, t.prev.state_before, RISK_STATE_AT_RISK));
    cr_assert(eq(int, t.prev.state_after, RISK_STATE_NONE));
    cr_assert(eq(int, t.it.action, RISK_HISTORY_DISMISS_ALL));
    cr_assert(eq(int, t.it.level_before, RISK_LEVEL_NONE));
    cr_assert(eq(int, t.it.state_before, RISK_STATE_NONE));
    cr_assert(eq(u32, t.it.changed, 0));
    /* R-US-5: the user was no longer at risk, and nothing closed: the
     * dismiss leaves the state the aging left */
    cr_assert(eq(int, t.it.state_after, RISK_STATE_NONE));
    cr_assert(eq(int, fx_detail("u"), RISK_DETAIL_AGED_OUT));
}
