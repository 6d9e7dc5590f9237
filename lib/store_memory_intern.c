/* The in-memory store's interned strings: one store-wide table of the
 * handful of distinct detection types, locations, sources and actors,
 * each kept once until close and named by an index (event nodes and
 * history items hold 4-byte indices). lib/store_memory.c explains the
 * layout.
 *
 * Commits on different shards run at once, so the table is shared without
 * a lock on the way every commit takes:
 * - index → string is a directory of pages that never move; an entry is
 *   published (release) before its index is handed out, and a page slot
 *   only ever goes from NULL to an entry and, for a string removed by a
 *   rollback, back to NULL: readers need no lock;
 * - each txn object keeps guesses (string key → index); a guess is
 *   checked with one strcmp against the published entry, so after its
 *   first use of a string a txn finds it without touching shared state
 *   but the entry's line (read-only, in every core's cache);
 * - a miss takes intern_mu, looks the string up in a map by hash and adds
 *   it if new.
 * A failed or rolled-back prepare must leave nothing behind (R-IV-3), yet
 * another txn may have taken the index meanwhile. So an added string is
 * owned by the txn that added it until that txn commits; another txn that
 * finds it under intern_mu makes it everyone's (owner NULL), and a
 * rollback removes only the strings it still owns. An owned index is known
 * to its owner only (others get indices under intern_mu, which takes
 * ownership away), so removing the entry frees nothing another thread may
 * read. Indices are never reused: a stale guess finds NULL or another
 * string and misses. */
#include "memstore.h"

/* A cheap key of s for a txn's guess cache: length, first and last 8 bytes. */
static unsigned guess_key(const char *s, size_t n)
{
    uint64_t a = 0, b = 0;
    memcpy(&a, s, n < 8 ? n : 8);
    if (n > 8)
        memcpy(&b, s + n - 8, 8);
    return (unsigned)(((a ^ (b * 0x9e3779b97f4a7c15ULL) ^ n) * 0xff51afd7ed558ccdULL) >> 56) %
           ICACHE;
}

/* Add s (n bytes with the NUL, hash h), owned by t (NULL: kept at once);
 * intern_mu held. */
static uint32_t intern_add(risk_memstore *ms, const char *s, size_t n, uint64_t h, mtxn *t)
{
    uint32_t idx = atomic_load_explicit(&ms->n_istr, memory_order_relaxed);
    if (idx / IPAGE >= IPAGES)
        return risk_err(RISK_ENOMEM, "memstore: more than %u distinct strings",
                        IPAGE * IPAGES - 1), (uint32_t)-1;
    _Atomic(ientry *) *pg = atomic_load_explicit(&ms->ipage[idx / IPAGE], memory_order_relaxed);
    if (pg == NULL) { /* a page, once there, stays: the next string fills it */
        if ((pg = risk_calloc(IPAGE, sizeof *pg)) == NULL)
            return ms_nomem(), (uint32_t)-1;
        atomic_store_explicit(&ms->ipage[idx / IPAGE], pg, memory_order_release);
    }
    ientry *e = risk_malloc(sizeof *e + n);
    if (e == NULL || map_add(&ms->interns, h, e) != RISK_OK) {
        risk_free(e);
        return ms_nomem(), (uint32_t)-1;
    }
    atomic_init(&e->owner, (const void *)t);
    e->idx = idx;
    memcpy(e->s, s, n);
    e->tnext = NULL;
    if (t != NULL) {
        e->tnext = t->inew;
        t->inew = e;
    }
    atomic_store_explicit(&pg[idx % IPAGE], e, memory_order_release);
    atomic_store_explicit(&ms->n_istr, idx + 1, memory_order_relaxed);
    return idx;
}

uint32_t intern(risk_memstore *ms, const char *s, mtxn *t)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s) + 1;
    uint32_t *guess = t ? &t->icache[guess_key(s, n - 1)] : NULL;
    if (guess && *guess != 0) {
        const ientry *e = ientry_at(ms, *guess);
        if (e != NULL && strcmp(e->s, s) == 0) {
            const void *o = atomic_load_explicit(&e->owner, memory_order_relaxed);
            if (o == NULL || o == t)
                return *guess;
        }
    }
    uint64_t h = hash_str(s);
    pthread_mutex_lock(&ms->intern_mu);
    ientry *e = map_get(&ms->interns, h, s);
    uint32_t idx;
    if (e != NULL) {
        if (atomic_load_explicit(&e->owner, memory_order_relaxed) != t)
            atomic_store_explicit(&e->owner, NULL, memory_order_relaxed); /* now shared */
        idx = e->idx;
    } else {
        idx = intern_add(ms, s, n, h, t);
    }
    pthread_mutex_unlock(&ms->intern_mu);
    if (guess && idx != (uint32_t)-1)
        *guess = idx;
    return idx;
}

void intern_commit(mtxn *t)
{
    for (ientry *e = t->inew; e != NULL; e = e->tnext)
        atomic_store_explicit(&e->owner, NULL, memory_order_relaxed);
    t->inew = NULL;
}

void intern_rollback(risk_memstore *ms, mtxn *t)
{
    if (t->inew == NULL)
        return;
    pthread_mutex_lock(&ms->intern_mu);
    for (ientry *e = t->inew, *next; e != NULL; e = next) {
        next = e->tnext;
        if (atomic_load_explicit(&e->owner, memory_order_relaxed) != t)
            continue; /* another txn uses it: it stays */
        size_t at = map_find(&ms->interns, hash_str(e->s), e->s);
        map_remove_at(&ms->interns, at);
        _Atomic(ientry *) *pg =
            atomic_load_explicit(&ms->ipage[e->idx / IPAGE], memory_order_relaxed);
        atomic_store_explicit(&pg[e->idx % IPAGE], NULL, memory_order_relaxed);
        risk_free(e);
    }
    pthread_mutex_unlock(&ms->intern_mu);
    t->inew = NULL;
}

int intern_init(risk_memstore *ms)
{
    ms->interns.key = ientry_key;
    atomic_init(&ms->n_istr, 1); /* index 0 is NULL */
    for (unsigned i = 0; i < IPAGES; i++)
        atomic_init(&ms->ipage[i], NULL);
    _Atomic(ientry *) *pg = risk_calloc(IPAGE, sizeof *pg);
    if (pg == NULL)
        return ms_nomem();
    atomic_store_explicit(&ms->ipage[0], pg, memory_order_relaxed);
    return RISK_OK;
}

void intern_free(risk_memstore *ms)
{
    MAP_EACH(&ms->interns, i)
        risk_free(ms->interns.s[i].val);
    risk_free(ms->interns.s);
    for (unsigned i = 0; i < IPAGES; i++)
        risk_free((void *)atomic_load_explicit(&ms->ipage[i], memory_order_relaxed));
}
