/* The library's allocator. Every allocation goes through these wrappers so
 * a host can install its own allocator (and tests can inject failures). */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *(*const volatile wipe_memset)(void *, int, size_t) = memset;

void risk_wipe(void *p, size_t n)
{
    wipe_memset(p, 0, n);
}

static void *default_malloc(size_t size, void *ud)
{
    (void)ud;
    return malloc(size);
}

static void *default_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    return realloc(ptr, size);
}

static void default_free(void *ptr, void *ud)
{
    (void)ud;
    free(ptr);
}

static const risk_allocator default_allocator = {RISK_ALLOCATOR_VERSION, default_malloc,
                                                 default_realloc, default_free, NULL};

/* Not synchronised on purpose: the header requires installing it before any
 * other use of the library. */
static risk_allocator current = {RISK_ALLOCATOR_VERSION, default_malloc, default_realloc,
                                 default_free, NULL};

int risk_set_allocator(const risk_allocator *alloc)
{
    if (alloc == NULL) {
        current = default_allocator;
        return RISK_OK;
    }
    if (alloc->version != RISK_ALLOCATOR_VERSION)
        return risk_err(RISK_EINVAL, "alloc: version %u, expected %u", (unsigned)alloc->version,
                        (unsigned)RISK_ALLOCATOR_VERSION);
    if (alloc->malloc_fn == NULL)
        return risk_err(RISK_EINVAL, "alloc: malloc_fn is NULL");
    if (alloc->realloc_fn == NULL)
        return risk_err(RISK_EINVAL, "alloc: realloc_fn is NULL");
    if (alloc->free_fn == NULL)
        return risk_err(RISK_EINVAL, "alloc: free_fn is NULL");
    current = *alloc;
    return RISK_OK;
}

/* size 0 is rounded up to 1: the allocator contract promises size > 0, and a
 * non-NULL result keeps "NULL means failure" unambiguous. */
void *risk_malloc(size_t size)
{
    return current.malloc_fn(size ? size : 1, current.userdata);
}

void *risk_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    size_t total = n * size;
    void *p = risk_malloc(total);
    if (p != NULL)
        memset(p, 0, total ? total : 1);
    return p;
}

void *risk_realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return risk_malloc(size);
    return current.realloc_fn(ptr, size ? size : 1, current.userdata);
}

void risk_free(void *ptr)
{
    if (ptr != NULL)
        current.free_fn(ptr, current.userdata);
}

char *risk_strndup(const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    size_t len = strnlen(s, n);
    char *p = risk_malloc(len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *risk_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    return risk_strndup(s, strlen(s));
}
