/* The in-memory store's committed state: hash maps, arenas, subjects and
 * the per-level lists, the shards' locks, the store's lifetime, bulk
 * loading for recovery and the committed-state visitors. Event nodes are
 * in lib/store_memory_events.c, interned strings in
 * lib/store_memory_intern.c, history in lib/store_memory_hist.c,
 * transactions in lib/store_memory.c (whose header comment explains the
 * layout); lib/memstore.h is what they share. */
#include "memstore.h"

#include <stdatomic.h>
#include <sys/mman.h>

int ms_nomem(void) { return risk_err(RISK_ENOMEM, "memstore: out of memory"); }

/* ---- maps ---- */
void map_free(map *m)
{
    if (m->s != m->inl)
        risk_free(m->s);
}

void map_place(map *m, uint64_t h, void *val)
{
    size_t mask = m->cap - 1, i = h & mask;
    while (m->s[i].val != NULL)
        i = (i + 1) & mask;
    m->s[i].hash = h;
    m->s[i].val = val;
    m->count++;
}

/* Make room for `extra` more entries beyond count + reserved (load ≤ 3/4)
 * and reserve them. ENOMEM leaves the map unchanged. */
int map_reserve(map *m, size_t extra)
{
    size_t need = m->count + m->reserved + extra;
    if (need * 4 > m->cap * 3) {
        size_t cap = m->cap ? m->cap : 8;
        while (need * 4 > cap * 3)
            cap *= 2;
        slot *s = risk_calloc(cap, sizeof *s);
        if (s == NULL)
            return risk_err(RISK_ENOMEM, "memstore: out of memory growing a table to %zu", cap);
        slot *old = m->s;
        size_t oldcap = m->cap;
        m->s = s;
        m->cap = cap;
        m->count = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].val != NULL)
                map_place(m, old[i].hash, old[i].val);
        if (old != m->inl)
            risk_free(old);
    }
    m->reserved += extra;
    return RISK_OK;
}

int map_add(map *m, uint64_t h, void *val)
{
    int rc = map_reserve(m, 1);
    if (rc != RISK_OK)
        return rc;
    m->reserved--;
    map_place(m, h, val);
    return RISK_OK;
}

/* Backward-shift deletion keeps every probe chain intact without
 * tombstones: the entry at j, after the hole at i, moves into the hole
 * unless its home lies cyclically in (i, j]. */
static int shift_stays(size_t home, size_t i, size_t j)
{
    return (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
}

/* Backward-shift deletion: keeps every probe chain intact without tombstones. */
void map_remove_at(map *m, size_t i)
{
    size_t mask = m->cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->s[j].val == NULL)
            break;
        if (!shift_stays(m->s[j].hash & mask, i, j)) {
            m->s[i] = m->s[j];
            i = j;
        }
    }
    m->s[i].val = NULL;
    m->count--;
}

/* ---- the users map (lib/memstore.h explains its slots) ---- */
static void *calloc64(size_t size, void **mem)
{
    *mem = risk_calloc(1, size + 63);
    return *mem ? (void *)(((uintptr_t)*mem + 63) & ~(uintptr_t)63) : NULL;
}

/* A users table of cap slots after a header line (utab_hdr): where an
 * outgrown table keeps its place in the retired list. */
typedef struct utab_hdr {
    uslot *next; /* the next retired table */
    void *mem;
} utab_hdr;
static utab_hdr *utab_hdr_of(uslot *s) { return (utab_hdr *)(void *)((char *)s - 64); }

static uslot *utab_alloc(size_t cap, void **mem)
{
    if (cap > ((size_t)1 << 32) || cap > (SIZE_MAX - 127) / sizeof(uslot))
        return NULL; /* (the slots keep the low half of the hash: it must place them) */
    uslot *s = calloc64((cap + 1) * sizeof(uslot), mem);
    if (s == NULL)
        return NULL;
    s++; /* after the header line */
    utab_hdr_of(s)->mem = *mem;
    return s;
}

/* Free the retired tables, unless a reader may be in one (after a growth). */
static void umap_reap(umap *m)
{
    if (m->retired == NULL || (m->ms != NULL && home_hazard(m->ms, m)))
        return;
    for (uslot *t = m->retired, *next; t != NULL; t = next) {
        next = utab_hdr_of(t)->next;
        risk_free(utab_hdr_of(t)->mem);
    }
    m->retired = NULL;
}

void umap_free(umap *m)
{
    m->ms = NULL; /* no reader is left */
    umap_reap(m);
    risk_free(m->mem);
}

/* The writers' half of the sequence lock (lib/memstore.h). */
static void umap_wbegin(umap *m)
{
    uint32_t v = atomic_load_explicit(&m->vseq, memory_order_relaxed);
    atomic_store_explicit(&m->vseq, v + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}
static void umap_wend(umap *m)
{
    uint32_t v = atomic_load_explicit(&m->vseq, memory_order_relaxed);
    atomic_store_explicit(&m->vseq, v + 1, memory_order_release);
}

/* What a sign-in reads of s, into its slot. */
static void uslot_set_user(uslot *sl, const subject *s)
{
    sl->has_user = s->has_user;
    sl->next_change_at = s->u.next_change_at;
    sl->key = risk_ptab_key(&s->u);
    sl->level = (uint8_t)s->u.level;
}

/* s's slot; NOPE: not in the map (never for a subject the map gave) */
static size_t umap_at(const umap *m, uint64_t h, const subject *s)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (m->s[i].val == s)
            return i;
        if (m->s[i].val == NULL)
            return NOPE;
    }
}

static size_t free_at(const uslot *tab, size_t cap, uint64_t h)
{
    size_t mask = cap - 1, i = h & mask;
    while (tab[i].val != NULL)
        i = (i + 1) & mask;
    return i;
}

int umap_reserve(umap *m, size_t extra)
{
    size_t need = m->count + extra;
    if (need * 8 <= m->cap * 7)
        return RISK_OK;
    size_t cap = m->cap;
    while (need * 8 > cap * 7)
        cap *= 2;
    void *mem;
    uslot *s = utab_alloc(cap, &mem);
    if (s == NULL)
        return risk_err(RISK_ENOMEM, "memstore: out of memory growing the users map to %zu", cap);
    for (size_t i = 0; i < m->cap; i++) /* not yet seen by any reader */
        if (m->s[i].val != NULL)
            s[free_at(s, cap, m->s[i].hash)] = m->s[i];
    uslot *old = m->s;
    void *old_mem = m->mem;
    umap_wbegin(m);
    /* s before cap: a reader that loads the new cap loads the new table */
    __atomic_store_n(&m->s, s, __ATOMIC_SEQ_CST);
    __atomic_store_n(&m->cap, cap, __ATOMIC_RELEASE);
    m->mem = mem;
    umap_wend(m);
    if (old_mem != NULL) {
        utab_hdr_of(old)->next = m->retired;
        m->retired = old;
    }
    umap_reap(m);
    return RISK_OK;
}

int umap_add(umap *m, uint64_t h, subject *s)
{
    int rc = umap_reserve(m, 1);
    if (rc != RISK_OK)
        return rc;
    uslot sl = {0};
    size_t len = strlen(s->u.id);
    sl.val = s;
    sl.hash = (uint32_t)h;
    sl.id_inl = len < USLOT_IDINL;
    if (sl.id_inl)
        memcpy(sl.id, s->u.id, len + 1);
    uslot_set_user(&sl, s);
    umap_wbegin(m);
    uslot_store(&m->s[free_at(m->s, m->cap, h)], &sl);
    __atomic_store_n(&m->count, m->count + 1, __ATOMIC_RELAXED);
    umap_wend(m);
    return RISK_OK;
}

/* Backward-shift deletion, as map_remove_at. */
void umap_remove(umap *m, uint64_t h, const subject *s) /* absent: nothing */
{
    size_t mask = m->cap - 1, i = umap_at(m, h, s), j = i;
    if (i == NOPE)
        return;
    umap_wbegin(m);
    for (;;) {
        j = (j + 1) & mask;
        if (m->s[j].val == NULL)
            break;
        if (!shift_stays(m->s[j].hash & mask, i, j)) {
            uslot_store(&m->s[i], &m->s[j]);
            i = j;
        }
    }
    uslot_store(&m->s[i], &(uslot){0});
    __atomic_store_n(&m->count, m->count - 1, __ATOMIC_RELAXED);
    umap_wend(m);
}

const char *policy_key(const void *v) { return ((const risk_policy *)v)->name; }
const char *meta_key(const void *v) { return ((const metanode *)v)->key; }
const char *ientry_key(const void *v) { return ((const ientry *)v)->s; }

/* ---- locks ----
 * mslock: one atomic word (a writer bit or the readers' count) and a count
 * of parked threads. A thread that cannot take it spins LOCK_SPIN pauses
 * (holds are about a microsecond), then parks on the condition variable
 * of one of PARKS lots (by the lock's address: a lot's broadcast may wake
 * threads waiting for other locks, which look again and park again). No
 * wake-up is lost: a parking thread counts itself in `waiters` and then
 * looks at the lock again, a releasing one frees the lock and then looks
 * at `waiters`, all four seq_cst, so one of them sees the other; and the
 * waker takes the lot's mutex, which the parker holds from its count
 * until its wait. */
#define PARKS 64
static struct park {
    pthread_mutex_t mu;
    pthread_cond_t cv;
} parks[PARKS];
static pthread_once_t parks_once = PTHREAD_ONCE_INIT;

static void parks_init(void)
{
    for (int i = 0; i < PARKS; i++) {
        pthread_mutex_init(&parks[i].mu, NULL); /* cannot fail in glibc */
        pthread_cond_init(&parks[i].cv, NULL);
    }
}

static struct park *park_of(const mslock *l)
{
    pthread_once(&parks_once, parks_init);
    return &parks[((uintptr_t)l / 64) % PARKS];
}

static int msl_try(mslock *l, int writer) { return writer ? msl_trywr(l) : msl_tryrd(l); }

void msl_wait(mslock *l, int writer)
{
    for (int i = 0; i < LOCK_SPIN; i++) {
        ms_pause();
        if (msl_try(l, writer))
            return;
    }
    struct park *p = park_of(l);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&l->waiters, 1);
    while (!msl_try(l, writer))
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&l->waiters, 1);
    pthread_mutex_unlock(&p->mu);
}

void msl_wake(mslock *l)
{
    struct park *p = park_of(l);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

mslock *lk_lock(risk_memstore *ms, unsigned id)
{
    if (id == LK_G)
        return &ms->glock;
    if (id < LK_E(0))
        return &ms->ush[id - LK_U(0)].lock;
    return &ms->esh[id - LK_E(0)].lock;
}

static void wrlock_spin(mslock *l)
{
    if (!msl_trywr(l))
        msl_wait(l, 1);
}

static int trywrlock_spin(mslock *l)
{
    for (int i = 0; i < LOCK_SPIN; i++) {
        if (msl_trywr(l))
            return 1;
        ms_pause();
    }
    return msl_trywr(l);
}

static void release_first(risk_memstore *ms, const lockset *s, unsigned n)
{
    while (n-- > 0)
        ms_wrunlock(lk_lock(ms, s->id[n]));
}

/* Try-lock s->id[from..] (the ones before are held); on a miss let go of
 * every lock of s taken and return the position missed, else s->n. */
static unsigned try_from(risk_memstore *ms, const lockset *s, unsigned from)
{
    for (unsigned i = from; i < s->n; i++)
        if (!trywrlock_spin(lk_lock(ms, s->id[i]))) {
            release_first(ms, s, i);
            return i;
        }
    return s->n;
}

/* Wait until a lock missed is free, without holding anything. */
static void wait_free(risk_memstore *ms, unsigned id)
{
    mslock *l = lk_lock(ms, id);
    wrlock_spin(l);
    ms_wrunlock(l);
}

void lockset_acquire(risk_memstore *ms, const lockset *s)
{
    if (s->n == 0)
        return;
    for (;;) {
        wrlock_spin(lk_lock(ms, s->id[0])); /* holding nothing: may wait */
        unsigned missed = try_from(ms, s, 1);
        if (missed == s->n)
            return;
        wait_free(ms, s->id[missed]);
    }
}

void lockset_release(risk_memstore *ms, const lockset *s) { release_first(ms, s, s->n); }

void lockset_extend(risk_memstore *ms, lockset *held, const lockset *more)
{
    lockset all = *held;
    for (unsigned i = 0; i < more->n; i++)
        lk_add(&all, more->id[i]);
    if (all.n == held->n)
        return;
    /* when every new lock comes after the held ones, take them in order */
    unsigned missed = all.n;
    if (memcmp(all.id, held->id, held->n * sizeof *held->id) == 0) {
        for (unsigned i = held->n; i < all.n && missed == all.n; i++)
            if (!trywrlock_spin(lk_lock(ms, all.id[i]))) {
                release_first(ms, &all, i);
                missed = i;
            }
    } else {
        lockset_release(ms, held);
        missed = 0;
    }
    if (missed != all.n) {
        wait_free(ms, all.id[missed]);
        lockset_acquire(ms, &all);
    }
    *held = all;
}

/* ---- arena ---- */
/* A chunk of cap bytes. A full-size one is placed at a 2 MiB boundary
 * inside an allocation 2 MiB larger (the slack is address space only: a
 * large allocation's untouched pages cost no memory) and the kernel is
 * asked to back it with one huge page where it can (Linux MADV_HUGEPAGE,
 * a hint): its 512 first-touch page faults become one (a fault cost ~6
 * us of VM exit here: 8% of an ingest), and the records in it take one
 * TLB entry. */
static achunk *chunk_new(size_t cap)
{
#if defined(MADV_HUGEPAGE)
    if (cap == ARENA_CHUNK) {
        const uintptr_t huge = (uintptr_t)2 << 20;
        void *raw = risk_malloc(sizeof(achunk) + cap + huge);
        if (raw == NULL)
            return NULL;
        uintptr_t mem = ((uintptr_t)raw + sizeof(achunk) + huge - 1) & ~(huge - 1);
        achunk *c = (achunk *)(mem - offsetof(achunk, mem));
        c->raw = raw;
        (void)madvise((void *)mem, cap, MADV_HUGEPAGE);
        return c;
    }
#endif
    achunk *c = risk_malloc(sizeof *c + cap);
    if (c != NULL)
        c->raw = c;
    return c;
}

void *arena_alloc(arena *a, size_t n, size_t align)
{
    achunk *c = a->head;
    if (c != NULL) /* chunks start 8-aligned: align the offset */
        c->used = (c->used + align - 1) & ~(align - 1);
    if (c == NULL || c->cap - c->used < n) {
        /* a store has an arena per shard: they start small and double */
        size_t cap = c == NULL ? ARENA_FIRST : c->cap < ARENA_CHUNK ? c->cap * 2 : ARENA_CHUNK;
        if (cap < n)
            cap = n;
        if ((c = chunk_new(cap)) == NULL) {
            ms_nomem();
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    return p;
}

char *arena_strdup(arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = arena_alloc(a, n, 1); /* strings need no alignment */
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

void arena_restore(arena *a, arena_mark m)
{
    while (a->head != NULL && a->head != m.head) {
        achunk *c = a->head;
        a->head = c->next;
        risk_free(c->raw);
    }
    if (m.head != NULL)
        m.head->used = m.used;
}

void arena_free(arena *a)
{
    for (achunk *c = a->head, *n; c != NULL; c = n) {
        n = c->next;
        risk_free(c->raw);
    }
    a->head = NULL;
}

/* ---- homes ---- */
static atomic_uint_fast64_t store_ids;
static _Thread_local uint64_t tl_store; /* the store (by number) of tl_home */
static _Thread_local home *tl_home;

home *home_get(risk_memstore *ms)
{
    if (tl_store == ms->id)
        return tl_home;
    pthread_t me = pthread_self();
    pthread_mutex_lock(&ms->homes_mu);
    home *hm = ms->homes;
    while (hm != NULL && !pthread_equal(hm->owner, me))
        hm = hm->next;
    if (hm == NULL && (hm = risk_calloc(1, sizeof *hm)) != NULL) {
        atomic_flag_clear(&hm->busy);
        pthread_mutex_init(&hm->seq_mu, NULL); /* glibc's cannot fail */
        atomic_init(&hm->open_lo, SEQ_NONE);
        hm->owner = me;
        hm->next = ms->homes;
        ms->homes = hm;
    }
    pthread_mutex_unlock(&ms->homes_mu);
    if (hm == NULL)
        return ms_nomem(), NULL;
    tl_store = ms->id;
    tl_home = hm;
    return hm;
}

int home_hazard(risk_memstore *ms, const void *m)
{
    int found = 0;
    pthread_mutex_lock(&ms->homes_mu);
    for (home *hm = ms->homes; hm != NULL && !found; hm = hm->next)
        found = atomic_load(&hm->hazard) == m; /* seq_cst */
    pthread_mutex_unlock(&ms->homes_mu);
    return found;
}

/* ---- lists ---- */
void level_link(ushard *sh, subject *s)
{
    uint32_t l = s->u.level < N_LEVELS ? s->u.level : 0;
    s->lprev = NULL;
    s->lnext = sh->levels[l];
    if (s->lnext)
        s->lnext->lprev = s;
    sh->levels[l] = s;
    sh->level_n[l]++;
}

void level_unlink(ushard *sh, subject *s)
{
    uint32_t l = s->u.level < N_LEVELS ? s->u.level : 0;
    if (s->lprev)
        s->lprev->lnext = s->lnext;
    else
        sh->levels[l] = s->lnext;
    if (s->lnext)
        s->lnext->lprev = s->lprev;
    sh->level_n[l]--;
}

void subject_set_user(risk_memstore *ms, uint64_t h, subject *s, const risk_user *u)
{
    size_t at = offsetof(risk_user, mfa_registered); /* id is the first field */
    memcpy((char *)&s->u + at, (const char *)u + at, sizeof *u - at);
    s->has_user = 1;
    umap *m = &ush_of(ms, h)->users;
    size_t i = umap_at(m, h, s);
    if (i != NOPE) {
        uslot sl = m->s[i];
        uslot_set_user(&sl, s);
        umap_wbegin(m);
        uslot_store(&m->s[i], &sl);
        umap_wend(m);
    }
}

subject *subject_get(risk_memstore *ms, uint64_t h, const char *id)
{
    ushard *sh = ush_of(ms, h);
    subject *s = subject_find(&sh->users, h, id);
    if (s != NULL)
        return s;
    size_t len = strlen(id);
    int inl = len < SUBJECT_IDINL;
    s = risk_calloc(1, sizeof *s + (inl ? 0 : len + 1));
    if (s == NULL) {
        ms_nomem();
        return NULL;
    }
    s->u.id = inl ? s->idbuf : s->idlong;
    memcpy(s->u.id, id, len + 1);
    if (umap_add(&sh->users, h, s) != RISK_OK) {
        risk_free(s);
        ms_nomem();
        return NULL;
    }
    return s;
}

void subject_free(subject *s)
{
    risk_free(s->evs);
    risk_free(s);
}

/* ---- store lifetime ---- */
/* The store's mutexes (the shards' locks start zeroed: free). */
static int locks_init(risk_memstore *ms)
{
    for (unsigned id = 0; id < LK_N; id++) {
        atomic_init(&lk_lock(ms, id)->s, 0);
        atomic_init(&lk_lock(ms, id)->waiters, 0);
    }
    if (pthread_mutex_init(&ms->intern_mu, NULL) != 0 ||
        pthread_mutex_init(&ms->homes_mu, NULL) != 0) { /* not reached: glibc's cannot fail */
        return risk_err(RISK_ENOMEM, "memstore: cannot create the locks");
    }
    return RISK_OK;
}

int risk_memstore_new(risk_memstore **out, int keep_history)
{
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    risk_memstore *ms = risk_calloc(1, sizeof *ms);
    if (ms == NULL)
        return ms_nomem();
    ms->ush = calloc64(N_USHARDS * sizeof *ms->ush, &ms->ush_mem);
    ms->esh = calloc64(N_ESHARDS * sizeof *ms->esh, &ms->esh_mem);
    ms->first_users = calloc64(N_USHARDS * USERS_FIRST * sizeof *ms->first_users,
                               &ms->first_users_mem);
    ms->first_events = risk_calloc(N_ESHARDS * ETAB_FIRST, sizeof *ms->first_events);
    if (ms->ush == NULL || ms->esh == NULL || ms->first_users == NULL ||
        ms->first_events == NULL || locks_init(ms) != RISK_OK) {
        risk_free(ms->ush_mem);
        risk_free(ms->esh_mem);
        risk_free(ms->first_users_mem);
        risk_free(ms->first_events);
        risk_free(ms);
        return ms_nomem();
    }
    for (unsigned i = 0; i < N_USHARDS; i++) {
        ushard *sh = &ms->ush[i];
        sh->users.s = ms->first_users + i * USERS_FIRST;
        sh->users.cap = USERS_FIRST;
        sh->users.ms = ms;
    }
    for (unsigned i = 0; i < N_ESHARDS; i++) {
        etab *t = &ms->esh[i].t;
        t->g = t->inl = ms->first_events + i * ETAB_FIRST;
        t->ng = ETAB_FIRST;
    }
    ms->policies.key = policy_key;
    ms->meta.key = meta_key;
    ms->id = 1 + atomic_fetch_add_explicit(&store_ids, 1, memory_order_relaxed);
    ms->keep_history = keep_history != 0;
    atomic_init(&ms->next_seq, 1);
    ms->hbase = 1;
    for (int i = 0; i < N_SPARE_TXNS; i++)
        atomic_init(&ms->spare[i].t, NULL);
    /* one txn ready from the start: a single thread's begin and commit or
     * rollback then never change how many blocks are allocated */
    /* and the creating thread's home: a single-threaded user's commits or
     * rollbacks then never change how many blocks are allocated either */
    mtxn *t = NULL;
    if (intern_init(ms) != RISK_OK || (ms->keep_history && hist_init(ms) != RISK_OK) ||
        home_get(ms) == NULL || (t = txn_new()) == NULL) {
        risk_memstore_free(ms);
        return ms_nomem();
    }
    atomic_init(&ms->spare[0].t, t);
    *out = ms;
    return RISK_OK;
}

/* The engine never closes a store with open transactions; any left open
 * must be rolled back first or they leak. */
void risk_memstore_free(risk_memstore *ms)
{
    if (ms == NULL)
        return;
    for (unsigned i = 0; i < N_ESHARDS; i++) {
        etab_free(&ms->esh[i].t); /* reads nodes: before the arenas go */
        risk_free(ms->esh[i].pend.v);
    }
    for (unsigned i = 0; i < N_USHARDS; i++) {
        ushard *sh = &ms->ush[i];
        MAP_EACH(&sh->users, j)
            subject_free(sh->users.s[j].val);
        umap_free(&sh->users);
    }
    for (home *hm = ms->homes, *next; hm != NULL; hm = next) {
        next = hm->next;
        arena_free(&hm->ar);
        pthread_mutex_destroy(&hm->seq_mu);
        risk_free(hm);
    }
    intern_free(ms);
    hist_free(ms);
    for (int k = 0; k < N_SPARE_TXNS; k++)
        txn_free(atomic_load(&ms->spare[k].t));
    MAP_EACH(&ms->policies, i)
        risk_policy_free(ms->policies.s[i].val);
    MAP_EACH(&ms->meta, i)
        risk_free(ms->meta.s[i].val);
    risk_free(ms->policies.s);
    risk_free(ms->meta.s);
    pthread_mutex_destroy(&ms->intern_mu);
    pthread_mutex_destroy(&ms->homes_mu);
    risk_free(ms->first_users_mem);
    risk_free(ms->first_events);
    risk_free(ms->ush_mem);
    risk_free(ms->esh_mem);
    risk_free(ms);
}

/* ---- bulk loading (recovery: one thread, nothing shared yet) ---- */
void risk_memstore_reserve(risk_memstore *ms, size_t users, size_t events)
{
    /* hashing spreads them evenly: each shard gets room for the mean (the
     * tables fill to 7/8; a shard that gets more grows when it does) */
    size_t u = users / N_USHARDS, e = events / N_ESHARDS;
    for (unsigned i = 0; i < N_USHARDS; i++)
        umap_reserve(&ms->ush[i].users, u);
    for (unsigned i = 0; i < N_ESHARDS; i++)
        if (etab_reserve(&ms->esh[i].t, e) == RISK_OK)
            ms->esh[i].t.reserved -= e;
}

int risk_memstore_load_user(risk_memstore *ms, risk_user *user)
{
    if (ms == NULL || user == NULL || user->id == NULL) {
        risk_user_free(user);
        return risk_err(RISK_EINVAL, "user: NULL");
    }
    uint64_t h = hash_str(user->id);
    subject *s = subject_get(ms, h, user->id);
    if (s == NULL) {
        risk_user_free(user);
        return RISK_ENOMEM;
    }
    if (s->has_user)
        level_unlink(ush_of(ms, h), s);
    subject_set_user(ms, h, s, user);
    level_link(ush_of(ms, h), s);
    risk_user_free(user);
    return RISK_OK;
}

int risk_memstore_load_policy(risk_memstore *ms, risk_policy *policy)
{
    if (ms == NULL || policy == NULL || policy->name == NULL) {
        risk_policy_free(policy);
        return risk_err(RISK_EINVAL, "policy: NULL");
    }
    uint64_t h = hash_str(policy->name);
    size_t at = map_find(&ms->policies, h, policy->name);
    if (at != NOPE) {
        risk_policy_free(ms->policies.s[at].val);
        ms->policies.s[at].val = policy;
        return RISK_OK;
    }
    int rc = map_add(&ms->policies, h, policy);
    if (rc != RISK_OK)
        risk_policy_free(policy);
    return rc;
}

void risk_memstore_load_remove_policy(risk_memstore *ms, const char *name)
{
    size_t at = map_find(&ms->policies, hash_str(name), name);
    if (at != NOPE) {
        risk_policy_free(ms->policies.s[at].val);
        map_remove_at(&ms->policies, at);
    }
}

int meta_set(map *m, const char *key, const uint8_t *val, size_t len)
{
    uint64_t h = hash_str(key);
    metanode *n = map_get(m, h, key);
    if (n == NULL) {
        size_t kl = strlen(key);
        if ((n = risk_malloc(sizeof *n + kl + 1)) == NULL)
            return ms_nomem();
        memcpy(n->key, key, kl + 1);
        n->ver = 0;
        if (map_add(m, h, n) != RISK_OK) {
            risk_free(n);
            return ms_nomem();
        }
    }
    n->len = len;
    if (len)
        memcpy(n->val, val, len);
    return RISK_OK;
}

int risk_memstore_load_meta(risk_memstore *ms, const char *key, const uint8_t *val, size_t len)
{
    size_t kl = key ? strlen(key) : 0;
    if (ms == NULL || kl == 0 || kl > RISK_ID_MAX || len > META_MAX || (len && val == NULL))
        return risk_err(RISK_EINVAL, "key: NULL, empty or too long, or value over 256 bytes");
    return meta_set(&ms->meta, key, val, len);
}

/* ---- committed-state visitors for wrappers ---- */
/* fn runs under the read lock of the shard being visited. */
int risk_memstore_each_user(risk_memstore *ms, risk_user_visit_fn fn, void *arg)
{
    int rc = 0;
    for (unsigned k = 0; k < N_USHARDS && rc == 0; k++) {
        ushard *sh = &ms->ush[k];
        ms_rdlock(&sh->lock);
        MAP_EACH(&sh->users, i) {
            const subject *su = sh->users.s[i].val;
            if (rc == 0 && su->has_user)
                rc = fn(&su->u, arg);
        }
        ms_rdunlock(&sh->lock);
    }
    return rc;
}

int risk_memstore_each_policy(risk_memstore *ms, risk_policy_visit_fn fn, void *arg)
{
    int rc = 0;
    ms_rdlock(&ms->glock);
    MAP_EACH(&ms->policies, i)
        if (rc == 0)
            rc = fn(ms->policies.s[i].val, arg);
    ms_rdunlock(&ms->glock);
    return rc;
}

int risk_memstore_each_meta(risk_memstore *ms, risk_meta_visit_fn fn, void *arg)
{
    int rc = 0;
    ms_rdlock(&ms->glock);
    MAP_EACH(&ms->meta, i) {
        const metanode *n = ms->meta.s[i].val;
        if (rc == 0)
            rc = fn(n->key, n->val, n->len, arg);
    }
    ms_rdunlock(&ms->glock);
    return rc;
}
