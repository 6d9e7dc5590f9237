/* R-CC-1 under ThreadSanitizer: the stress of tests/stress_common.h as a
 * plain pthread program (Criterion cannot run under TSan), then group
 * commit (R-CC-3): threads committing to one journal in full durability,
 * each waiting for a sync that covers its own frame. Exit 0 when the
 * concurrent run equals its serial replay and every acknowledged commit
 * is in the reopened journal, and a feed read beside them (with compactions)
 * only ever grows; TSan itself exits 66 on a race. */
#include "../stress_common.h"

#include <stdatomic.h>
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

/* A feed reader beside the committers: each read of the whole feed must
 * extend the one before (items only appear above the watermark: a feed
 * never skips an item that a slower commit adds later, R-OP-5), in seq
 * order; a compaction now and then; and a bulk sign-in of every user the
 * committers write, whose store hint (prefetch_users) reads the users'
 * maps while commits add users and grow them. */
struct feed_reader {
    risk_engine *e;
    atomic_int *stop;
    uint64_t *prev, *cur;
    size_t n_prev, n_cur, cap;
    int bad, reads, compactions;
};

static int feed_collect(const risk_history *h, void *arg)
{
    struct feed_reader *r = arg;
    if (r->n_cur < r->cap)
        r->cur[r->n_cur] = risk_history_seq(h);
    r->n_cur++;
    return 0;
}

enum { GC_USERS = GC_THREADS * 5 };
static int bulk_sign_in(risk_engine *e)
{
    char names[GC_USERS][32];
    const char *ids[GC_USERS];
    risk_verdict *vs[GC_USERS] = { NULL };
    int res[GC_USERS], bad = 0;
    for (int i = 0; i < GC_USERS; i++) {
        snprintf(names[i], sizeof names[i], "gc-%d-%d", i / 5, i % 5);
        ids[i] = names[i];
        bad |= risk_verdict_new(&vs[i]);
    }
    bad |= bad ? 0 : risk_engine_sign_in_bulk(e, ids, GC_USERS, vs, res) != 0;
    for (int i = 0; i < GC_USERS; i++)
        risk_verdict_free(vs[i]);
    return bad;
}

static void *feed_run(void *arg)
{
    struct feed_reader *r = arg;
    while (!atomic_load(r->stop)) {
        r->n_cur = 0;
        if (risk_engine_history_feed(r->e, 0, feed_collect, r) != RISK_OK || r->n_cur > r->cap) {
            r->bad = 1;
            break;
        }
        for (size_t i = 0; i < r->n_cur; i++)
            if ((i > 0 && r->cur[i] <= r->cur[i - 1]) ||
                (i < r->n_prev && r->cur[i] != r->prev[i]))
                r->bad = 1;
        if (r->n_cur < r->n_prev)
            r->bad = 1;
        uint64_t *t = r->prev;
        r->prev = r->cur, r->cur = t, r->n_prev = r->n_cur;
        if (++r->reads % 8 == 0 && risk_engine_compact(r->e) == RISK_OK)
            r->compactions++;
        if (bulk_sign_in(r->e) != 0)
            r->bad = 1;
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
    pthread_t tid[GC_THREADS], rid;
    struct gc_thread t[GC_THREADS];
    atomic_int stop = 0;
    enum { CAP = 2 * GC_THREADS * GC_OPS };
    struct feed_reader rd = { e, &stop, calloc(CAP, 8), calloc(CAP, 8), 0, 0, CAP, 0, 0, 0 };
    if (rd.prev == NULL || rd.cur == NULL) {
        snprintf(why, whylen, "out of memory");
        return 1;
    }
    pthread_create(&rid, NULL, feed_run, &rd);
    for (int i = 0; i < GC_THREADS; i++) {
        t[i] = (struct gc_thread){ e, i, 0 };
        pthread_create(&tid[i], NULL, gc_run, &t[i]);
    }
    int acked = 0;
    for (int i = 0; i < GC_THREADS; i++) {
        pthread_join(tid[i], NULL);
        acked += t[i].acked;
    }
    atomic_store(&stop, 1);
    pthread_join(rid, NULL);
    free(rd.prev);
    free(rd.cur);
    rd.prev = rd.cur = NULL;
    rd.n_cur = 0, rd.cap = 0;
    size_t items = risk_engine_history_feed(e, 0, feed_collect, &rd) == RISK_OK ? rd.n_cur : 0;
    risk_engine_free(e);
    if (rd.bad) {
        snprintf(why, whylen, "history feed: a read did not extend the one before "
                              "(%d reads, %d compactions)", rd.reads, rd.compactions);
        return 1;
    }
    risk_journal_stats st = { 0 };
    int fail = acked != GC_THREADS * GC_OPS;
    if (fail)
        snprintf(why, whylen, "group commit: %d of %d ingests acknowledged", acked,
                 GC_THREADS * GC_OPS);
    else if (risk_journal_open(&s, path, NULL, &st) || risk_engine_new(&e, &s, NULL)) {
        snprintf(why, whylen, "group commit: reopen failed (%s)", risk_error_last());
        fail = 1;
    } else { /* every acknowledged event is there, and as many history items */
        int found = 0;
        for (int i = 0; i < GC_THREADS; i++)
            for (int k = 0; k < GC_OPS; k++) {
                char id[48];
                risk_event *ev = NULL;
                snprintf(id, sizeof id, "gc-ev-%d-%d-%c", i, k, st_levels[k % 3]);
                found += risk_engine_event(&ev, e, id) == RISK_OK;
                risk_event_free(ev);
            }
        rd.n_cur = 0;
        if (found != acked || risk_engine_history_feed(e, 0, feed_collect, &rd) != RISK_OK ||
            rd.n_cur != items || items < (size_t)acked) {
            snprintf(why, whylen, "group commit: reopen holds %d of %d events, %zu of %zu "
                     "history items (%d compactions)", found, acked, rd.n_cur, items,
                     rd.compactions);
            fail = 1;
        }
        risk_engine_free(e);
    }
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
           "%d threads x %d durable commits all replayed, beside a feed reader and compactions\n", GC_THREADS, GC_OPS);
    return 0;
}
