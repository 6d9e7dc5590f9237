/* libFuzzer target for journal recovery (R-IV-2, R-CC-3): any file opens
 * as a journal, is refused with RISK_ECORRUPT, or fails cleanly; never a
 * crash, over-read or leak. The input is written to a temp file and opened.
 *
 * Byte 0 of the input selects the mode, the rest is the file:
 *   bit 0: fix up checksums first (header CRC, then each frame's length
 *          clamped to what is left, its number set to the expected one and
 *          its CRC recomputed), so mutations reach the payload decoder
 *          instead of dying at the checksum;
 *   bit 1: open writable (durability off: may truncate the temp file),
 *          else read-only.
 * Every successful open also reads the whole history back, then
 * risk_journal_check runs on the same file.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DLIBRISK_BUILDING \
 *     -Iinclude -Ilib tests/fuzz/fuzz_journal.c lib/[a-z]*.c -lpthread \
 *     -o /tmp/fuzz_journal
 *   /tmp/fuzz_journal -max_total_time=20 tests/fuzz/corpus/fuzz_journal
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Layout from docs/journal-format.md: 32-byte header, CRC at 28; frames
 * [len u32][txn u64][crc u32][payload], CRC over salt, len, txn, payload. */
static void fix_checksums(uint8_t *f, size_t n)
{
    if (n < 32)
        return;
    put32(f + 28, risk_crc32c(0, f, 28));
    uint64_t txn = 1;
    for (size_t off = 32; n - off >= 17; txn++) {
        uint32_t len = get32(f + off);
        if (len == 0 || len > n - off - 16)
            len = (uint32_t)(n - off - 16);
        put32(f + off, len);
        for (int i = 0; i < 8; i++)
            f[off + 4 + i] = (uint8_t)(txn >> (8 * i));
        uint32_t c = risk_crc32c(risk_crc32c(0, f + 16, 8), f + off, 12);
        put32(f + off + 12, risk_crc32c(c, f + off + 16, len));
        off += 16 + (size_t)len;
    }
}

static int visit(const risk_history *h, void *arg)
{
    (void)h;
    ++*(size_t *)arg;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (path[0] == '\0') {
        snprintf(path, sizeof path, "/tmp/fuzz_journal.%d", (int)getpid());
    }
    uint8_t mode = data[0];
    size_t n = size - 1;
    uint8_t *f = malloc(n ? n : 1);
    if (f == NULL)
        return 0;
    memcpy(f, data + 1, n);
    if (mode & 1)
        fix_checksums(f, n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (n && write(fd, f, n) != (ssize_t)n))
        abort();
    close(fd);
    free(f);

    risk_store s;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.read_only = (mode & 2) ? 0 : 1;
    o.durability = RISK_DURABILITY_OFF;
    risk_journal_stats st;
    int rc = risk_journal_open(&s, path, &o, &st);
    if (rc == RISK_OK) {
        size_t items = 0;
        if (s.read_history(s.ctx, NULL, 0, visit, &items) != RISK_OK)
            abort(); /* what recovery indexed must read back */
        s.close(s.ctx);
    } else if (rc != RISK_ECORRUPT && rc != RISK_ENOMEM) {
        abort();
    }
    rc = risk_journal_check(path, &st);
    if (rc != RISK_OK && rc != RISK_ECORRUPT && rc != RISK_ENOMEM)
        abort();
    unlink(path);
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    return 0;
}
