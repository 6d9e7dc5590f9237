/* Crash test of the journal store (R-CC-3): kill -9 at random moments.
 *
 * Register in tests/meson.build (not a Criterion program; exit 0 = pass):
 *   exe = executable('journal_crash', 'journal_crash.c',
 *                    dependencies: [librisk_internal_dep, threads])
 *   test('journal_crash', exe, args: ['40'], suite: ['crash'], timeout: 600)
 * and keep the 'crash' suite out of the valgrind setup (exclude_suites):
 * valgrind's wrapper cannot follow a child killed with SIGKILL.
 *
 * Usage: journal_crash [rounds] [seed]
 *
 * Each round forks a child that opens the journal (durability cycling
 * full / normal / off) with an engine over it and runs random operations:
 * ingest a new event, resolve one of its events, and now and then compact.
 * After each acknowledged operation it writes a fixed-size record on a
 * pipe. The parent kills it at a random moment, reopens the journal and
 * checks (docs/journal-format.md, "Durability"):
 *   - full: every acknowledged ingest is present, every acknowledged
 *     resolve is closed (nothing acknowledged is lost);
 *   - normal and off: commits wait in a user-space buffer for up to
 *     sync_interval_ms, so kill -9 may lose the newest ones: what survives
 *     of the round's acknowledged operations is a PREFIX of them (never a
 *     later one without an earlier one); the lost ones are forgotten;
 *   - every mode, nothing is half-applied: per user, the events equal the
 *     events named by ingest history items, the closed events equal those
 *     named by resolve items, and the user's active_events count matches.
 * Unacknowledged operations may be present or absent, but only whole. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_USERS 6
#define MAX_ACK 200000

typedef struct ack {
    char kind; /* 'I' ingest, 'R' resolve */
    char id[47];
} ack;

static char path[256];

static int fail(const char *what, unsigned seed, int round)
{
    fprintf(stderr, "journal_crash: FAIL (seed %u, round %d): %s [%s]\n", seed, round, what,
            risk_error_last());
    return 1;
}

static int open_engine(risk_engine **eng, uint32_t durability)
{
    risk_store s;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = durability;
    o.sync_interval_ms = 3;
    int rc = risk_journal_open(&s, path, &o, NULL);
    if (rc != RISK_OK)
        return rc;
    rc = risk_engine_new(eng, &s, NULL);
    if (rc != RISK_OK)
        s.close(s.ctx);
    return rc;
}

static void child(int wfd, int round, unsigned seed)
{
    risk_engine *eng;
    if (open_engine(&eng, (uint32_t)(round % 3)) != RISK_OK)
        _exit(3);
    char (*mine)[48] = calloc(4096, sizeof *mine);
    int n_mine = 0;
    for (unsigned i = 0;; i++) {
        ack a = {0};
        int r = (int)(rand_r(&seed) % 100);
        int rc;
        if (r < 25 && n_mine > 0) {
            int j = (int)(rand_r(&seed) % (unsigned)n_mine);
            a.kind = 'R';
            snprintf(a.id, sizeof a.id, "%s", mine[j]);
            rc = risk_engine_resolve(eng, "crash", a.id, NULL);
            if (rc == RISK_ETRANSITION)
                continue; /* already resolved */
            memcpy(mine[j], mine[--n_mine], sizeof mine[j]);
        } else if (r == 99) {
            rc = risk_engine_compact(eng);
            if (rc != RISK_OK)
                _exit(4);
            continue;
        } else {
            char uid[16];
            snprintf(uid, sizeof uid, "u%u", rand_r(&seed) % N_USERS);
            a.kind = 'I';
            snprintf(a.id, sizeof a.id, "r%d-e%u", round, i);
            risk_event *e;
            if (risk_event_new(&e, a.id, uid, "leakedCredentials", 1 + rand_r(&seed) % 3,
                               risk_engine_now(eng)) != RISK_OK)
                _exit(5);
            rc = risk_engine_ingest(eng, "crash", e, 0);
            risk_event_free(e);
            if (rc == RISK_OK && n_mine < 4096)
                snprintf(mine[n_mine++], sizeof *mine, "%s", a.id);
        }
        if (rc != RISK_OK)
            _exit(6);
        if (write(wfd, &a, sizeof a) != (ssize_t)sizeof a)
            _exit(7);
    }
}

/* ---- verification ---- */

typedef struct names {
    char (*v)[48];
    size_t n, cap;
} names;

static void names_add(names *s, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
    }
    snprintf(s->v[s->n++], 48, "%s", id);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int same(names *a, names *b)
{
    if (a->n > 1) /* qsort(NULL, 0, …) is undefined behaviour */
        qsort(a->v, a->n, sizeof *a->v, cmp_name);
    if (b->n > 1)
        qsort(b->v, b->n, sizeof *b->v, cmp_name);
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 0;
    return 1;
}

typedef struct uview {
    names events, closed, h_ingest, h_resolve;
    uint32_t active;
} uview;

static int visit_event(const risk_event *e, void *arg)
{
    uview *u = arg;
    names_add(&u->events, risk_event_id(e));
    if (risk_event_state_get(e) == RISK_EVENT_CLOSED)
        names_add(&u->closed, risk_event_id(e));
    else
        u->active++;
    return 0;
}

static int visit_hist(const risk_history *h, void *arg)
{
    uview *u = arg;
    if (risk_history_event_id(h) == NULL)
        return 0;
    if (risk_history_action_get(h) == RISK_HISTORY_INGEST)
        names_add(&u->h_ingest, risk_history_event_id(h));
    else if (risk_history_action_get(h) == RISK_HISTORY_RESOLVE)
        names_add(&u->h_resolve, risk_history_event_id(h));
    return 0;
}

/* 1 if the acknowledged operation is in the reopened store. */
static int present(risk_engine *eng, const ack *a)
{
    risk_event *e;
    if (risk_engine_event(&e, eng, a->id) != RISK_OK)
        return 0;
    int ok = a->kind != 'R' || risk_event_state_get(e) == RISK_EVENT_CLOSED;
    risk_event_free(e);
    return ok;
}

/* acks[0, start) are from earlier rounds (checked then); those of this
 * round must all survive in full mode, a prefix of them otherwise. On
 * success *n_acks drops the lost ones. */
static int verify(const ack *acks, size_t start, size_t *n_acks, int full, unsigned seed,
                  int round)
{
    risk_engine *eng;
    if (open_engine(&eng, RISK_DURABILITY_OFF) != RISK_OK)
        return fail("reopen", seed, round);
    int bad = 0;
    size_t keep = *n_acks;
    for (size_t i = 0; i < *n_acks && !bad; i++) {
        int here = present(eng, &acks[i]);
        if (here && i >= keep) {
            bad = fail("a later acknowledged operation survived an earlier lost one "
                       "(not a prefix)", seed, round);
            fprintf(stderr, "  %c %s after %c %s\n", acks[i].kind, acks[i].id, acks[keep].kind,
                    acks[keep].id);
        } else if (!here && (full || i < start)) {
            bad = fail(acks[i].kind == 'R' ? "an acknowledged resolve is missing"
                                           : "an acknowledged ingest is missing", seed, round);
            fprintf(stderr, "  event %s\n", acks[i].id);
        } else if (!here && i < keep) {
            keep = i; /* normal/off: the buffered tail was lost */
        }
    }
    if (!bad)
        *n_acks = keep;
    for (int u = 0; u < N_USERS && !bad; u++) {
        char uid[16];
        snprintf(uid, sizeof uid, "u%d", u);
        uview v = {0};
        if (risk_engine_events(eng, uid, 0, visit_event, &v) != RISK_OK ||
            risk_engine_history(eng, uid, visit_hist, &v) != RISK_OK)
            bad = fail("reading a user", seed, round);
        else if (!same(&v.events, &v.h_ingest))
            bad = fail("events and ingest history differ (half-applied)", seed, round);
        else if (!same(&v.closed, &v.h_resolve))
            bad = fail("closed events and resolve history differ (half-applied)", seed, round);
        risk_user *usr;
        if (!bad && v.events.n > 0) {
            if (risk_engine_user(&usr, eng, uid) != RISK_OK)
                bad = fail("a user with events is missing", seed, round);
            else if (risk_user_active_events(usr) != v.active)
                bad = fail("user's active_events disagrees with its events", seed, round);
            if (!bad)
                risk_user_free(usr);
        }
        free(v.events.v), free(v.closed.v), free(v.h_ingest.v), free(v.h_resolve.v);
    }
    risk_engine_free(eng);
    return bad;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 40;
    unsigned seed = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : (unsigned)time(NULL);
    char dir[] = "/tmp/risk-crash-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    snprintf(path, sizeof path, "%s/j", dir);
    ack *acks = malloc(MAX_ACK * sizeof *acks);
    size_t n_acks = 0;
    int bad = 0;
    printf("journal_crash: %d rounds, seed %u\n", rounds, seed);
    for (int round = 0; round < rounds && !bad; round++) {
        int fds[2];
        if (pipe(fds) != 0)
            return 2;
        unsigned cseed = seed + (unsigned)round * 7919u;
        size_t round_start = n_acks;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            child(fds[1], round, cseed);
        }
        close(fds[1]);
        uint64_t deadline = now_ms() + 5 + rand_r(&seed) % 120;
        for (;;) { /* drain while the child runs, so it never blocks */
            uint64_t t = now_ms();
            struct pollfd p = {fds[0], POLLIN, 0};
            if (t >= deadline || poll(&p, 1, (int)(deadline - t)) < 0)
                break;
            if (p.revents & POLLIN) {
                ssize_t k = read(fds[0], acks + n_acks, sizeof *acks);
                if (k == (ssize_t)sizeof *acks && n_acks + 1 < MAX_ACK)
                    n_acks++;
                else if (k <= 0)
                    break;
            }
        }
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status)) {
            fprintf(stderr, "journal_crash: child exited early with %d\n", WEXITSTATUS(status));
            return 1;
        }
        ssize_t k;
        while (n_acks + 1 < MAX_ACK &&
               (k = read(fds[0], acks + n_acks, sizeof *acks)) == (ssize_t)sizeof *acks)
            n_acks++;
        close(fds[0]);
        bad = verify(acks, round_start, &n_acks, round % 3 == RISK_DURABILITY_FULL, seed, round);
    }
    printf("journal_crash: %s, %zu acknowledged operations checked\n", bad ? "FAIL" : "ok",
           n_acks);
    char p2[300];
    snprintf(p2, sizeof p2, "%s.tmp", path);
    unlink(p2);
    unlink(path);
    rmdir(dir);
    free(acks);
    return bad;
}
