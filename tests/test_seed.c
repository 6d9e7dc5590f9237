/* The seed ("How To: Close active risk events"), section by section, step
 * by step, through the engine on the in-memory store. */
#include "engine_fixture.h"

TestSuite(seed, .init = fx_open, .fini = fx_close);

/* "All active risk events contribute to the calculation of a value called
 * user risk level" — R-SC-2, R-SC-3, R-US-1 */
Test(seed, active_events_contribute_to_the_user_risk_level)
{
    fx_user("alice", 0, 0);
    cr_assert(eq(int, fx_level("alice"), RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_event("alice", "e1", "unfamiliarFeatures", RISK_LEVEL_LOW, 1), RISK_OK));
    cr_assert(eq(int, fx_level("alice"), RISK_LEVEL_LOW));
    cr_assert(eq(int, fx_state("alice"), RISK_STATE_AT_RISK));
    cr_assert(eq(int, fx_event("alice", "e2", "anonymizedIPAddress", RISK_LEVEL_MEDIUM, 2), RISK_OK));
    cr_assert(eq(int, fx_level("alice"), RISK_LEVEL_MEDIUM));
    cr_assert(eq(int, fx_event("alice", "e3", "leakedCredentials", RISK_LEVEL_HIGH, 3), RISK_OK));
    cr_assert(eq(int, fx_level("alice"), RISK_LEVEL_HIGH));
}

/* "Require password reset with a user risk policy": an MFA-registered user
 * self-remediates; the password change closes all active events and
 * brings the identity back into a safe state. R-PO-1, R-PO-2, R-PO-10 */
Test(seed, policy_requires_password_change_and_the_change_closes_all_events)
{
    fx_policy("high-risk", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("alice", 0, 0);
    fx_now = T0 + 10 * MINUTE;
    cr_assert(eq(int, fx_event("alice", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    cr_assert(eq(int, fx_event("alice", "e2", "unfamiliarFeatures", RISK_LEVEL_LOW, 6), RISK_OK));
    risk_reason why;
    cr_assert(eq(int, fx_signin("alice", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, why, RISK_REASON_RISK_LEVEL));
    cr_assert(eq(str, (char *)risk_verdict_policy(fx_verdict), "high-risk"));

    fx_now += MINUTE;
    cr_assert(eq(int, risk_engine_password_changed(fx, "alice", "alice", RISK_PASSWORD_SECURE_CHANGE),
                 RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, fx_reason("e1"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_reason("e2"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_level("alice"), RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_state("alice"), RISK_STATE_REMEDIATED));
    cr_assert(eq(int, fx_detail("alice"), RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_CHANGE));
    risk_user *u = fx_get("alice");
    cr_assert(eq(i64, risk_user_remediated_at(u), fx_now));
    risk_user_free(u);
    cr_assert(eq(int, fx_signin("alice", &why), RISK_DECISION_ALLOW));
    cr_assert(eq(int, why, RISK_REASON_NONE));
}

/* "Users that have not been registered for multi-factor authentication":
 * the policy is not applicable as self-remediation: block. R-PO-2 */
Test(seed, policy_blocks_a_user_not_registered_for_mfa)
{
    fx_policy("high-risk", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("bob", -1, 0);
    cr_assert(eq(int, fx_event("bob", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    risk_reason why;
    cr_assert(eq(int, fx_signin("bob", &why), RISK_DECISION_BLOCK));
    cr_assert(eq(int, why, RISK_REASON_NOT_MFA_REGISTERED));
}

/* "Users with active risk events that have been deleted": policies do not
 * apply; the sign-in is blocked as user_deleted. R-PO-6, R-OP-3 */
Test(seed, policy_does_not_apply_to_a_deleted_user)
{
    fx_policy("high-risk", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("carol", 0, 1);
    cr_assert(eq(int, fx_event("carol", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    cr_assert(eq(int, fx_level("carol"), RISK_LEVEL_HIGH)); /* R-OP-3: it counts */
    risk_reason why;
    cr_assert(eq(int, fx_signin("carol", &why), RISK_DECISION_BLOCK));
    cr_assert(eq(int, why, RISK_REASON_USER_DELETED));
    cr_assert_null(risk_verdict_policy(fx_verdict));
}

/* "An investigation that reveals that a reported risk event has been
 * performed by the legitimate user": mark it false positive; the policy
 * no longer fires. R-PO-12, R-IN-2 */
Test(seed, false_positive_after_investigation_stops_the_policy)
{
    fx_policy("medium-risk", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    fx_user("dave", 0, 0);
    cr_assert(eq(int, fx_event("dave", "e1", "impossibleTravel", RISK_LEVEL_MEDIUM, 5), RISK_OK));
    cr_assert(eq(int, fx_signin("dave", NULL), RISK_DECISION_BLOCK));
    cr_assert(eq(int, risk_engine_false_positive(fx, "admin", "e1", "user was travelling"), RISK_OK));
    cr_assert(eq(int, fx_signin("dave", NULL), RISK_DECISION_ALLOW));
    cr_assert(eq(int, fx_fb.calls, 1));
    cr_assert(eq(str, fx_fb.last, "e1"));
}

/* "Generate a temporary password … immediately bring an identity back into
 * a safe state … the user is prompted to change the password during the
 * next sign-in." Works without MFA. R-PW-1, R-PO-7 */
Test(seed, temporary_password_closes_everything_and_prompts_at_next_sign_in)
{
    fx_user("erin", -1, 0);
    cr_assert(eq(int, fx_event("erin", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    cr_assert(eq(int, fx_event("erin", "e2", "anonymizedIPAddress", RISK_LEVEL_LOW, 6), RISK_OK));
    char pw[64];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "helpdesk", "erin", pw, sizeof pw), RISK_OK),
              "%s", risk_error_last());
    cr_assert(eq(sz, strlen(pw), 16));
    cr_assert(eq(int, fx_reason("e1"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_reason("e2"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_level("erin"), RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_state("erin"), RISK_STATE_REMEDIATED));
    cr_assert(eq(int, fx_detail("erin"), RISK_DETAIL_ADMIN_GENERATED_TEMPORARY_PASSWORD));
    risk_reason why;
    cr_assert(eq(int, fx_signin("erin", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, why, RISK_REASON_TEMPORARY_PASSWORD));
    /* The user changes it (no MFA: an ordinary change clears the flag). */
    cr_assert(eq(int, risk_engine_password_changed(fx, "erin", "erin", RISK_PASSWORD_INSECURE), RISK_OK));
    cr_assert(eq(int, fx_signin("erin", &why), RISK_DECISION_ALLOW));
}

/* "Require the user to reset password … only applies to users that are
 * registered for MFA": the events stay active until the secure reset.
 * R-PW-2, R-PO-7, R-PO-10 */
Test(seed, require_reset_for_an_mfa_user_then_the_secure_reset_closes)
{
    fx_user("frank", 0, 0);
    cr_assert(eq(int, fx_event("frank", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    cr_assert(eq(int, risk_engine_require_reset(fx, "helpdesk", "frank"), RISK_OK), "%s",
              risk_error_last());
    cr_assert(eq(int, fx_evstate("e1"), RISK_EVENT_ACTIVE));
    risk_reason why;
    cr_assert(eq(int, fx_signin("frank", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, why, RISK_REASON_RESET_REQUIRED));
    cr_assert(eq(int, risk_engine_password_changed(fx, "frank", "frank", RISK_PASSWORD_SECURE_RESET),
                 RISK_OK));
    cr_assert(eq(int, fx_reason("e1"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_detail("frank"), RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_RESET));
    risk_user *u = fx_get("frank");
    cr_assert(eq(int, risk_user_reset_required(u), 0));
    risk_user_free(u);
    cr_assert(eq(int, fx_signin("frank", &why), RISK_DECISION_ALLOW));
}

/* "For users that have not been registered for MFA yet, this option isn't
 * available." R-PW-2 */
Test(seed, require_reset_is_refused_without_mfa_and_changes_nothing)
{
    fx_user("gina", -1, 0);
    cr_assert(eq(int, fx_event("gina", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    int before = fx_history_count(NULL);
    cr_assert(eq(int, risk_engine_require_reset(fx, "helpdesk", "gina"), RISK_ENOMFA));
    cr_assert(eq(int, fx_history_count(NULL), before));
    risk_user *u = fx_get("gina");
    cr_assert(eq(int, risk_user_reset_required(u), 0));
    risk_user_free(u);
    cr_assert(eq(int, fx_evstate("e1"), RISK_EVENT_ACTIVE));
}

/* "Dismiss all risk events … The preferred use case for this method is a
 * deleted user with active risk events." It does not touch the password.
 * R-DI-1, R-DI-2 */
Test(seed, dismiss_all_on_a_deleted_user)
{
    fx_user("hank", 0, 1);
    cr_assert(eq(int, fx_event("hank", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    cr_assert(eq(int, fx_event("hank", "e2", "anonymizedIPAddress", RISK_LEVEL_MEDIUM, 6), RISK_OK));
    cr_assert(eq(int, risk_engine_require_reset(fx, "helpdesk", "hank"), RISK_EDELETED)); /* R-PW-3 */
    uint32_t closed = 99;
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "hank", "account deleted", &closed), RISK_OK));
    cr_assert(eq(u32, closed, 2));
    cr_assert(eq(int, fx_reason("e1"), RISK_CLOSE_DISMISSED));
    cr_assert(eq(int, fx_level("hank"), RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_state("hank"), RISK_STATE_DISMISSED));
    cr_assert(eq(int, fx_detail("hank"), RISK_DETAIL_ADMIN_DISMISSED_ALL_RISK));
}

/* "Close individual risk events manually": resolve, false positive, ignore
 * and reactivate; reactivation only of manually closed events; a
 * remediated or dismissed event cannot be reactivated. R-EV-2, R-EV-3,
 * R-EV-4, R-IN-1, R-US-2 */
Test(seed, close_individual_events_and_reactivate)
{
    fx_user("ivan", 0, 0);
    cr_assert(eq(int, fx_event("ivan", "e1", "unfamiliarFeatures", RISK_LEVEL_MEDIUM, 1), RISK_OK));
    cr_assert(eq(int, fx_event("ivan", "e2", "anonymizedIPAddress", RISK_LEVEL_MEDIUM, 2), RISK_OK));
    cr_assert(eq(int, fx_event("ivan", "e3", "malwareInfectedIPAddress", RISK_LEVEL_MEDIUM, 3), RISK_OK));
    cr_assert(eq(int, fx_level("ivan"), RISK_LEVEL_HIGH)); /* three medium → high */

    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "e1", NULL), RISK_OK));
    cr_assert(eq(int, fx_level("ivan"), RISK_LEVEL_MEDIUM)); /* "you can lower the user risk level" */
    cr_assert(eq(int, risk_engine_false_positive(fx, "admin", "e2", NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_ignore(fx, "admin", "e3", NULL), RISK_EINVAL)); /* R-EV-2 */
    cr_assert(eq(int, fx_evstate("e3"), RISK_EVENT_ACTIVE));
    cr_assert(eq(int, risk_engine_ignore(fx, "admin", "e3", "known scanner range"), RISK_OK));
    cr_assert(eq(int, fx_level("ivan"), RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_state("ivan"), RISK_STATE_NONE));
    cr_assert(eq(int, fx_detail("ivan"), RISK_DETAIL_ADMIN_CLOSED_EVENTS));

    risk_event *ev = fx_ev("e3");
    cr_assert(eq(str, (char *)risk_event_closed_by(ev), "admin"));
    cr_assert(eq(str, (char *)risk_event_note(ev), "known scanner range"));
    risk_event_free(ev);

    /* Reactivate each manual closing: the level goes back up. */
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e1", NULL), RISK_OK));
    cr_assert(eq(int, fx_level("ivan"), RISK_LEVEL_MEDIUM));
    cr_assert(eq(int, fx_state("ivan"), RISK_STATE_AT_RISK));
    ev = fx_ev("e1");
    cr_assert(eq(int, risk_event_close_reason(ev), RISK_CLOSE_NONE));
    cr_assert(eq(i64, risk_event_closed_at(ev), RISK_TIME_NONE));
    cr_assert_null(risk_event_closed_by(ev));
    risk_event_free(ev);
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e2", NULL), RISK_OK));
    cr_assert(eq(int, fx_fb.withdrawn_calls, 1)); /* R-IN-2: feedback withdrawn */
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e3", NULL), RISK_OK));
    cr_assert(eq(int, fx_level("ivan"), RISK_LEVEL_HIGH));

    /* Remediated and dismissed events can never be reactivated. R-EV-4 */
    char pw[32];
    fx_now += MINUTE;
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "ivan", pw, sizeof pw), RISK_OK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e1", NULL), RISK_ETRANSITION));
    cr_assert(eq(int, fx_reason("e1"), RISK_CLOSE_REMEDIATED));
    fx_now += MINUTE;
    cr_assert(eq(int, fx_event("ivan", "e4", "leakedCredentials", RISK_LEVEL_HIGH, 30), RISK_OK));
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "ivan", NULL, NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "e4", NULL), RISK_ETRANSITION));
    cr_assert(eq(int, fx_reason("e4"), RISK_CLOSE_DISMISSED));
}

/* "Users must register for MFA before they face a situation requiring
 * remediation": MFA registered after the risk began does not count.
 * R-PO-11 */
Test(seed, mfa_registered_only_after_the_risk_began)
{
    fx_policy("high-risk", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("jack", -1, 0);
    cr_assert(eq(int, fx_event("jack", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    /* Whoever holds the leaked password registers MFA at minute 20. */
    fx_now = T0 + 20 * MINUTE;
    fx_user("jack", 20, 0);
    risk_reason why;
    cr_assert(eq(int, fx_signin("jack", &why), RISK_DECISION_BLOCK));
    cr_assert(eq(int, why, RISK_REASON_MFA_REGISTERED_DURING_RISK));
    cr_assert(eq(int, risk_engine_require_reset(fx, "helpdesk", "jack"), RISK_ENOMFA));
    cr_assert(eq(int, risk_engine_password_changed(fx, "jack", "jack", RISK_PASSWORD_SECURE_CHANGE),
                 RISK_OK));
    cr_assert(eq(int, fx_evstate("e1"), RISK_EVENT_ACTIVE)); /* counts as insecure */
    cr_assert(eq(int, fx_level("jack"), RISK_LEVEL_HIGH));
    /* The administrator's temporary password still works (R-PW-1). */
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "helpdesk", "jack", pw, sizeof pw), RISK_OK));
    cr_assert(eq(int, fx_level("jack"), RISK_LEVEL_NONE));
}
