/* User risk policies (R-OP-6): the cache a sign-in reads without
 * touching the store, and the audited policy changes that invalidate it.
 * Policy changes are chained in the history as their own subject (the
 * policy set, R-AU-1), with the before/after of the policy in the note. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Policy cache                                                       */

static int collect_policy(const risk_policy *p, void *arg)
{
    struct {
        risk_policy **v;
        size_t n, cap;
    } *vec = arg;
    if (vec->n == vec->cap) {
        size_t ncap = vec->cap ? vec->cap * 2 : 8;
        risk_policy **nv = risk_realloc(vec->v, ncap * sizeof *nv);
        if (!nv)
            return risk_err(RISK_ENOMEM, "policies: out of memory");
        vec->v = nv;
        vec->cap = ncap;
    }
    risk_policy *copy = NULL;
    int rc = risk_policy_dup(&copy, p);
    if (rc)
        return rc;
    vec->v[vec->n++] = copy;
    return RISK_OK;
}

static int policy_cmp(const void *a, const void *b)
{
    return strcmp((*(const risk_policy *const *)a)->name, (*(const risk_policy *const *)b)->name);
}

/* Read every stored policy, sorted by name, as owned copies. */
static int load_policies(risk_engine *e, void *txn, risk_policy ***out, size_t *n)
{
    struct {
        risk_policy **v;
        size_t n, cap;
    } vec = { 0 };
    int rc = e->st.list_policies(e->st.ctx, txn, collect_policy, &vec);
    if (rc) {
        for (size_t i = 0; i < vec.n; i++)
            risk_policy_free(vec.v[i]);
        risk_free(vec.v);
        return rc;
    }
    if (vec.n > 1)
        qsort(vec.v, vec.n, sizeof *vec.v, policy_cmp);
    for (size_t i = 1; i < vec.n; i++) /* R-OP-6: one policy per name */
        if (strcmp(vec.v[i]->name, vec.v[i - 1]->name) == 0) {
            rc = risk_err(RISK_ECORRUPT, "store.list_policies: policy '%s' twice",
                          vec.v[i]->name);
            for (size_t j = 0; j < vec.n; j++)
                risk_policy_free(vec.v[j]);
            risk_free(vec.v);
            return rc;
        }
    *out = vec.v;
    *n = vec.n;
    return RISK_OK;
}

/* The sequence lock's writer side (policy_lock held as writer). The
 * stores are release stores and the sign-in's loads acquire loads, so a
 * reader that sees any word of a rewrite also sees the count that rewrite
 * made even, and drops its verdict (C11 seqlock without fences, which
 * ThreadSanitizer understands). */
static void ptab_retire(risk_engine *e)
{
    uint64_t s = atomic_load_explicit(&e->ptab_seq, memory_order_relaxed);
    if (s & 1)
        atomic_store_explicit(&e->ptab_seq, s + 1, memory_order_relaxed);
}

/* Publish the table of the cached policies, or leave none (too many
 * policies): sign-ins then take the read lock. */
static void ptab_publish(risk_engine *e)
{
    uint64_t t[RISK_PTAB_WORDS];
    ptab_retire(e);
    if (!risk_ptab_build(t, (const risk_policy *const *)e->policies, e->n_policies))
        return;
    for (size_t i = 0; i < RISK_PTAB_WORDS; i++)
        atomic_store_explicit(&e->ptab[i], t[i], memory_order_release);
    uint64_t s = atomic_load_explicit(&e->ptab_seq, memory_order_relaxed);
    atomic_store_explicit(&e->ptab_seq, s + 1, memory_order_release);
}

int risk_engine_policies_rdlock(risk_engine *e)
{
    pthread_rwlock_rdlock(&e->policy_lock);
    if (e->policy_valid)
        return RISK_OK;
    pthread_rwlock_unlock(&e->policy_lock);

    pthread_rwlock_wrlock(&e->policy_lock);
    int rc = RISK_OK;
    if (!e->policy_valid) {
        /* read before the policies: a change committed meanwhile moves
         * it past what is recorded, and the next sign-in loads again */
        uint64_t gen = e->pgen ? atomic_load_explicit(e->pgen, memory_order_acquire) : 0;
        void *txn = NULL;
        rc = e->st.begin(e->st.ctx, NULL, &txn);
        if (rc == RISK_OK) {
            risk_policy **v = NULL;
            size_t n = 0;
            rc = load_policies(e, txn, &v, &n);
            e->st.rollback(e->st.ctx, txn);
            if (rc == RISK_OK) {
                risk_engine_policies_clear(e);
                e->policies = v;
                e->n_policies = n;
                e->policy_valid = 1;
                atomic_store_explicit(&e->pgen_seen, gen, memory_order_relaxed);
                ptab_publish(e);
            }
        }
    }
    pthread_rwlock_unlock(&e->policy_lock);
    if (rc)
        return rc;
    /* Re-take as reader. A policy change may slip in between: the caller
     * then loads again, which only costs time. */
    return risk_engine_policies_rdlock(e);
}

void risk_engine_policies_unlock(risk_engine *e)
{
    pthread_rwlock_unlock(&e->policy_lock);
}

static void policies_invalidate(risk_engine *e)
{
    pthread_rwlock_wrlock(&e->policy_lock);
    ptab_retire(e);
    risk_engine_policies_clear(e);
    pthread_rwlock_unlock(&e->policy_lock);
}

int risk_engine_policies_changed(risk_engine *engine)
{
    CHECK_ENGINE(engine);
    policies_invalidate(engine);
    return RISK_OK;
}

/* ------------------------------------------------------------------ */
/* Policies (R-OP-6)                                                  */

static void describe_policy(char *buf, size_t cap, const risk_policy *p)
{
    if (!p) {
        snprintf(buf, cap, "none");
        return;
    }
    int n = snprintf(buf, cap, "mode=%s threshold=%s control=%s include=",
                     risk_enum_name(RISK_ENUM_POLICY_MODE, p->mode),
                     risk_enum_name(RISK_ENUM_LEVEL, p->threshold),
                     risk_enum_name(RISK_ENUM_CONTROL, p->control));
    size_t off = n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;
    if (!p->n_include)
        off += (size_t)snprintf(buf + off, cap - off, "all");
    for (size_t i = 0; i < p->n_include && off < cap - 1; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", p->include[i]);
    if (off < cap - 1)
        off += (size_t)snprintf(buf + off, cap - off, " exclude=");
    for (size_t i = 0; i < p->n_exclude && off < cap - 1; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", p->exclude[i]);
}

/* Keep a note within the 1024-byte limit without cutting a UTF-8 sequence. */
static void clamp_note(char *s)
{
    size_t n = strlen(s);
    if (n <= RISK_NOTE_MAX)
        return;
    n = RISK_NOTE_MAX - 3;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(s + n, "...", 4);
}

struct policy_arg {
    const risk_policy *set; /* NULL for remove */
    const char *name;
};

static int find_policy(const risk_policy *p, void *arg)
{
    struct {
        const char *name;
        risk_policy *found;
    } *f = arg;
    if (strcmp(p->name, f->name) == 0)
        return risk_policy_dup(&f->found, p) == RISK_OK ? 1 : RISK_ENOMEM;
    return 0;
}

static int policy_op(risk_engine *e, const char *actor, struct policy_arg *a)
{
    int rc = RISK_OK;
    for (uint32_t attempt = 0;; attempt++) {
        void *txn = NULL;
        risk_history *h = NULL;
        struct {
            const char *name;
            risk_policy *found;
        } f = { a->name, NULL };
        char note[2 * 1100 + 32];
        if ((rc = e->st.begin(e->st.ctx, NULL, &txn)))
            return rc;
        rc = e->st.list_policies(e->st.ctx, txn, find_policy, &f);
        if (rc == 1)
            rc = RISK_OK;
        if (rc == RISK_OK && !a->set && !f.found)
            rc = risk_err(RISK_ENOTFOUND, "name: no policy '%s'", a->name);
        uint8_t head[32] = { 0 };
        size_t hl = 0;
        if (rc == RISK_OK) {
            rc = e->st.get_meta(e->st.ctx, txn, RISK_META_POLICY_CHAIN, head, sizeof head, &hl);
            if (rc == RISK_ENOTFOUND || (rc == RISK_OK && hl != 32)) {
                if (rc == RISK_OK)
                    rc = risk_err(RISK_ECORRUPT, "store: policy chain head has %zu bytes", hl);
                else {
                    memset(head, 0, sizeof head);
                    rc = RISK_OK;
                }
            }
        }
        if (rc == RISK_OK)
            rc = a->set ? e->st.put_policy(e->st.ctx, txn, a->set)
                        : e->st.remove_policy(e->st.ctx, txn, a->name);
        uint64_t seq = 0;
        if (rc == RISK_OK)
            rc = e->st.reserve_seq(e->st.ctx, txn, &seq);
        if (rc == RISK_OK)
            rc = risk_history_new(&h, seq, risk_engine_clock(e), actor,
                                  a->set ? RISK_HISTORY_POLICY_SET : RISK_HISTORY_POLICY_REMOVE,
                                  NULL, NULL, a->name);
        if (rc == RISK_OK) {
            char before[1100], after[1100];
            describe_policy(before, sizeof before, f.found);
            describe_policy(after, sizeof after, a->set);
            snprintf(note, sizeof note, "before: %s; after: %s", before, after);
            clamp_note(note);
            rc = risk_history_set_change(h, RISK_LEVEL_NONE, RISK_LEVEL_NONE, RISK_STATE_NONE,
                                         RISK_STATE_NONE, 0, note);
        }
        if (rc == RISK_OK)
            rc = risk_history_seal(h, head);
        if (rc == RISK_OK)
            rc = e->st.append_history(e->st.ctx, txn, h);
        if (rc == RISK_OK)
            rc = e->st.put_meta(e->st.ctx, txn, RISK_META_POLICY_CHAIN, h->chain, 32);
        if (rc == RISK_OK)
            rc = e->st.commit(e->st.ctx, txn);
        else
            e->st.rollback(e->st.ctx, txn);
        risk_history_free(h);
        risk_policy_free(f.found);
        if (rc != RISK_ECONFLICT || attempt >= e->opts.max_conflict_retries)
            break;
        /* Another engine on the store is changing the policies (their
         * chain head conflicts): let it finish before reading the head
         * again, 20 µs doubling up to 1 ms, so that two engines changing
         * policies back to back do not keep failing each other. */
        struct timespec ts = {0, (long)(attempt < 6 ? 20000L << attempt : 1000000L)};
        nanosleep(&ts, NULL);
    }
    return rc;
}

static int policy_change(risk_engine *e, const char *actor, struct policy_arg *a)
{
    pthread_mutex_lock(&e->policy_write);
    int rc = policy_op(e, actor, a);
    /* Drop the cache whatever happened: a failed commit may still have
     * changed a shared store's view, and reloading is cheap. */
    policies_invalidate(e);
    pthread_mutex_unlock(&e->policy_write);
    return rc;
}

int risk_engine_policy_set(risk_engine *engine, const char *actor, const risk_policy *policy)
{
    CHECK_ENGINE(engine);
    if (!policy)
        return risk_err(RISK_EINVAL, "policy: NULL");
    int rc = risk_check_id("actor", actor);
    if (rc)
        return rc;
    struct policy_arg a = { policy, policy->name };
    return policy_change(engine, actor, &a);
}

int risk_engine_policy_remove(risk_engine *engine, const char *actor, const char *name)
{
    CHECK_ENGINE(engine);
    int rc = risk_check_id("actor", actor);
    if (rc == RISK_OK)
        rc = risk_check_id("name", name);
    if (rc)
        return rc;
    struct policy_arg a = { NULL, name };
    return policy_change(engine, actor, &a);
}

int risk_engine_policies(risk_engine *engine, risk_policy_visit_fn fn, void *userdata)
{
    CHECK_ENGINE(engine);
    if (!fn)
        return risk_err(RISK_EINVAL, "fn: NULL");
    void *txn = NULL;
    risk_policy **v = NULL;
    size_t n = 0;
    int rc = engine->st.begin(engine->st.ctx, NULL, &txn);
    if (rc)
        return rc;
    rc = load_policies(engine, txn, &v, &n);
    engine->st.rollback(engine->st.ctx, txn);
    for (size_t i = 0; rc == RISK_OK && i < n; i++)
        rc = fn(v[i], userdata);
    for (size_t i = 0; i < n; i++)
        risk_policy_free(v[i]);
    risk_free(v);
    return rc;
}
