/* An RFC 4180 CSV record reader: quoted fields may hold commas, quotes
 * ("") and line breaks; records end at an unquoted LF or CRLF. A broken
 * record (stray quote, unterminated quote at end of input) is still
 * consumed whole so the next one starts clean, and reported through
 * c->error. */
#include "riskctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CSV_BLOCK 65536

void csv_init(csv *c, FILE *f)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->next_line = 1;
}

void csv_free(csv *c)
{
    free(c->buf);
    free(c->offs);
    free(c->in);
    memset(c, 0, sizeof *c);
}

/* The input is read in blocks and parsed in memory: a million-line import
 * spends its time in the library, not in per-character stdio calls. read(2)
 * rather than fread: on a pipe it returns what has arrived, so a line is
 * handled as soon as it is written (fread would wait for a whole block). */
static int fill(csv *c)
{
    if (!c->in && !(c->in = malloc(CSV_BLOCK))) return -1;
    ssize_t n;
    do
        n = read(fileno(c->f), c->in, CSV_BLOCK);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    c->in_len = (size_t)n;
    c->in_pos = 0;
    return 0;
}

/* The next input byte without taking it (take: and take it); EOF at the
 * end, -2 on a read error or out of memory. */
static int next_ch(csv *c, int take)
{
    if (c->in_pos == c->in_len) {
        if (fill(c)) return -2;
        if (c->in_len == 0) return EOF;
    }
    int ch = (unsigned char)c->in[c->in_pos];
    c->in_pos += (size_t)take;
    return ch;
}

static int reserve(csv *c, size_t n)
{
    if (c->len + n + 1 < c->cap) return 0;
    size_t ncap = c->cap ? c->cap : 4096;
    while (c->len + n + 1 >= ncap) ncap *= 2;
    char *nb = realloc(c->buf, ncap);
    if (!nb) return -1;
    c->buf = nb;
    c->cap = ncap;
    return 0;
}

static int put(csv *c, char ch)
{
    if (reserve(c, 1)) return -1;
    c->buf[c->len++] = ch;
    return 0;
}

/* Copy the run of ordinary bytes of an unquoted field that starts at the
 * read position (no comma, quote, CR or LF) in one step. */
static int put_span(csv *c)
{
    const char *p = c->in + c->in_pos, *end = c->in + c->in_len, *q = p;
    while (q < end && *q != ',' && *q != '"' && *q != '\n' && *q != '\r') q++;
    size_t n = (size_t)(q - p);
    if (n == 0) return 0;
    if (reserve(c, n)) return -1;
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    c->in_pos += n;
    c->bytes += n;
    return 0;
}

static int start_field(csv *c)
{
    if (c->nf == c->fcap) {
        size_t ncap = c->fcap ? c->fcap * 2 : 16;
        size_t *no = realloc(c->offs, ncap * sizeof *no);
        if (!no) return -1;
        c->offs = no;
        c->fcap = ncap;
    }
    c->offs[c->nf++] = c->len;
    return 0;
}

int csv_next(csv *c)
{
    enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED, BROKEN } st = FIELD_START;
    c->len = 0;
    c->nf = 0;
    c->error = NULL;
    c->line = c->next_line;
    int any = 0;
    for (;;) {
        if (st == UNQUOTED && put_span(c)) return -1;
        int ch = next_ch(c, 1);
        if (ch == -2) return -1;
        if (ch == EOF) {
            if (!any) return 0;
            if (st == QUOTED) c->error = "unterminated quoted field";
            break;
        }
        c->bytes++;
        any = 1;
        if (ch == '\n') c->next_line++;
        if (st == QUOTED) {
            if (ch == '"') st = QUOTE_IN_QUOTED;
            else if (put(c, (char)ch)) return -1;
            continue;
        }
        if (ch == '\n') break;
        if (st == BROKEN) continue;
        if (ch == '\r') {
            int nx = next_ch(c, 0);
            if (nx == -2) return -1;
            if (nx == '\n') {
                c->in_pos++;
                c->bytes++;
                c->next_line++;
                break;
            }
        }
        if (st == QUOTE_IN_QUOTED) {
            if (ch == '"') {
                if (put(c, '"')) return -1;
                st = QUOTED;
                continue;
            }
            if (ch == ',') {
                if (put(c, '\0')) return -1;
                st = FIELD_START;
                continue;
            }
            c->error = "text after a closing quote";
            st = BROKEN;
            continue;
        }
        if (st == FIELD_START) {
            if (start_field(c)) return -1;
            if (ch == '"') {
                st = QUOTED;
                continue;
            }
            st = UNQUOTED;
        }
        /* UNQUOTED */
        if (ch == ',') {
            if (put(c, '\0')) return -1;
            st = FIELD_START;
        } else if (ch == '"') {
            c->error = "quote inside an unquoted field";
            st = BROKEN;
        } else if (put(c, (char)ch)) {
            return -1;
        }
    }
    /* A trailing comma leaves an empty last field. */
    if (st == FIELD_START && c->nf > 0) {
        if (start_field(c)) return -1;
    }
    if (c->nf == 0 && st == FIELD_START) {
        if (start_field(c)) return -1; /* an empty line: one empty field */
    }
    if (put(c, '\0')) return -1;
    return 1;
}
