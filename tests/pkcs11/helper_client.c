/*
 * Drives keyward-pkcs11-helper over the provider helper protocol
 * (docs/providers.md), as keyward-agent would, on a socketpair that is the
 * helper's standard input, and checks every answer:
 *
 *     helper_client TOKEN_DIR BAD_MODULE -- HELPER [ARG...]
 *
 * TOKEN_DIR is what tests/pkcs11/softhsm_token.sh made (its module, PIN and
 * .pub files); BAD_MODULE is tests/pkcs11/bad_module.c's library. HELPER
 * and its arguments are the command that runs the helper (valgrind in front
 * of it, for the memcheck test). Every check prints "ok N - ..." or
 * "not ok N - ..."; exit status 0 if all passed, 1 otherwise.
 *
 * With SoftHSM2: a wrong PIN and an empty PIN are refused; the right PIN
 * lists exactly the token's keys (TOKEN_DIR/keys), blobs equal to their
 * .pub files; every key signs (RSA with flags 0, 2, 4 and 6) and key_verify()
 * accepts each signature under the algorithm the flags ask for; unknown
 * keys, unknown types and malformed bodies get FAIL and the helper goes
 * on; the end of its input makes it exit 0. With the bad module: a module
 * that aborts kills the helper (we see the end of the stream), a garbled
 * signature is FAIL (the helper verifies what the module returns before
 * answering), a hang gets no answer, a module without keys is FAIL.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/err.h"
#include "base/wire.h"
#include "crypto/key.h"
#include "fixture_sock.h"
#include "keyfile.h"
#include "proto/helper_msg.h"

/* SoftHSM2 signs with RSA-4096 in well under a second; valgrind makes everything slower. */
#define REPLY_TIMEOUT_MS 60000
#define HANG_WAIT_MS     2000
#define MAX_REPLY        (WIRE_MAX_MESSAGE)

static int tests, failures;
static char **helper_argv;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
    pid_t pid;
    int fd;
};

/* Starts the helper with one end of a socketpair as its stdin; bad: KEYWARD_BAD_MODULE or NULL. */
static int helper_start(struct helper *h, const char *bad)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("socketpair");
        return -1;
    }
    fflush(stdout);
    if ((h->pid = fork()) < 0) {
        perror("fork");
        return -1;
    }
    if (h->pid == 0) {
        if (dup2(sv[1], 0) != 0)
            _exit(126);
        if (bad != NULL)
            setenv("KEYWARD_BAD_MODULE", bad, 1);
        else
            unsetenv("KEYWARD_BAD_MODULE");
        execvp(helper_argv[0], helper_argv);
        perror(helper_argv[0]);
        _exit(127);
    }
    close(sv[1]);
    h->fd = sv[0];
    return 0;
}

/* Ends the helper's input and returns its wait status (kill: SIGKILL first). */
static int helper_stop(struct helper *h, int kill_it)
{
    int status = -1;

    if (kill_it)
        kill(h->pid, SIGKILL);
    shutdown(h->fd, SHUT_WR);
    while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(h->fd);
    return status;
}

/*
 * One request, one reply: the reply's type (its body in *body, to free),
 * 0 at the end of the stream, -1 on a timeout or an error.
 */
static int request(struct helper *h, const struct wire_writer *w, int timeout_ms, uint8_t **body,
                   size_t *len)
{
    enum fixture_read r;

    *body = NULL;
    *len = 0;
    if (!fixture_send_frame(h->fd, w->buf, w->len))
        return 0;
    r = fixture_recv_frame(h->fd, MAX_REPLY, timeout_ms, body, len);
    if (r == FIXTURE_READ_EOF)
        return 0;
    if (r != FIXTURE_READ_DONE)
        return -1;
    return (*body)[0];
}

/* A request from raw bytes: its reply's type as request(). */
static int request_raw(struct helper *h, const void *msg, size_t len)
{
    struct wire_writer w;
    uint8_t *body;
    size_t blen;
    int t;

    wire_writer_init(&w);
    wire_put_bytes(&w, msg, len);
    t = request(h, &w, REPLY_TIMEOUT_MS, &body, &blen);
    free(body);
    wire_writer_free(&w);
    return t;
}

static int load(struct helper *h, const char *module, const char *pin, uint8_t **body, size_t *len)
{
    struct wire_writer w;
    int t;

    wire_writer_init(&w);
    helper_put_load(&w, module, pin, strlen(pin));
    t = request(h, &w, REPLY_TIMEOUT_MS, body, len);
    wire_writer_free(&w);
    return t;
}

static int load_type(struct helper *h, const char *module, const char *pin)
{
    uint8_t *body;
    size_t len;
    int t = load(h, module, pin, &body, &len);

    free(body);
    return t;
}

static const uint8_t sign_data[] = "keyward-pkcs11-helper test data: sign me";

/*
 * SIGN with blob and flags: the reply's type; for SIGNATURE, the signature
 * blob is checked with key_verify() and its algorithm compared with want_alg.
 */
static int sign(struct helper *h, const uint8_t *blob, size_t blob_len, uint32_t flags,
                int timeout_ms, const char *want_alg, int *verified)
{
    struct wire_writer w;
    struct wire_reader r;
    struct wire_view sig;
    struct key *k = NULL;
    uint8_t *body;
    size_t len;
    char alg[64];
    int t;

    *verified = 0;
    wire_writer_init(&w);
    helper_put_sign(&w, blob, blob_len, sign_data, sizeof(sign_data), flags);
    t = request(h, &w, timeout_ms, &body, &len);
    wire_writer_free(&w);
    if (t == HELPER_SIGNATURE) {
        wire_reader_init(&r, body + 1, len - 1);
        sig = wire_get_string(&r);
        if (wire_reader_finish(&r) == 0 && key_from_plain_blob(blob, blob_len, &k) == 0 &&
            key_verify(k, sig.ptr, sig.len, sign_data, sizeof(sign_data)) == 0 &&
            key_signature_algorithm(sig.ptr, sig.len, alg, sizeof(alg)) == 0)
            *verified = want_alg == NULL || strcmp(alg, want_alg) == 0;
        key_free(k);
    }
    free(body);
    return t;
}

static char *read_line(const char *dir, const char *name)
{
    char path[4096], buf[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "r")) == NULL || fgets(buf, sizeof(buf), f) == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

/* The token's keys, as softhsm_token.sh lists them in TOKEN_DIR/keys. */
#define MAX_KEYS 8
static char *key_names[MAX_KEYS];
static unsigned nkeys;

static void read_key_names(const char *dir)
{
    char path[4096], buf[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/keys", dir);
    if ((f = fopen(path, "r")) == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    while (fgets(buf, sizeof(buf), f) != NULL && nkeys < MAX_KEYS) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (buf[0] != '\0')
            key_names[nkeys++] = strdup(buf);
    }
    fclose(f);
    if (nkeys < 2) {
        fprintf(stderr, "%s lists %u keys\n", path, nkeys);
        exit(1);
    }
}

struct token_key {
    uint8_t *blob;
    size_t len;
    int is_rsa;
};

static void softhsm_tests(const char *dir)
{
    struct token_key keys[MAX_KEYS];
    struct helper h;
    struct wire_reader r;
    struct wire_view blob, comment;
    struct helper_reply rep;
    char path[4096], label[128], *module, *pin;
    uint8_t *body;
    size_t len;
    uint32_t n, i, j;
    int t, v, seen[MAX_KEYS] = {0}, matched = 1, status;
    static const uint8_t other_blob_ed25519[] = {0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
                                                 '2', '5', '5', '1', '9', 0,   0,   0,   32};
    uint8_t unknown[sizeof(other_blob_ed25519) + 32];

    read_key_names(dir);
    module = read_line(dir, "module");
    pin = read_line(dir, "pin");
    snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
    setenv("SOFTHSM2_CONF", path, 1);
    for (i = 0; i < nkeys; i++) {
        snprintf(path, sizeof(path), "%s/%s.pub", dir, key_names[i]);
        if (pubfile_load(path, &keys[i].blob, &keys[i].len) != 0) {
            fprintf(stderr, "cannot read %s\n", path);
            exit(1);
        }
        keys[i].is_rsa = strncmp(key_names[i], "id_rsa", 6) == 0;
    }

    /* A wrong PIN, then an empty one (no login: the keys are private objects). */
    if (helper_start(&h, NULL) != 0)
        exit(1);
    check(load_type(&h, module, "000000") == HELPER_FAIL, "LOAD with a wrong PIN: FAIL");
    status = helper_stop(&h, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "then the end of input: exit 0");
    if (helper_start(&h, NULL) != 0)
        exit(1);
    check(load_type(&h, module, "") == HELPER_FAIL, "LOAD with an empty PIN (no login): FAIL");
    status = helper_stop(&h, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "then the end of input: exit 0");
    if (helper_start(&h, NULL) != 0)
        exit(1);
    check(load_type(&h, "/nonexistent/libnothing.so", pin) == HELPER_FAIL,
          "LOAD of a module that does not exist: FAIL");
    status = helper_stop(&h, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "then the end of input: exit 0");

    /* The right PIN: SIGN before LOAD first. */
    if (helper_start(&h, NULL) != 0)
        exit(1);
    t = sign(&h, keys[0].blob, keys[0].len, 0, REPLY_TIMEOUT_MS, NULL, &v);
    check(t == HELPER_FAIL, "SIGN before LOAD: FAIL");
    t = load(&h, module, pin, &body, &len);
    check(t == HELPER_KEYS, "LOAD with the right PIN: KEYS (got %d)", t);
    if (t == HELPER_KEYS) {
        check(helper_reply_decode(body, len, &rep) == 0, "KEYS is well formed");
        n = rep.nkeys;
        check(n == nkeys, "KEYS lists %u keys (want %u: the token's)", n, nkeys);
        wire_reader_from_view(&r, rep.keys);
        for (i = 0; i < n && r.error == 0; i++) {
            (void)helper_keys_next(&r, &blob, &comment);
            for (j = 0; j < nkeys; j++) {
                if (wire_view_eq(blob, keys[j].blob, keys[j].len))
                    break;
            }
            if (j == nkeys || seen[j]) {
                matched = 0;
                continue;
            }
            seen[j] = 1;
            snprintf(label, sizeof(label), "keyward-test-%s", key_names[j]);
            check(wire_view_eq_str(comment, label), "%s: comment is its label", key_names[j]);
        }
        check(wire_reader_finish(&r) == 0, "KEYS has exactly its count of keys");
        for (j = 0; j < nkeys; j++)
            matched = matched && seen[j];
        check(matched, "every blob equals one .pub file, each once");
    }
    free(body);
    check(load_type(&h, module, pin) == HELPER_FAIL, "a second LOAD: FAIL");

    for (j = 0; j < nkeys; j++) {
        if (keys[j].is_rsa) {
            static const struct {
                uint32_t flags;
                const char *alg;
            } rsa[] = {{0, "ssh-rsa"},
                       {KEY_SIGN_RSA_SHA2_256, "rsa-sha2-256"},
                       {KEY_SIGN_RSA_SHA2_512, "rsa-sha2-512"},
                       {KEY_SIGN_RSA_SHA2_256 | KEY_SIGN_RSA_SHA2_512, "rsa-sha2-256"}};
            for (i = 0; i < sizeof(rsa) / sizeof(rsa[0]); i++) {
                t = sign(&h, keys[j].blob, keys[j].len, rsa[i].flags, REPLY_TIMEOUT_MS, rsa[i].alg,
                         &v);
                check(t == HELPER_SIGNATURE && v, "%s flags %u: a valid %s signature", key_names[j],
                      rsa[i].flags, rsa[i].alg);
            }
        } else {
            t = sign(&h, keys[j].blob, keys[j].len, 0, REPLY_TIMEOUT_MS, NULL, &v);
            check(t == HELPER_SIGNATURE && v, "%s: a valid signature", key_names[j]);
        }
    }

    /* A key the token does not hold: FAIL, and the helper still answers. */
    memcpy(unknown, other_blob_ed25519, sizeof(other_blob_ed25519));
    memset(unknown + sizeof(other_blob_ed25519), 0x11, 32);
    t = sign(&h, unknown, sizeof(unknown), 0, REPLY_TIMEOUT_MS, NULL, &v);
    check(t == HELPER_FAIL, "SIGN with a key it did not list: FAIL");
    t = sign(&h, keys[1].blob, keys[1].len, 0, REPLY_TIMEOUT_MS, NULL, &v);
    check(t == HELPER_SIGNATURE && v, "then SIGN still works");

    /* Malformed requests: FAIL each, and it goes on. */
    {
        static const uint8_t unknown_type[] = {99, 0, 0, 0, 0};
        static const uint8_t keys_type[] = {HELPER_KEYS, 0, 0, 0, 0};
        static const uint8_t truncated[] = {HELPER_SIGN, 0, 0, 1, 0, 's', 's', 'h'};
        static const uint8_t no_flags[] = {HELPER_SIGN, 0, 0, 0, 0, 0, 0, 0, 0};
        static const uint8_t trailing[] = {HELPER_SIGN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
        static const uint8_t huge_string[] = {HELPER_LOAD, 0xff, 0xff, 0xff, 0xff, 'x'};

        check(request_raw(&h, unknown_type, sizeof(unknown_type)) == HELPER_FAIL,
              "an unknown type: FAIL");
        check(request_raw(&h, keys_type, sizeof(keys_type)) == HELPER_FAIL,
              "a helper-to-agent type (KEYS) as a request: FAIL");
        check(request_raw(&h, truncated, sizeof(truncated)) == HELPER_FAIL,
              "a truncated SIGN body: FAIL");
        check(request_raw(&h, no_flags, sizeof(no_flags)) == HELPER_FAIL,
              "a SIGN without flags: FAIL");
        check(request_raw(&h, trailing, sizeof(trailing)) == HELPER_FAIL,
              "a SIGN with trailing bytes: FAIL");
        check(request_raw(&h, huge_string, sizeof(huge_string)) == HELPER_FAIL,
              "a LOAD whose string overruns the body: FAIL");
        check(request_raw(&h, "", 0) == HELPER_FAIL, "an empty message: FAIL");
    }
    /* A well-formed request for the other helper (keyward-sk-helper's SK_SIGN): FAIL. */
    {
        struct wire_writer w;

        wire_writer_init(&w);
        helper_put_sk_sign(&w, "internal", HELPER_SK_ALG_ED25519, "ssh:", (const uint8_t *)"kh", 2,
                           1, (const uint8_t *)"data", 4);
        check(w.error == 0 && request_raw(&h, w.buf, w.len) == HELPER_FAIL,
              "an SK_SIGN (keyward-sk-helper's request): FAIL");
        wire_writer_free(&w);
    }
    t = sign(&h, keys[nkeys - 1].blob, keys[nkeys - 1].len, 0, REPLY_TIMEOUT_MS, NULL, &v);
    check(t == HELPER_SIGNATURE && v, "after all that, SIGN still works");

    status = helper_stop(&h, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the end of its input: the helper exits 0 (status 0x%x)", (unsigned)status);

    for (i = 0; i < nkeys; i++) {
        free(keys[i].blob);
        free(key_names[i]);
    }
    free(module);
    free(pin);
}

/* LOAD the bad module: KEYS with its one key (its blob in blob), or FAIL. */
static int bad_load(struct helper *h, const char *module, uint8_t **blob, size_t *blob_len)
{
    struct wire_reader r;
    struct wire_view b;
    uint8_t *body;
    size_t len;
    int t;

    *blob = NULL;
    t = load(h, module, "1234", &body, &len);
    if (t == HELPER_KEYS) {
        wire_reader_init(&r, body + 1, len - 1);
        if (wire_get_u32(&r) == 1) {
            b = wire_get_string(&r);
            (void)wire_get_string(&r);
            if (wire_reader_finish(&r) == 0 && (*blob = malloc(b.len)) != NULL) {
                memcpy(*blob, b.ptr, b.len);
                *blob_len = b.len;
            }
        }
    }
    free(body);
    return t;
}

static void bad_module_tests(const char *module)
{
    struct helper h;
    uint8_t *blob;
    size_t blob_len = 0;
    int t, v, status;

    /* nokeys */
    if (helper_start(&h, "nokeys") != 0)
        exit(1);
    check(bad_load(&h, module, &blob, &blob_len) == HELPER_FAIL,
          "bad module without keys: LOAD is FAIL");
    free(blob);
    status = helper_stop(&h, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bad module without keys: exit 0 at EOF");

    /* garbage: the helper catches the malformed signature itself. */
    if (helper_start(&h, "garbage") != 0)
        exit(1);
    t = bad_load(&h, module, &blob, &blob_len);
    check(t == HELPER_KEYS && blob != NULL, "bad module (garbage): LOAD lists its key");
    if (blob != NULL) {
        t = sign(&h, blob, blob_len, 0, REPLY_TIMEOUT_MS, NULL, &v);
        check(t == HELPER_FAIL, "bad module (garbage): a malformed signature is FAIL (got %d)", t);
        t = sign(&h, blob, blob_len, 0, REPLY_TIMEOUT_MS, NULL, &v);
        check(t == HELPER_FAIL, "bad module (garbage): again FAIL, the helper still answers");
    }
    free(blob);
    status = helper_stop(&h, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bad module (garbage): exit 0 at EOF");

    /* abort in C_Sign: the helper dies; we see the end of the stream. */
    if (helper_start(&h, "abort") != 0)
        exit(1);
    t = bad_load(&h, module, &blob, &blob_len);
    check(t == HELPER_KEYS && blob != NULL, "bad module (abort): LOAD lists its key");
    if (blob != NULL) {
        t = sign(&h, blob, blob_len, 0, REPLY_TIMEOUT_MS, NULL, &v);
        check(t == 0, "bad module (abort): SIGN ends the stream (got %d)", t);
    }
    free(blob);
    status = helper_stop(&h, 0);
    check(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
          "bad module (abort): the helper did not exit 0 (status 0x%x)", (unsigned)status);

    /* abort in C_Initialize */
    if (helper_start(&h, "abort-init") != 0)
        exit(1);
    t = bad_load(&h, module, &blob, &blob_len);
    check(t == 0, "bad module (abort in C_Initialize): LOAD ends the stream (got %d)", t);
    free(blob);
    helper_stop(&h, 0);

    /* hang: no answer; the agent's timeout is the cure (killed here). */
    if (helper_start(&h, "hang") != 0)
        exit(1);
    t = bad_load(&h, module, &blob, &blob_len);
    check(t == HELPER_KEYS && blob != NULL, "bad module (hang): LOAD lists its key");
    if (blob != NULL) {
        t = sign(&h, blob, blob_len, 0, HANG_WAIT_MS, NULL, &v);
        check(t == -1, "bad module (hang): no answer within %d ms", HANG_WAIT_MS);
    }
    free(blob);
    status = helper_stop(&h, 1);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
          "bad module (hang): the helper is still there until killed");
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: %s TOKEN_DIR BAD_MODULE -- HELPER [ARG...]\n", argv[0]);
        return 1;
    }
    helper_argv = argv + 4;
    signal(SIGPIPE, SIG_IGN);
    softhsm_tests(argv[1]);
    bad_module_tests(argv[2]);
    printf("1..%d\n", tests);
    if (failures != 0) {
        printf("# FAIL pkcs11_helper: %d of %d failed\n", failures, tests);
        return 1;
    }
    printf("# PASS pkcs11_helper: %d passed\n", tests);
    return 0;
}
