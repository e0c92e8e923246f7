/*
 * keyward tests: the countdown allocator fails what it says it fails
 * (issue 15; oom_alloc.h).
 *
 *  - the Nth allocation of a plain sequence, and no other;
 *  - libcrypto's allocations are counted and failed (through key.c's
 *    CRYPTO_set_mem_functions() hook), and libuv's once handed the
 *    functions (uv_replace_allocator);
 *  - for known requests (ADD of each corpus key, SIGN with each, LIST,
 *    REMOVE, REMOVE_ALL, LOCK, UNLOCK), each N from 1 to the count of the
 *    uninjected run injects exactly one failure and N = count + 1 none;
 *  - and each such run answers the normal reply or a failure, and a failure
 *    leaves the keys and the lock as they were (regressions: a LOCK or an
 *    UNLOCK whose SUCCESS byte could not be allocated answered FAILURE
 *    with the lock changed; a signing job refused after its key went away
 *    answered with an empty message when the FAILURE byte failed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/request.h"
#include "oom_alloc.h"
#include "support.h"

static unsigned long passed, failed;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

static void test_plain_sequence(void)
{
    void *p[6];
    char *s;
    int i;

    oom_arm(3);
    for (i = 0; i < 6; i++)
        p[i] = i % 3 == 0 ? malloc(16) : i % 3 == 1 ? calloc(2, 8) : realloc(NULL, 16);
    s = strdup("x");
    EXPECT(oom_count() == 7 && oom_injected() == 1);
    oom_disarm();
    for (i = 0; i < 6; i++)
        EXPECT((p[i] == NULL) == (i == 2));
    EXPECT(s != NULL);
    for (i = 0; i < 6; i++)
        free(p[i]);
    free(s);

    oom_arm(1);
    s = strdup("x");
    oom_disarm();
    EXPECT(s == NULL);
    /* Disarmed: counted and failed by nothing. */
    p[0] = malloc(1);
    EXPECT(p[0] != NULL && oom_injected() == 1 && oom_count() == 1);
    free(p[0]);
}

static void test_libraries(void)
{
    EVP_MD_CTX *md;
    uv_loop_t *loop;

    oom_arm(0);
    md = EVP_MD_CTX_new();
    EXPECT(md != NULL && oom_count() >= 1);
    EVP_MD_CTX_free(md);
    oom_arm(1);
    md = EVP_MD_CTX_new();
    EXPECT(md == NULL && oom_injected() == 1);
    oom_disarm();

    oom_arm(0);
    loop = uv_loop_new();
    EXPECT(loop != NULL && oom_count() >= 1);
    if (loop != NULL) {
        uv_loop_close(loop);
        free(loop);
    }
    oom_arm(1);
    loop = uv_loop_new();
    EXPECT(loop == NULL && oom_injected() == 1);
    oom_disarm();
}

/* Handles one request; returns the reply's type (-1 for none), jobs done inline. */
static int handle(struct agent *ag, const uint8_t *msg, size_t len)
{
    struct agent_conn c;
    struct agent_reply reply;
    struct agent_job *job;
    int type;

    agent_conn_init(&c, 1);
    agent_reply_init(&reply);
    agent_handle(ag, &c, 1000, msg, len, &reply);
    while ((job = reply.job) != NULL) {
        reply.job = NULL;
        agent_job_run(job);
        agent_job_finish(ag, &c, job, &reply);
    }
    type = reply.msg.len ? reply.msg.buf[0] : -1;
    agent_reply_free(&reply);
    agent_conn_cleanup(&c);
    return type;
}

/* What a request may change: the key count and the lock. */
struct state {
    size_t keys;
    bool locked;
};

static struct state state_of(const struct agent *ag)
{
    return (struct state){ag->keys.count, ag->lock.locked};
}

static bool same_state(struct state a, struct state b)
{
    return a.keys == b.keys && a.locked == b.locked;
}

/*
 * Counts the allocations of one request on a fresh agent holding the keys
 * of from (or none), after setup (unarmed, may be NULL), then fails each
 * in turn. Each run must answer the normal reply or a failure, never
 * nothing, and a failure must leave the agent as it was (no key added or
 * removed, not locked or unlocked) while a success changes it as the
 * uninjected run did.
 */
static void test_request(const char *what, const struct agent *from,
                         const struct wire_writer *setup, const uint8_t *msg, size_t len,
                         int normal)
{
    unsigned long count = 0, n, once = 0, replies_ok = 0, states_ok = 0, warm;
    struct state before, after, ref = {0, false};
    struct agent ag;
    size_t i;
    int type;

    /*
     * Run 0 twice: the first fills libcrypto's caches (fetched algorithms,
     * RSA blinding), the second is the count every later run repeats.
     */
    for (n = 0, warm = 0;; n++) {
        agent_init(&ag, 0);
        ag.offload_slow_work = true;
        for (i = 0; from != NULL && i < from->keys.count; i++)
            if (keystore_add(&ag.keys, key_ref(from->keys.ids[i]->key),
                             strdup(from->keys.ids[i]->comment), 0, false, NULL) != 0)
                abort();
        if (setup != NULL && handle(&ag, setup->buf, setup->len) != SSH_AGENT_SUCCESS)
            abort();
        /*
         * Keys keep prepared signing contexts between signatures, and a run
         * whose failure hit one frees it: every run prepares them afresh,
         * so that each repeats the reference run's allocations.
         */
        for (i = 0; from != NULL && i < from->keys.count; i++)
            key_sign_contexts_drop(from->keys.ids[i]->key);
        before = state_of(&ag);
        oom_arm(n);
        type = handle(&ag, msg, len);
        oom_disarm();
        after = state_of(&ag);
        agent_cleanup(&ag);
        if (n == 0) {
            count = oom_count();
            ref = after;
            EXPECT(type == normal);
            if (warm++ == 0)
                n--;
            continue;
        }
        if (oom_injected() == 0)
            break;
        once++;
        if (type == normal || type == SSH_AGENT_FAILURE || type == SSH_AGENT_EXTENSION_FAILURE)
            replies_ok++;
        else
            fprintf(stderr, "%s, N = %lu: reply type %d\n", what, n, type);
        if (type == normal ? same_state(after, ref) : same_state(after, before))
            states_ok++;
        else
            fprintf(stderr, "%s, N = %lu: reply type %d, but %zu keys and %s after it\n", what, n,
                    type, after.keys, after.locked ? "locked" : "unlocked");
    }
    printf("%s: %lu allocations (reference run); failed each of N = 1..%lu, none at N = %lu\n",
           what, count, n - 1, n);
    EXPECT(count >= 1);
    EXPECT(once == count && n == count + 1); /* a failure injected at each N before */
    EXPECT(replies_ok == once);
    EXPECT(states_ok == once);
}

/*
 * Regression: a signing job whose key went away meanwhile is answered
 * FAILURE by job_fail(), whose byte was the first allocation after the
 * reply was freed; when it failed, the reply was empty (an empty frame on
 * the wire). blob is an RSA key's, so the signature is a job.
 */
static void test_job_fail(const struct agent *from, const struct key *rsa)
{
    struct agent ag;
    struct agent_conn c;
    struct agent_reply reply;
    struct agent_job *job;
    struct wire_writer w;
    size_t i;

    agent_init(&ag, 0);
    ag.offload_slow_work = true;
    for (i = 0; i < from->keys.count; i++)
        if (keystore_add(&ag.keys, key_ref(from->keys.ids[i]->key),
                         strdup(from->keys.ids[i]->comment), 0, false, NULL) != 0)
            abort();
    agent_conn_init(&c, 1);
    agent_reply_init(&reply);
    wire_writer_init(&w);
    wire_put_u8(&w, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&w, rsa->blob, rsa->blob_len);
    wire_put_cstring(&w, "data to sign");
    wire_put_u32(&w, 0);
    agent_handle(&ag, &c, 1000, w.buf, w.len, &reply);
    job = reply.job;
    reply.job = NULL;
    EXPECT(job != NULL);
    if (job != NULL) {
        agent_job_run(job);
        EXPECT(keystore_remove(&ag.keys, rsa->blob, rsa->blob_len) == 0);
        oom_arm(1);
        agent_job_finish(&ag, &c, job, &reply);
        EXPECT(oom_injected() == 1);
        oom_disarm();
        EXPECT(reply.msg.len == 1 && reply.msg.buf[0] == SSH_AGENT_FAILURE);
    }
    wire_writer_free(&w);
    agent_reply_free(&reply);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
}

static void put_lock(struct wire_writer *w, uint8_t type, const char *pass)
{
    wire_writer_init(w);
    wire_put_u8(w, type);
    wire_put_cstring(w, pass);
}

int main(void)
{
    struct wire_writer *adds;
    struct agent loaded;
    size_t nadd, i;
    int with_crypto = 0;

    if (oom_use_for_libuv() != 0) {
        fprintf(stderr, "uv_replace_allocator failed\n");
        return 1;
    }
    fuzz_log_setup();
    test_plain_sequence();
    test_libraries();

    agent_init(&loaded, 0);
    nadd = fuzz_add_requests(&adds);
    EXPECT(nadd >= 6);
    for (i = 0; i < nadd; i++) {
        char what[64];

        snprintf(what, sizeof(what), "ADD_IDENTITY #%zu (%zu bytes)", i, adds[i].len);
        test_request(what, NULL, NULL, adds[i].buf, adds[i].len, SSH_AGENT_SUCCESS);
        EXPECT(handle(&loaded, adds[i].buf, adds[i].len) == SSH_AGENT_SUCCESS);
    }
    {
        static const uint8_t list[] = {SSH_AGENTC_REQUEST_IDENTITIES};

        static const uint8_t remove_all[] = {SSH_AGENTC_REMOVE_ALL_IDENTITIES};
        struct wire_writer lock, unlock;

        test_request("REQUEST_IDENTITIES", &loaded, NULL, list, sizeof(list),
                     SSH_AGENT_IDENTITIES_ANSWER);
        test_request("REMOVE_ALL_IDENTITIES", &loaded, NULL, remove_all, sizeof(remove_all),
                     SSH_AGENT_SUCCESS);
        /* Regressions: the lock changed, and FAILURE was the answer. */
        put_lock(&lock, SSH_AGENTC_LOCK, "passphrase");
        put_lock(&unlock, SSH_AGENTC_UNLOCK, "passphrase");
        test_request("LOCK", &loaded, NULL, lock.buf, lock.len, SSH_AGENT_SUCCESS);
        test_request("UNLOCK", &loaded, &lock, unlock.buf, unlock.len, SSH_AGENT_SUCCESS);
        wire_writer_free(&lock);
        wire_writer_free(&unlock);
    }
    for (i = 0; i < loaded.keys.count; i++) {
        const struct key *k = loaded.keys.ids[i]->key;
        struct wire_writer w;
        char what[96];
        unsigned long before;

        wire_writer_init(&w);
        wire_put_u8(&w, SSH_AGENTC_SIGN_REQUEST);
        wire_put_string(&w, k->blob, k->blob_len);
        wire_put_cstring(&w, "data to sign");
        wire_put_u32(&w, 0);
        snprintf(what, sizeof(what), "SIGN with %s%s", key_type_name(k), k->is_cert ? " cert" : "");
        before = failed;
        test_request(what, &loaded, NULL, w.buf, w.len, SSH_AGENT_SIGN_RESPONSE);
        with_crypto += failed == before;
        wire_writer_free(&w);
        if (k->kind == KEY_RSA && !k->is_cert)
            test_job_fail(&loaded, k);
        if (i == 0) {
            wire_writer_init(&w);
            wire_put_u8(&w, SSH_AGENTC_REMOVE_IDENTITY);
            wire_put_string(&w, k->blob, k->blob_len);
            test_request("REMOVE_IDENTITY", &loaded, NULL, w.buf, w.len, SSH_AGENT_SUCCESS);
            wire_writer_free(&w);
        }
    }
    EXPECT(with_crypto >= 6);
    agent_cleanup(&loaded);
    fuzz_free_add_requests(adds, nadd);
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
