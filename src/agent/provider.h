/*
 * keyward: the PKCS#11 modules the agent has loaded (ssh-add -s), each in a
 * helper process of its own that the transport runs (docs/providers.md).
 *
 * The agent decides who may load which module (keyward-agent -P and -O
 * allow-remote-pkcs11) and which identities a module's keys become; the
 * transport starts, talks to and stops the helpers. A struct provider is
 * the agent's record of one loaded module; host is the transport's handle
 * of its helper, which the agent only hands back to the transport.
 */
#ifndef KEYWARD_AGENT_PROVIDER_H
#define KEYWARD_AGENT_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

/* ssh-agent's default -P: libraries under the system's library directories. */
#define PROVIDER_DEFAULT_ALLOWED "/usr/lib*/*,/usr/local/lib*/*"
/* Modules loaded at once; OpenSSH has no limit, but each costs a process. */
#define PROVIDER_MAX 16
/* Certificates one ADD_SMARTCARD_KEY_CONSTRAINED may attach (each is verified on the loop). */
#define PROVIDER_MAX_CERTS 32

struct provider {
    char *path; /* the canonical module path */
    void *host; /* the transport's helper, for its requests */
    struct provider *next;
};

struct provider_set {
    struct provider *head;
    size_t count;
    /* keyward-agent -P: the module paths that may be loaded (a pattern-list). */
    const char *allowed;
    /* keyward-agent -O allow-remote-pkcs11: a bound (forwarded) connection may load one. */
    bool allow_remote;
    /*
     * The transport's: stop the helper of a provider the agent no longer
     * holds (removed, or every identity removed). NULL: nothing to stop.
     */
    void (*release)(void *ctx, void *host);
    void *ctx;
};

void provider_set_init(struct provider_set *ps);
/* Forgets every provider, releasing each helper. */
void provider_set_clear(struct provider_set *ps);

struct provider *provider_find_path(const struct provider_set *ps, const char *path);
struct provider *provider_find_host(const struct provider_set *ps, const void *host);

/* Records a loaded module; path is copied. NULL if out of memory. */
struct provider *provider_add(struct provider_set *ps, const char *path, void *host);

/*
 * Forgets p; with release, the transport is told to stop its helper (not
 * when the helper is already gone). The keystore's identities of p must be
 * removed first.
 */
void provider_remove(struct provider_set *ps, struct provider *p, bool release);

#endif
