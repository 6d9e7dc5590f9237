/* The example store of docs/store.md (tests/example_store.c), driven
 * through an engine: the seed's four ways to close risk, the storage rules
 * of SPEC §9, and the same script over the shipped stores.
 *
 * Why the .c file is included: tests/meson.build builds one program per
 * `test_<name>.c` from that single source. Including the example store
 * keeps it one test program without a change to the build, and lets the
 * tests look into the store's committed rows (to prove a rollback left
 * them byte for byte as they were) and flip its failure switches. */
/* The fixture's memory-store opener and history counter are not used here
 * (this suite opens the example store, which has no read_history). */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "engine_fixture.h"

#include "example_store.c"

#include <stdio.h>
#include <unistd.h>

static struct example_store *ex; /* the store under fx */

static void ex_open(void)
{
    risk_store st;
    fx_now = T0;
    memset(&fx_fb, 0, sizeof fx_fb);
    memset(&fx_ch, 0, sizeof fx_ch);
    cr_assert(eq(int, example_store_new(&st), RISK_OK));
    ex = st.ctx;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    o.feedback = fx_feedback_fn;
    o.user_changed = fx_change_fn;
    cr_assert(eq(int, risk_engine_new(&fx, &st, &o), RISK_OK), "%s", risk_error_last());
}

static void ex_close(void)
{
    fx_close();              /* the table has no close callback ... */
    example_store_free(ex);  /* ... so the host frees the store itself */
    ex = NULL;
}

TestSuite(example_store, .init = ex_open, .fini = ex_close);

/* ---- looking into the store ---- */

/* Every committed row, serialised: equal snapshots = identical store.
 * next_seq is left out: a rolled-back number is never reused (gaps are
 * allowed by the reserve_seq rule). */
struct snap {
    uint8_t *b;
    size_t n;
};

static void snap_put(struct snap *s, const void *p, size_t len)
{
    s->b = realloc(s->b, s->n + len + 1);
    cr_assert(s->b != NULL);
    memcpy(s->b + s->n, p, len);
    s->n += len;
}

static struct snap snap_take(void)
{
    struct snap s = { NULL, 0 };
    for (int t = 0; t < N_TABLES; t++)
        for (const struct row *r = ex->tables[t]; r; r = r->next) {
            snap_put(&s, &t, sizeof t);
            snap_put(&s, r->key, strlen(r->key) + 1);
            snap_put(&s, &r->len, sizeof r->len);
            snap_put(&s, r->val, r->len);
        }
    return s;
}

static int snap_same(struct snap a, struct snap b)
{
    int same = a.n == b.n && (a.n == 0 || memcmp(a.b, b.b, a.n) == 0);
    free(a.b);
    free(b.b);
    return same;
}

static size_t rows(int table)
{
    size_t n = 0;
    for (const struct row *r = ex->tables[table]; r; r = r->next)
        n++;
    return n;
}

static int seq_cmp(const void *a, const void *b)
{
    uint64_t x = risk_history_seq(*(risk_history *const *)a);
    uint64_t y = risk_history_seq(*(risk_history *const *)b);
    return x < y ? -1 : x > y;
}

/* The committed history, decoded and sorted by seq; free with hist_free. */
static risk_history **hist_load(size_t *n)
{
    *n = rows(T_HISTORY);
    risk_history **v = calloc(*n + 1, sizeof *v);
    size_t i = 0;
    for (const struct row *r = ex->tables[T_HISTORY]; r; r = r->next, i++)
        cr_assert(eq(int, risk_history_decode(&v[i], r->val, r->len), RISK_OK));
    qsort(v, *n, sizeof *v, seq_cmp);
    return v;
}

static void hist_free(risk_history **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        risk_history_free(v[i]);
    free(v);
}

/* ---- R-ST-1: a versioned table of callbacks ---- */

/* R-ST-1 */
Test(example_store, the_engine_checks_the_table_version_and_required_callbacks)
{
    risk_store st;
    cr_assert(eq(int, example_store_new(&st), RISK_OK));
    risk_engine *e = NULL;
    risk_store bad = st;
    bad.version = 0;
    cr_assert(eq(int, risk_engine_new(&e, &bad, NULL), RISK_EINVAL));
    bad.version = RISK_STORE_VERSION + 1; /* from a newer header than this library */
    cr_assert(eq(int, risk_engine_new(&e, &bad, NULL), RISK_EINVAL));
    bad = st;
    bad.reserve_seq = NULL; /* a required callback */
    cr_assert(eq(int, risk_engine_new(&e, &bad, NULL), RISK_EINVAL));
    cr_assert(strstr(risk_error_last(), "reserve_seq") != NULL, "%s", risk_error_last());
    cr_assert(e == NULL);
    /* The table as written, with every optional callback NULL, is accepted. */
    cr_assert(eq(int, risk_engine_new(&e, &st, NULL), RISK_OK), "%s", risk_error_last());
    risk_engine_free(e);
    example_store_free(st.ctx); /* no close callback: the host frees it */
}

/* ---- R-ST-4: optional callbacks left NULL ---- */

static int count_user(const risk_user *u, void *ud)
{
    (void)u;
    return ++*(int *)ud, 0;
}

static int count_event(const risk_event *ev, void *ud)
{
    (void)ev;
    return ++*(int *)ud, 0;
}

static int count_item(const risk_history *h, void *ud)
{
    (void)h;
    return ++*(int *)ud, 0;
}

/* R-ST-4 */
Test(example_store, missing_optional_callbacks_make_queries_unsupported)
{
    fx_user("alice", 0, 0);
    cr_assert(eq(int, fx_event("alice", "e1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_OK));
    int n = 0;
    cr_assert(eq(int, risk_engine_users(fx, RISK_LEVEL_NONE, count_user, &n),
                 RISK_EUNSUPPORTED));
    cr_assert(strstr(risk_error_last(), "list_users") != NULL, "%s", risk_error_last());
    cr_assert(eq(int, risk_engine_history_feed(fx, 0, count_item, &n),
                 RISK_EUNSUPPORTED));
    cr_assert(strstr(risk_error_last(), "read_history") != NULL, "%s", risk_error_last());
    cr_assert(eq(int, risk_engine_history(fx, "alice", count_item, &n),
                 RISK_EUNSUPPORTED));
    cr_assert(eq(int, n, 0));
    uint64_t users = 9, events = 9;
    cr_assert(eq(int, risk_engine_expire(fx, &users, &events), RISK_EUNSUPPORTED));
    cr_assert(eq(u64, users, 0));
    risk_anchor a;
    cr_assert(eq(int, risk_engine_history_anchor(fx, &a), RISK_EUNSUPPORTED));
    cr_assert(eq(int, risk_engine_verify_history(fx, NULL, NULL), RISK_EUNSUPPORTED));
    risk_what_if *w = NULL;
    cr_assert(eq(int, risk_engine_what_if(&w, fx, NULL, 0, T0), RISK_EUNSUPPORTED));
    cr_assert(w == NULL);
    cr_assert(eq(int, risk_engine_compact(fx), RISK_EUNSUPPORTED));
    cr_assert(eq(int, risk_engine_backup(fx, "/nonexistent/x"), RISK_EUNSUPPORTED));
    /* Everything built on the required callbacks still works, including a
     * sign-in without view_user (a transaction and a copy instead). */
    cr_assert(eq(int, fx_level("alice"), RISK_LEVEL_HIGH));
    fx_policy("high-risk", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    risk_reason why;
    cr_assert(eq(int, fx_signin("alice", &why), RISK_DECISION_BLOCK));
    cr_assert(eq(int, why, RISK_REASON_RISK_LEVEL));
    n = 0;
    cr_assert(eq(int, risk_engine_events(fx, "alice", 0, count_event, &n),
                 RISK_OK));
    cr_assert(eq(int, n, 1));
}

/* ---- the seed's four ways, on the example store ---- */

/* Seed §"Require password reset with a user risk policy". R-PO-1, R-PO-2,
 * R-PO-10, R-ST-2 */
Test(example_store, seed_policy_driven_password_change)
{
    fx_policy("high-risk", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("alice", 0, 0);  /* MFA before the risk */
    fx_user("bob", -1, 0);   /* no MFA */
    cr_assert(eq(int, fx_event("alice", "a1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    cr_assert(eq(int, fx_event("alice", "a2", "anonymizedIPAddress", RISK_LEVEL_MEDIUM, 6), RISK_OK));
    cr_assert(eq(int, fx_event("bob", "b1", "leakedCredentials", RISK_LEVEL_HIGH, 5), RISK_OK));
    fx_now = T0 + 10 * MINUTE;
    risk_reason why;
    cr_assert(eq(int, fx_signin("alice", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, why, RISK_REASON_RISK_LEVEL));
    cr_assert(eq(str, (char *)risk_verdict_policy(fx_verdict), "high-risk"));
    cr_assert(eq(int, fx_signin("bob", &why), RISK_DECISION_BLOCK));
    cr_assert(eq(int, why, RISK_REASON_NOT_MFA_REGISTERED));
    cr_assert(eq(int, risk_engine_password_changed(fx, "alice", "alice",
                                                   RISK_PASSWORD_SECURE_CHANGE), RISK_OK));
    cr_assert(eq(int, fx_reason("a1"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_reason("a2"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_level("alice"), RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_state("alice"), RISK_STATE_REMEDIATED));
    cr_assert(eq(int, fx_detail("alice"), RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_CHANGE));
    cr_assert(eq(int, fx_signin("alice", &why), RISK_DECISION_ALLOW));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "a1", NULL), RISK_ETRANSITION));
}

/* Seed §"Manual password reset": temporary password and required reset.
 * R-PW-1, R-PW-2, R-PO-7, R-PO-10 */
Test(example_store, seed_manual_password_reset)
{
    fx_user("carol", -1, 0);
    fx_user("dave", 0, 0);
    cr_assert(eq(int, fx_event("carol", "c1", "unlikelyTravel", RISK_LEVEL_MEDIUM, 1), RISK_OK));
    cr_assert(eq(int, fx_event("dave", "d1", "unlikelyTravel", RISK_LEVEL_MEDIUM, 1), RISK_OK));
    char pw[64];
    cr_assert(eq(int, risk_engine_temporary_password(fx, "helpdesk", "carol", pw, sizeof pw),
                 RISK_OK), "%s", risk_error_last());
    cr_assert(eq(sz, strlen(pw), 16));
    cr_assert(eq(int, fx_reason("c1"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_detail("carol"), RISK_DETAIL_ADMIN_GENERATED_TEMPORARY_PASSWORD));
    risk_reason why;
    cr_assert(eq(int, fx_signin("carol", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, why, RISK_REASON_TEMPORARY_PASSWORD));
    /* Not for a user without MFA; nothing changes. */
    struct snap before = snap_take();
    cr_assert(eq(int, risk_engine_require_reset(fx, "helpdesk", "carol"), RISK_ENOMFA));
    cr_assert(snap_same(before, snap_take()));
    /* For an MFA user: events stay active until the secure reset. */
    cr_assert(eq(int, risk_engine_require_reset(fx, "helpdesk", "dave"), RISK_OK));
    cr_assert(eq(int, fx_evstate("d1"), RISK_EVENT_ACTIVE));
    cr_assert(eq(int, fx_signin("dave", &why), RISK_DECISION_REQUIRE_PASSWORD_CHANGE));
    cr_assert(eq(int, why, RISK_REASON_RESET_REQUIRED));
    cr_assert(eq(int, risk_engine_password_changed(fx, "dave", "dave", RISK_PASSWORD_SECURE_RESET),
                 RISK_OK));
    cr_assert(eq(int, fx_reason("d1"), RISK_CLOSE_REMEDIATED));
    cr_assert(eq(int, fx_detail("dave"), RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_RESET));
    cr_assert(eq(int, fx_signin("dave", &why), RISK_DECISION_ALLOW));
}

/* Seed §"Dismiss all risk events", its preferred case a deleted user.
 * R-DI-1, R-DI-2, R-EV-4 */
Test(example_store, seed_dismiss_all_on_a_deleted_user)
{
    fx_user("erin", -1, 1);
    cr_assert(eq(int, fx_event("erin", "x1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, fx_event("erin", "x2", "malwareInfectedIPAddress", RISK_LEVEL_LOW, 2), RISK_OK));
    uint32_t closed = 0;
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "erin", "account deleted", &closed),
                 RISK_OK));
    cr_assert(eq(u32, closed, 2));
    cr_assert(eq(int, fx_state("erin"), RISK_STATE_DISMISSED));
    cr_assert(eq(int, fx_level("erin"), RISK_LEVEL_NONE));
    cr_assert(eq(int, fx_reason("x1"), RISK_CLOSE_DISMISSED));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "x1", NULL), RISK_ETRANSITION));
}

/* Seed §"Close individual risk events manually". R-EV-2, R-EV-3, R-IN-1,
 * R-IN-2, R-US-2 */
Test(example_store, seed_close_individual_events)
{
    fx_user("frank", 0, 0);
    cr_assert(eq(int, fx_event("frank", "f1", "unlikelyTravel", RISK_LEVEL_MEDIUM, 1), RISK_OK));
    cr_assert(eq(int, fx_event("frank", "f2", "unfamiliarFeatures", RISK_LEVEL_LOW, 2), RISK_OK));
    cr_assert(eq(int, fx_event("frank", "f3", "anonymizedIPAddress", RISK_LEVEL_LOW, 3), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(fx, "admin", "f1", "VPN exit"), RISK_OK));
    cr_assert(eq(int, fx_level("frank"), RISK_LEVEL_LOW));
    cr_assert(eq(int, risk_engine_false_positive(fx, "admin", "f2", NULL), RISK_OK));
    cr_assert(eq(int, fx_fb.calls, 1));
    cr_assert(eq(int, risk_engine_ignore(fx, "admin", "f3", NULL), RISK_EINVAL));
    cr_assert(eq(int, risk_engine_ignore(fx, "admin", "f3", "red team"), RISK_OK));
    cr_assert(eq(int, fx_state("frank"), RISK_STATE_NONE));
    cr_assert(eq(int, fx_detail("frank"), RISK_DETAIL_ADMIN_CLOSED_EVENTS));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "f1", NULL), RISK_OK));
    cr_assert(eq(int, fx_level("frank"), RISK_LEVEL_MEDIUM));
    cr_assert(eq(int, fx_state("frank"), RISK_STATE_AT_RISK));
    cr_assert(eq(int, risk_engine_reactivate(fx, "admin", "f1", NULL), RISK_ETRANSITION));
}

/* ---- R-ST-2: bracketing, history through the callbacks, rollback ---- */

/* Every operation reached the store through append_history: one item per
 * operation, in seq order, each user's record holding its chain's head.
 * R-ST-2, R-OP-0, R-AU-1 */
Test(example_store, history_items_arrive_through_append_history)
{
    fx_user("gina", 0, 0);                                                          /* 1 */
    cr_assert(eq(int, fx_event("gina", "g1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_OK)); /* 2 */
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "gina", NULL, NULL), RISK_OK)); /* 3 */
    fx_policy("p", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON);              /* 4 */
    size_t n;
    risk_history **h = hist_load(&n);
    cr_assert(eq(sz, n, 4));
    static const risk_history_action want[] = { RISK_HISTORY_USER_UPSERT, RISK_HISTORY_INGEST,
                                                RISK_HISTORY_DISMISS_ALL,
                                                RISK_HISTORY_POLICY_SET };
    for (size_t i = 0; i < n; i++) {
        cr_assert(eq(int, risk_history_action_get(h[i]), want[i]));
        if (i)
            cr_assert(gt(u64, risk_history_seq(h[i]), risk_history_seq(h[i - 1])));
    }
    cr_assert(eq(str, (char *)risk_history_actor(h[2]), "admin"));
    risk_user *u = fx_get("gina");
    cr_assert(eq(int, memcmp(risk_user_chain_head(u), risk_history_chain(h[2]), 32), 0));
    risk_user_free(u);
    hist_free(h, n);
}

/* A write callback failing at any point rolls the whole operation back:
 * the store holds exactly what it held before. R-ST-2, R-CC-2 */
Test(example_store, a_failing_write_rolls_the_operation_back)
{
    fx_user("hank", 0, 0);
    cr_assert(eq(int, fx_event("hank", "h1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, fx_event("hank", "h2", "unlikelyTravel", RISK_LEVEL_MEDIUM, 2), RISK_OK));
    int failures = 0, rc;
    for (int k = 1;; k++) {
        struct snap before = snap_take();
        ex->fail_write_in = k;
        rc = risk_engine_password_changed(fx, "hank", "hank", RISK_PASSWORD_SECURE_CHANGE);
        if (rc == RISK_OK) {
            free(before.b);
            break;
        }
        cr_assert(eq(int, rc, RISK_EIO), "%s", risk_error_last());
        cr_assert(snap_same(before, snap_take()), "write %d failed but the store changed", k);
        cr_assert(eq(int, fx_state("hank"), RISK_STATE_AT_RISK));
        failures++;
        cr_assert(lt(int, k, 50));
    }
    ex->fail_write_in = 0;
    /* Two events, one history item and the user record: four writes. */
    cr_assert(eq(int, failures, 4));
    cr_assert(eq(int, fx_state("hank"), RISK_STATE_REMEDIATED));
}

/* A failing commit leaves nothing, and no rollback follows it. R-ST-2 */
Test(example_store, a_failing_commit_leaves_nothing)
{
    fx_user("ivan", 0, 0);
    struct snap before = snap_take();
    ex->fail_commit = 1;
    cr_assert(eq(int, fx_event("ivan", "i1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_EIO));
    cr_assert(snap_same(before, snap_take()));
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_engine_event(&ev, fx, "i1"), RISK_ENOTFOUND));
    /* The lock was released: the store goes on working. */
    cr_assert(eq(int, fx_event("ivan", "i1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, fx_level("ivan"), RISK_LEVEL_HIGH));
}

/* RISK_ECONFLICT at commit: the engine retries the whole operation, so it
 * lands once; past the retry bound the conflict is returned. R-ST-6 */
Test(example_store, conflicts_are_retried_then_returned)
{
    fx_user("judy", 0, 0);
    size_t items = rows(T_HISTORY);
    ex->conflict_commits = 2;
    cr_assert(eq(int, fx_event("judy", "j1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(sz, rows(T_HISTORY), items + 1)); /* not three */
    cr_assert(eq(int, ex->conflict_commits, 0));
    struct snap before = snap_take();
    ex->conflict_commits = 1000;
    cr_assert(eq(int, risk_engine_dismiss(fx, "admin", "judy", NULL, NULL), RISK_ECONFLICT));
    cr_assert(snap_same(before, snap_take()));
    cr_assert(eq(int, ex->conflict_commits, 1000 - 9)); /* 1 try + 8 retries (default) */
    ex->conflict_commits = 0;
    cr_assert(eq(int, fx_state("judy"), RISK_STATE_AT_RISK));
}

/* The one lock makes the store safe for the engine's threads. R-CC-1 */
static void *ingest_many(void *arg)
{
    const char *user = arg;
    for (int i = 0; i < 20; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%d", user, i);
        risk_event *ev = NULL;
        int rc = risk_event_new(&ev, id, user, "unlikelyTravel", RISK_LEVEL_LOW, T0 - i);
        if (rc == RISK_OK)
            rc = risk_engine_ingest(fx, "detector", ev, 0);
        risk_event_free(ev);
        if (rc)
            return arg;
    }
    return NULL;
}

/* R-CC-1 */
Test(example_store, threads_share_the_store)
{
    static const char *users[] = { "t1", "t2", "t3", "t4" };
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        cr_assert(eq(int, pthread_create(&th[i], NULL, ingest_many, (void *)users[i]), 0));
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        cr_assert(r == NULL, "ingest failed: %s", risk_error_last());
    }
    for (int i = 0; i < 4; i++) {
        risk_user *u = fx_get(users[i]);
        cr_assert(eq(u32, risk_user_active_events(u), 20));
        cr_assert(eq(u64, risk_user_score(u), 20));
        risk_user_free(u);
    }
    cr_assert(eq(sz, rows(T_EVENT), 80));
    cr_assert(eq(sz, rows(T_HISTORY), 80));
}

/* ---- R-ST-5: the shipped stores use the same interface ---- */

/* A proxy store that forwards every required callback to another table and
 * counts the brackets. Putting it in front of a shipped store shows the
 * engine reaches that store through the public table only. */
struct proxy {
    risk_store in;
    int begins, commits, rollbacks, writes;
};
#define IN(ctx) (((struct proxy *)(ctx))->in)

static int px_begin(void *c, const char *u, void **t)
{
    ((struct proxy *)c)->begins++;
    return IN(c).begin(IN(c).ctx, u, t);
}
static int px_commit(void *c, void *t)
{
    ((struct proxy *)c)->commits++;
    return IN(c).commit(IN(c).ctx, t);
}
static void px_rollback(void *c, void *t)
{
    ((struct proxy *)c)->rollbacks++;
    IN(c).rollback(IN(c).ctx, t);
}
static int px_get_user(void *c, void *t, const char *id, risk_user **o)
{
    return IN(c).get_user(IN(c).ctx, t, id, o);
}
static int px_put_user(void *c, void *t, const risk_user *u)
{
    ((struct proxy *)c)->writes++;
    return IN(c).put_user(IN(c).ctx, t, u);
}
static int px_get_event(void *c, void *t, const char *id, risk_event **o)
{
    return IN(c).get_event(IN(c).ctx, t, id, o);
}
static int px_put_event(void *c, void *t, const risk_event *e)
{
    ((struct proxy *)c)->writes++;
    return IN(c).put_event(IN(c).ctx, t, e);
}
static int px_user_events(void *c, void *t, const char *u, risk_event_visit_fn f, void *a)
{
    return IN(c).user_events(IN(c).ctx, t, u, f, a);
}
static int px_reserve_seq(void *c, void *t, uint64_t *s)
{
    return IN(c).reserve_seq(IN(c).ctx, t, s);
}
static int px_append_history(void *c, void *t, const risk_history *h)
{
    ((struct proxy *)c)->writes++;
    return IN(c).append_history(IN(c).ctx, t, h);
}
static int px_list_policies(void *c, void *t, risk_policy_visit_fn f, void *a)
{
    return IN(c).list_policies(IN(c).ctx, t, f, a);
}
static int px_put_policy(void *c, void *t, const risk_policy *p)
{
    ((struct proxy *)c)->writes++;
    return IN(c).put_policy(IN(c).ctx, t, p);
}
static int px_remove_policy(void *c, void *t, const char *n)
{
    return IN(c).remove_policy(IN(c).ctx, t, n);
}
static int px_get_meta(void *c, void *t, const char *k, uint8_t *b, size_t cap, size_t *l)
{
    return IN(c).get_meta(IN(c).ctx, t, k, b, cap, l);
}
static int px_put_meta(void *c, void *t, const char *k, const uint8_t *b, size_t l)
{
    return IN(c).put_meta(IN(c).ctx, t, k, b, l);
}

static risk_store proxy_of(struct proxy *p, const risk_store *in)
{
    memset(p, 0, sizeof *p);
    p->in = *in;
    risk_store s = { RISK_STORE_VERSION, p, px_begin, px_commit, px_rollback, px_get_user,
                     px_put_user, px_get_event, px_put_event, px_user_events, px_reserve_seq,
                     px_append_history, px_list_policies, px_put_policy, px_remove_policy,
                     px_get_meta, px_put_meta, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                     NULL };
    return s;
}

/* The seed's four ways as one script; the outcome as text. */
static void script(risk_engine *e, char *out, size_t cap)
{
    risk_engine *saved = fx;
    fx = e;
    fx_now = T0;
    fx_policy("high-risk", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    fx_user("u1", 0, 0);
    fx_user("u2", -1, 1);
    fx_user("u3", -1, 0);
    cr_assert(eq(int, fx_event("u1", "s1", "leakedCredentials", RISK_LEVEL_HIGH, 1), RISK_OK));
    cr_assert(eq(int, fx_event("u2", "s2", "unlikelyTravel", RISK_LEVEL_MEDIUM, 1), RISK_OK));
    cr_assert(eq(int, fx_event("u3", "s3", "unlikelyTravel", RISK_LEVEL_MEDIUM, 1), RISK_OK));
    cr_assert(eq(int, fx_event("u3", "s4", "anonymizedIPAddress", RISK_LEVEL_LOW, 2), RISK_OK));
    risk_reason r1, r3;
    risk_decision d1 = fx_signin("u1", &r1), d3 = fx_signin("u3", &r3);
    cr_assert(eq(int, risk_engine_password_changed(e, "u1", "u1", RISK_PASSWORD_SECURE_CHANGE),
                 RISK_OK));
    cr_assert(eq(int, risk_engine_dismiss(e, "admin", "u2", NULL, NULL), RISK_OK));
    cr_assert(eq(int, risk_engine_resolve(e, "admin", "s3", NULL), RISK_OK));
    char pw[32];
    cr_assert(eq(int, risk_engine_temporary_password(e, "admin", "u3", pw, sizeof pw), RISK_OK));
    size_t off = (size_t)snprintf(out, cap, "%d/%d %d/%d", d1, r1, d3, r3);
    static const char *const ids[] = { "u1", "u2", "u3" };
    for (int i = 0; i < 3 && off < cap; i++)
        off += (size_t)snprintf(out + off, cap - off, " %s:%d/%d/%d", ids[i], fx_level(ids[i]),
                                fx_state(ids[i]), fx_detail(ids[i]));
    static const char *const evs[] = { "s1", "s2", "s3", "s4" };
    for (int i = 0; i < 4 && off < cap; i++)
        off += (size_t)snprintf(out + off, cap - off, " %s:%d", evs[i], fx_reason(evs[i]));
    fx = saved;
}

static void run_proxied(const risk_store *inner, char *out, size_t cap, int owns)
{
    struct proxy p;
    risk_store st = proxy_of(&p, inner);
    risk_engine *e = NULL;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fx_clock;
    cr_assert(eq(int, risk_engine_new(&e, &st, &o), RISK_OK), "%s", risk_error_last());
    script(e, out, cap);
    risk_engine_free(e); /* the proxy has no close callback */
    if (owns && inner->close)
        inner->close(inner->ctx);
    cr_assert(gt(int, p.writes, 10));
    cr_assert(eq(int, p.begins, p.commits + p.rollbacks)); /* every begin is bracketed */
}

/* R-ST-5, R-ST-2 */
Test(example_store, shipped_stores_use_the_same_interface)
{
    char mine[512], mem[512], jnl[512];
    risk_store s;
    /* The shipped stores fill the same public table, required callbacks set. */
    cr_assert(eq(int, risk_memory_store_new(&s), RISK_OK));
    cr_assert(eq(u32, s.version, RISK_STORE_VERSION));
    cr_assert(s.begin && s.commit && s.rollback && s.get_user && s.put_user && s.get_event &&
              s.put_event && s.user_events && s.reserve_seq && s.append_history &&
              s.list_policies && s.put_policy && s.remove_policy && s.get_meta && s.put_meta);
    run_proxied(&s, mem, sizeof mem, 1);

    char path[] = "/tmp/librisk-example-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    unlink(path);
    risk_journal_options jo = RISK_JOURNAL_OPTIONS_INIT;
    jo.durability = RISK_DURABILITY_OFF;
    cr_assert(eq(int, risk_journal_open(&s, path, &jo, NULL), RISK_OK), "%s", risk_error_last());
    cr_assert(eq(u32, s.version, RISK_STORE_VERSION));
    run_proxied(&s, jnl, sizeof jnl, 1);
    unlink(path);

    cr_assert(eq(int, example_store_new(&s), RISK_OK));
    run_proxied(&s, mine, sizeof mine, 0);
    example_store_free(s.ctx);

    /* Same script, same outcome, whichever store is behind the table. */
    cr_assert(eq(str, mem, mine));
    cr_assert(eq(str, jnl, mine));
    cr_assert(strstr(mine, "1/1 2/2") == mine, "%s", mine); /* require change; block not-MFA */
}
