/*
 * keyward-probe: the transport over a Windows named pipe.
 *
 * The handle is opened for overlapped I/O, so every read and write is
 * started, then waited for against one deadline, and cancelled when the
 * deadline passes: no call can hang longer than the timeout it was given,
 * whatever the agent does. As on POSIX, frames are read with exact-size
 * reads (header, then body), so bytes of a following frame stay in the pipe
 * for the next transport_recv_frame().
 *
 * The outcomes map onto transport.h as the socket errors do on POSIX:
 * ERROR_BROKEN_PIPE (the agent closed its end), ERROR_PIPE_NOT_CONNECTED
 * (it disconnected the instance) and ERROR_NO_DATA (a write to an end that
 * is being closed) are TRANSPORT_CLOSED; a wait that runs out is
 * TRANSPORT_TIMEOUT; any other failure is KW_ERR_SYSTEM.
 */
#include "probe/transport_read.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "base/err.h"
#include "platform/win32_wide.h"

/*
 * Where OpenSSH for Windows (ssh.exe, ssh-add.exe) looks for an agent when
 * SSH_AUTH_SOCK is unset; keyward-agent.exe serves it by default too.
 */
#define DEFAULT_PIPE "\\\\.\\pipe\\openssh-ssh-agent"
/* Every pipe name starts with this (case does not matter to Windows). */
#define PIPE_PREFIX "\\\\.\\pipe\\"

/* One read's worth of buffer; a frame body is read in chunks this big. */
#define READ_CHUNK 4096
/* WriteFile takes a DWORD length; a frame is far smaller, but stay exact. */
#define WRITE_CHUNK_MAX 0x40000000u

struct transport {
    HANDLE pipe;
    /* One event for all I/O on this handle: there is never more than one in flight. */
    HANDLE event;
};

int64_t transport_now_ms(void)
{
    return (int64_t)GetTickCount64();
}

/* The time left until deadline, as a wait timeout (never INFINITE). */
static DWORD remaining_ms(int64_t deadline)
{
    int64_t left = deadline - transport_now_ms();

    if (left <= 0)
        return 0;
    return left >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)left;
}

/* Errors that mean "the agent is gone" rather than "we failed". */
static int is_peer_gone(DWORD e)
{
    return e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_NO_DATA;
}

int transport_setup(unsigned nconns)
{
    /*
     * Nothing to raise: a process may hold millions of handles, and a write
     * to a closed pipe fails with an error instead of raising a signal.
     */
    (void)nconns;
    return 0;
}

const char *transport_default_address(void)
{
    const char *s = getenv("SSH_AUTH_SOCK");

    /* OpenSSH for Windows' convention: SSH_AUTH_SOCK, if set, names the pipe. */
    return s != NULL && *s != '\0' ? s : DEFAULT_PIPE;
}

static void set_why(char *why, size_t whysize, const char *s)
{
    if (why != NULL && whysize > 0)
        snprintf(why, whysize, "%s", s);
}

/* Windows' own text for error e, without its trailing ".\r\n", and the number. */
static void set_why_error(char *why, size_t whysize, DWORD e)
{
    char msg[200];
    DWORD n;

    if (why == NULL || whysize == 0)
        return;
    n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e, 0, msg,
                       sizeof(msg), NULL);
    while (n > 0 &&
           (msg[n - 1] == '\r' || msg[n - 1] == '\n' || msg[n - 1] == '.' || msg[n - 1] == ' '))
        n--;
    if (n == 0)
        snprintf(why, whysize, "Windows error %lu", e);
    else
        snprintf(why, whysize, "%.*s (error %lu)", (int)n, msg, e);
}

/*
 * Opens the pipe, waiting for a free instance until deadline. A server
 * keeps a fixed number of instances listening and makes another after each
 * connection it accepts; when a burst of clients has taken them all,
 * CreateFileW fails with ERROR_PIPE_BUSY and WaitNamedPipeW waits for the
 * next. Another client may take that one first, so this loops. Returns the
 * handle, or INVALID_HANDLE_VALUE with the reason in *e.
 */
static HANDLE open_pipe(const wchar_t *wname, int64_t deadline, DWORD *e)
{
    HANDLE h;
    DWORD wait;

    for (;;) {
        /*
         * Identification level only: the probe points at any agent, and a
         * hostile server must not be able to act with our token.
         */
        h = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                        NULL);
        if (h != INVALID_HANDLE_VALUE)
            return h;
        *e = GetLastError();
        /* Anything else (no such pipe, access denied) will not change by waiting. */
        if (*e != ERROR_PIPE_BUSY)
            return INVALID_HANDLE_VALUE;
        /* 0 would mean "the server's default wait", not "no wait". */
        if ((wait = remaining_ms(deadline)) == 0) {
            *e = ERROR_SEM_TIMEOUT;
            return INVALID_HANDLE_VALUE;
        }
        /*
         * Fails with ERROR_SEM_TIMEOUT when no instance came free in time,
         * or ERROR_FILE_NOT_FOUND if the server went away meanwhile; the
         * next CreateFileW tells which.
         */
        (void)WaitNamedPipeW(wname, wait);
    }
}

int transport_connect(const char *address, int timeout_ms, struct transport **out, char *why,
                      size_t whysize)
{
    int64_t deadline = transport_now_ms() + timeout_ms;
    struct transport *t = NULL;
    HANDLE h = INVALID_HANDLE_VALUE, event = NULL;
    wchar_t *wname = NULL;
    DWORD e;
    int err = KW_ERR_SYSTEM;

    *out = NULL;
    /* Anything else CreateFileW would open too, a plain file included. */
    if (_strnicmp(address, PIPE_PREFIX, strlen(PIPE_PREFIX)) != 0 ||
        address[strlen(PIPE_PREFIX)] == '\0') {
        set_why(why, whysize, "not a named pipe (\\\\.\\pipe\\NAME)");
        goto out;
    }
    if ((wname = win32_utf8_to_wide(address)) == NULL) {
        set_why(why, whysize, "the pipe name is not valid UTF-8, or out of memory");
        goto out;
    }
    if ((h = open_pipe(wname, deadline, &e)) == INVALID_HANDLE_VALUE) {
        if (e == ERROR_SEM_TIMEOUT || e == ERROR_PIPE_BUSY)
            set_why(why, whysize, "timed out: every instance of the pipe stayed busy");
        else if (e == ERROR_FILE_NOT_FOUND)
            set_why(why, whysize, "no such pipe: no agent serves it");
        else
            set_why_error(why, whysize, e);
        goto out;
    }
    /* Manual reset, as overlapped I/O wants: ReadFile and WriteFile reset it as they start. */
    if ((event = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
        set_why_error(why, whysize, GetLastError());
        goto out;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        set_why(why, whysize, "out of memory");
        err = KW_ERR_ALLOC;
        goto out;
    }
    t->pipe = h;
    t->event = event;
    h = INVALID_HANDLE_VALUE;
    event = NULL;
    *out = t;
    err = 0;
out:
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    if (event != NULL)
        CloseHandle(event);
    free(wname);
    return err;
}

/*
 * One overlapped ReadFile or WriteFile of up to len bytes, waited for until
 * deadline. *done is how many bytes moved; *e is ERROR_SUCCESS, the error
 * the operation ended with, or WAIT_TIMEOUT if it was cancelled at the
 * deadline with nothing moved. The operation has always finished when this
 * returns, so buf and the OVERLAPPED may go.
 */
static int pipe_io(struct transport *t, bool writing, void *buf, DWORD len, int64_t deadline,
                   DWORD *done, DWORD *e)
{
    OVERLAPPED ov;
    BOOL ok;
    DWORD w;

    *done = 0;
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = t->event;
    ok = writing ? WriteFile(t->pipe, buf, len, NULL, &ov) : ReadFile(t->pipe, buf, len, NULL, &ov);
    if (!ok && (*e = GetLastError()) != ERROR_IO_PENDING)
        return 0;
    if (!ok) {
        w = WaitForSingleObject(t->event, remaining_ms(deadline));
        if (w != WAIT_OBJECT_0) {
            /*
             * Out of time (or the wait failed): cancel, then wait for the
             * operation to end, because it still owns buf and ov. It may
             * have completed in the meantime, bytes and all; those count.
             */
            (void)CancelIoEx(t->pipe, &ov);
            ok = GetOverlappedResult(t->pipe, &ov, done, TRUE);
            if (w == WAIT_FAILED)
                return KW_ERR_SYSTEM;
            *e = ok ? ERROR_SUCCESS : GetLastError();
            if (*e == ERROR_OPERATION_ABORTED)
                *e = *done > 0 ? ERROR_SUCCESS : WAIT_TIMEOUT;
            return 0;
        }
    }
    ok = GetOverlappedResult(t->pipe, &ov, done, TRUE);
    *e = ok ? ERROR_SUCCESS : GetLastError();
    return 0;
}

int transport_send(struct transport *t, const uint8_t *data, size_t len, int timeout_ms,
                   enum transport_status *st)
{
    int64_t deadline = transport_now_ms() + timeout_ms;
    size_t off = 0;
    DWORD chunk, done, e;
    int err;

    *st = TRANSPORT_OK;
    while (off < len) {
        chunk = len - off > WRITE_CHUNK_MAX ? WRITE_CHUNK_MAX : (DWORD)(len - off);
        if ((err = pipe_io(t, true, (void *)(data + off), chunk, deadline, &done, &e)) != 0)
            return err;
        off += done;
        if (e == ERROR_SUCCESS && done > 0)
            continue;
        if (is_peer_gone(e)) {
            *st = TRANSPORT_CLOSED;
            return 0;
        }
        /* Still unwritten at the deadline: the agent is not reading. */
        if (e == WAIT_TIMEOUT || (e == ERROR_SUCCESS && remaining_ms(deadline) == 0)) {
            *st = TRANSPORT_TIMEOUT;
            return 0;
        }
        if (e != ERROR_SUCCESS)
            return KW_ERR_SYSTEM;
        /* A write that took nothing and did not fail: try again until the deadline. */
    }
    return 0;
}

/* See transport_read.h. */
int transport_read_exact(struct transport *t, size_t want, int64_t deadline,
                         struct wire_writer *raw, enum transport_status *st)
{
    uint8_t buf[READ_CHUNK];
    DWORD chunk, done, e;
    int err;

    *st = TRANSPORT_OK;
    while (want > 0) {
        chunk = want < sizeof(buf) ? (DWORD)want : (DWORD)sizeof(buf);
        if ((err = pipe_io(t, false, buf, chunk, deadline, &done, &e)) != 0)
            return err;
        if (done > 0) {
            wire_put_bytes(raw, buf, done);
            if (raw->error != 0)
                return raw->error;
            want -= done;
        }
        if (e == ERROR_SUCCESS && done > 0)
            continue;
        if (is_peer_gone(e)) {
            *st = TRANSPORT_CLOSED;
            return 0;
        }
        if (e == WAIT_TIMEOUT) {
            *st = TRANSPORT_TIMEOUT;
            return 0;
        }
        if (e != ERROR_SUCCESS)
            return KW_ERR_SYSTEM;
        /*
         * A read that succeeded with no bytes (a server's zero-byte write
         * can complete one) is not an end of stream, unlike recv()'s 0: a
         * closed pipe fails with ERROR_BROKEN_PIPE. Read on until the
         * deadline.
         */
        if (remaining_ms(deadline) == 0) {
            *st = TRANSPORT_TIMEOUT;
            return 0;
        }
    }
    return 0;
}

void transport_close(struct transport *t)
{
    if (t == NULL)
        return;
    CloseHandle(t->pipe);
    CloseHandle(t->event);
    free(t);
}
