/*
 * keyward: a queue of fast signatures that worker threads work off
 * (see sign_lane.h).
 */
#include "server/sign_lane.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "platform/uv_err.h"

static void lane_start_runner(struct sign_lane *lane);

/* Worker thread: takes the next waiting item, or NULL when there is none. */
static struct sign_lane_item *lane_take(struct sign_lane *lane)
{
    struct sign_lane_item *item;

    if (atomic_load_explicit(&lane->waiting_count, memory_order_acquire) == 0)
        return NULL;
    uv_mutex_lock(&lane->lock);
    if ((item = lane->waiting) != NULL) {
        lane->waiting = item->next;
        if (lane->waiting == NULL)
            lane->waiting_tail = &lane->waiting;
        lane->waiting_count--;
        item->next = NULL;
    }
    uv_mutex_unlock(&lane->lock);
    return item;
}

/*
 * Worker thread: the next item, waiting up to SIGN_LANE_LINGER_NS for one
 * to be pushed before giving up. While clients keep signing, the loop
 * pushes the next signature within microseconds; waiting for it here is
 * cheaper than ending the runner and waking a pool thread for a new one.
 */
static struct sign_lane_item *lane_take_or_linger(struct sign_lane *lane)
{
    struct sign_lane_item *item;
    uint64_t since;

    if ((item = lane_take(lane)) != NULL)
        return item;
    since = uv_hrtime();
    while ((item = lane_take(lane)) == NULL && uv_hrtime() - since < SIGN_LANE_LINGER_NS)
        ;
    return item;
}

/* Worker thread: runs items until none is waiting. */
static void lane_run(uv_work_t *w)
{
    struct sign_lane *lane = w->data;
    struct sign_lane_item *item;

    if (lane->on_worker_thread != NULL)
        lane->on_worker_thread();
    while ((item = lane_take_or_linger(lane)) != NULL) {
        agent_job_run(item->job); /* touches only the job */
        uv_mutex_lock(&lane->lock);
        *lane->done_tail = item;
        lane->done_tail = &item->next;
        uv_mutex_unlock(&lane->lock);
        /* Each one at once: its client is waiting; libuv merges the wake-ups. */
        uv_async_send(&lane->wake);
    }
}

/* Loop thread: hands every finished item back, in the order they finished. */
static void lane_deliver(struct sign_lane *lane)
{
    struct sign_lane_item *item, *next;

    uv_mutex_lock(&lane->lock);
    item = lane->done;
    lane->done = NULL;
    lane->done_tail = &lane->done;
    uv_mutex_unlock(&lane->lock);
    for (; item != NULL; item = next) {
        next = item->next;
        item->next = NULL;
        lane->items_out--;
        lane->done_cb(lane, item); /* may push again */
    }
}

static void on_lane_wake(uv_async_t *a)
{
    lane_deliver(a->data);
}

static void on_lane_closed(uv_handle_t *h)
{
    struct sign_lane *lane = h->data;

    uv_mutex_destroy(&lane->lock);
}

static void lane_close_if_idle(struct sign_lane *lane)
{
    if (lane->closing && lane->running == 0 && lane->items_out == 0 &&
        !uv_is_closing((uv_handle_t *)&lane->wake))
        uv_close((uv_handle_t *)&lane->wake, on_lane_closed);
}

static void on_runner_done(uv_work_t *w, int status)
{
    struct sign_lane *lane = w->data;

    (void)status; /* UV_ECANCELED cannot happen: nothing cancels a runner */
    lane->runner_busy[w - lane->runners] = false;
    lane->running--;
    /* A runner's last items may have finished after the wake-up ran. */
    lane_deliver(lane);
    /* An item pushed while this runner was giving up found it still counted. */
    if (sign_lane_waiting(lane) > 0)
        lane_start_runner(lane);
    lane_close_if_idle(lane);
}

static void lane_start_runner(struct sign_lane *lane)
{
    struct sign_lane_item *item;
    unsigned i;

    if (lane->running >= lane->max_runners)
        return;
    for (i = 0; i < lane->max_runners && lane->runner_busy[i]; i++)
        ;
    lane->runners[i].data = lane;
    if (uv_queue_work(lane->loop, &lane->runners[i], lane_run, on_runner_done) == 0) {
        lane->runner_busy[i] = true;
        lane->running++;
        return;
    }
    /* Cannot happen with a live loop; if no runner is out, sign here instead. */
    if (lane->running > 0)
        return;
    while ((item = lane_take(lane)) != NULL) {
        agent_job_run(item->job);
        lane->items_out--;
        lane->done_cb(lane, item);
    }
}

int sign_lane_init(struct sign_lane *lane, uv_loop_t *loop, unsigned max_runners,
                   sign_lane_done_cb done_cb)
{
    int r;

    memset(lane, 0, sizeof(*lane));
    lane->loop = loop;
    lane->done_cb = done_cb;
    lane->max_runners = max_runners < 1                       ? 1
                        : max_runners > SIGN_LANE_MAX_RUNNERS ? SIGN_LANE_MAX_RUNNERS
                                                              : max_runners;
    lane->waiting_tail = &lane->waiting;
    lane->done_tail = &lane->done;
    if ((r = uv_mutex_init(&lane->lock)) != 0)
        return kw_err_from_uv(r);
    if ((r = uv_async_init(loop, &lane->wake, on_lane_wake)) != 0) {
        uv_mutex_destroy(&lane->lock);
        return kw_err_from_uv(r);
    }
    lane->wake.data = lane;
    /* Only runners keep the loop alive; an idle lane must not. */
    uv_unref((uv_handle_t *)&lane->wake);
    return 0;
}

void sign_lane_push(struct sign_lane *lane, struct sign_lane_item *item)
{
    item->next = NULL;
    lane->items_out++;
    uv_mutex_lock(&lane->lock);
    *lane->waiting_tail = item;
    lane->waiting_tail = &item->next;
    lane->waiting_count++;
    uv_mutex_unlock(&lane->lock);
    lane_start_runner(lane);
}

unsigned sign_lane_waiting(struct sign_lane *lane)
{
    return atomic_load_explicit(&lane->waiting_count, memory_order_acquire);
}

void sign_lane_close(struct sign_lane *lane)
{
    lane->closing = true;
    lane_close_if_idle(lane);
}
