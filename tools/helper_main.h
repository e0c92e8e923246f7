/*
 * keyward's helper processes (keyward-pkcs11-helper, keyward-sk-helper):
 * the part they share. The agent starts a helper with one bidirectional
 * stream as standard input and speaks the provider helper protocol on it
 * (docs/providers.md). This is that side of it, once: the command line,
 * hardening, the event loop over the shared framed connection, decoding
 * each request, replies, and the end. Each helper gives only what it does
 * with a request (its handler) and what it is for (its usage text).
 */
#ifndef KEYWARD_TOOLS_HELPER_MAIN_H
#define KEYWARD_TOOLS_HELPER_MAIN_H

#include "base/wire.h"
#include "proto/helper_msg.h"

struct helper_proc; /* one helper's connection to the agent; private to helper_main.c */

struct helper_program {
    const char *name;  /* "keyward-sk-helper": the log's and --version's name */
    const char *about; /* the usage text's paragraph on what it does */
    /*
     * A request decoded well (malformed ones got a FAIL already). The
     * handler answers it with helper_proc_send() or helper_proc_fail(),
     * and may end the helper with helper_proc_finish().
     */
    void (*handle)(struct helper_proc *hp, const struct helper_request *req, void *ctx);
    void *ctx;
};

/*
 * The whole program: parses -d, --help and --version, hardens the process,
 * serves standard input until the agent closes it, and returns the exit
 * status (0 on a clean end, 1 on an error, or what the handler gave
 * helper_proc_finish()).
 */
int helper_main(int argc, char **argv, const struct helper_program *prog);

/* Sends one reply (w's whole body); if w failed, a FAIL saying the reply was too large. */
void helper_proc_send(struct helper_proc *hp, struct wire_writer *w);

/* Logs "WHAT refused: WHY", the one log line of every refusal, and sends FAIL with why. */
void helper_proc_fail(struct helper_proc *hp, const char *what, const char *why);

/* Stops reading; the replies queued go out, then the helper exits with status. */
void helper_proc_finish(struct helper_proc *hp, int status);

#endif
