/* riskctl event import: detections from CSV (RFC 4180) with a header row
 * naming SPEC §2 fields in any order. Each line is atomic on its own: a
 * broken line is reported and skipped, the others still apply. Lines are
 * ingested in batches through risk_engine_ingest_bulk() with the journal
 * in normal durability (synced in the background), which is what makes a
 * million lines take seconds rather than hours of fdatasync. */
#include "riskctl_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { F_USER, F_ID, F_TYPE, F_LEVEL, F_DETECTED, F_TIMING, F_IP, F_LOCATION, F_SOURCE, NF };
static const char *const field_names[NF] = {"user_id",     "id",     "type",
                                            "level",       "detected_at", "timing",
                                            "ip",          "location",    "source"};
#define BATCH 4096

typedef struct result {
    uint64_t line;
    int code;
    char *msg; /* owned, or NULL */
} result;

typedef struct importer {
    ctl *c;
    int col[NF]; /* column of each field, -1 if absent */
    size_t ncols;
    result *res;
    size_t nres, cap;
    uint64_t ok, failed;
    int keep_ok; /* --json lists every line */
    risk_event *batch[BATCH];
    uint64_t lines[BATCH];
    size_t nb;
    int progress;
    int64_t total_bytes;
    struct timespec t0;
} importer;

static int add_result(importer *im, uint64_t line, int code, const char *msg)
{
    if (code == RISK_OK) im->ok++;
    else im->failed++;
    if (code == RISK_OK && !im->keep_ok) return 0;
    if (im->nres == im->cap) {
        size_t ncap = im->cap ? im->cap * 2 : 1024;
        result *nr = realloc(im->res, ncap * sizeof *nr);
        if (!nr) return -1;
        im->res = nr;
        im->cap = ncap;
    }
    result *r = &im->res[im->nres++];
    r->line = line;
    r->code = code;
    r->msg = msg ? strdup(msg) : NULL;
    return 0;
}

static double elapsed(const importer *im)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - im->t0.tv_sec) + (double)(t.tv_nsec - im->t0.tv_nsec) / 1e9;
}

static void progress(importer *im, uint64_t bytes, int final)
{
    if (!im->progress) return;
    double s = elapsed(im);
    uint64_t done = im->ok + im->failed;
    double rate = s > 0 ? (double)done / s : 0;
    if (im->total_bytes > 0) {
        int pct = (int)(bytes * 100 / (uint64_t)im->total_bytes);
        if (pct > 100) pct = 100;
        char bar[41];
        int fill = pct * 40 / 100;
        for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
        bar[40] = 0;
        fprintf(stderr, "\r[%s] %3d%% %" PRIu64 " lines %.0f/s", bar, pct, done, rate);
    } else {
        fprintf(stderr, "\r%" PRIu64 " lines %.0f/s", done, rate);
    }
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static int flush_batch(importer *im)
{
    int results[BATCH];
    if (im->nb == 0) return 0;
    int got = risk_engine_ingest_bulk(im->c->eng, im->c->actor,
                                      (const risk_event *const *)im->batch, im->nb, 0, results);
    for (size_t i = 0; i < im->nb; i++) {
        int code = got < 0 ? got : results[i];
        const char *msg = NULL;
        if (code != RISK_OK) {
            /* The bulk call reports codes only: try the line alone for its
             * reason (a refused ingest changes nothing). */
            code = risk_engine_ingest(im->c->eng, im->c->actor, im->batch[i], 0);
            if (code != RISK_OK) msg = risk_error_last();
        }
        if (add_result(im, im->lines[i], code, msg)) return -1;
        risk_event_free(im->batch[i]);
        im->batch[i] = NULL;
    }
    im->nb = 0;
    return 0;
}

/* Build the detection of one record; its code, and the message on failure. */
static int parse_line(importer *im, csv *r, risk_event **out, char *msg, size_t cap)
{
    const char *f[NF] = {0};
    risk_level level;
    uint32_t timing = RISK_TIMING_REALTIME;
    int64_t at;
    if (r->error) {
        snprintf(msg, cap, "csv: %s", r->error);
        return RISK_EINVAL;
    }
    if (r->nf != im->ncols) {
        snprintf(msg, cap, "csv: %zu fields where the header has %zu", r->nf, im->ncols);
        return RISK_EINVAL;
    }
    for (int k = 0; k < NF; k++)
        if (im->col[k] >= 0) f[k] = csv_field(r, (size_t)im->col[k]);
    if (parse_level(f[F_LEVEL], &level, 0)) {
        snprintf(msg, cap, "level: unknown event level '%.64s' (low, medium, high)", f[F_LEVEL]);
        return RISK_EINVAL;
    }
    if (f[F_DETECTED] && *f[F_DETECTED]) {
        if (parse_time(f[F_DETECTED], &at)) {
            snprintf(msg, cap, "detected_at: malformed TIME '%.64s'", f[F_DETECTED]);
            return RISK_EINVAL;
        }
    } else {
        at = risk_engine_now(im->c->eng);
    }
    if (f[F_TIMING] && *f[F_TIMING] && risk_enum_parse(RISK_ENUM_TIMING, f[F_TIMING], &timing)) {
        snprintf(msg, cap, "timing: unknown timing '%.64s' (realtime, offline)", f[F_TIMING]);
        return RISK_EINVAL;
    }
    risk_event *e = NULL;
    int rc = risk_event_new(&e, f[F_ID], f[F_USER], f[F_TYPE], level, at);
    if (rc == RISK_OK) rc = risk_event_set_timing(e, (risk_timing)timing);
    if (rc == RISK_OK && f[F_IP] && *f[F_IP]) rc = risk_event_set_ip(e, f[F_IP]);
    if (rc == RISK_OK && f[F_LOCATION] && *f[F_LOCATION])
        rc = risk_event_set_location(e, f[F_LOCATION]);
    if (rc == RISK_OK && f[F_SOURCE] && *f[F_SOURCE]) rc = risk_event_set_source(e, f[F_SOURCE]);
    if (rc != RISK_OK) {
        snprintf(msg, cap, "%s", risk_error_last());
        risk_event_free(e);
        return rc;
    }
    *out = e;
    return RISK_OK;
}

static int read_header(importer *im, csv *r)
{
    int got = csv_next(r);
    if (got < 0) return fail_msg(im->c, RISK_EIO, "input: read error");
    if (got == 0 || r->error)
        return fail_msg(im->c, RISK_EINVAL, "header: expected a header row naming the fields "
                                            "(user_id,id,type,level,detected_at,...)");
    for (int k = 0; k < NF; k++) im->col[k] = -1;
    im->ncols = r->nf;
    for (size_t i = 0; i < r->nf; i++) {
        const char *name = csv_field(r, i);
        int k = 0;
        while (k < NF && strcmp(field_names[k], name) != 0) k++;
        if (k == NF)
            return fail_msg(im->c, RISK_EINVAL, "header: unknown field '%.64s' (known: user_id, "
                                                "id, type, level, detected_at, timing, ip, "
                                                "location, source)", name);
        if (im->col[k] >= 0)
            return fail_msg(im->c, RISK_EINVAL, "header: field '%s' named twice", name);
        im->col[k] = (int)i;
    }
    for (int k = 0; k <= F_LEVEL; k++)
        if (im->col[k] < 0)
            return fail_msg(im->c, RISK_EINVAL, "header: required field '%s' missing",
                            field_names[k]);
    return 0;
}

static void print_results(importer *im)
{
    if (im->c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "results");
        jw_arr(&w);
        for (size_t i = 0; i < im->nres; i++) {
            result *r = &im->res[i];
            jw_obj(&w);
            jw_key(&w, "line"); jw_uint(&w, r->line);
            jw_key(&w, "ok"); jw_bool(&w, r->code == RISK_OK);
            jw_key(&w, "error"); jw_str(&w, r->code == RISK_OK ? NULL : risk_error_name(r->code));
            jw_key(&w, "message"); jw_str(&w, r->msg);
            /* A line changes at most one event; a detection sent again
             * unchanged is accepted without a change (R-OP-1). */
            jw_key(&w, "changed"); jw_uint(&w, r->code == RISK_OK);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_key(&w, "ok"); jw_uint(&w, im->ok);
        jw_key(&w, "failed"); jw_uint(&w, im->failed);
        jw_obj_end(&w);
        jw_end(&w);
    } else {
        double s = elapsed(im);
        printf("imported %" PRIu64 " line%s, %" PRIu64 " failed (%.2f s, %.0f lines/s)\n", im->ok,
               im->ok == 1 ? "" : "s", im->failed, s, s > 0 ? (double)(im->ok + im->failed) / s : 0);
    }
    for (size_t i = 0; i < im->nres; i++)
        if (im->res[i].code != RISK_OK)
            fprintf(stderr, "riskctl: line %" PRIu64 ": %s: %s\n", im->res[i].line,
                    risk_error_name(im->res[i].code),
                    im->res[i].msg ? im->res[i].msg : risk_strerror(im->res[i].code));
}

int cmd_import(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np))) return rc;
    if (np != 1) return usage_error(c, "event import FILE|-");
    FILE *f = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
    if (!f) return fail_msg(c, RISK_EIO, "FILE: cannot open '%s': %s", argv[0], strerror(errno));
    importer *im = calloc(1, sizeof *im);
    csv r;
    csv_init(&r, f);
    if (!im) {
        rc = fail_msg(c, RISK_ENOMEM, "out of memory");
        goto out;
    }
    im->c = c;
    im->keep_ok = c->json;
    im->progress = isatty(STDERR_FILENO);
    struct stat sb;
    im->total_bytes = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : 0;
    clock_gettime(CLOCK_MONOTONIC, &im->t0);
    if ((rc = read_header(im, &r))) goto out;
    if ((rc = open_engine(c, OPEN_BULK))) goto out;
    for (;;) {
        int got = csv_next(&r);
        if (got < 0) {
            rc = fail_msg(c, RISK_EIO, "input: read error or out of memory at line %" PRIu64,
                          r.line);
            goto out;
        }
        if (got == 0) break;
        if (r.nf == 1 && !r.error && csv_field(&r, 0)[0] == '\0') continue; /* blank line */
        char msg[512];
        risk_event *e = NULL;
        int code = parse_line(im, &r, &e, msg, sizeof msg);
        if (code != RISK_OK) {
            if (add_result(im, r.line, code, msg)) goto oom;
            continue;
        }
        im->batch[im->nb] = e;
        im->lines[im->nb++] = r.line;
        if (im->nb == BATCH) {
            if (flush_batch(im)) goto oom;
            progress(im, r.bytes, 0);
        }
    }
    if (flush_batch(im)) goto oom;
    progress(im, r.bytes, 1);
    /* Results come back in line order except parse failures, which were
     * recorded at once: sort by line for the report. */
    for (size_t i = 1; i < im->nres; i++) {
        result x = im->res[i];
        size_t j = i;
        while (j > 0 && im->res[j - 1].line > x.line) {
            im->res[j] = im->res[j - 1];
            j--;
        }
        im->res[j] = x;
    }
    print_results(im);
    rc = im->failed ? EXIT_REFUSED : EXIT_DONE;
    goto out;
oom:
    rc = fail_msg(c, RISK_ENOMEM, "out of memory");
out:
    if (im) {
        for (size_t i = 0; i < im->nb; i++) risk_event_free(im->batch[i]);
        for (size_t i = 0; i < im->nres; i++) free(im->res[i].msg);
        free(im->res);
        free(im);
    }
    csv_free(&r);
    if (f && f != stdin) fclose(f);
    return rc;
}
