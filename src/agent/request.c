/*
 * keyward: decoding agent requests. See request.h.
 */
#include "agent/request.h"

#include <stdlib.h>
#include <string.h>

#include "agent/provider.h"
#include "base/err.h"
#include "base/memzero.h"

/* A C string from a view; refuses embedded NULs, as OpenSSH's cstring does. */
static int view_to_cstring(struct wire_view v, char **out)
{
    char *s;

    if (v.len > 0 && memchr(v.ptr, '\0', v.len) != NULL)
        return KW_ERR_BAD_FORMAT;
    if ((s = malloc(v.len + 1)) == NULL)
        return KW_ERR_ALLOC;
    if (v.len)
        memcpy(s, v.ptr, v.len);
    s[v.len] = '\0';
    *out = s;
    return 0;
}

void add_constraints_free(struct add_constraints *c)
{
    size_t i;

    dest_free(&c->dest);
    for (i = 0; i < c->ncerts; i++)
        key_free(c->certs[i]);
    free(c->certs);
    c->certs = NULL;
    c->ncerts = 0;
}

/*
 * associated-certs-v00@openssh.com, after its name: bool certs_only, then a
 * string holding one or more certificate blobs, each a string. Every one
 * must parse and carry a valid CA signature (key_from_blob()), as OpenSSH
 * requires.
 */
static int decode_associated_certs(struct wire_reader *r, struct add_constraints *c)
{
    struct wire_reader certs;
    struct wire_view blob;
    struct key **grown, *cert;
    int err;

    if (c->certs != NULL)
        return KW_ERR_CONSTRAINT; /* given twice */
    c->certs_only = wire_get_bool(r);
    blob = wire_get_string(r);
    if (r->error)
        return r->error;
    wire_reader_from_view(&certs, blob);
    if (wire_remaining(&certs) == 0)
        return KW_ERR_CONSTRAINT;
    while (wire_remaining(&certs) > 0) {
        blob = wire_get_string(&certs);
        if (certs.error)
            return certs.error;
        if (c->ncerts >= PROVIDER_MAX_CERTS)
            return KW_ERR_TOO_LARGE;
        if ((err = key_from_blob(blob.ptr, blob.len, &cert)) != 0)
            return err;
        if (!cert->is_cert) {
            key_free(cert);
            return KW_ERR_CONSTRAINT;
        }
        if ((grown = realloc(c->certs, (c->ncerts + 1) * sizeof(*grown))) == NULL) {
            key_free(cert);
            return KW_ERR_ALLOC;
        }
        c->certs = grown;
        c->certs[c->ncerts++] = cert;
    }
    return 0;
}

static int decode_constraints(struct wire_reader *r, struct add_constraints *c, bool smartcard)
{
    uint8_t type;

    while (wire_remaining(r) > 0) {
        type = wire_get_u8(r);
        switch (type) {
        case SSH_AGENT_CONSTRAIN_LIFETIME:
            if (c->has_lifetime)
                return KW_ERR_CONSTRAINT; /* given twice */
            c->lifetime_secs = wire_get_u32(r);
            c->has_lifetime = true;
            break;
        case SSH_AGENT_CONSTRAIN_CONFIRM:
            if (c->confirm)
                return KW_ERR_CONSTRAINT;
            c->confirm = true;
            break;
        case SSH_AGENT_CONSTRAIN_EXTENSION: {
            struct wire_view name = wire_get_string(r), body;
            int err;

            if (r->error)
                return r->error;
            /*
             * Destination restrictions, certificates for a token's keys
             * and a FIDO key's provider. Any other extension must make
             * the add fail rather than load a key with less protection
             * than the user asked for.
             */
            /* Its fields follow the name directly (PROTOCOL.agent), unlike a destination's. */
            if (smartcard && wire_view_eq_str(name, ASSOCIATED_CERTS_EXTENSION)) {
                if ((err = decode_associated_certs(r, c)) != 0)
                    return err;
                break;
            }
            /* Likewise: a string, the provider ("internal" or a library's path). */
            if (!smartcard && wire_view_eq_str(name, SK_PROVIDER_EXTENSION)) {
                if (c->has_sk_provider)
                    return KW_ERR_CONSTRAINT; /* given twice */
                c->sk_provider = wire_get_string(r);
                if (r->error)
                    return r->error;
                if (c->sk_provider.len == 0 || c->sk_provider.len >= 4096 ||
                    memchr(c->sk_provider.ptr, '\0', c->sk_provider.len) != NULL)
                    return KW_ERR_CONSTRAINT;
                c->has_sk_provider = true;
                break;
            }
            body = wire_get_string(r);
            if (r->error)
                return r->error;
            if (!wire_view_eq_str(name, DEST_EXTENSION) || c->dest.count != 0)
                return KW_ERR_CONSTRAINT;
            if ((err = dest_decode(body, &c->dest)) != 0)
                return err;
            c->dest_raw = body;
            break;
        }
        default:
            return KW_ERR_CONSTRAINT;
        }
        if (r->error)
            return r->error;
    }
    return r->error;
}

static int decode_add(struct wire_reader *r, struct agent_request *req, bool constrained)
{
    struct wire_view comment;
    size_t start = r->pos;
    int err;

    if ((err = key_from_private(r, &req->u.add.key)) != 0)
        return err;
    req->u.add.priv.ptr = r->data + start;
    req->u.add.priv.len = r->pos - start;
    comment = wire_get_string(r);
    if (r->error)
        return r->error;
    if ((err = view_to_cstring(comment, &req->u.add.comment)) != 0)
        return err;
    if (constrained && (err = decode_constraints(r, &req->u.add.constraints, false)) != 0)
        return err;
    return wire_reader_finish(r);
}

int proto_decode_request(const uint8_t *msg, size_t len, struct agent_request *req)
{
    struct wire_reader r;

    memset(req, 0, sizeof(*req));
    if (len == 0)
        return KW_ERR_TRUNCATED;
    if (len > WIRE_MAX_MESSAGE)
        return KW_ERR_TOO_LARGE;
    wire_reader_init(&r, msg, len);
    req->type = wire_get_u8(&r);
    switch (req->type) {
    case SSH_AGENTC_REQUEST_IDENTITIES:
    case SSH_AGENTC_REMOVE_ALL_IDENTITIES:
        break;
    case SSH_AGENTC_SIGN_REQUEST:
        req->u.sign.key_blob = wire_get_string(&r);
        req->u.sign.data = wire_get_string(&r);
        req->u.sign.flags = wire_get_u32(&r);
        break;
    case SSH_AGENTC_ADD_IDENTITY:
    case SSH_AGENTC_ADD_ID_CONSTRAINED:
        return decode_add(&r, req, req->type == SSH_AGENTC_ADD_ID_CONSTRAINED);
    case SSH_AGENTC_REMOVE_IDENTITY:
        req->u.remove.key_blob = wire_get_string(&r);
        break;
    case SSH_AGENTC_LOCK:
    case SSH_AGENTC_UNLOCK:
        req->u.lock.passphrase = wire_get_string(&r);
        break;
    case SSH_AGENTC_EXTENSION:
        req->u.ext.name = wire_get_string(&r);
        req->u.ext.body = wire_get_rest(&r);
        break;
    case SSH_AGENTC_ADD_SMARTCARD_KEY:
    case SSH_AGENTC_REMOVE_SMARTCARD_KEY:
    case SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED: {
        int err;

        req->u.smartcard.provider = wire_get_string(&r);
        req->u.smartcard.pin = wire_get_string(&r);
        if (r.error)
            return r.error;
        /* Paths and PINs are C strings to OpenSSH: no NUL inside. */
        if (req->u.smartcard.provider.len == 0 ||
            memchr(req->u.smartcard.provider.ptr, '\0', req->u.smartcard.provider.len) != NULL ||
            (req->u.smartcard.pin.len > 0 &&
             memchr(req->u.smartcard.pin.ptr, '\0', req->u.smartcard.pin.len) != NULL))
            return KW_ERR_BAD_FORMAT;
        if (req->type == SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED &&
            (err = decode_constraints(&r, &req->u.smartcard.constraints, true)) != 0)
            return err;
        break;
    }
    default:
        /* Unknown types: the body is not ours to judge. */
        return 0;
    }
    return wire_reader_finish(&r);
}

void proto_request_free(struct agent_request *req)
{
    if (req->type == SSH_AGENTC_ADD_IDENTITY || req->type == SSH_AGENTC_ADD_ID_CONSTRAINED) {
        key_free(req->u.add.key);
        add_constraints_free(&req->u.add.constraints);
        if (req->u.add.comment != NULL) {
            kw_memzero(req->u.add.comment, strlen(req->u.add.comment));
            free(req->u.add.comment);
        }
    }
    if (req->type == SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED)
        add_constraints_free(&req->u.smartcard.constraints);
    memset(req, 0, sizeof(*req));
}

int proto_decode_session_bind(struct wire_view body, struct session_bind_request *sb)
{
    struct wire_reader r;
    struct wire_view hostkey;
    int err;

    memset(sb, 0, sizeof(*sb));
    wire_reader_from_view(&r, body);
    hostkey = wire_get_string(&r);
    sb->sid = wire_get_string(&r);
    sb->signature = wire_get_string(&r);
    sb->forwarding = wire_get_bool(&r);
    if ((err = wire_reader_finish(&r)) != 0)
        return err;
    return key_from_blob(hostkey.ptr, hostkey.len, &sb->hostkey);
}

void proto_session_bind_free(struct session_bind_request *sb)
{
    key_free(sb->hostkey);
    memset(sb, 0, sizeof(*sb));
}
