/*
 * keyward-probe: what each platform's transport gives the code they share
 * (transport_frame.c). Not for the checks, which see only transport.h.
 */
#ifndef KEYWARD_PROBE_TRANSPORT_READ_H
#define KEYWARD_PROBE_TRANSPORT_READ_H

#include <stddef.h>
#include <stdint.h>

#include "probe/transport.h"

/*
 * Appends exactly want bytes read from t to raw, unless the agent closes
 * first (*st TRANSPORT_CLOSED) or deadline (transport_now_ms() time) passes
 * (*st TRANSPORT_TIMEOUT); what was read by then stays in raw. Returns 0
 * with *st set, or a KW_ERR_* code.
 */
int transport_read_exact(struct transport *t, size_t want, int64_t deadline,
                         struct wire_writer *raw, enum transport_status *st);

#endif
