/* Behaviour of the engine's operation, query, audit and receipt code that
 * the other suites did not pin down (R-OP-*, R-AU-*, R-RC-*, R-EV-*, ...).
 *
 * Found by a second round of mutation testing (2026-12-07) of
 * lib/engine_ops.c, engine.c, engine_query.c, audit.c, receipt.c,
 * engine_policy.c and transition.c: each test kills at least one change to
 * those files that the other suites (test_mutants.c included) let through. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "alloc_fail.h"
#include "engine_fixture.h"
#include "fwd_store.h"

#include <stdio.h>
#include <stdlib.h>

TestSuite(mutants2, .init = fx_open, .fini = fx_close);

static int ingest_with_strings(const char *id, const char *ip, const char *loc,
                               const char *src)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, id, "u", "leakedCredentials", RISK_LEVEL_LOW, T0),
                 RISK_OK));
    if (ip)
        cr_assert(eq(int, risk_event_set_ip(ev, ip), RISK_OK));
    if (loc)
        cr_assert(eq(int, risk_event_set_location(ev, loc), RISK_OK));
    if (src)
        cr_assert(eq(int, risk_event_set_source(ev, src), RISK_OK));
    int rc = risk_engine_ingest(fx, "detector", ev, 0);
    risk_event_free(ev);
    return rc;
}

/* R-OP-1: the same detection sent again is RISK_OK and changes nothing,
 * with its optional strings (ip, location, source) present or absent; a
 * detection that differs only in one of those strings is a different
 * event (RISK_EEXISTS). */
Test(mutants2, ingest_same_event_with_optional_strings_is_idempotent)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, ingest_with_strings("e2", "192.0.2.1", "Paris", "idp"), RISK_OK));
    int n0 = fx_history_count("u");
    int rc = ingest_with_strings("e2", "192.0.2.1", "Paris", "idp");
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, fx_history_count("u"), n0));
    rc = ingest_with_strings("e2", "192.0.2.2", "Paris", "idp");
    cr_assert(eq(int, rc, RISK_EEXISTS));
    rc = ingest_with_strings("e2", "192.0.2.1", NULL, "idp");
    cr_assert(eq(int, rc, RISK_EEXISTS));
}

Test(mutants2, ingest_same_event_without_optional_strings_is_idempotent)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0), RISK_OK));
    int before = fx_history_count("u");
    int rc = fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, fx_history_count("u"), before));
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e1", "u", "leakedCredentials", RISK_LEVEL_LOW, T0),
                 RISK_OK));
    cr_assert(eq(int, risk_event_set_ip(ev, "192.0.2.1"), RISK_OK));
    rc = risk_engine_ingest(fx, "detector", ev, 0);
    cr_assert(eq(int, rc, RISK_EEXISTS));
    risk_event_free(ev);
}

/* R-EV-1: a new event is active with no closing and no note, whatever
 * note the caller's handle carried. */
Test(mutants2, ingest_drops_the_callers_note)
{
    fx_user("u", 0, 0);
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e1", "u", "leakedCredentials", RISK_LEVEL_LOW, T0),
                 RISK_OK));
    cr_assert(eq(int, risk_event_set_note(ev, "from the detector"), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "detector", ev, 0), RISK_OK), "%s",
              risk_error_last());
    risk_event_free(ev);
    risk_event *got = fx_ev("e1");
    const char *note = risk_event_note(got), *by = risk_event_closed_by(got);
    cr_assert(note == NULL || note[0] == '\0', "note kept: %s", note);
    cr_assert(by == NULL || by[0] == '\0');
    risk_event_state st = risk_event_state_get(got);
    cr_assert(eq(int, (int)st, RISK_EVENT_ACTIVE));
    risk_event_free(got);
}

/* R-IV-1: a bulk ingest without an engine is RISK_EINVAL and tries
 * nothing (the results are left as they were), also with no items. */
Test(mutants2, ingest_bulk_without_engine_is_einval)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e1", "u", "leakedCredentials", RISK_LEVEL_LOW, T0),
                 RISK_OK));
    const risk_event *evs[1] = { ev };
    int results[1] = { 12345 };
    int rc = risk_engine_ingest_bulk(NULL, "detector", evs, 1, 0, results);
    cr_assert(eq(int, rc, RISK_EINVAL));
    cr_assert(eq(int, results[0], 12345));
    rc = risk_engine_ingest_bulk(NULL, "detector", NULL, 0, 0, NULL);
    cr_assert(eq(int, rc, RISK_EINVAL));
    risk_event_free(ev);
}

/* R-PW-1, R-IV-1: the temporary password needs length + 1 bytes (its
 * terminating NUL); a buffer one byte short is RISK_ERANGE, nothing is
 * written to it and nothing changes in the store. Exactly enough works. */
Test(mutants2, temporary_password_needs_room_for_its_nul)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 0), RISK_OK));
    int n0 = fx_history_count("u");
    char buf[18];
    memset(buf, '#', sizeof buf);
    int rc = risk_engine_temporary_password(fx, "admin", "u", buf, 16); /* default length 16 */
    cr_assert(eq(int, rc, RISK_ERANGE));
    for (size_t i = 0; i < sizeof buf; i++)
        cr_assert(eq(int, buf[i], '#'), "byte %zu written", i);
    cr_assert(eq(int, fx_history_count("u"), n0));
    risk_user *u = fx_get("u");
    int must = risk_user_must_change_password(u);
    risk_user_free(u);
    cr_assert(eq(int, must, 0));
    rc = risk_engine_temporary_password(fx, "admin", "u", buf, 17);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    cr_assert(eq(sz, strlen(buf), 16));
    cr_assert(eq(int, buf[17], '#'));
}

/* R-IV-1: every engine call on a NULL engine is RISK_EINVAL (not a
 * crash, not a success that did nothing). The other arguments are valid,
 * so the engine is what is refused. */
static int visit_none_user(const risk_user *u, void *a)
{
    (void)u, (void)a;
    return 0;
}
static int visit_none_event(const risk_event *e, void *a)
{
    (void)e, (void)a;
    return 0;
}
static int visit_none_hist(const risk_history *h, void *a)
{
    (void)h, (void)a;
    return 0;
}
static int visit_none_policy(const risk_policy *p, void *a)
{
    (void)p, (void)a;
    return 0;
}

#define NULL_ENGINE_EINVAL(call)                                                   \
    do {                                                                           \
        int rc_ = (call);                                                          \
        cr_assert(eq(int, rc_, RISK_EINVAL), "%s", #call);                         \
    } while (0)

Test(mutants2, every_engine_call_refuses_a_null_engine)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0), RISK_OK));
    risk_user *u = fx_get("u");
    risk_event *ev = fx_ev("e1");
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), RISK_OK));
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    const char *ids[1] = { "u" };
    risk_verdict *vs[1] = { v };
    int results[1];
    uint32_t closed[1];
    char buf[64];
    risk_user *uo = NULL;
    risk_event *eo = NULL;
    risk_explanation *xo = NULL;
    risk_anchor an;
    uint64_t a64, b64;
    NULL_ENGINE_EINVAL(risk_engine_upsert_user(NULL, "admin", u));
    NULL_ENGINE_EINVAL(risk_engine_ingest(NULL, "detector", ev, 0));
    NULL_ENGINE_EINVAL(risk_engine_sign_in(NULL, "u", v));
    NULL_ENGINE_EINVAL(risk_engine_sign_in_bulk(NULL, ids, 1, vs, results));
    NULL_ENGINE_EINVAL(risk_engine_password_changed(NULL, "admin", "u", RISK_PASSWORD_SECURE_CHANGE));
    NULL_ENGINE_EINVAL(risk_engine_temporary_password(NULL, "admin", "u", buf, sizeof buf));
    NULL_ENGINE_EINVAL(risk_engine_require_reset(NULL, "admin", "u"));
    NULL_ENGINE_EINVAL(risk_engine_dismiss(NULL, "admin", "u", NULL, closed));
    NULL_ENGINE_EINVAL(risk_engine_dismiss_bulk(NULL, "admin", ids, 1, NULL, results, closed));
    NULL_ENGINE_EINVAL(risk_engine_resolve(NULL, "admin", "e1", NULL));
    NULL_ENGINE_EINVAL(risk_engine_false_positive(NULL, "admin", "e1", NULL));
    NULL_ENGINE_EINVAL(risk_engine_ignore(NULL, "admin", "e1", "why"));
    NULL_ENGINE_EINVAL(risk_engine_reactivate(NULL, "admin", "e1", NULL));
    NULL_ENGINE_EINVAL(risk_engine_confirm_compromised(NULL, "admin", "u"));
    NULL_ENGINE_EINVAL(risk_engine_confirm_safe(NULL, "admin", "u"));
    NULL_ENGINE_EINVAL(risk_engine_policy_set(NULL, "admin", p));
    NULL_ENGINE_EINVAL(risk_engine_policy_remove(NULL, "admin", "p"));
    NULL_ENGINE_EINVAL(risk_engine_policies(NULL, visit_none_policy, NULL));
    NULL_ENGINE_EINVAL(risk_engine_policies_changed(NULL));
    NULL_ENGINE_EINVAL(risk_engine_user(&uo, NULL, "u"));
    NULL_ENGINE_EINVAL(risk_engine_event(&eo, NULL, "e1"));
    NULL_ENGINE_EINVAL(risk_engine_events(NULL, "u", 0, visit_none_event, NULL));
    NULL_ENGINE_EINVAL(risk_engine_users(NULL, RISK_LEVEL_NONE, visit_none_user, NULL));
    NULL_ENGINE_EINVAL(risk_engine_history(NULL, "u", visit_none_hist, NULL));
    NULL_ENGINE_EINVAL(risk_engine_history_feed(NULL, 0, visit_none_hist, NULL));
    NULL_ENGINE_EINVAL(risk_engine_explain(&xo, NULL, "u"));
    NULL_ENGINE_EINVAL(risk_engine_expire(NULL, &a64, &b64));
    NULL_ENGINE_EINVAL(risk_engine_compact(NULL));
    NULL_ENGINE_EINVAL(risk_engine_sync(NULL));
    NULL_ENGINE_EINVAL(risk_engine_backup(NULL, "/tmp/mutants2-never"));
    NULL_ENGINE_EINVAL(risk_engine_history_anchor(NULL, &an));
    NULL_ENGINE_EINVAL(risk_engine_verify_history(NULL, NULL, &a64));
    cr_assert(uo == NULL && eo == NULL && xo == NULL);
    /* and nothing changed in the store */
    risk_level l = fx_level("u");
    cr_assert(eq(int, (int)l, RISK_LEVEL_LOW));
    risk_event_state s = fx_evstate("e1");
    cr_assert(eq(int, (int)s, RISK_EVENT_ACTIVE));
    risk_verdict_free(v);
    risk_policy_free(p);
    risk_event_free(ev);
    risk_user_free(u);
}

/* R-SC-2: a read "as of now" shows the user as the catch-up would leave
 * it, without writing: when aging lowers the level but events stay
 * active (three low → medium; the oldest ages out → two low → low), the
 * view's risk_updated_at is the aging's time and its risk_since the
 * earliest event still counted, as the written catch-up leaves them. */
Test(mutants2, read_view_after_partial_aging_matches_the_catch_up)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0), RISK_OK));
    fx_now = T0 + DAY;
    cr_assert(eq(int, fx_event("u", "e2", "leakedCredentials", RISK_LEVEL_LOW, 24 * 60), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e3", "leakedCredentials", RISK_LEVEL_LOW, 24 * 60), RISK_OK));
    risk_level l0 = fx_level("u");
    cr_assert(eq(int, (int)l0, RISK_LEVEL_MEDIUM));
    fx_now = T0 + 180 * DAY + 12 * 60 * MINUTE; /* e1 aged at T0 + 180 days */
    risk_user *view = fx_get("u");
    risk_level lv = risk_user_risk_level(view);
    int64_t uv = risk_user_risk_updated_at(view);
    int64_t sv = risk_user_risk_since(view);
    risk_user_free(view);
    cr_assert(eq(i64, sv, T0 + DAY)); /* e2's and e3's detection: R-PO-11 decides on it */
    cr_assert(eq(int, (int)lv, RISK_LEVEL_LOW));
    cr_assert(eq(i64, uv, T0 + 180 * DAY));
    uint64_t users = 0, events = 0;
    cr_assert(eq(int, risk_engine_expire(fx, &users, &events), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(u64, events, 1));
    risk_user *w = fx_get("u");
    risk_level lw = risk_user_risk_level(w);
    int64_t uw = risk_user_risk_updated_at(w);
    int64_t sw = risk_user_risk_since(w);
    risk_user_free(w);
    cr_assert(eq(i64, sw, sv));
    cr_assert(eq(int, (int)lw, RISK_LEVEL_LOW));
    cr_assert(eq(i64, uw, uv));
}

/* ---- two engines over one store (R-ST-6, R-SC-7): FWD.in is the memory
 * store; an engine over fwd_table() without close leaves it open ---- */
static risk_engine *engine_over_fwd(const risk_scoring *sc, int closes)
{
    risk_store s = fwd_table();
    if (!closes)
        s.close = NULL;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    o.scoring = sc;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &s, &o), RISK_OK), "%s", risk_error_last());
    return e;
}

struct hist_last {
    int n;
    risk_history_action action;
    uint32_t changed;
    uint64_t seq;
    risk_level before, after;
    char actor[64];
};

static int hist_last_cb(const risk_history *h, void *ud)
{
    struct hist_last *l = ud;
    l->n++;
    l->action = risk_history_action_get(h);
    l->changed = risk_history_changed(h);
    l->seq = risk_history_seq(h);
    l->before = risk_history_level_before(h);
    l->after = risk_history_level_after(h);
    snprintf(l->actor, sizeof l->actor, "%s", risk_history_actor(h));
    return 0;
}

/* R-SC-2, R-SC-7, §2 (history item: the number of events the action
 * changed): a user written by an engine with a short aging period is due
 * under another engine's longer one; its catch-up closes nothing, yet
 * rescoring under this engine's weights changes the level: the history
 * item says so, as `system`, with 0 events changed. */
Test(mutants2, catch_up_that_only_rescores_records_zero_events_changed)
{
    fx_close();
    memset(&FWD, 0, sizeof FWD);
    cr_assert(eq(int, risk_memory_store_new(&FWD.in), RISK_OK));
    fx_now = T0;
    risk_scoring short_aging = RISK_SCORING_INIT;
    short_aging.aging_low_ms = DAY;
    risk_engine *a = engine_over_fwd(&short_aging, 0);
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, "u"), RISK_OK));
    cr_assert(eq(int, risk_engine_upsert_user(a, "admin", u), RISK_OK));
    risk_user_free(u);
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e1", "u", "leakedCredentials", RISK_LEVEL_LOW, T0),
                 RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(a, "detector", ev, 0), RISK_OK));
    risk_event_free(ev);
    risk_engine_free(a);

    risk_scoring heavy_low = RISK_SCORING_INIT; /* aging low 180 days */
    heavy_low.weight_low = 3;                   /* one low event: medium */
    fx = engine_over_fwd(&heavy_low, 1);
    fx_now = T0 + 2 * DAY;
    uint64_t users = 9, events = 9;
    cr_assert(eq(int, risk_engine_expire(fx, &users, &events), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(u64, users, 0));
    cr_assert(eq(u64, events, 0));
    struct hist_last l = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "u", hist_last_cb, &l), RISK_OK));
    cr_assert(eq(int, (int)l.action, RISK_HISTORY_AGE));
    cr_assert(eq(u32, l.changed, 0));
    cr_assert(eq(int, (int)l.before, RISK_LEVEL_LOW));
    cr_assert(eq(int, (int)l.after, RISK_LEVEL_MEDIUM));
    cr_assert(eq(str, l.actor, "system"));
    risk_event_state st = fx_evstate("e1");
    cr_assert(eq(int, (int)st, RISK_EVENT_ACTIVE));
}

/* ---- a host store whose records of user "u" carry a head that is on no
 * chain (as if items were cut from the chain's end), and which lets one
 * more operation on "u" commit while verification reads on ---- */
static int tamper_on, inject_left, injected;

struct tamper_visit {
    risk_user_visit_fn fn;
    void *arg;
};

static int tamper_cb(const risk_user *u, void *arg)
{
    struct tamper_visit *tv = arg;
    if (!tamper_on || strcmp(risk_user_id(u), "u") != 0)
        return tv->fn(u, tv->arg);
    risk_user *d = NULL;
    cr_assert(eq(int, risk_user_dup(&d, u), RISK_OK));
    if (tamper_on == 1) { /* the head */
        uint8_t head[32];
        memcpy(head, risk_user_chain_head(u), 32);
        head[0] ^= 0x5a;
        cr_assert(eq(int, risk_user_set_chain_head(d, head), RISK_OK));
    } else { /* 2: the level only (low → high), 3: the state only */
        risk_level l = risk_user_risk_level(u);
        risk_state st = risk_user_risk_state(u);
        if (tamper_on == 2)
            l = RISK_LEVEL_HIGH;
        else
            st = RISK_STATE_CONFIRMED_SAFE;
        cr_assert(eq(int, risk_user_set_risk(d, l, st, risk_user_risk_detail(u),
                                             risk_user_risk_updated_at(u), risk_user_score(u),
                                             risk_user_risk_since(u), risk_user_next_change_at(u),
                                             risk_user_active_events(u)),
                     RISK_OK), "%s", risk_error_last());
    }
    int rc = tv->fn(d, tv->arg);
    risk_user_free(d);
    return rc;
}

static int inject_in_list; /* operations to commit before the next listing */

static int tamper_list_users(void *c, risk_level m, risk_user_visit_fn fn, void *a)
{
    (void)c;
    if (inject_in_list > 0) { /* a writer commits after the walk, before the heads are read */
        inject_in_list--;
        char id[16];
        snprintf(id, sizeof id, "mid%d", ++injected);
        int rc = fx_event("u", id, "anonymizedIPAddress", RISK_LEVEL_LOW, 5);
        cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    }
    struct tamper_visit tv = { fn, a };
    return FWD.in.list_users(FWD.in.ctx, m, tamper_cb, &tv);
}

/* The fixture's engine over a fresh forwarding memory store (FWD). */
static risk_store fwd_fresh(void)
{
    fx_close();
    risk_store s;
    cr_assert(eq(int, fwd_memory(&s), RISK_OK));
    return s;
}

/* ... whose list_users can tamper (tamper_on) or inject (inject_in_list);
 * read_history: NULL for the forwarding one. */
static void tamper_open(int (*read_history)(void *, const char *, uint64_t, risk_history_visit_fn,
                                            void *))
{
    risk_store s = fwd_fresh();
    s.list_users = tamper_list_users;
    if (read_history)
        s.read_history = read_history;
    tamper_on = injected = inject_left = 0;
    fx_open_on(&s, NULL, 0, 0);
}

static int inject_read_history(void *c, const char *u, uint64_t since, risk_history_visit_fn fn,
                               void *a)
{
    (void)c;
    if (since > 0 && inject_left > 0) { /* a writer commits meanwhile */
        inject_left--;
        char id[16];
        snprintf(id, sizeof id, "late%d", ++injected);
        int rc = fx_event("u", id, "anonymizedIPAddress", RISK_LEVEL_LOW, 5);
        cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    }
    return FWD.in.read_history(FWD.in.ctx, u, since, fn, a);
}

/* R-AU-2, R-AU-3: a stored head that is on no chain is a mismatch, also
 * when the user's chain grows while verification reads on: the new item
 * does not vouch for a head the chain never passed through. */
Test(mutants2, verify_does_not_accept_a_foreign_head_when_the_chain_grows)
{
    tamper_open(inject_read_history);
    fx_user("u", 0, 0);
    fx_user("v", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0), RISK_OK));
    uint64_t bad = 1;
    int rc = risk_engine_verify_history(fx, NULL, &bad);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    tamper_on = 1;
    inject_left = 1;
    cr_assert(eq(int, fx_event("u", "e2", "leakedCredentials", RISK_LEVEL_LOW, 1), RISK_OK));
    rc = risk_engine_verify_history(fx, NULL, &bad);
    tamper_on = 0;
    cr_assert(eq(int, rc, RISK_EVERIFY));
    cr_assert(eq(int, injected, 1)); /* it read on, and the chain grew */
    rc = risk_engine_verify_history(fx, NULL, &bad); /* untampered: fine */
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
}

/* R-AU-2: a user record at its chain's end holds the level and state its
 * last history item left; a record whose level alone, or state alone, was
 * changed outside the engine is a mismatch, reported at that item. */
Test(mutants2, verify_finds_a_record_with_only_its_level_or_state_changed)
{
    tamper_open(NULL);
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0), RISK_OK));
    struct hist_last l = { 0 };
    cr_assert(eq(int, risk_engine_history(fx, "u", hist_last_cb, &l), RISK_OK));
    uint64_t bad = 1;
    cr_assert(eq(int, risk_engine_verify_history(fx, NULL, &bad), RISK_OK), "%s",
              risk_error_last());
    cr_assert(eq(u64, bad, 0));
    for (int mode = 2; mode <= 3; mode++) {
        tamper_on = mode;
        bad = 0;
        int rc = risk_engine_verify_history(fx, NULL, &bad);
        tamper_on = 0;
        cr_assert(eq(int, rc, RISK_EVERIFY), "mode %d", mode);
        cr_assert(eq(u64, bad, l.seq), "mode %d", mode);
    }
}

/* ---- a host store whose list_policies fails ---- */
static int fail_list_policies(const char *cb)
{
    return strcmp(cb, "list_policies") == 0 ? risk_error_set(RISK_EIO, "injected failure") : 0;
}

/* R-PO-9, R-CC-2: when the store fails to list the policies, a sign-in
 * returns the error and leaves block/store_error; listing the policies
 * returns the error too; nothing is cached from the failed read. */
Test(mutants2, signin_when_listing_policies_fails_is_blocked)
{
    risk_store s = fwd_fresh();
    fx_open_on(&s, NULL, 0, 0);
    fx_user("u", 0, 0);
    cr_assert(eq(int, risk_verdict_new(&fx_verdict), RISK_OK));
    FWD.fail = fail_list_policies;
    fx_expect_fail_closed("u", RISK_EIO);
    int rc = risk_engine_policies(fx, visit_none_policy, NULL);
    cr_assert(eq(int, rc, RISK_EIO));
    FWD.fail = NULL;
    cr_assert(eq(int, fx_signin("u", NULL), RISK_DECISION_ALLOW));
}

/* R-AU-2 (no false alarm): an item committed after verification's walk
 * and before it reads the user records leaves a record whose head the
 * walk has not reached yet; verification reads on, reaches it, and
 * succeeds. */
Test(mutants2, verify_reads_on_to_a_head_committed_meanwhile)
{
    tamper_open(NULL);
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0), RISK_OK));
    inject_in_list = 1;
    uint64_t bad = 1;
    int rc = risk_engine_verify_history(fx, NULL, &bad);
    inject_in_list = 0;
    cr_assert(eq(int, injected, 1));
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    cr_assert(eq(u64, bad, 0));
}

static int count_user_cb(const risk_user *u, void *ud)
{
    (void)u;
    ++*(int *)ud;
    return 0;
}

/* R-OP-5, R-SC-2: users at or above a level, as of now: at the very
 * millisecond a user's only low event ages (detected_at + 180 days), the
 * user is no longer at low. */
Test(mutants2, users_query_at_the_aging_instant_shows_the_aged_level)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "leakedCredentials", RISK_LEVEL_LOW, 0), RISK_OK));
    int n = 0;
    fx_now = T0 + 180 * DAY - 1;
    cr_assert(eq(int, risk_engine_users(fx, RISK_LEVEL_LOW, count_user_cb, &n), RISK_OK));
    cr_assert(eq(int, n, 1));
    n = 0;
    fx_now = T0 + 180 * DAY;
    cr_assert(eq(int, risk_engine_users(fx, RISK_LEVEL_LOW, count_user_cb, &n), RISK_OK));
    cr_assert(eq(int, n, 0));
}

struct note_buf {
    char note[1100];
};
static int last_note_cb(const risk_history *h, void *ud)
{
    struct note_buf *b = ud;
    const char *n = risk_history_note(h);
    snprintf(b->note, sizeof b->note, "%s", n ? n : "");
    return 0;
}

/* R-OP-6: a policy change's history item carries the policy before and
 * after, include list included. */
Test(mutants2, policy_history_note_lists_the_included_users)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "pol", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_policy_include_add(p, "alice"), RISK_OK));
    cr_assert(eq(int, risk_policy_include_add(p, "bob"), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_OK), "%s", risk_error_last());
    risk_policy_free(p);
    struct note_buf b = { { 0 } };
    cr_assert(eq(int, risk_engine_history_feed(fx, 0, last_note_cb, &b), RISK_OK));
    cr_assert(strstr(b.note, "after: ") != NULL, "%s", b.note);
    cr_assert(strstr(strstr(b.note, "after: "), "include=alice,bob") != NULL, "%s", b.note);
}
