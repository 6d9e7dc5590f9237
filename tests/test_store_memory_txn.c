/* Tests of the in-memory store's transactions: sequencing (both
 * sequencers), memory failures, threads. Records and views:
 * tests/test_store_memory.c. */
#include "memstore_fixture.h"
#include "memstore_stress.h"

TestSuite(store_memory_txn, .init = setup, .fini = teardown);


/* ---- the memory store's sequencer: writers never wait (R-OP-5) ---- */
typedef struct {
    atomic_int phase;
    uint64_t seq;
    const char *user;
    int roll_back;
} seq_race;

/* Another thread: reserve, append, commit (or roll back). */
static void *reserve_later(void *arg)
{
    seq_race *r = arg;
    void *t = NULL;
    cr_assert(st.begin(st.ctx, r->user, &t) == RISK_OK);
    atomic_store(&r->phase, 1);
    cr_assert(add_history(t, r->user, &r->seq) == RISK_OK);
    atomic_store(&r->phase, 2);
    if (r->roll_back)
        st.rollback(st.ctx, t);
    else
        cr_assert(st.commit(st.ctx, t) == RISK_OK);
    atomic_store(&r->phase, 3);
    return NULL;
}

/* Open a txn on "a" holding seq *first, then let "b" reserve, append and
 * commit (or roll back, r->roll_back) on another thread, to the end. */
static void *hold_then_race(uint64_t *first, seq_race *r)
{
    void *t = begin("a");
    cr_assert(add_history(t, "a", first) == RISK_OK);
    pthread_t th;
    cr_assert(pthread_create(&th, NULL, reserve_later, r) == 0);
    pthread_join(th, NULL);
    return t;
}

static seqs feed(const char *user)
{
    seqs s = {0};
    cr_assert(st.read_history(st.ctx, user, 0, collect_seq, &s) == RISK_OK);
    return s;
}

Test(store_memory_txn, later_commit_waits_hidden)
{
    /* R-AU-1, R-OP-5: a second writer reserves and commits while the first
     * is still open (no waiting), but readers do not see its item until the
     * first is done, so the feed never skips N to show N+1 */
    uint64_t first;
    seq_race r = {.user = "b"};
    void *t = hold_then_race(&first, &r); /* it committed without waiting for us */
    cr_assert(r.seq == first + 1);
    cr_assert(feed(NULL).n == 0);
    cr_assert(feed("b").n == 0);
    risk_user *u = NULL; /* its user write is visible: only history waits */
    cr_assert(st.get_user(st.ctx, NULL, "b", &u) == RISK_ENOTFOUND);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    seqs s = feed(NULL);
    cr_assert(s.n == 2 && s.seq[0] == first && s.seq[1] == first + 1);
    s = feed("b");
    cr_assert(s.n == 1 && s.seq[0] == first + 1);
}

Test(store_memory_txn, rolled_back_older_seq_is_a_gap)
{
    /* R-OP-5: the older reservation rolls back after the younger commit:
     * its seq is a gap and the younger item shows */
    uint64_t first;
    seq_race r = {.user = "b"};
    void *t = hold_then_race(&first, &r);
    cr_assert(feed(NULL).n == 0);
    st.rollback(st.ctx, t);
    seqs s = feed(NULL);
    cr_assert(s.n == 1 && s.seq[0] == first + 1);
    cr_assert(feed("a").n == 0);
}

Test(store_memory_txn, one_thread_two_open_reservations)
{
    /* R-CC-1: two open txns of one thread may both reserve (nothing to
     * wait for), commit in either order, and the feed is in seq order */
    void *a = begin("a"), *b = begin("b");
    uint64_t sa, sb;
    cr_assert(add_history(a, "a", &sa) == RISK_OK);
    cr_assert(add_history(b, "b", &sb) == RISK_OK);
    cr_assert(sb == sa + 1);
    cr_assert(st.commit(st.ctx, b) == RISK_OK);
    cr_assert(feed(NULL).n == 0);
    cr_assert(st.commit(st.ctx, a) == RISK_OK);
    seqs s = feed(NULL);
    cr_assert(s.n == 2 && s.seq[0] == sa && s.seq[1] == sb);
}

/* Another thread: open a txn on r->user and reserve its seq, then hand
 * the txn back open (phase 2). */
static void *reserve_and_leave_open(void *arg)
{
    seq_race *r = arg;
    void *t = NULL;
    cr_assert(st.begin(st.ctx, r->user, &t) == RISK_OK);
    cr_assert(add_history(t, r->user, &r->seq) == RISK_OK);
    atomic_store(&r->phase, 2);
    return t;
}

Test(store_memory_txn, reserved_on_one_thread_finished_on_another)
{
    /* R-OP-5: a txn that reserved its seq on a thread that has ended (the
     * sequencer keeps open txns per thread) still holds back the feed
     * until another thread commits it, and a younger seq committed in
     * between shows only then; the same for a rollback */
    for (int roll_back = 0; roll_back < 2; roll_back++) {
        seq_race r = {.user = roll_back ? "c" : "a"};
        pthread_t th;
        void *t = NULL;
        cr_assert(pthread_create(&th, NULL, reserve_and_leave_open, &r) == 0);
        cr_assert(pthread_join(th, &t) == 0 && t != NULL);
        seqs before = feed(NULL);
        void *u = begin("b");
        uint64_t younger;
        cr_assert(add_history(u, "b", &younger) == RISK_OK);
        cr_assert(younger > r.seq);
        cr_assert(st.commit(st.ctx, u) == RISK_OK);
        cr_assert(feed(NULL).n == before.n, "a seq above an open one showed");
        if (roll_back)
            st.rollback(st.ctx, t);
        else
            cr_assert(st.commit(st.ctx, t) == RISK_OK);
        seqs s = feed(NULL);
        cr_assert(s.n == before.n + 2 - roll_back);
        cr_assert(s.seq[s.n - 1] == younger);
        if (!roll_back)
            cr_assert(s.seq[s.n - 2] == r.seq);
    }
}

Test(store_memory_txn, one_user_out_of_order_stays_sorted)
{
    /* R-OP-5: without the engine's per-user lock two txns may append for
     * one user and commit in reverse order; the user's feed stays in seq
     * order */
    void *a = begin("u"), *b = begin("u");
    uint64_t s1, s2, s3;
    cr_assert(add_history(a, "u", &s1) == RISK_OK);
    cr_assert(add_history(b, "u", &s2) == RISK_OK);
    cr_assert(add_history(a, "u", &s3) == RISK_OK);
    cr_assert(st.commit(st.ctx, b) == RISK_OK);
    cr_assert(st.commit(st.ctx, a) == RISK_OK);
    seqs s = feed("u");
    cr_assert(s.n == 3 && s.seq[0] == s1 && s.seq[1] == s2 && s.seq[2] == s3);
    s = feed(NULL);
    cr_assert(s.n == 3 && s.seq[0] == s1 && s.seq[1] == s2 && s.seq[2] == s3);
}

/* ---- the journal's sequencer: the same, with the watermark read out ---- */
/* A keep_history = 0 store, as the journal opens it (items are dropped,
 * read_history is absent; the journal logs history itself and shows only
 * seqs below risk_memstore_visible_seq). */
static risk_memstore *jms;
static void use_journal_mode(void)
{
    st.close(st.ctx);
    cr_assert(risk_memstore_new(&jms, 0) == RISK_OK);
    risk_memstore_table(jms, &st);
}

Test(store_memory_txn, journal_mode_writers_never_wait, .timeout = 10)
{
    /* R-OP-5, R-CC-1: a second writer reserves and commits while the first
     * is open (it would hang here if it waited for the first); the
     * watermark stays at the open seq until that one is done */
    use_journal_mode();
    uint64_t first;
    seq_race r = {.user = "b"};
    void *t = hold_then_race(&first, &r);
    cr_assert(r.seq == first + 1);
    cr_assert(risk_memstore_visible_seq(jms) == first);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    cr_assert(risk_memstore_visible_seq(jms) == first + 2);
}

Test(store_memory_txn, journal_mode_rollback_moves_the_watermark)
{
    /* R-OP-5: an open reservation rolled back is a gap: the watermark moves
     * past it; one thread may hold two open reservations (no self-wait) */
    use_journal_mode();
    void *a = begin("a"), *b = begin("b");
    uint64_t sa, sb;
    cr_assert(add_history(a, "a", &sa) == RISK_OK);
    cr_assert(add_history(b, "b", &sb) == RISK_OK);
    cr_assert(sb == sa + 1);
    cr_assert(st.commit(st.ctx, b) == RISK_OK);
    cr_assert(risk_memstore_visible_seq(jms) == sa);
    st.rollback(st.ctx, a);
    cr_assert(risk_memstore_visible_seq(jms) == sb + 1);
}

/* ---- allocation failures (R-IV-3, R-CC-2) ---- */
static int full_txn(void)
{
    void *t = NULL;
    int rc = st.begin(st.ctx, "pop-1", &t);
    if (rc != RISK_OK)
        return rc;
    risk_user *u = NULL;
    risk_event *e = NULL;
    risk_policy *p = NULL;
    risk_history *h = NULL;
    uint64_t seq = 0;
    /* records are built here too: their ENOMEM counts like the store's */
    if ((rc = st.get_user(st.ctx, t, "pop-1", &u)) != RISK_OK)
        goto out;
    if ((rc = risk_user_set_version(u, risk_user_version(u) + 1)) != RISK_OK ||
        (rc = st.put_user(st.ctx, t, u)) != RISK_OK)
        goto out;
    risk_user_free(u);
    u = NULL;
    if ((rc = risk_user_new(&u, "brand-new")) != RISK_OK ||
        (rc = risk_user_set_version(u, 1)) != RISK_OK || (rc = st.put_user(st.ctx, t, u)) != RISK_OK)
        goto out;
    if ((rc = risk_event_new(&e, "new-ev", "brand-new", "x", RISK_LEVEL_HIGH, 5)) != RISK_OK ||
        (rc = st.put_event(st.ctx, t, e)) != RISK_OK)
        goto out;
    if ((rc = risk_policy_new(&p, "new-pol", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK)) != RISK_OK ||
        (rc = st.put_policy(st.ctx, t, p)) != RISK_OK)
        goto out;
    if ((rc = st.remove_policy(st.ctx, t, "pop-policy")) != RISK_OK)
        goto out;
    if ((rc = st.put_meta(st.ctx, t, "new-meta", (const uint8_t *)"v", 1)) != RISK_OK)
        goto out;
    if ((rc = st.reserve_seq(st.ctx, t, &seq)) != RISK_OK ||
        (rc = risk_history_new(&h, seq, 5, "admin", RISK_HISTORY_INGEST, "brand-new", "new-ev",
                               NULL)) != RISK_OK ||
        (rc = st.append_history(st.ctx, t, h)) != RISK_OK)
        goto out;
out:
    risk_user_free(u);
    risk_event_free(e);
    risk_policy_free(p);
    risk_history_free(h);
    if (rc != RISK_OK) {
        st.rollback(st.ctx, t);
        return rc;
    }
    return st.commit(st.ctx, t);
}

/* What every failed round of an allocation sweep checks: the store is
 * byte for byte as before the round; then the round's store goes. */
static void failed_round(dump *before, int *failures)
{
    dump after = take_dump();
    assert_same(*before, after);
    free(after.b);
    free(before->b);
    st.close(st.ctx);
    (*failures)++;
}

static void sweep(int population)
{
    int rc, failures = 0;
    dump before = {0};
    ALLOC_FAIL_SWEEP(rc,
                     {
                         cr_assert(risk_memory_store_new(&st) == RISK_OK);
                         populate(population);
                         before = take_dump();
                     },
                     full_txn(),
                     failed_round(&before, &failures));
    cr_assert(rc == RISK_OK, "rc %d", rc);
    cr_assert(failures > 20, "only %d allocations could fail", failures);
    dump after = take_dump();
    cr_assert(after.n != before.n || memcmp(after.b, before.b, after.n) != 0);
    cr_assert(level_of("brand-new") == RISK_LEVEL_NONE);
    free(after.b);
    free(before.b);
}

Test(store_memory_txn, alloc_failure_sweep)
{
    /* R-IV-3, R-CC-2: every failed allocation on the put/commit paths gives
     * RISK_ENOMEM, leaves the store byte-identical and leaks nothing */
    st.close(st.ctx);
    sweep(2);
    st.close(st.ctx);
    sweep(6); /* tables sit at their growth threshold: prepare must grow them */
    st.close(st.ctx);
    sweep(13);
}

/* ---- the nodes a txn remembers from its read of a user's events ---- */
typedef struct {
    char ids[64][16];
    int n, closed;
} id_list;

static int collect_id(const risk_event *e, void *arg)
{
    id_list *l = arg;
    snprintf(l->ids[l->n++ % 64], sizeof l->ids[0], "%s", risk_event_id(e));
    l->closed += risk_event_state_get(e) != RISK_EVENT_ACTIVE;
    return 0;
}

static id_list events_of(const char *user)
{
    id_list l = {.n = 0};
    cr_assert(st.user_events(st.ctx, NULL, user, collect_id, &l) == RISK_OK);
    return l;
}

Test(store_memory_txn, remembered_node_replaced_meanwhile)
{
    /* R-ST-5, R-CC-2: a txn reads a user's events (the store remembers
     * their nodes), then another txn replaces one of them by a bigger node
     * (a note) and a third reuses the freed node for a new event of the
     * same user; the first txn's write must go to the event, not to the
     * reused node */
    commit_user("u", 1, RISK_LEVEL_LOW);
    void *t = begin("u");
    cr_assert(put_event(t, "e1", "u", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);

    void *a = begin("u");
    cr_assert(st.user_events(st.ctx, a, "u", COUNTER(risk_event), &(int){0}) == RISK_OK);
    risk_event *closed = mkevent("e1", "u", RISK_LEVEL_LOW);
    cr_assert(risk_event_set_closing(closed, RISK_EVENT_CLOSED, RISK_CLOSE_DISMISSED, 2000,
                                     "admin") == RISK_OK);
    cr_assert(st.put_event(st.ctx, a, closed) == RISK_OK);

    void *b = begin("u");
    risk_event *noted = mkevent("e1", "u", RISK_LEVEL_LOW);
    cr_assert(risk_event_set_note(noted, "a note makes the node bigger") == RISK_OK);
    cr_assert(st.put_event(st.ctx, b, noted) == RISK_OK);
    cr_assert(st.commit(st.ctx, b) == RISK_OK);
    void *c = begin("u");
    cr_assert(put_event(c, "e2", "u", RISK_LEVEL_HIGH) == RISK_OK); /* the freed node's size */
    cr_assert(st.commit(st.ctx, c) == RISK_OK);

    cr_assert(st.commit(st.ctx, a) == RISK_OK);
    risk_event *got = NULL;
    cr_assert(st.get_event(st.ctx, NULL, "e1", &got) == RISK_OK);
    cr_assert(risk_event_state_get(got) == RISK_EVENT_CLOSED);
    cr_assert(risk_event_note(got) == NULL);
    risk_event_free(got);
    cr_assert(st.get_event(st.ctx, NULL, "e2", &got) == RISK_OK);
    cr_assert(risk_event_state_get(got) == RISK_EVENT_ACTIVE);
    cr_assert(risk_event_level(got) == RISK_LEVEL_HIGH);
    risk_event_free(got);
    id_list l = events_of("u");
    cr_assert(l.n == 2);
    cr_assert(strcmp(l.ids[0], l.ids[1]) != 0);
    risk_event_free(closed);
    risk_event_free(noted);
}

Test(store_memory_txn, user_events_past_one_batch)
{
    /* R-ST-5: a user's events are read in batches of TXN_SEEN (32), their
     * ids prefetched per batch, and a txn remembers the nodes of its first
     * batch only: 40 events are all read, newest first, and closing all 40
     * in a txn that read them closes each (remembered node or looked up) */
    commit_user("u", 1, RISK_LEVEL_LOW);
    enum { N = 40 };
    char id[16];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "e%02d", i);
        void *t = begin("u");
        cr_assert(put_event(t, id, "u", RISK_LEVEL_LOW) == RISK_OK);
        cr_assert(st.commit(st.ctx, t) == RISK_OK);
    }
    id_list l = events_of("u");
    cr_assert(l.n == N && l.closed == 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "e%02d", N - 1 - i);
        cr_assert(strcmp(l.ids[i], id) == 0, "%d: %s", i, l.ids[i]);
    }
    void *t = begin("u");
    cr_assert(st.user_events(st.ctx, t, "u", COUNTER(risk_event), &(int){0}) == RISK_OK);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "e%02d", i);
        risk_event *e = mkevent(id, "u", RISK_LEVEL_LOW);
        cr_assert(risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_DISMISSED, 2000,
                                         "admin") == RISK_OK);
        cr_assert(st.put_event(st.ctx, t, e) == RISK_OK);
        risk_event_free(e);
    }
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    l = events_of("u");
    cr_assert(l.n == N && l.closed == N, "%d of %d closed", l.closed, l.n);
}

/* ---- threads ---- */
#define N_THREADS 4
#define N_OPS 500

static atomic_int writers_done;

static void *writer(void *arg)
{
    int w = (int)(intptr_t)arg;
    char uid[16], eid[32];
    snprintf(uid, sizeof uid, "w%d", w);
    for (int i = 0; i < N_OPS; i++) {
        void *t = NULL;
        cr_assert(st.begin(st.ctx, uid, &t) == RISK_OK);
        risk_user *u = NULL;
        int rc = st.get_user(st.ctx, t, uid, &u);
        if (rc == RISK_ENOTFOUND)
            cr_assert(risk_user_new(&u, uid) == RISK_OK);
        else
            cr_assert(rc == RISK_OK);
        cr_assert(risk_user_set_version(u, risk_user_version(u) + 1) == RISK_OK);
        cr_assert(risk_user_set_risk(u, (risk_level)(i % 4), RISK_STATE_NONE, RISK_DETAIL_NONE,
                                     1, risk_user_score(u) + 1, RISK_TIME_NONE, RISK_TIME_NONE,
                                     0) == RISK_OK);
        cr_assert(st.put_user(st.ctx, t, u) == RISK_OK);
        risk_user_free(u);
        snprintf(eid, sizeof eid, "w%d-e%d", w, i);
        cr_assert(put_event(t, eid, uid, RISK_LEVEL_LOW) == RISK_OK);
        cr_assert(add_history(t, uid, NULL) == RISK_OK);
        cr_assert(st.commit(st.ctx, t) == RISK_OK);
    }
    atomic_fetch_add(&writers_done, 1);
    return NULL;
}

typedef struct {
    uint64_t last;
    int bad;
    int n;
} order_check;

static int check_order(const risk_history *h, void *arg)
{
    order_check *c = arg;
    if (risk_history_seq(h) != c->last + 1) /* no gaps: nothing rolls back */
        c->bad = 1;
    c->last = risk_history_seq(h);
    c->n++;
    return 0;
}

static void *reader(void *arg)
{
    (void)arg;
    while (atomic_load(&writers_done) < N_THREADS) {
        order_check c = {0};
        cr_assert(st.read_history(st.ctx, NULL, 0, check_order, &c) == RISK_OK);
        cr_assert(c.bad == 0, "the feed skipped a seq");
        uint64_t score;
        int rc = st.view_user(st.ctx, "w0", view_score_cb, &score);
        cr_assert(rc == RISK_OK || rc == RISK_ENOTFOUND);
        int n = 0;
        cr_assert(st.list_users(st.ctx, RISK_LEVEL_HIGH, COUNTER(risk_user), &n) == RISK_OK);
        cr_assert(n <= N_THREADS);
    }
    return NULL;
}

Test(store_memory_txn, threads_disjoint_users, .timeout = 60)
{
    /* R-CC-1: parallel transactions on different users plus a reader: every
     * commit lands, versions count every write, the feed never skips */
    pthread_t th[N_THREADS + 1];
    atomic_store(&writers_done, 0);
    for (int i = 0; i < N_THREADS; i++)
        cr_assert(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i) == 0);
    cr_assert(pthread_create(&th[N_THREADS], NULL, reader, NULL) == 0);
    for (int i = 0; i <= N_THREADS; i++)
        pthread_join(th[i], NULL);
    char uid[16];
    for (int w = 0; w < N_THREADS; w++) {
        snprintf(uid, sizeof uid, "w%d", w);
        risk_user *u = NULL;
        cr_assert(st.get_user(st.ctx, NULL, uid, &u) == RISK_OK);
        cr_assert(risk_user_version(u) == N_OPS && risk_user_score(u) == N_OPS);
        risk_user_free(u);
        int n = 0;
        cr_assert(st.user_events(st.ctx, NULL, uid, COUNTER(risk_event), &n) == RISK_OK);
        cr_assert(n == N_OPS);
        n = 0;
        cr_assert(st.read_history(st.ctx, uid, 0, COUNTER(risk_history), &n) == RISK_OK);
        cr_assert(n == N_OPS);
    }
    order_check c = {0};
    cr_assert(st.read_history(st.ctx, NULL, 0, check_order, &c) == RISK_OK);
    cr_assert(c.bad == 0 && c.n == N_THREADS * N_OPS);
}

static void *racer(void *arg)
{
    atomic_int *conflicts = arg;
    for (int i = 0; i < 300; i++) {
        for (;;) { /* the engine's retry loop (R-ST-6) */
            void *t = NULL;
            cr_assert(st.begin(st.ctx, "shared", &t) == RISK_OK);
            risk_user *u = NULL;
            cr_assert(st.get_user(st.ctx, t, "shared", &u) == RISK_OK);
            sched_yield(); /* widen the read-to-commit window */
            cr_assert(risk_user_set_version(u, risk_user_version(u) + 1) == RISK_OK);
            cr_assert(risk_user_set_risk(u, RISK_LEVEL_LOW, RISK_STATE_NONE, RISK_DETAIL_NONE, 1,
                                         risk_user_score(u) + 1, RISK_TIME_NONE, RISK_TIME_NONE,
                                         0) == RISK_OK);
            cr_assert(st.put_user(st.ctx, t, u) == RISK_OK);
            risk_user_free(u);
            int rc = st.commit(st.ctx, t);
            if (rc == RISK_OK)
                break;
            cr_assert(rc == RISK_ECONFLICT);
            atomic_fetch_add(conflicts, 1);
        }
    }
    return NULL;
}

Test(store_memory_txn, shared_user_no_lost_update, .timeout = 60)
{
    /* R-ST-6: two "engines" without a common lock update one user; version
     * checks at commit lose no update */
    commit_user("shared", 1, RISK_LEVEL_NONE);
    atomic_int conflicts = 0;
    pthread_t a, b;
    cr_assert(pthread_create(&a, NULL, racer, &conflicts) == 0);
    cr_assert(pthread_create(&b, NULL, racer, &conflicts) == 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    risk_user *u = NULL;
    cr_assert(st.get_user(st.ctx, NULL, "shared", &u) == RISK_OK);
    cr_assert(risk_user_score(u) == 600 && risk_user_version(u) == 601, "score %llu",
              (unsigned long long)risk_user_score(u));
    risk_user_free(u);
}

Test(store_memory_txn, concurrent_removals_second_fails)
{
    /* R-CC-1, R-ST-5: two transactions both removing one policy: the first
     * commits, the second's prepare sees it gone (nothing committed twice) */
    void *t = begin(NULL);
    cr_assert(put_policy(t, "p", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    void *t1 = begin(NULL), *t2 = begin(NULL);
    cr_assert(st.remove_policy(st.ctx, t1, "p") == RISK_OK);
    cr_assert(st.remove_policy(st.ctx, t2, "p") == RISK_OK);
    cr_assert(put_policy(t2, "q", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, t1) == RISK_OK);
    int rc = st.commit(st.ctx, t2);
    cr_assert(rc == RISK_ENOTFOUND || rc == RISK_ECONFLICT, "second commit gave %d", rc);
    int n = 0;
    cr_assert(st.list_policies(st.ctx, NULL, COUNTER(risk_policy), &n) == RISK_OK);
    cr_assert(n == 0, "the failed txn's put of q must not be visible either");
    /* put then remove in one txn is a removal of its own put: commits */
    t = begin(NULL);
    cr_assert(put_policy(t, "r", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.remove_policy(st.ctx, t, "r") == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
}


typedef struct fifo_arg {
    int id;
    atomic_int *order, *pos;
} fifo_arg;

static void *fifo_worker(void *p)
{
    fifo_arg *a = p;
    void *t = begin(NULL);
    uint64_t seq;
    cr_assert(st.reserve_seq(st.ctx, t, &seq) == RISK_OK);
    a->order[atomic_fetch_add(a->pos, 1)] = a->id;
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    return NULL;
}

Test(store_memory_txn, token_wakes_waiters_in_arrival_order, .timeout = 20)
{
    /* R-OP-5: waiting for the token, the oldest waiter is woken alone on
     * each release, so queued waiters get it first come, first served */
    use_journal_mode();
    void *t = begin(NULL);
    uint64_t seq;
    cr_assert(st.reserve_seq(st.ctx, t, &seq) == RISK_OK);
    atomic_int order[4], pos = 0;
    fifo_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (fifo_arg){i, order, &pos};
        cr_assert(pthread_create(&th[i], NULL, fifo_worker, &args[i]) == 0);
        usleep(30000); /* let it queue before the next one arrives */
    }
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        cr_assert(order[i] == i, "waiter %d got the token at %d", order[i], i);
}

/* ---- shards: each under its own lock ---- */
Test(store_memory_txn, shards_under_threads, .timeout = 120)
{
    /* R-CC-1, R-CC-2, R-ST-6: writers commit transactions over users in
     * several shards, move events between users, prepare and apply apart or
     * roll back, add strings a rollback takes out again; readers take a
     * second shard's lock inside a visitor. No deadlock, no lost update,
     * every event in exactly one user's list */
    char why[512] = "";
    cr_assert(mss_run(4, 2, 1500, why, sizeof why) == 0, "%s", why);
}

/* An id "<prefix><n>" whose user shard is (other == 0) or is not (other
 * != 0) the shard of ref. */
static void id_by_shard(char *buf, size_t n, const char *prefix, const char *ref, int other)
{
    unsigned want = ush_idx(hash_str(ref));
    for (unsigned i = 0;; i++) {
        snprintf(buf, n, "%s%u", prefix, i);
        if ((ush_idx(hash_str(buf)) == want) != (other != 0))
            return;
    }
}

static const char *owner_of(const char *event_id)
{
    static char owner[64];
    risk_event *e = NULL;
    cr_assert(st.get_event(st.ctx, NULL, event_id, &e) == RISK_OK);
    snprintf(owner, sizeof owner, "%s", risk_event_user_id(e));
    risk_event_free(e);
    return owner;
}

Test(store_memory_txn, event_moves_to_a_user_of_another_shard)
{
    /* R-ST-5, R-CC-1: a put of an event another user owns moves it: the
     * old owner, in another shard than the new one, loses it from its
     * list (its shard is found and locked under the events shard's lock),
     * in one commit and in two phases alike */
    char b[32], c[32];
    id_by_shard(b, sizeof b, "b-", "a", 1);
    id_by_shard(c, sizeof c, "c-", b, 1);
    void *t = begin("a");
    cr_assert(put_event(t, "e", "a", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    t = begin(b);
    cr_assert(put_event(t, "e", b, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    cr_assert(events_of("a").n == 0 && events_of(b).n == 1);
    cr_assert(strcmp(owner_of("e"), b) == 0);
    t = begin(c);
    cr_assert(put_event(t, "e", c, RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, t) == RISK_OK);
    risk_memstore_apply(st.ctx, t);
    cr_assert(events_of(b).n == 0 && events_of(c).n == 1);
    cr_assert(strcmp(owner_of("e"), c) == 0);
}

static risk_event *at_location(const char *id, const char *user, const char *loc)
{
    risk_event *e = mkevent(id, user, RISK_LEVEL_LOW);
    cr_assert(risk_event_set_location(e, loc) == RISK_OK);
    return e;
}

Test(store_memory_txn, new_string_survives_a_rollback_that_shared_it)
{
    /* R-CC-2, R-IV-3: two prepared txns use a string neither store had; the
     * one that added it rolls back, the other commits: the string stays
     * (the second made it shared). Alone, a prepared-then-rolled-back
     * txn takes its new string out again: blocks as before */
    risk_event *e1 = at_location("e1", "u1", "Atlantis"), *e2 = at_location("e2", "u2", "Atlantis");
    void *a = begin("u1"), *b = begin("u2");
    cr_assert(st.put_event(st.ctx, a, e1) == RISK_OK);
    cr_assert(st.put_event(st.ctx, b, e2) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, a) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, b) == RISK_OK);
    st.rollback(st.ctx, a);
    risk_memstore_apply(st.ctx, b);
    risk_event *got = NULL;
    cr_assert(st.get_event(st.ctx, NULL, "e2", &got) == RISK_OK);
    cr_assert(strcmp(risk_event_location(got), "Atlantis") == 0);
    risk_event_free(got);
    cr_assert(st.get_event(st.ctx, NULL, "e1", &got) == RISK_ENOTFOUND);

    alloc_fail_install(0);
    long live = alloc_fail_live();
    risk_event *e3 = at_location("e3", "u1", "Lemuria");
    void *c = begin("u1");
    cr_assert(st.put_event(st.ctx, c, e3) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, c) == RISK_OK);
    st.rollback(st.ctx, c);
    risk_event_free(e3);
    cr_assert(alloc_fail_live() == live, "live blocks %ld, before %ld", alloc_fail_live(), live);
    /* the string was taken out: used again, it is added again */
    e3 = at_location("e3", "u1", "Lemuria");
    c = begin("u1");
    cr_assert(st.put_event(st.ctx, c, e3) == RISK_OK);
    cr_assert(st.commit(st.ctx, c) == RISK_OK);
    cr_assert(st.get_event(st.ctx, NULL, "e3", &got) == RISK_OK);
    cr_assert(strcmp(risk_event_location(got), "Lemuria") == 0);
    risk_event_free(got);
    risk_event_free(e1);
    risk_event_free(e2);
    risk_event_free(e3);
}

Test(store_memory_txn, txn_over_many_shards_is_atomic)
{
    /* R-CC-2, R-ST-6: a txn writing users and events in many shards, a
     * policy and meta takes every shard's lock; a conflict on one user (a
     * prepared txn claims it) fails it with nothing visible; once the
     * claim is gone it commits whole */
    populate(6);
    dump before = take_dump();
    char uid[16][32], eid[32];
    void *t = begin(NULL);
    for (int i = 0; i < 16; i++) {
        snprintf(uid[i], sizeof uid[i], "many-%d", i);
        cr_assert(put_user(t, uid[i], 1, RISK_LEVEL_LOW) == RISK_OK);
        snprintf(eid, sizeof eid, "many-ev-%d", i);
        cr_assert(put_event(t, eid, uid[i], RISK_LEVEL_LOW) == RISK_OK);
        cr_assert(add_history(t, uid[i], NULL) == RISK_OK);
    }
    cr_assert(put_policy(t, "many-pol", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(st.put_meta(st.ctx, t, "many-meta", (const uint8_t *)"x", 1) == RISK_OK);
    void *claim = begin(uid[9]);
    cr_assert(put_user(claim, uid[9], 1, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, claim) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, t) == RISK_ECONFLICT);
    dump mid = take_dump();
    assert_same(before, mid);
    st.rollback(st.ctx, claim);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    for (int i = 0; i < 16; i++) {
        cr_assert(level_of(uid[i]) == RISK_LEVEL_LOW);
        cr_assert(events_of(uid[i]).n == 1);
    }
    free(before.b);
    free(mid.b);
}

/* A txn that read u's events and closes them all, one of them moved to a
 * location no event had before (a string to add). */
static int close_all_read(const char *u, int n)
{
    void *t = NULL;
    int rc = st.begin(st.ctx, u, &t);
    if (rc != RISK_OK)
        return rc;
    if ((rc = st.user_events(st.ctx, t, u, COUNTER(risk_event), &(int){0})) != RISK_OK) {
        st.rollback(st.ctx, t);
        return rc;
    }
    for (int i = 0; i < n && rc == RISK_OK; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i);
        risk_event *e = NULL;
        rc = risk_event_new(&e, id, u, "leakedCredentials", RISK_LEVEL_LOW, 1000);
        if (rc == RISK_OK)
            rc = risk_event_set_ip(e, "10.0.0.1");
        if (rc == RISK_OK)
            rc = risk_event_set_location(e, i == 1 ? "Ultima Thule" : "Berlin, DE");
        if (rc == RISK_OK)
            rc = risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_DISMISSED, 2000 + i,
                                        "admin");
        if (rc == RISK_OK)
            rc = st.put_event(st.ctx, t, e);
        risk_event_free(e);
    }
    if (rc != RISK_OK) {
        st.rollback(st.ctx, t);
        return rc;
    }
    return st.commit(st.ctx, t);
}

Test(store_memory_txn, closing_read_events_in_place)
{
    /* R-DI-1, R-IV-3, R-CC-2: a txn that read a user's events closes them
     * in place (no node of its own, under the user's shard lock alone):
     * every field it wrote is stored, strings it did not change keep
     * theirs; every allocation that fails on the way (a new location
     * string) leaves the store as it was and leaks nothing */
    enum { N = 4 };
    int rc, failures = 0;
    dump before = {0};
    st.close(st.ctx); /* the fixture's: each round makes its own */
    ALLOC_FAIL_SWEEP(rc,
                     {
                         cr_assert(risk_memory_store_new(&st) == RISK_OK);
                         commit_user("u", 1, RISK_LEVEL_LOW);
                         for (int i = 0; i < N; i++) {
                             char id[16];
                             snprintf(id, sizeof id, "c%d", i);
                             risk_event *e = mkevent(id, "u", RISK_LEVEL_LOW);
                             cr_assert(risk_event_set_ip(e, "10.0.0.2") == RISK_OK);
                             cr_assert(risk_event_set_location(e, "Berlin, DE") == RISK_OK);
                             void *t = begin("u");
                             cr_assert(st.put_event(st.ctx, t, e) == RISK_OK);
                             cr_assert(st.commit(st.ctx, t) == RISK_OK);
                             risk_event_free(e);
                         }
                         before = take_dump();
                     },
                     close_all_read("u", N),
                     failed_round(&before, &failures));
    cr_assert(rc == RISK_OK, "rc %d", rc);
    cr_assert(failures > 0);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i);
        risk_event *e = NULL;
        cr_assert(st.get_event(st.ctx, NULL, id, &e) == RISK_OK);
        cr_assert(risk_event_state_get(e) == RISK_EVENT_CLOSED);
        cr_assert(risk_event_close_reason(e) == RISK_CLOSE_DISMISSED);
        cr_assert(risk_event_closed_at(e) == 2000 + i);
        cr_assert(strcmp(risk_event_closed_by(e), "admin") == 0);
        cr_assert(strcmp(risk_event_ip(e), "10.0.0.1") == 0);
        cr_assert(strcmp(risk_event_location(e), i == 1 ? "Ultima Thule" : "Berlin, DE") == 0);
        risk_event_free(e);
    }
    free(before.b);
}

/* get_event of id in txn t: absent (the engine's read before it creates). */
static void read_absent(void *t, const char *id)
{
    risk_event *e = NULL;
    cr_assert(st.get_event(st.ctx, t, id, &e) == RISK_ENOTFOUND);
}

Test(store_memory_txn, two_users_creating_one_event_id_conflict)
{
    /* R-OP-1, R-CC-2, R-ST-6: two txns, of two users, both find event X
     * absent and create it. The second to commit must not take the
     * first one's event for its own user (a put of an event another user
     * owns moves it): RISK_ECONFLICT, and the engine's retry then finds
     * the id taken. In one commit, and in two phases (the journal's: the
     * second prepares while the first is prepared, not applied). */
    void *a = begin("alice"), *b = begin("bob");
    read_absent(a, "X");
    read_absent(b, "X");
    cr_assert(put_event(b, "X", "bob", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(st.commit(st.ctx, b) == RISK_OK);
    cr_assert(put_event(a, "X", "alice", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert_eq(st.commit(st.ctx, a), RISK_ECONFLICT);
    cr_assert(strcmp(owner_of("X"), "bob") == 0);
    cr_assert(events_of("alice").n == 0 && events_of("bob").n == 1);

    a = begin("alice"), b = begin("bob");
    read_absent(a, "Y");
    read_absent(b, "Y");
    cr_assert(put_event(a, "Y", "alice", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(put_event(b, "Y", "bob", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, a) == RISK_OK);
    cr_assert_eq(risk_memstore_prepare(st.ctx, b), RISK_ECONFLICT);
    st.rollback(st.ctx, b);
    b = begin("bob"); /* nor in one commit, while a's creation is pending */
    read_absent(b, "Y");
    cr_assert(put_event(b, "Y", "bob", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert_eq(st.commit(st.ctx, b), RISK_ECONFLICT);
    risk_memstore_apply(st.ctx, a);
    cr_assert(strcmp(owner_of("Y"), "alice") == 0);
    /* the prepared creation is gone from the pending ones once applied
     * (and once rolled back): a later txn is not refused for it */
    b = begin("bob");
    read_absent(b, "Z");
    cr_assert(put_event(b, "Z", "bob", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, b) == RISK_OK);
    st.rollback(st.ctx, b);
    a = begin("alice");
    read_absent(a, "Z");
    cr_assert(put_event(a, "Z", "alice", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, a) == RISK_OK);
    risk_memstore_apply(st.ctx, a);
    cr_assert(strcmp(owner_of("Z"), "alice") == 0);
    /* a put without a read is still an upsert, and may move the event */
    b = begin("bob");
    cr_assert(put_event(b, "Z", "bob", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, b) == RISK_OK);
    cr_assert(strcmp(owner_of("Z"), "bob") == 0);
}

Test(store_memory_txn, many_prepared_creations_in_one_shard)
{
    /* R-CC-2: more prepared creations in one events shard than its inline
     * pending slots: each is still seen by a second creation of its id */
    enum { N = 7 };
    char ids[N][32], users[N][32];
    unsigned want = esh_idx(hash_str("pend-0"));
    for (int i = 0, k = 0; i < N; k++) {
        snprintf(ids[i], sizeof ids[i], "pend-%d", k);
        if (esh_idx(hash_str(ids[i])) == want) {
            snprintf(users[i], sizeof users[i], "pu-%d", i);
            i++;
        }
    }
    void *t[N];
    for (int i = 0; i < N; i++) {
        t[i] = begin(users[i]);
        read_absent(t[i], ids[i]);
        cr_assert(put_event(t[i], ids[i], users[i], RISK_LEVEL_LOW) == RISK_OK);
        cr_assert(risk_memstore_prepare(st.ctx, t[i]) == RISK_OK, "%d", i);
    }
    for (int i = 0; i < N; i++) {
        void *x = begin("other");
        read_absent(x, ids[i]);
        cr_assert(put_event(x, ids[i], "other", RISK_LEVEL_LOW) == RISK_OK);
        cr_assert_eq(risk_memstore_prepare(st.ctx, x), RISK_ECONFLICT, "%d", i);
        st.rollback(st.ctx, x);
    }
    for (int i = 0; i < N; i++)
        if (i % 2)
            st.rollback(st.ctx, t[i]);
        else
            risk_memstore_apply(st.ctx, t[i]);
    for (int i = 0; i < N; i++) {
        risk_event *e = NULL;
        int rc = st.get_event(st.ctx, NULL, ids[i], &e);
        cr_assert_eq(rc, i % 2 ? RISK_ENOTFOUND : RISK_OK, "%d", i);
        if (rc == RISK_OK)
            cr_assert(strcmp(risk_event_user_id(e), users[i]) == 0);
        risk_event_free(e);
    }
}
