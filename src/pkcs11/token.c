/*
 * keyward: one PKCS#11 module in the helper process. See token.h.
 *
 * Everything the module returns is untrusted: attribute lengths are
 * checked against what was asked for, and every public key built from its
 * attributes goes through key_from_plain_blob(), the same parser that
 * checks keys clients send (point on the curve, RSA size limits). The
 * hashing is libcrypto's; the module only ever sees a digest (RSA, ECDSA)
 * or the data itself (EdDSA, which hashes internally).
 */
#include "pkcs11/token.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "base/err.h"
#include "base/log.h"
#include "base/memzero.h"
#include "crypto/key.h"

/* Bounds on what a module may make us hold. */
#define MAX_SLOTS      64   /* tokens we open a session on */
#define MAX_SLOT_LIST  4096 /* slots a module may list */
#define MAX_KEYS       256
#define MAX_ATTR       (64 * 1024) /* a certificate is the largest attribute we read */
#define MAX_LABEL      256
#define FIND_BATCH     32
#define MAX_SIG        2048 /* an RSA-16384 signature */
#define KEYS_MSG_SLACK 64   /* the KEYS message's header, with room to spare */

struct p11_key {
    struct key *pub; /* parsed from the blob: for verifying the module's signatures */
    uint8_t *blob;
    size_t blob_len;
    char label[MAX_LABEL + 1];
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE obj;
};

struct p11_token {
#ifdef _WIN32
    HMODULE lib;
#else
    void *lib;
#endif
    CK_FUNCTION_LIST_PTR fl;
    bool initialized;
    CK_SESSION_HANDLE sessions[MAX_SLOTS];
    bool logged_in[MAX_SLOTS];
    size_t nsessions;
    struct p11_key keys[MAX_KEYS];
    size_t nkeys;
    size_t keys_msg_len; /* what the KEYS message will take */
    bool gone;           /* the module said the token or its session is gone */
};

static void set_why(char *why, size_t whysize, const char *fmt, ...) KW_PRINTF(3, 4);

static void set_why(char *why, size_t whysize, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whysize, fmt, ap);
    va_end(ap);
}

/* ---- loading the library ---- */

static int lib_open(struct p11_token *t, const char *path, char *why, size_t whysize)
{
    CK_C_GetFunctionList get = NULL;
#ifdef _WIN32
    wchar_t *wpath = NULL;
    int n;

    if ((n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0)) <= 0) {
        set_why(why, whysize, "module path is not UTF-8");
        return KW_ERR_BAD_FORMAT;
    }
    if ((wpath = calloc((size_t)n, sizeof(*wpath))) == NULL)
        return KW_ERR_ALLOC;
    MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, n);
    /* The module's own DLLs are looked for beside it, not beside us. */
    t->lib = LoadLibraryExW(wpath, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    free(wpath);
    if (t->lib == NULL) {
        set_why(why, whysize, "module does not load (Windows error %lu)",
                (unsigned long)GetLastError());
        return KW_ERR_NOT_FOUND;
    }
    get = (CK_C_GetFunctionList)(void (*)(void))GetProcAddress(t->lib, "C_GetFunctionList");
#else
    const char *err;

    /* RTLD_LOCAL: the module's symbols stay out of our namespace and other modules'. */
    if ((t->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        err = dlerror();
        set_why(why, whysize, "module does not load: %s", err != NULL ? err : "dlopen failed");
        return KW_ERR_NOT_FOUND;
    }
    /* POSIX leaves the object-to-function pointer conversion to the platform; dlsym needs it. */
    *(void **)&get = dlsym(t->lib, "C_GetFunctionList");
#endif
    if (get == NULL) {
        set_why(why, whysize, "module has no C_GetFunctionList");
        return KW_ERR_BAD_FORMAT;
    }
    if (get(&t->fl) != CKR_OK || t->fl == NULL) {
        set_why(why, whysize, "C_GetFunctionList failed");
        t->fl = NULL;
        return KW_ERR_BAD_FORMAT;
    }
    return 0;
}

static void lib_close(struct p11_token *t)
{
    if (t->lib == NULL)
        return;
#ifdef _WIN32
    FreeLibrary(t->lib);
#else
    dlclose(t->lib);
#endif
    t->lib = NULL;
}

/* ---- attributes ---- */

/*
 * One attribute of obj, allocated (NUL-terminated one past its length, for
 * labels). KW_ERR_NOT_FOUND if the object has none or will not say.
 */
static int get_attr(struct p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                    CK_ATTRIBUTE_TYPE type, uint8_t **out, size_t *outlen)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_ULONG want;
    uint8_t *buf;

    *out = NULL;
    *outlen = 0;
    if (t->fl->C_GetAttributeValue(s, obj, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > MAX_ATTR)
        return KW_ERR_NOT_FOUND;
    want = a.ulValueLen;
    if ((buf = calloc(1, (size_t)want + 1)) == NULL)
        return KW_ERR_ALLOC;
    a.pValue = buf;
    if (t->fl->C_GetAttributeValue(s, obj, &a, 1) != CKR_OK || a.ulValueLen > want) {
        free(buf);
        return KW_ERR_NOT_FOUND;
    }
    *out = buf;
    *outlen = (size_t)a.ulValueLen;
    return 0;
}

static int get_ulong_attr(struct p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                          CK_ATTRIBUTE_TYPE type, CK_ULONG *v)
{
    CK_ATTRIBUTE a = {type, v, sizeof(*v)};

    if (t->fl->C_GetAttributeValue(s, obj, &a, 1) != CKR_OK || a.ulValueLen != sizeof(*v))
        return KW_ERR_NOT_FOUND;
    return 0;
}

/*
 * Objects matching tmpl in session s: at most max handles into objs.
 * Returns how many.
 */
static size_t find_objects(struct p11_token *t, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl,
                           CK_ULONG ntmpl, CK_OBJECT_HANDLE *objs, size_t max)
{
    CK_ULONG got;
    size_t n = 0;

    if (t->fl->C_FindObjectsInit(s, tmpl, ntmpl) != CKR_OK)
        return 0;
    while (n < max) {
        got = 0;
        if (t->fl->C_FindObjects(s, objs + n,
                                 (CK_ULONG)(max - n < FIND_BATCH ? max - n : FIND_BATCH),
                                 &got) != CKR_OK ||
            got == 0)
            break;
        if (got > FIND_BATCH || got > max - n) /* a module writing past what we gave it */
            break;
        n += (size_t)got;
    }
    (void)t->fl->C_FindObjectsFinal(s);
    return n;
}

/* The first object of class cls with CKA_ID id, or CK_INVALID_HANDLE. */
static CK_OBJECT_HANDLE find_by_id(struct p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                   const uint8_t *id, size_t id_len)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)id, (CK_ULONG)id_len},
    };
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;

    if (find_objects(t, s, tmpl, 2, &obj, 1) != 1)
        return CK_INVALID_HANDLE;
    return obj;
}

/* ---- public key blobs ---- */

/* The curves we know, by the DER of their OID (facts: RFC 5480, RFC 8410). */
struct curve {
    enum key_kind kind;
    const char *ssh_name;   /* key type */
    const char *ssh_curve;  /* the curve identifier in the blob */
    const uint8_t *oid_der; /* CKA_EC_PARAMS */
    size_t oid_der_len;
    size_t field_len; /* bytes of one coordinate, and of r and s */
    const char *hash; /* for ECDSA (RFC 5656 section 6.2.1) */
};

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
/* PKCS#11 3.0 also lets CKA_EC_PARAMS name the curve as a PrintableString. */
static const uint8_t name_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                                       'd',  's',  '2', '5', '5', '1', '9'};

static const struct curve curves[] = {
    {KEY_ECDSA_P256, "ecdsa-sha2-nistp256", "nistp256", oid_p256, sizeof(oid_p256), 32, "SHA256"},
    {KEY_ECDSA_P384, "ecdsa-sha2-nistp384", "nistp384", oid_p384, sizeof(oid_p384), 48, "SHA384"},
    {KEY_ECDSA_P521, "ecdsa-sha2-nistp521", "nistp521", oid_p521, sizeof(oid_p521), 66, "SHA512"},
};

static const struct curve *curve_by_params(const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (len == curves[i].oid_der_len && memcmp(p, curves[i].oid_der, len) == 0)
            return &curves[i];
    }
    return NULL;
}

/*
 * The point inside CKA_EC_POINT: the standard says a DER OCTET STRING
 * around it, some modules give the point bare. Told apart by length, as a
 * point of the curve has exactly want bytes.
 */
static bool unwrap_point(const uint8_t *p, size_t len, size_t want, const uint8_t **pt)
{
    size_t hdr;

    if (len == want) {
        *pt = p;
        return true;
    }
    if (len < 2 || p[0] != 0x04)
        return false;
    if (p[1] < 0x80)
        hdr = 2;
    else if (p[1] == 0x81)
        hdr = 3;
    else
        return false; /* no point we take is 256 bytes or more */
    if (len != hdr + want || (hdr == 2 ? p[1] : p[2]) != want)
        return false;
    *pt = p + hdr;
    return true;
}

/* The blob of an EC or Ed25519 key from CKA_EC_PARAMS and CKA_EC_POINT. */
static int ec_blob(const uint8_t *params, size_t params_len, const uint8_t *point, size_t point_len,
                   bool edwards, struct wire_writer *w)
{
    const struct curve *c;
    const uint8_t *pt;

    if (edwards) {
        if (!((params_len == sizeof(oid_ed25519) && memcmp(params, oid_ed25519, params_len) == 0) ||
              (params_len == sizeof(name_ed25519) &&
               memcmp(params, name_ed25519, params_len) == 0)))
            return KW_ERR_KEY_TYPE; /* Ed448 and others: not in SSH's agent protocol here */
        if (!unwrap_point(point, point_len, 32, &pt))
            return KW_ERR_BAD_KEY;
        wire_put_cstring(w, "ssh-ed25519");
        wire_put_string(w, pt, 32);
        return w->error;
    }
    if ((c = curve_by_params(params, params_len)) == NULL)
        return KW_ERR_KEY_TYPE;
    if (!unwrap_point(point, point_len, 1 + 2 * c->field_len, &pt) || pt[0] != 0x04)
        return KW_ERR_BAD_KEY;
    wire_put_cstring(w, c->ssh_name);
    wire_put_cstring(w, c->ssh_curve);
    wire_put_string(w, pt, 1 + 2 * c->field_len);
    return w->error;
}

static int rsa_blob(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len,
                    struct wire_writer *w)
{
    wire_put_cstring(w, "ssh-rsa");
    wire_put_mpint_unsigned(w, e, e_len);
    wire_put_mpint_unsigned(w, n, n_len);
    return w->error;
}

/* A certificate's public key as an SSH blob, through libcrypto's parsers. */
static int cert_blob(const uint8_t *der, size_t der_len, struct wire_writer *w)
{
    const unsigned char *p = der;
    X509 *x = NULL;
    EVP_PKEY *pk;
    BIGNUM *n = NULL, *e = NULL;
    uint8_t nb[KEY_RSA_MAX_BITS / 8], eb[16], pt[1 + 2 * 66];
    size_t ptlen = 0;
    char group[32];
    int r = KW_ERR_BAD_KEY, nl, el;

    if ((x = d2i_X509(NULL, &p, (long)der_len)) == NULL || (pk = X509_get0_pubkey(x)) == NULL)
        goto out;
    if (EVP_PKEY_is_a(pk, "RSA")) {
        if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) ||
            !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) ||
            BN_num_bytes(n) > (int)sizeof(nb) || BN_num_bytes(e) > (int)sizeof(eb))
            goto out;
        nl = BN_bn2bin(n, nb);
        el = BN_bn2bin(e, eb);
        r = rsa_blob(nb, (size_t)nl, eb, (size_t)el, w);
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            NULL) ||
            !EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
                                             &ptlen))
            goto out;
        if (strcmp(group, "prime256v1") == 0)
            r = ec_blob(oid_p256, sizeof(oid_p256), pt, ptlen, false, w);
        else if (strcmp(group, "secp384r1") == 0)
            r = ec_blob(oid_p384, sizeof(oid_p384), pt, ptlen, false, w);
        else if (strcmp(group, "secp521r1") == 0)
            r = ec_blob(oid_p521, sizeof(oid_p521), pt, ptlen, false, w);
        else
            r = KW_ERR_KEY_TYPE;
    } else if (EVP_PKEY_is_a(pk, "ED25519")) {
        if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt, 32, &ptlen) ||
            ptlen != 32)
            goto out;
        r = ec_blob(oid_ed25519, sizeof(oid_ed25519), pt, ptlen, true, w);
    } else {
        r = KW_ERR_KEY_TYPE;
    }
out:
    BN_free(n);
    BN_free(e);
    X509_free(x);
    return r;
}

/*
 * The public key of the private key obj: from the public key object with
 * the same CKA_ID, else the certificate with it, else (RSA) the private
 * key object's own public attributes.
 */
static int public_blob(struct p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                       CK_KEY_TYPE kt, const uint8_t *id, size_t id_len, struct wire_writer *w)
{
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, cert = CK_INVALID_HANDLE, from;
    uint8_t *a = NULL, *b = NULL;
    size_t alen, blen;
    int r = KW_ERR_NOT_FOUND;

    if (kt != CKK_RSA && kt != CKK_EC && kt != CKK_EC_EDWARDS)
        return KW_ERR_KEY_TYPE;
    if (id_len > 0) {
        pub = find_by_id(t, s, CKO_PUBLIC_KEY, id, id_len);
        if (pub == CK_INVALID_HANDLE)
            cert = find_by_id(t, s, CKO_CERTIFICATE, id, id_len);
    }
    if (cert != CK_INVALID_HANDLE) {
        if ((r = get_attr(t, s, cert, CKA_VALUE, &a, &alen)) == 0)
            r = cert_blob(a, alen, w);
        goto out;
    }
    from = pub != CK_INVALID_HANDLE ? pub : priv;
    if (kt == CKK_RSA) {
        if ((r = get_attr(t, s, from, CKA_MODULUS, &a, &alen)) != 0 ||
            (r = get_attr(t, s, from, CKA_PUBLIC_EXPONENT, &b, &blen)) != 0)
            goto out;
        r = rsa_blob(a, alen, b, blen, w);
    } else {
        if ((r = get_attr(t, s, from, CKA_EC_PARAMS, &a, &alen)) != 0 ||
            (r = get_attr(t, s, from, CKA_EC_POINT, &b, &blen)) != 0)
            goto out;
        r = ec_blob(a, alen, b, blen, kt == CKK_EC_EDWARDS, w);
    }
out:
    free(a);
    free(b);
    return r;
}

/* ---- finding keys ---- */

static bool have_blob(const struct p11_token *t, const uint8_t *blob, size_t len)
{
    size_t i;

    for (i = 0; i < t->nkeys; i++) {
        if (t->keys[i].blob_len == len && memcmp(t->keys[i].blob, blob, len) == 0)
            return true;
    }
    return false;
}

/* Adds the private key obj if we can sign with it; a key we cannot use is logged and skipped. */
static void add_key(struct p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj)
{
    struct p11_key *k = &t->keys[t->nkeys];
    struct wire_writer w;
    CK_KEY_TYPE kt;
    uint8_t *id = NULL, *label = NULL;
    size_t id_len = 0, label_len = 0, cost;
    int r;

    wire_writer_init(&w);
    memset(k, 0, sizeof(*k));
    if (get_ulong_attr(t, s, obj, CKA_KEY_TYPE, &kt) != 0) {
        log_info("key skipped: no CKA_KEY_TYPE");
        goto out;
    }
    (void)get_attr(t, s, obj, CKA_ID, &id, &id_len);
    (void)get_attr(t, s, obj, CKA_LABEL, &label, &label_len);
    if ((r = public_blob(t, s, obj, kt, id, id_len, &w)) != 0) {
        log_info("key skipped (type 0x%lx): no usable public key: %s", (unsigned long)kt,
                 kw_strerror(r));
        goto out;
    }
    /* The same checks as a key a client sends: on the curve, RSA within limits. */
    if ((r = key_from_plain_blob(w.buf, w.len, &k->pub)) != 0) {
        log_info("key skipped (type 0x%lx): public key refused: %s", (unsigned long)kt,
                 kw_strerror(r));
        goto out;
    }
    if (have_blob(t, w.buf, w.len)) {
        log_debug("key skipped: listed already (another slot?)");
        goto out;
    }
    if (label_len > MAX_LABEL)
        label_len = MAX_LABEL;
    if (label_len > 0)
        memcpy(k->label, label, label_len);
    k->label[label_len] = '\0'; /* a NUL inside ends it early: a comment is a C string here */
    cost = 8 + w.len + strlen(k->label);
    if (t->keys_msg_len + cost > WIRE_MAX_MESSAGE) {
        log_info("key skipped: the list of keys would exceed one message");
        goto out;
    }
    if ((k->blob = malloc(w.len)) == NULL)
        goto out;
    memcpy(k->blob, w.buf, w.len);
    k->blob_len = w.len;
    k->session = s;
    k->obj = obj;
    t->keys_msg_len += cost;
    t->nkeys++;
    k = NULL; /* kept */
out:
    if (k != NULL) {
        key_free(k->pub);
        memset(k, 0, sizeof(*k));
    }
    free(id);
    free(label);
    wire_writer_free(&w);
}

static void find_keys(struct p11_token *t, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_SIGN, &yes, sizeof(yes)},
    };
    CK_OBJECT_HANDLE objs[MAX_KEYS];
    size_t n, i;

    n = find_objects(t, s, tmpl, 2, objs, MAX_KEYS - t->nkeys);
    for (i = 0; i < n && t->nkeys < MAX_KEYS; i++)
        add_key(t, s, objs[i]);
}

/* ---- load and free ---- */

int p11_token_load(const char *module, const uint8_t *pin, size_t pin_len, struct p11_token **out,
                   char *why, size_t whysize)
{
    struct p11_token *t;
    CK_C_INITIALIZE_ARGS args;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG nslots = 0;
    int tries;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s;
    CK_RV rv;
    size_t i;
    int r;

    *out = NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        set_why(why, whysize, "out of memory");
        return KW_ERR_ALLOC;
    }
    t->keys_msg_len = KEYS_MSG_SLACK;
    if ((r = lib_open(t, module, why, whysize)) != 0)
        goto out;
    memset(&args, 0, sizeof(args));
    /* We call from one thread, but the module may run its own: it may use the OS's locks. */
    args.flags = CKF_OS_LOCKING_OK;
    rv = t->fl->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        set_why(why, whysize, "C_Initialize failed (0x%lx)", (unsigned long)rv);
        r = KW_ERR_INTERNAL;
        goto out;
    }
    t->initialized = rv == CKR_OK;
    /* How many, then which: a list that grew in between is asked for again. */
    for (tries = 0;; tries++) {
        free(slots);
        slots = NULL;
        if ((rv = t->fl->C_GetSlotList(CK_TRUE, NULL, &nslots)) != CKR_OK) {
            set_why(why, whysize, "C_GetSlotList failed (0x%lx)", (unsigned long)rv);
            r = KW_ERR_INTERNAL;
            goto out;
        }
        if (nslots == 0 || nslots > MAX_SLOT_LIST) {
            set_why(why, whysize, "the module lists %lu slots with a token", (unsigned long)nslots);
            r = KW_ERR_NOT_FOUND;
            goto out;
        }
        if ((slots = calloc((size_t)nslots, sizeof(*slots))) == NULL) {
            set_why(why, whysize, "out of memory");
            r = KW_ERR_ALLOC;
            goto out;
        }
        if ((rv = t->fl->C_GetSlotList(CK_TRUE, slots, &nslots)) == CKR_OK)
            break;
        if (rv != CKR_BUFFER_TOO_SMALL || tries == 2) {
            set_why(why, whysize, "C_GetSlotList failed (0x%lx)", (unsigned long)rv);
            r = KW_ERR_INTERNAL;
            goto out;
        }
    }
    for (i = 0; i < (size_t)nslots; i++) {
        if ((rv = t->fl->C_GetTokenInfo(slots[i], &ti)) != CKR_OK) {
            log_info("slot %lu skipped: C_GetTokenInfo failed (0x%lx)", (unsigned long)slots[i],
                     (unsigned long)rv);
            continue;
        }
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue; /* an empty slot (SoftHSM2 always offers one) */
        if (t->nsessions == MAX_SLOTS) {
            log_info("more than %d tokens: the others are not used", MAX_SLOTS);
            break;
        }
        if ((rv = t->fl->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
            log_info("slot %lu skipped: C_OpenSession failed (0x%lx)", (unsigned long)slots[i],
                     (unsigned long)rv);
            continue;
        }
        t->sessions[t->nsessions++] = s;
        if (pin_len > 0) {
            rv = t->fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
            if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID ||
                rv == CKR_PIN_LEN_RANGE) {
                /*
                 * Stop at once: trying the same PIN on the next token
                 * would count another wrong attempt there.
                 */
                set_why(why, whysize, "login refused: %s",
                        rv == CKR_PIN_LOCKED ? "PIN locked" : "wrong PIN");
                r = KW_ERR_DENIED;
                goto out;
            }
            if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
                log_info("slot %lu: C_Login failed (0x%lx)", (unsigned long)slots[i],
                         (unsigned long)rv);
            } else {
                t->logged_in[t->nsessions - 1] = rv == CKR_OK;
            }
        }
        find_keys(t, s);
    }
    if (t->nkeys == 0) {
        set_why(why, whysize, "no usable key on the module's tokens");
        r = KW_ERR_NOT_FOUND;
        goto out;
    }
    *out = t;
    t = NULL;
    r = 0;
out:
    free(slots);
    p11_token_free(t);
    return r;
}

size_t p11_token_nkeys(const struct p11_token *t)
{
    return t->nkeys;
}

void p11_token_key(const struct p11_token *t, size_t i, struct p11_key_info *info)
{
    info->blob = t->keys[i].blob;
    info->blob_len = t->keys[i].blob_len;
    info->label = t->keys[i].label;
}

bool p11_token_gone(const struct p11_token *t)
{
    return t != NULL && t->gone;
}

void p11_token_free(struct p11_token *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->nkeys; i++) {
        key_free(t->keys[i].pub);
        free(t->keys[i].blob);
    }
    if (t->fl != NULL) {
        for (i = 0; i < t->nsessions; i++) {
            if (t->logged_in[i])
                (void)t->fl->C_Logout(t->sessions[i]);
            (void)t->fl->C_CloseSession(t->sessions[i]);
        }
        if (t->initialized)
            (void)t->fl->C_Finalize(NULL);
    }
    lib_close(t);
    free(t);
}

/* ---- signing ---- */

/* PKCS#1 v1.5 DigestInfo prefixes (RFC 8017 section 9.2, note 1): facts, not code. */
static const uint8_t di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                  0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

static int digest(const char *name, const uint8_t *data, size_t len, uint8_t *md,
                  unsigned int *mdlen)
{
    EVP_MD *alg;
    int ok;

    if ((alg = EVP_MD_fetch(NULL, name, NULL)) == NULL)
        return KW_ERR_INTERNAL;
    ok = EVP_Digest(data, len, md, mdlen, alg, NULL);
    EVP_MD_free(alg);
    return ok ? 0 : KW_ERR_INTERNAL;
}

static bool token_gone(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_ERROR ||
           rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

static int module_sign(struct p11_token *t, const struct p11_key *k, CK_MECHANISM_TYPE mech,
                       const uint8_t *in, size_t in_len, uint8_t *sig, size_t *sig_len, char *why,
                       size_t whysize)
{
    CK_MECHANISM m = {mech, NULL, 0};
    CK_ULONG n = (CK_ULONG)*sig_len;
    CK_RV rv;

    if ((rv = t->fl->C_SignInit(k->session, &m, k->obj)) != CKR_OK) {
        t->gone |= token_gone(rv);
        set_why(why, whysize, "%sC_SignInit failed (0x%lx)",
                token_gone(rv) ? "token removed? " : "", (unsigned long)rv);
        return KW_ERR_INTERNAL;
    }
    if ((rv = t->fl->C_Sign(k->session, (CK_BYTE_PTR)in, (CK_ULONG)in_len, sig, &n)) != CKR_OK) {
        t->gone |= token_gone(rv);
        set_why(why, whysize, "%sC_Sign failed (0x%lx)", token_gone(rv) ? "token removed? " : "",
                (unsigned long)rv);
        return KW_ERR_INTERNAL;
    }
    if (n > (CK_ULONG)*sig_len) {
        set_why(why, whysize, "C_Sign claims more bytes than it was given room for");
        return KW_ERR_BAD_SIG;
    }
    *sig_len = (size_t)n;
    return 0;
}

int p11_token_sign(struct p11_token *t, const uint8_t *blob, size_t blob_len, const uint8_t *data,
                   size_t data_len, uint32_t flags, struct wire_writer *w, char *why,
                   size_t whysize)
{
    const struct p11_key *k = NULL;
    const struct curve *c = NULL;
    uint8_t in[sizeof(di_sha512) + EVP_MAX_MD_SIZE], sig[MAX_SIG];
    size_t in_len = 0, sig_len = sizeof(sig), i, want;
    const uint8_t *prefix = NULL;
    size_t prefix_len = 0, mark;
    const char *alg, *hash;
    unsigned int mdlen;
    int r;

    for (i = 0; i < t->nkeys; i++) {
        if (t->keys[i].blob_len == blob_len && memcmp(t->keys[i].blob, blob, blob_len) == 0) {
            k = &t->keys[i];
            break;
        }
    }
    if (k == NULL) {
        set_why(why, whysize, "no such key on this module");
        return KW_ERR_NOT_FOUND;
    }
    switch (k->pub->kind) {
    case KEY_RSA:
        /* The agent protocol's rule: SHA-256 wins over SHA-512; neither is SHA-1. */
        if (flags & KEY_SIGN_RSA_SHA2_256) {
            alg = "rsa-sha2-256", hash = "SHA256", prefix = di_sha256;
            prefix_len = sizeof(di_sha256);
        } else if (flags & KEY_SIGN_RSA_SHA2_512) {
            alg = "rsa-sha2-512", hash = "SHA512", prefix = di_sha512;
            prefix_len = sizeof(di_sha512);
        } else {
            alg = "ssh-rsa", hash = "SHA1", prefix = di_sha1;
            prefix_len = sizeof(di_sha1);
        }
        memcpy(in, prefix, prefix_len);
        if ((r = digest(hash, data, data_len, in + prefix_len, &mdlen)) != 0)
            goto crypto_fail;
        in_len = prefix_len + mdlen;
        if ((r = module_sign(t, k, CKM_RSA_PKCS, in, in_len, sig, &sig_len, why, whysize)) != 0)
            return r;
        wire_put_cstring(w, alg);
        wire_put_string(w, sig, sig_len);
        break;
    case KEY_ECDSA_P256:
    case KEY_ECDSA_P384:
    case KEY_ECDSA_P521:
        for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
            if (curves[i].kind == k->pub->kind)
                c = &curves[i];
        }
        if (c == NULL)
            return KW_ERR_INTERNAL;
        if ((r = digest(c->hash, data, data_len, in, &mdlen)) != 0)
            goto crypto_fail;
        in_len = mdlen;
        if ((r = module_sign(t, k, CKM_ECDSA, in, in_len, sig, &sig_len, why, whysize)) != 0)
            return r;
        /* CKM_ECDSA gives r and s, each as long as the curve's order, one after the other. */
        want = 2 * c->field_len;
        if (sig_len != want) {
            set_why(why, whysize, "ECDSA signature of %lu bytes, not %lu", (unsigned long)sig_len,
                    (unsigned long)want);
            return KW_ERR_BAD_SIG;
        }
        wire_put_cstring(w, c->ssh_name);
        mark = wire_begin_string(w);
        wire_put_mpint_unsigned(w, sig, c->field_len);
        wire_put_mpint_unsigned(w, sig + c->field_len, c->field_len);
        wire_end_string(w, mark);
        break;
    case KEY_ED25519:
        /* Pure Ed25519: the module hashes the data itself. */
        if ((r = module_sign(t, k, CKM_EDDSA, data, data_len, sig, &sig_len, why, whysize)) != 0)
            return r;
        if (sig_len != 64) {
            set_why(why, whysize, "Ed25519 signature of %lu bytes, not 64", (unsigned long)sig_len);
            return KW_ERR_BAD_SIG;
        }
        wire_put_cstring(w, "ssh-ed25519");
        wire_put_string(w, sig, sig_len);
        break;
    default:
        return KW_ERR_INTERNAL;
    }
    kw_memzero(in, sizeof(in));
    if (w->error != 0) {
        set_why(why, whysize, "signature too large");
        return w->error;
    }
    /* A module that answers garbage (or signs with another key) stops here. */
    if ((r = key_verify(k->pub, w->buf, w->len, data, data_len)) != 0) {
        set_why(why, whysize, "the module's signature does not verify");
        return KW_ERR_BAD_SIG;
    }
    return 0;
crypto_fail:
    set_why(why, whysize, "hashing failed");
    return r;
}
