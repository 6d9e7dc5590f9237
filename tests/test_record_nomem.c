/* The record handles out of memory (R-IV-3): every allocation of every
 * constructor and setter fails in turn → RISK_ENOMEM, nothing changes,
 * nothing leaks. */
#include "record_fixture.h"

TestSuite(record_nomem, .fini = alloc_fail_reset);

/* -------------------------------------------- out of memory (R-IV-3) */

/* Constructors: each failed allocation gives ENOMEM, *out untouched, no leak. */
Test(record_nomem, constructors)
{
    int rc;
    alloc_fail_install(0); /* count the sources too, so live ends at 0 */
    risk_user *u = NULL, *ud = NULL, *src_u = full_user();
    risk_event *e = NULL, *ed = NULL, *src_e = closed_event();
    risk_policy *p = NULL, *pd = NULL, *src_p = full_policy();
    risk_history *h = NULL, *hd = NULL, *src_h = full_history();
    risk_history *hp = NULL;
    int tries = 0;

    ALLOC_FAIL_SWEEP(rc, tries++, risk_user_new(&u, "alice"), cr_assert_null(u));
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(ge(int, tries, 2)); /* the one allocation was failed */
    ALLOC_FAIL_SWEEP(rc, (void)0, risk_user_dup(&ud, src_u), cr_assert_null(ud));
    cr_assert(eq(int, rc, RISK_OK));
    assert_user_same(ud, src_u);

    tries = 0;
    ALLOC_FAIL_SWEEP(rc, tries++,
                     risk_event_new(&e, "ev", "alice", "leakedCredentials", RISK_LEVEL_LOW, 5),
                     cr_assert_null(e));
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(ge(int, tries, 5)); /* struct, id, user_id, type */
    tries = 0;
    ALLOC_FAIL_SWEEP(rc, tries++, risk_event_dup(&ed, src_e), cr_assert_null(ed));
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(ge(int, tries, 2)); /* one allocation: the handle and its strings */
    assert_event_same(ed, src_e);

    ALLOC_FAIL_SWEEP(rc, (void)0, risk_policy_new(&p, "pol", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK),
                     cr_assert_null(p));
    cr_assert(eq(int, rc, RISK_OK));
    tries = 0;
    ALLOC_FAIL_SWEEP(rc, tries++, risk_policy_dup(&pd, src_p), cr_assert_null(pd));
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(ge(int, tries, 7)); /* struct, name, 2 lists, 3 ids */
    assert_policy_same(pd, src_p);

    tries = 0;
    ALLOC_FAIL_SWEEP(rc, tries++,
                     risk_history_new(&h, 1, 2, "admin", RISK_HISTORY_INGEST, "alice", "ev",
                                      NULL),
                     cr_assert_null(h));
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(ge(int, tries, 4));
    ALLOC_FAIL_SWEEP(rc, (void)0,
                     risk_history_new(&hp, 1, 2, "admin", RISK_HISTORY_POLICY_SET, NULL, NULL,
                                      "pol"),
                     cr_assert_null(hp));
    cr_assert(eq(int, rc, RISK_OK));
    tries = 0;
    ALLOC_FAIL_SWEEP(rc, tries++, risk_history_dup(&hd, src_h), cr_assert_null(hd));
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(ge(int, tries, 5));
    assert_history_same(hd, src_h);

    risk_user_free(u), risk_user_free(ud), risk_user_free(src_u);
    risk_event_free(e), risk_event_free(ed), risk_event_free(src_e);
    risk_policy_free(p), risk_policy_free(pd), risk_policy_free(src_p);
    risk_history_free(h), risk_history_free(hd), risk_history_free(src_h), risk_history_free(hp);
    cr_assert(eq(long, alloc_fail_live(), 0));
}

/* Sweep one setter on a fresh handle made by MAKE (type T): each ENOMEM
 * leaves the handle equal to a snapshot taken before. */
#define SWEEP_SETTER(T, MAKE, SAME, CALL)                                                  \
    do {                                                                                   \
        risk_##T *h_ = NULL, *snap_ = NULL;                                                \
        int rc_;                                                                           \
        ALLOC_FAIL_SWEEP(rc_, (h_ = MAKE(), risk_##T##_dup(&snap_, h_)), CALL(h_), {       \
            SAME(h_, snap_);                                                               \
            risk_##T##_free(h_);                                                           \
            risk_##T##_free(snap_);                                                        \
        });                                                                                \
        cr_assert(eq(int, rc_, RISK_OK), "%s: %s", #CALL, risk_error_last());              \
        risk_##T##_free(h_);                                                               \
        risk_##T##_free(snap_);                                                            \
    } while (0)

#define U_MFA(u) risk_user_set_mfa_registered(u, 0, RISK_TIME_NONE)
#define U_DEL(u) risk_user_set_deleted(u, 1)
#define U_VER(u) risk_user_set_version(u, 8)
#define U_PW(u) risk_user_set_password_state(u, 0, 1, 900)
#define U_RISK(u) risk_user_set_risk(u, RISK_LEVEL_HIGH, RISK_STATE_CONFIRMED_COMPROMISED, \
                                     RISK_DETAIL_ADMIN_CONFIRMED_COMPROMISED, 1, 9, 1, 2, 1)
static const uint8_t new_head[32] = {1, 2, 3};
#define U_HEAD(u) risk_user_set_chain_head(u, new_head)

/* R-IV-3: user setters (none of them may fail for memory). */
Test(record_nomem, user_setters)
{
    SWEEP_SETTER(user, full_user, assert_user_same, U_MFA);
    SWEEP_SETTER(user, full_user, assert_user_same, U_DEL);
    SWEEP_SETTER(user, full_user, assert_user_same, U_VER);
    SWEEP_SETTER(user, full_user, assert_user_same, U_PW);
    SWEEP_SETTER(user, full_user, assert_user_same, U_RISK);
    SWEEP_SETTER(user, full_user, assert_user_same, U_HEAD);
    cr_assert(eq(long, alloc_fail_live(), 0));
}

#define E_TIMING(e) risk_event_set_timing(e, RISK_TIMING_REALTIME)
#define E_IP(e) risk_event_set_ip(e, "2001:db8::1")
#define E_LOC(e) risk_event_set_location(e, "Bern")
#define E_SRC(e) risk_event_set_source(e, "siem")
#define E_LEVEL(e) risk_event_set_level(e, RISK_LEVEL_MEDIUM)
#define E_DET(e) risk_event_set_detected_at(e, 77)
#define E_NOTE(e) risk_event_set_note(e, "a new, longer note")
#define E_CLOSE(e) risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_IGNORED, 3000, "bob")
#define E_OPEN(e) risk_event_set_closing(e, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_TIME_NONE, NULL)

/* R-IV-3: event setters; string setters fail cleanly keeping the old value. */
Test(record_nomem, event_setters)
{
    SWEEP_SETTER(event, full_event, assert_event_same, E_TIMING);
    SWEEP_SETTER(event, full_event, assert_event_same, E_IP);
    SWEEP_SETTER(event, full_event, assert_event_same, E_LOC);
    SWEEP_SETTER(event, full_event, assert_event_same, E_SRC);
    SWEEP_SETTER(event, full_event, assert_event_same, E_LEVEL);
    SWEEP_SETTER(event, full_event, assert_event_same, E_DET);
    SWEEP_SETTER(event, full_event, assert_event_same, E_NOTE);
    SWEEP_SETTER(event, full_event, assert_event_same, E_CLOSE);
    SWEEP_SETTER(event, closed_event, assert_event_same, E_CLOSE);
    SWEEP_SETTER(event, closed_event, assert_event_same, E_OPEN);
    cr_assert(eq(long, alloc_fail_live(), 0));

    /* the string setters really allocate, so the sweep did inject failures */
    risk_event *e = full_event();
    alloc_fail_install(1);
    cr_assert(eq(int, risk_event_set_note(e, "x"), RISK_ENOMEM));
    cr_assert(eq(int, risk_error_last_code(), RISK_ENOMEM));
    cr_assert(eq(str, (char *)risk_event_note(e), "first note"));
    alloc_fail_install(1);
    cr_assert(eq(int, risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_AGED, 1, "sys"),
                 RISK_ENOMEM));
    cr_assert(eq(int, risk_event_state_get(e), RISK_EVENT_ACTIVE));
    risk_event_free(e);
}

#define P_MODE(p) risk_policy_set_mode(p, RISK_MODE_REPORT_ONLY)
#define P_THR(p) risk_policy_set_threshold(p, RISK_LEVEL_MEDIUM)
#define P_CTL(p) risk_policy_set_control(p, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE)
#define P_INC(p) risk_policy_include_add(p, "bob")     /* between alice and carol */
#define P_INC_DUP(p) risk_policy_include_add(p, "alice") /* present: no-op */
#define P_EXC(p) risk_policy_exclude_add(p, "aaron")   /* before mallory */

static risk_policy *empty_policy(void)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "empty", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK),
                 RISK_OK));
    return p;
}

/* R-IV-3: policy setters; a failed list insertion keeps the list intact. */
Test(record_nomem, policy_setters)
{
    SWEEP_SETTER(policy, full_policy, assert_policy_same, P_MODE);
    SWEEP_SETTER(policy, full_policy, assert_policy_same, P_THR);
    SWEEP_SETTER(policy, full_policy, assert_policy_same, P_CTL);
    SWEEP_SETTER(policy, full_policy, assert_policy_same, P_INC);
    SWEEP_SETTER(policy, full_policy, assert_policy_same, P_INC_DUP);
    SWEEP_SETTER(policy, full_policy, assert_policy_same, P_EXC);
    SWEEP_SETTER(policy, empty_policy, assert_policy_same, P_INC);
    SWEEP_SETTER(policy, empty_policy, assert_policy_same, P_EXC);
    cr_assert(eq(long, alloc_fail_live(), 0));
}

static const uint8_t new_chain[32] = {9, 9, 9};
#define H_CHANGE(h) risk_history_set_change(h, 1, 2, 1, 2, 3, "a different note")
#define H_CHANGE0(h) risk_history_set_change(h, 0, 0, 0, 0, 0, NULL)
#define H_SEQ(h) risk_history_set_seq(h, 99)
#define H_CHAIN(h) risk_history_set_chain(h, new_chain)

/* R-IV-3: history setters. */
Test(record_nomem, history_setters)
{
    SWEEP_SETTER(history, full_history, assert_history_same, H_CHANGE);
    SWEEP_SETTER(history, full_history, assert_history_same, H_CHANGE0);
    SWEEP_SETTER(history, full_history, assert_history_same, H_SEQ);
    SWEEP_SETTER(history, full_history, assert_history_same, H_CHAIN);
    cr_assert(eq(long, alloc_fail_live(), 0));
}
