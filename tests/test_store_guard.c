/* A host store that misbehaves (R-ST-1, R-ST-2, R-ST-3, R-IV-2).
 *
 * The engine checks what a host's callbacks return (lib/store_guard.c,
 * docs/store.md "What the engine checks"): a wrapper around the memory
 * store answers wrongly in one way at a time, and every operation must
 * then fail with a documented code, crash nowhere, and leave the store as
 * it was, byte for byte. Before the guard, these wrappers crashed the
 * engine (RISK_OK without a record), made a dismiss of one user clear
 * another's risk, or had success reported on partial data. */
#include "fwd_store.h"
#include "store_dump.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#define T0 INT64_C(1764000000000)
#define MIN INT64_C(60000)

static int64_t clock_fn(void *ud)
{
    (void)ud;
    return T0;
}

enum mode {
    M_NONE,
    M_NULL_USER,      /* get_user: RISK_OK, *out NULL */
    M_NULL_EVENT,     /* get_event: RISK_OK, *out NULL */
    M_OTHER_USER,     /* get_user / view_user of alice: bob's record */
    M_OTHER_EVENT,    /* get_event: another event than asked */
    M_FOREIGN_EVENT,  /* user_events of alice: bob's events too */
    M_TWICE_EVENT,    /* user_events: every event twice */
    M_SWALLOW,        /* user_events, read_history: ignore the visitor's result */
    M_ODD_CODE,       /* get_meta: returns 7 */
    M_POLICIES_ONE,   /* list_policies: returns 1 without visiting */
    M_TWICE_USER,     /* list_users: every user twice */
    M_LOW_USER,       /* list_users: ignores min_level */
    M_HIST_ANY_USER,  /* read_history: ignores user_id */
    M_STALE_EVENT,    /* user_events: each event, then an older copy of it */
    M_USER_TWO_LEVELS, /* list_users: each user, then a copy at level none */
    M_VIEW_TWICE,     /* view_user: the user, then a copy at level none */
    M_VIEW_THEN_NONE, /* view_user: the user, then RISK_ENOTFOUND */
    M_HIST_REPEAT,    /* read_history: everything twice */
    M_POLICY_TWICE,   /* list_policies: each policy twice */
    M_VERSION_MAX,    /* get_user: version 2^64-1 */
    M_USER_LOWERED,   /* list_users: each user at level none instead */
};

static enum mode MODE;

static int h_get_user(void *c, void *t, const char *id, risk_user **o)
{
    (void)c;
    if (MODE == M_OTHER_USER && strcmp(id, "alice") == 0)
        id = "bob";
    int rc = FWD.in.get_user(FWD.in.ctx, t, id, o);
    if (rc == RISK_OK && MODE == M_NULL_USER) {
        risk_user_free(*o);
        *o = NULL;
    }
    if (rc == RISK_OK && MODE == M_VERSION_MAX)
        risk_user_set_version(*o, UINT64_MAX);
    return rc;
}
static int h_get_event(void *c, void *t, const char *id, risk_event **o)
{
    (void)c;
    if (MODE == M_OTHER_EVENT)
        id = "a1";
    int rc = FWD.in.get_event(FWD.in.ctx, t, id, o);
    if (rc == RISK_OK && MODE == M_NULL_EVENT) {
        risk_event_free(*o);
        *o = NULL;
    }
    return rc;
}

/* a visitor between the inner store and the engine's */
struct relay {
    risk_event_visit_fn efn;
    risk_user_visit_fn ufn;
    risk_history_visit_fn hfn;
    risk_policy_visit_fn pfn;
    void *arg;
    int twice, swallow;
};
static int relay_event(const risk_event *e, void *a)
{
    struct relay *r = a;
    int rc = r->efn(e, r->arg);
    if (rc == 0 && r->twice)
        rc = r->efn(e, r->arg);
    if (rc == 0 && MODE == M_STALE_EVENT) { /* the row before an update */
        risk_event *old = NULL;
        cr_assert(eq(int, risk_event_new(&old, risk_event_id(e), risk_event_user_id(e),
                                         risk_event_type(e), risk_event_level(e),
                                         risk_event_detected_at(e) - 1), RISK_OK));
        rc = r->efn(old, r->arg);
        risk_event_free(old);
    }
    return r->swallow ? 0 : rc;
}
/* u again, at level none */
static int visit_lowered(const risk_user *u, risk_user_visit_fn fn, void *arg)
{
    risk_user *c = NULL;
    cr_assert(eq(int, risk_user_dup(&c, u), RISK_OK));
    cr_assert(eq(int, risk_user_set_risk(c, RISK_LEVEL_NONE, RISK_STATE_NONE, RISK_DETAIL_NONE,
                                         RISK_TIME_NONE, 0, RISK_TIME_NONE, RISK_TIME_NONE, 0),
                 RISK_OK));
    int rc = fn(c, arg);
    risk_user_free(c);
    return rc;
}
static int relay_user(const risk_user *u, void *a)
{
    struct relay *r = a;
    if (MODE == M_USER_LOWERED)
        return visit_lowered(u, r->ufn, r->arg);
    int rc = r->ufn(u, r->arg);
    if (rc == 0 && r->twice)
        rc = r->ufn(u, r->arg);
    if (rc == 0 && (MODE == M_USER_TWO_LEVELS || MODE == M_VIEW_TWICE))
        rc = visit_lowered(u, r->ufn, r->arg);
    return rc;
}
static int relay_history(const risk_history *h, void *a)
{
    struct relay *r = a;
    int rc = r->hfn(h, r->arg);
    return r->swallow ? 0 : rc;
}
static int relay_policy(const risk_policy *p, void *a)
{
    struct relay *r = a;
    int rc = r->pfn(p, r->arg);
    return rc ? rc : r->pfn(p, r->arg);
}

static int h_user_events(void *c, void *t, const char *u, risk_event_visit_fn fn, void *a)
{
    (void)c;
    struct relay r = { .efn = fn, .arg = a, .twice = MODE == M_TWICE_EVENT,
                       .swallow = MODE == M_SWALLOW };
    int rc = FWD.in.user_events(FWD.in.ctx, t, u, relay_event, &r);
    if (rc == RISK_OK && MODE == M_FOREIGN_EVENT && strcmp(u, "alice") == 0)
        rc = FWD.in.user_events(FWD.in.ctx, t, "bob", relay_event, &r);
    return rc;
}
static int h_list_policies(void *c, void *t, risk_policy_visit_fn fn, void *a)
{
    (void)c;
    if (MODE == M_POLICIES_ONE)
        return 1;
    if (MODE == M_POLICY_TWICE) {
        struct relay r = { .pfn = fn, .arg = a };
        return FWD.in.list_policies(FWD.in.ctx, t, relay_policy, &r);
    }
    return FWD.in.list_policies(FWD.in.ctx, t, fn, a);
}
static int h_get_meta(void *c, void *t, const char *k, uint8_t *b, size_t cap, size_t *l)
{
    (void)c;
    if (MODE == M_ODD_CODE)
        return 7;
    return FWD.in.get_meta(FWD.in.ctx, t, k, b, cap, l);
}
static int h_view_user(void *c, const char *id, risk_user_visit_fn fn, void *a)
{
    (void)c;
    if (MODE == M_OTHER_USER && strcmp(id, "alice") == 0)
        id = "bob";
    if (MODE == M_VIEW_TWICE) {
        struct relay r = { .ufn = fn, .arg = a };
        return FWD.in.view_user(FWD.in.ctx, id, relay_user, &r);
    }
    int rc = FWD.in.view_user(FWD.in.ctx, id, fn, a);
    return rc == RISK_OK && MODE == M_VIEW_THEN_NONE ? RISK_ENOTFOUND : rc;
}
static int h_list_users(void *c, risk_level min, risk_user_visit_fn fn, void *a)
{
    (void)c;
    struct relay r = { .ufn = fn, .arg = a, .twice = MODE == M_TWICE_USER };
    return FWD.in.list_users(FWD.in.ctx, MODE == M_LOW_USER ? RISK_LEVEL_NONE : min, relay_user,
                           &r);
}
static int h_read_history(void *c, const char *u, uint64_t since, risk_history_visit_fn fn,
                          void *a)
{
    (void)c;
    struct relay r = { .hfn = fn, .arg = a, .swallow = MODE == M_SWALLOW };
    int rc = FWD.in.read_history(FWD.in.ctx, MODE == M_HIST_ANY_USER ? NULL : u, since,
                               relay_history, &r);
    if (rc == RISK_OK && MODE == M_HIST_REPEAT)
        rc = FWD.in.read_history(FWD.in.ctx, u, since, relay_history, &r);
    return rc;
}

static risk_engine *E;
static uint8_t *before;
static size_t before_len;

static void ingest(const char *user, const char *id, risk_level lvl, int64_t at)
{
    risk_event *e = NULL;
    cr_assert(eq(int, risk_event_new(&e, id, user, "leakedCredentials", lvl, at), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(E, "detector", e, 0), RISK_OK), "%s", risk_error_last());
    risk_event_free(e);
}

/* alice: mfa, one high and one low event; bob: one medium event; a policy
 * that blocks high risk. */
static void setup(void)
{
    MODE = M_NONE;
    risk_store s;
    cr_assert(eq(int, fwd_memory(&s), RISK_OK));
    s.get_user = h_get_user;
    s.get_event = h_get_event;
    s.user_events = h_user_events;
    s.list_policies = h_list_policies;
    s.get_meta = h_get_meta;
    s.view_user = h_view_user;
    s.list_users = h_list_users;
    s.read_history = h_read_history;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = clock_fn;
    cr_assert(eq(int, risk_engine_new(&E, &s, &o), RISK_OK));
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(E, "admin", p), RISK_OK));
    risk_policy_free(p);
    ingest("alice", "a1", RISK_LEVEL_HIGH, T0 - 5 * MIN);
    ingest("alice", "a2", RISK_LEVEL_LOW, T0 - 4 * MIN);
    ingest("bob", "b1", RISK_LEVEL_MEDIUM, T0 - 3 * MIN);
    cr_assert(eq(int, store_dump(&FWD.in, &before, &before_len), RISK_OK));
}

static void teardown(void)
{
    risk_engine_free(E);
    E = NULL;
    free(before);
    before = NULL;
}

/* the store holds what it held after setup */
static void unchanged(const char *what)
{
    MODE = M_NONE;
    uint8_t *after = NULL;
    size_t len = 0;
    cr_assert(eq(int, store_dump(&FWD.in, &after, &len), RISK_OK));
    cr_assert(len == before_len && memcmp(before, after, len) == 0,
              "%s: the store changed", what);
    free(after);
}

/* alice's dismiss under mode m fails with code, closes nothing, and the
 * store holds what it held */
static void dismiss_refused(enum mode m, int code, const char *what)
{
    MODE = m;
    uint32_t closed = 0;
    cr_expect(eq(int, risk_engine_dismiss(E, "admin", "alice", NULL, &closed), code), "%s: %s",
              what, risk_error_last());
    cr_expect(eq(u32, closed, 0), "%s", what);
    unchanged(what);
}

static risk_decision sign_in(const char *user, int *rc)
{
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    *rc = risk_engine_sign_in(E, user, v);
    risk_decision d = risk_verdict_decision(v);
    risk_verdict_free(v);
    return d;
}

static int count_fn(const void *rec, void *arg)
{
    (void)rec;
    ++*(int *)arg;
    return 0;
}
static int count_event(const risk_event *e, void *arg) { return count_fn(e, arg); }
static int count_user(const risk_user *u, void *arg) { return count_fn(u, arg); }
static int count_history(const risk_history *h, void *arg) { return count_fn(h, arg); }
static int count_policy(const risk_policy *p, void *arg) { return count_fn(p, arg); }

TestSuite(store_guard, .init = setup, .fini = teardown);

/* A read that says RISK_OK without a record: RISK_ESTORE, no crash. */
Test(store_guard, ok_without_a_user_is_a_store_error)
{
    MODE = M_NULL_USER;
    uint32_t closed = 0;
    cr_expect(eq(int, risk_engine_dismiss(E, "admin", "alice", NULL, &closed), RISK_ESTORE));
    risk_user *u = NULL;
    cr_expect(eq(int, risk_engine_user(&u, E, "alice"), RISK_ESTORE));
    cr_expect(eq(ptr, u, NULL));
    cr_expect(eq(int, risk_engine_password_changed(E, "alice", "alice", RISK_PASSWORD_SECURE_CHANGE), RISK_ESTORE));
    unchanged("get_user without a record");
}

Test(store_guard, ok_without_an_event_is_a_store_error)
{
    MODE = M_NULL_EVENT;
    cr_expect(eq(int, risk_engine_resolve(E, "admin", "a1", NULL), RISK_ESTORE));
    risk_event *ev = NULL;
    cr_expect(eq(int, risk_engine_event(&ev, E, "a1"), RISK_ESTORE));
    cr_expect(eq(ptr, ev, NULL));
    unchanged("get_event without a record");
}

/* R-ST-3: the record of another user is refused, never written back over
 * that user (before: dismiss(alice) wrote "dismissed, none" into bob's
 * record while bob's event stayed active, and alice's sign-in was decided
 * on bob's medium risk: allowed). */
Test(store_guard, another_users_record_is_corrupt)
{
    MODE = M_OTHER_USER;
    uint32_t closed = 0;
    cr_expect(eq(int, risk_engine_dismiss(E, "admin", "alice", NULL, &closed), RISK_ECORRUPT));
    int rc;
    cr_expect(eq(int, sign_in("alice", &rc), RISK_DECISION_BLOCK));
    cr_expect(eq(int, rc, RISK_ECORRUPT), "%s", risk_error_last());
    unchanged("get_user answering another user");
    cr_expect(eq(int, sign_in("bob", &rc), RISK_DECISION_ALLOW));
    cr_expect(eq(int, rc, RISK_OK));
}

/* An ingest whose existence check gets another event back must not take
 * the new detection for a repeat of that one and drop it. */
Test(store_guard, another_event_is_corrupt)
{
    MODE = M_OTHER_EVENT;
    risk_event *e = NULL;
    cr_assert(eq(int, risk_event_new(&e, "a3", "alice", "leakedCredentials", RISK_LEVEL_HIGH,
                                     T0 - 5 * MIN), RISK_OK));
    cr_expect(eq(int, risk_engine_ingest(E, "detector", e, 0), RISK_ECORRUPT));
    risk_event_free(e);
    unchanged("get_event answering another event");
}

/* Events of another user visited as alice's: alice's dismiss must not
 * close bob's event behind bob's record. */
Test(store_guard, another_users_events_are_corrupt)
{
    dismiss_refused(M_FOREIGN_EVENT, RISK_ECORRUPT, "user_events visiting another user's events");
}

Test(store_guard, an_event_visited_twice_is_corrupt)
{
    dismiss_refused(M_TWICE_EVENT, RISK_ECORRUPT, "user_events visiting an event twice");
}

static int stop_at_first(const risk_event *e, void *arg)
{
    (void)e;
    ++*(int *)arg;
    return 42;
}
static int stop_history(const risk_history *h, void *arg)
{
    (void)h;
    ++*(int *)arg;
    return 43;
}

/* A store that goes on after a visitor stops and answers RISK_OK: the
 * visitor's result is still what the call returns, and it is not called
 * again. */
Test(store_guard, a_swallowed_visitor_result_is_returned)
{
    MODE = M_SWALLOW;
    int calls = 0;
    cr_expect(eq(int, risk_engine_events(E, "alice", 0, stop_at_first, &calls), 42));
    cr_expect(eq(int, calls, 1));
    calls = 0;
    cr_expect(eq(int, risk_engine_history(E, "alice", stop_history, &calls), 43));
    cr_expect(eq(int, calls, 1));
    unchanged("a swallowing store");
}

/* Results that are not RISK_OK or a RISK_E… code become RISK_ESTORE (a host
 * testing rc < 0 would take 7 for success). */
Test(store_guard, an_odd_result_is_a_store_error)
{
    MODE = M_ODD_CODE;
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "medium", RISK_LEVEL_MEDIUM, RISK_CONTROL_BLOCK), RISK_OK));
    cr_expect(eq(int, risk_engine_policy_set(E, "admin", p), RISK_ESTORE));
    cr_expect(eq(str, (char *)risk_error_name(RISK_ESTORE), "RISK_ESTORE"));
    MODE = M_POLICIES_ONE; /* "found" without a policy visited */
    cr_expect(eq(int, risk_engine_policy_set(E, "admin", p), RISK_ESTORE));
    cr_expect(eq(int, risk_engine_policy_remove(E, "admin", "high"), RISK_ESTORE));
    risk_policy_free(p);
    unchanged("odd results");
}

/* Listings: a user listed twice, or below min_level, is refused rather
 * than counted twice or shown. */
Test(store_guard, listings_are_checked)
{
    int n = 0;
    cr_expect(eq(int, risk_engine_users(E, RISK_LEVEL_NONE, count_user, &n), RISK_OK));
    cr_expect(eq(int, n, 2));
    MODE = M_TWICE_USER;
    n = 0;
    cr_expect(eq(int, risk_engine_users(E, RISK_LEVEL_NONE, count_user, &n), RISK_ECORRUPT));
    risk_what_if *w = NULL;
    cr_expect(eq(int, risk_engine_what_if(&w, E, NULL, 0, T0), RISK_ECORRUPT));
    cr_expect(eq(ptr, w, NULL));
    MODE = M_USER_TWO_LEVELS; /* not neighbours when sorted by level */
    cr_expect(eq(int, risk_engine_users(E, RISK_LEVEL_NONE, count_user, &n), RISK_ECORRUPT));
    cr_expect(eq(int, risk_engine_what_if(&w, E, NULL, 0, T0), RISK_ECORRUPT));
    /* docs/store.md: list_users may pass users below min_level; the
     * engine filters them */
    MODE = M_LOW_USER;
    n = 0;
    cr_expect(eq(int, risk_engine_users(E, RISK_LEVEL_HIGH, count_user, &n), RISK_OK));
    cr_expect(eq(int, n, 1));
    MODE = M_HIST_REPEAT;
    n = 0;
    cr_expect(eq(int, risk_engine_history_feed(E, 0, count_history, &n), RISK_ECORRUPT));
    n = 0;
    cr_expect(eq(int, risk_engine_history(E, "alice", count_history, &n), RISK_ECORRUPT));
    MODE = M_POLICY_TWICE;
    n = 0;
    cr_expect(eq(int, risk_engine_policies(E, count_policy, &n), RISK_ECORRUPT));
    MODE = M_HIST_ANY_USER;
    n = 0;
    cr_expect(eq(int, risk_engine_history(E, "alice", count_history, &n),
                 RISK_ECORRUPT));
    MODE = M_NONE;
    n = 0;
    cr_expect(eq(int, risk_engine_events(E, "alice", 0, count_event, &n), RISK_OK));
    cr_expect(eq(int, n, 2));
    unchanged("listings");
}

/* A stale copy of an event (other detected_at) visited beside it: not
 * neighbours when sorted by time, still one event twice. */
Test(store_guard, a_stale_copy_of_an_event_is_corrupt)
{
    dismiss_refused(M_STALE_EVENT, RISK_ECORRUPT, "user_events visiting a stale copy");
}

/* R-PO-9: a sign-in decided on what view_user showed last (a doctored
 * copy), or as an unknown user after the store showed the record, would
 * have allowed alice; both are corrupt, and the sign-in blocks. */
Test(store_guard, view_user_shows_one_record_once)
{
    int rc;
    MODE = M_VIEW_TWICE;
    cr_expect(eq(int, sign_in("alice", &rc), RISK_DECISION_BLOCK));
    cr_expect(eq(int, rc, RISK_ECORRUPT), "%s", risk_error_last());
    MODE = M_VIEW_THEN_NONE;
    cr_expect(eq(int, sign_in("alice", &rc), RISK_DECISION_BLOCK));
    cr_expect(eq(int, rc, RISK_ECORRUPT), "%s", risk_error_last());
    unchanged("view_user");
}

/* A stored version with no successor: corrupt, not the caller's EINVAL. */
Test(store_guard, a_version_without_successor_is_corrupt)
{
    dismiss_refused(M_VERSION_MAX, RISK_ECORRUPT, "version 2^64-1");
}

/* A host that reuses the memory store's table but brings a view_user of
 * its own is a host's store: guarded (before, the table's required
 * callbacks alone made it "built-in" and nothing was checked). */
static risk_store mem;
static int lying_view(void *c, const char *id, risk_user_visit_fn fn, void *a)
{
    (void)c;
    return mem.view_user(mem.ctx, strcmp(id, "alice") == 0 ? "bob" : id, fn, a);
}

/* R-AU-2 (security review): a user record whose risk was changed outside
 * the engine (here: the store hands it out at level none, as a journal
 * frame edited and its checksum made to match would) contradicts the last
 * item of its chain, which the edit could not reseal. Verification read
 * only the record's chain head, and passed. */
static int last_seq_cb(const risk_history *h, void *arg)
{
    *(uint64_t *)arg = risk_history_seq(h);
    return 0;
}
Test(store_guard, a_record_changed_outside_the_engine_fails_verification)
{
    uint64_t bad = 0, alice_last = 0, bob_last = 0;
    cr_assert(eq(int, risk_engine_verify_history(E, NULL, &bad), RISK_OK));
    cr_assert(eq(int, risk_engine_history(E, "alice", last_seq_cb, &alice_last), RISK_OK));
    cr_assert(eq(int, risk_engine_history(E, "bob", last_seq_cb, &bob_last), RISK_OK));
    MODE = M_USER_LOWERED;
    cr_assert(eq(int, risk_engine_verify_history(E, NULL, &bad), RISK_EVERIFY));
    cr_assert(strstr(risk_error_last(), "changed outside the engine") != NULL, "%s",
              risk_error_last());
    cr_assert(bad == alice_last || bad == bob_last, "bad_seq %" PRIu64, bad);
    MODE = M_NONE;
    cr_assert(eq(int, risk_engine_verify_history(E, NULL, &bad), RISK_OK));
}

Test(store_guard_mixed, builtin_callbacks_with_a_hosts_own_are_guarded)
{
    cr_assert(eq(int, risk_memory_store_new(&mem), RISK_OK));
    risk_store s = mem;
    s.view_user = lying_view;
    s.close = NULL;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = clock_fn;
    risk_engine *e = NULL;
    cr_assert(eq(int, risk_engine_new(&e, &s, &o), RISK_OK));
    risk_policy *p = NULL;
    cr_assert(eq(int, risk_policy_new(&p, "high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK), RISK_OK));
    cr_assert(eq(int, risk_engine_policy_set(e, "admin", p), RISK_OK));
    risk_policy_free(p);
    risk_event *ev = NULL;
    cr_assert(eq(int, risk_event_new(&ev, "a1", "alice", "leakedCredentials", RISK_LEVEL_HIGH,
                                     T0 - MIN), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(e, "detector", ev, 0), RISK_OK));
    risk_event_free(ev);
    cr_assert(eq(int, risk_event_new(&ev, "b1", "bob", "leakedCredentials", RISK_LEVEL_LOW,
                                     T0 - MIN), RISK_OK));
    cr_assert(eq(int, risk_engine_ingest(e, "detector", ev, 0), RISK_OK));
    risk_event_free(ev);
    risk_verdict *v = NULL;
    cr_assert(eq(int, risk_verdict_new(&v), RISK_OK));
    cr_expect(eq(int, risk_engine_sign_in(e, "alice", v), RISK_ECORRUPT));
    cr_expect(eq(int, risk_verdict_decision(v), RISK_DECISION_BLOCK));
    risk_verdict_free(v);
    risk_engine_free(e);
    mem.close(mem.ctx);
}
