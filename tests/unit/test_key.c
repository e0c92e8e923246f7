/*
 * Unit tests: key and certificate parsing, private key import, signing and
 * verification, against libcrypto-generated keys and OpenSSH-made
 * certificates.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/err.h"
#include "base/wire.h"
#include "check.h"
#include "crypto/key.h"
#include "testutil.h"

static const struct {
    enum key_kind kind;
    unsigned bits;
    const char *name;
} kinds[] = {
    {KEY_ED25519, 0, "ssh-ed25519"},
    {KEY_ECDSA_P256, 0, "ecdsa-sha2-nistp256"},
    {KEY_ECDSA_P384, 0, "ecdsa-sha2-nistp384"},
    {KEY_ECDSA_P521, 0, "ecdsa-sha2-nistp521"},
    {KEY_RSA, 2048, "ssh-rsa"},
};

static const uint8_t message[] = "the data a client asks the agent to sign";

static void test_private_roundtrip_and_sign(void)
{
    size_t i, cut;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct key *gen = NULL, *imported = NULL, *pub = NULL;
        struct wire_writer ser, sig;
        struct wire_reader r;
        char fp1[KEY_FINGERPRINT_SIZE], fp2[KEY_FINGERPRINT_SIZE];

        wire_writer_init(&ser);
        wire_writer_init(&sig);
        CHECK_EQ(key_generate(kinds[i].kind, kinds[i].bits, &gen), 0);
        if (gen == NULL)
            continue;
        CHECK_STR(key_type_name(gen), kinds[i].name);
        CHECK_EQ(key_private_serialize(gen, &ser), 0);

        wire_reader_init(&r, ser.buf, ser.len);
        CHECK_EQ(key_from_private(&r, &imported), 0);
        CHECK_EQ(wire_reader_finish(&r), 0);
        if (imported == NULL)
            goto next;
        CHECK(key_equal(gen, imported));
        key_fingerprint(gen, fp1, sizeof(fp1));
        key_fingerprint(imported, fp2, sizeof(fp2));
        CHECK_STR(fp1, fp2);
        CHECK(strncmp(fp1, "SHA256:", 7) == 0 && strlen(fp1) == 7 + 43);

        /* Sign with the imported key, verify with the public blob alone. */
        CHECK_EQ(key_sign(imported, message, sizeof(message), 0, &sig), 0);
        CHECK_EQ(key_from_blob(gen->blob, gen->blob_len, &pub), 0);
        if (pub != NULL) {
            CHECK(!pub->has_private);
            CHECK_EQ(key_verify(pub, sig.buf, sig.len, message, sizeof(message)), 0);
            /* A different message must not verify: the check can fail. */
            CHECK_EQ(key_verify(pub, sig.buf, sig.len, message, sizeof(message) - 1),
                     KW_ERR_BAD_SIG);
            /* A corrupted signature must not verify either. */
            sig.buf[sig.len - 3] ^= 0x40;
            CHECK(key_verify(pub, sig.buf, sig.len, message, sizeof(message)) != 0);
        }

        /* Every truncation of the private encoding is refused cleanly. */
        for (cut = 0; cut < ser.len; cut++) {
            struct key *k = NULL;

            wire_reader_init(&r, ser.buf, cut);
            CHECK(key_from_private(&r, &k) != 0 && k == NULL);
        }
    next:
        key_free(pub);
        key_free(imported);
        key_free(gen);
        wire_writer_free(&ser);
        wire_writer_free(&sig);
    }
}

static void test_rsa_flags(void)
{
    struct key *k = NULL;
    struct wire_writer sig;
    char alg[64];
    static const struct {
        uint32_t flags;
        const char *alg;
    } cases[] = {
        {0, "ssh-rsa"},
        {KEY_SIGN_RSA_SHA2_256, "rsa-sha2-256"},
        {KEY_SIGN_RSA_SHA2_512, "rsa-sha2-512"},
        {KEY_SIGN_RSA_SHA2_256 | KEY_SIGN_RSA_SHA2_512, "rsa-sha2-256"},
    };
    size_t i;

    CHECK_EQ(key_generate(KEY_RSA, 2048, &k), 0);
    if (k == NULL)
        return;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wire_writer_init(&sig);
        CHECK_EQ(key_sign(k, message, sizeof(message), cases[i].flags, &sig), 0);
        CHECK_EQ(key_signature_algorithm(sig.buf, sig.len, alg, sizeof(alg)), 0);
        CHECK_STR(alg, cases[i].alg);
        CHECK_EQ(key_verify(k, sig.buf, sig.len, message, sizeof(message)), 0);
        wire_writer_free(&sig);
    }
    key_free(k);
}

static void test_bad_private_keys(void)
{
    struct key *gen = NULL, *k = NULL;
    struct wire_writer ser;
    struct wire_reader r;

    /* Ed25519 whose sk tail disagrees with pk. */
    wire_writer_init(&ser);
    CHECK_EQ(key_generate(KEY_ED25519, 0, &gen), 0);
    CHECK_EQ(key_private_serialize(gen, &ser), 0);
    /* layout: string name(4+11), string pk(4+32), string sk(4+64) */
    ser.buf[ser.len - 1] ^= 1;
    wire_reader_init(&r, ser.buf, ser.len);
    CHECK_EQ(key_from_private(&r, &k), KW_ERR_BAD_KEY);
    CHECK(k == NULL);
    /* Ed25519 whose pk is not the seed's public key. */
    ser.buf[ser.len - 1] ^= 1;
    ser.buf[4 + 11 + 4] ^= 1;
    ser.buf[ser.len - 32] ^= 1;
    wire_reader_init(&r, ser.buf, ser.len);
    CHECK_EQ(key_from_private(&r, &k), KW_ERR_BAD_KEY);
    key_free(gen);
    wire_writer_free(&ser);

    /* ECDSA whose d does not match Q. */
    gen = NULL;
    wire_writer_init(&ser);
    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &gen), 0);
    CHECK_EQ(key_private_serialize(gen, &ser), 0);
    ser.buf[ser.len - 2] ^= 0x10;
    wire_reader_init(&r, ser.buf, ser.len);
    CHECK(key_from_private(&r, &k) != 0 && k == NULL);
    key_free(gen);
    wire_writer_free(&ser);

    /* RSA whose d is not the inverse of e: refused rather than signing garbage. */
    gen = NULL;
    wire_writer_init(&ser);
    CHECK_EQ(key_generate(KEY_RSA, 1024, &gen), 0);
    CHECK_EQ(key_private_serialize(gen, &ser), 0);
    {
        struct wire_writer bad;
        struct wire_view f[6];
        uint8_t dcopy[600];
        int i;

        wire_reader_init(&r, ser.buf, ser.len);
        (void)wire_get_string(&r);
        for (i = 0; i < 6; i++) /* n, e, d, iqmp, p, q */
            f[i] = wire_get_mpint_unsigned(&r);
        CHECK_EQ(wire_reader_finish(&r), 0);
        CHECK(f[2].len <= sizeof(dcopy));
        memcpy(dcopy, f[2].ptr, f[2].len);
        dcopy[f[2].len - 1] ^= 0x02; /* still odd, still < n, no longer e^-1 */
        wire_writer_init(&bad);
        wire_put_cstring(&bad, "ssh-rsa");
        for (i = 0; i < 6; i++) {
            if (i == 2)
                wire_put_mpint_unsigned(&bad, dcopy, f[2].len);
            else
                wire_put_mpint_unsigned(&bad, f[i].ptr, f[i].len);
        }
        wire_reader_init(&r, bad.buf, bad.len);
        CHECK_EQ(key_from_private(&r, &k), KW_ERR_BAD_KEY);
        CHECK(k == NULL);
        /* The untouched encoding still imports: the check is not over-eager. */
        wire_reader_init(&r, ser.buf, ser.len);
        CHECK_EQ(key_from_private(&r, &k), 0);
        key_free(k);
        k = NULL;
        wire_writer_free(&bad);
    }
    key_free(gen);
    wire_writer_free(&ser);

    /* Unknown key type. */
    wire_writer_init(&ser);
    wire_put_cstring(&ser, "ssh-dss");
    wire_put_cstring(&ser, "whatever");
    wire_reader_init(&r, ser.buf, ser.len);
    CHECK_EQ(key_from_private(&r, &k), KW_ERR_KEY_TYPE);
    wire_writer_free(&ser);
}

static void test_rsa_size_limits(void)
{
    struct wire_writer w;
    struct key *k = NULL;
    uint8_t n[64], e[3] = {1, 0, 1};

    memset(n, 0xab, sizeof(n)); /* a 512-bit modulus: below OpenSSH's minimum */
    n[sizeof(n) - 1] |= 1;
    wire_writer_init(&w);
    wire_put_cstring(&w, "ssh-rsa");
    wire_put_mpint_unsigned(&w, e, sizeof(e));
    wire_put_mpint_unsigned(&w, n, sizeof(n));
    CHECK_EQ(key_from_blob(w.buf, w.len, &k), KW_ERR_KEY_SIZE);
    CHECK(k == NULL);
    wire_writer_free(&w);
}

static void test_public_blob_damage(void)
{
    struct key *gen = NULL, *k = NULL;
    uint8_t *copy;

    CHECK_EQ(key_generate(KEY_ECDSA_P256, 0, &gen), 0);
    if (gen == NULL)
        return;
    copy = malloc(gen->blob_len + 1);
    memcpy(copy, gen->blob, gen->blob_len);
    /* A point off the curve. */
    copy[gen->blob_len - 5] ^= 0x01;
    CHECK(key_from_blob(copy, gen->blob_len, &k) != 0 && k == NULL);
    /* Trailing byte. */
    memcpy(copy, gen->blob, gen->blob_len);
    copy[gen->blob_len] = 0;
    CHECK_EQ(key_from_blob(copy, gen->blob_len + 1, &k), KW_ERR_TRAILING);
    free(copy);
    key_free(gen);
}

static void test_certificates(void)
{
    static const char *const names[][3] = {
        {"id_ed25519-cert.pub", "id_ed25519.pub", "ssh-ed25519-cert-v01@openssh.com"},
        {"id_ecdsa-cert.pub", "id_ecdsa.pub", "ecdsa-sha2-nistp256-cert-v01@openssh.com"},
        {"id_rsa-cert.pub", "id_rsa.pub", "ssh-rsa-cert-v01@openssh.com"},
    };
    static uint8_t cert[8192], plain[4096];
    size_t i, certlen, plainlen;

    for (i = 0; i < 3; i++) {
        struct key *c = NULL, *p = NULL;
        char fpc[KEY_FINGERPRINT_SIZE], fpp[KEY_FINGERPRINT_SIZE];

        certlen = read_pub_blob(names[i][0], cert, sizeof(cert));
        plainlen = read_pub_blob(names[i][1], plain, sizeof(plain));
        CHECK(certlen > 0 && plainlen > 0);
        if (certlen == 0 || plainlen == 0)
            continue;
        CHECK_EQ(key_from_blob(cert, certlen, &c), 0);
        CHECK_EQ(key_from_blob(plain, plainlen, &p), 0);
        if (c == NULL || p == NULL) {
            key_free(c);
            key_free(p);
            continue;
        }
        CHECK(c->is_cert);
        CHECK_STR(key_type_name(c), names[i][2]);
        /* A certificate's fingerprint is its key's, as ssh-add -l shows. */
        key_fingerprint(c, fpc, sizeof(fpc));
        key_fingerprint(p, fpp, sizeof(fpp));
        CHECK_STR(fpc, fpp);
        CHECK(c->plain_blob_len == plainlen && memcmp(c->plain_blob, plain, plainlen) == 0);
        key_free(c);
        key_free(p);

        /* Tampering anywhere in the signed part breaks the CA signature. */
        c = NULL;
        cert[certlen / 2] ^= 0x01;
        CHECK(key_from_blob(cert, certlen, &c) != 0 && c == NULL);
        cert[certlen / 2] ^= 0x01;
        /* Truncation is refused. */
        CHECK(key_from_blob(cert, certlen - 1, &c) != 0 && c == NULL);
    }
}

/*
 * Imported private keys live in OpenSSL's secure heap, each type by its own
 * route (src/crypto/key.c): RSA d and the CRT values through the DER decoder, the
 * ECDSA scalar from a secure BIGNUM, the Ed25519 seed by duplicating the
 * key. Freeing the key returns the heap to where it was. And every block
 * libcrypto frees is cleared (hostile_freed_secrets shows why).
 */
static void test_secure_heap(void)
{
    /* Secret bytes each type must add at least: seed, scalar, d+p+q+CRT. */
    static const size_t least[] = {32, 32, 48, 66, 256 + 5 * 128};
    size_t i, before, loaded;

    CHECK(key_openssl_frees_cleared());
    CHECK(CRYPTO_secure_malloc_init(1 << 20, 16) != 0);
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct key *gen = NULL, *imported = NULL;
        struct wire_writer ser, sig;
        struct wire_reader r;

        wire_writer_init(&ser);
        wire_writer_init(&sig);
        CHECK_EQ(key_generate(kinds[i].kind, kinds[i].bits, &gen), 0);
        if (gen == NULL || key_private_serialize(gen, &ser) != 0)
            goto next;
        before = CRYPTO_secure_used();
        wire_reader_init(&r, ser.buf, ser.len);
        CHECK_EQ(key_from_private(&r, &imported), 0);
        if (imported == NULL)
            goto next;
        loaded = CRYPTO_secure_used();
        CHECK(loaded >= before + least[i]);
        if (loaded < before + least[i])
            fprintf(stderr, "%s: secure heap grew by %zu bytes, want %zu\n", kinds[i].name,
                    loaded - before, least[i]);
        CHECK_EQ(key_sign(imported, message, sizeof(message), KEY_SIGN_RSA_SHA2_256, &sig), 0);
        key_free(imported);
        CHECK_EQ(CRYPTO_secure_used(), before);
    next:
        key_free(gen);
        wire_writer_free(&ser);
        wire_writer_free(&sig);
    }
    CHECK_EQ(CRYPTO_secure_malloc_done(), 1);
}

int main(void)
{
    test_private_roundtrip_and_sign();
    test_rsa_flags();
    test_bad_private_keys();
    test_rsa_size_limits();
    test_public_blob_damage();
    test_certificates();
    test_secure_heap();
    return check_finish("test_key");
}
