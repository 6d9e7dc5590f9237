/* riskctl: the audit chain, policy what-if and decision receipts (issue 8,
 * SPEC §10): `anchor`, `check [--anchor FILE|-|TEXT]`, `policy what-if`,
 * `receipt verify FILE|-`, and the receipt key kept beside the journal. */
#include "riskctl_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ---- */

/* Read a whole file (or stdin for "-") into a NUL-terminated buffer, at
 * most `max` bytes. Returns NULL with errno set. */
static char *slurp(const char *path, size_t max, size_t *len_out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 == cap) {
            if (cap > max) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
                errno = EIO;
            }
            break;
        }
    }
    if (f != stdin) fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len_out) *len_out = n;
    }
    return buf;
}

static void hex32(char out[65], const uint8_t b[32])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[64] = '\0';
}

static int fill_random(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* ---- the receipt key ---- */

/* Read an existing key file: exactly 32 bytes, not readable by others. */
static int read_key(const char *path, int fd, uint8_t key[32], char *why, size_t whycap)
{
    struct stat sb;
    ssize_t got = -1;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 32)
        got = read(fd, key, 32);
    close(fd);
    if (got != 32) {
        snprintf(why, whycap, "receipt key: %s is not a 32-byte key file", path);
        return RISK_EIO;
    }
    if (sb.st_mode & 077) {
        snprintf(why, whycap, "receipt key: %s is readable by others (mode 0%o); "
                 "run chmod 600 on it", path, (unsigned)(sb.st_mode & 0777));
        return RISK_EIO;
    }
    return 0;
}

int receipt_key(ctl *c, int create, uint8_t key[32], char *why, size_t whycap)
{
    static uint8_t mem_key[32];
    static int mem_have;
    if (c->memory) {
        /* Nothing outlives the process, so neither does its key. */
        if (!mem_have && fill_random(mem_key, sizeof mem_key) != 0) {
            snprintf(why, whycap, "receipt key: getrandom failed: %s", strerror(errno));
            return RISK_EIO;
        }
        mem_have = 1;
        memcpy(key, mem_key, 32);
        return 0;
    }
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s.key", store_path(c));
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) return read_key(path, fd, key, why, whycap);
        if (errno != ENOENT) {
            snprintf(why, whycap, "receipt key: cannot open %s: %s", path, strerror(errno));
            return RISK_EIO;
        }
        if (!create) {
            snprintf(why, whycap, "receipt key: no key at %s (the first writing command or "
                     "signin --receipt makes it)", path);
            return RISK_ENOTFOUND;
        }
        /* Write a whole key under a private name, then link it into place:
         * a concurrent creator either wins (we read its key) or loses, and
         * nobody ever reads a half-written key. */
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(why, whycap, "receipt key: cannot create %s: %s", tmp, strerror(errno));
            return RISK_EIO;
        }
        uint8_t k[32];
        int ok = fill_random(k, sizeof k) == 0 && write(fd, k, sizeof k) == (ssize_t)sizeof k &&
                 fsync(fd) == 0;
        int saved = errno;
        close(fd);
        int linked = ok && link(tmp, path) == 0;
        if (ok && !linked) saved = errno;
        unlink(tmp);
        if (linked) {
            memcpy(key, k, 32);
            memset(k, 0, sizeof k);
            return 0;
        }
        memset(k, 0, sizeof k);
        if (!ok || saved != EEXIST) {
            snprintf(why, whycap, "receipt key: cannot write %s: %s", path, strerror(saved));
            return RISK_EIO;
        }
    }
    snprintf(why, whycap, "receipt key: %s keeps changing", path);
    return RISK_EIO;
}

/* ---- anchor ---- */

static void json_anchor(jw *w, const risk_anchor *a, const char *text)
{
    char h[65];
    hex32(h, a->hash);
    jw_obj(w);
    jw_key(w, "seq"); jw_uint(w, a->seq);
    jw_key(w, "subjects"); jw_uint(w, a->subjects);
    jw_key(w, "hash"); jw_str(w, h);
    jw_key(w, "anchor"); jw_str(w, text);
    jw_obj_end(w);
}

/* Print the anchor of the current history (R-AU-3), to keep elsewhere. */
int cmd_anchor(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 0, 0))) return rc;
    if ((rc = open_engine(c, OPEN_READ))) return rc;
    risk_anchor a;
    char text[RISK_ANCHOR_TEXT_MAX];
    rc = risk_engine_history_anchor(c->eng, &a);
    if (rc == RISK_OK) rc = risk_anchor_format(text, sizeof text, &a);
    if (rc != RISK_OK) return fail(c, rc);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        json_anchor(&w, &a, text);
        jw_end(&w);
    } else {
        printf("%s\n", text);
    }
    return EXIT_DONE;
}

/* ---- check ---- */

/* The anchor of `check --anchor ARG`: ARG is a file, "-" (stdin) or the
 * text itself. The anchor line is found anywhere in what was read, so the
 * output of `anchor` and of `anchor --json` both work. Returns 0 or an
 * exit status. */
static int load_anchor(ctl *c, const char *arg, risk_anchor *out)
{
    struct stat sb;
    char *buf = NULL;
    const char *text = arg;
    if (strcmp(arg, "-") == 0 || (stat(arg, &sb) == 0 && !S_ISDIR(sb.st_mode))) {
        buf = slurp(arg, 1 << 16, NULL);
        if (!buf)
            return fail_msg(c, RISK_EIO, "--anchor: cannot read '%s': %s", arg, strerror(errno));
        text = buf;
    }
    const char *p = strstr(text, "librisk-anchor");
    int rc = -1;
    if (p) {
        char line[RISK_ANCHOR_TEXT_MAX + 1];
        size_t n = strcspn(p, "\"\r\n");
        if (n < sizeof line) {
            memcpy(line, p, n);
            line[n] = '\0';
            rc = risk_anchor_parse(out, line);
        }
    }
    free(buf);
    if (rc != RISK_OK)
        return usage_error(c, "--anchor: no anchor in '%s' (expected a file, '-' or the text "
                              "'librisk-anchor 1 SEQ SUBJECTS HEX' that `riskctl anchor` prints)",
                           arg);
    return 0;
}

static int count_users(const risk_user *u, void *arg)
{
    (void)u;
    ++*(uint64_t *)arg;
    return 0;
}
static int count_history(const risk_history *h, void *arg)
{
    (void)h;
    ++*(uint64_t *)arg;
    return 0;
}

/* A verify failure: the library's message, and the item's sequence number
 * when the damage is one item (R-AU-2); in --json also as "seq". */
static int fail_verify(ctl *c, int code, uint64_t bad)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", risk_error_last());
    if (!msg[0]) snprintf(msg, sizeof msg, "%s", risk_strerror(code));
    if (bad)
        fprintf(stderr, "riskctl: %s: history item seq %" PRIu64 ": %s\n", risk_error_name(code),
                bad, msg);
    else
        fprintf(stderr, "riskctl: %s: %s\n", risk_error_name(code), msg);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "error"); jw_str(&w, risk_error_name(code));
        jw_key(&w, "code"); jw_int(&w, code);
        jw_key(&w, "message"); jw_str(&w, msg);
        jw_key(&w, "seq");
        if (bad) jw_uint(&w, bad);
        else jw_null(&w);
        jw_obj_end(&w);
        jw_end(&w);
    }
    return EXIT_REFUSED;
}

/* Check the frames: risk_journal_check() reads every byte without a lock.
 * A frame a writer is appending right now looks torn for a moment, so a
 * failure is read again twice before it counts. Then a torn tail is told
 * apart from damage by a read-only open (which drops a torn tail and
 * reports how much): either way the journal is not what was committed, so
 * check fails (issue 8) — "opening for use may drop a torn tail; checking
 * must say so". Returns 0 with *st open, or an exit status. */
static int check_frames(ctl *c, const char *path, risk_journal_stats *stats, risk_store *st)
{
    int rc = RISK_OK;
    char why[1024] = "";
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        memset(stats, 0, sizeof *stats);
        rc = risk_journal_check(path, stats);
        if (rc != RISK_ECORRUPT) break;
        snprintf(why, sizeof why, "%s", risk_error_last());
    }
    if (rc != RISK_OK && rc != RISK_ECORRUPT) return fail(c, rc);
    risk_journal_options jo = RISK_JOURNAL_OPTIONS_INIT;
    risk_journal_stats ro;
    memset(&ro, 0, sizeof ro);
    jo.read_only = 1;
    int orc = risk_journal_open(st, path, &jo, &ro);
    if (rc == RISK_ECORRUPT) {
        /* opened on a header (an empty file has none: as a torn one, it is
         * refused) */
        int framed = orc == RISK_OK && ro.file_bytes > 0;
        if (framed && ro.bytes_dropped == 0) {
            /* The frame in flight was whole by the time of the open. */
            stats->records_replayed = ro.records_replayed;
            stats->file_bytes = ro.file_bytes;
            return 0;
        }
        if (orc == RISK_OK && st->close) st->close(st->ctx);
        if (framed)
            return fail_msg(c, RISK_ECORRUPT,
                            "%s: %s: %" PRIu64 " bytes there are not a committed transaction "
                            "(opening the journal for writing drops them)",
                            path, why, ro.bytes_dropped);
        return fail_msg(c, RISK_ECORRUPT, "%s", why);
    }
    if (orc != RISK_OK) return fail(c, orc);
    return 0;
}

/* Verify the journal (issue 8): every frame (risk_journal_check), then every
 * history chain (R-AU-1, R-AU-2) and, with --anchor, the anchor kept
 * elsewhere (R-AU-3). Exits 1 whenever the file is not exactly what was
 * committed. */
int cmd_check(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--anchor", 1, 0, 0}, {NULL, 0, 0, 0}};
    risk_anchor want;
    int np, rc;
    c->error_seq = 1; /* every failure of check says which item, if one: null here */
    if ((rc = get_opts(c, argc, argv, o, &np)) || (rc = want_pos(c, np, 0, 0))) return rc;
    if (o[0].set && (rc = load_anchor(c, o[0].val, &want))) return rc;
    risk_journal_stats stats;
    memset(&stats, 0, sizeof stats);
    const char *path = c->memory ? NULL : store_path(c);
    risk_store st;
    if (c->memory) {
        if ((rc = risk_memory_store_new(&st)) != RISK_OK) return fail(c, rc);
    } else if ((rc = check_frames(c, path, &stats, &st))) {
        return rc;
    }
    risk_engine_options eo;
    risk_engine_options_init(&eo);
    rc = risk_engine_new(&c->eng, &st, &eo);
    if (rc != RISK_OK) {
        if (st.close) st.close(st.ctx);
        return fail(c, rc);
    }
    c->read_only = 1;
    uint64_t users = 0, items = 0, bad = 0;
    rc = risk_engine_users(c->eng, RISK_LEVEL_NONE, count_users, &users);
    if (rc == RISK_OK) rc = risk_engine_history_feed(c->eng, 0, count_history, &items);
    if (rc != RISK_OK) return fail(c, rc);
    rc = risk_engine_verify_history(c->eng, o[0].set ? &want : NULL, &bad);
    if (rc != RISK_OK) return fail_verify(c, rc, bad);
    risk_anchor now;
    char anchor[RISK_ANCHOR_TEXT_MAX] = "";
    if (risk_engine_history_anchor(c->eng, &now) == RISK_OK)
        risk_anchor_format(anchor, sizeof anchor, &now);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "ok"); jw_bool(&w, 1);
        jw_key(&w, "path"); jw_str(&w, path);
        jw_key(&w, "anchor"); jw_str(&w, anchor[0] ? anchor : NULL);
        char t[RISK_ANCHOR_TEXT_MAX] = "";
        if (o[0].set) risk_anchor_format(t, sizeof t, &want);
        jw_key(&w, "verified_against"); jw_str(&w, t[0] ? t : NULL);
        jw_key(&w, "records"); jw_uint(&w, stats.records_replayed);
        jw_key(&w, "bytes_dropped"); jw_uint(&w, 0);
        jw_key(&w, "file_bytes"); jw_uint(&w, stats.file_bytes);
        jw_key(&w, "users"); jw_uint(&w, users);
        jw_key(&w, "history_items"); jw_uint(&w, items);
        jw_obj_end(&w);
        jw_end(&w);
    } else {
        printf("%s: ok\n", path ? path : "(memory)");
        printf("  %" PRIu64 " committed transactions, %" PRIu64 " bytes, %" PRIu64
               " users, %" PRIu64 " history items\n",
               stats.records_replayed, stats.file_bytes, users, items);
        if (o[0].set)
            printf("  history chains verified, and against the anchor at seq %" PRIu64 "\n",
                   want.seq);
        else
            printf("  history chains verified\n");
        printf("  anchor: %s\n", anchor[0] ? anchor : "-");
    }
    return EXIT_DONE;
}

/* ---- policy what-if ---- */

static int parse_count(ctl *c, const opt *o, size_t *out)
{
    uint64_t v = 0;
    if (parse_uint(o->val, 1000000000u, &v) != 0)
        return usage_error(c, "%s: malformed count '%s'", o->name, o->val);
    *out = (size_t)v;
    return 0;
}

/* Evaluate the stored policies with one added, replaced or removed against
 * every stored user at --now (R-WI-1), changing nothing (read-only open).
 * Counts per decision and reason, and a page of the users of each. */
int cmd_policy_what_if(ctl *c, int argc, char **argv)
{
    opt o[] = {{"--threshold", 1, 0, 0}, {"--control", 1, 0, 0}, {"--mode", 1, 0, 0},
               {"--include", 1, 0, 0},   {"--exclude", 1, 0, 0}, {"--remove", 1, 0, 0},
               {"--limit", 1, 0, 0},     {"--offset", 1, 0, 0},  {NULL, 0, 0, 0}};
    int np, rc;
    size_t limit = 20, offset = 0;
    risk_policy *cand = NULL;
    if ((rc = get_opts(c, argc, argv, o, &np))) return rc;
    if ((o[6].set && (rc = parse_count(c, &o[6], &limit))) ||
        (o[7].set && (rc = parse_count(c, &o[7], &offset))))
        return rc;
    const char *target;
    if (o[5].set) {
        if (np != 0 || o[0].set || o[1].set || o[2].set || o[3].set || o[4].set)
            return usage_error(c, "policy what-if --remove NAME takes no other policy options");
        target = o[5].val;
    } else {
        if ((rc = want_pos(c, np, 1, 1)) || (rc = build_policy(c, argv[0], o, &cand))) return rc;
        target = argv[0];
    }
    if ((rc = open_engine(c, OPEN_READ))) {
        risk_policy_free(cand);
        return rc;
    }
    vec v = {0};
    rc = risk_engine_policies(c->eng, visit_policy, &v);
    const risk_policy **set = NULL;
    size_t n = 0;
    int found = 0;
    if (rc == RISK_OK) {
        set = calloc(v.n + 1, sizeof *set);
        if (!set) rc = fail_msg(c, RISK_ENOMEM, "out of memory");
    } else {
        rc = fail(c, rc);
    }
    for (size_t i = 0; set && i < v.n; i++) {
        if (strcmp(risk_policy_name(v.items[i]), target) == 0) found = 1;
        else set[n++] = v.items[i];
    }
    if (set && cand) set[n++] = cand;
    risk_what_if *w = NULL;
    if (rc == 0 && o[5].set && !found)
        rc = fail_msg(c, RISK_ENOTFOUND, "--remove: no stored policy named '%s'", target);
    if (rc == 0) {
        int r = risk_engine_what_if(&w, c->eng, set, n, risk_engine_now(c->eng));
        if (r != RISK_OK) rc = fail(c, r);
    }
    if (rc == 0) {
        int64_t at = risk_what_if_at(w);
        size_t total = risk_what_if_total(w);
        jw j;
        table t;
        char tb[32];
        if (c->json) {
            jw_init(&j, stdout);
            jw_obj(&j);
            jw_key(&j, "at"); jw_time(&j, at);
            jw_key(&j, "total"); jw_uint(&j, total);
            jw_key(&j, "policies");
            jw_arr(&j);
            for (size_t i = 0; i < n; i++) jw_str(&j, risk_policy_name(set[i]));
            jw_arr_end(&j);
            jw_key(&j, "results");
            jw_arr(&j);
        } else {
            printf("what-if at %s: %zu user%s, policies:", fmt_time(at, tb), total,
                   total == 1 ? "" : "s");
            for (size_t i = 0; i < n; i++) printf(" %s", shown(risk_policy_name(set[i])));
            printf("%s\n", n ? "" : " none");
            static const char *const hdr[] = {"DECISION", "REASON", "COUNT", "USERS"};
            table_init(&t, 4, hdr);
        }
        size_t most = 0; /* the largest group */
        for (uint32_t d = RISK_DECISION_ALLOW; d <= RISK_DECISION_BLOCK; d++) {
            for (uint32_t r = RISK_REASON_NONE; r <= RISK_REASON_STORE_ERROR; r++) {
                size_t cnt = risk_what_if_count(w, (risk_decision)d, (risk_reason)r);
                if (!cnt) continue;
                if (cnt > most) most = cnt;
                const char *dn = ename(RISK_ENUM_DECISION, d), *rn = ename(RISK_ENUM_REASON, r);
                if (c->json) {
                    jw_obj(&j);
                    jw_key(&j, "decision"); jw_str(&j, dn);
                    jw_key(&j, "reason"); jw_str(&j, rn);
                    jw_key(&j, "count"); jw_uint(&j, cnt);
                    jw_key(&j, "users");
                    jw_arr(&j);
                    for (size_t i = offset; i < cnt && i - offset < limit; i++)
                        jw_str(&j, risk_what_if_user(w, (risk_decision)d, (risk_reason)r, i));
                    jw_arr_end(&j);
                    jw_obj_end(&j);
                    continue;
                }
                char num[32], users[4096];
                size_t u = 0, i = offset;
                users[0] = '\0';
                snprintf(num, sizeof num, "%zu", cnt);
                for (; i < cnt && i - offset < limit; i++)
                    if (!cell_add(users, sizeof users, &u, ", ",
                                  risk_what_if_user(w, (risk_decision)d, (risk_reason)r, i),
                                  cnt - i))
                        break;
                if (i < cnt && i - offset == limit) /* the page ends before the users do */
                    snprintf(users + u, sizeof users - u, "%s…", u ? ", " : "");
                const char *row[] = {dn, rn, num, users};
                table_add(&t, row, NULL);
            }
        }
        if (c->json) {
            jw_arr_end(&j);
            jw_key(&j, "offset"); jw_uint(&j, offset);
            jw_key(&j, "limit"); jw_uint(&j, limit);
            jw_obj_end(&j);
            jw_end(&j);
        } else {
            table_print(c, &t, stdout);
            table_free(&t);
            if (most == 0)
                printf("(nothing was changed)\n");
            else if (offset >= most || limit == 0)
                printf("(nothing was changed; no users shown: --offset %zu, --limit %zu, the "
                       "largest group has %zu)\n", offset, limit, most);
            else
                printf("(nothing was changed; users %zu–%zu of each group shown: --offset, "
                       "--limit)\n", offset + 1, most - offset < limit ? most : offset + limit);
        }
        rc = EXIT_DONE;
    }
    risk_what_if_free(w);
    free(set);
    risk_policy_free(cand);
    vec_free(&v, free_policy);
    return rc;
}

/* ---- receipt verify ---- */

static const char *ws(const char *p)
{
    return p + strspn(p, " \t\r\n");
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

/* The JSON string at *pp (its opening quote), decoded to UTF-8 (\uXXXX and
 * surrogate pairs too, so output re-encoded by another JSON writer still
 * works); *pp moves past its closing quote. NULL if malformed, if it holds
 * \u0000, or out of memory. */
static char *json_string(const char **pp)
{
    const char *p = *pp;
    if (*p++ != '"') return NULL;
    char *out = malloc(strlen(p) + 1), *o = out; /* decoding never grows */
    if (!out) return NULL;
    for (; *p && *p != '"'; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        unsigned v, lo;
        switch (*++p) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case '"': case '\\': case '/': *o++ = *p; break;
        case 'u':
            if (hex4(p + 1, &v) || v == 0 || (v >= 0xDC00 && v <= 0xDFFF)) goto bad;
            p += 4;
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (p[1] != '\\' || p[2] != 'u' || hex4(p + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    goto bad;
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            if (v < 0x80) {
                *o++ = (char)v;
            } else if (v < 0x800) {
                *o++ = (char)(0xC0 | v >> 6);
                *o++ = (char)(0x80 | (v & 0x3F));
            } else if (v < 0x10000) {
                *o++ = (char)(0xE0 | v >> 12);
                *o++ = (char)(0x80 | (v >> 6 & 0x3F));
                *o++ = (char)(0x80 | (v & 0x3F));
            } else {
                *o++ = (char)(0xF0 | v >> 18);
                *o++ = (char)(0x80 | (v >> 12 & 0x3F));
                *o++ = (char)(0x80 | (v >> 6 & 0x3F));
                *o++ = (char)(0x80 | (v & 0x3F));
            }
            break;
        default:
            goto bad;
        }
    }
    if (*p != '"') goto bad;
    *o = '\0';
    *pp = p + 1;
    return out;
bad:
    free(out);
    return NULL;
}

/* Past the JSON value at p (string, object, array, number or literal; the
 * last two leniently, as a run of their characters). NULL if malformed. */
static const char *json_skip(const char *p, int depth)
{
    p = ws(p);
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && p[1]) p++;
        return *p ? p + 1 : NULL;
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        if (depth > 64) return NULL;
        p = ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (*p != '"' || !(p = json_skip(p, depth + 1))) return NULL;
                p = ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = json_skip(p, depth + 1))) return NULL;
            p = ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
            p = ws(p);
        }
    }
    size_t n = strspn(p, "+-.0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    return n ? p + n : NULL;
}

/* The receipt text inside `signin --receipt --json` output: the string
 * value of the top-level key "receipt", decoded. Keys are walked one by
 * one, so a "receipt" string elsewhere (a user id, a policy name) is not
 * mistaken for it. Returns a new string or NULL. */
static char *receipt_from_json(const char *s)
{
    const char *p = ws(s);
    if (*p++ != '{') return NULL;
    p = ws(p);
    for (;;) {
        char *key = json_string(&p);
        if (!key) return NULL;
        int found = strcmp(key, "receipt") == 0;
        free(key);
        p = ws(p);
        if (*p++ != ':') return NULL;
        p = ws(p);
        if (found) return *p == '"' ? json_string(&p) : NULL;
        if (!(p = json_skip(p, 0))) return NULL;
        p = ws(p);
        if (*p++ != ',') return NULL;
        p = ws(p);
    }
}

/* Line ends CRLF to LF, in place (a lone CR stays, and is refused). */
static void crlf_to_lf(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++)
        if (!(r[0] == '\r' && r[1] == '\n')) *w++ = *r;
    *w = '\0';
}

/* Where the receipt starts in text: the first line that is exactly
 * "librisk-receipt VERSION" (LF or CRLF). So the whole human output of
 * `signin --receipt` verifies as it is, even when its verdict line starts
 * with a user id such as "librisk-receipt 1". NULL if there is none. */
static char *receipt_start(char *buf)
{
    for (char *p = buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, "librisk-receipt ", 16) != 0) continue;
        size_t d = strspn(p + 16, "0123456789");
        const char *e = p + 16 + d;
        if (d > 0 && (*e == '\n' || *e == '\0' || (*e == '\r' && (e[1] == '\n' || !e[1]))))
            return p;
    }
    return NULL;
}

/* The value of "key=" on a receipt line, copied into buf. */
static const char *field(const char *text, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, "\n");
            if (n >= cap) n = cap - 1;
            memcpy(buf, p + kl + 1, n);
            buf[n] = '\0';
            return buf;
        }
    }
    return NULL;
}

/* Check a receipt (R-RC-1) against the key beside the journal: exit 0
 * authentic, 1 altered or under another key (RISK_EVERIFY). */
int cmd_receipt_verify(ctl *c, int argc, char **argv)
{
    int np, rc;
    if ((rc = get_opts(c, argc, argv, NULL, &np)) || (rc = want_pos(c, np, 1, 1))) return rc;
    if (c->memory)
        return usage_error(c, "receipt verify needs the key beside a journal; an in-memory "
                              "store's key dies with its process");
    char *buf = slurp(argv[0], 1 << 20, NULL);
    if (!buf) return fail_msg(c, RISK_EIO, "%s: cannot read: %s", argv[0], strerror(errno));
    /* The receipt starts at its first line (the library refuses text
     * without one). */
    char *text = receipt_start(buf);
    if (!text) text = buf;
    const char *s = buf + strspn(buf, " \t\r\n");
    if (*s == '{') {
        text = receipt_from_json(s);
        free(buf);
        buf = text;
        if (!text)
            return fail_msg(c, RISK_EVERIFY, "%s: no \"receipt\" string in this JSON", argv[0]);
    }
    uint8_t key[32];
    char why[512];
    if ((rc = receipt_key(c, 0, key, why, sizeof why))) {
        free(buf);
        return fail_msg(c, rc, "%s", why);
    }
    crlf_to_lf(text); /* a receipt saved on Windows, or mailed: the same lines */
    rc = risk_receipt_verify(text, key, sizeof key);
    memset(key, 0, sizeof key);
    if (rc != RISK_OK) {
        free(buf);
        return fail(c, rc);
    }
    static const char *const keys[] = {"user_id", "at", "decision", "reason", "level", "policy"};
    char vals[6][512];
    for (int i = 0; i < 6; i++)
        if (!field(text, keys[i], vals[i], sizeof vals[i])) vals[i][0] = '\0';
    int64_t at = strtoll(vals[1], NULL, 10);
    if (c->json) {
        jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "ok"); jw_bool(&w, 1);
        jw_key(&w, "user_id"); jw_str(&w, vals[0]);
        jw_key(&w, "at"); jw_int(&w, at);
        for (int i = 2; i < 5; i++) {
            jw_key(&w, keys[i]);
            jw_str(&w, vals[i]);
        }
        jw_key(&w, "policy"); jw_str(&w, vals[5][0] ? vals[5] : NULL);
        jw_key(&w, "events");
        jw_arr(&w);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
            if (strncmp(p, "event=", 6) == 0) jw_strn(&w, p + 6, strcspn(p + 6, "\n"));
        jw_arr_end(&w);
        jw_obj_end(&w);
        jw_end(&w);
    } else {
        char tb[32];
        printf("valid receipt: %s at %s: %s (reason %s, level %s, policy %s)\n",
               shown(vals[0]), fmt_time(at, tb), vals[2], vals[3], vals[4],
               vals[5][0] ? shown(vals[5]) : "none");
    }
    free(buf);
    return EXIT_DONE;
}
