/* A minimal librisk store, written as a tutorial (docs/store.md walks
 * through it). It uses only the public headers, as a host would:
 *
 *   - one global mutex: begin() takes it, commit()/rollback() give it back,
 *     so transactions run one at a time (the simplest correct isolation,
 *     and the sequencer rule of reserve_seq holds trivially);
 *   - committed records are rows in linked lists, holding the canonical
 *     byte encoding of each record (a "blob store", docs/encoding.md);
 *   - every write of a transaction is buffered in the transaction's log and
 *     applied at commit without allocating, so commit cannot half-happen;
 *     rollback just frees the log;
 *   - only the required callbacks; the optional ones stay NULL, so the
 *     engine answers the queries that need them with RISK_EUNSUPPORTED.
 *
 * A real store would use hash maps or a database (the Python SQLiteStore
 * in bindings/python/librisk/stores.py is the reference for that). The
 * failure switches at the end of struct example_store exist for the tests
 * (tests/test_example_store.c): they make callbacks fail on purpose. */
#include <librisk.h>
#include <librisk/store.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_USER, T_EVENT, T_POLICY, T_META, T_HISTORY, N_TABLES };

/* A row: committed (in a table) or a pending write (in a txn's log). */
struct row {
    int table;
    char *key;     /* id, policy name, meta key, or the seq as 20 digits */
    char *owner;   /* events: their user id (for user_events); else NULL */
    uint64_t version; /* users: the record version (R-ST-6) */
    uint8_t *val;  /* the bytes; NULL in a log entry means "delete" */
    size_t len;
    struct row *next;
};

struct example_store {
    pthread_mutex_t lock;          /* held from begin to commit/rollback */
    struct row *tables[N_TABLES];  /* committed rows */
    uint64_t next_seq;             /* last reserved history number */
    /* Failure switches for tests: */
    int fail_write_in;    /* > 0: the n-th next write callback fails (RISK_EIO) */
    int fail_commit;      /* 1: the next commit fails (RISK_EIO) */
    int conflict_commits; /* > 0: that many commits report RISK_ECONFLICT */
};

struct txn {
    struct row *log; /* at most one entry per (table, key): the latest write */
};

/* ---- rows ---- */

static void row_free(struct row *r)
{
    if (!r)
        return;
    free(r->key);
    free(r->owner);
    free(r->val);
    free(r);
}

static struct row *find(struct row *list, int table, const char *key)
{
    for (; list; list = list->next)
        if (list->table == table && strcmp(list->key, key) == 0)
            return list;
    return NULL;
}

/* Buffer a write (val NULL: delete); val is copied. Writes nothing to the
 * committed tables: other transactions cannot see it (there are none while
 * we hold the lock) and rollback can forget it. */
static int txn_write(struct example_store *s, struct txn *t, int table, const char *key,
                     const char *owner, uint64_t version, const uint8_t *val, size_t len)
{
    if (s->fail_write_in > 0 && --s->fail_write_in == 0)
        return risk_error_set(RISK_EIO, "example store: write failed (test switch)");
    uint8_t *copy = NULL;
    if (val) {
        copy = malloc(len ? len : 1);
        if (!copy)
            return risk_error_set(RISK_ENOMEM, "example store: out of memory");
        memcpy(copy, val, len);
    }
    struct row *r = find(t->log, table, key);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (r)
            r->key = strdup(key);
        if (r && owner)
            r->owner = strdup(owner);
        if (!r || !r->key || (owner && !r->owner)) {
            row_free(r);
            free(copy);
            return risk_error_set(RISK_ENOMEM, "example store: out of memory");
        }
        r->table = table;
        r->next = t->log;
        t->log = r;
    }
    free(r->val);
    r->val = copy;
    r->len = len;
    r->version = version;
    return RISK_OK;
}

/* Read-your-writes: the txn's own pending write wins over the table. */
static const struct row *txn_read(struct example_store *s, struct txn *t, int table,
                                  const char *key)
{
    const struct row *r = find(t->log, table, key);
    if (!r)
        r = find(s->tables[table], table, key);
    return r && r->val ? r : NULL;
}

/* Visit the rows of a table as this txn sees them (owner NULL: all). */
static int txn_scan(struct example_store *s, struct txn *t, int table, const char *owner,
                    int (*each)(const struct row *r, void *arg), void *arg)
{
    int rc;
    for (const struct row *r = s->tables[table]; r; r = r->next) {
        if (owner && strcmp(r->owner, owner) != 0)
            continue;
        const struct row *w = find(t->log, table, r->key);
        if ((w ? w : r)->val && (rc = each(w ? w : r, arg)))
            return rc;
    }
    for (const struct row *w = t->log; w; w = w->next)
        if (w->table == table && w->val && (!owner || strcmp(w->owner, owner) == 0) &&
            !find(s->tables[table], table, w->key) && (rc = each(w, arg)))
            return rc;
    return RISK_OK;
}

/* ---- transactions ---- */

static int ex_begin(void *ctx, const char *user_id, void **txn)
{
    struct example_store *s = ctx;
    (void)user_id; /* a finer store would lock only this user */
    struct txn *t = calloc(1, sizeof *t);
    if (!t)
        return risk_error_set(RISK_ENOMEM, "example store: out of memory");
    pthread_mutex_lock(&s->lock);
    *txn = t;
    return RISK_OK;
}

static void txn_end(struct example_store *s, struct txn *t)
{
    while (t->log) {
        struct row *r = t->log;
        t->log = r->next;
        row_free(r);
    }
    free(t);
    pthread_mutex_unlock(&s->lock);
}

static void ex_rollback(void *ctx, void *txn)
{
    txn_end(ctx, txn); /* forget every buffered write */
}

static int ex_commit(void *ctx, void *txn)
{
    struct example_store *s = ctx;
    struct txn *t = txn;
    if (s->conflict_commits > 0) { /* as a shared database would (R-ST-6) */
        s->conflict_commits--;
        txn_end(s, t); /* a failed commit finishes the txn: no rollback follows */
        return risk_error_set(RISK_ECONFLICT, "example store: conflict (test switch)");
    }
    if (s->fail_commit) {
        s->fail_commit = 0;
        txn_end(s, t);
        return risk_error_set(RISK_EIO, "example store: commit failed (test switch)");
    }
    /* Apply the log. Nothing here allocates, so nothing here can fail:
     * log entries are moved into the tables, values are swapped. */
    while (t->log) {
        struct row *w = t->log;
        t->log = w->next;
        struct row **pp = &s->tables[w->table];
        while (*pp && strcmp((*pp)->key, w->key) != 0)
            pp = &(*pp)->next;
        if (*pp && !w->val) { /* delete */
            struct row *old = *pp;
            *pp = old->next;
            row_free(old);
            row_free(w);
        } else if (*pp) { /* replace */
            uint8_t *v = (*pp)->val;
            (*pp)->val = w->val;
            (*pp)->len = w->len;
            (*pp)->version = w->version;
            w->val = v;
            row_free(w);
        } else if (w->val) { /* insert */
            w->next = s->tables[w->table];
            s->tables[w->table] = w;
        } else {
            row_free(w);
        }
    }
    txn_end(s, t);
    return RISK_OK;
}

/* ---- encoding helpers: measure, allocate, encode ---- */

#define ENCODE(fn, rec, out, len)                                                        \
    do {                                                                                 \
        int rc_ = fn(NULL, 0, &(len), rec);                                              \
        if (rc_)                                                                         \
            return rc_;                                                                  \
        if (!((out) = malloc((len) ? (len) : 1)))                                        \
            return risk_error_set(RISK_ENOMEM, "example store: out of memory");        \
        if ((rc_ = fn(out, len, &(len), rec))) {                                         \
            free(out);                                                                   \
            return rc_;                                                                  \
        }                                                                                \
    } while (0)

/* ---- users, events ---- */

static int ex_get_user(void *ctx, void *txn, const char *id, risk_user **out)
{
    const struct row *r = txn_read(ctx, txn, T_USER, id);
    return r ? risk_user_decode(out, r->val, r->len) : RISK_ENOTFOUND;
}

static int ex_put_user(void *ctx, void *txn, const risk_user *user)
{
    struct example_store *s = ctx;
    /* R-ST-6: the new version is one more than the committed one. With one
     * global lock this cannot fail; a shared store must check it. */
    const struct row *old = find(s->tables[T_USER], T_USER, risk_user_id(user));
    if (risk_user_version(user) != (old ? old->version : 0) + 1)
        return risk_error_set(RISK_ECONFLICT, "example store: user changed meanwhile");
    uint8_t *buf;
    size_t len;
    ENCODE(risk_user_encode, user, buf, len);
    int rc = txn_write(s, txn, T_USER, risk_user_id(user), NULL, risk_user_version(user), buf,
                       len);
    free(buf);
    return rc;
}

static int ex_get_event(void *ctx, void *txn, const char *id, risk_event **out)
{
    const struct row *r = txn_read(ctx, txn, T_EVENT, id);
    return r ? risk_event_decode(out, r->val, r->len) : RISK_ENOTFOUND;
}

static int ex_put_event(void *ctx, void *txn, const risk_event *event)
{
    uint8_t *buf;
    size_t len;
    ENCODE(risk_event_encode, event, buf, len);
    int rc = txn_write(ctx, txn, T_EVENT, risk_event_id(event), risk_event_user_id(event), 0,
                       buf, len);
    free(buf);
    return rc;
}

/* Decode a row and hand the borrowed handle to the engine's visitor. */
struct visit {
    risk_event_visit_fn event_fn;
    risk_policy_visit_fn policy_fn;
    void *arg;
};

static int visit_row(const struct row *r, void *arg)
{
    struct visit *v = arg;
    int rc;
    if (v->event_fn) {
        risk_event *ev = NULL;
        if ((rc = risk_event_decode(&ev, r->val, r->len)) == RISK_OK)
            rc = v->event_fn(ev, v->arg);
        risk_event_free(ev);
    } else {
        risk_policy *p = NULL;
        if ((rc = risk_policy_decode(&p, r->val, r->len)) == RISK_OK)
            rc = v->policy_fn(p, v->arg);
        risk_policy_free(p);
    }
    return rc;
}

static int ex_user_events(void *ctx, void *txn, const char *user_id, risk_event_visit_fn fn,
                          void *arg)
{
    struct visit v = { fn, NULL, arg };
    return txn_scan(ctx, txn, T_EVENT, user_id, visit_row, &v);
}

/* ---- history ---- */

static int ex_reserve_seq(void *ctx, void *txn, uint64_t *seq)
{
    struct example_store *s = ctx;
    (void)txn;
    /* We hold the one lock until commit/rollback, so no reader can see a
     * higher number before this one is settled. A rolled-back number is
     * never reused: the rule asks for "strictly greater", gaps are fine. */
    *seq = ++s->next_seq;
    return RISK_OK;
}

static int ex_append_history(void *ctx, void *txn, const risk_history *item)
{
    char key[24];
    snprintf(key, sizeof key, "%020llu", (unsigned long long)risk_history_seq(item));
    uint8_t *buf;
    size_t len;
    ENCODE(risk_history_encode, item, buf, len);
    int rc = txn_write(ctx, txn, T_HISTORY, key, NULL, 0, buf, len);
    free(buf);
    return rc;
}

/* ---- policies and meta ---- */

static int ex_list_policies(void *ctx, void *txn, risk_policy_visit_fn fn, void *arg)
{
    struct visit v = { NULL, fn, arg };
    return txn_scan(ctx, txn, T_POLICY, NULL, visit_row, &v);
}

static int ex_put_policy(void *ctx, void *txn, const risk_policy *policy)
{
    uint8_t *buf;
    size_t len;
    ENCODE(risk_policy_encode, policy, buf, len);
    int rc = txn_write(ctx, txn, T_POLICY, risk_policy_name(policy), NULL, 0, buf, len);
    free(buf);
    return rc;
}

static int ex_remove_policy(void *ctx, void *txn, const char *name)
{
    if (!txn_read(ctx, txn, T_POLICY, name))
        return RISK_ENOTFOUND;
    return txn_write(ctx, txn, T_POLICY, name, NULL, 0, NULL, 0);
}

static int ex_get_meta(void *ctx, void *txn, const char *key, uint8_t *buf, size_t cap,
                       size_t *len)
{
    const struct row *r = txn_read(ctx, txn, T_META, key);
    if (!r)
        return RISK_ENOTFOUND;
    *len = r->len;
    if (cap < r->len)
        return RISK_ERANGE;
    memcpy(buf, r->val, r->len);
    return RISK_OK;
}

static int ex_put_meta(void *ctx, void *txn, const char *key, const uint8_t *buf, size_t len)
{
    return txn_write(ctx, txn, T_META, key, NULL, 0, buf, len);
}

/* ---- the host's side: create, free ---- */

/* Free the store. The table has no close callback, so the engine never
 * frees it: the host calls this after risk_engine_free(). */
void example_store_free(void *ctx)
{
    struct example_store *s = ctx;
    if (!s)
        return;
    for (int t = 0; t < N_TABLES; t++)
        while (s->tables[t]) {
            struct row *r = s->tables[t];
            s->tables[t] = r->next;
            row_free(r);
        }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Fill a callback table for a new, empty store. */
int example_store_new(risk_store *out)
{
    struct example_store *s = calloc(1, sizeof *s);
    if (!s)
        return RISK_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    memset(out, 0, sizeof *out); /* every optional callback NULL (R-ST-4) */
    out->version = RISK_STORE_VERSION;
    out->ctx = s;
    out->begin = ex_begin;
    out->commit = ex_commit;
    out->rollback = ex_rollback;
    out->get_user = ex_get_user;
    out->put_user = ex_put_user;
    out->get_event = ex_get_event;
    out->put_event = ex_put_event;
    out->user_events = ex_user_events;
    out->reserve_seq = ex_reserve_seq;
    out->append_history = ex_append_history;
    out->list_policies = ex_list_policies;
    out->put_policy = ex_put_policy;
    out->remove_policy = ex_remove_policy;
    out->get_meta = ex_get_meta;
    out->put_meta = ex_put_meta;
    return RISK_OK;
}
