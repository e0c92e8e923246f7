/*
 * keyward: logging to stderr or syslog. See log.h.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#ifndef _WIN32
#include <syslog.h>
#endif

static const char *log_progname = "keyward";
static enum log_level log_max = LOG_LEVEL_INFO;
static enum log_sink log_to = LOG_SINK_STDERR;

void log_init(const char *progname, enum log_level level, enum log_sink sink)
{
    log_progname = progname;
    log_max = level;
    log_to = sink;
#ifndef _WIN32
    if (sink == LOG_SINK_SYSLOG)
        openlog(progname, LOG_PID, LOG_AUTH);
#endif
}

bool log_enabled(enum log_level level)
{
    return level <= log_max;
}

static void log_emit(enum log_level level, const char *fmt, va_list ap)
{
    char line[1024];

    if (!log_enabled(level))
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
#ifndef _WIN32
    if (log_to == LOG_SINK_SYSLOG) {
        int prio = level == LOG_LEVEL_ERROR  ? LOG_ERR
                   : level == LOG_LEVEL_INFO ? LOG_INFO
                                             : LOG_DEBUG;
        syslog(prio, "%s", line);
        return;
    }
#endif
    fprintf(stderr, "%s: %s%s\n", log_progname,
            level == LOG_LEVEL_ERROR   ? "error: "
            : level == LOG_LEVEL_DEBUG ? "debug: "
                                       : "",
            line);
    fflush(stderr);
}

void log_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_LEVEL_ERROR, fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_LEVEL_INFO, fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_LEVEL_DEBUG, fmt, ap);
    va_end(ap);
}

const char *log_sanitize(const void *data, size_t len, char *buf, size_t bufsize)
{
    const unsigned char *p = data;
    size_t i, n = 0;

    if (bufsize == 0)
        return "";
    for (i = 0; i < len && n + 1 < bufsize; i++)
        buf[n++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    buf[n] = '\0';
    return buf;
}
