/* SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for the history chain
 * (R-AU-1) and sign-in receipts (R-RC-1). libc only: a portable block
 * function here, the x86 SHA-NI one in sha256_hw.c, chosen once at run time
 * by CPUID. */
#include "internal.h"

#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Round constants: first 32 bits of the fractional parts of the cube roots
 * of the first 64 primes (FIPS 180-4 §4.2.2). Shared with sha256_hw.c. */
const uint32_t risk_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static const uint32_t sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void risk_sha256_blocks_portable(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    const uint32_t *K = risk_sha256_k;
    for (; nblocks > 0; nblocks--, p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = be32(p + 4 * i);
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6],
                 hh = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) +
                          K[i] + w[i];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
        h[5] += f;
        h[6] += g;
        h[7] += hh;
    }
}

/* ---- dispatch: decided once; racing first callers compute the same value ---- */

enum { HW_UNKNOWN = 0, HW_YES = 1, HW_NO = 2 };
static atomic_int hw_state = HW_UNKNOWN;
static atomic_int forced_portable = 0;

static int cpu_has_sha(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* clang 14's __builtin_cpu_supports does not know "sha": ask CPUID.
     * Leaf 1 ECX: SSSE3 bit 9, SSE4.1 bit 19; leaf 7 EBX: SHA bit 29. */
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 9)) || !(c & (1u << 19)))
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;
#else
    return 0;
#endif
}

static int hw_detected(void)
{
    int s = atomic_load_explicit(&hw_state, memory_order_relaxed);
    if (s == HW_UNKNOWN) {
        s = cpu_has_sha() ? HW_YES : HW_NO;
        atomic_store_explicit(&hw_state, s, memory_order_relaxed);
    }
    return s == HW_YES;
}

int risk_sha256_hw_available(void)
{
    return hw_detected() && !atomic_load_explicit(&forced_portable, memory_order_relaxed);
}

void risk_sha256_force_portable(int on)
{
    atomic_store_explicit(&forced_portable, on != 0, memory_order_relaxed);
}

static void blocks(uint32_t h[8], const uint8_t *p, size_t n)
{
    if (risk_sha256_hw_available())
        risk_sha256_blocks_hw(h, p, n);
    else
        risk_sha256_blocks_portable(h, p, n);
}

/* ---- incremental API ---- */

void risk_sha256_init(risk_sha256_ctx *c)
{
    memcpy(c->h, sha256_iv, sizeof c->h);
    c->nbytes = 0;
    c->nbuf = 0;
}

void risk_sha256_update(risk_sha256_ctx *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len == 0)
        return; /* data may be NULL then */
    c->nbytes += len;
    if (c->nbuf > 0) {
        size_t k = 64 - c->nbuf < len ? 64 - c->nbuf : len;
        memcpy(c->buf + c->nbuf, p, k);
        c->nbuf += k;
        p += k;
        len -= k;
        if (c->nbuf < 64)
            return;
        blocks(c->h, c->buf, 1);
        c->nbuf = 0;
    }
    if (len >= 64) {
        blocks(c->h, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    if (len > 0) {
        memcpy(c->buf, p, len);
        c->nbuf = len;
    }
}

void risk_sha256_final(risk_sha256_ctx *c, uint8_t out[32])
{
    uint64_t bits = c->nbytes * 8;
    c->buf[c->nbuf++] = 0x80;
    if (c->nbuf > 56) {
        memset(c->buf + c->nbuf, 0, 64 - c->nbuf);
        blocks(c->h, c->buf, 1);
        c->nbuf = 0;
    }
    memset(c->buf + c->nbuf, 0, 56 - c->nbuf);
    for (int i = 0; i < 8; i++)
        c->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    blocks(c->h, c->buf, 1);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
    memset(c, 0, sizeof *c); /* leave no message or key material behind */
}

void risk_sha256(const void *data, size_t len, uint8_t out[32])
{
    risk_sha256_ctx c;
    risk_sha256_init(&c);
    risk_sha256_update(&c, data, len);
    risk_sha256_final(&c, out);
}

/* RFC 2104: H((K' ^ opad) || H((K' ^ ipad) || data)), K' the key padded to
 * the block size (hashed first if longer). */
void risk_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
                      uint8_t out[32])
{
    uint8_t k[64] = {0}, pad[64], inner[32];
    if (keylen > 64)
        risk_sha256(key, keylen, k);
    else if (keylen > 0)
        memcpy(k, key, keylen);
    risk_sha256_ctx c;
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    risk_sha256_init(&c);
    risk_sha256_update(&c, pad, 64);
    risk_sha256_update(&c, data, len);
    risk_sha256_final(&c, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    risk_sha256_init(&c);
    risk_sha256_update(&c, pad, 64);
    risk_sha256_update(&c, inner, 32);
    risk_sha256_final(&c, out);
    /* the key, its pads, and the states that hashed them (as good as the key) */
    risk_wipe(k, sizeof k);
    risk_wipe(pad, sizeof pad);
    risk_wipe(inner, sizeof inner);
    risk_wipe(&c, sizeof c);
}
