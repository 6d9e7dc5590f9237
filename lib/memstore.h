/* The in-memory store's internals, shared by lib/store_memory_map.c (maps,
 * nodes, committed state, loading) and lib/store_memory.c (transactions and
 * the callback table), plus the bulk-load API recovery uses. Not installed.
 * The layout is explained at the top of lib/store_memory.c. */
#ifndef LIBRISK_MEMSTORE_H
#define LIBRISK_MEMSTORE_H

#include "internal.h"

#include <pthread.h>

/* ---- bulk loading (single-threaded recovery, before the store is shared) ----
 * Each call installs one decoded record directly into the committed state:
 * no transaction, no version check (a compacted journal holds each user at
 * its latest version only), the last load of a key wins. Ownership of the
 * record passes to the store on success AND on failure (it is freed then);
 * RISK_ENOMEM leaves the store as before that call. Never call while
 * another thread uses the store. */
int risk_memstore_load_user(risk_memstore *ms, risk_user *user);
int risk_memstore_load_event(risk_memstore *ms, risk_event *event);
int risk_memstore_load_policy(risk_memstore *ms, risk_policy *policy);
/* Removing an absent policy is not an error (replay of two removals). */
void risk_memstore_load_remove_policy(risk_memstore *ms, const char *name);
int risk_memstore_load_meta(risk_memstore *ms, const char *key, const uint8_t *val, size_t len);
/* Pre-size the maps for about this many users and events (open: the file
 * size gives an estimate); a hint, ENOMEM is ignored. */
void risk_memstore_reserve(risk_memstore *ms, size_t users, size_t events);

/* ---- internals ---- */
#define NOPE ((size_t)-1)
#define META_MAX 256
#define N_LEVELS 4
#define CHUNK 64
#define TXN_INLINE_SLOTS 8 /* power of two: 6 entries before growing */
#define TXN_INLINE_HIST 4
#define TXN_INLINE_SUBS 16
/* Read-lock stripes: a reader takes the stripe of its thread, a writer
 * takes them all, so readers on different cores need not share one reader
 * counter. Measured on the 2-core machine (risk-bench --quick), 1 stripe
 * already gives 2 sign-in threads ~1.8x one, while 4 stripes cost writers
 * 4 lock round trips per commit; so 1 until a bigger machine says more. */
#define N_STRIPES 1

/* hashing: 8 bytes per step, 64x64→128 multiply folding */
static inline uint64_t ms_fold_mul(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    __uint128_t m = (__uint128_t)a * b;
    return (uint64_t)m ^ (uint64_t)(m >> 64);
#else
    uint64_t h = a * b;
    return h ^ (h >> 29) ^ ((a >> 32) * (b | 1));
#endif
}

static inline uint64_t hash_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    uint64_t h = 0x243f6a8885a308d3ULL ^ n;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = ms_fold_mul(h ^ w, 0x9e3779b97f4a7c15ULL);
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = ms_fold_mul(h ^ w ^ 0xa0761d6478bd642fULL, 0xe7037ed1a0b428dbULL);
    return h ^ (h >> 32);
}

/* open-addressing map (linear probing, backward-shift deletion); the
 * string key is taken from the value */
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

static inline size_t map_find(const map *m, uint64_t h, const char *key)
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

static inline void *map_get(const map *m, uint64_t h, const char *key)
{
    size_t i = map_find(m, h, key);
    return i == NOPE ? NULL : m->s[i].val;
}

void map_free(map *m);
void map_place(map *m, uint64_t h, void *val);   /* absent key, room known */
int map_reserve(map *m, size_t extra);           /* ENOMEM: unchanged */
int map_add(map *m, uint64_t h, void *val);      /* absent key, grows */
void map_remove_at(map *m, size_t i);
#define MAP_EACH(m, i) for (size_t i = 0; i < (m)->cap; i++) if ((m)->s[i].val != NULL)

/* ---- nodes ---- */
struct subject;
/* A stored event: node, record and all its strings in ONE allocation
 * (the record's char * fields point into str); free with risk_free. */
typedef struct evnode {
    risk_event ev;
    struct subject *owner;
    struct evnode *prev, *next; /* the owner's events */
    char str[];
} evnode;

/* A stored history item, packed the same way. */
typedef struct hnode {
    risk_history item;
    struct hnode *next; /* the subject's next item (never freed before close) */
    char str[];
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
    int must_exist; /* a removal of a committed policy: prepare re-checks it */
    char name[];
} pnode;

const char *subject_key(const void *v);
const char *evnode_key(const void *v);
const char *policy_key(const void *v);
const char *meta_key(const void *v);

/* One waiter for the sequencer token: woken alone when the token is freed. */
typedef struct seq_waiter {
    pthread_cond_t cv;
    mtxn *t;
    struct seq_waiter *next;
} seq_waiter;

typedef struct stripe {
    pthread_rwlock_t lock;
    char pad[64 - sizeof(pthread_rwlock_t) % 64];
} stripe;

struct risk_memstore {
    stripe locks[N_STRIPES]; /* all committed state below */
    map users, events, policies, meta;
    subject *levels[N_LEVELS];
    size_t level_n[N_LEVELS];
    hnode **hist;
    size_t n_hist, cap_hist;
    int keep_history;

    pthread_mutex_t seq_mu; /* guards next_seq, seq_owner and the queue */
    mtxn *seq_owner;
    pthread_t seq_thread; /* the thread that holds the token (valid with seq_owner) */
    seq_waiter *q_head, *q_tail; /* FIFO of threads waiting for the token */
    uint64_t next_seq;
};

struct mtxn {
    risk_memstore *ms;
    map users;    /* risk_user* by id */
    map events;   /* evnode* (packed, placed as is by apply) by id */
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

int ms_nomem(void);

/* locks: readers take their thread's stripe, writers every stripe */
unsigned ms_stripe(void);
static inline void ms_rdlock(risk_memstore *ms, unsigned k)
{
    pthread_rwlock_rdlock(&ms->locks[k].lock);
}
static inline void ms_rdunlock(risk_memstore *ms, unsigned k)
{
    pthread_rwlock_unlock(&ms->locks[k].lock);
}
void ms_wrlock(risk_memstore *ms);
void ms_wrunlock(risk_memstore *ms);

/* packed nodes (NULL: ENOMEM, message set) */
evnode *evnode_new(const risk_event *e);
hnode *hnode_new(const risk_history *h);
/* a heap copy of a stored event, for a caller that owns it */
static inline int evnode_dup(risk_event **out, const evnode *n)
{
    return risk_event_dup(out, &n->ev);
}

/* level and per-user event lists (write lock held) */
void level_link(risk_memstore *ms, subject *s);
void level_unlink(risk_memstore *ms, subject *s);
void ev_link(subject *s, evnode *n);
void ev_unlink(evnode *n);
/* Find or create the subject of id (write lock held); NULL: ENOMEM. */
subject *subject_get(risk_memstore *ms, uint64_t h, const char *id);

#endif /* LIBRISK_MEMSTORE_H */
