/* riskctl demo: walks the seed's four ways to close risk ("How To: Close
 * active risk events") on a fresh in-memory store. Every level, state,
 * verdict and refusal shown is what the library returned: nothing is
 * canned. With --json the same walk is one object of steps and lines. */
#include "riskctl_cmd.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

typedef struct demo {
    ctl *c;
    risk_engine *eng;
    int64_t now;
    const char *actor;
    jw w;
    int in_step;
    int failures; /* a step that did not do what the seed says */
} demo;

static void line(demo *d, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void line(demo *d, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (d->c->json) jw_str(&d->w, buf);
    else printf("%s\n", buf);
}

static void step(demo *d, const char *title)
{
    if (d->c->json) {
        if (d->in_step) {
            jw_arr_end(&d->w);
            jw_obj_end(&d->w);
        }
        jw_obj(&d->w);
        jw_key(&d->w, "title"); jw_str(&d->w, title);
        jw_key(&d->w, "lines");
        jw_arr(&d->w);
    } else {
        printf("\n%s== %s ==%s\n", d->c->color ? "\033[1m" : "", title, color_reset(d->c));
    }
    d->in_step = 1;
}

static int64_t demo_clock(void *userdata) { return *(const int64_t *)userdata; }

/* A shown value that is not what the seed says: counted, and marked. */
static void expect(demo *d, int ok, const char *what)
{
    if (ok) return;
    d->failures++;
    line(d, "  !! expected %s", what);
}

/* "  alice: level high, state at_risk (none), 1 active event", checked
 * against the level and state the seed's walk leads to */
static void show_user(demo *d, const char *id, risk_level level, risk_state state)
{
    risk_user *u = NULL;
    int rc = risk_engine_user(&u, d->eng, id);
    if (rc != RISK_OK) {
        line(d, "  %s: %s: %s", id, risk_error_name(rc), risk_error_last());
        d->failures++;
        return;
    }
    line(d, "  %s: level %s, state %s (detail %s), score %" PRIu64 ", %" PRIu32
            " active event%s%s%s",
         id, ename(RISK_ENUM_LEVEL, risk_user_risk_level(u)),
         ename(RISK_ENUM_STATE, risk_user_risk_state(u)),
         ename(RISK_ENUM_DETAIL, risk_user_risk_detail(u)), risk_user_score(u),
         risk_user_active_events(u), risk_user_active_events(u) == 1 ? "" : "s",
         risk_user_must_change_password(u) ? ", must change password" : "",
         risk_user_reset_required(u) ? ", reset required" : "");
    char want[96];
    snprintf(want, sizeof want, "level %s, state %s", ename(RISK_ENUM_LEVEL, level),
             ename(RISK_ENUM_STATE, state));
    expect(d, risk_user_risk_level(u) == level && risk_user_risk_state(u) == state, want);
    risk_user_free(u);
}

static void show_signin(demo *d, const char *id, risk_decision decision, risk_reason reason)
{
    risk_verdict *v = NULL;
    int rc = risk_verdict_new(&v);
    if (rc == RISK_OK) rc = risk_engine_sign_in(d->eng, id, v);
    if (rc != RISK_OK) {
        line(d, "  sign-in of %s failed: %s", id, risk_error_name(rc));
        d->failures++;
    } else {
        line(d, "$ riskctl signin %s", id);
        line(d, "  -> %s (reason %s, policy %s, level %s)",
             ename(RISK_ENUM_DECISION, risk_verdict_decision(v)),
             ename(RISK_ENUM_REASON, risk_verdict_reason(v)),
             risk_verdict_policy(v) ? risk_verdict_policy(v) : "none",
             ename(RISK_ENUM_LEVEL, risk_verdict_level(v)));
        char want[96];
        snprintf(want, sizeof want, "%s (reason %s)", ename(RISK_ENUM_DECISION, decision),
                 ename(RISK_ENUM_REASON, reason));
        expect(d, risk_verdict_decision(v) == decision && risk_verdict_reason(v) == reason, want);
    }
    risk_verdict_free(v);
}

static void show_event(demo *d, const char *id, risk_event_state state, risk_close_reason why)
{
    risk_event *e = NULL;
    if (risk_engine_event(&e, d->eng, id) != RISK_OK) {
        d->failures++;
        return;
    }
    line(d, "  event %s: %s, %s%s%s", id, ename(RISK_ENUM_EVENT_STATE, risk_event_state_get(e)),
         ename(RISK_ENUM_CLOSE_REASON, risk_event_close_reason(e)),
         risk_event_note(e) ? ", note: " : "", risk_event_note(e) ? risk_event_note(e) : "");
    char want[96];
    snprintf(want, sizeof want, "%s, %s", ename(RISK_ENUM_EVENT_STATE, state),
             ename(RISK_ENUM_CLOSE_REASON, why));
    expect(d, risk_event_state_get(e) == state && risk_event_close_reason(e) == why, want);
    risk_event_free(e);
}

/* An operation's outcome: done, or the library's refusal (expected or not). */
static void outcome(demo *d, int rc, int expect)
{
    if (rc == RISK_OK) {
        line(d, "  -> done");
    } else {
        line(d, "  -> refused: %s: %s", risk_error_name(rc), risk_error_last());
    }
    if (rc != expect) d->failures++;
}

static void user_set(demo *d, const char *id, int mfa, int deleted)
{
    risk_user *u = NULL;
    int rc = risk_engine_user(&u, d->eng, id);
    if (rc == RISK_ENOTFOUND) rc = risk_user_new(&u, id);
    if (rc == RISK_OK && mfa) rc = risk_user_set_mfa_registered(u, 1, RISK_TIME_NONE);
    if (rc == RISK_OK && deleted) rc = risk_user_set_deleted(u, 1);
    if (rc == RISK_OK) rc = risk_engine_upsert_user(d->eng, d->actor, u);
    risk_user_free(u);
    line(d, "$ riskctl user set %s%s%s", id, mfa ? " --mfa" : "", deleted ? " --deleted" : "");
    if (rc != RISK_OK) outcome(d, rc, RISK_OK);
}

static void add_event(demo *d, const char *user, const char *id, const char *type,
                      risk_level level)
{
    risk_event *e = NULL;
    d->now += 60000; /* a minute later */
    int rc = risk_event_new(&e, id, user, type, level, d->now);
    if (rc == RISK_OK) rc = risk_engine_ingest(d->eng, d->actor, e, 0);
    risk_event_free(e);
    line(d, "$ riskctl event add %s %s %s %s", user, id, type, ename(RISK_ENUM_LEVEL, level));
    if (rc != RISK_OK) outcome(d, rc, RISK_OK);
}

static int count_item(const risk_history *h, void *arg)
{
    (void)h;
    ++*(uint64_t *)arg;
    return 0;
}

static void walk(demo *d)
{
    char pw[256];
    uint32_t closed = 0;
    int rc;

    step(d, "A fresh in-memory store and a user risk policy");
    line(d, "All active risk events contribute to a user's risk level (low, medium, high).");
    line(d, "The policy below requires a password change when the level is high.");
    risk_policy *p = NULL;
    rc = risk_policy_new(&p, "high-risk-users", RISK_LEVEL_HIGH,
                         RISK_CONTROL_REQUIRE_PASSWORD_CHANGE);
    if (rc == RISK_OK) rc = risk_engine_policy_set(d->eng, d->actor, p);
    risk_policy_free(p);
    line(d, "$ riskctl policy set high-risk-users --threshold high "
            "--control require_password_change");
    outcome(d, rc, RISK_OK);

    step(d, "1. Require password reset with a user risk policy");
    line(d, "alice registered MFA before any risk, so she can remediate herself.");
    user_set(d, "alice", 1, 0);
    add_event(d, "alice", "alice-leak-1", "leakedCredentials", RISK_LEVEL_HIGH);
    show_user(d, "alice", RISK_LEVEL_HIGH, RISK_STATE_AT_RISK);
    show_signin(d, "alice", RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RISK_LEVEL);
    line(d, "She proves her identity with MFA and changes the password:");
    d->now += 60000;
    line(d, "$ riskctl password-changed alice --secure");
    outcome(d, risk_engine_password_changed(d->eng, d->actor, "alice",
                                            RISK_PASSWORD_SECURE_CHANGE), RISK_OK);
    show_event(d, "alice-leak-1", RISK_EVENT_CLOSED, RISK_CLOSE_REMEDIATED);
    show_user(d, "alice", RISK_LEVEL_NONE, RISK_STATE_REMEDIATED);
    show_signin(d, "alice", RISK_DECISION_ALLOW, RISK_REASON_NONE);
    line(d, "The policy is not always applicable: bob never registered MFA.");
    user_set(d, "bob", 0, 0);
    add_event(d, "bob", "bob-leak-1", "leakedCredentials", RISK_LEVEL_HIGH);
    show_signin(d, "bob", RISK_DECISION_BLOCK, RISK_REASON_NOT_MFA_REGISTERED);
    line(d, "bob cannot self-remediate, so the sign-in is blocked: an administrator must act.");

    step(d, "2. Manual password reset");
    line(d, "'Require the user to reset password' only applies to MFA-registered users:");
    line(d, "$ riskctl reset-password bob --require");
    outcome(d, risk_engine_require_reset(d->eng, d->actor, "bob"), RISK_ENOMFA);
    show_user(d, "bob", RISK_LEVEL_HIGH, RISK_STATE_AT_RISK);
    line(d, "'Generate a temporary password' works for anyone and closes the risk at once:");
    d->now += 60000;
    line(d, "$ riskctl reset-password bob --temporary");
    rc = risk_engine_temporary_password(d->eng, d->actor, "bob", pw, sizeof pw);
    outcome(d, rc, RISK_OK);
    if (rc == RISK_OK) line(d, "  temporary password (shown once, never stored): %s", pw);
    memset(pw, 0, sizeof pw);
    show_event(d, "bob-leak-1", RISK_EVENT_CLOSED, RISK_CLOSE_REMEDIATED);
    show_user(d, "bob", RISK_LEVEL_NONE, RISK_STATE_REMEDIATED);
    show_signin(d, "bob", RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_TEMPORARY_PASSWORD);
    line(d, "bob changes the temporary password at the next sign-in:");
    d->now += 60000;
    line(d, "$ riskctl password-changed bob --insecure");
    outcome(d, risk_engine_password_changed(d->eng, d->actor, "bob", RISK_PASSWORD_INSECURE),
            RISK_OK);
    show_signin(d, "bob", RISK_DECISION_ALLOW, RISK_REASON_NONE);
    line(d, "For alice (MFA-registered) the administrator can require a reset instead:");
    add_event(d, "alice", "alice-travel-2", "unlikelyTravel", RISK_LEVEL_MEDIUM);
    line(d, "$ riskctl reset-password alice --require");
    outcome(d, risk_engine_require_reset(d->eng, d->actor, "alice"), RISK_OK);
    show_user(d, "alice", RISK_LEVEL_MEDIUM, RISK_STATE_AT_RISK);
    show_signin(d, "alice", RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RESET_REQUIRED);
    d->now += 60000;
    line(d, "$ riskctl password-changed alice --secure --reset");
    outcome(d, risk_engine_password_changed(d->eng, d->actor, "alice",
                                            RISK_PASSWORD_SECURE_RESET), RISK_OK);
    show_user(d, "alice", RISK_LEVEL_NONE, RISK_STATE_REMEDIATED);

    step(d, "3. Dismiss all risk events");
    line(d, "carol's account was deleted while it still had active risk events.");
    user_set(d, "carol", 0, 0);
    add_event(d, "carol", "carol-anon-1", "anonymizedIPAddress", RISK_LEVEL_MEDIUM);
    add_event(d, "carol", "carol-unfam-2", "unfamiliarFeatures", RISK_LEVEL_LOW);
    user_set(d, "carol", 0, 1);
    show_user(d, "carol", RISK_LEVEL_MEDIUM, RISK_STATE_AT_RISK);
    show_signin(d, "carol", RISK_DECISION_BLOCK, RISK_REASON_USER_DELETED);
    line(d, "No password reset is possible; dismissing closes every event without touching "
            "the password:");
    d->now += 60000;
    line(d, "$ riskctl dismiss carol --note \"account deleted\"");
    rc = risk_engine_dismiss(d->eng, d->actor, "carol", "account deleted", &closed);
    outcome(d, rc, RISK_OK);
    if (rc == RISK_OK) line(d, "  %" PRIu32 " events dismissed", closed);
    show_user(d, "carol", RISK_LEVEL_NONE, RISK_STATE_DISMISSED);

    step(d, "4. Close individual risk events manually");
    line(d, "An investigation of dave's three detections:");
    user_set(d, "dave", 0, 0);
    add_event(d, "dave", "dave-1", "malwareInfectedIPAddress", RISK_LEVEL_HIGH);
    add_event(d, "dave", "dave-2", "unlikelyTravel", RISK_LEVEL_MEDIUM);
    add_event(d, "dave", "dave-3", "unfamiliarFeatures", RISK_LEVEL_LOW);
    show_user(d, "dave", RISK_LEVEL_HIGH, RISK_STATE_AT_RISK);
    line(d, "Resolve: remediated outside librisk.");
    line(d, "$ riskctl resolve dave-1 --note \"machine reimaged\"");
    outcome(d, risk_engine_resolve(d->eng, d->actor, "dave-1", "machine reimaged"), RISK_OK);
    show_user(d, "dave", RISK_LEVEL_MEDIUM, RISK_STATE_AT_RISK);
    line(d, "False positive: it was dave travelling.");
    line(d, "$ riskctl false-positive dave-2");
    outcome(d, risk_engine_false_positive(d->eng, d->actor, "dave-2", NULL), RISK_OK);
    show_user(d, "dave", RISK_LEVEL_LOW, RISK_STATE_AT_RISK);
    line(d, "Ignore is for unusual circumstances only, so it needs a note:");
    line(d, "$ riskctl ignore dave-3");
    outcome(d, risk_engine_ignore(d->eng, d->actor, "dave-3", NULL), RISK_EINVAL);
    line(d, "$ riskctl ignore dave-3 --note \"test account of the red team\"");
    outcome(d, risk_engine_ignore(d->eng, d->actor, "dave-3", "test account of the red team"),
            RISK_OK);
    show_user(d, "dave", RISK_LEVEL_NONE, RISK_STATE_NONE);
    line(d, "Reactivate: manually closed events can be reopened and count again.");
    line(d, "$ riskctl reactivate dave-1");
    outcome(d, risk_engine_reactivate(d->eng, d->actor, "dave-1", NULL), RISK_OK);
    show_event(d, "dave-1", RISK_EVENT_ACTIVE, RISK_CLOSE_NONE);
    show_user(d, "dave", RISK_LEVEL_HIGH, RISK_STATE_AT_RISK);
    line(d, "Events closed through remediation can never be reactivated:");
    line(d, "$ riskctl reactivate alice-leak-1");
    outcome(d, risk_engine_reactivate(d->eng, d->actor, "alice-leak-1", NULL),
            RISK_ETRANSITION);
    uint64_t items = 0, bad = 0;
    rc = risk_engine_history_feed(d->eng, 0, count_item, &items);
    if (rc == RISK_OK) rc = risk_engine_verify_history(d->eng, NULL, &bad);
    if (rc == RISK_OK)
        line(d, "Every step above is in the audit history: %" PRIu64 " items, each user's "
                "(and the policies') hash chain verified.", items);
    else
        line(d, "  audit history: %s: %s", risk_error_name(rc), risk_error_last());
    expect(d, rc == RISK_OK, "the audit history to verify");

    step(d, "Next");
    line(d, "This demo used a throwaway in-memory store. Without --memory, riskctl keeps");
    line(d, "its state in a journal file (%s):", store_path(d->c));
    line(d, "  riskctl policy set high-risk --threshold high --control require_password_change");
    line(d, "  riskctl user set alice --mfa");
    line(d, "  riskctl event add alice leak-1 leakedCredentials high");
    line(d, "  riskctl users");
    line(d, "  riskctl signin alice");
    line(d, "  riskctl history alice");
}

int cmd_demo(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || np != 0) return rc ? rc : usage_error(c, "demo");
    demo d;
    memset(&d, 0, sizeof d);
    d.c = c;
    /* Start at --now, else a fixed morning, so runs are reproducible
     * (except the random temporary password). */
    d.now = c->have_now ? c->now : INT64_C(1795507200000); /* 2026-11-24T08:00:00Z */
    d.actor = c->actor;
    risk_store st;
    risk_engine_options eo;
    risk_engine_options_init(&eo);
    eo.clock = demo_clock;
    eo.clock_userdata = &d.now;
    rc = risk_memory_store_new(&st);
    if (rc != RISK_OK) return fail(c, rc);
    rc = risk_engine_new(&d.eng, &st, &eo);
    if (rc != RISK_OK) {
        if (st.close) st.close(st.ctx);
        return fail(c, rc);
    }
    if (c->json) {
        jw_init(&d.w, stdout);
        jw_obj(&d.w);
        jw_key(&d.w, "steps");
        jw_arr(&d.w);
    } else {
        printf("riskctl demo: the four ways to close active risk events "
               "(Azure AD Identity Protection's \"How To\"), on librisk %s.\n",
               risk_version_string());
    }
    walk(&d);
    if (c->json) {
        if (d.in_step) {
            jw_arr_end(&d.w);
            jw_obj_end(&d.w);
        }
        jw_arr_end(&d.w);
        jw_key(&d.w, "ok"); jw_bool(&d.w, d.failures == 0);
        jw_key(&d.w, "unexpected"); jw_int(&d.w, d.failures);
        jw_obj_end(&d.w);
        jw_end(&d.w);
    } else if (d.failures) {
        printf("\n%d step(s) did not behave as the seed describes.\n", d.failures);
    }
    risk_engine_free(d.eng);
    if (d.failures) {
        fprintf(stderr, "riskctl: demo: %d unexpected result(s)\n", d.failures);
        return EXIT_REFUSED;
    }
    return EXIT_DONE;
}
