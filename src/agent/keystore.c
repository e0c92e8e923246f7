/*
 * keyward: the agent's identities. See keystore.h.
 */
#include "agent/keystore.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/memzero.h"

void keystore_init(struct keystore *ks)
{
    ks->ids = NULL;
    ks->count = 0;
    ks->cap = 0;
}

static void identity_free(struct identity *id)
{
    if (id == NULL)
        return;
    key_free(id->key);
    free(id->sk_provider);
    dest_free(&id->dest);
    if (id->comment != NULL) {
        kw_memzero(id->comment, strlen(id->comment));
        free(id->comment);
    }
    free(id);
}

void keystore_clear(struct keystore *ks)
{
    keystore_remove_all(ks);
    free(ks->ids);
    keystore_init(ks);
}

static size_t index_of(const struct keystore *ks, const uint8_t *blob, size_t len)
{
    size_t i;

    for (i = 0; i < ks->count; i++) {
        const struct key *k = ks->ids[i]->key;

        if (k->blob_len == len && memcmp(k->blob, blob, len) == 0)
            return i;
    }
    return ks->count;
}

int keystore_add(struct keystore *ks, struct key *key, char *comment, uint64_t expires_ms,
                 bool confirm, struct dest_constraints *dest)
{
    struct identity *id, **nids;
    size_t i = index_of(ks, key->blob, key->blob_len);

    if (i == ks->count && ks->count >= KEYSTORE_MAX_IDENTITIES)
        return KW_ERR_TOO_LARGE;
    if ((id = calloc(1, sizeof(*id))) == NULL)
        return KW_ERR_ALLOC;
    id->key = key;
    id->comment = comment;
    id->expires_ms = expires_ms;
    id->confirm = confirm;
    key_fingerprint(key, id->fp, sizeof(id->fp));
    if (i < ks->count) {
        identity_free(ks->ids[i]);
        ks->ids[i] = id;
        goto take_dest;
    }
    if (ks->count == ks->cap) {
        size_t ncap = ks->cap ? ks->cap * 2 : 16;

        if ((nids = realloc(ks->ids, ncap * sizeof(*nids))) == NULL) {
            free(id);
            return KW_ERR_ALLOC;
        }
        ks->ids = nids;
        ks->cap = ncap;
    }
    ks->ids[ks->count++] = id;
take_dest:
    /* Only now that nothing can fail does the identity own the constraints. */
    if (dest != NULL) {
        id->dest = *dest;
        dest->items = NULL;
        dest->count = 0;
    }
    return 0;
}

struct identity *keystore_find(const struct keystore *ks, const uint8_t *blob, size_t len)
{
    size_t i = index_of(ks, blob, len);

    return i < ks->count ? ks->ids[i] : NULL;
}

static void remove_at(struct keystore *ks, size_t i)
{
    identity_free(ks->ids[i]);
    memmove(&ks->ids[i], &ks->ids[i + 1], (ks->count - i - 1) * sizeof(ks->ids[0]));
    ks->count--;
}

int keystore_remove(struct keystore *ks, const uint8_t *blob, size_t len)
{
    size_t i = index_of(ks, blob, len);

    if (i == ks->count)
        return KW_ERR_NOT_FOUND;
    remove_at(ks, i);
    return 0;
}

size_t keystore_remove_all(struct keystore *ks)
{
    size_t i, n = ks->count;

    for (i = 0; i < n; i++)
        identity_free(ks->ids[i]);
    ks->count = 0;
    return n;
}

size_t keystore_remove_provider(struct keystore *ks, const struct provider *p)
{
    size_t i = 0, removed = 0;

    while (i < ks->count) {
        if (ks->ids[i]->provider == p) {
            remove_at(ks, i);
            removed++;
        } else {
            i++;
        }
    }
    return removed;
}

size_t keystore_expire(struct keystore *ks, uint64_t now_ms, uint64_t *next_ms)
{
    size_t i = 0, removed = 0;
    uint64_t next = 0;

    while (i < ks->count) {
        struct identity *id = ks->ids[i];

        if (id->expires_ms != 0 && id->expires_ms <= now_ms) {
            log_info("expired %s %s", key_short_name(id->key), id->fp);
            remove_at(ks, i);
            removed++;
            continue;
        }
        if (id->expires_ms != 0 && (next == 0 || id->expires_ms < next))
            next = id->expires_ms;
        i++;
    }
    if (next_ms != NULL)
        *next_ms = next;
    return removed;
}
