/* riskctl event import: detections from CSV (RFC 4180) with a header row
 * naming SPEC §2 fields in any order. Each line is atomic on its own: a
 * broken line is reported and skipped, the others still apply. Lines are
 * ingested in batches through risk_engine_ingest_bulk() with the journal
 * in normal durability (synced in the background), which is what makes a
 * million lines take seconds rather than hours of fdatasync. Reading and
 * parsing run on a second thread, one batch ahead of the ingesting one,
 * so the two halves of the work share the machine's cores; results are
 * still taken in line order. */
#include "riskctl_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
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

/* One parsed line: a detection to ingest, or the reason it was refused. */
typedef struct item {
    uint64_t line;
    int code;
    risk_event *ev; /* code RISK_OK */
    char *msg;      /* otherwise, owned */
    int no_time;    /* no detected_at given: stamped now when read */
} item;

/* A batch handed from the reading thread to the ingesting one. */
typedef struct batch {
    item it[BATCH];
    size_t n;
    uint64_t bytes; /* input consumed after its last line (progress) */
    int end;        /* the last batch: input over, or the reader failed */
    int err;        /* RISK_EIO or RISK_ENOMEM when the reader failed */
    uint64_t err_line;
} batch;

typedef struct importer {
    ctl *c;
    int col[NF]; /* column of each field, -1 if absent */
    size_t ncols;
    result *res;
    size_t nres, cap;
    uint64_t ok, failed;
    int keep_ok; /* --json lists every line */
    int progress;
    int64_t total_bytes;
    struct timespec t0;
    /* the two-batch pipeline: batch i lives in buf[i % 2] */
    csv *r;
    batch buf[2];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t produced, consumed; /* batches handed over / finished */
    int stop;                    /* the ingesting side gave up */
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

/* A line without detected_at was stamped now when read. If its id is
 * already stored it takes the stored event's detected_at instead (as
 * `event add` without --at does): an unchanged detection sent again, a
 * file imported twice, is then the same event (R-OP-1) and applies,
 * rather than a different event under a taken id. Returns 1 if it did. */
static int stored_time(importer *im, item *it)
{
    risk_event *old = NULL;
    int found = risk_engine_event(&old, im->c->eng, risk_event_id(it->ev)) == RISK_OK;
    if (found) risk_event_set_detected_at(it->ev, risk_event_detected_at(old));
    risk_event_free(old);
    return found;
}

/* Ingest one batch's detections in one bulk call and record every line's
 * result in line order. A line stamped now whose id turned out to be
 * stored (before, or by an earlier line of the batch) gets a second bulk
 * call with the stored time: looking up only the refused lines keeps new
 * detections free of the lookup. */
static int take_batch(importer *im, batch *b)
{
    risk_event *ev[BATCH];
    int results[BATCH];
    size_t at[BATCH]; /* item of each ev */
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->it[i].code != RISK_OK) continue;
        at[n] = i;
        ev[n++] = b->it[i].ev;
    }
    int got = n ? risk_engine_ingest_bulk(im->c->eng, im->c->actor,
                                          (const risk_event *const *)ev, n, 0, results)
                : 0;
    if (got >= 0) {
        risk_event *ev2[BATCH];
        int res2[BATCH];
        size_t k2[BATCH], n2 = 0;
        for (size_t k = 0; k < n; k++) {
            item *it = &b->it[at[k]];
            if (results[k] != RISK_OK && it->no_time && stored_time(im, it)) {
                k2[n2] = k;
                ev2[n2++] = it->ev;
            }
        }
        if (n2 && risk_engine_ingest_bulk(im->c->eng, im->c->actor,
                                          (const risk_event *const *)ev2, n2, 0, res2) >= 0)
            for (size_t j = 0; j < n2; j++) results[k2[j]] = res2[j];
    }
    int rc = 0;
    for (size_t i = 0, k = 0; i < b->n; i++) {
        item *it = &b->it[i];
        int code = it->code;
        const char *msg = it->msg;
        if (code == RISK_OK) {
            code = got < 0 ? got : results[k];
            k++;
            if (code != RISK_OK) {
                /* The bulk call reports codes only: try the line alone for
                 * its reason (a refused ingest changes nothing). */
                code = risk_engine_ingest(im->c->eng, im->c->actor, it->ev, 0);
                if (code != RISK_OK) msg = risk_error_last();
            }
        }
        if (rc == 0 && add_result(im, it->line, code, msg)) rc = -1;
        risk_event_free(it->ev);
        free(it->msg);
        it->ev = NULL;
        it->msg = NULL;
    }
    b->n = 0;
    return rc;
}

/* Build the detection of one record; its code, and the message on failure.
 * *no_time: no detected_at was given (the detection is stamped now). */
static int parse_line(importer *im, csv *r, risk_event **out, int *no_time, char *msg,
                      size_t cap)
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
        *no_time = 1;
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
    if (got == 0)
        return fail_msg(im->c, RISK_EINVAL, "header: expected a header row naming the fields "
                                            "(user_id,id,type,level,detected_at,...)");
    if (r->error) return fail_msg(im->c, RISK_EINVAL, "header: csv: %s", r->error);
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

static int parse_line(importer *im, csv *r, risk_event **out, int *no_time, char *msg,
                      size_t cap);

/* Read and parse up to BATCH lines into b; fewer when the input has no
 * more for now (a pipe fed as detections happen, `tail -f d.csv | riskctl
 * event import -`): what was read is handed over at once rather than
 * held until the batch is full or the input ends. */
static void fill_batch(importer *im, batch *b)
{
    csv *r = im->r;
    b->n = 0;
    b->end = b->err = 0;
    while (b->n < BATCH) {
        if (b->n > 0 && !csv_ready(r)) break;
        int got = csv_next(r);
        if (got < 0 || got == 0) {
            b->end = 1;
            if (got < 0) b->err = RISK_EIO, b->err_line = r->line;
            break;
        }
        if (r->nf == 1 && !r->error && csv_field(r, 0)[0] == '\0') continue; /* blank line */
        char msg[512];
        item *it = &b->it[b->n];
        it->line = r->line;
        it->ev = NULL;
        it->msg = NULL;
        it->no_time = 0;
        it->code = parse_line(im, r, &it->ev, &it->no_time, msg, sizeof msg);
        if (it->code != RISK_OK && !(it->msg = strdup(msg))) {
            b->end = 1;
            b->err = RISK_ENOMEM;
            b->err_line = r->line;
            break;
        }
        b->n++;
    }
    b->bytes = r->bytes;
}

/* The reading thread: fills batch i while batch i - 1 is being ingested. */
static void *reader_main(void *arg)
{
    importer *im = arg;
    for (uint64_t i = 0;; i++) {
        pthread_mutex_lock(&im->mu);
        while (i - im->consumed >= 2 && !im->stop) pthread_cond_wait(&im->cv, &im->mu);
        int stop = im->stop;
        pthread_mutex_unlock(&im->mu);
        if (stop) break;
        batch *b = &im->buf[i % 2];
        fill_batch(im, b);
        pthread_mutex_lock(&im->mu);
        im->produced = i + 1;
        pthread_cond_broadcast(&im->cv);
        pthread_mutex_unlock(&im->mu);
        if (b->end) break;
    }
    return NULL;
}

/* Every line's result (--json) or the summary, and the failed lines on
 * stderr. err (with emsg): the import stopped early, e.g. a read error;
 * the lines before it are committed, so they are reported too, then the
 * error (with --json in the same object: "error", "code", "message"). */
static void print_results(importer *im, int err, const char *emsg)
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
        if (err) {
            jw_key(&w, "error"); jw_str(&w, risk_error_name(err));
            jw_key(&w, "code"); jw_int(&w, err);
            jw_key(&w, "message"); jw_str(&w, emsg);
        }
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
    if (err) fprintf(stderr, "riskctl: %s: %s\n", risk_error_name(err), emsg);
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
    im->r = &r;
    pthread_mutex_init(&im->mu, NULL);
    pthread_cond_init(&im->cv, NULL);
    pthread_t reader;
    int threaded = pthread_create(&reader, NULL, reader_main, im) == 0;
    int bad = 0, err = 0;
    uint64_t err_line = 0;
    for (uint64_t i = 0;; i++) {
        batch *b = &im->buf[i % 2];
        if (threaded) {
            pthread_mutex_lock(&im->mu);
            while (im->produced == i) pthread_cond_wait(&im->cv, &im->mu);
            pthread_mutex_unlock(&im->mu);
        } else {
            fill_batch(im, b); /* no second thread: read and ingest in turn */
        }
        int end = b->end;
        if (b->err) err = b->err, err_line = b->err_line;
        if (take_batch(im, b)) bad = 1;
        progress(im, b->bytes, 0);
        pthread_mutex_lock(&im->mu);
        im->consumed = i + 1;
        if (bad) im->stop = 1;
        pthread_cond_broadcast(&im->cv);
        pthread_mutex_unlock(&im->mu);
        if (end || bad) break;
    }
    if (threaded) pthread_join(reader, NULL);
    for (int k = 0; k < 2; k++) { /* a batch the reader filled after we stopped */
        for (size_t i = 0; i < im->buf[k].n; i++) {
            risk_event_free(im->buf[k].it[i].ev);
            free(im->buf[k].it[i].msg);
        }
        im->buf[k].n = 0;
    }
    pthread_cond_destroy(&im->cv);
    pthread_mutex_destroy(&im->mu);
    if (bad) goto oom; /* the results themselves are incomplete */
    progress(im, r.bytes, 1);
    /* take_batch recorded every line, parse failures too, in line order;
     * after a read error, every line before it (committed) and then the
     * error. */
    char emsg[160] = "";
    if (err == RISK_EIO)
        snprintf(emsg, sizeof emsg, "input: read error or out of memory at line %" PRIu64,
                 err_line);
    else if (err)
        snprintf(emsg, sizeof emsg, "out of memory at line %" PRIu64, err_line);
    /* The lines went in with normal durability: sync them now, so that
     * success means they are on disk (a failure is reported, not lost at
     * close). */
    int sr = risk_engine_sync(c->eng);
    if (!err && sr != RISK_OK && sr != RISK_EUNSUPPORTED) {
        err = sr;
        snprintf(emsg, sizeof emsg, "the final sync failed (%s); the journal may not hold "
                 "the lines reported imported", risk_error_last());
    }
    print_results(im, err, emsg);
    rc = im->failed || err ? EXIT_REFUSED : EXIT_DONE;
    goto out;
oom:
    rc = fail_msg(c, RISK_ENOMEM, "out of memory");
out:
    if (im) {
        for (size_t i = 0; i < im->nres; i++) free(im->res[i].msg);
        free(im->res);
        free(im);
    }
    csv_free(&r);
    if (f && f != stdin) fclose(f);
    return rc;
}
