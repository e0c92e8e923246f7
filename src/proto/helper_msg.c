/*
 * keyward: the provider helper protocol. See helper_msg.h.
 */
#include "proto/helper_msg.h"

#include <string.h>

#include "base/err.h"

int helper_request_decode(const uint8_t *msg, size_t len, struct helper_request *req)
{
    struct wire_reader r;

    memset(req, 0, sizeof(*req));
    wire_reader_init(&r, msg, len);
    req->type = wire_get_u8(&r);
    if (r.error != 0)
        return r.error;
    switch (req->type) {
    case HELPER_LOAD:
        req->module = wire_get_string(&r);
        req->pin = wire_get_string(&r);
        break;
    case HELPER_SIGN:
        req->blob = wire_get_string(&r);
        req->data = wire_get_string(&r);
        req->flags = wire_get_u32(&r);
        break;
    case HELPER_SK_SIGN:
        req->module = wire_get_string(&r);
        req->alg = wire_get_u32(&r);
        req->application = wire_get_string(&r);
        req->key_handle = wire_get_string(&r);
        req->flags = wire_get_u8(&r);
        req->data = wire_get_string(&r);
        req->pin = wire_get_string(&r);
        break;
    default:
        return KW_ERR_KEY_TYPE;
    }
    return wire_reader_finish(&r);
}

int helper_keys_next(struct wire_reader *r, struct wire_view *blob, struct wire_view *comment)
{
    *blob = wire_get_string(r);
    *comment = wire_get_string(r);
    return r->error;
}

int helper_reply_decode(const uint8_t *msg, size_t len, struct helper_reply *rep)
{
    struct wire_reader r;
    struct wire_view blob, comment;
    size_t start;
    uint32_t i;

    memset(rep, 0, sizeof(*rep));
    wire_reader_init(&r, msg, len);
    rep->type = wire_get_u8(&r);
    if (r.error != 0)
        return r.error;
    switch (rep->type) {
    case HELPER_KEYS:
        rep->nkeys = wire_get_u32(&r);
        start = r.pos;
        /* Each pair takes 8 bytes at least: a count beyond that is a lie. */
        if (r.error == 0 && rep->nkeys > wire_remaining(&r) / 8)
            return KW_ERR_TRUNCATED;
        for (i = 0; i < rep->nkeys && r.error == 0; i++)
            (void)helper_keys_next(&r, &blob, &comment);
        if (r.error == 0) {
            rep->keys.ptr = msg + start;
            rep->keys.len = r.pos - start;
        }
        break;
    case HELPER_SIGNATURE:
        rep->sig = wire_get_string(&r);
        break;
    case HELPER_FAIL:
        rep->reason = wire_get_string(&r);
        break;
    default:
        return KW_ERR_KEY_TYPE;
    }
    return wire_reader_finish(&r);
}

void helper_put_load(struct wire_writer *w, const char *module, const void *pin, size_t pin_len)
{
    wire_put_u8(w, HELPER_LOAD);
    wire_put_cstring(w, module);
    wire_put_string(w, pin, pin_len);
}

void helper_put_sign(struct wire_writer *w, const uint8_t *blob, size_t blob_len,
                     const uint8_t *data, size_t data_len, uint32_t flags)
{
    wire_put_u8(w, HELPER_SIGN);
    wire_put_string(w, blob, blob_len);
    wire_put_string(w, data, data_len);
    wire_put_u32(w, flags);
}

void helper_put_sk_sign(struct wire_writer *w, const char *provider, uint32_t alg,
                        const char *application, const uint8_t *key_handle, size_t key_handle_len,
                        uint8_t flags, const uint8_t *data, size_t data_len)
{
    wire_put_u8(w, HELPER_SK_SIGN);
    wire_put_cstring(w, provider);
    wire_put_u32(w, alg);
    wire_put_cstring(w, application);
    wire_put_string(w, key_handle, key_handle_len);
    wire_put_u8(w, flags);
    wire_put_string(w, data, data_len);
    wire_put_u32(w, 0); /* an empty PIN: keyward has no way to ask for one yet */
}

void helper_put_signature(struct wire_writer *w, const uint8_t *sig, size_t sig_len)
{
    wire_put_u8(w, HELPER_SIGNATURE);
    wire_put_string(w, sig, sig_len);
}

void helper_put_fail(struct wire_writer *w, const char *reason)
{
    wire_put_u8(w, HELPER_FAIL);
    wire_put_cstring(w, reason);
}

void helper_put_keys_begin(struct wire_writer *w, uint32_t n)
{
    wire_put_u8(w, HELPER_KEYS);
    wire_put_u32(w, n);
}

void helper_put_key(struct wire_writer *w, const uint8_t *blob, size_t blob_len,
                    const char *comment)
{
    wire_put_string(w, blob, blob_len);
    wire_put_cstring(w, comment != NULL ? comment : "");
}
