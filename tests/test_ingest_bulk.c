/* risk_engine_ingest_bulk() and the store hints it gives (R-ST-4): a bulk
 * ingest leaves exactly what the same ingests one call each leave, on the
 * memory store and on a journal; a store of table version 3 is told the
 * users and event ids ahead, one of version 2 the users only, one of
 * version 1 nothing; the memory store's hints change nothing. */
#pragma GCC diagnostic ignored "-Wunused-function" /* the fixture's helpers this file needs not */
#include "engine_fixture.h"
#include "internal.h" /* risk_event fields: items a constructor would refuse */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

TestSuite(ingest_bulk, .init = fx_open, .fini = fx_close);

#define NEV 100 /* several of the engine's chunks of 16, a partial one last */
#define NUSERS 7

/* Event i: user i % NUSERS (u0 unknown to the store: made by its first
 * event), levels in turn, ids repeating (a re-sent detection, R-OP-1),
 * and three refused items: NULL, a handle whose user id is NULL (the
 * setters refuse that; the engine checks anyway), and an id of the
 * reserved prefix "librisk:" (a valid id, refused by the ingest). */
struct batch {
    risk_event *ev[NEV];
    char ids[NEV][16], users[NEV][8];
    char *user40; /* the field replaced, given back before the free */
};

static void make_batch(struct batch *b)
{
    for (int i = 0; i < NEV; i++) {
        snprintf(b->ids[i], sizeof b->ids[i], i == 63 ? "librisk:%d" : "ev-%d", i % 90);
        snprintf(b->users[i], sizeof b->users[i], "u%d", i % NUSERS);
        cr_assert(eq(int, risk_event_new(&b->ev[i], b->ids[i], b->users[i], "atypicalTravel",
                                         (risk_level)(1 + i % 3), T0 - (NEV - i) * MINUTE),
                     RISK_OK));
    }
    risk_event_free(b->ev[17]);
    b->ev[17] = NULL;
    b->user40 = b->ev[40]->user_id;
    b->ev[40]->user_id = NULL;
}

static void free_batch(struct batch *b)
{
    b->ev[40]->user_id = b->user40;
    for (int i = 0; i < NEV; i++)
        risk_event_free(b->ev[i]);
}

struct sink {
    uint8_t *out;
    size_t at, cap, n;
};

static int put_item(const risk_history *h, void *ud)
{
    struct sink *k = ud;
    size_t len = 0;
    cr_assert(eq(int, risk_history_encode(k->out + k->at, k->cap - k->at, &len, h), RISK_OK));
    k->at += len;
    k->n++;
    return 0;
}

/* Every user's, event's and history item's canonical encoding: two
 * engines hold the same state when these agree. */
static size_t state_of(risk_engine *e, uint8_t *out, size_t cap)
{
    size_t at = 0, len = 0;
    for (int i = 0; i < NUSERS; i++) {
        char id[8];
        snprintf(id, sizeof id, "u%d", i);
        risk_user *u = NULL;
        cr_assert(eq(int, risk_engine_user(&u, e, id), RISK_OK), "%s", risk_error_last());
        cr_assert(eq(int, risk_user_encode(out + at, cap - at, &len, u), RISK_OK));
        at += len;
        risk_user_free(u);
    }
    for (int i = 0; i < 90; i++) {
        char id[16];
        snprintf(id, sizeof id, "ev-%d", i);
        risk_event *ev = NULL;
        int rc = risk_engine_event(&ev, e, id);
        if (rc == RISK_ENOTFOUND)
            continue;
        cr_assert(eq(int, rc, RISK_OK), "%s", risk_error_last());
        cr_assert(eq(int, risk_event_encode(out + at, cap - at, &len, ev), RISK_OK));
        at += len;
        risk_event_free(ev);
    }
    struct sink k = { out, at, cap, 0 };
    cr_assert(eq(int, risk_engine_history_feed(e, 0, put_item, &k), RISK_OK), "%s",
              risk_error_last());
    cr_assert(eq(sz, k.n, (NUSERS - 1) + (NEV - 13))); /* the upserts, the ingests */
    return k.at;
}

static void setup_users(void)
{
    for (int i = 1; i < NUSERS; i++) {
        char id[8];
        snprintf(id, sizeof id, "u%d", i);
        fx_user(id, i % 2 ? 5 : -1, 0);
    }
}

/* The bulk call on fx against one call each on a second engine over
 * other (a store of the same kind): same results, same state. */
static void expect_bulk_as_one_by_one(const risk_store *other)
{
    struct batch b;
    make_batch(&b);
    setup_users();
    int res[NEV];
    int failed = risk_engine_ingest_bulk(fx, "detector", (const risk_event *const *)b.ev, NEV,
                                         0, res);
    cr_assert(eq(int, failed, 13)); /* the 3 refused and 10 re-sent ids (R-OP-1) */
    cr_assert(eq(int, res[17], RISK_EINVAL));
    cr_assert(eq(int, res[40], RISK_EINVAL));
    cr_assert(eq(int, res[63], RISK_EINVAL));
    cr_assert(eq(int, res[95], RISK_EEXISTS), "%d", res[95]);

    risk_engine *saved = fx;
    fx_open_on(other, NULL, 0, 0);
    setup_users();
    for (int i = 0; i < NEV; i++)
        cr_assert(eq(int, risk_engine_ingest(fx, "detector", b.ev[i], 0), res[i]), "event %d", i);
    static uint8_t one[1 << 16], bulk[1 << 16];
    size_t n1 = state_of(fx, one, sizeof one);
    risk_engine_free(fx);
    fx = saved;
    size_t n2 = state_of(fx, bulk, sizeof bulk);
    cr_assert(eq(sz, n1, n2));
    cr_assert(memcmp(one, bulk, n1) == 0);
    free_batch(&b);
}

/* SPEC §7: a bad item fails alone; the results are one call's each. */
Test(ingest_bulk, as_one_by_one_on_memory)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    expect_bulk_as_one_by_one(&st);
}

/* The journal store passes both hints to its memory. */
Test(ingest_bulk, as_one_by_one_on_a_journal)
{
    char dir[] = "/tmp/librisk-ingest-bulk-XXXXXX", p1[64], p2[64];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(p1, sizeof p1, "%s/a", dir);
    snprintf(p2, sizeof p2, "%s/b", dir);
    risk_store a, b;
    cr_assert(eq(int, risk_journal_open(&a, p1, NULL, NULL), RISK_OK), "%s", risk_error_last());
    cr_assert(a.prefetch_users != NULL && a.prefetch_events != NULL);
    cr_assert(eq(int, risk_journal_open(&b, p2, NULL, NULL), RISK_OK), "%s", risk_error_last());
    risk_engine_free(fx); /* the suite's memory engine: this test's is a journal's */
    fx_open_on(&a, NULL, 0, 0);
    expect_bulk_as_one_by_one(&b);
    risk_engine_free(fx);
    fx = NULL;
    cr_assert(eq(int, unlink(p1), 0));
    cr_assert(eq(int, unlink(p2), 0));
    cr_assert(eq(int, rmdir(dir), 0));
}

/* R-ST-4: the hints by table version; only valid ids are hinted. */
static void (*inner_users)(void *, const char *const *, size_t);
static void (*inner_events)(void *, const char *const *, size_t);
static size_t n_users, n_events, user_calls, event_calls;

static void count(const char *const *ids, size_t n, size_t *calls, size_t *total)
{
    ++*calls;
    for (size_t i = 0; i < n; i++)
        cr_assert(eq(int, risk_id_check(ids[i]), RISK_OK));
    *total += n;
}

static void count_users(void *ctx, const char *const *ids, size_t n)
{
    count(ids, n, &user_calls, &n_users);
    inner_users(ctx, ids, n);
}

static void count_events(void *ctx, const char *const *ids, size_t n)
{
    count(ids, n, &event_calls, &n_events);
    inner_events(ctx, ids, n);
}

static void hints_with_table_version(uint32_t version)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    inner_users = st.prefetch_users;
    inner_events = st.prefetch_events;
    cr_assert(inner_users != NULL && inner_events != NULL);
    st.version = version;
    st.prefetch_users = count_users;
    st.prefetch_events = count_events;
    risk_engine_free(fx);
    fx_open_on(&st, NULL, 0, 0);
    struct batch b;
    make_batch(&b);
    int res[NEV];
    n_users = n_events = user_calls = event_calls = 0;
    cr_assert(eq(int, risk_engine_ingest_bulk(fx, "detector", (const risk_event *const *)b.ev,
                                              NEV, 0, res),
                 13));
    size_t hinted = NEV - 2; /* all but the NULL item and the NULL user */
    cr_assert(eq(sz, n_users, version >= 2 ? hinted : 0));
    cr_assert(eq(sz, user_calls, version >= 2 ? 7 : 0)); /* ceil(100 / 16) chunks */
    cr_assert(eq(sz, n_events, version >= 3 ? hinted : 0));
    cr_assert(eq(sz, event_calls, version >= 3 ? 7 : 0));
    free_batch(&b);
}

Test(ingest_bulk, hints_by_table_version)
{
    hints_with_table_version(RISK_STORE_VERSION);
    hints_with_table_version(2);
    hints_with_table_version(1);
}

/* risk_engine_dismiss_bulk() hints the users (valid ids only), 16 at a
 * time, and dismisses as one call each does (R-DI-4). */
Test(ingest_bulk, dismiss_bulk_hints_users)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    inner_users = st.prefetch_users;
    inner_events = st.prefetch_events;
    st.prefetch_users = count_users;
    st.prefetch_events = count_events;
    risk_engine_free(fx);
    fx_open_on(&st, NULL, 0, 0);
    setup_users();
    struct batch b;
    make_batch(&b);
    int res[NEV];
    cr_assert(eq(int, risk_engine_ingest_bulk(fx, "detector", (const risk_event *const *)b.ev,
                                              NEV, 0, res),
                 13));
    free_batch(&b);
    const char *ids[20];
    uint32_t closed[20];
    for (int i = 0; i < 20; i++)
        ids[i] = (const char *[]){ "u1", "u2", "u3", "u4", "u5", "u6", "u0" }[i % NUSERS];
    ids[3] = NULL;
    n_users = user_calls = n_events = event_calls = 0;
    cr_assert(eq(int, risk_engine_dismiss_bulk(fx, "admin", ids, 20, NULL, res, closed), 1));
    cr_assert(eq(int, res[3], RISK_EINVAL));
    cr_assert(eq(sz, n_users, 19));
    cr_assert(eq(sz, user_calls, 2));
    cr_assert(eq(sz, n_events, 0));
    for (int i = 0; i < NUSERS; i++) {
        char id[8];
        snprintf(id, sizeof id, "u%d", i);
        risk_user *u = fx_get(id);
        cr_assert(eq(u32, risk_user_active_events(u), 0));
        cr_assert(eq(int, risk_user_risk_state(u), RISK_STATE_DISMISSED));
        risk_user_free(u);
    }
    cr_assert(gt(u32, closed[0], 0)); /* u1's events */
    cr_assert(eq(u32, closed[7], 0)); /* u1 again: nothing left */
}

/* The memory store's hints read nothing they should not: an empty store,
 * absent ids, ids of every length (valgrind and ASan runs check). */
Test(ingest_bulk, memory_store_hints_change_nothing)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    const char *ids[] = { "a", "ev-1", "u1", "a-rather-longer-id-than-twenty-three-bytes" };
    st.prefetch_events(st.ctx, ids, 4);
    st.prefetch_users(st.ctx, ids, 4);
    risk_engine_free(fx);
    fx_open_on(&st, NULL, 0, 0);
    setup_users();
    cr_assert(eq(int, fx_event("u1", "ev-1", "x", RISK_LEVEL_HIGH, 0), RISK_OK));
    st.prefetch_events(st.ctx, ids, 4);
    st.prefetch_users(st.ctx, ids, 4);
    cr_assert(eq(int, fx_level("u1"), RISK_LEVEL_HIGH));
    cr_assert(eq(int, fx_evstate("ev-1"), RISK_EVENT_ACTIVE));
}

/* R-CC-3 (group commit) in a bulk call: in `full` durability the items of
 * one call share their syncs, 16 items a wait, and each item's result is
 * RISK_OK only once its commit is on the disk. With post-commit hooks
 * (feedback, user_changed) each item waits for its own sync, as one call
 * does. */
static int syncs;
static void count_sync(int fd)
{
    (void)fd;
    syncs++;
}

/* fx, freed first, becomes an engine over the journal at path in full
 * durability, with the fixture's hooks or without, and the given clock
 * (the hooks come with the fixture's). */
static void full_journal(const char *path, int with_hooks, int64_t (*clock)(void *))
{
    risk_engine_free(fx); /* it may hold the journal's writer lock */
    fx = NULL;
    risk_store st;
    risk_journal_options jo = RISK_JOURNAL_OPTIONS_INIT; /* full */
    cr_assert(eq(int, jo.durability, RISK_DURABILITY_FULL));
    cr_assert(eq(int, risk_journal_open(&st, path, &jo, NULL), RISK_OK), "%s", risk_error_last());
    if (with_hooks) {
        fx_open_on(&st, NULL, 0, 0); /* the fixture sets feedback and user_changed */
    } else {
        risk_engine_options o;
        risk_engine_options_init(&o);
        o.clock = clock;
        cr_assert(eq(int, risk_engine_new(&fx, &st, &o), RISK_OK), "%s", risk_error_last());
    }
}

static int in_journal(const char *id)
{
    risk_event *g = NULL;
    int there = risk_engine_event(&g, fx, id) == RISK_OK;
    risk_event_free(g);
    return there;
}

static int ingest_32(int first, int *res)
{
    risk_event *ev[32];
    for (int i = 0; i < 32; i++) {
        char id[16];
        snprintf(id, sizeof id, "d-%d", first + i);
        cr_assert(eq(int, risk_event_new(&ev[i], id, "u1", "x", RISK_LEVEL_HIGH, T0), RISK_OK));
    }
    int failed = risk_engine_ingest_bulk(fx, "detector", (const risk_event *const *)ev, 32, 0, res);
    for (int i = 0; i < 32; i++)
        risk_event_free(ev[i]);
    return failed;
}

Test(ingest_bulk, full_durability_shares_syncs)
{
    char dir[] = "/tmp/librisk-ingest-bulk-XXXXXX", path[64];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/j", dir);
    int res[32];
    for (int hooks = 0; hooks < 2; hooks++) {
        full_journal(path, hooks, fx_clock);
        syncs = 0;
        risk_journal_test_before_sync(count_sync);
        cr_assert(eq(int, ingest_32(hooks * 100, res), 0), "%s", risk_error_last());
        risk_journal_test_before_sync(NULL);
        if (hooks)
            cr_assert(eq(int, syncs, 32)); /* one per item, as one call each */
        else
            cr_assert(le(int, syncs, 2), "%d syncs for two chunks of 16", syncs);
    }
    /* every item is on the disk */
    full_journal(path, 0, fx_clock);
    for (int i = 0; i < 32; i++) {
        char id[16];
        snprintf(id, sizeof id, "d-%d", i);
        cr_assert(eq(int, fx_evstate(id), RISK_EVENT_ACTIVE));
        snprintf(id, sizeof id, "d-%d", 100 + i);
        cr_assert(eq(int, fx_evstate(id), RISK_EVENT_ACTIVE));
    }
    /* a failed sync fails every item that waited for it, and none of them
     * is in the journal when it is opened again */
    risk_journal_test_fail_sync(1);
    cr_assert(eq(int, ingest_32(200, res), 32));
    risk_journal_test_fail_sync(0);
    for (int i = 0; i < 32; i++)
        cr_assert(eq(int, res[i], RISK_EIO), "item %d: %d", i, res[i]);
    full_journal(path, 0, fx_clock);
    cr_assert(eq(int, in_journal("d-200"), 0));
    cr_assert(eq(int, fx_evstate("d-31"), RISK_EVENT_ACTIVE));
    risk_engine_free(fx);
    fx = NULL;
    cr_assert(eq(int, unlink(path), 0));
    cr_assert(eq(int, rmdir(dir), 0));
}

/* R-CC-3, found by review: a failed shared wait fails only what it lost.
 * Items an earlier sync made durable (risk_engine_sync, a backup, another
 * thread's round) are in the journal after the failure and stay RISK_OK;
 * the clock of item 8's operation makes items 0..7 durable, then the
 * chunk's own sync fails. */
static int clock_calls, sync_at = -1;
static int64_t syncing_clock(void *ud)
{
    (void)ud;
    if (clock_calls++ == sync_at) {
        cr_assert(eq(int, risk_engine_sync(fx), RISK_OK), "%s", risk_error_last());
        risk_journal_test_fail_sync(1);
    }
    return T0;
}

Test(ingest_bulk, failed_wait_fails_only_what_it_lost)
{
    char dir[] = "/tmp/librisk-ingest-bulk-XXXXXX", path[64];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/j", dir);
    full_journal(path, 0, syncing_clock);
    risk_event *ev[16];
    for (int i = 0; i < 16; i++) {
        char id[16];
        snprintf(id, sizeof id, "d-%d", i);
        cr_assert(eq(int, risk_event_new(&ev[i], id, "u1", "x", RISK_LEVEL_HIGH, T0), RISK_OK));
    }
    int res[16];
    clock_calls = 0;
    sync_at = 8; /* item 8's operation: items 0..7 committed */
    int failed = risk_engine_ingest_bulk(fx, "detector", (const risk_event *const *)ev, 16, 0, res);
    sync_at = -1;
    risk_journal_test_fail_sync(0);
    cr_assert(eq(int, failed, 8));
    for (int i = 0; i < 16; i++)
        risk_event_free(ev[i]);
    full_journal(path, 0, syncing_clock);
    for (int i = 0; i < 16; i++) {
        char id[16];
        snprintf(id, sizeof id, "d-%d", i);
        cr_assert(eq(int, res[i], i < 8 ? RISK_OK : RISK_EIO), "item %d", i);
        cr_assert(eq(int, in_journal(id), i < 8), "item %d", i);
    }
    /* The same detection twice in one chunk: the second commits nothing
     * (R-OP-1) and rests on the first, which the failed sync loses; one
     * call each, the failed journal would refuse it: both fail. */
    risk_event *a = NULL;
    cr_assert(eq(int, risk_event_new(&a, "dup", "u1", "x", RISK_LEVEL_HIGH, T0), RISK_OK));
    const risk_event *two[2] = { a, a };
    risk_journal_test_fail_sync(1);
    cr_assert(eq(int, risk_engine_ingest_bulk(fx, "detector", two, 2, 0, res), 2));
    risk_journal_test_fail_sync(0);
    cr_assert(eq(int, res[0], RISK_EIO));
    cr_assert(eq(int, res[1], RISK_EIO));
    risk_event_free(a);
    full_journal(path, 0, syncing_clock);
    cr_assert(eq(int, in_journal("dup"), 0));
    risk_engine_free(fx);
    fx = NULL;
    cr_assert(eq(int, unlink(path), 0));
    cr_assert(eq(int, rmdir(dir), 0));
}
