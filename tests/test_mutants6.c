/* What the guard in front of a host's store checks, the in-place reading
 * of history items, and compaction and backup of the journal, where the
 * other suites did not pin them down.
 *
 * Found by a sixth round of mutation testing (2026-12-07) of
 * lib/journal_compact.c, lib/journal_hist.c and lib/store_guard.c: each
 * test kills at least one change to those files that the other suites let
 * through (the mutant is named in the test's comment). The guard's tests
 * call the guard's table directly (risk_store_guard over a host table made
 * with tests/fwd_store.h), so
 * each checks one row of docs/store.md "What the engine checks"; the
 * journal tests run in the journal fixture's suite (temp dir removed,
 * fault hooks reset). */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "journal_fixture.h"
#include "fwd_store.h"
#include "engine.h"
#include "journal.h"

/* ------------------------------------------------------------ the guard */

static risk_store HOST, G; /* the host's table; the guard in front of it */

static void guard_setup(void)
{
    cr_assert(eq(int, fwd_memory(&HOST), RISK_OK));
    risk_store_guard(&G, &HOST);
}

static void guard_teardown(void)
{
    FWD.in.close(FWD.in.ctx);
    alloc_fail_reset();
}

TestSuite(mutants6, .init = guard_setup, .fini = guard_teardown);

/* a visitor that counts its calls and returns ret */
static int calls;
static int ret;
static int count_fn(const void *rec, void *arg)
{
    (void)rec, (void)arg;
    calls++;
    return ret;
}
static int count_user(const risk_user *u, void *arg) { return count_fn(u, arg); }
static int count_event(const risk_event *e, void *arg) { return count_fn(e, arg); }
static int count_history(const risk_history *h, void *arg) { return count_fn(h, arg); }
static int count_policy(const risk_policy *p, void *arg) { return count_fn(p, arg); }

/* ---- host callbacks that misbehave in one way each ---- */

static int h_meta_everify(void *c, void *t, const char *k, uint8_t *b, size_t cap, size_t *l)
{
    (void)c, (void)t, (void)k, (void)b, (void)cap, (void)l;
    return RISK_EVERIFY;
}

static int h_compact_odd(void *c)
{
    (void)c;
    return 7;
}

/* commits (the inner transaction too), then says 1 */
static int h_commit_odd(void *c, void *t)
{
    (void)c;
    int rc = FWD.in.commit(FWD.in.ctx, t);
    return rc ? rc : 1;
}

/* visits two users and ignores what the visitor says */
static int h_users_go_on(void *c, risk_level min, risk_user_visit_fn fn, void *a)
{
    (void)c, (void)min;
    risk_user *u = NULL, *v = NULL;
    cr_assert(eq(int, risk_user_new(&u, "alice"), RISK_OK));
    cr_assert(eq(int, risk_user_new(&v, "bob"), RISK_OK));
    (void)fn(u, a);
    (void)fn(v, a);
    risk_user_free(u);
    risk_user_free(v);
    return RISK_OK;
}

/* visits two of the user's events and ignores what the visitor says */
static int h_events_go_on(void *c, void *t, const char *user, risk_event_visit_fn fn, void *a)
{
    (void)c, (void)t;
    risk_event *e1 = NULL, *e2 = NULL;
    cr_assert(eq(int, risk_event_new(&e1, "e1", user, "leakedCredentials", RISK_LEVEL_LOW, 1000),
                 RISK_OK));
    cr_assert(eq(int, risk_event_new(&e2, "e2", user, "leakedCredentials", RISK_LEVEL_LOW, 2000),
                 RISK_OK));
    (void)fn(e1, a);
    (void)fn(e2, a);
    risk_event_free(e1);
    risk_event_free(e2);
    return RISK_OK;
}

/* visits one policy, then fails */
static int h_policies_then_eio(void *c, void *t, risk_policy_visit_fn fn, void *a)
{
    (void)c, (void)t;
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "p", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    (void)fn(p, a);
    risk_policy_free(p);
    return RISK_EIO;
}

/* visits NULL for a policy */
static int h_policies_null(void *c, void *t, risk_policy_visit_fn fn, void *a)
{
    (void)c, (void)t;
    return fn(NULL, a);
}

/* read_history for a user: a policy's item (no user id) */
static int h_history_policy_item(void *c, const char *user, uint64_t since,
                                 risk_history_visit_fn fn, void *a)
{
    (void)c, (void)user, (void)since;
    risk_history *h = NULL;
    cr_assert(eq(int, risk_history_new(&h, 1, 1000, "admin", RISK_HISTORY_POLICY_SET, NULL, NULL,
                                       "p"),
                 RISK_OK));
    int rc = fn(h, a);
    risk_history_free(h);
    return rc;
}

/* get_user / get_event fail, and leave a record of their own in out */
static risk_user *left_user;
static risk_event *left_event;
static int h_get_user_fails(void *c, void *t, const char *id, risk_user **o)
{
    (void)c, (void)t;
    cr_assert(eq(int, risk_user_new(&left_user, id), RISK_OK));
    *o = left_user;
    return RISK_EIO;
}
static int h_get_event_fails(void *c, void *t, const char *id, risk_event **o)
{
    (void)c, (void)t;
    cr_assert(eq(int, risk_event_new(&left_event, id, "alice", "leakedCredentials",
                                     RISK_LEVEL_LOW, 1000),
                 RISK_OK));
    *o = left_event;
    return RISK_EIO;
}

/* docs/store.md "What the engine checks", row 1 (R-ST-1): RISK_EVERIFY is
 * a RISK_E… code like any other and passes the guard unchanged; only
 * values outside RISK_EVERIFY..RISK_OK become RISK_ESTORE. (Mutant G01:
 * code() with `rc > RISK_EVERIFY`, the last code turned into ESTORE.) */
Test(mutants6, guard_passes_the_last_error_code_through)
{
    HOST.get_meta = h_meta_everify;
    uint8_t buf[8];
    size_t len = 0;
    int rc = G.get_meta(G.ctx, NULL, "k", buf, sizeof buf, &len);
    cr_assert(eq(int, rc, RISK_EVERIFY));
}

/* docs/store.md row 1 for the optional callbacks too: a compact callback
 * returning 7 is RISK_ESTORE. (Mutant G24: g_compact returned the host's
 * value as is.) */
Test(mutants6, guard_checks_compacts_result)
{
    HOST.compact = h_compact_odd;
    risk_store_guard(&G, &HOST);
    int rc = G.compact(G.ctx);
    cr_assert(eq(int, rc, RISK_ESTORE));
}

/* docs/store.md row 1 for commit (R-ST-2: the engine must not take a
 * positive answer for success): RISK_ESTORE. (Mutant G30: g_commit
 * returned the host's 1 as is.) */
Test(mutants6, guard_checks_commits_result)
{
    HOST.commit = h_commit_odd;
    void *txn = NULL;
    int rc = G.begin(G.ctx, "alice", &txn);
    cr_assert(eq(int, rc, RISK_OK));
    rc = G.commit(G.ctx, txn);
    cr_assert(eq(int, rc, RISK_ESTORE));
    cr_assert(strstr(risk_error_last(), "commit") != NULL, "%s", risk_error_last());
}

/* docs/store.md last row (R-ST-2): a list_users that goes on after the
 * visitor stopped does not reach the visitor again, and the call returns
 * the visitor's result. (Mutant G08: visit_user without its
 * `if (w->stop) return w->stop;`, the visitor called for the next user.) */
Test(mutants6, guard_stops_a_user_walk_at_the_visitors_result)
{
    HOST.list_users = h_users_go_on;
    risk_store_guard(&G, &HOST);
    calls = 0, ret = 42;
    int rc = G.list_users(G.ctx, RISK_LEVEL_NONE, count_user, NULL);
    cr_assert(eq(int, rc, 42));
    cr_assert(eq(int, calls, 1));
}

/* The same for user_events. (Mutant G13: visit_event without its stop
 * check.) */
Test(mutants6, guard_stops_an_event_walk_at_the_visitors_result)
{
    HOST.user_events = h_events_go_on;
    risk_store_guard(&G, &HOST);
    calls = 0, ret = 42;
    int rc = G.user_events(G.ctx, NULL, "alice", count_event, NULL);
    cr_assert(eq(int, rc, 42));
    cr_assert(eq(int, calls, 1));
}

/* docs/store.md last row: "a store error (RISK_E…) returned after the
 * stop still wins". (Mutant G05: walk_end's store-error case dropped, the
 * visitor's 42 returned for the store's RISK_EIO.) */
Test(mutants6, guard_a_store_error_after_the_stop_wins)
{
    HOST.list_policies = h_policies_then_eio;
    risk_store_guard(&G, &HOST);
    calls = 0, ret = 42;
    int rc = G.list_policies(G.ctx, NULL, count_policy, NULL);
    cr_assert(eq(int, rc, RISK_EIO));
    cr_assert(eq(int, calls, 1));
}

/* docs/store.md "any walk visits NULL" → RISK_ECORRUPT (R-IV-2), for
 * list_policies too; the visitor never sees the NULL. (Mutant G14:
 * visit_policy passed NULL on to the visitor.) */
Test(mutants6, guard_a_null_policy_is_corrupt)
{
    HOST.list_policies = h_policies_null;
    risk_store_guard(&G, &HOST);
    calls = 0, ret = 0;
    int rc = G.list_policies(G.ctx, NULL, count_policy, NULL);
    cr_assert(eq(int, rc, RISK_ECORRUPT));
    cr_assert(eq(int, calls, 0));
}

/* docs/store.md: read_history for a user that visits a policy's item (no
 * user id) is RISK_ECORRUPT, and the visitor does not see it. (Mutant G12:
 * `!h->user_id ||` dropped, an item without a user passed for any user.) */
Test(mutants6, guard_a_policy_item_read_for_a_user_is_corrupt)
{
    HOST.read_history = h_history_policy_item;
    risk_store_guard(&G, &HOST);
    calls = 0, ret = 0;
    int rc = G.read_history(G.ctx, "alice", 0, count_history, NULL);
    cr_assert(eq(int, rc, RISK_ECORRUPT));
    cr_assert(eq(int, calls, 0));
    /* read for everyone, the same item is fine */
    rc = G.read_history(G.ctx, NULL, 0, count_history, NULL);
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(eq(int, calls, 1));
}

/* docs/store.md: "get_user / get_event fail but leave a record in out →
 * the failure; out is ignored (the store frees what it made)": the guard
 * hands the engine NULL, which the engine's error paths free (lib/engine.c
 * frees u on failure: a double free of the store's record otherwise).
 * (Mutants G18 and G29: the `*out = NULL` on failure dropped in
 * g_get_user, g_get_event.) */
Test(mutants6, guard_a_failed_read_returns_no_record)
{
    HOST.get_user = h_get_user_fails;
    HOST.get_event = h_get_event_fails;
    risk_store_guard(&G, &HOST);
    risk_user *u = NULL;
    risk_event *e = NULL;
    int rc = G.get_user(G.ctx, NULL, "alice", &u);
    cr_assert(eq(int, rc, RISK_EIO));
    cr_assert(u == NULL);
    rc = G.get_event(G.ctx, NULL, "e1", &e);
    cr_assert(eq(int, rc, RISK_EIO));
    cr_assert(e == NULL);
    risk_user_free(left_user); /* the store frees what it made */
    risk_event_free(left_event);
    left_user = NULL, left_event = NULL;
}

/* docs/store.md: one event visited twice is RISK_ECORRUPT, also when the
 * user has only those two: risk_ids_unique compares every neighbour pair
 * after sorting, the first one included. (Mutant G04: the loop from
 * i = 2, a duplicate in sorted positions 0 and 1 missed.) */
Test(mutants6, ids_unique_finds_a_duplicate_pair_of_two)
{
    const char *two[] = {"a", "a"};
    int rc = risk_ids_unique(two, 2, "dup");
    cr_assert(eq(int, rc, RISK_ECORRUPT));
    const char *three[] = {"b", "a", "a"};
    rc = risk_ids_unique(three, 3, "dup");
    cr_assert(eq(int, rc, RISK_ECORRUPT));
    const char *fine[] = {"b", "a", "c"};
    rc = risk_ids_unique(fine, 3, "dup");
    cr_assert(eq(int, rc, RISK_OK));
}

/* ---------------------------------------------- history items in place */

#include <sys/mman.h>

/* n bytes at the very end of a readable page, a PROT_NONE page after it:
 * a read one byte past them faults. *base/size for munmap. */
static uint8_t *at_page_end(const uint8_t *bytes, size_t n, void **base, size_t *size)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    *size = 2 * pg;
    uint8_t *b = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(b != MAP_FAILED);
    int rc = mprotect(b + pg, pg, PROT_NONE);
    cr_assert(eq(int, rc, 0));
    *base = b;
    uint8_t *p = b + pg - n;
    memcpy(p, bytes, n);
    return p;
}

/* R-IV-2: a history item cut inside a varint is refused without reading a
 * byte past its end (the recovery indexes items in place, straight from
 * the file's buffer). Every cut is tried at the end of a readable page;
 * six of them end on a varint's continuation byte (the seq's, the
 * time's). (Mutant H24: hvarint's bound `r->off >= r->n` as `>`, one byte
 * read past the end.) */
Test(mutants6, hist_peek_reads_no_byte_past_a_cut_varint)
{
    risk_history *h = NULL;
    cr_assert(eq(int, risk_history_new(&h, 300, 1764000000000, "admin", RISK_HISTORY_INGEST,
                                       "alice", "e1", NULL),
                 RISK_OK));
    uint8_t enc[512];
    size_t n = 0;
    cr_assert(eq(int, risk_history_encode(enc, sizeof enc, &n, h), RISK_OK));
    risk_history_free(h);
    /* 'H', version, seq 300 = AC 02, then the time's varint */
    cr_assert(eq(int, enc[0], 'H'));
    cr_assert(eq(int, enc[2], 0xAC));
    int varint_cuts = 0;
    for (size_t cut = 1; cut < n; cut++) { /* every cut, and each at a page's end */
        varint_cuts += cut <= 10 && (enc[cut - 1] & 0x80);
        void *base;
        size_t size;
        uint8_t *p = at_page_end(enc, cut, &base, &size);
        uint64_t seq = 0;
        const uint8_t *user = NULL;
        size_t ulen = 0;
        int rc = hist_peek(p, cut, 1, &seq, &user, &ulen);
        cr_assert(eq(int, rc, -1), "cut %zu", cut);
        munmap(base, size);
    }
    cr_assert(varint_cuts >= 4); /* seq: 1 continuation byte, time: 5 */
}

/* ------------------------------------------------------------ journal */

/* Compaction first writes out what commits left in the write buffer: the
 * copy takes the history items from the file. Durability off with an
 * hour's interval keeps every frame of the three commits in the buffer
 * until then (nothing reads the history before the compaction: a history
 * read would write the buffer out itself); after the compaction the store
 * and a reopen of the file hold all three, history included (R-CC-3;
 * docs/journal-format.md "Compaction and backup" step 1). (Mutant C29:
 * j_compact without its flush_and_sync, the buffered history items lost.) */
Test(journal, m6_compaction_writes_the_buffer_first)
{
    risk_store s;
    jopen_idle(&s, RISK_DURABILITY_OFF);
    for (int k = 1; k <= 3; k++)
        cr_assert_eq(do_op(&s, k), RISK_OK);
    cr_assert_eq(s.compact(s.ctx), RISK_OK, "%s", risk_error_last());
    digest d = take_digest(&s);
    cr_assert_eq(d.hist, 3);
    jclose(&s);
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, &st), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(st.bytes_dropped, 0);
    cr_assert(dg_eq(take_digest(&s), d));
    jclose(&s);
}

/* R-IV-1: a backup to an empty path is RISK_EINVAL, and nothing is
 * written (no ".tmp" in the working directory). (Mutant C38: the
 * `*path == '\0'` check dropped: RISK_EIO after writing and removing
 * ./.tmp.) */
Test(journal, m6_backup_to_an_empty_path_is_einval)
{
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(do_op(&s, 1), RISK_OK);
    char cwd[512];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(dir), 0); /* a stray .tmp would land in the test's directory */
    int rc = s.backup(s.ctx, "");
    const char *msg = risk_error_last();
    int stray = access(".tmp", F_OK) == 0;
    cr_assert_eq(chdir(cwd), 0);
    cr_assert_eq(rc, RISK_EINVAL, "%s", msg);
    cr_assert(strstr(msg, "path") != NULL);
    cr_assert(eq(int, stray, 0));
    cr_assert_eq(s.backup(s.ctx, NULL), RISK_EINVAL);
    jclose(&s);
}

/* The scratch file is used only if it is a plain file (docs/journal-format.md
 * "Compaction and backup" step 2): a FIFO at path.tmp makes the compaction
 * fail with RISK_EIO naming it, and is left as it was (not removed, its
 * mode not changed); the journal is untouched and stays writable.
 * (Mutant C58: `!S_ISREG(ts.st_mode)` dropped: the FIFO was taken as ours,
 * set to 0600, and unlinked when it could not be truncated.) */
Test(journal, m6_compaction_leaves_a_fifo_at_the_scratch_name_alone)
{
    build(3, NULL, NULL);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_eq(mkfifo(tmp, 0640), 0);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    digest d = take_digest(&s);
    int rc = s.compact(s.ctx);
    cr_assert_eq(rc, RISK_EIO);
    cr_assert(strstr(risk_error_last(), "plain file") != NULL, "%s", risk_error_last());
    struct stat st;
    cr_assert_eq(lstat(tmp, &st), 0, "the FIFO was removed");
    int fifo = S_ISFIFO(st.st_mode);
    cr_assert(eq(int, fifo, 1));
    cr_assert_eq(st.st_mode & 0777, 0640);
    cr_assert(dg_eq(take_digest(&s), d));
    cr_assert_eq(do_op(&s, 4), RISK_OK, "%s", risk_error_last());
    jclose(&s);
}

/* A poisoned store refuses compaction and backup at once, before any I/O
 * (docs/journal-format.md "Compaction and backup" step 1: "A store
 * poisoned by then refuses (RISK_EIO)"): no fdatasync of the journal whose
 * sync already failed (a second fdatasync after a failed one may report
 * success for pages that were never written), and no copy. (Mutants C32
 * and C33: j_backup without its check_readable, j_compact without its
 * check_writable: RISK_EIO still, from flush_and_sync's check, but only
 * after it synced the poisoned journal again.) */
Test(journal, m6_a_poisoned_store_refuses_compaction_and_backup_before_any_io)
{
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(do_op(&s, 1), RISK_OK);
    risk_journal_test_fail_sync(1);
    cr_assert_eq(do_op(&s, 2), RISK_EIO); /* its sync failed: poisoned */
    atomic_store(jfx_syncs(), 0);
    risk_journal_test_before_sync(jfx_count_sync);
    int rb = s.backup(s.ctx, path2);
    int syncs_b = atomic_load(jfx_syncs());
    int rcp = s.compact(s.ctx);
    int syncs_c = atomic_load(jfx_syncs()) - syncs_b;
    risk_journal_test_before_sync(NULL);
    cr_assert_eq(rb, RISK_EIO);
    cr_assert_eq(syncs_b, 0);
    cr_assert_eq(rcp, RISK_EIO);
    cr_assert_eq(syncs_c, 0);
    cr_assert_eq(access(path2, F_OK), -1);
    jclose(&s);
}
