/* The sign-in decision (R-PO-1…11), the hot path: one user record read
 * through the store's view_user (no copy, no event), the cached policies,
 * the pure decision. Only when the user's level is due to change by aging
 * does it first run that user's catch-up as its own operation (SPEC §4). */
#include "engine.h"

#include <stdio.h>

/* ------------------------------------------------------------------ */
/* Sign-in (R-PO-1…11), the hot path                                   */

struct signin_arg {
    risk_engine *e;
    risk_verdict *v;
    int64_t now;
    int due; /* aging catch-up is due */
    int rc;
};

static int signin_visit(const risk_user *u, void *arg)
{
    struct signin_arg *a = arg;
    if (u->next_change_at != RISK_TIME_NONE && u->next_change_at <= a->now) {
        a->due = 1;
        return RISK_OK;
    }
    a->rc = risk_decide_checked(a->v, (const risk_policy *const *)a->e->policies,
                                a->e->n_policies, u, (risk_level)u->level, a->now);
    return RISK_OK;
}

/* Read the user without view_user: a transaction and a copy. */
static int signin_slow(struct signin_arg *a, const char *user_id)
{
    risk_engine *e = a->e;
    void *txn = NULL;
    risk_user *u = NULL;
    int rc = e->st.begin(e->st.ctx, user_id, &txn);
    if (rc)
        return rc;
    rc = e->st.get_user(e->st.ctx, txn, user_id, &u);
    e->st.rollback(e->st.ctx, txn);
    if (rc == RISK_OK) {
        signin_visit(u, a);
        risk_user_free(u);
    }
    return rc;
}

int risk_engine_sign_in(risk_engine *engine, const char *user_id, risk_verdict *verdict)
{
    int rc = !engine    ? risk_err(RISK_EINVAL, "engine: NULL")
             : !verdict ? risk_err(RISK_EINVAL, "verdict: NULL")
                        : risk_check_id("user_id", user_id);
    if (rc) {
        if (verdict) /* R-PO-9: whatever fails, the verdict is block */
            risk_verdict_fail_closed(verdict, "", RISK_TIME_NONE);
        return rc;
    }
    struct signin_arg a = { engine, verdict, risk_engine_clock(engine), 0, RISK_OK };
    for (int round = 0; round < 3; round++) {
        rc = risk_engine_policies_rdlock(engine);
        if (rc)
            break;
        a.due = 0;
        a.rc = RISK_OK;
        rc = engine->st.view_user ? engine->st.view_user(engine->st.ctx, user_id, signin_visit, &a)
                                  : signin_slow(&a, user_id);
        if (rc == RISK_ENOTFOUND) { /* R-PO-8: unknown users sign in with level none */
            rc = risk_decide_checked(verdict, (const risk_policy *const *)engine->policies,
                                     engine->n_policies, NULL, RISK_LEVEL_NONE, a.now);
            snprintf(verdict->user_id, sizeof verdict->user_id, "%s", user_id);
        }
        else if (rc == RISK_OK)
            rc = a.rc;
        risk_engine_policies_unlock(engine);
        if (rc || !a.due)
            break;
        /* SPEC §4: the catch-up runs first as its own atomic operation. */
        rc = risk_engine_catch_up(engine, user_id, NULL);
        if (rc)
            break;
        a.now = risk_engine_clock(engine);
    }
    if (rc == RISK_OK && a.due)
        rc = risk_err(RISK_ESTORE, "store: aging catch-up did not settle for '%s'", user_id);
    if (rc == RISK_OK && verdict->want_receipt)
        rc = risk_engine_make_receipt(engine, verdict); /* R-RC-1 */
    if (rc) {
        /* R-PO-9: fail closed. */
        int keep = rc;
        risk_verdict_fail_closed(verdict, user_id, a.now);
        return keep;
    }
    return RISK_OK;
}

