/* The journal store's history order (lib/store_journal.c, the index in
 * lib/journal_replay.c): commits of different users finish in any order,
 * so history items reach the file out of seq order (format version 2);
 * the feed still shows them in seq order and never skips one that a slower
 * commit adds later. Also: version-1 files (seq order required) are read,
 * and rewritten as version 2 by a writable open; a seq twice is corrupt. */
#include "journal_raw.h"

/* Reserve one seq in txn with an item for user. */
static void add_item(risk_store *s, void *txn, const char *user, uint64_t *seq)
{
    risk_history *h = NULL;
    cr_assert_eq(s->reserve_seq(s->ctx, txn, seq), RISK_OK);
    cr_assert_eq(risk_history_new(&h, *seq, 1000 + (int64_t)*seq, "tester", RISK_HISTORY_INGEST,
                                  user, NULL, NULL),
                 RISK_OK);
    cr_assert_eq(s->append_history(s->ctx, txn, h), RISK_OK, "%s", risk_error_last());
    risk_history_free(h);
}

/* Begin a txn on user with one item for user. */
static void *open_with_item(risk_store *s, const char *user, uint64_t *seq)
{
    void *txn = NULL;
    cr_assert_eq(s->begin(s->ctx, user, &txn), RISK_OK);
    add_item(s, txn, user, seq);
    return txn;
}

static hcol feed(risk_store *s, const char *user, uint64_t since)
{
    hcol c = {0};
    cr_assert_eq(s->read_history(s->ctx, user, since, collect, &c), RISK_OK);
    return c;
}

static uint32_t header_version(const char *p)
{
    uint8_t h[HDR_LEN];
    int fd = open(p, O_RDONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pread(fd, h, HDR_LEN, 0), HDR_LEN);
    close(fd);
    return get32(h + 8);
}

/* Set the header's version (the CRC fixed up): a version-1 file is a
 * version-2 file whose items happen to be in seq order. */
static void set_version(const char *p, uint32_t v)
{
    uint8_t h[HDR_LEN];
    int fd = open(p, O_RDWR);
    cr_assert(fd >= 0);
    cr_assert_eq(pread(fd, h, HDR_LEN, 0), HDR_LEN);
    put32(h + 8, v);
    put32(h + 28, risk_crc32c(0, h, 28));
    cr_assert_eq(pwrite(fd, h, HDR_LEN, 0), HDR_LEN);
    close(fd);
}

/* Commit "b" (seq s+1) before "a" (seq s). */
static void commit_out_of_order(risk_store *s, uint64_t *sa, uint64_t *sb)
{
    void *a = open_with_item(s, "a", sa);
    void *b = open_with_item(s, "b", sb);
    cr_assert_eq(*sb, *sa + 1);
    cr_assert_eq(s->commit(s->ctx, b), RISK_OK, "%s", risk_error_last());
    /* b's item is in the file, but the feed stops below a's open seq */
    cr_assert_eq(feed(s, NULL, *sa).n, 0);
    cr_assert_eq(feed(s, "b", 0).n, 0);
    cr_assert_eq(s->commit(s->ctx, a), RISK_OK, "%s", risk_error_last());
}

Test(journal, commits_out_of_seq_order_replay_in_seq_order)
{
    /* R-OP-5, R-AU-1, R-CC-3: a later seq may commit first (no sequencer
     * token: writers on different users never wait for each other); the
     * feed shows nothing past the open older seq, then both in order, and
     * so does a reopen, whichever way recovery runs */
    risk_store s;
    uint64_t sa, sb;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    commit_out_of_order(&s, &sa, &sb);
    hcol c = feed(&s, NULL, 0);
    cr_assert(c.n == 2 && c.seq[0] == sa && c.seq[1] == sb);
    jclose(&s);
    cr_assert_eq(header_version(path), 2);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    for (int pipe = 0; pipe < 2; pipe++) {
        uint64_t keep = journal_pipe_min;
        journal_pipe_min = pipe ? 0 : keep;
        cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK, "%s",
                     risk_error_last());
        journal_pipe_min = keep;
        c = feed(&s, NULL, 0);
        cr_assert(c.n == 2 && c.seq[0] == sa && c.seq[1] == sb, "pipe %d", pipe);
        c = feed(&s, NULL, sb);
        cr_assert(c.n == 1 && c.seq[0] == sb);
        uint64_t next;
        void *t = open_with_item(&s, "c", &next);
        cr_assert_eq(next, sb + 1); /* numbering goes on after the largest */
        s.rollback(s.ctx, t);
        jclose(&s);
    }
}

Test(journal, rolled_back_older_seq_is_a_gap)
{
    /* R-OP-5: the older reservation rolls back after the younger commit:
     * its seq is a gap, the younger item shows, now and after a reopen */
    risk_store s;
    uint64_t sa, sb;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    void *a = open_with_item(&s, "a", &sa);
    void *b = open_with_item(&s, "b", &sb);
    cr_assert_eq(s.commit(s.ctx, b), RISK_OK);
    cr_assert_eq(feed(&s, NULL, 0).n, 0);
    s.rollback(s.ctx, a);
    hcol c = feed(&s, NULL, 0);
    cr_assert(c.n == 1 && c.seq[0] == sb);
    cr_assert_eq(feed(&s, "a", 0).n, 0);
    jclose(&s);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    c = feed(&s, NULL, 0);
    cr_assert(c.n == 1 && c.seq[0] == sb);
    jclose(&s);
}

Test(journal, one_user_out_of_order_stays_sorted)
{
    /* R-OP-5: without the engine's per-user lock two txns may append for
     * one user and commit in reverse order; the user's feed stays in seq
     * order, in memory, after a reopen and after compaction */
    risk_store s;
    uint64_t s1, s2, s3, s4;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    void *a = open_with_item(&s, "u", &s1);
    void *b = open_with_item(&s, "u", &s2);
    add_item(&s, a, "u", &s3);
    cr_assert_eq(s.commit(s.ctx, b), RISK_OK);
    void *d = open_with_item(&s, "u", &s4);
    cr_assert_eq(s.commit(s.ctx, d), RISK_OK);
    cr_assert_eq(s.commit(s.ctx, a), RISK_OK);
    for (int round = 0; round < 3; round++) {
        hcol c = feed(&s, "u", 0);
        cr_assert(c.n == 4 && c.seq[0] == s1 && c.seq[1] == s2 && c.seq[2] == s3 &&
                      c.seq[3] == s4,
                  "round %d: %d items", round, c.n);
        c = feed(&s, "u", s2 + 1);
        cr_assert(c.n == 2 && c.seq[0] == s3 && c.seq[1] == s4, "round %d", round);
        if (round == 0) {
            jclose(&s);
            cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
        } else if (round == 1)
            cr_assert_eq(s.compact(s.ctx), RISK_OK);
    }
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK);
}

Test(journal, feeds_longer_than_one_batch_in_seq_order)
{
    /* R-AU-1: the feed reads HIST_BATCH items per lock hold; across the
     * batch boundaries nothing is skipped or repeated, per user and in all */
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_OFF, 0, NULL), RISK_OK);
    enum { N = HIST_BATCH + 40 };
    uint64_t seqs[N];
    for (int i = 0; i < N; i += 2) { /* pairs committed in reverse order */
        void *x = open_with_item(&s, i % 4 ? "x" : "y", &seqs[i]);
        void *y = open_with_item(&s, "x", &seqs[i + 1]);
        cr_assert_eq(s.commit(s.ctx, y), RISK_OK);
        cr_assert_eq(s.commit(s.ctx, x), RISK_OK);
    }
    hcol c = {0};
    uint64_t last = 0;
    int n = 0;
    for (uint64_t since = 0;; since = last + 1) { /* in pages of 64 */
        c = (hcol){.stop_at = 64};
        int rc = s.read_history(s.ctx, NULL, since, collect, &c);
        cr_assert(rc == RISK_OK || rc == 42);
        for (int i = 0; i < c.n; i++, n++) {
            cr_assert_eq(c.seq[i], seqs[n]);
            last = c.seq[i];
        }
        if (c.n < 64)
            break;
    }
    cr_assert_eq(n, N);
    jclose(&s);
}

Test(journal, version_1_files_read_and_upgraded)
{
    /* R-IV-2, R-CC-3: a version-1 journal (items in seq order) opens
     * read-only as it is; a writable open rewrites it as version 2 (the
     * compaction procedure) with the same contents, before anything is
     * appended out of order */
    enum { N = 12 };
    digest dgs[N + 1];
    build(N, NULL, dgs);
    set_version(path, 1);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL), RISK_OK, "%s",
                 risk_error_last());
    cr_assert(dg_eq(take_digest(&s), dgs[N]));
    jclose(&s);
    cr_assert_eq(header_version(path), 1);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK, "%s",
                 risk_error_last());
    cr_assert_eq(header_version(path), 2);
    cr_assert(dg_eq(take_digest(&s), dgs[N]));
    uint64_t sa, sb;
    commit_out_of_order(&s, &sa, &sb);
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    /* the same bytes called version 1: out of order is corrupt there */
    set_version(path, 1);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), "not above") != NULL, "%s", risk_error_last());
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
}

Test(journal, one_seq_twice_is_corrupt)
{
    /* R-IV-2, R-AU-2: in any order, but each seq once: a frame repeating
     * an item (seq and all) is damage, on open and for the check; a commit
     * of a seq already in the journal is refused */
    build(3, NULL, NULL);
    risk_history *h = NULL;
    cr_assert_eq(risk_history_new(&h, 2, 5000, "tester", RISK_HISTORY_INGEST, "user-2", NULL,
                                  NULL),
                 RISK_OK);
    uint8_t item[512], payload[600];
    size_t n;
    cr_assert_eq(risk_history_encode(item, sizeof item, &n, h), RISK_OK);
    payload[0] = OP_HISTORY;
    put32(payload + 1, (uint32_t)n);
    memcpy(payload + 5, item, n);
    append_frame_raw(path, payload, (uint32_t)(5 + n));
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), "seq 2 appears twice") != NULL, "%s", risk_error_last());
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), "appears twice") != NULL, "%s", risk_error_last());
    unlink(path);
    build(3, NULL, NULL);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    void *txn;
    cr_assert_eq(s.begin(s.ctx, "user-2", &txn), RISK_OK);
    cr_assert_eq(s.append_history(s.ctx, txn, h), RISK_OK);
    cr_assert_eq(s.commit(s.ctx, txn), RISK_EINVAL);
    cr_assert(strstr(risk_error_last(), "already committed") != NULL, "%s", risk_error_last());
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK);
    risk_history_free(h);
}

Test(journal, the_first_damage_in_file_order_is_reported)
{
    /* R-IV-2: a record that does not decode, then a damaged frame with a
     * good one after it: both are damage, and open reports the first, on
     * the sequential path and through the two-thread pipeline alike
     * (tests/test_journal_pipe.c runs this again there: the pipeline
     * used to drop the records it had queued when its scan met the later
     * damage, and reported that instead) */
    build(3, NULL, NULL);
    risk_journal_stats st;
    uint8_t h[HDR_LEN];
    int fd = open_raw(path, &st, h);
    enum { PAY = 5 + 4 };
    uint8_t fr[3][FRAME_HDR + PAY];
    for (int i = 0; i < 3; i++) {
        uint8_t *p = fr[i] + FRAME_HDR;
        p[0] = i == 0 ? OP_USER : OP_META; /* a user of 4 bytes 0xFF: no user */
        put32(p + 1, 4);
        memset(p + 5, i == 0 ? 0xFF : 0, 4);
        seal_frame(fr[i], PAY, st.records_replayed + 1 + (uint64_t)i, h + 16);
    }
    fr[1][FRAME_HDR + 6] ^= 0x40; /* the second frame's checksum fails */
    uint64_t at = st.file_bytes;
    cr_assert_eq(pwrite(fd, fr, sizeof fr, (off_t)at), (ssize_t)sizeof fr);
    close(fd);
    char want[96];
    snprintf(want, sizeof want, "bad record in frame at byte offset %" PRIu64 " (payload byte 0)",
             at);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), want) != NULL, "%s", risk_error_last());
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), want) != NULL, "%s", risk_error_last());
}
