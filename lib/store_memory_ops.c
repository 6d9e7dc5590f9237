/* The in-memory store's callbacks: buffered writes into the txn's scratch,
 * reads overlaying the committed state with the txn's own writes, and the
 * callback table. lib/store_memory.c explains the layout and has the
 * transactions themselves. */
#include "memstore.h"

#include <stdlib.h>

/* ---- buffered writes ---- */
#define NEED(p, what)                                    \
    do {                                                 \
        if ((p) == NULL)                                 \
            return risk_err(RISK_EINVAL, what ": NULL"); \
    } while (0)

/* A txn's full list of n pointers moved to twice the room (in its
 * scratch); NULL: ENOMEM. */
static void *list_grow(mtxn *t, const void *v, uint32_t n, uint32_t *cap)
{
    void *nv = sc_alloc(t, 2 * (size_t)*cap * sizeof(void *));
    if (nv == NULL)
        return NULL;
    *cap *= 2;
    return memcpy(nv, v, n * sizeof(void *));
}

/* The hash of a user id the txn buffers a write for, id a scratch copy:
 * the user, its events and its history item name the same user, hashed
 * once. */
static uint64_t uid_hash(mtxn *t, const char *id)
{
    if (t->memo_id != id && (t->memo_id == NULL || strcmp(t->memo_id, id) != 0)) {
        t->memo_id = id;
        t->memo_h = hash_str(id);
    }
    return t->memo_h;
}

static int cb_put_user(void *ctx, void *txn, const risk_user *user)
{
    (void)ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(user, "user");
    NEED(user->id, "user id");
    if (user->version == 0)
        return risk_err(RISK_EINVAL, "user: version 0 (a stored user has version ≥ 1)");
    uint64_t h = t->memo_id && strcmp(t->memo_id, user->id) == 0 ? t->memo_h
                                                                 : hash_str(user->id);
    size_t at = map_find(&t->users, h, user->id);
    if (at != NOPE) { /* again: the copy is replaced in place */
        risk_user *u = t->users.s[at].val;
        char *id = u->id;
        *u = *user; /* id is risk_user's only pointer */
        u->id = id;
        return RISK_OK;
    }
    bufuser *b = sc_alloc(t, sizeof *b);
    int ok = 1;
    char *id = b ? sc_str(t, user->id, &ok) : NULL;
    if (id == NULL)
        return RISK_ENOMEM;
    if (t->n_usl == t->cap_usl) {
        bufuser **nv = list_grow(t, t->usl, t->n_usl, &t->cap_usl);
        if (nv == NULL)
            return RISK_ENOMEM;
        t->usl = nv;
    }
    int rc = map_add(&t->users, h, &b->u);
    if (rc != RISK_OK)
        return rc;
    t->memo_id = id;
    t->memo_h = h;
    b->u = *user;
    b->u.id = id;
    b->h = h;
    t->usl[t->n_usl++] = b;
    return RISK_OK;
}

/* A scratch copy of e (fields this store does not keep stay zero), its
 * strings in the same block, each measured once; but for strings of this
 * store's own that stay until it closes (the engine's copy of a view:
 * risk_event.stable), which are pointed at. */
static bufev *copy_event(mtxn *t, const risk_event *e)
{
    unsigned keep = e->stable_of == (const void *)t->ms ? e->stable : 0;
    size_t len[8], n = risk_event_strings_size(e, keep, len);
    bufev *b = sc_alloc(t, sizeof *b + n);
    if (b == NULL)
        return NULL;
    memset(b, 0, sizeof *b);
    risk_event *c = &b->e;
    risk_event_pack_strings(c, e, len, (char *)(b + 1));
    c->level = e->level;
    c->timing = e->timing;
    c->state = e->state;
    c->reason = e->reason;
    c->detected_at = e->detected_at;
    c->closed_at = e->closed_at;
    return b;
}

/* The node of id that this txn's user_events read saw, or NULL; the
 * id's hash in *h. An operation's copy of an event this txn read kept the
 * id's pointer (copy_event): that one is known by pointer, hash and node. */
static evnode *seen_node(const mtxn *t, const char *id, uint64_t *h)
{
    for (uint32_t i = 0; i < t->n_seen; i++)
        if (t->seen[i].id == id)
            return *h = t->seen[i].h, t->seen[i].n;
    *h = hash_str(id);
    for (uint32_t i = 0; i < t->n_seen; i++)
        if (t->seen[i].h == *h && strcmp(t->seen[i].id, id) == 0)
            return t->seen[i].n;
    return NULL;
}

static int cb_put_event(void *ctx, void *txn, const risk_event *event)
{
    (void)ctx;
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(event, "event");
    NEED(event->id, "event id");
    NEED(event->user_id, "event user_id");
    /* what the compact node cannot hold is refused now, not at commit */
    int rc = ev_check(event);
    if (rc != RISK_OK)
        return rc;
    bufev *b = copy_event(t, event);
    if (b == NULL)
        return RISK_ENOMEM;
    const char *id = b->e.id;
    uint64_t h;
    b->seen = seen_node(t, id, &h);
    b->h = h;
    b->create = 0;
    for (const txn_absent *a = t->absent; a != NULL && !b->create; a = a->next)
        b->create = a->h == h && strcmp(a->id, id) == 0;
    b->uh = uid_hash(t, b->e.user_id);
    size_t at = map_find(&t->events, h, id);
    if (at != NOPE) { /* the old copy stays in the scratch until the txn ends */
        b->pos = ((bufev *)t->events.s[at].val)->pos;
        t->events.s[at].val = b;
        t->evl[b->pos] = b;
        return RISK_OK;
    }
    if (t->n_evl == t->cap_evl) {
        bufev **nv = list_grow(t, t->evl, t->n_evl, &t->cap_evl);
        if (nv == NULL)
            return RISK_ENOMEM;
        t->evl = nv;
    }
    if ((rc = map_add(&t->events, h, b)) != RISK_OK)
        return rc;
    b->pos = t->n_evl;
    t->evl[t->n_evl++] = b;
    return RISK_OK;
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
        ms_rdlock(&ms->glock);
        exists = map_find(&ms->policies, h, name) != NOPE;
        ms_rdunlock(&ms->glock);
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
    return meta_set(&t->meta, key, buf, len);
}

static int cb_reserve_seq(void *ctx, void *txn, uint64_t *seq)
{
    mtxn *t = txn;
    NEED(t, "txn");
    NEED(seq, "seq");
    return seq_reserve(ctx, t, seq);
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
    if (item->action > 255 || item->level_before > 255 || item->level_after > 255 ||
        item->state_before > 255 || item->state_after > 255 ||
        (item->note && strlen(item->note) >= UINT16_MAX))
        return risk_err(RISK_EINVAL, "item: a field is out of range");
    if (t->n_hist == t->cap_hist) {
        size_t cap = t->cap_hist ? t->cap_hist * 2 : 4;
        bufhist **v = risk_malloc(cap * sizeof *v);
        if (v == NULL)
            return ms_nomem();
        memcpy(v, t->hist, t->n_hist * sizeof *v);
        if (t->hist != t->inl_hist)
            risk_free(t->hist);
        t->hist = v;
        t->cap_hist = cap;
    }
    bufhist *b = sc_alloc(t, sizeof *b);
    if (b == NULL)
        return RISK_ENOMEM;
    risk_history *c = &b->r;
    *c = *item; /* then every string into the scratch */
    int ok = 1;
    c->actor = sc_str(t, item->actor, &ok);
    c->user_id = sc_str(t, item->user_id, &ok);
    c->event_id = sc_str(t, item->event_id, &ok);
    c->policy = sc_str(t, item->policy, &ok);
    c->note = sc_str(t, item->note, &ok);
    if (!ok)
        return RISK_ENOMEM;
    b->uh = c->user_id ? uid_hash(t, c->user_id) : 0;
    t->hist[t->n_hist++] = b;
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
    ushard *sh = ush_of(ms, h);
    ms_rdlock(&sh->lock);
    const subject *s = subject_find(&sh->users, h, id);
    risk_user copy; /* duplicated outside the lock; its id (the subject's) lives until close */
    int found = s && s->has_user;
    if (found) {
        copy = s->u;
        /* A write of this user follows (ingest, dismiss): its commit links
         * a history item after the user's last, may add an event to the
         * user's array and move the user between level lists: cold lines
         * (the last item was written long ago, the list neighbours are
         * other users). Fetched now, they arrive while the engine scores
         * and seals outside the lock, and the lock is held that much
         * shorter. */
        __builtin_prefetch(s->h_tail, 1);
        if (s->evs != NULL)
            __builtin_prefetch(s->evs + s->n_ev, 1);
        __builtin_prefetch(s->lprev, 1);
        __builtin_prefetch(s->lnext, 1);
    }
    ms_rdunlock(&sh->lock);
    /* not found is an expected answer on the ingest path: no message */
    return found ? risk_user_dup(out, &copy) : RISK_ENOTFOUND;
}

static int cb_view_user(void *ctx, const char *id, risk_user_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    NEED(id, "id");
    NEED(fn, "fn");
    uint64_t h = hash_str(id);
    ushard *sh = ush_of(ms, h);
    ms_rdlock(&sh->lock);
    const subject *s = subject_find(&sh->users, h, id);
    int rc = (s && s->has_user) ? fn(&s->u, arg) : RISK_ENOTFOUND;
    ms_rdunlock(&sh->lock);
    return rc;
}

/* The peek's read of m without its lock (lib/memstore.h): RISK_OK,
 * RISK_ENOTFOUND, or 1 when writers kept changing the map meanwhile. Ids
 * of USLOT_IDINL bytes or more are not in the slots: the caller reads
 * those under the lock. */
static int umap_peek(const umap *m, home *hm, uint64_t h, const char *id, size_t len,
                     risk_peek *out)
{
    for (int tries = 0; tries < 4; tries++) {
        uint32_t v1 = atomic_load_explicit(&m->vseq, memory_order_acquire);
        if (v1 & 1)
            continue;
        atomic_exchange(&hm->hazard, (const void *)m);
        /* cap before s: a new cap comes with the new table */
        size_t cap = __atomic_load_n(&m->cap, __ATOMIC_ACQUIRE), mask = cap - 1;
        const uslot *tab = __atomic_load_n(&m->s, __ATOMIC_SEQ_CST);
        int rc = RISK_ENOTFOUND;
        uslot sl;
        for (size_t i = h & mask, n = 0; n < cap; n++, i = (i + 1) & mask) {
            /* the words of val and hash first: most slots a probe passes
             * end it (empty) or are another id's (another hash) */
            const uword *w = (const uword *)&tab[i];
            ((uword *)&sl)[0] = __atomic_load_n(&w[0], __ATOMIC_RELAXED);
            if (sl.val == NULL)
                break;
            ((uword *)&sl)[2] = __atomic_load_n(&w[2], __ATOMIC_RELAXED);
            if (sl.hash != (uint32_t)h)
                continue;
            uslot_load(&sl, &tab[i]);
            /* a slot without the id holds a longer one than id (and its
             * subject is not to be read without the lock) */
            if (sl.id_inl && uslot_is(&sl, h, id, len)) {
                if (sl.has_user) {
                    *out = (risk_peek){sl.next_change_at, sl.key, sl.level};
                    rc = RISK_OK;
                }
                break;
            }
        }
        atomic_thread_fence(memory_order_acquire);
        uint32_t v2 = atomic_load_explicit(&m->vseq, memory_order_relaxed);
        atomic_store_explicit(&hm->hazard, NULL, memory_order_release);
        if (v1 == v2)
            return rc;
    }
    return 1;
}

int risk_memstore_peek(void *ctx, const char *id, size_t len, risk_peek *out)
{
    risk_memstore *ms = ctx;
    uint64_t h = risk_hash_bytes(id, len);
    ushard *sh = ush_of(ms, h);
    home *hm = len < USLOT_IDINL ? home_get(ms) : NULL;
    int rc = hm != NULL ? umap_peek(&sh->users, hm, h, id, len, out) : 1;
    if (rc != 1) /* else a busy map, or no home (ENOMEM): under the lock */
        return rc;
    ms_rdlock(&sh->lock);
    const uslot *sl = umap_slot(&sh->users, h, id, len);
    int found = sl != NULL && sl->has_user;
    if (found)
        *out = (risk_peek){sl->next_change_at, sl->key, sl->level};
    ms_rdunlock(&sh->lock);
    return found ? RISK_OK : RISK_ENOTFOUND;
}

/* The bulk ingest's and dismissal's hint (risk_store.prefetch_users; a
 * bulk sign-in that peeks fetches the slots only): a read of a user
 * misses the caches twice, on the map slot and then on the subject it
 * points to, and one call can only wait for each in turn. Here the slots of up to
 * PREFETCH_MAX users are requested at once, then (their lines arrived or
 * on the way) the subjects of the slots whose hash matches, whole (three
 * or four lines): the first 96 bytes hold the id, has_user and the fields
 * a decision reads, the rest what an ingest's get_user reads next (the
 * user's event array, history tail and level list). The view_user and
 * get_user calls that follow find them in cache. Nothing is changed;
 * the shard locks keep each read of a map inside a table that is not
 * being replaced. */
#define PREFETCH_MAX 32

/* Request the home slots of ids (hs: their hashes) at once. Without the
 * lock (lib/memstore.h): a prefetch of a table just outgrown is harmless. */
static void slots_prefetch(risk_memstore *ms, const char *const *ids, size_t m, uint64_t *hs)
{
    for (size_t i = 0; i < m; i++) {
        const umap *um = &ush_of(ms, hs[i] = hash_str(ids[i]))->users;
        size_t cap = __atomic_load_n(&um->cap, __ATOMIC_ACQUIRE);
        const uslot *tab = __atomic_load_n(&um->s, __ATOMIC_ACQUIRE);
        __builtin_prefetch(&tab[hs[i] & (cap - 1)]);
    }
}

/* The bulk sign-in's hint when it peeks: the slots only. */
void risk_memstore_peek_prefetch(void *ctx, const char *const *ids, size_t n)
{
    uint64_t hs[PREFETCH_MAX];
    for (; n > 0;) {
        size_t m = n < PREFETCH_MAX ? n : PREFETCH_MAX;
        slots_prefetch(ctx, ids, m, hs);
        ids += m;
        n -= m;
    }
}

static void cb_prefetch_users(void *ctx, const char *const *ids, size_t n)
{
    risk_memstore *ms = ctx;
    uint64_t hs[PREFETCH_MAX];
    if (ms == NULL || ids == NULL)
        return;
    for (; n > 0;) {
        size_t m = n < PREFETCH_MAX ? n : PREFETCH_MAX;
        slots_prefetch(ms, ids, m, hs);
        for (size_t i = 0; i < m; i++) {
            ushard *sh = ush_of(ms, hs[i]);
            ms_rdlock(&sh->lock);
            const umap *mp = &sh->users;
            for (size_t j = hs[i] & (mp->cap - 1); mp->count && mp->s[j].val != NULL;
                 j = (j + 1) & (mp->cap - 1)) {
                if (mp->s[j].hash == (uint32_t)hs[i]) {
                    const char *sub = (const char *)mp->s[j].val;
                    for (size_t off = 0; off < sizeof(subject); off += 64)
                        __builtin_prefetch(sub + off);
                    __builtin_prefetch(sub + sizeof(subject) - 1);
                    break;
                }
            }
            ms_rdunlock(&sh->lock);
        }
        ids += m;
        n -= m;
    }
}

/* The bulk ingest's hint (risk_store.prefetch_events): the home group of
 * each id in its events shard, where get_event finds the id or finds it
 * absent (most ingested ids are new). Under the shard's read lock, so
 * that the table read is not one being replaced. */
static void cb_prefetch_events(void *ctx, const char *const *ids, size_t n)
{
    risk_memstore *ms = ctx;
    if (ms == NULL || ids == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hash_str(ids[i]);
        eshard *es = esh_of(ms, h);
        ms_rdlock(&es->lock);
        etab_prefetch(&es->t, h);
        ms_rdunlock(&es->lock);
    }
}

static int cb_get_event(void *ctx, void *txn, const char *id, risk_event **out)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(id, "id");
    NEED(out, "out");
    uint64_t h = hash_str(id);
    const risk_event *b = t ? map_get(&t->events, h, id) : NULL;
    if (b != NULL)
        return risk_event_dup(out, b);
    /* An ingest reads the event (absent), then the user of its
     * transaction: that user's map slot is fetched beside the event's
     * group, and its subject once the slot is in, so get_user finds both
     * in cache (the user's shard is read-locked for that: locks are taken
     * in order, users' shards first). */
    ushard *ush = t && t->has_uid_h ? ush_of(ms, t->uid_h) : NULL;
    const uslot *us = NULL;
    if (ush != NULL) {
        ms_rdlock(&ush->lock);
        if (ush->users.count) {
            us = &ush->users.s[t->uid_h & (ush->users.cap - 1)];
            __builtin_prefetch(us);
        }
    }
    eshard *es = esh_of(ms, h);
    ms_rdlock(&es->lock);
    const evnode *n = etab_get(&es->t, h, id);
    if (ush != NULL) {
        if (us != NULL && us->val != NULL) /* a probe may go past it: a hint */
            __builtin_prefetch(us->val);
        ms_rdunlock(&ush->lock);
    }
    /* The node's contents change under its owner's lock (a closing
     * rewrites it in place): read them under that one too. Locks are taken
     * in their order (users' shards before events'), so the events shard
     * is let go and taken again after the owner's, and the event looked up
     * again (it may have moved to another user meanwhile: then again). */
    while (n != NULL) {
        ushard *sh = ush_of(ms, hash_str(n->owner->u.id));
        ms_rdunlock(&es->lock);
        ms_rdlock(&sh->lock);
        ms_rdlock(&es->lock);
        n = etab_get(&es->t, h, id);
        if (n != NULL && ush_of(ms, hash_str(n->owner->u.id)) == sh) {
            int rc = evnode_dup(ms, out, n);
            ms_rdunlock(&es->lock);
            ms_rdunlock(&sh->lock);
            return rc;
        }
        ms_rdunlock(&sh->lock);
    }
    ms_rdunlock(&es->lock);
    if (t != NULL) { /* a put of it is a creation (txn_absent) */
        size_t len = strlen(id) + 1;
        txn_absent *a = sc_alloc(t, sizeof *a + len);
        if (a == NULL)
            return RISK_ENOMEM;
        a->h = h;
        memcpy(a->id, id, len);
        a->next = t->absent;
        t->absent = a;
    }
    return RISK_ENOTFOUND;
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
    uint64_t uh = hash_str(user_id);
    ushard *sh = ush_of(ms, uh);
    ms_rdlock(&sh->lock);
    const subject *s = subject_find(&sh->users, uh, user_id);
    /* remember the nodes for put_event (mtxn.seen): the first read of a
     * user that exists, with nothing buffered yet */
    int remember = t && !overlay && t->seen_subj == NULL && s && s->has_user;
    if (remember) {
        t->seen_subj = s;
        t->seen_uh = uh;
        t->seen_moves = s->ev_moves;
    }
    /* The nodes and their ids are scattered over the arenas: fetch a batch
     * of nodes at once (the array holds their addresses), then their ids
     * (the engine copies each event), so that the misses overlap instead
     * of adding up (batches of TXN_SEEN: a user has ~10). Newest first
     * (the array is in the order they came, but for replacements that did
     * not fit in place). */
    uint32_t left = s ? s->n_ev : 0;
    while (rc == 0 && left > 0) {
        uint32_t m = left < TXN_SEEN ? left : TXN_SEEN;
        evnode *const *batch = s->evs + left - m;
        left -= m;
        for (uint32_t j = m; j-- > 0;)
            __builtin_prefetch(batch[j]);
        for (uint32_t j = m; j-- > 0;)
            __builtin_prefetch(batch[j]->id);
        for (uint32_t j = m; j-- > 0 && rc == 0;) {
            evnode *b = batch[j];
            int keep = remember && t->n_seen < TXN_SEEN;
            uint64_t h = overlay || keep ? hash_str(b->id) : 0; /* (nodes keep no hash) */
            if (overlay && map_find(&t->events, h, b->id) != NOPE)
                continue;
            if (keep)
                t->seen[t->n_seen++] = (txn_seen){h, b->id, b};
            risk_event v;
            ev_view(ms, b, &v);
            rc = fn(&v, arg);
        }
    }
    ms_rdunlock(&sh->lock);
    for (uint32_t i = 0; overlay && rc == 0 && i < t->n_evl; i++)
        if (strcmp(t->evl[i]->e.user_id, user_id) == 0)
            rc = fn(&t->evl[i]->e, arg);
    return rc;
}

static int cb_list_policies(void *ctx, void *txn, risk_policy_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    mtxn *t = txn;
    NEED(fn, "fn");
    int rc = 0;
    int overlay = t && t->policies.count;
    ms_rdlock(&ms->glock);
    MAP_EACH(&ms->policies, i) {
        const risk_policy *p = ms->policies.s[i].val;
        if (rc == 0 && (!overlay || map_find(&t->policies, ms->policies.s[i].hash, p->name) == NOPE))
            rc = fn(p, arg);
    }
    ms_rdunlock(&ms->glock);
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
    if (locked) {
        ms_rdlock(&ms->glock);
        n = map_get(&ms->meta, h, key);
    }
    uint64_t ver = n ? n->ver : META_ABSENT;
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
        ms_rdunlock(&ms->glock);
    if (locked && t != NULL && (rc == RISK_OK || rc == RISK_ENOTFOUND)) {
        /* a committed value: remember its version for prepare */
        size_t kl = strlen(key) + 1;
        txn_metaread *r = sc_alloc(t, sizeof *r + kl);
        if (r == NULL)
            return RISK_ENOMEM;
        r->h = h, r->ver = ver;
        memcpy(r->key, key, kl);
        r->next = t->mreads;
        t->mreads = r;
    }
    return rc;
}

/* Committed users ≥ min_level, copied under each shard's read lock and
 * visited without it, so fn may run operations on this store. */
static int cb_list_users(void *ctx, risk_level min_level, risk_user_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    NEED(fn, "fn");
    if ((uint32_t)min_level >= N_LEVELS)
        return risk_err(RISK_EINVAL, "min_level: value %u out of range", (unsigned)min_level);
    risk_user **v = NULL;
    size_t k = 0, cap = 0;
    int rc = RISK_OK;
    for (unsigned i = 0; i < N_USHARDS && rc == RISK_OK; i++) {
        ushard *sh = &ms->ush[i];
        ms_rdlock(&sh->lock);
        size_t n = k;
        for (uint32_t l = min_level; l < N_LEVELS; l++)
            n += sh->level_n[l];
        if (n > cap) {
            size_t c = cap ? cap : 64;
            while (c < n)
                c *= 2;
            risk_user **nv = risk_realloc(v, c * sizeof *nv);
            if (nv == NULL)
                rc = ms_nomem();
            else
                v = nv, cap = c;
        }
        for (uint32_t l = N_LEVELS; rc == RISK_OK && l-- > (uint32_t)min_level;)
            for (const subject *s = sh->levels[l]; s && rc == RISK_OK; s = s->lnext)
                if ((rc = risk_user_dup(&v[k], &s->u)) == RISK_OK)
                    k++;
        ms_rdunlock(&sh->lock);
    }
    for (size_t i = 0; i < k && rc == RISK_OK; i++)
        rc = fn(v[i], arg);
    for (size_t i = 0; i < k; i++)
        risk_user_free(v[i]);
    risk_free(v);
    return rc;
}

/* ---- the callback table ---- */
static void cb_close(void *ctx) { risk_memstore_free(ctx); }

/* The required callbacks of the memory store's table. */
static void table_calls(risk_store *out)
{
    out->begin = ms_begin;
    out->commit = ms_commit;
    out->rollback = ms_rollback;
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
}

void risk_memstore_table(risk_memstore *ms, risk_store *out)
{
    memset(out, 0, sizeof *out);
    out->version = RISK_STORE_VERSION;
    out->ctx = ms;
    table_calls(out);
    out->close = cb_close;
    out->view_user = cb_view_user;
    out->prefetch_users = cb_prefetch_users;
    out->prefetch_events = cb_prefetch_events;
    out->list_users = cb_list_users;
    out->read_history = ms->keep_history ? ms_read_history : NULL;
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

int risk_memstore_is_table(const risk_store *s)
{
    if (!risk_memstore_policy_gen(s)) /* not even the required calls */
        return 0;
    risk_store ref;
    risk_memstore_table(s->ctx, &ref);
    return risk_store_same_table(s, &ref);
}

const _Atomic uint64_t *risk_memstore_policy_gen(const risk_store *s)
{
    risk_store ref = {0};
    table_calls(&ref);
    return s->ctx != NULL && risk_store_same_calls(s, &ref)
               ? &((risk_memstore *)s->ctx)->policy_gen
               : NULL;
}
