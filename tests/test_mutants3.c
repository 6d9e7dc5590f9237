/* Behaviour of the in-memory store (lib/store_memory*.c) that the other
 * suites did not pin down: meta read-then-write conflicts, repeated
 * writes in one txn, the txn overlay of another user's events, user
 * history committed out of seq order, the seq index past its first page,
 * a crowded events table, level lists, ids of the inline limit.
 *
 * Found by a third round of mutation testing (2026-12-07) of
 * lib/store_memory.c, store_memory_ops.c, store_memory_events.c,
 * store_memory_hist.c, store_memory_map.c and store_memory_intern.c: each
 * test kills at least one change to those files that the other suites
 * let through. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "memstore_fixture.h"

TestSuite(mutants3, .init = setup, .fini = teardown);

/* ---- helpers ---- */
static int get_meta(void *t, const char *key, uint8_t *buf, size_t cap, size_t *len)
{
    return st.get_meta(st.ctx, t, key, buf, cap, len);
}

static int put_meta_str(void *t, const char *key, const char *val)
{
    return st.put_meta(st.ctx, t, key, (const uint8_t *)val, strlen(val));
}

static void commit_meta(const char *key, const char *val)
{
    void *t = begin(NULL);
    cr_assert(eq(int, put_meta_str(t, key, val), RISK_OK));
    cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
}

/* The committed value of key, as a string in buf (n bytes). */
static const char *meta_now(const char *key, char *buf, size_t n)
{
    size_t len = 0;
    int rc = get_meta(NULL, key, (uint8_t *)buf, n - 1, &len);
    cr_assert(eq(int, rc, RISK_OK));
    buf[len] = '\0';
    return buf;
}

/* A txn that has read "chain" (the read returning want_rc). */
static void *read_chain(int want_rc)
{
    void *r = begin(NULL);
    uint8_t buf[8];
    size_t len = 0;
    cr_assert(eq(int, get_meta(r, "chain", buf, sizeof buf, &len), want_rc));
    return r;
}

/* r, which read "chain", writes it and commits: RISK_ECONFLICT, and the
 * committed value stays want. */
static void reader_conflicts(void *r, const char *want)
{
    cr_assert(eq(int, put_meta_str(r, "chain", "r"), RISK_OK));
    int rc = st.commit(st.ctx, r);
    cr_assert(eq(int, rc, RISK_ECONFLICT));
    char now[8];
    cr_assert(eq(str, (char *)meta_now("chain", now, sizeof now), (char *)want));
}

/* An id "<prefix><n>" in the user shard of ref. */
static void id_in_ushard(char *buf, size_t n, const char *prefix, const char *ref)
{
    unsigned want = ush_idx(hash_str(ref));
    for (unsigned i = 0;; i++) {
        snprintf(buf, n, "%s%u", prefix, i);
        if (strcmp(buf, ref) != 0 && ush_idx(hash_str(buf)) == want)
            return;
    }
}

static int collect_user(const risk_user *u, void *arg)
{
    idset *s = arg;
    cr_assert(s->n < 16);
    snprintf(s->ids[s->n++], 32, "%s", risk_user_id(u));
    return 0;
}

static idset events_of(void *t, const char *user)
{
    idset s = {0};
    cr_assert(eq(int, st.user_events(st.ctx, t, user, collect_event, &s), RISK_OK));
    return s;
}

static seqs feed(const char *user)
{
    seqs s = {0};
    cr_assert(eq(int, st.read_history(st.ctx, user, 0, collect_seq, &s), RISK_OK));
    return s;
}

/* ---- meta read, then written (docs/store.md "Meta read, then written") ---- */

/* R-ST-6: a txn that read a meta value cannot commit while another txn
 * that writes meta is prepared (the journal's two phases): RISK_ECONFLICT,
 * and after that writer is applied the reader's retry sees its value. */
Test(mutants3, meta_read_conflicts_with_one_prepared_meta_writer)
{
    commit_meta("chain", "v1");
    void *w = begin(NULL);
    cr_assert(eq(int, put_meta_str(w, "chain", "w"), RISK_OK));
    cr_assert(eq(int, risk_memstore_prepare(st.ctx, w), RISK_OK));
    void *r = read_chain(RISK_OK);
    cr_assert(eq(int, put_meta_str(r, "chain", "r"), RISK_OK));
    int rc = st.commit(st.ctx, r);
    cr_assert(eq(int, rc, RISK_ECONFLICT));
    risk_memstore_apply(st.ctx, w);
    char now[8];
    cr_assert(eq(str, (char *)meta_now("chain", now, sizeof now), "w"));
}

/* R-ST-6: a meta value read, then committed by another txn (twice, so
 * that a version stuck at its first value would not notice), makes the
 * reader's commit RISK_ECONFLICT; the other's value stays. */
Test(mutants3, meta_changed_since_read_conflicts)
{
    commit_meta("chain", "v1");
    commit_meta("chain", "v2"); /* a committed value replaced: ver 2 */
    void *r = read_chain(RISK_OK);
    commit_meta("chain", "v3");
    reader_conflicts(r, "v3");
}

/* R-ST-6: a meta key read as absent and created by another txn before
 * the reader commits: the reader's commit is RISK_ECONFLICT (both would
 * otherwise seal on "no head"). */
Test(mutants3, meta_read_absent_then_created_conflicts)
{
    void *r = read_chain(RISK_ENOTFOUND);
    commit_meta("chain", "other");
    reader_conflicts(r, "other");
}

/* R-IV-1: a meta key of RISK_ID_MAX bytes is accepted (put and get), one
 * byte more is RISK_EINVAL. */
Test(mutants3, meta_key_of_the_maximum_length)
{
    char key[RISK_ID_MAX + 2];
    memset(key, 'k', RISK_ID_MAX);
    key[RISK_ID_MAX] = '\0';
    commit_meta(key, "v");
    char now[8];
    cr_assert(eq(str, (char *)meta_now(key, now, sizeof now), "v"));
    key[RISK_ID_MAX] = 'k';
    key[RISK_ID_MAX + 1] = '\0';
    void *t = begin(NULL);
    int rc = put_meta_str(t, key, "v");
    cr_assert(eq(int, rc, RISK_EINVAL));
    st.rollback(st.ctx, t);
}

/* ---- repeated writes in one txn: the last one is what commits ---- */

/* R-ST-2: put_user twice in one txn: the txn reads the second, and the
 * second is committed. */
Test(mutants3, second_put_user_in_a_txn_wins)
{
    void *t = begin("u");
    cr_assert(eq(int, put_user(t, "u", 1, RISK_LEVEL_LOW), RISK_OK));
    cr_assert(eq(int, put_user(t, "u", 1, RISK_LEVEL_HIGH), RISK_OK));
    risk_user *u = NULL;
    cr_assert(eq(int, st.get_user(st.ctx, t, "u", &u), RISK_OK));
    int l = (int)risk_user_risk_level(u);
    risk_user_free(u);
    cr_assert(eq(int, l, RISK_LEVEL_HIGH));
    cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
    cr_assert(eq(int, level_of("u"), RISK_LEVEL_HIGH));
}

/* R-ST-2: put_event twice in one txn (a new event, then a committed one):
 * the second version is the one committed. */
Test(mutants3, second_put_event_in_a_txn_wins)
{
    void *t = begin("u");
    cr_assert(eq(int, put_event(t, "old", "u", RISK_LEVEL_LOW), RISK_OK));
    cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
    t = begin("u");
    cr_assert(eq(int, put_event(t, "new", "u", RISK_LEVEL_LOW), RISK_OK));
    cr_assert(eq(int, put_event(t, "old", "u", RISK_LEVEL_MEDIUM), RISK_OK));
    cr_assert(eq(int, put_event(t, "new", "u", RISK_LEVEL_HIGH), RISK_OK));
    cr_assert(eq(int, put_event(t, "old", "u", RISK_LEVEL_HIGH), RISK_OK));
    cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
    const char *ids[] = {"new", "old"};
    for (int i = 0; i < 2; i++) {
        risk_event *e = NULL;
        cr_assert(eq(int, st.get_event(st.ctx, NULL, ids[i], &e), RISK_OK));
        int l = (int)risk_event_level(e);
        risk_event_free(e);
        cr_assert(eq(int, l, RISK_LEVEL_HIGH), "%s", ids[i]);
    }
    cr_assert(eq(int, events_of(NULL, "u").n, 2));
}

/* ---- overlay ---- */

/* R-ST-2, R-OP-5: user_events in a txn shows the user's own buffered
 * events only, not those the txn wrote for another user. */
Test(mutants3, user_events_overlay_is_per_user)
{
    void *t = begin("a");
    cr_assert(eq(int, put_event(t, "a1", "a", RISK_LEVEL_LOW), RISK_OK));
    cr_assert(eq(int, put_event(t, "b1", "b", RISK_LEVEL_LOW), RISK_OK));
    idset s = events_of(t, "a");
    cr_assert(eq(int, s.n, 1));
    cr_assert(has_id(&s, "a1"));
    s = events_of(t, "b");
    cr_assert(eq(int, s.n, 1));
    cr_assert(has_id(&s, "b1"));
    cr_assert(eq(int, events_of(t, "c").n, 0));
    st.rollback(st.ctx, t);
}

/* ---- history ---- */

/* R-OP-5: four txns of one user commit in the order 4, 1, 2, 3 of their
 * seqs (only possible without the engine's per-user lock): the user's
 * history is in seq order, the last one found its place after the second,
 * not just after the head. */
Test(mutants3, user_history_committed_out_of_order_in_the_middle)
{
    void *t[4];
    uint64_t s[4];
    for (int i = 0; i < 4; i++) {
        t[i] = begin("u");
        cr_assert(eq(int, add_history(t[i], "u", &s[i]), RISK_OK));
    }
    const int order[4] = {3, 0, 1, 2};
    for (int i = 0; i < 4; i++)
        cr_assert(eq(int, st.commit(st.ctx, t[order[i]]), RISK_OK));
    seqs got = feed("u");
    cr_assert(eq(int, got.n, 4));
    for (int i = 0; i < 4; i++)
        cr_assert(eq(u64, got.seq[i], s[i]), "item %d", i);
}

/* R-OP-5: the seq index has pages of 65536 seqs: an item past the first
 * page (its txn's seqs spanning two pages) is stored and read back. */
Test(mutants3, history_past_the_first_index_page)
{
    void *t = begin("u");
    uint64_t seq = 0;
    for (size_t i = 0; i < HPAGE; i++)
        cr_assert(eq(int, st.reserve_seq(st.ctx, t, &seq), RISK_OK));
    uint64_t last = 0;
    cr_assert(eq(int, add_history(t, "u", &last), RISK_OK));
    cr_assert(eq(u64, last, (uint64_t)HPAGE + 1));
    cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
    t = begin("v");
    uint64_t next = 0;
    cr_assert(eq(int, add_history(t, "v", &next), RISK_OK));
    cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
    seqs s = feed(NULL);
    cr_assert(eq(int, s.n, 2));
    cr_assert(s.seq[0] == last && s.seq[1] == next);
    s = feed("u");
    cr_assert(eq(int, s.n, 1));
}

/* ---- level lists, ids, the events table ---- */

/* R-OP-5: users of one shard at one level, two of them moving to another
 * level one after the other (the middle of the list, then its end): each
 * is listed once, at its new level. */
Test(mutants3, level_changes_in_one_shard_list_each_user_once)
{
    char x2[32], x3[32];
    id_in_ushard(x2, sizeof x2, "x", "x-1");
    id_in_ushard(x3, sizeof x3, "y", "x-1");
    commit_user("x-1", 1, RISK_LEVEL_LOW);
    commit_user(x2, 1, RISK_LEVEL_LOW);
    commit_user(x3, 1, RISK_LEVEL_LOW); /* list: x3, x2, x-1 */
    commit_user(x2, 2, RISK_LEVEL_HIGH);
    commit_user("x-1", 2, RISK_LEVEL_HIGH);
    idset s = {0};
    cr_assert(eq(int, st.list_users(st.ctx, RISK_LEVEL_NONE, collect_user, &s), RISK_OK));
    cr_assert(eq(int, s.n, 3));
    memset(&s, 0, sizeof s);
    cr_assert(eq(int, st.list_users(st.ctx, RISK_LEVEL_HIGH, collect_user, &s), RISK_OK));
    cr_assert(eq(int, s.n, 2));
    cr_assert(has_id(&s, "x-1") && has_id(&s, x2));
}

/* R-ST-5: a user id of SUBJECT_IDINL bytes (the first that does not fit
 * the subject's inline buffer) round-trips through every read: get_user,
 * view_user, list_users, user_events, get_event's owner, read_history. */
Test(mutants3, user_id_at_the_inline_limit)
{
    char id[SUBJECT_IDINL + 1];
    memset(id, 'u', SUBJECT_IDINL);
    id[SUBJECT_IDINL] = '\0';
    void *t = begin(id);
    cr_assert(eq(int, put_user(t, id, 1, RISK_LEVEL_MEDIUM), RISK_OK));
    cr_assert(eq(int, put_event(t, "e", id, RISK_LEVEL_MEDIUM), RISK_OK));
    cr_assert(eq(int, add_history(t, id, NULL), RISK_OK));
    cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
    risk_user *u = NULL;
    cr_assert(eq(int, st.get_user(st.ctx, NULL, id, &u), RISK_OK));
    cr_assert(eq(str, (char *)risk_user_id(u), id));
    int l = (int)risk_user_risk_level(u);
    risk_user_free(u);
    cr_assert(eq(int, l, RISK_LEVEL_MEDIUM));
    uint64_t score = 0;
    cr_assert(eq(int, st.view_user(st.ctx, id, view_score_cb, &score), RISK_OK));
    cr_assert(eq(u64, score, 20));
    idset s = {0};
    cr_assert(eq(int, st.list_users(st.ctx, RISK_LEVEL_NONE, collect_user, &s), RISK_OK));
    cr_assert(eq(int, s.n, 1));
    cr_assert(eq(str, s.ids[0], id));
    cr_assert(eq(int, events_of(NULL, id).n, 1));
    risk_event *e = NULL;
    cr_assert(eq(int, st.get_event(st.ctx, NULL, "e", &e), RISK_OK));
    cr_assert(eq(str, (char *)risk_event_user_id(e), id));
    risk_event_free(e);
    cr_assert(eq(int, feed(id).n, 1));
}

/* R-ST-5: many events in one events shard (its table grows, and groups
 * of the table fill and send inserts on to the next): every one is found
 * by id afterwards, and an absent id of that shard is not. */
Test(mutants3, crowded_events_shard_finds_every_event)
{
    enum { N = 400 };
    static char ids[N][24];
    unsigned want = esh_idx(hash_str("crowd-0"));
    for (int i = 0, k = 0; i < N; k++) {
        snprintf(ids[i], sizeof ids[i], "crowd-%d", k);
        if (esh_idx(hash_str(ids[i])) == want)
            i++;
    }
    for (int i = 0; i < N; i += 50) {
        void *t = begin("u");
        for (int j = i; j < i + 50; j++)
            cr_assert(eq(int, put_event(t, ids[j], "u", RISK_LEVEL_LOW), RISK_OK));
        cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
    }
    int missing = 0;
    for (int i = 0; i < N; i++) {
        risk_event *e = NULL;
        if (st.get_event(st.ctx, NULL, ids[i], &e) != RISK_OK)
            missing++;
        risk_event_free(e);
    }
    cr_assert(eq(int, missing, 0));
    risk_event *e = NULL;
    cr_assert(eq(int, st.get_event(st.ctx, NULL, "crowd-x", &e), RISK_ENOTFOUND));
    int n = 0;
    cr_assert(eq(int, st.user_events(st.ctx, NULL, "u", COUNTER(risk_event), &n), RISK_OK));
    cr_assert(eq(int, n, N));
}
