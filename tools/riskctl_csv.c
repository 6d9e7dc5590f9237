/* An RFC 4180 CSV record reader: quoted fields may hold commas, quotes
 * ("") and line breaks; records end at an unquoted LF or CRLF. A broken
 * record (stray quote, text after a closing quote, unterminated quote at
 * end of input, a NUL byte, a bare CR) is reported through c->error (the
 * first fault found) but still parsed to its end with quotes tracked, so
 * it ends only at a line break outside quotes: a line break inside a
 * later quoted field never starts a new record. A UTF-8 byte order mark
 * before the first record is skipped. */
#include "riskctl.h"

#include <errno.h>
#include <poll.h>
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
 * read position (no comma, quote, CR, LF or NUL) in one step. */
static int put_span(csv *c)
{
    const char *p = c->in + c->in_pos, *end = c->in + c->in_len, *q = p;
    while (q < end && *q != ',' && *q != '"' && *q != '\n' && *q != '\r' && *q != '\0') q++;
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

/* Whether csv_next() can go on without waiting: a line end is in the block
 * read ahead, or the input has bytes (or its end, or an error) to read now.
 * A pipe with nothing written yet answers 0, so a caller can act on the
 * records it has before it blocks. A line end inside a quoted field can
 * make this say 1 for a record still incomplete; the next read then waits
 * for the rest, as it would anyway. */
int csv_ready(csv *c)
{
    if (c->in_pos < c->in_len && memchr(c->in + c->in_pos, '\n', c->in_len - c->in_pos)) return 1;
    struct pollfd p = {.fd = fileno(c->f), .events = POLLIN};
    int n;
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    return n != 0; /* readable, hung up, or poll failed: the read tells */
}

/* Mark the current record broken; the first fault is the one reported. */
static void broken(csv *c, const char *why)
{
    if (!c->error) c->error = why;
}

int csv_next(csv *c)
{
    enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED } st = FIELD_START;
    c->len = 0;
    c->nf = 0;
    c->error = NULL;
    c->line = c->next_line;
    if (c->bytes == 0) { /* the start of the input: skip a byte order mark */
        int ch = next_ch(c, 0);
        if (ch == -2) return -1;
        if (ch == 0xEF && c->in_len - c->in_pos >= 3 &&
            memcmp(c->in + c->in_pos, "\xEF\xBB\xBF", 3) == 0) {
            c->in_pos += 3;
            c->bytes += 3;
        }
    }
    int any = 0;
    for (;;) {
        if (st == UNQUOTED && put_span(c)) return -1;
        int ch = next_ch(c, 1);
        if (ch == -2) return -1;
        if (ch == EOF) {
            if (!any) return 0;
            if (st == QUOTED) broken(c, "unterminated quoted field");
            break;
        }
        c->bytes++;
        any = 1;
        if (ch == '\n') c->next_line++;
        if (ch == '\0') {
            /* Kept, it would end the field early: "al\0ice" read as "al". */
            broken(c, "NUL byte in field");
            continue;
        }
        if (st == QUOTED) {
            if (ch == '"') st = QUOTE_IN_QUOTED;
            else if (put(c, (char)ch)) return -1;
            continue;
        }
        if (ch == '\n') break;
        if (ch == '\r') {
            int nx = next_ch(c, 0);
            if (nx == -2) return -1;
            if (nx == '\n') {
                c->in_pos++;
                c->bytes++;
                c->next_line++;
                break;
            }
            if (nx == EOF) break;
            broken(c, "bare CR outside quotes (lines must end with LF or CRLF)");
            continue;
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
            /* Broken; the rest of the field is read as unquoted text so
             * that quotes after it keep their meaning. */
            broken(c, "text after a closing quote");
            st = UNQUOTED;
            if (put(c, (char)ch)) return -1;
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
            broken(c, "quote inside an unquoted field"); /* dropped: it opens nothing */
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
