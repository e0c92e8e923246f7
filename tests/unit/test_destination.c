/*
 * Unit tests: destination constraints (decoding and the hop rules), the
 * userauth request parser and pattern matching, with generated host keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/binding.h"
#include "agent/destination.h"
#include "agent/userauth.h"
#include "base/err.h"
#include "base/match.h"
#include "base/wire.h"
#include "check.h"
#include "crypto/key.h"

static struct key *host1, *host2, *host3, *user_key;

static void put_hop(struct wire_writer *w, const char *user, const char *host, const struct key *k,
                    bool is_ca, const char *reserved)
{
    size_t mark = wire_begin_string(w);

    wire_put_cstring(w, user);
    wire_put_cstring(w, host);
    wire_put_cstring(w, reserved);
    if (k != NULL) {
        wire_put_string(w, k->blob, k->blob_len);
        wire_put_bool(w, is_ca);
    }
    wire_end_string(w, mark);
}

/* One constraint "from (host, key) to user@host (key)"; NULL from = origin. */
static void put_constraint(struct wire_writer *w, const char *from_host, const struct key *from,
                           const char *to_user, const char *to_host, const struct key *to)
{
    size_t mark = wire_begin_string(w);

    put_hop(w, "", from_host ? from_host : "", from, false, "");
    put_hop(w, to_user ? to_user : "", to_host, to, false, "");
    wire_put_cstring(w, "");
    wire_end_string(w, mark);
}

static int decode(struct wire_writer *w, struct dest_constraints *dc)
{
    return dest_decode(wire_writer_view(w), dc);
}

static void bind(struct binding_set *bs, struct key *hostkey, uint8_t sidbyte, bool fwd)
{
    uint8_t sid[32];
    const char *why;
    size_t slot;

    memset(sid, sidbyte, sizeof(sid));
    CHECK_EQ(binding_record(bs, key_ref(hostkey), sid, sizeof(sid), fwd, &why, &slot),
             BINDING_RECORDED);
}

static void test_decode(void)
{
    struct wire_writer w;
    struct dest_constraints dc;
    int i;

    wire_writer_init(&w);
    put_constraint(&w, NULL, NULL, NULL, "host1", host1);
    put_constraint(&w, "host1", host1, "alice", "host2", host2);
    CHECK_EQ(decode(&w, &dc), 0);
    CHECK_EQ(dc.count, 2);
    if (dc.count == 2) {
        CHECK(dc.items[0].from.hostname == NULL && dc.items[0].from.nkeys == 0);
        CHECK_STR(dc.items[0].to.hostname, "host1");
        CHECK_STR(dc.items[1].to.user, "alice");
        CHECK(key_equal(dc.items[1].from.keys[0], host1));
    }
    dest_free(&dc);

    /*
     * Every truncation fails and leaves nothing allocated, except the one
     * that ends exactly after the first constraint: that is a valid list.
     */
    for (i = 0; i < (int)w.len; i++) {
        struct wire_view v = {w.buf, (size_t)i};

        if ((size_t)i == 4 + wire_peek_u32(w.buf))
            continue;
        CHECK(dest_decode(v, &dc) != 0 && dc.count == 0 && dc.items == NULL);
    }
    wire_writer_free(&w);

    /* "to" without keys, "from" with a user, a non-empty reserved field. */
    wire_writer_init(&w);
    put_constraint(&w, NULL, NULL, NULL, "host1", NULL);
    CHECK_EQ(decode(&w, &dc), KW_ERR_CONSTRAINT);
    wire_writer_reset(&w);
    {
        size_t mark = wire_begin_string(&w);

        put_hop(&w, "bob", "", NULL, false, "");
        put_hop(&w, "", "host1", host1, false, "");
        wire_put_cstring(&w, "");
        wire_end_string(&w, mark);
    }
    CHECK_EQ(decode(&w, &dc), KW_ERR_CONSTRAINT);
    wire_writer_reset(&w);
    {
        size_t mark = wire_begin_string(&w);

        put_hop(&w, "", "", NULL, false, "");
        put_hop(&w, "", "host1", host1, false, "future");
        wire_put_cstring(&w, "");
        wire_end_string(&w, mark);
    }
    CHECK_EQ(decode(&w, &dc), KW_ERR_CONSTRAINT);
    /* An empty list would restrict nothing. */
    wire_writer_reset(&w);
    CHECK_EQ(decode(&w, &dc), KW_ERR_CONSTRAINT);
    /* More than 1024 constraints. */
    for (i = 0; i < DEST_MAX_CONSTRAINTS + 1; i++)
        put_constraint(&w, NULL, NULL, NULL, "h", host1);
    CHECK_EQ(decode(&w, &dc), KW_ERR_TOO_LARGE);
    CHECK(dc.items == NULL);
    wire_writer_free(&w);
}

static void test_rules(void)
{
    struct wire_writer w;
    struct dest_constraints dc;
    struct binding_set bs;
    char why[256];

    /* origin -> host1, host1 -> alice@host2 */
    wire_writer_init(&w);
    put_constraint(&w, NULL, NULL, NULL, "host1", host1);
    put_constraint(&w, "host1", host1, "alice", "host2", host2);
    CHECK_EQ(decode(&w, &dc), 0);
    wire_writer_free(&w);

    /* No bindings: a local client may see and use the key. */
    binding_set_init(&bs);
    CHECK(dest_permitted(&dc, &bs, NULL, 0, why, sizeof(why)));
    /* A failed bind and nothing recorded: refused. */
    binding_note_failure(&bs);
    CHECK(!dest_permitted(&dc, &bs, NULL, 0, why, sizeof(why)));
    CHECK(strstr(why, "bind failed") != NULL);
    binding_set_clear(&bs);

    /* Direct login to host1: allowed; to host2: refused, naming the hop. */
    binding_set_init(&bs);
    bind(&bs, host1, 1, false);
    CHECK(dest_permitted(&dc, &bs, "root", 0, why, sizeof(why)));
    binding_set_clear(&bs);
    bind(&bs, host2, 1, false);
    CHECK(!dest_permitted(&dc, &bs, "root", 0, why, sizeof(why)));
    CHECK(strstr(why, "hop 0") != NULL);
    binding_set_clear(&bs);

    /* Through host1 to host2 as alice: allowed; as bob: refused. */
    bind(&bs, host1, 1, true);
    bind(&bs, host2, 2, false);
    CHECK(dest_permitted(&dc, &bs, "alice", 0, why, sizeof(why)));
    CHECK(!dest_permitted(&dc, &bs, "bob", 0, why, sizeof(why)));
    binding_set_clear(&bs);

    /* Through host1 to host3: refused at hop 1. */
    bind(&bs, host1, 1, true);
    bind(&bs, host3, 2, false);
    CHECK(!dest_permitted(&dc, &bs, "alice", 0, why, sizeof(why)));
    CHECK(strstr(why, "hop 1") != NULL);
    binding_set_clear(&bs);

    /* Listing on host1 through forwarding: host1 -> host2 exists, so shown. */
    bind(&bs, host1, 1, true);
    CHECK(dest_permitted(&dc, &bs, NULL, 0, why, sizeof(why)));
    /* But signing on a forwarding hop is never allowed. */
    CHECK(!dest_permitted(&dc, &bs, "alice", 0, why, sizeof(why)));
    binding_set_clear(&bs);

    /* Listing on host2 through forwarding: no onward hop from host2: hidden. */
    bind(&bs, host1, 1, true);
    bind(&bs, host2, 2, true);
    CHECK(!dest_permitted(&dc, &bs, NULL, 0, why, sizeof(why)));
    binding_set_clear(&bs);

    /* Unconstrained keys are always permitted. */
    bind(&bs, host3, 1, false);
    CHECK(dest_permitted(NULL, &bs, "x", 0, why, sizeof(why)));
    binding_set_clear(&bs);
    dest_free(&dc);
}

static void put_userauth(struct wire_writer *w, const uint8_t *sid, size_t sidlen, const char *user,
                         const char *method, const char *alg, const struct key *k,
                         const struct key *hostkey)
{
    wire_put_string(w, sid, sidlen);
    wire_put_u8(w, 50);
    wire_put_cstring(w, user);
    wire_put_cstring(w, "ssh-connection");
    wire_put_cstring(w, method);
    wire_put_bool(w, true);
    wire_put_cstring(w, alg);
    wire_put_string(w, k->blob, k->blob_len);
    if (hostkey != NULL)
        wire_put_string(w, hostkey->blob, hostkey->blob_len);
}

static void test_userauth(void)
{
    static const uint8_t sid[32] = {1, 2, 3};
    struct userauth_request ua;
    struct wire_writer w;
    size_t i;

    wire_writer_init(&w);
    put_userauth(&w, sid, sizeof(sid), "alice", "publickey-hostbound-v00@openssh.com",
                 "ssh-ed25519", user_key, host1);
    CHECK_EQ(userauth_parse(w.buf, w.len, user_key, &ua), 0);
    CHECK_STR(ua.user, "alice");
    CHECK(ua.sid.len == sizeof(sid) && ua.hostkey != NULL && key_equal(ua.hostkey, host1));
    userauth_free(&ua);
    /* Not for this key; wrong algorithm; truncated; trailing byte. */
    CHECK(userauth_parse(w.buf, w.len, host2, &ua) != 0);
    for (i = 0; i < w.len; i++)
        CHECK(userauth_parse(w.buf, i, user_key, &ua) != 0 && ua.hostkey == NULL);
    wire_put_u8(&w, 0);
    CHECK_EQ(userauth_parse(w.buf, w.len, user_key, &ua), KW_ERR_TRAILING);
    wire_writer_reset(&w);
    put_userauth(&w, sid, sizeof(sid), "alice", "publickey", "rsa-sha2-512", user_key, NULL);
    CHECK(userauth_parse(w.buf, w.len, user_key, &ua) != 0);
    wire_writer_reset(&w);
    put_userauth(&w, sid, sizeof(sid), "alice", "password", "ssh-ed25519", user_key, NULL);
    CHECK(userauth_parse(w.buf, w.len, user_key, &ua) != 0);
    wire_writer_reset(&w);
    put_userauth(&w, sid, sizeof(sid), "alice", "publickey", "ssh-ed25519", user_key, NULL);
    CHECK_EQ(userauth_parse(w.buf, w.len, user_key, &ua), 0);
    CHECK(ua.hostkey == NULL);
    userauth_free(&ua);
    wire_writer_free(&w);
}

static void test_match(void)
{
    CHECK(match_glob("alice", "alice"));
    CHECK(match_glob("alice", "a*"));
    CHECK(match_glob("alice", "*"));
    CHECK(match_glob("alice", "al?ce"));
    CHECK(match_glob("", "*"));
    CHECK(match_glob("host.example.com", "*.example.com"));
    CHECK(!match_glob("alice", "bob"));
    CHECK(!match_glob("alice", "alic"));
    CHECK(!match_glob("alice", "alice?"));
    CHECK(!match_glob("example.com", "*.example.com"));
    /* A pattern built to make naive backtracking explode still answers at once. */
    CHECK(!match_glob("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
                      "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c"));
}

int main(void)
{
    CHECK_EQ(key_generate(KEY_ED25519, 0, &host1), 0);
    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &host2), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &host3), 0);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &user_key), 0);
    if (host1 && host2 && host3 && user_key) {
        test_decode();
        test_rules();
        test_userauth();
    }
    test_match();
    key_free(host1);
    key_free(host2);
    key_free(host3);
    key_free(user_key);
    return check_finish("test_destination");
}
