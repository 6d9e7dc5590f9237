/* The sign-in decision of SPEC §6.1 as a pure function (R-PO-1…8, R-PO-11),
 * and the verdict handle it fills.
 *
 * risk_decide reads only its arguments: the policies, the user record, the
 * user's current level and `now`. Store failures (R-PO-9) are the engine's:
 * it leaves the verdict fail-closed with risk_verdict_fail_closed(). */
#include "internal.h"

#include <stdlib.h>

/* ---- the verdict handle ---- */

/* Copy an id into a fixed buffer; "" when NULL or too long (cannot happen
 * for validated handles, but never overrun). */
static void copy_id(char dst[RISK_ID_MAX + 1], const char *src)
{
    size_t len = src ? strnlen(src, RISK_ID_MAX + 1) : 0;
    if (len > RISK_ID_MAX)
        len = 0;
    memcpy(dst, src ? src : "", len);
    dst[len] = '\0';
}

/* Empty the verdict to block/store_error. The report-only array keeps its
 * capacity (reuse without allocating); a receipt described an earlier
 * decision, so it goes. */
void risk_verdict_fail_closed(risk_verdict *v, const char *user_id, int64_t at)
{
    if (!v)
        return;
    v->decision = RISK_DECISION_BLOCK;
    v->reason = RISK_REASON_STORE_ERROR;
    v->level = RISK_LEVEL_NONE;
    v->has_policy = 0;
    v->policy[0] = '\0';
    copy_id(v->user_id, user_id);
    v->at = at;
    v->n_ro = 0;
    risk_free(v->receipt);
    v->receipt = NULL;
}

int risk_verdict_new(risk_verdict **out)
{
    if (!out)
        return risk_err(RISK_EINVAL, "out: NULL");
    risk_verdict *v = risk_calloc(1, sizeof *v);
    if (!v)
        return risk_err(RISK_ENOMEM, "verdict: out of memory");
    risk_verdict_fail_closed(v, NULL, RISK_TIME_NONE);
    *out = v;
    return RISK_OK;
}

void risk_verdict_free(risk_verdict *v)
{
    if (!v)
        return;
    risk_free(v->ro);
    risk_free(v->receipt);
    risk_free(v);
}

/* Getters fail closed too: a NULL verdict reads as block/store_error. */
risk_decision risk_verdict_decision(const risk_verdict *v)
{
    return v ? (risk_decision)v->decision : RISK_DECISION_BLOCK;
}

risk_reason risk_verdict_reason(const risk_verdict *v)
{
    return v ? (risk_reason)v->reason : RISK_REASON_STORE_ERROR;
}

const char *risk_verdict_policy(const risk_verdict *v)
{
    return v && v->has_policy ? v->policy : NULL;
}

risk_level risk_verdict_level(const risk_verdict *v)
{
    return v ? (risk_level)v->level : RISK_LEVEL_NONE;
}

const char *risk_verdict_user_id(const risk_verdict *v)
{
    return v ? v->user_id : "";
}

int64_t risk_verdict_at(const risk_verdict *v)
{
    return v ? v->at : RISK_TIME_NONE;
}

size_t risk_verdict_report_only_count(const risk_verdict *v)
{
    return v ? v->n_ro : 0;
}

const char *risk_verdict_report_only_policy(const risk_verdict *v, size_t i)
{
    return v && i < v->n_ro ? v->ro[i].policy : NULL;
}

risk_decision risk_verdict_report_only_decision(const risk_verdict *v, size_t i)
{
    return v && i < v->n_ro ? (risk_decision)v->ro[i].decision : RISK_DECISION_ALLOW;
}

risk_reason risk_verdict_report_only_reason(const risk_verdict *v, size_t i)
{
    return v && i < v->n_ro ? (risk_reason)v->ro[i].reason : RISK_REASON_NONE;
}

/* ---- the decision ---- */

/* R-PO-11: MFA counts for self-remediation only if registered at or before
 * the earliest active event. An unknown registration time (a record from
 * before times were kept) is taken as before the risk; no risk at all
 * (risk_since none) means nothing to be "during". */
static int mfa_counts(const risk_user *u)
{
    if (!u->mfa_registered)
        return 0;
    if (u->risk_since == RISK_TIME_NONE || u->mfa_registered_at == RISK_TIME_NONE)
        return 1;
    return u->mfa_registered_at <= u->risk_since;
}

/* What a policy would decide if it fires (R-PO-2, R-PO-3). */
static void policy_outcome(const risk_policy *p, const risk_user *u, uint32_t *decision,
                           uint32_t *reason)
{
    if (p->control == RISK_CONTROL_BLOCK) {
        *decision = RISK_DECISION_BLOCK;
        *reason = RISK_REASON_RISK_LEVEL;
    } else if (mfa_counts(u)) {
        *decision = RISK_DECISION_REQUIRE_PASSWORD_CHANGE;
        *reason = RISK_REASON_RISK_LEVEL;
    } else {
        *decision = RISK_DECISION_BLOCK;
        *reason = u->mfa_registered ? RISK_REASON_MFA_REGISTERED_DURING_RISK
                                    : RISK_REASON_NOT_MFA_REGISTERED;
    }
}

/* R-PO-1: a policy that is on or report-only, includes the user and does
 * not exclude it, and whose threshold the level reaches, fires. Level none
 * never fires (thresholds are at least low). Deleted users are handled
 * before any policy is looked at (R-PO-6). */
static int policy_fires(const risk_policy *p, const risk_user *u, uint32_t level)
{
    if (p->mode == RISK_MODE_OFF)
        return 0;
    if (level == RISK_LEVEL_NONE || p->threshold > level)
        return 0;
    return risk_policy_applies_to(p, u->id);
}

static int check_policy(const risk_policy *p, size_t i)
{
    if (!p)
        return risk_err(RISK_EINVAL, "policies[%zu]: NULL", i);
    if (!p->name || strnlen(p->name, RISK_ID_MAX + 1) > RISK_ID_MAX)
        return risk_err(RISK_EINVAL, "policies[%zu].name: missing or too long", i);
    if (p->mode > RISK_MODE_REPORT_ONLY)
        return risk_err(RISK_EINVAL, "policies[%zu].mode: %u out of range", i, p->mode);
    if (p->threshold < RISK_LEVEL_LOW || p->threshold > RISK_LEVEL_HIGH)
        return risk_err(RISK_EINVAL, "policies[%zu].threshold: %u out of range", i,
                        p->threshold);
    if (p->control > RISK_CONTROL_BLOCK)
        return risk_err(RISK_EINVAL, "policies[%zu].control: %u out of range", i, p->control);
    return RISK_OK;
}

static int check_args(const risk_policy *const *policies, size_t n, const risk_user *user,
                      uint32_t level, int64_t now)
{
    if (n > 0 && !policies)
        return risk_err(RISK_EINVAL, "policies: NULL with n %zu", n);
    for (size_t i = 0; i < n; i++)
        if (check_policy(policies[i], i) != RISK_OK)
            return RISK_EINVAL;
    if (user && (!user->id || strnlen(user->id, RISK_ID_MAX + 1) > RISK_ID_MAX))
        return risk_err(RISK_EINVAL, "user: id missing or too long");
    if (level > RISK_LEVEL_HIGH)
        return risk_err(RISK_EINVAL, "level: %u out of range", level);
    if (risk_check_time("now", now) != RISK_OK)
        return RISK_EINVAL;
    return RISK_OK;
}

/* Make room for `need` report-only entries; the only allocation of a
 * decision, skipped once the verdict has grown enough. */
static int reserve_ro(risk_verdict *v, size_t need)
{
    if (need <= v->cap_ro)
        return RISK_OK;
    size_t cap = v->cap_ro ? v->cap_ro : 4;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > SIZE_MAX / sizeof(struct risk_verdict_ro))
        return risk_err(RISK_ENOMEM, "verdict: too many report-only policies");
    struct risk_verdict_ro *ro = risk_realloc(v->ro, cap * sizeof *ro);
    if (!ro)
        return risk_err(RISK_ENOMEM, "verdict: out of memory");
    v->ro = ro;
    v->cap_ro = cap;
    return RISK_OK;
}

static int cmp_ro(const void *a, const void *b)
{
    return strcmp(((const struct risk_verdict_ro *)a)->policy,
                  ((const struct risk_verdict_ro *)b)->policy);
}

int risk_decide(risk_verdict *v, const risk_policy *const *policies, size_t n,
                const risk_user *user, risk_level level, int64_t now)
{
    if (!v)
        return risk_err(RISK_EINVAL, "v: NULL");
    int rc = check_args(policies, n, user, (uint32_t)level, now);
    if (rc != RISK_OK) {
        risk_verdict_fail_closed(v, user ? user->id : NULL, RISK_TIME_NONE);
        return rc;
    }
    return risk_decide_checked(v, policies, n, user, level, now);
}

/* risk_decide without the argument checks: for the engine's sign-in hot
 * path, whose policies, user and level are valid by construction. */
int risk_decide_checked(risk_verdict *v, const risk_policy *const *policies, size_t n,
                        const risk_user *user, risk_level level, int64_t now)
{
    uint32_t lvl = (uint32_t)level;
    int rc;
    risk_verdict_fail_closed(v, user ? user->id : NULL, now);

    /* R-PO-8: unknown to the store → level none, nothing fires. */
    if (!user) {
        v->decision = RISK_DECISION_ALLOW;
        v->reason = RISK_REASON_NONE;
        return RISK_OK;
    }
    v->level = lvl;
    /* R-PO-6 (first in R-PO-5): deleted users are blocked, no policy applies. */
    if (user->deleted) {
        v->reason = RISK_REASON_USER_DELETED;
        return RISK_OK;
    }

    /* Room for every report-only policy that fires, before anything else
     * changes, so ENOMEM leaves the verdict fail-closed. */
    size_t n_ro = 0;
    uint64_t fired = 0; /* whether policy i (< 64) fires: tested once */
    for (size_t i = 0; i < n; i++) {
        int f = policy_fires(policies[i], user, lvl);
        if (f && i < 64)
            fired |= UINT64_C(1) << i;
        if (f && policies[i]->mode == RISK_MODE_REPORT_ONLY)
            n_ro++;
    }
    rc = reserve_ro(v, n_ro);
    if (rc != RISK_OK)
        return rc;

    /* R-PO-4: the most restrictive enforced decision; ties go to the first
     * policy by name, so the input order never matters. */
    const risk_policy *best = NULL;
    uint32_t best_decision = RISK_DECISION_ALLOW, best_reason = RISK_REASON_NONE;
    for (size_t i = 0; i < n; i++) {
        const risk_policy *p = policies[i];
        uint32_t d, r;
        if (!(i < 64 ? (int)((fired >> i) & 1) : policy_fires(p, user, lvl)))
            continue;
        policy_outcome(p, user, &d, &r);
        if (p->mode == RISK_MODE_REPORT_ONLY) {
            struct risk_verdict_ro *e = &v->ro[v->n_ro++];
            copy_id(e->policy, p->name);
            e->decision = d;
            e->reason = r;
            continue;
        }
        if (!best || d > best_decision ||
            (d == best_decision && strcmp(p->name, best->name) < 0)) {
            best = p;
            best_decision = d;
            best_reason = r;
        }
    }
    if (v->n_ro > 1)
        qsort(v->ro, v->n_ro, sizeof v->ro[0], cmp_ro);

    /* R-PO-5 precedence, first match wins (deleted handled above). */
    if (best && best_decision == RISK_DECISION_BLOCK) {
        v->decision = RISK_DECISION_BLOCK;
        v->reason = best_reason;
    } else if (user->must_change_password) { /* R-PO-7 */
        v->decision = RISK_DECISION_REQUIRE_PASSWORD_CHANGE;
        v->reason = RISK_REASON_TEMPORARY_PASSWORD;
        best = NULL;
    } else if (user->reset_required) { /* R-PO-7 */
        v->decision = RISK_DECISION_REQUIRE_PASSWORD_CHANGE;
        v->reason = RISK_REASON_RESET_REQUIRED;
        best = NULL;
    } else if (best) { /* only require_password_change remains */
        v->decision = best_decision;
        v->reason = best_reason;
    } else {
        v->decision = RISK_DECISION_ALLOW;
        v->reason = RISK_REASON_NONE;
    }
    if (best) {
        v->has_policy = 1;
        copy_id(v->policy, best->name);
    }
    return RISK_OK;
}
