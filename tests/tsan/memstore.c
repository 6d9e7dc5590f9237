/* R-CC-1, R-ST-6 under ThreadSanitizer: the in-memory store's own stress
 * (tests/memstore_stress.h) as a plain pthread program: transactions
 * across shards, events moving between users, two-phase commits and
 * rollbacks, readers holding one shard's lock while they take another's.
 * Exit 0 when no update was lost and every event is in one user's list;
 * TSan itself exits 66 on a race. */
#include "../memstore_stress.h"

int main(void)
{
    char why[512] = "";
    if (mss_run(6, 3, 3000, why, sizeof why)) {
        fprintf(stderr, "tsan-memstore: %s\n", why);
        return 1;
    }
    printf("tsan-memstore: 6 writers x 3000 transactions across shards, 3 readers: "
           "no update lost, every event in one list\n");
    return 0;
}
