/* riskctl: the administrator's command-line program over the public API.
 * Shared declarations of its parts (riskctl_*.c); nothing here is part of
 * the library's ABI. */
#ifndef RISKCTL_H
#define RISKCTL_H

#include <librisk.h>
#include <librisk/store.h> /* public: risk_store is passed by value to risk_engine_new() */
#include <stdint.h>
#include <stdio.h>

/* Exit statuses (issue 6): done, the library refused / a bulk item failed,
 * usage error. */
enum { EXIT_DONE = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

/* ---- JSON writer (riskctl_json.c): one value on a FILE, compact. ---- */
typedef struct jw {
    FILE *f;
    int depth;
    unsigned char first[64]; /* per depth: no element written yet */
    int after_key;
} jw;

void jw_init(jw *w, FILE *f);
void jw_obj(jw *w);
void jw_obj_end(jw *w);
void jw_arr(jw *w);
void jw_arr_end(jw *w);
void jw_key(jw *w, const char *k);
void jw_str(jw *w, const char *s); /* NULL → null */
void jw_strn(jw *w, const char *s, size_t n);
void jw_int(jw *w, int64_t v);
void jw_uint(jw *w, uint64_t v);
void jw_bool(jw *w, int v);
void jw_null(jw *w);
void jw_time(jw *w, int64_t t); /* RISK_TIME_NONE → null */
void jw_end(jw *w);             /* the final newline */
/* Write s as a JSON string literal (escaping controls, replacing invalid
 * UTF-8 with U+FFFD). */
void json_escape(FILE *f, const char *s, size_t n);

/* ---- CSV reader (riskctl_csv.c): RFC 4180 records. ---- */
typedef struct csv {
    FILE *f;
    char *buf;         /* field bytes, each NUL-terminated */
    size_t cap, len;
    size_t *offs;      /* field start offsets into buf */
    size_t nf, fcap;
    uint64_t line;     /* physical line the current record started on */
    uint64_t next_line;
    uint64_t bytes;    /* bytes consumed so far */
    const char *error; /* why the last record is broken, or NULL */
    char *in;          /* input block read ahead (read(2)), and where we are in it */
    size_t in_len, in_pos;
} csv;

void csv_init(csv *c, FILE *f);
void csv_free(csv *c);
/* Read one record: 1 got one (c->error set if broken), 0 end of input,
 * -1 out of memory or read error. */
int csv_next(csv *c);
/* 1 if csv_next() can make progress without waiting for more input (a
 * line end is read ahead, or the input is readable now), 0 if it would
 * wait: a reader of a pipe hands over what it has first. */
int csv_ready(csv *c);
static inline const char *csv_field(const csv *c, size_t i) { return c->buf + c->offs[i]; }

/* ---- Shared context (riskctl.c) ---- */
typedef struct ctl {
    int json;
    int color;        /* stdout is a terminal and NO_COLOR is unset */
    int memory;
    int have_now;
    int64_t now;
    const char *actor;
    const char *store_path;
    risk_engine *eng;
    int read_only;    /* the store was opened read-only */
    int fresh_memory; /* a read-only command found no journal: empty store */
    int need_key;     /* the command needs the receipt key (signin --receipt) */
    int secret_out;   /* the output holds a secret shown once (a temporary password) */
    int error_seq;    /* error objects carry "seq" (check: null unless an item is named) */
    const char *command;      /* the word naming the command ("set" of "user set") */
    const char *command_name; /* the first word */
} ctl;

/* Parse a decimal number of digits only (no sign, no space) up to max;
 * 0 or -1. */
int parse_uint(const char *s, uint64_t max, uint64_t *out);
/* Parse TIME: ms since the epoch or ISO 8601 UTC; 0 or -1. */
int parse_time(const char *s, int64_t *out);
/* Format a time as ISO 8601 UTC into buf (≥ 32 bytes); "-" when absent. */
const char *fmt_time(int64_t t, char *buf);
int parse_level(const char *s, risk_level *out, int allow_none);

/* Report a library failure (code, risk_error_last()) and return EXIT_REFUSED. */
int fail(ctl *c, int code);
/* Report a usage error and return EXIT_USAGE. */
int usage_error(ctl *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Report a failure with our own message (not the library's). */
int fail_msg(ctl *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- Record output (riskctl_out.c) ---- */
const char *ename(risk_enum_kind k, uint32_t v);
void json_user(jw *w, const risk_user *u);
void json_event(jw *w, const risk_event *e);
void json_policy(jw *w, const risk_policy *p);
void json_history(jw *w, const risk_history *h);
void json_verdict(jw *w, const risk_verdict *v);
void json_explanation(jw *w, const char *user_id, const risk_explanation *ex);
/* s as a person may see it on a terminal: control, C1 and bidirectional
 * or zero-width format characters written \\uXXXX (s itself when there
 * are none; else a copy valid for the next 7 calls). NULL stays NULL. */
const char *shown(const char *s);
void human_user(ctl *c, const risk_user *u);
void human_event(ctl *c, const risk_event *e);
void human_verdict(ctl *c, const risk_verdict *v);
void human_explanation(ctl *c, const char *user_id, const risk_explanation *ex);
const char *color_level(ctl *c, risk_level l);
const char *color_reset(ctl *c);

/* A table printed with aligned columns. */
typedef struct table {
    size_t ncols, nrows, cap;
    char **cells; /* nrows * ncols strings (row 0 is the header) */
    const char **colors;
} table;
void table_init(table *t, size_t ncols, const char *const *headers);
void table_add(table *t, const char *const *row, const char *const *colors);
void table_print(ctl *c, table *t, FILE *f);
void table_free(table *t);
/* Append item to a table cell of cap bytes (*len used), after sep unless
 * it is the first; an item that does not fit ends the cell with
 * "… (+N more)", N = left (this item and the ones after it). Returns 0
 * once the cell is full (stop adding). cap ≥ 64. */
int cell_add(char *cell, size_t cap, size_t *len, const char *sep, const char *item, size_t left);
void table_users(ctl *c, risk_user **users, size_t n);
void table_events(ctl *c, risk_event **events, size_t n);
void table_policies(ctl *c, risk_policy **ps, size_t n);
void table_history(ctl *c, risk_history **hs, size_t n);

/* ---- Commands (riskctl_cmd.c, riskctl_import.c, riskctl_demo.c) ---- */
typedef struct args {
    int argc;
    char **argv;
} args;

/* Dispatch a command; the engine is opened by the caller per its mode. */
typedef int (*cmd_fn)(ctl *c, int argc, char **argv);
int cmd_import(ctl *c, int argc, char **argv);
int cmd_demo(ctl *c, int argc, char **argv);

#endif
