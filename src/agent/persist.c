/*
 * keyward: the record a kept key is stored as. See persist.h.
 *
 *   uint32 version (PERSIST_RECORD_VERSION)
 *   uint64 expires
 *   byte   confirm (0 or 1)
 *   string priv
 *   string comment
 *   string dest
 */
#include "agent/persist.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"

size_t persist_record_size(const struct persist_record *rec)
{
    return 4 + 8 + 1 + 4 + rec->priv.len + 4 + rec->comment.len + 4 + rec->dest.len;
}

static uint8_t *put_string(uint8_t *p, struct wire_view v)
{
    wire_poke_u32(p, (uint32_t)v.len);
    if (v.len)
        memcpy(p + 4, v.ptr, v.len);
    return p + 4 + v.len;
}

void persist_record_write(const struct persist_record *rec, uint8_t *buf)
{
    uint8_t *p = buf;

    wire_poke_u32(p, PERSIST_RECORD_VERSION);
    wire_poke_u32(p + 4, (uint32_t)(rec->expires >> 32));
    wire_poke_u32(p + 8, (uint32_t)rec->expires);
    p[12] = rec->confirm ? 1 : 0;
    p = put_string(p + 13, rec->priv);
    p = put_string(p, rec->comment);
    (void)put_string(p, rec->dest);
}

int persist_record_read(const uint8_t *buf, size_t len, struct persist_record *rec)
{
    struct wire_reader r;
    uint32_t version;
    uint8_t confirm;

    memset(rec, 0, sizeof(*rec));
    wire_reader_init(&r, buf, len);
    version = wire_get_u32(&r);
    if (r.error == 0 && version > PERSIST_RECORD_VERSION)
        return KW_ERR_KEY_TYPE;
    if (r.error == 0 && version != PERSIST_RECORD_VERSION)
        return KW_ERR_BAD_FORMAT;
    rec->expires = wire_get_u64(&r);
    confirm = wire_get_u8(&r);
    rec->priv = wire_get_string(&r);
    rec->comment = wire_get_string(&r);
    rec->dest = wire_get_string(&r);
    if (r.error == 0 && confirm > 1)
        return KW_ERR_BAD_FORMAT;
    rec->confirm = confirm == 1;
    return wire_reader_finish(&r);
}

int persist_record_key(const struct persist_record *rec, const uint8_t *pub, size_t pub_len,
                       struct key **out, char *why, size_t whysize)
{
    struct wire_reader r;
    struct key *key = NULL;
    int err;

    *out = NULL;
    wire_reader_from_view(&r, rec->priv);
    if ((err = key_from_private(&r, &key)) != 0 || (err = wire_reader_finish(&r)) != 0) {
        snprintf(why, whysize, "the private key does not parse: %s", kw_strerror(err));
        key_free(key);
        return err;
    }
    if (key_is_sk(key)) {
        /*
         * A FIDO key signs through its provider, which no record keeps
         * (keyward stores none: agent.c), and keyward-agent.exe has no
         * built-in one: loaded, it could only fail every signature.
         */
        snprintf(why, whysize,
                 "a FIDO key (%s) needs its provider: add it with ssh-add -S PROVIDER",
                 key_short_name(key));
        key_free(key);
        return KW_ERR_NO_SUPPORT;
    }
    if (key->blob_len != pub_len || memcmp(key->blob, pub, pub_len) != 0) {
        snprintf(why, whysize, "the private key is not the one the entry names");
        key_free(key);
        return KW_ERR_BAD_KEY;
    }
    if (rec->comment.len != 0 && memchr(rec->comment.ptr, '\0', rec->comment.len) != NULL) {
        snprintf(why, whysize, "the comment holds a NUL byte");
        key_free(key);
        return KW_ERR_BAD_FORMAT;
    }
    *out = key;
    return 0;
}
