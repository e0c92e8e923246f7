/*
 * keyward tests: the countdown allocator fails what it says it fails
 * (issue 15; oom_alloc.h).
 *
 *  - the Nth allocation of a plain sequence, and no other;
 *  - libcrypto's allocations are counted and failed (through key.c's
 *    CRYPTO_set_mem_functions() hook), and libuv's once handed the
 *    functions (uv_replace_allocator);
 *  - for known requests (ADD of each corpus key, SIGN with each, a
 *    REQUEST_IDENTITIES), each N from 1 to the count of the uninjected run
 *    injects exactly one failure and N = count + 1 none.
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

/*
 * Counts the allocations of one request on a fresh agent holding the keys
 * of from (or none), then fails each in turn.
 */
static void test_request(const char *what, const struct agent *from, const uint8_t *msg, size_t len,
                         int normal)
{
    unsigned long count = 0, n, once = 0, replies_ok = 0, warm;
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
        oom_arm(n);
        type = handle(&ag, msg, len);
        agent_cleanup(&ag);
        oom_disarm();
        if (n == 0) {
            count = oom_count();
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
    }
    printf("%s: %lu allocations (reference run); failed each of N = 1..%lu, none at N = %lu\n",
           what, count, n - 1, n);
    EXPECT(count >= 1);
    EXPECT(once == count && n == count + 1); /* a failure injected at each N before */
    EXPECT(replies_ok == once);
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
        test_request(what, NULL, adds[i].buf, adds[i].len, SSH_AGENT_SUCCESS);
        EXPECT(handle(&loaded, adds[i].buf, adds[i].len) == SSH_AGENT_SUCCESS);
    }
    {
        static const uint8_t list[] = {SSH_AGENTC_REQUEST_IDENTITIES};

        test_request("REQUEST_IDENTITIES", &loaded, list, sizeof(list),
                     SSH_AGENT_IDENTITIES_ANSWER);
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
        test_request(what, &loaded, w.buf, w.len, SSH_AGENT_SIGN_RESPONSE);
        with_crypto += failed == before;
        wire_writer_free(&w);
    }
    EXPECT(with_crypto >= 6);
    agent_cleanup(&loaded);
    fuzz_free_add_requests(adds, nadd);
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
