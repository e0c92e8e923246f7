/*
 * keyward: the optional per-stage timing (see timing.h).
 */
#include "base/timing.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#endif

#include "base/log.h"

bool kw_timing_on;

static _Atomic uint64_t totals[KW_TIMING_STAGES];
static _Atomic uint64_t counts[KW_TIMING_STAGES];

static const char *const names[KW_TIMING_STAGES] = {"read",   "decode", "handoff", "sign",
                                                    "encode", "write",  "inline"};

void kw_timing_init(void)
{
    const char *v = getenv("KEYWARD_TIMING");

    kw_timing_on = v != NULL && strcmp(v, "1") == 0;
}

uint64_t kw_timing_wall(void)
{
#ifdef _WIN32
    LARGE_INTEGER f, t;

    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t);
    return (uint64_t)((double)t.QuadPart * 1e9 / (double)f.QuadPart);
#else
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

uint64_t kw_timing_now(void)
{
#ifdef _WIN32
    return kw_timing_wall(); /* GetThreadTimes() counts in scheduler ticks */
#else
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

void kw_timing_add(enum kw_timing_stage s, uint64_t ns)
{
    atomic_fetch_add_explicit(&totals[s], ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&counts[s], 1, memory_order_relaxed);
}

void kw_timing_log(void)
{
    char line[512];
    size_t n = 0;
    int i;

    if (!kw_timing_on)
        return;
    for (i = 0; i < KW_TIMING_STAGES && n < sizeof(line); i++) {
        int w = snprintf(line + n, sizeof(line) - n, "%s%s %llu/%llu", i ? " " : "", names[i],
                         (unsigned long long)atomic_load(&totals[i]),
                         (unsigned long long)atomic_load(&counts[i]));

        if (w < 0)
            break;
        n += (size_t)w;
    }
    log_info("timing: %s", line);
}
