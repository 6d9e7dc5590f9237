/* The in-memory store's events: compact nodes carved from the arena with
 * per-size free lists, the map by id (tagged slot groups), views,
 * installation, recovery loading. lib/store_memory.c explains the layout.
 *
 * Why a slab (issue #9, a million events): malloc adds 8 bytes to a node
 * and rounds to 16; arena nodes round to 8. Events are replaced in place
 * when the new version has the same size (a closing: dismiss-all), so free
 * lists see little traffic; a replaced or spare node goes back to its
 * size's list. Nodes bigger than SLAB_MAX (long notes) are malloc'ed.
 *
 * The map by id is open addressing over 64-byte groups of seven slots, each
 * slot's node pointer beside an 8-bit tag of its id's hash (etab, as in
 * Swiss tables and F14): a lookup reads its home group, one cache line,
 * and follows a pointer only when a tag matches, so an absent id (every
 * ingest asks) costs one cache miss, where the chained table it replaced
 * paid the bucket, each chained node and each node's id. A group counts
 * the inserts that found it full and went on (never decremented: events
 * are replaced, never removed), so a lookup stops at the first group that
 * sent none on. 9.1 bytes a slot at ≤ 7/8 load: for a million events a
 * table of 16 MB, as the chained one was (a pointer per bucket and one
 * per node), and nodes are 8 bytes smaller. */
#include "memstore.h"

_Static_assert(sizeof(evnode) == 56 || sizeof(void *) != 8,
               "an event node is 56 bytes, its ip and its note");

/* ---- slab ---- */
size_t ev_size(size_t ip_len, size_t note_len)
{
    return (sizeof(evnode) + ip_len + note_len + 7) & ~(size_t)7;
}

static size_t node_size(const evnode *n) { return ev_size(n->ip_len, n->note_len); }

evnode *ev_take(home *hm, size_t size, int *popped)
{
    *popped = 0;
    if (size > SLAB_MAX) {
        evnode *n = risk_malloc(size);
        if (n == NULL)
            ms_nomem();
        return n;
    }
    evnode **fl = &hm->efree[size / 8];
    if (*fl != NULL) {
        evnode *n = *fl;
        *fl = n->fl_next;
        *popped = 1;
        return n;
    }
    return arena_alloc(&hm->ar, size, 8);
}

void ev_give(home *hm, evnode *n)
{
    size_t size = node_size(n);
    if (size > SLAB_MAX) {
        risk_free(n);
        return;
    }
    n->fl_next = hm->efree[size / 8];
    hm->efree[size / 8] = n;
}

/* ---- the map ---- */
static inline size_t eg_home(const etab *t, uint64_t h)
{
    return (size_t)(((h >> 32) * (uint64_t)t->ng) >> 32); /* ng < 2^32 */
}

static inline uint8_t eg_tag(uint64_t h) { return (uint8_t)h; }

/* The slot of id, or NULL. */
static evnode **etab_slot(const etab *t, uint64_t h, const char *id)
{
    if (t->count == 0)
        return NULL;
    uint8_t tag = eg_tag(h);
    for (size_t g = eg_home(t, h);;) {
        egroup *G = &t->g[g];
        for (int i = 0; i < EG_SLOTS; i++)
            if (G->tag[i] == tag && G->n[i] != NULL && strcmp(G->n[i]->id, id) == 0)
                return &G->n[i];
        if (G->over == 0)
            return NULL;
        if (++g == t->ng)
            g = 0;
    }
}

void etab_prefetch(const etab *t, uint64_t h)
{
    if (t->count != 0)
        __builtin_prefetch(&t->g[eg_home(t, h)]);
}

evnode *etab_get(const etab *t, uint64_t h, const char *id)
{
    evnode **sl = etab_slot(t, h, id);
    return sl ? *sl : NULL;
}

/* Put n (absent) in the first free slot from its home group on; every
 * full group passed counts one more insert beyond it. Room: etab_reserve. */
static void etab_place(egroup *gs, size_t ng, uint64_t h, evnode *n)
{
    size_t g = (size_t)(((h >> 32) * (uint64_t)ng) >> 32);
    for (;;) {
        egroup *G = &gs[g];
        for (int i = 0; i < EG_SLOTS; i++)
            if (G->n[i] == NULL) {
                G->tag[i] = eg_tag(h);
                G->n[i] = n;
                return;
            }
        if (G->over < UINT8_MAX)
            G->over++;
        if (++g == ng)
            g = 0;
    }
}

#define GROW_AHEAD 8 /* groups ahead whose nodes are fetched */

/* Every node into a table of ng groups; ENOMEM leaves t as it was. */
static int etab_rehash(etab *t, size_t ng)
{
    egroup *gs = risk_calloc(ng, sizeof *gs);
    if (gs == NULL)
        return risk_err(RISK_ENOMEM, "memstore: out of memory growing the events table");
    /* Under the write lock, every node moves: visited in table order they
     * are in no memory order, a cache miss each on the node and on its id
     * (hashed again), and the other writers of the shard wait. The nodes
     * of a group GROW_AHEAD on are fetched, the ids of the group half as
     * far (their nodes arrived or on the way). */
    for (size_t g = 0; g < t->ng; g++) {
        if (g + GROW_AHEAD < t->ng)
            for (int i = 0; i < EG_SLOTS; i++)
                if (t->g[g + GROW_AHEAD].n[i] != NULL)
                    __builtin_prefetch(t->g[g + GROW_AHEAD].n[i]);
        if (g + GROW_AHEAD / 2 < t->ng)
            for (int i = 0; i < EG_SLOTS; i++)
                if (t->g[g + GROW_AHEAD / 2].n[i] != NULL)
                    __builtin_prefetch(t->g[g + GROW_AHEAD / 2].n[i]->id);
        for (int i = 0; i < EG_SLOTS; i++)
            if (t->g[g].n[i] != NULL)
                etab_place(gs, ng, hash_str(t->g[g].n[i]->id), t->g[g].n[i]);
    }
    if (t->g != t->inl)
        risk_free(t->g);
    t->g = gs;
    t->ng = ng;
    return RISK_OK;
}

/* Inserts are kept to 7/8 of the slots (a lookup of an absent id then
 * mostly reads its home group only); a table that cannot grow is filled
 * to 15/16 before inserts fail. It grows by half (groups are found by
 * multiplying, any count will do): a grown table is 58-88% full, not
 * 44-88% as by doubling; the benchmark's million events take 11 MiB of
 * groups instead of 16, which pays for the users map's wider slots
 * (lib/memstore.h). */
#define ETAB_SOFT(ng) ((ng) * EG_SLOTS * 7 / 8)
#define ETAB_HARD(ng) ((ng) * EG_SLOTS * 15 / 16)

int etab_reserve(etab *t, size_t extra)
{
    size_t need = t->count + t->reserved + extra;
    if (need > ETAB_SOFT(t->ng)) {
        size_t ng = t->ng ? t->ng + t->ng / 2 : 8;
        while (need > ETAB_SOFT(ng))
            ng += ng / 2;
        if (ng > UINT32_MAX || etab_rehash(t, ng) != RISK_OK) {
            if (need > ETAB_HARD(t->ng))
                return risk_err(RISK_ENOMEM, "memstore: out of memory growing the events table");
        }
    }
    t->reserved += extra;
    return RISK_OK;
}

void etab_free(etab *t)
{
    for (size_t g = 0; g < t->ng; g++)
        for (int i = 0; i < EG_SLOTS; i++)
            if (t->g[g].n[i] != NULL && node_size(t->g[g].n[i]) > SLAB_MAX)
                risk_free(t->g[g].n[i]); /* the others go with the arena */
    if (t->g != t->inl)
        risk_free(t->g);
}

/* ---- nodes ---- */
static size_t slen(const char *s) { return s ? strlen(s) + 1 : 0; }

int ev_check(const risk_event *e)
{
    if (slen(e->ip) > UINT16_MAX / 2 || slen(e->note) > UINT16_MAX / 2 || e->level > 255 ||
        e->timing > 255 || e->state > 255 || e->reason > 255)
        return risk_err(RISK_EINVAL, "event: a field is out of range");
    return RISK_OK;
}

int ev_make(risk_memstore *ms, mtxn *t, home *hm, const risk_event *e,
            const char *stable_id, evnode **out, int *popped)
{
    const char *str[4] = {e->type, e->location, e->source, e->closed_by};
    uint32_t v[4];
    for (int i = 0; i < 4; i++)
        if ((v[i] = intern(ms, str[i], t)) == (uint32_t)-1)
            return RISK_ENOMEM;
    if (stable_id == NULL && (stable_id = arena_strdup(&hm->ar, e->id)) == NULL)
        return RISK_ENOMEM;
    size_t ip = slen(e->ip), note = slen(e->note);
    evnode *n = ev_take(hm, ev_size(ip, note), popped);
    if (n == NULL)
        return RISK_ENOMEM;
    n->owner = NULL;
    n->id = stable_id;
    ev_patch_apply(n, e, v); /* every field a version of the event may change */
    *out = n;
    return RISK_OK;
}

void ev_view(const risk_memstore *ms, const evnode *n, risk_event *out)
{
    memset(out, 0, sizeof *out); /* fields this store does not know stay zero */
    out->id = (char *)n->id;
    out->user_id = n->owner->u.id;
    out->type = (char *)istr(ms, n->type);
    out->ip = n->ip_len ? (char *)n->str : NULL;
    out->location = (char *)istr(ms, n->location);
    out->source = (char *)istr(ms, n->source);
    out->closed_by = (char *)istr(ms, n->closed_by);
    out->note = n->note_len ? (char *)n->str + n->ip_len : NULL;
    out->level = n->level;
    out->timing = n->timing;
    out->state = n->state;
    out->reason = n->reason;
    out->detected_at = n->detected_at;
    out->closed_at = n->closed_at;
    /* what stays as it is until the store closes: the id (the arena; a
     * new version keeps it), the owner's id, and the interned strings
     * (never removed once a committed node names them). ip and note live
     * in the node, which a later version may overwrite. */
    out->stable = RISK_EV_BORROWED_ID | RISK_EV_BORROWED_USER_ID | RISK_EV_BORROWED_TYPE |
                  RISK_EV_BORROWED_LOCATION | RISK_EV_BORROWED_SOURCE |
                  RISK_EV_BORROWED_CLOSED_BY;
    out->stable_of = ms;
}

int evnode_dup(const risk_memstore *ms, risk_event **out, const evnode *n)
{
    risk_event v;
    ev_view(ms, n, &v);
    return risk_event_dup(out, &v);
}

/* The capacities of a user's event array: 7, 9, 11, 13, 15, then half as
 * much again each time, always odd. An array of an odd number of
 * pointers fills its malloc block (8 bytes of header, blocks of 16), and
 * the small steps fit the ~10 events a user typically has: ~94 bytes a
 * user where doubling from 4 took ~127 (the benchmark's 100,000 users:
 * peak RSS 4-5 MiB lower), for two reallocations more over a user's first
 * 15 events. */
#define EV_CAP_FIRST 7u
static uint64_t ev_cap_next(uint64_t cap)
{
    return cap < 15 ? cap + 2 : (cap + cap / 2) | 1;
}

/* The smallest capacity of the sequence that holds n. */
static uint64_t ev_cap_for(uint64_t n)
{
    uint64_t cap = EV_CAP_FIRST;
    while (cap < n)
        cap = ev_cap_next(cap);
    return cap;
}

int ev_reserve(subject *s, uint32_t extra)
{
    uint64_t need = (uint64_t)s->n_ev + s->ev_res + extra;
    if (need > s->cap_ev) {
        uint64_t cap = s->cap_ev ? s->cap_ev : EV_CAP_FIRST;
        while (cap < need)
            cap = ev_cap_next(cap);
        evnode **v = cap > UINT32_MAX ? NULL : risk_realloc(s->evs, cap * sizeof *v);
        if (v == NULL)
            return ms_nomem();
        s->evs = v;
        s->cap_ev = (uint32_t)cap;
    }
    s->ev_res += extra;
    return RISK_OK;
}

void ev_unreserve(subject *s, uint32_t n)
{
    s->ev_res -= n;
    if (s->n_ev == 0 && s->ev_res == 0) { /* a failed first event leaves no block */
        risk_free(s->evs);
        s->evs = NULL;
        s->cap_ev = 0;
        return;
    }
    /* Room promised and not taken goes back. The journal's commits
     * reserve a slot for every event they write (between its prepare and
     * its apply an event may change owner), and a closing of ten events
     * would then keep a ten-event user's array at twice its size for good
     * although the new versions take their old slots: 12 MiB over the
     * benchmark's 100,000 dismissals. The owner's shard is write-locked
     * (prepare, apply and rollback hold it). A failed shrink keeps the
     * larger array. */
    if (s->ev_res == 0 && s->cap_ev > EV_CAP_FIRST && s->n_ev <= s->cap_ev / 2) {
        uint32_t cap = (uint32_t)ev_cap_for(s->n_ev); /* below cap_ev */
        evnode **v = risk_realloc(s->evs, cap * sizeof *v);
        if (v != NULL) {
            s->evs = v;
            s->cap_ev = cap;
        }
    }
}

/* Unlinking searches the array, which only a replacement that does not fit
 * in place does. */
void ev_link(subject *s, evnode *n)
{
    n->owner = s;
    s->evs[s->n_ev++] = n;
}

void ev_unlink(evnode *n)
{
    subject *s = n->owner;
    uint32_t i = 0;
    while (s->evs[i] != n)
        i++;
    s->evs[i] = s->evs[--s->n_ev];
}

int ev_fits(const evnode *old, const subject *owner, size_t size)
{
    return old->owner == owner && node_size(old) == size;
}

/* The index of s, old's (i) when they are equal. */
static uint32_t intern_like(risk_memstore *ms, mtxn *t, uint32_t i, const char *s)
{
    if (s == NULL)
        return 0;
    if (i != 0) {
        const char *was = istr(ms, i);
        if (was == s || strcmp(was, s) == 0) /* the same pointer: a copy kept it */
            return i;
    }
    return intern(ms, s, t);
}

int ev_patch_prepare(risk_memstore *ms, mtxn *t, const evnode *old, const risk_event *e,
                     uint32_t v[4])
{
    const uint32_t was[4] = {old->type, old->location, old->source, old->closed_by};
    const char *str[4] = {e->type, e->location, e->source, e->closed_by};
    for (int i = 0; i < 4; i++)
        if ((v[i] = intern_like(ms, t, was[i], str[i])) == (uint32_t)-1)
            return RISK_ENOMEM;
    return RISK_OK;
}

void ev_patch_apply(evnode *old, const risk_event *e, const uint32_t v[4])
{
    size_t ip = slen(e->ip), note = slen(e->note); /* they fit: ev_fits, ev_size */
    old->detected_at = e->detected_at;
    old->closed_at = e->closed_at;
    old->type = v[0];
    old->location = v[1];
    old->source = v[2];
    old->closed_by = v[3];
    old->level = (uint8_t)e->level; /* ranges: ev_check */
    old->timing = (uint8_t)e->timing;
    old->state = (uint8_t)e->state;
    old->reason = (uint8_t)e->reason;
    old->ip_len = (uint16_t)ip;
    old->note_len = (uint16_t)note;
    if (ip)
        memcpy(old->str, e->ip, ip);
    if (note)
        memcpy(old->str + ip, e->note, note);
}

/* A closing keeps the size: the new version is copied into the old node
 * (what follows its id), no relinking, no table: readers of node contents
 * hold the owner's shard lock, which the writer holds. */
static int in_place(home *hm, evnode *old, evnode *n)
{
    if (!ev_fits(old, n->owner, node_size(n)))
        return 0;
    size_t at = offsetof(evnode, detected_at);
    memcpy((char *)old + at, (const char *)n + at, node_size(n) - at);
    ev_give(hm, n);
    return 1;
}

void ev_install(risk_memstore *ms, home *hm, uint64_t h, evnode *n, int known, evnode *old)
{
    if (known && old != NULL && in_place(hm, old, n))
        return;
    etab *t = &esh_of(ms, h)->t;
    evnode **sl = known && old == NULL ? NULL : etab_slot(t, h, n->id);
    if (sl == NULL) { /* room: reserved by prepare */
        ev_link(n->owner, n);
        etab_place(t->g, t->ng, h, n);
        t->count++;
        return;
    }
    old = *sl;
    if (in_place(hm, old, n))
        return;
    old->owner->ev_moves++; /* txns' nodes remembered from it may be stale */
    ev_unlink(old);
    ev_link(n->owner, n);
    *sl = n;
    ev_give(hm, old);
}

/* ---- recovery ---- */
int risk_memstore_load_event(risk_memstore *ms, risk_event *event)
{
    if (ms == NULL || event == NULL || event->id == NULL || event->user_id == NULL) {
        risk_event_free(event);
        return risk_err(RISK_EINVAL, "event: NULL");
    }
    uint64_t h = hash_str(event->id), uh = hash_str(event->user_id);
    etab *t = &esh_of(ms, h)->t;
    home *hm = home_get(ms);
    if (hm == NULL) {
        risk_event_free(event);
        return RISK_ENOMEM;
    }
    const evnode *old = etab_get(t, h, event->id);
    size_t room = old == NULL; /* a new id takes a slot */
    subject *owner = NULL;
    evnode *n = NULL;
    int popped, rc = ev_check(event);
    if (rc == RISK_OK && (rc = etab_reserve(t, room)) != RISK_OK)
        room = 0;
    if (rc == RISK_OK && (owner = subject_get(ms, uh, event->user_id)) == NULL)
        rc = RISK_ENOMEM;
    int slot = 0; /* the owner's array takes it unless it replaces the owner's own */
    if (rc == RISK_OK && (old == NULL || old->owner != owner) &&
        (rc = ev_reserve(owner, 1)) == RISK_OK)
        slot = 1;
    /* what fails leaves only arena bytes, an empty subject or room in its
     * array behind: none of them is visible (strings are kept at once:
     * nothing shares the store yet) */
    home_take(hm); /* (nothing shares the store yet: for form's sake) */
    if (rc == RISK_OK)
        rc = ev_make(ms, NULL, hm, event, old ? old->id : NULL, &n, &popped);
    risk_event_free(event);
    t->reserved -= room;
    if (owner != NULL)
        owner->ev_res -= slot;
    if (rc == RISK_OK) {
        n->owner = owner;
        ev_install(ms, hm, h, n, 1, (evnode *)old);
    }
    home_put(hm);
    return rc;
}

/* fn runs under the read locks of every user shard (node contents) and of
 * the events shard being visited. */
int risk_memstore_each_event(risk_memstore *ms, risk_event_visit_fn fn, void *arg)
{
    int rc = 0;
    for (unsigned k = 0; k < N_USHARDS; k++)
        ms_rdlock(&ms->ush[k].lock);
    for (unsigned k = 0; k < N_ESHARDS && rc == 0; k++) {
        eshard *es = &ms->esh[k];
        ms_rdlock(&es->lock);
        const etab *t = &es->t;
        for (size_t g = 0; g < t->ng && rc == 0; g++)
            for (int i = 0; i < EG_SLOTS && rc == 0; i++)
                if (t->g[g].n[i] != NULL) {
                    risk_event v;
                    ev_view(ms, t->g[g].n[i], &v);
                    rc = fn(&v, arg);
                }
        ms_rdunlock(&es->lock);
    }
    for (unsigned k = N_USHARDS; k-- > 0;)
        ms_rdunlock(&ms->ush[k].lock);
    return rc;
}
