/* R-CC-1 under ThreadSanitizer: the stress of tests/stress_common.h as a
 * plain pthread program (Criterion cannot run under TSan). Exit 0 when the
 * concurrent run equals its serial replay; TSan itself exits 66 on a race. */
#include "../stress_common.h"

int main(void)
{
    char why[512] = "";
    if (st_stress(4, 2000, why, sizeof why)) {
        fprintf(stderr, "tsan-stress: %s\n", why);
        return 1;
    }
    printf("tsan-stress: 4 threads x 2000 operations equal their serial replay\n");
    return 0;
}
