/* Unit tests of the event state machine, SPEC §3 (R-EV-1…6).
 * The whole table is walked: every state × reason × action, the error
 * cells, the inconsistent (state, reason) pairs and out-of-range values. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "internal.h"

#define SENTINEL_STATE ((risk_event_state)77)
#define SENTINEL_REASON ((risk_close_reason)88)

/* The allowed cells of SPEC §3, written out one by one: every other
 * consistent (state, reason, action) must be RISK_ETRANSITION. */
static const struct {
    risk_event_state s;
    risk_close_reason r;
    risk_action a;
    risk_event_state to_s;
    risk_close_reason to_r;
} allowed[] = {
    /* R-EV-2 and the closings of dismiss, remediation and aging */
    {RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_RESOLVE, RISK_EVENT_CLOSED, RISK_CLOSE_RESOLVED},
    {RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_FALSE_POSITIVE, RISK_EVENT_CLOSED, RISK_CLOSE_FALSE_POSITIVE},
    {RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_IGNORE, RISK_EVENT_CLOSED, RISK_CLOSE_IGNORED},
    {RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_DISMISS, RISK_EVENT_CLOSED, RISK_CLOSE_DISMISSED},
    {RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_REMEDIATE, RISK_EVENT_CLOSED, RISK_CLOSE_REMEDIATED},
    {RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_AGE, RISK_EVENT_CLOSED, RISK_CLOSE_AGED},
    /* R-EV-3: only the manual closings reactivate */
    {RISK_EVENT_CLOSED, RISK_CLOSE_RESOLVED, RISK_ACTION_REACTIVATE, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE},
    {RISK_EVENT_CLOSED, RISK_CLOSE_FALSE_POSITIVE, RISK_ACTION_REACTIVATE, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE},
    {RISK_EVENT_CLOSED, RISK_CLOSE_IGNORED, RISK_ACTION_REACTIVATE, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE},
};
#define N_ALLOWED (sizeof allowed / sizeof allowed[0])

static int consistent(int s, int r)
{
    return s == RISK_EVENT_ACTIVE ? r == RISK_CLOSE_NONE : r != RISK_CLOSE_NONE;
}

/* R-EV-6: the table as a pure function, every cell of it. R-EV-2, R-EV-3,
 * R-EV-4, R-EV-5 are its cells. */
Test(transition, whole_table)
{
    int seen_ok = 0, seen_err = 0, seen_inval = 0;
    for (int s = RISK_EVENT_ACTIVE; s <= RISK_EVENT_CLOSED; s++)
        for (int r = RISK_CLOSE_NONE; r <= RISK_CLOSE_AGED; r++)
            for (int a = RISK_ACTION_RESOLVE; a <= RISK_ACTION_REACTIVATE; a++) {
                risk_event_state ns = SENTINEL_STATE;
                risk_close_reason nr = SENTINEL_REASON;
                int rc = risk_transition((risk_event_state)s, (risk_close_reason)r,
                                         (risk_action)a, &ns, &nr);
                int expect = RISK_ETRANSITION;
                risk_event_state es = SENTINEL_STATE;
                risk_close_reason er = SENTINEL_REASON;
                if (!consistent(s, r)) {
                    expect = RISK_EINVAL;
                } else {
                    for (size_t k = 0; k < N_ALLOWED; k++)
                        if ((int)allowed[k].s == s && (int)allowed[k].r == r &&
                            (int)allowed[k].a == a) {
                            expect = RISK_OK;
                            es = allowed[k].to_s;
                            er = allowed[k].to_r;
                        }
                }
                cr_assert(eq(int, rc, expect), "state %d reason %d action %d", s, r, a);
                cr_assert(eq(int, (int)ns, (int)es), "state %d reason %d action %d", s, r, a);
                cr_assert(eq(int, (int)nr, (int)er), "state %d reason %d action %d", s, r, a);
                if (rc != RISK_OK)
                    cr_assert(eq(int, risk_error_last_code(), rc));
                seen_ok += rc == RISK_OK;
                seen_err += rc == RISK_ETRANSITION;
                seen_inval += rc == RISK_EINVAL;
            }
    /* 9 allowed cells; 1 + 6 consistent rows × 7 actions − 9 = 40 errors;
     * (2 × 7 − 7) inconsistent pairs × 7 actions = 49. */
    cr_assert(eq(int, seen_ok, 9));
    cr_assert(eq(int, seen_err, 40));
    cr_assert(eq(int, seen_inval, 49));
}

/* R-EV-2: each closing action records its own reason. */
Test(transition, closing_reasons_distinct)
{
    static const risk_action closing[] = {RISK_ACTION_RESOLVE, RISK_ACTION_FALSE_POSITIVE,
                                          RISK_ACTION_IGNORE, RISK_ACTION_DISMISS,
                                          RISK_ACTION_REMEDIATE, RISK_ACTION_AGE};
    int seen[8] = {0};
    for (size_t i = 0; i < sizeof closing / sizeof closing[0]; i++) {
        risk_event_state ns;
        risk_close_reason nr;
        cr_assert(eq(int, risk_transition(RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, closing[i], &ns, &nr),
                     RISK_OK));
        cr_assert(eq(int, (int)ns, RISK_EVENT_CLOSED));
        cr_assert(ne(int, (int)nr, RISK_CLOSE_NONE));
        cr_assert(eq(int, seen[nr], 0), "reason %d recorded twice", (int)nr);
        seen[nr] = 1;
        /* the internal helper the engine uses agrees with the table */
        cr_assert(eq(int, (int)risk_action_reason(closing[i]), (int)nr));
    }
    cr_assert(eq(int, (int)risk_action_reason(RISK_ACTION_REACTIVATE), RISK_CLOSE_NONE));
    cr_assert(eq(int, (int)risk_action_reason((risk_action)99), RISK_CLOSE_NONE));
}

/* R-EV-3: closed manually → reactivate → active with reason none, and the
 * event can be closed again (re-classifying is reactivate + close, R-EV-5). */
Test(transition, reactivate_then_reclassify)
{
    risk_event_state s;
    risk_close_reason r;
    cr_assert(eq(int, risk_transition(RISK_EVENT_CLOSED, RISK_CLOSE_IGNORED, RISK_ACTION_REACTIVATE,
                                      &s, &r), RISK_OK));
    cr_assert(eq(int, (int)s, RISK_EVENT_ACTIVE));
    cr_assert(eq(int, (int)r, RISK_CLOSE_NONE));
    cr_assert(eq(int, risk_transition(s, r, RISK_ACTION_FALSE_POSITIVE, &s, &r), RISK_OK));
    cr_assert(eq(int, (int)r, RISK_CLOSE_FALSE_POSITIVE));
}

/* R-EV-4: remediated, dismissed and aged events never reactivate, and the
 * message says why. */
Test(transition, final_closings_never_reactivate)
{
    static const risk_close_reason finals[] = {RISK_CLOSE_DISMISSED, RISK_CLOSE_REMEDIATED,
                                               RISK_CLOSE_AGED};
    for (size_t i = 0; i < 3; i++) {
        risk_event_state s = SENTINEL_STATE;
        risk_close_reason r = SENTINEL_REASON;
        cr_assert(eq(int, risk_transition(RISK_EVENT_CLOSED, finals[i], RISK_ACTION_REACTIVATE,
                                          &s, &r), RISK_ETRANSITION));
        cr_assert(eq(int, (int)s, (int)SENTINEL_STATE));
        cr_assert(eq(int, (int)r, (int)SENTINEL_REASON));
        cr_assert(not(eq(ptr, strstr(risk_error_last(), "reactivate"), NULL)));
    }
}

/* R-EV-5: closing a closed event and reactivating an active one fail and
 * leave the outputs untouched. */
Test(transition, closing_closed_and_reactivating_active)
{
    risk_event_state s = SENTINEL_STATE;
    risk_close_reason r = SENTINEL_REASON;
    cr_assert(eq(int, risk_transition(RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_REACTIVATE,
                                      &s, &r), RISK_ETRANSITION));
    cr_assert(eq(int, risk_transition(RISK_EVENT_CLOSED, RISK_CLOSE_RESOLVED, RISK_ACTION_RESOLVE,
                                      &s, &r), RISK_ETRANSITION));
    cr_assert(eq(int, risk_transition(RISK_EVENT_CLOSED, RISK_CLOSE_FALSE_POSITIVE,
                                      RISK_ACTION_DISMISS, &s, &r), RISK_ETRANSITION));
    cr_assert(eq(int, (int)s, (int)SENTINEL_STATE));
    cr_assert(eq(int, (int)r, (int)SENTINEL_REASON));
}

/* R-EV-1: a new event is (active, none); that pair is consistent and every
 * closing applies to it, while (active, reason≠none) and (closed, none)
 * are rejected as inconsistent. */
Test(transition, inconsistent_pairs)
{
    risk_event_state s = SENTINEL_STATE;
    risk_close_reason r = SENTINEL_REASON;
    cr_assert(eq(int, risk_transition(RISK_EVENT_ACTIVE, RISK_CLOSE_DISMISSED, RISK_ACTION_RESOLVE,
                                      &s, &r), RISK_EINVAL));
    cr_assert(not(eq(ptr, strstr(risk_error_last(), "reason"), NULL)));
    cr_assert(eq(int, risk_transition(RISK_EVENT_CLOSED, RISK_CLOSE_NONE, RISK_ACTION_REACTIVATE,
                                      &s, &r), RISK_EINVAL));
    cr_assert(not(eq(ptr, strstr(risk_error_last(), "reason"), NULL)));
    cr_assert(eq(int, (int)s, (int)SENTINEL_STATE));
    cr_assert(eq(int, (int)r, (int)SENTINEL_REASON));
}

/* R-EV-6 (and R-IV-1): out-of-range values and NULL outputs are
 * RISK_EINVAL naming the argument; outputs untouched. */
Test(transition, bad_arguments)
{
    risk_event_state s = SENTINEL_STATE;
    risk_close_reason r = SENTINEL_REASON;
    static const struct {
        int st, re, ac;
        const char *name;
    } bad[] = {
        {2, 0, 0, "state"},
        {-1, 0, 0, "state"},
        {0, 7, 0, "reason"},
        {1, -1, 6, "reason"},
        {0, 0, 7, "action"},
        {0, 0, -1, "action"},
        {1, 1, 1000, "action"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = risk_transition((risk_event_state)bad[i].st, (risk_close_reason)bad[i].re,
                                 (risk_action)bad[i].ac, &s, &r);
        cr_assert(eq(int, rc, RISK_EINVAL), "case %zu", i);
        cr_assert(eq(int, strncmp(risk_error_last(), bad[i].name, strlen(bad[i].name)), 0),
                  "case %zu: message \"%s\"", i, risk_error_last());
    }
    cr_assert(eq(int, risk_transition(RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_RESOLVE,
                                      NULL, &r), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "new_state", 9), 0));
    cr_assert(eq(int, risk_transition(RISK_EVENT_ACTIVE, RISK_CLOSE_NONE, RISK_ACTION_RESOLVE,
                                      &s, NULL), RISK_EINVAL));
    cr_assert(eq(int, strncmp(risk_error_last(), "new_reason", 10), 0));
    cr_assert(eq(int, (int)s, (int)SENTINEL_STATE));
    cr_assert(eq(int, (int)r, (int)SENTINEL_REASON));
}
