/* The journal's in-place history reader (lib/journal_hist.c): recovery
 * indexes history items with hist_peek instead of risk_history_decode, so
 * the two must accept exactly the same bytes (R-IV-2, R-CC-3). Compared on
 * every single-byte change, deletion, insertion and truncation of sample
 * items, on random multi-byte damage, and on every history item of the
 * fuzz corpus (decoder and journal targets). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static long n_checked, n_accepted;

/* One input: both readers agree on yes/no, and on seq and user when yes. */
static void same(const uint8_t *p, size_t n)
{
    risk_history *h = NULL;
    int dec = risk_history_decode(&h, p, n);
    uint64_t seq = 0;
    const uint8_t *user = NULL;
    size_t ulen = 0;
    int pk = hist_peek(p, n, 1, &seq, &user, &ulen);
    n_checked++;
    cr_assert(dec == RISK_OK || dec == RISK_ECORRUPT, "decode rc %d", dec);
    cr_assert_eq(dec == RISK_OK, pk == 0, "decoder %s, peek %s on %zu bytes (%s)",
                 dec == RISK_OK ? "accepts" : "refuses", pk == 0 ? "accepts" : "refuses", n,
                 dec == RISK_OK ? "" : risk_error_last());
    if (dec == RISK_OK) {
        n_accepted++;
        cr_assert_eq(seq, h->seq);
        if (h->user_id == NULL) {
            cr_assert_null(user);
        } else {
            cr_assert_eq(ulen, strlen(h->user_id));
            cr_assert(memcmp(user, h->user_id, ulen) == 0);
        }
        /* the commit path's locate-only reading of our own bytes */
        uint64_t s2 = 0;
        const uint8_t *u2 = NULL;
        size_t l2 = 0;
        cr_assert_eq(hist_peek(p, n, 0, &s2, &u2, &l2), 0);
        cr_assert(s2 == seq && u2 == user && l2 == ulen);
    }
    risk_history_free(h);
}

/* Every single-byte variant of a valid item. */
static void sweep(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n + 2);
    cr_assert_not_null(b);
    same(p, n);
    for (size_t cut = 0; cut < n; cut++) /* truncations */
        same(p, cut);
    static const uint8_t extra[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, 'a'};
    for (size_t k = 0; k < sizeof extra; k++) { /* one byte too many */
        memcpy(b, p, n);
        b[n] = extra[k];
        same(b, n + 1);
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(b, p, n);
        for (unsigned v = 0; v < 256; v++) { /* every value at every offset */
            b[i] = (uint8_t)v;
            same(b, n);
        }
        memcpy(b, p, i); /* deletion of byte i */
        memcpy(b + i, p + i + 1, n - i - 1);
        same(b, n - 1);
        for (size_t k = 0; k < sizeof extra; k++) { /* insertion before byte i */
            memcpy(b, p, i);
            b[i] = extra[k];
            memcpy(b + i + 1, p + i, n - i);
            same(b, n + 1);
        }
    }
    free(b);
}

/* Random damage: 1-4 bytes changed, a fixed seed (xorshift). */
static void damage(const uint8_t *p, size_t n, int rounds)
{
    uint64_t x = 0x9E3779B97F4A7C15u ^ n;
    uint8_t *b = malloc(n);
    cr_assert_not_null(b);
    for (int r = 0; r < rounds; r++) {
        memcpy(b, p, n);
        int k = 1 + (int)(x % 4);
        for (int j = 0; j < k; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[(x >> 8) % n] = (uint8_t)x;
        }
        same(b, n);
    }
    free(b);
}

static size_t encode(const risk_history *h, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    cr_assert_eq(risk_history_encode(buf, cap, &n, h), RISK_OK);
    return n;
}

/* R-IV-2 */
Test(journal_hist, samples_sweep)
{
    uint8_t buf[4096];
    risk_history *h = NULL;
    /* the smallest item: no user, no event, no policy, no note */
    cr_assert_eq(risk_history_new(&h, 1, 0, "a", RISK_HISTORY_INGEST, NULL, NULL, NULL), RISK_OK);
    size_t n = encode(h, buf, sizeof buf);
    sweep(buf, n);
    damage(buf, n, 20000);
    risk_history_free(h);

    /* every field present, the largest numbers, non-ASCII strings, a note
     * with the control characters a note may hold */
    uint8_t chain[32];
    for (int i = 0; i < 32; i++)
        chain[i] = (uint8_t)(0xA0 + i);
    cr_assert_eq(risk_history_new(&h, UINT64_MAX, RISK_TIME_MAX - 1, "admin@example.com",
                                  RISK_HISTORY_POLICY_REMOVE, "us\xc3\xa9r-\xe2\x82\xac",
                                  "ev-\xf0\x9f\x94\x91", "pol"),
                 RISK_OK);
    cr_assert_eq(risk_history_set_change(h, RISK_LEVEL_HIGH, RISK_LEVEL_NONE,
                                         RISK_STATE_CONFIRMED_COMPROMISED, RISK_STATE_NONE,
                                         UINT32_MAX, "line 1\n\tline 2\r\n\xc3\xa9"),
                 RISK_OK);
    cr_assert_eq(risk_history_set_chain(h, chain), RISK_OK);
    n = encode(h, buf, sizeof buf);
    sweep(buf, n);
    damage(buf, n, 20000);
    risk_history_free(h);

    /* the longest id and note; a present but empty note */
    char id[RISK_ID_MAX + 1], note[RISK_NOTE_MAX + 1];
    memset(id, 'u', RISK_ID_MAX), id[RISK_ID_MAX] = 0;
    memset(note, 'n', RISK_NOTE_MAX), note[RISK_NOTE_MAX] = 0;
    cr_assert_eq(risk_history_new(&h, 300, 128, id, RISK_HISTORY_DISMISS_ALL, id, NULL, NULL),
                 RISK_OK);
    cr_assert_eq(risk_history_set_change(h, 0, 0, 0, 0, 128, note), RISK_OK);
    n = encode(h, buf, sizeof buf);
    same(buf, n);
    for (size_t cut = 0; cut < n; cut++)
        same(buf, cut);
    damage(buf, n, 20000);
    cr_assert_eq(risk_history_set_change(h, 0, 0, 0, 0, 0, ""), RISK_OK);
    n = encode(h, buf, sizeof buf);
    sweep(buf, n);
    risk_history_free(h);
    cr_log_info("%ld inputs compared, %ld accepted", n_checked, n_accepted);
    cr_assert_gt(n_accepted, 100);
}

/* Strings the fast ASCII path and the slow UTF-8 path split differently:
 * each byte value at each offset of an 8-byte-aligned stretch (R-IV-2). */
Test(journal_hist, string_bytes)
{
    uint8_t buf[512];
    risk_history *h = NULL;
    cr_assert_eq(risk_history_new(&h, 7, 5, "actor-0123456789abcdef", RISK_HISTORY_INGEST,
                                  "user-0123456789abcdef", NULL, NULL),
                 RISK_OK);
    cr_assert_eq(risk_history_set_change(h, 0, 1, 0, 1, 1, "note-0123456789abcdef"), RISK_OK);
    size_t n = encode(h, buf, sizeof buf);
    risk_history_free(h);
    for (size_t i = 0; i + 1 < n; i++) /* two-byte sequences everywhere */
        for (unsigned v = 0x80; v < 0x100; v += 3) {
            uint8_t b[512];
            memcpy(b, buf, n);
            b[i] = (uint8_t)v;
            b[i + 1] = 0x80 | (uint8_t)(v & 0x3F);
            same(b, n);
        }
}

static uint8_t *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *b = malloc(1 << 20);
    *n = b ? fread(b, 1, 1 << 20, f) : 0;
    fclose(f);
    return b;
}

/* The corpus directory, found from this file's path as the compiler saw it. */
static void corpus_dir(char *out, size_t cap, const char *sub)
{
    const char *f = __FILE__, *slash = strrchr(f, '/');
    int len = slash ? (int)(slash - f) : 1;
    snprintf(out, cap, "%.*s/fuzz/corpus/%s", len, slash ? f : ".", sub);
}

/* Every history op of a journal image, frames walked by their lengths
 * (checksums ignored: the corpus holds damaged ones on purpose). */
static int journal_items(const uint8_t *f, size_t n)
{
    int items = 0;
    for (size_t off = HDR_LEN; n - off >= FRAME_HDR + 1 && off < n;) {
        uint32_t len = get32(f + off);
        if (len == 0 || len > n - off - FRAME_HDR)
            break;
        const uint8_t *p = f + off + FRAME_HDR;
        for (uint32_t pos = 0; len - pos >= 5;) {
            uint32_t k = get32(p + pos + 1);
            if (k > len - pos - 5)
                break;
            if (p[pos] == OP_HISTORY) {
                items++;
                same(p + pos + 5, k);
                damage(p + pos + 5, k, 500);
            }
            pos += 5 + k;
        }
        off += FRAME_HDR + len;
    }
    return items;
}

static int visit_count(const risk_history *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
    return RISK_OK;
}

/* Call fn with the bytes of every file of corpus `sub`. */
static void corpus_each(const char *sub, void (*fn)(const uint8_t *, size_t, int *), int *items)
{
    char d[512], p[1024];
    corpus_dir(d, sizeof d, sub);
    DIR *dd = opendir(d);
    cr_assert_not_null(dd, "corpus %s", d);
    for (struct dirent *e; (e = readdir(dd)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", d, e->d_name);
        size_t n = 0;
        uint8_t *b = slurp(p, &n);
        cr_assert_not_null(b);
        fn(b, n, items);
        free(b);
    }
    closedir(dd);
}

/* a decoder input: the header parse agrees; history items are swept */
static void decode_input(const uint8_t *b, size_t n, int *items)
{
    same(b, n);
    if (b[0] == 'H') {
        (*items)++;
        sweep(b, n);
    }
}

/* a journal input: byte 0 is the fuzz target's mode */
static void journal_input(const uint8_t *b, size_t n, int *items)
{
    if (n > HDR_LEN + 1)
        *items += journal_items(b + 1, n - 1);
}

/* R-IV-2, R-CC-3 */
Test(journal_hist, fuzz_corpus)
{
    int items = 0;
    corpus_each("fuzz_decode", decode_input, &items);
    corpus_each("fuzz_journal", journal_input, &items);
    cr_log_info("%d corpus history items", items);
    cr_assert_gt(items, 0);
}

/* Recovery refuses a history item the decoder refuses, with the decoder's
 * message, even inside a frame whose checksum is right (R-IV-2, R-CC-3);
 * and indexes an accepted one under its user. */
Test(journal_hist, recovery_uses_decoder_verdict)
{
    char dir[] = "/tmp/risk-jhist-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/j", dir);
    uint8_t item[512], salt[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    risk_history *h = NULL;
    cr_assert_eq(risk_history_new(&h, 5, 10, "admin", RISK_HISTORY_DISMISS_ALL, "alice", NULL, NULL),
                 RISK_OK);
    size_t n = encode(h, item, sizeof item);
    risk_history_free(h);
    for (int bad = 0; bad <= 1; bad++) {
        if (bad)
            item[6] = 0x01; /* a control character inside the actor */
        uint8_t file[HDR_LEN + FRAME_HDR + 5 + 512];
        make_header(file, salt);
        uint8_t *f = file + HDR_LEN;
        f[FRAME_HDR] = OP_HISTORY;
        put32(f + FRAME_HDR + 1, (uint32_t)n);
        memcpy(f + FRAME_HDR + 5, item, n);
        seal_frame(f, 5 + n, 1, salt);
        size_t total = HDR_LEN + FRAME_HDR + 5 + n;
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, file, total), (ssize_t)total);
        close(fd);
        risk_store s;
        risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
        o.read_only = 1;
        int rc = risk_journal_open(&s, path, &o, NULL);
        if (bad) {
            cr_assert_eq(rc, RISK_ECORRUPT);
            cr_assert(strstr(risk_error_last(), "history: byte") != NULL, "%s",
                      risk_error_last());
            cr_assert_eq(risk_journal_check(path, NULL), RISK_ECORRUPT);
        } else {
            cr_assert_eq(rc, RISK_OK, "%s", risk_error_last());
            int seen = 0;
            cr_assert_eq(s.read_history(s.ctx, "alice", 0, visit_count, &seen), RISK_OK);
            cr_assert_eq(seen, 1);
            seen = 0;
            cr_assert_eq(s.read_history(s.ctx, "bob", 0, visit_count, &seen), RISK_OK);
            cr_assert_eq(seen, 0);
            s.close(s.ctx);
        }
    }
    unlink(path);
    rmdir(dir);
}

/* The journal writes a history item as the engine's trusted body plus the
 * chain: byte for byte risk_history_encode's output, with the encoders'
 * calling convention (R-ST-3). */
Test(journal_hist, history_op_bytes)
{
    uint8_t a[2048], b[2048], chain[32];
    for (int i = 0; i < 32; i++)
        chain[i] = (uint8_t)(7 * i + 1);
    risk_history *h = NULL;
    cr_assert_eq(risk_history_new(&h, 1234567, 42, "admin", RISK_HISTORY_DISMISS_ALL,
                                  "us\xc3\xa9r", NULL, NULL),
                 RISK_OK);
    cr_assert_eq(risk_history_set_change(h, 3, 0, 1, 3, 5, "why\nnot"), RISK_OK);
    cr_assert_eq(risk_history_set_chain(h, chain), RISK_OK);
    size_t na = 0, nb = 0, m = 0;
    cr_assert_eq(risk_history_encode(a, sizeof a, &na, h), RISK_OK);
    cr_assert_eq(enc_history(b, sizeof b, &nb, h), RISK_OK);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(a, b, na) == 0);
    cr_assert_eq(enc_history(NULL, 0, &m, h), RISK_OK); /* measure */
    cr_assert_eq(m, na);
    for (size_t cap = 0; cap < na; cap++) { /* too small: ERANGE, the size, no overrun */
        memset(b, 0xEE, sizeof b);
        m = 0;
        cr_assert_eq(enc_history(b, cap, &m, h), RISK_ERANGE);
        cr_assert_eq(m, na);
        for (size_t i = cap; i < sizeof b; i++)
            cr_assert_eq(b[i], 0xEE, "cap %zu: byte %zu written", cap, i);
    }
    risk_history_free(h);
}
