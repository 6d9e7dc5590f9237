/* libFuzzer target for the record decoders (R-IV-2): arbitrary bytes never
 * crash, over-read or leak, and whatever decodes re-encodes to exactly the
 * input (the encoding is canonical, R-ST-3). Every input goes to all four
 * decoders; the kind tag (first byte) lets at most one accept it.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DLIBRISK_BUILDING \
 *     -Iinclude -Ilib tests/fuzz/fuzz_decode.c lib/codec.c lib/record.c \
 *     lib/history.c lib/validate.c lib/alloc.c lib/error.c -o /tmp/fuzz_decode
 *   /tmp/fuzz_decode -max_total_time=20 tests/fuzz/corpus/fuzz_decode
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef int (*enc_fn)(uint8_t *, size_t, size_t *, const void *);
typedef int (*dec_fn)(void **, const uint8_t *, size_t);
typedef void (*free_fn)(void *);

static int enc_user(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_user_encode(b, c, l, r); }
static int enc_event(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_event_encode(b, c, l, r); }
static int enc_policy(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_policy_encode(b, c, l, r); }
static int enc_history(uint8_t *b, size_t c, size_t *l, const void *r) { return risk_history_encode(b, c, l, r); }
static int dec_user(void **o, const uint8_t *b, size_t n) { return risk_user_decode((risk_user **)o, b, n); }
static int dec_event(void **o, const uint8_t *b, size_t n) { return risk_event_decode((risk_event **)o, b, n); }
static int dec_policy(void **o, const uint8_t *b, size_t n) { return risk_policy_decode((risk_policy **)o, b, n); }
static int dec_history(void **o, const uint8_t *b, size_t n) { return risk_history_decode((risk_history **)o, b, n); }
static void free_user(void *p) { risk_user_free(p); }
static void free_event(void *p) { risk_event_free(p); }
static void free_policy(void *p) { risk_policy_free(p); }
static void free_history(void *p) { risk_history_free(p); }

static const struct {
    enc_fn enc;
    dec_fn dec;
    free_fn free;
} kinds[] = {
    {enc_user, dec_user, free_user},
    {enc_event, dec_event, free_event},
    {enc_policy, dec_policy, free_policy},
    {enc_history, dec_history, free_history},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int accepted = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        void *rec = NULL;
        int rc = kinds[k].dec(&rec, data, size);
        if (rc != RISK_OK) {
            if (rc != RISK_ECORRUPT || rec != NULL)
                abort(); /* only ECORRUPT, and no output, on bad bytes */
            continue;
        }
        accepted++;
        /* Measure, then write: same length as the input, same bytes. */
        size_t need = 0, got = 0;
        if (kinds[k].enc(NULL, 0, &need, rec) != RISK_OK || need != size)
            abort();
        uint8_t *out = malloc(size);
        if (out == NULL)
            abort();
        if (size > 0 && kinds[k].enc(out, size - 1, &got, rec) != RISK_ERANGE)
            abort();
        if (kinds[k].enc(out, size, &got, rec) != RISK_OK || got != size ||
            memcmp(out, data, size) != 0)
            abort();
        /* The chain hash covers exactly the encoding minus the chain (R-AU-1). */
        if (k == 3) {
            size_t bn = 0;
            if (risk_history_encode_body(out, size, &bn, rec) != RISK_OK || bn != size - 32 ||
                memcmp(out, data, bn) != 0)
                abort();
        }
        free(out);
        kinds[k].free(rec);
    }
    if (accepted > 1)
        abort(); /* kind tags keep the four formats apart */
    return 0;
}
