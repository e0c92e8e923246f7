/*
 * Unit tests: the dispatcher, request by request, with real keys and real
 * host key signatures. The central property is the seed's: whatever a
 * request does, it gets exactly one reply, and the same connection state
 * goes on serving the next request.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "agent/agent.h"
#include "agent/audit.h"
#include "agent/binding.h"
#include "agent/request.h"
#include "base/err.h"
#include "base/log.h"
#include "base/path.h"
#include "base/wire.h"
#include "check.h"
#include "crypto/key.h"

static struct agent ag;
static uint64_t now_ms = 1000;

/* memmem() is a GNU extension that the Windows C library lacks. */
static bool contains_bytes(const void *hay, size_t haylen, const void *needle, size_t len)
{
    const uint8_t *h = hay;
    size_t i;

    for (i = 0; len <= haylen && i <= haylen - len; i++) {
        if (memcmp(h + i, needle, len) == 0)
            return true;
    }
    return false;
}

/* Sends one request body and returns the reply's message type. */
static uint8_t roundtrip(struct agent_conn *c, const struct wire_writer *req,
                         struct agent_reply *reply)
{
    agent_handle(&ag, c, now_ms, req->buf, req->len, reply);
    CHECK(reply->msg.len >= 1); /* always exactly one reply */
    return reply->msg.len >= 1 ? reply->msg.buf[0] : 0;
}

static uint8_t send_simple(struct agent_conn *c, const struct wire_writer *req)
{
    struct agent_reply reply;
    uint8_t type;

    agent_reply_init(&reply);
    type = roundtrip(c, req, &reply);
    agent_reply_free(&reply);
    return type;
}

/* Number of keys a list request reports, or -1 on a malformed answer. */
static long list_count(struct agent_conn *c)
{
    struct wire_writer req;
    struct agent_reply reply;
    struct wire_reader r;
    uint32_t n, i;
    long result = -1;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REQUEST_IDENTITIES);
    agent_reply_init(&reply);
    if (roundtrip(c, &req, &reply) == SSH_AGENT_IDENTITIES_ANSWER) {
        wire_reader_init(&r, reply.msg.buf + 1, reply.msg.len - 1);
        n = wire_get_u32(&r);
        for (i = 0; i < n; i++) {
            (void)wire_get_string(&r);
            (void)wire_get_string(&r);
        }
        if (wire_reader_finish(&r) == 0)
            result = n;
    }
    agent_reply_free(&reply);
    wire_writer_free(&req);
    return result;
}

static uint8_t add_key(struct agent_conn *c, const struct key *k, const char *comment,
                       const uint8_t *constraints, size_t clen)
{
    struct wire_writer req;
    uint8_t type;

    wire_writer_init(&req);
    wire_put_u8(&req, clen ? SSH_AGENTC_ADD_ID_CONSTRAINED : SSH_AGENTC_ADD_IDENTITY);
    CHECK_EQ(key_private_serialize(k, &req), 0);
    wire_put_cstring(&req, comment);
    wire_put_bytes(&req, constraints, clen);
    type = send_simple(c, &req);
    wire_writer_free(&req);
    return type;
}

/* Signs data with the agent's copy of k; verifies the reply when it succeeds. */
static uint8_t sign_with(struct agent_conn *c, const struct key *k, uint32_t flags)
{
    static const uint8_t data[] = "data to be signed by the agent";
    struct wire_writer req;
    struct agent_reply reply;
    struct wire_reader r;
    struct wire_view sig;
    uint8_t type;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, k->blob, k->blob_len);
    wire_put_string(&req, data, sizeof(data));
    wire_put_u32(&req, flags);
    agent_reply_init(&reply);
    type = roundtrip(c, &req, &reply);
    if (type == SSH_AGENT_SIGN_RESPONSE) {
        wire_reader_init(&r, reply.msg.buf + 1, reply.msg.len - 1);
        sig = wire_get_string(&r);
        CHECK_EQ(wire_reader_finish(&r), 0);
        CHECK_EQ(key_verify(k, sig.ptr, sig.len, data, sizeof(data)), 0);
    }
    agent_reply_free(&reply);
    wire_writer_free(&req);
    return type;
}

static void put_session_bind(struct wire_writer *req, const struct key *hostkey, const uint8_t *sid,
                             size_t sidlen, bool forwarding, bool corrupt)
{
    struct wire_writer sig;

    wire_writer_init(&sig);
    CHECK_EQ(key_sign(hostkey, sid, sidlen, KEY_SIGN_RSA_SHA2_512, &sig), 0);
    if (corrupt)
        sig.buf[sig.len - 1] ^= 0x55;
    wire_put_u8(req, SSH_AGENTC_EXTENSION);
    wire_put_cstring(req, EXT_SESSION_BIND);
    wire_put_string(req, hostkey->blob, hostkey->blob_len);
    wire_put_string(req, sid, sidlen);
    wire_put_string(req, sig.buf, sig.len);
    wire_put_bool(req, forwarding);
    wire_writer_free(&sig);
}

static uint8_t session_bind(struct agent_conn *c, const struct key *hostkey, const uint8_t *sid,
                            size_t sidlen, bool forwarding, bool corrupt)
{
    struct wire_writer req;
    uint8_t type;

    wire_writer_init(&req);
    put_session_bind(&req, hostkey, sid, sidlen, forwarding, corrupt);
    type = send_simple(c, &req);
    wire_writer_free(&req);
    return type;
}

static void random_sid(uint8_t sid[32])
{
    CHECK_EQ(RAND_bytes(sid, 32), 1);
}

/* ---- capturing the log and the audit events ---- */

#define CAPTURE_FILE "test_agent_log.tmp"
static int capture_saved_fd = -1;

/* From here to capture_end(), log lines (debug ones too) go to a file. */
static void capture_begin(void)
{
    FILE *f;

    fflush(stderr);
    capture_saved_fd = dup(fileno(stderr));
    CHECK(capture_saved_fd >= 0);
    f = fopen(CAPTURE_FILE, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK(dup2(fileno(f), fileno(stderr)) >= 0);
        fclose(f);
    }
    log_init("test_agent", LOG_LEVEL_DEBUG, LOG_SINK_STDERR);
}

/* Restores stderr and returns what was logged (at most size - 1 bytes). */
static const char *capture_end(char *buf, size_t size)
{
    FILE *f;
    size_t n = 0;

    log_init("test_agent", LOG_LEVEL_ERROR, LOG_SINK_STDERR);
    fflush(stderr);
    if (capture_saved_fd >= 0) {
        dup2(capture_saved_fd, fileno(stderr));
        close(capture_saved_fd);
        capture_saved_fd = -1;
    }
    if ((f = fopen(CAPTURE_FILE, "r")) != NULL) {
        n = fread(buf, 1, size - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    remove(CAPTURE_FILE);
    return buf;
}

/* The last audit event, as its JSON line. */
static char last_audit[AUDIT_LINE_MAX];

static void audit_capture(void *ctx, const struct audit_event *ev)
{
    (void)ctx;
    if (audit_format_json(ev, 0, last_audit, sizeof(last_audit)) == 0)
        snprintf(last_audit, sizeof(last_audit), "(event too long)");
}

/* ---- tests ---- */

static void test_basic_key_lifecycle(void)
{
    struct agent_conn c;
    struct key *ed = NULL, *rsa = NULL;
    struct wire_writer req;

    agent_conn_init(&c, 1);
    CHECK_EQ(list_count(&c), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &ed), 0);
    CHECK_EQ(key_generate(KEY_RSA, 2048, &rsa), 0);
    CHECK_EQ(add_key(&c, ed, "ed key", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(add_key(&c, rsa, "rsa key", NULL, 0), SSH_AGENT_SUCCESS);
    /* Re-adding replaces rather than duplicates. */
    CHECK_EQ(add_key(&c, ed, "ed key again", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(list_count(&c), 2);
    CHECK_EQ(sign_with(&c, ed, 0), SSH_AGENT_SIGN_RESPONSE);
    CHECK_EQ(sign_with(&c, rsa, KEY_SIGN_RSA_SHA2_256), SSH_AGENT_SIGN_RESPONSE);
    CHECK_EQ(sign_with(&c, rsa, KEY_SIGN_RSA_SHA2_512), SSH_AGENT_SIGN_RESPONSE);

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&req, ed->blob, ed->blob_len);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE); /* already gone */
    CHECK_EQ(sign_with(&c, ed, 0), SSH_AGENT_FAILURE);
    CHECK_EQ(list_count(&c), 1);
    wire_writer_free(&req);

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    CHECK_EQ(list_count(&c), 0);
    wire_writer_free(&req);

    key_free(ed);
    key_free(rsa);
    agent_conn_cleanup(&c);
}

static void test_constraints(void)
{
    struct agent_conn c;
    struct key *k = NULL;
    static const uint8_t lifetime[] = {SSH_AGENT_CONSTRAIN_LIFETIME, 0, 0, 0, 5};
    static const uint8_t confirm[] = {SSH_AGENT_CONSTRAIN_CONFIRM};
    static const uint8_t unknown[] = {SSH_AGENT_CONSTRAIN_LIFETIME, 0, 0, 0, 5, 99};
    static const uint8_t ext[] = {255, 0, 0, 0, 3, 'f', 'o', 'o'};
    static const uint8_t twice[] = {SSH_AGENT_CONSTRAIN_CONFIRM, SSH_AGENT_CONSTRAIN_CONFIRM};

    agent_conn_init(&c, 2);
    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &k), 0);
    /* Unknown constraints fail the whole add: nothing half-added. */
    CHECK_EQ(add_key(&c, k, "x", unknown, sizeof(unknown)), SSH_AGENT_FAILURE);
    CHECK_EQ(add_key(&c, k, "x", ext, sizeof(ext)), SSH_AGENT_FAILURE);
    CHECK_EQ(add_key(&c, k, "x", twice, sizeof(twice)), SSH_AGENT_FAILURE);
    CHECK_EQ(list_count(&c), 0);

    /* Lifetime: usable before, gone after, even with no timer running. */
    CHECK_EQ(add_key(&c, k, "x", lifetime, sizeof(lifetime)), SSH_AGENT_SUCCESS);
    CHECK_EQ(list_count(&c), 1);
    CHECK_EQ(sign_with(&c, k, 0), SSH_AGENT_SIGN_RESPONSE);
    now_ms += 5000;
    CHECK_EQ(list_count(&c), 0);
    CHECK_EQ(sign_with(&c, k, 0), SSH_AGENT_FAILURE);

    /* Confirm: stored; covered in test_jobs. */
    CHECK_EQ(add_key(&c, k, "x", confirm, sizeof(confirm)), SSH_AGENT_SUCCESS);
    CHECK_EQ(list_count(&c), 1);
    CHECK(ag.keys.count == 1 && ag.keys.ids[0]->confirm);

    /* agent -t: a default lifetime applies to keys added without one. */
    agent_cleanup(&ag);
    agent_init(&ag, 2);
    CHECK_EQ(add_key(&c, k, "x", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK(ag.keys.count == 1 && ag.keys.ids[0]->expires_ms == now_ms + 2000);
    now_ms += 2000;
    CHECK_EQ(list_count(&c), 0);
    agent_cleanup(&ag);
    agent_init(&ag, 0);

    key_free(k);
    agent_conn_cleanup(&c);
}

/*
 * The seed: on ONE connection, a session-bind for authentication, then a
 * second one. The second is refused with EXTENSION_FAILURE, and the same
 * connection keeps listing and signing.
 */
static void test_seed_rebind_keeps_connection(void)
{
    struct agent_conn c;
    struct key *host = NULL, *user = NULL;
    uint8_t sid1[32], sid2[32];

    agent_conn_init(&c, 3);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &host), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &user), 0);
    CHECK_EQ(add_key(&c, user, "user", NULL, 0), SSH_AGENT_SUCCESS);
    random_sid(sid1);
    random_sid(sid2);

    CHECK_EQ(session_bind(&c, host, sid1, sizeof(sid1), false, false), SSH_AGENT_SUCCESS);
    CHECK_EQ(c.bindings.count, 1);
    CHECK_EQ(session_bind(&c, host, sid2, sizeof(sid2), false, false), SSH_AGENT_EXTENSION_FAILURE);
    /* The authentication binding stays and still decides: the refusal adds nothing. */
    CHECK(c.bindings.attempted && c.bindings.count == 1);
    /* Same connection, still served. */
    CHECK_EQ(list_count(&c), 1);
    CHECK_EQ(sign_with(&c, user, 0), SSH_AGENT_SIGN_RESPONSE);
    /* Even repeating the first binding is refused after an auth binding. */
    CHECK_EQ(session_bind(&c, host, sid1, sizeof(sid1), false, false), SSH_AGENT_EXTENSION_FAILURE);
    CHECK_EQ(list_count(&c), 1);

    key_free(host);
    key_free(user);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    agent_init(&ag, 0);
}

static void test_session_bind_rules(void)
{
    struct agent_conn c;
    struct key *host = NULL, *other = NULL, *rsahost = NULL;
    uint8_t sid[32], sids[BINDING_MAX + 1][32], big[BINDING_MAX_SID + 1];
    int i;

    agent_conn_init(&c, 4);
    CHECK_EQ(key_generate(KEY_ECDSA_P384, 0, &host), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &other), 0);
    CHECK_EQ(key_generate(KEY_RSA, 2048, &rsahost), 0);
    random_sid(sid);

    /* A bad signature is refused and remembered. */
    CHECK_EQ(session_bind(&c, host, sid, sizeof(sid), true, true), SSH_AGENT_EXTENSION_FAILURE);
    CHECK(c.bindings.attempted && c.bindings.count == 0);
    /* A signature by another key over the right sid is refused. */
    CHECK_EQ(list_count(&c), 0);

    /* Forwarding bindings: same sid and key is a no-op success. */
    CHECK_EQ(session_bind(&c, rsahost, sid, sizeof(sid), true, false), SSH_AGENT_SUCCESS);
    CHECK_EQ(session_bind(&c, rsahost, sid, sizeof(sid), true, false), SSH_AGENT_SUCCESS);
    CHECK_EQ(c.bindings.count, 1);
    /* Same sid, different key: refused. */
    CHECK_EQ(session_bind(&c, other, sid, sizeof(sid), true, false), SSH_AGENT_EXTENSION_FAILURE);
    CHECK_EQ(c.bindings.count, 1);
    agent_conn_cleanup(&c);

    /* Sixteen forwarding bindings fit; the seventeenth is refused. */
    agent_conn_init(&c, 5);
    for (i = 0; i < BINDING_MAX + 1; i++)
        random_sid(sids[i]);
    for (i = 0; i < BINDING_MAX; i++)
        CHECK_EQ(session_bind(&c, host, sids[i], 32, true, false), SSH_AGENT_SUCCESS);
    CHECK_EQ(session_bind(&c, host, sids[BINDING_MAX], 32, true, false),
             SSH_AGENT_EXTENSION_FAILURE);
    CHECK_EQ(c.bindings.count, BINDING_MAX);
    CHECK_EQ(list_count(&c), 0);
    agent_conn_cleanup(&c);

    /* Session ids over 128 bytes are refused. */
    agent_conn_init(&c, 6);
    memset(big, 7, sizeof(big));
    CHECK_EQ(session_bind(&c, other, big, sizeof(big), false, false), SSH_AGENT_EXTENSION_FAILURE);
    CHECK_EQ(session_bind(&c, other, big, BINDING_MAX_SID, false, false), SSH_AGENT_SUCCESS);
    agent_conn_cleanup(&c);

    key_free(host);
    key_free(other);
    key_free(rsahost);
}

static void test_lock(void)
{
    struct agent_conn c;
    struct key *k = NULL;
    struct wire_writer req;
    struct agent_reply reply;
    uint8_t sid[32];

    agent_conn_init(&c, 7);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &k), 0);
    CHECK_EQ(add_key(&c, k, "k", NULL, 0), SSH_AGENT_SUCCESS);

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_LOCK);
    wire_put_cstring(&req, "");
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE); /* empty passphrase */
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_LOCK);
    wire_put_cstring(&req, "hunter2");
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE); /* already locked */
    CHECK(ag.lock.locked);
    /* The passphrase is not kept, only its salted hash. */
    CHECK(!contains_bytes(&ag.lock, sizeof(ag.lock), "hunter2", 7));

    /* Locked: no keys shown, no signing, no adding; session-bind still works. */
    CHECK_EQ(list_count(&c), 0);
    CHECK_EQ(sign_with(&c, k, 0), SSH_AGENT_FAILURE);
    CHECK_EQ(add_key(&c, k, "k", NULL, 0), SSH_AGENT_FAILURE);
    random_sid(sid);
    CHECK_EQ(session_bind(&c, k, sid, sizeof(sid), false, false), SSH_AGENT_SUCCESS);
    /* Any other extension fails while locked, query too (OpenSSH 10.5). */
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&req, EXT_QUERY);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE);

    /* Wrong passphrase: failure, with a growing delay for this reply. */
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_UNLOCK);
    wire_put_cstring(&req, "wrong");
    agent_reply_init(&reply);
    CHECK_EQ(roundtrip(&c, &req, &reply), SSH_AGENT_FAILURE);
    CHECK_EQ(reply.delay_ms, 100);
    /*
     * Issue 22: the delay is agent wide. Another attempt, from any
     * connection, within it is not handled but told to wait its turn.
     */
    {
        struct agent_conn other;

        agent_conn_init(&other, 8);
        now_ms += 40;
        agent_handle(&ag, &other, now_ms, req.buf, req.len, &reply);
        CHECK_EQ(reply.msg.len, 0);
        CHECK(reply.job == NULL);
        CHECK_EQ(reply.retry_ms, 60);
        CHECK_EQ(ag.lock.fail_count, 1); /* not evaluated */
        now_ms += 60;
        CHECK_EQ(roundtrip(&other, &req, &reply), SSH_AGENT_FAILURE);
        CHECK_EQ(reply.delay_ms, 200);
        agent_conn_cleanup(&other);
    }
    agent_reply_free(&reply);
    CHECK(ag.lock.locked);

    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_UNLOCK);
    wire_put_cstring(&req, "hunter2");
    now_ms += 200;
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    CHECK(!ag.lock.locked);
    CHECK_EQ(list_count(&c), 1);
    CHECK_EQ(sign_with(&c, k, 0), SSH_AGENT_SIGN_RESPONSE);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE); /* not locked */
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&req, EXT_QUERY);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_EXTENSION_RESPONSE); /* unlocked: query again */
    wire_writer_free(&req);

    key_free(k);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    agent_init(&ag, 0);
}

static void test_extensions_and_garbage(void)
{
    struct agent_conn c;
    struct wire_writer req;
    struct agent_reply reply;
    struct wire_reader r;
    struct wire_view name;
    bool saw_bind = false;
    static const uint8_t garbage[][6] = {
        {SSH_AGENTC_SIGN_REQUEST, 0, 0, 0, 9, 1},    /* string past the end */
        {SSH_AGENTC_ADD_IDENTITY, 0, 0, 0, 1, 'x'},  /* truncated add */
        {SSH_AGENTC_REMOVE_IDENTITY, 0, 0, 0, 0, 0}, /* trailing byte */
        {SSH_AGENTC_REQUEST_IDENTITIES, 1, 2, 3, 4, 5},
        {SSH_AGENTC_EXTENSION, 0xff, 0xff, 0xff, 0xff, 0},
        {SSH_AGENTC_LOCK, 0, 0, 0, 2, 'a'},
    };
    size_t i;

    agent_conn_init(&c, 8);
    wire_writer_init(&req);

    /* Unknown message type: plain failure. */
    wire_put_u8(&req, 200);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE);
    /* Empty message. */
    wire_writer_reset(&req);
    agent_reply_init(&reply);
    agent_handle(&ag, &c, now_ms, NULL, 0, &reply);
    CHECK(reply.msg.len == 1 && reply.msg.buf[0] == SSH_AGENT_FAILURE);
    agent_reply_free(&reply);

    /* Unknown extension: plain failure, not EXTENSION_FAILURE. */
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&req, "no-such-extension@example.com");
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE);

    /* query: EXTENSION_RESPONSE, "query", then the names. */
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&req, EXT_QUERY);
    agent_reply_init(&reply);
    CHECK_EQ(roundtrip(&c, &req, &reply), SSH_AGENT_EXTENSION_RESPONSE);
    wire_reader_init(&r, reply.msg.buf + 1, reply.msg.len - 1);
    CHECK(wire_view_eq_str(wire_get_string(&r), EXT_QUERY));
    while (wire_remaining(&r) > 0) {
        name = wire_get_string(&r);
        if (wire_view_eq_str(name, EXT_SESSION_BIND))
            saw_bind = true;
    }
    CHECK_EQ(wire_reader_finish(&r), 0);
    CHECK(saw_bind);
    agent_reply_free(&reply);

    /* Malformed session-bind: EXTENSION_FAILURE (a known extension). */
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&req, EXT_SESSION_BIND);
    wire_put_cstring(&req, "not a key");
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_EXTENSION_FAILURE);

    for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        agent_reply_init(&reply);
        agent_handle(&ag, &c, now_ms, garbage[i], sizeof(garbage[i]), &reply);
        CHECK(reply.msg.len == 1 && reply.msg.buf[0] == SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
    }
    /* After all of it, the connection still answers. */
    CHECK_EQ(list_count(&c), 0);
    wire_writer_free(&req);
    agent_conn_cleanup(&c);
}

/* Starts a sign request that must become a job; returns it (or NULL). */
static struct agent_job *sign_job(struct agent_conn *c, const struct key *k, uint32_t flags)
{
    static const uint8_t data[] = "data to be signed by the agent";
    struct wire_writer req;
    struct agent_reply reply;
    struct agent_job *job;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, k->blob, k->blob_len);
    wire_put_string(&req, data, sizeof(data));
    wire_put_u32(&req, flags);
    agent_reply_init(&reply);
    agent_handle(&ag, c, now_ms, req.buf, req.len, &reply);
    CHECK_EQ(reply.msg.len, 0); /* no reply yet: the job comes first */
    job = reply.job;
    reply.job = NULL;
    agent_reply_free(&reply);
    wire_writer_free(&req);
    return job;
}

/* The reply's type; on SIGN_RESPONSE also checks that the signature verifies. */
static uint8_t check_sign_reply(const struct key *k, const struct agent_reply *reply)
{
    static const uint8_t data[] = "data to be signed by the agent";
    struct wire_reader r;
    struct wire_view sig;

    if (reply->msg.len < 1)
        return 0;
    if (reply->msg.buf[0] == SSH_AGENT_SIGN_RESPONSE) {
        wire_reader_init(&r, reply->msg.buf + 1, reply->msg.len - 1);
        sig = wire_get_string(&r);
        CHECK_EQ(wire_reader_finish(&r), 0);
        CHECK_EQ(key_verify(k, sig.ptr, sig.len, data, sizeof(data)), 0);
    }
    return reply->msg.buf[0];
}

/*
 * Confirmations and offloaded signatures come back from agent_handle() as
 * jobs; finishing them produces the reply.
 */
static void test_jobs(void)
{
    static const uint8_t confirm[] = {SSH_AGENT_CONSTRAIN_CONFIRM};
    struct agent_conn c;
    struct key *ed = NULL, *rsa = NULL, *host = NULL;
    struct agent_job *job;
    struct agent_reply reply;
    struct wire_writer req;
    uint8_t sid[32];
    char fp[KEY_FINGERPRINT_SIZE];

    agent_conn_init(&c, 10);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &ed), 0);
    CHECK_EQ(key_generate(KEY_RSA, 2048, &rsa), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &host), 0);
    CHECK_EQ(add_key(&c, ed, "my laptop key", confirm, sizeof(confirm)), SSH_AGENT_SUCCESS);
    random_sid(sid);
    CHECK_EQ(session_bind(&c, host, sid, sizeof(sid), false, false), SSH_AGENT_SUCCESS);

    /* A confirm key: the job's prompt names the key and the bound host. */
    job = sign_job(&c, ed, 0);
    CHECK(job != NULL && job->kind == AGENT_JOB_CONFIRM);
    if (job != NULL) {
        key_fingerprint(ed, fp, sizeof(fp));
        CHECK(strstr(agent_sign_job(job)->prompt, fp) != NULL);
        CHECK(strstr(agent_sign_job(job)->prompt, "my laptop key") != NULL);
        key_fingerprint(host, fp, sizeof(fp));
        CHECK(strstr(agent_sign_job(job)->prompt, fp) != NULL);
        agent_reply_init(&reply);
        agent_job_confirmed(&ag, &c, job, false, &reply);
        CHECK_EQ(check_sign_reply(ed, &reply), SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
    }
    job = sign_job(&c, ed, 0);
    CHECK(job != NULL);
    if (job != NULL) {
        agent_reply_init(&reply);
        agent_job_confirmed(&ag, &c, job, true, &reply);
        CHECK_EQ(check_sign_reply(ed, &reply), SSH_AGENT_SIGN_RESPONSE);
        agent_reply_free(&reply);
    }
    /* Removed while the user was being asked: refused. */
    job = sign_job(&c, ed, 0);
    CHECK(job != NULL);
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&req, ed->blob, ed->blob_len);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    wire_writer_free(&req);
    if (job != NULL) {
        agent_reply_init(&reply);
        agent_job_confirmed(&ag, &c, job, true, &reply);
        CHECK_EQ(check_sign_reply(ed, &reply), SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
    }

    /*
     * Offloaded RSA signature: the job keeps the key alive if it is removed,
     * and the signature made meanwhile is not delivered (issue 22).
     */
    ag.offload_slow_work = true;
    CHECK_EQ(add_key(&c, rsa, "rsa", NULL, 0), SSH_AGENT_SUCCESS);
    job = sign_job(&c, rsa, KEY_SIGN_RSA_SHA2_512);
    CHECK(job != NULL && job->kind == AGENT_JOB_SIGN && agent_sign_job(job)->key != NULL);
    /* For the slow job pool, not the fast one. */
    CHECK(job != NULL && !agent_sign_job(job)->fast);
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    wire_writer_free(&req);
    if (job != NULL) {
        agent_job_run(job);
        agent_reply_init(&reply);
        agent_job_finish(&ag, &c, job, &reply);
        CHECK_EQ(check_sign_reply(rsa, &reply), SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
    }
    /*
     * Removed and added again while the job is out: the identity asked for
     * is gone (the new one may carry other constraints), so FAILURE too.
     * Locked while the job is out: FAILURE.
     */
    CHECK_EQ(add_key(&c, rsa, "rsa", NULL, 0), SSH_AGENT_SUCCESS);
    job = sign_job(&c, rsa, KEY_SIGN_RSA_SHA2_512);
    CHECK(job != NULL && job->kind == AGENT_JOB_SIGN);
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    wire_writer_free(&req);
    CHECK_EQ(add_key(&c, rsa, "rsa", NULL, 0), SSH_AGENT_SUCCESS);
    if (job != NULL) {
        agent_job_run(job);
        agent_reply_init(&reply);
        agent_job_finish(&ag, &c, job, &reply);
        CHECK_EQ(check_sign_reply(rsa, &reply), SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
    }
    job = sign_job(&c, rsa, KEY_SIGN_RSA_SHA2_512);
    CHECK(job != NULL && job->kind == AGENT_JOB_SIGN);
    ag.lock.locked = true; /* as a LOCK on another connection would leave it */
    if (job != NULL) {
        agent_job_run(job);
        agent_reply_init(&reply);
        agent_job_finish(&ag, &c, job, &reply);
        CHECK_EQ(check_sign_reply(rsa, &reply), SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
    }
    ag.lock.locked = false;
    /* Nothing changed while the job was out: the signature goes out. */
    job = sign_job(&c, rsa, KEY_SIGN_RSA_SHA2_512);
    CHECK(job != NULL && job->kind == AGENT_JOB_SIGN);
    if (job != NULL) {
        agent_job_run(job);
        agent_reply_init(&reply);
        agent_job_finish(&ag, &c, job, &reply);
        CHECK_EQ(check_sign_reply(rsa, &reply), SSH_AGENT_SIGN_RESPONSE);
        agent_reply_free(&reply);
    }
    /* Ed25519 is fast: signed inline even with offloading on. */
    CHECK_EQ(add_key(&c, ed, "ed", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(sign_with(&c, ed, 0), SSH_AGENT_SIGN_RESPONSE);
    ag.offload_slow_work = false;

    key_free(ed);
    key_free(rsa);
    key_free(host);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    agent_init(&ag, 0);
}

/* A lock or unlock request that must become a worker job. */
static struct agent_job *lock_job(struct agent_conn *c, uint8_t type, const char *pass)
{
    struct wire_writer req;
    struct agent_reply reply;
    struct agent_job *job;

    wire_writer_init(&req);
    wire_put_u8(&req, type);
    wire_put_cstring(&req, pass);
    agent_reply_init(&reply);
    agent_handle(&ag, c, now_ms, req.buf, req.len, &reply);
    CHECK_EQ(reply.msg.len, 0);
    job = reply.job;
    reply.job = NULL;
    agent_reply_free(&reply);
    wire_writer_free(&req);
    return job;
}

/* Runs a job as a worker would and returns the reply type and delay. */
static uint8_t run_and_finish(struct agent_conn *c, struct agent_job *job, uint32_t *delay)
{
    struct agent_reply reply;
    uint8_t type;

    if (job == NULL)
        return 0;
    agent_job_run(job);
    /* The passphrase is cleared once used. */
    CHECK(agent_lock_job(job)->pass_len == 0 || agent_lock_job(job)->pass[0] == 0);
    agent_reply_init(&reply);
    agent_job_finish(&ag, c, job, &reply);
    type = reply.msg.len ? reply.msg.buf[0] : 0;
    if (delay != NULL)
        *delay = reply.delay_ms;
    agent_reply_free(&reply);
    return type;
}

/* With offloading, scrypt runs as a job; the state is re-checked after it. */
static void test_lock_jobs(void)
{
    struct agent_conn c1, c2;
    struct agent_job *a, *b;
    uint32_t delay = 0;

    agent_conn_init(&c1, 11);
    agent_conn_init(&c2, 12);
    ag.offload_slow_work = true;

    /* Two clients lock at once: the first to finish wins, the other fails. */
    a = lock_job(&c1, SSH_AGENTC_LOCK, "first");
    b = lock_job(&c2, SSH_AGENTC_LOCK, "second");
    CHECK(a != NULL && b != NULL && a->kind == AGENT_JOB_LOCK);
    CHECK(!ag.lock.locked); /* nothing changes until a job finishes */
    CHECK_EQ(run_and_finish(&c1, a, NULL), SSH_AGENT_SUCCESS);
    CHECK(ag.lock.locked);
    CHECK_EQ(run_and_finish(&c2, b, NULL), SSH_AGENT_FAILURE);

    /* Wrong passphrase: failure with a delay; the right one unlocks. */
    a = lock_job(&c1, SSH_AGENTC_UNLOCK, "second");
    CHECK(a != NULL && a->kind == AGENT_JOB_UNLOCK);
    CHECK_EQ(run_and_finish(&c1, a, &delay), SSH_AGENT_FAILURE);
    CHECK_EQ(delay, 100);
    CHECK(ag.lock.locked);
    /*
     * Unlock attempts racing: only one is evaluated at a time (issue 22);
     * the second waits its turn (no job) and, offered again after the
     * first unlocked, finds the agent unlocked.
     */
    now_ms += 100;
    a = lock_job(&c1, SSH_AGENTC_UNLOCK, "first");
    b = lock_job(&c2, SSH_AGENTC_UNLOCK, "first");
    CHECK(a != NULL && b == NULL);
    CHECK_EQ(run_and_finish(&c1, a, &delay), SSH_AGENT_SUCCESS);
    CHECK_EQ(delay, 0);
    CHECK(!ag.lock.locked);
    {
        struct wire_writer req;
        struct agent_reply reply;

        wire_writer_init(&req);
        wire_put_u8(&req, SSH_AGENTC_UNLOCK);
        wire_put_cstring(&req, "first");
        agent_reply_init(&reply);
        CHECK_EQ(roundtrip(&c2, &req, &reply), SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
        wire_writer_free(&req);
    }
    /* A client that leaves while its attempt is hashed gives its turn back. */
    CHECK_EQ(run_and_finish(&c1, lock_job(&c1, SSH_AGENTC_LOCK, "third"), NULL), SSH_AGENT_SUCCESS);
    a = lock_job(&c1, SSH_AGENTC_UNLOCK, "x");
    CHECK(a != NULL && lock_job(&c2, SSH_AGENTC_UNLOCK, "y") == NULL);
    agent_job_free(a); /* as the transport does when c1 hangs up */
    now_ms += 100;     /* the start of an attempt already holds the next one back */
    b = lock_job(&c2, SSH_AGENTC_UNLOCK, "third");
    CHECK(b != NULL);
    CHECK_EQ(run_and_finish(&c2, b, NULL), SSH_AGENT_SUCCESS);
    /* Unlocking an unlocked agent fails at once, without a job. */
    {
        struct wire_writer req;
        struct agent_reply reply;

        wire_writer_init(&req);
        wire_put_u8(&req, SSH_AGENTC_UNLOCK);
        wire_put_cstring(&req, "first");
        agent_reply_init(&reply);
        CHECK_EQ(roundtrip(&c1, &req, &reply), SSH_AGENT_FAILURE);
        CHECK(reply.job == NULL);
        agent_reply_free(&reply);
        wire_writer_free(&req);
    }

    ag.offload_slow_work = false;
    agent_conn_cleanup(&c1);
    agent_conn_cleanup(&c2);
}

/*
 * A sign request names its key by blob. The agent looks it up before
 * parsing it, and parses it only to describe a key it does not hold: the
 * log and audit lines must read exactly as when every request was parsed.
 */
static void test_sign_log_lines(void)
{
    struct agent_conn c;
    struct key *held = NULL, *absent = NULL, *ec_absent = NULL;
    struct wire_writer req;
    char log[4096], line[512], fp[KEY_FINGERPRINT_SIZE];
    static const uint8_t junk[] = {0, 0, 0, 3, 'f', 'o', 'o', 1, 2};

    agent_conn_init(&c, 21);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &held), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &absent), 0);
    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &ec_absent), 0);
    CHECK_EQ(add_key(&c, held, "held key", NULL, 0), SSH_AGENT_SUCCESS);
    ag.audit = audit_capture;

    /* A held key: signed, and named by type and fingerprint. */
    capture_begin();
    CHECK_EQ(sign_with(&c, held, 0), SSH_AGENT_SIGN_RESPONSE);
    capture_end(log, sizeof(log));
    key_fingerprint(held, fp, sizeof(fp));
    snprintf(line, sizeof(line),
             "test_agent: debug: conn 21: SIGN_REQUEST(13) ED25519 %s -> SIGN_RESPONSE\n", fp);
    CHECK_STR(log, line);
    CHECK(strstr(last_audit, "\"event\":\"sign\",\"outcome\":\"ok\"") != NULL);
    CHECK(strstr(last_audit, fp) != NULL);
    CHECK(strstr(last_audit, "\"comment\":\"held key\"") != NULL);

    /* A key not held: FAILURE, and the log still names the key asked for. */
    capture_begin();
    CHECK_EQ(sign_with(&c, absent, 0), SSH_AGENT_FAILURE);
    capture_end(log, sizeof(log));
    key_fingerprint(absent, fp, sizeof(fp));
    snprintf(line, sizeof(line),
             "test_agent: conn 21: SIGN_REQUEST(13) ED25519 %s -> FAILURE: %s\n", fp,
             kw_strerror(KW_ERR_NOT_FOUND));
    CHECK_STR(log, line);
    CHECK(strstr(last_audit, "\"event\":\"sign\",\"outcome\":\"refused\"") != NULL);
    CHECK(strstr(last_audit, fp) != NULL);
    CHECK(strstr(last_audit, "\"key_type\":\"ssh-ed25519\"") != NULL);
    CHECK(strstr(last_audit, "comment") == NULL);

    capture_begin();
    CHECK_EQ(sign_with(&c, ec_absent, 0), SSH_AGENT_FAILURE);
    capture_end(log, sizeof(log));
    key_fingerprint(ec_absent, fp, sizeof(fp));
    snprintf(line, sizeof(line), "test_agent: conn 21: SIGN_REQUEST(13) ECDSA %s -> FAILURE: %s\n",
             fp, kw_strerror(KW_ERR_NOT_FOUND));
    CHECK_STR(log, line);

    /* A blob that is no key at all. */
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, junk, sizeof(junk));
    wire_put_cstring(&req, "data");
    wire_put_u32(&req, 0);
    capture_begin();
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE);
    capture_end(log, sizeof(log));
    snprintf(line, sizeof(line),
             "test_agent: conn 21: SIGN_REQUEST(13) unparseable key blob (%zu bytes) -> "
             "FAILURE: %s\n",
             sizeof(junk), kw_strerror(KW_ERR_NOT_FOUND));
    CHECK_STR(log, line);
    CHECK(strstr(last_audit, "\"outcome\":\"refused\"") != NULL);
    CHECK(strstr(last_audit, "key_fingerprint") == NULL);
    wire_writer_free(&req);

    /* The fingerprint kept with the identity is the key's. */
    key_fingerprint(held, fp, sizeof(fp));
    CHECK(ag.keys.count == 1 && strcmp(ag.keys.ids[0]->fp, fp) == 0);

    /* REMOVE_IDENTITY names the key the same way, held or not, with its comment if held. */
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&req, held->blob, held->blob_len);
    capture_begin();
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    capture_end(log, sizeof(log));
    snprintf(line, sizeof(line),
             "test_agent: debug: conn 21: REMOVE_IDENTITY(18) ED25519 %s -> SUCCESS\n", fp);
    CHECK_STR(log, line);
    CHECK(strstr(last_audit, "\"event\":\"remove\",\"outcome\":\"ok\"") != NULL);
    CHECK(strstr(last_audit, fp) != NULL);
    CHECK(strstr(last_audit, "\"comment\":\"held key\"") != NULL);
    capture_begin();
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE); /* now gone: parsed for the log */
    capture_end(log, sizeof(log));
    snprintf(line, sizeof(line),
             "test_agent: conn 21: REMOVE_IDENTITY(18) ED25519 %s -> FAILURE: %s\n", fp,
             kw_strerror(KW_ERR_NOT_FOUND));
    CHECK_STR(log, line);
    wire_writer_free(&req);

    ag.audit = NULL;
    key_free(held);
    key_free(absent);
    key_free(ec_absent);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    agent_init(&ag, 0);
}

/* The user a userauth request names reaches the audit log (when there is one). */
static void test_sign_user_audited(void)
{
    static const uint8_t sid[32] = {9, 8, 7};
    struct agent_conn c;
    struct key *k = NULL;
    struct wire_writer req, data;
    char fp[KEY_FINGERPRINT_SIZE];

    agent_conn_init(&c, 22);
    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &k), 0);
    CHECK_EQ(add_key(&c, k, "ua", NULL, 0), SSH_AGENT_SUCCESS);
    wire_writer_init(&data);
    wire_put_string(&data, sid, sizeof(sid));
    wire_put_u8(&data, 50); /* SSH_MSG_USERAUTH_REQUEST */
    wire_put_cstring(&data, "alice");
    wire_put_cstring(&data, "ssh-connection");
    wire_put_cstring(&data, "publickey");
    wire_put_bool(&data, true);
    wire_put_cstring(&data, "ecdsa-sha2-nistp256");
    wire_put_string(&data, k->blob, k->blob_len);
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, k->blob, k->blob_len);
    wire_put_string(&req, data.buf, data.len);
    wire_put_u32(&req, 0);

    ag.audit = audit_capture;
    last_audit[0] = '\0';
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SIGN_RESPONSE);
    key_fingerprint(k, fp, sizeof(fp));
    CHECK(strstr(last_audit, "\"event\":\"sign\",\"outcome\":\"ok\"") != NULL);
    CHECK(strstr(last_audit, fp) != NULL);
    CHECK(strstr(last_audit, "\"dest_user\":\"alice\"") != NULL);
    ag.audit = NULL;
    /* Without an audit sink the request is not even parsed; it still signs. */
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SIGN_RESPONSE);

    wire_writer_free(&req);
    wire_writer_free(&data);
    key_free(k);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    agent_init(&ag, 0);
}

/*
 * The binding slots are allocated by the first binding recorded; the rules
 * and the 16-slot limit hold as before, and a refusal allocates nothing.
 */
static void test_lazy_bindings(void)
{
    struct binding_set bs;
    struct key *host = NULL, *other = NULL;
    uint8_t sid[BINDING_MAX + 1][32], big[BINDING_MAX_SID + 1];
    const char *why = NULL;
    size_t slot = 0;
    int i;

    CHECK_EQ(key_generate(KEY_ED25519, 0, &host), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &other), 0);
    for (i = 0; i < BINDING_MAX + 1; i++)
        random_sid(sid[i]);
    memset(big, 1, sizeof(big));

    binding_set_init(&bs);
    CHECK(bs.slots == NULL && bs.count == 0);
    /* Refused before anything is recorded: still nothing allocated. */
    binding_note_failure(&bs);
    CHECK(bs.slots == NULL && bs.attempted);
    CHECK_EQ(binding_record(&bs, host, big, sizeof(big), true, &why, &slot), BINDING_REFUSED);
    CHECK(bs.slots == NULL && why != NULL);
    binding_set_clear(&bs);
    CHECK(bs.slots == NULL && !bs.attempted);

    /* Sixteen forwarding hops fit; the seventeenth is refused. */
    for (i = 0; i < BINDING_MAX; i++) {
        CHECK_EQ(binding_record(&bs, key_ref(host), sid[i], 32, true, &why, &slot),
                 BINDING_RECORDED);
        CHECK_EQ(slot, i);
        CHECK(bs.slots != NULL);
    }
    CHECK_EQ(binding_record(&bs, host, sid[BINDING_MAX], 32, true, &why, &slot), BINDING_REFUSED);
    CHECK(why != NULL && strstr(why, "too many") != NULL);
    CHECK_EQ(bs.count, BINDING_MAX);
    /* A known one is still matched, at its slot. */
    CHECK_EQ(binding_record(&bs, host, sid[7], 32, true, &why, &slot), BINDING_ALREADY);
    CHECK_EQ(slot, 7);
    CHECK(key_equal(bs.slots[BINDING_MAX - 1].hostkey, host));
    binding_set_clear(&bs);
    CHECK(bs.slots == NULL && bs.count == 0);

    /* Cleared, the set starts again: an authentication binding, then no rebind. */
    CHECK_EQ(binding_record(&bs, key_ref(host), sid[0], 32, false, &why, &slot), BINDING_RECORDED);
    CHECK(bs.slots != NULL && bs.count == 1);
    CHECK_EQ(binding_record(&bs, host, sid[0], 32, false, &why, &slot), BINDING_REFUSED);
    CHECK_EQ(binding_record(&bs, other, sid[1], 32, true, &why, &slot), BINDING_REFUSED);
    CHECK(bs.count == 1 && bs.attempted);
    binding_set_clear(&bs);

    /* Same session id, another key: refused; same key: already recorded. */
    CHECK_EQ(binding_record(&bs, key_ref(host), sid[2], 32, true, &why, &slot), BINDING_RECORDED);
    CHECK_EQ(binding_record(&bs, other, sid[2], 32, true, &why, &slot), BINDING_REFUSED);
    CHECK_EQ(binding_record(&bs, host, sid[2], 32, true, &why, &slot), BINDING_ALREADY);
    CHECK_EQ(bs.count, 1);
    binding_set_clear(&bs);

    key_free(host);
    key_free(other);
}

/* As the transport answers agent.offload_fast when other clients are active. */
static bool offload_always(void *ctx, const struct agent_conn *c)
{
    (void)ctx;
    (void)c;
    return true;
}

/*
 * agent.offload_fast saying yes hands fast signatures to a worker too,
 * after any confirmation; the job holds the key even when it is removed
 * before the job runs.
 */
static void test_offload_fast_signatures(void)
{
    static const uint8_t confirm[] = {SSH_AGENT_CONSTRAIN_CONFIRM};
    struct agent_conn c;
    struct key *ed = NULL, *ec = NULL, *ask = NULL;
    struct agent_job *job, *job2;
    struct agent_reply reply;
    struct wire_writer req;

    agent_conn_init(&c, 23);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &ed), 0);
    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &ec), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &ask), 0);
    CHECK_EQ(add_key(&c, ed, "ed", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(add_key(&c, ec, "ec", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(add_key(&c, ask, "ask", confirm, sizeof(confirm)), SSH_AGENT_SUCCESS);
    ag.offload_slow_work = true;

    /* Off: fast keys are signed inline. */
    CHECK_EQ(sign_with(&c, ed, 0), SSH_AGENT_SIGN_RESPONSE);

    ag.offload_fast = offload_always;
    job = sign_job(&c, ed, 0);
    job2 = sign_job(&c, ec, 0);
    CHECK(job != NULL && job->kind == AGENT_JOB_SIGN && agent_sign_job(job)->key != NULL);
    CHECK(job2 != NULL && job2->kind == AGENT_JOB_SIGN && agent_sign_job(job2)->key != NULL);
    /* For the server's fast job pool, not the slow one. */
    CHECK(job != NULL && agent_sign_job(job)->fast);
    CHECK(job2 != NULL && agent_sign_job(job2)->fast);
    /*
     * Removed while the jobs are out: they sign with their references (no
     * use after free), but the result is not delivered (issue 22): a key
     * removed while signing yields FAILURE.
     */
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    wire_writer_free(&req);
    CHECK_EQ(ag.keys.count, 0);
    if (job != NULL) {
        CHECK_EQ(agent_sign_job(job)->key->refs, 2); /* the job's and its audit subject's */
        agent_job_run(job);
        agent_reply_init(&reply);
        agent_job_finish(&ag, &c, job, &reply);
        CHECK_EQ(check_sign_reply(ed, &reply), SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
    }
    if (job2 != NULL) {
        agent_job_run(job2);
        agent_reply_init(&reply);
        agent_job_finish(&ag, &c, job2, &reply);
        CHECK_EQ(check_sign_reply(ec, &reply), SSH_AGENT_FAILURE);
        agent_reply_free(&reply);
    }

    /* A confirm key is still asked about first; the signature then goes out too. */
    CHECK_EQ(add_key(&c, ask, "ask", confirm, sizeof(confirm)), SSH_AGENT_SUCCESS);
    job = sign_job(&c, ask, 0);
    CHECK(job != NULL && job->kind == AGENT_JOB_CONFIRM);
    if (job != NULL) {
        agent_reply_init(&reply);
        agent_job_confirmed(&ag, &c, job, true, &reply);
        CHECK(reply.msg.len == 0 && reply.job != NULL && reply.job->kind == AGENT_JOB_SIGN);
        if (reply.job != NULL) {
            job = reply.job;
            reply.job = NULL;
            agent_job_run(job);
            agent_job_finish(&ag, &c, job, &reply);
            CHECK_EQ(check_sign_reply(ask, &reply), SSH_AGENT_SIGN_RESPONSE);
        }
        agent_reply_free(&reply);
    }
    /* A key not held is refused at once, without a job. */
    CHECK_EQ(sign_with(&c, ed, 0), SSH_AGENT_FAILURE);

    ag.offload_fast = NULL;
    ag.offload_slow_work = false;
    key_free(ed);
    key_free(ec);
    key_free(ask);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    agent_init(&ag, 0);
}

/* Private keys are held in OpenSSL's secure heap and released on removal. */
static void test_secure_heap(void)
{
    struct agent_conn c;
    struct key *k = NULL;
    size_t before, loaded;

    agent_conn_init(&c, 9);
    CHECK_EQ(key_generate(KEY_RSA, 2048, &k), 0);
    before = CRYPTO_secure_used();
    CHECK_EQ(add_key(&c, k, "k", NULL, 0), SSH_AGENT_SUCCESS);
    loaded = CRYPTO_secure_used();
    CHECK(loaded > before);
    agent_cleanup(&ag);
    CHECK_EQ(CRYPTO_secure_used(), before);
    agent_init(&ag, 0);
    key_free(k);
    agent_conn_cleanup(&c);
}

/*
 * ssh-mldsa44-ed25519@openssh.com: with ML-DSA in libcrypto, added, listed,
 * used and removed like any key; built against an older OpenSSL, the add
 * gets FAILURE with a log line that says why, and the connection serves on.
 */
static void test_mldsa44_ed25519(void)
{
    struct agent_conn c;
    struct key *k = NULL;
    struct wire_writer req;
    char log[4096], fp[KEY_FINGERPRINT_SIZE];
    uint8_t pk[1312 + 32] = {0}, sk[64] = {0};

    agent_conn_init(&c, 31);
    ag.audit = audit_capture;
    if (!key_kind_supported(KEY_MLDSA44_ED25519)) {
        wire_writer_init(&req);
        wire_put_u8(&req, SSH_AGENTC_ADD_IDENTITY);
        wire_put_cstring(&req, "ssh-mldsa44-ed25519@openssh.com");
        wire_put_string(&req, pk, sizeof(pk));
        wire_put_string(&req, sk, sizeof(sk));
        wire_put_cstring(&req, "pq key");
        capture_begin();
        CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE);
        capture_end(log, sizeof(log));
        CHECK(strstr(log, "conn 31: ADD_IDENTITY(17)") != NULL);
        CHECK(strstr(log, "FAILURE: ssh-mldsa44-ed25519@openssh.com keys need ML-DSA, which "
                          "needs OpenSSL >= 3.5; this keyward was built with OpenSSL 3.") != NULL);
        if (strstr(log, "OpenSSL >= 3.5") == NULL)
            fprintf(stderr, "log was: %s\n", log);
        CHECK_EQ(list_count(&c), 0); /* the same connection answers on */
        wire_writer_free(&req);
        goto out;
    }
    CHECK_EQ(key_generate(KEY_MLDSA44_ED25519, 0, &k), 0);
    if (k == NULL)
        goto out;
    CHECK_EQ(add_key(&c, k, "pq key", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK(strstr(last_audit, "\"key_type\":\"ssh-mldsa44-ed25519@openssh.com\"") != NULL);
    CHECK_EQ(list_count(&c), 1);
    capture_begin();
    CHECK_EQ(sign_with(&c, k, 0), SSH_AGENT_SIGN_RESPONSE);
    capture_end(log, sizeof(log));
    key_fingerprint(k, fp, sizeof(fp));
    CHECK(strstr(log, "SIGN_REQUEST(13) MLDSA44-ED25519 ") != NULL && strstr(log, fp) != NULL);
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&req, k->blob, k->blob_len);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    CHECK_EQ(sign_with(&c, k, 0), SSH_AGENT_FAILURE);
    CHECK_EQ(list_count(&c), 0);
    wire_writer_free(&req);
out:
    ag.audit = NULL;
    key_free(k);
    agent_conn_cleanup(&c);
}

/* ---- PKCS#11 modules, with the transport's part played by the test ---- */

static void *released[8];
static unsigned nreleased;

static void record_release(void *ctx, void *host)
{
    (void)ctx;
    if (nreleased < 8)
        released[nreleased] = host;
    nreleased++;
}

static void put_smartcard(struct wire_writer *req, uint8_t type, const char *module,
                          const char *pin)
{
    wire_writer_reset(req);
    wire_put_u8(req, type);
    wire_put_cstring(req, module);
    wire_put_cstring(req, pin);
}

/* Sends ADD_SMARTCARD_KEY; returns its job (NULL: answered at once, type in *type). */
static struct agent_provider_job *smartcard_add(struct agent_conn *c, const char *module,
                                                uint8_t *type, struct agent_reply *reply)
{
    struct wire_writer req;
    struct agent_job *job;

    wire_writer_init(&req);
    put_smartcard(&req, SSH_AGENTC_ADD_SMARTCARD_KEY, module, "1234");
    agent_handle(&ag, c, now_ms, req.buf, req.len, reply);
    wire_writer_free(&req);
    job = reply->job;
    reply->job = NULL;
    *type = reply->msg.len > 0 ? reply->msg.buf[0] : 0;
    if (job == NULL)
        return NULL;
    CHECK_EQ(job->kind, AGENT_JOB_PROVIDER_ADD);
    return agent_provider_job(job);
}

/* What the helper answers to LOAD: these keys, labelled. */
static void helper_lists(struct agent_provider_job *pj, void *host, struct key **keys,
                         const char **labels, uint32_t n)
{
    uint32_t i;

    wire_put_u32(&pj->keys, n);
    for (i = 0; i < n; i++) {
        wire_put_string(&pj->keys, keys[i]->blob, keys[i]->blob_len);
        wire_put_cstring(&pj->keys, labels[i]);
    }
    pj->host = host;
}

/* A sign request for k; returns the PROVIDER_SIGN job, or NULL and the reply type. */
static struct agent_sign_job *provider_sign_request(struct agent_conn *c, const struct key *k,
                                                    uint32_t flags, const uint8_t *data, size_t len,
                                                    uint8_t *type, struct agent_reply *reply)
{
    struct wire_writer req;
    struct agent_job *job;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, k->blob, k->blob_len);
    wire_put_string(&req, data, len);
    wire_put_u32(&req, flags);
    agent_handle(&ag, c, now_ms, req.buf, req.len, reply);
    wire_writer_free(&req);
    job = reply->job;
    reply->job = NULL;
    *type = reply->msg.len > 0 ? reply->msg.buf[0] : 0;
    if (job == NULL)
        return NULL;
    CHECK_EQ(job->kind, AGENT_JOB_PROVIDER_SIGN);
    return agent_sign_job(job);
}

static void test_pkcs11_modules(void)
{
    static const uint8_t data[] = "a userauth request, say";
    struct agent_conn c, remote;
    struct agent_reply reply;
    struct agent_provider_job *pj;
    struct agent_sign_job *sj;
    struct key *ed = NULL, *rsa = NULL;
    struct key *keys[2];
    const char *labels[2] = {"token key", ""};
    char module[4096], pattern[4200], logbuf[8192];
    struct wire_writer req;
    int host1, host2; /* the transport's helpers, as far as the agent can tell */
    uint8_t type, sid[32];
    FILE *f;

    agent_conn_init(&c, 40);
    agent_conn_init(&remote, 41);
    agent_reply_init(&reply);
    wire_writer_init(&req);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &ed), 0);
    CHECK_EQ(key_generate(KEY_RSA, 2048, &rsa), 0);
    keys[0] = ed;
    keys[1] = rsa;
    /* A module file of our own, the only one -P allows. */
    f = fopen("test_agent_module.tmp", "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    CHECK_EQ(kw_canonical_path("test_agent_module.tmp", module, sizeof(module)), 0);
    snprintf(pattern, sizeof(pattern), "/no/such/dir/*,%s", module);
    ag.providers.allowed = pattern;
    ag.providers.release = record_release;
    nreleased = 0;

    /* Refused at once, with a failure reply: no such file, not allowed, from a forwarded conn. */
    CHECK(smartcard_add(&c, "/no/such/module.so", &type, &reply) == NULL);
    CHECK_EQ(type, SSH_AGENT_FAILURE);
    ag.providers.allowed = "/usr/lib*/*,/usr/local/lib*/*";
    capture_begin();
    CHECK(smartcard_add(&c, "test_agent_module.tmp", &type, &reply) == NULL);
    CHECK(strstr(capture_end(logbuf, sizeof(logbuf)), "allow-list (keyward-agent -P)") != NULL);
    CHECK_EQ(type, SSH_AGENT_FAILURE);
    ag.providers.allowed = pattern;
    random_sid(sid);
    CHECK_EQ(session_bind(&remote, ed, sid, sizeof(sid), true, false), SSH_AGENT_SUCCESS);
    CHECK(smartcard_add(&remote, module, &type, &reply) == NULL);
    CHECK_EQ(type, SSH_AGENT_FAILURE);
    /* -O allow-remote-pkcs11 lets it through to the transport. */
    ag.providers.allow_remote = true;
    pj = smartcard_add(&remote, module, &type, &reply);
    CHECK(pj != NULL);
    if (pj != NULL)
        agent_job_free(&pj->job); /* its client went away before the helper started */
    ag.providers.allow_remote = false;
    CHECK_EQ(nreleased, 0);

    /* Loaded: both keys listed, the unlabelled one named after the module. */
    pj = smartcard_add(&c, "./test_agent_module.tmp", &type, &reply);
    CHECK(pj != NULL);
    if (pj == NULL)
        goto out;
    CHECK_EQ(strcmp(pj->path, module), 0);
    CHECK_EQ(pj->pin_len, 4);
    CHECK_EQ(memcmp(pj->pin, "1234", 4), 0);
    helper_lists(pj, &host1, keys, labels, 2);
    agent_job_finish(&ag, &c, &pj->job, &reply);
    CHECK_EQ(reply.msg.buf[0], SSH_AGENT_SUCCESS);
    CHECK_EQ(list_count(&c), 2);
    CHECK_EQ(strcmp(keystore_find(&ag.keys, ed->blob, ed->blob_len)->comment, "token key"), 0);
    CHECK_EQ(strcmp(keystore_find(&ag.keys, rsa->blob, rsa->blob_len)->comment, module), 0);
    CHECK(smartcard_add(&c, module, &type, &reply) == NULL); /* already loaded */
    CHECK_EQ(type, SSH_AGENT_FAILURE);

    /* Signing goes to the module's helper, and its answer is checked. */
    sj = provider_sign_request(&c, ed, 0, data, sizeof(data), &type, &reply);
    CHECK(sj != NULL && sj->host == &host1);
    if (sj != NULL) {
        CHECK_EQ(key_sign(ed, sj->data, sj->data_len, sj->flags, &sj->sig), 0);
        agent_job_finish(&ag, &c, &sj->job, &reply);
        CHECK_EQ(reply.msg.buf[0], SSH_AGENT_SIGN_RESPONSE);
    }
    sj = provider_sign_request(&c, rsa, KEY_SIGN_RSA_SHA2_256, data, sizeof(data), &type, &reply);
    CHECK(sj != NULL);
    if (sj != NULL) {
        /* A valid signature, but not with the algorithm asked for. */
        CHECK_EQ(key_sign(rsa, sj->data, sj->data_len, KEY_SIGN_RSA_SHA2_512, &sj->sig), 0);
        capture_begin();
        agent_job_finish(&ag, &c, &sj->job, &reply);
        CHECK(strstr(capture_end(logbuf, sizeof(logbuf)), "another algorithm than rsa-sha2-256") !=
              NULL);
        CHECK_EQ(reply.msg.buf[0], SSH_AGENT_FAILURE);
    }
    sj = provider_sign_request(&c, ed, 0, data, sizeof(data), &type, &reply);
    if (sj != NULL) {
        /* Garbage from the module. */
        wire_put_cstring(&sj->sig, "ssh-ed25519");
        wire_put_cstring(&sj->sig, "not a signature");
        agent_job_finish(&ag, &c, &sj->job, &reply);
        CHECK_EQ(reply.msg.buf[0], SSH_AGENT_FAILURE);
    }
    sj = provider_sign_request(&c, ed, 0, data, sizeof(data), &type, &reply);
    if (sj != NULL) {
        /* The helper said no (the transport's failure). */
        sj->run_err = KW_ERR_DENIED;
        snprintf(sj->provider_why, sizeof(sj->provider_why), "the module's helper failed: PIN");
        capture_begin();
        agent_job_finish(&ag, &c, &sj->job, &reply);
        CHECK(strstr(capture_end(logbuf, sizeof(logbuf)), "the module's helper failed: PIN") !=
              NULL);
        CHECK_EQ(reply.msg.buf[0], SSH_AGENT_FAILURE);
    }

    /* ssh-add -e: the keys go, the helper is released. */
    put_smartcard(&req, SSH_AGENTC_REMOVE_SMARTCARD_KEY, module, "");
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    CHECK_EQ(list_count(&c), 0);
    CHECK_EQ(nreleased, 1);
    CHECK(released[0] == &host1);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_FAILURE); /* not loaded any more */

    /* A helper that dies: its keys go, and the module can be loaded again. */
    pj = smartcard_add(&c, module, &type, &reply);
    CHECK(pj != NULL);
    if (pj == NULL)
        goto out;
    helper_lists(pj, &host2, keys, labels, 1);
    agent_job_finish(&ag, &c, &pj->job, &reply);
    CHECK_EQ(list_count(&c), 1);
    agent_provider_lost(&ag, &host2, "its helper was killed by signal 6");
    CHECK_EQ(list_count(&c), 0);
    CHECK_EQ(nreleased, 1); /* a dead helper is not released again */
    pj = smartcard_add(&c, module, &type, &reply);
    CHECK(pj != NULL);
    if (pj == NULL)
        goto out;
    /* A module that lists nothing usable: failure, and its helper released. */
    wire_put_u32(&pj->keys, 1);
    wire_put_cstring(&pj->keys, "not a key");
    wire_put_cstring(&pj->keys, "label");
    pj->host = &host1;
    agent_job_finish(&ag, &c, &pj->job, &reply);
    CHECK_EQ(reply.msg.buf[0], SSH_AGENT_FAILURE);
    CHECK_EQ(nreleased, 2);
    CHECK(released[1] == &host1);

    /* ssh-add -D removes token keys and their modules. */
    pj = smartcard_add(&c, module, &type, &reply);
    if (pj == NULL)
        goto out;
    helper_lists(pj, &host2, keys, labels, 2);
    agent_job_finish(&ag, &c, &pj->job, &reply);
    CHECK_EQ(list_count(&c), 2);
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
    CHECK_EQ(list_count(&c), 0);
    CHECK_EQ(nreleased, 3);
    CHECK(released[2] == &host2);
    CHECK(ag.providers.head == NULL);

    /* A loaded module whose client left: the helper is released with the job. */
    pj = smartcard_add(&c, module, &type, &reply);
    if (pj != NULL) {
        pj->host = &host1;
        agent_job_refuse(&ag, &c, &pj->job, "the client left", &reply);
    }
    CHECK_EQ(nreleased, 4);
out:
    remove("test_agent_module.tmp");
    ag.providers.allowed = PROVIDER_DEFAULT_ALLOWED;
    ag.providers.release = NULL;
    key_free(ed);
    key_free(rsa);
    wire_writer_free(&req);
    agent_reply_free(&reply);
    agent_conn_cleanup(&c);
    agent_conn_cleanup(&remote);
}

/* The sk-provider@openssh.com constraint naming provider. */
static size_t sk_provider_constraint(uint8_t *buf, size_t size, const char *provider)
{
    struct wire_writer w;
    size_t n;

    wire_writer_init(&w);
    wire_put_u8(&w, SSH_AGENT_CONSTRAIN_EXTENSION);
    wire_put_cstring(&w, "sk-provider@openssh.com");
    wire_put_cstring(&w, provider);
    n = w.len <= size ? w.len : 0;
    memcpy(buf, w.buf, n);
    wire_writer_free(&w);
    return n;
}

/*
 * What an authenticator answers, made here with libcrypto from the test
 * key's own private half: the signature over key_sk_signed_message().
 */
static void sk_answer(const struct key *k, const uint8_t *data, size_t len, uint32_t counter,
                      struct wire_writer *sig)
{
    uint8_t msg[KEY_SK_SIGNED_LEN], raw[128];
    size_t rawlen = sizeof(raw), mark;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const BIGNUM *br, *bs;
    const uint8_t *p = raw;
    ECDSA_SIG *es;
    uint8_t rb[32], sb[32];

    CHECK_EQ(key_sk_signed_message(k->sk_application, 0x01, counter, data, len, msg), 0);
    CHECK(EVP_DigestSignInit_ex(ctx, NULL, k->kind == KEY_SK_ED25519 ? NULL : "SHA256", NULL, NULL,
                                k->pkey, NULL) == 1);
    CHECK(EVP_DigestSign(ctx, raw, &rawlen, msg, sizeof(msg)) == 1);
    EVP_MD_CTX_free(ctx);
    wire_put_cstring(sig, key_type_name(k));
    if (k->kind == KEY_SK_ED25519) {
        wire_put_string(sig, raw, rawlen);
    } else {
        es = d2i_ECDSA_SIG(NULL, &p, (long)rawlen);
        CHECK(es != NULL);
        ECDSA_SIG_get0(es, &br, &bs);
        BN_bn2bin(br, rb);
        BN_bn2bin(bs, sb);
        mark = wire_begin_string(sig);
        wire_put_mpint_unsigned(sig, rb, (size_t)BN_num_bytes(br));
        wire_put_mpint_unsigned(sig, sb, (size_t)BN_num_bytes(bs));
        wire_end_string(sig, mark);
        ECDSA_SIG_free(es);
    }
    wire_put_u8(sig, 0x01);
    wire_put_u32(sig, counter);
}

static void test_fido_keys(void)
{
    static const uint8_t data[] = "a web site's challenge, say";
    static const uint8_t sshsig[] = "SSHSIG and the rest of a message";
    struct agent_conn c, remote;
    struct agent_reply reply;
    struct agent_sign_job *sj;
    struct key *sk[2] = {NULL, NULL}, *plain = NULL;
    struct identity *id;
    uint8_t cons[600], type, sid[32];
    char provider[4096], pattern[4200], logbuf[8192];
    size_t n, i;
    FILE *f;

    agent_conn_init(&c, 50);
    agent_conn_init(&remote, 51);
    agent_reply_init(&reply);
    CHECK_EQ(key_generate(KEY_SK_ED25519, 0, &sk[0]), 0);
    CHECK_EQ(key_generate(KEY_SK_ECDSA_P256, 0, &sk[1]), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &plain), 0);
    if (sk[0] == NULL || sk[1] == NULL || plain == NULL)
        goto out;
    CHECK_STR(key_short_name(sk[0]), "ED25519-SK");
    CHECK_STR(key_type_name(sk[1]), "sk-ecdsa-sha2-nistp256@openssh.com");
    f = fopen("test_agent_sk.tmp", "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    CHECK_EQ(kw_canonical_path("test_agent_sk.tmp", provider, sizeof(provider)), 0);
    snprintf(pattern, sizeof(pattern), "/no/such/dir/*,%s", provider);
    ag.providers.allowed = pattern;

    /* Refusals at ADD, each a failure with a log line. */
    n = sk_provider_constraint(cons, sizeof(cons), "/no/such/provider.so");
    capture_begin();
    CHECK_EQ(add_key(&c, sk[0], "sk", cons, n), SSH_AGENT_FAILURE);
    CHECK(strstr(capture_end(logbuf, sizeof(logbuf)), "No such file or directory") != NULL);
    ag.providers.allowed = PROVIDER_DEFAULT_ALLOWED;
    n = sk_provider_constraint(cons, sizeof(cons), "test_agent_sk.tmp");
    capture_begin();
    CHECK_EQ(add_key(&c, sk[0], "sk", cons, n), SSH_AGENT_FAILURE);
    CHECK(strstr(capture_end(logbuf, sizeof(logbuf)), "allow-list (keyward-agent -P)") != NULL);
    ag.providers.allowed = pattern;
    CHECK_EQ(add_key(&c, plain, "plain", cons, n), SSH_AGENT_FAILURE); /* not a FIDO key */
    random_sid(sid);
    CHECK_EQ(session_bind(&remote, plain, sid, sizeof(sid), true, false), SSH_AGENT_SUCCESS);
    CHECK_EQ(add_key(&remote, sk[0], "sk", cons, n), SSH_AGENT_FAILURE);
    CHECK_EQ(list_count(&c), 0);

    /* Added: from a forwarded connection only for "internal"; here with the library. */
    n = sk_provider_constraint(cons, sizeof(cons), "internal");
    CHECK_EQ(add_key(&remote, sk[0], "sk", cons, n), SSH_AGENT_SUCCESS);
    id = keystore_find(&ag.keys, sk[0]->blob, sk[0]->blob_len);
    CHECK(id != NULL && id->sk_provider != NULL && strcmp(id->sk_provider, "internal") == 0);
    CHECK_EQ(add_key(&c, sk[1], "no constraint", NULL, 0), SSH_AGENT_SUCCESS);
    id = keystore_find(&ag.keys, sk[1]->blob, sk[1]->blob_len);
    CHECK(id != NULL && id->sk_provider != NULL && strcmp(id->sk_provider, "internal") == 0);
    n = sk_provider_constraint(cons, sizeof(cons), "./test_agent_sk.tmp");
    for (i = 0; i < 2; i++) {
        CHECK_EQ(add_key(&c, sk[i], "sk", cons, n), SSH_AGENT_SUCCESS);
        id = keystore_find(&ag.keys, sk[i]->blob, sk[i]->blob_len);
        CHECK(id != NULL && id->sk_provider != NULL && strcmp(id->sk_provider, provider) == 0);
    }
    CHECK_EQ(list_count(&c), 2);

    /* Signing goes to a helper for the provider; its answer is verified. */
    for (i = 0; i < 2; i++) {
        sj = provider_sign_request(&c, sk[i], 0, data, sizeof(data), &type, &reply);
        CHECK(sj != NULL);
        if (sj == NULL)
            continue;
        CHECK(sj->host == NULL && sj->sk_provider != NULL &&
              strcmp(sj->sk_provider, provider) == 0);
        sk_answer(sk[i], sj->data, sj->data_len, 7, &sj->sig);
        agent_job_finish(&ag, &c, &sj->job, &reply);
        CHECK_EQ(reply.msg.buf[0], SSH_AGENT_SIGN_RESPONSE);
        /* The same answer over other data (as a misbehaving provider's): refused. */
        sj = provider_sign_request(&c, sk[i], 0, data, sizeof(data), &type, &reply);
        if (sj == NULL)
            continue;
        sk_answer(sk[i], data, 3, 8, &sj->sig);
        capture_begin();
        agent_job_finish(&ag, &c, &sj->job, &reply);
        CHECK(strstr(capture_end(logbuf, sizeof(logbuf)), "does not verify") != NULL);
        CHECK_EQ(reply.msg.buf[0], SSH_AGENT_FAILURE);
    }

    /* Web origins: an application outside websafe-allow signs only SSH's own messages. */
    ag.websafe_allow = "web:*";
    capture_begin();
    sj = provider_sign_request(&c, sk[0], 0, data, sizeof(data), &type, &reply);
    CHECK(sj == NULL);
    CHECK_EQ(type, SSH_AGENT_FAILURE);
    CHECK(strstr(capture_end(logbuf, sizeof(logbuf)), "not web-safe") != NULL);
    sj = provider_sign_request(&c, sk[0], 0, sshsig, sizeof(sshsig), &type, &reply);
    CHECK(sj != NULL);
    if (sj != NULL)
        agent_job_free(&sj->job);
    ag.websafe_unrestricted = true;
    sj = provider_sign_request(&c, sk[0], 0, data, sizeof(data), &type, &reply);
    CHECK(sj != NULL);
    if (sj != NULL)
        agent_job_free(&sj->job);
    ag.websafe_unrestricted = false;
    ag.websafe_allow = "ssh:*";
    sj = provider_sign_request(&c, sk[0], 0, data, sizeof(data), &type, &reply);
    CHECK(sj != NULL);
    if (sj != NULL)
        agent_job_free(&sj->job);
    ag.websafe_allow = NULL;

    wire_writer_reset(&reply.msg);
    {
        struct wire_writer req;

        wire_writer_init(&req);
        wire_put_u8(&req, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
        CHECK_EQ(send_simple(&c, &req), SSH_AGENT_SUCCESS);
        wire_writer_free(&req);
    }
    CHECK_EQ(list_count(&c), 0);
out:
    remove("test_agent_sk.tmp");
    ag.providers.allowed = PROVIDER_DEFAULT_ALLOWED;
    key_free(sk[0]);
    key_free(sk[1]);
    key_free(plain);
    agent_reply_free(&reply);
    agent_conn_cleanup(&c);
    agent_conn_cleanup(&remote);
}

int main(void)
{
    log_init("test_agent", LOG_LEVEL_ERROR, LOG_SINK_STDERR);
    CHECK(key_secure_heap_init(1 << 20, 64) != 0);
    agent_init(&ag, 0);
    test_basic_key_lifecycle();
    test_constraints();
    test_seed_rebind_keeps_connection();
    test_session_bind_rules();
    test_lock();
    test_extensions_and_garbage();
    test_jobs();
    test_lock_jobs();
    test_sign_log_lines();
    test_sign_user_audited();
    test_lazy_bindings();
    test_offload_fast_signatures();
    test_secure_heap();
    test_mldsa44_ed25519();
    test_pkcs11_modules();
    test_fido_keys();
    agent_cleanup(&ag);
    CRYPTO_secure_malloc_done();
    return check_finish("test_agent");
}
