/* The journal store's group commit, durability modes and write buffer at
 * the points the other suites did not pin down.
 *
 * Found by a seventh round of mutation testing (2026-12-07), focused on
 * lib/store_journal.c: its commit path, group commit (leader rounds, the
 * hand-over of the lead, the relay wake-up of one sync's waiters, the
 * frame counters), the durability modes full/normal/off, the write
 * buffer, poisoning, read-only opens, the writer lock and close. Each
 * test kills at least one change to that file that the other suites let
 * through; the mutant is named in the test's comment. The group-commit
 * tests order the threads through the test hooks
 * (risk_journal_test_group_hooks, before_sync), so the original code
 * passes whatever the timing; a mutant that loses a wake-up
 * leaves a commit waiting for ever, which the tests report after a bounded
 * wait. They run in the journal fixture's suite (temp dir removed, fault
 * hooks reset). */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "journal_fixture.h"

#include "journal.h"

#include <stdint.h>

/* Commit one transaction holding one meta op: key, and a value of vlen
 * bytes. Its frame is FRAME_HDR + 5 (op header) + 2 (key length) +
 * strlen(key) + vlen bytes. */
static int put_meta_len(risk_store *s, const char *key, size_t vlen)
{
    static const uint8_t val[256];
    void *t = NULL;
    int rc = s->begin(s->ctx, NULL, &t);
    if (rc != RISK_OK)
        return rc;
    rc = s->put_meta(s->ctx, t, key, val, vlen);
    if (rc == RISK_OK)
        return s->commit(s->ctx, t);
    s->rollback(s->ctx, t);
    return rc;
}

/* Reopen the journal at path read-only (it must open): what the open
 * found. */
static risk_journal_stats reopen_ro(void)
{
    risk_store s;
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, &st), RISK_OK, "%s", risk_error_last());
    jclose(&s);
    return st;
}

/* ---- group commit, ordered by the hooks ---- */

#define M7_MAX (LEAD_ROUNDS + 2) /* tickets 1 .. LEAD_ROUNDS + 1 */
static risk_store m7s;
static atomic_int m7_mode, m7_syncs, m7_nwait;
static atomic_int m7_entered[M7_MAX], m7_done[M7_MAX];
static pthread_t m7_th[M7_MAX];

static void *m7_committer(void *arg)
{
    int i = (int)(intptr_t)arg;
    char key[16];
    snprintf(key, sizeof key, "c%d", i);
    int rc = put_meta_len(&m7s, key, 1);
    atomic_store(&m7_done[i], rc == RISK_OK ? 1 : 2);
    return NULL;
}

/* Every committing thread's wait: note its ticket the first time. Mode 1:
 * the last one (frame LEAD_ROUNDS + 1) stalls here until the leader has
 * given up the lead, so that it picks its word after the hand-over. */
static void m7_waiter(uint32_t gen, uint64_t target, uint64_t ticket)
{
    (void)gen, (void)target;
    if (ticket >= M7_MAX || atomic_exchange(&m7_entered[ticket], 1))
        return;
    atomic_fetch_add(&m7_nwait, 1);
    if (ticket == LEAD_ROUNDS + 1 && atomic_load(&m7_mode) == 1) {
        const jstore *js = m7s.ctx;
        for (int i = 0; i < 5000 && atomic_load(&js->leading); i++)
            usleep(1000);
    }
}

/* Leader A's sync k (1 .. LEAD_ROUNDS): frame k + 1 is appended meanwhile
 * and its commit waits for sync k + 1; A runs that round too, up to
 * LEAD_ROUNDS, then hands the lead to the waiter of frame LEAD_ROUNDS + 1.
 * Mode 2: that waiter is asleep before the hand-over. */
static void m7_chain_sync(int fd)
{
    (void)fd;
    int k = atomic_fetch_add(&m7_syncs, 1) + 1;
    if (k > LEAD_ROUNDS)
        return;
    cr_assert_eq(pthread_create(&m7_th[k + 1], NULL, m7_committer, (void *)(intptr_t)(k + 1)), 0);
    for (int i = 0; i < 5000 && !atomic_load(&m7_entered[k + 1]); i++)
        usleep(1000);
    if (k < LEAD_ROUNDS)
        usleep(2000);
    else if (atomic_load(&m7_mode) == 2)
        usleep(100000); /* the waiter of frame LEAD_ROUNDS + 1 sleeps by now */
}

static void m7_reset(int mode)
{
    atomic_store(&m7_mode, mode);
    atomic_store(&m7_syncs, 0);
    atomic_store(&m7_nwait, 0);
    for (int i = 0; i < M7_MAX; i++)
        atomic_store(&m7_entered[i], 0), atomic_store(&m7_done[i], 0);
}

/* A commits frame 1 and leads LEAD_ROUNDS syncs; then the commit of frame
 * LEAD_ROUNDS + 1 must return (it leads sync LEAD_ROUNDS + 1 itself). */
static void m7_chain(int mode)
{
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT; /* full */
    cr_assert_eq(risk_journal_open(&m7s, path, &o, NULL), RISK_OK, "%s", risk_error_last());
    m7_reset(mode);
    risk_journal_test_before_sync(m7_chain_sync);
    risk_journal_test_group_hooks(NULL, m7_waiter);
    int rc = put_meta_len(&m7s, "c1", 1);
    cr_assert(eq(int, rc, RISK_OK));
    for (int i = 0; i < 300 && !atomic_load(&m7_done[LEAD_ROUNDS + 1]); i++)
        usleep(10000);
    int last = atomic_load(&m7_done[LEAD_ROUNDS + 1]);
    cr_assert(eq(int, last, 1), "the commit of frame %d never returned", LEAD_ROUNDS + 1);
    for (int i = 2; i <= LEAD_ROUNDS + 1; i++) {
        pthread_join(m7_th[i], NULL);
        int d = atomic_load(&m7_done[i]);
        cr_assert(eq(int, d, 1), "commit %d", i);
    }
    risk_journal_test_group_hooks(NULL, NULL);
    risk_journal_test_before_sync(NULL);
    int syncs = atomic_load(&m7_syncs);
    cr_assert(eq(int, syncs, LEAD_ROUNDS + 1)); /* one sync per frame, as ordered */
    m7s.close(m7s.ctx);
    risk_journal_stats st = reopen_ro();
    cr_assert_eq(st.records_replayed, LEAD_ROUNDS + 1);
}

/* R-CC-3 (docs/journal-format.md, full mode: "a commit returns once an
 * fdatasync that started after its frame was written has finished"; the
 * leader hands the lead to a waiting commit after 8 rounds): a commit
 * that was about to sleep when the leader gave up the lead must not sleep
 * with no leader left; it sees leading == 0 and leads. (Mutant W4:
 * wait_durable's last check before sleeping dropped `leading == 0`: the
 * commit slept on a word nobody would change again.) */
Test(journal, m7_waiter_that_finds_no_leader_leads, .timeout = 30)
{
    m7_chain(1);
}

/* R-CC-3: when the leader hands over after LEAD_ROUNDS rounds, it wakes a
 * waiter of the next sync to lead it. (Mutant L7: the hand-over's
 * wake_word dropped: that waiter, asleep, was never woken.) */
Test(journal, m7_handover_wakes_a_waiter_to_lead, .timeout = 30)
{
    m7_chain(2);
}

/* Leader A's first sync: three commits append frames 2..4 meanwhile and
 * go to sleep on sync 2's word. */
static void m7_group_sync(int fd)
{
    (void)fd;
    if (atomic_fetch_add(&m7_syncs, 1) != 0)
        return;
    for (int i = 2; i <= 4; i++)
        cr_assert_eq(pthread_create(&m7_th[i], NULL, m7_committer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 5000 && atomic_load(&m7_nwait) < 3; i++)
        usleep(1000);
    usleep(100000); /* all three sleep by now */
}

/* R-CC-3 (docs: "when it ends the leader wakes one of them, which wakes
 * the others with one call"): every commit a sync covers returns, not
 * only the one the leader woke. Three commits wait for one sync.
 * (Mutants L5: the leader no longer offered the relay, so the woken
 * waiter did not wake the others; W5: the relay woke one more waiter
 * instead of all.) */
Test(journal, m7_every_waiter_of_one_sync_returns, .timeout = 30)
{
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT; /* full */
    cr_assert_eq(risk_journal_open(&m7s, path, &o, NULL), RISK_OK, "%s", risk_error_last());
    m7_reset(0);
    risk_journal_test_before_sync(m7_group_sync);
    risk_journal_test_group_hooks(NULL, m7_waiter);
    int rc = put_meta_len(&m7s, "c1", 1);
    cr_assert(eq(int, rc, RISK_OK));
    int done = 0;
    for (int i = 0; i < 300 && done < 3; i++) {
        usleep(10000);
        done = 0;
        for (int k = 2; k <= 4; k++)
            done += atomic_load(&m7_done[k]) != 0;
    }
    cr_assert(eq(int, done, 3), "only %d of the 3 commits of sync 2 returned", done);
    for (int k = 2; k <= 4; k++) {
        pthread_join(m7_th[k], NULL);
        int d = atomic_load(&m7_done[k]);
        cr_assert(eq(int, d, 1));
    }
    risk_journal_test_group_hooks(NULL, NULL);
    risk_journal_test_before_sync(NULL);
    int syncs = atomic_load(&m7_syncs);
    cr_assert(eq(int, syncs, 2)); /* one sync for frame 1, one for frames 2..4 */
    m7s.close(m7s.ctx);
}

/* ---- durability modes ---- */

/* R-CC-3 (docs/journal-format.md, normal mode: the background thread
 * "runs fdatasync when something was written"): it syncs a commit within
 * the interval, and an idle journal is not synced again. A 1 ms interval
 * gives the thread many rounds.
 * (Mutants N2: the thread's `target > synced` became >=, an fdatasync
 * every interval with nothing written; N3: the thread no longer wrote the
 * buffer, so it never had anything to sync.) */
Test(journal, m7_normal_mode_syncs_only_what_was_written)
{
    risk_store s;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = RISK_DURABILITY_NORMAL;
    o.sync_interval_ms = 1;
    cr_assert_eq(risk_journal_open(&s, path, &o, NULL), RISK_OK, "%s", risk_error_last());
    atomic_store(jfx_syncs(), 0);
    risk_journal_test_before_sync(jfx_count_sync);
    cr_assert_eq(do_op(&s, 1), RISK_OK);
    const jstore *js = s.ctx;
    for (int i = 0; i < 2000 && atomic_load(&js->synced) < 1; i++)
        usleep(1000);
    uint64_t synced = atomic_load(&js->synced);
    cr_assert(eq(u64, synced, 1), "the background thread did not sync the commit");
    atomic_store(jfx_syncs(), 0);
    usleep(100000); /* ~100 rounds of the thread, nothing written */
    int n = atomic_load(jfx_syncs());
    risk_journal_test_before_sync(NULL);
    jclose(&s);
    cr_assert(eq(int, n, 0), "%d background fdatasyncs of an idle journal", n);
}

/* R-CC-3 (docs: "A new file is created with mode 0600, its header synced,
 * and its directory synced ... no syncs at all in off mode"): in normal
 * mode too the creation syncs the header and the directory, so the empty
 * journal survives a power loss. (Mutant X4: init_file synced only in
 * full mode.) */
Test(journal, m7_normal_mode_creation_syncs_file_and_directory)
{
    risk_store s;
    atomic_store(jfx_syncs(), 0);
    risk_journal_test_before_sync(jfx_count_sync);
    jopen_idle(&s, RISK_DURABILITY_NORMAL);
    int n = atomic_load(jfx_syncs());
    jclose(&s);
    risk_journal_test_before_sync(NULL);
    cr_assert(eq(int, n, 2), "%d fdatasyncs creating the journal (file, directory)", n);
}

/* ---- the write buffer ---- */

/* Fill the empty write buffer to exactly upto bytes with meta commits
 * ("k", 256-byte values: 280-byte frames, then one smaller); the number
 * of commits. */
static int fill_buffer(risk_store *s, size_t upto)
{
    const size_t big = FRAME_HDR + 5 + 2 + 1 + 256, small = FRAME_HDR + 5 + 2 + 1;
    size_t fill = 0;
    int frames = 0;
    while (upto - fill > big + small) {
        cr_assert_eq(put_meta_len(s, "k", 256), RISK_OK);
        fill += big, frames++;
    }
    size_t r = upto - fill; /* small < r <= big + small */
    if (r > big) {
        cr_assert_eq(put_meta_len(s, "k", r - 2 * small), RISK_OK);
        frames++, r = small;
    }
    cr_assert_eq(put_meta_len(s, "k", r - small), RISK_OK);
    return frames + 1;
}

/* R-CC-3 (docs: the buffer is written "in every mode when the
 * next frame would not fit"): frames collect in the WBUF_CAP-byte buffer
 * until one does not fit; that commit writes the buffer first. Normal
 * mode with an hour's interval: only a full buffer writes. Frames of 280
 * bytes (meta "k" with 256 bytes) fill it to WBUF_CAP - 8, then a 24-byte
 * frame does not fit by 16 bytes. (Mutant B4: append_frame's test became
 * wlen + n > WBUF_CAP + FRAME_HDR: up to 16 bytes written past the buffer,
 * and no write before them.) */
Test(journal, m7_a_frame_that_does_not_fit_writes_the_buffer_first)
{
    risk_store s;
    jopen_idle(&s, RISK_DURABILITY_NORMAL);
    int frames = fill_buffer(&s, WBUF_CAP - 8);
    uint64_t size = file_size(path);
    cr_assert(eq(u64, size, HDR_LEN), "the buffer was written before it was full");
    cr_assert_eq(put_meta_len(&s, "k", 0), RISK_OK); /* 24 bytes: 16 too many */
    size = file_size(path);
    cr_assert(eq(u64, size, HDR_LEN + WBUF_CAP - 8), "the full buffer was not written first");
    jclose(&s);
    risk_journal_stats st = reopen_ro();
    cr_assert_eq(st.records_replayed, (uint64_t)frames + 1);
}

/* R-CC-3 (docs: if writing the buffer fails "those frames are already
 * applied in memory: the journal is poisoned"): the commit whose frame
 * did not fit, and made the buffer be written, fails with RISK_EIO and is
 * not applied; the journal refuses what follows. (Mutant B8:
 * append_frame ignored the failed write: the frame was copied past the
 * full buffer and the commit acknowledged.) */
Test(journal, m7_a_failed_write_of_the_full_buffer_fails_the_commit)
{
    risk_store s;
    jopen_idle(&s, RISK_DURABILITY_NORMAL);
    (void)fill_buffer(&s, WBUF_CAP - 8);
    risk_journal_test_fail_write(1, EIO);
    int rc = put_meta_len(&s, "k", 0);
    risk_journal_test_fail_write(0, 0);
    cr_assert(eq(int, rc, RISK_EIO), "a commit was acknowledged after its buffer write failed");
    rc = put_meta_len(&s, "x", 0);
    cr_assert(eq(int, rc, RISK_EIO));
    jclose(&s);
}

/* R-CC-3 (full mode: a commit returns once a sync that started after its
 * frame was written has finished): the frame counters stay exact when the
 * buffer is written by a history read between a commit and its wait (the
 * engine's split commit). Each later commit returns with its frame in the
 * file. (Mutant B3: wbuf_flush left wframes as it was: the leader's next
 * write counted that frame again, and `synced` then covered a later
 * commit whose frame was still in the buffer.) */
Test(journal, m7_frames_written_by_a_flush_are_counted_once)
{
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    const risk_store_split *sp = risk_store_split_of(&s);
    cr_assert_not_null(sp);
    const jstore *js = s.ctx;
    void *t = NULL;
    uint64_t ticket = 0;
    cr_assert_eq(s.begin(s.ctx, NULL, &t), RISK_OK);
    cr_assert_eq(s.put_meta(s.ctx, t, "k0", (const uint8_t *)"v", 1), RISK_OK);
    cr_assert_eq(sp->commit_nowait(s.ctx, t, &ticket), RISK_OK);
    cr_assert_eq(ticket, 1);
    hcol c = {0};
    cr_assert_eq(s.read_history(s.ctx, NULL, 0, collect, &c), RISK_OK); /* writes the buffer */
    cr_assert_eq(sp->wait_durable(s.ctx, ticket), RISK_OK);
    for (int k = 1; k <= 3; k++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", k);
        cr_assert_eq(put_meta_len(&s, key, 1), RISK_OK);
        uint64_t size = file_size(path), end = js->end;
        cr_assert(eq(u64, size, end), "commit %d returned before its frame was written", k);
    }
    jclose(&s);
}

/* ---- poisoning ---- */

static risk_store m7p;
static atomic_int m7p_rc;
static void *m7p_commit(void *arg)
{
    (void)arg;
    atomic_store(&m7p_rc, put_meta_len(&m7p, "b", 1));
    return NULL;
}

/* R-CC-3 (docs: after a failed buffer write the store "refuses reads and
 * writes with RISK_EIO until it is closed and reopened"): a commit that
 * passed the first check and then waits for the file mutex while another
 * thread's buffer write fails is refused too, not appended and
 * acknowledged. Normal mode (its commit does not wait for a sync, which
 * would report the failure anyway). The test holds the file mutex as a
 * flushing thread does, and fails the write under it. (Mutant C4:
 * j_commit_nowait's check_writable under file_mu dropped: the commit
 * returned RISK_OK from a poisoned journal.) */
Test(journal, m7_commit_behind_a_failing_write_is_refused)
{
    jopen_idle(&m7p, RISK_DURABILITY_NORMAL);
    cr_assert_eq(put_meta_len(&m7p, "a", 1), RISK_OK); /* buffered */
    jstore *js = m7p.ctx;
    atomic_store(&m7p_rc, -1);
    pthread_mutex_lock(&js->file_mu);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, m7p_commit, NULL), 0);
    usleep(100000); /* b's commit waits for file_mu */
    risk_journal_test_fail_write(1, EIO);
    int frc = wbuf_flush(js);
    pthread_mutex_unlock(&js->file_mu);
    pthread_join(th, NULL);
    cr_assert(eq(int, frc, RISK_EIO));
    int rc = atomic_load(&m7p_rc);
    cr_assert(eq(int, rc, RISK_EIO), "a commit was acknowledged by a poisoned journal");
    jclose(&m7p);
}

/* ---- a frame larger than the write buffer ---- */

/* Commit one transaction of 1000 meta ops of 256 bytes: a frame of some
 * 268 KB, more than the WBUF_CAP-byte write buffer holds. */
static int put_big(risk_store *s, int tag)
{
    static const uint8_t val[256];
    void *t = NULL;
    int rc = s->begin(s->ctx, NULL, &t);
    if (rc != RISK_OK)
        return rc;
    for (int k = 0; rc == RISK_OK && k < 1000; k++) {
        char key[16];
        snprintf(key, sizeof key, "%c%04d", tag, k);
        rc = s->put_meta(s->ctx, t, key, val, sizeof val);
    }
    if (rc == RISK_OK)
        return s->commit(s->ctx, t);
    s->rollback(s->ctx, t);
    return rc;
}

/* R-CC-3 (docs: "A frame larger than the buffer is written directly with
 * pwrite; if that fails the file is cut back and the commit returns
 * RISK_EIO with nothing changed"): in full mode such a commit returns,
 * its frame in the file; a failed direct write fails only that commit,
 * and the journal goes on taking commits (it is not poisoned: the cut
 * left no partial frame). (Mutants B5: the direct write did not count its
 * frame as written, so no sync ever covered it and the full-mode commit
 * waited for ever; B6: the failure was ignored and the commit returned
 * RISK_OK; B7: the journal was poisoned when the cut succeeded.) */
Test(journal, m7_a_frame_larger_than_the_buffer, .timeout = 30)
{
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    int rc = put_big(&s, 'a');
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    uint64_t size = file_size(path), end = ((const jstore *)s.ctx)->end;
    cr_assert(eq(u64, size, end));
    cr_assert_gt(end, HDR_LEN + WBUF_CAP);
    jclose(&s);
    jopen_idle(&s, RISK_DURABILITY_NORMAL);
    risk_journal_test_fail_write(1, EIO);
    rc = put_big(&s, 'b');
    risk_journal_test_fail_write(0, 0);
    cr_assert(eq(int, rc, RISK_EIO), "a failed write of a large frame was acknowledged");
    size = file_size(path);
    cr_assert(eq(u64, size, end), "the file was not cut back");
    rc = put_meta_len(&s, "c", 1);
    cr_assert(eq(int, rc, RISK_OK), "the journal refuses commits after a clean cut: %s",
              risk_error_last());
    jclose(&s);
    risk_journal_stats st = reopen_ro();
    cr_assert_eq(st.records_replayed, 2);
    cr_assert_eq(st.bytes_dropped, 0);
}

/* R-CC-3 (docs, compaction and backup step 1: write the buffer and
 * "fdatasync the journal if anything written is not synced yet, so the
 * copy holds no commit whose sync could still fail"): in normal mode too.
 * Were the backup to copy an unsynced commit, a later failing sync would
 * cut it from the journal and leave it only in the backup. (Mutant Y4:
 * sync_written returned at once in normal mode as in off mode.) */
Test(journal, m7_normal_mode_backup_syncs_first)
{
    risk_store s;
    jopen_idle(&s, RISK_DURABILITY_NORMAL);
    cr_assert_eq(do_op(&s, 1), RISK_OK);
    atomic_store(jfx_syncs(), 0);
    risk_journal_test_before_sync(jfx_count_sync);
    int rc = s.backup(s.ctx, path2);
    int n = atomic_load(jfx_syncs());
    risk_journal_test_before_sync(NULL);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    cr_assert_geq(n, 1, "the backup did not sync the journal first");
    /* a sync failing now cuts the journal back to that sync: op 1 stays */
    cr_assert_eq(do_op(&s, 2), RISK_OK);
    risk_journal_test_fail_sync(1);
    rc = risk_store_split_of(&s)->sync(s.ctx);
    risk_journal_test_fail_sync(0);
    cr_assert(eq(int, rc, RISK_EIO));
    jclose(&s);
    risk_journal_stats st = reopen_ro();
    cr_assert_eq(st.records_replayed, 1);
}
