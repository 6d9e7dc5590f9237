/* The journal's file framing, its replay on open and the record codec,
 * against docs/journal-format.md, docs/encoding.md and the SPEC.
 *
 * Found by a fifth round of mutation testing (2026-12-07) of
 * lib/journal_format.c, journal_replay.c and codec.c: each test kills at
 * least one change to those files that the other suites let through (the
 * mutant is named in the test's comment: F = journal_format.c,
 * R = journal_replay.c, C = codec.c). The journal tests run in the journal
 * fixture's suite (temp dir removed, fault hooks reset); the codec tests
 * in suite mutants5. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "journal_raw.h"
#include "record_fixture.h"

#include <inttypes.h>

TestSuite(mutants5, .fini = alloc_fail_reset);

/* ---- helpers ---- */

/* One op: tag, then a history item (seq, user) as its body. */
static uint32_t m5_hist_op(uint8_t *pay, size_t cap, uint8_t tag, uint64_t seq,
                           const char *user)
{
    risk_history *h = NULL;
    size_t n = 0;
    cr_assert_eq(risk_history_new(&h, seq, 5000, "tester", RISK_HISTORY_INGEST, user, NULL, NULL),
                 RISK_OK);
    cr_assert_eq(risk_history_encode(pay + 5, cap - 5, &n, h), RISK_OK, "%s", risk_error_last());
    risk_history_free(h);
    pay[0] = tag;
    put32(pay + 1, (uint32_t)n);
    return (uint32_t)(5 + n);
}

/* Append a frame holding one history item to the journal at path. */
static void m5_append_hist(uint8_t tag, uint64_t seq, const char *user)
{
    uint8_t pay[700];
    append_frame_raw(path, pay, m5_hist_op(pay, sizeof pay, tag, seq, user));
}

/* Append a frame holding one op: tag, then body. */
static void m5_append_op(uint8_t tag, const uint8_t *body, uint32_t len)
{
    uint8_t pay[64];
    cr_assert(len <= sizeof pay - 5);
    pay[0] = tag;
    put32(pay + 1, len);
    memcpy(pay + 5, body, len);
    append_frame_raw(path, pay, 5 + len);
}

/* The last failure's message names what. */
static void m5_said(const char *what)
{
    cr_assert(strstr(risk_error_last(), what) != NULL, "%s", risk_error_last());
}

/* Both the check and an open find the journal at path corrupt; each
 * message, when given, is what that one must name. */
static void m5_corrupt(const char *check_says, const char *open_says)
{
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
    if (check_says)
        m5_said(check_says);
    risk_store s;
    int rc = jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL);
    if (rc == RISK_OK)
        jclose(&s);
    cr_assert_eq(rc, RISK_ECORRUPT);
    if (open_says)
        m5_said(open_says);
}

/* The seqs read_history visits from since (all users). */
static hcol m5_seqs(risk_store *s, uint64_t since)
{
    hcol c = {0};
    int rc = s->read_history(s->ctx, NULL, since, collect, &c);
    cr_assert_eq(rc, RISK_OK, "%s", risk_error_last());
    return c;
}

/* ------------------------------------------------ journal: the check */

/* docs/journal-format.md, "Header": a file shorter than the header whose
 * bytes are a prefix of one is a torn header: an open starts it afresh,
 * risk_journal_check (strict: "every byte is a valid header followed by
 * valid frames") refuses it. (Mutant F3: `strict && r->size > 0` dropped
 * from scan, so the check said RISK_OK.) R-CC-3 */
Test(journal, m5_check_refuses_a_torn_header)
{
    uint8_t h[HDR_LEN], salt[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    make_header(h, salt);
    size_t lens[] = {1, 5, 8, 20, HDR_LEN - 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        unlink(path);
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, h, lens[i]), (ssize_t)lens[i]);
        close(fd);
        cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT, "%zu bytes", lens[i]);
        m5_said("torn header");
        cr_assert_eq(file_size(path), lens[i]); /* the check never writes */
    }
}

/* risk_journal_check: RISK_OK only when "every byte is a valid header
 * followed by valid frames"; an empty file has no header. (Mutant F33:
 * the `r.size == 0` refusal dropped: an empty file checked as sound.) */
Test(journal, m5_check_refuses_an_empty_file)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    risk_journal_stats st;
    cr_assert_eq(risk_journal_check(path, &st), RISK_ECORRUPT);
    m5_said("empty file");
}

/* risk_journal_check's stats: "frames checked (records_replayed) and the
 * file size" -- also when it finds a torn tail. (Mutant F29: file_bytes
 * was the end of the last good frame, 0 when the scan stopped early.) */
Test(journal, m5_check_stats_hold_the_file_size_on_a_torn_tail)
{
    uint64_t sizes[3];
    build(2, sizes, NULL);
    uint8_t junk[5] = {9, 9, 9, 9, 9};
    patch(path, sizes[2], junk, sizeof junk);
    risk_journal_stats st;
    memset(&st, 0xEE, sizeof st);
    cr_assert_eq(risk_journal_check(path, &st), RISK_ECORRUPT);
    m5_said("torn tail");
    cr_assert_eq(st.records_replayed, 2);
    cr_assert_eq(st.bytes_dropped, 0);
    cr_assert_eq(st.file_bytes, sizes[2] + sizeof junk);
}

/* ------------------------------------------------ journal: frames */

/* docs/journal-format.md, "Ops": tags 1 to 6; "any other tag ... is a
 * corrupt frame". Tag 7 (one past OP_HISTORY) holding a sound history
 * item is refused by the check and by the open. (Mutant F19:
 * `p[pos] >= OP_COUNT` became `>`: tag 7 was read as a history item.)
 * R-IV-2 */
Test(journal, m5_op_tag_one_past_the_last_is_corrupt)
{
    build(1, NULL, NULL);
    m5_append_hist(OP_COUNT, 2, "user-1");
    m5_corrupt("bad tag", NULL);
}

/* ------------------------------------------------ journal: history seqs */

/* "seq: 1 to 2^32 - 1" (docs/journal-format.md, the history index): the
 * largest seq is sound for the check and the open, and is read back.
 * (Mutants F25: check_op refused seq 2^32 - 1; R2: seq_ok refused it on
 * open.) R-IV-2 */
Test(journal, m5_history_seq_2_pow_32_minus_1_is_sound)
{
    build(1, NULL, NULL);
    m5_append_hist(OP_HISTORY, UINT32_MAX, "user-1");
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL), RISK_OK, "%s",
                 risk_error_last());
    hcol c = m5_seqs(&s, UINT32_MAX);
    jclose(&s);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.seq[0], UINT32_MAX);
}

/* ... and seq 2^32 is out of range: corrupt for the check as for the
 * open. (Mutant F26: check_op's bound became 2^32 + 1, so the check
 * accepted 2^32.) R-IV-2 */
Test(journal, m5_history_seq_2_pow_32_is_corrupt_for_the_check)
{
    build(1, NULL, NULL);
    m5_append_hist(OP_HISTORY, (uint64_t)UINT32_MAX + 1, "user-1");
    m5_corrupt("out of range", NULL);
}

/* Version 2: "in any order, but each seq once": the check finds a seq
 * repeated when the file holds just two items, both seq 1 (the smallest,
 * first after sorting). (Mutants F27: the duplicate search ran only for
 * more than two items; F28: it skipped the first pair.) R-IV-2 */
Test(journal, m5_check_finds_the_only_two_items_sharing_a_seq)
{
    build(1, NULL, NULL);
    m5_append_hist(OP_HISTORY, 1, "user-1");
    cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
    m5_said("seq 1 appears twice");
}

/* The history index is kept in chunks of 2^16 seqs, its chunk array
 * doubling from 16: a seq in chunk 16 (the first one past the initial
 * array) is indexed and read back after an open. (Mutant R14:
 * chunk_room grew the array while `cap < c`, leaving chunk 16 outside
 * it: the item was lost from the index.) R-CC-3 */
Test(journal, m5_history_seq_in_the_17th_index_chunk_is_read_back)
{
    const uint64_t far = (uint64_t)16 << HX_SHIFT;
    build(1, NULL, NULL);
    m5_append_hist(OP_HISTORY, far, "user-1");
    m5_append_hist(OP_HISTORY, far + 1, "user-2");
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL), RISK_OK, "%s",
                 risk_error_last());
    hcol c = m5_seqs(&s, far);
    jclose(&s);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.seq[0], far);
    cr_assert_eq(c.seq[1], far + 1);
}

/* ------------------------------------------------ journal: meta */

/* "put meta: key length k (u16), k key bytes (1–256, no NUL)": a key of
 * 256 bytes (k's high byte set) is written and read back. (Mutant F30:
 * put_meta_op wrote k's high byte as 0: the frame replayed as an empty
 * key, corrupt.) R-CC-3 */
Test(journal, m5_meta_key_of_256_bytes_round_trips)
{
    char key[RISK_ID_MAX + 1];
    memset(key, 'k', RISK_ID_MAX);
    key[RISK_ID_MAX] = '\0';
    const uint8_t val[3] = {7, 8, 9};
    risk_store s;
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 0, NULL), RISK_OK);
    void *txn;
    cr_assert_eq(s.begin(s.ctx, NULL, &txn), RISK_OK);
    cr_assert_eq(s.put_meta(s.ctx, txn, key, val, sizeof val), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(s.commit(s.ctx, txn), RISK_OK, "%s", risk_error_last());
    jclose(&s);
    cr_assert_eq(risk_journal_check(path, NULL), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(jopen(&s, path, RISK_DURABILITY_FULL, 1, NULL), RISK_OK, "%s",
                 risk_error_last());
    uint8_t got[256];
    size_t len = 0;
    cr_assert_eq(s.begin(s.ctx, NULL, &txn), RISK_OK);
    cr_assert_eq(s.get_meta(s.ctx, txn, key, got, sizeof got, &len), RISK_OK, "%s",
                 risk_error_last());
    cr_assert_eq(s.commit(s.ctx, txn), RISK_OK);
    jclose(&s);
    cr_assert_eq(len, sizeof val);
    cr_assert_eq(memcmp(got, val, sizeof val), 0);
}

/* A meta key with a NUL in it is a corrupt frame for the open as for the
 * check ("no NUL"); the open must not load it as the key cut at the NUL.
 * (Mutant R9: load_op's memchr on the key dropped: "key-0\0x" loaded as
 * "key-0".) R-IV-2 */
Test(journal, m5_open_refuses_a_meta_key_with_a_nul)
{
    build(1, NULL, NULL);
    const uint8_t body[] = {7, 0, 'k', 'e', 'y', '-', '0', 0, 'x', 1, 2};
    m5_append_op(OP_META, body, sizeof body);
    m5_corrupt(NULL, "meta");
}

/* ------------------------------------------------ codec */

/* LEB128 of v at p; the end. */
static uint8_t *m5_varint(uint8_t *p, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7F);
        v >>= 7;
        *p++ = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
    return p;
}

static uint8_t *m5_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p = m5_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

/* An event's bytes in docs/encoding.md's field order (ip, location,
 * source and note absent), with the closing fields as given: closed_at
 * as its wire varint (0: absent), closed_by NULL: absent. */
static size_t m5_event_bytes(uint8_t *b, uint8_t state, uint8_t reason, uint64_t closed_at_v,
                             const char *closed_by)
{
    uint8_t *p = b;
    *p++ = 'E';
    *p++ = RISK_CODEC_VERSION;
    p = m5_str(p, "ev-1");
    p = m5_str(p, "u1");
    p = m5_str(p, "leakedCredentials");
    *p++ = RISK_LEVEL_MEDIUM;
    p = m5_varint(p, 1000 + 1); /* detected_at 1000 */
    *p++ = RISK_TIMING_REALTIME;
    *p++ = 0, *p++ = 0, *p++ = 0; /* ip, location, source absent */
    *p++ = state;
    *p++ = reason;
    p = m5_varint(p, closed_at_v);
    *p++ = closed_by != NULL;
    if (closed_by != NULL)
        p = m5_str(p, closed_by);
    *p++ = 0; /* note absent */
    return (size_t)(p - b);
}

static int m5_event_decodes(const uint8_t *b, size_t n)
{
    risk_event *e = NULL;
    int rc = risk_event_decode(&e, b, n);
    risk_event_free(e);
    return rc;
}

/* docs/encoding.md, event consistency: "an active event has reason none,
 * no closed_at and no closed_by; a closed one has a reason other than
 * none, a closed_at and a closed_by" (SPEC §3). An active event carrying
 * closed_by, and a closed one without closed_at, are corrupt; both
 * sound shapes decode. (Mutants C19: the active-with-closed_by test
 * dropped from event_check; C20: the closed-without-closed_at test
 * dropped.) R-IV-2 */
Test(mutants5, event_closing_fields_must_agree_with_the_state)
{
    uint8_t b[128];
    size_t n = m5_event_bytes(b, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, 0, NULL);
    int rc = m5_event_decodes(b, n);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    n = m5_event_bytes(b, RISK_EVENT_CLOSED, RISK_CLOSE_RESOLVED, 2000 + 1, "admin");
    rc = m5_event_decodes(b, n);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());

    n = m5_event_bytes(b, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, 0, "admin");
    rc = m5_event_decodes(b, n);
    cr_assert(eq(int, rc, RISK_ECORRUPT));
    m5_said("active event with closed_by");
    n = m5_event_bytes(b, RISK_EVENT_CLOSED, RISK_CLOSE_RESOLVED, 0, "admin");
    rc = m5_event_decodes(b, n);
    cr_assert(eq(int, rc, RISK_ECORRUPT));
    m5_said("closed event without closed_at");
}

/* docs/encoding.md: a refused string is reported at "the offset of the
 * field's first byte (for a string, its length varint)", then the offset
 * inside the string. A user id that is not UTF-8 at byte 2 of the
 * encoding: "user: byte 2: id: ...". (Mutant C27: get_str reported the
 * offset after the string, byte 6.) R-IV-2 */
Test(mutants5, a_refused_string_is_reported_at_its_length_varint)
{
    const uint8_t b[] = {'U', RISK_CODEC_VERSION, 3, 'a', 0xFF, 'b'};
    risk_user *u = NULL;
    int rc = risk_user_decode(&u, b, sizeof b);
    cr_assert(eq(int, rc, RISK_ECORRUPT));
    cr_assert_null(u);
    cr_assert(eq(int, strncmp(risk_error_last(), "user: byte 2: id: ", 18), 0), "%s",
              risk_error_last());
}

/* The policy with the longest lists: RISK_POLICY_LIST_MAX ids (100000)
 * per list. Built by hand (the setters would take minutes): sorted,
 * unique ids u00000 .. u99999 in include, exclude empty. */
static uint8_t *m5_policy_max_bytes(size_t *len)
{
    uint8_t *b = malloc(64 + (size_t)RISK_POLICY_LIST_MAX * 7);
    cr_assert_not_null(b);
    uint8_t *p = b;
    *p++ = 'P';
    *p++ = RISK_CODEC_VERSION;
    p = m5_str(p, "pol");
    *p++ = RISK_MODE_ON;
    *p++ = RISK_LEVEL_HIGH;
    *p++ = RISK_CONTROL_BLOCK;
    p = m5_varint(p, RISK_POLICY_LIST_MAX);
    for (unsigned i = 0; i < RISK_POLICY_LIST_MAX; i++) {
        char id[16];
        snprintf(id, sizeof id, "u%05u", i);
        p = m5_str(p, id);
    }
    *p++ = 0; /* exclude: none */
    *len = (size_t)(p - b);
    return b;
}

/* A list of exactly RISK_POLICY_LIST_MAX ids decodes and re-encodes to
 * the same bytes; one id more is refused by the encoder (the library
 * never writes what it could not read back). (Mutants C6: dec_list
 * refused a list of the maximum length; C29: the encoder's bound became
 * max + 1.) R-IV-2, R-ST-3 */
Test(mutants5, policy_list_of_the_maximum_length)
{
    size_t n = 0;
    uint8_t *b = m5_policy_max_bytes(&n);
    risk_policy *p = NULL;
    int rc = risk_policy_decode(&p, b, n);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    size_t ni = p->n_include;
    cr_assert(eq(sz, ni, (size_t)RISK_POLICY_LIST_MAX));
    uint8_t *again = malloc(n);
    cr_assert_not_null(again);
    size_t m = 0;
    rc = risk_policy_encode(again, n, &m, p);
    cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
    cr_assert(eq(sz, m, n));
    cr_assert(eq(int, memcmp(again, b, n), 0));
    free(again);
    free(b);

    /* one more id ("v" sorts after u99999): not encodable */
    char **grown = risk_realloc(p->include, (ni + 1) * sizeof *grown);
    cr_assert_not_null(grown);
    p->include = grown;
    p->include[ni] = risk_strdup("v");
    cr_assert_not_null(p->include[ni]);
    p->n_include = ni + 1;
    rc = risk_policy_encode(NULL, 0, &m, p);
    cr_assert(eq(int, rc, RISK_EINVAL));
    m5_said("include");
    risk_policy_free(p);
}

/* risk_history_encode_body refuses what the table-driven encoder refuses
 * (the journal writes the body it returns): an item whose time is below
 * 0 is RISK_EINVAL, not written through the direct path. (Mutant C25:
 * `item->at >= 0` dropped from the direct path's range test.) R-IV-1 */
Test(mutants5, history_body_refuses_a_negative_time)
{
    risk_history *h = full_history();
    h->at = -2; /* what no setter stores (-1 is RISK_TIME_NONE) */
    uint8_t buf[1024];
    size_t n = 0;
    int rc = risk_history_encode(buf, sizeof buf, &n, h);
    cr_assert(eq(int, rc, RISK_EINVAL));
    rc = risk_history_encode_body(buf, sizeof buf, &n, h);
    cr_assert(eq(int, rc, RISK_EINVAL));
    m5_said("at");
    risk_history_free(h);
}

/* The trusted user encoder (the journal's) refuses what the table-driven
 * encoder refuses: a flag that is not 0 or 1 ("bool: 0 or 1",
 * docs/encoding.md) is RISK_EINVAL on every path. (Mutant C30: the direct
 * path's `deleted <= 1` became `<= 2`: it wrote a byte the decoder
 * refuses.) R-IV-1 */
Test(mutants5, trusted_user_encoder_refuses_a_flag_of_2)
{
    risk_user *u = full_user();
    u->deleted = 2; /* what no setter stores */
    uint8_t buf[1024];
    size_t n = 0;
    int rc = risk_user_encode(buf, sizeof buf, &n, u);
    cr_assert(eq(int, rc, RISK_EINVAL));
    rc = risk_user_encode_trusted(buf, sizeof buf, &n, u);
    cr_assert(eq(int, rc, RISK_EINVAL));
    m5_said("deleted");
    risk_user_free(u);
}

/* docs/encoding.md: an event's detected_at and a history item's at are
 * required times (`time`, not `time?`): the encoders refuse
 * RISK_TIME_NONE there rather than write the 0 the decoder refuses.
 * (Mutant C31: enc_field checked every time as optional.) R-IV-1 */
Test(mutants5, encoder_refuses_an_absent_required_time)
{
    risk_event *e = full_event();
    e->detected_at = RISK_TIME_NONE; /* what no setter stores */
    uint8_t buf[1024];
    size_t n = 0;
    int rc = risk_event_encode(buf, sizeof buf, &n, e);
    cr_assert(eq(int, rc, RISK_EINVAL));
    m5_said("detected_at");
    rc = risk_event_encode_trusted(buf, sizeof buf, &n, e);
    cr_assert(eq(int, rc, RISK_EINVAL));
    risk_event_free(e);
    risk_history *h = full_history();
    h->at = RISK_TIME_NONE;
    rc = risk_history_encode(buf, sizeof buf, &n, h);
    cr_assert(eq(int, rc, RISK_EINVAL));
    rc = risk_history_encode_body(buf, sizeof buf, &n, h);
    cr_assert(eq(int, rc, RISK_EINVAL));
    risk_history_free(h);
}

/* docs/encoding.md: an event's level is enum[1..3], a user's state
 * enum[0..5]; the encoders refuse one above the range (RISK_EINVAL)
 * rather than write a byte the decoder refuses, on the trusted path too.
 * (Mutant C21: enc_field's bound became hi + 1.) R-IV-1 */
Test(mutants5, encoder_refuses_enums_one_above_their_range)
{
    risk_event *e = full_event();
    e->level = RISK_LEVEL_HIGH + 1; /* what no setter stores */
    uint8_t buf[1024];
    size_t n = 0;
    int rc = risk_event_encode(buf, sizeof buf, &n, e);
    cr_assert(eq(int, rc, RISK_EINVAL));
    m5_said("level");
    rc = risk_event_encode_trusted(buf, sizeof buf, &n, e);
    cr_assert(eq(int, rc, RISK_EINVAL));
    risk_event_free(e);
    risk_user *u = full_user();
    u->state = RISK_STATE_CONFIRMED_COMPROMISED + 1;
    rc = risk_user_encode(buf, sizeof buf, &n, u);
    cr_assert(eq(int, rc, RISK_EINVAL));
    m5_said("state");
    rc = risk_user_encode_trusted(buf, sizeof buf, &n, u);
    cr_assert(eq(int, rc, RISK_EINVAL));
    risk_user_free(u);
}

/* "remove policy: the policy name, no terminator: a valid id"
 * (docs/journal-format.md): a name that is not UTF-8 is a corrupt frame
 * for the open as for the check, not the removal of a policy nobody has.
 * (Mutant R26: load_op's risk_check_id on the name dropped: the open
 * succeeded.) R-IV-2 */
Test(journal, m5_open_refuses_a_removed_policy_name_that_is_not_an_id)
{
    build(1, NULL, NULL);
    const uint8_t body[] = {'p', 'o', 'l', 0xFF};
    m5_append_op(OP_POLICY_REMOVE, body, sizeof body);
    m5_corrupt(NULL, "policy name");
}

/* risk_journal_check checks its path like every public function: NULL or
 * empty is RISK_EINVAL naming it, not an attempt to open "". (Mutant F36:
 * the empty-path test dropped: RISK_ENOTFOUND.) R-IV-1 */
Test(journal, m5_check_refuses_an_empty_path)
{
    risk_journal_stats st;
    cr_assert_eq(risk_journal_check("", &st), RISK_EINVAL);
    cr_assert(strncmp(risk_error_last(), "path: ", 6) == 0, "%s", risk_error_last());
    cr_assert_eq(risk_journal_check(NULL, &st), RISK_EINVAL);
}

/* The encoders: "buf destination of cap bytes (NULL with cap 0: measure
 * only)"; a real buffer of 0 bytes is too small (RISK_ERANGE, len says
 * how much is needed), not a measuring call that reports success with
 * nothing written. (Mutant C34: `buf == NULL &&` dropped from the
 * measuring-call test.) R-ST-3 */
Test(mutants5, a_buffer_of_0_bytes_is_too_small_not_a_measure)
{
    risk_user *u = full_user();
    size_t need = 0, len = 0;
    int rc = risk_user_encode(NULL, 0, &need, u);
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert_gt(need, 0);
    uint8_t buf[1];
    rc = risk_user_encode(buf, 0, &len, u);
    cr_assert(eq(int, rc, RISK_ERANGE));
    cr_assert(eq(sz, len, need));
    risk_user_free(u);
}
