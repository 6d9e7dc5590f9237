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
 * History sequence numbers come from a sequencer token (mutex + condvar,
 * so apply may run on another thread than reserve_seq): the first
 * reserve_seq of a txn takes it, commit/rollback gives it back. Commits
 * carrying history are therefore published in seq order.
 *
 * Locking: one pthread rwlock over all committed state. Callbacks given to
 * view_user, user_events, list_policies and risk_memstore_each_* run under
 * the read lock: they must not commit to this store (deadlock); they may
 * read it (glibc's default rwlock lets a reader re-enter). list_users
 * and read_history call fn without the lock (they copy first), so a visitor
 * may run whole operations on the store. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

#define NOPE ((size_t)-1)
#define META_MAX 256
#define N_LEVELS 4
#define CHUNK 64
#define TXN_INLINE_SLOTS 8 /* power of two: 6 entries before growing */
#define TXN_INLINE_HIST 4
#define TXN_INLINE_SUBS 16

/* ---- hashing: 8 bytes per step, 64x64→128 multiply folding ---- */
static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    __uint128_t m = (__uint128_t)a * b;
    return (uint64_t)m ^ (uint64_t)(m >> 64);
#else
    uint64_t h = a * b;
    return h ^ (h >> 29) ^ ((a >> 32) * (b | 1));
#endif
}

static uint64_t hash_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    uint64_t h = 0x243f6a8885a308d3ULL ^ n;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = fold_mul(h ^ w, 0x9e3779b97f4a7c15ULL);
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = fold_mul(h ^ w ^ 0xa0761d6478bd642fULL, 0xe7037ed1a0b428dbULL);
    return h ^ (h >> 32);
}

/* ---- open-addressing map: string key taken from the value ---- */
typedef const char *(*key_fn)(const void *val);
typedef struct slot {
    uint64_t hash;
    void *val; /* NULL: empty */
} slot;
typedef struct map {
    slot *s;
    size_t cap, count, reserved; /* reserved: inserts promised by prepared txns */
    key_fn key;
    slot *inl; /* a caller-owned first table (txn maps), never freed here */
} map;

static void map_free(map *m)
{
    if (m->s != m->inl)
        risk_free(m->s);
}

static size_t map_find(const map *m, uint64_t h, const char *key)
{
    if (m->count == 0)
        return NOPE;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const slot *sl = &m->s[i];
        if (sl->val == NULL)
            return NOPE;
        if (sl->hash == h && strcmp(m->key(sl->val), key) == 0)
            return i;
    }
}

static void *map_get(const map *m, uint64_t h, const char *key)
{
    size_t i = map_find(m, h, key);
    return i == NOPE ? NULL : m->s[i].val;
}

/* Insert a key known to be absent into a table known to have room. */
static void map_place(map *m, uint64_t h, void *val)
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
static int map_reserve(map *m, size_t extra)
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

/* Insert an absent key, growing if needed. */
static int map_add(map *m, uint64_t h, void *val)
{
    int rc = map_reserve(m, 1);
    if (rc != RISK_OK)
        return rc;
    m->reserved--;
    map_place(m, h, val);
    return RISK_OK;
}

/* Backward-shift deletion: keeps every probe chain intact without tombstones. */
static void map_remove_at(map *m, size_t i)
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

#define MAP_EACH(m, i) for (size_t i = 0; i < (m)->cap; i++) if ((m)->s[i].val != NULL)

/* ---- nodes ---- */
struct subject;
typedef struct evnode {
    risk_event *ev;
    struct subject *owner;
    struct evnode *prev, *next; /* the owner's events */
} evnode;

typedef struct hnode {
    risk_history *item;
    struct hnode *next; /* the subject's next item (committed nodes are never freed before close) */
} hnode;

typedef struct mtxn mtxn;

/* The committed user is embedded (its id points at the subject's own id):
 * a sign-in then touches slot → subject only, and a user commit allocates
 * nothing. This relies on `id` being risk_user's only pointer field. */
typedef struct subject {
    risk_user u;      /* valid while has_user */
    uint8_t has_user; /* 0 until the first put_user commits */
    struct subject *lprev, *lnext; /* level list (only while has_user) */
    evnode *ev_head;
    hnode *h_head, *h_tail;
    mtxn *claim;  /* a prepared txn that writes this user */
    size_t pins;  /* prepared txns referring to this subject */
    char id[];
} subject;

typedef struct metanode {
    size_t len;
    uint8_t val[META_MAX];
    char key[];
} metanode;

typedef struct pnode { /* buffered policy write; p NULL = removal */
    risk_policy *p;
    char name[];
} pnode;

static const char *subject_key(const void *v) { return ((const subject *)v)->id; }
static const char *evnode_key(const void *v) { return ((const evnode *)v)->ev->id; }
static const char *policy_key(const void *v) { return ((const risk_policy *)v)->name; }
static const char *meta_key(const void *v) { return ((const metanode *)v)->key; }
static const char *user_key(const void *v) { return ((const risk_user *)v)->id; }
static const char *pnode_key(const void *v) { return ((const pnode *)v)->name; }

struct risk_memstore {
    pthread_rwlock_t lock; /* all committed state below */
    map users, events, policies, meta;
    subject *levels[N_LEVELS];
    size_t level_n[N_LEVELS];
    hnode **hist;
    size_t n_hist, cap_hist;
    int keep_history;

    pthread_mutex_t seq_mu; /* guards next_seq and seq_owner */
    pthread_cond_t seq_cv;
    mtxn *seq_owner;
    pthread_t seq_thread; /* the thread that took the token (valid with seq_owner) */
    uint64_t next_seq;
};

struct mtxn {
    risk_memstore *ms;
    map users;    /* risk_user* by id */
    map events;   /* evnode* (node pre-allocated for apply) by id */
    map policies; /* pnode* by name */
    map meta;     /* metanode* by key */
    hnode **hist;
    size_t n_hist, cap_hist;
    int has_seq, prepared;
    uint64_t seq_lo, seq_hi, seq_appended;
    subject **subs; /* prepared: users', then events' owners, then history users */
    size_t n_subs;
    size_t res_events, res_policies, res_meta;
    /* inline first buffers: a typical operation allocates none of these */
    slot inl_users[TXN_INLINE_SLOTS], inl_events[TXN_INLINE_SLOTS];
    hnode *inl_hist[TXN_INLINE_HIST];
    subject *inl_subs[TXN_INLINE_SUBS];
};

static int nomem(void) { return risk_err(RISK_ENOMEM, "memstore: out of memory"); }

/* ---- level lists ---- */
static void level_link(risk_memstore *ms, subject *s)
{
    uint32_t l = s->u.level < N_LEVELS ? s->u.level : 0;
    s->lprev = NULL;
    s->lnext = ms->levels[l];
    if (s->lnext)
        s->lnext->lprev = s;
    ms->levels[l] = s;
    ms->level_n[l]++;
}

static void level_unlink(risk_memstore *ms, subject *s)
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

static void ev_link(subject *s, evnode *n)
{
    n->owner = s;
    n->prev = NULL;
    n->next = s->ev_head;
    if (n->next)
        n->next->prev = n;
    s->ev_head = n;
}

static void ev_unlink(evnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        n->owner->ev_head = n->next;
    if (n->next)
        n->next->prev = n->prev;
}

/* ---- sequencer token ---- */
/* A thread that already holds the token for another open txn would wait
 * for itself forever: that is reported as RISK_EBUSY instead of a hang. */
static int seq_acquire(risk_memstore *ms, mtxn *t)
{
    pthread_mutex_lock(&ms->seq_mu);
    if (ms->seq_owner != NULL && pthread_equal(ms->seq_thread, pthread_self())) {
        pthread_mutex_unlock(&ms->seq_mu);
        return risk_err(RISK_EBUSY, "txn: this thread holds the sequencer in another open "
                                    "transaction of this store (commit or roll it back first)");
    }
    while (ms->seq_owner != NULL)
        pthread_cond_wait(&ms->seq_cv, &ms->seq_mu);
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
        pthread_cond_broadcast(&ms->seq_cv);
    }
    pthread_mutex_unlock(&ms->seq_mu);
}

/* ---- store lifetime ---- */
int risk_memstore_new(risk_memstore **out, int keep_history)
{
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    risk_memstore *ms = risk_calloc(1, sizeof *ms);
    if (ms == NULL)
        return nomem();
    if (pthread_rwlock_init(&ms->lock, NULL) != 0) {
        risk_free(ms);
        return risk_err(RISK_ENOMEM, "memstore: cannot create the lock");
    }
    if (pthread_mutex_init(&ms->seq_mu, NULL) != 0) {
        pthread_rwlock_destroy(&ms->lock);
        risk_free(ms);
        return risk_err(RISK_ENOMEM, "memstore: cannot create the sequencer");
    }
    if (pthread_cond_init(&ms->seq_cv, NULL) != 0) {
        pthread_mutex_destroy(&ms->seq_mu);
        pthread_rwlock_destroy(&ms->lock);
        risk_free(ms);
        return risk_err(RISK_ENOMEM, "memstore: cannot create the sequencer");
    }
    ms->users.key = subject_key;
    ms->events.key = evnode_key;
    ms->policies.key = policy_key;
    ms->meta.key = meta_key;
    ms->keep_history = keep_history != 0;
    ms->next_seq = 1;
    *out = ms;
    return RISK_OK;
}

/* The engine never closes a store with open transactions; any left open
 * must be rolled back first or they leak. */
void risk_memstore_free(risk_memstore *ms)
{
    if (ms == NULL)
        return;
    MAP_EACH(&ms->users, i) {
        risk_free(ms->users.s[i].val);
    }
    MAP_EACH(&ms->events, i) {
        evnode *n = ms->events.s[i].val;
        risk_event_free(n->ev);
        risk_free(n);
    }
    MAP_EACH(&ms->policies, i)
        risk_policy_free(ms->policies.s[i].val);
    MAP_EACH(&ms->meta, i)
        risk_free(ms->meta.s[i].val);
    for (size_t i = 0; i < ms->n_hist; i++) {
        risk_history_free(ms->hist[i]->item);
        risk_free(ms->hist[i]);
    }
    risk_free(ms->users.s);
    risk_free(ms->events.s);
    risk_free(ms->policies.s);
    risk_free(ms->meta.s);
    risk_free(ms->hist);
    pthread_cond_destroy(&ms->seq_cv);
    pthread_mutex_destroy(&ms->seq_mu);
    pthread_rwlock_destroy(&ms->lock);
    risk_free(ms);
}

uint64_t risk_memstore_next_seq(risk_memstore *ms)
{
    pthread_mutex_lock(&ms->seq_mu);
    uint64_t n = ms->next_seq;
    pthread_mutex_unlock(&ms->seq_mu);
    return n;
}

void risk_memstore_set_next_seq(risk_memstore *ms, uint64_t next)
{
    pthread_mutex_lock(&ms->seq_mu);
    ms->next_seq = next ? next : 1;
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
        return nomem();
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
        evnode *n = t->events.s[i].val;
        risk_event_free(n->ev);
        risk_free(n);
    }
    MAP_EACH(&t->policies, i) {
        pnode *p = t->policies.s[i].val;
        risk_policy_free(p->p);
        risk_free(p);
    }
    MAP_EACH(&t->meta, i)
        risk_free(t->meta.s[i].val);
    for (size_t i = 0; i < t->n_hist; i++) {
        risk_history_free(t->hist[i]->item);
        risk_free(t->hist[i]);
    }
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
    subject *s = map_get(&ms->users, h, id);
    if (s == NULL) {
        size_t len = strlen(id);
        s = risk_calloc(1, sizeof *s + len + 1);
        if (s == NULL)
            return nomem();
        memcpy(s->id, id, len + 1);
        if (map_add(&ms->users, h, s) != RISK_OK) {
            risk_free(s);
            return nomem();
        }
    }
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
    MAP_EACH(&t->users, i)
        if ((rc = pin(ms, t, t->users.s[i].hash, user_key(t->users.s[i].val))) != RISK_OK)
            return rc;
    MAP_EACH(&t->events, i) {
        const char *uid = ((evnode *)t->events.s[i].val)->ev->user_id;
        if ((rc = pin(ms, t, hash_str(uid), uid)) != RISK_OK)
            return rc;
    }
    for (size_t i = 0; i < t->n_hist; i++) {
        const char *uid = t->hist[i]->item->user_id;
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
            return nomem();
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
        return nomem();
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
        pthread_rwlock_wrlock(&ms->lock);
        if ((rc = prepare_locked(ms, t)) != RISK_OK)
            unprepare_locked(ms, t);
        pthread_rwlock_unlock(&ms->lock);
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
        evnode *en = map_get(&ms->events, t->events.s[i].hash, bn->ev->id);
        if (en == NULL) {
            ev_link(owner, bn);
            map_place(&ms->events, t->events.s[i].hash, bn);
            continue;
        }
        if (en->owner != owner) {
            ev_unlink(en);
            ev_link(owner, en);
        }
        risk_event_free(en->ev);
        en->ev = bn->ev;
        risk_free(bn);
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
        if (h->item->user_id) {
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
        pthread_rwlock_wrlock(&ms->lock);
        apply_locked(ms, t);
        pthread_rwlock_unlock(&ms->lock);
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
        pthread_rwlock_wrlock(&ms->lock);
        unprepare_locked(ms, t);
        pthread_rwlock_unlock(&ms->lock);
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
        pthread_rwlock_wrlock(&ms->lock);
        if ((rc = prepare_locked(ms, t)) != RISK_OK)
            unprepare_locked(ms, t);
        else
            apply_locked(ms, t);
        pthread_rwlock_unlock(&ms->lock);
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
    risk_event *e;
    int rc = risk_event_dup(&e, event);
    if (rc != RISK_OK)
        return rc;
    uint64_t h = hash_str(e->id);
    evnode *n = map_get(&t->events, h, e->id);
    if (n != NULL) {
        risk_event_free(n->ev);
        n->ev = e;
        return RISK_OK;
    }
    if ((n = risk_calloc(1, sizeof *n)) == NULL) {
        risk_event_free(e);
        return nomem();
    }
    n->ev = e;
    if ((rc = map_add(&t->events, h, n)) != RISK_OK) {
        risk_event_free(e);
        risk_free(n);
    }
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
        return RISK_OK;
    }
    size_t len = strlen(name);
    if ((n = risk_malloc(sizeof *n + len + 1)) == NULL)
        return nomem();
    n->p = p;
    memcpy(n->name, name, len + 1);
    if (map_add(&t->policies, h, n) != RISK_OK) {
        risk_free(n);
        return nomem();
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
        pthread_rwlock_rdlock(&ms->lock);
        exists = map_find(&ms->policies, h, name) != NOPE;
        pthread_rwlock_unlock(&ms->lock);
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
            return nomem();
        memcpy(n->key, key, kl + 1);
        if (map_add(&t->meta, h, n) != RISK_OK) {
            risk_free(n);
            return nomem();
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
            return nomem();
        memcpy(v, t->hist, t->n_hist * sizeof *v);
        if (t->hist != t->inl_hist)
            risk_free(t->hist);
        t->hist = v;
        t->cap_hist = cap;
    }
    hnode *n = risk_calloc(1, sizeof *n);
    if (n == NULL)
        return nomem();
    int rc = risk_history_dup(&n->item, item);
    if (rc != RISK_OK) {
        risk_free(n);
        return rc;
    }
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
    pthread_rwlock_rdlock(&ms->lock);
    const subject *s = map_get(&ms->users, h, id);
    /* not found is an expected answer on the ingest path: no message */
    int rc = (s && s->has_user) ? risk_user_dup(out, &s->u) : RISK_ENOTFOUND;
    pthread_rwlock_unlock(&ms->lock);
    return rc;
}

static int cb_view_user(void *ctx, const char *id, risk_user_visit_fn fn, void *arg)
{
    risk_memstore *ms = ctx;
    NEED(id, "id");
    NEED(fn, "fn");
    uint64_t h = hash_str(id);
    pthread_rwlock_rdlock(&ms->lock);
    const subject *s = map_get(&ms->users, h, id);
    int rc = (s && s->has_user) ? fn(&s->u, arg) : RISK_ENOTFOUND;
    pthread_rwlock_unlock(&ms->lock);
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
        return risk_event_dup(out, n->ev);
    pthread_rwlock_rdlock(&ms->lock);
    n = map_get(&ms->events, h, id);
    int rc = n ? risk_event_dup(out, n->ev) : RISK_ENOTFOUND;
    pthread_rwlock_unlock(&ms->lock);
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
    pthread_rwlock_rdlock(&ms->lock);
    const subject *s = map_get(&ms->users, hash_str(user_id), user_id);
    for (const evnode *n = s ? s->ev_head : NULL; n && rc == 0; n = n->next)
        if (!overlay || map_find(&t->events, hash_str(n->ev->id), n->ev->id) == NOPE)
            rc = fn(n->ev, arg);
    pthread_rwlock_unlock(&ms->lock);
    if (overlay)
        MAP_EACH(&t->events, i) {
            const evnode *n = t->events.s[i].val;
            if (rc == 0 && strcmp(n->ev->user_id, user_id) == 0)
                rc = fn(n->ev, arg);
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
    pthread_rwlock_rdlock(&ms->lock);
    MAP_EACH(&ms->policies, i) {
        const risk_policy *p = ms->policies.s[i].val;
        if (rc == 0 && (!overlay || map_find(&t->policies, ms->policies.s[i].hash, p->name) == NOPE))
            rc = fn(p, arg);
    }
    pthread_rwlock_unlock(&ms->lock);
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
        pthread_rwlock_rdlock(&ms->lock);
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
        pthread_rwlock_unlock(&ms->lock);
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
    pthread_rwlock_rdlock(&ms->lock);
    size_t n = 0, k = 0;
    for (uint32_t l = min_level; l < N_LEVELS; l++)
        n += ms->level_n[l];
    risk_user **v = risk_malloc(n * sizeof *v);
    int rc = v ? RISK_OK : nomem();
    for (uint32_t l = N_LEVELS; rc == RISK_OK && l-- > (uint32_t)min_level;)
        for (const subject *s = ms->levels[l]; s && rc == RISK_OK; s = s->lnext)
            if ((rc = risk_user_dup(&v[k], &s->u)) == RISK_OK)
                k++;
    pthread_rwlock_unlock(&ms->lock);
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
        pthread_rwlock_rdlock(&ms->lock);
        if (user_id == NULL) {
            if (!started) { /* first item with seq ≥ since_seq */
                size_t lo = 0, hi = ms->n_hist;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (ms->hist[mid]->item->seq < since_seq)
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
                if (cur->item->seq >= since_seq)
                    buf[n++] = cur;
        }
        started = 1;
        pthread_rwlock_unlock(&ms->lock);
        if (n == 0)
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((rc = fn(buf[i]->item, arg)) != 0)
                return rc;
    }
}

/* ---- committed-state visitors for wrappers (read lock held during fn) ---- */
#define EACH_BODY(m, EXPR)                                 \
    int rc = 0;                                            \
    pthread_rwlock_rdlock(&ms->lock);                      \
    for (size_t i = 0; i < (m).cap && rc == 0; i++)        \
        if ((m).s[i].val != NULL)                          \
            rc = (EXPR);                                   \
    pthread_rwlock_unlock(&ms->lock);                      \
    return rc

int risk_memstore_each_user(risk_memstore *ms, risk_user_visit_fn fn, void *arg)
{
    EACH_BODY(ms->users, ((subject *)ms->users.s[i].val)->has_user
                             ? fn(&((subject *)ms->users.s[i].val)->u, arg)
                             : 0);
}

int risk_memstore_each_event(risk_memstore *ms, risk_event_visit_fn fn, void *arg)
{
    EACH_BODY(ms->events, fn(((evnode *)ms->events.s[i].val)->ev, arg));
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
