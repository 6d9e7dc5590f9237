/* store_dump.h — header-only test helper: a canonical byte dump of what a
 * store holds, read through its public callbacks only (R-ST-1, R-ST-3), so
 * a test can prove "the store holds exactly what it held before" (R-CC-2,
 * R-IV-3) by comparing two dumps byte for byte.
 *
 *   int store_dump(const risk_store *s, uint8_t **buf, size_t *len);
 *
 * Content, in this order, each record as [tag u8][length u32 LE][bytes],
 * the bytes being the public canonical encoding (risk_*_encode):
 *   'U' every user from list_users(RISK_LEVEL_NONE), sorted by id, each
 *       followed by 'E' its events (user_events in a begin/rollback txn),
 *       sorted by id;
 *   'P' every policy (list_policies in a begin/rollback txn), by name;
 *   'H' the whole history from read_history(NULL, 0), in seq order.
 * The dump starts with the 4 bytes "SD1\n". A section whose optional
 * callback is NULL is written as one empty record of its tag (no real
 * encoding is empty), so dumps of the same store still compare.
 * Not covered: meta values (no public way to enumerate them), events of
 * users the store does not list.
 *
 * Memory of the dump comes from malloc (free(*buf)); the store itself
 * allocates through the library allocator, so dump with allocation-failure
 * injection switched off. Returns RISK_OK or the first error.
 */
#ifndef LIBRISK_TESTS_STORE_DUMP_H
#define LIBRISK_TESTS_STORE_DUMP_H

#include <librisk.h>
#include <librisk/store.h>
#include <stdlib.h>
#include <string.h>

typedef struct sd_rec_ {
    char *key;    /* sort key (id or name) */
    uint8_t *bytes;
    size_t len;
} sd_rec_;

typedef struct sd_list_ {
    sd_rec_ *v;
    size_t n, cap;
    int err;
} sd_list_;

typedef struct sd_out_ {
    uint8_t *b;
    size_t n, cap;
    int err;
} sd_out_;

static void sd_put_(sd_out_ *o, const void *p, size_t n)
{
    if (o->err)
        return;
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + n)
            cap *= 2;
        uint8_t *b = realloc(o->b, cap);
        if (b == NULL) {
            o->err = RISK_ENOMEM;
            return;
        }
        o->b = b;
        o->cap = cap;
    }
    if (n)
        memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void sd_record_(sd_out_ *o, char tag, const uint8_t *bytes, size_t len)
{
    uint8_t h[5] = {(uint8_t)tag, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 24)};
    sd_put_(o, h, sizeof h);
    sd_put_(o, bytes, len);
}

/* Encode with the measuring call first, then into an exact buffer. */
#define SD_ENCODE_(fn, obj, outp, lenp)                                   \
    do {                                                                  \
        size_t need_ = 0;                                                 \
        int rc_ = fn(NULL, 0, &need_, obj);                               \
        if (rc_ != RISK_OK && rc_ != RISK_ERANGE)                         \
            return rc_;                                                   \
        *(outp) = malloc(need_ ? need_ : 1);                              \
        if (*(outp) == NULL)                                              \
            return RISK_ENOMEM;                                           \
        if ((rc_ = fn(*(outp), need_, lenp, obj)) != RISK_OK) {           \
            free(*(outp));                                                \
            return rc_;                                                   \
        }                                                                 \
    } while (0)

static int sd_add_(sd_list_ *l, const char *key, uint8_t *bytes, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        sd_rec_ *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            free(bytes);
            return RISK_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    size_t kl = strlen(key);
    char *k = malloc(kl + 1);
    if (k == NULL) {
        free(bytes);
        return RISK_ENOMEM;
    }
    memcpy(k, key, kl + 1);
    l->v[l->n].key = k;
    l->v[l->n].bytes = bytes;
    l->v[l->n].len = len;
    l->n++;
    return RISK_OK;
}

static int sd_user_enc_(const risk_user *u, sd_list_ *l)
{
    uint8_t *b;
    size_t n = 0;
    SD_ENCODE_(risk_user_encode, u, &b, &n);
    return sd_add_(l, risk_user_id(u), b, n);
}
static int sd_user_cb_(const risk_user *u, void *arg)
{
    sd_list_ *l = arg;
    return (l->err = sd_user_enc_(u, l));
}

static int sd_event_enc_(const risk_event *e, sd_list_ *l)
{
    uint8_t *b;
    size_t n = 0;
    SD_ENCODE_(risk_event_encode, e, &b, &n);
    return sd_add_(l, risk_event_id(e), b, n);
}
static int sd_event_cb_(const risk_event *e, void *arg)
{
    sd_list_ *l = arg;
    return (l->err = sd_event_enc_(e, l));
}

static int sd_policy_enc_(const risk_policy *p, sd_list_ *l)
{
    uint8_t *b;
    size_t n = 0;
    SD_ENCODE_(risk_policy_encode, p, &b, &n);
    return sd_add_(l, risk_policy_name(p), b, n);
}
static int sd_policy_cb_(const risk_policy *p, void *arg)
{
    sd_list_ *l = arg;
    return (l->err = sd_policy_enc_(p, l));
}

static int sd_history_enc_(const risk_history *h, sd_out_ *o)
{
    uint8_t *b;
    size_t n = 0;
    SD_ENCODE_(risk_history_encode, h, &b, &n);
    sd_record_(o, 'H', b, n);
    free(b);
    return o->err;
}
static int sd_history_cb_(const risk_history *h, void *arg)
{
    sd_out_ *o = arg;
    int rc = sd_history_enc_(h, o);
    if (rc != RISK_OK)
        o->err = rc;
    return rc;
}

static int sd_cmp_(const void *a, const void *b)
{
    return strcmp(((const sd_rec_ *)a)->key, ((const sd_rec_ *)b)->key);
}

static void sd_list_free_(sd_list_ *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].bytes);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Run a listing callback, then sort what it collected. */
static int sd_finish_(int rc, sd_list_ *l)
{
    if (rc == RISK_OK && l->err != RISK_OK)
        rc = l->err;
    if (rc == RISK_OK && l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, sd_cmp_);
    return rc;
}

static int sd_events_of_(const risk_store *s, const char *user_id, sd_out_ *o)
{
    sd_list_ ev = {0};
    void *txn = NULL;
    int rc = s->begin(s->ctx, user_id, &txn);
    if (rc != RISK_OK)
        return rc;
    rc = sd_finish_(s->user_events(s->ctx, txn, user_id, sd_event_cb_, &ev), &ev);
    s->rollback(s->ctx, txn);
    for (size_t i = 0; rc == RISK_OK && i < ev.n; i++)
        sd_record_(o, 'E', ev.v[i].bytes, ev.v[i].len);
    sd_list_free_(&ev);
    return rc;
}

static int store_dump(const risk_store *s, uint8_t **buf, size_t *len)
{
    sd_out_ o = {0};
    sd_list_ l = {0};
    void *txn = NULL;
    int rc = RISK_OK;
    if (s == NULL || buf == NULL || len == NULL)
        return RISK_EINVAL;
    sd_put_(&o, "SD1\n", 4);
    /* users, each followed by its events */
    if (s->list_users == NULL) {
        sd_record_(&o, 'U', NULL, 0);
    } else {
        rc = sd_finish_(s->list_users(s->ctx, RISK_LEVEL_NONE, sd_user_cb_, &l), &l);
        for (size_t i = 0; rc == RISK_OK && i < l.n; i++) {
            sd_record_(&o, 'U', l.v[i].bytes, l.v[i].len);
            rc = sd_events_of_(s, l.v[i].key, &o);
        }
        sd_list_free_(&l);
    }
    /* policies */
    if (rc == RISK_OK && (rc = s->begin(s->ctx, NULL, &txn)) == RISK_OK) {
        rc = sd_finish_(s->list_policies(s->ctx, txn, sd_policy_cb_, &l), &l);
        s->rollback(s->ctx, txn);
        for (size_t i = 0; rc == RISK_OK && i < l.n; i++)
            sd_record_(&o, 'P', l.v[i].bytes, l.v[i].len);
        sd_list_free_(&l);
    }
    /* history */
    if (rc == RISK_OK) {
        if (s->read_history == NULL)
            sd_record_(&o, 'H', NULL, 0);
        else
            rc = s->read_history(s->ctx, NULL, 0, sd_history_cb_, &o);
    }
    if (rc == RISK_OK)
        rc = o.err;
    if (rc != RISK_OK) {
        free(o.b);
        return rc;
    }
    *buf = o.b;
    *len = o.n;
    return RISK_OK;
}

#endif /* LIBRISK_TESTS_STORE_DUMP_H */
