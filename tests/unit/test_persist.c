/*
 * Unit tests: the agent's persist hooks (src/agent/persist.h), with a store
 * in memory. What is stored for each add (the private part exactly as it
 * came, the comment, confirm, a lifetime as an absolute expiry), what
 * removes an entry (remove, remove-all, expiry) and what does not (lock),
 * a store that fails (the add succeeds, with a warning in its audit event),
 * and agent_restore(): loading, an expired record, a record for another key,
 * and records that do not parse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "agent/agent.h"
#include "agent/persist.h"
#include "base/err.h"
#include "base/log.h"
#include "base/wire.h"
#include "check.h"
#include "crypto/key.h"
#include "proto/msg.h"

/* The store: the last record put, as bytes, and counts of each call. */
static struct {
    int puts, forgets, forget_alls;
    int fail; /* put fails */
    uint8_t rec[8192];
    size_t rec_len;
    uint8_t pub[1024];
    size_t pub_len;
    uint8_t forgot[1024];
    size_t forgot_len;
} store;

static int fake_put(void *ctx, const struct key *key, const struct persist_record *rec, char *why,
                    size_t whysize)
{
    (void)ctx;
    store.puts++;
    if (store.fail) {
        snprintf(why, whysize, "the disk is full");
        return KW_ERR_SYSTEM;
    }
    store.rec_len = persist_record_size(rec);
    CHECK(store.rec_len <= sizeof(store.rec));
    persist_record_write(rec, store.rec);
    memcpy(store.pub, key->blob, key->blob_len);
    store.pub_len = key->blob_len;
    return 0;
}

static void fake_forget(void *ctx, const struct key *key)
{
    (void)ctx;
    store.forgets++;
    memcpy(store.forgot, key->blob, key->blob_len);
    store.forgot_len = key->blob_len;
}

static void fake_forget_all(void *ctx)
{
    (void)ctx;
    store.forget_alls++;
}

static const struct agent_persist hooks = {fake_put, fake_forget, fake_forget_all, NULL};

static char last_audit[AUDIT_LINE_MAX];

static void audit_capture(void *ctx, const struct audit_event *ev)
{
    (void)ctx;
    if (audit_format_json(ev, 0, last_audit, sizeof(last_audit)) == 0)
        last_audit[0] = '\0';
}

static uint8_t send_msg(struct agent *ag, struct agent_conn *c, uint64_t now_ms,
                        const struct wire_writer *req)
{
    struct agent_reply reply;
    uint8_t type;

    agent_reply_init(&reply);
    agent_handle(ag, c, now_ms, req->buf, req->len, &reply);
    CHECK(reply.msg.len >= 1);
    type = reply.msg.len >= 1 ? reply.msg.buf[0] : 0;
    agent_reply_free(&reply);
    return type;
}

static uint8_t add_key(struct agent *ag, struct agent_conn *c, const struct key *k,
                       const char *comment, const uint8_t *constraints, size_t clen)
{
    struct wire_writer req;
    uint8_t type;

    wire_writer_init(&req);
    wire_put_u8(&req, clen ? SSH_AGENTC_ADD_ID_CONSTRAINED : SSH_AGENTC_ADD_IDENTITY);
    CHECK_EQ(key_private_serialize(k, &req), 0);
    wire_put_cstring(&req, comment);
    wire_put_bytes(&req, constraints, clen);
    type = send_msg(ag, c, 1000, &req);
    wire_writer_free(&req);
    return type;
}

static uint8_t simple(struct agent *ag, struct agent_conn *c, uint8_t type, const char *pass)
{
    struct wire_writer req;
    uint8_t r;

    wire_writer_init(&req);
    wire_put_u8(&req, type);
    if (pass != NULL)
        wire_put_cstring(&req, pass);
    r = send_msg(ag, c, 1000, &req);
    wire_writer_free(&req);
    return r;
}

static uint8_t remove_key(struct agent *ag, struct agent_conn *c, const struct key *k)
{
    struct wire_writer req;
    uint8_t r;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&req, k->blob, k->blob_len);
    r = send_msg(ag, c, 1000, &req);
    wire_writer_free(&req);
    return r;
}

static void test_what_is_stored(void)
{
    struct agent ag;
    struct agent_conn c;
    struct key *k = NULL;
    struct wire_writer priv;
    struct persist_record rec;
    const uint8_t constraints[] = {SSH_AGENT_CONSTRAIN_LIFETIME, 0, 0, 0, 60,
                                   SSH_AGENT_CONSTRAIN_CONFIRM};
    uint64_t wall = (uint64_t)time(NULL);

    agent_init(&ag, 0);
    ag.persist = &hooks;
    agent_conn_init(&c, 1);
    memset(&store, 0, sizeof(store));
    CHECK_EQ(key_generate(KEY_ED25519, 0, &k), 0);
    wire_writer_init(&priv);
    CHECK_EQ(key_private_serialize(k, &priv), 0);

    CHECK_EQ(add_key(&ag, &c, k, "plain", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(store.puts, 1);
    CHECK_EQ(persist_record_read(store.rec, store.rec_len, &rec), 0);
    CHECK(wire_view_eq(rec.priv, priv.buf, priv.len)); /* exactly as it came */
    CHECK(wire_view_eq_str(rec.comment, "plain"));
    CHECK_EQ(rec.expires, 0);
    CHECK(!rec.confirm);
    CHECK_EQ(rec.dest.len, 0);
    CHECK(store.pub_len == k->blob_len && memcmp(store.pub, k->blob, k->blob_len) == 0);

    /* Added again with constraints: the lifetime as an absolute expiry. */
    CHECK_EQ(add_key(&ag, &c, k, "constrained", constraints, sizeof(constraints)),
             SSH_AGENT_SUCCESS);
    CHECK_EQ(store.puts, 2);
    CHECK_EQ(persist_record_read(store.rec, store.rec_len, &rec), 0);
    CHECK(rec.expires >= wall + 60 && rec.expires <= wall + 62);
    CHECK(rec.confirm);
    CHECK(wire_view_eq(rec.priv, priv.buf, priv.len));

    /* A default lifetime (-t) is stored the same way. */
    ag.default_lifetime_secs = 600;
    CHECK_EQ(add_key(&ag, &c, k, "default lifetime", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(persist_record_read(store.rec, store.rec_len, &rec), 0);
    CHECK(rec.expires >= wall + 600 && rec.expires <= wall + 602);

    wire_writer_free(&priv);
    key_free(k);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    CHECK_EQ(store.forgets + store.forget_alls, 0); /* stopping the agent keeps the store */
}

static void test_what_removes(void)
{
    struct agent ag;
    struct agent_conn c;
    struct key *a = NULL, *b = NULL;
    const uint8_t lifetime[] = {SSH_AGENT_CONSTRAIN_LIFETIME, 0, 0, 0, 5};

    agent_init(&ag, 0);
    ag.persist = &hooks;
    agent_conn_init(&c, 1);
    memset(&store, 0, sizeof(store));
    CHECK_EQ(key_generate(KEY_ED25519, 0, &a), 0);
    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &b), 0);
    CHECK_EQ(add_key(&ag, &c, a, "a", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(add_key(&ag, &c, b, "b", lifetime, sizeof(lifetime)), SSH_AGENT_SUCCESS);

    /* Lock and unlock leave the store alone. */
    CHECK_EQ(simple(&ag, &c, SSH_AGENTC_LOCK, "pass"), SSH_AGENT_SUCCESS);
    CHECK_EQ(simple(&ag, &c, SSH_AGENTC_UNLOCK, "pass"), SSH_AGENT_SUCCESS);
    CHECK_EQ(store.puts, 2);
    CHECK_EQ(store.forgets + store.forget_alls, 0);

    /* Removal: the key's entry, and only for a key the agent holds. */
    CHECK_EQ(remove_key(&ag, &c, a), SSH_AGENT_SUCCESS);
    CHECK_EQ(store.forgets, 1);
    CHECK(store.forgot_len == a->blob_len && memcmp(store.forgot, a->blob, a->blob_len) == 0);
    CHECK_EQ(remove_key(&ag, &c, a), SSH_AGENT_FAILURE);
    CHECK_EQ(store.forgets, 1);

    /* Expiry. */
    CHECK_EQ(agent_expire(&ag, 1000 + 4999), 1000 + 5000);
    CHECK_EQ(store.forgets, 1);
    CHECK_EQ(agent_expire(&ag, 1000 + 5000), 0);
    CHECK_EQ(store.forgets, 2);
    CHECK(store.forgot_len == b->blob_len && memcmp(store.forgot, b->blob, b->blob_len) == 0);

    /* Remove-all: every entry. */
    CHECK_EQ(simple(&ag, &c, SSH_AGENTC_REMOVE_ALL_IDENTITIES, NULL), SSH_AGENT_SUCCESS);
    CHECK_EQ(store.forget_alls, 1);

    key_free(a);
    key_free(b);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
}

static void test_store_fails(void)
{
    struct agent ag;
    struct agent_conn c;
    struct key *k = NULL;

    agent_init(&ag, 0);
    ag.persist = &hooks;
    ag.audit = audit_capture;
    agent_conn_init(&c, 1);
    memset(&store, 0, sizeof(store));
    store.fail = 1;
    CHECK_EQ(key_generate(KEY_ED25519, 0, &k), 0);
    CHECK_EQ(add_key(&ag, &c, k, "k", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK_EQ(ag.keys.count, 1); /* in memory all the same */
    CHECK(strstr(last_audit, "\"event\":\"add\",\"outcome\":\"ok\"") != NULL);
    CHECK(strstr(last_audit, "\"warning\":\"kept in memory only, not stored: the disk is full\"") !=
          NULL);
    store.fail = 0;
    CHECK_EQ(add_key(&ag, &c, k, "k", NULL, 0), SSH_AGENT_SUCCESS);
    CHECK(strstr(last_audit, "warning") == NULL);
    key_free(k);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
}

static void test_restore(void)
{
    struct agent from, to;
    struct agent_conn c;
    struct key *k = NULL, *other = NULL;
    struct persist_record rec;
    const uint8_t constraints[] = {SSH_AGENT_CONSTRAIN_LIFETIME, 0, 0, 0, 60,
                                   SSH_AGENT_CONSTRAIN_CONFIRM};
    uint64_t wall = (uint64_t)time(NULL);
    uint8_t saved[8192];
    size_t saved_len;
    char why[256];

    agent_init(&from, 0);
    from.persist = &hooks;
    agent_conn_init(&c, 1);
    memset(&store, 0, sizeof(store));
    CHECK_EQ(key_generate(KEY_ECDSA_P384, 0, &k), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &other), 0);
    CHECK_EQ(add_key(&from, &c, k, "kept", constraints, sizeof(constraints)), SSH_AGENT_SUCCESS);
    memcpy(saved, store.rec, store.rec_len);
    saved_len = store.rec_len;
    agent_cleanup(&from);

    agent_init(&to, 0);
    to.audit = audit_capture;
    CHECK_EQ(persist_record_read(saved, saved_len, &rec), 0);
    /* Another key's blob: refused. */
    why[0] = '\0';
    CHECK(agent_restore(&to, 500, wall, &rec, other->blob, other->blob_len, why, sizeof(why)) < 0);
    CHECK(strstr(why, "not the one") != NULL);
    CHECK_EQ(to.keys.count, 0);
    /* Expired: nothing loaded. */
    CHECK_EQ(agent_restore(&to, 500, wall + 61, &rec, k->blob, k->blob_len, why, sizeof(why)),
             AGENT_RESTORE_EXPIRED);
    CHECK_EQ(to.keys.count, 0);
    /* Loaded, with what is left of the lifetime and its confirm constraint. */
    CHECK_EQ(agent_restore(&to, 500, wall + 20, &rec, k->blob, k->blob_len, why, sizeof(why)), 0);
    CHECK_EQ(to.keys.count, 1);
    if (to.keys.count == 1) {
        const struct identity *id = to.keys.ids[0];

        CHECK(key_equal(id->key, k));
        CHECK(strcmp(id->comment, "kept") == 0);
        CHECK(id->confirm);
        CHECK(id->expires_ms >= 500 + 40 * 1000 && id->expires_ms <= 500 + 42 * 1000);
    }
    CHECK(strstr(last_audit, "\"event\":\"load\",\"outcome\":\"ok\"") != NULL);
    CHECK(strstr(last_audit, "\"comment\":\"kept\"") != NULL);

    /* Records that do not parse: a newer format, cut short, bytes left over. */
    saved[3] = PERSIST_RECORD_VERSION + 1;
    CHECK_EQ(persist_record_read(saved, saved_len, &rec), KW_ERR_KEY_TYPE);
    saved[3] = PERSIST_RECORD_VERSION;
    CHECK(persist_record_read(saved, saved_len - 1, &rec) != 0);
    CHECK(persist_record_read(saved, 6, &rec) != 0);
    CHECK(persist_record_read(saved, saved_len + 1, &rec) != 0);
    saved[12] = 2; /* confirm is 0 or 1 */
    CHECK(persist_record_read(saved, saved_len, &rec) != 0);

    key_free(k);
    key_free(other);
    agent_conn_cleanup(&c);
    agent_cleanup(&to);
}

/* One restrict-destination-v00 constraint: from here to user@host (key), as ssh-add -h adds. */
static void put_dest_extension(struct wire_writer *w, const struct key *host)
{
    size_t body, constraint, hop;

    wire_put_u8(w, SSH_AGENT_CONSTRAIN_EXTENSION);
    wire_put_cstring(w, DEST_EXTENSION);
    body = wire_begin_string(w);
    constraint = wire_begin_string(w);
    hop = wire_begin_string(w); /* from: the origin */
    wire_put_cstring(w, "");
    wire_put_cstring(w, "");
    wire_put_cstring(w, "");
    wire_end_string(w, hop);
    hop = wire_begin_string(w); /* to */
    wire_put_cstring(w, "alice");
    wire_put_cstring(w, "example.com");
    wire_put_cstring(w, "");
    wire_put_string(w, host->blob, host->blob_len);
    wire_put_bool(w, false);
    wire_end_string(w, hop);
    wire_put_cstring(w, ""); /* reserved */
    wire_end_string(w, constraint);
    wire_end_string(w, body);
}

static void test_destinations_kept(void)
{
    struct agent from, to;
    struct agent_conn c;
    struct key *k = NULL, *host = NULL;
    struct wire_writer cons;
    struct persist_record rec;
    uint8_t saved[8192];
    size_t saved_len;
    char why[256];

    agent_init(&from, 0);
    from.persist = &hooks;
    agent_conn_init(&c, 1);
    memset(&store, 0, sizeof(store));
    CHECK_EQ(key_generate(KEY_ED25519, 0, &k), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &host), 0);
    wire_writer_init(&cons);
    put_dest_extension(&cons, host);
    CHECK_EQ(add_key(&from, &c, k, "restricted", cons.buf, cons.len), SSH_AGENT_SUCCESS);
    CHECK_EQ(from.keys.count, 1);
    CHECK_EQ(from.keys.count == 1 ? from.keys.ids[0]->dest.count : 0, 1);
    CHECK_EQ(store.puts, 1);
    memcpy(saved, store.rec, store.rec_len);
    saved_len = store.rec_len;
    CHECK_EQ(persist_record_read(saved, saved_len, &rec), 0);
    CHECK(rec.dest.len > 0);

    agent_init(&to, 0);
    CHECK_EQ(
        agent_restore(&to, 500, (uint64_t)time(NULL), &rec, k->blob, k->blob_len, why, sizeof(why)),
        0);
    CHECK_EQ(to.keys.count, 1);
    CHECK_EQ(to.keys.count == 1 ? to.keys.ids[0]->dest.count : 0, 1);

    wire_writer_free(&cons);
    key_free(k);
    key_free(host);
    agent_conn_cleanup(&c);
    agent_cleanup(&from);
    agent_cleanup(&to);
}

/*
 * FIDO keys: never stored (their provider is not part of a record), and a
 * record holding one, as --import-windows-agent may find in the Windows
 * service's registry, is refused with the reason rather than loaded to
 * fail every signature.
 */
static void test_fido_not_kept(void)
{
    struct agent ag;
    struct agent_conn c;
    struct key *k = NULL;
    struct wire_writer priv;
    struct persist_record rec;
    struct key *out = NULL;
    char why[256];
    static const char soft_provider[] = "internal";
    uint8_t constraint[64];
    size_t clen = 0;

    agent_init(&ag, 0);
    ag.persist = &hooks;
    agent_conn_init(&c, 1);
    memset(&store, 0, sizeof(store));
    CHECK_EQ(key_generate(KEY_SK_ED25519, 0, &k), 0);
    if (k == NULL)
        goto out;
    /* sk-provider@openssh.com "internal": byte 255, string name, string provider. */
    constraint[clen++] = SSH_AGENT_CONSTRAIN_EXTENSION;
    {
        struct wire_writer w;

        wire_writer_init(&w);
        wire_put_cstring(&w, "sk-provider@openssh.com");
        wire_put_cstring(&w, soft_provider);
        CHECK(w.len + clen <= sizeof(constraint));
        if (w.len + clen <= sizeof(constraint)) {
            memcpy(constraint + clen, w.buf, w.len);
            clen += w.len;
        }
        wire_writer_free(&w);
    }
    CHECK_EQ(add_key(&ag, &c, k, "fido", constraint, clen), SSH_AGENT_SUCCESS);
    CHECK_EQ(ag.keys.count, 1);
    CHECK_EQ(store.puts, 0);

    wire_writer_init(&priv);
    CHECK_EQ(key_private_serialize(k, &priv), 0);
    memset(&rec, 0, sizeof(rec));
    rec.priv.ptr = priv.buf;
    rec.priv.len = priv.len;
    why[0] = '\0';
    CHECK_EQ(persist_record_key(&rec, k->blob, k->blob_len, &out, why, sizeof(why)),
             KW_ERR_NO_SUPPORT);
    CHECK(out == NULL);
    CHECK(strstr(why, "FIDO key") != NULL && strstr(why, "ssh-add -S") != NULL);
    wire_writer_free(&priv);
out:
    key_free(k);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
}

int main(void)
{
    log_init("test_persist", LOG_LEVEL_ERROR, LOG_SINK_STDERR);
    CHECK(key_secure_heap_init(1 << 20, 64) != 0);
    test_what_is_stored();
    test_what_removes();
    test_store_fails();
    test_restore();
    test_destinations_kept();
    test_fido_not_kept();
    CRYPTO_secure_malloc_done();
    return check_finish("test_persist");
}
