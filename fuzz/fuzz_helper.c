/*
 * keyward fuzzing: the provider helper protocol's decoders
 * (src/proto/helper_msg.c): helper_request_decode(), which reads every
 * message keyward-pkcs11-helper receives, and helper_reply_decode() with
 * helper_keys_next(), which read its replies for the agent
 * (docs/providers.md).
 *
 * Input: one message body, type byte first. Beyond the sanitizers it
 * checks that:
 *   - a body that decodes is canonical: the encoders (helper_put_load(),
 *     helper_put_sign()) give it back byte for byte, so the decoder accepts
 *     nothing the agent could not have sent and drops nothing it did send;
 *   - the views it returns lie inside the input;
 *   - a type other than LOAD and SIGN is refused as such (KW_ERR_KEY_TYPE),
 *     and nothing is refused without an error code;
 *   - the same for replies (KEYS, SIGNATURE, FAIL): canonical, and a KEYS
 *     that decodes yields exactly its count of pairs, none failing.
 * The reply encoders run on the decoded fields too, for the sanitizers.
 */
#include <string.h>

#include "base/err.h"
#include "base/wire.h"
#include "proto/helper_msg.h"
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

static int inside(struct wire_view v, const uint8_t *data, size_t size)
{
    return v.len == 0 ||
           (v.ptr >= data && v.len <= size && v.ptr - data <= (ptrdiff_t)(size - v.len));
}

static void replies(const uint8_t *data, size_t size)
{
    struct helper_reply rep;
    struct wire_reader r;
    struct wire_view blob, comment;
    struct wire_writer w;
    uint32_t i;
    int err;

    err = helper_reply_decode(data, size, &rep);
    if (err != 0) {
        FUZZ_ASSERT(err < 0);
        if (size > 0 && data[0] != HELPER_KEYS && data[0] != HELPER_SIGNATURE &&
            data[0] != HELPER_FAIL)
            FUZZ_ASSERT(err == KW_ERR_KEY_TYPE);
        return;
    }
    FUZZ_ASSERT(size > 0 && rep.type == data[0]);
    wire_writer_init(&w);
    switch (rep.type) {
    case HELPER_KEYS:
        FUZZ_ASSERT(inside(rep.keys, data, size));
        helper_put_keys_begin(&w, rep.nkeys);
        wire_reader_from_view(&r, rep.keys);
        for (i = 0; i < rep.nkeys; i++) {
            FUZZ_ASSERT(helper_keys_next(&r, &blob, &comment) == 0);
            wire_put_view(&w, blob);
            wire_put_view(&w, comment);
        }
        FUZZ_ASSERT(wire_reader_finish(&r) == 0);
        break;
    case HELPER_SIGNATURE:
        FUZZ_ASSERT(inside(rep.sig, data, size));
        helper_put_signature(&w, rep.sig.ptr, rep.sig.len);
        break;
    default:
        FUZZ_ASSERT(rep.type == HELPER_FAIL && inside(rep.reason, data, size));
        wire_put_u8(&w, HELPER_FAIL);
        wire_put_view(&w, rep.reason);
        break;
    }
    FUZZ_ASSERT(w.error == 0 && w.len == size && memcmp(w.buf, data, size) == 0);
    wire_writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct helper_request req;
    struct wire_writer w;
    int r;

    replies(data, size);
    r = helper_request_decode(data, size, &req);
    if (r != 0) {
        FUZZ_ASSERT(r < 0);
        if (size > 0 && data[0] != HELPER_LOAD && data[0] != HELPER_SIGN &&
            data[0] != HELPER_SK_SIGN)
            FUZZ_ASSERT(r == KW_ERR_KEY_TYPE);
        return 0;
    }
    FUZZ_ASSERT(size > 0 && req.type == data[0]);
    FUZZ_ASSERT(req.type == HELPER_LOAD || req.type == HELPER_SIGN || req.type == HELPER_SK_SIGN);
    FUZZ_ASSERT(inside(req.module, data, size) && inside(req.pin, data, size) &&
                inside(req.blob, data, size) && inside(req.data, data, size) &&
                inside(req.application, data, size) && inside(req.key_handle, data, size));
    wire_writer_init(&w);
    if (req.type == HELPER_SK_SIGN) {
        FUZZ_ASSERT(req.flags <= 0xff);
        /* helper_put_sk_sign() takes C strings and sends no PIN. */
        char provider[1024], app[1024];

        if (req.pin.len == 0 && req.module.len < sizeof(provider) &&
            req.application.len < sizeof(app) &&
            memchr(req.module.ptr, '\0', req.module.len) == NULL &&
            memchr(req.application.ptr, '\0', req.application.len) == NULL) {
            memcpy(provider, req.module.ptr, req.module.len);
            provider[req.module.len] = '\0';
            memcpy(app, req.application.ptr, req.application.len);
            app[req.application.len] = '\0';
            helper_put_sk_sign(&w, provider, req.alg, app, req.key_handle.ptr, req.key_handle.len,
                               (uint8_t)req.flags, req.data.ptr, req.data.len);
            FUZZ_ASSERT(w.error == 0 && w.len == size && memcmp(w.buf, data, size) == 0);
        }
    } else if (req.type == HELPER_LOAD) {
        if (memchr(req.module.ptr, '\0', req.module.len) == NULL) {
            /* helper_put_load() takes the path as a C string. */
            char path[1024];

            if (req.module.len < sizeof(path)) {
                memcpy(path, req.module.ptr, req.module.len);
                path[req.module.len] = '\0';
                helper_put_load(&w, path, req.pin.ptr, req.pin.len);
                FUZZ_ASSERT(w.error == 0 && w.len == size && memcmp(w.buf, data, size) == 0);
            }
        }
        wire_writer_reset(&w);
        helper_put_fail(&w, "fuzz");
    } else {
        helper_put_sign(&w, req.blob.ptr, req.blob.len, req.data.ptr, req.data.len, req.flags);
        FUZZ_ASSERT(w.error == 0 && w.len == size && memcmp(w.buf, data, size) == 0);
        wire_writer_reset(&w);
        helper_put_keys_begin(&w, 1);
        helper_put_key(&w, req.blob.ptr, req.blob.len, "");
        helper_put_signature(&w, req.data.ptr, req.data.len);
        FUZZ_ASSERT(w.error == 0);
    }
    wire_writer_free(&w);
    return 0;
}
