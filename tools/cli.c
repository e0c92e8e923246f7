/*
 * keyward's programs: what the front ends share. See cli.h.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void (*die_cleanup)(void);

void cli_set_die_cleanup(void (*cleanup)(void))
{
    die_cleanup = cleanup;
}

void cli_die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cli_progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (die_cleanup != NULL)
        die_cleanup();
    exit(1);
}

void cli_close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}
