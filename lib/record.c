/* The record handles: users, events, policies (SPEC §2).
 *
 * Every setter validates first and changes the handle only once nothing can
 * fail any more: new copies are allocated before old ones are freed, so on
 * RISK_EINVAL or RISK_ENOMEM the handle is exactly as it was (R-IV-1,
 * R-IV-3). Getters on a NULL handle return a neutral value (NULL, 0,
 * RISK_TIME_NONE) instead of crashing. */
#include "internal.h"

#include <stdlib.h>

static const uint8_t zero_chain[32];

static int nomem(const char *what)
{
    return risk_err(RISK_ENOMEM, "%s: out of memory", what);
}

static int check_flag(const char *what, int v)
{
    if (v != 0 && v != 1)
        return risk_err(RISK_EINVAL, "%s: %d, expected 0 or 1", what, v);
    return RISK_OK;
}

static int check_range(const char *what, uint32_t v, uint32_t max)
{
    if (v > max)
        return risk_err(RISK_EINVAL, "%s: value %u out of range 0..%u", what, (unsigned)v,
                        (unsigned)max);
    return RISK_OK;
}

#define CHECK(expr)              \
    do {                         \
        int rc_ = (expr);        \
        if (rc_ != RISK_OK)      \
            return rc_;          \
    } while (0)

#define CHECK_NOT_NULL(p, what)                              \
    do {                                                     \
        if ((p) == NULL)                                     \
            return risk_err(RISK_EINVAL, "%s: NULL", what);  \
    } while (0)

/* A constructor's out: required, and NULL until it succeeds, so that a
 * caller's cleanup after a failure frees nothing it does not own. */
#define CHECK_OUT(out)             \
    do {                           \
        CHECK_NOT_NULL(out, "out"); \
        *(out) = NULL;             \
    } while (0)

/* ================================================================ users */

/* A user and its id in one allocation (the id is its only string and has
 * no setter); risk_user_free also takes users whose id was allocated on its
 * own (the decoder builds records field by field). */
static risk_user *user_alloc(const char *id)
{
    size_t n = strlen(id) + 1;
    risk_user *u = risk_malloc(sizeof *u + n);
    if (u == NULL)
        return NULL;
    u->id = memcpy((char *)(u + 1), id, n);
    return u;
}

int risk_user_new(risk_user **out, const char *id)
{
    CHECK_OUT(out);
    CHECK(risk_check_id("id", id));
    risk_user *u = user_alloc(id);
    if (u == NULL)
        return nomem("risk_user_new");
    char *keep = u->id;
    memset(u, 0, sizeof *u);
    u->id = keep;
    u->mfa_registered_at = RISK_TIME_NONE;
    u->remediated_at = RISK_TIME_NONE;
    u->risk_updated_at = RISK_TIME_NONE;
    u->risk_since = RISK_TIME_NONE;
    u->next_change_at = RISK_TIME_NONE;
    *out = u;
    return RISK_OK;
}

int risk_user_dup(risk_user **out, const risk_user *user)
{
    CHECK_OUT(out);
    CHECK_NOT_NULL(user, "user");
    risk_user *u = user_alloc(user->id);
    if (u == NULL)
        return nomem("risk_user_dup");
    char *id = u->id;
    *u = *user;
    u->id = id;
    *out = u;
    return RISK_OK;
}

void risk_user_free(risk_user *user)
{
    if (user == NULL)
        return;
    if (user->id != (char *)(user + 1))
        risk_free(user->id);
    risk_free(user);
}

const char *risk_user_id(const risk_user *u) { return u ? u->id : NULL; }
int risk_user_mfa_registered(const risk_user *u) { return u ? u->mfa_registered : 0; }
int64_t risk_user_mfa_registered_at(const risk_user *u) { return u ? u->mfa_registered_at : RISK_TIME_NONE; }
int risk_user_deleted(const risk_user *u) { return u ? u->deleted : 0; }
int risk_user_must_change_password(const risk_user *u) { return u ? u->must_change_password : 0; }
int risk_user_reset_required(const risk_user *u) { return u ? u->reset_required : 0; }
int64_t risk_user_remediated_at(const risk_user *u) { return u ? u->remediated_at : RISK_TIME_NONE; }
risk_level risk_user_risk_level(const risk_user *u) { return u ? (risk_level)u->level : RISK_LEVEL_NONE; }
risk_state risk_user_risk_state(const risk_user *u) { return u ? (risk_state)u->state : RISK_STATE_NONE; }
risk_detail risk_user_risk_detail(const risk_user *u) { return u ? (risk_detail)u->detail : RISK_DETAIL_NONE; }
int64_t risk_user_risk_updated_at(const risk_user *u) { return u ? u->risk_updated_at : RISK_TIME_NONE; }
uint64_t risk_user_score(const risk_user *u) { return u ? u->score : 0; }
int64_t risk_user_risk_since(const risk_user *u) { return u ? u->risk_since : RISK_TIME_NONE; }
int64_t risk_user_next_change_at(const risk_user *u) { return u ? u->next_change_at : RISK_TIME_NONE; }
uint32_t risk_user_active_events(const risk_user *u) { return u ? u->active_events : 0; }
uint64_t risk_user_version(const risk_user *u) { return u ? u->version : 0; }
/* Zeros rather than NULL for a NULL user: callers memcmp the result. */
const uint8_t *risk_user_chain_head(const risk_user *u) { return u ? u->chain_head : zero_chain; }

int risk_user_set_mfa_registered(risk_user *user, int registered, int64_t at)
{
    CHECK_NOT_NULL(user, "user");
    CHECK(check_flag("registered", registered));
    if (registered)
        CHECK(risk_check_time_opt("at", at));
    user->mfa_registered = (uint8_t)registered;
    /* Unregistering forgets the time; RISK_TIME_NONE with 1 lets the engine
     * stamp the upsert's time (R-PO-11). */
    user->mfa_registered_at = registered ? at : RISK_TIME_NONE;
    return RISK_OK;
}

int risk_user_set_deleted(risk_user *user, int deleted)
{
    CHECK_NOT_NULL(user, "user");
    CHECK(check_flag("deleted", deleted));
    user->deleted = (uint8_t)deleted;
    return RISK_OK;
}

int risk_user_set_version(risk_user *user, uint64_t version)
{
    CHECK_NOT_NULL(user, "user");
    user->version = version;
    return RISK_OK;
}

int risk_user_set_password_state(risk_user *user, int must_change_password, int reset_required,
                                 int64_t remediated_at)
{
    CHECK_NOT_NULL(user, "user");
    CHECK(check_flag("must_change_password", must_change_password));
    CHECK(check_flag("reset_required", reset_required));
    CHECK(risk_check_time_opt("remediated_at", remediated_at));
    user->must_change_password = (uint8_t)must_change_password;
    user->reset_required = (uint8_t)reset_required;
    user->remediated_at = remediated_at;
    return RISK_OK;
}

int risk_user_set_risk(risk_user *user, risk_level level, risk_state state, risk_detail detail,
                       int64_t updated_at, uint64_t score, int64_t risk_since,
                       int64_t next_change_at, uint32_t active_events)
{
    CHECK_NOT_NULL(user, "user");
    CHECK(check_range("level", (uint32_t)level, RISK_LEVEL_HIGH));
    CHECK(check_range("state", (uint32_t)state, RISK_STATE_CONFIRMED_COMPROMISED));
    CHECK(check_range("detail", (uint32_t)detail, RISK_DETAIL_AGED_OUT));
    CHECK(risk_check_time_opt("updated_at", updated_at));
    CHECK(risk_check_time_opt("risk_since", risk_since));
    CHECK(risk_check_time_opt("next_change_at", next_change_at));
    user->level = (uint32_t)level;
    user->state = (uint32_t)state;
    user->detail = (uint32_t)detail;
    user->risk_updated_at = updated_at;
    user->score = score;
    user->risk_since = risk_since;
    user->next_change_at = next_change_at;
    user->active_events = active_events;
    return RISK_OK;
}

int risk_user_set_chain_head(risk_user *user, const uint8_t head[32])
{
    CHECK_NOT_NULL(user, "user");
    CHECK_NOT_NULL(head, "head");
    memcpy(user->chain_head, head, 32);
    return RISK_OK;
}

/* =============================================================== events */

static int in_arena(const risk_event *e, const char *p)
{
    uintptr_t a = (uintptr_t)e->arena, x = (uintptr_t)p;
    return e->arena != NULL && x >= a && x < a + e->arena_len;
}

/* The string fields in one order, for measuring, packing and freeing, and
 * their RISK_EV_BORROWED_* bits. */
#define EV_STRINGS(e) {(e)->id, (e)->user_id, (e)->type, (e)->ip, (e)->location, (e)->source, \
                       (e)->closed_by, (e)->note}
static const uint8_t ev_bit[8] = {
    RISK_EV_BORROWED_ID,       RISK_EV_BORROWED_USER_ID, RISK_EV_BORROWED_TYPE,
    RISK_EV_BORROWED_IP,       RISK_EV_BORROWED_LOCATION, RISK_EV_BORROWED_SOURCE,
    RISK_EV_BORROWED_CLOSED_BY, RISK_EV_BORROWED_NOTE};

static void ev_free_str(risk_event *e, char *p)
{
    if (p != NULL && !in_arena(e, p)) /* no call for an absent field */
        risk_free(p);
}

/* Replace *field (its RISK_EV_BORROWED_* bit: `bit`) by a copy of v
 * (NULL clears); on ENOMEM *field is kept. The old string may live in the
 * event's arena, or be borrowed. */
static int ev_replace_str(risk_event *e, char **field, unsigned bit, const char *v,
                          const char *what)
{
    char *copy = NULL;
    if (v != NULL && (copy = risk_strdup(v)) == NULL)
        return nomem(what);
    if (!(e->borrowed & bit))
        ev_free_str(e, *field);
    *field = copy;
    e->borrowed = (uint8_t)(e->borrowed & ~bit);
    e->stable = (uint8_t)(e->stable & ~bit);
    return RISK_OK;
}

void risk_event_free(risk_event *e)
{
    if (e == NULL)
        return;
    char *const s[8] = EV_STRINGS(e);
    for (int i = 0; i < 8; i++)
        if (!(e->borrowed & ev_bit[i]))
            ev_free_str(e, s[i]);
    if (!e->in_block)
        risk_free(e); /* and the strings in its block */
}

/* R-EV-1: a new event is active, reason none, realtime, nothing optional set. */
int risk_event_new(risk_event **out, const char *id, const char *user_id, const char *type,
                   risk_level level, int64_t detected_at)
{
    CHECK_OUT(out);
    CHECK(risk_check_id("id", id));
    CHECK(risk_check_id("user_id", user_id));
    CHECK(risk_check_type("type", type));
    CHECK(risk_check_event_level("level", (uint32_t)level));
    CHECK(risk_check_time("detected_at", detected_at));
    risk_event *e = risk_calloc(1, sizeof *e);
    if (e == NULL)
        return nomem("risk_event_new");
    if ((e->id = risk_strdup(id)) == NULL || (e->user_id = risk_strdup(user_id)) == NULL ||
        (e->type = risk_strdup(type)) == NULL) {
        risk_event_free(e);
        return nomem("risk_event_new");
    }
    e->level = (uint32_t)level;
    e->timing = RISK_TIMING_REALTIME;
    e->state = RISK_EVENT_ACTIVE;
    e->reason = RISK_CLOSE_NONE;
    e->detected_at = detected_at;
    e->closed_at = RISK_TIME_NONE;
    *out = e;
    return RISK_OK;
}

static size_t opt_len(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

size_t risk_event_strings_size(const risk_event *src, unsigned keep, size_t len[8])
{
    const char *s[8] = EV_STRINGS(src);
    size_t n = 0;
    for (int i = 0; i < 8; i++)
        n += len[i] = keep & ev_bit[i] ? 0 : opt_len(s[i]);
    return n;
}

void risk_event_pack_strings(risk_event *dst, const risk_event *src, const size_t len[8],
                             char *at)
{
    const char *s[8] = EV_STRINGS(src);
    char *d[8];
    for (int i = 0; i < 8; i++) { /* len 0: absent, or kept (dst points at src's) */
        d[i] = len[i] ? memcpy(at, s[i], len[i]) : (char *)s[i];
        at += len[i];
    }
    dst->id = d[0];
    dst->user_id = d[1];
    dst->type = d[2];
    dst->ip = d[3];
    dst->location = d[4];
    dst->source = d[5];
    dst->closed_by = d[6];
    dst->note = d[7];
}

/* One allocation whatever the event holds: the handle with its strings
 * right after it, each measured once (the engine copies every event it
 * loads, so this is on the path of every operation that reads events; one
 * block instead of two also keeps those copies out of the allocator's
 * fragmented bins, a cache miss each). */
static int ev_dup_keeping(risk_event **out, const risk_event *event, unsigned keep,
                          void *(*alloc)(void *, size_t), void *ctx)
{
    size_t len[8], n = risk_event_strings_size(event, keep, len);
    risk_event *e = alloc ? alloc(ctx, sizeof *e + n) : risk_malloc(sizeof *e + n);
    if (e == NULL)
        return nomem("risk_event_dup");
    *e = *event;
    e->in_block = alloc != NULL;
    e->arena = n ? (char *)(e + 1) : NULL;
    e->arena_len = n;
    e->borrowed = (uint8_t)keep;
    e->stable = (uint8_t)keep;
    e->stable_of = keep ? event->stable_of : NULL;
    risk_event_pack_strings(e, event, len, (char *)(e + 1));
    *out = e;
    return RISK_OK;
}

int risk_event_dup(risk_event **out, const risk_event *event)
{
    CHECK_OUT(out);
    CHECK_NOT_NULL(event, "event");
    return ev_dup_keeping(out, event, 0, NULL, NULL);
}

/* The strings the view's store marks as kept (view->stable: id, user id,
 * interned type, location, source and closer for the memory store) are
 * pointed at; the others (ip and note, which a later version may
 * overwrite in place) are copied. */
int risk_event_dup_borrowing(risk_event **out, const risk_event *view,
                             void *(*alloc)(void *ctx, size_t n), void *ctx)
{
    return ev_dup_keeping(out, view, view->stable, alloc, ctx);
}

const char *risk_event_id(const risk_event *e) { return e ? e->id : NULL; }
const char *risk_event_user_id(const risk_event *e) { return e ? e->user_id : NULL; }
const char *risk_event_type(const risk_event *e) { return e ? e->type : NULL; }
risk_level risk_event_level(const risk_event *e) { return e ? (risk_level)e->level : RISK_LEVEL_NONE; }
int64_t risk_event_detected_at(const risk_event *e) { return e ? e->detected_at : RISK_TIME_NONE; }
risk_timing risk_event_timing(const risk_event *e) { return e ? (risk_timing)e->timing : RISK_TIMING_REALTIME; }
const char *risk_event_ip(const risk_event *e) { return e ? e->ip : NULL; }
const char *risk_event_location(const risk_event *e) { return e ? e->location : NULL; }
const char *risk_event_source(const risk_event *e) { return e ? e->source : NULL; }
risk_event_state risk_event_state_get(const risk_event *e) { return e ? (risk_event_state)e->state : RISK_EVENT_ACTIVE; }
risk_close_reason risk_event_close_reason(const risk_event *e) { return e ? (risk_close_reason)e->reason : RISK_CLOSE_NONE; }
int64_t risk_event_closed_at(const risk_event *e) { return e ? e->closed_at : RISK_TIME_NONE; }
const char *risk_event_closed_by(const risk_event *e) { return e ? e->closed_by : NULL; }
const char *risk_event_note(const risk_event *e) { return e ? e->note : NULL; }

int risk_event_set_timing(risk_event *event, risk_timing timing)
{
    CHECK_NOT_NULL(event, "event");
    CHECK(check_range("timing", (uint32_t)timing, RISK_TIMING_OFFLINE));
    event->timing = (uint32_t)timing;
    return RISK_OK;
}

int risk_event_set_ip(risk_event *event, const char *ip)
{
    CHECK_NOT_NULL(event, "event");
    CHECK(risk_check_text("ip", ip, RISK_INFO_MAX));
    return ev_replace_str(event, &event->ip, RISK_EV_BORROWED_IP, ip, "ip");
}

int risk_event_set_location(risk_event *event, const char *location)
{
    CHECK_NOT_NULL(event, "event");
    CHECK(risk_check_text("location", location, RISK_INFO_MAX));
    return ev_replace_str(event, &event->location, RISK_EV_BORROWED_LOCATION, location, "location");
}

int risk_event_set_source(risk_event *event, const char *source)
{
    CHECK_NOT_NULL(event, "event");
    CHECK(risk_check_text("source", source, RISK_INFO_MAX));
    return ev_replace_str(event, &event->source, RISK_EV_BORROWED_SOURCE, source, "source");
}

int risk_event_set_level(risk_event *event, risk_level level)
{
    CHECK_NOT_NULL(event, "event");
    CHECK(risk_check_event_level("level", (uint32_t)level));
    event->level = (uint32_t)level;
    return RISK_OK;
}

int risk_event_set_detected_at(risk_event *event, int64_t detected_at)
{
    CHECK_NOT_NULL(event, "event");
    CHECK(risk_check_time("detected_at", detected_at));
    event->detected_at = detected_at;
    return RISK_OK;
}

int risk_event_set_note(risk_event *event, const char *note)
{
    CHECK_NOT_NULL(event, "event");
    CHECK(risk_check_note("note", note));
    char *copy = NULL;
    if (note != NULL && (copy = risk_strdup(note)) == NULL)
        return nomem("note");
    risk_event_note_borrowed(event, NULL); /* frees an owned note */
    event->note = copy;
    return RISK_OK;
}

/* The closing fields move together: active ⇔ reason none ⇔ closed_at
 * NONE ⇔ closed_by NULL. A closed event has a reason, a time and an actor. */
int risk_event_set_closing(risk_event *event, risk_event_state state, risk_close_reason reason,
                           int64_t closed_at, const char *closed_by)
{
    CHECK_NOT_NULL(event, "event");
    CHECK(check_range("state", (uint32_t)state, RISK_EVENT_CLOSED));
    CHECK(check_range("reason", (uint32_t)reason, RISK_CLOSE_AGED));
    if (state == RISK_EVENT_ACTIVE) {
        if (reason != RISK_CLOSE_NONE)
            return risk_err(RISK_EINVAL, "reason: must be none for an active event");
        if (closed_at != RISK_TIME_NONE)
            return risk_err(RISK_EINVAL, "closed_at: must be RISK_TIME_NONE for an active event");
        if (closed_by != NULL)
            return risk_err(RISK_EINVAL, "closed_by: must be NULL for an active event");
    } else {
        if (reason == RISK_CLOSE_NONE)
            return risk_err(RISK_EINVAL, "reason: none for a closed event");
        CHECK(risk_check_time("closed_at", closed_at));
        CHECK(risk_check_id("closed_by", closed_by));
    }
    char *copy = NULL;
    if (closed_by != NULL && (copy = risk_strdup(closed_by)) == NULL)
        return nomem("closed_by");
    risk_event_close_borrowed(event, (uint32_t)state, (uint32_t)reason, closed_at, NULL);
    event->closed_by = copy;
    return RISK_OK;
}

void risk_event_close_borrowed(risk_event *e, uint32_t state, uint32_t reason, int64_t at,
                               const char *by)
{
    if (!(e->borrowed & RISK_EV_BORROWED_CLOSED_BY))
        ev_free_str(e, e->closed_by);
    e->closed_by = (char *)by;
    e->borrowed = (uint8_t)(by ? e->borrowed | RISK_EV_BORROWED_CLOSED_BY
                               : e->borrowed & ~RISK_EV_BORROWED_CLOSED_BY);
    e->stable = (uint8_t)(e->stable & ~RISK_EV_BORROWED_CLOSED_BY);
    e->state = state;
    e->reason = reason;
    e->closed_at = at;
}

void risk_event_note_borrowed(risk_event *e, const char *note)
{
    if (!(e->borrowed & RISK_EV_BORROWED_NOTE))
        ev_free_str(e, e->note);
    e->note = (char *)note;
    e->borrowed = (uint8_t)(note ? e->borrowed | RISK_EV_BORROWED_NOTE
                                 : e->borrowed & ~RISK_EV_BORROWED_NOTE);
    e->stable = (uint8_t)(e->stable & ~RISK_EV_BORROWED_NOTE);
}

/* ============================================================= policies */

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        risk_free(list[i]);
    risk_free(list);
}

void risk_policy_free(risk_policy *p)
{
    if (p == NULL)
        return;
    risk_free(p->name);
    free_list(p->include, p->n_include);
    free_list(p->exclude, p->n_exclude);
    risk_free(p);
}

int risk_policy_new(risk_policy **out, const char *name, risk_level threshold,
                    risk_control control)
{
    CHECK_OUT(out);
    CHECK(risk_check_id("name", name));
    CHECK(risk_check_event_level("threshold", (uint32_t)threshold));
    CHECK(check_range("control", (uint32_t)control, RISK_CONTROL_BLOCK));
    risk_policy *p = risk_calloc(1, sizeof *p);
    if (p == NULL)
        return nomem("risk_policy_new");
    if ((p->name = risk_strdup(name)) == NULL) {
        risk_free(p);
        return nomem("risk_policy_new");
    }
    p->mode = RISK_MODE_ON;
    p->threshold = (uint32_t)threshold;
    p->control = (uint32_t)control;
    *out = p;
    return RISK_OK;
}

/* Deep copy of a list; NULL result with n > 0 means out of memory. */
static char **dup_list(char *const *src, size_t n, int *ok)
{
    *ok = 1;
    if (n == 0)
        return NULL;
    char **l = risk_calloc(n, sizeof *l);
    if (l == NULL) {
        *ok = 0;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((l[i] = risk_strdup(src[i])) == NULL) {
            free_list(l, i);
            *ok = 0;
            return NULL;
        }
    }
    return l;
}

int risk_policy_dup(risk_policy **out, const risk_policy *policy)
{
    CHECK_OUT(out);
    CHECK_NOT_NULL(policy, "policy");
    risk_policy *p = risk_calloc(1, sizeof *p);
    if (p == NULL)
        return nomem("risk_policy_dup");
    int ok_in, ok_ex = 0;
    p->mode = policy->mode;
    p->threshold = policy->threshold;
    p->control = policy->control;
    p->name = risk_strdup(policy->name);
    p->include = dup_list(policy->include, policy->n_include, &ok_in);
    if (ok_in)
        p->n_include = policy->n_include;
    if (ok_in) {
        p->exclude = dup_list(policy->exclude, policy->n_exclude, &ok_ex);
        if (ok_ex)
            p->n_exclude = policy->n_exclude;
    }
    if (p->name == NULL || !ok_in || !ok_ex) {
        risk_policy_free(p);
        return nomem("risk_policy_dup");
    }
    *out = p;
    return RISK_OK;
}

const char *risk_policy_name(const risk_policy *p) { return p ? p->name : NULL; }
risk_policy_mode risk_policy_mode_get(const risk_policy *p) { return p ? (risk_policy_mode)p->mode : RISK_MODE_OFF; }
risk_level risk_policy_threshold(const risk_policy *p) { return p ? (risk_level)p->threshold : RISK_LEVEL_NONE; }
risk_control risk_policy_control(const risk_policy *p) { return p ? (risk_control)p->control : RISK_CONTROL_REQUIRE_PASSWORD_CHANGE; }
int risk_policy_includes_all(const risk_policy *p) { return p ? p->n_include == 0 : 0; }
size_t risk_policy_include_count(const risk_policy *p) { return p ? p->n_include : 0; }
size_t risk_policy_exclude_count(const risk_policy *p) { return p ? p->n_exclude : 0; }

const char *risk_policy_include_at(const risk_policy *p, size_t i)
{
    return p && i < p->n_include ? p->include[i] : NULL;
}

const char *risk_policy_exclude_at(const risk_policy *p, size_t i)
{
    return p && i < p->n_exclude ? p->exclude[i] : NULL;
}

/* Binary search in a sorted list: returns 1 if found; *pos is the index of
 * the match or of the insertion point. */
static int list_find(char *const *list, size_t n, const char *id, size_t *pos)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(list[mid], id);
        if (c == 0) {
            *pos = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

/* Empty include list = every user; exclusion wins over inclusion. */
int risk_policy_applies_to(const risk_policy *p, const char *user_id)
{
    size_t pos;
    if (p == NULL || user_id == NULL)
        return 0;
    if (p->n_include != 0 && !list_find(p->include, p->n_include, user_id, &pos))
        return 0;
    return !list_find(p->exclude, p->n_exclude, user_id, &pos);
}

int risk_policy_set_mode(risk_policy *policy, risk_policy_mode mode)
{
    CHECK_NOT_NULL(policy, "policy");
    CHECK(check_range("mode", (uint32_t)mode, RISK_MODE_REPORT_ONLY));
    policy->mode = (uint32_t)mode;
    return RISK_OK;
}

int risk_policy_set_threshold(risk_policy *policy, risk_level threshold)
{
    CHECK_NOT_NULL(policy, "policy");
    CHECK(risk_check_event_level("threshold", (uint32_t)threshold));
    policy->threshold = (uint32_t)threshold;
    return RISK_OK;
}

int risk_policy_set_control(risk_policy *policy, risk_control control)
{
    CHECK_NOT_NULL(policy, "policy");
    CHECK(check_range("control", (uint32_t)control, RISK_CONTROL_BLOCK));
    policy->control = (uint32_t)control;
    return RISK_OK;
}

/* Insert a copy of id in sorted order; a present id is a no-op. Both
 * allocations happen before the list is touched. */
static int list_add(char ***list, size_t *n, const char *id)
{
    size_t pos;
    if (list_find(*list, *n, id, &pos))
        return RISK_OK;
    if (*n >= RISK_POLICY_LIST_MAX) /* what no store could encode */
        return risk_err(RISK_EINVAL, "user_id: the list holds %u ids already, the most a "
                                     "policy's list can", RISK_POLICY_LIST_MAX);
    char *copy = risk_strdup(id);
    if (copy == NULL)
        return nomem("user_id");
    char **grown = risk_realloc(*list, (*n + 1) * sizeof *grown);
    if (grown == NULL) {
        risk_free(copy);
        return nomem("user_id");
    }
    memmove(grown + pos + 1, grown + pos, (*n - pos) * sizeof *grown);
    grown[pos] = copy;
    *list = grown;
    (*n)++;
    return RISK_OK;
}

int risk_policy_include_add(risk_policy *policy, const char *user_id)
{
    CHECK_NOT_NULL(policy, "policy");
    CHECK(risk_check_id("user_id", user_id));
    return list_add(&policy->include, &policy->n_include, user_id);
}

int risk_policy_exclude_add(risk_policy *policy, const char *user_id)
{
    CHECK_NOT_NULL(policy, "policy");
    CHECK(risk_check_id("user_id", user_id));
    return list_add(&policy->exclude, &policy->n_exclude, user_id);
}
