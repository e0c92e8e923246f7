/*
 * keyward: worker threads that run agent jobs off the loop thread
 * (see job_pool.h).
 */
#include "server/job_pool.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __linux__
#include <sys/eventfd.h>
#include <unistd.h>
#endif

#include "base/err.h"
#include "base/log.h"
#include "platform/uv_err.h"

/* Reverses a stack of items: newest first becomes oldest first. */
static struct job_pool_item *items_reverse(struct job_pool_item *item)
{
    struct job_pool_item *oldest_first = NULL, *next;

    for (; item != NULL; item = next) {
        next = item->next;
        item->next = oldest_first;
        oldest_first = item;
    }
    return oldest_first;
}

/* ---- worker threads ---- */

/* Worker thread: tells the loop thread that finished items are waiting. */
static void pool_wake_loop(struct job_pool *pool)
{
#ifdef __linux__
    uint64_t one = 1;

    /* EAGAIN only if the counter were near 2^64: it is read at every wake-up. */
    while (write(pool->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
#else
    uv_async_send(&pool->wake);
#endif
}

/*
 * Worker thread: waits for a count on the semaphore, that is, for an item
 * of its own (or the stop). It polls first: a push within
 * JOB_POOL_LINGER_NS is taken without sleeping and without the loop
 * thread having to wake anyone (uv_sem_post() makes no system call when
 * nobody sleeps). The counter is read before the semaphore is tried, so
 * that the polling costs no system call on systems where trying does.
 */
static void worker_wait_for_item(struct job_pool *pool)
{
    uint64_t since = uv_hrtime();

    do {
        if ((atomic_load_explicit(&pool->waiting, memory_order_acquire) > 0 ||
             atomic_load_explicit(&pool->stopping, memory_order_acquire)) &&
            uv_sem_trywait(&pool->items) == 0)
            return;
    } while (uv_hrtime() - since < JOB_POOL_LINGER_NS);
    uv_sem_wait(&pool->items);
}

/*
 * Worker thread, holding a count: the oldest item not yet taken. There is
 * one: every count was posted after its item was pushed, and only holders
 * of a count take items. NULL only for the counts posted at stop.
 */
static struct job_pool_item *worker_take(struct job_pool *pool)
{
    struct job_pool_item *item;

    uv_mutex_lock(&pool->take_lock);
    if (pool->taken == NULL)
        pool->taken =
            items_reverse(atomic_exchange_explicit(&pool->pushed, NULL, memory_order_acquire));
    if ((item = pool->taken) != NULL) {
        pool->taken = item->next;
        item->next = NULL;
        atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_release);
    }
    uv_mutex_unlock(&pool->take_lock);
    return item;
}

/* Worker thread: hands a finished item back; wakes the loop if it was the first. */
static void worker_finish(struct job_pool *pool, struct job_pool_item *item)
{
    struct job_pool_item *head = atomic_load_explicit(&pool->finished, memory_order_relaxed);

    do
        item->next = head;
    while (!atomic_compare_exchange_weak_explicit(&pool->finished, &head, item,
                                                  memory_order_release, memory_order_relaxed));
    /*
     * A stack that was not empty has a wake-up pending already: its first
     * item's. The loop thread clears the wake-up before it takes the stack.
     */
    if (head == NULL)
        pool_wake_loop(pool);
}

static void worker_main(void *arg)
{
    struct job_pool *pool = arg;
    struct job_pool_item *item;

    if (pool->on_worker_thread != NULL)
        pool->on_worker_thread();
    for (;;) {
        worker_wait_for_item(pool);
        if ((item = worker_take(pool)) == NULL)
            return;               /* stopping */
        agent_job_run(item->job); /* touches only the job */
        worker_finish(pool, item);
    }
}

/* ---- loop thread ---- */

static void pool_shutdown(struct job_pool *pool);

/* Loop thread: hands every finished item back, in the order they finished. */
static void pool_deliver(struct job_pool *pool)
{
    struct job_pool_item *item, *next;

#ifdef __linux__
    uint64_t count;

    /* First: a worker that finishes after the take below wakes the loop again. */
    while (read(pool->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
#endif
    item = items_reverse(atomic_exchange_explicit(&pool->finished, NULL, memory_order_acquire));
    for (; item != NULL; item = next) {
        next = item->next;
        item->next = NULL;
        if (--pool->items_out == 0)
            uv_unref((uv_handle_t *)&pool->wake);
        pool->done_cb(pool, item); /* may push again */
    }
    if (pool->closing && pool->items_out == 0)
        pool_shutdown(pool);
}

#ifdef __linux__
static void on_pool_wake(uv_poll_t *h, int status, int events)
{
    (void)status; /* an eventfd cannot fail to poll */
    (void)events;
    pool_deliver(h->data);
}
#else
static void on_pool_wake(uv_async_t *h)
{
    pool_deliver(h->data);
}
#endif

static void on_pool_closed(uv_handle_t *h)
{
    struct job_pool *pool = h->data;

#ifdef __linux__
    close(pool->wake_fd);
    pool->wake_fd = -1;
#endif
    uv_sem_destroy(&pool->items);
    uv_mutex_destroy(&pool->take_lock);
    pool->closed = true;
}

/* Loop thread, nothing out: ends the workers, idle by now, and closes the handle. */
static void pool_shutdown(struct job_pool *pool)
{
    unsigned i;

    if (uv_is_closing((uv_handle_t *)&pool->wake))
        return;
    atomic_store_explicit(&pool->stopping, true, memory_order_release);
    for (i = 0; i < pool->threads_started; i++)
        uv_sem_post(&pool->items);
    for (i = 0; i < pool->threads_started; i++)
        uv_thread_join(&pool->threads[i]);
    pool->threads_started = 0;
    uv_close((uv_handle_t *)&pool->wake, on_pool_closed);
}

/*
 * Loop thread: starts every worker at the first push, as libuv started its
 * pool. Threads that come and go with the load would make the agent's
 * thread count a function of its history, and the soak run and the hostile
 * tests read a thread that appears late as a leak. False if none runs.
 */
static bool pool_start(struct job_pool *pool)
{
    int r;

    if (pool->threads_started > 0 || pool->start_failed)
        return pool->threads_started > 0;
    while (pool->threads_started < pool->max_threads) {
        r = uv_thread_create(&pool->threads[pool->threads_started], worker_main, pool);
        if (r != 0) {
            log_error("cannot start a worker thread (%u of %u running): %s", pool->threads_started,
                      pool->max_threads, kw_strerror(kw_err_from_uv(r)));
            pool->start_failed = true;
            break;
        }
        pool->threads_started++;
    }
    return pool->threads_started > 0;
}

int job_pool_init(struct job_pool *pool, uv_loop_t *loop, unsigned max_threads,
                  job_pool_done_cb done_cb)
{
    int r;

    memset(pool, 0, sizeof(*pool));
    pool->loop = loop;
    pool->done_cb = done_cb;
    pool->max_threads = max_threads < 1                      ? 1
                        : max_threads > JOB_POOL_MAX_THREADS ? JOB_POOL_MAX_THREADS
                                                             : max_threads;
    atomic_init(&pool->pushed, NULL);
    atomic_init(&pool->finished, NULL);
    atomic_init(&pool->waiting, 0);
    atomic_init(&pool->stopping, false);
    if ((r = uv_sem_init(&pool->items, 0)) != 0)
        return kw_err_from_uv(r);
    if ((r = uv_mutex_init(&pool->take_lock)) != 0)
        goto out_sem;
#ifdef __linux__
    if ((pool->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        r = uv_translate_sys_error(errno);
        goto out_lock;
    }
    if ((r = uv_poll_init(loop, &pool->wake, pool->wake_fd)) != 0) {
        close(pool->wake_fd);
        goto out_lock;
    }
    (void)uv_poll_start(&pool->wake, UV_READABLE, on_pool_wake);
#else
    if ((r = uv_async_init(loop, &pool->wake, on_pool_wake)) != 0)
        goto out_lock;
#endif
    pool->wake.data = pool;
    /* Only items out keep the loop alive; an idle pool must not. */
    uv_unref((uv_handle_t *)&pool->wake);
    return 0;
out_lock:
    uv_mutex_destroy(&pool->take_lock);
out_sem:
    uv_sem_destroy(&pool->items);
    return kw_err_from_uv(r);
}

void job_pool_push(struct job_pool *pool, struct job_pool_item *item)
{
    struct job_pool_item *head;

    if (pool->items_out++ == 0)
        uv_ref((uv_handle_t *)&pool->wake);
    if (!pool_start(pool)) {
        /* No worker at all (out of threads): run it here rather than fail. */
        agent_job_run(item->job);
        if (--pool->items_out == 0)
            uv_unref((uv_handle_t *)&pool->wake);
        pool->done_cb(pool, item);
        return;
    }
    atomic_fetch_add_explicit(&pool->waiting, 1, memory_order_release);
    head = atomic_load_explicit(&pool->pushed, memory_order_relaxed);
    do
        item->next = head;
    while (!atomic_compare_exchange_weak_explicit(&pool->pushed, &head, item, memory_order_release,
                                                  memory_order_relaxed));
    uv_sem_post(&pool->items);
}

unsigned job_pool_waiting(struct job_pool *pool)
{
    return atomic_load_explicit(&pool->waiting, memory_order_acquire);
}

void job_pool_close(struct job_pool *pool)
{
    if (pool->closing)
        return;
    pool->closing = true;
    if (pool->items_out == 0)
        pool_shutdown(pool);
}
