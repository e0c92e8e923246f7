/*
 * keyward-relay: carries SSH agent connections to an agent, giving every
 * client its own upstream connection.
 *
 *   keyward-relay [-d] LISTEN UPSTREAM
 *
 * LISTEN and UPSTREAM are Unix socket paths, or "-" for stdin/stdout. This
 * file parses arguments and sets up the listening socket, the signals and
 * the process; relaying lives in src/relay/relay.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "cli.h"
#include "platform/platform.h"
#include "relay/relay.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "unknown"
#endif

/* Each client costs two descriptors; ask for room for many. */
#define WANT_OPEN_FILES 65536

const char *const cli_progname = "keyward-relay";

struct options {
    bool debug;
    const char *listen;
    const char *upstream;
};

/* What main() must undo on the way out. */
static const char *socket_path; /* the listening socket we created */
static struct stat socket_stat;
static int stdio_flags[2] = {-1, -1}; /* stdin/stdout file status flags before libuv */

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
            "  LISTEN     a Unix socket path to create (mode 0600; it must not exist and is\n"
            "             removed on exit), or - to serve stdin/stdout as one client\n"
            "  UPSTREAM   the agent's Unix socket path, or - for stdin/stdout (one client)\n"
            "  -d         log every connection and request type to stderr\n"
            "  --help     show this help\n"
            "  --version  show the version\n"
            "\n"
            "Only our own uid and root may connect to LISTEN.\n",
            cli_progname, cli_progname);
}

static void remove_socket(void)
{
    struct stat st;

    /* Only the socket we made: not one that replaced it meanwhile. */
    if (socket_path != NULL && lstat(socket_path, &st) == 0 && st.st_dev == socket_stat.st_dev &&
        st.st_ino == socket_stat.st_ino)
        (void)unlink(socket_path);
    socket_path = NULL;
}

static void parse_args(int argc, char **argv, struct options *o)
{
    struct cli_relay_args args;

    cli_relay_args(argc, argv, usage, KEYWARD_VERSION, &args);
    o->debug = args.debug;
    o->listen = args.listen;
    o->upstream = args.upstream;
    if (strcmp(o->listen, o->upstream) == 0)
        cli_die("LISTEN and UPSTREAM are the same path: the relay would relay to itself");
}

/* Creates LISTEN as a 0600 socket; refuses a path that already exists. */
static int create_listener(const char *path)
{
    struct stat st;
    char err[512];
    int fd;

    /*
     * An existing path may be a running agent's or another relay's socket:
     * never take it over, and say so rather than "address in use".
     */
    if (lstat(path, &st) == 0)
        cli_die("%s already exists: is another relay or agent serving it? Remove it first if "
                "not",
                path);
    if (errno != ENOENT)
        cli_die("cannot use %s: %s", path, strerror(errno));
    if (platform_listen_unix(path, &fd, err, sizeof(err)) != 0)
        cli_die("%s", err);
    socket_path = path;
    if (lstat(path, &socket_stat) != 0)
        cli_die("cannot stat %s after creating it: %s", path, strerror(errno));
    return fd;
}

static void raise_open_files_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= WANT_OPEN_FILES)
        return;
    rl.rlim_cur = rl.rlim_max < WANT_OPEN_FILES ? rl.rlim_max : WANT_OPEN_FILES;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * libuv makes the descriptors it serves non-blocking, which would also
 * surprise a shell or program that shares them with us after we exit.
 */
static void save_stdio_flags(void)
{
    stdio_flags[0] = fcntl(STDIN_FILENO, F_GETFL);
    stdio_flags[1] = fcntl(STDOUT_FILENO, F_GETFL);
}

static void restore_stdio_flags(void)
{
    if (stdio_flags[0] != -1)
        (void)fcntl(STDIN_FILENO, F_SETFL, stdio_flags[0]);
    if (stdio_flags[1] != -1)
        (void)fcntl(STDOUT_FILENO, F_SETFL, stdio_flags[1]);
}

/* ---- the running relay ---- */

struct runtime {
    uv_loop_t loop;
    struct relay relay;
    uv_signal_t sigint, sigterm, sighup;
};

static void on_signal(uv_signal_t *s, int signum)
{
    struct runtime *rt = s->data;

    log_debug("shutting down: %s", signum == SIGINT   ? "interrupted"
                                   : signum == SIGHUP ? "hangup"
                                                      : "terminated");
    relay_close(&rt->relay);
}

int main(int argc, char **argv)
{
    struct options o;
    struct runtime rt;
    bool listen_stdio, upstream_stdio;
    char err[512];
    int fd, serve_err, r, rc;

    /* A failure once the socket exists must not leave it behind. */
    cli_set_die_cleanup(remove_socket);
    parse_args(argc, argv, &o);
    log_init(cli_progname, o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, LOG_SINK_STDERR);
    listen_stdio = strcmp(o.listen, "-") == 0;
    upstream_stdio = strcmp(o.upstream, "-") == 0;
    if ((listen_stdio || upstream_stdio) && relay_check_stdio(err, sizeof(err)) != 0)
        cli_die("%s", err);

    signal(SIGPIPE, SIG_IGN);
    /* Requests carry private keys (ssh-add): keep them out of core dumps and ptrace. */
    if (platform_harden_process() != 0)
        log_debug("cannot fully protect process memory: %s", strerror(errno));
    raise_open_files_limit();

    memset(&rt, 0, sizeof(rt));
    uv_loop_init(&rt.loop);
    relay_init(&rt.relay, &rt.loop, upstream_stdio ? NULL : o.upstream);
    /* Before the socket exists, so that no signal can leave it behind. */
    cli_watch_signal(&rt.loop, &rt.sigint, SIGINT, on_signal, &rt);
    cli_watch_signal(&rt.loop, &rt.sigterm, SIGTERM, on_signal, &rt);
    cli_watch_signal(&rt.loop, &rt.sighup, SIGHUP, on_signal, &rt);
    if (listen_stdio || upstream_stdio)
        save_stdio_flags();
    log_debug("relaying %s to %s", listen_stdio ? "stdin/stdout" : o.listen,
              upstream_stdio ? "stdin/stdout" : o.upstream);
    if (listen_stdio) {
        serve_err = relay_serve_stdio(&rt.relay);
    } else {
        fd = create_listener(o.listen);
        serve_err = relay_listen_fd(&rt.relay, fd);
    }
    /* Until a signal, or until the one stdio client is gone. */
    if (serve_err == 0)
        uv_run(&rt.loop, UV_RUN_DEFAULT);
    relay_close(&rt.relay);
    cli_close_handle((uv_handle_t *)&rt.sigint);
    cli_close_handle((uv_handle_t *)&rt.sigterm);
    cli_close_handle((uv_handle_t *)&rt.sighup);
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    if ((r = uv_loop_close(&rt.loop)) != 0)
        log_error("event loop still busy at exit: %s", uv_strerror(r));
    remove_socket();
    restore_stdio_flags();
    if (serve_err != 0)
        cli_die("cannot serve %s", o.listen);
    /* With one client (stdio), say whether it ended well: 0 if it closed, 1 otherwise. */
    rc = rt.relay.single && rt.relay.failed ? 1 : 0;
    return rc;
}
