/* risk-bench helpers; see bench_util.h. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t bench_below(uint64_t *state, uint32_t n)
{
    /* Lemire's multiply-shift: bias below 2^-32 per draw, fine here. */
    return (uint32_t)(((bench_rand(state) >> 32) * (uint64_t)n) >> 32);
}

int bench_samples_init(bench_samples *s, size_t cap)
{
    s->n = 0;
    s->cap = cap;
    s->v = cap ? malloc(cap * sizeof *s->v) : NULL;
    return cap && !s->v ? -1 : 0;
}

void bench_samples_free(bench_samples *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

int bench_samples_merge(bench_samples *dst, const bench_samples *src)
{
    if (dst->n + src->n > dst->cap) {
        size_t cap = dst->n + src->n;
        uint32_t *v = realloc(dst->v, (cap ? cap : 1) * sizeof *v);
        if (!v)
            return -1;
        dst->v = v;
        dst->cap = cap;
    }
    if (src->n)
        memcpy(dst->v + dst->n, src->v, src->n * sizeof *src->v);
    dst->n += src->n;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void bench_samples_sort(bench_samples *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, cmp_u32);
}

uint32_t bench_samples_q(const bench_samples *s, double q)
{
    if (!s->n)
        return 0;
    size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
    return s->v[i < s->n ? i : s->n - 1];
}

void bench_fig(const char *name, double value, const char *unit)
{
    if (value >= 100 || value == (double)(int64_t)value)
        printf("%s %.0f %s\n", name, value, unit);
    else
        printf("%s %.3g %s\n", name, value, unit);
    fflush(stdout);
}

void bench_figf(double value, const char *unit, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    bench_fig(name, value, unit);
}

int bench_fdatasync_limit(const char *dir, double seconds, double *rate, uint32_t *p50,
                          uint32_t *p99)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/fdatasync-probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (fd < 0)
        return -1;
    char buf[100];
    memset(buf, 'x', sizeof buf);
    bench_samples s;
    if (bench_samples_init(&s, 1u << 20)) {
        close(fd);
        unlink(path);
        return -1;
    }
    uint64_t t0 = bench_ns(), limit = (uint64_t)(seconds * 1e9), now = t0, syncs = 0;
    int rc = 0;
    /* the rate counts every sync; the latency samples stop at the buffer's
     * 2^20 (a fast disk fills it in seconds) */
    while (now - t0 < limit) {
        uint64_t a = bench_ns();
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
            rc = -1;
            break;
        }
        now = bench_ns();
        syncs++;
        bench_samples_add(&s, now - a);
    }
    int saved = errno;
    close(fd);
    unlink(path);
    if (rc == 0) {
        *rate = (double)syncs / ((double)(now - t0) / 1e9);
        bench_samples_sort(&s);
        *p50 = bench_samples_q(&s, 0.50);
        *p99 = bench_samples_q(&s, 0.99);
    }
    bench_samples_free(&s);
    errno = saved;
    return rc;
}

/* FNV-1a over the 20 bytes: what a naive table would use. */
static uint32_t hash20(const char *k)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 20; i++)
        h = (h ^ (uint8_t)k[i]) * 16777619u;
    return h;
}

double bench_hash_limit(uint32_t n, uint32_t lookups)
{
    size_t cap = 1;
    while (cap < (size_t)n * 2)
        cap <<= 1;
    char *keys = malloc((size_t)n * 20);
    struct slot { uint32_t hash, idx; } *tab = calloc(cap, sizeof *tab);
    /* The probe keys are copies laid out in lookup order, as a caller's
     * own string would be: the misses are the slot and the stored key. */
    char *probe = malloc((size_t)lookups * 20);
    if (!keys || !tab || !probe) {
        free(keys);
        free(tab);
        free(probe);
        return -1;
    }
    uint64_t rs = 42;
    char tmp[32];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(tmp, sizeof tmp, "usr-%06u-%09llx", i,
                 (unsigned long long)(bench_rand(&rs) & 0xfffffffffull));
        memcpy(keys + (size_t)i * 20, tmp, 20);
        uint32_t h = hash20(keys + (size_t)i * 20);
        size_t j = h & (cap - 1);
        while (tab[j].idx)
            j = (j + 1) & (cap - 1);
        tab[j].hash = h;
        tab[j].idx = i + 1; /* 0 = empty */
    }
    for (uint32_t i = 0; i < lookups; i++)
        memcpy(probe + (size_t)i * 20, keys + (size_t)bench_below(&rs, n) * 20, 20);
    volatile uint32_t found = 0;
    uint64_t t0 = bench_thread_cpu_ns();
    for (uint32_t i = 0; i < lookups; i++) {
        const char *k = probe + (size_t)i * 20;
        uint32_t h = hash20(k);
        size_t j = h & (cap - 1);
        while (tab[j].idx) {
            if (tab[j].hash == h && memcmp(keys + (size_t)(tab[j].idx - 1) * 20, k, 20) == 0) {
                found = found + 1;
                break;
            }
            j = (j + 1) & (cap - 1);
        }
    }
    uint64_t t1 = bench_thread_cpu_ns();
    double ns = found == lookups ? (double)(t1 - t0) / lookups : -2;
    free(keys);
    free(tab);
    free(probe);
    return ns;
}

double bench_mem_latency(size_t bytes, uint32_t loads)
{
    size_t n = bytes / 64;
    uint64_t *line = malloc(n * 64);
    size_t *perm = malloc(n * sizeof *perm);
    if (line == NULL || perm == NULL || n < 2) {
        free(line);
        free(perm);
        return -1;
    }
    /* a random order of the lines (Fisher-Yates), chained into one cycle */
    uint64_t rs = 7;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(bench_rand(&rs) % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        line[perm[i] * 8] = perm[(i + 1) % n] * 8;
    free(perm);
    volatile uint64_t sink;
    uint64_t at = 0, t0 = bench_thread_cpu_ns();
    for (uint32_t i = 0; i < loads; i++)
        at = line[at];
    uint64_t t1 = bench_thread_cpu_ns();
    sink = at;
    (void)sink;
    free(line);
    return (double)(t1 - t0) / loads;
}

double bench_clock_cost(void)
{
    enum { N = 1000000 };
    volatile uint64_t sink = 0;
    uint64_t t0 = bench_thread_cpu_ns();
    for (int i = 0; i < N; i++)
        sink = sink + bench_ns();
    return (double)(bench_thread_cpu_ns() - t0) / N;
}

uint64_t bench_thread_minflt(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? (uint64_t)ru.ru_minflt : 0;
}

long bench_peak_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}
