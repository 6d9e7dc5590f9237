/* The journal store's internals, shared by its modules. Not installed.
 *   lib/journal_format.c  CRC32C, file I/O and fault hooks, header and frame
 *                         layout, the recovery scanner, risk_journal_check
 *   lib/journal_replay.c  the on-disk history index and recovery (replay,
 *                         sizing hints, the two-thread pipeline)
 *   lib/journal_hist.c    a history item's seq and user id read in place
 *   lib/journal_compact.c compaction and backup
 *   lib/store_journal.c   the store: transactions, (group) commit, the
 *                         write buffer, reads, open and close
 * docs/journal-format.md is the reference of the bytes. */
#ifndef LIBRISK_JOURNAL_H
#define LIBRISK_JOURNAL_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

#define HDR_LEN 32              /* file header */
#define FRAME_HDR 16            /* len u32, txn u64, crc u32 */
#define FRAME_MAX (256u << 20)  /* largest payload accepted */
#define SNAP_FRAME (1u << 20)   /* payload size of compaction frames */
#define RD_CHUNK (1u << 20)     /* read-ahead of the recovery reader */
#define RD_AHEAD (4u << 20)     /* what it asks the kernel to fetch beyond */
#define HIST_BATCH 64           /* history items read per index lock */
#define WBUF_CAP (256u << 10)   /* write buffer: frames wait here for one pwrite */
#define RESV_CHUNK (1u << 20)   /* file space reserved ahead of the end */
#define LEAD_ROUNDS 8           /* group-commit syncs one leader runs in a row */
#define FORMAT_VERSION 2 /* written; 1 is read too */
extern const uint8_t JOURNAL_MAGIC[8];

/* Operation tags inside a frame's payload: [tag u8][len u32][bytes]. */
enum { OP_USER = 1, OP_EVENT, OP_POLICY, OP_POLICY_REMOVE, OP_META, OP_HISTORY, OP_COUNT };

/* ---- little-endian fields ---- */
static inline void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- file I/O with the test fault hooks (journal_format.c) ---- */
extern atomic_int journal_hook_compact_step;
extern atomic_uint journal_resv_chunk; /* RESV_CHUNK; tests may change it */
int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off); /* -1 + errno */
int datasync(int fd);                                              /* -1 + errno */
int reserve_space(int fd, uint64_t off, uint64_t len);             /* -1 + errno */
void release_space(int fd, uint64_t off, uint64_t len);
int fsync_dir(const char *path);                                   /* RISK_… */
/* fsync_dir in two steps, so that nothing can fail for want of memory
 * once a rename is done: the directory of path (allocated, NULL when out
 * of memory), and the sync of it. */
char *dir_of(const char *path);
int sync_dir(const char *dir);                                     /* RISK_… */
int lock_file(int fd, const char *path);                           /* RISK_… */
int same_file(int fd, const char *path); /* 1: path names fd's file (device and inode) */
void new_salt(uint8_t salt[8]);
void make_header(uint8_t h[HDR_LEN], const uint8_t salt[8]);
/* Fill a frame's header; buf holds FRAME_HDR bytes then the payload. */
void seal_frame(uint8_t *buf, size_t payload, uint64_t txn, const uint8_t salt[8]);

/* ---- growable byte buffer ---- */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
    uint8_t *inl; /* a caller-owned first buffer (p starts there), or NULL */
} bytes;
/* Append an op header for n bytes; *dst receives where the n bytes go. */
int bytes_op(bytes *b, uint8_t tag, size_t n, uint8_t **dst);
typedef int (*enc_fn)(uint8_t *buf, size_t cap, size_t *len, const void *rec);
int enc_user(uint8_t *b, size_t c, size_t *l, const void *r);
int enc_event(uint8_t *b, size_t c, size_t *l, const void *r);
int enc_policy(uint8_t *b, size_t c, size_t *l, const void *r);
int enc_history(uint8_t *b, size_t c, size_t *l, const void *r);
/* Encode rec as an op of b; *at (if not NULL) receives where its bytes start. */
int put_op(bytes *b, uint8_t tag, enc_fn enc, const void *rec, size_t *at);
/* The meta op body: [key length u16][key][value ≤ 256]. */
int put_meta_op(bytes *b, const char *key, const uint8_t *val, size_t len);

/* Grow an array to hold need elements; NULL (array untouched) on ENOMEM.
 * A macro so each array keeps its own type (no void ** punning); the
 * caller declares `void *tmp_`. */
void *grow_(void *p, size_t *cap, size_t need, size_t elem);
#define GROW(arr, cap, need)                                                               \
    ((need) <= *(cap) ? 0                                                                  \
     : (tmp_ = grow_((arr), (cap), (need), sizeof *(arr))) != NULL ? ((arr) = tmp_, 0) : -1)

/* ---- reading: a buffered reader and the frame scanner ---- */
typedef struct rd {
    int fd;
    uint64_t size, base;
    uint8_t *buf;
    size_t cap, n;
} rd;
/* [off, off+len) of the file, len ≤ size - off; NULL with an error set. */
const uint8_t *rd_get(rd *r, uint64_t off, size_t len);

typedef int (*frame_fn)(void *arg, uint64_t off, const uint8_t *payload, uint32_t len);
typedef struct scan_res {
    uint64_t good_end, frames, dropped;
    int torn_header; /* a prefix of a header only: treat as empty */
    uint32_t version; /* the header's format version (0: no header) */
    uint8_t salt[8];
} scan_res;
/* Walk header and frames, calling fn on each valid frame; see the format
 * document for the tail-or-middle rule. strict: a torn tail is corrupt. */
int scan(rd *r, int strict, frame_fn fn, void *arg, scan_res *res);
/* Walk the ops of a payload: fn(arg, tag, file offset of the body, body, n)
 * for each; a bad tag or length is RISK_ECORRUPT. Errors that mean "the
 * bytes are wrong" come back as RISK_ECORRUPT naming the frame's offset. */
typedef int (*op_visit_fn)(void *arg, uint8_t tag, uint64_t at, const uint8_t *p, size_t n);
int frame_ops(uint64_t off, const uint8_t *p, uint32_t len, op_visit_fn fn, void *arg);
/* frame_ops' error for the op at payload byte pos of the frame at off:
 * "the bytes are wrong" codes become RISK_ECORRUPT naming both. */
int op_error(uint64_t off, uint32_t pos, int rc);

/* ---- the store ---- */

/* The history index's hash of a user id. */
static inline uint64_t jhash(const uint8_t *p, size_t n) { return risk_hash_bytes(p, n); }

/* ---- the history index (journal_replay.c) ----
 * Items are found by seq: seq s lives in slot s % HX_SLOTS of chunk
 * s / HX_SLOTS, which holds the item's file offset and length packed in 64
 * bits (0: no item with that seq) and the seq of the same user's next item
 * (0: none). A user with history has its first and last seq. 12 bytes an
 * item and no per-item arrays that grow by doubling; seqs may arrive in
 * any order (commits of different users finish in any order). Seqs are
 * below 2^32 (as the in-memory store's are), offsets below 2^44 (16 TiB),
 * an item's encoding below 2^20 bytes (its strings are bounded: ~2 KiB). */
#define HX_SHIFT 16
#define HX_SLOTS (1u << HX_SHIFT)
#define HX_LEN_BITS 20
#define HX_OFF_MAX (((uint64_t)1 << (64 - HX_LEN_BITS)) - 1)
typedef struct hxchunk {
    uint64_t ol[HX_SLOTS]; /* off << HX_LEN_BITS | len; 0: none */
    uint32_t next[HX_SLOTS];
} hxchunk;
#define HUSER_INL 28 /* ids shorter than this live in their entry */
typedef struct huser { /* a user with history */
    uint64_t hash;
    uint32_t head, tail;
    union {
        char inl[HUSER_INL]; /* the id and its NUL, when short: a lookup
                              * reads one entry, not an entry and an id */
        const char *pool;    /* in the index's id pool, when long */
    } id;
    uint32_t len; /* the id's length */
} huser;
typedef struct idchunk { /* the id pool: bytes that live until close */
    struct idchunk *next;
    size_t used;
    char mem[];
} idchunk;

/* A history item's seq and user id, read in place from its canonical
 * encoding (journal_hist.c). check 1: accepts exactly what
 * risk_history_decode accepts (0 / -1); check 0: locate only, for bytes
 * our encoder just wrote. *user is NULL (and *ulen 0) for no user. */
int hist_peek(const uint8_t *p, size_t n, int check, uint64_t *seq, const uint8_t **user,
              size_t *ulen);

typedef struct jstore {
    risk_memstore *ms;
    risk_store mt; /* the memstore's table */
    char *path;
    int fd, read_only;
    uint32_t durability, interval_ms;
    uint8_t salt[8];

    pthread_mutex_t file_mu; /* end, next_txn, the write buffer, appends */
    uint64_t end, next_txn;  /* end: logical end, including buffered bytes */
    uint8_t *wbuf;           /* frames not yet written, from end - wlen */
    uint8_t *wspare;         /* full mode: the buffer a leader swaps in */
    uint64_t flushed_off;    /* under wr_mu: the file holds every frame up to here */
    /* held while a buffer is written (file_mu, then wr_mu): buffers reach
     * the file in order, and whoever needs the file whole waits for it */
    pthread_mutex_t wr_mu;
    size_t wlen;
    uint64_t wframes;  /* frames in the write buffer */
    uint64_t resv_end; /* the file has space allocated up to here (reserve) */
    int can_reserve;   /* 0: the file system cannot reserve (fallocate) */
    /* Frames counted since open (compaction keeps counting): appended, the
     * ones in the file, the ones a finished sync covered. A commit's
     * ticket is its frame's number. Written under file_mu (appended,
     * flushed) or sync_mu (synced); read anywhere. */
    _Atomic uint64_t appended, flushed, synced;
    atomic_int inflight;        /* commits appended, not yet applied in memory */
    atomic_int inflight_waiter; /* compaction waits for inflight == 0 */

    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;   /* a sync ended (compaction, the background thread) */
    int syncing; /* under sync_mu: an fdatasync runs (compaction waits it out) */
    uint64_t sync_off; /* under sync_mu: the file up to here is synced */
    /* Group commit (full mode), without a lock: `leading` says a leader
     * exists; sync number sync_gen covers the frames up to sync_target
     * (published by the leader before it syncs); the waiters of sync g
     * sleep on gword[g & 1], which the end of sync g (or a hand-over of
     * the lead) changes. */
    atomic_int leading;
    /* sync_gen and sync_target change together: pub_seq is odd while the
     * leader changes them (a sequence lock: a waiter reads both between
     * two equal even values, and knows whether a sync was published since) */
    _Atomic uint32_t pub_seq;
    _Atomic uint32_t sync_gen;
    _Atomic uint64_t sync_target;
    atomic_uint gword[2];
    atomic_int relay[2]; /* the first waiter woken on gword[p] wakes the rest */
    pthread_cond_t gcv[2]; /* where there is no futex: the sleepers of gword */
    int stop, has_thread;
    pthread_t thread;
    atomic_int poisoned;

    pthread_rwlock_t idx_lock; /* the history index, for readers */
    hxchunk **hx;   /* chunk directory */
    size_t hx_cap;  /* chunks it can point to */
    uint64_t h_n;   /* items */
    uint64_t h_max; /* largest seq (0: none) */
    uint32_t *u_tab; /* users: open addressing of 1 + index in users (0: empty) */
    size_t u_cap;
    huser *users;   /* dense */
    size_t u_n, u_alloc;
    idchunk *ids;
} jstore;

typedef struct phist { /* a history item of a txn, indexed after its write */
    uint64_t seq;
    uint32_t at;  /* offset of the encoding in the frame buffer (< FRAME_MAX) */
    uint32_t uat; /* offset of its user id in the frame buffer (ulen 0: none) */
    uint32_t len, ulen;
    uint32_t uix; /* 1 + its user's index in jstore.users, once found (0: not yet) */
} phist;

/* history index (journal_replay.c); idx_lock protects it for readers and
 * file_mu serialises its writers */
const huser *huser_find(const jstore *js, const uint8_t *id, size_t n);
/* Set each item's uix where its user is indexed already, and fetch the
 * link idx_add will write; takes idx_lock to read, before file_mu: a
 * user, once indexed, keeps its index, so what is found stays true. */
void idx_find_users(jstore *js, const uint8_t *buf, phist *ph, size_t k);
/* Start fetching the index slot of a user whose item a txn just logged:
 * it arrives while the txn goes on to its commit and idx_find_users. */
void idx_prefetch_user(jstore *js, const uint8_t *id, size_t n);
/* 1 if k more items need no allocation (every user found, every seq's
 * chunk there): then a commit skips idx_reserve and its lock. */
int idx_has_room(const jstore *js, const phist *ph, size_t k);
/* Make room for k more items so idx_add cannot fail, and set every
 * item's uix (idx_lock held). */
int idx_reserve(jstore *js, const uint8_t *buf, phist *ph, size_t k);
/* Add an item whose seq is not in the index (room made); uix as in phist. */
void idx_add(jstore *js, uint64_t seq, uint64_t off, uint32_t len, uint32_t uix);
/* 1 if an item with this seq is in the index. */
int idx_has(const jstore *js, uint64_t seq);
/* The item of seq: its offset and length; 0 if there is none. */
static inline int idx_get(const jstore *js, uint64_t seq, uint64_t *off, uint32_t *len)
{
    size_t c = (size_t)(seq >> HX_SHIFT);
    uint64_t v = c < js->hx_cap && js->hx[c] ? js->hx[c]->ol[seq & (HX_SLOTS - 1)] : 0;
    *off = v >> HX_LEN_BITS, *len = (uint32_t)(v & ((1u << HX_LEN_BITS) - 1));
    return v != 0;
}
/* The seq of the next item of the same user (0: none). */
static inline uint32_t idx_next(const jstore *js, uint64_t seq)
{
    return js->hx[seq >> HX_SHIFT]->next[seq & (HX_SLOTS - 1)];
}
/* Set the offset of an item that is in the index (compaction). */
void idx_set_off(jstore *js, uint64_t seq, uint64_t off);
uint64_t idx_max_seq(const jstore *js);
void idx_free(jstore *js);
/* Recovery: scan r and load every frame into js->ms and the index. A file
 * of at least journal_pipe_min bytes is read and decoded on a second
 * thread while this one loads (tests lower it to cover that path). */
int journal_replay(jstore *js, rd *r, scan_res *res);
extern uint64_t journal_pipe_min;

/* store_journal.c */
int check_readable(jstore *js); /* RISK_EIO once poisoned */
int check_writable(jstore *js);
/* Write the buffered frames, after a leader's write in flight (file_mu
 * held): then the file holds every appended frame. A failure poisons the
 * journal: those frames were applied in memory (and, but in full mode,
 * acknowledged). */
int wbuf_flush(jstore *js);
/* Sync the frames written so far (backup; file_mu held). */
int sync_written(jstore *js, int even_off);
/* With file_mu held: write the buffered frames, sync what is written
 * (sync_written), then check (check_readable or check_writable) that no
 * write or sync of another thread failed meanwhile: the file then holds,
 * durably, what memory shows. */
int flush_and_sync(jstore *js, int even_off, int (*check)(jstore *));
/* After synced moved or the journal was poisoned (sync_mu held): wake every
 * commit waiting for a sync; each looks again. */
void wake_all_waiters(jstore *js);

/* Wait until every appended commit is applied in memory (file_mu held:
 * then memory and file hold the same commits). */
void wait_applied(jstore *js);

/* journal_compact.c (file_mu held by the caller) */
int write_copy(jstore *js, const char *dst, int compact);
int j_compact(void *ctx);
int j_backup(void *ctx, const char *path);

#endif /* LIBRISK_JOURNAL_H */
