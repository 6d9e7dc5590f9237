/* The engine: every changing operation of SPEC §5–§6, atomic over the
 * storage callbacks (DESIGN.md "One operation, end to end").
 *
 * Shape of a per-user operation (run_user_op):
 *   validate arguments → take the user's lock stripe → begin → read the
 *   user (and its events where needed) → aging catch-up (R-SC-2) → the
 *   operation's pure transitions → rescore → write events, user, history
 *   → commit; any failure rolls back; RISK_ECONFLICT retries from begin
 *   (R-ST-6) → release the lock → hooks after commit (R-IN-2, R-OP-8).
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

uint64_t risk_hash_str(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static int64_t real_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t risk_engine_clock(const risk_engine *e)
{
    int64_t t = e->opts.clock ? e->opts.clock(e->opts.clock_userdata) : real_clock();
    if (t < 0)
        t = 0;
    if (t >= RISK_TIME_MAX)
        t = RISK_TIME_MAX - 1;
    return t;
}

int64_t risk_engine_now(const risk_engine *engine)
{
    return engine ? risk_engine_clock(engine) : RISK_TIME_NONE;
}

static pthread_mutex_t *stripe_for(risk_engine *e, const char *user_id)
{
    return &e->stripes[risk_hash_str(user_id) & (RISK_LOCK_STRIPES - 1)];
}

int risk_user_mfa_counts(const risk_user *u)
{
    /* R-PO-11: MFA counts only if registered before the risk began. An
     * unknown registration time (an old record) is taken as "before". */
    if (!u || !u->mfa_registered)
        return 0;
    if (u->risk_since == RISK_TIME_NONE || u->mfa_registered_at == RISK_TIME_NONE)
        return 1;
    return u->mfa_registered_at <= u->risk_since;
}

void risk_events_free(risk_event **ev, size_t n)
{
    if (!ev)
        return;
    for (size_t i = 0; i < n; i++)
        risk_event_free(ev[i]);
    risk_free(ev);
}

static int event_cmp(const void *a, const void *b)
{
    const risk_event *x = *(const risk_event *const *)a;
    const risk_event *y = *(const risk_event *const *)b;
    if (x->detected_at != y->detected_at)
        return x->detected_at < y->detected_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

struct ev_vec {
    risk_event **v;
    size_t n, cap;
};

static int ev_push(struct ev_vec *vec, risk_event *ev)
{
    if (vec->n == vec->cap) {
        size_t ncap = vec->cap ? vec->cap * 2 : 8;
        risk_event **nv = risk_realloc(vec->v, ncap * sizeof *nv);
        if (!nv)
            return risk_err(RISK_ENOMEM, "events: out of memory");
        vec->v = nv;
        vec->cap = ncap;
    }
    vec->v[vec->n++] = ev;
    return RISK_OK;
}

static int collect_event(const risk_event *ev, void *arg)
{
    risk_event *copy = NULL;
    int rc = risk_event_dup(&copy, ev);
    if (rc)
        return rc;
    rc = ev_push(arg, copy);
    if (rc)
        risk_event_free(copy);
    return rc;
}

int risk_engine_load_events(risk_engine *e, void *txn, const char *user_id, risk_event ***out,
                            size_t *n)
{
    struct ev_vec vec = { 0 };
    int rc = e->st.user_events(e->st.ctx, txn, user_id, collect_event, &vec);
    if (rc) {
        risk_events_free(vec.v, vec.n);
        return rc;
    }
    if (vec.n > 1)
        qsort(vec.v, vec.n, sizeof *vec.v, event_cmp);
    *out = vec.v;
    *n = vec.n;
    return RISK_OK;
}

int risk_history_seal(risk_history *item, const uint8_t prev[32])
{
    uint8_t stackbuf[2048];
    uint8_t *buf = stackbuf;
    size_t len = 0;
    int rc = risk_history_encode_body(stackbuf, sizeof stackbuf, &len, item);
    if (rc == RISK_ERANGE) {
        buf = risk_malloc(len);
        if (!buf)
            return risk_err(RISK_ENOMEM, "history: out of memory");
        rc = risk_history_encode_body(buf, len, &len, item);
    }
    if (rc == RISK_OK) {
        risk_sha256_ctx c;
        risk_sha256_init(&c);
        risk_sha256_update(&c, prev, 32);
        risk_sha256_update(&c, buf, len);
        risk_sha256_final(&c, item->chain);
    }
    if (buf != stackbuf)
        risk_free(buf);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Engine lifecycle                                                   */

int risk_engine_options_init(risk_engine_options *opts)
{
    if (!opts)
        return risk_err(RISK_EINVAL, "opts: NULL");
    risk_engine_options init = RISK_ENGINE_OPTIONS_INIT;
    *opts = init;
    return RISK_OK;
}

static int check_store(const risk_store *s)
{
    if (s->version < 1)
        return risk_err(RISK_EINVAL, "store.version: %u, expected %u", (unsigned)s->version,
                        (unsigned)RISK_STORE_VERSION);
    if (s->version > RISK_STORE_VERSION)
        return risk_err(RISK_EINVAL, "store.version: %u is newer than this library (%u)",
                        (unsigned)s->version, (unsigned)RISK_STORE_VERSION);
#define REQ(f)                                                                           \
    if (!s->f)                                                                           \
        return risk_err(RISK_EINVAL, "store." #f ": required callback is NULL");
    REQ(begin)
    REQ(commit)
    REQ(rollback)
    REQ(get_user)
    REQ(put_user)
    REQ(get_event)
    REQ(put_event)
    REQ(user_events)
    REQ(reserve_seq)
    REQ(append_history)
    REQ(list_policies)
    REQ(put_policy)
    REQ(remove_policy)
    REQ(get_meta)
    REQ(put_meta)
#undef REQ
    return RISK_OK;
}

static int copy_scoring(risk_engine *e, const risk_scoring *sc)
{
    int rc = risk_scoring_check(sc);
    if (rc)
        return rc;
    e->scoring = *sc;
    e->scoring.type_aging = NULL;
    e->scoring.type_aging_count = 0;
    if (sc->type_aging_count) {
        e->type_aging = risk_calloc(sc->type_aging_count, sizeof *e->type_aging);
        if (!e->type_aging)
            return risk_err(RISK_ENOMEM, "scoring: out of memory");
        for (uint32_t i = 0; i < sc->type_aging_count; i++) {
            e->type_aging[i].type = risk_strdup(sc->type_aging[i].type);
            e->type_aging[i].aging_ms = sc->type_aging[i].aging_ms;
            e->scoring.type_aging_count = i + 1; /* for cleanup */
            if (!e->type_aging[i].type)
                return risk_err(RISK_ENOMEM, "scoring: out of memory");
        }
        e->scoring.type_aging = e->type_aging;
    }
    return RISK_OK;
}

static void policies_clear(risk_engine *e)
{
    for (size_t i = 0; i < e->n_policies; i++)
        risk_policy_free(e->policies[i]);
    risk_free(e->policies);
    e->policies = NULL;
    e->n_policies = 0;
    e->policy_valid = 0;
}

static void engine_destroy(risk_engine *e, int close_store)
{
    policies_clear(e);
    if (e->type_aging) {
        for (uint32_t i = 0; i < e->scoring.type_aging_count; i++)
            risk_free((char *)e->type_aging[i].type);
        risk_free(e->type_aging);
    }
    if (e->receipt_key) {
        memset(e->receipt_key, 0, e->receipt_key_len);
        risk_free(e->receipt_key);
    }
    for (unsigned i = 0; i < RISK_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&e->stripes[i]);
    pthread_mutex_destroy(&e->policy_write);
    pthread_rwlock_destroy(&e->policy_lock);
    if (close_store && e->st.close)
        e->st.close(e->st.ctx);
    risk_free(e);
}

int risk_engine_new(risk_engine **out, const risk_store *store, const risk_engine_options *opts)
{
    if (!out)
        return risk_err(RISK_EINVAL, "out: NULL");
    *out = NULL;
    if (!store)
        return risk_err(RISK_EINVAL, "store: NULL");
    int rc = check_store(store);
    if (rc)
        return rc;
    risk_engine_options o = RISK_ENGINE_OPTIONS_INIT;
    if (opts) {
        if (opts->version != RISK_ENGINE_OPTIONS_VERSION)
            return risk_err(RISK_EINVAL, "opts.version: %u, expected %u",
                            (unsigned)opts->version, (unsigned)RISK_ENGINE_OPTIONS_VERSION);
        o = *opts;
    }
    if (o.refuse_unknown_users > 1)
        return risk_err(RISK_EINVAL, "opts.refuse_unknown_users: must be 0 or 1");
    if (o.temp_password_length && (o.temp_password_length < 12 || o.temp_password_length > 128))
        return risk_err(RISK_EINVAL, "opts.temp_password_length: %u, must be 12–128",
                        (unsigned)o.temp_password_length);
    if (o.receipt_key && o.receipt_key_len < 16)
        return risk_err(RISK_EINVAL, "opts.receipt_key_len: %zu, at least 16 bytes",
                        o.receipt_key_len);
    if (!o.receipt_key && o.receipt_key_len)
        return risk_err(RISK_EINVAL, "opts.receipt_key: NULL with a length");
    if (o.max_conflict_retries > 1000)
        return risk_err(RISK_EINVAL, "opts.max_conflict_retries: at most 1000");

    risk_engine *e = risk_calloc(1, sizeof *e);
    if (!e)
        return risk_err(RISK_ENOMEM, "engine: out of memory");
    for (unsigned i = 0; i < RISK_LOCK_STRIPES; i++)
        pthread_mutex_init(&e->stripes[i], NULL);
    pthread_mutex_init(&e->policy_write, NULL);
    pthread_rwlock_init(&e->policy_lock, NULL);
    e->st = *store;
    e->opts = o;
    e->opts.scoring = NULL;
    e->opts.receipt_key = NULL;
    if (!e->opts.temp_password_length)
        e->opts.temp_password_length = 16;
    if (!e->opts.max_conflict_retries)
        e->opts.max_conflict_retries = 8;
    rc = copy_scoring(e, o.scoring ? o.scoring : &risk_scoring_default);
    if (rc == RISK_OK && o.receipt_key) {
        e->receipt_key = risk_malloc(o.receipt_key_len);
        if (!e->receipt_key)
            rc = risk_err(RISK_ENOMEM, "opts.receipt_key: out of memory");
        else {
            memcpy(e->receipt_key, o.receipt_key, o.receipt_key_len);
            e->receipt_key_len = o.receipt_key_len;
        }
    }
    if (rc) {
        engine_destroy(e, 0);
        return rc;
    }
    *out = e;
    return RISK_OK;
}

void risk_engine_free(risk_engine *engine)
{
    if (engine)
        engine_destroy(engine, 1);
}

/* ------------------------------------------------------------------ */
/* Policy cache                                                       */

static int collect_policy(const risk_policy *p, void *arg)
{
    struct {
        risk_policy **v;
        size_t n, cap;
    } *vec = arg;
    if (vec->n == vec->cap) {
        size_t ncap = vec->cap ? vec->cap * 2 : 8;
        risk_policy **nv = risk_realloc(vec->v, ncap * sizeof *nv);
        if (!nv)
            return risk_err(RISK_ENOMEM, "policies: out of memory");
        vec->v = nv;
        vec->cap = ncap;
    }
    risk_policy *copy = NULL;
    int rc = risk_policy_dup(&copy, p);
    if (rc)
        return rc;
    vec->v[vec->n++] = copy;
    return RISK_OK;
}

static int policy_cmp(const void *a, const void *b)
{
    return strcmp((*(const risk_policy *const *)a)->name, (*(const risk_policy *const *)b)->name);
}

/* Read every stored policy, sorted by name, as owned copies. */
static int load_policies(risk_engine *e, void *txn, risk_policy ***out, size_t *n)
{
    struct {
        risk_policy **v;
        size_t n, cap;
    } vec = { 0 };
    int rc = e->st.list_policies(e->st.ctx, txn, collect_policy, &vec);
    if (rc) {
        for (size_t i = 0; i < vec.n; i++)
            risk_policy_free(vec.v[i]);
        risk_free(vec.v);
        return rc;
    }
    if (vec.n > 1)
        qsort(vec.v, vec.n, sizeof *vec.v, policy_cmp);
    *out = vec.v;
    *n = vec.n;
    return RISK_OK;
}

int risk_engine_policies_rdlock(risk_engine *e)
{
    pthread_rwlock_rdlock(&e->policy_lock);
    if (e->policy_valid)
        return RISK_OK;
    pthread_rwlock_unlock(&e->policy_lock);

    pthread_rwlock_wrlock(&e->policy_lock);
    int rc = RISK_OK;
    if (!e->policy_valid) {
        void *txn = NULL;
        rc = e->st.begin(e->st.ctx, NULL, &txn);
        if (rc == RISK_OK) {
            risk_policy **v = NULL;
            size_t n = 0;
            rc = load_policies(e, txn, &v, &n);
            e->st.rollback(e->st.ctx, txn);
            if (rc == RISK_OK) {
                policies_clear(e);
                e->policies = v;
                e->n_policies = n;
                e->policy_valid = 1;
            }
        }
    }
    pthread_rwlock_unlock(&e->policy_lock);
    if (rc)
        return rc;
    /* Re-take as reader. A policy change may slip in between: the caller
     * then loads again, which only costs time. */
    return risk_engine_policies_rdlock(e);
}

void risk_engine_policies_unlock(risk_engine *e)
{
    pthread_rwlock_unlock(&e->policy_lock);
}

static void policies_invalidate(risk_engine *e)
{
    pthread_rwlock_wrlock(&e->policy_lock);
    policies_clear(e);
    pthread_rwlock_unlock(&e->policy_lock);
}

/* ------------------------------------------------------------------ */
/* The per-user operation frame                                       */

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
    risk_user *orig;   /* as read (NULL for a new user), for the hook */
    int is_new;
    risk_event **ev;   /* the user's events, when loaded */
    size_t nev;
    int ev_loaded;
    uint8_t *dirty;    /* per event: must be written */
    risk_event *added; /* a new event (ingest, confirm compromised) */

    /* The state the operation's history item reports as "before". */
    uint32_t lvl_before, st_before;
    int wrote_history;
    uint32_t aged; /* events the catch-up closed */
    int write_user; /* the user record must be written at the end */

    /* After commit. */
    risk_event **fb;
    size_t nfb;
    int fb_withdrawn;
};

static void uop_reset(struct uop *o)
{
    risk_user_free(o->user);
    risk_user_free(o->orig);
    risk_events_free(o->ev, o->nev);
    risk_free(o->dirty);
    risk_event_free(o->added);
    risk_events_free(o->fb, o->nfb);
    o->user = o->orig = NULL;
    o->ev = NULL;
    o->nev = 0;
    o->ev_loaded = 0;
    o->dirty = NULL;
    o->added = NULL;
    o->is_new = 0;
    o->fb = NULL;
    o->nfb = 0;
    o->fb_withdrawn = 0;
    o->wrote_history = 0;
    o->aged = 0;
    o->write_user = 0;
}

/* Read the user; create a fresh one if missing and `create` is set. */
static int uop_load_user(struct uop *o, int create)
{
    risk_engine *e = o->e;
    risk_user *u = NULL;
    int rc = e->st.get_user(e->st.ctx, o->txn, o->user_id, &u);
    if (rc == RISK_ENOTFOUND) {
        if (!create)
            return risk_err(RISK_ENOTFOUND, "user_id: no user '%s'", o->user_id);
        rc = risk_user_new(&u, o->user_id);
        if (rc)
            return rc;
        o->is_new = 1;
    } else if (rc) {
        return rc;
    } else {
        rc = risk_user_dup(&o->orig, u);
        if (rc) {
            risk_user_free(u);
            return rc;
        }
    }
    o->user = u;
    o->lvl_before = u->level;
    o->st_before = u->state;
    return RISK_OK;
}

static int uop_load_events(struct uop *o)
{
    if (o->ev_loaded)
        return RISK_OK;
    int rc = risk_engine_load_events(o->e, o->txn, o->user_id, &o->ev, &o->nev);
    if (rc)
        return rc;
    o->dirty = risk_calloc(o->nev ? o->nev : 1, 1);
    if (!o->dirty)
        return risk_err(RISK_ENOMEM, "events: out of memory");
    o->ev_loaded = 1;
    return RISK_OK;
}

/* Apply a state-machine action to event i of the operation. */
static int uop_act(struct uop *o, size_t i, risk_action action, const char *note)
{
    risk_event *ev = o->ev[i];
    risk_event_state ns;
    risk_close_reason nr;
    int rc = risk_transition(ev->state, ev->reason, action, &ns, &nr);
    if (rc)
        return rc;
    if (ns == RISK_EVENT_ACTIVE)
        rc = risk_event_set_closing(ev, ns, nr, RISK_TIME_NONE, NULL);
    else {
        int64_t at = o->now;
        const char *by = o->actor;
        if (action == RISK_ACTION_AGE) {
            at = ev->detected_at + risk_scoring_aging_for(&o->e->scoring, ev);
            if (at > o->now)
                at = o->now;
            by = RISK_SYSTEM_ACTOR;
        }
        rc = risk_event_set_closing(ev, ns, nr, at, by);
    }
    if (rc == RISK_OK && note)
        rc = risk_event_set_note(ev, note);
    if (rc == RISK_OK)
        o->dirty[i] = 1;
    return rc;
}

static int is_reserved_event(const risk_event *ev)
{
    return strncmp(ev->id, RISK_RESERVED_PREFIX, strlen(RISK_RESERVED_PREFIX)) == 0;
}

/* Recompute the derived level fields from all loaded events. */
static int uop_rescore(struct uop *o)
{
    risk_score_result r;
    int rc = risk_score(&r, &o->e->scoring, (const risk_event *const *)o->ev, o->nev, o->now);
    if (rc)
        return rc;
    risk_user *u = o->user;
    u->level = r.level;
    u->score = r.score;
    u->risk_since = r.risk_since;
    u->next_change_at = r.next_change_at;
    uint32_t active = 0;
    for (size_t i = 0; i < o->nev; i++)
        active += o->ev[i]->state == RISK_EVENT_ACTIVE;
    u->active_events = active;
    return RISK_OK;
}

static void set_state(risk_user *u, risk_state s, risk_detail d)
{
    u->state = s;
    u->detail = d;
}

/* Append one history item for the operation's user, chained to its head. */
static int uop_history(struct uop *o, const char *actor, risk_history_action action,
                       const char *event_id, uint32_t lvl_before, uint32_t st_before,
                       uint32_t changed, const char *note)
{
    risk_engine *e = o->e;
    risk_history *h = NULL;
    uint64_t seq = 0;
    int rc = e->st.reserve_seq(e->st.ctx, o->txn, &seq);
    if (rc)
        return rc;
    rc = risk_history_new(&h, seq, o->now, actor, action, o->user_id, event_id, NULL);
    if (rc == RISK_OK)
        rc = risk_history_set_change(h, lvl_before, o->user->level, st_before, o->user->state,
                                     changed, note);
    if (rc == RISK_OK)
        rc = risk_history_seal(h, o->user->chain_head);
    if (rc == RISK_OK)
        rc = e->st.append_history(e->st.ctx, o->txn, h);
    if (rc == RISK_OK) {
        memcpy(o->user->chain_head, h->chain, 32);
        o->wrote_history = 1;
    }
    risk_history_free(h);
    return rc;
}

/* R-SC-2: close every active event past its aging period, as `system`,
 * with its own history item. Runs at the start of every user operation. */
static int uop_catch_up(struct uop *o)
{
    risk_user *u = o->user;
    if (o->is_new || u->next_change_at == RISK_TIME_NONE || u->next_change_at > o->now)
        return RISK_OK;
    int rc = uop_load_events(o);
    if (rc)
        return rc;
    uint32_t lvl = u->level, st = u->state, closed = 0;
    for (size_t i = 0; i < o->nev; i++) {
        risk_event *ev = o->ev[i];
        int64_t p = risk_scoring_aging_for(&o->e->scoring, ev);
        if (ev->state != RISK_EVENT_ACTIVE || p <= 0 || is_reserved_event(ev))
            continue;
        if (ev->detected_at > o->now - p)
            continue;
        rc = uop_act(o, i, RISK_ACTION_AGE, NULL);
        if (rc)
            return rc;
        closed++;
    }
    rc = uop_rescore(o);
    if (rc)
        return rc;
    if (u->active_events == 0 && u->state == RISK_STATE_AT_RISK)
        set_state(u, RISK_STATE_NONE, RISK_DETAIL_AGED_OUT);
    o->aged = closed;
    if (closed) {
        rc = uop_history(o, RISK_SYSTEM_ACTOR, RISK_HISTORY_AGE, NULL, lvl, st, closed, NULL);
        if (rc)
            return rc;
    }
    o->lvl_before = u->level;
    o->st_before = u->state;
    return RISK_OK;
}

/* Write the events the operation changed and mark the user for writing.
 * The runner writes the user record last (uop_put_user), after every
 * history item: the record carries the head of the user's chain. */
static int uop_write(struct uop *o)
{
    risk_engine *e = o->e;
    int rc;
    for (size_t i = 0; i < o->nev; i++)
        if (o->dirty[i] && (rc = e->st.put_event(e->st.ctx, o->txn, o->ev[i])))
            return rc;
    if (o->added && (rc = e->st.put_event(e->st.ctx, o->txn, o->added)))
        return rc;
    o->write_user = 1;
    return RISK_OK;
}

static int uop_put_user(struct uop *o)
{
    risk_user *u = o->user;
    if (o->is_new || (o->orig && (o->orig->level != u->level || o->orig->state != u->state ||
                                  o->orig->detail != u->detail)))
        u->risk_updated_at = o->now;
    u->version = (o->orig ? o->orig->version : 0) + 1;
    return o->e->st.put_user(o->e->st.ctx, o->txn, u);
}

/* Close every active event with `action`; returns the count in *n. */
static int uop_close_all(struct uop *o, risk_action action, const char *note, uint32_t *n)
{
    *n = 0;
    for (size_t i = 0; i < o->nev; i++) {
        if (o->ev[i]->state != RISK_EVENT_ACTIVE)
            continue;
        int rc = uop_act(o, i, action, note);
        if (rc)
            return rc;
        ++*n;
    }
    return RISK_OK;
}

/* R-US-5: state and detail change only if the operation closed an event
 * or the user was at risk (or confirmed compromised). */
static void uop_settle(struct uop *o, uint32_t closed, risk_state s, risk_detail d)
{
    uint32_t before = o->st_before;
    if (closed || before == RISK_STATE_AT_RISK || before == RISK_STATE_CONFIRMED_COMPROMISED)
        set_state(o->user, s, d);
}

static int run_user_op(risk_engine *e, const char *actor, const char *user_id, uop_fn fn,
                       void *arg);

/* ------------------------------------------------------------------ */
/* Post-commit hooks                                                  */

static void uop_hooks(struct uop *o)
{
    risk_engine *e = o->e;
    if (e->opts.user_changed && o->user) {
        const risk_user *b = o->orig, *a = o->user;
        if (!b || b->level != a->level || b->state != a->state || b->detail != a->detail)
            e->opts.user_changed(b, a, e->opts.user_changed_userdata);
    }
    if (e->opts.feedback)
        for (size_t i = 0; i < o->nfb; i++)
            e->opts.feedback(o->fb[i], o->fb_withdrawn, e->opts.feedback_userdata);
}

static int uop_keep_feedback(struct uop *o, const risk_event *ev)
{
    if (!o->e->opts.feedback)
        return RISK_OK;
    risk_event **nv = risk_realloc(o->fb, (o->nfb + 1) * sizeof *nv);
    if (!nv)
        return risk_err(RISK_ENOMEM, "feedback: out of memory");
    o->fb = nv;
    int rc = risk_event_dup(&o->fb[o->nfb], ev);
    if (rc == RISK_OK)
        o->nfb++;
    return rc;
}

static int run_user_op(risk_engine *e, const char *actor, const char *user_id, uop_fn fn,
                       void *arg)
{
    struct uop o;
    memset(&o, 0, sizeof o);
    o.e = e;
    o.actor = actor;
    o.user_id = user_id;
    o.fn = fn;
    o.arg = arg;
    pthread_mutex_t *lock = stripe_for(e, user_id);
    pthread_mutex_lock(lock);
    int rc = RISK_OK;
    for (uint32_t attempt = 0;; attempt++) {
        uop_reset(&o);
        o.now = risk_engine_clock(e);
        o.txn = NULL;
        rc = e->st.begin(e->st.ctx, user_id, &o.txn);
        if (rc)
            break;
        rc = fn(&o);
        if (rc == RISK_OK && o.write_user)
            rc = uop_put_user(&o);
        if (rc == RISK_OK)
            rc = e->st.commit(e->st.ctx, o.txn);
        else
            e->st.rollback(e->st.ctx, o.txn);
        if (rc != RISK_ECONFLICT || attempt >= e->opts.max_conflict_retries)
            break;
    }
    pthread_mutex_unlock(lock);
    if (rc == RISK_ECONFLICT)
        risk_err(rc, "store: conflict persisted after %u retries",
                 (unsigned)e->opts.max_conflict_retries);
    if (rc == RISK_OK)
        uop_hooks(&o);
    uop_reset(&o);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Argument checks                                                    */

#define CHECK_ENGINE(e)                                                                  \
    do {                                                                                 \
        if (!(e))                                                                        \
            return risk_err(RISK_EINVAL, "engine: NULL");                                \
    } while (0)

static int check_actor_user(const char *actor, const char *user_id)
{
    int rc = risk_check_id("actor", actor);
    if (rc == RISK_OK)
        rc = risk_check_id("user_id", user_id);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Upsert (R-OP-4)                                                    */

static int op_upsert(struct uop *o)
{
    const risk_user *want = o->arg;
    int rc = uop_load_user(o, 1);
    if (rc == RISK_OK)
        rc = uop_catch_up(o);
    if (rc)
        return rc;
    risk_user *u = o->user;
    if (want->mfa_registered) {
        if (!u->mfa_registered || want->mfa_registered_at != RISK_TIME_NONE)
            u->mfa_registered_at =
                want->mfa_registered_at != RISK_TIME_NONE ? want->mfa_registered_at : o->now;
        u->mfa_registered = 1;
    } else {
        u->mfa_registered = 0;
        u->mfa_registered_at = RISK_TIME_NONE;
    }
    u->deleted = want->deleted;
    rc = uop_history(o, o->actor, RISK_HISTORY_USER_UPSERT, NULL, o->lvl_before, o->st_before,
                     0, NULL);
    if (rc == RISK_OK)
        rc = uop_write(o);
    return rc;
}

int risk_engine_upsert_user(risk_engine *engine, const char *actor, const risk_user *user)
{
    CHECK_ENGINE(engine);
    if (!user)
        return risk_err(RISK_EINVAL, "user: NULL");
    int rc = check_actor_user(actor, user->id);
    if (rc)
        return rc;
    return run_user_op(engine, actor, user->id, op_upsert, (void *)user);
}

/* ------------------------------------------------------------------ */
/* Ingest (R-OP-1…3, R-OP-7, R-US-1)                                  */

struct ingest_arg {
    const risk_event *ev;
    uint32_t flags;
};

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int same_detection(const risk_event *a, const risk_event *b)
{
    return strcmp(a->user_id, b->user_id) == 0 && strcmp(a->type, b->type) == 0 &&
           a->level == b->level && a->detected_at == b->detected_at &&
           a->timing == b->timing && str_eq(a->ip, b->ip) && str_eq(a->location, b->location) &&
           str_eq(a->source, b->source);
}

/* Copy the detection fields of src onto dst (an event being updated). */
static int copy_detection(risk_event *dst, const risk_event *src)
{
    risk_event *tmp = NULL;
    int rc = risk_event_dup(&tmp, dst);
    if (rc)
        return rc;
    if ((rc = risk_event_set_level(tmp, src->level)) ||
        (rc = risk_event_set_detected_at(tmp, src->detected_at)) ||
        (rc = risk_event_set_timing(tmp, src->timing)) || (rc = risk_event_set_ip(tmp, src->ip)) ||
        (rc = risk_event_set_location(tmp, src->location)) ||
        (rc = risk_event_set_source(tmp, src->source))) {
        risk_event_free(tmp);
        return rc;
    }
    char *type = risk_strdup(src->type);
    if (!type) {
        risk_event_free(tmp);
        return risk_err(RISK_ENOMEM, "event: out of memory");
    }
    risk_free(tmp->type);
    tmp->type = type;
    /* swap contents */
    risk_event t = *dst;
    *dst = *tmp;
    *tmp = t;
    risk_event_free(tmp);
    return RISK_OK;
}

static void arrive_at_risk(risk_user *u)
{
    /* R-US-1: an active event puts the user at risk, unless confirmed
     * compromised, which stays. */
    if (u->state != RISK_STATE_CONFIRMED_COMPROMISED)
        set_state(u, RISK_STATE_AT_RISK, RISK_DETAIL_NONE);
}

static int op_ingest(struct uop *o)
{
    struct ingest_arg *a = o->arg;
    const risk_event *in = a->ev;
    risk_engine *e = o->e;
    risk_event *old = NULL;
    int rc = e->st.get_event(e->st.ctx, o->txn, in->id, &old);
    if (rc && rc != RISK_ENOTFOUND)
        return rc;
    if (rc == RISK_OK) {
        int same = same_detection(old, in);
        int other_user = strcmp(old->user_id, in->user_id) != 0;
        int closed = old->state != RISK_EVENT_ACTIVE;
        risk_event_free(old);
        if (same)
            return RISK_OK; /* R-OP-1: idempotent, nothing written */
        if (other_user || !(a->flags & RISK_INGEST_UPDATE))
            return risk_err(RISK_EEXISTS, "event: id '%s' is taken by a different event",
                            in->id);
        if (closed)
            return risk_err(RISK_ETRANSITION, "event: '%s' is closed and cannot be updated",
                            in->id);
        /* R-OP-7: update the active event and rescore. */
        if ((rc = uop_load_user(o, 0)) || (rc = uop_catch_up(o)) || (rc = uop_load_events(o)))
            return rc;
        size_t i;
        for (i = 0; i < o->nev && strcmp(o->ev[i]->id, in->id) != 0; i++)
            ;
        if (i == o->nev)
            return risk_err(RISK_ECORRUPT, "store: event '%s' missing from its user", in->id);
        if (o->ev[i]->state != RISK_EVENT_ACTIVE) /* aged by the catch-up */
            return risk_err(RISK_ETRANSITION, "event: '%s' is closed and cannot be updated",
                            in->id);
        if ((rc = copy_detection(o->ev[i], in)))
            return rc;
        o->dirty[i] = 1;
        if ((rc = uop_rescore(o)))
            return rc;
        if ((rc = uop_write(o)))
            return rc;
        return uop_history(o, o->actor, RISK_HISTORY_EVENT_UPDATED, in->id, o->lvl_before,
                           o->st_before, 1, NULL);
    }

    rc = uop_load_user(o, !e->opts.refuse_unknown_users);
    if (rc == RISK_ENOTFOUND)
        return risk_err(RISK_ENOTFOUND, "user_id: no user '%s' and unknown users are refused",
                        in->user_id);
    if (rc || (rc = uop_catch_up(o)))
        return rc;
    /* A clean copy: only the detection fields, active (R-EV-1). */
    rc = risk_event_new(&o->added, in->id, in->user_id, in->type, in->level, in->detected_at);
    if (rc == RISK_OK)
        rc = copy_detection(o->added, in);
    if (rc)
        return rc;
    risk_user *u = o->user;
    if (o->ev_loaded) {
        /* Events are in memory (the catch-up read them): score them all. */
        struct ev_vec vec = { o->ev, o->nev, o->nev };
        risk_event *copy = NULL;
        if ((rc = risk_event_dup(&copy, o->added)))
            return rc;
        if ((rc = ev_push(&vec, copy))) {
            risk_event_free(copy);
            return rc;
        }
        o->ev = vec.v;
        o->nev = vec.n;
        uint8_t *nd = risk_realloc(o->dirty, o->nev);
        if (!nd)
            return risk_err(RISK_ENOMEM, "events: out of memory");
        o->dirty = nd;
        o->dirty[o->nev - 1] = 0; /* written through o->added */
        if ((rc = uop_rescore(o)))
            return rc;
    } else {
        /* Incremental scoring: no aging is due, so every active event
         * counts; the new one adds its weight (R-SC-3), the floor of
         * R-SC-4 holds because the stored level already covers the old
         * events and the threshold function is monotonic. */
        const risk_scoring *sc = &e->scoring;
        risk_event *n = o->added;
        int64_t p = risk_scoring_aging_for(sc, n);
        int counts = !(p > 0 && n->detected_at <= o->now - p);
        if (counts) {
            uint32_t w = n->level == RISK_LEVEL_HIGH     ? sc->weight_high
                         : n->level == RISK_LEVEL_MEDIUM ? sc->weight_medium
                                                         : sc->weight_low;
            u->score += w;
            uint32_t lvl = RISK_LEVEL_NONE;
            if (u->score >= sc->threshold_high)
                lvl = RISK_LEVEL_HIGH;
            else if (u->score >= sc->threshold_medium)
                lvl = RISK_LEVEL_MEDIUM;
            else if (u->score >= sc->threshold_low)
                lvl = RISK_LEVEL_LOW;
            if (lvl < u->level)
                lvl = u->level;
            if (lvl < n->level)
                lvl = n->level;
            u->level = lvl;
            if (u->risk_since == RISK_TIME_NONE || n->detected_at < u->risk_since)
                u->risk_since = n->detected_at;
            if (p > 0) {
                int64_t at = n->detected_at > INT64_MAX - p ? INT64_MAX : n->detected_at + p;
                if (u->next_change_at == RISK_TIME_NONE || at < u->next_change_at)
                    u->next_change_at = at;
            }
        } else if (u->next_change_at == RISK_TIME_NONE || u->next_change_at > o->now) {
            /* Already aged on arrival: the next operation closes it. */
            u->next_change_at = o->now;
        }
        u->active_events++;
    }
    arrive_at_risk(u);
    if ((rc = uop_history(o, o->actor, RISK_HISTORY_INGEST, in->id, o->lvl_before, o->st_before, 1,
                       NULL)))
        return rc;
    return uop_write(o);
}

static int check_detection(const risk_event *ev)
{
    if (!ev)
        return risk_err(RISK_EINVAL, "event: NULL");
    if (is_reserved_event(ev))
        return risk_err(RISK_EINVAL, "event.id: ids beginning '%s' are reserved",
                        RISK_RESERVED_PREFIX);
    return risk_check_id("event.user_id", ev->user_id);
}

int risk_engine_ingest(risk_engine *engine, const char *actor, const risk_event *event,
                       uint32_t flags)
{
    CHECK_ENGINE(engine);
    int rc = risk_check_id("actor", actor);
    if (rc == RISK_OK)
        rc = check_detection(event);
    if (rc)
        return rc;
    if (flags & ~RISK_INGEST_UPDATE)
        return risk_err(RISK_EINVAL, "flags: unknown bits 0x%x", (unsigned)flags);
    struct ingest_arg a = { event, flags };
    return run_user_op(engine, actor, event->user_id, op_ingest, &a);
}

int risk_engine_ingest_bulk(risk_engine *engine, const char *actor,
                            const risk_event *const *events, size_t n, uint32_t flags,
                            int *results)
{
    CHECK_ENGINE(engine);
    int rc = risk_check_id("actor", actor);
    if (rc)
        return rc;
    if (n && (!events || !results))
        return risk_err(RISK_EINVAL, "%s: NULL", !events ? "events" : "results");
    if (flags & ~RISK_INGEST_UPDATE)
        return risk_err(RISK_EINVAL, "flags: unknown bits 0x%x", (unsigned)flags);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        results[i] = risk_engine_ingest(engine, actor, events[i], flags);
        failed += results[i] != RISK_OK;
    }
    return failed;
}

/* ------------------------------------------------------------------ */
/* Password operations (R-PO-10, R-PO-11, R-PW-1…3)                    */

static int op_password(struct uop *o)
{
    risk_password_change kind = *(risk_password_change *)o->arg;
    int rc;
    if ((rc = uop_load_user(o, 0)) || (rc = uop_catch_up(o)))
        return rc;
    risk_user *u = o->user;
    int secure = kind != RISK_PASSWORD_INSECURE && risk_user_mfa_counts(u);
    uint32_t closed = 0;
    risk_history_action act = RISK_HISTORY_INSECURE_PASSWORD_CHANGE;
    if (secure) {
        if ((rc = uop_load_events(o)) ||
            (rc = uop_close_all(o, RISK_ACTION_REMEDIATE, NULL, &closed)) ||
            (rc = uop_rescore(o)))
            return rc;
        int reset = kind == RISK_PASSWORD_SECURE_RESET;
        uop_settle(o, closed, RISK_STATE_REMEDIATED,
                   reset ? RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_RESET
                         : RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_CHANGE);
        u->must_change_password = 0;
        u->reset_required = 0;
        u->remediated_at = o->now;
        act = reset ? RISK_HISTORY_SECURE_PASSWORD_RESET : RISK_HISTORY_SECURE_PASSWORD_CHANGE;
    } else {
        /* Without MFA proof nothing closes (R-PO-10, R-PO-11). */
        u->must_change_password = 0;
    }
    if ((rc = uop_write(o)))
        return rc;
    const char *note = kind != RISK_PASSWORD_INSECURE && !secure
                           ? "reported secure, but MFA does not count (R-PO-11)"
                           : NULL;
    return uop_history(o, o->actor, act, NULL, o->lvl_before, o->st_before, closed, note);
}

int risk_engine_password_changed(risk_engine *engine, const char *actor, const char *user_id,
                                 risk_password_change kind)
{
    CHECK_ENGINE(engine);
    int rc = check_actor_user(actor, user_id);
    if (rc)
        return rc;
    if ((unsigned)kind > RISK_PASSWORD_INSECURE)
        return risk_err(RISK_EINVAL, "kind: %u out of range", (unsigned)kind);
    return run_user_op(engine, actor, user_id, op_password, &kind);
}

/* The temporary password alphabet: no 0/O/o, 1/l/I (R-PW-1). */
static const char *const pw_classes[4] = {
    "ABCDEFGHJKLMNPQRSTUVWXYZ",
    "abcdefghijkmnpqrstuvwxyz",
    "23456789",
    "!#$%&*+-=?@^_",
};

static int random_bytes(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return risk_err(RISK_EIO, "getrandom: %s", strerror(errno));
        }
        got += (size_t)r;
    }
    return RISK_OK;
}

/* Uniform index below n (n ≤ 256) by rejection sampling. */
static int random_below(unsigned n, unsigned *out)
{
    unsigned limit = 256 - 256 % n;
    for (;;) {
        uint8_t b;
        int rc = random_bytes(&b, 1);
        if (rc)
            return rc;
        if (b < limit) {
            *out = b % n;
            return RISK_OK;
        }
    }
}

static int generate_password(char *buf, size_t len)
{
    char all[128];
    size_t na = 0;
    for (int c = 0; c < 4; c++)
        for (const char *p = pw_classes[c]; *p; p++)
            all[na++] = *p;
    unsigned idx;
    int rc;
    for (size_t i = 0; i < len; i++) {
        if ((rc = random_below((unsigned)na, &idx)))
            return rc;
        buf[i] = all[idx];
    }
    /* One character of each class, at distinct random positions. */
    size_t pos[4];
    for (int c = 0; c < 4; c++) {
        int fresh;
        do {
            if ((rc = random_below((unsigned)len, &idx)))
                return rc;
            fresh = 1;
            for (int k = 0; k < c; k++)
                fresh &= pos[k] != idx;
        } while (!fresh);
        pos[c] = idx;
        size_t cl = strlen(pw_classes[c]);
        if ((rc = random_below((unsigned)cl, &idx)))
            return rc;
        buf[pos[c]] = pw_classes[c][idx];
    }
    buf[len] = '\0';
    return RISK_OK;
}

static int op_temp_password(struct uop *o)
{
    int rc;
    if ((rc = uop_load_user(o, 0)) || (rc = uop_catch_up(o)))
        return rc;
    risk_user *u = o->user;
    if (u->deleted)
        return risk_err(RISK_EDELETED, "user_id: '%s' is deleted", o->user_id);
    uint32_t closed = 0;
    if ((rc = uop_load_events(o)) || (rc = uop_close_all(o, RISK_ACTION_REMEDIATE, NULL, &closed)) ||
        (rc = uop_rescore(o)))
        return rc;
    uop_settle(o, closed, RISK_STATE_REMEDIATED, RISK_DETAIL_ADMIN_GENERATED_TEMPORARY_PASSWORD);
    u->must_change_password = 1;
    u->reset_required = 0; /* superseded: the admin replaced the password */
    u->remediated_at = o->now;
    if ((rc = uop_history(o, o->actor, RISK_HISTORY_TEMPORARY_PASSWORD, NULL, o->lvl_before,
                       o->st_before, closed, NULL)))
        return rc;
    return uop_write(o);
}

int risk_engine_temporary_password(risk_engine *engine, const char *actor, const char *user_id,
                                   char *buf, size_t cap)
{
    CHECK_ENGINE(engine);
    int rc = check_actor_user(actor, user_id);
    if (rc)
        return rc;
    if (!buf)
        return risk_err(RISK_EINVAL, "buf: NULL");
    size_t len = engine->opts.temp_password_length;
    if (cap < len + 1)
        return risk_err(RISK_ERANGE, "cap: %zu, the password needs %zu bytes", cap, len + 1);
    char pw[129];
    if ((rc = generate_password(pw, len)))
        return rc;
    rc = run_user_op(engine, actor, user_id, op_temp_password, NULL);
    if (rc == RISK_OK)
        memcpy(buf, pw, len + 1);
    memset(pw, 0, sizeof pw);
    return rc;
}

static int op_require_reset(struct uop *o)
{
    int rc;
    if ((rc = uop_load_user(o, 0)) || (rc = uop_catch_up(o)))
        return rc;
    risk_user *u = o->user;
    if (u->deleted)
        return risk_err(RISK_EDELETED, "user_id: '%s' is deleted", o->user_id);
    if (!risk_user_mfa_counts(u))
        return risk_err(RISK_ENOMFA,
                        u->mfa_registered
                            ? "user_id: '%s' registered MFA after the risk began (R-PO-11)"
                            : "user_id: '%s' is not registered for MFA",
                        o->user_id);
    u->reset_required = 1;
    if ((rc = uop_history(o, o->actor, RISK_HISTORY_REQUIRE_RESET, NULL, o->lvl_before,
                       o->st_before, 0, NULL)))
        return rc;
    return uop_write(o);
}

int risk_engine_require_reset(risk_engine *engine, const char *actor, const char *user_id)
{
    CHECK_ENGINE(engine);
    int rc = check_actor_user(actor, user_id);
    if (rc)
        return rc;
    return run_user_op(engine, actor, user_id, op_require_reset, NULL);
}

/* ------------------------------------------------------------------ */
/* Dismiss all (R-DI-1…4)                                             */

struct dismiss_arg {
    const char *note;
    uint32_t closed;
};

static int op_dismiss(struct uop *o)
{
    struct dismiss_arg *a = o->arg;
    int rc;
    a->closed = 0;
    if ((rc = uop_load_user(o, 0)) || (rc = uop_catch_up(o)) || (rc = uop_load_events(o)) ||
        (rc = uop_close_all(o, RISK_ACTION_DISMISS, NULL, &a->closed)) || (rc = uop_rescore(o)))
        return rc;
    uop_settle(o, a->closed, RISK_STATE_DISMISSED, RISK_DETAIL_ADMIN_DISMISSED_ALL_RISK);
    if ((rc = uop_history(o, o->actor, RISK_HISTORY_DISMISS_ALL, NULL, o->lvl_before, o->st_before,
                       a->closed, a->note)))
        return rc;
    return uop_write(o);
}

int risk_engine_dismiss(risk_engine *engine, const char *actor, const char *user_id,
                        const char *note, uint32_t *closed)
{
    CHECK_ENGINE(engine);
    int rc = check_actor_user(actor, user_id);
    if (rc == RISK_OK)
        rc = risk_check_note("note", note);
    if (rc)
        return rc;
    struct dismiss_arg a = { note, 0 };
    rc = run_user_op(engine, actor, user_id, op_dismiss, &a);
    if (closed)
        *closed = rc == RISK_OK ? a.closed : 0;
    return rc;
}

int risk_engine_dismiss_bulk(risk_engine *engine, const char *actor, const char *const *user_ids,
                             size_t n, const char *note, int *results, uint32_t *closed)
{
    CHECK_ENGINE(engine);
    int rc = risk_check_id("actor", actor);
    if (rc == RISK_OK)
        rc = risk_check_note("note", note);
    if (rc)
        return rc;
    if (n && (!user_ids || !results))
        return risk_err(RISK_EINVAL, "%s: NULL", !user_ids ? "user_ids" : "results");
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = 0;
        results[i] = risk_engine_dismiss(engine, actor, user_ids[i], note, &c);
        if (closed)
            closed[i] = c;
        failed += results[i] != RISK_OK;
    }
    return failed;
}

/* ------------------------------------------------------------------ */
/* Individual events (R-EV-2…8, R-IN-1…2)                              */

struct event_arg {
    const char *event_id;
    risk_action action;
    const char *note;
};

static const risk_history_action action_history[] = {
    [RISK_ACTION_RESOLVE] = RISK_HISTORY_RESOLVE,
    [RISK_ACTION_FALSE_POSITIVE] = RISK_HISTORY_FALSE_POSITIVE,
    [RISK_ACTION_IGNORE] = RISK_HISTORY_IGNORE,
    [RISK_ACTION_REACTIVATE] = RISK_HISTORY_REACTIVATE,
};

static int op_event(struct uop *o)
{
    struct event_arg *a = o->arg;
    int rc;
    if ((rc = uop_load_user(o, 0)) || (rc = uop_catch_up(o)) || (rc = uop_load_events(o)))
        return rc;
    size_t i;
    for (i = 0; i < o->nev && strcmp(o->ev[i]->id, a->event_id) != 0; i++)
        ;
    if (i == o->nev)
        return risk_err(RISK_ENOTFOUND, "event_id: no event '%s'", a->event_id);
    risk_event *ev = o->ev[i];
    risk_user *u = o->user;
    if (a->action == RISK_ACTION_REACTIVATE) {
        if (ev->state == RISK_EVENT_CLOSED && u->remediated_at != RISK_TIME_NONE &&
            ev->detected_at <= u->remediated_at)
            /* R-EV-7: the password it concerned has been replaced. */
            return risk_err(RISK_ETRANSITION,
                            "event_id: '%s' was detected before the user's remediation",
                            a->event_id);
    } else if (is_reserved_event(ev)) {
        /* R-EV-8: only remediation or dismiss-all closes it. */
        return risk_err(RISK_ETRANSITION,
                        "event_id: '%s' records an admin's verdict; remediate or dismiss",
                        a->event_id);
    }
    uint32_t was_reason = ev->reason;
    rc = uop_act(o, i, a->action, a->note);
    if (rc == RISK_ETRANSITION)
        return risk_err(rc, "event_id: cannot %s an event that is %s%s%s",
                        risk_enum_name(RISK_ENUM_ACTION, a->action),
                        risk_enum_name(RISK_ENUM_EVENT_STATE, ev->state),
                        ev->state == RISK_EVENT_CLOSED ? "/" : "",
                        ev->state == RISK_EVENT_CLOSED
                            ? risk_enum_name(RISK_ENUM_CLOSE_REASON, ev->reason)
                            : "");
    if (rc || (rc = uop_rescore(o)))
        return rc;
    if (a->action == RISK_ACTION_REACTIVATE) {
        arrive_at_risk(u);
        if (was_reason == RISK_CLOSE_FALSE_POSITIVE) {
            o->fb_withdrawn = 1;
            if ((rc = uop_keep_feedback(o, ev)))
                return rc;
        }
    } else {
        if (u->active_events == 0)
            uop_settle(o, 1, RISK_STATE_NONE, RISK_DETAIL_ADMIN_CLOSED_EVENTS);
        if (a->action == RISK_ACTION_FALSE_POSITIVE && (rc = uop_keep_feedback(o, ev)))
            return rc;
    }
    if ((rc = uop_history(o, o->actor, action_history[a->action], a->event_id, o->lvl_before,
                       o->st_before, 1, a->note)))
        return rc;
    return uop_write(o);
}

static int event_action(risk_engine *e, const char *actor, const char *event_id,
                        risk_action action, const char *note)
{
    CHECK_ENGINE(e);
    int rc = risk_check_id("actor", actor);
    if (rc == RISK_OK)
        rc = risk_check_id("event_id", event_id);
    if (rc == RISK_OK)
        rc = risk_check_note("note", note);
    if (rc)
        return rc;
    if (action == RISK_ACTION_IGNORE && (!note || !*note))
        /* R-EV-2: ignore is for unusual circumstances: say why. */
        return risk_err(RISK_EINVAL, "note: ignore requires a non-empty note");
    /* Find the owner, then run under the owner's lock. The event cannot
     * change owner, so reading it outside the lock is safe. */
    void *txn = NULL;
    risk_event *ev = NULL;
    if ((rc = e->st.begin(e->st.ctx, NULL, &txn)))
        return rc;
    rc = e->st.get_event(e->st.ctx, txn, event_id, &ev);
    e->st.rollback(e->st.ctx, txn);
    if (rc == RISK_ENOTFOUND)
        return risk_err(rc, "event_id: no event '%s'", event_id);
    if (rc)
        return rc;
    char user_id[RISK_ID_MAX + 1];
    snprintf(user_id, sizeof user_id, "%s", ev->user_id);
    risk_event_free(ev);
    struct event_arg a = { event_id, action, note };
    return run_user_op(e, actor, user_id, op_event, &a);
}

int risk_engine_resolve(risk_engine *engine, const char *actor, const char *event_id,
                        const char *note)
{
    return event_action(engine, actor, event_id, RISK_ACTION_RESOLVE, note);
}

int risk_engine_false_positive(risk_engine *engine, const char *actor, const char *event_id,
                               const char *note)
{
    return event_action(engine, actor, event_id, RISK_ACTION_FALSE_POSITIVE, note);
}

int risk_engine_ignore(risk_engine *engine, const char *actor, const char *event_id,
                       const char *note)
{
    return event_action(engine, actor, event_id, RISK_ACTION_IGNORE, note);
}

int risk_engine_reactivate(risk_engine *engine, const char *actor, const char *event_id,
                           const char *note)
{
    return event_action(engine, actor, event_id, RISK_ACTION_REACTIVATE, note);
}

/* ------------------------------------------------------------------ */
/* Admin verdicts (R-US-3, R-US-4, R-SC-5)                             */

static int op_confirm_compromised(struct uop *o)
{
    int rc;
    if ((rc = uop_load_user(o, 0)) || (rc = uop_catch_up(o)) || (rc = uop_load_events(o)))
        return rc;
    risk_user *u = o->user;
    int have = 0;
    for (size_t i = 0; i < o->nev; i++)
        have |= is_reserved_event(o->ev[i]) && o->ev[i]->state == RISK_EVENT_ACTIVE;
    uint32_t changed = 0;
    if (!have) {
        /* R-SC-5: an active high event makes the level high through the
         * ordinary scoring. Its id is unique per user and record version. */
        char id[96];
        snprintf(id, sizeof id, "%scompromised:%016llx:%llu", RISK_RESERVED_PREFIX,
                 (unsigned long long)risk_hash_str(o->user_id),
                 (unsigned long long)(u->version + 1));
        risk_event *ev = NULL;
        if ((rc = risk_event_new(&ev, id, o->user_id, RISK_COMPROMISED_TYPE, RISK_LEVEL_HIGH,
                                 o->now)))
            return rc;
        struct ev_vec vec = { o->ev, o->nev, o->nev };
        if ((rc = ev_push(&vec, ev))) {
            risk_event_free(ev);
            return rc;
        }
        o->ev = vec.v;
        o->nev = vec.n;
        uint8_t *nd = risk_realloc(o->dirty, o->nev);
        if (!nd)
            return risk_err(RISK_ENOMEM, "events: out of memory");
        o->dirty = nd;
        o->dirty[o->nev - 1] = 1;
        changed = 1;
    }
    if ((rc = uop_rescore(o)))
        return rc;
    set_state(u, RISK_STATE_CONFIRMED_COMPROMISED, RISK_DETAIL_ADMIN_CONFIRMED_COMPROMISED);
    if ((rc = uop_history(o, o->actor, RISK_HISTORY_CONFIRM_COMPROMISED, NULL, o->lvl_before,
                       o->st_before, changed, NULL)))
        return rc;
    return uop_write(o);
}

int risk_engine_confirm_compromised(risk_engine *engine, const char *actor, const char *user_id)
{
    CHECK_ENGINE(engine);
    int rc = check_actor_user(actor, user_id);
    if (rc)
        return rc;
    return run_user_op(engine, actor, user_id, op_confirm_compromised, NULL);
}

static int op_confirm_safe(struct uop *o)
{
    int rc;
    if ((rc = uop_load_user(o, 0)) || (rc = uop_catch_up(o)))
        return rc;
    if (o->user->state == RISK_STATE_CONFIRMED_COMPROMISED)
        /* R-US-3: risky until remediation steps are taken. */
        return risk_err(RISK_ETRANSITION,
                        "user_id: '%s' is confirmed compromised; remediate or dismiss first",
                        o->user_id);
    uint32_t closed = 0;
    if ((rc = uop_load_events(o)) ||
        (rc = uop_close_all(o, RISK_ACTION_FALSE_POSITIVE, NULL, &closed)) ||
        (rc = uop_rescore(o)))
        return rc;
    for (size_t i = 0; i < o->nev; i++)
        if (o->dirty[i] && (rc = uop_keep_feedback(o, o->ev[i])))
            return rc;
    uop_settle(o, closed, RISK_STATE_CONFIRMED_SAFE, RISK_DETAIL_ADMIN_CONFIRMED_SAFE);
    if ((rc = uop_history(o, o->actor, RISK_HISTORY_CONFIRM_SAFE, NULL, o->lvl_before, o->st_before,
                       closed, NULL)))
        return rc;
    return uop_write(o);
}

int risk_engine_confirm_safe(risk_engine *engine, const char *actor, const char *user_id)
{
    CHECK_ENGINE(engine);
    int rc = check_actor_user(actor, user_id);
    if (rc)
        return rc;
    return run_user_op(engine, actor, user_id, op_confirm_safe, NULL);
}

/* ------------------------------------------------------------------ */
/* Aging (R-SC-2)                                                     */

static int op_catch_up(struct uop *o)
{
    int rc = uop_load_user(o, 0);
    if (rc == RISK_OK)
        rc = uop_catch_up(o);
    if (rc == RISK_OK && o->wrote_history)
        rc = uop_write(o);
    if (rc == RISK_OK && o->arg)
        *(uint32_t *)o->arg = o->aged;
    return rc;
}

int risk_engine_catch_up(risk_engine *e, const char *user_id, uint32_t *closed)
{
    if (closed)
        *closed = 0;
    return run_user_op(e, RISK_SYSTEM_ACTOR, user_id, op_catch_up, closed);
}

void risk_engine_simulate_aging(const risk_engine *e, risk_user *u, risk_event **ev, size_t n,
                                int64_t now)
{
    if (u->next_change_at == RISK_TIME_NONE || u->next_change_at > now)
        return;
    risk_score_result r;
    uint32_t active = 0;
    for (size_t i = 0; i < n; i++) {
        risk_event *x = ev[i];
        int64_t p = risk_scoring_aging_for(&e->scoring, x);
        if (x->state == RISK_EVENT_ACTIVE && p > 0 && !is_reserved_event(x) &&
            x->detected_at <= now - p) {
            int64_t at = x->detected_at + p;
            /* Cannot fail: the actor is a literal and nothing is allocated
             * beyond the actor copy; on failure the event stays as stored. */
            (void)risk_event_set_closing(x, RISK_EVENT_CLOSED, RISK_CLOSE_AGED, at,
                                         RISK_SYSTEM_ACTOR);
        }
        active += x->state == RISK_EVENT_ACTIVE;
    }
    if (risk_score(&r, &e->scoring, (const risk_event *const *)ev, n, now) == RISK_OK) {
        if (r.level != u->level || (active == 0 && u->state == RISK_STATE_AT_RISK))
            u->risk_updated_at = now;
        u->level = r.level;
        u->score = r.score;
        u->risk_since = r.risk_since;
        u->next_change_at = r.next_change_at;
        u->active_events = active;
        if (active == 0 && u->state == RISK_STATE_AT_RISK)
            set_state(u, RISK_STATE_NONE, RISK_DETAIL_AGED_OUT);
    }
}

/* ------------------------------------------------------------------ */
/* Sign-in (R-PO-1…11), the hot path                                   */

struct signin_arg {
    risk_engine *e;
    risk_verdict *v;
    int64_t now;
    int due; /* aging catch-up is due */
    int rc;
};

static int signin_visit(const risk_user *u, void *arg)
{
    struct signin_arg *a = arg;
    if (u->next_change_at != RISK_TIME_NONE && u->next_change_at <= a->now) {
        a->due = 1;
        return RISK_OK;
    }
    a->rc = risk_decide(a->v, (const risk_policy *const *)a->e->policies, a->e->n_policies, u,
                        (risk_level)u->level, a->now);
    return RISK_OK;
}

/* Read the user without view_user: a transaction and a copy. */
static int signin_slow(struct signin_arg *a, const char *user_id)
{
    risk_engine *e = a->e;
    void *txn = NULL;
    risk_user *u = NULL;
    int rc = e->st.begin(e->st.ctx, user_id, &txn);
    if (rc)
        return rc;
    rc = e->st.get_user(e->st.ctx, txn, user_id, &u);
    e->st.rollback(e->st.ctx, txn);
    if (rc == RISK_OK) {
        signin_visit(u, a);
        risk_user_free(u);
    }
    return rc;
}

int risk_engine_sign_in(risk_engine *engine, const char *user_id, risk_verdict *verdict)
{
    if (verdict)
        risk_verdict_fail_closed(verdict, user_id && strlen(user_id) <= RISK_ID_MAX ? user_id : "",
                                 RISK_TIME_NONE);
    CHECK_ENGINE(engine);
    if (!verdict)
        return risk_err(RISK_EINVAL, "verdict: NULL");
    int rc = risk_check_id("user_id", user_id);
    if (rc)
        return rc;
    struct signin_arg a = { engine, verdict, risk_engine_clock(engine), 0, RISK_OK };
    risk_verdict_fail_closed(verdict, user_id, a.now);
    for (int round = 0; round < 3; round++) {
        rc = risk_engine_policies_rdlock(engine);
        if (rc)
            break;
        a.due = 0;
        a.rc = RISK_OK;
        rc = engine->st.view_user ? engine->st.view_user(engine->st.ctx, user_id, signin_visit, &a)
                                  : signin_slow(&a, user_id);
        if (rc == RISK_ENOTFOUND) { /* R-PO-8: unknown users sign in with level none */
            rc = risk_decide(verdict, (const risk_policy *const *)engine->policies,
                             engine->n_policies, NULL, RISK_LEVEL_NONE, a.now);
            snprintf(verdict->user_id, sizeof verdict->user_id, "%s", user_id);
        }
        else if (rc == RISK_OK)
            rc = a.rc;
        risk_engine_policies_unlock(engine);
        if (rc || !a.due)
            break;
        /* SPEC §4: the catch-up runs first as its own atomic operation. */
        rc = risk_engine_catch_up(engine, user_id, NULL);
        if (rc)
            break;
        a.now = risk_engine_clock(engine);
    }
    if (rc == RISK_OK && a.due)
        rc = risk_err(RISK_ESTORE, "store: aging catch-up did not settle for '%s'", user_id);
    if (rc == RISK_OK && verdict->want_receipt)
        rc = risk_engine_make_receipt(engine, verdict); /* R-RC-1 */
    if (rc) {
        /* R-PO-9: fail closed. */
        int keep = rc;
        risk_verdict_fail_closed(verdict, user_id, a.now);
        return keep;
    }
    return RISK_OK;
}

/* ------------------------------------------------------------------ */
/* Policies (R-OP-6)                                                  */

static void describe_policy(char *buf, size_t cap, const risk_policy *p)
{
    if (!p) {
        snprintf(buf, cap, "none");
        return;
    }
    int n = snprintf(buf, cap, "mode=%s threshold=%s control=%s include=",
                     risk_enum_name(RISK_ENUM_POLICY_MODE, p->mode),
                     risk_enum_name(RISK_ENUM_LEVEL, p->threshold),
                     risk_enum_name(RISK_ENUM_CONTROL, p->control));
    size_t off = n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;
    if (!p->n_include)
        off += (size_t)snprintf(buf + off, cap - off, "all");
    for (size_t i = 0; i < p->n_include && off < cap - 1; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", p->include[i]);
    if (off < cap - 1)
        off += (size_t)snprintf(buf + off, cap - off, " exclude=");
    for (size_t i = 0; i < p->n_exclude && off < cap - 1; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", p->exclude[i]);
}

/* Keep a note within the 1024-byte limit without cutting a UTF-8 sequence. */
static void clamp_note(char *s)
{
    size_t n = strlen(s);
    if (n <= RISK_NOTE_MAX)
        return;
    n = RISK_NOTE_MAX - 3;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(s + n, "...", 4);
}

struct policy_arg {
    const risk_policy *set; /* NULL for remove */
    const char *name;
};

static int find_policy(const risk_policy *p, void *arg)
{
    struct {
        const char *name;
        risk_policy *found;
    } *f = arg;
    if (strcmp(p->name, f->name) == 0)
        return risk_policy_dup(&f->found, p) == RISK_OK ? 1 : RISK_ENOMEM;
    return 0;
}

static int policy_op(risk_engine *e, const char *actor, struct policy_arg *a)
{
    int rc = RISK_OK;
    for (uint32_t attempt = 0;; attempt++) {
        void *txn = NULL;
        risk_history *h = NULL;
        struct {
            const char *name;
            risk_policy *found;
        } f = { a->name, NULL };
        char note[2 * 1100 + 32];
        if ((rc = e->st.begin(e->st.ctx, NULL, &txn)))
            return rc;
        rc = e->st.list_policies(e->st.ctx, txn, find_policy, &f);
        if (rc == 1)
            rc = RISK_OK;
        if (rc == RISK_OK && !a->set && !f.found)
            rc = risk_err(RISK_ENOTFOUND, "name: no policy '%s'", a->name);
        uint8_t head[32] = { 0 };
        size_t hl = 0;
        if (rc == RISK_OK) {
            rc = e->st.get_meta(e->st.ctx, txn, RISK_META_POLICY_CHAIN, head, sizeof head, &hl);
            if (rc == RISK_ENOTFOUND || (rc == RISK_OK && hl != 32)) {
                if (rc == RISK_OK)
                    rc = risk_err(RISK_ECORRUPT, "store: policy chain head has %zu bytes", hl);
                else {
                    memset(head, 0, sizeof head);
                    rc = RISK_OK;
                }
            }
        }
        if (rc == RISK_OK)
            rc = a->set ? e->st.put_policy(e->st.ctx, txn, a->set)
                        : e->st.remove_policy(e->st.ctx, txn, a->name);
        uint64_t seq = 0;
        if (rc == RISK_OK)
            rc = e->st.reserve_seq(e->st.ctx, txn, &seq);
        if (rc == RISK_OK)
            rc = risk_history_new(&h, seq, risk_engine_clock(e), actor,
                                  a->set ? RISK_HISTORY_POLICY_SET : RISK_HISTORY_POLICY_REMOVE,
                                  NULL, NULL, a->name);
        if (rc == RISK_OK) {
            char before[1100], after[1100];
            describe_policy(before, sizeof before, f.found);
            describe_policy(after, sizeof after, a->set);
            snprintf(note, sizeof note, "before: %s; after: %s", before, after);
            clamp_note(note);
            rc = risk_history_set_change(h, RISK_LEVEL_NONE, RISK_LEVEL_NONE, RISK_STATE_NONE,
                                         RISK_STATE_NONE, 0, note);
        }
        if (rc == RISK_OK)
            rc = risk_history_seal(h, head);
        if (rc == RISK_OK)
            rc = e->st.append_history(e->st.ctx, txn, h);
        if (rc == RISK_OK)
            rc = e->st.put_meta(e->st.ctx, txn, RISK_META_POLICY_CHAIN, h->chain, 32);
        if (rc == RISK_OK)
            rc = e->st.commit(e->st.ctx, txn);
        else
            e->st.rollback(e->st.ctx, txn);
        risk_history_free(h);
        risk_policy_free(f.found);
        if (rc != RISK_ECONFLICT || attempt >= e->opts.max_conflict_retries)
            break;
    }
    return rc;
}

static int policy_change(risk_engine *e, const char *actor, struct policy_arg *a)
{
    pthread_mutex_lock(&e->policy_write);
    int rc = policy_op(e, actor, a);
    /* Drop the cache whatever happened: a failed commit may still have
     * changed a shared store's view, and reloading is cheap. */
    policies_invalidate(e);
    pthread_mutex_unlock(&e->policy_write);
    return rc;
}

int risk_engine_policy_set(risk_engine *engine, const char *actor, const risk_policy *policy)
{
    CHECK_ENGINE(engine);
    if (!policy)
        return risk_err(RISK_EINVAL, "policy: NULL");
    int rc = risk_check_id("actor", actor);
    if (rc)
        return rc;
    struct policy_arg a = { policy, policy->name };
    return policy_change(engine, actor, &a);
}

int risk_engine_policy_remove(risk_engine *engine, const char *actor, const char *name)
{
    CHECK_ENGINE(engine);
    int rc = risk_check_id("actor", actor);
    if (rc == RISK_OK)
        rc = risk_check_id("name", name);
    if (rc)
        return rc;
    struct policy_arg a = { NULL, name };
    return policy_change(engine, actor, &a);
}

int risk_engine_policies(risk_engine *engine, risk_policy_visit_fn fn, void *userdata)
{
    CHECK_ENGINE(engine);
    if (!fn)
        return risk_err(RISK_EINVAL, "fn: NULL");
    void *txn = NULL;
    risk_policy **v = NULL;
    size_t n = 0;
    int rc = engine->st.begin(engine->st.ctx, NULL, &txn);
    if (rc)
        return rc;
    rc = load_policies(engine, txn, &v, &n);
    engine->st.rollback(engine->st.ctx, txn);
    for (size_t i = 0; rc == RISK_OK && i < n; i++)
        rc = fn(v[i], userdata);
    for (size_t i = 0; i < n; i++)
        risk_policy_free(v[i]);
    risk_free(v);
    return rc;
}
