/* riskctl: the administrator's command-line program (issue 6).
 *
 * A thin program over the public API only. This file holds the global
 * options, the store choice (journal by default, read-only for read
 * commands), the engine clock for --now, error reporting and the command
 * table; the commands live in riskctl_cmd.c, riskctl_import.c and
 * riskctl_demo.c. */
#include "riskctl.h"
#include "riskctl_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- times ---- */

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 20 || strspn(s, "0123456789") != n) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int parse_time(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    size_t n = strlen(s);
    if (strspn(s, "0123456789") == n) {
        if (n > 16) return -1;
        int64_t v = 0;
        for (size_t i = 0; i < n; i++) v = v * 10 + (s[i] - '0');
        if (v >= RISK_TIME_MAX) return -1;
        *out = v;
        return 0;
    }
    /* YYYY-MM-DDTHH:MM:SS[.mmm]Z; a year after 9999 has more digits, as
     * fmt_time prints it (what is printed can be given back) */
    unsigned y, mo, d, h, mi, se, ms = 0;
    size_t k = strspn(s, "0123456789");
    if (k < 4 || k > 6 || (k > 4 && s[0] == '0') || (n != k + 16 && n != k + 20)) return -1;
    const char *r = s + k; /* -MM-DDTHH:MM:SS[.mmm]Z */
    if (digits(s, (int)k, &y) || r[0] != '-' || digits(r + 1, 2, &mo) || r[3] != '-' ||
        digits(r + 4, 2, &d) || r[6] != 'T' || digits(r + 7, 2, &h) || r[9] != ':' ||
        digits(r + 10, 2, &mi) || r[12] != ':' || digits(r + 13, 2, &se))
        return -1;
    if (n == k + 20) {
        if (r[15] != '.' || digits(r + 16, 3, &ms) || r[19] != 'Z') return -1;
    } else if (r[15] != 'Z') {
        return -1;
    }
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        se > 59)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return -1;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    t = t * 1000 + ms;
    if (t >= RISK_TIME_MAX) return -1;
    *out = t;
    return 0;
}

const char *fmt_time(int64_t t, char *buf)
{
    if (t == RISK_TIME_NONE || t < 0) {
        strcpy(buf, "-");
        return buf;
    }
    time_t sec = (time_t)(t / 1000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(buf, 32, "%" PRId64, t);
        return buf;
    }
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    if (t % 1000) snprintf(buf + n, 32 - n, ".%03dZ", (int)(t % 1000));
    else snprintf(buf + n, 32 - n, "Z");
    return buf;
}

int parse_level(const char *s, risk_level *out, int allow_none)
{
    uint32_t v;
    if (risk_enum_parse(RISK_ENUM_LEVEL, s, &v) != RISK_OK) return -1;
    if (v == RISK_LEVEL_NONE && !allow_none) return -1;
    *out = (risk_level)v;
    return 0;
}

/* ---- errors ---- */

static void print_error(ctl *c, int code, const char *msg)
{
    const char *name = risk_error_name(code);
    fprintf(stderr, "riskctl: %s: %s\n", name, msg);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "error"); jw_str(&w, name);
        jw_key(&w, "code"); jw_int(&w, code);
        jw_key(&w, "message"); jw_str(&w, msg);
        if (c->error_seq) {
            jw_key(&w, "seq");
            jw_null(&w);
        }
        jw_obj_end(&w);
        jw_end(&w);
    }
}

int fail(ctl *c, int code)
{
    const char *msg = risk_error_last();
    if (!msg || !*msg || risk_error_last_code() != code) msg = risk_strerror(code);
    print_error(c, code, msg);
    return EXIT_REFUSED;
}

int fail_msg(ctl *c, int code, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_error(c, code, buf);
    return EXIT_REFUSED;
}

int usage_error(ctl *c, const char *fmt, ...)
{
    char buf[1024], msg[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "usage: %s", buf);
    fprintf(stderr, "riskctl: %s (see 'riskctl help')\n", msg);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "error"); jw_str(&w, risk_error_name(RISK_EINVAL));
        jw_key(&w, "code"); jw_int(&w, RISK_EINVAL);
        jw_key(&w, "message"); jw_str(&w, msg);
        if (c->error_seq) {
            jw_key(&w, "seq");
            jw_null(&w);
        }
        jw_obj_end(&w);
        jw_end(&w);
    }
    return EXIT_USAGE;
}

/* ---- command options ---- */

int get_opts(ctl *c, int argc, char **argv, opt *o, int *npos)
{
    int np = 0, only_pos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            argv[np++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        opt *hit = NULL;
        for (opt *p = o; p && p->name; p++)
            if (strlen(p->name) == len && strncmp(p->name, a, len) == 0) hit = p;
        if (!hit) return usage_error(c, "unknown option '%s'", a);
        if (hit->has_arg) {
            if (eq) hit->val = eq + 1;
            else if (i + 1 < argc) hit->val = argv[++i];
            else return usage_error(c, "option %s needs a value", hit->name);
        } else if (eq) {
            return usage_error(c, "option %s takes no value", hit->name);
        }
        hit->set = 1;
    }
    *npos = np;
    return 0;
}

/* ---- the store and the engine ---- */

static int64_t fixed_clock(void *userdata) { return *(const int64_t *)userdata; }

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

static char default_path[4096];

const char *store_path(ctl *c)
{
    if (c->store_path) return c->store_path;
    const char *env = getenv("RISKCTL_STORE");
    if (env && *env) return c->store_path = env;
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && *xdg) {
        snprintf(default_path, sizeof default_path, "%s/librisk/risk.journal", xdg);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : "/";
        }
        snprintf(default_path, sizeof default_path, "%s/.local/share/librisk/risk.journal",
                 home);
    }
    return c->store_path = default_path;
}

int open_engine(ctl *c, int mode)
{
    risk_store st;
    int rc;
    if (c->eng) return 0;
    c->read_only = mode == OPEN_READ;
    if (c->memory) {
        rc = risk_memory_store_new(&st);
    } else {
        const char *path = store_path(c);
        risk_journal_options jo = RISK_JOURNAL_OPTIONS_INIT;
        jo.durability = mode == OPEN_BULK ? RISK_DURABILITY_NORMAL : RISK_DURABILITY_FULL;
        struct stat sb;
        if ((mode == OPEN_READ || mode == OPEN_EXISTING ||
             (mode == OPEN_SIGNIN && !c->need_key)) && /* a receipt needs the key made */
            stat(path, &sb) != 0 && errno == ENOENT) {
            /* No journal yet: a read sees an empty store, and a command on
             * records that must exist fails there, creating nothing. */
            c->fresh_memory = 1;
            rc = risk_memory_store_new(&st);
            goto engine;
        }
        if (mode == OPEN_READ) {
            jo.read_only = 1;
        } else {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", path);
            if (mkdir_p(dir) != 0)
                return fail_msg(c, RISK_EIO, "store: cannot create the directory of '%s': %s",
                                path, strerror(errno));
            umask(077); /* the journal holds identity data: mode 0600 */
        }
        rc = risk_journal_open(&st, path, &jo, NULL);
        if (rc == RISK_EBUSY && mode == OPEN_SIGNIN) {
            /* Another process writes the journal (a streaming import):
             * decide on its state as of now, read-only; a due aging
             * catch-up is computed, not written (R-SC-2). */
            jo.read_only = 1;
            c->read_only = 1;
            rc = risk_journal_open(&st, path, &jo, NULL);
        }
        if (rc == RISK_ENOTFOUND && mode == OPEN_READ) {
            c->fresh_memory = 1;
            rc = risk_memory_store_new(&st);
        }
    }
engine:
    if (rc != RISK_OK) return fail(c, rc);
    if (c->fresh_memory) /* a mistyped path must not look like an empty store */
        fprintf(stderr, "riskctl: note: no journal at '%s' yet: the store is empty\n",
                store_path(c));
    risk_engine_options eo;
    risk_engine_options_init(&eo);
    if (c->have_now) {
        eo.clock = fixed_clock;
        eo.clock_userdata = &c->now;
    }
    /* The receipt key (R-RC-1): made on first use by a writing command;
     * only signin --receipt fails without it. The engine copies it. */
    uint8_t key[32];
    int makes_key = !c->read_only && !c->fresh_memory; /* never beside no journal */
    if (makes_key || c->need_key) {
        char why[512];
        int kr = receipt_key(c, makes_key, key, why, sizeof why);
        if (kr == 0) {
            eo.receipt_key = key;
            eo.receipt_key_len = sizeof key;
        } else if (c->need_key) {
            if (st.close) st.close(st.ctx);
            return fail_msg(c, kr, "%s", why);
        }
    }
    rc = risk_engine_new(&c->eng, &st, &eo);
    memset(key, 0, sizeof key);
    if (rc != RISK_OK) {
        int saved = rc;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", risk_error_last());
        if (st.close) st.close(st.ctx);
        return fail_msg(c, saved, "%s", msg[0] ? msg : risk_strerror(saved));
    }
    return 0;
}

/* ---- the command table ---- */

typedef struct command {
    const char *name;
    const char *sub; /* second word, or NULL */
    cmd_fn fn;
    const char *synopsis;
} command;

static const command commands[] = {
    {"user", "set", cmd_user_set, "user set USER [--mfa|--no-mfa] [--deleted|--not-deleted]"},
    {"user", "show", cmd_user_show, "user show USER"},
    {"users", NULL, cmd_users, "users [--min-level LEVEL]"},
    {"event", "add", cmd_event_add,
     "event add USER EVENT_ID TYPE LEVEL [--at TIME] [--offline] [--ip IP] "
     "[--location TEXT] [--source TEXT] [--update]"},
    {"event", "import", cmd_import, "event import FILE|-"},
    {"event", "show", cmd_event_show, "event show EVENT_ID"},
    {"events", NULL, cmd_events, "events USER [--active]"},
    {"resolve", NULL, cmd_close, "resolve EVENT_ID [--note TEXT]"},
    {"false-positive", NULL, cmd_close, "false-positive EVENT_ID [--note TEXT]"},
    {"ignore", NULL, cmd_close, "ignore EVENT_ID --note TEXT"},
    {"reactivate", NULL, cmd_close, "reactivate EVENT_ID [--note TEXT]"},
    {"dismiss", NULL, cmd_dismiss, "dismiss USER... [--note TEXT]"},
    {"confirm-compromised", NULL, cmd_confirm, "confirm-compromised USER"},
    {"confirm-safe", NULL, cmd_confirm, "confirm-safe USER"},
    {"reset-password", NULL, cmd_reset_password, "reset-password USER --temporary|--require"},
    {"password-changed", NULL, cmd_password_changed,
     "password-changed USER --secure [--reset] | --insecure"},
    {"policy", "set", cmd_policy_set,
     "policy set NAME --threshold LEVEL --control require_password_change|block "
     "[--mode on|off|report_only] [--include USER,...] [--exclude USER,...]"},
    {"policy", "list", cmd_policy_list, "policy list"},
    {"policy", "remove", cmd_policy_remove, "policy remove NAME"},
    {"policy", "what-if", cmd_policy_what_if,
     "policy what-if NAME --threshold LEVEL --control CONTROL [--mode MODE] "
     "[--include USER,...] [--exclude USER,...] [--limit N] [--offset N] | "
     "policy what-if --remove NAME [--limit N] [--offset N]"},
    {"signin", NULL, cmd_signin, "signin USER [--receipt]"},
    {"receipt", "verify", cmd_receipt_verify, "receipt verify FILE|-"},
    {"explain", NULL, cmd_explain, "explain USER"},
    {"history", NULL, cmd_history, "history USER | history --all [--since SEQ]"},
    {"expire", NULL, cmd_expire, "expire"},
    {"anchor", NULL, cmd_anchor, "anchor"},
    {"check", NULL, cmd_check, "check [--anchor FILE|-|TEXT]"},
    {"compact", NULL, cmd_compact, "compact"},
    {"backup", NULL, cmd_backup, "backup PATH"},
    {"demo", NULL, cmd_demo, "demo"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void help(FILE *f)
{
    fprintf(f, "usage: riskctl [GLOBAL OPTIONS] COMMAND [ARGS]\n\n"
               "Keeps the identity-risk state of user accounts (librisk %s).\n\n"
               "Global options (before or after the command):\n"
               "  --store PATH   journal file (default $RISKCTL_STORE, else\n"
               "                 $XDG_DATA_HOME/librisk/risk.journal, else\n"
               "                 ~/.local/share/librisk/risk.journal)\n"
               "  --memory       use an empty in-memory store\n"
               "  --json         print exactly one JSON value\n"
               "  --actor NAME   who does it (default $USER)\n"
               "  --now TIME     evaluate and stamp at TIME (ms or 2026-11-24T10:00:00Z)\n"
               "  --help, help   this text (--version: the version)\n\n"
               "Commands:\n",
            risk_version_string());
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %s\n", commands[i].synopsis);
    fprintf(f, "\nExit status: 0 done, 1 refused by the library (or a bulk item failed),"
               " 2 usage error.\nSee riskctl(1).\n");
}

const char *synopsis_of(const char *name, const char *sub)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0 &&
            (!sub || !commands[i].sub || strcmp(commands[i].sub, sub) == 0))
            return commands[i].synopsis;
    return "";
}

/* Command options that take a value: their values are never taken for
 * global options, so `--note --json` keeps its note. */
static int cmd_opt_has_value(const char *a)
{
    static const char *const with_value[] = {"--note", "--at", "--ip", "--location", "--source",
                                             "--min-level", "--threshold", "--control", "--mode",
                                             "--include", "--exclude", "--since", "--anchor",
                                             "--remove", "--limit", "--offset", NULL};
    for (int i = 0; with_value[i]; i++)
        if (strcmp(a, with_value[i]) == 0) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    ctl c;
    memset(&c, 0, sizeof c);
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0, only_pos = 0, want_help = 0, lead_dd = 0;
    const char *now_arg = NULL;
    if (!rest) return EXIT_REFUSED;

    /* Pass 1: global options anywhere; the rest keeps its order. */
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        const char *val = NULL;
        if (only_pos || a[0] != '-') {
            rest[nrest++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            if (nrest == 0) /* before the command: it goes after its words */
                lead_dd = 1;
            else
                rest[nrest++] = a;
            continue;
        }
        if (cmd_opt_has_value(a)) {
            rest[nrest++] = a;
            if (i + 1 < argc) rest[nrest++] = argv[++i];
            continue;
        }
        static const char *const valued[] = {"--store", "--actor", "--now"};
        int which = -1;
        for (int k = 0; k < 3; k++) {
            size_t l = strlen(valued[k]);
            if (strncmp(a, valued[k], l) == 0 && (a[l] == '\0' || a[l] == '=')) {
                which = k;
                if (a[l] == '=') val = a + l + 1;
            }
        }
        if (which >= 0) {
            if (!val) {
                if (i + 1 >= argc) {
                    free(rest);
                    return usage_error(&c, "option %s needs a value", valued[which]);
                }
                val = argv[++i];
            }
            if (which == 0) c.store_path = val;
            else if (which == 1) c.actor = val;
            else now_arg = val;
        } else if (strcmp(a, "--json") == 0) {
            c.json = 1;
        } else if (strcmp(a, "--memory") == 0) {
            c.memory = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            want_help = 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("riskctl (librisk) %s\n", risk_version_string());
            free(rest);
            return EXIT_DONE;
        } else {
            rest[nrest++] = a;
        }
    }
    if (want_help || (nrest > 0 && strcmp(rest[0], "help") == 0)) {
        help(stdout);
        free(rest);
        return EXIT_DONE;
    }
    c.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    int rc;
    if (c.store_path && !*c.store_path) {
        rc = usage_error(&c, "--store: empty path");
        goto out;
    }
    if (c.actor && strcmp(c.actor, "system") == 0) {
        /* R-OP-0: `system` names the engine's own actions in the history */
        rc = usage_error(&c, "--actor: 'system' is the engine's own name in the history "
                             "(R-OP-0); give yours");
        goto out;
    }
    if (now_arg) {
        if (parse_time(now_arg, &c.now) != 0) {
            rc = usage_error(&c, "--now: malformed TIME '%s' (milliseconds since the epoch or "
                                 "ISO 8601 UTC like 2026-11-24T10:00:00Z)", now_arg);
            goto out;
        }
        c.have_now = 1;
    }
    if (!c.actor) {
        const char *u = getenv("USER");
        if (u && *u) {
            c.actor = u;
        } else {
            struct passwd *pw = getpwuid(getuid());
            c.actor = pw && pw->pw_name ? pw->pw_name : "riskctl";
        }
    }
    if (nrest == 0) {
        help(stderr);
        rc = usage_error(&c, "no command");
        goto out;
    }
    const command *cmd = NULL;
    int used = 1;
    for (size_t i = 0; i < N_COMMANDS && !cmd; i++) {
        if (strcmp(commands[i].name, rest[0]) != 0) continue;
        if (!commands[i].sub) {
            cmd = &commands[i];
        } else if (nrest > 1 && strcmp(commands[i].sub, rest[1]) == 0) {
            cmd = &commands[i];
            used = 2;
        }
    }
    if (!cmd) {
        int group = strcmp(rest[0], "user") == 0 || strcmp(rest[0], "event") == 0 ||
                    strcmp(rest[0], "policy") == 0 || strcmp(rest[0], "receipt") == 0;
        if (group && nrest > 1)
            rc = usage_error(&c, "unknown command '%s %s'", rest[0], rest[1]);
        else if (group)
            rc = usage_error(&c, "'%s' needs a subcommand", rest[0]);
        else
            rc = usage_error(&c, "unknown command '%s'", rest[0]);
        goto out;
    }
    if (lead_dd) { /* `riskctl -- CMD ARGS`: the command sees `--` first */
        memmove(rest + used + 1, rest + used, (size_t)(nrest - used) * sizeof *rest);
        rest[used] = "--";
        nrest++;
    }
    c.command = cmd->sub ? cmd->sub : cmd->name;
    c.command_name = cmd->name;
    rc = cmd->fn(&c, nrest - used, rest + used);
out:
    risk_engine_free(c.eng);
    free(rest);
    /* Output that did not reach its file is a failure (a full disk, a
     * closed pipe): the command's effect stands, but the caller must not
     * believe it saw the result (a temporary password is shown once). */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "riskctl: error: writing the output failed: %s%s\n", strerror(errno),
                c.secret_out ? " (the temporary password was set but not shown: generate "
                               "another)"
                             : "");
        if (rc == EXIT_DONE) rc = EXIT_REFUSED;
    }
    return rc;
}
