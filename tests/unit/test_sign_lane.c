/*
 * keyward: the queue of fast signatures worked off by worker threads
 * (src/server/sign_lane.c). Real Ed25519 signatures on libuv's real pool.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent/agent.h"
#include "server/sign_lane.h"
#include "check.h"
#include "crypto/key.h"

#define ITEMS 200

struct item {
    struct sign_lane_item lane_item;
    int index;
    int delivered; /* times done_cb saw it */
};

struct run {
    struct item items[ITEMS];
    int pushed;
    int delivered;
    int next_expected; /* FIFO check with one runner */
    bool in_order;
    bool chain;           /* each delivery pushes the next item */
    unsigned max_running; /* highest lane->running seen */
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

static void push_item(struct sign_lane *lane, struct run *run)
{
    struct item *it = &run->items[run->pushed];

    it->index = run->pushed++;
    it->lane_item.job = make_job(it->index);
    CHECK(it->lane_item.job != NULL);
    if (it->lane_item.job != NULL)
        sign_lane_push(lane, &it->lane_item);
}

static void on_done(struct sign_lane *lane, struct sign_lane_item *li)
{
    struct run *run = lane->data;
    struct item *it = (struct item *)((char *)li - offsetof(struct item, lane_item));

    if (lane->running > run->max_running)
        run->max_running = lane->running;
    it->delivered++;
    run->delivered++;
    if (it->index != run->next_expected)
        run->in_order = false;
    run->next_expected = it->index + 1;
    if (agent_sign_job(li->job)->run_err != 0 || agent_sign_job(li->job)->sig.len == 0)
        run->bad_signatures++;
    agent_job_free(li->job);
    li->job = NULL;
    if (run->chain && run->pushed < ITEMS)
        push_item(lane, run);
}

static void check_all_delivered_once(const struct run *run)
{
    int i, twice = 0, never = 0;

    for (i = 0; i < run->pushed; i++) {
        twice += run->items[i].delivered > 1;
        never += run->items[i].delivered == 0;
    }
    CHECK_EQ(run->delivered, run->pushed);
    CHECK_EQ(twice, 0);
    CHECK_EQ(never, 0);
    CHECK_EQ(run->bad_signatures, 0);
}

/* Pushes ITEMS at once (or one after another from done_cb), runs the loop dry. */
static void run_lane(unsigned max_runners, bool chain, struct run *run)
{
    uv_loop_t loop;
    struct sign_lane lane;
    int i;

    memset(run, 0, sizeof(*run));
    run->in_order = true;
    run->chain = chain;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(sign_lane_init(&lane, &loop, max_runners, on_done), 0);
    lane.data = run;
    lane.on_worker_thread = count_worker_thread;
    for (i = 0; i < (chain ? 1 : ITEMS); i++)
        push_item(&lane, run);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(sign_lane_waiting(&lane), 0);
    CHECK_EQ(lane.items_out, 0);
    CHECK_EQ(lane.running, 0);
    sign_lane_close(&lane);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0); /* the lane's handle is gone */
}

static void test_one_runner_in_order(void)
{
    struct run *run = calloc(1, sizeof(*run));

    atomic_store(&worker_thread_calls, 0);
    run_lane(1, false, run);
    check_all_delivered_once(run);
    CHECK_EQ(run->pushed, ITEMS);
    CHECK(run->in_order);
    /* Deliveries may all come after the runner ended (a slow machine, valgrind). */
    CHECK(run->max_running <= 1);
    CHECK(atomic_load(&worker_thread_calls) >= 1);
    free(run);
}

/*
 * Each delivery pushes the next item while the runner may be giving up
 * (it found the queue empty): the item must not be stranded.
 */
static void test_push_from_delivery(void)
{
    struct run *run = calloc(1, sizeof(*run));

    run_lane(1, true, run);
    CHECK_EQ(run->pushed, ITEMS);
    check_all_delivered_once(run);
    CHECK(run->in_order);
    free(run);
}

static void test_runners_bounded(void)
{
    struct run *run = calloc(1, sizeof(*run));

    run_lane(3, false, run);
    check_all_delivered_once(run);
    CHECK(run->max_running <= 3);
    free(run);
}

/* Closing with items out: they still run and are delivered, then the loop ends. */
static void test_close_with_items_out(void)
{
    struct run *run = calloc(1, sizeof(*run));
    struct sign_lane lane;
    uv_loop_t loop;
    int i;

    run->in_order = true;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(sign_lane_init(&lane, &loop, 2, on_done), 0);
    lane.data = run;
    for (i = 0; i < 20; i++)
        push_item(&lane, run);
    sign_lane_close(&lane);
    CHECK(!uv_is_closing((uv_handle_t *)&lane.wake)); /* not while items are out */
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    check_all_delivered_once(run);
    CHECK_EQ(run->pushed, 20);
    CHECK_EQ(uv_loop_close(&loop), 0);
    free(run);
}

/* An idle lane keeps nothing alive and closes at once. */
static void test_idle_lane(void)
{
    struct sign_lane lane;
    uv_loop_t loop;

    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(sign_lane_init(&lane, &loop, 0, on_done), 0);
    CHECK_EQ(lane.max_runners, 1); /* at least one */
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    sign_lane_close(&lane);
    CHECK(uv_is_closing((uv_handle_t *)&lane.wake));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);

    /* At most SIGN_LANE_MAX_RUNNERS. */
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(sign_lane_init(&lane, &loop, 1000, on_done), 0);
    CHECK_EQ(lane.max_runners, SIGN_LANE_MAX_RUNNERS);
    sign_lane_close(&lane);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    if (key_generate(KEY_ED25519, 0, &signer) != 0) {
        fprintf(stderr, "cannot generate a key\n");
        return 1;
    }
    test_one_runner_in_order();
    test_push_from_delivery();
    test_runners_bounded();
    test_close_with_items_out();
    test_idle_lane();
    key_free(signer);
    /*
     * Join libuv's worker threads now, while OpenSSL can still free what
     * it keeps per thread; at exit its cleanup would run first.
     */
    uv_library_shutdown();
    return check_finish("sign_lane");
}
