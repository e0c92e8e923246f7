/*
 * keyward-probe: receiving one frame, the same over every transport. See
 * transport.h.
 */
#include "probe/transport_read.h"

int transport_recv_frame(struct transport *t, int timeout_ms, size_t max_len,
                         struct wire_writer *raw, enum transport_status *st)
{
    int64_t deadline = transport_now_ms() + timeout_ms;
    uint32_t len;
    int err;

    wire_writer_reset(raw);
    if ((err = transport_read_exact(t, 4, deadline, raw, st)) != 0 || *st != TRANSPORT_OK)
        return err;
    len = wire_peek_u32(raw->buf);
    if (len > max_len) {
        *st = TRANSPORT_OVERSIZED;
        return 0;
    }
    return transport_read_exact(t, len, deadline, raw, st);
}
