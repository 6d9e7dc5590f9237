/* Figures for SPEC §10 (issue 8's closing note), printed as `name value
 * unit`: the cost of sealing one chained history item with and without
 * the CPU's SHA instructions, and a policy what-if over N users.
 * Built with the tests (it needs the hidden SHA switch) but never run by
 * them: `build/tests/bench_beyond [users]` (default 1,000,000). */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t fixed_clock(void *ud)
{
    (void)ud;
    return INT64_C(1764000000000);
}

static double seal_ns(risk_history *h, int portable, int rounds)
{
    uint8_t prev[32] = { 1 };
    risk_sha256_force_portable(portable);
    double t = now_s();
    for (int i = 0; i < rounds; i++) {
        if (risk_history_seal(h, prev) != RISK_OK)
            return -1;
        prev[0] ^= h->chain[0];
    }
    double ns = (now_s() - t) * 1e9 / rounds;
    risk_sha256_force_portable(0);
    return ns;
}

int main(int argc, char **argv)
{
    long users = argc > 1 ? atol(argv[1]) : 1000000;
    risk_history *h = NULL;
    if (risk_history_new(&h, 123456, INT64_C(1764000000000), "sec-admin@example.com",
                         RISK_HISTORY_DISMISS_ALL, "user-000123@example.com", NULL, NULL) ||
        risk_history_set_change(h, RISK_LEVEL_HIGH, RISK_LEVEL_NONE, RISK_STATE_AT_RISK,
                                RISK_STATE_DISMISSED, 7, "account deleted in the directory")) {
        fprintf(stderr, "history: %s\n", risk_error_last());
        return 1;
    }
    size_t len = 0;
    risk_history_encode_body(NULL, 0, &len, h);
    printf("chain.item.bytes %zu bytes\n", len);
    printf("chain.sha_instructions %d bool\n", risk_sha256_hw_available());
    printf("chain.item.seal.hw %.0f ns\n", seal_ns(h, 0, 200000));
    printf("chain.item.seal.portable %.0f ns\n", seal_ns(h, 1, 200000));
    risk_history_free(h);

    /* What-if over `users` stored users, a third of them with an event. */
    risk_store st;
    risk_engine *e = NULL;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fixed_clock;
    if (risk_memory_store_new(&st) || risk_engine_new(&e, &st, &o)) {
        fprintf(stderr, "engine: %s\n", risk_error_last());
        return 1;
    }
    double t = now_s();
    char uid[64], eid[64];
    for (long i = 0; i < users; i++) {
        snprintf(uid, sizeof uid, "user-%07ld@example.com", i);
        int rc;
        if (i % 3 == 0) {
            risk_event *ev = NULL;
            snprintf(eid, sizeof eid, "det-%07ld", i);
            rc = risk_event_new(&ev, eid, uid, "leakedCredentials", (risk_level)(1 + i % 3),
                                INT64_C(1764000000000) - 1000);
            if (rc == RISK_OK)
                rc = risk_engine_ingest(e, "bench", ev, 0);
            risk_event_free(ev);
        } else {
            risk_user *u = NULL;
            rc = risk_user_new(&u, uid);
            if (rc == RISK_OK && i % 2)
                rc = risk_user_set_mfa_registered(u, 1, INT64_C(1700000000000));
            if (rc == RISK_OK)
                rc = risk_engine_upsert_user(e, "bench", u);
            risk_user_free(u);
        }
        if (rc) {
            fprintf(stderr, "load: %s\n", risk_error_last());
            return 1;
        }
    }
    printf("whatif.load.time %.2f s\n", now_s() - t);
    risk_policy *p[2] = { NULL, NULL };
    risk_policy_new(&p[0], "require-medium", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE);
    risk_policy_new(&p[1], "block-high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK);
    risk_what_if *w = NULL;
    t = now_s();
    int rc = risk_engine_what_if(&w, e, (const risk_policy *const *)p, 2, INT64_C(1764000000000));
    double dt = now_s() - t;
    if (rc) {
        fprintf(stderr, "what-if: %s\n", risk_error_last());
        return 1;
    }
    printf("whatif.users %zu users\n", risk_what_if_total(w));
    printf("whatif.time %.3f s\n", dt);
    printf("whatif.per_user %.0f ns\n", dt * 1e9 / (double)risk_what_if_total(w));
    risk_what_if_free(w);
    risk_policy_free(p[0]);
    risk_policy_free(p[1]);
    risk_engine_free(e);
    return 0;
}
