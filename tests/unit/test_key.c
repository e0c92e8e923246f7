/*
 * Unit tests: key and certificate parsing, private key import, signing and
 * verification, against libcrypto-generated keys and OpenSSH-made
 * certificates.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

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
    /* Only where libcrypto has ML-DSA (OpenSSL >= 3.5); skipped otherwise. */
    {KEY_MLDSA44_ED25519, 0, "ssh-mldsa44-ed25519@openssh.com"},
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

        if (!key_kind_supported(kinds[i].kind))
            continue;
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

/*
 * key_sign() keeps prepared contexts per key and digest and hands them
 * from signature to signature: every one of several signatures in a row,
 * with the digests interleaved for RSA, must verify. OpenSSL 3.2 and later
 * refuse to sign twice on a finalised Ed25519 context; this failed there
 * (the Windows build's OpenSSL 3.5) before key_sign() initialised it again.
 */
static void test_repeated_signatures(void)
{
    static const struct {
        enum key_kind kind;
        unsigned bits;
    } sign_kinds[] = {
        {KEY_ED25519, 0},    {KEY_ECDSA_P256, 0}, {KEY_ECDSA_P384, 0},
        {KEY_ECDSA_P521, 0}, {KEY_RSA, 2048},
    };
    static const uint32_t flags[] = {KEY_SIGN_RSA_SHA2_256, KEY_SIGN_RSA_SHA2_512, 0};
    struct wire_writer sig;
    struct key *k;
    size_t i;
    int n;

    for (i = 0; i < sizeof(sign_kinds) / sizeof(sign_kinds[0]); i++) {
        k = NULL;
        CHECK_EQ(key_generate(sign_kinds[i].kind, sign_kinds[i].bits, &k), 0);
        if (k == NULL)
            continue;
        for (n = 0; n < 9; n++) {
            wire_writer_init(&sig);
            CHECK_EQ(key_sign(k, message, sizeof(message), flags[n % 3], &sig), 0);
            CHECK_EQ(key_verify(k, sig.buf, sig.len, message, sizeof(message)), 0);
            wire_writer_free(&sig);
        }
        key_free(k);
    }
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
    /* The composite key's Ed25519 seed; OpenSSL 3.5 keeps ML-DSA's in the ordinary heap. */
    static const size_t least[] = {32, 32, 48, 66, 256 + 5 * 128, 32};
    size_t i, before, loaded;

    CHECK(key_openssl_frees_cleared());
    CHECK(key_secure_heap_init(1 << 20, 16) != 0);
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct key *gen = NULL, *imported = NULL;
        struct wire_writer ser, sig;
        struct wire_reader r;

        if (!key_kind_supported(kinds[i].kind))
            continue;
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

/*
 * ssh-mldsa44-ed25519@openssh.com, where libcrypto has ML-DSA: the encodings'
 * sizes, and each signature half checked here with libcrypto directly
 * against the composite rule (docs/protocol.md), not through key.c.
 * Built against an older OpenSSL: refused as unsupported, never as malformed.
 */
#define T_MLDSA_PK  1312
#define T_MLDSA_SIG 2420
#if OPENSSL_VERSION_NUMBER >= 0x30500000L
static void composite_message_for_test(const uint8_t *data, size_t len, uint8_t *out,
                                       size_t *outlen)
{
    static const char prefix[] = "CompositeAlgorithmSignatures2025";
    static const char label[] = "COMPSIG-MLDSA44-Ed25519-SHA512";
    unsigned int dlen = 64;
    size_t n = 0;

    memcpy(out, prefix, sizeof(prefix) - 1);
    n += sizeof(prefix) - 1;
    memcpy(out + n, label, sizeof(label) - 1);
    n += sizeof(label) - 1;
    out[n++] = 0;
    CHECK(EVP_Digest(data, len, out + n, &dlen, EVP_sha512(), NULL) == 1);
    *outlen = n + dlen;
}
#endif

static void test_mldsa44_ed25519(void)
{
    /* name, string pk(1312 + 32), string sk(32 + 32), built by hand. */
    uint8_t seeds[64], fake_pk[T_MLDSA_PK + 32] = {0};
    struct key *k = NULL;
    struct wire_writer w;
    struct wire_reader r;

    memset(seeds, 0x5a, sizeof(seeds));
    wire_writer_init(&w);
    wire_put_cstring(&w, "ssh-mldsa44-ed25519@openssh.com");
    wire_put_string(&w, fake_pk, sizeof(fake_pk));
    wire_put_string(&w, seeds, sizeof(seeds));
    wire_reader_init(&r, w.buf, w.len);
    if (!key_kind_supported(KEY_MLDSA44_ED25519)) {
        CHECK_EQ(key_from_private(&r, &k), KW_ERR_NO_SUPPORT);
        CHECK(k == NULL);
        CHECK_EQ(key_generate(KEY_MLDSA44_ED25519, 0, &k), KW_ERR_NO_SUPPORT);
        CHECK(strstr(key_unsupported_why(), "OpenSSL >= 3.5") != NULL);
        wire_writer_free(&w);
        return;
    }
#if OPENSSL_VERSION_NUMBER >= 0x30500000L
    struct key *gen = NULL, *again = NULL;
    struct wire_writer ser, sig;

    /* A pk that is not the seeds' public key is refused. */
    CHECK_EQ(key_from_private(&r, &k), KW_ERR_BAD_KEY);
    CHECK(k == NULL);
    wire_writer_free(&w);

    wire_writer_init(&ser);
    wire_writer_init(&sig);
    CHECK_EQ(key_generate(KEY_MLDSA44_ED25519, 0, &gen), 0);
    if (gen == NULL)
        goto out;
    CHECK_STR(key_short_name(gen), "MLDSA44-ED25519");
    /* string name(4+31), string pk(4+1344) */
    CHECK_EQ(gen->blob_len, 4 + 31 + 4 + T_MLDSA_PK + 32);
    CHECK_EQ(key_private_serialize(gen, &ser), 0);
    CHECK_EQ(ser.len, 4 + 31 + 4 + T_MLDSA_PK + 32 + 4 + 64);

    /* The same seeds give the same key: the ML-DSA half is derived from its seed. */
    wire_reader_init(&r, ser.buf, ser.len);
    CHECK_EQ(key_from_private(&r, &k), 0);
    wire_reader_init(&r, ser.buf, ser.len);
    CHECK_EQ(key_from_private(&r, &again), 0);
    if (k == NULL || again == NULL)
        goto out;
    CHECK(key_equal(k, gen) && key_equal(again, gen));

    /* A wrong Ed25519 seed, then a wrong ML-DSA seed: each half is checked. */
    ser.buf[ser.len - 1] ^= 1;
    wire_reader_init(&r, ser.buf, ser.len);
    {
        struct key *bad = NULL;
        CHECK_EQ(key_from_private(&r, &bad), KW_ERR_BAD_KEY);
        ser.buf[ser.len - 1] ^= 1;
        ser.buf[ser.len - 64] ^= 1;
        wire_reader_init(&r, ser.buf, ser.len);
        CHECK_EQ(key_from_private(&r, &bad), KW_ERR_BAD_KEY);
        ser.buf[ser.len - 64] ^= 1;
        CHECK(bad == NULL);
    }

    CHECK_EQ(key_sign(k, message, sizeof(message), 0, &sig), 0);
    /* string name(4+31), string (ML-DSA-44 sig || Ed25519 sig) */
    CHECK_EQ(sig.len, 4 + 31 + 4 + T_MLDSA_SIG + 64);
    CHECK_EQ(key_verify(gen, sig.buf, sig.len, message, sizeof(message)), 0);
    {
        /* Each half, with libcrypto directly. */
        const uint8_t *halves = sig.buf + 4 + 31 + 4;
        const uint8_t *pk = gen->blob + 4 + 31 + 4;
        uint8_t msg[32 + 30 + 1 + 64];
        size_t msglen = 0;
        EVP_PKEY *ml = EVP_PKEY_new_raw_public_key_ex(NULL, "ML-DSA-44", NULL, pk, T_MLDSA_PK);
        EVP_PKEY *ed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk + T_MLDSA_PK, 32);
        EVP_PKEY_CTX *ctx = ml ? EVP_PKEY_CTX_new_from_pkey(NULL, ml, NULL) : NULL;
        EVP_SIGNATURE *alg = EVP_SIGNATURE_fetch(NULL, "ML-DSA-44", NULL);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        OSSL_PARAM params[2] = {OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_CONTEXT_STRING,
                                                        (void *)"COMPSIG-MLDSA44-Ed25519-SHA512",
                                                        30),
                                OSSL_PARAM_END};

        composite_message_for_test(message, sizeof(message), msg, &msglen);
        CHECK_EQ(msglen, sizeof(msg));
        CHECK(ml != NULL && ed != NULL && ctx != NULL && alg != NULL && md != NULL);
        CHECK(EVP_PKEY_verify_message_init(ctx, alg, params) == 1);
        CHECK(EVP_PKEY_verify(ctx, halves, T_MLDSA_SIG, msg, msglen) == 1);
        /* The label really is ML-DSA's context: without it, no match. */
        CHECK(EVP_PKEY_verify_message_init(ctx, alg, NULL) == 1);
        CHECK(EVP_PKEY_verify(ctx, halves, T_MLDSA_SIG, msg, msglen) != 1);
        ERR_clear_error();
        CHECK(EVP_DigestVerifyInit_ex(md, NULL, NULL, NULL, NULL, ed, NULL) == 1);
        CHECK(EVP_DigestVerify(md, halves + T_MLDSA_SIG, 64, msg, msglen) == 1);
        EVP_MD_CTX_free(md);
        EVP_SIGNATURE_free(alg);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(ml);
        EVP_PKEY_free(ed);
    }
    /* Damage to either half alone fails the whole. */
    sig.buf[4 + 31 + 4 + 100] ^= 1;
    CHECK_EQ(key_verify(gen, sig.buf, sig.len, message, sizeof(message)), KW_ERR_BAD_SIG);
    sig.buf[4 + 31 + 4 + 100] ^= 1;
    sig.buf[sig.len - 10] ^= 1;
    CHECK_EQ(key_verify(gen, sig.buf, sig.len, message, sizeof(message)), KW_ERR_BAD_SIG);
    sig.buf[sig.len - 10] ^= 1;
    CHECK_EQ(key_verify(gen, sig.buf, sig.len, message, sizeof(message)), 0);
    /* The composite type is a CA signature algorithm OpenSSH accepts. */
    CHECK(key_ca_sig_alg_allowed("ssh-mldsa44-ed25519@openssh.com"));
out:
    key_free(again);
    key_free(k);
    key_free(gen);
    wire_writer_free(&ser);
    wire_writer_free(&sig);
#endif
}

/*
 * FIDO keys (PROTOCOL.u2f): the ADD_IDENTITY form round trips, the public
 * blob carries the application, damaged forms are refused, key_sign()
 * refuses (the authenticator signs) and key_verify() checks the flags and
 * counter that are part of the signed message.
 */
static void test_fido_keys(void)
{
    static const enum key_kind sk_kinds[] = {KEY_SK_ED25519, KEY_SK_ECDSA_P256};
    static const uint8_t sk_message[] = "signed by an authenticator";
    struct wire_writer ser, bad, sig;
    struct wire_reader r;
    struct key *k = NULL, *again = NULL, *pub = NULL;
    uint8_t msg[KEY_SK_SIGNED_LEN];
    size_t i, cut;

    for (i = 0; i < 2; i++) {
        wire_writer_init(&ser);
        wire_writer_init(&bad);
        wire_writer_init(&sig);
        CHECK_EQ(key_generate(sk_kinds[i], 0, &k), 0);
        if (k == NULL)
            goto next;
        CHECK(key_is_sk(k));
        CHECK_STR(k->sk_application, "ssh:");
        CHECK_EQ(key_private_serialize(k, &ser), 0);
        wire_reader_init(&r, ser.buf, ser.len);
        CHECK_EQ(key_from_private(&r, &again), 0);
        CHECK_EQ(wire_reader_finish(&r), 0);
        CHECK(again != NULL && key_equal(k, again));
        CHECK(again != NULL && again->sk_key_handle_len == 32 &&
              memcmp(again->sk_key_handle, k->sk_key_handle, 32) == 0);
        CHECK(again != NULL && again->sk_flags == KEY_SK_USER_PRESENCE_REQD);
        /* The public blob ends with the application, and parses back. */
        CHECK(k->blob_len > 8 && memcmp(k->blob + k->blob_len - 4, "ssh:", 4) == 0);
        CHECK_EQ(key_from_blob(k->blob, k->blob_len, &pub), 0);
        CHECK(pub != NULL && strcmp(pub->sk_application, "ssh:") == 0);
        /* Every truncation of the private form is refused. */
        for (cut = 1; cut < ser.len; cut += 7) {
            struct key *t = NULL;

            wire_reader_init(&r, ser.buf, ser.len - cut);
            CHECK(key_from_private(&r, &t) != 0 || wire_reader_finish(&r) != 0);
            key_free(t);
        }
        /* An empty key handle is refused: reserved then follows the flags. */
        wire_reader_init(&r, k->blob, k->blob_len);
        wire_put_bytes(&bad, k->blob, k->blob_len);
        wire_put_u8(&bad, 1);
        wire_put_u32(&bad, 0);
        wire_put_u32(&bad, 0);
        {
            struct key *t = NULL;

            wire_reader_init(&r, bad.buf, bad.len);
            CHECK(key_from_private(&r, &t) != 0);
            key_free(t);
        }
        /* The authenticator signs, not key_sign(). */
        CHECK_EQ(key_sign(k, sk_message, sizeof(sk_message), 0, &sig), KW_ERR_KEY_TYPE);
        /* key_sk_signed_message(): SHA-256(app) || flags || counter || SHA-256(data). */
        CHECK_EQ(
            key_sk_signed_message("ssh:", 0x05, 0x01020304, sk_message, sizeof(sk_message), msg),
            0);
        CHECK_EQ(msg[32], 0x05);
        CHECK(msg[33] == 1 && msg[34] == 2 && msg[35] == 3 && msg[36] == 4);
        /* A signature blob of the wrong shape does not verify. */
        wire_put_cstring(&sig, key_type_name(k));
        wire_put_string(&sig, msg, 64);
        CHECK(key_verify(k, sig.buf, sig.len, sk_message, sizeof(sk_message)) != 0);
        wire_put_u8(&sig, 1);
        wire_put_u32(&sig, 1);
        CHECK(key_verify(k, sig.buf, sig.len, sk_message, sizeof(sk_message)) != 0);
    next:
        key_free(k);
        key_free(again);
        key_free(pub);
        k = again = pub = NULL;
        wire_writer_free(&ser);
        wire_writer_free(&bad);
        wire_writer_free(&sig);
    }
    CHECK(key_ca_sig_alg_allowed("sk-ssh-ed25519@openssh.com"));
}

int main(void)
{
    test_private_roundtrip_and_sign();
    test_rsa_flags();
    test_repeated_signatures();
    test_bad_private_keys();
    test_rsa_size_limits();
    test_public_blob_damage();
    test_certificates();
    test_secure_heap();
    test_mldsa44_ed25519();
    test_fido_keys();
    return check_finish("test_key");
}
