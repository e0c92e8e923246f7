/*
 * keyward: SSH keys and certificates <-> OpenSSL EVP_PKEY.
 *
 * A struct key is one SSH identity as the protocol names it: a plain public
 * key, or an OpenSSH certificate (PROTOCOL.certkeys) wrapping one. It may
 * also hold the private half. Every cryptographic operation goes through
 * libcrypto; this file only translates between SSH encodings and OpenSSL.
 *
 * Private key material lives only inside the EVP_PKEY, imported so that
 * OpenSSL keeps it in its secure heap when that heap is initialised, and
 * key_free() releases it with clearing. Every block libcrypto frees is
 * cleared first (key_openssl_frees_cleared()). The one exception to the
 * secure heap: OpenSSL 3.5 keeps an ML-DSA key's private part in ordinary
 * memory, whatever the import (docs/security.md).
 */
#ifndef KEYWARD_KEY_H
#define KEYWARD_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "base/wire.h"

enum key_kind {
    KEY_ED25519 = 1,
    KEY_ECDSA_P256,
    KEY_ECDSA_P384,
    KEY_ECDSA_P521,
    KEY_RSA,
    /*
     * ssh-mldsa44-ed25519@openssh.com: ML-DSA-44 and Ed25519 together
     * (draft-miller-sshm-mldsa44-ed25519-composite-sigs). Needs OpenSSL >=
     * 3.5; built against an older one, such keys are recognised and refused
     * with KW_ERR_NO_SUPPORT (key_unsupported_why()).
     */
    KEY_MLDSA44_ED25519,
    /*
     * FIDO authenticator keys (OpenSSH's PROTOCOL.u2f): the public key is an
     * Ed25519 or P-256 key plus the application string; the private part is
     * a key handle only the authenticator can use, so key_sign() refuses
     * them and the agent asks a provider helper instead (docs/providers.md).
     */
    KEY_SK_ED25519,
    KEY_SK_ECDSA_P256,
};

/* The flags of a FIDO key and of its signatures (PROTOCOL.u2f). */
#define KEY_SK_USER_PRESENCE_REQD     0x01
#define KEY_SK_USER_VERIFICATION_REQD 0x04

/* OpenSSH's limits on RSA modulus size. */
#define KEY_RSA_MIN_BITS 1024
#define KEY_RSA_MAX_BITS 16384

/* Sign request flags (RFC 9987). */
#define KEY_SIGN_RSA_SHA2_256 0x02
#define KEY_SIGN_RSA_SHA2_512 0x04

/* Certificate fields that policy decisions need (PROTOCOL.certkeys). */
#define KEY_CERT_USER 1
#define KEY_CERT_HOST 2

struct key_cert {
    uint32_t type;         /* KEY_CERT_USER or KEY_CERT_HOST */
    uint64_t valid_after;  /* seconds since the epoch */
    uint64_t valid_before; /* seconds since the epoch */
    uint8_t *principals;   /* the raw principals field: a list of strings */
    size_t principals_len;
    struct key *ca;      /* the signing CA's (plain) public key */
    size_t critical_len; /* length of the critical options field; 0: none */
    char sig_alg[32];    /* the algorithm of the CA's signature, e.g. "rsa-sha2-512" */
};

struct key_sign_pool;

struct key {
    enum key_kind kind;
    EVP_PKEY *pkey;    /* for KEY_MLDSA44_ED25519: the ML-DSA-44 half */
    EVP_PKEY *pkey_ed; /* KEY_MLDSA44_ED25519 only: the Ed25519 half */
    bool has_private;
    bool is_cert;
    uint8_t *blob; /* wire public blob: the certificate when is_cert */
    size_t blob_len;
    uint8_t *plain_blob; /* the plain public key blob (== blob unless is_cert) */
    size_t plain_blob_len;
    struct key_cert *cert; /* set when is_cert */
    /*
     * FIDO keys (key_is_sk()): the application ("ssh:" by default), part of
     * the public key; and, from ADD_IDENTITY only, the key's flags and the
     * authenticator's key handle (cleared when the key is freed).
     */
    char *sk_application;
    uint8_t sk_flags;
    uint8_t *sk_key_handle;
    size_t sk_key_handle_len;
    /*
     * References: a key being used by a signing job stays alive if it is
     * removed meanwhile. Only the event loop thread takes or drops them.
     */
    unsigned refs;
    /*
     * Signing contexts prepared for this key and kept between signatures
     * (key.c, "Prepared signing contexts"); any thread may take one.
     */
    struct key_sign_pool *sign_pool;
};

/*
 * True if every block libcrypto frees is cleared first. key.c installs that
 * allocator before main(); it can only fail if libcrypto allocated earlier.
 * OpenSSL 3.0 itself frees copies of private keys uncleared (key.c).
 */
bool key_openssl_frees_cleared(void);

/* Parses a public key or certificate blob. Certificates are checked against
 * their CA signature, as OpenSSH does when it decodes one. */
int key_from_blob(const uint8_t *blob, size_t len, struct key **out);

/* Like key_from_blob(), for plain keys only: a certificate is refused unparsed. */
int key_from_plain_blob(const uint8_t *blob, size_t len, struct key **out);

/*
 * Parses a private key as sent in SSH_AGENTC_ADD_IDENTITY: the key type
 * string, then the type-specific fields. Consumes exactly those fields from
 * r (the comment and constraints that follow are the caller's). Checks that
 * the private half matches the public half and, for a certificate, the
 * certificate's key.
 */
int key_from_private(struct wire_reader *r, struct key **out);

/* Writes the private key in the ADD_IDENTITY encoding (test clients, probe). */
int key_private_serialize(const struct key *k, struct wire_writer *w);

/* Generates a fresh private key (tests, probe). bits is used for RSA only. */
int key_generate(enum key_kind kind, unsigned bits, struct key **out);

/*
 * Signs data. Writes the SSH signature blob (string algorithm, string
 * signature) to w. flags are the sign request's flags; for RSA they choose
 * SHA-256 or SHA-512, and with neither the SHA-1 "ssh-rsa" form is used.
 */
int key_sign(const struct key *k, const uint8_t *data, size_t len, uint32_t flags,
             struct wire_writer *w);

/*
 * Frees the prepared signing contexts k keeps between signatures (key.c)
 * that no thread is using; the next signature prepares one again. For
 * tests that count allocations: every run then starts from the same state
 * (tests/oom/oom_selftest.c).
 */
void key_sign_contexts_drop(const struct key *k);

/* Verifies an SSH signature blob over data with the (public) key. */
int key_verify(const struct key *k, const uint8_t *sig, size_t siglen, const uint8_t *data,
               size_t len);

/* The algorithm name that a signature blob carries, e.g. "rsa-sha2-256". */
int key_signature_algorithm(const uint8_t *sig, size_t siglen, char *buf, size_t bufsize);

/*
 * Fingerprints of the plain public key, as ssh-keygen -l prints them
 * (src/crypto/fingerprint.c). key_fingerprint() is the one people read in
 * logs and confirm prompts: SHA-256 unless keyward-agent -E chose MD5 at
 * start-up. key_fingerprint_sha256() is always "SHA256:<base64>", for
 * records that programs read (the audit log).
 */
enum key_fp_hash {
    KEY_FP_SHA256, /* "SHA256:<base64, unpadded>" */
    KEY_FP_MD5,    /* "MD5:xx:xx:...:xx" */
};
void key_fingerprint(const struct key *k, char *buf, size_t bufsize);
void key_fingerprint_sha256(const struct key *k, char *buf, size_t bufsize);
/* -E: "sha256" or "md5", as ssh-agent and ssh-keygen spell them. */
int key_fp_hash_from_name(const char *name, enum key_fp_hash *out);
/* Sets the hash key_fingerprint() uses, once, before any key is added. */
void key_fingerprint_set_hash(enum key_fp_hash hash);
#define KEY_FINGERPRINT_SIZE 64

/* "ssh-ed25519", "ecdsa-sha2-nistp256-cert-v01@openssh.com", ... */
const char *key_type_name(const struct key *k);
/* "ED25519", "ECDSA", "RSA", "ED25519-CERT", ... as OpenSSH's logs say. */
const char *key_short_name(const struct key *k);

/* True if both name the same wire identity (same blob). */
bool key_equal(const struct key *a, const struct key *b);
/* True if both have the same public key, certificates or not. */
bool key_equal_public(const struct key *a, const struct key *b);

/*
 * True if alg (a userauth request's public key algorithm) names a key of
 * k's kind and form: "rsa-sha2-512" for a plain RSA key,
 * "rsa-sha2-256-cert-v01@openssh.com" for an RSA certificate, and so on.
 */
bool key_algorithm_matches(const struct key *k, struct wire_view alg);

/*
 * True if k is a host certificate valid at now (seconds since the epoch)
 * that names hostname among its principals (shell-style patterns allowed,
 * as OpenSSH allows for host certificates), has no critical options and
 * whose CA signed it with an algorithm key_ca_sig_alg_allowed() accepts.
 */
bool key_cert_valid_for_host(const struct key *k, const char *hostname, uint64_t now);

/* True for the CA signature algorithms OpenSSH accepts (not SHA-1 "ssh-rsa"). */
bool key_ca_sig_alg_allowed(const char *alg);

/*
 * Private keys live in OpenSSL's secure heap; once it is full no key can be
 * parsed, and signatures that need secure scratch memory fail (ECDSA ones
 * did, in issue 22's review). So a part of it is kept for signing:
 * 1/KEY_SECURE_HEAP_RESERVE_DIV
 * (1 MiB of keyward-agent's 8 MiB). False when adding a key would eat into
 * that reserve; *used and *size (0: no secure heap) say how full it is.
 */
#define KEY_SECURE_HEAP_RESERVE_DIV 8
bool key_secure_heap_has_room(size_t *used, size_t *size);

/*
 * Sets up OpenSSL's secure heap (CRYPTO_secure_malloc_init(), whose result
 * it returns: 0 failed, 1 locked, 2 not locked) and remembers its size for
 * key_secure_heap_has_room(). The one way to set it up where keys are held.
 */
int key_secure_heap_init(size_t size, size_t minsize);

/* True if this build can use keys of kind (false: ML-DSA without OpenSSL 3.5). */
bool key_kind_supported(enum key_kind kind);

/*
 * Why a key was refused with KW_ERR_NO_SUPPORT, for the log line: names
 * the key type, what it needs and the libcrypto this build uses.
 */
const char *key_unsupported_why(void);

/* True for the FIDO kinds (sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com). */
bool key_is_sk(const struct key *k);

/*
 * The message a FIDO key's signature covers (PROTOCOL.u2f): SHA-256 of the
 * application, the signature's flags, its counter (big-endian) and SHA-256
 * of data. out must hold KEY_SK_SIGNED_LEN bytes.
 */
#define KEY_SK_SIGNED_LEN 69
int key_sk_signed_message(const char *application, uint8_t flags, uint32_t counter,
                          const uint8_t *data, size_t len, uint8_t out[KEY_SK_SIGNED_LEN]);

/* Takes another reference; key_free() drops one and frees on the last. */
struct key *key_ref(struct key *k);
void key_free(struct key *k);

#endif
