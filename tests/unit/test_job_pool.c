/*
 * keyward: the worker threads that run agent jobs (src/server/job_pool.c).
 * Real Ed25519 signatures on the pool's real threads and a real libuv loop.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent/agent.h"
#include "server/job_pool.h"
#include "check.h"
#include "crypto/key.h"

#define ITEMS 2000

struct item {
    struct job_pool_item pool_item;
    int index;
    int delivered; /* times done_cb saw it */
};

struct run {
    struct item items[ITEMS];
    int items_total; /* how many to push in all */
    int pushed;
    int delivered;
    int next_expected; /* FIFO check with one thread */
    bool in_order;
    bool chain;              /* each delivery pushes the next item */
    bool close_in_delivery;  /* job_pool_close() from the last delivery */
    uv_thread_t loop_thread; /* deliveries must come on it */
    int wrong_thread;
    int bad_signatures;
};

static struct key *signer;
static atomic_int worker_thread_calls;

static void count_worker_thread(void)
{
    atomic_fetch_add(&worker_thread_calls, 1);
}

/* A fast signature job laid out as agent.c makes one: the data after the struct. */
static struct agent_job *make_job(int index)
{
    struct agent_sign_job *sj = calloc(1, sizeof(*sj) + 32);

    if (sj == NULL)
        return NULL;
    sj->job.kind = AGENT_JOB_SIGN;
    sj->fast = true;
    sj->key = key_ref(signer);
    sj->data = (uint8_t *)(sj + 1);
    sj->data_len = 32;
    memset(sj->data, index & 0xff, sj->data_len);
    wire_writer_init(&sj->sig);
    return &sj->job;
}

static void push_item(struct job_pool *pool, struct run *run)
{
    struct item *it = &run->items[run->pushed];

    it->index = run->pushed++;
    it->pool_item.job = make_job(it->index);
    CHECK(it->pool_item.job != NULL);
    if (it->pool_item.job != NULL)
        job_pool_push(pool, &it->pool_item);
}

static void on_done(struct job_pool *pool, struct job_pool_item *pi)
{
    struct run *run = pool->data;
    struct item *it = (struct item *)((char *)pi - offsetof(struct item, pool_item));
    uv_thread_t self = uv_thread_self();

    if (!uv_thread_equal(&self, &run->loop_thread))
        run->wrong_thread++;
    it->delivered++;
    run->delivered++;
    if (it->index != run->next_expected)
        run->in_order = false;
    run->next_expected = it->index + 1;
    if (agent_sign_job(pi->job)->run_err != 0 || agent_sign_job(pi->job)->sig.len == 0)
        run->bad_signatures++;
    agent_job_free(pi->job);
    pi->job = NULL;
    if (run->chain && run->pushed < run->items_total)
        push_item(pool, run);
    if (run->close_in_delivery && run->delivered == run->items_total)
        job_pool_close(pool);
}

static void check_all_delivered_once(const struct run *run)
{
    int i, twice = 0, never = 0;

    for (i = 0; i < run->pushed; i++) {
        twice += run->items[i].delivered > 1;
        never += run->items[i].delivered == 0;
    }
    CHECK_EQ(run->pushed, run->items_total);
    CHECK_EQ(run->delivered, run->pushed);
    CHECK_EQ(twice, 0);
    CHECK_EQ(never, 0);
    CHECK_EQ(run->bad_signatures, 0);
    CHECK_EQ(run->wrong_thread, 0);
}

static struct run *run_new(int items_total, bool chain)
{
    struct run *run = calloc(1, sizeof(*run));

    if (run == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    run->items_total = items_total;
    run->chain = chain;
    run->in_order = true;
    run->loop_thread = uv_thread_self();
    return run;
}

/*
 * Pushes the items at once (or one after another from done_cb), runs the
 * loop until nothing keeps it alive: only items out may. Then closes.
 * Returns the threads the pool started.
 */
static unsigned run_pool(unsigned max_threads, struct run *run)
{
    uv_loop_t loop;
    struct job_pool pool;
    unsigned started;
    int i;

    atomic_store(&worker_thread_calls, 0);
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(job_pool_init(&pool, &loop, max_threads, on_done), 0);
    pool.data = run;
    pool.on_worker_thread = count_worker_thread;
    for (i = 0; i < (run->chain ? 1 : run->items_total); i++)
        push_item(&pool, run);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(job_pool_waiting(&pool), 0);
    CHECK_EQ(pool.items_out, 0);
    started = pool.threads_started;
    /* All of them, from the first push on. */
    CHECK_EQ(started, pool.max_threads);
    job_pool_close(&pool);
    CHECK_EQ(pool.threads_started, 0); /* joined */
    /* Each worker ran its start hook once: as many calls as threads. */
    CHECK_EQ((unsigned)atomic_load(&worker_thread_calls), started);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(pool.closed);
    CHECK_EQ(uv_loop_close(&loop), 0); /* the pool's handle is gone */
    return started;
}

static void test_one_thread_in_order(void)
{
    struct run *run = run_new(ITEMS, false);

    CHECK_EQ(run_pool(1, run), 1);
    check_all_delivered_once(run);
    CHECK(run->in_order);
    free(run);
}

/*
 * Each delivery pushes the next item while a worker may be giving up
 * polling and going to sleep: the item must not be stranded.
 */
static void test_push_from_delivery(void)
{
    struct run *run = run_new(ITEMS, true);

    CHECK_EQ(run_pool(4, run), 4);
    check_all_delivered_once(run);
    CHECK(run->in_order);
    free(run);
}

/*
 * Many items at once on several threads: each is delivered exactly once,
 * on the loop thread, and the threads are the three asked for.
 */
static void test_threads_bounded(void)
{
    struct run *run = run_new(ITEMS, false);

    CHECK_EQ(run_pool(3, run), 3);
    check_all_delivered_once(run);
    free(run);
}

/*
 * Pushes that come slower than the workers poll: every worker goes to
 * sleep on the semaphore between items, and each push must wake one.
 */
static void on_gap_timer(uv_timer_t *t)
{
    struct job_pool *pool = t->data;
    struct run *run = pool->data;

    push_item(pool, run);
    if (run->pushed == run->items_total)
        uv_timer_stop(t);
}

static void test_sleeping_workers_are_woken(void)
{
    struct run *run = run_new(20, false);
    uv_loop_t loop;
    uv_timer_t gap;
    struct job_pool pool;

    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(job_pool_init(&pool, &loop, 2, on_done), 0);
    pool.data = run;
    CHECK_EQ(uv_timer_init(&loop, &gap), 0);
    gap.data = &pool;
    /* 2 ms apart: forty times the polling window. */
    CHECK_EQ(uv_timer_start(&gap, on_gap_timer, 2, 2), 0);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    check_all_delivered_once(run);
    uv_close((uv_handle_t *)&gap, NULL);
    job_pool_close(&pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(pool.closed);
    CHECK_EQ(uv_loop_close(&loop), 0);
    free(run);
}

/* Closing with items out: they still run and are delivered, then the loop ends. */
static void test_close_with_items_out(void)
{
    struct run *run = run_new(20, false);
    struct job_pool pool;
    uv_loop_t loop;
    int i;

    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(job_pool_init(&pool, &loop, 2, on_done), 0);
    pool.data = run;
    for (i = 0; i < run->items_total; i++)
        push_item(&pool, run);
    job_pool_close(&pool);
    CHECK(!uv_is_closing((uv_handle_t *)&pool.wake)); /* not while items are out */
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    check_all_delivered_once(run);
    CHECK(pool.closed);
    CHECK_EQ(pool.threads_started, 0);
    CHECK_EQ(uv_loop_close(&loop), 0);
    free(run);
}

/* Closing from inside the last delivery (a server shutting down then). */
static void test_close_from_delivery(void)
{
    struct run *run = run_new(50, true);
    struct job_pool pool;
    uv_loop_t loop;

    run->close_in_delivery = true;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(job_pool_init(&pool, &loop, 2, on_done), 0);
    pool.data = run;
    push_item(&pool, run);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    check_all_delivered_once(run);
    CHECK(pool.closed);
    CHECK_EQ(uv_loop_close(&loop), 0);
    free(run);
}

/* An idle pool starts no thread, keeps nothing alive and closes at once. */
static void test_idle_pool(void)
{
    struct job_pool pool;
    uv_loop_t loop;

    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(job_pool_init(&pool, &loop, 0, on_done), 0);
    CHECK_EQ(pool.max_threads, 1); /* at least one */
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_EQ(pool.threads_started, 0);
    job_pool_close(&pool);
    CHECK(uv_is_closing((uv_handle_t *)&pool.wake));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(pool.closed);
    CHECK_EQ(uv_loop_close(&loop), 0);

    /* At most JOB_POOL_MAX_THREADS. */
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(job_pool_init(&pool, &loop, 100000, on_done), 0);
    CHECK_EQ(pool.max_threads, JOB_POOL_MAX_THREADS);
    job_pool_close(&pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    if (key_generate(KEY_ED25519, 0, &signer) != 0) {
        fprintf(stderr, "cannot generate a key\n");
        return 1;
    }
    test_one_thread_in_order();
    test_push_from_delivery();
    test_threads_bounded();
    test_sleeping_workers_are_woken();
    test_close_with_items_out();
    test_close_from_delivery();
    test_idle_pool();
    key_free(signer);
    return check_finish("job_pool");
}
