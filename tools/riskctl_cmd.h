/* riskctl: the commands and the helpers they share with main. */
#ifndef RISKCTL_CMD_H
#define RISKCTL_CMD_H

#include "riskctl.h"

/* How a command opens the store. */
/* OPEN_SIGNIN: for writing, or read-only when another process holds the
 * journal for writing (a sign-in decides without writing, R-SC-2).
 * OPEN_EXISTING: for writing, by a command that acts on records that must
 * exist (resolve, dismiss, …): without a journal it runs on an empty store
 * and fails there, creating no file. OPEN_SIGNIN does the same. */
enum { OPEN_READ = 0, OPEN_WRITE = 1, OPEN_BULK = 2, OPEN_SIGNIN = 3, OPEN_EXISTING = 4 };

/* A command option: name ("--note"), whether it takes a value; set and
 * val are filled by get_opts(). Arrays end with a NULL name. */
typedef struct opt {
    const char *name;
    int has_arg;
    int set;
    const char *val;
} opt;

/* Parse options out of argv; positionals are moved to the front of argv
 * and counted in *npos. Returns 0, or EXIT_USAGE after reporting. */
int get_opts(ctl *c, int argc, char **argv, opt *o, int *npos);
/* Open the store and the engine (once). Returns 0 or an exit status. */
int open_engine(ctl *c, int mode);
const char *store_path(ctl *c);
const char *synopsis_of(const char *name, const char *sub);

int cmd_user_set(ctl *c, int argc, char **argv);
int cmd_user_show(ctl *c, int argc, char **argv);
int cmd_users(ctl *c, int argc, char **argv);
int cmd_event_add(ctl *c, int argc, char **argv);
int cmd_event_show(ctl *c, int argc, char **argv);
int cmd_events(ctl *c, int argc, char **argv);
int cmd_close(ctl *c, int argc, char **argv);
int cmd_dismiss(ctl *c, int argc, char **argv);
int cmd_confirm(ctl *c, int argc, char **argv);
int cmd_reset_password(ctl *c, int argc, char **argv);
int cmd_password_changed(ctl *c, int argc, char **argv);
int cmd_policy_set(ctl *c, int argc, char **argv);
int cmd_policy_list(ctl *c, int argc, char **argv);
int cmd_policy_remove(ctl *c, int argc, char **argv);
int cmd_signin(ctl *c, int argc, char **argv);
int cmd_explain(ctl *c, int argc, char **argv);
int cmd_history(ctl *c, int argc, char **argv);
int cmd_expire(ctl *c, int argc, char **argv);
int cmd_check(ctl *c, int argc, char **argv);
int cmd_anchor(ctl *c, int argc, char **argv);
int cmd_policy_what_if(ctl *c, int argc, char **argv);
int cmd_receipt_verify(ctl *c, int argc, char **argv);
int cmd_compact(ctl *c, int argc, char **argv);
int cmd_backup(ctl *c, int argc, char **argv);

/* Growable arrays of owned records, filled by the engine's visitors. */
typedef struct vec {
    void **items;
    size_t n, cap;
} vec;
int vec_push(vec *v, void *item);
int visit_user(const risk_user *u, void *arg);
int visit_event(const risk_event *e, void *arg);
int visit_policy(const risk_policy *p, void *arg);
int visit_history(const risk_history *h, void *arg);
void vec_free(vec *v, void (*fn)(void *));
void free_policy(void *p);

/* Check the positional count; report the synopsis otherwise. */
int want_pos(ctl *c, int npos, int min, int max);
/* Validate an id before opening the store (R-IV-1: nothing changes). */
int check_id(ctl *c, const char *id);
/* Build a policy from NAME and o[0..4] = --threshold, --control, --mode,
 * --include, --exclude. Returns 0 or an exit status (reported). */
int build_policy(ctl *c, const char *name, opt *o, risk_policy **out);

/* The receipt key beside the journal (riskctl_audit.c): `<journal>.key`,
 * 32 random bytes, mode 0600. With create, made on first use; for
 * --memory a per-process random key. Fills key[32]; returns 0, or
 * RISK_ENOTFOUND (no key and not create) or RISK_EIO (message in *why). */
int receipt_key(ctl *c, int create, uint8_t key[32], char *why, size_t whycap);

#endif
