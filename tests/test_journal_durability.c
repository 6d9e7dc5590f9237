/* The journal store (lib/store_journal.c): durability modes and group
 * commit, failing writes and syncs, compaction (also interrupted at every
 * step) and backup, argument checks, allocation failures, and the engine
 * on a journal. Each test names its rule. */
#include "journal_fixture.h"

#include <stdatomic.h>

Test(journal, full_disk_changes_nothing)
{
    /* R-CC-2, R-CC-3: no room on the disk (ENOSPC, or EIO while the file
     * grows) → RISK_EIO, memory and file as before, and the store goes on
     * once there is room. Space is reserved before a commit is applied, so
     * a full disk never fails a commit that memory already shows. */
    uint32_t modes[2] = {RISK_DURABILITY_FULL, RISK_DURABILITY_NORMAL};
    int errs[2] = {ENOSPC, EIO};
    for (int m = 0; m < 2; m++) {
        unlink(path);
        risk_store s;
        cr_assert_eq(jopen(&s, path, modes[m], 0, NULL), RISK_OK);
        for (int k = 1; k <= 5; k++)
            cr_assert_eq(do_op(&s, k), RISK_OK);
        jclose(&s);
        /* reopened: the next commit must take space first */
        cr_assert_eq(jopen(&s, path, modes[m], 0, NULL), RISK_OK);
        digest d5 = take_digest(&s);
        uint64_t sz = file_size(path);
        for (int i = 0; i < 2; i++) {
            risk_journal_test_fail_reserve(1000, errs[i]); /* a full disk stays full */
            cr_assert_eq(do_op(&s, 6), RISK_EIO, "mode %d errno %d", m, errs[i]);
            cr_assert(strstr(risk_error_last(), "no room") != NULL, "%s", risk_error_last());
            risk_journal_test_fail_reserve(0, 0);
            cr_assert(dg_eq(take_digest(&s), d5));
            cr_assert_eq(file_size(path), sz);
        }
        cr_assert_eq(do_op(&s, 6), RISK_OK, "%s", risk_error_last()); /* room again */
        digest d6 = take_digest(&s);
        jclose(&s);
        cr_assert_eq(jopen(&s, path, modes[m], 0, NULL), RISK_OK);
        cr_assert(dg_eq(take_digest(&s), d6));
        hcol c = {0};
        cr_assert_eq(s.read_history(s.ctx, NULL, 0, collect, &c), RISK_OK);
        cr_assert_eq(c.n, 6);
        cr_assert_gt(c.seq[5], c.seq[4]); /* numbering goes on past the failed reservations */
        jclose(&s);
        cr_assert_eq(risk_journal_check(path, NULL), RISK_OK);
    }
}

Test(journal, full_disk_with_room_for_one_frame_only)
{
    /* R-CC-3: when a chunk cannot be had, exactly the frame's bytes are
     * enough: the second reservation attempt succeeds */
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    risk_journal_test_fail_reserve(1, ENOSPC); /* the chunk: refused */
    cr_assert_eq(do_op(&s, 1), RISK_OK, "%s", risk_error_last());
    risk_journal_test_fail_reserve(1, EIO); /* not a space problem: no second try */
    cr_assert_eq(do_op(&s, 2), RISK_EIO);
    risk_journal_test_fail_reserve(0, 0);
    cr_assert_eq(do_op(&s, 2), RISK_OK, "%s", risk_error_last());
    jclose(&s);
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, &st), RISK_OK);
    cr_assert_eq(st.records_replayed, 2);
    jclose(&s);
}

/* A poisoned journal refuses reads as well as writes: memory may hold
 * commits the disk does not. */
static void assert_refuses_everything(risk_store *s)
{
    void *txn = NULL;
    hcol c = {0};
    cr_assert_eq(s->begin(s->ctx, "user-1", &txn), RISK_EIO);
    cr_assert(strstr(risk_error_last(), "reopen") != NULL, "%s", risk_error_last());
    cr_assert_eq(s->view_user(s->ctx, "user-1", NULL, NULL), RISK_EIO);
    void *ctx = NULL; /* and the sign-in's one-line read (lib/memstore.h) */
    risk_peek p;
    cr_assert_eq(risk_store_peeker_of(s, &ctx)->peek(ctx, "user-1", 6, &p), RISK_EIO);
    cr_assert_eq(s->list_users(s->ctx, RISK_LEVEL_NONE, dg_user, NULL), RISK_EIO);
    cr_assert_eq(s->read_history(s->ctx, NULL, 0, collect, &c), RISK_EIO);
    cr_assert_eq(s->compact(s->ctx), RISK_EIO);
    cr_assert_eq(s->backup(s->ctx, path2), RISK_EIO);
}

/* The file is a whole journal, and a reopen holds exactly `records`
 * frames and the state d. */
static void assert_reopens_as(uint64_t records, digest d)
{
    risk_store s;
    risk_journal_stats st;
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, &st), RISK_OK);
    cr_assert_eq(st.records_replayed, records);
    cr_assert(dg_eq(take_digest(&s), d));
    jclose(&s);
}

Test(journal, failed_write_poisons_the_journal)
{
    /* R-CC-3: with the space reserved, only an I/O error fails the write of
     * a group; those commits are already applied in memory, so it fails
     * them (RISK_EIO, never acknowledged) and the journal refuses every
     * later write; the file is cut back to a frame boundary and a reopen
     * holds the commits before them. */
    int errs[2] = {EIO, ENOSPC};
    for (int i = 0; i < 2; i++) {
        unlink(path);
        risk_store s;
        cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
        for (int k = 1; k <= 5; k++)
            cr_assert_eq(do_op(&s, k), RISK_OK);
        digest d5 = take_digest(&s);
        risk_journal_test_fail_write(1, errs[i]);
        cr_assert_eq(do_op(&s, 6), RISK_EIO);
        cr_assert_eq(do_op(&s, 7), RISK_EIO);
        assert_refuses_everything(&s);
        jclose(&s);
        assert_reopens_as(5, d5);
    }
}

Test(journal, failed_sync_poisons_the_journal)
{
    /* R-CC-2, R-CC-3: after a failed fdatasync the page cache state is
     * unknown ("fsyncgate"): the commit fails, the journal refuses reads
     * and writes until reopened, and the file is cut back to the last good
     * sync, so the reopen shows exactly the state before that commit */
    uint32_t modes[2] = {RISK_DURABILITY_FULL, RISK_DURABILITY_NORMAL};
    for (int m = 0; m < 2; m++) {
        unlink(path);
        risk_store s;
        cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
        cr_assert_eq(do_op(&s, 1), RISK_OK);
        digest d1 = take_digest(&s);
        jclose(&s);
        cr_assert_eq(jopen(&s, path, modes[m], 0, NULL), RISK_OK);
        risk_journal_test_fail_sync(1);
        if (modes[m] == RISK_DURABILITY_FULL)
            cr_assert_eq(do_op(&s, 2), RISK_EIO);
        else { /* acknowledged, then the background sync fails */
            cr_assert_eq(do_op(&s, 2), RISK_OK);
            for (int i = 0; i < 2000 && do_op(&s, 3) != RISK_EIO; i++)
                usleep(1000);
        }
        cr_assert_eq(do_op(&s, 3), RISK_EIO);
        assert_refuses_everything(&s);
        jclose(&s);
        assert_reopens_as(1, d1);
    }
}

Test(journal, compaction_keeps_everything)
{
    /* R-CC-3, R-AU-1: compaction rewrites the live state and the full history */
    enum { N = 60 };
    digest dgs[N + 1];
    build(N, NULL, dgs);
    uint64_t before = file_size(path);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(s.compact(s.ctx), RISK_OK);
    cr_assert_lt(file_size(path), before);
    cr_assert(dg_eq(take_digest(&s), dgs[N]));
    hcol c = {0};
    cr_assert_eq(s.read_history(s.ctx, "user-1", 0, collect, &c), RISK_OK);
    cr_assert_eq(c.n, 12);
    cr_assert_eq(do_op(&s, N + 1), RISK_OK); /* appends after compaction */
    digest after = take_digest(&s);
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK);
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, &st), RISK_OK);
    cr_assert(dg_eq(take_digest(&s), after));
    cr_assert_eq(do_op(&s, N + 2), RISK_OK); /* versions were kept: updates still apply */
    jclose(&s);
}

/* An event whose user has no record: compaction writes events after their
 * user, and must still keep this one (R-CC-3). */
Test(journal, compaction_keeps_events_without_a_user)
{
    build(4, NULL, NULL);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
    void *txn;
    risk_event *e = NULL, *got = NULL;
    cr_assert_eq(s.begin(s.ctx, "ghost", &txn), RISK_OK);
    cr_assert_eq(risk_event_new(&e, "ev-ghost", "ghost", "leakedCredentials", RISK_LEVEL_HIGH, 7),
                 RISK_OK);
    cr_assert_eq(s.put_event(s.ctx, txn, e), RISK_OK);
    cr_assert_eq(s.commit(s.ctx, txn), RISK_OK);
    digest d = take_digest(&s);
    cr_assert_eq(s.compact(s.ctx), RISK_OK);
    jclose(&s);
    for (int reopen = 0; reopen < 2; reopen++) {
        cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
        cr_assert(dg_eq(take_digest(&s), d));
        cr_assert_eq(s.begin(s.ctx, NULL, &txn), RISK_OK);
        cr_assert_eq(s.get_event(s.ctx, txn, "ev-ghost", &got), RISK_OK);
        cr_assert_str_eq(risk_event_user_id(got), "ghost");
        risk_event_free(got);
        s.rollback(s.ctx, txn);
        if (reopen == 0)
            cr_assert_eq(s.compact(s.ctx), RISK_OK); /* and once more from the new order */
        jclose(&s);
    }
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK);
    risk_event_free(e);
}

Test(journal, compaction_interrupted_at_every_step)
{
    /* R-CC-3: a crash at any step of compaction leaves a journal that
     * opens with all data */
    enum { N = 20 };
    digest dgs[N + 1];
    build(N, NULL, dgs);
    for (int step = 1; step <= 5; step++) {
        risk_store s;
        cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
        risk_journal_test_compact_crash(step);
        cr_assert_eq(s.compact(s.ctx), RISK_EIO, "step %d", step);
        risk_journal_test_compact_crash(0);
        jclose(&s);
        cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK, "step %d: %s",
                     step, risk_error_last());
        cr_assert(dg_eq(take_digest(&s), dgs[N]), "step %d", step);
        jclose(&s);
    }
    risk_store s; /* a stale .tmp does not stop the next compaction */
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(s.compact(s.ctx), RISK_OK);
    cr_assert(dg_eq(take_digest(&s), dgs[N]));
    jclose(&s);
}

Test(journal, compaction_with_failing_syncs)
{
    /* R-CC-3: compaction's two syncs failing. The copy's own fdatasync
     * (the first): EIO before the rename, the journal untouched and still
     * in use. The directory's (the second, after the rename): the new file
     * is already the journal, but its name may not survive a power loss,
     * so the store is poisoned; a reopen finds every commit either way. */
    enum { N = 12 };
    digest dgs[N + 1];
    build(N, NULL, dgs);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    uint64_t before = file_size(path);
    risk_journal_test_fail_sync(1);
    cr_assert_eq(s.compact(s.ctx), RISK_EIO);
    risk_journal_test_fail_sync(0);
    cr_assert_eq(file_size(path), before);
    char tmp[sizeof path + 4];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_eq(access(tmp, F_OK), -1, "the copy was left behind");
    cr_assert(dg_eq(take_digest(&s), dgs[N]));
    cr_assert_eq(do_op(&s, N + 1), RISK_OK, "%s", risk_error_last());
    digest d = take_digest(&s);
    risk_journal_test_fail_sync(2);
    cr_assert_eq(s.compact(s.ctx), RISK_EIO);
    risk_journal_test_fail_sync(0);
    cr_assert(strstr(risk_error_last(), "directory") != NULL, "%s", risk_error_last());
    cr_assert_lt(file_size(path), before, "the rename did not happen");
    assert_refuses_everything(&s);
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&s), d));
    cr_assert_eq(do_op(&s, N + 2), RISK_OK);
    jclose(&s);
}

Test(journal, backup_while_open)
{
    /* R-CC-3: backup writes a consistent, openable copy; the journal goes on */
    risk_store s, b;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    for (int k = 1; k <= 15; k++)
        cr_assert_eq(do_op(&s, k), RISK_OK);
    digest d15 = take_digest(&s);
    cr_assert_eq(s.backup(s.ctx, path2), RISK_OK);
    cr_assert_eq(s.backup(s.ctx, path), RISK_EINVAL);
    cr_assert_eq(do_op(&s, 16), RISK_OK);
    cr_assert_eq(risk_journal_check(path2, NULL), RISK_OK);
    cr_assert_eq(jopen(&b, path2, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&b), d15));
    jclose(&b);
    jclose(&s);
    struct stat st;
    cr_assert_eq(stat(path2, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
}

typedef struct gc_arg {
    risk_store *s;
    int id, n, fails;
} gc_arg;

static void *gc_worker(void *p)
{
    gc_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        int rc;
        /* two threads removing policy-0 at once: the later commit fails
         * with ENOTFOUND (its prepare sees it gone); the redo then skips
         * the removal (do_op treats ENOTFOUND at remove time as done) */
        while ((rc = do_op(a->s, a->id + 5 * i)) == RISK_ENOTFOUND)
            ;
        a->fails += rc != RISK_OK; /* user-<id> only */
    }
    return NULL;
}

Test(journal, group_commit_all_durable)
{
    /* R-CC-1, R-CC-3: many threads committing in full mode all succeed and
     * all their commits are in the file */
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    pthread_t th[5];
    gc_arg args[5];
    for (int i = 0; i < 5; i++) {
        args[i] = (gc_arg){&s, i, 40, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, gc_worker, &args[i]), 0);
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(args[i].fails, 0);
    }
    digest d = take_digest(&s);
    cr_assert_eq(d.hist, 200);
    jclose(&s);
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, &st), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(st.records_replayed, 200);
    cr_assert(dg_eq(take_digest(&s), d));
    jclose(&s);
}

Test(journal, normal_and_off_modes)
{
    /* R-CC-3: normal syncs in the background and on close; off never syncs
     * but still writes; both replay */
    for (uint32_t mode = RISK_DURABILITY_NORMAL; mode <= RISK_DURABILITY_OFF; mode++) {
        unlink(path);
        risk_store s;
        risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
        o.durability = mode;
        o.sync_interval_ms = 5;
        cr_assert_eq(risk_journal_open(&s, path, &o, NULL), RISK_OK);
        for (int k = 1; k <= 10; k++) {
            cr_assert_eq(do_op(&s, k), RISK_OK);
            if (k == 5)
                usleep(20000);
        }
        digest d = take_digest(&s);
        jclose(&s);
        cr_assert_eq(jopen(&s, path, mode, 0, NULL), RISK_OK);
        cr_assert(dg_eq(take_digest(&s), d));
        jclose(&s);
    }
}

Test(journal, invalid_arguments)
{
    /* R-IV-1 */
    risk_store s;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    cr_assert_eq(risk_journal_open(NULL, path, NULL, NULL), RISK_EINVAL);
    cr_assert_eq(risk_journal_open(&s, NULL, NULL, NULL), RISK_EINVAL);
    cr_assert_eq(risk_journal_open(&s, "", NULL, NULL), RISK_EINVAL);
    o.version = 99;
    cr_assert_eq(risk_journal_open(&s, path, &o, NULL), RISK_EINVAL);
    cr_assert(strstr(risk_error_last(), "opts") != NULL);
    o = (risk_journal_options)RISK_JOURNAL_OPTIONS_INIT;
    o.durability = 7;
    cr_assert_eq(risk_journal_open(&s, path, &o, NULL), RISK_EINVAL);
    cr_assert_eq(risk_journal_check(NULL, NULL), RISK_EINVAL);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ENOTFOUND);
    cr_assert_eq(access(path, F_OK), -1); /* nothing created */
    cr_assert_eq(risk_journal_open(&s, path, NULL, NULL), RISK_OK);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    jclose(&s);
}

Test(journal, out_of_memory_commit_and_open)
{
    /* R-IV-3, R-CC-2: ENOMEM anywhere in a commit or an open changes
     * nothing and leaks nothing */
    build(6, NULL, NULL);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
    digest d6 = take_digest(&s);
    uint64_t sz = file_size(path);
    int rc;
    ALLOC_FAIL_SWEEP(rc, (void)0, do_op(&s, 7), {
        alloc_fail_reset();
        cr_assert(dg_eq(take_digest(&s), d6));
        cr_assert_eq(file_size(path), sz);
    });
    alloc_fail_reset();
    cr_assert_eq(rc, RISK_OK);
    jclose(&s);
    risk_store r;
    ALLOC_FAIL_SWEEP(rc, (void)0, jopen(&r, path, RISK_DURABILITY_OFF, 0, NULL), (void)0);
    alloc_fail_reset();
    cr_assert_eq(rc, RISK_OK);
    cr_assert_eq(take_digest(&r).hist, 7);
    jclose(&r);
}

static int count_hist(const risk_history *h, void *arg)
{
    (void)h;
    ++*(int *)arg;
    return 0;
}

Test(journal, through_the_engine)
{
    /* R-ST-5, R-CC-3: the engine runs on the journal like on any store */
    risk_store s;
    risk_engine *eng;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(risk_engine_new(&eng, &s, NULL), RISK_OK);
    for (int i = 0; i < 5; i++) {
        risk_event *e;
        char id[16];
        snprintf(id, sizeof id, "ev-%d", i);
        cr_assert_eq(risk_event_new(&e, id, "alice", "leakedCredentials", RISK_LEVEL_HIGH,
                                    risk_engine_now(eng) - 1000),
                     RISK_OK);
        cr_assert_eq(risk_engine_ingest(eng, "tester", e, 0), RISK_OK, "%s", risk_error_last());
        risk_event_free(e);
    }
    risk_user *u;
    cr_assert_eq(risk_engine_user(&u, eng, "alice"), RISK_OK);
    uint64_t ver = risk_user_version(u);
    risk_level lvl = risk_user_risk_level(u);
    risk_user_free(u);
    int n1 = 0;
    cr_assert_eq(risk_engine_history(eng, "alice", count_hist, &n1), RISK_OK);
    cr_assert_geq(n1, 5);
    cr_assert_eq(risk_engine_compact(eng), RISK_OK);
    risk_engine_free(eng); /* closes the store */
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(risk_engine_new(&eng, &s, NULL), RISK_OK);
    cr_assert_eq(risk_engine_user(&u, eng, "alice"), RISK_OK);
    cr_assert_eq(risk_user_version(u), ver);
    cr_assert_eq(risk_user_risk_level(u), lvl);
    risk_user_free(u);
    int n2 = 0;
    cr_assert_eq(risk_engine_history(eng, "alice", count_hist, &n2), RISK_OK);
    cr_assert_eq(n2, n1);
    risk_engine_free(eng);
}

/* ---- group commit through the engine: the wait for the disk happens
 * after the user's lock is released (R-CC-1, R-CC-3) ---- */

static int ingest(risk_engine *e, const char *id)
{
    risk_event *ev = NULL;
    int rc = risk_event_new(&ev, id, "alice", "leakedCredentials", RISK_LEVEL_LOW,
                            risk_engine_now(e)); /* now: no aging closes it */
    if (rc == RISK_OK)
        rc = risk_engine_ingest(e, "detector", ev, 0);
    risk_event_free(ev);
    return rc;
}

/* The first sync waits (up to 5 s) until another commit of alice is
 * applied in memory (her active events reach 3): that commit must get past
 * her lock while the first one waits for the disk. */
static atomic_int held, grew;
static risk_store *held_store;

static int count_active(const risk_user *u, void *arg)
{
    *(uint32_t *)arg = risk_user_active_events(u);
    return RISK_OK;
}

static void hold_first_sync(int fd)
{
    (void)fd;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&held, &expected, 1))
        return;
    for (int i = 0; i < 5000 && !atomic_load(&grew); i++) {
        usleep(1000);
        uint32_t n = 0;
        if (held_store->view_user(held_store->ctx, "alice", count_active, &n) == RISK_OK &&
            n == 3)
            atomic_store(&grew, 1);
    }
}

struct first {
    risk_engine *e;
    int rc;
};

static void *first_commit(void *arg)
{
    struct first *f = arg;
    f->rc = ingest(f->e, "ev-2");
    return NULL;
}

Test(journal, user_lock_released_while_waiting_for_the_disk)
{
    /* R-CC-1, R-CC-3, issue #5: no thread holds a user's lock while it
     * waits for the disk longer than it must. With the lock held through
     * the wait, the second ingest of alice could not commit while the
     * first sync was held. */
    risk_store s;
    risk_engine *e = NULL;
    cr_assert_eq(risk_journal_open(&s, path, NULL, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(risk_engine_new(&e, &s, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(ingest(e, "ev-1"), RISK_OK, "%s", risk_error_last());
    held_store = &s; /* the engine keeps the table it was given */
    atomic_store(&held, 0);
    atomic_store(&grew, 0);
    risk_journal_test_before_sync(hold_first_sync);
    struct first f = { e, -1 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, first_commit, &f), 0);
    while (!atomic_load(&held))
        usleep(100);
    /* the first ingest is written and waits in its sync: alice again */
    cr_assert_eq(ingest(e, "ev-3"), RISK_OK, "%s", risk_error_last());
    pthread_join(th, NULL);
    cr_assert_eq(f.rc, RISK_OK);
    cr_assert(atomic_load(&grew), "the second commit was not applied while the first waited");
    risk_journal_test_before_sync(NULL);
    risk_engine_free(e);

    /* both are durable: a reopen holds the three events */
    risk_journal_stats st = { 0 };
    cr_assert_eq(risk_journal_open(&s, path, NULL, &st), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(st.records_replayed, 3);
    cr_assert_eq(risk_engine_new(&e, &s, NULL), RISK_OK);
    risk_user *u = NULL;
    cr_assert_eq(risk_engine_user(&u, e, "alice"), RISK_OK);
    cr_assert_eq(risk_user_active_events(u), 3);
    risk_user_free(u);
    risk_engine_free(e);
}

Test(journal, failed_sync_fails_the_waiting_commit)
{
    /* R-CC-3: the wait after the lock is released still reports a failed
     * sync: the commit is not acknowledged, and the journal refuses more. */
    risk_store s;
    risk_engine *e = NULL;
    cr_assert_eq(risk_journal_open(&s, path, NULL, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(risk_engine_new(&e, &s, NULL), RISK_OK);
    risk_journal_test_fail_sync(1);
    cr_assert_eq(ingest(e, "ev-1"), RISK_EIO);
    risk_journal_test_fail_sync(0);
    cr_assert_eq(ingest(e, "ev-2"), RISK_EIO);
    risk_engine_free(e);
}

/* The first sync (a commit's) waits until the test lets it go. */
static atomic_int bk_held, bk_go;
static void hold_until_go(int fd)
{
    (void)fd;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&bk_held, &expected, 1))
        return;
    for (int i = 0; i < 5000 && !atomic_load(&bk_go); i++)
        usleep(1000);
}

/* 1 if the journal or backup at p holds event id (read-only open). */
static int holds_event(const char *p, const char *id)
{
    risk_store s;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.read_only = 1;
    cr_assert_eq(risk_journal_open(&s, p, &o, NULL), RISK_OK, "%s", risk_error_last());
    risk_event *ev = NULL;
    void *txn = NULL;
    cr_assert_eq(s.begin(s.ctx, NULL, &txn), RISK_OK);
    int rc = s.get_event(s.ctx, txn, id, &ev);
    s.rollback(s.ctx, txn);
    risk_event_free(ev);
    s.close(s.ctx);
    cr_assert(rc == RISK_OK || rc == RISK_ENOTFOUND, "%d", rc);
    return rc == RISK_OK;
}

Test(journal, backup_holds_no_commit_a_failed_sync_takes_back)
{
    /* R-CC-3: a commit is applied in memory before its sync ends; a
     * backup taken then, followed by that sync failing, held a commit
     * that failed and that the journal cut away. The backup syncs the
     * journal first: the commit is then durable and acknowledged, and in
     * both files. */
    risk_store s;
    risk_engine *e = NULL;
    cr_assert_eq(risk_journal_open(&s, path, NULL, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(risk_engine_new(&e, &s, NULL), RISK_OK);
    cr_assert_eq(ingest(e, "ev-1"), RISK_OK, "%s", risk_error_last());
    atomic_store(&bk_held, 0);
    atomic_store(&bk_go, 0);
    risk_journal_test_before_sync(hold_until_go);
    struct first f = { e, -1 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, first_commit, &f), 0); /* ingests ev-2 */
    while (!atomic_load(&bk_held))
        usleep(100);
    int brc = risk_engine_backup(e, path2);
    risk_journal_test_fail_sync(1); /* the held sync fails */
    atomic_store(&bk_go, 1);
    pthread_join(th, NULL);
    risk_journal_test_before_sync(NULL);
    risk_journal_test_fail_sync(0);
    risk_engine_free(e);
    cr_assert_eq(brc, RISK_OK, "%s", risk_error_last());
    cr_assert_eq(f.rc, RISK_OK, "the backup's sync made ev-2 durable: %d", f.rc);
    cr_assert(holds_event(path2, "ev-2"));
    cr_assert(holds_event(path, "ev-2"), "the backup holds a commit the journal lost");
}

/* ---- group commit's windows, ordered by the test hooks ---- */
#include "journal.h"

static risk_store gs; /* the store table of the two tests below */
static atomic_int g_armed, g_round3, g_w_done;
static _Thread_local int g_is_w;

static int put_key(const char *k)
{
    void *t = NULL;
    int rc = gs.begin(gs.ctx, NULL, &t);
    if (rc == RISK_OK)
        rc = gs.put_meta(gs.ctx, t, k, (const uint8_t *)"v", 1);
    if (rc == RISK_OK)
        return gs.commit(gs.ctx, t);
    gs.rollback(gs.ctx, t);
    return rc;
}
static int has_key(const char *k)
{
    void *t = NULL;
    uint8_t b[8];
    size_t n = 0;
    cr_assert_eq(gs.begin(gs.ctx, NULL, &t), RISK_OK);
    int rc = gs.get_meta(gs.ctx, t, k, b, sizeof b, &n);
    gs.rollback(gs.ctx, t);
    return rc == RISK_OK;
}
/* Wait until n frames were appended since the open. */
static void until_appended(uint64_t n)
{
    const jstore *js = gs.ctx;
    while (atomic_load(&js->appended) < n)
        usleep(200);
}
static int visit_none(const risk_history *h, void *arg)
{
    (void)h, (void)arg;
    return 0;
}
static pthread_t g_k2;
static void *put_k2(void *arg)
{
    (void)arg;
    put_key("k2"); /* fails with the journal: only its frame matters */
    return NULL;
}
static void flush_fails_during_sync(int fd)
{
    (void)fd;
    int one = 1;
    if (!atomic_compare_exchange_strong(&g_armed, &one, 0))
        return;
    /* the leader is about to sync k1's frame: k2's goes to the next buffer,
     * whose write (a history read flushes it) fails and cuts the file back
     * to the last sync's end, below k1 */
    cr_assert_eq(pthread_create(&g_k2, NULL, put_k2, NULL), 0);
    until_appended(3);
    risk_journal_test_fail_write(1, EIO);
    cr_assert_eq(gs.read_history(gs.ctx, NULL, 0, visit_none, NULL), RISK_EIO);
}

Test(journal, write_failed_during_a_sync_fails_its_commits)
{
    /* R-CC-3, R-IV-2: a commit is acknowledged only if its frame is
     * durable. Here another thread's write fails while the leader syncs
     * k1's frame and cuts the file back below it; the sync itself then
     * succeeds. k1 must fail (it was acknowledged, and lost on reopen). */
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT; /* full */
    cr_assert_eq(risk_journal_open(&gs, path, &o, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(put_key("k0"), RISK_OK);
    risk_journal_test_before_sync(flush_fails_during_sync);
    atomic_store(&g_armed, 1);
    cr_assert_eq(put_key("k1"), RISK_EIO);
    pthread_join(g_k2, NULL); /* before the close */
    risk_journal_test_before_sync(NULL);
    gs.close(gs.ctx);
    cr_assert_eq(risk_journal_open(&gs, path, &o, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(has_key("k0"), 1);
    cr_assert_eq(has_key("k1"), 0);
    gs.close(gs.ctx);
}

static pthread_t g_b, g_c;
static void *put_b(void *arg)
{
    (void)arg;
    cr_assert_eq(put_key("b"), RISK_OK);
    return NULL;
}
static void *put_c(void *arg)
{
    (void)arg;
    g_is_w = 1;
    int rc = put_key("c");
    atomic_store(&g_w_done, rc == RISK_OK ? 1 : 2);
    return NULL;
}
static void order_syncs(int fd)
{
    (void)fd;
    static atomic_int n;
    int k = atomic_fetch_add(&n, 1) + 1;
    if (k == 1) { /* sync 1 (a): b is appended meanwhile */
        cr_assert_eq(pthread_create(&g_b, NULL, put_b, NULL), 0);
        until_appended(2);
    } else if (k == 3) { /* sync 3 (c) runs: let W go on, then end it */
        atomic_store(&g_round3, 1);
        usleep(200000);
    }
}
static void before_publish(uint32_t gen)
{
    if (gen == 2) { /* round 2 took b only: W appends c now */
        cr_assert_eq(pthread_create(&g_c, NULL, put_c, NULL), 0);
        until_appended(3);
        usleep(50000); /* W reads sync 1 as the last published */
    }
}
static void waiter_stalls(uint32_t gen, uint64_t target, uint64_t ticket)
{
    if (g_is_w && gen == 1 && target < ticket) /* W chose sync 2's word */
        while (!atomic_load(&g_round3))
            usleep(1000);
}

Test(journal, a_waiter_late_to_sleep_is_still_woken, .timeout = 30)
{
    /* R-CC-3, issue #5 (group commit): W's frame c is covered by sync 3.
     * W read sync 1 as the last published one and picked the word of the
     * next, sync 2, which did not cover c; it stalled until sync 2 had
     * ended (its word changed) and sync 3 was running, then read that word.
     * Sleeping on it, W was never woken: sync 3 changes the other word and
     * nothing came after. W must see that syncs were published meanwhile. */
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    cr_assert_eq(risk_journal_open(&gs, path, &o, NULL), RISK_OK, "%s", risk_error_last());
    risk_journal_test_before_sync(order_syncs);
    risk_journal_test_group_hooks(before_publish, waiter_stalls);
    cr_assert_eq(put_key("a"), RISK_OK);
    for (int i = 0; i < 100 && !atomic_load(&g_w_done); i++)
        usleep(50000);
    cr_assert_eq(atomic_load(&g_w_done), 1, "W's commit never returned");
    pthread_join(g_b, NULL);
    pthread_join(g_c, NULL);
    risk_journal_test_group_hooks(NULL, NULL);
    risk_journal_test_before_sync(NULL);
    cr_assert_eq(has_key("a") + has_key("b") + has_key("c"), 3);
    gs.close(gs.ctx);
}

static atomic_int bw_calls, bw_in_hook, bw_release, bw_waiting, bw_w_done;
static void bw_hold_first(int fd)
{
    (void)fd;
    if (atomic_fetch_add(&bw_calls, 1) != 0)
        return;
    atomic_store(&bw_in_hook, 1); /* the leader's sync of frame 1 */
    for (int i = 0; i < 10000 && !atomic_load(&bw_release); i++)
        usleep(1000);
}
static void bw_waiter(uint32_t gen, uint64_t target, uint64_t ticket)
{
    (void)gen, (void)target;
    if (ticket == 2)
        atomic_store(&bw_waiting, 1);
}
static pthread_t bw_a, bw_w;
static void *bw_put_a(void *arg)
{
    (void)arg;
    cr_assert_eq(put_key("a"), RISK_OK);
    return NULL;
}
static void *bw_put_w(void *arg)
{
    (void)arg;
    atomic_store(&bw_w_done, put_key("w") == RISK_OK ? 1 : 2);
    return NULL;
}

Test(journal, a_backup_sync_wakes_the_commits_it_covers, .timeout = 30)
{
    /* R-CC-3, issue #5: a backup syncs the journal and publishes the
     * commits it covered as durable. Their waiters sleep on the word of a
     * leader's next sync; the leader, finding nothing left to sync, stops
     * leading without changing it, so the backup must wake them: W's
     * commit used to wait for ever once traffic stopped. */
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT; /* full */
    cr_assert_eq(risk_journal_open(&gs, path, &o, NULL), RISK_OK, "%s", risk_error_last());
    risk_journal_test_before_sync(bw_hold_first);
    risk_journal_test_group_hooks(NULL, bw_waiter);
    cr_assert_eq(pthread_create(&bw_a, NULL, bw_put_a, NULL), 0);
    while (!atomic_load(&bw_in_hook))
        usleep(200); /* A leads sync 1 (frame 1), held before its fdatasync */
    cr_assert_eq(pthread_create(&bw_w, NULL, bw_put_w, NULL), 0);
    while (!atomic_load(&bw_waiting))
        usleep(200); /* W: frame 2, about to sleep for sync 2 */
    usleep(100000);
    cr_assert_eq(gs.backup(gs.ctx, path2), RISK_OK, "%s", risk_error_last());
    atomic_store(&bw_release, 1);
    pthread_join(bw_a, NULL);
    for (int i = 0; i < 100 && !atomic_load(&bw_w_done); i++)
        usleep(50000);
    int done = atomic_load(&bw_w_done);
    risk_journal_test_group_hooks(NULL, NULL);
    risk_journal_test_before_sync(NULL);
    if (done == 0) { /* wake it for the close (a commit of another key leads a sync) */
        cr_assert_eq(put_key("x"), RISK_OK);
        pthread_join(bw_w, NULL);
        cr_assert(done != 0, "W's commit, durable since the backup, was never woken");
    }
    pthread_join(bw_w, NULL);
    cr_assert_eq(done, 1);
    cr_assert_eq(has_key("a") + has_key("w"), 2);
    gs.close(gs.ctx);
}

/* ---- session 7 review: compaction and backup at their edges ---- */

/* The committer's group-commit sync waits in the hook until compaction
 * has begun, then fails. */
static atomic_int sf_calls, sf_go, sf_in;
static void fail_held_sync(int fd)
{
    (void)fd;
    if (atomic_fetch_add(&sf_calls, 1) != 0)
        return;
    atomic_store(&sf_in, 1);
    for (int i = 0; i < 5000 && !atomic_load(&sf_go); i++)
        usleep(1000);
    risk_journal_test_fail_sync(1); /* this sync fails */
}

struct sf_commit {
    risk_store *s;
    int rc;
};
static void *sf_committer(void *arg)
{
    struct sf_commit *c = arg;
    c->rc = do_op(c->s, 6);
    return NULL;
}
static void *sf_release(void *arg)
{
    (void)arg;
    usleep(200000); /* compaction is under way by now */
    atomic_store(&sf_go, 1);
    return NULL;
}

Test(journal, compaction_beside_a_failing_sync)
{
    /* R-CC-3, R-IV-2: a group-commit sync in flight fails while compaction
     * copies the state. The copy must not bring back a commit that sync
     * failed: compaction fails (the store is poisoned), and the reopen
     * holds op 6 exactly when its commit was acknowledged. */
    risk_store s;
    unlink(path);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    for (int k = 1; k <= 5; k++)
        cr_assert_eq(do_op(&s, k), RISK_OK);
    atomic_store(&sf_calls, 0), atomic_store(&sf_go, 0), atomic_store(&sf_in, 0);
    risk_journal_test_before_sync(fail_held_sync);
    struct sf_commit c = {&s, 1};
    pthread_t tc, tr;
    cr_assert_eq(pthread_create(&tc, NULL, sf_committer, &c), 0);
    while (!atomic_load(&sf_in))
        usleep(1000);
    cr_assert_eq(pthread_create(&tr, NULL, sf_release, NULL), 0);
    int rc = s.compact(s.ctx);
    pthread_join(tc, NULL);
    pthread_join(tr, NULL);
    risk_journal_test_before_sync(NULL);
    risk_journal_test_fail_sync(0);
    cr_assert_eq(rc, RISK_EIO, "compaction over a failed sync: %d", rc);
    assert_refuses_everything(&s);
    jclose(&s);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    hcol h = {0};
    cr_assert_eq(s.read_history(s.ctx, NULL, 0, collect, &h), RISK_OK);
    cr_assert_eq(h.n, c.rc == RISK_OK ? 6 : 5, "commit rc %d, %zu items", c.rc, (size_t)h.n);
    jclose(&s);
}

Test(journal, compaction_through_a_symlink)
{
    /* R-CC-3, issue #5 item 5: a journal opened through a symbolic link is
     * compacted in the file the link names; the link stays a link, and a
     * second writer by either name is still RISK_EBUSY. */
    char link[160];
    snprintf(link, sizeof link, "%s.link", path);
    unlink(path), unlink(link);
    build(6, NULL, NULL);
    cr_assert_eq(symlink(path, link), 0);
    risk_store s, t;
    cr_assert_eq(jopen(&s, link, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(s.compact(s.ctx), RISK_OK, "%s", risk_error_last());
    struct stat ls;
    cr_assert_eq(lstat(link, &ls), 0);
    int is_link = S_ISLNK(ls.st_mode);
    cr_assert(is_link, "compaction replaced the link");
    cr_assert_eq(jopen(&t, path, RISK_DURABILITY_FULL, 0, NULL), RISK_EBUSY);
    cr_assert_eq(jopen(&t, link, RISK_DURABILITY_FULL, 0, NULL), RISK_EBUSY);
    cr_assert_eq(do_op(&s, 7), RISK_OK);
    digest d = take_digest(&s);
    jclose(&s);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&s), d));
    jclose(&s);
    unlink(link);
}

Test(journal, backup_refuses_an_open_journal)
{
    /* R-CC-3: a backup onto a journal another store has open for writing
     * would cut that store off from its file (its later commits lost):
     * RISK_EBUSY, both unchanged. Closed, the same path may be replaced. */
    unlink(path), unlink(path2);
    build(3, NULL, NULL);
    risk_store a, b;
    cr_assert_eq(jopen(&a, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(jopen(&b, path2, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(do_op(&b, 1), RISK_OK);
    digest db = take_digest(&b), da = take_digest(&a);
    cr_assert_eq(a.backup(a.ctx, path2), RISK_EBUSY, "%s", risk_error_last());
    cr_assert_eq(do_op(&b, 2), RISK_OK);
    db = take_digest(&b);
    jclose(&b);
    cr_assert_eq(jopen(&b, path2, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&b), db));
    jclose(&b);
    cr_assert_eq(a.backup(a.ctx, path2), RISK_OK, "%s", risk_error_last());
    jclose(&a);
    cr_assert_eq(jopen(&b, path2, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&b), da));
    jclose(&b);
}

Test(journal, compaction_out_of_memory_changes_nothing)
{
    /* R-IV-3: every allocation of a compaction or backup fails in turn:
     * RISK_ENOMEM means the journal (or the backup's path) was not
     * replaced and the store goes on unpoisoned. */
    build(8, NULL, NULL);
    for (int copy = 0; copy < 2; copy++)
        for (int n = 1;; n++) {
            risk_store s;
            unlink(path2);
            cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
            struct stat before, after;
            cr_assert_eq(stat(path, &before), 0);
            digest d = take_digest(&s);
            alloc_fail_install(n);
            int rc = copy ? s.backup(s.ctx, path2) : s.compact(s.ctx);
            alloc_fail_reset();
            if (rc == RISK_OK) {
                jclose(&s);
                break;
            }
            cr_assert_eq(rc, RISK_ENOMEM, "%s at allocation %d: %d %s", copy ? "backup" : "compact",
                         n, rc, risk_error_last());
            cr_assert_eq(stat(path, &after), 0);
            cr_assert_eq(before.st_ino, after.st_ino, "allocation %d: the journal was replaced",
                         n);
            cr_assert_eq(access(path2, F_OK), -1, "allocation %d: the backup was written", n);
            cr_assert(dg_eq(take_digest(&s), d));
            cr_assert_eq(do_op(&s, 9), RISK_OK, "allocation %d: %s", n, risk_error_last());
            jclose(&s);
            build(8, NULL, NULL);
        }
}

Test(journal, copy_never_cuts_a_scratch_name_in_use)
{
    /* R-CC-3: the scratch file of a backup to X (or a compaction of X) is
     * X.tmp; if that name is another store's open journal, the copy fails
     * with RISK_EBUSY and that journal keeps every commit. */
    char tmp[sizeof path + 4], other[sizeof path2 + 4];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(other, sizeof other, "%s.tmp", path2);
    unlink(path), unlink(path2), unlink(tmp), unlink(other);
    build(3, NULL, NULL);
    risk_store a, b, c;
    cr_assert_eq(jopen(&a, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(jopen(&b, other, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(jopen(&c, tmp, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(do_op(&b, 1), RISK_OK);
    cr_assert_eq(do_op(&c, 1), RISK_OK);
    digest db = take_digest(&b), dc = take_digest(&c), da = take_digest(&a);
    cr_assert_eq(a.backup(a.ctx, path2), RISK_EBUSY, "%s", risk_error_last());
    cr_assert_eq(access(path2, F_OK), -1, "the backup left its destination behind");
    cr_assert_eq(a.compact(a.ctx), RISK_EBUSY, "%s", risk_error_last());
    cr_assert(dg_eq(take_digest(&a), da));
    cr_assert_eq(do_op(&a, 4), RISK_OK); /* a goes on */
    jclose(&b), jclose(&c);
    cr_assert_eq(jopen(&b, other, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&b), db));
    jclose(&b);
    cr_assert_eq(jopen(&c, tmp, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&c), dc));
    jclose(&c);
    jclose(&a);
    unlink(tmp), unlink(other);
}

/* While a backup writes its copy, its destination is locked: a store that
 * opens it for writing then gets RISK_EBUSY (and cannot commit to a file
 * the backup's rename is about to replace). */
static atomic_int dst_probe_rc;
static void open_dst_during_copy(int fd)
{
    (void)fd;
    if (atomic_load(&dst_probe_rc) != 1)
        return; /* the first sync only: the copy's, before its rename */
    risk_store t;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = RISK_DURABILITY_OFF;
    int rc = risk_journal_open(&t, path2, &o, NULL);
    if (rc == RISK_OK)
        t.close(t.ctx);
    atomic_store(&dst_probe_rc, rc);
}

Test(journal, backup_destination_is_locked_while_copying)
{
    /* R-CC-3: also when the destination did not exist before the backup. */
    unlink(path2);
    build(3, NULL, NULL);
    risk_store a;
    cr_assert_eq(jopen(&a, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
    digest da = take_digest(&a);
    atomic_store(&dst_probe_rc, 1);
    risk_journal_test_before_sync(open_dst_during_copy); /* the copy's own sync */
    int rc = a.backup(a.ctx, path2);
    risk_journal_test_before_sync(NULL);
    cr_assert_eq(rc, RISK_OK, "%s", risk_error_last());
    cr_assert_eq(atomic_load(&dst_probe_rc), RISK_EBUSY);
    jclose(&a);
    cr_assert_eq(jopen(&a, path2, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&a), da));
    jclose(&a);
}

Test(journal, created_through_a_dangling_link)
{
    /* A journal path that is a symbolic link to a file not made yet (the
     * operator points the link at the disk first): the open makes that
     * file, and the link stays a link. */
    char target[160], link[160];
    snprintf(target, sizeof target, "%s.target", path);
    snprintf(link, sizeof link, "%s.dangling", path);
    unlink(target), unlink(link);
    cr_assert_eq(symlink(target, link), 0);
    risk_store s;
    cr_assert_eq(jopen(&s, link, RISK_DURABILITY_FULL, 0, NULL), RISK_OK, "%s",
                 risk_error_last());
    cr_assert_eq(do_op(&s, 1), RISK_OK);
    digest d = take_digest(&s);
    jclose(&s);
    struct stat ls;
    cr_assert_eq(lstat(link, &ls), 0);
    int is_link = S_ISLNK(ls.st_mode);
    cr_assert(is_link);
    cr_assert_eq(jopen(&s, target, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&s), d));
    jclose(&s);
    unlink(link), unlink(target);
}

/* risk_engine_sync: every operation that returned is durable after it, in
 * any durability mode (one fdatasync of the journal); a failing sync is
 * RISK_EIO and poisons the journal, whose reopen holds what the last
 * good sync covered (R-CC-3). Other stores have no such step. */
Test(journal, engine_sync_in_every_mode)
{
    uint32_t modes[3] = {RISK_DURABILITY_OFF, RISK_DURABILITY_NORMAL, RISK_DURABILITY_FULL};
    for (int m = 0; m < 3; m++) {
        unlink(path);
        risk_store s;
        risk_engine *e = NULL;
        jopen_idle(&s, modes[m]); /* the background sync never comes */
        cr_assert_eq(risk_engine_new(&e, &s, NULL), RISK_OK);
        cr_assert_eq(ingest(e, "ev-1"), RISK_OK);
        atomic_store(jfx_syncs(), 0);
        risk_journal_test_before_sync(jfx_count_sync);
        cr_assert_eq(risk_engine_sync(e), RISK_OK, "%s", risk_error_last());
        risk_journal_test_before_sync(NULL);
        cr_assert_eq(atomic_load(jfx_syncs()), modes[m] == RISK_DURABILITY_FULL ? 0 : 1,
                     "mode %u", modes[m]);
        cr_assert_eq(ingest(e, "ev-2"), RISK_OK);
        if (modes[m] != RISK_DURABILITY_FULL) {
            risk_journal_test_fail_sync(1);
            cr_assert_eq(risk_engine_sync(e), RISK_EIO);
            risk_journal_test_fail_sync(0);
            cr_assert_eq(ingest(e, "ev-3"), RISK_EIO); /* poisoned */
        }
        risk_engine_free(e);
        hcol c = {0};
        cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
        cr_assert_eq(s.read_history(s.ctx, NULL, 0, collect, &c), RISK_OK);
        /* normal: cut back to the last good sync; off promises nothing and
         * cuts nothing; full: ev-2 was durable when it returned */
        cr_assert_eq(c.n, modes[m] == RISK_DURABILITY_NORMAL ? 1 : 2, "mode %u: %zu items",
                     modes[m], (size_t)c.n);
        jclose(&s);
    }
    risk_store m;
    risk_engine *e = NULL;
    cr_assert_eq(risk_memory_store_new(&m), RISK_OK);
    cr_assert_eq(risk_engine_new(&e, &m, NULL), RISK_OK);
    cr_assert_eq(risk_engine_sync(e), RISK_EUNSUPPORTED);
    risk_engine_free(e);
    cr_assert_eq(risk_engine_sync(NULL), RISK_EINVAL);
    risk_journal_options ro = RISK_JOURNAL_OPTIONS_INIT;
    ro.read_only = 1;
    cr_assert_eq(risk_journal_open(&m, path, &ro, NULL), RISK_OK);
    cr_assert_eq(risk_engine_new(&e, &m, NULL), RISK_OK);
    cr_assert_eq(risk_engine_sync(e), RISK_EREADONLY);
    risk_engine_free(e);
}
