/*
 * keyward: worker threads that run agent jobs (signatures, passphrase
 * hashes) off the loop thread, and hand them back without ever making the
 * loop thread wait for a worker.
 *
 * Why not libuv's pool: its hand-back makes the loop wait on a worker.
 * uv_async_send() marks the handle busy, writes the wake-up and clears the
 * mark; the loop thread, woken by that write, spins (sched_yield) until the
 * mark is cleared, and takes the pool's lock, which a worker holds while it
 * sends. With the cores full of RSA signatures, the woken loop thread
 * often takes the very core of the worker it then waits for, and a list
 * request waited milliseconds (docs/performance.md, issue 20, item 3).
 *
 * Here no lock or handshake is shared between the loop and the workers:
 *  - pushed items go on a stack the loop thread alone pushes to (one
 *    compare-and-swap); workers take the whole stack at once, under a lock
 *    only workers take, and run it oldest first;
 *  - a counting semaphore says how many items there are, so a worker that
 *    sleeps for want of work is woken by the push that gives it some;
 *  - finished items go on a second stack (one compare-and-swap per item);
 *    the worker that finds it empty wakes the loop with one write to an
 *    eventfd (Linux) or a uv_async_t (elsewhere: on Windows a completion
 *    packet, with no handshake), after which it touches nothing the loop
 *    thread needs.
 * The loop thread reads the wake-up before it takes the finished stack, so
 * an item finished after the take has a wake-up of its own still pending.
 *
 * All max_threads threads start at the first push and stay; a worker that
 * runs out of items polls for the next one for
 * JOB_POOL_LINGER_NS before it sleeps, because while clients keep signing
 * the next item comes within microseconds and waking a sleeping thread
 * costs more. Items are pushed and delivered on the loop thread; a worker
 * touches only the item's job (agent_job_run()).
 */
#ifndef KEYWARD_JOB_POOL_H
#define KEYWARD_JOB_POOL_H

#include <stdatomic.h>
#include <stdbool.h>

#include <uv.h>

#include "agent/agent.h"

struct job_pool_item {
    struct agent_job *job;
    struct job_pool_item *next;
};

struct job_pool;

/* Loop thread: the item's job has run (its run_err says how). */
typedef void (*job_pool_done_cb)(struct job_pool *pool, struct job_pool_item *item);

#define JOB_POOL_MAX_THREADS 64
/* How long a worker that ran out of items polls for the next one. */
#define JOB_POOL_LINGER_NS (50u * 1000u)

struct job_pool {
    uv_loop_t *loop;
    job_pool_done_cb done_cb;
    void (*on_worker_thread)(void); /* optional: called by each worker as it starts */
    void *data;                     /* for the user */
    /* Loop thread pushes, workers take all at once: newest first. */
    _Atomic(struct job_pool_item *) pushed;
    /* Workers push, loop thread takes all at once: newest first. */
    _Atomic(struct job_pool_item *) finished;
    /* Items pushed that no worker has taken yet (read without the lock). */
    atomic_uint waiting;
    atomic_bool stopping; /* set after the last item, to end the workers */
    uv_sem_t items;       /* one count per pushed item, and one per worker at stop */
    /* Workers only: the taken stack, oldest first. */
    uv_mutex_t take_lock;
    struct job_pool_item *taken;
#ifdef __linux__
    int wake_fd;
    uv_poll_t wake;
#else
    uv_async_t wake;
#endif
    /* Loop thread only. */
    uv_thread_t threads[JOB_POOL_MAX_THREADS];
    unsigned max_threads;
    unsigned threads_started;
    bool start_failed;  /* a thread could not start: do not try at every push */
    unsigned items_out; /* pushed, not yet delivered */
    bool closing;
    bool closed; /* the wake-up handle is closed; the lock and semaphore destroyed */
};

/*
 * max_threads: this many worker threads (at least 1, at most
 * JOB_POOL_MAX_THREADS), started at the first push. Returns 0 or a
 * KW_ERR_* code.
 */
int job_pool_init(struct job_pool *pool, uv_loop_t *loop, unsigned max_threads,
                  job_pool_done_cb done_cb);

/* Queues item->job; done_cb gets the item back on the loop thread. */
void job_pool_push(struct job_pool *pool, struct job_pool_item *item);

/* Items pushed that no worker has taken yet. */
unsigned job_pool_waiting(struct job_pool *pool);

/*
 * Stops the pool: items already pushed still run and are delivered, then
 * the workers end (joined on the loop thread, which waits for nothing but
 * their exit: they are idle by then), and the handle closes. Push nothing
 * after this.
 */
void job_pool_close(struct job_pool *pool);

#endif
