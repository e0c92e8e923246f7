/*
 * Unit tests for issue 22 (policy and limits):
 *
 * - host certificates in destination restrictions are checked as OpenSSH
 *   checks them (sshkey_cert_check_host()): one with critical options, or
 *   whose CA signed with SHA-1 "ssh-rsa", does not match the hop;
 * - a restriction holds at most DEST_MAX_KEYS keys, and no certificates;
 * - with a small secure heap, adding keys until the agent refuses leaves
 *   the keys loaded first signing, and the refusal says "too many keys";
 * - at most KEYSTORE_MAX_IDENTITIES identities.
 *
 * Certificates are built here, field by field (PROTOCOL.certkeys), and
 * signed with key_sign(): ssh-keygen does not put critical options in host
 * certificates.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "agent/agent.h"
#include "agent/binding.h"
#include "agent/destination.h"
#include "agent/request.h"
#include "base/err.h"
#include "base/wire.h"
#include "check.h"
#include "crypto/key.h"

#ifndef DEST_MAX_KEYS
#define DEST_MAX_KEYS 128 /* destination.h's, for building against the code before issue 22 */
#endif
#ifndef KEYSTORE_MAX_IDENTITIES
#define KEYSTORE_MAX_IDENTITIES 1024
#endif

/*
 * An Ed25519 host certificate for subject, signed by ca with sign_flags
 * (for an RSA CA: 0 gives "ssh-rsa", KEY_SIGN_RSA_SHA2_512 "rsa-sha2-512").
 */
static struct key *make_host_cert(const struct key *subject, const struct key *ca,
                                  uint32_t sign_flags, const char *principal,
                                  const char *critical_name, const char *critical_value)
{
    struct wire_writer w, sig;
    struct wire_reader r;
    struct wire_view pk;
    struct key *cert = NULL;
    size_t mark, inner;
    uint64_t now = (uint64_t)time(NULL);

    /* The subject's public fields: after the name in its plain blob. */
    wire_reader_init(&r, subject->plain_blob, subject->plain_blob_len);
    (void)wire_get_string(&r);
    pk = wire_get_string(&r);
    wire_writer_init(&w);
    wire_writer_init(&sig);
    wire_put_cstring(&w, "ssh-ed25519-cert-v01@openssh.com");
    wire_put_string(&w, "0123456789abcdef0123456789abcdef", 32); /* nonce */
    wire_put_string(&w, pk.ptr, pk.len);
    wire_put_u64(&w, 1); /* serial */
    wire_put_u32(&w, KEY_CERT_HOST);
    wire_put_cstring(&w, "test host");
    mark = wire_begin_string(&w); /* principals */
    wire_put_cstring(&w, principal);
    wire_end_string(&w, mark);
    wire_put_u64(&w, now - 3600);
    wire_put_u64(&w, now + 3600);
    mark = wire_begin_string(&w); /* critical options */
    if (critical_name != NULL) {
        wire_put_cstring(&w, critical_name);
        inner = wire_begin_string(&w);
        wire_put_cstring(&w, critical_value);
        wire_end_string(&w, inner);
    }
    wire_end_string(&w, mark);
    wire_put_cstring(&w, ""); /* extensions */
    wire_put_cstring(&w, ""); /* reserved */
    wire_put_string(&w, ca->blob, ca->blob_len);
    CHECK_EQ(key_sign(ca, w.buf, w.len, sign_flags, &sig), 0);
    wire_put_string(&w, sig.buf, sig.len);
    CHECK_EQ(key_from_blob(w.buf, w.len, &cert), 0);
    wire_writer_free(&w);
    wire_writer_free(&sig);
    return cert;
}

/* A restriction "origin -> host (CA ca)" decoded. */
static void ca_restriction(const struct key *ca, const char *host, struct dest_constraints *dc)
{
    struct wire_writer w;
    size_t mark, hop;

    wire_writer_init(&w);
    mark = wire_begin_string(&w);
    hop = wire_begin_string(&w); /* from: the origin */
    wire_put_cstring(&w, "");
    wire_put_cstring(&w, "");
    wire_put_cstring(&w, "");
    wire_end_string(&w, hop);
    hop = wire_begin_string(&w); /* to: host, by its CA */
    wire_put_cstring(&w, "");
    wire_put_cstring(&w, host);
    wire_put_cstring(&w, "");
    wire_put_string(&w, ca->blob, ca->blob_len);
    wire_put_bool(&w, true);
    wire_end_string(&w, hop);
    wire_put_cstring(&w, "");
    wire_end_string(&w, mark);
    CHECK_EQ(dest_decode(wire_writer_view(&w), dc), 0);
    wire_writer_free(&w);
}

/* Whether a connection bound (for authentication) to hostkey may use a key restricted by dc. */
static bool permitted_for(const struct dest_constraints *dc, struct key *hostkey)
{
    struct binding_set bs;
    uint8_t sid[32];
    const char *why;
    char buf[256];
    size_t slot;
    bool ok;

    memset(sid, 7, sizeof(sid));
    binding_set_init(&bs);
    CHECK_EQ(binding_record(&bs, key_ref(hostkey), sid, sizeof(sid), false, &why, &slot),
             BINDING_RECORDED);
    ok = dest_permitted(dc, &bs, "alice", (uint64_t)time(NULL), buf, sizeof(buf));
    binding_set_clear(&bs);
    return ok;
}

static void test_host_certificates(void)
{
    struct key *host = NULL, *ca = NULL, *rsa_ca = NULL, *cert;
    struct dest_constraints dc, rsa_dc;

    CHECK_EQ(key_generate(KEY_ED25519, 0, &host), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &ca), 0);
    CHECK_EQ(key_generate(KEY_RSA, 2048, &rsa_ca), 0);
    ca_restriction(ca, "server.example", &dc);
    ca_restriction(rsa_ca, "server.example", &rsa_dc);

    /* The good case, as ssh-keygen -h makes it: matches. */
    cert = make_host_cert(host, ca, 0, "server.example", NULL, NULL);
    CHECK(cert != NULL && key_cert_valid_for_host(cert, "server.example", (uint64_t)time(NULL)));
    CHECK(cert != NULL && permitted_for(&dc, cert));
    key_free(cert);

    /* Critical options (force-command) in a host certificate: OpenSSH refuses. */
    cert = make_host_cert(host, ca, 0, "server.example", "force-command", "/bin/true");
    CHECK(cert != NULL); /* it parses: the CA signature is good */
    CHECK(cert != NULL && !key_cert_valid_for_host(cert, "server.example", (uint64_t)time(NULL)));
    CHECK(cert != NULL && !permitted_for(&dc, cert));
    key_free(cert);

    /* An RSA CA signing with SHA-2: matches. */
    cert = make_host_cert(host, rsa_ca, KEY_SIGN_RSA_SHA2_512, "server.example", NULL, NULL);
    CHECK(cert != NULL && permitted_for(&rsa_dc, cert));
    key_free(cert);

    /* The same CA signing with SHA-1 "ssh-rsa": OpenSSH refuses. */
    cert = make_host_cert(host, rsa_ca, 0, "server.example", NULL, NULL);
    CHECK(cert != NULL && !key_cert_valid_for_host(cert, "server.example", (uint64_t)time(NULL)));
    CHECK(cert != NULL && !permitted_for(&rsa_dc, cert));
    key_free(cert);

    dest_free(&dc);
    dest_free(&rsa_dc);
    key_free(host);
    key_free(ca);
    key_free(rsa_ca);
}

/* At most DEST_MAX_KEYS keys per restriction, and no certificates among them. */
static void test_restriction_limits(void)
{
    struct key *host = NULL, *ca = NULL, *cert;
    struct dest_constraints dc;
    struct wire_writer w;
    size_t mark, hop, i, n;

    CHECK_EQ(key_generate(KEY_ECDSA_P521, 0, &host), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &ca), 0);
    wire_writer_init(&w);
    for (n = DEST_MAX_KEYS; n <= DEST_MAX_KEYS + 1; n++) {
        wire_writer_reset(&w);
        mark = wire_begin_string(&w);
        hop = wire_begin_string(&w);
        wire_put_cstring(&w, "");
        wire_put_cstring(&w, "");
        wire_put_cstring(&w, "");
        wire_end_string(&w, hop);
        hop = wire_begin_string(&w);
        wire_put_cstring(&w, "");
        wire_put_cstring(&w, "h");
        wire_put_cstring(&w, "");
        for (i = 0; i < n; i++) {
            wire_put_string(&w, host->blob, host->blob_len);
            wire_put_bool(&w, false);
        }
        wire_end_string(&w, hop);
        wire_put_cstring(&w, "");
        wire_end_string(&w, mark);
        if (n == DEST_MAX_KEYS) {
            CHECK_EQ(dest_decode(wire_writer_view(&w), &dc), 0);
            dest_free(&dc);
        } else {
            CHECK_EQ(dest_decode(wire_writer_view(&w), &dc), KW_ERR_TOO_LARGE);
            CHECK(dc.items == NULL && dc.count == 0);
        }
    }
    /* A certificate as a hop's key is refused. */
    cert = make_host_cert(ca, ca, 0, "h", NULL, NULL);
    wire_writer_reset(&w);
    mark = wire_begin_string(&w);
    hop = wire_begin_string(&w);
    wire_put_cstring(&w, "");
    wire_put_cstring(&w, "");
    wire_put_cstring(&w, "");
    wire_end_string(&w, hop);
    hop = wire_begin_string(&w);
    wire_put_cstring(&w, "");
    wire_put_cstring(&w, "h");
    wire_put_cstring(&w, "");
    wire_put_string(&w, cert->blob, cert->blob_len);
    wire_put_bool(&w, false);
    wire_end_string(&w, hop);
    wire_put_cstring(&w, "");
    wire_end_string(&w, mark);
    CHECK(dest_decode(wire_writer_view(&w), &dc) != 0);
    key_free(cert);
    wire_writer_free(&w);
    key_free(host);
    key_free(ca);
}

/* ---- the agent: key count and secure heap ---- */

static uint64_t now_ms = 1000;

static uint8_t handle(struct agent *ag, struct agent_conn *c, const struct wire_writer *req)
{
    struct agent_reply reply;
    uint8_t type;

    agent_reply_init(&reply);
    agent_handle(ag, c, now_ms, req->buf, req->len, &reply);
    type = reply.msg.len ? reply.msg.buf[0] : 0;
    agent_reply_free(&reply);
    return type;
}

static uint8_t add(struct agent *ag, struct agent_conn *c, const struct key *k)
{
    struct wire_writer req;
    uint8_t type;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_ADD_IDENTITY);
    CHECK_EQ(key_private_serialize(k, &req), 0);
    wire_put_cstring(&req, "k");
    type = handle(ag, c, &req);
    wire_writer_free(&req);
    return type;
}

static uint8_t sign(struct agent *ag, struct agent_conn *c, const struct key *k)
{
    struct wire_writer req;
    uint8_t type;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, k->blob, k->blob_len);
    wire_put_cstring(&req, "data");
    wire_put_u32(&req, 0);
    type = handle(ag, c, &req);
    wire_writer_free(&req);
    return type;
}

static uint8_t remove_key(struct agent *ag, struct agent_conn *c, const struct key *k)
{
    struct wire_writer req;
    uint8_t type;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&req, k->blob, k->blob_len);
    type = handle(ag, c, &req);
    wire_writer_free(&req);
    return type;
}

#define FILL_MAX 400

/*
 * With a 64 KiB secure heap: an ECDSA key, then RSA-2048 keys until the
 * agent refuses. The refusal must come while the ECDSA key still signs.
 */
static void test_secure_heap_reserve(void)
{
    struct agent ag;
    struct agent_conn c;
    struct key *ecdsa = NULL, *rsa[FILL_MAX];
    size_t n = 0, i;
    uint8_t type = 0;

    agent_init(&ag, 0);
    agent_conn_init(&c, 1);
    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &ecdsa), 0);
    CHECK_EQ(add(&ag, &c, ecdsa), SSH_AGENT_SUCCESS);
    CHECK_EQ(sign(&ag, &c, ecdsa), SSH_AGENT_SIGN_RESPONSE);
    for (n = 0; n < FILL_MAX; n++) {
        rsa[n] = NULL;
        if (key_generate(KEY_RSA, 1024, &rsa[n]) != 0)
            break;
        type = add(&ag, &c, rsa[n]);
        if (type != SSH_AGENT_SUCCESS) {
            n++;
            break;
        }
    }
    printf("# %zu RSA keys offered; the last add answered %u; secure heap %zu bytes in use\n", n,
           type, CRYPTO_secure_used());
    CHECK_EQ(type, SSH_AGENT_FAILURE);
    CHECK_EQ(sign(&ag, &c, ecdsa), SSH_AGENT_SIGN_RESPONSE);
    /* Then small keys into whatever is left: still refused before signing suffers. */
    for (i = 0; i < 2000; i++) {
        struct key *small = NULL;

        if (key_generate(KEY_ECDSA_P256, 0, &small) != 0)
            break; /* the heap is full: key_generate() itself fails */
        type = add(&ag, &c, small);
        key_free(small);
        if (type != SSH_AGENT_SUCCESS)
            break;
    }
    printf("# then %zu ECDSA keys added; secure heap %zu bytes in use\n", i, CRYPTO_secure_used());
    CHECK_EQ(type, SSH_AGENT_FAILURE);
    CHECK_EQ(sign(&ag, &c, ecdsa), SSH_AGENT_SIGN_RESPONSE);
    /* Removing keys makes room again (the refused add was over the line by up to one key). */
    if (n >= 4) {
        CHECK_EQ(remove_key(&ag, &c, rsa[0]), SSH_AGENT_SUCCESS);
        CHECK_EQ(remove_key(&ag, &c, rsa[1]), SSH_AGENT_SUCCESS);
        CHECK_EQ(remove_key(&ag, &c, rsa[2]), SSH_AGENT_SUCCESS);
        CHECK_EQ(add(&ag, &c, rsa[n - 1]), SSH_AGENT_SUCCESS);
        CHECK_EQ(sign(&ag, &c, rsa[n - 1]), SSH_AGENT_SIGN_RESPONSE);
    }
    CHECK_EQ(sign(&ag, &c, ecdsa), SSH_AGENT_SIGN_RESPONSE);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    for (i = 0; i < n; i++)
        key_free(rsa[i]);
    key_free(ecdsa);
}

/* At most KEYSTORE_MAX_IDENTITIES; re-adding one that is there still works. */
static void test_identity_limit(void)
{
    struct agent ag;
    struct agent_conn c;
    struct key *first = NULL, *k = NULL;
    size_t i;

    agent_init(&ag, 0);
    agent_conn_init(&c, 1);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &first), 0);
    CHECK_EQ(add(&ag, &c, first), SSH_AGENT_SUCCESS);
    for (i = 1; i < KEYSTORE_MAX_IDENTITIES; i++) {
        CHECK_EQ(key_generate(KEY_ED25519, 0, &k), 0);
        if (add(&ag, &c, k) != SSH_AGENT_SUCCESS) {
            CHECK(false);
            key_free(k);
            break;
        }
        key_free(k);
    }
    CHECK_EQ(ag.keys.count, KEYSTORE_MAX_IDENTITIES);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &k), 0);
    CHECK_EQ(add(&ag, &c, k), SSH_AGENT_FAILURE);
    CHECK_EQ(add(&ag, &c, first), SSH_AGENT_SUCCESS); /* a replacement */
    CHECK_EQ(sign(&ag, &c, first), SSH_AGENT_SIGN_RESPONSE);
    CHECK_EQ(remove_key(&ag, &c, first), SSH_AGENT_SUCCESS);
    CHECK_EQ(add(&ag, &c, k), SSH_AGENT_SUCCESS);
    key_free(k);
    key_free(first);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
}

int main(void)
{
    test_host_certificates();
    test_restriction_limits();
    test_identity_limit();
    /* Last, and alone: a small secure heap, as the agent has a bigger one. */
    CHECK(key_secure_heap_init(64 * 1024, 64) != 0);
    test_secure_heap_reserve();
    CRYPTO_secure_malloc_done();
    return check_finish("test_policy");
}
