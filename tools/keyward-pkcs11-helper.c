/*
 * keyward-pkcs11-helper: loads one PKCS#11 module for keyward-agent, out of
 * the agent's process.
 *
 *   keyward-pkcs11-helper [-d]
 *
 * The agent starts it with one bidirectional stream as standard input and
 * speaks the provider helper protocol on it (docs/providers.md): requests
 * and replies are both read from and written to descriptor 0. It exits 0
 * when that stream ends. This file is what it does with each request; the
 * loop and the replies are tools/helper_main.c (shared with
 * keyward-sk-helper), the protocol's encoding src/proto/helper_msg.c, the
 * module work src/pkcs11/token.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "helper_main.h"
#include "pkcs11/token.h"
#include "proto/helper_msg.h"

/* A module path longer than this is refused (the agent checked it already). */
#define MAX_MODULE_PATH 4096

struct helper {
    struct p11_token *token;
    bool load_seen; /* LOAD is taken once, whether it worked or not */
};

static void handle_load(struct helper_proc *hp, struct helper *h, const struct helper_request *req)
{
    char module[MAX_MODULE_PATH + 1], why[256];
    struct wire_writer w;
    struct p11_key_info info;
    size_t i, n;
    int r;

    if (h->load_seen) {
        helper_proc_fail(hp, "LOAD", "a module was loaded already");
        goto out;
    }
    h->load_seen = true;
    if (req->module.len == 0 || req->module.len > MAX_MODULE_PATH ||
        memchr(req->module.ptr, '\0', req->module.len) != NULL) {
        helper_proc_fail(hp, "LOAD", "bad module path");
        goto out;
    }
    memcpy(module, req->module.ptr, req->module.len);
    module[req->module.len] = '\0';
    why[0] = '\0';
    r = p11_token_load(module, req->pin.ptr, req->pin.len, &h->token, why, sizeof(why));
    if (r != 0) {
        helper_proc_fail(hp, "LOAD", why[0] != '\0' ? why : kw_strerror(r));
        goto out;
    }
    n = p11_token_nkeys(h->token);
    log_debug("module loaded: %lu key(s)", (unsigned long)n);
    wire_writer_init(&w);
    helper_put_keys_begin(&w, (uint32_t)n);
    for (i = 0; i < n; i++) {
        p11_token_key(h->token, i, &info);
        helper_put_key(&w, info.blob, info.blob_len, info.label);
    }
    helper_proc_send(hp, &w);
    wire_writer_free(&w);
out:
    /*
     * The PIN is only in the received frame, which frame_conn clears when
     * it is consumed; cleared here as soon as it was used all the same.
     * The buffer is frame_conn's own, writable memory.
     */
    kw_memzero((void *)(uintptr_t)req->pin.ptr, req->pin.len);
}

static void handle_sign(struct helper_proc *hp, struct helper *h, const struct helper_request *req)
{
    struct wire_writer sig, w;
    char why[256];
    int r;

    if (h->token == NULL) {
        helper_proc_fail(hp, "SIGN", "no module loaded");
        return;
    }
    wire_writer_init(&sig);
    why[0] = '\0';
    r = p11_token_sign(h->token, req->blob.ptr, req->blob.len, req->data.ptr, req->data.len,
                       req->flags, &sig, why, sizeof(why));
    if (r != 0) {
        helper_proc_fail(hp, "SIGN", why[0] != '\0' ? why : kw_strerror(r));
        /*
         * A removed or replaced token: none of its keys can sign any more.
         * Ending here tells the agent, which then removes them all (the
         * FAIL above goes out first), and the user can add the module again.
         */
        if (p11_token_gone(h->token)) {
            log_info("the token is gone: exiting");
            helper_proc_finish(hp, 3);
        }
    } else {
        log_debug("signed %lu bytes", (unsigned long)req->data.len);
        wire_writer_init(&w);
        helper_put_signature(&w, sig.buf, sig.len);
        helper_proc_send(hp, &w);
        wire_writer_free(&w);
    }
    wire_writer_free(&sig);
}

static void handle(struct helper_proc *hp, const struct helper_request *req, void *ctx)
{
    struct helper *h = ctx;

    if (req->type == HELPER_LOAD)
        handle_load(hp, h, req);
    else if (req->type == HELPER_SIGN)
        handle_sign(hp, h, req);
    else
        helper_proc_fail(hp, "request", "this helper takes LOAD and SIGN only");
}

int main(int argc, char **argv)
{
    static struct helper h;
    static const char about[] =
        "Loads one PKCS#11 module for keyward-agent, which starts it; not meant to be run\n"
        "by hand. It speaks the provider helper protocol (docs/providers.md) on standard\n"
        "input, a bidirectional stream, and exits when that stream ends.";
    const struct helper_program prog = {"keyward-pkcs11-helper", about, handle, &h};
    int status = helper_main(argc, argv, &prog);

    p11_token_free(h.token);
    h.token = NULL;
    return status;
}
