/*
 * keyward's programs: what the front ends share. See cli.h.
 */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void cli_watch_signal(uv_loop_t *loop, uv_signal_t *s, int signum, uv_signal_cb cb, void *data)
{
    uv_signal_init(loop, s);
    s->data = data;
    if (uv_signal_start(s, cb, signum) != 0)
        log_error("cannot catch signal %d; stop %s by ending its process", signum, cli_progname);
    uv_unref((uv_handle_t *)s);
}

void cli_close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void cli_relay_args(int argc, char **argv, void (*usage)(FILE *out), const char *version,
                    struct cli_relay_args *out)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'H'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(out, 0, sizeof(*out));
    while ((ch = getopt_long(argc, argv, "d", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            out->debug = true;
            break;
        case 'H':
            usage(stdout);
            exit(0);
        case 'V':
            printf("%s %s\n", cli_progname, version);
            exit(0);
        default:
            usage(stderr);
            exit(1);
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        exit(1);
    }
    out->listen = argv[optind];
    out->upstream = argv[optind + 1];
    if (*out->listen == '\0' || *out->upstream == '\0')
        cli_die("LISTEN and UPSTREAM must not be empty");
    if (strcmp(out->listen, "-") == 0 && strcmp(out->upstream, "-") == 0)
        cli_die("LISTEN and UPSTREAM cannot both be - (stdin/stdout)");
}
