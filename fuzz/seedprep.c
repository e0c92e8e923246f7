/*
 * keyward fuzzing: turns the agent protocol corpus into seeds for each
 * harness.
 *
 *     seedprep CORPUS_DIR OUT_DIR
 *
 * CORPUS_DIR is ../shared/corpus/agent: wire streams (u32 length +
 * message, possibly several), except files named agent-NNNNN-NNNNN, which
 * are bare message bodies (see its README). OUT_DIR gets one directory per
 * harness:
 *
 *   dispatch/     every case as a wire stream (bare bodies get their length
 *                 prefix), named as in the corpus
 *   key/          public key and certificate blobs found in the cases (sign
 *                 and remove requests, session-bind host keys, certificates
 *                 being added), plus the .pub files of the fuzz key dirs
 *   privkey/      the key part of every add request (type name onwards),
 *                 plus the requests built from the fuzz key dirs
 *   sig/          session-bind signatures, plus signatures that the fuzz
 *                 keys make over fuzz_sig's fixed data (which verify)
 *   sessionbind/  session-bind bodies, one per seed, each as a string, and
 *                 all of one case's bodies together
 *   destination/  destination constraints from add requests (the body of
 *                 restrict-destination-v00@openssh.com)
 *   userauth/     the data of every sign request
 *   helper/       provider helper requests (docs/providers.md): a SIGN for
 *                 every fuzz key (RSA with each flag), and a few LOADs
 *
 * Messages are taken apart with the agent's wire reader, loosely: a field
 * that does not parse just yields no seed. Seeds other than dispatch/ are
 * named by their SHA-256, so duplicates collapse.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "keyfile.h"
#include "agent/request.h"
#include "support.h"
#include "base/wire.h"
#include "proto/helper_msg.h"

/* fuzz_sig.c signs and verifies this; the seeds made here must match it. */
#include "sig_data.h"

static const char *out_dir;
static unsigned long written;

static int make_dir(const char *sub)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", out_dir, sub);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "seedprep: mkdir %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "seedprep: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    written++;
}

/* Writes a seed named by its SHA-256 (so duplicates collapse). */
static void put_seed(const char *sub, const void *data, size_t len)
{
    unsigned char md[32];
    unsigned int mdlen = sizeof(md);
    char path[4096], hex[65];
    unsigned int i;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return;
    for (i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, sub, hex);
    write_file(path, data, len);
}

static void put_seed_view(const char *sub, struct wire_view v)
{
    if (v.ptr != NULL && v.len > 0)
        put_seed(sub, v.ptr, v.len);
}

static bool ends_with(struct wire_view v, const char *suffix)
{
    size_t n = strlen(suffix);

    return v.len >= n && memcmp(v.ptr + v.len - n, suffix, n) == 0;
}

/*
 * An add request's body: the key part is a privkey seed; a certificate in
 * it is a key seed; a destination restriction among its constraints is a
 * destination seed. The constraints follow the key, whose length depends
 * on its type, so the key is parsed for real to find where they start.
 */
static void from_add(struct wire_view body, bool constrained)
{
    struct wire_reader r;
    struct wire_view type, cert, name, dbody;
    struct key *k = NULL;

    put_seed_view("privkey", body);
    wire_reader_from_view(&r, body);
    type = wire_get_string(&r);
    if (!r.error && ends_with(type, "-cert-v01@openssh.com")) {
        cert = wire_get_string(&r);
        if (!r.error)
            put_seed_view("key", cert);
    }
    if (!constrained)
        return;
    wire_reader_from_view(&r, body);
    if (key_from_private(&r, &k) != 0)
        return;
    key_free(k);
    (void)wire_get_string(&r); /* comment */
    while (!r.error && wire_remaining(&r) > 0) {
        switch (wire_get_u8(&r)) {
        case SSH_AGENT_CONSTRAIN_LIFETIME:
            (void)wire_get_u32(&r);
            break;
        case SSH_AGENT_CONSTRAIN_CONFIRM:
            break;
        case SSH_AGENT_CONSTRAIN_EXTENSION:
            name = wire_get_string(&r);
            dbody = wire_get_string(&r);
            if (!r.error && wire_view_eq_str(name, DEST_EXTENSION))
                put_seed_view("destination", dbody);
            break;
        default:
            return;
        }
    }
}

/* session-bind body: host key, session id, signature, forwarding flag. */
static void from_session_bind(struct wire_view body, struct wire_writer *all)
{
    struct wire_reader r;
    struct wire_writer one;
    struct wire_view hostkey, sig;

    wire_writer_init(&one);
    wire_put_view(&one, body);
    put_seed("sessionbind", one.buf, one.len);
    wire_writer_free(&one);
    wire_put_view(all, body);

    wire_reader_from_view(&r, body);
    hostkey = wire_get_string(&r);
    (void)wire_get_string(&r); /* session id */
    sig = wire_get_string(&r);
    if (!r.error) {
        put_seed_view("key", hostkey);
        put_seed_view("sig", sig);
    }
}

static void from_message(struct wire_view msg, struct wire_writer *binds)
{
    struct wire_reader r;
    struct wire_view name;
    uint8_t type;

    wire_reader_from_view(&r, msg);
    type = wire_get_u8(&r);
    switch (type) {
    case SSH_AGENTC_SIGN_REQUEST:
        put_seed_view("key", wire_get_string(&r));
        put_seed_view("userauth", wire_get_string(&r));
        break;
    case SSH_AGENTC_REMOVE_IDENTITY:
        put_seed_view("key", wire_get_string(&r));
        break;
    case SSH_AGENTC_ADD_IDENTITY:
    case SSH_AGENTC_ADD_ID_CONSTRAINED:
        from_add(wire_get_rest(&r), type == SSH_AGENTC_ADD_ID_CONSTRAINED);
        break;
    case SSH_AGENTC_EXTENSION:
        name = wire_get_string(&r);
        if (!r.error && binds != NULL && wire_view_eq_str(name, EXT_SESSION_BIND))
            from_session_bind(wire_get_rest(&r), binds);
        break;
    }
}

static bool is_bare_body(const char *name)
{
    unsigned a, b;
    int n = 0;

    /* agent-NNNNN-NNNNN, and nothing after it */
    return sscanf(name, "agent-%u-%u%n", &a, &b, &n) == 2 && name[n] == '\0';
}

static void from_case(const char *dir, const char *name)
{
    char path[4096];
    uint8_t *data;
    size_t len, pos = 0;
    struct wire_writer stream, binds;
    struct wire_view body;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (file_read_all(path, &data, &len) != 0) {
        fprintf(stderr, "seedprep: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    wire_writer_init(&stream);
    wire_writer_init(&binds);
    if (is_bare_body(name)) {
        wire_put_string(&stream, data, len);
    } else {
        wire_put_bytes(&stream, data, len);
    }
    snprintf(path, sizeof(path), "%s/dispatch/%s", out_dir, name);
    write_file(path, stream.buf, stream.len);
    while (fuzz_next_frame(stream.buf, stream.len, &pos, &body))
        from_message(body, &binds);
    /* Several bindings in one case: the binding rules in one seed. */
    if (binds.len > 0)
        put_seed("sessionbind", binds.buf, binds.len);
    wire_writer_free(&binds);
    wire_writer_free(&stream);
    free(data);
}

/* One hop of a destination constraint: user, host, reserved, {key, is_ca}... */
static void put_hop(struct wire_writer *w, const char *user, const char *host,
                    const struct key *const *keys, const bool *is_ca, size_t n)
{
    size_t mark = wire_begin_string(w), i;

    wire_put_cstring(w, user);
    wire_put_cstring(w, host);
    wire_put_string(w, NULL, 0);
    for (i = 0; i < n; i++) {
        wire_put_string(w, keys[i]->plain_blob, keys[i]->plain_blob_len);
        wire_put_bool(w, is_ca[i]);
    }
    wire_end_string(w, mark);
}

/*
 * Destination constraints naming the fuzz keys, which fuzz_destination
 * binds to in the same order: without them no hop the fuzzer starts from
 * would ever match a binding. Key 0 is the origin's first hop; the host
 * certificate's CA (host_ca.pub) stands for any host it certified.
 */
static void destination_seeds(const struct agent *ag)
{
    const struct key *k[4], *ca = NULL;
    struct key *ca_key = NULL;
    static const bool plain[] = {false, false}, as_ca[] = {true};
    struct wire_writer w;
    char *dirs, *dir, *save = NULL, path[4096];
    uint8_t *blob;
    size_t len, i, mark;

    if (ag->keys.count < 4)
        return;
    for (i = 0; i < 4; i++)
        k[i] = ag->keys.ids[i]->key;
    if ((dirs = strdup(fuzz_key_dirs())) != NULL) {
        for (dir = strtok_r(dirs, ":", &save); dir != NULL && ca == NULL;
             dir = strtok_r(NULL, ":", &save)) {
            snprintf(path, sizeof(path), "%s/host_ca.pub", dir);
            if (pubfile_load(path, &blob, &len) == 0) {
                if (key_from_blob(blob, len, &ca_key) == 0)
                    ca = ca_key;
                free(blob);
            }
        }
        free(dirs);
    }

    /* From here to host 0; from host 0 on to host 1 as user "fuzz". */
    wire_writer_init(&w);
    mark = wire_begin_string(&w);
    put_hop(&w, "", "", NULL, NULL, 0);
    put_hop(&w, "", "host0.example.org", &k[0], plain, 1);
    wire_put_string(&w, NULL, 0);
    wire_end_string(&w, mark);
    put_seed("destination", w.buf, w.len);
    mark = wire_begin_string(&w);
    put_hop(&w, "", "host0.example.org", &k[0], plain, 1);
    put_hop(&w, "fuzz*", "host1.example.org", &k[1], plain, 1);
    wire_put_string(&w, NULL, 0);
    wire_end_string(&w, mark);
    put_seed("destination", w.buf, w.len);
    /* ... and from host 0 to hosts 2 and 3. */
    mark = wire_begin_string(&w);
    put_hop(&w, "", "host0.example.org", &k[0], plain, 1);
    put_hop(&w, "", "host2.example.org", &k[2], plain, 2);
    wire_put_string(&w, NULL, 0);
    wire_end_string(&w, mark);
    put_seed("destination", w.buf, w.len);
    if (ca != NULL) {
        /* Any host certified by the CA for *.fuzz.example.org, from here. */
        mark = wire_begin_string(&w);
        put_hop(&w, "", "", NULL, NULL, 0);
        put_hop(&w, "root", "fuzz.example.org", &ca, as_ca, 1);
        wire_put_string(&w, NULL, 0);
        wire_end_string(&w, mark);
        put_seed("destination", w.buf, w.len);
    }
    wire_writer_free(&w);
    key_free(ca_key);
}

/* Seeds from the fuzz key directories: key files, requests, good signatures. */
/* Provider helper LOADs: with a PIN, without one, and a module path only. */
static void helper_load_seeds(void)
{
    static const char *const pins[] = {"123456", ""};
    struct wire_writer w;
    size_t i;

    wire_writer_init(&w);
    for (i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
        wire_writer_reset(&w);
        helper_put_load(&w, "/opt/token/lib/pkcs11-module.so", pins[i], strlen(pins[i]));
        put_seed("helper", w.buf, w.len);
    }
    /* keyward-sk-helper's SK_SIGN, for each FIDO key type. */
    wire_writer_reset(&w);
    helper_put_sk_sign(&w, "/usr/lib/x86_64-linux-gnu/libsk-middleware.so", HELPER_SK_ALG_ED25519,
                       "ssh:", (const uint8_t *)"key handle", 10, 0x01, fuzz_sig_data,
                       sizeof(fuzz_sig_data));
    put_seed("helper", w.buf, w.len);
    wire_writer_reset(&w);
    helper_put_sk_sign(&w, "internal", HELPER_SK_ALG_ECDSA_P256, "ssh:work", (const uint8_t *)"h",
                       1, 0x05, fuzz_sig_data, sizeof(fuzz_sig_data));
    put_seed("helper", w.buf, w.len);
    wire_writer_free(&w);
}

/*
 * FIDO keys' add requests (PROTOCOL.u2f), made with key_generate(): the
 * corpus has none, and ssh-keygen needs an authenticator to make one. As
 * privkey seeds, and as a constrained add with sk-provider@openssh.com for
 * the dispatcher.
 */
static void sk_seeds(void)
{
    static const enum key_kind kinds[] = {KEY_SK_ED25519, KEY_SK_ECDSA_P256};
    struct wire_writer w, msg;
    struct key *k;
    size_t i;

    for (i = 0; i < 2; i++) {
        if (key_generate(kinds[i], 0, &k) != 0)
            continue;
        wire_writer_init(&w);
        if (key_private_serialize(k, &w) == 0) {
            wire_put_cstring(&w, "fido");
            put_seed("privkey", w.buf, w.len);
            put_seed("key", k->blob, k->blob_len);
            wire_writer_init(&msg);
            wire_put_u32(&msg, 0); /* the frame length, filled in below */
            wire_put_u8(&msg, SSH_AGENTC_ADD_ID_CONSTRAINED);
            wire_put_bytes(&msg, w.buf, w.len);
            wire_put_u8(&msg, SSH_AGENT_CONSTRAIN_EXTENSION);
            wire_put_cstring(&msg, "sk-provider@openssh.com");
            wire_put_cstring(&msg, "internal");
            if (msg.error == 0) {
                wire_poke_u32(msg.buf, (uint32_t)(msg.len - 4));
                put_seed("dispatch", msg.buf, msg.len);
            }
            wire_writer_free(&msg);
        }
        wire_writer_free(&w);
        key_free(k);
    }
}

static void from_key_dirs(void)
{
    struct wire_writer *msgs;
    struct agent ag;
    struct agent_conn c;
    struct agent_reply reply;
    size_t n, i;

    n = fuzz_add_requests(&msgs);
    agent_init(&ag, 0);
    agent_conn_init(&c, 0);
    agent_reply_init(&reply);
    for (i = 0; i < n; i++) {
        from_message(wire_writer_view(&msgs[i]), NULL);
        agent_handle(&ag, &c, 0, msgs[i].buf, msgs[i].len, &reply);
    }
    for (i = 0; i < ag.keys.count; i++) {
        const struct key *k = ag.keys.ids[i]->key;
        static const uint32_t flags[] = {0, KEY_SIGN_RSA_SHA2_256, KEY_SIGN_RSA_SHA2_512};
        size_t f;

        put_seed("key", k->blob, k->blob_len);
        for (f = 0; f < (k->kind == KEY_RSA ? 3u : 1u); f++) {
            struct wire_writer sig;

            wire_writer_init(&sig);
            if (key_sign(k, fuzz_sig_data, sizeof(fuzz_sig_data), flags[f], &sig) == 0)
                put_seed("sig", sig.buf, sig.len);
            wire_writer_reset(&sig);
            helper_put_sign(&sig, k->plain_blob, k->plain_blob_len, fuzz_sig_data,
                            sizeof(fuzz_sig_data), flags[f]);
            put_seed("helper", sig.buf, sig.len);
            wire_writer_free(&sig);
        }
    }
    destination_seeds(&ag);
    helper_load_seeds();
    sk_seeds();
    agent_reply_free(&reply);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    fuzz_free_add_requests(msgs, n);
}

int main(int argc, char **argv)
{
    static const char *const subs[] = {"dispatch",    "key",         "privkey",  "sig",
                                       "sessionbind", "destination", "userauth", "helper"};
    DIR *d;
    struct dirent *de;
    size_t i;

    if (argc != 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR OUT_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[2];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "seedprep: mkdir %s: %s\n", out_dir, strerror(errno));
        return 1;
    }
    for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (make_dir(subs[i]) != 0)
            return 1;
    fuzz_log_setup();
    from_key_dirs();
    if ((d = opendir(argv[1])) == NULL) {
        fprintf(stderr, "seedprep: %s: %s (only the key seeds were made)\n", argv[1],
                strerror(errno));
        printf("seedprep: %lu seeds in %s\n", written, out_dir);
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.' && strcmp(de->d_name, "README.md") != 0)
            from_case(argv[1], de->d_name);
    }
    closedir(d);
    printf("seedprep: %lu seeds in %s\n", written, out_dir);
    return 0;
}
