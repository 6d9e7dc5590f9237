/* Group commit through the engine (lib/store_journal.c, lib/engine.c): a
 * commit in full durability waits for the disk after the engine released
 * the user's lock, so the next operation on the same user is written
 * while the first one's sync runs, and both are durable when they return
 * (R-CC-1, R-CC-3). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64], path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/risk-jgroup-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/j", dir);
}

static void teardown(void)
{
    risk_journal_test_before_sync(NULL);
    unlink(path);
    rmdir(dir);
}

TestSuite(journal_group, .init = setup, .fini = teardown);

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

/* The first sync waits (up to 5 s) until the file grows past its size at
 * that moment: another commit must be written while it is held. */
static atomic_int held, grew;

static void hold_first_sync(int fd)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&held, &expected, 1))
        return;
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    off_t size = st.st_size;
    for (int i = 0; i < 5000 && !atomic_load(&grew); i++) {
        usleep(1000);
        if (fstat(fd, &st) == 0 && st.st_size > size)
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

Test(journal_group, user_lock_released_while_waiting_for_the_disk)
{
    /* R-CC-1, R-CC-3, issue #5: no thread holds a user's lock while it
     * waits for the disk longer than it must. Before this, the second
     * ingest of alice waited for the first one's lock, so the file could
     * not grow while the first sync was held. */
    risk_store s;
    risk_engine *e = NULL;
    cr_assert_eq(risk_journal_open(&s, path, NULL, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(risk_engine_new(&e, &s, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(ingest(e, "ev-1"), RISK_OK, "%s", risk_error_last());
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
    cr_assert(atomic_load(&grew), "the second commit was not written while the first waited");
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

Test(journal_group, failed_sync_fails_the_waiting_commit)
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
