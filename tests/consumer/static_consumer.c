/* A host linked with the static librisk.a that defines functions named as
 * librisk's internal helpers are (datasync, intern, map_add: common
 * names). The archive keeps its helpers local, so this links, and each
 * side calls its own. It also uses the journal store, whose objects
 * define some of those helpers. */
#include <librisk.h>
#include <librisk/store.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int datasync(int fd);
int intern(const char *s);
int map_add(void);
int datasync(int fd) { return fd + 1000; }
int intern(const char *s) { return s != NULL; }
int map_add(void) { return 7; }

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "static_consumer.journal";
    unlink(path);
    risk_store st;
    risk_engine *e = NULL;
    risk_journal_options o = RISK_JOURNAL_OPTIONS_INIT;
    if (risk_journal_open(&st, path, &o, NULL) != RISK_OK ||
        risk_engine_new(&e, &st, NULL) != RISK_OK) {
        fprintf(stderr, "open: %s\n", risk_error_last());
        return 1;
    }
    risk_event *ev = NULL;
    int rc = risk_event_new(&ev, "e1", "alice", "leakedCredentials", RISK_LEVEL_HIGH, 0);
    if (rc == RISK_OK)
        rc = risk_engine_ingest(e, "host", ev, 0);
    risk_event_free(ev);
    risk_user *u = NULL;
    if (rc == RISK_OK)
        rc = risk_engine_user(&u, e, "alice");
    int ok = rc == RISK_OK && risk_user_risk_level(u) == RISK_LEVEL_HIGH &&
             datasync(1) == 1001 && intern("x") == 1 && map_add() == 7;
    risk_user_free(u);
    risk_engine_free(e);
    unlink(path);
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
