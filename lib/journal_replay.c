/* The journal's history index and recovery. History items stay on disk:
 * the index maps each item to (seq, offset, length) and each user to the
 * positions of its items. Recovery scans the file (journal_format.c) and
 * installs every decoded record straight into the memstore with its bulk
 * load calls: no transaction, no version check, one decode and no copy
 * of users and policies, one packing copy of events. */
#include "journal.h"
#include "memstore.h"

#include <inttypes.h>
#include <sys/stat.h>

/* ---- history index ---- */


static ulist *ulist_find_h(jstore *js, const char *id, uint64_t h)
{
    if (js->u_cap == 0)
        return NULL;
    for (size_t i = h & (js->u_cap - 1);; i = (i + 1) & (js->u_cap - 1)) {
        if (js->u_tab[i].id == NULL)
            return NULL;
        if (js->u_tab[i].hash == h && strcmp(js->u_tab[i].id, id) == 0)
            return &js->u_tab[i];
    }
}

ulist *ulist_find(jstore *js, const char *id)
{
    return ulist_find_h(js, id, hash_str(id));
}

static ulist *ulist_get(jstore *js, const char *id) /* find or insert; NULL: ENOMEM */
{
    uint64_t h = hash_str(id);
    ulist *u = ulist_find_h(js, id, h);
    if (u != NULL)
        return u;
    if (2 * (js->u_n + 1) > js->u_cap) {
        size_t cap = js->u_cap ? 2 * js->u_cap : 64;
        ulist *t = risk_calloc(cap, sizeof *t);
        if (t == NULL)
            return NULL;
        for (size_t i = 0; i < js->u_cap; i++) {
            if (js->u_tab[i].id == NULL)
                continue;
            size_t j = js->u_tab[i].hash & (cap - 1);
            while (t[j].id != NULL)
                j = (j + 1) & (cap - 1);
            t[j] = js->u_tab[i];
        }
        risk_free(js->u_tab);
        js->u_tab = t, js->u_cap = cap;
    }
    char *dup = risk_strdup(id);
    if (dup == NULL)
        return NULL;
    size_t i = h & (js->u_cap - 1);
    while (js->u_tab[i].id != NULL)
        i = (i + 1) & (js->u_cap - 1);
    js->u_tab[i].id = dup;
    js->u_tab[i].hash = h;
    js->u_n++;
    return &js->u_tab[i];
}

/* Make room for k more items (users named in ph) so idx_add cannot fail. */
int idx_reserve(jstore *js, const phist *ph, size_t k)
{
    size_t need = js->h_n + k, c1 = js->h_cap, c2 = js->h_cap, c3 = js->h_cap;
    void *tmp_;
    if (need > UINT32_MAX)
        return risk_err(RISK_EINVAL, "journal: history index full");
    if (GROW(js->h_seq, &c1, need) || GROW(js->h_off, &c2, need) || GROW(js->h_len, &c3, need))
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    js->h_cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    for (size_t i = 0; i < k; i++) {
        if (ph[i].user == NULL)
            continue;
        ulist *u = ulist_get(js, ph[i].user);
        size_t cap = u ? u->cap : 0;
        if (u == NULL || GROW(u->pos, &cap, (size_t)u->n + k))
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        u->cap = (uint32_t)cap;
    }
    return RISK_OK;
}

void idx_add(jstore *js, uint64_t seq, uint64_t off, uint32_t len, const char *user)
{
    if (user != NULL) {
        ulist *u = ulist_find(js, user);
        u->pos[u->n++] = (uint32_t)js->h_n;
    }
    js->h_seq[js->h_n] = seq, js->h_off[js->h_n] = off, js->h_len[js->h_n] = len;
    js->h_n++;
}

/* idx_reserve + idx_add for one item with one hash lookup (recovery). */
static int idx_push(jstore *js, uint64_t seq, uint64_t off, uint32_t len, const char *user)
{
    size_t c1 = js->h_cap, c2 = js->h_cap, c3 = js->h_cap, cap;
    void *tmp_;
    if (js->h_n + 1 > UINT32_MAX)
        return risk_err(RISK_EINVAL, "journal: history index full");
    if (GROW(js->h_seq, &c1, js->h_n + 1) || GROW(js->h_off, &c2, js->h_n + 1) ||
        GROW(js->h_len, &c3, js->h_n + 1))
        return risk_err(RISK_ENOMEM, "journal: out of memory");
    js->h_cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    if (user != NULL) {
        ulist *u = ulist_get(js, user);
        if (u == NULL || (cap = u->cap, GROW(u->pos, &cap, (size_t)u->n + 1)))
            return risk_err(RISK_ENOMEM, "journal: out of memory");
        u->cap = (uint32_t)cap;
        u->pos[u->n++] = (uint32_t)js->h_n;
    }
    js->h_seq[js->h_n] = seq, js->h_off[js->h_n] = off, js->h_len[js->h_n] = len;
    js->h_n++;
    return RISK_OK;
}

uint64_t idx_max_seq(const jstore *js)
{
    return js->h_n ? js->h_seq[js->h_n - 1] : 0;
}

void idx_free(jstore *js)
{
    for (size_t i = 0; i < js->u_cap; i++) {
        risk_free(js->u_tab[i].id);
        risk_free(js->u_tab[i].pos);
    }
    risk_free(js->u_tab);
    risk_free(js->h_seq);
    risk_free(js->h_off);
    risk_free(js->h_len);
}

/* ---- replay ---- */

typedef struct replay {
    jstore *js;
    uint64_t max_seq;
} replay;

static int load_op(void *arg, uint8_t tag, uint64_t at, const uint8_t *p, size_t n)
{
    replay *rp = arg;
    risk_memstore *ms = rp->js->ms;
    int rc;
    switch (tag) {
    case OP_USER: {
        risk_user *u = NULL;
        rc = risk_user_decode(&u, p, n);
        return rc == RISK_OK ? risk_memstore_load_user(ms, u) : rc;
    }
    case OP_EVENT: {
        risk_event *e = NULL;
        rc = risk_event_decode(&e, p, n);
        return rc == RISK_OK ? risk_memstore_load_event(ms, e) : rc;
    }
    case OP_POLICY: {
        risk_policy *pol = NULL;
        rc = risk_policy_decode(&pol, p, n);
        return rc == RISK_OK ? risk_memstore_load_policy(ms, pol) : rc;
    }
    case OP_POLICY_REMOVE: {
        char name[RISK_ID_MAX + 1];
        if (n == 0 || n > RISK_ID_MAX || memchr(p, 0, n) != NULL)
            return risk_err(RISK_ECORRUPT, "policy name: invalid");
        memcpy(name, p, n);
        name[n] = '\0';
        if (risk_check_id("policy name", name) != RISK_OK)
            return RISK_ECORRUPT;
        /* removing an absent policy (two removals) is a no-op */
        risk_memstore_load_remove_policy(ms, name);
        return RISK_OK;
    }
    case OP_META: { /* [key length u16][key][value ≤ 256] */
        char key[RISK_ID_MAX + 1];
        size_t klen = n >= 2 ? (size_t)p[0] | (size_t)p[1] << 8 : 0;
        if (n < 2 || klen == 0 || klen > RISK_ID_MAX || n - 2 < klen || n - 2 - klen > 256 ||
            memchr(p + 2, 0, klen) != NULL)
            return risk_err(RISK_ECORRUPT, "meta: invalid");
        memcpy(key, p + 2, klen);
        key[klen] = '\0';
        return risk_memstore_load_meta(ms, key, p + 2 + klen, n - 2 - klen);
    }
    default: { /* OP_HISTORY: only the index is kept */
        risk_history *h = NULL;
        rc = risk_history_decode(&h, p, n);
        if (rc != RISK_OK)
            return rc;
        if (h->seq <= rp->max_seq)
            rc = risk_err(RISK_ECORRUPT, "history: seq %" PRIu64 " not above %" PRIu64, h->seq,
                          rp->max_seq);
        if (rc == RISK_OK)
            rc = idx_push(rp->js, h->seq, at, (uint32_t)n, h->user_id);
        if (rc == RISK_OK)
            rp->max_seq = h->seq;
        risk_history_free(h);
        return rc;
    }
    }
}

static int replay_frame(void *arg, uint64_t off, const uint8_t *p, uint32_t len)
{
    return frame_ops(off, p, len, load_op, arg);
}

int journal_replay(jstore *js, rd *r, scan_res *res)
{
    /* pre-size the maps from the file size: ~350 bytes per event frame,
     * one user per ten events is the common shape; a hint only */
    size_t ev = (size_t)(r->size / 400);
    risk_memstore_reserve(js->ms, ev / 10, ev);
    replay rp = {.js = js};
    return scan(r, 0, replay_frame, &rp, res);
}
