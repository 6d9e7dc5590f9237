/* Shared by the journal store's test programs (tests/test_journal.c,
 * tests/test_journal_durability.c, and tests/test_journal_pipe.c, which
 * reruns both with recovery forced through the two-thread pipeline): the
 * suite's temporary directories, fault-injection reset, and helpers that
 * open, change, digest, copy and damage journals. */
#ifndef LIBRISK_TEST_JOURNAL_FIXTURE_H
#define LIBRISK_TEST_JOURNAL_FIXTURE_H

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

static inline void setup(void)
{
    strcpy(dir, "/tmp/risk-journal-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    strcpy(sdir, "/dev/shm/risk-journal-XXXXXX");
    if (mkdtemp(sdir) == NULL)
        snprintf(sdir, sizeof sdir, "%s", dir);
    snprintf(path, sizeof path, "%s/j", dir);
    snprintf(path2, sizeof path2, "%s/copy", sdir);
}

static inline void rm_dir(const char *d_path)
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

/* The journal's fdatasyncs counted while jfx_count_sync is installed
 * (risk_journal_test_before_sync; the teardown removes it). */
static inline atomic_int *jfx_syncs(void)
{
    static atomic_int n;
    return &n;
}

static inline void jfx_count_sync(int fd)
{
    (void)fd;
    atomic_fetch_add(jfx_syncs(), 1);
}

static inline void teardown(void)
{
    risk_journal_test_fail_write(0, 0);
    risk_journal_test_fail_sync(0);
    risk_journal_test_fail_reserve(0, 0);
    risk_journal_test_reserve_chunk(1u << 20);
    risk_journal_test_compact_crash(0);
    risk_journal_test_before_sync(NULL);
    risk_journal_test_group_hooks(NULL, NULL);
    risk_journal_test_before_lock(NULL);
    alloc_fail_reset();
    rm_dir(dir);
    if (strcmp(sdir, dir) != 0)
        rm_dir(sdir);
}

TestSuite(journal, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers ---- */

static inline int jopen(risk_store *s, const char *p, uint32_t durability, uint32_t ro,
                 risk_journal_stats *st)
{
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = durability;
    o.read_only = ro;
    return risk_journal_open(s, p, &o, st);
}

static inline void jclose(risk_store *s)
{
    s->close(s->ctx);
}

/* Open the journal at path with this durability and an hour's sync
 * interval: the background thread never runs, so nothing is written or
 * synced but by the calls under test. */
static inline void jopen_idle(risk_store *s, uint32_t durability)
{
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = durability;
    o.sync_interval_ms = 3600000u;
    cr_assert_eq(risk_journal_open(s, path, &o, NULL), RISK_OK, "%s", risk_error_last());
}

static inline uint64_t file_size(const char *p)
{
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

/* One transaction touching every record kind, deterministic in k. */
static inline int do_op(risk_store *s, int k)
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

static inline void dg_add(digest *d, const uint8_t *p, size_t n)
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

static inline int dg_user(const risk_user *u, void *arg)
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

static inline int dg_hist(const risk_history *h, void *arg)
{
    ((digest *)arg)->hist++;
    return dg_hist_enc(h, arg);
}

static inline digest take_digest(risk_store *s)
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

static inline int dg_eq(digest a, digest b)
{
    return a.sum == b.sum && a.n == b.n && a.hist == b.hist;
}

static inline void copy_prefix(const char *from, const char *to, uint64_t len)
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

static inline void patch(const char *p, uint64_t off, const void *bytes, size_t n)
{
    int fd = open(p, O_WRONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
    close(fd);
}

/* Build a journal of n ops, recording the file size and digest after each.
 * Durability full: each commit is in the file when it returns (normal and
 * off buffer frames in memory for up to sync_interval_ms). */
static inline void build(int n, uint64_t *sizes, digest *dgs)
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

/* history items collected by read_history (stop_at: stop after that many) */
typedef struct hcol {
    uint64_t seq[64];
    int n, stop_at;
} hcol;

static inline int collect(const risk_history *h, void *arg)
{
    hcol *c = arg;
    c->seq[c->n++] = risk_history_seq(h);
    return c->stop_at && c->n == c->stop_at ? 42 : 0;
}

#endif
