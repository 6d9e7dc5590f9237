/* The values of the public enumerations and limits, pinned (docs/abi.md:
 * "Error codes and enumeration values are pinned forever"). abidiff sees
 * only the types that appear in a function's signature: the error codes
 * (returned as int) and the durability modes (a uint32_t field) are in no
 * signature, so a renumbering would pass the abi suite. These tests fail
 * instead. A new value is added here with the header; a changed one is an
 * ABI break (a new SONAME). */
#include <criterion/criterion.h>
#include <librisk.h>
#include <librisk/store.h>

#define PIN(c, v)                                                                      \
    cr_expect_eq((long long)(c), (long long)(v), #c " is %lld, pinned at %lld", (long long)(c), \
                 (long long)(v))

Test(abi_values, error)
{
    PIN(RISK_OK, 0);
    PIN(RISK_EINVAL, -1);
    PIN(RISK_ENOMEM, -2);
    PIN(RISK_ENOTFOUND, -3);
    PIN(RISK_EEXISTS, -4);
    PIN(RISK_ETRANSITION, -5);
    PIN(RISK_ENOMFA, -6);
    PIN(RISK_EDELETED, -7);
    PIN(RISK_EBUSY, -8);
    PIN(RISK_ECORRUPT, -9);
    PIN(RISK_EIO, -10);
    PIN(RISK_EUNSUPPORTED, -11);
    PIN(RISK_ECONFLICT, -12);
    PIN(RISK_ERANGE, -13);
    PIN(RISK_EREADONLY, -14);
    PIN(RISK_ESTORE, -15);
    PIN(RISK_EVERIFY, -16);
}

Test(abi_values, level)
{
    PIN(RISK_LEVEL_NONE, 0);
    PIN(RISK_LEVEL_LOW, 1);
    PIN(RISK_LEVEL_MEDIUM, 2);
    PIN(RISK_LEVEL_HIGH, 3);
}

Test(abi_values, event_state)
{
    PIN(RISK_EVENT_ACTIVE, 0);
    PIN(RISK_EVENT_CLOSED, 1);
}

Test(abi_values, close_reason)
{
    PIN(RISK_CLOSE_NONE, 0);
    PIN(RISK_CLOSE_RESOLVED, 1);
    PIN(RISK_CLOSE_FALSE_POSITIVE, 2);
    PIN(RISK_CLOSE_IGNORED, 3);
    PIN(RISK_CLOSE_DISMISSED, 4);
    PIN(RISK_CLOSE_REMEDIATED, 5);
    PIN(RISK_CLOSE_AGED, 6);
}

Test(abi_values, action)
{
    PIN(RISK_ACTION_RESOLVE, 0);
    PIN(RISK_ACTION_FALSE_POSITIVE, 1);
    PIN(RISK_ACTION_IGNORE, 2);
    PIN(RISK_ACTION_DISMISS, 3);
    PIN(RISK_ACTION_REMEDIATE, 4);
    PIN(RISK_ACTION_AGE, 5);
    PIN(RISK_ACTION_REACTIVATE, 6);
}

Test(abi_values, timing)
{
    PIN(RISK_TIMING_REALTIME, 0);
    PIN(RISK_TIMING_OFFLINE, 1);
}

Test(abi_values, state)
{
    PIN(RISK_STATE_NONE, 0);
    PIN(RISK_STATE_AT_RISK, 1);
    PIN(RISK_STATE_REMEDIATED, 2);
    PIN(RISK_STATE_DISMISSED, 3);
    PIN(RISK_STATE_CONFIRMED_SAFE, 4);
    PIN(RISK_STATE_CONFIRMED_COMPROMISED, 5);
}

Test(abi_values, detail)
{
    PIN(RISK_DETAIL_NONE, 0);
    PIN(RISK_DETAIL_ADMIN_GENERATED_TEMPORARY_PASSWORD, 1);
    PIN(RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_CHANGE, 2);
    PIN(RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_RESET, 3);
    PIN(RISK_DETAIL_ADMIN_DISMISSED_ALL_RISK, 4);
    PIN(RISK_DETAIL_ADMIN_CONFIRMED_COMPROMISED, 5);
    PIN(RISK_DETAIL_ADMIN_CONFIRMED_SAFE, 6);
    PIN(RISK_DETAIL_ADMIN_CLOSED_EVENTS, 7);
    PIN(RISK_DETAIL_AGED_OUT, 8);
}

Test(abi_values, policy_mode)
{
    PIN(RISK_MODE_OFF, 0);
    PIN(RISK_MODE_ON, 1);
    PIN(RISK_MODE_REPORT_ONLY, 2);
}

Test(abi_values, control)
{
    PIN(RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, 0);
    PIN(RISK_CONTROL_BLOCK, 1);
}

Test(abi_values, decision)
{
    PIN(RISK_DECISION_ALLOW, 0);
    PIN(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, 1);
    PIN(RISK_DECISION_BLOCK, 2);
}

Test(abi_values, reason)
{
    PIN(RISK_REASON_NONE, 0);
    PIN(RISK_REASON_RISK_LEVEL, 1);
    PIN(RISK_REASON_NOT_MFA_REGISTERED, 2);
    PIN(RISK_REASON_MFA_REGISTERED_DURING_RISK, 3);
    PIN(RISK_REASON_TEMPORARY_PASSWORD, 4);
    PIN(RISK_REASON_RESET_REQUIRED, 5);
    PIN(RISK_REASON_USER_DELETED, 6);
    PIN(RISK_REASON_STORE_ERROR, 7);
}

Test(abi_values, password_change)
{
    PIN(RISK_PASSWORD_SECURE_CHANGE, 0);
    PIN(RISK_PASSWORD_SECURE_RESET, 1);
    PIN(RISK_PASSWORD_INSECURE, 2);
}

Test(abi_values, history_action)
{
    PIN(RISK_HISTORY_INGEST, 0);
    PIN(RISK_HISTORY_EVENT_UPDATED, 1);
    PIN(RISK_HISTORY_USER_UPSERT, 2);
    PIN(RISK_HISTORY_RESOLVE, 3);
    PIN(RISK_HISTORY_FALSE_POSITIVE, 4);
    PIN(RISK_HISTORY_IGNORE, 5);
    PIN(RISK_HISTORY_REACTIVATE, 6);
    PIN(RISK_HISTORY_DISMISS_ALL, 7);
    PIN(RISK_HISTORY_SECURE_PASSWORD_CHANGE, 8);
    PIN(RISK_HISTORY_SECURE_PASSWORD_RESET, 9);
    PIN(RISK_HISTORY_INSECURE_PASSWORD_CHANGE, 10);
    PIN(RISK_HISTORY_TEMPORARY_PASSWORD, 11);
    PIN(RISK_HISTORY_REQUIRE_RESET, 12);
    PIN(RISK_HISTORY_CONFIRM_COMPROMISED, 13);
    PIN(RISK_HISTORY_CONFIRM_SAFE, 14);
    PIN(RISK_HISTORY_AGE, 15);
    PIN(RISK_HISTORY_POLICY_SET, 16);
    PIN(RISK_HISTORY_POLICY_REMOVE, 17);
}

Test(abi_values, enum_kind)
{
    PIN(RISK_ENUM_LEVEL, 0);
    PIN(RISK_ENUM_EVENT_STATE, 1);
    PIN(RISK_ENUM_CLOSE_REASON, 2);
    PIN(RISK_ENUM_ACTION, 3);
    PIN(RISK_ENUM_TIMING, 4);
    PIN(RISK_ENUM_STATE, 5);
    PIN(RISK_ENUM_DETAIL, 6);
    PIN(RISK_ENUM_POLICY_MODE, 7);
    PIN(RISK_ENUM_CONTROL, 8);
    PIN(RISK_ENUM_DECISION, 9);
    PIN(RISK_ENUM_REASON, 10);
    PIN(RISK_ENUM_PASSWORD_CHANGE, 11);
    PIN(RISK_ENUM_HISTORY_ACTION, 12);
    PIN(RISK_ENUM_DETAIL_GRAPH, 13);
}

Test(abi_values, durability)
{
    PIN(RISK_DURABILITY_FULL, 0);
    PIN(RISK_DURABILITY_NORMAL, 1);
    PIN(RISK_DURABILITY_OFF, 2);
}

Test(abi_values, limits)
{
    PIN(RISK_TIME_NONE, INT64_C(-1));
    PIN(RISK_TIME_MAX, INT64_C(9007199254740992));
    PIN(RISK_ID_MAX, 256);
    PIN(RISK_TYPE_MAX, 64);
    PIN(RISK_INFO_MAX, 256);
    PIN(RISK_NOTE_MAX, 1024);
    PIN(RISK_DAY_MS, INT64_C(86400000));
    PIN(RISK_INGEST_UPDATE, 1u);
    PIN(RISK_EVENTS_ACTIVE, 1u);
    PIN(RISK_ANCHOR_TEXT_MAX, 128);
}
