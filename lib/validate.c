/* Field validation shared by the record handles, the codec and the engine
 * (SPEC §2 field rules, R-IV-1). Every check returns RISK_OK or RISK_EINVAL
 * with a message that names the argument and, where it helps, the byte. */
#include "internal.h"

/* Strict UTF-8 (RFC 3629, Unicode table 3-7): the second byte's range
 * depends on the lead byte so overlongs (C0, C1, E0 80..9F, F0 80..8F),
 * surrogates (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF)
 * are all refused; stray continuation bytes and truncated sequences too. */
size_t risk_utf8_invalid_at(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return i; /* 80..C1 or F5..FF cannot start a sequence */
        }
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= len)
                return i + k; /* truncated: the missing byte's offset */
            uint8_t b = s[i + k];
            uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (b < l || b > h)
                return i + k;
        }
        i += need + 1;
    }
    return (size_t)-1;
}

/* Characters allowed besides printable ones: notes keep tab and newlines. */
enum { CTRL_NONE = 0, CTRL_NOTE = 1 };

static int check_utf8_ctrl(const char *what, const char *s, size_t len, int allow)
{
    size_t bad = risk_utf8_invalid_at((const uint8_t *)s, len);
    if (bad != (size_t)-1)
        return risk_err(RISK_EINVAL, "%s: invalid UTF-8 at byte %zu", what, bad);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7F)
            continue;
        if (allow == CTRL_NOTE && (c == '\t' || c == '\n' || c == '\r'))
            continue;
        return risk_err(RISK_EINVAL, "%s: control character 0x%02x at byte %zu", what, c, i);
    }
    return RISK_OK;
}

/* Non-zero high bits where one of 8 bytes is not printable ASCII
 * (0x20..0x7E): exact SWAR tests for "a byte below 0x20" and "a byte at or
 * above 0x7F", valid for thresholds up to 0x80 (a borrow or carry can only
 * mark bytes next to one already marked). */
static inline uint64_t unprintable8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    return (((x - ones * 0x20) & ~x) | (x + ones * (0x80 - 0x7F)) | x) & highs;
}

int risk_check_id_len(const char *what, const char *s, size_t *len)
{
    if (s == NULL)
        return risk_err(RISK_EINVAL, "%s: NULL", what);
    /* Fast path: most ids are printable ASCII (directory object ids,
     * e-mail-like names). The length comes from the vectorised strnlen,
     * then eight bytes per step are tested at once; the last step reads
     * the last eight bytes of the id (overlapping the one before: bytes
     * tested twice are harmless, and nothing past the NUL is read). Ids
     * shorter than eight bytes are tested byte by byte. Anything else
     * takes the full check below. */
    size_t n = strnlen(s, RISK_ID_MAX + 1);
    if (n >= 8 && n <= RISK_ID_MAX) {
        uint64_t x, bad;
        memcpy(&x, s + n - 8, 8);
        bad = unprintable8(x);
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, s + i, 8);
            bad |= unprintable8(x);
        }
        if (!bad) {
            *len = n;
            return RISK_OK;
        }
    } else if (n > 0 && n < 8) {
        unsigned bad = 0;
        for (size_t i = 0; i < n; i++)
            bad |= (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E;
        if (!bad) {
            *len = n;
            return RISK_OK;
        }
    }
    if (n == 0)
        return risk_err(RISK_EINVAL, "%s: empty", what);
    if (n > RISK_ID_MAX)
        return risk_err(RISK_EINVAL, "%s: %zu bytes, at most %d", what, strlen(s), RISK_ID_MAX);
    int rc = check_utf8_ctrl(what, s, n, CTRL_NONE);
    if (rc == RISK_OK)
        *len = n;
    return rc;
}

int risk_check_id(const char *what, const char *s)
{
    size_t len;
    return risk_check_id_len(what, s, &len);
}

int risk_id_check(const char *id)
{
    return risk_check_id("id", id);
}

int risk_check_text(const char *what, const char *s, size_t max)
{
    if (s == NULL)
        return RISK_OK;
    size_t len = strlen(s);
    if (len > max)
        return risk_err(RISK_EINVAL, "%s: %zu bytes, at most %zu", what, len, max);
    return check_utf8_ctrl(what, s, len, CTRL_NONE);
}

int risk_check_note(const char *what, const char *s)
{
    if (s == NULL)
        return RISK_OK;
    size_t len = strlen(s);
    if (len > RISK_NOTE_MAX)
        return risk_err(RISK_EINVAL, "%s: %zu bytes, at most %d", what, len, RISK_NOTE_MAX);
    return check_utf8_ctrl(what, s, len, CTRL_NOTE);
}

static int type_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

int risk_check_type(const char *what, const char *s)
{
    if (s == NULL)
        return risk_err(RISK_EINVAL, "%s: NULL", what);
    size_t len = strlen(s);
    if (len == 0)
        return risk_err(RISK_EINVAL, "%s: empty", what);
    if (len > RISK_TYPE_MAX)
        return risk_err(RISK_EINVAL, "%s: %zu bytes, at most %d", what, len, RISK_TYPE_MAX);
    for (size_t i = 0; i < len; i++)
        if (!type_char((unsigned char)s[i]))
            return risk_err(RISK_EINVAL, "%s: byte 0x%02x at byte %zu is not in [A-Za-z0-9_.-]",
                            what, (unsigned char)s[i], i);
    return RISK_OK;
}

int risk_check_time(const char *what, int64_t t)
{
    if (t < 0 || t >= RISK_TIME_MAX)
        return risk_err(RISK_EINVAL, "%s: time %lld out of range [0, 2^53)", what, (long long)t);
    return RISK_OK;
}

int risk_check_time_opt(const char *what, int64_t t)
{
    return t == RISK_TIME_NONE ? RISK_OK : risk_check_time(what, t);
}

int risk_check_event_level(const char *what, uint32_t level)
{
    if (level < RISK_LEVEL_LOW || level > RISK_LEVEL_HIGH)
        return risk_err(RISK_EINVAL, "%s: level %u, expected low, medium or high", what,
                        (unsigned)level);
    return RISK_OK;
}
