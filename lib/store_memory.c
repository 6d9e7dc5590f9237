/* The in-memory store (R-ST-5): a risk_store callback table like any host's.
 *
 * Layout. Committed state lives in open-addressing hash maps (linear
 * probing, power-of-two tables, backward-shift deletion, no tombstones):
 * users by id (a slot is a cache line that also holds a short id and
 * what a sign-in reads: lib/memstore.h), policies by name, meta by key;
 * events by id in a table of tagged slot groups (lib/store_memory_events.c
 * says why). A user id maps
 * to a "subject" that embeds the committed user (absent until the first
 * put), an array of the user's event nodes (user_events is O(that user's
 * events), and fetches every node at once rather than following a chain
 * of misses), the user's history items, and its place in one of four
 * per-level lists (list_users ≥ high touches only high users).
 *
 * Shards (R-CC-1: operations on different users run in parallel, issue
 * #9: two threads on disjoint users went at 0.68x one thread behind one
 * store-wide lock). The committed state is split by hash, each part under
 * its own reader-writer lock:
 * - 256 user shards (top bits of the user id's hash): the users map and
 *   the level lists;
 * - 256 events shards (bits 8.. of the event id's hash): the events table;
 * - the global shard: policies, meta;
 * - a home per committing thread: the arena and free lists its prepares
 *   take memory from (two threads never append to the same arena tail);
 * - the interned strings (lib/store_memory_intern.c) and the history index
 *   by seq (lib/store_memory_hist.c) take no lock to read: pages that
 *   never move, entries published before use.
 * A txn takes the locks of what it touches, in one order (global, user
 * shards, events shards): its users' and its events' owners' shards, and
 * the events shard of an event it inserts or looks up; a closing of an
 * event its own read saw (dismiss-all) rewrites the node in place under
 * the owner's lock alone. What else it needs shows under the first locks
 * (an old node owned by another user, a read node that no longer fits) and
 * is added, in order or by letting go and starting again. Two threads on
 * disjoint users thus share a lock only when their users or events hash
 * to the same shard (1 in 256).
 *
 * Memory (issue #9: a million events and history items). Records are kept
 * compact and risk_event / risk_history views are built when a callback
 * hands one out (visitors get a view valid during the call):
 * - an event node holds its times, enums, ip and note and its id's hash
 *   (a table that grows moves it without reading the id); its user id is
 *   the owner subject's, its id lives in an append-only arena, and type,
 *   location, source and closed_by are interned: a store-owned table keeps
 *   one copy of each distinct string until close (there are a handful of
 *   detection types, sources, locations and actors);
 * - event nodes are carved from the arenas too, with free lists by size
 *   for nodes that a new version replaces;
 * - a history item lives in an arena (items are never freed before
 *   close): subject pointer, interned actor, the event id shared with the
 *   event, the note and policy, the chain; a seq-indexed directory of
 *   pages finds the item of a seq (lib/store_memory_hist.c).
 * Measured with tools/bench/risk-bench (100,000 users, 1,000,000 events):
 * peak RSS 605 MiB → 273 MiB, then 264 MiB with 64-byte event nodes.
 *
 * Transactions copy every write into a scratch buffer of their own (the
 * inline part holds an ingest: no allocation), in small private maps;
 * reads overlay them on the committed state (read-your-writes). Finished
 * txns are kept for reuse, so an ingest or a dismiss-all allocates
 * nothing (but a new arena chunk now and then). Commit is two-phase so the
 * journal can log between the phases:
 *   prepare: under the txn's locks version checks (R-ST-6), claims on the
 *     users it writes, interning (a per-txn guess cache makes a known
 *     string one strcmp), event nodes and history items in its thread's
 *     home's arena, every map reservation apply needs. May fail; then
 *     nothing changed: strings it added, arena bytes and nodes it took are
 *     given back (so are those of a txn prepared then rolled back; its
 *     arena bytes unless its thread prepared again since).
 *   apply (the txn's locks): pointer moves and copies only, cannot fail. A
 *     closed event that fits its node is rewritten in place.
 * The table's commit runs both phases under one hold of the locks.
 * Several transactions may sit between prepare and apply at once (group
 * commit): map reservations are counted, and a user claimed by one prepared
 * transaction makes another's prepare fail with RISK_ECONFLICT.
 *
 * Files: this one has the transactions (scratch, prepare, apply, commit,
 * rollback) and which locks they take; lib/store_memory_ops.c the
 * callbacks that buffer writes and read, and the table;
 * lib/store_memory_map.c maps, arenas and homes, subjects, the locks and
 * lock sets, lifetime, loading; lib/store_memory_events.c event nodes and their table;
 * lib/store_memory_intern.c interned strings; lib/store_memory_hist.c the
 * sequencer and history items.
 *
 * History sequence numbers: lib/store_memory_hist.c (the memory store's
 * writers do not wait for each other's commits; the journal's do).
 *
 * Readers take the read lock of the shard they read (get_event: the events
 * shard, then the owner's shard for the node's contents, taken in order).
 * Callbacks given to view_user, user_events, list_policies and
 * risk_memstore_each_* run under a read lock: they must not commit to this
 * store (deadlock); they may read it (glibc's default rwlock lets a reader
 * re-enter, and prefers readers: a reader never waits for a writer that
 * waits, and writers never wait while they hold a lock, so readers that
 * hold one lock and take another cannot deadlock; ThreadSanitizer's lock
 * order check cannot see that and reports a visitor that takes a lock
 * before one it holds, so the store's own code takes them in order).
 * list_users and read_history call fn without a lock (they copy first),
 * so a visitor may run whole operations on the store. */
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
    t->users = (map){.s = t->inl_users, .inl = t->inl_users, .cap = TXN_INLINE_USERS,
                     .key = user_key};
    t->events = (map){.s = t->inl_events, .inl = t->inl_events, .cap = TXN_INLINE_SLOTS,
                      .key = event_key};
    t->policies = (map){.key = pnode_key};
    t->meta = (map){.key = meta_key};
    t->usl = t->inl_usl;
    t->evl = t->inl_evl;
    t->n_usl = t->n_evl = 0;
    t->cap_usl = TXN_INLINE_USERS;
    t->cap_evl = TXN_INLINE_SLOTS;
    t->hist = t->inl_hist;
    t->n_hist = 0;
    t->cap_hist = TXN_INLINE_HIST;
    t->has_seq = t->prepared = 0;
    t->seq_lo = t->seq_hi = t->seq_appended = 0;
    t->p_prev = t->p_next = NULL;
    t->subs = NULL;
    t->n_subs = 0;
    t->has_nodes = 0;
    t->items = NULL;
    t->res_policies = t->res_meta = 0;
    t->held.n = 0;
    t->hm = NULL;
    t->inew = NULL;
    t->sc_at = t->sc_inl;
    t->sc_left = TXN_SCRATCH;
    t->sc_more = NULL;
    t->seen_subj = NULL;
    t->n_seen = 0;
    t->absent = NULL;
    t->mreads = NULL;
    t->meta_pending = 0;
    t->memo_id = NULL;
}

/* Aligned to a cache line (mtxn.seq_lo), in memory from the allocator. */
mtxn *txn_new(void)
{
    void *mem = risk_malloc(sizeof(mtxn) + 63);
    if (mem == NULL)
        return NULL;
    mtxn *t = (mtxn *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    t->mem = mem;
    memset(t->icache, 0, sizeof t->icache); /* the rest: txn_init */
    return t;
}

void txn_free(mtxn *t)
{
    if (t != NULL)
        risk_free(t->mem);
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
    txn_free(t);
}

static inline evnode *node_of(const bufev *b)
{
    return (evnode *)(b->node & ~(uintptr_t)1);
}

/* Give back the nodes prepare took (its locks held): all of them, or all
 * but the arena's when the arena is restored after (those vanish with it). */
static void give_nodes(mtxn *t, int keep_arena_ones)
{
    if (!t->has_nodes)
        return;
    for (uint32_t i = 0; i < t->n_evl; i++) {
        bufev *b = t->evl[i];
        evnode *n = node_of(b);
        int popped = b->node & 1;
        b->node = 0;
        if (n == NULL)
            continue;
        int from_arena = !popped && ev_size(n->ip_len, n->note_len) <= SLAB_MAX;
        if (!(keep_arena_ones && from_arena))
            ev_give(t->hm, n);
    }
    t->has_nodes = 0;
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
    return !s->has_user && s->n_ev == 0 && s->ev_res == 0 && s->h_head == NULL &&
           s->claim == NULL && s->pins == 0;
}

/* Drop the pins of a prepared txn; subjects it created for nothing go away. */
static void unpin_all(risk_memstore *ms, mtxn *t)
{
    if (t->meta_pending) { /* glock held: the txn writes meta */
        ms->meta_pending--;
        t->meta_pending = 0;
    }
    for (size_t i = 0; i < t->n_subs; i++) {
        subject *s = t->subs[i];
        if (s->claim == t)
            s->claim = NULL;
        s->pins--;
        if (subject_empty(s)) {
            uint64_t h = hash_str(s->u.id);
            umap_remove(&ush_of(ms, h)->users, h, s);
            subject_free(s);
        }
    }
    t->n_subs = 0;
}

/* The pend list of b's events shard (locked): a creation of b's id that
 * another txn has prepared is a conflict (pend_check); else b joins the
 * list until its apply or rollback (pend_add, pend_remove). */
static int pend_check(const pendlist *pl, const bufev *b)
{
    bufev *const *v = pl->v ? pl->v : pl->inl;
    for (uint32_t i = 0; i < pl->n; i++)
        if (v[i]->h == b->h && strcmp(v[i]->e.id, b->e.id) == 0)
            return risk_err(RISK_ECONFLICT, "memstore: event '%s' is being created by another "
                                            "transaction", b->e.id);
    return RISK_OK;
}

static int pend_add(pendlist *pl, bufev *b)
{
    bufev **v = pl->v ? pl->v : pl->inl;
    int rc = pend_check(pl, b);
    if (rc != RISK_OK)
        return rc;
    uint32_t cap = pl->v ? pl->cap : PEND_INL;
    if (pl->n == cap) { /* many at once in one shard: rare */
        bufev **nv = risk_malloc(2 * (size_t)cap * sizeof *nv);
        if (nv == NULL)
            return ms_nomem();
        memcpy(nv, v, pl->n * sizeof *nv);
        risk_free(pl->v);
        pl->v = v = nv, pl->cap = 2 * cap;
    }
    v[pl->n++] = b;
    b->pending = 1;
    return RISK_OK;
}

static void pend_remove(pendlist *pl, const bufev *b)
{
    bufev **v = pl->v ? pl->v : pl->inl;
    for (uint32_t i = 0; i < pl->n; i++)
        if (v[i] == b) {
            v[i] = v[--pl->n];
            break;
        }
    if (pl->v != NULL && pl->n <= PEND_INL) { /* back to the inline slots */
        memcpy(pl->inl, pl->v, pl->n * sizeof *pl->v);
        risk_free(pl->v);
        pl->v = NULL, pl->cap = 0;
    }
}

/* (The global shard's lock is held when there is anything to release there.) */
static void release_reservations(risk_memstore *ms, mtxn *t)
{
    if (t->res_policies)
        ms->policies.reserved -= t->res_policies;
    if (t->res_meta)
        ms->meta.reserved -= t->res_meta;
    t->res_policies = t->res_meta = 0;
    for (uint32_t i = 0; i < t->n_evl; i++) {
        bufev *b = t->evl[i];
        if (b->reserved)
            esh_of(ms, b->h)->t.reserved--;
        if (b->slot)
            ev_unreserve(b->owner, 1);
        if (b->pending)
            pend_remove(&esh_of(ms, b->h)->pend, b);
        b->reserved = b->slot = b->pending = 0;
    }
}

/* Find or create (and pin) the subject of id (hash h); its shard locked.
 * A txn's references are mostly to one user: the last pinned is tried
 * first. */
static subject *pin(risk_memstore *ms, mtxn *t, uint64_t h, const char *id)
{
    const char *last = t->n_subs ? t->subs[t->n_subs - 1]->u.id : NULL;
    subject *s = last != NULL && (last == id || strcmp(last, id) == 0)
                     ? t->subs[t->n_subs - 1]
                     : subject_get(ms, h, id);
    if (s == NULL)
        return NULL;
    s->pins++;
    t->subs[t->n_subs++] = s;
    return s;
}

/* After the users were pinned (t->subs in the users' map order). */
static int check_versions(mtxn *t)
{
    for (uint32_t i = 0; i < t->n_usl; i++) {
        const risk_user *u = &t->usl[i]->u;
        const subject *s = t->subs[i];
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

/* ---- the locks a txn takes ----
 * The global shard if it writes policies or meta or has an item without a
 * user; the shard of every user it writes, of its events' users and of
 * its items' users; the events shard of every event unless the event
 * replaces, in place, a node this txn's read saw (a closing: dismiss-all
 * takes its user's shard only); and the shard of a replaced event's owner
 * if that is another user. Which events need their shard, and which old
 * nodes have other owners, is known only under the first locks: the set
 * grows until it covers what the held locks show it needs. */
static void base_locks(mtxn *t, lockset *s, int all_events)
{
    s->n = 0;
    if (t->policies.count || t->meta.count || t->mreads)
        lk_add(s, LK_G);
    for (uint32_t i = 0; i < t->n_usl; i++)
        lk_add(s, LK_U(ush_idx(t->usl[i]->h)));
    for (uint32_t i = 0; i < t->n_evl; i++) {
        const bufev *b = t->evl[i];
        lk_add(s, LK_U(ush_idx(b->uh)));
        if (all_events || b->seen == NULL)
            lk_add(s, LK_E(esh_idx(b->h)));
    }
    for (size_t i = 0; i < t->n_hist; i++)
        lk_add(s, t->hist[i]->r.user_id ? LK_U(ush_idx(t->hist[i]->uh)) : LK_G);
}

/* What the held locks show the txn needs besides (see above); for each
 * event, whether its read node can be used (use_seen) and the node it
 * replaces (old; events whose shard is not held yet: NULL for now).
 * Returns 1 if nothing more is needed. */
static int more_locks(risk_memstore *ms, mtxn *t, const lockset *held, lockset *more,
                      int same_hold)
{
    more->n = 0;
    int seen_ok = same_hold && t->seen_subj != NULL &&
                  lk_has(held, LK_U(ush_idx(t->seen_uh))) &&
                  t->seen_subj->ev_moves == t->seen_moves;
    int enough = 1;
    for (uint32_t i = 0; i < t->n_evl; i++) {
        bufev *b = t->evl[i];
        const risk_event *e = &b->e;
        uint64_t h = b->h;
        /* its owner's subject, looked up only if a node is compared with it
         * (b->owner is prepare's: the pinned subject) */
        const subject *owner = NULL;
        b->use_seen = 0;
        if (seen_ok && b->seen != NULL) {
            /* an operation's copy points at the subject's own id: that
             * subject (one with a user is never freed before close) */
            owner = e->user_id == t->seen_subj->u.id
                        ? t->seen_subj
                        : subject_find(&ush_of(ms, b->uh)->users, b->uh, e->user_id);
            b->use_seen = owner == t->seen_subj &&
                          ev_fits(b->seen, owner, ev_size(e->ip ? strlen(e->ip) + 1 : 0,
                                                          e->note ? strlen(e->note) + 1 : 0));
        }
        b->old = b->use_seen ? b->seen : NULL;
        if (b->use_seen)
            continue;
        unsigned eid = LK_E(esh_idx(h));
        if (!lk_has(held, eid)) {
            lk_add(more, eid);
            enough = 0;
            continue;
        }
        b->old = etab_get(&esh_of(ms, h)->t, h, e->id);
        if (b->old != NULL && owner == NULL)
            owner = subject_find(&ush_of(ms, b->uh)->users, b->uh, e->user_id);
        if (b->old != NULL && b->old->owner != owner) { /* moves to another user */
            unsigned uid = LK_U(ush_idx(hash_str(b->old->owner->u.id)));
            if (!lk_has(held, uid)) {
                lk_add(more, uid);
                enough = 0;
            }
        }
    }
    return enough;
}

/* Take the txn's locks (base_locks, grown by more_locks until enough). */
static void take_locks(risk_memstore *ms, mtxn *t, lockset *held, int same_hold)
{
    base_locks(t, held, !same_hold);
    lockset_acquire(ms, held);
    lockset more;
    while (!more_locks(ms, t, held, &more, same_hold))
        lockset_extend(ms, held, &more);
}

/* The txn's locks held (take_locks, same hold). split: apply will run
 * under another hold (the journal's two phases): every event gets a node
 * and room in its owner's array (it may move meanwhile), none is written
 * in place by a patch. */
static int prepare_locked(risk_memstore *ms, mtxn *t, int split)
{
    int rc = RISK_OK;
    for (uint32_t i = 0; i < t->n_usl; i++)
        if (pin(ms, t, t->usl[i]->h, t->usl[i]->u.id) == NULL)
            return RISK_ENOMEM;
    if ((rc = check_versions(t)) != RISK_OK)
        return rc;
    /* apply links a user whose level changed at the head of its level's
     * list, whose first subject is the user last written at that level:
     * fetched now, while the rest of prepare runs, not when apply stalls
     * on it (a hint only) */
    for (uint32_t i = 0; i < t->n_usl; i++) {
        const bufuser *bu = t->usl[i];
        __builtin_prefetch(ush_of(ms, bu->h)->levels[bu->u.level < N_LEVELS ? bu->u.level : 0], 1);
    }
    /* a meta value read may have been written since (another engine's
     * policy change), or be about to be by a prepared txn: a conflict
     * (blind writes never are) */
    if (t->mreads) {
        if (ms->meta_pending > 0)
            return risk_err(RISK_ECONFLICT, "meta: being written by another transaction");
        for (const txn_metaread *r = t->mreads; r != NULL; r = r->next) {
            const metanode *n = map_get(&ms->meta, r->h, r->key);
            if ((n ? n->ver : META_ABSENT) != r->ver)
                return risk_err(RISK_ECONFLICT, "meta: '%s' changed since this transaction "
                                                "read it", r->key);
        }
    }
    /* a removal seen at remove_policy time may have been committed since by
     * another transaction: the second of two removals must not commit too */
    MAP_EACH(&t->policies, i) {
        const pnode *pn = t->policies.s[i].val;
        if (pn->must_exist && map_find(&ms->policies, t->policies.s[i].hash, pn->name) == NOPE)
            return risk_err(RISK_ENOTFOUND, "name: policy '%s' was removed by another "
                                            "transaction", pn->name);
    }
    for (uint32_t i = 0; i < t->n_evl; i++) {
        bufev *b = t->evl[i];
        if ((b->owner = pin(ms, t, b->uh, b->e.user_id)) == NULL)
            return RISK_ENOMEM;
    }
    size_t first_hist_sub = t->n_subs;
    for (size_t i = 0; i < t->n_hist; i++) {
        const bufhist *bh = t->hist[i];
        if (bh->r.user_id && pin(ms, t, bh->uh, bh->r.user_id) == NULL)
            return RISK_ENOMEM;
    }
    /* events: the stored nodes (interned strings, stable ids), a slot for
     * each new id; the nodes they replace were found by take_locks */
    t->has_nodes = 1;
    for (uint32_t i = 0; i < t->n_evl; i++) {
        bufev *b = t->evl[i];
        if (b->create && b->old != NULL)
            return risk_err(RISK_ECONFLICT, "memstore: event '%s' was created by another "
                                            "transaction", b->e.id);
        if (b->use_seen && !split) { /* a closing of a node this txn read */
            if ((rc = ev_patch_prepare(ms, t, b->old, &b->e, b->patch)) != RISK_OK)
                return rc;
            continue;
        }
        evnode *n;
        int popped;
        if ((rc = ev_make(ms, t, t->hm, &b->e, b->old ? b->old->id : NULL, &n,
                          &popped)) != RISK_OK)
            return rc;
        b->node = (uintptr_t)n | (uintptr_t)popped;
        if (b->old == NULL) {
            if ((rc = etab_reserve(&esh_of(ms, b->h)->t, 1)) != RISK_OK)
                return rc;
            b->reserved = 1;
            /* split: joins the pending creations; else (prepare and apply
             * under one hold) it only must not be one of them */
            pendlist *pl = &esh_of(ms, b->h)->pend;
            if ((rc = split ? pend_add(pl, b) : pend_check(pl, b)) != RISK_OK)
                return rc;
        }
        if (split || b->old == NULL || b->old->owner != b->owner) {
            if ((rc = ev_reserve(b->owner, 1)) != RISK_OK)
                return rc;
            b->slot = 1;
        }
    }
    if ((rc = hist_prepare(ms, t, first_hist_sub)) != RISK_OK)
        return rc;
    /* every put reserves: another txn may remove the policy before apply
     * (the global shard is locked only if the txn writes there) */
    size_t k = 0;
    MAP_EACH(&t->policies, i)
        k += ((pnode *)t->policies.s[i].val)->p != NULL;
    if (k && (rc = map_reserve(&ms->policies, k)) != RISK_OK)
        return rc;
    t->res_policies = k;
    k = 0;
    MAP_EACH(&t->meta, i)
        k += map_find(&ms->meta, t->meta.s[i].hash, meta_key(t->meta.s[i].val)) == NOPE;
    if (k && (rc = map_reserve(&ms->meta, k)) != RISK_OK)
        return rc;
    t->res_meta = k;
    /* users were pinned first: claim them against other prepared txns */
    for (uint32_t i = 0; i < t->n_usl; i++)
        t->subs[i]->claim = t;
    if (t->meta.count) {
        ms->meta_pending++;
        t->meta_pending = 1;
    }
    return RISK_OK;
}

/* Whether publishing t touches committed state (needs locks). */
static int txn_writes(const mtxn *t)
{
    return t->users.count || t->events.count || t->n_hist || t->policies.count || t->meta.count;
}

/* Prepare's allocations outside the lock: the thread's home, one subject
 * slot per reference, the history item pointers. */
static int alloc_prepared(risk_memstore *ms, mtxn *t)
{
    if ((t->hm = home_get(ms)) == NULL)
        return RISK_ENOMEM;
    size_t refs = t->users.count + t->events.count + t->n_hist;
    if (refs <= TXN_INLINE_SUBS)
        t->subs = t->inl_subs;
    else if ((t->subs = risk_malloc(refs * sizeof *t->subs)) == NULL)
        return ms_nomem();
    if (t->n_hist && (t->items = sc_alloc(t, t->n_hist * sizeof *t->items)) == NULL)
        return RISK_ENOMEM;
    return RISK_OK;
}

static void free_prepared(mtxn *t)
{
    t->has_nodes = 0;
    if (t->subs != t->inl_subs)
        risk_free(t->subs);
    t->subs = NULL;
}

/* Prepare under the txn's locks (take_locks), its home taken; a failure
 * undoes everything visible. */
static int prepare_now(risk_memstore *ms, mtxn *t, int split)
{
    t->amark = arena_save(&t->hm->ar);
    int rc = prepare_locked(ms, t, split);
    if (rc != RISK_OK) {
        give_nodes(t, 1); /* the arena's go with the restore */
        arena_restore(&t->hm->ar, t->amark);
        intern_rollback(ms, t);
        release_reservations(ms, t);
        unpin_all(ms, t);
        return rc;
    }
    t->gen = ++t->hm->prep_gen;
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
        if ((rc = alloc_prepared(ms, t)) != RISK_OK)
            return rc;
        take_locks(ms, t, &t->held, 1);
        home_take(t->hm);
        rc = prepare_now(ms, t, 1);
        home_put(t->hm);
        lockset_release(ms, &t->held);
    }
    if (rc != RISK_OK) {
        free_prepared(t);
        return rc;
    }
    t->prepared = 1;
    return RISK_OK;
}

/* Publish a prepared txn; pointer moves, copies and frees only. The txn's
 * locks held; same_hold: since prepare (the old nodes it found stay
 * current). */
static void apply_locked(risk_memstore *ms, mtxn *t, int same_hold)
{
    size_t k = 0; /* t->subs is in the order prepare_locked pinned */
    for (uint32_t i = 0; i < t->n_usl; i++) {
        subject *s = t->subs[k++];
        ushard *sh = ush_of(ms, t->usl[i]->h);
        const risk_user *bu = &t->usl[i]->u;
        /* the lists' order means nothing (list_users callers sort): a user
         * that stays at its level stays where it is, and its neighbours'
         * lines are not touched */
        int relink = !s->has_user || s->u.level != bu->level;
        if (relink && s->has_user)
            level_unlink(sh, s);
        subject_set_user(ms, t->usl[i]->h, s, bu);
        if (relink)
            level_link(sh, s);
    }
    for (uint32_t i = 0; i < t->n_evl; i++) {
        bufev *b = t->evl[i];
        evnode *n = node_of(b);
        subject *owner = t->subs[k++];
        if (n == NULL) { /* patched in place (same hold) */
            ev_patch_apply(b->old, &b->e, b->patch);
            continue;
        }
        n->owner = owner;
        ev_install(ms, t->hm, b->h, n, same_hold, b->old);
        b->node = 0;
    }
    t->has_nodes = 0; /* installed (or given back) */
    int policies_changed = t->policies.count > 0;
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
    if (policies_changed)
        atomic_fetch_add_explicit(&ms->policy_gen, 1, memory_order_release);
    MAP_EACH(&t->meta, i) {
        metanode *bn = t->meta.s[i].val;
        metanode *cn = map_get(&ms->meta, t->meta.s[i].hash, bn->key);
        if (cn == NULL) {
            bn->ver = 1;
            map_place(&ms->meta, t->meta.s[i].hash, bn);
            continue;
        }
        cn->ver++;
        cn->len = bn->len;
        memcpy(cn->val, bn->val, bn->len);
        risk_free(bn);
    }
    hist_apply(ms, t);
    release_reservations(ms, t); /* after the inserts that used them */
    unpin_all(ms, t);
    intern_commit(t);
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
        /* another hold than prepare's: every event is looked up again, so
         * every events shard and any old owner's shard too */
        lockset held;
        take_locks(ms, t, &held, 0);
        home_take(t->hm);
        apply_locked(ms, t, 0);
        home_put(t->hm);
        lockset_release(ms, &held);
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
        lockset_acquire(ms, &t->held);
        home_take(t->hm);
        if (t->gen == t->hm->prep_gen) { /* nothing prepared since can use them */
            give_nodes(t, 1);
            arena_restore(&t->hm->ar, t->amark);
        } else {
            give_nodes(t, 0);
        }
        home_put(t->hm);
        intern_rollback(ms, t);
        release_reservations(ms, t);
        unpin_all(ms, t);
        lockset_release(ms, &t->held);
    }
    seq_done(ms, t);
    txn_discard(t);
}

/* prepare + apply under one hold of the txn's locks (the journal needs the
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
    if (txn_writes(t) && (rc = alloc_prepared(ms, t)) == RISK_OK) {
        take_locks(ms, t, &t->held, 1);
        home_take(t->hm);
        if ((rc = prepare_now(ms, t, 0)) == RISK_OK)
            apply_locked(ms, t, 1);
        home_put(t->hm);
        lockset_release(ms, &t->held);
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
