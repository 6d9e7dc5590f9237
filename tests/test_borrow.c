/* The engine's copies of a built-in store's events for one operation
 * point at the strings the store keeps (risk_event_dup_borrowing), and a
 * put of such a copy back into the store keeps those pointers instead of
 * copying the strings: the rules that keep that safe. */
#include "memstore_fixture.h"

#include "engine.h"

TestSuite(borrow, .init = setup, .fini = teardown);

static risk_event *full_event(const char *id, const char *user)
{
    risk_event *e = mkevent(id, user, RISK_LEVEL_MEDIUM);
    cr_assert(risk_event_set_ip(e, "192.0.2.7") == RISK_OK);
    cr_assert(risk_event_set_location(e, "Lisbon, PT") == RISK_OK);
    cr_assert(risk_event_set_source(e, "IdentityProtection") == RISK_OK);
    return e;
}

static void store_event(risk_event *e)
{
    void *t = begin(e->user_id);
    cr_assert(put_user(t, e->user_id, 1, RISK_LEVEL_MEDIUM) == RISK_OK);
    cr_assert(st.put_event(st.ctx, t, e) == RISK_OK);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    risk_event_free(e);
}

typedef struct {
    risk_event *copy;
    const risk_event *view; /* valid during the visit only */
    int seen;
} borrowed;

static int borrow_one(const risk_event *v, void *arg)
{
    borrowed *b = arg;
    cr_assert(b->copy == NULL, "one event");
    cr_assert(risk_event_dup_borrowing(&b->copy, v, NULL, NULL) == RISK_OK);
    /* the stable strings are the view's own; ip and note are copies */
    cr_assert(b->copy->id == v->id && b->copy->user_id == v->user_id);
    cr_assert(b->copy->type == v->type && b->copy->location == v->location);
    cr_assert(b->copy->source == v->source);
    cr_assert(b->copy->ip != v->ip && strcmp(b->copy->ip, v->ip) == 0);
    b->seen++;
    return 0;
}

static risk_event *load_borrowed(void *t, const char *user)
{
    borrowed b = {0};
    cr_assert(st.user_events(st.ctx, t, user, borrow_one, &b) == RISK_OK);
    cr_assert(b.seen == 1);
    return b.copy;
}

/* ev-1 of alice stored, then the engine's kind of copy of it, read in a
 * txn left open in *txn, or rolled back when txn is NULL. */
static risk_event *stored_copy(void **txn)
{
    store_event(full_event("ev-1", "alice"));
    void *t = begin("alice");
    risk_event *c = load_borrowed(t, "alice");
    if (txn != NULL)
        *txn = t;
    else
        st.rollback(st.ctx, t);
    return c;
}

static risk_event *get(const char *id)
{
    risk_event *e = NULL;
    void *t = begin(NULL);
    cr_assert(st.get_event(st.ctx, t, id, &e) == RISK_OK);
    st.rollback(st.ctx, t);
    return e;
}

Test(borrow, copy_points_at_store_and_frees_cleanly)
{
    risk_event *c = stored_copy(NULL);
    /* freeing skips the borrowed strings (ASan and valgrind runs see an
     * invalid free otherwise) */
    cr_assert(eq(str, c->type, "leakedCredentials"));
    risk_event_free(c);
}

/* An allocator handing out a static buffer: freeing what it placed with
 * risk_free would crash. */
static _Alignas(max_align_t) unsigned char placed_buf[1024];
static size_t placed_n;

static void *place(void *ctx, size_t n)
{
    (void)ctx;
    if (n > sizeof placed_buf)
        return NULL;
    placed_n = n;
    return placed_buf;
}

static int place_one(const risk_event *v, void *arg)
{
    return risk_event_dup_borrowing((risk_event **)arg, v, place, NULL);
}

Test(borrow, a_placed_copy_is_not_freed_by_risk_event_free)
{
    /* the engine places an operation's copies in one block: freeing a
     * copy frees the strings it owns (a setter's), never the handle */
    store_event(full_event("ev-1", "alice"));
    void *t = begin("alice");
    risk_event *c = NULL;
    cr_assert(st.user_events(st.ctx, t, "alice", place_one, &c) == RISK_OK);
    st.rollback(st.ctx, t);
    int placed = (void *)c == (void *)placed_buf && c->in_block == 1;
    cr_assert(placed);
    cr_assert(placed_n > sizeof *c); /* the ip went with it */
    cr_assert(eq(str, c->ip, "192.0.2.7"));
    cr_assert(risk_event_set_source(c, "elsewhere") == RISK_OK); /* owned: freed below */
    risk_event *own = NULL;
    cr_assert(risk_event_dup(&own, c) == RISK_OK);
    cr_assert(own->in_block == 0); /* a copy of it is an ordinary event */
    risk_event_free(c);
    cr_assert(eq(str, own->source, "elsewhere"));
    risk_event_free(own);
}

Test(borrow, closing_put_back_keeps_every_field)
{
    void *t = NULL;
    risk_event *c = stored_copy(&t);
    risk_event_close_borrowed(c, RISK_EVENT_CLOSED, RISK_CLOSE_DISMISSED, 5000, "admin");
    risk_event_note_borrowed(c, "all clear");
    cr_assert(st.put_event(st.ctx, t, c) == RISK_OK);
    /* the buffered write kept the store's strings, copied the others, and
     * knows the node it replaces */
    const mtxn *mt = t;
    const bufev *b = mt->evl[mt->n_evl - 1];
    cr_assert(b->e.id == c->id && b->e.type == c->type && b->e.location == c->location);
    cr_assert(b->e.ip != c->ip && b->e.closed_by != c->closed_by);
    cr_assert(b->seen != NULL);
    risk_event_free(c);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    risk_event *e = get("ev-1");
    cr_assert(eq(str, e->id, "ev-1"));
    cr_assert(eq(str, e->user_id, "alice"));
    cr_assert(eq(str, e->type, "leakedCredentials"));
    cr_assert(eq(str, e->ip, "192.0.2.7"));
    cr_assert(eq(str, e->location, "Lisbon, PT"));
    cr_assert(eq(str, e->source, "IdentityProtection"));
    cr_assert(eq(str, e->closed_by, "admin"));
    cr_assert(eq(str, e->note, "all clear"));
    uint32_t state = e->state, reason = e->reason;
    cr_assert(eq(u32, state, RISK_EVENT_CLOSED));
    cr_assert(eq(u32, reason, RISK_CLOSE_DISMISSED));
    risk_event_free(e);
}

Test(borrow, a_set_field_is_copied_not_kept)
{
    /* a setter replaces a borrowed string: the copy owns the new one and
     * no longer claims it is the store's, so the put copies it */
    void *t = NULL;
    risk_event *c = stored_copy(&t);
    const char *was = c->location;
    cr_assert(risk_event_set_location(c, "Porto, PT") == RISK_OK);
    cr_assert(risk_event_set_source(c, NULL) == RISK_OK);
    cr_assert(c->location != was);
    unsigned claims = (c->stable | c->borrowed) & RISK_EV_BORROWED_LOCATION;
    cr_assert(eq(u32, claims, 0));
    cr_assert(st.put_event(st.ctx, t, c) == RISK_OK);
    risk_event_free(c);
    cr_assert(st.commit(st.ctx, t) == RISK_OK);
    risk_event *e = get("ev-1");
    cr_assert(eq(str, e->location, "Porto, PT"));
    cr_assert(e->source == NULL);
    cr_assert(eq(str, e->type, "leakedCredentials"));
    risk_event_free(e);
}

Test(borrow, dup_of_a_borrowed_copy_owns_everything)
{
    /* what leaves an operation (a feedback hook's event, a query's
     * answer) is a risk_event_dup: it outlives the store */
    risk_event *c = stored_copy(NULL);
    risk_event *own = NULL;
    cr_assert(risk_event_dup(&own, c) == RISK_OK);
    risk_event_free(c);
    cr_assert(own->stable == 0 && own->stable_of == NULL && own->borrowed == 0);
    st.close(st.ctx);
    memset(&st, 0, sizeof st);
    cr_assert(eq(str, own->type, "leakedCredentials")); /* a use after free otherwise */
    cr_assert(eq(str, own->location, "Lisbon, PT"));
    cr_assert(eq(str, own->id, "ev-1"));
    risk_event_free(own);
}

Test(borrow, another_store_copies)
{
    /* a copy whose strings are another store's is copied in full: the
     * pointers would not outlive that store */
    risk_event *c = stored_copy(NULL);
    risk_store other;
    cr_assert(risk_memory_store_new(&other) == RISK_OK);
    void *u = NULL;
    cr_assert(other.begin(other.ctx, "alice", &u) == RISK_OK);
    risk_user *usr = mkuser("alice", 1, RISK_LEVEL_MEDIUM);
    cr_assert(other.put_user(other.ctx, u, usr) == RISK_OK);
    risk_user_free(usr);
    cr_assert(other.put_event(other.ctx, u, c) == RISK_OK);
    cr_assert(other.commit(other.ctx, u) == RISK_OK);
    risk_event_free(c);
    st.close(st.ctx); /* the first store's strings are gone */
    memset(&st, 0, sizeof st);
    risk_event *e = NULL;
    cr_assert(other.begin(other.ctx, NULL, &u) == RISK_OK);
    cr_assert(other.get_event(other.ctx, u, "ev-1", &e) == RISK_OK);
    other.rollback(other.ctx, u);
    cr_assert(eq(str, e->type, "leakedCredentials"));
    cr_assert(eq(str, e->location, "Lisbon, PT"));
    cr_assert(eq(str, e->user_id, "alice"));
    risk_event_free(e);
    other.close(other.ctx);
}

/* ---- through the engine ---- */

static risk_event *kept[8];
static size_t n_kept;

static void keep_feedback(const risk_event *ev, int withdrawn, void *ud)
{
    (void)withdrawn, (void)ud;
    cr_assert(n_kept < 8);
    cr_assert(risk_event_dup(&kept[n_kept++], ev) == RISK_OK);
}

Test(borrow, dismiss_and_feedback_outlive_the_engine)
{
    /* a dismissal closes the events through borrowed copies; what the
     * store keeps and what the feedback hook got are whole after close */
    risk_engine_options o;
    cr_assert(risk_engine_options_init(&o) == RISK_OK);
    o.feedback = keep_feedback;
    risk_engine *e = NULL;
    cr_assert(risk_engine_new(&e, &st, &o) == RISK_OK);
    memset(&st, 0, sizeof st); /* the engine owns the store now */
    risk_event *a = full_event("ev-a", "bob"), *b = full_event("ev-b", "bob");
    cr_assert(risk_engine_ingest(e, "admin", a, 0) == RISK_OK);
    cr_assert(risk_engine_ingest(e, "admin", b, 0) == RISK_OK);
    risk_event_free(a);
    risk_event_free(b);
    cr_assert(risk_engine_false_positive(e, "admin", "ev-a", "not them") == RISK_OK);
    uint32_t closed = 0;
    cr_assert(risk_engine_dismiss(e, "admin", "bob", "reviewed", &closed) == RISK_OK);
    cr_assert(eq(u32, closed, 1));
    risk_event *got = NULL;
    cr_assert(risk_engine_event(&got, e, "ev-b") == RISK_OK);
    cr_assert(eq(str, got->location, "Lisbon, PT"));
    cr_assert(eq(str, got->ip, "192.0.2.7"));
    cr_assert(got->note == NULL); /* the dismissal's note is its history item's */
    cr_assert(eq(str, got->closed_by, "admin"));
    risk_engine_free(e);
    cr_assert(eq(str, got->type, "leakedCredentials")); /* owned: outlives the store */
    risk_event_free(got);
    cr_assert(n_kept == 1);
    cr_assert(eq(str, kept[0]->id, "ev-a"));
    cr_assert(eq(str, kept[0]->source, "IdentityProtection"));
    risk_event_free(kept[0]);
    n_kept = 0;
}
