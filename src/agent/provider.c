/*
 * keyward: the loaded PKCS#11 modules. See provider.h.
 */
#include "agent/provider.h"

#include <stdlib.h>
#include <string.h>

void provider_set_init(struct provider_set *ps)
{
    memset(ps, 0, sizeof(*ps));
    ps->allowed = PROVIDER_DEFAULT_ALLOWED;
}

void provider_set_clear(struct provider_set *ps)
{
    while (ps->head != NULL)
        provider_remove(ps, ps->head, true);
}

struct provider *provider_find_path(const struct provider_set *ps, const char *path)
{
    struct provider *p;

    for (p = ps->head; p != NULL; p = p->next)
        if (strcmp(p->path, path) == 0)
            return p;
    return NULL;
}

struct provider *provider_find_host(const struct provider_set *ps, const void *host)
{
    struct provider *p;

    for (p = ps->head; p != NULL; p = p->next)
        if (p->host == host)
            return p;
    return NULL;
}

struct provider *provider_add(struct provider_set *ps, const char *path, void *host)
{
    struct provider *p = calloc(1, sizeof(*p));

    if (p == NULL || (p->path = strdup(path)) == NULL) {
        free(p);
        return NULL;
    }
    p->host = host;
    p->next = ps->head;
    ps->head = p;
    ps->count++;
    return p;
}

void provider_remove(struct provider_set *ps, struct provider *p, bool release)
{
    struct provider **pp;

    for (pp = &ps->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            ps->count--;
            break;
        }
    }
    if (release && ps->release != NULL)
        ps->release(ps->ctx, p->host);
    free(p->path);
    free(p);
}
