/*
 * keyward tests: allocation-failure injection (issue 15), after SQLite's
 * out-of-memory tests.
 *
 * The oom_* test programs are linked with
 *
 *     -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=strdup
 *
 * so every call to those functions from keyward's static libraries (and
 * from the test itself) goes to __wrap_*() in oom_alloc.c, which counts it
 * and, when armed, fails one of them. That covers libcrypto too: key.c
 * installs its clearing allocator with CRYPTO_set_mem_functions(), and
 * that allocator's malloc() is one of keyward's references. libuv goes
 * through it once oom_use_for_libuv() has handed it the same functions
 * (uv_replace_allocator). No production code changes; under ASan the
 * __real_*() functions are ASan's interceptors, so nothing is lost.
 *
 * The counter is atomic: the server test's worker threads allocate too.
 */
#ifndef KEYWARD_TEST_OOM_ALLOC_H
#define KEYWARD_TEST_OOM_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Starts counting allocations from zero; the fail_at-th one (1-based) fails
 * and every other succeeds. fail_at 0 counts without failing any.
 */
void oom_arm(unsigned long fail_at);
/* Stops counting and failing (allocations succeed, uncounted). */
void oom_disarm(void);
/* Allocations counted since oom_arm() (while armed and not paused). */
unsigned long oom_count(void);
/* How many allocations were failed since oom_arm(): 0 or 1. */
unsigned long oom_injected(void);
/*
 * The test's own checks between requests allocate without being counted
 * or failed: oom_pause() ... oom_resume() (not nested).
 */
void oom_pause(void);
void oom_resume(void);

/* Routes libuv's allocations through the same counter (before any uv call). */
int oom_use_for_libuv(void);

#endif
