/* An RFC 4180 CSV record reader: quoted fields may hold commas, quotes
 * ("") and line breaks; records end at an unquoted LF or CRLF. A broken
 * record (stray quote, unterminated quote at end of input) is still
 * consumed whole so the next one starts clean, and reported through
 * c->error. */
#include "riskctl.h"

#include <stdlib.h>
#include <string.h>

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
    memset(c, 0, sizeof *c);
}

static int put(csv *c, char ch)
{
    if (c->len + 1 >= c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 4096;
        char *nb = realloc(c->buf, ncap);
        if (!nb) return -1;
        c->buf = nb;
        c->cap = ncap;
    }
    c->buf[c->len++] = ch;
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
        int ch = getc_unlocked(c->f);
        if (ch == EOF) {
            if (ferror(c->f)) return -1;
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
            int nx = getc_unlocked(c->f);
            if (nx == '\n') {
                c->bytes++;
                c->next_line++;
                break;
            }
            if (nx != EOF) ungetc(nx, c->f);
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
