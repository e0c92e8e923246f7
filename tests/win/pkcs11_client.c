/*
 * keyward-pkcs11-helper.exe as keyward-agent.exe will start it: with the
 * client end of a duplex named pipe as its standard input, loading a module
 * DLL (tests/pkcs11/bad_module.c built for Windows, bad_pkcs11.dll; there is
 * no Windows SoftHSM2 in Debian). Run under Wine by tests/win/pkcs11.sh:
 *
 *     pkcs11_client.exe HELPER.exe MODULE.dll
 *
 * Checks: with KEYWARD_BAD_MODULE=garbage, LOAD lists the module's one key
 * and its comment, a SIGN whose signature is malformed is FAIL (twice: the
 * helper goes on), an unknown type is FAIL, and the end of the stream makes
 * the helper exit 0; with nokeys, LOAD is FAIL; with abort, the SIGN ends
 * the stream and the helper does not exit 0; a module that does not exist
 * is FAIL. Prints "ok N - ..." lines; exit status 0 if all passed.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "base/wire.h"
#include "proto/helper_msg.h"

static int tests, failures;

static void check(int ok, const char *fmt, ...) __attribute__((format(gnu_printf, 2, 3)));

static void check(int ok, const char *fmt, ...)
{
    va_list ap;

    tests++;
    if (!ok)
        failures++;
    printf("%sok %d - ", ok ? "" : "not ", tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

struct helper {
    HANDLE pipe; /* our end */
    HANDLE process;
};

static int helper_start(struct helper *h, const char *exe, const char *bad)
{
    char name[128], cmd[1024];
    SECURITY_ATTRIBUTES sa;
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    HANDLE child;

    snprintf(name, sizeof(name), "\\\\.\\pipe\\keyward-test-pkcs11-%lu-%d",
             (unsigned long)GetCurrentProcessId(), tests);
    h->pipe =
        CreateNamedPipeA(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 65536, 65536, 0, NULL);
    if (h->pipe == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "CreateNamedPipe: %lu\n", (unsigned long)GetLastError());
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.nLength = sizeof(sa);
    sa.bInheritHandle = TRUE;
    /* The helper's end: read and write, inherited as its standard input. */
    child = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, &sa, OPEN_EXISTING, 0, NULL);
    if (child == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "CreateFile: %lu\n", (unsigned long)GetLastError());
        return -1;
    }
    SetEnvironmentVariableA("KEYWARD_BAD_MODULE", bad);
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = child;
    si.hStdOutput = INVALID_HANDLE_VALUE;
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    snprintf(cmd, sizeof(cmd), "\"%s\"", exe);
    if (!CreateProcessA(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "CreateProcess %s: %lu\n", exe, (unsigned long)GetLastError());
        CloseHandle(child);
        return -1;
    }
    CloseHandle(child);
    CloseHandle(pi.hThread);
    h->process = pi.hProcess;
    return 0;
}

/* Closes our end; the helper's exit code (or -1 if it did not exit within 30 s). */
static long helper_stop(struct helper *h)
{
    DWORD code = (DWORD)-1;

    CloseHandle(h->pipe);
    if (WaitForSingleObject(h->process, 30000) == WAIT_OBJECT_0)
        GetExitCodeProcess(h->process, &code);
    else
        TerminateProcess(h->process, 1);
    CloseHandle(h->process);
    return (long)code;
}

static int io_all(HANDLE p, int writing, void *buf, DWORD len)
{
    DWORD done, off;

    for (off = 0; off < len; off += done) {
        BOOL ok = writing ? WriteFile(p, (uint8_t *)buf + off, len - off, &done, NULL)
                          : ReadFile(p, (uint8_t *)buf + off, len - off, &done, NULL);
        if (!ok || done == 0)
            return -1;
    }
    return 0;
}

/* One request, one reply: the reply's type (body in *body, to free), 0 at end of stream. */
static int request(struct helper *h, const struct wire_writer *w, uint8_t **body, size_t *len)
{
    uint8_t hdr[4];
    uint32_t n;

    *body = NULL;
    *len = 0;
    wire_poke_u32(hdr, (uint32_t)w->len);
    if (io_all(h->pipe, 1, hdr, 4) != 0 || io_all(h->pipe, 1, w->buf, (DWORD)w->len) != 0)
        return 0;
    if (io_all(h->pipe, 0, hdr, 4) != 0)
        return 0;
    n = wire_peek_u32(hdr);
    if (n == 0 || n > WIRE_MAX_MESSAGE || (*body = malloc(n)) == NULL)
        return -1;
    if (io_all(h->pipe, 0, *body, n) != 0)
        return 0;
    *len = n;
    return (*body)[0];
}

static int load(struct helper *h, const char *module, struct wire_writer *blob, char *comment,
                size_t csize)
{
    struct wire_writer w;
    struct wire_reader r;
    struct wire_view b, c;
    uint8_t *body;
    size_t len;
    int t;

    wire_writer_init(&w);
    helper_put_load(&w, module, "1234", 4);
    t = request(h, &w, &body, &len);
    wire_writer_free(&w);
    if (t == HELPER_KEYS) {
        wire_reader_init(&r, body + 1, len - 1);
        if (wire_get_u32(&r) != 1)
            t = -1;
        b = wire_get_string(&r);
        c = wire_get_string(&r);
        if (wire_reader_finish(&r) != 0 || c.len >= csize)
            t = -1;
        if (t == HELPER_KEYS) {
            wire_put_bytes(blob, b.ptr, b.len);
            memcpy(comment, c.ptr, c.len);
            comment[c.len] = '\0';
        }
    }
    free(body);
    return t;
}

static int sign(struct helper *h, const struct wire_writer *blob)
{
    static const uint8_t data[] = "data to sign";
    struct wire_writer w;
    uint8_t *body;
    size_t len;
    int t;

    wire_writer_init(&w);
    helper_put_sign(&w, blob->buf, blob->len, data, sizeof(data), 0);
    t = request(h, &w, &body, &len);
    wire_writer_free(&w);
    free(body);
    return t;
}

int main(int argc, char **argv)
{
    struct helper h;
    struct wire_writer blob, w;
    char comment[64];
    uint8_t *body;
    size_t len;
    long code;
    int t;

    if (argc != 3) {
        fprintf(stderr, "usage: %s HELPER.exe MODULE.dll\n", argv[0]);
        return 1;
    }
    wire_writer_init(&blob);

    if (helper_start(&h, argv[1], "garbage") != 0)
        return 1;
    t = load(&h, argv[2], &blob, comment, sizeof(comment));
    check(t == HELPER_KEYS, "garbage: LOAD of the DLL lists one key (got %d)", t);
    check(t == HELPER_KEYS && strcmp(comment, "bad-module-key") == 0,
          "garbage: its comment is the label");
    check(sign(&h, &blob) == HELPER_FAIL, "garbage: a malformed signature is FAIL");
    check(sign(&h, &blob) == HELPER_FAIL, "garbage: again FAIL, the helper goes on");
    wire_writer_init(&w);
    wire_put_u8(&w, 99);
    t = request(&h, &w, &body, &len);
    free(body);
    wire_writer_free(&w);
    check(t == HELPER_FAIL, "an unknown type: FAIL");
    code = helper_stop(&h);
    check(code == 0, "the end of the stream: the helper exits 0 (got %ld)", code);

    if (helper_start(&h, argv[1], "nokeys") != 0)
        return 1;
    wire_writer_reset(&blob);
    check(load(&h, argv[2], &blob, comment, sizeof(comment)) == HELPER_FAIL,
          "nokeys: LOAD is FAIL");
    code = helper_stop(&h);
    check(code == 0, "nokeys: exit 0 (got %ld)", code);

    if (helper_start(&h, argv[1], "abort") != 0)
        return 1;
    wire_writer_reset(&blob);
    t = load(&h, argv[2], &blob, comment, sizeof(comment));
    check(t == HELPER_KEYS, "abort: LOAD lists the key");
    check(t == HELPER_KEYS && sign(&h, &blob) == 0, "abort: the SIGN ends the stream");
    code = helper_stop(&h);
    check(code != 0, "abort: the helper did not exit 0 (got %ld)", code);

    if (helper_start(&h, argv[1], "garbage") != 0)
        return 1;
    wire_writer_reset(&blob);
    check(load(&h, "Z:\\nonexistent\\nothing.dll", &blob, comment, sizeof(comment)) == HELPER_FAIL,
          "a module that does not exist: FAIL");
    helper_stop(&h);

    wire_writer_free(&blob);
    printf("1..%d\n", tests);
    if (failures != 0) {
        printf("# FAIL win_pkcs11_helper: %d of %d failed\n", failures, tests);
        return 1;
    }
    printf("# PASS win_pkcs11_helper: %d passed\n", tests);
    return 0;
}
