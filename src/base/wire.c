/*
 * keyward: SSH wire types. See wire.h for the reading/writing model.
 */
#include "base/wire.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/memzero.h"

uint32_t wire_peek_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void wire_poke_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void wire_reader_init(struct wire_reader *r, const void *data, size_t len)
{
    r->data = data;
    r->len = data == NULL ? 0 : len;
    r->pos = 0;
    r->error = 0;
}

void wire_reader_from_view(struct wire_reader *r, struct wire_view v)
{
    wire_reader_init(r, v.ptr, v.len);
}

size_t wire_remaining(const struct wire_reader *r)
{
    return r->error ? 0 : r->len - r->pos;
}

int wire_reader_finish(const struct wire_reader *r)
{
    if (r->error)
        return r->error;
    if (r->pos != r->len)
        return KW_ERR_TRAILING;
    return 0;
}

/* Returns a pointer to the next n bytes and advances, or NULL on error. */
static const uint8_t *take(struct wire_reader *r, size_t n)
{
    const uint8_t *p;

    if (r->error)
        return NULL;
    if (n > r->len - r->pos) {
        r->error = KW_ERR_TRUNCATED;
        return NULL;
    }
    p = r->data + r->pos;
    r->pos += n;
    return p;
}

uint8_t wire_get_u8(struct wire_reader *r)
{
    const uint8_t *p = take(r, 1);

    return p ? p[0] : 0;
}

bool wire_get_bool(struct wire_reader *r)
{
    return wire_get_u8(r) != 0;
}

uint32_t wire_get_u32(struct wire_reader *r)
{
    const uint8_t *p = take(r, 4);

    return p ? wire_peek_u32(p) : 0;
}

uint64_t wire_get_u64(struct wire_reader *r)
{
    const uint8_t *p = take(r, 8);

    return p ? ((uint64_t)wire_peek_u32(p) << 32) | wire_peek_u32(p + 4) : 0;
}

struct wire_view wire_get_bytes(struct wire_reader *r, size_t n)
{
    struct wire_view v = {NULL, 0};
    const uint8_t *p = take(r, n);

    if (p != NULL) {
        v.ptr = p;
        v.len = n;
    }
    return v;
}

struct wire_view wire_get_string(struct wire_reader *r)
{
    struct wire_view empty = {NULL, 0};
    uint32_t n = wire_get_u32(r);

    if (r->error)
        return empty;
    if (n > r->len - r->pos) {
        /* A length past the end: the classic overread, refused here once. */
        r->error = KW_ERR_TRUNCATED;
        return empty;
    }
    return wire_get_bytes(r, n);
}

struct wire_view wire_get_mpint_unsigned(struct wire_reader *r)
{
    struct wire_view v = wire_get_string(r);

    if (r->error || v.len == 0)
        return v; /* zero is the empty string */
    if (v.ptr[0] & 0x80) {
        r->error = KW_ERR_BAD_FORMAT; /* negative */
        v.len = 0;
        return v;
    }
    if (v.ptr[0] == 0) {
        /* A leading zero is only allowed to keep the next byte's top bit clear. */
        if (v.len == 1 || !(v.ptr[1] & 0x80)) {
            r->error = KW_ERR_BAD_FORMAT;
            v.len = 0;
            return v;
        }
        v.ptr++;
        v.len--;
    }
    return v;
}

struct wire_view wire_get_rest(struct wire_reader *r)
{
    return wire_get_bytes(r, wire_remaining(r));
}

bool wire_view_eq(struct wire_view v, const void *data, size_t len)
{
    return v.len == len && (len == 0 || memcmp(v.ptr, data, len) == 0);
}

bool wire_view_eq_str(struct wire_view v, const char *s)
{
    return wire_view_eq(v, s, strlen(s));
}

void wire_writer_init(struct wire_writer *w)
{
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->error = 0;
}

void wire_writer_free(struct wire_writer *w)
{
    if (w->buf != NULL) {
        kw_memzero(w->buf, w->cap);
        free(w->buf);
    }
    wire_writer_init(w);
}

void wire_writer_reset(struct wire_writer *w)
{
    if (w->buf != NULL)
        kw_memzero(w->buf, w->len);
    w->len = 0;
    w->error = 0;
}

/* Makes room for n more bytes; returns the write position or NULL. */
static uint8_t *reserve(struct wire_writer *w, size_t n)
{
    size_t need, cap;
    uint8_t *nbuf;

    if (w->error)
        return NULL;
    if (n > WIRE_MAX_WRITER - w->len) {
        w->error = KW_ERR_TOO_LARGE;
        return NULL;
    }
    need = w->len + n;
    if (need > w->cap) {
        cap = w->cap ? w->cap : 256;
        while (cap < need)
            cap *= 2;
        /* Not realloc: the old block may hold secrets and must be zeroed. */
        if ((nbuf = malloc(cap)) == NULL) {
            w->error = KW_ERR_ALLOC;
            return NULL;
        }
        if (w->buf != NULL) {
            memcpy(nbuf, w->buf, w->len);
            kw_memzero(w->buf, w->cap);
            free(w->buf);
        }
        w->buf = nbuf;
        w->cap = cap;
    }
    return w->buf + w->len;
}

void wire_put_bytes(struct wire_writer *w, const void *data, size_t len)
{
    uint8_t *p = reserve(w, len);

    if (p == NULL)
        return;
    if (len)
        memcpy(p, data, len);
    w->len += len;
}

void wire_put_u8(struct wire_writer *w, uint8_t v)
{
    wire_put_bytes(w, &v, 1);
}

void wire_put_bool(struct wire_writer *w, bool v)
{
    wire_put_u8(w, v ? 1 : 0);
}

void wire_put_u32(struct wire_writer *w, uint32_t v)
{
    uint8_t b[4];

    wire_poke_u32(b, v);
    wire_put_bytes(w, b, 4);
}

void wire_put_u64(struct wire_writer *w, uint64_t v)
{
    wire_put_u32(w, (uint32_t)(v >> 32));
    wire_put_u32(w, (uint32_t)v);
}

void wire_put_string(struct wire_writer *w, const void *data, size_t len)
{
    if (len > UINT32_MAX) {
        if (w->error == 0)
            w->error = KW_ERR_TOO_LARGE;
        return;
    }
    wire_put_u32(w, (uint32_t)len);
    wire_put_bytes(w, data, len);
}

void wire_put_cstring(struct wire_writer *w, const char *s)
{
    wire_put_string(w, s, strlen(s));
}

void wire_put_view(struct wire_writer *w, struct wire_view v)
{
    wire_put_string(w, v.ptr, v.len);
}

void wire_put_mpint_unsigned(struct wire_writer *w, const uint8_t *mag, size_t len)
{
    bool pad;

    while (len > 0 && mag[0] == 0) {
        mag++;
        len--;
    }
    pad = len > 0 && (mag[0] & 0x80);
    wire_put_u32(w, (uint32_t)(len + (pad ? 1 : 0)));
    if (pad)
        wire_put_u8(w, 0);
    wire_put_bytes(w, mag, len);
}

size_t wire_begin_string(struct wire_writer *w)
{
    size_t mark = w->len;

    wire_put_u32(w, 0);
    return mark;
}

void wire_end_string(struct wire_writer *w, size_t mark)
{
    if (w->error || mark + 4 > w->len)
        return;
    wire_poke_u32(w->buf + mark, (uint32_t)(w->len - mark - 4));
}

struct wire_view wire_writer_view(const struct wire_writer *w)
{
    struct wire_view v = {w->buf, w->error ? 0 : w->len};

    return v;
}
