/* The history index's view of an encoded history item: its seq and user id,
 * read in place from the canonical encoding (docs/encoding.md, "History
 * item") without building a risk_history.
 *
 * Recovery indexes every history item of the file and keeps none of them
 * in memory, so a full risk_history_decode (a handle, a copy of every
 * string, then a free) was most of its cost. This walker is the decoder
 * without the allocations: it checks exactly what the decoder checks, in
 * the same order (kind, version, minimal varints, ranges, presence bytes,
 * string lengths, NUL bytes, the setters' string rules, the 32-byte chain,
 * no trailing bytes), so it accepts exactly what risk_history_decode
 * accepts. tests/test_journal_hist.c compares the two on every single-byte
 * change, truncation and extension of sample items and on the fuzz corpus.
 * It only answers yes or no: on "no" the caller runs the real decoder for
 * its precise message, so errors read the same as before. */
#include "journal.h"

#define HASH_LEN 32

typedef struct hrd {
    const uint8_t *p;
    size_t n, off;
    int check;
} hrd;

/* Minimal LEB128 of at most 64 bits, like the codec's get_varint. */
static int hvarint(hrd *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned k = 0;; k++) {
        if (r->off >= r->n)
            return -1;
        uint8_t c = r->p[r->off++];
        if (k == 9 && c > 1)
            return -1;
        v |= (uint64_t)(c & 0x7F) << (7 * k);
        if (!(c & 0x80)) {
            if (k > 0 && c == 0)
                return -1;
            *out = v;
            return 0;
        }
    }
}

static int hbyte(hrd *r, uint8_t lo, uint8_t hi)
{
    if (r->off >= r->n)
        return -1;
    uint8_t b = r->p[r->off++];
    return b < lo || b > hi ? -1 : b;
}

/* 1 if all 8 bytes of w are printable ASCII (0x20..0x7E): a byte below
 * 0x20 sets its top bit in w - 0x20.., 0x7F sets it in w + 0x01.., 0x80
 * and above have it already; a borrow or carry between bytes only starts
 * at a byte that is flagged itself, so no false "yes". */
static inline int printable8(uint64_t w)
{
    const uint64_t k20 = 0x2020202020202020u, k01 = 0x0101010101010101u,
                   k80 = 0x8080808080808080u;
    return (((w - k20) | w | (w + k01)) & k80) == 0;
}

/* The decoder's string checks (no NUL byte) and the setters' rules
 * (lib/validate.c): strict UTF-8, no control characters (a note keeps
 * tab, LF, CR). */
static int hstr_ok(const uint8_t *s, size_t n, int note)
{
    size_t i = 0;
    for (uint64_t w; n - i >= 8 && (memcpy(&w, s + i, 8), printable8(w));)
        i += 8;
    while (i < n && s[i] >= 0x20 && s[i] < 0x7F)
        i++;
    if (i == n) /* the common case: printable ASCII */
        return 1;
    if (memchr(s, 0, n) != NULL || risk_utf8_invalid_at(s, n) != (size_t)-1)
        return 0;
    for (; i < n; i++)
        if ((s[i] < 0x20 || s[i] == 0x7F) &&
            !(note && (s[i] == '\t' || s[i] == '\n' || s[i] == '\r')))
            return 0;
    return 1;
}

/* A string field: [presence u8 if opt] varint length, bytes. max: its
 * bound; min 1 for ids, 0 for notes. *s NULL when absent. r->check 0:
 * bytes our own encoder just wrote, only located. */
static int hstr(hrd *r, int opt, size_t max, int note, const uint8_t **s, size_t *len)
{
    *s = NULL, *len = 0;
    if (opt) {
        int b = hbyte(r, 0, 1);
        if (b <= 0)
            return b; /* -1 bad, 0 absent */
    }
    uint64_t n;
    if (hvarint(r, &n) != 0 || n > max || n > r->n - r->off)
        return -1;
    const uint8_t *p = r->p + r->off;
    if (r->check && ((n == 0 && !note) || !hstr_ok(p, (size_t)n, note)))
        return -1;
    r->off += (size_t)n;
    *s = p, *len = (size_t)n;
    return 0;
}

int hist_peek(const uint8_t *p, size_t n, int check, uint64_t *seq, const uint8_t **user,
              size_t *ulen)
{
    hrd r = {p, n, 0, check};
    uint64_t v;
    const uint8_t *s;
    size_t len;
    if (hbyte(&r, 'H', 'H') < 0 || hbyte(&r, RISK_CODEC_VERSION, RISK_CODEC_VERSION) < 0 ||
        hvarint(&r, seq) != 0)
        return -1;
    if (hvarint(&r, &v) != 0 || v == 0 || v > (uint64_t)RISK_TIME_MAX) /* at: required time */
        return -1;
    if (hstr(&r, 0, RISK_ID_MAX, 0, &s, &len) != 0 || /* actor */
        hbyte(&r, RISK_HISTORY_INGEST, RISK_HISTORY_POLICY_REMOVE) < 0 ||
        hstr(&r, 1, RISK_ID_MAX, 0, user, ulen) != 0) /* user_id */
        return -1;
    if (!check) /* located: the rest is our encoder's */
        return 0;
    if (hstr(&r, 1, RISK_ID_MAX, 0, &s, &len) != 0 ||    /* event_id */
        hstr(&r, 1, RISK_ID_MAX, 0, &s, &len) != 0)      /* policy */
        return -1;
    if (hbyte(&r, RISK_LEVEL_NONE, RISK_LEVEL_HIGH) < 0 ||
        hbyte(&r, RISK_LEVEL_NONE, RISK_LEVEL_HIGH) < 0 ||
        hbyte(&r, RISK_STATE_NONE, RISK_STATE_CONFIRMED_COMPROMISED) < 0 ||
        hbyte(&r, RISK_STATE_NONE, RISK_STATE_CONFIRMED_COMPROMISED) < 0)
        return -1;
    if (hvarint(&r, &v) != 0 || v > UINT32_MAX) /* changed */
        return -1;
    if (hstr(&r, 1, RISK_NOTE_MAX, 1, &s, &len) != 0) /* note */
        return -1;
    return r.n - r.off == HASH_LEN ? 0 : -1; /* the chain, then nothing */
}
