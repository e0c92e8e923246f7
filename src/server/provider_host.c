/*
 * keyward: PKCS#11 helper processes. See provider_host.h.
 *
 * A host is one helper process, its framed connection (the helper's
 * standard input, a socketpair or duplex pipe) and a timer. Requests are
 * answered in order, so the waiting ones form a queue and the timer
 * watches the oldest. The host's memory lives until both the agent has let
 * go of it (released) and its three handles are closed.
 */
#include "server/provider_host.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "proto/helper_msg.h"
#include "transport/frame_conn.h"

#ifndef SIGKILL
#define SIGKILL 9
#endif

/* One request waiting for the helper's answer. */
struct host_request {
    struct agent_provider_job *load; /* a LOAD, or */
    struct agent_sign_job *sign;     /* a SIGN */
    provider_host_done_cb done;
    void *arg;
    struct host_request *next;
};

struct provider_host {
    struct provider_hosts *hosts;
    struct provider_host *next; /* in hosts->list */
    uv_process_t proc;
    struct frame_conn fc;
    uv_timer_t timer; /* the oldest request's deadline, then the kill after a stop */
    struct host_request *head, *tail;
    char path[256];      /* the module or FIDO provider, for log lines */
    const char *kind;    /* "PKCS#11 helper" or "FIDO helper", for log lines */
    unsigned timeout_ms; /* how long it has for one answer */
    bool oneshot;        /* a FIDO helper: one signature, then it is stopped */
    int handles;         /* open: the process, the connection, the timer */
    bool spawned;
    bool exited;
    bool dead;     /* no more requests: it failed, or was told to stop */
    bool released; /* nobody outside holds a pointer to it any more */
};

static void host_maybe_free(struct provider_host *h)
{
    struct provider_host **pp;

    if (!h->released || h->handles > 0)
        return;
    for (pp = &h->hosts->list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    free(h);
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct provider_host *h = handle->data;

    h->handles--;
    host_maybe_free(h);
}

static void on_fc_closed(struct frame_conn *fc)
{
    struct provider_host *h = fc->data;

    h->handles--;
    host_maybe_free(h);
}

static void on_drain(uv_idle_t *idle)
{
    struct provider_hosts *hs = idle->data;
    struct host_request *rq;

    while ((rq = hs->failed) != NULL) {
        hs->failed = rq->next;
        rq->done(rq->arg);
        free(rq);
    }
    uv_idle_stop(&hs->drain);
    if (hs->closing && !uv_is_closing((uv_handle_t *)&hs->drain))
        uv_close((uv_handle_t *)&hs->drain, NULL);
}

/*
 * Fills a waiting request's job with a failure and hands it back, from the
 * loop's next turn: a helper is often stopped from inside the agent (a
 * module removed), and the job's connection must not be resumed, handling
 * its next request, in the middle of another request.
 */
static void request_fail(struct provider_hosts *hs, struct host_request *rq, int err,
                         const char *why)
{
    struct host_request **tail;

    if (rq->load != NULL) {
        rq->load->run_err = err;
        snprintf(rq->load->why, sizeof(rq->load->why), "%s", why);
        rq->load->host = NULL; /* the helper stops: nobody is to release it */
    } else {
        rq->sign->run_err = err;
        snprintf(rq->sign->provider_why, sizeof(rq->sign->provider_why), "%s", why);
    }
    rq->next = NULL;
    for (tail = &hs->failed; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = rq;
    uv_idle_start(&hs->drain, on_drain);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct provider_host *h = t->data;

    if (h->spawned && !h->exited)
        (void)uv_process_kill(&h->proc, SIGKILL);
}

/*
 * Ends the helper: no more requests; every waiting one fails with why. The
 * helper's input is closed, which a well-behaved helper takes as the
 * signal to exit; kill says not to wait for that (it hangs or misbehaves).
 * With lost, the agent is told, so the module's keys go.
 */
static void host_stop(struct provider_host *h, const char *why, bool kill, bool lost)
{
    struct host_request *rq;

    if (!h->dead) {
        h->dead = true;
        if (!h->fc.closing)
            frame_conn_close(&h->fc, on_fc_closed);
        uv_timer_stop(&h->timer);
        if (h->spawned && !h->exited) {
            if (kill)
                (void)uv_process_kill(&h->proc, SIGKILL);
            else
                uv_timer_start(&h->timer, on_kill_timer, PROVIDER_HOST_KILL_MS, 0);
        }
        while ((rq = h->head) != NULL) {
            h->head = rq->next;
            request_fail(h->hosts, rq, KW_ERR_SYSTEM, why);
        }
        h->tail = NULL;
        if (lost && h->hosts->lost != NULL)
            h->hosts->lost(h->hosts->ctx, h, why);
    }
    if (lost)
        h->released = true; /* the agent forgot it in lost() */
    if (!h->spawned || h->exited) {
        if (!uv_is_closing((uv_handle_t *)&h->timer))
            uv_close((uv_handle_t *)&h->timer, on_handle_closed);
    }
    host_maybe_free(h);
}

/* A helper that misbehaved: killed, its requests failed, the agent told. */
static void host_fail(struct provider_host *h, const char *fmt, ...) KW_PRINTF(2, 3);
static void host_fail(struct provider_host *h, const char *fmt, ...)
{
    char why[200];
    va_list ap;

    if (h->dead)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_info("%s for %s: %s", h->kind, h->path, why);
    host_stop(h, why, true, true);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    struct provider_host *h = proc->data;

    h->exited = true;
    uv_close((uv_handle_t *)&h->proc, on_handle_closed);
    /* Stopped already (its connection ended first, or it was told to): say how it ended. */
    if (h->dead && term_signal != 0 && term_signal != SIGKILL)
        log_info("%s for %s was killed by signal %d", h->kind, h->path, term_signal);
    else if (h->dead && status != 0)
        log_info("%s for %s exited with status %lld", h->kind, h->path, (long long)status);
    if (term_signal != 0)
        host_fail(h, "its helper was killed by signal %d", term_signal);
    else
        host_fail(h, "its helper exited with status %lld", (long long)status);
    /* Stopped, the helper gone: the timer has nothing left to do. */
    if (!uv_is_closing((uv_handle_t *)&h->timer))
        uv_close((uv_handle_t *)&h->timer, on_handle_closed);
    host_maybe_free(h);
}

static void on_timeout(uv_timer_t *t)
{
    struct provider_host *h = t->data;

    host_fail(h, "no answer from its helper within %u s", h->timeout_ms / 1000);
}

static void arm_timer(struct provider_host *h)
{
    if (h->head != NULL)
        uv_timer_start(&h->timer, on_timeout, h->timeout_ms, 0);
    else
        uv_timer_stop(&h->timer);
}

/* A FAIL's reason, made safe for a log line. */
static void fail_reason(const struct provider_host *h, struct wire_view reason, char *buf,
                        size_t size)
{
    char safe[160];

    if (h->oneshot)
        snprintf(buf, size, "FIDO provider %.60s failed: %s", h->path,
                 log_sanitize(reason.ptr, reason.len, safe, sizeof(safe)));
    else
        snprintf(buf, size, "the module's helper failed: %s",
                 log_sanitize(reason.ptr, reason.len, safe, sizeof(safe)));
}

/*
 * A load request (taken off the queue) ends without keys: its caller
 * learns run_err, and the helper, which has nothing more to do, stops
 * (killed if kill) and goes once its process and pipes are done.
 */
static void load_failed(struct provider_host *h, struct host_request *rq, int run_err,
                        const char *why, bool kill)
{
    rq->load->run_err = run_err;
    rq->load->host = NULL;
    rq->done(rq->arg);
    free(rq);
    host_stop(h, why, kill, false);
    h->released = true;
    host_maybe_free(h);
}

/* Takes the oldest request off the queue. */
static struct host_request *pop_request(struct provider_host *h)
{
    struct host_request *rq = h->head;

    h->head = rq->next;
    if (h->head == NULL)
        h->tail = NULL;
    return rq;
}

/* A FIDO helper has answered its one request: it is told to stop (its input closed). */
static void oneshot_done(struct provider_host *h)
{
    host_stop(h, "its signature is done", false, false);
    h->released = true; /* nobody else ever held it */
    host_maybe_free(h);
}

/* One answer, for the oldest request. Returns false if the helper is to be dropped. */
static bool handle_answer(struct provider_host *h, const uint8_t *msg, size_t len)
{
    struct host_request *rq = h->head;
    struct helper_reply rep;

    if (rq == NULL) {
        host_fail(h, "its helper sent an answer nobody asked for");
        return false;
    }
    if (helper_reply_decode(msg, len, &rep) != 0) {
        host_fail(h, "its helper sent a malformed answer (%lu bytes, type %u)", (unsigned long)len,
                  len > 0 ? msg[0] : 0);
        return false;
    }
    if (rep.type == HELPER_FAIL && rq->load != NULL) {
        pop_request(h);
        fail_reason(h, rep.reason, rq->load->why, sizeof(rq->load->why));
        /* A helper whose module would not load has nothing more to do. */
        load_failed(h, rq, KW_ERR_DENIED, "the module did not load", false);
        return false;
    }
    if (rep.type == HELPER_FAIL) {
        pop_request(h);
        fail_reason(h, rep.reason, rq->sign->provider_why, sizeof(rq->sign->provider_why));
        rq->sign->run_err = KW_ERR_DENIED;
        rq->done(rq->arg);
        free(rq);
        if (h->oneshot) {
            oneshot_done(h);
            return false;
        }
        arm_timer(h);
        return true;
    }
    if (rep.type == HELPER_KEYS && rq->load != NULL) {
        pop_request(h);
        /* The agent takes the pairs with helper_keys_next() (agent.c). */
        wire_put_u32(&rq->load->keys, rep.nkeys);
        wire_put_bytes(&rq->load->keys, rep.keys.ptr, rep.keys.len);
        if (rq->load->keys.error != 0) {
            load_failed(h, rq, KW_ERR_ALLOC, "out of memory", true);
            return false;
        }
        rq->load->host = h; /* the agent's from now on */
        rq->done(rq->arg);
        free(rq);
        arm_timer(h);
        return true;
    }
    if (rep.type == HELPER_SIGNATURE && rq->sign != NULL) {
        pop_request(h);
        /* agent_job_finish() verifies it before anyone sees it. */
        wire_put_bytes(&rq->sign->sig, rep.sig.ptr, rep.sig.len);
        if (rq->sign->sig.error != 0)
            rq->sign->run_err = KW_ERR_ALLOC;
        rq->done(rq->arg);
        free(rq);
        if (h->oneshot) {
            oneshot_done(h);
            return false;
        }
        arm_timer(h);
        return true;
    }
    host_fail(h, "its helper sent message type %u, which does not answer %s", rep.type,
              rq->load != NULL ? "LOAD" : "SIGN");
    return false;
}

static void on_fc_read(struct frame_conn *fc)
{
    struct provider_host *h = fc->data;
    enum frame_status st;
    struct frame f;

    while (!h->dead && (st = frame_conn_frame(&h->fc, &f)) != FRAME_NONE) {
        if (st == FRAME_OVERSIZED) {
            host_fail(h, "its helper sent a frame over %u bytes", (unsigned)WIRE_MAX_MESSAGE);
            return;
        }
        if (!handle_answer(h, f.body, f.len))
            return;
        if (!h->dead)
            frame_conn_consume(&h->fc, f.size);
    }
}

static void on_fc_eof(struct frame_conn *fc)
{
    host_fail(fc->data, "its helper closed its connection");
}

static void on_fc_error(struct frame_conn *fc, const struct frame_conn_error *e)
{
    host_fail(fc->data, "connection to its helper failed: %s", e->detail ? e->detail : "?");
}

static const struct frame_conn_callbacks host_callbacks = {
    .on_read = on_fc_read,
    .on_eof = on_fc_eof,
    .on_error = on_fc_error,
};

void provider_hosts_init(struct provider_hosts *hs, uv_loop_t *loop)
{
    memset(hs, 0, sizeof(*hs));
    hs->loop = loop;
    uv_idle_init(loop, &hs->drain);
    hs->drain.data = hs;
}

/* Queues a request and sends its message; on failure the request fails at once. */
static void host_request(struct provider_host *h, struct host_request *rq,
                         const struct wire_writer *msg)
{
    int err;

    if (h->dead) {
        request_fail(h->hosts, rq, KW_ERR_SYSTEM, "the module's helper is gone");
        return;
    }
    if (msg->error != 0 || (err = frame_conn_send(&h->fc, msg->buf, msg->len)) != 0) {
        request_fail(h->hosts, rq, KW_ERR_ALLOC, "cannot send to the module's helper");
        return;
    }
    rq->next = NULL;
    if (h->tail != NULL)
        h->tail->next = rq;
    else
        h->head = rq;
    h->tail = rq;
    if (h->head == rq)
        arm_timer(h);
}

/*
 * Starts a helper: program with one bidirectional stream as its standard
 * input. fido: keyward-sk-helper, for one signature (oneshot) with the
 * touch timeout; else keyward-pkcs11-helper for a module.
 */
static struct provider_host *host_spawn(struct provider_hosts *hs, bool fido, const char *module,
                                        char *why, size_t whysize)
{
    const char *program = fido ? hs->sk_helper_path : hs->helper_path;
    uv_process_options_t opts;
    uv_stdio_container_t stdio[3];
    struct provider_host *h;
    char *args[2];
    int r;

    if (program == NULL) {
        snprintf(why, whysize, "%s is not installed",
                 fido ? "keyward-sk-helper" : "keyward-pkcs11-helper");
        return NULL;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        snprintf(why, whysize, "out of memory");
        return NULL;
    }
    h->hosts = hs;
    h->kind = fido ? "FIDO helper" : "PKCS#11 helper";
    h->oneshot = fido;
    h->timeout_ms = fido ? PROVIDER_HOST_SK_TIMEOUT_MS : PROVIDER_HOST_TIMEOUT_MS;
    snprintf(h->path, sizeof(h->path), "%s", module);
    if (frame_conn_init(hs->loop, &h->fc, &host_callbacks, h) != 0) {
        free(h);
        snprintf(why, whysize, "out of memory");
        return NULL;
    }
    uv_timer_init(hs->loop, &h->timer);
    h->timer.data = h;
    h->proc.data = h;
    h->handles = 2; /* the connection and the timer */
    h->next = hs->list;
    hs->list = h;

    memset(&opts, 0, sizeof(opts));
    args[0] = (char *)program;
    args[1] = NULL;
    /* One bidirectional stream as its standard input: requests in, answers out. */
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)frame_conn_pipe(&h->fc);
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_INHERIT_FD; /* its log lines go where ours go */
    stdio[2].data.fd = 2;
    /* The environment is the agent's: a middleware reads its own settings from it. */
    opts.file = program;
    opts.args = args;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.exit_cb = on_exit_cb;
    opts.flags = UV_PROCESS_WINDOWS_HIDE;
    r = uv_spawn(hs->loop, &h->proc, &opts);
    h->handles++; /* a failed spawn's handle must be closed too */
    if (r != 0) {
        snprintf(why, whysize, "cannot start %s: %s", program, uv_strerror(r));
        h->exited = true;
        uv_close((uv_handle_t *)&h->proc, on_handle_closed);
        host_stop(h, why, false, false);
        h->released = true;
        host_maybe_free(h);
        return NULL;
    }
    h->spawned = true;
    (void)frame_conn_read(&h->fc, FRAME_READ_ON);
    log_debug("%s for %s started (pid %d)", h->kind, module, h->proc.pid);
    return h;
}

void provider_host_load(struct provider_hosts *hs, struct agent_provider_job *pj,
                        provider_host_done_cb done, void *arg)
{
    struct host_request *rq = calloc(1, sizeof(*rq));
    struct provider_host *h;
    struct wire_writer msg;

    pj->host = NULL;
    if (rq == NULL) {
        pj->run_err = KW_ERR_ALLOC;
        done(arg);
        return;
    }
    rq->load = pj;
    rq->done = done;
    rq->arg = arg;
    if ((h = host_spawn(hs, false, pj->path, pj->why, sizeof(pj->why))) == NULL) {
        kw_memzero(pj->pin, pj->pin_len);
        pj->run_err = KW_ERR_SYSTEM;
        free(rq);
        done(arg);
        return;
    }
    wire_writer_init(&msg);
    helper_put_load(&msg, pj->path, pj->pin, pj->pin_len);
    /* The PIN now lives only in the send buffer, which is cleared once written. */
    kw_memzero(pj->pin, pj->pin_len);
    host_request(h, rq, &msg);
    wire_writer_free(&msg); /* cleared */
}

/* A FIDO key's signature: a keyward-sk-helper of its own, told which provider to use. */
static void sk_sign(struct provider_hosts *hs, struct agent_sign_job *sj, struct host_request *rq)
{
    const struct key *k = sj->key;
    struct provider_host *h;
    struct wire_writer msg;

    if ((h = host_spawn(hs, true, sj->sk_provider, sj->provider_why, sizeof(sj->provider_why))) ==
        NULL) {
        log_info("FIDO helper for %s: %s", sj->sk_provider, sj->provider_why);
        sj->run_err = KW_ERR_SYSTEM;
        rq->done(rq->arg);
        free(rq);
        return;
    }
    wire_writer_init(&msg);
    helper_put_sk_sign(&msg, sj->sk_provider,
                       k->kind == KEY_SK_ED25519 ? HELPER_SK_ALG_ED25519 : HELPER_SK_ALG_ECDSA_P256,
                       k->sk_application, k->sk_key_handle, k->sk_key_handle_len, k->sk_flags,
                       sj->data, sj->data_len);
    host_request(h, rq, &msg);
    wire_writer_free(&msg);
}

void provider_host_sign(struct provider_hosts *hs, struct agent_sign_job *sj,
                        provider_host_done_cb done, void *arg)
{
    struct host_request *rq = calloc(1, sizeof(*rq));
    struct wire_writer msg;

    if (rq == NULL) {
        sj->run_err = KW_ERR_ALLOC;
        done(arg);
        return;
    }
    rq->sign = sj;
    rq->done = done;
    rq->arg = arg;
    if (sj->sk_provider != NULL) {
        sk_sign(hs, sj, rq);
        return;
    }
    wire_writer_init(&msg);
    helper_put_sign(&msg, sj->key->plain_blob, sj->key->plain_blob_len, sj->data, sj->data_len,
                    sj->flags);
    host_request(sj->host, rq, &msg);
    wire_writer_free(&msg);
}

void provider_host_release(void *hosts, void *host)
{
    struct provider_host *h = host;

    (void)hosts;
    if (h == NULL)
        return;
    log_debug("%s for %s: stopping", h->kind, h->path);
    host_stop(h, "the module was removed", false, false);
    h->released = true;
    host_maybe_free(h);
}

void provider_hosts_close(struct provider_hosts *hs)
{
    struct provider_host *h, *next;

    hs->closing = true;
    for (h = hs->list; h != NULL; h = next) {
        next = h->next;
        if (!h->dead)
            host_stop(h, "the agent is shutting down", false, false);
    }
    if (hs->failed == NULL && !uv_is_closing((uv_handle_t *)&hs->drain))
        uv_close((uv_handle_t *)&hs->drain, NULL);
}
