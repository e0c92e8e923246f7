/*
 * keyward tests: the countdown allocator. See oom_alloc.h.
 */
#include "oom_alloc.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static bool armed;
static bool paused;
static unsigned long fail_at;
static unsigned long seen;
static unsigned long injected;

void oom_arm(unsigned long n)
{
    __atomic_store_n(&armed, false, __ATOMIC_SEQ_CST);
    __atomic_store_n(&seen, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&injected, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fail_at, n, __ATOMIC_SEQ_CST);
    __atomic_store_n(&paused, false, __ATOMIC_SEQ_CST);
    __atomic_store_n(&armed, true, __ATOMIC_SEQ_CST);
}

void oom_disarm(void)
{
    __atomic_store_n(&armed, false, __ATOMIC_SEQ_CST);
}

unsigned long oom_count(void)
{
    return __atomic_load_n(&seen, __ATOMIC_SEQ_CST);
}

unsigned long oom_injected(void)
{
    return __atomic_load_n(&injected, __ATOMIC_SEQ_CST);
}

void oom_pause(void)
{
    __atomic_store_n(&paused, true, __ATOMIC_SEQ_CST);
}

void oom_resume(void)
{
    __atomic_store_n(&paused, false, __ATOMIC_SEQ_CST);
}

/* Counts one allocation; true if it is the one to fail. */
static bool should_fail(void)
{
    unsigned long n;

    if (!__atomic_load_n(&armed, __ATOMIC_SEQ_CST) || __atomic_load_n(&paused, __ATOMIC_SEQ_CST))
        return false;
    n = __atomic_add_fetch(&seen, 1, __ATOMIC_SEQ_CST);
    if (n != __atomic_load_n(&fail_at, __ATOMIC_SEQ_CST))
        return false;
    __atomic_add_fetch(&injected, 1, __ATOMIC_SEQ_CST);
    return true;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

/* A failed realloc() leaves the block as it was, as the real one does. */
void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

/* glibc's strdup() calls its own malloc(), which --wrap cannot reach. */
char *__wrap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p;

    if (should_fail() || (p = __real_malloc(n)) == NULL)
        return NULL;
    memcpy(p, s, n);
    return p;
}

int oom_use_for_libuv(void)
{
    return uv_replace_allocator(__wrap_malloc, __wrap_realloc, __wrap_calloc, free);
}
