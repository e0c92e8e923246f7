/*
 * keyward tests: a software authenticator behind OpenSSH's security-key
 * middleware interface (API 0x000a0000), so that the sk tests run with
 * the real ssh-keygen, ssh-add, ssh and sshd and no hardware.
 *
 * What it does, as a FIDO authenticator would:
 *   sk_enroll  makes a new ECDSA P-256 or Ed25519 key, keeps the private
 *              half in the credential file, and returns the public key and
 *              a random key handle that names it there;
 *   sk_sign    finds the key by its handle, checks it was made for the same
 *              application, and signs
 *                  SHA256(application) || flags || counter || SHA256(data)
 *              as an authenticator signs authenticatorData || clientDataHash
 *              (ECDSA with SHA-256; Ed25519 over the bytes themselves);
 *   sk_load_resident_keys  has no resident keys: it returns none.
 *
 * The credential file is named by SOFT_SK_STORE in the environment of the
 * process that loads the library (ssh-keygen's ssh-sk-helper, or an agent's
 * helper). One line per key: "soft-sk ALG HANDLE APPLICATION DER", with
 * the handle, the application and the private key in hex. A test file,
 * not a key store: the private keys are in it in the clear.
 *
 * The counter is the number of signatures this file has made, kept in
 * SOFT_SK_STORE.counter. A user-presence key reports the touch (flags bit
 * 0x01); a key made with no-touch-required reports none, as an
 * authenticator does when asked not to test presence.
 *
 * Built several times from this one source (tests/sk/CMakeLists.txt), each
 * misbehaving in sk_sign in one way, chosen by SOFT_SK_MISBEHAVE:
 *   0  good;  1  abort();  2  never return;  3  return 0 with a malformed
 *   response (a signature of the wrong length, and for ECDSA no s);
 *   4  a well-formed signature over other bytes, which does not verify.
 * sk_enroll behaves in every variant, so each can make its keys.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#define SOFT_SK_EXPORT __declspec(dllexport)
#else
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#define SOFT_SK_EXPORT __attribute__((visibility("default")))
#endif

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#ifndef SOFT_SK_MISBEHAVE
#define SOFT_SK_MISBEHAVE 0
#endif

/* The middleware interface's facts: OpenSSH's sk-api.h at major 0x000a. */
#define SK_VERSION_MAJOR        0x000a0000u
#define SK_ALG_ECDSA            0x00
#define SK_ALG_ED25519          0x01
#define SK_USER_PRESENCE_REQD   0x01
#define SK_ERR_GENERAL          (-1)
#define SK_ERR_UNSUPPORTED      (-2)
#define SK_ERR_DEVICE_NOT_FOUND (-4)

struct sk_enroll_response {
    uint8_t flags;
    uint8_t *public_key;
    size_t public_key_len;
    uint8_t *key_handle;
    size_t key_handle_len;
    uint8_t *signature;
    size_t signature_len;
    uint8_t *attestation_cert;
    size_t attestation_cert_len;
    uint8_t *authdata;
    size_t authdata_len;
};

struct sk_sign_response {
    uint8_t flags;
    uint32_t counter;
    uint8_t *sig_r;
    size_t sig_r_len;
    uint8_t *sig_s;
    size_t sig_s_len;
};

struct sk_resident_key {
    uint32_t alg;
    size_t slot;
    char *application;
    struct sk_enroll_response key;
    uint8_t flags;
    uint8_t *user_id;
    size_t user_id_len;
};

struct sk_option {
    char *name;
    char *value;
    uint8_t required;
};

SOFT_SK_EXPORT uint32_t sk_api_version(void);
SOFT_SK_EXPORT int sk_enroll(uint32_t alg, const uint8_t *challenge, size_t challenge_len,
                             const char *application, uint8_t flags, const char *pin,
                             struct sk_option **options,
                             struct sk_enroll_response **enroll_response);
SOFT_SK_EXPORT int sk_sign(uint32_t alg, const uint8_t *data, size_t data_len,
                           const char *application, const uint8_t *key_handle,
                           size_t key_handle_len, uint8_t flags, const char *pin,
                           struct sk_option **options, struct sk_sign_response **sign_response);
SOFT_SK_EXPORT int sk_load_resident_keys(const char *pin, struct sk_option **options,
                                         struct sk_resident_key ***rks, size_t *nrks);

#define HANDLE_LEN   32
#define LINE_MAX_LEN 8192

static void say(const char *what)
{
    fprintf(stderr, "soft_sk: %s\n", what);
}

static const char *store_path(void)
{
    const char *path = getenv("SOFT_SK_STORE");

    if (path == NULL || *path == '\0') {
        say("SOFT_SK_STORE is not set: no credential file");
        return NULL;
    }
    return path;
}

static char *to_hex(const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(len * 2 + 1);

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[len * 2] = '\0';
    return s;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes hex into a new buffer; NULL on a bad digit or an odd length. */
static uint8_t *from_hex(const char *s, size_t *len)
{
    size_t n = strlen(s);
    uint8_t *p;

    if (n % 2 != 0)
        return NULL;
    if ((p = malloc(n / 2 + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(p);
            return NULL;
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return p;
}

/* The public key as the interface carries it: Ed25519's 32 bytes, or P-256's uncompressed point. */
static int public_bytes(EVP_PKEY *pkey, uint32_t alg, uint8_t **out, size_t *out_len)
{
    size_t len = 0;

    if (alg == SK_ALG_ED25519) {
        if (EVP_PKEY_get_raw_public_key(pkey, NULL, &len) != 1 || len != 32)
            return -1;
        if ((*out = malloc(len)) == NULL)
            return -1;
        if (EVP_PKEY_get_raw_public_key(pkey, *out, &len) != 1)
            return -1;
    } else {
        if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0,
                                            &len) != 1 ||
            len != 65)
            return -1;
        if ((*out = malloc(len)) == NULL)
            return -1;
        if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, *out, len,
                                            &len) != 1)
            return -1;
    }
    *out_len = len;
    return 0;
}

static EVP_PKEY *new_key(uint32_t alg)
{
    if (alg == SK_ALG_ED25519)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* Appends one credential line in a single write, so concurrent users see whole lines. */
static int store_append(uint32_t alg, const uint8_t *handle, const char *application,
                        EVP_PKEY *pkey)
{
    const char *path = store_path();
    unsigned char *der = NULL;
    char *hhex = NULL, *ahex = NULL, *dhex = NULL, *line = NULL;
    int der_len, ret = -1;
    size_t line_len;
    FILE *f = NULL;

    if (path == NULL)
        return -1;
    if ((der_len = i2d_PrivateKey(pkey, &der)) <= 0)
        goto out;
    hhex = to_hex(handle, HANDLE_LEN);
    ahex = to_hex((const uint8_t *)application, strlen(application));
    dhex = to_hex(der, (size_t)der_len);
    if (hhex == NULL || ahex == NULL || dhex == NULL)
        goto out;
    line_len = strlen(hhex) + strlen(ahex) + strlen(dhex) + 32;
    if (line_len > LINE_MAX_LEN || (line = malloc(line_len)) == NULL)
        goto out;
    snprintf(line, line_len, "soft-sk %u %s %s %s\n", (unsigned)alg, hhex, ahex, dhex);
    if ((f = fopen(path, "a")) == NULL) {
        say("cannot open the credential file for appending");
        goto out;
    }
    if (fputs(line, f) == EOF || fflush(f) != 0)
        goto out;
    ret = 0;
out:
    if (f != NULL && fclose(f) != 0)
        ret = -1;
    if (der != NULL)
        OPENSSL_clear_free(der, (size_t)(der_len > 0 ? der_len : 0));
    free(hhex);
    free(ahex);
    if (dhex != NULL) {
        OPENSSL_cleanse(dhex, strlen(dhex));
        free(dhex);
    }
    if (line != NULL) {
        OPENSSL_cleanse(line, strlen(line));
        free(line);
    }
    return ret;
}

/*
 * Finds the key whose handle is given and that was made for application
 * and alg. SK_ERR_DEVICE_NOT_FOUND when no line matches, as an
 * authenticator that does not know a credential says.
 */
static int store_find(uint32_t alg, const uint8_t *handle, size_t handle_len,
                      const char *application, EVP_PKEY **pkey)
{
    const char *path = store_path();
    char *line = NULL, *hhex = NULL, *ahex = NULL;
    int ret = SK_ERR_DEVICE_NOT_FOUND;
    FILE *f = NULL;

    *pkey = NULL;
    if (path == NULL || handle_len != HANDLE_LEN)
        return SK_ERR_DEVICE_NOT_FOUND;
    hhex = to_hex(handle, handle_len);
    ahex = to_hex((const uint8_t *)application, strlen(application));
    line = malloc(LINE_MAX_LEN);
    if (hhex == NULL || ahex == NULL || line == NULL) {
        ret = SK_ERR_GENERAL;
        goto out;
    }
    if ((f = fopen(path, "r")) == NULL)
        goto out;
    while (fgets(line, LINE_MAX_LEN, f) != NULL) {
        char *save = NULL, *tag, *alg_s, *h, *a, *d;
        tag = strtok_r(line, " \n", &save);
        alg_s = strtok_r(NULL, " \n", &save);
        h = strtok_r(NULL, " \n", &save);
        a = strtok_r(NULL, " \n", &save);
        d = strtok_r(NULL, " \n", &save);
        if (tag == NULL || strcmp(tag, "soft-sk") != 0 || alg_s == NULL || h == NULL || a == NULL ||
            d == NULL)
            continue;
        if (strcmp(h, hhex) != 0)
            continue;
        if (strcmp(a, ahex) != 0 || strtoul(alg_s, NULL, 10) != alg) {
            say("key handle made for another application or algorithm");
            break;
        }
        size_t der_len;
        uint8_t *der = from_hex(d, &der_len);
        if (der != NULL) {
            const unsigned char *p = der;
            *pkey = d2i_AutoPrivateKey(NULL, &p, (long)der_len);
            OPENSSL_clear_free(der, der_len);
        }
        ret = *pkey != NULL ? 0 : SK_ERR_GENERAL;
        break;
    }
out:
    if (f != NULL)
        fclose(f);
    if (line != NULL) {
        OPENSSL_cleanse(line, LINE_MAX_LEN);
        free(line);
    }
    free(hhex);
    free(ahex);
    return ret;
}

/* The next signature counter, kept beside the credential file (locked on Unix). */
static uint32_t next_counter(void)
{
    const char *path = store_path();
    char name[4096];
    uint32_t counter = 0;
    FILE *f;

    if (path == NULL || (size_t)snprintf(name, sizeof(name), "%s.counter", path) >= sizeof(name))
        return 1;
    if ((f = fopen(name, "a+")) == NULL)
        return 1;
#ifndef _WIN32
    (void)flock(fileno(f), LOCK_EX);
#endif
    rewind(f);
    if (fscanf(f, "%u", &counter) != 1)
        counter = 0;
    counter++;
#ifndef _WIN32
    if (ftruncate(fileno(f), 0) != 0)
        say("cannot rewrite the counter");
#else
    fclose(f);
    if ((f = fopen(name, "w")) == NULL)
        return counter;
#endif
    fprintf(f, "%u\n", counter);
    fclose(f);
    return counter;
}

SOFT_SK_EXPORT uint32_t sk_api_version(void)
{
    return SK_VERSION_MAJOR;
}

SOFT_SK_EXPORT int sk_enroll(uint32_t alg, const uint8_t *challenge, size_t challenge_len,
                             const char *application, uint8_t flags, const char *pin,
                             struct sk_option **options,
                             struct sk_enroll_response **enroll_response)
{
    struct sk_enroll_response *resp = NULL;
    uint8_t handle[HANDLE_LEN];
    EVP_PKEY *pkey = NULL;
    int ret = SK_ERR_GENERAL;

    (void)challenge;
    (void)challenge_len;
    (void)pin;
    (void)options;
    if (enroll_response == NULL || application == NULL)
        return SK_ERR_GENERAL;
    *enroll_response = NULL;
    if (alg != SK_ALG_ECDSA && alg != SK_ALG_ED25519)
        return SK_ERR_UNSUPPORTED;
    if ((resp = calloc(1, sizeof(*resp))) == NULL)
        goto out;
    if ((pkey = new_key(alg)) == NULL || RAND_bytes(handle, sizeof(handle)) != 1)
        goto out;
    if (public_bytes(pkey, alg, &resp->public_key, &resp->public_key_len) != 0)
        goto out;
    if ((resp->key_handle = malloc(HANDLE_LEN)) == NULL)
        goto out;
    memcpy(resp->key_handle, handle, HANDLE_LEN);
    resp->key_handle_len = HANDLE_LEN;
    resp->flags = flags;
    if (store_append(alg, handle, application, pkey) != 0)
        goto out;
    *enroll_response = resp;
    resp = NULL;
    ret = 0;
out:
    EVP_PKEY_free(pkey);
    if (resp != NULL) {
        free(resp->public_key);
        free(resp->key_handle);
        free(resp);
    }
    return ret;
}

static int sha256(const void *p, size_t len, uint8_t out[32])
{
    return EVP_Digest(p, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* ECDSA-SHA256 over the signed bytes; r and s as unsigned big-endian numbers. */
static int sign_ecdsa(EVP_PKEY *pkey, const uint8_t *tbs, size_t tbs_len,
                      struct sk_sign_response *resp)
{
    uint8_t der[80];
    size_t der_len = sizeof(der);
    const unsigned char *p = der;
    ECDSA_SIG *sig = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ret = -1;

    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, der, &der_len, tbs, tbs_len) != 1)
        goto out;
    if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL)
        goto out;
    const BIGNUM *r = ECDSA_SIG_get0_r(sig), *s = ECDSA_SIG_get0_s(sig);
    resp->sig_r_len = (size_t)BN_num_bytes(r);
    resp->sig_s_len = (size_t)BN_num_bytes(s);
    if ((resp->sig_r = malloc(resp->sig_r_len + 1)) == NULL ||
        (resp->sig_s = malloc(resp->sig_s_len + 1)) == NULL)
        goto out;
    BN_bn2bin(r, resp->sig_r);
    BN_bn2bin(s, resp->sig_s);
    ret = 0;
out:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(ctx);
    return ret;
}

static int sign_ed25519(EVP_PKEY *pkey, const uint8_t *tbs, size_t tbs_len,
                        struct sk_sign_response *resp)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 64;
    int ret = -1;

    if (ctx == NULL || (resp->sig_r = malloc(64)) == NULL)
        goto out;
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, resp->sig_r, &len, tbs, tbs_len) != 1 || len != 64)
        goto out;
    resp->sig_r_len = 64;
    ret = 0;
out:
    EVP_MD_CTX_free(ctx);
    return ret;
}

SOFT_SK_EXPORT int sk_sign(uint32_t alg, const uint8_t *data, size_t data_len,
                           const char *application, const uint8_t *key_handle,
                           size_t key_handle_len, uint8_t flags, const char *pin,
                           struct sk_option **options, struct sk_sign_response **sign_response)
{
    struct sk_sign_response *resp = NULL;
    /* SHA256(application) || flags || counter (big-endian) || SHA256(data) */
    uint8_t tbs[32 + 1 + 4 + 32];
    EVP_PKEY *pkey = NULL;
    int ret = SK_ERR_GENERAL, found;

    (void)pin;
    (void)options;
    if (sign_response == NULL || application == NULL || key_handle == NULL ||
        (data == NULL && data_len != 0))
        return SK_ERR_GENERAL;
    *sign_response = NULL;
    if (alg != SK_ALG_ECDSA && alg != SK_ALG_ED25519)
        return SK_ERR_UNSUPPORTED;
#if SOFT_SK_MISBEHAVE == 1
    abort();
#elif SOFT_SK_MISBEHAVE == 2
    for (;;) {
#ifdef _WIN32
        Sleep(1000);
#else
        sleep(1);
#endif
    }
#endif
    if ((found = store_find(alg, key_handle, key_handle_len, application, &pkey)) != 0)
        return found;
    if ((resp = calloc(1, sizeof(*resp))) == NULL)
        goto out;
    /* Presence is tested only when the key asks; the "touch" here always succeeds. */
    resp->flags = (flags & SK_USER_PRESENCE_REQD) ? SK_USER_PRESENCE_REQD : 0;
    resp->counter = next_counter();
    if (sha256(application, strlen(application), tbs) != 0)
        goto out;
    tbs[32] = resp->flags;
    tbs[33] = (uint8_t)(resp->counter >> 24);
    tbs[34] = (uint8_t)(resp->counter >> 16);
    tbs[35] = (uint8_t)(resp->counter >> 8);
    tbs[36] = (uint8_t)resp->counter;
    if (sha256(data, data_len, tbs + 37) != 0)
        goto out;
#if SOFT_SK_MISBEHAVE == 4
    tbs[sizeof(tbs) - 1] ^= 0x01; /* sign other bytes than the agreed ones */
#endif
    if ((alg == SK_ALG_ED25519 ? sign_ed25519 : sign_ecdsa)(pkey, tbs, sizeof(tbs), resp) != 0)
        goto out;
#if SOFT_SK_MISBEHAVE == 3
    /* Malformed: a signature one byte short, and ECDSA's s missing. */
    resp->sig_r_len--;
    if (alg == SK_ALG_ECDSA) {
        free(resp->sig_s);
        resp->sig_s = NULL;
        resp->sig_s_len = 0;
    }
#endif
    *sign_response = resp;
    resp = NULL;
    ret = 0;
out:
    EVP_PKEY_free(pkey);
    if (resp != NULL) {
        free(resp->sig_r);
        free(resp->sig_s);
        free(resp);
    }
    return ret;
}

SOFT_SK_EXPORT int sk_load_resident_keys(const char *pin, struct sk_option **options,
                                         struct sk_resident_key ***rks, size_t *nrks)
{
    (void)pin;
    (void)options;
    if (rks == NULL || nrks == NULL)
        return SK_ERR_GENERAL;
    *rks = NULL;
    *nrks = 0;
    return 0;
}
