/*
 * pipe_client: a Windows test client for keyward-agent.exe on a named pipe.
 *
 *   pipe_client [-p \\.\pipe\NAME] -o OUTDIR full
 *   pipe_client [-p \\.\pipe\NAME] refused
 *   pipe_client [-p \\.\pipe\NAME] dacl
 *   pipe_client [-p \\.\pipe\NAME] first
 *   pipe_client [-p \\.\pipe\NAME] storm
 *   pipe_client [-p \\.\pipe\NAME] hold
 *
 * full:    generates keys with the protocol core (src/crypto/key.h), adds them over
 *          the pipe, lists them, has the agent sign SSHSIG blobs, and writes
 *          each public key (OpenSSH .pub) with a message and its armored
 *          SSHSIG signature to OUTDIR, where the Linux side checks them with
 *          ssh-keygen -Y verify. Then, on the same long-lived connection, the
 *          seed's sequence: a first session-bind (authentication) succeeds, a
 *          second is refused, and the connection goes on serving. Meanwhile
 *          short-lived connections come and go, a burst of connections is
 *          held open at once, and one connection sits on half a frame; none
 *          of them holds up another.
 * refused: the agent must close a new connection without answering it.
 * dacl:    prints the pipe's DACL as SDDL, as a client sees it.
 * first:   started before the agent: says "waiting" once the pipe is found
 *          missing, then tries to open it without pause until it exists,
 *          and prints the DACL of that very first connection (on the agent's
 *          first instance, a moment after its creation), then how many opens
 *          failed before; the agent must answer on that connection.
 * storm:   many clients at once from as many threads: long-lived ones (as
 *          tsh keeps one) asking something every round while short-lived
 *          ones (as ssh.exe) connect, ask and close, round after round;
 *          every request must be answered.
 * hold:    connects, is answered, says "held", then waits for the agent to
 *          close the connection (as it must when it shuts down).
 *
 * Prints one line per failed check and "pipe_client: N passed, N failed";
 * the exit status is 0 only if every check passed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../unit/check.h"
#include "agent/request.h"
#include "base/err.h"
#include "base/wire.h"
#include "crypto/key.h"

/* Every single read or write gives up after this long: a hang is a failure. */
#define IO_TIMEOUT_MS      20000
#define CONNECT_TIMEOUT_MS 20000
#define SHORT_CONNS        25
#define BURST_CONNS        40 /* more than the agent's 16 waiting instances */
#define STORM_LONG         8  /* storm: threads that keep one connection */
#define STORM_SHORT        32 /* storm: threads that connect anew every round */
#define STORM_ROUNDS       15
#define FIRST_TIMEOUT_MS   60000 /* first: how long the agent may take to start */

#define SSHSIG_NAMESPACE "file"

static const char *pipe_name = "\\\\.\\pipe\\openssh-ssh-agent";
static const char *outdir = ".";

enum io_status {
    IO_OK,
    IO_CLOSED,  /* the agent closed the pipe */
    IO_TIMEOUT, /* neither an answer nor a close in time */
    IO_ERROR,
};

/* ---- pipe I/O: overlapped, so that every operation has a timeout ---- */

static enum io_status pipe_io(HANDLE h, bool writing, void *buf, DWORD len)
{
    OVERLAPPED ov;
    DWORD done = 0, e;
    BOOL ok;

    while (len > 0) {
        memset(&ov, 0, sizeof(ov));
        if ((ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
            return IO_ERROR;
        ok = writing ? WriteFile(h, buf, len, NULL, &ov) : ReadFile(h, buf, len, NULL, &ov);
        e = ok ? ERROR_SUCCESS : GetLastError();
        if (!ok && e == ERROR_IO_PENDING &&
            WaitForSingleObject(ov.hEvent, IO_TIMEOUT_MS) != WAIT_OBJECT_0) {
            CancelIo(h);
            (void)GetOverlappedResult(h, &ov, &done, TRUE);
            CloseHandle(ov.hEvent);
            return IO_TIMEOUT;
        }
        if (ok || e == ERROR_IO_PENDING) {
            ok = GetOverlappedResult(h, &ov, &done, TRUE);
            e = ok ? ERROR_SUCCESS : GetLastError();
        }
        CloseHandle(ov.hEvent);
        if (!ok || done == 0) {
            if (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_NO_DATA ||
                (ok && done == 0))
                return IO_CLOSED;
            return IO_ERROR;
        }
        buf = (uint8_t *)buf + done;
        len -= done;
    }
    return IO_OK;
}

/* Connects, waiting for a free instance (or for the agent to come up) a while. */
static HANDLE pipe_connect(void)
{
    wchar_t wname[300];
    ULONGLONG deadline = GetTickCount64() + CONNECT_TIMEOUT_MS;
    HANDLE h;
    DWORD e;

    if (MultiByteToWideChar(CP_UTF8, 0, pipe_name, -1, wname, 300) <= 0)
        return INVALID_HANDLE_VALUE;
    for (;;) {
        h = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED, NULL);
        if (h != INVALID_HANDLE_VALUE)
            return h;
        e = GetLastError();
        if (GetTickCount64() > deadline) {
            fprintf(stderr, "cannot connect to %s: error %lu\n", pipe_name, e);
            return INVALID_HANDLE_VALUE;
        }
        /* Every instance taken: wait for the agent to make another. */
        if (e == ERROR_PIPE_BUSY)
            (void)WaitNamedPipeW(wname, 1000);
        else
            Sleep(50);
    }
}

static enum io_status send_frame(HANDLE h, const struct wire_writer *msg)
{
    uint8_t hdr[4];
    enum io_status st;

    wire_poke_u32(hdr, (uint32_t)msg->len);
    if ((st = pipe_io(h, true, hdr, 4)) != IO_OK)
        return st;
    return pipe_io(h, true, msg->buf, (DWORD)msg->len);
}

/* One reply body into reply (reset first). */
static enum io_status recv_frame(HANDLE h, struct wire_writer *reply)
{
    uint8_t hdr[4], *body;
    uint32_t len;
    enum io_status st;

    wire_writer_reset(reply);
    if ((st = pipe_io(h, false, hdr, 4)) != IO_OK)
        return st;
    len = wire_peek_u32(hdr);
    if (len == 0 || len > WIRE_MAX_MESSAGE || (body = malloc(len)) == NULL)
        return IO_ERROR;
    if ((st = pipe_io(h, false, body, len)) == IO_OK)
        wire_put_bytes(reply, body, len);
    free(body);
    return st;
}

/* Sends a request and returns the reply's type, or -1 if there was no reply. */
static int request(HANDLE h, const struct wire_writer *req, struct wire_writer *reply)
{
    if (send_frame(h, req) != IO_OK || recv_frame(h, reply) != IO_OK || reply->len < 1)
        return -1;
    return reply->buf[0];
}

/* ---- requests ---- */

/* Number of identities listed, or -1. If want is given, each of its blobs must be listed. */
static long list_keys(HANDLE h, struct key *const *want, size_t nwant)
{
    struct wire_writer req, reply;
    struct wire_reader r;
    struct wire_view blob;
    uint32_t n, i;
    size_t found = 0, j;
    long result = -1;

    wire_writer_init(&req);
    wire_writer_init(&reply);
    wire_put_u8(&req, SSH_AGENTC_REQUEST_IDENTITIES);
    if (request(h, &req, &reply) != SSH_AGENT_IDENTITIES_ANSWER)
        goto out;
    wire_reader_init(&r, reply.buf + 1, reply.len - 1);
    n = wire_get_u32(&r);
    for (i = 0; i < n && r.error == 0; i++) {
        blob = wire_get_string(&r);
        (void)wire_get_string(&r); /* comment */
        for (j = 0; j < nwant; j++) {
            if (wire_view_eq(blob, want[j]->blob, want[j]->blob_len))
                found++;
        }
    }
    if (wire_reader_finish(&r) == 0 && found == nwant)
        result = n;
out:
    wire_writer_free(&req);
    wire_writer_free(&reply);
    return result;
}

static int add_key(HANDLE h, const struct key *k, const char *comment)
{
    struct wire_writer req, reply;
    int type = -1;

    wire_writer_init(&req);
    wire_writer_init(&reply);
    wire_put_u8(&req, SSH_AGENTC_ADD_IDENTITY);
    if (key_private_serialize(k, &req) == 0) {
        wire_put_cstring(&req, comment);
        type = request(h, &req, &reply);
    }
    wire_writer_free(&req);
    wire_writer_free(&reply);
    return type;
}

/* Has the agent sign data; the signature blob goes to sig. Returns the reply type. */
static int agent_sign(HANDLE h, const struct key *k, const uint8_t *data, size_t len,
                      uint32_t flags, struct wire_writer *sig)
{
    struct wire_writer req, reply;
    struct wire_reader r;
    struct wire_view v;
    int type;

    wire_writer_init(&req);
    wire_writer_init(&reply);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, k->blob, k->blob_len);
    wire_put_string(&req, data, len);
    wire_put_u32(&req, flags);
    type = request(h, &req, &reply);
    if (type == SSH_AGENT_SIGN_RESPONSE) {
        wire_reader_init(&r, reply.buf + 1, reply.len - 1);
        v = wire_get_string(&r);
        if (wire_reader_finish(&r) == 0)
            wire_put_bytes(sig, v.ptr, v.len);
        else
            type = -1;
    }
    wire_writer_free(&req);
    wire_writer_free(&reply);
    return type;
}

/* session-bind@openssh.com with a fresh session id signed by hostkey. */
static int session_bind(HANDLE h, const struct key *hostkey, bool forwarding)
{
    struct wire_writer req, reply, sig;
    uint8_t sid[32];
    int type = -1;

    wire_writer_init(&req);
    wire_writer_init(&reply);
    wire_writer_init(&sig);
    if (RAND_bytes(sid, sizeof(sid)) != 1 || key_sign(hostkey, sid, sizeof(sid), 0, &sig) != 0)
        goto out;
    wire_put_u8(&req, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&req, EXT_SESSION_BIND);
    wire_put_string(&req, hostkey->blob, hostkey->blob_len);
    wire_put_string(&req, sid, sizeof(sid));
    wire_put_string(&req, sig.buf, sig.len);
    wire_put_bool(&req, forwarding);
    type = request(h, &req, &reply);
out:
    wire_writer_free(&req);
    wire_writer_free(&reply);
    wire_writer_free(&sig);
    return type;
}

/* A request whose only content is a type byte and optional string. */
static int simple_request(HANDLE h, uint8_t type, const char *str)
{
    struct wire_writer req, reply;
    int r;

    wire_writer_init(&req);
    wire_writer_init(&reply);
    wire_put_u8(&req, type);
    if (str != NULL)
        wire_put_cstring(&req, str);
    r = request(h, &req, &reply);
    wire_writer_free(&req);
    wire_writer_free(&reply);
    return r;
}

/* ---- files for ssh-keygen on the Linux side ---- */

static int write_file(const char *name, const void *data, size_t len)
{
    char path[1024];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    if ((f = fopen(path, "wb")) == NULL) {
        fprintf(stderr, "cannot write %s\n", path);
        return KW_ERR_SYSTEM;
    }
    ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : KW_ERR_SYSTEM;
}

/* Base64 of data, as a NUL-terminated malloc'd string. */
static char *base64(const uint8_t *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* "<type> <base64> <comment>\n", the OpenSSH .pub format. */
static int write_pub(const char *name, const struct key *k, const char *comment)
{
    char *b64 = base64(k->blob, k->blob_len), *line;
    size_t len;
    int r = KW_ERR_ALLOC;

    if (b64 == NULL)
        return r;
    len = strlen(key_type_name(k)) + strlen(b64) + strlen(comment) + 4;
    if ((line = malloc(len)) != NULL) {
        snprintf(line, len, "%s %s %s\n", key_type_name(k), b64, comment);
        r = write_file(name, line, strlen(line));
        free(line);
    }
    free(b64);
    return r;
}

/*
 * PROTOCOL.sshsig: the signed data is "SSHSIG", namespace, reserved, hash
 * algorithm and H(message); the armored signature holds "SSHSIG", version 1,
 * the public key, the same fields and the signature blob.
 */
static void sshsig_fields(struct wire_writer *w, const uint8_t *hash, size_t hashlen)
{
    wire_put_cstring(w, SSHSIG_NAMESPACE);
    wire_put_string(w, "", 0); /* reserved */
    wire_put_cstring(w, "sha512");
    if (hash != NULL)
        wire_put_string(w, hash, hashlen);
}

static int write_sshsig(const char *name, const struct key *k, const struct wire_writer *sig)
{
    struct wire_writer w, armor;
    char *b64;
    size_t i, n;
    int r = KW_ERR_ALLOC;

    wire_writer_init(&w);
    wire_writer_init(&armor);
    wire_put_bytes(&w, "SSHSIG", 6);
    wire_put_u32(&w, 1);
    wire_put_string(&w, k->blob, k->blob_len);
    sshsig_fields(&w, NULL, 0);
    wire_put_string(&w, sig->buf, sig->len);
    if (w.error != 0 || (b64 = base64(w.buf, w.len)) == NULL)
        goto out;
    wire_put_bytes(&armor, "-----BEGIN SSH SIGNATURE-----\n", 30);
    for (i = 0, n = strlen(b64); i < n; i += 70) {
        wire_put_bytes(&armor, b64 + i, n - i < 70 ? n - i : 70);
        wire_put_u8(&armor, '\n');
    }
    wire_put_bytes(&armor, "-----END SSH SIGNATURE-----\n", 28);
    free(b64);
    r = armor.error != 0 ? armor.error : write_file(name, armor.buf, armor.len);
out:
    wire_writer_free(&w);
    wire_writer_free(&armor);
    return r;
}

/*
 * Signs message with k through the agent as ssh-keygen -Y sign would, checks
 * the signature here and writes NAME.pub, NAME.msg and NAME.msg.sig.
 */
static void sign_and_export(HANDLE h, const struct key *k, const char *name, uint32_t flags)
{
    struct wire_writer tbs, sig;
    uint8_t hash[64];
    unsigned int hashlen = sizeof(hash);
    char msg[128], fname[160];

    wire_writer_init(&tbs);
    wire_writer_init(&sig);
    snprintf(msg, sizeof(msg), "keyward on Windows signed this with %s\n", key_type_name(k));
    CHECK(EVP_Digest(msg, strlen(msg), hash, &hashlen, EVP_sha512(), NULL) == 1);
    wire_put_bytes(&tbs, "SSHSIG", 6);
    sshsig_fields(&tbs, hash, hashlen);
    CHECK_EQ(agent_sign(h, k, tbs.buf, tbs.len, flags, &sig), SSH_AGENT_SIGN_RESPONSE);
    CHECK_EQ(key_verify(k, sig.buf, sig.len, tbs.buf, tbs.len), 0);

    snprintf(fname, sizeof(fname), "%s.pub", name);
    CHECK_EQ(write_pub(fname, k, name), 0);
    snprintf(fname, sizeof(fname), "%s.msg", name);
    CHECK_EQ(write_file(fname, msg, strlen(msg)), 0);
    snprintf(fname, sizeof(fname), "%s.msg.sig", name);
    CHECK_EQ(write_sshsig(fname, k, &sig), 0);
    wire_writer_free(&tbs);
    wire_writer_free(&sig);
}

/* ---- scenarios ---- */

#define NKEYS 4

static int run_full(void)
{
    static const struct {
        enum key_kind kind;
        unsigned bits;
        const char *name;
        uint32_t flags;
    } kinds[NKEYS] = {
        {KEY_ED25519, 0, "ed25519", 0},
        {KEY_ECDSA_P256, 0, "ecdsa", 0},
        /* ssh-keygen -Y accepts RSA signatures with SHA-2 only. */
        {KEY_RSA, 2048, "rsa", KEY_SIGN_RSA_SHA2_512},
        /*
         * keyward-agent.exe is built with OpenSSL 3.5 (scripts/win-deps.sh),
         * so it has ML-DSA; checked here with key_verify(), as Debian 12's
         * ssh-keygen on the Linux side does not know the type.
         */
        {KEY_MLDSA44_ED25519, 0, "mldsa44-ed25519", 0},
    };
    struct key *keys[NKEYS] = {NULL}, *hostkey = NULL;
    struct wire_writer sig;
    HANDLE a, b, stalled, burst[BURST_CONNS];
    uint8_t partial[100];
    size_t i;
    int n;

    wire_writer_init(&sig);
    /* A: the long-lived connection, as tsh -A keeps one. */
    a = pipe_connect();
    CHECK(a != INVALID_HANDLE_VALUE);
    if (a == INVALID_HANDLE_VALUE)
        return check_finish("pipe_client");
    /* A connection that sends a frame header and a little of its body, then waits. */
    stalled = pipe_connect();
    CHECK(stalled != INVALID_HANDLE_VALUE);
    memset(partial, 0xEE, sizeof(partial)); /* 0xEE: an unknown message type */
    wire_poke_u32(partial, sizeof(partial) - 4);
    CHECK_EQ(pipe_io(stalled, true, partial, 10), IO_OK);

    CHECK_EQ(list_keys(a, NULL, 0), 0);
    for (i = 0; i < NKEYS; i++) {
        CHECK_EQ(key_generate(kinds[i].kind, kinds[i].bits, &keys[i]), 0);
        if (keys[i] == NULL)
            goto out;
        CHECK_EQ(add_key(a, keys[i], kinds[i].name), SSH_AGENT_SUCCESS);
    }
    CHECK_EQ(list_keys(a, keys, NKEYS), NKEYS);
    for (i = 0; i < NKEYS; i++)
        sign_and_export(a, keys[i], kinds[i].name, kinds[i].flags);

    /*
     * The seed: the first binding (for authentication) succeeds; any later
     * one on this connection is refused, and refusing must not cost the
     * connection.
     */
    CHECK_EQ(key_generate(KEY_ED25519, 0, &hostkey), 0);
    if (hostkey == NULL)
        goto out;
    CHECK_EQ(session_bind(a, hostkey, false), SSH_AGENT_SUCCESS);
    CHECK_EQ(session_bind(a, hostkey, false), SSH_AGENT_EXTENSION_FAILURE);
    CHECK_EQ(list_keys(a, keys, NKEYS), NKEYS);
    CHECK_EQ(session_bind(a, hostkey, true), SSH_AGENT_EXTENSION_FAILURE);
    wire_writer_reset(&sig);
    CHECK_EQ(agent_sign(a, keys[0], (const uint8_t *)"after", 5, 0, &sig), SSH_AGENT_SIGN_RESPONSE);
    CHECK_EQ(key_verify(keys[0], sig.buf, sig.len, (const uint8_t *)"after", 5), 0);

    /* What the Windows port's agent closes the connection on; all answered here. */
    CHECK_EQ(simple_request(a, 200, NULL), SSH_AGENT_FAILURE);
    CHECK_EQ(simple_request(a, SSH_AGENTC_EXTENSION, "query"), SSH_AGENT_EXTENSION_RESPONSE);
    CHECK_EQ(simple_request(a, SSH_AGENTC_EXTENSION, "no-such@example.com"), SSH_AGENT_FAILURE);
    CHECK_EQ(simple_request(a, SSH_AGENTC_LOCK, "hunter2"), SSH_AGENT_SUCCESS);
    CHECK_EQ(list_keys(a, NULL, 0), 0);
    CHECK_EQ(simple_request(a, SSH_AGENTC_UNLOCK, "hunter2"), SSH_AGENT_SUCCESS);
    CHECK_EQ(list_keys(a, keys, NKEYS), NKEYS);

    /* B: short-lived connections, as ssh.exe opens one per use, while A stays open. */
    for (i = 0; i < SHORT_CONNS; i++) {
        b = pipe_connect();
        CHECK(b != INVALID_HANDLE_VALUE);
        if (b == INVALID_HANDLE_VALUE)
            break;
        CHECK_EQ(list_keys(b, keys, NKEYS), NKEYS);
        CloseHandle(b);
    }

    /* A burst of connections open at once, more than the instances kept waiting. */
    for (i = 0; i < BURST_CONNS; i++) {
        burst[i] = pipe_connect();
        CHECK(burst[i] != INVALID_HANDLE_VALUE);
    }
    for (i = BURST_CONNS; i-- > 0;) {
        if (burst[i] != INVALID_HANDLE_VALUE) {
            CHECK_EQ(list_keys(burst[i], keys, NKEYS), NKEYS);
            CloseHandle(burst[i]);
        }
    }

    /* The stalled connection was only waiting: its frame completes and is answered. */
    if (stalled != INVALID_HANDLE_VALUE) {
        struct wire_writer reply;

        wire_writer_init(&reply);
        CHECK_EQ(pipe_io(stalled, true, partial + 10, sizeof(partial) - 10), IO_OK);
        CHECK_EQ(recv_frame(stalled, &reply), IO_OK);
        CHECK(reply.len == 1 && reply.buf[0] == SSH_AGENT_FAILURE);
        wire_writer_free(&reply);
        CloseHandle(stalled);
    }

    /* And A, idle all this while, still works. The keys stay for the agent's exit. */
    n = (int)list_keys(a, keys, NKEYS);
    CHECK_EQ(n, NKEYS);
out:
    CloseHandle(a);
    for (i = 0; i < NKEYS; i++)
        key_free(keys[i]);
    key_free(hostkey);
    wire_writer_free(&sig);
    return check_finish("pipe_client");
}

/* The agent must close the connection without answering anything. */
static int run_refused(void)
{
    struct wire_writer req, reply;
    HANDLE h;
    enum io_status st;

    h = pipe_connect();
    CHECK(h != INVALID_HANDLE_VALUE);
    if (h == INVALID_HANDLE_VALUE)
        return check_finish("pipe_client");
    wire_writer_init(&req);
    wire_writer_init(&reply);
    wire_put_u8(&req, SSH_AGENTC_REQUEST_IDENTITIES);
    /* The write may already fail if the agent was quick to close. */
    st = send_frame(h, &req);
    CHECK(st == IO_OK || st == IO_CLOSED);
    st = recv_frame(h, &reply);
    if (st != IO_CLOSED)
        fprintf(stderr, "expected the agent to close the pipe, got %s\n",
                st == IO_OK        ? "an answer"
                : st == IO_TIMEOUT ? "a timeout"
                                   : "an error");
    CHECK_EQ(st, IO_CLOSED);
    wire_writer_free(&req);
    wire_writer_free(&reply);
    CloseHandle(h);
    return check_finish("pipe_client");
}

/* Prints the DACL of the pipe h is connected to as SDDL; 0 or a KW_ERR_* code. */
static int print_dacl(HANDLE h)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    char *sddl = NULL;
    DWORD e;
    int r = KW_ERR_SYSTEM;

    e = GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL,
                        &sd);
    if (e != ERROR_SUCCESS) {
        fprintf(stderr, "GetSecurityInfo: error %lu\n", e);
        goto out;
    }
    if (!ConvertSecurityDescriptorToStringSecurityDescriptorA(
            sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &sddl, NULL)) {
        fprintf(stderr, "cannot convert the security descriptor: error %lu\n", GetLastError());
        goto out;
    }
    printf("%s\n", sddl);
    fflush(stdout);
    r = 0;
out:
    if (sddl != NULL)
        LocalFree(sddl);
    if (sd != NULL)
        LocalFree(sd);
    return r;
}

/* Prints the pipe's DACL as SDDL (our SID is printed as is, others too). */
static int run_dacl(void)
{
    HANDLE h;

    h = pipe_connect();
    CHECK(h != INVALID_HANDLE_VALUE);
    if (h == INVALID_HANDLE_VALUE)
        return check_finish("pipe_client");
    CHECK_EQ(print_dacl(h), 0);
    CloseHandle(h);
    return check_finish("pipe_client");
}

/*
 * The first connection there ever is to the pipe: no pause between tries,
 * so that this client opens the agent's first instance as soon after its
 * creation as it can. Whatever DACL it reads is what the pipe had from
 * the start: with libuv's instances there was a moment (between
 * uv_pipe_bind() and the DACL being set) when it was the default one.
 */
static int run_first(void)
{
    wchar_t wname[300];
    ULONGLONG deadline = GetTickCount64() + FIRST_TIMEOUT_MS;
    unsigned long failed = 0;
    HANDLE h;
    DWORD e;

    if (MultiByteToWideChar(CP_UTF8, 0, pipe_name, -1, wname, 300) <= 0)
        return 2;
    for (;;) {
        h = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED, NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        e = GetLastError();
        if (e != ERROR_FILE_NOT_FOUND || GetTickCount64() > deadline) {
            fprintf(stderr, "cannot open %s: error %lu\n", pipe_name, e);
            CHECK(h != INVALID_HANDLE_VALUE);
            return check_finish("pipe_client");
        }
        if (failed++ == 0) {
            printf("waiting\n");
            fflush(stdout);
        }
        SwitchToThread(); /* let the agent run, and try again at once */
    }
    CHECK_EQ(print_dacl(h), 0);
    printf("failed opens before the pipe existed: %lu\n", failed);
    /* The agent serves this connection like any other. */
    CHECK_EQ(list_keys(h, NULL, 0), 0);
    CloseHandle(h);
    return check_finish("pipe_client");
}

/* One storm thread; counts instead of CHECKing (the counters are not atomic). */
struct storm_worker {
    HANDLE thread;
    bool long_lived;
    long answered;
    long failed;
};

static HANDLE storm_start; /* manual-reset: every thread starts at once */

static DWORD WINAPI storm_run(void *arg)
{
    struct storm_worker *w = arg;
    HANDLE h = INVALID_HANDLE_VALUE;
    int i;

    (void)WaitForSingleObject(storm_start, INFINITE);
    for (i = 0; i < STORM_ROUNDS; i++) {
        if (h == INVALID_HANDLE_VALUE && (h = pipe_connect()) == INVALID_HANDLE_VALUE) {
            w->failed++;
            continue;
        }
        if (list_keys(h, NULL, 0) >= 0)
            w->answered++;
        else
            w->failed++;
        if (w->long_lived) {
            Sleep(20); /* idle a little, as a session between uses */
        } else {
            CloseHandle(h);
            h = INVALID_HANDLE_VALUE;
        }
    }
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    return 0;
}

static int run_storm(void)
{
    struct storm_worker w[STORM_LONG + STORM_SHORT];
    long answered = 0, failed = 0;
    ULONGLONG started;
    size_t i, n = sizeof(w) / sizeof(w[0]), running = 0;
    HANDLE a;

    memset(w, 0, sizeof(w));
    /* One more long-lived connection, opened before and asked after the storm. */
    a = pipe_connect();
    CHECK(a != INVALID_HANDLE_VALUE);
    if (a == INVALID_HANDLE_VALUE)
        return check_finish("pipe_client");
    CHECK(list_keys(a, NULL, 0) >= 0);
    storm_start = CreateEventW(NULL, TRUE, FALSE, NULL);
    CHECK(storm_start != NULL);
    for (i = 0; i < n && storm_start != NULL; i++) {
        w[i].long_lived = i < STORM_LONG;
        w[i].thread = CreateThread(NULL, 0, storm_run, &w[i], 0, NULL);
        CHECK(w[i].thread != NULL);
        if (w[i].thread != NULL)
            running++;
    }
    started = GetTickCount64();
    if (storm_start != NULL)
        SetEvent(storm_start);
    for (i = 0; i < n; i++) {
        if (w[i].thread == NULL)
            continue;
        CHECK_EQ(WaitForSingleObject(w[i].thread, 100000), WAIT_OBJECT_0);
        CloseHandle(w[i].thread);
        answered += w[i].answered;
        failed += w[i].failed;
    }
    printf("storm: %ld requests answered, %ld failed, from %lu threads in %llu ms\n", answered,
           failed, (unsigned long)running, (unsigned long long)(GetTickCount64() - started));
    CHECK_EQ(answered, (long)(n * STORM_ROUNDS));
    CHECK_EQ(failed, 0);
    CHECK(list_keys(a, NULL, 0) >= 0);
    CloseHandle(a);
    if (storm_start != NULL)
        CloseHandle(storm_start);
    return check_finish("pipe_client");
}

/* Stays connected until the agent closes the connection (it is stopping). */
static int run_hold(void)
{
    HANDLE h;
    uint8_t byte;
    enum io_status st;

    h = pipe_connect();
    CHECK(h != INVALID_HANDLE_VALUE);
    if (h == INVALID_HANDLE_VALUE)
        return check_finish("pipe_client");
    CHECK(list_keys(h, NULL, 0) >= 0);
    printf("held\n");
    fflush(stdout);
    /* Nothing more is asked, so nothing may arrive: only the close. */
    st = pipe_io(h, false, &byte, 1);
    if (st != IO_CLOSED)
        fprintf(stderr, "expected the agent to close the pipe, got %s\n",
                st == IO_OK        ? "data"
                : st == IO_TIMEOUT ? "a timeout"
                                   : "an error");
    CHECK_EQ(st, IO_CLOSED);
    CloseHandle(h);
    return check_finish("pipe_client");
}

static void usage(void)
{
    fprintf(stderr, "usage: pipe_client [-p pipe] [-o outdir] full | refused | dacl | first | "
                    "storm | hold\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int i;

    /* As keyward-agent.exe: never read an openssl.cnf from the compiled-in Linux path. */
    if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL))
        return 1;
    for (i = 1; i < argc - 1 && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-p") == 0)
            pipe_name = argv[i + 1];
        else if (strcmp(argv[i], "-o") == 0)
            outdir = argv[i + 1];
        else
            usage();
    }
    if (i != argc - 1)
        usage();
    if (strcmp(argv[i], "full") == 0)
        return run_full();
    if (strcmp(argv[i], "refused") == 0)
        return run_refused();
    if (strcmp(argv[i], "dacl") == 0)
        return run_dacl();
    if (strcmp(argv[i], "first") == 0)
        return run_first();
    if (strcmp(argv[i], "storm") == 0)
        return run_storm();
    if (strcmp(argv[i], "hold") == 0)
        return run_hold();
    usage();
    return 2;
}
