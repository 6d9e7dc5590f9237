/* Sign-ins racing policy changes (R-CC-1, R-PO-1…5, R-OP-6), as a plain
 * pthread program for ThreadSanitizer.
 *
 * A sign-in reads the policies' decision table without a lock while policy
 * changes rewrite it in place (a sequence lock, lib/engine_policy.c). Here
 * a writer walks a cycle of policy changes, one change at a time, while
 * readers sign users in. Every state of the cycle was decided once alone
 * beforehand; every concurrent verdict must be exactly one of those
 * decisions for its user (decision, reason, level, deciding policy and
 * the report-only list). A verdict read from two tables at once (the cell
 * of one, the names of another) matches none of them; a missing or
 * broken sequence check fails this program, and TSan reports any access
 * to the table that is not atomic. The states alternate between a table
 * (16 policies), no table (17: the locked path) and a table with an
 * exclude list (named users take the locked path). The store's view_user
 * yields the processor before and after the lookup, so that policy changes land between
 * what a sign-in reads of the table before the lookup (the count, the
 * filter of named users) and after it (the cell, the names). */
#include <librisk.h>
#include <librisk/store.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1764000000000)
#define N_USERS 12
#define N_FILLERS 15
#define N_STEPS 8
#define N_READERS 2
#define SIGNINS 50000 /* per reader; the writer changes policies until they are done */
#define MAX_RO (N_FILLERS + 4)

static int64_t fixed_clock(void *ud)
{
    (void)ud;
    return T0;
}

static int (*inner_view_user)(void *ctx, const char *id, risk_user_visit_fn fn, void *arg);

/* The choreographed race: a sign-in marked hold_me stops after its
 * lookup, in the middle of its fast decision, until told to go on. */
static _Thread_local int hold_me;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int in_window, go_on;

static int yielding_view_user(void *ctx, const char *id, risk_user_visit_fn fn, void *arg)
{
    /* Not every time: the locked way holds the policy cache's read lock
     * here, and readers that always yielded with it held would keep the
     * writer out. */
    static _Thread_local unsigned calls;
    if (++calls % 4 == 0)
        sched_yield();
    int rc = inner_view_user(ctx, id, fn, arg);
    if (hold_me) {
        hold_me = 0;
        pthread_mutex_lock(&gate_mu);
        in_window = 1;
        pthread_cond_broadcast(&gate_cv);
        while (!go_on)
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    }
    return rc;
}

/* What a verdict says, flattened. */
struct summary {
    int decision, reason, level;
    char policy[RISK_ID_MAX + 1];
    size_t n_ro;
    char ro[MAX_RO][32];
    int ro_decision[MAX_RO], ro_reason[MAX_RO];
};

static int summarize(const risk_verdict *v, struct summary *s)
{
    memset(s, 0, sizeof *s);
    s->decision = (int)risk_verdict_decision(v);
    s->reason = (int)risk_verdict_reason(v);
    s->level = (int)risk_verdict_level(v);
    const char *p = risk_verdict_policy(v);
    snprintf(s->policy, sizeof s->policy, "%s", p ? p : "(none)");
    s->n_ro = risk_verdict_report_only_count(v);
    if (s->n_ro > MAX_RO)
        return -1;
    for (size_t i = 0; i < s->n_ro; i++) {
        snprintf(s->ro[i], sizeof s->ro[i], "%s", risk_verdict_report_only_policy(v, i));
        s->ro_decision[i] = (int)risk_verdict_report_only_decision(v, i);
        s->ro_reason[i] = (int)risk_verdict_report_only_reason(v, i);
    }
    return 0;
}

static const char *user_ids[N_USERS] = {
    "u00-none", "u01-low", "u02-medium", "u03-high", "u04-high-mfa", "u05-high-mfa-late",
    "u06-medium-mfa", "u07-high-deleted", "u08-low-mfa", "u09-high", "u10-nobody", "u11-medium",
};

static int make_users(risk_engine *e)
{
    static const struct {
        int mfa; /* -1 none, else minutes after T0 - 1 day */
        int deleted;
        risk_level level;
    } kind[N_USERS] = {
        { -1, 0, RISK_LEVEL_NONE }, { -1, 0, RISK_LEVEL_LOW },  { -1, 0, RISK_LEVEL_MEDIUM },
        { -1, 0, RISK_LEVEL_HIGH }, { 0, 0, RISK_LEVEL_HIGH },  { 120, 0, RISK_LEVEL_HIGH },
        { 0, 0, RISK_LEVEL_MEDIUM }, { 0, 1, RISK_LEVEL_HIGH }, { 0, 0, RISK_LEVEL_LOW },
        { -1, 0, RISK_LEVEL_HIGH }, { -2, 0, RISK_LEVEL_NONE }, { -1, 0, RISK_LEVEL_MEDIUM },
    };
    const int64_t day_ago = T0 - 86400000;
    for (int i = 0; i < N_USERS; i++) {
        if (kind[i].mfa == -2)
            continue; /* unknown to the store (R-PO-8) */
        risk_user *u = NULL;
        int rc = risk_user_new(&u, user_ids[i]);
        if (rc == RISK_OK && kind[i].mfa >= 0)
            rc = risk_user_set_mfa_registered(u, 1, day_ago + kind[i].mfa * 60000);
        if (rc == RISK_OK)
            rc = risk_user_set_deleted(u, kind[i].deleted);
        if (rc == RISK_OK)
            rc = risk_engine_upsert_user(e, "admin", u);
        risk_user_free(u);
        if (rc == RISK_OK && kind[i].level != RISK_LEVEL_NONE) {
            risk_event *ev = NULL;
            char id[64];
            snprintf(id, sizeof id, "ev-%s", user_ids[i]);
            /* detected an hour after T0 - 1 day: after "mfa 0", before "mfa 120" */
            rc = risk_event_new(&ev, id, user_ids[i], "leakedCredentials", kind[i].level,
                                day_ago + 60 * 60000);
            if (rc == RISK_OK)
                rc = risk_engine_ingest(e, "detector", ev, 0);
            risk_event_free(ev);
        }
        if (rc != RISK_OK)
            return rc;
    }
    return RISK_OK;
}

static int put(risk_engine *e, const char *name, risk_level th, risk_control c,
               risk_policy_mode m, int exclude)
{
    risk_policy *p = NULL;
    int rc = risk_policy_new(&p, name, th, c);
    if (rc == RISK_OK)
        rc = risk_policy_set_mode(p, m);
    if (rc == RISK_OK && exclude)
        rc = risk_policy_exclude_add(p, "u03-high");
    if (rc == RISK_OK && exclude)
        rc = risk_policy_exclude_add(p, "u06-medium-mfa");
    if (rc == RISK_OK)
        rc = risk_engine_policy_set(e, "admin", p);
    risk_policy_free(p);
    return rc;
}

/* The cycle: step k turns state k into state k + 1 (mod N_STEPS). With
 * the 15 fillers every state has 16 policies (a table) or 17 (none).
 * Policy "d" changes in place between three versions: X blocks from low;
 * Y requires a password change from medium and excludes u03 and u06 (so
 * the table has a filter, and a sign-in that took the filter of X and the
 * cell of Y would give u03 block/not_mfa_registered or u06 a password
 * change by "d", which no state gives them); Z is report-only. */
static int step(risk_engine *e, int k)
{
    switch (k) {
    case 0: return put(e, "d", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON, 1);
    case 1: return put(e, "d", RISK_LEVEL_HIGH, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_REPORT_ONLY, 0);
    case 2: return put(e, "a-rpc", RISK_LEVEL_LOW, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON, 0);
    case 3: return put(e, "d", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON, 1);
    case 4: return risk_engine_policy_remove(e, "admin", "a-rpc");
    case 5: return put(e, "d", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON, 0);
    case 6: return put(e, "b-block", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON, 0);
    default: return risk_engine_policy_remove(e, "admin", "b-block");
    }
}

static risk_engine *E;
static struct summary expected[N_STEPS][N_USERS];
static atomic_int readers_done;
static atomic_long signins_done; /* paces the writer: a few sign-ins per change */

struct reader {
    unsigned seed;
    long signins;
    int bad;
    char why[512];
};

static int matches(const struct summary *s, int u)
{
    for (int k = 0; k < N_STEPS; k++)
        if (memcmp(s, &expected[k][u], sizeof *s) == 0)
            return 1;
    return 0;
}

static void *read_loop(void *arg)
{
    struct reader *r = arg;
    risk_verdict *v = NULL;
    if (risk_verdict_new(&v) != RISK_OK) {
        r->bad = 1;
        snprintf(r->why, sizeof r->why, "verdict: out of memory");
        return NULL;
    }
    for (long i = 0; i < SIGNINS && !r->bad; i++) {
        r->seed = r->seed * 1103515245u + 12345u;
        /* every other sign-in is one of the two users the states with
         * and without the exclude list tell apart */
        int u = i % 2 ? (int)(r->seed >> 16) % N_USERS : (r->seed >> 16) % 2 ? 3 : 6;
        struct summary s;
        int rc = risk_engine_sign_in(E, user_ids[u], v);
        r->signins++;
        atomic_fetch_add(&signins_done, 1);
        if (i % 8 == 0) /* outside every lock: lets the writer in (the glibc */
            sched_yield(); /* rwlock prefers readers) */
        if (rc != RISK_OK || summarize(v, &s) != 0 || !matches(&s, u)) {
            r->bad = 1;
            snprintf(r->why, sizeof r->why,
                     "%s: rc %d, verdict %d/%d level %d policy %s, %zu report-only%s%s",
                     user_ids[u], rc, s.decision, s.reason, s.level, s.policy, s.n_ro,
                     s.n_ro ? ", first " : "", s.n_ro ? s.ro[0] : "");
        }
    }
    risk_verdict_free(v);
    atomic_fetch_add(&readers_done, 1);
    return NULL;
}

struct held {
    int user, rc;
    struct summary s;
};

static void *held_signin(void *arg)
{
    struct held *h = arg;
    risk_verdict *v = NULL;
    h->rc = risk_verdict_new(&v);
    hold_me = 1;
    if (h->rc == RISK_OK)
        h->rc = risk_engine_sign_in(E, user_ids[h->user], v);
    if (h->rc == RISK_OK)
        summarize(v, &h->s);
    risk_verdict_free(v);
    return NULL;
}

/* From state 0 (no filter): a sign-in of user u stops after its lookup;
 * meanwhile "d" gets its exclude list (state 1) and another sign-in
 * rebuilds the table. The held sign-in must notice and decide as state 1
 * decides; reading on with the new table's cell after the old table's
 * filter would apply "d" to an excluded user. Then the cycle goes on back
 * to state 0. */
static int choreographed(int u, char *why, size_t whylen)
{
    struct held h = { .user = u };
    pthread_t t;
    risk_verdict *v = NULL;
    int rc = risk_verdict_new(&v);
    if (rc == RISK_OK) /* the table of state 0 is built: the held sign-in takes it */
        rc = risk_engine_sign_in(E, user_ids[0], v);
    if (rc != RISK_OK) {
        snprintf(why, whylen, "choreographed: %s", risk_error_last());
        risk_verdict_free(v);
        return 1;
    }
    in_window = go_on = 0;
    pthread_create(&t, NULL, held_signin, &h);
    pthread_mutex_lock(&gate_mu);
    while (!in_window)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    rc = step(E, 0);
    if (rc == RISK_OK)
        rc = risk_engine_sign_in(E, user_ids[0], v); /* rebuilds the table */
    risk_verdict_free(v);
    pthread_mutex_lock(&gate_mu);
    go_on = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    pthread_join(t, NULL);
    for (int k = 1; k < N_STEPS && rc == RISK_OK; k++)
        rc = step(E, k);
    if (rc != RISK_OK || h.rc != RISK_OK) {
        snprintf(why, whylen, "choreographed %s: %s", user_ids[u], risk_error_last());
        return 1;
    }
    if (memcmp(&h.s, &expected[1][u], sizeof h.s) != 0) {
        snprintf(why, whylen, "choreographed %s: verdict %d/%d policy %s, state 1 says %d/%d policy %s",
                 user_ids[u], h.s.decision, h.s.reason, h.s.policy, expected[1][u].decision,
                 expected[1][u].reason, expected[1][u].policy);
        return 1;
    }
    return 0;
}

int main(void)
{
    risk_store st;
    risk_engine_options o;
    risk_engine_options_init(&o);
    o.clock = fixed_clock;
    if (risk_memory_store_new(&st)) {
        fprintf(stderr, "policy-swap: store: %s\n", risk_error_last());
        return 1;
    }
    inner_view_user = st.view_user;
    st.view_user = yielding_view_user;
    if (risk_engine_new(&E, &st, &o) || make_users(E)) {
        fprintf(stderr, "policy-swap: setup: %s\n", risk_error_last());
        return 1;
    }
    for (int i = 0; i < N_FILLERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "f-filler-%02d", i);
        if (put(E, name, RISK_LEVEL_HIGH, (risk_control)(i % 2), RISK_MODE_REPORT_ONLY, 0) ||
            (i == 0 && put(E, "d", RISK_LEVEL_LOW, RISK_CONTROL_BLOCK, RISK_MODE_ON, 0))) {
            fprintf(stderr, "policy-swap: filler: %s\n", risk_error_last());
            return 1;
        }
    }
    /* Each state decided alone. */
    risk_verdict *v = NULL;
    if (risk_verdict_new(&v))
        return 1;
    for (int k = 0; k < N_STEPS; k++) {
        for (int u = 0; u < N_USERS; u++)
            if (risk_engine_sign_in(E, user_ids[u], v) || summarize(v, &expected[k][u])) {
                fprintf(stderr, "policy-swap: state %d: %s\n", k, risk_error_last());
                return 1;
            }
        if (step(E, k)) {
            fprintf(stderr, "policy-swap: step %d: %s\n", k, risk_error_last());
            return 1;
        }
    }
    risk_verdict_free(v);

    char why[512];
    if (choreographed(3, why, sizeof why) || choreographed(6, why, sizeof why)) {
        fprintf(stderr, "policy-swap: %s\n", why);
        return 1;
    }

    pthread_t tid[N_READERS];
    struct reader r[N_READERS];
    for (int i = 0; i < N_READERS; i++) {
        r[i] = (struct reader){ .seed = 7u + (unsigned)i };
        pthread_create(&tid[i], NULL, read_loop, &r[i]);
    }
    int werr = 0;
    long changes = 0;
    while (!werr && atomic_load(&readers_done) < N_READERS) {
        long seen = atomic_load(&signins_done);
        werr = step(E, (int)(changes++ % N_STEPS));
        while (atomic_load(&signins_done) < seen + 2 && atomic_load(&readers_done) < N_READERS)
            sched_yield();
    }
    while (!werr && changes % N_STEPS != 0) /* back to state 0: nothing else changes */
        werr = step(E, (int)(changes++ % N_STEPS));
    long total = 0;
    int bad = werr != 0;
    for (int i = 0; i < N_READERS; i++) {
        pthread_join(tid[i], NULL);
        total += r[i].signins;
        if (r[i].bad) {
            fprintf(stderr, "policy-swap: reader %d: %s\n", i, r[i].why);
            bad = 1;
        }
    }
    if (werr)
        fprintf(stderr, "policy-swap: writer: %s\n", risk_error_last());
    risk_engine_free(E);
    if (bad)
        return 1;
    printf("policy-swap: %ld sign-ins during %ld policy changes, each verdict one of the "
           "%d states' own\n", total, changes, N_STEPS);
    return 0;
}
