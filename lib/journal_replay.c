/* The journal's history index and recovery. History items stay on disk:
 * the index maps each item to (seq, offset, length) and each user to the
 * positions of its items. Recovery scans the file (journal_format.c) and
 * installs every decoded record straight into the memstore with its bulk
 * load calls: no transaction, no version check, one decode and no copy
 * of users and policies, one packing copy of events. History items are
 * only indexed, from their seq and user id read in place (journal_hist.c);
 * the maps and the index are sized from a first pass over the headers; a
 * large file is read and indexed on a second thread (the pipeline below). */
#include "journal.h"
#include "memstore.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

/* ---- history index ---- */

#define ULIST_MIN 4 /* first positions array of a user: most users have few items */

static ulist *ulist_find_h(jstore *js, const uint8_t *id, size_t n, uint64_t h)
{
    if (js->u_cap == 0)
        return NULL;
    for (size_t i = h & (js->u_cap - 1);; i = (i + 1) & (js->u_cap - 1)) {
        ulist *u = &js->u_tab[i];
        if (u->id == NULL)
            return NULL;
        if (u->hash == h && memcmp(u->id, id, n) == 0 && u->id[n] == '\0')
            return u;
    }
}

ulist *ulist_find(jstore *js, const uint8_t *id, size_t n)
{
    return ulist_find_h(js, id, n, jhash(id, n));
}

/* Size the user table for `users` users at most half full (ENOMEM: unchanged). */
static int ulist_size(jstore *js, size_t users)
{
    size_t cap = js->u_cap ? js->u_cap : 64;
    while (2 * users > cap)
        cap *= 2;
    if (cap == js->u_cap)
        return RISK_OK;
    ulist *t = risk_calloc(cap, sizeof *t);
    if (t == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    for (size_t i = 0; i < js->u_cap; i++) {
        if (js->u_tab[i].id == NULL)
            continue;
        size_t j = js->u_tab[i].hash & (cap - 1);
        while (t[j].id != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = js->u_tab[i];
    }
    risk_free(js->u_tab);
    js->u_tab = t, js->u_cap = cap;
    return RISK_OK;
}

static ulist *ulist_get(jstore *js, const uint8_t *id, size_t n) /* find or insert; NULL: ENOMEM */
{
    uint64_t h = jhash(id, n);
    ulist *u = ulist_find_h(js, id, n, h);
    if (u != NULL)
        return u;
    if (ulist_size(js, js->u_n + 1) != RISK_OK)
        return NULL;
    char *dup = risk_strndup((const char *)id, n);
    if (dup == NULL)
        return NULL;
    size_t i = h & (js->u_cap - 1);
    while (js->u_tab[i].id != NULL)
        i = (i + 1) & (js->u_cap - 1);
    js->u_tab[i].id = dup;
    js->u_tab[i].hash = h;
    js->u_n++;
    return &js->u_tab[i];
}

/* Room in u's positions for k more (ENOMEM: unchanged). */
static int ulist_room(ulist *u, size_t k)
{
    if ((size_t)u->n + k <= u->cap)
        return RISK_OK;
    if ((size_t)u->n + k > UINT32_MAX)
        return risk_err(RISK_EINVAL, "journal: history index full");
    size_t cap = u->cap ? u->cap : ULIST_MIN;
    while (cap < (size_t)u->n + k)
        cap *= 2;
    uint32_t *p = risk_realloc(u->pos, cap * sizeof *p);
    if (p == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    u->pos = p, u->cap = (uint32_t)cap;
    return RISK_OK;
}

/* Room in the item arrays for need items in all (ENOMEM: unchanged):
 * doubling as commits append, or exactly need (recovery's sizing hint,
 * 20 bytes an item: a power of two above 1.2 million items would reserve
 * 18 MB more than the index ever holds). */
static int idx_size_to(jstore *js, size_t need, int exact)
{
    if (need <= js->h_cap)
        return RISK_OK;
    if (need > UINT32_MAX)
        return risk_err(RISK_EINVAL, "journal: history index full");
    size_t c1 = js->h_cap, c2 = js->h_cap, c3 = js->h_cap;
    void *tmp_;
    if (exact) { /* each array is at least h_cap long whatever fails */
        uint64_t *a = risk_realloc(js->h_seq, need * sizeof *a);
        js->h_seq = a ? a : js->h_seq;
        uint64_t *b = a ? risk_realloc(js->h_off, need * sizeof *b) : NULL;
        js->h_off = b ? b : js->h_off;
        uint32_t *c = b ? risk_realloc(js->h_len, need * sizeof *c) : NULL;
        js->h_len = c ? c : js->h_len;
        if (c == NULL)
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        js->h_cap = need;
        return RISK_OK;
    }
    if (GROW(js->h_seq, &c1, need) || GROW(js->h_off, &c2, need) || GROW(js->h_len, &c3, need))
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    js->h_cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    return RISK_OK;
}

static int idx_size(jstore *js, size_t need)
{
    return idx_size_to(js, need, 0);
}

int idx_has_room(jstore *js, const uint8_t *buf, const phist *ph, size_t k)
{
    if (js->h_n + k > js->h_cap)
        return 0;
    for (size_t i = 0; i < k; i++) {
        if (ph[i].ulen == 0)
            continue;
        ulist *u = ulist_find(js, buf + ph[i].uat, ph[i].ulen);
        if (u == NULL || (size_t)u->n + k > u->cap)
            return 0;
    }
    return 1;
}

int idx_reserve(jstore *js, const uint8_t *buf, const phist *ph, size_t k)
{
    int rc = idx_size(js, js->h_n + k);
    for (size_t i = 0; rc == RISK_OK && i < k; i++) {
        if (ph[i].ulen == 0)
            continue;
        ulist *u = ulist_get(js, buf + ph[i].uat, ph[i].ulen);
        rc = u == NULL ? risk_err(RISK_ENOMEM, "journal: out of memory") : ulist_room(u, k);
    }
    return rc;
}

void idx_add(jstore *js, uint64_t seq, uint64_t off, uint32_t len, const uint8_t *user,
             size_t ulen)
{
    if (ulen > 0) {
        ulist *u = ulist_find(js, user, ulen);
        u->pos[u->n++] = (uint32_t)js->h_n;
    }
    js->h_seq[js->h_n] = seq, js->h_off[js->h_n] = off, js->h_len[js->h_n] = len;
    js->h_n++;
}

/* idx_reserve + idx_add for one item with one hash lookup (recovery). */
static int idx_push(jstore *js, uint64_t seq, uint64_t off, uint32_t len, const uint8_t *user,
                    size_t ulen)
{
    int rc = idx_size(js, js->h_n + 1);
    if (rc == RISK_OK && ulen > 0) {
        ulist *u = ulist_get(js, user, ulen);
        rc = u == NULL ? risk_err(RISK_ENOMEM, "journal: out of memory") : ulist_room(u, 1);
        if (rc == RISK_OK)
            u->pos[u->n++] = (uint32_t)js->h_n;
    }
    if (rc == RISK_OK) {
        js->h_seq[js->h_n] = seq, js->h_off[js->h_n] = off, js->h_len[js->h_n] = len;
        js->h_n++;
    }
    return rc;
}

uint64_t idx_max_seq(const jstore *js)
{
    return js->h_n ? js->h_seq[js->h_n - 1] : 0;
}

void idx_free(jstore *js)
{
    for (size_t i = 0; i < js->u_cap; i++) {
        risk_free(js->u_tab[i].id);
        risk_free(js->u_tab[i].pos);
    }
    risk_free(js->u_tab);
    risk_free(js->h_seq);
    risk_free(js->h_off);
    risk_free(js->h_len);
}

/* ---- replay ---- */

typedef struct replay {
    jstore *js;
    uint64_t max_seq;
} replay;

/* Decode and load one op; the pipeline's two threads call it too (the
 * worker for history items only, this thread for the rest), so both paths
 * accept, refuse and report alike. */
static int load_op(void *arg, uint8_t tag, uint64_t at, const uint8_t *p, size_t n)
{
    replay *rp = arg;
    risk_memstore *ms = rp->js->ms;
    int rc;
    switch (tag) {
    case OP_USER: {
        risk_user *u = NULL;
        rc = risk_user_decode(&u, p, n);
        return rc == RISK_OK ? risk_memstore_load_user(ms, u) : rc;
    }
    case OP_EVENT: {
        risk_event *e = NULL;
        rc = risk_event_decode(&e, p, n);
        return rc == RISK_OK ? risk_memstore_load_event(ms, e) : rc;
    }
    case OP_POLICY: {
        risk_policy *pol = NULL;
        rc = risk_policy_decode(&pol, p, n);
        return rc == RISK_OK ? risk_memstore_load_policy(ms, pol) : rc;
    }
    case OP_POLICY_REMOVE: {
        char name[RISK_ID_MAX + 1];
        if (n == 0 || n > RISK_ID_MAX || memchr(p, 0, n) != NULL)
            return risk_err(RISK_ECORRUPT, "policy name: invalid");
        memcpy(name, p, n);
        name[n] = '\0';
        if (risk_check_id("policy name", name) != RISK_OK)
            return RISK_ECORRUPT;
        /* removing an absent policy (two removals) is a no-op */
        risk_memstore_load_remove_policy(ms, name);
        return RISK_OK;
    }
    case OP_META: { /* [key length u16][key][value ≤ 256] */
        char key[RISK_ID_MAX + 1];
        size_t klen = n >= 2 ? (size_t)p[0] | (size_t)p[1] << 8 : 0;
        if (n < 2 || klen == 0 || klen > RISK_ID_MAX || n - 2 < klen || n - 2 - klen > 256 ||
            memchr(p + 2, 0, klen) != NULL)
            return risk_err(RISK_ECORRUPT, "meta: invalid");
        memcpy(key, p + 2, klen);
        key[klen] = '\0';
        return risk_memstore_load_meta(ms, key, p + 2 + klen, n - 2 - klen);
    }
    default: { /* OP_HISTORY: only the index is kept, so only seq and user are read */
        uint64_t seq;
        const uint8_t *user;
        size_t ulen;
        if (hist_peek(p, n, 1, &seq, &user, &ulen) != 0) {
            /* refused: the real decoder says why (and refuses too) */
            risk_history *h = NULL;
            rc = risk_history_decode(&h, p, n);
            risk_history_free(h);
            return rc != RISK_OK ? rc : risk_err(RISK_ECORRUPT, "history: refused");
        }
        if (seq <= rp->max_seq)
            return risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " not above %" PRIu64, seq,
                            rp->max_seq);
        rc = idx_push(rp->js, seq, at, (uint32_t)n, user, ulen);
        if (rc == RISK_OK)
            rp->max_seq = seq;
        return rc;
    }
    }
}

static int replay_frame(void *arg, uint64_t off, const uint8_t *p, uint32_t len)
{
    return frame_ops(off, p, len, load_op, arg);
}

/* ---- the pipeline: read, check and index on a second thread ----
 *
 * Recovery is CPU-bound. A worker thread runs the scanner (reads and
 * checksums) and builds the history index, which nothing else touches
 * until the open returns; it hands every other op's bytes, in file order,
 * in batches of several frames through a short queue to this thread, which
 * decodes and loads them with the same load_op as the sequential walk.
 * (Decoding stays here, with the loading: the memstore frees each decoded
 * handle, and freeing on one thread what another allocated contends on
 * the allocator's arena lock; measured, that cost more than it saved.)
 * The worker's error (a bad frame, a history item refused, a read failure,
 * ENOMEM) travels as the last batch, so it surfaces exactly where the
 * sequential walk would have met it; an error here stops the worker. */

#define PIPE_ITEMS 1024 /* ops per batch */
#define PIPE_DEPTH 4    /* batches in flight */
#define PIPE_MSG 512    /* an error message carried across */
/* private results (positive: never a RISK_ code) */
#define PIPE_STOPPED 1  /* the consumer stopped the worker */
#define PIPE_NOTHREAD 2 /* no worker thread: run sequentially */
uint64_t journal_pipe_min = 16u << 20;

typedef struct rop { /* an op's bytes, copied out of the reader's buffer */
    uint8_t tag;
    uint32_t pos, n; /* payload byte of the op (messages), body length */
    uint64_t foff, at; /* its frame's offset, the body's file offset */
    size_t off;        /* the body in the batch's arena */
} rop;

typedef struct pbatch {
    rop *op;
    size_t n, cap;
    bytes ar;
    int rc, last; /* last: the worker's final batch, rc its result */
    char msg[PIPE_MSG];
    struct pbatch *next;
} pbatch;

typedef struct rpipe {
    replay wrp; /* the worker's: the index and its max_seq */
    rd *r;
    scan_res res;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pbatch *head, *tail;
    size_t depth;
    int stop; /* the consumer gave up: the worker ends, freeing its batch */
    pbatch *cur;
    uint64_t foff;
} rpipe;

static void batch_free(pbatch *b)
{
    if (b == NULL)
        return;
    risk_free(b->op);
    risk_free(b->ar.p);
    risk_free(b);
}

/* Queue b; 0, or -1 when the consumer stopped (b is freed). */
static int pipe_push(rpipe *pp, pbatch *b)
{
    pthread_mutex_lock(&pp->mu);
    while (pp->depth >= PIPE_DEPTH && !pp->stop)
        pthread_cond_wait(&pp->cv, &pp->mu);
    int stop = pp->stop;
    if (!stop) {
        if (pp->tail)
            pp->tail->next = b;
        else
            pp->head = b;
        pp->tail = b, pp->depth++;
        pthread_cond_broadcast(&pp->cv);
    }
    pthread_mutex_unlock(&pp->mu);
    if (stop)
        batch_free(b);
    return stop ? -1 : 0;
}

static int pipe_op(void *arg, uint8_t tag, uint64_t at, const uint8_t *p, size_t n)
{
    rpipe *pp = arg;
    if (tag == OP_HISTORY)
        return load_op(&pp->wrp, tag, at, p, n);
    pbatch *b = pp->cur;
    if (b == NULL && (b = pp->cur = risk_calloc(1, sizeof *b)) == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    void *tmp_;
    uint8_t *dst = NULL;
    if (GROW(b->op, &b->cap, b->n + 1))
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    int rc = bytes_op(&b->ar, tag, n, &dst);
    if (rc != RISK_OK)
        return rc;
    memcpy(dst, p, n);
    b->op[b->n++] = (rop){tag, (uint32_t)(at - pp->foff - FRAME_HDR - 5), (uint32_t)n, pp->foff,
                          at, (size_t)(dst - b->ar.p)};
    return RISK_OK;
}

static int pipe_frame(void *arg, uint64_t off, const uint8_t *p, uint32_t len)
{
    rpipe *pp = arg;
    pp->foff = off;
    int rc = frame_ops(off, p, len, pipe_op, pp);
    if (rc == RISK_OK && pp->cur != NULL && pp->cur->n >= PIPE_ITEMS) {
        pbatch *b = pp->cur;
        pp->cur = NULL;
        if (pipe_push(pp, b) != 0)
            return PIPE_STOPPED;
    }
    return rc;
}

static void *pipe_worker(void *arg)
{
    rpipe *pp = arg;
    int rc = scan(pp->r, 0, pipe_frame, pp, &pp->res);
    if (rc == PIPE_STOPPED)
        return NULL;
    pbatch *b = pp->cur;
    pp->cur = NULL;
    if (rc != RISK_OK) { /* the items before the error would not be applied either */
        batch_free(b);
        b = NULL;
    }
    if (b == NULL && (b = risk_calloc(1, sizeof *b)) == NULL) {
        /* no batch to carry the result: say so through the flag */
        pthread_mutex_lock(&pp->mu);
        pp->stop = 2;
        pthread_cond_broadcast(&pp->cv);
        pthread_mutex_unlock(&pp->mu);
        return NULL;
    }
    b->last = 1, b->rc = rc;
    if (rc != RISK_OK)
        snprintf(b->msg, sizeof b->msg, "%s", risk_error_last());
    pipe_push(pp, b);
    return NULL;
}

/* Run the pipeline; PIPE_NOTHREAD if the thread cannot start (nothing done). */
static int pipe_replay(replay *rp, rd *r, scan_res *res)
{
    rpipe pp = {.wrp = {.js = rp->js}, .r = r};
    pthread_mutex_init(&pp.mu, NULL);
    pthread_cond_init(&pp.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, pipe_worker, &pp) != 0) {
        pthread_cond_destroy(&pp.cv);
        pthread_mutex_destroy(&pp.mu);
        return PIPE_NOTHREAD;
    }
    int rc = RISK_OK, done = 0;
    while (!done) {
        pthread_mutex_lock(&pp.mu);
        while (pp.head == NULL && pp.stop != 2)
            pthread_cond_wait(&pp.cv, &pp.mu);
        pbatch *b = pp.head;
        if (b != NULL) {
            pp.head = b->next;
            if (pp.head == NULL)
                pp.tail = NULL;
            pp.depth--;
            pthread_cond_broadcast(&pp.cv);
        }
        pthread_mutex_unlock(&pp.mu);
        if (b == NULL) { /* the worker could not allocate its last batch */
            rc = risk_err(RISK_ENOMEM, "journal: out of memory");
            break;
        }
        for (size_t i = 0; rc == RISK_OK && i < b->n; i++) {
            const rop *o = &b->op[i];
            rc = load_op(rp, o->tag, o->at, b->ar.p + o->off, o->n);
            if (rc != RISK_OK)
                rc = op_error(o->foff, o->pos, rc);
        }
        if (rc == RISK_OK && b->last) {
            rc = b->rc;
            if (rc != RISK_OK)
                risk_err(rc, "%s", b->msg);
            done = 1;
        }
        batch_free(b);
        if (rc != RISK_OK)
            break;
    }
    if (!done) { /* stop the worker and free what it still hands over */
        pthread_mutex_lock(&pp.mu);
        pp.stop = pp.stop ? pp.stop : 1;
        pthread_cond_broadcast(&pp.cv);
        pthread_mutex_unlock(&pp.mu);
    }
    pthread_join(th, NULL);
    while (pp.head != NULL) {
        pbatch *b = pp.head;
        pp.head = b->next;
        batch_free(b);
    }
    batch_free(pp.cur);
    pthread_cond_destroy(&pp.cv);
    pthread_mutex_destroy(&pp.mu);
    *res = pp.res;
    return rc;
}

/* ---- sizing hints ---- */

/* Distinct ids estimated by k minimum values: keep the KMV_K smallest
 * distinct hashes; if the k-th smallest is x (as a fraction of 2^64),
 * about (k - 1) / x ids were seen (error ~ 1/sqrt(k), ~3% here), exactly
 * n while fewer than k. Cheap: most hashes lose one comparison. */
#define KMV_K 1024
typedef struct kmv {
    uint64_t v[KMV_K];
    size_t n;
} kmv;

static void kmv_add(kmv *s, uint64_t h)
{
    h ^= h >> 33, h *= 0xff51afd7ed558ccdu, h ^= h >> 33, h *= 0xc4ceb9fe1a85ec53u, h ^= h >> 33;
    if (s->n == KMV_K && h >= s->v[KMV_K - 1])
        return;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n && s->v[lo] == h)
        return;
    size_t keep = s->n < KMV_K ? s->n : KMV_K - 1;
    memmove(&s->v[lo + 1], &s->v[lo], (keep - lo) * sizeof s->v[0]);
    s->v[lo] = h;
    if (s->n < KMV_K)
        s->n++;
}

static size_t kmv_count(const kmv *s)
{
    if (s->n < KMV_K || s->v[KMV_K - 1] == 0)
        return s->n;
    return (size_t)((double)(KMV_K - 1) * 18446744073709551616.0 / (double)s->v[KMV_K - 1]);
}

/* The id of a user or event encoding: kind, version, then str(id). */
static void kmv_add_rec(kmv *s, const uint8_t *p, size_t n)
{
    if (n < 3 || p[1] != RISK_CODEC_VERSION)
        return;
    size_t len = p[2] & 0x7F, at = 3;
    if (p[2] & 0x80) {
        if (n < 4)
            return;
        len |= (size_t)(p[3] & 0x7F) << 7, at = 4;
    }
    if (len <= n - at)
        kmv_add(s, jhash(p + at, len));
}

typedef struct hint {
    uint64_t hist;
    kmv users, events;
} hint;

/* Walk frame and op headers only (no checksum, no decoding), stopping at
 * the first thing that does not look like a frame: how many history
 * items, users and events (each record counted once, not once per
 * version), so recovery neither rehashes the memstore's maps nor regrows
 * the index. */
static void count_ops(rd *r, hint *ht)
{
    uint64_t off = HDR_LEN;
    while (r->size - off >= FRAME_HDR + 1) {
        const uint8_t *h = rd_get(r, off, FRAME_HDR);
        uint32_t len = h ? get32(h) : 0;
        if (len == 0 || len > FRAME_MAX || len > r->size - off - FRAME_HDR)
            break;
        const uint8_t *p = rd_get(r, off + FRAME_HDR, len);
        if (p == NULL)
            break;
        for (uint32_t pos = 0; len - pos >= 5;) {
            uint32_t n = get32(p + pos + 1);
            if (n > len - pos - 5)
                break;
            if (p[pos] == OP_HISTORY)
                ht->hist++;
            else if (p[pos] == OP_USER)
                kmv_add_rec(&ht->users, p + pos + 5, n);
            else if (p[pos] == OP_EVENT)
                kmv_add_rec(&ht->events, p + pos + 5, n);
            pos += 5 + n;
        }
        off += FRAME_HDR + (uint64_t)len;
    }
}

int journal_replay(jstore *js, rd *r, scan_res *res)
{
    hint *ht = risk_calloc(1, sizeof *ht);
    if (ht != NULL && r->size > HDR_LEN) {
        count_ops(r, ht);
        /* a hint: 5% over the estimate; ENOMEM is not an error here, the
         * loads report it if it persists */
        size_t users = kmv_count(&ht->users), events = kmv_count(&ht->events);
        users += users / 20, events += events / 20;
        risk_memstore_reserve(js->ms, users, events);
        if (idx_size_to(js, (size_t)ht->hist, 1) != RISK_OK || ulist_size(js, users) != RISK_OK)
            risk_error_clear();
    }
    risk_free(ht);
    replay rp = {.js = js};
    int rc = PIPE_NOTHREAD;
    if (r->size >= journal_pipe_min)
        rc = pipe_replay(&rp, r, res);
    if (rc == PIPE_NOTHREAD) /* small, or no thread: one pass here */
        rc = scan(r, 0, replay_frame, &rp, res);
    return rc;
}
