/* The journal store (lib/store_journal.c): durability, recovery, locking,
 * compaction, fault injection. Driven through the callback table (R-ST-5),
 * plus one test through the engine. Each test names its rule. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "alloc_fail.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* dir is on the real disk (fsync costs what it costs); sdir on tmpfs when
 * there is one, for the copies the byte-by-byte sweeps reopen thousands of
 * times. */
static char dir[64], sdir[64], path[128], path2[128];

static void setup(void)
{
    strcpy(dir, "/tmp/risk-journal-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    strcpy(sdir, "/dev/shm/risk-journal-XXXXXX");
    if (mkdtemp(sdir) == NULL)
        snprintf(sdir, sizeof sdir, "%s", dir);
    snprintf(path, sizeof path, "%s/j", dir);
    snprintf(path2, sizeof path2, "%s/copy", sdir);
}

static void rm_dir(const char *d_path)
{
    DIR *d = opendir(d_path);
    if (d == NULL)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || e->d_name[1] == '.'))
            continue;
        snprintf(p, sizeof p, "%s/%s", d_path, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(d_path);
}

static void teardown(void)
{
    risk_journal_test_fail_write(0, 0);
    risk_journal_test_fail_sync(0);
    risk_journal_test_compact_crash(0);
    alloc_fail_reset();
    rm_dir(dir);
    if (strcmp(sdir, dir) != 0)
        rm_dir(sdir);
}

TestSuite(journal, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers ---- */

static int jopen(risk_store *s, const char *p, uint32_t durability, uint32_t ro,
                 risk_journal_stats *st)
{
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = durability;
    o.read_only = ro;
    return risk_journal_open(s, p, &o, st);
}

static void jclose(risk_store *s)
{
    s->close(s->ctx);
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

/* One transaction touching every record kind, deterministic in k. */
static int do_op(risk_store *s, int k)
{
    char uid[32], eid[32], pol[32], key[32];
    snprintf(uid, sizeof uid, "user-%d", k % 5);
    snprintf(eid, sizeof eid, "event-%d", k);
    snprintf(pol, sizeof pol, "policy-%d", k % 3);
    snprintf(key, sizeof key, "key-%d", k % 3);
    void *txn;
    int rc = s->begin(s->ctx, uid, &txn);
    if (rc != RISK_OK)
        return rc;
    risk_user *u = NULL, *old = NULL;
    risk_event *e = NULL;
    risk_policy *p = NULL;
    risk_history *h = NULL;
    uint64_t seq = 0;
    rc = s->get_user(s->ctx, txn, uid, &old);
    uint64_t v = rc == RISK_OK ? risk_user_version(old) : 0;
    rc = rc == RISK_ENOTFOUND ? RISK_OK : rc;
    if (rc == RISK_OK)
        rc = risk_user_new(&u, uid);
    if (rc == RISK_OK)
        rc = risk_user_set_version(u, v + 1);
    if (rc == RISK_OK)
        rc = risk_user_set_mfa_registered(u, k % 2, 1000 + k);
    if (rc == RISK_OK)
        rc = s->put_user(s->ctx, txn, u);
    if (rc == RISK_OK)
        rc = risk_event_new(&e, eid, uid, "leakedCredentials", 1 + k % 3, 5000 + k);
    if (rc == RISK_OK && k % 3 == 0)
        rc = risk_event_set_note(e, "note\twith tab");
    if (rc == RISK_OK)
        rc = s->put_event(s->ctx, txn, e);
    if (rc == RISK_OK && k % 4 == 0) {
        rc = risk_policy_new(&p, pol, RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK);
        if (rc == RISK_OK)
            rc = risk_policy_include_add(p, uid);
        if (rc == RISK_OK)
            rc = s->put_policy(s->ctx, txn, p);
    }
    if (rc == RISK_OK && k % 7 == 6) {
        rc = s->remove_policy(s->ctx, txn, "policy-0");
        rc = rc == RISK_ENOTFOUND ? RISK_OK : rc;
    }
    uint8_t val[8] = {(uint8_t)k, 1, 2, 3, 4, 5, 6, 7};
    if (rc == RISK_OK)
        rc = s->put_meta(s->ctx, txn, key, val, 1 + (size_t)k % 8);
    if (rc == RISK_OK)
        rc = s->reserve_seq(s->ctx, txn, &seq);
    if (rc == RISK_OK)
        rc = risk_history_new(&h, seq, 9000 + k, "tester", RISK_HISTORY_INGEST, uid, eid, NULL);
    if (rc == RISK_OK)
        rc = s->append_history(s->ctx, txn, h);
    if (rc == RISK_OK)
        rc = s->commit(s->ctx, txn);
    else
        s->rollback(s->ctx, txn);
    risk_user_free(old);
    risk_user_free(u);
    risk_event_free(e);
    risk_policy_free(p);
    risk_history_free(h);
    return rc;
}

/* An order-independent digest of everything the store holds. */
typedef struct digest {
    uint64_t sum, n, hist;
    char ids[64][32];
    size_t n_ids;
} digest;

static void dg_add(digest *d, const uint8_t *p, size_t n)
{
    uint64_t h = (uint64_t)risk_crc32c(0, p, n) << 32 | risk_crc32c(0x5bd1e995u, p, n);
    d->sum += (h ^ (h >> 29)) * 0x9E3779B97F4A7C15u;
    d->n++;
}

#define DG_VISIT(name, T, enc)                                                             \
    static int name(const T *rec, void *arg)                                               \
    {                                                                                      \
        uint8_t buf[4096];                                                                 \
        size_t n;                                                                          \
        cr_assert_eq(enc(buf, sizeof buf, &n, rec), RISK_OK);                              \
        dg_add(arg, buf, n);                                                               \
        return 0;                                                                          \
    }
DG_VISIT(dg_event, risk_event, risk_event_encode)
DG_VISIT(dg_policy, risk_policy, risk_policy_encode)
DG_VISIT(dg_hist_enc, risk_history, risk_history_encode)

static int dg_user(const risk_user *u, void *arg)
{
    digest *d = arg;
    uint8_t buf[4096];
    size_t n;
    cr_assert_eq(risk_user_encode(buf, sizeof buf, &n, u), RISK_OK);
    dg_add(d, buf, n);
    cr_assert_lt(d->n_ids, 64);
    snprintf(d->ids[d->n_ids++], 32, "%s", risk_user_id(u));
    return 0;
}

static int dg_hist(const risk_history *h, void *arg)
{
    ((digest *)arg)->hist++;
    return dg_hist_enc(h, arg);
}

static digest take_digest(risk_store *s)
{
    digest d = {0};
    cr_assert_eq(s->list_users(s->ctx, RISK_LEVEL_NONE, dg_user, &d), RISK_OK);
    void *txn;
    cr_assert_eq(s->begin(s->ctx, NULL, &txn), RISK_OK);
    for (size_t i = 0; i < d.n_ids; i++)
        cr_assert_eq(s->user_events(s->ctx, txn, d.ids[i], dg_event, &d), RISK_OK);
    cr_assert_eq(s->list_policies(s->ctx, txn, dg_policy, &d), RISK_OK);
    for (int i = 0; i < 3; i++) {
        char key[32];
        uint8_t buf[256];
        size_t len;
        snprintf(key, sizeof key, "key-%d", i);
        if (s->get_meta(s->ctx, txn, key, buf, sizeof buf, &len) == RISK_OK)
            dg_add(&d, buf, len);
    }
    cr_assert_eq(s->commit(s->ctx, txn), RISK_OK);
    cr_assert_eq(s->read_history(s->ctx, NULL, 0, dg_hist, &d), RISK_OK);
    return d;
}

static int dg_eq(digest a, digest b)
{
    return a.sum == b.sum && a.n == b.n && a.hist == b.hist;
}

static void copy_prefix(const char *from, const char *to, uint64_t len)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(in >= 0 && out >= 0);
    static uint8_t buf[1 << 16];
    uint64_t done = 0;
    while (done < len) {
        size_t want = len - done < sizeof buf ? (size_t)(len - done) : sizeof buf;
        ssize_t n = read(in, buf, want);
        cr_assert_gt(n, 0);
        cr_assert_eq(write(out, buf, (size_t)n), n);
        done += (uint64_t)n;
    }
    close(in);
    close(out);
}

static void patch(const char *p, uint64_t off, const void *bytes, size_t n)
{
    int fd = open(p, O_WRONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
    close(fd);
}

/* Build a journal of n ops, recording the file size and digest after each.
 * Durability full: each commit is in the file when it returns (normal and
 * off buffer frames in memory for up to sync_interval_ms). */
static void build(int n, uint64_t *sizes, digest *dgs)
{
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    if (sizes)
        sizes[0] = file_size(path);
    if (dgs)
        dgs[0] = take_digest(&s);
    for (int k = 1; k <= n; k++) {
        cr_assert_eq(do_op(&s, k), RISK_OK, "op %d: %s", k, risk_error_last());
        if (sizes)
            sizes[k] = file_size(path);
        if (dgs)
            dgs[k] = take_digest(&s);
    }
    jclose(&s);
}

/* ---- tests ---- */

Test(journal, crc32c_known_values)
{
    /* R-IV-2: the checksum that guards every frame is the standard CRC32C */
    cr_assert_eq(risk_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(risk_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n < sizeof buf; n += 37)
        cr_assert_eq(risk_crc32c(0, buf, n), risk_crc32c_portable(0, buf, n));
    cr_assert_eq(risk_crc32c(risk_crc32c(0, buf, 100), buf + 100, 900),
                 risk_crc32c(0, buf, 1000));
}

Test(journal, round_trip_through_reopen)
{
    /* R-CC-3, R-ST-5: committed operations survive close and reopen */
    digest dgs[31];
    build(30, NULL, dgs);
    risk_store s;
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, &st), RISK_OK);
    cr_assert_eq(st.version, 1);
    cr_assert_eq(st.records_replayed, 30);
    cr_assert_eq(st.bytes_dropped, 0);
    cr_assert_eq(st.file_bytes, file_size(path));
    cr_assert(dg_eq(take_digest(&s), dgs[30]));
    cr_assert_eq(do_op(&s, 31), RISK_OK);
    digest d31 = take_digest(&s);
    jclose(&s);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, &st), RISK_OK);
    cr_assert_eq(st.records_replayed, 31);
    cr_assert(dg_eq(take_digest(&s), d31));
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, &st), RISK_OK);
    cr_assert_eq(st.records_replayed, 31);
}

static int find_policy(const risk_policy *p, void *arg)
{
    if (strcmp(risk_policy_name(p), "policy-1") == 0)
        *(const risk_policy **)arg = p;
    return 0;
}

static int policy_count(const risk_policy *p, void *arg)
{
    (void)p;
    ++*(int *)arg;
    return 0;
}

Test(journal, every_record_kind_read_back)
{
    /* R-ST-3, R-CC-3: users, events, policies (put and remove), meta and
     * history come back field for field */
    build(8, NULL, NULL);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL), RISK_OK);
    void *txn;
    cr_assert_eq(s.begin(s.ctx, NULL, &txn), RISK_OK);
    risk_user *u;
    cr_assert_eq(s.get_user(s.ctx, txn, "user-3", &u), RISK_OK);
    cr_assert_eq(risk_user_version(u), 2); /* ops 3 and 8 */
    cr_assert_eq(risk_user_mfa_registered(u), 0);
    cr_assert_eq(risk_user_mfa_registered_at(u), RISK_TIME_NONE);
    risk_user_free(u);
    cr_assert_eq(s.get_user(s.ctx, txn, "user-2", &u), RISK_OK);
    cr_assert_eq(risk_user_mfa_registered(u), 1);
    cr_assert_eq(risk_user_mfa_registered_at(u), 1007);
    risk_user_free(u);
    risk_event *e;
    cr_assert_eq(s.get_event(s.ctx, txn, "event-6", &e), RISK_OK);
    cr_assert_str_eq(risk_event_note(e), "note\twith tab");
    cr_assert_eq(risk_event_detected_at(e), 5006);
    cr_assert_str_eq(risk_event_user_id(e), "user-1");
    risk_event_free(e);
    cr_assert_eq(s.get_event(s.ctx, txn, "event-9", &e), RISK_ENOTFOUND);
    /* op 4 put policy-1, op 8 put policy-2; op 6 removed policy-0 (never there) */
    const risk_policy *p = NULL;
    int n = 0;
    cr_assert_eq(s.list_policies(s.ctx, txn, policy_count, &n), RISK_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(s.list_policies(s.ctx, txn, find_policy, &p), RISK_OK);
    cr_assert_not_null(p);
    cr_assert_eq(risk_policy_include_count(p), 1);
    cr_assert_str_eq(risk_policy_include_at(p, 0), "user-4");
    uint8_t buf[256];
    size_t len;
    cr_assert_eq(s.get_meta(s.ctx, txn, "key-1", buf, sizeof buf, &len), RISK_OK);
    cr_assert_eq(len, 1 + 7 % 8); /* last written by op 7 */
    cr_assert_eq(buf[0], 7);
    cr_assert_eq(s.commit(s.ctx, txn), RISK_OK);
    jclose(&s);
}

Test(journal, policy_remove_survives_reopen)
{
    /* R-CC-3: a removal is replayed, not just the puts before it */
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
    cr_assert_eq(do_op(&s, 0), RISK_OK); /* puts policy-0 */
    cr_assert_eq(do_op(&s, 6), RISK_OK); /* removes policy-0 */
    jclose(&s);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
    void *txn;
    int n = 0;
    cr_assert_eq(s.begin(s.ctx, NULL, &txn), RISK_OK);
    cr_assert_eq(s.list_policies(s.ctx, txn, policy_count, &n), RISK_OK);
    cr_assert_eq(n, 0);
    s.rollback(s.ctx, txn);
    jclose(&s);
}

Test(journal, concurrent_removals_of_one_policy_replay)
{
    /* R-CC-1, R-CC-3: of two transactions that both removed a policy only
     * the first commits (the second's prepare sees it gone), and the
     * journal opens with the same state */
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
    cr_assert_eq(do_op(&s, 0), RISK_OK); /* puts policy-0 */
    void *t1, *t2;
    cr_assert_eq(s.begin(s.ctx, NULL, &t1), RISK_OK);
    cr_assert_eq(s.begin(s.ctx, NULL, &t2), RISK_OK);
    cr_assert_eq(s.remove_policy(s.ctx, t1, "policy-0"), RISK_OK);
    cr_assert_eq(s.remove_policy(s.ctx, t2, "policy-0"), RISK_OK);
    cr_assert_eq(s.commit(s.ctx, t1), RISK_OK);
    int rc2 = s.commit(s.ctx, t2);
    cr_assert(rc2 == RISK_ENOTFOUND || rc2 == RISK_ECONFLICT, "second removal gave %d", rc2);
    digest d = take_digest(&s);
    jclose(&s);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK, "commit 2 gave %d: %s",
                 rc2, risk_error_last());
    cr_assert(dg_eq(take_digest(&s), d));
    jclose(&s);
}

Test(journal, commit_without_history)
{
    /* R-CC-3: a transaction with no history item (meta only, on a fresh
     * journal whose history index is still empty) commits and replays */
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    void *txn;
    cr_assert_eq(s.begin(s.ctx, NULL, &txn), RISK_OK);
    cr_assert_eq(s.put_meta(s.ctx, txn, "key-0", (const uint8_t *)"v", 1), RISK_OK);
    cr_assert_eq(s.commit(s.ctx, txn), RISK_OK, "%s", risk_error_last());
    jclose(&s);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    uint8_t buf[8];
    size_t len = 0;
    cr_assert_eq(s.begin(s.ctx, NULL, &txn), RISK_OK);
    cr_assert_eq(s.get_meta(s.ctx, txn, "key-0", buf, sizeof buf, &len), RISK_OK);
    cr_assert_eq(len, 1);
    cr_assert_eq(buf[0], 'v');
    s.rollback(s.ctx, txn);
    jclose(&s);
}

typedef struct hcol {
    uint64_t seq[64];
    int n, stop_at;
} hcol;

static int collect(const risk_history *h, void *arg)
{
    hcol *c = arg;
    c->seq[c->n++] = risk_history_seq(h);
    return c->stop_at && c->n == c->stop_at ? 42 : 0;
}

Test(journal, history_read_back_per_user_and_all)
{
    /* R-OP-5, R-CC-3: history lives on disk and reads back in seq order */
    build(40, NULL, NULL);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    hcol c = {0};
    cr_assert_eq(s.read_history(s.ctx, NULL, 0, collect, &c), RISK_OK);
    cr_assert_eq(c.n, 40);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(c.seq[i], (uint64_t)i + 1);
    c = (hcol){0};
    cr_assert_eq(s.read_history(s.ctx, "user-2", 0, collect, &c), RISK_OK);
    cr_assert_eq(c.n, 8); /* ops 2, 7, …, 37 */
    for (int i = 0; i < 8; i++)
        cr_assert_eq(c.seq[i], (uint64_t)(2 + 5 * i));
    c = (hcol){0};
    cr_assert_eq(s.read_history(s.ctx, "user-2", 13, collect, &c), RISK_OK);
    cr_assert_eq(c.n, 5);
    cr_assert_eq(c.seq[0], 17);
    c = (hcol){0};
    cr_assert_eq(s.read_history(s.ctx, NULL, 35, collect, &c), RISK_OK);
    cr_assert_eq(c.n, 6);
    c = (hcol){0};
    cr_assert_eq(s.read_history(s.ctx, "nobody", 0, collect, &c), RISK_OK);
    cr_assert_eq(c.n, 0);
    c = (hcol){.stop_at = 3};
    cr_assert_eq(s.read_history(s.ctx, NULL, 0, collect, &c), 42);
    /* numbering continues after reopen */
    cr_assert_eq(do_op(&s, 41), RISK_OK);
    c = (hcol){0};
    cr_assert_eq(s.read_history(s.ctx, NULL, 41, collect, &c), RISK_OK);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.seq[0], 41);
    jclose(&s);
}

Test(journal, second_writer_gets_ebusy)
{
    /* R-CC-3: two writers cannot open one journal, in one process or two */
    risk_store s, s2;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(jopen(&s2, path, RISK_DURABILITY_FULL, 0, NULL), RISK_EBUSY);
    cr_assert_eq(jopen(&s2, path, RISK_DURABILITY_FULL, 1, NULL), RISK_OK); /* a reader may */
    jclose(&s2);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        risk_store c;
        _exit(jopen(&c, path, RISK_DURABILITY_FULL, 0, NULL) == RISK_EBUSY ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    cr_assert(child_ok);
    jclose(&s);
    /* released on close */
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    jclose(&s);
}

Test(journal, lock_released_on_process_death)
{
    /* R-CC-3: a writer that dies leaves no lock behind */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        risk_store c;
        char ok = jopen(&c, path, RISK_DURABILITY_FULL, 0, NULL) == RISK_OK ? 'y' : 'n';
        if (write(fds[1], &ok, 1) != 1)
            _exit(2);
        pause();
        _exit(0);
    }
    char ok;
    cr_assert_eq(read(fds[0], &ok, 1), 1);
    cr_assert_eq(ok, 'y');
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_EBUSY);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    jclose(&s);
    close(fds[0]);
    close(fds[1]);
}

Test(journal, read_only_beside_a_writer)
{
    /* R-CC-3: a reader sees the state as of its open and never writes */
    risk_store w, r;
    risk_journal_stats st;
    cr_assert_eq(jopen(&r, path, RISK_DURABILITY_FULL, 1, NULL), RISK_ENOTFOUND);
    cr_assert_eq(jopen(&w, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    for (int k = 1; k <= 10; k++)
        cr_assert_eq(do_op(&w, k), RISK_OK);
    digest d10 = take_digest(&w);
    cr_assert_eq(jopen(&r, path, RISK_DURABILITY_FULL, 1, &st), RISK_OK);
    cr_assert_eq(st.records_replayed, 10);
    for (int k = 11; k <= 15; k++)
        cr_assert_eq(do_op(&w, k), RISK_OK);
    cr_assert(dg_eq(take_digest(&r), d10));
    cr_assert_eq(do_op(&r, 99), RISK_EREADONLY);
    cr_assert_eq(r.compact(r.ctx), RISK_EREADONLY);
    cr_assert(dg_eq(take_digest(&r), d10));
    jclose(&r);
    jclose(&w);
}

Test(journal, read_only_ignores_torn_tail_without_truncating)
{
    /* R-CC-3: a read-only open drops a torn tail in memory only */
    uint64_t sizes[11];
    digest dgs[11];
    build(10, sizes, dgs);
    uint64_t cut = sizes[9] + (sizes[10] - sizes[9]) / 2;
    cr_assert_eq(truncate(path, (off_t)cut), 0);
    risk_store r;
    risk_journal_stats st;
    cr_assert_eq(jopen(&r, path, RISK_DURABILITY_FULL, 1, &st), RISK_OK);
    cr_assert_eq(st.records_replayed, 9);
    cr_assert_eq(st.bytes_dropped, cut - sizes[9]);
    cr_assert(dg_eq(take_digest(&r), dgs[9]));
    jclose(&r);
    cr_assert_eq(file_size(path), cut);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), "byte offset") != NULL);
}

Test(journal, power_loss_at_every_byte_offset, .timeout = 600)
{
    /* R-CC-3: truncating the file at any byte leaves a journal that opens
     * and holds exactly a prefix of the committed operations */
    enum { N = 30 };
    uint64_t sizes[N + 1];
    digest dgs[N + 1];
    build(N, sizes, dgs);
    uint64_t total = sizes[N];
    int k = 0;
    for (uint64_t len = 0; len <= total; len++) {
        while (k < N && sizes[k + 1] <= len)
            k++;
        copy_prefix(path, path2, len);
        risk_store s;
        risk_journal_stats st;
        int rc = jopen(&s, path2, RISK_DURABILITY_OFF, 0, &st);
        cr_assert_eq(rc, RISK_OK, "len %llu: %s", (unsigned long long)len, risk_error_last());
        uint64_t base = len < sizes[0] ? 0 : sizes[k];
        cr_assert_eq(st.records_replayed, (uint64_t)k, "len %llu", (unsigned long long)len);
        cr_assert_eq(st.bytes_dropped, len - base, "len %llu", (unsigned long long)len);
        cr_assert(dg_eq(take_digest(&s), dgs[k]), "len %llu: not the prefix of %d ops",
                  (unsigned long long)len, k);
        jclose(&s);
        /* the torn tail was truncated away (or the header rewritten) */
        cr_assert_eq(file_size(path2), len < sizes[0] ? sizes[0] : sizes[k]);
    }
}

Test(journal, damage_in_the_middle_is_ecorrupt)
{
    /* R-IV-2, R-CC-3: a flipped bit anywhere before the last frame is
     * RISK_ECORRUPT with its offset; in the last frame it is a dropped tail */
    enum { N = 12 };
    uint64_t sizes[N + 1];
    digest dgs[N + 1];
    build(N, sizes, dgs);
    for (uint64_t off = 0; off < sizes[N]; off++) {
        copy_prefix(path, path2, sizes[N]);
        uint8_t b;
        int fd = open(path2, O_RDWR);
        cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
        b ^= (uint8_t)(1u << (off % 8));
        cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
        close(fd);
        cr_assert_eq(risk_journal_check(path2, NULL), RISK_ECORRUPT);
        risk_store s;
        risk_journal_stats st;
        int rc = jopen(&s, path2, RISK_DURABILITY_OFF, off % 2, &st);
        if (off >= sizes[N - 1]) {
            cr_assert_eq(rc, RISK_OK, "off %llu: %s", (unsigned long long)off, risk_error_last());
            cr_assert_eq(st.records_replayed, N - 1);
            cr_assert(dg_eq(take_digest(&s), dgs[N - 1]));
            jclose(&s);
        } else {
            cr_assert_eq(rc, RISK_ECORRUPT, "off %llu", (unsigned long long)off);
            cr_assert(strstr(risk_error_last(), "byte offset") != NULL);
        }
    }
}

Test(journal, overwritten_ranges_never_crash)
{
    /* R-IV-2: zeroed, 0xff and patterned ranges anywhere: RISK_ECORRUPT or a
     * prefix, never a crash or an over-read (run under ASan/valgrind) */
    enum { N = 12 };
    uint64_t sizes[N + 1];
    digest dgs[N + 1];
    build(N, sizes, dgs);
    uint8_t junk[200];
    unsigned seed = 12345;
    for (int round = 0; round < 400; round++) {
        copy_prefix(path, path2, sizes[N]);
        seed = seed * 1103515245u + 12345u;
        uint64_t off = seed % sizes[N];
        size_t n = 1 + (seed >> 16) % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = round % 3 == 0 ? 0 : round % 3 == 1 ? 0xff : (uint8_t)(seed >> (i % 24));
        patch(path2, off, junk, n);
        risk_store s;
        risk_journal_stats st;
        int rc = jopen(&s, path2, RISK_DURABILITY_OFF, 0, &st);
        cr_assert(rc == RISK_OK || rc == RISK_ECORRUPT, "rc %d", rc);
        if (rc == RISK_OK) {
            cr_assert(dg_eq(take_digest(&s), dgs[st.records_replayed]));
            jclose(&s);
        }
    }
}

Test(journal, foreign_and_future_files_refused)
{
    /* R-IV-2: not a journal, or a newer format: a clear RISK_ECORRUPT */
    FILE *f = fopen(path, "w");
    fputs("this is not a journal at all, no sir", f);
    fclose(f);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), "not a journal") != NULL);
    unlink(path);
    build(1, NULL, NULL);
    uint8_t hdr[32];
    int fd = open(path, O_RDWR);
    cr_assert_eq(pread(fd, hdr, 28, 0), 28);
    hdr[8] = 2; /* format version 2, checksum fixed up */
    uint32_t c = risk_crc32c(0, hdr, 28);
    for (int i = 0; i < 4; i++)
        hdr[28 + i] = (uint8_t)(c >> (8 * i));
    cr_assert_eq(pwrite(fd, hdr, 32, 0), 32);
    close(fd);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), "version 2") != NULL);
}

Test(journal, failed_write_changes_nothing)
{
    /* R-CC-2, R-CC-3: EIO or ENOSPC on write → RISK_EIO, memory and file as before */
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    for (int k = 1; k <= 5; k++)
        cr_assert_eq(do_op(&s, k), RISK_OK);
    digest d5 = take_digest(&s);
    uint64_t sz = file_size(path);
    int errs[2] = {ENOSPC, EIO};
    for (int i = 0; i < 2; i++) {
        risk_journal_test_fail_write(1, errs[i]);
        cr_assert_eq(do_op(&s, 6), RISK_EIO);
        cr_assert(dg_eq(take_digest(&s), d5));
        cr_assert_eq(file_size(path), sz);
    }
    cr_assert_eq(do_op(&s, 6), RISK_OK); /* the store goes on */
    digest d6 = take_digest(&s);
    jclose(&s);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert(dg_eq(take_digest(&s), d6));
    hcol c = {0};
    cr_assert_eq(s.read_history(s.ctx, NULL, 0, collect, &c), RISK_OK);
    cr_assert_eq(c.n, 6);
    cr_assert_gt(c.seq[5], c.seq[4]); /* numbering goes on past the failed reservations */
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK);
}

Test(journal, failed_sync_poisons_the_journal)
{
    /* R-CC-3: after a failed fdatasync nothing more is accepted (the page
     * cache state is unknown); what was written still replays */
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(do_op(&s, 1), RISK_OK);
    risk_journal_test_fail_sync(1);
    cr_assert_eq(do_op(&s, 2), RISK_EIO);
    cr_assert_eq(do_op(&s, 3), RISK_EIO);
    cr_assert_eq(s.compact(s.ctx), RISK_EIO);
    jclose(&s);
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, &st), RISK_OK);
    cr_assert_eq(st.records_replayed, 2);
    jclose(&s);
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
