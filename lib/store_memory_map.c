/* The in-memory store's committed state: hash maps, the arena, interned
 * strings, subjects and the per-level lists, locks, the store's lifetime,
 * bulk loading for recovery and the committed-state visitors. Event nodes
 * are in lib/store_memory_events.c, history in lib/store_memory_hist.c,
 * transactions in lib/store_memory.c (whose header comment explains the
 * layout); lib/memstore.h is what they share. */
#include "memstore.h"

#include <stdatomic.h>

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

/* Backward-shift deletion: keeps every probe chain intact without tombstones. */
void map_remove_at(map *m, size_t i)
{
    size_t mask = m->cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->s[j].val == NULL)
            break;
        size_t home = m->s[j].hash & mask;
        /* entry j may move to the hole i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->s[i] = m->s[j];
            i = j;
        }
    }
    m->s[i].val = NULL;
    m->count--;
}

const char *subject_key(const void *v) { return ((const subject *)v)->u.id; }
const char *policy_key(const void *v) { return ((const risk_policy *)v)->name; }
const char *meta_key(const void *v) { return ((const metanode *)v)->key; }
const char *ientry_key(const void *v) { return ((const ientry *)v)->s; }

/* ---- locks ---- */
static atomic_uint stripe_next;
static _Thread_local unsigned stripe_mine; /* 0: not assigned yet */

/* Threads are spread round-robin over the stripes as they first read. */
unsigned ms_stripe_pick(void)
{
    if (stripe_mine == 0)
        stripe_mine = 1 + atomic_fetch_add_explicit(&stripe_next, 1, memory_order_relaxed) %
                              N_STRIPES;
    return stripe_mine - 1;
}

void ms_wrlock(risk_memstore *ms)
{
    for (unsigned k = 0; k < N_STRIPES; k++) {
        pthread_rwlock_t *l = &ms->locks[k].lock;
        for (int i = 0; i < LOCK_SPIN && pthread_rwlock_trywrlock(l) != 0; i++)
            ms_pause();
        if (pthread_rwlock_trywrlock(l) != 0)
            pthread_rwlock_wrlock(l);
    }
}

void ms_rdlock_slow(pthread_rwlock_t *l)
{
    for (int i = 0; i < LOCK_SPIN; i++) {
        ms_pause();
        if (pthread_rwlock_tryrdlock(l) == 0)
            return;
    }
    pthread_rwlock_rdlock(l);
}

void ms_wrunlock(risk_memstore *ms)
{
    for (unsigned k = N_STRIPES; k-- > 0;)
        pthread_rwlock_unlock(&ms->locks[k].lock);
}

/* ---- arena ---- */
void *arena_alloc(arena *a, size_t n, size_t align)
{
    achunk *c = a->head;
    if (c != NULL) /* chunks start 8-aligned: align the offset */
        c->used = (c->used + align - 1) & ~(align - 1);
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if ((c = risk_malloc(sizeof *c + cap)) == NULL) {
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
        risk_free(c);
    }
    if (m.head != NULL)
        m.head->used = m.used;
}

void arena_free(arena *a)
{
    for (achunk *c = a->head, *n; c != NULL; c = n) {
        n = c->next;
        risk_free(c);
    }
    a->head = NULL;
}

/* ---- interned strings ---- */
/* A cheap key of s for a txn's guess cache: length, first and last 8 bytes. */
static unsigned guess_key(const char *s, size_t n)
{
    uint64_t a = 0, b = 0;
    memcpy(&a, s, n < 8 ? n : 8);
    if (n > 8)
        memcpy(&b, s + n - 8, 8);
    return (unsigned)(((a ^ (b * 0x9e3779b97f4a7c15ULL) ^ n) * 0xff51afd7ed558ccdULL) >> 56) %
           ICACHE;
}

uint32_t intern(risk_memstore *ms, const char *s, uint32_t *cache)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s) + 1;
    uint32_t *guess = cache ? &cache[guess_key(s, n - 1)] : NULL;
    if (guess && *guess != 0 && *guess < ms->n_istr && strcmp(ms->istr[*guess], s) == 0)
        return *guess;
    uint64_t h = hash_str(s);
    const ientry *e = map_get(&ms->interns, h, s);
    uint32_t idx;
    if (e != NULL) {
        idx = e->idx;
    } else {
        if (ms->n_istr + 1 >= ms->cap_istr) {
            uint32_t cap = ms->cap_istr ? ms->cap_istr * 2 : 64;
            const char **v = risk_realloc((void *)ms->istr, cap * sizeof *v);
            if (v == NULL)
                return ms_nomem(), (uint32_t)-1;
            ms->istr = v;
            ms->cap_istr = cap;
        }
        ientry *ne = risk_malloc(sizeof *ne + n);
        if (ne == NULL || map_add(&ms->interns, h, ne) != RISK_OK) {
            risk_free(ne);
            return ms_nomem(), (uint32_t)-1;
        }
        memcpy(ne->s, s, n);
        if (ms->n_istr == 0)
            ms->n_istr = 1; /* index 0 is NULL */
        ne->idx = ms->n_istr++;
        ms->istr[ne->idx] = ne->s;
        idx = ne->idx;
    }
    if (guess)
        *guess = idx;
    return idx;
}

void intern_restore(risk_memstore *ms, uint32_t mark)
{
    while (ms->n_istr > mark && ms->n_istr > 1) {
        const char *str = ms->istr[--ms->n_istr];
        size_t at = map_find(&ms->interns, hash_str(str), str);
        ientry *e = ms->interns.s[at].val;
        map_remove_at(&ms->interns, at);
        risk_free(e);
    }
    if (mark == 0)
        ms->n_istr = 0;
}

/* ---- lists ---- */
void level_link(risk_memstore *ms, subject *s)
{
    uint32_t l = s->u.level < N_LEVELS ? s->u.level : 0;
    s->lprev = NULL;
    s->lnext = ms->levels[l];
    if (s->lnext)
        s->lnext->lprev = s;
    ms->levels[l] = s;
    ms->level_n[l]++;
}

void level_unlink(risk_memstore *ms, subject *s)
{
    uint32_t l = s->u.level < N_LEVELS ? s->u.level : 0;
    if (s->lprev)
        s->lprev->lnext = s->lnext;
    else
        ms->levels[l] = s->lnext;
    if (s->lnext)
        s->lnext->lprev = s->lprev;
    ms->level_n[l]--;
}

subject *subject_get(risk_memstore *ms, uint64_t h, const char *id)
{
    subject *s = subject_find(&ms->users, h, id);
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
    if (map_add(&ms->users, h, s) != RISK_OK) {
        risk_free(s);
        ms_nomem();
        return NULL;
    }
    return s;
}

void subject_free(subject *s) { risk_free(s); }

/* ---- store lifetime ---- */
int risk_memstore_new(risk_memstore **out, int keep_history)
{
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    risk_memstore *ms = risk_calloc(1, sizeof *ms);
    if (ms == NULL)
        return ms_nomem();
    unsigned k = 0;
    for (; k < N_STRIPES; k++)
        if (pthread_rwlock_init(&ms->locks[k].lock, NULL) != 0)
            break;
    if (k < N_STRIPES || pthread_mutex_init(&ms->seq_mu, NULL) != 0) {
        while (k-- > 0)
            pthread_rwlock_destroy(&ms->locks[k].lock);
        risk_free(ms);
        return risk_err(RISK_ENOMEM, "memstore: cannot create the locks");
    }
    ms->users.key = subject_key;
    ms->policies.key = policy_key;
    ms->meta.key = meta_key;
    ms->interns.key = ientry_key;
    ms->keep_history = keep_history != 0;
    ms->next_seq = 1;
    ms->hbase = 1;
    atomic_init(&ms->wm, 1);
    for (int i = 0; i < N_SPARE_TXNS; i++)
        atomic_init(&ms->spare[i].t, NULL);
    if (etab_init(&ms->events) != RISK_OK) {
        risk_memstore_free(ms);
        return RISK_ENOMEM;
    }
    /* one txn ready from the start: a single thread's begin and commit or
     * rollback then never change how many blocks are allocated */
    mtxn *t = txn_new();
    if (t == NULL) {
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
    MAP_EACH(&ms->users, i)
        subject_free(ms->users.s[i].val);
    etab_free(ms);
    MAP_EACH(&ms->interns, i)
        risk_free(ms->interns.s[i].val);
    for (int k = 0; k < N_SPARE_TXNS; k++)
        risk_free(atomic_load(&ms->spare[k].t));
    MAP_EACH(&ms->policies, i)
        risk_policy_free(ms->policies.s[i].val);
    MAP_EACH(&ms->meta, i)
        risk_free(ms->meta.s[i].val);
    risk_free(ms->users.s);
    risk_free(ms->policies.s);
    risk_free(ms->meta.s);
    risk_free(ms->interns.s);
    risk_free((void *)ms->istr);
    risk_free(ms->hidx);
    arena_free(&ms->ar);
    pthread_mutex_destroy(&ms->seq_mu);
    for (unsigned k = 0; k < N_STRIPES; k++)
        pthread_rwlock_destroy(&ms->locks[k].lock);
    risk_free(ms);
}

/* ---- bulk loading (recovery: one thread, nothing shared yet) ---- */
void risk_memstore_reserve(risk_memstore *ms, size_t users, size_t events)
{
    if (map_reserve(&ms->users, users) == RISK_OK)
        ms->users.reserved -= users;
    if (etab_reserve(&ms->events, events) == RISK_OK)
        ms->events.reserved -= events;
}

int risk_memstore_load_user(risk_memstore *ms, risk_user *user)
{
    if (ms == NULL || user == NULL || user->id == NULL) {
        risk_user_free(user);
        return risk_err(RISK_EINVAL, "user: NULL");
    }
    subject *s = subject_get(ms, hash_str(user->id), user->id);
    if (s == NULL) {
        risk_user_free(user);
        return RISK_ENOMEM;
    }
    if (s->has_user)
        level_unlink(ms, s);
    char *id = user->id, *sid = s->u.id;
    s->u = *user;
    s->u.id = sid;
    s->has_user = 1;
    level_link(ms, s);
    user->id = id;
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

/* ---- committed-state visitors for wrappers (read lock held during fn) ---- */
#define EACH_BODY(m, EXPR)                                 \
    int rc = 0;                                            \
    unsigned k_ = ms_stripe();                             \
    ms_rdlock(ms, k_);                                     \
    for (size_t i = 0; i < (m).cap && rc == 0; i++)        \
        if ((m).s[i].val != NULL)                          \
            rc = (EXPR);                                   \
    ms_rdunlock(ms, k_);                                   \
    return rc

int risk_memstore_each_user(risk_memstore *ms, risk_user_visit_fn fn, void *arg)
{
    EACH_BODY(ms->users, ((subject *)ms->users.s[i].val)->has_user
                             ? fn(&((subject *)ms->users.s[i].val)->u, arg)
                             : 0);
}

int risk_memstore_each_policy(risk_memstore *ms, risk_policy_visit_fn fn, void *arg)
{
    EACH_BODY(ms->policies, fn(ms->policies.s[i].val, arg));
}

int risk_memstore_each_meta(risk_memstore *ms, risk_meta_visit_fn fn, void *arg)
{
    EACH_BODY(ms->meta, fn(((metanode *)ms->meta.s[i].val)->key,
                           ((metanode *)ms->meta.s[i].val)->val,
                           ((metanode *)ms->meta.s[i].val)->len, arg));
}
