/* Engine internals shared by engine.c, engine_query.c and the §10 modules
 * (audit.c, whatif.c, receipt.c). Not installed. */
#ifndef LIBRISK_ENGINE_H
#define LIBRISK_ENGINE_H

#include "internal.h"

#include <limits.h>
#include <pthread.h>

#define RISK_LOCK_STRIPES 1024u
#define RISK_META_POLICY_CHAIN "chain:policies"
#define RISK_COMPROMISED_TYPE "adminConfirmedUserCompromised"
#define RISK_RESERVED_PREFIX "librisk:"
#define RISK_SYSTEM_ACTOR "system"

struct risk_engine {
    /* The table the engine calls: the host's own when it is a built-in
     * store, else the guard's trampolines (lib/store_guard.c), whose ctx
     * is `host`. */
    risk_store st;
    risk_store host; /* the table given to risk_engine_new() */
    /* the store's two-half commit, or NULL; called with host.ctx (the
     * journal's own, also when a host's optional callbacks put the guard
     * in front of its table) */
    const risk_store_split *split;
    /* the store's count of policy changes (risk_store_policy_gen_of), or
     * NULL; and the count the policy cache was loaded at */
    const _Atomic uint64_t *pgen;
    _Atomic uint64_t pgen_seen;
    /* a built-in store's one-line read of a user for the sign-in
     * (risk_store_peeker_of), or NULL: view_user then */
    const risk_peeker *peek;
    void *peek_ctx;
    risk_scoring scoring;       /* type_aging points into owned copies below */
    risk_type_aging *type_aging; /* owned */
    risk_engine_options opts;   /* scoring/receipt_key pointers not used */
    uint8_t *receipt_key;       /* owned copy, or NULL */
    size_t receipt_key_len;

    pthread_mutex_t stripes[RISK_LOCK_STRIPES]; /* per-user serialisation (R-CC-1) */
    pthread_mutex_t policy_write;               /* serialises policy changes */

    /* Policy cache (sorted by name), invalidated by policy changes. */
    pthread_rwlock_t policy_lock;
    int policy_valid;
    risk_policy **policies;
    size_t n_policies;

    /* The cached policies compiled into the sign-in's decision table
     * (lib/policy.c), which sign-ins read without taking a lock or
     * writing anything: a sequence lock. ptab_seq is odd while ptab holds
     * the table of the cached policies; a writer (policy_lock held as
     * writer) makes it even, rewrites ptab, and makes it odd again. A
     * sign-in reads the count, decides, and keeps its verdict only if the
     * count has not moved (lib/engine_signin.c). The words live inside the
     * engine, so no reader can ever hold a pointer to freed memory, and
     * padding keeps them off the lines of the fields around them. The
     * engine is zeroed at creation: count 0, no table. */
    char ptab_pad0[64];
    _Atomic uint64_t ptab_seq;
    _Atomic uint64_t ptab[RISK_PTAB_WORDS];
    char ptab_pad1[64];
};

/* Fill guard with the checking trampolines in front of the host table h
 * (lib/store_guard.c); h must outlive guard. */
void risk_store_guard(risk_store *guard, const risk_store *h);
/* Whether the engine calls its store through the guard (a host's store):
 * then the checks that cost more than a compare run too (duplicates). */
static inline int risk_engine_guarded(const risk_engine *e)
{
    return e->st.ctx == (const void *)&e->host;
}
/* RISK_ECORRUPT naming what (e.g. "store.list_users: listed a user twice")
 * when two of the n ids are equal. Sorts ids (the caller's scratch copy). */
int risk_ids_unique(const char **ids, size_t n, const char *what);

/* 64-bit FNV-1a of a string: the lock stripe and reserved ids use it. */
uint64_t risk_hash_str(const char *s);

int64_t risk_engine_clock(const risk_engine *e);

/* Load the policy cache if needed; on success the read lock is held and
 * the caller must release it with risk_engine_policies_unlock(). */
int risk_engine_policies_rdlock(risk_engine *e);
void risk_engine_policies_unlock(risk_engine *e);
/* Before a sign-in: drop the cache if another engine sharing a built-in
 * store changed the policies since it was loaded (risk_store_policy_gen_of).
 * Inline: two loads on every sign-in. */
static inline void risk_engine_follow_policies(risk_engine *e)
{
    if (e->pgen && atomic_load_explicit(e->pgen, memory_order_acquire) !=
                       atomic_load_explicit(&e->pgen_seen, memory_order_relaxed))
        (void)risk_engine_policies_changed(e);
}
/* Drop the cached policies (lock held by the caller, or engine teardown). */
void risk_engine_policies_clear(risk_engine *e);

/* Whether MFA counts for self-remediation (R-PO-11). */
int risk_user_mfa_counts(const risk_user *u);

/* Read a user's events (committed) as owned copies, sorted by detected_at
 * then id, inside a read transaction. */
/* A user and all its events (ev NULL: the user only) as stored, read in a
 * transaction of their own (rolled back); on failure nothing is left to
 * free. */
int risk_engine_read_user(risk_engine *e, const char *user_id, risk_user **user,
                          risk_event ***ev, size_t *nev);
int risk_engine_load_events(risk_engine *e, void *txn, const char *user_id,
                            risk_event ***out, size_t *n);
void risk_events_free(risk_event **ev, size_t n);
/* The same, or only the active ones. With `blk`: copies for one
 * operation (risk_event_dup_borrowing) placed in *blk, freed with it
 * (evblk_free) after the events, never handed out. */
struct evblk;
int risk_engine_load_events_as(risk_engine *e, void *txn, const char *user_id,
                               int active_only, struct evblk **blk, risk_event ***out,
                               size_t *n);
void evblk_free(struct evblk **blk);

/* The user and its events as of `now` without writing: what the aging
 * catch-up would produce (R-SC-2: "a sign-in is right at any time without
 * writing"). user and events are modified in place. */
void risk_engine_simulate_aging(const risk_engine *e, risk_user *user, risk_event **ev,
                                size_t n, int64_t now);

/* Run the aging catch-up of one user as its own operation (R-SC-2);
 * *closed (optional) receives the number of events it closed. */
int risk_engine_catch_up(risk_engine *e, const char *user_id, uint32_t *closed);

/* Build the receipt of a decided verdict (R-RC-1, lib/receipt.c). */
/* The receipt of verdict v (R-RC-1), decided on the user record of this
 * version (0: none). Under the user's lock stripe, in one transaction: the
 * user, then the events that counted. RISK_ECONFLICT: the user changed
 * since the decision (the sign-in decides again). */
int risk_engine_make_receipt(risk_engine *e, risk_verdict *v, uint64_t version);
/* The same with the user's stripe lock already held by the caller
 * (stripe_held 1), as the sign-in's last attempt holds it. */
int risk_engine_make_receipt_as(risk_engine *e, risk_verdict *v, uint64_t version,
                                int stripe_held);
/* The lock stripe that serialises the operations on user_id (R-CC-1). */
pthread_mutex_t *risk_engine_stripe(risk_engine *e, const char *user_id);

/* Compute a history item's chain hash from the previous head (R-AU-1) and
 * write it to the item; the new head is the item's chain. */
int risk_history_seal(risk_history *item, const uint8_t prev[32]);

/* ---- the per-user operation frame (lib/engine.c) ---- */

#define CHECK_ENGINE(e)                                                                  \
    do {                                                                                 \
        if (!(e))                                                                        \
            return risk_err(RISK_EINVAL, "engine: NULL");                                \
    } while (0)

struct ev_vec {
    risk_event **v;
    size_t n, cap;
};
int ev_push(struct ev_vec *vec, risk_event *ev);

struct uop;
typedef int (*uop_fn)(struct uop *o);

struct uop {
    risk_engine *e;
    void *txn;
    int64_t now;
    const char *actor;
    const char *user_id;
    uop_fn fn;
    void *arg;

    risk_user *user;   /* working copy; NULL if the user does not exist */
    risk_user *orig;   /* as read, copied only when a user-change hook wants it */
    uint32_t orig_level, orig_state, orig_detail; /* as read (meaningless if is_new) */
    uint64_t orig_version;
    int is_new;
    risk_event **ev;   /* the user's events, when loaded */
    size_t nev;
    struct evblk *blk; /* where the loaded copies live (freed by uop_reset) */
    int ev_loaded;
    uint8_t *dirty;    /* per event: must be written */
    risk_event *added; /* a new event (ingest, confirm compromised) */
    risk_event added_buf; /* `added` may point here: a view of the caller's
                           * event whose strings it borrows (never freed) */

    /* The state the operation's history item reports as "before". */
    uint32_t lvl_before, st_before;
    int wrote_history;
    uint32_t aged; /* events the catch-up closed */
    /* The catch-up changed level, state or detail (aged_change): when the
     * last event it closed aged, and the user's fields after it. If the
     * rest of the operation changes none of them, risk_updated_at is that
     * time, not the time someone happened to look (§2). */
    int aged_change;
    int64_t aged_change_at;
    uint32_t ca_level, ca_state, ca_detail;
    int write_user; /* the user record must be written at the end */
    int events_all; /* load closed events too (default: active only) */

    /* After commit. */
    risk_event **fb;
    size_t nfb;
    int fb_withdrawn;
};

void uop_reset(struct uop *o);
int uop_load_user(struct uop *o, int create);
int uop_load_events(struct uop *o);
int uop_add_event(struct uop *o, risk_event *ev, int dirty);
int uop_act(struct uop *o, size_t i, risk_action action, const char *note);
int is_reserved_event(const risk_event *ev);
/* When aging closes ev (R-SC-2): detected_at + its period, if ev is active,
 * not reserved, ages, and is past that time at now; else RISK_TIME_NONE. */
int64_t aged_at(const risk_engine *e, const risk_event *ev, int64_t now);
int uop_rescore(struct uop *o);
void set_state(risk_user *u, risk_state s, risk_detail d);
int uop_history(struct uop *o, const char *actor, risk_history_action action,
                const char *event_id, uint32_t lvl_before, uint32_t st_before, uint32_t changed,
                const char *note);
int uop_catch_up(struct uop *o);
int uop_open(struct uop *o); /* uop_load_user(o, 0) + uop_catch_up(o) */
int uop_write(struct uop *o);
int uop_put_user(struct uop *o);
int uop_close_all(struct uop *o, risk_action action, const char *note, uint32_t *n);
void uop_settle(struct uop *o, uint32_t closed, risk_state s, risk_detail d);
int uop_keep_feedback(struct uop *o, const risk_event *ev);
void uop_hooks(struct uop *o);
int run_user_op(risk_engine *e, const char *actor, const char *user_id, uop_fn fn, void *arg);
/* run_user_op, but when defer is not NULL and the engine may defer (a
 * store that commits and waits for the disk in two steps, no post-commit
 * hooks), a commit that still has to become durable returns RISK_OK at
 * once with its ticket in *defer (else *defer is 0): the caller then waits
 * with e->split->wait_durable before it reports the result (the bulk
 * calls, whose items share their syncs). */
int run_user_op_at(risk_engine *e, const char *actor, const char *user_id, uop_fn fn, void *arg,
                   uint64_t *defer);
int check_actor_user(const char *actor, const char *user_id);
void arrive_at_risk(risk_user *u);

#endif /* LIBRISK_ENGINE_H */
