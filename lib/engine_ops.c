/* The engine's per-user operations (SPEC §6): upsert, ingest, the
 * password remediations, dismiss, individual events, admin verdicts. Each
 * is a uop_fn run by run_user_op (lib/engine.c): read → catch-up → pure
 * transitions → rescore → history → write, inside one transaction. */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

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

/* Copy the detection fields of src onto *dst (an event being updated):
 * a view of *dst with src's detection, copied once, then put in its place
 * (a copy's strings live in its own block: the struct cannot be moved).
 * Both are valid handles, so nothing needs validating again. */
static int copy_detection(risk_event **dst, const risk_event *src)
{
    risk_event view = **dst, *own = NULL;
    view.type = src->type;
    view.level = src->level;
    view.detected_at = src->detected_at;
    view.timing = src->timing;
    view.ip = src->ip;
    view.location = src->location;
    view.source = src->source;
    int rc = risk_event_dup(&own, &view);
    if (rc)
        return rc;
    risk_event_free(*dst);
    *dst = own;
    return RISK_OK;
}

void arrive_at_risk(risk_user *u)
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
        if ((rc = uop_open(o)) || (rc = uop_load_events(o)))
            return rc;
        size_t i;
        for (i = 0; i < o->nev && strcmp(o->ev[i]->id, in->id) != 0; i++)
            ;
        if (i == o->nev)
            return risk_err(RISK_ECORRUPT, "store: event '%s' missing from its user", in->id);
        if (o->ev[i]->state != RISK_EVENT_ACTIVE) /* aged by the catch-up */
            return risk_err(RISK_ETRANSITION, "event: '%s' is closed and cannot be updated",
                            in->id);
        if ((rc = copy_detection(&o->ev[i], in)))
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
    /* The new event: the caller's detection fields, active, no closing and
     * no note (R-EV-1). A view that borrows the caller's strings (valid by
     * construction and alive for the call): the store copies what it keeps. */
    o->added_buf = *in;
    o->added_buf.closed_by = o->added_buf.note = NULL;
    o->added_buf.stable = 0; /* the caller's strings, whatever they were copied from */
    o->added_buf.stable_of = NULL;
    o->added_buf.state = RISK_EVENT_ACTIVE;
    o->added_buf.reason = RISK_CLOSE_NONE;
    o->added_buf.closed_at = RISK_TIME_NONE;
    o->added = &o->added_buf;
    risk_user *u = o->user;
    if (o->ev_loaded) {
        /* Events are in memory (the catch-up read them): score them all. */
        risk_event *copy = NULL;
        if ((rc = risk_event_dup(&copy, o->added)) ||
            (rc = uop_add_event(o, copy, 0))) /* written through o->added */
            return rc;
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
            if (p > 0 && n->detected_at < RISK_TIME_MAX - p) { /* else never, as in risk_score */
                int64_t at = n->detected_at + p;
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

static int ingest_at(risk_engine *engine, const char *actor, const risk_event *event,
                     uint32_t flags, uint64_t *defer)
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
    return run_user_op_at(engine, actor, event->user_id, op_ingest, &a, defer);
}

int risk_engine_ingest(risk_engine *engine, const char *actor, const risk_event *event,
                       uint32_t flags)
{
    return ingest_at(engine, actor, event, flags, NULL);
}

/* The bulk ingest and dismissal hint the store the users (and the event
 * ids) of this many items ahead, as the bulk sign-in does: the misses of
 * their lookups overlap in the store's prefetch instead of following one
 * another (docs/performance.md). An item the operation will refuse may
 * still be hinted; an id that is not a valid id is not (the hints'
 * contract), and its operation then sets the same message the check here
 * left. */
#define BULK_CHUNK 16

static void hint_users(risk_engine *engine, const char *const *user_ids, size_t m)
{
    const char *ids[BULK_CHUNK];
    size_t k = 0, len;
    for (size_t i = 0; i < m; i++)
        if (risk_check_id_len("user_id", user_ids[i], &len) == RISK_OK)
            ids[k++] = user_ids[i];
    if (k)
        engine->st.prefetch_users(engine->st.ctx, ids, k);
}

/* The end of a bulk call's chunk: its commits still waiting for the disk
 * (tickets, 0: none) share one wait, for the last of them (a sync covers
 * every frame before its target). When that wait fails, each commit is
 * asked on its own (an earlier sync may have covered it: the journal
 * keeps what its last good sync covered; else it failed, as a commit that
 * waited alone fails), and from the first lost commit on, an item that
 * succeeded without committing (an idempotent re-ingest, a dismissal with
 * nothing to close) may rest on what was lost: it fails too, as it would
 * have against the failed journal one call at a time. Returns the
 * chunk's failures. */
static int settle_chunk(risk_engine *engine, int *results, const uint64_t *tickets, size_t m)
{
    uint64_t last = 0;
    for (size_t i = 0; i < m; i++)
        last = tickets[i] > last ? tickets[i] : last;
    int rc = last ? engine->split->wait_durable(engine->host.ctx, last) : RISK_OK;
    int failed = 0, lost = 0;
    for (size_t i = 0; i < m; i++) {
        if (rc != RISK_OK && tickets[i] != 0) {
            results[i] = engine->split->wait_durable(engine->host.ctx, tickets[i]);
            lost |= results[i] != RISK_OK;
        } else if (lost && results[i] == RISK_OK) {
            results[i] = rc;
        }
        failed += results[i] != RISK_OK;
    }
    return failed;
}

static void hint_ingest(risk_engine *engine, const risk_event *const *events, size_t m)
{
    const char *users[BULK_CHUNK], *ids[BULK_CHUNK];
    size_t k = 0, len;
    for (size_t i = 0; i < m; i++) {
        const risk_event *ev = events[i];
        if (ev == NULL || ev->id == NULL || ev->user_id == NULL ||
            risk_check_id_len("event.id", ev->id, &len) != RISK_OK ||
            risk_check_id_len("event.user_id", ev->user_id, &len) != RISK_OK)
            continue;
        users[k] = ev->user_id;
        ids[k++] = ev->id;
    }
    if (k && engine->st.prefetch_users)
        engine->st.prefetch_users(engine->st.ctx, users, k);
    if (k && engine->st.prefetch_events)
        engine->st.prefetch_events(engine->st.ctx, ids, k);
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
    for (size_t at = 0; at < n; at += BULK_CHUNK) {
        size_t m = n - at < BULK_CHUNK ? n - at : BULK_CHUNK;
        if (engine->st.prefetch_users || engine->st.prefetch_events)
            hint_ingest(engine, events + at, m);
        uint64_t tickets[BULK_CHUNK] = { 0 }; /* 0 also for an item refused before its op */
        for (size_t i = 0; i < m; i++)
            results[at + i] = ingest_at(engine, actor, events[at + i], flags, &tickets[i]);
        int f = settle_chunk(engine, results + at, tickets, m);
        failed = failed > INT_MAX - f ? INT_MAX : failed + f; /* saturates */
    }
    return failed;
}

/* ------------------------------------------------------------------ */
/* Password operations (R-PO-10, R-PO-11, R-PW-1…3)                    */

static int op_password(struct uop *o)
{
    risk_password_change kind = *(risk_password_change *)o->arg;
    int rc;
    if ((rc = uop_open(o)))
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

/* The start of both manual resets: an existing user, caught up, and not
 * deleted (R-PW-3: both are refused for a deleted user). */
static int open_for_manual_reset(struct uop *o)
{
    int rc = uop_open(o);
    if (rc == RISK_OK && o->user->deleted)
        rc = risk_err(RISK_EDELETED, "user_id: '%s' is deleted", o->user_id);
    return rc;
}

static int op_temp_password(struct uop *o)
{
    int rc;
    if ((rc = open_for_manual_reset(o)))
        return rc;
    risk_user *u = o->user;
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
    if ((rc = generate_password(pw, len)) == RISK_OK) {
        rc = run_user_op(engine, actor, user_id, op_temp_password, NULL);
        if (rc == RISK_OK)
            memcpy(buf, pw, len + 1);
    }
    risk_wipe(pw, sizeof pw);
    return rc;
}

static int op_require_reset(struct uop *o)
{
    int rc;
    if ((rc = open_for_manual_reset(o)))
        return rc;
    risk_user *u = o->user;
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
    if ((rc = uop_open(o)) || (rc = uop_load_events(o)) ||
        (rc = uop_close_all(o, RISK_ACTION_DISMISS, NULL, &a->closed)) || (rc = uop_rescore(o)))
        return rc;
    uop_settle(o, a->closed, RISK_STATE_DISMISSED, RISK_DETAIL_ADMIN_DISMISSED_ALL_RISK);
    if ((rc = uop_history(o, o->actor, RISK_HISTORY_DISMISS_ALL, NULL, o->lvl_before, o->st_before,
                       a->closed, a->note)))
        return rc;
    return uop_write(o);
}

static int dismiss_at(risk_engine *engine, const char *actor, const char *user_id,
                      const char *note, uint32_t *closed, uint64_t *defer)
{
    CHECK_ENGINE(engine);
    int rc = check_actor_user(actor, user_id);
    if (rc == RISK_OK)
        rc = risk_check_note("note", note);
    if (rc)
        return rc;
    struct dismiss_arg a = { note, 0 };
    rc = run_user_op_at(engine, actor, user_id, op_dismiss, &a, defer);
    if (closed)
        *closed = rc == RISK_OK ? a.closed : 0;
    return rc;
}

int risk_engine_dismiss(risk_engine *engine, const char *actor, const char *user_id,
                        const char *note, uint32_t *closed)
{
    return dismiss_at(engine, actor, user_id, note, closed, NULL);
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
    for (size_t at = 0; at < n; at += BULK_CHUNK) {
        size_t m = n - at < BULK_CHUNK ? n - at : BULK_CHUNK;
        if (engine->st.prefetch_users)
            hint_users(engine, user_ids + at, m);
        uint64_t tickets[BULK_CHUNK] = { 0 };
        uint32_t c[BULK_CHUNK];
        for (size_t i = 0; i < m; i++)
            results[at + i] = dismiss_at(engine, actor, user_ids[at + i], note, &c[i], &tickets[i]);
        int f = settle_chunk(engine, results + at, tickets, m);
        for (size_t i = 0; closed && i < m; i++)
            closed[at + i] = results[at + i] == RISK_OK ? c[i] : 0;
        failed = failed > INT_MAX - f ? INT_MAX : failed + f; /* saturates */
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
    o->events_all = 1; /* reactivate works on closed events */
    if ((rc = uop_open(o)) || (rc = uop_load_events(o)))
        return rc;
    size_t i;
    for (i = 0; i < o->nev && strcmp(o->ev[i]->id, a->event_id) != 0; i++)
        ;
    if (i == o->nev)
        return risk_err(RISK_ENOTFOUND, "event_id: no event '%s'", a->event_id);
    risk_event *ev = o->ev[i];
    risk_user *u = o->user;
    risk_event_state ns;
    risk_close_reason nr;
    if (a->action == RISK_ACTION_REACTIVATE) {
        /* the table's refusal first (R-EV-4: closed through remediation,
         * dismissed, aged), then R-EV-7 for what the table would reopen */
        if (ev->state == RISK_EVENT_CLOSED && u->remediated_at != RISK_TIME_NONE &&
            ev->detected_at <= u->remediated_at &&
            risk_transition(ev->state, ev->reason, RISK_ACTION_REACTIVATE, &ns, &nr) == RISK_OK)
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
    if ((rc = uop_open(o)) || (rc = uop_load_events(o)))
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
        /* Dated when the user's risk began, if it is at risk: the verdict
         * confirms that risk, and R-PO-11 compares MFA registration with
         * the earliest active event, which this one must not move later
         * (an MFA registered during the risk would count once the
         * detection that began it was resolved). */
        int64_t since = u->active_events > 0 && u->risk_since != RISK_TIME_NONE &&
                                u->risk_since < o->now
                            ? u->risk_since
                            : o->now;
        risk_event *ev = NULL;
        if ((rc = risk_event_new(&ev, id, o->user_id, RISK_COMPROMISED_TYPE, RISK_LEVEL_HIGH,
                                 since)))
            return rc;
        if ((rc = uop_add_event(o, ev, 1)))
            return rc;
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
    if ((rc = uop_open(o)))
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
    /* R-IN-2: the events this closed as false positive; not those the
     * operation's aging catch-up closed (also changed, reason aged) */
    for (size_t i = 0; i < o->nev; i++)
        if (o->dirty[i] && o->ev[i]->state == RISK_EVENT_CLOSED &&
            o->ev[i]->reason == RISK_CLOSE_FALSE_POSITIVE &&
            (rc = uop_keep_feedback(o, o->ev[i])))
            return rc;
    /* An admin's explicit verdict (R-US-4), like confirm compromised: it sets
     * the state whether or not the user was at risk (R-US-5 governs the
     * routine remediations). */
    set_state(o->user, RISK_STATE_CONFIRMED_SAFE, RISK_DETAIL_ADMIN_CONFIRMED_SAFE);
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

