/*
 * keyward: a queue of fast signatures that worker threads work off.
 *
 * When several clients sign with Ed25519 or ECDSA keys at once, the loop
 * thread signs some inline and hands the rest to a worker so that both
 * cores sign. Handing each signature to libuv's pool as its own job costs
 * a wake-up of a sleeping worker per signature, and the worker sits idle
 * between the end of one job and the loop's next hand-off. A lane keeps a
 * queue instead: a runner (one libuv work item) takes signatures off it
 * until it is empty (and has stayed empty for SIGN_LANE_LINGER_NS), so a
 * worker that finishes one finds the next one waiting and goes on without
 * sleeping. At most max_runners run at once, so fast signatures never
 * take more threads than there are cores to spare.
 *
 * Items are pushed and delivered on the loop thread. A runner touches only
 * the item's job (agent_job_run()), under the lane's lock for the queue.
 */
#ifndef KEYWARD_SIGN_LANE_H
#define KEYWARD_SIGN_LANE_H

#include <stdatomic.h>
#include <stdbool.h>

#include <uv.h>

#include "agent/agent.h"

struct sign_lane_item {
    struct agent_job *job;
    struct sign_lane_item *next;
};

struct sign_lane;

/* Loop thread: the item's job has run (its run_err says how). */
typedef void (*sign_lane_done_cb)(struct sign_lane *lane, struct sign_lane_item *item);

#define SIGN_LANE_MAX_RUNNERS 16
/* How long a runner that ran out of items waits for the next one. */
#define SIGN_LANE_LINGER_NS (50u * 1000u)

struct sign_lane {
    uv_loop_t *loop;
    sign_lane_done_cb done_cb;
    void (*on_worker_thread)(void); /* optional: called by each runner as it starts */
    void *data;                     /* for the user */
    uv_mutex_t lock;
    /* Under lock: pushed and not yet taken by a runner; taken and run. */
    struct sign_lane_item *waiting, **waiting_tail;
    struct sign_lane_item *done, **done_tail;
    /*
     * Items in waiting: changed under lock, read without it, so that the
     * loop's offload decision and a lingering runner do not take the lock
     * just to find the queue empty.
     */
    atomic_uint waiting_count;
    /* Loop thread only. */
    uv_async_t wake; /* a runner finished an item */
    uv_work_t runners[SIGN_LANE_MAX_RUNNERS];
    bool runner_busy[SIGN_LANE_MAX_RUNNERS];
    unsigned max_runners;
    unsigned running;
    unsigned items_out; /* pushed, not yet delivered */
    bool closing;
};

/*
 * max_runners: how many worker threads may sign at once (at least 1, at
 * most SIGN_LANE_MAX_RUNNERS). Returns 0 or a KW_ERR_* code (errno set).
 */
int sign_lane_init(struct sign_lane *lane, uv_loop_t *loop, unsigned max_runners,
                   sign_lane_done_cb done_cb);

/* Queues item->job; done_cb gets the item back on the loop thread. */
void sign_lane_push(struct sign_lane *lane, struct sign_lane_item *item);

/* Items pushed that no runner has taken yet. */
unsigned sign_lane_waiting(struct sign_lane *lane);

/*
 * Stops the lane: items already pushed still run and are delivered, then
 * its handle is closed and its lock destroyed. Push nothing after this.
 */
void sign_lane_close(struct sign_lane *lane);

#endif
