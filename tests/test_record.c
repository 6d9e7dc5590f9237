/* The record handles: users, events, policies, history items, and the
 * enumeration names. Rules: SPEC §2 field rules, R-EV-1, R-IV-1 (bad input
 * → RISK_EINVAL naming the argument, nothing changes). Out of memory
 * (R-IV-3) is in tests/test_record_nomem.c. */
#include "record_fixture.h"

TestSuite(record, .fini = alloc_fail_reset);

/* -------------------------------------------------------------- users */

/* SPEC §2 User: a new user has every flag clear, level/state/detail none,
 * absent times, version 0, zero chain. */
Test(record, user_defaults)
{
    risk_user *u = NULL;
    static const uint8_t zeros[32];
    cr_assert(eq(int, risk_user_new(&u, "alice"), RISK_OK));
    cr_assert(eq(str, (char *)risk_user_id(u), "alice"));
    cr_assert(eq(int, risk_user_mfa_registered(u), 0));
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), RISK_TIME_NONE));
    cr_assert(eq(int, risk_user_deleted(u), 0));
    cr_assert(eq(int, risk_user_must_change_password(u), 0));
    cr_assert(eq(int, risk_user_reset_required(u), 0));
    cr_assert(eq(i64, risk_user_remediated_at(u), RISK_TIME_NONE));
    cr_assert(eq(int, risk_user_risk_level(u), RISK_LEVEL_NONE));
    cr_assert(eq(int, risk_user_risk_state(u), RISK_STATE_NONE));
    cr_assert(eq(int, risk_user_risk_detail(u), RISK_DETAIL_NONE));
    cr_assert(eq(i64, risk_user_risk_updated_at(u), RISK_TIME_NONE));
    cr_assert(eq(u64, risk_user_score(u), 0));
    cr_assert(eq(i64, risk_user_risk_since(u), RISK_TIME_NONE));
    cr_assert(eq(i64, risk_user_next_change_at(u), RISK_TIME_NONE));
    cr_assert(eq(u32, risk_user_active_events(u), 0));
    cr_assert(eq(u64, risk_user_version(u), 0));
    cr_assert(eq(int, memcmp(risk_user_chain_head(u), zeros, 32), 0));
    risk_user_free(u);
}

/* SPEC §2 User: setters store what they are given; dup is a deep copy. */
Test(record, user_setters_and_dup)
{
    risk_user *u = full_user(), *d = NULL;
    cr_assert(eq(int, risk_user_mfa_registered(u), 1));
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), 100));
    cr_assert(eq(int, risk_user_must_change_password(u), 1));
    cr_assert(eq(int, risk_user_reset_required(u), 0));
    cr_assert(eq(i64, risk_user_remediated_at(u), 200));
    cr_assert(eq(int, risk_user_risk_level(u), RISK_LEVEL_MEDIUM));
    cr_assert(eq(int, risk_user_risk_state(u), RISK_STATE_AT_RISK));
    cr_assert(eq(i64, risk_user_risk_updated_at(u), 300));
    cr_assert(eq(u64, risk_user_score(u), 3));
    cr_assert(eq(i64, risk_user_risk_since(u), 250));
    cr_assert(eq(i64, risk_user_next_change_at(u), 5000));
    cr_assert(eq(u32, risk_user_active_events(u), 2));
    cr_assert(eq(u64, risk_user_version(u), 7));
    cr_assert(eq(u8, risk_user_chain_head(u)[31], 0xAB));
    cr_assert(eq(int, risk_user_set_deleted(u, 1), RISK_OK));
    cr_assert(eq(int, risk_user_deleted(u), 1));

    cr_assert(eq(int, risk_user_dup(&d, u), RISK_OK));
    cr_assert(ne(ptr, (void *)risk_user_id(d), (void *)risk_user_id(u)));
    assert_user_same(u, d);
    risk_user_free(u); /* the copy must not share memory with the original */
    cr_assert(eq(str, (char *)risk_user_id(d), "alice"));
    risk_user_free(d);
}

/* R-PO-11: unregistering clears the time; registering with NONE keeps NONE
 * (the engine stamps it); registering with a time keeps that time. */
Test(record, user_mfa_time_rules)
{
    risk_user *u = full_user();
    cr_assert(eq(int, risk_user_set_mfa_registered(u, 0, 12345), RISK_OK));
    cr_assert(eq(int, risk_user_mfa_registered(u), 0));
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), RISK_TIME_NONE));
    cr_assert(eq(int, risk_user_set_mfa_registered(u, 1, RISK_TIME_NONE), RISK_OK));
    cr_assert(eq(int, risk_user_mfa_registered(u), 1));
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), RISK_TIME_NONE));
    cr_assert(eq(int, risk_user_set_mfa_registered(u, 1, 77), RISK_OK));
    cr_assert(eq(i64, risk_user_mfa_registered_at(u), 77));
    risk_user_free(u);
}

/* R-IV-1: every user constructor/setter refuses bad input with EINVAL,
 * names the argument, and leaves the handle unchanged. */
Test(record, user_bad_input)
{
    risk_user *out = NULL;
    assert_einval_names(risk_user_new(NULL, "a"), "out");
    assert_einval_names(risk_user_new(&out, NULL), "id");
    assert_einval_names(risk_user_new(&out, ""), "id");
    assert_einval_names(risk_user_new(&out, "a\x01"), "id");
    assert_einval_names(risk_user_new(&out, "\xC0\x80"), "id");
    cr_assert_null(out);

    risk_user *u = full_user(), *snap = NULL;
    cr_assert(eq(int, risk_user_dup(&snap, u), RISK_OK));
    assert_einval_names(risk_user_dup(NULL, u), "out");
    assert_einval_names(risk_user_dup(&out, NULL), "user");
    assert_einval_names(risk_user_set_mfa_registered(u, 2, 5), "registered");
    assert_einval_names(risk_user_set_mfa_registered(u, -1, 5), "registered");
    assert_einval_names(risk_user_set_mfa_registered(u, 1, -5), "at");
    assert_einval_names(risk_user_set_mfa_registered(u, 1, RISK_TIME_MAX), "at");
    assert_einval_names(risk_user_set_mfa_registered(NULL, 1, 5), "user");
    assert_einval_names(risk_user_set_deleted(u, 2), "deleted");
    assert_einval_names(risk_user_set_deleted(NULL, 1), "user");
    assert_einval_names(risk_user_set_version(NULL, 1), "user");
    assert_einval_names(risk_user_set_password_state(u, 2, 0, 1), "must_change_password");
    assert_einval_names(risk_user_set_password_state(u, 0, 5, 1), "reset_required");
    assert_einval_names(risk_user_set_password_state(u, 0, 0, -7), "remediated_at");
    assert_einval_names(risk_user_set_password_state(NULL, 0, 0, 1), "user");
    assert_einval_names(risk_user_set_risk(u, 4, 0, 0, 1, 0, 1, 1, 0), "level");
    assert_einval_names(risk_user_set_risk(u, 0, 6, 0, 1, 0, 1, 1, 0), "state");
    assert_einval_names(risk_user_set_risk(u, 0, 0, 9, 1, 0, 1, 1, 0), "detail");
    assert_einval_names(risk_user_set_risk(u, 0, 0, 0, -2, 0, 1, 1, 0), "updated_at");
    assert_einval_names(risk_user_set_risk(u, 0, 0, 0, 1, 0, RISK_TIME_MAX, 1, 0),
                        "risk_since");
    assert_einval_names(risk_user_set_risk(u, 0, 0, 0, 1, 0, 1, -3, 0), "next_change_at");
    assert_einval_names(risk_user_set_risk(NULL, 0, 0, 0, 1, 0, 1, 1, 0), "user");
    assert_einval_names(risk_user_set_chain_head(u, NULL), "head");
    assert_einval_names(risk_user_set_chain_head(NULL, snap->chain_head), "user");
    assert_user_same(u, snap);
    risk_user_free(u);
    risk_user_free(snap);
    risk_user_free(NULL); /* accepted */
}

/* R-IV-1: getters on a NULL user return neutral values, never crash. */
Test(record, user_null_getters)
{
    static const uint8_t zeros[32];
    cr_assert_null(risk_user_id(NULL));
    cr_assert(eq(int, risk_user_mfa_registered(NULL), 0));
    cr_assert(eq(i64, risk_user_mfa_registered_at(NULL), RISK_TIME_NONE));
    cr_assert(eq(int, risk_user_deleted(NULL), 0));
    cr_assert(eq(int, risk_user_risk_level(NULL), RISK_LEVEL_NONE));
    cr_assert(eq(i64, risk_user_next_change_at(NULL), RISK_TIME_NONE));
    cr_assert(eq(u64, risk_user_version(NULL), 0));
    cr_assert(eq(int, memcmp(risk_user_chain_head(NULL), zeros, 32), 0));
}

/* ------------------------------------------------------------- events */

/* R-EV-1: a new event is active with close reason none, realtime, not
 * closed, no optional strings. */
Test(record, event_defaults)
{
    risk_event *e = NULL;
    cr_assert(eq(int, risk_event_new(&e, "ev-1", "alice", "anonymizedIPAddress",
                                     RISK_LEVEL_MEDIUM, 0), RISK_OK));
    cr_assert(eq(int, risk_event_state_get(e), RISK_EVENT_ACTIVE));
    cr_assert(eq(int, risk_event_close_reason(e), RISK_CLOSE_NONE));
    cr_assert(eq(int, risk_event_timing(e), RISK_TIMING_REALTIME));
    cr_assert(eq(i64, risk_event_closed_at(e), RISK_TIME_NONE));
    cr_assert_null(risk_event_closed_by(e));
    cr_assert_null(risk_event_ip(e));
    cr_assert_null(risk_event_location(e));
    cr_assert_null(risk_event_source(e));
    cr_assert_null(risk_event_note(e));
    cr_assert(eq(str, (char *)risk_event_id(e), "ev-1"));
    cr_assert(eq(str, (char *)risk_event_user_id(e), "alice"));
    cr_assert(eq(str, (char *)risk_event_type(e), "anonymizedIPAddress"));
    cr_assert(eq(int, risk_event_level(e), RISK_LEVEL_MEDIUM));
    cr_assert(eq(i64, risk_event_detected_at(e), 0));
    risk_event_free(e);
}

/* SPEC §2 Risk event: setters store values, NULL clears optional strings,
 * dup is deep. */
Test(record, event_setters_and_dup)
{
    risk_event *e = closed_event(), *d = NULL;
    cr_assert(eq(str, (char *)risk_event_ip(e), "10.0.0.1"));
    cr_assert(eq(str, (char *)risk_event_location(e), "Z\xC3\xBCrich"));
    cr_assert(eq(str, (char *)risk_event_source(e), "idp"));
    cr_assert(eq(str, (char *)risk_event_note(e), "first note"));
    cr_assert(eq(int, risk_event_timing(e), RISK_TIMING_OFFLINE));
    cr_assert(eq(int, risk_event_state_get(e), RISK_EVENT_CLOSED));
    cr_assert(eq(int, risk_event_close_reason(e), RISK_CLOSE_RESOLVED));
    cr_assert(eq(i64, risk_event_closed_at(e), 2000));
    cr_assert(eq(str, (char *)risk_event_closed_by(e), "admin"));
    cr_assert(eq(int, risk_event_set_level(e, RISK_LEVEL_LOW), RISK_OK));
    cr_assert(eq(int, risk_event_level(e), RISK_LEVEL_LOW));
    cr_assert(eq(int, risk_event_set_detected_at(e, RISK_TIME_MAX - 1), RISK_OK));
    cr_assert(eq(i64, risk_event_detected_at(e), RISK_TIME_MAX - 1));

    cr_assert(eq(int, risk_event_dup(&d, e), RISK_OK));
    assert_event_same(e, d);
    cr_assert(ne(ptr, (void *)risk_event_note(d), (void *)risk_event_note(e)));
    risk_event_free(e);
    cr_assert(eq(str, (char *)risk_event_closed_by(d), "admin"));

    cr_assert(eq(int, risk_event_set_ip(d, NULL), RISK_OK));
    cr_assert(eq(int, risk_event_set_location(d, NULL), RISK_OK));
    cr_assert(eq(int, risk_event_set_source(d, NULL), RISK_OK));
    cr_assert(eq(int, risk_event_set_note(d, NULL), RISK_OK));
    cr_assert_null(risk_event_ip(d));
    cr_assert_null(risk_event_location(d));
    cr_assert_null(risk_event_source(d));
    cr_assert_null(risk_event_note(d));
    cr_assert(eq(int, risk_event_set_note(d, "multi\nline\tnote\r\n"), RISK_OK));
    cr_assert(eq(str, (char *)risk_event_note(d), "multi\nline\tnote\r\n"));
    /* a copy keeps its strings in one block: replacing the ones still in it
     * (closed_by, id, type) must neither free nor leak them (ASan, valgrind) */
    cr_assert(eq(int, risk_event_set_closing(d, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE,
                                             RISK_TIME_NONE, NULL), RISK_OK));
    cr_assert_null(risk_event_closed_by(d));
    risk_event *d2 = NULL;
    cr_assert(eq(int, risk_event_dup(&d2, d), RISK_OK));
    assert_event_same(d, d2);
    risk_event_free(d);
    cr_assert(eq(str, (char *)risk_event_type(d2), "leakedCredentials"));
    risk_event_free(d2);
}

/* R-EV-3 (record side): the closing fields move together; reopening clears
 * reason, time and actor. */
Test(record, event_closing_roundtrip)
{
    risk_event *e = closed_event();
    cr_assert(eq(int, risk_event_set_closing(e, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE,
                                             RISK_TIME_NONE, NULL), RISK_OK));
    cr_assert(eq(int, risk_event_state_get(e), RISK_EVENT_ACTIVE));
    cr_assert(eq(int, risk_event_close_reason(e), RISK_CLOSE_NONE));
    cr_assert(eq(i64, risk_event_closed_at(e), RISK_TIME_NONE));
    cr_assert_null(risk_event_closed_by(e));
    for (uint32_t r = RISK_CLOSE_RESOLVED; r <= RISK_CLOSE_AGED; r++) {
        cr_assert(eq(int, risk_event_set_closing(e, RISK_EVENT_CLOSED, r, 10 + r, "system"),
                     RISK_OK));
        cr_assert(eq(int, risk_event_close_reason(e), (int)r));
        cr_assert(eq(i64, risk_event_closed_at(e), 10 + r));
    }
    risk_event_free(e);
}

/* R-IV-1, SPEC §2: every event argument is validated and named. */
Test(record, event_new_bad_input)
{
    risk_event *out = NULL;
    char long_id[RISK_ID_MAX + 2];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_einval_names(risk_event_new(NULL, "e", "u", "t", RISK_LEVEL_LOW, 1), "out");
    assert_einval_names(risk_event_new(&out, NULL, "u", "t", RISK_LEVEL_LOW, 1), "id");
    assert_einval_names(risk_event_new(&out, long_id, "u", "t", RISK_LEVEL_LOW, 1), "id");
    assert_einval_names(risk_event_new(&out, "e\n", "u", "t", RISK_LEVEL_LOW, 1), "id");
    assert_einval_names(risk_event_new(&out, "e", NULL, "t", RISK_LEVEL_LOW, 1), "user_id");
    assert_einval_names(risk_event_new(&out, "e", "u\xFF", "t", RISK_LEVEL_LOW, 1), "user_id");
    assert_einval_names(risk_event_new(&out, "e", "u", "", RISK_LEVEL_LOW, 1), "type");
    assert_einval_names(risk_event_new(&out, "e", "u", "a b", RISK_LEVEL_LOW, 1), "type");
    assert_einval_names(risk_event_new(&out, "e", "u", "t", RISK_LEVEL_NONE, 1), "level");
    assert_einval_names(risk_event_new(&out, "e", "u", "t", (risk_level)4, 1), "level");
    assert_einval_names(risk_event_new(&out, "e", "u", "t", RISK_LEVEL_LOW, -1),
                        "detected_at");
    assert_einval_names(risk_event_new(&out, "e", "u", "t", RISK_LEVEL_LOW, RISK_TIME_MAX),
                        "detected_at");
    cr_assert_null(out);
}

/* R-IV-1: event setters refuse bad input, name it, change nothing. */
Test(record, event_setters_bad_input)
{
    risk_event *e = closed_event(), *snap = NULL, *out = NULL;
    char big[RISK_NOTE_MAX + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert(eq(int, risk_event_dup(&snap, e), RISK_OK));
    assert_einval_names(risk_event_dup(NULL, e), "out");
    assert_einval_names(risk_event_dup(&out, NULL), "event");
    assert_einval_names(risk_event_set_timing(e, (risk_timing)2), "timing");
    assert_einval_names(risk_event_set_timing(NULL, RISK_TIMING_OFFLINE), "event");
    assert_einval_names(risk_event_set_ip(e, "1.2.3.4\n"), "ip");
    assert_einval_names(risk_event_set_ip(NULL, "1.2.3.4"), "event");
    assert_einval_names(risk_event_set_location(e, big + RISK_NOTE_MAX - RISK_INFO_MAX),
                        "location");
    assert_einval_names(risk_event_set_source(e, "\xED\xA0\x80"), "source");
    assert_einval_names(risk_event_set_level(e, RISK_LEVEL_NONE), "level");
    assert_einval_names(risk_event_set_level(NULL, RISK_LEVEL_LOW), "event");
    assert_einval_names(risk_event_set_detected_at(e, -1), "detected_at");
    assert_einval_names(risk_event_set_detected_at(NULL, 1), "event");
    assert_einval_names(risk_event_set_note(e, big), "note");
    assert_einval_names(risk_event_set_note(e, "bell\a"), "note");
    assert_einval_names(risk_event_set_note(NULL, "x"), "event");
    /* closing consistency */
    assert_einval_names(risk_event_set_closing(NULL, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE,
                                               RISK_TIME_NONE, NULL), "event");
    assert_einval_names(risk_event_set_closing(e, (risk_event_state)2, RISK_CLOSE_NONE,
                                               RISK_TIME_NONE, NULL), "state");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_CLOSED, (risk_close_reason)7, 5,
                                               "a"), "reason");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_ACTIVE, RISK_CLOSE_RESOLVED,
                                               RISK_TIME_NONE, NULL), "reason");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, 5, NULL),
                        "closed_at");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE,
                                               RISK_TIME_NONE, "admin"), "closed_by");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_NONE, 5, "a"),
                        "reason");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_AGED,
                                               RISK_TIME_NONE, "a"), "closed_at");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_AGED, 5, NULL),
                        "closed_by");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_AGED, 5, ""),
                        "closed_by");
    assert_einval_names(risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_AGED, 5,
                                               "a\x7f"), "closed_by");
    assert_event_same(e, snap);
    risk_event_free(e);
    risk_event_free(snap);
    risk_event_free(NULL);
}

/* R-IV-1: getters on a NULL event return neutral values. */
Test(record, event_null_getters)
{
    cr_assert_null(risk_event_id(NULL));
    cr_assert_null(risk_event_user_id(NULL));
    cr_assert_null(risk_event_type(NULL));
    cr_assert_null(risk_event_closed_by(NULL));
    cr_assert_null(risk_event_note(NULL));
    cr_assert(eq(int, risk_event_level(NULL), RISK_LEVEL_NONE));
    cr_assert(eq(i64, risk_event_closed_at(NULL), RISK_TIME_NONE));
    cr_assert(eq(i64, risk_event_detected_at(NULL), RISK_TIME_NONE));
}

/* ----------------------------------------------------------- policies */

/* SPEC §2 Policy: a new policy is on, includes all users, excludes none. */
Test(record, policy_defaults)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "p1", RISK_LEVEL_MEDIUM,
                                      RISK_CONTROL_REQUIRE_PASSWORD_CHANGE), RISK_OK));
    cr_assert(eq(str, (char *)risk_policy_name(p), "p1"));
    cr_assert(eq(int, risk_policy_mode_get(p), RISK_MODE_ON));
    cr_assert(eq(int, risk_policy_threshold(p), RISK_LEVEL_MEDIUM));
    cr_assert(eq(int, risk_policy_control(p), RISK_CONTROL_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, risk_policy_includes_all(p), 1));
    cr_assert(eq(sz, risk_policy_include_count(p), 0));
    cr_assert(eq(sz, risk_policy_exclude_count(p), 0));
    cr_assert_null(risk_policy_include_at(p, 0));
    cr_assert_null(risk_policy_exclude_at(p, 0));
    cr_assert(eq(int, risk_policy_applies_to(p, "anyone"), 1));
    risk_policy_free(p);
}

/* SPEC §2 Policy: lists are kept sorted (byte order) and unique. */
Test(record, policy_lists_sorted_unique)
{
    risk_policy *p = NULL;
    static const char *ids[] = {"mike", "alice", "zed", "bob", "alice", "Zulu", "mike",
                                "\xC3\xA9mile", "bob"};
    static const char *sorted[] = {"Zulu", "alice", "bob", "mike", "zed", "\xC3\xA9mile"};
    cr_assert(eq(int, risk_policy_new(&p, "p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), RISK_OK));
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        cr_assert(eq(int, risk_policy_include_add(p, ids[i]), RISK_OK));
        cr_assert(eq(int, risk_policy_exclude_add(p, ids[i]), RISK_OK));
    }
    cr_assert(eq(sz, risk_policy_include_count(p), 6));
    cr_assert(eq(sz, risk_policy_exclude_count(p), 6));
    for (size_t i = 0; i < 6; i++) {
        cr_assert(eq(str, (char *)risk_policy_include_at(p, i), (char *)sorted[i]));
        cr_assert(eq(str, (char *)risk_policy_exclude_at(p, i), (char *)sorted[i]));
    }
    cr_assert_null(risk_policy_include_at(p, 6));
    cr_assert(eq(int, risk_policy_includes_all(p), 0));
    risk_policy_free(p);
}

/* SPEC §2 Policy, R-PO-1: empty include = all users; a non-empty include
 * limits; exclusion wins over inclusion; ids compare byte for byte. */
Test(record, policy_applies_to)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_policy_exclude_add(p, "mallory"), RISK_OK));
    cr_assert(eq(int, risk_policy_applies_to(p, "alice"), 1));   /* all users */
    cr_assert(eq(int, risk_policy_applies_to(p, "mallory"), 0)); /* excluded */
    cr_assert(eq(int, risk_policy_include_add(p, "alice"), RISK_OK));
    cr_assert(eq(int, risk_policy_include_add(p, "mallory"), RISK_OK));
    cr_assert(eq(int, risk_policy_applies_to(p, "alice"), 1));
    cr_assert(eq(int, risk_policy_applies_to(p, "bob"), 0));     /* not included */
    cr_assert(eq(int, risk_policy_applies_to(p, "mallory"), 0)); /* exclusion wins */
    cr_assert(eq(int, risk_policy_applies_to(p, "Alice"), 0));   /* byte for byte */
    cr_assert(eq(int, risk_policy_applies_to(p, "alic"), 0));
    cr_assert(eq(int, risk_policy_applies_to(p, NULL), 0));
    cr_assert(eq(int, risk_policy_applies_to(NULL, "alice"), 0));
    risk_policy_free(p);
}

/* SPEC §2 Policy: setters and a deep dup. */
Test(record, policy_setters_and_dup)
{
    risk_policy *p = full_policy(), *d = NULL;
    cr_assert(eq(int, risk_policy_set_mode(p, RISK_MODE_REPORT_ONLY), RISK_OK));
    cr_assert(eq(int, risk_policy_mode_get(p), RISK_MODE_REPORT_ONLY));
    cr_assert(eq(int, risk_policy_set_mode(p, RISK_MODE_OFF), RISK_OK));
    cr_assert(eq(int, risk_policy_mode_get(p), RISK_MODE_OFF));
    cr_assert(eq(int, risk_policy_set_threshold(p, RISK_LEVEL_LOW), RISK_OK));
    cr_assert(eq(int, risk_policy_threshold(p), RISK_LEVEL_LOW));
    cr_assert(eq(int, risk_policy_set_control(p, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE),
                 RISK_OK));
    cr_assert(eq(int, risk_policy_control(p), RISK_CONTROL_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, risk_policy_dup(&d, p), RISK_OK));
    assert_policy_same(p, d);
    risk_policy_free(p);
    cr_assert(eq(str, (char *)risk_policy_include_at(d, 0), "alice"));
    cr_assert(eq(int, risk_policy_applies_to(d, "mallory"), 0));
    risk_policy_free(d);
}

/* R-IV-1: policy functions refuse bad input, name it, change nothing. */
Test(record, policy_bad_input)
{
    risk_policy *out = NULL, *p = full_policy(), *snap = NULL;
    cr_assert(eq(int, risk_policy_dup(&snap, p), RISK_OK));
    assert_einval_names(risk_policy_new(NULL, "p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), "out");
    assert_einval_names(risk_policy_new(&out, "", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK), "name");
    assert_einval_names(risk_policy_new(&out, "p", RISK_LEVEL_NONE, RISK_CONTROL_BLOCK),
                        "threshold");
    assert_einval_names(risk_policy_new(&out, "p", RISK_LEVEL_LOW, (risk_control)2),
                        "control");
    cr_assert_null(out);
    assert_einval_names(risk_policy_dup(&out, NULL), "policy");
    assert_einval_names(risk_policy_dup(NULL, p), "out");
    assert_einval_names(risk_policy_set_mode(p, (risk_policy_mode)3), "mode");
    assert_einval_names(risk_policy_set_mode(NULL, RISK_MODE_ON), "policy");
    assert_einval_names(risk_policy_set_threshold(p, (risk_level)0), "threshold");
    assert_einval_names(risk_policy_set_threshold(p, (risk_level)4), "threshold");
    assert_einval_names(risk_policy_set_control(p, (risk_control)9), "control");
    assert_einval_names(risk_policy_include_add(p, NULL), "user_id");
    assert_einval_names(risk_policy_include_add(p, "\x80"), "user_id");
    assert_einval_names(risk_policy_exclude_add(p, ""), "user_id");
    assert_einval_names(risk_policy_exclude_add(NULL, "x"), "policy");
    assert_policy_same(p, snap);
    risk_policy_free(p);
    risk_policy_free(snap);
    risk_policy_free(NULL);
}

/* ------------------------------------------------------------ history */

/* SPEC §2 History item: constructor, setters, getters, deep dup. */
Test(record, history_fields_and_dup)
{
    risk_history *h = full_history(), *d = NULL, *pol = NULL;
    cr_assert(eq(u64, risk_history_seq(h), 9));
    cr_assert(eq(i64, risk_history_at(h), 4000));
    cr_assert(eq(str, (char *)risk_history_actor(h), "admin"));
    cr_assert(eq(int, risk_history_action_get(h), RISK_HISTORY_RESOLVE));
    cr_assert(eq(str, (char *)risk_history_user_id(h), "alice"));
    cr_assert(eq(str, (char *)risk_history_event_id(h), "ev-1"));
    cr_assert_null(risk_history_policy(h));
    cr_assert(eq(int, risk_history_level_before(h), RISK_LEVEL_HIGH));
    cr_assert(eq(int, risk_history_level_after(h), RISK_LEVEL_NONE));
    cr_assert(eq(int, risk_history_state_before(h), RISK_STATE_AT_RISK));
    cr_assert(eq(int, risk_history_state_after(h), RISK_STATE_NONE));
    cr_assert(eq(u32, risk_history_changed(h), 1));
    cr_assert(eq(str, (char *)risk_history_note(h), "why"));
    cr_assert(eq(u8, risk_history_chain(h)[0], 0x5A));
    cr_assert(eq(int, risk_history_set_seq(h, 10), RISK_OK));
    cr_assert(eq(u64, risk_history_seq(h), 10));
    cr_assert(eq(int, risk_history_dup(&d, h), RISK_OK));
    assert_history_same(h, d);
    risk_history_free(h);
    cr_assert(eq(str, (char *)risk_history_note(d), "why"));
    cr_assert(eq(int, risk_history_set_change(d, 0, 0, 0, 0, 0, NULL), RISK_OK));
    cr_assert_null(risk_history_note(d));
    risk_history_free(d);

    cr_assert(eq(int, risk_history_new(&pol, 1, 0, "root", RISK_HISTORY_POLICY_SET, NULL, NULL,
                                       "high-risk"), RISK_OK));
    cr_assert_null(risk_history_user_id(pol));
    cr_assert_null(risk_history_event_id(pol));
    cr_assert_null(risk_history_note(pol));
    cr_assert(eq(str, (char *)risk_history_policy(pol), "high-risk"));
    risk_history_free(pol);
}

/* R-IV-1, R-OP-0: the actor is an id, optional ids are ids, notes ≤ 1024. */
Test(record, history_bad_input)
{
    risk_history *out = NULL, *h = full_history(), *snap = NULL;
    char big[RISK_NOTE_MAX + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert(eq(int, risk_history_dup(&snap, h), RISK_OK));
    assert_einval_names(risk_history_new(NULL, 1, 1, "a", 0, NULL, NULL, NULL), "out");
    assert_einval_names(risk_history_new(&out, 1, -1, "a", 0, NULL, NULL, NULL), "at");
    assert_einval_names(risk_history_new(&out, 1, 1, NULL, 0, NULL, NULL, NULL), "actor");
    assert_einval_names(risk_history_new(&out, 1, 1, "a\n", 0, NULL, NULL, NULL), "actor");
    assert_einval_names(risk_history_new(&out, 1, 1, "a", (risk_history_action)18, NULL, NULL,
                                         NULL), "action");
    assert_einval_names(risk_history_new(&out, 1, 1, "a", 0, "", NULL, NULL), "user_id");
    assert_einval_names(risk_history_new(&out, 1, 1, "a", 0, NULL, "\xC1\x81", NULL),
                        "event_id");
    assert_einval_names(risk_history_new(&out, 1, 1, "a", 0, NULL, NULL, "p\x01"), "policy");
    cr_assert_null(out);
    assert_einval_names(risk_history_dup(NULL, h), "out");
    assert_einval_names(risk_history_dup(&out, NULL), "item");
    assert_einval_names(risk_history_set_change(NULL, 0, 0, 0, 0, 0, NULL), "item");
    assert_einval_names(risk_history_set_change(h, 4, 0, 0, 0, 0, NULL), "level_before");
    assert_einval_names(risk_history_set_change(h, 0, 4, 0, 0, 0, NULL), "level_after");
    assert_einval_names(risk_history_set_change(h, 0, 0, 6, 0, 0, NULL), "state_before");
    assert_einval_names(risk_history_set_change(h, 0, 0, 0, 6, 0, NULL), "state_after");
    assert_einval_names(risk_history_set_change(h, 0, 0, 0, 0, 0, big), "note");
    assert_einval_names(risk_history_set_seq(NULL, 1), "item");
    assert_einval_names(risk_history_set_chain(h, NULL), "chain");
    assert_einval_names(risk_history_set_chain(NULL, snap->chain), "item");
    assert_history_same(h, snap);
    risk_history_free(h);
    risk_history_free(snap);
    risk_history_free(NULL);
}

/* R-IV-1: getters on a NULL item return neutral values. */
Test(record, history_null_getters)
{
    static const uint8_t zeros[32];
    cr_assert(eq(u64, risk_history_seq(NULL), 0));
    cr_assert(eq(i64, risk_history_at(NULL), RISK_TIME_NONE));
    cr_assert_null(risk_history_actor(NULL));
    cr_assert_null(risk_history_note(NULL));
    cr_assert(eq(int, memcmp(risk_history_chain(NULL), zeros, 32), 0));
}

/* -------------------------------------------------------------- enums */

/* SPEC §3, §5 spellings: name ↔ parse round-trips for every value of every
 * kind; the table ends exactly at the last enum value. */
Test(record, enum_roundtrip_every_kind)
{
    static const uint32_t counts[] = {4, 2, 7, 7, 2, 6, 9, 3, 2, 3, 8, 3, 18, 9};
    for (uint32_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        for (uint32_t v = 0; v < counts[k]; v++) {
            const char *n = risk_enum_name((risk_enum_kind)k, v);
            uint32_t back = 999;
            cr_assert_not_null(n, "kind %u value %u", k, v);
            cr_assert(eq(int, risk_enum_parse((risk_enum_kind)k, n, &back), RISK_OK));
            cr_assert(eq(u32, back, v), "kind %u name %s", k, n);
        }
        cr_assert_null(risk_enum_name((risk_enum_kind)k, counts[k]), "kind %u", k);
    }
    cr_assert_null(risk_enum_name((risk_enum_kind)14, 0));
}

/* SPEC §2–§6 spellings: spot checks of the exact names. */
Test(record, enum_spellings)
{
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_LEVEL, RISK_LEVEL_MEDIUM), "medium"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_CLOSE_REASON, RISK_CLOSE_FALSE_POSITIVE),
                 "false_positive"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_ACTION, RISK_ACTION_REACTIVATE),
                 "reactivate"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_STATE, RISK_STATE_CONFIRMED_COMPROMISED),
                 "confirmed_compromised"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_DETAIL, RISK_DETAIL_ADMIN_DISMISSED_ALL_RISK),
                 "admin_dismissed_all_risk"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_POLICY_MODE, RISK_MODE_REPORT_ONLY),
                 "report_only"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_DECISION, RISK_DECISION_BLOCK), "block"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_REASON, RISK_REASON_MFA_REGISTERED_DURING_RISK),
                 "mfa_registered_during_risk"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_PASSWORD_CHANGE, RISK_PASSWORD_INSECURE),
                 "insecure"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_HISTORY_ACTION, RISK_HISTORY_DISMISS_ALL),
                 "dismiss_all"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_HISTORY_ACTION, RISK_HISTORY_POLICY_SET),
                 "policy_set"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_TIMING, RISK_TIMING_OFFLINE), "offline"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_EVENT_STATE, RISK_EVENT_CLOSED), "closed"));
    cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_CONTROL, RISK_CONTROL_BLOCK), "block"));
}

/* SPEC §5: Graph riskDetail spellings map to the same detail values. */
Test(record, enum_graph_details)
{
    static const struct {
        uint32_t v;
        const char *graph;
    } map[] = {
        {RISK_DETAIL_NONE, "none"},
        {RISK_DETAIL_ADMIN_GENERATED_TEMPORARY_PASSWORD, "adminGeneratedTemporaryPassword"},
        {RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_CHANGE, "userPerformedSecuredPasswordChange"},
        {RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_RESET, "userPerformedSecuredPasswordReset"},
        {RISK_DETAIL_ADMIN_DISMISSED_ALL_RISK, "adminDismissedAllRiskForUser"},
        {RISK_DETAIL_ADMIN_CONFIRMED_COMPROMISED, "adminConfirmedUserCompromised"},
        {RISK_DETAIL_ADMIN_CONFIRMED_SAFE, "adminConfirmedAccountSafe"},
        {RISK_DETAIL_ADMIN_CLOSED_EVENTS, "admin_closed_events"},
        {RISK_DETAIL_AGED_OUT, "aged_out"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        uint32_t v = 99;
        cr_assert(eq(str, (char *)risk_enum_name(RISK_ENUM_DETAIL_GRAPH, map[i].v),
                     (char *)map[i].graph));
        cr_assert(eq(int, risk_enum_parse(RISK_ENUM_DETAIL_GRAPH, map[i].graph, &v), RISK_OK));
        cr_assert(eq(u32, v, map[i].v));
    }
    uint32_t v = 99;
    /* the librisk spelling is not a Graph spelling, and vice versa */
    cr_assert(eq(int, risk_enum_parse(RISK_ENUM_DETAIL_GRAPH, "admin_confirmed_safe", &v),
                 RISK_EINVAL));
    cr_assert(eq(int, risk_enum_parse(RISK_ENUM_DETAIL, "adminConfirmedAccountSafe", &v),
                 RISK_EINVAL));
    cr_assert(eq(u32, v, 99));
}

/* R-IV-1: parsing refuses unknown kinds and names, exact and case-sensitive. */
Test(record, enum_parse_bad_input)
{
    uint32_t v = 42;
    assert_einval_names(risk_enum_parse(RISK_ENUM_LEVEL, "High", &v), "name");
    assert_einval_names(risk_enum_parse(RISK_ENUM_LEVEL, "high ", &v), "name");
    assert_einval_names(risk_enum_parse(RISK_ENUM_LEVEL, "", &v), "name");
    assert_einval_names(risk_enum_parse(RISK_ENUM_LEVEL, NULL, &v), "name");
    assert_einval_names(risk_enum_parse(RISK_ENUM_LEVEL, "high", NULL), "out");
    assert_einval_names(risk_enum_parse((risk_enum_kind)14, "high", &v), "kind");
    cr_assert(eq(u32, v, 42));
}
