/* The engine's fault-injection and allocation sweeps of
 * tests/test_atomicity.c again on the journal store (issue #5: the store
 * fails at every callback, or the k-th allocation fails, for every
 * operation; the store holds what it held, and so does its file after a
 * reopen), then the journal's own failures for every operation:
 * - no room on the disk (ENOSPC, or EIO while the file grows): the
 *   operation fails, memory and file are as before, and the store goes on;
 * - a failed fdatasync: the operation fails, the journal refuses reads and
 *   writes until reopened (its memory may hold what the disk does not),
 *   and the reopened file holds exactly the state before the operation.
 * R-CC-2, R-CC-3, R-IV-3. */
#include <criterion/criterion.h>

#include "alloc_fail.h"
#include "internal.h"
#include "store_dump.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static char sweep_dir[64], sweep_path[128];
static uint32_t sweep_durability = RISK_DURABILITY_OFF;

static void sweep_setup(void)
{
    strcpy(sweep_dir, "/tmp/risk-sweep-XXXXXX");
    cr_assert_not_null(mkdtemp(sweep_dir));
    snprintf(sweep_path, sizeof sweep_path, "%s/j", sweep_dir);
    sweep_durability = RISK_DURABILITY_OFF;
}

static void sweep_teardown(void)
{
    risk_journal_test_fail_reserve(0, 0);
    risk_journal_test_fail_sync(0);
    risk_journal_test_reserve_chunk(1u << 20);
    char tmp[160];
    unlink(sweep_path);
    snprintf(tmp, sizeof tmp, "%s.tmp", sweep_path);
    unlink(tmp);
    rmdir(sweep_dir);
}

TestSuite(journal_sweep, .init = sweep_setup, .fini = sweep_teardown, .timeout = 900);

/* A new journal each time (durability off: the sweeps open thousands). */
static int inner_open(risk_store *s)
{
    unlink(sweep_path);
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = sweep_durability;
    return risk_journal_open(s, sweep_path, &o, NULL);
}

/* What the closed journal's file holds, reopened, equals want. */
static void check_file(const uint8_t *want, size_t len)
{
    risk_store s;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.read_only = 1;
    cr_assert_eq(risk_journal_open(&s, sweep_path, &o, NULL), RISK_OK, "%s", risk_error_last());
    uint8_t *buf = NULL;
    size_t n = 0;
    cr_assert_eq(store_dump(&s, &buf, &n), RISK_OK, "%s", risk_error_last());
    cr_assert(n == len && memcmp(buf, want, n) == 0, "the reopened journal differs");
    free(buf);
    s.close(s.ctx);
}

#define ATOMICITY_SUITE journal_sweep
#include "test_atomicity.c"

/* R-CC-2, R-CC-3: the disk has no room for an operation's frame: it fails
 * with RISK_EIO before anything changed (the space is reserved before the
 * commit applies), the file reopens as before, and once there is room the
 * same operation succeeds on the same store. */
Test(journal_sweep, full_disk_fails_every_operation_cleanly, .fini = close_engine)
{
    int errs[2] = {ENOSPC, EIO};
    risk_journal_test_reserve_chunk(0); /* every commit reserves */
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        for (int e = 0; e < 2; e++) {
            open_populated();
            size_t l0, l1;
            uint8_t *before = dump(&l0);
            risk_journal_test_fail_reserve(1000, errs[e]);
            int rc = ops[i].fn();
            risk_journal_test_fail_reserve(0, 0);
            cr_assert(eq(int, rc, RISK_EIO), "%s: %s", ops[i].name, risk_error_last());
            uint8_t *after = dump(&l1);
            cr_assert(same(before, l0, after, l1), "%s: store changed on a full disk",
                      ops[i].name);
            cr_assert(eq(int, ops[i].fn(), RISK_OK), "%s after room came back: %s",
                      ops[i].name, risk_error_last());
            close_engine();
            free(after);
            /* and what a full disk left in the file: exactly the before */
            open_populated();
            risk_journal_test_fail_reserve(1000, errs[e]);
            rc = ops[i].fn();
            risk_journal_test_fail_reserve(0, 0);
            cr_assert(eq(int, rc, RISK_EIO));
            close_engine();
            check_file(before, l0);
            free(before);
        }
    }
}

/* R-CC-2, R-CC-3: the sync of an operation's commit fails: the operation
 * fails, the journal refuses reads and writes (its memory shows a commit
 * the disk may not have), and the reopened file holds exactly the state
 * before the operation (cut back to the last good sync). */
Test(journal_sweep, failed_sync_fails_every_operation, .fini = close_engine)
{
    sweep_durability = RISK_DURABILITY_FULL;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        open_populated();
        size_t l0;
        uint8_t *before = dump(&l0);
        risk_journal_test_fail_sync(1);
        int rc = ops[i].fn();
        risk_journal_test_fail_sync(0);
        cr_assert(eq(int, rc, RISK_EIO), "%s: %s", ops[i].name, risk_error_last());
        risk_user *u = NULL;
        cr_assert(eq(int, risk_engine_user(&u, E, "alice"), RISK_EIO), "%s", ops[i].name);
        close_engine();
        check_file(before, l0);
        free(before);
    }
}
