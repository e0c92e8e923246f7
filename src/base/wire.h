/*
 * keyward: SSH wire types (RFC 4251 section 5).
 *
 * Reading: a wire_reader walks a byte range. Every getter is bounds-checked;
 * the first failure sets a sticky error and every later getter returns a
 * zero value, so a parser reads a whole message and checks once at the end:
 *
 *     struct wire_reader r;
 *     wire_reader_init(&r, body, len);
 *     blob = wire_get_string(&r);
 *     flags = wire_get_u32(&r);
 *     if ((err = wire_reader_finish(&r)) != 0)   // also rejects trailing bytes
 *         goto out;
 *
 * Strings come back as views into the input, never copies, so nothing is
 * allocated while parsing and nothing is left behind to zero.
 *
 * Writing: a wire_writer is a growable buffer with a sticky error. Because
 * it may hold key material, every buffer it drops (on growth or free) is
 * zeroed first.
 */
#ifndef KEYWARD_WIRE_H
#define KEYWARD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The agent protocol's frame limit; also the cap for any single writer. */
#define WIRE_MAX_MESSAGE (256 * 1024)
#define WIRE_MAX_WRITER  (4 * 1024 * 1024)

struct wire_view {
    const uint8_t *ptr;
    size_t len;
};

struct wire_reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
    int error; /* 0 or a KW_ERR_* code; sticky */
};

void wire_reader_init(struct wire_reader *r, const void *data, size_t len);
/* A reader over a view, e.g. a string that itself holds wire data. */
void wire_reader_from_view(struct wire_reader *r, struct wire_view v);

uint8_t wire_get_u8(struct wire_reader *r);
bool wire_get_bool(struct wire_reader *r);
uint32_t wire_get_u32(struct wire_reader *r);
uint64_t wire_get_u64(struct wire_reader *r);
struct wire_view wire_get_bytes(struct wire_reader *r, size_t n);
struct wire_view wire_get_string(struct wire_reader *r);
/*
 * A non-negative mpint: returns its magnitude bytes with the sign-padding
 * zero removed. Negative numbers and non-minimal encodings are errors.
 */
struct wire_view wire_get_mpint_unsigned(struct wire_reader *r);
/* The rest of the input, consumed. */
struct wire_view wire_get_rest(struct wire_reader *r);

size_t wire_remaining(const struct wire_reader *r);
/* The sticky error, or KW_ERR_TRAILING if input is left over. */
int wire_reader_finish(const struct wire_reader *r);

bool wire_view_eq(struct wire_view v, const void *data, size_t len);
bool wire_view_eq_str(struct wire_view v, const char *s);

struct wire_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int error;
};

void wire_writer_init(struct wire_writer *w);
/* Zeroes and frees the buffer; the writer may be reused after init. */
void wire_writer_free(struct wire_writer *w);
/* Empties the writer (zeroing what it held) but keeps its buffer. */
void wire_writer_reset(struct wire_writer *w);

void wire_put_u8(struct wire_writer *w, uint8_t v);
void wire_put_bool(struct wire_writer *w, bool v);
void wire_put_u32(struct wire_writer *w, uint32_t v);
void wire_put_u64(struct wire_writer *w, uint64_t v);
void wire_put_bytes(struct wire_writer *w, const void *data, size_t len);
void wire_put_string(struct wire_writer *w, const void *data, size_t len);
void wire_put_cstring(struct wire_writer *w, const char *s);
void wire_put_view(struct wire_writer *w, struct wire_view v);
/* Writes big-endian magnitude bytes as a non-negative mpint. */
void wire_put_mpint_unsigned(struct wire_writer *w, const uint8_t *mag, size_t len);
/*
 * Reserves a u32 length field and returns its offset; wire_end_string()
 * fills it in with the number of bytes written since. Used to nest a
 * structure inside a string without building it separately.
 */
size_t wire_begin_string(struct wire_writer *w);
void wire_end_string(struct wire_writer *w, size_t mark);

struct wire_view wire_writer_view(const struct wire_writer *w);

uint32_t wire_peek_u32(const uint8_t *p);
void wire_poke_u32(uint8_t *p, uint32_t v);

#endif
