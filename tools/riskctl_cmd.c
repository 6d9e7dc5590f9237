/* riskctl commands: each parses and validates its arguments first (a usage
 * error or an invalid id never opens, let alone changes, the store), then
 * opens the engine in the mode it needs, calls the library once, and
 * prints the record it changed or read. */
#include "riskctl_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- shared helpers ---- */

int vec_push(vec *v, void *item)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 32;
        void **ni = realloc(v->items, ncap * sizeof *ni);
        if (!ni) return RISK_ENOMEM;
        v->items = ni;
        v->cap = ncap;
    }
    v->items[v->n++] = item;
    return 0;
}

#define VISITOR(name, T, dup, freefn)                      \
    int name(const T *x, void *arg)                        \
    {                                                      \
        T *copy = NULL;                                    \
        int rc = dup(&copy, x);                            \
        if (rc != RISK_OK) return rc;                      \
        if (vec_push(arg, copy)) {                         \
            freefn(copy);                                  \
            return RISK_ENOMEM;                            \
        }                                                  \
        return 0;                                          \
    }
VISITOR(visit_user, risk_user, risk_user_dup, risk_user_free)
VISITOR(visit_event, risk_event, risk_event_dup, risk_event_free)
VISITOR(visit_policy, risk_policy, risk_policy_dup, risk_policy_free)
VISITOR(visit_history, risk_history, risk_history_dup, risk_history_free)

void vec_free(vec *v, void (*fn)(void *))
{
    for (size_t i = 0; i < v->n; i++) fn(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}
static void free_user(void *p) { risk_user_free(p); }
static void free_event(void *p) { risk_event_free(p); }
void free_policy(void *p) { risk_policy_free(p); }
static void free_history(void *p) { risk_history_free(p); }

/* How one kind of record is listed: its JSON writer, its table, its free. */
typedef struct listing {
    void (*json)(jw *w, const void *item);
    void (*table)(ctl *c, void **items, size_t n);
    void (*free)(void *item);
} listing;

static void json_user_v(jw *w, const void *x) { json_user(w, x); }
static void json_event_v(jw *w, const void *x) { json_event(w, x); }
static void json_policy_v(jw *w, const void *x) { json_policy(w, x); }
static void json_history_v(jw *w, const void *x) { json_history(w, x); }
static void table_users_v(ctl *c, void **v, size_t n) { table_users(c, (risk_user **)v, n); }
static void table_events_v(ctl *c, void **v, size_t n) { table_events(c, (risk_event **)v, n); }
static void table_policies_v(ctl *c, void **v, size_t n) { table_policies(c, (risk_policy **)v, n); }
static void table_history_v(ctl *c, void **v, size_t n) { table_history(c, (risk_history **)v, n); }

static const listing LIST_USERS = { json_user_v, table_users_v, free_user };
static const listing LIST_EVENTS = { json_event_v, table_events_v, free_event };
static const listing LIST_POLICIES = { json_policy_v, table_policies_v, free_policy };
static const listing LIST_HISTORY = { json_history_v, table_history_v, free_history };

/* The end of every listing command: the library's answer rc for the
 * records collected in v; a JSON array (--json), `empty` when there are
 * none, or a table. Frees v. */
static int print_listing(ctl *c, int rc, vec *v, const listing *k, const char *empty)
{
    if (rc != RISK_OK) {
        vec_free(v, k->free);
        return fail(c, rc);
    }
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_arr(&w);
        for (size_t i = 0; i < v->n; i++) k->json(&w, v->items[i]);
        jw_arr_end(&w);
        jw_end(&w);
    } else if (v->n == 0) {
        printf("%s\n", empty);
    } else {
        k->table(c, v->items, v->n);
    }
    vec_free(v, k->free);
    return EXIT_DONE;
}

/* Check the positional count; report the synopsis otherwise. */
int want_pos(ctl *c, int npos, int min, int max)
{
    if (npos < min || (max >= 0 && npos > max))
        return usage_error(c, "%s", synopsis_of(c->command_name, c->command));
    return 0;
}

/* Validate an id before opening the store (R-IV-1: nothing changes). */
int check_id(ctl *c, const char *id)
{
    int rc = risk_id_check(id);
    return rc == RISK_OK ? 0 : fail(c, rc);
}

static int print_user_now(ctl *c, const char *user_id)
{
    risk_user *u = NULL;
    int rc = risk_engine_user(&u, c->eng, user_id);
    if (rc != RISK_OK) return fail(c, rc);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        json_user(&w, u);
        jw_end(&w);
    } else {
        human_user(c, u);
    }
    risk_user_free(u);
    return EXIT_DONE;
}

static int print_event_now(ctl *c, const char *event_id)
{
    risk_event *e = NULL;
    int rc = risk_engine_event(&e, c->eng, event_id);
    if (rc != RISK_OK) return fail(c, rc);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        json_event(&w, e);
        jw_end(&w);
    } else {
        human_event(c, e);
    }
    risk_event_free(e);
    return EXIT_DONE;
}

/* ---- users ---- */

int cmd_user_set(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--mfa", 0, 0, 0}, {"--no-mfa", 0, 0, 0}, {"--deleted", 0, 0, 0},
               {"--not-deleted", 0, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if (o[0].set && o[1].set) return usage_error(c, "--mfa and --no-mfa exclude each other");
    if (o[2].set && o[3].set)
        return usage_error(c, "--deleted and --not-deleted exclude each other");
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_WRITE))) return rc;
    risk_user *u = NULL;
    rc = risk_engine_user(&u, c->eng, argv[0]);
    if (rc == RISK_ENOTFOUND) rc = risk_user_new(&u, argv[0]);
    if (rc != RISK_OK) return fail(c, rc);
    /* Registering MFA again keeps the first registration time (R-PO-11):
     * a re-registration must not look like registration during risk. */
    if (o[0].set && !risk_user_mfa_registered(u))
        rc = risk_user_set_mfa_registered(u, 1, RISK_TIME_NONE);
    if (rc == RISK_OK && o[1].set) rc = risk_user_set_mfa_registered(u, 0, RISK_TIME_NONE);
    if (rc == RISK_OK && (o[2].set || o[3].set)) rc = risk_user_set_deleted(u, o[2].set);
    if (rc == RISK_OK) rc = risk_engine_upsert_user(c->eng, c->actor, u);
    risk_user_free(u);
    if (rc != RISK_OK) return fail(c, rc);
    return print_user_now(c, argv[0]);
}

int cmd_user_show(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_READ))) return rc;
    return print_user_now(c, argv[0]);
}

int cmd_users(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--min-level", 1, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    risk_level min = RISK_LEVEL_LOW;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 0, 0))) return rc;
    if (o[0].set && parse_level(o[0].val, &min, 1))
        return usage_error(c, "--min-level: unknown level '%s' (none, low, medium, high)",
                           o[0].val);
    if ((rc = open_engine(c, OPEN_READ))) return rc;
    vec v = {0};
    rc = risk_engine_users(c->eng, min, visit_user, &v);
    char empty[640];
    snprintf(empty, sizeof empty, "no users at or above %s", ename(RISK_ENUM_LEVEL, min));
    return print_listing(c, rc, &v, &LIST_USERS, empty);
}

/* ---- events ---- */

int cmd_event_add(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--at", 1, 0, 0},       {"--offline", 0, 0, 0}, {"--ip", 1, 0, 0},
               {"--location", 1, 0, 0}, {"--source", 1, 0, 0},  {"--update", 0, 0, 0},
               {NULL, 0, 0, 0}};
    int np, rc;
    risk_level level;
    int64_t at = 0;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 4, 4))) return rc;
    if (parse_level(argv[3], &level, 0))
        return usage_error(c, "LEVEL: unknown event level '%s' (low, medium, high)", argv[3]);
    if (o[0].set && parse_time(o[0].val, &at))
        return usage_error(c, "--at: malformed TIME '%s'", o[0].val);
    /* Build and validate the whole detection before touching the store. */
    risk_event *e = NULL;
    rc = risk_event_new(&e, argv[1], argv[0], argv[2], level, at);
    if (rc == RISK_OK && o[1].set) rc = risk_event_set_timing(e, RISK_TIMING_OFFLINE);
    if (rc == RISK_OK && o[2].set) rc = risk_event_set_ip(e, o[2].val);
    if (rc == RISK_OK && o[3].set) rc = risk_event_set_location(e, o[3].val);
    if (rc == RISK_OK && o[4].set) rc = risk_event_set_source(e, o[4].val);
    if (rc != RISK_OK) {
        risk_event_free(e);
        return fail(c, rc);
    }
    if ((rc = open_engine(c, OPEN_WRITE))) {
        risk_event_free(e);
        return rc;
    }
    if (!o[0].set) {
        /* No --at: a stored event of this id keeps its detected_at, so
         * --update changes the level or details, not when the risk began
         * (R-PO-11 compares MFA registration with it), and the same
         * detection sent again is the same event (R-OP-1). A new id is
         * detected now. */
        risk_event *old = NULL;
        int64_t at_now = risk_engine_now(c->eng);
        if (risk_engine_event(&old, c->eng, argv[1]) == RISK_OK)
            at_now = risk_event_detected_at(old);
        risk_event_free(old);
        risk_event_set_detected_at(e, at_now);
    }
    rc = risk_engine_ingest(c->eng, c->actor, e, o[5].set ? RISK_INGEST_UPDATE : 0);
    risk_event_free(e);
    if (rc != RISK_OK) return fail(c, rc);
    return print_event_now(c, argv[1]);
}

int cmd_event_show(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_READ))) return rc;
    return print_event_now(c, argv[0]);
}

int cmd_events(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--active", 0, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_READ))) return rc;
    vec v = {0};
    rc = risk_engine_events(c->eng, argv[0], o[0].set ? RISK_EVENTS_ACTIVE : 0, visit_event, &v);
    char empty[640];
    snprintf(empty, sizeof empty, "no %sevents for %s", o[0].set ? "active " : "", argv[0]);
    return print_listing(c, rc, &v, &LIST_EVENTS, empty);
}

/* resolve | false-positive | ignore | reactivate (SPEC §3, §6.4). */
int cmd_close(ctl *c, int argc, char **argv)
{
    static const struct {
        const char *verb;
        int (*fn)(risk_engine *, const char *, const char *, const char *);
        const char *done;
    } verbs[] = {
        {"resolve", risk_engine_resolve, "resolved"},
        {"false-positive", risk_engine_false_positive, "marked false positive"},
        {"ignore", risk_engine_ignore, "ignored"},
        {"reactivate", risk_engine_reactivate, "reactivated"},
    };
    opt o[] = {{"--note", 1, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    size_t k = 0;
    while (k < 3 && strcmp(verbs[k].verb, c->command_name) != 0) k++;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_EXISTING))) return rc;
    /* ignore without a note is the library's refusal (R-EV-2), so the
     * message and RISK_EINVAL come from the rule's owner. */
    rc = verbs[k].fn(c->eng, c->actor, argv[0], o[0].set ? o[0].val : NULL);
    if (rc != RISK_OK) return fail(c, rc);
    if (!c->json) printf("%s %s\n", argv[0], verbs[k].done);
    return print_event_now(c, argv[0]);
}

int cmd_dismiss(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--note", 1, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 1, -1))) return rc;
    const char *note = o[0].set ? o[0].val : NULL;
    size_t n = (size_t)np;
    const char **ids = calloc(n, sizeof *ids);
    int *res = calloc(n, sizeof *res);
    uint32_t *closed = calloc(n, sizeof *closed);
    char **msgs = calloc(n, sizeof *msgs);
    size_t *map = calloc(n, sizeof *map);
    if (!ids || !res || !closed || !msgs || !map) {
        rc = fail_msg(c, RISK_ENOMEM, "out of memory");
        goto out;
    }
    /* An invalid id fails on its own (each user atomic, R-DI-4). */
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        int r = risk_id_check(argv[i]);
        if (r != RISK_OK) {
            res[i] = r;
            msgs[i] = strdup(risk_error_last());
        } else {
            map[nv] = i;
            ids[nv++] = argv[i];
        }
    }
    /* Only invalid ids: nothing to do in the store, so it is not opened
     * (and not created). */
    if (nv > 0 && (rc = open_engine(c, OPEN_EXISTING))) goto out;
    if (nv > 0) {
        int *r2 = calloc(nv, sizeof *r2);
        uint32_t *c2 = calloc(nv, sizeof *c2);
        int got = r2 && c2 ? risk_engine_dismiss_bulk(c->eng, c->actor, ids, nv, note, r2, c2)
                           : RISK_ENOMEM;
        if (got < 0) {
            free(r2);
            free(c2);
            rc = fail(c, got);
            goto out;
        }
        for (size_t j = 0; j < nv; j++) {
            size_t i = map[j];
            res[i] = r2[j];
            closed[i] = c2[j];
            if (r2[j] != RISK_OK) {
                /* The bulk call reports codes only: ask again for the
                 * reason (a refused dismiss changes nothing). */
                uint32_t cl = 0;
                int r = risk_engine_dismiss(c->eng, c->actor, ids[j], note, &cl);
                res[i] = r;
                closed[i] = cl;
                if (r != RISK_OK) msgs[i] = strdup(risk_error_last());
            }
        }
        free(r2);
        free(c2);
    }
    size_t ok = 0, failed = 0;
    for (size_t i = 0; i < n; i++) res[i] == RISK_OK ? ok++ : failed++;
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "results");
        jw_arr(&w);
        for (size_t i = 0; i < n; i++) {
            jw_obj(&w);
            jw_key(&w, "user_id"); jw_str(&w, argv[i]);
            jw_key(&w, "ok"); jw_bool(&w, res[i] == RISK_OK);
            jw_key(&w, "error"); jw_str(&w, res[i] == RISK_OK ? NULL : risk_error_name(res[i]));
            jw_key(&w, "message"); jw_str(&w, msgs[i]);
            jw_key(&w, "changed"); jw_uint(&w, closed[i]);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_key(&w, "ok"); jw_uint(&w, ok);
        jw_key(&w, "failed"); jw_uint(&w, failed);
        jw_obj_end(&w);
        jw_end(&w);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (res[i] == RISK_OK)
                printf("%s: dismissed %" PRIu32 " active event%s\n", argv[i], closed[i],
                       closed[i] == 1 ? "" : "s");
            else
                printf("%s: failed\n", argv[i]);
        }
        printf("%zu dismissed, %zu failed\n", ok, failed);
    }
    for (size_t i = 0; i < n; i++)
        if (res[i] != RISK_OK)
            fprintf(stderr, "riskctl: %s: %s: %s\n", argv[i], risk_error_name(res[i]),
                    msgs[i] ? msgs[i] : risk_strerror(res[i]));
    rc = failed ? EXIT_REFUSED : EXIT_DONE;
out:
    for (size_t i = 0; msgs && i < n; i++) free(msgs[i]);
    free(ids);
    free(res);
    free(closed);
    free(msgs);
    free(map);
    return rc;
}

int cmd_confirm(ctl *c, int argc, char **argv)
{
    int np, rc;
    int safe = strcmp(c->command_name, "confirm-safe") == 0;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_EXISTING))) return rc;
    rc = safe ? risk_engine_confirm_safe(c->eng, c->actor, argv[0])
              : risk_engine_confirm_compromised(c->eng, c->actor, argv[0]);
    if (rc != RISK_OK) return fail(c, rc);
    return print_user_now(c, argv[0]);
}

int cmd_reset_password(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--temporary", 0, 0, 0}, {"--require", 0, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if (o[0].set == o[1].set) return usage_error(c, "reset-password USER --temporary|--require");
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_EXISTING))) return rc;
    if (o[1].set) {
        rc = risk_engine_require_reset(c->eng, c->actor, argv[0]);
        if (rc != RISK_OK) return fail(c, rc);
        if (!c->json) printf("%s must reset the password at the next sign-in\n", argv[0]);
        return print_user_now(c, argv[0]);
    }
    char pw[256];
    rc = risk_engine_temporary_password(c->eng, c->actor, argv[0], pw, sizeof pw);
    if (rc != RISK_OK) return fail(c, rc);
    c->secret_out = 1;
    risk_user *u = NULL;
    rc = risk_engine_user(&u, c->eng, argv[0]);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "user");
        if (u) json_user(&w, u);
        else jw_null(&w);
        jw_key(&w, "temporary_password"); jw_str(&w, pw);
        jw_obj_end(&w);
        jw_end(&w);
    } else {
        printf("temporary password for %s (shown once, never stored): %s\n", argv[0], pw);
        if (u) human_user(c, u);
    }
    memset(pw, 0, sizeof pw);
    risk_user_free(u);
    return EXIT_DONE;
}

static int last_action(const risk_history *h, void *arg)
{
    *(risk_history_action *)arg = risk_history_action_get(h);
    return 0;
}

int cmd_password_changed(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--secure", 0, 0, 0}, {"--reset", 0, 0, 0}, {"--insecure", 0, 0, 0},
               {NULL, 0, 0, 0}};
    int np, rc;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if (o[0].set == o[2].set || (o[1].set && !o[0].set))
        return usage_error(c, "password-changed USER --secure [--reset] | --insecure");
    risk_password_change kind = o[2].set  ? RISK_PASSWORD_INSECURE
                                : o[1].set ? RISK_PASSWORD_SECURE_RESET
                                           : RISK_PASSWORD_SECURE_CHANGE;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_EXISTING))) return rc;
    rc = risk_engine_password_changed(c->eng, c->actor, argv[0], kind);
    if (rc != RISK_OK) return fail(c, rc);
    risk_history_action last = RISK_HISTORY_INGEST;
    if (kind != RISK_PASSWORD_INSECURE &&
        risk_engine_history(c->eng, argv[0], last_action, &last) == RISK_OK &&
        last == RISK_HISTORY_INSECURE_PASSWORD_CHANGE) {
        /* R-PO-11: the library recorded it as a change without MFA proof */
        risk_user *u = NULL;
        int mfa = risk_engine_user(&u, c->eng, argv[0]) == RISK_OK && risk_user_mfa_registered(u);
        risk_user_free(u);
        fprintf(stderr, "riskctl: note: %s %s (R-PO-11): recorded as a change without MFA "
                        "proof; no event closed\n", shown(argv[0]),
                mfa ? "registered MFA after the risk began" : "is not registered for MFA");
    }
    return print_user_now(c, argv[0]);
}

/* ---- policies ---- */

/* Add each id of a comma-separated list. */
static int add_list(ctl *c, risk_policy *p, const char *list, int include, int *exit_rc)
{
    const char *s = list;
    char id[RISK_ID_MAX + 2];
    for (;;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0) {
            *exit_rc = usage_error(c, "--%s: empty user id in '%s'",
                                   include ? "include" : "exclude", list);
            return -1;
        }
        if (n > RISK_ID_MAX) n = RISK_ID_MAX + 1; /* the library names it too long */
        memcpy(id, s, n);
        id[n] = '\0';
        int rc = include ? risk_policy_include_add(p, id) : risk_policy_exclude_add(p, id);
        if (rc != RISK_OK) {
            *exit_rc = fail(c, rc);
            return -1;
        }
        if (!e) return 0;
        s = e + 1;
    }
}

/* Build a policy from NAME and the options --threshold, --control, --mode,
 * --include, --exclude (o[0..4], as policy set and policy what-if take
 * them): every value is checked before the store is opened. Returns 0 or
 * an exit status (reported). */
int build_policy(ctl *c, const char *name, opt *o, risk_policy **out)
{
    risk_level th;
    uint32_t control, mode = RISK_MODE_ON;
    int rc;
    *out = NULL;
    if (!o[0].set || !o[1].set)
        return usage_error(c, "%s", synopsis_of("policy", c->command));
    if (parse_level(o[0].val, &th, 0))
        return usage_error(c, "--threshold: unknown level '%s' (low, medium, high)", o[0].val);
    if (risk_enum_parse(RISK_ENUM_CONTROL, o[1].val, &control))
        return usage_error(c, "--control: unknown control '%s' (require_password_change, block)",
                           o[1].val);
    if (o[2].set && risk_enum_parse(RISK_ENUM_POLICY_MODE, o[2].val, &mode))
        return usage_error(c, "--mode: unknown mode '%s' (on, off, report_only)", o[2].val);
    risk_policy *p = NULL;
    rc = risk_policy_new(&p, name, th, (risk_control)control);
    if (rc == RISK_OK) rc = risk_policy_set_mode(p, (risk_policy_mode)mode);
    if (rc != RISK_OK) {
        risk_policy_free(p);
        return fail(c, rc);
    }
    int erc = 0;
    if ((o[3].set && add_list(c, p, o[3].val, 1, &erc)) ||
        (o[4].set && add_list(c, p, o[4].val, 0, &erc))) {
        risk_policy_free(p);
        return erc;
    }
    *out = p;
    return 0;
}

int cmd_policy_set(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--threshold", 1, 0, 0}, {"--control", 1, 0, 0}, {"--mode", 1, 0, 0},
               {"--include", 1, 0, 0},   {"--exclude", 1, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    risk_policy *p = NULL;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = build_policy(c, argv[0], o, &p))) return rc;
    if ((rc = open_engine(c, OPEN_WRITE))) {
        risk_policy_free(p);
        return rc;
    }
    rc = risk_engine_policy_set(c->eng, c->actor, p);
    if (rc != RISK_OK) {
        risk_policy_free(p);
        return fail(c, rc);
    }
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        json_policy(&w, p);
        jw_end(&w);
    } else {
        table_policies(c, &p, 1);
    }
    risk_policy_free(p);
    return EXIT_DONE;
}

int cmd_policy_list(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 0, 0))) return rc;
    if ((rc = open_engine(c, OPEN_READ))) return rc;
    vec v = {0};
    rc = risk_engine_policies(c->eng, visit_policy, &v);
    return print_listing(c, rc, &v, &LIST_POLICIES,
                         "no policies: every sign-in is allowed unless a password flag is set");
}

int cmd_policy_remove(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_EXISTING))) return rc;
    vec v = {0};
    risk_policy *old = NULL;
    rc = risk_engine_policies(c->eng, visit_policy, &v);
    for (size_t i = 0; rc == RISK_OK && i < v.n; i++)
        if (strcmp(risk_policy_name(v.items[i]), argv[0]) == 0) old = v.items[i];
    if (rc == RISK_OK) rc = risk_engine_policy_remove(c->eng, c->actor, argv[0]);
    if (rc != RISK_OK) {
        vec_free(&v, free_policy);
        return fail(c, rc);
    }
    if (c->json) {
        /* The record as it was, so a script can restore it. */
        jw w;
        jw_init(&w, stdout);
        if (old) json_policy(&w, old);
        else {
            jw_obj(&w);
            jw_key(&w, "name"); jw_str(&w, argv[0]);
            jw_obj_end(&w);
        }
        jw_end(&w);
    } else {
        printf("removed policy %s\n", argv[0]);
    }
    vec_free(&v, free_policy);
    return EXIT_DONE;
}

/* ---- decisions and explanations ---- */

int cmd_signin(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--receipt", 0, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    /* --receipt (R-RC-1): the key beside the journal is made if missing. */
    c->need_key = o[0].set;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_SIGNIN))) return rc;
    risk_verdict *v = NULL;
    rc = risk_verdict_new(&v);
    if (rc == RISK_OK && o[0].set) rc = risk_verdict_want_receipt(v, 1);
    if (rc == RISK_OK) rc = risk_engine_sign_in(c->eng, argv[0], v);
    if (rc != RISK_OK) {
        risk_verdict_free(v);
        return fail(c, rc); /* the verdict is block/store_error (R-PO-9) */
    }
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        json_verdict(&w, v);
        jw_end(&w);
    } else {
        human_verdict(c, v);
    }
    risk_verdict_free(v);
    return EXIT_DONE;
}

int cmd_explain(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = check_id(c, argv[0])) || (rc = open_engine(c, OPEN_READ))) return rc;
    risk_explanation *ex = NULL;
    rc = risk_engine_explain(&ex, c->eng, argv[0]);
    if (rc != RISK_OK) return fail(c, rc);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        json_explanation(&w, argv[0], ex);
        jw_end(&w);
    } else {
        human_explanation(c, argv[0], ex);
    }
    risk_explanation_free(ex);
    return EXIT_DONE;
}

int cmd_history(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--all", 0, 0, 0}, {"--since", 1, 0, 0}, {NULL, 0, 0, 0}};
    int np, rc;
    uint64_t since = 0;
    if ((rc = get_opts(c, argc, argv, o, &np))) return rc;
    if (o[0].set ? np != 0 : (np != 1 || o[1].set))
        return usage_error(c, "%s", synopsis_of("history", NULL));
    if (o[1].set && parse_uint(o[1].val, UINT64_MAX, &since) != 0)
        return usage_error(c, "--since: malformed sequence number '%s'", o[1].val);
    if (!o[0].set && (rc = check_id(c, argv[0]))) return rc;
    if ((rc = open_engine(c, OPEN_READ))) return rc;
    vec v = {0};
    rc = o[0].set ? risk_engine_history_feed(c->eng, since, visit_history, &v)
                  : risk_engine_history(c->eng, argv[0], visit_history, &v);
    return print_listing(c, rc, &v, &LIST_HISTORY, "no history");
}

/* ---- maintenance ---- */

int cmd_expire(ctl *c, int argc, char **argv)
{
    int np, rc;
    uint64_t users = 0, events = 0;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 0, 0))) return rc;
    if ((rc = open_engine(c, OPEN_EXISTING))) return rc;
    rc = risk_engine_expire(c->eng, &users, &events);
    if (rc != RISK_OK) return fail(c, rc);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "users"); jw_uint(&w, users);
        jw_key(&w, "events"); jw_uint(&w, events);
        jw_obj_end(&w);
        jw_end(&w);
    } else {
        printf("aging closed %" PRIu64 " event%s of %" PRIu64 " user%s\n", events,
               events == 1 ? "" : "s", users, users == 1 ? "" : "s");
    }
    return EXIT_DONE;
}

static int64_t file_size(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

int cmd_compact(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 0, 0))) return rc;
    if ((rc = open_engine(c, OPEN_WRITE))) return rc;
    const char *path = c->memory ? NULL : store_path(c);
    int64_t before = file_size(path);
    rc = risk_engine_compact(c->eng);
    if (rc != RISK_OK) return fail(c, rc);
    int64_t after = file_size(path);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "ok"); jw_bool(&w, 1);
        jw_key(&w, "path"); jw_str(&w, path);
        jw_key(&w, "bytes_before"); jw_int(&w, before);
        jw_key(&w, "bytes_after"); jw_int(&w, after);
        jw_obj_end(&w);
        jw_end(&w);
    } else {
        printf("compacted %s: %" PRId64 " -> %" PRId64 " bytes\n", path ? path : "(memory)",
               before, after);
    }
    return EXIT_DONE;
}

int cmd_backup(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if ((rc = open_engine(c, OPEN_WRITE))) return rc;
    rc = risk_engine_backup(c->eng, argv[0]);
    if (rc != RISK_OK) return fail(c, rc);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "ok"); jw_bool(&w, 1);
        jw_key(&w, "path"); jw_str(&w, argv[0]);
        jw_key(&w, "bytes"); jw_int(&w, file_size(argv[0]));
        jw_obj_end(&w);
        jw_end(&w);
    } else {
        printf("wrote a consistent copy to %s (%" PRId64 " bytes)\n", argv[0],
               file_size(argv[0]));
    }
    return EXIT_DONE;
}
