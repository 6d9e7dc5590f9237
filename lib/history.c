/* History items (SPEC §2 "History item"): the audit records. The engine and
 * the stores build them; the application only reads them. */
#include "internal.h"

static const uint8_t zero_chain[32];

static int check_opt_id(const char *what, const char *s)
{
    return s == NULL ? RISK_OK : risk_check_id(what, s);
}

void risk_history_free(risk_history *h)
{
    if (h == NULL)
        return;
    risk_free(h->actor);
    risk_free(h->user_id);
    risk_free(h->event_id);
    risk_free(h->policy);
    risk_free(h->note);
    risk_free(h);
}

/* Copy src to *dst; NULL stays NULL. Returns 0 on allocation failure. */
static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 1;
    return (*dst = risk_strdup(src)) != NULL;
}

int risk_history_new(risk_history **out, uint64_t seq, int64_t at, const char *actor,
                     risk_history_action action, const char *user_id, const char *event_id,
                     const char *policy)
{
    int rc;
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    if ((rc = risk_check_time("at", at)) != RISK_OK ||
        (rc = risk_check_id("actor", actor)) != RISK_OK)
        return rc;
    if ((uint32_t)action > RISK_HISTORY_POLICY_REMOVE)
        return risk_err(RISK_EINVAL, "action: value %u out of range", (unsigned)action);
    if ((rc = check_opt_id("user_id", user_id)) != RISK_OK ||
        (rc = check_opt_id("event_id", event_id)) != RISK_OK ||
        (rc = check_opt_id("policy", policy)) != RISK_OK)
        return rc;
    risk_history *h = risk_calloc(1, sizeof *h);
    if (h == NULL)
        return risk_err(RISK_ENOMEM, "risk_history_new: out of memory");
    if (!dup_opt(&h->actor, actor) || !dup_opt(&h->user_id, user_id) ||
        !dup_opt(&h->event_id, event_id) || !dup_opt(&h->policy, policy)) {
        risk_history_free(h);
        return risk_err(RISK_ENOMEM, "risk_history_new: out of memory");
    }
    h->seq = seq;
    h->at = at;
    h->action = (uint32_t)action;
    *out = h;
    return RISK_OK;
}

int risk_history_dup(risk_history **out, const risk_history *item)
{
    if (out == NULL)
        return risk_err(RISK_EINVAL, "out: NULL");
    *out = NULL;
    if (item == NULL)
        return risk_err(RISK_EINVAL, "item: NULL");
    risk_history *h = risk_malloc(sizeof *h);
    if (h == NULL)
        return risk_err(RISK_ENOMEM, "risk_history_dup: out of memory");
    *h = *item;
    h->actor = h->user_id = h->event_id = h->policy = h->note = NULL;
    if (!dup_opt(&h->actor, item->actor) || !dup_opt(&h->user_id, item->user_id) ||
        !dup_opt(&h->event_id, item->event_id) || !dup_opt(&h->policy, item->policy) ||
        !dup_opt(&h->note, item->note)) {
        risk_history_free(h);
        return risk_err(RISK_ENOMEM, "risk_history_dup: out of memory");
    }
    *out = h;
    return RISK_OK;
}

int risk_history_set_change(risk_history *item, risk_level level_before, risk_level level_after,
                            risk_state state_before, risk_state state_after, uint32_t changed,
                            const char *note)
{
    int rc;
    if (item == NULL)
        return risk_err(RISK_EINVAL, "item: NULL");
    if ((uint32_t)level_before > RISK_LEVEL_HIGH)
        return risk_err(RISK_EINVAL, "level_before: value %u out of range", (unsigned)level_before);
    if ((uint32_t)level_after > RISK_LEVEL_HIGH)
        return risk_err(RISK_EINVAL, "level_after: value %u out of range", (unsigned)level_after);
    if ((uint32_t)state_before > RISK_STATE_CONFIRMED_COMPROMISED)
        return risk_err(RISK_EINVAL, "state_before: value %u out of range", (unsigned)state_before);
    if ((uint32_t)state_after > RISK_STATE_CONFIRMED_COMPROMISED)
        return risk_err(RISK_EINVAL, "state_after: value %u out of range", (unsigned)state_after);
    if ((rc = risk_check_note("note", note)) != RISK_OK)
        return rc;
    char *copy = NULL;
    if (note != NULL && (copy = risk_strdup(note)) == NULL)
        return risk_err(RISK_ENOMEM, "note: out of memory");
    risk_free(item->note);
    item->note = copy;
    item->level_before = (uint32_t)level_before;
    item->level_after = (uint32_t)level_after;
    item->state_before = (uint32_t)state_before;
    item->state_after = (uint32_t)state_after;
    item->changed = changed;
    return RISK_OK;
}

int risk_history_set_seq(risk_history *item, uint64_t seq)
{
    if (item == NULL)
        return risk_err(RISK_EINVAL, "item: NULL");
    item->seq = seq;
    return RISK_OK;
}

int risk_history_set_chain(risk_history *item, const uint8_t chain[32])
{
    if (item == NULL)
        return risk_err(RISK_EINVAL, "item: NULL");
    if (chain == NULL)
        return risk_err(RISK_EINVAL, "chain: NULL");
    memcpy(item->chain, chain, 32);
    return RISK_OK;
}

uint64_t risk_history_seq(const risk_history *h) { return h ? h->seq : 0; }
int64_t risk_history_at(const risk_history *h) { return h ? h->at : RISK_TIME_NONE; }
const char *risk_history_actor(const risk_history *h) { return h ? h->actor : NULL; }
risk_history_action risk_history_action_get(const risk_history *h) { return h ? (risk_history_action)h->action : RISK_HISTORY_INGEST; }
const char *risk_history_user_id(const risk_history *h) { return h ? h->user_id : NULL; }
const char *risk_history_event_id(const risk_history *h) { return h ? h->event_id : NULL; }
const char *risk_history_policy(const risk_history *h) { return h ? h->policy : NULL; }
risk_level risk_history_level_before(const risk_history *h) { return h ? (risk_level)h->level_before : RISK_LEVEL_NONE; }
risk_level risk_history_level_after(const risk_history *h) { return h ? (risk_level)h->level_after : RISK_LEVEL_NONE; }
risk_state risk_history_state_before(const risk_history *h) { return h ? (risk_state)h->state_before : RISK_STATE_NONE; }
risk_state risk_history_state_after(const risk_history *h) { return h ? (risk_state)h->state_after : RISK_STATE_NONE; }
uint32_t risk_history_changed(const risk_history *h) { return h ? h->changed : 0; }
const char *risk_history_note(const risk_history *h) { return h ? h->note : NULL; }
/* Zeros rather than NULL for a NULL item: callers memcmp the result. */
const uint8_t *risk_history_chain(const risk_history *h) { return h ? h->chain : zero_chain; }
