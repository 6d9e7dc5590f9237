/* Record output: JSON objects keyed by SPEC §2 field names, and aligned
 * human tables with ISO times (colour only on a terminal). */
#include "riskctl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char *ename(risk_enum_kind k, uint32_t v)
{
    const char *n = risk_enum_name(k, v);
    return n ? n : "?";
}

void json_user(jw *w, const risk_user *u)
{
    jw_obj(w);
    jw_key(w, "id"); jw_str(w, risk_user_id(u));
    jw_key(w, "mfa_registered"); jw_bool(w, risk_user_mfa_registered(u));
    jw_key(w, "mfa_registered_at"); jw_time(w, risk_user_mfa_registered_at(u));
    jw_key(w, "deleted"); jw_bool(w, risk_user_deleted(u));
    jw_key(w, "must_change_password"); jw_bool(w, risk_user_must_change_password(u));
    jw_key(w, "remediated_at"); jw_time(w, risk_user_remediated_at(u));
    jw_key(w, "reset_required"); jw_bool(w, risk_user_reset_required(u));
    jw_key(w, "risk_level"); jw_str(w, ename(RISK_ENUM_LEVEL, risk_user_risk_level(u)));
    jw_key(w, "risk_state"); jw_str(w, ename(RISK_ENUM_STATE, risk_user_risk_state(u)));
    jw_key(w, "risk_detail"); jw_str(w, ename(RISK_ENUM_DETAIL, risk_user_risk_detail(u)));
    jw_key(w, "risk_updated_at"); jw_time(w, risk_user_risk_updated_at(u));
    jw_key(w, "score"); jw_uint(w, risk_user_score(u));
    jw_key(w, "active_events"); jw_uint(w, risk_user_active_events(u));
    jw_key(w, "risk_since"); jw_time(w, risk_user_risk_since(u));
    jw_key(w, "next_change_at"); jw_time(w, risk_user_next_change_at(u));
    jw_obj_end(w);
}

void json_event(jw *w, const risk_event *e)
{
    jw_obj(w);
    jw_key(w, "id"); jw_str(w, risk_event_id(e));
    jw_key(w, "user_id"); jw_str(w, risk_event_user_id(e));
    jw_key(w, "type"); jw_str(w, risk_event_type(e));
    jw_key(w, "level"); jw_str(w, ename(RISK_ENUM_LEVEL, risk_event_level(e)));
    jw_key(w, "detected_at"); jw_time(w, risk_event_detected_at(e));
    jw_key(w, "timing"); jw_str(w, ename(RISK_ENUM_TIMING, risk_event_timing(e)));
    jw_key(w, "ip"); jw_str(w, risk_event_ip(e));
    jw_key(w, "location"); jw_str(w, risk_event_location(e));
    jw_key(w, "source"); jw_str(w, risk_event_source(e));
    jw_key(w, "state"); jw_str(w, ename(RISK_ENUM_EVENT_STATE, risk_event_state_get(e)));
    jw_key(w, "close_reason"); jw_str(w, ename(RISK_ENUM_CLOSE_REASON, risk_event_close_reason(e)));
    jw_key(w, "closed_at"); jw_time(w, risk_event_closed_at(e));
    jw_key(w, "closed_by"); jw_str(w, risk_event_closed_by(e));
    jw_key(w, "note"); jw_str(w, risk_event_note(e));
    jw_obj_end(w);
}

void json_policy(jw *w, const risk_policy *p)
{
    jw_obj(w);
    jw_key(w, "name"); jw_str(w, risk_policy_name(p));
    jw_key(w, "mode"); jw_str(w, ename(RISK_ENUM_POLICY_MODE, risk_policy_mode_get(p)));
    jw_key(w, "threshold"); jw_str(w, ename(RISK_ENUM_LEVEL, risk_policy_threshold(p)));
    jw_key(w, "control"); jw_str(w, ename(RISK_ENUM_CONTROL, risk_policy_control(p)));
    /* include: null means all users (SPEC §2), else the list. */
    jw_key(w, "include");
    if (risk_policy_includes_all(p)) {
        jw_null(w);
    } else {
        jw_arr(w);
        for (size_t i = 0; i < risk_policy_include_count(p); i++)
            jw_str(w, risk_policy_include_at(p, i));
        jw_arr_end(w);
    }
    jw_key(w, "exclude");
    jw_arr(w);
    for (size_t i = 0; i < risk_policy_exclude_count(p); i++)
        jw_str(w, risk_policy_exclude_at(p, i));
    jw_arr_end(w);
    jw_obj_end(w);
}

void json_history(jw *w, const risk_history *h)
{
    static const char hex[] = "0123456789abcdef";
    char chain[65];
    const uint8_t *ch = risk_history_chain(h);
    for (int i = 0; i < 32; i++) {
        chain[2 * i] = hex[ch ? ch[i] >> 4 : 0];
        chain[2 * i + 1] = hex[ch ? ch[i] & 15 : 0];
    }
    chain[64] = 0;
    jw_obj(w);
    jw_key(w, "seq"); jw_uint(w, risk_history_seq(h));
    jw_key(w, "at"); jw_time(w, risk_history_at(h));
    jw_key(w, "actor"); jw_str(w, risk_history_actor(h));
    jw_key(w, "action"); jw_str(w, ename(RISK_ENUM_HISTORY_ACTION, risk_history_action_get(h)));
    jw_key(w, "user_id"); jw_str(w, risk_history_user_id(h));
    jw_key(w, "event_id"); jw_str(w, risk_history_event_id(h));
    jw_key(w, "policy"); jw_str(w, risk_history_policy(h));
    jw_key(w, "level_before"); jw_str(w, ename(RISK_ENUM_LEVEL, risk_history_level_before(h)));
    jw_key(w, "level_after"); jw_str(w, ename(RISK_ENUM_LEVEL, risk_history_level_after(h)));
    jw_key(w, "state_before"); jw_str(w, ename(RISK_ENUM_STATE, risk_history_state_before(h)));
    jw_key(w, "state_after"); jw_str(w, ename(RISK_ENUM_STATE, risk_history_state_after(h)));
    jw_key(w, "changed"); jw_uint(w, risk_history_changed(h));
    jw_key(w, "note"); jw_str(w, risk_history_note(h));
    jw_key(w, "chain"); jw_str(w, chain);
    jw_obj_end(w);
}

void json_verdict(jw *w, const risk_verdict *v)
{
    jw_obj(w);
    jw_key(w, "user_id"); jw_str(w, risk_verdict_user_id(v));
    jw_key(w, "decision"); jw_str(w, ename(RISK_ENUM_DECISION, risk_verdict_decision(v)));
    jw_key(w, "reason"); jw_str(w, ename(RISK_ENUM_REASON, risk_verdict_reason(v)));
    jw_key(w, "policy"); jw_str(w, risk_verdict_policy(v));
    jw_key(w, "level"); jw_str(w, ename(RISK_ENUM_LEVEL, risk_verdict_level(v)));
    jw_key(w, "at"); jw_time(w, risk_verdict_at(v));
    jw_key(w, "report_only");
    jw_arr(w);
    for (size_t i = 0; i < risk_verdict_report_only_count(v); i++) {
        jw_obj(w);
        jw_key(w, "policy"); jw_str(w, risk_verdict_report_only_policy(v, i));
        jw_key(w, "decision");
        jw_str(w, ename(RISK_ENUM_DECISION, risk_verdict_report_only_decision(v, i)));
        jw_key(w, "reason");
        jw_str(w, ename(RISK_ENUM_REASON, risk_verdict_report_only_reason(v, i)));
        jw_obj_end(w);
    }
    jw_arr_end(w);
    if (risk_verdict_receipt(v)) {
        /* Only when asked for (signin --receipt, R-RC-1). */
        jw_key(w, "receipt"); jw_str(w, risk_verdict_receipt(v));
    }
    jw_obj_end(w);
}

/* Item i's state as of the explanation's time, as `events` shows it: an
 * event past its period is closed by aging, written or not yet. */
static const char *explained_state(const risk_explanation *ex, size_t i)
{
    return ename(RISK_ENUM_EVENT_STATE, risk_explanation_aged(ex, i)
                                            ? RISK_EVENT_CLOSED
                                            : risk_explanation_state(ex, i));
}

void json_explanation(jw *w, const char *user_id, const risk_explanation *ex)
{
    const risk_score_result *r = risk_explanation_result(ex);
    jw_obj(w);
    jw_key(w, "user_id"); jw_str(w, user_id);
    jw_key(w, "now"); jw_time(w, risk_explanation_now(ex));
    jw_key(w, "level"); jw_str(w, ename(RISK_ENUM_LEVEL, r->level));
    jw_key(w, "score"); jw_uint(w, r->score);
    jw_key(w, "counted"); jw_uint(w, r->counted);
    jw_key(w, "risk_since"); jw_time(w, r->risk_since);
    jw_key(w, "next_change_at"); jw_time(w, r->next_change_at);
    jw_key(w, "events");
    jw_arr(w);
    for (size_t i = 0; i < risk_explanation_count(ex); i++) {
        jw_obj(w);
        jw_key(w, "event_id"); jw_str(w, risk_explanation_event_id(ex, i));
        jw_key(w, "type"); jw_str(w, risk_explanation_type(ex, i));
        jw_key(w, "level"); jw_str(w, ename(RISK_ENUM_LEVEL, risk_explanation_level(ex, i)));
        jw_key(w, "state"); jw_str(w, explained_state(ex, i));
        jw_key(w, "counted"); jw_bool(w, risk_explanation_counted(ex, i));
        jw_key(w, "contribution"); jw_uint(w, risk_explanation_contribution(ex, i));
        jw_key(w, "aged"); jw_bool(w, risk_explanation_aged(ex, i));
        jw_key(w, "ages_at"); jw_time(w, risk_explanation_ages_at(ex, i));
        jw_key(w, "aging_ms"); jw_int(w, risk_explanation_aging_ms(ex, i));
        jw_key(w, "type_override"); jw_bool(w, risk_explanation_type_override(ex, i));
        jw_obj_end(w);
    }
    jw_arr_end(w);
    jw_obj_end(w);
}

/* ---- human output ---- */

const char *color_level(ctl *c, risk_level l)
{
    if (!c->color) return "";
    switch (l) {
    case RISK_LEVEL_HIGH: return "\033[1;31m";
    case RISK_LEVEL_MEDIUM: return "\033[33m";
    case RISK_LEVEL_LOW: return "\033[36m";
    default: return "\033[32m";
    }
}

const char *color_reset(ctl *c) { return c->color ? "\033[0m" : ""; }

static const char *yn(int v) { return v ? "yes" : "no"; }

void human_user(ctl *c, const risk_user *u)
{
    char t1[32], t2[32], t3[32], t4[32], t5[32];
    risk_level l = risk_user_risk_level(u);
    printf("user            %s\n", shown(risk_user_id(u)));
    printf("risk level      %s%s%s (score %" PRIu64 ", %" PRIu32 " active event%s)\n",
           color_level(c, l), ename(RISK_ENUM_LEVEL, l), color_reset(c), risk_user_score(u),
           risk_user_active_events(u), risk_user_active_events(u) == 1 ? "" : "s");
    printf("risk state      %s\n", ename(RISK_ENUM_STATE, risk_user_risk_state(u)));
    printf("risk detail     %s\n", ename(RISK_ENUM_DETAIL, risk_user_risk_detail(u)));
    printf("risk updated    %s\n", fmt_time(risk_user_risk_updated_at(u), t1));
    printf("risk since      %s\n", fmt_time(risk_user_risk_since(u), t4));
    printf("next change     %s\n", fmt_time(risk_user_next_change_at(u), t5));
    printf("mfa registered  %s", yn(risk_user_mfa_registered(u)));
    if (risk_user_mfa_registered(u))
        printf(" (at %s)", fmt_time(risk_user_mfa_registered_at(u), t2));
    printf("\n");
    printf("deleted         %s\n", yn(risk_user_deleted(u)));
    printf("must change pw  %s\n", yn(risk_user_must_change_password(u)));
    printf("reset required  %s\n", yn(risk_user_reset_required(u)));
    printf("remediated at   %s\n", fmt_time(risk_user_remediated_at(u), t3));
}

/* ---- text from the store, shown to a person ---- */

/* Bytes of a code point that must not reach a terminal as it is, at s
 * (0: none): C0 controls and DEL (a note's line break could fake a line),
 * C1 controls (U+0080-U+009F: U+009B starts an escape sequence on many
 * terminals), and the bidirectional and zero-width format characters
 * (U+061C, U+200B-U+200F, U+2028-U+202E, U+2060-U+2069, U+FEFF), which make
 * text read otherwise than it is stored. Detections carry such text from
 * outside (ids, ip, location, source, notes); the library keeps it as
 * given, and --json escapes it. */
static size_t unsafe_len(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x20 || s[0] == 0x7F) {
        *cp = s[0];
        return 1;
    }
    if (s[0] == 0xC2 && s[1] >= 0x80 && s[1] <= 0x9F) {
        *cp = s[1];
        return 2;
    }
    if (s[0] == 0xD8 && s[1] == 0x9C) {
        *cp = 0x061C;
        return 2;
    }
    if (s[0] == 0xE2 && s[1] == 0x80 && s[2] >= 0x8B && s[2] <= 0xAE) {
        uint32_t c = 0x2000 + (s[2] & 0x3F);
        if (c <= 0x200F || c >= 0x2028) { /* and U+2028-9, line breaks */
            *cp = c;
            return 3;
        }
    }
    if (s[0] == 0xE2 && s[1] == 0x81 && s[2] >= 0xA0 && s[2] <= 0xA9) {
        *cp = 0x2040 + (s[2] & 0x3F);
        return 3;
    }
    if (s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        *cp = 0xFEFF;
        return 3;
    }
    return 0;
}

/* s with every such code point written \uXXXX; NULL: out of memory. */
static char *escape_dup(const char *s)
{
    size_t n = 0, k;
    uint32_t cp;
    for (const unsigned char *p = (const unsigned char *)s; *p; p += k ? k : 1)
        n += (k = unsafe_len(p, &cp)) ? 6 : 1;
    char *d = malloc(n + 1), *w = d;
    if (!d) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p += k ? k : 1) {
        if ((k = unsafe_len(p, &cp))) {
            snprintf(w, 7, "\\u%04x", (unsigned)cp);
            w += 6;
        } else {
            *w++ = (char)*p;
        }
    }
    *w = '\0';
    return d;
}

const char *shown(const char *s)
{
    /* a ring, so that one printf can show several fields */
    static char *ring[8];
    static unsigned next;
    uint32_t cp;
    if (!s) return s;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && !unsafe_len(p, &cp)) p++;
    if (!*p) return s; /* nothing to escape: the common case */
    char *d = escape_dup(s);
    if (!d) {
        fputs("riskctl: out of memory\n", stderr);
        exit(EXIT_REFUSED);
    }
    free(ring[next % 8]);
    ring[next++ % 8] = d;
    return d;
}

void human_event(ctl *c, const risk_event *e)
{
    char t1[32], t2[32];
    risk_level l = risk_event_level(e);
    const char *s;
    printf("event           %s\n", shown(risk_event_id(e)));
    printf("user            %s\n", shown(risk_event_user_id(e)));
    printf("type            %s\n", shown(risk_event_type(e)));
    printf("level           %s%s%s\n", color_level(c, l), ename(RISK_ENUM_LEVEL, l),
           color_reset(c));
    printf("detected at     %s (%s)\n", fmt_time(risk_event_detected_at(e), t1),
           ename(RISK_ENUM_TIMING, risk_event_timing(e)));
    printf("state           %s", ename(RISK_ENUM_EVENT_STATE, risk_event_state_get(e)));
    if (risk_event_state_get(e) == RISK_EVENT_CLOSED)
        printf(" (%s at %s by %s)", ename(RISK_ENUM_CLOSE_REASON, risk_event_close_reason(e)),
               fmt_time(risk_event_closed_at(e), t2),
               risk_event_closed_by(e) ? shown(risk_event_closed_by(e)) : "-");
    printf("\n");
    if ((s = risk_event_ip(e))) printf("ip              %s\n", shown(s));
    if ((s = risk_event_location(e))) printf("location        %s\n", shown(s));
    if ((s = risk_event_source(e))) printf("source          %s\n", shown(s));
    if ((s = risk_event_note(e))) printf("note            %s\n", shown(s));
}

void human_verdict(ctl *c, const risk_verdict *v)
{
    risk_level l = risk_verdict_level(v);
    risk_decision d = risk_verdict_decision(v);
    const char *dc = "";
    if (c->color)
        dc = d == RISK_DECISION_BLOCK ? "\033[1;31m"
             : d == RISK_DECISION_ALLOW ? "\033[32m"
                                        : "\033[33m";
    printf("%s: %s%s%s (reason %s, policy %s, level %s%s%s)\n", shown(risk_verdict_user_id(v)), dc,
           ename(RISK_ENUM_DECISION, d), color_reset(c),
           ename(RISK_ENUM_REASON, risk_verdict_reason(v)),
           risk_verdict_policy(v) ? shown(risk_verdict_policy(v)) : "none", color_level(c, l),
           ename(RISK_ENUM_LEVEL, l), color_reset(c));
    for (size_t i = 0; i < risk_verdict_report_only_count(v); i++)
        printf("  report-only %s would decide %s (%s)\n",
               shown(risk_verdict_report_only_policy(v, i)),
               ename(RISK_ENUM_DECISION, risk_verdict_report_only_decision(v, i)),
               ename(RISK_ENUM_REASON, risk_verdict_report_only_reason(v, i)));
    if (risk_verdict_receipt(v)) printf("receipt:\n%s", risk_verdict_receipt(v));
}

void human_explanation(ctl *c, const char *user_id, const risk_explanation *ex)
{
    char t[32];
    const risk_score_result *r = risk_explanation_result(ex);
    printf("%s at %s: level %s%s%s, score %" PRIu64 " from %" PRIu32 " counted event%s\n",
           shown(user_id), fmt_time(risk_explanation_now(ex), t), color_level(c, r->level),
           ename(RISK_ENUM_LEVEL, r->level), color_reset(c), r->score, r->counted,
           r->counted == 1 ? "" : "s");
    if (r->next_change_at != RISK_TIME_NONE)
        printf("next change by aging at %s\n", fmt_time(r->next_change_at, t));
    size_t n = risk_explanation_count(ex);
    if (n == 0) return;
    static const char *const hd[] = {"EVENT", "TYPE", "LEVEL", "STATE", "COUNTED", "ADDS",
                                     "AGES AT"};
    table tb;
    table_init(&tb, 7, hd);
    for (size_t i = 0; i < n; i++) {
        char add[24], ages[48];
        risk_level l = risk_explanation_level(ex, i);
        snprintf(add, sizeof add, "%" PRIu64, risk_explanation_contribution(ex, i));
        fmt_time(risk_explanation_ages_at(ex, i), t);
        snprintf(ages, sizeof ages, "%s%s%s", risk_explanation_ages_at(ex, i) == RISK_TIME_NONE ? "never" : t,
                 risk_explanation_aged(ex, i) ? " (aged)" : "",
                 risk_explanation_type_override(ex, i) ? " *" : "");
        const char *row[] = {risk_explanation_event_id(ex, i), risk_explanation_type(ex, i),
                             ename(RISK_ENUM_LEVEL, l), explained_state(ex, i),
                             risk_explanation_counted(ex, i) ? "yes" : "no", add, ages};
        const char *col[] = {NULL, NULL, color_level(c, l), NULL, NULL, NULL, NULL};
        table_add(&tb, row, col);
    }
    table_print(c, &tb, stdout);
    table_free(&tb);
}

/* ---- tables ---- */

/* A table cell is one line, shown safely: what shown() escapes is
 * escaped (a note's line break would also break the alignment). */
static char *xstrdup(const char *s)
{
    char *d = escape_dup(s ? s : "");
    if (!d) {
        fputs("riskctl: out of memory\n", stderr);
        exit(EXIT_REFUSED);
    }
    return d;
}

void table_init(table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    table_add(t, headers, NULL);
}

void table_add(table *t, const char *const *row, const char *const *colors)
{
    if (t->nrows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, ncap * t->ncols * sizeof *nc);
        const char **ncol = realloc(t->colors, ncap * t->ncols * sizeof *ncol);
        if (!nc || !ncol) {
            fputs("riskctl: out of memory\n", stderr);
            exit(EXIT_REFUSED);
        }
        t->cells = nc;
        t->colors = ncol;
        t->cap = ncap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        t->cells[t->nrows * t->ncols + i] = xstrdup(row[i]);
        t->colors[t->nrows * t->ncols + i] = colors ? colors[i] : NULL;
    }
    t->nrows++;
}

/* Columns a code point takes on a terminal: 0 for combining marks and
 * zero-width characters, 2 for East Asian wide and fullwidth forms and
 * emoji, else 1 (the common ranges of Unicode's East Asian Width; no
 * locale needed, ids are UTF-8 whatever LANG says). */
static unsigned cp_width(uint32_t c)
{
    static const uint32_t zero[][2] = {
        {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},
        {0x064B, 0x065F}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x1AB0, 0x1AFF},
        {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064},
        {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}};
    static const uint32_t wide[][2] = {
        {0x1100, 0x115F}, {0x231A, 0x231B}, {0x2329, 0x232A}, {0x2E80, 0x303E},
        {0x3041, 0x33FF}, {0x3400, 0x4DBF}, {0x4E00, 0x9FFF}, {0xA000, 0xA4CF},
        {0xA960, 0xA97F}, {0xAC00, 0xD7A3}, {0xF900, 0xFAFF}, {0xFE10, 0xFE19},
        {0xFE30, 0xFE6F}, {0xFF00, 0xFF60}, {0xFFE0, 0xFFE6}, {0x1F300, 0x1F64F},
        {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD}};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (c >= zero[i][0] && c <= zero[i][1]) return 0;
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (c >= wide[i][0] && c <= wide[i][1]) return 2;
    return 1;
}

/* Display width of a UTF-8 string (valid: the library checked it). */
static size_t width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p;
        int n = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        c &= n == 0 ? 0x7F : n == 1 ? 0x1F : n == 2 ? 0x0F : 0x07;
        p++;
        for (int k = 0; k < n && (*p & 0xC0) == 0x80; k++, p++)
            c = c << 6 | (*p & 0x3F);
        w += cp_width(c);
    }
    return w;
}

void table_print(ctl *c, table *t, FILE *f)
{
    size_t *wd = calloc(t->ncols, sizeof *wd);
    if (!wd) return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            size_t w = width(t->cells[r * t->ncols + i]);
            if (w > wd[i]) wd[i] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        size_t last = t->ncols; /* no padding after the last non-empty cell */
        while (last > 1 && t->cells[r * t->ncols + last - 1][0] == '\0') last--;
        for (size_t i = 0; i < last; i++) {
            const char *s = t->cells[r * t->ncols + i];
            const char *col = t->colors[r * t->ncols + i];
            int colored = c->color && col && *col;
            if (r == 0 && c->color) fputs("\033[1m", f);
            if (colored) fputs(col, f);
            fputs(s, f);
            if (colored || (r == 0 && c->color)) fputs("\033[0m", f);
            if (i + 1 < last)
                for (size_t p = width(s); p < wd[i] + 2; p++) putc(' ', f);
        }
        putc('\n', f);
    }
    free(wd);
}

void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    free(t->colors);
    memset(t, 0, sizeof *t);
}

void table_users(ctl *c, risk_user **users, size_t n)
{
    static const char *const hd[] = {"USER", "LEVEL", "SCORE", "ACTIVE", "STATE", "DETAIL",
                                     "MFA", "FLAGS", "UPDATED"};
    table t;
    table_init(&t, 9, hd);
    for (size_t i = 0; i < n; i++) {
        const risk_user *u = users[i];
        char score[24], act[16], tm[32], flags[64];
        risk_level l = risk_user_risk_level(u);
        snprintf(score, sizeof score, "%" PRIu64, risk_user_score(u));
        snprintf(act, sizeof act, "%" PRIu32, risk_user_active_events(u));
        snprintf(flags, sizeof flags, "%s%s%s", risk_user_deleted(u) ? "deleted " : "",
                 risk_user_must_change_password(u) ? "temp-pw " : "",
                 risk_user_reset_required(u) ? "reset " : "");
        if (!flags[0]) strcpy(flags, "-");
        const char *row[] = {risk_user_id(u), ename(RISK_ENUM_LEVEL, l), score, act,
                             ename(RISK_ENUM_STATE, risk_user_risk_state(u)),
                             ename(RISK_ENUM_DETAIL, risk_user_risk_detail(u)),
                             risk_user_mfa_registered(u) ? "yes" : "no", flags,
                             fmt_time(risk_user_risk_updated_at(u), tm)};
        const char *col[] = {NULL, color_level(c, l), NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        table_add(&t, row, col);
    }
    table_print(c, &t, stdout);
    table_free(&t);
}

void table_events(ctl *c, risk_event **events, size_t n)
{
    static const char *const hd[] = {"EVENT", "TYPE", "LEVEL", "DETECTED", "STATE", "REASON",
                                     "CLOSED", "BY", "NOTE"};
    table t;
    table_init(&t, 9, hd);
    for (size_t i = 0; i < n; i++) {
        const risk_event *e = events[i];
        char t1[32], t2[32];
        risk_level l = risk_event_level(e);
        const char *row[] = {risk_event_id(e), risk_event_type(e), ename(RISK_ENUM_LEVEL, l),
                             fmt_time(risk_event_detected_at(e), t1),
                             ename(RISK_ENUM_EVENT_STATE, risk_event_state_get(e)),
                             ename(RISK_ENUM_CLOSE_REASON, risk_event_close_reason(e)),
                             fmt_time(risk_event_closed_at(e), t2),
                             risk_event_closed_by(e) ? risk_event_closed_by(e) : "-",
                             risk_event_note(e) ? risk_event_note(e) : ""};
        const char *col[] = {NULL, NULL, color_level(c, l), NULL, NULL, NULL, NULL, NULL, NULL};
        table_add(&t, row, col);
    }
    table_print(c, &t, stdout);
    table_free(&t);
}

int cell_add(char *cell, size_t cap, size_t *len, const char *sep, const char *item, size_t left)
{
    const char *s = *len ? sep : "";
    size_t ls = strlen(s), li = strlen(item);
    /* Room for this item and, after it, a tail of at most 32 bytes. */
    if (*len + ls + li + 32 >= cap) {
        snprintf(cell + *len, cap - *len, "%s… (+%zu more)", s, left);
        *len += strlen(cell + *len);
        return 0;
    }
    memcpy(cell + *len, s, ls);
    memcpy(cell + *len + ls, item, li + 1);
    *len += ls + li;
    return 1;
}

void table_policies(ctl *c, risk_policy **ps, size_t n)
{
    static const char *const hd[] = {"POLICY", "MODE", "THRESHOLD", "CONTROL", "INCLUDE",
                                     "EXCLUDE"};
    table t;
    table_init(&t, 6, hd);
    for (size_t i = 0; i < n; i++) {
        const risk_policy *p = ps[i];
        char inc[512] = "all", exc[512] = "-";
        size_t k, n_inc = risk_policy_include_count(p), n_exc = risk_policy_exclude_count(p);
        size_t li = 0, le = 0;
        if (!risk_policy_includes_all(p)) {
            inc[0] = 0;
            for (k = 0; k < n_inc; k++)
                if (!cell_add(inc, sizeof inc, &li, ",", risk_policy_include_at(p, k), n_inc - k))
                    break;
        }
        if (n_exc) {
            exc[0] = 0;
            for (k = 0; k < n_exc; k++)
                if (!cell_add(exc, sizeof exc, &le, ",", risk_policy_exclude_at(p, k), n_exc - k))
                    break;
        }
        risk_level l = risk_policy_threshold(p);
        const char *row[] = {risk_policy_name(p),
                             ename(RISK_ENUM_POLICY_MODE, risk_policy_mode_get(p)),
                             ename(RISK_ENUM_LEVEL, l),
                             ename(RISK_ENUM_CONTROL, risk_policy_control(p)), inc, exc};
        const char *col[] = {NULL, NULL, color_level(c, l), NULL, NULL, NULL};
        table_add(&t, row, col);
    }
    table_print(c, &t, stdout);
    table_free(&t);
}

void table_history(ctl *c, risk_history **hs, size_t n)
{
    static const char *const hd[] = {"SEQ", "AT", "ACTOR", "ACTION", "USER", "EVENT",
                                     "LEVEL", "STATE", "CHANGED", "NOTE"};
    table t;
    table_init(&t, 10, hd);
    for (size_t i = 0; i < n; i++) {
        const risk_history *h = hs[i];
        char seq[24], tm[32], lv[40], st[64], chg[16];
        snprintf(seq, sizeof seq, "%" PRIu64, risk_history_seq(h));
        snprintf(lv, sizeof lv, "%s>%s", ename(RISK_ENUM_LEVEL, risk_history_level_before(h)),
                 ename(RISK_ENUM_LEVEL, risk_history_level_after(h)));
        snprintf(st, sizeof st, "%s>%s", ename(RISK_ENUM_STATE, risk_history_state_before(h)),
                 ename(RISK_ENUM_STATE, risk_history_state_after(h)));
        snprintf(chg, sizeof chg, "%" PRIu32, risk_history_changed(h));
        /* a policy change has no user: its policy goes in the EVENT column,
         * marked, so that a policy named like a user never reads as one */
        const char *subject = risk_history_user_id(h);
        const char *ev = risk_history_event_id(h);
        char pol[300];
        if (!ev && !subject && risk_history_policy(h)) {
            snprintf(pol, sizeof pol, "policy %s", risk_history_policy(h));
            ev = pol;
        }
        const char *row[] = {seq, fmt_time(risk_history_at(h), tm), risk_history_actor(h),
                             ename(RISK_ENUM_HISTORY_ACTION, risk_history_action_get(h)),
                             subject ? subject : "-", ev ? ev : "-", lv, st, chg,
                             risk_history_note(h) ? risk_history_note(h) : ""};
        const char *col[] = {NULL, NULL, NULL, NULL, NULL, NULL,
                             color_level(c, risk_history_level_after(h)), NULL, NULL, NULL};
        table_add(&t, row, col);
    }
    table_print(c, &t, stdout);
    table_free(&t);
}
