/*
 * keyward: per-connection session bindings. See binding.h.
 */
#include "agent/binding.h"

#include <stdlib.h>
#include <string.h>

void binding_set_init(struct binding_set *bs)
{
    memset(bs, 0, sizeof(*bs));
}

void binding_set_clear(struct binding_set *bs)
{
    size_t i;

    for (i = 0; i < bs->count; i++)
        key_free(bs->slots[i].hostkey);
    free(bs->slots);
    binding_set_init(bs);
}

void binding_note_failure(struct binding_set *bs)
{
    bs->attempted = true;
}

enum binding_result binding_record(struct binding_set *bs, struct key *hostkey, const uint8_t *sid,
                                   size_t sid_len, bool forwarding, const char **why, size_t *slot)
{
    size_t i;

    bs->attempted = true;
    *why = NULL;
    if (sid_len > BINDING_MAX_SID) {
        *why = "session ID too long";
        goto refuse;
    }
    for (i = 0; i < bs->count; i++) {
        const struct binding *b = &bs->slots[i];
        bool sid_match = b->sid_len == sid_len && memcmp(b->sid, sid, sid_len) == 0;

        if (!b->forwarding) {
            *why = "attempt to bind session ID to socket previously bound for "
                   "authentication attempt";
            goto refuse;
        }
        if (sid_match && key_equal(b->hostkey, hostkey)) {
            *slot = i;
            return BINDING_ALREADY;
        }
        if (sid_match) {
            *why = "session ID recorded against different key";
            goto refuse;
        }
        /* A new session id with a known key is normal: two sessions to one host. */
    }
    if (bs->count >= BINDING_MAX) {
        *why = "too many session IDs recorded";
        goto refuse;
    }
    if (bs->slots == NULL && (bs->slots = calloc(BINDING_MAX, sizeof(*bs->slots))) == NULL) {
        *why = "out of memory";
        goto refuse;
    }
    i = bs->count++;
    bs->slots[i].hostkey = hostkey;
    memcpy(bs->slots[i].sid, sid, sid_len);
    bs->slots[i].sid_len = sid_len;
    bs->slots[i].forwarding = forwarding;
    *slot = i;
    return BINDING_RECORDED;
refuse:
    return BINDING_REFUSED;
}
