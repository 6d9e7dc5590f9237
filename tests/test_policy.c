/* Unit tests of the pure sign-in decision, SPEC §6.1 (R-PO-1…8, R-PO-11),
 * and of the verdict handle. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "alloc_fail.h"
#include "internal.h"
#include "verdict_assert.h"

#define NOW INT64_C(1700000000000)

static risk_policy *pols[128];
static size_t npols;
static risk_user *users[16];
static size_t nusers;
static risk_verdict *v;

static void init(void)
{
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
}

static void fini(void)
{
    for (size_t i = 0; i < npols; i++)
        risk_policy_free(pols[i]);
    for (size_t i = 0; i < nusers; i++)
        risk_user_free(users[i]);
    npols = nusers = 0;
    risk_verdict_free(v);
    v = NULL;
    alloc_fail_reset();
}

TestSuite(policy, .init = init, .fini = fini);

static risk_policy *pol(const char *name, risk_level threshold, risk_control control,
                        risk_policy_mode mode)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, name, threshold, control), RISK_OK), "%s",
              risk_error_last());
    cr_assert(eq(int, risk_policy_set_mode(p, mode), RISK_OK));
    cr_assert(npols < sizeof pols / sizeof pols[0]);
    pols[npols++] = p;
    return p;
}

/* A user at risk since NOW - 1000 (the earliest active event). */
static risk_user *usr(const char *id)
{
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, id), RISK_OK));
    u->risk_since = NOW - 1000;
    users[nusers++] = u;
    return u;
}

static void mfa(risk_user *u, int64_t at)
{
    u->mfa_registered = 1;
    u->mfa_registered_at = at;
}

static int decide(risk_policy **ps, size_t n, risk_user *u, risk_level level)
{
    return risk_decide(v, (const risk_policy *const *)ps, n, u, level, NOW);
}

#define EXPECT(dec, rsn, pname)                                                              \
    do {                                                                                     \
        cr_assert(eq(int, (int)risk_verdict_decision(v), (int)(dec)));                       \
        cr_assert(eq(int, (int)risk_verdict_reason(v), (int)(rsn)));                         \
        const char *pn_ = (pname);                                                           \
        if (pn_)                                                                             \
            cr_assert(eq(str, (char *)(risk_verdict_policy(v) ? risk_verdict_policy(v) : "(null)"), \
                         (char *)pn_));                                                      \
        else                                                                                 \
            cr_assert(eq(ptr, (void *)risk_verdict_policy(v), NULL));                        \
    } while (0)

/* ---- the verdict handle ---- */

/* R-PO-9 (fail closed by default): a fresh verdict is block/store_error
 * with no user, no time, no policy. */
Test(policy, new_verdict_fails_closed)
{
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_STORE_ERROR, NULL);
    cr_assert(eq(str, (char *)risk_verdict_user_id(v), ""));
    cr_assert(eq(i64, risk_verdict_at(v), RISK_TIME_NONE));
    cr_assert(eq(int, (int)risk_verdict_level(v), RISK_LEVEL_NONE));
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 0));
    cr_assert(eq(ptr, (void *)risk_verdict_report_only_policy(v, 0), NULL));
    cr_assert(eq(int, risk_verdict_new(NULL), RISK_EINVAL));
    /* NULL reads as fail-closed too */
    cr_assert(eq(int, (int)risk_verdict_decision(NULL), RISK_DECISION_BLOCK));
    cr_assert(eq(int, (int)risk_verdict_reason(NULL), RISK_REASON_STORE_ERROR));
    risk_verdict_free(NULL);
}

/* R-PO-9: the engine's fail-closed reset replaces any earlier decision. */
Test(policy, fail_closed_resets)
{
    risk_user *u = usr("alice");
    risk_policy *p[1] = {pol("ro", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY)};
    cr_assert(eq(int, decide(p, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 1));
    risk_verdict_fail_closed(v, "bob", NOW + 5);
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_STORE_ERROR, NULL);
    cr_assert(eq(str, (char *)risk_verdict_user_id(v), "bob"));
    cr_assert(eq(i64, risk_verdict_at(v), NOW + 5));
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 0));
    risk_verdict_fail_closed(NULL, "x", 0); /* harmless */
}

/* ---- R-PO-1 when a policy fires ---- */

/* R-PO-1, R-PO-3: a policy fires iff threshold ≤ level; level none never
 * fires; the verdict records user, time and level. */
Test(policy, thresholds)
{
    risk_user *u = usr("alice");
    for (int th = RISK_LEVEL_LOW; th <= RISK_LEVEL_HIGH; th++)
        for (int lv = RISK_LEVEL_NONE; lv <= RISK_LEVEL_HIGH; lv++) {
            risk_policy *p = pol("block", (risk_level)th, RISK_CONTROL_BLOCK, RISK_MODE_ON);
            cr_assert(eq(int, decide(&p, 1, u, (risk_level)lv), RISK_OK));
            if (lv != RISK_LEVEL_NONE && th <= lv)
                EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "block");
            else
                EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
            cr_assert(eq(int, (int)risk_verdict_level(v), lv));
            cr_assert(eq(str, (char *)risk_verdict_user_id(v), "alice"));
            cr_assert(eq(i64, risk_verdict_at(v), NOW));
        }
}

/* R-PO-1: include lists (empty = all) and exclusion, which wins. */
Test(policy, include_exclude)
{
    risk_user *alice = usr("alice"), *bob = usr("bob");
    risk_policy *p = pol("p", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    cr_assert(eq(int, decide(&p, 1, bob, RISK_LEVEL_LOW), RISK_OK)); /* empty include: all */
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "p");

    cr_assert(eq(int, risk_policy_include_add(p, "alice"), RISK_OK));
    cr_assert(eq(int, decide(&p, 1, bob, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
    cr_assert(eq(int, decide(&p, 1, alice, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "p");

    cr_assert(eq(int, risk_policy_exclude_add(p, "alice"), RISK_OK));
    cr_assert(eq(int, decide(&p, 1, alice, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);

    risk_policy *q = pol("q", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    cr_assert(eq(int, risk_policy_exclude_add(q, "bob"), RISK_OK)); /* exclude only */
    cr_assert(eq(int, decide(&q, 1, bob, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
    cr_assert(eq(int, decide(&q, 1, alice, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "q");
}

/* R-PO-1, R-PO-4: mode off is ignored entirely; report_only fires and is
 * listed but never enforced. */
Test(policy, off_and_report_only)
{
    risk_user *u = usr("alice");
    risk_policy *off = pol("off", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_OFF);
    cr_assert(eq(int, decide(&off, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 0));

    risk_policy *ro = pol("ro", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY);
    cr_assert(eq(int, decide(&ro, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 1));
    cr_assert(eq(str, (char *)risk_verdict_report_only_policy(v, 0), "ro"));
    cr_assert(eq(int, (int)risk_verdict_report_only_decision(v, 0), RISK_DECISION_BLOCK));
    cr_assert(eq(int, (int)risk_verdict_report_only_reason(v, 0), RISK_REASON_RISK_LEVEL));
    cr_assert(eq(ptr, (void *)risk_verdict_report_only_policy(v, 1), NULL));
}

/* ---- R-PO-2, R-PO-3, R-PO-11 controls and MFA ---- */

/* R-PO-2: require_password_change → that decision for an MFA user, block
 * with not_mfa_registered otherwise. R-PO-3: block → block, MFA or not. */
Test(policy, mfa_vs_not)
{
    risk_user *m = usr("mfa"), *n = usr("nomfa");
    mfa(m, NOW - 5000);
    risk_policy *rpc = pol("rpc", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE,
                           RISK_MODE_ON);
    cr_assert(eq(int, decide(&rpc, 1, m, RISK_LEVEL_MEDIUM), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RISK_LEVEL, "rpc");
    cr_assert(eq(int, decide(&rpc, 1, n, RISK_LEVEL_MEDIUM), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_NOT_MFA_REGISTERED, "rpc");

    risk_policy *blk = pol("blk", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    cr_assert(eq(int, decide(&blk, 1, m, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "blk");
}

/* R-PO-11: MFA registered after the earliest active event does not count
 * (block, mfa_registered_during_risk); at the same millisecond or before it
 * counts; an unknown registration time or no risk_since counts. */
Test(policy, mfa_registered_during_risk)
{
    risk_user *u = usr("alice");
    risk_policy *rpc = pol("rpc", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE,
                           RISK_MODE_ON);
    mfa(u, u->risk_since + 1);
    cr_assert(eq(int, decide(&rpc, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_MFA_REGISTERED_DURING_RISK, "rpc");

    mfa(u, u->risk_since);
    cr_assert(eq(int, decide(&rpc, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RISK_LEVEL, "rpc");

    mfa(u, RISK_TIME_NONE);
    cr_assert(eq(int, decide(&rpc, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RISK_LEVEL, "rpc");

    mfa(u, NOW);
    u->risk_since = RISK_TIME_NONE;
    cr_assert(eq(int, decide(&rpc, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RISK_LEVEL, "rpc");
}

/* ---- R-PO-4 several policies ---- */

/* R-PO-4: block beats require_password_change beats allow; ties go to the
 * first policy by name whatever the input order. */
Test(policy, most_restrictive_wins)
{
    risk_user *u = usr("alice");
    mfa(u, NOW - 5000);
    risk_policy *a = pol("a-rpc", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    risk_policy *z = pol("z-block", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    risk_policy *m = pol("m-block", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    risk_policy *b = pol("b-rpc", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);

    risk_policy *set1[4] = {a, z, m, b}, *set2[4] = {b, m, z, a}, *set3[4] = {z, b, a, m};
    risk_policy **sets[3] = {set1, set2, set3};
    for (int i = 0; i < 3; i++) {
        cr_assert(eq(int, decide(sets[i], 4, u, RISK_LEVEL_LOW), RISK_OK));
        EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RISK_LEVEL, "a-rpc");
        cr_assert(eq(int, decide(sets[i], 4, u, RISK_LEVEL_MEDIUM), RISK_OK));
        EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "m-block");
        cr_assert(eq(int, decide(sets[i], 4, u, RISK_LEVEL_HIGH), RISK_OK));
        EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "m-block");
    }
    /* without MFA, the first rpc policy by name blocks: a tie on block goes
     * to "a-rpc" with its MFA reason */
    u->mfa_registered = 0;
    cr_assert(eq(int, decide(set3, 4, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_NOT_MFA_REGISTERED, "a-rpc");
}

/* R-PO-4: report-only policies never change the enforced decision; each
 * one that fires is listed by name with what it would do. */
Test(policy, report_only_listing)
{
    risk_user *u = usr("alice");
    risk_policy *ps[5] = {
        pol("zz-ro-block", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY),
        pol("enforced", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON),
        pol("aa-ro-rpc", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE,
            RISK_MODE_REPORT_ONLY),
        pol("mm-ro-high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY),
        pol("off", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_OFF),
    };
    mfa(u, NOW - 5000);
    cr_assert(eq(int, decide(ps, 5, u, RISK_LEVEL_MEDIUM), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RISK_LEVEL, "enforced");
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 2)); /* high one does not fire */
    cr_assert(eq(str, (char *)risk_verdict_report_only_policy(v, 0), "aa-ro-rpc"));
    cr_assert(eq(int, (int)risk_verdict_report_only_decision(v, 0),
                 RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, (int)risk_verdict_report_only_reason(v, 0), RISK_REASON_RISK_LEVEL));
    cr_assert(eq(str, (char *)risk_verdict_report_only_policy(v, 1), "zz-ro-block"));
    cr_assert(eq(int, (int)risk_verdict_report_only_decision(v, 1), RISK_DECISION_BLOCK));

    /* without MFA the report-only rpc would block, with the MFA reason */
    u->mfa_registered = 0;
    cr_assert(eq(int, decide(ps, 5, u, RISK_LEVEL_MEDIUM), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_NOT_MFA_REGISTERED, "enforced");
    cr_assert(eq(int, (int)risk_verdict_report_only_decision(v, 0), RISK_DECISION_BLOCK));
    cr_assert(eq(int, (int)risk_verdict_report_only_reason(v, 0), RISK_REASON_NOT_MFA_REGISTERED));
}

/* R-PO-1, R-PO-4: beyond the 64 policies whose outcome the decision
 * remembers in a bit mask, firing is tested again: policies past index 63
 * decide and report exactly like the first ones. */
Test(policy, more_than_64_policies)
{
    risk_user *u = usr("alice");
    risk_policy *ps[70];
    char name[32];
    for (int i = 0; i < 70; i++) {
        snprintf(name, sizeof name, "p%02d", i);
        /* all high threshold (not firing at medium) except two past 63 */
        ps[i] = pol(name, i == 66 || i == 68 ? RISK_LEVEL_MEDIUM : RISK_LEVEL_HIGH,
                    RISK_CONTROL_BLOCK, i == 68 ? RISK_MODE_REPORT_ONLY : RISK_MODE_ON);
    }
    cr_assert(eq(int, decide(ps, 70, u, RISK_LEVEL_MEDIUM), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "p66");
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 1));
    cr_assert(eq(str, (char *)risk_verdict_report_only_policy(v, 0), "p68"));
    cr_assert(eq(int, decide(ps, 70, u, RISK_LEVEL_LOW), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 0));
}

/* ---- R-PO-5 precedence, R-PO-6, R-PO-7, R-PO-8 ---- */

/* R-PO-5, R-PO-7: a temporary password or a required reset means
 * require_password_change whatever the level, and wins over an enforced
 * require_password_change policy (no deciding policy); temporary password
 * comes before reset_required. */
Test(policy, password_flags_over_rpc_policy)
{
    risk_user *u = usr("alice");
    mfa(u, NOW - 5000);
    risk_policy *rpc = pol("rpc", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE,
                           RISK_MODE_ON);

    u->must_change_password = 1;
    cr_assert(eq(int, decide(NULL, 0, u, RISK_LEVEL_NONE), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_TEMPORARY_PASSWORD, NULL);
    cr_assert(eq(int, decide(&rpc, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_TEMPORARY_PASSWORD, NULL);

    u->reset_required = 1;
    cr_assert(eq(int, decide(&rpc, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_TEMPORARY_PASSWORD, NULL);

    u->must_change_password = 0;
    cr_assert(eq(int, decide(&rpc, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RESET_REQUIRED, NULL);
    cr_assert(eq(int, decide(NULL, 0, u, RISK_LEVEL_NONE), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_RESET_REQUIRED, NULL);
}

/* R-PO-5: an enforced block (by control, or by R-PO-2 without MFA) comes
 * before the password flags. */
Test(policy, block_policy_over_password_flags)
{
    risk_user *u = usr("alice");
    risk_policy *blk = pol("blk", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    risk_policy *rpc = pol("rpc", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE,
                           RISK_MODE_ON);
    u->must_change_password = 1;
    u->reset_required = 1;
    cr_assert(eq(int, decide(&blk, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_RISK_LEVEL, "blk");
    cr_assert(eq(int, decide(&rpc, 1, u, RISK_LEVEL_LOW), RISK_OK)); /* no MFA → block */
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_NOT_MFA_REGISTERED, "rpc");
    /* below the block threshold the flag decides */
    cr_assert(eq(int, decide(&blk, 1, u, RISK_LEVEL_MEDIUM), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_TEMPORARY_PASSWORD, NULL);
    /* a report-only block never outranks the flags */
    risk_policy *ro = pol("ro", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY);
    cr_assert(eq(int, decide(&ro, 1, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_REQUIRE_PASSWORD_CHANGE, RISK_REASON_TEMPORARY_PASSWORD, NULL);
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 1));
}

/* R-PO-6, R-PO-5: a deleted user is blocked as user_deleted, first of all;
 * no policy applies, not even report-only ones. */
Test(policy, deleted_user)
{
    risk_user *u = usr("gone");
    u->deleted = 1;
    u->must_change_password = 1;
    risk_policy *ps[2] = {pol("blk", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON),
                          pol("ro", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY)};
    cr_assert(eq(int, decide(ps, 2, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_USER_DELETED, NULL);
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 0));
    cr_assert(eq(str, (char *)risk_verdict_user_id(v), "gone"));
    cr_assert(eq(int, decide(NULL, 0, u, RISK_LEVEL_NONE), RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_USER_DELETED, NULL);
}

/* R-PO-8: a user unknown to the store is allowed at level none, whatever
 * level and policies are passed. */
Test(policy, unknown_user)
{
    risk_policy *ps[2] = {pol("blk", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON),
                          pol("ro", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY)};
    cr_assert(eq(int, decide(ps, 2, NULL, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
    cr_assert(eq(int, (int)risk_verdict_level(v), RISK_LEVEL_NONE));
    cr_assert(eq(str, (char *)risk_verdict_user_id(v), ""));
    cr_assert(eq(i64, risk_verdict_at(v), NOW));
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 0));
}

/* R-PO-5: nothing fires → allow/none. */
Test(policy, nothing_fires)
{
    risk_user *u = usr("alice");
    cr_assert(eq(int, decide(NULL, 0, u, RISK_LEVEL_HIGH), RISK_OK));
    EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
}

/* R-IV-1, R-PO-9: invalid arguments are RISK_EINVAL naming the argument,
 * and the verdict is left fail-closed even after an earlier allow. */
Test(policy, invalid_arguments_fail_closed)
{
    risk_user *u = usr("alice");
    risk_policy *good = pol("good", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_OFF);
    risk_policy *withnull[2] = {good, NULL};
    static const char *names[] = {"policies", "policies[1]", "level", "now", "policies[0].mode"};
    for (int c = 0; c < 5; c++) {
        cr_assert(eq(int, decide(NULL, 0, u, RISK_LEVEL_NONE), RISK_OK));
        EXPECT(RISK_DECISION_ALLOW, RISK_REASON_NONE, NULL);
        int rc = 0;
        switch (c) {
        case 0: rc = risk_decide(v, NULL, 2, u, RISK_LEVEL_LOW, NOW); break;
        case 1: rc = risk_decide(v, (const risk_policy *const *)withnull, 2, u, RISK_LEVEL_LOW, NOW); break;
        case 2: rc = risk_decide(v, NULL, 0, u, (risk_level)4, NOW); break;
        case 3: rc = risk_decide(v, NULL, 0, u, RISK_LEVEL_LOW, -7); break;
        case 4:
            good->mode = 9;
            rc = risk_decide(v, (const risk_policy *const *)withnull, 1, u, RISK_LEVEL_LOW, NOW);
            good->mode = RISK_MODE_OFF;
            break;
        }
        cr_assert(eq(int, rc, RISK_EINVAL), "case %d", c);
        cr_assert(eq(int, strncmp(risk_error_last(), names[c], strlen(names[c])), 0),
                  "case %d: \"%s\"", c, risk_error_last());
        EXPECT(RISK_DECISION_BLOCK, RISK_REASON_STORE_ERROR, NULL);
    }
    cr_assert(eq(int, risk_decide(NULL, NULL, 0, u, RISK_LEVEL_LOW, NOW), RISK_EINVAL));
}

/* ---- memory ---- */

static void many_ro(risk_policy **ps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "ro-%03zu", n - i); /* reverse order: sorting is tested */
        ps[i] = pol(name, RISK_LEVEL_LOW,
                    i % 2 ? RISK_CONTROL_BLOCK : RISK_CONTROL_REQUIRE_PASSWORD_CHANGE,
                    RISK_MODE_REPORT_ONLY);
    }
}

/* R-PO-4, R-IV-3: a verdict is reused without allocating once its
 * report-only capacity suffices, and never leaks across reuses. */
Test(policy, verdict_reuse_without_allocating)
{
    risk_user *u = usr("alice");
    risk_policy *ps[40];
    many_ro(ps, 40);
    cr_assert(eq(int, decide(ps, 40, u, RISK_LEVEL_HIGH), RISK_OK));
    cr_assert(eq(sz, risk_verdict_report_only_count(v), 40));
    cr_assert(eq(str, (char *)risk_verdict_report_only_policy(v, 0), "ro-001"));
    cr_assert(eq(str, (char *)risk_verdict_report_only_policy(v, 39), "ro-040"));

    alloc_fail_install(1); /* any allocation from now on fails */
    for (size_t n = 40; n > 0; n -= 8) {
        cr_assert(eq(int, decide(ps, n, u, RISK_LEVEL_HIGH), RISK_OK));
        cr_assert(eq(sz, risk_verdict_report_only_count(v), n));
    }
    cr_assert(eq(int, decide(ps, 40, u, RISK_LEVEL_HIGH), RISK_OK));
    cr_assert(eq(long, alloc_fail_count(), 0));
    alloc_fail_reset();
}

/* R-IV-3: risk_verdict_new out of memory → RISK_ENOMEM, *out untouched,
 * nothing leaked. */
Test(policy, verdict_new_out_of_memory)
{
    risk_verdict *w = NULL;
    int rc;
    ALLOC_FAIL_SWEEP(rc, w = NULL, risk_verdict_new(&w), cr_assert(eq(ptr, w, NULL)));
    cr_assert(eq(int, rc, RISK_OK));
    EXPECT(RISK_DECISION_BLOCK, RISK_REASON_STORE_ERROR, NULL);
    risk_verdict_free(w);
    alloc_fail_reset();
}

/* R-IV-3, R-PO-9: risk_decide with many report-only policies on a fresh
 * verdict, every allocation failing in turn: RISK_ENOMEM leaves the
 * verdict fail-closed and leaks nothing; the final run decides right. */
Test(policy, decide_out_of_memory_sweep)
{
    risk_user *u = usr("alice");
    mfa(u, NOW - 5000);
    risk_policy *ps[61];
    many_ro(ps, 60);
    ps[60] = pol("enforced", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    risk_verdict *w = NULL;
    int rc;
    ALLOC_FAIL_SWEEP(rc, (void)risk_verdict_new(&w),
                     risk_decide(w, (const risk_policy *const *)ps, 61, u, RISK_LEVEL_HIGH, NOW),
                     {
                         cr_assert(eq(int, (int)risk_verdict_decision(w), RISK_DECISION_BLOCK));
                         cr_assert(eq(int, (int)risk_verdict_reason(w), RISK_REASON_STORE_ERROR));
                         cr_assert(eq(sz, risk_verdict_report_only_count(w), 0));
                         risk_verdict_free(w);
                     });
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(eq(int, (int)risk_verdict_decision(w), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(str, (char *)risk_verdict_policy(w), "enforced"));
    cr_assert(eq(sz, risk_verdict_report_only_count(w), 60));
    risk_verdict_free(w);
    alloc_fail_reset();
}

/* ---- the sign-in's decision table (lib/policy.c) ---- */

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static _Atomic uint64_t tab[RISK_PTAB_WORDS];

static int build_table(risk_policy **ps, size_t n)
{
    uint64_t t[RISK_PTAB_WORDS];
    int ok = risk_ptab_build(t, (const risk_policy *const *)ps, n);
    for (size_t i = 0; i < RISK_PTAB_WORDS; i++)
        atomic_store(&tab[i], t[i]);
    return ok;
}

/* Every field a caller can read, equal in the two verdicts. */
static void same_verdict(const risk_verdict *a, const risk_verdict *b, const char *what)
{
    expect_same_decision(a, b, what);
    cr_assert(eq(str, (char *)risk_verdict_user_id(a), (char *)risk_verdict_user_id(b)), "%s", what);
    cr_assert(eq(i64, risk_verdict_at(a), risk_verdict_at(b)), "%s", what);
}

/* R-PO-1…8, R-PO-11: for random policy sets (every mode, threshold and
 * control, include and exclude lists, 0 to 16 policies in any order) and
 * every kind of user (each level, MFA before, during or without a risk,
 * unknown registration time, the password flags, deleted, unknown to the
 * store), the table decides exactly as risk_decide; and every id named in
 * a list is sent to risk_decide (the filter has no false negatives). */
Test(policy, table_decides_as_risk_decide)
{
    static const char *ids[] = { "alice", "bob", "carol", "dave", "erin-with-a-longer-id-0123456789" };
    risk_verdict *w = NULL;
    cr_assert(eq(int, risk_verdict_new(&w), RISK_OK));
    for (int round = 0; round < 400; round++) {
        risk_policy *ps[RISK_PTAB_MAX];
        size_t n = rnd(RISK_PTAB_MAX + 1);
        for (size_t i = 0; i < n; i++) {
            char name[48];
            snprintf(name, sizeof name, "%c-policy-%02zu", 'a' + (int)rnd(26), i);
            ps[i] = pol(name, (risk_level)(1 + rnd(3)), (risk_control)rnd(2),
                        (risk_policy_mode)rnd(3));
            for (uint32_t k = rnd(4) == 0 ? 1 + rnd(2) : 0; k > 0; k--)
                cr_assert(eq(int, risk_policy_include_add(ps[i], ids[rnd(4)]), RISK_OK));
            for (uint32_t k = rnd(4) == 0 ? 1 + rnd(2) : 0; k > 0; k--)
                cr_assert(eq(int, risk_policy_exclude_add(ps[i], ids[rnd(4)]), RISK_OK));
        }
        cr_assert(eq(int, build_table(ps, n), 1));
        for (int k = 0; k < 40; k++) {
            const char *id = ids[rnd(5)];
            risk_user *u = usr(id);
            risk_level lvl = (risk_level)rnd(4);
            u->level = (uint32_t)lvl;
            u->risk_since = rnd(4) == 0 ? RISK_TIME_NONE : NOW - 1000;
            if (rnd(2))
                mfa(u, rnd(5) == 0 ? RISK_TIME_NONE : NOW - 2000 + (int64_t)rnd(3) * 1000);
            u->must_change_password = rnd(4) == 0;
            u->reset_required = rnd(4) == 0;
            u->deleted = rnd(8) == 0;
            int unknown = rnd(10) == 0;
            int listed = risk_ptab_listed(tab, id, strlen(id));
            int named = 0;
            for (size_t i = 0; i < n; i++) {
                if (ps[i]->mode == RISK_MODE_OFF)
                    continue;
                for (size_t j = 0; j < risk_policy_include_count(ps[i]); j++)
                    named |= strcmp(risk_policy_include_at(ps[i], j), id) == 0;
                for (size_t j = 0; j < risk_policy_exclude_count(ps[i]); j++)
                    named |= strcmp(risk_policy_exclude_at(ps[i], j), id) == 0;
            }
            cr_assert(eq(int, named && !listed, 0), "round %d: '%s' is named, not in the filter", round, id);
            if (listed) { /* the engine asks risk_decide */
                risk_user_free(users[--nusers]);
                continue;
            }
            cr_assert(eq(int, decide(ps, n, unknown ? NULL : u, unknown ? RISK_LEVEL_NONE : lvl),
                         RISK_OK));
            if (unknown) /* the engine names the user it was asked about (R-PO-8) */
                snprintf(v->user_id, sizeof v->user_id, "%s", id);
            uint32_t key = unknown ? RISK_PTAB_UNKNOWN : risk_ptab_key(u);
            cr_assert(eq(int, risk_ptab_decide(w, tab, key, unknown ? RISK_LEVEL_NONE : lvl, id,
                                               strlen(id), NOW), RISK_OK));
            char what[64];
            snprintf(what, sizeof what, "round %d, user %d", round, k);
            same_verdict(w, v, what);
            risk_user_free(users[--nusers]);
        }
        for (size_t i = 0; i < n; i++)
            risk_policy_free(pols[--npols]);
    }
    risk_verdict_free(w);
}
