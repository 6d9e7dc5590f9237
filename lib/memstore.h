/* The in-memory store's internals, shared by lib/store_memory_map.c (maps,
 * arenas, interning, shards, locks, loading), lib/store_memory_events.c
 * (event nodes and the map by id), lib/store_memory_hist.c (sequencer and
 * history), lib/store_memory_ops.c (the callbacks) and lib/store_memory.c
 * (transactions), plus the bulk-load API recovery uses. Not installed. The
 * layout is explained at the top of lib/store_memory.c. */
#ifndef LIBRISK_MEMSTORE_H
#define LIBRISK_MEMSTORE_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

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
/* Inline first buffers of a txn, sized so that an ingest and a dismiss-all
 * of a user with about ten active events allocate nothing: */
#define TXN_INLINE_SLOTS 16 /* power of two: 12 entries before growing */
#define TXN_INLINE_USERS 4  /* power of two: 3 users before growing */
#define TXN_INLINE_HIST 4
#define TXN_INLINE_SUBS 24
/* event nodes a txn remembers from its user_events read (mtxn.seen), and
 * the batch that read prefetches */
#define TXN_SEEN 32
/* the copies of buffered writes (an event with its strings is ~250 bytes)
 * and prepare's arrays */
#define TXN_SCRATCH 4096
#define N_SPARE_TXNS 4
/* Interning guesses per txn object. */
#define ICACHE 256
/* Append-only store memory (event ids, history items, event nodes) comes
 * in chunks: the first of ARENA_FIRST bytes, each next one twice the last,
 * up to ARENA_CHUNK. */
#define ARENA_FIRST ((size_t)4096 - 64)
#define ARENA_CHUNK ((size_t)2 << 20)
/* Event nodes up to this size come from the arena (free lists by size). */
#define SLAB_MAX 512
/* Committed state is split by hash into shards, each under its own lock
 * (lib/store_memory.c explains): users by the top bits of the user id's
 * hash, events by bits 8.. of the event id's hash (the events table uses
 * bits 0-7 for tags and 32-63 for groups, a user shard's map the low
 * bits). */
#define USHARD_BITS 8
#define N_USHARDS (1u << USHARD_BITS)
#define N_ESHARDS 256u
/* Interned strings: a directory of pages that never move (lock-free reads). */
#define IPAGE 4096u
#define IPAGES 1024u
/* The history index: pages of HPAGE item pointers, found by a directory
 * that covers every 32-bit index. */
#define HPAGE_BITS 16
#define HPAGE ((size_t)1 << HPAGE_BITS)
#define HPAGES ((size_t)1 << (32 - HPAGE_BITS))

static inline uint64_t hash_str(const char *s) { return risk_hash_bytes(s, strlen(s)); }

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
/* every entry; stops after the last one (txn tables are mostly empty) */
#define MAP_EACH(m, i)                                                  \
    for (size_t i = 0, i##_left_ = (m)->count; i##_left_ > 0; i++)     \
        if ((m)->s[i].val != NULL && (i##_left_--, 1))

/* ---- append-only arena: bytes that live until close ---- */
typedef struct achunk {
    struct achunk *next;
    void *raw; /* what the allocator gave (the chunk may sit inside it) */
    size_t used, cap;
    _Alignas(8) char mem[];
} achunk;
typedef struct arena {
    achunk *head; /* the chunk being filled; older ones follow */
} arena;
typedef struct arena_mark {
    achunk *head;
    size_t used;
} arena_mark;
/* Where a txn's prepare takes memory from: each thread that commits to a
 * store has its own (two threads committing at once do not write the
 * same arena tail or free list heads), an arena, free event nodes by size
 * / 8, and a count of the prepares that took from it (a rolled-back txn
 * gives its arena bytes back only if it was the last). busy: taken by its
 * thread for a prepare or an apply, and by a thread that rolls back a txn
 * prepared there. */
typedef struct home {
    atomic_flag busy;
    /* the users map this thread reads without its lock (umap_peek), or NULL */
    _Atomic(const void *) hazard;
    pthread_t owner;
    struct home *next; /* the store's homes */
    uint64_t prep_gen;
    arena ar;
    struct evnode *efree[SLAB_MAX / 8 + 1];
    /* The history sequencer's share of this thread (lib/store_memory_hist.c):
     * the txns that reserved their first seq on this thread and are not
     * done, in seq order (seq_mu), and the first seq of the oldest of them
     * (SEQ_NONE: none), which readers of the watermark load. */
    pthread_mutex_t seq_mu;
    struct mtxn *p_head, *p_tail;
    _Atomic uint64_t open_lo;
} home;
#define SEQ_NONE UINT64_MAX
/* n bytes aligned to align (1, 2, 4 or 8); NULL: ENOMEM (message set) */
void *arena_alloc(arena *a, size_t n, size_t align);
char *arena_strdup(arena *a, const char *s);
static inline arena_mark arena_save(const arena *a)
{
    return (arena_mark){a->head, a->head ? a->head->used : 0};
}
/* Give back what was taken since m (only by the last taker), chunks
 * added since included. */
void arena_restore(arena *a, arena_mark m);
void arena_free(arena *a);

/* ---- nodes ---- */
struct subject;
/* A stored event, compact: the id lives in the arena (history items point
 * at the same bytes), the user id is the owner subject's, type, location,
 * source and closed_by are interned (a handful of distinct values), and
 * only ip and note are copied into the node. risk_event views are built
 * on demand (ev_view). */
typedef struct evnode {
    union {
        struct subject *owner;
        struct evnode *fl_next; /* a free node: its free list's link */
    };
    const char *id;         /* arena; its hash is not kept (8 MiB a
                             * million events): growing the table
                             * computes it again */
    /* what a new version of the event may change (copied in place) */
    int64_t detected_at, closed_at;
    uint32_t type, location, source, closed_by; /* intern indices, 0: NULL */
    uint8_t level, timing, state, reason;
    uint16_t ip_len, note_len; /* bytes with the NUL; 0: NULL */
    char str[];                /* ip, then note */
} evnode;

/* A stored history item, in the arena (never freed before close): 80
 * bytes and the note. Its seq is hbase + idx (idx indexes the seq array),
 * and so is its subject's next item: 4 bytes each instead of 8. */
#define HI_POLICY 1 /* the policy name follows the note */
typedef struct hitem {
    struct subject *subj;  /* NULL: a policy change */
    const char *event_id;  /* arena (shared with the event) or NULL */
    int64_t at;
    uint32_t idx;          /* seq - hbase */
    uint32_t next;         /* the subject's next item: its idx + 1; 0: none */
    uint32_t actor;        /* intern index */
    uint32_t changed;
    uint8_t action, level_before, level_after, state_before, state_after;
    uint8_t flags;         /* HI_POLICY */
    uint16_t note_len;     /* bytes with the NUL; 0: NULL */
    uint8_t chain[32];
    char tail[];           /* note, then policy */
} hitem;

/* Events by id (lib/store_memory_events.c): open addressing over groups
 * of EG_SLOTS slots, a tag of the id's hash beside each node pointer. */
#define EG_SLOTS 7
typedef struct egroup {
    uint8_t tag[EG_SLOTS];
    uint8_t over; /* inserts that found the group full and went on (saturates) */
    evnode *n[EG_SLOTS]; /* NULL: free */
} egroup;
typedef struct etab {
    egroup *g;
    size_t ng; /* groups */
    size_t count, reserved; /* reserved: inserts promised by prepared txns */
    egroup *inl; /* a store-owned first table, never freed here */
} etab;
#define ETAB_FIRST 4 /* groups of a shard's first table */
#define USERS_FIRST 8 /* slots of a user shard's first table */


typedef struct mtxn mtxn;

/* A buffered event write: the scratch copy, and the stored node of its id
 * when this txn's user_events read saw it (NULL: prepare looks it up). */
typedef struct bufev {
    risk_event e; /* first: the txn's events map holds risk_event pointers */
    uint64_t h;   /* the hash of e.id */
    uint32_t pos; /* its place in mtxn.evl */
    evnode *seen;
    evnode *old; /* prepared: the stored node it replaces (NULL: new) */
    /* prepared: its stored form; bit 0 set: taken from a free list (not
     * from the arena) */
    uintptr_t node;
    uint64_t uh;    /* the hash of e.user_id */
    struct subject *owner; /* prepared: the pinned subject of e.user_id */
    int reserved;   /* prepared: took a slot of its events shard's table */
    int slot;       /* prepared: took a slot of its owner's array */
    int use_seen;   /* locking: seen is current and fits: no events shard needed */
    /* prepared, use_seen under one hold: the interned strings to write
     * into old in place (no node is built) */
    uint32_t patch[4];
    /* a creation: this txn's get_event found the id absent (mtxn.absent);
     * prepare refuses it if the id exists by then (RISK_ECONFLICT) */
    uint8_t create;
    uint8_t pending; /* prepared apart from apply: in its shard's pend list */
} bufev;

/* An event id a txn's get_event found absent (a scratch copy). The
 * engine reads an id before it creates the event, under the lock of the
 * event's user only: two users' txns may both find it absent, and the
 * second commit would take the first one's event for its user (a put of
 * an event another user owns moves it). Remembering what was absent makes
 * that second commit a conflict instead, and the engine's retry finds the
 * id taken (RISK_EEXISTS). */
typedef struct txn_absent {
    struct txn_absent *next;
    uint64_t h;
    char id[];
} txn_absent;

/* A meta value a txn read from the committed state, and its version then
 * (META_ABSENT: no value). Engines sharing the store read a chain head
 * from meta and write it back (the policy set's): a txn whose read went
 * stale meanwhile is a conflict at prepare, and the engine retries,
 * instead of writing over the other's head. */
#define META_ABSENT UINT64_MAX
typedef struct txn_metaread {
    struct txn_metaread *next;
    uint64_t h, ver;
    char key[];
} txn_metaread;

/* The prepared, not yet applied creations of an events shard (the
 * journal's two phases): a second txn creating the same id meanwhile is
 * refused at its prepare, as one writing a claimed user is. */
#define PEND_INL 4
typedef struct pendlist {
    bufev **v; /* NULL: inl holds them; else allocated, freed when empty */
    uint32_t n, cap;
    bufev *inl[PEND_INL];
} pendlist;

/* A buffered user: the scratch copy (the users map holds its address) and
 * the hash of its id. */
typedef struct bufuser {
    risk_user u;
    uint64_t h;
} bufuser;

/* A buffered history item: the scratch copy, and the hash of its user id. */
typedef struct bufhist {
    risk_history r;
    uint64_t uh;
} bufhist;

/* An event node a txn's read saw (mtxn.seen). */
typedef struct txn_seen {
    uint64_t h;     /* hash of the id */
    const char *id; /* the arena's: immutable, safe to read without the lock */
    evnode *n;
} txn_seen;

/* The committed user is embedded (its id points at the subject's id): a
 * read of the user touches slot → subject only, and a user commit
 * allocates nothing. This relies on `id` being risk_user's only pointer
 * field. A table-decided sign-in reads the slot alone (uslot, below); a
 * receipt's or a listed user's reads the subject too. Layout for those:
 * has_user and a short id (< SUBJECT_IDINL bytes,
 * as most are) sit right before the user, so the lookup's id compare, the
 * has_user test and the fields the decision reads (risk_user up to
 * next_change_at) are the first 96 bytes, two cache lines (three before:
 * the id and has_user came after the links); what only writers touch
 * comes after. */
#define SUBJECT_IDINL 23
typedef struct subject {
    uint8_t has_user;          /* 0 until the first put_user commits */
    char idbuf[SUBJECT_IDINL]; /* the id, when short */
    risk_user u;      /* u.id: the subject's id, always (also without a user) */
    uint32_t pins;    /* prepared txns referring to this subject */
    /* Counts the times one of its event nodes was replaced by another node
     * or moved to another owner (ev_install), the only ways a node stops
     * being its event's: a txn's nodes remembered from a read of this
     * subject (mtxn.seen) are current while it is unchanged (a wrap would
     * take 2^32 moves between one txn's read and its commit). It sits in
     * what was padding. */
    uint32_t ev_moves;
    struct subject *lprev, *lnext; /* level list (only while has_user) */
    /* the user's events, any order: an array, so that a read of them all
     * fetches every node at once instead of following a chain of misses */
    evnode **evs;
    uint32_t n_ev, cap_ev;
    uint32_t ev_res; /* slots of evs promised to prepared txns */
    hitem *h_head, *h_tail; /* the user's items, seq order */
    mtxn *claim; /* a prepared txn that writes this user */
    char idlong[]; /* the id, when long */
} subject;

typedef struct metanode {
    size_t len;
    uint64_t ver; /* committed writes of the key (txn_metaread) */
    uint8_t val[META_MAX];
    char key[];
} metanode;
/* Set key's value in m (a metanode map), adding the node if new; the
 * arguments are checked by the caller. ENOMEM leaves m as it was. */
int meta_set(map *m, const char *key, const uint8_t *val, size_t len);

typedef struct pnode { /* buffered policy write; p NULL = removal */
    risk_policy *p;
    int must_exist; /* a removal of a committed policy: prepare re-checks it */
    char name[];
} pnode;

/* An interned string: index idx. owner: the txn that added it and has not
 * committed (only it may use the index: another that finds it makes it
 * shared, NULL); a rollback removes the ones it still owns. */
typedef struct ientry {
    _Atomic(const void *) owner;
    struct ientry *tnext; /* the owner's list of what it added */
    uint32_t idx;
    char s[];
} ientry;

static inline const char *user_key(const void *v) { return ((const risk_user *)v)->id; }
static inline const char *pnode_key(const void *v) { return ((const pnode *)v)->name; }
static inline const char *event_key(const void *v) { return ((const risk_event *)v)->id; }

/* The users map: open addressing (linear probing, backward-shift
 * deletion) over 64-byte slots, one cache line each, that hold besides
 * the subject what a sign-in reads: the id when it is short (GUIDs fit)
 * and the decision fields of the user. A one-call sign-in then misses the
 * caches once, on the slot, instead of on a slot and then the subject
 * (issue #9; docs/performance.md, "One miss per sign-in").
 * subject_set_user writes a user's fields to its slot too, under the
 * shard's write lock, as it writes the subject. */
#define USLOT_IDINL 37
typedef struct uslot {
    struct subject *val;    /* NULL: empty */
    int64_t next_change_at; /* the user's (has_user) */
    uint32_t hash;          /* the low half of the id's hash */
    uint32_t key;           /* risk_ptab_key of the user (has_user) */
    uint8_t level;          /* the user's (has_user) */
    uint8_t has_user;       /* the subject's */
    uint8_t id_inl;         /* id holds the id; else only the subject does */
    char id[USLOT_IDINL];   /* the id, when shorter than USLOT_IDINL */
} uslot;
_Static_assert(sizeof(uslot) == 64, "a users map slot is one cache line");
_Static_assert(offsetof(uslot, val) == 0 && offsetof(uslot, hash) / 8 == 2,
               "umap_peek loads words 0 and 2 first");
/* A sign-in reads a slot without the shard's lock (umap_peek in
 * lib/store_memory_ops.c): a read-locked sign-in writes the lock's line,
 * which two threads' sign-ins then pass back and forth. Its reads are a
 * sequence lock's: writers (under the write lock) make vseq odd while
 * they change slots or the table, and store slots, s, cap and count with
 * atomic stores; the reader loads them with atomic loads and tries again
 * when vseq moved. A table the map outgrows is freed at once unless a
 * reader's hazard (home.hazard) names this map, which the grower checks
 * after publishing the new table: then it waits in `retired` for a later
 * growth or the store's close. */
typedef struct umap {
    uslot *s;   /* 64-aligned; the line before it is the table's header */
    size_t cap, count;
    void *mem;  /* what the allocator gave for s; NULL: the store's first table */
    _Atomic uint32_t vseq;
    struct risk_memstore *ms; /* whose homes' hazards to check (NULL: none) */
    uslot *retired;           /* outgrown tables a reader may still read */
} umap;

/* Slots as eight words, for the sequence lock's atomic copies. */
typedef uint64_t __attribute__((may_alias)) uword;
static inline void uslot_load(uslot *dst, const uslot *src)
{
    for (int k = 0; k < 8; k++)
        ((uword *)dst)[k] = __atomic_load_n(&((const uword *)src)[k], __ATOMIC_RELAXED);
}
static inline void uslot_store(uslot *dst, const uslot *src)
{
    for (int k = 0; k < 8; k++)
        __atomic_store_n(&((uword *)dst)[k], ((const uword *)src)[k], __ATOMIC_RELAXED);
}

static inline int uslot_is(const uslot *sl, uint64_t h, const char *id, size_t len)
{
    if (sl->hash != (uint32_t)h)
        return 0;
    if (sl->id_inl)
        return len < USLOT_IDINL && memcmp(sl->id, id, len + 1) == 0;
    return strcmp(sl->val->u.id, id) == 0;
}

/* The slot of id (len bytes, its hash h), or NULL. */
static inline const uslot *umap_slot(const umap *m, uint64_t h, const char *id, size_t len)
{
    if (m->count == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const uslot *sl = &m->s[i];
        if (sl->val == NULL)
            return NULL;
        if (uslot_is(sl, h, id, len))
            return sl;
    }
}

static inline subject *subject_find(const umap *m, uint64_t h, const char *id)
{
    const uslot *sl = umap_slot(m, h, id, strlen(id));
    return sl ? sl->val : NULL;
}

/* Room for `extra` more subjects (load ≤ 7/8: a slot is a line, and a
 * probe goes on to the next line, which the hardware fetches with it).
 * ENOMEM leaves the map unchanged. */
int umap_reserve(umap *m, size_t extra);
int umap_add(umap *m, uint64_t h, subject *s); /* absent id, grows */
void umap_remove(umap *m, uint64_t h, const subject *s); /* s is there */
void umap_free(umap *m);
const char *policy_key(const void *v);
const char *meta_key(const void *v);
const char *ientry_key(const void *v);


/* A reader-writer lock in 8 bytes (lib/store_memory_map.c): a shard's lock
 * shares a cache line with what every lookup under it reads. */
typedef struct mslock {
    _Atomic uint32_t s;       /* MSL_W: a writer holds it; else the readers */
    _Atomic uint32_t waiters; /* threads parked on it */
} mslock;
#define MSL_W 0x80000000u

/* A user shard: its users (subjects) and their level lists. The lock and
 * the map (written only when a user is added) on one line, what commits
 * write after. */
typedef struct ushard {
    mslock lock;
    umap users; /* subject* by id */
    char pad0[64 - (sizeof(mslock) + sizeof(umap)) % 64];
    subject *levels[N_LEVELS];
    size_t level_n[N_LEVELS];
} ushard;

/* An events shard: the events whose id hashes here; the lock and the
 * table's header on one line. */
typedef struct eshard {
    mslock lock;
    etab t;
    pendlist pend;
    char pad0[64 - (sizeof(mslock) + sizeof(etab) + sizeof(pendlist)) % 64];
} eshard;

/* Lock ids in acquisition order: the global shard, user shards, events
 * shards; a txn's set is a sorted array (a typical one: its user's shard
 * and one events shard). */
#define LK_G 0u
#define LK_U(i) (1u + (i))
#define LK_E(i) (1u + N_USHARDS + (i))
#define LK_N (1u + N_USHARDS + N_ESHARDS)
_Static_assert(LK_N <= 65536, "lock ids fit 16 bits");
typedef struct lockset {
    unsigned n;
    uint16_t id[LK_N];
} lockset;
static inline int lk_has(const lockset *s, unsigned id)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->id[i] == id)
            return 1;
    return 0;
}
static inline void lk_add(lockset *s, unsigned id)
{
    unsigned i = s->n;
    for (; i > 0 && s->id[i - 1] >= id; i--)
        if (s->id[i - 1] == id)
            return;
    for (unsigned j = s->n; j > i; j--) /* a few: no call */
        s->id[j] = s->id[j - 1];
    s->id[i] = (uint16_t)id;
    s->n++;
}

struct risk_memstore {
    ushard *ush; /* N_USHARDS, 64-aligned (ush_mem) */
    eshard *esh; /* N_ESHARDS, 64-aligned (esh_mem) */
    void *ush_mem, *esh_mem;
    /* every shard's first table, one block: the first commit that reaches a
     * shard allocates none (and leaves none behind if it fails) */
    uslot *first_users; /* 64-aligned, in first_users_mem */
    void *first_users_mem;
    egroup *first_events;
    /* the global shard: policies, meta */
    mslock glock;
    map policies, meta;
    size_t meta_pending; /* prepared txns that write meta, not yet applied (glock) */
    /* every thread's home (homes_mu), and the store's number: a thread
     * remembers its home by it (another store may reuse the address) */
    pthread_mutex_t homes_mu;
    home *homes;
    uint64_t id;
    /* committed policy changes (risk_store_policy_gen_of), moved after
     * they are applied: read by every sign-in, written by policy changes
     * only, on a read-mostly line */
    _Atomic uint64_t policy_gen;

    /* interned strings: added under intern_mu, read without a lock */
    pthread_mutex_t intern_mu;
    map interns;                                /* ientry* by string (intern_mu) */
    _Atomic(_Atomic(ientry *) *) ipage[IPAGES]; /* index → entry, pages of IPAGE */
    _Atomic uint32_t n_istr;                    /* indices handed out; [0] is NULL */

    /* history by seq: the item of seq is page (seq - hbase) / HPAGE of
     * hdir, read without a lock (NULL: rolled back, not kept or not yet
     * visible); hbase is the first seq (1, or what recovery set), fixed
     * once shared */
    _Atomic(_Atomic(hitem *) *) *hdir;
    uint64_t hbase;
    atomic_int h_used; /* an item was prepared: hbase is fixed */
    int keep_history;

    /* The next seq to hand out. Every seq below the watermark is committed
     * or rolled back, and readers show only those (so a feed never skips
     * an item); the watermark is computed from the homes' open_lo
     * (seq_watermark). Every reserve takes it from every core: the pads
     * keep it off the lines of hbase and the others read beside it (the
     * store is allocated 16-aligned, so no _Alignas). */
    char seq_pad0[64];
    _Atomic uint64_t next_seq;
    char seq_pad1[64];

    /* finished txns kept for reuse, a cache line each: two threads taking
     * and parking their txns do not share a line */
    struct {
        _Atomic(mtxn *) t;
        char pad[64 - sizeof(void *)];
    } spare[N_SPARE_TXNS];
};

static inline ushard *ush_of(const risk_memstore *ms, uint64_t h)
{
    return &ms->ush[h >> (64 - USHARD_BITS)];
}
static inline unsigned ush_idx(uint64_t h) { return (unsigned)(h >> (64 - USHARD_BITS)); }
static inline unsigned esh_idx(uint64_t h) { return (unsigned)(h >> 8) % N_ESHARDS; }
static inline eshard *esh_of(const risk_memstore *ms, uint64_t h)
{
    return &ms->esh[esh_idx(h)];
}

/* A scratch overflow chunk (the inline scratch is in the txn). */
typedef struct schunk {
    struct schunk *next;
    _Alignas(8) char mem[];
} schunk;

struct mtxn {
    risk_memstore *ms;
    map users;    /* risk_user* (scratch) by id */
    map events;   /* risk_event* (scratch) by id */
    /* the same, in the order they were first buffered: what commits walk
     * (a map's slots are mostly empty) */
    bufuser **usl;
    bufev **evl;
    uint32_t n_usl, cap_usl, n_evl, cap_evl;
    map policies; /* pnode* by name */
    map meta;     /* metanode* by key */
    bufhist **hist; /* scratch copies, seq order */
    size_t n_hist, cap_hist;
    int has_seq, prepared;
    uint64_t seq_hi, seq_appended;
    /* What other threads' reserve_seq and seq_done write and read (the
     * pending list's links, the first seq) sit on a line of their own:
     * a txn linked after this one does not take the lines this txn works
     * on away from its core. */
    _Alignas(64) uint64_t seq_lo;
    mtxn *p_prev, *p_next; /* its home's list of open txns (seq_home->seq_mu) */
    home *seq_home;        /* where it reserved its first seq */
    _Alignas(64) void *mem; /* what txn_new allocated (the txn is aligned in it) */
    subject **subs; /* prepared: users', then events' owners, then history users */
    size_t n_subs;
    int has_nodes; /* prepared: the events' nodes are taken (bufev.node) */
    hitem **items;   /* prepared: the stored form of each history item (arena) */
    size_t res_policies, res_meta;
    /* prepared: the locks prepare held (a rollback takes them again) and
     * the home its memory came from: what it took from the arena is given
     * back by a rollback if no prepare homed there came after it (gen) */
    lockset held;
    home *hm;
    arena_mark amark;
    uint64_t gen;
    ientry *inew; /* strings this txn added to the interned table */
    /* scratch: a bump allocator for buffered writes, freed with the txn */
    char *sc_at;
    size_t sc_left;
    schunk *sc_more;
    /* interning guesses by a cheap key of the string (kept while the txn
     * object is reused; a guess is checked, so a stale one only misses) */
    uint32_t icache[ICACHE];
    /* The nodes the first user_events read of a user (one with a user
     * record: a subject that lives until close) visited, with their ids
     * and id hashes, and the subject's ev_moves then. put_event of one of
     * those ids takes the node along (bufev.seen), and prepare uses it if
     * ev_moves is unchanged: a dismiss-all of ten events then looks none up
     * in the events map (a cache miss on its group, and on the node and
     * its id). Pointers and ids only: the nodes are not
     * touched outside the lock. */
    const subject *seen_subj;
    uint64_t seen_uh; /* the hash of its id */
    uint32_t seen_moves, n_seen;
    txn_seen seen[TXN_SEEN];
    txn_absent *absent; /* ids get_event found absent */
    txn_metaread *mreads; /* committed meta values get_meta read */
    int meta_pending;     /* prepared, counted in ms->meta_pending */
    /* the last user id a buffered write named (a scratch copy) and its hash */
    const char *memo_id;
    uint64_t memo_h;
    /* the hash of the user id begin was given (has_uid_h): get_event
     * prefetches that user's map slot and subject (below cb_get_event) */
    uint64_t uid_h;
    int has_uid_h;
    /* inline first buffers: a typical operation allocates none of these */
    slot inl_users[TXN_INLINE_USERS], inl_events[TXN_INLINE_SLOTS];
    bufuser *inl_usl[TXN_INLINE_USERS];
    bufev *inl_evl[TXN_INLINE_SLOTS];
    bufhist *inl_hist[TXN_INLINE_HIST];
    subject *inl_subs[TXN_INLINE_SUBS];
    _Alignas(8) char sc_inl[TXN_SCRATCH];
};

int ms_nomem(void);

/* ---- locks (lib/store_memory_map.c) ----
 * Holds are short (a commit's publication: about a microsecond), so a
 * thread that finds a lock taken spins that long before it parks: a sleep
 * and wake-up cost several microseconds. A reader may take a second lock
 * while it holds one (a visitor that reads the store, an event's owner);
 * a writer never waits while it holds a lock (a set is taken in order,
 * every lock after the first by trying, and on a miss the writer lets go
 * of all, waits for the one it missed and starts again), and a reader
 * never waits for a writer that only waits, so readers and writers cannot
 * wait in a circle. */
#define LOCK_SPIN 200
static inline void ms_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
/* Readers never wait for a writer that only waits (reader preference),
 * may take a lock they hold again, and spin LOCK_SPIN pauses before they
 * park; so do writers. Acquire and release order the data. */
static inline int msl_tryrd(mslock *l)
{
    uint32_t s = atomic_load_explicit(&l->s, memory_order_relaxed);
    return !(s & MSL_W) && atomic_compare_exchange_weak_explicit(
                               &l->s, &s, s + 1, memory_order_acquire, memory_order_relaxed);
}
static inline int msl_trywr(mslock *l)
{
    uint32_t z = 0;
    return atomic_compare_exchange_strong_explicit(&l->s, &z, MSL_W, memory_order_acquire,
                                                   memory_order_relaxed);
}
void msl_wait(mslock *l, int writer); /* spin, then park until it is taken */
void msl_wake(mslock *l);             /* a release found parked threads */
static inline void ms_rdlock(mslock *l)
{
    if (!msl_tryrd(l))
        msl_wait(l, 0);
}
static inline void ms_rdunlock(mslock *l)
{
    /* seq_cst, as is the load of waiters after it: a thread about to park
     * either sees the lock free or is seen (lib/store_memory_map.c) */
    atomic_fetch_sub(&l->s, 1);
    if (atomic_load(&l->waiters) != 0)
        msl_wake(l);
}
static inline void ms_wrunlock(mslock *l)
{
    atomic_store(&l->s, 0);
    if (atomic_load(&l->waiters) != 0)
        msl_wake(l);
}
mslock *lk_lock(risk_memstore *ms, unsigned id);
/* Write-lock every lock of s (in order, as above) / release them. more:
 * locks to add to a set already held (all after its last one); held
 * becomes the union. */
void lockset_acquire(risk_memstore *ms, const lockset *s);
void lockset_release(risk_memstore *ms, const lockset *s);
void lockset_extend(risk_memstore *ms, lockset *held, const lockset *more);

/* ---- homes ---- */
/* The calling thread's home in ms, made on its first use; NULL: ENOMEM. */
home *home_get(risk_memstore *ms);
/* Whether a thread's hazard names m: the table m just outgrew may be
 * being read (seq_cst, after the new table's seq_cst publication). */
int home_hazard(risk_memstore *ms, const void *m);
static inline void home_take(home *hm)
{
    while (atomic_flag_test_and_set_explicit(&hm->busy, memory_order_acquire))
        ms_pause();
}
static inline void home_put(home *hm) { atomic_flag_clear_explicit(&hm->busy, memory_order_release); }

/* ---- interning (lib/store_memory_map.c) ----
 * The index of s, added if new; 0 for NULL; (uint32_t)-1: ENOMEM (message
 * set). t: the txn that will use it (its guesses are tried first, and a
 * string it adds is its own until it commits), NULL for bulk loading (the
 * string is kept at once). A guess costs a strcmp; a miss takes intern_mu.
 * Indices are never reused, so a stale guess only misses. */
uint32_t intern(risk_memstore *ms, const char *s, mtxn *t);
int intern_init(risk_memstore *ms);
void intern_free(risk_memstore *ms);
/* The txn committed: its added strings are everyone's. */
void intern_commit(mtxn *t);
/* The txn rolled back: remove the strings it added that nobody else took. */
void intern_rollback(risk_memstore *ms, mtxn *t);
static inline const ientry *ientry_at(const risk_memstore *ms, uint32_t i)
{
    _Atomic(ientry *) *pg = atomic_load_explicit(&ms->ipage[i / IPAGE], memory_order_acquire);
    return pg ? atomic_load_explicit(&pg[i % IPAGE], memory_order_acquire) : NULL;
}
/* The string of a committed index (immutable until close). */
static inline const char *istr(const risk_memstore *ms, uint32_t i)
{
    return i ? ientry_at(ms, i)->s : NULL;
}

/* ---- events (lib/store_memory_events.c; the locks noted) ---- */
size_t ev_size(size_t ip_len, size_t note_len);
/* A node of size bytes: a free list's (*popped = 1), the arena's or the
 * heap's; NULL: ENOMEM. (hm taken.) */
evnode *ev_take(home *hm, size_t size, int *popped);
void ev_give(home *hm, evnode *n); /* back to a free list */
/* The events shard's read lock: */
evnode *etab_get(const etab *t, uint64_t h, const char *id);
/* Start fetching the group where a lookup of hash h begins (a hint). */
void etab_prefetch(const etab *t, uint64_t h);
/* Room for extra more inserts beyond count + reserved, reserved (apply
 * then cannot fail); ENOMEM: unchanged. (Write lock.) */
int etab_reserve(etab *t, size_t extra);
int etab_init(etab *t);
void etab_free(etab *t);
/* RISK_EINVAL for an event the compact node cannot hold. */
int ev_check(const risk_event *e);
/* The stored node for e from hm: strings interned (for t: see intern), id
 * stable_id (the stored event's) or a new arena copy, owner unset. ENOMEM:
 * only strings t added and arena bytes are left behind. */
int ev_make(risk_memstore *ms, mtxn *t, home *hm, const risk_event *e,
            const char *stable_id, evnode **out, int *popped);
/* Whether n (owner set) can be copied into old, the node it replaces: the
 * same owner and size. Then only the owner's shard lock is needed. */
int ev_fits(const evnode *old, const subject *owner, size_t size);
/* A new version e of the event whose node old fits it, written into old
 * without a node of its own: prepare interns e's strings into v (a string
 * equal to old's keeps old's index: one strcmp), apply writes them and
 * e's fields. ENOMEM: only strings t added are left behind. */
int ev_patch_prepare(risk_memstore *ms, mtxn *t, const evnode *old, const risk_event *e,
                     uint32_t v[4]);
void ev_patch_apply(evnode *old, const risk_event *e, const uint32_t v[4]);
/* A risk_event view of n, valid while n and the lock of its owner's
 * shard are. */
void ev_view(const risk_memstore *ms, const evnode *n, risk_event *out);
/* Store n (owner set) in place of any event with its id; n or the old
 * node goes back to hm's free lists. known: the caller looked the id up
 * under this hold of the locks and found old (NULL: absent); else old is
 * ignored and looked up. Locks: n's owner's shard; and, unless old is
 * known and fits, the event's events shard and the shard of any owner of
 * the old node. A new id takes a slot etab_reserve promised. */
void ev_install(risk_memstore *ms, home *hm, uint64_t h, evnode *n, int known, evnode *old);
/* A heap copy of a stored event (the owner's shard's read lock). */
int evnode_dup(const risk_memstore *ms, risk_event **out, const evnode *n);

/* history items (lib/store_memory_hist.c) */
void hist_view(const risk_memstore *ms, const hitem *h, risk_history *out);

/* level and per-user event lists (the shard's write lock) */
void level_link(ushard *sh, subject *s);
void level_unlink(ushard *sh, subject *s);
/* Room in s's array for `extra` more events beyond those and the ones
 * promised, promised (the shard's write lock); ENOMEM: unchanged. */
int ev_reserve(subject *s, uint32_t extra);
/* Take back a promise; an array left empty and unpromised is freed. */
void ev_unreserve(subject *s, uint32_t n);
void ev_link(subject *s, evnode *n); /* room promised */
void ev_unlink(evnode *n);
/* Find or create the subject of id in its shard (write lock held); NULL:
 * ENOMEM. */
subject *subject_get(risk_memstore *ms, uint64_t h, const char *id);
void subject_free(subject *s);
/* Copy u's fields but the id into the subject's user (the id, the
 * subject's, is read without locks by history views), and the fields a
 * sign-in reads into its slot; h: the id's hash (the shard's write lock). */
void subject_set_user(risk_memstore *ms, uint64_t h, subject *s, const risk_user *u);

/* ---- transactions (lib/store_memory.c) ---- */
mtxn *txn_new(void); /* an uninitialised txn object; NULL: ENOMEM */
void txn_free(mtxn *t);
int ms_begin(void *ctx, const char *user_id, void **txn);
int ms_commit(void *ctx, void *txn);
void ms_rollback(void *ctx, void *txn);
/* The txn's scratch: bytes freed with the txn; NULL: ENOMEM (message set). */
void *sc_alloc(mtxn *t, size_t n);
/* Copy s into scratch (NULL stays NULL); *ok cleared on ENOMEM. */
char *sc_str(mtxn *t, const char *s, int *ok);

/* ---- the sequencer and history (lib/store_memory_hist.c) ---- */
int seq_reserve(risk_memstore *ms, mtxn *t, uint64_t *seq);
/* The txn is done (applied or rolled back): let later seqs show. */
void seq_done(risk_memstore *ms, mtxn *t);
/* Prepare (the txn's locks): t's items in its home's arena and pages of
 * the seq index. ENOMEM: nothing changed but the arena mark and strings t
 * added (given back by the caller); a page, once there, stays. */
int hist_prepare(risk_memstore *ms, mtxn *t, size_t first_sub);
/* Apply (the txn's locks): publish t's items. */
void hist_apply(risk_memstore *ms, mtxn *t);
/* The first page of the seq index (keep_history stores, at creation). */
int hist_init(risk_memstore *ms);
void hist_free(risk_memstore *ms);
/* The read_history callback. */
int ms_read_history(void *ctx, const char *user_id, uint64_t since_seq,
                    risk_history_visit_fn fn, void *arg);

#endif /* LIBRISK_MEMSTORE_H */
