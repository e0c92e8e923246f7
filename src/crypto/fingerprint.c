/*
 * Key fingerprints as OpenSSH prints them: a digest of the plain public key
 * blob, "SHA256:" and unpadded base64, or "MD5:" and colon-separated hex.
 * Which one people see is chosen once at start-up (keyward-agent -E), as
 * ssh-agent does; the audit log keeps SHA-256 so that its records compare
 * across agents started with different options.
 */
#include "crypto/key.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "base/err.h"

static enum key_fp_hash display_hash = KEY_FP_SHA256;

int key_fp_hash_from_name(const char *name, enum key_fp_hash *out)
{
    /* ssh-keygen and ssh-agent accept either case. */
    if (strcasecmp(name, "sha256") == 0)
        *out = KEY_FP_SHA256;
    else if (strcasecmp(name, "md5") == 0)
        *out = KEY_FP_MD5;
    else
        return KW_ERR_BAD_FORMAT;
    return 0;
}

void key_fingerprint_set_hash(enum key_fp_hash hash)
{
    display_hash = hash;
}

static void fingerprint_with(const struct key *k, enum key_fp_hash hash, char *buf, size_t bufsize)
{
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned char b64[48];
    unsigned int dlen = sizeof(digest);
    size_t used;
    int n;

    if (bufsize == 0)
        return;
    buf[0] = '\0';
    if (EVP_Digest(k->plain_blob, k->plain_blob_len, digest, &dlen,
                   hash == KEY_FP_MD5 ? EVP_md5() : EVP_sha256(), NULL) != 1)
        return;
    if (hash == KEY_FP_MD5) {
        used = (size_t)snprintf(buf, bufsize, "MD5");
        for (unsigned int i = 0; i < dlen && used < bufsize; i++)
            used += (size_t)snprintf(buf + used, bufsize - used, ":%02x", digest[i]);
        return;
    }
    n = EVP_EncodeBlock(b64, digest, (int)dlen);
    /* ssh-keygen prints SHA256 fingerprints without base64 padding. */
    while (n > 0 && b64[n - 1] == '=')
        b64[--n] = '\0';
    snprintf(buf, bufsize, "SHA256:%s", (const char *)b64);
}

void key_fingerprint(const struct key *k, char *buf, size_t bufsize)
{
    fingerprint_with(k, display_hash, buf, bufsize);
}

void key_fingerprint_sha256(const struct key *k, char *buf, size_t bufsize)
{
    fingerprint_with(k, KEY_FP_SHA256, buf, bufsize);
}
