/* Atomicity of every operation (R-CC-2, R-IV-3, R-ST-2, R-ST-6).
 *
 * A fault-injecting store wraps the in-memory store and fails its k-th
 * callback; for k = 1, 2, … until the operation succeeds, the store's
 * canonical dump afterwards must equal the dump before, byte for byte.
 * The same sweep runs with the k-th allocation failing. A conflicting
 * store proves the retry of R-ST-6. */
#include "alloc_fail.h"
#include "fwd_store.h"
#include "store_dump.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>

/* The store under the fault-injecting wrapper: the memory store here;
 * tests/test_journal_sweep.c runs every test of this file again on a
 * journal (it defines these three first). check_file(before, len): after
 * a failed operation and close, what a reopen of the store's file holds
 * equals the dump from before. */
#ifndef ATOMICITY_SUITE
#define ATOMICITY_SUITE atomicity
static int inner_open(risk_store *s)
{
    return risk_memory_store_new(s);
}
static void check_file(const uint8_t *before, size_t len)
{
    (void)before, (void)len;
}
#endif

#define T0 INT64_C(1764000000000)
#define MIN INT64_C(60000)

static int64_t now_ms = T0;
static int64_t clock_fn(void *ud)
{
    (void)ud;
    return now_ms;
}

/* ---- the fault-injecting wrapper ---- */

struct faulty {
    long calls;   /* forwarded callbacks so far */
    long fail_at; /* the one to fail (0: never) */
    int code;
    risk_engine *other; /* R-ST-6: a second engine acting mid-operation */
    int other_done;
};

static struct faulty F;

/* FWD.fail: the F.fail_at-th callback fails with F.code. */
static int inject(const char *callback)
{
    if (++F.calls != F.fail_at)
        return 0;
    char msg[64];
    snprintf(msg, sizeof msg, "injected failure in %s", callback);
    return risk_error_set(F.code, msg);
}

static int w_get_user(void *ctx, void *t, const char *id, risk_user **o)
{
    int rc = fwd_get_user(ctx, t, id, o);
    if (rc == RISK_OK && F.other && !F.other_done) {
        /* Right after this engine read the user, another engine on the
         * same store changes it (R-ST-6). */
        F.other_done = 1;
        risk_user *v = NULL;
        cr_assert(eq(int, risk_user_new(&v, id), RISK_OK));
        cr_assert(eq(int, risk_user_set_deleted(v, 1), RISK_OK));
        cr_assert(eq(int, risk_engine_upsert_user(F.other, "other-engine", v), RISK_OK), "%s",
                  risk_error_last());
        risk_user_free(v);
    }
    return rc;
}

static risk_store wrapped(void)
{
    risk_store s = fwd_table();
    s.get_user = w_get_user;
    return s;
}

/* ---- a populated store ---- */

static risk_engine *E;

static void ev(const char *user, const char *id, risk_level lvl, int64_t at)
{
    risk_event *e = NULL;
    cr_assert(eq(int, risk_event_new(&e, id, user, "leakedCredentials", lvl, at), RISK_OK));
    cr_assert(eq(int, risk_event_set_ip(e, "203.0.113.9"), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(E, "detector", e, 0), RISK_OK), "%s", risk_error_last());
    risk_event_free(e);
}

static void user(const char *id, int mfa, int deleted)
{
    risk_user *u = NULL;
    cr_assert(eq(int, risk_user_new(&u, id), RISK_OK));
    if (mfa)
        cr_assert(eq(int, risk_user_set_mfa_registered(u, 1, T0 - 1000 * MIN), RISK_OK));
    cr_assert(eq(int, risk_user_set_deleted(u, deleted), RISK_OK));
    cr_assert(eq(int, risk_engine_upsert_user(E, "admin", u), RISK_OK));
    risk_user_free(u);
}

static void warm_policy_cache(void)
{
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(E, "nobody", v), RISK_OK));
    risk_verdict_free(v);
}

static void open_populated(void)
{
    memset(&F, 0, sizeof F);
    memset(&FWD, 0, sizeof FWD);
    FWD.fail = inject;
    F.code = RISK_EIO;
    now_ms = T0;
    cr_assert(eq(int, inner_open(&FWD.in), RISK_OK), "%s", risk_error_last());
    risk_store s = wrapped();
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = clock_fn;
    cr_assert(eq(int, risk_engine_new(&E, &s, &o), RISK_OK));
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "high", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(E, "admin", p), RISK_OK));
    risk_policy_free(p);
    user("alice", 1, 0);
    user("bob", 0, 0);
    user("carol", 1, 1);
    ev("alice", "a1", RISK_LEVEL_HIGH, T0 - 5 * MIN);
    ev("alice", "a2", RISK_LEVEL_LOW, T0 - 4 * MIN);
    ev("alice", "a3", RISK_LEVEL_MEDIUM, T0 - 3 * MIN);
    ev("bob", "b1", RISK_LEVEL_MEDIUM, T0 - 2 * MIN);
    ev("carol", "c1", RISK_LEVEL_MEDIUM, T0 - 1 * MIN); /* only alice ages */
    cr_assert(eq(int, risk_engine_resolve(E, "admin", "a3", "checked"), RISK_OK));
    /* Aging is due for alice's low event at T0 + 180 days. */
    now_ms = T0 + 10 * MIN;
    /* Warm the policy cache: it lives as long as the engine, so blocks it
     * holds are not the operation's. */
    warm_policy_cache();
}

static void close_engine(void)
{
    risk_engine_free(E);
    E = NULL;
    alloc_fail_reset();
}

static uint8_t *dump(size_t *len)
{
    long at = F.fail_at;
    F.fail_at = 0;
    uint8_t *buf = NULL;
    risk_store s = wrapped();
    cr_assert(eq(int, store_dump(&s, &buf, len), RISK_OK));
    F.fail_at = at;
    return buf;
}

/* ---- the operations ---- */

typedef int (*op_fn)(void);

static int op_upsert(void)
{
    risk_user *u = NULL;
    int rc = risk_user_new(&u, "bob");
    if (rc == RISK_OK)
        rc = risk_user_set_mfa_registered(u, 1, RISK_TIME_NONE);
    if (rc == RISK_OK)
        rc = risk_engine_upsert_user(E, "admin", u);
    risk_user_free(u);
    return rc;
}
static int op_ingest_new_user(void)
{
    risk_event *e = NULL;
    int rc = risk_event_new(&e, "d1", "dave", "anonymizedIPAddress", RISK_LEVEL_MEDIUM, T0);
    if (rc == RISK_OK)
        rc = risk_engine_ingest(E, "detector", e, 0);
    risk_event_free(e);
    return rc;
}
static int op_ingest_update(void)
{
    risk_event *e = NULL;
    int rc = risk_event_new(&e, "b1", "bob", "leakedCredentials", RISK_LEVEL_HIGH, T0 - 2 * MIN);
    if (rc == RISK_OK)
        rc = risk_event_set_ip(e, "203.0.113.9");
    if (rc == RISK_OK)
        rc = risk_engine_ingest(E, "detector", e, RISK_INGEST_UPDATE);
    risk_event_free(e);
    return rc;
}
static int op_secure_change(void) { return risk_engine_password_changed(E, "alice", "alice", RISK_PASSWORD_SECURE_CHANGE); }
static int op_secure_reset(void) { return risk_engine_password_changed(E, "alice", "alice", RISK_PASSWORD_SECURE_RESET); }
static int op_insecure(void) { return risk_engine_password_changed(E, "bob", "bob", RISK_PASSWORD_INSECURE); }
static int op_temp_password(void)
{
    char pw[32];
    return risk_engine_temporary_password(E, "helpdesk", "alice", pw, sizeof pw);
}
static int op_require_reset(void) { return risk_engine_require_reset(E, "helpdesk", "alice"); }
static int op_dismiss(void) { return risk_engine_dismiss(E, "admin", "carol", "deleted", NULL); }
static int op_resolve(void) { return risk_engine_resolve(E, "admin", "a1", "n"); }
static int op_false_positive(void) { return risk_engine_false_positive(E, "admin", "b1", NULL); }
static int op_ignore(void) { return risk_engine_ignore(E, "admin", "a2", "why"); }
static int op_reactivate(void) { return risk_engine_reactivate(E, "admin", "a3", NULL); }
static int op_confirm_compromised(void) { return risk_engine_confirm_compromised(E, "admin", "bob"); }
static int op_confirm_safe(void) { return risk_engine_confirm_safe(E, "admin", "alice"); }
static int op_policy_set(void)
{
    risk_policy *p = NULL;
    int rc = risk_policy_new(&p, "block-medium", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK);
    if (rc == RISK_OK)
        rc = risk_policy_exclude_add(p, "alice");
    if (rc == RISK_OK)
        rc = risk_engine_policy_set(E, "admin", p);
    risk_policy_free(p);
    return rc;
}
static int op_policy_remove(void) { return risk_engine_policy_remove(E, "admin", "high"); }
static int op_expire(void)
{
    now_ms = T0 + 200 * RISK_DAY_MS;
    return risk_engine_expire(E, NULL, NULL);
}
static int op_signin_catch_up(void)
{
    now_ms = T0 + 200 * RISK_DAY_MS;
    risk_verdict *v = NULL;
    int rc = risk_verdict_new(&v);
    if (rc == RISK_OK) {
        rc = risk_engine_sign_in(E, "alice", v);
        if (rc) /* R-PO-9: fail closed */
            cr_assert(eq(int, risk_verdict_decision(v), RISK_DECISION_BLOCK));
    }
    risk_verdict_free(v);
    return rc;
}

/* The state after only the aging catch-up of alice: sign-in runs the
 * catch-up as its own operation before deciding (SPEC §4), so a failure
 * after it leaves this state, which is also consistent. */
static uint8_t *caught_up(size_t *len)
{
    open_populated();
    now_ms = T0 + 200 * RISK_DAY_MS;
    cr_assert(eq(int, risk_engine_expire(E, NULL, NULL), RISK_OK));
    uint8_t *d = dump(len);
    close_engine();
    return d;
}

static int same(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    return la == lb && memcmp(a, b, la) == 0;
}

static const struct {
    const char *name;
    op_fn fn;
} ops[] = {
    { "upsert", op_upsert },
    { "ingest_new_user", op_ingest_new_user },
    { "ingest_update", op_ingest_update },
    { "secure_change", op_secure_change },
    { "secure_reset", op_secure_reset },
    { "insecure_change", op_insecure },
    { "temporary_password", op_temp_password },
    { "require_reset", op_require_reset },
    { "dismiss", op_dismiss },
    { "resolve", op_resolve },
    { "false_positive", op_false_positive },
    { "ignore", op_ignore },
    { "reactivate", op_reactivate },
    { "confirm_compromised", op_confirm_compromised },
    { "confirm_safe", op_confirm_safe },
    { "policy_set", op_policy_set },
    { "policy_remove", op_policy_remove },
    { "expire", op_expire },
    { "signin_catch_up", op_signin_catch_up },
};

/* R-CC-2, R-ST-2: a store failure at any callback rolls the whole
 * operation back; the store holds exactly what it held before. */
Test(ATOMICITY_SUITE, store_failure_at_every_callback_rolls_back, .fini = close_engine)
{
    size_t lcu;
    uint8_t *cu = caught_up(&lcu);
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        int rc = RISK_EIO;
        long k;
        for (k = 1; k < 500; k++) {
            open_populated();
            size_t l0, l1;
            uint8_t *before = dump(&l0);
            F.calls = 0;
            F.fail_at = k;
            rc = ops[i].fn();
            F.fail_at = 0;
            if (rc == RISK_OK) {
                cr_assert(lt(long, F.calls, k), "%s: injected failure at %ld was ignored", ops[i].name, k);
                free(before);
                close_engine();
                break;
            }
            cr_assert(eq(int, rc, RISK_EIO), "%s at %ld: %s", ops[i].name, k, risk_error_last());
            uint8_t *after = dump(&l1);
            cr_assert(same(before, l0, after, l1) ||
                          (ops[i].fn == op_signin_catch_up && same(cu, lcu, after, l1)),
                      "%s: store changed after failure at callback %ld", ops[i].name, k);
            free(before);
            close_engine();
            check_file(after, l1);
            free(after);
        }
        cr_assert(eq(int, rc, RISK_OK), "%s never succeeded", ops[i].name);
        cr_assert(gt(long, k, 1), "%s: no callback to fail", ops[i].name);
    }
    free(cu);
}

/* R-IV-3: out of memory at any allocation → RISK_ENOMEM, nothing changes,
 * nothing leaks (valgrind and ASan setups check the leaks too). */
Test(ATOMICITY_SUITE, allocation_failure_at_every_allocation_rolls_back, .fini = close_engine)
{
    size_t lcu;
    uint8_t *cu = caught_up(&lcu);
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        int rc = RISK_ENOMEM;
        long k;
        for (k = 1; k < 5000; k++) {
            open_populated();
            size_t l0, l1;
            uint8_t *before = dump(&l0);
            alloc_fail_install(k);
            long live = alloc_fail_live();
            rc = ops[i].fn();
            int hit = alloc_fail_failed();
            alloc_fail_install(0);
            warm_policy_cache(); /* policy changes drop it, even on failure */
            if (rc == RISK_OK) {
                free(before);
                close_engine();
                break;
            }
            cr_assert(hit, "%s: failed with %d without an injected failure", ops[i].name, rc);
            cr_assert(eq(int, rc, RISK_ENOMEM), "%s at alloc %ld: %s", ops[i].name, k,
                      risk_error_last());
            uint8_t *after = dump(&l1);
            if (ops[i].fn == op_signin_catch_up && same(cu, lcu, after, l1)) {
                /* the catch-up committed; the store grew by its records */
            } else {
                cr_assert(eq(long, alloc_fail_live(), live), "%s: leak after failing alloc %ld",
                          ops[i].name, k);
                cr_assert(same(before, l0, after, l1), "%s: store changed after failing alloc %ld",
                          ops[i].name, k);
            }
            free(before);
            close_engine();
            check_file(after, l1);
            free(after);
        }
        cr_assert(eq(int, rc, RISK_OK), "%s never succeeded", ops[i].name);
    }
    free(cu);
}

static int count_items(const risk_history *h, void *ud)
{
    (void)h;
    ++*(int *)ud;
    return 0;
}

/* R-ST-6: a store that reports conflicts makes the engine retry the whole
 * operation; the history has no duplicates; a persistent conflict is
 * returned after the bounded retries. */
Test(ATOMICITY_SUITE, conflicts_are_retried_without_duplicates, .fini = close_engine)
{
    open_populated();
    int before = 0, after = 0;
    cr_assert(eq(int, risk_engine_history_feed(E, 0, count_items, &before), RISK_OK));
    FWD.commits = 0;
    FWD.conflicts = 3;
    cr_assert(eq(int, risk_engine_dismiss(E, "admin", "alice", NULL, NULL), RISK_OK));
    cr_assert(eq(long, FWD.commits, 4));
    cr_assert(eq(int, risk_engine_history_feed(E, 0, count_items, &after), RISK_OK));
    cr_assert(eq(int, after, before + 1));
    FWD.commits = 0;
    FWD.conflicts = 1000;
    cr_assert(eq(int, risk_engine_dismiss(E, "admin", "bob", NULL, NULL), RISK_ECONFLICT));
    cr_assert(eq(long, FWD.commits, 9)); /* 1 + 8 retries */
    FWD.conflicts = 0;
    after = 0;
    cr_assert(eq(int, risk_engine_history_feed(E, 0, count_items, &after), RISK_OK));
    cr_assert(eq(int, after, before + 1));
}

static void noop_close(void *ctx)
{
    (void)ctx;
}

/* R-ST-6, R-CC-1: two engines share one store; while engine A works on a
 * user, engine B commits a change to it; A's commit conflicts on the user
 * version, A runs again on the new record, and both changes survive. */
Test(ATOMICITY_SUITE, two_engines_on_one_store, .fini = close_engine)
{
    open_populated();
    risk_store s = FWD.in;
    s.close = noop_close;
    cr_assert(eq(int, risk_engine_new(&F.other, &s, NULL), RISK_OK));
    F.other_done = 0;
    cr_assert(eq(int, risk_engine_dismiss(E, "admin", "bob", NULL, NULL), RISK_OK), "%s",
              risk_error_last());
    cr_assert(eq(int, F.other_done, 1));
    risk_user *u = NULL;
    cr_assert(eq(int, risk_engine_user(&u, E, "bob"), RISK_OK));
    cr_assert(eq(int, risk_user_deleted(u), 1));                       /* B's change */
    cr_assert(eq(int, risk_user_risk_state(u), RISK_STATE_DISMISSED)); /* A's change */
    risk_user_free(u);
    risk_engine_free(F.other);
    F.other = NULL;
}
