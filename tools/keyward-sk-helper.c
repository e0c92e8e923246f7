/*
 * keyward-sk-helper: signs with a FIDO key for keyward-agent, out of the
 * agent's process.
 *
 *   keyward-sk-helper [-d]
 *
 * The agent starts one for each signature with a FIDO key (as OpenSSH's
 * ssh-sk-helper) with one bidirectional stream as standard input, sends it
 * SK_SIGN (docs/providers.md) and reads SIGNATURE or FAIL; the helper
 * exits 0 when that stream ends. The provider, a middleware library or
 * "internal", is loaded here (src/sk/middleware.c), never in the agent.
 * The helper inherits the agent's environment, which a middleware may read
 * (the test authenticator's SOFT_SK_STORE, say).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "platform/platform.h"
#include "platform/uv_err.h"
#include "proto/helper_msg.h"
#include "sk/middleware.h"
#include "transport/frame_conn.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "unknown"
#endif

/* Longest provider path and application taken (the agent checked both already). */
#define MAX_PROVIDER_PATH 4096
#define MAX_APPLICATION   1024
#define MAX_PIN           256

struct helper {
    struct frame_conn fc;
    bool finishing;
    int status; /* the exit status */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: keyward-sk-helper [-d]\n"
                 "       keyward-sk-helper --help | --version\n"
                 "\n"
                 "Signs with a FIDO security key for keyward-agent, which starts it; not meant to\n"
                 "be run by hand. It speaks the provider helper protocol (docs/providers.md) on\n"
                 "standard input, a bidirectional stream, and exits when that stream ends.\n"
                 "\n"
                 "  -d         log every request to stderr\n"
                 "  --help     show this help\n"
                 "  --version  show the version\n");
}

static void send_msg(struct helper *h, struct wire_writer *w)
{
    struct wire_writer fail;
    int r;

    if (w->error != 0) {
        log_info("reply not sent: %s", kw_strerror(w->error));
        wire_writer_init(&fail);
        helper_put_fail(&fail, "reply too large");
        r = frame_conn_send(&h->fc, fail.buf, fail.len);
        wire_writer_free(&fail);
    } else {
        r = frame_conn_send(&h->fc, w->buf, w->len);
    }
    if (r != 0)
        log_error("cannot send reply: %s", h->fc.why != NULL ? h->fc.why : kw_strerror(r));
}

static void send_fail(struct helper *h, const char *what, const char *why)
{
    struct wire_writer w;

    /* The one log line of every refusal; the agent logs the reason again on its side. */
    log_info("%s refused: %s", what, why);
    wire_writer_init(&w);
    helper_put_fail(&w, why);
    send_msg(h, &w);
    wire_writer_free(&w);
}

/* A view as a C string in buf; false if it is too long or holds a NUL. */
static bool view_cstring(struct wire_view v, char *buf, size_t size)
{
    if (v.len >= size || memchr(v.ptr, '\0', v.len) != NULL)
        return false;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    return true;
}

static void handle_sk_sign(struct helper *h, const struct helper_request *req)
{
    char provider[MAX_PROVIDER_PATH], application[MAX_APPLICATION], pin[MAX_PIN], why[256];
    struct wire_writer sig, w;
    int r;

    if (!view_cstring(req->module, provider, sizeof(provider)) ||
        !view_cstring(req->application, application, sizeof(application)) ||
        !view_cstring(req->pin, pin, sizeof(pin))) {
        send_fail(h, "SK_SIGN", "malformed provider, application or PIN");
        return;
    }
    if (req->alg != HELPER_SK_ALG_ED25519 && req->alg != HELPER_SK_ALG_ECDSA_P256) {
        send_fail(h, "SK_SIGN", "unknown key algorithm");
        kw_memzero(pin, sizeof(pin));
        return;
    }
    wire_writer_init(&sig);
    why[0] = '\0';
    log_debug("signing %lu bytes with %s", (unsigned long)req->data.len, provider);
    r = sk_sign_with(provider, req->alg, application, req->key_handle.ptr, req->key_handle.len,
                     (uint8_t)req->flags, req->data.ptr, req->data.len, pin, &sig, why,
                     sizeof(why));
    kw_memzero(pin, sizeof(pin));
    if (r != 0) {
        send_fail(h, "SK_SIGN", why[0] != '\0' ? why : kw_strerror(r));
    } else {
        wire_writer_init(&w);
        helper_put_signature(&w, sig.buf, sig.len);
        send_msg(h, &w);
        wire_writer_free(&w);
    }
    wire_writer_free(&sig);
}

static void handle(struct helper *h, const uint8_t *msg, size_t len)
{
    struct helper_request req;
    char why[64];
    int r;

    if ((r = helper_request_decode(msg, len, &req)) != 0) {
        if (r == KW_ERR_KEY_TYPE)
            snprintf(why, sizeof(why), "unknown request type %u", (unsigned)req.type);
        else
            snprintf(why, sizeof(why), "malformed request: %s", kw_strerror(r));
        send_fail(h, "request", why);
        return;
    }
    if (req.type != HELPER_SK_SIGN) {
        send_fail(h, "request", "this helper takes SK_SIGN only");
        return;
    }
    handle_sk_sign(h, &req);
}

/* ---- the connection ---- */

static void on_shutdown(struct frame_conn *fc, int err)
{
    (void)err;
    frame_conn_close(fc, NULL);
}

/* Stops reading, lets the replies queued go out, then closes: the loop then ends. */
static void finish(struct helper *h, int status)
{
    if (h->finishing)
        return;
    h->finishing = true;
    h->status = status;
    (void)frame_conn_read(&h->fc, FRAME_READ_OFF);
    if (frame_conn_shutdown(&h->fc, on_shutdown) != 0)
        frame_conn_close(&h->fc, NULL);
}

static void on_read(struct frame_conn *fc)
{
    struct helper *h = fc->data;
    struct frame f;
    enum frame_status st;

    while (!h->finishing && (st = frame_conn_frame(fc, &f)) != FRAME_NONE) {
        if (st == FRAME_OVERSIZED) {
            /* The framing is lost: nothing after it can be read as a request. */
            log_error("frame of %lu bytes is over the limit: stopping", (unsigned long)f.len);
            frame_conn_discard(fc, 0);
            finish(h, 1);
            return;
        }
        handle(h, f.body, f.len);
        frame_conn_consume(fc, f.size);
    }
}

static void on_eof(struct frame_conn *fc)
{
    struct helper *h = fc->data;

    log_debug("end of input: exiting");
    finish(h, 0);
}

static void on_error(struct frame_conn *fc, const struct frame_conn_error *e)
{
    struct helper *h = fc->data;

    log_error("connection to the agent failed while %s: %s", e->writing ? "writing" : "reading",
              e->detail != NULL ? e->detail : kw_strerror(e->err));
    h->finishing = true;
    h->status = 1;
    frame_conn_close(fc, NULL);
}

static const struct frame_conn_callbacks helper_callbacks = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_error = on_error,
};

int main(int argc, char **argv)
{
    static struct helper h; /* static: the loop's handles point into it */
    enum log_level level = LOG_LEVEL_INFO;
    uv_loop_t loop;
    int i, r;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("keyward-sk-helper %s\n", KEYWARD_VERSION);
            return 0;
        } else if (strcmp(argv[i], "-d") == 0) {
            level = LOG_LEVEL_DEBUG;
        } else {
            usage(stderr);
            return 2;
        }
    }
    log_init("keyward-sk-helper", level, LOG_SINK_STDERR);
    /* It talks to an authenticator for the agent: keep other processes out. */
#ifdef _WIN32
    (void)platform_harden_process(); /* logs why it failed itself; not fatal, as on Unix */
#else
    if ((r = platform_harden_process()) != 0)
        log_info("cannot harden the process: %s", kw_strerror(r));
#endif
#ifndef _WIN32
    /* A write to an agent that went away fails (on_error); it does not kill us. */
    signal(SIGPIPE, SIG_IGN);
#endif
    if ((r = uv_loop_init(&loop)) != 0) {
        log_error("cannot start: %s", uv_strerror(r));
        return 1;
    }
    if ((r = frame_conn_init(&loop, &h.fc, &helper_callbacks, &h)) != 0) {
        log_error("cannot start: %s", kw_strerror(r));
        return 1;
    }
    /* One stream, both ways: the agent's end of a socketpair (Windows: a duplex pipe). */
    if ((r = uv_pipe_open(frame_conn_pipe(&h.fc), 0)) != 0) {
        log_error("standard input is not a stream to the agent: %s", uv_strerror(r));
        frame_conn_close(&h.fc, NULL);
        h.status = 1;
    } else if ((r = frame_conn_read(&h.fc, FRAME_READ_ON)) != 0) {
        log_error("cannot read standard input: %s", h.fc.why != NULL ? h.fc.why : "?");
        frame_conn_close(&h.fc, NULL);
        h.status = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_error("handles left open at exit");
    return h.status;
}
