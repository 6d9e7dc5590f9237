/* The in-memory store (R-ST-5): a risk_store callback table like any host's.
 *
 * Layout. Committed state lives in open-addressing hash maps (linear
 * probing, power-of-two tables, backward-shift deletion, no tombstones):
 * users by id, policies by name, meta by key; events by id in a table of
 * tagged slot groups (lib/store_memory_events.c says why). A user id maps
 * to a "subject" that embeds the committed user (absent until the first
 * put), a list of the user's events (user_events is O(that user's
 * events)), the user's history items, and its place in one of four
 * per-level lists (list_users ≥ high touches only high users).
 *
 * Memory (issue #9: a million events and history items). Records are kept
 * compact and risk_event / risk_history views are built when a callback
 * hands one out (visitors get a view valid during the call):
 * - an event node holds its times, enums, ip and note; its user id is the
 *   owner subject's, its id lives in the store's append-only arena, and
 *   type, location, source and closed_by are interned: a store-owned
 *   table keeps one copy of each distinct string until close (there are a
 *   handful of detection types, sources, locations and actors);
 * - event nodes are carved from the arena too, with free lists by size
 *   for nodes that a new version replaces;
 * - a history item lives in the arena (items are never freed before
 *   close): subject pointer, interned actor, the event id shared with the
 *   event, the note and policy, the chain; a seq-indexed array finds the
 *   item of a seq (lib/store_memory_hist.c).
 * Measured with tools/bench/risk-bench (100,000 users, 1,000,000 events):
 * peak RSS 605 MiB → 273 MiB.
 *
 * Transactions copy every write into a scratch buffer of their own (the
 * inline part holds an ingest: no allocation), in small private maps;
 * reads overlay them on the committed state (read-your-writes). Finished
 * txns are kept for reuse, so an ingest or a dismiss-all allocates
 * nothing (but a new arena chunk every megabyte). Commit is two-phase so
 * the journal can log between the phases:
 *   prepare: under the write lock version checks (R-ST-6), claims on the
 *     users it writes, interning (a per-txn guess cache makes a known
 *     string one strcmp), event nodes and history items in the arena,
 *     every map reservation apply needs. May fail; then nothing changed:
 *     interned strings, arena bytes and nodes it took are given back (so
 *     are those of a txn prepared then rolled back, unless another
 *     prepared after it).
 *   apply (write lock): pointer moves and copies only, cannot fail. A
 *     closed event that fits its node is rewritten in place.
 * The table's commit runs both phases under one hold of the write lock.
 * Several transactions may sit between prepare and apply at once (group
 * commit): map reservations are counted, and a user claimed by one prepared
 * transaction makes another's prepare fail with RISK_ECONFLICT.
 *
 * Files: this one has the transactions (scratch, prepare, apply, commit,
 * rollback); lib/store_memory_ops.c the callbacks that buffer writes and
 * read, and the table; lib/store_memory_map.c maps, arena, interning,
 * subjects, lifetime, loading; lib/store_memory_events.c event nodes;
 * lib/store_memory_hist.c the sequencer and history items.
 *
 * History sequence numbers: lib/store_memory_hist.c (the memory store's
 * writers do not wait for each other's commits; the journal's do).
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

/* ---- scratch: buffered writes, freed with the txn ---- */
void *sc_alloc(mtxn *t, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n > t->sc_left) {
        size_t cap = n > 4096 ? n : 4096;
        schunk *c = risk_malloc(sizeof *c + cap);
        if (c == NULL) {
            ms_nomem();
            return NULL;
        }
        c->next = t->sc_more;
        t->sc_more = c;
        t->sc_at = c->mem;
        t->sc_left = cap;
    }
    void *p = t->sc_at;
    t->sc_at += n;
    t->sc_left -= n;
    return p;
}

char *sc_str(mtxn *t, const char *s, int *ok)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = sc_alloc(t, n);
    if (d == NULL) {
        *ok = 0;
        return NULL;
    }
    return memcpy(d, s, n);
}

/* ---- txn objects: finished ones are kept for reuse ---- */
static _Thread_local unsigned spare_mine;
static atomic_uint spare_next;

static unsigned spare_slot(void)
{
    if (spare_mine == 0)
        spare_mine = 1 + atomic_fetch_add_explicit(&spare_next, 1, memory_order_relaxed);
    return spare_mine;
}

static void txn_init(mtxn *t, risk_memstore *ms)
{
    t->ms = ms;
    memset(t->inl_users, 0, sizeof t->inl_users);
    memset(t->inl_events, 0, sizeof t->inl_events);
    t->users = (map){.s = t->inl_users, .inl = t->inl_users, .cap = TXN_INLINE_SLOTS,
                     .key = user_key};
    t->events = (map){.s = t->inl_events, .inl = t->inl_events, .cap = TXN_INLINE_SLOTS,
                      .key = event_key};
    t->policies = (map){.key = pnode_key};
    t->meta = (map){.key = meta_key};
    t->hist = t->inl_hist;
    t->n_hist = 0;
    t->cap_hist = TXN_INLINE_HIST;
    t->has_seq = t->prepared = 0;
    t->seq_lo = t->seq_hi = t->seq_appended = 0;
    t->p_prev = t->p_next = NULL;
    t->subs = NULL;
    t->n_subs = 0;
    t->nodes = NULL;
    t->items = NULL;
    t->res_policies = t->res_meta = t->res_events = 0;
    t->sc_at = t->sc_inl;
    t->sc_left = TXN_SCRATCH;
    t->sc_more = NULL;
    t->seen_subj = NULL;
    t->n_seen = 0;
}

mtxn *txn_new(void)
{
    mtxn *t = risk_malloc(sizeof *t);
    if (t != NULL)
        memset(t->icache, 0, sizeof t->icache); /* the rest: txn_init */
    return t;
}

int ms_begin(void *ctx, const char *user_id, void **txn)
{
    risk_memstore *ms = ctx;
    /* per-user serialisation is the engine's; writes are buffered */
    if (txn == NULL)
        return risk_err(RISK_EINVAL, "txn: NULL");
    mtxn *t = NULL;
    unsigned k = spare_slot();
    for (unsigned j = 0; j < N_SPARE_TXNS && t == NULL; j++)
        t = atomic_exchange_explicit(&ms->spare[(k + j) % N_SPARE_TXNS].t, NULL,
                                     memory_order_acquire);
    if (t == NULL && (t = txn_new()) == NULL)
        return ms_nomem();
    txn_init(t, ms);
    t->has_uid_h = user_id != NULL;
    t->uid_h = user_id ? hash_str(user_id) : 0;
    *txn = t;
    return RISK_OK;
}

/* Free the txn's containers (not the values they point to) and park it. */
static void txn_free_shells(mtxn *t)
{
    risk_memstore *ms = t->ms;
    map_free(&t->users);
    map_free(&t->events);
    map_free(&t->policies);
    map_free(&t->meta);
    if (t->hist != t->inl_hist)
        risk_free(t->hist);
    if (t->subs != t->inl_subs)
        risk_free(t->subs);
    for (schunk *c = t->sc_more, *n; c != NULL; c = n) {
        n = c->next;
        risk_free(c);
    }
    unsigned k = spare_slot();
    for (unsigned j = 0; j < N_SPARE_TXNS; j++) {
        _Atomic(mtxn *) *slot_ = &ms->spare[(k + j) % N_SPARE_TXNS].t;
        mtxn *none = NULL;
        if (atomic_compare_exchange_strong_explicit(slot_, &none, t, memory_order_release,
                                                    memory_order_relaxed))
            return;
    }
    risk_free(t);
}

static inline evnode *node_at(const mtxn *t, size_t i)
{
    return (evnode *)(t->nodes[i] & ~(uintptr_t)1);
}

/* Give back the nodes prepare took (write lock): all of them, or all but
 * the arena's when the arena is restored after (those vanish with it). */
static void give_nodes(risk_memstore *ms, mtxn *t, int keep_arena_ones)
{
    if (t->nodes == NULL)
        return;
    MAP_EACH(&t->events, i) {
        evnode *n = node_at(t, i);
        if (n == NULL)
            continue;
        int from_arena = !(t->nodes[i] & 1) && ev_size(n->ip_len, n->note_len) <= SLAB_MAX;
        if (!(keep_arena_ones && from_arena))
            ev_give(ms, n);
    }
    t->nodes = NULL; /* scratch */
}

/* Free every buffered write and the txn itself. */
static void txn_discard(mtxn *t)
{
    /* users, events and history items live in the scratch; prepared
     * nodes were given back by rollback */
    MAP_EACH(&t->policies, i) {
        pnode *p = t->policies.s[i].val;
        risk_policy_free(p->p);
        risk_free(p);
    }
    MAP_EACH(&t->meta, i)
        risk_free(t->meta.s[i].val);
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
            size_t at = map_find(&ms->users, hash_str(s->u.id), s->u.id);
            if (at != NOPE)
                map_remove_at(&ms->users, at);
            subject_free(s);
        }
    }
    t->n_subs = 0;
}

static void release_reservations(risk_memstore *ms, mtxn *t)
{
    ms->policies.reserved -= t->res_policies;
    ms->meta.reserved -= t->res_meta;
    ms->events.reserved -= t->res_events;
    t->res_policies = t->res_meta = t->res_events = 0;
}

/* Find or create (and pin) the subject of id, whose hash is *h if known;
 * write lock held. A txn's references are mostly to one user: the last
 * pinned is tried first, without hashing. */
static int pin(risk_memstore *ms, mtxn *t, const uint64_t *h, const char *id)
{
    subject *s = t->n_subs && strcmp(t->subs[t->n_subs - 1]->u.id, id) == 0
                     ? t->subs[t->n_subs - 1]
                     : subject_get(ms, h ? *h : hash_str(id), id);
    if (s == NULL)
        return RISK_ENOMEM;
    s->pins++;
    t->subs[t->n_subs++] = s;
    return RISK_OK;
}

/* After the users were pinned (t->subs in the users' map order). */
static int check_versions(mtxn *t)
{
    size_t k = 0;
    MAP_EACH(&t->users, i) {
        const risk_user *u = t->users.s[i].val;
        const subject *s = t->subs[k++];
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
    int rc = RISK_OK;
    MAP_EACH(&t->users, i)
        if ((rc = pin(ms, t, &t->users.s[i].hash, user_key(t->users.s[i].val))) != RISK_OK)
            return rc;
    if ((rc = check_versions(t)) != RISK_OK)
        return rc;
    /* apply links each user at the head of its level's list, whose first
     * subject is the user last written at that level, often by another
     * thread (its line on the other core): fetched now, while the rest of
     * prepare runs, not when apply stalls on it (a hint only) */
    MAP_EACH(&t->users, i) {
        const risk_user *u = t->users.s[i].val;
        __builtin_prefetch(ms->levels[u->level < N_LEVELS ? u->level : 0], 1);
    }
    /* a removal seen at remove_policy time may have been committed since by
     * another transaction: the second of two removals must not commit too */
    MAP_EACH(&t->policies, i) {
        const pnode *pn = t->policies.s[i].val;
        if (pn->must_exist && map_find(&ms->policies, t->policies.s[i].hash, pn->name) == NOPE)
            return risk_err(RISK_ENOTFOUND, "name: policy '%s' was removed by another "
                                            "transaction", pn->name);
    }
    MAP_EACH(&t->events, i) {
        const char *uid = ((const risk_event *)t->events.s[i].val)->user_id;
        if ((rc = pin(ms, t, NULL, uid)) != RISK_OK)
            return rc;
    }
    size_t first_hist_sub = t->n_subs;
    for (size_t i = 0; i < t->n_hist; i++) {
        const char *uid = t->hist[i]->user_id;
        if (uid && (rc = pin(ms, t, NULL, uid)) != RISK_OK)
            return rc;
    }
    /* events: the stored nodes (interned strings, stable ids); the nodes
     * they replace, known from the txn's read while it is current */
    int seen_ok = t->seen_subj != NULL && t->seen_subj->ev_moves == t->seen_moves;
    size_t k = 0;
    MAP_EACH(&t->events, i) {
        bufev *b = t->events.s[i].val;
        const risk_event *e = &b->e;
        b->old = seen_ok && b->seen ? b->seen
                                    : etab_get(&ms->events, t->events.s[i].hash, e->id);
        evnode *n;
        int popped;
        if ((rc = ev_make(ms, e, t->icache, b->old ? b->old->id : NULL, &n, &popped)) !=
            RISK_OK)
            return rc;
        t->nodes[i] = (uintptr_t)n | (uintptr_t)popped;
        k += b->old == NULL;
    }
    if ((rc = etab_reserve(&ms->events, k)) != RISK_OK)
        return rc;
    t->res_events = k;
    if ((rc = hist_prepare(ms, t, first_hist_sub)) != RISK_OK)
        return rc;
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

/* Prepare's allocations outside the lock: one subject slot per
 * reference, the node and history item pointers. */
static int alloc_prepared(mtxn *t)
{
    size_t refs = t->users.count + t->events.count + t->n_hist;
    if (refs <= TXN_INLINE_SUBS)
        t->subs = t->inl_subs;
    else if ((t->subs = risk_malloc(refs * sizeof *t->subs)) == NULL)
        return ms_nomem();
    if (t->n_hist && (t->items = sc_alloc(t, t->n_hist * sizeof *t->items)) == NULL)
        return RISK_ENOMEM;
    if (t->events.count) {
        if ((t->nodes = sc_alloc(t, t->events.cap * sizeof *t->nodes)) == NULL)
            return RISK_ENOMEM;
        memset(t->nodes, 0, t->events.cap * sizeof *t->nodes);
    }
    return RISK_OK;
}

static void free_prepared(mtxn *t)
{
    t->nodes = NULL;
    if (t->subs != t->inl_subs)
        risk_free(t->subs);
    t->subs = NULL;
}

/* Prepare under the write lock; a failure undoes everything visible. */
static int prepare_now(risk_memstore *ms, mtxn *t)
{
    t->amark = arena_save(&ms->ar);
    t->imark = ms->n_istr;
    int rc = prepare_locked(ms, t);
    if (rc != RISK_OK) {
        give_nodes(ms, t, 1); /* the arena's go with the restore */
        arena_restore(&ms->ar, t->amark);
        intern_restore(ms, t->imark);
        release_reservations(ms, t);
        unpin_all(ms, t);
        return rc;
    }
    t->gen = ++ms->prep_gen;
    return RISK_OK;
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
        if ((rc = alloc_prepared(t)) != RISK_OK)
            return rc;
        ms_wrlock(ms);
        rc = prepare_now(ms, t);
        ms_wrunlock(ms);
    }
    if (rc != RISK_OK) {
        free_prepared(t);
        return rc;
    }
    t->prepared = 1;
    return RISK_OK;
}

/* Publish a prepared txn; pointer moves, copies and frees only. Write lock
 * held; same_hold: since prepare (the nodes it found stay current). */
static void apply_locked(risk_memstore *ms, mtxn *t, int same_hold)
{
    size_t k = 0; /* t->subs is in the order prepare_locked pinned */
    release_reservations(ms, t); /* apply inserts at most what was reserved */
    MAP_EACH(&t->users, i) {
        subject *s = t->subs[k++];
        const risk_user *bu = t->users.s[i].val;
        if (s->has_user)
            level_unlink(ms, s);
        char *id = s->u.id;
        s->u = *bu;
        s->u.id = id;
        s->has_user = 1;
        level_link(ms, s);
    }
    MAP_EACH(&t->events, i) {
        evnode *n = node_at(t, i);
        n->owner = t->subs[k++];
        ev_install(ms, t->events.s[i].hash, n,
                   same_hold ? ((bufev *)t->events.s[i].val)->old : NULL);
    }
    t->nodes = NULL; /* installed (or given back) */
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
    hist_apply(ms, t);
    unpin_all(ms, t);
}

/* After apply: the buffered values belong to the store; free the shells. */
static void txn_finish(risk_memstore *ms, mtxn *t)
{
    seq_done(ms, t);
    txn_free_shells(t);
}

void risk_memstore_apply(risk_memstore *ms, void *txn)
{
    mtxn *t = txn;
    if (txn_writes(t)) {
        ms_wrlock(ms);
        apply_locked(ms, t, 0);
        ms_wrunlock(ms);
    }
    txn_finish(ms, t);
}

void ms_rollback(void *ctx, void *txn)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    if (t == NULL)
        return;
    if (t->prepared && txn_writes(t)) {
        ms_wrlock(ms);
        if (t->gen == ms->prep_gen) { /* nothing prepared since can use them */
            give_nodes(ms, t, 1);
            arena_restore(&ms->ar, t->amark);
            intern_restore(ms, t->imark);
        } else {
            give_nodes(ms, t, 0);
        }
        release_reservations(ms, t);
        unpin_all(ms, t);
        ms_wrunlock(ms);
    }
    seq_done(ms, t);
    txn_discard(t);
}

/* prepare + apply under one hold of the write lock (the journal needs the
 * two phases apart; the plain memory store does not). */
int ms_commit(void *ctx, void *txn)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    if (t == NULL || t->ms != ms || t->prepared) {
        if (t != NULL && t->ms == ms)
            ms_rollback(ctx, txn);
        return risk_err(RISK_EINVAL, "txn: not an open transaction of this store");
    }
    int rc = RISK_OK;
    if (txn_writes(t) && (rc = alloc_prepared(t)) == RISK_OK) {
        ms_wrlock(ms);
        if ((rc = prepare_now(ms, t)) == RISK_OK)
            apply_locked(ms, t, 1);
        ms_wrunlock(ms);
        if (rc != RISK_OK)
            free_prepared(t);
    }
    if (rc != RISK_OK) {
        ms_rollback(ctx, txn); /* the engine does not roll back a failed commit */
        return rc;
    }
    txn_finish(ms, t);
    return RISK_OK;
}
