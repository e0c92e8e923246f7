/*
 * keyward: an optional timing of the stages of each request (issue 20), for
 * the bench's breakdown of the agent's CPU per signature.
 *
 * Off unless KEYWARD_TIMING=1 is in keyward-agent's environment when it
 * starts; while off, each hook in the request path is one branch on a flag
 * that never changes. When on, the loop thread and the signing threads add
 * the nanoseconds of each stage to process-wide totals (atomics), and the
 * server logs them in one line as it shuts down (kw_timing_log()).
 */
#ifndef KEYWARD_BASE_TIMING_H
#define KEYWARD_BASE_TIMING_H

#include <stdbool.h>
#include <stdint.h>

enum kw_timing_stage {
    KW_TIMING_READ,    /* the read() of a request's bytes (libuv's alloc to read callbacks) */
    KW_TIMING_DECODE,  /* agent_handle() of a request that went to a signing thread */
    KW_TIMING_HANDOFF, /* to a signing thread and back, less the signature: wall time */
    KW_TIMING_SIGN,    /* key_sign() on a signing thread */
    KW_TIMING_ENCODE,  /* agent_job_finish(): the reply to a signature made on a thread */
    KW_TIMING_WRITE,   /* queueing and writing a reply (uv_write()) */
    KW_TIMING_INLINE,  /* agent_handle() of a request answered on the loop thread */
    KW_TIMING_STAGES
};

extern bool kw_timing_on;

/* Reads KEYWARD_TIMING from the environment; call once, before any request. */
void kw_timing_init(void);

/*
 * The calling thread's CPU time in nanoseconds (on Windows the wall clock):
 * a stage's time on a busy machine without the time its thread waited for
 * a core.
 */
uint64_t kw_timing_now(void);

/* A monotonic wall clock in nanoseconds. */
uint64_t kw_timing_wall(void);

/* Adds one occurrence of stage s that took ns. Any thread. */
void kw_timing_add(enum kw_timing_stage s, uint64_t ns);

/* Logs the totals (log_info): "timing: read NS/COUNT decode NS/COUNT ...". */
void kw_timing_log(void);

#endif
