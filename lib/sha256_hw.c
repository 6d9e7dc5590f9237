/* SHA-256 block function with the x86 SHA extensions (SHA-NI), R-AU-1.
 * Compiled for those instructions with a target attribute, so the rest of
 * the library keeps the baseline ISA; sha256.c calls it only when CPUID
 * says the processor has them. */
#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

extern const uint32_t risk_sha256_k[64]; /* sha256.c */

/* The state lives as ABEF/CDGH pairs (the layout sha256rnds2 wants). Each
 * group of 4 rounds adds K to 4 schedule words and runs two rnds2; the
 * schedule ring msg[0..3] is extended with msg1/msg2 as in Intel's
 * reference ("Intel SHA Extensions", 2013). */
__attribute__((target("sha,sse4.1,ssse3")))
void risk_sha256_blocks_hw(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);          /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);          /* EFGH */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);  /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);       /* CDGH */

    for (; nblocks > 0; nblocks--, p += 64) {
        __m128i abef = st0, cdgh = st1;
        __m128i msg[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            if (g < 4)
                msg[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), mask);
            __m128i m = _mm_add_epi32(msg[g & 3],
                                      _mm_loadu_si128((const __m128i *)&risk_sha256_k[4 * g]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, m);
            if (g >= 3 && g <= 14) {
                __m128i t = _mm_alignr_epi8(msg[g & 3], msg[(g - 1) & 3], 4);
                msg[(g + 1) & 3] = _mm_add_epi32(msg[(g + 1) & 3], t);
                msg[(g + 1) & 3] = _mm_sha256msg2_epu32(msg[(g + 1) & 3], msg[g & 3]);
            }
            m = _mm_shuffle_epi32(m, 0x0E);
            st0 = _mm_sha256rnds2_epu32(st0, st1, m);
            if (g >= 1 && g <= 12)
                msg[(g - 1) & 3] = _mm_sha256msg1_epu32(msg[(g - 1) & 3], msg[g & 3]);
        }
        st0 = _mm_add_epi32(st0, abef);
        st1 = _mm_add_epi32(st1, cdgh);
    }

    tmp = _mm_shuffle_epi32(st0, 0x1B);    /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);    /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0); /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);    /* ABEF */
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
}

#else

/* Other processors: never selected (risk_sha256_hw_available() is 0), but
 * kept correct in case a caller ignores that. */
void risk_sha256_blocks_hw(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    risk_sha256_blocks_portable(h, p, nblocks);
}

#endif
