/* Decision receipts (R-RC-1): a sign-in verdict, the events that counted,
 * bound by HMAC-SHA-256 under the host's key.
 *
 * The receipt is text, one `key=value` per line, so a human can read it
 * and any language can check it:
 *
 *   librisk-receipt 1
 *   user_id=alice
 *   at=1764000000000
 *   decision=block
 *   reason=risk_level
 *   level=high
 *   policy=block-high          (empty when no policy decided)
 *   event=e1                   (one line per counted event, by detected_at)
 *   mac=<64 hex digits>        HMAC-SHA-256 of every byte before this line
 *
 * Values never contain a newline (ids and names exclude control
 * characters), so the layout is unambiguous. */
#include "engine.h"

#include <inttypes.h>
#include <stdio.h>

#define RECEIPT_MAGIC "librisk-receipt 1\n"

int risk_verdict_want_receipt(risk_verdict *v, int want)
{
    if (!v)
        return risk_err(RISK_EINVAL, "v: NULL");
    if (want != 0 && want != 1)
        return risk_err(RISK_EINVAL, "want: must be 0 or 1");
    v->want_receipt = want;
    return RISK_OK;
}

const char *risk_verdict_receipt(const risk_verdict *v)
{
    return v ? v->receipt : NULL;
}

struct buf {
    char *p;
    size_t n, cap;
    int rc;
};

static void put(struct buf *b, const char *s)
{
    size_t len = strlen(s);
    if (b->rc)
        return;
    if (b->n + len + 1 > b->cap) {
        size_t ncap = (b->cap ? b->cap * 2 : 512) + len;
        char *np = risk_realloc(b->p, ncap);
        if (!np) {
            b->rc = risk_err(RISK_ENOMEM, "receipt: out of memory");
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, len + 1);
    b->n += len;
}

static void put_kv(struct buf *b, const char *k, const char *v)
{
    put(b, k);
    put(b, "=");
    put(b, v ? v : "");
    put(b, "\n");
}

static void hex(char out[65], const uint8_t mac[32])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[mac[i] >> 4];
        out[2 * i + 1] = digits[mac[i] & 15];
    }
    out[64] = '\0';
}

/* The user's version now (0: not stored), in txn. */
static int user_version(risk_engine *e, void *txn, const char *user_id, uint64_t *version)
{
    risk_user *u = NULL;
    int rc = e->st.get_user(e->st.ctx, txn, user_id, &u);
    *version = rc == RISK_OK ? u->version : 0;
    risk_user_free(u);
    return rc == RISK_ENOTFOUND ? RISK_OK : rc;
}

int risk_engine_make_receipt(risk_engine *e, risk_verdict *v, uint64_t version)
{
    return risk_engine_make_receipt_as(e, v, version, 0);
}

int risk_engine_make_receipt_as(risk_engine *e, risk_verdict *v, uint64_t version,
                                int stripe_held)
{
    if (!e->receipt_key)
        return risk_err(RISK_EINVAL, "verdict: a receipt was asked for, but the engine has no "
                        "receipt key (risk_engine_options.receipt_key)");
    /* The events that counted: read them only when a receipt is wanted,
     * from the user record the decision was made on. The user's lock keeps
     * this engine's operations on the user out meanwhile (an operation
     * between the decision and this read changed the version: the sign-in
     * decides again). */
    risk_event **ev = NULL;
    size_t n = 0;
    void *txn = NULL;
    pthread_mutex_t *lock = stripe_held ? NULL : risk_engine_stripe(e, v->user_id);
    if (lock)
        pthread_mutex_lock(lock);
    int rc = e->st.begin(e->st.ctx, v->user_id, &txn);
    if (rc == RISK_OK) {
        uint64_t now_version = 0;
        rc = user_version(e, txn, v->user_id, &now_version);
        if (rc == RISK_OK && now_version != version)
            rc = risk_err(RISK_ECONFLICT, "receipt: user '%s' changed since the decision",
                          v->user_id);
        if (rc == RISK_OK)
            rc = risk_engine_load_events(e, txn, v->user_id, &ev, &n);
        e->st.rollback(e->st.ctx, txn);
    }
    if (lock)
        pthread_mutex_unlock(lock);
    if (rc)
        return rc;
    struct buf b = { 0 };
    char num[32];
    put(&b, RECEIPT_MAGIC);
    put_kv(&b, "user_id", v->user_id);
    snprintf(num, sizeof num, "%" PRId64, v->at);
    put_kv(&b, "at", num);
    put_kv(&b, "decision", risk_enum_name(RISK_ENUM_DECISION, v->decision));
    put_kv(&b, "reason", risk_enum_name(RISK_ENUM_REASON, v->reason));
    put_kv(&b, "level", risk_enum_name(RISK_ENUM_LEVEL, v->level));
    put_kv(&b, "policy", v->has_policy ? v->policy : "");
    for (size_t i = 0; i < n; i++) {
        int64_t p = risk_scoring_aging_for(&e->scoring, ev[i]);
        int counts = ev[i]->state == RISK_EVENT_ACTIVE &&
                     !(p > 0 && ev[i]->detected_at <= v->at - p);
        if (counts)
            put_kv(&b, "event", ev[i]->id);
    }
    risk_events_free(ev, n);
    if (b.rc == RISK_OK) {
        uint8_t mac[32];
        char h[65];
        risk_hmac_sha256(e->receipt_key, e->receipt_key_len, b.p, b.n, mac);
        hex(h, mac);
        put_kv(&b, "mac", h);
    }
    if (b.rc) {
        risk_free(b.p);
        return b.rc;
    }
    risk_free(v->receipt);
    v->receipt = b.p;
    return RISK_OK;
}

int risk_receipt_verify(const char *receipt, const uint8_t *key, size_t key_len)
{
    if (!receipt || !key)
        return risk_err(RISK_EINVAL, "%s: NULL", !receipt ? "receipt" : "key");
    if (strncmp(receipt, RECEIPT_MAGIC, strlen(RECEIPT_MAGIC)) != 0)
        return risk_err(RISK_EVERIFY, "receipt: not a librisk receipt");
    /* Every line must be key=value with a known key, in the fixed order. */
    static const char *const order[] = { "user_id", "at", "decision", "reason", "level",
                                         "policy" };
    const char *p = receipt + strlen(RECEIPT_MAGIC);
    size_t k = 0;
    const char *mac_line = NULL;
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            return risk_err(RISK_EVERIFY, "receipt: last line lacks its newline");
        const char *eq = memchr(p, '=', (size_t)(nl - p));
        if (!eq)
            return risk_err(RISK_EVERIFY, "receipt: a line without '='");
        size_t kl = (size_t)(eq - p);
        if (k < 6) {
            if (kl != strlen(order[k]) || strncmp(p, order[k], kl) != 0)
                return risk_err(RISK_EVERIFY, "receipt: expected '%s' at line %zu", order[k],
                                k + 2);
            k++;
        } else if (kl == 5 && strncmp(p, "event", 5) == 0 && !mac_line) {
            /* an event line */
        } else if (kl == 3 && strncmp(p, "mac", 3) == 0 && !mac_line) {
            mac_line = p;
        } else {
            return risk_err(RISK_EVERIFY, "receipt: unexpected line %.*s", (int)kl, p);
        }
        p = nl + 1;
    }
    if (k < 6 || !mac_line)
        return risk_err(RISK_EVERIFY, "receipt: incomplete");
    if (strlen(mac_line) != 4 + 64 + 1)
        return risk_err(RISK_EVERIFY, "receipt: malformed mac");
    uint8_t mac[32];
    char h[65];
    risk_hmac_sha256(key, key_len, receipt, (size_t)(mac_line - receipt), mac);
    hex(h, mac);
    /* Constant-time comparison. */
    unsigned diff = 0;
    for (int i = 0; i < 64; i++)
        diff |= (unsigned)(h[i] ^ mac_line[4 + i]);
    if (diff)
        return risk_err(RISK_EVERIFY, "receipt: the mac does not match (altered, or another key)");
    return RISK_OK;
}
