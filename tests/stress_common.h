/* Multi-threaded stress shared by tests/test_concurrency.c (Criterion) and
 * tests/tsan/stress.c (a plain pthread program for ThreadSanitizer, which
 * Criterion cannot run under). R-CC-1.
 *
 * Threads run random operations on shared and private users. Every
 * committed operation leaves one history item; replaying the history in
 * sequence order, one operation at a time, on a fresh store must produce
 * exactly the same store (users, events, policies and history, byte for
 * byte): the concurrent run was equivalent to that serial order. The clock
 * is constant so the replay stamps the same times. */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include "store_dump.h"

#include <librisk.h>
#include <librisk/store.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_T0 INT64_C(1764000000000)
#define ST_SHARED 6
#define ST_PRIVATE 6

static int64_t st_clock(void *ud)
{
    (void)ud;
    return ST_T0;
}

/* An engine over a new memory store with these options and st_clock
 * (NULL on failure). */
static risk_engine *st_engine_with(risk_engine_options *o)
{
    risk_store s;
    risk_engine *e = NULL;
    if (risk_memory_store_new(&s))
        return NULL;
    o->clock = st_clock;
    if (risk_engine_new(&e, &s, o)) {
        s.close(s.ctx);
        return NULL;
    }
    return e;
}

static risk_engine *st_engine(void)
{
    risk_engine_options o;
    risk_engine_options_init(&o);
    return st_engine_with(&o);
}

struct st_thread {
    risk_engine *e;
    int id;
    int ops;
    unsigned seed;
    int bad; /* an unexpected error code */
    char why[256];
};

static unsigned st_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void st_user_name(char *buf, size_t n, int thread, unsigned r)
{
    if (r % 2)
        snprintf(buf, n, "shared-%u", (r / 2) % ST_SHARED);
    else
        snprintf(buf, n, "t%d-u%u", thread, (r / 2) % ST_PRIVATE);
}

/* Event ids carry their level so the replay can rebuild the detection. */
static const char *const st_levels = "lmh";

static int st_ingest(risk_engine *e, const char *actor, const char *user, const char *id)
{
    const char *dash = strrchr(id, '-');
    risk_level lvl = (risk_level)(strchr(st_levels, dash[1]) - st_levels + 1);
    risk_event *ev = NULL;
    int rc = risk_event_new(&ev, id, user, "leakedCredentials", lvl, ST_T0 - 1000);
    /* half of them through the bulk call, whose store hints
     * (prefetch_users, prefetch_events) then read the maps while other
     * threads' commits add to them and grow them */
    if (rc == RISK_OK && strlen(id) % 2) {
        const risk_event *one[1] = { ev };
        int res = RISK_OK;
        rc = risk_engine_ingest_bulk(e, actor, one, 1, 0, &res) < 0 ? RISK_EINVAL : res;
    } else if (rc == RISK_OK) {
        rc = risk_engine_ingest(e, actor, ev, 0);
    }
    risk_event_free(ev);
    return rc;
}

static void *st_run(void *arg)
{
    struct st_thread *t = arg;
    char actor[32], user[64], ev[96];
    snprintf(actor, sizeof actor, "thread-%d", t->id);
    for (int i = 0; i < t->ops; i++) {
        unsigned r = st_rand(&t->seed);
        st_user_name(user, sizeof user, t->id, st_rand(&t->seed));
        int rc = RISK_OK;
        unsigned kind = r % 12;
        /* an event of this thread, created earlier or now */
        unsigned evn = st_rand(&t->seed) % (unsigned)(i / 4 + 1);
        snprintf(ev, sizeof ev, "%s-t%d-e%u-%c", user, t->id, evn, st_levels[evn % 3]);
        switch (kind) {
        case 0: case 1: case 2: case 3:
            snprintf(ev, sizeof ev, "%s-t%d-e%d-%c", user, t->id, i, st_levels[i % 3]);
            rc = st_ingest(t->e, actor, user, ev);
            break;
        case 4: rc = risk_engine_resolve(t->e, actor, ev, NULL); break;
        case 5: rc = risk_engine_false_positive(t->e, actor, ev, NULL); break;
        case 6: rc = risk_engine_ignore(t->e, actor, ev, "stress"); break;
        case 7: rc = risk_engine_reactivate(t->e, actor, ev, NULL); break;
        case 8: rc = risk_engine_dismiss(t->e, actor, user, NULL, NULL); break;
        case 9: rc = risk_engine_password_changed(t->e, actor, user, RISK_PASSWORD_SECURE_CHANGE); break;
        case 10: rc = risk_engine_confirm_compromised(t->e, actor, user); break;
        case 11: {
            risk_verdict *v = NULL;
            rc = risk_verdict_new(&v);
            if (rc == RISK_OK)
                rc = risk_engine_sign_in(t->e, user, v);
            risk_verdict_free(v);
            break;
        }
        }
        if (rc != RISK_OK && rc != RISK_ENOTFOUND && rc != RISK_ETRANSITION) {
            t->bad = rc;
            snprintf(t->why, sizeof t->why, "op %u on %s/%s: %s", kind, user, ev,
                     risk_error_last());
            return NULL;
        }
    }
    return NULL;
}

/* Replay one history item on another engine. */
static int st_replay_item(const risk_history *h, void *arg)
{
    risk_engine *e = arg;
    const char *a = risk_history_actor(h), *u = risk_history_user_id(h);
    const char *ev = risk_history_event_id(h), *note = risk_history_note(h);
    switch (risk_history_action_get(h)) {
    case RISK_HISTORY_INGEST: return st_ingest(e, a, u, ev);
    case RISK_HISTORY_RESOLVE: return risk_engine_resolve(e, a, ev, note);
    case RISK_HISTORY_FALSE_POSITIVE: return risk_engine_false_positive(e, a, ev, note);
    case RISK_HISTORY_IGNORE: return risk_engine_ignore(e, a, ev, note);
    case RISK_HISTORY_REACTIVATE: return risk_engine_reactivate(e, a, ev, note);
    case RISK_HISTORY_DISMISS_ALL: return risk_engine_dismiss(e, a, u, note, NULL);
    case RISK_HISTORY_SECURE_PASSWORD_CHANGE:
    case RISK_HISTORY_INSECURE_PASSWORD_CHANGE:
        return risk_engine_password_changed(e, a, u, RISK_PASSWORD_SECURE_CHANGE);
    case RISK_HISTORY_CONFIRM_COMPROMISED: return risk_engine_confirm_compromised(e, a, u);
    case RISK_HISTORY_USER_UPSERT: {
        risk_user *x = NULL;
        int rc = risk_user_new(&x, u);
        if (rc == RISK_OK && strncmp(u, "shared-", 7) == 0)
            rc = risk_user_set_mfa_registered(x, 1, ST_T0 - 100000);
        if (rc == RISK_OK)
            rc = risk_engine_upsert_user(e, a, x);
        risk_user_free(x);
        return rc;
    }
    default:
        return RISK_EINVAL;
    }
}

static risk_store *st_store_of(risk_engine *e);

/* Run the stress; 0 on success, else writes why. */
static int st_stress(int threads, int ops, char *why, size_t whylen)
{
    risk_engine *e = st_engine();
    if (!e) {
        snprintf(why, whylen, "engine: %s", risk_error_last());
        return 1;
    }
    /* shared users are MFA-registered from the start */
    for (int i = 0; i < ST_SHARED; i++) {
        char name[32];
        snprintf(name, sizeof name, "shared-%d", i);
        risk_user *u = NULL;
        risk_user_new(&u, name);
        risk_user_set_mfa_registered(u, 1, ST_T0 - 100000);
        if (risk_engine_upsert_user(e, "setup", u)) {
            snprintf(why, whylen, "setup: %s", risk_error_last());
            return 1;
        }
        risk_user_free(u);
    }
    pthread_t tid[64];
    struct st_thread t[64];
    for (int i = 0; i < threads; i++) {
        t[i] = (struct st_thread){ e, i, ops, 7919u * (unsigned)(i + 1), 0, "" };
        pthread_create(&tid[i], NULL, st_run, &t[i]);
    }
    int fail = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        if (t[i].bad && !fail) {
            snprintf(why, whylen, "thread %d: %s", i, t[i].why);
            fail = 1;
        }
    }
    risk_engine *r = st_engine();
    int rc = fail ? 0 : risk_engine_history_feed(e, 0, st_replay_item, r);
    if (!fail && rc) {
        snprintf(why, whylen, "replay: %d %s", rc, risk_error_last());
        fail = 1;
    }
    if (!fail) {
        uint8_t *d1 = NULL, *d2 = NULL;
        size_t l1 = 0, l2 = 0;
        if (store_dump(st_store_of(e), &d1, &l1) || store_dump(st_store_of(r), &d2, &l2)) {
            snprintf(why, whylen, "dump: %s", risk_error_last());
            fail = 1;
        } else if (l1 != l2 || memcmp(d1, d2, l1) != 0) {
            snprintf(why, whylen, "the concurrent store (%zu bytes) differs from its serial "
                     "replay (%zu bytes)", l1, l2);
            fail = 1;
        }
        free(d1);
        free(d2);
    }
    risk_engine_free(r);
    risk_engine_free(e);
    return fail;
}

/* The store table is the first member of the engine (lib/engine.h); tests
 * that only see the public API reach it through this declaration. */
static risk_store *st_store_of(risk_engine *e)
{
    return (risk_store *)(void *)e;
}

#endif
