/* Behaviour of history items and of the journal's open, close and sync
 * paths that the other suites did not pin down.
 *
 * Found by a fourth round of mutation testing (2026-12-07) of
 * lib/validate.c, record.c, history.c, enums.c, store_journal.c and
 * score.c: each test kills at least one change to those files that the
 * other suites let through (the mutant is named in the test's comment;
 * validate.c, record.c, enums.c and score.c had no such survivor). The
 * journal tests run in the journal fixture's suite (temp dir removed,
 * fault hooks reset). */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "journal_fixture.h"
#include "record_fixture.h"

TestSuite(mutants4, .fini = alloc_fail_reset);

/* SPEC §2 History item: the chain is 32 bytes, and set_chain stores every
 * one of them. (Mutant H6: memcpy of 31 bytes left the last one zero.) */
Test(mutants4, history_set_chain_stores_all_32_bytes)
{
    risk_history *h = NULL, *d = NULL;
    uint8_t chain[32];
    for (int i = 0; i < 32; i++)
        chain[i] = (uint8_t)(0xA0 + i);
    cr_assert(eq(int, risk_history_new(&h, 1, 0, "admin", RISK_HISTORY_INGEST, "u", NULL, NULL),
                 RISK_OK));
    cr_assert(eq(int, risk_history_set_chain(h, chain), RISK_OK));
    cr_assert(eq(int, memcmp(risk_history_chain(h), chain, 32), 0));
    cr_assert(eq(int, risk_history_dup(&d, h), RISK_OK));
    cr_assert(eq(int, memcmp(risk_history_chain(d), chain, 32), 0));
    risk_history_free(h);
    risk_history_free(d);
}

/* ------------------------------------------------------------ journal */

/* The journal's options are checked at the edges of their ranges (R-IV-1):
 * sync_interval_ms up to one hour exactly, read_only 0 or 1. Nothing is
 * created by a refused open. (Mutants J11: 3600001 ms accepted; J18: the
 * read_only check dropped.) */
Test(journal, m4_options_bounds)
{
    risk_store s;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.sync_interval_ms = 3600001u;
    cr_assert_eq(risk_journal_open(&s, path, &o, NULL), RISK_EINVAL);
    cr_assert(strstr(risk_error_last(), "sync_interval_ms") != NULL);
    o = (risk_journal_options)RISK_JOURNAL_OPTIONS_INIT;
    o.read_only = 2;
    cr_assert_eq(risk_journal_open(&s, path, &o, NULL), RISK_EINVAL);
    cr_assert(strstr(risk_error_last(), "read_only") != NULL);
    cr_assert_eq(access(path, F_OK), -1);
    o = (risk_journal_options)RISK_JOURNAL_OPTIONS_INIT;
    o.sync_interval_ms = 3600000u; /* the bound itself is fine */
    cr_assert_eq(risk_journal_open(&s, path, &o, NULL), RISK_OK, "%s", risk_error_last());
    jclose(&s);
}

/* A read-only open never writes (R-CC-3, "open read-only beside a
 * writer"): an empty file (a writer that created it and has not written
 * its header yet) opens read-only as an empty journal and stays 0 bytes.
 * (Mutant J7: the read-only open initialised the file: EIO on its
 * read-only descriptor.) */
Test(journal, m4_read_only_open_of_an_empty_file_writes_nothing)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    risk_store r;
    risk_journal_stats st;
    int rc = jopen(&r, path, RISK_DURABILITY_FULL, 1, &st);
    cr_assert_eq(rc, RISK_OK, "%s", risk_error_last());
    cr_assert_eq(st.records_replayed, 0);
    jclose(&r);
    cr_assert_eq(file_size(path), 0);
}

/* Durability normal: what was committed since the last background sync is
 * synced when the journal is closed (R-CC-3; docs: "normal syncs in the
 * background and on close"). The interval here is an hour, so only the
 * close can sync. (Mutant J5: the close-time fdatasync dropped.) */
Test(journal, m4_normal_mode_syncs_on_close)
{
    risk_store s;
    jopen_idle(&s, RISK_DURABILITY_NORMAL);
    cr_assert_eq(do_op(&s, 1), RISK_OK);
    cr_assert_eq(do_op(&s, 2), RISK_OK);
    atomic_store(jfx_syncs(), 0);
    risk_journal_test_before_sync(jfx_count_sync);
    jclose(&s);
    risk_journal_test_before_sync(NULL);
    cr_assert_eq(atomic_load(jfx_syncs()), 1);
}

/* Durability off never syncs (R-CC-3; include/librisk.h risk_durability):
 * creating the file syncs neither it nor its directory, the background
 * thread writes the buffered frames every interval but runs no fdatasync,
 * and neither does the close. A 1 ms interval gives the thread many
 * rounds; the assertion is that none of them syncs, so the test cannot
 * fail for want of time.
 * (Mutants J4: the thread's durability check dropped, off mode synced
 * in the background; J22: a new file's header and directory synced in off
 * mode too.) */
Test(journal, m4_off_mode_never_syncs)
{
    risk_store s;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = RISK_DURABILITY_OFF;
    o.sync_interval_ms = 1;
    atomic_store(jfx_syncs(), 0);
    risk_journal_test_before_sync(jfx_count_sync);
    cr_assert_eq(risk_journal_open(&s, path, &o, NULL), RISK_OK);
    for (int k = 1; k <= 5; k++) {
        cr_assert_eq(do_op(&s, k), RISK_OK);
        usleep(20000);
    }
    usleep(100000);
    jclose(&s);
    risk_journal_test_before_sync(NULL);
    cr_assert_eq(atomic_load(jfx_syncs()), 0);
    /* the frames were still written: a reopen holds them */
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 1, &st), RISK_OK);
    cr_assert_eq(st.records_replayed, 5);
    jclose(&s);
}
