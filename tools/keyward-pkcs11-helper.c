/*
 * keyward-pkcs11-helper: loads one PKCS#11 module for keyward-agent, out of
 * the agent's process.
 *
 *   keyward-pkcs11-helper [-d]
 *
 * The agent starts it with one bidirectional stream as standard input and
 * speaks the provider helper protocol on it (docs/providers.md): requests
 * and replies are both read from and written to descriptor 0. It exits 0
 * when that stream ends. This file is the event loop and the dispatch;
 * the protocol's encoding is src/proto/helper_msg.c, the module work
 * src/pkcs11/token.c.
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
#include "proto/helper_msg.h"
#include "pkcs11/token.h"
#include "platform/platform.h"
#include "platform/uv_err.h"
#include "transport/frame_conn.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "unknown"
#endif

/* A module path longer than this is refused (the agent checked it already). */
#define MAX_MODULE_PATH 4096

struct helper {
    struct frame_conn fc;
    struct p11_token *token;
    bool load_seen; /* LOAD is taken once, whether it worked or not */
    bool finishing;
    int status; /* the exit status */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward-pkcs11-helper [-d]\n"
            "       keyward-pkcs11-helper --help | --version\n"
            "\n"
            "Loads one PKCS#11 module for keyward-agent, which starts it; not meant to be run\n"
            "by hand. It speaks the provider helper protocol (docs/providers.md) on standard\n"
            "input, a bidirectional stream, and exits when that stream ends.\n"
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

static void handle_load(struct helper *h, const struct helper_request *req)
{
    char module[MAX_MODULE_PATH + 1], why[256];
    struct wire_writer w;
    struct p11_key_info info;
    size_t i, n;
    int r;

    if (h->load_seen) {
        send_fail(h, "LOAD", "a module was loaded already");
        goto out;
    }
    h->load_seen = true;
    if (req->module.len == 0 || req->module.len > MAX_MODULE_PATH ||
        memchr(req->module.ptr, '\0', req->module.len) != NULL) {
        send_fail(h, "LOAD", "bad module path");
        goto out;
    }
    memcpy(module, req->module.ptr, req->module.len);
    module[req->module.len] = '\0';
    why[0] = '\0';
    r = p11_token_load(module, req->pin.ptr, req->pin.len, &h->token, why, sizeof(why));
    if (r != 0) {
        send_fail(h, "LOAD", why[0] != '\0' ? why : kw_strerror(r));
        goto out;
    }
    n = p11_token_nkeys(h->token);
    log_debug("module loaded: %lu key(s)", (unsigned long)n);
    wire_writer_init(&w);
    helper_put_keys_begin(&w, (uint32_t)n);
    for (i = 0; i < n; i++) {
        p11_token_key(h->token, i, &info);
        helper_put_key(&w, info.blob, info.blob_len, info.label);
    }
    send_msg(h, &w);
    wire_writer_free(&w);
out:
    /*
     * The PIN is only in the received frame, which frame_conn clears when
     * it is consumed; cleared here as soon as it was used all the same.
     * The buffer is frame_conn's own, writable memory.
     */
    kw_memzero((void *)(uintptr_t)req->pin.ptr, req->pin.len);
}

static void finish(struct helper *h, int status);

static void handle_sign(struct helper *h, const struct helper_request *req)
{
    struct wire_writer sig, w;
    char why[256];
    int r;

    if (h->token == NULL) {
        send_fail(h, "SIGN", "no module loaded");
        return;
    }
    wire_writer_init(&sig);
    why[0] = '\0';
    r = p11_token_sign(h->token, req->blob.ptr, req->blob.len, req->data.ptr, req->data.len,
                       req->flags, &sig, why, sizeof(why));
    if (r != 0) {
        send_fail(h, "SIGN", why[0] != '\0' ? why : kw_strerror(r));
        /*
         * A removed or replaced token: none of its keys can sign any more.
         * Ending here tells the agent, which then removes them all (the
         * FAIL above goes out first), and the user can add the module again.
         */
        if (p11_token_gone(h->token)) {
            log_info("the token is gone: exiting");
            finish(h, 3);
        }
    } else {
        log_debug("signed %lu bytes", (unsigned long)req->data.len);
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
    if (req.type == HELPER_LOAD)
        handle_load(h, &req);
    else
        handle_sign(h, &req);
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
            printf("keyward-pkcs11-helper %s\n", KEYWARD_VERSION);
            return 0;
        } else if (strcmp(argv[i], "-d") == 0) {
            level = LOG_LEVEL_DEBUG;
        } else {
            usage(stderr);
            return 2;
        }
    }
    log_init("keyward-pkcs11-helper", level, LOG_SINK_STDERR);
    /* It holds a PIN for a moment and talks to a token: keep other processes out. */
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
    p11_token_free(h.token);
    h.token = NULL;
    if (uv_loop_close(&loop) != 0)
        log_error("handles left open at exit");
    return h.status;
}
