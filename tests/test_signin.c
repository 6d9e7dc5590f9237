/* The engine's sign-in (SPEC §6.1, R-PO-1…9) through both of its ways to
 * decide (lib/engine_signin.c): the decision table read without a lock,
 * and the general decision under the policy cache's read lock (users
 * named in a policy's lists, more than RISK_PTAB_MAX policies, a policy
 * change racing the sign-in). Whatever way is taken, the verdict is the
 * one risk_decide gives for the stored user and policies. */
/* The shared fixture's helpers this program does not use are fine. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "engine_fixture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "verdict_assert.h"

TestSuite(signin, .init = fx_open, .fini = fx_close);

struct pset {
    risk_policy *p[64];
    size_t n;
};

static int collect(const risk_policy *p, void *arg)
{
    struct pset *s = arg;
    cr_assert(s->n < 64);
    return risk_policy_dup(&s->p[s->n++], p);
}

/* Sign id in and compare every field with risk_decide over the stored
 * record (read after the sign-in: an aging catch-up it ran is in it) and
 * the stored policies. */
static void expect_as_risk_decide(const char *id)
{
    risk_verdict *got = NULL, *want = NULL;
    cr_assert(eq(int, risk_verdict_new(&got), RISK_OK));
    cr_assert(eq(int, risk_verdict_new(&want), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(fx, id, got), RISK_OK), "%s", risk_error_last());
    struct pset s = { .n = 0 };
    cr_assert(eq(int, risk_engine_policies(fx, collect, &s), RISK_OK));
    risk_user *u = NULL;
    int rc = risk_engine_user(&u, fx, id);
    cr_assert(rc == RISK_OK || rc == RISK_ENOTFOUND);
    cr_assert(eq(int, risk_decide(want, (const risk_policy *const *)s.p, s.n, u,
                                  u ? risk_user_risk_level(u) : RISK_LEVEL_NONE, fx_now),
                 RISK_OK));
    expect_same_decision(got, want, id);
    cr_assert(eq(i64, risk_verdict_at(got), fx_now), "%s", id);
    /* R-PO-8: risk_decide has no id for an unknown user; the engine names
     * the one it was asked about. */
    cr_assert(eq(str, (char *)risk_verdict_user_id(got), (char *)id));
    for (size_t i = 0; i < s.n; i++)
        risk_policy_free(s.p[i]);
    risk_user_free(u);
    risk_verdict_free(got);
    risk_verdict_free(want);
}

/* Users of every kind the decision tells apart. */
static const char *const kinds[] = {
    "none", "low", "medium", "high", "high-mfa", "high-mfa-late", "high-deleted",
    "temp-password", "reset-required", "aging", "nobody",
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static void make_users(void)
{
    fx_user("none", -1, 0);
    fx_user("low", -1, 0);
    cr_assert(eq(int, fx_event("low", "e-low", "anonymizedIPAddress", RISK_LEVEL_LOW, 10), RISK_OK));
    fx_user("medium", 0, 0);
    cr_assert(eq(int, fx_event("medium", "e-med", "atypicalTravel", RISK_LEVEL_MEDIUM, 10), RISK_OK));
    fx_user("high", -1, 0);
    cr_assert(eq(int, fx_event("high", "e-high", "leakedCredentials", RISK_LEVEL_HIGH, 10), RISK_OK));
    fx_user("high-mfa", 0, 0); /* registered before the risk (R-PO-11) */
    cr_assert(eq(int, fx_event("high-mfa", "e-hm", "leakedCredentials", RISK_LEVEL_HIGH, 10), RISK_OK));
    fx_user("high-mfa-late", 20, 0); /* registered during the risk */
    cr_assert(eq(int, fx_event("high-mfa-late", "e-hml", "leakedCredentials", RISK_LEVEL_HIGH, 10), RISK_OK));
    fx_user("high-deleted", 0, 1); /* R-OP-3, R-PO-6 */
    cr_assert(eq(int, fx_event("high-deleted", "e-hd", "leakedCredentials", RISK_LEVEL_HIGH, 10), RISK_OK));
    fx_user("temp-password", 0, 0); /* R-PO-7, then at risk again */
    char pw[64];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "admin", "temp-password", pw, sizeof pw), RISK_OK),
              "%s", risk_error_last());
    cr_assert(eq(int, fx_event("temp-password", "e-tp", "atypicalTravel", RISK_LEVEL_MEDIUM, 30), RISK_OK));
    fx_user("reset-required", 0, 0); /* R-PO-7 */
    cr_assert(eq(int, fx_event("reset-required", "e-rr", "leakedCredentials", RISK_LEVEL_HIGH, 10), RISK_OK));
    cr_assert(eq(int, risk_engine_require_reset(fx, "admin", "reset-required"), RISK_OK),
              "%s", risk_error_last());
    fx_user("aging", -1, 0); /* low ages out after 180 days (R-SC-2) */
    cr_assert(eq(int, fx_event("aging", "e-age", "unfamiliarFeatures", RISK_LEVEL_LOW, -180 * 24 * 60 + 60), RISK_OK));
}

static void all_as_risk_decide(void)
{
    for (size_t i = 0; i < N_KINDS; i++)
        expect_as_risk_decide(kinds[i]);
}

static int table_in_use(void)
{
    return (int)(atomic_load(&fx->ptab_seq) & 1);
}

static void set_policy(const char *name, risk_level th, risk_control c, risk_policy_mode m,
                       const char *include, const char *exclude)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, name, th, c), RISK_OK));
    cr_assert(eq(int, risk_policy_set_mode(p, m), RISK_OK));
    if (include)
        cr_assert(eq(int, risk_policy_include_add(p, include), RISK_OK));
    if (exclude)
        cr_assert(eq(int, risk_policy_exclude_add(p, exclude), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(fx, "admin", p), RISK_OK), "%s", risk_error_last());
    risk_policy_free(p);
}

/* R-PO-1…8, R-PO-11, R-OP-6: every kind of user, after each policy change,
 * decides as risk_decide: with the table (no lists), with users named in
 * lists (they take the locked way, the others still the table), with more
 * policies than the table holds (all take the locked way), and back. A
 * policy change always reaches the next sign-in (the table is rebuilt). */
Test(signin, both_ways_decide_as_risk_decide)
{
    make_users();
    all_as_risk_decide();
    cr_assert(table_in_use()); /* even with no policy at all */

    set_policy("high-rpc", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON,
               NULL, NULL);
    all_as_risk_decide();
    cr_assert(table_in_use());
    set_policy("medium-block-ro", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY,
               NULL, NULL);
    set_policy("aa-low-rpc-ro", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE,
               RISK_MODE_REPORT_ONLY, NULL, NULL);
    all_as_risk_decide();
    set_policy("low-block-but-high", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON, NULL, "high");
    all_as_risk_decide();
    cr_assert(table_in_use());
    set_policy("only-medium", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY, "medium", NULL);
    all_as_risk_decide();
    /* the named users were sent the locked way */
    cr_assert(eq(int, risk_ptab_listed(fx->ptab, "high", 4), 1));
    cr_assert(eq(int, risk_ptab_listed(fx->ptab, "medium", 6), 1));
    set_policy("high-rpc", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_ON, NULL, NULL); /* replaced */
    all_as_risk_decide();

    /* More than the table holds. */
    for (int i = 0; i < RISK_PTAB_MAX; i++) {
        char name[32];
        snprintf(name, sizeof name, "extra-%02d", i);
        set_policy(name, (risk_level)(1 + i % 3), (risk_control)(i % 2),
                   (risk_policy_mode)(i % 3), NULL, NULL);
    }
    all_as_risk_decide();
    cr_assert(eq(int, table_in_use(), 0));
    for (int i = 0; i < RISK_PTAB_MAX; i++) {
        char name[32];
        snprintf(name, sizeof name, "extra-%02d", i);
        cr_assert(eq(int, risk_engine_policy_remove(fx, "admin", name), RISK_OK));
    }
    all_as_risk_decide();
    cr_assert(table_in_use());

    /* Aging (SPEC §4): the catch-up runs before the decision. */
    fx_now = T0 + 181 * DAY;
    all_as_risk_decide();
    cr_assert(eq(int, (int)fx_level("aging"), RISK_LEVEL_NONE));
    cr_assert(eq(int, (int)fx_level("low"), RISK_LEVEL_NONE));
}

/* R-PO-4, R-PO-5: names of the longest allowed length (256 bytes) are
 * reported whole, deciding and report-only, and a verdict reused with
 * fewer report-only entries reports only those. */
Test(signin, long_policy_names)
{
    make_users();
    char a[RISK_ID_MAX + 1], b[RISK_ID_MAX + 1];
    memset(a, 'a', RISK_ID_MAX);
    a[RISK_ID_MAX] = '\0';
    memset(b, 'b', RISK_ID_MAX);
    b[RISK_ID_MAX] = '\0';
    set_policy(a, RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON, NULL, NULL);
    set_policy(b, RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY, NULL, NULL);
    expect_as_risk_decide("high");
    cr_assert(table_in_use());
    risk_reason r;
    cr_assert(eq(int, (int)fx_signin("high", &r), RISK_DECISION_BLOCK));
    cr_assert(eq(str, (char *)risk_verdict_policy(fx_verdict), a));
    cr_assert(eq(sz, risk_verdict_report_only_count(fx_verdict), 1));
    cr_assert(eq(str, (char *)risk_verdict_report_only_policy(fx_verdict, 0), b));
    cr_assert(eq(int, (int)fx_signin("low", &r), RISK_DECISION_ALLOW));
    cr_assert(eq(ptr, (void *)risk_verdict_policy(fx_verdict), NULL));
    cr_assert(eq(sz, risk_verdict_report_only_count(fx_verdict), 0));
    cr_assert(eq(ptr, (void *)risk_verdict_report_only_policy(fx_verdict, 0), NULL));
}

/* ------------------------------------------------------------------ */
/* risk_engine_sign_in_bulk                                           */

#define BULK_N 90 /* several of the engine's chunks, a partial one last */

/* ids[i] for i < BULK_N: every kind of user in turn, many times over,
 * among made-up users "u-<i>" some of which exist (so that the store's
 * prefetch walks maps with other users in them). */
static void bulk_ids(const char *ids[BULK_N], char names[BULK_N][16])
{
    for (size_t i = 0; i < BULK_N; i++) {
        if (i % 3 == 0) {
            ids[i] = kinds[(i / 3) % N_KINDS];
        } else {
            snprintf(names[i], sizeof names[i], "u-%zu", i);
            ids[i] = names[i];
        }
    }
}

/* Each verdict of a bulk sign-in is the one risk_engine_sign_in() gives
 * for the same user at the same time (R-PO-1…9, SPEC §6.1). */
static void expect_bulk_as_one_by_one(risk_engine *e, const char *const *ids, size_t n)
{
    risk_verdict *vs[BULK_N], *one = NULL;
    int res[BULK_N];
    cr_assert(n <= BULK_N);
    for (size_t i = 0; i < n; i++)
        cr_assert(eq(int, risk_verdict_new(&vs[i]), RISK_OK));
    cr_assert(eq(int, risk_verdict_new(&one), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in_bulk(e, ids, n, vs, res), 0), "%s", risk_error_last());
    for (size_t i = 0; i < n; i++) {
        cr_assert(eq(int, res[i], RISK_OK), "%s", ids[i]);
        cr_assert(eq(int, risk_engine_sign_in(e, ids[i], one), RISK_OK));
        expect_same_decision(vs[i], one, ids[i]);
        cr_assert(eq(i64, risk_verdict_at(vs[i]), risk_verdict_at(one)), "%s", ids[i]);
        cr_assert(eq(str, (char *)risk_verdict_user_id(vs[i]), (char *)ids[i]));
        risk_verdict_free(vs[i]);
    }
    risk_verdict_free(one);
}

static void make_more_users(void)
{
    for (int i = 0; i < BULK_N; i += 2) { /* every other made-up id exists */
        char id[16];
        snprintf(id, sizeof id, "u-%d", i);
        fx_user(id, i % 4 ? -1 : 0, 0);
        if (i % 6 == 2) {
            char ev[24];
            snprintf(ev, sizeof ev, "e-u-%d", i);
            cr_assert(eq(int, fx_event(id, ev, "leakedCredentials", (risk_level)(1 + i % 3), 10),
                         RISK_OK));
        }
    }
}

/* R-PO-1…9: a bulk sign-in decides each user as one sign-in would, with
 * the decision table, with users named in a policy's list (the locked
 * way), and with an aging catch-up due (SPEC §4: it runs first, and the
 * verdict is the settled one). */
Test(signin, bulk_decides_as_one_by_one)
{
    make_users();
    make_more_users();
    const char *ids[BULK_N];
    char names[BULK_N][16];
    bulk_ids(ids, names);
    expect_bulk_as_one_by_one(fx, ids, BULK_N);
    set_policy("high-rpc", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON,
               NULL, NULL);
    set_policy("medium-block", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK, RISK_MODE_ON, NULL, "u-2");
    expect_bulk_as_one_by_one(fx, ids, BULK_N);
    cr_assert(table_in_use());
    set_policy("ro", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_REPORT_ONLY, "medium", NULL);
    expect_bulk_as_one_by_one(fx, ids, BULK_N);
    expect_bulk_as_one_by_one(fx, ids + 1, 1);

    fx_now = T0 + 181 * DAY; /* "aging" and "low" age out on their first sign-in */
    expect_bulk_as_one_by_one(fx, ids, BULK_N);
    cr_assert(eq(int, (int)fx_level("aging"), RISK_LEVEL_NONE));
    cr_assert(eq(int, (int)fx_level("low"), RISK_LEVEL_NONE));
}

/* Another engine's policy change, written straight to a shared host store
 * (R-ST-6): the cache hides it until risk_engine_policies_changed(), and
 * then the next sign-in, one call or bulk, decides under it (R-OP-6). The
 * memory store here plays a host store: the engine forgets the store's
 * count of policy changes, which it follows by itself (next test). */
static void store_policy(const char *name, risk_control c, int remove)
{
    void *txn = NULL;
    cr_assert(eq(int, fx->st.begin(fx->st.ctx, NULL, &txn), RISK_OK));
    if (remove)
        cr_assert(eq(int, fx->st.remove_policy(fx->st.ctx, txn, name), RISK_OK));
    else {
        risk_policy *p = NULL;
        cr_assert(eq(int, risk_policy_new(&p, name, RISK_LEVEL_MEDIUM, c), RISK_OK));
        cr_assert(eq(int, fx->st.put_policy(fx->st.ctx, txn, p), RISK_OK));
        risk_policy_free(p);
    }
    cr_assert(eq(int, fx->st.commit(fx->st.ctx, txn), RISK_OK));
}

Test(signin, policies_changed_elsewhere)
{
    make_users();
    const char *ids[2] = {"high-mfa", "none"};
    risk_verdict *v[2];
    int rcs[2];
    cr_assert(eq(int, risk_verdict_new(&v[0]), RISK_OK));
    cr_assert(eq(int, risk_verdict_new(&v[1]), RISK_OK));
    fx->pgen = NULL;
    cr_assert(eq(int, (int)fx_signin("high", NULL), RISK_DECISION_ALLOW)); /* cache loaded */
    store_policy("elsewhere", RISK_CONTROL_BLOCK, 0);
    cr_assert(eq(int, (int)fx_signin("high", NULL), RISK_DECISION_ALLOW)); /* not seen yet */
    cr_assert(eq(int, risk_engine_policies_changed(fx), RISK_OK));
    cr_assert(eq(int, (int)fx_signin("high", NULL), RISK_DECISION_BLOCK));
    expect_as_risk_decide("high");
    store_policy("elsewhere", RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, 0);
    cr_assert(eq(int, risk_engine_policies_changed(fx), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in_bulk(fx, ids, 2, v, rcs), 0));
    cr_assert(eq(int, (int)risk_verdict_decision(v[0]), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, (int)risk_verdict_decision(v[1]), RISK_DECISION_ALLOW));
    store_policy("elsewhere", 0, 1);
    cr_assert(eq(int, risk_engine_policies_changed(fx), RISK_OK));
    cr_assert(eq(int, (int)fx_signin("high", NULL), RISK_DECISION_ALLOW));
    cr_assert(eq(int, risk_engine_policies_changed(NULL), RISK_EINVAL)); /* SPEC §7 */
    risk_verdict_free(v[0]);
    risk_verdict_free(v[1]);
}

/* Two engines on one built-in store (R-ST-6): each sign-in follows the
 * store's count of policy changes, so a policy one engine sets, changes
 * or removes reaches the other's next sign-in, one call or bulk, with no
 * call from the host (R-OP-6, R-PO-1). On a journal too (one memory
 * store inside). */
static risk_decision decide_on(risk_engine *e, const char *id)
{
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(e, id, v), RISK_OK), "%s", risk_error_last());
    risk_decision d = risk_verdict_decision(v);
    risk_verdict *bv[1] = {NULL};
    int rc[1];
    cr_assert(eq(int, risk_verdict_new(&bv[0]), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in_bulk(e, &id, 1, bv, rc), 0));
    cr_assert(eq(int, (int)risk_verdict_decision(bv[0]), (int)d), "bulk and one call differ");
    risk_verdict_free(bv[0]);
    risk_verdict_free(v);
    return d;
}

static void set_on(risk_engine *e, risk_control c, risk_policy_mode m)
{
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "shared", RISK_LEVEL_HIGH, c), RISK_OK));
    cr_assert(eq(int, risk_policy_set_mode(p, m), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(e, "admin", p), RISK_OK), "%s", risk_error_last());
    risk_policy_free(p);
}

static void two_engines_follow(risk_store *st)
{
    risk_store second = *st;
    second.close = NULL; /* the first engine closes the store */
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    risk_engine *a = NULL, *b = NULL;
    cr_assert(eq(int, risk_engine_new(&a, st, &o), RISK_OK));
    cr_assert(eq(int, risk_engine_new(&b, &second, &o), RISK_OK));
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "e1", "u", "leakedCredentials", RISK_LEVEL_HIGH, T0),
                 RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(a, "admin", ev, 0), RISK_OK));
    risk_event_free(ev);
    cr_assert(eq(int, (int)decide_on(b, "u"), RISK_DECISION_ALLOW)); /* b's cache: none */
    set_on(a, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    cr_assert(eq(int, (int)decide_on(b, "u"), RISK_DECISION_BLOCK));
    cr_assert(eq(int, (int)decide_on(a, "u"), RISK_DECISION_BLOCK));
    set_on(b, RISK_CONTROL_BLOCK, RISK_MODE_OFF);
    cr_assert(eq(int, (int)decide_on(a, "u"), RISK_DECISION_ALLOW));
    cr_assert(eq(int, (int)decide_on(b, "u"), RISK_DECISION_ALLOW));
    set_on(a, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    cr_assert(eq(int, (int)decide_on(b, "u"), RISK_DECISION_BLOCK));
    cr_assert(eq(int, risk_engine_policy_remove(a, "admin", "shared"), RISK_OK));
    cr_assert(eq(int, (int)decide_on(b, "u"), RISK_DECISION_ALLOW));
    risk_engine_free(b);
    risk_engine_free(a);
}

/* Run fn on a fresh memory store, then on a fresh journal (durability
 * off); fn's engines take the store. */
static void on_both_builtin_stores(void (*fn)(risk_store *))
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    fn(&st);
    char dir[] = "/tmp/librisk-signin-XXXXXX", path[64];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/j", dir);
    risk_journal_options jo = RISK_JOURNAL_OPTIONS_INIT;
    jo.durability = RISK_DURABILITY_OFF;
    cr_assert(eq(int, risk_journal_open(&st, path, &jo, NULL), RISK_OK), "%s", risk_error_last());
    fn(&st);
    unlink(path);
    rmdir(dir);
}

Test(signin, engines_sharing_a_store_follow_policy_changes)
{
    on_both_builtin_stores(two_engines_follow);
}

/* SPEC §7, R-PO-9: a bad item fails alone (EINVAL, its verdict block);
 * the others are decided; the count of failures is returned. A NULL
 * array or engine tries nothing and leaves every verdict given block. */
Test(signin, bulk_bad_items_fail_alone)
{
    make_users();
    char toolong[RISK_ID_MAX + 2];
    memset(toolong, 'x', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    const char *ids[6] = { "high", NULL, "low", "", toolong, "nobody" };
    risk_verdict *vs[6];
    int res[6];
    for (size_t i = 0; i < 6; i++)
        cr_assert(eq(int, risk_verdict_new(&vs[i]), RISK_OK));
    risk_verdict *keep = vs[5];
    vs[5] = NULL; /* no verdict for the last one */
    cr_assert(eq(int, risk_engine_sign_in_bulk(fx, ids, 6, vs, res), 4));
    cr_assert(eq(int, res[0], RISK_OK));
    cr_assert(eq(int, res[2], RISK_OK));
    cr_assert(eq(int, (int)risk_verdict_decision(vs[0]), (int)fx_signin("high", NULL)));
    cr_assert(eq(int, (int)risk_verdict_decision(vs[2]), RISK_DECISION_ALLOW));
    for (size_t i = 1; i < 6; i++) {
        if (i == 2)
            continue;
        cr_assert(eq(int, res[i], RISK_EINVAL), "item %zu", i);
        if (vs[i]) {
            cr_assert(eq(int, (int)risk_verdict_decision(vs[i]), RISK_DECISION_BLOCK));
            cr_assert(eq(int, (int)risk_verdict_reason(vs[i]), RISK_REASON_STORE_ERROR));
        }
    }
    vs[5] = keep;

    /* nothing tried */
    cr_assert(eq(int, risk_engine_sign_in_bulk(NULL, ids, 1, vs, res), RISK_EINVAL));
    cr_assert(eq(int, (int)risk_verdict_decision(vs[2]), RISK_DECISION_ALLOW)); /* not given */
    cr_assert(eq(int, risk_engine_sign_in_bulk(NULL, ids + 2, 1, vs + 2, res), RISK_EINVAL));
    cr_assert(eq(int, (int)risk_verdict_decision(vs[2]), RISK_DECISION_BLOCK));
    cr_assert(eq(int, risk_engine_sign_in_bulk(fx, NULL, 2, vs + 2, res), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_sign_in_bulk(fx, ids, 2, NULL, res), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_sign_in_bulk(fx, ids, 2, vs, NULL), RISK_EINVAL));
    cr_assert(eq(int, (int)risk_verdict_decision(vs[0]), RISK_DECISION_BLOCK));
    cr_assert(eq(int, risk_engine_sign_in_bulk(fx, NULL, 0, NULL, NULL), 0));
    for (size_t i = 0; i < 6; i++)
        risk_verdict_free(vs[i]);
}

/* The store's hint (risk_store.prefetch_users, R-ST-4): a table of
 * version 2 gets it, with the valid ids only; a table of version 1 ends
 * at backup, so whatever lies after it is never called. */
static void (*inner_prefetch)(void *, const char *const *, size_t);
static size_t hinted, hint_calls;
static void counting_prefetch(void *ctx, const char *const *ids, size_t n)
{
    hint_calls++;
    for (size_t i = 0; i < n; i++) {
        cr_assert(ids[i] != NULL && ids[i][0] != '\0');
        hinted++;
    }
    inner_prefetch(ctx, ids, n);
}

static void bulk_with_table_version(uint32_t version)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    inner_prefetch = st.prefetch_users;
    cr_assert(inner_prefetch != NULL);
    st.version = version;
    st.prefetch_users = counting_prefetch;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &st, NULL), RISK_OK), "%s", risk_error_last());
    const char *ids[BULK_N];
    char names[BULK_N][16];
    bulk_ids(ids, names);
    ids[7] = NULL; /* refused before the hint */
    risk_verdict *vs[BULK_N];
    int res[BULK_N];
    for (size_t i = 0; i < BULK_N; i++)
        cr_assert(eq(int, risk_verdict_new(&vs[i]), RISK_OK));
    hinted = hint_calls = 0;
    cr_assert(eq(int, risk_engine_sign_in_bulk(e, ids, BULK_N, vs, res), 1));
    cr_assert(eq(int, res[7], RISK_EINVAL));
    if (version >= 2) {
        cr_assert(eq(sz, hinted, BULK_N - 1));
        cr_assert(ge(sz, hint_calls, 2)); /* more than one chunk */
    } else {
        cr_assert(eq(sz, hinted, 0));
    }
    for (size_t i = 0; i < BULK_N; i++)
        risk_verdict_free(vs[i]);
    risk_engine_free(e);
}

Test(signin, bulk_hints_stores_of_version_2_only)
{
    bulk_with_table_version(RISK_STORE_VERSION);
    bulk_with_table_version(1);
}

/* The journal store passes the hint to its memory: decisions as one by one. */
Test(signin, bulk_on_a_journal)
{
    char dir[] = "/tmp/librisk-signin-XXXXXX", path[64];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/j", dir);
    risk_store st;
    cr_assert(eq(int, risk_journal_open(&st, path, NULL, NULL), RISK_OK), "%s", risk_error_last());
    cr_assert(st.prefetch_users != NULL);
    risk_engine *saved = fx, *e = NULL;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    cr_assert(eq(int, risk_engine_new(&e, &st, &o), RISK_OK), "%s", risk_error_last());
    fx = e; /* the fixture's helpers act on the journal's engine */
    make_users();
    make_more_users();
    set_policy("high-rpc", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON,
               NULL, NULL);
    const char *ids[BULK_N];
    char names[BULK_N][16];
    bulk_ids(ids, names);
    expect_bulk_as_one_by_one(e, ids, BULK_N);
    fx = saved;
    risk_engine_free(e);
    cr_assert(eq(int, unlink(path), 0));
    cr_assert(eq(int, rmdir(dir), 0));
}

/* R-SC-2 ("a sign-in is right at any time without writing"), SPEC §4: on
 * a read-only journal the aging catch-up cannot be written, so a user past
 * an event's period is decided as the catch-up would leave it, computed
 * in memory; nothing is written, one call or bulk, with a receipt too. */
Test(signin, read_only_store_decides_after_aging)
{
    char dir[] = "/tmp/librisk-signin-XXXXXX", path[64];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/j", dir);
    risk_store st;
    risk_journal_options jo = RISK_JOURNAL_OPTIONS_INIT;
    cr_assert(eq(int, risk_journal_open(&st, path, &jo, NULL), RISK_OK), "%s", risk_error_last());
    risk_engine *saved = fx, *e = NULL;
    static const uint8_t key[32] = {1, 2, 3};
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    o.receipt_key = key;
    o.receipt_key_len = sizeof key;
    cr_assert(eq(int, risk_engine_new(&e, &st, &o), RISK_OK), "%s", risk_error_last());
    fx = e;
    fx_now = T0;
    fx_user("aging", -1, 0);
    cr_assert(eq(int, fx_event("aging", "e-age", "unfamiliarFeatures", RISK_LEVEL_LOW, 0), RISK_OK));
    fx_user("stays", -1, 0);
    cr_assert(eq(int, fx_event("stays", "e-med", "atypicalTravel", RISK_LEVEL_MEDIUM, 0), RISK_OK));
    set_policy("low-block", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON, NULL, NULL);
    risk_engine_free(e);
    jo.read_only = 1;
    cr_assert(eq(int, risk_journal_open(&st, path, &jo, NULL), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, risk_engine_new(&e, &st, &o), RISK_OK), "%s", risk_error_last());
    fx = e;
    struct stat before;
    cr_assert(eq(int, stat(path, &before), 0));
    cr_assert(eq(int, (int)fx_signin("aging", NULL), RISK_DECISION_BLOCK)); /* not aged yet */
    fx_now = T0 + 181 * DAY;
    risk_reason why;
    cr_assert(eq(int, (int)fx_signin("aging", &why), RISK_DECISION_ALLOW));
    cr_assert(eq(int, (int)why, RISK_REASON_NONE));
    cr_assert(eq(int, (int)risk_verdict_level(fx_verdict), RISK_LEVEL_NONE));
    cr_assert(eq(int, (int)fx_signin("stays", NULL), RISK_DECISION_BLOCK));
    expect_as_risk_decide("aging"); /* as the query shows the user */
    const char *ids[2] = {"aging", "stays"};
    risk_verdict *v[2];
    int rcs[2];
    cr_assert(eq(int, risk_verdict_new(&v[0]), RISK_OK));
    cr_assert(eq(int, risk_verdict_new(&v[1]), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in_bulk(e, ids, 2, v, rcs), 0));
    cr_assert(eq(int, (int)risk_verdict_decision(v[0]), RISK_DECISION_ALLOW));
    cr_assert(eq(int, (int)risk_verdict_decision(v[1]), RISK_DECISION_BLOCK));
    cr_assert(eq(int, risk_verdict_want_receipt(v[0], 1), RISK_OK));
    cr_assert(eq(int, risk_engine_sign_in(e, "aging", v[0]), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(int, (int)risk_verdict_decision(v[0]), RISK_DECISION_ALLOW));
    cr_assert(risk_verdict_receipt(v[0]) != NULL);
    cr_assert(eq(int, risk_receipt_verify(risk_verdict_receipt(v[0]), key, sizeof key), RISK_OK));
    risk_verdict_free(v[0]);
    risk_verdict_free(v[1]);
    struct stat after;
    cr_assert(eq(int, stat(path, &after), 0));
    cr_assert(eq(i64, (int64_t)after.st_size, (int64_t)before.st_size));
    cr_assert(eq(i64, (int64_t)after.st_mtime, (int64_t)before.st_mtime));
    fx = saved;
    risk_engine_free(e);
    cr_assert(eq(int, unlink(path), 0));
    cr_assert(eq(int, rmdir(dir), 0));
}

/* R-AU-1, R-ST-6: two engines sharing a built-in store change policies at
 * once. Each reads the policy set's chain head from the store and writes
 * the new one back: the store refuses the second of two such writes from
 * the same head (RISK_ECONFLICT, and the engine retries), so the chain
 * stays whole. */
static risk_engine *chain_e[2];
static atomic_int chain_ok;
static void *chain_setter(void *arg)
{
    int w = (int)(intptr_t)arg;
    char name[16];
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof name, "p%d-%d", w, i % 4);
        risk_policy *p = NULL;
        if (risk_policy_new(&p, name, RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK) != RISK_OK)
            return NULL;
        int rc = risk_engine_policy_set(chain_e[w], "admin", p);
        risk_policy_free(p);
        if (rc == RISK_OK)
            atomic_fetch_add(&chain_ok, 1);
        else if (rc != RISK_ECONFLICT) /* retries exhausted is allowed, nothing else */
            return NULL;
    }
    return NULL;
}

static void policy_chain_under_two_engines(risk_store *st)
{
    risk_store second = *st;
    second.close = NULL;
    cr_assert(eq(int, risk_engine_new(&chain_e[0], st, NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_new(&chain_e[1], &second, NULL), RISK_OK));
    atomic_store(&chain_ok, 0);
    pthread_t t[2];
    for (intptr_t i = 0; i < 2; i++)
        cr_assert(eq(int, pthread_create(&t[i], NULL, chain_setter, (void *)i), 0));
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert(atomic_load(&chain_ok) > 150, "%d policy changes", atomic_load(&chain_ok));
    uint64_t bad = 0;
    cr_assert(eq(int, risk_engine_verify_history(chain_e[0], NULL, &bad), RISK_OK),
              "item %llu: %s", (unsigned long long)bad, risk_error_last());
    risk_engine_free(chain_e[1]);
    risk_engine_free(chain_e[0]);
}

Test(signin, two_engines_keep_the_policy_chain_whole)
{
    on_both_builtin_stores(policy_chain_under_two_engines);
}

/* The engine follows the policy count only of a table that is a built-in
 * store's, whole: a host store wrapping the memory store with a ctx of its
 * own, and reusing one of its callbacks, is a host store (its ctx is no
 * memory store to read a count from). */
static int wrapped_begin(void *ctx, const char *user_id, void **txn)
{
    const risk_store *inner = ctx;
    return inner->begin(inner->ctx, user_id, txn);
}

Test(signin, policy_count_only_of_whole_builtin_tables)
{
    risk_store mem, wrap;
    cr_assert(eq(int, risk_memory_store_new(&mem), RISK_OK));
    cr_assert(risk_store_policy_gen_of(&mem) != NULL);
    cr_assert(risk_store_split_of(&mem) == NULL);
    wrap = mem;
    wrap.ctx = &mem; /* not a memory store */
    wrap.begin = wrapped_begin;
    cr_assert(risk_store_policy_gen_of(&wrap) == NULL);
    mem.close(mem.ctx);
    char dir[] = "/tmp/librisk-signin-XXXXXX", path[64];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/j", dir);
    risk_store j;
    cr_assert(eq(int, risk_journal_open(&j, path, NULL, NULL), RISK_OK), "%s", risk_error_last());
    cr_assert(risk_store_policy_gen_of(&j) != NULL);
    cr_assert(risk_store_split_of(&j) != NULL);
    wrap = j;
    wrap.ctx = &j;
    wrap.begin = wrapped_begin;
    cr_assert(risk_store_policy_gen_of(&wrap) == NULL);
    cr_assert(risk_store_split_of(&wrap) == NULL);
    j.close(j.ctx);
    unlink(path);
    rmdir(dir);
}
