/*
 * keyward: FIDO signatures through a middleware library. See middleware.h.
 *
 * The middleware interface is OpenSSH's (sk-api.h, PROTOCOL.u2f): keyward
 * declares the two functions and the one structure it uses itself, with
 * the layout that interface fixes.
 */
#include "sk/middleware.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

#include "base/err.h"
#include "base/memzero.h"
#include "proto/helper_msg.h"
#ifdef KEYWARD_HAVE_FIDO2
#include "sk/fido.h"
#endif

/* The answer of sk_sign, as the interface lays it out; the middleware allocates it. */
struct sk_sign_response_abi {
    uint8_t flags;
    uint32_t counter;
    uint8_t *sig_r;
    size_t sig_r_len;
    uint8_t *sig_s;
    size_t sig_s_len;
};

struct sk_option_abi; /* options: keyward passes none */

typedef uint32_t (*sk_api_version_fn)(void);
typedef int (*sk_sign_fn)(uint32_t alg, const uint8_t *data, size_t data_len,
                          const char *application, const uint8_t *key_handle, size_t key_handle_len,
                          uint8_t flags, const char *pin, struct sk_option_abi **options,
                          struct sk_sign_response_abi **response);

/* Ed25519 signatures are 64 bytes; a P-256 r or s at most 32 (a leading zero allowed). */
#define SK_ED25519_SIG_LEN 64
#define SK_P256_SCALAR_MAX 33

int sk_signature_encode(uint32_t alg, const struct sk_signature *s, struct wire_writer *w)
{
    size_t mark;

    if (alg == HELPER_SK_ALG_ED25519) {
        if (s->sig_r == NULL || s->sig_r_len != SK_ED25519_SIG_LEN)
            return KW_ERR_BAD_SIG;
        wire_put_cstring(w, "sk-ssh-ed25519@openssh.com");
        wire_put_string(w, s->sig_r, s->sig_r_len);
    } else if (alg == HELPER_SK_ALG_ECDSA_P256) {
        if (s->sig_r == NULL || s->sig_s == NULL || s->sig_r_len == 0 || s->sig_s_len == 0 ||
            s->sig_r_len > SK_P256_SCALAR_MAX || s->sig_s_len > SK_P256_SCALAR_MAX)
            return KW_ERR_BAD_SIG;
        wire_put_cstring(w, "sk-ecdsa-sha2-nistp256@openssh.com");
        mark = wire_begin_string(w);
        wire_put_mpint_unsigned(w, s->sig_r, s->sig_r_len);
        wire_put_mpint_unsigned(w, s->sig_s, s->sig_s_len);
        wire_end_string(w, mark);
    } else {
        return KW_ERR_KEY_TYPE;
    }
    wire_put_u8(w, s->flags);
    wire_put_u32(w, s->counter);
    return w->error;
}

static void free_response(struct sk_sign_response_abi *r)
{
    if (r == NULL)
        return;
    if (r->sig_r != NULL) {
        kw_memzero(r->sig_r, r->sig_r_len);
        free(r->sig_r);
    }
    if (r->sig_s != NULL) {
        kw_memzero(r->sig_s, r->sig_s_len);
        free(r->sig_s);
    }
    free(r);
}

#ifdef _WIN32
typedef HMODULE lib_handle;
static lib_handle lib_open(const char *path)
{
    /* The library's own directory is searched for the DLLs it needs. */
    return LoadLibraryExA(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
}
static void *lib_sym(lib_handle h, const char *name)
{
    return (void *)GetProcAddress(h, name);
}
static void lib_close(lib_handle h)
{
    FreeLibrary(h);
}
static const char *lib_error(void)
{
    return "LoadLibrary failed";
}
#else
typedef void *lib_handle;
static lib_handle lib_open(const char *path)
{
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}
static void *lib_sym(lib_handle h, const char *name)
{
    return dlsym(h, name);
}
static void lib_close(lib_handle h)
{
    dlclose(h);
}
static const char *lib_error(void)
{
    const char *e = dlerror();

    return e != NULL ? e : "?";
}
#endif

int sk_sign_with(const char *provider, uint32_t alg, const char *application,
                 const uint8_t *key_handle, size_t key_handle_len, uint8_t flags,
                 const uint8_t *data, size_t data_len, const char *pin, struct wire_writer *w,
                 char *why, size_t whysize)
{
    struct sk_sign_response_abi *resp = NULL;
    struct sk_signature sig;
    sk_api_version_fn version;
    sk_sign_fn sign;
    lib_handle lib;
    uint32_t v;
    int r, err = KW_ERR_DENIED;

    if (strcmp(provider, "internal") == 0) {
#ifdef KEYWARD_HAVE_FIDO2
        return sk_fido_sign(alg, application, key_handle, key_handle_len, flags, data, data_len,
                            pin, w, why, whysize);
#else
        snprintf(why, whysize,
                 "the built-in FIDO provider (libfido2) is not in this build: "
                 "add the key with ssh-add -S MIDDLEWARE");
        return KW_ERR_NO_SUPPORT;
#endif
    }
    if ((lib = lib_open(provider)) == NULL) {
        snprintf(why, whysize, "cannot load the middleware: %s", lib_error());
        return KW_ERR_NOT_FOUND;
    }
    version = (sk_api_version_fn)lib_sym(lib, "sk_api_version");
    sign = (sk_sign_fn)lib_sym(lib, "sk_sign");
    if (version == NULL || sign == NULL) {
        snprintf(why, whysize, "not a FIDO middleware: no sk_api_version or sk_sign");
        goto out;
    }
    /* Only the major version must match: minor versions add, they do not change. */
    if (((v = version()) & SK_API_VERSION_MAJOR_MASK) != SK_API_VERSION_MAJOR) {
        snprintf(why, whysize, "middleware speaks interface version 0x%08lx, keyward 0x%08lx",
                 (unsigned long)v, (unsigned long)SK_API_VERSION_MAJOR);
        goto out;
    }
    if ((r = sign(alg, data, data_len, application, key_handle, key_handle_len, flags,
                  pin != NULL && pin[0] != '\0' ? pin : NULL, NULL, &resp)) != 0 ||
        resp == NULL) {
        snprintf(why, whysize, "sk_sign failed (%d)", r);
        goto out;
    }
    sig.flags = resp->flags;
    sig.counter = resp->counter;
    sig.sig_r = resp->sig_r;
    sig.sig_r_len = resp->sig_r_len;
    sig.sig_s = resp->sig_s;
    sig.sig_s_len = resp->sig_s_len;
    if ((err = sk_signature_encode(alg, &sig, w)) != 0) {
        snprintf(why, whysize, "sk_sign answered a malformed signature (r %lu bytes, s %lu)",
                 (unsigned long)resp->sig_r_len, (unsigned long)resp->sig_s_len);
        goto out;
    }
    err = 0;
out:
    free_response(resp);
    lib_close(lib);
    return err;
}
