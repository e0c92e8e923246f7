/*
 * keyward: logging.
 *
 * One line per event, never any key material. Refusals are logged at
 * LOG_INFO with the reason so an operator can see why something failed;
 * LOG_DEBUG adds a line for every request (keyward-agent -d).
 */
#ifndef KEYWARD_LOG_H
#define KEYWARD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_DEBUG = 2,
};

enum log_sink {
    LOG_SINK_STDERR,
    LOG_SINK_SYSLOG, /* stderr on platforms without syslog */
};

void log_init(const char *progname, enum log_level level, enum log_sink sink);
bool log_enabled(enum log_level level);

#if defined(__GNUC__)
#define KW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KW_PRINTF(a, b)
#endif

void log_error(const char *fmt, ...) KW_PRINTF(1, 2);
void log_info(const char *fmt, ...) KW_PRINTF(1, 2);
void log_debug(const char *fmt, ...) KW_PRINTF(1, 2);

/*
 * Copies an untrusted string (a key comment, an extension name) into buf
 * for logging: printable ASCII kept, everything else shown as '?', and
 * truncated to fit.
 */
const char *log_sanitize(const void *data, size_t len, char *buf, size_t bufsize);

#endif
