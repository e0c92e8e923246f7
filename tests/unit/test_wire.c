/*
 * Unit tests: the wire reader and writer, including every way input can
 * be short, long or malformed.
 */
#include <stdint.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/wire.h"
#include "check.h"

static void test_roundtrip(void)
{
    struct wire_writer w;
    struct wire_reader r;
    struct wire_view s, m;
    static const uint8_t mag[] = {0x80, 0x01};

    wire_writer_init(&w);
    wire_put_u8(&w, 7);
    wire_put_u32(&w, 0xdeadbeef);
    wire_put_u64(&w, 0x0102030405060708ULL);
    wire_put_cstring(&w, "hello");
    wire_put_mpint_unsigned(&w, mag, sizeof(mag));
    wire_put_bool(&w, true);
    CHECK_EQ(w.error, 0);
    /* mpint with top bit set gains a zero byte: 00 00 00 03 00 80 01 */
    CHECK_EQ(w.len, 1 + 4 + 8 + 9 + 7 + 1);

    wire_reader_init(&r, w.buf, w.len);
    CHECK_EQ(wire_get_u8(&r), 7);
    CHECK_EQ(wire_get_u32(&r), 0xdeadbeef);
    CHECK(wire_get_u64(&r) == 0x0102030405060708ULL);
    s = wire_get_string(&r);
    CHECK(wire_view_eq_str(s, "hello"));
    m = wire_get_mpint_unsigned(&r);
    CHECK(wire_view_eq(m, mag, sizeof(mag)));
    CHECK(wire_get_bool(&r));
    CHECK_EQ(wire_reader_finish(&r), 0);
    wire_writer_free(&w);
}

static void test_truncation_is_sticky(void)
{
    static const uint8_t short_u32[] = {0, 0, 1};
    static const uint8_t str_past_end[] = {0, 0, 0, 9, 'a', 'b'};
    static const uint8_t huge_len[] = {0xff, 0xff, 0xff, 0xff, 'a'};
    struct wire_reader r;
    struct wire_view v;

    wire_reader_init(&r, short_u32, sizeof(short_u32));
    CHECK_EQ(wire_get_u32(&r), 0);
    CHECK_EQ(r.error, KW_ERR_TRUNCATED);
    /* Every later read returns zero values, not data. */
    CHECK_EQ(wire_get_u8(&r), 0);
    CHECK_EQ(wire_remaining(&r), 0);
    CHECK_EQ(wire_reader_finish(&r), KW_ERR_TRUNCATED);

    wire_reader_init(&r, str_past_end, sizeof(str_past_end));
    v = wire_get_string(&r);
    CHECK(v.ptr == NULL && v.len == 0);
    CHECK_EQ(r.error, KW_ERR_TRUNCATED);

    wire_reader_init(&r, huge_len, sizeof(huge_len));
    v = wire_get_string(&r);
    CHECK(v.len == 0);
    CHECK_EQ(r.error, KW_ERR_TRUNCATED);

    wire_reader_init(&r, NULL, 100);
    CHECK_EQ(wire_get_u8(&r), 0);
    CHECK_EQ(r.error, KW_ERR_TRUNCATED);
}

static void test_trailing(void)
{
    static const uint8_t data[] = {1, 2};
    struct wire_reader r;

    wire_reader_init(&r, data, sizeof(data));
    (void)wire_get_u8(&r);
    CHECK_EQ(wire_reader_finish(&r), KW_ERR_TRAILING);
    (void)wire_get_rest(&r);
    CHECK_EQ(wire_reader_finish(&r), 0);
}

static void test_mpint_rules(void)
{
    static const uint8_t negative[] = {0, 0, 0, 1, 0x80};
    static const uint8_t extra_zero[] = {0, 0, 0, 2, 0x00, 0x7f};
    static const uint8_t lone_zero[] = {0, 0, 0, 1, 0x00};
    static const uint8_t zero[] = {0, 0, 0, 0};
    static const uint8_t padded[] = {0, 0, 0, 2, 0x00, 0x80};
    struct wire_reader r;
    struct wire_view v;

    wire_reader_init(&r, negative, sizeof(negative));
    (void)wire_get_mpint_unsigned(&r);
    CHECK_EQ(r.error, KW_ERR_BAD_FORMAT);
    wire_reader_init(&r, extra_zero, sizeof(extra_zero));
    (void)wire_get_mpint_unsigned(&r);
    CHECK_EQ(r.error, KW_ERR_BAD_FORMAT);
    wire_reader_init(&r, lone_zero, sizeof(lone_zero));
    (void)wire_get_mpint_unsigned(&r);
    CHECK_EQ(r.error, KW_ERR_BAD_FORMAT);
    wire_reader_init(&r, zero, sizeof(zero));
    v = wire_get_mpint_unsigned(&r);
    CHECK(r.error == 0 && v.len == 0);
    wire_reader_init(&r, padded, sizeof(padded));
    v = wire_get_mpint_unsigned(&r);
    CHECK(r.error == 0 && v.len == 1 && v.ptr[0] == 0x80);
}

static void test_writer_limits(void)
{
    struct wire_writer w;
    size_t mark;
    uint8_t *big = calloc(1, WIRE_MAX_WRITER);

    wire_writer_init(&w);
    mark = wire_begin_string(&w);
    wire_put_u32(&w, 5);
    wire_end_string(&w, mark);
    CHECK_EQ(w.len, 8);
    CHECK_EQ(wire_peek_u32(w.buf), 4);
    /* Past the cap: sticky error, nothing half-written is reported. */
    wire_put_bytes(&w, big, WIRE_MAX_WRITER);
    CHECK_EQ(w.error, KW_ERR_TOO_LARGE);
    CHECK_EQ(wire_writer_view(&w).len, 0);
    wire_put_u8(&w, 1);
    CHECK_EQ(w.error, KW_ERR_TOO_LARGE);
    wire_writer_reset(&w);
    CHECK_EQ(w.error, 0);
    CHECK_EQ(w.len, 0);
    wire_writer_free(&w);
    free(big);
}

int main(void)
{
    test_roundtrip();
    test_truncation_is_sticky();
    test_trailing();
    test_mpint_rules();
    test_writer_limits();
    return check_finish("test_wire");
}
