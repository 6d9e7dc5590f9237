/* Tests of the in-memory store (lib/store_memory*.c) through its callback
 * table: records, views of the compact layout, history, levels, the
 * internal API the journal wraps, bulk loading. Transactions, sequencing,
 * threads and memory failures: tests/test_store_memory_txn.c. */
#include "memstore_fixture.h"

TestSuite(store_memory, .init = setup, .fini = teardown);

/* ---- construction ---- */
Test(store_memory, table_is_complete)
{
    /* R-ST-5, R-ST-1, R-ST-4: the public callback table, optional ones set
     * except compact/backup */
    cr_assert(st.version == RISK_STORE_VERSION);
    cr_assert(st.ctx != NULL);
    void (*const req[])(void) = {
        (void (*)(void))st.begin,          (void (*)(void))st.commit,
        (void (*)(void))st.rollback,       (void (*)(void))st.get_user,
        (void (*)(void))st.put_user,       (void (*)(void))st.get_event,
        (void (*)(void))st.put_event,      (void (*)(void))st.user_events,
        (void (*)(void))st.reserve_seq,    (void (*)(void))st.append_history,
        (void (*)(void))st.list_policies,  (void (*)(void))st.put_policy,
        (void (*)(void))st.remove_policy,  (void (*)(void))st.get_meta,
        (void (*)(void))st.put_meta,       (void (*)(void))st.close,
        (void (*)(void))st.view_user,      (void (*)(void))st.list_users,
        (void (*)(void))st.read_history,
    };
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
        cr_assert(req[i] != NULL, "callback %zu is NULL", i);
    cr_assert(st.compact == NULL && st.backup == NULL);
    cr_assert(risk_memory_store_new(NULL) == RISK_EINVAL); /* R-IV-1 */
}

/* ---- CRUD ---- */
Test(store_memory, user_crud)
{
    /* R-ST-5, R-ST-2: put/get/view through the table; get returns an owned copy */
    risk_user *u = NULL;
    cr_assert(st.get_user(st.ctx, NULL, "alice", &u) == RISK_ENOTFOUND);
    uint64_t score = 0;
    cr_assert(st.view_user(st.ctx, "alice", view_score_cb, &score) == RISK_ENOTFOUND);
    commit_user("alice", 1, RISK_LEVEL_MEDIUM);
    cr_assert(st.get_user(st.ctx, NULL, "alice", &u) == RISK_OK);
    cr_assert(eq(str, (char *)risk_user_id(u), "alice"));
    cr_assert(risk_user_version(u) == 1);
    cr_assert(risk_user_risk_level(u) == RISK_LEVEL_MEDIUM);
    cr_assert(risk_user_set_deleted(u, 1) == RISK_OK); /* the copy is ours */
    risk_user_free(u);
    cr_assert(st.view_user(st.ctx, "alice", view_score_cb, &score) == RISK_OK);
    cr_assert(score == 20);
    commit_user("alice", 2, RISK_LEVEL_HIGH);
    cr_assert(st.get_user(st.ctx, NULL, "alice", &u) == RISK_OK);
    cr_assert(risk_user_version(u) == 2 && !risk_user_deleted(u));
    risk_user_free(u);
    /* R-IV-1 */
    void *t = begin("x");
    cr_assert(put_user(t, "x", 0, RISK_LEVEL_NONE) == RISK_EINVAL);
    cr_assert(st.put_user(st.ctx, t, NULL) == RISK_EINVAL);
    st.rollback(st.ctx, t);
}


Test(store_memory, events_per_user)
{
    /* R-ST-5, R-OP-5: user_events visits exactly the user's events; put replaces by id */
    void *t = begin("a");
    cr_assert(put_event(t, "e1", "a", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(put_event(t, "e2", "a", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_event(t, "e3", "b", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    idset s = {0};
    cr_assert(st.user_events(st.ctx, NULL, "a", collect_event, &s) == RISK_OK);
    cr_assert(s.n == 2 && has_id(&s, "e1") && has_id(&s, "e2"));
    memset(&s, 0, sizeof s);
    cr_assert(st.user_events(st.ctx, NULL, "nobody", collect_event, &s) == RISK_OK);
    cr_assert(s.n == 0);
    t = begin("a");
    cr_assert(put_event(t, "e1", "a", RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    risk_event *e = NULL;
    cr_assert(st.get_event(st.ctx, NULL, "e1", &e) == RISK_OK);
    cr_assert(risk_event_level(e) == RISK_LEVEL_MEDIUM);
    risk_event_free(e);
    cr_assert(st.get_event(st.ctx, NULL, "zz", &e) == RISK_ENOTFOUND);
    memset(&s, 0, sizeof s);
    cr_assert(st.user_events(st.ctx, NULL, "a", collect_event, &s) == RISK_OK);
    cr_assert(s.n == 2);
    int n = 0;
    cr_assert(st.user_events(st.ctx, NULL, "a", COUNTER(risk_event), &n) == RISK_OK);
    cr_assert(n == 2);
}

static int stop_cb(const risk_event *e, void *arg)
{
    (void)e;
    (*(int *)arg)++;
    return 7;
}

Test(store_memory, visit_stops)
{
    /* R-ST-1: a visitor's non-zero value stops the visit and is returned */
    void *t = begin("a");
    cr_assert(put_event(t, "e1", "a", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(put_event(t, "e2", "a", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    int n = 0;
    cr_assert(st.user_events(st.ctx, NULL, "a", stop_cb, &n) == 7);
    cr_assert(n == 1);
}

static int collect_policy(const risk_policy *p, void *arg)
{
    idset *s = arg;
    snprintf(s->ids[s->n++], 32, "%s", risk_policy_name(p));
    return 0;
}

Test(store_memory, policies)
{
    /* R-ST-5, R-OP-6: put, replace, list, remove; missing → ENOTFOUND */
    void *t = begin(NULL);
    cr_assert(put_policy(t, "p1", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_policy(t, "p2", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    t = begin(NULL);
    cr_assert(put_policy(t, "p1", RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(st.remove_policy(st.ctx, t, "p2") == RISK_OK);
    cr_assert(st.remove_policy(st.ctx, t, "p2") == RISK_ENOTFOUND); /* already removed in txn */
    cr_assert(st.remove_policy(st.ctx, t, "nope") == RISK_ENOTFOUND);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    idset s = {0};
    cr_assert(st.list_policies(st.ctx, NULL, collect_policy, &s) == RISK_OK);
    cr_assert(s.n == 1 && has_id(&s, "p1"));
    t = begin(NULL);
    cr_assert(st.remove_policy(st.ctx, t, "p1") == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    memset(&s, 0, sizeof s);
    cr_assert(st.list_policies(st.ctx, NULL, collect_policy, &s) == RISK_OK);
    cr_assert(s.n == 0);
}

Test(store_memory, meta)
{
    /* R-ST-5: small named values; ENOTFOUND, ERANGE with the needed length */
    uint8_t buf[300];
    size_t len = 0;
    void *t = begin(NULL);
    cr_assert(st.get_meta(st.ctx, t, "k", buf, sizeof buf, &len) == RISK_ENOTFOUND);
    cr_assert(st.put_meta(st.ctx, t, "k", (const uint8_t *)"hello", 5) == RISK_OK);
    cr_assert(st.put_meta(st.ctx, t, "big", buf, 257) == RISK_EINVAL); /* R-IV-1 */
    cr_assert(st.put_meta(st.ctx, t, "", buf, 1) == RISK_EINVAL);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    cr_assert(st.get_meta(st.ctx, NULL, "k", buf, 2, &len) == RISK_ERANGE);
    cr_assert(len == 5);
    cr_assert(st.get_meta(st.ctx, NULL, "k", buf, sizeof buf, &len) == RISK_OK);
    cr_assert(len == 5 && memcmp(buf, "hello", 5) == 0);
    memset(buf, 0xab, 256);
    t = begin(NULL);
    cr_assert(st.put_meta(st.ctx, t, "k", buf, 256) == RISK_OK);
    cr_assert(st.put_meta(st.ctx, t, "empty", NULL, 0) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    uint8_t out[256];
    cr_assert(st.get_meta(st.ctx, NULL, "k", out, sizeof out, &len) == RISK_OK);
    cr_assert(len == 256 && memcmp(out, buf, 256) == 0);
    cr_assert(st.get_meta(st.ctx, NULL, "empty", NULL, 0, &len) == RISK_OK);
    cr_assert(len == 0);
}

/* ---- isolation ---- */
Test(store_memory, uncommitted_invisible)
{
    /* R-CC-1, R-ST-2: writes of an open txn are invisible to view_user and
     * to other transactions until commit */
    commit_user("u", 1, RISK_LEVEL_LOW);
    void *t1 = begin("u");
    cr_assert(put_user(t1, "u", 2, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_user(t1, "new", 1, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_event(t1, "ev", "u", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_policy(t1, "pol", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(st.put_meta(st.ctx, t1, "m", (const uint8_t *)"x", 1) == RISK_OK);
    uint64_t score = 0;
    cr_assert(st.view_user(st.ctx, "u", view_score_cb, &score) == RISK_OK);
    cr_assert(score == 10);
    cr_assert(st.view_user(st.ctx, "new", view_score_cb, &score) == RISK_ENOTFOUND);
    void *t2 = begin("u");
    risk_user *u = NULL;
    cr_assert(st.get_user(st.ctx, t2, "u", &u) == RISK_OK);
    cr_assert(risk_user_version(u) == 1);
    risk_user_free(u);
    cr_assert(st.get_user(st.ctx, t2, "new", &u) == RISK_ENOTFOUND);
    risk_event *e = NULL;
    cr_assert(st.get_event(st.ctx, t2, "ev", &e) == RISK_ENOTFOUND);
    int n = 0;
    cr_assert(st.user_events(st.ctx, t2, "u", COUNTER(risk_event), &n) == RISK_OK);
    cr_assert(n == 0);
    cr_assert(st.list_policies(st.ctx, t2, COUNTER(risk_policy), &n) == RISK_OK);
    cr_assert(n == 0);
    size_t len;
    uint8_t b[4];
    cr_assert(st.get_meta(st.ctx, t2, "m", b, sizeof b, &len) == RISK_ENOTFOUND);
    n = 0;
    cr_assert(st.list_users(st.ctx, RISK_LEVEL_NONE, COUNTER(risk_user), &n) == RISK_OK);
    cr_assert(n == 1);
    st.rollback(st.ctx, t2);
    cr_assert(st.commit(st.ctx, t1) == RISK_OK);
    cr_assert(st.view_user(st.ctx, "u", view_score_cb, &score) == RISK_OK);
    cr_assert(score == 30);
    cr_assert(st.view_user(st.ctx, "new", view_score_cb, &score) == RISK_OK);
}

Test(store_memory, read_your_writes)
{
    /* R-ST-2: inside a txn, reads see the txn's own buffered writes */
    commit_user("u", 1, RISK_LEVEL_LOW);
    void *t = begin("u");
    cr_assert(put_event(t, "c1", "u", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    void *pt = begin(NULL);
    cr_assert(put_policy(pt, "keep", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(put_policy(pt, "drop", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, pt) == RISK_OK);

    t = begin("u");
    cr_assert(put_user(t, "u", 2, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_event(t, "c1", "u", RISK_LEVEL_HIGH) == RISK_OK); /* replaces committed */
    cr_assert(put_event(t, "c2", "u", RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(put_policy(t, "added", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(st.remove_policy(st.ctx, t, "drop") == RISK_OK);
    cr_assert(st.put_meta(st.ctx, t, "m", (const uint8_t *)"yz", 2) == RISK_OK);
    risk_user *u = NULL;
    cr_assert(st.get_user(st.ctx, t, "u", &u) == RISK_OK);
    cr_assert(risk_user_version(u) == 2 && risk_user_risk_level(u) == RISK_LEVEL_HIGH);
    risk_user_free(u);
    risk_event *e = NULL;
    cr_assert(st.get_event(st.ctx, t, "c1", &e) == RISK_OK);
    cr_assert(risk_event_level(e) == RISK_LEVEL_HIGH);
    risk_event_free(e);
    idset s = {0};
    cr_assert(st.user_events(st.ctx, t, "u", collect_event, &s) == RISK_OK);
    cr_assert(s.n == 2 && has_id(&s, "c1") && has_id(&s, "c2"), "saw %d events", s.n);
    memset(&s, 0, sizeof s);
    cr_assert(st.list_policies(st.ctx, t, collect_policy, &s) == RISK_OK);
    cr_assert(s.n == 2 && has_id(&s, "keep") && has_id(&s, "added"));
    uint8_t b[4];
    size_t len = 0;
    cr_assert(st.get_meta(st.ctx, t, "m", b, sizeof b, &len) == RISK_OK);
    cr_assert(len == 2 && memcmp(b, "yz", 2) == 0);
    st.rollback(st.ctx, t);
    cr_assert(level_of("u") == RISK_LEVEL_LOW);
}

/* ---- rollback and failed commits leave the store exactly as it was ---- */
static void big_txn(void *t)
{
    cr_assert(put_user(t, "pop-1", 2, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_user(t, "fresh", 1, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_event(t, "pop-ev-1", "pop-1", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(put_event(t, "fresh-ev", "fresh", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(put_event(t, "orphan-ev", "ghost", RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(put_policy(t, "pop-policy", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_policy(t, "other", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(add_history(t, "pop-1", NULL) == RISK_OK);
    cr_assert(add_history(t, "ghost", NULL) == RISK_OK);
}

Test(store_memory, rollback_restores_exactly)
{
    /* R-CC-2: rollback discards every write; the dump is byte-identical */
    populate(10);
    dump before = take_dump();
    void *t = begin(NULL);
    big_txn(t);
    st.rollback(st.ctx, t);
    dump after = take_dump();
    assert_same(before, after);
    cr_assert(st.view_user(st.ctx, "fresh", view_score_cb, &(uint64_t){0}) == RISK_ENOTFOUND);
    /* prepared, then rolled back (the journal's failure path) */
    t = begin(NULL);
    big_txn(t);
    cr_assert(risk_memstore_prepare(st.ctx, t) == RISK_OK);
    st.rollback(st.ctx, t);
    dump after2 = take_dump();
    assert_same(before, after2);
    /* the same txn commits fine afterwards, and the dump changes */
    t = begin(NULL);
    big_txn(t);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    dump after3 = take_dump();
    cr_assert(after3.n != before.n || memcmp(after3.b, before.b, before.n) != 0);
    free(before.b);
    free(after.b);
    free(after2.b);
    free(after3.b);
}

/* ---- versions (R-ST-6) ---- */
Test(store_memory, version_conflict)
{
    /* R-ST-6: a commit whose user version is not committed+1 fails with
     * RISK_ECONFLICT and applies nothing of the txn */
    commit_user("u", 1, RISK_LEVEL_LOW);
    populate(2);
    void *a = begin("u"), *b = begin("u");
    cr_assert(put_user(a, "u", 2, RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(put_user(b, "u", 2, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_event(b, "b-ev", "u", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_policy(b, "b-pol", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(add_history(b, "u", NULL) == RISK_OK);
    cr_assert(st.commit(st.ctx, a) == RISK_OK);
    dump before = take_dump();
    cr_assert(st.commit(st.ctx, b) == RISK_ECONFLICT);
    dump after = take_dump();
    assert_same(before, after);
    cr_assert(level_of("u") == RISK_LEVEL_MEDIUM);
    risk_event *e = NULL;
    cr_assert(st.get_event(st.ctx, NULL, "b-ev", &e) == RISK_ENOTFOUND);
    /* a new user must come with version 1 */
    void *c = begin("n");
    cr_assert(put_user(c, "n", 2, RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, c) == RISK_ECONFLICT);
    c = begin("u");
    cr_assert(put_user(c, "u", 3, RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(st.commit(st.ctx, c) == RISK_OK);
    free(before.b);
    free(after.b);
}

Test(store_memory, prepared_claims_conflict)
{
    /* R-ST-6: between prepare and apply (journal write), a second txn on the
     * same user conflicts at prepare; different users proceed */
    commit_user("u", 1, RISK_LEVEL_LOW);
    risk_memstore *ms = st.ctx;
    void *a = begin("u"), *b = begin("u"), *c = begin("v");
    cr_assert(put_user(a, "u", 2, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_user(b, "u", 2, RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(put_user(c, "v", 1, RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(risk_memstore_prepare(ms, a) == RISK_OK);
    cr_assert(risk_memstore_prepare(ms, b) == RISK_ECONFLICT);
    cr_assert(risk_memstore_prepare(ms, c) == RISK_OK);
    uint64_t score = 0;
    cr_assert(st.view_user(st.ctx, "u", view_score_cb, &score) == RISK_OK);
    cr_assert(score == 10); /* prepared is not visible */
    cr_assert(st.view_user(st.ctx, "v", view_score_cb, &score) == RISK_ENOTFOUND);
    st.rollback(st.ctx, b);
    risk_memstore_apply(ms, c);
    risk_memstore_apply(ms, a);
    cr_assert(level_of("u") == RISK_LEVEL_HIGH);
    cr_assert(level_of("v") == RISK_LEVEL_MEDIUM);
}

/* ---- history ---- */

Test(store_memory, history_order_filter_since)
{
    /* R-OP-5, R-AU-1: seqs strictly increase from 1; read_history is in seq
     * order, filtered by user, from since_seq on; rolled-back seqs are gaps */
    uint64_t s1, s2, s3, s4, s5;
    void *t = begin("a");
    cr_assert(add_history(t, "a", &s1) == RISK_OK);
    cr_assert(add_history(t, "a", &s2) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    cr_assert(s1 == 1 && s2 == 2);
    t = begin("b");
    cr_assert(add_history(t, "b", &s3) == RISK_OK);
    st.rollback(st.ctx, t);
    t = begin("b");
    cr_assert(add_history(t, "b", &s3) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    cr_assert(s3 == 4);
    t = begin(NULL);
    cr_assert(add_history(t, NULL, &s4) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    t = begin("a");
    cr_assert(add_history(t, "a", &s5) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    cr_assert(s4 == 5 && s5 == 6);

    seqs all = {0}, a = {0}, since = {0}, asince = {0}, none = {0};
    cr_assert(st.read_history(st.ctx, NULL, 0, collect_seq, &all) == RISK_OK);
    cr_assert(all.n == 5);
    uint64_t want[] = {1, 2, 4, 5, 6};
    for (int i = 0; i < 5; i++)
        cr_assert(all.seq[i] == want[i], "item %d has seq %llu", i, (unsigned long long)all.seq[i]);
    cr_assert(st.read_history(st.ctx, "a", 0, collect_seq, &a) == RISK_OK);
    cr_assert(a.n == 3 && a.seq[0] == 1 && a.seq[1] == 2 && a.seq[2] == 6);
    cr_assert(st.read_history(st.ctx, NULL, 3, collect_seq, &since) == RISK_OK);
    cr_assert(since.n == 3 && since.seq[0] == 4);
    cr_assert(st.read_history(st.ctx, "a", 2, collect_seq, &asince) == RISK_OK);
    cr_assert(asince.n == 2 && asince.seq[0] == 2 && asince.seq[1] == 6);
    cr_assert(st.read_history(st.ctx, "ghost", 0, collect_seq, &none) == RISK_OK);
    cr_assert(none.n == 0);
    cr_assert(risk_memstore_next_seq(st.ctx) == 7);
}

Test(store_memory, history_many_chunks)
{
    /* R-OP-5: more items than one read chunk, in order, per user too */
    void *t = begin("a");
    for (int i = 0; i < 200; i++)
        cr_assert(add_history(t, i % 2 ? "a" : "b", NULL) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    int n = 0;
    cr_assert(st.read_history(st.ctx, NULL, 0, COUNTER(risk_history), &n) == RISK_OK);
    cr_assert(n == 200);
    n = 0;
    cr_assert(st.read_history(st.ctx, "a", 0, COUNTER(risk_history), &n) == RISK_OK);
    cr_assert(n == 100);
    n = 0;
    cr_assert(st.read_history(st.ctx, NULL, 150, COUNTER(risk_history), &n) == RISK_OK);
    cr_assert(n == 51);
}

Test(store_memory, append_needs_reserved_seq)
{
    /* R-IV-1: an item whose seq this txn did not reserve is refused */
    void *t = begin("a");
    risk_history *h = NULL;
    cr_assert(risk_history_new(&h, 5, 1000, "admin", RISK_HISTORY_INGEST, "a", NULL, NULL) ==
              RISK_OK);
    cr_assert(st.append_history(st.ctx, t, h) == RISK_EINVAL);
    uint64_t seq;
    cr_assert(st.reserve_seq(st.ctx, t, &seq) == RISK_OK);
    cr_assert(risk_history_set_seq(h, seq) == RISK_OK);
    cr_assert(st.append_history(st.ctx, t, h) == RISK_OK);
    cr_assert(st.append_history(st.ctx, t, h) == RISK_EINVAL); /* twice */
    risk_history_free(h);
    st.rollback(st.ctx, t);
}

/* ---- list_users by level ---- */
static int collect_user(const risk_user *u, void *arg)
{
    idset *s = arg;
    cr_assert(s->n < 16);
    snprintf(s->ids[s->n++], 32, "%s", risk_user_id(u));
    return 0;
}

Test(store_memory, list_users_by_level)
{
    /* R-OP-5: users at or above a level; a level change moves the user */
    commit_user("n", 1, RISK_LEVEL_NONE);
    commit_user("l", 1, RISK_LEVEL_LOW);
    commit_user("m", 1, RISK_LEVEL_MEDIUM);
    commit_user("h", 1, RISK_LEVEL_HIGH);
    idset s = {0};
    cr_assert(st.list_users(st.ctx, RISK_LEVEL_HIGH, collect_user, &s) == RISK_OK);
    cr_assert(s.n == 1 && has_id(&s, "h"));
    memset(&s, 0, sizeof s);
    cr_assert(st.list_users(st.ctx, RISK_LEVEL_MEDIUM, collect_user, &s) == RISK_OK);
    cr_assert(s.n == 2 && has_id(&s, "m") && has_id(&s, "h"));
    memset(&s, 0, sizeof s);
    cr_assert(st.list_users(st.ctx, RISK_LEVEL_NONE, collect_user, &s) == RISK_OK);
    cr_assert(s.n == 4);
    commit_user("h", 2, RISK_LEVEL_LOW);
    commit_user("n", 2, RISK_LEVEL_HIGH);
    memset(&s, 0, sizeof s);
    cr_assert(st.list_users(st.ctx, RISK_LEVEL_HIGH, collect_user, &s) == RISK_OK);
    cr_assert(s.n == 1 && has_id(&s, "n"));
    cr_assert(st.list_users(st.ctx, (risk_level)4, collect_user, &s) == RISK_EINVAL);
    /* users that only have events are not listed */
    void *t = begin("x");
    cr_assert(put_event(t, "x-ev", "x", RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    int n = 0;
    cr_assert(st.list_users(st.ctx, RISK_LEVEL_NONE, COUNTER(risk_user), &n) == RISK_OK);
    cr_assert(n == 4);
}

static int bump_in_visit(const risk_user *u, void *arg)
{
    (void)arg;
    void *t = begin(risk_user_id(u));
    cr_assert(put_user(t, risk_user_id(u), risk_user_version(u) + 1, RISK_LEVEL_NONE) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    return 0;
}

Test(store_memory, list_users_visitor_may_write, .timeout = 10)
{
    /* R-OP-5, R-CC-1: a list_users visitor may run operations on the store
     * (bulk aging does) without deadlock */
    commit_user("a", 1, RISK_LEVEL_HIGH);
    commit_user("b", 1, RISK_LEVEL_HIGH);
    cr_assert(st.list_users(st.ctx, RISK_LEVEL_HIGH, bump_in_visit, NULL) == RISK_OK);
    int n = 0;
    cr_assert(st.list_users(st.ctx, RISK_LEVEL_HIGH, COUNTER(risk_user), &n) == RISK_OK);
    cr_assert(n == 0);
}

/* ---- the internal API the journal wraps ---- */
static int meta_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (*(size_t *)arg) += strlen(key) + len;
    return 0;
}

Test(store_memory, internal_api_no_history)
{
    /* R-ST-5: keep_history 0 numbers items but drops them; read_history is
     * absent (R-ST-4); each_* visit the committed records */
    risk_memstore *ms = NULL;
    cr_assert(risk_memstore_new(&ms, 0) == RISK_OK);
    risk_store s;
    risk_memstore_table(ms, &s);
    cr_assert(s.read_history == NULL && s.ctx == ms);
    risk_memstore_set_next_seq(ms, 41);
    void *t = NULL;
    cr_assert(s.begin(ms, "a", &t) == RISK_OK);
    risk_user *u = mkuser("a", 1, RISK_LEVEL_LOW);
    cr_assert(s.put_user(ms, t, u) == RISK_OK);
    risk_user_free(u);
    risk_event *e = mkevent("e", "a", RISK_LEVEL_LOW);
    cr_assert(s.put_event(ms, t, e) == RISK_OK);
    risk_event_free(e);
    uint64_t seq;
    cr_assert(s.reserve_seq(ms, t, &seq) == RISK_OK);
    cr_assert(seq == 41);
    risk_history *h = NULL;
    cr_assert(risk_history_new(&h, 999, 1, "x", RISK_HISTORY_INGEST, "a", NULL, NULL) == RISK_OK);
    cr_assert(s.append_history(ms, t, h) == RISK_OK);
    risk_history_free(h);
    cr_assert(s.put_meta(ms, t, "k", (const uint8_t *)"vv", 2) == RISK_OK);
    cr_assert(s.commit(ms, t) == RISK_OK);
    cr_assert(risk_memstore_next_seq(ms) == 42);
    int nu = 0, ne = 0, np = 0;
    size_t nm = 0;
    cr_assert(risk_memstore_each_user(ms, COUNTER(risk_user), &nu) == 0);
    cr_assert(risk_memstore_each_event(ms, COUNTER(risk_event), &ne) == 0);
    cr_assert(risk_memstore_each_policy(ms, COUNTER(risk_policy), &np) == 0);
    cr_assert(risk_memstore_each_meta(ms, meta_cb, &nm) == 0);
    cr_assert(nu == 1 && ne == 1 && np == 0 && nm == 3);
    s.close(ms);
}

static int get_ver(const risk_user *u, void *arg)
{
    *(uint64_t *)arg = risk_user_version(u);
    return 0;
}

Test(store_memory, bulk_load_installs_directly)
{
    /* R-ST-5, R-ST-6: recovery loads records at any version (no version+1
     * rule), the last load of a key wins, events move with their user */
    risk_memstore *ms = NULL;
    cr_assert(risk_memstore_new(&ms, 0) == RISK_OK);
    risk_store s;
    risk_memstore_table(ms, &s);
    risk_memstore_reserve(ms, 10, 100);
    cr_assert(risk_memstore_load_user(ms, mkuser("a", 7, RISK_LEVEL_LOW)) == RISK_OK);
    cr_assert(risk_memstore_load_user(ms, mkuser("a", 9, RISK_LEVEL_HIGH)) == RISK_OK);
    cr_assert(risk_memstore_load_event(ms, mkevent("e1", "a", RISK_LEVEL_LOW)) == RISK_OK);
    cr_assert(risk_memstore_load_event(ms, mkevent("e1", "b", RISK_LEVEL_HIGH)) == RISK_OK);
    risk_policy *p = NULL;
    cr_assert(risk_policy_new(&p, "pol", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK) == RISK_OK);
    cr_assert(risk_memstore_load_policy(ms, p) == RISK_OK);
    risk_memstore_load_remove_policy(ms, "pol");
    risk_memstore_load_remove_policy(ms, "pol"); /* twice: a no-op */
    uint8_t v[3] = {1, 2, 3};
    cr_assert(risk_memstore_load_meta(ms, "k", v, 3) == RISK_OK);
    uint64_t ver = 0;
    cr_assert(s.view_user(ms, "a", get_ver, &ver) == RISK_OK);
    cr_assert(ver == 9);
    int n = 0;
    cr_assert(s.list_users(ms, RISK_LEVEL_HIGH, COUNTER(risk_user), &n) == RISK_OK);
    cr_assert(n == 1, "the reloaded user moved to the high list");
    n = 0;
    cr_assert(s.user_events(ms, NULL, "a", COUNTER(risk_event), &n) == RISK_OK);
    cr_assert(n == 0, "e1 moved to b");
    cr_assert(s.user_events(ms, NULL, "b", COUNTER(risk_event), &n) == RISK_OK);
    cr_assert(n == 1);
    n = 0;
    cr_assert(s.list_policies(ms, NULL, COUNTER(risk_policy), &n) == RISK_OK);
    cr_assert(n == 0);
    /* a normal txn continues from the loaded version */
    void *t = NULL;
    cr_assert(s.begin(ms, "a", &t) == RISK_OK);
    risk_user *u = mkuser("a", 10, RISK_LEVEL_LOW);
    cr_assert(s.put_user(ms, t, u) == RISK_OK);
    risk_user_free(u);
    cr_assert(s.commit(ms, t) == RISK_OK);
    s.close(ms);
}

/* ---- the compact layout: views carry every field ---- */
static risk_event *full_event(const char *id, const char *user, const char *note)
{
    risk_event *e = mkevent(id, user, RISK_LEVEL_MEDIUM);
    cr_assert(risk_event_set_ip(e, "2001:db8::1") == RISK_OK);
    cr_assert(risk_event_set_location(e, "Berlin, DE") == RISK_OK);
    cr_assert(risk_event_set_source(e, "IdentityProtection") == RISK_OK);
    cr_assert(risk_event_set_timing(e, RISK_TIMING_OFFLINE) == RISK_OK);
    if (note)
        cr_assert(risk_event_set_note(e, note) == RISK_OK);
    return e;
}

static void commit_event(risk_event *e)
{
    void *t = begin(risk_event_user_id(e));
    cr_assert(st.put_event(st.ctx, t, e) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
}

static void assert_same_event(const risk_event *a, const risk_event *b)
{
    uint8_t x[2048], y[2048];
    size_t nx, ny;
    cr_assert(risk_event_encode(x, sizeof x, &nx, a) == RISK_OK);
    cr_assert(risk_event_encode(y, sizeof y, &ny, b) == RISK_OK);
    cr_assert(nx == ny && memcmp(x, y, nx) == 0, "event '%s' differs", risk_event_id(a));
}

static risk_event *stored(const char *id)
{
    risk_event *e = NULL;
    cr_assert(st.get_event(st.ctx, NULL, id, &e) == RISK_OK);
    return e;
}

static int copy_first(const risk_event *e, void *arg)
{
    cr_assert(risk_event_dup(arg, e) == RISK_OK);
    return 1;
}

Test(store_memory, event_views_carry_every_field)
{
    /* R-ST-3, R-ST-5: an event read back (get_event, user_events) encodes
     * exactly as written: interned strings, shared ids and the owner's user
     * id rebuild the record */
    commit_user("a", 1, RISK_LEVEL_NONE);
    risk_event *e = full_event("e1", "a", "checked\twith the user");
    commit_event(e);
    risk_event *g = stored("e1");
    assert_same_event(e, g);
    risk_event_free(g);
    risk_event *v = NULL;
    void *t = begin("a");
    cr_assert(st.user_events(st.ctx, t, "a", copy_first, &v) == 1);
    st.rollback(st.ctx, t);
    assert_same_event(e, v);
    risk_event_free(v);
    /* closed (same size: rewritten in place), then reopened with a longer
     * note (a new node), then moved to another user */
    cr_assert(risk_event_set_closing(e, RISK_EVENT_CLOSED, RISK_CLOSE_DISMISSED, 2000, "admin") ==
              RISK_OK);
    commit_event(e);
    assert_same_event(e, g = stored("e1"));
    risk_event_free(g);
    cr_assert(risk_event_set_note(e, "a much longer note than the one before it was") == RISK_OK);
    commit_event(e);
    assert_same_event(e, g = stored("e1"));
    risk_event_free(g);
    risk_event *m = full_event("e1", "b", NULL);
    commit_event(m);
    assert_same_event(m, g = stored("e1"));
    risk_event_free(g);
    int n = 0;
    t = begin("a");
    cr_assert(st.user_events(st.ctx, t, "a", COUNTER(risk_event), &n) == RISK_OK);
    cr_assert(st.user_events(st.ctx, t, "b", COUNTER(risk_event), &n) == RISK_OK);
    st.rollback(st.ctx, t);
    cr_assert(n == 1);
    risk_event_free(m);
    risk_event_free(e);
}

Test(store_memory, many_replacements_reuse_nodes)
{
    /* R-ST-5: events replaced over and over (sizes up and down, long notes
     * beyond the slab) keep their lists and the map consistent */
    char id[32], note[700];
    for (int round = 0; round < 6; round++)
        for (int i = 0; i < 40; i++) {
            snprintf(id, sizeof id, "ev-%d", i);
            int len = (i * 37 + round * 101) % 690;
            memset(note, 'n', (size_t)len);
            note[len] = 0;
            risk_event *e = full_event(id, i % 2 ? "odd" : "even", len ? note : NULL);
            commit_event(e);
            risk_event *g = stored(id);
            assert_same_event(e, g);
            risk_event_free(g);
            risk_event_free(e);
        }
    int n = 0;
    void *t = begin(NULL);
    cr_assert(st.user_events(st.ctx, t, "odd", COUNTER(risk_event), &n) == RISK_OK);
    cr_assert(n == 20);
    cr_assert(st.user_events(st.ctx, t, "even", COUNTER(risk_event), &n) == RISK_OK);
    cr_assert(n == 40);
    st.rollback(st.ctx, t);
}

Test(store_memory, fields_it_cannot_hold_are_refused)
{
    /* R-IV-1: the compact node holds enums in a byte; a larger value (only
     * a hand-built record can have one) is RISK_EINVAL at put time */
    risk_event *e = mkevent("e", "a", RISK_LEVEL_LOW);
    risk_event bad = *e;
    bad.level = 300;
    void *t = begin("a");
    cr_assert(st.put_event(st.ctx, t, &bad) == RISK_EINVAL);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    risk_event_free(e);
}

static int copy_item(const risk_history *h, void *arg)
{
    cr_assert(risk_history_dup(arg, h) == RISK_OK);
    return 1;
}

Test(store_memory, history_views_carry_every_field)
{
    /* R-AU-1, R-OP-5: an item read back encodes exactly as appended (the
     * chain included): interned actor, the event id shared with its event,
     * the subject's user id, note and policy */
    uint8_t chain[32];
    for (int i = 0; i < 32; i++)
        chain[i] = (uint8_t)(i * 7 + 1);
    void *t = begin("a");
    cr_assert(put_user(t, "a", 1, RISK_LEVEL_HIGH) == RISK_OK);
    cr_assert(put_event(t, "e1", "a", RISK_LEVEL_HIGH) == RISK_OK);
    risk_history *h[3] = {NULL, NULL, NULL};
    const char *eid[3] = {"e1", "not-stored", NULL}, *pol[3] = {NULL, NULL, "p1"};
    for (int i = 0; i < 3; i++) {
        uint64_t seq;
        cr_assert(st.reserve_seq(st.ctx, t, &seq) == RISK_OK);
        cr_assert(risk_history_new(&h[i], seq, 1000 + i, i ? "alice" : "system",
                                   i == 2 ? RISK_HISTORY_POLICY_SET : RISK_HISTORY_INGEST,
                                   i == 2 ? NULL : "a", eid[i], pol[i]) == RISK_OK);
        cr_assert(risk_history_set_change(h[i], RISK_LEVEL_NONE, RISK_LEVEL_HIGH,
                                          RISK_STATE_NONE, RISK_STATE_AT_RISK, (uint32_t)i,
                                          i == 1 ? "why\tso" : NULL) == RISK_OK);
        cr_assert(risk_history_set_chain(h[i], chain) == RISK_OK);
        cr_assert(st.append_history(st.ctx, t, h[i]) == RISK_OK);
    }
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    for (int i = 0; i < 3; i++) {
        risk_history *g = NULL;
        cr_assert(st.read_history(st.ctx, NULL, risk_history_seq(h[i]), copy_item, &g) == 1);
        uint8_t x[2048], y[2048];
        size_t nx, ny;
        cr_assert(risk_history_encode(x, sizeof x, &nx, h[i]) == RISK_OK);
        cr_assert(risk_history_encode(y, sizeof y, &ny, g) == RISK_OK);
        cr_assert(nx == ny && memcmp(x, y, nx) == 0, "item %d differs", i);
        risk_history_free(g);
        risk_history_free(h[i]);
    }
}

Test(store_memory, prepared_then_rolled_back_leaves_no_trace)
{
    /* R-CC-2, R-IV-3: a prepared txn (the journal's phase one) rolled back
     * gives back its interned strings, arena bytes and nodes: the store and
     * the number of allocated blocks are as before */
    populate(3);
    dump before = take_dump();
    alloc_fail_install(0);
    long live = alloc_fail_live();
    void *t = begin("pop-1");
    risk_event *e = full_event("fresh", "pop-1", "n");
    cr_assert(risk_event_set_location(e, "Nowhere, XX") == RISK_OK);
    cr_assert(st.put_event(st.ctx, t, e) == RISK_OK);
    cr_assert(put_user(t, "pop-1", 2, RISK_LEVEL_LOW) == RISK_OK);
    cr_assert(add_history(t, "pop-1", NULL) == RISK_OK);
    cr_assert(risk_memstore_prepare(st.ctx, t) == RISK_OK);
    st.rollback(st.ctx, t);
    risk_event_free(e);
    cr_assert(alloc_fail_live() == live, "live blocks %ld, before %ld", alloc_fail_live(), live);
    alloc_fail_reset();
    dump after = take_dump();
    assert_same(before, after);
    free(before.b);
    free(after.b);
}

/* A user's event array: capacities of the sequence 7, 9, 11, 13, 15, then
 * half as much again (odd: the pointers fill their malloc block), and
 * back to the smallest that holds the events after a two-phase commit
 * (the journal's) reserved a slot for each event it rewrote. Ten events
 * take 11 slots, not the 16 doubling gave: 3 MB over the benchmark's
 * 100,000 users (docs/performance.md, session 13). */
static const subject *subject_of(const char *id)
{
    risk_memstore *ms = st.ctx;
    uint64_t h = hash_str(id);
    return subject_find(&ush_of(ms, h)->users, h, id);
}

Test(store_memory, event_array_capacity_follows_its_events)
{
    static const uint32_t cap_after[] = {7, 7, 7, 7, 7, 7, 7, 9, 9, 11, 11, 13, 13, 15, 15, 23};
    char id[16];
    for (int i = 0; i < 16; i++) {
        void *t = begin("u");
        snprintf(id, sizeof id, "e%d", i);
        cr_assert(eq(int, put_event(t, id, "u", RISK_LEVEL_LOW), RISK_OK));
        cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
        const subject *s = subject_of("u");
        cr_assert(eq(u32, s->n_ev, (uint32_t)i + 1));
        cr_assert(eq(u32, s->cap_ev, cap_after[i]), "after %d events", i + 1);
    }
    /* rewrite all 16 in one two-phase commit: 16 more slots promised
     * (23 → 35), then given back (35 → 23, the smallest that holds 16) */
    void *t = begin("u");
    for (int i = 0; i < 16; i++) {
        snprintf(id, sizeof id, "e%d", i);
        cr_assert(eq(int, put_event(t, id, "u", RISK_LEVEL_MEDIUM), RISK_OK));
    }
    cr_assert(eq(int, risk_memstore_prepare(st.ctx, t), RISK_OK));
    cr_assert(eq(u32, subject_of("u")->cap_ev, 35));
    risk_memstore_apply(st.ctx, t);
    const subject *s = subject_of("u");
    cr_assert(eq(u32, s->n_ev, 16));
    cr_assert(eq(u32, s->cap_ev, 23));
    cr_assert(eq(u32, s->ev_res, 0));
}
