/*
 * pipe_fixture: a deliberately misbehaving named-pipe server (a test
 * fixture only, never installed). The win_probe test points
 * keyward-probe.exe at it to prove that the pipe transport tells every
 * outcome apart within its deadline, as the POSIX transport does with a
 * socket: a reply that never comes, part of a frame, an oversized header,
 * a close, a write the server never reads, and no free pipe instance.
 *
 *   pipe_fixture \\.\pipe\NAME MODE
 *
 * Each connection gets its own thread, which does what MODE says:
 *   silent      never reads nor answers
 *   partial     reads a request, sends 3 bytes of a length field, then waits
 *   oversized   reads a request, answers with a header announcing 2 GiB
 *   cut         reads a request, sends 3 of 9 announced bytes, then closes
 *   close       reads a request, then closes its end (ERROR_BROKEN_PIPE)
 *   disconnect  reads a request, then disconnects the instance
 *               (ERROR_PIPE_NOT_CONNECTED)
 *   busy        as silent, with a single pipe instance: once someone holds
 *               it, every other client finds the pipe busy
 *
 * Prints "listening" when the first instance exists, then serves until it
 * is killed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

/* Small buffers, so that a 256 KiB frame cannot fit and its write blocks. */
#define PIPE_BUFFER 65536

static const char *const modes[] = {
    "silent", "partial", "oversized", "cut", "close", "disconnect", "busy",
};

static const char *mode;

static void write_all(HANDLE h, const void *buf, DWORD len)
{
    DWORD n;

    /* The client may be gone already; that is its business. */
    (void)WriteFile(h, buf, len, &n, NULL);
}

static DWORD WINAPI serve(void *arg)
{
    static const uint8_t partial[] = {0x00, 0x00, 0x00};
    static const uint8_t oversized[] = {0x7f, 0xff, 0xff, 0xff, 0x05};
    static const uint8_t cut[] = {0x00, 0x00, 0x00, 0x09, 0x0c, 0x00, 0x00};
    HANDLE h = arg;
    uint8_t buf[4096];
    DWORD n;

    if (strcmp(mode, "silent") == 0 || strcmp(mode, "busy") == 0)
        Sleep(INFINITE);
    /* The probe writes each request whole, so one read takes it. */
    if (!ReadFile(h, buf, sizeof(buf), &n, NULL)) {
        CloseHandle(h);
        return 0;
    }
    if (strcmp(mode, "partial") == 0) {
        write_all(h, partial, sizeof(partial));
        Sleep(INFINITE);
    } else if (strcmp(mode, "oversized") == 0) {
        write_all(h, oversized, sizeof(oversized));
        Sleep(INFINITE);
    } else if (strcmp(mode, "cut") == 0) {
        write_all(h, cut, sizeof(cut));
        /* Closing a handle keeps what was written for the client to read. */
        (void)FlushFileBuffers(h);
    } else if (strcmp(mode, "disconnect") == 0) {
        (void)DisconnectNamedPipe(h);
    }
    CloseHandle(h);
    return 0;
}

int main(int argc, char **argv)
{
    wchar_t wname[300];
    bool known = false, first = true;
    HANDLE h, thread;
    size_t i;

    for (i = 0; argc == 3 && i < sizeof(modes) / sizeof(modes[0]); i++)
        known = known || strcmp(argv[2], modes[i]) == 0;
    if (!known) {
        fprintf(stderr, "usage: pipe_fixture \\\\.\\pipe\\NAME silent|partial|oversized|cut|"
                        "close|disconnect|busy\n");
        return 2;
    }
    mode = argv[2];
    if (MultiByteToWideChar(CP_UTF8, 0, argv[1], -1, wname, 300) <= 0)
        return 2;
    for (;;) {
        h = CreateNamedPipeW(wname, PIPE_ACCESS_DUPLEX,
                             PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                             strcmp(mode, "busy") == 0 ? 1 : PIPE_UNLIMITED_INSTANCES, PIPE_BUFFER,
                             PIPE_BUFFER, 0, NULL);
        if (h == INVALID_HANDLE_VALUE) {
            /* busy: the one instance is taken, and that is the point. */
            if (!first && GetLastError() == ERROR_PIPE_BUSY)
                Sleep(INFINITE);
            fprintf(stderr, "pipe_fixture: cannot create %s: error %lu\n", argv[1], GetLastError());
            return 1;
        }
        if (first) {
            printf("listening\n");
            fflush(stdout);
            first = false;
        }
        if (!ConnectNamedPipe(h, NULL) && GetLastError() != ERROR_PIPE_CONNECTED) {
            CloseHandle(h);
            continue;
        }
        if ((thread = CreateThread(NULL, 0, serve, h, 0, NULL)) == NULL) {
            CloseHandle(h);
            continue;
        }
        CloseHandle(thread);
    }
}
