/*
 * keyward's programs: the little that their front ends in tools/ share.
 *
 * Each program defines cli_progname, the name its messages start with, as
 *     const char *const cli_progname = "keyward-relay";
 * so that it is set before main() runs and any message can use it.
 */
#ifndef KEYWARD_CLI_H
#define KEYWARD_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <uv.h>

#include "base/log.h"

extern const char *const cli_progname;

/*
 * Registers what cli_die() must undo before exiting (e.g. remove the
 * socket the program created); NULL for nothing.
 */
void cli_set_die_cleanup(void (*cleanup)(void));

/* Prints "PROGNAME: message" to stderr, runs the cleanup, exits 1. */
void cli_die(const char *fmt, ...) KW_PRINTF(1, 2);

/*
 * Starts s (not yet initialised) calling cb on signum, with s->data = data.
 * The handle does not keep the loop alive by itself: the program runs while
 * it serves. Logs if the signal cannot be caught.
 */
void cli_watch_signal(uv_loop_t *loop, uv_signal_t *s, int signum, uv_signal_cb cb, void *data);

/* Closes a libuv handle unless it is already closing (signals, timers at shutdown). */
void cli_close_handle(uv_handle_t *h);

/* keyward-relay's command line, the same on every platform. */
struct cli_relay_args {
    bool debug;           /* -d */
    const char *listen;   /* as given; "-" for stdin/stdout */
    const char *upstream; /* as given; "-" for stdin/stdout */
};

/*
 * Parses [-d] LISTEN UPSTREAM, --help and --version (printing version as
 * keyward-relay's), refusing a missing or empty address and "-" for both.
 * Exits for --help, --version and usage errors (usage() prints the text).
 * What an address may be is the platform's to check.
 */
void cli_relay_args(int argc, char **argv, void (*usage)(FILE *out), const char *version,
                    struct cli_relay_args *out);

#endif
