/* Tests of SHA-256 (R-AU-1: the history chain hash, checked against the
 * FIPS 180-4 vectors) and HMAC-SHA-256 (R-RC-1: receipts, RFC 4231). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static void fini(void)
{
    risk_sha256_force_portable(0);
}

TestSuite(sha256, .fini = fini);

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void expect_sha(const void *msg, size_t len, const char *want)
{
    uint8_t d[32];
    char h[65];
    risk_sha256(msg, len, d);
    hex(d, 32, h);
    cr_assert(eq(str, h, (char *)want), "len %zu", len);
}

static const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char *d448 = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                          "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
static const char *d896 = "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1";
static const char *dmil = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
static const char *dempty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void nist_vectors(void)
{
    expect_sha("", 0, dempty);
    expect_sha("abc", 3, abc);
    expect_sha(m448, strlen(m448), d448);
    expect_sha(m896, strlen(m896), d896);
    char *a = malloc(1000000);
    cr_assert_not_null(a);
    memset(a, 'a', 1000000);
    expect_sha(a, 1000000, dmil);
    free(a);
}

/* R-AU-1: FIPS 180-4 / NIST vectors on whichever path the CPU selects. */
Test(sha256, nist_vectors_dispatched)
{
    risk_sha256_force_portable(0);
    nist_vectors();
}

/* R-AU-1: the same vectors on the forced portable path. */
Test(sha256, nist_vectors_portable)
{
    risk_sha256_force_portable(1);
    cr_assert(eq(int, risk_sha256_hw_available(), 0));
    nist_vectors();
}

/* R-AU-1: the SHA-NI block function computes the vectors too (skipped without SHA-NI). */
Test(sha256, nist_vectors_hw)
{
    risk_sha256_force_portable(0);
    if (!risk_sha256_hw_available())
        cr_skip("no SHA instructions on this CPU");
    nist_vectors();
}

/* Hash msg by padding it by hand and calling one block function directly. */
static void hash_with(void (*blocks)(uint32_t *, const uint8_t *, size_t), const uint8_t *m,
                      size_t len, uint8_t out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t total = (len + 9 + 63) / 64 * 64;
    uint8_t *p = calloc(total, 1);
    cr_assert_not_null(p);
    memcpy(p, m, len);
    p[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        p[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    blocks(h, p, total / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
    free(p);
}

/* R-AU-1: for every length 0..300 the portable and the hardware block functions
 * agree with each other and with the streaming API. */
Test(sha256, portable_equals_hw_every_length)
{
    risk_sha256_force_portable(0);
    int hw = risk_sha256_hw_available();
    uint8_t m[301];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len <= 300; len++) {
        uint8_t a[32], b[32], c[32];
        hash_with(risk_sha256_blocks_portable, m, len, a);
        risk_sha256(m, len, c);
        cr_assert(eq(int, memcmp(a, c, 32), 0), "len %zu: portable vs risk_sha256", len);
        if (hw) {
            hash_with(risk_sha256_blocks_hw, m, len, b);
            cr_assert(eq(int, memcmp(a, b, 32), 0), "len %zu: portable vs hw", len);
        }
    }
    if (!hw)
        cr_skip("no SHA instructions: hw comparison skipped (portable checked)");
}

/* R-AU-1: incremental updates in odd chunk sizes equal the one-shot hash. */
Test(sha256, incremental_odd_chunks)
{
    static const size_t chunks[] = {1, 3, 7, 13, 63, 64, 65, 127, 200};
    uint8_t m[1000];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = (uint8_t)(i ^ (i >> 3));
    for (int portable = 0; portable <= 1; portable++) {
        risk_sha256_force_portable(portable);
        uint8_t want[32];
        risk_sha256(m, sizeof m, want);
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            risk_sha256_ctx ctx;
            risk_sha256_init(&ctx);
            size_t off = 0, step = chunks[c];
            while (off < sizeof m) {
                size_t k = sizeof m - off < step ? sizeof m - off : step;
                risk_sha256_update(&ctx, m + off, k);
                risk_sha256_update(&ctx, m + off, 0); /* empty updates are harmless */
                off += k;
                step = step * 5 % 97 + 1; /* vary the chunk size as we go */
            }
            uint8_t got[32];
            risk_sha256_final(&ctx, got);
            cr_assert(eq(int, memcmp(got, want, 32), 0), "chunk %zu portable %d", chunks[c],
                      portable);
        }
    }
}

static void unhex(const char *s, uint8_t *out, size_t *n)
{
    size_t k = strlen(s) / 2;
    for (size_t i = 0; i < k; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    *n = k;
}

/* R-RC-1: HMAC-SHA-256, RFC 4231 test cases 1-4, 6 and 7 (5 is a truncated output). */
Test(sha256, hmac_rfc4231)
{
    static const struct {
        const char *key, *data, *mac;
    } tc[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
         "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665",
         "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
         "dddddddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaa",
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
         "617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaa",
         "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d"
         "73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174"
         "612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e"
         "6720757365642062792074686520484d414320616c676f726974686d2e",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (int portable = 0; portable <= 1; portable++) {
        risk_sha256_force_portable(portable);
        for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
            uint8_t key[200], data[200], mac[32];
            size_t kn, dn;
            char h[65];
            unhex(tc[i].key, key, &kn);
            unhex(tc[i].data, data, &dn);
            risk_hmac_sha256(key, kn, data, dn, mac);
            hex(mac, 32, h);
            cr_assert(eq(str, h, (char *)tc[i].mac), "RFC 4231 case index %zu", i);
        }
    }
}

/* R-RC-1: a receipt altered in one bit, or checked with another key, gets another MAC. */
Test(sha256, hmac_detects_changes)
{
    uint8_t key[32] = {1}, msg[100] = {0}, a[32], b[32];
    risk_hmac_sha256(key, sizeof key, msg, sizeof msg, a);
    msg[50] ^= 1;
    risk_hmac_sha256(key, sizeof key, msg, sizeof msg, b);
    cr_assert(ne(int, memcmp(a, b, 32), 0));
    msg[50] ^= 1;
    key[31] ^= 0x80;
    risk_hmac_sha256(key, sizeof key, msg, sizeof msg, b);
    cr_assert(ne(int, memcmp(a, b, 32), 0));
    /* An empty key is allowed and deterministic. */
    risk_hmac_sha256(NULL, 0, msg, sizeof msg, a);
    risk_hmac_sha256(NULL, 0, msg, sizeof msg, b);
    cr_assert(eq(int, memcmp(a, b, 32), 0));
}
