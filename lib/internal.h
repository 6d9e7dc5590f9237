/* Internal declarations shared by lib/ modules. Not installed. */
#ifndef LIBRISK_INTERNAL_H
#define LIBRISK_INTERNAL_H

#include "librisk.h"
#include "librisk/store.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* ---- alloc.c: every allocation goes through these ---- */
void *risk_malloc(size_t size);
void *risk_calloc(size_t n, size_t size);   /* overflow-checked, zeroed */
void *risk_realloc(void *ptr, size_t size); /* ptr may be NULL */
void risk_free(void *ptr);                  /* NULL ok */
/* Overwrite a secret with zeros (keys, passwords, their hash states): a
 * memset before the memory dies is a dead store the compiler may drop;
 * this one is made through a volatile pointer, so it stays. */
void risk_wipe(void *p, size_t n);
char *risk_strdup(const char *s);           /* NULL in → NULL out (not an error) */
char *risk_strndup(const char *s, size_t n);

/* ---- error.c ---- */
/* Set the thread-local last error with a printf-style message; returns code. */
int risk_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- record.c: validation shared by handles, codec and engine ---- */
/* Each returns RISK_OK or RISK_EINVAL with a message naming `what`. */
int risk_check_id(const char *what, const char *s);               /* 1–256 B, UTF-8, no controls */
/* The same, and on success *len = strlen(s): one pass for the hot paths. */
int risk_check_id_len(const char *what, const char *s, size_t *len);
int risk_check_text(const char *what, const char *s, size_t max); /* NULL ok, ≤ max B, UTF-8, no controls */
int risk_check_note(const char *what, const char *s);             /* NULL ok, ≤ 1024 B UTF-8; \t \n allowed */
int risk_check_type(const char *what, const char *s);             /* 1–64 B of [A-Za-z0-9_.-] */
int risk_check_time(const char *what, int64_t t);                 /* 0 ≤ t < 2^53 */
int risk_check_time_opt(const char *what, int64_t t);             /* RISK_TIME_NONE or valid */
int risk_check_event_level(const char *what, uint32_t level);     /* low..high */
/* Strict UTF-8 (no overlongs, surrogates, > U+10FFFF, truncation). Returns the
 * byte offset of the first bad byte, or (size_t)-1 if valid. */
size_t risk_utf8_invalid_at(const uint8_t *s, size_t len);

/* ---- hashing of ids kept in memory (never written anywhere) ---- */
/* One 64x64->128 multiply, its halves folded together. */
static inline uint64_t risk_fold_mul(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    __uint128_t m = (__uint128_t)a * b;
    return (uint64_t)m ^ (uint64_t)(m >> 64);
#else
    uint64_t h = a * b;
    return h ^ (h >> 29) ^ ((a >> 32) * (b | 1));
#endif
}
/* The hash of n bytes, 8 per step: the memory store's maps and shards,
 * the journal's history index and the decision table's filter of named
 * users. Not for anything stored (risk_hash_str, engine.h, is in ids). */
static inline uint64_t risk_hash_bytes(const void *s, size_t n)
{
    const unsigned char *p = s;
    uint64_t h = 0x243f6a8885a308d3ULL ^ n;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = risk_fold_mul(h ^ w, 0x9e3779b97f4a7c15ULL);
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = risk_fold_mul(h ^ w ^ 0xa0761d6478bd642fULL, 0xe7037ed1a0b428dbULL);
    return h ^ (h >> 32);
}

/* ---- the records ---- */
struct risk_user {
    char *id;
    uint8_t mfa_registered;
    uint8_t deleted;
    uint8_t must_change_password;
    uint8_t reset_required;
    uint32_t level;  /* risk_level */
    uint32_t state;  /* risk_state */
    uint32_t detail; /* risk_detail */
    uint32_t active_events;
    int64_t mfa_registered_at;
    int64_t remediated_at;
    int64_t risk_updated_at;
    int64_t risk_since;
    int64_t next_change_at;
    uint64_t score;
    uint64_t version;
    uint8_t chain_head[32];
};

struct risk_event {
    char *id;
    char *user_id;
    char *type;
    char *ip;        /* NULL: absent */
    char *location;  /* NULL: absent */
    char *source;    /* NULL: absent */
    char *closed_by; /* NULL while active */
    char *note;      /* NULL: absent */
    uint32_t level;  /* risk_level */
    uint32_t timing; /* risk_timing */
    uint32_t state;  /* risk_event_state */
    uint32_t reason; /* risk_close_reason */
    int64_t detected_at;
    int64_t closed_at; /* RISK_TIME_NONE while active */
    /* risk_event_dup packs the strings in one block after the struct, in
     * the same allocation: a string inside it is freed with the event, not
     * on its own (a setter replacing it leaves the old bytes in the block).
     * NULL for events built field by field. A copy of the struct must not
     * outlive the event it was copied from. */
    char *arena;
    size_t arena_len;
    /* RISK_EV_BORROWED_* bits: fields pointing at a string the event
     * does not own. The engine closes the events of an operation with its
     * actor and note, which outlive them (closed_by, note), and its copies
     * of a built-in store's events point at the strings that store keeps
     * until it closes (risk_event_dup_borrowing): no copy per event. */
    uint8_t borrowed;
    /* A built-in store's view or the engine's copy of one: the
     * RISK_EV_BORROWED_* bits of fields pointing at strings that store
     * (`stable_of`, its context) keeps unchanged until it is closed. A put
     * of the event back into that store keeps those pointers instead of
     * copying the strings. Zero everywhere else (risk_event_dup clears
     * it: a copy owns its strings). */
    uint8_t stable;
    /* The handle itself was placed by its creator's allocator (an
     * operation's block of copies: risk_event_dup_borrowing's `alloc`):
     * risk_event_free frees only the strings it owns. */
    uint8_t in_block;
    const void *stable_of;
};
#define RISK_EV_BORROWED_CLOSED_BY 1u
#define RISK_EV_BORROWED_NOTE 2u
#define RISK_EV_BORROWED_ID 4u
#define RISK_EV_BORROWED_USER_ID 8u
#define RISK_EV_BORROWED_TYPE 16u
#define RISK_EV_BORROWED_IP 32u
#define RISK_EV_BORROWED_LOCATION 64u
#define RISK_EV_BORROWED_SOURCE 128u

/* An event's eight strings packed in one block, as risk_event_dup and the
 * memory store's buffered writes keep them: strings_size measures them
 * once (len[i]: bytes with the NUL; 0 for NULL, and for the fields in
 * `keep`, RISK_EV_BORROWED_* bits, which are not copied; returns the
 * sum), then pack_strings copies src's into `at` and points dst's fields
 * at them, and a field of length 0 at src's string (NULL, or kept). */
size_t risk_event_strings_size(const risk_event *src, unsigned keep, size_t len[8]);
void risk_event_pack_strings(risk_event *dst, const risk_event *src, const size_t len[8],
                             char *at);
/* Engine-internal: a copy of a store's view for one operation, in one
 * allocation, that points at the view's stable strings (view->stable)
 * instead of copying them, and marks them borrowed. It must not outlive
 * the store. `alloc` (NULL: risk_malloc) places it: a copy it placed is
 * released with whatever alloc took it from (risk_event_free frees only
 * the strings the copy owns). */
int risk_event_dup_borrowing(risk_event **out, const risk_event *view,
                             void *(*alloc)(void *ctx, size_t n), void *ctx);

/* Engine-internal: close or reopen an event with values already valid,
 * borrowing `by` (and below, `note`), which must outlive the event. */
void risk_event_close_borrowed(risk_event *e, uint32_t state, uint32_t reason, int64_t at,
                               const char *by);
void risk_event_note_borrowed(risk_event *e, const char *note);

struct risk_policy {
    char *name;
    uint32_t mode;      /* risk_policy_mode */
    uint32_t threshold; /* risk_level */
    uint32_t control;   /* risk_control */
    size_t n_include, n_exclude;
    char **include; /* empty: all users; kept sorted, unique */
    char **exclude; /* kept sorted, unique */
};

struct risk_history {
    uint64_t seq;
    int64_t at;
    char *actor;
    uint32_t action; /* risk_history_action */
    char *user_id;   /* NULL for policy changes */
    char *event_id;  /* NULL for user-wide actions */
    char *policy;    /* NULL unless a policy change */
    uint32_t level_before, level_after;
    uint32_t state_before, state_after;
    uint32_t changed;
    char *note; /* NULL: absent */
    uint8_t chain[32];
};

/* A policy name with its NUL in whole 64-bit words: the verdict's name
 * buffers have this room, so the sign-in copies names word by word. */
#define RISK_NAME_WORDS ((RISK_ID_MAX + 1 + 7) / 8)
/* The most ids a policy's include or exclude list holds (documented at
 * risk_policy_include_add; the encoding refuses more). */
#define RISK_POLICY_LIST_MAX 100000u

/* Report-only entry of a verdict. */
struct risk_verdict_ro {
    char policy[RISK_NAME_WORDS * 8];
    uint32_t decision;
    uint32_t reason;
};

struct risk_verdict {
    uint32_t decision; /* risk_decision */
    uint32_t reason;   /* risk_reason */
    uint32_t level;
    int has_policy;
    char policy[RISK_NAME_WORDS * 8];
    char user_id[RISK_ID_MAX + 1];
    int64_t at;
    size_t n_ro, cap_ro;
    struct risk_verdict_ro *ro;
    /* receipts (R-RC-1): filled by the engine when wanted */
    int want_receipt;
    char *receipt;
};

/* risk_decide for callers whose arguments are valid by construction. */
int risk_decide_checked(risk_verdict *v, const risk_policy *const *policies, size_t n,
                        const risk_user *user, risk_level level, int64_t now);

/* Reset a verdict to the fail-closed value (block/store_error). */
void risk_verdict_fail_closed(risk_verdict *v, const char *user_id, int64_t at);

/* ---- policy.c: the sign-in's decision table ----
 * A policy set compiled when the engine caches it: what it decides for
 * each class of user (level, whether MFA counts (R-PO-11), the password
 * flags, deleted, unknown) is worked out once (R-PO-1…8), so a sign-in
 * decides with one table lookup and copies the names it reports.
 *
 * The table is an array of 64-bit words so that the engine can publish it
 * to concurrent sign-ins under a sequence count (lib/engine_policy.c):
 * risk_ptab_listed and risk_ptab_decide read it with acquire loads, never
 * trust a value they read (every index and length is bounded first), and
 * their caller throws the verdict away if the count moved meanwhile.
 *
 * Only users named in no include or exclude list are decided by the
 * table; a filter of the named ids sends the others (and a few more, its
 * false positives) to the general decision. A set of more than
 * RISK_PTAB_MAX policies gets no table. */
#define RISK_PTAB_MAX 16
#define RISK_PTAB_UNKNOWN 36u /* the key of a user unknown to the store (R-PO-8) */
#define RISK_PTAB_DELETED 37u /* the key of a deleted user (R-PO-6) */
#define RISK_PTAB_CELLS 38
#define RISK_PTAB_FILTER_BITS 4096
enum {
    RISK_PTAB_HDR = 0, /* policies tabled | filter in use << 8 */
    RISK_PTAB_CELL = 1,
    RISK_PTAB_POL = RISK_PTAB_CELL + RISK_PTAB_CELLS,
    RISK_PTAB_NAME = RISK_PTAB_POL + RISK_PTAB_MAX,
    RISK_PTAB_FILTER = RISK_PTAB_NAME + RISK_PTAB_MAX * RISK_NAME_WORDS,
    RISK_PTAB_WORDS = RISK_PTAB_FILTER + RISK_PTAB_FILTER_BITS / 64
};

/* Compile policies (valid) into out; 0 when they cannot be tabled. */
int risk_ptab_build(uint64_t out[RISK_PTAB_WORDS], const risk_policy *const *policies,
                    size_t n);

/* The table key of a stored user: 3 × (3 × level + MFA class) + password
 * state, or RISK_PTAB_DELETED. MFA class: 0 not registered, 1 registered
 * during the risk, 2 counts (R-PO-11); password state: 0 none, 1
 * must_change_password, 2 reset_required only (R-PO-7). */
static inline uint32_t risk_ptab_key(const risk_user *u)
{
    /* Without short-circuits: these flags vary from user to user, so
     * branches on them would often be mispredicted. */
    uint32_t reg = u->mfa_registered != 0;
    uint32_t counts = reg & ((u->risk_since == RISK_TIME_NONE) |
                             (u->mfa_registered_at == RISK_TIME_NONE) |
                             (u->mfa_registered_at <= u->risk_since));
    uint32_t mcp = u->must_change_password != 0, rr = u->reset_required != 0;
    uint32_t key = 3u * (3u * (u->level & 3u) + reg + counts) + (mcp | (rr & !mcp) << 1);
    return u->deleted ? RISK_PTAB_DELETED : key;
}

/* Whether the id (len bytes) may be named in a tabled policy's lists. */
int risk_ptab_listed(const _Atomic uint64_t *tab, const char *id, size_t len);

/* Decide from the table as risk_decide_checked would for a user with this
 * key and level (unknown: RISK_PTAB_UNKNOWN, level none) whose id is
 * user_id (len ≤ RISK_ID_MAX bytes). RISK_ENOMEM leaves v fail-closed. */
int risk_ptab_decide(risk_verdict *v, const _Atomic uint64_t *tab, uint32_t key,
                     uint32_t level, const char *user_id, size_t len, int64_t now);

/* ---- transition.c ---- */
/* The close reason each closing action records (RISK_CLOSE_NONE for reactivate). */
risk_close_reason risk_action_reason(risk_action action);

/* ---- score.c ---- */
extern const risk_scoring risk_scoring_default;


/* ---- codec.c ---- */
/* Canonical encoding of a history item without its chain field: the bytes
 * the chain hash covers (R-AU-1). Same conventions as risk_history_encode. */
int risk_history_encode_body(uint8_t *buf, size_t cap, size_t *len, const risk_history *item);
/* risk_user_encode / risk_event_encode for records the library holds as
 * handles (their strings were validated by the setters or the decoder):
 * strings are not checked again; ranges and structure still are. The
 * bytes are the same. */
int risk_user_encode_trusted(uint8_t *buf, size_t cap, size_t *len, const risk_user *user);
int risk_event_encode_trusted(uint8_t *buf, size_t cap, size_t *len, const risk_event *event);

/* ---- sha256.c (R-AU-1, R-RC-1) ---- */
typedef struct risk_sha256_ctx {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t buf[64];
    size_t nbuf;
} risk_sha256_ctx;
void risk_sha256_init(risk_sha256_ctx *c);
void risk_sha256_update(risk_sha256_ctx *c, const void *data, size_t len);
void risk_sha256_final(risk_sha256_ctx *c, uint8_t out[32]);
void risk_sha256(const void *data, size_t len, uint8_t out[32]);
void risk_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
                      uint8_t out[32]);
int risk_sha256_hw_available(void);     /* 1 if the SHA-NI path is used */
void risk_sha256_force_portable(int on); /* tests/bench: 1 forces the portable path */
/* Compress whole 64-byte blocks with each implementation (tests compare them). */
void risk_sha256_blocks_portable(uint32_t h[8], const uint8_t *p, size_t nblocks);
void risk_sha256_blocks_hw(uint32_t h[8], const uint8_t *p, size_t nblocks); /* only if available */

/* ---- store_memory.c: internal API for wrappers (the journal store) ---- */
typedef struct risk_memstore risk_memstore;
/* keep_history 0: reserve_seq still numbers items, append_history drops them,
 * read_history is NULL in the table (the wrapper keeps history itself). */
int risk_memstore_new(risk_memstore **out, int keep_history);
void risk_memstore_free(risk_memstore *ms);
/* Fill a callback table whose ctx is ms; close frees ms. */
void risk_memstore_table(risk_memstore *ms, risk_store *out);
/* Two-phase commit for wrappers: prepare does every check (conflicts) and
 * allocation and may fail (txn is then still open: rollback it); after it
 * succeeded apply cannot fail, makes the writes visible, releases the
 * sequencer and frees txn. commit == prepare + apply. */
int risk_memstore_prepare(risk_memstore *ms, void *txn);
void risk_memstore_apply(risk_memstore *ms, void *txn);
/* Sequence numbers: the next one reserve_seq hands out (recovery sets it). */
uint64_t risk_memstore_next_seq(risk_memstore *ms);
void risk_memstore_set_next_seq(risk_memstore *ms, uint64_t next);
/* Every seq below this one is committed or rolled back: a history reader
 * shows only those (store.h's rule for read_history). */
uint64_t risk_memstore_visible_seq(risk_memstore *ms);
/* Visit committed records (compaction, dumps); fn returns non-zero to stop. */
int risk_memstore_each_user(risk_memstore *ms, risk_user_visit_fn fn, void *arg);
int risk_memstore_each_event(risk_memstore *ms, risk_event_visit_fn fn, void *arg);
int risk_memstore_each_policy(risk_memstore *ms, risk_policy_visit_fn fn, void *arg);
typedef int (*risk_meta_visit_fn)(const char *key, const uint8_t *val, size_t len, void *arg);
int risk_memstore_each_meta(risk_memstore *ms, risk_meta_visit_fn fn, void *arg);

/* ---- store_journal.c ---- */
/* A store's commit in two halves, for the engine to wait for the disk
 * after releasing the user's lock (issue: "no thread holds a user's lock
 * while it waits for the disk longer than it must"). commit_nowait
 * commits as commit() does (applied, visible, ordered before later
 * commits) but may return before durable; wait_durable(ticket) then
 * returns once it is. Only the journal store has it: growing the public
 * risk_store table would make risk_memory_store_new() and
 * risk_journal_open() write past a table compiled against the old size. */
typedef struct risk_store_split {
    int (*commit_nowait)(void *ctx, void *txn, uint64_t *ticket);
    int (*wait_durable)(void *ctx, uint64_t ticket);
    int (*sync)(void *ctx); /* risk_engine_sync */
} risk_store_split;
/* Whether tables a and b call the same functions for every required
 * callback: then their ctx is the same kind of store. (One callback alone
 * is not enough: a host may wrap a built-in store with a ctx of its own
 * and reuse a callback that ignores ctx.) */
static inline int risk_store_same_calls(const risk_store *a, const risk_store *b)
{
    return a->begin == b->begin && a->commit == b->commit && a->rollback == b->rollback &&
           a->get_user == b->get_user && a->put_user == b->put_user &&
           a->get_event == b->get_event && a->put_event == b->put_event &&
           a->user_events == b->user_events && a->reserve_seq == b->reserve_seq &&
           a->append_history == b->append_history && a->list_policies == b->list_policies &&
           a->put_policy == b->put_policy && a->remove_policy == b->remove_policy &&
           a->get_meta == b->get_meta && a->put_meta == b->put_meta;
}
/* Whether a and b are the same table: every callback, optional ones
 * included (a host may reuse a built-in store's required callbacks and
 * ctx and bring optional ones of its own). */
static inline int risk_store_same_table(const risk_store *a, const risk_store *b)
{
    return risk_store_same_calls(a, b) && a->close == b->close && a->view_user == b->view_user &&
           a->list_users == b->list_users && a->read_history == b->read_history &&
           a->compact == b->compact && a->backup == b->backup &&
           a->prefetch_users == b->prefetch_users && a->prefetch_events == b->prefetch_events;
}
/* Whether s is, callback for callback, a table this library made (the
 * memory or the journal store's): the engine calls those unguarded. */
int risk_store_is_builtin(const risk_store *s);
int risk_memstore_is_table(const risk_store *s);
/* The split commit of store s, or NULL when it has none. */
const risk_store_split *risk_store_split_of(const risk_store *s);
/* The count of committed policy changes of store s, for the built-in
 * stores (memory, journal: one memory store inside), which move it after
 * applying each; NULL for a host store. Engines sharing s compare it with
 * the count their policy cache was loaded at (lib/engine_policy.c). */
const _Atomic uint64_t *risk_store_policy_gen_of(const risk_store *s);
const _Atomic uint64_t *risk_memstore_policy_gen(const risk_store *s);
/* What a sign-in's decision table reads of a user (risk_ptab_key, the
 * level and when aging is due), and the built-in stores' read of it: one
 * line of the users map, read without a lock (lib/memstore.h; ids of 37
 * bytes and more, and a map being rewritten, under the shard's read
 * lock). RISK_OK, or RISK_ENOTFOUND (no user; no message); the journal's
 * also says why a poisoned journal cannot be read. id is len bytes and
 * NUL-terminated. Any thread, any time the store is open. */
typedef struct risk_peek {
    int64_t next_change_at;
    uint32_t key, level;
} risk_peek;
typedef struct risk_peeker {
    int (*peek)(void *ctx, const char *id, size_t len, risk_peek *out);
    /* a hint, as risk_store.prefetch_users, that fetches only what peek reads */
    void (*prefetch)(void *ctx, const char *const *ids, size_t n);
} risk_peeker;
int risk_memstore_peek(void *ctx, const char *id, size_t len, risk_peek *out);
void risk_memstore_peek_prefetch(void *ctx, const char *const *ids, size_t n);
/* The peek of store s and the ctx to give it, for the built-in stores'
 * tables (risk_store_is_builtin); NULL for any other. */
const risk_peeker *risk_store_peeker_of(const risk_store *s, void **ctx);
/* CRC32C (Castagnoli) of data, continuing from crc (0 to start); the
 * hardware instruction when available, else slicing-by-8. */
uint32_t risk_crc32c(uint32_t crc, const void *data, size_t n);
uint32_t risk_crc32c_portable(uint32_t crc, const void *data, size_t n);
/* Fault injection for tests (process-wide). fail_write: the nth journal
 * write from now writes half its bytes then fails with errno err (EIO or
 * ENOSPC); fail_sync: the nth fdatasync from now fails with EIO;
 * compact_crash: compaction stops at step 1..5 (docs/journal-format.md) as
 * if the process died there, returning RISK_EIO; the store must then only
 * be closed. 0 disarms each. */
void risk_journal_test_fail_write(int n, int err);
void risk_journal_test_fail_sync(int n);
/* The next n reservations of journal file space fail with errno err
 * (ENOSPC by default); 0 disarms. reserve_chunk: the space reserved ahead
 * of a frame (1 MiB; 0: each commit reserves exactly its frame, so every
 * commit meets the reservation). */
void risk_journal_test_fail_reserve(int n, int err);
void risk_journal_test_reserve_chunk(unsigned bytes);
void risk_journal_test_compact_crash(int step);
/* Called with the file descriptor before every journal fdatasync (NULL: none). */
typedef void (*risk_journal_sync_hook)(int fd);
void risk_journal_test_before_sync(risk_journal_sync_hook fn);
/* Called with the file descriptor between a writable open's open() and its
 * lock (NULL: none). */
void risk_journal_test_before_lock(risk_journal_sync_hook fn);
/* Group commit's windows, for tests that order threads through them (NULL:
 * none): leader(gen) runs before the leader publishes sync number gen;
 * waiter(gen, target, ticket) runs in a committing thread after it read
 * the last published sync (gen, covering frames up to target) and before
 * it picks the word to sleep on for its frame (ticket). */
typedef void (*risk_journal_leader_hook)(uint32_t gen);
typedef void (*risk_journal_waiter_hook)(uint32_t gen, uint64_t target, uint64_t ticket);
void risk_journal_test_group_hooks(risk_journal_leader_hook leader,
                                   risk_journal_waiter_hook waiter);

#endif /* LIBRISK_INTERNAL_H */
