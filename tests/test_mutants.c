/* Behaviour of the engine's decision and operation code that the other
 * suites did not pin down (R-PO-*, R-SC-*, R-US-*, R-OP-*, R-DI-*, R-PW-*,
 * R-EV-*, R-WI-*, R-RC-*).
 *
 * Found by mutation testing (2026-12-07) of lib/engine_signin.c, policy.c,
 * score.c, engine_ops.c, whatif.c and receipt.c: each test kills at least
 * one change to those files that the other suites let through. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "alloc_fail.h"
#include "engine_fixture.h"
#include "fwd_store.h"

#include <stdio.h>
#include <stdlib.h>

TestSuite(mutants, .init = fx_open, .fini = fx_close);

/* ---- a host store over the memory store whose view_user shows one user
 * as always due for its aging catch-up (a store that loses the catch-up's
 * next_change_at) ---- */
static const char *stuck_id;

struct stuck_visit {
    risk_user_visit_fn fn;
    void *arg;
};

static int stuck_cb(const risk_user *u, void *arg)
{
    struct stuck_visit *sv = arg;
    if (!stuck_id || strcmp(risk_user_id(u), stuck_id) != 0)
        return sv->fn(u, sv->arg);
    risk_user *d = NULL;
    cr_assert(eq(int, risk_user_dup(&d, u), RISK_OK));
    cr_assert(eq(int, risk_user_set_risk(d, risk_user_risk_level(u), risk_user_risk_state(u),
                                         risk_user_risk_detail(u), risk_user_risk_updated_at(u),
                                         risk_user_score(u), risk_user_risk_since(u), T0,
                                         risk_user_active_events(u)),
                 RISK_OK), "%s", risk_error_last());
    int rc = sv->fn(d, sv->arg);
    risk_user_free(d);
    return rc;
}

static int stuck_view_user(void *c, const char *id, risk_user_visit_fn fn, void *a)
{
    (void)c;
    struct stuck_visit sv = { fn, a };
    return FWD.in.view_user(FWD.in.ctx, id, stuck_cb, &sv);
}

static void stuck_open(void)
{
    fx_close();
    stuck_id = NULL;
    risk_store s;
    cr_assert(eq(int, fwd_memory(&s), RISK_OK));
    s.view_user = stuck_view_user;
    fx_open_on(&s, NULL, 0, 0);
}

/* R-PO-9 (SPEC §4): a user whose aging catch-up never settles is a store
 * failure: the sign-in fails and its verdict is block/store_error, never
 * what the verdict held before. */
Test(mutants, signin_catch_up_that_never_settles_fails_closed)
{
    stuck_open();
    fx_user("ok", 0, 0);
    fx_user("stuck", 0, 0);
    cr_assert(eq(int, fx_signin("ok", NULL), RISK_DECISION_ALLOW));
    stuck_id = "stuck";
    fx_now = T0 + MINUTE;
    fx_expect_fail_closed("stuck", RISK_ESTORE);
    stuck_id = NULL;
}

/* R-PO-9, R-IV-1: a bulk sign-in refused for its arguments leaves block in
 * each of its n verdicts, and touches nothing past them. */
Test(mutants, signin_bulk_refused_touches_only_its_verdicts)
{
    fx_user("a", 0, 0);
    risk_verdict *v[3] = { NULL, NULL, NULL };
    for (int i = 0; i < 3; i++) {
        cr_assert(eq(int, risk_verdict_new(&v[i]), RISK_OK));
        cr_assert(eq(int, risk_engine_sign_in(fx, "a", v[i]), RISK_OK));
        risk_decision d = risk_verdict_decision(v[i]);
        cr_assert(eq(int, (int)d, RISK_DECISION_ALLOW));
    }
    const char *ids[2] = { "a", "a" };
    int rc = risk_engine_sign_in_bulk(fx, ids, 2, v, NULL); /* results NULL */
    cr_assert(eq(int, rc, RISK_EINVAL));
    for (int i = 0; i < 2; i++) {
        risk_decision d = risk_verdict_decision(v[i]);
        risk_reason r = risk_verdict_reason(v[i]);
        cr_assert(eq(int, (int)d, RISK_DECISION_BLOCK), "verdict %d", i);
        cr_assert(eq(int, (int)r, RISK_REASON_STORE_ERROR), "verdict %d", i);
    }
    risk_decision d2 = risk_verdict_decision(v[2]); /* not the call's */
    cr_assert(eq(int, (int)d2, RISK_DECISION_ALLOW));
    for (int i = 0; i < 3; i++)
        risk_verdict_free(v[i]);
}

/* ---- receipts over the forwarding store ---- */
static const uint8_t rkey[32] = "mutants-receipt-key-0123456789ab";
static int conflicts_left; /* get_user calls still to refuse */

static int conflict_get_user(const char *cb)
{
    if (strcmp(cb, "get_user") == 0 && conflicts_left > 0) {
        conflicts_left--;
        return risk_error_set(RISK_ECONFLICT, "injected conflict");
    }
    return 0;
}

static void receipt_open(uint32_t retries)
{
    fx_close();
    risk_store s;
    cr_assert(eq(int, fwd_memory(&s), RISK_OK));
    fx_now = T0;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    o.max_conflict_retries = retries;
    o.receipt_key = rkey;
    o.receipt_key_len = sizeof rkey;
    cr_assert(eq(int, risk_engine_new(&fx, &s, &o), RISK_OK), "%s", risk_error_last());
}

/* R-RC-1, R-PO-8: a user unknown to the store gets its receipt even when
 * every optimistic try conflicted and the sign-in decides under the user's
 * lock. */
Test(mutants, receipt_for_unknown_user_after_conflicts)
{
    receipt_open(1);
    cr_assert(eq(int, risk_verdict_new(&fx_verdict), RISK_OK));
    cr_assert(eq(int, risk_verdict_want_receipt(fx_verdict, 1), RISK_OK));
    FWD.fail = conflict_get_user;
    conflicts_left = 2; /* the first try and its one retry */
    int rc = risk_engine_sign_in(fx, "nobody", fx_verdict);
    FWD.fail = NULL;
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, conflicts_left, 0));
    risk_decision d = risk_verdict_decision(fx_verdict);
    cr_assert(eq(int, (int)d, RISK_DECISION_ALLOW));
    const char *r = risk_verdict_receipt(fx_verdict);
    cr_assert(r != NULL);
    cr_assert(eq(int, risk_receipt_verify(r, rkey, sizeof rkey), RISK_OK));
    cr_assert(strstr(r, "user_id=nobody\n") != NULL, "%s", r);
}

/* R-SC-6, R-IV-1: the explanation's getters past its last item (or on
 * NULL) read as nothing: no level, nothing counted, no contribution. */
Test(mutants, explanation_getters_out_of_range_read_as_nothing)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e1", "u", "leakedCredentials", RISK_LEVEL_HIGH, T0),
                 RISK_OK));
    const risk_event *evs[1] = { ev };
    risk_explanation *ex = NULL;
    cr_assert(eq(int, risk_explain(&ex, NULL, evs, 1, T0 + MINUTE), RISK_OK));
    cr_assert(eq(sz, risk_explanation_count(ex), 1));
    risk_level in = risk_explanation_level(ex, 0);
    cr_assert(eq(int, (int)in, RISK_LEVEL_HIGH));
    risk_level past = risk_explanation_level(ex, 1), none = risk_explanation_level(NULL, 0);
    cr_assert(eq(int, (int)past, RISK_LEVEL_NONE));
    cr_assert(eq(int, (int)none, RISK_LEVEL_NONE));
    cr_assert(eq(int, risk_explanation_counted(ex, 1), 0));
    cr_assert(eq(u64, risk_explanation_contribution(ex, 1), 0));
    cr_assert(risk_explanation_event_id(ex, 1) == NULL);
    risk_explanation_free(ex);
    risk_event_free(ev);
}

/* R-OP-7: the update reaches the event named, not another of the user's
 * events (here the user's second event by detected_at). */
Test(mutants, ingest_update_changes_the_named_event_only)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "anonymizedIPAddress", RISK_LEVEL_LOW, 0), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e2", "unfamiliarFeatures", RISK_LEVEL_LOW, 1), RISK_OK));
    fx_now = T0 + 2 * MINUTE;
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e2", "u", "unfamiliarFeatures", RISK_LEVEL_HIGH,
                                     T0 + MINUTE), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "detector", ev, RISK_INGEST_UPDATE), RISK_OK), "%s",
              risk_error_last());
    risk_event_free(ev);
    risk_event *e1 = fx_ev("e1"), *e2 = fx_ev("e2");
    risk_level l1 = risk_event_level(e1), l2 = risk_event_level(e2);
    cr_assert(eq(int, (int)l1, RISK_LEVEL_LOW));
    cr_assert(eq(str, (char *)risk_event_type(e1), "anonymizedIPAddress"));
    cr_assert(eq(int, (int)l2, RISK_LEVEL_HIGH));
    risk_event_free(e1);
    risk_event_free(e2);
    risk_level ul = fx_level("u");
    cr_assert(eq(int, (int)ul, RISK_LEVEL_HIGH));
}

/* R-WI-1: a what-if over more users than one bucket's first allocation
 * holds (16) counts and lists every one of them. */
Test(mutants, what_if_lists_many_users_in_one_bucket)
{
    enum { N = 100 };
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "u%03d", i);
        fx_user(id, 0, 0);
    }
    risk_what_if *w = NULL;
    cr_assert(eq(int, risk_engine_what_if(&w, fx, NULL, 0, T0), RISK_OK), "%s",
              risk_error_last());
    cr_assert(eq(sz, risk_what_if_total(w), N));
    cr_assert(eq(sz, risk_what_if_count(w, RISK_DECISION_ALLOW, RISK_REASON_NONE), N));
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "u%03d", i);
        const char *got = risk_what_if_user(w, RISK_DECISION_ALLOW, RISK_REASON_NONE, (size_t)i);
        cr_assert(got != NULL);
        cr_assert(eq(str, (char *)got, id));
    }
    risk_what_if_free(w);
}

/* R-OP-1: a bulk ingest reports each event's result and returns how many
 * failed. */
Test(mutants, ingest_bulk_counts_failures)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0), RISK_OK));
    risk_event *a = NULL, *b = NULL;
    cr_assert(eq(int, risk_event_new(&a, "e2", "u", "leakedCredentials", RISK_LEVEL_LOW, T0),
                 RISK_OK));
    /* a different detection under a taken id: RISK_EEXISTS */
    cr_assert(eq(int, risk_event_new(&b, "e1", "u", "anonymizedIPAddress", RISK_LEVEL_HIGH, T0),
                 RISK_OK));
    const risk_event *evs[2] = { a, b };
    int results[2] = { -1, -1 };
    int failed = risk_engine_ingest_bulk(fx, "detector", evs, 2, 0, results);
    cr_assert(eq(int, results[0], RISK_OK));
    cr_assert(eq(int, results[1], RISK_EEXISTS));
    cr_assert(eq(int, failed, 1));
    risk_event_free(a);
    risk_event_free(b);
}

struct last_item {
    int n;
    risk_history_action action;
    char note[256];
};

static int last_item_cb(const risk_history *h, void *ud)
{
    struct last_item *l = ud;
    l->n++;
    l->action = risk_history_action_get(h);
    const char *note = risk_history_note(h);
    snprintf(l->note, sizeof l->note, "%s", note ? note : "");
    return 0;
}

/* R-PO-11, R-PO-10: a "secure" change by a user whose MFA came during the
 * risk counts as a change without MFA proof, and its history item says
 * why; a plain change without MFA proof carries no such note. */
Test(mutants, secure_change_not_counting_is_noted_in_history)
{
    fx_user("late", 5, 0); /* MFA registered at T0 + 5 min */
    cr_assert(eq(int, fx_event("late", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 0), RISK_OK));
    fx_now = T0 + 10 * MINUTE;
    cr_assert(eq(int, risk_engine_password_changed(fx, "late", "late",
                                                   RISK_PASSWORD_SECURE_CHANGE), RISK_OK));
    struct last_item l = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "late", last_item_cb, &l), RISK_OK));
    cr_assert(eq(int, (int)l.action, RISK_HISTORY_INSECURE_PASSWORD_CHANGE));
    cr_assert(strstr(l.note, "R-PO-11") != NULL, "note: '%s'", l.note);
    risk_event_state st = fx_evstate("e1"); /* nothing closed */
    cr_assert(eq(int, (int)st, RISK_EVENT_ACTIVE));

    fx_user("plain", -1, 0);
    cr_assert(eq(int, risk_engine_password_changed(fx, "plain", "plain",
                                                   RISK_PASSWORD_INSECURE), RISK_OK));
    struct last_item p = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "plain", last_item_cb, &p), RISK_OK));
    cr_assert(eq(int, (int)p.action, RISK_HISTORY_INSECURE_PASSWORD_CHANGE));
    cr_assert(eq(str, p.note, ""));
}

/* SPEC §7 ("nothing changed" but the out handle): every function that
 * hands out a new object through `out` leaves NULL there when it fails, so
 * that a host's cleanup path may free it (librisk.h, group errors). The
 * record constructors left a caller's uninitialised pointer as it was. */
#define SENTINEL ((void *)&sentinel_byte)
static char sentinel_byte;
#define FAILS_WITH_NULL_OUT(var, call, code)                                 \
    do {                                                                     \
        var = SENTINEL;                                                      \
        int rc_ = (call);                                                    \
        cr_assert(eq(int, rc_, code), "%s", #call);                          \
        cr_assert(var == NULL, "%s left *out as it was", #call);             \
    } while (0)

Test(mutants, constructors_leave_null_out_on_failure)
{
    risk_user *u;
    risk_event *e;
    risk_policy *p;
    risk_history *h;
    risk_explanation *x;
    risk_verdict *v;
    risk_engine *en;
    risk_what_if *w;
    FAILS_WITH_NULL_OUT(u, risk_user_new(&u, ""), RISK_EINVAL);
    FAILS_WITH_NULL_OUT(u, risk_user_dup(&u, NULL), RISK_EINVAL);
    FAILS_WITH_NULL_OUT(e, risk_event_new(&e, "e", "u", "t", (risk_level)9, T0), RISK_EINVAL);
    FAILS_WITH_NULL_OUT(e, risk_event_dup(&e, NULL), RISK_EINVAL);
    FAILS_WITH_NULL_OUT(p, risk_policy_new(&p, "", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK),
                        RISK_EINVAL);
    FAILS_WITH_NULL_OUT(p, risk_policy_dup(&p, NULL), RISK_EINVAL);
    FAILS_WITH_NULL_OUT(h, risk_history_dup(&h, NULL), RISK_EINVAL);
    FAILS_WITH_NULL_OUT(x, risk_explain(&x, NULL, NULL, 1, T0), RISK_EINVAL);
    FAILS_WITH_NULL_OUT(en, risk_engine_new(&en, NULL, NULL), RISK_EINVAL);
    FAILS_WITH_NULL_OUT(u, risk_engine_user(&u, fx, "nobody"), RISK_ENOTFOUND);
    FAILS_WITH_NULL_OUT(e, risk_engine_event(&e, fx, "nothing"), RISK_ENOTFOUND);
    FAILS_WITH_NULL_OUT(x, risk_engine_explain(&x, fx, "nobody"), RISK_ENOTFOUND);
    FAILS_WITH_NULL_OUT(w, risk_engine_what_if(&w, NULL, NULL, 0, T0), RISK_EINVAL);
    /* and an allocation failure (the allocator hook fails the first) */
    alloc_fail_install(1);
    FAILS_WITH_NULL_OUT(v, risk_verdict_new(&v), RISK_ENOMEM);
    alloc_fail_install(1);
    FAILS_WITH_NULL_OUT(u, risk_user_new(&u, "u"), RISK_ENOMEM);
    alloc_fail_reset();
}
