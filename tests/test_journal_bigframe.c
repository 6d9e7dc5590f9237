/* The journal's largest frame (docs/journal-format.md, "Frame": len ≤
 * 256 MiB), in a program of its own: computing the CRC of a 256 MiB frame
 * takes 90 s under valgrind, so this one test is in the 'slow' suite
 * (default and sanitizer runs, not valgrind). Found by mutation testing
 * (2026-12-07), like the tests of test_journal_checks.c. */
#include "journal_raw.h"

Test(journal, a_frame_longer_than_256_mib_is_not_valid, .timeout = 120)
{
    /* "len: 1 ≤ len ≤ 268,435,456 (256 MiB)". A last frame of 256 MiB + 1
     * zero bytes with a matching CRC (the file is sparse: nothing is
     * written but its header) is not valid: a torn tail, which a read-only
     * open drops in memory. (Mutant F03: `len > FRAME_MAX` removed from
     * frame_at: the frame was decoded and the open failed on its bytes.) */
    uint64_t sizes[2];
    digest dgs[2];
    build(1, sizes, dgs);
    risk_journal_stats st;
    uint8_t h[HDR_LEN];
    int fd = open_raw(path, &st, h);
    uint32_t len = FRAME_MAX + 1;
    uint8_t fh[FRAME_HDR];
    put32(fh, len);
    put64(fh + 4, st.records_replayed + 1);
    uint32_t c = risk_crc32c(risk_crc32c(0, h + 16, 8), fh, 12);
    static uint8_t zero[1 << 20];
    for (uint32_t left = len; left > 0;) {
        uint32_t k = left < sizeof zero ? left : (uint32_t)sizeof zero;
        c = risk_crc32c(c, zero, k);
        left -= k;
    }
    put32(fh + 12, c);
    cr_assert_eq(pwrite(fd, fh, FRAME_HDR, (off_t)st.file_bytes), FRAME_HDR);
    cr_assert_eq(ftruncate(fd, (off_t)(st.file_bytes + FRAME_HDR + len)), 0);
    close(fd);
    opens_holding(path, 1, 1, (uint64_t)FRAME_HDR + len, dgs[1]);
}
