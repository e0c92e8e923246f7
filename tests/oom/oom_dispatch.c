/*
 * keyward tests: every request of the shared corpus through the dispatcher
 * with one allocation failed, for each allocation in turn (issue 15).
 *
 *     oom_dispatch [-v] [--fresh-reply] [--case NAME] [--from N] [--every K] CORPUS_AGENT_DIR
 *
 * As SQLite's out-of-memory tests do: a case (one corpus file, a stream of
 * frames) runs once with allocations counted (the reference run), then
 * again with the 1st allocation failed, the 2nd, the 3rd, ... until a run
 * completes without a failure injected (oom_alloc.h: keyward's own
 * allocations, libcrypto's through key.c's hook). Each run starts from the
 * same agent: the corpus keys loaded (parsed once and shared by reference,
 * as fuzz_dispatch does), RSA signatures and the lock KDF as jobs that
 * agent_job_run() does and agent_job_finish() answers, confirmations
 * refused and approved in turn, the audit log on.
 *
 * Checked for each N, beyond ASan, UBSan and LeakSanitizer:
 *  - every request gets one reply with a reply code, and a signature
 *    reply's signature verifies;
 *  - requests before the failed allocation are answered exactly as in the
 *    reference run (the runs are the same up to there);
 *  - the request that met the failure is answered with SSH_AGENT_FAILURE,
 *    SSH_AGENT_EXTENSION_FAILURE or its reference reply;
 *  - the agent's state is consistent after it: a REQUEST_IDENTITIES on a
 *    fresh connection (counted and failed by nothing) lists exactly the
 *    keys listed before that request if it failed, and exactly those of the
 *    reference run if it succeeded. A failed ADD adds nothing, a failed
 *    REMOVE removes nothing, a failed LOCK leaves the list visible;
 *  - the rest of the case still runs, every request answered.
 *
 * Byte-identical cases are run once (after bare bodies get their length
 * prefix, on the frames the dispatcher would see), and cases with no
 * complete frame never reach it and are skipped; both are counted in the
 * summary line, with the requests, injections and time.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/audit.h"
#include "agent/keystore.h"
#include "agent/request.h"
#include "keyfile.h"
#include "oom_alloc.h"
#include "support.h"

struct frames {
    char *name;
    uint8_t *data; /* the complete frames of the case, with their length prefixes */
    size_t len;
};

static struct agent loaded; /* the keys, parsed once */
static struct agent ag;
static uint64_t clock_ms;
static unsigned confirmations;
static bool verbose;
static bool fresh_reply; /* --fresh-reply: a new reply for each request */
static unsigned long failures;
static unsigned long jobs[AGENT_JOB_UNLOCK + 1]; /* jobs run, by kind */
static const char *cur_case;
static unsigned long cur_n;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            oom_pause();                                                                           \
            fprintf(stderr, "FAIL %s N=%lu: %s: ", cur_case, cur_n, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
            oom_resume();                                                                          \
        }                                                                                          \
    } while (0)

/*
 * The audit log on, as with keyward-agent -l: the events are built (and
 * their allocations counted) but not formatted, which is pure code the
 * fuzzers cover and which took most of this test's time.
 */
static void audit_sink(void *ctx, const struct audit_event *ev)
{
    (void)ctx;
    (void)ev;
}

static void agent_reset(void)
{
    fuzz_agent_from(&ag, &loaded, audit_sink);
    clock_ms = 1000000;
    confirmations = 0;
}

static bool is_reply_code(uint8_t t)
{
    return t == SSH_AGENT_FAILURE || t == SSH_AGENT_SUCCESS || t == SSH_AGENT_IDENTITIES_ANSWER ||
           t == SSH_AGENT_SIGN_RESPONSE || t == SSH_AGENT_EXTENSION_FAILURE ||
           t == SSH_AGENT_EXTENSION_RESPONSE;
}

static bool is_failure(const struct wire_writer *w)
{
    return w->len == 1 &&
           (w->buf[0] == SSH_AGENT_FAILURE || w->buf[0] == SSH_AGENT_EXTENSION_FAILURE);
}

/* Copies a reply, unarmed (the copy is the test's, not the agent's). */
static void copy_msg(struct wire_writer *dst, const struct wire_writer *src)
{
    oom_pause();
    wire_writer_init(dst);
    wire_put_bytes(dst, src->buf, src->len);
    if (dst->error)
        abort();
    oom_resume();
}

/* Same reply: byte for byte, except a signature's (ECDSA draws k at random). */
static bool same_reply(const struct wire_writer *a, const struct wire_writer *b)
{
    if (a->len == 0 || b->len == 0 || a->buf[0] != b->buf[0])
        return false;
    if (a->buf[0] == SSH_AGENT_SIGN_RESPONSE)
        return true;
    return a->len == b->len && memcmp(a->buf, b->buf, a->len) == 0;
}

/*
 * A signature must verify: under an allocation failure libcrypto 3.0's
 * ECDSA reported success without writing the signature, and the agent
 * answered with whatever the buffer held (a signature of earlier data).
 */
static bool signature_verifies(struct wire_view request, const struct wire_writer *reply)
{
    struct wire_reader rq, rp;
    struct wire_view blob, data, sig;
    struct key *k = NULL;
    bool ok;

    wire_reader_init(&rq, request.ptr, request.len);
    (void)wire_get_u8(&rq);
    blob = wire_get_string(&rq);
    data = wire_get_string(&rq);
    wire_reader_init(&rp, reply->buf, reply->len);
    (void)wire_get_u8(&rp);
    sig = wire_get_string(&rp);
    if (rq.error || rp.error || key_from_blob(blob.ptr, blob.len, &k) != 0)
        return false;
    ok = key_verify(k, sig.ptr, sig.len, data.ptr, data.len) == 0;
    if (!ok)
        fprintf(stderr, "%s (flags %u): %zu-byte signature does not verify\n", key_type_name(k),
                request.len >= 4 ? wire_peek_u32(request.ptr + request.len - 4) : 0, sig.len);
    key_free(k);
    return ok;
}

static unsigned long rsa_refused;

/* A SIGN_REQUEST for an RSA key (plain or certificate). */
static bool is_rsa_sign(struct wire_view body)
{
    struct wire_reader r;
    struct wire_view blob, type;

    wire_reader_init(&r, body.ptr, body.len);
    if (wire_get_u8(&r) != SSH_AGENTC_SIGN_REQUEST)
        return false;
    blob = wire_get_string(&r);
    wire_reader_from_view(&r, blob);
    type = wire_get_string(&r);
    return !r.error && (wire_view_eq_str(type, "ssh-rsa") ||
                        wire_view_eq_str(type, "ssh-rsa-cert-v01@openssh.com"));
}

/* The identities a fresh connection is shown, neither counted nor failed. */
static void list_identities(struct wire_writer *out)
{
    static const uint8_t req[] = {SSH_AGENTC_REQUEST_IDENTITIES};
    struct agent_conn c;
    struct agent_reply reply;

    oom_pause();
    agent_conn_init(&c, 99);
    agent_reply_init(&reply);
    agent_handle(&ag, &c, clock_ms, req, sizeof(req), &reply);
    wire_writer_init(out);
    wire_put_bytes(out, reply.msg.buf, reply.msg.len);
    if (reply.job != NULL || reply.msg.len == 0 ||
        reply.msg.buf[0] != SSH_AGENT_IDENTITIES_ANSWER || out->error) {
        fprintf(stderr, "FAIL %s N=%lu: REQUEST_IDENTITIES unanswered after the run\n", cur_case,
                cur_n);
        failures++;
    }
    agent_reply_free(&reply);
    agent_conn_cleanup(&c);
    oom_resume();
}

/*
 * One request, its jobs finished as the transport finishes them, until a
 * message is the reply; returns a copy in *out. reply is the connection's,
 * kept from one request to the next as server.c keeps it for the requests
 * of one read (a corpus case arrives in one), so its buffer is allocated
 * once, as there, and not once per request.
 */
static void handle_request(struct agent_conn *c, struct agent_reply *reply, struct wire_view body,
                           struct wire_writer *out)
{
    struct agent_job *job;
    int tries = 0;

    clock_ms += 1000; /* a second per request: lifetimes run out within a case */
    if (fresh_reply)
        agent_reply_free(reply);
    for (;;) {
        agent_handle(&ag, c, clock_ms, body.ptr, body.len, reply);
        if (reply->retry_ms == 0 || reply->job != NULL)
            break;
        /* An unlock waiting for its turn (issue 22): offer it again later. */
        CHECK(reply->msg.len == 0, "a retry with a reply");
        CHECK(++tries < 100, "no turn for an unlock");
        if (tries >= 100)
            break;
        clock_ms += reply->retry_ms;
    }
    while ((job = reply->job) != NULL) {
        CHECK(reply->msg.len == 0, "a job and a message");
        reply->job = NULL;
        if (job->kind >= AGENT_JOB_CONFIRM && job->kind <= AGENT_JOB_UNLOCK)
            jobs[job->kind]++;
        if (job->kind == AGENT_JOB_CONFIRM) {
            agent_job_confirmed(&ag, c, job, (confirmations++ & 1) != 0, reply);
        } else {
            agent_job_run(job);
            agent_job_finish(&ag, c, job, reply);
        }
    }
    CHECK(reply->msg.len >= 1 && is_reply_code(reply->msg.buf[0]),
          "no reply code (len %zu, type %d)", reply->msg.len,
          reply->msg.len ? reply->msg.buf[0] : -1);
    copy_msg(out, &reply->msg);
    if (out->len > 0 && out->buf[0] == SSH_AGENT_SIGN_RESPONSE) {
        oom_pause();
        CHECK(signature_verifies(body, out), "a SIGN_RESPONSE whose signature does not verify");
        oom_resume();
    }
    (void)agent_expire(&ag, clock_ms); /* the server's expiry timer */
}

/* The reference run's replies and identity lists, per request. */
struct reference {
    size_t n;
    struct wire_writer *reply;
    struct wire_writer *ids; /* ids[0]: before the first request; ids[i + 1]: after request i */
    unsigned long allocations;
};

static size_t count_frames(const struct frames *f)
{
    struct wire_view body;
    size_t pos = 0, n = 0;

    while (fuzz_next_frame(f->data, f->len, &pos, &body))
        n++;
    return n;
}

/*
 * Runs a case with the fail_at-th allocation failed (0: none, recording
 * the reference into ref); returns how many allocations were failed.
 */
static unsigned long run_case(const struct frames *f, unsigned long fail_at, struct reference *ref)
{
    struct agent_conn c;
    struct agent_reply conn_reply;
    struct wire_view body;
    struct wire_writer reply, ids;
    size_t pos = 0, i = 0;
    unsigned long injected;

    cur_n = fail_at;
    agent_reset();
    if (fail_at == 0)
        list_identities(&ref->ids[0]);
    oom_arm(fail_at);
    agent_conn_init(&c, 1);
    agent_reply_init(&conn_reply);
    c.client.pid = 4242;
    c.client.uid = 1000;
    snprintf(c.client.exe, sizeof(c.client.exe), "/usr/bin/ssh");
    while (fuzz_next_frame(f->data, f->len, &pos, &body)) {
        unsigned long before = oom_injected();

        handle_request(&c, &conn_reply, body, &reply);
        if (fail_at == 0) {
            ref->reply[i] = reply;
            list_identities(&ref->ids[i + 1]);
        } else if (before == 0 && oom_injected() == 0) {
            /*
             * One exception, counted: an RSA signature refused. The keys
             * are shared by all runs, and a failure inside libcrypto's RSA
             * signing in an earlier run leaves the key's state there (its
             * blinding, it seems) wrong for some later signatures, which
             * key_sign() now refuses to send as they do not verify.
             */
            if (is_failure(&reply) && ref->reply[i].len > 0 &&
                ref->reply[i].buf[0] == SSH_AGENT_SIGN_RESPONSE && is_rsa_sign(body))
                rsa_refused++;
            else
                CHECK(same_reply(&reply, &ref->reply[i]),
                      "request %zu answered unlike the reference run before any failure", i);
        } else if (before == 0) {
            /* This request met the failed allocation. */
            list_identities(&ids);
            if (is_failure(&reply)) {
                CHECK(ids.len == ref->ids[i].len && memcmp(ids.buf, ref->ids[i].buf, ids.len) == 0,
                      "request %zu (type %u) failed but changed the identities", i,
                      body.len ? body.ptr[0] : 0);
            } else {
                CHECK(same_reply(&reply, &ref->reply[i]),
                      "request %zu (type %u): reply type %u, neither a failure nor the reference "
                      "reply (type %u)",
                      i, body.len ? body.ptr[0] : 0, reply.buf[0], ref->reply[i].buf[0]);
                CHECK(ids.len == ref->ids[i + 1].len &&
                          memcmp(ids.buf, ref->ids[i + 1].buf, ids.len) == 0,
                      "request %zu (type %u) succeeded but the identities differ from the "
                      "reference run",
                      i, body.len ? body.ptr[0] : 0);
            }
            oom_pause();
            wire_writer_free(&ids);
            oom_resume();
        }
        if (fail_at != 0) {
            oom_pause();
            wire_writer_free(&reply);
            oom_resume();
        }
        i++;
    }
    agent_reply_free(&conn_reply);
    agent_conn_cleanup(&c);
    agent_cleanup(&ag);
    if (fail_at == 0)
        ref->allocations = oom_count();
    injected = oom_injected();
    oom_disarm();
    return injected;
}

static unsigned long total_runs, total_injections, total_requests;

static void run_one(const struct frames *f, unsigned long from)
{
    struct reference ref;
    unsigned long n, limit;
    size_t i;

    cur_case = f->name;
    ref.n = count_frames(f);
    total_requests += ref.n;
    ref.reply = calloc(ref.n, sizeof(*ref.reply));
    ref.ids = calloc(ref.n + 1, sizeof(*ref.ids));
    if (ref.reply == NULL || ref.ids == NULL)
        abort();
    (void)run_case(f, 0, &ref);
    /*
     * The counts of later runs can differ a little from the reference
     * (libcrypto's caches, its random generator's reseeds), so the loop
     * ends on the first run without a failure, not at a count. A run that
     * never ends is a finding too.
     */
    limit = 2 * ref.allocations + 1000;
    for (n = from ? from : 1;; n++) {
        total_runs++;
        if (run_case(f, n, &ref) == 0)
            break;
        total_injections++;
        if (n > limit) {
            CHECK(0, "still failing allocations at N=%lu (reference run: %lu)", n, ref.allocations);
            break;
        }
    }
    if (verbose)
        fprintf(stderr, "%s: %zu requests, %lu allocations, %lu runs\n", f->name, ref.n,
                ref.allocations, n);
    for (i = 0; i < ref.n; i++)
        wire_writer_free(&ref.reply[i]);
    for (i = 0; i <= ref.n; i++)
        wire_writer_free(&ref.ids[i]);
    free(ref.reply);
    free(ref.ids);
}

/* Bare message bodies (agent-NNNNN-NNNNN) get their length prefix. */
static bool is_bare_body(const char *name)
{
    return strncmp(name, "agent-", 6) == 0;
}

/* The complete frames of a case, as the server would hand them over. */
static bool load_case(const char *dir, const char *name, struct frames *f)
{
    char path[4096];
    uint8_t *raw, *stream;
    size_t raw_len, len, pos = 0;
    struct wire_view body;
    struct wire_writer w;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (file_read_all(path, &raw, &raw_len) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (is_bare_body(name)) {
        if ((stream = malloc(raw_len + 4)) == NULL)
            abort();
        wire_poke_u32(stream, (uint32_t)raw_len);
        memcpy(stream + 4, raw, raw_len);
        free(raw);
        raw = stream;
        raw_len += 4;
    }
    len = raw_len;
    wire_writer_init(&w);
    while (fuzz_next_frame(raw, len, &pos, &body)) {
        wire_put_u32(&w, (uint32_t)body.len);
        wire_put_bytes(&w, body.ptr, body.len);
    }
    free(raw);
    if (w.error)
        abort();
    if (w.len == 0) {
        wire_writer_free(&w);
        return false;
    }
    f->name = strdup(name);
    f->data = w.buf; /* taken over from the writer */
    f->len = w.len;
    return true;
}

static int frames_cmp(const void *a, const void *b)
{
    const struct frames *x = a, *y = b;
    int c;

    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    if ((c = memcmp(x->data, y->data, x->len)) != 0)
        return c;
    return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct frames *)a)->name, ((const struct frames *)b)->name);
}

/*
 * Cases of our own beside the corpus, whose requests never make a job: no
 * sign request of it names an RSA key the agent holds, no key is added
 * with a confirmation, and no LOCK succeeds. These take the job paths
 * (agent_job_run(), agent_job_finish(), agent_job_confirmed()) with every
 * allocation failed too. The lock's scrypt is in oom_selftest and
 * oom_server (each run here would pay for it).
 */
static void put_frame(struct wire_writer *stream, const struct wire_writer *msg)
{
    wire_put_u32(stream, (uint32_t)msg->len);
    wire_put_bytes(stream, msg->buf, msg->len);
}

static void put_sign_frame(struct wire_writer *stream, const struct key *k, uint32_t flags)
{
    struct wire_writer m;

    wire_writer_init(&m);
    wire_put_u8(&m, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&m, k->blob, k->blob_len);
    wire_put_cstring(&m, "data to sign");
    wire_put_u32(&m, flags);
    put_frame(stream, &m);
    wire_writer_free(&m);
}

static size_t synthetic_cases(struct frames *out)
{
    struct wire_writer *adds, w, m;
    size_t nadd, i, n = 0;
    unsigned done = 0;

    /* Every key signs: RSA with SHA-1, SHA-256 and SHA-512 as jobs. */
    wire_writer_init(&w);
    for (i = 0; i < loaded.keys.count; i++) {
        const struct key *k = loaded.keys.ids[i]->key;

        put_sign_frame(&w, k, 0);
        if (k->kind == KEY_RSA) {
            put_sign_frame(&w, k, 2);
            put_sign_frame(&w, k, 4);
        }
    }
    out[n].name = strdup("synthetic-sign-every-key");
    out[n].data = w.buf;
    out[n++].len = w.len;

    /*
     * Each key removed, added back with a confirmation and a lifetime, and
     * signed with twice (refused, then approved: RSA's approval is a job).
     */
    wire_writer_init(&w);
    nadd = fuzz_add_requests(&adds);
    for (i = 0; i < nadd && i < loaded.keys.count; i++) {
        const struct key *k = loaded.keys.ids[i]->key;

        /* One Ed25519 and one RSA key (a job after the approval) will do. */
        if (k->is_cert || (k->kind != KEY_ED25519 && k->kind != KEY_RSA) ||
            (done & (1u << k->kind)))
            continue;
        done |= 1u << k->kind;

        wire_writer_init(&m);
        wire_put_u8(&m, SSH_AGENTC_REMOVE_IDENTITY);
        wire_put_string(&m, k->blob, k->blob_len);
        put_frame(&w, &m);
        wire_writer_free(&m);
        wire_writer_init(&m);
        wire_put_u8(&m, SSH_AGENTC_ADD_ID_CONSTRAINED);
        wire_put_bytes(&m, adds[i].buf + 1, adds[i].len - 1);
        wire_put_u8(&m, SSH_AGENT_CONSTRAIN_CONFIRM);
        wire_put_u8(&m, SSH_AGENT_CONSTRAIN_LIFETIME);
        wire_put_u32(&m, 3600);
        put_frame(&w, &m);
        wire_writer_free(&m);
        put_sign_frame(&w, k, 0);
        put_sign_frame(&w, k, 0);
    }
    fuzz_free_add_requests(adds, nadd);
    /* And all of them gone at once. */
    wire_writer_init(&m);
    wire_put_u8(&m, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    put_frame(&w, &m);
    wire_writer_free(&m);
    out[n].name = strdup("synthetic-confirm");
    out[n].data = w.buf;
    out[n++].len = w.len;
    for (i = 0; i < n; i++)
        if (out[i].name == NULL || out[i].data == NULL)
            abort();
    return n;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *only = NULL;
    unsigned long from = 0, files = 0, empty = 0, every = 1;
    struct frames *cases = NULL;
    size_t ncases = 0, cap = 0, unique = 0, ran = 0, i;
    struct dirent *de;
    struct timespec t0, t1;
    DIR *d;

    for (i = 1; i < (size_t)argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = true;
        else if (strcmp(argv[i], "--fresh-reply") == 0)
            fresh_reply = true;
        else if (strcmp(argv[i], "--case") == 0 && i + 1 < (size_t)argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--from") == 0 && i + 1 < (size_t)argc)
            from = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--every") == 0 && i + 1 < (size_t)argc)
            every = strtoul(argv[++i], NULL, 10);
        else
            dir = argv[i];
    }
    if (dir == NULL || every == 0) {
        fprintf(stderr,
                "usage: oom_dispatch [-v] [--fresh-reply] [--case NAME] [--from N] [--every K] "
                "CORPUS_AGENT_DIR\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fuzz_log_setup();
    agent_init(&loaded, 0);
    if (fuzz_load_keys(&loaded) == 0) {
        fprintf(stderr, "oom_dispatch: no keys loaded (%s)\n", fuzz_key_dirs());
        return 1;
    }
    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || (only != NULL && strcmp(de->d_name, only) != 0))
            continue;
        files++;
        if (ncases == cap) {
            cap = cap ? cap * 2 : 1024;
            if ((cases = realloc(cases, cap * sizeof(*cases))) == NULL)
                abort();
        }
        if (load_case(dir, de->d_name, &cases[ncases]))
            ncases++;
        else
            empty++;
    }
    closedir(d);
    if (files == 0 && (only == NULL || strncmp(only, "synthetic-", 10) != 0)) {
        fprintf(stderr, "oom_dispatch: no case in %s%s%s\n", dir, only ? " named " : "",
                only ? only : "");
        return 1;
    }
    if (only == NULL || strncmp(only, "synthetic-", 10) == 0) {
        if (ncases + 2 > cap) {
            cap = ncases + 2;
            if ((cases = realloc(cases, cap * sizeof(*cases))) == NULL)
                abort();
        }
        ncases += synthetic_cases(cases + ncases);
        if (only != NULL) {
            /* --case synthetic-...: that one only. */
            for (i = 0; i < ncases; i++)
                if (strcmp(cases[i].name, only) == 0)
                    break;
            if (i < ncases) {
                struct frames keep = cases[i];

                cases[i] = cases[0];
                cases[0] = keep;
                ncases = 1;
            }
        }
    }
    /* Byte-identical frame streams: run the first by name, drop the others. */
    qsort(cases, ncases, sizeof(*cases), frames_cmp);
    for (i = 0; i < ncases; i++) {
        if (unique > 0 && cases[unique - 1].len == cases[i].len &&
            memcmp(cases[unique - 1].data, cases[i].data, cases[i].len) == 0) {
            free(cases[i].name);
            free(cases[i].data);
            continue;
        }
        cases[unique++] = cases[i];
    }
    qsort(cases, unique, sizeof(*cases), by_name);
    /* --every K: a sample (every Kth case by name, the synthetic ones always), for valgrind. */
    for (i = 0; i < unique; i++)
        if (i % every == 0 || strncmp(cases[i].name, "synthetic-", 10) == 0) {
            run_one(&cases[i], from);
            ran++;
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("oom_dispatch: %lu files, %lu without a complete frame, %zu duplicates, %zu cases run: "
           "%lu requests, %lu runs, %lu allocations failed (jobs: %lu confirm, %lu sign, %lu lock, "
           "%lu unlock), %lu RSA signatures refused after an earlier run, %.1f s; %lu failures\n",
           files, empty, ncases - unique, ran, total_requests, total_runs, total_injections,
           jobs[AGENT_JOB_CONFIRM], jobs[AGENT_JOB_SIGN], jobs[AGENT_JOB_LOCK],
           jobs[AGENT_JOB_UNLOCK], rsa_refused,
           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 + (double)(t1.tv_sec - t0.tv_sec), failures);
    for (i = 0; i < unique; i++) {
        free(cases[i].name);
        free(cases[i].data);
    }
    free(cases);
    agent_cleanup(&loaded);
    return failures == 0 ? 0 : 1;
}
