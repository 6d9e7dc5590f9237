/* journal_raw.h — header-only helpers for tests that write journal bytes
 * by hand (frames a writer would never produce): open a sound journal for
 * raw writes, and append or place sealed frames. Included by the journal
 * tests that check the format's rules (test_journal_order.c,
 * test_journal_checks.c, test_journal_bigframe.c). */
#ifndef LIBRISK_TEST_JOURNAL_RAW_H
#define LIBRISK_TEST_JOURNAL_RAW_H

#include "journal_fixture.h"

#include "journal.h"

/* Open the sound journal at p for writing by hand: its stats (the next
 * frame number, the end) and its header (the salt at h + 16). */
static inline int open_raw(const char *p, risk_journal_stats *st, uint8_t h[HDR_LEN])
{
    cr_assert_eq(risk_journal_check(p, st), RISK_OK, "%s", risk_error_last());
    int fd = open(p, O_RDWR);
    cr_assert(fd >= 0);
    cr_assert_eq(pread(fd, h, HDR_LEN, 0), HDR_LEN);
    return fd;
}

/* Write one frame numbered txn holding payload at byte offset at. */
static inline void frame_raw_at(int fd, const uint8_t salt[8], uint64_t at, uint64_t txn,
                                const uint8_t *payload, uint32_t len)
{
    uint8_t *buf = malloc(FRAME_HDR + len + 1);
    cr_assert_not_null(buf);
    if (len)
        memcpy(buf + FRAME_HDR, payload, len);
    seal_frame(buf, len, txn, salt);
    cr_assert_eq(pwrite(fd, buf, FRAME_HDR + len, (off_t)at), (ssize_t)(FRAME_HDR + len));
    free(buf);
}

/* Append one frame holding payload to the journal at p (salt and next
 * frame number read from the file), as a writer would. */
static inline void append_frame_raw(const char *p, const uint8_t *payload, uint32_t len)
{
    risk_journal_stats st;
    uint8_t h[HDR_LEN];
    int fd = open_raw(p, &st, h);
    frame_raw_at(fd, h + 16, st.file_bytes, st.records_replayed + 1, payload, len);
    close(fd);
}

/* An open of p (read-only or not) succeeds, replays records frames, drops
 * dropped bytes of tail, and holds what want digests. */
static inline void opens_holding(const char *p, uint32_t ro, uint64_t records, uint64_t dropped,
                                 digest want)
{
    risk_store s;
    risk_journal_stats st;
    cr_assert_eq(jopen(&s, p, RISK_DURABILITY_FULL, ro, &st), RISK_OK, "%s", risk_error_last());
    cr_assert_eq(st.records_replayed, records);
    cr_assert_eq(st.bytes_dropped, dropped);
    cr_assert(dg_eq(take_digest(&s), want));
    jclose(&s);
}

#endif
