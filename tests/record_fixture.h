/* Helpers shared by the record handle tests (tests/test_record.c and
 * tests/test_record_nomem.c): field-by-field comparisons and fully set
 * handles of every kind. */
#ifndef LIBRISK_TEST_RECORD_FIXTURE_H
#define LIBRISK_TEST_RECORD_FIXTURE_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "internal.h"

/* ------------------------------------------------------------ helpers */

static inline int streq_opt(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static inline void assert_user_same(const risk_user *a, const risk_user *b)
{
    cr_assert(streq_opt(risk_user_id(a), risk_user_id(b)));
    cr_assert(eq(int, risk_user_mfa_registered(a), risk_user_mfa_registered(b)));
    cr_assert(eq(i64, risk_user_mfa_registered_at(a), risk_user_mfa_registered_at(b)));
    cr_assert(eq(int, risk_user_deleted(a), risk_user_deleted(b)));
    cr_assert(eq(int, risk_user_must_change_password(a), risk_user_must_change_password(b)));
    cr_assert(eq(int, risk_user_reset_required(a), risk_user_reset_required(b)));
    cr_assert(eq(i64, risk_user_remediated_at(a), risk_user_remediated_at(b)));
    cr_assert(eq(int, risk_user_risk_level(a), risk_user_risk_level(b)));
    cr_assert(eq(int, risk_user_risk_state(a), risk_user_risk_state(b)));
    cr_assert(eq(int, risk_user_risk_detail(a), risk_user_risk_detail(b)));
    cr_assert(eq(i64, risk_user_risk_updated_at(a), risk_user_risk_updated_at(b)));
    cr_assert(eq(u64, risk_user_score(a), risk_user_score(b)));
    cr_assert(eq(i64, risk_user_risk_since(a), risk_user_risk_since(b)));
    cr_assert(eq(i64, risk_user_next_change_at(a), risk_user_next_change_at(b)));
    cr_assert(eq(u32, risk_user_active_events(a), risk_user_active_events(b)));
    cr_assert(eq(u64, risk_user_version(a), risk_user_version(b)));
    cr_assert(eq(int, memcmp(risk_user_chain_head(a), risk_user_chain_head(b), 32), 0));
}

static inline void assert_event_same(const risk_event *a, const risk_event *b)
{
    cr_assert(streq_opt(risk_event_id(a), risk_event_id(b)));
    cr_assert(streq_opt(risk_event_user_id(a), risk_event_user_id(b)));
    cr_assert(streq_opt(risk_event_type(a), risk_event_type(b)));
    cr_assert(eq(int, risk_event_level(a), risk_event_level(b)));
    cr_assert(eq(i64, risk_event_detected_at(a), risk_event_detected_at(b)));
    cr_assert(eq(int, risk_event_timing(a), risk_event_timing(b)));
    cr_assert(streq_opt(risk_event_ip(a), risk_event_ip(b)));
    cr_assert(streq_opt(risk_event_location(a), risk_event_location(b)));
    cr_assert(streq_opt(risk_event_source(a), risk_event_source(b)));
    cr_assert(eq(int, risk_event_state_get(a), risk_event_state_get(b)));
    cr_assert(eq(int, risk_event_close_reason(a), risk_event_close_reason(b)));
    cr_assert(eq(i64, risk_event_closed_at(a), risk_event_closed_at(b)));
    cr_assert(streq_opt(risk_event_closed_by(a), risk_event_closed_by(b)));
    cr_assert(streq_opt(risk_event_note(a), risk_event_note(b)));
}

static inline void assert_policy_same(const risk_policy *a, const risk_policy *b)
{
    cr_assert(streq_opt(risk_policy_name(a), risk_policy_name(b)));
    cr_assert(eq(int, risk_policy_mode_get(a), risk_policy_mode_get(b)));
    cr_assert(eq(int, risk_policy_threshold(a), risk_policy_threshold(b)));
    cr_assert(eq(int, risk_policy_control(a), risk_policy_control(b)));
    cr_assert(eq(sz, risk_policy_include_count(a), risk_policy_include_count(b)));
    cr_assert(eq(sz, risk_policy_exclude_count(a), risk_policy_exclude_count(b)));
    for (size_t i = 0; i < risk_policy_include_count(a); i++)
        cr_assert(streq_opt(risk_policy_include_at(a, i), risk_policy_include_at(b, i)));
    for (size_t i = 0; i < risk_policy_exclude_count(a); i++)
        cr_assert(streq_opt(risk_policy_exclude_at(a, i), risk_policy_exclude_at(b, i)));
}

static inline void assert_history_same(const risk_history *a, const risk_history *b)
{
    cr_assert(eq(u64, risk_history_seq(a), risk_history_seq(b)));
    cr_assert(eq(i64, risk_history_at(a), risk_history_at(b)));
    cr_assert(streq_opt(risk_history_actor(a), risk_history_actor(b)));
    cr_assert(eq(int, risk_history_action_get(a), risk_history_action_get(b)));
    cr_assert(streq_opt(risk_history_user_id(a), risk_history_user_id(b)));
    cr_assert(streq_opt(risk_history_event_id(a), risk_history_event_id(b)));
    cr_assert(streq_opt(risk_history_policy(a), risk_history_policy(b)));
    cr_assert(eq(int, risk_history_level_before(a), risk_history_level_before(b)));
    cr_assert(eq(int, risk_history_level_after(a), risk_history_level_after(b)));
    cr_assert(eq(int, risk_history_state_before(a), risk_history_state_before(b)));
    cr_assert(eq(int, risk_history_state_after(a), risk_history_state_after(b)));
    cr_assert(eq(u32, risk_history_changed(a), risk_history_changed(b)));
    cr_assert(streq_opt(risk_history_note(a), risk_history_note(b)));
    cr_assert(eq(int, memcmp(risk_history_chain(a), risk_history_chain(b), 32), 0));
}

/* The last error is EINVAL and its message starts with "arg:". */
#define assert_einval_names(call, arg)                                                       \
    do {                                                                                     \
        risk_error_clear();                                                                  \
        cr_assert(eq(int, (call), RISK_EINVAL), "%s", #call);                                \
        cr_assert(eq(int, risk_error_last_code(), RISK_EINVAL));                             \
        cr_assert(eq(int, strncmp(risk_error_last(), arg ": ", strlen(arg) + 2), 0),         \
                  "%s: message \"%s\" does not name %s", #call, risk_error_last(), arg);     \
    } while (0)

static inline risk_user *full_user(void)
{
    risk_user *u = NULL;
    uint8_t head[32];
    memset(head, 0xAB, sizeof head);
    cr_assert(eq(int, risk_user_new(&u, "alice"), RISK_OK));
    cr_assert(eq(int, risk_user_set_mfa_registered(u, 1, 100), RISK_OK));
    cr_assert(eq(int, risk_user_set_password_state(u, 1, 0, 200), RISK_OK));
    cr_assert(eq(int, risk_user_set_risk(u, RISK_LEVEL_MEDIUM, RISK_STATE_AT_RISK,
                                         RISK_DETAIL_NONE, 300, 3, 250, 5000, 2), RISK_OK));
    cr_assert(eq(int, risk_user_set_version(u, 7), RISK_OK));
    cr_assert(eq(int, risk_user_set_chain_head(u, head), RISK_OK));
    return u;
}

static inline risk_event *full_event(void)
{
    risk_event *e = NULL;
    cr_assert(eq(int, risk_event_new(&e, "ev-1", "alice", "leakedCredentials", RISK_LEVEL_HIGH,
                                     1000), RISK_OK));
    cr_assert(eq(int, risk_event_set_ip(e, "10.0.0.1"), RISK_OK));
    cr_assert(eq(int, risk_event_set_location(e, "Z\xC3\xBCrich"), RISK_OK));
    cr_assert(eq(int, risk_event_set_source(e, "idp"), RISK_OK));
    cr_assert(eq(int, risk_event_set_note(e, "first note"), RISK_OK));
    cr_assert(eq(int, risk_event_set_timing(e, RISK_TIMING_OFFLINE), RISK_OK));
    return e;
}

static inline risk_event *closed_event(void)
{
    risk_event *e = full_event();
    cr_assert(eq(int, risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_RESOLVED, 2000,
                                             "admin"), RISK_OK));
    return e;
}

static inline risk_policy *full_policy(void)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "high-risk", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK),
                 RISK_OK));
    cr_assert(eq(int, risk_policy_include_add(p, "carol"), RISK_OK));
    cr_assert(eq(int, risk_policy_include_add(p, "alice"), RISK_OK));
    cr_assert(eq(int, risk_policy_exclude_add(p, "mallory"), RISK_OK));
    return p;
}

static inline risk_history *full_history(void)
{
    risk_history *h = NULL;
    uint8_t chain[32];
    memset(chain, 0x5A, sizeof chain);
    cr_assert(eq(int, risk_history_new(&h, 9, 4000, "admin", RISK_HISTORY_RESOLVE, "alice",
                                       "ev-1", NULL), RISK_OK));
    cr_assert(eq(int, risk_history_set_change(h, RISK_LEVEL_HIGH, RISK_LEVEL_NONE,
                                              RISK_STATE_AT_RISK, RISK_STATE_NONE, 1, "why"),
                 RISK_OK));
    cr_assert(eq(int, risk_history_set_chain(h, chain), RISK_OK));
    return h;
}

#endif
