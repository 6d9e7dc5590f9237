/* lookup-shapes: what a one-call sign-in's user lookup costs on this
 * machine in two memory layouts, measured side by side (issue 9; see
 * docs/performance.md, "One miss per sign-in").
 *
 * - two_miss: the memory store before session 15. A 16-byte slot
 *   (hash, pointer) in a table of 2^18 slots (4 MiB), then the user's
 *   record (224 bytes, the size of a stored subject) in one array of
 *   100,000: two dependent misses per lookup.
 * - one_miss: a 64-byte slot that holds the hash, the id inline (up to
 *   23 bytes) and the fields a decision reads (next change time, table
 *   key, level): one miss. 2^18 slots (16 MiB, load 0.38), and `dense`,
 *   2^17 (8 MiB, load 0.76), the shape the memory store's users map took
 *   in session 15 (lib/memstore.h, whose slots hold ids up to 36 bytes).
 *
 * Each lookup is preceded by a CLOCK_REALTIME read, as a sign-in reads
 * the time (its lfence keeps one lookup from overlapping the next), and
 * takes the id from a caller's copy. The rounds alternate between the
 * shapes; each figure is the median of the rounds. Not librisk code: a
 * model of the two layouts, nothing else. Prints `name value unit`. */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USERS 100000u
#define ID_LEN 20 /* as risk-bench's ids */
#define ROUNDS 5

typedef struct record { /* a stored user: id first, then its fields */
    char id[32];
    int64_t next_change_at;
    uint32_t key, level;
    char rest[224 - 48];
} record;

typedef struct slot16 {
    uint64_t hash;
    const record *r; /* NULL: empty */
} slot16;

typedef struct slot64 {
    uint64_t hash; /* 0: empty */
    char id[24];
    int64_t next_change_at;
    uint32_t key, level;
    const record *r; /* the whole record, for writers (not read here) */
    uint64_t spare;
} slot64;

_Static_assert(sizeof(record) == 224, "record size");
_Static_assert(sizeof(slot64) == 64, "slot size");

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ h >> 29) | 1; /* never 0: 0 marks an empty slot64 */
}

static int64_t wall_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void *must(void *p)
{
    if (p == NULL) {
        fprintf(stderr, "lookup-shapes: out of memory\n");
        exit(1);
    }
    return p;
}

/* ns per lookup through slot then record; *sink keeps the work alive.
 * The two loops are written out apiece, not shared through a callback:
 * an indirect call per lookup would be measured with them. */
static double run_two_miss(const slot16 *t, size_t mask, char (*q)[ID_LEN + 1], size_t n,
                           uint64_t *sink)
{
    uint64_t s = 0, t0 = bench_ns();
    for (size_t i = 0; i < n; i++) {
        int64_t now = wall_ns();
        uint64_t h = hash_id(q[i]);
        for (size_t j = h & mask;; j = (j + 1) & mask) {
            const record *r = t[j].r;
            if (r == NULL)
                break;
            if (t[j].hash == h && strcmp(r->id, q[i]) == 0) {
                s += r->level + (r->next_change_at <= now) + r->key;
                break;
            }
        }
    }
    *sink += s;
    return (double)(bench_ns() - t0) / (double)n;
}

/* ns per lookup in the slot alone */
static double run_one_miss(const slot64 *t, size_t mask, char (*q)[ID_LEN + 1], size_t n,
                           uint64_t *sink)
{
    uint64_t s = 0, t0 = bench_ns();
    for (size_t i = 0; i < n; i++) {
        int64_t now = wall_ns();
        uint64_t h = hash_id(q[i]);
        for (size_t j = h & mask;; j = (j + 1) & mask) {
            const slot64 *sl = &t[j];
            if (sl->hash == 0)
                break;
            if (sl->hash == h && strcmp(sl->id, q[i]) == 0) {
                s += sl->level + (sl->next_change_at <= now) + sl->key;
                break;
            }
        }
    }
    *sink += s;
    return (double)(bench_ns() - t0) / (double)n;
}

static slot64 *build64(char (*ids)[ID_LEN + 1], size_t cap)
{
    slot64 *t = must(calloc(cap, sizeof *t));
    for (uint32_t i = 0; i < USERS; i++) {
        uint64_t h = hash_id(ids[i]);
        size_t j = h & (cap - 1);
        while (t[j].hash)
            j = (j + 1) & (cap - 1);
        t[j].hash = h;
        memcpy(t[j].id, ids[i], ID_LEN + 1);
        t[j].next_change_at = -1;
        t[j].level = i & 3;
    }
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 && strcmp(argv[1], "--quick") == 0 ? 200000 : 2000000;
    uint64_t rs = 42;
    char(*ids)[ID_LEN + 1] = must(malloc(USERS * sizeof *ids));
    for (uint32_t i = 0; i < USERS; i++) {
        char tmp[48];
        snprintf(tmp, sizeof tmp, "usr-%06u-%09llx", i,
                 (unsigned long long)(bench_rand(&rs) >> 28) & 0xfffffffffull);
        memcpy(ids[i], tmp, ID_LEN);
        ids[i][ID_LEN] = 0;
    }
    /* two_miss: slots, and the records in one array (as the store's
     * subjects, allocated one after the other as users are added) */
    const size_t cap16 = (size_t)1 << 18, cap64 = (size_t)1 << 18, capd = (size_t)1 << 17;
    record *recs = must(calloc(USERS, sizeof *recs));
    slot16 *t16 = must(calloc(cap16, sizeof *t16));
    for (uint32_t i = 0; i < USERS; i++) {
        memcpy(recs[i].id, ids[i], ID_LEN + 1);
        recs[i].next_change_at = -1;
        recs[i].level = i & 3;
        uint64_t h = hash_id(ids[i]);
        size_t j = h & (cap16 - 1);
        while (t16[j].r)
            j = (j + 1) & (cap16 - 1);
        t16[j].hash = h;
        t16[j].r = &recs[i];
    }
    slot64 *t64 = build64(ids, cap64), *tdn = build64(ids, capd);
    /* the callers' ids: copies, in a random order */
    char(*q)[ID_LEN + 1] = must(malloc(n * sizeof *q));
    for (size_t i = 0; i < n; i++)
        memcpy(q[i], ids[bench_below(&rs, USERS)], ID_LEN + 1);

    double a[ROUNDS], b[ROUNDS], d[ROUNDS];
    uint64_t sink = 0;
    for (int r = 0; r < ROUNDS; r++) {
        a[r] = run_two_miss(t16, cap16 - 1, q, n, &sink);
        b[r] = run_one_miss(t64, cap64 - 1, q, n, &sink);
        d[r] = run_one_miss(tdn, capd - 1, q, n, &sink);
    }
    qsort(a, ROUNDS, sizeof *a, cmp_double);
    qsort(b, ROUNDS, sizeof *b, cmp_double);
    qsort(d, ROUNDS, sizeof *d, cmp_double);
    bench_fig("lookup.two_miss.ns", a[ROUNDS / 2], "ns");
    bench_fig("lookup.two_miss.min", a[0], "ns");
    bench_fig("lookup.two_miss.max", a[ROUNDS - 1], "ns");
    bench_fig("lookup.two_miss.bytes", (double)(cap16 * sizeof *t16 + USERS * sizeof *recs),
              "bytes");
    bench_fig("lookup.one_miss.ns", b[ROUNDS / 2], "ns");
    bench_fig("lookup.one_miss.min", b[0], "ns");
    bench_fig("lookup.one_miss.max", b[ROUNDS - 1], "ns");
    bench_fig("lookup.one_miss.bytes", (double)(cap64 * sizeof *t64), "bytes");
    bench_fig("lookup.one_miss_dense.ns", d[ROUNDS / 2], "ns");
    bench_fig("lookup.one_miss_dense.min", d[0], "ns");
    bench_fig("lookup.one_miss_dense.max", d[ROUNDS - 1], "ns");
    bench_fig("lookup.one_miss_dense.bytes", (double)(capd * sizeof *tdn), "bytes");
    bench_fig("lookup.clock_read.ns", bench_clock_cost(), "ns");
    bench_fig("lookup.checksum", (double)(sink & 1), "");
    free(ids);
    free(recs);
    free(t16);
    free(t64);
    free(tdn);
    free(q);
    return 0;
}
