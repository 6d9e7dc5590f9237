/* The canonical, versioned byte encoding of every record (R-ST-3) and its
 * distrustful decoder (R-IV-2). docs/encoding.md is the format's reference.
 *
 * Each record kind is described once, by a table of fields in wire order;
 * one encoder and one decoder walk the tables. The format is a bijection on
 * what the decoder accepts (minimal varints, 0/1 presence bytes, exact enum
 * bytes, sorted unique lists), so decode∘encode is the identity on bytes:
 * any input that decodes re-encodes to exactly itself. The encoder runs the
 * same validation as the decoder, so the library never writes what it
 * could not read back. */
#include "internal.h"

#include <stddef.h>
#include <stdio.h>

/* Kind tags: the first byte of every encoding. */
enum { KIND_USER = 'U', KIND_EVENT = 'E', KIND_POLICY = 'P', KIND_HISTORY = 'H' };

/* Bound of include/exclude list lengths (also bounded by the input size). */
#define CODEC_LIST_MAX RISK_POLICY_LIST_MAX
#define CODEC_HASH_LEN 32
#define CODEC_MAX_FIELDS 20

/* Field types on the wire. */
enum ftype {
    F_STR,  /* varint length + bytes; opt: u8 presence 0/1 first */
    F_ENUM, /* u8 in [lo, hi]; uint32_t in the struct */
    F_BOOL, /* u8 0/1; uint8_t in the struct */
    F_TIME, /* varint t + 1; 0 = RISK_TIME_NONE (only when opt) */
    F_U32,  /* varint ≤ UINT32_MAX; uint32_t in the struct */
    F_U64,  /* varint; uint64_t in the struct */
    F_HASH, /* 32 raw bytes */
    F_LIST  /* varint count + that many ids, strictly ascending */
};

/* String kinds: which validation rule of record.c applies. */
enum skind { S_ID, S_TYPE, S_INFO, S_NOTE };
static const size_t str_max[] = {RISK_ID_MAX, RISK_TYPE_MAX, RISK_INFO_MAX, RISK_NOTE_MAX};

typedef struct field {
    uint8_t type;
    uint8_t opt;   /* F_STR, F_TIME: may be absent */
    uint8_t skind; /* F_STR */
    uint8_t lo, hi; /* F_ENUM range */
    const char *name;
    size_t off;   /* value's offset in the struct */
    size_t off_n; /* F_LIST: offset of the size_t count */
} field;

typedef struct record_desc {
    const char *name;
    uint8_t kind;
    size_t size;
    const field *fields;
    size_t n_fields;
    /* Cross-field rule: returns NULL or what is wrong; *at is the index of
     * the field whose offset the decoder reports. */
    const char *(*check)(const void *rec, size_t *at);
    void (*free)(void *rec);
} record_desc;

#define STR(T, f, k, o) {F_STR, o, k, 0, 0, #f, offsetof(struct T, f), 0}
#define ENUM(T, f, l, h) {F_ENUM, 0, 0, l, h, #f, offsetof(struct T, f), 0}
#define BOOL(T, f) {F_BOOL, 0, 0, 0, 0, #f, offsetof(struct T, f), 0}
#define TIME(T, f, o) {F_TIME, o, 0, 0, 0, #f, offsetof(struct T, f), 0}
#define U32(T, f) {F_U32, 0, 0, 0, 0, #f, offsetof(struct T, f), 0}
#define U64(T, f) {F_U64, 0, 0, 0, 0, #f, offsetof(struct T, f), 0}
#define HASH(T, f) {F_HASH, 0, 0, 0, 0, #f, offsetof(struct T, f), 0}
#define LIST(T, f, n) {F_LIST, 0, S_ID, 0, 0, #f, offsetof(struct T, f), offsetof(struct T, n)}

/* ---- the tables: wire order, documented in docs/encoding.md ---- */

static const field user_fields[] = {
    STR(risk_user, id, S_ID, 0),
    BOOL(risk_user, mfa_registered),
    BOOL(risk_user, deleted),
    BOOL(risk_user, must_change_password),
    BOOL(risk_user, reset_required),
    TIME(risk_user, mfa_registered_at, 1),
    TIME(risk_user, remediated_at, 1),
    ENUM(risk_user, level, RISK_LEVEL_NONE, RISK_LEVEL_HIGH),
    ENUM(risk_user, state, RISK_STATE_NONE, RISK_STATE_CONFIRMED_COMPROMISED),
    ENUM(risk_user, detail, RISK_DETAIL_NONE, RISK_DETAIL_AGED_OUT),
    TIME(risk_user, risk_updated_at, 1),
    TIME(risk_user, risk_since, 1),
    TIME(risk_user, next_change_at, 1),
    U32(risk_user, active_events),
    U64(risk_user, score),
    U64(risk_user, version),
    HASH(risk_user, chain_head),
};

enum { EV_STATE = 9 }; /* index of `state` in event_fields */
static const field event_fields[] = {
    STR(risk_event, id, S_ID, 0),
    STR(risk_event, user_id, S_ID, 0),
    STR(risk_event, type, S_TYPE, 0),
    ENUM(risk_event, level, RISK_LEVEL_LOW, RISK_LEVEL_HIGH),
    TIME(risk_event, detected_at, 0),
    ENUM(risk_event, timing, RISK_TIMING_REALTIME, RISK_TIMING_OFFLINE),
    STR(risk_event, ip, S_INFO, 1),
    STR(risk_event, location, S_INFO, 1),
    STR(risk_event, source, S_INFO, 1),
    ENUM(risk_event, state, RISK_EVENT_ACTIVE, RISK_EVENT_CLOSED),
    ENUM(risk_event, reason, RISK_CLOSE_NONE, RISK_CLOSE_AGED),
    TIME(risk_event, closed_at, 1),
    STR(risk_event, closed_by, S_ID, 1),
    STR(risk_event, note, S_NOTE, 1),
};

static const field policy_fields[] = {
    STR(risk_policy, name, S_ID, 0),
    ENUM(risk_policy, mode, RISK_MODE_OFF, RISK_MODE_REPORT_ONLY),
    ENUM(risk_policy, threshold, RISK_LEVEL_LOW, RISK_LEVEL_HIGH),
    ENUM(risk_policy, control, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_CONTROL_BLOCK),
    LIST(risk_policy, include, n_include),
    LIST(risk_policy, exclude, n_exclude),
};

/* The chain hash must stay last: the body (R-AU-1) is every field but it. */
static const field history_fields[] = {
    U64(risk_history, seq),
    TIME(risk_history, at, 0),
    STR(risk_history, actor, S_ID, 0),
    ENUM(risk_history, action, RISK_HISTORY_INGEST, RISK_HISTORY_POLICY_REMOVE),
    STR(risk_history, user_id, S_ID, 1),
    STR(risk_history, event_id, S_ID, 1),
    STR(risk_history, policy, S_ID, 1),
    ENUM(risk_history, level_before, RISK_LEVEL_NONE, RISK_LEVEL_HIGH),
    ENUM(risk_history, level_after, RISK_LEVEL_NONE, RISK_LEVEL_HIGH),
    ENUM(risk_history, state_before, RISK_STATE_NONE, RISK_STATE_CONFIRMED_COMPROMISED),
    ENUM(risk_history, state_after, RISK_STATE_NONE, RISK_STATE_CONFIRMED_COMPROMISED),
    U32(risk_history, changed),
    STR(risk_history, note, S_NOTE, 1),
    HASH(risk_history, chain),
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(NFIELDS(user_fields) <= CODEC_MAX_FIELDS, "user_fields");
_Static_assert(NFIELDS(event_fields) <= CODEC_MAX_FIELDS, "event_fields");
_Static_assert(NFIELDS(history_fields) <= CODEC_MAX_FIELDS, "history_fields");

/* An event is active with no closing, or closed with all of it (SPEC §3). */
static const char *event_check(const void *rec, size_t *at)
{
    const struct risk_event *e = rec;
    *at = EV_STATE;
    if (e->state == RISK_EVENT_ACTIVE) {
        if (e->reason != RISK_CLOSE_NONE)
            return "active event with a close reason";
        if (e->closed_at != RISK_TIME_NONE)
            return "active event with closed_at";
        if (e->closed_by != NULL)
            return "active event with closed_by";
    } else {
        if (e->reason == RISK_CLOSE_NONE)
            return "closed event without a close reason";
        if (e->closed_at == RISK_TIME_NONE)
            return "closed event without closed_at";
        if (e->closed_by == NULL)
            return "closed event without closed_by";
    }
    return NULL;
}

static void free_user(void *p) { risk_user_free(p); }
static void free_event(void *p) { risk_event_free(p); }
static void free_policy(void *p) { risk_policy_free(p); }
static void free_history(void *p) { risk_history_free(p); }

static const record_desc user_desc = {"user", KIND_USER, sizeof(struct risk_user), user_fields,
                                      NFIELDS(user_fields), NULL, free_user};
static const record_desc event_desc = {"event", KIND_EVENT, sizeof(struct risk_event),
                                       event_fields, NFIELDS(event_fields), event_check,
                                       free_event};
static const record_desc policy_desc = {"policy", KIND_POLICY, sizeof(struct risk_policy),
                                        policy_fields, NFIELDS(policy_fields), NULL,
                                        free_policy};
static const record_desc history_desc = {"history", KIND_HISTORY, sizeof(struct risk_history),
                                         history_fields, NFIELDS(history_fields), NULL,
                                         free_history};

/* ---- shared helpers ---- */

static int check_str(const char *what, int kind, const char *s)
{
    switch (kind) {
    case S_ID:
        return risk_check_id(what, s);
    case S_TYPE:
        return risk_check_type(what, s);
    case S_INFO:
        return risk_check_text(what, s, RISK_INFO_MAX);
    default:
        return risk_check_note(what, s);
    }
}

/* Re-issue the last error (set by a risk_check_*) under the record's name,
 * with the byte offset when decoding. The message is copied first: risk_err
 * writes the buffer risk_error_last() points into. */
static int rewrap(int code, const char *rec, size_t at, int with_offset)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s", risk_error_last());
    if (with_offset)
        return risk_err(code, "%s: byte %zu: %s", rec, at, msg);
    return risk_err(code, "%s: %s", rec, msg);
}

#define FIELD(rec, f, T) ((T *)((char *)(rec) + (f)->off))
#define CFIELD(rec, f, T) ((const T *)((const char *)(rec) + (f)->off))

/* ---- encoder ---- */

/* Counts every byte; copies only while the output fits, so one pass both
 * measures and writes. */
typedef struct writer {
    uint8_t *buf;
    size_t cap;
    size_t n;
    int trusted; /* the record came from the engine: strings already validated */
} writer;

static void put(writer *w, const void *p, size_t k)
{
    if (w->buf != NULL && w->n <= w->cap && k <= w->cap - w->n)
        memcpy(w->buf + w->n, p, k);
    w->n += k;
}

static void put_u8(writer *w, uint8_t v)
{
    put(w, &v, 1);
}

/* LEB128 into p (at most 10 bytes); returns the end. */
static uint8_t *fast_varint(uint8_t *p, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7F);
        v >>= 7;
        *p++ = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
    return p;
}

static void put_varint(writer *w, uint64_t v)
{
    uint8_t b[10];
    put(w, b, (size_t)(fast_varint(b, v) - b));
}

static void put_str(writer *w, const char *s)
{
    size_t n = strlen(s);
    put_varint(w, n);
    put(w, s, n);
}

static int enc_field(const record_desc *d, const field *f, const void *rec, writer *w)
{
    switch (f->type) {
    case F_STR: {
        const char *s = *CFIELD(rec, f, char *const);
        if (f->opt) {
            put_u8(w, s != NULL);
            if (s == NULL)
                return RISK_OK;
        }
        if (s == NULL || (!w->trusted && check_str(f->name, f->skind, s) != RISK_OK)) {
            if (s == NULL)
                risk_err(RISK_EINVAL, "%s: NULL", f->name);
            return rewrap(RISK_EINVAL, d->name, 0, 0);
        }
        put_str(w, s);
        return RISK_OK;
    }
    case F_ENUM: {
        uint32_t v = *CFIELD(rec, f, uint32_t);
        if (v < f->lo || v > f->hi)
            return risk_err(RISK_EINVAL, "%s: %s %u out of range [%u, %u]", d->name, f->name,
                            (unsigned)v, (unsigned)f->lo, (unsigned)f->hi);
        put_u8(w, (uint8_t)v);
        return RISK_OK;
    }
    case F_BOOL: {
        uint8_t v = *CFIELD(rec, f, uint8_t);
        if (v > 1)
            return risk_err(RISK_EINVAL, "%s: %s %u is not 0 or 1", d->name, f->name,
                            (unsigned)v);
        put_u8(w, v);
        return RISK_OK;
    }
    case F_TIME: {
        int64_t t = *CFIELD(rec, f, int64_t);
        int rc = f->opt ? risk_check_time_opt(f->name, t) : risk_check_time(f->name, t);
        if (rc != RISK_OK)
            return rewrap(RISK_EINVAL, d->name, 0, 0);
        put_varint(w, t == RISK_TIME_NONE ? 0 : (uint64_t)t + 1);
        return RISK_OK;
    }
    case F_U32:
        put_varint(w, *CFIELD(rec, f, uint32_t));
        return RISK_OK;
    case F_U64:
        put_varint(w, *CFIELD(rec, f, uint64_t));
        return RISK_OK;
    case F_HASH:
        put(w, CFIELD(rec, f, uint8_t), CODEC_HASH_LEN);
        return RISK_OK;
    default: { /* F_LIST */
        char *const *v = *(char **const *)((const char *)rec + f->off);
        size_t n = *(const size_t *)((const char *)rec + f->off_n);
        if (n > CODEC_LIST_MAX)
            return risk_err(RISK_EINVAL, "%s: %s has %zu ids, at most %u", d->name, f->name, n,
                            CODEC_LIST_MAX);
        if (n > 0 && v == NULL)
            return risk_err(RISK_EINVAL, "%s: %s: NULL list", d->name, f->name);
        put_varint(w, n);
        for (size_t i = 0; i < n; i++) {
            char what[32];
            snprintf(what, sizeof what, "%s[%zu]", f->name, i);
            if (check_str(what, S_ID, v[i]) != RISK_OK)
                return rewrap(RISK_EINVAL, d->name, 0, 0);
            if (i > 0 && strcmp(v[i - 1], v[i]) >= 0)
                return risk_err(RISK_EINVAL, "%s: %s is not sorted and unique", d->name, what);
            put_str(w, v[i]);
        }
        return RISK_OK;
    }
    }
}

static int encode_as(const record_desc *d, size_t n_fields, uint8_t *buf, size_t cap,
                     size_t *len, const void *rec, int trusted)
{
    if (len == NULL)
        return risk_err(RISK_EINVAL, "len: NULL");
    if (rec == NULL) /* named as the encoder's parameter is */
        return risk_err(RISK_EINVAL, "%s: NULL", d->kind == KIND_HISTORY ? "item" : d->name);
    writer w = {buf, cap, 0, trusted};
    put_u8(&w, d->kind);
    put_u8(&w, RISK_CODEC_VERSION);
    for (size_t i = 0; i < n_fields; i++) {
        int rc = enc_field(d, &d->fields[i], rec, &w);
        if (rc != RISK_OK)
            return rc;
    }
    size_t at;
    const char *why = d->check ? d->check(rec, &at) : NULL;
    if (why != NULL)
        return risk_err(RISK_EINVAL, "%s: %s", d->name, why);
    *len = w.n;
    if (buf == NULL && cap == 0)
        return RISK_OK; /* the measuring call */
    if (buf == NULL || w.n > cap)
        return risk_err(RISK_ERANGE, "cap: %zu bytes%s, %s encoding needs %zu", cap,
                        buf == NULL ? " at NULL" : "", d->name, w.n);
    return RISK_OK;
}

static int encode(const record_desc *d, size_t n_fields, uint8_t *buf, size_t cap, size_t *len,
                  const void *rec)
{
    return encode_as(d, n_fields, buf, cap, len, rec, 0);
}

int risk_user_encode(uint8_t *buf, size_t cap, size_t *len, const risk_user *user)
{
    return encode(&user_desc, user_desc.n_fields, buf, cap, len, user);
}

int risk_event_encode(uint8_t *buf, size_t cap, size_t *len, const risk_event *event)
{
    return encode(&event_desc, event_desc.n_fields, buf, cap, len, event);
}

/* Direct writers (room checked beforehand): the trusted encoders below
 * and risk_history_encode_body. */
static uint8_t *fast_str(uint8_t *p, const char *s, size_t n)
{
    p = fast_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *fast_opt(uint8_t *p, const char *s, size_t n)
{
    *p++ = s != NULL;
    return s ? fast_str(p, s, n) : p;
}

static uint8_t *fast_time(uint8_t *p, int64_t t)
{
    return fast_varint(p, t == RISK_TIME_NONE ? 0 : (uint64_t)t + 1);
}

/* A time the table-driven encoder accepts (opt: also RISK_TIME_NONE). */
static int time_ok(int64_t t, int opt)
{
    return (opt && t == RISK_TIME_NONE) || (t >= 0 && t < RISK_TIME_MAX);
}

/* The journal encodes every user and event it commits (and compaction
 * every one it holds). Handles hold validated strings, so they are not
 * checked again; when every other value is plainly in range and the
 * buffer has room for the worst case, the fields are written directly, in
 * user_fields' and event_fields' order (test_codec proves the bytes equal
 * the table-driven encoder's on random records); anything else takes the
 * table-driven path, which also reports and measures. */
int risk_user_encode_trusted(uint8_t *buf, size_t cap, size_t *len, const risk_user *user)
{
    const risk_user *u = user;
    if (buf != NULL && len != NULL && u != NULL && u->id != NULL && u->mfa_registered <= 1 &&
        u->deleted <= 1 && u->must_change_password <= 1 && u->reset_required <= 1 &&
        time_ok(u->mfa_registered_at, 1) && time_ok(u->remediated_at, 1) &&
        u->level <= RISK_LEVEL_HIGH && u->state <= RISK_STATE_CONFIRMED_COMPROMISED &&
        u->detail <= RISK_DETAIL_AGED_OUT && time_ok(u->risk_updated_at, 1) &&
        time_ok(u->risk_since, 1) && time_ok(u->next_change_at, 1)) {
        size_t ni = strlen(u->id);
        /* 2 header bytes, the id and its length varint, 4 flags, 3 enums,
         * 5 times and 3 integers of at most 10 bytes each, the hash */
        size_t worst = 2 + 10 + ni + 4 + 3 + 80 + CODEC_HASH_LEN;
        if (worst <= cap && worst > ni) { /* no overflow */
            uint8_t *p = buf;
            *p++ = KIND_USER;
            *p++ = RISK_CODEC_VERSION;
            p = fast_str(p, u->id, ni);
            *p++ = u->mfa_registered;
            *p++ = u->deleted;
            *p++ = u->must_change_password;
            *p++ = u->reset_required;
            p = fast_time(p, u->mfa_registered_at);
            p = fast_time(p, u->remediated_at);
            *p++ = (uint8_t)u->level;
            *p++ = (uint8_t)u->state;
            *p++ = (uint8_t)u->detail;
            p = fast_time(p, u->risk_updated_at);
            p = fast_time(p, u->risk_since);
            p = fast_time(p, u->next_change_at);
            p = fast_varint(p, u->active_events);
            p = fast_varint(p, u->score);
            p = fast_varint(p, u->version);
            memcpy(p, u->chain_head, CODEC_HASH_LEN);
            *len = (size_t)(p + CODEC_HASH_LEN - buf);
            return RISK_OK;
        }
    }
    return encode_as(&user_desc, user_desc.n_fields, buf, cap, len, user, 1);
}

int risk_event_encode_trusted(uint8_t *buf, size_t cap, size_t *len, const risk_event *event)
{
    const risk_event *e = event;
    size_t at;
    if (buf != NULL && len != NULL && e != NULL && e->id != NULL && e->user_id != NULL &&
        e->type != NULL && e->level >= RISK_LEVEL_LOW && e->level <= RISK_LEVEL_HIGH &&
        time_ok(e->detected_at, 0) && e->timing <= RISK_TIMING_OFFLINE &&
        e->state <= RISK_EVENT_CLOSED && e->reason <= RISK_CLOSE_AGED &&
        time_ok(e->closed_at, 1) && event_check(e, &at) == NULL) {
        size_t n[8] = {strlen(e->id),
                       strlen(e->user_id),
                       strlen(e->type),
                       e->ip ? strlen(e->ip) : 0,
                       e->location ? strlen(e->location) : 0,
                       e->source ? strlen(e->source) : 0,
                       e->closed_by ? strlen(e->closed_by) : 0,
                       e->note ? strlen(e->note) : 0};
        size_t strs = 0;
        for (int i = 0; i < 8; i++)
            strs += n[i];
        /* 2 header bytes, 8 strings with a length varint and 5 with a
         * presence flag, 4 enums, 2 times of at most 10 bytes */
        size_t worst = 2 + 8 * 10 + 5 + 4 + 20 + strs;
        if (worst <= cap && worst > strs) { /* no overflow */
            uint8_t *p = buf;
            *p++ = KIND_EVENT;
            *p++ = RISK_CODEC_VERSION;
            p = fast_str(p, e->id, n[0]);
            p = fast_str(p, e->user_id, n[1]);
            p = fast_str(p, e->type, n[2]);
            *p++ = (uint8_t)e->level;
            p = fast_time(p, e->detected_at);
            *p++ = (uint8_t)e->timing;
            p = fast_opt(p, e->ip, n[3]);
            p = fast_opt(p, e->location, n[4]);
            p = fast_opt(p, e->source, n[5]);
            *p++ = (uint8_t)e->state;
            *p++ = (uint8_t)e->reason;
            p = fast_time(p, e->closed_at);
            p = fast_opt(p, e->closed_by, n[6]);
            p = fast_opt(p, e->note, n[7]);
            *len = (size_t)(p - buf);
            return RISK_OK;
        }
    }
    return encode_as(&event_desc, event_desc.n_fields, buf, cap, len, event, 1);
}

int risk_policy_encode(uint8_t *buf, size_t cap, size_t *len, const risk_policy *policy)
{
    return encode(&policy_desc, policy_desc.n_fields, buf, cap, len, policy);
}

int risk_history_encode(uint8_t *buf, size_t cap, size_t *len, const risk_history *item)
{
    return encode(&history_desc, history_desc.n_fields, buf, cap, len, item);
}

/* The chain hash's input, on every write's hot path: the item was built by
 * the engine from validated values, so its strings are not checked again.
 * When the item is plainly in range and the buffer has room for the worst
 * case, the body is written directly, field by field in history_fields'
 * order (test_codec proves the bytes equal the table-driven encoder's);
 * anything else takes the table-driven path, which also measures. */
int risk_history_encode_body(uint8_t *buf, size_t cap, size_t *len, const risk_history *item)
{
    if (buf != NULL && len != NULL && item != NULL && item->actor != NULL &&
        item->at >= 0 && item->at < RISK_TIME_MAX && item->action <= RISK_HISTORY_POLICY_REMOVE &&
        item->level_before <= RISK_LEVEL_HIGH && item->level_after <= RISK_LEVEL_HIGH &&
        item->state_before <= RISK_STATE_CONFIRMED_COMPROMISED &&
        item->state_after <= RISK_STATE_CONFIRMED_COMPROMISED) {
        size_t na = strlen(item->actor), nu = item->user_id ? strlen(item->user_id) : 0,
               ne = item->event_id ? strlen(item->event_id) : 0,
               np = item->policy ? strlen(item->policy) : 0,
               nn = item->note ? strlen(item->note) : 0;
        /* 2 header bytes, 3 varints of at most 10, 5 strings with a flag
         * and a length varint each, 5 single bytes */
        size_t worst = 2 + 30 + 5 * 11 + 5 + na + nu + ne + np + nn;
        if (worst <= cap && worst > na + nu + ne + np + nn) { /* no overflow */
            uint8_t *p = buf;
            *p++ = KIND_HISTORY;
            *p++ = RISK_CODEC_VERSION;
            p = fast_varint(p, item->seq);
            p = fast_varint(p, (uint64_t)item->at + 1);
            p = fast_str(p, item->actor, na);
            *p++ = (uint8_t)item->action;
            p = fast_opt(p, item->user_id, nu);
            p = fast_opt(p, item->event_id, ne);
            p = fast_opt(p, item->policy, np);
            *p++ = (uint8_t)item->level_before;
            *p++ = (uint8_t)item->level_after;
            *p++ = (uint8_t)item->state_before;
            *p++ = (uint8_t)item->state_after;
            p = fast_varint(p, item->changed);
            p = fast_opt(p, item->note, nn);
            *len = (size_t)(p - buf);
            return RISK_OK;
        }
    }
    return encode_as(&history_desc, history_desc.n_fields - 1, buf, cap, len, item, 1);
}

/* ---- decoder ---- */

typedef struct reader {
    const uint8_t *p;
    size_t len, off;
    const record_desc *d;
} reader;

static int truncated(reader *r, const char *what)
{
    return risk_err(RISK_ECORRUPT, "%s: truncated at byte %zu (reading %s)", r->d->name, r->len,
                    what);
}

static int corrupt(reader *r, size_t at, const char *what, const char *why)
{
    return risk_err(RISK_ECORRUPT, "%s: byte %zu: %s: %s", r->d->name, at, what, why);
}

static int get_u8(reader *r, const char *what, uint8_t *v)
{
    if (r->off >= r->len)
        return truncated(r, what);
    *v = r->p[r->off++];
    return RISK_OK;
}

/* LEB128, minimal form only (no trailing 0x00 group), at most 64 bits. */
static int get_varint(reader *r, const char *what, uint64_t *out)
{
    size_t start = r->off;
    uint64_t v = 0;
    for (unsigned k = 0;; k++) {
        uint8_t c = 0;
        int rc = get_u8(r, what, &c);
        if (rc != RISK_OK)
            return rc;
        if (k == 9 && c > 1)
            return corrupt(r, start, what, "varint over 64 bits");
        v |= (uint64_t)(c & 0x7F) << (7 * k);
        if (!(c & 0x80)) {
            if (k > 0 && c == 0)
                return corrupt(r, start, what, "non-minimal varint");
            *out = v;
            return RISK_OK;
        }
    }
}

static int nomem(reader *r)
{
    return risk_err(RISK_ENOMEM, "%s: out of memory while decoding", r->d->name);
}

/* A string of kind k: bounded, no NUL, validated like the setters. */
static int get_str(reader *r, const char *what, int kind, char **out)
{
    size_t start = r->off;
    uint64_t n = 0;
    int rc = get_varint(r, what, &n);
    if (rc != RISK_OK)
        return rc;
    if (n > str_max[kind]) {
        char why[64];
        snprintf(why, sizeof why, "length %llu over the limit %zu", (unsigned long long)n,
                 str_max[kind]);
        return corrupt(r, start, what, why);
    }
    if (n > r->len - r->off)
        return truncated(r, what);
    const uint8_t *s = r->p + r->off;
    const uint8_t *nul = memchr(s, 0, (size_t)n);
    if (nul != NULL)
        return corrupt(r, (size_t)(nul - r->p), what, "NUL byte");
    char *c = risk_malloc((size_t)n + 1);
    if (c == NULL)
        return nomem(r);
    memcpy(c, s, (size_t)n);
    c[n] = '\0';
    r->off += (size_t)n;
    if (check_str(what, kind, c) != RISK_OK) {
        risk_free(c);
        return rewrap(RISK_ECORRUPT, r->d->name, start, 1);
    }
    *out = c;
    return RISK_OK;
}

static int dec_list(reader *r, const field *f, void *rec)
{
    size_t start = r->off;
    uint64_t n = 0;
    int rc = get_varint(r, f->name, &n);
    if (rc != RISK_OK)
        return rc;
    if (n > CODEC_LIST_MAX)
        return corrupt(r, start, f->name, "too many ids");
    /* Each id takes at least 2 bytes: don't allocate for ids that can't be there. */
    if (n > (r->len - r->off) / 2)
        return truncated(r, f->name);
    if (n == 0)
        return RISK_OK;
    char **v = risk_calloc((size_t)n, sizeof(char *));
    if (v == NULL)
        return nomem(r);
    size_t *count = (size_t *)((char *)rec + f->off_n);
    *FIELD(rec, f, char **) = v;
    *count = 0; /* grows as ids arrive, so a failure frees exactly those */
    for (size_t i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "%s[%zu]", f->name, i);
        size_t at = r->off;
        if ((rc = get_str(r, what, S_ID, &v[i])) != RISK_OK)
            return rc;
        (*count)++;
        if (i > 0 && strcmp(v[i - 1], v[i]) >= 0)
            return corrupt(r, at, what, "not sorted and unique");
    }
    return RISK_OK;
}

static int dec_field(reader *r, const field *f, void *rec)
{
    size_t start = r->off;
    uint8_t b = 0;
    uint64_t v = 0;
    int rc;
    switch (f->type) {
    case F_STR:
        if (f->opt) {
            if ((rc = get_u8(r, f->name, &b)) != RISK_OK)
                return rc;
            if (b > 1)
                return corrupt(r, start, f->name, "presence byte not 0 or 1");
            if (b == 0)
                return RISK_OK;
        }
        return get_str(r, f->name, f->skind, FIELD(rec, f, char *));
    case F_ENUM:
        if ((rc = get_u8(r, f->name, &b)) != RISK_OK)
            return rc;
        if (b < f->lo || b > f->hi)
            return corrupt(r, start, f->name, "value out of range");
        *FIELD(rec, f, uint32_t) = b;
        return RISK_OK;
    case F_BOOL:
        if ((rc = get_u8(r, f->name, &b)) != RISK_OK)
            return rc;
        if (b > 1)
            return corrupt(r, start, f->name, "flag not 0 or 1");
        *FIELD(rec, f, uint8_t) = b;
        return RISK_OK;
    case F_TIME:
        if ((rc = get_varint(r, f->name, &v)) != RISK_OK)
            return rc;
        if (v == 0 && !f->opt)
            return corrupt(r, start, f->name, "required time absent");
        if (v > (uint64_t)RISK_TIME_MAX)
            return corrupt(r, start, f->name, "time out of range [0, 2^53)");
        *FIELD(rec, f, int64_t) = v == 0 ? RISK_TIME_NONE : (int64_t)(v - 1);
        return RISK_OK;
    case F_U32:
        if ((rc = get_varint(r, f->name, &v)) != RISK_OK)
            return rc;
        if (v > UINT32_MAX)
            return corrupt(r, start, f->name, "value over 32 bits");
        *FIELD(rec, f, uint32_t) = (uint32_t)v;
        return RISK_OK;
    case F_U64:
        if ((rc = get_varint(r, f->name, &v)) != RISK_OK)
            return rc;
        *FIELD(rec, f, uint64_t) = v;
        return RISK_OK;
    case F_HASH:
        if (r->len - r->off < CODEC_HASH_LEN)
            return truncated(r, f->name);
        memcpy(FIELD(rec, f, uint8_t), r->p + r->off, CODEC_HASH_LEN);
        r->off += CODEC_HASH_LEN;
        return RISK_OK;
    default:
        return dec_list(r, f, rec);
    }
}

static int decode(const record_desc *d, void **out, const uint8_t *buf, size_t len)
{
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    if (buf == NULL && len != 0)
        return risk_err(RISK_EINVAL, "buf: NULL with len %zu", len);
    reader r = {buf, len, 0, d};
    uint8_t b = 0;
    int rc;
    if ((rc = get_u8(&r, "kind tag", &b)) != RISK_OK)
        return rc;
    if (b != d->kind)
        return risk_err(RISK_ECORRUPT, "%s: byte 0: kind tag 0x%02x, expected 0x%02x", d->name,
                        b, d->kind);
    if ((rc = get_u8(&r, "version", &b)) != RISK_OK)
        return rc;
    if (b != RISK_CODEC_VERSION)
        return risk_err(RISK_ECORRUPT, "%s: byte 1: version %u, expected %u", d->name, b,
                        (unsigned)RISK_CODEC_VERSION);
    void *rec = risk_calloc(1, d->size);
    if (rec == NULL)
        return nomem(&r);
    size_t at[CODEC_MAX_FIELDS];
    for (size_t i = 0; i < d->n_fields; i++) {
        at[i] = r.off;
        if ((rc = dec_field(&r, &d->fields[i], rec)) != RISK_OK) {
            d->free(rec);
            return rc;
        }
    }
    if (r.off != len) {
        d->free(rec);
        return risk_err(RISK_ECORRUPT, "%s: byte %zu: %zu trailing bytes", d->name, r.off,
                        len - r.off);
    }
    size_t bad;
    const char *why = d->check ? d->check(rec, &bad) : NULL;
    if (why != NULL) {
        d->free(rec);
        return risk_err(RISK_ECORRUPT, "%s: byte %zu: %s", d->name, at[bad], why);
    }
    *out = rec;
    return RISK_OK;
}

int risk_user_decode(risk_user **out, const uint8_t *buf, size_t len)
{
    void *rec = NULL;
    int rc = decode(&user_desc, out ? &rec : NULL, buf, len);
    if (rc == RISK_OK)
        *out = rec;
    return rc;
}

int risk_event_decode(risk_event **out, const uint8_t *buf, size_t len)
{
    void *rec = NULL;
    int rc = decode(&event_desc, out ? &rec : NULL, buf, len);
    if (rc == RISK_OK)
        *out = rec;
    return rc;
}

int risk_policy_decode(risk_policy **out, const uint8_t *buf, size_t len)
{
    void *rec = NULL;
    int rc = decode(&policy_desc, out ? &rec : NULL, buf, len);
    if (rc == RISK_OK)
        *out = rec;
    return rc;
}

int risk_history_decode(risk_history **out, const uint8_t *buf, size_t len)
{
    void *rec = NULL;
    int rc = decode(&history_desc, out ? &rec : NULL, buf, len);
    if (rc == RISK_OK)
        *out = rec;
    return rc;
}
