/* memstore_fixture.h — the shared fixture of the in-memory store's tests
 * (tests/test_store_memory.c: records, views, history; and
 * tests/test_store_memory_txn.c: transactions, sequencing, threads, memory
 * failures): a fresh store per test in `st` and small builders. */
#ifndef LIBRISK_TESTS_MEMSTORE_FIXTURE_H
#define LIBRISK_TESTS_MEMSTORE_FIXTURE_H

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

static inline void setup(void) { cr_assert(risk_memory_store_new(&st) == RISK_OK); }
static inline void teardown(void)
{
    alloc_fail_reset();
    if (st.close)
        st.close(st.ctx);
    memset(&st, 0, sizeof st);
}


/* ---- helpers ---- */
static inline risk_user *mkuser(const char *id, uint64_t version, risk_level level)
{
    risk_user *u = NULL;
    cr_assert(risk_user_new(&u, id) == RISK_OK);
    cr_assert(risk_user_set_version(u, version) == RISK_OK);
    cr_assert(risk_user_set_risk(u, level, level ? RISK_STATE_AT_RISK : RISK_STATE_NONE,
                                 RISK_DETAIL_NONE, 1000, level * 10u, RISK_TIME_NONE,
                                 RISK_TIME_NONE, 0) == RISK_OK);
    return u;
}

static inline risk_event *mkevent(const char *id, const char *user, risk_level level)
{
    risk_event *e = NULL;
    cr_assert(risk_event_new(&e, id, user, "leakedCredentials", level, 1000) == RISK_OK);
    return e;
}

static inline void *begin(const char *uid)
{
    void *t = NULL;
    cr_assert(st.begin(st.ctx, uid, &t) == RISK_OK);
    return t;
}

static inline int put_user(void *t, const char *id, uint64_t v, risk_level l)
{
    risk_user *u = mkuser(id, v, l);
    int rc = st.put_user(st.ctx, t, u);
    risk_user_free(u);
    return rc;
}

static inline int put_event(void *t, const char *id, const char *user, risk_level l)
{
    risk_event *e = mkevent(id, user, l);
    int rc = st.put_event(st.ctx, t, e);
    risk_event_free(e);
    return rc;
}

static inline int put_policy(void *t, const char *name, risk_level thr)
{
    risk_policy *p = NULL;
    cr_assert(risk_policy_new(&p, name, thr, RISK_CONTROL_BLOCK) == RISK_OK);
    int rc = st.put_policy(st.ctx, t, p);
    risk_policy_free(p);
    return rc;
}

/* Reserve a seq and append an item for user (NULL: policy item). */
static inline int add_history(void *t, const char *user, uint64_t *seq_out)
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

static inline void commit_user(const char *id, uint64_t v, risk_level l)
{
    void *t = begin(id);
    cr_assert(put_user(t, id, v, l) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
}

static inline int count_cb(const void *x, void *arg)
{
    (void)x;
    (*(int *)arg)++;
    return 0;
}
#define COUNTER(T) ((int (*)(const T *, void *))count_cb)

static inline int level_of(const char *id)
{
    risk_user *u = NULL;
    cr_assert(st.get_user(st.ctx, NULL, id, &u) == RISK_OK);
    int l = (int)risk_user_risk_level(u);
    risk_user_free(u);
    return l;
}

static inline int view_score_cb(const risk_user *u, void *arg)
{
    *(uint64_t *)arg = risk_user_score(u);
    return 0;
}

typedef struct {
    uint8_t *b;
    size_t n;
} dump;

static inline dump take_dump(void)
{
    dump d = {0};
    cr_assert(store_dump(&st, &d.b, &d.n) == RISK_OK);
    return d;
}

static inline void assert_same(dump a, dump b)
{
    cr_assert(a.n == b.n, "dump size %zu != %zu", a.n, b.n);
    cr_assert(memcmp(a.b, b.b, a.n) == 0, "dumps differ");
}

/* A store with users, events, policies and history. */
static inline void populate(int n)
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

typedef struct {
    char ids[16][32];
    int n;
} idset;

static inline int collect_event(const risk_event *e, void *arg)
{
    idset *s = arg;
    cr_assert(s->n < 16);
    snprintf(s->ids[s->n++], 32, "%s", risk_event_id(e));
    return 0;
}

static inline int has_id(const idset *s, const char *id)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

typedef struct {
    uint64_t seq[64];
    int n;
} seqs;

static inline int collect_seq(const risk_history *h, void *arg)
{
    seqs *s = arg;
    cr_assert(s->n < 64);
    s->seq[s->n++] = risk_history_seq(h);
    return 0;
}

#endif /* LIBRISK_TESTS_MEMSTORE_FIXTURE_H */
