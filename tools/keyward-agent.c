/*
 * keyward-agent: an SSH agent with OpenSSH's command line.
 *
 *   keyward-agent [-c | -s] [-DdTU] [-a bind_address] [-E fingerprint_hash] [-l file]
 *                 [-O option] [-P allowed_providers] [-t life] [command [arg ...]]
 *   keyward-agent [-c | -s] -k
 *   keyward-agent -u
 *   keyward-agent -V
 *
 * This file parses arguments, sets up the socket and the process (daemon,
 * foreground or parent of a command) and runs the server. Protocol
 * decisions live in src/agent/agent.c.
 *
 * Started by a service manager with a socket (systemd socket activation,
 * LISTEN_PID and LISTEN_FDS), it serves that socket in the foreground and
 * leaves the socket file to the manager; see docs/systemd.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <openssl/crypto.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent_options.h"
#include "agent_socket.h"
#include "server/audit_sink.h"
#include "server/server.h"
#include "base/log.h"
#include "cli.h"
#include "crypto/key.h"
#include "platform/platform.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "unknown"
#endif

/* Room in OpenSSL's locked, non-dumpable secure heap for private keys. */
#define SECURE_HEAP_SIZE (8u * 1024 * 1024)
#define SECURE_HEAP_MIN  64

const char *const cli_progname = "keyward-agent";

struct options {
    bool csh;          /* -c, or $SHELL ends in csh */
    bool shell_chosen; /* -c or -s given */
    bool foreground;   /* -D or -d */
    bool debug;        /* -d */
    bool kill;         /* -k */
    bool tmp_socket;   /* -T: the socket in a new directory under $TMPDIR */
    bool no_cleanup;   /* -U: leave stale sockets in ~/.ssh/agent alone */
    int cleanup_only;  /* -u: clean them up and exit; -uu: any host's */
    const char *bind_address;
    struct agent_options agent; /* -E, -l, -O, -P, -t: as keyward-agent.exe takes them */
    char **command;
};

/* What main() must undo on the way out. */
static char socket_path[4096];
static char socket_dir[3072];
static pid_t parent_pid = -1; /* subprocess mode: exit when it is gone */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: %s [-c | -s] [-DdTU] [-a bind_address] [-E fingerprint_hash] [-l file]\n"
        "                     [-O option] [-P allowed_providers] [-t life] [command [arg ...]]\n"
        "       %s [-c | -s] -k\n"
        "       %s -u\n"
        "       %s -V\n"
        "\n"
        "  -a bind_address  listen on this Unix socket path\n"
        "  -c               print C-shell commands (default if $SHELL ends in csh)\n"
        "  -s               print Bourne-shell commands\n"
        "  -D               stay in the foreground\n"
        "  -d               stay in the foreground and log every request to stderr\n"
        "  -E hash          fingerprints in logs and prompts: sha256 (default) or md5\n"
        "  -k               kill the agent named by $SSH_AGENT_PID\n"
        "  -l file          append an audit log (JSON lines) to file; - for stderr\n"
        "  -O option        allow-remote-pkcs11, no-restrict-websafe or websafe-allow=LIST\n"
        "  -P providers     pattern-list of provider libraries that may be loaded\n"
        "  -T               put the socket under $TMPDIR, not in ~/.ssh/agent\n"
        "  -t life          default lifetime of added keys (e.g. 600, 10m, 1h30m)\n"
        "  -U               do not remove stale sockets from ~/.ssh/agent at start\n"
        "  -u               remove stale sockets from ~/.ssh/agent and exit (-uu: any host's)\n"
        "  -V               show the version (and the OpenSSL in use)\n"
        "  --help           show this help\n"
        "  --version        show the version\n",
        cli_progname, cli_progname, cli_progname, cli_progname);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'H'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *shell;
    size_t len;
    int ch;

    memset(o, 0, sizeof(*o));
    agent_options_init(&o->agent);
    /* "+": stop at the first non-option, which starts the command. */
    while ((ch = getopt_long(argc, argv, "+cDdksTUuVa:" AGENT_OPTIONS_GETOPT, longopts, NULL)) !=
           -1) {
        if (agent_options_parse(&o->agent, ch, optarg))
            continue;
        switch (ch) {
        case 'c':
            if (o->shell_chosen && !o->csh)
                cli_die("-c and -s are mutually exclusive");
            o->csh = o->shell_chosen = true;
            break;
        case 's':
            if (o->shell_chosen && o->csh)
                cli_die("-c and -s are mutually exclusive");
            o->shell_chosen = true;
            break;
        case 'D':
            o->foreground = true;
            break;
        case 'd':
            o->foreground = o->debug = true;
            break;
        case 'k':
            o->kill = true;
            break;
        case 'a':
            o->bind_address = optarg;
            break;
        case 'T':
            o->tmp_socket = true;
            break;
        case 'U':
            o->no_cleanup = true;
            break;
        case 'u':
            o->cleanup_only++;
            break;
        case 'H':
            usage(stdout);
            exit(0);
        case 'V':
            /* Line 1 is the version alone, for scripts; line 2 the libcrypto in use. */
            printf("keyward-agent %s\n%s\n", KEYWARD_VERSION, OpenSSL_version(OPENSSL_VERSION));
            exit(0);
        default:
            usage(stderr);
            exit(1);
        }
    }
    o->command = argv + optind;
    if (*o->command != NULL && (o->shell_chosen || o->kill || o->foreground || o->cleanup_only)) {
        usage(stderr);
        exit(1);
    }
    if (o->kill && (o->foreground || o->bind_address != NULL)) {
        usage(stderr);
        exit(1);
    }
    if (o->tmp_socket && o->bind_address != NULL)
        cli_die("-T and -a cannot be used together: -a names the socket");
    if (!o->shell_chosen) {
        /* Same rule as ssh-agent: a shell whose name ends in "csh". */
        shell = getenv("SHELL");
        if (shell != NULL && (len = strlen(shell)) >= 3 && strcmp(shell + len - 3, "csh") == 0)
            o->csh = true;
    }
}

/* -u: what ssh-agent -u does, for the sockets both agents put in ~/.ssh/agent. */
static int clean_stale_sockets(const struct options *o)
{
    char err[512];
    unsigned removed = 0;

    log_init(cli_progname, o->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, LOG_SINK_STDERR);
    if (agent_socket_clean_stale(o->cleanup_only > 1, &removed, err, sizeof(err)) != 0)
        cli_die("%s", err);
    printf("Deleted %u stale agent socket%s in ~/.ssh/agent\n", removed, removed == 1 ? "" : "s");
    return 0;
}

static int kill_agent(const struct options *o)
{
    const char *pidstr = getenv("SSH_AGENT_PID");
    char *end;
    long pid;

    if (pidstr == NULL || *pidstr == '\0')
        cli_die("SSH_AGENT_PID is not set, cannot kill agent");
    errno = 0;
    pid = strtol(pidstr, &end, 10);
    if (errno != 0 || *end != '\0' || pid < 2)
        cli_die("SSH_AGENT_PID=\"%s\" is not a valid pid", pidstr);
    if (kill((pid_t)pid, SIGTERM) != 0)
        cli_die("cannot kill agent pid %ld: %s", pid, strerror(errno));
    if (o->csh)
        printf("unsetenv SSH_AUTH_SOCK;\nunsetenv SSH_AGENT_PID;\n");
    else
        printf("unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\n");
    printf("echo Agent pid %ld killed;\n", pid);
    return 0;
}

static void print_env(const struct options *o, long pid, bool with_pid)
{
    if (o->csh) {
        printf("setenv SSH_AUTH_SOCK %s;\n", socket_path);
        if (with_pid)
            printf("setenv SSH_AGENT_PID %ld;\n", pid);
    } else {
        printf("SSH_AUTH_SOCK=%s; export SSH_AUTH_SOCK;\n", socket_path);
        if (with_pid)
            printf("SSH_AGENT_PID=%ld; export SSH_AGENT_PID;\n", pid);
    }
    printf("echo Agent pid %ld;\n", pid);
    fflush(stdout);
}

static void remove_socket(void)
{
    if (socket_path[0] != '\0')
        (void)unlink(socket_path);
    if (socket_dir[0] != '\0')
        (void)rmdir(socket_dir);
}

/*
 * Socket activation, systemd's sd_listen_fds(3) protocol: when LISTEN_PID is
 * our pid, LISTEN_FDS sockets were passed to us from fd 3 on. We take exactly
 * one, and it must be a listening Unix stream socket. Returns that fd (now
 * close-on-exec) and its address in name, or -1 if nothing was passed to us.
 * The variables are removed either way, so that the programs we start
 * (askpass, a command) never see them.
 */
static int activation_fd(char *name, size_t namesize)
{
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    struct sockaddr_un sun;
    socklen_t len;
    size_t plen;
    long pid = -1, nfds = 0; /* LISTEN_FDS unset: nothing passed */
    int fd = 3, val;
    char *end;

    if (pid_s != NULL) {
        errno = 0;
        pid = strtol(pid_s, &end, 10);
        if (errno != 0 || end == pid_s || *end != '\0')
            pid = -1;
    }
    if (fds_s != NULL) {
        errno = 0;
        nfds = strtol(fds_s, &end, 10);
        if (errno != 0 || end == fds_s || *end != '\0' || nfds < 0)
            nfds = -1;
    }
    (void)unsetenv("LISTEN_PID");
    (void)unsetenv("LISTEN_FDS");
    (void)unsetenv("LISTEN_FDNAMES");
    if (pid != (long)getpid() || nfds == 0)
        return -1;
    if (nfds < 0)
        cli_die("LISTEN_FDS from the service manager is not a number");
    if (nfds != 1)
        cli_die("the service manager passed %ld sockets (LISTEN_FDS); keyward-agent takes one",
                nfds);

    len = sizeof(val);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) != 0)
        cli_die("fd %d from the service manager: %s", fd, strerror(errno));
    if (val == 0)
        cli_die("fd %d from the service manager is not a listening socket", fd);
    len = sizeof(val);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len) != 0 || val != SOCK_STREAM)
        cli_die("fd %d from the service manager is not a stream socket", fd);
    memset(&sun, 0, sizeof(sun));
    len = sizeof(sun);
    if (getsockname(fd, (struct sockaddr *)&sun, &len) != 0 || sun.sun_family != AF_UNIX)
        cli_die("fd %d from the service manager is not a Unix socket", fd);
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        cli_die("fd %d from the service manager: %s", fd, strerror(errno));

    /* sun_path may lack a NUL; a leading NUL is Linux's abstract namespace. */
    plen = len > offsetof(struct sockaddr_un, sun_path)
               ? len - offsetof(struct sockaddr_un, sun_path)
               : 0;
    if (plen > 0 && sun.sun_path[0] == '\0')
        snprintf(name, namesize, "@%.*s", (int)plen - 1, sun.sun_path + 1);
    else if (plen > 0)
        snprintf(name, namesize, "%.*s", (int)strnlen(sun.sun_path, plen), sun.sun_path);
    else
        snprintf(name, namesize, "an unnamed socket");
    return fd;
}

/*
 * A helper program (keyward-pkcs11-helper, keyward-sk-helper): beside this
 * program (a build tree, or a relocated install), else where make install
 * puts it. NULL if neither exists; what needs it then fails with that reason.
 */
static const char *find_helper(char *path, size_t size, const char *name)
{
    size_t len = size;
    char *slash;

    if (uv_exepath(path, &len) == 0 && (slash = strrchr(path, '/')) != NULL &&
        (size_t)(slash - path) + 1 + strlen(name) + 1 <= size) {
        snprintf(slash, size - (size_t)(slash - path), "/%s", name);
        if (access(path, X_OK) == 0)
            return path;
    }
    snprintf(path, size, "%s/keyward/%s", KEYWARD_LIBEXECDIR, name);
    return access(path, X_OK) == 0 ? path : NULL;
}

static const char *find_pkcs11_helper(void)
{
    static char path[4096];

    return find_helper(path, sizeof(path), "keyward-pkcs11-helper");
}

/* keyward-sk-helper, found the same way: FIDO keys' signatures fail without it. */
static const char *find_sk_helper(void)
{
    static char path[4096];

    return find_helper(path, sizeof(path), "keyward-sk-helper");
}

/* Why platform_harden_process() failed at start-up, or 0. */
static int harden_err;

/* ---- the audit log ---- */

static struct audit_sink *audit_sink;

static void close_audit_log(void)
{
    audit_sink_close(audit_sink);
    audit_sink = NULL;
}

/*
 * Opens -l's file before the agent changes directory or detaches, so that
 * a mistake is reported at start (src/server/audit_sink.c: the sink, its thread and
 * what it accepts). The writer thread starts in run_agent(), after any fork.
 */
static void open_audit_log(const char *path)
{
    char err[512];

    if (path == NULL)
        return;
    if (audit_sink_open(&audit_sink, path, err, sizeof(err)) != 0) {
        remove_socket(); /* ours by now, unless passed by a service manager */
        cli_die("%s", err);
    }
    /* Writes what is queued when main() returns or exits. */
    atexit(close_audit_log);
}

/* ---- the running agent ---- */

struct runtime {
    uv_loop_t loop;
    struct agent agent;
    struct server server;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t parent_check;
    bool parent_check_active;
};

static void shutdown_runtime(struct runtime *rt, const char *why)
{
    log_info("shutting down: %s", why);
    server_close(&rt->server);
    /*
     * Clear the keys and remove the socket now, not once the loop has run
     * dry: that waits for running signatures and for askpass processes,
     * which get SERVER_PROMPT_KILL_MS after SIGTERM before SIGKILL. Nothing
     * is served any more (every connection is closed), and a job still
     * running holds its own reference to its key.
     */
    agent_cleanup(&rt->agent);
    remove_socket();
    socket_path[0] = '\0';
    socket_dir[0] = '\0';
    cli_close_handle((uv_handle_t *)&rt->sigint);
    cli_close_handle((uv_handle_t *)&rt->sigterm);
    cli_close_handle((uv_handle_t *)&rt->sighup);
    if (rt->parent_check_active)
        cli_close_handle((uv_handle_t *)&rt->parent_check);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct runtime *rt = s->data;

    shutdown_runtime(rt, signum == SIGINT   ? "interrupted"
                         : signum == SIGHUP ? "hangup"
                                            : "terminated");
}

static void on_parent_check(uv_timer_t *t)
{
    struct runtime *rt = t->data;

    if (getppid() != parent_pid)
        shutdown_runtime(rt, "parent process exited");
}

static int run_agent(const struct options *o, int listen_fd)
{
    struct runtime rt;
    char err[512];
    int r;

    memset(&rt, 0, sizeof(rt));
#if defined(__GLIBC__)
    /*
     * A fixed mmap threshold: every block of 1 MiB or more is its own mapping,
     * given back when freed. glibc's default raises the threshold to the
     * largest block freed so far, so after the first lock the scrypt work
     * area (16 MiB, src/agent/lock.c) came from the arena of whichever
     * libuv worker thread hashed, and each such arena then kept 16 MiB
     * resident: RSS went from 15 to 80 MiB over the first lock cycles
     * (found by make soak, docs/performance.md "Soak"). ASan's allocator,
     * which is not glibc's, refuses this: no matter there.
     */
    if (mallopt(M_MMAP_THRESHOLD, 1024 * 1024) != 1)
        log_debug("cannot set malloc's mmap threshold; lock and unlock may keep memory");
#endif
    if (harden_err != 0)
        log_error("cannot fully protect process memory: %s", strerror(harden_err));
    /* Private keys go to OpenSSL's secure heap: locked, excluded from dumps. */
    r = key_secure_heap_init(SECURE_HEAP_SIZE, SECURE_HEAP_MIN);
    if (r == 0)
        log_error("secure heap unavailable; keys will be held in ordinary memory");
    else if (r == 2)
        log_info("secure heap could not be locked into memory (RLIMIT_MEMLOCK)");
    if (!key_openssl_frees_cleared())
        log_error("libcrypto's memory is not cleared when freed; key copies may linger");

    uv_loop_init(&rt.loop);
    agent_init(&rt.agent, o->agent.lifetime);
    rt.agent.offload_slow_work = true;
    if (audit_sink != NULL) {
        if (audit_sink_start(audit_sink, err, sizeof(err)) != 0) {
            log_error("%s", err);
            agent_cleanup(&rt.agent);
            return 1;
        }
        rt.agent.audit = audit_sink_event;
        rt.agent.audit_ctx = audit_sink;
    }
    server_init(&rt.server, &rt.loop, &rt.agent);
    /* Without -P, the agent's own default allow-list (src/agent/provider.h). */
    agent_options_apply(&o->agent, &rt.agent, NULL);
    rt.server.providers.helper_path = find_pkcs11_helper();
    rt.server.providers.sk_helper_path = find_sk_helper();
    if ((r = server_listen_fd(&rt.server, listen_fd)) != 0) {
        agent_cleanup(&rt.agent);
        return 1;
    }
    cli_watch_signal(&rt.loop, &rt.sigint, SIGINT, on_signal, &rt);
    cli_watch_signal(&rt.loop, &rt.sigterm, SIGTERM, on_signal, &rt);
    cli_watch_signal(&rt.loop, &rt.sighup, SIGHUP, on_signal, &rt);
    if (parent_pid != -1) {
        uv_timer_init(&rt.loop, &rt.parent_check);
        rt.parent_check.data = &rt;
        rt.parent_check_active = true;
        uv_timer_start(&rt.parent_check, on_parent_check, 1000, 1000);
        uv_unref((uv_handle_t *)&rt.parent_check);
    }
    if (socket_path[0] != '\0')
        log_debug("listening on %s", socket_path);

    server_run(&rt.server);
    /* Let close callbacks run so every connection's memory is released. */
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    agent_cleanup(&rt.agent);
    uv_loop_close(&rt.loop);
    /* Join the worker threads while OpenSSL can still free their state. */
    uv_library_shutdown();
    CRYPTO_secure_malloc_done();
    return 0;
}

static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);

    if (fd < 0)
        return;
    (void)dup2(fd, STDIN_FILENO);
    (void)dup2(fd, STDOUT_FILENO);
    (void)dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
}

int main(int argc, char **argv)
{
    struct options o;
    char err[512];
    pid_t pid;
    int fd, rc;

    /*
     * Before anything else, as OpenSSH's agent does: a same-uid process
     * that attaches while we start up would otherwise stay attached and
     * read every key added later. Survives fork; reported once logging is
     * set up.
     */
    if (platform_harden_process() != 0)
        harden_err = errno ? errno : EPERM;

    parse_args(argc, argv, &o);
    if (o.kill)
        return kill_agent(&o);
    if (o.cleanup_only)
        return clean_stale_sockets(&o);
    key_fingerprint_set_hash(o.agent.fp_hash);

    /*
     * Socket activation: serve the passed socket in the foreground, as -D.
     * socket_path stays empty: the socket file is the manager's, not ours.
     */
    if ((fd = activation_fd(err, sizeof(err))) >= 0) {
        if (o.bind_address != NULL || *o.command != NULL)
            cli_die("a socket was passed by the service manager (LISTEN_FDS): "
                    "-a and a command cannot be used with it");
        signal(SIGPIPE, SIG_IGN);
        signal(SIGXFSZ, SIG_IGN); /* a file over RLIMIT_FSIZE: EFBIG, not death */
        open_audit_log(o.agent.audit_path);
        log_init(cli_progname, o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, LOG_SINK_STDERR);
        log_info("listening on %s (socket passed by the service manager)", err);
        return run_agent(&o, fd);
    }

    if (o.bind_address != NULL) {
        if ((size_t)snprintf(socket_path, sizeof(socket_path), "%s", o.bind_address) >=
            sizeof(socket_path))
            cli_die("cannot bind %s: path too long", o.bind_address);
    } else if (o.tmp_socket) {
        if (platform_make_socket_dir(socket_dir, sizeof(socket_dir), err, sizeof(err)) != 0)
            cli_die("%s", err);
        if ((size_t)snprintf(socket_path, sizeof(socket_path), "%s/agent.%ld", socket_dir,
                             (long)getpid()) >= sizeof(socket_path))
            cli_die("socket directory path too long: %s", socket_dir);
    } else {
        /* The default, as OpenSSH 10.1+: a fresh name in ~/.ssh/agent. */
        if (!o.no_cleanup) {
            unsigned removed;
            if (agent_socket_clean_stale(false, &removed, err, sizeof(err)) != 0)
                fprintf(stderr, "%s: %s\n", cli_progname, err);
        }
        if (agent_socket_listen_home(socket_path, sizeof(socket_path), &fd, err, sizeof(err)) !=
            0) {
            socket_path[0] = '\0';
            cli_die("%s", err);
        }
    }
    if ((o.bind_address != NULL || o.tmp_socket) &&
        platform_listen_unix(socket_path, &fd, err, sizeof(err)) != 0) {
        socket_path[0] = '\0'; /* not ours to remove */
        remove_socket();
        cli_die("%s", err);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file over RLIMIT_FSIZE: EFBIG, not death */
    open_audit_log(o.agent.audit_path);

    if (o.foreground) {
        log_init(cli_progname, o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, LOG_SINK_STDERR);
        print_env(&o, (long)getpid(), false);
        rc = run_agent(&o, fd);
        remove_socket();
        return rc;
    }

    fflush(stdout);
    parent_pid = getpid();
    if ((pid = fork()) < 0) {
        remove_socket();
        cli_die("fork: %s", strerror(errno));
    }
    if (pid != 0) {
        /* Parent: report the agent, or become the command. */
        close(fd);
        if (*o.command == NULL) {
            print_env(&o, (long)pid, true);
            return 0;
        }
        snprintf(err, sizeof(err), "%ld", (long)pid);
        if (setenv("SSH_AUTH_SOCK", socket_path, 1) != 0 || setenv("SSH_AGENT_PID", err, 1) != 0)
            cli_die("setenv: %s", strerror(errno));
        execvp(o.command[0], o.command);
        fprintf(stderr, "%s: %s: %s\n", cli_progname, o.command[0], strerror(errno));
        exit(1);
    }

    /* Child: the agent. */
    if (*o.command == NULL) {
        parent_pid = -1; /* a daemon outlives the shell that started it */
    } else {
#ifdef __linux__
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
        if (getppid() != parent_pid) {
            remove_socket();
            return 0; /* the command already exited */
        }
    }
    (void)setsid();
    if (chdir("/") != 0)
        (void)0;
    detach_stdio();
    log_init(cli_progname, LOG_LEVEL_INFO, LOG_SINK_SYSLOG);
    rc = run_agent(&o, fd);
    remove_socket();
    return rc;
}
