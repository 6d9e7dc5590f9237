/* risk-bench: the performance figures of issue 9 (and issue 5, item 9).
 *
 * Public API only. Each store configuration runs in its own forked child,
 * so its peak RSS (getrusage ru_maxrss) is its own; the journal's reopen
 * runs in a second child for the same reason. Every figure is one line
 * `name value unit` on stdout; lines starting with '#' are context.
 * docs/performance.md describes the workload and every figure. */
#include "bench_util.h"

#include <librisk.h>
#include <librisk/store.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ST_MEMORY, ST_JOFF, ST_JNORMAL, ST_JFULL, ST_COUNT };
static const char *const store_names[ST_COUNT] = { "memory", "journal-off", "journal-normal",
                                                   "journal-full" };
static const uint32_t store_durability[ST_COUNT] = { 0, RISK_DURABILITY_OFF,
                                                     RISK_DURABILITY_NORMAL,
                                                     RISK_DURABILITY_FULL };

#define MAX_THREADS 256
#define BATCH 64 /* sign-ins timed per clock read; budget checked per BATCH ops */
#define ACTOR "bench"
#define DAY_MS INT64_C(86400000)

static struct opts {
    int quick;
    uint32_t users, events, signins, dismisses;
    unsigned stores; /* bit per ST_… */
    int threads[16], n_threads; /* 0: per-store defaults */
    char dir[4096];
    int own_dir, keep;
    double budget;      /* seconds per phase and thread set */
    double sync_seconds;
    uint64_t seed;
    double fsync_rate;  /* measured by the parent, read by children */
} O;

/* ------------------------------------------------------------------ */
/* Failure: children report and exit; the parent goes on.              */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "risk-bench: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

#define CHECK(call)                                                                     \
    do {                                                                                \
        int rc_ = (call);                                                               \
        if (rc_ < 0)                                                                    \
            die("%s: %s (%s)", #call, risk_error_name(rc_), risk_error_last());         \
    } while (0)

/* ------------------------------------------------------------------ */
/* The world of one configuration                                      */

struct world {
    int kind, nthreads;
    char prefix[64];   /* e.g. "memory.t1" */
    char path[4200];   /* journal file */
    risk_engine *eng;
    char *uid_buf;
    const char **uid;  /* users[i] */
};

struct worker;

/* A phase runs in rounds: every thread prepares a pool of inputs (not
 * timed: building events, picking users), a barrier, all threads run
 * their pools (timed), a barrier. Throughput is all ops over the summed
 * wall time of the run parts, so it is the system's rate with every
 * thread busy, and input building never counts. */
struct phase {
    const char *name;
    size_t (*prepare)(struct worker *k, size_t max); /* fill the pool; 0: done */
    size_t (*run)(struct worker *k, size_t n);      /* timed; returns ops done */
    void (*discard)(struct worker *k, size_t n);    /* free a pool (NULL: nothing) */
};

#define POOL_TOTAL 16384 /* inputs prepared per round over all threads */

struct round_ctl;

struct worker {
    struct world *w;
    int idx;
    uint64_t rng;
    bench_samples *lat;       /* the samples of this round's phase */
    bench_samples lats[2];    /* per phase of the run (see run_phase) */
    uint64_t cpu_ns[2], minflt[2], done_by[2], quota_by[2];
    uint64_t done; /* over both phases: numbers this thread's next input */
    uint64_t decisions[3], closed, closed_by[2];
    size_t pool_cap;
    risk_event **ev;   /* ingest pool */
    risk_user **us;    /* upsert pool */
    const char **ids;  /* sign-in and dismiss pool: points into idcopy */
    char (*idcopy)[24]; /* the ids copied in call order, as a caller holds
                         * the id of the request in hand (the hash limit
                         * probes such copies too) */
    uint32_t *perm, perm_n; /* dismiss order */
    risk_verdict *v;
    risk_verdict *vs[BATCH]; /* signin_bulk */
    uint32_t bclosed[BATCH];  /* dismiss_bulk */
    int bres[BATCH];          /* a bulk call's results */
    const struct phase *ph;   /* this round's phase */
    int p;                    /* its index in phs */
    const struct phase *phs[2];
    struct round_ctl *rc;
    uint64_t deadline; /* bench_ns() after which this round stops early (budget) */
    uint64_t run_t0, run_t1; /* bench_ns() around this round's run */
};

/* Checked every BATCH ops: a phase on a slow store stops at its budget. */
static int past_deadline(const struct worker *k, size_t i)
{
    return i % BATCH == 0 && bench_ns() > k->deadline;
}

/* Users of thread idx: those with index % nthreads == idx (disjoint). */
static uint32_t class_size(const struct world *w, int idx)
{
    uint32_t t = (uint32_t)w->nthreads;
    return O.users / t + ((uint32_t)idx < O.users % t);
}

static uint32_t pick_user(struct worker *k)
{
    return (uint32_t)k->idx +
           (uint32_t)k->w->nthreads * bench_below(&k->rng, class_size(k->w, k->idx));
}

static uint64_t share(uint64_t total, int idx, int n)
{
    return total / (uint64_t)n + ((uint64_t)idx < total % (uint64_t)n);
}

static size_t left(const struct worker *k, size_t max)
{
    uint64_t l = k->quota_by[k->p] - k->done_by[k->p];
    return l < max ? (size_t)l : max;
}

/* Deterministic per-user attributes: half MFA, 1% deleted. */
static uint64_t user_hash(uint32_t i)
{
    uint64_t s = O.seed ^ ((uint64_t)i << 20);
    return bench_rand(&s);
}

static void make_users(struct world *w)
{
    w->uid_buf = malloc((size_t)O.users * 21);
    w->uid = malloc((size_t)O.users * sizeof *w->uid);
    if (!w->uid_buf || !w->uid)
        die("out of memory for user ids");
    for (uint32_t i = 0; i < O.users; i++) {
        char *p = w->uid_buf + (size_t)i * 21, tmp[48];
        /* 20 bytes: unique index (< 10^6), random-looking tail */
        snprintf(tmp, sizeof tmp, "usr-%06u-%09llx", i % 1000000u,
                 (unsigned long long)(user_hash(i) >> 28) & 0xfffffffffull);
        memcpy(p, tmp, 20);
        p[20] = 0;
        w->uid[i] = p;
    }
}

/* ------------------------------------------------------------------ */
/* Phases                                                              */

static size_t prep_upsert(struct worker *k, size_t max)
{
    struct world *w = k->w;
    size_t n = left(k, max);
    int64_t mfa_at = risk_engine_now(w->eng) - 365 * DAY_MS; /* before any risk */
    for (size_t j = 0; j < n; j++) {
        uint32_t i = (uint32_t)k->idx + (uint32_t)w->nthreads * (uint32_t)(k->done + j);
        uint64_t h = user_hash(i);
        CHECK(risk_user_new(&k->us[j], w->uid[i]));
        if (h & 1)
            CHECK(risk_user_set_mfa_registered(k->us[j], 1, mfa_at));
        if ((h >> 8) % 100 == 0)
            CHECK(risk_user_set_deleted(k->us[j], 1));
    }
    return n;
}

static void discard_upsert(struct worker *k, size_t n)
{
    for (size_t j = 0; j < n; j++)
        risk_user_free(k->us[j]);
}

/* Items one call each, each call timed: op(k, i) runs item i. */
static size_t run_each(struct worker *k, size_t n, int (*op)(struct worker *, size_t),
                       const char *what)
{
    size_t i;
    for (i = 0; i < n && !past_deadline(k, i); i++) {
        uint64_t a = bench_ns();
        int rc = op(k, i);
        uint64_t b = bench_ns();
        if (rc)
            die("%s: %s (%s)", what, risk_error_name(rc), risk_error_last());
        bench_samples_add(k->lat, b - a);
    }
    return i;
}

static int upsert_one(struct worker *k, size_t i)
{
    return risk_engine_upsert_user(k->w->eng, ACTOR, k->us[i]);
}

static size_t run_upsert(struct worker *k, size_t n) { return run_each(k, n, upsert_one, "upsert"); }

static const char *const types[] = { "leakedCredentials", "anonymizedIPAddress",
                                     "unfamiliarFeatures", "atypicalTravel",
                                     "maliciousIPAddress", "suspiciousBrowser",
                                     "unlikelyTravel", "passwordSpray",
                                     "suspiciousInboxForwarding", "mcasImpossibleTravel" };
static const char *const places[] = { "Seattle, WA, US", "Berlin, DE", "Lagos, NG",
                                      "São Paulo, BR", "Mumbai, IN", "Sydney, AU",
                                      "Toronto, ON, CA", "Tokyo, JP", "Paris, FR",
                                      "Johannesburg, ZA", "Reykjavík, IS", "Austin, TX, US" };

static void build_event(struct worker *k, risk_event **out, uint64_t serial, int64_t now)
{
    char id[32], ip[48];
    uint64_t r = bench_rand(&k->rng);
    uint32_t u = pick_user(k);
    uint32_t lv = (uint32_t)(r % 10); /* 60% low, 30% medium, 10% high */
    risk_level level = lv < 6 ? RISK_LEVEL_LOW : lv < 9 ? RISK_LEVEL_MEDIUM : RISK_LEVEL_HIGH;
    /* 24 bytes, unique: thread and serial, plus a random-looking tail */
    snprintf(id, sizeof id, "evt-%02x%06llx-%011llx", (unsigned)k->idx & 0xff,
             (unsigned long long)serial & 0xffffff, (unsigned long long)(r >> 20) & 0xfffffffffffull);
    int64_t at = now - (int64_t)(bench_rand(&k->rng) % (uint64_t)(30 * DAY_MS));
    CHECK(risk_event_new(out, id, k->w->uid[u], types[(r >> 8) % 10], level, at));
    if ((r >> 16) % 5 == 0)
        snprintf(ip, sizeof ip, "2001:db8:%x:%x::%x", (unsigned)(r >> 24) & 0xffff,
                 (unsigned)(r >> 40) & 0xffff, (unsigned)(r >> 56));
    else
        snprintf(ip, sizeof ip, "%u.%u.%u.%u", 1 + (unsigned)(r >> 24) % 223,
                 (unsigned)(r >> 32) & 0xff, (unsigned)(r >> 40) & 0xff,
                 1 + (unsigned)(r >> 48) % 254);
    CHECK(risk_event_set_ip(*out, ip));
    CHECK(risk_event_set_location(*out, places[(r >> 4) % 12]));
    CHECK(risk_event_set_source(*out, "IdentityProtection"));
    if ((r >> 12) % 10 == 0)
        CHECK(risk_event_set_timing(*out, RISK_TIMING_OFFLINE));
}

static size_t prep_ingest(struct worker *k, size_t max)
{
    size_t n = left(k, max);
    int64_t now = risk_engine_now(k->w->eng);
    for (size_t i = 0; i < n; i++)
        build_event(k, &k->ev[i], k->done + i, now);
    return n;
}

static void discard_ingest(struct worker *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        risk_event_free(k->ev[i]);
}

static int ingest_one(struct worker *k, size_t i)
{
    return risk_engine_ingest(k->w->eng, ACTOR, k->ev[i], 0);
}

static size_t run_ingest(struct worker *k, size_t n) { return run_each(k, n, ingest_one, "ingest"); }

/* Items BATCH per bulk call, each call timed: call(k, at, m) runs items
 * at..at+m-1 (results in k->bres) and returns its count of failures;
 * then done(k, at, m, bad) checks and tallies, untimed. A call adds its
 * mean per item as one sample per item, or once (per_call). */
static size_t run_bulk(struct worker *k, size_t n, int (*call)(struct worker *, size_t, size_t),
                       void (*done)(struct worker *, size_t, size_t, int), int per_call)
{
    size_t at;
    for (at = 0; at < n && !past_deadline(k, at); at += BATCH) {
        size_t m = n - at < BATCH ? n - at : BATCH;
        uint64_t a = bench_ns();
        int bad = call(k, at, m);
        uint64_t b = bench_ns();
        done(k, at, m, bad);
        for (size_t i = 0; i < (per_call ? 1 : m); i++)
            bench_samples_add(k->lat, (b - a) / m);
    }
    return at < n ? at : n;
}

/* The same ingests, BATCH per risk_engine_ingest_bulk() call: the store
 * is hinted the users and event ids ahead of their lookups. Each call
 * contributes its mean per event. */
static int ingest_chunk(struct worker *k, size_t at, size_t m)
{
    return risk_engine_ingest_bulk(k->w->eng, ACTOR, (const risk_event *const *)k->ev + at, m, 0,
                                   k->bres);
}

static void ingest_chunk_done(struct worker *k, size_t at, size_t m, int bad)
{
    (void)at;
    for (size_t i = 0; bad && i < m; i++)
        if (k->bres[i])
            die("ingest bulk: %s", risk_error_name(k->bres[i]));
}

static size_t run_ingest_bulk(struct worker *k, size_t n)
{
    return run_bulk(k, n, ingest_chunk, ingest_chunk_done, 0);
}

static size_t prep_signin(struct worker *k, size_t max)
{
    size_t n = left(k, max);
    for (size_t i = 0; i < n; i++)
        k->ids[i] = memcpy(k->idcopy[i], k->w->uid[pick_user(k)], 21);
    return n;
}

/* One clock read per BATCH sign-ins: a clock read costs a sizable part
 * of a sign-in. The decisions are tallied after each timed batch. */
static size_t run_signin(struct worker *k, size_t n)
{
    risk_decision d[BATCH];
    size_t at;
    for (at = 0; at < n && !past_deadline(k, at); at += BATCH) {
        size_t m = n - at < BATCH ? n - at : BATCH;
        int bad = 0;
        uint64_t a = bench_ns();
        for (size_t i = 0; i < m; i++) {
            bad |= risk_engine_sign_in(k->w->eng, k->ids[at + i], k->v);
            d[i] = risk_verdict_decision(k->v);
        }
        uint64_t b = bench_ns();
        if (bad)
            die("sign-in: %s", risk_error_last());
        for (size_t i = 0; i < m; i++)
            k->decisions[d[i] <= 2 ? d[i] : 2]++;
        bench_samples_add(k->lat, (b - a) / m);
    }
    return at < n ? at : n;
}

/* The same sign-ins, BATCH per risk_engine_sign_in_bulk() call: the
 * store is hinted the users ahead of their lookups. One sample a call,
 * as run_signin takes one a batch. */
static int signin_chunk(struct worker *k, size_t at, size_t m)
{
    return risk_engine_sign_in_bulk(k->w->eng, k->ids + at, m, k->vs, k->bres);
}

static void signin_chunk_done(struct worker *k, size_t at, size_t m, int bad)
{
    (void)at;
    if (bad)
        die("sign-in bulk: %d failed (%s)", bad, risk_error_last());
    for (size_t i = 0; i < m; i++) {
        risk_decision d = risk_verdict_decision(k->vs[i]);
        k->decisions[d <= 2 ? d : 2]++;
    }
}

static size_t run_signin_bulk(struct worker *k, size_t n)
{
    return run_bulk(k, n, signin_chunk, signin_chunk_done, 1);
}

static size_t prep_dismiss(struct worker *k, size_t max)
{
    struct world *w = k->w;
    if (!k->perm) { /* a random order of this thread's users, each once */
        k->perm_n = class_size(w, k->idx);
        if (!(k->perm = malloc((size_t)k->perm_n * sizeof *k->perm)))
            die("out of memory");
        for (uint32_t i = 0; i < k->perm_n; i++)
            k->perm[i] = i;
        for (uint32_t i = k->perm_n; i > 1; i--) { /* Fisher-Yates */
            uint32_t j = bench_below(&k->rng, i), t = k->perm[i - 1];
            k->perm[i - 1] = k->perm[j];
            k->perm[j] = t;
        }
    }
    size_t n = left(k, max);
    for (size_t i = 0; i < n; i++)
        k->ids[i] = memcpy(k->idcopy[i],
                           w->uid[(uint32_t)k->idx +
                                  (uint32_t)w->nthreads * k->perm[(k->done + i) % k->perm_n]],
                           21);
    return n;
}

static int dismiss_one(struct worker *k, size_t i)
{
    uint32_t closed = 0;
    int rc = risk_engine_dismiss(k->w->eng, ACTOR, k->ids[i], NULL, &closed);
    k->closed += closed;
    return rc;
}

static size_t run_dismiss(struct worker *k, size_t n) { return run_each(k, n, dismiss_one, "dismiss"); }

/* The same dismissals, BATCH per risk_engine_dismiss_bulk() call (the
 * store is hinted the users ahead); each call contributes its mean. */
static int dismiss_chunk(struct worker *k, size_t at, size_t m)
{
    return risk_engine_dismiss_bulk(k->w->eng, ACTOR, k->ids + at, m, NULL, k->bres, k->bclosed);
}

static void dismiss_chunk_done(struct worker *k, size_t at, size_t m, int bad)
{
    for (size_t i = 0; i < m; i++) {
        if (bad && k->bres[i])
            die("dismiss bulk %s: %s", k->ids[at + i], risk_error_name(k->bres[i]));
        k->closed += k->bclosed[i];
    }
}

static size_t run_dismiss_bulk(struct worker *k, size_t n)
{
    return run_bulk(k, n, dismiss_chunk, dismiss_chunk_done, 0);
}

static const struct phase PH_UPSERT = { "setup_users", prep_upsert, run_upsert, discard_upsert };
static const struct phase PH_INGEST = { "ingest", prep_ingest, run_ingest, discard_ingest };
static const struct phase PH_INGEST_BULK = { "ingest_bulk", prep_ingest, run_ingest_bulk,
                                             discard_ingest };
static const struct phase PH_SIGNIN = { "signin", prep_signin, run_signin, NULL };
static const struct phase PH_SIGNIN_BULK = { "signin_bulk", prep_signin, run_signin_bulk, NULL };
static const struct phase PH_DISMISS = { "dismiss", prep_dismiss, run_dismiss, NULL };
static const struct phase PH_DISMISS_BULK = { "dismiss_bulk", prep_dismiss, run_dismiss_bulk,
                                              NULL };

/* The main thread decides each round (which phase, or stop) before the
 * workers prepare it: barrier A. B: all prepared, the round starts.
 * C: the round is over. */
struct round_ctl {
    pthread_barrier_t bar;
    int stop;
    int phase;       /* this round's phase */
    uint64_t left;   /* ns of that phase's budget not yet spent */
    struct worker *ks;
};

static void *worker_main(void *arg)
{
    struct worker *k = arg;
    struct round_ctl *rc = k->rc;
    for (;;) {
        pthread_barrier_wait(&rc->bar); /* A: main decided */
        if (rc->stop)
            break;
        int p = k->p = rc->phase;
        k->ph = k->phs[p];
        k->lat = &k->lats[p];
        size_t n = k->ph->prepare(k, k->pool_cap);
        pthread_barrier_wait(&rc->bar); /* B: all prepared */
        uint64_t c = bench_thread_cpu_ns(), f = bench_thread_minflt();
        k->run_t0 = bench_ns();
        k->deadline = rc->left == UINT64_MAX ? UINT64_MAX : k->run_t0 + rc->left;
        uint64_t closed0 = k->closed;
        size_t ran = k->ph->run(k, n);
        k->run_t1 = bench_ns();
        k->cpu_ns[p] += bench_thread_cpu_ns() - c;
        k->minflt[p] += bench_thread_minflt() - f;
        if (k->ph->discard) /* the pool's handles: freed, not timed */
            k->ph->discard(k, n);
        k->done += ran;
        k->done_by[p] += ran;
        k->closed_by[p] += k->closed - closed0;
        pthread_barrier_wait(&rc->bar); /* C: round over */
    }
    return NULL;
}

/* FNV-1a of a phase's name: each phase draws its own sequence (signin and
 * signin_bulk, both starting with 's', used to replay the same users). */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* Print the figures of phase p of a run (run_phase). */
static uint64_t phase_figures(const struct world *w, const struct phase *ph, int p,
                              struct worker *ks, uint64_t timed, uint64_t wall, int truncated)
{
    int t = w->nthreads;
    bench_samples all = { 0 };
    uint64_t ops = 0, cpu = 0, flt = 0, dec[3] = { 0 }, closed = 0;
    for (int i = 0; i < t; i++) {
        struct worker *k = &ks[i];
        ops += k->done_by[p];
        cpu += k->cpu_ns[p];
        flt += k->minflt[p];
        for (int d = 0; d < 3; d++)
            dec[d] += k->decisions[d];
        closed += k->closed_by[p];
        if (bench_samples_merge(&all, &k->lats[p]))
            die("out of memory");
    }
    bench_samples_sort(&all);
    const char *pf = w->prefix, *op = ph->name;
    bench_figf((double)ops, "ops", "%s.%s.ops", pf, op);
    if (ops > 0) { /* else the budget ran out before this phase had a round:
                    * no rates rather than a rate of 0 it never ran at */
        bench_figf(timed ? (double)ops * 1e9 / (double)timed : 0, "ops/s", "%s.%s.throughput",
                   pf, op);
        bench_figf(bench_samples_q(&all, 0.50), "ns", "%s.%s.p50", pf, op);
        bench_figf(bench_samples_q(&all, 0.99), "ns", "%s.%s.p99", pf, op);
        bench_figf(bench_samples_q(&all, 0.999), "ns", "%s.%s.p99.9", pf, op);
        bench_figf((double)cpu / (double)ops, "ns", "%s.%s.cpu_per_op", pf, op);
        bench_figf((double)flt * 1000.0 / (double)ops, "faults", "%s.%s.minflt_per_1000", pf,
                   op);
    }
    bench_figf((double)timed / 1e9, "s", "%s.%s.timed", pf, op);
    bench_figf((double)wall / 1e9, "s", "%s.%s.wall", pf, op);
    if (truncated)
        bench_figf(O.budget, "s", "%s.%s.stopped_by_budget", pf, op);
    if (ph == &PH_SIGNIN || ph == &PH_SIGNIN_BULK) {
        bench_figf((double)dec[0], "ops", "%s.%s.allow", pf, op);
        bench_figf((double)dec[1], "ops", "%s.%s.require_password_change", pf, op);
        bench_figf((double)dec[2], "ops", "%s.%s.block", pf, op);
    }
    if (ph == &PH_DISMISS || ph == &PH_DISMISS_BULK)
        bench_figf((double)closed, "events", "%s.%s.events_closed", pf, op);
    if ((ph == &PH_INGEST || ph == &PH_INGEST_BULK) && w->kind == ST_JFULL &&
        O.fsync_rate > 0 && timed)
        bench_figf((double)ops * 1e9 / (double)timed / O.fsync_rate, "x",
                   "%s.%s.per_fdatasync", pf, op);
    bench_samples_free(&all);
    return ops;
}

/* Run `total` operations on the world's threads and print the figures.
 * With two phases, each gets half of `total` and a budget of its own, and
 * the rounds alternate between them (round 0 the first): both run on the
 * same inputs' kind, over the same growth of the store and the same
 * stretch of a shared machine, so their figures stand side by side. A
 * phase whose quota is done or whose budget is spent drops out; the other
 * goes on alone. wall is the whole run's. Returns the operations done. */
static uint64_t run_phase2(struct world *w, const struct phase *ph0, const struct phase *ph1,
                           uint64_t total)
{
    int t = w->nthreads, nph = ph1 ? 2 : 1;
    struct round_ctl rc = { .stop = 0 };
    rc.ks = calloc((size_t)t, sizeof *rc.ks);
    pthread_t *th = calloc((size_t)t, sizeof *th);
    if (!rc.ks || !th || pthread_barrier_init(&rc.bar, NULL, (unsigned)t + 1))
        die("out of memory");
    size_t cap = POOL_TOTAL / (size_t)t;
    cap = cap < BATCH ? BATCH : cap / BATCH * BATCH;
    for (int i = 0; i < t; i++) {
        struct worker *k = &rc.ks[i];
        k->w = w;
        k->idx = i;
        k->rng = O.seed * 1000003u + (uint64_t)i * 7919u + name_hash(ph0->name);
        k->phs[0] = ph0;
        k->phs[1] = ph1;
        k->rc = &rc;
        uint64_t quota = share(total, i, t);
        k->quota_by[1] = nph == 2 ? quota / 2 : 0;
        k->quota_by[0] = quota - k->quota_by[1];
        k->pool_cap = cap;
        if (nph == 2) { /* alternate: a round at most a phase's quota */
            size_t q = (size_t)(k->quota_by[1] + BATCH - 1) / BATCH * BATCH;
            if (q >= BATCH && q < cap)
                k->pool_cap = q;
        }
        k->ev = calloc(cap, sizeof *k->ev);
        k->us = calloc(cap, sizeof *k->us);
        k->ids = calloc(cap, sizeof *k->ids);
        k->idcopy = calloc(cap, sizeof *k->idcopy);
        if (!k->ev || !k->us || !k->ids || !k->idcopy)
            die("out of memory for pools");
        for (int p = 0; p < nph; p++) /* the quota, and the last round run whole */
            if (bench_samples_init(&k->lats[p], k->quota_by[p] + cap + 1))
                die("out of memory for samples");
        if (ph0 == &PH_SIGNIN)
            CHECK(risk_verdict_new(&k->v));
        for (int j = 0; ph0 == &PH_SIGNIN_BULK && j < BATCH; j++)
            CHECK(risk_verdict_new(&k->vs[j]));
    }
    uint64_t start = bench_ns(), timed[2] = { 0, 0 };
    uint64_t budget = O.budget > 0 ? (uint64_t)(O.budget * 1e9) : UINT64_MAX;
    for (int i = 0; i < t; i++)
        if (pthread_create(&th[i], NULL, worker_main, &rc.ks[i]))
            die("pthread_create failed");
    int truncated[2] = { 0, 0 };
    for (int last = nph - 1;;) {
        /* the next round: the other phase if it may run, else the same */
        int open[2] = { 0, 0 };
        for (int p = 0; p < nph; p++) {
            int owed = 0;
            for (int i = 0; i < t; i++)
                owed |= rc.ks[i].done_by[p] < rc.ks[i].quota_by[p];
            truncated[p] |= owed && timed[p] >= budget;
            open[p] = owed && timed[p] < budget;
        }
        int next = (last + 1) % nph;
        rc.phase = open[next] ? next : last;
        rc.stop = !open[rc.phase];
        rc.left = budget == UINT64_MAX ? UINT64_MAX : budget - timed[rc.phase];
        pthread_barrier_wait(&rc.bar); /* A */
        if (rc.stop)
            break;
        pthread_barrier_wait(&rc.bar); /* B */
        pthread_barrier_wait(&rc.bar); /* C */
        /* the round: from the first thread's start to the last one's end
         * (the barriers' wake-ups are not the library's time) */
        uint64_t t0 = UINT64_MAX, t1 = 0;
        for (int i = 0; i < t; i++) {
            t0 = rc.ks[i].run_t0 < t0 ? rc.ks[i].run_t0 : t0;
            t1 = rc.ks[i].run_t1 > t1 ? rc.ks[i].run_t1 : t1;
        }
        timed[rc.phase] += t1 - t0;
        last = rc.phase;
    }
    uint64_t wall = bench_ns() - start;
    for (int i = 0; i < t; i++)
        pthread_join(th[i], NULL);

    uint64_t ops = 0;
    for (int p = 0; p < nph; p++)
        ops += phase_figures(w, p ? ph1 : ph0, p, rc.ks, timed[p], wall, truncated[p]);
    for (int i = 0; i < t; i++) {
        struct worker *k = &rc.ks[i];
        for (int p = 0; p < nph; p++)
            bench_samples_free(&k->lats[p]);
        free(k->ev);
        free(k->us);
        free(k->ids);
        free(k->idcopy);
        free(k->perm);
        risk_verdict_free(k->v);
        for (int j = 0; j < BATCH; j++)
            risk_verdict_free(k->vs[j]);
    }
    pthread_barrier_destroy(&rc.bar);
    free(rc.ks);
    free(th);
    return ops;
}

static uint64_t run_phase(struct world *w, const struct phase *ph, uint64_t total)
{
    return run_phase2(w, ph, NULL, total);
}

/* ------------------------------------------------------------------ */
/* Stores                                                              */

static void open_engine(struct world *w, uint32_t durability, risk_journal_stats *st)
{
    risk_store s;
    if (w->kind == ST_MEMORY) {
        CHECK(risk_memory_store_new(&s));
    } else {
        risk_journal_options jo = RISK_JOURNAL_OPTIONS_INIT;
        jo.durability = durability;
        CHECK(risk_journal_open(&s, w->path, &jo, st));
    }
    int rc = risk_engine_new(&w->eng, &s, NULL);
    if (rc) {
        if (s.close)
            s.close(s.ctx);
        die("risk_engine_new: %s (%s)", risk_error_name(rc), risk_error_last());
    }
}

static double file_bytes(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size : -1;
}

static void set_policies(struct world *w)
{
    risk_policy *p = NULL;
    CHECK(risk_policy_new(&p, "high-require-password-change", RISK_LEVEL_HIGH,
                          RISK_CONTROL_REQUIRE_PASSWORD_CHANGE));
    CHECK(risk_engine_policy_set(w->eng, ACTOR, p));
    risk_policy_free(p);
    CHECK(risk_policy_new(&p, "medium-block-report-only", RISK_LEVEL_MEDIUM,
                          RISK_CONTROL_BLOCK));
    CHECK(risk_policy_set_mode(p, RISK_MODE_REPORT_ONLY));
    CHECK(risk_engine_policy_set(w->eng, ACTOR, p));
    risk_policy_free(p);
}

/* A configuration's figure prefix and journal path. */
static void world_names(struct world *w)
{
    snprintf(w->prefix, sizeof w->prefix, "%s.t%d", store_names[w->kind], w->nthreads);
    snprintf(w->path, sizeof w->path, "%s/%s.journal", O.dir, w->prefix);
}

/* Compaction and reopen are measured on the first thread count of each
 * journal store only: on 1,000,000 events each takes seconds. */
static int compact_here;

/* The whole workload of one configuration (in a child process). */
static void run_config(int kind, int nthreads)
{
    struct world w = { .kind = kind, .nthreads = nthreads };
    world_names(&w);
    make_users(&w);
    /* Setup: users and policies. A journal is loaded with durability off
     * and reopened in the mode measured (100,000 synced upserts would
     * only measure the disk, which the ingest phase does). */
    open_engine(&w, RISK_DURABILITY_OFF, NULL);
    run_phase(&w, &PH_UPSERT, O.users);
    set_policies(&w);
    if (kind != ST_MEMORY) {
        risk_engine_free(w.eng);
        w.eng = NULL;
        open_engine(&w, store_durability[kind], NULL);
    }
    double before = kind != ST_MEMORY ? file_bytes(w.path) : 0;
    uint64_t ev = run_phase2(&w, &PH_INGEST, &PH_INGEST_BULK, O.events);
    if (kind != ST_MEMORY) {
        /* what off and normal still hold in the write buffer counts too */
        CHECK(risk_engine_sync(w.eng));
        double b = file_bytes(w.path);
        bench_figf(before, "bytes", "%s.journal.bytes_before_ingest", w.prefix);
        bench_figf(b, "bytes", "%s.journal.bytes_after_ingest", w.prefix);
        /* what one ingest appends: the event, the user and the history item */
        if (ev)
            bench_figf((b - before) / (double)ev, "bytes/event", "%s.journal.bytes_per_event",
                       w.prefix);
    }
    run_phase(&w, &PH_SIGNIN, O.signins);
    run_phase(&w, &PH_SIGNIN_BULK, O.signins);
    run_phase2(&w, &PH_DISMISS, &PH_DISMISS_BULK, O.dismisses);
    if (kind != ST_MEMORY) {
        CHECK(risk_engine_sync(w.eng));
        bench_figf(file_bytes(w.path), "bytes", "%s.journal.bytes_end", w.prefix);
    }
    if (kind != ST_MEMORY && compact_here) {
        uint64_t a = bench_ns();
        CHECK(risk_engine_compact(w.eng));
        bench_figf((double)(bench_ns() - a) / 1e6, "ms", "%s.compact.time", w.prefix);
        bench_figf(file_bytes(w.path), "bytes", "%s.journal.bytes_after_compact", w.prefix);
    }
    uint64_t a = bench_ns(), c = bench_thread_cpu_ns();
    risk_engine_free(w.eng);
    bench_figf((double)(bench_ns() - a) / 1e6, "ms", "%s.close.time", w.prefix);
    bench_figf((double)(bench_thread_cpu_ns() - c) / 1e6, "ms", "%s.close.cpu", w.prefix);
    bench_figf((double)bench_peak_rss_kib() / 1024.0, "MiB", "%s.peak_rss", w.prefix);
    free(w.uid);
    free(w.uid_buf);
}

/* Reopen a journal left by run_config (in its own child). */
static void run_reopen(int kind, int nthreads)
{
    struct world w = { .kind = kind, .nthreads = nthreads };
    world_names(&w);
    risk_journal_stats st = { 0 };
    uint64_t a = bench_ns(), c = bench_thread_cpu_ns();
    open_engine(&w, RISK_DURABILITY_OFF, &st);
    bench_figf((double)(bench_ns() - a) / 1e6, "ms", "%s.reopen.time", w.prefix);
    bench_figf((double)(bench_thread_cpu_ns() - c) / 1e6, "ms", "%s.reopen.cpu", w.prefix);
    bench_figf((double)st.file_bytes, "bytes", "%s.reopen.file_bytes", w.prefix);
    bench_figf((double)st.records_replayed, "records", "%s.reopen.records", w.prefix);
    risk_engine_free(w.eng);
    bench_figf((double)bench_peak_rss_kib() / 1024.0, "MiB", "%s.reopen.peak_rss", w.prefix);
}

/* The reopen above reads a file just written, from the page cache; this
 * one (in a child of its own, after run_reopen's) drops the file's pages
 * first and reads it from the disk, as a host's first open after a
 * reboot. */
static void run_reopen_cold(int kind, int nthreads)
{
    struct world w = { .kind = kind, .nthreads = nthreads };
    world_names(&w);
    int fd = open(w.path, O_RDONLY | O_CLOEXEC);
    int dropped = fd >= 0 && fdatasync(fd) == 0 && /* only clean pages can go */
                  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
    if (fd >= 0)
        close(fd);
    if (!dropped)
        return; /* no figure rather than a warm one under the cold name */
    uint64_t a = bench_ns();
    open_engine(&w, RISK_DURABILITY_OFF, NULL);
    bench_figf((double)(bench_ns() - a) / 1e6, "ms", "%s.reopen.cold_time", w.prefix);
    risk_engine_free(w.eng);
}

static void run_limits_child(void)
{
    bench_fig("limit.clock.read", bench_clock_cost(), "ns");
    double h = bench_hash_limit(100000, O.quick ? 1000000 : 4000000);
    if (h < 0)
        die("hash limit: out of memory");
    bench_fig("limit.hash.lookup", h, "ns");
    bench_fig("limit.hash.lookup_rate", 1e9 / h, "ops/s");
    /* what a random user's record costs to reach once it is out of cache:
     * a sign-in pays it twice (the map slot, then the record) */
    double m = bench_mem_latency((size_t)256 << 20, O.quick ? 1000000 : 4000000);
    if (m < 0)
        die("memory latency: out of memory");
    bench_fig("limit.mem.latency", m, "ns");
}

/* Run fn(kind, t) in a child; 0 on success. */
static int in_child(void (*fn)(int, int), int kind, int t, const char *what)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        fn(kind, t);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    fprintf(stderr, "risk-bench: %s failed (status %d)\n", what, status);
    return -1;
}

static void limits_adapter(int kind, int t)
{
    (void)kind;
    (void)t;
    run_limits_child();
}

/* ------------------------------------------------------------------ */
/* Options                                                             */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: risk-bench [--quick] [--store memory|journal-off|journal-normal|journal-full|all[,...]]\n"
            "                  [--threads N[,N...]] [--dir PATH] [--keep] [--budget SECONDS]\n"
            "                  [--sync-seconds S] [--seed N]\n"
            "Prints one figure per line: `name value unit` (docs/performance.md).\n"
            "  --quick     a tenth of the workload (10,000 users, 100,000 events, ...)\n"
            "  --threads   thread counts (default 1,2; journal-full 1,8,64)\n"
            "  --dir       where journals and the fdatasync probe go (default: a new\n"
            "              directory under /tmp, removed afterwards)\n"
            "  --keep      keep the journal files\n"
            "  --budget    stop a phase after this many seconds (default 20, quick 5)\n");
}

static void parse_stores(const char *arg)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    O.stores = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = 0;
        if (strcmp(t, "all") == 0) {
            O.stores = (1u << ST_COUNT) - 1;
            continue;
        }
        if (strcmp(t, "journal") == 0) {
            O.stores |= 1u << ST_JOFF | 1u << ST_JNORMAL | 1u << ST_JFULL;
            continue;
        }
        for (int i = 0; i < ST_COUNT; i++)
            if (strcmp(t, store_names[i]) == 0) {
                O.stores |= 1u << i;
                found = 1;
            }
        if (!found)
            die("--store: unknown store '%s'", t);
    }
}

static void parse_threads(const char *arg)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    O.n_threads = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long n = strtol(t, NULL, 10);
        if (n < 1 || n > MAX_THREADS || O.n_threads == 16)
            die("--threads: bad value '%s' (1..%d, at most 16 values)", t, MAX_THREADS);
        O.threads[O.n_threads++] = (int)n;
    }
}

static void parse_args(int argc, char **argv)
{
    O.stores = (1u << ST_COUNT) - 1;
    O.seed = 20261124;
    O.sync_seconds = 1.0;
    O.budget = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0)
            O.quick = 1;
        else if (strcmp(a, "--keep") == 0)
            O.keep = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (v && strcmp(a, "--store") == 0) {
            parse_stores(v);
            i++;
        } else if (v && strcmp(a, "--threads") == 0) {
            parse_threads(v);
            i++;
        } else if (v && strcmp(a, "--dir") == 0) {
            snprintf(O.dir, sizeof O.dir, "%s", v);
            i++;
        } else if (v && strcmp(a, "--budget") == 0) {
            O.budget = strtod(v, NULL);
            i++;
        } else if (v && strcmp(a, "--sync-seconds") == 0) {
            O.sync_seconds = strtod(v, NULL);
            i++;
        } else if (v && strcmp(a, "--seed") == 0) {
            O.seed = strtoull(v, NULL, 10);
            i++;
        } else {
            usage(stderr);
            exit(2);
        }
    }
    uint32_t div = O.quick ? 10 : 1;
    O.users = 100000 / div;
    O.events = 1000000 / div;
    O.signins = 1000000 / div;
    O.dismisses = 100000 / div;
    if (O.budget < 0)
        O.budget = O.quick ? 5 : 20;
}

/* Remove what we created in our own temporary directory, then it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[8192];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void print_context(void)
{
    char date[64] = "?", cpu[512] = "?";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                snprintf(cpu, sizeof cpu, "%s", c ? c + 2 : line);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(f);
    }
    struct utsname un;
    uname(&un);
    printf("# risk-bench librisk %s, %s\n", risk_version_string(), date);
    printf("# machine: %s %s, %s, %ld cores online\n", un.sysname, un.release, cpu,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("# workload: %u users, %u events, %u sign-ins, %u dismiss-all%s; budget %.0f s per phase\n",
           O.users, O.events, O.signins, O.dismisses, O.quick ? " (--quick)" : "", O.budget);
    printf("# dir: %s; load average %.2f\n", O.dir, bench_loadavg());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (!O.dir[0]) {
        snprintf(O.dir, sizeof O.dir, "/tmp/risk-bench-XXXXXX");
        if (!mkdtemp(O.dir))
            die("mkdtemp: %s", strerror(errno));
        O.own_dir = 1;
    } else if (mkdir(O.dir, 0700) != 0 && errno != EEXIST) {
        die("--dir %s: %s", O.dir, strerror(errno));
    }
    print_context();
    int failed = 0;

    /* Limits first: the raw disk sync and a bare hash lookup. */
    uint32_t p50 = 0, p99 = 0;
    if (bench_fdatasync_limit(O.dir, O.sync_seconds, &O.fsync_rate, &p50, &p99) == 0) {
        bench_fig("limit.fdatasync.rate", O.fsync_rate, "ops/s");
        bench_fig("limit.fdatasync.p50", p50, "ns");
        bench_fig("limit.fdatasync.p99", p99, "ns");
    } else {
        fprintf(stderr, "risk-bench: fdatasync probe in %s: %s\n", O.dir, strerror(errno));
        failed = 1;
    }
    failed |= in_child(limits_adapter, 0, 0, "limits") != 0;

    static const int def_threads[] = { 1, 2 }, full_threads[] = { 1, 8, 64 };
    for (int kind = 0; kind < ST_COUNT; kind++) {
        if (!(O.stores & (1u << kind)))
            continue;
        const int *ts = O.n_threads ? O.threads : kind == ST_JFULL ? full_threads : def_threads;
        int nt = O.n_threads ? O.n_threads : kind == ST_JFULL ? 3 : 2;
        for (int i = 0; i < nt; i++) {
            compact_here = i == 0;
            char what[96];
            snprintf(what, sizeof what, "%s.t%d", store_names[kind], ts[i]);
            printf("# %s: load average %.2f\n", what, bench_loadavg());
            if (kind == ST_JFULL) {
                /* the disk's sync rate right before the run it bounds */
                uint32_t q50 = 0, q99 = 0;
                if (bench_fdatasync_limit(O.dir, O.sync_seconds, &O.fsync_rate, &q50, &q99) == 0)
                    bench_figf(O.fsync_rate, "ops/s", "%s.limit.fdatasync.rate", what);
            }
            int rc = in_child(run_config, kind, ts[i], what);
            failed |= rc != 0;
            if (kind != ST_MEMORY) {
                if (rc == 0 && compact_here) {
                    failed |= in_child(run_reopen, kind, ts[i], what) != 0;
                    failed |= in_child(run_reopen_cold, kind, ts[i], what) != 0;
                }
                if (!O.keep) {
                    char p[8192];
                    snprintf(p, sizeof p, "%s/%s.journal", O.dir, what);
                    unlink(p);
                }
            }
        }
    }
    if (O.own_dir && !O.keep)
        remove_dir(O.dir);
    return failed ? 1 : 0;
}
