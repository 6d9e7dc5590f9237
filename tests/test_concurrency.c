/* R-CC-1: one engine from many threads; same-user operations serialised,
 * different users in parallel; the result equals a serial replay. */
#include "stress_common.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdatomic.h>

/* R-CC-1 */
Test(concurrency, threads_on_shared_and_private_users_equal_a_serial_replay, .timeout = 120)
{
    char why[512] = "";
    cr_assert(eq(int, st_stress(4, 3000, why, sizeof why), 0), "%s", why);
}

/* R-CC-1: a single thread is the trivial serial case (the replay itself is
 * checked to be faithful). */
Test(concurrency, one_thread_equals_its_replay)
{
    char why[512] = "";
    cr_assert(eq(int, st_stress(1, 2000, why, sizeof why), 0), "%s", why);
}

/* Writers for verify_while_writing: ingest into a few users until told to
 * stop (a new event each time, so every call writes a history item). */
struct vw_writer {
    risk_engine *e;
    int id;
    atomic_int *stop;
    int bad;
};

static void *vw_write(void *arg)
{
    struct vw_writer *w = arg;
    char user[32], ev[64];
    for (unsigned i = 0; !atomic_load(w->stop) && !w->bad; i++) {
        snprintf(user, sizeof user, "hot-%u", i % 3);
        snprintf(ev, sizeof ev, "w%d-%u-l", w->id, i);
        w->bad = st_ingest(w->e, "writer", user, ev) != RISK_OK;
    }
    return NULL;
}

/* R-AU-2 under R-CC-1 (review, 2026-12-07): verification beside writers
 * is no tamper alarm. It compared the stored heads, read after the walk,
 * with the walk's chain ends, and a commit in between looked like items
 * removed from a chain's end (a third of the calls failed). */
Test(concurrency, verify_history_while_writing, .timeout = 120)
{
    risk_engine *e = st_engine();
    cr_assert_not_null(e);
    atomic_int stop;
    atomic_init(&stop, 0);
    struct vw_writer w[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct vw_writer){ e, i, &stop, 0 };
        cr_assert(eq(int, pthread_create(&th[i], NULL, vw_write, &w[i]), 0));
    }
    int failed = 0, rc = RISK_OK;
    char why[256] = "";
    for (int n = 0; n < 60; n++) {
        uint64_t bad = 0;
        rc = risk_engine_verify_history(e, NULL, &bad);
        if (rc != RISK_OK && !failed++)
            snprintf(why, sizeof why, "%s (%s)", risk_error_name(rc), risk_error_last());
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert(eq(int, w[i].bad, 0), "writer %d failed", i);
    }
    cr_assert(eq(int, failed, 0), "%d of 60 verifications failed: %s", failed, why);
    cr_assert(eq(int, risk_engine_verify_history(e, NULL, NULL), RISK_OK));
    risk_engine_free(e);
}
