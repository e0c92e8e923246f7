/*
 * keyward: the SSH userauth request inside a sign request. See userauth.h.
 *
 *   string   session identifier
 *   byte     SSH_MSG_USERAUTH_REQUEST (50)
 *   string   user name
 *   string   service name ("ssh-connection")
 *   string   "publickey" or "publickey-hostbound-v00@openssh.com"
 *   boolean  TRUE (a signature follows)
 *   string   public key algorithm name
 *   string   public key blob
 *   string   host key blob (publickey-hostbound-v00 only)
 */
#include "agent/userauth.h"

#include <string.h>

#include "base/err.h"

#define SSH2_MSG_USERAUTH_REQUEST 50

int userauth_parse(const uint8_t *data, size_t len, const struct key *key,
                   struct userauth_request *out)
{
    struct wire_reader r;
    struct wire_view user, service, method, alg, blob, hostkey = {NULL, 0};
    bool hostbound;
    uint8_t type, sig_follows;
    int err;

    memset(out, 0, sizeof(*out));
    wire_reader_init(&r, data, len);
    out->sid = wire_get_string(&r);
    type = wire_get_u8(&r);
    user = wire_get_string(&r);
    service = wire_get_string(&r);
    method = wire_get_string(&r);
    sig_follows = wire_get_u8(&r);
    alg = wire_get_string(&r);
    blob = wire_get_string(&r);
    hostbound = wire_view_eq_str(method, "publickey-hostbound-v00@openssh.com");
    if (hostbound)
        hostkey = wire_get_string(&r);
    if ((err = wire_reader_finish(&r)) != 0)
        return err;
    if (out->sid.len == 0 || type != SSH2_MSG_USERAUTH_REQUEST || sig_follows != 1 ||
        !wire_view_eq_str(service, "ssh-connection") ||
        (!hostbound && !wire_view_eq_str(method, "publickey")))
        return KW_ERR_BAD_FORMAT;
    if (user.len == 0 || user.len >= sizeof(out->user) || memchr(user.ptr, '\0', user.len))
        return KW_ERR_BAD_FORMAT;
    /* It must be a request to authenticate with this very key. */
    if (!wire_view_eq(blob, key->blob, key->blob_len) || !key_algorithm_matches(key, alg))
        return KW_ERR_BAD_FORMAT;
    memcpy(out->user, user.ptr, user.len);
    out->user[user.len] = '\0';
    if (hostbound && (err = key_from_blob(hostkey.ptr, hostkey.len, &out->hostkey)) != 0)
        return err;
    return 0;
}

void userauth_free(struct userauth_request *ua)
{
    key_free(ua->hostkey);
    memset(ua, 0, sizeof(*ua));
}
