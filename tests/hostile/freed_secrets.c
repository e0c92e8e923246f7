/*
 * keyward hardening test: no heap block that holds private key bytes is
 * ever freed without being cleared.
 *
 *     freed_secrets
 *
 * tests/hostile/key_memory.sh looks at a live agent's memory, which shows
 * what is left but depends on the allocator: a freed copy that happens to
 * have been reused already is not seen. This test is the deterministic
 * half: it watches every free() while the dispatcher adds, uses, lets
 * expire and removes a key of each type (Ed25519, ECDSA P-256/384/521,
 * RSA-2048), and fails if a block being freed still contains any 20-byte
 * window of a private scalar, big-endian (as received, as in DER) or
 * little-endian (a BIGNUM's limbs). It sees libcrypto's frees too: free()
 * is interposed (the executable's definition wins over libc's for every
 * library), or, under AddressSanitizer, watched with its free hook.
 *
 * This was a finding (docs/security.md, "Findings"): OpenSSL 3.0's DER
 * decoder behind d2i_PrivateKey(), which RSA keys are imported with, frees
 * its copies of the key uncleared. src/crypto/key.c now has libcrypto clear every
 * block it frees; the test checks that this is in place, and the first few
 * offending frees are printed with a backtrace to say whose they are.
 * realloc() is watched too: it frees (or shrinks) the old block.
 */
#define _GNU_SOURCE

#include <execinfo.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "agent/agent.h"
#include "agent/request.h"
#include "base/log.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "crypto/key.h"

#if defined(__SANITIZE_ADDRESS__)
#define WATCH_WITH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WATCH_WITH_ASAN 1
#endif
#endif

#define WINDOW      20
#define MAX_WINDOWS 64

static uint8_t windows[MAX_WINDOWS][WINDOW];
static size_t nwindows;
static volatile int armed;
static unsigned long hits;

static bool holds_secret(const void *p, size_t n)
{
    size_t i;

    for (i = 0; i < nwindows; i++)
        if (n >= WINDOW && memmem(p, n, windows[i], WINDOW) != NULL)
            return true;
    return false;
}

/* Where the first few offending frees come from, to say whose they are. */
static void print_backtrace(size_t n)
{
    void *frames[32];
    int nframes = backtrace(frames, 32);

    fprintf(stderr, "# a block of %zu bytes holding private key bytes freed uncleared:\n", n);
    backtrace_symbols_fd(frames, nframes, 2);
}

static void on_free(const void *p, size_t n)
{
    if (!armed || p == NULL)
        return;
    armed = 0; /* the check itself must not recurse */
    if (holds_secret(p, n) && ++hits <= 3)
        print_backtrace(n);
    armed = 1;
}

#ifdef WATCH_WITH_ASAN
size_t __sanitizer_get_allocated_size(const volatile void *p);
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *));

static void asan_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
}

static void asan_free_hook(const volatile void *p)
{
    if (armed && p != NULL)
        on_free((const void *)p, __sanitizer_get_allocated_size(p));
}

static void watch_frees(void)
{
    __sanitizer_install_malloc_and_free_hooks(asan_malloc_hook, asan_free_hook);
}
#else
extern void __libc_free(void *p);
extern void *__libc_malloc(size_t n);

/* Every free() in the process, libcrypto's included, comes here first. */
void free(void *p)
{
    if (armed && p != NULL)
        on_free(p, malloc_usable_size(p));
    __libc_free(p);
}

/*
 * And every realloc(): it frees the old block when it moves it, or the tail
 * when it shrinks it in place. Here it always moves, so the old block is
 * seen whole before it is freed.
 */
void *realloc(void *p, size_t n)
{
    size_t old;
    void *q;

    if (p == NULL)
        return __libc_malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    if ((q = __libc_malloc(n)) == NULL)
        return NULL;
    old = malloc_usable_size(p);
    memcpy(q, p, old < n ? old : n);
    free(p);
    return q;
}

static void watch_frees(void)
{
}
#endif

/* Three windows of v, as given and reversed. */
static void add_secret(const uint8_t *v, size_t len)
{
    size_t offs[3], i, k;
    uint8_t rev[WINDOW];

    if (len < WINDOW || nwindows + 6 > MAX_WINDOWS)
        return;
    offs[0] = 0;
    offs[1] = (len - WINDOW) / 2;
    offs[2] = len - WINDOW;
    for (i = 0; i < 3; i++) {
        memcpy(windows[nwindows++], v + offs[i], WINDOW);
        for (k = 0; k < WINDOW; k++)
            rev[k] = v[len - 1 - offs[i] - k];
        memcpy(windows[nwindows++], rev, WINDOW);
    }
}

static void add_bn_secret(const EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    uint8_t buf[1024];
    int n;

    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
        return;
    n = BN_bn2bin(bn, buf);
    add_secret(buf, (size_t)n);
    kw_memzero(buf, sizeof(buf));
    BN_clear_free(bn);
}

static uint8_t send_req(struct agent *ag, struct agent_conn *c, uint64_t now,
                        const struct wire_writer *req)
{
    struct agent_reply reply;
    uint8_t t;

    agent_reply_init(&reply);
    agent_handle(ag, c, now, req->buf, req->len, &reply);
    t = reply.msg.len > 0 ? reply.msg.buf[0] : 0;
    agent_reply_free(&reply);
    return t;
}

struct stage_result {
    unsigned long add, sign, expire, remove;
};

/* Add, sign, remove; add with a lifetime, expire. Counts uncleared frees per step. */
static int exercise(struct key *k, struct stage_result *res)
{
    static const uint8_t data[] = "freed_secrets";
    struct agent ag;
    struct agent_conn c;
    struct wire_writer add, add_life, sign, rm;
    int bad = 0;

    wire_writer_init(&add);
    wire_writer_init(&add_life);
    wire_writer_init(&sign);
    wire_writer_init(&rm);
    wire_put_u8(&add, SSH_AGENTC_ADD_IDENTITY);
    key_private_serialize(k, &add);
    wire_put_cstring(&add, "freed_secrets");
    wire_put_u8(&add_life, SSH_AGENTC_ADD_ID_CONSTRAINED);
    key_private_serialize(k, &add_life);
    wire_put_cstring(&add_life, "freed_secrets");
    wire_put_u8(&add_life, SSH_AGENT_CONSTRAIN_LIFETIME);
    wire_put_u32(&add_life, 1);
    wire_put_u8(&sign, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&sign, k->blob, k->blob_len);
    wire_put_string(&sign, data, sizeof(data));
    wire_put_u32(&sign, KEY_SIGN_RSA_SHA2_256);
    wire_put_u8(&rm, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&rm, k->blob, k->blob_len);

    agent_init(&ag, 0);
    agent_conn_init(&c, 1);
    memset(res, 0, sizeof(*res));

    hits = 0;
    armed = 1;
    bad |= send_req(&ag, &c, 1000, &add) != SSH_AGENT_SUCCESS;
    armed = 0;
    res->add = hits;
    hits = 0;
    armed = 1;
    bad |= send_req(&ag, &c, 1000, &sign) != SSH_AGENT_SIGN_RESPONSE;
    bad |= send_req(&ag, &c, 1000, &rm) != SSH_AGENT_SUCCESS;
    armed = 0;
    res->sign = hits;
    hits = 0;
    /* Re-added with a one-second lifetime, then past it. */
    bad |= send_req(&ag, &c, 2000, &add_life) != SSH_AGENT_SUCCESS;
    armed = 1;
    (void)agent_expire(&ag, 5000);
    armed = 0;
    res->expire = hits;
    hits = 0;
    bad |= send_req(&ag, &c, 6000, &add) != SSH_AGENT_SUCCESS;
    armed = 1;
    agent_cleanup(&ag); /* what shutdown and remove-all do */
    armed = 0;
    res->remove = hits;

    agent_conn_cleanup(&c);
    wire_writer_free(&add);
    wire_writer_free(&add_life);
    wire_writer_free(&sign);
    wire_writer_free(&rm);
    return bad;
}

int main(void)
{
    static const struct {
        enum key_kind kind;
        unsigned bits;
        const char *name;
    } kinds[] = {
        {KEY_ED25519, 0, "ed25519"},
        {KEY_ECDSA_P256, 0, "ecdsa-p256"},
        {KEY_ECDSA_P384, 0, "ecdsa-p384"},
        {KEY_ECDSA_P521, 0, "ecdsa-p521"},
        {KEY_RSA, 2048, "rsa-2048"},
        /* Where libcrypto has ML-DSA (OpenSSL >= 3.5, make build-pq): both seeds. */
        {KEY_MLDSA44_ED25519, 0, "mldsa44-ed25519"},
    };
    size_t i;
    int failed = 0, n = 0;

    log_init("freed_secrets", LOG_LEVEL_ERROR, LOG_SINK_STDERR);
    /* As keyward-agent does: private keys in OpenSSL's secure heap. */
    if (key_secure_heap_init(8u * 1024 * 1024, 64) == 0)
        fprintf(stderr, "# secure heap unavailable\n");
    watch_frees();
    printf("# watching free() %s\n",
#ifdef WATCH_WITH_ASAN
           "with AddressSanitizer's free hook"
#else
           "by interposing it"
#endif
    );
    /* The fix for OpenSSL's own uncleared frees, installed before main(). */
    printf("%s %d - libcrypto clears every block it frees\n",
           key_openssl_frees_cleared() ? "ok" : "not ok", ++n);
    failed |= !key_openssl_frees_cleared();
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct key *k = NULL;
        struct stage_result r;
        uint8_t seed[32];
        size_t slen = sizeof(seed);

        if (!key_kind_supported(kinds[i].kind))
            continue;
        if (key_generate(kinds[i].kind, kinds[i].bits, &k) != 0) {
            printf("not ok %d - %s: cannot generate a key\n", ++n, kinds[i].name);
            failed = 1;
            continue;
        }
        nwindows = 0;
        if (kinds[i].kind == KEY_MLDSA44_ED25519) {
#ifdef OSSL_PKEY_PARAM_ML_DSA_SEED
            if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ML_DSA_SEED, seed,
                                                sizeof(seed), &slen) == 1)
                add_secret(seed, slen);
            slen = sizeof(seed);
#endif
            if (EVP_PKEY_get_raw_private_key(k->pkey_ed, seed, &slen) == 1)
                add_secret(seed, slen);
            kw_memzero(seed, sizeof(seed));
        } else if (kinds[i].kind == KEY_ED25519) {
            if (EVP_PKEY_get_raw_private_key(k->pkey, seed, &slen) == 1)
                add_secret(seed, slen);
            kw_memzero(seed, sizeof(seed));
        } else if (kinds[i].kind == KEY_RSA) {
            add_bn_secret(k->pkey, OSSL_PKEY_PARAM_RSA_D);
            add_bn_secret(k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR1);
            add_bn_secret(k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR2);
        } else {
            add_bn_secret(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY);
        }
        /* Without windows to look for, every check below would pass unseen. */
        printf("%s %d - %s: private key bytes to look for (%zu windows)\n",
               nwindows > 0 ? "ok" : "not ok", ++n, kinds[i].name, nwindows);
        failed |= nwindows == 0;
        /* The control: the watcher does see a block freed with those bytes in it. */
        if (nwindows > 0) {
            /* Through volatile pointers, or the compiler may drop the pair. */
            void *(*volatile alloc)(size_t) = malloc;
            void (*volatile release)(void *) = free;
            uint8_t *probe = alloc(4 * WINDOW);

            if (probe != NULL) {
                memset(probe, 0x5a, 4 * WINDOW);
                memcpy(probe + WINDOW, windows[0], WINDOW);
                hits = 0;
                armed = 1;
                release(probe);
                armed = 0;
            }
            printf("%s %d - %s: control: an uncleared free of those bytes is seen\n",
                   probe != NULL && hits == 1 ? "ok" : "not ok", ++n, kinds[i].name);
            failed |= probe == NULL || hits != 1;
            hits = 0;
        }
        if (exercise(k, &r) != 0) {
            printf("not ok %d - %s: the agent refused a request\n", ++n, kinds[i].name);
            failed = 1;
        }
        printf("%s %d - %s: sign and remove free nothing uncleared (%lu)\n",
               r.sign ? "not ok" : "ok", ++n, kinds[i].name, r.sign);
        printf("%s %d - %s: expiry frees nothing uncleared (%lu)\n", r.expire ? "not ok" : "ok",
               ++n, kinds[i].name, r.expire);
        printf("%s %d - %s: clearing the agent frees nothing uncleared (%lu)\n",
               r.remove ? "not ok" : "ok", ++n, kinds[i].name, r.remove);
        failed |= r.sign || r.expire || r.remove;
        printf("%s %d - %s: add frees nothing uncleared (%lu)\n", r.add ? "not ok" : "ok", ++n,
               kinds[i].name, r.add);
        failed |= r.add != 0;
        key_free(k);
    }
    printf("1..%d\n", n);
    CRYPTO_secure_malloc_done();
    return failed;
}
