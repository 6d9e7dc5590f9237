/* One assertion shared by the decision tests: two verdicts say the same
 * (decision, reason, level, deciding policy, every report-only entry).
 * Header-only; include it after Criterion. */
#ifndef VERDICT_ASSERT_H
#define VERDICT_ASSERT_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <librisk.h>

static void expect_same_decision(const risk_verdict *got, const risk_verdict *want,
                                 const char *what)
{
    cr_assert(eq(int, (int)risk_verdict_decision(got), (int)risk_verdict_decision(want)), "%s", what);
    cr_assert(eq(int, (int)risk_verdict_reason(got), (int)risk_verdict_reason(want)), "%s", what);
    cr_assert(eq(int, (int)risk_verdict_level(got), (int)risk_verdict_level(want)), "%s", what);
    const char *pg = risk_verdict_policy(got), *pw = risk_verdict_policy(want);
    cr_assert(eq(int, pg != NULL, pw != NULL), "%s", what);
    if (pg)
        cr_assert(eq(str, (char *)pg, (char *)pw), "%s", what);
    size_t n = risk_verdict_report_only_count(want);
    cr_assert(eq(sz, risk_verdict_report_only_count(got), n), "%s", what);
    for (size_t i = 0; i < n; i++) {
        cr_assert(eq(str, (char *)risk_verdict_report_only_policy(got, i),
                     (char *)risk_verdict_report_only_policy(want, i)), "%s", what);
        cr_assert(eq(int, (int)risk_verdict_report_only_decision(got, i),
                     (int)risk_verdict_report_only_decision(want, i)), "%s", what);
        cr_assert(eq(int, (int)risk_verdict_report_only_reason(got, i),
                     (int)risk_verdict_report_only_reason(want, i)), "%s", what);
    }
}

#endif
