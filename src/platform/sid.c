/*
 * keyward: comparing Windows SIDs without Windows. See platform.h.
 *
 * The peer check on Windows comes down to "is this token user our user (or
 * SYSTEM)?". Keeping that decision in plain C over the documented binary
 * layout lets it be unit-tested everywhere, including the cases Wine cannot
 * produce (every Wine process runs as the same user).
 */
#include "platform/platform.h"

#include <stdint.h>
#include <string.h>

/* Revision 1 is the only one there is; at most 15 sub-authorities. */
#define SID_REVISION_1  1
#define SID_MAX_SUBAUTH 15
#define SID_HEADER      8 /* revision, count, 6-byte identifier authority */

/* S-1-5-18, LocalSystem: the account services (and SYSTEM tools) run as. */
static const uint8_t sid_local_system[] = {
    SID_REVISION_1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0,
};

/* The length of the SID at the start of buf, or 0 if it is not a whole, valid SID. */
static size_t sid_length(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t need;

    if (p == NULL || len < SID_HEADER)
        return 0;
    if (p[0] != SID_REVISION_1 || p[1] > SID_MAX_SUBAUTH)
        return 0;
    need = SID_HEADER + 4 * (size_t)p[1];
    /* A buffer may be larger than its SID (a TOKEN_USER is); never smaller. */
    return len >= need ? need : 0;
}

bool platform_sid_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t la = sid_length(a, alen), lb = sid_length(b, blen);

    return la != 0 && la == lb && memcmp(a, b, la) == 0;
}

bool platform_sid_allowed(const void *peer, size_t peer_len, const void *self, size_t self_len)
{
    return platform_sid_equal(peer, peer_len, self, self_len) ||
           platform_sid_equal(peer, peer_len, sid_local_system, sizeof(sid_local_system));
}
