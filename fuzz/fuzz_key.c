/*
 * keyward fuzzing: the public key and certificate blob parser,
 * key_from_blob(), which every request naming a key goes through (sign,
 * remove, session-bind host keys, destination hops, certificates being
 * added, and recursively the CA key inside a certificate).
 *
 * Input: one blob. Beyond the sanitizers it checks that what parses is
 * consistent:
 *   - the identity blob is the input, byte for byte (identities are
 *     matched by blob, so a parser that normalised would merge or split
 *     identities);
 *   - a plain key has exactly one encoding: its public half re-encoded
 *     from the parsed EVP_PKEY gives the input back (see canonical_blob);
 *   - a certificate's embedded key parses on its own, to the same key;
 *   - names and fingerprints can be produced for anything that parses.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "crypto/key.h"
#include "support.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_setup();
    return 0;
}

static void put_bn(struct wire_writer *w, const EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    uint8_t buf[2100]; /* a 16384-bit modulus is 2048 bytes */
    int len;

    FUZZ_ASSERT(EVP_PKEY_get_bn_param(pkey, name, &bn) == 1);
    len = BN_num_bytes(bn);
    FUZZ_ASSERT(len >= 0 && (size_t)len <= sizeof(buf));
    BN_bn2bin(bn, buf);
    wire_put_mpint_unsigned(w, buf, (size_t)len);
    BN_free(bn);
}

/*
 * The SSH encoding of a plain public key, rebuilt from the EVP_PKEY alone,
 * independently of key.c's own encoder.
 */
static void canonical_blob(const struct key *k, struct wire_writer *w)
{
    uint8_t buf[256];
    size_t len = sizeof(buf);
    char group[64];

    wire_put_cstring(w, key_type_name(k));
    switch (k->kind) {
    case KEY_ED25519:
    case KEY_SK_ED25519:
        FUZZ_ASSERT(EVP_PKEY_get_raw_public_key(k->pkey, buf, &len) == 1);
        wire_put_string(w, buf, len);
        break;
    case KEY_SK_ECDSA_P256:
    case KEY_ECDSA_P256:
    case KEY_ECDSA_P384:
    case KEY_ECDSA_P521:
        FUZZ_ASSERT(EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                   sizeof(group), NULL) == 1);
        wire_put_cstring(w, strcmp(group, "prime256v1") == 0  ? "nistp256"
                            : strcmp(group, "secp384r1") == 0 ? "nistp384"
                                                              : "nistp521");
        FUZZ_ASSERT(EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                    buf, sizeof(buf), &len) == 1);
        wire_put_string(w, buf, len);
        break;
    case KEY_RSA:
        put_bn(w, k->pkey, OSSL_PKEY_PARAM_RSA_E);
        put_bn(w, k->pkey, OSSL_PKEY_PARAM_RSA_N);
        break;
    case KEY_MLDSA44_ED25519: {
        /* One string: the ML-DSA-44 public key, then the Ed25519 one. */
        uint8_t pk[1312 + 32];
        size_t mlen = 1312, elen = 32;

        FUZZ_ASSERT(k->pkey_ed != NULL);
        FUZZ_ASSERT(EVP_PKEY_get_raw_public_key(k->pkey, pk, &mlen) == 1 && mlen == 1312);
        FUZZ_ASSERT(EVP_PKEY_get_raw_public_key(k->pkey_ed, pk + 1312, &elen) == 1 && elen == 32);
        wire_put_string(w, pk, sizeof(pk));
        break;
    }
    }
    /* A FIDO key's application follows its key (PROTOCOL.u2f). */
    if (k->kind == KEY_SK_ED25519 || k->kind == KEY_SK_ECDSA_P256) {
        FUZZ_ASSERT(k->sk_application != NULL);
        wire_put_cstring(w, k->sk_application);
    }
    FUZZ_ASSERT(w->error == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct key *k = NULL, *inner = NULL;
    struct wire_writer w;
    char fp[KEY_FINGERPRINT_SIZE];

    if (key_from_blob(data, size, &k) != 0) {
        FUZZ_ASSERT(k == NULL);
        return 0;
    }
    FUZZ_ASSERT(k != NULL && k->pkey != NULL && !k->has_private);
    FUZZ_ASSERT(k->blob_len == size && memcmp(k->blob, data, size) == 0);
    key_fingerprint(k, fp, sizeof(fp));
    FUZZ_ASSERT(strncmp(fp, "SHA256:", 7) == 0);
    (void)key_short_name(k);

    wire_writer_init(&w);
    if (!k->is_cert) {
        FUZZ_ASSERT(k->plain_blob == k->blob && k->cert == NULL);
        canonical_blob(k, &w);
        FUZZ_ASSERT(w.len == size && memcmp(w.buf, data, size) == 0);
    } else {
        FUZZ_ASSERT(k->cert != NULL && k->cert->ca != NULL && !k->cert->ca->is_cert);
        FUZZ_ASSERT(key_from_blob(k->plain_blob, k->plain_blob_len, &inner) == 0);
        FUZZ_ASSERT(!inner->is_cert && inner->kind == k->kind && key_equal_public(k, inner));
        canonical_blob(inner, &w);
        FUZZ_ASSERT(w.len == k->plain_blob_len && memcmp(w.buf, k->plain_blob, w.len) == 0);
        /* Host certificate matching reads the principals: run it too. */
        (void)key_cert_valid_for_host(k, "fuzz.example.org", 1700000000);
        key_free(inner);
    }
    wire_writer_free(&w);
    key_free(k);
    return 0;
}
