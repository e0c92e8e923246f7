/*
 * keyward: OpenSSH's time interval syntax, for -t: a sequence of numbers
 * each with an optional unit, s (default), m, h, d or w, e.g. "90", "1h30m".
 */
#ifndef KEYWARD_CONVTIME_H
#define KEYWARD_CONVTIME_H

#include <stdint.h>

/* Returns 0 and the total in *secs, or an error for bad syntax or overflow. */
int convtime(const char *s, uint32_t *secs);

#endif
