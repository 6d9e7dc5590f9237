/* R-CC-1 under ThreadSanitizer: the stress of tests/stress_common.h as a
 * plain pthread program (Criterion cannot run under TSan), then group
 * commit (R-CC-3): threads committing to one journal in full durability,
 * each waiting for a sync that covers its own frame. Exit 0 when the
 * concurrent run equals its serial replay and every acknowledged commit
 * is in the reopened journal; TSan itself exits 66 on a race. */
#include "../stress_common.h"

#include <unistd.h>

enum { GC_THREADS = 8, GC_OPS = 60 };

struct gc_thread {
    risk_engine *e;
    int id, acked;
};

static void *gc_run(void *arg)
{
    struct gc_thread *t = arg;
    for (int i = 0; i < GC_OPS; i++) {
        char user[32], id[48];
        snprintf(user, sizeof user, "gc-%d-%d", t->id, i % 5);
        snprintf(id, sizeof id, "gc-ev-%d-%d-%c", t->id, i, st_levels[i % 3]);
        t->acked += st_ingest(t->e, "detector", user, id) == RISK_OK;
    }
    return NULL;
}

/* Group commit: every acknowledged ingest is in the journal on reopen. */
static int gc_stress(char *why, size_t whylen)
{
    char dir[] = "/tmp/librisk-tsan-XXXXXX", path[64];
    if (mkdtemp(dir) == NULL) {
        snprintf(why, whylen, "mkdtemp failed");
        return 1;
    }
    snprintf(path, sizeof path, "%s/j", dir);
    risk_store s;
    risk_engine *e = NULL;
    if (risk_journal_open(&s, path, NULL, NULL) || risk_engine_new(&e, &s, NULL)) {
        snprintf(why, whylen, "journal: %s", risk_error_last());
        return 1;
    }
    pthread_t tid[GC_THREADS];
    struct gc_thread t[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) {
        t[i] = (struct gc_thread){ e, i, 0 };
        pthread_create(&tid[i], NULL, gc_run, &t[i]);
    }
    int acked = 0;
    for (int i = 0; i < GC_THREADS; i++) {
        pthread_join(tid[i], NULL);
        acked += t[i].acked;
    }
    risk_engine_free(e);
    risk_journal_stats st = { 0 };
    int fail = acked != GC_THREADS * GC_OPS;
    if (fail)
        snprintf(why, whylen, "group commit: %d of %d ingests acknowledged", acked,
                 GC_THREADS * GC_OPS);
    else if (risk_journal_open(&s, path, NULL, &st) || st.records_replayed != (uint64_t)acked) {
        snprintf(why, whylen, "group commit: reopen replayed %llu of %d commits (%s)",
                 (unsigned long long)st.records_replayed, acked, risk_error_last());
        fail = 1;
    }
    else
        s.close(s.ctx);
    unlink(path);
    rmdir(dir);
    return fail;
}

int main(void)
{
    char why[512] = "";
    if (st_stress(4, 2000, why, sizeof why) || gc_stress(why, sizeof why)) {
        fprintf(stderr, "tsan-stress: %s\n", why);
        return 1;
    }
    printf("tsan-stress: 4 threads x 2000 operations equal their serial replay; "
           "%d threads x %d durable commits all replayed\n", GC_THREADS, GC_OPS);
    return 0;
}
