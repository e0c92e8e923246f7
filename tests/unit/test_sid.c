/*
 * Unit tests: the SID comparison behind the Windows peer check
 * (src/platform/sid.c). Under Wine every process runs as the same user, so
 * "another user is refused" cannot be shown end to end there; this is
 * where it is shown. The same program runs on Linux and, cross-built,
 * under Wine.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "platform/platform.h"

#define SID_MAX 68 /* 8 + 15 * 4 */

/* Builds a binary SID S-1-<authority>-<subs...> in buf; returns its length. */
static size_t make_sid(uint8_t *buf, uint64_t authority, int count, ...)
{
    va_list ap;
    uint32_t v;
    int i;

    buf[0] = 1;
    buf[1] = (uint8_t)count;
    for (i = 0; i < 6; i++) /* big-endian, 48 bits */
        buf[2 + i] = (uint8_t)(authority >> (8 * (5 - i)));
    va_start(ap, count);
    for (i = 0; i < count; i++) {
        v = va_arg(ap, uint32_t);
        /* Sub-authorities are little-endian. */
        buf[8 + 4 * i] = (uint8_t)v;
        buf[9 + 4 * i] = (uint8_t)(v >> 8);
        buf[10 + 4 * i] = (uint8_t)(v >> 16);
        buf[11 + 4 * i] = (uint8_t)(v >> 24);
    }
    va_end(ap);
    return 8 + 4 * (size_t)count;
}

/* The user every Wine process runs as, and users that are not it. */
static void test_users(void)
{
    uint8_t self[SID_MAX], same[SID_MAX], other[SID_MAX];
    size_t ls, l;

    ls = make_sid(self, 5, 5, 21u, 0u, 0u, 0u, 1000u);
    l = make_sid(same, 5, 5, 21u, 0u, 0u, 0u, 1000u);
    CHECK(platform_sid_equal(self, ls, same, l));
    CHECK(platform_sid_allowed(same, l, self, ls));

    /* Another user of the same machine: only the last RID differs. */
    l = make_sid(other, 5, 5, 21u, 0u, 0u, 0u, 1001u);
    CHECK(!platform_sid_equal(self, ls, other, l));
    CHECK(!platform_sid_allowed(other, l, self, ls));

    /* Same RID on another machine or domain. */
    l = make_sid(other, 5, 5, 21u, 1u, 2u, 3u, 1000u);
    CHECK(!platform_sid_allowed(other, l, self, ls));

    /* Same numbers under another authority (S-1-16-... is an integrity label). */
    l = make_sid(other, 16, 5, 21u, 0u, 0u, 0u, 1000u);
    CHECK(!platform_sid_allowed(other, l, self, ls));

    /* A prefix of our SID (fewer sub-authorities) is not our SID, nor is a longer one. */
    l = make_sid(other, 5, 4, 21u, 0u, 0u, 0u);
    CHECK(!platform_sid_allowed(other, l, self, ls));
    l = make_sid(other, 5, 6, 21u, 0u, 0u, 0u, 1000u, 1u);
    CHECK(!platform_sid_allowed(other, l, self, ls));
}

/* SYSTEM is served, as root is on Unix; no other built-in account or group is. */
static void test_builtin_accounts(void)
{
    uint8_t self[SID_MAX], sid[SID_MAX];
    size_t ls, l;

    ls = make_sid(self, 5, 5, 21u, 100u, 200u, 300u, 1001u);
    l = make_sid(sid, 5, 1, 18u); /* LocalSystem */
    CHECK(platform_sid_allowed(sid, l, self, ls));
    l = make_sid(sid, 5, 1, 19u); /* LocalService */
    CHECK(!platform_sid_allowed(sid, l, self, ls));
    l = make_sid(sid, 5, 1, 20u); /* NetworkService */
    CHECK(!platform_sid_allowed(sid, l, self, ls));
    l = make_sid(sid, 5, 2, 32u, 544u); /* BUILTIN\Administrators */
    CHECK(!platform_sid_allowed(sid, l, self, ls));
    l = make_sid(sid, 1, 1, 0u); /* Everyone */
    CHECK(!platform_sid_allowed(sid, l, self, ls));
    l = make_sid(sid, 5, 1, 7u); /* Anonymous */
    CHECK(!platform_sid_allowed(sid, l, self, ls));
    l = make_sid(sid, 5, 1, 2u); /* NETWORK */
    CHECK(!platform_sid_allowed(sid, l, self, ls));
    /* S-1-5-18 with an extra sub-authority is not SYSTEM. */
    l = make_sid(sid, 5, 2, 18u, 0u);
    CHECK(!platform_sid_allowed(sid, l, self, ls));
}

/* Malformed SIDs equal nothing, not even themselves: the check fails closed. */
static void test_malformed(void)
{
    uint8_t self[SID_MAX], sid[SID_MAX + 8];
    size_t ls, l;

    ls = make_sid(self, 5, 5, 21u, 0u, 0u, 0u, 1000u);
    memcpy(sid, self, ls);

    /* Truncated by one byte, or to the header only. */
    CHECK(!platform_sid_equal(sid, ls - 1, self, ls));
    CHECK(!platform_sid_allowed(sid, ls - 1, self, ls));
    CHECK(!platform_sid_allowed(sid, 8, self, ls));
    CHECK(!platform_sid_allowed(sid, 0, self, ls));
    CHECK(!platform_sid_allowed(NULL, ls, self, ls));

    /* Our own SID invalid (never read): nobody is allowed but SYSTEM. */
    CHECK(!platform_sid_allowed(sid, ls, NULL, 0));
    CHECK(!platform_sid_allowed(sid, ls, self, ls - 1));

    /* Unknown revision. */
    sid[0] = 2;
    CHECK(!platform_sid_equal(sid, ls, sid, ls));
    sid[0] = 1;

    /* More than 15 sub-authorities. */
    memset(sid, 0, sizeof(sid));
    sid[0] = 1;
    sid[1] = 16;
    CHECK(!platform_sid_equal(sid, sizeof(sid), sid, sizeof(sid)));
    l = make_sid(sid, 5, 15, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u, 15u);
    CHECK_EQ(l, 68);
    CHECK(platform_sid_equal(sid, l, sid, l));
}

/* A SID may sit at the start of a larger buffer (a TOKEN_USER's is): only the SID counts. */
static void test_larger_buffer(void)
{
    uint8_t self[SID_MAX], sid[SID_MAX + 16];
    size_t ls;

    ls = make_sid(self, 5, 5, 21u, 0u, 0u, 0u, 1000u);
    memset(sid, 0xAA, sizeof(sid));
    memcpy(sid, self, ls);
    CHECK(platform_sid_allowed(sid, sizeof(sid), self, ls));
    sid[ls] = 0x55;
    CHECK(platform_sid_allowed(sid, sizeof(sid), self, ls));
    sid[ls - 1] ^= 1; /* the last byte of the last RID */
    CHECK(!platform_sid_allowed(sid, sizeof(sid), self, ls));
}

int main(void)
{
    test_users();
    test_builtin_accounts();
    test_malformed();
    test_larger_buffer();
    return check_finish("test_sid");
}
