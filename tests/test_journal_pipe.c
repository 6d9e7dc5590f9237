/* Every journal test again, with recovery forced through the two-thread
 * pipeline (lib/journal_replay.c) that opens large journals: the small
 * files of tests/test_journal.c normally take the sequential path, and
 * both must accept, refuse, report and leak alike (R-CC-3, R-IV-2, R-IV-3). */
#include <stdint.h>

extern uint64_t journal_pipe_min;

__attribute__((constructor)) static void force_pipeline(void)
{
    journal_pipe_min = 0;
}

#include "test_journal.c"
#include "test_journal_durability.c"
#include "test_journal_order.c"
