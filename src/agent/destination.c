/*
 * keyward: destination constraints. See destination.h.
 */
#include "agent/destination.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/match.h"

/* ---- decoding ---- */

static void hop_free(struct dest_hop *h)
{
    size_t i;

    for (i = 0; i < h->nkeys; i++)
        key_free(h->keys[i]);
    free(h->keys);
    free(h->key_is_ca);
    free(h->user);
    free(h->hostname);
    memset(h, 0, sizeof(*h));
}

void dest_free(struct dest_constraints *dc)
{
    size_t i;

    for (i = 0; i < dc->count; i++) {
        hop_free(&dc->items[i].from);
        hop_free(&dc->items[i].to);
    }
    free(dc->items);
    dc->items = NULL;
    dc->count = 0;
}

/* An empty string is "not given" (NULL); NULs inside are refused. */
static int optional_cstring(struct wire_view v, char **out)
{
    *out = NULL;
    if (v.len == 0)
        return 0;
    if (memchr(v.ptr, '\0', v.len) != NULL)
        return KW_ERR_BAD_FORMAT;
    if ((*out = malloc(v.len + 1)) == NULL)
        return KW_ERR_ALLOC;
    memcpy(*out, v.ptr, v.len);
    (*out)[v.len] = '\0';
    return 0;
}

/* Decodes one hop; *keys counts the host keys of the whole restriction so far. */
static int decode_hop(struct wire_view v, struct dest_hop *h, size_t *keys)
{
    struct wire_reader r;
    struct wire_view user, host, reserved, blob;
    struct key **nkeys;
    bool *nca, is_ca;
    int err;

    memset(h, 0, sizeof(*h));
    wire_reader_from_view(&r, v);
    user = wire_get_string(&r);
    host = wire_get_string(&r);
    reserved = wire_get_string(&r);
    if (r.error)
        return r.error;
    if (reserved.len != 0)
        return KW_ERR_CONSTRAINT; /* extensions we do not understand */
    if ((err = optional_cstring(user, &h->user)) != 0 ||
        (err = optional_cstring(host, &h->hostname)) != 0)
        return err;
    while (wire_remaining(&r) > 0) {
        blob = wire_get_string(&r);
        is_ca = wire_get_bool(&r);
        if (r.error)
            return r.error;
        if (++*keys > DEST_MAX_KEYS)
            return KW_ERR_TOO_LARGE; /* bounds the public-key work of one request */
        if ((nkeys = realloc(h->keys, (h->nkeys + 1) * sizeof(*nkeys))) == NULL)
            return KW_ERR_ALLOC;
        h->keys = nkeys;
        if ((nca = realloc(h->key_is_ca, (h->nkeys + 1) * sizeof(*nca))) == NULL)
            return KW_ERR_ALLOC;
        h->key_is_ca = nca;
        /*
         * Plain keys only: a hop names host keys and CA keys, never
         * certificates (which could never match, and whose CA signatures
         * would each cost a verification).
         */
        if ((err = key_from_plain_blob(blob.ptr, blob.len, &h->keys[h->nkeys])) != 0)
            return err;
        h->key_is_ca[h->nkeys++] = is_ca;
    }
    return 0;
}

static int decode_constraint(struct wire_view v, struct dest_constraint *c, size_t *keys)
{
    struct wire_reader r;
    struct wire_view from, to, reserved;
    int err;

    wire_reader_from_view(&r, v);
    from = wire_get_string(&r);
    to = wire_get_string(&r);
    reserved = wire_get_string(&r);
    if ((err = wire_reader_finish(&r)) != 0)
        return err;
    if ((err = decode_hop(from, &c->from, keys)) != 0 || (err = decode_hop(to, &c->to, keys)) != 0)
        return err;
    if (reserved.len != 0)
        return KW_ERR_CONSTRAINT;
    /* "from" is the origin (no host, no keys) or a host with its keys; never a user. */
    if ((c->from.hostname == NULL) != (c->from.nkeys == 0) || c->from.user != NULL)
        return KW_ERR_CONSTRAINT;
    /* "to" always names a host and its keys. */
    if (c->to.hostname == NULL || c->to.nkeys == 0)
        return KW_ERR_CONSTRAINT;
    return 0;
}

int dest_decode(struct wire_view v, struct dest_constraints *out)
{
    struct wire_reader r;
    struct wire_view one;
    struct dest_constraint *items;
    size_t keys = 0;
    int err = 0;

    memset(out, 0, sizeof(*out));
    wire_reader_from_view(&r, v);
    while (wire_remaining(&r) > 0) {
        one = wire_get_string(&r);
        if (r.error) {
            err = r.error;
            break;
        }
        if (out->count >= DEST_MAX_CONSTRAINTS) {
            err = KW_ERR_TOO_LARGE;
            break;
        }
        if ((items = realloc(out->items, (out->count + 1) * sizeof(*items))) == NULL) {
            err = KW_ERR_ALLOC;
            break;
        }
        out->items = items;
        memset(&out->items[out->count], 0, sizeof(out->items[0]));
        /* Counted first, so a half-decoded entry is freed with the rest. */
        out->count++;
        if ((err = decode_constraint(one, &out->items[out->count - 1], &keys)) != 0)
            break;
    }
    if (err == 0 && out->count == 0)
        err = KW_ERR_CONSTRAINT; /* an empty restriction would forbid nothing */
    if (err != 0)
        dest_free(out);
    return err;
}

/* ---- evaluation ---- */

/*
 * Whether host key k (a binding's) is one of the hop's keys: a plain key
 * listed as itself, or a host certificate for the hop's hostname signed by
 * a CA listed for the hop.
 */
static bool hop_has_key(const struct key *k, const struct dest_hop *h, uint64_t now)
{
    size_t i;

    for (i = 0; i < h->nkeys; i++) {
        if (!k->is_cert) {
            if (!h->key_is_ca[i] && !h->keys[i]->is_cert && key_equal_public(k, h->keys[i]))
                return true;
            continue;
        }
        if (!h->key_is_ca[i] || k->cert == NULL || k->cert->ca == NULL)
            continue;
        if (key_equal_public(k->cert->ca, h->keys[i]) &&
            key_cert_valid_for_host(k, h->hostname, now))
            return true;
    }
    return false;
}

/*
 * Whether some constraint permits the step from host key `from` (NULL: the
 * origin) to host key `to` (NULL: anywhere) for user (NULL: any).
 */
static bool step_permitted(const struct dest_constraints *dc, const struct key *from,
                           const struct key *to, const char *user, uint64_t now)
{
    size_t i;

    for (i = 0; i < dc->count; i++) {
        const struct dest_constraint *c = &dc->items[i];

        if (from == NULL) {
            if (c->from.hostname != NULL || c->from.nkeys != 0)
                continue;
        } else if (!hop_has_key(from, &c->from, now)) {
            continue;
        }
        if (to != NULL && !hop_has_key(to, &c->to, now))
            continue;
        if (c->to.user != NULL && user != NULL && !match_glob(user, c->to.user))
            continue;
        return true;
    }
    return false;
}

static void describe_step(char *why, size_t whysize, size_t hop, const struct key *from,
                          const struct key *to, const char *user)
{
    char ffp[KEY_FINGERPRINT_SIZE], tfp[KEY_FINGERPRINT_SIZE];

    if (from != NULL)
        key_fingerprint(from, ffp, sizeof(ffp));
    if (to != NULL)
        key_fingerprint(to, tfp, sizeof(tfp));
    snprintf(why, whysize, "hop %zu not permitted: from %s%s%s to %s%s%s%s%s", hop,
             from ? key_short_name(from) : "origin", from ? " " : "", from ? ffp : "",
             user ? user : "", user ? "@" : "", to ? key_short_name(to) : "anywhere", to ? " " : "",
             to ? tfp : "");
}

bool dest_permitted(const struct dest_constraints *dc, const struct binding_set *bs,
                    const char *user, uint64_t now, char *why, size_t whysize)
{
    const struct key *from = NULL;
    const struct binding *b;
    const char *test_user;
    size_t i;

    if (dc == NULL || dc->count == 0)
        return true; /* unconstrained */
    if (bs->attempted && bs->count == 0) {
        snprintf(why, whysize, "previous session bind failed on this connection");
        return false;
    }
    if (bs->count == 0)
        return true; /* a local client: nothing to check the path against */
    for (i = 0; i < bs->count; i++) {
        b = &bs->slots[i];
        test_user = NULL;
        if (i == bs->count - 1) {
            /* The last binding is where the key would be used. */
            test_user = user;
            if (b->forwarding && user != NULL) {
                snprintf(why, whysize, "signing requested on a forwarding hop");
                return false;
            }
        } else if (!b->forwarding) {
            snprintf(why, whysize, "forwarding through a binding made for authentication");
            return false;
        }
        if (!step_permitted(dc, from, b->hostkey, test_user, now)) {
            describe_step(why, whysize, i, from, b->hostkey, test_user);
            return false;
        }
        from = b->hostkey;
    }
    /*
     * Listing through a forwarded connection: the key must be usable from
     * the last host onwards, or showing it there would be pointless.
     */
    b = &bs->slots[bs->count - 1];
    if (b->forwarding && user == NULL && !step_permitted(dc, b->hostkey, NULL, NULL, now)) {
        describe_step(why, whysize, bs->count, b->hostkey, NULL, NULL);
        return false;
    }
    return true;
}

static int hop_copy(const struct dest_hop *from, struct dest_hop *to)
{
    size_t i;

    memset(to, 0, sizeof(*to));
    if ((from->user != NULL && (to->user = strdup(from->user)) == NULL) ||
        (from->hostname != NULL && (to->hostname = strdup(from->hostname)) == NULL))
        return KW_ERR_ALLOC;
    if (from->nkeys == 0)
        return 0;
    to->keys = calloc(from->nkeys, sizeof(*to->keys));
    to->key_is_ca = calloc(from->nkeys, sizeof(*to->key_is_ca));
    if (to->keys == NULL || to->key_is_ca == NULL)
        return KW_ERR_ALLOC;
    for (i = 0; i < from->nkeys; i++) {
        to->keys[i] = key_ref(from->keys[i]);
        to->key_is_ca[i] = from->key_is_ca[i];
    }
    to->nkeys = from->nkeys;
    return 0;
}

int dest_copy(const struct dest_constraints *from, struct dest_constraints *to)
{
    size_t i;

    memset(to, 0, sizeof(*to));
    if (from->count == 0)
        return 0;
    if ((to->items = calloc(from->count, sizeof(*to->items))) == NULL)
        return KW_ERR_ALLOC;
    to->count = from->count;
    for (i = 0; i < from->count; i++) {
        if (hop_copy(&from->items[i].from, &to->items[i].from) != 0 ||
            hop_copy(&from->items[i].to, &to->items[i].to) != 0) {
            dest_free(to);
            return KW_ERR_ALLOC;
        }
    }
    return 0;
}
