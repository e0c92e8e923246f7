/*
 * keyward: SSH keys and certificates <-> OpenSSL EVP_PKEY. See key.h.
 *
 * Encodings (RFC 4253 6.6, RFC 5656 3.1, RFC 8709, RFC 8332, RFC 9987 and
 * OpenSSH's PROTOCOL.certkeys):
 *   ssh-ed25519          string pk(32)
 *   ecdsa-sha2-nistpN    string curve, string Q
 *   ssh-rsa              mpint e, mpint n
 *   *-cert-v01@...       string nonce, <the fields above>, uint64 serial,
 *                        uint32 type, string key id, string principals,
 *                        uint64 valid after, uint64 valid before,
 *                        string critical options, string extensions,
 *                        string reserved, string CA key, string signature
 * Private keys in ADD_IDENTITY:
 *   ssh-ed25519          string pk, string sk(seed||pk)
 *   ecdsa-sha2-nistpN    string curve, string Q, mpint d
 *   ssh-rsa              mpint n, mpint e, mpint d, mpint iqmp, mpint p, mpint q
 *   ed25519 cert         string cert, string pk, string sk
 *   ecdsa cert           string cert, mpint d
 *   rsa cert             string cert, mpint d, mpint iqmp, mpint p, mpint q
 *
 * FIDO keys (PROTOCOL.u2f; their certificates as for the plain kinds):
 *   sk-ssh-ed25519@openssh.com          string pk(32), string application
 *   sk-ecdsa-sha2-nistp256@openssh.com  string curve, string Q, string application
 *   private, after the public fields    string application, uint8 flags,
 *                                       string key handle, string reserved
 *   (the certificate forms: string cert, then for Ed25519 string pk again,
 *   then the four fields above)
 *   signature            string algorithm, string sig (Ed25519: 64 bytes;
 *                        ECDSA: mpint r, mpint s), uint8 flags, uint32 counter,
 *                        over key_sk_signed_message()
 *
 * ssh-mldsa44-ed25519@openssh.com (draft-miller-sshm-mldsa44-ed25519-
 * composite-sigs; its certificate form as for Ed25519):
 *   public               string (ML-DSA-44 pk(1312) || Ed25519 pk(32))
 *   private              string pk as above, string (ML-DSA-44 seed(32) ||
 *                        Ed25519 seed(32))
 *   signature            string (ML-DSA-44 sig(2420) || Ed25519 sig(64)),
 *                        both halves over the same composite message M'
 *                        (composite_message())
 */
#include "crypto/key.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/match.h"
#include "base/memzero.h"

#define ED25519_PK_LEN  32
#define ED25519_SK_LEN  64
#define ED25519_SIG_LEN 64
/* Longest uncompressed point we accept: P-521 is 1 + 2 * 66 bytes. */
#define EC_POINT_MAX_LEN 133

/*
 * ML-DSA (FIPS 204) arrived in OpenSSL 3.5; built against an older
 * libcrypto, the composite key type is known by name and refused.
 */
#if OPENSSL_VERSION_NUMBER >= 0x30500000L
#define KEY_HAVE_MLDSA 1
#endif
#define MLDSA44_PK_LEN    1312
#define MLDSA44_SIG_LEN   2420
#define MLDSA_SEED_LEN    32
#define COMPOSITE_PK_LEN  (MLDSA44_PK_LEN + ED25519_PK_LEN)
#define COMPOSITE_SK_LEN  (MLDSA_SEED_LEN + 32)
#define COMPOSITE_SIG_LEN (MLDSA44_SIG_LEN + ED25519_SIG_LEN)
#define COMPOSITE_NAME    "ssh-mldsa44-ed25519@openssh.com"

struct kind_info {
    enum key_kind kind;
    const char *name;
    const char *cert_name;
    const char *short_name;
    const char *short_cert_name;
    const char *curve;  /* SSH curve identifier, ECDSA only */
    const char *group;  /* OpenSSL group name, ECDSA only */
    const char *digest; /* ECDSA signature hash */
};

static const struct kind_info kinds[] = {
    {KEY_ED25519, "ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", "ED25519", "ED25519-CERT",
     NULL, NULL, NULL},
    {KEY_ECDSA_P256, "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ECDSA",
     "ECDSA-CERT", "nistp256", "prime256v1", "SHA256"},
    {KEY_ECDSA_P384, "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ECDSA",
     "ECDSA-CERT", "nistp384", "secp384r1", "SHA384"},
    {KEY_ECDSA_P521, "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521-cert-v01@openssh.com", "ECDSA",
     "ECDSA-CERT", "nistp521", "secp521r1", "SHA512"},
    {KEY_RSA, "ssh-rsa", "ssh-rsa-cert-v01@openssh.com", "RSA", "RSA-CERT", NULL, NULL, NULL},
    {KEY_MLDSA44_ED25519, COMPOSITE_NAME, "ssh-mldsa44-ed25519-cert-v01@openssh.com",
     "MLDSA44-ED25519", "MLDSA44-ED25519-CERT", NULL, NULL, NULL},
    {KEY_SK_ED25519, "sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com",
     "ED25519-SK", "ED25519-SK-CERT", NULL, NULL, NULL},
    {KEY_SK_ECDSA_P256, "sk-ecdsa-sha2-nistp256@openssh.com",
     "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", "ECDSA-SK", "ECDSA-SK-CERT", "nistp256",
     "prime256v1", "SHA256"},
};

/* A FIDO key handle longer than this is refused (OpenSSH's authenticators send tens of bytes). */
#define SK_KEY_HANDLE_MAX 4096
/* Likewise an application string. */
#define SK_APPLICATION_MAX 1024

/*
 * Idle prepared signing contexts of one key (key_sign()): per variant (a
 * digest; ECDSA and Ed25519 keys have one, RSA keys sign without them), a
 * few slots that a thread empties with an atomic exchange to take a
 * context and fills with a compare-and-swap to give it back. Lock-free, so
 * that the job pools' worker threads never wait for each other here.
 */
#define SIGN_VARIANTS 1
#define SIGN_SLOTS    4 /* the workers' threads and the loop's, with room to spare */

struct sign_ctx;

struct key_sign_pool {
    _Atomic(struct sign_ctx *) idle[SIGN_VARIANTS][SIGN_SLOTS];
};

/* ---- OpenSSL's allocator: every block cleared before it is freed ---- */

/*
 * OpenSSL 3.0 frees some copies of private keys without clearing them. The
 * one that matters here is its DER decoder: d2i_PrivateKey() is how RSA keys
 * are imported (pkey_rsa_private() says why), and the decoder reads the whole
 * PKCS#1 structure, every private component included, into buffers it then
 * frees uncleared (two per key, tests/hostile/freed_secrets.c). It also
 * leaves private material behind when it generates or encodes keys.
 *
 * No public 3.0 interface avoids the decoder and keeps RSA keys in the secure
 * heap (measured, see pkey_rsa_private()), so the clearing goes under it:
 * libcrypto's allocator is replaced by one that clears every block it frees
 * or moves, using the same malloc() and free(), so blocks still pass freely
 * between libcrypto and plain free(). This must be done before libcrypto's
 * first allocation, which CRYPTO_set_mem_functions() refuses after, hence a
 * constructor: it runs before main() in every program linking this file.
 * The cost is a memset per free, small beside any signature.
 */
#if defined(_WIN32)
#define BLOCK_SIZE(p) _msize(p)
#else
#define BLOCK_SIZE(p) malloc_usable_size(p)
#endif

static bool openssl_frees_cleared;

/* As CRYPTO_malloc() does by default, no block for zero bytes. */
static void *clearing_malloc(size_t num, const char *file, int line)
{
    (void)file;
    (void)line;
    return num == 0 ? NULL : malloc(num);
}

static void clearing_free(void *ptr, const char *file, int line)
{
    (void)file;
    (void)line;
    if (ptr == NULL)
        return;
    kw_memzero(ptr, BLOCK_SIZE(ptr));
    free(ptr);
}

/*
 * Always moves the block, so the old one is cleared whole: realloc() could
 * free it, or a shrunk tail, uncleared.
 */
static void *clearing_realloc(void *ptr, size_t num, const char *file, int line)
{
    size_t old;
    void *p;

    if (ptr == NULL)
        return clearing_malloc(num, file, line);
    if (num == 0) {
        clearing_free(ptr, file, line);
        return NULL;
    }
    if ((p = malloc(num)) == NULL)
        return NULL;
    old = BLOCK_SIZE(ptr);
    memcpy(p, ptr, old < num ? old : num);
    clearing_free(ptr, file, line);
    return p;
}

__attribute__((constructor)) static void clear_openssl_frees(void)
{
    openssl_frees_cleared =
        CRYPTO_set_mem_functions(clearing_malloc, clearing_realloc, clearing_free) == 1;
}

bool key_openssl_frees_cleared(void)
{
    return openssl_frees_cleared;
}

static const struct kind_info *info_by_name(struct wire_view name, bool *is_cert)
{
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (wire_view_eq_str(name, kinds[i].name)) {
            *is_cert = false;
            return &kinds[i];
        }
        if (wire_view_eq_str(name, kinds[i].cert_name)) {
            *is_cert = true;
            return &kinds[i];
        }
    }
    return NULL;
}

static const struct kind_info *info_of(enum key_kind kind)
{
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].kind == kind)
            return &kinds[i];
    return NULL;
}

/* ECDSA keys, the FIDO one included: their EVP_PKEY and public fields are the same. */
static bool is_ecdsa(enum key_kind kind)
{
    return kind == KEY_ECDSA_P256 || kind == KEY_ECDSA_P384 || kind == KEY_ECDSA_P521 ||
           kind == KEY_SK_ECDSA_P256;
}

/* Ed25519 keys, the FIDO one included. */
static bool is_ed25519(enum key_kind kind)
{
    return kind == KEY_ED25519 || kind == KEY_SK_ED25519;
}

static bool kind_is_sk(enum key_kind kind)
{
    return kind == KEY_SK_ED25519 || kind == KEY_SK_ECDSA_P256;
}

bool key_is_sk(const struct key *k)
{
    return kind_is_sk(k->kind);
}

static void sign_pool_free(struct key_sign_pool *pool);

static struct key *key_alloc(enum key_kind kind)
{
    struct key *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return NULL;
    if ((k->sign_pool = calloc(1, sizeof(*k->sign_pool))) == NULL) {
        free(k);
        return NULL;
    }
    k->kind = kind;
    k->refs = 1;
    return k;
}

struct key *key_ref(struct key *k)
{
    k->refs++;
    return k;
}

void key_free(struct key *k)
{
    if (k == NULL || --k->refs > 0)
        return;
    /* The prepared contexts hold references to pkey: they go first. */
    sign_pool_free(k->sign_pool);
    EVP_PKEY_free(k->pkey); /* OpenSSL clears private components */
    EVP_PKEY_free(k->pkey_ed);
    free(k->sk_application);
    if (k->sk_key_handle != NULL) {
        /* Some authenticators wrap the private key in the handle: not a secret, but cleared. */
        kw_memzero(k->sk_key_handle, k->sk_key_handle_len);
        free(k->sk_key_handle);
    }
    if (k->cert != NULL) {
        key_free(k->cert->ca);
        free(k->cert->principals);
        free(k->cert);
    }
    if (k->plain_blob != k->blob)
        free(k->plain_blob);
    free(k->blob);
    free(k);
}

static int copy_out(struct wire_view v, uint8_t **out, size_t *outlen)
{
    if ((*out = malloc(v.len ? v.len : 1)) == NULL)
        return KW_ERR_ALLOC;
    if (v.len)
        memcpy(*out, v.ptr, v.len);
    *outlen = v.len;
    return 0;
}

/* ---- building EVP_PKEYs ---- */

static EVP_PKEY *pkey_fromdata(const char *alg, int selection, OSSL_PARAM *params)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    EVP_PKEY *pkey = NULL;

    if (ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &pkey, selection, params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

bool key_kind_supported(enum key_kind kind)
{
#ifdef KEY_HAVE_MLDSA
    (void)kind;
    return true;
#else
    return kind != KEY_MLDSA44_ED25519;
#endif
}

const char *key_unsupported_why(void)
{
    static char why[160];

    snprintf(why, sizeof(why),
             "%s keys need ML-DSA, which needs OpenSSL >= 3.5; this keyward was built with %s",
             COMPOSITE_NAME, OPENSSL_VERSION_TEXT);
    return why;
}

/* A BIGNUM from magnitude bytes; secure=true puts it in OpenSSL's secure heap. */
static BIGNUM *bn_from_view(struct wire_view v, bool secure)
{
    BIGNUM *bn = secure ? BN_secure_new() : BN_new();

    if (bn == NULL)
        return NULL;
    if (BN_bin2bn(v.ptr, (int)v.len, bn) == NULL) {
        BN_clear_free(bn);
        return NULL;
    }
    return bn;
}

/*
 * A public point: not at infinity, on the curve, coordinates in range
 * (EVP_PKEY_public_check_quick()). The full EVP_PKEY_public_check() also
 * multiplies the point by the group order, a scalar multiplication costing
 * more than an ECDSA signature (0.3 ms for P-521), which lets a client
 * stall the loop with host keys in a destination constraint (issue 22).
 * For the NIST curves, whose cofactor is 1, every point on the curve but
 * infinity has that order, so the multiplication adds nothing. A private
 * key still gets the pairwise check (d*G == Q).
 */
static int ec_public_check(EVP_PKEY *pkey, bool pairwise)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok;

    if (ctx == NULL)
        return KW_ERR_ALLOC;
    ok = pairwise ? EVP_PKEY_pairwise_check(ctx) : EVP_PKEY_public_check_quick(ctx);
    EVP_PKEY_CTX_free(ctx);
    return ok == 1 ? 0 : KW_ERR_BAD_KEY;
}

static int pkey_ec(const struct kind_info *ki, struct wire_view q, struct wire_view d,
                   EVP_PKEY **out)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *priv = NULL;
    EVP_PKEY *pkey = NULL;
    int r = KW_ERR_ALLOC;
    bool private = d.ptr != NULL;

    if (q.len == 0 || q.len > EC_POINT_MAX_LEN || q.ptr[0] != 0x04)
        return KW_ERR_BAD_KEY; /* SSH always sends uncompressed points */
    if ((bld = OSSL_PARAM_BLD_new()) == NULL)
        goto out;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ki->group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q.ptr, q.len))
        goto out;
    if (private) {
        if (d.len == 0 || (priv = bn_from_view(d, true)) == NULL ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv))
            goto out;
    }
    if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    pkey = pkey_fromdata("EC", private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params);
    if (pkey == NULL) {
        r = KW_ERR_BAD_KEY;
        goto out;
    }
    /* On the curve, right order; for a private key, d*G == Q. */
    if ((r = ec_public_check(pkey, private)) != 0)
        goto out;
    *out = pkey;
    pkey = NULL;
    r = 0;
out:
    EVP_PKEY_free(pkey);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    return r;
}

static int rsa_bits_ok(const BIGNUM *n)
{
    int bits = BN_num_bits(n);

    if (bits < KEY_RSA_MIN_BITS || bits > KEY_RSA_MAX_BITS)
        return KW_ERR_KEY_SIZE;
    return 0;
}

static int pkey_rsa_public(struct wire_view nv, struct wire_view ev, EVP_PKEY **out)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    int r = KW_ERR_ALLOC;

    if ((n = bn_from_view(nv, false)) == NULL || (e = bn_from_view(ev, false)) == NULL)
        goto out;
    if ((r = rsa_bits_ok(n)) != 0)
        goto out;
    r = KW_ERR_BAD_KEY;
    if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > 64)
        goto out;
    r = KW_ERR_ALLOC;
    if ((bld = OSSL_PARAM_BLD_new()) == NULL || !OSSL_PARAM_BLD_push_BN(bld, "n", n) ||
        !OSSL_PARAM_BLD_push_BN(bld, "e", e) || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    if ((*out = pkey_fromdata("RSA", EVP_PKEY_PUBLIC_KEY, params)) == NULL) {
        r = KW_ERR_BAD_KEY;
        goto out;
    }
    r = 0;
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return r;
}

/* DER length octets (X.690 8.1.3, definite form). */
static void der_put_length(struct wire_writer *w, size_t len)
{
    if (len < 0x80) {
        wire_put_u8(w, (uint8_t)len);
    } else if (len <= 0xff) {
        wire_put_u8(w, 0x81);
        wire_put_u8(w, (uint8_t)len);
    } else if (len <= 0xffff) {
        wire_put_u8(w, 0x82);
        wire_put_u8(w, (uint8_t)(len >> 8));
        wire_put_u8(w, (uint8_t)len);
    } else {
        wire_put_u8(w, 0x83);
        wire_put_u8(w, (uint8_t)(len >> 16));
        wire_put_u8(w, (uint8_t)(len >> 8));
        wire_put_u8(w, (uint8_t)len);
    }
}

/* A non-negative DER INTEGER. */
static int der_put_integer(struct wire_writer *w, const BIGNUM *bn)
{
    int nbytes = BN_num_bytes(bn);
    size_t len = nbytes > 0 ? (size_t)nbytes : 0;
    uint8_t *buf;
    bool pad;

    if ((buf = malloc(len ? len : 1)) == NULL)
        return KW_ERR_ALLOC;
    BN_bn2bin(bn, buf);
    pad = len == 0 || (buf[0] & 0x80);
    wire_put_u8(w, 0x02);
    der_put_length(w, len + (pad ? 1 : 0));
    if (pad)
        wire_put_u8(w, 0);
    wire_put_bytes(w, buf, len);
    kw_memzero(buf, len);
    free(buf);
    return w->error;
}

/* PKCS#1 RSAPrivateKey (RFC 8017 A.1.2): version 0, then the parts in order. */
static int rsa_private_der(const BIGNUM *const *parts, size_t nparts, struct wire_writer *w)
{
    struct wire_writer body;
    size_t i;
    int r = 0;

    wire_writer_init(&body);
    wire_put_bytes(&body, "\x02\x01\x00", 3); /* INTEGER 0 */
    for (i = 0; i < nparts && r == 0; i++)
        r = der_put_integer(&body, parts[i]);
    if (r == 0 && body.error == 0) {
        wire_put_u8(w, 0x30); /* SEQUENCE */
        der_put_length(w, body.len);
        wire_put_bytes(w, body.buf, body.len);
        r = w->error;
    } else if (r == 0) {
        r = body.error;
    }
    wire_writer_free(&body);
    return r;
}

/*
 * RSA private key from the public n and e and the private d, p, q (their
 * magnitude bytes). The CRT values are derived here rather than trusted from
 * the client, so a bad iqmp cannot produce bad signatures.
 */
static int pkey_rsa_private(const BIGNUM *n, const BIGNUM *e, struct wire_view dv,
                            struct wire_view pv, struct wire_view qv, EVP_PKEY **out)
{
    struct wire_writer derw;
    BN_CTX *bnctx = NULL;
    BIGNUM *d = NULL, *p = NULL, *q = NULL;
    BIGNUM *dmp1 = NULL, *dmq1 = NULL, *iqmp = NULL, *t = NULL, *u = NULL;
    int r = KW_ERR_ALLOC;

    wire_writer_init(&derw);
    if ((bnctx = BN_CTX_secure_new()) == NULL || (d = bn_from_view(dv, true)) == NULL ||
        (p = bn_from_view(pv, true)) == NULL || (q = bn_from_view(qv, true)) == NULL ||
        (dmp1 = BN_secure_new()) == NULL || (dmq1 = BN_secure_new()) == NULL ||
        (iqmp = BN_secure_new()) == NULL || (t = BN_secure_new()) == NULL ||
        (u = BN_secure_new()) == NULL)
        goto out;
    if ((r = rsa_bits_ok(n)) != 0)
        goto out;
    r = KW_ERR_BAD_KEY;
    if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > 64 || BN_is_zero(d) ||
        BN_cmp(d, n) >= 0 || BN_cmp(p, BN_value_one()) <= 0 || BN_cmp(q, BN_value_one()) <= 0)
        goto out;
    /* n must be p*q: the cheap consistency check OpenSSL's CRT relies on. */
    if (!BN_mul(t, p, q, bnctx))
        goto out;
    if (BN_cmp(t, n) != 0)
        goto out;
    /*
     * dmp1 = d mod (p-1), dmq1 = d mod (q-1), iqmp = q^-1 mod p. And d must
     * really be e's inverse: e*dmp1 = 1 mod (p-1) and e*dmq1 = 1 mod (q-1).
     * A key that fails this would load and then sign garbage, which is a
     * confusing way for an add to fail (found by fuzzing the key parser).
     */
    if (BN_cmp(p, q) == 0 || !BN_sub(t, p, BN_value_one()) || !BN_mod(dmp1, d, t, bnctx) ||
        !BN_mod_mul(u, e, dmp1, t, bnctx) || !BN_is_one(u) || !BN_sub(t, q, BN_value_one()) ||
        !BN_mod(dmq1, d, t, bnctx) || !BN_mod_mul(u, e, dmq1, t, bnctx) || !BN_is_one(u) ||
        BN_mod_inverse(iqmp, q, p, bnctx) == NULL)
        goto out;
    /*
     * Import through PKCS#1 DER: OpenSSL 3.0's DER decoder allocates d, p, q
     * and the CRT values in the secure heap and hands that very RSA object
     * to the provider. The alternatives were measured (secure heap use and
     * heap scans, OpenSSL 3.0.19): EVP_PKEY_fromdata() copies every part
     * into ordinary BIGNUMs even from secure ones (OSSL_PARAM_get_BN), and
     * an RSA built with the deprecated RSA_set0_*() stays a legacy key that
     * is copied the same way to the provider when first used. The decoder
     * frees its copies of the DER uncleared; clearing_free() above clears
     * them (hostile_freed_secrets).
     */
    {
        const BIGNUM *parts[] = {n, e, d, p, q, dmp1, dmq1, iqmp};
        const uint8_t *der;

        if ((r = rsa_private_der(parts, sizeof(parts) / sizeof(parts[0]), &derw)) != 0)
            goto out;
        der = derw.buf;
        if ((*out = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &der, (long)derw.len)) == NULL) {
            r = KW_ERR_BAD_KEY;
            goto out;
        }
    }
    r = 0;
out:
    wire_writer_free(&derw); /* zeroes the DER copy of the key */
    BN_clear_free(d);
    BN_clear_free(p);
    BN_clear_free(q);
    BN_clear_free(dmp1);
    BN_clear_free(dmq1);
    BN_clear_free(iqmp);
    BN_clear_free(t);
    BN_clear_free(u);
    BN_CTX_free(bnctx);
    return r;
}

/* ---- ML-DSA-44 + Ed25519 (composite) ---- */

static int pkey_ed25519_private(struct wire_view pk, struct wire_view sk, EVP_PKEY **out);
static int raw_verify(EVP_PKEY *pkey, const char *md, const uint8_t *sig, size_t siglen,
                      const uint8_t *data, size_t len);

static int raw_sign(EVP_PKEY *pkey, const char *md, const uint8_t *data, size_t len, uint8_t **sig,
                    size_t *siglen);
#ifdef KEY_HAVE_MLDSA
/*
 * The composite rule (the LAMPS composite ML-DSA construction the draft
 * adopts, with an empty application context): both halves sign
 *   M' = "CompositeAlgorithmSignatures2025" || label || 0x00 || SHA-512(M)
 * where 0x00 is the context's length, and ML-DSA also gets the label as its
 * FIPS 204 context string. Binding the label into what both halves sign
 * keeps either signature from being lifted into another scheme.
 */
#define COMPOSITE_PREFIX  "CompositeAlgorithmSignatures2025"
#define COMPOSITE_LABEL   "COMPSIG-MLDSA44-Ed25519-SHA512"
#define COMPOSITE_MSG_LEN (sizeof(COMPOSITE_PREFIX) - 1 + sizeof(COMPOSITE_LABEL) - 1 + 1 + 64)

static int composite_message(const uint8_t *data, size_t len, uint8_t out[COMPOSITE_MSG_LEN])
{
    size_t n = 0;
    unsigned int dlen = 64;

    memcpy(out, COMPOSITE_PREFIX, sizeof(COMPOSITE_PREFIX) - 1);
    n += sizeof(COMPOSITE_PREFIX) - 1;
    memcpy(out + n, COMPOSITE_LABEL, sizeof(COMPOSITE_LABEL) - 1);
    n += sizeof(COMPOSITE_LABEL) - 1;
    out[n++] = 0; /* no application context */
    if (EVP_Digest(data, len, out + n, &dlen, EVP_sha512(), NULL) != 1 || dlen != 64)
        return KW_ERR_INTERNAL;
    return 0;
}

/* The ML-DSA-44 signature operation with the label as context string. */
static int mldsa_op_init(EVP_PKEY_CTX *ctx, EVP_SIGNATURE *alg, bool sign)
{
    OSSL_PARAM params[2];

    params[0] = OSSL_PARAM_construct_octet_string(
        OSSL_SIGNATURE_PARAM_CONTEXT_STRING, (void *)COMPOSITE_LABEL, sizeof(COMPOSITE_LABEL) - 1);
    params[1] = OSSL_PARAM_construct_end();
    return sign ? EVP_PKEY_sign_message_init(ctx, alg, params)
                : EVP_PKEY_verify_message_init(ctx, alg, params);
}

static int mldsa_sign(EVP_PKEY *pkey, const uint8_t *msg, size_t len, uint8_t *sig)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    EVP_SIGNATURE *alg = EVP_SIGNATURE_fetch(NULL, "ML-DSA-44", NULL);
    size_t siglen = MLDSA44_SIG_LEN;
    int r = KW_ERR_INTERNAL;

    if (ctx == NULL || alg == NULL)
        goto out;
    if (mldsa_op_init(ctx, alg, true) == 1 && EVP_PKEY_sign(ctx, sig, &siglen, msg, len) == 1 &&
        siglen == MLDSA44_SIG_LEN)
        r = 0;
out:
    EVP_SIGNATURE_free(alg);
    EVP_PKEY_CTX_free(ctx);
    return r;
}

static int mldsa_verify(EVP_PKEY *pkey, const uint8_t *sig, const uint8_t *msg, size_t len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    EVP_SIGNATURE *alg = EVP_SIGNATURE_fetch(NULL, "ML-DSA-44", NULL);
    int r = KW_ERR_BAD_SIG;

    if (ctx == NULL || alg == NULL)
        r = KW_ERR_ALLOC;
    else if (mldsa_op_init(ctx, alg, false) == 1 &&
             EVP_PKEY_verify(ctx, sig, MLDSA44_SIG_LEN, msg, len) == 1)
        r = 0;
    EVP_SIGNATURE_free(alg);
    EVP_PKEY_CTX_free(ctx);
    return r;
}

/* An ML-DSA-44 key from its 32-byte seed (FIPS 204's xi): OpenSSL expands it. */
static int pkey_mldsa_from_seed(const uint8_t *seed, EVP_PKEY **out)
{
    OSSL_PARAM params[2];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_ML_DSA_SEED, (void *)seed,
                                                  MLDSA_SEED_LEN);
    params[1] = OSSL_PARAM_construct_end();
    *out = pkey_fromdata("ML-DSA-44", EVP_PKEY_KEYPAIR, params);
    return *out ? 0 : KW_ERR_BAD_KEY;
}
#endif

/* The composite public key's halves from its one string. */
static int read_composite_public(struct wire_view pk, EVP_PKEY **mldsa, EVP_PKEY **ed)
{
#ifdef KEY_HAVE_MLDSA
    if (pk.len != COMPOSITE_PK_LEN)
        return KW_ERR_BAD_KEY;
    *mldsa = EVP_PKEY_new_raw_public_key_ex(NULL, "ML-DSA-44", NULL, pk.ptr, MLDSA44_PK_LEN);
    *ed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk.ptr + MLDSA44_PK_LEN,
                                      ED25519_PK_LEN);
    return *mldsa && *ed ? 0 : KW_ERR_BAD_KEY;
#else
    (void)pk;
    (void)mldsa;
    (void)ed;
    return KW_ERR_NO_SUPPORT;
#endif
}

/*
 * The composite private key: pk as in the public key, sk the two seeds.
 * Each half is derived from its seed and must give the public half sent.
 */
static int read_composite_private(struct wire_view pk, struct wire_view sk, EVP_PKEY **mldsa,
                                  EVP_PKEY **ed)
{
#ifdef KEY_HAVE_MLDSA
    uint8_t derived[MLDSA44_PK_LEN], ed_sk[ED25519_SK_LEN];
    size_t dlen = sizeof(derived);
    int r;

    if (pk.len != COMPOSITE_PK_LEN || sk.len != COMPOSITE_SK_LEN)
        return KW_ERR_BAD_KEY;
    if ((r = pkey_mldsa_from_seed(sk.ptr, mldsa)) != 0)
        return r;
    if (EVP_PKEY_get_raw_public_key(*mldsa, derived, &dlen) != 1 || dlen != MLDSA44_PK_LEN ||
        memcmp(derived, pk.ptr, MLDSA44_PK_LEN) != 0)
        return KW_ERR_BAD_KEY;
    /* Ed25519 as OpenSSH sends it alone: seed || pk, checked there. */
    memcpy(ed_sk, sk.ptr + MLDSA_SEED_LEN, 32);
    memcpy(ed_sk + 32, pk.ptr + MLDSA44_PK_LEN, ED25519_PK_LEN);
    r = pkey_ed25519_private((struct wire_view){pk.ptr + MLDSA44_PK_LEN, ED25519_PK_LEN},
                             (struct wire_view){ed_sk, sizeof(ed_sk)}, ed);
    kw_memzero(ed_sk, sizeof(ed_sk));
    return r;
#else
    (void)pk;
    (void)sk;
    (void)mldsa;
    (void)ed;
    return KW_ERR_NO_SUPPORT;
#endif
}

/* Writes the composite public key's one string. */
static int put_composite_public(const EVP_PKEY *mldsa, const EVP_PKEY *ed, struct wire_writer *w)
{
#ifdef KEY_HAVE_MLDSA
    uint8_t pk[COMPOSITE_PK_LEN];
    size_t mlen = MLDSA44_PK_LEN, elen = ED25519_PK_LEN;

    if (mldsa == NULL || ed == NULL || EVP_PKEY_get_raw_public_key(mldsa, pk, &mlen) != 1 ||
        mlen != MLDSA44_PK_LEN ||
        EVP_PKEY_get_raw_public_key(ed, pk + MLDSA44_PK_LEN, &elen) != 1 || elen != ED25519_PK_LEN)
        return KW_ERR_INTERNAL;
    wire_put_string(w, pk, sizeof(pk));
    return w->error;
#else
    (void)mldsa;
    (void)ed;
    (void)w;
    return KW_ERR_NO_SUPPORT;
#endif
}

/* Writes the composite private key's fields (after the name). */
static int put_composite_private(const struct key *k, struct wire_writer *w)
{
#ifdef KEY_HAVE_MLDSA
    uint8_t sk[COMPOSITE_SK_LEN];
    size_t slen = MLDSA_SEED_LEN, elen = 32;
    int r = KW_ERR_INTERNAL;

    if ((r = put_composite_public(k->pkey, k->pkey_ed, w)) != 0)
        return r;
    /* Only a key made or imported from its seed has one to give. */
    if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ML_DSA_SEED, sk, MLDSA_SEED_LEN,
                                        &slen) != 1 ||
        slen != MLDSA_SEED_LEN ||
        EVP_PKEY_get_raw_private_key(k->pkey_ed, sk + MLDSA_SEED_LEN, &elen) != 1 || elen != 32) {
        r = KW_ERR_INTERNAL;
        goto out;
    }
    wire_put_string(w, sk, sizeof(sk));
    r = w->error;
out:
    kw_memzero(sk, sizeof(sk));
    return r;
#else
    (void)k;
    (void)w;
    return KW_ERR_NO_SUPPORT;
#endif
}

static int composite_generate(struct key *k)
{
#ifdef KEY_HAVE_MLDSA
    /* OpenSSL keeps the seed it generated from (ml-dsa.retain_seed's default). */
    k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ML-DSA-44");
    k->pkey_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return k->pkey && k->pkey_ed ? 0 : KW_ERR_INTERNAL;
#else
    (void)k;
    return KW_ERR_NO_SUPPORT;
#endif
}

/* Signs data: string name, string (ML-DSA-44 sig || Ed25519 sig). */
static int composite_sign(const struct key *k, const uint8_t *data, size_t len,
                          struct wire_writer *w)
{
#ifdef KEY_HAVE_MLDSA
    uint8_t msg[COMPOSITE_MSG_LEN], sig[COMPOSITE_SIG_LEN];
    uint8_t *edsig = NULL;
    size_t edlen = 0;
    int r;

    if ((r = composite_message(data, len, msg)) != 0)
        return r;
    if ((r = mldsa_sign(k->pkey, msg, sizeof(msg), sig)) != 0)
        return r;
    if ((r = raw_sign(k->pkey_ed, NULL, msg, sizeof(msg), &edsig, &edlen)) != 0)
        return r;
    if (edlen != ED25519_SIG_LEN) {
        free(edsig);
        return KW_ERR_INTERNAL;
    }
    memcpy(sig + MLDSA44_SIG_LEN, edsig, ED25519_SIG_LEN);
    free(edsig);
    wire_put_cstring(w, COMPOSITE_NAME);
    wire_put_string(w, sig, sizeof(sig));
    return w->error;
#else
    (void)k;
    (void)data;
    (void)len;
    (void)w;
    return KW_ERR_NO_SUPPORT;
#endif
}

/* Both halves must verify. */
static int composite_verify(const struct key *k, struct wire_view sig, const uint8_t *data,
                            size_t len)
{
#ifdef KEY_HAVE_MLDSA
    uint8_t msg[COMPOSITE_MSG_LEN];
    int r;

    if (sig.len != COMPOSITE_SIG_LEN)
        return KW_ERR_BAD_SIG;
    if ((r = composite_message(data, len, msg)) != 0)
        return r;
    if ((r = mldsa_verify(k->pkey, sig.ptr, msg, sizeof(msg))) != 0)
        return r;
    return raw_verify(k->pkey_ed, NULL, sig.ptr + MLDSA44_SIG_LEN, ED25519_SIG_LEN, msg,
                      sizeof(msg));
#else
    (void)k;
    (void)sig;
    (void)data;
    (void)len;
    return KW_ERR_NO_SUPPORT;
#endif
}

/* ---- public encodings ---- */

static int put_bn_param(struct wire_writer *w, const EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    uint8_t *buf = NULL;
    int len, r = KW_ERR_INTERNAL;

    if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
        goto out;
    len = BN_num_bytes(bn);
    if ((buf = malloc(len > 0 ? (size_t)len : 1)) == NULL) {
        r = KW_ERR_ALLOC;
        goto out;
    }
    BN_bn2bin(bn, buf);
    wire_put_mpint_unsigned(w, buf, (size_t)len);
    kw_memzero(buf, (size_t)len);
    r = w->error;
out:
    free(buf);
    BN_clear_free(bn);
    return r;
}

/* Writes the public fields (after the type name) of pkey (and pkey_ed, composite only). */
static int put_public_fields(const struct kind_info *ki, const EVP_PKEY *pkey,
                             const EVP_PKEY *pkey_ed, struct wire_writer *w)
{
    uint8_t buf[EC_POINT_MAX_LEN];
    size_t len = sizeof(buf);
    int r;

    if (ki->kind == KEY_MLDSA44_ED25519)
        return put_composite_public(pkey, pkey_ed, w);
    if (is_ed25519(ki->kind)) {
        len = ED25519_PK_LEN;
        if (EVP_PKEY_get_raw_public_key(pkey, buf, &len) != 1 || len != ED25519_PK_LEN)
            return KW_ERR_INTERNAL;
        wire_put_string(w, buf, len);
    } else if (is_ecdsa(ki->kind)) {
        if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf,
                                            sizeof(buf), &len) != 1)
            return KW_ERR_INTERNAL;
        wire_put_cstring(w, ki->curve);
        wire_put_string(w, buf, len);
    } else {
        if ((r = put_bn_param(w, pkey, OSSL_PKEY_PARAM_RSA_E)) != 0 ||
            (r = put_bn_param(w, pkey, OSSL_PKEY_PARAM_RSA_N)) != 0)
            return r;
    }
    return w->error;
}

/* Builds the plain public blob of k (its EVP_PKEY, a FIDO key's application) afresh. */
static int plain_blob_of(const struct kind_info *ki, const struct key *k, uint8_t **out,
                         size_t *outlen)
{
    struct wire_writer w;
    int r;

    wire_writer_init(&w);
    wire_put_cstring(&w, ki->name);
    r = put_public_fields(ki, k->pkey, k->pkey_ed, &w);
    if (r == 0 && kind_is_sk(ki->kind)) {
        wire_put_cstring(&w, k->sk_application);
        r = w.error;
    }
    if (r == 0)
        r = copy_out(wire_writer_view(&w), out, outlen);
    wire_writer_free(&w);
    return r;
}

/*
 * ecdsa-sha2-nistpN's fields: string curve, string Q and, for a private key
 * (with_d), mpint d. The same in a public blob and in ADD_IDENTITY.
 */
static int read_ecdsa_fields(const struct kind_info *ki, struct wire_reader *r, bool with_d,
                             EVP_PKEY **out)
{
    struct wire_view curve, q, d = {NULL, 0};

    curve = wire_get_string(r);
    q = wire_get_string(r);
    if (with_d)
        d = wire_get_mpint_unsigned(r);
    if (r->error)
        return r->error;
    if (!wire_view_eq_str(curve, ki->curve))
        return KW_ERR_BAD_KEY;
    return pkey_ec(ki, q, d, out);
}

/* A FIDO key's application: a string without NUL, at most SK_APPLICATION_MAX bytes. */
static int read_sk_application(struct wire_reader *r, char **out)
{
    struct wire_view app = wire_get_string(r);

    if (r->error)
        return r->error;
    if (app.len == 0 || app.len > SK_APPLICATION_MAX || memchr(app.ptr, '\0', app.len) != NULL)
        return KW_ERR_BAD_KEY;
    if ((*out = malloc(app.len + 1)) == NULL)
        return KW_ERR_ALLOC;
    memcpy(*out, app.ptr, app.len);
    (*out)[app.len] = '\0';
    return 0;
}

static int read_public_fields_pkey(const struct kind_info *ki, struct wire_reader *r,
                                   EVP_PKEY **out, EVP_PKEY **out_ed);

/*
 * Reads the public fields of a key of kind ki from r into k: a public
 * EVP_PKEY (and pkey_ed, the composite key's Ed25519 half), and a FIDO
 * key's application.
 */
static int read_public_fields(const struct kind_info *ki, struct wire_reader *r, struct key *k)
{
    int err;

    if ((err = read_public_fields_pkey(ki, r, &k->pkey, &k->pkey_ed)) != 0)
        return err;
    if (kind_is_sk(ki->kind))
        return read_sk_application(r, &k->sk_application);
    return 0;
}

static int read_public_fields_pkey(const struct kind_info *ki, struct wire_reader *r,
                                   EVP_PKEY **out, EVP_PKEY **out_ed)
{
    struct wire_view pk, e, n;

    if (ki->kind == KEY_MLDSA44_ED25519) {
        pk = wire_get_string(r);
        if (r->error)
            return r->error;
        return read_composite_public(pk, out, out_ed);
    }
    if (is_ed25519(ki->kind)) {
        pk = wire_get_string(r);
        if (r->error)
            return r->error;
        if (pk.len != ED25519_PK_LEN)
            return KW_ERR_BAD_KEY;
        *out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk.ptr, pk.len);
        return *out ? 0 : KW_ERR_BAD_KEY;
    }
    if (is_ecdsa(ki->kind))
        return read_ecdsa_fields(ki, r, false, out);
    e = wire_get_mpint_unsigned(r); /* the public encoding puts e first */
    n = wire_get_mpint_unsigned(r);
    if (r->error)
        return r->error;
    return pkey_rsa_public(n, e, out);
}

/* ---- certificates ---- */

static int parse_blob(const uint8_t *blob, size_t len, bool allow_cert, struct key **out);

/*
 * Parses the body of a certificate after its type name: fills k->pkey and
 * k->plain_blob and verifies the CA's signature over the certificate.
 */
static int parse_cert_body(const struct kind_info *ki, struct key *k, struct wire_reader *r)
{
    struct wire_view ca_blob, sig, principals;
    struct key_cert *cert;
    size_t signed_len;
    int err;

    if ((cert = calloc(1, sizeof(*cert))) == NULL)
        return KW_ERR_ALLOC;
    k->cert = cert;           /* freed with k on any error */
    (void)wire_get_string(r); /* nonce */
    if ((err = read_public_fields(ki, r, k)) != 0)
        return err;
    (void)wire_get_u64(r); /* serial */
    cert->type = wire_get_u32(r);
    (void)wire_get_string(r); /* key id */
    principals = wire_get_string(r);
    cert->valid_after = wire_get_u64(r);
    cert->valid_before = wire_get_u64(r);
    cert->critical_len = wire_get_string(r).len; /* critical options */
    (void)wire_get_string(r);                    /* extensions */
    (void)wire_get_string(r);                    /* reserved */
    ca_blob = wire_get_string(r);
    signed_len = r->pos;
    sig = wire_get_string(r);
    if ((err = wire_reader_finish(r)) != 0)
        return err;
    if (cert->type != KEY_CERT_USER && cert->type != KEY_CERT_HOST)
        return KW_ERR_BAD_KEY;
    if ((err = copy_out(principals, &cert->principals, &cert->principals_len)) != 0)
        return err;
    /* The CA key must be a plain key: no certificate chains. */
    if ((err = parse_blob(ca_blob.ptr, ca_blob.len, false, &cert->ca)) != 0)
        return err;
    if ((err = key_verify(cert->ca, sig.ptr, sig.len, r->data, signed_len)) != 0)
        return err;
    /* The algorithm of the CA's signature, for checks that refuse SHA-1. */
    if ((err = key_signature_algorithm(sig.ptr, sig.len, cert->sig_alg, sizeof(cert->sig_alg))) !=
        0)
        return err;
    return plain_blob_of(ki, k, &k->plain_blob, &k->plain_blob_len);
}

static int parse_blob(const uint8_t *blob, size_t len, bool allow_cert, struct key **out)
{
    struct wire_reader r;
    struct wire_view name;
    const struct kind_info *ki;
    struct key *k = NULL;
    bool is_cert = false;
    int err;

    *out = NULL;
    if (len > WIRE_MAX_MESSAGE)
        return KW_ERR_TOO_LARGE;
    wire_reader_init(&r, blob, len);
    name = wire_get_string(&r);
    if (r.error)
        return r.error;
    if ((ki = info_by_name(name, &is_cert)) == NULL)
        return KW_ERR_KEY_TYPE;
    if (is_cert && !allow_cert)
        return KW_ERR_KEY_TYPE;
    if (!key_kind_supported(ki->kind))
        return KW_ERR_NO_SUPPORT;
    if ((k = key_alloc(ki->kind)) == NULL)
        return KW_ERR_ALLOC;
    k->is_cert = is_cert;
    if (is_cert) {
        err = parse_cert_body(ki, k, &r);
    } else if ((err = read_public_fields(ki, &r, k)) == 0) {
        err = wire_reader_finish(&r);
    }
    if (err == 0)
        err = copy_out((struct wire_view){blob, len}, &k->blob, &k->blob_len);
    if (err != 0) {
        key_free(k);
        return err;
    }
    if (!is_cert) {
        k->plain_blob = k->blob;
        k->plain_blob_len = k->blob_len;
    }
    *out = k;
    return 0;
}

int key_from_blob(const uint8_t *blob, size_t len, struct key **out)
{
    return parse_blob(blob, len, true, out);
}

int key_from_plain_blob(const uint8_t *blob, size_t len, struct key **out)
{
    return parse_blob(blob, len, false, out);
}

/* ---- private keys ---- */

/* Ed25519 private key from pk and OpenSSH's sk (seed || pk), checked against each other. */
static int pkey_ed25519_private(struct wire_view pk, struct wire_view sk, EVP_PKEY **out)
{
    uint8_t derived[ED25519_PK_LEN];
    size_t dlen = sizeof(derived);
    EVP_PKEY *raw;
    int r;

    if (pk.len != ED25519_PK_LEN || sk.len != ED25519_SK_LEN)
        return KW_ERR_BAD_KEY;
    /* OpenSSH's sk is seed || pk; OpenSSL wants the 32-byte seed. */
    if (memcmp(sk.ptr + 32, pk.ptr, ED25519_PK_LEN) != 0)
        return KW_ERR_BAD_KEY;
    raw = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk.ptr, 32);
    if (raw == NULL)
        return KW_ERR_BAD_KEY;
    if (EVP_PKEY_get_raw_public_key(raw, derived, &dlen) != 1 || dlen != ED25519_PK_LEN ||
        memcmp(derived, pk.ptr, ED25519_PK_LEN) != 0) {
        r = KW_ERR_BAD_KEY;
        goto out;
    }
    /*
     * OpenSSL 3.0 imports the seed into ordinary memory, but a duplicate
     * allocates it in the secure heap (ossl_ecx_key_dup): keep the duplicate
     * (test_key's test_secure_heap). The import is cleared when freed.
     */
    if ((*out = EVP_PKEY_dup(raw)) == NULL) {
        r = KW_ERR_ALLOC;
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_free(raw);
    return r;
}

/*
 * The private fields of each key kind, after the type name and, for a
 * certificate, after the certificate (see the table at the top). Each reads
 * all its fields before checking any, so a truncated key fails with the
 * reader's error whatever else is wrong with the fields it did get.
 */

/* ssh-ed25519, plain or certificate: string pk, string sk. */
static int read_private_ed25519(struct wire_reader *r, EVP_PKEY **out)
{
    struct wire_view pk, sk;

    pk = wire_get_string(r);
    sk = wire_get_string(r);
    if (r->error)
        return r->error;
    return pkey_ed25519_private(pk, sk, out);
}

/* An ECDSA certificate's private key: mpint d; Q is the certificate's. */
static int read_private_ecdsa_cert(const struct kind_info *ki, const struct key *cert,
                                   struct wire_reader *r, EVP_PKEY **out)
{
    uint8_t q[EC_POINT_MAX_LEN];
    size_t q_len = sizeof(q);
    struct wire_view d;

    d = wire_get_mpint_unsigned(r);
    if (r->error)
        return r->error;
    if (EVP_PKEY_get_octet_string_param(cert->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, q,
                                        sizeof(q), &q_len) != 1)
        return KW_ERR_INTERNAL;
    return pkey_ec(ki, (struct wire_view){q, q_len}, d, out);
}

/* The private part of both RSA forms: mpint d, mpint iqmp, mpint p, mpint q. */
static void read_rsa_secrets(struct wire_reader *r, struct wire_view *d, struct wire_view *p,
                             struct wire_view *q)
{
    *d = wire_get_mpint_unsigned(r);
    (void)wire_get_mpint_unsigned(r); /* iqmp: recomputed, not trusted */
    *p = wire_get_mpint_unsigned(r);
    *q = wire_get_mpint_unsigned(r);
}

/* ssh-rsa: mpint n, mpint e, then the secrets. */
static int read_private_rsa(struct wire_reader *r, EVP_PKEY **out)
{
    struct wire_view n_mag, e_mag, d, p, q;
    BIGNUM *n = NULL, *e = NULL;
    int err = KW_ERR_ALLOC;

    n_mag = wire_get_mpint_unsigned(r);
    e_mag = wire_get_mpint_unsigned(r);
    read_rsa_secrets(r, &d, &p, &q);
    if (r->error)
        return r->error;
    if ((n = bn_from_view(n_mag, false)) != NULL && (e = bn_from_view(e_mag, false)) != NULL)
        err = pkey_rsa_private(n, e, d, p, q, out);
    BN_free(n);
    BN_free(e);
    return err;
}

/* An RSA certificate's private key: the secrets only; n and e are the certificate's. */
static int read_private_rsa_cert(const struct key *cert, struct wire_reader *r, EVP_PKEY **out)
{
    struct wire_view d, p, q;
    BIGNUM *n = NULL, *e = NULL;
    int err = KW_ERR_INTERNAL;

    read_rsa_secrets(r, &d, &p, &q);
    if (r->error)
        return r->error;
    if (EVP_PKEY_get_bn_param(cert->pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
        EVP_PKEY_get_bn_param(cert->pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1)
        err = pkey_rsa_private(n, e, d, p, q, out);
    BN_free(n);
    BN_free(e);
    return err;
}

/*
 * A FIDO key's private fields (cert: its certificate, or NULL): the public
 * fields (a certificate's Ed25519 form sends pk again; its ECDSA form
 * nothing), then application, flags, key handle and reserved. A
 * certificate's application must be its key's.
 */
static int read_private_sk(const struct kind_info *ki, const struct key *cert,
                           struct wire_reader *r, struct key *k)
{
    struct wire_view pk, handle;
    int err;

    if (cert == NULL) {
        if ((err = read_public_fields_pkey(ki, r, &k->pkey, &k->pkey_ed)) != 0)
            return err;
    } else {
        if (is_ed25519(ki->kind)) {
            pk = wire_get_string(r);
            if (r->error)
                return r->error;
            if (pk.len != ED25519_PK_LEN)
                return KW_ERR_BAD_KEY;
        }
        if (EVP_PKEY_up_ref(cert->pkey) != 1)
            return KW_ERR_INTERNAL;
        k->pkey = cert->pkey;
    }
    if ((err = read_sk_application(r, &k->sk_application)) != 0)
        return err;
    k->sk_flags = wire_get_u8(r);
    handle = wire_get_string(r);
    (void)wire_get_string(r); /* reserved */
    if (r->error)
        return r->error;
    if (handle.len == 0 || handle.len > SK_KEY_HANDLE_MAX)
        return KW_ERR_BAD_KEY;
    if (cert != NULL && strcmp(cert->sk_application, k->sk_application) != 0)
        return KW_ERR_BAD_KEY;
    if (cert != NULL && is_ed25519(ki->kind)) {
        uint8_t have[ED25519_PK_LEN];
        size_t have_len = sizeof(have);

        if (EVP_PKEY_get_raw_public_key(cert->pkey, have, &have_len) != 1 ||
            have_len != ED25519_PK_LEN || memcmp(have, pk.ptr, ED25519_PK_LEN) != 0)
            return KW_ERR_BAD_KEY;
    }
    return copy_out(handle, &k->sk_key_handle, &k->sk_key_handle_len);
}

/* The private fields of a key of kind ki; cert is its certificate, or NULL for a plain key. */
static int read_private_fields(const struct kind_info *ki, const struct key *cert,
                               struct wire_reader *r, struct key *k)
{
    EVP_PKEY **out = &k->pkey, **out_ed = &k->pkey_ed;
    struct wire_view pk, sk;

    if (kind_is_sk(ki->kind))
        return read_private_sk(ki, cert, r, k);

    if (ki->kind == KEY_MLDSA44_ED25519) {
        /* string pk, string sk, in both forms (the certificate's sends pk again) */
        pk = wire_get_string(r);
        sk = wire_get_string(r);
        if (r->error)
            return r->error;
        return read_composite_private(pk, sk, out, out_ed);
    }
    if (ki->kind == KEY_ED25519)
        return read_private_ed25519(r, out); /* the certificate's form sends pk again */
    if (is_ecdsa(ki->kind))
        return cert ? read_private_ecdsa_cert(ki, cert, r, out)
                    : read_ecdsa_fields(ki, r, true, out);
    return cert ? read_private_rsa_cert(cert, r, out) : read_private_rsa(r, out);
}

/* A certificate form's leading string cert: a certificate of kind ki, CA signature checked. */
static int read_private_cert(const struct kind_info *ki, struct wire_reader *r, struct key **out)
{
    struct wire_view blob;
    int err;

    blob = wire_get_string(r);
    if (r->error)
        return r->error;
    if ((err = key_from_blob(blob.ptr, blob.len, out)) != 0)
        return err;
    if ((*out)->kind != ki->kind || !(*out)->is_cert)
        return KW_ERR_BAD_KEY;
    return 0;
}

int key_from_private(struct wire_reader *r, struct key **out)
{
    struct wire_view name;
    const struct kind_info *ki;
    struct key *k = NULL, *cert = NULL;
    bool is_cert = false;
    int err;

    *out = NULL;
    name = wire_get_string(r);
    if (r->error)
        return r->error;
    if ((ki = info_by_name(name, &is_cert)) == NULL)
        return KW_ERR_KEY_TYPE;
    if (!key_kind_supported(ki->kind))
        return KW_ERR_NO_SUPPORT;
    if ((k = key_alloc(ki->kind)) == NULL)
        return KW_ERR_ALLOC;
    k->is_cert = is_cert;
    k->has_private = true;
    if (is_cert && (err = read_private_cert(ki, r, &cert)) != 0)
        goto out;
    if ((err = read_private_fields(ki, cert, r, k)) != 0)
        goto out;
    if ((err = plain_blob_of(ki, k, &k->plain_blob, &k->plain_blob_len)) != 0)
        goto out;
    if (!is_cert) {
        k->blob = k->plain_blob;
        k->blob_len = k->plain_blob_len;
    } else if (!key_equal_public(k, cert)) {
        err = KW_ERR_BAD_KEY; /* the private key must be the certificate's key */
    } else {
        k->cert = cert->cert; /* the certificate's fields now belong to k */
        cert->cert = NULL;
        err = copy_out((struct wire_view){cert->blob, cert->blob_len}, &k->blob, &k->blob_len);
    }
out:
    key_free(cert);
    if (err != 0) {
        key_free(k);
        return err;
    }
    *out = k;
    return 0;
}

int key_private_serialize(const struct key *k, struct wire_writer *w)
{
    const struct kind_info *ki = info_of(k->kind);
    uint8_t seed[32], pk[ED25519_PK_LEN];
    size_t slen = sizeof(seed), plen = sizeof(pk);
    struct wire_reader r;
    int err;

    if (ki == NULL || !k->has_private || k->is_cert)
        return KW_ERR_KEY_TYPE;
    wire_put_cstring(w, ki->name);
    if (kind_is_sk(ki->kind)) {
        /* The public fields are the plain blob's after the name; then the FIDO fields. */
        wire_reader_init(&r, k->plain_blob, k->plain_blob_len);
        (void)wire_get_string(&r);
        wire_put_bytes(w, r.data + r.pos, wire_remaining(&r));
        wire_put_u8(w, k->sk_flags);
        wire_put_string(w, k->sk_key_handle, k->sk_key_handle_len);
        wire_put_u32(w, 0); /* reserved: empty */
        return w->error;
    }
    if (ki->kind == KEY_MLDSA44_ED25519)
        return put_composite_private(k, w);
    if (ki->kind == KEY_ED25519) {
        if (EVP_PKEY_get_raw_private_key(k->pkey, seed, &slen) != 1 ||
            EVP_PKEY_get_raw_public_key(k->pkey, pk, &plen) != 1)
            return KW_ERR_INTERNAL;
        wire_put_string(w, pk, plen);
        wire_put_u32(w, ED25519_SK_LEN);
        wire_put_bytes(w, seed, slen);
        wire_put_bytes(w, pk, plen);
        kw_memzero(seed, sizeof(seed));
        return w->error;
    }
    if (is_ecdsa(ki->kind)) {
        /* Public fields are the tail of the plain blob after the name. */
        wire_reader_init(&r, k->plain_blob, k->plain_blob_len);
        (void)wire_get_string(&r);
        wire_put_bytes(w, r.data + r.pos, wire_remaining(&r));
        return put_bn_param(w, k->pkey, OSSL_PKEY_PARAM_PRIV_KEY);
    }
    if ((err = put_bn_param(w, k->pkey, OSSL_PKEY_PARAM_RSA_N)) != 0 ||
        (err = put_bn_param(w, k->pkey, OSSL_PKEY_PARAM_RSA_E)) != 0 ||
        (err = put_bn_param(w, k->pkey, OSSL_PKEY_PARAM_RSA_D)) != 0 ||
        (err = put_bn_param(w, k->pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1)) != 0 ||
        (err = put_bn_param(w, k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR1)) != 0 ||
        (err = put_bn_param(w, k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR2)) != 0)
        return err;
    return w->error;
}

int key_generate(enum key_kind kind, unsigned bits, struct key **out)
{
    const struct kind_info *ki = info_of(kind);
    struct key *k;
    int err;

    *out = NULL;
    if (ki == NULL)
        return KW_ERR_KEY_TYPE;
    if ((k = key_alloc(kind)) == NULL)
        return KW_ERR_ALLOC;
    k->has_private = true;
    if (kind == KEY_MLDSA44_ED25519) {
        if ((err = composite_generate(k)) != 0) {
            key_free(k);
            return err;
        }
    } else if (is_ed25519(kind))
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else if (is_ecdsa(kind))
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ki->group);
    else if (bits >= KEY_RSA_MIN_BITS && bits <= KEY_RSA_MAX_BITS)
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (k->pkey == NULL) {
        key_free(k);
        return KW_ERR_INTERNAL;
    }
    if (kind_is_sk(kind)) {
        /*
         * Tests and the probe only: a FIDO key whose handle no authenticator
         * knows (random bytes), for the application "ssh:", touch required.
         */
        k->sk_flags = KEY_SK_USER_PRESENCE_REQD;
        k->sk_key_handle_len = 32;
        if ((k->sk_application = strdup("ssh:")) == NULL ||
            (k->sk_key_handle = malloc(k->sk_key_handle_len)) == NULL ||
            RAND_bytes(k->sk_key_handle, (int)k->sk_key_handle_len) != 1) {
            key_free(k);
            return KW_ERR_ALLOC;
        }
    }
    if ((err = plain_blob_of(ki, k, &k->blob, &k->blob_len)) != 0) {
        key_free(k);
        return err;
    }
    k->plain_blob = k->blob;
    k->plain_blob_len = k->blob_len;
    *out = k;
    return 0;
}

/* ---- signatures ---- */

static const char *ecdsa_digest(enum key_kind kind)
{
    const struct kind_info *ki = info_of(kind);

    return ki ? ki->digest : NULL;
}

/* ---- Prepared signing contexts ---- */

/*
 * Setting a signature up costs more than an ECDSA P-256 signature's tenth:
 * EVP_DigestSignInit_ex() fetches the digest and the signature algorithm and
 * builds a new EVP_PKEY_CTX and provider context every time (issue 20
 * measured key_sign() at 0.79 of `openssl speed` for ECDSA). So each key
 * keeps contexts prepared once per digest, and a signature is what
 * `openssl speed` times: the hash, then EVP_PKEY_sign() (EVP_DigestSign()
 * on an initialised context for Ed25519, which hashes inside).
 *
 * A context holds references to the key's EVP_PKEY, never a copy of its
 * secret: the private parts stay where key_from_private() put them (the
 * secure heap), and everything a context allocates goes through the
 * clearing allocator above. A context is used by one thread at a time (the
 * pool hands it out whole). One that failed is freed, never given back:
 * after an allocation failure inside OpenSSL its state is not trusted
 * (docs/security.md, "Allocation failures").
 */
struct sign_ctx {
    EVP_MD *md;           /* ECDSA and RSA: the signature's digest */
    EVP_MD_CTX *hash;     /* ECDSA and RSA: reused for each digest */
    EVP_MD_CTX *ed;       /* Ed25519: initialised for EVP_DigestSign() */
    EVP_PKEY_CTX *sign;   /* ECDSA and RSA: initialised for EVP_PKEY_sign() */
    EVP_PKEY_CTX *verify; /* RSA: initialised for EVP_PKEY_verify(), the guard */
};

static void sign_ctx_free(struct sign_ctx *c)
{
    if (c == NULL)
        return;
    EVP_PKEY_CTX_free(c->verify);
    EVP_PKEY_CTX_free(c->sign);
    EVP_MD_CTX_free(c->ed);
    EVP_MD_CTX_free(c->hash);
    EVP_MD_free(c->md);
    free(c);
}

void key_sign_contexts_drop(const struct key *k)
{
    int v, i;

    for (v = 0; v < SIGN_VARIANTS; v++)
        for (i = 0; i < SIGN_SLOTS; i++)
            sign_ctx_free(atomic_exchange(&k->sign_pool->idle[v][i], NULL));
}

static void sign_pool_free(struct key_sign_pool *pool)
{
    int v, i;

    if (pool == NULL)
        return;
    for (v = 0; v < SIGN_VARIANTS; v++)
        for (i = 0; i < SIGN_SLOTS; i++)
            sign_ctx_free(atomic_exchange(&pool->idle[v][i], NULL));
    free(pool);
}

static int pkey_ctx_prepare(EVP_PKEY *pkey, const EVP_MD *md, bool rsa, bool sign,
                            EVP_PKEY_CTX **out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    *out = ctx;
    if (ctx == NULL)
        return KW_ERR_ALLOC;
    if ((sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) != 1 ||
        (rsa && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) ||
        EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
        return KW_ERR_INTERNAL;
    return 0;
}

/* A new context for k and digest mdname (NULL for Ed25519). */
static int sign_ctx_new(const struct key *k, const char *mdname, struct sign_ctx **out)
{
    struct sign_ctx *c = calloc(1, sizeof(*c));
    bool rsa = k->kind == KEY_RSA;
    int r = KW_ERR_ALLOC;

    *out = NULL;
    if (c == NULL)
        return KW_ERR_ALLOC;
    if (k->kind == KEY_ED25519) {
        if ((c->ed = EVP_MD_CTX_new()) == NULL)
            goto out;
        r = KW_ERR_INTERNAL;
        if (EVP_DigestSignInit_ex(c->ed, NULL, NULL, NULL, NULL, k->pkey, NULL) != 1)
            goto out;
    } else {
        if ((c->md = EVP_MD_fetch(NULL, mdname, NULL)) == NULL ||
            (c->hash = EVP_MD_CTX_new()) == NULL)
            goto out;
        if ((r = pkey_ctx_prepare(k->pkey, c->md, rsa, true, &c->sign)) != 0 ||
            (rsa && (r = pkey_ctx_prepare(k->pkey, c->md, rsa, false, &c->verify)) != 0))
            goto out;
    }
    *out = c;
    c = NULL;
    r = 0;
out:
    sign_ctx_free(c);
    return r;
}

static int sign_ctx_take(const struct key *k, int variant, const char *mdname,
                         struct sign_ctx **out)
{
    int i;

    for (i = 0; i < SIGN_SLOTS; i++)
        if ((*out = atomic_exchange(&k->sign_pool->idle[variant][i], NULL)) != NULL)
            return 0;
    return sign_ctx_new(k, mdname, out);
}

static void sign_ctx_give_back(const struct key *k, int variant, struct sign_ctx *c)
{
    struct sign_ctx *empty;
    int i;

    for (i = 0; i < SIGN_SLOTS; i++) {
        empty = NULL;
        if (atomic_compare_exchange_strong(&k->sign_pool->idle[variant][i], &empty, c))
            return;
    }
    sign_ctx_free(c);
}

/*
 * Signs data with a prepared context into sig (cap bytes). A context with
 * a verify half checks the signature before it counts (RSA; unused since
 * RSA signs with fresh contexts, rsa_sign()).
 */
static int prepared_sign(struct sign_ctx *c, const uint8_t *data, size_t len, uint8_t *sig,
                         size_t cap, size_t *siglen)
{
    uint8_t dgst[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;

    *siglen = cap;
    /*
     * OpenSSL 3.2 and later refuse a second one-shot signature on the same
     * context (it is marked finalised); initialising it again without a key
     * keeps the key and the provider's context, and costs no fetch.
     */
    if (c->ed != NULL)
        return EVP_DigestSignInit_ex(c->ed, NULL, NULL, NULL, NULL, NULL, NULL) == 1 &&
                       EVP_DigestSign(c->ed, sig, siglen, data, len) == 1 && *siglen <= cap
                   ? 0
                   : KW_ERR_INTERNAL;
    if (EVP_DigestInit_ex2(c->hash, c->md, NULL) != 1 ||
        EVP_DigestUpdate(c->hash, data, len) != 1 || EVP_DigestFinal_ex(c->hash, dgst, &dlen) != 1)
        return KW_ERR_INTERNAL;
    /* A length beyond the buffer is no signature (raw_sign() says why). */
    if (EVP_PKEY_sign(c->sign, sig, siglen, dgst, dlen) != 1 || *siglen > cap)
        return KW_ERR_INTERNAL;
    if (c->verify != NULL && EVP_PKEY_verify(c->verify, sig, *siglen, dgst, dlen) != 1)
        return KW_ERR_INTERNAL;
    return 0;
}

/*
 * Raw libcrypto signature of data with digest md (NULL for Ed25519), with a
 * context made for it: RSA keys (see key_sign()) and the composite key's
 * Ed25519 half.
 */
static int raw_sign(EVP_PKEY *pkey, const char *md, const uint8_t *data, size_t len, uint8_t **sig,
                    size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int r = KW_ERR_INTERNAL;
    size_t size;

    *sig = NULL;
    if (ctx == NULL)
        return KW_ERR_ALLOC;
    if (EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) != 1)
        goto out;
    if (EVP_DigestSign(ctx, NULL, siglen, data, len) != 1)
        goto out;
    size = *siglen;
    if ((*sig = malloc(size)) == NULL) {
        r = KW_ERR_ALLOC;
        goto out;
    }
    /*
     * A length beyond the buffer is no signature. OpenSSL 3.0's ECDSA
     * stores i2d_ECDSA_SIG()'s result as the length and reports success
     * even when that is -1 (its encoder could not allocate), with nothing
     * written: valgrind showed the DER parse below reading bytes that
     * EVP_DigestSign() had not written, only in runs with an allocation
     * failed (docs/security.md, "Allocation failures").
     */
    if (EVP_DigestSign(ctx, *sig, siglen, data, len) != 1 || *siglen > size) {
        free(*sig);
        *sig = NULL;
        goto out;
    }
    r = 0;
out:
    EVP_MD_CTX_free(ctx);
    return r;
}

static int raw_verify(EVP_PKEY *pkey, const char *md, const uint8_t *sig, size_t siglen,
                      const uint8_t *data, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int r = KW_ERR_BAD_SIG;

    if (ctx == NULL)
        return KW_ERR_ALLOC;
    if (EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) == 1 &&
        EVP_DigestVerify(ctx, sig, siglen, data, len) == 1)
        r = 0;
    EVP_MD_CTX_free(ctx);
    return r;
}

static void put_bn(struct wire_writer *w, const BIGNUM *bn)
{
    uint8_t buf[80]; /* ECDSA r and s: at most 66 bytes for P-521 */
    int len = BN_num_bytes(bn);

    if (len < 0 || (size_t)len > sizeof(buf)) {
        if (w->error == 0)
            w->error = KW_ERR_INTERNAL;
        return;
    }
    BN_bn2bin(bn, buf);
    wire_put_mpint_unsigned(w, buf, (size_t)len);
}

/*
 * RSA with a context made for each signature, as before issue 20. Prepared
 * RSA contexts were measured (their setup is 1-2% of an RSA-2048
 * signature), but with them the allocations of one RSA signature varied
 * from run to run after injected allocation failures (oom_selftest: 60 in
 * the reference run, 62 in later ones), so that not every allocation could
 * be shown failed exactly once; the prepared ECDSA and Ed25519 contexts
 * repeat exactly. The signature is verified before it goes out: once an
 * allocation had failed inside OpenSSL 3.0's RSA signing, later signatures
 * with the same key could come back as made and not verify
 * (tests/oom/oom_dispatch.c). Verifying (with e) costs about 6% of an
 * RSA-2048 signature, 1.5% of RSA-4096's (docs/performance.md).
 */
static int rsa_sign(const struct key *k, const char *alg, const char *md, const uint8_t *data,
                    size_t len, struct wire_writer *w)
{
    uint8_t *sig = NULL;
    size_t siglen = 0;
    int r;

    if ((r = raw_sign(k->pkey, md, data, len, &sig, &siglen)) != 0)
        return r;
    if (raw_verify(k->pkey, md, sig, siglen, data, len) != 0) {
        free(sig);
        return KW_ERR_INTERNAL;
    }
    wire_put_cstring(w, alg);
    wire_put_string(w, sig, siglen);
    free(sig);
    return w->error;
}

int key_sign(const struct key *k, const uint8_t *data, size_t len, uint32_t flags,
             struct wire_writer *w)
{
    const struct kind_info *ki = info_of(k->kind);
    /* The largest signature: an RSA one of KEY_RSA_MAX_BITS; ECDSA's DER is smaller. */
    uint8_t sig[KEY_RSA_MAX_BITS / 8];
    struct sign_ctx *c = NULL;
    const uint8_t *der;
    size_t siglen = 0, mark;
    ECDSA_SIG *esig = NULL;
    const BIGNUM *br, *bs;
    const char *alg = ki ? ki->name : NULL, *md = NULL;
    int r, variant = 0; /* one digest per ECDSA curve: always 0 */

    /* A FIDO key's private key is in its authenticator: the agent asks a helper. */
    if (ki == NULL || !k->has_private || kind_is_sk(k->kind))
        return KW_ERR_KEY_TYPE;
    if (k->kind == KEY_MLDSA44_ED25519)
        return composite_sign(k, data, len, w);
    if (is_ecdsa(k->kind))
        md = ecdsa_digest(k->kind);
    else if (k->kind == KEY_RSA) {
        /* SHA-256 wins if a client sets both bits, as OpenSSH's agent does. */
        if (flags & KEY_SIGN_RSA_SHA2_256) {
            alg = "rsa-sha2-256";
            md = "SHA256";
        } else if (flags & KEY_SIGN_RSA_SHA2_512) {
            alg = "rsa-sha2-512";
            md = "SHA512";
        } else {
            alg = "ssh-rsa";
            md = "SHA1";
        }
        return rsa_sign(k, alg, md, data, len, w);
    }
    if ((r = sign_ctx_take(k, variant, md, &c)) != 0)
        return r;
    if ((r = prepared_sign(c, data, len, sig, sizeof(sig), &siglen)) != 0) {
        sign_ctx_free(c);
        return r;
    }
    sign_ctx_give_back(k, variant, c);
    wire_put_cstring(w, alg);
    if (is_ecdsa(k->kind)) {
        der = sig;
        if ((esig = d2i_ECDSA_SIG(NULL, &der, (long)siglen)) == NULL)
            return KW_ERR_INTERNAL;
        ECDSA_SIG_get0(esig, &br, &bs);
        mark = wire_begin_string(w);
        put_bn(w, br);
        put_bn(w, bs);
        wire_end_string(w, mark);
        ECDSA_SIG_free(esig);
    } else
        wire_put_string(w, sig, siglen);
    return w->error;
}

int key_signature_algorithm(const uint8_t *sig, size_t siglen, char *buf, size_t bufsize)
{
    struct wire_reader r;
    struct wire_view alg;

    wire_reader_init(&r, sig, siglen);
    alg = wire_get_string(&r);
    if (r.error)
        return r.error;
    if (alg.len + 1 > bufsize)
        return KW_ERR_TOO_LARGE;
    memcpy(buf, alg.ptr, alg.len);
    buf[alg.len] = '\0';
    return 0;
}

static int verify_ecdsa(const struct key *k, struct wire_view blob, const uint8_t *data, size_t len)
{
    struct wire_reader r;
    struct wire_view rv, sv;
    ECDSA_SIG *esig = NULL;
    BIGNUM *br = NULL, *bs = NULL;
    uint8_t *der = NULL;
    int derlen, err = KW_ERR_BAD_SIG;

    wire_reader_from_view(&r, blob);
    rv = wire_get_mpint_unsigned(&r);
    sv = wire_get_mpint_unsigned(&r);
    if (wire_reader_finish(&r) != 0 || rv.len == 0 || sv.len == 0 || rv.len > 66 || sv.len > 66)
        return KW_ERR_BAD_SIG;
    if ((esig = ECDSA_SIG_new()) == NULL || (br = bn_from_view(rv, false)) == NULL ||
        (bs = bn_from_view(sv, false)) == NULL) {
        err = KW_ERR_ALLOC;
        goto out;
    }
    if (!ECDSA_SIG_set0(esig, br, bs))
        goto out;
    br = bs = NULL; /* owned by esig */
    if ((derlen = i2d_ECDSA_SIG(esig, &der)) <= 0)
        goto out;
    err = raw_verify(k->pkey, ecdsa_digest(k->kind), der, (size_t)derlen, data, len);
out:
    OPENSSL_free(der);
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(esig);
    return err;
}

static int verify_rsa(const struct key *k, struct wire_view alg, struct wire_view sig,
                      const uint8_t *data, size_t len)
{
    const char *md;
    size_t modlen = (size_t)EVP_PKEY_get_size(k->pkey);
    uint8_t *padded;
    int err;

    if (wire_view_eq_str(alg, "rsa-sha2-256"))
        md = "SHA256";
    else if (wire_view_eq_str(alg, "rsa-sha2-512"))
        md = "SHA512";
    else if (wire_view_eq_str(alg, "ssh-rsa"))
        md = "SHA1";
    else
        return KW_ERR_BAD_SIG;
    if (sig.len == 0 || sig.len > modlen)
        return KW_ERR_BAD_SIG;
    if (sig.len == modlen)
        return raw_verify(k->pkey, md, sig.ptr, sig.len, data, len);
    /* Some signers drop leading zero bytes; libcrypto wants the full width. */
    if ((padded = calloc(1, modlen)) == NULL)
        return KW_ERR_ALLOC;
    memcpy(padded + (modlen - sig.len), sig.ptr, sig.len);
    err = raw_verify(k->pkey, md, padded, modlen, data, len);
    free(padded);
    return err;
}

int key_sk_signed_message(const char *application, uint8_t flags, uint32_t counter,
                          const uint8_t *data, size_t len, uint8_t out[KEY_SK_SIGNED_LEN])
{
    unsigned int n = 32;

    if (EVP_Digest(application, strlen(application), out, &n, EVP_sha256(), NULL) != 1)
        return KW_ERR_INTERNAL;
    out[32] = flags;
    wire_poke_u32(out + 33, counter);
    n = 32;
    if (EVP_Digest(data, len, out + 37, &n, EVP_sha256(), NULL) != 1)
        return KW_ERR_INTERNAL;
    return 0;
}

/* A FIDO key's signature: string alg, string sig, uint8 flags, uint32 counter. */
static int verify_sk(const struct key *k, const struct kind_info *ki, const uint8_t *sigblob,
                     size_t siglen, const uint8_t *data, size_t len)
{
    uint8_t msg[KEY_SK_SIGNED_LEN];
    struct wire_reader r;
    struct wire_view alg, sig;
    uint8_t flags;
    uint32_t counter;
    int err;

    wire_reader_init(&r, sigblob, siglen);
    alg = wire_get_string(&r);
    sig = wire_get_string(&r);
    flags = wire_get_u8(&r);
    counter = wire_get_u32(&r);
    if (wire_reader_finish(&r) != 0 || !wire_view_eq_str(alg, ki->name))
        return KW_ERR_BAD_SIG;
    if ((err = key_sk_signed_message(k->sk_application, flags, counter, data, len, msg)) != 0)
        return err;
    if (is_ed25519(k->kind)) {
        if (sig.len != ED25519_SIG_LEN)
            return KW_ERR_BAD_SIG;
        return raw_verify(k->pkey, NULL, sig.ptr, sig.len, msg, sizeof(msg));
    }
    return verify_ecdsa(k, sig, msg, sizeof(msg));
}

int key_verify(const struct key *k, const uint8_t *sigblob, size_t siglen, const uint8_t *data,
               size_t len)
{
    const struct kind_info *ki = info_of(k->kind);
    struct wire_reader r;
    struct wire_view alg, sig;

    if (ki == NULL)
        return KW_ERR_KEY_TYPE;
    if (kind_is_sk(k->kind))
        return verify_sk(k, ki, sigblob, siglen, data, len);
    wire_reader_init(&r, sigblob, siglen);
    alg = wire_get_string(&r);
    sig = wire_get_string(&r);
    if (wire_reader_finish(&r) != 0)
        return KW_ERR_BAD_SIG;
    if (k->kind == KEY_RSA)
        return verify_rsa(k, alg, sig, data, len);
    if (!wire_view_eq_str(alg, ki->name))
        return KW_ERR_BAD_SIG;
    if (k->kind == KEY_MLDSA44_ED25519)
        return composite_verify(k, sig, data, len);
    if (k->kind == KEY_ED25519) {
        if (sig.len != ED25519_SIG_LEN)
            return KW_ERR_BAD_SIG;
        return raw_verify(k->pkey, NULL, sig.ptr, sig.len, data, len);
    }
    return verify_ecdsa(k, sig, data, len);
}

/* ---- names and fingerprints ---- */

const char *key_type_name(const struct key *k)
{
    const struct kind_info *ki = info_of(k->kind);

    if (ki == NULL)
        return "unknown";
    return k->is_cert ? ki->cert_name : ki->name;
}

const char *key_short_name(const struct key *k)
{
    const struct kind_info *ki = info_of(k->kind);

    if (ki == NULL)
        return "UNKNOWN";
    return k->is_cert ? ki->short_cert_name : ki->short_name;
}

bool key_equal(const struct key *a, const struct key *b)
{
    return a->blob_len == b->blob_len && memcmp(a->blob, b->blob, a->blob_len) == 0;
}

bool key_equal_public(const struct key *a, const struct key *b)
{
    return a->plain_blob_len == b->plain_blob_len &&
           memcmp(a->plain_blob, b->plain_blob, a->plain_blob_len) == 0;
}

bool key_algorithm_matches(const struct key *k, struct wire_view alg)
{
    static const char *const rsa_plain[] = {"ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"};
    static const char *const rsa_cert[] = {"ssh-rsa-cert-v01@openssh.com",
                                           "rsa-sha2-256-cert-v01@openssh.com",
                                           "rsa-sha2-512-cert-v01@openssh.com"};
    size_t i;

    if (k->kind != KEY_RSA)
        return wire_view_eq_str(alg, key_type_name(k));
    for (i = 0; i < 3; i++)
        if (wire_view_eq_str(alg, k->is_cert ? rsa_cert[i] : rsa_plain[i]))
            return true;
    return false;
}

bool key_ca_sig_alg_allowed(const char *alg)
{
    /* OpenSSH's SSH_ALLOWED_CA_SIGALGS. */
    static const char *const allowed[] = {"ssh-ed25519",
                                          "ecdsa-sha2-nistp256",
                                          "ecdsa-sha2-nistp384",
                                          "ecdsa-sha2-nistp521",
                                          "sk-ssh-ed25519@openssh.com",
                                          "sk-ecdsa-sha2-nistp256@openssh.com",
                                          "rsa-sha2-512",
                                          "rsa-sha2-256",
                                          COMPOSITE_NAME};
    size_t i;

    for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (strcmp(alg, allowed[i]) == 0)
            return true;
    return false;
}

bool key_cert_valid_for_host(const struct key *k, const char *hostname, uint64_t now)
{
    struct wire_reader r;
    struct wire_view p;
    char name[256];

    if (!k->is_cert || k->cert == NULL || k->cert->type != KEY_CERT_HOST || hostname == NULL)
        return false;
    if (now < k->cert->valid_after || now >= k->cert->valid_before)
        return false;
    /*
     * As OpenSSH checks host certificates (sshkey_cert_check_host()): no
     * critical options (none is defined for host certificates, and one not
     * understood must not be ignored), and a CA signature made with an
     * algorithm OpenSSH accepts for CAs, which excludes SHA-1 "ssh-rsa".
     */
    if (k->cert->critical_len != 0 || !key_ca_sig_alg_allowed(k->cert->sig_alg))
        return false;
    /* A host certificate must name its host: no principals means no match. */
    wire_reader_init(&r, k->cert->principals, k->cert->principals_len);
    while (wire_remaining(&r) > 0) {
        p = wire_get_string(&r);
        if (r.error || p.len >= sizeof(name) || memchr(p.ptr, '\0', p.len) != NULL)
            return false;
        memcpy(name, p.ptr, p.len);
        name[p.len] = '\0';
        if (match_glob(hostname, name))
            return true;
    }
    return false;
}

/* ---- the secure heap's room ---- */

/*
 * The secure heap's size as key_secure_heap_init() set it up: OpenSSL does
 * not tell it. (It was once measured as the largest block the empty heap
 * would hand out; freeing that block clears it, which touched every page of
 * the heap: 8 MiB more resident memory from the first ADD on.)
 */
static size_t secure_heap_bytes;

int key_secure_heap_init(size_t size, size_t minsize)
{
    int r = CRYPTO_secure_malloc_init(size, minsize);

    if (r != 0)
        secure_heap_bytes = size;
    return r;
}

bool key_secure_heap_has_room(size_t *used, size_t *size)
{
    size_t reserve;

    *used = 0;
    *size = CRYPTO_secure_malloc_initialized() ? secure_heap_bytes : 0;
    if (*size == 0)
        return true; /* no secure heap: keys are in ordinary memory, no reserve to keep */
    *used = CRYPTO_secure_used();
    reserve = *size / KEY_SECURE_HEAP_RESERVE_DIV;
    return *used + reserve <= *size;
}
