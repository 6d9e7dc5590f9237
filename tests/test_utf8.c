/* Strict UTF-8 and the field rules of SPEC §2 (ids, types, short texts,
 * notes), as enforced by lib/validate.c. Rules: SPEC §2 field rules, R-IV-1. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NOT_BAD ((size_t)-1)

static size_t bad_at(const char *s, size_t len)
{
    return risk_utf8_invalid_at((const uint8_t *)s, len);
}

/* A NUL-terminated string of n copies of unit (a UTF-8 sequence). */
static char *rep(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

static char *cat(const char *a, const char *b)
{
    char *s = malloc(strlen(a) + strlen(b) + 1);
    cr_assert_not_null(s);
    strcpy(s, a);
    strcat(s, b);
    return s;
}

/* SPEC §2: valid sequences of every length, at the edges of each range. */
Test(utf8, valid_sequences)
{
    static const char *ok[] = {
        "", "a", "\x7e", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF",
        "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
        "caf\xC3\xA9", "\xE2\x82\xAC 10", "\xF0\x9F\x98\x80!",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_assert(eq(sz, bad_at(ok[i], strlen(ok[i])), NOT_BAD), "case %zu", i);
}

/* SPEC §2, R-IV-1: every malformed kind, with the offset of the bad byte. */
Test(utf8, malformed_kinds)
{
    static const struct {
        const char *s;
        size_t at;
    } bad[] = {
        /* overlong 2-byte forms */
        {"\xC0\x80", 0},
        {"\xC1\xBF", 0},
        {"ab\xC0\xAF", 2},
        /* overlong 3-byte (E0 80..9F) */
        {"\xE0\x80\x80", 1},
        {"\xE0\x9F\xBF", 1},
        /* overlong 4-byte (F0 80..8F) */
        {"\xF0\x80\x80\x80", 1},
        {"\xF0\x8F\xBF\xBF", 1},
        /* surrogates (ED A0..BF) */
        {"\xED\xA0\x80", 1},
        {"\xED\xBF\xBF", 1},
        {"x\xED\xB0\x80", 2},
        /* above U+10FFFF */
        {"\xF4\x90\x80\x80", 1},
        {"\xF5\x80\x80\x80", 0},
        {"\xF7\xBF\xBF\xBF", 0},
        {"\xF8\x88\x80\x80\x80", 0},
        {"\xFE", 0},
        {"\xFF", 0},
        /* stray continuation bytes */
        {"\x80", 0},
        {"\xBF", 0},
        {"abc\x80", 3},
        {"\xC3\xA9\xA9", 2},
        /* truncated sequences (end of string, or a non-continuation) */
        {"\xC2", 1},
        {"\xE2\x82", 2},
        {"\xF0\x9F\x98", 3},
        {"\xE2\x82" "a", 2},
        {"\xC3" "A", 1},
        {"\xF0\x9F" "\xC3\xA9", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(eq(sz, bad_at(bad[i].s, strlen(bad[i].s)), bad[i].at), "case %zu", i);
}

/* SPEC §2: the validator never reads past len (a sequence cut by len). */
Test(utf8, respects_length)
{
    const char s[] = "\xE2\x82\xAC";
    cr_assert(eq(sz, bad_at(s, 3), NOT_BAD));
    cr_assert(eq(sz, bad_at(s, 2), 2));
    cr_assert(eq(sz, bad_at(s, 0), NOT_BAD));
}

/* R-IV-1: the message names the argument and the byte offset. */
Test(utf8, message_names_argument_and_offset)
{
    cr_assert(eq(int, risk_check_id("user_id", "abc\xFF"), RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "user_id: invalid UTF-8 at byte 3"));
    cr_assert(eq(int, risk_error_last_code(), RISK_EINVAL));
    cr_assert(eq(int, risk_check_type("type", "abcdefghijabcdefghijabcdefghijabcdefghij"
                                              "abcdefghijabcdefghijabcde"),
                 RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "type: 65 bytes, at most 64"));
    cr_assert(eq(int, risk_check_id("actor", "a\x01"), RISK_EINVAL));
    cr_assert(not(eq(ptr, strstr(risk_error_last(), "actor:"), NULL)));
    cr_assert(not(eq(ptr, strstr(risk_error_last(), "byte 1"), NULL)));
}

/* SPEC §2 id: 1–256 bytes, ASCII and multi-byte at the limit. */
Test(utf8, id_length_boundaries)
{
    char *s255 = rep("a", 255), *s256 = rep("a", 256), *s257 = rep("a", 257);
    cr_assert(eq(int, risk_id_check(s255), RISK_OK));
    cr_assert(eq(int, risk_id_check(s256), RISK_OK));
    cr_assert(eq(int, risk_id_check(s257), RISK_EINVAL));
    cr_assert(not(eq(ptr, strstr(risk_error_last(), "257 bytes, at most 256"), NULL)));
    cr_assert(eq(int, risk_id_check(""), RISK_EINVAL));
    cr_assert(eq(int, risk_id_check(NULL), RISK_EINVAL));

    char *two = rep("\xC3\xA9", 128);            /* 256 bytes of 2-byte chars */
    char *four = rep("\xF0\x9F\x98\x80", 64);    /* 256 bytes of 4-byte chars */
    char *three = rep("\xE2\x82\xAC", 85);       /* 255 bytes */
    char *three1 = cat(three, "x");              /* 256 */
    char *four1 = cat(four, "x");                /* 257 */
    cr_assert(eq(int, risk_id_check(two), RISK_OK));
    cr_assert(eq(int, risk_id_check(four), RISK_OK));
    cr_assert(eq(int, risk_id_check(three1), RISK_OK));
    cr_assert(eq(int, risk_id_check(four1), RISK_EINVAL));
    /* a 4-byte character cut at the end is invalid UTF-8, not merely long */
    four[255] = '\0';
    cr_assert(eq(int, risk_id_check(four), RISK_EINVAL));
    cr_assert(not(eq(ptr, strstr(risk_error_last(), "invalid UTF-8 at byte 255"), NULL)));
    free(s255), free(s256), free(s257), free(two), free(four), free(three), free(three1),
        free(four1);
}

/* SPEC §2 id: no control characters U+0000–U+001F, U+007F; U+0080.. fine. */
Test(utf8, id_control_characters)
{
    static const char *bad[] = {"a\x01", "\x1f", "a\tb", "a\nb", "a\rb", "x\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert(eq(int, risk_id_check(bad[i]), RISK_EINVAL), "case %zu", i);
        cr_assert(not(eq(ptr, strstr(risk_error_last(), "control character"), NULL)));
    }
    cr_assert(eq(int, risk_id_check(" a b "), RISK_OK));
    cr_assert(eq(int, risk_id_check("\xC2\x80"), RISK_OK)); /* U+0080 is not C0/DEL */
    cr_assert(eq(int, risk_id_check("~"), RISK_OK));
}

/* SPEC §2 id: malformed UTF-8 is refused through the public check. */
/* SPEC §2 (ids), R-IV-1: the word-at-a-time fast path accepts exactly the
 * printable ASCII bytes. Every byte value at every position of ids of 1 to
 * 20 bytes (whole words, tails, both) must get the verdict of the byte
 * rule: 0x20..0x7E accepted; controls, DEL and lone bytes >= 0x80 refused. */
Test(utf8, id_every_byte_every_position)
{
    char id[24];
    for (size_t len = 1; len <= 20; len++)
        for (size_t pos = 0; pos < len; pos++)
            for (int b = 1; b < 256; b++) {
                memset(id, 'a', len);
                id[len] = 0;
                id[pos] = (char)b;
                int want = b >= 0x20 && b <= 0x7E ? RISK_OK : RISK_EINVAL;
                cr_assert(eq(int, risk_check_id("id", id), want), "len %zu pos %zu byte 0x%02x",
                          len, pos, b);
            }
    /* a multi-byte character is not printable ASCII but is valid */
    cr_assert(eq(int, risk_check_id("id", "j\xC3\xBCrgen@example.com"), RISK_OK));
    cr_assert(eq(int, risk_check_id("id", "\xC3\xBC"), RISK_OK));
}

Test(utf8, id_malformed)
{
    static const char *bad[] = {"\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80",
                                "\xE2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(eq(int, risk_id_check(bad[i]), RISK_EINVAL), "case %zu", i);
}

/* SPEC §2 type: 1–64 bytes of [A-Za-z0-9_.-]. */
Test(utf8, type_rules)
{
    char *t64 = rep("x", 64), *t65 = rep("x", 65), *t63 = rep("Z", 63);
    cr_assert(eq(int, risk_check_type("type", t63), RISK_OK));
    cr_assert(eq(int, risk_check_type("type", t64), RISK_OK));
    cr_assert(eq(int, risk_check_type("type", t65), RISK_EINVAL));
    cr_assert(eq(int, risk_check_type("type", "leakedCredentials"), RISK_OK));
    cr_assert(eq(int, risk_check_type("type", "a-b_c.D9"), RISK_OK));
    static const char *bad[] = {"", "a b", "a/b", "caf\xC3\xA9", "a\tb", "a:b", "a+b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert(eq(int, risk_check_type("type", bad[i]), RISK_EINVAL), "case %zu", i);
        cr_assert(eq(int, strncmp(risk_error_last(), "type: ", 6), 0));
    }
    cr_assert(eq(int, risk_check_type("type", NULL), RISK_EINVAL));
    free(t64), free(t65), free(t63);
}

/* SPEC §2 ip/location/source: NULL ok, ≤ 256 bytes, UTF-8, no controls. */
Test(utf8, short_text_rules)
{
    char *s256 = rep("\xC3\xA9", 128), *s257 = cat(s256, "x");
    cr_assert(eq(int, risk_check_text("ip", NULL, RISK_INFO_MAX), RISK_OK));
    cr_assert(eq(int, risk_check_text("ip", "10.0.0.1", RISK_INFO_MAX), RISK_OK));
    cr_assert(eq(int, risk_check_text("location", s256, RISK_INFO_MAX), RISK_OK));
    cr_assert(eq(int, risk_check_text("location", s257, RISK_INFO_MAX), RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "location: 257 bytes, at most 256"));
    cr_assert(eq(int, risk_check_text("source", "a\nb", RISK_INFO_MAX), RISK_EINVAL));
    cr_assert(eq(int, risk_check_text("source", "\xED\xA0\x80", RISK_INFO_MAX), RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "source: invalid UTF-8 at byte 1"));
    free(s256), free(s257);
}

/* SPEC §2 note: ≤ 1024 bytes; \t \n \r allowed, other controls not. */
Test(utf8, note_rules)
{
    char *n1023 = rep("n", 1023), *n1024 = rep("n", 1024), *n1025 = rep("n", 1025);
    char *e1024 = rep("\xF0\x9F\x98\x80", 256);
    cr_assert(eq(int, risk_check_note("note", NULL), RISK_OK));
    cr_assert(eq(int, risk_check_note("note", n1023), RISK_OK));
    cr_assert(eq(int, risk_check_note("note", n1024), RISK_OK));
    cr_assert(eq(int, risk_check_note("note", e1024), RISK_OK));
    cr_assert(eq(int, risk_check_note("note", n1025), RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "note: 1025 bytes, at most 1024"));
    cr_assert(eq(int, risk_check_note("note", "line 1\r\n\tline 2\n"), RISK_OK));
    static const char *bad[] = {"a\x01", "\x1b[31m", "x\x7f", "\x0b", "\x0c"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(eq(int, risk_check_note("note", bad[i]), RISK_EINVAL), "case %zu", i);
    cr_assert(eq(int, risk_check_note("note", "ok \xC0\x80"), RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "note: invalid UTF-8 at byte 3"));
    free(n1023), free(n1024), free(n1025), free(e1024);
}

/* SPEC §2 detected_at: 0 ≤ t < 2^53; RISK_TIME_NONE only where optional. */
Test(utf8, time_rules)
{
    cr_assert(eq(int, risk_check_time("at", 0), RISK_OK));
    cr_assert(eq(int, risk_check_time("at", RISK_TIME_MAX - 1), RISK_OK));
    cr_assert(eq(int, risk_check_time("at", RISK_TIME_MAX), RISK_EINVAL));
    cr_assert(eq(int, risk_check_time("at", -1), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "at: ", 4), 0));
    cr_assert(eq(int, risk_check_time_opt("at", RISK_TIME_NONE), RISK_OK));
    cr_assert(eq(int, risk_check_time_opt("at", -2), RISK_EINVAL));
    cr_assert(eq(int, risk_check_time_opt("at", INT64_MAX), RISK_EINVAL));
}

/* SPEC §2 event level: low, medium or high; none is not an event level. */
Test(utf8, event_level_rules)
{
    cr_assert(eq(int, risk_check_event_level("level", RISK_LEVEL_NONE), RISK_EINVAL));
    cr_assert(eq(int, risk_check_event_level("level", RISK_LEVEL_LOW), RISK_OK));
    cr_assert(eq(int, risk_check_event_level("level", RISK_LEVEL_HIGH), RISK_OK));
    cr_assert(eq(int, risk_check_event_level("level", 4), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "level: ", 7), 0));
}

/* SPEC §2 id, R-IV-1: beyond id_every_byte_every_position (1–20 bytes),
 * the fast path (eight bytes at a time, the last step overlapping the one
 * before, ids under eight bytes byte by byte) agrees with the rule at the
 * lengths around its steps up to 256, with bytes at the edges of the
 * printable range at every position; and risk_check_id_len gives the
 * length exactly when the id is valid. */
Test(utf8, id_check_fast_path_agrees_with_the_rule)
{
    static const unsigned char probe[] = { 0x00 /* ends the id early */, 0x01, 0x1F, 0x20, 0x7E,
                                           0x7F, 0x80, 0xC3, 0xFF };
    static const size_t lens[] = { 1, 7, 8, 9, 16, 17, 23, 24, 25, 31, 32, 33, 248, 249, 255, 256 };
    char buf[RISK_ID_MAX + 2];
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        for (size_t pos = 0; pos < n; pos++)
            for (size_t b = 0; b < sizeof probe; b++) {
                memset(buf, 'k', n);
                buf[n] = '\0';
                buf[pos] = (char)probe[b];
                size_t len = strlen(buf);
                int want = len >= 1 && len <= RISK_ID_MAX &&
                           bad_at(buf, len) == NOT_BAD && memchr(buf, 0x7F, len) == NULL;
                for (size_t i = 0; i < len && want; i++)
                    want = (unsigned char)buf[i] >= 0x20;
                size_t got_len = 12345;
                int rc = risk_check_id_len("id", buf, &got_len);
                cr_assert(eq(int, rc, want ? RISK_OK : RISK_EINVAL), "len %zu, byte 0x%02x at %zu",
                          n, probe[b], pos);
                cr_assert(eq(sz, got_len, want ? len : 12345));
                cr_assert(eq(int, risk_check_id("id", buf), rc));
            }
    }
    /* a valid multi-byte id takes the full check and still gives its length */
    size_t len = 0;
    cr_assert(eq(int, risk_check_id_len("id", "caf\xC3\xA9-user", &len), RISK_OK));
    cr_assert(eq(sz, len, 10));
}
