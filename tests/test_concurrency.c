/* R-CC-1: one engine from many threads; same-user operations serialised,
 * different users in parallel; the result equals a serial replay. */
#include "stress_common.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

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
