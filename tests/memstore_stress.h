/* memstore_stress.h — threads on the in-memory store's callbacks and its
 * two-phase commit, shared by tests/test_store_memory_txn.c (Criterion)
 * and tests/tsan/memstore.c (a plain pthread program for ThreadSanitizer,
 * which Criterion cannot run under). R-CC-1, R-CC-2, R-ST-6.
 *
 * The store splits its committed state into shards, each under its own
 * lock, and a transaction takes the locks of every shard it touches. This
 * drives the paths the engine alone rarely takes: writers commit
 * transactions that write two or three users in different shards at once
 * and move events between users (the old owner's shard is found only
 * under the events shard's lock); some prepare and apply separately, as
 * the journal does, or roll a prepared transaction back; some add new
 * strings to the interned table that a rollback must take out again while
 * another transaction may use them; readers read events (whose contents
 * change under their owner's lock) and visit a user's events while they
 * read a user inside the visitor (the same user: its shard's lock again;
 * or one of a later shard: a second lock, in the store's lock order).
 *
 * It must not deadlock (Criterion's timeout, TSan's deadlock detector),
 * lose an update (every user's version and score count the commits that
 * wrote it), or leave an event in two users' lists or none. Returns 0, or
 * 1 with the reason in why. */
#ifndef LIBRISK_TESTS_MEMSTORE_STRESS_H
#define LIBRISK_TESTS_MEMSTORE_STRESS_H

#include "internal.h"
#include "memstore.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MSS_USERS 24
#define MSS_EVENTS 40
#define MSS_MAX_THREADS 16

typedef struct mss {
    risk_store st;
    atomic_int writers_left;
    _Atomic long commits[MSS_USERS]; /* committed writes of each user */
    atomic_int failed;
    char why[256];
} mss;

typedef struct mss_thread {
    mss *m;
    int id, ops;
    unsigned seed;
} mss_thread;

static unsigned mss_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void mss_fail(mss *m, const char *what, int rc)
{
    if (atomic_exchange(&m->failed, 1) == 0)
        snprintf(m->why, sizeof m->why, "%s: rc %d (%s)", what, rc, risk_error_last());
}

static void mss_user(char *buf, size_t n, unsigned i) { snprintf(buf, n, "mss-user-%02u", i); }

/* One transaction writing users a[0..k) (distinct), event ev moving to
 * a[0], a history item of a[0]; committed in one call or in two phases,
 * or prepared then rolled back. 0: committed, 1: not (conflict or
 * rollback), -1: failed. */
static int mss_txn(mss_thread *w, const unsigned *a, int k, unsigned ev, unsigned how)
{
    risk_store *st = &w->m->st;
    char uid[32], eid[32], loc[48];
    mss_user(uid, sizeof uid, a[0]);
    void *t = NULL;
    int rc = st->begin(st->ctx, uid, &t);
    if (rc != RISK_OK)
        return mss_fail(w->m, "begin", rc), -1;
    for (int i = 0; i < k && rc == RISK_OK; i++) {
        risk_user *u = NULL;
        mss_user(uid, sizeof uid, a[i]);
        rc = st->get_user(st->ctx, t, uid, &u);
        if (rc == RISK_ENOTFOUND)
            rc = risk_user_new(&u, uid);
        if (rc == RISK_OK)
            rc = risk_user_set_version(u, risk_user_version(u) + 1);
        if (rc == RISK_OK)
            rc = risk_user_set_risk(u, RISK_LEVEL_LOW, RISK_STATE_AT_RISK, RISK_DETAIL_NONE, 1,
                                    risk_user_score(u) + 1, RISK_TIME_NONE, RISK_TIME_NONE, 0);
        if (rc == RISK_OK)
            rc = st->put_user(st->ctx, t, u);
        risk_user_free(u);
    }
    /* the event, now a[0]'s; sometimes at a location nobody used before */
    mss_user(uid, sizeof uid, a[0]);
    snprintf(eid, sizeof eid, "mss-ev-%02u", ev);
    if (how % 3 == 0)
        snprintf(loc, sizeof loc, "fresh-%d-%u", w->id, mss_rand(&w->seed) % 8);
    else
        snprintf(loc, sizeof loc, "Seattle, WA, US");
    risk_event *e = NULL;
    if (rc == RISK_OK)
        rc = risk_event_new(&e, eid, uid, "leakedCredentials", RISK_LEVEL_LOW, 1000);
    if (rc == RISK_OK)
        rc = risk_event_set_location(e, loc);
    if (rc == RISK_OK)
        rc = st->put_event(st->ctx, t, e);
    risk_event_free(e);
    uint64_t seq;
    risk_history *h = NULL;
    if (rc == RISK_OK)
        rc = st->reserve_seq(st->ctx, t, &seq);
    if (rc == RISK_OK)
        rc = risk_history_new(&h, seq, 1000, "stress", RISK_HISTORY_INGEST, uid, eid, NULL);
    if (rc == RISK_OK)
        rc = st->append_history(st->ctx, t, h);
    risk_history_free(h);
    if (rc != RISK_OK) {
        st->rollback(st->ctx, t);
        return mss_fail(w->m, "buffer a write", rc), -1;
    }
    switch (how % 4) {
    case 0: /* two phases, applied */
        if ((rc = risk_memstore_prepare(st->ctx, t)) == RISK_OK) {
            risk_memstore_apply(st->ctx, t);
            break;
        }
        st->rollback(st->ctx, t);
        break;
    case 1: /* prepared, then rolled back */
        if ((rc = risk_memstore_prepare(st->ctx, t)) == RISK_OK)
            rc = -2;
        st->rollback(st->ctx, t);
        break;
    default:
        rc = st->commit(st->ctx, t);
    }
    if (rc == RISK_OK) {
        for (int i = 0; i < k; i++)
            atomic_fetch_add(&w->m->commits[a[i]], 1);
        return 0;
    }
    if (rc == -2 || rc == RISK_ECONFLICT)
        return 1;
    return mss_fail(w->m, "commit", rc), -1;
}

static void *mss_writer(void *arg)
{
    mss_thread *w = arg;
    for (int i = 0; i < w->ops && !atomic_load(&w->m->failed); i++) {
        unsigned a[3];
        int k = 1 + (int)(mss_rand(&w->seed) % 3);
        for (int j = 0; j < k; j++) {
            a[j] = mss_rand(&w->seed) % MSS_USERS;
            for (int x = 0; x < j; x++)
                if (a[x] == a[j]) {
                    a[j] = (a[j] + 1) % MSS_USERS;
                    x = -1; /* check again from the start */
                }
        }
        if (mss_txn(w, a, k, mss_rand(&w->seed) % MSS_EVENTS, mss_rand(&w->seed)) < 0)
            break;
    }
    atomic_fetch_sub(&w->m->writers_left, 1);
    return NULL;
}

typedef struct mss_visit {
    mss *m;
    unsigned other;
    int n;
} mss_visit;

static int mss_view_cb(const risk_user *u, void *arg)
{
    (void)u;
    (void)arg;
    return 0;
}

/* Inside a visit of one user's events, read a user (the shard's lock
 * again, or a later shard's). */
static int mss_event_cb(const risk_event *e, void *arg)
{
    mss_visit *v = arg;
    char uid[32];
    mss_user(uid, sizeof uid, v->other);
    int rc = v->m->st.view_user(v->m->st.ctx, uid, mss_view_cb, NULL);
    if (rc != RISK_OK && rc != RISK_ENOTFOUND)
        return rc;
    v->n += risk_event_id(e) != NULL;
    return 0;
}

static void *mss_reader(void *arg)
{
    mss_thread *r = arg;
    risk_store *st = &r->m->st;
    while (atomic_load(&r->m->writers_left) > 0 && !atomic_load(&r->m->failed)) {
        char eid[32], uid[32];
        snprintf(eid, sizeof eid, "mss-ev-%02u", mss_rand(&r->seed) % MSS_EVENTS);
        risk_event *e = NULL;
        int rc = st->get_event(st->ctx, NULL, eid, &e);
        if (rc == RISK_OK && strncmp(risk_event_user_id(e), "mss-user-", 9) != 0)
            mss_fail(r->m, "an event's user is not one of ours", rc);
        risk_event_free(e);
        if (rc != RISK_OK && rc != RISK_ENOTFOUND)
            mss_fail(r->m, "get_event", rc);
        unsigned a = mss_rand(&r->seed) % MSS_USERS, b = mss_rand(&r->seed) % MSS_USERS;
        char bid[32];
        mss_user(uid, sizeof uid, a);
        mss_user(bid, sizeof bid, b);
        if (ush_idx(hash_str(bid)) < ush_idx(hash_str(uid)))
            b = a; /* a visitor takes locks in the store's order */
        mss_visit v = {r->m, b, 0};
        if ((rc = st->user_events(st->ctx, NULL, uid, mss_event_cb, &v)) != RISK_OK)
            mss_fail(r->m, "user_events", rc);
    }
    return NULL;
}

typedef struct mss_count {
    int seen[MSS_EVENTS];
    const char *user;
    int bad;
} mss_count;

static int mss_count_cb(const risk_event *e, void *arg)
{
    mss_count *c = arg;
    unsigned n = 0;
    if (sscanf(risk_event_id(e), "mss-ev-%u", &n) != 1 || n >= MSS_EVENTS ||
        strcmp(risk_event_user_id(e), c->user) != 0)
        c->bad = 1;
    else
        c->seen[n]++;
    return 0;
}

static int mss_run(int writers, int readers, int ops, char *why, size_t whylen)
{
    static mss m; /* large: not on the stack */
    memset(&m, 0, sizeof m);
    if (risk_memory_store_new(&m.st) != RISK_OK) {
        snprintf(why, whylen, "store: %s", risk_error_last());
        return 1;
    }
    atomic_store(&m.writers_left, writers);
    pthread_t tid[2 * MSS_MAX_THREADS];
    mss_thread th[2 * MSS_MAX_THREADS];
    int n = 0;
    for (int i = 0; i < writers + readers && i < 2 * MSS_MAX_THREADS; i++, n++) {
        th[i] = (mss_thread){&m, i, ops, 104729u * (unsigned)(i + 1)};
        pthread_create(&tid[i], NULL, i < writers ? mss_writer : mss_reader, &th[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    int fail = atomic_load(&m.failed);
    if (fail)
        snprintf(why, whylen, "%s", m.why);
    /* every user counts its committed writes; every event is in exactly
     * one user's list, and get_event names that user */
    mss_count c = {{0}, NULL, 0};
    for (unsigned i = 0; i < MSS_USERS && !fail; i++) {
        char uid[32];
        mss_user(uid, sizeof uid, i);
        risk_user *u = NULL;
        int rc = m.st.get_user(m.st.ctx, NULL, uid, &u);
        long want = atomic_load(&m.commits[i]);
        uint64_t have = rc == RISK_OK ? risk_user_version(u) : 0;
        if ((rc != RISK_OK && rc != RISK_ENOTFOUND) || have != (uint64_t)want ||
            (u && risk_user_score(u) != (uint64_t)want)) {
            snprintf(why, whylen, "%s: version %llu after %ld commits", uid,
                     (unsigned long long)have, want);
            fail = 1;
        }
        risk_user_free(u);
        c.user = uid;
        if (!fail && m.st.user_events(m.st.ctx, NULL, uid, mss_count_cb, &c) != RISK_OK)
            fail = 1, snprintf(why, whylen, "user_events: %s", risk_error_last());
    }
    for (unsigned i = 0; i < MSS_EVENTS && !fail; i++) {
        char eid[32];
        snprintf(eid, sizeof eid, "mss-ev-%02u", i);
        risk_event *e = NULL;
        int rc = m.st.get_event(m.st.ctx, NULL, eid, &e);
        if (c.bad || c.seen[i] != (rc == RISK_OK)) {
            snprintf(why, whylen, "%s: in %d users' lists, get_event %d", eid, c.seen[i], rc);
            fail = 1;
        }
        risk_event_free(e);
    }
    m.st.close(m.st.ctx);
    return fail;
}

#endif
