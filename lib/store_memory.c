/* The in-memory store (R-ST-5): a risk_store callback table like any host's.
 *
 * Layout. Committed state lives in open-addressing hash maps (linear
 * probing, power-of-two tables, backward-shift deletion, no tombstones):
 * users by id, events by id, policies by name, meta by key. A user id maps
 * to a "subject" that embeds the committed user (absent until the first
 * put), an intrusive list of the user's events (user_events is O(that
 * user's events)), the user's history items, and its place in one of
 * four per-level lists (list_users ≥ high touches only high users).
 * History is a vector in seq order (binary search for since_seq) plus a
 * per-subject linked list.
 *
 * Transactions buffer owned copies of every write in small private maps;
 * reads overlay them on the committed state (read-your-writes). Commit is
 * two-phase so the journal can log between the phases:
 *   prepare (write lock): version checks (R-ST-6), claims on the users it
 *     writes, every allocation apply needs (subjects, map capacity
 *     reservations, history capacity). May fail; then nothing changed.
 *   apply (write lock): pointer moves only, cannot fail.
 * The table's commit runs both phases under one hold of the write lock.
 * Several transactions may sit between prepare and apply at once (group
 * commit): map reservations are counted, and a user claimed by one prepared
 * transaction makes another's prepare fail with RISK_ECONFLICT.
 *
 * History sequence numbers come from a sequencer token (a mutex and a FIFO
 * of waiters, each with its own condvar, so apply may run on another
 * thread than reserve_seq and a release wakes only the oldest waiter): the
 * first reserve_seq of a txn takes it, commit/rollback hands it on.
 * Commits carrying history are therefore published in seq order.
 *
 * Memory: an event or history item is stored as ONE allocation holding the
 * node, the record and all its strings (lib/store_memory_map.c), so a
 * million events cost a million mallocs, not nine million.
 *
 * Locking: one striped rwlock over all committed state (a reader takes its
 * thread's stripe, a writer all of them: readers on two cores do not share
 * a counter). Callbacks given to
 * view_user, user_events, list_policies and risk_memstore_each_* run under
 * the read lock: they must not commit to this store (deadlock); they may
 * read it (glibc's default rwlock lets a reader re-enter, and a thread
 * always reads through the same stripe). list_users
 * and read_history call fn without the lock (they copy first), so a visitor
 * may run whole operations on the store. */
#include "memstore.h"

#include <stdlib.h>

static const char *user_key(const void *v) { return ((const risk_user *)v)->id; }
static const char *pnode_key(const void *v) { return ((const pnode *)v)->name; }

/* ---- sequencer token ---- */
/* Wake-one without hand-off: release frees the token and signals only the
 * oldest waiter (each waiter has its own condvar), so 64 committers do not
 * all wake on every release; a running thread may still take a free token
 * first (no lock convoy: a hand-off would force a context switch per
 * commit). A woken waiter that finds the token taken waits again, still
 * first in line. A thread that already holds the token for another open
 * txn would wait for itself forever: that is RISK_EBUSY instead of a hang. */
static int seq_acquire(risk_memstore *ms, mtxn *t)
{
    pthread_mutex_lock(&ms->seq_mu);
    if (ms->seq_owner != NULL && pthread_equal(ms->seq_thread, pthread_self())) {
        pthread_mutex_unlock(&ms->seq_mu);
        return risk_err(RISK_EBUSY, "txn: this thread holds the sequencer in another open "
                                    "transaction of this store (commit or roll it back first)");
    }
    if (ms->seq_owner != NULL) {
        seq_waiter w = {.t = t};
        if (pthread_cond_init(&w.cv, NULL) != 0) {
            pthread_mutex_unlock(&ms->seq_mu);
            return risk_err(RISK_ENOMEM, "txn: cannot wait for the sequencer");
        }
        if (ms->q_tail)
            ms->q_tail->next = &w;
        else
            ms->q_head = &w;
        ms->q_tail = &w;
        while (ms->seq_owner != NULL)
            pthread_cond_wait(&w.cv, &ms->seq_mu);
        seq_waiter **pp = &ms->q_head, *prev = NULL; /* leave the queue */
        while (*pp != &w)
            prev = *pp, pp = &(*pp)->next;
        *pp = w.next;
        if (ms->q_tail == &w)
            ms->q_tail = prev;
        pthread_cond_destroy(&w.cv);
    }
    ms->seq_owner = t;
    ms->seq_thread = pthread_self();
    pthread_mutex_unlock(&ms->seq_mu);
    return RISK_OK;
}

static void seq_release(risk_memstore *ms, mtxn *t)
{
    pthread_mutex_lock(&ms->seq_mu);
    if (ms->seq_owner == t) {
        ms->seq_owner = NULL;
        if (ms->q_head != NULL)
            pthread_cond_signal(&ms->q_head->cv);
    }
    pthread_mutex_unlock(&ms->seq_mu);
}

/* ---- transactions ---- */
static int cb_begin(void *ctx, const char *user_id, void **txn)
{
    (void)user_id; /* per-user serialisation is the engine's; writes are buffered */
    if (txn == NULL)
        return risk_err(RISK_EINVAL, "txn: NULL");
    mtxn *t = risk_calloc(1, sizeof *t);
    if (t == NULL)
        return ms_nomem();
    t->ms = ctx;
    t->users.key = user_key;
    t->users.s = t->users.inl = t->inl_users;
    t->users.cap = TXN_INLINE_SLOTS;
    t->events.key = evnode_key;
    t->events.s = t->events.inl = t->inl_events;
    t->events.cap = TXN_INLINE_SLOTS;
    t->hist = t->inl_hist;
    t->cap_hist = TXN_INLINE_HIST;
    t->policies.key = pnode_key;
    t->meta.key = meta_key;
    *txn = t;
    return RISK_OK;
}

/* Free the txn's containers (not the values they point to) and the txn. */
static void txn_free_shells(mtxn *t)
{
    map_free(&t->users);
    map_free(&t->events);
    map_free(&t->policies);
    map_free(&t->meta);
    if (t->hist != t->inl_hist)
        risk_free(t->hist);
    if (t->subs != t->inl_subs)
        risk_free(t->subs);
    risk_free(t);
}

/* Free every buffered write and the txn itself. */
static void txn_discard(mtxn *t)
{
    MAP_EACH(&t->users, i)
        risk_user_free(t->users.s[i].val);
    MAP_EACH(&t->events, i) {
        risk_free(t->events.s[i].val);
    }
    MAP_EACH(&t->policies, i) {
        pnode *p = t->policies.s[i].val;
        risk_policy_free(p->p);
        risk_free(p);
    }
    MAP_EACH(&t->meta, i)
        risk_free(t->meta.s[i].val);
    for (size_t i = 0; i < t->n_hist; i++)
        risk_free(t->hist[i]);
    txn_free_shells(t);
}

static int subject_empty(const subject *s)
{
    return !s->has_user && s->ev_head == NULL && s->h_head == NULL && s->claim == NULL &&
           s->pins == 0;
}

/* Drop the pins of a prepared txn; subjects it created for nothing go away. */
static void unpin_all(risk_memstore *ms, mtxn *t)
{
    for (size_t i = 0; i < t->n_subs; i++) {
        subject *s = t->subs[i];
        if (s->claim == t)
            s->claim = NULL;
        s->pins--;
        if (subject_empty(s)) {
            size_t at = map_find(&ms->users, hash_str(s->id), s->id);
            if (at != NOPE)
                map_remove_at(&ms->users, at);
            risk_free(s);
        }
    }
    t->n_subs = 0;
}

static void release_reservations(risk_memstore *ms, mtxn *t)
{
    ms->events.reserved -= t->res_events;
    ms->policies.reserved -= t->res_policies;
    ms->meta.reserved -= t->res_meta;
    t->res_events = t->res_policies = t->res_meta = 0;
}

/* Find or create (and pin) the subject of id; write lock held. */
static int pin(risk_memstore *ms, mtxn *t, uint64_t h, const char *id)
{
    subject *s = subject_get(ms, h, id);
    if (s == NULL)
        return RISK_ENOMEM;
    s->pins++;
    t->subs[t->n_subs++] = s;
    return RISK_OK;
}

static int check_versions(risk_memstore *ms, mtxn *t)
{
    MAP_EACH(&t->users, i) {
        const risk_user *u = t->users.s[i].val;
        const subject *s = map_get(&ms->users, t->users.s[i].hash, u->id);
        uint64_t have = (s && s->has_user) ? s->u.version : 0;
        if (s && s->claim && s->claim != t)
            return risk_err(RISK_ECONFLICT, "user: '%s' is being committed by another transaction",
                            u->id);
        if (have != u->version - 1)
            return risk_err(RISK_ECONFLICT,
                            "user: '%s' is at version %llu in the store, the transaction wrote "
                            "version %llu",
                            u->id, (unsigned long long)have, (unsigned long long)u->version);
    }
    return RISK_OK;
}

static int prepare_locked(risk_memstore *ms, mtxn *t)
{
    int rc = check_versions(ms, t);
    if (rc != RISK_OK)
        return rc;
    /* a removal seen at remove_policy time may have been committed since by
     * another transaction: the second of two removals must not commit too */
    MAP_EACH(&t->policies, i) {
        const pnode *pn = t->policies.s[i].val;
        if (pn->must_exist && map_find(&ms->policies, t->policies.s[i].hash, pn->name) == NOPE)
            return risk_err(RISK_ENOTFOUND, "name: policy '%s' was removed by another "
                                            "transaction", pn->name);
    }
    MAP_EACH(&t->users, i)
        if ((rc = pin(ms, t, t->users.s[i].hash, user_key(t->users.s[i].val))) != RISK_OK)
            return rc;
    MAP_EACH(&t->events, i) {
        const char *uid = ((evnode *)t->events.s[i].val)->ev.user_id;
        if ((rc = pin(ms, t, hash_str(uid), uid)) != RISK_OK)
            return rc;
    }
    for (size_t i = 0; i < t->n_hist; i++) {
        const char *uid = t->hist[i]->item.user_id;
        if (uid && (rc = pin(ms, t, hash_str(uid), uid)) != RISK_OK)
            return rc;
    }
    size_t k = 0;
    MAP_EACH(&t->events, i)
        k += map_find(&ms->events, t->events.s[i].hash, evnode_key(t->events.s[i].val)) == NOPE;
    if ((rc = map_reserve(&ms->events, k)) != RISK_OK)
        return rc;
    t->res_events = k;
    /* every put reserves: another txn may remove the policy before apply */
    k = 0;
    MAP_EACH(&t->policies, i)
        k += ((pnode *)t->policies.s[i].val)->p != NULL;
    if ((rc = map_reserve(&ms->policies, k)) != RISK_OK)
        return rc;
    t->res_policies = k;
    k = 0;
    MAP_EACH(&t->meta, i)
        k += map_find(&ms->meta, t->meta.s[i].hash, meta_key(t->meta.s[i].val)) == NOPE;
    if ((rc = map_reserve(&ms->meta, k)) != RISK_OK)
        return rc;
    t->res_meta = k;
    /* history: only the sequencer's holder gets here with items, so no
     * other prepared txn competes for this capacity */
    if (ms->n_hist + t->n_hist > ms->cap_hist) {
        size_t cap = ms->cap_hist ? ms->cap_hist : 64;
        while (cap < ms->n_hist + t->n_hist)
            cap *= 2;
        hnode **h = risk_realloc(ms->hist, cap * sizeof *h);
        if (h == NULL)
            return ms_nomem();
        ms->hist = h;
        ms->cap_hist = cap;
    }
    /* users were pinned first: claim them against other prepared txns */
    for (size_t i = 0; i < t->users.count; i++)
        t->subs[i]->claim = t;
    return RISK_OK;
}

/* Whether publishing t touches committed state (needs the write lock). */
static int txn_writes(const mtxn *t)
{
    return t->users.count || t->events.count || t->n_hist || t->policies.count || t->meta.count;
}

/* Prepare's allocation outside the lock: one subject slot per reference. */
static int alloc_subs(mtxn *t)
{
    size_t refs = t->users.count + t->events.count + t->n_hist;
    if (refs <= TXN_INLINE_SUBS)
        t->subs = t->inl_subs;
    else if ((t->subs = risk_malloc(refs * sizeof *t->subs)) == NULL)
        return ms_nomem();
    return RISK_OK;
}

/* Undo a failed prepare_locked (write lock held). */
static void unprepare_locked(risk_memstore *ms, mtxn *t)
{
    release_reservations(ms, t);
    unpin_all(ms, t);
}

int risk_memstore_prepare(risk_memstore *ms, void *txn)
{
    mtxn *t = txn;
    if (ms == NULL || t == NULL || t->ms != ms)
        return risk_err(RISK_EINVAL, "txn: not a transaction of this store");
    if (t->prepared)
        return risk_err(RISK_EINVAL, "txn: already prepared");
    int rc = RISK_OK;
    if (txn_writes(t)) {
        if ((rc = alloc_subs(t)) != RISK_OK)
            return rc;
        ms_wrlock(ms);
        if ((rc = prepare_locked(ms, t)) != RISK_OK)
            unprepare_locked(ms, t);
        ms_wrunlock(ms);
    }
    if (rc != RISK_OK) {
        if (t->subs != t->inl_subs)
            risk_free(t->subs);
        t->subs = NULL;
        return rc;
    }
    t->prepared = 1;
    return RISK_OK;
}

/* Publish a prepared txn; pointer moves and frees only. Write lock held. */
static void apply_locked(risk_memstore *ms, mtxn *t)
{
    size_t k = 0; /* t->subs is in the order prepare_locked pinned */
    release_reservations(ms, t); /* apply inserts at most what was reserved */
    MAP_EACH(&t->users, i) {
        subject *s = t->subs[k++];
        risk_user *bu = t->users.s[i].val;
        if (s->has_user)
            level_unlink(ms, s);
        s->u = *bu;
        s->u.id = s->id;
        s->has_user = 1;
        level_link(ms, s);
        risk_user_free(bu);
    }
    MAP_EACH(&t->events, i) {
        evnode *bn = t->events.s[i].val;
        subject *owner = t->subs[k++];
        size_t at = map_find(&ms->events, t->events.s[i].hash, bn->ev.id);
        ev_link(owner, bn);
        if (at == NOPE) {
            map_place(&ms->events, t->events.s[i].hash, bn);
            continue;
        }
        evnode *en = ms->events.s[at].val; /* the packed node is replaced whole */
        ev_unlink(en);
        ms->events.s[at].val = bn;
        risk_free(en);
    }
    MAP_EACH(&t->policies, i) {
        pnode *pn = t->policies.s[i].val;
        size_t at = map_find(&ms->policies, t->policies.s[i].hash, pn->name);
        if (at != NOPE) {
            risk_policy_free(ms->policies.s[at].val);
            if (pn->p)
                ms->policies.s[at].val = pn->p;
            else
                map_remove_at(&ms->policies, at);
        } else if (pn->p) {
            map_place(&ms->policies, t->policies.s[i].hash, pn->p);
        }
        risk_free(pn);
    }
    MAP_EACH(&t->meta, i) {
        metanode *bn = t->meta.s[i].val;
        metanode *cn = map_get(&ms->meta, t->meta.s[i].hash, bn->key);
        if (cn == NULL) {
            map_place(&ms->meta, t->meta.s[i].hash, bn);
            continue;
        }
        cn->len = bn->len;
        memcpy(cn->val, bn->val, bn->len);
        risk_free(bn);
    }
    for (size_t i = 0; i < t->n_hist; i++) {
        hnode *h = t->hist[i];
        ms->hist[ms->n_hist++] = h;
        if (h->item.user_id) {
            subject *s = t->subs[k++];
            if (s->h_tail)
                s->h_tail->next = h;
            else
                s->h_head = h;
            s->h_tail = h;
        }
    }
    unpin_all(ms, t);
}

/* After apply: the buffered values belong to the store; free the shells. */
static void txn_finish(risk_memstore *ms, mtxn *t)
{
    if (t->has_seq)
        seq_release(ms, t);
    txn_free_shells(t);
}

void risk_memstore_apply(risk_memstore *ms, void *txn)
{
    mtxn *t = txn;
    if (txn_writes(t)) {
        ms_wrlock(ms);
        apply_locked(ms, t);
        ms_wrunlock(ms);
    }
    txn_finish(ms, t);
}

static void cb_rollback(void *ctx, void *txn)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    if (t == NULL)
        return;
    if (t->prepared && txn_writes(t)) {
        ms_wrlock(ms);
        unprepare_locked(ms, t);
        ms_wrunlock(ms);
    }
    if (t->has_seq)
        seq_release(ms, t);
    txn_discard(t);
}

/* prepare + apply under one hold of the write lock (the journal needs the
 * two phases apart; the plain memory store does not). */
static int cb_commit(void *ctx, void *txn)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    if (t == NULL || t->ms != ms || t->prepared) {
        if (t != NULL && t->ms == ms)
            cb_rollback(ctx, txn);
        return risk_err(RISK_EINVAL, "txn: not an open transaction of this store");
    }
    int rc = RISK_OK;
    if (txn_writes(t) && (rc = alloc_subs(t)) == RISK_OK) {
        ms_wrlock(ms);
        if ((rc = prepare_locked(ms, t)) != RISK_OK)
            unprepare_locked(ms, t);
        else
            apply_locked(ms, t);
        ms_wrunlock(ms);
    }
    if (rc != RISK_OK) {
        cb_rollback(ctx, txn); /* the engine does not roll back a failed commit */
        return rc;
    }
    txn_finish(ms, t);
    return RISK_OK;
}

/* ---- buffered writes ---- */
#define NEED(p, what)                                    \
    do {                                                 \
        if ((p) == NULL)                                 \
            return risk_err(RISK_EINVAL, what ": NULL"); \
    } while (0)

static int cb_put_user(void *ctx, void *txn, const risk_user *user)
{
    (void)ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(user, "user");
    NEED(user->id, "user id");
    if (user->version == 0)
        return risk_err(RISK_EINVAL, "user: version 0 (a stored user has version ≥ 1)");
    risk_user *u;
    int rc = risk_user_dup(&u, user);
    if (rc != RISK_OK)
        return rc;
    uint64_t h = hash_str(u->id);
    size_t at = map_find(&t->users, h, u->id);
    if (at != NOPE) {
        risk_user_free(t->users.s[at].val);
        t->users.s[at].val = u;
        return RISK_OK;
    }
    if ((rc = map_add(&t->users, h, u)) != RISK_OK)
        risk_user_free(u);
    return rc;
}

static int cb_put_event(void *ctx, void *txn, const risk_event *event)
{
    (void)ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(event, "event");
    NEED(event->id, "event id");
    NEED(event->user_id, "event user_id");
    evnode *n = evnode_new(event);
    if (n == NULL)
        return RISK_ENOMEM;
    uint64_t h = hash_str(n->ev.id);
    size_t at = map_find(&t->events, h, n->ev.id);
    if (at != NOPE) {
        risk_free(t->events.s[at].val);
        t->events.s[at].val = n;
        return RISK_OK;
    }
    int rc = map_add(&t->events, h, n);
    if (rc != RISK_OK)
        risk_free(n);
    return rc;
}

/* Buffer a policy write (p owned, NULL = removal) under name. */
static int buffer_policy(mtxn *t, const char *name, risk_policy *p)
{
    uint64_t h = hash_str(name);
    pnode *n = map_get(&t->policies, h, name);
    if (n != NULL) {
        risk_policy_free(n->p);
        n->p = p;
        n->must_exist = 0; /* put then remove: the removal is of our own put */
        return RISK_OK;
    }
    size_t len = strlen(name);
    if ((n = risk_malloc(sizeof *n + len + 1)) == NULL)
        return ms_nomem();
    n->p = p;
    n->must_exist = p == NULL;
    memcpy(n->name, name, len + 1);
    if (map_add(&t->policies, h, n) != RISK_OK) {
        risk_free(n);
        return ms_nomem();
    }
    return RISK_OK;
}

static int cb_put_policy(void *ctx, void *txn, const risk_policy *policy)
{
    (void)ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(policy, "policy");
    NEED(policy->name, "policy name");
    risk_policy *p;
    int rc = risk_policy_dup(&p, policy);
    if (rc != RISK_OK)
        return rc;
    if ((rc = buffer_policy(t, p->name, p)) != RISK_OK)
        risk_policy_free(p);
    return rc;
}

static int cb_remove_policy(void *ctx, void *txn, const char *name)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(name, "name");
    uint64_t h = hash_str(name);
    pnode *n = map_get(&t->policies, h, name);
    int exists;
    if (n != NULL) {
        exists = n->p != NULL;
    } else {
        unsigned k_ = ms_stripe();
        ms_rdlock(ms, k_);
        exists = map_find(&ms->policies, h, name) != NOPE;
        ms_rdunlock(ms, k_);
    }
    if (!exists)
        return risk_err(RISK_ENOTFOUND, "name: no policy '%s'", name);
    return buffer_policy(t, name, NULL);
}

static int check_meta_key(const char *key)
{
    NEED(key, "key");
    size_t n = strlen(key);
    if (n == 0 || n > RISK_ID_MAX)
        return risk_err(RISK_EINVAL, "key: length %zu, expected 1 to %d bytes", n, RISK_ID_MAX);
    return RISK_OK;
}

static int cb_put_meta(void *ctx, void *txn, const char *key, const uint8_t *buf, size_t len)
{
    (void)ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    int rc = check_meta_key(key);
    if (rc != RISK_OK)
        return rc;
    if (len > META_MAX)
        return risk_err(RISK_EINVAL, "len: %zu bytes, at most %d", len, META_MAX);
    if (buf == NULL && len != 0)
        return risk_err(RISK_EINVAL, "buf: NULL with len %zu", len);
    uint64_t h = hash_str(key);
    metanode *n = map_get(&t->meta, h, key);
    if (n == NULL) {
        size_t kl = strlen(key);
        if ((n = risk_malloc(sizeof *n + kl + 1)) == NULL)
            return ms_nomem();
        memcpy(n->key, key, kl + 1);
        if (map_add(&t->meta, h, n) != RISK_OK) {
            risk_free(n);
            return ms_nomem();
        }
    }
    n->len = len;
    if (len)
        memcpy(n->val, buf, len);
    return RISK_OK;
}

static int cb_reserve_seq(void *ctx, void *txn, uint64_t *seq)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(seq, "seq");
    if (!t->has_seq) {
        int rc = seq_acquire(ms, t);
        if (rc != RISK_OK)
            return rc;
        t->has_seq = 1;
    }
    pthread_mutex_lock(&ms->seq_mu);
    *seq = ms->next_seq++;
    pthread_mutex_unlock(&ms->seq_mu);
    if (t->seq_lo == 0)
        t->seq_lo = *seq;
    t->seq_hi = *seq;
    return RISK_OK;
}

static int cb_append_history(void *ctx, void *txn, const risk_history *item)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(item, "item");
    if (!ms->keep_history)
        return RISK_OK; /* the wrapper (journal) keeps history itself */
    /* in seq order, each reserved by this txn: keeps the history sorted */
    if (!t->has_seq || item->seq < t->seq_lo || item->seq > t->seq_hi ||
        item->seq <= t->seq_appended)
        return risk_err(RISK_EINVAL, "item: seq %llu was not reserved by this transaction "
                                     "or is not after the last appended",
                        (unsigned long long)item->seq);
    if (t->n_hist == t->cap_hist) {
        size_t cap = t->cap_hist ? t->cap_hist * 2 : 4;
        hnode **v = risk_malloc(cap * sizeof *v);
        if (v == NULL)
            return ms_nomem();
        memcpy(v, t->hist, t->n_hist * sizeof *v);
        if (t->hist != t->inl_hist)
            risk_free(t->hist);
        t->hist = v;
        t->cap_hist = cap;
    }
    hnode *n = hnode_new(item);
    if (n == NULL)
        return RISK_ENOMEM;
    t->hist[t->n_hist++] = n;
    t->seq_appended = item->seq;
    return RISK_OK;
}

/* ---- reads: committed state overlaid by the txn's own writes ---- */
static int cb_get_user(void *ctx, void *txn, const char *id, risk_user **out)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(id, "id");
    NEED(out, "out");
    uint64_t h = hash_str(id);
    const risk_user *u = t ? map_get(&t->users, h, id) : NULL;
    if (u != NULL)
        return risk_user_dup(out, u);
    unsigned k_ = ms_stripe();
    ms_rdlock(ms, k_);
    const subject *s = map_get(&ms->users, h, id);
    risk_user copy; /* duplicated outside the lock; its id (the subject's) lives until close */
    int found = s && s->has_user;
    if (found)
        copy = s->u;
    ms_rdunlock(ms, k_);
    /* not found is an expected answer on the ingest path: no message */
    return found ? risk_user_dup(out, &copy) : RISK_ENOTFOUND;
}

static int cb_view_user(void *ctx, const char *id, risk_user_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    NEED(id, "id");
    NEED(fn, "fn");
    uint64_t h = hash_str(id);
    unsigned k_ = ms_stripe();
    ms_rdlock(ms, k_);
    const subject *s = map_get(&ms->users, h, id);
    int rc = (s && s->has_user) ? fn(&s->u, arg) : RISK_ENOTFOUND;
    ms_rdunlock(ms, k_);
    return rc;
}

static int cb_get_event(void *ctx, void *txn, const char *id, risk_event **out)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(id, "id");
    NEED(out, "out");
    uint64_t h = hash_str(id);
    const evnode *n = t ? map_get(&t->events, h, id) : NULL;
    if (n != NULL)
        return evnode_dup(out, n);
    unsigned k_ = ms_stripe();
    ms_rdlock(ms, k_);
    n = map_get(&ms->events, h, id);
    int rc = n ? evnode_dup(out, n) : RISK_ENOTFOUND;
    ms_rdunlock(ms, k_);
    return rc;
}

static int cb_user_events(void *ctx, void *txn, const char *user_id, risk_event_visit_fn fn,
                          void *arg)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(user_id, "user_id");
    NEED(fn, "fn");
    int rc = 0;
    int overlay = t && t->events.count;
    unsigned k_ = ms_stripe();
    ms_rdlock(ms, k_);
    const subject *s = map_get(&ms->users, hash_str(user_id), user_id);
    for (const evnode *n = s ? s->ev_head : NULL; n && rc == 0; n = n->next)
        if (!overlay || map_find(&t->events, hash_str(n->ev.id), n->ev.id) == NOPE)
            rc = fn(&n->ev, arg);
    ms_rdunlock(ms, k_);
    if (overlay)
        MAP_EACH(&t->events, i) {
            const evnode *n = t->events.s[i].val;
            if (rc == 0 && strcmp(n->ev.user_id, user_id) == 0)
                rc = fn(&n->ev, arg);
        }
    return rc;
}

static int cb_list_policies(void *ctx, void *txn, risk_policy_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(fn, "fn");
    int rc = 0;
    int overlay = t && t->policies.count;
    unsigned k_ = ms_stripe();
    ms_rdlock(ms, k_);
    MAP_EACH(&ms->policies, i) {
        const risk_policy *p = ms->policies.s[i].val;
        if (rc == 0 && (!overlay || map_find(&t->policies, ms->policies.s[i].hash, p->name) == NOPE))
            rc = fn(p, arg);
    }
    ms_rdunlock(ms, k_);
    if (overlay)
        MAP_EACH(&t->policies, i) {
            const pnode *n = t->policies.s[i].val;
            if (rc == 0 && n->p)
                rc = fn(n->p, arg);
        }
    return rc;
}

static int cb_get_meta(void *ctx, void *txn, const char *key, uint8_t *buf, size_t cap,
                       size_t *len)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    int rc = check_meta_key(key);
    if (rc != RISK_OK)
        return rc;
    NEED(len, "len");
    if (buf == NULL && cap != 0)
        return risk_err(RISK_EINVAL, "buf: NULL with cap %zu", cap);
    uint64_t h = hash_str(key);
    const metanode *n = t ? map_get(&t->meta, h, key) : NULL;
    int locked = n == NULL;
    unsigned k_ = ms_stripe();
    if (locked) {
        ms_rdlock(ms, k_);
        n = map_get(&ms->meta, h, key);
    }
    if (n == NULL) {
        rc = RISK_ENOTFOUND;
    } else {
        *len = n->len;
        if (cap < n->len)
            rc = risk_err(RISK_ERANGE, "cap: %zu bytes, the value has %zu", cap, n->len);
        else if (n->len)
            memcpy(buf, n->val, n->len);
    }
    if (locked)
        ms_rdunlock(ms, k_);
    return rc;
}

/* Committed users ≥ min_level, copied under the read lock and visited
 * without it, so fn may run operations on this store. */
static int cb_list_users(void *ctx, risk_level min_level, risk_user_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    NEED(fn, "fn");
    if ((uint32_t)min_level >= N_LEVELS)
        return risk_err(RISK_EINVAL, "min_level: value %u out of range", (unsigned)min_level);
    unsigned k_ = ms_stripe();
    ms_rdlock(ms, k_);
    size_t n = 0, k = 0;
    for (uint32_t l = min_level; l < N_LEVELS; l++)
        n += ms->level_n[l];
    risk_user **v = risk_malloc(n * sizeof *v);
    int rc = v ? RISK_OK : ms_nomem();
    for (uint32_t l = N_LEVELS; rc == RISK_OK && l-- > (uint32_t)min_level;)
        for (const subject *s = ms->levels[l]; s && rc == RISK_OK; s = s->lnext)
            if ((rc = risk_user_dup(&v[k], &s->u)) == RISK_OK)
                k++;
    ms_rdunlock(ms, k_);
    for (size_t i = 0; i < k && rc == RISK_OK; i++)
        rc = fn(v[i], arg);
    for (size_t i = 0; i < k; i++)
        risk_user_free(v[i]);
    risk_free(v);
    return rc;
}

/* History items are never freed before close, so pointers copied under the
 * lock stay valid; fn runs without the lock, CHUNK items at a time. */
static int cb_read_history(void *ctx, const char *user_id, uint64_t since_seq,
                           risk_history_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    NEED(fn, "fn");
    hnode *buf[CHUNK];
    hnode *cur = NULL;
    size_t pos = 0;
    int started = 0, rc = 0;
    for (;;) {
        size_t n = 0;
        unsigned k_ = ms_stripe();
        ms_rdlock(ms, k_);
        if (user_id == NULL) {
            if (!started) { /* first item with seq ≥ since_seq */
                size_t lo = 0, hi = ms->n_hist;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (ms->hist[mid]->item.seq < since_seq)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                pos = lo;
            }
            while (pos < ms->n_hist && n < CHUNK)
                buf[n++] = ms->hist[pos++];
        } else {
            if (!started) {
                const subject *s = map_get(&ms->users, hash_str(user_id), user_id);
                cur = s ? s->h_head : NULL;
            }
            for (; cur && n < CHUNK; cur = cur->next)
                if (cur->item.seq >= since_seq)
                    buf[n++] = cur;
        }
        started = 1;
        ms_rdunlock(ms, k_);
        if (n == 0)
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((rc = fn(&buf[i]->item, arg)) != 0)
                return rc;
    }
}

/* ---- the callback table ---- */
static void cb_close(void *ctx) { risk_memstore_free(ctx); }

void risk_memstore_table(risk_memstore *ms, risk_store *out)
{
    memset(out, 0, sizeof *out);
    out->version = RISK_STORE_VERSION;
    out->ctx = ms;
    out->begin = cb_begin;
    out->commit = cb_commit;
    out->rollback = cb_rollback;
    out->get_user = cb_get_user;
    out->put_user = cb_put_user;
    out->get_event = cb_get_event;
    out->put_event = cb_put_event;
    out->user_events = cb_user_events;
    out->reserve_seq = cb_reserve_seq;
    out->append_history = cb_append_history;
    out->list_policies = cb_list_policies;
    out->put_policy = cb_put_policy;
    out->remove_policy = cb_remove_policy;
    out->get_meta = cb_get_meta;
    out->put_meta = cb_put_meta;
    out->close = cb_close;
    out->view_user = cb_view_user;
    out->list_users = cb_list_users;
    out->read_history = ms->keep_history ? cb_read_history : NULL;
    /* compact, backup: nothing to compact, nothing durable to copy */
}

int risk_memory_store_new(risk_store *out)
{
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    risk_memstore *ms;
    int rc = risk_memstore_new(&ms, 1);
    if (rc != RISK_OK)
        return rc;
    risk_memstore_table(ms, out);
    return RISK_OK;
}
