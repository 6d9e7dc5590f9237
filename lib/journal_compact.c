/* Compaction and backup of the journal (docs/journal-format.md,
 * "Compaction and backup"): the live state and the whole history written
 * to path.tmp, synced, renamed over the target, directory synced. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct snap {
    jstore *js;
    int fd;
    uint64_t off, txn; /* bytes and frames written */
    uint8_t salt[8];
    bytes b;
    void *mtxn;           /* a read transaction of the memstore, for user_events */
    uint64_t events, all; /* events written with their user; events in all */
    uint64_t hist_at;     /* offset of the first history item in the copy */
} snap;

static int snap_flush(snap *s)
{
    if (s->b.len == FRAME_HDR)
        return RISK_OK;
    seal_frame(s->b.p, s->b.len - FRAME_HDR, ++s->txn, s->salt);
    if (pwrite_all(s->fd, s->b.p, s->b.len, s->off) != 0)
        return risk_err(RISK_EIO, "journal: write failed: %s", strerror(errno));
    s->off += s->b.len;
    s->b.len = FRAME_HDR;
    return RISK_OK;
}

static int snap_rec(snap *s, uint8_t tag, enc_fn enc, const void *rec)
{
    int rc = s->b.len >= SNAP_FRAME ? snap_flush(s) : RISK_OK;
    return rc ? rc : put_op(&s->b, tag, enc, rec, NULL);
}
static int snap_event(const risk_event *e, void *s) { return snap_rec(s, OP_EVENT, enc_event, e); }

/* A user, then its events: recovery then loads each user's events while
 * the user is in cache, instead of looking a random user up per event. */
static int snap_owned(const risk_event *e, void *arg)
{
    snap *s = arg;
    s->events++;
    return snap_event(e, s);
}
static int snap_user(const risk_user *u, void *arg)
{
    snap *s = arg;
    int rc = snap_rec(s, OP_USER, enc_user, u);
    jstore *js = s->js;
    return rc ? rc : js->mt.user_events(js->mt.ctx, s->mtxn, risk_user_id(u), snap_owned, s);
}
static int count_event(const risk_event *e, void *arg)
{
    (void)e;
    ((snap *)arg)->all++;
    return RISK_OK;
}
static int no_op_user(const risk_user *u, void *arg)
{
    (void)u, (void)arg;
    return RISK_OK;
}
/* An event whose user has no record (none is written above). */
static int snap_orphan(const risk_event *e, void *arg)
{
    snap *s = arg;
    jstore *js = s->js;
    int rc = js->mt.view_user(js->mt.ctx, risk_event_user_id(e), no_op_user, NULL);
    return rc == RISK_ENOTFOUND ? snap_event(e, s) : rc;
}
static int snap_policy(const risk_policy *p, void *s) { return snap_rec(s, OP_POLICY, enc_policy, p); }
static int snap_meta(const char *key, const uint8_t *val, size_t len, void *arg)
{
    snap *s = arg;
    int rc = s->b.len >= SNAP_FRAME ? snap_flush(s) : RISK_OK;
    return rc ? rc : put_meta_op(&s->b, key, val, len);
}

/* Write the live state and the whole history (copied from the current
 * file, in seq order) to fd. gap (compaction; NULL for a backup)
 * receives each item's distance from the one before (the first one's from
 * 0), in seq order: under FRAME_MAX, so 4 bytes an item instead of a
 * second offset array beside the index at the peak of the process's
 * memory.
 * Called with file_mu held, so no commit changes what is copied. */
static int snap_write(snap *s, uint32_t *gap)
{
    jstore *js = s->js;
    uint8_t hdr[HDR_LEN];
    new_salt(s->salt);
    make_header(hdr, s->salt);
    s->b.len = FRAME_HDR;
    if (pwrite_all(s->fd, hdr, HDR_LEN, 0) != 0)
        return risk_err(RISK_EIO, "journal: write failed: %s", strerror(errno));
    s->off = HDR_LEN;
    int rc = js->mt.begin(js->mt.ctx, NULL, &s->mtxn);
    if (rc == RISK_OK)
        rc = risk_memstore_each_user(js->ms, snap_user, s);
    if (rc == RISK_OK)
        rc = risk_memstore_each_event(js->ms, count_event, s);
    if (rc == RISK_OK && s->events < s->all) /* some events have no user record */
        rc = risk_memstore_each_event(js->ms, snap_orphan, s);
    if (s->mtxn != NULL)
        js->mt.rollback(js->mt.ctx, s->mtxn);
    s->mtxn = NULL;
    if (rc == RISK_OK)
        rc = risk_memstore_each_policy(js->ms, snap_policy, s);
    if (rc == RISK_OK)
        rc = risk_memstore_each_meta(js->ms, snap_meta, s);
    rd r = {.fd = js->fd, .size = js->end};
    uint64_t prev = 0, off;
    uint32_t len;
    size_t i = 0;
    for (uint64_t seq = 1; rc == RISK_OK && seq <= idx_max_seq(js); seq++) {
        if (!idx_get(js, seq, &off, &len))
            continue;
        const uint8_t *src = rd_get(&r, off, len);
        uint8_t *dst = NULL;
        if (src == NULL)
            rc = risk_error_last_code();
        if (rc == RISK_OK && s->b.len >= SNAP_FRAME)
            rc = snap_flush(s);
        if (rc == RISK_OK && (rc = bytes_op(&s->b, OP_HISTORY, len, &dst)) == 0) {
            memcpy(dst, src, len);
            /* offsets as gaps from the item before (each under FRAME_MAX);
             * the first from hist_at, which may be past 4 GiB */
            uint64_t at = s->off + (uint64_t)(dst - s->b.p);
            if (i == 0)
                s->hist_at = prev = at;
            if (gap != NULL)
                gap[i] = (uint32_t)(at - prev);
            i++;
            prev = at;
        }
    }
    risk_free(r.buf);
    return rc ? rc : snap_flush(s);
}

static char *tmp_path(const char *path)
{
    size_t n = strlen(path);
    char *t = risk_malloc(n + 5);
    if (t != NULL) {
        memcpy(t, path, n);
        memcpy(t + n, ".tmp", 5);
    }
    return t;
}

/* Hook: stop at this step of compaction as if the process died there. */
#define CRASH_POINT(step)                                                                  \
    do {                                                                                   \
        if (compact && atomic_load(&journal_hook_compact_step) == (step)) {                        \
            rc = risk_err(RISK_EIO, "journal: test crash at compaction step %d", step);    \
            goto crashed;                                                                  \
        }                                                                                  \
    } while (0)

/* Copy the state to dst (compact: dst is the journal itself). Crash safety:
 * everything goes to dst.tmp, made durable before the rename; rename is
 * atomic, so dst names either the old complete file or the new complete
 * one; the directory sync makes the rename itself durable. A stale .tmp
 * left by a crash is never read and is truncated by the next attempt. */
int write_copy(jstore *js, const char *dst, int compact)
{
    /* everything that allocates comes before the rename: after it, out of
     * memory could not mean "nothing changed" */
    char *tmp = tmp_path(dst), *dir = dir_of(dst);
    uint32_t *gap = compact ? risk_malloc((js->h_n ? js->h_n : 1) * sizeof *gap) : NULL;
    snap s = {.js = js, .fd = -1};
    int rc = RISK_OK, renamed = 0, dfd = -1, made_dst = 0, own_tmp = 0;
    if (tmp == NULL || dir == NULL || (compact && gap == NULL)) {
        rc = risk_err(RISK_ENOMEM, "journal: out of memory");
        goto out;
    }
    /* A backup must not replace a journal some store has open for
     * writing (its later commits would go to a file no name leads to),
     * nor one a store opens while the copy is written: lock dst, created
     * empty if absent (and removed again if the backup fails), until the
     * copy is in place; a writer opening it meanwhile meets the lock. */
    if (!compact) {
        if ((dfd = open(dst, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0)
            made_dst = 1;
        else if (errno == EEXIST)
            dfd = open(dst, O_RDWR | O_CLOEXEC);
        /* a dst that cannot be opened (not writable, a directory): no
         * store writes there either; the rename decides */
        if (dfd >= 0 && (rc = lock_file(dfd, dst)) != RISK_OK) {
            if (rc == RISK_EBUSY)
                rc = risk_err(RISK_EBUSY, "path: %s is a journal open for writing", dst);
            goto out;
        }
    }
    /* Lock the scratch file before emptying it: a file of that name that
     * another store has open for writing (its journal) is not ours to cut
     * or remove. Locked before the rename, so that no other writer can
     * slip in between. */
    /* Never through a symbolic link (the copy, and the rename, would
     * land in a file someone else chose); a leftover is reused only if it
     * is a plain file of this user with no other name, and is made 0600
     * (a leftover's mode would become the journal's). */
    s.fd = open(tmp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (s.fd < 0) {
        rc = errno == ELOOP
                 ? risk_err(RISK_EIO, "path: %s is a symbolic link; remove it", tmp)
                 : risk_err(RISK_EIO, "path: cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if ((rc = lock_file(s.fd, tmp)) != RISK_OK)
        goto out;
    struct stat ts;
    if (fstat(s.fd, &ts) != 0 || !S_ISREG(ts.st_mode) || ts.st_nlink != 1 ||
        ts.st_uid != geteuid()) {
        rc = risk_err(RISK_EIO, "path: %s exists and is not a plain file of this user with "
                                "one name; remove it", tmp);
        goto out;
    }
    own_tmp = 1;
    if (fchmod(s.fd, 0600) != 0) {
        rc = risk_err(RISK_EIO, "path: cannot set the mode of %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (ftruncate(s.fd, 0) != 0) {
        rc = risk_err(RISK_EIO, "path: cannot truncate %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = snap_write(&s, gap);
    if (rc == RISK_OK && compact && atomic_load(&journal_hook_compact_step) == 1 &&
        ftruncate(s.fd, (off_t)(s.off / 2)) == 0) /* a half-written copy */
        CRASH_POINT(1);
    if (rc == RISK_OK)
        CRASH_POINT(2);
    if (rc == RISK_OK && datasync(s.fd) != 0)
        rc = risk_err(RISK_EIO, "journal: fdatasync failed: %s", strerror(errno));
    if (rc == RISK_OK)
        CRASH_POINT(3);
    if (rc == RISK_OK && compact) {
        /* The copy holds what memory holds. j_compact synced it all first,
         * but a group-commit sync that was in flight may still fail and
         * take back commits that are in the copy: wait for it, and put
         * the copy in place only if nothing failed. (No new sync can
         * start with work to do: file_mu keeps new frames out.) */
        pthread_mutex_lock(&js->sync_mu);
        while (js->syncing)
            pthread_cond_wait(&js->sync_cv, &js->sync_mu);
        pthread_mutex_unlock(&js->sync_mu);
        if (atomic_load(&js->poisoned))
            rc = risk_err(RISK_EIO, "journal: a write or sync failed during compaction; "
                                    "close and reopen the journal");
    }
    if (rc == RISK_OK && rename(tmp, dst) != 0)
        rc = risk_err(RISK_EIO, "path: cannot rename %s: %s", tmp, strerror(errno));
    if (rc != RISK_OK)
        goto out;
    renamed = 1;
    CRASH_POINT(4);
    rc = sync_dir(dir);
    if (rc == RISK_OK)
        CRASH_POINT(5);
    if (compact) {
        /* dst is now the new file: switch to it even if the directory sync
         * failed (then poisoned: the rename may not survive a power loss) */
        pthread_rwlock_wrlock(&js->idx_lock);
        pthread_mutex_lock(&js->sync_mu);
        while (js->syncing)
            pthread_cond_wait(&js->sync_cv, &js->sync_mu);
        int old = js->fd;
        js->fd = s.fd, s.fd = old;
        memcpy(js->salt, s.salt, 8);
        js->end = s.off, js->next_txn = s.txn + 1, js->wlen = 0, js->wframes = 0;
        js->resv_end = s.off; /* the new file has nothing reserved */
        js->sync_off = js->flushed_off = s.off;
        uint64_t at = s.hist_at, off; /* the items' offsets in the new file, in place */
        uint32_t len;
        for (uint64_t seq = 1, i = 0; seq <= idx_max_seq(js); seq++)
            if (idx_get(js, seq, &off, &len))
                idx_set_off(js, seq, at += gap[i++]);
        /* everything is in the synced new file; durable, if its name is
         * (a commit still waiting for its sync fails if the directory
         * sync did: a power loss may bring back the old file, where its
         * frame was not synced) */
        atomic_store(&js->flushed, atomic_load(&js->appended));
        if (rc == RISK_OK)
            atomic_store(&js->synced, atomic_load(&js->appended));
        else
            atomic_store(&js->poisoned, 1);
        pthread_mutex_unlock(&js->sync_mu);
        pthread_rwlock_unlock(&js->idx_lock);
        wake_all_waiters(js);
    }
out:
    if (rc != RISK_OK && !renamed && own_tmp)
        unlink(tmp);
    if (rc != RISK_OK && made_dst && same_file(dfd, dst))
        unlink(dst); /* the empty file made to hold the lock */
crashed:
    if (s.fd >= 0)
        close(s.fd);
    if (dfd >= 0)
        close(dfd);
    risk_free(s.b.p);
    risk_free(gap);
    risk_free(tmp);
    risk_free(dir);
    return rc;
}

int j_compact(void *ctx)
{
    jstore *js = ctx;
    int rc = check_writable(js);
    if (rc != RISK_OK)
        return rc;
    pthread_mutex_lock(&js->file_mu);
    wait_applied(js); /* memory then holds what the file holds */
    /* written: the copy reads history from the file; synced: it holds no
     * commit a failing sync may take back */
    rc = flush_and_sync(js, 0, check_writable);
    if (rc == RISK_OK)
        rc = write_copy(js, js->path, 1);
    pthread_mutex_unlock(&js->file_mu);
    return rc;
}

int j_backup(void *ctx, const char *path)
{
    jstore *js = ctx;
    if (path == NULL || *path == '\0')
        return risk_err(RISK_EINVAL, "path: NULL or empty");
    /* The copy is written to path.tmp, then renamed to path: neither may
     * be the journal (the rename would replace it, the scratch file's
     * truncation would empty it). */
    char *tmp = tmp_path(path);
    if (tmp == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    pthread_mutex_lock(&js->file_mu); /* js->fd is stable (compaction swaps it) */
    /* by the file's identity, not its name: another spelling, a link */
    int self = strcmp(path, js->path) == 0 || same_file(js->fd, path);
    int self_tmp = !self && same_file(js->fd, tmp);
    pthread_mutex_unlock(&js->file_mu);
    risk_free(tmp);
    if (self)
        return risk_err(RISK_EINVAL, "path: %s is the journal itself", path);
    if (self_tmp)
        return risk_err(RISK_EINVAL, "path: the backup's scratch file %s.tmp is the journal",
                        path);
    int rc = check_readable(js);
    if (rc != RISK_OK)
        return rc;
    pthread_mutex_lock(&js->file_mu);
    wait_applied(js);
    rc = flush_and_sync(js, 0, check_readable);
    if (rc == RISK_OK)
        rc = write_copy(js, path, 0);
    pthread_mutex_unlock(&js->file_mu);
    return rc;
}
