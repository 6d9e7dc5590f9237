/* Unit tests of the pure scoring, SPEC §4 (R-SC-1…4, R-SC-6…8). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/theories.h>
#include <stdio.h>
#include <string.h>

#include "alloc_fail.h"
#include "internal.h"

#define DAY RISK_DAY_MS
#define T0 INT64_C(1700000000000) /* a fixed "now"-ish time */

/* A pool of events freed after each test. */
static risk_event *pool[512];
static size_t npool;

static void fini(void)
{
    for (size_t i = 0; i < npool; i++)
        risk_event_free(pool[i]);
    npool = 0;
    alloc_fail_reset();
}

TestSuite(score, .fini = fini);

static risk_event *ev_t(const char *type, risk_level level, int64_t at)
{
    char id[32];
    risk_event *e = NULL;
    snprintf(id, sizeof id, "ev%zu", npool);
    cr_assert(eq(int, risk_event_new(&e, id, "user1", type, level, at), RISK_OK), "%s",
              risk_error_last());
    cr_assert(npool < sizeof pool / sizeof pool[0]);
    pool[npool++] = e;
    return e;
}

static risk_event *ev(risk_level level, int64_t at)
{
    return ev_t("leakedCredentials", level, at);
}

/* Close an event the way the engine would (fields only matter here). */
static void close_ev(risk_event *e, risk_close_reason reason)
{
    e->state = RISK_EVENT_CLOSED;
    e->reason = reason;
}

static risk_score_result score_of(const risk_scoring *s, risk_event **evs, size_t n, int64_t now)
{
    risk_score_result r;
    memset(&r, 0xA5, sizeof r);
    cr_assert(eq(int, risk_score(&r, s, (const risk_event *const *)evs, n, now), RISK_OK), "%s",
              risk_error_last());
    return r;
}

/* ---- R-SC-3 defaults ---- */

/* R-SC-3: one high → high, three medium → high, three low → medium, one
 * low → low, with the default weights 1/3/9 and thresholds 1/3/9. */
Test(score, defaults_table)
{
    static const struct {
        int low, medium, high;
        uint32_t level;
        uint64_t score;
    } cases[] = {
        {0, 0, 0, RISK_LEVEL_NONE, 0},   {1, 0, 0, RISK_LEVEL_LOW, 1},
        {2, 0, 0, RISK_LEVEL_LOW, 2},    {3, 0, 0, RISK_LEVEL_MEDIUM, 3},
        {0, 1, 0, RISK_LEVEL_MEDIUM, 3}, {0, 2, 0, RISK_LEVEL_MEDIUM, 6},
        {0, 3, 0, RISK_LEVEL_HIGH, 9},   {0, 0, 1, RISK_LEVEL_HIGH, 9},
        {8, 0, 0, RISK_LEVEL_MEDIUM, 8}, {9, 0, 0, RISK_LEVEL_HIGH, 9},
        {2, 2, 0, RISK_LEVEL_MEDIUM, 8}, {0, 2, 1, RISK_LEVEL_HIGH, 15},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        risk_event *evs[16];
        size_t n = 0;
        for (int i = 0; i < cases[c].low; i++)
            evs[n++] = ev(RISK_LEVEL_LOW, T0);
        for (int i = 0; i < cases[c].medium; i++)
            evs[n++] = ev(RISK_LEVEL_MEDIUM, T0);
        for (int i = 0; i < cases[c].high; i++)
            evs[n++] = ev(RISK_LEVEL_HIGH, T0);
        risk_score_result r = score_of(NULL, evs, n, T0 + 1);
        cr_assert(eq(u32, r.level, cases[c].level), "case %zu", c);
        cr_assert(eq(u64, r.score, cases[c].score), "case %zu", c);
        cr_assert(eq(u32, r.counted, (uint32_t)n), "case %zu", c);
        cr_assert(eq(u32, r.version, 1));
        cr_assert(eq(u32, r.reserved, 0));
    }
}

/* R-SC-3: nothing counts → none, score 0, no risk_since, no next change. */
Test(score, empty)
{
    risk_score_result r = score_of(NULL, NULL, 0, T0);
    cr_assert(eq(u32, r.level, RISK_LEVEL_NONE));
    cr_assert(eq(u64, r.score, 0));
    cr_assert(eq(u32, r.counted, 0));
    cr_assert(eq(i64, r.risk_since, RISK_TIME_NONE));
    cr_assert(eq(i64, r.next_change_at, RISK_TIME_NONE));
}

/* ---- R-SC-4 floor ---- */

/* R-SC-4: with weights 1,1,1 and thresholds 5,10,20 a single high event
 * still makes the user high, a single medium medium, a single low low. */
Test(score, floor_custom_weights)
{
    risk_scoring s = RISK_SCORING_INIT;
    s.weight_low = s.weight_medium = s.weight_high = 1;
    s.threshold_low = 5;
    s.threshold_medium = 10;
    s.threshold_high = 20;
    static const risk_level lv[] = {RISK_LEVEL_LOW, RISK_LEVEL_MEDIUM, RISK_LEVEL_HIGH};
    for (size_t i = 0; i < 3; i++) {
        risk_event *e = ev(lv[i], T0);
        risk_score_result r = score_of(&s, &e, 1, T0);
        cr_assert(eq(u32, r.level, (uint32_t)lv[i]));
        cr_assert(eq(u64, r.score, 1));
    }
    /* the score still raises the level above the floor: 10 lows → medium */
    risk_event *evs[10];
    for (int i = 0; i < 10; i++)
        evs[i] = ev(RISK_LEVEL_LOW, T0);
    cr_assert(eq(u32, score_of(&s, evs, 10, T0).level, RISK_LEVEL_MEDIUM));
}

/* R-SC-4, R-SC-3: a level whose weight is 0 still counts and floors the
 * level, although it adds nothing to the score. */
Test(score, zero_weight_still_floors)
{
    risk_scoring s = RISK_SCORING_INIT;
    s.weight_low = 0;
    risk_event *e = ev(RISK_LEVEL_LOW, T0);
    risk_score_result r = score_of(&s, &e, 1, T0);
    cr_assert(eq(u32, r.level, RISK_LEVEL_LOW));
    cr_assert(eq(u64, r.score, 0));
    cr_assert(eq(u32, r.counted, 1));
}

/* ---- R-SC-3/R-SC-4 monotonic: a theory over scoring shapes ---- */

static uint32_t lcg(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 8;
}

TheoryDataPoints(score, adding_never_lowers) = {
    DataPoints(int, RISK_LEVEL_LOW, RISK_LEVEL_MEDIUM, RISK_LEVEL_HIGH),
    DataPoints(unsigned, 1u, 7u, 42u, 1234u),
    DataPoints(int, 0, 1), /* 0 defaults, 1 random valid parameters */
};

/* R-SC-3, R-SC-4: adding an active event never lowers the level (nor the
 * score), whatever the other events and (valid) parameters. */
Theory((int added, unsigned seed, int custom), score, adding_never_lowers)
{
    uint32_t x = seed;
    risk_scoring s = RISK_SCORING_INIT;
    if (custom) {
        s.weight_low = lcg(&x) % 5;
        s.weight_medium = lcg(&x) % 5;
        s.weight_high = 1 + lcg(&x) % 9;
        s.threshold_low = 1 + lcg(&x) % 4;
        s.threshold_medium = s.threshold_low + lcg(&x) % 6;
        s.threshold_high = s.threshold_medium + lcg(&x) % 10;
        s.aging_medium_ms = (int64_t)(lcg(&x) % 3) * DAY;
    }
    cr_assume(risk_scoring_check(&s) == RISK_OK);
    for (int trial = 0; trial < 40; trial++) {
        risk_event *evs[12];
        size_t n = lcg(&x) % 11;
        for (size_t i = 0; i < n; i++) {
            evs[i] = ev((risk_level)(1 + lcg(&x) % 3), T0 - (int64_t)(lcg(&x) % 400) * DAY);
            if (lcg(&x) % 4 == 0)
                close_ev(evs[i], RISK_CLOSE_RESOLVED);
        }
        risk_score_result before = score_of(&s, evs, n, T0);
        evs[n] = ev((risk_level)added, T0);
        risk_score_result after = score_of(&s, evs, n + 1, T0);
        cr_assert(ge(u32, after.level, before.level), "trial %d", trial);
        cr_assert(ge(u32, after.level, (uint32_t)added), "trial %d", trial);
        cr_assert(ge(u64, after.score, before.score), "trial %d", trial);
        cr_assert(eq(u32, after.counted, before.counted + 1), "trial %d", trial);
        for (size_t i = 0; i <= n; i++)
            risk_event_free(evs[i]);
        npool -= n + 1;
    }
}

/* ---- R-SC-2 aging ---- */

/* R-SC-2: a low event counts until 1 ms before detected_at + 180 days and
 * is aged exactly at it (≤ now). */
Test(score, aging_boundary)
{
    int64_t p = 180 * DAY;
    risk_event *e = ev(RISK_LEVEL_LOW, T0);
    cr_assert(eq(i64, risk_scoring_aging_for(NULL, e), p));

    risk_score_result r = score_of(NULL, &e, 1, T0 + p - 1);
    cr_assert(eq(u32, r.level, RISK_LEVEL_LOW));
    cr_assert(eq(u32, r.counted, 1));
    cr_assert(eq(i64, r.next_change_at, T0 + p));
    cr_assert(eq(i64, r.risk_since, T0));

    r = score_of(NULL, &e, 1, T0 + p);
    cr_assert(eq(u32, r.level, RISK_LEVEL_NONE));
    cr_assert(eq(u32, r.counted, 0));
    cr_assert(eq(i64, r.next_change_at, RISK_TIME_NONE));
    cr_assert(eq(i64, r.risk_since, RISK_TIME_NONE));
}

/* R-SC-2: medium and high never age by default. */
Test(score, medium_high_never_age_by_default)
{
    risk_event *evs[2] = {ev(RISK_LEVEL_MEDIUM, 0), ev(RISK_LEVEL_HIGH, 0)};
    cr_assert(eq(i64, risk_scoring_aging_for(NULL, evs[0]), 0));
    cr_assert(eq(i64, risk_scoring_aging_for(NULL, evs[1]), 0));
    risk_score_result r = score_of(NULL, evs, 2, RISK_TIME_MAX - 1);
    cr_assert(eq(u32, r.level, RISK_LEVEL_HIGH));
    cr_assert(eq(u32, r.counted, 2));
    cr_assert(eq(i64, r.next_change_at, RISK_TIME_NONE));
}

/* R-SC-2, R-SC-7: a period of 0 means never; other periods are honoured. */
Test(score, zero_means_never)
{
    risk_scoring s = RISK_SCORING_INIT;
    s.aging_low_ms = 0;
    s.aging_high_ms = 10 * DAY;
    risk_event *lo = ev(RISK_LEVEL_LOW, 0), *hi = ev(RISK_LEVEL_HIGH, T0);
    cr_assert(eq(u32, score_of(&s, &lo, 1, RISK_TIME_MAX - 1).level, RISK_LEVEL_LOW));
    cr_assert(eq(i64, score_of(&s, &lo, 1, T0).next_change_at, RISK_TIME_NONE));
    cr_assert(eq(u32, score_of(&s, &hi, 1, T0 + 10 * DAY - 1).level, RISK_LEVEL_HIGH));
    cr_assert(eq(u32, score_of(&s, &hi, 1, T0 + 10 * DAY).level, RISK_LEVEL_NONE));
}

/* R-SC-2: closed events never count, whatever their reason and level. */
Test(score, closed_never_count)
{
    for (int reason = RISK_CLOSE_RESOLVED; reason <= RISK_CLOSE_AGED; reason++) {
        risk_event *evs[2] = {ev(RISK_LEVEL_HIGH, T0), ev(RISK_LEVEL_LOW, T0 + 5)};
        close_ev(evs[0], (risk_close_reason)reason);
        risk_score_result r = score_of(NULL, evs, 2, T0 + 10);
        cr_assert(eq(u32, r.level, RISK_LEVEL_LOW), "reason %d", reason);
        cr_assert(eq(u64, r.score, 1));
        cr_assert(eq(u32, r.counted, 1));
        cr_assert(eq(i64, r.risk_since, T0 + 5), "a closed event is not the risk's start");
    }
}

/* R-SC-6: an event the catch-up closed as aged still shows as aged out in
 * the explanation; no other closing does. */
Test(score, explain_closed_as_aged)
{
    for (int reason = RISK_CLOSE_RESOLVED; reason <= RISK_CLOSE_AGED; reason++) {
        risk_event *e = ev(RISK_LEVEL_LOW, T0);
        close_ev(e, (risk_close_reason)reason);
        risk_explanation *ex = NULL;
        cr_assert(eq(int, risk_explain(&ex, NULL, (const risk_event *const *)&e, 1, T0 + DAY),
                     RISK_OK));
        cr_assert(eq(int, risk_explanation_aged(ex, 0), reason == RISK_CLOSE_AGED),
                  "reason %d", reason);
        cr_assert(eq(int, risk_explanation_counted(ex, 0), 0));
        risk_explanation_free(ex); /* e: the pool frees it */
    }
}

/* R-SC-2, R-PO-11: risk_since is the earliest counted detection;
 * next_change_at the earliest aging among counted events. */
Test(score, risk_since_and_next_change)
{
    int64_t p = 180 * DAY;
    risk_event *evs[4] = {ev(RISK_LEVEL_LOW, T0 + 1000), ev(RISK_LEVEL_LOW, T0 + 500),
                          ev(RISK_LEVEL_MEDIUM, T0 + 200), ev(RISK_LEVEL_LOW, T0 + 100)};
    close_ev(evs[3], RISK_CLOSE_RESOLVED); /* closed: ignored by both */
    risk_score_result r = score_of(NULL, evs, 4, T0 + 2000);
    cr_assert(eq(i64, r.risk_since, T0 + 200));
    cr_assert(eq(i64, r.next_change_at, T0 + 500 + p));
    cr_assert(eq(u32, r.level, RISK_LEVEL_MEDIUM)); /* 1 + 1 + 3 = 5 */
    cr_assert(eq(u64, r.score, 5));

    /* at the first aging the next one moves on and the score drops */
    r = score_of(NULL, evs, 4, T0 + 500 + p);
    cr_assert(eq(i64, r.next_change_at, T0 + 1000 + p));
    cr_assert(eq(u64, r.score, 4));
    cr_assert(eq(i64, r.risk_since, T0 + 200));

    /* after both lows aged only the medium is left: no next change */
    r = score_of(NULL, evs, 4, T0 + 1000 + p);
    cr_assert(eq(i64, r.next_change_at, RISK_TIME_NONE));
    cr_assert(eq(u32, r.counted, 1));
    cr_assert(eq(u32, r.level, RISK_LEVEL_MEDIUM));
}

/* R-SC-2: detected_at + period beyond INT64 saturates instead of
 * overflowing; such an event never changes the level by aging. */
Test(score, aging_overflow_saturates)
{
    risk_scoring s = RISK_SCORING_INIT;
    s.aging_low_ms = INT64_MAX;
    risk_event *e = ev(RISK_LEVEL_LOW, RISK_TIME_MAX - 1);
    risk_score_result r = score_of(&s, &e, 1, RISK_TIME_MAX - 1);
    cr_assert(eq(u32, r.level, RISK_LEVEL_LOW));
    cr_assert(eq(i64, r.next_change_at, RISK_TIME_NONE));
    risk_explanation *ex = NULL;
    cr_assert(eq(int, risk_explain(&ex, &s, (const risk_event *const *)&e, 1, RISK_TIME_MAX - 1),
                 RISK_OK));
    /* the header: "ms, or RISK_TIME_NONE if it never ages" (it said
     * INT64_MAX, outside every valid time) */
    cr_assert(eq(i64, risk_explanation_ages_at(ex, 0), RISK_TIME_NONE));
    cr_assert(eq(int, risk_explanation_aged(ex, 0), 0));
    risk_explanation_free(ex);
    /* the last valid time ages; 2^53 itself is never */
    s.aging_low_ms = 10;
    risk_event *two[2] = { ev(RISK_LEVEL_LOW, RISK_TIME_MAX - 11),
                           ev(RISK_LEVEL_LOW, RISK_TIME_MAX - 10) };
    cr_assert(eq(int, risk_explain(&ex, &s, (const risk_event *const *)two, 2, 0), RISK_OK));
    cr_assert(eq(i64, risk_explanation_ages_at(ex, 0), RISK_TIME_MAX - 1));
    cr_assert(eq(i64, risk_explanation_ages_at(ex, 1), RISK_TIME_NONE));
    risk_explanation_free(ex);
}

/* ---- R-SC-1 purity ---- */

/* R-SC-1: same inputs, same output, bit for bit, and the order of the
 * events does not matter. */
Test(score, same_inputs_same_output)
{
    risk_event *evs[5] = {ev(RISK_LEVEL_LOW, T0), ev(RISK_LEVEL_MEDIUM, T0 + 7),
                          ev(RISK_LEVEL_LOW, T0 - 200 * DAY), ev(RISK_LEVEL_LOW, T0 - 3),
                          ev(RISK_LEVEL_HIGH, T0 + 9)};
    risk_score_result a = score_of(NULL, evs, 5, T0 + 50);
    risk_score_result b = score_of(NULL, evs, 5, T0 + 50);
    cr_assert(eq(int, memcmp(&a, &b, sizeof a), 0));
    risk_event *rev[5] = {evs[4], evs[3], evs[2], evs[1], evs[0]};
    risk_score_result c = score_of(NULL, rev, 5, T0 + 50);
    cr_assert(eq(int, memcmp(&a, &c, sizeof a), 0));
    cr_assert(eq(u64, a.score, 1 + 3 + 1 + 9)); /* one low aged out */
    cr_assert(eq(u32, a.counted, 4));
}

/* ---- R-SC-7 validation ---- */

typedef void (*mutate_fn)(risk_scoring *s);
static risk_type_aging good_types[2] = {{"unfamiliarFeatures", 30 * DAY}, {"anonymizedIPAddress", 0}};
static risk_type_aging bad_type[1] = {{"bad type", DAY}};
static risk_type_aging empty_type[1] = {{"", DAY}};
static risk_type_aging null_type[1] = {{NULL, DAY}};
static risk_type_aging neg_type[2] = {{"a", DAY}, {"b", -1}};
static risk_type_aging dup_type[3] = {{"x", DAY}, {"y", DAY}, {"x", 2 * DAY}};

static void m_version0(risk_scoring *s) { s->version = 0; }
static void m_version2(risk_scoring *s) { s->version = RISK_SCORING_VERSION + 1; }
static void m_thr_low0(risk_scoring *s) { s->threshold_low = 0; }
static void m_thr_med(risk_scoring *s) { s->threshold_medium = 0; }
static void m_thr_high(risk_scoring *s) { s->threshold_high = 2; }
static void m_weights0(risk_scoring *s) { s->weight_low = s->weight_medium = s->weight_high = 0; }
static void m_age_low(risk_scoring *s) { s->aging_low_ms = -1; }
static void m_age_med(risk_scoring *s) { s->aging_medium_ms = -DAY; }
static void m_age_high(risk_scoring *s) { s->aging_high_ms = INT64_MIN; }
static void m_count(risk_scoring *s) { s->type_aging = good_types; s->type_aging_count = 1025; }
static void m_nullptr(risk_scoring *s) { s->type_aging = NULL; s->type_aging_count = 1; }
static void m_badtype(risk_scoring *s) { s->type_aging = bad_type; s->type_aging_count = 1; }
static void m_emptytype(risk_scoring *s) { s->type_aging = empty_type; s->type_aging_count = 1; }
static void m_nulltype(risk_scoring *s) { s->type_aging = null_type; s->type_aging_count = 1; }
static void m_negtype(risk_scoring *s) { s->type_aging = neg_type; s->type_aging_count = 2; }
static void m_duptype(risk_scoring *s) { s->type_aging = dup_type; s->type_aging_count = 3; }

/* R-SC-7, R-SC-8: each invalid parameter is RISK_EINVAL naming the field,
 * from risk_scoring_check, risk_score and risk_explain alike; the output
 * is left untouched. */
Test(score, invalid_parameters_rejected)
{
    static const struct {
        mutate_fn fn;
        const char *field;
    } cases[] = {
        {m_version0, "scoring.version"},
        {m_version2, "scoring.version"},
        {m_thr_low0, "scoring.threshold_low"},
        {m_thr_med, "scoring.threshold_medium"},
        {m_thr_high, "scoring.threshold_high"},
        {m_weights0, "scoring.weight"},
        {m_age_low, "scoring.aging_low_ms"},
        {m_age_med, "scoring.aging_medium_ms"},
        {m_age_high, "scoring.aging_high_ms"},
        {m_count, "scoring.type_aging_count"},
        {m_nullptr, "scoring.type_aging"},
        {m_badtype, "scoring.type_aging[0].type"},
        {m_emptytype, "scoring.type_aging[0].type"},
        {m_nulltype, "scoring.type_aging[0].type"},
        {m_negtype, "scoring.type_aging[1].aging_ms"},
        {m_duptype, "scoring.type_aging"},
    };
    risk_event *e = ev(RISK_LEVEL_HIGH, T0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        risk_scoring s = RISK_SCORING_INIT;
        cases[c].fn(&s);
        cr_assert(eq(int, risk_scoring_check(&s), RISK_EINVAL), "case %zu", c);
        cr_assert(eq(int, strncmp(risk_error_last(), cases[c].field, strlen(cases[c].field)), 0),
                  "case %zu: \"%s\"", c, risk_error_last());
        risk_score_result r, before;
        memset(&r, 0x5A, sizeof r);
        before = r;
        cr_assert(eq(int, risk_score(&r, &s, (const risk_event *const *)&e, 1, T0), RISK_EINVAL));
        cr_assert(eq(int, memcmp(&r, &before, sizeof r), 0), "case %zu: out changed", c);
        risk_explanation *ex = (risk_explanation *)&r;
        cr_assert(eq(int, risk_explain(&ex, &s, (const risk_event *const *)&e, 1, T0), RISK_EINVAL));
        /* a new object's out is NULL after a failure (librisk.h, group errors) */
        cr_assert(eq(ptr, ex, NULL), "case %zu: explanation out not NULL", c);
    }
}

/* Field by field: the struct has trailing padding. */
static int scoring_eq(const risk_scoring *a, const risk_scoring *b)
{
    return a->version == b->version && a->weight_low == b->weight_low &&
           a->weight_medium == b->weight_medium && a->weight_high == b->weight_high &&
           a->threshold_low == b->threshold_low && a->threshold_medium == b->threshold_medium &&
           a->threshold_high == b->threshold_high && a->aging_low_ms == b->aging_low_ms &&
           a->aging_medium_ms == b->aging_medium_ms && a->aging_high_ms == b->aging_high_ms &&
           a->type_aging == b->type_aging && a->type_aging_count == b->type_aging_count;
}

/* R-SC-7: the boundaries that are valid stay valid: equal thresholds, a
 * single non-zero weight, 1024 distinct type overrides; the defaults too. */
Test(score, valid_parameter_edges)
{
    risk_scoring s;
    cr_assert(eq(int, risk_scoring_init(&s), RISK_OK));
    risk_scoring d = RISK_SCORING_INIT;
    cr_assert(scoring_eq(&s, &d));
    cr_assert(scoring_eq(&s, &risk_scoring_default));
    cr_assert(eq(u32, s.weight_high, 9)); /* the SPEC's defaults, not just self-consistent */
    cr_assert(eq(u64, s.threshold_medium, 3));
    cr_assert(eq(i64, s.aging_low_ms, 180 * DAY));
    cr_assert(eq(int, risk_scoring_check(&s), RISK_OK));
    cr_assert(eq(int, risk_scoring_init(NULL), RISK_EINVAL));
    cr_assert(eq(int, risk_scoring_check(NULL), RISK_EINVAL));

    s.threshold_low = s.threshold_medium = s.threshold_high = 4;
    s.weight_low = s.weight_medium = 0;
    cr_assert(eq(int, risk_scoring_check(&s), RISK_OK));

    static risk_type_aging many[1024];
    static char names[1024][16];
    for (int i = 0; i < 1024; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        many[i].type = names[i];
        many[i].aging_ms = i;
    }
    s.type_aging = many;
    s.type_aging_count = 1024;
    cr_assert(eq(int, risk_scoring_check(&s), RISK_OK), "%s", risk_error_last());
    s.type_aging = NULL;
    s.type_aging_count = 0;
    cr_assert(eq(int, risk_scoring_check(&s), RISK_OK));
}

/* R-IV-1 (for R-SC-1's function): bad arguments of risk_score and
 * risk_explain are RISK_EINVAL naming the argument. */
Test(score, bad_arguments)
{
    risk_score_result r;
    risk_event *e = ev(RISK_LEVEL_LOW, T0);
    risk_event *arr[2] = {e, NULL};
    const risk_event *const *evs = (const risk_event *const *)arr;
    cr_assert(eq(int, risk_score(NULL, NULL, evs, 1, T0), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "out", 3), 0));
    cr_assert(eq(int, risk_score(&r, NULL, NULL, 1, T0), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "events", 6), 0));
    cr_assert(eq(int, risk_score(&r, NULL, evs, 2, T0), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "events[1]", 9), 0));
    cr_assert(eq(int, risk_score(&r, NULL, evs, 1, -5), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "now", 3), 0));
    cr_assert(eq(int, risk_score(&r, NULL, evs, 1, RISK_TIME_MAX), RISK_EINVAL));
    e->level = RISK_LEVEL_NONE;
    cr_assert(eq(int, risk_score(&r, NULL, evs, 1, T0), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "events[0].level", 15), 0));
    e->level = RISK_LEVEL_LOW;
    risk_explanation *ex = NULL;
    cr_assert(eq(int, risk_explain(NULL, NULL, evs, 1, T0), RISK_EINVAL));
    cr_assert(eq(int, risk_explain(&ex, NULL, evs, 2, T0), RISK_EINVAL));
    cr_assert(eq(ptr, ex, NULL));
    cr_assert(eq(int, risk_explain(&ex, NULL, NULL, 0, T0), RISK_OK));
    cr_assert(eq(sz, risk_explanation_count(ex), 0));
    risk_explanation_free(ex);
    risk_explanation_free(NULL);
}

/* ---- R-SC-8 per-type aging ---- */

/* R-SC-8: a per-type period overrides the per-level one, both ways: a
 * medium `unfamiliarFeatures` ages at 30 days, a low `anonymizedIPAddress`
 * with 0 never ages; other types keep the level's period. */
Test(score, type_override_in_scoring)
{
    risk_scoring s = RISK_SCORING_INIT;
    s.type_aging = good_types;
    s.type_aging_count = 2;
    risk_event *unf = ev_t("unfamiliarFeatures", RISK_LEVEL_MEDIUM, T0);
    risk_event *anon = ev_t("anonymizedIPAddress", RISK_LEVEL_LOW, T0);
    risk_event *other = ev_t("leakedCredentials", RISK_LEVEL_LOW, T0);
    cr_assert(eq(i64, risk_scoring_aging_for(&s, unf), 30 * DAY));
    cr_assert(eq(i64, risk_scoring_aging_for(NULL, unf), 0));
    cr_assert(eq(i64, risk_scoring_aging_for(&s, anon), 0));
    cr_assert(eq(i64, risk_scoring_aging_for(&s, other), 180 * DAY));
    cr_assert(eq(i64, risk_scoring_aging_for(&s, NULL), 0));

    risk_event *evs[3] = {unf, anon, other};
    risk_score_result r = score_of(&s, evs, 3, T0 + 30 * DAY - 1);
    cr_assert(eq(u64, r.score, 5));
    cr_assert(eq(i64, r.next_change_at, T0 + 30 * DAY));
    r = score_of(&s, evs, 3, T0 + 30 * DAY);
    cr_assert(eq(u64, r.score, 2));
    cr_assert(eq(u32, r.level, RISK_LEVEL_LOW));
    cr_assert(eq(i64, r.next_change_at, T0 + 180 * DAY));
    r = score_of(&s, evs, 3, T0 + 400 * DAY);
    cr_assert(eq(u64, r.score, 1)); /* the override of 0 keeps anon forever */
    cr_assert(eq(i64, r.next_change_at, RISK_TIME_NONE));
}

/* R-EV-8, R-SC-5: the engine's confirm-compromised event (reserved id
 * prefix `librisk:`) never ages, even when high events or its type have an
 * aging period. */
Test(score, reserved_event_never_ages)
{
    static risk_type_aging t[1] = {{"adminConfirmedUserCompromised", DAY}};
    risk_scoring s = RISK_SCORING_INIT;
    s.aging_high_ms = DAY;
    s.type_aging = t;
    s.type_aging_count = 1;
    risk_event *e = NULL;
    cr_assert(eq(int, risk_event_new(&e, "librisk:compromised:1", "user1",
                                     "adminConfirmedUserCompromised", RISK_LEVEL_HIGH, T0),
                 RISK_OK), "%s", risk_error_last());
    pool[npool++] = e;
    cr_assert(eq(i64, risk_scoring_aging_for(&s, e), 0));
    risk_score_result r = score_of(&s, &e, 1, T0 + 1000 * DAY);
    cr_assert(eq(u32, r.level, RISK_LEVEL_HIGH));
    cr_assert(eq(i64, r.next_change_at, RISK_TIME_NONE));
    /* an ordinary high event of the same type does age */
    risk_event *o = ev_t("adminConfirmedUserCompromised", RISK_LEVEL_HIGH, T0);
    cr_assert(eq(u32, score_of(&s, &o, 1, T0 + DAY).level, RISK_LEVEL_NONE));
}

/* ---- R-SC-6 explanation ---- */

/* R-SC-6, R-SC-8: the explanation lists every event with whether it
 * counted, its contribution, whether it aged and when it ages, the period
 * and whether it is a type override; its summary equals risk_score. It
 * owns copies, so the events may be freed first. */
Test(score, explanation_contents)
{
    risk_scoring s = RISK_SCORING_INIT;
    s.type_aging = good_types;
    s.type_aging_count = 2;
    int64_t now = T0 + 200 * DAY;
    risk_event *evs[4] = {ev(RISK_LEVEL_HIGH, T0),                              /* counts 9 */
                          ev(RISK_LEVEL_LOW, T0),                               /* aged */
                          ev(RISK_LEVEL_MEDIUM, T0),                            /* closed */
                          ev_t("unfamiliarFeatures", RISK_LEVEL_MEDIUM, now - DAY)}; /* counts, ages */
    close_ev(evs[2], RISK_CLOSE_RESOLVED);
    risk_score_result r = score_of(&s, evs, 4, now);
    risk_explanation *ex = NULL;
    cr_assert(eq(int, risk_explain(&ex, &s, (const risk_event *const *)evs, 4, now), RISK_OK));
    for (size_t i = 0; i < 4; i++)
        risk_event_free(evs[i]);
    npool -= 4;

    cr_assert(eq(int, memcmp(risk_explanation_result(ex), &r, sizeof r), 0));
    cr_assert(eq(u32, r.level, RISK_LEVEL_HIGH));
    cr_assert(eq(u64, r.score, 12));
    cr_assert(eq(i64, risk_explanation_now(ex), now));
    cr_assert(eq(sz, risk_explanation_count(ex), 4));

    cr_assert(eq(str, (char *)risk_explanation_event_id(ex, 0), "ev0"));
    cr_assert(eq(str, (char *)risk_explanation_type(ex, 0), "leakedCredentials"));
    cr_assert(eq(int, (int)risk_explanation_level(ex, 0), RISK_LEVEL_HIGH));
    cr_assert(eq(int, risk_explanation_counted(ex, 0), 1));
    cr_assert(eq(u64, risk_explanation_contribution(ex, 0), 9));
    cr_assert(eq(int, risk_explanation_aged(ex, 0), 0));
    cr_assert(eq(i64, risk_explanation_ages_at(ex, 0), RISK_TIME_NONE));
    cr_assert(eq(i64, risk_explanation_aging_ms(ex, 0), 0));
    cr_assert(eq(int, risk_explanation_type_override(ex, 0), 0));
    cr_assert(eq(int, (int)risk_explanation_state(ex, 0), RISK_EVENT_ACTIVE));

    cr_assert(eq(int, risk_explanation_counted(ex, 1), 0));
    cr_assert(eq(u64, risk_explanation_contribution(ex, 1), 0));
    cr_assert(eq(int, risk_explanation_aged(ex, 1), 1));
    cr_assert(eq(i64, risk_explanation_ages_at(ex, 1), T0 + 180 * DAY));
    cr_assert(eq(i64, risk_explanation_aging_ms(ex, 1), 180 * DAY));

    cr_assert(eq(int, (int)risk_explanation_state(ex, 2), RISK_EVENT_CLOSED));
    cr_assert(eq(int, risk_explanation_counted(ex, 2), 0));
    cr_assert(eq(int, risk_explanation_aged(ex, 2), 0));
    cr_assert(eq(u64, risk_explanation_contribution(ex, 2), 0));

    cr_assert(eq(str, (char *)risk_explanation_type(ex, 3), "unfamiliarFeatures"));
    cr_assert(eq(int, risk_explanation_counted(ex, 3), 1));
    cr_assert(eq(u64, risk_explanation_contribution(ex, 3), 3));
    cr_assert(eq(int, risk_explanation_type_override(ex, 3), 1));
    cr_assert(eq(i64, risk_explanation_aging_ms(ex, 3), 30 * DAY));
    cr_assert(eq(i64, risk_explanation_ages_at(ex, 3), now - DAY + 30 * DAY));
    cr_assert(eq(i64, r.next_change_at, now - DAY + 30 * DAY));

    /* out of range and NULL are harmless */
    cr_assert(eq(ptr, (void *)risk_explanation_event_id(ex, 4), NULL));
    cr_assert(eq(ptr, (void *)risk_explanation_type(ex, 99), NULL));
    cr_assert(eq(int, risk_explanation_counted(ex, 4), 0));
    cr_assert(eq(i64, risk_explanation_ages_at(ex, 4), RISK_TIME_NONE));
    cr_assert(eq(ptr, (void *)risk_explanation_result(NULL), NULL));
    cr_assert(eq(sz, risk_explanation_count(NULL), 0));
    risk_explanation_free(ex);
}

/* R-SC-6, R-IV-3: an explanation that cannot be allocated is RISK_ENOMEM,
 * leaves *out alone and leaks nothing. */
Test(score, explain_out_of_memory)
{
    risk_event *evs[3] = {ev(RISK_LEVEL_HIGH, T0), ev(RISK_LEVEL_LOW, T0), ev(RISK_LEVEL_LOW, T0)};
    risk_explanation *ex = NULL;
    int rc;
    ALLOC_FAIL_SWEEP(rc, ex = NULL,
                     risk_explain(&ex, NULL, (const risk_event *const *)evs, 3, T0 + 1),
                     cr_assert(eq(ptr, ex, NULL)));
    cr_assert(eq(int, rc, RISK_OK));
    cr_assert(eq(sz, risk_explanation_count(ex), 3));
    risk_explanation_free(ex);
    alloc_fail_reset();
}
