/* Pure scoring of a user's events (SPEC §4: R-SC-1…4, R-SC-6…8).
 *
 * Everything here is a function of (scoring parameters, events, now): no
 * store, no clock, no hidden state (R-SC-1). The engine stores the result on
 * the user (level, score, risk_since, next_change_at) so a sign-in never
 * reads events until next_change_at has passed. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

const risk_scoring risk_scoring_default = RISK_SCORING_INIT;

#define TYPE_AGING_MAX 1024u

int risk_scoring_init(risk_scoring *scoring)
{
    if (!scoring)
        return risk_err(RISK_EINVAL, "scoring: NULL");
    *scoring = risk_scoring_default;
    return RISK_OK;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int risk_scoring_check(const risk_scoring *s)
{
    if (!s)
        return risk_err(RISK_EINVAL, "scoring: NULL");
    if (s->version != RISK_SCORING_VERSION)
        return risk_err(RISK_EINVAL, "scoring.version: %u, expected %u", s->version,
                        (unsigned)RISK_SCORING_VERSION);
    if (s->threshold_low < 1)
        return risk_err(RISK_EINVAL, "scoring.threshold_low: must be at least 1");
    if (s->threshold_medium < s->threshold_low)
        return risk_err(RISK_EINVAL, "scoring.threshold_medium: below threshold_low");
    if (s->threshold_high < s->threshold_medium)
        return risk_err(RISK_EINVAL, "scoring.threshold_high: below threshold_medium");
    if (s->weight_low == 0 && s->weight_medium == 0 && s->weight_high == 0)
        return risk_err(RISK_EINVAL, "scoring.weight_low: all weights are zero");
    if (s->aging_low_ms < 0)
        return risk_err(RISK_EINVAL, "scoring.aging_low_ms: negative");
    if (s->aging_medium_ms < 0)
        return risk_err(RISK_EINVAL, "scoring.aging_medium_ms: negative");
    if (s->aging_high_ms < 0)
        return risk_err(RISK_EINVAL, "scoring.aging_high_ms: negative");
    if (s->type_aging_count > TYPE_AGING_MAX)
        return risk_err(RISK_EINVAL, "scoring.type_aging_count: %u over %u",
                        s->type_aging_count, TYPE_AGING_MAX);
    if (s->type_aging_count > 0 && !s->type_aging)
        return risk_err(RISK_EINVAL, "scoring.type_aging: NULL with type_aging_count %u",
                        s->type_aging_count);

    /* 8 KiB of pointers on the stack: duplicates found in O(n log n)
     * without allocating (risk_score checks on every call). */
    const char *types[TYPE_AGING_MAX];
    for (uint32_t i = 0; i < s->type_aging_count; i++) {
        const risk_type_aging *t = &s->type_aging[i];
        if (risk_check_type("scoring.type_aging.type", t->type) != RISK_OK) {
            char what[48];
            snprintf(what, sizeof what, "scoring.type_aging[%u].type", i);
            return risk_check_type(what, t->type); /* same failure, indexed message */
        }
        if (t->aging_ms < 0)
            return risk_err(RISK_EINVAL, "scoring.type_aging[%u].aging_ms: negative", i);
        types[i] = t->type;
    }
    if (s->type_aging_count > 1) {
        qsort(types, s->type_aging_count, sizeof types[0], cmp_str_ptr);
        for (uint32_t i = 1; i < s->type_aging_count; i++)
            if (strcmp(types[i - 1], types[i]) == 0)
                return risk_err(RISK_EINVAL, "scoring.type_aging: duplicate type \"%s\"",
                                types[i]);
    }
    return RISK_OK;
}

/* Ids the engine reserves for its own events (SPEC §2, R-SC-5). */
#define RESERVED_PREFIX "librisk:"

/* The period for an event, and whether it came from a per-type override
 * (R-SC-8 wins over the per-level period). The engine's own events (the
 * confirm-compromised event, R-SC-5) never age (R-EV-8), whatever the
 * parameters: otherwise a high aging period would score a confirmed
 * compromise away. Defensive on unchecked input: a negative period or an
 * out-of-range level means never. */
static int64_t aging_lookup(const risk_scoring *s, const risk_event *e, int *override)
{
    *override = 0;
    if (e->id && strncmp(e->id, RESERVED_PREFIX, sizeof RESERVED_PREFIX - 1) == 0)
        return 0;
    if (s->type_aging && e->type) {
        for (uint32_t i = 0; i < s->type_aging_count && i < TYPE_AGING_MAX; i++) {
            const risk_type_aging *t = &s->type_aging[i];
            if (t->type && strcmp(t->type, e->type) == 0) {
                *override = 1;
                return t->aging_ms > 0 ? t->aging_ms : 0;
            }
        }
    }
    int64_t p;
    switch (e->level) {
    case RISK_LEVEL_LOW: p = s->aging_low_ms; break;
    case RISK_LEVEL_MEDIUM: p = s->aging_medium_ms; break;
    case RISK_LEVEL_HIGH: p = s->aging_high_ms; break;
    default: p = 0; break;
    }
    return p > 0 ? p : 0;
}

int64_t risk_scoring_aging_for(const risk_scoring *scoring, const risk_event *event)
{
    int override;
    if (!event)
        return 0;
    return aging_lookup(scoring ? scoring : &risk_scoring_default, event, &override);
}

static uint32_t weight_of(const risk_scoring *s, uint32_t level)
{
    switch (level) {
    case RISK_LEVEL_LOW: return s->weight_low;
    case RISK_LEVEL_MEDIUM: return s->weight_medium;
    case RISK_LEVEL_HIGH: return s->weight_high;
    default: return 0;
    }
}

/* detected_at + period, saturating at INT64_MAX instead of overflowing. */
static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* How one event stands at `now`. */
struct standing {
    int counted;       /* active and not past its period */
    int aged;          /* active but past its period, or closed by aging (R-SC-2) */
    int type_override; /* period from a per-type override (R-SC-8) */
    int64_t aging_ms;  /* period, 0 never */
    int64_t ages_at;   /* detected_at + period, or RISK_TIME_NONE */
};

static void stand(const risk_scoring *s, const risk_event *e, int64_t now, struct standing *st)
{
    st->aging_ms = aging_lookup(s, e, &st->type_override);
    /* a time no valid clock reaches (saturated, or ≥ 2^53) is "never" */
    st->ages_at = st->aging_ms > 0 ? sat_add(e->detected_at, st->aging_ms) : RISK_TIME_NONE;
    if (st->ages_at >= RISK_TIME_MAX)
        st->ages_at = RISK_TIME_NONE;
    int active = e->state == RISK_EVENT_ACTIVE;
    /* aged out: by now, or already closed so (R-SC-6: whether or not the
     * catch-up has written it yet, the explanation says the same) */
    st->aged = active ? st->ages_at != RISK_TIME_NONE && st->ages_at <= now
                      : e->reason == RISK_CLOSE_AGED;
    st->counted = active && !st->aged;
}

/* Validate everything risk_score and risk_explain read. */
static int check_inputs(const risk_scoring *s, const risk_event *const *events, size_t n,
                        int64_t now)
{
    if (s && risk_scoring_check(s) != RISK_OK)
        return RISK_EINVAL;
    if (n > 0 && !events)
        return risk_err(RISK_EINVAL, "events: NULL with n %zu", n);
    if (risk_check_time("now", now) != RISK_OK)
        return RISK_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const risk_event *e = events[i];
        if (!e)
            return risk_err(RISK_EINVAL, "events[%zu]: NULL", i);
        if (!e->id || !e->type)
            return risk_err(RISK_EINVAL, "events[%zu]: missing id or type", i);
        if (e->level < RISK_LEVEL_LOW || e->level > RISK_LEVEL_HIGH)
            return risk_err(RISK_EINVAL, "events[%zu].level: %u out of range", i, e->level);
        if (e->state > RISK_EVENT_CLOSED)
            return risk_err(RISK_EINVAL, "events[%zu].state: %u out of range", i, e->state);
        if (e->detected_at < 0 || e->detected_at >= RISK_TIME_MAX)
            return risk_err(RISK_EINVAL, "events[%zu].detected_at: out of range", i);
    }
    return RISK_OK;
}

/* The scoring proper, over validated input (R-SC-2…4). */
static void score_core(risk_score_result *out, const risk_scoring *s,
                       const risk_event *const *events, size_t n, int64_t now)
{
    uint64_t score = 0;
    uint32_t counted = 0, floor_level = RISK_LEVEL_NONE;
    int64_t since = RISK_TIME_NONE, next = RISK_TIME_NONE;

    for (size_t i = 0; i < n; i++) {
        const risk_event *e = events[i];
        struct standing st;
        stand(s, e, now, &st);
        if (!st.counted)
            continue;
        uint64_t w = weight_of(s, e->level);
        score = score > UINT64_MAX - w ? UINT64_MAX : score + w;
        if (counted < UINT32_MAX)
            counted++;
        if (e->level > floor_level)
            floor_level = e->level;
        if (since == RISK_TIME_NONE || e->detected_at < since)
            since = e->detected_at;
        /* (a time no valid `now` can reach is RISK_TIME_NONE: stand) */
        if (st.ages_at != RISK_TIME_NONE && (next == RISK_TIME_NONE || st.ages_at < next))
            next = st.ages_at;
    }

    uint32_t level = RISK_LEVEL_NONE;
    if (counted > 0) {
        if (score >= s->threshold_high)
            level = RISK_LEVEL_HIGH;
        else if (score >= s->threshold_medium)
            level = RISK_LEVEL_MEDIUM;
        else if (score >= s->threshold_low)
            level = RISK_LEVEL_LOW;
        if (level < floor_level) /* R-SC-4 */
            level = floor_level;
    }

    out->version = 1;
    out->level = level;
    out->score = score;
    out->counted = counted;
    out->reserved = 0;
    out->risk_since = since;
    out->next_change_at = next;
}

int risk_score(risk_score_result *out, const risk_scoring *scoring,
               const risk_event *const *events, size_t n, int64_t now)
{
    if (!out)
        return risk_err(RISK_EINVAL, "out: NULL");
    if (check_inputs(scoring, events, n, now) != RISK_OK)
        return RISK_EINVAL;
    score_core(out, scoring ? scoring : &risk_scoring_default, events, n, now);
    return RISK_OK;
}

/* ---- explanation (R-SC-6) ---- */

struct explain_item {
    const char *event_id; /* into the explanation's own block */
    const char *type;
    uint32_t level, state;
    int counted, aged, type_override;
    uint64_t contribution;
    int64_t ages_at, aging_ms;
};

/* One allocation: this header, then n items, then the strings. */
struct risk_explanation {
    risk_score_result result;
    int64_t now;
    size_t n;
    struct explain_item *items;
};

int risk_explain(risk_explanation **out, const risk_scoring *scoring,
                 const risk_event *const *events, size_t n, int64_t now)
{
    if (!out)
        return risk_err(RISK_EINVAL, "out: NULL");
    *out = NULL;
    if (check_inputs(scoring, events, n, now) != RISK_OK)
        return RISK_EINVAL;
    const risk_scoring *s = scoring ? scoring : &risk_scoring_default;

    /* Size the block, refusing any size_t overflow. */
    size_t size = sizeof(risk_explanation);
    if (n > (SIZE_MAX - size) / sizeof(struct explain_item))
        return risk_err(RISK_ENOMEM, "events: %zu are too many to explain", n);
    size += n * sizeof(struct explain_item);
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(events[i]->id) + 1, b = strlen(events[i]->type) + 1;
        if (size > SIZE_MAX - a - b)
            return risk_err(RISK_ENOMEM, "events: too large to explain");
        size += a + b;
    }
    risk_explanation *ex = risk_malloc(size);
    if (!ex)
        return risk_err(RISK_ENOMEM, "explanation: out of memory");

    ex->now = now;
    ex->n = n;
    ex->items = (struct explain_item *)(ex + 1);
    char *pool = (char *)(ex->items + n);
    score_core(&ex->result, s, events, n, now);
    for (size_t i = 0; i < n; i++) {
        const risk_event *e = events[i];
        struct explain_item *it = &ex->items[i];
        struct standing st;
        stand(s, e, now, &st);
        size_t a = strlen(e->id) + 1, b = strlen(e->type) + 1;
        memcpy(pool, e->id, a);
        it->event_id = pool;
        pool += a;
        memcpy(pool, e->type, b);
        it->type = pool;
        pool += b;
        it->level = e->level;
        it->state = e->state;
        it->counted = st.counted;
        it->aged = st.aged;
        it->type_override = st.type_override;
        it->contribution = st.counted ? weight_of(s, e->level) : 0;
        it->ages_at = st.ages_at;
        it->aging_ms = st.aging_ms;
    }
    *out = ex;
    return RISK_OK;
}

void risk_explanation_free(risk_explanation *ex)
{
    risk_free(ex);
}

/* The item, or NULL when ex is NULL or i is out of range. */
static const struct explain_item *item(const risk_explanation *ex, size_t i)
{
    return ex && i < ex->n ? &ex->items[i] : NULL;
}

const risk_score_result *risk_explanation_result(const risk_explanation *ex)
{
    return ex ? &ex->result : NULL;
}

int64_t risk_explanation_now(const risk_explanation *ex)
{
    return ex ? ex->now : RISK_TIME_NONE;
}

size_t risk_explanation_count(const risk_explanation *ex)
{
    return ex ? ex->n : 0;
}

const char *risk_explanation_event_id(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? it->event_id : NULL;
}

const char *risk_explanation_type(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? it->type : NULL;
}

risk_level risk_explanation_level(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? (risk_level)it->level : RISK_LEVEL_NONE;
}

int risk_explanation_counted(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? it->counted : 0;
}

uint64_t risk_explanation_contribution(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? it->contribution : 0;
}

int risk_explanation_aged(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? it->aged : 0;
}

int64_t risk_explanation_ages_at(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? it->ages_at : RISK_TIME_NONE;
}

int64_t risk_explanation_aging_ms(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? it->aging_ms : 0;
}

int risk_explanation_type_override(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? it->type_override : 0;
}

risk_event_state risk_explanation_state(const risk_explanation *ex, size_t i)
{
    const struct explain_item *it = item(ex, i);
    return it ? (risk_event_state)it->state : RISK_EVENT_ACTIVE;
}
