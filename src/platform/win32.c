/*
 * keyward: Windows platform layer. See platform.h.
 *
 * Who may talk to the agent is decided twice. The pipe's DACL, set when
 * its first instance is created, lets only our user and SYSTEM open it,
 * and PIPE_REJECT_REMOTE_CLIENTS keeps SMB clients out. Then every
 * connection's client process is looked up and its token user compared
 * with ours; that second check is the boundary, because it does not depend
 * on how (or by whom) a pipe instance was created.
 *
 * The instances are created here, by a small acceptor thread, not by
 * libuv: libuv 1.44's uv_pipe_bind()/uv_listen() create them with the
 * default security descriptor and no way to ask for
 * PIPE_REJECT_REMOTE_CLIENTS. Connected instances are handed to the loop
 * and become ordinary uv_pipe_t streams through uv_pipe_open().
 */
#include "platform/platform.h"

#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include "base/err.h"
#include "base/log.h"
#include "platform/uv_err.h"
#include "platform/win32_wide.h"

/* Our own identity, from platform_init_user(). */
static PSID self_sid;
static DWORD self_sid_len;
static char self_sid_str[192];
/*
 * Tests only: KEYWARD_TEST_REFUSE_SID names a SID to refuse although it is
 * ours. Every Wine process runs as the same user, so this is the only way to
 * drive the refusal path end to end there. It can only narrow who is
 * served, never widen it.
 */
static PSID test_refused_sid;

/* Copies the user SID out of a process's token into a malloc'd buffer. */
static int process_user_sid(HANDLE process, PSID *sidp, DWORD *lenp)
{
    HANDLE token = NULL;
    TOKEN_USER *tu = NULL;
    DWORD size = 0, len;
    PSID sid = NULL;
    int r = KW_ERR_SYSTEM;

    if (!OpenProcessToken(process, TOKEN_QUERY, &token))
        goto out;
    /* The first call only reports the size it needs. */
    if (GetTokenInformation(token, TokenUser, NULL, 0, &size) ||
        GetLastError() != ERROR_INSUFFICIENT_BUFFER)
        goto out;
    if ((tu = malloc(size)) == NULL) {
        r = KW_ERR_ALLOC;
        goto out;
    }
    if (!GetTokenInformation(token, TokenUser, tu, size, &size) || !IsValidSid(tu->User.Sid))
        goto out;
    len = GetLengthSid(tu->User.Sid);
    if ((sid = malloc(len)) == NULL) {
        r = KW_ERR_ALLOC;
        goto out;
    }
    if (!CopySid(len, sid, tu->User.Sid))
        goto out;
    *sidp = sid;
    *lenp = len;
    sid = NULL;
    r = 0;
out:
    free(sid);
    free(tu);
    if (token != NULL)
        CloseHandle(token);
    return r;
}

/* "S-1-5-21-..." into buf, or "?" if the SID cannot be printed. */
static void sid_to_string(PSID sid, char *buf, size_t bufsize)
{
    char *s = NULL;

    if (ConvertSidToStringSidA(sid, &s)) {
        snprintf(buf, bufsize, "%s", s);
        LocalFree(s);
    } else {
        snprintf(buf, bufsize, "?");
    }
}

int platform_init_user(char *err, size_t errsize)
{
    const char *refuse;
    int r;

    if ((r = process_user_sid(GetCurrentProcess(), &self_sid, &self_sid_len)) != 0) {
        snprintf(err, errsize, "cannot read our own user SID (error %lu)", GetLastError());
        return r;
    }
    sid_to_string(self_sid, self_sid_str, sizeof(self_sid_str));
    refuse = getenv("KEYWARD_TEST_REFUSE_SID");
    if (refuse != NULL && *refuse != '\0' && !ConvertStringSidToSidA(refuse, &test_refused_sid)) {
        snprintf(err, errsize, "KEYWARD_TEST_REFUSE_SID=%s is not a SID", refuse);
        return KW_ERR_BAD_FORMAT;
    }
    return 0;
}

const char *platform_user_sid(void)
{
    return self_sid_str;
}

/*
 * Replaces an object's DACL with the one in sddl, marked protected so that
 * nothing is inherited. Returns 0 or the Windows error code.
 */
static DWORD set_dacl(HANDLE object, const char *sddl)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    DWORD e;

    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
        return GetLastError();
    if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
        e = GetLastError();
        goto out;
    }
    if (!present) {
        e = ERROR_INVALID_SECURITY_DESCR;
        goto out;
    }
    e = SetSecurityInfo(object, SE_KERNEL_OBJECT,
                        DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL, NULL,
                        dacl, NULL);
out:
    LocalFree(sd);
    return e;
}

/*
 * Windows Error Reporting would offer to send, or write, a dump of the
 * process; the process DACL lets other processes of our user query, wait for
 * and end the agent, but not read its memory or debug it. The user owns the
 * process and could rewrite that DACL, so this stops casual reads (a
 * same-user tool calling ReadProcessMemory), not a determined attacker
 * running as us.
 */
int platform_harden_process(void)
{
    char sddl[320];
    DWORD e;

    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    if (self_sid == NULL)
        return KW_ERR_INTERNAL;
    snprintf(sddl, sizeof(sddl), "D:P(A;;0x%lx;;;%s)(A;;GA;;;SY)",
             (unsigned long)(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | PROCESS_TERMINATE),
             self_sid_str);
    if ((e = set_dacl(GetCurrentProcess(), sddl)) != 0) {
        log_error("cannot restrict access to the agent process (error %lu)", e);
        return KW_ERR_SYSTEM;
    }
    return 0;
}

bool platform_pipe_in_use(const char *name)
{
    wchar_t *wname;
    HANDLE h;
    DWORD e;

    if ((wname = win32_utf8_to_wide(name)) == NULL)
        return false; /* binding will report the bad name */
    /*
     * Identification level only: whoever holds the name may be hostile (a
     * squatter waiting for a client to impersonate), so do not lend it our
     * token.
     */
    h = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    e = GetLastError();
    free(wname);
    if (h != INVALID_HANDLE_VALUE) {
        CloseHandle(h);
        return true;
    }
    /* Every instance busy, or a DACL that keeps us out: a server is there either way. */
    return e == ERROR_PIPE_BUSY || e == ERROR_ACCESS_DENIED;
}

/* ---- the pipe acceptor ---- */

/* WaitForMultipleObjects() takes at most 64 handles; one is the stop event. */
#define ACCEPTOR_MAX_INSTANCES (MAXIMUM_WAIT_OBJECTS - 1)
/* How long to wait before trying again to create an instance that failed. */
#define ACCEPTOR_RETRY_MS 1000
/* Each instance's in and out buffer, as libuv's own instances have. */
#define PIPE_BUFFER_SIZE 65536
/* Room for the pipe's name in log lines ("\\.\pipe\" and up to 256 more). */
#define PIPE_NAME_LOG_MAX 272

/* One instance waiting for a client, owned by the acceptor thread. */
struct instance {
    HANDLE pipe;   /* INVALID_HANDLE_VALUE while the slot is empty */
    OVERLAPPED ov; /* for ConnectNamedPipe(); hEvent lives as long as the acceptor */
    bool pending;  /* a ConnectNamedPipe() is outstanding on pipe */
};

/* From the thread to the loop: a connected instance, or a failure to log. */
struct handoff {
    struct handoff *next;
    HANDLE pipe;      /* INVALID_HANDLE_VALUE for a failure */
    const char *what; /* the call that failed */
    DWORD error;
};

struct platform_acceptor {
    uv_async_t async; /* "the queue has something": the thread's only way to the loop */
    uv_thread_t thread;
    HANDLE stop; /* manual-reset; set once to make the thread exit */
    wchar_t *name;
    char name_utf8[PIPE_NAME_LOG_MAX];
    PSECURITY_DESCRIPTOR sd;
    SECURITY_ATTRIBUTES sa;
    platform_accept_cb cb;
    void *cb_arg;
    bool stopping;
    CRITICAL_SECTION lock; /* guards head and tail */
    struct handoff *head, **tail;
    bool failing; /* thread only: a failure streak was reported already */
    int ninstances;
    struct instance inst[];
};

/* What ConnectNamedPipe() left a fresh instance in. */
enum listen_state {
    LISTEN_PENDING,   /* waiting for a client */
    LISTEN_CONNECTED, /* a client connected between CreateNamedPipe() and now */
    LISTEN_GONE,      /* ... and has left already */
    LISTEN_FAILED,
};

/* Thread: queues a connected instance (or a failure) for the loop. */
static void acceptor_post(struct platform_acceptor *acc, HANDLE pipe, const char *what, DWORD error)
{
    struct handoff *h;

    if ((h = calloc(1, sizeof(*h))) == NULL) {
        /* The client sees its connection close, as if refused. */
        if (pipe != INVALID_HANDLE_VALUE)
            CloseHandle(pipe);
        return;
    }
    h->pipe = pipe;
    h->what = what;
    h->error = error;
    EnterCriticalSection(&acc->lock);
    *acc->tail = h;
    acc->tail = &h->next;
    LeaveCriticalSection(&acc->lock);
    (void)uv_async_send(&acc->async);
}

/* Thread: reports the first failure of a streak, not one per retry. */
static void acceptor_failed(struct platform_acceptor *acc, const char *what, DWORD error)
{
    if (acc->failing)
        return;
    acc->failing = true;
    acceptor_post(acc, INVALID_HANDLE_VALUE, what, error);
}

/*
 * Every instance carries the pipe's whole policy from its creation: the
 * DACL (a named pipe has one security descriptor, fixed by its first
 * instance; passing it to the others costs nothing), no remote clients,
 * overlapped I/O (uv_pipe_open() then puts the handle on the loop's
 * completion port), byte mode. No WRITE_DAC: nothing needs to change the
 * DACL later, unlike libuv's instances.
 */
static HANDLE instance_create(struct platform_acceptor *acc, bool first)
{
    return CreateNamedPipeW(
        acc->name,
        PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
        PIPE_UNLIMITED_INSTANCES, PIPE_BUFFER_SIZE, PIPE_BUFFER_SIZE, 0, &acc->sa);
}

/* Thread: starts waiting for a client on the slot's instance. */
static enum listen_state instance_listen(struct instance *in, DWORD *error)
{
    HANDLE event = in->ov.hEvent;

    memset(&in->ov, 0, sizeof(in->ov));
    in->ov.hEvent = event;
    ResetEvent(event);
    *error = 0;
    if (ConnectNamedPipe(in->pipe, &in->ov))
        return LISTEN_CONNECTED; /* overlapped, yet done at once: connected */
    switch (*error = GetLastError()) {
    case ERROR_IO_PENDING:
        return LISTEN_PENDING;
    case ERROR_PIPE_CONNECTED:
        return LISTEN_CONNECTED;
    case ERROR_NO_DATA:
        return LISTEN_GONE;
    default:
        return LISTEN_FAILED;
    }
}

/*
 * Thread: puts a fresh instance into the slot, waiting for a client, and
 * only then hands over `connected` (the slot's previous instance, which a
 * client took, or INVALID_HANDLE_VALUE). So the pipe always has an
 * instance listening while connections are being taken up, and a client
 * that connects at once to the fresh one is handed over in turn. If no
 * instance can be created, the slot stays empty until the next retry and
 * `connected` is handed over anyway.
 */
static void slot_fill(struct platform_acceptor *acc, struct instance *in, HANDLE connected)
{
    enum listen_state st;
    DWORD e;

    for (;;) {
        if (in->pipe == INVALID_HANDLE_VALUE &&
            (in->pipe = instance_create(acc, false)) == INVALID_HANDLE_VALUE) {
            acceptor_failed(acc, "CreateNamedPipe", GetLastError());
            break;
        }
        st = instance_listen(in, &e);
        if (connected != INVALID_HANDLE_VALUE) {
            acceptor_post(acc, connected, NULL, 0);
            connected = INVALID_HANDLE_VALUE;
        }
        if (st == LISTEN_PENDING) {
            in->pending = true;
            acc->failing = false;
            break;
        }
        if (st == LISTEN_CONNECTED) {
            connected = in->pipe;
            in->pipe = INVALID_HANDLE_VALUE;
            continue;
        }
        CloseHandle(in->pipe);
        in->pipe = INVALID_HANDLE_VALUE;
        if (st == LISTEN_FAILED) {
            acceptor_failed(acc, "ConnectNamedPipe", e);
            break;
        }
    }
    if (connected != INVALID_HANDLE_VALUE)
        acceptor_post(acc, connected, NULL, 0);
}

/* Thread: takes up a slot whose ConnectNamedPipe() has completed, if it has. */
static void slot_check(struct platform_acceptor *acc, struct instance *in)
{
    HANDLE pipe = in->pipe;
    DWORD n, e;

    if (GetOverlappedResult(pipe, &in->ov, &n, FALSE)) {
        in->pending = false;
        in->pipe = INVALID_HANDLE_VALUE;
        slot_fill(acc, in, pipe);
        return;
    }
    if ((e = GetLastError()) == ERROR_IO_INCOMPLETE)
        return;
    /* The client connected and left, or the instance broke: start afresh. */
    in->pending = false;
    in->pipe = INVALID_HANDLE_VALUE;
    CloseHandle(pipe);
    if (e != ERROR_NO_DATA && e != ERROR_BROKEN_PIPE)
        acceptor_failed(acc, "ConnectNamedPipe", e);
    slot_fill(acc, in, INVALID_HANDLE_VALUE);
}

/*
 * The acceptor thread. It only creates instances, waits for clients and
 * queues connected instances; it never waits for the loop, so stopping it
 * (from the loop) is quick.
 */
static void acceptor_thread(void *arg)
{
    struct platform_acceptor *acc = arg;
    HANDLE waits[MAXIMUM_WAIT_OBJECTS];
    DWORD n, r, timeout;
    int i;

    for (;;) {
        timeout = INFINITE;
        n = 0;
        waits[n++] = acc->stop;
        for (i = 0; i < acc->ninstances; i++) {
            if (!acc->inst[i].pending)
                slot_fill(acc, &acc->inst[i], INVALID_HANDLE_VALUE);
            if (acc->inst[i].pending)
                waits[n++] = acc->inst[i].ov.hEvent;
            else
                timeout = ACCEPTOR_RETRY_MS;
        }
        r = WaitForMultipleObjects(n, waits, FALSE, timeout);
        if (r == WAIT_OBJECT_0)
            break;
        if (r == WAIT_FAILED) {
            acceptor_failed(acc, "WaitForMultipleObjects", GetLastError());
            if (WaitForSingleObject(acc->stop, ACCEPTOR_RETRY_MS) == WAIT_OBJECT_0)
                break;
            continue;
        }
        /* Every slot, not just the one that woke us: none is starved. */
        for (i = 0; i < acc->ninstances; i++) {
            if (acc->inst[i].pending)
                slot_check(acc, &acc->inst[i]);
        }
    }
    for (i = 0; i < acc->ninstances; i++) {
        struct instance *in = &acc->inst[i];

        if (in->pending) {
            /* The OVERLAPPED must outlive the operation: wait for the cancel. */
            (void)CancelIoEx(in->pipe, &in->ov);
            (void)GetOverlappedResult(in->pipe, &in->ov, &n, TRUE);
            in->pending = false;
        }
        if (in->pipe != INVALID_HANDLE_VALUE) {
            CloseHandle(in->pipe);
            in->pipe = INVALID_HANDLE_VALUE;
        }
    }
}

/* Loop: hands the queued instances to the server, logs queued failures. */
static void acceptor_drain(uv_async_t *async)
{
    struct platform_acceptor *acc = async->data;
    struct handoff *list, *h;

    EnterCriticalSection(&acc->lock);
    list = acc->head;
    acc->head = NULL;
    acc->tail = &acc->head;
    LeaveCriticalSection(&acc->lock);
    while ((h = list) != NULL) {
        list = h->next;
        if (h->pipe == INVALID_HANDLE_VALUE)
            log_error("%s: %s failed (error %lu); new clients may have to wait", acc->name_utf8,
                      h->what, h->error);
        else if (acc->stopping || !acc->cb(acc->cb_arg, h->pipe))
            CloseHandle(h->pipe);
        free(h);
    }
}

/* Frees an acceptor whose thread is not running (any more). */
static void acceptor_free(struct platform_acceptor *acc)
{
    struct handoff *h;
    int i;

    while ((h = acc->head) != NULL) {
        acc->head = h->next;
        if (h->pipe != INVALID_HANDLE_VALUE)
            CloseHandle(h->pipe);
        free(h);
    }
    for (i = 0; i < acc->ninstances; i++) {
        if (acc->inst[i].pipe != INVALID_HANDLE_VALUE)
            CloseHandle(acc->inst[i].pipe);
        if (acc->inst[i].ov.hEvent != NULL)
            CloseHandle(acc->inst[i].ov.hEvent);
    }
    if (acc->stop != NULL)
        CloseHandle(acc->stop);
    DeleteCriticalSection(&acc->lock);
    LocalFree(acc->sd);
    free(acc->name);
    free(acc);
}

static void on_acceptor_closed(uv_handle_t *h)
{
    acceptor_free(h->data);
}

int platform_acceptor_start(uv_loop_t *loop, const char *name, int instances, platform_accept_cb cb,
                            void *arg, struct platform_acceptor **accp)
{
    struct platform_acceptor *acc;
    char sddl[320];
    int i, r = KW_ERR_SYSTEM;
    DWORD e;

    *accp = NULL;
    if (self_sid == NULL) {
        log_error("cannot serve %s: our user SID is unknown", name);
        return KW_ERR_INTERNAL;
    }
    if (instances < 1)
        instances = 1;
    if (instances > ACCEPTOR_MAX_INSTANCES)
        instances = ACCEPTOR_MAX_INSTANCES;
    if ((acc = calloc(1, sizeof(*acc) + (size_t)instances * sizeof(acc->inst[0]))) == NULL) {
        log_error("cannot serve %s: out of memory", name);
        return KW_ERR_ALLOC;
    }
    InitializeCriticalSection(&acc->lock);
    acc->tail = &acc->head;
    acc->cb = cb;
    acc->cb_arg = arg;
    acc->ninstances = instances;
    for (i = 0; i < instances; i++)
        acc->inst[i].pipe = INVALID_HANDLE_VALUE;
    snprintf(acc->name_utf8, sizeof(acc->name_utf8), "%s", name);
    if ((acc->name = win32_utf8_to_wide(name)) == NULL) {
        log_error("cannot serve %s: not a valid pipe name", name);
        r = KW_ERR_BAD_FORMAT;
        goto fail;
    }
    /* Our user and SYSTEM, full access; "P": nothing inherited, ever. */
    snprintf(sddl, sizeof(sddl), "D:P(A;;FA;;;%s)(A;;FA;;;SY)", self_sid_str);
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &acc->sd,
                                                              NULL)) {
        log_error("cannot build the pipe's security descriptor (error %lu)", GetLastError());
        goto fail;
    }
    acc->sa.nLength = sizeof(acc->sa);
    acc->sa.lpSecurityDescriptor = acc->sd;
    acc->sa.bInheritHandle = FALSE;
    if ((acc->stop = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
        goto fail_errno;
    for (i = 0; i < instances; i++) {
        if ((acc->inst[i].ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
            goto fail_errno;
    }
    /*
     * The first instance here, on the caller's thread, so that a name that
     * another server holds is the caller's error, not a log line later.
     */
    if ((acc->inst[0].pipe = instance_create(acc, true)) == INVALID_HANDLE_VALUE) {
        e = GetLastError();
        if (e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY) {
            log_info("cannot create %s: another server holds it (error %lu)", name, e);
            r = KW_ERR_DENIED;
        } else {
            log_error("cannot create %s (error %lu)", name, e);
        }
        goto fail;
    }
    (void)uv_async_init(loop, &acc->async, acceptor_drain);
    acc->async.data = acc;
    if ((r = uv_thread_create(&acc->thread, acceptor_thread, acc)) != 0) {
        log_error("cannot serve %s: cannot start a thread: %s", name, uv_strerror(r));
        uv_close((uv_handle_t *)&acc->async, on_acceptor_closed);
        return kw_err_from_uv(r);
    }
    *accp = acc;
    return 0;
fail_errno:
    log_error("cannot serve %s: CreateEvent failed (error %lu)", name, GetLastError());
fail:
    acceptor_free(acc);
    return r;
}

void platform_acceptor_stop(struct platform_acceptor *acc)
{
    if (acc == NULL || acc->stopping)
        return;
    acc->stopping = true;
    SetEvent(acc->stop);
    /* Closes the waiting instances on its way out; it never waits for us. */
    uv_thread_join(&acc->thread);
    /* Connected instances still queued are closed when the handle is. */
    uv_close((uv_handle_t *)&acc->async, on_acceptor_closed);
}

int platform_pipe_adopt(uv_pipe_t *pipe, uv_os_fd_t handle)
{
    int fd, e;

    /* uv_pipe_open() takes a C runtime descriptor, not a HANDLE. */
    if ((fd = _open_osfhandle((intptr_t)handle, 0)) < 0) {
        log_error("cannot use a connected pipe instance: no file descriptor left");
        CloseHandle(handle);
        return KW_ERR_SYSTEM;
    }
    e = uv_pipe_open(pipe, fd);
    /*
     * On success libuv owns fd and closes it with the stream, except that
     * descriptors 0 to 2 (free when the agent runs without a console, say)
     * it duplicates, taking the copy and leaving fd to us.
     */
    if (e != 0 || fd <= 2)
        _close(fd);
    if (e != 0) {
        log_error("cannot use a connected pipe instance: %s", uv_strerror(e));
        return kw_err_from_uv(e);
    }
    return 0;
}

int platform_pipe_connect(uv_pipe_t *pipe, const char *name)
{
    wchar_t *wname;
    HANDLE h;
    DWORD e;

    if ((wname = win32_utf8_to_wide(name)) == NULL)
        return UV_EINVAL;
    /*
     * Overlapped, so that uv_pipe_open() puts it on the loop's completion
     * port. Identification level, as Windows' own ssh.exe connects: an
     * agent checks who its client is, and needs no more than that.
     */
    h = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    e = GetLastError();
    free(wname);
    if (h == INVALID_HANDLE_VALUE)
        return e == ERROR_PIPE_BUSY ? UV_EAGAIN : uv_translate_sys_error((int)e);
    return platform_pipe_adopt(pipe, h) == 0 ? 0 : UV_EIO;
}

bool platform_peer_allowed(uv_pipe_t *conn, struct peer_info *peer)
{
    uv_os_fd_t pipe;
    HANDLE process = NULL;
    PSID sid = NULL;
    DWORD sid_len = 0;
    ULONG pid = 0;
    char str[192];
    bool allowed = false;

    peer->pid = -1;
    peer->uid = -1;
    peer->exe[0] = '\0';
    snprintf(peer->desc, sizeof(peer->desc), "unknown peer");
    if (self_sid == NULL || uv_fileno((uv_handle_t *)conn, &pipe) != 0)
        goto out;
    /*
     * Remote (SMB) clients are kept out by PIPE_REJECT_REMOTE_CLIENTS.
     * GetNamedPipeClientComputerName() could tell them apart here too, but
     * Wine does not implement it (calling it aborts the process).
     */
    if (!GetNamedPipeClientProcessId(pipe, &pid)) {
        snprintf(peer->desc, sizeof(peer->desc), "unknown pid (error %lu)", GetLastError());
        goto out;
    }
    peer->pid = (long)pid;
    /* A process we may not even query (another user's, say) is refused. */
    if ((process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)) == NULL) {
        snprintf(peer->desc, sizeof(peer->desc), "pid %lu (cannot open process: error %lu)", pid,
                 GetLastError());
        goto out;
    }
    if (process_user_sid(process, &sid, &sid_len) != 0) {
        snprintf(peer->desc, sizeof(peer->desc), "pid %lu (cannot read its user: error %lu)", pid,
                 GetLastError());
        goto out;
    }
    sid_to_string(sid, str, sizeof(str));
    snprintf(peer->desc, sizeof(peer->desc), "pid %lu user %s", pid, str);
    {
        /* The client's executable, for the audit log. */
        DWORD exe_len = (DWORD)sizeof(peer->exe);

        if (!QueryFullProcessImageNameA(process, 0, peer->exe, &exe_len))
            peer->exe[0] = '\0';
    }
    allowed = platform_sid_allowed(sid, sid_len, self_sid, self_sid_len);
    if (allowed && test_refused_sid != NULL && EqualSid(sid, test_refused_sid))
        allowed = false;
out:
    free(sid);
    if (process != NULL)
        CloseHandle(process);
    return allowed;
}
