/* Tests of the in-memory store (lib/store_memory.c) through its callback
 * table and the internal two-phase API the journal wraps. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_fail.h"
#include "internal.h"
#include "memstore.h"
#include "store_dump.h"

static risk_store st;

static void setup(void) { cr_assert(risk_memory_store_new(&st) == RISK_OK); }
static void teardown(void)
{
    alloc_fail_reset();
    if (st.close)
        st.close(st.ctx);
    memset(&st, 0, sizeof st);
}

TestSuite(store_memory, .init = setup, .fini = teardown);

/* ---- helpers ---- */
static risk_user *mkuser(const char *id, uint64_t version, risk_level level)
{
    risk_user *u = NULL;
    cr_assert(risk_user_new(&u, id) == RISK_OK);
    cr_assert(risk_user_set_version(u, version) == RISK_OK);
    cr_assert(risk_user_set_risk(u, level, level ? RISK_STATE_AT_RISK : RISK_STATE_NONE,
                                 RISK_DETAIL_NONE, 1000, level * 10u, RISK_TIME_NONE,
                                 RISK_TIME_NONE, 0) == RISK_OK);
    return u;
}

static risk_event *mkevent(const char *id, const char *user, risk_level level)
{
    risk_event *e = NULL;
    cr_assert(risk_event_new(&e, id, user, "leakedCredentials", level, 1000) == RISK_OK);
    return e;
}

static void *begin(const char *uid)
{
    void *t = NULL;
    cr_assert(st.begin(st.ctx, uid, &t) == RISK_OK);
    return t;
}

static int put_user(void *t, const char *id, uint64_t v, risk_level l)
{
    risk_user *u = mkuser(id, v, l);
    int rc = st.put_user(st.ctx, t, u);
    risk_user_free(u);
    return rc;
}

static int put_event(void *t, const char *id, const char *user, risk_level l)
{
    risk_event *e = mkevent(id, user, l);
    int rc = st.put_event(st.ctx, t, e);
    risk_event_free(e);
    return rc;
}

static int put_policy(void *t, const char *name, risk_level thr)
{
    risk_policy *p = NULL;
    cr_assert(risk_policy_new(&p, name, thr, RISK_CONTROL_BLOCK) == RISK_OK);
    int rc = st.put_policy(st.ctx, t, p);
    risk_policy_free(p);
    return rc;
}

/* Reserve a seq and append an item for user (NULL: policy item). */
static int add_history(void *t, const char *user, uint64_t *seq_out)
{
    uint64_t seq;
    int rc = st.reserve_seq(st.ctx, t, &seq);
    if (rc != RISK_OK)
        return rc;
    risk_history *h = NULL;
    rc = risk_history_new(&h, seq, 1000, "admin", user ? RISK_HISTORY_INGEST : RISK_HISTORY_POLICY_SET,
                          user, NULL, user ? NULL : "p");
    if (rc != RISK_OK)
        return rc;
    rc = st.append_history(st.ctx, t, h);
    risk_history_free(h);
    if (seq_out)
        *seq_out = seq;
    return rc;
}

static void commit_user(const char *id, uint64_t v, risk_level l)
{
    void *t = begin(id);
    cr_assert(put_user(t, id, v, l) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
}

static int count_cb(const void *x, void *arg)
{
    (void)x;
    (*(int *)arg)++;
    return 0;
}
#define COUNTER(T) ((int (*)(const T *, void *))count_cb)

static int level_of(const char *id)
{
    risk_user *u = NULL;
    cr_assert(st.get_user(st.ctx, NULL, id, &u) == RISK_OK);
    int l = (int)risk_user_risk_level(u);
    risk_user_free(u);
    return l;
}

static int view_score_cb(const risk_user *u, void *arg)
{
    *(uint64_t *)arg = risk_user_score(u);
    return 0;
}

typedef struct {
    uint8_t *b;
    size_t n;
} dump;

static dump take_dump(void)
{
    dump d = {0};
    cr_assert(store_dump(&st, &d.b, &d.n) == RISK_OK);
    return d;
}

static void assert_same(dump a, dump b)
{
    cr_assert(a.n == b.n, "dump size %zu != %zu", a.n, b.n);
    cr_assert(memcmp(a.b, b.b, a.n) == 0, "dumps differ");
}

/* A store with users, events, policies and history. */
static void populate(int n)
{
    char id[32], ev[32];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "pop-%d", i);
        snprintf(ev, sizeof ev, "pop-ev-%d", i);
        void *t = begin(id);
        cr_assert(put_user(t, id, 1, (risk_level)(i % 4)) == RISK_OK);
        cr_assert(put_event(t, ev, id, RISK_LEVEL_HIGH) == RISK_OK);
        cr_assert(add_history(t, id, NULL) == RISK_OK);
        cr_assert(st.commit(st.ctx, t) == RISK_OK);
    }
    void *t = begin(NULL);
    cr_assert(put_policy(t, "pop-policy", RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(add_history(t, NULL, NULL) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
}

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

typedef struct {
    char ids[16][32];
    int n;
} idset;

static int collect_event(const risk_event *e, void *arg)
{
    idset *s = arg;
    cr_assert(s->n < 16);
    snprintf(s->ids[s->n++], 32, "%s", risk_event_id(e));
    return 0;
}

static int has_id(const idset *s, const char *id)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
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
typedef struct {
    uint64_t seq[64];
    int n;
} seqs;

static int collect_seq(const risk_history *h, void *arg)
{
    seqs *s = arg;
    cr_assert(s->n < 64);
    s->seq[s->n++] = risk_history_seq(h);
    return 0;
}

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

typedef struct {
    atomic_int phase;
    uint64_t seq;
} seq_race;

static void *reserve_later(void *arg)
{
    seq_race *r = arg;
    void *t = NULL;
    cr_assert(st.begin(st.ctx, "b", &t) == RISK_OK);
    atomic_store(&r->phase, 1);
    cr_assert(add_history(t, "b", &r->seq) == RISK_OK); /* blocks until the first commits */
    atomic_store(&r->phase, 2);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    return NULL;
}

Test(store_memory, sequencer_orders_commits)
{
    /* R-AU-1, R-OP-5: a reserved seq holds the sequencer until commit, so a
     * reader never sees N+1 before N is committed */
    void *t = begin("a");
    uint64_t first;
    cr_assert(add_history(t, "a", &first) == RISK_OK);
    seq_race r = {0};
    pthread_t th;
    cr_assert(pthread_create(&th, NULL, reserve_later, &r) == 0);
    while (atomic_load(&r.phase) == 0)
        usleep(1000);
    usleep(50000);
    cr_assert(atomic_load(&r.phase) == 1, "second reserve did not wait for the first commit");
    int n = 0;
    cr_assert(st.read_history(st.ctx, NULL, 0, COUNTER(risk_history), &n) == RISK_OK);
    cr_assert(n == 0);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    pthread_join(th, NULL);
    cr_assert(r.seq == first + 1);
}

Test(store_memory, sequencer_self_deadlock_is_busy, .timeout = 10)
{
    /* R-CC-1: a second txn on the thread that holds the sequencer gets
     * RISK_EBUSY instead of waiting for itself forever */
    void *a = begin("a"), *b = begin("b");
    uint64_t seq;
    cr_assert(add_history(a, "a", &seq) == RISK_OK);
    cr_assert(st.reserve_seq(st.ctx, b, &seq) == RISK_EBUSY);
    st.rollback(st.ctx, b);
    cr_assert(st.commit(st.ctx, a) == RISK_OK);
    b = begin("b");
    cr_assert(add_history(b, "b", &seq) == RISK_OK);
    cr_assert(seq == 2);
    cr_assert(st.commit(st.ctx, b) == RISK_OK);
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
                     {
                         dump after = take_dump();
                         assert_same(before, after);
                         free(after.b);
                         free(before.b);
                         st.close(st.ctx);
                         failures++;
                     });
    cr_assert(rc == RISK_OK, "rc %d", rc);
    cr_assert(failures > 20, "only %d allocations could fail", failures);
    dump after = take_dump();
    cr_assert(after.n != before.n || memcmp(after.b, before.b, after.n) != 0);
    cr_assert(level_of("brand-new") == RISK_LEVEL_NONE);
    free(after.b);
    free(before.b);
}

Test(store_memory, alloc_failure_sweep)
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

Test(store_memory, threads_disjoint_users, .timeout = 60)
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

Test(store_memory, shared_user_no_lost_update, .timeout = 60)
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

Test(store_memory, concurrent_removals_second_fails)
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

Test(store_memory, sequencer_wakes_waiters_in_arrival_order, .timeout = 20)
{
    /* R-OP-5: waiting for the sequencer, the oldest waiter is woken alone on
     * each release, so queued waiters get it first come, first served */
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
