/* Engine queries (R-OP-5, R-SC-6) and store-wide maintenance (R-SC-2
 * sweep, compaction, backup). Reads are "as of now": a user whose level
 * is due to change by aging is shown as the catch-up would leave it,
 * without writing (R-SC-2), so read-only stores answer correctly too. */
#include "engine.h"

#include <stdlib.h>


/* Read a user and its events as of now inside a read transaction. */
static int read_view(risk_engine *e, const char *user_id, risk_user **user, risk_event ***ev,
                     size_t *nev, int absent_ok)
{
    risk_user *u = NULL;
    int rc = risk_engine_read_user(e, user_id, &u, ev, nev);
    /* absent_ok: the caller answers an unknown user with RISK_OK, and a
     * call that succeeds leaves no failure's message behind */
    if (rc == RISK_ENOTFOUND && !absent_ok)
        rc = risk_err(rc, "user_id: no user '%s'", user_id);
    if (rc)
        return rc;
    risk_engine_simulate_aging(e, u, *ev, *nev, risk_engine_clock(e));
    *user = u;
    return RISK_OK;
}

int risk_engine_user(risk_user **out, risk_engine *engine, const char *user_id)
{
    if (!out)
        return risk_err(RISK_EINVAL, "out: NULL");
    *out = NULL;
    CHECK_ENGINE(engine);
    int rc = risk_check_id("user_id", user_id);
    if (rc)
        return rc;
    risk_user *u = NULL;
    risk_event **ev = NULL;
    size_t n = 0;
    rc = read_view(engine, user_id, &u, &ev, &n, 0);
    risk_events_free(ev, n);
    if (rc == RISK_OK)
        *out = u;
    return rc;
}

int risk_engine_event(risk_event **out, risk_engine *engine, const char *event_id)
{
    if (!out)
        return risk_err(RISK_EINVAL, "out: NULL");
    *out = NULL;
    CHECK_ENGINE(engine);
    int rc = risk_check_id("event_id", event_id);
    if (rc)
        return rc;
    void *txn = NULL;
    risk_event *ev = NULL;
    if ((rc = engine->st.begin(engine->st.ctx, NULL, &txn)))
        return rc;
    rc = engine->st.get_event(engine->st.ctx, txn, event_id, &ev);
    engine->st.rollback(engine->st.ctx, txn);
    if (rc == RISK_ENOTFOUND)
        return risk_err(rc, "event_id: no event '%s'", event_id);
    if (rc)
        return rc;
    /* Show it as of now: aging may have closed it already (R-SC-2). */
    risk_user *u = NULL;
    risk_event **all = NULL;
    size_t n = 0;
    rc = read_view(engine, ev->user_id, &u, &all, &n, 0);
    if (rc == RISK_OK) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(all[i]->id, event_id) == 0) {
                risk_event *t = ev;
                ev = all[i];
                all[i] = t;
                break;
            }
    }
    risk_user_free(u);
    risk_events_free(all, n);
    if (rc == RISK_ENOTFOUND)
        rc = RISK_OK; /* an event whose user record is missing: show it as stored */
    if (rc) {
        risk_event_free(ev);
        return rc;
    }
    *out = ev;
    return RISK_OK;
}

int risk_engine_events(risk_engine *engine, const char *user_id, uint32_t flags,
                       risk_event_visit_fn fn, void *userdata)
{
    CHECK_ENGINE(engine);
    int rc = risk_check_id("user_id", user_id);
    if (rc)
        return rc;
    if (!fn)
        return risk_err(RISK_EINVAL, "fn: NULL");
    if (flags & ~RISK_EVENTS_ACTIVE)
        return risk_err(RISK_EINVAL, "flags: unknown bits 0x%x", (unsigned)flags);
    risk_user *u = NULL;
    risk_event **ev = NULL;
    size_t n = 0;
    rc = read_view(engine, user_id, &u, &ev, &n, 1);
    if (rc == RISK_ENOTFOUND)
        rc = RISK_OK; /* unknown user: nothing to visit */
    for (size_t i = 0; rc == RISK_OK && i < n; i++)
        if (!(flags & RISK_EVENTS_ACTIVE) || ev[i]->state == RISK_EVENT_ACTIVE)
            rc = fn(ev[i], userdata);
    risk_user_free(u);
    risk_events_free(ev, n);
    return rc;
}

struct user_vec {
    risk_user **v;
    size_t n, cap;
    uint32_t min;
};

static int collect_user(const risk_user *u, void *arg)
{
    struct user_vec *vec = arg;
    if (u->level < vec->min)
        return 0;
    if (vec->n == vec->cap) {
        size_t ncap = vec->cap ? vec->cap * 2 : 64;
        risk_user **nv = risk_realloc(vec->v, ncap * sizeof *nv);
        if (!nv)
            return risk_err(RISK_ENOMEM, "users: out of memory");
        vec->v = nv;
        vec->cap = ncap;
    }
    int rc = risk_user_dup(&vec->v[vec->n], u);
    if (rc == RISK_OK)
        vec->n++;
    return rc;
}

static int user_cmp(const void *a, const void *b)
{
    const risk_user *x = *(const risk_user *const *)a, *y = *(const risk_user *const *)b;
    if (x->level != y->level)
        return x->level > y->level ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void users_free(struct user_vec *vec)
{
    for (size_t i = 0; i < vec->n; i++)
        risk_user_free(vec->v[i]);
    risk_free(vec->v);
}

/* Users whose stored level ≥ min, as of now. Aging only lowers levels, so
 * the stored level bounds the current one from above. */
static int users_now(risk_engine *e, uint32_t min, struct user_vec *vec)
{
    if (!e->st.list_users)
        return risk_err(RISK_EUNSUPPORTED, "store: no list_users callback");
    vec->min = min;
    int rc = e->st.list_users(e->st.ctx, (risk_level)min, collect_user, vec);
    if (rc)
        return rc;
    int64_t now = risk_engine_clock(e);
    size_t keep = 0;
    for (size_t i = 0; i < vec->n; i++) {
        risk_user *u = vec->v[i];
        if (u->next_change_at != RISK_TIME_NONE && u->next_change_at <= now) {
            risk_user *fresh = NULL;
            risk_event **ev = NULL;
            size_t n = 0;
            rc = read_view(e, u->id, &fresh, &ev, &n, 0);
            risk_events_free(ev, n);
            if (rc) { /* vec holds the kept users, then the unvisited ones */
                memmove(vec->v + keep, vec->v + i, (vec->n - i) * sizeof *vec->v);
                vec->n = keep + (vec->n - i);
                return rc;
            }
            risk_user_free(u);
            vec->v[i] = u = fresh;
        }
        if (u->level >= min)
            vec->v[keep++] = u;
        else
            risk_user_free(u);
    }
    vec->n = keep;
    if (vec->n > 1)
        qsort(vec->v, vec->n, sizeof *vec->v, user_cmp);
    /* a host's store that lists a user twice (at one level or two) would
     * have it shown and counted twice */
    if (risk_engine_guarded(e) && vec->n > 1) {
        const char **ids = risk_malloc(vec->n * sizeof *ids);
        if (!ids)
            return risk_err(RISK_ENOMEM, "users: out of memory");
        for (size_t i = 0; i < vec->n; i++)
            ids[i] = vec->v[i]->id;
        rc = risk_ids_unique(ids, vec->n, "store.list_users: listed a user twice");
        risk_free(ids);
    }
    return rc;
}

int risk_engine_users(risk_engine *engine, risk_level min_level, risk_user_visit_fn fn,
                      void *userdata)
{
    CHECK_ENGINE(engine);
    if (!fn)
        return risk_err(RISK_EINVAL, "fn: NULL");
    if ((unsigned)min_level > RISK_LEVEL_HIGH)
        return risk_err(RISK_EINVAL, "min_level: %u out of range", (unsigned)min_level);
    struct user_vec vec = { 0 };
    int rc = users_now(engine, min_level, &vec);
    for (size_t i = 0; rc == RISK_OK && i < vec.n; i++)
        rc = fn(vec.v[i], userdata);
    users_free(&vec);
    return rc;
}

/* The listings pass items on in rising seq order from where they start,
 * as the store promises (docs/store.md): a store that repeats items or
 * starts before since_seq would have a feed's reader see them twice. */
struct in_order {
    risk_history_visit_fn fn;
    void *userdata;
    uint64_t next; /* the least seq the next item may have */
};

static int visit_in_order(const risk_history *h, void *arg)
{
    struct in_order *o = arg;
    if (h->seq < o->next)
        return risk_err(RISK_ECORRUPT, "store.read_history: item %llu out of seq order (or "
                        "before since_seq)", (unsigned long long)h->seq);
    o->next = h->seq + 1;
    return o->fn(h, o->userdata);
}

static int read_in_order(risk_engine *e, const char *user_id, uint64_t since,
                         risk_history_visit_fn fn, void *userdata)
{
    struct in_order o = { fn, userdata, since };
    return e->st.read_history(e->st.ctx, user_id, since, visit_in_order, &o);
}

int risk_engine_history(risk_engine *engine, const char *user_id, risk_history_visit_fn fn,
                        void *userdata)
{
    CHECK_ENGINE(engine);
    int rc = risk_check_id("user_id", user_id);
    if (rc)
        return rc;
    if (!fn)
        return risk_err(RISK_EINVAL, "fn: NULL");
    if (!engine->st.read_history)
        return risk_err(RISK_EUNSUPPORTED, "store: no read_history callback");
    return read_in_order(engine, user_id, 0, fn, userdata);
}

int risk_engine_history_feed(risk_engine *engine, uint64_t since_seq, risk_history_visit_fn fn,
                             void *userdata)
{
    CHECK_ENGINE(engine);
    if (!fn)
        return risk_err(RISK_EINVAL, "fn: NULL");
    if (!engine->st.read_history)
        return risk_err(RISK_EUNSUPPORTED, "store: no read_history callback");
    return read_in_order(engine, NULL, since_seq, fn, userdata);
}

int risk_engine_explain(risk_explanation **out, risk_engine *engine, const char *user_id)
{
    if (!out)
        return risk_err(RISK_EINVAL, "out: NULL");
    *out = NULL;
    CHECK_ENGINE(engine);
    int rc = risk_check_id("user_id", user_id);
    if (rc)
        return rc;
    void *txn = NULL;
    risk_user *u = NULL;
    risk_event **ev = NULL;
    size_t n = 0;
    if ((rc = engine->st.begin(engine->st.ctx, user_id, &txn)))
        return rc;
    rc = engine->st.get_user(engine->st.ctx, txn, user_id, &u);
    if (rc == RISK_ENOTFOUND)
        rc = risk_err(rc, "user_id: no user '%s'", user_id);
    if (rc == RISK_OK)
        rc = risk_engine_load_events(engine, txn, user_id, &ev, &n);
    engine->st.rollback(engine->st.ctx, txn);
    /* Explain the stored events at now: events past their period show as
     * aged (whether or not the catch-up has written it yet). */
    if (rc == RISK_OK)
        rc = risk_explain(out, &engine->scoring, (const risk_event *const *)ev, n,
                          risk_engine_clock(engine));
    risk_user_free(u);
    risk_events_free(ev, n);
    return rc;
}

static int user_id_cmp(const void *a, const void *b)
{
    return strcmp((*(risk_user *const *)a)->id, (*(risk_user *const *)b)->id);
}

int risk_engine_expire(risk_engine *engine, uint64_t *users, uint64_t *events)
{
    if (users)
        *users = 0;
    if (events)
        *events = 0;
    CHECK_ENGINE(engine);
    if (!engine->st.list_users)
        return risk_err(RISK_EUNSUPPORTED, "store: no list_users callback");
    struct user_vec vec = { 0 };
    vec.min = RISK_LEVEL_NONE;
    int rc = engine->st.list_users(engine->st.ctx, RISK_LEVEL_NONE, collect_user, &vec);
    int64_t now = risk_engine_clock(engine);
    /* The users due, in id order: the store lists them in any order, and
     * the history (its seqs, hence the chains) is then the same on every
     * store for the same operations. */
    size_t due = 0;
    for (size_t i = 0; rc == RISK_OK && i < vec.n; i++) {
        risk_user *u = vec.v[i];
        if (u->next_change_at != RISK_TIME_NONE && u->next_change_at <= now) {
            vec.v[i] = vec.v[due];
            vec.v[due++] = u;
        }
    }
    if (due > 1)
        qsort(vec.v, due, sizeof *vec.v, user_id_cmp);
    for (size_t i = 0; rc == RISK_OK && i < due; i++) {
        risk_user *u = vec.v[i];
        uint32_t closed = 0;
        rc = risk_engine_catch_up(engine, u->id, &closed);
        if (rc == RISK_OK && closed) {
            if (users)
                ++*users;
            if (events)
                *events += closed;
        }
    }
    users_free(&vec);
    return rc;
}

int risk_engine_compact(risk_engine *engine)
{
    CHECK_ENGINE(engine);
    if (!engine->st.compact)
        return risk_err(RISK_EUNSUPPORTED, "store: no compact callback");
    return engine->st.compact(engine->st.ctx);
}

int risk_engine_sync(risk_engine *engine)
{
    CHECK_ENGINE(engine);
    if (!engine->split)
        return risk_err(RISK_EUNSUPPORTED, "store: its commits need no sync step");
    return engine->split->sync(engine->host.ctx);
}

int risk_engine_backup(risk_engine *engine, const char *path)
{
    CHECK_ENGINE(engine);
    if (!path || !*path)
        return risk_err(RISK_EINVAL, "path: NULL or empty");
    if (!engine->st.backup)
        return risk_err(RISK_EUNSUPPORTED, "store: no backup callback");
    return engine->st.backup(engine->st.ctx, path);
}
