/* The in-memory store's history: the sequencer (reserve_seq), the compact
 * items in the arena, the seq index and read_history. lib/store_memory.c
 * explains the whole layout.
 *
 * The sequencer (store.h: a reader never sees seq N+1 before every
 * smaller reserved seq has committed or rolled back) holds no lock across
 * the txn and no lock that two threads share. A seq is a fetch-and-add of
 * next_seq. A txn that reserves its first seq joins the list of open txns
 * of the thread it runs on (its home: a mutex only that thread takes, but
 * for a txn finished on another thread), and the home publishes the first
 * seq of its oldest open txn in open_lo. The watermark is the least of
 * next_seq and every home's open_lo (seq_watermark); readers show only
 * items below it. Writers on different users never wait for each other
 * here; an item committed early stays hidden until the older ones are
 * done. Items go into a seq-indexed array, so commits may arrive in any
 * order. The journal store (keep_history 0) logs its items itself, in
 * commit order, and shows them below the same watermark
 * (risk_memstore_visible_seq). */
#include "memstore.h"

/* Why the watermark never passes an open seq s: before the fetch-and-add
 * that hands out a home's first open seq s, the home's open_lo is set to
 * next_seq as it was (<= s), and it stays <= s until the txn is done; a
 * reader loads next_seq before the homes' open_lo (all sequentially
 * consistent), so if s < the next_seq it read, the store of open_lo came
 * before its loads of open_lo. Later seqs of the same txn are above s. */
int seq_reserve(risk_memstore *ms, mtxn *t, uint64_t *seq)
{
    if (t->has_seq) {
        *seq = atomic_fetch_add(&ms->next_seq, 1);
        t->seq_hi = *seq;
        return RISK_OK;
    }
    home *hm = home_get(ms);
    if (hm == NULL)
        return RISK_ENOMEM;
    pthread_mutex_lock(&hm->seq_mu);
    if (hm->p_head == NULL) /* a bound first, then the seq */
        atomic_store(&hm->open_lo, atomic_load(&ms->next_seq));
    *seq = atomic_fetch_add(&ms->next_seq, 1);
    t->seq_lo = t->seq_hi = *seq;
    t->p_next = NULL; /* the list stays in seq order: seqs of a home grow */
    t->p_prev = hm->p_tail;
    if (hm->p_tail)
        hm->p_tail->p_next = t;
    else
        hm->p_head = t;
    hm->p_tail = t;
    atomic_store(&hm->open_lo, hm->p_head->seq_lo);
    pthread_mutex_unlock(&hm->seq_mu);
    t->seq_home = hm;
    t->has_seq = 1;
    return RISK_OK;
}

void seq_done(risk_memstore *ms, mtxn *t)
{
    (void)ms;
    if (!t->has_seq)
        return;
    home *hm = t->seq_home;
    pthread_mutex_lock(&hm->seq_mu);
    if (t->p_prev)
        t->p_prev->p_next = t->p_next;
    else
        hm->p_head = t->p_next;
    if (t->p_next)
        t->p_next->p_prev = t->p_prev;
    else
        hm->p_tail = t->p_prev;
    atomic_store(&hm->open_lo, hm->p_head ? hm->p_head->seq_lo : SEQ_NONE);
    pthread_mutex_unlock(&hm->seq_mu);
    t->has_seq = 0;
    t->seq_home = NULL;
}

/* Every seq below it is committed or rolled back (see seq_reserve). */
static uint64_t seq_watermark(risk_memstore *ms)
{
    uint64_t wm = atomic_load(&ms->next_seq);
    pthread_mutex_lock(&ms->homes_mu); /* the list of homes only grows */
    for (home *hm = ms->homes; hm != NULL; hm = hm->next) {
        uint64_t lo = atomic_load(&hm->open_lo);
        if (lo < wm)
            wm = lo;
    }
    pthread_mutex_unlock(&ms->homes_mu);
    return wm;
}

uint64_t risk_memstore_visible_seq(risk_memstore *ms)
{
    return seq_watermark(ms);
}

uint64_t risk_memstore_next_seq(risk_memstore *ms)
{
    return atomic_load(&ms->next_seq);
}

/* Recovery sets it before the store is shared (nothing pending); the seq
 * index then starts there, unless it holds items already. */
void risk_memstore_set_next_seq(risk_memstore *ms, uint64_t next)
{
    atomic_store(&ms->next_seq, next ? next : 1);
    if (!atomic_load_explicit(&ms->h_used, memory_order_relaxed))
        ms->hbase = atomic_load(&ms->next_seq);
}

/* ---- items ---- */
_Static_assert(sizeof(hitem) == 80, "a history item is 80 bytes and its note");

/* The item of index i (seq - hbase), or NULL: no lock needed (pages never
 * move; an item is complete before it is published). */
static inline hitem *hidx_get(const risk_memstore *ms, uint64_t i)
{
    if (ms->hdir == NULL || i >> 32)
        return NULL;
    _Atomic(hitem *) *pg = atomic_load_explicit(&ms->hdir[i >> HPAGE_BITS], memory_order_acquire);
    return pg ? atomic_load_explicit(&pg[i & (HPAGE - 1)], memory_order_acquire) : NULL;
}

static inline uint64_t hi_seq(const risk_memstore *ms, const hitem *h)
{
    return ms->hbase + h->idx;
}
static inline const hitem *hi_next(const risk_memstore *ms, const hitem *h)
{
    return h->next ? hidx_get(ms, h->next - 1) : NULL;
}

/* The page of index i, added if missing (two txns may race to add one: the
 * loser frees its own); NULL: ENOMEM. */
static _Atomic(hitem *) *hidx_page(risk_memstore *ms, uint64_t i)
{
    _Atomic(_Atomic(hitem *) *) *at = &ms->hdir[i >> HPAGE_BITS];
    _Atomic(hitem *) *pg = atomic_load_explicit(at, memory_order_acquire);
    if (pg != NULL)
        return pg;
    _Atomic(hitem *) *mine = risk_calloc(HPAGE, sizeof *mine);
    if (mine == NULL)
        return ms_nomem(), NULL;
    if (atomic_compare_exchange_strong_explicit(at, &pg, mine, memory_order_acq_rel,
                                                memory_order_acquire))
        return mine;
    risk_free(mine);
    return pg;
}

int hist_init(risk_memstore *ms)
{
    /* a page covers HPAGE seqs; the directory every 32-bit index. Both are
     * zeroed lazily by the kernel (large callocs): only what is used costs
     * memory. The first page is there from the start, so a first commit
     * that fails leaves no page behind. */
    if ((ms->hdir = risk_calloc(HPAGES, sizeof *ms->hdir)) == NULL)
        return ms_nomem();
    return hidx_page(ms, 0) ? RISK_OK : RISK_ENOMEM;
}

void hist_free(risk_memstore *ms)
{
    if (ms->hdir == NULL)
        return;
    for (size_t i = 0; i < HPAGES; i++)
        risk_free((void *)atomic_load_explicit(&ms->hdir[i], memory_order_relaxed));
    risk_free((void *)ms->hdir);
}

void hist_view(const risk_memstore *ms, const hitem *h, risk_history *out)
{
    memset(out, 0, sizeof *out);
    out->seq = hi_seq(ms, h);
    out->at = h->at;
    out->actor = (char *)istr(ms, h->actor);
    out->action = h->action;
    out->user_id = h->subj ? h->subj->u.id : NULL;
    out->event_id = (char *)h->event_id;
    out->policy = (h->flags & HI_POLICY) ? (char *)h->tail + h->note_len : NULL;
    out->level_before = h->level_before;
    out->level_after = h->level_after;
    out->state_before = h->state_before;
    out->state_after = h->state_after;
    out->changed = h->changed;
    out->note = h->note_len ? (char *)h->tail : NULL;
    memcpy(out->chain, h->chain, 32);
}

/* The stable copy of an event id: the event's own (this txn's, usually
 * the one it wrote) when there is one, else a new arena copy. */
static const char *stable_event_id(mtxn *t, const char *id)
{
    for (uint32_t i = 0; i < t->n_evl; i++)
        if (strcmp(t->evl[i]->e.id, id) == 0) {
            const evnode *n = (const evnode *)(t->evl[i]->node & ~(uintptr_t)1);
            return n ? n->id : t->evl[i]->old->id; /* NULL: patched in place */
        }
    return arena_strdup(&t->hm->ar, id);
}

int hist_prepare(risk_memstore *ms, mtxn *t, size_t first_sub)
{
    if (t->n_hist == 0)
        return RISK_OK;
    /* room in the seq index for every seq this txn reserved; an index is
     * 32 bits (4 billion items would need ~350 GB here anyway) */
    if (t->seq_lo < ms->hbase || t->seq_hi - ms->hbase >= UINT32_MAX)
        return risk_err(RISK_ENOMEM, "history: seq %llu out of this store's range",
                        (unsigned long long)t->seq_hi);
    for (uint64_t i = (t->seq_lo - ms->hbase) >> HPAGE_BITS;
         i <= (t->seq_hi - ms->hbase) >> HPAGE_BITS; i++)
        if (hidx_page(ms, i << HPAGE_BITS) == NULL)
            return RISK_ENOMEM;
    if (!atomic_load_explicit(&ms->h_used, memory_order_relaxed)) /* a read-mostly line */
        atomic_store_explicit(&ms->h_used, 1, memory_order_relaxed);
    size_t k = first_sub;
    for (size_t i = 0; i < t->n_hist; i++) {
        const risk_history *r = &t->hist[i]->r;
        size_t note = r->note ? strlen(r->note) + 1 : 0;
        size_t pol = r->policy ? strlen(r->policy) + 1 : 0;
        uint32_t actor = intern(ms, r->actor, t);
        const char *eid = r->event_id ? stable_event_id(t, r->event_id) : NULL;
        hitem *h = arena_alloc(&t->hm->ar, sizeof *h + note + pol, 8);
        if (actor == (uint32_t)-1 || (r->event_id && !eid) || !h)
            return RISK_ENOMEM;
        h->subj = r->user_id ? t->subs[k++] : NULL;
        h->event_id = eid;
        h->at = r->at;
        h->idx = (uint32_t)(r->seq - ms->hbase);
        h->next = 0;
        h->actor = actor;
        h->changed = r->changed;
        h->action = (uint8_t)r->action; /* ranges checked by append_history */
        h->level_before = (uint8_t)r->level_before;
        h->level_after = (uint8_t)r->level_after;
        h->state_before = (uint8_t)r->state_before;
        h->state_after = (uint8_t)r->state_after;
        h->flags = pol ? HI_POLICY : 0;
        h->note_len = (uint16_t)note;
        memcpy(h->chain, r->chain, 32);
        if (note)
            memcpy(h->tail, r->note, note);
        if (pol)
            memcpy(h->tail + note, r->policy, pol);
        t->items[i] = h;
    }
    return RISK_OK;
}

void hist_apply(risk_memstore *ms, mtxn *t)
{
    for (size_t i = 0; i < t->n_hist; i++) {
        hitem *h = t->items[i];
        subject *s = h->subj;
        if (s != NULL) { /* the user's list, under its shard's lock */
            if (s->h_tail == NULL || s->h_tail->idx < h->idx) { /* the usual case */
                if (s->h_tail)
                    s->h_tail->next = h->idx + 1;
                else
                    s->h_head = h;
                s->h_tail = h;
            } else if (s->h_head->idx > h->idx) {
                /* two txns of one user committed out of seq order (only
                 * possible without the engine's per-user lock): keep the
                 * list sorted */
                h->next = s->h_head->idx + 1;
                s->h_head = h;
            } else {
                hitem *p = s->h_head;
                while (p->next && p->next - 1 < h->idx)
                    p = hidx_get(ms, p->next - 1);
                h->next = p->next;
                p->next = h->idx + 1;
            }
        }
        /* complete: publish (the page is there since prepare) */
        _Atomic(hitem *) *pg = atomic_load_explicit(&ms->hdir[h->idx >> HPAGE_BITS],
                                                    memory_order_acquire);
        atomic_store_explicit(&pg[h->idx & (HPAGE - 1)], h, memory_order_release);
    }
}

/* Items are never freed before close. The whole feed needs no lock (the
 * seq index and interned strings are read without one, an item's fields
 * but its user-list link never change); a user's items are walked under
 * the read lock of the user's shard (the links). Views are built CHUNK at
 * a time and visited without any lock, so fn may run operations on this
 * store. */
int ms_read_history(void *ctx, const char *user_id, uint64_t since_seq,
                    risk_history_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    if (fn == NULL)
        return risk_err(RISK_EINVAL, "fn: NULL");
    risk_history buf[CHUNK];
    const hitem *cur = NULL;
    uint64_t next = since_seq;
    int started = 0;
    uint64_t uh = user_id ? hash_str(user_id) : 0;
    ushard *sh = user_id ? ush_of(ms, uh) : NULL;
    for (;;) {
        size_t n = 0;
        uint64_t wm = seq_watermark(ms);
        if (user_id == NULL) {
            if (next < ms->hbase)
                next = ms->hbase;
            for (; next < wm && n < CHUNK; next++) {
                const hitem *h = hidx_get(ms, next - ms->hbase);
                if (h != NULL)
                    hist_view(ms, h, &buf[n++]);
            }
        } else {
            ms_rdlock(&sh->lock);
            if (!started) {
                const subject *s = subject_find(&sh->users, uh, user_id);
                cur = s ? s->h_head : NULL;
            }
            for (; cur && n < CHUNK; cur = hi_next(ms, cur)) {
                if (hi_seq(ms, cur) >= wm) { /* sorted: the rest is not visible yet */
                    cur = NULL;
                    break;
                }
                if (hi_seq(ms, cur) >= since_seq)
                    hist_view(ms, cur, &buf[n++]);
            }
            ms_rdunlock(&sh->lock);
        }
        started = 1;
        if (n == 0)
            return 0;
        for (size_t i = 0; i < n; i++) {
            int rc = fn(&buf[i], arg);
            if (rc != 0)
                return rc;
        }
    }
}
