/* The in-memory store's events: compact nodes carved from the arena with
 * per-size free lists, the map by id (chained through the nodes), views,
 * installation, recovery loading. lib/store_memory.c explains the layout.
 *
 * Why a slab and a chained map (issue #9, a million events): malloc adds 8
 * bytes to a node and rounds to 16, and an open-addressing table at ≤ 3/4
 * load holds 2^21 16-byte slots for 1M events (32 MB); arena nodes round
 * to 8, and a chained table costs one pointer per bucket plus one per node
 * (16 MB). Events are replaced in place when the new version has the same
 * size (a closing: dismiss-all), so free lists see little traffic; a
 * replaced or spare node goes back to its size's list. Nodes bigger than
 * SLAB_MAX (long notes) are malloc'ed. */
#include "memstore.h"

_Static_assert(sizeof(evnode) == 72, "an event node is 72 bytes, its ip and its note");

/* ---- slab ---- */
size_t ev_size(size_t ip_len, size_t note_len)
{
    return (sizeof(evnode) + ip_len + note_len + 7) & ~(size_t)7;
}

static size_t node_size(const evnode *n) { return ev_size(n->ip_len, n->note_len); }

evnode *ev_take(risk_memstore *ms, size_t size, int *popped)
{
    *popped = 0;
    if (size > SLAB_MAX) {
        evnode *n = risk_malloc(size);
        if (n == NULL)
            ms_nomem();
        return n;
    }
    evnode **fl = &ms->efree[size / 8];
    if (*fl != NULL) {
        evnode *n = *fl;
        *fl = n->next;
        *popped = 1;
        return n;
    }
    return arena_alloc(&ms->ar, size, 8);
}

void ev_give(risk_memstore *ms, evnode *n)
{
    size_t size = node_size(n);
    if (size > SLAB_MAX) {
        risk_free(n);
        return;
    }
    n->next = ms->efree[size / 8];
    ms->efree[size / 8] = n;
}

/* ---- the map ---- */
evnode *evmap_get(const evmap *m, uint64_t h, const char *id)
{
    if (m->count == 0)
        return NULL;
    for (evnode *n = m->b[h & (m->cap - 1)]; n != NULL; n = n->hnext)
        if (strcmp(n->id, id) == 0)
            return n;
    return NULL;
}

#define GROW_AHEAD 16 /* buckets ahead: a miss takes ~16 buckets' moves */

/* Best effort: room for want nodes at load ≤ 1; a failed growth only
 * makes chains longer. */
void evmap_grow(evmap *m, size_t want)
{
    if (want <= m->cap)
        return;
    size_t cap = m->cap ? m->cap : 64;
    while (cap < want)
        cap *= 2;
    evnode **b = risk_calloc(cap, sizeof *b);
    if (b == NULL)
        return;
    /* Under the write lock, every node moves: walked in bucket order they
     * are in no memory order, a cache miss each on the node and its id
     * (hashed again), and the other writers wait. The first node of a
     * bucket GROW_AHEAD on is fetched, and its id once the node is in
     * (chains average one node at load <= 1); the new buckets (i plus a
     * multiple of the old capacity) are written in order anyway. */
    for (size_t i = 0; i < m->cap; i++) {
        if (i + GROW_AHEAD < m->cap && m->b[i + GROW_AHEAD] != NULL)
            __builtin_prefetch(m->b[i + GROW_AHEAD]);
        if (i + GROW_AHEAD / 2 < m->cap && m->b[i + GROW_AHEAD / 2] != NULL)
            __builtin_prefetch(m->b[i + GROW_AHEAD / 2]->id);
        for (evnode *n = m->b[i], *next; n != NULL; n = next) {
            next = n->hnext;
            evnode **head = &b[hash_str(n->id) & (cap - 1)];
            n->hnext = *head;
            *head = n;
        }
    }
    risk_free(m->b);
    m->b = b;
    m->cap = cap;
}

/* A table must exist before the first insert: 64 buckets at creation. */
int evmap_init(evmap *m)
{
    m->count = 0;
    m->b = risk_calloc(64, sizeof *m->b);
    m->cap = m->b ? 64 : 0;
    return m->b ? RISK_OK : ms_nomem();
}

void evmap_free(risk_memstore *ms)
{
    evmap *m = &ms->events;
    for (size_t i = 0; i < m->cap; i++)
        for (evnode *n = m->b[i], *next; n != NULL; n = next) {
            next = n->hnext;
            if (node_size(n) > SLAB_MAX)
                risk_free(n); /* the others go with the arena */
        }
    risk_free(m->b);
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

int ev_make(risk_memstore *ms, const risk_event *e, uint32_t *icache, const char *stable_id,
            evnode **out, int *popped)
{
    const char *str[4] = {e->type, e->location, e->source, e->closed_by};
    uint32_t v[4];
    for (int i = 0; i < 4; i++)
        if ((v[i] = intern(ms, str[i], icache)) == (uint32_t)-1)
            return RISK_ENOMEM;
    if (stable_id == NULL && (stable_id = arena_strdup(&ms->ar, e->id)) == NULL)
        return RISK_ENOMEM;
    size_t ip = slen(e->ip), note = slen(e->note);
    evnode *n = ev_take(ms, ev_size(ip, note), popped);
    if (n == NULL)
        return RISK_ENOMEM;
    n->hnext = n->next = NULL;
    n->owner = NULL;
    n->id = stable_id;
    n->detected_at = e->detected_at;
    n->closed_at = e->closed_at;
    n->type = v[0];
    n->location = v[1];
    n->source = v[2];
    n->closed_by = v[3];
    n->level = (uint8_t)e->level; /* ranges: ev_check */
    n->timing = (uint8_t)e->timing;
    n->state = (uint8_t)e->state;
    n->reason = (uint8_t)e->reason;
    n->ip_len = (uint16_t)ip;
    n->note_len = (uint16_t)note;
    if (ip)
        memcpy(n->str, e->ip, ip);
    if (note)
        memcpy(n->str + ip, e->note, note);
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
}

int evnode_dup(const risk_memstore *ms, risk_event **out, const evnode *n)
{
    risk_event v;
    ev_view(ms, n, &v);
    return risk_event_dup(out, &v);
}

/* The owner's list is singly linked (8 bytes a node less): unlinking walks
 * it, which only a replacement that does not fit in place does. */
void ev_link(subject *s, evnode *n)
{
    n->owner = s;
    n->next = s->ev_head;
    s->ev_head = n;
}

void ev_unlink(evnode *n)
{
    evnode **pp = &n->owner->ev_head;
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
}

/* A closing keeps the size: the new version is copied into the old node,
 * no relinking; readers are excluded by the write lock. */
static int in_place(risk_memstore *ms, evnode *old, evnode *n)
{
    if (old->owner != n->owner || node_size(old) != node_size(n))
        return 0;
    evnode *hnext = old->hnext, *next = old->next;
    memcpy(old, n, node_size(n));
    old->hnext = hnext;
    old->next = next;
    ev_give(ms, n);
    return 1;
}

void ev_install(risk_memstore *ms, uint64_t h, evnode *n, evnode *old)
{
    if (old != NULL && in_place(ms, old, n))
        return;
    evmap *m = &ms->events;
    evnode **pp = &m->b[h & (m->cap - 1)];
    while (*pp != NULL && strcmp((*pp)->id, n->id) != 0)
        pp = &(*pp)->hnext;
    if ((old = *pp) == NULL) {
        ev_link(n->owner, n);
        n->hnext = m->b[h & (m->cap - 1)];
        m->b[h & (m->cap - 1)] = n;
        m->count++;
        return;
    }
    if (in_place(ms, old, n))
        return;
    old->owner->ev_moves++; /* txns' nodes remembered from it may be stale */
    ev_unlink(old);
    ev_link(n->owner, n);
    n->hnext = old->hnext;
    *pp = n;
    ev_give(ms, old);
}

/* ---- recovery ---- */
int risk_memstore_load_event(risk_memstore *ms, risk_event *event)
{
    if (ms == NULL || event == NULL || event->id == NULL || event->user_id == NULL) {
        risk_event_free(event);
        return risk_err(RISK_EINVAL, "event: NULL");
    }
    uint64_t h = hash_str(event->id);
    const evnode *old = evmap_get(&ms->events, h, event->id);
    subject *owner = NULL;
    evnode *n = NULL;
    int popped, rc = ev_check(event);
    if (rc == RISK_OK &&
        (owner = subject_get(ms, hash_str(event->user_id), event->user_id)) == NULL)
        rc = RISK_ENOMEM;
    /* what fails leaves only unused interned strings, arena bytes or an
     * empty subject behind: none of them is visible */
    if (rc == RISK_OK)
        rc = ev_make(ms, event, NULL, old ? old->id : NULL, &n, &popped);
    risk_event_free(event);
    if (rc != RISK_OK)
        return rc;
    evmap_grow(&ms->events, ms->events.count + 1);
    n->owner = owner;
    ev_install(ms, h, n, NULL);
    return RISK_OK;
}

int risk_memstore_each_event(risk_memstore *ms, risk_event_visit_fn fn, void *arg)
{
    int rc = 0;
    unsigned k_ = ms_stripe();
    ms_rdlock(ms, k_);
    for (size_t i = 0; i < ms->events.cap && rc == 0; i++)
        for (const evnode *n = ms->events.b[i]; n != NULL && rc == 0; n = n->hnext) {
            risk_event v;
            ev_view(ms, n, &v);
            rc = fn(&v, arg);
        }
    ms_rdunlock(ms, k_);
    return rc;
}
