/*
 * hold_client: keeps one agent connection open and reports whether the
 * other end closes it. A test client for keyward-relay (tests/relay/).
 *
 *   hold_client SOCKET MS expect-close   pass if the peer closes within MS
 *   hold_client SOCKET MS expect-open    pass if it is still open after MS
 *
 * It connects, lists the agent's keys (so the connection is known to
 * work), prints "ready" and then waits, reading. expect-close is how a test
 * shows that a relay closes a client whose upstream agent went away rather
 * than leaving it hanging or binding it to a new agent connection.
 *
 * Exit status: 0 as expected, 1 not as expected, 2 on a usage or setup
 * error. Every outcome is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/request.h"
#include "base/err.h"
#include "base/wire.h"
#include "probe/transport.h"

#define REPLY_TIMEOUT_MS 10000

int main(int argc, char **argv)
{
    struct transport *t = NULL;
    struct wire_writer raw;
    enum transport_status st = TRANSPORT_OK;
    static const uint8_t list[] = {0, 0, 0, 1, SSH_AGENTC_REQUEST_IDENTITIES};
    bool expect_close;
    char why[256] = "";
    int64_t start, took;
    long ms;
    int rc = 2;

    wire_writer_init(&raw);
    if (argc != 4 || (ms = strtol(argv[2], NULL, 10)) <= 0 ||
        (strcmp(argv[3], "expect-close") != 0 && strcmp(argv[3], "expect-open") != 0)) {
        fprintf(stderr, "usage: %s SOCKET MS expect-close|expect-open\n", argv[0]);
        goto out;
    }
    expect_close = strcmp(argv[3], "expect-close") == 0;
    if (transport_setup(1) != 0 ||
        transport_connect(argv[1], REPLY_TIMEOUT_MS, &t, why, sizeof(why)) != 0) {
        printf("cannot connect to %s: %s\n", argv[1], why);
        goto out;
    }
    if (transport_send(t, list, sizeof(list), REPLY_TIMEOUT_MS, &st) != 0 || st != TRANSPORT_OK ||
        transport_recv_frame(t, REPLY_TIMEOUT_MS, WIRE_MAX_MESSAGE, &raw, &st) != 0 ||
        st != TRANSPORT_OK || raw.len < 5 || raw.buf[4] != SSH_AGENT_IDENTITIES_ANSWER) {
        printf("the first list request was not answered\n");
        rc = 1;
        goto out;
    }
    printf("ready\n");
    fflush(stdout);

    start = transport_now_ms();
    if (transport_recv_frame(t, (int)ms, WIRE_MAX_MESSAGE, &raw, &st) != 0) {
        printf("receiving failed\n");
        goto out;
    }
    took = transport_now_ms() - start;
    switch (st) {
    case TRANSPORT_CLOSED:
        printf("closed by the peer after %lld ms\n", (long long)took);
        rc = expect_close ? 0 : 1;
        break;
    case TRANSPORT_TIMEOUT:
        printf("still open after %lld ms\n", (long long)took);
        rc = expect_close ? 1 : 0;
        break;
    default:
        /* Nothing was asked: any frame now would be a reply to nobody. */
        printf("an unexpected frame arrived (%zu bytes)\n", raw.len);
        rc = 1;
        break;
    }
out:
    transport_close(t);
    wire_writer_free(&raw);
    return rc;
}
