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
