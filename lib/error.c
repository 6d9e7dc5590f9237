/* Error codes, their static descriptions, and the thread-local last error
 * (libgit2's git_error_last model): a failing call leaves a message that
 * names the offending argument; successful calls leave it alone. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

#define RISK_ERRMSG_MAX 512

static _Thread_local char tls_msg[RISK_ERRMSG_MAX];
static _Thread_local int tls_code;

/* One row per code, indexed by -code. The table is the documentation. */
static const struct {
    const char *name;
    const char *text;
} error_table[] = {
    {"RISK_OK", "success"},
    {"RISK_EINVAL", "invalid argument"},
    {"RISK_ENOMEM", "out of memory"},
    {"RISK_ENOTFOUND", "not found"},
    {"RISK_EEXISTS", "already exists"},
    {"RISK_ETRANSITION", "transition not allowed"},
    {"RISK_ENOMFA", "user not registered for MFA"},
    {"RISK_EDELETED", "user is deleted"},
    {"RISK_EBUSY", "store is busy"},
    {"RISK_ECORRUPT", "corrupt data"},
    {"RISK_EIO", "input/output error"},
    {"RISK_EUNSUPPORTED", "not supported by the store"},
    {"RISK_ECONFLICT", "record changed concurrently"},
    {"RISK_ERANGE", "buffer too small"},
    {"RISK_EREADONLY", "store is read-only"},
    {"RISK_ESTORE", "store failure"},
    {"RISK_EVERIFY", "verification failed"},
};

#define N_ERRORS (sizeof error_table / sizeof error_table[0])

static int known(int code)
{
    return code <= 0 && (unsigned)(-(long)code) < N_ERRORS;
}

const char *risk_strerror(int code)
{
    return known(code) ? error_table[-code].text : "unknown error";
}

const char *risk_error_name(int code)
{
    return known(code) ? error_table[-code].name : "RISK_E?";
}

const char *risk_error_last(void)
{
    return tls_msg;
}

int risk_error_last_code(void)
{
    return tls_code;
}

void risk_error_clear(void)
{
    tls_msg[0] = '\0';
    tls_code = 0;
}

/* A message cut at n bytes (n < RISK_ERRMSG_MAX) ends before a UTF-8
 * sequence the cut would split: callers print it, hosts log it as text. */
static void end_whole(char *s, size_t n)
{
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--; /* back over continuation bytes to their lead */
    if (i > 0 && (unsigned char)s[i - 1] >= 0xC0) {
        unsigned char lead = (unsigned char)s[i - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (n - (i - 1) < need)
            n = i - 1;
    }
    s[n] = '\0';
}

int risk_error_set(int code, const char *message)
{
    tls_code = code;
    if (message == NULL)
        message = risk_strerror(code);
    size_t n = strlen(message);
    if (n >= RISK_ERRMSG_MAX) {
        n = RISK_ERRMSG_MAX - 1;
        memcpy(tls_msg, message, n);
        end_whole(tls_msg, n);
    } else
        memcpy(tls_msg, message, n + 1);
    return code;
}

int risk_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        tls_msg[0] = '\0';
    else if ((size_t)n >= sizeof tls_msg)
        end_whole(tls_msg, sizeof tls_msg - 1);
    tls_code = code;
    return code;
}
