/*
 * keyward: the agent's transport. See server.h.
 */
#include "server/server.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#endif
#ifdef __linux__
#include <errno.h>
#endif

#include "base/timing.h"
#include "base/err.h"
#include "base/log.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "platform/platform.h"
#include "transport/frame_conn.h"
#include "transport/listener.h"

/*
 * Threads for slow jobs when UV_THREADPOOL_SIZE does not say, and at most
 * (the variable that sized libuv's pool, which these jobs used to run on).
 */
#define THREADPOOL_DEFAULT 4
#define THREADPOOL_MAX     JOB_POOL_MAX_THREADS
/* How much nicer than the loop thread the worker threads run (Linux). */
#define WORKER_NICE 10
/*
 * One connection's turn: at most this many requests, and no more once this
 * long has been spent (after the first), before the loop looks at the
 * other clients. A client that pipelines thousands of requests in one
 * write then delays another's request by one batch, not by all of them.
 */
#define BATCH_FRAMES 32
#define BATCH_NS     (200u * 1000u)

/* A connection's place in a struct conn_queue. */
struct conn_link {
    struct conn *prev, *next;
    bool queued;
};

/*
 * A confirmation prompt: one askpass process. Its own allocation with its
 * own handles, never reused: a new confirmation gets a new one even while
 * the last is still closing. It outlives its connection when that goes
 * away first: the process is then asked to stop (SIGTERM), killed
 * (SIGKILL) if it has not within SERVER_PROMPT_KILL_MS, and the object is
 * freed once both handles are closed.
 */
struct prompt {
    uv_process_t proc;
    uv_timer_t kill_timer;
    struct server *srv;
    struct conn *conn; /* whose question it is; NULL once that connection is gone */
    int pid;
    int handles;  /* open handles that point here */
    bool exited;  /* the process was reaped */
    bool killing; /* asked to stop */
};

struct conn {
    struct frame_conn fc;     /* the client's pipe, its received bytes and queued replies */
    struct conn *prev, *next; /* in srv->conns */
    uv_timer_t delay_timer;
    struct server *srv;
    struct agent_conn state;
    unsigned long last_request;     /* srv->requests when this connection's last one came */
    struct agent_reply held;        /* a reply being held back (failed unlock) */
    struct agent_job *job;          /* a confirmation or signature under way */
    struct prompt *prompt;          /* the askpass asking about job, while it runs */
    struct conn_link ready;         /* in srv->ready: requests buffered, waiting for a turn */
    struct conn_link prompt_wait;   /* in srv->prompt_wait: job waits for a prompt slot */
    struct job_pool_item pool_item; /* queued while job runs on a worker thread */
    bool busy;                      /* a held reply or a job: read no further request yet */
    bool processing;                /* inside conn_process(): do not re-enter it */
    /*
     * The client ended its side while a worker job (a signature, an
     * unlock) was out: finish, send the replies, then close. A client that
     * half-closes after its request (printf ... | socat) still gets its
     * answer. Not for confirmations: nobody may be left to see the prompt.
     */
    bool peer_done;
    /*
     * An I/O error: the client can no longer get replies (it reset the
     * connection, or went away with replies unread). The requests it sent
     * before are still carried out, in order, as OpenSSH's agent carries
     * out every request it has read (a LOCK among them must lock); their
     * replies are dropped. Then the connection closes.
     */
    bool peer_gone;
    const char *done_why; /* why reading stopped, for the log */
    bool closing;
    /* Handles and queued work that still refer to this struct. */
    int refs;
};

static void conn_process(struct conn *c);
static void conn_update_reading(struct conn *c);
static void prompt_abandon(struct prompt *p);
static void on_resume(uv_idle_t *h);

/* ---- queues of connections ---- */

static void queue_push(struct conn_queue *q, struct conn *c, struct conn_link *l)
{
    if (l->queued)
        return;
    l->queued = true;
    l->next = NULL;
    l->prev = q->tail;
    if (q->tail != NULL)
        ((struct conn_link *)((char *)q->tail + ((char *)l - (char *)c)))->next = c;
    else
        q->head = c;
    q->tail = c;
    q->count++;
}

static void queue_remove(struct conn_queue *q, struct conn *c, struct conn_link *l)
{
    size_t off = (size_t)((char *)l - (char *)c);

    if (!l->queued)
        return;
    if (l->prev != NULL)
        ((struct conn_link *)((char *)l->prev + off))->next = l->next;
    else
        q->head = l->next;
    if (l->next != NULL)
        ((struct conn_link *)((char *)l->next + off))->prev = l->prev;
    else
        q->tail = l->prev;
    l->prev = l->next = NULL;
    l->queued = false;
    q->count--;
}

/* The first connection of q, taken off it; link_off is its link's offset in struct conn. */
static struct conn *queue_pop(struct conn_queue *q, size_t link_off)
{
    struct conn *c = q->head;

    if (c != NULL)
        queue_remove(q, c, (struct conn_link *)((char *)c + link_off));
    return c;
}

/* A complete frame (or an oversized one's header) is waiting in the buffer. */
static bool conn_has_frame(const struct conn *c)
{
    struct frame f;

    return frame_conn_frame(&c->fc, &f) != FRAME_NONE;
}

static bool conn_backlogged(const struct conn *c)
{
    return frame_conn_backlogged(&c->fc);
}

/* Gives the connection another turn at its buffered requests, soon. */
static void conn_defer(struct conn *c)
{
    struct server *srv = c->srv;

    if (c->closing || c->ready.queued)
        return;
    queue_push(&srv->ready, c, &c->ready);
    if (!uv_is_active((uv_handle_t *)&srv->resume))
        uv_idle_start(&srv->resume, on_resume);
}

/* ---- connection lifetime ---- */

/* The receive buffer is gone with the frame_conn (cleared, in its close). */
static void conn_free(struct conn *c)
{
    agent_reply_free(&c->held);
    agent_job_free(c->job);
    agent_conn_cleanup(&c->state);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
}

static void conn_release(struct conn *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_release(h->data);
}

static void on_conn_fc_closed(struct frame_conn *fc)
{
    conn_release(fc->data);
}

static void conn_close(struct conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    log_debug("conn %lu: closed (%s)", c->state.id, why);
    queue_remove(&c->srv->ready, c, &c->ready);
    queue_remove(&c->srv->prompt_wait, c, &c->prompt_wait);
    if (c->prompt != NULL) {
        /* Nobody is left to answer: end the prompt and anything it started. */
        prompt_abandon(c->prompt);
        c->prompt = NULL;
    }
    frame_conn_close(&c->fc, on_conn_fc_closed);
    uv_close((uv_handle_t *)&c->delay_timer, on_conn_handle_closed);
}

/* ---- writing ---- */

/*
 * After end of stream: close once nothing is running, every request that
 * came is handled and every reply is out.
 */
static void conn_finish_if_done(struct conn *c)
{
    if (c->peer_done && !c->closing && !c->busy && frame_conn_writes_pending(&c->fc) == 0 &&
        !conn_has_frame(c))
        conn_close(c, c->done_why ? c->done_why : "end of stream");
}

/*
 * The client is gone (an I/O error on its pipe). A confirmation under way
 * ends at once, as after end of stream: nobody is left to answer the
 * prompt. Otherwise the requests already received are still handled, with
 * their replies dropped (conn_send), and the connection closes after them.
 */
static void conn_peer_gone(struct conn *c, const char *why)
{
    if (c->closing)
        return;
    if (c->busy && c->job != NULL && c->job->kind == AGENT_JOB_CONFIRM) {
        conn_close(c, why);
        return;
    }
    if (!c->peer_gone && conn_has_frame(c))
        log_debug("conn %lu: %s; handling the requests it sent before, without replies",
                  c->state.id, why);
    c->peer_gone = true;
    c->peer_done = true;
    c->done_why = why;
    if (!c->busy && !c->processing && conn_has_frame(c))
        conn_defer(c);
    conn_update_reading(c);
    conn_finish_if_done(c);
}

/* A reply is written out. */
static void on_conn_sent(struct frame_conn *fc)
{
    struct conn *c = fc->data;

    /* Requests left while the client was not reading its replies. */
    if (!c->busy && !conn_backlogged(c) && conn_has_frame(c))
        conn_defer(c);
    conn_finish_if_done(c);
    if (!c->closing)
        conn_update_reading(c);
}

static void conn_send(struct conn *c, const struct wire_writer *msg)
{
    int r;

    if (c->peer_gone)
        return; /* nobody to read it */
    if ((r = frame_conn_send(&c->fc, msg->buf, msg->len)) == KW_ERR_ALLOC)
        conn_close(c, "out of memory");
    else if (r != 0)
        conn_peer_gone(c, c->fc.why);
}

/* ---- reading and framing ---- */

/* New bytes from the client. */
static void on_conn_read(struct frame_conn *fc)
{
    struct conn *c = fc->data;

    if (c->busy || c->ready.queued)
        conn_update_reading(c); /* buffer only; handled when the job is done or at its turn */
    else
        conn_process(c);
}

/*
 * End of stream: the client may only have shut its sending side (printf
 * ... | socat) and still be reading. Answer what it sent, then close. Only
 * a pending confirmation ends at once: nobody may be left to see the
 * prompt.
 */
static void on_conn_eof(struct frame_conn *fc)
{
    struct conn *c = fc->data;

    if (c->busy && c->job != NULL && c->job->kind == AGENT_JOB_CONFIRM) {
        conn_close(c, "end of stream");
        return;
    }
    c->peer_done = true;
    c->done_why = "end of stream";
    conn_update_reading(c);
    conn_finish_if_done(c);
}

/* Reading or writing failed: the client is gone (conn_peer_gone()). */
static void on_conn_error(struct frame_conn *fc, const struct frame_conn_error *e)
{
    conn_peer_gone(fc->data, e->detail);
}

static const struct frame_conn_callbacks conn_callbacks = {
    .on_read = on_conn_read,
    .on_eof = on_conn_eof,
    .on_error = on_conn_error,
    .on_sent = on_conn_sent,
};

/* A held reply's delay is over, or a request waiting its turn may be offered again. */
static void on_delay_done(uv_timer_t *t)
{
    struct conn *c = t->data;

    if (c->closing || !c->busy)
        return;
    if (c->held.msg.len > 0)
        conn_send(c, &c->held.msg);
    agent_reply_free(&c->held);
    c->busy = false;
    conn_process(c); /* frames that arrived meanwhile */
}

/* ---- jobs: confirmations and signatures off the loop ---- */

static void conn_deliver(struct conn *c, struct agent_reply *reply);

#ifdef __linux__
/*
 * Runs the calling worker thread WORKER_NICE nicer than it was (than the
 * loop thread that started it); each pool calls it once per thread. On
 * Linux the nice value is per thread, and nice() changes the caller's
 * only. When other processes hold the cores, a loop thread woken by a
 * client's request then preempts an RSA signature sooner instead of
 * waiting out a scheduler tick, so lists and fast signatures stay quick
 * beside slow ones. Not SCHED_IDLE:
 * that would starve signatures whenever anything else wants the CPU
 * (docs/performance.md).
 */
static void worker_lower_priority(void)
{
    errno = 0;
    if (nice(WORKER_NICE) == -1 && errno != 0)
        log_debug("worker thread: cannot lower its priority: %s", strerror(errno));
}
#endif

/*
 * Loop thread: a worker job is over; reply, unless the client left. A
 * LOCK the agent accepted takes effect (and is audited) even then: the
 * client was told nothing, but locking is always safe to carry out, and a
 * client that asked for it must not find the agent unlocked because it
 * hung up early. An UNLOCK whose client left is not carried out: nobody
 * would learn the result, and an agent that unlocks for a client that is
 * gone is not what anyone asked for. It is refused in the log and the
 * audit log. A signature nobody will read is dropped, and
 * refused in the log if the connection still handles what the client sent.
 */
static void finish_job(struct conn *c)
{
    struct agent_job *job = c->job;
    struct agent_reply reply;

    c->srv->jobs--;
    c->job = NULL;
    /* Keys that expired while the job ran must not serve it (agent_job_finish()). */
    server_schedule_expiry(c->srv);
    agent_reply_init(&reply);
    if (!c->closing && !c->peer_gone) {
        /* Read before agent_job_finish(), which frees the job. */
        bool timed = kw_timing_on && job->kind == AGENT_JOB_SIGN;
        uint64_t t0 = timed ? kw_timing_now() : 0;

        if (timed)
            kw_timing_add(KW_TIMING_HANDOFF, kw_timing_wall() - agent_sign_job(job)->timing_start -
                                                 agent_sign_job(job)->timing_sign_ns);
        agent_job_finish(c->srv->agent, &c->state, job, &reply);
        if (timed)
            kw_timing_add(KW_TIMING_ENCODE, kw_timing_now() - t0);
    } else if (job->kind == AGENT_JOB_LOCK) {
        agent_job_finish(c->srv->agent, &c->state, job, &reply);
        log_info("conn %lu: LOCK carried out after the client left; reply dropped", c->state.id);
    } else if (job->kind == AGENT_JOB_UNLOCK) {
        agent_job_refuse(c->srv->agent, &c->state, job,
                         "the client left before its passphrase was checked", &reply);
    } else if (!c->closing) {
        agent_job_refuse(c->srv->agent, &c->state, job,
                         "the client left before the signature was delivered", &reply);
    } else {
        agent_job_free(job);
    }
    /* A vanished client's later requests are still handled (conn_peer_gone()). */
    if (!c->closing)
        conn_deliver(c, &reply);
    agent_reply_free(&reply);
    conn_release(c); /* the job's reference */
}

static void on_pool_done(struct job_pool *pool, struct job_pool_item *item)
{
    struct conn *c = (struct conn *)((char *)item - offsetof(struct conn, pool_item));

    if (pool == &c->srv->slow_pool)
        c->srv->slow_jobs--;
    finish_job(c);
}

/*
 * agent.offload_fast: whether a signature for this connection, asked for
 * now, should go to a worker even though the key is fast to sign. Only
 * when another client was served since this connection's previous request
 * or has a job out, so that the loop has other work meanwhile; only while
 * no slow job is out, whose threads would otherwise take turns on the
 * cores with the fast pool's; and only while no fast signature is still
 * waiting in the fast pool: one waiting is enough for its worker never to
 * sleep between signatures, and the loop thread signs the rest inline, so
 * both cores sign. A hand-off costs CPU (wake-ups of the threads), so a
 * single client, or a single core, is served inline.
 */
static bool offload_fast_signature(void *ctx, const struct agent_conn *state)
{
    struct server *srv = ctx;
    const struct conn *c =
        (const struct conn *)((const char *)state - offsetof(struct conn, state));
    bool others_active = srv->requests != c->last_request || srv->jobs > 0;

    return srv->fast_pool_ready && srv->cores > 1 && others_active && srv->slow_jobs == 0 &&
           job_pool_waiting(&srv->fast_pool) == 0;
}

static void finish_confirm(struct conn *c, bool approved)
{
    struct agent_job *job = c->job;
    struct agent *ag = c->srv->agent;
    struct agent_reply reply;

    c->job = NULL;
    if (c->closing) {
        agent_job_free(job);
        return;
    }
    /* Keys that expired while the user was asked must not serve. */
    server_schedule_expiry(c->srv);
    agent_reply_init(&reply);
    agent_job_confirmed(ag, &c->state, job, approved, &reply);
    conn_deliver(c, &reply);
    agent_reply_free(&reply);
}

/* Ends a confirmation without asking, with a failure reply and a log line saying why. */
static void refuse_confirm(struct conn *c, const char *why)
{
    struct agent_job *job = c->job;
    struct agent_reply reply;

    c->job = NULL;
    agent_reply_init(&reply);
    agent_job_refuse(c->srv->agent, &c->state, job, why, &reply);
    conn_deliver(c, &reply);
    agent_reply_free(&reply);
}

/* ---- prompts: askpass processes ---- */

static void on_prompt_handle_closed(uv_handle_t *h)
{
    struct prompt *p = h->data;

    if (--p->handles == 0)
        free(p);
}

static void prompt_close(struct prompt *p)
{
    uv_close((uv_handle_t *)&p->proc, on_prompt_handle_closed);
    uv_close((uv_handle_t *)&p->kill_timer, on_prompt_handle_closed);
}

/* Sends sig to the askpass and everything in its process group. */
static void prompt_signal(struct prompt *p, int sig)
{
#ifndef _WIN32
    if (kill(-p->pid, sig) == 0)
        return;
#endif
    if (!p->exited)
        (void)uv_process_kill(&p->proc, sig);
}

static void on_prompt_kill_timer(uv_timer_t *t)
{
    struct prompt *p = t->data;

    if (p->exited)
        return;
    log_info("askpass pid %d did not stop within %u ms of SIGTERM; killing it", p->pid,
             (unsigned)SERVER_PROMPT_KILL_MS);
    prompt_signal(p, SIGKILL);
}

/* Asks the askpass to stop: SIGTERM now, SIGKILL after SERVER_PROMPT_KILL_MS. */
static void prompt_kill(struct prompt *p)
{
    if (p->exited || p->killing)
        return;
    p->killing = true;
    prompt_signal(p, SIGTERM);
    uv_timer_start(&p->kill_timer, on_prompt_kill_timer, SERVER_PROMPT_KILL_MS, 0);
}

/* Its connection is gone: nobody is left to answer. */
static void prompt_abandon(struct prompt *p)
{
    p->conn = NULL;
    prompt_kill(p);
}

static void prompts_pump(struct server *srv);

static void on_askpass_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct prompt *p = proc->data;
    struct server *srv = p->srv;
    struct conn *c = p->conn;

    p->exited = true;
    p->conn = NULL;
    srv->prompts--;
    uv_timer_stop(&p->kill_timer);
    /* Stopped by us: whatever it started in its group goes too, even if it ignores SIGTERM. */
    if (p->killing)
        prompt_signal(p, SIGKILL);
    prompt_close(p);
    if (c != NULL) {
        c->prompt = NULL;
        log_debug("conn %lu: askpass exited with status %d%s", c->state.id, (int)exit_status,
                  term_signal ? " (killed)" : "");
        finish_confirm(c, exit_status == 0 && term_signal == 0);
    }
    prompts_pump(srv); /* a slot is free */
}

/* The askpass program: $SSH_ASKPASS, else the Debian default if installed. */
static const char *askpass_program(void)
{
    static char path[1024];
    size_t len = sizeof(path);

    if (uv_os_getenv("SSH_ASKPASS", path, &len) == 0 && path[0] != '\0')
        return path;
#ifndef _WIN32
    if (access("/usr/bin/ssh-askpass", X_OK) == 0)
        return "/usr/bin/ssh-askpass";
#endif
    return NULL;
}

/* Our environment plus SSH_ASKPASS_PROMPT=confirm, as "name=value" strings. */
static char **askpass_environment(void)
{
    uv_env_item_t *items = NULL;
    int count = 0, i, n = 0;
    char **env;
    size_t len;

    if (uv_os_environ(&items, &count) != 0)
        return NULL;
    if ((env = calloc((size_t)count + 2, sizeof(*env))) == NULL)
        goto out;
    for (i = 0; i < count; i++) {
        if (strcmp(items[i].name, "SSH_ASKPASS_PROMPT") == 0)
            continue;
        len = strlen(items[i].name) + strlen(items[i].value) + 2;
        if ((env[n] = malloc(len)) == NULL)
            break;
        snprintf(env[n++], len, "%s=%s", items[i].name, items[i].value);
    }
    env[n] = strdup("SSH_ASKPASS_PROMPT=confirm");
out:
    uv_os_free_environ(items, count);
    return env;
}

static void free_environment(char **env)
{
    size_t i;

    for (i = 0; env != NULL && env[i] != NULL; i++)
        free(env[i]);
    free(env);
}

/* Runs the askpass for c's confirmation; on failure, refuses it. */
static void prompt_start(struct conn *c)
{
    struct server *srv = c->srv;
    uv_process_options_t opts;
    uv_stdio_container_t stdio[3];
    const char *program = askpass_program();
    struct prompt *p;
    char *args[3];
    char **env = NULL;
    int r;

    if (program == NULL) {
        log_info("conn %lu: cannot ask for confirmation: SSH_ASKPASS is not set", c->state.id);
        finish_confirm(c, false);
        return;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        log_error("conn %lu: cannot ask for confirmation: out of memory", c->state.id);
        finish_confirm(c, false);
        return;
    }
    p->srv = srv;
    p->proc.data = p;
    p->kill_timer.data = p;
    uv_timer_init(srv->loop, &p->kill_timer);
    memset(&opts, 0, sizeof(opts));
    args[0] = (char *)program;
    args[1] = agent_sign_job(c->job)->prompt;
    args[2] = NULL;
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_IGNORE;
    opts.file = program;
    opts.args = args;
    opts.env = env = askpass_environment();
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.exit_cb = on_askpass_exit;
#ifndef _WIN32
    /*
     * Its own session and process group, so that a wrapper script's dialog
     * (zenity, kdialog, ...) can be ended with it when the client leaves.
     */
    opts.flags = UV_PROCESS_DETACHED;
#endif
    r = uv_spawn(srv->loop, &p->proc, &opts);
    free_environment(env);
    p->handles = 2;
    if (r != 0) {
        /* libuv still wants the handle closed after a failed spawn. */
        p->exited = true;
        prompt_close(p);
        log_info("conn %lu: cannot run askpass %s: %s", c->state.id, program, uv_strerror(r));
        finish_confirm(c, false);
        return;
    }
    p->pid = p->proc.pid;
    p->conn = c;
    c->prompt = p;
    srv->prompts++;
}

/*
 * Starts confirmations waiting for a prompt while fewer than
 * SERVER_MAX_PROMPTS are up, in the order they were asked for. Not
 * re-entered: a confirmation asked for meanwhile (a refused one's
 * connection handling its next request) joins the queue, and the loop here
 * takes it.
 */
static void prompts_pump(struct server *srv)
{
    struct conn *c;

    if (srv->pumping)
        return;
    srv->pumping = true;
    while (!srv->closing && srv->prompts < SERVER_MAX_PROMPTS &&
           (c = queue_pop(&srv->prompt_wait, offsetof(struct conn, prompt_wait))) != NULL)
        prompt_start(c);
    srv->pumping = false;
}

static void start_confirm(struct conn *c)
{
    struct server *srv = c->srv;

    /*
     * The client has ended its side of the connection: it may still read
     * the reply, but nobody may be left to answer a prompt, or to make it
     * go away by hanging up (reading has stopped).
     */
    if (c->peer_done) {
        refuse_confirm(c, "the client closed its side of the connection; nobody to confirm");
        return;
    }
    queue_push(&srv->prompt_wait, c, &c->prompt_wait);
    if (srv->prompts >= SERVER_MAX_PROMPTS)
        log_info("conn %lu: %u confirmation prompts are up; this one waits for one to end",
                 c->state.id, srv->prompts);
    prompts_pump(srv);
}

static void on_provider_done(void *arg)
{
    finish_job(arg);
}

static void start_job(struct conn *c, struct agent_job *job)
{
    c->job = job;
    c->busy = true;
    if (job->kind == AGENT_JOB_CONFIRM) {
        start_confirm(c);
        return;
    }
    c->refs++;
    c->srv->jobs++; /* finish_job() counts it out, on every path */
    if (job->kind == AGENT_JOB_PROVIDER_ADD) {
        provider_host_load(&c->srv->providers, agent_provider_job(job), on_provider_done, c);
        return;
    }
    if (job->kind == AGENT_JOB_PROVIDER_SIGN) {
        provider_host_sign(&c->srv->providers, agent_sign_job(job), on_provider_done, c);
        return;
    }
    if (kw_timing_on && job->kind == AGENT_JOB_SIGN)
        agent_sign_job(job)->timing_start = kw_timing_wall();
    c->pool_item.job = job;
    if (job->kind == AGENT_JOB_SIGN && agent_sign_job(job)->fast && c->srv->fast_pool_ready) {
        job_pool_push(&c->srv->fast_pool, &c->pool_item);
        return;
    }
    if (!c->srv->slow_pool_ready) {
        /* No worker threads at all (server_init() said so): run it here rather than fail. */
        agent_job_run(job);
        finish_job(c);
        return;
    }
    c->srv->slow_jobs++;
    job_pool_push(&c->srv->slow_pool, &c->pool_item);
}

/* Sends a reply, holds it back, or starts the job it asks for. */
static void conn_deliver(struct conn *c, struct agent_reply *reply)
{
    if (reply->job != NULL) {
        struct agent_job *job = reply->job;

        reply->job = NULL;
        start_job(c, job);
        return;
    }
    if (reply->delay_ms > 0) {
        /* Hold this reply, and this connection's later requests, back. */
        c->held = *reply;
        agent_reply_init(reply);
        c->busy = true;
        uv_timer_start(&c->delay_timer, on_delay_done, c->held.delay_ms, 0);
        return;
    }
    conn_send(c, &reply->msg);
    c->busy = false;
    /*
     * Requests that arrived meanwhile. A job can finish synchronously
     * (no askpass to run) from inside conn_process(); its loop then simply
     * continues, so a long pipeline never turns into deep recursion.
     */
    if (!c->processing)
        conn_process(c);
}

static void conn_update_reading(struct conn *c)
{
    /*
     * While a job or a delayed reply is out, keep reading (without
     * handling) up to one maximal frame: that is how a client that hangs
     * up during a confirmation prompt is noticed, so its askpass is killed
     * and nothing is left waiting for it.
     */
    bool waiting = c->busy || c->ready.queued;

    if (c->closing)
        return;
    /* A failure to start is noticed as before: the client's requests simply wait. */
    (void)frame_conn_read(&c->fc, c->peer_done ? FRAME_READ_OFF
                                  : waiting    ? FRAME_READ_HOLD
                                               : FRAME_READ_ON);
}

/*
 * Handles the complete frames in the buffer, in order: a batch of them
 * (BATCH_FRAMES, BATCH_NS), after which the connection waits for its next
 * turn (conn_defer()) so that other clients are served in between. Stops
 * early while the client does not read its replies; on_write() resumes.
 */
static void conn_process(struct conn *c)
{
    struct server *srv = c->srv;
    struct agent_reply reply;
    uint64_t started = uv_hrtime(), t0;
    unsigned handled = 0;
    enum frame_status st;
    struct frame f;

    agent_reply_init(&reply);
    c->processing = true;
    while (!c->closing && !c->busy && (st = frame_conn_frame(&c->fc, &f)) != FRAME_NONE) {
        if (handled > 0 && (handled >= BATCH_FRAMES || uv_hrtime() - started >= BATCH_NS)) {
            conn_defer(c);
            break;
        }
        if (conn_backlogged(c))
            break;
        if (st == FRAME_OVERSIZED) {
            log_info("conn %lu: frame of %u bytes is over the %u byte limit", c->state.id, f.len,
                     (unsigned)WIRE_MAX_MESSAGE);
            /* The framing is lost: read nothing more, send what is queued, close. */
            frame_conn_discard(&c->fc, 0);
            c->peer_done = true;
            c->done_why = "oversized frame";
            break;
        }
        handled++;
        uv_update_time(srv->loop);
        t0 = kw_timing_on ? kw_timing_now() : 0;
        agent_handle(srv->agent, &c->state, uv_now(srv->loop), f.body, f.len, &reply);
        if (kw_timing_on)
            kw_timing_add(reply.job != NULL ? KW_TIMING_DECODE : KW_TIMING_INLINE,
                          kw_timing_now() - t0);
        if (reply.retry_ms > 0) {
            /*
             * Not handled: an unlock attempt waits for its agent-wide turn.
             * Keep the frame and offer it again later; meanwhile this
             * connection is busy (its later requests wait, in order) and
             * every other connection is served.
             */
            c->busy = true;
            uv_timer_start(&c->delay_timer, on_delay_done, reply.retry_ms, 0);
            reply.retry_ms = 0;
            break;
        }
        /* Counted after handling: offload_fast_signature() compares with the last one. */
        c->last_request = ++srv->requests;
        frame_conn_consume(&c->fc, f.size); /* cleared; the buffer is freed once empty */
        server_schedule_expiry(srv);
        if (reply.job != NULL || reply.delay_ms > 0) {
            /* Sets busy until the job or delay is over, which ends this loop. */
            conn_deliver(c, &reply);
            continue;
        }
        conn_send(c, &reply.msg);
    }
    c->processing = false;
    agent_reply_free(&reply);
    conn_finish_if_done(c);
    if (c->closing)
        return;
    conn_update_reading(c);
}

/* Idle handle: every connection waiting for a turn gets one batch, then the loop polls again. */
static void on_resume(uv_idle_t *h)
{
    struct server *srv = h->data;
    unsigned long n = srv->ready.count;
    struct conn *c;

    while (n-- > 0 && (c = queue_pop(&srv->ready, offsetof(struct conn, ready))) != NULL)
        conn_process(c); /* may queue it again, at the back */
    if (srv->ready.count == 0)
        uv_idle_stop(&srv->resume);
}

/* ---- accepting ---- */

/* A new connection whose pipe is initialised but not yet connected. */
static struct conn *conn_new(struct server *srv)
{
    struct conn *c;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    c->srv = srv;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    agent_conn_init(&c->state, ++srv->next_conn_id);
    /* Requests served before this connection came say nothing of now. */
    c->last_request = srv->requests;
    agent_reply_init(&c->held);
    (void)frame_conn_init(srv->loop, &c->fc, &conn_callbacks, c); /* cannot fail for a pipe */
    uv_timer_init(srv->loop, &c->delay_timer);
    c->delay_timer.data = c;
    c->refs = 2; /* the frame_conn and the timer */
    return c;
}

/* A connected client: who is it? Then read its requests, or close it. */
static void conn_start(struct conn *c)
{
    /* Not kept in struct conn: what the audit log needs is copied into c->state. */
    struct peer_info peer;

    if (!platform_peer_allowed(frame_conn_pipe(&c->fc), &peer)) {
        log_info("conn %lu: refused connection from %s: not our user", c->state.id, peer.desc);
        conn_close(c, "peer refused");
        return;
    }
    log_debug("conn %lu: accepted from %s", c->state.id, peer.desc);
    c->state.client.pid = peer.pid;
    c->state.client.uid = peer.uid;
    snprintf(c->state.client.exe, sizeof(c->state.client.exe), "%s", peer.exe);
    conn_update_reading(c);
}

/* A client is waiting on the listener (a socket, or a pipe instance on Windows). */
static void on_listener_conn(struct listener *l)
{
    struct server *srv = l->data;
    struct conn *c;

    if (srv->closing)
        return;
    if ((c = conn_new(srv)) == NULL) {
        log_error("accept: out of memory");
        return;
    }
    if (listener_accept(l, &c->fc) != 0) {
        conn_close(c, "accept failed");
        return;
    }
    conn_start(c);
}

/* ---- server ---- */

static void on_expiry(uv_timer_t *t)
{
    struct server *srv = t->data;

    uv_update_time(srv->loop);
    (void)agent_expire(srv->agent, uv_now(srv->loop));
    server_schedule_expiry(srv);
}

void server_schedule_expiry(struct server *srv)
{
    uint64_t next, now;

    if (srv->closing)
        return;
    uv_update_time(srv->loop);
    now = uv_now(srv->loop);
    next = agent_expire(srv->agent, now);
    if (next == 0) {
        uv_timer_stop(&srv->expiry_timer);
        return;
    }
    uv_timer_start(&srv->expiry_timer, on_expiry, next > now ? next - now : 0, 0);
}

/* Threads for slow jobs: UV_THREADPOOL_SIZE, read as libuv reads it. */
static unsigned threadpool_size(void)
{
    char val[32];
    size_t len = sizeof(val);
    long n;

    if (uv_os_getenv("UV_THREADPOOL_SIZE", val, &len) != 0)
        return THREADPOOL_DEFAULT;
    n = atol(val);
    if (n == 0)
        return 1;
    if (n < 0 || n > THREADPOOL_MAX)
        return THREADPOOL_MAX;
    return (unsigned)n;
}

/* A helper died or hung: the agent drops its module's keys (agent_provider_lost()). */
static void on_provider_lost(void *ctx, void *host, const char *why)
{
    struct server *srv = ctx;

    agent_provider_lost(srv->agent, host, why);
}

void server_init(struct server *srv, uv_loop_t *loop, struct agent *agent)
{
    int r;

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->agent = agent;
    listener_init(&srv->listener, loop, on_listener_conn, srv);
    kw_timing_init();
    srv->workers = threadpool_size();
    srv->cores = uv_available_parallelism();
    if (srv->cores < 1)
        srv->cores = 1;
    agent->offload_fast = offload_fast_signature;
    agent->offload_ctx = srv;
    /* On one core the fast pool is never asked to sign (offload_fast_signature). */
    r = job_pool_init(&srv->fast_pool, loop,
                      srv->cores - 1 < srv->workers ? srv->cores - 1 : srv->workers, on_pool_done);
    if (r != 0)
        log_error("cannot set up worker threads for fast signatures, signing them inline: %s",
                  kw_strerror(r));
    srv->fast_pool_ready = r == 0;
    r = job_pool_init(&srv->slow_pool, loop, srv->workers, on_pool_done);
    if (r != 0)
        log_error("cannot set up worker threads for slow jobs, running them inline: %s",
                  kw_strerror(r));
    srv->slow_pool_ready = r == 0;
#ifdef __linux__
    srv->fast_pool.on_worker_thread = worker_lower_priority;
    srv->slow_pool.on_worker_thread = worker_lower_priority;
#endif
    uv_idle_init(loop, &srv->resume);
    srv->resume.data = srv;
    uv_timer_init(loop, &srv->expiry_timer);
    srv->expiry_timer.data = srv;
    /* The timer alone must not keep the loop alive at shutdown. */
    uv_unref((uv_handle_t *)&srv->expiry_timer);
    provider_hosts_init(&srv->providers, loop);
    srv->providers.lost = on_provider_lost;
    srv->providers.ctx = srv;
    agent->providers.release = provider_host_release;
    agent->providers.ctx = &srv->providers;
}

#ifdef _WIN32
int server_listen_name(struct server *srv, const char *name)
{
    int r;

    if ((r = listener_open_pipe(&srv->listener, name)) != 0)
        return r;
    server_schedule_expiry(srv);
    return 0;
}
#else
int server_listen_fd(struct server *srv, int fd)
{
    int r;

    if ((r = listener_open_fd(&srv->listener, fd)) != 0)
        return r;
    server_schedule_expiry(srv);
    return 0;
}
#endif

void server_close(struct server *srv)
{
    struct conn *c;

    if (srv->closing)
        return;
    srv->closing = true;
    kw_timing_log();
    for (c = srv->conns; c != NULL; c = c->next)
        conn_close(c, "agent shutting down");
    listener_close(&srv->listener);
    if (!uv_is_closing((uv_handle_t *)&srv->expiry_timer))
        uv_close((uv_handle_t *)&srv->expiry_timer, NULL);
    if (!uv_is_closing((uv_handle_t *)&srv->resume))
        uv_close((uv_handle_t *)&srv->resume, NULL);
    if (srv->fast_pool_ready)
        job_pool_close(&srv->fast_pool);
    if (srv->slow_pool_ready)
        job_pool_close(&srv->slow_pool);
    provider_hosts_close(&srv->providers);
}

/*
 * Waiting for the next request. On a VM whose idle vCPUs halt and are woken
 * through the host, and on hardware in deep idle states, a thread asleep in
 * epoll_wait takes tens of microseconds to wake: as long as signing an
 * Ed25519 message. A client that sends its next request as soon as a reply
 * arrives (ssh-add, git, Ansible fanning out) pays that on every request.
 *
 * So while requests come close together, the loop polls (epoll_wait with
 * no timeout) for up to SPIN_WINDOW_NS after a request before it goes to
 * sleep. It polls only when that request came within the window of the one
 * before it: an agent serving the odd login never polls, and a busy one
 * polls only in the short gaps of its bursts, so the CPU it spends on
 * polling is bounded by the time it was busy anyway (hostile_idle_polling
 * checks both). Not while a worker job is out, whose thread needs the
 * other core, and never on a single core, where polling would hold up the
 * very client it waits for. No yielding between polls: sched_yield() hands
 * the core to a busy thread for a whole time slice, which measured worse.
 */
#define SPIN_WINDOW_NS (200u * 1000u)

void server_run(struct server *srv)
{
    uint64_t last_request_at = 0; /* uv_hrtime() when a request last came */
    bool bursting = false;        /* the last two requests came within the window */

    for (;;) {
        unsigned long seen = srv->requests;
        bool polling = bursting && srv->jobs == 0 && srv->cores > 1 &&
                       uv_hrtime() - last_request_at < SPIN_WINDOW_NS;

        if (uv_run(srv->loop, polling ? UV_RUN_NOWAIT : UV_RUN_ONCE) == 0)
            break;
        if (srv->requests != seen) {
            uint64_t now = uv_hrtime();

            bursting = now - last_request_at < SPIN_WINDOW_NS;
            last_request_at = now;
        }
    }
}
