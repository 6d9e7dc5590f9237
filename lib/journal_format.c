/* The journal's bytes (docs/journal-format.md): CRC32C, file I/O with the
 * test fault hooks, the header and frame layout, op encoding, the recovery
 * scanner and risk_journal_check. The store itself is lib/store_journal.c. */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const uint8_t JOURNAL_MAGIC[8] = {'R', 'I', 'S', 'K', 'J', 'N', 'L', 0};
#define MAGIC JOURNAL_MAGIC

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

/* ---- fault injection for tests (lib/internal.h) ---- */

static atomic_int hook_write_n, hook_write_err, hook_sync_n, hook_resv_n, hook_resv_err;
atomic_int journal_hook_compact_step;

void risk_journal_test_fail_write(int n, int err)
{
    atomic_store(&hook_write_err, err ? err : EIO);
    atomic_store(&hook_write_n, n);
}
void risk_journal_test_fail_reserve(int n, int err)
{
    atomic_store(&hook_resv_err, err ? err : ENOSPC);
    atomic_store(&hook_resv_n, n);
}
atomic_uint journal_resv_chunk = RESV_CHUNK;
void risk_journal_test_reserve_chunk(unsigned bytes)
{
    atomic_store(&journal_resv_chunk, bytes);
}
void risk_journal_test_fail_sync(int n)
{
    atomic_store(&hook_sync_n, n);
}
void risk_journal_test_compact_crash(int step)
{
    atomic_store(&journal_hook_compact_step, step);
}
static _Atomic(risk_journal_sync_hook) hook_before_sync;
void risk_journal_test_before_sync(risk_journal_sync_hook fn)
{
    atomic_store(&hook_before_sync, fn);
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

int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
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

/* Allocate [off, off + len) of the file without changing its size, so a
 * later write there cannot fail for want of space (fallocate's
 * FALLOC_FL_KEEP_SIZE). EOPNOTSUPP where the system or the file system
 * cannot. */
int reserve_space(int fd, uint64_t off, uint64_t len)
{
    int v = atomic_load(&hook_resv_n);
    while (v > 0 && !atomic_compare_exchange_weak(&hook_resv_n, &v, v - 1))
        ;
    if (v > 0) {
        errno = atomic_load(&hook_resv_err);
        return -1;
    }
#ifdef FALLOC_FL_KEEP_SIZE
    int r;
    do
        r = fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
    while (r != 0 && errno == EINTR);
    return r;
#else
    (void)fd, (void)off, (void)len;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

/* Give back the space reserved past the end, off (best effort: close).
 * A truncation to the size the file has frees the blocks past it and
 * changes nothing else; only when the file ends at off (a file cut back
 * after a failed write may end before it: it is not extended). A hole
 * punched past the end is what the file systems ignore (ext4 does). */
void release_space(int fd, uint64_t off, uint64_t len)
{
    struct stat sb;
    if (len == 0 || fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != off)
        return;
    while (ftruncate(fd, (off_t)off) != 0 && errno == EINTR)
        ;
}

int datasync(int fd)
{
    risk_journal_sync_hook before = atomic_load(&hook_before_sync);
    if (before != NULL)
        before(fd);
    if (hook_fires(&hook_sync_n)) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash == NULL ? risk_strdup(".")
                         : risk_strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 || datasync(fd) != 0 ? -1 : 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    return rc ? risk_err(RISK_EIO, "path: cannot sync directory %s: %s", dir, strerror(e)) : 0;
}

/* Make a created, replaced or renamed entry of path durable. */
int fsync_dir(const char *path)
{
    char *dir = dir_of(path);
    if (dir == NULL)
        return risk_err(RISK_ENOMEM, "path: out of memory");
    int rc = sync_dir(dir);
    risk_free(dir);
    return rc;
}

/* Exclusive writer lock: an OFD lock belongs to the open file description,
 * so a second open in the same process conflicts too; the kernel drops it
 * when the last descriptor closes or the process dies. */
int lock_file(int fd, const char *path)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return RISK_OK;
    if (errno == EAGAIN || errno == EACCES)
        return risk_err(RISK_EBUSY, "path: %s is open for writing elsewhere", path);
    return risk_err(RISK_EIO, "path: cannot lock %s: %s", path, strerror(errno));
}

int same_file(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

void new_salt(uint8_t salt[8])
{
    if (getentropy(salt, 8) == 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15u ^ (uint64_t)ts.tv_sec ^
                 (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)salt;
    put64(salt, v);
}

void make_header(uint8_t h[HDR_LEN], const uint8_t salt[8])
{
    memset(h, 0, HDR_LEN);
    memcpy(h, MAGIC, 8);
    put32(h + 8, FORMAT_VERSION);
    put32(h + 12, 0); /* flags */
    memcpy(h + 16, salt, 8);
    put32(h + 24, 0); /* reserved */
    put32(h + 28, risk_crc32c(0, h, 28));
}

void seal_frame(uint8_t *buf, size_t payload, uint64_t txn, const uint8_t salt[8])
{
    put32(buf, (uint32_t)payload);
    put64(buf + 4, txn);
    uint32_t c = risk_crc32c(0, salt, 8);
    c = risk_crc32c(c, buf, 12);
    put32(buf + 12, risk_crc32c(c, buf + FRAME_HDR, payload));
}

/* ---- growable byte buffer and op encoding ---- */

/* Append an op header for n bytes; *dst receives where the n bytes go. */
int bytes_op(bytes *b, uint8_t tag, size_t n, uint8_t **dst)
{
    if (n > FRAME_MAX)
        return risk_err(RISK_EINVAL, "record: too large for the journal");
    size_t need = b->len + 5 + n;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        int inl = b->inl != NULL && b->p == b->inl;
        uint8_t *p = inl ? risk_malloc(cap) : risk_realloc(b->p, cap);
        if (p == NULL)
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        if (inl)
            memcpy(p, b->p, b->len);
        b->p = p, b->cap = cap;
    }
    b->p[b->len] = tag;
    put32(b->p + b->len + 1, (uint32_t)n);
    *dst = b->p + b->len + 5;
    b->len = need;
    return RISK_OK;
}

/* ---- recovery: a buffered reader and the frame scanner ---- */


const uint8_t *rd_get(rd *r, uint64_t off, size_t len)
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
    /* A frame that straddles the end of the buffer: keep its buffered
     * start rather than read it again (each byte of the file is read
     * once per pass). */
    size_t got = 0;
    if (off >= r->base && off < r->base + r->n) {
        got = (size_t)(r->base + r->n - off);
        memmove(r->buf, r->buf + (off - r->base), got);
    }
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
    /* Ask for the next chunks now: a file not in the page cache (the first
     * open after a reboot) is then read from the disk while this one is
     * decoded, not chunk by chunk in turn. A hint: nothing if it fails. */
    if (off + got < r->size)
        (void)posix_fadvise(r->fd, (off_t)(off + got), (off_t)RD_AHEAD, POSIX_FADV_WILLNEED);
    return r->buf;
}

/* The search after a damaged frame checksums each later offset's claimed
 * payload: a file of crafted frame headers, each claiming most of what
 * follows, would cost (offsets) x (length), hours for a few MiB (found by
 * fuzzing). It may checksum this many bytes, plus SEARCH_PER_BYTE per
 * byte it searches; a real torn tail or damage needs a handful of
 * candidates. Past that, the damage is reported as in the middle
 * (RISK_ECORRUPT): nothing is dropped that might not be a torn tail. */
#define SEARCH_BUDGET ((uint64_t)64 << 20)
#define SEARCH_PER_BYTE 4u

/* 1: a valid frame at off whose number is in [lo, hi]; 0: not one; 2: its
 * checksum would pass *budget (not computed; NULL: no limit); <0: error. */
static int frame_at(rd *r, const uint8_t salt[8], uint64_t off, uint64_t lo, uint64_t hi,
                    uint32_t *len_out, uint64_t *budget)
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
    if (budget) {
        if (*budget < len)
            return 2;
        *budget -= len;
    }
    uint32_t c = risk_crc32c(risk_crc32c(0, salt, 8), h, 12);
    const uint8_t *p = rd_get(r, off + FRAME_HDR, len);
    if (p == NULL)
        return risk_error_last_code();
    if (risk_crc32c(c, p, len) != crc)
        return 0;
    *len_out = len;
    return 1;
}


/* Walk header and frames, calling fn on each valid frame. Where a frame is
 * not valid (short, bad length, wrong number or checksum), everything after
 * it is searched for a valid frame with a number ≥ the expected one: if
 * one exists the damage is in the middle (RISK_ECORRUPT), otherwise it is a
 * torn tail (dropped, or RISK_ECORRUPT when strict). */
int scan(rd *r, int strict, frame_fn fn, void *arg, scan_res *res)
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
    if (get32(h + 8) < 1 || get32(h + 8) > FORMAT_VERSION)
        return risk_err(RISK_ECORRUPT, "journal: format version %" PRIu32
                        " is not supported (this library reads versions 1 to %d)",
                        get32(h + 8), FORMAT_VERSION);
    res->version = get32(h + 8);
    if (get32(h + 12) != 0)
        return risk_err(RISK_ECORRUPT, "journal: unknown header flags 0x%" PRIx32
                        " at byte offset 12", get32(h + 12));
    if (get32(h + 24) != 0)
        return risk_err(RISK_ECORRUPT, "journal: reserved header field 0x%" PRIx32
                        " is not 0 at byte offset 24", get32(h + 24));
    memcpy(res->salt, h + 16, 8);
    uint64_t off = HDR_LEN, txn = 1;
    while (off < r->size) {
        uint32_t len = 0;
        int ok = frame_at(r, res->salt, off, txn, txn, &len, NULL);
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
        /* A later valid frame, numbered from txn up to what the bytes
         * between off and it can hold (the missing frames take at least
         * FRAME_HDR + 1 bytes each). */
        uint64_t budget = SEARCH_BUDGET + SEARCH_PER_BYTE * (r->size - off);
        for (uint64_t q = off + 1; q < r->size; q++) {
            ok = frame_at(r, res->salt, q, txn, txn + (q - off) / (FRAME_HDR + 1), &len, &budget);
            if (ok < 0)
                return ok;
            if (ok == 2)
                return risk_err(RISK_ECORRUPT, "journal: damaged frame at byte offset %" PRIu64
                                " (the search for a valid frame after it gave up at byte "
                                "offset %" PRIu64 ": too many frame headers that do not "
                                "check out; crafted or junk data)", off, q);
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


/* The journal encodes records the engine (or the store's own decoder)
 * made: handles whose strings are valid by construction. */
int enc_user(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_user_encode_trusted(b, c, l, r); }
int enc_event(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_event_encode_trusted(b, c, l, r); }
int enc_policy(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_policy_encode(b, c, l, r); }
/* A history item is the body the engine just hashed for its chain
 * (R-AU-1), then the 32-byte chain: the canonical encoding, written without
 * validating its strings again, as the chain hash does (every handle's
 * strings were validated by its setters or its decoder; NULLs, ranges and
 * structure are still checked). Same calling convention as the encoders. */
int enc_history(uint8_t *b, size_t c, size_t *l, const void *r)
{
    size_t n = 0;
    int rc = risk_history_encode_body(b, c > 32 ? c - 32 : 0, &n, r);
    if (rc != RISK_OK && rc != RISK_ERANGE)
        return rc;
    *l = n + 32;
    if (b == NULL && c == 0)
        return RISK_OK;
    if (b == NULL || n + 32 > c)
        return risk_err(RISK_ERANGE, "cap: %zu bytes, history encoding needs %zu", c, n + 32);
    memcpy(b + n, risk_history_chain(r), 32);
    return RISK_OK;
}

/* Encode straight into the buffer's spare room, so a record is encoded
 * once; only one larger than the room is encoded a second time, after the
 * buffer grew to the size the first attempt reported. */
#define PUT_ROOM 256
int put_op(bytes *b, uint8_t tag, enc_fn enc, const void *rec, size_t *at)
{
    size_t n = 0;
    uint8_t *dst = NULL;
    int rc = RISK_OK;
    if (b->cap < b->len + 5 + PUT_ROOM) { /* make room, then undo the op */
        if ((rc = bytes_op(b, tag, PUT_ROOM, &dst)) != RISK_OK)
            return rc;
        b->len -= 5 + PUT_ROOM;
    }
    rc = enc(b->p + b->len + 5, b->cap - b->len - 5, &n, rec);
    if (rc == RISK_OK)
        rc = bytes_op(b, tag, n, &dst); /* fits: dst is where the bytes already are */
    else if (rc == RISK_ERANGE && (rc = bytes_op(b, tag, n, &dst)) == RISK_OK)
        rc = enc(dst, n, &n, rec);
    if (rc == RISK_OK && at != NULL)
        *at = (size_t)(dst - b->p);
    return rc;
}

int put_meta_op(bytes *b, const char *key, const uint8_t *val, size_t len)
{
    size_t klen = strlen(key);
    uint8_t *dst = NULL;
    int rc = bytes_op(b, OP_META, 2 + klen + len, &dst);
    if (rc == RISK_OK) {
        dst[0] = (uint8_t)klen, dst[1] = (uint8_t)(klen >> 8);
        memcpy(dst + 2, key, klen);
        if (len)
            memcpy(dst + 2 + klen, val, len);
    }
    return rc;
}

void *grow_(void *p, size_t *cap, size_t need, size_t elem)
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

/* ---- ops of a frame ---- */

int frame_ops(uint64_t off, const uint8_t *p, uint32_t len, op_visit_fn fn, void *arg)
{
    uint32_t pos = 0;
    int rc = RISK_OK;
    while (rc == RISK_OK && pos < len) {
        uint32_t n = len - pos >= 5 ? get32(p + pos + 1) : 0;
        if (len - pos < 5 || n > len - pos - 5 || p[pos] == 0 || p[pos] >= OP_COUNT) {
            rc = risk_err(RISK_ECORRUPT, "op: bad tag or length");
            break;
        }
        rc = fn(arg, p[pos], off + FRAME_HDR + pos + 5, p + pos + 5, n);
        if (rc == RISK_OK)
            pos += 5 + n;
    }
    return op_error(off, pos, rc);
}

int op_error(uint64_t off, uint32_t pos, int rc)
{
    if (rc == RISK_ECORRUPT || rc == RISK_EINVAL || rc == RISK_ECONFLICT ||
        rc == RISK_EEXISTS) {
        char why[256];
        snprintf(why, sizeof why, "%s", risk_error_last());
        rc = risk_err(RISK_ECORRUPT, "journal: bad record in frame at byte offset %" PRIu64
                      " (payload byte %" PRIu32 "): %s", off, pos, why);
    }
    return rc;
}

/* Decode (and drop) every record: risk_journal_check's op visitor. */
typedef struct checker {
    const scan_res *res; /* the header's version */
    uint64_t max_seq;
    uint64_t *seqs; /* version 2: every seq, then sorted to find one seen twice */
    size_t n, cap;
} checker;

static int check_op(void *arg, uint8_t tag, uint64_t at, const uint8_t *p, size_t n)
{
    (void)at;
    checker *c = arg;
    int rc = RISK_OK;
    switch (tag) {
    case OP_USER: {
        risk_user *u = NULL;
        rc = risk_user_decode(&u, p, n);
        risk_user_free(u);
        break;
    }
    case OP_EVENT: {
        risk_event *e = NULL;
        rc = risk_event_decode(&e, p, n);
        risk_event_free(e);
        break;
    }
    case OP_POLICY: {
        risk_policy *pol = NULL;
        rc = risk_policy_decode(&pol, p, n);
        risk_policy_free(pol);
        break;
    }
    case OP_POLICY_REMOVE: {
        char name[RISK_ID_MAX + 1];
        if (n == 0 || n > RISK_ID_MAX || memchr(p, 0, n) != NULL)
            return risk_err(RISK_ECORRUPT, "policy name: invalid");
        memcpy(name, p, n);
        name[n] = '\0';
        rc = risk_check_id("policy name", name) ? RISK_ECORRUPT : RISK_OK;
        break;
    }
    case OP_META: {
        size_t klen = n >= 2 ? (size_t)p[0] | (size_t)p[1] << 8 : 0;
        if (n < 2 || klen == 0 || klen > RISK_ID_MAX || n - 2 < klen || n - 2 - klen > 256 ||
            memchr(p + 2, 0, klen) != NULL)
            rc = risk_err(RISK_ECORRUPT, "meta: invalid");
        break;
    }
    default: { /* OP_HISTORY */
        risk_history *h = NULL;
        rc = risk_history_decode(&h, p, n);
        if (rc == RISK_OK && c->res->version == 1 && h->seq <= c->max_seq)
            rc = risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " not above %" PRIu64, h->seq,
                          c->max_seq);
        if (rc == RISK_OK && (h->seq == 0 || h->seq > UINT32_MAX))
            rc = risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " out of range (1 to 2^32 - 1)",
                          h->seq);
        void *tmp_;
        if (rc == RISK_OK && c->res->version > 1 && GROW(c->seqs, &c->cap, c->n + 1))
            rc = risk_err(RISK_ENOMEM, "journal: out of memory");
        if (rc == RISK_OK && c->res->version > 1)
            c->seqs[c->n++] = h->seq;
        if (rc == RISK_OK && h->seq > c->max_seq)
            c->max_seq = h->seq;
        risk_history_free(h);
        break;
    }
    }
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int check_frame(void *arg, uint64_t off, const uint8_t *p, uint32_t len)
{
    return frame_ops(off, p, len, check_op, arg);
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
    scan_res res = {0};
    checker c = {.res = &res};
    if (rc == RISK_OK && r.size == 0)
        rc = risk_err(RISK_ECORRUPT, "journal: empty file (no header at byte offset 0)");
    if (rc == RISK_OK)
        rc = scan(&r, 1, check_frame, &c, &res);
    if (rc == RISK_OK && c.n > 1) { /* version 2: any order, but each seq once */
        qsort(c.seqs, c.n, sizeof *c.seqs, cmp_u64);
        for (size_t i = 1; rc == RISK_OK && i < c.n; i++)
            if (c.seqs[i] == c.seqs[i - 1])
                rc = risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " appears twice", c.seqs[i]);
    }
    risk_free(c.seqs);
    risk_free(r.buf);
    close(fd);
    if (stats != NULL)
        *stats = (risk_journal_stats){1, 0, res.frames, 0, r.size};
    return rc;
}
