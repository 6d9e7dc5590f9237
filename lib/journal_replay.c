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

#define IDCHUNK (64u << 10)

static int seq_ok(uint64_t seq)
{
    return seq > 0 && seq <= UINT32_MAX;
}

static uint32_t *u_slot(const jstore *js, const uint8_t *id, size_t n, uint64_t h)
{
    size_t mask = js->u_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t *sl = &js->u_tab[i];
        if (*sl == 0)
            return sl;
        const huser *u = &js->users[*sl - 1];
        if (u->hash == h && u->len == n &&
            memcmp(n < HUSER_INL ? u->id.inl : u->id.pool, id, n) == 0)
            return sl;
    }
}

const huser *huser_find(const jstore *js, const uint8_t *id, size_t n)
{
    if (js->u_cap == 0)
        return NULL;
    uint32_t i = *u_slot(js, id, n, jhash(id, n));
    return i ? &js->users[i - 1] : NULL;
}

/* Room for `users` users: the table at most 3/4 full, the dense array
 * doubling (ENOMEM: unchanged). */
static int users_room(jstore *js, size_t users)
{
    if (users > UINT32_MAX - 1)
        return risk_err(RISK_EINVAL, "journal: history index full");
    if (users > js->u_alloc) {
        size_t cap = js->u_alloc ? js->u_alloc : 64;
        while (cap < users)
            cap *= 2;
        huser *d = risk_realloc(js->users, cap * sizeof *d);
        if (d == NULL)
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        js->users = d, js->u_alloc = cap;
    }
    size_t cap = js->u_cap ? js->u_cap : 64;
    while (4 * users > 3 * cap)
        cap *= 2;
    if (cap == js->u_cap)
        return RISK_OK;
    uint32_t *t = risk_calloc(cap, sizeof *t);
    if (t == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    for (size_t i = 0; i < js->u_n; i++) {
        size_t j = js->users[i].hash & (cap - 1);
        while (t[j] != 0)
            j = (j + 1) & (cap - 1);
        t[j] = (uint32_t)i + 1;
    }
    risk_free(js->u_tab);
    js->u_tab = t, js->u_cap = cap;
    return RISK_OK;
}

/* n bytes (and a NUL) of id in the pool; NULL: ENOMEM */
static char *id_keep(jstore *js, const uint8_t *id, size_t n)
{
    idchunk *c = js->ids;
    if (c == NULL || IDCHUNK - c->used < n + 1) {
        size_t cap = n + 1 > IDCHUNK ? n + 1 : IDCHUNK;
        if ((c = risk_malloc(sizeof *c + cap)) == NULL)
            return NULL;
        c->next = js->ids, c->used = 0;
        js->ids = c;
    }
    char *p = c->mem + c->used;
    memcpy(p, id, n);
    p[n] = '\0';
    c->used += n + 1;
    return p;
}

/* The user of id, added if new (ENOMEM: NULL, index unchanged). */
static huser *huser_get(jstore *js, const uint8_t *id, size_t n)
{
    uint64_t h = jhash(id, n);
    if (js->u_cap > 0 && *u_slot(js, id, n, h) != 0)
        return &js->users[*u_slot(js, id, n, h) - 1];
    if (users_room(js, js->u_n + 1) != RISK_OK)
        return NULL;
    const char *keep = n < HUSER_INL ? "" : id_keep(js, id, n);
    if (keep == NULL) {
        risk_err(RISK_ENOMEM, "journal: out of memory");
        return NULL;
    }
    *u_slot(js, id, n, h) = (uint32_t)js->u_n + 1;
    huser *u = &js->users[js->u_n++];
    memset(u, 0, sizeof *u);
    u->hash = h;
    u->len = (uint32_t)n;
    if (n < HUSER_INL)
        memcpy(u->id.inl, id, n);
    else
        u->id.pool = keep;
    return u;
}

/* The chunk of seq, allocated if absent (ENOMEM: unchanged). */
static int chunk_room(jstore *js, uint64_t seq)
{
    size_t c = (size_t)(seq >> HX_SHIFT);
    if (c >= js->hx_cap) {
        size_t cap = js->hx_cap ? js->hx_cap : 16;
        while (cap <= c)
            cap *= 2;
        hxchunk **d = risk_realloc(js->hx, cap * sizeof *d);
        if (d == NULL)
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        memset(d + js->hx_cap, 0, (cap - js->hx_cap) * sizeof *d);
        js->hx = d, js->hx_cap = cap;
    }
    /* calloc: a large block comes zeroed from the system, and costs
     * memory only where slots are used */
    if (js->hx[c] == NULL && (js->hx[c] = risk_calloc(1, sizeof *js->hx[c])) == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    return RISK_OK;
}

int idx_has(const jstore *js, uint64_t seq)
{
    uint64_t off;
    uint32_t len;
    return idx_get(js, seq, &off, &len);
}

static uint32_t *next_of(const jstore *js, uint32_t seq)
{
    return &js->hx[seq >> HX_SHIFT]->next[seq & (HX_SLOTS - 1)];
}

/* The lookups of a user's entry miss the caches three times (the slot,
 * the entry, its id) and idx_add's link a fourth: done here, before the
 * commit takes file_mu, they no longer hold up every other commit. */
void idx_find_users(jstore *js, const uint8_t *buf, phist *ph, size_t k)
{
    pthread_rwlock_rdlock(&js->idx_lock);
    for (size_t i = 0; i < k; i++) {
        ph[i].uix = 0;
        if (ph[i].ulen == 0 || js->u_cap == 0)
            continue;
        const uint8_t *id = buf + ph[i].uat;
        ph[i].uix = *u_slot(js, id, ph[i].ulen, jhash(id, ph[i].ulen));
        if (ph[i].uix != 0 && js->users[ph[i].uix - 1].tail != 0)
            __builtin_prefetch(next_of(js, js->users[ph[i].uix - 1].tail), 1);
    }
    pthread_rwlock_unlock(&js->idx_lock);
}

void idx_prefetch_user(jstore *js, const uint8_t *id, size_t n)
{
    uint64_t h = jhash(id, n);
    pthread_rwlock_rdlock(&js->idx_lock);
    if (js->u_cap > 0)
        __builtin_prefetch(&js->u_tab[h & (js->u_cap - 1)]);
    pthread_rwlock_unlock(&js->idx_lock);
}

int idx_has_room(const jstore *js, const phist *ph, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        size_t c = (size_t)(ph[i].seq >> HX_SHIFT);
        if (!seq_ok(ph[i].seq) || c >= js->hx_cap || js->hx[c] == NULL)
            return 0;
        if (ph[i].ulen > 0 && ph[i].uix == 0)
            return 0;
    }
    return 1;
}

int idx_reserve(jstore *js, const uint8_t *buf, phist *ph, size_t k)
{
    int rc = RISK_OK;
    for (size_t i = 0; rc == RISK_OK && i < k; i++) {
        if (!seq_ok(ph[i].seq))
            return risk_err(RISK_EINVAL, "journal: history seq %" PRIu64
                            " out of the index's range (1 to 2^32 - 1)", ph[i].seq);
        rc = chunk_room(js, ph[i].seq);
        if (rc == RISK_OK && ph[i].ulen > 0) {
            const huser *u = huser_get(js, buf + ph[i].uat, ph[i].ulen);
            if (u == NULL)
                rc = risk_error_last_code();
            else
                ph[i].uix = (uint32_t)(u - js->users) + 1;
        }
    }
    return rc;
}

/* Link seq into u's list, which stays in seq order: at the end, unless
 * two commits of one user finished out of seq order (possible only
 * without the engine's per-user lock), then in place. */
static void huser_link(jstore *js, huser *u, uint32_t seq)
{
    if (u->tail == 0)
        u->head = u->tail = seq;
    else if (seq > u->tail) {
        *next_of(js, u->tail) = seq;
        u->tail = seq;
    } else if (seq < u->head) {
        *next_of(js, seq) = u->head;
        u->head = seq;
    } else {
        uint32_t p = u->head;
        while (*next_of(js, p) != 0 && *next_of(js, p) < seq)
            p = *next_of(js, p);
        *next_of(js, seq) = *next_of(js, p);
        *next_of(js, p) = seq;
    }
}

void idx_add(jstore *js, uint64_t seq, uint64_t off, uint32_t len, uint32_t uix)
{
    hxchunk *c = js->hx[seq >> HX_SHIFT];
    size_t i = seq & (HX_SLOTS - 1);
    c->ol[i] = off << HX_LEN_BITS | len;
    c->next[i] = 0;
    if (uix != 0)
        huser_link(js, &js->users[uix - 1], (uint32_t)seq);
    js->h_n++;
    if (seq > js->h_max)
        js->h_max = seq;
}

void idx_set_off(jstore *js, uint64_t seq, uint64_t off)
{
    uint64_t *v = &js->hx[seq >> HX_SHIFT]->ol[seq & (HX_SLOTS - 1)];
    *v = off << HX_LEN_BITS | (*v & ((1u << HX_LEN_BITS) - 1));
}

/* idx_reserve + idx_add for one item of recovery, whose bytes are
 * untrusted: a seq out of range or seen before is corruption. */
static int idx_push(jstore *js, uint64_t seq, uint64_t off, uint32_t len, const uint8_t *user,
                    size_t ulen)
{
    if (!seq_ok(seq))
        return risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " out of range (1 to 2^32 - 1)",
                        seq);
    if (idx_has(js, seq))
        return risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " appears twice", seq);
    if (off > HX_OFF_MAX || len >= 1u << HX_LEN_BITS)
        return risk_err(RISK_ECORRUPT, "history: item too large or too far into the file");
    int rc = chunk_room(js, seq);
    const huser *u = NULL;
    if (rc == RISK_OK && ulen > 0 && (u = huser_get(js, user, ulen)) == NULL)
        rc = risk_error_last_code();
    if (rc == RISK_OK)
        idx_add(js, seq, off, len, u ? (uint32_t)(u - js->users) + 1 : 0);
    return rc;
}

uint64_t idx_max_seq(const jstore *js)
{
    return js->h_max;
}

void idx_free(jstore *js)
{
    for (size_t i = 0; i < js->hx_cap; i++)
        risk_free(js->hx[i]);
    risk_free(js->hx);
    risk_free(js->u_tab);
    risk_free(js->users);
    while (js->ids != NULL) {
        idchunk *c = js->ids;
        js->ids = c->next;
        risk_free(c);
    }
}

/* ---- replay ---- */

typedef struct replay {
    jstore *js;
    const scan_res *res; /* the header's version, once scan has read it */
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
        /* version 1 had them in seq order; version 2 in any order, each
         * seq once (idx_push) */
        if (rp->res->version == 1 && seq <= rp->max_seq)
            return risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " not above %" PRIu64, seq,
                            rp->max_seq);
        rc = idx_push(rp->js, seq, at, (uint32_t)n, user, ulen);
        if (rc == RISK_OK && seq > rp->max_seq)
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
    /* On an error the items queued before it go too: the consumer
     * applies them first, and an earlier record that does not decode is
     * reported as the sequential path reports it (the first damage). */
    pbatch *b = pp->cur;
    pp->cur = NULL;
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
    pp.wrp.res = &pp.res;
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
        if (users_room(js, users) != RISK_OK)
            risk_error_clear();
    }
    risk_free(ht);
    replay rp = {.js = js, .res = res};
    int rc = PIPE_NOTHREAD;
    if (r->size >= journal_pipe_min)
        rc = pipe_replay(&rp, r, res);
    if (rc == PIPE_NOTHREAD) /* small, or no thread: one pass here */
        rc = scan(r, 0, replay_frame, &rp, res);
    return rc;
}
