/* The host allocator (STYLE "every allocation goes through it"; R-IV-3
 * relies on it for failure injection). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>

#include "alloc_fail.h"
#include "internal.h"

static void restore(void)
{
    alloc_fail_reset();
}

TestSuite(alloc, .fini = restore);

struct counts {
    int mallocs, reallocs, frees;
    long live;
};

static void *c_malloc(size_t n, void *ud)
{
    struct counts *c = ud;
    c->mallocs++;
    c->live++;
    return malloc(n);
}

static void *c_realloc(void *p, size_t n, void *ud)
{
    struct counts *c = ud;
    c->reallocs++;
    return realloc(p, n);
}

static void c_free(void *p, void *ud)
{
    struct counts *c = ud;
    c->frees++;
    c->live--;
    free(p);
}

/* R-IV-3 (prerequisite): every allocation of the records goes through the
 * host allocator, with its userdata, and every block comes back to it. */
Test(alloc, custom_allocator_receives_everything)
{
    struct counts c = {0};
    risk_allocator a = {RISK_ALLOCATOR_VERSION, c_malloc, c_realloc, c_free, &c};
    cr_assert(eq(int, risk_set_allocator(&a), RISK_OK));

    risk_user *u = NULL;
    risk_event *e = NULL;
    risk_policy *p = NULL;
    risk_history *h = NULL;
    cr_assert(eq(int, risk_user_new(&u, "alice"), RISK_OK));
    cr_assert(eq(int, risk_event_new(&e, "ev1", "alice", "leakedCredentials", RISK_LEVEL_HIGH,
                                     1000), RISK_OK));
    cr_assert(eq(int, risk_event_set_note(e, "note"), RISK_OK));
    cr_assert(eq(int, risk_policy_new(&p, "pol", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK),
                 RISK_OK));
    for (int i = 0; i < 5; i++) {
        char id[8] = {'u', (char)('a' + i), 0};
        cr_assert(eq(int, risk_policy_include_add(p, id), RISK_OK));
    }
    cr_assert(eq(int, risk_history_new(&h, 1, 5, "admin", RISK_HISTORY_INGEST, "alice",
                                       "ev1", NULL), RISK_OK));
    cr_assert(gt(int, c.mallocs, 8));
    cr_assert(gt(int, c.reallocs, 0)); /* the include list grows by realloc */
    cr_assert(gt(long, c.live, 0));
    risk_user_free(u);
    risk_event_free(e);
    risk_policy_free(p);
    risk_history_free(h);
    cr_assert(eq(long, c.live, 0));
    cr_assert(eq(int, c.frees, c.mallocs));
}

/* R-IV-3 (prerequisite): the internal wrappers use the installed allocator. */
Test(alloc, internal_wrappers)
{
    struct counts c = {0};
    risk_allocator a = {RISK_ALLOCATOR_VERSION, c_malloc, c_realloc, c_free, &c};
    cr_assert(eq(int, risk_set_allocator(&a), RISK_OK));
    char *s = risk_strdup("hello");
    cr_assert(eq(str, s, "hello"));
    char *t = risk_strndup("hello", 3);
    cr_assert(eq(str, t, "hel"));
    cr_assert_null(risk_strdup(NULL));
    unsigned char *z = risk_calloc(4, 8);
    cr_assert_not_null(z);
    for (int i = 0; i < 32; i++)
        cr_assert(eq(u8, z[i], 0));
    z = risk_realloc(z, 64);
    cr_assert_not_null(z);
    void *r = risk_realloc(NULL, 10); /* NULL behaves as malloc */
    cr_assert_not_null(r);
    risk_free(NULL); /* no call */
    cr_assert(eq(int, c.mallocs, 4));
    cr_assert(eq(int, c.reallocs, 1));
    risk_free(s), risk_free(t), risk_free(z), risk_free(r);
    cr_assert(eq(int, c.frees, 4));
    cr_assert(eq(long, c.live, 0));
}

/* R-IV-3: risk_calloc refuses a size that overflows, without calling the allocator. */
Test(alloc, calloc_overflow)
{
    struct counts c = {0};
    risk_allocator a = {RISK_ALLOCATOR_VERSION, c_malloc, c_realloc, c_free, &c};
    cr_assert(eq(int, risk_set_allocator(&a), RISK_OK));
    cr_assert_null(risk_calloc(SIZE_MAX / 2, 3));
    cr_assert_null(risk_calloc(SIZE_MAX, SIZE_MAX));
    cr_assert(eq(int, c.mallocs, 0));
}

/* R-IV-1: a bad allocator struct is refused and the previous one stays. */
Test(alloc, bad_allocator_rejected)
{
    struct counts c = {0};
    risk_allocator good = {RISK_ALLOCATOR_VERSION, c_malloc, c_realloc, c_free, &c};
    cr_assert(eq(int, risk_set_allocator(&good), RISK_OK));

    risk_allocator v0 = good, v2 = good, nm = good, nr = good, nf = good;
    v0.version = 0;
    v2.version = RISK_ALLOCATOR_VERSION + 1;
    nm.malloc_fn = NULL;
    nr.realloc_fn = NULL;
    nf.free_fn = NULL;
    const risk_allocator *bad[] = {&v0, &v2, &nm, &nr, &nf};
    const char *why[] = {"version", "version", "malloc_fn", "realloc_fn", "free_fn"};
    for (size_t i = 0; i < 5; i++) {
        cr_assert(eq(int, risk_set_allocator(bad[i]), RISK_EINVAL), "case %zu", i);
        cr_assert(not(eq(ptr, strstr(risk_error_last(), why[i]), NULL)), "case %zu: %s", i,
                  risk_error_last());
    }
    char *s = risk_strdup("still counted");
    cr_assert(eq(int, c.mallocs, 1));
    risk_free(s);
    cr_assert(eq(long, c.live, 0));
}

/* R-IV-3 (prerequisite): NULL restores the C library allocator. */
Test(alloc, null_restores_default)
{
    struct counts c = {0};
    risk_allocator a = RISK_ALLOCATOR_INIT;
    a.malloc_fn = c_malloc, a.realloc_fn = c_realloc, a.free_fn = c_free, a.userdata = &c;
    cr_assert(eq(int, risk_set_allocator(&a), RISK_OK));
    cr_assert(eq(int, risk_set_allocator(NULL), RISK_OK));
    char *s = risk_strdup("x");
    cr_assert_not_null(s);
    risk_free(s);
    cr_assert(eq(int, c.mallocs + c.frees, 0));
}

/* R-IV-3: the failure-injection helper fails exactly the nth allocation
 * and tracks live blocks (the other tests rely on it). */
Test(alloc, alloc_fail_helper)
{
    alloc_fail_install(2);
    void *a = risk_malloc(1);
    void *b = risk_malloc(1);
    void *c = risk_malloc(1);
    cr_assert_not_null(a);
    cr_assert_null(b);
    cr_assert_not_null(c);
    cr_assert(alloc_fail_failed());
    cr_assert(eq(long, alloc_fail_count(), 3));
    cr_assert(eq(long, alloc_fail_live(), 2));
    risk_free(a), risk_free(c);
    cr_assert(eq(long, alloc_fail_live(), 0));

    /* sticky mode: the nth and every later allocation fail */
    alloc_fail_install_from(2);
    a = risk_malloc(1);
    b = risk_malloc(1);
    c = risk_malloc(1);
    cr_assert_not_null(a);
    cr_assert_null(b);
    cr_assert_null(c);
    risk_free(a);
    alloc_fail_install(0);
    cr_assert_not_null(b = risk_malloc(1)); /* a new install ends sticky mode */
    risk_free(b);
    cr_assert(eq(long, alloc_fail_live(), 0));

    /* the sweep reaches success after exactly as many failures as allocations */
    risk_user *u = NULL;
    int rc, failures = 0;
    risk_event *ev = NULL;
    ALLOC_FAIL_SWEEP(rc, (void)0,
                     risk_event_new(&ev, "ev", "bob", "leakedCredentials", RISK_LEVEL_LOW, 1),
                     failures++);
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(eq(int, failures, 4)); /* struct, id, user_id, type */
    risk_event_free(ev);
    failures = 0;
    ALLOC_FAIL_SWEEP(rc, (void)0, risk_user_new(&u, "bob"), failures++);
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(eq(int, failures, 1)); /* the user and its id are one block */
    risk_user_free(u);
    cr_assert(eq(long, alloc_fail_live(), 0));
}
