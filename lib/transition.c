/* The event state machine of SPEC §3 as a pure function (R-EV-1…6).
 *
 * The table below IS the specification: one row per class of "from" state,
 * one column per action. Engine-only rules that need more than (state,
 * reason, action) — R-EV-7 (remediated_at) and R-EV-8 (the reserved
 * confirm-compromised event) — are checked by the engine on top of this. */
#include "internal.h"

#include <stdint.h>

/* Row classes of the table. */
enum {
    ROW_ACTIVE = 0,      /* active (reason none) */
    ROW_CLOSED_MANUAL,   /* closed/resolved, false_positive, ignored: reactivatable (R-EV-3) */
    ROW_CLOSED_FINAL,    /* closed/dismissed, remediated, aged: never again (R-EV-4) */
    ROW_COUNT
};

#define N_ACTIONS 7

/* One cell: ok 0 means RISK_ETRANSITION. */
struct cell {
    uint8_t ok;
    uint8_t state;  /* risk_event_state after */
    uint8_t reason; /* risk_close_reason after */
};

#define ERR { 0, 0, 0 }
#define TO_CLOSED(r) { 1, RISK_EVENT_CLOSED, RISK_CLOSE_##r }
#define TO_ACTIVE { 1, RISK_EVENT_ACTIVE, RISK_CLOSE_NONE }

/* SPEC §3, column order = enum risk_action:
 *          resolve             false_positive             ignore
 *          dismiss             remediate                  age          reactivate */
static const struct cell table[ROW_COUNT][N_ACTIONS] = {
    [ROW_ACTIVE] = { TO_CLOSED(RESOLVED), TO_CLOSED(FALSE_POSITIVE), TO_CLOSED(IGNORED),
                     TO_CLOSED(DISMISSED), TO_CLOSED(REMEDIATED), TO_CLOSED(AGED), ERR },
    [ROW_CLOSED_MANUAL] = { ERR, ERR, ERR, ERR, ERR, ERR, TO_ACTIVE },
    [ROW_CLOSED_FINAL] = { ERR, ERR, ERR, ERR, ERR, ERR, ERR },
};

/* Which row a closed event's reason belongs to. */
static const uint8_t closed_row[] = {
    [RISK_CLOSE_NONE] = ROW_COUNT, /* inconsistent: closed without a reason */
    [RISK_CLOSE_RESOLVED] = ROW_CLOSED_MANUAL,
    [RISK_CLOSE_FALSE_POSITIVE] = ROW_CLOSED_MANUAL,
    [RISK_CLOSE_IGNORED] = ROW_CLOSED_MANUAL,
    [RISK_CLOSE_DISMISSED] = ROW_CLOSED_FINAL,
    [RISK_CLOSE_REMEDIATED] = ROW_CLOSED_FINAL,
    [RISK_CLOSE_AGED] = ROW_CLOSED_FINAL,
};

#define N_REASONS (sizeof closed_row / sizeof closed_row[0])

static const char *const action_names[N_ACTIONS] = {
    "resolve", "false_positive", "ignore", "dismiss", "remediate", "age", "reactivate",
};

risk_close_reason risk_action_reason(risk_action action)
{
    uint32_t a = (uint32_t)action;
    if (a >= N_ACTIONS)
        return RISK_CLOSE_NONE;
    return (risk_close_reason)table[ROW_ACTIVE][a].reason; /* the active row holds each closing */
}

int risk_transition(risk_event_state state, risk_close_reason reason, risk_action action,
                    risk_event_state *new_state, risk_close_reason *new_reason)
{
    uint32_t s = (uint32_t)state, r = (uint32_t)reason, a = (uint32_t)action;
    unsigned row;

    if (!new_state)
        return risk_err(RISK_EINVAL, "new_state: NULL");
    if (!new_reason)
        return risk_err(RISK_EINVAL, "new_reason: NULL");
    if (s > RISK_EVENT_CLOSED)
        return risk_err(RISK_EINVAL, "state: %u out of range", s);
    if (r >= N_REASONS)
        return risk_err(RISK_EINVAL, "reason: %u out of range", r);
    if (a >= N_ACTIONS)
        return risk_err(RISK_EINVAL, "action: %u out of range", a);

    if (s == RISK_EVENT_ACTIVE) {
        if (r != RISK_CLOSE_NONE)
            return risk_err(RISK_EINVAL, "reason: an active event has reason none, not %u", r);
        row = ROW_ACTIVE;
    } else {
        row = closed_row[r];
        if (row == ROW_COUNT)
            return risk_err(RISK_EINVAL, "reason: a closed event needs a close reason");
    }

    const struct cell *c = &table[row][a];
    if (!c->ok)
        return risk_err(RISK_ETRANSITION, "action: %s not allowed on %s event", action_names[a],
                        row == ROW_ACTIVE          ? "an active"
                        : row == ROW_CLOSED_MANUAL ? "a manually closed"
                                                   : "a dismissed, remediated or aged");
    *new_state = (risk_event_state)c->state;
    *new_reason = (risk_close_reason)c->reason;
    return RISK_OK;
}
