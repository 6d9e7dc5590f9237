/* Error codes, names and the thread-local last error (R-IV-1: the detailed
 * message of a failure is readable through the library's last-error call). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const struct {
    int code;
    const char *name;
} codes[] = {
    {RISK_OK, "RISK_OK"},
    {RISK_EINVAL, "RISK_EINVAL"},
    {RISK_ENOMEM, "RISK_ENOMEM"},
    {RISK_ENOTFOUND, "RISK_ENOTFOUND"},
    {RISK_EEXISTS, "RISK_EEXISTS"},
    {RISK_ETRANSITION, "RISK_ETRANSITION"},
    {RISK_ENOMFA, "RISK_ENOMFA"},
    {RISK_EDELETED, "RISK_EDELETED"},
    {RISK_EBUSY, "RISK_EBUSY"},
    {RISK_ECORRUPT, "RISK_ECORRUPT"},
    {RISK_EIO, "RISK_EIO"},
    {RISK_EUNSUPPORTED, "RISK_EUNSUPPORTED"},
    {RISK_ECONFLICT, "RISK_ECONFLICT"},
    {RISK_ERANGE, "RISK_ERANGE"},
    {RISK_EREADONLY, "RISK_EREADONLY"},
    {RISK_ESTORE, "RISK_ESTORE"},
    {RISK_EVERIFY, "RISK_EVERIFY"},
};
#define N_CODES (sizeof codes / sizeof *codes)

/* R-IV-1: every code has its constant's name and a distinct description. */
Test(error, names_and_descriptions_of_every_code)
{
    for (size_t i = 0; i < N_CODES; i++) {
        cr_assert(eq(str, (char *)risk_error_name(codes[i].code), (char *)codes[i].name));
        const char *d = risk_strerror(codes[i].code);
        cr_assert_not_null(d);
        cr_assert(gt(sz, strlen(d), 0));
        cr_assert(ne(str, (char *)d, "unknown error"), "code %d", codes[i].code);
        for (size_t j = 0; j < i; j++)
            cr_assert(ne(str, (char *)d, (char *)risk_strerror(codes[j].code)));
    }
}

/* R-IV-1: unknown codes get fixed fallbacks, never NULL or a crash. */
Test(error, unknown_codes)
{
    static const int unknown[] = {1, 42, -17, -1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        cr_assert(eq(str, (char *)risk_strerror(unknown[i]), "unknown error"));
        cr_assert(eq(str, (char *)risk_error_name(unknown[i]), "RISK_E?"));
    }
}

/* R-IV-1: a failure leaves its code and a message naming the argument;
 * success does not clear it; clear does. */
Test(error, last_message_lifecycle)
{
    risk_error_clear();
    cr_assert(eq(str, (char *)risk_error_last(), ""));
    cr_assert(eq(int, risk_error_last_code(), 0));
    cr_assert(eq(int, risk_id_check("a\x01"), RISK_EINVAL));
    cr_assert(eq(int, risk_error_last_code(), RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "id: control character 0x01 at byte 1"));
    cr_assert(eq(int, risk_id_check("fine"), RISK_OK));
    cr_assert(eq(int, risk_error_last_code(), RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "id: control character 0x01 at byte 1"));
    risk_error_clear();
    cr_assert(eq(str, (char *)risk_error_last(), ""));
    cr_assert(eq(int, risk_error_last_code(), 0));
}

/* R-ST-1 (store messages): risk_error_set copies, truncates, returns code. */
Test(error, error_set_for_stores)
{
    char msg[64] = "disk on fire";
    cr_assert(eq(int, risk_error_set(RISK_EIO, msg), RISK_EIO));
    strcpy(msg, "changed");
    cr_assert(eq(str, (char *)risk_error_last(), "disk on fire"));
    cr_assert(eq(int, risk_error_last_code(), RISK_EIO));

    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert(eq(int, risk_error_set(RISK_ESTORE, big), RISK_ESTORE));
    cr_assert(eq(sz, strlen(risk_error_last()), 511));

    cr_assert(eq(int, risk_error_set(RISK_ECORRUPT, NULL), RISK_ECORRUPT));
    cr_assert(eq(str, (char *)risk_error_last(), (char *)risk_strerror(RISK_ECORRUPT)));
}

/* R-IV-1: the internal formatter truncates long messages safely. */
Test(error, risk_err_formats_and_truncates)
{
    cr_assert(eq(int, risk_err(RISK_ENOTFOUND, "user_id: %s not found", "bob"),
                 RISK_ENOTFOUND));
    cr_assert(eq(str, (char *)risk_error_last(), "user_id: bob not found"));
    char big[1500];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    risk_err(RISK_EINVAL, "note: %s", big);
    cr_assert(eq(sz, strlen(risk_error_last()), 511));
    cr_assert(eq(int, strncmp(risk_error_last(), "note: yyy", 9), 0));
}

/* R-IV-1: a message cut at the buffer's end is cut before a UTF-8
 * character the cut would split (ids and notes may hold any), through
 * risk_err and risk_error_set, for characters of 2, 3 and 4 bytes. */
Test(error, truncation_keeps_utf8_whole)
{
    static const char *const ch[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\x91"};
    for (int c = 0; c < 3; c++) {
        size_t cl = strlen(ch[c]);
        for (size_t pad = 505; pad <= 511; pad++) {
            char msg[600];
            memset(msg, 'x', pad);
            memcpy(msg + pad, ch[c], cl);
            memcpy(msg + pad + cl, "tail", 5);
            /* whole if it ends by byte 511, else cut before it */
            size_t want = pad + cl <= 511 ? 511 : pad;
            risk_error_set(RISK_EINVAL, msg);
            cr_assert(eq(sz, strlen(risk_error_last()), want), "char %d pad %zu", c, pad);
            risk_err(RISK_EINVAL, "%s", msg);
            cr_assert(eq(sz, strlen(risk_error_last()), want), "char %d pad %zu", c, pad);
            cr_assert(eq(sz, risk_utf8_invalid_at((const uint8_t *)risk_error_last(),
                                                  strlen(risk_error_last())),
                         (size_t)-1), "char %d pad %zu", c, pad);
        }
    }
}

struct thread_arg {
    const char *id;
    pthread_barrier_t *barrier;
    char seen[512];
    int code;
};

static void *thread_fail(void *p)
{
    struct thread_arg *a = p;
    risk_id_check(a->id); /* fails, differently in each thread */
    pthread_barrier_wait(a->barrier); /* both have failed before either reads */
    strncpy(a->seen, risk_error_last(), sizeof a->seen - 1);
    a->code = risk_error_last_code();
    pthread_barrier_wait(a->barrier);
    return NULL;
}

static void *thread_fresh(void *p)
{
    struct thread_arg *a = p;
    strncpy(a->seen, risk_error_last(), sizeof a->seen - 1);
    a->code = risk_error_last_code();
    return NULL;
}

/* R-IV-1 / R-CC-1: the last error is per thread; threads do not see each
 * other's messages, and a new thread starts clean. */
Test(error, thread_local_messages)
{
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    struct thread_arg t1 = {.id = "", .barrier = &b}, t2 = {.id = "ab\xFF", .barrier = &b};
    pthread_t th1, th2;
    risk_error_set(RISK_EBUSY, "main thread message");
    cr_assert(eq(int, pthread_create(&th1, NULL, thread_fail, &t1), 0));
    cr_assert(eq(int, pthread_create(&th2, NULL, thread_fail, &t2), 0));
    pthread_join(th1, NULL);
    pthread_join(th2, NULL);
    pthread_barrier_destroy(&b);
    cr_assert(eq(str, t1.seen, "id: empty"));
    cr_assert(eq(str, t2.seen, "id: invalid UTF-8 at byte 2"));
    cr_assert(eq(int, t1.code, RISK_EINVAL));
    cr_assert(eq(str, (char *)risk_error_last(), "main thread message"));
    cr_assert(eq(int, risk_error_last_code(), RISK_EBUSY));

    struct thread_arg t3 = {0};
    pthread_t th3;
    cr_assert(eq(int, pthread_create(&th3, NULL, thread_fresh, &t3), 0));
    pthread_join(th3, NULL);
    cr_assert(eq(str, t3.seen, ""));
    cr_assert(eq(int, t3.code, 0));
}

/* Versions (STYLE): the run-time version matches the header. */
Test(error, version_matches_header)
{
    cr_assert(eq(u32, risk_version_number(), RISK_VERSION_NUMBER));
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", RISK_VERSION_MAJOR, RISK_VERSION_MINOR,
             RISK_VERSION_PATCH);
    cr_assert(eq(str, (char *)risk_version_string(), buf));
}
