/* Test fixture: an engine over the in-memory store with a settable clock.
 * Header-only; include it in one test program. */
#ifndef ENGINE_FIXTURE_H
#define ENGINE_FIXTURE_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <librisk.h>
#include <librisk/store.h>
#include <string.h>

#define T0 INT64_C(1764000000000) /* 2025-11-24T16:00:00Z */
#define MINUTE INT64_C(60000)
#define DAY RISK_DAY_MS

static int64_t fx_now = T0;
static risk_engine *fx = NULL;

struct fx_feedback {
    int calls;
    int withdrawn_calls;
    char last[RISK_ID_MAX + 1];
};
static struct fx_feedback fx_fb;

struct fx_changes {
    int calls;
    risk_level before, after;
    risk_state state_after;
};
static struct fx_changes fx_ch;

static inline int64_t fx_clock(void *ud)
{
    (void)ud;
    return fx_now;
}

static inline void fx_feedback_fn(const risk_event *ev, int withdrawn, void *ud)
{
    (void)ud;
    fx_fb.calls++;
    fx_fb.withdrawn_calls += withdrawn;
    strncpy(fx_fb.last, risk_event_id(ev), RISK_ID_MAX);
}

static inline void fx_change_fn(const risk_user *before, const risk_user *after, void *ud)
{
    (void)ud;
    fx_ch.calls++;
    fx_ch.before = before ? risk_user_risk_level(before) : RISK_LEVEL_NONE;
    fx_ch.after = risk_user_risk_level(after);
    fx_ch.state_after = risk_user_risk_state(after);
}

/* The fixture's engine (clock, hooks) over st, which it takes. */
/* The fixture's engine over st (retries: max_conflict_retries, 0 for the
 * default). */
static inline void fx_open_on(const risk_store *st, const risk_scoring *sc, int refuse,
                              uint32_t retries)
{
    fx_now = T0;
    memset(&fx_fb, 0, sizeof fx_fb);
    memset(&fx_ch, 0, sizeof fx_ch);
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    o.feedback = fx_feedback_fn;
    o.user_changed = fx_change_fn;
    o.scoring = sc;
    o.refuse_unknown_users = (uint32_t)refuse;
    o.max_conflict_retries = retries;
    cr_assert(eq(int, risk_engine_new(&fx, st, &o), RISK_OK), "%s", risk_error_last());
}

static inline void fx_open_with(const risk_scoring *sc, int refuse)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    fx_open_on(&st, sc, refuse, 0);
}

static inline void fx_open(void)
{
    fx_open_with(NULL, 0);
}

static risk_verdict *fx_verdict;

/* A sign-in of user into fx_verdict fails with code and leaves the
 * verdict block / store_error (R-PO-9: fail closed). */
static inline void fx_expect_fail_closed(const char *user, int code)
{
    int rc = risk_engine_sign_in(fx, user, fx_verdict);
    cr_assert(eq(int, rc, code), "%s", risk_error_last());
    risk_decision d = risk_verdict_decision(fx_verdict);
    risk_reason r = risk_verdict_reason(fx_verdict);
    cr_assert(eq(int, (int)d, RISK_DECISION_BLOCK));
    cr_assert(eq(int, (int)r, RISK_REASON_STORE_ERROR));
}

static inline void fx_close(void)
{
    risk_engine_free(fx);
    fx = NULL;
    risk_verdict_free(fx_verdict);
    fx_verdict = NULL;
}

/* Create a user; mfa: -1 not registered, else registered at T0 + mfa minutes. */
static inline void fx_user(const char *id, int mfa_at_minutes, int deleted)
{
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, id), RISK_OK));
    if (mfa_at_minutes >= 0)
        cr_assert(eq(int, risk_user_set_mfa_registered(u, 1, T0 + mfa_at_minutes * MINUTE),
                     RISK_OK));
    cr_assert(eq(int, risk_user_set_deleted(u, deleted), RISK_OK));
    cr_assert(eq(int, risk_engine_upsert_user(fx, "admin", u), RISK_OK), "%s",
              risk_error_last());
    risk_user_free(u);
}

/* Ingest an event detected at T0 + minutes. */
static inline int fx_event(const char *user, const char *id, const char *type,
                           risk_level level, int64_t minutes)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, id, user, type, level, T0 + minutes * MINUTE),
                 RISK_OK), "%s", risk_error_last());
    int rc = risk_engine_ingest(fx, "detector", ev, 0);
    risk_event_free(ev);
    return rc;
}

static inline risk_user *fx_get(const char *id)
{
    risk_user *u = NULL;
    cr_assert(eq(int, risk_engine_user(&u, fx, id), RISK_OK), "%s", risk_error_last());
    return u;
}

static inline risk_level fx_level(const char *id)
{
    risk_user *u = fx_get(id);
    risk_level l = risk_user_risk_level(u);
    risk_user_free(u);
    return l;
}

static inline risk_state fx_state(const char *id)
{
    risk_user *u = fx_get(id);
    risk_state s = risk_user_risk_state(u);
    risk_user_free(u);
    return s;
}

static inline risk_detail fx_detail(const char *id)
{
    risk_user *u = fx_get(id);
    risk_detail d = risk_user_risk_detail(u);
    risk_user_free(u);
    return d;
}

static inline risk_event *fx_ev(const char *id)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_engine_event(&ev, fx, id), RISK_OK), "%s", risk_error_last());
    return ev;
}

static inline risk_close_reason fx_reason(const char *id)
{
    risk_event *ev = fx_ev(id);
    risk_close_reason r = risk_event_close_reason(ev);
    risk_event_free(ev);
    return r;
}

static inline risk_event_state fx_evstate(const char *id)
{
    risk_event *ev = fx_ev(id);
    risk_event_state s = risk_event_state_get(ev);
    risk_event_free(ev);
    return s;
}

static inline void fx_policy(const char *name, risk_level threshold, risk_control control,
                             risk_policy_mode mode)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, name, threshold, control), RISK_OK));
    cr_assert(eq(int, risk_policy_set_mode(p, mode), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_OK), "%s",
              risk_error_last());
    risk_policy_free(p);
}

static inline risk_decision fx_signin(const char *user, risk_reason *reason)
{
    if (!fx_verdict)
        cr_assert(eq(int, risk_verdict_new(&fx_verdict), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(fx, user, fx_verdict), RISK_OK), "%s",
              risk_error_last());
    if (reason)
        *reason = risk_verdict_reason(fx_verdict);
    return risk_verdict_decision(fx_verdict);
}

static inline int fx_hist_count_cb(const risk_history *h, void *ud)
{
    (void)h;
    ++*(int *)ud;
    return 0;
}

/* Number of history items of a user (NULL: the whole store). */
static inline int fx_history_count(const char *user)
{
    int n = 0;
    int rc = user ? risk_engine_history(fx, user, fx_hist_count_cb, &n)
                  : risk_engine_history_feed(fx, 0, fx_hist_count_cb, &n);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    return n;
}

#endif
