/* The journal store (R-CC-3, R-ST-5): one append-only file of committed
 * transactions in front of an in-memory store. docs/journal-format.md is
 * the format's reference; this comment explains the moving parts.
 *
 * Live users, events, policies and meta sit in a risk_memstore (made with
 * keep_history 0); our callback table wraps its table. Writes go both to
 * the memstore txn and to a redo buffer in our txn. Commit: memstore
 * prepare, then under file_mu reserve file space for the frame (either may
 * fail: nothing changed) and append ONE frame holding the whole redo to
 * the write buffer → drop file_mu → memstore apply (cannot fail) → in full
 * mode wait for durability (group commit: the leader writes the buffer
 * with one pwrite and one fdatasync covers every frame in it). History
 * items stay
 * on disk: an index maps seq → (offset, length) of the encoded item, plus
 * a per-user list of positions in that index, and read_history preads
 * them back.
 *
 * Locks, always taken in this order: file_mu (appends, the write buffer,
 * compaction, backup; compaction also waits until every appended commit
 * is applied, so memory then holds what the file holds) → wr_mu (a
 * buffer being written) → idx_lock (the history index and fd for
 * readers) → sync_mu (the sync state, for compaction and the normal-mode
 * thread). Group-commit waiters take none of them, and the disk wait
 * holds none of them. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A typical operation (an event, its user, one history item: ~350 bytes)
 * fits the inline buffers, so a transaction is one allocation, and one
 * small enough for malloc's per-thread cache (≤ 1032 bytes in glibc): with
 * a 2 KiB one an ingest took ~1.8 times the CPU here, every free going
 * through the arena and consolidating. */
#define REDO_INLINE 832
#define PH_INLINE 4
typedef struct jtxn {
    void *mtxn;
    bytes redo; /* FRAME_HDR reserved bytes, then the payload */
    phist *ph;
    size_t n_ph, cap_ph;
    phist inl_ph[PH_INLINE];
    uint8_t inl[REDO_INLINE];
} jtxn;
_Static_assert(sizeof(jtxn) <= 1032, "jtxn: keep it in malloc's per-thread cache");

/* ---- transactions ---- */

int check_readable(jstore *js)
{
    if (atomic_load(&js->poisoned))
        return risk_err(RISK_EIO, "store: a write or sync of the journal failed, so memory may "
                                  "hold commits the disk does not: close and reopen it");
    return RISK_OK;
}

int check_writable(jstore *js)
{
    if (js->read_only)
        return risk_err(RISK_EREADONLY, "store: the journal is open read-only");
    return check_readable(js);
}

static void txn_free(jtxn *t)
{
    if (t->ph != t->inl_ph)
        risk_free(t->ph);
    if (t->redo.p != t->inl)
        risk_free(t->redo.p);
    risk_free(t);
}

static int j_begin(void *ctx, const char *user_id, void **txn)
{
    jstore *js = ctx;
    int rc = check_readable(js);
    if (rc != RISK_OK)
        return rc;
    jtxn *t = risk_malloc(sizeof *t); /* not calloc: the buffers need no zeroing */
    if (t == NULL)
        return risk_err(RISK_ENOMEM, "txn: out of memory");
    t->mtxn = NULL;
    t->redo = (bytes){t->inl, FRAME_HDR, REDO_INLINE, t->inl};
    t->ph = t->inl_ph, t->n_ph = 0, t->cap_ph = PH_INLINE;
    rc = js->mt.begin(js->mt.ctx, user_id, &t->mtxn);
    if (rc != RISK_OK) {
        risk_free(t);
        return rc;
    }
    *txn = t;
    return RISK_OK;
}

static void j_rollback(void *ctx, void *txn)
{
    jstore *js = ctx;
    jtxn *t = txn;
    js->mt.rollback(js->mt.ctx, t->mtxn);
    txn_free(t);
}


/* Log first (may fail with nothing changed), then forward; undo the log if
 * the memstore refuses. */
static int logged_put(void *ctx, void *txn, uint8_t tag, enc_fn enc, const void *rec)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t mark = t->redo.len;
    int rc = check_writable(js);
    if (rc == RISK_OK)
        rc = put_op(&t->redo, tag, enc, rec, NULL);
    if (rc == RISK_OK && tag == OP_USER)
        rc = js->mt.put_user(js->mt.ctx, t->mtxn, rec);
    else if (rc == RISK_OK && tag == OP_EVENT)
        rc = js->mt.put_event(js->mt.ctx, t->mtxn, rec);
    else if (rc == RISK_OK)
        rc = js->mt.put_policy(js->mt.ctx, t->mtxn, rec);
    if (rc != RISK_OK)
        t->redo.len = mark;
    return rc;
}

static int j_put_user(void *ctx, void *txn, const risk_user *u)
{
    return logged_put(ctx, txn, OP_USER, enc_user, u);
}
static int j_put_event(void *ctx, void *txn, const risk_event *e)
{
    return logged_put(ctx, txn, OP_EVENT, enc_event, e);
}
static int j_put_policy(void *ctx, void *txn, const risk_policy *p)
{
    return logged_put(ctx, txn, OP_POLICY, enc_policy, p);
}

static int j_remove_policy(void *ctx, void *txn, const char *name)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t mark = t->redo.len;
    uint8_t *dst = NULL;
    int rc = check_writable(js);
    if (rc == RISK_OK && name == NULL)
        rc = risk_err(RISK_EINVAL, "name: NULL");
    if (rc == RISK_OK && (rc = bytes_op(&t->redo, OP_POLICY_REMOVE, strlen(name), &dst)) == 0)
        memcpy(dst, name, strlen(name));
    if (rc == RISK_OK)
        rc = js->mt.remove_policy(js->mt.ctx, t->mtxn, name);
    if (rc != RISK_OK)
        t->redo.len = mark;
    return rc;
}

static int j_put_meta(void *ctx, void *txn, const char *key, const uint8_t *buf, size_t len)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t mark = t->redo.len, klen = key ? strlen(key) : 0;
    int rc = check_writable(js);
    if (rc == RISK_OK && (klen == 0 || klen > RISK_ID_MAX || len > 256 || (len && !buf)))
        rc = risk_err(RISK_EINVAL, "key: NULL, empty or too long, or value over 256 bytes");
    if (rc == RISK_OK)
        rc = put_meta_op(&t->redo, key, buf, len);
    if (rc == RISK_OK)
        rc = js->mt.put_meta(js->mt.ctx, t->mtxn, key, buf, len);
    if (rc != RISK_OK)
        t->redo.len = mark;
    return rc;
}

static int j_reserve_seq(void *ctx, void *txn, uint64_t *seq)
{
    jstore *js = ctx;
    int rc = check_writable(js);
    return rc ? rc : js->mt.reserve_seq(js->mt.ctx, ((jtxn *)txn)->mtxn, seq);
}

static int j_append_history(void *ctx, void *txn, const risk_history *item)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t mark = t->redo.len, at = 0;
    int rc = check_writable(js);
    if (rc == RISK_OK && item == NULL)
        rc = risk_err(RISK_EINVAL, "item: NULL");
    if (rc == RISK_OK && t->n_ph > 0 && item->seq <= t->ph[t->n_ph - 1].seq)
        rc = risk_err(RISK_EINVAL, "item: seq not increasing within the transaction");
    if (rc == RISK_OK && t->n_ph == t->cap_ph) {
        phist *ph = risk_malloc(2 * t->cap_ph * sizeof *ph);
        if (ph == NULL)
            rc = risk_err(RISK_ENOMEM, "txn: out of memory");
        else {
            memcpy(ph, t->ph, t->n_ph * sizeof *ph);
            if (t->ph != t->inl_ph)
                risk_free(t->ph);
            t->ph = ph, t->cap_ph *= 2;
        }
    }
    if (rc == RISK_OK)
        rc = put_op(&t->redo, OP_HISTORY, enc_history, item, &at);
    if (rc == RISK_OK)
        rc = js->mt.append_history(js->mt.ctx, t->mtxn, item);
    if (rc != RISK_OK) {
        t->redo.len = mark;
        return rc;
    }
    /* the index needs the user id: found in the bytes just encoded, where
     * it lives as long as the txn (offsets: the buffer may still move) */
    uint64_t seq;
    const uint8_t *user = NULL;
    size_t ulen = 0, len = t->redo.len - at;
    hist_peek(t->redo.p + at, len, 0, &seq, &user, &ulen);
    size_t uat = user ? (size_t)(user - t->redo.p) : 0;
    t->ph[t->n_ph++] = (phist){item->seq, (uint32_t)at, (uint32_t)uat, (uint32_t)len,
                               (uint32_t)ulen, 0};
    if (ulen > 0)
        idx_prefetch_user(js, user, ulen);
    return RISK_OK;
}

/* ---- durability ---- */

/* Group commit (full mode). A commit's frame goes to the write buffer
 * under file_mu and is applied in memory; the commit then waits (with no
 * lock held) until a sync covers its frame. The first waiter to find no
 * leader leads: it writes the whole buffer with one pwrite, runs one
 * fdatasync, and publishes `synced`. While it syncs, later commits gather
 * in the buffer for the next round, which it runs too (up to LEAD_ROUNDS
 * in a row, then it hands the lead to a waiter), so the disk always has a
 * sync to do and one pwrite and one fdatasync serve a whole group.
 *
 * Sleeping is what costs here: on the 2-core machine a futex sleep and
 * wake-up cost several microseconds, more than a commit's work. So the
 * waiters of sync g all sleep on one word, gword[g & 1], and the end of
 * sync g changes that word and wakes them with one call; the waiters of
 * the next sync sleep on the other word and are not disturbed. A woken
 * waiter checks `synced` without taking sync_mu. (Where there is no futex
 * the two words have condition variables.) */

#if defined(__linux__)
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#define HAVE_FUTEX 1
static void futex_wait(atomic_uint *w, unsigned v)
{
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}
static void futex_wake(atomic_uint *w, int n)
{
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
#else
#define HAVE_FUTEX 0
#endif

static void fail_journal(jstore *js, uint64_t at);

static _Atomic(risk_journal_leader_hook) hook_leader;
static _Atomic(risk_journal_waiter_hook) hook_waiter;
void risk_journal_test_group_hooks(risk_journal_leader_hook leader,
                                   risk_journal_waiter_hook waiter)
{
    atomic_store(&hook_leader, leader);
    atomic_store(&hook_waiter, waiter);
}

/* Change word p and wake its sleepers (all, or one to take the lead).
 * The word changes first, so a waiter about to sleep on its old value does
 * not sleep. Called without sync_mu. */
static void wake_word(jstore *js, unsigned p, int all)
{
#if HAVE_FUTEX
    atomic_fetch_add(&js->gword[p], 1);
    futex_wake(&js->gword[p], all ? INT_MAX : 1);
#else
    pthread_mutex_lock(&js->sync_mu);
    atomic_fetch_add(&js->gword[p], 1);
    if (all)
        pthread_cond_broadcast(&js->gcv[p]);
    else
        pthread_cond_signal(&js->gcv[p]);
    pthread_mutex_unlock(&js->sync_mu);
#endif
}

/* Sleep while word p still holds v (or return at once). */
static void sleep_word(jstore *js, unsigned p, unsigned v)
{
#if HAVE_FUTEX
    futex_wait(&js->gword[p], v);
#else
    pthread_mutex_lock(&js->sync_mu);
    while (atomic_load(&js->gword[p]) == v)
        pthread_cond_wait(&js->gcv[p], &js->sync_mu);
    pthread_mutex_unlock(&js->sync_mu);
#endif
}

void wake_all_waiters(jstore *js)
{
    wake_word(js, 0, 1);
    wake_word(js, 1, 1);
}

/* An fdatasync of the journal failed (its fd still the one synced): the
 * journal is poisoned and cut back to the last good sync. */
static void sync_failed(jstore *js)
{
    pthread_mutex_lock(&js->wr_mu);
    fail_journal(js, UINT64_MAX);
    pthread_mutex_unlock(&js->wr_mu);
}

/* The end of a sync covering the frames up to target, which end at file
 * offset off (sync_mu held; ok: it succeeded). Published as durable
 * unless a write failed meanwhile: the failure may have cut the file
 * below target (lead explains the order). Whoever waits on sync_cv
 * looks again. Returns whether the frames are durable. */
static int sync_ended(jstore *js, int ok, uint64_t target, uint64_t off)
{
    ok = ok && !atomic_load(&js->poisoned);
    if (ok && target > atomic_load(&js->synced)) {
        atomic_store(&js->synced, target);
        js->sync_off = off;
    }
    pthread_cond_broadcast(&js->sync_cv);
    return ok;
}

/* Normal mode's thread, with sync_mu held and no sync running: one
 * fdatasync covering the frames up to target, which end at file offset
 * off. Returns with sync_mu held. */
static void sync_now(jstore *js, uint64_t target, uint64_t off)
{
    int fd = js->fd;
    js->syncing = 1;
    pthread_mutex_unlock(&js->sync_mu);
    int rc = datasync(fd);
    if (rc != 0) /* still syncing: fd stays */
        sync_failed(js);
    pthread_mutex_lock(&js->sync_mu);
    js->syncing = 0;
    (void)sync_ended(js, rc == 0, target, off);
}

/* Lead group-commit syncs (this thread set `leading`): each round writes
 * the buffer, publishes the sync's number and target, syncs, publishes
 * `synced` and wakes that sync's waiters. */
static void lead(jstore *js)
{
    for (int round = 1;; round++) {
        /* Take the buffer under file_mu (committers append to the spare
         * meanwhile) and write it outside, holding wr_mu so that buffers
         * reach the file in order and readers of the file wait for it. */
        pthread_mutex_lock(&js->file_mu);
        uint8_t *buf = NULL;
        size_t n = js->wlen;
        uint64_t at = js->end - js->wlen, frames = js->wframes;
        if (n > 0 && !atomic_load(&js->poisoned)) {
            buf = js->wbuf;
            js->wbuf = js->wspare, js->wspare = NULL;
            js->wlen = 0, js->wframes = 0;
        }
        int fd = js->fd;
        pthread_mutex_lock(&js->wr_mu);
        pthread_mutex_lock(&js->sync_mu); /* compaction waits for !syncing to swap fd */
        js->syncing = 1;
        pthread_mutex_unlock(&js->sync_mu);
        pthread_mutex_unlock(&js->file_mu);
        if (buf != NULL) {
            if (pwrite_all(fd, buf, n, at) == 0) {
                js->flushed_off = at + n;
                atomic_fetch_add(&js->flushed, frames);
            } else
                fail_journal(js, at);
            js->wspare = buf; /* under wr_mu: the next swap waits for it */
        }
        /* what the sync covers: every frame written so far, up to off */
        uint64_t target = atomic_load(&js->flushed), off = js->flushed_off;
        pthread_mutex_unlock(&js->wr_mu);
        uint32_t g = atomic_load(&js->sync_gen) + 1;
        risk_journal_leader_hook lh = atomic_load_explicit(&hook_leader, memory_order_relaxed);
        if (lh != NULL)
            lh(g);
        atomic_fetch_add(&js->pub_seq, 1);
        atomic_store(&js->sync_target, target);
        atomic_store(&js->sync_gen, g);
        atomic_fetch_add(&js->pub_seq, 1);
        int ok = !atomic_load(&js->poisoned) && datasync(fd) == 0;
        if (!ok && !atomic_load(&js->poisoned)) /* still syncing: fd stays */
            sync_failed(js);
        pthread_mutex_lock(&js->sync_mu);
        js->syncing = 0;
        /* A write that failed during the sync (another thread's flush of
         * the next buffer) cut the file back to the last sync's end, maybe
         * below this sync's frames: they are not durable after all. The
         * failure sets poisoned before it reads sync_off under sync_mu, so
         * either it is seen here, or it reads this sync's end and keeps
         * these frames. */
        ok = sync_ended(js, ok, target, off);
        pthread_mutex_unlock(&js->sync_mu);
        if (!ok) {
            atomic_store(&js->leading, 0);
            wake_all_waiters(js);
            return;
        }
        /* Wake one waiter of this sync, which wakes the others (relay),
         * and go on to the next sync at once: a leader that woke them all
         * itself would then wait behind them for a core, with the disk
         * idle (measured: 855 syncs/s with 64 committers on a disk good
         * for 5,000). The word changes before the relay is offered: a
         * thread that takes the relay (perhaps one back late from an
         * earlier sleep) wakes every sleeper, and any waiter still on its
         * way to sleep finds the word changed. */
#if HAVE_FUTEX
        atomic_fetch_add(&js->gword[g & 1], 1);
        atomic_store(&js->relay[g & 1], 1);
        futex_wake(&js->gword[g & 1], 1);
#else
        wake_word(js, g & 1, 1);
#endif
        if (atomic_load(&js->appended) > atomic_load(&js->synced)) {
            if (round < LEAD_ROUNDS)
                continue;
            /* let a waiter of the next sync take over, so that this
             * commit returns; one that has not slept yet leads itself */
            atomic_store(&js->leading, 0);
            wake_word(js, (g + 1) & 1, 0);
            return;
        }
        /* Nothing left: give up the lead. A commit appended meanwhile
         * either sees leading == 0 and leads, or is seen here (both
         * sides store, then load: sequentially consistent). */
        atomic_store(&js->leading, 0);
        int expect = 0;
        if (atomic_load(&js->appended) <= atomic_load(&js->synced) ||
            !atomic_compare_exchange_strong(&js->leading, &expect, 1))
            return;
    }
}

/* Group commit: return once a sync that started after frame `my` was
 * written has finished (or fail if a write or sync failed). No lock: the
 * sync that covers `my` is the published one if its target reaches my,
 * else the next; its waiters sleep on its word. Whatever wakes a waiter,
 * it looks again. */
static int wait_durable(jstore *js, uint64_t my)
{
    for (;;) {
        if (atomic_load(&js->synced) >= my)
            return RISK_OK;
        if (atomic_load(&js->poisoned))
            return risk_err(RISK_EIO, "journal: a write or sync failed; this commit may not "
                                      "be durable");
        int expect = 0;
        if (atomic_load(&js->leading) == 0 &&
            atomic_compare_exchange_strong(&js->leading, &expect, 1)) {
            lead(js);
            continue;
        }
        /* The last published sync and its target, read together (pub_seq
         * even and unchanged), then the word of the sync that covers my:
         * that one if its target reaches my, else the next, not published
         * yet. The word is read before pub_seq is checked again: if no
         * sync was published meanwhile, the end of the next one changes
         * the word after this read and the sleep below sees it; the end
         * of this one, if it came first, published `synced` first. */
        uint32_t s = atomic_load(&js->pub_seq);
        uint32_t g = atomic_load(&js->sync_gen);
        uint64_t t = atomic_load(&js->sync_target);
        risk_journal_waiter_hook wh = atomic_load_explicit(&hook_waiter, memory_order_relaxed);
        if (wh != NULL)
            wh(g, t, my);
        unsigned p = (t >= my ? g : g + 1) & 1, v = atomic_load(&js->gword[p]);
        if (s & 1) { /* being published (a few stores; the leader may be preempted) */
            sched_yield();
            continue;
        }
        if (atomic_load(&js->pub_seq) != s)
            continue; /* a sync was published meanwhile */
        if (atomic_load(&js->synced) >= my || atomic_load(&js->poisoned) ||
            atomic_load(&js->leading) == 0)
            continue;
        sleep_word(js, p, v);
#if HAVE_FUTEX
        /* the first one woken at the end of a sync wakes the others */
        if (atomic_load(&js->relay[p]) && atomic_exchange(&js->relay[p], 0))
            futex_wake(&js->gword[p], INT_MAX);
#endif
    }
}

/* Durability normal (and off): every interval, write the buffered frames;
 * in normal mode then sync if something was written. */
static void *sync_thread(void *arg)
{
    jstore *js = arg;
    pthread_mutex_lock(&js->sync_mu);
    while (!js->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += js->interval_ms / 1000;
        ts.tv_nsec += (long)(js->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&js->sync_cv, &js->sync_mu, &ts);
        if (js->stop)
            break;
        pthread_mutex_unlock(&js->sync_mu); /* lock order: file_mu before sync_mu */
        pthread_mutex_lock(&js->file_mu);
        if (js->wlen > 0 && !atomic_load(&js->poisoned))
            wbuf_flush(js);
        pthread_mutex_lock(&js->wr_mu);
        uint64_t target = atomic_load(&js->flushed), off = js->flushed_off;
        pthread_mutex_unlock(&js->wr_mu);
        pthread_mutex_unlock(&js->file_mu);
        pthread_mutex_lock(&js->sync_mu);
        if (js->durability == RISK_DURABILITY_NORMAL && !js->stop && !js->syncing &&
            target > atomic_load(&js->synced) && !atomic_load(&js->poisoned))
            sync_now(js, target, off);
    }
    pthread_mutex_unlock(&js->sync_mu);
    return NULL;
}

/* ---- appending frames ---- */

/* A write or a sync failed: commits the journal applied in memory (and,
 * but in full mode, acknowledged) may not be on disk, and after a failed
 * fdatasync the kernel may have dropped the dirty pages and cleared the
 * error, so a retry could report success over lost data (the PostgreSQL
 * "fsyncgate" lesson). The journal is poisoned: it refuses reads and
 * writes until it is closed and reopened (memory may show commits the disk
 * has not). The file is cut back to the end of the last good sync (in off
 * mode, which never syncs, to the start of the failed write: at), so a
 * reopen shows exactly the commits that sync covered; best effort, the
 * disk is failing. wr_mu held (no write in flight), fd stable (a sync in
 * progress, or file_mu held). */
static void fail_journal(jstore *js, uint64_t at)
{
    atomic_store(&js->poisoned, 1);
    pthread_mutex_lock(&js->sync_mu);
    uint64_t keep = js->durability == RISK_DURABILITY_OFF ? at : js->sync_off;
    pthread_mutex_unlock(&js->sync_mu);
    if (keep != UINT64_MAX && ftruncate(js->fd, (off_t)keep) != 0) {
        /* nothing more to do: poisoned either way */
    }
}

/* Write the buffered frames at end - wlen (file_mu held). With the space
 * reserved (reserve) only an I/O error fails it. */

int wbuf_flush(jstore *js)
{
    pthread_mutex_lock(&js->wr_mu); /* a leader's write in flight ends first */
    int rc = RISK_OK;
    if (js->wlen > 0 && !atomic_load(&js->poisoned)) {
        uint64_t at = js->end - js->wlen;
        if (pwrite_all(js->fd, js->wbuf, js->wlen, at) != 0) {
            int e = errno;
            fail_journal(js, at);
            rc = risk_err(RISK_EIO, "journal: write of buffered commits failed: %s",
                          strerror(e));
        } else {
            js->flushed_off = js->end;
            atomic_fetch_add(&js->flushed, js->wframes);
            js->wlen = 0;
            js->wframes = 0;
        }
    }
    pthread_mutex_unlock(&js->wr_mu);
    return rc;
}

/* Backup (file_mu held, the buffer flushed): make every frame in the
 * file durable before memory is copied. Memory holds commits applied
 * before their sync; if that sync then failed, they would be failed
 * commits, cut from the journal, yet in the backup. On success the sync
 * counts as the commits' own (their waiters return), as a leader's does. */
int sync_written(jstore *js, int even_off)
{
    if (js->durability == RISK_DURABILITY_OFF && !even_off)
        return RISK_OK; /* nothing is synced, nothing is cut back by a sync */
    pthread_mutex_lock(&js->wr_mu);
    uint64_t target = atomic_load(&js->flushed), off = js->flushed_off;
    pthread_mutex_unlock(&js->wr_mu);
    if (target <= atomic_load(&js->synced))
        return RISK_OK;
    if (datasync(js->fd) != 0) {
        int e = errno;
        sync_failed(js);
        wake_all_waiters(js); /* they fail now */
        return risk_err(RISK_EIO, "journal: fdatasync failed: %s", strerror(e));
    }
    pthread_mutex_lock(&js->sync_mu);
    (void)sync_ended(js, 1, target, off);
    pthread_mutex_unlock(&js->sync_mu);
    /* Group commit's waiters sleep on their sync's word, which only a
     * leader's round changes: a waiter this sync covered may have no
     * leader left to wake it (the last one stops once appended <= synced) */
    wake_all_waiters(js);
    return RISK_OK;
}

/* Make sure the file has space for n more bytes at the end (file_mu
 * held), so that writing the frame later cannot fail for want of space: a
 * full disk then fails this commit cleanly instead of poisoning the
 * journal. Space is taken RESV_CHUNK at a time (one syscall per MiB), or
 * just what is needed when the disk cannot give a chunk. */
static int reserve(jstore *js, size_t n)
{
    uint64_t need = js->end + n;
    if (!js->can_reserve || need <= js->resv_end)
        return RISK_OK;
    uint64_t want = need + (uint64_t)atomic_load(&journal_resv_chunk);
    if (reserve_space(js->fd, js->resv_end, want - js->resv_end) == 0) {
        js->resv_end = want;
        return RISK_OK;
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
        js->can_reserve = 0; /* writes may then fail, and poison */
        return RISK_OK;
    }
    if ((errno == ENOSPC || errno == EDQUOT) &&
        reserve_space(js->fd, js->resv_end, need - js->resv_end) == 0) {
        js->resv_end = need;
        return RISK_OK;
    }
    return risk_err(RISK_EIO, "journal: no room for the commit: %s", strerror(errno));
}

/* Put a sealed frame at the end (file_mu held), space reserved: into the
 * write buffer (written by the group-commit leader in full mode, when
 * full, by the background thread every sync_interval_ms, and before
 * compaction, backup, history reads and close). A frame larger than the
 * buffer goes straight to the file; a failure then is cut back and
 * changes nothing. */
static int append_frame(jstore *js, const uint8_t *p, size_t n)
{
    if (js->wlen + n > WBUF_CAP) {
        int rc = wbuf_flush(js);
        if (rc != RISK_OK)
            return rc;
    }
    if (n <= WBUF_CAP) {
        memcpy(js->wbuf + js->wlen, p, n);
        js->wlen += n;
        js->wframes++;
    } else { /* the buffer is empty: written in order under wr_mu too */
        pthread_mutex_lock(&js->wr_mu);
        int ok = pwrite_all(js->fd, p, n, js->end) == 0, rc = RISK_OK;
        if (ok) {
            js->flushed_off = js->end + n;
            atomic_fetch_add(&js->flushed, 1);
        } else {
            rc = risk_err(RISK_EIO, "journal: write failed: %s", strerror(errno));
            if (ftruncate(js->fd, (off_t)js->end) != 0)
                atomic_store(&js->poisoned, 1); /* a partial frame may remain */
            js->resv_end = js->end; /* the cut gave back the space reserved past it */
        }
        pthread_mutex_unlock(&js->wr_mu);
        if (!ok)
            return rc;
    }
    js->end += n;
    return RISK_OK;
}

/* A commit appended under file_mu applies to memory after it: compaction
 * (which needs memory and file to hold the same commits) waits for those
 * in between. */
static void applied(jstore *js)
{
    if (atomic_fetch_sub(&js->inflight, 1) == 1 && atomic_load(&js->inflight_waiter)) {
        pthread_mutex_lock(&js->sync_mu);
        pthread_cond_broadcast(&js->sync_cv);
        pthread_mutex_unlock(&js->sync_mu);
    }
}

void wait_applied(jstore *js)
{
    atomic_store(&js->inflight_waiter, 1);
    pthread_mutex_lock(&js->sync_mu);
    while (atomic_load(&js->inflight) > 0)
        pthread_cond_wait(&js->sync_cv, &js->sync_mu);
    pthread_mutex_unlock(&js->sync_mu);
    atomic_store(&js->inflight_waiter, 0);
}

/* Commit txn: memstore prepare (claims, allocations: may fail, nothing
 * written), then under file_mu the frame appended (or written) and
 * indexed, then memstore apply. Prepare and apply take the memstore's
 * write lock, which readers share; doing them outside file_mu keeps a
 * commit waiting for readers from holding up every other commit's append.
 * Two transactions that write the same record cannot both be prepared
 * (RISK_ECONFLICT, and the engine retries), so the order of frames in the
 * file is the order in which memory changed wherever the order matters.
 * In full mode *ticket is then the frame a sync must cover before the
 * commit is durable (0: nothing to wait for). */
static int j_commit_nowait(void *ctx, void *txn, uint64_t *ticket)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t payload = t->redo.len - FRAME_HDR;
    *ticket = 0;
    if (payload == 0) { /* nothing logged: a read-only transaction */
        int rc = js->mt.commit(js->mt.ctx, t->mtxn);
        txn_free(t);
        return rc;
    }
    uint64_t my = 0;
    int rc = check_writable(js);
    if (rc == RISK_OK && payload > FRAME_MAX)
        rc = risk_err(RISK_EINVAL, "txn: %zu bytes, more than a journal frame holds (%u); "
                      "an operation closing this many events at once cannot be written "
                      "(docs/decisions.md, \"One transaction, one journal frame\")",
                      payload, FRAME_MAX);
    if (rc == RISK_OK)
        rc = risk_memstore_prepare(js->ms, t->mtxn);
    if (rc == RISK_OK && t->n_ph > 0)
        idx_find_users(js, t->redo.p, t->ph, t->n_ph);
    if (rc == RISK_OK) {
        pthread_mutex_lock(&js->file_mu);
        rc = check_writable(js);
        for (size_t i = 0; rc == RISK_OK && i < t->n_ph; i++)
            if (idx_has(js, t->ph[i].seq))
                rc = risk_err(RISK_EINVAL, "txn: history seq %" PRIu64 " already committed",
                              t->ph[i].seq);
        if (rc == RISK_OK && js->end + t->redo.len > HX_OFF_MAX)
            rc = risk_err(RISK_EINVAL, "journal: the file reached 16 TiB");
        if (rc == RISK_OK)
            rc = reserve(js, t->redo.len);
        /* file_mu keeps other index writers out, so the room is checked
         * without idx_lock; readers are held off only if it must grow */
        if (rc == RISK_OK && t->n_ph > 0 && !idx_has_room(js, t->ph, t->n_ph)) {
            pthread_rwlock_wrlock(&js->idx_lock);
            rc = idx_reserve(js, t->redo.p, t->ph, t->n_ph);
            pthread_rwlock_unlock(&js->idx_lock);
        }
        uint64_t start = js->end;
        if (rc == RISK_OK) {
            seal_frame(t->redo.p, payload, js->next_txn, js->salt);
            rc = append_frame(js, t->redo.p, t->redo.len);
        }
        if (rc == RISK_OK) {
            if (t->n_ph > 0) {
                pthread_rwlock_wrlock(&js->idx_lock);
                for (size_t i = 0; i < t->n_ph; i++)
                    idx_add(js, t->ph[i].seq, start + t->ph[i].at, t->ph[i].len, t->ph[i].uix);
                pthread_rwlock_unlock(&js->idx_lock);
            }
            js->next_txn++;
            my = atomic_fetch_add(&js->appended, 1) + 1;
            atomic_fetch_add(&js->inflight, 1);
        }
        pthread_mutex_unlock(&js->file_mu);
    }
    if (rc == RISK_OK) {
        risk_memstore_apply(js->ms, t->mtxn);
        applied(js);
        if (js->durability == RISK_DURABILITY_FULL)
            *ticket = my;
    } else /* not applied: prepared or not, it changes nothing */
        js->mt.rollback(js->mt.ctx, t->mtxn);
    txn_free(t);
    return rc;
}

static int j_wait_durable(void *ctx, uint64_t ticket)
{
    return ticket ? wait_durable(ctx, ticket) : RISK_OK;
}

int flush_and_sync(jstore *js, int even_off, int (*check)(jstore *))
{
    int rc = wbuf_flush(js);
    if (rc == RISK_OK) /* nothing a failing sync may still take back */
        rc = sync_written(js, even_off);
    if (rc == RISK_OK) /* nor a write or sync of another thread that failed meanwhile */
        rc = check(js);
    return rc;
}

/* risk_engine_sync: what commits have appended is written and synced now,
 * whatever the durability mode. */
static int j_sync(void *ctx)
{
    jstore *js = ctx;
    int rc = check_writable(js);
    if (rc != RISK_OK)
        return rc;
    pthread_mutex_lock(&js->file_mu);
    rc = flush_and_sync(js, 1, check_writable);
    pthread_mutex_unlock(&js->file_mu);
    return rc;
}

static int j_commit(void *ctx, void *txn)
{
    uint64_t ticket;
    int rc = j_commit_nowait(ctx, txn, &ticket);
    return rc == RISK_OK ? j_wait_durable(ctx, ticket) : rc;
}

static const risk_store journal_table; /* defined with the callbacks, below */

const risk_store_split *risk_store_split_of(const risk_store *s)
{
    static const risk_store_split journal_split = { j_commit_nowait, j_wait_durable, j_sync };
    return s->ctx != NULL && risk_store_same_calls(s, &journal_table) ? &journal_split : NULL;
}

int risk_store_is_builtin(const risk_store *s)
{
    return (s->ctx != NULL && risk_store_same_table(s, &journal_table)) ||
           risk_memstore_is_table(s);
}

const _Atomic uint64_t *risk_store_policy_gen_of(const risk_store *s)
{
    int journal = s->ctx != NULL && risk_store_same_calls(s, &journal_table);
    return risk_memstore_policy_gen(journal ? &((const jstore *)s->ctx)->mt : s);
}

static int j_peek(void *ctx, const char *id, size_t len, risk_peek *out);
static void j_peek_prefetch(void *ctx, const char *const *ids, size_t n);

const risk_peeker *risk_store_peeker_of(const risk_store *s, void **ctx)
{
    static const risk_peeker memory = { risk_memstore_peek, risk_memstore_peek_prefetch };
    static const risk_peeker journal = { j_peek, j_peek_prefetch };
    *ctx = s->ctx;
    if (s->ctx != NULL && risk_store_same_table(s, &journal_table))
        return &journal;
    return risk_memstore_is_table(s) ? &memory : NULL;
}

/* ---- forwarded reads ---- */

static int j_get_user(void *ctx, void *txn, const char *id, risk_user **out)
{
    jstore *js = ctx;
    return js->mt.get_user(js->mt.ctx, ((jtxn *)txn)->mtxn, id, out);
}
static int j_get_event(void *ctx, void *txn, const char *id, risk_event **out)
{
    jstore *js = ctx;
    return js->mt.get_event(js->mt.ctx, ((jtxn *)txn)->mtxn, id, out);
}
static int j_user_events(void *ctx, void *txn, const char *user_id, risk_event_visit_fn fn,
                         void *arg)
{
    jstore *js = ctx;
    return js->mt.user_events(js->mt.ctx, ((jtxn *)txn)->mtxn, user_id, fn, arg);
}
static int j_list_policies(void *ctx, void *txn, risk_policy_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    return js->mt.list_policies(js->mt.ctx, ((jtxn *)txn)->mtxn, fn, arg);
}
static int j_get_meta(void *ctx, void *txn, const char *key, uint8_t *buf, size_t cap,
                      size_t *len)
{
    jstore *js = ctx;
    return js->mt.get_meta(js->mt.ctx, ((jtxn *)txn)->mtxn, key, buf, cap, len);
}
static int j_view_user(void *ctx, const char *id, risk_user_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    int rc = check_readable(js);
    if (rc != RISK_OK)
        return rc;
    if (js->mt.view_user == NULL)
        return risk_err(RISK_EUNSUPPORTED, "store: no view_user");
    return js->mt.view_user(js->mt.ctx, id, fn, arg);
}
static int j_peek(void *ctx, const char *id, size_t len, risk_peek *out)
{
    jstore *js = ctx;
    int rc = check_readable(js);
    return rc != RISK_OK ? rc : risk_memstore_peek(js->mt.ctx, id, len, out);
}
static void j_peek_prefetch(void *ctx, const char *const *ids, size_t n)
{
    risk_memstore_peek_prefetch(((jstore *)ctx)->mt.ctx, ids, n);
}
static void j_prefetch_users(void *ctx, const char *const *ids, size_t n)
{
    jstore *js = ctx;
    if (js->mt.prefetch_users != NULL) /* a hint: a poisoned journal's view_user refuses */
        js->mt.prefetch_users(js->mt.ctx, ids, n);
}
static void j_prefetch_events(void *ctx, const char *const *ids, size_t n)
{
    jstore *js = ctx;
    if (js->mt.prefetch_events != NULL)
        js->mt.prefetch_events(js->mt.ctx, ids, n);
}
static int j_list_users(void *ctx, risk_level min_level, risk_user_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    int rc = check_readable(js);
    if (rc != RISK_OK)
        return rc;
    if (js->mt.list_users == NULL)
        return risk_err(RISK_EUNSUPPORTED, "store: no list_users");
    return js->mt.list_users(js->mt.ctx, min_level, fn, arg);
}

/* ---- history read back from the file ---- */

/* Visit items in seq order, HIST_BATCH at a time: under the read lock the
 * raw bytes are copied out (compaction may swap the file), then they are
 * decoded and visited with no lock held (fn may call back into the store).
 * Only seqs below the memstore's watermark show: every smaller reserved seq
 * is committed or rolled back, so a feed never skips an item that a slower
 * commit adds later (store.h). */
static int j_read_history(void *ctx, const char *user_id, uint64_t since_seq,
                          risk_history_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    if (fn == NULL)
        return risk_err(RISK_EINVAL, "fn: NULL");
    int rc = check_readable(js);
    if (rc != RISK_OK)
        return rc;
    bytes raw = {0};
    size_t lens[HIST_BATCH];
    int more = 1, started = 0;
    uint64_t next = since_seq ? since_seq : 1; /* all: the next seq to look at */
    uint32_t cur = 0;                          /* one user: the next item in the list */
    while (rc == RISK_OK && more) {
        size_t k = 0;
        raw.len = 0;
        /* buffered frames go to the file first; holding file_mu until the
         * index is read-locked keeps later commits out of this batch */
        pthread_mutex_lock(&js->file_mu);
        rc = wbuf_flush(js);
        pthread_rwlock_rdlock(&js->idx_lock);
        pthread_mutex_unlock(&js->file_mu);
        uint64_t wm = risk_memstore_visible_seq(js->ms);
        if (user_id != NULL && !started) {
            const huser *u = huser_find(js, (const uint8_t *)user_id, strlen(user_id));
            cur = u ? u->head : 0;
            while (cur != 0 && cur < since_seq)
                cur = idx_next(js, cur);
        }
        started = 1;
        for (; rc == RISK_OK && k < HIST_BATCH;) {
            uint64_t seq = user_id ? cur : next, off;
            uint32_t len;
            if (seq == 0 || seq >= wm || (!user_id && seq > idx_max_seq(js)))
                break;
            if (user_id)
                cur = idx_next(js, cur);
            else
                next++;
            if (!idx_get(js, seq, &off, &len))
                continue; /* a rolled-back seq */
            uint8_t *dst = NULL;
            if ((rc = bytes_op(&raw, 0, len, &dst)) != RISK_OK)
                break;
            ssize_t got = pread(js->fd, dst, len, (off_t)off);
            if (got != (ssize_t)len) {
                rc = risk_err(RISK_EIO, "journal: cannot read history at byte offset %" PRIu64,
                              off);
                break;
            }
            lens[k++] = len;
        }
        pthread_rwlock_unlock(&js->idx_lock);
        more = k == HIST_BATCH;
        for (size_t i = 0, at = 0; rc == RISK_OK && i < k; at += 5 + lens[i], i++) {
            risk_history *h = NULL;
            rc = risk_history_decode(&h, raw.p + at + 5, lens[i]);
            if (rc == RISK_OK)
                rc = fn(h, arg);
            risk_history_free(h);
        }
    }
    risk_free(raw.p);
    return rc;
}
/* ---- open and close ---- */

static void jstore_free(jstore *js)
{
    if (js->has_thread) {
        pthread_mutex_lock(&js->sync_mu);
        js->stop = 1;
        pthread_cond_broadcast(&js->sync_cv);
        pthread_mutex_unlock(&js->sync_mu);
        pthread_join(js->thread, NULL);
    }
    if (js->fd >= 0 && js->wlen > 0 && !atomic_load(&js->poisoned))
        wbuf_flush(js); /* no other thread runs now */
    if (js->fd >= 0) {
        if (js->resv_end > js->end)
            release_space(js->fd, js->end, js->resv_end - js->end);
        if (!js->read_only && js->durability != RISK_DURABILITY_OFF &&
            !atomic_load(&js->poisoned) && atomic_load(&js->flushed) > atomic_load(&js->synced))
            datasync(js->fd);
        close(js->fd); /* releases the OFD lock */
    }
    idx_free(js);
    risk_free(js->wbuf);
    risk_free(js->wspare);
    if (js->ms != NULL)
        risk_memstore_free(js->ms);
    pthread_rwlock_destroy(&js->idx_lock);
    pthread_cond_destroy(&js->gcv[0]);
    pthread_cond_destroy(&js->gcv[1]);
    pthread_cond_destroy(&js->sync_cv);
    pthread_mutex_destroy(&js->sync_mu);
    pthread_mutex_destroy(&js->wr_mu);
    pthread_mutex_destroy(&js->file_mu);
    risk_free(js->path);
    risk_free(js);
}

static void j_close(void *ctx)
{
    if (ctx != NULL)
        jstore_free(ctx);
}

static const risk_store journal_table = {
    RISK_STORE_VERSION, NULL, j_begin, j_commit, j_rollback, j_get_user, j_put_user,
    j_get_event, j_put_event, j_user_events, j_reserve_seq, j_append_history, j_list_policies,
    j_put_policy, j_remove_policy, j_get_meta, j_put_meta, j_close, j_view_user, j_list_users,
    j_read_history, j_compact, j_backup, j_prefetch_users, j_prefetch_events,
};

/* Create an empty journal in fd (new or torn before its header ended). */
static int init_file(jstore *js, int created)
{
    uint8_t hdr[HDR_LEN];
    new_salt(js->salt);
    make_header(hdr, js->salt);
    int sync = js->durability != RISK_DURABILITY_OFF;
    if (ftruncate(js->fd, 0) != 0 || pwrite_all(js->fd, hdr, HDR_LEN, 0) != 0 ||
        (sync && datasync(js->fd) != 0))
        return risk_err(RISK_EIO, "path: cannot initialise %s: %s", js->path, strerror(errno));
    js->end = HDR_LEN, js->next_txn = 1;
    return created && sync ? fsync_dir(js->path) : RISK_OK;
}

static _Atomic(risk_journal_sync_hook) hook_before_lock;
void risk_journal_test_before_lock(risk_journal_sync_hook fn)
{
    atomic_store(&hook_before_lock, fn);
}

static int open_file(jstore *js, int *created)
{
    for (int tries = 0;; tries++) {
        *created = 0;
        js->fd = open(js->path, (js->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (js->fd < 0 && errno == ENOENT && !js->read_only) {
            js->fd = open(js->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            *created = js->fd >= 0;
            if (js->fd < 0 && errno == EEXIST)
                js->fd = open(js->path, O_RDWR | O_CLOEXEC);
            if (js->fd < 0 && errno == ENOENT) {
                /* exists, yet cannot be opened: a symbolic link to a file
                 * not made yet (O_EXCL does not follow it): make that */
                js->fd = open(js->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                *created = js->fd >= 0;
            }
        }
        if (js->fd < 0)
            return errno == ENOENT
                       ? risk_err(RISK_ENOTFOUND, "path: %s does not exist", js->path)
                       : risk_err(RISK_EIO, "path: cannot open %s: %s", js->path, strerror(errno));
        if (js->read_only)
            return RISK_OK;
        risk_journal_sync_hook before = atomic_load(&hook_before_lock);
        if (before != NULL)
            before(js->fd);
        int rc = lock_file(js->fd, js->path);
        /* Locked: but if the path names another file by now, the lock is
         * on a file that was replaced (a writer's compaction, or the
         * version-1 upgrade, renames a new file over the path and lets go
         * of the old one): open again, and meet that writer's lock. */
        if (rc != RISK_OK || same_file(js->fd, js->path))
            return rc;
        close(js->fd);
        js->fd = -1;
        if (tries == 8)
            return risk_err(RISK_EBUSY, "path: %s keeps being replaced by another writer",
                            js->path);
    }
}

/* Compaction renames a new file over the journal's path: over a symbolic
 * link that would replace the link, and leave the file it named (where
 * another writer could then open and lock it) behind. A writer works on
 * the file the link names. */
static int resolve_link(jstore *js)
{
    struct stat ls;
    if (lstat(js->path, &ls) != 0 || !S_ISLNK(ls.st_mode))
        return RISK_OK;
    char *real = realpath(js->path, NULL);
    if (real == NULL)
        return risk_err(RISK_EIO, "path: cannot resolve the link %s: %s", js->path,
                        strerror(errno));
    /* the link may have been pointed elsewhere since the open: the path
     * must name the file that was opened and locked */
    int same = same_file(js->fd, real);
    char *mine = same ? risk_strdup(real) : NULL;
    free(real);
    if (!same)
        return risk_err(RISK_EBUSY, "path: the link %s changed while the journal was opened",
                        js->path);
    if (mine == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    risk_free(js->path);
    js->path = mine;
    return RISK_OK;
}

static int check_opts(const risk_journal_options *o)
{
    if (o == NULL)
        return RISK_OK;
    if (o->version != RISK_JOURNAL_OPTIONS_VERSION)
        return risk_err(RISK_EINVAL, "opts: version %" PRIu32 " is not %d", o->version,
                        RISK_JOURNAL_OPTIONS_VERSION);
    if (o->durability > RISK_DURABILITY_OFF)
        return risk_err(RISK_EINVAL, "opts: durability %" PRIu32 " is not a risk_durability",
                        o->durability);
    if (o->read_only > 1)
        return risk_err(RISK_EINVAL, "opts: read_only must be 0 or 1");
    if (o->sync_interval_ms > 3600000u)
        return risk_err(RISK_EINVAL, "opts: sync_interval_ms over one hour");
    return RISK_OK;
}

int risk_journal_open(risk_store *out, const char *path, const risk_journal_options *opts,
                      risk_journal_stats *stats)
{
    if (stats != NULL) /* on failure it says nothing was replayed */
        *stats = (risk_journal_stats){1, 0, 0, 0, 0};
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    if (path == NULL || *path == '\0')
        return risk_err(RISK_EINVAL, "path: NULL or empty");
    int rc = check_opts(opts);
    if (rc != RISK_OK)
        return rc;
    jstore *js = risk_calloc(1, sizeof *js);
    if (js == NULL || (js->path = risk_strdup(path)) == NULL) {
        risk_free(js);
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    }
    js->fd = -1;
    js->read_only = opts ? (int)opts->read_only : 0;
    js->durability = opts ? opts->durability : RISK_DURABILITY_FULL;
    js->interval_ms = opts && opts->sync_interval_ms ? opts->sync_interval_ms : 100;
    pthread_mutex_init(&js->file_mu, NULL);
    pthread_mutex_init(&js->wr_mu, NULL);
    pthread_mutex_init(&js->sync_mu, NULL);
    pthread_cond_init(&js->sync_cv, NULL);
    pthread_cond_init(&js->gcv[0], NULL);
    pthread_cond_init(&js->gcv[1], NULL);
    pthread_rwlock_init(&js->idx_lock, NULL);
    rc = risk_memstore_new(&js->ms, 0);
    if (rc != RISK_OK) {
        js->ms = NULL;
        goto fail;
    }
    risk_memstore_table(js->ms, &js->mt);
    int created;
    if ((rc = open_file(js, &created)) != RISK_OK ||
        (!js->read_only && (rc = resolve_link(js)) != RISK_OK))
        goto fail;
    struct stat st;
    if (fstat(js->fd, &st) != 0) {
        rc = risk_err(RISK_EIO, "path: cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    rd r = {.fd = js->fd, .size = (uint64_t)st.st_size};
    scan_res res;
    rc = journal_replay(js, &r, &res);
    risk_free(r.buf);
    if (rc != RISK_OK)
        goto fail;
    memcpy(js->salt, res.salt, 8);
    js->end = res.good_end, js->next_txn = res.frames + 1;
    if (!js->read_only && (res.torn_header || r.size == 0)) {
        if ((rc = init_file(js, created || r.size == 0)) != RISK_OK)
            goto fail;
    } else if (!js->read_only && res.dropped > 0) {
        if (ftruncate(js->fd, (off_t)js->end) != 0 ||
            (js->durability != RISK_DURABILITY_OFF && datasync(js->fd) != 0)) {
            rc = risk_err(RISK_EIO, "path: cannot drop the torn tail of %s: %s", path,
                          strerror(errno));
            goto fail;
        }
    }
    risk_memstore_set_next_seq(js->ms, idx_max_seq(js) + 1);
    /* Version 1 kept history in seq order, and new commits may now append
     * it in any order: rewrite the file as version 2 first (compaction's
     * crash-safe procedure) before anything is appended. */
    if (!js->read_only && res.version == 1 && (rc = write_copy(js, js->path, 1)) != RISK_OK)
        goto fail;
    js->resv_end = js->end, js->can_reserve = 1, js->sync_off = js->flushed_off = js->end;
    if (!js->read_only && ((js->wbuf = risk_malloc(WBUF_CAP)) == NULL ||
                           (js->durability == RISK_DURABILITY_FULL &&
                            (js->wspare = risk_malloc(WBUF_CAP)) == NULL))) {
        rc = risk_err(RISK_ENOMEM, "journal: out of memory");
        goto fail;
    }
    if (!js->read_only && js->durability != RISK_DURABILITY_FULL) {
        if (pthread_create(&js->thread, NULL, sync_thread, js) != 0) {
            rc = risk_err(RISK_ENOMEM, "journal: cannot start the sync thread");
            goto fail;
        }
        js->has_thread = 1;
    }
    if (stats != NULL)
        *stats = (risk_journal_stats){1, 0, res.frames, res.dropped, js->end};
    *out = journal_table;
    out->ctx = js;
    return RISK_OK;
fail:
    jstore_free(js);
    return rc;
}

