/*
 * keyward-sk-helper: signs with a FIDO key for keyward-agent, out of the
 * agent's process.
 *
 *   keyward-sk-helper [-d]
 *
 * The agent starts one for each signature with a FIDO key (as OpenSSH's
 * ssh-sk-helper) with one bidirectional stream as standard input, sends it
 * SK_SIGN (docs/providers.md) and reads SIGNATURE or FAIL; the helper
 * exits 0 when that stream ends. The provider, a middleware library or
 * "internal", is loaded here (src/sk/middleware.c), never in the agent.
 * The helper inherits the agent's environment, which a middleware may read
 * (the test authenticator's SOFT_SK_STORE, say).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "helper_main.h"
#include "proto/helper_msg.h"
#include "sk/middleware.h"

/* Longest provider path and application taken (the agent checked both already). */
#define MAX_PROVIDER_PATH 4096
#define MAX_APPLICATION   1024
#define MAX_PIN           256

/* A view as a C string in buf; false if it is too long or holds a NUL. */
static bool view_cstring(struct wire_view v, char *buf, size_t size)
{
    if (v.len >= size || memchr(v.ptr, '\0', v.len) != NULL)
        return false;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    return true;
}

static void handle_sk_sign(struct helper_proc *hp, const struct helper_request *req)
{
    char provider[MAX_PROVIDER_PATH], application[MAX_APPLICATION], pin[MAX_PIN], why[256];
    struct wire_writer sig, w;
    int r;

    if (!view_cstring(req->module, provider, sizeof(provider)) ||
        !view_cstring(req->application, application, sizeof(application)) ||
        !view_cstring(req->pin, pin, sizeof(pin))) {
        helper_proc_fail(hp, "SK_SIGN", "malformed provider, application or PIN");
        return;
    }
    if (req->alg != HELPER_SK_ALG_ED25519 && req->alg != HELPER_SK_ALG_ECDSA_P256) {
        helper_proc_fail(hp, "SK_SIGN", "unknown key algorithm");
        kw_memzero(pin, sizeof(pin));
        return;
    }
    wire_writer_init(&sig);
    why[0] = '\0';
    log_debug("signing %lu bytes with %s", (unsigned long)req->data.len, provider);
    r = sk_sign_with(provider, req->alg, application, req->key_handle.ptr, req->key_handle.len,
                     (uint8_t)req->flags, req->data.ptr, req->data.len, pin, &sig, why,
                     sizeof(why));
    kw_memzero(pin, sizeof(pin));
    if (r != 0) {
        helper_proc_fail(hp, "SK_SIGN", why[0] != '\0' ? why : kw_strerror(r));
    } else {
        wire_writer_init(&w);
        helper_put_signature(&w, sig.buf, sig.len);
        helper_proc_send(hp, &w);
        wire_writer_free(&w);
    }
    wire_writer_free(&sig);
}

static void handle(struct helper_proc *hp, const struct helper_request *req, void *ctx)
{
    (void)ctx;
    if (req->type != HELPER_SK_SIGN) {
        helper_proc_fail(hp, "request", "this helper takes SK_SIGN only");
        return;
    }
    handle_sk_sign(hp, req);
}

int main(int argc, char **argv)
{
    static const char about[] =
        "Signs with a FIDO security key for keyward-agent, which starts it; not meant to\n"
        "be run by hand. It speaks the provider helper protocol (docs/providers.md) on\n"
        "standard input, a bidirectional stream, and exits when that stream ends.";
    const struct helper_program prog = {"keyward-sk-helper", about, handle, NULL};

    return helper_main(argc, argv, &prog);
}
