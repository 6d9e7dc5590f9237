/* The journal store (R-CC-3, R-ST-5): one append-only file of committed
 * transactions in front of an in-memory store. docs/journal-format.md is
 * the format's reference; this comment explains the moving parts.
 *
 * Live users, events, policies and meta sit in a risk_memstore (made with
 * keep_history 0); our callback table wraps its table. Writes go both to
 * the memstore txn and to a redo buffer in our txn. Commit: memstore
 * prepare (may fail: nothing written) → under file_mu append ONE frame
 * holding the whole redo → memstore apply (cannot fail) → drop file_mu →
 * wait for durability (group commit: one fdatasync covers every frame
 * written before it started). History items stay on disk: an index maps
 * seq → (offset, length) of the encoded item, plus a per-user list of
 * positions in that index, and read_history preads them back.
 *
 * Locks, always taken in this order: file_mu (appends, compaction,
 * backup; it also freezes the memstore's committed state, since apply only
 * runs under it) → idx_lock (the history index and fd for readers) →
 * sync_mu (group-commit counters). The disk wait holds none of them. */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN 32                  /* file header */
#define FRAME_HDR 16                /* len u32, txn u64, crc u32 */
#define FRAME_MAX (256u << 20)      /* largest payload accepted */
#define SNAP_FRAME (1u << 20)       /* payload size of compaction frames */
#define RD_CHUNK (1u << 20)         /* read-ahead of the recovery reader */
#define HIST_BATCH 64               /* history items read per index lock */
#define FORMAT_VERSION 1
static const uint8_t MAGIC[8] = {'R', 'I', 'S', 'K', 'J', 'N', 'L', 0};

/* Operation tags inside a frame's payload: [tag u8][len u32][bytes]. */
enum { OP_USER = 1, OP_EVENT, OP_POLICY, OP_POLICY_REMOVE, OP_META, OP_HISTORY };

/* ---- CRC32C (Castagnoli), slicing-by-8, SSE4.2 when the CPU has it ---- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t n)
{
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = (uint32_t)_mm_crc32_u64(c, v);
    }
    for (; n > 0; p++, n--)
        c = _mm_crc32_u8(c, *p);
    return c;
}
#define HAVE_CRC_HW 1
#endif

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#ifdef HAVE_CRC_HW
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t risk_crc32c_portable(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
            crc_tab[4][lo >> 24] ^ crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^
            crc_tab[0][p[7]];
    }
    for (; n > 0; p++, n--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p) & 0xff];
    return ~c;
}

uint32_t risk_crc32c(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
#ifdef HAVE_CRC_HW
    if (crc_hw)
        return ~crc_sse42(~crc, data, n);
#endif
    return risk_crc32c_portable(crc, data, n);
}

/* ---- little-endian fields ---- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- fault injection for tests (lib/internal.h) ---- */

static atomic_int hook_write_n, hook_write_err, hook_sync_n, hook_compact_step;

void risk_journal_test_fail_write(int n, int err)
{
    atomic_store(&hook_write_err, err ? err : EIO);
    atomic_store(&hook_write_n, n);
}
void risk_journal_test_fail_sync(int n)
{
    atomic_store(&hook_sync_n, n);
}
void risk_journal_test_compact_crash(int step)
{
    atomic_store(&hook_compact_step, step);
}
/* 1 if the armed counter reaches zero with this call. */
static int hook_fires(atomic_int *n)
{
    int v = atomic_load(n);
    while (v > 0 && !atomic_compare_exchange_weak(n, &v, v - 1))
        ;
    return v == 1;
}

/* ---- file I/O ---- */

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    if (hook_fires(&hook_write_n)) { /* a write cut short, as a full disk does */
        if (pwrite(fd, p, n / 2, (off_t)off) < 0)
            return -1;
        errno = atomic_load(&hook_write_err);
        return -1;
    }
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return -1;
        }
        p += w, n -= (size_t)w, off += (uint64_t)w;
    }
    return 0;
}

static int datasync(int fd)
{
    if (hook_fires(&hook_sync_n)) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

/* Make a created, replaced or renamed entry of path durable. */
static int fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? risk_strdup(".")
                              : risk_strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (dir == NULL)
        return risk_err(RISK_ENOMEM, "path: out of memory");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 || datasync(fd) != 0 ? -1 : 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    rc = rc ? risk_err(RISK_EIO, "path: cannot sync directory %s: %s", dir, strerror(e)) : 0;
    risk_free(dir);
    return rc;
}

/* Exclusive writer lock: an OFD lock belongs to the open file description,
 * so a second open in the same process conflicts too; the kernel drops it
 * when the last descriptor closes or the process dies. */
static int lock_file(int fd, const char *path)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return RISK_OK;
    if (errno == EAGAIN || errno == EACCES)
        return risk_err(RISK_EBUSY, "path: %s is open for writing elsewhere", path);
    return risk_err(RISK_EIO, "path: cannot lock %s: %s", path, strerror(errno));
}

static void new_salt(uint8_t salt[8])
{
    if (getentropy(salt, 8) == 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15u ^ (uint64_t)ts.tv_sec ^
                 (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)salt;
    put64(salt, v);
}

static void make_header(uint8_t h[HDR_LEN], const uint8_t salt[8])
{
    memset(h, 0, HDR_LEN);
    memcpy(h, MAGIC, 8);
    put32(h + 8, FORMAT_VERSION);
    put32(h + 12, 0); /* flags */
    memcpy(h + 16, salt, 8);
    put32(h + 24, 0); /* reserved */
    put32(h + 28, risk_crc32c(0, h, 28));
}

/* Fill a frame's header; buf holds FRAME_HDR bytes then the payload. */
static void seal_frame(uint8_t *buf, size_t payload, uint64_t txn, const uint8_t salt[8])
{
    put32(buf, (uint32_t)payload);
    put64(buf + 4, txn);
    uint32_t c = risk_crc32c(0, salt, 8);
    c = risk_crc32c(c, buf, 12);
    put32(buf + 12, risk_crc32c(c, buf + FRAME_HDR, payload));
}

/* ---- growable byte buffer ---- */

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

/* Append an op header for n bytes; *dst receives where the n bytes go. */
static int bytes_op(bytes *b, uint8_t tag, size_t n, uint8_t **dst)
{
    if (n > FRAME_MAX)
        return risk_err(RISK_EINVAL, "record: too large for the journal");
    size_t need = b->len + 5 + n;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        uint8_t *p = risk_realloc(b->p, cap);
        if (p == NULL)
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        b->p = p, b->cap = cap;
    }
    b->p[b->len] = tag;
    put32(b->p + b->len + 1, (uint32_t)n);
    *dst = b->p + b->len + 5;
    b->len = need;
    return RISK_OK;
}

/* ---- the store ---- */

typedef struct ulist { /* one user's history: positions in the global index */
    char *id;
    uint64_t hash;
    uint32_t *pos;
    uint32_t n, cap;
} ulist;

typedef struct jstore {
    risk_memstore *ms;
    risk_store mt; /* the memstore's table */
    char *path;
    int fd, read_only;
    uint32_t durability, interval_ms;
    uint8_t salt[8];

    pthread_mutex_t file_mu;
    uint64_t end, next_txn;

    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    uint64_t written, synced; /* frames written / covered by a finished sync */
    int syncing, stop, has_thread;
    pthread_t thread;
    atomic_int poisoned;

    pthread_rwlock_t idx_lock;
    uint64_t *h_seq, *h_off;
    uint32_t *h_len;
    size_t h_n, h_cap;
    ulist *u_tab; /* open addressing, power-of-two capacity */
    size_t u_n, u_cap;
} jstore;

typedef struct phist { /* a history item of a txn, indexed after its write */
    uint64_t seq;
    size_t at; /* offset of the encoding in the frame buffer */
    uint32_t len;
    char *user; /* NULL: no user */
} phist;

typedef struct jtxn {
    void *mtxn;
    bytes redo; /* FRAME_HDR reserved bytes, then the payload */
    phist *ph;
    size_t n_ph, cap_ph;
} jtxn;

/* ---- history index ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    return h;
}

static ulist *ulist_find_h(jstore *js, const char *id, uint64_t h)
{
    if (js->u_cap == 0)
        return NULL;
    for (size_t i = h & (js->u_cap - 1);; i = (i + 1) & (js->u_cap - 1)) {
        if (js->u_tab[i].id == NULL)
            return NULL;
        if (js->u_tab[i].hash == h && strcmp(js->u_tab[i].id, id) == 0)
            return &js->u_tab[i];
    }
}

static ulist *ulist_find(jstore *js, const char *id)
{
    return ulist_find_h(js, id, hash_str(id));
}

static ulist *ulist_get(jstore *js, const char *id) /* find or insert; NULL: ENOMEM */
{
    uint64_t h = hash_str(id);
    ulist *u = ulist_find_h(js, id, h);
    if (u != NULL)
        return u;
    if (2 * (js->u_n + 1) > js->u_cap) {
        size_t cap = js->u_cap ? 2 * js->u_cap : 64;
        ulist *t = risk_calloc(cap, sizeof *t);
        if (t == NULL)
            return NULL;
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
    }
    char *dup = risk_strdup(id);
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

/* Grow an array to hold need elements; NULL (array untouched) on ENOMEM.
 * A macro so each array keeps its own type (no void ** punning). */
static void *grow_(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = risk_realloc(p, c * elem);
    if (q != NULL)
        *cap = c;
    return q;
}
#define GROW(arr, cap, need)                                                               \
    ((need) <= *(cap) ? 0                                                                  \
     : (tmp_ = grow_((arr), (cap), (need), sizeof *(arr))) != NULL ? ((arr) = tmp_, 0) : -1)

/* Make room for k more items (users named in ph) so idx_add cannot fail. */
static int idx_reserve(jstore *js, const phist *ph, size_t k)
{
    size_t need = js->h_n + k, c1 = js->h_cap, c2 = js->h_cap, c3 = js->h_cap;
    void *tmp_;
    if (need > UINT32_MAX)
        return risk_err(RISK_EINVAL, "journal: history index full");
    if (GROW(js->h_seq, &c1, need) || GROW(js->h_off, &c2, need) || GROW(js->h_len, &c3, need))
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    js->h_cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    for (size_t i = 0; i < k; i++) {
        if (ph[i].user == NULL)
            continue;
        ulist *u = ulist_get(js, ph[i].user);
        size_t cap = u ? u->cap : 0;
        if (u == NULL || GROW(u->pos, &cap, (size_t)u->n + k))
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        u->cap = (uint32_t)cap;
    }
    return RISK_OK;
}

static void idx_add(jstore *js, uint64_t seq, uint64_t off, uint32_t len, const char *user)
{
    if (user != NULL) {
        ulist *u = ulist_find(js, user);
        u->pos[u->n++] = (uint32_t)js->h_n;
    }
    js->h_seq[js->h_n] = seq, js->h_off[js->h_n] = off, js->h_len[js->h_n] = len;
    js->h_n++;
}

/* idx_reserve + idx_add for one item with one hash lookup (recovery). */
static int idx_push(jstore *js, uint64_t seq, uint64_t off, uint32_t len, const char *user)
{
    size_t c1 = js->h_cap, c2 = js->h_cap, c3 = js->h_cap, cap;
    void *tmp_;
    if (js->h_n + 1 > UINT32_MAX)
        return risk_err(RISK_EINVAL, "journal: history index full");
    if (GROW(js->h_seq, &c1, js->h_n + 1) || GROW(js->h_off, &c2, js->h_n + 1) ||
        GROW(js->h_len, &c3, js->h_n + 1))
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    js->h_cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    if (user != NULL) {
        ulist *u = ulist_get(js, user);
        if (u == NULL || (cap = u->cap, GROW(u->pos, &cap, (size_t)u->n + 1)))
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        u->cap = (uint32_t)cap;
        u->pos[u->n++] = (uint32_t)js->h_n;
    }
    js->h_seq[js->h_n] = seq, js->h_off[js->h_n] = off, js->h_len[js->h_n] = len;
    js->h_n++;
    return RISK_OK;
}

static uint64_t idx_max_seq(const jstore *js)
{
    return js->h_n ? js->h_seq[js->h_n - 1] : 0;
}

/* ---- recovery: a buffered reader and the frame scanner ---- */

typedef struct rd {
    int fd;
    uint64_t size, base;
    uint8_t *buf;
    size_t cap, n;
} rd;

/* [off, off+len) of the file, len ≤ size - off; NULL with an error set. */
static const uint8_t *rd_get(rd *r, uint64_t off, size_t len)
{
    if (off >= r->base && off + len <= r->base + r->n)
        return r->buf + (off - r->base);
    size_t want = len > RD_CHUNK ? len : RD_CHUNK;
    if (want > r->size - off)
        want = (size_t)(r->size - off);
    if (want > r->cap) {
        uint8_t *b = risk_realloc(r->buf, want);
        if (b == NULL) {
            risk_err(RISK_ENOMEM, "journal: out of memory");
            return NULL;
        }
        r->buf = b, r->cap = want;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(r->fd, r->buf + got, want - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    r->base = off, r->n = got;
    if (got < len) {
        risk_err(RISK_EIO, "journal: read failed at byte offset %" PRIu64, off);
        return NULL;
    }
    return r->buf;
}

/* 1: a valid frame at off whose number is in [lo, hi]; 0: not one; <0: error. */
static int frame_at(rd *r, const uint8_t salt[8], uint64_t off, uint64_t lo, uint64_t hi,
                    uint32_t *len_out)
{
    if (r->size - off < FRAME_HDR + 1)
        return 0;
    const uint8_t *h = rd_get(r, off, FRAME_HDR);
    if (h == NULL)
        return risk_error_last_code();
    uint32_t len = get32(h), crc = get32(h + 12);
    uint64_t txn = get64(h + 4);
    if (len == 0 || len > FRAME_MAX || len > r->size - off - FRAME_HDR || txn < lo || txn > hi)
        return 0;
    uint32_t c = risk_crc32c(risk_crc32c(0, salt, 8), h, 12);
    const uint8_t *p = rd_get(r, off + FRAME_HDR, len);
    if (p == NULL)
        return risk_error_last_code();
    if (risk_crc32c(c, p, len) != crc)
        return 0;
    *len_out = len;
    return 1;
}

typedef int (*frame_fn)(void *arg, uint64_t off, const uint8_t *payload, uint32_t len);

typedef struct scan_res {
    uint64_t good_end, frames, dropped;
    int torn_header; /* a prefix of a header only: treat as empty */
    uint8_t salt[8];
} scan_res;

/* Walk header and frames, calling fn on each valid frame. Where a frame is
 * not valid (short, bad length, wrong number or checksum), everything after
 * it is searched for a valid frame with a number ≥ the expected one: if
 * one exists the damage is in the middle (RISK_ECORRUPT), otherwise it is a
 * torn tail (dropped, or RISK_ECORRUPT when strict). */
static int scan(rd *r, int strict, frame_fn fn, void *arg, scan_res *res)
{
    memset(res, 0, sizeof *res);
    if (r->size < HDR_LEN) {
        const uint8_t *h = r->size ? rd_get(r, 0, (size_t)r->size) : MAGIC;
        if (h == NULL)
            return risk_error_last_code();
        if (memcmp(h, MAGIC, r->size < 8 ? (size_t)r->size : 8) != 0)
            return risk_err(RISK_ECORRUPT, "journal: not a journal (bad magic at byte offset 0)");
        if (strict && r->size > 0)
            return risk_err(RISK_ECORRUPT, "journal: torn header at byte offset 0");
        res->torn_header = 1, res->dropped = r->size;
        return RISK_OK;
    }
    const uint8_t *h = rd_get(r, 0, HDR_LEN);
    if (h == NULL)
        return risk_error_last_code();
    if (memcmp(h, MAGIC, 8) != 0)
        return risk_err(RISK_ECORRUPT, "journal: not a journal (bad magic at byte offset 0)");
    if (get32(h + 28) != risk_crc32c(0, h, 28))
        return risk_err(RISK_ECORRUPT, "journal: header checksum mismatch at byte offset 28");
    if (get32(h + 8) != FORMAT_VERSION)
        return risk_err(RISK_ECORRUPT, "journal: format version %" PRIu32
                        " is not supported (this library reads version %d)",
                        get32(h + 8), FORMAT_VERSION);
    if (get32(h + 12) != 0 || get32(h + 24) != 0)
        return risk_err(RISK_ECORRUPT, "journal: unknown header flags 0x%" PRIx32
                        " or reserved field at byte offset 12", get32(h + 12));
    memcpy(res->salt, h + 16, 8);
    uint64_t off = HDR_LEN, txn = 1;
    while (off < r->size) {
        uint32_t len = 0;
        int ok = frame_at(r, res->salt, off, txn, txn, &len);
        if (ok < 0)
            return ok;
        if (ok) {
            const uint8_t *p = rd_get(r, off + FRAME_HDR, len);
            int rc = p == NULL ? risk_error_last_code() : fn(arg, off, p, len);
            if (rc != RISK_OK)
                return rc;
            off += FRAME_HDR + (uint64_t)len, txn++, res->frames++;
            continue;
        }
        for (uint64_t q = off + 1; q < r->size; q++) {
            ok = frame_at(r, res->salt, q, txn, txn + (r->size - q) / (FRAME_HDR + 1), &len);
            if (ok < 0)
                return ok;
            if (ok)
                return risk_err(RISK_ECORRUPT, "journal: damaged frame at byte offset %" PRIu64
                                " (a valid frame follows at byte offset %" PRIu64 ")", off, q);
        }
        if (strict)
            return risk_err(RISK_ECORRUPT, "journal: torn tail at byte offset %" PRIu64
                            " (%" PRIu64 " bytes)", off, r->size - off);
        res->dropped = r->size - off;
        break;
    }
    res->good_end = off;
    return RISK_OK;
}

/* ---- replay: decode a frame's ops (and apply them when js is set) ---- */

typedef struct replay {
    jstore *js;   /* NULL: check only */
    void *mtxn;   /* the memstore txn of the frame being replayed */
    uint64_t max_seq;
    struct fix { char *id; uint64_t version; } *fix; /* see op_user */
    size_t n_fix, cap_fix;
    unsigned in_batch; /* frames in mtxn */
    uint64_t end;      /* end of the last frame replayed */
} replay;

typedef int (*op_fn)(replay *rp, uint64_t at, const uint8_t *p, size_t n);

/* Replay puts a batch of frames in one memstore transaction, and the
 * memstore accepts a user only at its committed version + 1, while a
 * compacted journal holds each user's latest version only and a batch may
 * hold several versions of one user. So every user is put at committed + 1
 * and, after the batch's commit, its real version is set on the stored
 * record (fix_versions; the last put of a user wins, as in the file).
 * Replay runs before open returns, on one thread, so nothing else sees the
 * record in between.
 * TODO(memstore): a risk_memstore load call that skips the version check
 * would make this unnecessary. */
static int get_version(const risk_user *u, void *arg)
{
    *(uint64_t *)arg = u->version;
    return 0;
}

static int op_user(replay *rp, uint64_t at, const uint8_t *p, size_t n)
{
    (void)at;
    risk_user *u = NULL;
    int rc = risk_user_decode(&u, p, n);
    if (rc == RISK_OK && rp->js != NULL) {
        jstore *js = rp->js;
        uint64_t base = 0;
        rc = js->mt.view_user(js->mt.ctx, u->id, get_version, &base);
        rc = rc == RISK_ENOTFOUND ? RISK_OK : rc;
        if (rc == RISK_OK && u->version != base + 1) {
            void *tmp_;
            if (GROW(rp->fix, &rp->cap_fix, rp->n_fix + 1)) {
                rc = risk_err(RISK_ENOMEM, "journal: out of memory");
            } else if ((rp->fix[rp->n_fix].id = risk_strdup(u->id)) == NULL) {
                rc = risk_err(RISK_ENOMEM, "journal: out of memory");
            } else {
                rp->fix[rp->n_fix++].version = u->version;
                u->version = base + 1;
            }
        }
        if (rc == RISK_OK)
            rc = js->mt.put_user(js->mt.ctx, rp->mtxn, u);
    }
    risk_user_free(u);
    return rc;
}

static int set_version(const risk_user *u, void *arg)
{
    ((risk_user *)u)->version = *(const uint64_t *)arg; /* see op_user */
    return 0;
}

static void fix_versions(replay *rp, int apply)
{
    for (size_t i = 0; i < rp->n_fix; i++) {
        if (apply)
            rp->js->mt.view_user(rp->js->mt.ctx, rp->fix[i].id, set_version, &rp->fix[i].version);
        risk_free(rp->fix[i].id);
    }
    rp->n_fix = 0;
}

static int op_event(replay *rp, uint64_t at, const uint8_t *p, size_t n)
{
    (void)at;
    risk_event *e = NULL;
    int rc = risk_event_decode(&e, p, n);
    if (rc == RISK_OK && rp->js != NULL)
        rc = rp->js->mt.put_event(rp->js->mt.ctx, rp->mtxn, e);
    risk_event_free(e);
    return rc;
}

static int op_policy(replay *rp, uint64_t at, const uint8_t *p, size_t n)
{
    (void)at;
    risk_policy *pol = NULL;
    int rc = risk_policy_decode(&pol, p, n);
    if (rc == RISK_OK && rp->js != NULL)
        rc = rp->js->mt.put_policy(rp->js->mt.ctx, rp->mtxn, pol);
    risk_policy_free(pol);
    return rc;
}

static int op_policy_remove(replay *rp, uint64_t at, const uint8_t *p, size_t n)
{
    (void)at;
    if (n == 0 || n > RISK_ID_MAX || memchr(p, 0, n) != NULL)
        return risk_err(RISK_ECORRUPT, "policy name: invalid");
    char *name = risk_strndup((const char *)p, n);
    if (name == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    int rc = risk_check_id("policy name", name) ? RISK_ECORRUPT : RISK_OK;
    if (rc == RISK_OK && rp->js != NULL) {
        /* two transactions may both remove one policy: the second is a no-op */
        rc = rp->js->mt.remove_policy(rp->js->mt.ctx, rp->mtxn, name);
        if (rc == RISK_ENOTFOUND)
            rc = RISK_OK;
    }
    risk_free(name);
    return rc;
}

/* [key length u16][key][value ≤ 256] */
static int op_meta(replay *rp, uint64_t at, const uint8_t *p, size_t n)
{
    (void)at;
    size_t klen = n >= 2 ? (size_t)p[0] | (size_t)p[1] << 8 : 0;
    if (n < 2 || klen == 0 || klen > RISK_ID_MAX || n - 2 < klen || n - 2 - klen > 256 ||
        memchr(p + 2, 0, klen) != NULL)
        return risk_err(RISK_ECORRUPT, "meta: invalid");
    char *key = risk_strndup((const char *)p + 2, klen);
    if (key == NULL)
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    int rc = RISK_OK;
    if (rp->js != NULL)
        rc = rp->js->mt.put_meta(rp->js->mt.ctx, rp->mtxn, key, p + 2 + klen, n - 2 - klen);
    risk_free(key);
    return rc;
}

static int op_history(replay *rp, uint64_t at, const uint8_t *p, size_t n)
{
    risk_history *h = NULL;
    int rc = risk_history_decode(&h, p, n);
    if (rc != RISK_OK)
        return rc;
    if (h->seq <= rp->max_seq)
        rc = risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " not above %" PRIu64, h->seq,
                      rp->max_seq);
    if (rc == RISK_OK && rp->js != NULL)
        rc = idx_push(rp->js, h->seq, at, (uint32_t)n, h->user_id);
    if (rc == RISK_OK)
        rp->max_seq = h->seq;
    risk_history_free(h);
    return rc;
}

static const op_fn op_table[] = {
    [OP_USER] = op_user,     [OP_EVENT] = op_event, [OP_POLICY] = op_policy,
    [OP_POLICY_REMOVE] = op_policy_remove, [OP_META] = op_meta, [OP_HISTORY] = op_history,
};
#define N_OPS (sizeof op_table / sizeof op_table[0])

#define REPLAY_BATCH 256 /* frames per memstore transaction during recovery */

/* Commit (or with ok 0, drop) the batch of replayed frames. */
static int replay_flush(replay *rp, int ok)
{
    if (rp->js == NULL || rp->mtxn == NULL)
        return RISK_OK;
    int rc = RISK_OK;
    if (ok)
        rc = rp->js->mt.commit(rp->js->mt.ctx, rp->mtxn);
    else
        rp->js->mt.rollback(rp->js->mt.ctx, rp->mtxn);
    rp->mtxn = NULL, rp->in_batch = 0;
    fix_versions(rp, ok && rc == RISK_OK);
    if (rc == RISK_ECONFLICT || rc == RISK_EINVAL || rc == RISK_EEXISTS)
        rc = risk_err(RISK_ECORRUPT, "journal: inconsistent records in the frames before "
                      "byte offset %" PRIu64, rp->end);
    return rc;
}

static int replay_frame(void *arg, uint64_t off, const uint8_t *p, uint32_t len)
{
    replay *rp = arg;
    jstore *js = rp->js;
    int rc = RISK_OK;
    if (js != NULL && rp->mtxn == NULL && (rc = js->mt.begin(js->mt.ctx, NULL, &rp->mtxn)) != 0) {
        rp->mtxn = NULL;
        return rc;
    }
    uint32_t pos = 0;
    while (rc == RISK_OK && pos < len) {
        uint32_t n = len - pos >= 5 ? get32(p + pos + 1) : 0;
        if (len - pos < 5 || n > len - pos - 5 || p[pos] >= N_OPS || op_table[p[pos]] == NULL) {
            rc = risk_err(RISK_ECORRUPT, "op: bad tag or length");
            break;
        }
        rc = op_table[p[pos]](rp, off + FRAME_HDR + pos + 5, p + pos + 5, n);
        pos += 5 + n;
    }
    rp->end = off + FRAME_HDR + len;
    if (rc == RISK_OK && ++rp->in_batch >= REPLAY_BATCH)
        return replay_flush(rp, 1);
    if (rc == RISK_ECORRUPT || rc == RISK_EINVAL || rc == RISK_ECONFLICT ||
        rc == RISK_EEXISTS) {
        char why[256];
        snprintf(why, sizeof why, "%s", risk_error_last());
        rc = risk_err(RISK_ECORRUPT, "journal: bad record in frame at byte offset %" PRIu64
                      " (payload byte %" PRIu32 "): %s", off, pos, why);
    }
    return rc;
}

/* ---- transactions ---- */

static int check_writable(jstore *js)
{
    if (js->read_only)
        return risk_err(RISK_EREADONLY, "store: the journal is open read-only");
    if (atomic_load(&js->poisoned))
        return risk_err(RISK_EIO, "store: an earlier sync failed; the journal refuses writes");
    return RISK_OK;
}

static void txn_free(jtxn *t)
{
    for (size_t i = 0; i < t->n_ph; i++)
        risk_free(t->ph[i].user);
    risk_free(t->ph);
    risk_free(t->redo.p);
    risk_free(t);
}

static int j_begin(void *ctx, const char *user_id, void **txn)
{
    jstore *js = ctx;
    jtxn *t = risk_calloc(1, sizeof *t);
    if (t == NULL)
        return risk_err(RISK_ENOMEM, "txn: out of memory");
    t->redo.len = FRAME_HDR;
    int rc = js->mt.begin(js->mt.ctx, user_id, &t->mtxn);
    if (rc != RISK_OK) {
        risk_free(t);
        return rc;
    }
    *txn = t;
    return RISK_OK;
}

static void j_rollback(void *ctx, void *txn)
{
    jstore *js = ctx;
    jtxn *t = txn;
    js->mt.rollback(js->mt.ctx, t->mtxn);
    txn_free(t);
}

typedef int (*enc_fn)(uint8_t *buf, size_t cap, size_t *len, const void *rec);
static int enc_user(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_user_encode(b, c, l, r); }
static int enc_event(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_event_encode(b, c, l, r); }
static int enc_policy(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_policy_encode(b, c, l, r); }
static int enc_history(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_history_encode(b, c, l, r); }

/* Encode rec as an op of b; *at receives where its bytes start. */
static int put_op(bytes *b, uint8_t tag, enc_fn enc, const void *rec, size_t *at)
{
    size_t n = 0;
    uint8_t *dst;
    int rc = enc(NULL, 0, &n, rec);
    if (rc == RISK_OK || rc == RISK_ERANGE)
        rc = bytes_op(b, tag, n, &dst);
    if (rc == RISK_OK)
        rc = enc(dst, n, &n, rec);
    if (rc == RISK_OK && at != NULL)
        *at = (size_t)(dst - b->p);
    return rc;
}

/* Log first (may fail with nothing changed), then forward; undo the log if
 * the memstore refuses. */
static int logged_put(void *ctx, void *txn, uint8_t tag, enc_fn enc, const void *rec)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t mark = t->redo.len;
    int rc = check_writable(js);
    if (rc == RISK_OK)
        rc = put_op(&t->redo, tag, enc, rec, NULL);
    if (rc == RISK_OK && tag == OP_USER)
        rc = js->mt.put_user(js->mt.ctx, t->mtxn, rec);
    else if (rc == RISK_OK && tag == OP_EVENT)
        rc = js->mt.put_event(js->mt.ctx, t->mtxn, rec);
    else if (rc == RISK_OK)
        rc = js->mt.put_policy(js->mt.ctx, t->mtxn, rec);
    if (rc != RISK_OK)
        t->redo.len = mark;
    return rc;
}

static int j_put_user(void *ctx, void *txn, const risk_user *u)
{
    return logged_put(ctx, txn, OP_USER, enc_user, u);
}
static int j_put_event(void *ctx, void *txn, const risk_event *e)
{
    return logged_put(ctx, txn, OP_EVENT, enc_event, e);
}
static int j_put_policy(void *ctx, void *txn, const risk_policy *p)
{
    return logged_put(ctx, txn, OP_POLICY, enc_policy, p);
}

static int j_remove_policy(void *ctx, void *txn, const char *name)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t mark = t->redo.len;
    uint8_t *dst;
    int rc = check_writable(js);
    if (rc == RISK_OK && name == NULL)
        rc = risk_err(RISK_EINVAL, "name: NULL");
    if (rc == RISK_OK && (rc = bytes_op(&t->redo, OP_POLICY_REMOVE, strlen(name), &dst)) == 0)
        memcpy(dst, name, strlen(name));
    if (rc == RISK_OK)
        rc = js->mt.remove_policy(js->mt.ctx, t->mtxn, name);
    if (rc != RISK_OK)
        t->redo.len = mark;
    return rc;
}

static int j_put_meta(void *ctx, void *txn, const char *key, const uint8_t *buf, size_t len)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t mark = t->redo.len, klen = key ? strlen(key) : 0;
    uint8_t *dst;
    int rc = check_writable(js);
    if (rc == RISK_OK && (klen == 0 || klen > RISK_ID_MAX || len > 256 || (len && !buf)))
        rc = risk_err(RISK_EINVAL, "key: NULL, empty or too long, or value over 256 bytes");
    if (rc == RISK_OK && (rc = bytes_op(&t->redo, OP_META, 2 + klen + len, &dst)) == 0) {
        dst[0] = (uint8_t)klen, dst[1] = (uint8_t)(klen >> 8);
        memcpy(dst + 2, key, klen);
        if (len)
            memcpy(dst + 2 + klen, buf, len);
    }
    if (rc == RISK_OK)
        rc = js->mt.put_meta(js->mt.ctx, t->mtxn, key, buf, len);
    if (rc != RISK_OK)
        t->redo.len = mark;
    return rc;
}

static int j_reserve_seq(void *ctx, void *txn, uint64_t *seq)
{
    jstore *js = ctx;
    int rc = check_writable(js);
    return rc ? rc : js->mt.reserve_seq(js->mt.ctx, ((jtxn *)txn)->mtxn, seq);
}

static int j_append_history(void *ctx, void *txn, const risk_history *item)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t mark = t->redo.len, at = 0;
    int rc = check_writable(js);
    if (rc == RISK_OK && item == NULL)
        rc = risk_err(RISK_EINVAL, "item: NULL");
    if (rc == RISK_OK && t->n_ph > 0 && item->seq <= t->ph[t->n_ph - 1].seq)
        rc = risk_err(RISK_EINVAL, "item: seq not increasing within the transaction");
    void *tmp_;
    if (rc == RISK_OK && GROW(t->ph, &t->cap_ph, t->n_ph + 1))
        rc = risk_err(RISK_ENOMEM, "txn: out of memory");
    char *user = NULL;
    if (rc == RISK_OK && item->user_id != NULL && (user = risk_strdup(item->user_id)) == NULL)
        rc = risk_err(RISK_ENOMEM, "txn: out of memory");
    if (rc == RISK_OK)
        rc = put_op(&t->redo, OP_HISTORY, enc_history, item, &at);
    if (rc == RISK_OK)
        rc = js->mt.append_history(js->mt.ctx, t->mtxn, item);
    if (rc != RISK_OK) {
        t->redo.len = mark;
        risk_free(user);
        return rc;
    }
    t->ph[t->n_ph++] = (phist){item->seq, at, (uint32_t)(t->redo.len - at), user};
    return RISK_OK;
}

/* ---- durability ---- */

/* Called with sync_mu held and no sync running: one fdatasync covering
 * every frame written so far. Returns with sync_mu held. */
static int sync_now(jstore *js)
{
    uint64_t target = js->written;
    int fd = js->fd;
    js->syncing = 1;
    pthread_mutex_unlock(&js->sync_mu);
    int rc = datasync(fd);
    int e = errno;
    pthread_mutex_lock(&js->sync_mu);
    js->syncing = 0;
    if (rc == 0) {
        if (target > js->synced)
            js->synced = target;
    } else {
        /* After a failed fdatasync the kernel may have dropped the dirty
         * pages and cleared the error: what the file holds is unknown, and
         * retrying would report success over lost data (the PostgreSQL
         * "fsyncgate" lesson). So the journal refuses every later write. */
        atomic_store(&js->poisoned, 1);
    }
    pthread_cond_broadcast(&js->sync_cv);
    return rc == 0 ? RISK_OK : risk_err(RISK_EIO, "journal: fdatasync failed: %s", strerror(e));
}

/* Group commit: return once a sync that started after frame `my` was
 * written has finished. A thread finding a sync running waits for it and
 * then starts the next one itself if still not covered. */
static int wait_durable(jstore *js, uint64_t my)
{
    int rc = RISK_OK;
    pthread_mutex_lock(&js->sync_mu);
    while (js->synced < my && rc == RISK_OK) {
        if (atomic_load(&js->poisoned))
            rc = risk_err(RISK_EIO, "journal: a sync failed; this commit may not be durable");
        else if (js->syncing)
            pthread_cond_wait(&js->sync_cv, &js->sync_mu);
        else
            rc = sync_now(js);
    }
    pthread_mutex_unlock(&js->sync_mu);
    return rc;
}

/* Durability normal: sync every interval when something was written. */
static void *sync_thread(void *arg)
{
    jstore *js = arg;
    pthread_mutex_lock(&js->sync_mu);
    while (!js->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += js->interval_ms / 1000;
        ts.tv_nsec += (long)(js->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&js->sync_cv, &js->sync_mu, &ts);
        if (!js->stop && !js->syncing && js->written > js->synced && !atomic_load(&js->poisoned))
            sync_now(js);
    }
    pthread_mutex_unlock(&js->sync_mu);
    return NULL;
}

static int j_commit(void *ctx, void *txn)
{
    jstore *js = ctx;
    jtxn *t = txn;
    size_t payload = t->redo.len - FRAME_HDR;
    if (payload == 0) { /* nothing logged: a read-only transaction */
        int rc = js->mt.commit(js->mt.ctx, t->mtxn);
        txn_free(t);
        return rc;
    }
    uint64_t my = 0;
    pthread_mutex_lock(&js->file_mu);
    int rc = check_writable(js);
    if (rc == RISK_OK && payload > FRAME_MAX)
        rc = risk_err(RISK_EINVAL, "txn: larger than a journal frame");
    if (rc == RISK_OK && t->n_ph > 0 && t->ph[0].seq <= idx_max_seq(js))
        rc = risk_err(RISK_EINVAL, "txn: history seq not above the last committed one");
    if (rc == RISK_OK) {
        pthread_rwlock_wrlock(&js->idx_lock);
        rc = idx_reserve(js, t->ph, t->n_ph);
        pthread_rwlock_unlock(&js->idx_lock);
    }
    if (rc == RISK_OK && (rc = risk_memstore_prepare(js->ms, t->mtxn)) == RISK_OK) {
        seal_frame(t->redo.p, payload, js->next_txn, js->salt);
        if (pwrite_all(js->fd, t->redo.p, t->redo.len, js->end) != 0) {
            rc = risk_err(RISK_EIO, "journal: write failed: %s", strerror(errno));
            if (ftruncate(js->fd, (off_t)js->end) != 0)
                atomic_store(&js->poisoned, 1); /* a partial frame may remain */
        } else {
            pthread_rwlock_wrlock(&js->idx_lock);
            for (size_t i = 0; i < t->n_ph; i++)
                idx_add(js, t->ph[i].seq, js->end + t->ph[i].at, t->ph[i].len, t->ph[i].user);
            pthread_rwlock_unlock(&js->idx_lock);
            js->end += t->redo.len, js->next_txn++;
            risk_memstore_apply(js->ms, t->mtxn);
            t->mtxn = NULL;
            pthread_mutex_lock(&js->sync_mu);
            my = ++js->written;
            pthread_mutex_unlock(&js->sync_mu);
        }
    }
    pthread_mutex_unlock(&js->file_mu);
    if (t->mtxn != NULL) /* not applied: prepare or the write failed */
        js->mt.rollback(js->mt.ctx, t->mtxn);
    else if (js->durability == RISK_DURABILITY_FULL)
        rc = wait_durable(js, my);
    txn_free(t);
    return rc;
}

/* ---- forwarded reads ---- */

static int j_get_user(void *ctx, void *txn, const char *id, risk_user **out)
{
    jstore *js = ctx;
    return js->mt.get_user(js->mt.ctx, ((jtxn *)txn)->mtxn, id, out);
}
static int j_get_event(void *ctx, void *txn, const char *id, risk_event **out)
{
    jstore *js = ctx;
    return js->mt.get_event(js->mt.ctx, ((jtxn *)txn)->mtxn, id, out);
}
static int j_user_events(void *ctx, void *txn, const char *user_id, risk_event_visit_fn fn,
                         void *arg)
{
    jstore *js = ctx;
    return js->mt.user_events(js->mt.ctx, ((jtxn *)txn)->mtxn, user_id, fn, arg);
}
static int j_list_policies(void *ctx, void *txn, risk_policy_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    return js->mt.list_policies(js->mt.ctx, ((jtxn *)txn)->mtxn, fn, arg);
}
static int j_get_meta(void *ctx, void *txn, const char *key, uint8_t *buf, size_t cap,
                      size_t *len)
{
    jstore *js = ctx;
    return js->mt.get_meta(js->mt.ctx, ((jtxn *)txn)->mtxn, key, buf, cap, len);
}
static int j_view_user(void *ctx, const char *id, risk_user_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    if (js->mt.view_user == NULL)
        return risk_err(RISK_EUNSUPPORTED, "store: no view_user");
    return js->mt.view_user(js->mt.ctx, id, fn, arg);
}
static int j_list_users(void *ctx, risk_level min_level, risk_user_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    if (js->mt.list_users == NULL)
        return risk_err(RISK_EUNSUPPORTED, "store: no list_users");
    return js->mt.list_users(js->mt.ctx, min_level, fn, arg);
}

/* ---- history read back from the file ---- */

/* First position in [0, n) whose seq (through the index) is ≥ since. */
static size_t lower_bound(const jstore *js, const uint32_t *pos, size_t n, uint64_t since)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (js->h_seq[pos ? pos[mid] : mid] < since)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Visit items in seq order, HIST_BATCH at a time: under the read lock the
 * raw bytes are copied out (compaction may swap the file), then they are
 * decoded and visited with no lock held (fn may call back into the store). */
static int j_read_history(void *ctx, const char *user_id, uint64_t since_seq,
                          risk_history_visit_fn fn, void *arg)
{
    jstore *js = ctx;
    if (fn == NULL)
        return risk_err(RISK_EINVAL, "fn: NULL");
    bytes raw = {0};
    size_t lens[HIST_BATCH];
    int rc = RISK_OK, more = 1;
    while (rc == RISK_OK && more) {
        size_t k = 0;
        raw.len = 0;
        pthread_rwlock_rdlock(&js->idx_lock);
        const ulist *u = user_id ? ulist_find(js, user_id) : NULL;
        const uint32_t *pos = u ? u->pos : NULL;
        size_t n = user_id ? (u ? u->n : 0) : js->h_n;
        for (size_t i = lower_bound(js, pos, n, since_seq); i < n && k < HIST_BATCH; i++, k++) {
            size_t x = pos ? pos[i] : i;
            uint8_t *dst;
            if ((rc = bytes_op(&raw, 0, js->h_len[x], &dst)) != RISK_OK)
                break;
            ssize_t got = pread(js->fd, dst, js->h_len[x], (off_t)js->h_off[x]);
            if (got != (ssize_t)js->h_len[x]) {
                rc = risk_err(RISK_EIO, "journal: cannot read history at byte offset %" PRIu64,
                              js->h_off[x]);
                break;
            }
            lens[k] = js->h_len[x];
            since_seq = js->h_seq[x] + 1;
        }
        pthread_rwlock_unlock(&js->idx_lock);
        more = k == HIST_BATCH;
        for (size_t i = 0, at = 0; rc == RISK_OK && i < k; at += 5 + lens[i], i++) {
            risk_history *h = NULL;
            rc = risk_history_decode(&h, raw.p + at + 5, lens[i]);
            if (rc == RISK_OK)
                rc = fn(h, arg);
            risk_history_free(h);
        }
    }
    risk_free(raw.p);
    return rc;
}

/* ---- compaction and backup ---- */

typedef struct snap {
    jstore *js;
    int fd;
    uint64_t off, txn; /* bytes and frames written */
    uint8_t salt[8];
    bytes b;
} snap;

static int snap_flush(snap *s)
{
    if (s->b.len == FRAME_HDR)
        return RISK_OK;
    seal_frame(s->b.p, s->b.len - FRAME_HDR, ++s->txn, s->salt);
    if (pwrite_all(s->fd, s->b.p, s->b.len, s->off) != 0)
        return risk_err(RISK_EIO, "journal: write failed: %s", strerror(errno));
    s->off += s->b.len;
    s->b.len = FRAME_HDR;
    return RISK_OK;
}

static int snap_rec(snap *s, uint8_t tag, enc_fn enc, const void *rec)
{
    int rc = s->b.len >= SNAP_FRAME ? snap_flush(s) : RISK_OK;
    return rc ? rc : put_op(&s->b, tag, enc, rec, NULL);
}
static int snap_user(const risk_user *u, void *s) { return snap_rec(s, OP_USER, enc_user, u); }
static int snap_event(const risk_event *e, void *s) { return snap_rec(s, OP_EVENT, enc_event, e); }
static int snap_policy(const risk_policy *p, void *s) { return snap_rec(s, OP_POLICY, enc_policy, p); }
static int snap_meta(const char *key, const uint8_t *val, size_t len, void *arg)
{
    snap *s = arg;
    size_t klen = strlen(key);
    uint8_t *dst;
    int rc = s->b.len >= SNAP_FRAME ? snap_flush(s) : RISK_OK;
    if (rc == RISK_OK && (rc = bytes_op(&s->b, OP_META, 2 + klen + len, &dst)) == RISK_OK) {
        dst[0] = (uint8_t)klen, dst[1] = (uint8_t)(klen >> 8);
        memcpy(dst + 2, key, klen);
        if (len)
            memcpy(dst + 2 + klen, val, len);
    }
    return rc;
}

/* Write the live state and the whole history (copied from the current
 * file, in seq order) to fd; new_off[i] receives item i's new offset.
 * Called with file_mu held, so no commit changes what is copied. */
static int snap_write(snap *s, uint64_t *new_off)
{
    jstore *js = s->js;
    uint8_t hdr[HDR_LEN];
    new_salt(s->salt);
    make_header(hdr, s->salt);
    s->b.len = FRAME_HDR;
    if (pwrite_all(s->fd, hdr, HDR_LEN, 0) != 0)
        return risk_err(RISK_EIO, "journal: write failed: %s", strerror(errno));
    s->off = HDR_LEN;
    int rc = risk_memstore_each_user(js->ms, snap_user, s);
    if (rc == RISK_OK)
        rc = risk_memstore_each_event(js->ms, snap_event, s);
    if (rc == RISK_OK)
        rc = risk_memstore_each_policy(js->ms, snap_policy, s);
    if (rc == RISK_OK)
        rc = risk_memstore_each_meta(js->ms, snap_meta, s);
    rd r = {.fd = js->fd, .size = js->end};
    for (size_t i = 0; rc == RISK_OK && i < js->h_n; i++) {
        const uint8_t *src = rd_get(&r, js->h_off[i], js->h_len[i]);
        uint8_t *dst;
        if (src == NULL)
            rc = risk_error_last_code();
        if (rc == RISK_OK && s->b.len >= SNAP_FRAME)
            rc = snap_flush(s);
        if (rc == RISK_OK && (rc = bytes_op(&s->b, OP_HISTORY, js->h_len[i], &dst)) == 0) {
            memcpy(dst, src, js->h_len[i]);
            new_off[i] = s->off + (uint64_t)(dst - s->b.p);
        }
    }
    risk_free(r.buf);
    return rc ? rc : snap_flush(s);
}

static char *tmp_path(const char *path)
{
    size_t n = strlen(path);
    char *t = risk_malloc(n + 5);
    if (t != NULL) {
        memcpy(t, path, n);
        memcpy(t + n, ".tmp", 5);
    }
    return t;
}

/* Hook: stop at this step of compaction as if the process died there. */
#define CRASH_POINT(step)                                                                  \
    do {                                                                                   \
        if (compact && atomic_load(&hook_compact_step) == (step)) {                        \
            rc = risk_err(RISK_EIO, "journal: test crash at compaction step %d", step);    \
            goto crashed;                                                                  \
        }                                                                                  \
    } while (0)

/* Copy the state to dst (compact: dst is the journal itself). Crash safety:
 * everything goes to dst.tmp, made durable before the rename; rename is
 * atomic, so dst names either the old complete file or the new complete
 * one; the directory sync makes the rename itself durable. A stale .tmp
 * left by a crash is never read and is truncated by the next attempt. */
static int write_copy(jstore *js, const char *dst, int compact)
{
    char *tmp = tmp_path(dst);
    /* same capacity as h_off: it replaces it, and commits append to it */
    uint64_t *new_off = risk_malloc((js->h_cap ? js->h_cap : 1) * sizeof *new_off);
    snap s = {.js = js, .fd = -1};
    int rc = RISK_OK, renamed = 0;
    if (tmp == NULL || new_off == NULL) {
        rc = risk_err(RISK_ENOMEM, "journal: out of memory");
        goto out;
    }
    s.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s.fd < 0) {
        rc = risk_err(RISK_EIO, "path: cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* lock before the rename, so no other writer can slip in between */
    if (compact && (rc = lock_file(s.fd, tmp)) != RISK_OK)
        goto out;
    rc = snap_write(&s, new_off);
    if (rc == RISK_OK && compact && atomic_load(&hook_compact_step) == 1 &&
        ftruncate(s.fd, (off_t)(s.off / 2)) == 0) /* a half-written copy */
        CRASH_POINT(1);
    if (rc == RISK_OK)
        CRASH_POINT(2);
    if (rc == RISK_OK && datasync(s.fd) != 0)
        rc = risk_err(RISK_EIO, "journal: fdatasync failed: %s", strerror(errno));
    if (rc == RISK_OK)
        CRASH_POINT(3);
    if (rc == RISK_OK && rename(tmp, dst) != 0)
        rc = risk_err(RISK_EIO, "path: cannot rename %s: %s", tmp, strerror(errno));
    if (rc != RISK_OK)
        goto out;
    renamed = 1;
    CRASH_POINT(4);
    rc = fsync_dir(dst);
    if (rc == RISK_OK)
        CRASH_POINT(5);
    if (compact) {
        /* dst is now the new file: switch to it even if the directory sync
         * failed (then poisoned: the rename may not survive a power loss) */
        pthread_rwlock_wrlock(&js->idx_lock);
        pthread_mutex_lock(&js->sync_mu);
        while (js->syncing)
            pthread_cond_wait(&js->sync_cv, &js->sync_mu);
        int old = js->fd;
        js->fd = s.fd, s.fd = old;
        memcpy(js->salt, s.salt, 8);
        js->end = s.off, js->next_txn = s.txn + 1;
        uint64_t *t = js->h_off;
        js->h_off = new_off, new_off = t;
        js->synced = js->written; /* everything is in the synced new file */
        if (rc != RISK_OK)
            atomic_store(&js->poisoned, 1);
        pthread_mutex_unlock(&js->sync_mu);
        pthread_rwlock_unlock(&js->idx_lock);
    }
out:
    if (rc != RISK_OK && !renamed && s.fd >= 0)
        unlink(tmp);
crashed:
    if (s.fd >= 0)
        close(s.fd);
    risk_free(s.b.p);
    risk_free(new_off);
    risk_free(tmp);
    return rc;
}

static int j_compact(void *ctx)
{
    jstore *js = ctx;
    int rc = check_writable(js);
    if (rc != RISK_OK)
        return rc;
    pthread_mutex_lock(&js->file_mu);
    rc = write_copy(js, js->path, 1);
    pthread_mutex_unlock(&js->file_mu);
    return rc;
}

static int j_backup(void *ctx, const char *path)
{
    jstore *js = ctx;
    if (path == NULL || *path == '\0')
        return risk_err(RISK_EINVAL, "path: NULL or empty");
    if (strcmp(path, js->path) == 0)
        return risk_err(RISK_EINVAL, "path: the journal itself");
    pthread_mutex_lock(&js->file_mu);
    int rc = write_copy(js, path, 0);
    pthread_mutex_unlock(&js->file_mu);
    return rc;
}

/* ---- open and close ---- */

static void jstore_free(jstore *js)
{
    if (js->has_thread) {
        pthread_mutex_lock(&js->sync_mu);
        js->stop = 1;
        pthread_cond_broadcast(&js->sync_cv);
        pthread_mutex_unlock(&js->sync_mu);
        pthread_join(js->thread, NULL);
    }
    if (js->fd >= 0) {
        if (!js->read_only && js->durability != RISK_DURABILITY_OFF &&
            !atomic_load(&js->poisoned) && js->written > js->synced)
            datasync(js->fd);
        close(js->fd); /* releases the OFD lock */
    }
    for (size_t i = 0; i < js->u_cap; i++) {
        risk_free(js->u_tab[i].id);
        risk_free(js->u_tab[i].pos);
    }
    risk_free(js->u_tab);
    risk_free(js->h_seq);
    risk_free(js->h_off);
    risk_free(js->h_len);
    if (js->ms != NULL)
        risk_memstore_free(js->ms);
    pthread_rwlock_destroy(&js->idx_lock);
    pthread_cond_destroy(&js->sync_cv);
    pthread_mutex_destroy(&js->sync_mu);
    pthread_mutex_destroy(&js->file_mu);
    risk_free(js->path);
    risk_free(js);
}

static void j_close(void *ctx)
{
    if (ctx != NULL)
        jstore_free(ctx);
}

static const risk_store journal_table = {
    RISK_STORE_VERSION, NULL, j_begin, j_commit, j_rollback, j_get_user, j_put_user,
    j_get_event, j_put_event, j_user_events, j_reserve_seq, j_append_history, j_list_policies,
    j_put_policy, j_remove_policy, j_get_meta, j_put_meta, j_close, j_view_user, j_list_users,
    j_read_history, j_compact, j_backup,
};

/* Create an empty journal in fd (new or torn before its header ended). */
static int init_file(jstore *js, int created)
{
    uint8_t hdr[HDR_LEN];
    new_salt(js->salt);
    make_header(hdr, js->salt);
    int sync = js->durability != RISK_DURABILITY_OFF;
    if (ftruncate(js->fd, 0) != 0 || pwrite_all(js->fd, hdr, HDR_LEN, 0) != 0 ||
        (sync && datasync(js->fd) != 0))
        return risk_err(RISK_EIO, "path: cannot initialise %s: %s", js->path, strerror(errno));
    js->end = HDR_LEN, js->next_txn = 1;
    return created && sync ? fsync_dir(js->path) : RISK_OK;
}

static int open_file(jstore *js, int *created)
{
    *created = 0;
    js->fd = open(js->path, (js->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (js->fd < 0 && errno == ENOENT && !js->read_only) {
        js->fd = open(js->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        *created = js->fd >= 0;
        if (js->fd < 0 && errno == EEXIST)
            js->fd = open(js->path, O_RDWR | O_CLOEXEC);
    }
    if (js->fd < 0)
        return errno == ENOENT ? risk_err(RISK_ENOTFOUND, "path: %s does not exist", js->path)
                               : risk_err(RISK_EIO, "path: cannot open %s: %s", js->path,
                                          strerror(errno));
    return js->read_only ? RISK_OK : lock_file(js->fd, js->path);
}

static int check_opts(const risk_journal_options *o)
{
    if (o == NULL)
        return RISK_OK;
    if (o->version != RISK_JOURNAL_OPTIONS_VERSION)
        return risk_err(RISK_EINVAL, "opts: version %" PRIu32 " is not %d", o->version,
                        RISK_JOURNAL_OPTIONS_VERSION);
    if (o->durability > RISK_DURABILITY_OFF)
        return risk_err(RISK_EINVAL, "opts: durability %" PRIu32 " is not a risk_durability",
                        o->durability);
    if (o->read_only > 1)
        return risk_err(RISK_EINVAL, "opts: read_only must be 0 or 1");
    if (o->sync_interval_ms > 3600000u)
        return risk_err(RISK_EINVAL, "opts: sync_interval_ms over one hour");
    return RISK_OK;
}

int risk_journal_open(risk_store *out, const char *path, const risk_journal_options *opts,
                      risk_journal_stats *stats)
{
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    if (path == NULL || *path == '\0')
        return risk_err(RISK_EINVAL, "path: NULL or empty");
    int rc = check_opts(opts);
    if (rc != RISK_OK)
        return rc;
    jstore *js = risk_calloc(1, sizeof *js);
    if (js == NULL || (js->path = risk_strdup(path)) == NULL) {
        risk_free(js);
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    }
    js->fd = -1;
    js->read_only = opts ? (int)opts->read_only : 0;
    js->durability = opts ? opts->durability : RISK_DURABILITY_FULL;
    js->interval_ms = opts && opts->sync_interval_ms ? opts->sync_interval_ms : 100;
    pthread_mutex_init(&js->file_mu, NULL);
    pthread_mutex_init(&js->sync_mu, NULL);
    pthread_cond_init(&js->sync_cv, NULL);
    pthread_rwlock_init(&js->idx_lock, NULL);
    rc = risk_memstore_new(&js->ms, 0);
    if (rc != RISK_OK) {
        js->ms = NULL;
        goto fail;
    }
    risk_memstore_table(js->ms, &js->mt);
    int created;
    if ((rc = open_file(js, &created)) != RISK_OK)
        goto fail;
    struct stat st;
    if (fstat(js->fd, &st) != 0) {
        rc = risk_err(RISK_EIO, "path: cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    rd r = {.fd = js->fd, .size = (uint64_t)st.st_size};
    replay rp = {.js = js};
    scan_res res;
    rc = scan(&r, 0, replay_frame, &rp, &res);
    int rc2 = replay_flush(&rp, rc == RISK_OK);
    rc = rc ? rc : rc2;
    risk_free(r.buf);
    risk_free(rp.fix);
    if (rc != RISK_OK)
        goto fail;
    memcpy(js->salt, res.salt, 8);
    js->end = res.good_end, js->next_txn = res.frames + 1;
    if (!js->read_only && (res.torn_header || r.size == 0)) {
        if ((rc = init_file(js, created || r.size == 0)) != RISK_OK)
            goto fail;
    } else if (!js->read_only && res.dropped > 0) {
        if (ftruncate(js->fd, (off_t)js->end) != 0 ||
            (js->durability != RISK_DURABILITY_OFF && datasync(js->fd) != 0)) {
            rc = risk_err(RISK_EIO, "path: cannot drop the torn tail of %s: %s", path,
                          strerror(errno));
            goto fail;
        }
    }
    risk_memstore_set_next_seq(js->ms, idx_max_seq(js) + 1);
    if (!js->read_only && js->durability == RISK_DURABILITY_NORMAL) {
        if (pthread_create(&js->thread, NULL, sync_thread, js) != 0) {
            rc = risk_err(RISK_ENOMEM, "journal: cannot start the sync thread");
            goto fail;
        }
        js->has_thread = 1;
    }
    if (stats != NULL)
        *stats = (risk_journal_stats){1, 0, res.frames, res.dropped, js->end};
    *out = journal_table;
    out->ctx = js;
    return RISK_OK;
fail:
    jstore_free(js);
    return rc;
}

int risk_journal_check(const char *path, risk_journal_stats *stats)
{
    if (path == NULL || *path == '\0')
        return risk_err(RISK_EINVAL, "path: NULL or empty");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? risk_err(RISK_ENOTFOUND, "path: %s does not exist", path)
                               : risk_err(RISK_EIO, "path: cannot open %s: %s", path,
                                          strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? RISK_OK : risk_err(RISK_EIO, "path: cannot stat %s", path);
    rd r = {.fd = fd, .size = (uint64_t)st.st_size};
    replay rp = {0};
    scan_res res = {0};
    if (rc == RISK_OK && r.size == 0)
        rc = risk_err(RISK_ECORRUPT, "journal: empty file (no header at byte offset 0)");
    if (rc == RISK_OK)
        rc = scan(&r, 1, replay_frame, &rp, &res);
    risk_free(r.buf);
    close(fd);
    if (stats != NULL)
        *stats = (risk_journal_stats){1, 0, res.frames, 0, r.size};
    return rc;
}
