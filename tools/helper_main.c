/*
 * keyward's helper processes: the shared side of the helper protocol
 * (helper_main.h says what each helper adds).
 */
#include "helper_main.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "platform/platform.h"
#include "transport/frame_conn.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "unknown"
#endif

struct helper_proc {
    struct frame_conn fc;
    const struct helper_program *prog;
    bool finishing;
    int status; /* the exit status */
};

static void usage(const struct helper_program *prog, FILE *out)
{
    fprintf(out,
            "usage: %s [-d]\n"
            "       %s --help | --version\n"
            "\n"
            "%s\n"
            "\n"
            "  -d         log every request to stderr\n"
            "  --help     show this help\n"
            "  --version  show the version\n",
            prog->name, prog->name, prog->about);
}

void helper_proc_send(struct helper_proc *hp, struct wire_writer *w)
{
    struct wire_writer fail;
    int r;

    if (w->error != 0) {
        log_info("reply not sent: %s", kw_strerror(w->error));
        wire_writer_init(&fail);
        helper_put_fail(&fail, "reply too large");
        r = frame_conn_send(&hp->fc, fail.buf, fail.len);
        wire_writer_free(&fail);
    } else {
        r = frame_conn_send(&hp->fc, w->buf, w->len);
    }
    if (r != 0)
        log_error("cannot send reply: %s", hp->fc.why != NULL ? hp->fc.why : kw_strerror(r));
}

void helper_proc_fail(struct helper_proc *hp, const char *what, const char *why)
{
    struct wire_writer w;

    /* The one log line of every refusal; the agent logs the reason again on its side. */
    log_info("%s refused: %s", what, why);
    wire_writer_init(&w);
    helper_put_fail(&w, why);
    helper_proc_send(hp, &w);
    wire_writer_free(&w);
}

static void handle(struct helper_proc *hp, const uint8_t *msg, size_t len)
{
    struct helper_request req;
    char why[64];
    int r;

    if ((r = helper_request_decode(msg, len, &req)) != 0) {
        if (r == KW_ERR_KEY_TYPE)
            snprintf(why, sizeof(why), "unknown request type %u", (unsigned)req.type);
        else
            snprintf(why, sizeof(why), "malformed request: %s", kw_strerror(r));
        helper_proc_fail(hp, "request", why);
        return;
    }
    hp->prog->handle(hp, &req, hp->prog->ctx);
}

/* ---- the connection ---- */

static void on_shutdown(struct frame_conn *fc, int err)
{
    (void)err;
    frame_conn_close(fc, NULL);
}

void helper_proc_finish(struct helper_proc *hp, int status)
{
    if (hp->finishing)
        return;
    hp->finishing = true;
    hp->status = status;
    (void)frame_conn_read(&hp->fc, FRAME_READ_OFF);
    if (frame_conn_shutdown(&hp->fc, on_shutdown) != 0)
        frame_conn_close(&hp->fc, NULL);
}

static void on_read(struct frame_conn *fc)
{
    struct helper_proc *hp = fc->data;
    struct frame f;
    enum frame_status st;

    while (!hp->finishing && (st = frame_conn_frame(fc, &f)) != FRAME_NONE) {
        if (st == FRAME_OVERSIZED) {
            /* The framing is lost: nothing after it can be read as a request. */
            log_error("frame of %lu bytes is over the limit: stopping", (unsigned long)f.len);
            frame_conn_discard(fc, 0);
            helper_proc_finish(hp, 1);
            return;
        }
        handle(hp, f.body, f.len);
        frame_conn_consume(fc, f.size);
    }
}

static void on_eof(struct frame_conn *fc)
{
    log_debug("end of input: exiting");
    helper_proc_finish(fc->data, 0);
}

static void on_error(struct frame_conn *fc, const struct frame_conn_error *e)
{
    struct helper_proc *hp = fc->data;

    log_error("connection to the agent failed while %s: %s", e->writing ? "writing" : "reading",
              e->detail != NULL ? e->detail : kw_strerror(e->err));
    hp->finishing = true;
    hp->status = 1;
    frame_conn_close(fc, NULL);
}

static const struct frame_conn_callbacks helper_callbacks = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_error = on_error,
};

int helper_main(int argc, char **argv, const struct helper_program *prog)
{
    static struct helper_proc hp; /* static: the loop's handles point into it */
    enum log_level level = LOG_LEVEL_INFO;
    uv_loop_t loop;
    int i, r;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(prog, stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", prog->name, KEYWARD_VERSION);
            return 0;
        } else if (strcmp(argv[i], "-d") == 0) {
            level = LOG_LEVEL_DEBUG;
        } else {
            usage(prog, stderr);
            return 2;
        }
    }
    hp.prog = prog;
    log_init(prog->name, level, LOG_SINK_STDERR);
    /* It holds a PIN for a moment or talks to a token or authenticator: keep other processes out.
     */
#ifdef _WIN32
    (void)platform_harden_process(); /* logs why it failed itself; not fatal, as on Unix */
#else
    if ((r = platform_harden_process()) != 0)
        log_info("cannot harden the process: %s", kw_strerror(r));
    /* A write to an agent that went away fails (on_error); it does not kill us. */
    signal(SIGPIPE, SIG_IGN);
#endif
    if ((r = uv_loop_init(&loop)) != 0) {
        log_error("cannot start: %s", uv_strerror(r));
        return 1;
    }
    if ((r = frame_conn_init(&loop, &hp.fc, &helper_callbacks, &hp)) != 0) {
        log_error("cannot start: %s", kw_strerror(r));
        return 1;
    }
    /* One stream, both ways: the agent's end of a socketpair (Windows: a duplex pipe). */
    if ((r = uv_pipe_open(frame_conn_pipe(&hp.fc), 0)) != 0) {
        log_error("standard input is not a stream to the agent: %s", uv_strerror(r));
        frame_conn_close(&hp.fc, NULL);
        hp.status = 1;
    } else if ((r = frame_conn_read(&hp.fc, FRAME_READ_ON)) != 0) {
        log_error("cannot read standard input: %s", hp.fc.why != NULL ? hp.fc.why : "?");
        frame_conn_close(&hp.fc, NULL);
        hp.status = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_error("handles left open at exit");
    return hp.status;
}
