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

#include <stdlib.h>
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

pthread_mutex_t *risk_engine_stripe(risk_engine *e, const char *user_id)
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


int ev_push(struct ev_vec *vec, risk_event *ev)
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

/* An operation's copies of its user's events, in chunks freed together:
 * ten events cost two allocations, not ten and ten frees. A chunk stays
 * under glibc's per-thread cache limit (1,032 bytes), which serves it
 * without a lock; a request beyond the small bins would first merge the
 * allocator's fast bins. (callgrind, --quick dismissals: the same count
 * of instructions with 4,000-byte chunks.) */
struct evblk {
    struct evblk *next;
    size_t used, cap;
    max_align_t mem[];
};
#define EVBLK_CHUNK 960

static void *evblk_alloc(void *ctx, size_t n)
{
    struct evblk **head = ctx, *b = *head;
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > EVBLK_CHUNK ? n : EVBLK_CHUNK;
        if ((b = risk_malloc(sizeof *b + cap)) == NULL)
            return NULL;
        b->next = *head;
        b->used = 0;
        b->cap = cap;
        *head = b;
    }
    void *p = (char *)b->mem + b->used;
    b->used += n;
    return p;
}

void evblk_free(struct evblk **blk)
{
    for (struct evblk *b = *blk, *next; b != NULL; b = next) {
        next = b->next;
        risk_free(b);
    }
    *blk = NULL;
}

struct collect {
    struct ev_vec vec;
    int active_only;
    struct evblk **blk; /* for one operation: risk_event_dup_borrowing */
};

static int collect_event(const risk_event *ev, void *arg)
{
    struct collect *c = arg;
    if (c->active_only && ev->state != RISK_EVENT_ACTIVE)
        return RISK_OK;
    risk_event *copy = NULL;
    int rc = c->blk ? risk_event_dup_borrowing(&copy, ev, evblk_alloc, c->blk)
                    : risk_event_dup(&copy, ev);
    if (rc)
        return rc;
    rc = ev_push(&c->vec, copy);
    if (rc)
        risk_event_free(copy);
    return rc;
}

int risk_engine_load_events_as(risk_engine *e, void *txn, const char *user_id,
                               int active_only, struct evblk **blk, risk_event ***out,
                               size_t *n)
{
    struct collect c = { { 0 }, active_only, blk };
    int rc = e->st.user_events(e->st.ctx, txn, user_id, collect_event, &c);
    struct ev_vec vec = c.vec;
    if (rc) {
        risk_events_free(vec.v, vec.n);
        return rc;
    }
    if (vec.n > 16)
        qsort(vec.v, vec.n, sizeof *vec.v, event_cmp);
    else /* a typical user: insertion sort, no call per comparison */
        for (size_t i = 1; i < vec.n; i++) {
            risk_event *x = vec.v[i];
            size_t j = i;
            for (; j > 0 && event_cmp(&vec.v[j - 1], &x) > 0; j--)
                vec.v[j] = vec.v[j - 1];
            vec.v[j] = x;
        }
    /* a host's store that visits an event twice (a join gone wrong, a
     * stale row beside the new one) would have it counted and closed twice */
    if (risk_engine_guarded(e) && vec.n > 1) {
        const char **ids = risk_malloc(vec.n * sizeof *ids);
        rc = ids ? RISK_OK : risk_err(RISK_ENOMEM, "events: out of memory");
        for (size_t i = 0; rc == RISK_OK && i < vec.n; i++)
            ids[i] = vec.v[i]->id;
        if (rc == RISK_OK)
            rc = risk_ids_unique(ids, vec.n, "store.user_events: visited an event twice");
        risk_free(ids);
        if (rc) {
            risk_events_free(vec.v, vec.n);
            return rc;
        }
    }
    *out = vec.v;
    *n = vec.n;
    return RISK_OK;
}

int risk_engine_load_events(risk_engine *e, void *txn, const char *user_id, risk_event ***out,
                            size_t *n)
{
    return risk_engine_load_events_as(e, txn, user_id, 0, NULL, out, n);
}

int risk_engine_read_user(risk_engine *e, const char *user_id, risk_user **user,
                          risk_event ***ev, size_t *nev)
{
    void *txn = NULL;
    risk_user *u = NULL;
    if (ev)
        *ev = NULL, *nev = 0;
    int rc = e->st.begin(e->st.ctx, user_id, &txn);
    if (rc)
        return rc;
    rc = e->st.get_user(e->st.ctx, txn, user_id, &u);
    if (rc == RISK_OK && ev)
        rc = risk_engine_load_events(e, txn, user_id, ev, nev);
    e->st.rollback(e->st.ctx, txn);
    if (rc) {
        risk_user_free(u);
        return rc;
    }
    *user = u;
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

void risk_engine_policies_clear(risk_engine *e)
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
    risk_engine_policies_clear(e);
    if (e->type_aging) {
        for (uint32_t i = 0; i < e->scoring.type_aging_count; i++)
            risk_free((char *)e->type_aging[i].type);
        risk_free(e->type_aging);
    }
    if (e->receipt_key) {
        risk_wipe(e->receipt_key, e->receipt_key_len);
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
    /* An older table ends at its version's last member (version 1 at
     * backup, 2 at prefetch_users): what follows is not the host's. */
    memcpy(&e->host, store,
           store->version >= 3   ? sizeof *store
           : store->version == 2 ? offsetof(risk_store, prefetch_events)
                                 : offsetof(risk_store, prefetch_users));
    e->split = risk_store_split_of(store);
    e->pgen = risk_store_policy_gen_of(store);
    /* only a table the library made goes unguarded, callback for callback */
    if (risk_store_is_builtin(&e->host)) {
        e->st = e->host;
        e->peek = risk_store_peeker_of(&e->host, &e->peek_ctx);
    } else
        risk_store_guard(&e->st, &e->host);
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
/* The per-user operation frame                                       */


void uop_reset(struct uop *o)
{
    risk_user_free(o->user);
    risk_user_free(o->orig);
    risk_events_free(o->ev, o->nev);
    evblk_free(&o->blk); /* after the events: they may live in it */
    risk_free(o->dirty);
    if (o->added != &o->added_buf)
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
    o->aged_change = 0;
    o->write_user = 0;
    o->events_all = 0;
}

/* Read the user; create a fresh one if missing and `create` is set. */
int uop_load_user(struct uop *o, int create)
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
        o->orig_level = u->level;
        o->orig_state = u->state;
        o->orig_detail = u->detail;
        o->orig_version = u->version;
        /* The full "before" record is only for the user-change hook. */
        if (o->e->opts.user_changed && (rc = risk_user_dup(&o->orig, u))) {
            risk_user_free(u);
            return rc;
        }
    }
    o->user = u;
    o->lvl_before = u->level;
    o->st_before = u->state;
    return RISK_OK;
}

int uop_load_events(struct uop *o)
{
    if (o->ev_loaded)
        return RISK_OK;
    /* Closed events never count and most operations only change active
     * ones: copy the closed ones only for operations that need them. */
    /* The operation's copies point at the strings a built-in store keeps
     * (they are freed before the operation returns): only ip and note,
     * which a closing may rewrite, are copied. */
    int rc = risk_engine_load_events_as(o->e, o->txn, o->user_id, !o->events_all, &o->blk,
                                        &o->ev, &o->nev);
    if (rc)
        return rc;
    o->dirty = risk_calloc(o->nev ? o->nev : 1, 1);
    if (!o->dirty)
        return risk_err(RISK_ENOMEM, "events: out of memory");
    o->ev_loaded = 1;
    return RISK_OK;
}

/* Add an event the operation owns (ownership passes, also on failure) to
 * its loaded events; `dirty`: uop_write must put it. */
int uop_add_event(struct uop *o, risk_event *ev, int dirty)
{
    struct ev_vec vec = { o->ev, o->nev, o->nev };
    int rc = ev_push(&vec, ev);
    if (rc) {
        risk_event_free(ev);
        return rc;
    }
    o->ev = vec.v;
    o->nev = vec.n;
    uint8_t *nd = risk_realloc(o->dirty, o->nev);
    if (!nd) /* ev is in o->ev: uop_reset frees it */
        return risk_err(RISK_ENOMEM, "events: out of memory");
    o->dirty = nd;
    o->dirty[o->nev - 1] = (uint8_t)dirty;
    return RISK_OK;
}

/* Apply a state-machine action to event i of the operation. The event
 * borrows the actor and the note (validated at the API, alive for the
 * whole operation, which frees its events before it returns): closing ten
 * events copies no string. */
int uop_act(struct uop *o, size_t i, risk_action action, const char *note)
{
    risk_event *ev = o->ev[i];
    risk_event_state ns;
    risk_close_reason nr;
    int rc = risk_transition(ev->state, ev->reason, action, &ns, &nr);
    if (rc)
        return rc;
    if (ns == RISK_EVENT_ACTIVE)
        risk_event_close_borrowed(ev, ns, nr, RISK_TIME_NONE, NULL);
    else {
        int64_t at = o->now;
        const char *by = o->actor;
        if (action == RISK_ACTION_AGE) {
            at = ev->detected_at + risk_scoring_aging_for(&o->e->scoring, ev);
            if (at > o->now)
                at = o->now;
            by = RISK_SYSTEM_ACTOR;
        }
        risk_event_close_borrowed(ev, ns, nr, at, by);
    }
    /* R-EV-2: a closing records its own note, none if it has none (an
     * earlier closing's note does not carry over); a reactivation keeps
     * the note of the closing it undoes unless given one
     * (docs/decisions.md) */
    if (note || ns != RISK_EVENT_ACTIVE)
        risk_event_note_borrowed(ev, note);
    o->dirty[i] = 1;
    return RISK_OK;
}

int is_reserved_event(const risk_event *ev)
{
    return strncmp(ev->id, RISK_RESERVED_PREFIX, strlen(RISK_RESERVED_PREFIX)) == 0;
}

int64_t aged_at(const risk_engine *e, const risk_event *ev, int64_t now)
{
    if (ev->state != RISK_EVENT_ACTIVE || is_reserved_event(ev))
        return RISK_TIME_NONE;
    int64_t p = risk_scoring_aging_for(&e->scoring, ev);
    return p > 0 && ev->detected_at <= now - p ? ev->detected_at + p : RISK_TIME_NONE;
}

/* Recompute the derived level fields from all loaded events. */
int uop_rescore(struct uop *o)
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
    for (size_t i = 0; i < o->nev; i++) {
        const risk_event *ev = o->ev[i];
        if (ev->state != RISK_EVENT_ACTIVE)
            continue;
        active++;
        /* Active but already past its period (reactivated, updated to an
         * old detection, or ingested so in this operation): it no longer
         * counts, and aging has still to close it (R-SC-2). risk_score
         * leaves it out of next_change_at (the next change of the score);
         * the user is due at its time instead, so that the next operation,
         * sign-in or sweep closes it as aged (uop_catch_up's test). */
        int64_t at = aged_at(o->e, ev, o->now);
        if (at != RISK_TIME_NONE &&
            (u->next_change_at == RISK_TIME_NONE || at < u->next_change_at))
            u->next_change_at = at;
    }
    u->active_events = active;
    return RISK_OK;
}

void set_state(risk_user *u, risk_state s, risk_detail d)
{
    u->state = s;
    u->detail = d;
}

/* Append one history item for the operation's user, chained to its head.
 * The item borrows every string from the operation (actor, ids and notes
 * were validated at the API and outlive the call) and lives on the stack:
 * the store copies what it keeps, so the hot path allocates nothing here. */
int uop_history(struct uop *o, const char *actor, risk_history_action action,
                const char *event_id, uint32_t lvl_before, uint32_t st_before, uint32_t changed,
                const char *note)
{
    risk_engine *e = o->e;
    risk_history h;
    memset(&h, 0, sizeof h);
    int rc = e->st.reserve_seq(e->st.ctx, o->txn, &h.seq);
    if (rc)
        return rc;
    h.at = o->now;
    h.action = action;
    h.actor = (char *)actor;
    h.user_id = (char *)o->user_id;
    h.event_id = (char *)event_id;
    h.note = (char *)note;
    h.level_before = lvl_before;
    h.level_after = o->user->level;
    h.state_before = st_before;
    h.state_after = o->user->state;
    h.changed = changed;
    rc = risk_history_seal(&h, o->user->chain_head);
    if (rc == RISK_OK)
        rc = e->st.append_history(e->st.ctx, o->txn, &h);
    if (rc == RISK_OK) {
        memcpy(o->user->chain_head, h.chain, 32);
        o->wrote_history = 1;
    }
    return rc;
}

/* When aging changed u's level, state or detail: the time the last event
 * it closed aged (`last`, or now), never before u's last recorded change. */
static int64_t aging_change_time(const risk_user *u, int64_t last, int64_t now)
{
    int64_t t = last != RISK_TIME_NONE ? last : now;
    return u->risk_updated_at != RISK_TIME_NONE && t < u->risk_updated_at ? u->risk_updated_at
                                                                          : t;
}

/* R-SC-2: close every active event past its aging period, as `system`,
 * with its own history item. Runs at the start of every user operation. */
int uop_catch_up(struct uop *o)
{
    risk_user *u = o->user;
    if (o->is_new || u->next_change_at == RISK_TIME_NONE || u->next_change_at > o->now)
        return RISK_OK;
    int rc = uop_load_events(o);
    if (rc)
        return rc;
    uint32_t lvl = u->level, st = u->state, det = u->detail, closed = 0;
    int64_t last = RISK_TIME_NONE;
    for (size_t i = 0; i < o->nev; i++) {
        int64_t at = aged_at(o->e, o->ev[i], o->now);
        if (at == RISK_TIME_NONE)
            continue;
        rc = uop_act(o, i, RISK_ACTION_AGE, NULL);
        if (rc)
            return rc;
        if (last == RISK_TIME_NONE || at > last)
            last = at;
        closed++;
    }
    rc = uop_rescore(o);
    if (rc)
        return rc;
    if (u->active_events == 0 && u->state == RISK_STATE_AT_RISK)
        set_state(u, RISK_STATE_NONE, RISK_DETAIL_AGED_OUT);
    o->aged = closed;
    if (closed && (u->level != lvl || u->state != st || u->detail != det)) {
        o->aged_change = 1;
        /* the aging's time, but never before the change recorded last (an
         * event may arrive already past its period: it put the user at
         * risk when it came, and aging took it back no earlier) */
        o->aged_change_at = aging_change_time(u, last, o->now);
        o->ca_level = u->level, o->ca_state = u->state, o->ca_detail = u->detail;
    }
    if (closed) {
        rc = uop_history(o, RISK_SYSTEM_ACTOR, RISK_HISTORY_AGE, NULL, lvl, st, closed, NULL);
        if (rc)
            return rc;
    }
    o->lvl_before = u->level;
    o->st_before = u->state;
    return RISK_OK;
}

/* The start of every operation on an existing user: read it, then let
 * aging catch up (R-SC-2). */
int uop_open(struct uop *o)
{
    int rc = uop_load_user(o, 0);
    return rc ? rc : uop_catch_up(o);
}

/* Write the events the operation changed and mark the user for writing.
 * The runner writes the user record last (uop_put_user), after every
 * history item: the record carries the head of the user's chain. */
int uop_write(struct uop *o)
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

int uop_put_user(struct uop *o)
{
    risk_user *u = o->user;
    if (o->is_new || o->orig_level != u->level || o->orig_state != u->state ||
        o->orig_detail != u->detail)
        u->risk_updated_at = o->aged_change && u->level == o->ca_level &&
                                     u->state == o->ca_state && u->detail == o->ca_detail
                                 ? o->aged_change_at /* only aging changed them */
                                 : o->now;
    if (!o->is_new && o->orig_version == UINT64_MAX) /* no version can follow it */
        return risk_err(RISK_ECORRUPT, "store: user '%s' has version 2^64-1", u->id);
    u->version = (o->is_new ? 0 : o->orig_version) + 1;
    return o->e->st.put_user(o->e->st.ctx, o->txn, u);
}

/* Close every active event with `action`; returns the count in *n. */
int uop_close_all(struct uop *o, risk_action action, const char *note, uint32_t *n)
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
void uop_settle(struct uop *o, uint32_t closed, risk_state s, risk_detail d)
{
    uint32_t before = o->st_before;
    if (closed || before == RISK_STATE_AT_RISK || before == RISK_STATE_CONFIRMED_COMPROMISED)
        set_state(o->user, s, d);
}

int run_user_op(risk_engine *e, const char *actor, const char *user_id, uop_fn fn,
                       void *arg);

/* ------------------------------------------------------------------ */
/* Post-commit hooks                                                  */

void uop_hooks(struct uop *o)
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

int uop_keep_feedback(struct uop *o, const risk_event *ev)
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

int run_user_op(risk_engine *e, const char *actor, const char *user_id, uop_fn fn, void *arg)
{
    return run_user_op_at(e, actor, user_id, fn, arg, NULL);
}

int run_user_op_at(risk_engine *e, const char *actor, const char *user_id, uop_fn fn, void *arg,
                   uint64_t *defer)
{
    if (defer != NULL) /* hooks run once the commit is durable: those wait here */
        *defer = 0;
    if (e->opts.feedback || e->opts.user_changed)
        defer = NULL;
    struct uop o;
    memset(&o, 0, sizeof o);
    o.e = e;
    o.actor = actor;
    o.user_id = user_id;
    o.fn = fn;
    o.arg = arg;
    pthread_mutex_t *lock = risk_engine_stripe(e, user_id);
    pthread_mutex_lock(lock);
    int rc = RISK_OK;
    uint64_t ticket = 0;
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
            rc = e->split ? e->split->commit_nowait(e->host.ctx, o.txn, &ticket)
                          : e->st.commit(e->st.ctx, o.txn);
        else
            e->st.rollback(e->st.ctx, o.txn);
        if (rc != RISK_ECONFLICT || attempt >= e->opts.max_conflict_retries)
            break;
    }
    pthread_mutex_unlock(lock);
    /* The next operation on this user may commit while this one waits for
     * the disk: its frame follows this one's, so a sync covering it covers
     * this one too, and a failed sync fails both. */
    if (rc == RISK_OK && ticket && defer != NULL)
        *defer = ticket;
    else if (rc == RISK_OK && ticket)
        rc = e->split->wait_durable(e->host.ctx, ticket);
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


int check_actor_user(const char *actor, const char *user_id)
{
    int rc = risk_check_id("actor", actor);
    if (rc == RISK_OK)
        rc = risk_check_id("user_id", user_id);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Aging (R-SC-2)                                                     */

static int op_catch_up(struct uop *o)
{
    int rc = uop_load_user(o, 0);
    if (rc != RISK_OK)
        return rc;
    const risk_user *u = o->user;
    int due = !o->is_new && u->next_change_at != RISK_TIME_NONE && u->next_change_at <= o->now;
    uint32_t lvl = u->level, st = u->state;
    rc = uop_catch_up(o);
    /* A catch-up that closes nothing still stores what it recomputed. The
     * stored next change was computed under the aging periods of whichever
     * engine wrote the user (R-SC-7, R-SC-8: they are the engine's
     * settings); under this engine's longer ones nothing is due yet, and a
     * stale past value left in the store would keep the user due: every
     * sign-in would run the catch-up again and fail closed. A level or
     * state that changes with it gets its history item. */
    if (rc == RISK_OK && due && !o->wrote_history &&
        (o->user->level != lvl || o->user->state != st))
        rc = uop_history(o, RISK_SYSTEM_ACTOR, RISK_HISTORY_AGE, NULL, lvl, st, 0, NULL);
    if (rc == RISK_OK && (o->wrote_history || due))
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
    int64_t last = RISK_TIME_NONE; /* when the last event closed here aged */
    for (size_t i = 0; i < n; i++) {
        risk_event *x = ev[i];
        int64_t at = aged_at(e, x, now);
        if (at != RISK_TIME_NONE) {
            /* allocates nothing (the actor, a literal, is borrowed), so
             * it cannot fail halfway: an out-of-memory copy of the actor
             * left the event active beside a user aged out */
            risk_event_close_borrowed(x, RISK_EVENT_CLOSED, RISK_CLOSE_AGED, at,
                                      RISK_SYSTEM_ACTOR);
            if (last == RISK_TIME_NONE || at > last)
                last = at;
        }
        active += x->state == RISK_EVENT_ACTIVE;
    }
    if (risk_score(&r, &e->scoring, (const risk_event *const *)ev, n, now) == RISK_OK) {
        /* as the written catch-up stamps it (uop_put_user): the aging's time */
        if (r.level != u->level || (active == 0 && u->state == RISK_STATE_AT_RISK))
            u->risk_updated_at = aging_change_time(u, last, now);
        u->level = r.level;
        u->score = r.score;
        u->risk_since = r.risk_since;
        u->next_change_at = r.next_change_at;
        u->active_events = active;
        if (active == 0 && u->state == RISK_STATE_AT_RISK)
            set_state(u, RISK_STATE_NONE, RISK_DETAIL_AGED_OUT);
    }
}
