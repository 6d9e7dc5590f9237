/* The tamper-evident history (R-AU-1…3).
 *
 * Every history item carries chain = SHA-256(previous chain of the same
 * subject ‖ the item's canonical encoding without its chain). A subject is
 * a user, or the policy set (the empty subject; user ids are never empty).
 * Each user record keeps the head of its chain and the store keeps the
 * policy set's head as meta, so removing items from the end of a chain is
 * visible too. An anchor is the highest sequence number and a SHA-256 over
 * the sorted (subject, head) pairs: kept elsewhere, it pins everything up
 * to it.
 *
 * Verification reads the store while writers go on: a user's record read
 * after the history walk may name a head the walk has not reached yet.
 * Such a subject is not a mismatch until the walk, read on from where it
 * stopped, has passed that head or shown that nothing more comes (see
 * risk_engine_verify_history). */
#include "engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- subject → head map ---- */

struct head {
    char *subject; /* "" for the policy set */
    uint8_t head[32];
    uint8_t anchored[32]; /* head as of the anchor's seq */
    int has_anchored;
    /* The stored head, when it was not the chain's end at the last check:
     * met once the walk's chain passes through it (then verified). */
    uint8_t want[32];
    int wanted, verified;
    /* the last item walked: its seq, and the user's level and state after
     * it, which a record at the chain's end must hold */
    uint64_t last_seq;
    uint32_t level_after, state_after;
};

struct heads {
    struct head *v;
    size_t cap, n; /* open addressing; cap a power of two */
};

static struct head *heads_find(struct heads *h, const char *subject, int create, int *rc)
{
    if (create && (h->n + 1) * 2 > h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 64;
        struct head *nv = risk_calloc(ncap, sizeof *nv);
        if (!nv) {
            *rc = risk_err(RISK_ENOMEM, "verify: out of memory");
            return NULL;
        }
        for (size_t i = 0; i < h->cap; i++) {
            if (!h->v[i].subject)
                continue;
            size_t j = risk_hash_str(h->v[i].subject) & (ncap - 1);
            while (nv[j].subject)
                j = (j + 1) & (ncap - 1);
            nv[j] = h->v[i];
        }
        risk_free(h->v);
        h->v = nv;
        h->cap = ncap;
    }
    if (!h->cap)
        return NULL;
    size_t j = risk_hash_str(subject) & (h->cap - 1);
    while (h->v[j].subject) {
        if (strcmp(h->v[j].subject, subject) == 0)
            return &h->v[j];
        j = (j + 1) & (h->cap - 1);
    }
    if (!create)
        return NULL;
    h->v[j].subject = risk_strdup(subject);
    if (!h->v[j].subject) {
        *rc = risk_err(RISK_ENOMEM, "verify: out of memory");
        return NULL;
    }
    h->n++;
    return &h->v[j];
}

static void heads_free(struct heads *h)
{
    for (size_t i = 0; i < h->cap; i++)
        risk_free(h->v[i].subject);
    risk_free(h->v);
}

/* ---- walking the history ---- */

struct walk {
    struct heads heads;
    int check;          /* recompute and compare each chain hash */
    uint64_t last_seq;  /* highest seen */
    uint64_t anchor_seq;/* snapshot heads at this seq (0: none) */
    uint64_t bad_seq;
    int rc;
};

static int walk_item(const risk_history *item, void *arg)
{
    struct walk *w = arg;
    if (item->seq <= w->last_seq) {
        w->bad_seq = item->seq ? item->seq : w->last_seq + 1;
        return risk_err(RISK_EVERIFY, "history: item %" PRIu64 " comes after %" PRIu64
                        " (reordered or inserted)", item->seq, w->last_seq);
    }
    w->last_seq = item->seq;
    int rc = RISK_OK;
    const char *subject = item->user_id ? item->user_id : "";
    struct head *h = heads_find(&w->heads, subject, 1, &rc);
    if (!h)
        return rc;
    if (w->check) {
        risk_history *copy = NULL;
        if ((rc = risk_history_dup(&copy, item)))
            return rc;
        rc = risk_history_seal(copy, h->head);
        int same = rc == RISK_OK && memcmp(copy->chain, item->chain, 32) == 0;
        risk_history_free(copy);
        if (rc)
            return rc;
        if (!same) {
            w->bad_seq = item->seq;
            return risk_err(RISK_EVERIFY, "history: item %" PRIu64 " of %s%s%s does not match "
                            "its chain (changed, or an item before it in the chain was removed)",
                            item->seq, *subject ? "user '" : "the policy set", subject,
                            *subject ? "'" : "");
        }
    }
    memcpy(h->head, item->chain, 32);
    h->last_seq = item->seq;
    h->level_after = item->level_after;
    h->state_after = item->state_after;
    if (h->wanted && memcmp(h->want, item->chain, 32) == 0)
        h->verified = 1;
    if (w->anchor_seq && item->seq <= w->anchor_seq) {
        memcpy(h->anchored, item->chain, 32);
        h->has_anchored = 1;
    }
    return RISK_OK;
}

static int subject_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct head *const *)a)->subject,
                  (*(const struct head *const *)b)->subject);
}

/* SHA-256 over the sorted (len ‖ subject ‖ head) of every chain. */
static int anchor_hash(struct heads *hs, int anchored, uint8_t out[32], uint32_t *subjects)
{
    struct head **v = risk_calloc(hs->n ? hs->n : 1, sizeof *v);
    if (!v)
        return risk_err(RISK_ENOMEM, "anchor: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < hs->cap; i++)
        if (hs->v[i].subject && (!anchored || hs->v[i].has_anchored))
            v[n++] = &hs->v[i];
    qsort(v, n, sizeof *v, subject_cmp);
    risk_sha256_ctx c;
    risk_sha256_init(&c);
    risk_sha256_update(&c, "librisk-anchor-1", 16);
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)strlen(v[i]->subject);
        uint8_t lb[4] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                          (uint8_t)(len >> 24) };
        risk_sha256_update(&c, lb, 4);
        risk_sha256_update(&c, v[i]->subject, len);
        risk_sha256_update(&c, anchored ? v[i]->anchored : v[i]->head, 32);
    }
    risk_sha256_final(&c, out);
    *subjects = (uint32_t)n;
    risk_free(v);
    return RISK_OK;
}

int risk_engine_history_anchor(risk_engine *engine, risk_anchor *out)
{
    if (!engine || !out)
        return risk_err(RISK_EINVAL, "%s: NULL", !engine ? "engine" : "out");
    if (!engine->st.read_history)
        return risk_err(RISK_EUNSUPPORTED, "store: no read_history callback");
    struct walk w;
    memset(&w, 0, sizeof w);
    int rc = engine->st.read_history(engine->st.ctx, NULL, 0, walk_item, &w);
    risk_anchor a;
    memset(&a, 0, sizeof a);
    a.version = RISK_ANCHOR_VERSION;
    a.seq = w.last_seq;
    if (rc == RISK_OK)
        rc = anchor_hash(&w.heads, 0, a.hash, &a.subjects);
    heads_free(&w.heads);
    if (rc == RISK_OK)
        *out = a;
    return rc;
}

/* Compare the stored heads with the chains' ends: items removed from the
 * end of a chain leave the record's head pointing past them. A head that
 * differs is remembered (wanted) rather than refused: the walk may not
 * have reached it yet. */
struct head_check {
    struct heads *heads;
    size_t pending;      /* subjects whose head the walk has not passed */
    const char *first;   /* one of them, for the message (NULL: the policy set) */
    int rc;
    uint64_t bad_seq;    /* the item a record contradicts */
};

static const uint8_t zero32[32];

/* h: the walk's head of subject, as heads_find(…, 0, …) gives it (NULL:
 * no item walked yet). */
static int note_head(struct head_check *hc, struct head *h, const char *subject,
                     const uint8_t stored[32])
{
    int rc = RISK_OK;
    if (h && h->verified)
        return RISK_OK;
    if (memcmp(h ? h->head : zero32, stored, 32) == 0)
        return RISK_OK;
    if (!h && !(h = heads_find(hc->heads, subject, 1, &rc))) /* no item walked yet */
        return rc;
    /* The first head not reached is the one to reach: a later look may
     * find the record moved on again, but the walk passes this one first
     * (heads only move forward), and chasing each newer one could last as
     * long as the writers do. */
    if (!h->wanted) {
        memcpy(h->want, stored, 32);
        h->wanted = 1;
    }
    if (hc->pending++ == 0)
        hc->first = h->subject;
    return RISK_OK;
}

/* A record at its chain's end was written with the chain's last item, in
 * one commit: it holds the level and state that item says it left. A
 * record whose risk was edited in the file (its frame's checksum made to
 * match; the checksum has no key) contradicts the chain the edit could
 * not reseal. (The record's other fields are in no item.) */
static int check_user_head(const risk_user *u, void *arg)
{
    struct head_check *hc = arg;
    int rc = RISK_OK;
    struct head *h = heads_find(hc->heads, u->id, 0, &rc);
    if (h && memcmp(h->head, u->chain_head, 32) == 0 &&
        (u->level != h->level_after || u->state != h->state_after)) {
        hc->bad_seq = h->last_seq;
        return risk_err(RISK_EVERIFY, "history: the record of user '%s' holds level %s, state %s, "
                        "but its last history item (%" PRIu64 ") left level %s, state %s "
                        "(the record was changed outside the engine)",
                        u->id, risk_enum_name(RISK_ENUM_LEVEL, u->level),
                        risk_enum_name(RISK_ENUM_STATE, u->state), h->last_seq,
                        risk_enum_name(RISK_ENUM_LEVEL, h->level_after),
                        risk_enum_name(RISK_ENUM_STATE, h->state_after));
    }
    return note_head(hc, h, u->id, u->chain_head);
}

/* One look at every stored head (the policy set's, then each user's). */
static int check_heads(risk_engine *engine, struct head_check *hc)
{
    uint8_t head[32];
    size_t len = 0;
    void *txn = NULL;
    hc->pending = 0;
    hc->first = NULL;
    int rc = engine->st.begin(engine->st.ctx, NULL, &txn);
    if (rc == RISK_OK) {
        rc = engine->st.get_meta(engine->st.ctx, txn, RISK_META_POLICY_CHAIN, head, sizeof head,
                                 &len);
        engine->st.rollback(engine->st.ctx, txn);
    }
    if (rc == RISK_ENOTFOUND) {
        memset(head, 0, sizeof head);
        len = 32;
        rc = RISK_OK;
    }
    if (rc == RISK_OK && len != 32)
        return risk_err(RISK_EVERIFY, "history: the policy set's chain head is %zu bytes, not 32",
                        len);
    if (rc == RISK_OK)
        rc = note_head(hc, heads_find(hc->heads, "", 0, &rc), "", head);
    if (rc == RISK_OK && engine->st.list_users)
        rc = engine->st.list_users(engine->st.ctx, RISK_LEVEL_NONE, check_user_head, hc);
    return rc;
}

/* How long verification follows writers: rounds of reading the history on
 * and comparing again, and of those, rounds in which nothing new came
 * before a head not reached is a mismatch. The pause after an idle round
 * doubles from VERIFY_PAUSE_NS (2 + 4 + … + 128 ms: 254 ms in all): a
 * writer between its record and its history item may be off the CPU for
 * a while on a loaded machine (with three pauses of 2 ms, 1 in 16
 * verifications beside three writers failed so under a parallel test
 * run); a real mismatch is reported that much later. */
#define VERIFY_ROUNDS 64
#define VERIFY_IDLE 7
#define VERIFY_PAUSE_NS 2000000L

int risk_engine_verify_history(risk_engine *engine, const risk_anchor *anchor, uint64_t *bad_seq)
{
    if (bad_seq)
        *bad_seq = 0;
    if (!engine)
        return risk_err(RISK_EINVAL, "engine: NULL");
    if (anchor && anchor->version != RISK_ANCHOR_VERSION)
        return risk_err(RISK_EINVAL, "anchor.version: %u, expected %u", (unsigned)anchor->version,
                        (unsigned)RISK_ANCHOR_VERSION);
    if (!engine->st.read_history)
        return risk_err(RISK_EUNSUPPORTED, "store: no read_history callback");
    struct walk w;
    memset(&w, 0, sizeof w);
    w.check = 1;
    w.anchor_seq = anchor ? anchor->seq : 0;
    int rc = engine->st.read_history(engine->st.ctx, NULL, 0, walk_item, &w);
    /* A stored head the walk has not reached is either newer than the walk
     * (a writer committed since: reading on from the walk's end passes
     * through it) or past the chain's end (items removed: nothing more
     * comes). */
    struct head_check hc = { &w.heads, 0, NULL, RISK_OK, 0 };
    for (unsigned round = 0, idle = 0; rc == RISK_OK; round++) {
        if ((rc = check_heads(engine, &hc)) != RISK_OK || hc.pending == 0)
            break;
        if (round == VERIFY_ROUNDS || idle == VERIFY_IDLE) {
            rc = !hc.first || !*hc.first
                     ? risk_err(RISK_EVERIFY, "history: the policy set's chain does not end "
                                "where the store says (items removed from its end?)")
                     : risk_err(RISK_EVERIFY, "history: the chain of user '%s' does not end "
                                "where its record says (items removed from its end?)",
                                hc.first);
            break;
        }
        uint64_t seen = w.last_seq;
        rc = engine->st.read_history(engine->st.ctx, NULL, seen + 1, walk_item, &w);
        if (rc == RISK_OK && w.last_seq == seen) { /* nothing new: wait a moment */
            idle++;
            long ns = VERIFY_PAUSE_NS << (idle - 1); /* ≤ 128 ms */
            struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
            nanosleep(&ts, NULL);
        }
    }
    if (rc == RISK_OK && anchor) {
        risk_anchor now;
        if (w.last_seq < anchor->seq)
            rc = risk_err(RISK_EVERIFY, "history: ends at item %" PRIu64 ", the anchor covers up "
                          "to %" PRIu64 " (items removed)", w.last_seq, anchor->seq);
        else if ((rc = anchor_hash(&w.heads, 1, now.hash, &now.subjects)) == RISK_OK &&
                 (now.subjects != anchor->subjects || memcmp(now.hash, anchor->hash, 32) != 0))
            rc = risk_err(RISK_EVERIFY, "history: the items up to %" PRIu64 " do not match the "
                          "anchor (items removed or replaced)", anchor->seq);
    }
    if (hc.bad_seq && !w.bad_seq)
        w.bad_seq = hc.bad_seq;
    if (bad_seq)
        *bad_seq = w.bad_seq;
    heads_free(&w.heads);
    return rc;
}

/* ---- anchors as text ---- */

int risk_anchor_format(char *buf, size_t cap, const risk_anchor *anchor)
{
    if (!buf || !anchor)
        return risk_err(RISK_EINVAL, "%s: NULL", !buf ? "buf" : "anchor");
    if (anchor->version != RISK_ANCHOR_VERSION)
        return risk_err(RISK_EINVAL, "anchor.version: %u, this library writes %u",
                        (unsigned)anchor->version, (unsigned)RISK_ANCHOR_VERSION);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", anchor->hash[i]);
    int n = snprintf(buf, cap, "librisk-anchor 1 %" PRIu64 " %" PRIu32 " %s", anchor->seq,
                     anchor->subjects, hex);
    if (n < 0 || (size_t)n >= cap)
        return risk_err(RISK_ERANGE, "cap: %zu, the anchor needs %d bytes", cap, n + 1);
    return RISK_OK;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* A decimal number of digits only (no sign, no blank, no leading zero:
 * as risk_anchor_format writes it) at *p, at most max; then *p is past it. */
static int parse_dec(const char **p, uint64_t max, uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0;
    if (*q < '0' || *q > '9' || (q[0] == '0' && q[1] >= '0' && q[1] <= '9'))
        return -1;
    for (; *q >= '0' && *q <= '9'; q++) {
        uint64_t d = (uint64_t)(*q - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *p = q;
    *out = v;
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int risk_anchor_parse(risk_anchor *out, const char *text)
{
    if (!out || !text)
        return risk_err(RISK_EINVAL, "%s: NULL", !out ? "out" : "text");
    /* Exactly what risk_anchor_format writes, blanks around it allowed:
     * "librisk-anchor 1 SEQ SUBJECTS HASH", single spaces, decimal digits
     * only, 64 lower-case hex digits. */
    static const char magic[] = "librisk-anchor 1 ";
    risk_anchor a;
    memset(&a, 0, sizeof a);
    a.version = RISK_ANCHOR_VERSION;
    const char *p = text;
    uint64_t seq = 0, subjects = 0;
    while (is_blank(*p))
        p++;
    int ok = strncmp(p, magic, sizeof magic - 1) == 0;
    if (ok) {
        p += sizeof magic - 1;
        ok = parse_dec(&p, UINT64_MAX, &seq) == 0 && *p++ == ' ' &&
             parse_dec(&p, UINT32_MAX, &subjects) == 0 && *p++ == ' ';
    }
    for (int i = 0; ok && i < 32; i++) {
        int hi = hexval(p[2 * i]), lo = hi < 0 ? -1 : hexval(p[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        if (ok)
            a.hash[i] = (uint8_t)(hi << 4 | lo);
    }
    if (!ok)
        return risk_err(RISK_EINVAL, "text: not a librisk anchor");
    for (p += 64; *p; p++)
        if (!is_blank(*p))
            return risk_err(RISK_EINVAL, "text: trailing characters after the anchor");
    a.seq = seq;
    a.subjects = (uint32_t)subjects;
    *out = a;
    return RISK_OK;
}
