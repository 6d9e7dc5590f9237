/* Engine rules of SPEC §3–§9, one behaviour per test. */
#include "engine_fixture.h"
#include "alloc_fail.h"

#include <ctype.h>
#include <stdio.h>

TestSuite(engine, .init = fx_open, .fini = fx_close);

/* ---- §3 lifecycle through the engine ---- */

/* R-EV-5: closing a closed event, or reactivating an active one, changes nothing */
Test(engine, closing_twice_is_a_transition_error_and_changes_nothing)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e1", NULL), RISK_ETRANSITION));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e1", "first"), RISK_OK));
    int h = fx_history_count("u");
    cr_assert(eq(int, risk_engine_false_positive(fx, "other", "e1", NULL), RISK_ETRANSITION));
    cr_assert(eq(int, risk_engine_resolve(fx, "other", "e1", NULL), RISK_ETRANSITION));
    cr_assert(eq(int, risk_engine_ignore(fx, "other", "e1", "n"), RISK_ETRANSITION));
    cr_assert(eq(int, fx_history_count("u"), h));
    risk_event *ev = fx_ev("e1");
    cr_assert(eq(int, risk_event_close_reason(ev), RISK_CLOSE_RESOLVED));
    cr_assert(eq(str, (char *)risk_event_closed_by(ev), "admin"));
    cr_assert(eq(str, (char *)risk_event_note(ev), "first"));
    risk_event_free(ev);
    /* Re-classify: reactivate then close again, two history items. */
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e1", NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_false_positive(fx, "admin", "e1", NULL), RISK_OK));
    cr_assert(eq(int, fx_history_count("u"), h + 2));
}

/* R-EV-7: an event detected at or before the last remediation cannot be
 * reactivated; one detected after it can; a late detection dated before
 * the remediation is still ingested active and counts. */
Test(engine, no_reactivation_across_a_remediation)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "old", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "old", NULL), RISK_OK));
    fx_now = T0 + 10 * MINUTE;
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_SECURE_CHANGE), RISK_OK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "old", NULL), RISK_ETRANSITION));
    cr_assert(eq(int, fx_reason("old"), RISK_CLOSE_RESOLVED));
    /* Late arrival dated before the remediation: active, counts. */
    fx_now = T0 + 20 * MINUTE;
    cr_assert(eq(int, fx_event("u", "late", "x", RISK_LEVEL_MEDIUM, 5), RISK_OK));
    cr_assert(eq(int, fx_evstate("late"), RISK_EVENT_ACTIVE));
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_MEDIUM));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "late", NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "late", NULL), RISK_ETRANSITION));
    /* After the remediation: reactivatable. */
    cr_assert(eq(int, fx_event("u", "new", "x", RISK_LEVEL_LOW, 15), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "new", NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "new", NULL), RISK_OK));
}

/* R-EV-8, R-SC-5, R-US-3: confirm compromised adds a reserved high event that
 * cannot be closed manually and never ages; only remediation or dismiss
 * closes it; confirm safe is refused. */
Test(engine, confirm_compromised)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, risk_engine_confirm_compromised(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_HIGH));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_CONFIRMED_COMPROMISED));
    cr_assert(eq(int, fx_detail("u"), RISK_DETAIL_ADMIN_CONFIRMED_COMPROMISED));
    char id[RISK_ID_MAX + 1] = "";
    struct ctx {
        char *id;
    } c = { id };
    int grab(const risk_event *ev, void *ud);
    cr_assert(eq(int, risk_engine_events(fx, "u", 0, grab, &c), RISK_OK));
    cr_assert(eq(int, strncmp(id, "librisk:", 8), 0));
    risk_event *ev = fx_ev(id);
    cr_assert(eq(str, (char *)risk_event_type(ev), "adminConfirmedUserCompromised"));
    cr_assert(eq(int, risk_event_level(ev), RISK_LEVEL_HIGH));
    risk_event_free(ev);
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", id, NULL), RISK_ETRANSITION));
    cr_assert(eq(int, risk_engine_false_positive(fx, "admin", id, NULL), RISK_ETRANSITION));
    cr_assert(eq(int, risk_engine_ignore(fx, "admin", id, "n"), RISK_ETRANSITION));
    cr_assert(eq(int, risk_engine_confirm_safe(fx, "admin", "u"), RISK_ETRANSITION));
    /* New events keep the state. */
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_CONFIRMED_COMPROMISED));
    /* Never ages: even after years (no aging catch-up closes it). */
    fx_now = T0 + 5000 * DAY;
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_HIGH));
    cr_assert(eq(int, fx_signin("u", NULL), RISK_DECISION_ALLOW));
    cr_assert(eq(int, fx_evstate(id), RISK_EVENT_ACTIVE));
    /* Remediation closes it. */
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_SECURE_CHANGE), RISK_OK));
    cr_assert(eq(int, fx_reason(id), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_REMEDIATED));
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_NONE));
}

int grab(const risk_event *ev, void *ud)
{
    struct ctx {
        char *id;
    } *c = ud;
    if (strncmp(risk_event_id(ev), "librisk:", 8) == 0)
        strcpy(c->id, risk_event_id(ev));
    return 0;
}

/* R-US-3: dismiss-all leaves confirmed compromised too. */
Test(engine, dismiss_leaves_confirmed_compromised)
{
    fx_user("u", -1, 0);
    cr_assert(eq(int, risk_engine_confirm_compromised(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "u", NULL, NULL), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_DISMISSED));
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_NONE));
}

/* R-US-4: confirm safe closes all as false positive (reactivatable), calls
 * the feedback hook for each, state confirmed_safe, level none. */
Test(engine, confirm_safe)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e2", "x", RISK_LEVEL_LOW, 2), RISK_OK));
    cr_assert(eq(int, risk_engine_confirm_safe(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, fx_reason("e1"), RISK_CLOSE_FALSE_POSITIVE));
    cr_assert(eq(int, fx_reason("e2"), RISK_CLOSE_FALSE_POSITIVE));
    cr_assert(eq(int, fx_fb.calls, 2));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_CONFIRMED_SAFE));
    cr_assert(eq(int, fx_detail("u"), RISK_DETAIL_ADMIN_CONFIRMED_SAFE));
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_NONE));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e1", NULL), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_AT_RISK)); /* R-US-1 */
}

/* R-US-5: on a user never at risk, a secure change, a temporary password or
 * a dismiss write their history item with 0 changed and leave state/detail. */
Test(engine, state_changes_only_for_users_at_risk)
{
    fx_user("u", 0, 0);
    int h = fx_history_count("u");
    uint32_t closed = 7;
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "u", NULL, &closed), RISK_OK));
    cr_assert(eq(u32, closed, 0)); /* R-DI-3 */
    cr_assert(eq(int, fx_state("u"), RISK_STATE_NONE));
    cr_assert(eq(int, fx_detail("u"), RISK_DETAIL_NONE));
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_SECURE_CHANGE), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_NONE));
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_NONE));
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_must_change_password(u), 1)); /* flags still set */
    risk_user_free(u);
    cr_assert(eq(int, fx_history_count("u"), h + 3));
}

/* R-US-2: a remediated user stays remediated until an event arrives. */
Test(engine, new_event_after_remediation_puts_user_at_risk)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_SECURE_CHANGE), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_REMEDIATED));
    cr_assert(eq(int, fx_event("u", "e2", "x", RISK_LEVEL_LOW, 2), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_AT_RISK));
    cr_assert(eq(int, fx_detail("u"), RISK_DETAIL_NONE));
}

/* ---- §4 aging through the engine ---- */

/* R-SC-2: a low event ages after 180 days: scoring treats it as closed at
 * once (no write needed), the next operation writes the closing as actor
 * system with a history item, and the user becomes none/aged_out. */
Test(engine, aging_closes_low_events_after_180_days)
{
    fx_policy("p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e2", "x", RISK_LEVEL_MEDIUM, 0), RISK_OK));
    risk_user *u = fx_get("u");
    cr_assert(eq(i64, risk_user_next_change_at(u), T0 + 180 * DAY));
    risk_user_free(u);
    fx_now = T0 + 180 * DAY - 1;
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_MEDIUM)); /* 1 + 3 = 4 ≥ 3 */
    cr_assert(eq(int, fx_signin("u", NULL), RISK_DECISION_BLOCK));
    fx_now = T0 + 180 * DAY; /* exactly at the limit: aged */
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_MEDIUM)); /* medium never ages */
    cr_assert(eq(int, fx_evstate("e1"), RISK_EVENT_CLOSED)); /* view as of now */
    int h = fx_history_count("u");
    cr_assert(eq(int, fx_signin("u", NULL), RISK_DECISION_BLOCK)); /* catch-up ran */
    cr_assert(eq(int, fx_history_count("u"), h + 1));
    risk_event *ev = fx_ev("e1");
    cr_assert(eq(int, risk_event_close_reason(ev), RISK_CLOSE_AGED));
    cr_assert(eq(str, (char *)risk_event_closed_by(ev), "system"));
    risk_event_free(ev);
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e1", NULL), RISK_ETRANSITION)); /* R-EV-4 */
    /* The last active event ages out → none/aged_out. */
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e2", NULL), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e3", "x", RISK_LEVEL_LOW, 180 * 24 * 60 + 10), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_AT_RISK));
    fx_now = T0 + 360 * DAY + 10 * MINUTE;
    uint64_t users = 0, events = 0;
    cr_assert(eq(int, risk_engine_expire(fx, &users, &events), RISK_OK));
    cr_assert(eq(u64, users, 1));
    cr_assert(eq(u64, events, 1));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_NONE));
    cr_assert(eq(int, fx_detail("u"), RISK_DETAIL_AGED_OUT));
    cr_assert(eq(int, fx_signin("u", NULL), RISK_DECISION_ALLOW));
}

/* R-SC-2: an event that an operation leaves active although it is past
 * its period (reactivated, updated to an old detection, or ingested so by
 * an operation whose own catch-up ran) no longer counts, and aging still
 * closes it: the user is due at once, and the next sweep closes it as aged
 * by system (it used to stay active for good, its user at_risk at level
 * none, skipped by every sweep). */
Test(engine, active_past_its_period_is_still_aged)
{
    fx_user("r", 0, 0);
    fx_user("u", 0, 0);
    fx_user("b", 0, 0);
    cr_assert(eq(int, fx_event("r", "r1", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    fx_now = T0 + DAY;
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "r1", NULL), RISK_OK));
    cr_assert(eq(int, fx_event("b", "b0", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    fx_now = T0 + 201 * DAY;
    cr_assert(eq(int, fx_event("u", "u1", "x", RISK_LEVEL_LOW, 200 * 24 * 60), RISK_OK));

    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "r1", NULL), RISK_OK));
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "u1", "u", "x", RISK_LEVEL_LOW, fx_now - 300 * DAY),
                 RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "detector", ev, RISK_INGEST_UPDATE), RISK_OK), "%s",
              risk_error_last());
    risk_event_free(ev);
    /* b0 is due: this ingest's catch-up closes it, and b1 arrives aged */
    cr_assert(eq(int, fx_event("b", "b1", "x", RISK_LEVEL_LOW, (201 - 190) * 24 * 60), RISK_OK));
    cr_assert(eq(int, fx_reason("b0"), RISK_CLOSE_AGED));

    const char *users[3] = { "r", "u", "b" };
    fx_now += MINUTE;
    uint64_t n_users = 0, n_events = 0;
    cr_assert(eq(int, risk_engine_expire(fx, &n_users, &n_events), RISK_OK));
    cr_assert(eq(u64, n_users, 3));
    cr_assert(eq(u64, n_events, 3));
    const char *evs[3] = { "r1", "u1", "b1" };
    for (int i = 0; i < 3; i++) {
        ev = fx_ev(evs[i]);
        cr_assert(eq(int, risk_event_state_get(ev), RISK_EVENT_CLOSED), "%s", evs[i]);
        cr_assert(eq(int, risk_event_close_reason(ev), RISK_CLOSE_AGED), "%s", evs[i]);
        cr_assert(eq(str, (char *)risk_event_closed_by(ev), "system"));
        risk_event_free(ev);
        cr_assert(eq(int, fx_state(users[i]), RISK_STATE_NONE));
        cr_assert(eq(int, fx_detail(users[i]), RISK_DETAIL_AGED_OUT));
    }
}

/* R-SC-7, R-SC-8: engine with custom parameters; invalid ones refused. */
Test(engine, custom_scoring_parameters)
{
    fx_close(); /* this test builds its own engines */
    risk_scoring sc;
    risk_scoring_init(&sc);
    sc.threshold_low = 5; sc.threshold_medium = 2; /* out of order */
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.scoring = &sc;
    cr_assert(eq(int, risk_engine_new(&fx, &st, &o), RISK_EINVAL));
    cr_assert_null(fx);
    st.close(st.ctx);
    risk_type_aging ta[1] = { { "unfamiliarFeatures", 30 * DAY } };
    risk_scoring_init(&sc);
    sc.type_aging = ta;
    sc.type_aging_count = 1;
    fx_open_with(&sc, 0);
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "unfamiliarFeatures", RISK_LEVEL_HIGH, 0), RISK_OK));
    fx_now = T0 + 30 * DAY - 1;
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_HIGH));
    fx_now = T0 + 30 * DAY;
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_NONE));
}

/* R-SC-6: a stored user's explanation. */
Test(engine, explain_a_stored_user)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    cr_assert(eq(int, fx_event("u", "e2", "y", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e2", NULL), RISK_OK));
    risk_explanation *ex = NULL;
    cr_assert(eq(int, risk_engine_explain(&ex, fx, "u"), RISK_OK));
    cr_assert(eq(sz, risk_explanation_count(ex), 2));
    cr_assert(eq(int, risk_explanation_result(ex)->level, RISK_LEVEL_LOW));
    cr_assert(eq(u64, risk_explanation_result(ex)->score, 1));
    size_t i1 = strcmp(risk_explanation_event_id(ex, 0), "e1") == 0 ? 0 : 1;
    cr_assert(eq(int, risk_explanation_counted(ex, i1), 1));
    cr_assert(eq(u64, risk_explanation_contribution(ex, i1), 1));
    cr_assert(eq(i64, risk_explanation_ages_at(ex, i1), T0 + 180 * DAY));
    cr_assert(eq(int, risk_explanation_counted(ex, 1 - i1), 0));
    risk_explanation_free(ex);
    cr_assert(eq(int, risk_engine_explain(&ex, fx, "nobody"), RISK_ENOTFOUND));
    cr_assert_null(ex);
}

/* ---- §6.1 sign-in through the engine ---- */

/* R-PO-4, R-PO-5: most restrictive enforced decision wins; report-only
 * policies are reported but never enforced. */
Test(engine, several_policies_and_report_only)
{
    fx_policy("a-require", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_policy("b-block-report", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY);
    fx_policy("c-off", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_OFF);
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    risk_reason why;
    cr_assert(eq(int, fx_signin("u", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(str, (char *)risk_verdict_policy(fx_verdict), "a-require"));
    cr_assert(eq(sz, risk_verdict_report_only_count(fx_verdict), 1));
    cr_assert(eq(str, (char *)risk_verdict_report_only_policy(fx_verdict, 0), "b-block-report"));
    cr_assert(eq(int, risk_verdict_report_only_decision(fx_verdict, 0), RISK_DECISION_BLOCK));
    fx_policy("d-block", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    cr_assert(eq(int, fx_signin("u", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE)); /* low < medium */
    cr_assert(eq(int, fx_event("u", "e2", "x", RISK_LEVEL_MEDIUM, 2), RISK_OK));
    cr_assert(eq(int, fx_signin("u", &why), RISK_DECISION_BLOCK));
    cr_assert(eq(str, (char *)risk_verdict_policy(fx_verdict), "d-block"));
}

/* R-PO-8: an unknown user signs in with level none: allow. */
Test(engine, unknown_user_is_allowed)
{
    fx_policy("p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    risk_reason why;
    cr_assert(eq(int, fx_signin("stranger", &why), RISK_DECISION_ALLOW));
    cr_assert(eq(int, why, RISK_REASON_NONE));
    cr_assert(eq(int, risk_verdict_level(fx_verdict), RISK_LEVEL_NONE));
}

/* R-PO-7: a temporary password requires a change whatever the level, but an
 * enforced block still wins (R-PO-5 precedence). */
Test(engine, temporary_password_precedence)
{
    fx_policy("p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    fx_user("u", -1, 0);
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
    risk_reason why;
    cr_assert(eq(int, fx_signin("u", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, why, RISK_REASON_TEMPORARY_PASSWORD));
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, fx_signin("u", &why), RISK_DECISION_BLOCK));
    cr_assert(eq(int, why, RISK_REASON_RISK_LEVEL));
}

/* R-PO-10: a change without MFA proof closes nothing but clears
 * must_change_password; reset_required stays until a secure reset. */
Test(engine, insecure_change)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_require_reset(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", RISK_PASSWORD_INSECURE), RISK_OK));
    cr_assert(eq(int, fx_evstate("e1"), RISK_EVENT_ACTIVE));
    risk_user *u = fx_get("u");
    cr_assert(eq(int, risk_user_reset_required(u), 1));
    cr_assert(eq(i64, risk_user_remediated_at(u), RISK_TIME_NONE));
    risk_user_free(u);
    cr_assert(eq(int, risk_engine_password_changed(fx, "x", "nobody", RISK_PASSWORD_INSECURE),
                 RISK_ENOTFOUND));
}

/* R-PW-1: 16 characters from the unambiguous alphabet with every class;
 * the length follows the option; a small buffer changes nothing. */
Test(engine, temporary_password_shape)
{
    fx_user("u", -1, 0);
    char small[8];
    int h = fx_history_count("u");
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", small, sizeof small), RISK_ERANGE));
    cr_assert(eq(int, fx_history_count("u"), h));
    for (int round = 0; round < 50; round++) {
        char pw[64];
        cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
        cr_assert(eq(sz, strlen(pw), 16));
        int up = 0, lo = 0, dg = 0, sy = 0;
        for (const char *p = pw; *p; p++) {
            cr_assert_null(strchr("0Oo1lI", *p), "ambiguous character in %s", pw);
            up |= isupper((unsigned char)*p) != 0;
            lo |= islower((unsigned char)*p) != 0;
            dg |= isdigit((unsigned char)*p) != 0;
            sy |= strchr("!#$%&*+-=?@^_", *p) != NULL;
        }
        cr_assert(up && lo && dg && sy, "%s lacks a class", pw);
    }
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "nobody", small, 64), RISK_ENOTFOUND));
}

/* R-PW-3: both manual resets are refused for a deleted user. */
Test(engine, manual_resets_refused_for_deleted_users)
{
    fx_user("u", 0, 1);
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_EDELETED));
    cr_assert(eq(int, risk_engine_require_reset(fx, "admin", "u"), RISK_EDELETED));
}

/* ---- §6.3 bulk dismiss, §6.5 operations ---- */

/* R-DI-4: per-user results; each user atomic on its own. */
Test(engine, bulk_dismiss)
{
    fx_user("a", 0, 0);
    fx_user("b", 0, 0);
    cr_assert(eq(int, fx_event("a", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, fx_event("a", "e2", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    const char *ids[] = { "a", "missing", "b" };
    int res[3];
    uint32_t closed[3];
    cr_assert(eq(int, risk_engine_dismiss_bulk(fx, "admin", ids, 3, "bulk", res, closed), 1));
    cr_assert(eq(int, res[0], RISK_OK));
    cr_assert(eq(int, res[1], RISK_ENOTFOUND));
    cr_assert(eq(int, res[2], RISK_OK));
    cr_assert(eq(u32, closed[0], 2));
    cr_assert(eq(u32, closed[2], 0));
    cr_assert(eq(int, fx_state("a"), RISK_STATE_DISMISSED));
}

/* R-OP-0: the actor is validated and recorded in closed_by and history. */
Test(engine, actor_is_recorded)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "", "e1", NULL), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_resolve(fx, NULL, "e1", NULL), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_resolve(fx, "bad\x01", "e1", NULL), RISK_EINVAL));
    cr_assert_not_null(strstr(risk_error_last(), "actor"));
    cr_assert(eq(int, fx_evstate("e1"), RISK_EVENT_ACTIVE));
    cr_assert(eq(int, risk_engine_resolve(fx, "sec-admin@example", "e1", NULL), RISK_OK));
    risk_event *ev = fx_ev("e1");
    cr_assert(eq(str, (char *)risk_event_closed_by(ev), "sec-admin@example"));
    risk_event_free(ev);
    struct {
        char actor[64];
        int action;
    } last = { "", -1 };
    int keep_last(const risk_history *h, void *ud);
    cr_assert(eq(int, risk_engine_history(fx, "u", keep_last, &last), RISK_OK));
    cr_assert(eq(str, last.actor, "sec-admin@example"));
    cr_assert(eq(int, last.action, RISK_HISTORY_RESOLVE));
}

int keep_last(const risk_history *h, void *ud)
{
    struct {
        char actor[64];
        int action;
    } *last = ud;
    snprintf(last->actor, sizeof last->actor, "%s", risk_history_actor(h));
    last->action = risk_history_action_get(h);
    return 0;
}

/* R-OP-1: the same event again is OK and changes nothing; a different event
 * under a taken id is EEXISTS. R-OP-7: with the update flag an active event
 * is updated and rescored; a closed one never. */
Test(engine, ingest_idempotence_and_updates)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    int h = fx_history_count(NULL);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, fx_history_count(NULL), h));
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_EEXISTS));
    cr_assert(eq(int, fx_event("other", "e1", "x", RISK_LEVEL_LOW, 1), RISK_EEXISTS));
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e1", "u", "x", RISK_LEVEL_HIGH, T0 + MINUTE), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "d", ev, RISK_INGEST_UPDATE), RISK_OK));
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_HIGH));
    cr_assert(eq(int, fx_history_count(NULL), h + 1));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e1", NULL), RISK_OK));
    cr_assert(eq(int, risk_event_set_level(ev, RISK_LEVEL_LOW), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "d", ev, RISK_INGEST_UPDATE), RISK_ETRANSITION));
    cr_assert(eq(int, risk_engine_ingest(fx, "d", ev, 0x8), RISK_EINVAL));
    risk_event_free(ev);
    /* Reserved ids are refused. */
    cr_assert(eq(int, fx_event("u", "librisk:mine", "x", RISK_LEVEL_LOW, 1), RISK_EINVAL));
}

/* R-OP-2: unknown users are created, or refused when so configured. */
Test(engine, ingest_for_unknown_users)
{
    cr_assert(eq(int, fx_event("new", "e1", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    risk_user *u = fx_get("new");
    cr_assert(eq(int, risk_user_mfa_registered(u), 0));
    cr_assert(eq(int, risk_user_deleted(u), 0));
    risk_user_free(u);
    fx_close();
    fx_open_with(NULL, 1);
    cr_assert(eq(int, fx_event("new", "e1", "x", RISK_LEVEL_LOW, 1), RISK_ENOTFOUND));
    risk_user *none = NULL;
    cr_assert(eq(int, risk_engine_user(&none, fx, "new"), RISK_ENOTFOUND));
}

/* R-OP-4: upsert changes only mfa_registered and deleted; re-registering
 * keeps the original registration time (R-PO-11). */
Test(engine, upsert_changes_only_the_flags)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, "u"), RISK_OK));
    cr_assert(eq(int, risk_user_set_mfa_registered(u, 1, RISK_TIME_NONE), RISK_OK));
    fx_now = T0 + 99 * MINUTE;
    cr_assert(eq(int, risk_engine_upsert_user(fx, "admin", u), RISK_OK));
    risk_user_free(u);
    u = fx_get("u");
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), T0)); /* unchanged */
    cr_assert(eq(int, risk_user_risk_level(u), RISK_LEVEL_HIGH));
    cr_assert(eq(int, risk_user_risk_state(u), RISK_STATE_AT_RISK));
    risk_user_free(u);
}

/* R-OP-5: users at or above a level, highest first then id; events by
 * detected_at then id; history in order; the store-wide feed. */
static int collect_ids(const risk_user *u, void *ud)
{
    strcat(ud, risk_user_id(u));
    strcat(ud, ",");
    return 0;
}

static int collect_events(const risk_event *e, void *ud)
{
    strcat(ud, risk_event_id(e));
    strcat(ud, ",");
    return 0;
}

static int collect_seq(const risk_history *h, void *ud)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu,", (unsigned long long)risk_history_seq(h));
    strcat(ud, buf);
    return 0;
}

/* R-OP-5: events by detected_at, then id, for a small user (sorted in
 * place) and a large one (sorted by qsort): ties on the time broken by id,
 * ingested in an order that is neither. */
Test(engine, events_order_small_and_large)
{
    for (int n = 5; n <= 40; n += 35) {
        char user[8], id[16], want[1024] = "", got[1024] = "";
        snprintf(user, sizeof user, "o%d", n);
        for (int i = 0; i < n; i++) {
            int k = (i * 7) % n; /* a permutation of 0..n-1 */
            snprintf(id, sizeof id, "%s-%02d", user, k);
            cr_assert(eq(int, fx_event(user, id, "x", RISK_LEVEL_LOW, k / 3), RISK_OK));
        }
        for (int k = 0; k < n; k++) { /* times k / 3: ties of three, by id */
            snprintf(id, sizeof id, "%s-%02d,", user, k);
            strcat(want, id);
        }
        cr_assert(eq(int, risk_engine_events(fx, user, 0, collect_events, got), RISK_OK));
        cr_assert(eq(str, got, want));
    }
}

Test(engine, queries)
{
    cr_assert(eq(int, fx_event("m", "m1", "x", RISK_LEVEL_MEDIUM, 5), RISK_OK));
    cr_assert(eq(int, fx_event("h2", "h2a", "x", RISK_LEVEL_HIGH, 5), RISK_OK));
    cr_assert(eq(int, fx_event("h1", "h1a", "x", RISK_LEVEL_HIGH, 5), RISK_OK));
    cr_assert(eq(int, fx_event("l", "l1", "x", RISK_LEVEL_LOW, 5), RISK_OK));
    fx_user("n", 0, 0);
    char buf[512] = "";
    cr_assert(eq(int, risk_engine_users(fx, RISK_LEVEL_LOW, collect_ids, buf), RISK_OK));
    cr_assert(eq(str, buf, "h1,h2,m,l,"));
    buf[0] = 0;
    cr_assert(eq(int, risk_engine_users(fx, RISK_LEVEL_HIGH, collect_ids, buf), RISK_OK));
    cr_assert(eq(str, buf, "h1,h2,"));
    buf[0] = 0;
    cr_assert(eq(int, risk_engine_users(fx, RISK_LEVEL_NONE, collect_ids, buf), RISK_OK));
    cr_assert(eq(str, buf, "h1,h2,m,l,n,"));

    cr_assert(eq(int, fx_event("m", "m0", "x", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, fx_event("m", "m2b", "x", RISK_LEVEL_LOW, 9), RISK_OK));
    cr_assert(eq(int, fx_event("m", "m2a", "x", RISK_LEVEL_LOW, 9), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "m2b", NULL), RISK_OK));
    buf[0] = 0;
    cr_assert(eq(int, risk_engine_events(fx, "m", 0, collect_events, buf), RISK_OK));
    cr_assert(eq(str, buf, "m0,m1,m2a,m2b,"));
    buf[0] = 0;
    cr_assert(eq(int, risk_engine_events(fx, "m", RISK_EVENTS_ACTIVE, collect_events, buf), RISK_OK));
    cr_assert(eq(str, buf, "m0,m1,m2a,"));

    buf[0] = 0;
    cr_assert(eq(int, risk_engine_history(fx, "m", collect_seq, buf), RISK_OK));
    cr_assert(eq(str, buf, "1,6,7,8,9,"));
    buf[0] = 0;
    cr_assert(eq(int, risk_engine_history_feed(fx, 8, collect_seq, buf), RISK_OK));
    cr_assert(eq(str, buf, "8,9,"));
    /* A visitor's non-zero value stops and is returned. */
    int stop(const risk_user *u, void *ud);
    cr_assert(eq(int, risk_engine_users(fx, RISK_LEVEL_NONE, stop, NULL), 42));
}

int stop(const risk_user *u, void *ud)
{
    (void)u;
    (void)ud;
    return 42;
}

/* R-OP-6: policy changes are atomic, kept by the store, in the history. */
static int count_policies(const risk_policy *p, void *ud)
{
    (void)p;
    ++*(int *)ud;
    return 0;
}

static int last_policy_item(const risk_history *h, void *ud)
{
    const char **out = ud;
    if (risk_history_policy(h)) {
        out[0] = risk_history_policy(h);
        out[1] = risk_history_note(h);
        static char keep[2][1100];
        snprintf(keep[0], sizeof keep[0], "%s", out[0]);
        snprintf(keep[1], sizeof keep[1], "%s", out[1] ? out[1] : "");
        out[0] = keep[0];
        out[1] = keep[1];
    }
    return 0;
}

Test(engine, policy_changes_are_audited)
{
    fx_policy("p1", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    fx_policy("p1", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_ON); /* replace */
    int n = 0;
    cr_assert(eq(int, risk_engine_policies(fx, count_policies, &n), RISK_OK));
    cr_assert(eq(int, n, 1));
    const char *item[2] = { NULL, NULL };
    cr_assert(eq(int, risk_engine_history_feed(fx, 0, last_policy_item, item), RISK_OK));
    cr_assert(eq(str, (char *)item[0], "p1"));
    cr_assert_not_null(strstr(item[1], "before: mode=on threshold=high"));
    cr_assert_not_null(strstr(item[1], "after: mode=on threshold=medium"));
    cr_assert(eq(int, risk_engine_policy_remove(fx, "admin", "p1"), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_remove(fx, "admin", "p1"), RISK_ENOTFOUND));
    n = 0;
    cr_assert(eq(int, risk_engine_policies(fx, count_policies, &n), RISK_OK));
    cr_assert(eq(int, n, 0));
    cr_assert(eq(int, fx_history_count(NULL), 3));
}

/* R-OP-8: the user-change hook sees before and after. */
Test(engine, user_change_hook)
{
    fx_user("u", 0, 0);
    int calls = fx_ch.calls;
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, fx_ch.calls, calls + 1));
    cr_assert(eq(int, fx_ch.before, RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_ch.after, RISK_LEVEL_HIGH));
    cr_assert(eq(int, fx_ch.state_after, RISK_STATE_AT_RISK));
    cr_assert(eq(int, risk_engine_require_reset(fx, "admin", "u"), RISK_OK)); /* no level change */
    cr_assert(eq(int, fx_ch.calls, calls + 1));
}

/* R-IV-1: bad arguments → EINVAL naming the argument, nothing changed. */
Test(engine, bad_arguments_change_nothing)
{
    fx_user("u", 0, 0);
    int h = fx_history_count(NULL);
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(NULL, "u", v), RISK_EINVAL));
    cr_assert(eq(int, risk_verdict_decision(v), RISK_DECISION_BLOCK)); /* fail closed */
    cr_assert(eq(int, risk_engine_sign_in(fx, "\xff", v), RISK_EINVAL));
    cr_assert_not_null(strstr(risk_error_last(), "user_id"));
    cr_assert(eq(int, risk_engine_sign_in(fx, "u", NULL), RISK_EINVAL));
    risk_verdict_free(v);
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", NULL, NULL, NULL), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "u", "\xc0\x80", NULL), RISK_EINVAL));
    cr_assert_not_null(strstr(risk_error_last(), "note"));
    cr_assert(eq(int, risk_engine_password_changed(fx, "u", "u", (risk_password_change)7), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_ingest(fx, "d", NULL, 0), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_upsert_user(fx, "admin", NULL), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_policy_set(fx, "admin", NULL), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_users(fx, (risk_level)9, collect_ids, NULL), RISK_EINVAL));
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", NULL, 32), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "u", pw, sizeof pw), RISK_OK));
    cr_assert(eq(int, fx_history_count(NULL), h + 1));
}

/* R-ST-1: an options struct of an unknown version is refused; a store table
 * newer than the library is refused; R-ST-4: missing optional callbacks
 * give EUNSUPPORTED. */
Test(engine, versioned_structs_and_optional_callbacks)
{
    fx_close(); /* this test builds its own engine */
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.version = 99;
    cr_assert(eq(int, risk_engine_new(&fx, &st, &o), RISK_EINVAL));
    st.version = RISK_STORE_VERSION + 1;
    cr_assert(eq(int, risk_engine_new(&fx, &st, NULL), RISK_EINVAL));
    st.version = RISK_STORE_VERSION;
    st.list_users = NULL;
    st.read_history = NULL;
    st.view_user = NULL;
    cr_assert(eq(int, risk_engine_new(&fx, &st, NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_users(fx, RISK_LEVEL_LOW, collect_ids, NULL), RISK_EUNSUPPORTED));
    cr_assert(eq(int, risk_engine_history_feed(fx, 0, collect_seq, NULL), RISK_EUNSUPPORTED));
    cr_assert(eq(int, risk_engine_expire(fx, NULL, NULL), RISK_EUNSUPPORTED));
    cr_assert(eq(int, risk_engine_compact(fx), RISK_EUNSUPPORTED));
    /* Sign-in still works without view_user (slow path). */
    fx_now = T0;
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(fx, "nobody", v), RISK_OK));
    cr_assert(eq(int, risk_verdict_decision(v), RISK_DECISION_ALLOW));
    risk_verdict_free(v);
}

/* R-US-4: confirm safe is an explicit verdict: it sets confirmed_safe even
 * on a user who was never at risk (R-US-5 is for routine remediations). */
Test(engine, confirm_safe_on_a_user_never_at_risk)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, risk_engine_confirm_safe(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_CONFIRMED_SAFE));
    cr_assert(eq(int, fx_detail("u"), RISK_DETAIL_ADMIN_CONFIRMED_SAFE));
    cr_assert(eq(int, fx_level("u"), RISK_LEVEL_NONE));
}

/* R-US-4, R-IN-2: the feedback hook hears of the events confirm safe closed
 * as false positive, not of one its aging catch-up closed in the same
 * operation (a classifier would learn from a wrong label). */
Test(engine, confirm_safe_feeds_back_only_its_false_positives)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "old-low", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    cr_assert(eq(int, fx_event("u", "med", "x", RISK_LEVEL_MEDIUM, 100 * 24 * 60), RISK_OK));
    fx_now = T0 + 200 * DAY; /* old-low is past its 180 days */
    int before = fx_fb.calls;
    cr_assert(eq(int, risk_engine_confirm_safe(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, fx_reason("old-low"), RISK_CLOSE_AGED));
    cr_assert(eq(int, fx_reason("med"), RISK_CLOSE_FALSE_POSITIVE));
    cr_assert(eq(int, fx_fb.calls - before, 1));
}

static const char *fx_note_of(const char *id, char *buf, size_t n)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_engine_event(&ev, fx, id), RISK_OK));
    const char *note = risk_event_note(ev);
    snprintf(buf, n, "%s", note ? note : "(none)");
    risk_event_free(ev);
    return buf;
}

/* R-EV-2: each closing records its own note; one given none has none (an
 * earlier closing's note does not carry over); a reactivation keeps the
 * note of the closing it undoes (docs/decisions.md). */
Test(engine, a_closing_records_its_own_note)
{
    char buf[64];
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, risk_engine_ignore(fx, "admin1", "e1", "travelling"), RISK_OK));
    cr_assert_str_eq(fx_note_of("e1", buf, sizeof buf), "travelling");
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin2", "e1", NULL), RISK_OK));
    cr_assert_str_eq(fx_note_of("e1", buf, sizeof buf), "travelling");
    cr_assert(eq(int, risk_engine_resolve(fx, "admin3", "e1", NULL), RISK_OK));
    cr_assert_str_eq(fx_note_of("e1", buf, sizeof buf), "(none)");
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin2", "e1", NULL), RISK_OK));
    uint32_t closed = 0;
    cr_assert(eq(int, risk_engine_ignore(fx, "admin1", "e1", "again"), RISK_OK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin2", "e1", NULL), RISK_OK));
    /* a dismissal's note is its history item's: the events it closes
     * carry none of their own, and not the old one either */
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin4", "u", "all clear", &closed), RISK_OK));
    cr_assert_str_eq(fx_note_of("e1", buf, sizeof buf), "(none)");
}

/* §2: risk_updated_at is the time of the last change of level, state or
 * detail. A change by aging happened when the event aged: a read-only
 * query shows that time whenever it is made, and so does the record the
 * catch-up writes later. */
Test(engine, aging_stamps_risk_updated_at_with_the_aging_time)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "low1", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    int64_t aged = T0 + 180 * DAY; /* low ages after 180 days */
    int64_t seen[3];
    for (int k = 0; k < 2; k++) {
        fx_now = T0 + (181 + 9 * k) * DAY;
        risk_user *u = fx_get("u");
        seen[k] = risk_user_risk_updated_at(u);
        cr_assert(eq(int, risk_user_risk_level(u), RISK_LEVEL_NONE));
        risk_user_free(u);
    }
    fx_now = T0 + 200 * DAY;
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(fx, "u", v), RISK_OK)); /* writes the catch-up */
    risk_verdict_free(v);
    risk_user *u = fx_get("u");
    seen[2] = risk_user_risk_updated_at(u);
    risk_user_free(u);
    for (int k = 0; k < 3; k++)
        cr_assert(eq(i64, seen[k], aged), "look %d: %lld", k, (long long)(seen[k] - T0));
}

/* §2: a detection that arrives already past its aging period put the user
 * at risk when it came (its ingest's history item says so); the aging
 * that takes it back is stamped no earlier than that change, in the query
 * and in the record the catch-up writes. */
Test(engine, aging_never_stamps_before_the_last_change)
{
    fx_user("w", 0, 0);
    cr_assert(eq(int, fx_event("w", "old", "x", RISK_LEVEL_LOW, -200 * 24 * 60), RISK_OK));
    risk_user *u = fx_get("w"); /* as of T0: aged already */
    cr_assert(eq(int, risk_user_risk_level(u), RISK_LEVEL_NONE));
    cr_assert(risk_user_risk_updated_at(u) >= T0);
    risk_user_free(u);
    fx_now = T0 + 1000;
    fx_user("w", 0, 0); /* any operation writes the catch-up */
    u = fx_get("w");
    cr_assert(eq(int, (int)risk_user_risk_detail(u), RISK_DETAIL_AGED_OUT));
    cr_assert(eq(i64, risk_user_risk_updated_at(u), T0), "%lld",
              (long long)(risk_user_risk_updated_at(u) - T0));
    risk_user_free(u);
}

/* R-PO-11, R-US-3: confirm compromised confirms the risk the user is in;
 * its event is dated when that risk began. Resolving the detection that
 * began it must not make an MFA registered during the risk count (the
 * compromise's holder could then remediate). */
Test(engine, confirm_compromised_keeps_when_the_risk_began)
{
    fx_policy("p", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_HIGH, 0), RISK_OK));
    fx_now = T0 + DAY;
    fx_user("u", 24 * 60, 0); /* MFA registered a day into the risk */
    risk_reason r;
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_BLOCK));
    cr_assert(eq(int, r, RISK_REASON_MFA_REGISTERED_DURING_RISK));
    fx_now = T0 + 2 * DAY;
    cr_assert(eq(int, risk_engine_confirm_compromised(fx, "admin", "u"), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e1", NULL), RISK_OK));
    cr_assert(eq(int, fx_state("u"), RISK_STATE_CONFIRMED_COMPROMISED));
    cr_assert(eq(int, fx_signin("u", &r), RISK_DECISION_BLOCK));
    cr_assert(eq(int, r, RISK_REASON_MFA_REGISTERED_DURING_RISK));
    /* a user not at risk: the event is dated now */
    fx_user("w", -1, 0);
    cr_assert(eq(int, risk_engine_confirm_compromised(fx, "admin", "w"), RISK_OK));
    risk_user *u = fx_get("w");
    cr_assert(eq(i64, risk_user_risk_since(u), fx_now));
    risk_user_free(u);
}

/* A store whose user_events fails from the n-th call on (0: never). */
static risk_store fl_inner;
static int fl_at, fl_calls;
static int fl_user_events(void *ctx, void *txn, const char *uid, risk_event_visit_fn fn,
                          void *arg)
{
    if (fl_at && ++fl_calls >= fl_at)
        return risk_error_set(RISK_EIO, "test store: user_events fails");
    return fl_inner.user_events(ctx, txn, uid, fn, arg);
}
static int fl_visit(const risk_user *u, void *arg)
{
    (void)u;
    ++*(int *)arg;
    return RISK_OK;
}

/* R-IV-3, R-SC-2: listing users refreshes those due for aging; a store
 * failure on the second of them returns the error, having freed each user
 * once (the first, refreshed and kept, was freed twice: a crash). */
Test(engine, users_listing_survives_a_store_failure)
{
    cr_assert(eq(int, risk_memory_store_new(&fl_inner), RISK_OK));
    risk_store st = fl_inner;
    st.user_events = fl_user_events;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &st, &o), RISK_OK));
    const char *users[3] = {"alice", "bob", "carol"};
    for (int i = 0; i < 3; i++) {
        risk_event *ev = NULL;
        char id[16];
        snprintf(id, sizeof id, "e%d", i);
        cr_assert(eq(int, risk_event_new(&ev, id, users[i], "x", RISK_LEVEL_LOW, T0), RISK_OK));
        cr_assert(eq(int, risk_engine_ingest(e, "detector", ev, 0), RISK_OK));
        risk_event_free(ev);
    }
    fx_now = T0 + 181 * DAY; /* every user is due: the listing reads their events */
    /* at or above none: every user is kept; at or above low: every one,
     * aged to none, is dropped (and freed) before the failure */
    for (int min = RISK_LEVEL_NONE; min <= RISK_LEVEL_LOW; min++)
        for (int at = 1; at <= 4; at++) {
            fl_at = at, fl_calls = 0;
            int seen = 0;
            int rc = risk_engine_users(e, (risk_level)min, fl_visit, &seen);
            cr_assert(eq(int, rc, at <= 3 ? RISK_EIO : RISK_OK), "min %d at %d", min, at);
            cr_assert(eq(int, seen, at <= 3 || min == RISK_LEVEL_LOW ? 0 : 3), "at %d", at);
        }
    fl_at = 0;
    risk_engine_free(e);
}

/* R-IV-3, R-SC-2: a read of a user due for aging shows it aged, or fails:
 * an allocation failing inside the read never gives a user aged out
 * beside an event still active (the closing copied its actor). */
Test(engine, aged_view_under_allocation_failure_is_whole_or_an_error)
{
    fx_user("u", 0, 0);
    cr_assert(eq(int, fx_event("u", "e1", "x", RISK_LEVEL_LOW, 0), RISK_OK));
    fx_now = T0 + 181 * DAY;
    int failed = 0;
    for (int k = 1; k < 60; k++) {
        risk_user *u = NULL;
        alloc_fail_install(k);
        int rc = risk_engine_user(&u, fx, "u");
        failed += alloc_fail_failed();
        alloc_fail_reset();
        if (rc == RISK_OK) {
            cr_assert(eq(int, risk_user_risk_state(u), RISK_STATE_NONE), "k %d", k);
            cr_assert(eq(u32, risk_user_active_events(u), 0), "k %d", k);
        } else
            cr_assert(eq(int, rc, RISK_ENOMEM), "k %d", k);
        risk_user_free(u);
        risk_event *ev = NULL;
        alloc_fail_install(k);
        rc = risk_engine_event(&ev, fx, "e1");
        alloc_fail_reset();
        if (rc == RISK_OK) {
            cr_assert(eq(int, risk_event_state_get(ev), RISK_EVENT_CLOSED), "k %d", k);
            cr_assert(eq(int, risk_event_close_reason(ev), RISK_CLOSE_AGED), "k %d", k);
        } else
            cr_assert(eq(int, rc, RISK_ENOMEM), "k %d", k);
        risk_event_free(ev);
    }
    cr_assert(gt(int, failed, 0));
}

/* R-SC-2, R-IV-1: an event's aging time past the representable times
 * (RISK_TIME_MAX) is never: the user's next change stays none and its
 * record encodes (the journal used to refuse such an ingest; the memory
 * store kept a record it could not encode). */
Test(engine, aging_past_the_last_time_is_never)
{
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "late", "u", "x", RISK_LEVEL_LOW, RISK_TIME_MAX - 1),
                 RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(fx, "detector", ev, 0), RISK_OK), "%s",
              risk_error_last());
    risk_event_free(ev);
    risk_user *u = fx_get("u");
    cr_assert(eq(i64, risk_user_next_change_at(u), RISK_TIME_NONE));
    uint8_t buf[512];
    size_t n = 0;
    cr_assert(eq(int, risk_user_encode(buf, sizeof buf, &n, u), RISK_OK), "%s", risk_error_last());
    risk_user_free(u);
    risk_score_result r;
    const risk_event *one[1];
    cr_assert(eq(int, risk_event_new(&ev, "e", "u", "x", RISK_LEVEL_LOW, RISK_TIME_MAX - 1),
                 RISK_OK));
    one[0] = ev;
    cr_assert(eq(int, risk_score(&r, NULL, one, 1, 0), RISK_OK));
    cr_assert(eq(i64, r.next_change_at, RISK_TIME_NONE));
    cr_assert(eq(int, r.level, RISK_LEVEL_LOW));
    risk_event_free(ev);
}
