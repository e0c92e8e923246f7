/*
 * keyward-agent for Windows: an SSH agent on a named pipe.
 *
 *   keyward-agent [-Dd] [-a \\.\pipe\NAME] [-l file] [-t life]
 *                 [--key-store DIR | --no-key-store] [--log-file FILE]
 *   keyward-agent --import-windows-agent [--dry-run] [--key-store DIR] [-l file]
 *   keyward-agent --stop [-a \\.\pipe\NAME] [--log-file FILE]
 *
 * It serves \\.\pipe\openssh-ssh-agent, where Windows' ssh.exe looks, unless
 * -a names another pipe. It always runs in the foreground, in the logon
 * session of the user who starts it (README.md shows how to start it at
 * logon); Ctrl-C stops it and clears every key. The protocol core and the
 * server are the same as on Unix; this file parses arguments and sets up
 * the process, and src/platform/win32.c holds what is Windows-specific.
 *
 * Unlike on Unix, added keys are kept across restarts, as Windows' own
 * agent service keeps them: DPAPI-protected in a folder of the user's own
 * (src/server/key_store_win.c), loaded at start. --no-key-store turns
 * that off; --import-windows-agent copies the service's keys over.
 */
#include <errno.h>
#include <getopt.h>
#include <io.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <uv.h>
#include <windows.h>

#include "agent/agent.h"
#include "agent/audit.h"
#include "agent_options.h"
#include "server/key_store_win.h"
#include "server/server.h"
#include "base/err.h"
#include "base/log.h"
#include "cli.h"
#include "crypto/key.h"
#include "platform/platform.h"
#include "platform/win32_wide.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "unknown"
#endif

/* Room in OpenSSL's secure heap (VirtualLock'ed on Windows) for private keys. */
#define SECURE_HEAP_SIZE (8u * 1024 * 1024)
#define SECURE_HEAP_MIN  64

/* What every pipe name starts with; the rest may not hold a backslash. */
#define PIPE_PREFIX   "\\\\.\\pipe\\"
#define PIPE_NAME_MAX 256

const char *const cli_progname = "keyward-agent";

struct options {
    bool debug; /* -d */
    const char *pipe_name;
    bool no_key_store;          /* --no-key-store */
    const char *key_store_dir;  /* --key-store; NULL: %LOCALAPPDATA%\keyward\keys */
    bool import;                /* --import-windows-agent */
    bool dry_run;               /* --dry-run */
    struct agent_options agent; /* -E, -l, -O, -P, -t: as on Unix; no -P: any module */
    const char *log_file;       /* --log-file; NULL: stderr only */
    bool stop;                  /* --stop */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-Dd] [-a \\\\.\\pipe\\NAME] [-E hash] [-l file] [-O option]\n"
            "                     [-P providers] [-t life]\n"
            "                     [--key-store DIR | --no-key-store] [--log-file FILE]\n"
            "       %s --import-windows-agent [--dry-run] [--key-store DIR] [-l file]\n"
            "       %s --stop [-a \\\\.\\pipe\\NAME] [--log-file FILE]\n"
            "\n"
            "  -a pipe    serve this named pipe (default %s)\n"
            "  -D         stay in the foreground (always so on Windows)\n"
            "  -d         log every request to stderr\n"
            "  -E hash    fingerprints in logs and prompts: sha256 (default) or md5\n"
            "  -O option  allow-remote-pkcs11: forwarded clients may load PKCS#11 modules;\n"
            "             no-restrict-websafe or websafe-allow=LIST: which FIDO applications\n"
            "             may be signed for (default ssh:*)\n"
            "  -P providers  pattern-list of PKCS#11 module paths that may be loaded\n"
            "             (default: any, for local clients)\n"
            "  -l file    append an audit log (JSON lines) to file; - for stderr\n"
            "  -t life    default lifetime of added keys (e.g. 600, 10m, 1h30m)\n"
            "  --key-store DIR  keep added keys (DPAPI-protected) in DIR\n"
            "                   (default %%LOCALAPPDATA%%\\keyward\\keys)\n"
            "  --no-key-store   keep keys in memory only: none survives a restart\n"
            "  --log-file FILE  append what would go to stderr (the log, and why the\n"
            "                   agent stopped) to FILE instead; its folder is created\n"
            "  --import-windows-agent  copy the keys Windows' agent service kept into\n"
            "                   the key store, and exit (needs an elevated shell)\n"
            "  --dry-run        with --import-windows-agent: list them only\n"
            "  --stop           end the agent serving the pipe if it is this same\n"
            "                   program file (as Stop-Process would), and exit\n"
            "  --help     show this help\n"
            "  --version  show the version\n"
            "\n"
            "Stop it with Ctrl-C; every key is cleared from memory (the key store keeps them).\n",
            cli_progname, cli_progname, cli_progname, PLATFORM_DEFAULT_PIPE);
}

/* The Unix options that have no meaning here: say why, and what to do instead. */
static void unsupported(int ch)
{
    switch (ch) {
    case 'c':
    case 's':
        cli_die("-%c is not supported on Windows: there are no shell variables to set.\n"
                "ssh.exe finds the agent at %s by itself; for another pipe set, in PowerShell,\n"
                "  $env:SSH_AUTH_SOCK = '\\\\.\\pipe\\NAME'",
                ch, PLATFORM_DEFAULT_PIPE);
        break;
    case 'k':
        cli_die("-k is not supported on Windows. Stop the agent with Ctrl-C in its console,\n"
                "or in PowerShell: Stop-ScheduledTask -TaskName keyward-agent\n"
                "              or: Stop-Process -Name keyward-agent");
        break;
    default:
        cli_die("running a command under the agent is not supported on Windows");
    }
}

/* A helper program (name: "\\x.exe") beside this program; NULL if it is not there. */
static const char *find_helper(char *path, size_t size, const char *name)
{
    size_t len = size;
    char *slash;

    if (uv_exepath(path, &len) != 0 || (slash = strrchr(path, '\\')) == NULL ||
        (size_t)(slash - path) + strlen(name) + 1 > size)
        return NULL;
    strcpy(slash, name);
    return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES ? path : NULL;
}

/* keyward-pkcs11-helper.exe beside this program; NULL if it is not there. */
static const char *find_pkcs11_helper(void)
{
    static char path[MAX_PATH + 64];

    return find_helper(path, sizeof(path), "\\keyward-pkcs11-helper.exe");
}

/* keyward-sk-helper.exe likewise: FIDO keys' signatures fail without it. */
static const char *find_sk_helper(void)
{
    static char path[MAX_PATH + 64];

    return find_helper(path, sizeof(path), "\\keyward-sk-helper.exe");
}

/* \\.\pipe\NAME with a non-empty NAME and no further backslash, as Windows requires. */
static bool valid_pipe_name(const char *name)
{
    size_t plen = strlen(PIPE_PREFIX), len = strlen(name);

    return len > plen && len <= PIPE_NAME_MAX && _strnicmp(name, PIPE_PREFIX, plen) == 0 &&
           strchr(name + plen, '\\') == NULL;
}

static void parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'H'},
        {"version", no_argument, NULL, 'V'},
        {"key-store", required_argument, NULL, 'S'},
        {"no-key-store", no_argument, NULL, 'N'},
        {"import-windows-agent", no_argument, NULL, 'I'},
        {"dry-run", no_argument, NULL, 'R'},
        {"log-file", required_argument, NULL, 'F'},
        {"stop", no_argument, NULL, 'X'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof(*o));
    agent_options_init(&o->agent);
    o->pipe_name = PLATFORM_DEFAULT_PIPE;
    while ((ch = getopt_long(argc, argv, "+cDdksa:" AGENT_OPTIONS_GETOPT, longopts, NULL)) != -1) {
        if (agent_options_parse(&o->agent, ch, optarg))
            continue;
        switch (ch) {
        case 'c':
        case 's':
        case 'k':
            unsupported(ch);
            break;
        case 'D':
            break; /* the agent always runs in the foreground here */
        case 'd':
            o->debug = true;
            break;
        case 'a':
            if (!valid_pipe_name(optarg))
                cli_die("invalid pipe name \"%s\": use \\\\.\\pipe\\NAME", optarg);
            o->pipe_name = optarg;
            break;
        case 'S':
            o->key_store_dir = optarg;
            break;
        case 'N':
            o->no_key_store = true;
            break;
        case 'I':
            o->import = true;
            break;
        case 'R':
            o->dry_run = true;
            break;
        case 'F':
            o->log_file = optarg;
            break;
        case 'X':
            o->stop = true;
            break;
        case 'H':
            usage(stdout);
            exit(0);
        case 'V':
            printf("keyward-agent %s\n", KEYWARD_VERSION);
            exit(0);
        default:
            usage(stderr);
            exit(1);
        }
    }
    if (argv[optind] != NULL)
        unsupported(0);
    if (o->no_key_store && o->key_store_dir != NULL)
        cli_die("--key-store and --no-key-store contradict each other");
    if (o->import && o->no_key_store)
        cli_die("--import-windows-agent needs the key store; drop --no-key-store");
    if (o->stop && o->import)
        cli_die("--stop and --import-windows-agent contradict each other");
    if (o->dry_run && !o->import)
        cli_die("--dry-run goes with --import-windows-agent");
}

/* Names the cause and the fix: most often Windows' own agent service holds the pipe. */
static void die_pipe_in_use(const char *name)
{
    if (_stricmp(name, PLATFORM_DEFAULT_PIPE) == 0)
        cli_die(
            "%s is already served by another agent, most likely Windows' own\n"
            "\"OpenSSH Authentication Agent\" service (ssh-agent). Either stop and disable it,\n"
            "in an elevated PowerShell:\n"
            "    Stop-Service ssh-agent\n"
            "    Set-Service ssh-agent -StartupType Disabled\n"
            "or give keyward another pipe and point ssh at it:\n"
            "    keyward-agent -a \\\\.\\pipe\\keyward-agent\n"
            "    $env:SSH_AUTH_SOCK = '\\\\.\\pipe\\keyward-agent'",
            name);
    cli_die("%s is already served by another program (another keyward-agent?).\n"
            "Stop it, or choose another pipe with -a \\\\.\\pipe\\NAME",
            name);
}

/*
 * --log-file: stderr appended to FILE. The installer's autostart (the Run
 * key, and the start at the end of an install) has a console window that
 * vanishes with the process, so a refusal (most often: Windows' own agent
 * service holds the pipe) would otherwise be shown to nobody. FILE's
 * folder is created if missing (one level: %LOCALAPPDATA%\keyward is
 * the usual one). If FILE cannot be opened, stderr stays as it was and
 * says why.
 */
static void open_log_file(const char *path)
{
    wchar_t *wpath = win32_utf8_to_wide(path), *wdir = NULL;
    const wchar_t *slash = wpath != NULL ? wcsrchr(wpath, L'\\') : NULL;
    FILE *f = wpath != NULL ? _wfopen(wpath, L"a") : NULL;
    time_t now = time(NULL);
    char when[32] = "?";
    struct tm tm;

    if (wpath == NULL) {
        log_error("cannot open log file %s: not a valid name; logging to stderr", path);
        return;
    }
    if (f == NULL && errno == ENOENT && slash != NULL &&
        (wdir = calloc((size_t)(slash - wpath) + 1, sizeof(*wdir))) != NULL) {
        memcpy(wdir, wpath, (size_t)(slash - wpath) * sizeof(*wdir));
        if (CreateDirectoryW(wdir, NULL) || GetLastError() == ERROR_ALREADY_EXISTS)
            f = _wfopen(wpath, L"a");
        free(wdir);
    }
    if (f == NULL) {
        log_error("cannot open log file %s: %s; logging to stderr", path, strerror(errno));
        free(wpath);
        return;
    }
    /* dup2 keeps stderr's FILE; a process started without one gets freopen instead. */
    fflush(stderr);
    if (_fileno(stderr) < 0 || _dup2(_fileno(f), _fileno(stderr)) != 0) {
        fclose(f);
        if (_wfreopen(wpath, L"a", stderr) == NULL)
            exit(1); /* stderr is gone: nowhere left to say why */
    } else {
        fclose(f);
    }
    free(wpath);
    if (localtime_s(&tm, &now) == 0)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    log_info("started %s, version %s, pid %lu", when, KEYWARD_VERSION, GetCurrentProcessId());
}

/*
 * --stop: ends the keyward-agent.exe that serves the pipe, but only if it
 * runs from this very program file. The installer runs it before an
 * uninstall or an upgrade removes the files (Windows cannot delete a
 * running program); any other server of the pipe (Windows' own agent
 * service, a keyward-agent.exe from another folder) is left alone. The
 * process is ended as Stop-Process ends it: Windows frees its memory, keys
 * included, and the key store keeps them. The agent's own process DACL
 * grants its user exactly the rights used here (platform_harden_process).
 * Exit status 0: stopped, or no agent serves the pipe; 1 otherwise.
 */
static int stop_running_agent(const char *pipe_name)
{
    wchar_t self[MAX_PATH], other[MAX_PATH];
    DWORD len = MAX_PATH, pid = 0, e;
    HANDLE pipe, proc;
    wchar_t *wname = win32_utf8_to_wide(pipe_name);
    int status = 1;

    if (wname == NULL) {
        log_error("--stop: %s is not a valid pipe name", pipe_name);
        return 1;
    }
    /* Identification level only, as platform_pipe_in_use(): whoever serves it may be hostile. */
    pipe = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                       SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (pipe == INVALID_HANDLE_VALUE && GetLastError() == ERROR_PIPE_BUSY &&
        WaitNamedPipeW(wname, 5000))
        pipe = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                           SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    free(wname);
    if (pipe == INVALID_HANDLE_VALUE) {
        e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND) {
            log_info("--stop: no agent serves %s", pipe_name);
            return 0;
        }
        log_error("--stop: cannot connect to %s: error %lu", pipe_name, e);
        return 1;
    }
    if (!GetNamedPipeServerProcessId(pipe, &pid)) {
        log_error("--stop: cannot tell which process serves %s: error %lu", pipe_name,
                  GetLastError());
        CloseHandle(pipe);
        return 1;
    }
    CloseHandle(pipe);
    proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | PROCESS_TERMINATE, FALSE,
                       pid);
    if (proc == NULL) {
        log_error("--stop: %s is served by pid %lu, which is not ours to stop (Windows' agent "
                  "service?): error %lu",
                  pipe_name, pid, GetLastError());
        return 1;
    }
    if (GetModuleFileNameW(NULL, self, MAX_PATH) == 0 ||
        !QueryFullProcessImageNameW(proc, 0, other, &len)) {
        log_error("--stop: cannot read the program path of pid %lu: error %lu", pid,
                  GetLastError());
        goto out;
    }
    if (_wcsicmp(self, other) != 0) {
        log_error("--stop: %s is served by %ls (pid %lu), not by this program: left running",
                  pipe_name, other, pid);
        goto out;
    }
    if (!TerminateProcess(proc, 1) || WaitForSingleObject(proc, 10000) != WAIT_OBJECT_0) {
        log_error("--stop: cannot stop pid %lu: error %lu", pid, GetLastError());
        goto out;
    }
    log_info("--stop: stopped the agent serving %s (pid %lu)", pipe_name, pid);
    status = 0;
out:
    CloseHandle(proc);
    return status;
}

/* ---- the running agent ---- */

struct runtime {
    uv_loop_t loop;
    struct agent agent;
    struct server server;
    struct key_store_win store;
    uv_signal_t sigint, sigbreak, sighup;
};

static void on_signal(uv_signal_t *s, int signum)
{
    struct runtime *rt = s->data;

    log_info("shutting down: %s", signum == SIGINT     ? "interrupted"
                                  : signum == SIGBREAK ? "Ctrl-Break"
                                                       : "console closed");
    server_close(&rt->server);
    /* Clear the keys now, not once the loop has run dry (askpass processes, jobs). */
    agent_cleanup(&rt->agent);
    cli_close_handle((uv_handle_t *)&rt->sigint);
    cli_close_handle((uv_handle_t *)&rt->sigbreak);
    cli_close_handle((uv_handle_t *)&rt->sighup);
}

/*
 * OpenSSL's secure heap is VirtualLock'ed memory on Windows, and a process
 * may lock no more than its minimum working set (a few hundred KiB by
 * default): raise it by the heap's size first.
 */
static void init_secure_heap(void)
{
    SIZE_T min_ws = 0, max_ws = 0;
    int r;

    if (GetProcessWorkingSetSize(GetCurrentProcess(), &min_ws, &max_ws))
        (void)SetProcessWorkingSetSize(GetCurrentProcess(), min_ws + SECURE_HEAP_SIZE,
                                       max_ws + SECURE_HEAP_SIZE);
    r = key_secure_heap_init(SECURE_HEAP_SIZE, SECURE_HEAP_MIN);
    if (r == 0)
        log_error("secure heap unavailable; keys will be held in ordinary memory");
    else if (r == 2)
        log_info("secure heap could not be locked into memory (VirtualLock)");
    else
        log_debug("secure heap: %u bytes, locked", SECURE_HEAP_SIZE);
    if (!key_openssl_frees_cleared())
        log_error("libcrypto's memory is not cleared when freed; key copies may linger");
}

/* ---- the audit log ---- */

static HANDLE audit_handle = INVALID_HANDLE_VALUE;

/*
 * Opens -l's file for appending. A new file gets the directory's inherited
 * ACL (in the user's profile: the user, SYSTEM and Administrators).
 */
static void open_audit_log(const char *path)
{
    wchar_t *wpath;

    if (path == NULL)
        return;
    if (strcmp(path, "-") == 0) {
        audit_handle = GetStdHandle(STD_ERROR_HANDLE);
        return;
    }
    if ((wpath = win32_utf8_to_wide(path)) == NULL)
        cli_die("cannot open audit log %s: not a valid name", path);
    audit_handle = CreateFileW(wpath, FILE_APPEND_DATA, FILE_SHARE_READ, NULL, OPEN_ALWAYS,
                               FILE_ATTRIBUTE_NORMAL, NULL);
    free(wpath);
    if (audit_handle == INVALID_HANDLE_VALUE)
        cli_die("cannot open audit log %s: error %lu", path, GetLastError());
}

/* One line per event, in one WriteFile so appended lines never interleave. */
static void audit_write(void *ctx, const struct audit_event *ev)
{
    char line[AUDIT_LINE_MAX];
    size_t n = audit_format_json(ev, time(NULL), line, sizeof(line) - 2);
    DWORD written = 0;

    (void)ctx;
    if (n == 0) {
        /* Cannot happen within audit.h's bounds; say so rather than lose it quietly. */
        log_error("audit event %s too long for its line, not written", ev->event);
        return;
    }
    line[n++] = '\r';
    line[n++] = '\n';
    if (!WriteFile(audit_handle, line, (DWORD)n, &written, NULL) || written != n)
        log_error("audit log write failed: error %lu", GetLastError());
}

static int run_agent(const struct options *o)
{
    struct runtime rt;
    int r;

    memset(&rt, 0, sizeof(rt));
    (void)platform_harden_process(); /* logs why it failed; not fatal, as on Unix */
    init_secure_heap();

    uv_loop_init(&rt.loop);
    agent_init(&rt.agent, o->agent.lifetime);
    rt.agent.offload_slow_work = true;
    if (audit_handle != INVALID_HANDLE_VALUE) {
        rt.agent.audit = audit_write;
        rt.agent.audit_ctx = NULL;
    }
    /* The kept keys, before the first client (and before the expiry timer is set). */
    if (!o->no_key_store) {
        char err[512];

        /* A store that cannot be opened still takes the hooks: each add then warns. */
        if (key_store_win_open(&rt.store, o->key_store_dir, err, sizeof(err)) != 0)
            log_error("%s; keys are kept in memory only", err);
        key_store_win_attach(&rt.store, &rt.agent, uv_now(&rt.loop));
    } else {
        log_info("key store off (--no-key-store): keys are kept in memory only");
    }
    server_init(&rt.server, &rt.loop, &rt.agent);
    /*
     * PKCS#11 modules: any path a local client names unless -P narrows it
     * (Windows has no /usr/lib; the pipe admits only this user and SYSTEM,
     * and forwarded clients still need -O allow-remote-pkcs11).
     */
    agent_options_apply(&o->agent, &rt.agent, "*");
    rt.server.providers.helper_path = find_pkcs11_helper();
    rt.server.providers.sk_helper_path = find_sk_helper();
    if ((r = server_listen_name(&rt.server, o->pipe_name)) != 0) {
        /*
         * Lost a race with another server since the check in main()?
         * Windows refuses our FILE_FLAG_FIRST_PIPE_INSTANCE then (DENIED);
         * Wine does not, but the client-side check may see it.
         */
        if (r == KW_ERR_DENIED || platform_pipe_in_use(o->pipe_name))
            die_pipe_in_use(o->pipe_name);
        cli_die("cannot serve %s", o->pipe_name);
    }
    cli_watch_signal(&rt.loop, &rt.sigint, SIGINT, on_signal, &rt);
    cli_watch_signal(&rt.loop, &rt.sigbreak, SIGBREAK, on_signal, &rt);
    cli_watch_signal(&rt.loop, &rt.sighup, SIGHUP, on_signal, &rt); /* console window closed */
    log_info("listening on %s for user %s (pid %lu)", o->pipe_name, platform_user_sid(),
             GetCurrentProcessId());
    if (_stricmp(o->pipe_name, PLATFORM_DEFAULT_PIPE) != 0)
        log_info("for ssh.exe, in PowerShell: $env:SSH_AUTH_SOCK = '%s'", o->pipe_name);

    server_run(&rt.server);
    /* Let close callbacks run so every connection's memory is released. */
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    agent_cleanup(&rt.agent);
    key_store_win_close(&rt.store);
    uv_loop_close(&rt.loop);
    /* Join the worker threads while OpenSSL can still free their state. */
    uv_library_shutdown();
    CRYPTO_secure_malloc_done();
    log_info("stopped; keys cleared");
    return 0;
}

/*
 * --import-windows-agent: the service's keys into keyward's store. Reads
 * HKCU\SOFTWARE\OpenSSH\Agent\Keys, never writes it.
 */
static int import_windows_agent(const struct options *o)
{
    int status;

    init_secure_heap();
    open_audit_log(o->agent.audit_path);
    status = key_store_win_import(o->key_store_dir, o->dry_run,
                                  audit_handle != INVALID_HANDLE_VALUE ? audit_write : NULL, NULL,
                                  stdout);
    CRYPTO_secure_malloc_done();
    return status;
}

int main(int argc, char **argv)
{
    struct options o;
    char err[512];

    /*
     * First of all: the cross-built libcrypto has a Linux OPENSSLDIR
     * compiled in, which on Windows names a directory on the current drive
     * that any user may create. Never read an openssl.cnf from there (nor
     * from $OPENSSL_CONF). Whichever init runs first decides, so this must
     * come before any other OpenSSL call.
     */
    char **utf8_argv;

    if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL))
        cli_die("cannot initialise OpenSSL");

    /* Names (the key store, the logs, the pipe) as UTF-8, whatever the user's name holds. */
    if ((utf8_argv = win32_utf8_argv(&argc)) != NULL)
        argv = utf8_argv;
    parse_args(argc, argv, &o);
    log_init(cli_progname, o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, LOG_SINK_STDERR);
    if (o.log_file != NULL)
        open_log_file(o.log_file);
    key_fingerprint_set_hash(o.agent.fp_hash);
    if (platform_init_user(err, sizeof(err)) != 0)
        cli_die("%s", err);
    if (o.import)
        return import_windows_agent(&o);
    if (o.stop)
        return stop_running_agent(o.pipe_name);
    if (platform_pipe_in_use(o.pipe_name))
        die_pipe_in_use(o.pipe_name);
    open_audit_log(o.agent.audit_path);
    return run_agent(&o);
}
