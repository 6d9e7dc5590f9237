/* risk-bench helpers: clock, random numbers, latency samples, the
 * machine's limits (fdatasync rate, bare hash lookup), figure output.
 * Nothing here knows librisk: the limits must stand on their own. */
#ifndef RISK_BENCH_UTIL_H
#define RISK_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic nanoseconds. */
uint64_t bench_ns(void);

/* CPU time of the calling thread in ns: unlike wall time, it does not
 * count time the thread waited for a core on a loaded machine. */
uint64_t bench_thread_cpu_ns(void);

/* Minor page faults the calling thread has taken so far (first touches
 * of memory the kernel must zero and map), or 0 if unknown. */
uint64_t bench_thread_minflt(void);

/* The 1-minute load average, or -1. */
double bench_loadavg(void);

/* splitmix64: a seeded, fast generator; each thread owns its state. */
uint64_t bench_rand(uint64_t *state);
/* Uniform in [0, n). */
uint32_t bench_below(uint64_t *state, uint32_t n);

/* Latency samples in ns (one per op, or one per batch already divided). */
typedef struct bench_samples {
    uint32_t *v;
    size_t n, cap;
} bench_samples;

int bench_samples_init(bench_samples *s, size_t cap);
void bench_samples_free(bench_samples *s);
/* Record one sample; silently dropped when full (cap is sized up front). */
static inline void bench_samples_add(bench_samples *s, uint64_t ns)
{
    if (s->n < s->cap)
        s->v[s->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}
/* Merge src into dst (dst grows). Returns 0, or -1 out of memory. */
int bench_samples_merge(bench_samples *dst, const bench_samples *src);
/* Sort, then the q-quantile (0..1); 0 when empty. */
void bench_samples_sort(bench_samples *s);
uint32_t bench_samples_q(const bench_samples *s, double q);

/* One figure: `name value unit` on stdout, flushed (children print). */
void bench_fig(const char *name, double value, const char *unit);
/* Same with a printf-style name. */
void bench_figf(double value, const char *unit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Limits of the machine. The write+fdatasync loop runs ~seconds in dir;
 * returns 0 and fills rate (ops/s), p50/p99 (ns), or -1 (errno kept). */
int bench_fdatasync_limit(const char *dir, double seconds, double *rate, uint32_t *p50,
                          uint32_t *p99);
/* A bare open-addressing table of n 20-byte ids, `lookups` random
 * lookups; returns CPU ns per lookup (thread CPU time, so a loaded
 * machine does not inflate it), or a negative value out of memory. */
double bench_hash_limit(uint32_t n, uint32_t lookups);
/* CPU ns of one CLOCK_MONOTONIC read (why sign-ins are timed in batches). */
double bench_clock_cost(void);
/* ns per dependent load: a pointer chase through one random cycle over
 * the 64-byte lines of `bytes` of heap (4 KiB pages, as a store's records
 * are), so each load waits for the one before: the memory latency a
 * lookup of a random user pays once per dependent miss. -1: no memory. */
double bench_mem_latency(size_t bytes, uint32_t loads);

/* Peak RSS of the calling process in KiB (getrusage ru_maxrss). */
long bench_peak_rss_kib(void);

#endif
