/*
 * keyward: the process's stdin and stdout as libuv streams, on Windows.
 * See platform_stdio_open() in platform.h.
 *
 * libuv's uv_pipe_open() on descriptors 0 and 1 works only where the
 * handles are true Windows pipes that accept SetNamedPipeHandleState().
 * What a program gets as stdio when another one starts it is often not
 * that: under Wine a Linux pipe or socket is refused (ERROR_INVALID_HANDLE),
 * and where libuv does take a synchronous pipe it serves it through a
 * separate, rarely used path (a thread per read, CancelSynchronousIo()).
 * So stdin and stdout are never handed to libuv. Two private overlapped
 * pipes stand between them and the loop, one per direction, and two
 * threads copy:
 *
 *   stdin  --[stdin thread]-->  in pair   --> libuv (the relay reads)
 *   stdout <--[stdout thread]-- out pair  <-- libuv (the relay writes)
 *
 * The loop then sees ordinary pipe streams, the same kind the acceptor
 * gives it, whatever stdio is. The end of stdin closes the in pair's
 * writing end, which the relay reads as the end of the stream; the relay
 * closing out lets the stdout thread write what is left and stop. A
 * stdout that fails closes the out pair, so that the relay's next write
 * fails as a write to a closed pipe would on Unix.
 *
 * The threads are never joined: the stdin thread may sit in a read that
 * only the process's exit ends. They own nothing that is freed before then.
 */
#include "platform/platform.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <bcrypt.h>
#include <sddl.h>

#include "base/err.h"
#include "base/log.h"

/* Each private pipe's buffer, as the acceptor's instances have. */
#define STDIO_PIPE_BUFFER 65536
/* How much one read moves. */
#define COPY_CHUNK 16384
/* Random bytes in each private pipe's name. */
#define NAME_RANDOM_BYTES 16

/* One direction: what its thread reads from and writes to. */
struct copier {
    HANDLE from;
    HANDLE to;
    HANDLE close_when_done; /* our end of the private pipe */
    HANDLE event;           /* for I/O on handles opened for overlapped use */
};

/* Static: the threads may run until the process exits. */
static struct copier stdin_copier, stdout_copier;
static HANDLE stdout_thread;
static bool stdio_opened;

/*
 * One ReadFile() or WriteFile() that returns once it is done, whether the
 * handle was opened for overlapped I/O or not: stdio handles may be either,
 * and a synchronous call on an overlapped handle is not reliable. Returns
 * the number of bytes moved; 0 means the end (or an error: both stop a copy).
 */
static DWORD io_once(HANDLE h, HANDLE event, bool writing, void *buf, DWORD len)
{
    OVERLAPPED ov;
    DWORD done = 0;
    BOOL ok;

    memset(&ov, 0, sizeof(ov));
    ov.hEvent = event;
    ResetEvent(event);
    ok = writing ? WriteFile(h, buf, len, &done, &ov) : ReadFile(h, buf, len, &done, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING)
        ok = GetOverlappedResult(h, &ov, &done, TRUE);
    return ok ? done : 0;
}

/*
 * Copies until either side ends. A read of 0 bytes counts as the end of
 * stdin, as the C runtime counts it; a writer that sends empty writes on
 * purpose would end the stream early, and none that carries the agent
 * protocol does.
 */
static void copy(struct copier *cp)
{
    uint8_t buf[COPY_CHUNK];
    DWORD got, off, put;

    for (;;) {
        if ((got = io_once(cp->from, cp->event, false, buf, sizeof(buf))) == 0)
            break;
        for (off = 0; off < got; off += put) {
            if ((put = io_once(cp->to, cp->event, true, buf + off, got - off)) == 0)
                goto out;
        }
    }
out:
    /* Requests carry private keys (ssh-add): leave no copy on the stack. */
    SecureZeroMemory(buf, sizeof(buf));
}

static DWORD WINAPI copier_thread(void *arg)
{
    struct copier *cp = arg;

    copy(cp);
    /* The relay sees its stream end (stdin) or its writes fail (stdout). */
    CloseHandle(cp->close_when_done);
    cp->close_when_done = NULL;
    return 0;
}

/*
 * A private pipe: a one-instance named pipe that only our user may open,
 * its server end (overlapped, for libuv) in *server and a client end that
 * we opened in *client. The name is random, and the server behind the
 * client end must be this process: a squatter holding the name first (Wine
 * ignores FILE_FLAG_FIRST_PIPE_INSTANCE) is noticed, never talked to.
 */
static int private_pipe(HANDLE *server, HANDLE *client)
{
    uint8_t rnd[NAME_RANDOM_BYTES];
    wchar_t name[96];
    char sddl[320];
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_ATTRIBUTES sa;
    ULONG pid = 0;
    int i, n, r = UV_EIO;

    *server = *client = INVALID_HANDLE_VALUE;
    if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, rnd, sizeof(rnd), BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
        log_error("stdin/stdout: no random bytes for a private pipe's name");
        goto out;
    }
    n = swprintf(name, sizeof(name) / sizeof(name[0]), L"\\\\.\\pipe\\keyward-stdio-%lu-",
                 GetCurrentProcessId());
    for (i = 0; i < NAME_RANDOM_BYTES && n > 0; i++)
        n += swprintf(name + n, sizeof(name) / sizeof(name[0]) - (size_t)n, L"%02x", rnd[i]);
    snprintf(sddl, sizeof(sddl), "D:P(A;;FA;;;%s)(A;;FA;;;SY)", platform_user_sid());
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL)) {
        log_error("stdin/stdout: cannot build a security descriptor (error %lu)", GetLastError());
        goto out;
    }
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = sd;
    sa.bInheritHandle = FALSE;
    *server = CreateNamedPipeW(
        name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
        STDIO_PIPE_BUFFER, STDIO_PIPE_BUFFER, 0, &sa);
    if (*server == INVALID_HANDLE_VALUE) {
        log_error("stdin/stdout: cannot create a private pipe (error %lu)", GetLastError());
        goto out;
    }
    /* A fresh instance takes a client before any ConnectNamedPipe(). */
    *client = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                          SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (*client == INVALID_HANDLE_VALUE) {
        log_error("stdin/stdout: cannot open a private pipe (error %lu)", GetLastError());
        goto out;
    }
    if (!GetNamedPipeServerProcessId(*client, &pid) || pid != GetCurrentProcessId()) {
        log_error("stdin/stdout: a private pipe's name was taken by another process");
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        if (*client != INVALID_HANDLE_VALUE)
            CloseHandle(*client);
        if (*server != INVALID_HANDLE_VALUE)
            CloseHandle(*server);
        *server = *client = INVALID_HANDLE_VALUE;
    }
    LocalFree(sd);
    return r;
}

/* Starts a copier; the thread's handle goes to *thread if wanted. */
static int start_copier(struct copier *cp, HANDLE *thread)
{
    HANDLE t;

    if ((cp->event = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL ||
        (t = CreateThread(NULL, 0, copier_thread, cp, 0, NULL)) == NULL) {
        log_error("stdin/stdout: cannot start a thread (error %lu)", GetLastError());
        if (cp->event != NULL)
            CloseHandle(cp->event);
        cp->event = NULL;
        CloseHandle(cp->close_when_done); /* the thread would have closed it */
        cp->close_when_done = NULL;
        return UV_EIO;
    }
    if (thread != NULL)
        *thread = t;
    else
        CloseHandle(t);
    return 0;
}

int platform_stdio_open(uv_pipe_t *in, uv_pipe_t *out)
{
    HANDLE in_server, in_client, out_server, out_client;
    HANDLE std_in = GetStdHandle(STD_INPUT_HANDLE), std_out = GetStdHandle(STD_OUTPUT_HANDLE);
    int r;

    if (stdio_opened)
        return UV_EBUSY;
    if (std_in == NULL || std_in == INVALID_HANDLE_VALUE || std_out == NULL ||
        std_out == INVALID_HANDLE_VALUE)
        return UV_EBADF;
    if ((r = private_pipe(&in_server, &in_client)) != 0)
        return r;
    if ((r = private_pipe(&out_server, &out_client)) != 0) {
        CloseHandle(in_server);
        CloseHandle(in_client);
        return r;
    }
    stdio_opened = true;
    /* platform_pipe_adopt() takes the server end whether or not it succeeds. */
    if (platform_pipe_adopt(in, in_server) != 0) {
        CloseHandle(out_server);
        goto fail;
    }
    if (platform_pipe_adopt(out, out_server) != 0)
        goto fail;
    /* From here on the copiers own the client ends. */
    stdin_copier = (struct copier){.from = std_in, .to = in_client, .close_when_done = in_client};
    stdout_copier =
        (struct copier){.from = out_client, .to = std_out, .close_when_done = out_client};
    if ((r = start_copier(&stdin_copier, NULL)) != 0) {
        CloseHandle(out_client); /* the stdout copier never starts to own it */
        return r;                /* the relay closes in and out */
    }
    return start_copier(&stdout_copier, &stdout_thread);
fail:
    CloseHandle(in_client);
    CloseHandle(out_client);
    return UV_EIO;
}

void platform_stdio_drain(unsigned timeout_ms)
{
    if (stdout_thread == NULL)
        return;
    if (WaitForSingleObject(stdout_thread, timeout_ms) != WAIT_OBJECT_0)
        log_info("stdout did not take the last replies within %u ms", timeout_ms);
}
