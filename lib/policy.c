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
    *out = NULL;
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

/* What a policy with this control would decide if it fires (R-PO-2,
 * R-PO-3), by the user's MFA class: 0 not registered, 1 registered during
 * the risk, 2 counts (R-PO-11). */
static void class_outcome(uint32_t control, uint32_t cls, uint32_t *decision, uint32_t *reason)
{
    static const uint32_t mfa_reason[3] = { RISK_REASON_NOT_MFA_REGISTERED,
                                            RISK_REASON_MFA_REGISTERED_DURING_RISK,
                                            RISK_REASON_RISK_LEVEL };
    if (control == RISK_CONTROL_BLOCK) {
        *decision = RISK_DECISION_BLOCK;
        *reason = RISK_REASON_RISK_LEVEL;
    } else {
        *decision = cls == 2 ? RISK_DECISION_REQUIRE_PASSWORD_CHANGE : RISK_DECISION_BLOCK;
        *reason = mfa_reason[cls];
    }
}

static void policy_outcome(const risk_policy *p, const risk_user *u, uint32_t *decision,
                           uint32_t *reason)
{
    class_outcome(p->control, !u->mfa_registered ? 0 : mfa_counts(u) ? 2 : 1, decision, reason);
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

/* ---- the sign-in's decision table (see lib/internal.h) ---- */

/* Cell: decision | reason << 8 | deciding policy << 16 (0xFF: none) |
 * number of report-only policies that fire << 24 | those policies << 32
 * (a bit per tabled policy).
 * Policy word: per MFA class c, decision << 16c | reason << (16c + 8);
 * name length << 48. */
#define CELL_NO_POLICY 0xFFu

/* The two filter bits of an id (h: risk_hash_bytes of it). */
static void ptab_bits(uint64_t h, unsigned bit[2])
{
    bit[0] = (unsigned)h % RISK_PTAB_FILTER_BITS;
    bit[1] = (unsigned)(h >> 32) % RISK_PTAB_FILTER_BITS;
}

static void filter_add(uint64_t *t, const char *id)
{
    unsigned bit[2];
    ptab_bits(risk_hash_bytes(id, strlen(id)), bit);
    for (int k = 0; k < 2; k++)
        t[RISK_PTAB_FILTER + bit[k] / 64] |= UINT64_C(1) << (bit[k] % 64);
}

static uint64_t make_cell(uint32_t d, uint32_t r, uint32_t policy, uint32_t ro)
{
    uint32_t n_ro = 0;
    for (uint32_t m = ro; m != 0; m &= m - 1)
        n_ro++;
    return d | r << 8 | policy << 16 | n_ro << 24 | (uint64_t)ro << 32;
}

int risk_ptab_build(uint64_t t[RISK_PTAB_WORDS], const risk_policy *const *policies, size_t n)
{
    if (n > RISK_PTAB_MAX)
        return 0;
    /* Table index i is the i-th policy by name: report-only entries come
     * out sorted, and the first of equally restrictive policies wins
     * (R-PO-4) by taking only a strictly more restrictive one. */
    const risk_policy *p[RISK_PTAB_MAX];
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && strcmp(p[j - 1]->name, policies[i]->name) > 0; j--)
            p[j] = p[j - 1];
        p[j] = policies[i];
    }
    memset(t, 0, RISK_PTAB_WORDS * sizeof t[0]);
    int listed = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(p[i]->name, RISK_ID_MAX + 1);
        if (len > RISK_ID_MAX)
            return 0;
        memcpy(&t[RISK_PTAB_NAME + i * RISK_NAME_WORDS], p[i]->name, len);
        uint64_t w = (uint64_t)len << 48;
        for (uint32_t c = 0; c < 3; c++) {
            uint32_t d, r;
            class_outcome(p[i]->control, c, &d, &r);
            w |= (uint64_t)(d | r << 8) << (16 * c);
        }
        t[RISK_PTAB_POL + i] = w;
        /* Mode off never fires, lists or not (R-PO-1). */
        if (p[i]->mode == RISK_MODE_OFF)
            continue;
        for (size_t k = 0; k < p[i]->n_include; k++)
            filter_add(t, p[i]->include[k]);
        for (size_t k = 0; k < p[i]->n_exclude; k++)
            filter_add(t, p[i]->exclude[k]);
        listed |= p[i]->n_include != 0 || p[i]->n_exclude != 0;
    }
    t[RISK_PTAB_HDR] = (uint64_t)n | (uint64_t)listed << 8;

    /* For a user named in no list a policy applies iff it includes all
     * users (R-PO-1); then R-PO-4 and the R-PO-5 precedence. */
    for (uint32_t lvl = RISK_LEVEL_NONE; lvl <= RISK_LEVEL_HIGH; lvl++)
        for (uint32_t cls = 0; cls < 3; cls++) {
            uint32_t best = CELL_NO_POLICY, bd = RISK_DECISION_ALLOW, br = RISK_REASON_NONE;
            uint32_t ro = 0;
            for (uint32_t i = 0; i < n; i++) {
                const risk_policy *q = p[i];
                if (q->mode == RISK_MODE_OFF || lvl == RISK_LEVEL_NONE || q->threshold > lvl ||
                    q->n_include != 0)
                    continue;
                if (q->mode == RISK_MODE_REPORT_ONLY) {
                    ro |= 1u << i;
                    continue;
                }
                uint32_t d, r;
                class_outcome(q->control, cls, &d, &r);
                if (best == CELL_NO_POLICY || d > bd) {
                    best = i;
                    bd = d;
                    br = r;
                }
            }
            for (uint32_t pw = 0; pw < 3; pw++) {
                uint64_t cell;
                if (best != CELL_NO_POLICY && bd == RISK_DECISION_BLOCK)
                    cell = make_cell(bd, br, best, ro);
                else if (pw == 1) /* R-PO-7 */
                    cell = make_cell(RISK_DECISION_REQUIRE_PASSWORD_CHANGE,
                                     RISK_REASON_TEMPORARY_PASSWORD, CELL_NO_POLICY, ro);
                else if (pw == 2) /* R-PO-7 */
                    cell = make_cell(RISK_DECISION_REQUIRE_PASSWORD_CHANGE,
                                     RISK_REASON_RESET_REQUIRED, CELL_NO_POLICY, ro);
                else
                    cell = make_cell(bd, br, best, ro);
                t[RISK_PTAB_CELL + 3 * (3 * lvl + cls) + pw] = cell;
            }
        }
    /* R-PO-8: unknown → allow; R-PO-6: deleted → block, nothing applies. */
    t[RISK_PTAB_CELL + RISK_PTAB_UNKNOWN] =
        make_cell(RISK_DECISION_ALLOW, RISK_REASON_NONE, CELL_NO_POLICY, 0);
    t[RISK_PTAB_CELL + RISK_PTAB_DELETED] =
        make_cell(RISK_DECISION_BLOCK, RISK_REASON_USER_DELETED, CELL_NO_POLICY, 0);
    return 1;
}

static inline uint64_t ld(const _Atomic uint64_t *w)
{
    return atomic_load_explicit(w, memory_order_acquire);
}

int risk_ptab_listed(const _Atomic uint64_t *t, const char *id, size_t len)
{
    if (!(ld(&t[RISK_PTAB_HDR]) >> 8 & 1))
        return 0;
    unsigned bit[2];
    ptab_bits(risk_hash_bytes(id, len), bit);
    return (ld(&t[RISK_PTAB_FILTER + bit[0] / 64]) >> (bit[0] % 64) & 1) &&
           (ld(&t[RISK_PTAB_FILTER + bit[1] / 64]) >> (bit[1] % 64) & 1);
}

/* Copy tabled policy i's name into a verdict buffer of RISK_NAME_WORDS
 * words. A torn length can copy bytes of another name, never out of
 * bounds; the caller's sequence check discards such a verdict. */
static void ptab_name(char *dst, const _Atomic uint64_t *t, uint32_t i)
{
    i %= RISK_PTAB_MAX;
    size_t nw = (size_t)(ld(&t[RISK_PTAB_POL + i]) >> 48 & 0x1FF) / 8 + 1;
    if (nw > RISK_NAME_WORDS)
        nw = RISK_NAME_WORDS;
    const _Atomic uint64_t *src = &t[RISK_PTAB_NAME + i * RISK_NAME_WORDS];
    /* The first four words (names up to 31 bytes, most names) without a
     * loop; the buffers have room for all 33. */
    uint64_t w[4] = { ld(&src[0]), ld(&src[1]), ld(&src[2]), ld(&src[3]) };
    memcpy(dst, w, sizeof w);
    for (size_t k = 4; k < nw; k++) {
        uint64_t x = ld(&src[k]);
        memcpy(dst + 8 * k, &x, 8);
    }
}

int risk_ptab_decide(risk_verdict *v, const _Atomic uint64_t *t, uint32_t key, uint32_t level,
                     const char *user_id, size_t len, int64_t now)
{
    uint64_t cell = ld(&t[RISK_PTAB_CELL + (key < RISK_PTAB_CELLS ? key : RISK_PTAB_UNKNOWN)]);
    uint32_t ro = (uint32_t)(cell >> 32) & ((UINT32_C(1) << RISK_PTAB_MAX) - 1);
    /* From a torn cell the count may not match the mask: the loop below
     * stops at the smaller, and the caller throws such a verdict away. */
    size_t n_ro = (size_t)(cell >> 24 & 0xFF);
    if (n_ro > v->cap_ro && reserve_ro(v, n_ro) != RISK_OK) {
        risk_verdict_fail_closed(v, user_id, now);
        return RISK_ENOMEM;
    }
    v->decision = (uint32_t)cell & 0xFF;
    v->reason = (uint32_t)(cell >> 8) & 0xFF;
    v->level = level;
    uint32_t best = (uint32_t)(cell >> 16) & 0xFF;
    v->has_policy = best != CELL_NO_POLICY;
    ptab_name(v->policy, t, best); /* either way: no branch to mispredict */
    v->policy[0] = v->has_policy ? v->policy[0] : '\0';
    memcpy(v->user_id, user_id, len);
    v->user_id[len] = '\0';
    v->at = now;
    /* A report-only policy's outcome depends on the MFA class only. */
    uint32_t cls = key < RISK_PTAB_UNKNOWN ? key / 3 % 3 : 0;
    v->n_ro = n_ro;
    for (size_t k = 0; ro != 0 && k < n_ro; k++, ro &= ro - 1) {
        uint32_t i = (uint32_t)__builtin_ctz(ro);
        struct risk_verdict_ro *e = &v->ro[k];
        uint32_t o = (uint32_t)(ld(&t[RISK_PTAB_POL + i]) >> (16 * cls)) & 0xFFFF;
        ptab_name(e->policy, t, i);
        e->decision = o & 0xFF;
        e->reason = o >> 8;
    }
    if (v->receipt) { /* it described an earlier decision */
        risk_free(v->receipt);
        v->receipt = NULL;
    }
    return RISK_OK;
}
