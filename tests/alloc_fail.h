/* alloc_fail.h — header-only allocation-failure injection for Criterion tests
 * (R-IV-3: out of memory → RISK_ENOMEM, nothing changes, nothing leaks).
 *
 * A counting allocator is installed through risk_set_allocator(); it can make
 * the Nth allocation (malloc or realloc call) fail, and it counts live blocks
 * so a test can prove that a failed call leaked nothing.
 *
 *   alloc_fail_install(n)  install the counting allocator; reset the call
 *                          counter; the nth allocation from now fails
 *                          (n == 0: never fail). Live blocks keep counting.
 *   alloc_fail_install_from(n)  like install(n), but the nth allocation and
 *                          every later one fail (until the next install).
 *   alloc_fail_reset()     restore the C library allocator and zero the
 *                          counters. Blocks from the counting allocator may
 *                          still be freed afterwards (both are libc malloc).
 *   alloc_fail_count()     allocations attempted since the last install.
 *   alloc_fail_live()      blocks allocated through the counting allocator
 *                          and not yet freed (signed: freeing a block made
 *                          before the install makes it go below zero).
 *   alloc_fail_failed()    1 if the armed failure has happened.
 *
 *   ALLOC_FAIL_SWEEP(rc, SETUP, OP, ON_ENOMEM)
 *     For k = 1, 2, …: run SETUP (a statement; allocations never fail),
 *     then evaluate OP (an int expression, stored in rc) with the kth
 *     allocation failing. If rc is RISK_ENOMEM, the sweep asserts that the
 *     failure really was injected and that the live block count is back to
 *     its value before OP (no leak), then runs ON_ENOMEM (a statement:
 *     assert the handle is unchanged, then free what SETUP made) and goes
 *     on with k + 1. It stops at the first attempt that does not return
 *     RISK_ENOMEM: rc holds that result and what SETUP made is still alive
 *     (check success, then free). The counting allocator stays installed
 *     (never failing) until alloc_fail_reset(). Use a TestSuite .fini that
 *     calls alloc_fail_reset(). Statements containing a top-level comma
 *     (e.g. `int a, b;`) must be wrapped in parentheses or split.
 *
 * Example:
 *   risk_event *e = NULL; int rc;
 *   ALLOC_FAIL_SWEEP(rc, make_event(&e), risk_event_set_note(e, "hello"),
 *                    { cr_assert_null(risk_event_note(e)); risk_event_free(e); });
 *   cr_assert_eq(rc, RISK_OK); risk_event_free(e); alloc_fail_reset();
 */
#ifndef LIBRISK_TESTS_ALLOC_FAIL_H
#define LIBRISK_TESTS_ALLOC_FAIL_H

#include <criterion/criterion.h>
#include <librisk.h>
#include <stdatomic.h>
#include <stdlib.h>

static _Atomic long alloc_fail_at_;
static _Atomic long alloc_fail_calls_;
static _Atomic long alloc_fail_live_;
static _Atomic int alloc_fail_hit_;
static _Atomic int alloc_fail_sticky_;

/* Returns 1 if this call is the one that must fail. */
static inline int alloc_fail_tick_(void)
{
    long n = atomic_fetch_add(&alloc_fail_calls_, 1) + 1;
    long at = atomic_load(&alloc_fail_at_);
    if (at != 0 && (n == at || (atomic_load(&alloc_fail_sticky_) && n > at))) {
        atomic_store(&alloc_fail_hit_, 1);
        return 1;
    }
    return 0;
}

static inline void *alloc_fail_malloc_(size_t size, void *ud)
{
    (void)ud;
    if (alloc_fail_tick_())
        return NULL;
    void *p = malloc(size);
    if (p != NULL)
        atomic_fetch_add(&alloc_fail_live_, 1);
    return p;
}

static inline void *alloc_fail_realloc_(void *ptr, size_t size, void *ud)
{
    (void)ud;
    if (alloc_fail_tick_())
        return NULL;
    return realloc(ptr, size); /* the block count does not change */
}

static inline void alloc_fail_free_(void *ptr, void *ud)
{
    (void)ud;
    atomic_fetch_sub(&alloc_fail_live_, 1);
    free(ptr);
}

static inline void alloc_fail_install(long n)
{
    atomic_store(&alloc_fail_sticky_, 0);
    static const risk_allocator a = {RISK_ALLOCATOR_VERSION, alloc_fail_malloc_,
                                     alloc_fail_realloc_, alloc_fail_free_, NULL};
    atomic_store(&alloc_fail_calls_, 0);
    atomic_store(&alloc_fail_hit_, 0);
    atomic_store(&alloc_fail_at_, n);
    cr_assert(risk_set_allocator(&a) == RISK_OK, "alloc_fail: risk_set_allocator failed");
}

static inline void alloc_fail_install_from(long n)
{
    alloc_fail_install(n);
    atomic_store(&alloc_fail_sticky_, 1);
}

static inline void alloc_fail_reset(void)
{
    atomic_store(&alloc_fail_sticky_, 0);
    risk_set_allocator(NULL);
    atomic_store(&alloc_fail_at_, 0);
    atomic_store(&alloc_fail_calls_, 0);
    atomic_store(&alloc_fail_live_, 0);
    atomic_store(&alloc_fail_hit_, 0);
}

static inline long alloc_fail_count(void) { return atomic_load(&alloc_fail_calls_); }
static inline long alloc_fail_live(void) { return atomic_load(&alloc_fail_live_); }
static inline int alloc_fail_failed(void) { return atomic_load(&alloc_fail_hit_); }

/* Upper bound on k: an operation needing more allocations is a test bug. */
#define ALLOC_FAIL_MAX_K 100000L

#define ALLOC_FAIL_SWEEP(rc, SETUP, OP, ON_ENOMEM)                                          \
    do {                                                                                    \
        for (long af_k_ = 1;; af_k_++) {                                                    \
            cr_assert(af_k_ < ALLOC_FAIL_MAX_K, "alloc_fail: no success after %ld tries",   \
                      af_k_);                                                               \
            alloc_fail_install(0);                                                          \
            SETUP;                                                                          \
            long af_live_ = alloc_fail_live();                                              \
            alloc_fail_install(af_k_);                                                      \
            (rc) = (OP);                                                                    \
            int af_hit_ = alloc_fail_failed();                                              \
            alloc_fail_install(0);                                                          \
            if ((rc) != RISK_ENOMEM)                                                        \
                break;                                                                      \
            cr_assert(af_hit_, "alloc_fail: RISK_ENOMEM at k=%ld without a failed "         \
                               "allocation", af_k_);                                        \
            cr_assert(alloc_fail_live() == af_live_,                                        \
                      "alloc_fail: k=%ld changed live blocks by %ld (leak or double free)", af_k_,                       \
                      alloc_fail_live() - af_live_);                                        \
            ON_ENOMEM;                                                                      \
        }                                                                                   \
    } while (0)

#endif /* LIBRISK_TESTS_ALLOC_FAIL_H */
