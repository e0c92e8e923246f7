/*
 * keyward-probe: checks that point at any SSH agent and report how it
 * behaves at the edges of the protocol, starting with the seed's failure
 * (a refused session-bind must not cost the client its connection).
 *
 * Each check has a stable kebab-case name and ends with one verdict. The
 * checks are pure protocol logic over transport.h; they never print. A
 * FAIL carries what was sent, what came back and why it matters, so the
 * front end (tools/keyward-probe.c) only formats results.
 *
 * The probe never touches the user's own keys: it removes nothing but the
 * throwaway keys it added itself (by blob), and never sends REMOVE_ALL.
 */
#ifndef KEYWARD_PROBE_H
#define KEYWARD_PROBE_H

#include <stdbool.h>
#include <stddef.h>

enum probe_verdict {
    PROBE_PASS,
    PROBE_FAIL,
    PROBE_UNSUPPORTED, /* the agent lacks the feature and said so cleanly */
    PROBE_SKIPPED,     /* not run: --no-modify and the check adds keys or locks */
    PROBE_ERROR,       /* the probe itself could not run the check */
};

#define PROBE_TEXT_MAX 1024

struct probe_result {
    enum probe_verdict verdict;
    char summary[PROBE_TEXT_MAX]; /* one line: what was observed */
    /* Set for PROBE_FAIL only; empty otherwise. */
    char sent[PROBE_TEXT_MAX]; /* the request(s), with hex dumps */
    char got[PROBE_TEXT_MAX];  /* what came back, classified, with hex dumps */
    char why[PROBE_TEXT_MAX];  /* why it matters to clients */
};

struct probe_options {
    const char *address; /* socket path or pipe name */
    int timeout_ms;      /* per reply */
    bool no_modify;      /* skip checks that add keys or lock the agent */
};

struct probe_check {
    const char *name;        /* stable, kebab-case */
    const char *description; /* one line, for --list */
    bool modifies;           /* adds keys or locks the agent */
    /*
     * Can stop a defective agent altogether (and with it the user's keys),
     * so it runs only when named with --only, never in a default run.
     */
    bool explicit_only;
    int (*run)(const struct probe_options *opt, struct probe_result *res);
};

/* Every check, in the order they run. */
extern const struct probe_check probe_checks[];
extern const size_t probe_check_count;

/* The check with this name, or NULL. */
const struct probe_check *probe_find_check(const char *name);

/* How many connections the checks hold open at once, at most. */
unsigned probe_max_connections(void);

/*
 * Runs one check, or records it as skipped under --no-modify. Always fills
 * res. Returns 0, or a negative KW_ERR_* when the probe itself failed (res
 * then says PROBE_ERROR and why).
 */
int probe_run_check(const struct probe_check *check, const struct probe_options *opt,
                    struct probe_result *res);

/* "pass", "FAIL", "not supported", "skipped", "error": for the table. */
const char *probe_verdict_label(enum probe_verdict v);
/* "pass", "fail", "unsupported", "skipped", "error": for --json. */
const char *probe_verdict_id(enum probe_verdict v);

#endif
