/* The users map (lib/memstore.h): 64-byte slots that hold a short id and
 * what a sign-in reads of the user, and the peek that reads one slot
 * instead of the slot and the subject (issue #9). A slot must say what
 * its subject says after every kind of change, on the memory store and on
 * the journal store (commits, and the loads of a reopen); ids that do not
 * fit a slot, and ids whose hashes collide, must still be told apart. */
#include "engine_fixture.h"
#include "memstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

TestSuite(users_map);

/* ---- the map alone ---- */

static subject *fake_subject(const char *id)
{
    size_t len = strlen(id);
    subject *s = calloc(1, sizeof *s + len + 1);
    cr_assert(s != NULL);
    memcpy(s->idlong, id, len + 1);
    s->u.id = s->idlong;
    return s;
}

Test(users_map, colliding_hashes_long_ids_growth_and_removal)
{
    /* Twelve ids with one hash: one probe chain, which starts two slots
     * before the end of the first table and wraps; the map grows from 8
     * to 16 slots on the way (7/8 full). Ids of 36 bytes (a GUID) fit a
     * slot, 37 and more do not: the subject's id decides then. */
    static _Alignas(64) uslot first[8];
    umap m = {.s = first, .cap = 8};
    const uint64_t H = UINT64_C(0x5a5a5a5a00000006);
    char ids[12][80];
    subject *s[12];
    for (int i = 0; i < 12; i++) {
        size_t len = i == 0 ? 36 : i == 1 ? 37 : i == 2 ? 70 : (size_t)(i % 5 + 1);
        memset(ids[i], 'g', len);
        ids[i][len] = '\0';
        if (i >= 3)
            ids[i][0] = (char)('a' + i);
        s[i] = fake_subject(ids[i]);
        cr_assert(eq(int, umap_add(&m, H, s[i]), RISK_OK));
    }
    cr_assert(eq(sz, m.cap, 16));
    cr_assert(eq(sz, m.count, 12));
    for (int i = 0; i < 12; i++) {
        cr_assert(subject_find(&m, H, ids[i]) == s[i], "id %d", i);
        const uslot *sl = umap_slot(&m, H, ids[i], strlen(ids[i]));
        cr_assert(sl != NULL && sl->val == s[i]);
        cr_assert(eq(int, sl->id_inl, strlen(ids[i]) < USLOT_IDINL), "id %d", i);
        cr_assert(eq(u32, sl->hash, (uint32_t)H));
    }
    /* a prefix or an extension of a stored id, with the same hash, is not it */
    char probe[80];
    memset(probe, 'g', 71);
    for (size_t len = 35; len <= 71; len++) {
        probe[len] = '\0';
        const subject *f = subject_find(&m, H, probe);
        cr_assert(f == (len == 36 ? s[0] : len == 37 ? s[1] : len == 70 ? s[2] : NULL),
                  "length %zu", len);
        probe[len] = 'g';
    }
    /* the same id under another hash is not there either */
    cr_assert_null(subject_find(&m, H + 1, ids[0]));
    /* an id with another home, first at its home (slot 0), inside the
     * wrapped part of the chain: removing the chain's entry at the table's
     * last slot must move the entries after it back, but not this one */
    subject *other = fake_subject("other");
    const uint64_t H0 = UINT64_C(0x7000000000000010); /* home 0 in 8 and 16 slots */
    umap m2 = {.s = first, .cap = 8};
    memset(first, 0, sizeof first);
    cr_assert(eq(int, umap_add(&m2, H0, other), RISK_OK));
    for (int i = 0; i < 12; i++)
        cr_assert(eq(int, umap_add(&m2, H, s[i]), RISK_OK));
    cr_assert(eq(sz, m2.cap, 16));
    cr_assert(m2.s[0].val == other && m2.s[15].val != NULL);
    umap_remove(&m2, H, m2.s[15].val);
    cr_assert(subject_find(&m2, H0, "other") == other);
    umap_free(&m2);
    free(other);
    /* removal from the middle of the chain keeps the rest findable */
    umap_remove(&m, H, s[1]);
    umap_remove(&m, H, s[5]);
    cr_assert(eq(sz, m.count, 10));
    for (int i = 0; i < 12; i++)
        cr_assert(subject_find(&m, H, ids[i]) == (i == 1 || i == 5 ? NULL : s[i]), "id %d", i);
    umap_remove(&m, H, s[1]); /* absent: nothing */
    cr_assert(eq(sz, m.count, 10));
    umap_free(&m);
    for (int i = 0; i < 12; i++)
        free(s[i]);
}

/* ---- slots against subjects, through the engine ---- */

struct viewed {
    int visited;
    risk_peek p;
};

static int view_fields(const risk_user *u, void *arg)
{
    struct viewed *v = arg;
    v->visited = 1;
    v->p = (risk_peek){u->next_change_at, risk_ptab_key(u), u->level};
    return RISK_OK;
}

#define N_USERS 48

static void user_id(char *buf, size_t cap, int i)
{
    /* short ids, GUID-long ones (36 bytes: in the slot), and longer ones */
    if (i % 3 == 0)
        snprintf(buf, cap, "u%d", i);
    else if (i % 3 == 1)
        snprintf(buf, cap, "%08x-0000-4000-8000-%012d", (unsigned)i * 2654435761u, i);
    else
        snprintf(buf, cap, "a-user-id-longer-than-a-slot-holds-%06d@example.org", i);
}

/* Every user's peek says what view_user shows of it; unknown ids and a
 * subject without a user are not found by either. */
static int check_slots(const risk_store *st, const char *when)
{
    void *ctx = NULL;
    const risk_peeker *pk = risk_store_peeker_of(st, &ctx);
    cr_assert(pk != NULL, "%s: no peek for a built-in store", when);
    int found = 0;
    char id[96];
    for (int i = -1; i < N_USERS; i++) {
        if (i < 0)
            snprintf(id, sizeof id, "nobody");
        else
            user_id(id, sizeof id, i);
        struct viewed v = {0};
        risk_peek p;
        memset(&p, 0xa5, sizeof p);
        int rp = pk->peek(ctx, id, strlen(id), &p);
        int rv = st->view_user(st->ctx, id, view_fields, &v);
        cr_assert(eq(int, rp, rv), "%s: %s: peek %d, view_user %d", when, id, rp, rv);
        if (rp != RISK_OK)
            continue;
        found++;
        cr_assert(v.visited);
        cr_assert(eq(i64, p.next_change_at, v.p.next_change_at), "%s: %s", when, id);
        cr_assert(eq(u32, p.key, v.p.key), "%s: %s", when, id);
        cr_assert(eq(u32, p.level, v.p.level), "%s: %s", when, id);
    }
    return found;
}

/* A mix that changes every field a decision reads: MFA registration
 * before and after the risk, deletion, levels up and down by events,
 * every closing, the password paths (must-change and reset flags), and
 * aging (next_change_at) run by the sign-ins of a later clock. */
static void run_mix(const risk_store *st)
{
    char id[96], eid[64], pw[64];
    for (int i = 0; i < N_USERS; i++) {
        user_id(id, sizeof id, i);
        if (i % 4 != 3) /* a quarter are created by their first event */
            fx_user(id, i % 2 ? (i % 7) * 10 - 20 : -1, i % 11 == 0);
    }
    cr_assert(check_slots(st, "users") > 0);
    for (int i = 0; i < N_USERS; i++) {
        user_id(id, sizeof id, i);
        for (int k = 0; k <= i % 4; k++) {
            snprintf(eid, sizeof eid, "ev-%d-%d", i, k);
            risk_level lv = (risk_level)(1 + (i + k) % 3);
            int rc = fx_event(id, eid, "unfamiliarFeatures", lv, k);
            cr_assert(rc == RISK_OK || i % 11 == 0, "%s: %s", id, risk_error_last());
        }
    }
    check_slots(st, "events");
    for (int i = 0; i < N_USERS; i++) {
        user_id(id, sizeof id, i);
        snprintf(eid, sizeof eid, "ev-%d-0", i);
        switch (i % 8) {
        case 0: risk_engine_dismiss(fx, "admin", id, NULL, NULL); break;
        case 1: risk_engine_confirm_compromised(fx, "admin", id); break;
        case 2: risk_engine_password_changed(fx, "user", id, RISK_PASSWORD_SECURE_CHANGE); break;
        case 3: risk_engine_require_reset(fx, "admin", id); break;
        case 4: risk_engine_temporary_password(fx, "admin", id, pw, sizeof pw); break;
        case 5: risk_engine_resolve(fx, "admin", eid, NULL); break;
        case 6: risk_engine_confirm_safe(fx, "admin", id); break;
        default: risk_engine_false_positive(fx, "admin", eid, NULL); break;
        }
    }
    check_slots(st, "closings");
    /* aging: the sign-ins of a later clock run the catch-ups that are due */
    fx_policy("p", RISK_LEVEL_MEDIUM, RISK_CONTROL_REQUIRE_PASSWORD_CHANGE, RISK_MODE_ON);
    for (int d = 1; d <= 3; d++) {
        fx_now = T0 + (int64_t)d * 40 * DAY;
        for (int i = 0; i < N_USERS; i++) {
            user_id(id, sizeof id, i);
            (void)fx_signin(id, NULL);
        }
        check_slots(st, "aging");
    }
}

Test(users_map, memory_store_slots_follow_their_users)
{
    risk_store st;
    cr_assert(eq(int, risk_memory_store_new(&st), RISK_OK));
    fx_open_on(&st, NULL, 0, 0);
    run_mix(&st);
    /* a subject with events and no user record: not a user to either */
    void *t = NULL;
    risk_event *e = NULL;
    cr_assert(eq(int, st.begin(st.ctx, "ghost", &t), RISK_OK));
    cr_assert(eq(int, risk_event_new(&e, "ghost-ev", "ghost", "x", RISK_LEVEL_HIGH, T0),
                 RISK_OK));
    cr_assert(eq(int, st.put_event(st.ctx, t, e), RISK_OK));
    cr_assert(eq(int, st.commit(st.ctx, t), RISK_OK));
    risk_event_free(e);
    void *ctx = NULL;
    risk_peek p;
    cr_assert(eq(int, risk_store_peeker_of(&st, &ctx)->peek(ctx, "ghost", 5, &p),
                 RISK_ENOTFOUND));
    cr_assert(eq(int, st.view_user(st.ctx, "ghost", view_fields, &(struct viewed){0}),
                 RISK_ENOTFOUND));
    fx_close();
}

Test(users_map, journal_store_slots_follow_their_users_and_a_reopen)
{
    char dir[] = "/tmp/risk-usersmap-XXXXXX", path[64];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/j", dir);
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    o.durability = RISK_DURABILITY_OFF;
    risk_store st;
    cr_assert(eq(int, risk_journal_open(&st, path, &o, NULL), RISK_OK), "%s", risk_error_last());
    fx_open_on(&st, NULL, 0, 0);
    run_mix(&st);
    fx_close();
    /* the reopen loads each user's last record (risk_memstore_load_user) */
    cr_assert(eq(int, risk_journal_open(&st, path, &o, NULL), RISK_OK), "%s", risk_error_last());
    cr_assert(check_slots(&st, "reopen") > 0);
    /* and a compacted journal, reopened read-only beside the writer */
    fx_open_on(&st, NULL, 0, 0);
    cr_assert(eq(int, risk_engine_compact(fx), RISK_OK), "%s", risk_error_last());
    risk_store ro;
    risk_journal_options r = o;
    r.read_only = 1;
    cr_assert(eq(int, risk_journal_open(&ro, path, &r, NULL), RISK_OK), "%s", risk_error_last());
    cr_assert(check_slots(&ro, "compacted, read-only") > 0);
    ro.close(ro.ctx);
    fx_close();
    cr_assert(eq(int, unlink(path), 0));
    cr_assert(eq(int, rmdir(dir), 0));
}

/* The sign-in itself, through the peek: a user whose id does not fit a
 * slot is decided by its own level, and an id that only shares its first
 * bytes with a known one is an unknown user (R-PO-8: level none). */
Test(users_map, sign_in_tells_long_ids_apart)
{
    fx_open();
    char a[96], b[96], c[40];
    memset(a, 'x', 60);
    a[60] = '\0';
    memcpy(b, a, 61);
    b[59] = 'y';
    memset(c, 'x', 36); /* a GUID's length: in the slot */
    c[36] = '\0';
    fx_user(a, -1, 0);
    fx_user(c, -1, 0);
    cr_assert(eq(int, fx_event(a, "e1", "leakedCredentials", RISK_LEVEL_HIGH, 0), RISK_OK));
    cr_assert(eq(int, fx_event(c, "e2", "leakedCredentials", RISK_LEVEL_HIGH, 0), RISK_OK));
    fx_policy("block-high", RISK_LEVEL_HIGH, RISK_CONTROL_BLOCK, RISK_MODE_ON);
    cr_assert(eq(int, (int)fx_signin(a, NULL), RISK_DECISION_BLOCK));
    cr_assert(eq(int, (int)fx_signin(c, NULL), RISK_DECISION_BLOCK));
    cr_assert(eq(int, (int)fx_signin(b, NULL), RISK_DECISION_ALLOW));
    c[35] = 'y';
    cr_assert(eq(int, (int)fx_signin(c, NULL), RISK_DECISION_ALLOW));
    fx_close();
}
