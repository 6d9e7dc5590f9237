/* The journal store (R-CC-3, R-ST-5): one append-only file of committed
 * transactions in front of an in-memory store. docs/journal-format.md is
 * the format's reference; this comment explains the moving parts.
 *
 * Live users, events, policies and meta sit in a risk_memstore (made with
 * keep_history 0); our callback table wraps its table. Writes go both to
 * the memstore txn and to a redo buffer in our txn. Commit: memstore
 * prepare (may fail: nothing written) → under file_mu append ONE frame
 * holding the whole redo → memstore apply (cannot fail) → drop file_mu →
 * wait for durability (group commit: one fdatasync covers every frame
 * written before it started). History items stay on disk: an index maps
 * seq → (offset, length) of the encoded item, plus a per-user list of
 * positions in that index, and read_history preads them back.
 *
 * Locks, always taken in this order: file_mu (appends, compaction,
 * backup; it also freezes the memstore's committed state, since apply only
 * runs under it) → idx_lock (the history index and fd for readers) →
 * sync_mu (group-commit counters). The disk wait holds none of them. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A typical operation (an event, its user, one history item: ~350 bytes)
 * fits the inline buffers, so a transaction is one allocation, and one
 * small enough for malloc's per-thread cache (≤ 1032 bytes in glibc): with
 * a 2 KiB one an ingest took ~1.8 times the CPU here, every free going
 * through the arena and consolidating. */
#define REDO_INLINE 864
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

int check_writable(jstore *js)
{
    if (js->read_only)
        return risk_err(RISK_EREADONLY, "store: the journal is open read-only");
    if (atomic_load(&js->poisoned))
        return risk_err(RISK_EIO, "store: an earlier sync failed; the journal refuses writes");
    return RISK_OK;
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
    jtxn *t = risk_malloc(sizeof *t); /* not calloc: the buffers need no zeroing */
    if (t == NULL)
        return risk_err(RISK_ENOMEM, "txn: out of memory");
    t->mtxn = NULL;
    t->redo = (bytes){t->inl, FRAME_HDR, REDO_INLINE, t->inl};
    t->ph = t->inl_ph, t->n_ph = 0, t->cap_ph = PH_INLINE;
    int rc = js->mt.begin(js->mt.ctx, user_id, &t->mtxn);
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
                               (uint32_t)ulen};
    return RISK_OK;
}

/* ---- durability ---- */

/* A commit waiting for its frame to be covered by a sync (full mode). It
 * sleeps on its own condition variable, so a finished sync wakes only the
 * commits it covered, plus one that it did not, to lead the next sync: 64
 * committing threads do not all wake for every sync to find most of them
 * still uncovered (the herd that kept groups small). */
typedef struct jwaiter {
    pthread_cond_t cv;
    uint64_t my;
    int woken;
    struct jwaiter *next;
} jwaiter;

/* After synced moved or the journal was poisoned (sync_mu held): wake the
 * waiters that are covered or must see the failure, and, when no sync is
 * running, the first one left, to start the next sync. */
void wake_waiters(jstore *js)
{
    int poisoned = atomic_load(&js->poisoned), leader = js->syncing;
    for (jwaiter **pp = &js->waiters, *w; (w = *pp) != NULL;) {
        if (w->my <= js->synced || poisoned || !leader) {
            leader |= w->my > js->synced;
            *pp = w->next;
            w->woken = 1;
            pthread_cond_signal(&w->cv);
        }
        else
            pp = &w->next;
    }
}

/* Called with sync_mu held and no sync running: one fdatasync covering
 * every frame written so far. Returns with sync_mu held. */
static int sync_now(jstore *js)
{
    uint64_t target = js->written;
    int fd = js->fd;
    js->syncing = 1;
    pthread_mutex_unlock(&js->sync_mu);
    int rc = datasync(fd);
    int e = errno;
    pthread_mutex_lock(&js->sync_mu);
    js->syncing = 0;
    if (rc == 0) {
        if (target > js->synced)
            js->synced = target;
    } else {
        /* After a failed fdatasync the kernel may have dropped the dirty
         * pages and cleared the error: what the file holds is unknown, and
         * retrying would report success over lost data (the PostgreSQL
         * "fsyncgate" lesson). So the journal refuses every later write. */
        atomic_store(&js->poisoned, 1);
    }
    wake_waiters(js);
    pthread_cond_broadcast(&js->sync_cv);
    return rc == 0 ? RISK_OK : risk_err(RISK_EIO, "journal: fdatasync failed: %s", strerror(e));
}

/* Group commit: return once a sync that started after frame `my` was
 * written has finished. A commit finding no sync running starts one
 * itself; finding one running, it waits until a later sync covers it or
 * it is handed the lead. */
static int wait_durable(jstore *js, uint64_t my)
{
    int rc = RISK_OK;
    jwaiter w;
    w.my = my;
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&js->sync_mu);
    while (js->synced < my && rc == RISK_OK) {
        if (atomic_load(&js->poisoned))
            rc = risk_err(RISK_EIO, "journal: a sync failed; this commit may not be durable");
        else if (js->syncing) {
            w.woken = 0;
            w.next = js->waiters;
            js->waiters = &w;
            while (!w.woken)
                pthread_cond_wait(&w.cv, &js->sync_mu);
        }
        else
            rc = sync_now(js);
    }
    pthread_mutex_unlock(&js->sync_mu);
    pthread_cond_destroy(&w.cv);
    return rc;
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
        pthread_mutex_unlock(&js->file_mu);
        pthread_mutex_lock(&js->sync_mu);
        if (js->durability == RISK_DURABILITY_NORMAL && !js->stop && !js->syncing &&
            js->written > js->synced && !atomic_load(&js->poisoned))
            sync_now(js);
    }
    pthread_mutex_unlock(&js->sync_mu);
    return NULL;
}

/* ---- appending frames ---- */

/* Write the buffered frames at end - wlen (file_mu held). They were
 * acknowledged, so a failure cannot be undone: the journal is poisoned,
 * and a partial write is cut away so the file still ends on a frame. */
int wbuf_flush(jstore *js)
{
    if (js->wlen == 0)
        return RISK_OK;
    uint64_t at = js->end - js->wlen;
    if (pwrite_all(js->fd, js->wbuf, js->wlen, at) != 0) {
        int e = errno;
        if (ftruncate(js->fd, (off_t)at) != 0) {
            /* nothing more to do: poisoned below either way */
        }
        atomic_store(&js->poisoned, 1);
        return risk_err(RISK_EIO, "journal: write of buffered commits failed: %s", strerror(e));
    }
    js->wlen = 0;
    pthread_mutex_lock(&js->sync_mu);
    js->written++;
    pthread_mutex_unlock(&js->sync_mu);
    return RISK_OK;
}

/* Put a sealed frame at the end (file_mu held). full: one pwrite now, a
 * failure is cut back and changes nothing. normal/off: copied into the
 * write buffer (written when full, by the background thread every
 * sync_interval_ms, and before compaction, backup, history reads and
 * close); a frame larger than the buffer goes straight to the file. */
static int append_frame(jstore *js, const uint8_t *p, size_t n)
{
    if (js->wbuf != NULL && js->wlen + n > WBUF_CAP) {
        int rc = wbuf_flush(js);
        if (rc != RISK_OK)
            return rc;
    }
    if (js->wbuf != NULL && n <= WBUF_CAP) {
        memcpy(js->wbuf + js->wlen, p, n);
        js->wlen += n;
        js->end += n;
        return RISK_OK;
    }
    if (pwrite_all(js->fd, p, n, js->end) != 0) {
        int rc = risk_err(RISK_EIO, "journal: write failed: %s", strerror(errno));
        if (ftruncate(js->fd, (off_t)js->end) != 0)
            atomic_store(&js->poisoned, 1); /* a partial frame may remain */
        return rc;
    }
    js->end += n;
    if (js->durability != RISK_DURABILITY_FULL) {
        pthread_mutex_lock(&js->sync_mu);
        js->written++;
        pthread_mutex_unlock(&js->sync_mu);
    }
    return RISK_OK;
}

/* Commit txn: written (or buffered) and applied, in file order. In full
 * mode *ticket is then the write a sync must cover before the commit is
 * durable (0: nothing to wait for). */
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
    pthread_mutex_lock(&js->file_mu);
    int rc = check_writable(js);
    if (rc == RISK_OK && payload > FRAME_MAX)
        rc = risk_err(RISK_EINVAL, "txn: larger than a journal frame");
    if (rc == RISK_OK && t->n_ph > 0 && t->ph[0].seq <= idx_max_seq(js))
        rc = risk_err(RISK_EINVAL, "txn: history seq not above the last committed one");
    /* file_mu keeps other index writers out, so the room is checked
     * without idx_lock; readers are held off only if it must grow */
    if (rc == RISK_OK && t->n_ph > 0 && !idx_has_room(js, t->redo.p, t->ph, t->n_ph)) {
        pthread_rwlock_wrlock(&js->idx_lock);
        rc = idx_reserve(js, t->redo.p, t->ph, t->n_ph);
        pthread_rwlock_unlock(&js->idx_lock);
    }
    if (rc == RISK_OK && (rc = risk_memstore_prepare(js->ms, t->mtxn)) == RISK_OK) {
        uint64_t start = js->end;
        seal_frame(t->redo.p, payload, js->next_txn, js->salt);
        if ((rc = append_frame(js, t->redo.p, t->redo.len)) == RISK_OK) {
            if (t->n_ph > 0) {
                pthread_rwlock_wrlock(&js->idx_lock);
                for (size_t i = 0; i < t->n_ph; i++)
                    idx_add(js, t->ph[i].seq, start + t->ph[i].at, t->ph[i].len,
                            t->redo.p + t->ph[i].uat, t->ph[i].ulen);
                pthread_rwlock_unlock(&js->idx_lock);
            }
            js->next_txn++;
            risk_memstore_apply(js->ms, t->mtxn);
            t->mtxn = NULL;
            if (js->durability == RISK_DURABILITY_FULL) {
                pthread_mutex_lock(&js->sync_mu);
                my = ++js->written;
                pthread_mutex_unlock(&js->sync_mu);
            }
        }
    }
    pthread_mutex_unlock(&js->file_mu);
    if (t->mtxn != NULL) /* not applied: prepare or the write failed */
        js->mt.rollback(js->mt.ctx, t->mtxn);
    else
        *ticket = my;
    txn_free(t);
    return rc;
}

static int j_wait_durable(void *ctx, uint64_t ticket)
{
    return ticket ? wait_durable(ctx, ticket) : RISK_OK;
}

static int j_commit(void *ctx, void *txn)
{
    uint64_t ticket;
    int rc = j_commit_nowait(ctx, txn, &ticket);
    return rc == RISK_OK ? j_wait_durable(ctx, ticket) : rc;
}

const risk_store_split *risk_store_split_of(const risk_store *s)
{
    static const risk_store_split journal_split = { j_commit_nowait, j_wait_durable };
    return s->commit == j_commit ? &journal_split : NULL;
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
    if (js->mt.view_user == NULL)
        return risk_err(RISK_EUNSUPPORTED, "store: no view_user");
    return js->mt.view_user(js->mt.ctx, id, fn, arg);
}
static int j_list_users(void *ctx, risk_level min_level, risk_user_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    if (js->mt.list_users == NULL)
        return risk_err(RISK_EUNSUPPORTED, "store: no list_users");
    return js->mt.list_users(js->mt.ctx, min_level, fn, arg);
}

/* ---- history read back from the file ---- */

/* First position in [0, n) whose seq (through the index) is ≥ since. */
static size_t lower_bound(const jstore *js, const uint32_t *pos, size_t n, uint64_t since)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (js->h_seq[pos ? pos[mid] : mid] < since)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Visit items in seq order, HIST_BATCH at a time: under the read lock the
 * raw bytes are copied out (compaction may swap the file), then they are
 * decoded and visited with no lock held (fn may call back into the store). */
static int j_read_history(void *ctx, const char *user_id, uint64_t since_seq,
                          risk_history_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    if (fn == NULL)
        return risk_err(RISK_EINVAL, "fn: NULL");
    bytes raw = {0};
    size_t lens[HIST_BATCH];
    int rc = RISK_OK, more = 1;
    while (rc == RISK_OK && more) {
        size_t k = 0;
        raw.len = 0;
        /* buffered frames go to the file first; holding file_mu until the
         * index is read-locked keeps later commits out of this batch */
        pthread_mutex_lock(&js->file_mu);
        rc = js->wlen > 0 ? wbuf_flush(js) : RISK_OK;
        pthread_rwlock_rdlock(&js->idx_lock);
        pthread_mutex_unlock(&js->file_mu);
        const ulist *u =
            user_id ? ulist_find(js, (const uint8_t *)user_id, strlen(user_id)) : NULL;
        const uint32_t *pos = u ? u->pos : NULL;
        size_t n = user_id ? (u ? u->n : 0) : js->h_n;
        for (size_t i = lower_bound(js, pos, n, since_seq); i < n && k < HIST_BATCH; i++, k++) {
            size_t x = pos ? pos[i] : i;
            uint8_t *dst = NULL;
            if (rc != RISK_OK || (rc = bytes_op(&raw, 0, js->h_len[x], &dst)) != RISK_OK)
                break;
            ssize_t got = pread(js->fd, dst, js->h_len[x], (off_t)js->h_off[x]);
            if (got != (ssize_t)js->h_len[x]) {
                rc = risk_err(RISK_EIO, "journal: cannot read history at byte offset %" PRIu64,
                              js->h_off[x]);
                break;
            }
            lens[k] = js->h_len[x];
            since_seq = js->h_seq[x] + 1;
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
        if (!js->read_only && js->durability != RISK_DURABILITY_OFF &&
            !atomic_load(&js->poisoned) && js->written > js->synced)
            datasync(js->fd);
        close(js->fd); /* releases the OFD lock */
    }
    idx_free(js);
    risk_free(js->wbuf);
    if (js->ms != NULL)
        risk_memstore_free(js->ms);
    pthread_rwlock_destroy(&js->idx_lock);
    pthread_cond_destroy(&js->sync_cv);
    pthread_mutex_destroy(&js->sync_mu);
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
    j_read_history, j_compact, j_backup,
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

static int open_file(jstore *js, int *created)
{
    *created = 0;
    js->fd = open(js->path, (js->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (js->fd < 0 && errno == ENOENT && !js->read_only) {
        js->fd = open(js->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        *created = js->fd >= 0;
        if (js->fd < 0 && errno == EEXIST)
            js->fd = open(js->path, O_RDWR | O_CLOEXEC);
    }
    if (js->fd < 0)
        return errno == ENOENT ? risk_err(RISK_ENOTFOUND, "path: %s does not exist", js->path)
                               : risk_err(RISK_EIO, "path: cannot open %s: %s", js->path,
                                          strerror(errno));
    return js->read_only ? RISK_OK : lock_file(js->fd, js->path);
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
    pthread_mutex_init(&js->sync_mu, NULL);
    pthread_cond_init(&js->sync_cv, NULL);
    pthread_rwlock_init(&js->idx_lock, NULL);
    rc = risk_memstore_new(&js->ms, 0);
    if (rc != RISK_OK) {
        js->ms = NULL;
        goto fail;
    }
    risk_memstore_table(js->ms, &js->mt);
    int created;
    if ((rc = open_file(js, &created)) != RISK_OK)
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
    if (!js->read_only && js->durability != RISK_DURABILITY_FULL &&
        (js->wbuf = risk_malloc(WBUF_CAP)) == NULL) {
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

