/* A small streaming JSON writer: compact output, correct string escaping
 * (control characters as \u00XX, invalid UTF-8 replaced by U+FFFD so the
 * output is always valid JSON even for hostile bytes). */
#include "riskctl.h"

#include <inttypes.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

void json_escape(FILE *f, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    putc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc((int)c, f);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            switch (c) {
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            default: fprintf(f, "\\u%04x", c); break;
            }
            i++;
        } else {
            size_t l = utf8_len(s + i, n - i);
            if (l == 0) {
                fputs("\\ufffd", f);
                i++;
            } else {
                fwrite(s + i, 1, l, f);
                i += l;
            }
        }
    }
    putc('"', f);
}

void jw_init(jw *w, FILE *f)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    w->first[0] = 1;
}

/* Before a value: a comma unless first in its container or after a key. */
static void sep(jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (!w->first[w->depth]) putc(',', w->f);
    w->first[w->depth] = 0;
}

static void open(jw *w, int ch)
{
    sep(w);
    putc(ch, w->f);
    if (w->depth < 63) w->depth++;
    w->first[w->depth] = 1;
}

static void close_(jw *w, int ch)
{
    putc(ch, w->f);
    if (w->depth > 0) w->depth--;
}

void jw_obj(jw *w) { open(w, '{'); }
void jw_obj_end(jw *w) { close_(w, '}'); }
void jw_arr(jw *w) { open(w, '['); }
void jw_arr_end(jw *w) { close_(w, ']'); }

void jw_key(jw *w, const char *k)
{
    sep(w);
    json_escape(w->f, k, strlen(k));
    putc(':', w->f);
    w->after_key = 1;
}

void jw_strn(jw *w, const char *s, size_t n)
{
    sep(w);
    json_escape(w->f, s, n);
}

void jw_str(jw *w, const char *s)
{
    if (!s) {
        jw_null(w);
        return;
    }
    jw_strn(w, s, strlen(s));
}

void jw_int(jw *w, int64_t v)
{
    sep(w);
    fprintf(w->f, "%" PRId64, v);
}

void jw_uint(jw *w, uint64_t v)
{
    sep(w);
    fprintf(w->f, "%" PRIu64, v);
}

void jw_bool(jw *w, int v)
{
    sep(w);
    fputs(v ? "true" : "false", w->f);
}

void jw_null(jw *w)
{
    sep(w);
    fputs("null", w->f);
}

void jw_time(jw *w, int64_t t)
{
    if (t == RISK_TIME_NONE) jw_null(w);
    else jw_int(w, t);
}

void jw_end(jw *w)
{
    putc('\n', w->f);
    fflush(w->f);
}
