/*
 * keyward fuzzing and hostile-client support: OpenSSH key files. See keyfile.h.
 */
#include "keyfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/log.h" /* KW_PRINTF */

#define KEYFILE_MAGIC "openssh-key-v1"
#define PEM_BEGIN     "-----BEGIN OPENSSH PRIVATE KEY-----"
#define PEM_END       "-----END OPENSSH PRIVATE KEY-----"

/* Files we read are small; anything bigger is not a key file. */
#define KEYFILE_MAX_SIZE (1024 * 1024)

static int fail(char *err, size_t errlen, const char *fmt, ...) KW_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int file_read_all(const char *path, uint8_t **data, size_t *len)
{
    FILE *f;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, got;

    *data = NULL;
    *len = 0;
    if ((f = fopen(path, "rb")) == NULL)
        return -1;
    for (;;) {
        if (n == cap) {
            uint8_t *nbuf;

            cap = cap ? cap * 2 : 4096;
            if (cap > 64 * KEYFILE_MAX_SIZE || (nbuf = realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = nbuf;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        errno = EIO;
        return -1;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

/*
 * Base64 between two lines of text (or all of it when begin is NULL);
 * EVP_DecodeUpdate skips the line breaks. *out is malloc'd.
 */
static int base64_decode(const char *text, size_t len, uint8_t **out, size_t *outlen)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    uint8_t *buf = NULL;
    int n = 0, m = 0, r = -1;

    if (ctx == NULL || len > KEYFILE_MAX_SIZE)
        goto out;
    if ((buf = malloc(len / 4 * 3 + 4)) == NULL)
        goto out;
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n, (const unsigned char *)text, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, buf + n, &m) != 1)
        goto out;
    *out = buf;
    *outlen = (size_t)(n + m);
    buf = NULL;
    r = 0;
out:
    free(buf);
    EVP_ENCODE_CTX_free(ctx);
    return r;
}

/* How many private fields a key type has in the ADD_IDENTITY encoding. */
static size_t private_field_count(struct wire_view type)
{
    if (wire_view_eq_str(type, "ssh-ed25519"))
        return 2; /* pk, sk */
    if (wire_view_eq_str(type, "ecdsa-sha2-nistp256") ||
        wire_view_eq_str(type, "ecdsa-sha2-nistp384") ||
        wire_view_eq_str(type, "ecdsa-sha2-nistp521"))
        return 3; /* curve, Q, d */
    if (wire_view_eq_str(type, "ssh-rsa"))
        return 6; /* n, e, d, iqmp, p, q */
    return 0;
}

int keyfile_load(const char *path, struct keyfile *kf, char *err, size_t errlen)
{
    struct wire_reader r, pr;
    struct wire_view cipher, kdf, priv, pad;
    uint8_t *text = NULL;
    size_t text_len, i;
    char *begin, *end;
    uint32_t check1, check2;
    int ret = -1;

    memset(kf, 0, sizeof(*kf));
    if (file_read_all(path, &text, &text_len) != 0)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    /* NUL-terminate for strstr; the buffer has room or is grown here. */
    {
        uint8_t *t = realloc(text, text_len + 1);

        if (t == NULL) {
            ret = fail(err, errlen, "%s: out of memory", path);
            goto out;
        }
        text = t;
        text[text_len] = '\0';
    }
    if ((begin = strstr((char *)text, PEM_BEGIN)) == NULL ||
        (end = strstr(begin, PEM_END)) == NULL) {
        ret = fail(err, errlen, "%s: not an OpenSSH private key file", path);
        goto out;
    }
    begin += strlen(PEM_BEGIN);
    if (base64_decode(begin, (size_t)(end - begin), &kf->raw, &kf->raw_len) != 0) {
        ret = fail(err, errlen, "%s: bad base64", path);
        goto out;
    }

    wire_reader_init(&r, kf->raw, kf->raw_len);
    if (!wire_view_eq(wire_get_bytes(&r, sizeof(KEYFILE_MAGIC)), KEYFILE_MAGIC,
                      sizeof(KEYFILE_MAGIC))) {
        ret = fail(err, errlen, "%s: no openssh-key-v1 magic", path);
        goto out;
    }
    cipher = wire_get_string(&r);
    kdf = wire_get_string(&r);
    (void)wire_get_string(&r); /* kdf options */
    if (wire_get_u32(&r) != 1) {
        ret = fail(err, errlen, "%s: not exactly one key", path);
        goto out;
    }
    (void)wire_get_string(&r); /* public key */
    priv = wire_get_string(&r);
    if (wire_reader_finish(&r) != 0) {
        ret = fail(err, errlen, "%s: malformed container", path);
        goto out;
    }
    if (!wire_view_eq_str(cipher, "none") || !wire_view_eq_str(kdf, "none")) {
        ret = fail(err, errlen, "%s: encrypted keys are not supported", path);
        goto out;
    }

    wire_reader_from_view(&pr, priv);
    check1 = wire_get_u32(&pr);
    check2 = wire_get_u32(&pr);
    kf->type = wire_get_string(&pr);
    if (pr.error || check1 != check2) {
        ret = fail(err, errlen, "%s: bad private section", path);
        goto out;
    }
    if ((kf->nfields = private_field_count(kf->type)) == 0) {
        ret = fail(err, errlen, "%s: unsupported key type", path);
        goto out;
    }
    kf->fields.ptr = pr.data + pr.pos;
    for (i = 0; i < kf->nfields; i++) {
        const uint8_t *start = pr.data + pr.pos;

        kf->field[i] = wire_get_string(&pr);
        kf->field_enc[i].ptr = start;
        kf->field_enc[i].len = (size_t)(pr.data + pr.pos - start);
    }
    kf->fields.len = (size_t)(pr.data + pr.pos - kf->fields.ptr);
    kf->comment = wire_get_string(&pr);
    pad = wire_get_rest(&pr);
    if (pr.error) {
        ret = fail(err, errlen, "%s: truncated private key", path);
        goto out;
    }
    /* Padding is 1, 2, 3, ...: checking it catches a misparsed key. */
    for (i = 0; i < pad.len; i++) {
        if (pad.ptr[i] != (uint8_t)(i + 1)) {
            ret = fail(err, errlen, "%s: bad padding", path);
            goto out;
        }
    }
    ret = 0;
out:
    if (text != NULL) {
        OPENSSL_cleanse(text, text_len);
        free(text);
    }
    if (ret != 0)
        keyfile_free(kf);
    return ret;
}

void keyfile_free(struct keyfile *kf)
{
    if (kf->raw != NULL) {
        OPENSSL_cleanse(kf->raw, kf->raw_len);
        free(kf->raw);
    }
    memset(kf, 0, sizeof(*kf));
}

int keyfile_add_request(const struct keyfile *kf, struct wire_writer *w)
{
    wire_put_u8(w, 17); /* SSH_AGENTC_ADD_IDENTITY */
    wire_put_view(w, kf->type);
    wire_put_bytes(w, kf->fields.ptr, kf->fields.len);
    wire_put_view(w, kf->comment);
    return w->error;
}

int keyfile_add_cert_request(const struct keyfile *kf, struct wire_view cert, struct wire_writer *w)
{
    struct wire_reader r;
    struct wire_view cert_type;
    size_t first, i;

    /* The certificate carries the public fields; keep only the private ones. */
    if (wire_view_eq_str(kf->type, "ssh-ed25519"))
        first = 0; /* ed25519 certs still send pk and sk */
    else if (wire_view_eq_str(kf->type, "ssh-rsa"))
        first = 2; /* d, iqmp, p, q */
    else
        first = 2; /* ECDSA: d */
    wire_reader_from_view(&r, cert);
    cert_type = wire_get_string(&r);
    if (r.error)
        return r.error;
    wire_put_u8(w, 17);
    wire_put_view(w, cert_type);
    wire_put_view(w, cert);
    for (i = first; i < kf->nfields; i++)
        wire_put_bytes(w, kf->field_enc[i].ptr, kf->field_enc[i].len);
    wire_put_view(w, kf->comment);
    return w->error;
}

/* An mpint's magnitude: without the zero byte that keeps it positive. */
static struct wire_view magnitude(struct wire_view v)
{
    while (v.len > 0 && v.ptr[0] == 0) {
        v.ptr++;
        v.len--;
    }
    return v;
}

size_t keyfile_secrets(const struct keyfile *kf, struct keyfile_secret *out, size_t max)
{
    size_t n = 0;

    if (wire_view_eq_str(kf->type, "ssh-ed25519")) {
        if (n < max && kf->field[1].len == 64) {
            out[n].name = "seed";
            out[n].value.ptr = kf->field[1].ptr; /* sk is seed || pk */
            out[n].value.len = 32;
            n++;
        }
    } else if (wire_view_eq_str(kf->type, "ssh-rsa")) {
        static const char *const names[] = {"d", "p", "q"};
        static const size_t index[] = {2, 4, 5};
        size_t i;

        for (i = 0; i < 3 && n < max; i++, n++) {
            out[n].name = names[i];
            out[n].value = magnitude(kf->field[index[i]]);
        }
    } else if (n < max) {
        out[n].name = "d";
        out[n].value = magnitude(kf->field[2]);
        n++;
    }
    return n;
}

int pubfile_load(const char *path, uint8_t **blob, size_t *len)
{
    uint8_t *text = NULL;
    size_t text_len;
    char *p, *q;
    int r = -1;

    *blob = NULL;
    *len = 0;
    if (file_read_all(path, &text, &text_len) != 0)
        return -1;
    {
        uint8_t *t = realloc(text, text_len + 1);

        if (t == NULL)
            goto out;
        text = t;
        text[text_len] = '\0';
    }
    /* "type base64 comment": the second field. */
    if ((p = strchr((char *)text, ' ')) == NULL)
        goto out;
    p++;
    q = p + strcspn(p, " \r\n");
    r = base64_decode(p, (size_t)(q - p), blob, len);
out:
    free(text);
    return r;
}
