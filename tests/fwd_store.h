/* A host store for tests that passes every callback on to an inner store
 * (the memory store or a journal), so that a test can make one callback
 * misbehave and keep the rest honest.
 *
 * One per test program (the state is a static): fill FWD.in, build the
 * table with fwd_table() (fwd_memory() does both over a new memory
 * store), replace the callbacks the test needs, and reach
 * the inner store through FWD.in from the replacements. The table is not
 * a built-in one, so the engine guards it (lib/store_guard.c), as it
 * guards any host's store.
 *
 * Two misbehaviours every user of this file wanted are built in:
 *   FWD.fail:      called first by every forwarded callback that returns a
 *                  code, with the callback's name; a non-zero result is
 *                  returned as the callback's (commit rolls the inner txn
 *                  back first), as a store failing there would;
 *   FWD.conflicts: commits still to refuse with RISK_ECONFLICT (the inner
 *                  txn rolled back); FWD.commits counts commit calls. */
#ifndef LIBRISK_TEST_FWD_STORE_H
#define LIBRISK_TEST_FWD_STORE_H

#include <librisk.h>
#include <librisk/store.h>

#include <stddef.h>
#include <string.h>

static struct {
    risk_store in;
    int (*fail)(const char *callback); /* NULL: never */
    long conflicts;
    long commits;
} FWD;

static int fwd_fail(const char *callback)
{
    return FWD.fail ? FWD.fail(callback) : 0;
}

#define FWD_CB(name, params, args)                                                       \
    static int fwd_##name params                                                         \
    {                                                                                    \
        (void)ctx;                                                                       \
        int rc_ = fwd_fail(#name);                                                       \
        return rc_ ? rc_ : FWD.in.name args;                                             \
    }

FWD_CB(begin, (void *ctx, const char *u, void **txn), (FWD.in.ctx, u, txn))
FWD_CB(get_user, (void *ctx, void *t, const char *id, risk_user **o), (FWD.in.ctx, t, id, o))
FWD_CB(put_user, (void *ctx, void *t, const risk_user *u), (FWD.in.ctx, t, u))
FWD_CB(get_event, (void *ctx, void *t, const char *id, risk_event **o), (FWD.in.ctx, t, id, o))
FWD_CB(put_event, (void *ctx, void *t, const risk_event *e), (FWD.in.ctx, t, e))
FWD_CB(user_events, (void *ctx, void *t, const char *u, risk_event_visit_fn fn, void *a),
       (FWD.in.ctx, t, u, fn, a))
FWD_CB(reserve_seq, (void *ctx, void *t, uint64_t *s), (FWD.in.ctx, t, s))
FWD_CB(append_history, (void *ctx, void *t, const risk_history *h), (FWD.in.ctx, t, h))
FWD_CB(list_policies, (void *ctx, void *t, risk_policy_visit_fn fn, void *a),
       (FWD.in.ctx, t, fn, a))
FWD_CB(put_policy, (void *ctx, void *t, const risk_policy *p), (FWD.in.ctx, t, p))
FWD_CB(remove_policy, (void *ctx, void *t, const char *n), (FWD.in.ctx, t, n))
FWD_CB(get_meta, (void *ctx, void *t, const char *k, uint8_t *b, size_t c, size_t *l),
       (FWD.in.ctx, t, k, b, c, l))
FWD_CB(put_meta, (void *ctx, void *t, const char *k, const uint8_t *b, size_t l),
       (FWD.in.ctx, t, k, b, l))
FWD_CB(view_user, (void *ctx, const char *id, risk_user_visit_fn fn, void *a),
       (FWD.in.ctx, id, fn, a))
FWD_CB(list_users, (void *ctx, risk_level m, risk_user_visit_fn fn, void *a),
       (FWD.in.ctx, m, fn, a))
FWD_CB(read_history, (void *ctx, const char *u, uint64_t s, risk_history_visit_fn fn, void *a),
       (FWD.in.ctx, u, s, fn, a))
FWD_CB(compact, (void *ctx), (FWD.in.ctx))
FWD_CB(backup, (void *ctx, const char *path), (FWD.in.ctx, path))

static int fwd_commit(void *ctx, void *t)
{
    (void)ctx;
    int rc = fwd_fail("commit");
    if (rc == 0 && FWD.commits++ < FWD.conflicts)
        rc = risk_error_set(RISK_ECONFLICT, "injected conflict");
    if (rc) {
        FWD.in.rollback(FWD.in.ctx, t);
        return rc;
    }
    return FWD.in.commit(FWD.in.ctx, t);
}
static void fwd_rollback(void *ctx, void *t)
{
    (void)ctx;
    FWD.in.rollback(FWD.in.ctx, t);
}
static void fwd_close(void *ctx)
{
    (void)ctx;
    if (FWD.in.close)
        FWD.in.close(FWD.in.ctx);
}
static void fwd_prefetch_users(void *ctx, const char *const *ids, size_t n)
{
    (void)ctx;
    FWD.in.prefetch_users(FWD.in.ctx, ids, n);
}
static void fwd_prefetch_events(void *ctx, const char *const *ids, size_t n)
{
    (void)ctx;
    FWD.in.prefetch_events(FWD.in.ctx, ids, n);
}

/* The forwarding table over FWD.in: the same optional callbacks as the
 * inner store has, each passed on with the inner store's ctx. */
static risk_store fwd_table(void)
{
    const risk_store *in = &FWD.in;
    risk_store s = {
        .version = in->version, .ctx = &FWD, .begin = fwd_begin, .commit = fwd_commit,
        .rollback = fwd_rollback, .get_user = fwd_get_user, .put_user = fwd_put_user,
        .get_event = fwd_get_event, .put_event = fwd_put_event, .user_events = fwd_user_events,
        .reserve_seq = fwd_reserve_seq, .append_history = fwd_append_history,
        .list_policies = fwd_list_policies, .put_policy = fwd_put_policy,
        .remove_policy = fwd_remove_policy, .get_meta = fwd_get_meta, .put_meta = fwd_put_meta,
        .close = fwd_close,
        .view_user = in->view_user ? fwd_view_user : NULL,
        .list_users = in->list_users ? fwd_list_users : NULL,
        .read_history = in->read_history ? fwd_read_history : NULL,
        .compact = in->compact ? fwd_compact : NULL,
        .backup = in->backup ? fwd_backup : NULL,
        .prefetch_users = in->version >= 2 && in->prefetch_users ? fwd_prefetch_users : NULL,
        .prefetch_events = in->version >= 3 && in->prefetch_events ? fwd_prefetch_events : NULL,
    };
    return s;
}

/* FWD cleared, over a new memory store; *out its forwarding table. */
static inline int fwd_memory(risk_store *out)
{
    memset(&FWD, 0, sizeof FWD);
    int rc = risk_memory_store_new(&FWD.in);
    if (rc == RISK_OK)
        *out = fwd_table();
    return rc;
}

#endif
