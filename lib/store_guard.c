/* The guard between the engine and a host's store (docs/store.md, "What
 * the engine checks").
 *
 * The engine trusts its own stores (memory, journal): they are tested with
 * it. A host's callbacks are another matter: a store that answers a read
 * for one user with another user's record, says RISK_OK without a record,
 * or swallows a visitor's error would otherwise have the engine decide on
 * the wrong data and write the result over the wrong user. So when the
 * table is not a built-in one, risk_engine_new() puts these trampolines
 * in front of it. Each forwards to the host's callback and checks what
 * comes back:
 *
 * - a result is RISK_OK or a RISK_E… code; anything else (a positive
 *   value, an unknown negative one) becomes RISK_ESTORE;
 * - a read that says RISK_OK returns a record, and the one asked for
 *   (same id; view_user visits it once, and does not then say it is
 *   absent; an event visited for a user is that user's; a history item
 *   read for a user is that user's): RISK_ESTORE for a missing record,
 *   RISK_ECORRUPT for a wrong one, and a wrong record returned through
 *   `out` is freed. The history's seqs and hashes are not checked here:
 *   the verifier names the item (risk_engine_verify_history), and the
 *   listings check the order (lib/engine_query.c);
 * - a visitor's non-zero result stops the walk and is what the call
 *   returns, even when the store goes on or answers RISK_OK instead (a
 *   store error other than that result still wins).
 *
 * The cost is one indirect call per callback; the built-in stores skip it
 * (the sign-in's path through them is a few hundred nanoseconds). */
#include "engine.h"

#include <stdlib.h>

static const risk_store *host(void *ctx) { return ctx; }

static int odd_code(const char *cb, int rc)
{
    return risk_err(RISK_ESTORE, "store.%s returned %d, which is not RISK_OK or a RISK_E… code",
                    cb, rc);
}

/* rc as the engine may see it */
static int code(const char *cb, int rc)
{
    return rc <= RISK_OK && rc >= RISK_EVERIFY ? rc : odd_code(cb, rc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int risk_ids_unique(const char **ids, size_t n, const char *what)
{
    if (n > 1)
        qsort(ids, n, sizeof *ids, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            return risk_err(RISK_ECORRUPT, "%s", what);
    return RISK_OK;
}

/* ---- visitors ---- */

typedef struct gwalk {
    const char *cb;      /* the callback, for messages */
    const char *user_id; /* the user asked for, or NULL */
    union {
        risk_user_visit_fn u;
        risk_event_visit_fn e;
        risk_history_visit_fn h;
        risk_policy_visit_fn p;
    } fn;
    void *arg;
    int stop;            /* the first non-zero visit result (the guard's own included) */
    unsigned visits;
} gwalk;

/* What a walking callback returns, from the store's result and the walk's. */
static int walk_end(gwalk *w, int rc)
{
    if (w->stop == 0)
        return code(w->cb, rc);
    if (rc == w->stop)
        return rc; /* as the contract says: the visitor's result, any value */
    if (rc < RISK_OK && rc >= RISK_EVERIFY)
        return rc; /* the store failed after the stop: its error */
    return w->stop; /* the store went on, or swallowed the result */
}

static int wrong(gwalk *w, const char *what)
{
    return risk_err(RISK_ECORRUPT, "store.%s: %s", w->cb, what);
}

static int visit_user(const risk_user *u, void *arg)
{
    gwalk *w = arg;
    if (w->stop)
        return w->stop;
    if (!u)
        w->stop = wrong(w, "visited NULL for a user");
    else if (w->user_id && strcmp(u->id, w->user_id) != 0)
        w->stop = wrong(w, "visited another user than the one asked for");
    else if (w->user_id && ++w->visits > 1) /* view_user: one record per id */
        w->stop = wrong(w, "visited the user twice");
    else
        w->stop = w->fn.u(u, w->arg);
    return w->stop;
}

static int visit_event(const risk_event *ev, void *arg)
{
    gwalk *w = arg;
    if (w->stop)
        return w->stop;
    if (!ev)
        w->stop = wrong(w, "visited NULL for an event");
    else if (strcmp(ev->user_id, w->user_id) != 0)
        w->stop = wrong(w, "visited an event of another user than the one asked for");
    else
        w->stop = w->fn.e(ev, w->arg);
    return w->stop;
}

static int visit_history(const risk_history *h, void *arg)
{
    gwalk *w = arg;
    if (w->stop)
        return w->stop;
    if (!h)
        w->stop = wrong(w, "visited NULL for a history item");
    else if (w->user_id && (!h->user_id || strcmp(h->user_id, w->user_id) != 0))
        w->stop = wrong(w, "visited a history item of another user than the one asked for");
    else
        w->stop = w->fn.h(h, w->arg);
    return w->stop;
}

static int visit_policy(const risk_policy *p, void *arg)
{
    gwalk *w = arg;
    if (w->stop)
        return w->stop;
    w->stop = p ? w->fn.p(p, w->arg) : wrong(w, "visited NULL for a policy");
    return w->stop;
}

/* ---- the trampolines ---- */

static int g_begin(void *ctx, const char *user_id, void **txn)
{
    return code("begin", host(ctx)->begin(host(ctx)->ctx, user_id, txn));
}

static int g_commit(void *ctx, void *txn)
{
    return code("commit", host(ctx)->commit(host(ctx)->ctx, txn));
}

static void g_rollback(void *ctx, void *txn)
{
    host(ctx)->rollback(host(ctx)->ctx, txn);
}

static int g_get_user(void *ctx, void *txn, const char *id, risk_user **out)
{
    int rc = code("get_user", host(ctx)->get_user(host(ctx)->ctx, txn, id, out));
    if (rc != RISK_OK) {
        *out = NULL; /* ignored on failure: the store frees what it made */
        return rc;
    }
    if (!*out)
        return risk_err(RISK_ESTORE, "store.get_user: RISK_OK without a user");
    if (strcmp((*out)->id, id) != 0) {
        risk_user_free(*out);
        *out = NULL;
        return risk_err(RISK_ECORRUPT, "store.get_user: returned another user than the one asked for");
    }
    return RISK_OK;
}

static int g_put_user(void *ctx, void *txn, const risk_user *user)
{
    return code("put_user", host(ctx)->put_user(host(ctx)->ctx, txn, user));
}

static int g_get_event(void *ctx, void *txn, const char *id, risk_event **out)
{
    int rc = code("get_event", host(ctx)->get_event(host(ctx)->ctx, txn, id, out));
    if (rc != RISK_OK) {
        *out = NULL; /* ignored on failure: the store frees what it made */
        return rc;
    }
    if (!*out)
        return risk_err(RISK_ESTORE, "store.get_event: RISK_OK without an event");
    if (strcmp((*out)->id, id) != 0) {
        risk_event_free(*out);
        *out = NULL;
        return risk_err(RISK_ECORRUPT,
                        "store.get_event: returned another event than the one asked for");
    }
    return RISK_OK;
}

static int g_put_event(void *ctx, void *txn, const risk_event *event)
{
    return code("put_event", host(ctx)->put_event(host(ctx)->ctx, txn, event));
}

static int g_user_events(void *ctx, void *txn, const char *user_id, risk_event_visit_fn fn,
                         void *arg)
{
    gwalk w = { .cb = "user_events", .user_id = user_id, .fn.e = fn, .arg = arg };
    return walk_end(&w, host(ctx)->user_events(host(ctx)->ctx, txn, user_id, visit_event, &w));
}

static int g_reserve_seq(void *ctx, void *txn, uint64_t *seq)
{
    return code("reserve_seq", host(ctx)->reserve_seq(host(ctx)->ctx, txn, seq));
}

static int g_append_history(void *ctx, void *txn, const risk_history *item)
{
    return code("append_history", host(ctx)->append_history(host(ctx)->ctx, txn, item));
}

static int g_list_policies(void *ctx, void *txn, risk_policy_visit_fn fn, void *arg)
{
    gwalk w = { .cb = "list_policies", .fn.p = fn, .arg = arg };
    return walk_end(&w, host(ctx)->list_policies(host(ctx)->ctx, txn, visit_policy, &w));
}

static int g_put_policy(void *ctx, void *txn, const risk_policy *policy)
{
    return code("put_policy", host(ctx)->put_policy(host(ctx)->ctx, txn, policy));
}

static int g_remove_policy(void *ctx, void *txn, const char *name)
{
    return code("remove_policy", host(ctx)->remove_policy(host(ctx)->ctx, txn, name));
}

static int g_get_meta(void *ctx, void *txn, const char *key, uint8_t *buf, size_t cap,
                      size_t *len)
{
    return code("get_meta", host(ctx)->get_meta(host(ctx)->ctx, txn, key, buf, cap, len));
}

static int g_put_meta(void *ctx, void *txn, const char *key, const uint8_t *buf, size_t len)
{
    return code("put_meta", host(ctx)->put_meta(host(ctx)->ctx, txn, key, buf, len));
}

static void g_close(void *ctx)
{
    host(ctx)->close(host(ctx)->ctx);
}

static int g_view_user(void *ctx, const char *id, risk_user_visit_fn fn, void *arg)
{
    gwalk w = { .cb = "view_user", .user_id = id, .fn.u = fn, .arg = arg };
    int rc = walk_end(&w, host(ctx)->view_user(host(ctx)->ctx, id, visit_user, &w));
    if (rc == RISK_ENOTFOUND && w.visits) /* "absent" after showing the user */
        return risk_err(RISK_ECORRUPT, "store.view_user: visited the user, then said it is absent");
    return rc;
}

static int g_list_users(void *ctx, risk_level min_level, risk_user_visit_fn fn, void *arg)
{
    gwalk w = { .cb = "list_users", .fn.u = fn, .arg = arg };
    return walk_end(&w, host(ctx)->list_users(host(ctx)->ctx, min_level, visit_user, &w));
}

static int g_read_history(void *ctx, const char *user_id, uint64_t since_seq,
                          risk_history_visit_fn fn, void *arg)
{
    gwalk w = { .cb = "read_history", .user_id = user_id, .fn.h = fn, .arg = arg };
    return walk_end(&w, host(ctx)->read_history(host(ctx)->ctx, user_id, since_seq,
                                                visit_history, &w));
}

static int g_compact(void *ctx)
{
    return code("compact", host(ctx)->compact(host(ctx)->ctx));
}

static int g_backup(void *ctx, const char *path)
{
    return code("backup", host(ctx)->backup(host(ctx)->ctx, path));
}

static void g_prefetch_users(void *ctx, const char *const *ids, size_t n)
{
    host(ctx)->prefetch_users(host(ctx)->ctx, ids, n);
}

static void g_prefetch_events(void *ctx, const char *const *ids, size_t n)
{
    host(ctx)->prefetch_events(host(ctx)->ctx, ids, n);
}

void risk_store_guard(risk_store *guard, const risk_store *h)
{
    *guard = (risk_store){
        .version = RISK_STORE_VERSION,
        .ctx = (void *)h,
        .begin = g_begin,
        .commit = g_commit,
        .rollback = g_rollback,
        .get_user = g_get_user,
        .put_user = g_put_user,
        .get_event = g_get_event,
        .put_event = g_put_event,
        .user_events = g_user_events,
        .reserve_seq = g_reserve_seq,
        .append_history = g_append_history,
        .list_policies = g_list_policies,
        .put_policy = g_put_policy,
        .remove_policy = g_remove_policy,
        .get_meta = g_get_meta,
        .put_meta = g_put_meta,
        /* the optional ones stay NULL where the host has none */
        .close = h->close ? g_close : NULL,
        .view_user = h->view_user ? g_view_user : NULL,
        .list_users = h->list_users ? g_list_users : NULL,
        .read_history = h->read_history ? g_read_history : NULL,
        .compact = h->compact ? g_compact : NULL,
        .backup = h->backup ? g_backup : NULL,
        .prefetch_users = h->prefetch_users ? g_prefetch_users : NULL,
        .prefetch_events = h->prefetch_events ? g_prefetch_events : NULL,
    };
}
