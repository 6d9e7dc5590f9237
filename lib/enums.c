/* Names of every enumeration (SPEC spellings), as tables indexed by value:
 * the tables are the documentation, and parsing is a scan of the same
 * table, so a name and its parse can never disagree. */
#include "internal.h"

static const char *const levels[] = {"none", "low", "medium", "high"};
static const char *const event_states[] = {"active", "closed"};
static const char *const close_reasons[] = {"none",      "resolved",   "false_positive", "ignored",
                                            "dismissed", "remediated", "aged"};
static const char *const actions[] = {"resolve",   "false_positive", "ignore",    "dismiss",
                                      "remediate", "age",            "reactivate"};
static const char *const timings[] = {"realtime", "offline"};
static const char *const states[] = {"none",           "at_risk",
                                     "remediated",     "dismissed",
                                     "confirmed_safe", "confirmed_compromised"};
static const char *const details[] = {"none",
                                      "admin_generated_temporary_password",
                                      "user_performed_secured_password_change",
                                      "user_performed_secured_password_reset",
                                      "admin_dismissed_all_risk",
                                      "admin_confirmed_compromised",
                                      "admin_confirmed_safe",
                                      "admin_closed_events",
                                      "aged_out"};
/* SPEC §5 right column; the last two have no Graph value and keep librisk's. */
static const char *const details_graph[] = {"none",
                                            "adminGeneratedTemporaryPassword",
                                            "userPerformedSecuredPasswordChange",
                                            "userPerformedSecuredPasswordReset",
                                            "adminDismissedAllRiskForUser",
                                            "adminConfirmedUserCompromised",
                                            "adminConfirmedAccountSafe",
                                            "admin_closed_events",
                                            "aged_out"};
static const char *const modes[] = {"off", "on", "report_only"};
static const char *const controls[] = {"require_password_change", "block"};
static const char *const decisions[] = {"allow", "require_password_change", "block"};
static const char *const reasons[] = {"none",
                                      "risk_level",
                                      "not_mfa_registered",
                                      "mfa_registered_during_risk",
                                      "temporary_password",
                                      "reset_required",
                                      "user_deleted",
                                      "store_error"};
static const char *const password_changes[] = {"secure_change", "secure_reset", "insecure"};
static const char *const history_actions[] = {"ingest",
                                              "event_updated",
                                              "user_upsert",
                                              "resolve",
                                              "false_positive",
                                              "ignore",
                                              "reactivate",
                                              "dismiss_all",
                                              "secure_password_change",
                                              "secure_password_reset",
                                              "insecure_password_change",
                                              "temporary_password",
                                              "require_reset",
                                              "confirm_compromised",
                                              "confirm_safe",
                                              "age",
                                              "policy_set",
                                              "policy_remove"};

#define TABLE(t) {t, sizeof t / sizeof t[0]}

/* Indexed by risk_enum_kind. */
static const struct {
    const char *const *names;
    uint32_t n;
} tables[] = {
    TABLE(levels),       TABLE(event_states), TABLE(close_reasons),    TABLE(actions),
    TABLE(timings),      TABLE(states),       TABLE(details),          TABLE(modes),
    TABLE(controls),     TABLE(decisions),    TABLE(reasons),          TABLE(password_changes),
    TABLE(history_actions), TABLE(details_graph),
};

#define N_KINDS (sizeof tables / sizeof tables[0])

const char *risk_enum_name(risk_enum_kind kind, uint32_t value)
{
    if ((uint32_t)kind >= N_KINDS || value >= tables[kind].n)
        return NULL;
    return tables[kind].names[value];
}

int risk_enum_parse(risk_enum_kind kind, const char *name, uint32_t *out)
{
    if ((uint32_t)kind >= N_KINDS)
        return risk_err(RISK_EINVAL, "kind: value %u out of range", (unsigned)kind);
    if (name == NULL)
        return risk_err(RISK_EINVAL, "name: NULL");
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    for (uint32_t i = 0; i < tables[kind].n; i++) {
        if (strcmp(tables[kind].names[i], name) == 0) {
            *out = i;
            return RISK_OK;
        }
    }
    return risk_err(RISK_EINVAL, "name: unknown value \"%.64s\"", name);
}

/* A new enum value without a name breaks the build, not a caller. */
_Static_assert(sizeof levels / sizeof *levels == RISK_LEVEL_HIGH + 1, "levels");
_Static_assert(sizeof close_reasons / sizeof *close_reasons == RISK_CLOSE_AGED + 1, "reasons");
_Static_assert(sizeof actions / sizeof *actions == RISK_ACTION_REACTIVATE + 1, "actions");
_Static_assert(sizeof states / sizeof *states == RISK_STATE_CONFIRMED_COMPROMISED + 1, "states");
_Static_assert(sizeof details / sizeof *details == RISK_DETAIL_AGED_OUT + 1, "details");
_Static_assert(sizeof details_graph / sizeof *details_graph == RISK_DETAIL_AGED_OUT + 1, "graph");
_Static_assert(sizeof reasons / sizeof *reasons == RISK_REASON_STORE_ERROR + 1, "reasons");
_Static_assert(sizeof history_actions / sizeof *history_actions == RISK_HISTORY_POLICY_REMOVE + 1,
               "history actions");
_Static_assert(sizeof tables / sizeof *tables == RISK_ENUM_DETAIL_GRAPH + 1, "kinds");
