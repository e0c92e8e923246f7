/*
 * keyward: the provider helper protocol, version 1 (docs/providers.md).
 *
 * Message types, and the decoder and encoders of their bodies. Plain wire
 * code over src/base/wire.h: no PKCS#11, no I/O, so that the agent's side
 * and the fuzz harness can use it as the helper does.
 *
 * Decoded strings are views into the message (wire_reader), never copies:
 * a LOAD's PIN lives only in the received frame, which the framed
 * connection clears once it is consumed.
 */
#ifndef KEYWARD_PROTO_HELPER_MSG_H
#define KEYWARD_PROTO_HELPER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "base/wire.h"

enum helper_msg {
    HELPER_LOAD = 1,      /* agent -> helper: string module, string PIN */
    HELPER_KEYS = 2,      /* helper -> agent: uint32 n, n x (string blob, string comment) */
    HELPER_SIGN = 3,      /* agent -> helper: string blob, string data, uint32 flags */
    HELPER_SIGNATURE = 4, /* helper -> agent: string SSH signature blob */
    HELPER_FAIL = 5,      /* helper -> agent: string reason */
    /*
     * agent -> keyward-sk-helper: string provider ("internal" or a
     * middleware path), uint32 alg (HELPER_SK_ALG_*), string application,
     * string key handle, uint8 flags, string data, string PIN. Answered by
     * SIGNATURE (the whole SSH signature) or FAIL.
     */
    HELPER_SK_SIGN = 6,
};

/* The middleware interface's algorithm numbers (OpenSSH's sk-api.h). */
#define HELPER_SK_ALG_ECDSA_P256 0
#define HELPER_SK_ALG_ED25519    1

/* A request a helper takes: LOAD or SIGN (PKCS#11), SK_SIGN (FIDO). */
struct helper_request {
    uint8_t type;
    struct wire_view module;      /* LOAD; SK_SIGN: the provider */
    struct wire_view pin;         /* LOAD, SK_SIGN */
    struct wire_view blob;        /* SIGN */
    struct wire_view data;        /* SIGN, SK_SIGN */
    uint32_t flags;               /* SIGN; SK_SIGN: the key's flags (a byte) */
    uint32_t alg;                 /* SK_SIGN */
    struct wire_view application; /* SK_SIGN */
    struct wire_view key_handle;  /* SK_SIGN */
};

/*
 * Decodes one message body (type byte included). 0, or KW_ERR_KEY_TYPE for
 * a type the helper does not take, or a wire error for a malformed body
 * (truncated, trailing bytes). *req's views point into msg.
 */
int helper_request_decode(const uint8_t *msg, size_t len, struct helper_request *req);

/* A reply the agent takes: KEYS, SIGNATURE or FAIL. */
struct helper_reply {
    uint8_t type;
    uint32_t nkeys;          /* KEYS: how many */
    struct wire_view keys;   /* KEYS: the nkeys (blob, comment) pairs, for helper_keys_next() */
    struct wire_view sig;    /* SIGNATURE: the SSH signature blob */
    struct wire_view reason; /* FAIL */
};

/*
 * Decodes one reply body (type byte included): 0, KW_ERR_KEY_TYPE for a
 * type that is not a reply, or a wire error (KEYS: every pair is checked,
 * so that helper_keys_next() cannot fail after this succeeded).
 */
int helper_reply_decode(const uint8_t *msg, size_t len, struct helper_reply *rep);

/*
 * The next (blob, comment) pair of a decoded KEYS; r was set up with
 * wire_reader_from_view(r, rep.keys). 0, or a wire error after the last.
 */
int helper_keys_next(struct wire_reader *r, struct wire_view *blob, struct wire_view *comment);

/* Encoders: each writes one whole message body (type byte first) to w. */
void helper_put_load(struct wire_writer *w, const char *module, const void *pin, size_t pin_len);
void helper_put_sign(struct wire_writer *w, const uint8_t *blob, size_t blob_len,
                     const uint8_t *data, size_t data_len, uint32_t flags);
void helper_put_sk_sign(struct wire_writer *w, const char *provider, uint32_t alg,
                        const char *application, const uint8_t *key_handle, size_t key_handle_len,
                        uint8_t flags, const uint8_t *data, size_t data_len);
void helper_put_signature(struct wire_writer *w, const uint8_t *sig, size_t sig_len);
void helper_put_fail(struct wire_writer *w, const char *reason);
/* KEYS: helper_put_keys_begin(w, n), then n helper_put_key(). */
void helper_put_keys_begin(struct wire_writer *w, uint32_t n);
void helper_put_key(struct wire_writer *w, const uint8_t *blob, size_t blob_len,
                    const char *comment);

#endif
