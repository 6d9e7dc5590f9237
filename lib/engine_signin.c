/* The sign-in decision (R-PO-1…11), the hot path: one user record read
 * (the built-in stores' peek: one line of their users map; any other
 * store's view_user: no copy, no event), the cached policies, the pure
 * decision. Only when the user's level is due to change by aging
 * does it first run that user's catch-up as its own operation (SPEC §4).
 *
 * Two ways to decide. The fast one reads the policies' decision table
 * (lib/policy.c) under the engine's sequence lock (lib/engine_policy.c):
 * no lock taken, nothing written outside the verdict, and after the
 * store's lookup only a table cell and the names to copy. The locked one
 * takes the policy cache's read lock and runs the general decision: for
 * users named in a policy's include or exclude list, sets too large to
 * table, stores without view_user, and a sign-in that raced a policy
 * change. Both decide the same (tests/test_policy.c, tests/test_signin.c). */
#include "engine.h"

/* ------------------------------------------------------------------ */
/* Sign-in (R-PO-1…11), the hot path                                   */

struct signin_arg {
    risk_engine *e;
    risk_verdict *v;
    int64_t now;
    int due; /* aging catch-up is due */
    int rc;
    uint32_t key, level; /* the fast path's view of the user */
    uint64_t version;    /* the user's, when a receipt is wanted (0: none) */
};

static int due_at(const risk_user *u, int64_t now)
{
    return u->next_change_at != RISK_TIME_NONE && u->next_change_at <= now;
}

/* The fast path's visit: what the table needs of the user, nothing else
 * (the decision is made after the store's lock is released). */
static int signin_key(const risk_user *u, void *arg)
{
    struct signin_arg *a = arg;
    a->due = due_at(u, a->now);
    a->key = risk_ptab_key(u);
    a->level = u->level;
    if (a->v->want_receipt) /* another line of the record: only then */
        a->version = u->version;
    return RISK_OK;
}

/* A store whose view_user said OK without showing the user (R-PO-9). */
#define NOT_VISITED UINT32_MAX
static int not_visited(const char *user_id)
{
    return risk_err(RISK_ESTORE, "store: view_user of '%s' returned no user", user_id);
}

/* Decide from the table. *done is 0 when the locked path must decide
 * instead: no table, a user the table cannot decide, or a policy change
 * during the call (the count moved). */
static int signin_fast(struct signin_arg *a, const char *user_id, size_t len, int *done)
{
    risk_engine *e = a->e;
    uint64_t seq = atomic_load_explicit(&e->ptab_seq, memory_order_acquire);
    *done = 0;
    if (!(seq & 1))
        return RISK_OK;
    if ((atomic_load_explicit(&e->ptab[RISK_PTAB_HDR], memory_order_acquire) >> 8 & 1) &&
        risk_ptab_listed(e->ptab, user_id, len))
        return RISK_OK;
    a->due = 0;
    a->key = NOT_VISITED;
    int rc;
    if (e->peek != NULL && !a->v->want_receipt) { /* a receipt needs the version */
        risk_peek p;
        rc = e->peek->peek(e->peek_ctx, user_id, len, &p);
        if (rc == RISK_OK) {
            a->due = p.next_change_at != RISK_TIME_NONE && p.next_change_at <= a->now;
            a->key = p.key;
            a->level = p.level;
        }
    } else
        rc = e->st.view_user(e->st.ctx, user_id, signin_key, a);
    if (rc == RISK_ENOTFOUND) { /* R-PO-8: unknown users sign in with level none */
        a->key = RISK_PTAB_UNKNOWN;
        a->level = RISK_LEVEL_NONE;
    } else if (rc == RISK_OK && a->key == NOT_VISITED) {
        *done = 1;
        return not_visited(user_id);
    } else if (rc != RISK_OK || a->due) {
        *done = 1; /* a store failure (R-PO-9), or the catch-up first */
        return rc;
    }
    rc = risk_ptab_decide(a->v, e->ptab, a->key, a->level, user_id, len, a->now);
    *done = atomic_load_explicit(&e->ptab_seq, memory_order_relaxed) == seq;
    return rc;
}

static int signin_visit(const risk_user *u, void *arg)
{
    struct signin_arg *a = arg;
    a->key = 0;
    a->version = u->version;
    if (due_at(u, a->now)) {
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
    risk_user *u = NULL;
    int rc = risk_engine_read_user(a->e, user_id, &u, NULL, NULL);
    if (rc == RISK_OK) {
        signin_visit(u, a);
        risk_user_free(u);
    }
    return rc;
}

/* Read the user as the aging catch-up would leave it, computed in memory
 * as the queries do: for a user due for the catch-up on a store that
 * cannot write it (RISK_EREADONLY; R-SC-2: "a sign-in is right at any time
 * without writing"). */
static int signin_aged(struct signin_arg *a, const char *user_id)
{
    risk_user *u = NULL;
    risk_event **ev = NULL;
    size_t n = 0;
    int rc = risk_engine_read_user(a->e, user_id, &u, &ev, &n);
    if (rc == RISK_OK) {
        risk_engine_simulate_aging(a->e, u, ev, n, a->now);
        signin_visit(u, a);
        risk_user_free(u);
        risk_events_free(ev, n);
    }
    return rc;
}

/* The general decision under the policy cache's read lock; aged: on the
 * user as the catch-up would leave it (signin_aged). */
static int signin_locked(struct signin_arg *a, const char *user_id, size_t len, int aged)
{
    risk_engine *e = a->e;
    int rc = risk_engine_policies_rdlock(e);
    if (rc)
        return rc;
    a->due = 0;
    a->key = NOT_VISITED; /* signin_visit sets it */
    a->rc = RISK_OK;
    rc = aged              ? signin_aged(a, user_id)
         : e->st.view_user ? e->st.view_user(e->st.ctx, user_id, signin_visit, a)
                           : signin_slow(a, user_id);
    if (rc == RISK_ENOTFOUND) { /* R-PO-8: unknown users sign in with level none */
        rc = risk_decide_checked(a->v, (const risk_policy *const *)e->policies, e->n_policies,
                                 NULL, RISK_LEVEL_NONE, a->now);
        memcpy(a->v->user_id, user_id, len + 1);
    } else if (rc == RISK_OK)
        rc = a->key == NOT_VISITED ? not_visited(user_id) : a->rc;
    risk_engine_policies_unlock(e);
    return rc;
}

/* The last attempt at a sign-in with a receipt, when the user changed
 * between the decision and the receipt's read on every retry (a busy
 * user): the decision and the read under the user's lock stripe, where
 * this engine's operations on the user cannot come between. (Another
 * engine on the same store still can: then RISK_ECONFLICT.) */
static int signin_receipt_locked(struct signin_arg *a, const char *user_id, size_t len)
{
    pthread_mutex_t *lock = risk_engine_stripe(a->e, user_id);
    pthread_mutex_lock(lock);
    a->now = risk_engine_clock(a->e);
    a->version = 0; /* an unknown user's */
    int rc = signin_locked(a, user_id, len, 0);
    if (rc == RISK_OK && !a->due)
        rc = risk_engine_make_receipt_as(a->e, a->v, a->version, 1);
    pthread_mutex_unlock(lock);
    return rc;
}

/* One sign-in at now, its arguments checked (len: the id's). */
static int sign_in_at(risk_engine *engine, const char *user_id, size_t len,
                      risk_verdict *verdict, int64_t now)
{
    int rc = RISK_OK;
    struct signin_arg a = { engine, verdict, now, 0, RISK_OK, 0, 0, 0 };
    risk_engine_follow_policies(engine);
    /* Up to three aging catch-ups, and as many receipt retries as an
     * operation has conflict retries: each has its own count. */
    for (uint32_t catch_ups = 0, receipt_retries = 0;;) {
        int done = 0;
        a.version = 0; /* an unknown user's */
        if (engine->st.view_user)
            rc = signin_fast(&a, user_id, len, &done);
        if (!done)
            rc = signin_locked(&a, user_id, len, 0);
        if (rc == RISK_OK && !a.due && verdict->want_receipt) {
            /* R-RC-1: the events of the record decided on; if the user
             * changed since, decide again */
            rc = risk_engine_make_receipt(engine, verdict, a.version);
            if (rc == RISK_ECONFLICT && receipt_retries++ < engine->opts.max_conflict_retries) {
                a.now = risk_engine_clock(engine);
                continue;
            }
            if (rc == RISK_ECONFLICT)
                rc = signin_receipt_locked(&a, user_id, len);
        }
        if (rc || !a.due || catch_ups++ == 3)
            break;
        /* SPEC §4: the catch-up runs first as its own atomic operation. */
        rc = risk_engine_catch_up(engine, user_id, NULL);
        if (rc == RISK_EREADONLY) { /* nothing can write it: decide without */
            a.now = risk_engine_clock(engine);
            a.version = 0; /* an unknown user's (gone since) */
            rc = signin_locked(&a, user_id, len, 1);
            if (rc == RISK_OK && !a.due && verdict->want_receipt)
                rc = risk_engine_make_receipt(engine, verdict, a.version);
            break;
        }
        if (rc)
            break;
        a.now = risk_engine_clock(engine);
    }
    if (rc == RISK_OK && a.due)
        rc = risk_err(RISK_ESTORE, "store: aging catch-up did not settle for '%s'", user_id);
    if (rc) {
        /* R-PO-9: fail closed. */
        int keep = rc;
        risk_verdict_fail_closed(verdict, user_id, a.now);
        return keep;
    }
    return RISK_OK;
}

/* The checks of a sign-in's arguments; on failure the verdict (if any)
 * is block (R-PO-9). */
static int check_sign_in(const risk_engine *engine, const char *user_id, risk_verdict *verdict,
                         size_t *len)
{
    int rc = !engine    ? risk_err(RISK_EINVAL, "engine: NULL")
             : !verdict ? risk_err(RISK_EINVAL, "verdict: NULL")
                        : risk_check_id_len("user_id", user_id, len);
    /* before anything is done: an aging catch-up would be written first */
    if (rc == RISK_OK && verdict->want_receipt && !engine->receipt_key)
        rc = risk_err(RISK_EINVAL, "verdict: a receipt was asked for, but the engine has no "
                                   "receipt key (risk_engine_options.receipt_key)");
    if (rc && verdict)
        risk_verdict_fail_closed(verdict, "", RISK_TIME_NONE);
    return rc;
}

int risk_engine_sign_in(risk_engine *engine, const char *user_id, risk_verdict *verdict)
{
    size_t len = 0;
    int rc = check_sign_in(engine, user_id, verdict, &len);
    return rc ? rc : sign_in_at(engine, user_id, len, verdict, risk_engine_clock(engine));
}

/* A bulk sign-in hints the store this many users ahead, then decides
 * them one by one: their lookups' cache misses overlap in the store's
 * prefetch instead of following one another (docs/performance.md). One
 * clock read serves a chunk: its decisions are a few microseconds apart. */
#define SIGNIN_CHUNK 16

int risk_engine_sign_in_bulk(risk_engine *engine, const char *const *user_ids, size_t n,
                             risk_verdict *const *verdicts, int *results)
{
    int rc = !engine    ? risk_err(RISK_EINVAL, "engine: NULL")
             : !n       ? RISK_OK
             : !user_ids ? risk_err(RISK_EINVAL, "user_ids: NULL")
             : !verdicts ? risk_err(RISK_EINVAL, "verdicts: NULL")
             : !results ? risk_err(RISK_EINVAL, "results: NULL")
                        : RISK_OK;
    if (rc) { /* R-PO-9: nothing was tried, every verdict there is says block */
        for (size_t i = 0; verdicts && i < n; i++)
            if (verdicts[i])
                risk_verdict_fail_closed(verdicts[i], "", RISK_TIME_NONE);
        return rc;
    }
    int failed = 0;
    for (size_t at = 0; at < n; at += SIGNIN_CHUNK) {
        size_t m = n - at < SIGNIN_CHUNK ? n - at : SIGNIN_CHUNK, k = 0;
        const char *ids[SIGNIN_CHUNK];
        size_t lens[SIGNIN_CHUNK];
        for (size_t i = 0; i < m; i++) {
            results[at + i] = check_sign_in(engine, user_ids[at + i], verdicts[at + i], &lens[i]);
            if (results[at + i] == RISK_OK)
                ids[k++] = user_ids[at + i];
        }
        if (k && engine->peek)
            engine->peek->prefetch(engine->peek_ctx, ids, k);
        else if (k && engine->st.prefetch_users)
            engine->st.prefetch_users(engine->st.ctx, ids, k);
        int64_t now = risk_engine_clock(engine);
        for (size_t i = 0; i < m; i++) {
            if (results[at + i] == RISK_OK)
                results[at + i] =
                    sign_in_at(engine, user_ids[at + i], lens[i], verdicts[at + i], now);
            failed += results[at + i] != RISK_OK && failed < INT_MAX; /* saturates */
        }
    }
    return failed;
}
