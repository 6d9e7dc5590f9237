/* The sign-in's read of the users map without its lock (umap_peek,
 * lib/memstore.h) under ThreadSanitizer: readers peek while writers add
 * users (the shards' tables grow from 8 slots to 64, and outgrown
 * tables are freed or retired under the readers), rewrite them, and
 * create and roll back subjects (removals shift slots). Each write of a
 * user sets its level to v % 4 and next_change_at to v * 1000 for a
 * count v of its own: a peek that mixed two writes (a torn read the
 * sequence lock let through) shows a level and a time that disagree.
 * A few users are rewritten without pause while readers peek them.
 * Exit 0 when no peek was torn and every user written was found with its
 * last write; TSan itself exits 66 on a race. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <librisk.h>
#include <librisk/store.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

enum { WRITERS = 2, READERS = 2, USERS = 6000, ROUNDS = 3, HOT = 4, HOT_WRITES = 100000 };
/* `quick` (the unit suite's run, under ASan and valgrind too): a quarter
 * of the hot writes and half the users, still growing every table */
static int users = USERS, hot_writes = HOT_WRITES;

static risk_store st;
static const risk_peeker *pk;
static void *pk_ctx;
static atomic_int stop, bad, peeks, found;
static char why[256];

static void fail(const char *msg, const char *id)
{
    if (atomic_exchange(&bad, 1) == 0)
        snprintf(why, sizeof why, "%s: %s", msg, id);
}

/* Ids of one writer's users: w, then i; some longer than a slot holds. */
static void uid(char *buf, size_t cap, int w, int i)
{
    if (i % 7 == 6)
        snprintf(buf, cap, "writer-%d-user-%d-with-an-id-longer-than-a-slot", w, i);
    else
        snprintf(buf, cap, "w%d-u%d", w, i);
}

static int put(const char *id, int64_t v, uint64_t version)
{
    void *t = NULL;
    risk_user *u = NULL;
    int rc = st.begin(st.ctx, id, &t);
    if (rc == RISK_OK && (rc = risk_user_new(&u, id)) == RISK_OK) {
        u->level = (uint32_t)(v % 4);
        u->next_change_at = v * 1000;
        u->version = version;
        rc = st.put_user(st.ctx, t, u);
    }
    risk_user_free(u);
    if (rc == RISK_OK)
        return st.commit(st.ctx, t);
    if (t != NULL)
        st.rollback(st.ctx, t);
    return rc;
}

static void *writer(void *arg)
{
    int w = (int)(intptr_t)arg;
    char id[96];
    for (int r = 0; r < ROUNDS && !atomic_load(&bad); r++) {
        for (int i = 0; i < users; i++) {
            uid(id, sizeof id, w, i);
            if (put(id, (int64_t)r * 4 + i % 4 + 1, (uint64_t)r + 1) != RISK_OK)
                fail("put failed", risk_error_last());
            if (i % 50 == 0) { /* a subject made by a prepare, gone with its rollback */
                void *t = NULL;
                risk_user *u = NULL;
                snprintf(id, sizeof id, "w%d-ghost-%d-%d", w, r, i);
                if (st.begin(st.ctx, id, &t) != RISK_OK || risk_user_new(&u, id) != RISK_OK ||
                    (u->version = 1, st.put_user(st.ctx, t, u)) != RISK_OK ||
                    risk_memstore_prepare(st.ctx, t) != RISK_OK)
                    fail("ghost prepare failed", risk_error_last());
                risk_user_free(u);
                if (t != NULL)
                    st.rollback(st.ctx, t);
            }
        }
    }
    return NULL;
}

/* A few users rewritten over and over, which the readers peek half the
 * time: where a peek that skipped the sequence lock's check would see
 * two writes' words. */
static void *hot_writer(void *arg)
{
    (void)arg;
    char id[32];
    for (int n = 0; n < hot_writes && !atomic_load(&bad); n++) {
        snprintf(id, sizeof id, "hot-%d", n % HOT);
        if (put(id, n / HOT + 1, (uint64_t)(n / HOT) + 1) != RISK_OK)
            fail("hot put failed", risk_error_last());
    }
    return NULL;
}

static void *reader(void *arg)
{
    unsigned x = (unsigned)(intptr_t)arg * 2654435761u + 1;
    char id[96];
    while (!atomic_load(&stop) && !atomic_load(&bad)) {
        x = x * 1103515245u + 12345u;
        int w = (int)(x >> 8) % WRITERS, i = (int)(x >> 12) % users;
        if (x & 0x10000)
            snprintf(id, sizeof id, "hot-%d", (int)(x >> 20) % HOT);
        else if ((x >> 28) == 0)
            snprintf(id, sizeof id, "w%d-ghost-0-%d", w, i - i % 50);
        else
            uid(id, sizeof id, w, i);
        risk_peek p;
        int rc = pk->peek(pk_ctx, id, strlen(id), &p);
        atomic_fetch_add_explicit(&peeks, 1, memory_order_relaxed);
        if (rc == RISK_OK) {
            atomic_fetch_add_explicit(&found, 1, memory_order_relaxed);
            if (p.next_change_at <= 0 || p.next_change_at % 1000 != 0 ||
                (uint32_t)(p.next_change_at / 1000 % 4) != p.level)
                fail("a torn peek", id);
        } else if (rc != RISK_ENOTFOUND)
            fail("peek failed", risk_error_last());
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "quick") == 0)
        users = USERS / 2, hot_writes = HOT_WRITES / 4;
    if (risk_memory_store_new(&st) != RISK_OK)
        return fprintf(stderr, "tsan-peek: %s\n", risk_error_last()), 1;
    pk = risk_store_peeker_of(&st, &pk_ctx);
    if (pk == NULL)
        return fprintf(stderr, "tsan-peek: no peek for the memory store\n"), 1;
    pthread_t wt[WRITERS], rt[READERS], ht;
    for (int i = 0; i < READERS; i++)
        pthread_create(&rt[i], NULL, reader, (void *)(intptr_t)i);
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&wt[i], NULL, writer, (void *)(intptr_t)i);
    pthread_create(&ht, NULL, hot_writer, NULL);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(wt[i], NULL);
    pthread_join(ht, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    /* every user shows its last write; no ghost is left */
    char id[96];
    for (int w = 0; w < WRITERS && !atomic_load(&bad); w++)
        for (int i = 0; i < users; i++) {
            risk_peek p;
            uid(id, sizeof id, w, i);
            int64_t v = (int64_t)(ROUNDS - 1) * 4 + i % 4 + 1;
            if (pk->peek(pk_ctx, id, strlen(id), &p) != RISK_OK || p.next_change_at != v * 1000)
                fail("the last write is not what a peek shows", id);
            snprintf(id, sizeof id, "w%d-ghost-0-%d", w, i - i % 50);
            if (pk->peek(pk_ctx, id, strlen(id), &p) != RISK_ENOTFOUND)
                fail("a rolled-back subject is found", id);
        }
    st.close(st.ctx);
    if (atomic_load(&bad)) {
        fprintf(stderr, "tsan-peek: %s\n", why);
        return 1;
    }
    printf("tsan-peek: %d writers x %d users x %d rounds, %d readers: %d peeks (%d found), "
           "none torn\n", WRITERS, users, ROUNDS, READERS, atomic_load(&peeks),
           atomic_load(&found));
    return 0;
}
