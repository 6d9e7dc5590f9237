/* The in-memory store's committed state: hash maps, packed record nodes,
 * per-level and per-user lists, the store's lifetime, bulk loading for
 * recovery and the committed-state visitors. Transactions and the callback
 * table are in lib/store_memory.c (whose header comment explains the
 * layout); lib/memstore.h is what the two share. */
#include "memstore.h"

#include <stdatomic.h>

int ms_nomem(void) { return risk_err(RISK_ENOMEM, "memstore: out of memory"); }

/* ---- maps ---- */
void map_free(map *m)
{
    if (m->s != m->inl)
        risk_free(m->s);
}

void map_place(map *m, uint64_t h, void *val)
{
    size_t mask = m->cap - 1, i = h & mask;
    while (m->s[i].val != NULL)
        i = (i + 1) & mask;
    m->s[i].hash = h;
    m->s[i].val = val;
    m->count++;
}

/* Make room for `extra` more entries beyond count + reserved (load ≤ 3/4)
 * and reserve them. ENOMEM leaves the map unchanged. */
int map_reserve(map *m, size_t extra)
{
    size_t need = m->count + m->reserved + extra;
    if (need * 4 > m->cap * 3) {
        size_t cap = m->cap ? m->cap : 8;
        while (need * 4 > cap * 3)
            cap *= 2;
        slot *s = risk_calloc(cap, sizeof *s);
        if (s == NULL)
            return risk_err(RISK_ENOMEM, "memstore: out of memory growing a table to %zu", cap);
        slot *old = m->s;
        size_t oldcap = m->cap;
        m->s = s;
        m->cap = cap;
        m->count = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].val != NULL)
                map_place(m, old[i].hash, old[i].val);
        if (old != m->inl)
            risk_free(old);
    }
    m->reserved += extra;
    return RISK_OK;
}

int map_add(map *m, uint64_t h, void *val)
{
    int rc = map_reserve(m, 1);
    if (rc != RISK_OK)
        return rc;
    m->reserved--;
    map_place(m, h, val);
    return RISK_OK;
}

/* Backward-shift deletion: keeps every probe chain intact without tombstones. */
void map_remove_at(map *m, size_t i)
{
    size_t mask = m->cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->s[j].val == NULL)
            break;
        size_t home = m->s[j].hash & mask;
        /* entry j may move to the hole i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->s[i] = m->s[j];
            i = j;
        }
    }
    m->s[i].val = NULL;
    m->count--;
}

const char *subject_key(const void *v) { return ((const subject *)v)->id; }
const char *evnode_key(const void *v) { return ((const evnode *)v)->ev.id; }
const char *policy_key(const void *v) { return ((const risk_policy *)v)->name; }
const char *meta_key(const void *v) { return ((const metanode *)v)->key; }

/* ---- locks ---- */
static atomic_uint stripe_next;
static _Thread_local unsigned stripe_mine; /* 0: not assigned yet */

/* Threads are spread round-robin over the stripes as they first read. */
unsigned ms_stripe(void)
{
    if (stripe_mine == 0)
        stripe_mine = 1 + atomic_fetch_add_explicit(&stripe_next, 1, memory_order_relaxed) %
                              N_STRIPES;
    return stripe_mine - 1;
}

void ms_wrlock(risk_memstore *ms)
{
    for (unsigned k = 0; k < N_STRIPES; k++)
        pthread_rwlock_wrlock(&ms->locks[k].lock);
}

void ms_wrunlock(risk_memstore *ms)
{
    for (unsigned k = N_STRIPES; k-- > 0;)
        pthread_rwlock_unlock(&ms->locks[k].lock);
}

/* ---- packed nodes: one allocation per stored record ---- */
static size_t slen(const char *s) { return s ? strlen(s) + 1 : 0; }
static char *spack(char **at, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = *at;
    memcpy(d, s, n);
    *at += n;
    return d;
}

evnode *evnode_new(const risk_event *e)
{
    size_t n = slen(e->id) + slen(e->user_id) + slen(e->type) + slen(e->ip) +
               slen(e->location) + slen(e->source) + slen(e->closed_by) + slen(e->note);
    evnode *nd = risk_malloc(sizeof *nd + n);
    if (nd == NULL) {
        ms_nomem();
        return NULL;
    }
    char *at = nd->str;
    nd->ev = *e;
    nd->ev.id = spack(&at, e->id);
    nd->ev.user_id = spack(&at, e->user_id);
    nd->ev.type = spack(&at, e->type);
    nd->ev.ip = spack(&at, e->ip);
    nd->ev.location = spack(&at, e->location);
    nd->ev.source = spack(&at, e->source);
    nd->ev.closed_by = spack(&at, e->closed_by);
    nd->ev.note = spack(&at, e->note);
    nd->owner = NULL;
    nd->prev = nd->next = NULL;
    return nd;
}

hnode *hnode_new(const risk_history *h)
{
    size_t n = slen(h->actor) + slen(h->user_id) + slen(h->event_id) + slen(h->policy) +
               slen(h->note);
    hnode *nd = risk_malloc(sizeof *nd + n);
    if (nd == NULL) {
        ms_nomem();
        return NULL;
    }
    char *at = nd->str;
    nd->item = *h;
    nd->item.actor = spack(&at, h->actor);
    nd->item.user_id = spack(&at, h->user_id);
    nd->item.event_id = spack(&at, h->event_id);
    nd->item.policy = spack(&at, h->policy);
    nd->item.note = spack(&at, h->note);
    nd->next = NULL;
    return nd;
}

/* ---- lists ---- */
void level_link(risk_memstore *ms, subject *s)
{
    uint32_t l = s->u.level < N_LEVELS ? s->u.level : 0;
    s->lprev = NULL;
    s->lnext = ms->levels[l];
    if (s->lnext)
        s->lnext->lprev = s;
    ms->levels[l] = s;
    ms->level_n[l]++;
}

void level_unlink(risk_memstore *ms, subject *s)
{
    uint32_t l = s->u.level < N_LEVELS ? s->u.level : 0;
    if (s->lprev)
        s->lprev->lnext = s->lnext;
    else
        ms->levels[l] = s->lnext;
    if (s->lnext)
        s->lnext->lprev = s->lprev;
    ms->level_n[l]--;
}

void ev_link(subject *s, evnode *n)
{
    n->owner = s;
    n->prev = NULL;
    n->next = s->ev_head;
    if (n->next)
        n->next->prev = n;
    s->ev_head = n;
}

void ev_unlink(evnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        n->owner->ev_head = n->next;
    if (n->next)
        n->next->prev = n->prev;
}

subject *subject_get(risk_memstore *ms, uint64_t h, const char *id)
{
    subject *s = map_get(&ms->users, h, id);
    if (s != NULL)
        return s;
    size_t len = strlen(id);
    s = risk_calloc(1, sizeof *s + len + 1);
    if (s == NULL) {
        ms_nomem();
        return NULL;
    }
    memcpy(s->id, id, len + 1);
    if (map_add(&ms->users, h, s) != RISK_OK) {
        risk_free(s);
        ms_nomem();
        return NULL;
    }
    return s;
}

/* ---- store lifetime ---- */
int risk_memstore_new(risk_memstore **out, int keep_history)
{
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    risk_memstore *ms = risk_calloc(1, sizeof *ms);
    if (ms == NULL)
        return ms_nomem();
    unsigned k = 0;
    for (; k < N_STRIPES; k++)
        if (pthread_rwlock_init(&ms->locks[k].lock, NULL) != 0)
            break;
    if (k < N_STRIPES || pthread_mutex_init(&ms->seq_mu, NULL) != 0) {
        while (k-- > 0)
            pthread_rwlock_destroy(&ms->locks[k].lock);
        risk_free(ms);
        return risk_err(RISK_ENOMEM, "memstore: cannot create the locks");
    }
    ms->users.key = subject_key;
    ms->events.key = evnode_key;
    ms->policies.key = policy_key;
    ms->meta.key = meta_key;
    ms->keep_history = keep_history != 0;
    ms->next_seq = 1;
    *out = ms;
    return RISK_OK;
}

/* The engine never closes a store with open transactions; any left open
 * must be rolled back first or they leak. */
void risk_memstore_free(risk_memstore *ms)
{
    if (ms == NULL)
        return;
    MAP_EACH(&ms->users, i)
        risk_free(ms->users.s[i].val);
    MAP_EACH(&ms->events, i)
        risk_free(ms->events.s[i].val);
    MAP_EACH(&ms->policies, i)
        risk_policy_free(ms->policies.s[i].val);
    MAP_EACH(&ms->meta, i)
        risk_free(ms->meta.s[i].val);
    for (size_t i = 0; i < ms->n_hist; i++)
        risk_free(ms->hist[i]);
    risk_free(ms->users.s);
    risk_free(ms->events.s);
    risk_free(ms->policies.s);
    risk_free(ms->meta.s);
    risk_free(ms->hist);
    pthread_mutex_destroy(&ms->seq_mu);
    for (unsigned k = 0; k < N_STRIPES; k++)
        pthread_rwlock_destroy(&ms->locks[k].lock);
    risk_free(ms);
}

uint64_t risk_memstore_next_seq(risk_memstore *ms)
{
    pthread_mutex_lock(&ms->seq_mu);
    uint64_t n = ms->next_seq;
    pthread_mutex_unlock(&ms->seq_mu);
    return n;
}

void risk_memstore_set_next_seq(risk_memstore *ms, uint64_t next)
{
    pthread_mutex_lock(&ms->seq_mu);
    ms->next_seq = next ? next : 1;
    pthread_mutex_unlock(&ms->seq_mu);
}

/* ---- bulk loading (recovery: one thread, nothing shared yet) ---- */
void risk_memstore_reserve(risk_memstore *ms, size_t users, size_t events)
{
    if (map_reserve(&ms->users, users) == RISK_OK)
        ms->users.reserved -= users;
    if (map_reserve(&ms->events, events) == RISK_OK)
        ms->events.reserved -= events;
}

int risk_memstore_load_user(risk_memstore *ms, risk_user *user)
{
    if (ms == NULL || user == NULL || user->id == NULL) {
        risk_user_free(user);
        return risk_err(RISK_EINVAL, "user: NULL");
    }
    subject *s = subject_get(ms, hash_str(user->id), user->id);
    if (s == NULL) {
        risk_user_free(user);
        return RISK_ENOMEM;
    }
    if (s->has_user)
        level_unlink(ms, s);
    char *id = user->id;
    s->u = *user;
    s->u.id = s->id;
    s->has_user = 1;
    level_link(ms, s);
    user->id = id;
    risk_user_free(user);
    return RISK_OK;
}

int risk_memstore_load_event(risk_memstore *ms, risk_event *event)
{
    if (ms == NULL || event == NULL || event->id == NULL || event->user_id == NULL) {
        risk_event_free(event);
        return risk_err(RISK_EINVAL, "event: NULL");
    }
    evnode *n = evnode_new(event);
    risk_event_free(event);
    if (n == NULL)
        return RISK_ENOMEM;
    uint64_t h = hash_str(n->ev.id);
    subject *owner = subject_get(ms, hash_str(n->ev.user_id), n->ev.user_id);
    int rc = owner ? map_reserve(&ms->events, 1) : RISK_ENOMEM;
    if (rc != RISK_OK) {
        risk_free(n);
        return rc;
    }
    ms->events.reserved--;
    size_t at = map_find(&ms->events, h, n->ev.id);
    if (at != NOPE) { /* a later version of the event replaces the node */
        evnode *old = ms->events.s[at].val;
        ev_unlink(old);
        risk_free(old);
        ms->events.s[at].val = n;
    } else {
        map_place(&ms->events, h, n);
    }
    ev_link(owner, n);
    return RISK_OK;
}

int risk_memstore_load_policy(risk_memstore *ms, risk_policy *policy)
{
    if (ms == NULL || policy == NULL || policy->name == NULL) {
        risk_policy_free(policy);
        return risk_err(RISK_EINVAL, "policy: NULL");
    }
    uint64_t h = hash_str(policy->name);
    size_t at = map_find(&ms->policies, h, policy->name);
    if (at != NOPE) {
        risk_policy_free(ms->policies.s[at].val);
        ms->policies.s[at].val = policy;
        return RISK_OK;
    }
    int rc = map_add(&ms->policies, h, policy);
    if (rc != RISK_OK)
        risk_policy_free(policy);
    return rc;
}

void risk_memstore_load_remove_policy(risk_memstore *ms, const char *name)
{
    size_t at = map_find(&ms->policies, hash_str(name), name);
    if (at != NOPE) {
        risk_policy_free(ms->policies.s[at].val);
        map_remove_at(&ms->policies, at);
    }
}

int risk_memstore_load_meta(risk_memstore *ms, const char *key, const uint8_t *val, size_t len)
{
    size_t kl = key ? strlen(key) : 0;
    if (ms == NULL || kl == 0 || kl > RISK_ID_MAX || len > META_MAX || (len && val == NULL))
        return risk_err(RISK_EINVAL, "key: NULL, empty or too long, or value over 256 bytes");
    uint64_t h = hash_str(key);
    metanode *n = map_get(&ms->meta, h, key);
    if (n == NULL) {
        if ((n = risk_malloc(sizeof *n + kl + 1)) == NULL)
            return ms_nomem();
        memcpy(n->key, key, kl + 1);
        if (map_add(&ms->meta, h, n) != RISK_OK) {
            risk_free(n);
            return ms_nomem();
        }
    }
    n->len = len;
    if (len)
        memcpy(n->val, val, len);
    return RISK_OK;
}

/* ---- committed-state visitors for wrappers (read lock held during fn) ---- */
#define EACH_BODY(m, EXPR)                                 \
    int rc = 0;                                            \
    unsigned k_ = ms_stripe();                             \
    ms_rdlock(ms, k_);                                     \
    for (size_t i = 0; i < (m).cap && rc == 0; i++)        \
        if ((m).s[i].val != NULL)                          \
            rc = (EXPR);                                   \
    ms_rdunlock(ms, k_);                                   \
    return rc

int risk_memstore_each_user(risk_memstore *ms, risk_user_visit_fn fn, void *arg)
{
    EACH_BODY(ms->users, ((subject *)ms->users.s[i].val)->has_user
                             ? fn(&((subject *)ms->users.s[i].val)->u, arg)
                             : 0);
}

int risk_memstore_each_event(risk_memstore *ms, risk_event_visit_fn fn, void *arg)
{
    EACH_BODY(ms->events, fn(&((evnode *)ms->events.s[i].val)->ev, arg));
}

int risk_memstore_each_policy(risk_memstore *ms, risk_policy_visit_fn fn, void *arg)
{
    EACH_BODY(ms->policies, fn(ms->policies.s[i].val, arg));
}

int risk_memstore_each_meta(risk_memstore *ms, risk_meta_visit_fn fn, void *arg)
{
    EACH_BODY(ms->meta, fn(((metanode *)ms->meta.s[i].val)->key,
                           ((metanode *)ms->meta.s[i].val)->val,
                           ((metanode *)ms->meta.s[i].val)->len, arg));
}
