/*
 * keyward fuzzing: the request dispatcher, agent_handle().
 *
 * Input: what a client writes to the socket, a stream of frames (u32
 * length, then the message). Each complete frame goes to agent_handle() on
 * a fake connection, as server.c hands it over; a frame over 256 KiB ends
 * the input as it ends a connection, and a partial last frame is dropped
 * as the server would wait for the rest. The agent starts every input with
 * the corpus keys loaded (plain and certificate identities, see
 * support.h), so sign, remove and re-add requests reach real keys.
 *
 * Jobs are finished as the transport would finish them: signatures and
 * the lock's KDF through agent_job_run() and agent_job_finish(),
 * confirmations through agent_job_confirmed(), refused and approved in
 * turn so both paths run. One exception, for speed: the lock passphrase's
 * scrypt (N = 2^14, about 50 ms under ASan) would make every input with a
 * LOCK 400 times slower than the rest and drag the whole run down to a few
 * hundred executions a second. Under libFuzzer (KEYWARD_FUZZ_FAST_KDF) the
 * harness therefore derives lock and unlock hashes with one SHA-256 of
 * salt and passphrase instead, the same function for both, so locking and
 * unlocking behave exactly as with scrypt; lock_derive() itself is a call
 * into libcrypto with fixed-size output and nothing to parse.
 * KEYWARD_FUZZ_KDF=real in the environment restores scrypt; the replay of
 * seeds and regressions in `make test` always uses it. While a job is out, the next frame goes to a
 * second connection before the job is finished, which is how another
 * client can remove a key or lock the agent while a confirmation or a
 * signature is under way.
 *
 * Invariants checked beyond the sanitizers: every request gets exactly one
 * reply (a message or a job, never both, never neither) and replies carry
 * only reply codes. An unlock attempt that must wait for its agent-wide
 * turn gets neither yet but a retry time (issue 22); as server.c does, the
 * harness offers it again that much later, after finishing the other
 * connection's job if one is out, and it must then be answered. The audit log is on (as with
 * keyward-agent -l, into a 4 KiB line) and every line it makes must be one JSON object on one line:
 * no control character or DEL, however hostile the comment or user name.
 *
 * No state survives an input: the agent and both connections are rebuilt
 * from the loaded keys each time (keys are shared by reference, and are
 * immutable once parsed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "agent/agent.h"
#include "agent/audit.h"
#include "agent/keystore.h"
#include "agent/request.h"
#include "support.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The keys, parsed once: each input's agent gets references to them. */
static struct agent loaded;
static struct agent ag;
static uint64_t clock_ms;
static unsigned confirmations;
static bool fast_kdf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_setup();
#ifdef KEYWARD_FUZZ_FAST_KDF
    fast_kdf = true;
#endif
    if (getenv("KEYWARD_FUZZ_KDF") != NULL)
        fast_kdf = strcmp(getenv("KEYWARD_FUZZ_KDF"), "real") != 0;
    agent_init(&loaded, 0);
    (void)fuzz_load_keys(&loaded);
    return 0;
}

/* keyward-agent -l's sink, minus the file: format the line and check it. */
static void audit_sink(void *ctx, const struct audit_event *ev)
{
    char line[4096];
    size_t n = audit_format_json(ev, 1700000000, line, sizeof(line) - 1), i;

    (void)ctx;
    if (n == 0)
        return; /* too long: keyward-agent drops it (docs/security.md, Findings) */
    FUZZ_ASSERT(n < sizeof(line) - 1);
    FUZZ_ASSERT(line[0] == '{' && line[n - 1] == '}');
    for (i = 0; i < n; i++)
        FUZZ_ASSERT((unsigned char)line[i] >= 0x20 && line[i] != 0x7f);
}

static void agent_reset(void)
{
    fuzz_agent_from(&ag, &loaded, audit_sink);
    clock_ms = 1000000;
    confirmations = 0;
}

static bool is_reply_code(uint8_t t)
{
    switch (t) {
    case SSH_AGENT_FAILURE:
    case SSH_AGENT_SUCCESS:
    case SSH_AGENT_IDENTITIES_ANSWER:
    case SSH_AGENT_SIGN_RESPONSE:
    case SSH_AGENT_EXTENSION_FAILURE:
    case SSH_AGENT_EXTENSION_RESPONSE:
        return true;
    }
    return false;
}

/*
 * Exactly one reply: a message, or a job, never both and never neither; or,
 * for an unlock attempt waiting its turn, nothing yet and a retry time.
 */
static void check_reply(const struct agent_reply *reply)
{
    if (reply->retry_ms > 0) {
        FUZZ_ASSERT(reply->job == NULL && reply->msg.len == 0);
        return;
    }
    if (reply->job != NULL) {
        FUZZ_ASSERT(reply->msg.len == 0);
        return;
    }
    FUZZ_ASSERT(reply->msg.len >= 1);
    FUZZ_ASSERT(is_reply_code(reply->msg.buf[0]));
}

/* agent_job_run(), with the fast stand-in for scrypt described above. */
static void run_job(struct agent_job *job)
{
    EVP_MD_CTX *md;
    unsigned int len = LOCK_HASH_LEN;
    struct agent_lock_job *lj;

    if (!fast_kdf || (job->kind != AGENT_JOB_LOCK && job->kind != AGENT_JOB_UNLOCK)) {
        agent_job_run(job);
        return;
    }
    lj = agent_lock_job(job);
    if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, lj->salt, LOCK_SALT_LEN) != 1 ||
        EVP_DigestUpdate(md, lj->pass, lj->pass_len) != 1 ||
        EVP_DigestFinal_ex(md, lj->hash, &len) != 1)
        abort(); /* the harness itself failed */
    EVP_MD_CTX_free(md);
    lj->run_err = 0;
    OPENSSL_cleanse(lj->pass, lj->pass_len); /* as agent_job_run() does */
}

/* Runs a job and whatever follows from it until a message is the reply. */
static void finish_job(struct agent_conn *c, struct agent_job *job)
{
    struct agent_reply reply;

    agent_reply_init(&reply);
    while (job != NULL) {
        if (job->kind == AGENT_JOB_CONFIRM) {
            /* Refuse the first, approve the second, and so on. */
            agent_job_confirmed(&ag, c, job, (confirmations++ & 1) != 0, &reply);
        } else {
            run_job(job);
            agent_job_finish(&ag, c, job, &reply);
        }
        check_reply(&reply);
        job = reply.job;
        reply.job = NULL;
    }
    agent_reply_free(&reply);
}

/*
 * One request on a connection; returns its job, if any, unfinished. If the
 * request must wait (*retry_ms set), it was not handled: offer it again.
 */
static struct agent_job *handle_frame_once(struct agent_conn *c, struct wire_view body,
                                           uint32_t *retry_ms)
{
    struct agent_reply reply;
    struct agent_job *job;

    agent_reply_init(&reply);
    clock_ms += 1000; /* a second per request: lifetimes run out within an input */
    agent_handle(&ag, c, clock_ms, body.ptr, body.len, &reply);
    check_reply(&reply);
    *retry_ms = reply.retry_ms;
    job = reply.job;
    reply.job = NULL;
    agent_reply_free(&reply);
    /* The server's expiry timer. */
    (void)agent_expire(&ag, clock_ms);
    return job;
}

/*
 * Offers a request until it is handled, the clock moving on as the
 * server's timer would; *pending, another connection's job that is out, is
 * finished first if the request has to wait (it may hold the unlock turn).
 */
static struct agent_job *handle_frame(struct agent_conn *c, struct wire_view body,
                                      struct agent_conn *pending_conn, struct agent_job **pending)
{
    struct agent_job *job;
    uint32_t retry_ms = 0;
    int tries = 0;

    while ((job = handle_frame_once(c, body, &retry_ms)) == NULL && retry_ms > 0) {
        /* Each wait ends with a turn: at most the 10 s delay, or a job finished. */
        FUZZ_ASSERT(++tries < 100);
        if (pending != NULL && *pending != NULL) {
            finish_job(pending_conn, *pending);
            *pending = NULL;
        }
        clock_ms += retry_ms;
    }
    return job;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_conn c, other;
    struct agent_job *job;
    struct wire_view body;
    size_t pos = 0;

    agent_reset();
    agent_conn_init(&c, 1);
    agent_conn_init(&other, 2);
    /* What the platform layer reports about a client, for the audit log. */
    c.client.pid = other.client.pid = 4242;
    c.client.uid = other.client.uid = 1000;
    snprintf(c.client.exe, sizeof(c.client.exe), "/usr/bin/ssh");
    while (fuzz_next_frame(data, size, &pos, &body)) {
        if ((job = handle_frame(&c, body, NULL, NULL)) == NULL)
            continue;
        /* Another client gets in while this one's job is out. */
        if (fuzz_next_frame(data, size, &pos, &body))
            finish_job(&other, handle_frame(&other, body, &c, &job));
        if (job != NULL)
            finish_job(&c, job);
    }
    agent_conn_cleanup(&other);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    return 0;
}
