/* Policy what-if (R-WI-1, R-WI-2): decide every stored user under a
 * candidate policy set at a time, changing nothing. One pass over the
 * users; a user's events are read only when aging changes its level
 * before `at` (the same "as of now" view as sign-in and queries). */
#include "engine.h"

#include <stdlib.h>

#define N_DECISIONS 3
#define N_REASONS 8

struct bucket {
    char **ids;
    size_t n, cap;
};

struct risk_what_if {
    int64_t at;
    size_t total;
    struct bucket b[N_DECISIONS][N_REASONS];
};

struct wi_pass {
    risk_engine *e;
    risk_what_if *w;
    const risk_policy *const *policies;
    size_t n;
    risk_verdict *v;
    struct {
        char **v;
        size_t n, cap;
    } due; /* users whose level changes by aging before at */
};

static int bucket_add(struct bucket *b, const char *id)
{
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        char **nv = risk_realloc(b->ids, ncap * sizeof *nv);
        if (!nv)
            return risk_err(RISK_ENOMEM, "what-if: out of memory");
        b->ids = nv;
        b->cap = ncap;
    }
    if (!(b->ids[b->n] = risk_strdup(id)))
        return risk_err(RISK_ENOMEM, "what-if: out of memory");
    b->n++;
    return RISK_OK;
}

static int decide_into(struct wi_pass *p, const risk_user *u)
{
    int rc = risk_decide(p->v, p->policies, p->n, u, (risk_level)u->level, p->w->at);
    if (rc)
        return rc;
    p->w->total++;
    return bucket_add(&p->w->b[p->v->decision][p->v->reason], u->id);
}

static int wi_visit(const risk_user *u, void *arg)
{
    struct wi_pass *p = arg;
    if (u->next_change_at != RISK_TIME_NONE && u->next_change_at <= p->w->at) {
        /* Decide it after the pass, with its events (no callback nesting). */
        if (p->due.n == p->due.cap) {
            size_t ncap = p->due.cap ? p->due.cap * 2 : 16;
            char **nv = risk_realloc(p->due.v, ncap * sizeof *nv);
            if (!nv)
                return risk_err(RISK_ENOMEM, "what-if: out of memory");
            p->due.v = nv;
            p->due.cap = ncap;
        }
        if (!(p->due.v[p->due.n] = risk_strdup(u->id)))
            return risk_err(RISK_ENOMEM, "what-if: out of memory");
        p->due.n++;
        return RISK_OK;
    }
    return decide_into(p, u);
}

static int decide_aged(struct wi_pass *p, const char *id)
{
    risk_engine *e = p->e;
    risk_user *u = NULL;
    risk_event **ev = NULL;
    size_t n = 0;
    int rc = risk_engine_read_user(e, id, &u, &ev, &n);
    if (rc == RISK_OK) {
        risk_engine_simulate_aging(e, u, ev, n, p->w->at);
        rc = decide_into(p, u);
    } else if (rc == RISK_ENOTFOUND) {
        rc = RISK_OK; /* removed since the pass */
    }
    risk_user_free(u);
    risk_events_free(ev, n);
    return rc;
}

/* RISK_ECORRUPT if one user is in two places of w (a store listed it
 * twice: one user has one verdict) */
static int unique_users(const risk_what_if *w)
{
    size_t n = 0, k = 0;
    for (int d = 0; d < N_DECISIONS; d++)
        for (int r = 0; r < N_REASONS; r++)
            n += w->b[d][r].n;
    if (n < 2)
        return RISK_OK;
    const char **ids = risk_malloc(n * sizeof *ids);
    if (!ids)
        return risk_err(RISK_ENOMEM, "what-if: out of memory");
    for (int d = 0; d < N_DECISIONS; d++)
        for (int r = 0; r < N_REASONS; r++)
            for (size_t i = 0; i < w->b[d][r].n; i++)
                ids[k++] = w->b[d][r].ids[i];
    int rc = risk_ids_unique(ids, n, "store.list_users: listed a user twice");
    risk_free(ids);
    return rc;
}

static int id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void risk_what_if_free(risk_what_if *w)
{
    if (!w)
        return;
    for (int d = 0; d < N_DECISIONS; d++)
        for (int r = 0; r < N_REASONS; r++) {
            for (size_t i = 0; i < w->b[d][r].n; i++)
                risk_free(w->b[d][r].ids[i]);
            risk_free(w->b[d][r].ids);
        }
    risk_free(w);
}

int risk_engine_what_if(risk_what_if **out, risk_engine *engine,
                        const risk_policy *const *policies, size_t n, int64_t at)
{
    if (!out)
        return risk_err(RISK_EINVAL, "out: NULL");
    *out = NULL;
    if (!engine)
        return risk_err(RISK_EINVAL, "engine: NULL");
    if (n && !policies)
        return risk_err(RISK_EINVAL, "policies: NULL");
    for (size_t i = 0; i < n; i++)
        if (!policies[i])
            return risk_err(RISK_EINVAL, "policies[%zu]: NULL", i);
    /* a store holds one policy per name (R-OP-6): a set with a name twice
     * could never be installed, and its prediction would match nothing */
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(policies[i]->name, policies[j]->name) == 0)
                return risk_err(RISK_EINVAL, "policies[%zu]: name '%s' is also policies[%zu]'s",
                                i, policies[i]->name, j);
    int rc = risk_check_time("at", at);
    if (rc)
        return rc;
    if (!engine->st.list_users)
        return risk_err(RISK_EUNSUPPORTED, "store: no list_users callback");
    struct wi_pass p;
    memset(&p, 0, sizeof p);
    p.e = engine;
    p.policies = policies;
    p.n = n;
    p.w = risk_calloc(1, sizeof *p.w);
    if (!p.w)
        return risk_err(RISK_ENOMEM, "what-if: out of memory");
    p.w->at = at;
    rc = risk_verdict_new(&p.v);
    if (rc == RISK_OK)
        rc = engine->st.list_users(engine->st.ctx, RISK_LEVEL_NONE, wi_visit, &p);
    for (size_t i = 0; rc == RISK_OK && i < p.due.n; i++)
        rc = decide_aged(&p, p.due.v[i]);
    for (size_t i = 0; i < p.due.n; i++)
        risk_free(p.due.v[i]);
    risk_free(p.due.v);
    risk_verdict_free(p.v);
    if (rc) {
        risk_what_if_free(p.w);
        return rc;
    }
    for (int d = 0; d < N_DECISIONS; d++)
        for (int r = 0; r < N_REASONS; r++)
            if (p.w->b[d][r].n > 1)
                qsort(p.w->b[d][r].ids, p.w->b[d][r].n, sizeof(char *), id_cmp);
    /* a host's store that lists a user twice would have it counted twice */
    if (risk_engine_guarded(engine) && (rc = unique_users(p.w)) != RISK_OK) {
        risk_what_if_free(p.w);
        return rc;
    }
    *out = p.w;
    return RISK_OK;
}

size_t risk_what_if_total(const risk_what_if *w)
{
    return w ? w->total : 0;
}

size_t risk_what_if_count(const risk_what_if *w, risk_decision decision, risk_reason reason)
{
    if (!w || (unsigned)decision >= N_DECISIONS || (unsigned)reason >= N_REASONS)
        return 0;
    return w->b[decision][reason].n;
}

const char *risk_what_if_user(const risk_what_if *w, risk_decision decision, risk_reason reason,
                              size_t i)
{
    if (i >= risk_what_if_count(w, decision, reason))
        return NULL;
    return w->b[decision][reason].ids[i];
}

int64_t risk_what_if_at(const risk_what_if *w)
{
    return w ? w->at : RISK_TIME_NONE;
}
