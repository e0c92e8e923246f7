/*
 * keyward-relay for Windows: carries SSH agent connections to an agent,
 * giving every client its own upstream connection.
 *
 *   keyward-relay [-d] LISTEN UPSTREAM
 *
 * LISTEN and UPSTREAM are named pipes (\\.\pipe\NAME), or "-" for
 * stdin/stdout, so that a program on the other side of a pipe (socat in
 * WSL, say) can run the relay for each of its clients. It runs in the
 * foreground until Ctrl-C, or until its one stdin/stdout client is gone.
 * This file parses arguments and sets up the process; relaying lives in
 * src/relay/relay.c and the Windows specifics in src/platform/win32*.c.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <windows.h>

#include "base/err.h"
#include "base/log.h"
#include "cli.h"
#include "platform/platform.h"
#include "platform/win32_wide.h"
#include "relay/relay.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "unknown"
#endif

/* What every pipe name starts with; the rest may not hold a separator. */
#define PIPE_PREFIX       "\\\\.\\pipe\\"
#define PIPE_PREFIX_SLASH "//./pipe/"
#define PIPE_NAME_MAX     256
/* How long stdout may take the last replies after the relay is done. */
#define STDOUT_DRAIN_MS 5000

const char *const cli_progname = "keyward-relay";

struct options {
    bool debug;
    const char *listen;   /* a pipe name with backslashes, or NULL for stdin/stdout */
    const char *upstream; /* likewise */
    char listen_buf[PIPE_NAME_MAX + 1];
    char upstream_buf[PIPE_NAME_MAX + 1];
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-d] LISTEN UPSTREAM\n"
            "       %s --help | --version\n"
            "\n"
            "Relays SSH agent connections from LISTEN to the agent at UPSTREAM. Every\n"
            "client connection gets its own upstream connection; requests and replies\n"
            "pass through unchanged, and frames over 256 KiB are refused.\n"
            "\n"
            "  LISTEN     a named pipe to serve (\\\\.\\pipe\\NAME; no other program may\n"
            "             serve it already), or - to serve stdin/stdout as one client\n"
            "  UPSTREAM   the agent's named pipe (e.g. %s),\n"
            "             or - for stdin/stdout (one client)\n"
            "  -d         log every connection and request type to stderr\n"
            "  --help     show this help\n"
            "  --version  show the version\n"
            "\n"
            "Pipe names may also be written //./pipe/NAME. Only processes of our own\n"
            "user (and SYSTEM) may connect to LISTEN. Stop the relay with Ctrl-C.\n",
            cli_progname, cli_progname, PLATFORM_DEFAULT_PIPE);
}

/*
 * "-" gives NULL (stdin/stdout). A pipe name, with backslashes or with
 * forward slashes (which need no quoting in a shell or in socat's EXEC),
 * is written to buf as \\.\pipe\NAME; NAME must be non-empty and hold no
 * further separator, as Windows requires.
 */
static const char *parse_address(const char *arg, const char *what, char *buf, size_t bufsize)
{
    size_t plen = strlen(PIPE_PREFIX), len = strlen(arg);
    const char *name = arg + plen;

    if (strcmp(arg, "-") == 0)
        return NULL;
    if (len <= plen || len >= bufsize ||
        (_strnicmp(arg, PIPE_PREFIX, plen) != 0 && _strnicmp(arg, PIPE_PREFIX_SLASH, plen) != 0) ||
        strpbrk(name, "\\/") != NULL)
        cli_die("invalid %s \"%s\": use \\\\.\\pipe\\NAME, or - for stdin/stdout", what, arg);
    snprintf(buf, bufsize, "%s%s", PIPE_PREFIX, name);
    return buf;
}

static void parse_args(int argc, char **argv, struct options *o)
{
    struct cli_relay_args args;

    memset(o, 0, sizeof(*o));
    cli_relay_args(argc, argv, usage, KEYWARD_VERSION, &args);
    o->debug = args.debug;
    o->listen = parse_address(args.listen, "LISTEN", o->listen_buf, sizeof(o->listen_buf));
    o->upstream =
        parse_address(args.upstream, "UPSTREAM", o->upstream_buf, sizeof(o->upstream_buf));
    /* Pipe names are not case-sensitive. */
    if (o->listen != NULL && o->upstream != NULL && _stricmp(o->listen, o->upstream) == 0)
        cli_die("LISTEN and UPSTREAM are the same pipe: the relay would relay to itself");
}

/* The pipe is someone else's: say so, and what to do, rather than "access denied". */
static void die_pipe_in_use(const char *name)
{
    if (_stricmp(name, PLATFORM_DEFAULT_PIPE) == 0)
        cli_die("%s is already served by another program, most likely an agent\n"
                "(keyward-agent, or Windows' own \"OpenSSH Authentication Agent\" service).\n"
                "A relay cannot serve the pipe its clients' agent holds: give it another pipe,\n"
                "e.g. \\\\.\\pipe\\keyward-relay",
                name);
    cli_die("%s is already served by another program (an agent, or another keyward-relay?).\n"
            "Stop it, or give the relay another pipe to listen on",
            name);
}

/* ---- the running relay ---- */

struct runtime {
    uv_loop_t loop;
    struct relay relay;
    uv_signal_t sigint, sigbreak, sighup;
};

static void on_signal(uv_signal_t *s, int signum)
{
    struct runtime *rt = s->data;

    log_debug("shutting down: %s", signum == SIGINT     ? "interrupted"
                                   : signum == SIGBREAK ? "Ctrl-Break"
                                                        : "console closed");
    relay_close(&rt->relay);
}

int main(int argc, char **argv)
{
    struct options o;
    struct runtime rt;
    char err[512], **utf8_argv;
    int serve_err, r;

    /* Pipe names as UTF-8, as the platform layer reads them. */
    if ((utf8_argv = win32_utf8_argv(&argc)) != NULL)
        argv = utf8_argv;
    parse_args(argc, argv, &o);
    log_init(cli_progname, o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, LOG_SINK_STDERR);
    if ((o.listen == NULL || o.upstream == NULL) && relay_check_stdio(err, sizeof(err)) != 0)
        cli_die("%s", err);
    /* Our user SID: the peer check on LISTEN and its DACL need it. */
    if (platform_init_user(err, sizeof(err)) != 0)
        cli_die("%s", err);
    /* Wine ignores FILE_FLAG_FIRST_PIPE_INSTANCE: ask as a client first. */
    if (o.listen != NULL && platform_pipe_in_use(o.listen))
        die_pipe_in_use(o.listen);
    /* Requests carry private keys (ssh-add): keep other processes out of our memory. */
    (void)platform_harden_process(); /* logs why it failed; not fatal */

    memset(&rt, 0, sizeof(rt));
    uv_loop_init(&rt.loop);
    relay_init(&rt.relay, &rt.loop, o.upstream);
    cli_watch_signal(&rt.loop, &rt.sigint, SIGINT, on_signal, &rt);
    cli_watch_signal(&rt.loop, &rt.sigbreak, SIGBREAK, on_signal, &rt);
    cli_watch_signal(&rt.loop, &rt.sighup, SIGHUP, on_signal, &rt); /* console window closed */
    log_debug("relaying %s to %s", o.listen != NULL ? o.listen : "stdin/stdout",
              o.upstream != NULL ? o.upstream : "stdin/stdout");
    if (o.listen == NULL) {
        serve_err = relay_serve_stdio(&rt.relay);
    } else {
        serve_err = relay_listen_name(&rt.relay, o.listen);
        /* Lost a race since the check above, where Windows enforces the flag. */
        if (serve_err == KW_ERR_DENIED)
            die_pipe_in_use(o.listen);
        if (serve_err == 0)
            log_debug("listening on %s for user %s (pid %lu)", o.listen, platform_user_sid(),
                      GetCurrentProcessId());
    }
    /* Until Ctrl-C, or until the one stdio client is gone. */
    if (serve_err == 0)
        uv_run(&rt.loop, UV_RUN_DEFAULT);
    relay_close(&rt.relay);
    cli_close_handle((uv_handle_t *)&rt.sigint);
    cli_close_handle((uv_handle_t *)&rt.sigbreak);
    cli_close_handle((uv_handle_t *)&rt.sighup);
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    if ((r = uv_loop_close(&rt.loop)) != 0)
        log_error("event loop still busy at exit: %s", uv_strerror(r));
    /* The relay has closed its side of stdout; let the last replies reach it. */
    if (o.listen == NULL || o.upstream == NULL)
        platform_stdio_drain(STDOUT_DRAIN_MS);
    if (serve_err != 0)
        cli_die("cannot serve %s", o.listen != NULL ? o.listen : "stdin/stdout");
    /* With one client (stdio), say whether it ended well: 0 if it closed, 1 otherwise. */
    return rt.relay.single && rt.relay.failed ? 1 : 0;
}
