/*
 * keyward fuzzing and hostile-client support: OpenSSH key files.
 *
 * Reads an unencrypted openssh-key-v1 private key file (what ssh-keygen
 * writes with -N '') and a .pub / -cert.pub file, and turns them into
 * SSH_AGENTC_ADD_IDENTITY requests exactly as ssh-add would send them.
 *
 * The container (PROTOCOL.key in OpenSSH):
 *
 *     "openssh-key-v1\0"
 *     string ciphername    "none"
 *     string kdfname       "none"
 *     string kdfoptions    ""
 *     uint32 nkeys         1
 *     string publickey
 *     string private section:
 *         uint32 check1, uint32 check2 (equal)
 *         string keytype, <type-specific private fields>
 *         string comment
 *         padding 1, 2, 3, ... to a multiple of 8
 *
 * The type-specific private fields are, byte for byte, what ADD_IDENTITY
 * carries after the type name, which is why a file can become a request
 * without touching any cryptography. Everything is parsed with the
 * agent's own bounds-checked wire reader.
 *
 * This file is test code: it holds private keys in ordinary memory and
 * zeroes them only on keyfile_free().
 */
#ifndef KEYWARD_FUZZ_KEYFILE_H
#define KEYWARD_FUZZ_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "base/wire.h"

#define KEYFILE_MAX_FIELDS 6

struct keyfile {
    uint8_t *raw; /* the decoded container; every view below points into it */
    size_t raw_len;
    struct wire_view type;    /* "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa" */
    struct wire_view fields;  /* the private fields, encoded (with length prefixes) */
    struct wire_view comment; /* the key's comment */
    /* Each private field: its value, and its encoding with the length prefix. */
    struct wire_view field[KEYFILE_MAX_FIELDS];
    struct wire_view field_enc[KEYFILE_MAX_FIELDS];
    size_t nfields;
};

/*
 * A secret part of a private key, as it would appear in memory: for the
 * memory scans in tests/hostile (Ed25519 seed, ECDSA d, RSA d, p and q).
 */
struct keyfile_secret {
    const char *name;       /* "seed", "d", "p", "q" */
    struct wire_view value; /* big-endian magnitude (mpint without sign byte) or raw bytes */
};

/* Returns 0, or -1 with a reason in err. */
int keyfile_load(const char *path, struct keyfile *kf, char *err, size_t errlen);
void keyfile_free(struct keyfile *kf);

/* The ADD_IDENTITY (17) message body for the plain key, with its comment. */
int keyfile_add_request(const struct keyfile *kf, struct wire_writer *w);

/*
 * The ADD_IDENTITY message body for the key's certificate (cert is the
 * decoded blob of a -cert.pub file), as ssh-add sends it when it finds
 * id_foo-cert.pub beside id_foo.
 */
int keyfile_add_cert_request(const struct keyfile *kf, struct wire_view cert,
                             struct wire_writer *w);

/* The secrets of the key; returns how many were written (at most max). */
size_t keyfile_secrets(const struct keyfile *kf, struct keyfile_secret *out, size_t max);

/*
 * Reads the blob of a public key or certificate file ("type base64
 * [comment]"). *blob is malloc'd. Returns 0 or -1.
 */
int pubfile_load(const char *path, uint8_t **blob, size_t *len);

/* Reads a whole file into a malloc'd buffer. Returns 0 or -1 (errno set). */
int file_read_all(const char *path, uint8_t **data, size_t *len);

#endif
