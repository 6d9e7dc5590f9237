/* The journal format's checks, the codec's encoder and the audit chain
 * against their documents (docs/journal-format.md, docs/encoding.md,
 * R-AU-1, R-AU-3, R-CC-3, R-IV-2).
 *
 * Found by mutation testing (2026-12-07): each test kills a change to
 * lib/journal_format.c, journal_replay.c, journal_compact.c,
 * store_journal.c, codec.c, audit.c or engine.c that the other suites let
 * through, and its comment names the mutant. */
#include "journal_raw.h"

#include <inttypes.h>
#include <stdatomic.h>

/* ---- helpers ---- */

/* One op (tag, body) as a payload. */
static uint32_t op_payload(uint8_t *out, uint8_t tag, const uint8_t *body, size_t n)
{
    out[0] = tag;
    put32(out + 1, (uint32_t)n);
    memcpy(out + 5, body, n);
    return (uint32_t)(5 + n);
}

static size_t history_bytes(uint8_t *out, size_t cap, uint64_t seq, const char *user)
{
    risk_history *h = NULL;
    size_t n = 0;
    cr_assert_eq(risk_history_new(&h, seq, 5000, "tester", RISK_HISTORY_INGEST, user, NULL, NULL),
                 RISK_OK);
    cr_assert_eq(risk_history_encode(out, cap, &n, h), RISK_OK);
    risk_history_free(h);
    return n;
}

static void set_header(const char *p, size_t at, uint32_t v)
{
    uint8_t h[HDR_LEN];
    int fd = open(p, O_RDWR);
    cr_assert(fd >= 0);
    cr_assert_eq(pread(fd, h, HDR_LEN, 0), HDR_LEN);
    put32(h + at, v);
    put32(h + 28, risk_crc32c(0, h, 28));
    cr_assert_eq(pwrite(fd, h, HDR_LEN, 0), HDR_LEN);
    close(fd);
}

/* Both the check and a read-only open refuse p with RISK_ECORRUPT; the
 * message of the open contains want (NULL: any). */
static void refused_everywhere(const char *p, const char *want)
{
    cr_assert_eq(risk_journal_check(p, NULL), RISK_ECORRUPT);
    risk_store s;
    int rc = jopen(&s, p, RISK_DURABILITY_FULL, 1, NULL);
    if (rc == RISK_OK)
        jclose(&s);
    cr_assert_eq(rc, RISK_ECORRUPT, "read-only open: %d", rc);
    if (want)
        cr_assert(strstr(risk_error_last(), want) != NULL, "%s", risk_error_last());
}

/* ---- frame validity (docs/journal-format.md, "Frame", "Recovery" 2.) ---- */

Test(journal, a_frame_of_zero_length_is_not_valid)
{
    /* "len: 1 ≤ len ≤ 256 MiB"; a frame is valid only when 1 ≤ len. A
     * correctly sealed empty frame is not a frame: it and the frame after
     * it (numbered t + 1, which cannot follow within 16 bytes) are a torn
     * tail, dropped by an open, refused by the check. (Mutant F02: `len == 0 ||` removed
     * from frame_at, so the empty frame was replayed and check said OK.) */
    uint64_t sizes[4];
    digest dgs[4];
    build(3, sizes, dgs);
    /* an empty frame numbered t, then a good frame numbered t + 1 */
    risk_journal_stats st;
    uint8_t h[HDR_LEN];
    int fd = open_raw(path, &st, h);
    frame_raw_at(fd, h + 16, st.file_bytes, st.records_replayed + 1, NULL, 0);
    uint8_t body[2 + 5] = {5, 0, 'k', 'e', 'y', '-', '9'}, pay[32];
    uint32_t n = op_payload(pay, OP_META, body, sizeof body);
    frame_raw_at(fd, h + 16, st.file_bytes + FRAME_HDR, st.records_replayed + 2, pay, n);
    close(fd);
    cr_assert_eq(file_size(path), sizes[3] + FRAME_HDR + FRAME_HDR + n);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
    opens_holding(path, 0, 3, FRAME_HDR + FRAME_HDR + n, dgs[3]);
    cr_assert_eq(file_size(path), sizes[3]);
}

Test(journal, frame_numbers_must_be_the_next_one)
{
    /* "txn: frame number: 1 for the first frame of the file, then +1
     * each"; valid only when txn == t. A well-sealed last frame numbered
     * t + 1 (one skipped) or t − 1 (an old number again) is not valid: a
     * torn tail, dropped by an open, refused by the check. (Mutants F04:
     * `txn < lo` removed; F05: `txn > hi` removed, in frame_at.) */
    uint8_t body[2 + 5] = {5, 0, 'k', 'e', 'y', '-', '9'}, pay[32];
    uint32_t n = op_payload(pay, OP_META, body, sizeof body);
    for (int d = -1; d <= 1; d += 2) {
        unlink(path);
        uint64_t sizes[4];
        digest dgs[4];
        build(3, sizes, dgs);
        risk_journal_stats st;
        uint8_t h[HDR_LEN];
        int fd = open_raw(path, &st, h);
        frame_raw_at(fd, h + 16, st.file_bytes, st.records_replayed + 1 + (uint64_t)(int64_t)d,
                     pay, n);
        close(fd);
        cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT, "txn t%+d", d);
        opens_holding(path, 0, 3, FRAME_HDR + n, dgs[3]);
        cr_assert_eq(file_size(path), sizes[3]);
    }
}

/* ---- header (docs/journal-format.md, "Header") ---- */

Test(journal, header_fields_are_checked_one_by_one)
{
    /* "A reader refuses (RISK_ECORRUPT) a file whose magic differs, ...
     * whose version is not one it reads, or whose flags or reserved field
     * are not zero." Each case has a correct header CRC. (Mutants F08:
     * version 0 accepted; F09: flags ignored; F10: reserved ignored;
     * F11: the magic's 8th byte not compared.) */
    struct {
        size_t at;
        uint32_t v;
        const char *want;
    } cases[] = {
        {8, 0, "format version 0"},
        {12, 1, "flags"},
        {24, 1, "reserved header field 0x1 is not 0 at byte offset 24"},
        {4, 0x004C4E4A /* "JNL\0" -> last byte changed below */, "not a journal"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unlink(path);
        build(1, NULL, NULL);
        uint32_t v = cases[i].v;
        if (cases[i].at == 4)
            v = 0x014C4E4A; /* "JNL\1": magic byte 7 is 0x01, not 0x00 */
        set_header(path, cases[i].at, v);
        refused_everywhere(path, cases[i].want);
        risk_store s; /* a writable open neither accepts nor rewrites it */
        uint64_t before = file_size(path);
        cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_ECORRUPT, "case %zu", i);
        cr_assert_eq(file_size(path), before);
    }
}

Test(journal, a_short_foreign_file_is_refused_not_rewritten)
{
    /* "A file shorter than 32 bytes whose first min(size, 8) bytes match
     * the magic is a torn header ... Anything else short or wrong is
     * RISK_ECORRUPT." A 10-byte text file is not a torn header: a writable
     * open must not replace it with a fresh journal. (Mutant F12: the
     * short-file magic comparison skipped: the file was overwritten.) */
    static const char text[] = "hello, wo\n";
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    refused_everywhere(path, "not a journal");
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_ECORRUPT);
    cr_assert_eq(file_size(path), sizeof text - 1);
    char got[32] = {0};
    f = fopen(path, "r");
    cr_assert_not_null(fgets(got, sizeof got, f));
    fclose(f);
    cr_assert_str_eq(got, text);
}

/* ---- tail or middle (docs/journal-format.md, "Recovery" 3.) ---- */

Test(journal, a_frame_numbered_beyond_what_fits_is_a_torn_tail)
{
    /* The search accepts a later frame only with a number in
     * [t, t + (q − o) / 17]. Five junk bytes, then a well-sealed frame
     * numbered t + 1: (q − o) / 17 = 0, so it cannot follow and the bytes
     * are a torn tail (dropped), not damage in the middle. (Mutant F16:
     * the bound one higher: ECORRUPT, the journal no longer opens.) */
    uint64_t sizes[4];
    digest dgs[4];
    build(3, sizes, dgs);
    risk_journal_stats st;
    uint8_t h[HDR_LEN];
    int fd = open_raw(path, &st, h);
    uint8_t junk[5] = {0xde, 0xad, 0xbe, 0xef, 0x01};
    cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)st.file_bytes), (ssize_t)sizeof junk);
    uint8_t body[2 + 5] = {5, 0, 'k', 'e', 'y', '-', '9'}, pay[32];
    uint32_t n = op_payload(pay, OP_META, body, sizeof body);
    frame_raw_at(fd, h + 16, st.file_bytes + sizeof junk, st.records_replayed + 2, pay, n);
    close(fd);
    uint64_t total = file_size(path);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), "torn tail") != NULL, "%s", risk_error_last());
    opens_holding(path, 0, 3, total - sizes[3], dgs[3]);
    cr_assert_eq(file_size(path), sizes[3]);
}

Test(journal, a_byte_inserted_before_the_last_frame_is_damage)
{
    /* "the reader searches every later offset q (o < q)". One stray byte
     * before the last frame shifts it by one: the frame at o + 1 is valid
     * with the expected number, so the damage is in the middle (nothing
     * truncated), not a torn tail that silently drops an acknowledged
     * commit. (Mutant F17: the search started at o + 16.) */
    enum { N = 5 };
    uint64_t sizes[N + 1];
    build(N, sizes, NULL);
    uint64_t o = sizes[N - 1], last = sizes[N] - sizes[N - 1];
    uint8_t *fr = malloc(last + 1);
    cr_assert_not_null(fr);
    int fd = open(path, O_RDWR);
    cr_assert_eq(pread(fd, fr + 1, last, (off_t)o), (ssize_t)last);
    fr[0] = 0x5a;
    cr_assert_eq(pwrite(fd, fr, last + 1, (off_t)o), (ssize_t)(last + 1));
    close(fd);
    free(fr);
    char want[128];
    snprintf(want, sizeof want, "damaged frame at byte offset %" PRIu64
             " (a valid frame follows at byte offset %" PRIu64 ")", o, o + 1);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), want) != NULL, "%s", risk_error_last());
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_ECORRUPT);
    cr_assert(strstr(risk_error_last(), want) != NULL, "%s", risk_error_last());
    cr_assert_eq(file_size(path), sizes[N] + 1, "the file was cut");
}

/* ---- records inside frames (docs/journal-format.md, "Payload") ---- */

Test(journal, a_history_item_with_a_trailing_byte_is_refused_by_open)
{
    /* "a body that does not decode is a corrupt frame"; journal_hist.c's
     * walker "accepts exactly what risk_history_decode accepts". An item
     * with one byte after its chain hash fails to decode: the open must
     * refuse it as the check does. (Mutant R03: recovery called
     * hist_peek with check = 0, which only locates seq and user.) */
    build(2, NULL, NULL);
    uint8_t item[600], pay[700];
    size_t n = history_bytes(item, sizeof item, 7, "user-1");
    item[n++] = 0; /* trailing byte */
    append_frame_raw(path, pay, op_payload(pay, OP_HISTORY, item, n));
    refused_everywhere(path, "bad record in frame");
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_ECORRUPT);
}

Test(journal, history_seq_zero_is_corrupt_for_the_check_too)
{
    /* "a reader treats a seq seen before, or 0, as corruption" (the check
     * as the open). (Mutant F30: check_op's seq == 0 test removed.) */
    build(2, NULL, NULL);
    uint8_t item[600], pay[700];
    size_t n = history_bytes(item, sizeof item, 1, "user-1");
    cr_assert_eq(item[2], 1); /* kind, version, then seq 1 as one varint byte */
    item[2] = 0;
    append_frame_raw(path, pay, op_payload(pay, OP_HISTORY, item, n));
    refused_everywhere(path, NULL);
}

Test(journal, version_1_seq_order_is_enforced)
{
    /* "In version 1 they appear in strictly increasing seq across the
     * whole file, and a reader treats a seq not above every earlier one as
     * corruption." A version-1 file with items 1, 2, 5, 4 (no seq twice):
     * refused by the open and the check. (Mutant R09: replay never raised
     * its running maximum; F27: the check accepted an equal seq.) */
    build(2, NULL, NULL);
    uint8_t item[600], pay[700];
    size_t n = history_bytes(item, sizeof item, 5, "user-1");
    append_frame_raw(path, pay, op_payload(pay, OP_HISTORY, item, n));
    n = history_bytes(item, sizeof item, 4, "user-1");
    append_frame_raw(path, pay, op_payload(pay, OP_HISTORY, item, n));
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last()); /* v2: fine */
    set_header(path, 8, 1);
    refused_everywhere(path, "seq 4 not above 5");
    /* the check: an equal seq (v1 does not look for repeats separately) */
    unlink(path);
    build(2, NULL, NULL);
    n = history_bytes(item, sizeof item, 2, "user-1");
    append_frame_raw(path, pay, op_payload(pay, OP_HISTORY, item, n));
    set_header(path, 8, 1);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
}

Test(journal, meta_and_policy_removal_bodies_are_checked)
{
    /* "put meta: key length k (u16), k key bytes (1–256, no NUL), then the
     * value (0–256 bytes)"; "remove policy: the policy name, no
     * terminator: a valid id". A 257-byte value and a name with a NUL in
     * it are corrupt frames, and so is an empty key, for the check and the
     * open alike. (Mutants F31/R04: value bound 257; R05: `klen == 0`
     * dropped from replay; F32/R06: the NUL test on the name.) */
    uint8_t body[600], pay[700];
    body[0] = 3, body[1] = 0;
    memcpy(body + 2, "key", 3);
    memset(body + 5, 'v', 257);
    build(1, NULL, NULL);
    append_frame_raw(path, pay, op_payload(pay, OP_META, body, 5 + 257));
    refused_everywhere(path, "meta");
    unlink(path); /* an empty key (k = 0) */
    build(1, NULL, NULL);
    body[0] = 0, body[1] = 0, body[2] = 'v';
    append_frame_raw(path, pay, op_payload(pay, OP_META, body, 3));
    refused_everywhere(path, "meta");
    unlink(path);
    build(1, NULL, NULL);
    memcpy(body, "policy-0\0x", 10);
    append_frame_raw(path, pay, op_payload(pay, OP_POLICY_REMOVE, body, 10));
    refused_everywhere(path, NULL);
}

Test(journal, op_tag_zero_is_corrupt)
{
    /* "Any other tag ... is a corrupt frame": tag 0 with a history item's
     * body is not a history item. (Mutant F24: `p[pos] == 0 ||` removed.) */
    build(2, NULL, NULL);
    uint8_t item[600], pay[700];
    size_t n = history_bytes(item, sizeof item, 9, "user-1");
    append_frame_raw(path, pay, op_payload(pay, 0, item, n));
    refused_everywhere(path, "bad tag");
}

/* ---- syncs (docs/journal-format.md, "Recovery"; store.md) ---- */

static atomic_int dir_syncs, file_syncs; /* file_syncs: kept for symmetry */
static void classify_sync(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        atomic_fetch_add(&dir_syncs, 1);
    else
        atomic_fetch_add(&file_syncs, 1);
}

Test(journal, creating_a_journal_syncs_its_directory)
{
    /* R-CC-3: a new journal's name is made durable (the directory synced)
     * before the open returns, unless durability is off. (Mutant F23:
     * fsync_dir skipped its sync_dir.) */
    atomic_store(&dir_syncs, 0);
    risk_journal_test_before_sync(classify_sync);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    risk_journal_test_before_sync(NULL);
    cr_assert_geq(atomic_load(&dir_syncs), 1);
    jclose(&s);
    /* and its failure is the open's: the header's sync, then the directory's */
    unlink(path);
    risk_journal_test_fail_sync(2);
    int rc = jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL);
    risk_journal_test_fail_sync(0);
    if (rc == RISK_OK)
        jclose(&s);
    cr_assert_eq(rc, RISK_EIO);
}

Test(journal, dropping_a_torn_tail_is_synced)
{
    /* "A writable open truncates the file to o (and syncs it, unless
     * durability is off)". (Mutant S02: the sync after the truncation
     * dropped.) A failing sync there fails the open. */
    uint64_t sizes[4];
    build(3, sizes, NULL);
    cr_assert_eq(truncate(path, (off_t)(sizes[3] - 3)), 0);
    risk_store s;
    risk_journal_test_fail_sync(1);
    int rc = jopen(&s, path, RISK_DURABILITY_NORMAL, 0, NULL);
    risk_journal_test_fail_sync(0);
    if (rc == RISK_OK)
        jclose(&s);
    cr_assert_eq(rc, RISK_EIO);
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_NORMAL, 0, NULL), RISK_OK);
    jclose(&s);
    cr_assert_eq(file_size(path), sizes[2]);
}

Test(journal, the_search_after_damage_is_bounded)
{
    /* Found by fuzzing: after a damaged frame, every later offset whose
     * bytes look like a frame header had its claimed payload checksummed,
     * so a file of crafted headers each claiming half the file cost
     * (offsets) x (half the file): 3.7 s for 1 MiB, hours for 16 MiB, and
     * the open then dropped it all as a torn tail. The search now gives up
     * after a budget and reports damage (RISK_ECORRUPT), dropping nothing
     * that might not be a torn tail. */
    build(1, NULL, NULL);
    risk_journal_stats st;
    uint8_t h[HDR_LEN];
    int fd = open_raw(path, &st, h);
    const uint32_t size = 1u << 20;
    cr_assert_eq(ftruncate(fd, HDR_LEN), 0);
    for (uint32_t off = HDR_LEN; off < size; off += FRAME_HDR) {
        uint8_t u[FRAME_HDR] = {0};
        put32(u, size / 2);
        put64(u + 4, 1); /* the frame number expected; the CRC never matches */
        cr_assert_eq(pwrite(fd, u, sizeof u, off), (ssize_t)sizeof u);
    }
    close(fd);
    refused_everywhere(path, "gave up");
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_ECORRUPT);
    cr_assert_eq(file_size(path), size); /* nothing cut */
}

/* ---- compaction (docs/journal-format.md, "Compaction and backup") ---- */

Test(journal, compaction_over_a_longer_stale_tmp)
{
    /* "A stale .tmp left by a crash is never read and is truncated by the
     * next attempt": a copy written over a longer leftover must not keep
     * its tail. (Mutant C03: the ftruncate of path.tmp skipped: the new
     * journal ended in the old bytes, a torn tail the check refuses.) */
    enum { N = 8 };
    digest dgs[N + 1];
    build(N, NULL, dgs);
    char tmp[sizeof path + 4];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    static uint8_t junk[1 << 16];
    memset(junk, 0xA5, sizeof junk);
    cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    cr_assert_eq(s.compact(s.ctx), RISK_OK, "%s", risk_error_last());
    jclose(&s);
    cr_assert_lt(file_size(path), sizeof junk);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, &st), RISK_OK);
    cr_assert_eq(st.bytes_dropped, 0);
    cr_assert(dg_eq(take_digest(&s), dgs[N]));
    jclose(&s);
}

/* Security review: the scratch file of a compaction or backup is never a
 * file someone else chose. Before, a symbolic link planted at path.tmp
 * had the copy written into the file it named, and the rename left the
 * destination a link to it; a leftover of mode 0666 gave the compacted
 * journal that mode. Now a link, or a file with another name, is refused
 * and left alone, and a plain leftover becomes 0600. */
Test(journal, scratch_file_is_never_a_link_or_shared)
{
    build(4, NULL, NULL);
    char tmp[sizeof path + 4], victim[sizeof dir + 16], bk[sizeof dir + 16], bktmp[sizeof dir + 20];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(bk, sizeof bk, "%s/bk", dir);
    snprintf(bktmp, sizeof bktmp, "%s/bk.tmp", dir);
    int fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "precious\n", 9), 9);
    close(fd);
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    digest before = take_digest(&s);

    /* a link at the backup's scratch name */
    cr_assert_eq(symlink(victim, bktmp), 0);
    cr_assert_eq(s.backup(s.ctx, bk), RISK_EIO);
    cr_assert(strstr(risk_error_last(), "symbolic link") != NULL, "%s", risk_error_last());
    struct stat st;
    cr_assert_eq(lstat(bk, &st), -1, "the failed backup left its destination");
    cr_assert_eq(lstat(bktmp, &st), 0);
    int is_link = S_ISLNK(st.st_mode);
    cr_assert(is_link, "the planted link was replaced");
    cr_assert_eq(file_size(victim), 9);
    unlink(bktmp);

    /* a link, then a second name of another file, at the journal's */
    cr_assert_eq(symlink(victim, tmp), 0);
    cr_assert_eq(s.compact(s.ctx), RISK_EIO);
    cr_assert_eq(file_size(victim), 9);
    unlink(tmp);
    cr_assert_eq(link(victim, tmp), 0);
    cr_assert_eq(s.compact(s.ctx), RISK_EIO);
    cr_assert(strstr(risk_error_last(), "one name") != NULL, "%s", risk_error_last());
    cr_assert_eq(file_size(victim), 9);
    unlink(tmp);

    /* a plain leftover of mode 0666: used, and the journal stays 0600 */
    mode_t old = umask(0);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    umask(old);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(s.compact(s.ctx), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert(dg_eq(take_digest(&s), before));
    cr_assert_eq(s.backup(s.ctx, bk), RISK_OK, "%s", risk_error_last());
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(risk_journal_check(bk, NULL), RISK_OK, "%s", risk_error_last());
    unlink(victim), unlink(bk);
}

/* ---- the audit chain (docs/encoding.md, "The body", "An anchor") ---- */

static int count_items(const risk_history *h, void *arg)
{
    (void)h;
    ++*(int *)arg;
    return 0;
}

static risk_engine *audit_engine(risk_store *st)
{
    risk_engine *e = NULL;
    cr_assert_eq(risk_memory_store_new(st), RISK_OK);
    cr_assert_eq(risk_engine_new(&e, st, NULL), RISK_OK);
    const char *users[] = {"bob", "alice", "carol-with-a-long-name", "al"};
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof id, "ev-%d", i);
        risk_event *ev = NULL;
        cr_assert_eq(risk_event_new(&ev, id, users[i % 4], "leakedCredentials",
                                    RISK_LEVEL_LOW + i % 3, risk_engine_now(e)),
                     RISK_OK);
        cr_assert_eq(risk_engine_ingest(e, "detector", ev, 0), RISK_OK, "%s", risk_error_last());
        risk_event_free(ev);
    }
    risk_policy *p = NULL;
    cr_assert_eq(risk_policy_new(&p, "pol", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK), RISK_OK);
    cr_assert_eq(risk_engine_policy_set(e, "admin", p), RISK_OK, "%s", risk_error_last());
    risk_policy_free(p);
    return e;
}

/* Recompute every chain from its definition: SHA-256(previous chain of
 * the same subject ‖ the encoding minus its last 32 bytes), the first
 * from 32 zero bytes. Also keeps each subject's head for the anchor. */
typedef struct chains {
    char subj[16][RISK_ID_MAX + 1];
    uint8_t head[16][32];
    int n, items, bad;
} chains;

static int recompute(const risk_history *h, void *arg)
{
    chains *c = arg;
    const char *subj = risk_history_user_id(h) ? risk_history_user_id(h) : "";
    int i = 0;
    while (i < c->n && strcmp(c->subj[i], subj) != 0)
        i++;
    if (i == c->n) {
        cr_assert_lt(c->n, 16);
        snprintf(c->subj[c->n], sizeof c->subj[0], "%s", subj);
        memset(c->head[c->n], 0, 32);
        c->n++;
    }
    uint8_t buf[4096], md[32];
    size_t n;
    cr_assert_eq(risk_history_encode(buf, sizeof buf, &n, h), RISK_OK);
    risk_sha256_ctx x;
    risk_sha256_init(&x);
    risk_sha256_update(&x, c->head[i], 32);
    risk_sha256_update(&x, buf, n - 32);
    risk_sha256_final(&x, md);
    if (memcmp(md, buf + n - 32, 32) != 0)
        c->bad++;
    memcpy(c->head[i], buf + n - 32, 32);
    c->items++;
    return 0;
}

static int by_subject(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(audit, chain_and_anchor_hashes_are_the_documented_ones)
{
    /* R-AU-1: chain = SHA-256(previous chain of the same subject ‖ body);
     * R-AU-3 / docs/encoding.md: anchor = SHA-256("librisk-anchor-1", then
     * per subject in increasing byte order: u32le length, id, head).
     * Computed here independently, so a change of the hashed fields or
     * their order is visible even though the library stays consistent
     * with itself. (Mutants A17: prev and body swapped; A06: length
     * prefix dropped; A07: id and head swapped; A08: subjects unsorted;
     * A15: the domain string dropped.) */
    risk_store st;
    risk_engine *e = audit_engine(&st);
    chains c;
    memset(&c, 0, sizeof c);
    cr_assert_eq(risk_engine_history_feed(e, 0, recompute, &c), RISK_OK, "%s", risk_error_last());
    int all = 0;
    cr_assert_eq(risk_engine_history_feed(e, 0, count_items, &all), RISK_OK);
    cr_assert_gt(c.items, 8);
    cr_assert_eq(c.bad, 0, "%d of %d chain hashes differ from SHA-256(prev ‖ body)", c.bad,
                 c.items);
    cr_assert_eq(c.n, 5); /* four users and the policy set */
    /* sort (subject, head) pairs by subject */
    struct {
        char s[RISK_ID_MAX + 1];
        uint8_t h[32];
    } v[16];
    for (int i = 0; i < c.n; i++) {
        memcpy(v[i].s, c.subj[i], sizeof v[i].s);
        memcpy(v[i].h, c.head[i], 32);
    }
    qsort(v, (size_t)c.n, sizeof v[0], by_subject);
    risk_sha256_ctx x;
    uint8_t want[32];
    risk_sha256_init(&x);
    risk_sha256_update(&x, "librisk-anchor-1", 16);
    for (int i = 0; i < c.n; i++) {
        uint32_t len = (uint32_t)strlen(v[i].s);
        uint8_t lb[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                         (uint8_t)(len >> 24)};
        risk_sha256_update(&x, lb, 4);
        risk_sha256_update(&x, v[i].s, len);
        risk_sha256_update(&x, v[i].h, 32);
    }
    risk_sha256_final(&x, want);
    risk_anchor a;
    cr_assert_eq(risk_engine_history_anchor(e, &a), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(a.subjects, (uint32_t)c.n);
    cr_assert_eq(a.seq, (uint64_t)all);
    cr_assert(memcmp(a.hash, want, 32) == 0, "anchor hash is not the documented SHA-256");
    risk_engine_free(e);
}

Test(journal, an_op_running_past_its_payload_is_corrupt)
{
    /* "The payload is a sequence of operations laid end to end, filling it
     * exactly ... a body that runs past the payload ... is a corrupt
     * frame." A meta op whose length says 1 to 5 bytes more than the
     * payload holds. (Mutant F26: the bound `n > len - pos - 5` relaxed to
     * `n > len - pos`: the op read the bytes after the frame and the
     * frame was accepted.) */
    for (uint32_t extra = 1; extra <= 5; extra++) {
        unlink(path);
        build(2, NULL, NULL);
        uint8_t body[2 + 5 + 8] = {5, 0, 'k', 'e', 'y', '-', '9', 1, 2, 3, 4, 5, 6, 7, 8}, pay[64];
        uint32_t n = op_payload(pay, OP_META, body, sizeof body);
        put32(pay + 1, (uint32_t)sizeof body + extra);
        append_frame_raw(path, pay, n);
        refused_everywhere(path, "bad tag or length");
    }
}

Test(codec, encoder_refuses_enums_below_their_range)
{
    /* docs/encoding.md: an event's level is enum[1..3] and a policy's
     * threshold enum[1..3]; "the encoder runs the same validation as the
     * decoder, so the library never writes what it could not read back".
     * RISK_LEVEL_NONE (0) in either is refused by the encoder. (Mutant K16:
     * `v < f->lo ||` removed from enc_field: the encoder wrote bytes its
     * own decoder refuses.) */
    risk_event *e = NULL;
    cr_assert_eq(risk_event_new(&e, "ev-1", "alice", "leakedCredentials", RISK_LEVEL_LOW, 1000),
                 RISK_OK);
    e->level = RISK_LEVEL_NONE;
    uint8_t buf[1024];
    size_t n = 0;
    cr_assert_eq(risk_event_encode(buf, sizeof buf, &n, e), RISK_EINVAL);
    cr_assert(strstr(risk_error_last(), "level") != NULL, "%s", risk_error_last());
    cr_assert_eq(risk_event_encode_trusted(buf, sizeof buf, &n, e), RISK_EINVAL);
    risk_event_free(e);
    risk_policy *p = NULL;
    cr_assert_eq(risk_policy_new(&p, "pol", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK), RISK_OK);
    p->threshold = RISK_LEVEL_NONE;
    cr_assert_eq(risk_policy_encode(buf, sizeof buf, &n, p), RISK_EINVAL);
    cr_assert(strstr(risk_error_last(), "threshold") != NULL, "%s", risk_error_last());
    risk_policy_free(p);
}

Test(audit, verify_refuses_an_anchor_of_another_version)
{
    /* R-AU-3, R-IV-1: an anchor of a version this library does not write
     * is refused (RISK_EINVAL), not compared as if it were version 1.
     * (Mutant A13: the version check in risk_engine_verify_history
     * skipped: the otherwise matching anchor verified.) */
    risk_store st;
    risk_engine *e = audit_engine(&st);
    risk_anchor a;
    cr_assert_eq(risk_engine_history_anchor(e, &a), RISK_OK);
    cr_assert_eq(risk_engine_verify_history(e, &a, NULL), RISK_OK, "%s", risk_error_last());
    a.version = RISK_ANCHOR_VERSION + 1;
    cr_assert_eq(risk_engine_verify_history(e, &a, NULL), RISK_EINVAL);
    cr_assert(strstr(risk_error_last(), "version") != NULL, "%s", risk_error_last());
    risk_engine_free(e);
}

Test(audit, a_policy_chain_head_of_the_wrong_length_is_named)
{
    /* docs/store.md / journal-format.md: the meta value `chain:policies`
     * is the 32-byte head of the policy set's chain. A head of another
     * length is RISK_EVERIFY saying so (not compared as 32 bytes of which
     * only some were read). (Mutant A14: the length check skipped.) */
    risk_store st;
    risk_engine *e = audit_engine(&st);
    void *txn = NULL;
    cr_assert_eq(st.begin(st.ctx, NULL, &txn), RISK_OK);
    uint8_t five[5] = {1, 2, 3, 4, 5};
    cr_assert_eq(st.put_meta(st.ctx, txn, "chain:policies", five, sizeof five), RISK_OK);
    cr_assert_eq(st.commit(st.ctx, txn), RISK_OK);
    cr_assert_eq(risk_engine_verify_history(e, NULL, NULL), RISK_EVERIFY);
    cr_assert(strstr(risk_error_last(), "5 bytes, not 32") != NULL, "%s", risk_error_last());
    risk_engine_free(e);
}

Test(codec, encoder_refuses_a_repeated_list_id)
{
    /* docs/encoding.md: include/exclude are "sorted unique lists"; the
     * decoder refuses a repeated id, so the encoder must not write one.
     * (Mutant K17: the encoder's `strcmp(...) >= 0` relaxed to `> 0`:
     * duplicates were written, then refused on reading back.) */
    risk_policy *p = NULL;
    cr_assert_eq(risk_policy_new(&p, "pol", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK), RISK_OK);
    cr_assert_eq(risk_policy_include_add(p, "alice"), RISK_OK);
    cr_assert_eq(risk_policy_include_add(p, "bob"), RISK_OK);
    cr_assert_eq(p->n_include, 2);
    char *keep = p->include[1];
    p->include[1] = p->include[0]; /* alice, alice */
    uint8_t buf[1024];
    size_t n = 0;
    int rc = risk_policy_encode(buf, sizeof buf, &n, p);
    p->include[1] = keep;
    cr_assert_eq(rc, RISK_EINVAL);
    cr_assert(strstr(risk_error_last(), "sorted and unique") != NULL, "%s", risk_error_last());
    risk_policy_free(p);
}

Test(audit, an_old_anchor_holds_after_an_anchored_chain_grows)
{
    /* R-AU-3: "nothing before the anchor can change unseen" — and items
     * after it are allowed: the check compares each chain's head as of
     * the anchor's seq. Here the anchored subject "bob" gets a new item.
     * (Mutant A09: anchor_hash used the current head instead of the head
     * as of the anchor: every old anchor failed once a chain it covers
     * grew.) */
    risk_store st;
    risk_engine *e = audit_engine(&st);
    risk_anchor a;
    cr_assert_eq(risk_engine_history_anchor(e, &a), RISK_OK);
    risk_event *ev = NULL;
    cr_assert_eq(risk_event_new(&ev, "ev-late", "bob", "leakedCredentials", RISK_LEVEL_HIGH,
                                risk_engine_now(e)),
                 RISK_OK);
    cr_assert_eq(risk_engine_ingest(e, "detector", ev, 0), RISK_OK, "%s", risk_error_last());
    risk_event_free(ev);
    cr_assert_eq(risk_engine_verify_history(e, &a, NULL), RISK_OK, "%s", risk_error_last());
    risk_engine_free(e);
}
