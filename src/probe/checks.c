/*
 * keyward-probe: the checks. See probe.h.
 *
 * Every check follows one pattern: open its own connection(s), send a
 * request, classify what came back (a reply of type N, the connection
 * closed, no reply within the timeout, or a malformed frame), and prove
 * that the connection is still alive by asking for the identity list on
 * the SAME connection. A failed check records both exchanges with hex
 * dumps, so the report shows exactly what the agent saw and did.
 *
 * Messages are built with wire.h and keys come from key.h (generation,
 * private-key encoding, signing, verification): no crypto here.
 */
#include "probe/probe.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "agent/request.h"
#include "base/err.h"
#include "base/wire.h"
#include "crypto/key.h"
#include "probe/transport.h"
#include "proto/msg.h"

/* Bytes of a frame shown in a hex dump before it is cut short. */
#define HEX_DUMP_MAX 64
/* OpenSSH records at most this many session bindings per connection. */
#define PROBE_BINDINGS_MAX 16
/* The concurrency check's connection count. */
#define PROBE_CONCURRENT 256
/* How long to watch for bytes an agent sends after its reply. */
#define EXTRA_BYTES_WAIT_MS 200
/* A message type no version of the protocol assigns. */
#define PROBE_UNKNOWN_TYPE      200
#define PROBE_UNKNOWN_EXTENSION "unknown-extension@keyward-probe.invalid"
#define PROBE_KEY_COMMENT       "keyward-probe throwaway key"
#define PROBE_RSA_BITS          2048
#define SESSION_ID_LEN          32

/*
 * For mingw, "printf" names msvcrt's format rules, which lack %zu; the
 * vsnprintf used here is mingw's C99 one (__USE_MINGW_ANSI_STDIO), whose
 * rules are gnu_printf's.
 */
#ifdef _WIN32
#define PROBE_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#else
#define PROBE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#endif

/* One request and what came back for it. */
struct exchange {
    char label[96];          /* names the request in reports */
    struct wire_writer sent; /* the whole frame as sent */
    enum transport_status send_st;
    struct wire_writer raw; /* every byte received for the reply */
    enum transport_status recv_st;
    int timeout_ms;
};

/* ---- text helpers ---- */

static void text_add(char *buf, size_t size, const char *fmt, ...) PROBE_PRINTF(3, 4);

static void text_add(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;

    if (used + 1 >= size)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/*
 * "00000001 0b": the length field, a space, then the rest. Long frames are
 * cut, saying how much was left out, so a 256 KiB frame stays one line.
 */
static void hex_frame(const uint8_t *p, size_t len, char *out, size_t size)
{
    size_t i, shown = len < HEX_DUMP_MAX ? len : HEX_DUMP_MAX;

    out[0] = '\0';
    if (len == 0) {
        text_add(out, size, "(nothing)");
        return;
    }
    for (i = 0; i < shown; i++) {
        if (i == 4)
            text_add(out, size, " ");
        text_add(out, size, "%02x", p[i]);
    }
    if (shown < len)
        text_add(out, size, "... (%zu bytes in all)", len);
}

/* Appends an agent-supplied string with anything unprintable shown as '?'. */
static void add_printable(char *buf, size_t size, const char *sep, struct wire_view v)
{
    size_t used, i;

    text_add(buf, size, "%s", sep);
    used = strlen(buf);
    for (i = 0; i < v.len && used + 1 < size; i++, used++)
        buf[used] = v.ptr[i] >= 0x20 && v.ptr[i] < 0x7f ? (char)v.ptr[i] : '?';
    buf[used] = '\0';
}

/*
 * A reply's name in the report: proto_type_name()'s, except that the two
 * status replies keep the protocol's full names, as the probe has always
 * printed them ("reply 5 (SSH_AGENT_FAILURE)": tests/probe and
 * docs/compat.md quote that text), and that any other number, a
 * request's included, is said to be no reply.
 */
static const char *reply_name(int type)
{
    if (type < 0 || type > UINT8_MAX || !proto_is_reply((uint8_t)type))
        return "not a reply type";
    if (type == SSH_AGENT_FAILURE)
        return "SSH_AGENT_FAILURE";
    if (type == SSH_AGENT_SUCCESS)
        return "SSH_AGENT_SUCCESS";
    return proto_type_name((uint8_t)type);
}

/* ---- exchanges ---- */

static void exchange_init(struct exchange *x)
{
    memset(x, 0, sizeof(*x));
    wire_writer_init(&x->sent);
    wire_writer_init(&x->raw);
    x->send_st = TRANSPORT_OK;
    x->recv_st = TRANSPORT_TIMEOUT;
}

static void exchange_free(struct exchange *x)
{
    wire_writer_free(&x->sent);
    wire_writer_free(&x->raw);
}

/* Sends x->sent exactly as it is and reads one reply frame. */
static int exchange_frame(struct transport *t, const struct probe_options *opt, const char *label,
                          struct exchange *x)
{
    int err;

    snprintf(x->label, sizeof(x->label), "%s", label);
    x->timeout_ms = opt->timeout_ms;
    x->recv_st = TRANSPORT_TIMEOUT;
    wire_writer_reset(&x->raw);
    if (x->sent.error != 0)
        return x->sent.error;
    if ((err = transport_send(t, x->sent.buf, x->sent.len, opt->timeout_ms, &x->send_st)) != 0)
        return err;
    /* Even after a failed send, a reply or the close may be waiting. */
    if (x->send_st == TRANSPORT_TIMEOUT)
        return 0;
    return transport_recv_frame(t, opt->timeout_ms, WIRE_MAX_MESSAGE, &x->raw, &x->recv_st);
}

/* Frames one message body (type byte first) and exchanges it. */
static int exchange_msg(struct transport *t, const struct probe_options *opt, const char *label,
                        const struct wire_writer *body, struct exchange *x)
{
    if (body->error != 0)
        return body->error;
    wire_writer_reset(&x->sent);
    wire_put_u32(&x->sent, (uint32_t)body->len);
    wire_put_bytes(&x->sent, body->buf, body->len);
    return exchange_frame(t, opt, label, x);
}

/* The reply's message type, or -1 unless one whole, non-empty frame came back. */
static int reply_type(const struct exchange *x)
{
    if (x->recv_st != TRANSPORT_OK || x->raw.len < 5)
        return -1;
    return x->raw.buf[4];
}

/* The reply after its type byte. */
static struct wire_view reply_rest(const struct exchange *x)
{
    struct wire_view v = {NULL, 0};

    if (reply_type(x) >= 0) {
        v.ptr = x->raw.buf + 5;
        v.len = x->raw.len - 5;
    }
    return v;
}

static bool is_failure_reply(int type)
{
    return type == SSH_AGENT_FAILURE || type == SSH_AGENT_EXTENSION_FAILURE;
}

/* The announced length of a partial frame, for reports. */
static uint32_t announced_len(const struct exchange *x)
{
    return x->raw.len >= 4 ? wire_peek_u32(x->raw.buf) : 0;
}

/*
 * A short phrase for what happened, used in summaries and why-texts:
 * "reply 5 (SSH_AGENT_FAILURE)", "connection closed", "no reply within
 * 5000 ms", "malformed frame".
 */
static void outcome_phrase(const struct exchange *x, char *out, size_t size)
{
    int type = reply_type(x);

    if (x->send_st == TRANSPORT_TIMEOUT)
        snprintf(out, size, "the agent stopped reading (send blocked %d ms)", x->timeout_ms);
    else if (type >= 0)
        snprintf(out, size, "reply %d (%s)", type, reply_name(type));
    else if (x->recv_st == TRANSPORT_OK || x->recv_st == TRANSPORT_OVERSIZED || x->raw.len > 0)
        snprintf(out, size, "malformed frame");
    else if (x->recv_st == TRANSPORT_CLOSED)
        snprintf(out, size, "connection closed");
    else
        snprintf(out, size, "no reply within %d ms", x->timeout_ms);
}

/* The full description of what came back, with a hex dump. */
static void describe_reply(const struct exchange *x, char *out, size_t size)
{
    char hex[HEX_DUMP_MAX * 2 + 64];

    hex_frame(x->raw.buf, x->raw.len, hex, sizeof(hex));
    out[0] = '\0';
    if (x->send_st == TRANSPORT_CLOSED)
        text_add(out, size, "connection closed while sending; ");
    if (x->send_st == TRANSPORT_TIMEOUT) {
        text_add(out, size, "the agent stopped reading: send blocked for %d ms", x->timeout_ms);
    } else if (x->recv_st == TRANSPORT_OK && x->raw.len == 4) {
        text_add(out, size, "malformed frame: empty message, no type byte: %s", hex);
    } else if (x->recv_st == TRANSPORT_OK) {
        text_add(out, size, "reply %d (%s): %s", x->raw.buf[4], reply_name(x->raw.buf[4]), hex);
    } else if (x->recv_st == TRANSPORT_OVERSIZED) {
        text_add(out, size, "malformed frame: header announces %u bytes, over the %u limit: %s",
                 announced_len(x), (unsigned)WIRE_MAX_MESSAGE, hex);
    } else if (x->raw.len > 0 && x->raw.len < 4) {
        text_add(out, size, "malformed frame: %s after %zu bytes of a length field: %s",
                 x->recv_st == TRANSPORT_CLOSED ? "connection closed" : "nothing more", x->raw.len,
                 hex);
    } else if (x->raw.len > 0) {
        text_add(out, size, "malformed frame: %s after %zu of %u announced bytes: %s",
                 x->recv_st == TRANSPORT_CLOSED ? "connection closed" : "nothing more",
                 x->raw.len - 4, announced_len(x), hex);
    } else if (x->recv_st == TRANSPORT_CLOSED) {
        text_add(out, size, "connection closed without a reply");
    } else {
        text_add(out, size, "no reply within %d ms", x->timeout_ms);
    }
}

/* ---- verdicts ---- */

static void set_verdict(struct probe_result *res, enum probe_verdict v, const char *fmt, ...)
    PROBE_PRINTF(3, 4);

static void set_verdict(struct probe_result *res, enum probe_verdict v, const char *fmt, ...)
{
    va_list ap;

    res->verdict = v;
    va_start(ap, fmt);
    vsnprintf(res->summary, sizeof(res->summary), fmt, ap);
    va_end(ap);
}

static void add_exchange(struct probe_result *res, const struct exchange *x, bool first)
{
    char hex[HEX_DUMP_MAX * 2 + 64], got[PROBE_TEXT_MAX / 2];

    hex_frame(x->sent.buf, x->sent.len, hex, sizeof(hex));
    describe_reply(x, got, sizeof(got));
    text_add(res->sent, sizeof(res->sent), "%s%s: %s", first ? "" : "; then ", x->label, hex);
    text_add(res->got, sizeof(res->got), "%s%s -> %s", first ? "" : "; then ", x->label, got);
}

/*
 * Records a FAIL. before (may be NULL) is the request that led up to x;
 * both appear in the report. why says why it matters.
 */
static void set_fail(struct probe_result *res, const struct exchange *before,
                     const struct exchange *x, const char *fmt, ...) PROBE_PRINTF(4, 5);

static void set_fail(struct probe_result *res, const struct exchange *before,
                     const struct exchange *x, const char *fmt, ...)
{
    char phrase[128];
    va_list ap;

    res->verdict = PROBE_FAIL;
    res->sent[0] = res->got[0] = '\0';
    if (before != NULL)
        add_exchange(res, before, true);
    add_exchange(res, x, before == NULL);
    outcome_phrase(x, phrase, sizeof(phrase));
    snprintf(res->summary, sizeof(res->summary), "%s: %s", x->label, phrase);
    va_start(ap, fmt);
    vsnprintf(res->why, sizeof(res->why), fmt, ap);
    va_end(ap);
}

/*
 * A request was answered neither as expected nor with a clean failure:
 * "connection closed after <what>: <consequence>".
 */
static void fail_lost(struct probe_result *res, const struct exchange *before,
                      const struct exchange *x, const char *what, const char *consequence)
{
    char phrase[128];

    outcome_phrase(x, phrase, sizeof(phrase));
    set_fail(res, before, x, "%s after %s: %s", phrase, what, consequence);
}

/* A connection failed where the agent should have accepted one. */
static void fail_connect(struct probe_result *res, const char *address, const char *which,
                         const char *reason)
{
    res->verdict = PROBE_FAIL;
    snprintf(res->summary, sizeof(res->summary), "cannot open %s: %s", which, reason);
    snprintf(res->sent, sizeof(res->sent), "connect to %s", address);
    snprintf(res->got, sizeof(res->got), "%s", reason);
    snprintf(res->why, sizeof(res->why),
             "the agent stopped accepting connections: every client loses the agent");
}

/* Opens a connection; a failure is the check's FAIL, not a probe error. */
static int open_conn(const struct probe_options *opt, const char *which, struct transport **t,
                     struct probe_result *res, bool *ok)
{
    char why[256];
    int err;

    *ok = false;
    err = transport_connect(opt->address, opt->timeout_ms, t, why, sizeof(why));
    if (err == KW_ERR_ALLOC)
        return err;
    if (err != 0) {
        fail_connect(res, opt->address, which, why);
        return 0;
    }
    *ok = true;
    return 0;
}

/* ---- messages ---- */

static void put_list_request(struct wire_writer *w)
{
    wire_writer_reset(w);
    wire_put_u8(w, SSH_AGENTC_REQUEST_IDENTITIES);
}

/* The number of keys in an IDENTITIES_ANSWER, or -1 if it does not parse. */
static long list_count(const struct exchange *x)
{
    struct wire_reader r;
    uint32_t n, i;

    if (reply_type(x) != SSH_AGENT_IDENTITIES_ANSWER)
        return -1;
    wire_reader_from_view(&r, reply_rest(x));
    n = wire_get_u32(&r);
    for (i = 0; i < n && r.error == 0; i++) {
        (void)wire_get_string(&r); /* key blob */
        (void)wire_get_string(&r); /* comment */
    }
    return wire_reader_finish(&r) == 0 ? (long)n : -1;
}

/*
 * "Connection alive": on the SAME connection, REQUEST_IDENTITIES gets an
 * IDENTITIES_ANSWER within the timeout. If not, records a FAIL that shows
 * the request before it (what) and the consequence for clients.
 */
static int expect_alive(struct transport *t, const struct probe_options *opt,
                        const struct exchange *before, const char *what, const char *consequence,
                        struct probe_result *res, struct exchange *list, bool *alive)
{
    struct wire_writer body;
    char label[160];
    int err;

    *alive = false;
    wire_writer_init(&body);
    put_list_request(&body);
    snprintf(label, sizeof(label), "REQUEST_IDENTITIES after %s", what);
    if ((err = exchange_msg(t, opt, label, &body, list)) != 0)
        goto out;
    if (reply_type(list) == SSH_AGENT_IDENTITIES_ANSWER && list_count(list) >= 0) {
        *alive = true;
        goto out;
    }
    if (reply_type(list) == SSH_AGENT_IDENTITIES_ANSWER)
        set_fail(res, before, list, "the identity list after %s does not parse: %s", what,
                 consequence);
    else if (reply_type(list) >= 0)
        set_fail(res, before, list,
                 "the list request after %s got the wrong reply type (the agent's replies are "
                 "out of step with its requests): %s",
                 what, consequence);
    else
        fail_lost(res, before, list, what, consequence);
out:
    wire_writer_free(&body);
    return err;
}

/* The same, when the caller has no use for the list reply. */
static int check_alive(struct transport *t, const struct probe_options *opt,
                       const struct exchange *before, const char *what, const char *consequence,
                       struct probe_result *res, bool *alive)
{
    struct exchange list;
    int err;

    exchange_init(&list);
    err = expect_alive(t, opt, before, what, consequence, res, &list, alive);
    exchange_free(&list);
    return err;
}

/*
 * SSH_AGENTC_EXTENSION "session-bind@openssh.com" in the field order
 * OpenSSH's ssh sends it: host key blob, session id, the host key's
 * signature over the session id, is_forwarding. With bad_signature the
 * signature is well formed but made over different data.
 */
static int put_session_bind(struct wire_writer *w, const struct key *hostkey, const uint8_t *sid,
                            size_t sid_len, bool forwarding, bool bad_signature)
{
    struct wire_writer sig;
    uint8_t other[SESSION_ID_LEN];
    int err;

    wire_writer_init(&sig);
    if (bad_signature) {
        memcpy(other, sid, sid_len < sizeof(other) ? sid_len : sizeof(other));
        other[0] ^= 0xff;
        err = key_sign(hostkey, other, sizeof(other), 0, &sig);
    } else {
        err = key_sign(hostkey, sid, sid_len, 0, &sig);
    }
    if (err != 0 || (err = sig.error) != 0)
        goto out;
    wire_writer_reset(w);
    wire_put_u8(w, SSH_AGENTC_EXTENSION);
    wire_put_cstring(w, EXT_SESSION_BIND);
    wire_put_string(w, hostkey->blob, hostkey->blob_len);
    wire_put_string(w, sid, sid_len);
    wire_put_string(w, sig.buf, sig.len);
    wire_put_bool(w, forwarding);
    err = w->error;
out:
    wire_writer_free(&sig);
    return err;
}

static int random_bytes(uint8_t *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : KW_ERR_INTERNAL;
}

/* Sends one session-bind over a fresh random session id. */
static int send_session_bind(struct transport *t, const struct probe_options *opt,
                             const char *label, const struct key *hostkey, bool forwarding,
                             bool bad_signature, struct exchange *x)
{
    uint8_t sid[SESSION_ID_LEN];
    struct wire_writer body;
    int err;

    wire_writer_init(&body);
    if ((err = random_bytes(sid, sizeof(sid))) != 0 ||
        (err = put_session_bind(&body, hostkey, sid, sizeof(sid), forwarding, bad_signature)) != 0)
        goto out;
    err = exchange_msg(t, opt, label, &body, x);
out:
    wire_writer_free(&body);
    return err;
}

/* What the agent made of a valid first binding on a fresh connection. */
enum bind_support {
    BIND_SUPPORTED,  /* SUCCESS */
    BIND_REFUSED,    /* a clean failure reply: no session-bind */
    BIND_MISBEHAVED, /* anything else; a FAIL has been recorded */
};

/*
 * Classifies the reply to a first, valid session-bind. An agent that
 * refuses it cleanly does not implement session-bind: the bind checks are
 * then "not supported", not FAIL.
 */
static enum bind_support first_bind_outcome(const struct exchange *x, struct probe_result *res)
{
    int type = reply_type(x);
    char phrase[128];

    if (type == SSH_AGENT_SUCCESS && x->raw.len == 5)
        return BIND_SUPPORTED;
    if (is_failure_reply(type)) {
        set_verdict(res, PROBE_UNSUPPORTED,
                    "a valid first session-bind was refused (reply %d, %s): the agent does not "
                    "implement session-bind@openssh.com",
                    type, reply_name(type));
        return BIND_REFUSED;
    }
    outcome_phrase(x, phrase, sizeof(phrase));
    if (type == SSH_AGENT_SUCCESS)
        text_add(phrase, sizeof(phrase), " with %zu extra bytes", x->raw.len - 5);
    set_fail(res, NULL, x,
             "%s to a valid session-bind; an agent must answer SUCCESS (00000001 06), or a "
             "failure reply if it lacks the extension: ssh sends session-bind on every "
             "connection, so clients misread or lose the agent",
             phrase);
    return BIND_MISBEHAVED;
}

/*
 * Opens a separate connection and tries one valid binding, so that a check
 * about refusals can tell "refused because wrong" from "refused because
 * the agent has no session-bind at all".
 */
static int probe_bind_support(const struct probe_options *opt, const struct key *hostkey,
                              struct probe_result *res, enum bind_support *support)
{
    struct transport *t = NULL;
    struct exchange x;
    bool ok;
    int err;

    *support = BIND_MISBEHAVED;
    exchange_init(&x);
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    if ((err = send_session_bind(t, opt, "valid session-bind (authentication)", hostkey, false,
                                 false, &x)) != 0)
        goto out;
    *support = first_bind_outcome(&x, res);
out:
    transport_close(t);
    exchange_free(&x);
    return err;
}

/* ---- the checks ---- */

static const char *const REBIND_CONSEQUENCE =
    "clients that keep one agent connection, such as tsh -A, lose the agent";

static int check_rebind(const struct probe_options *opt, struct probe_result *res)
{
    struct transport *t = NULL;
    struct key *hostkey = NULL;
    struct exchange first, second;
    bool ok, alive;
    int err, type;

    exchange_init(&first);
    exchange_init(&second);
    if ((err = key_generate(KEY_ED25519, 0, &hostkey)) != 0)
        goto out;
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    if ((err = send_session_bind(t, opt, "first session-bind (authentication)", hostkey, false,
                                 false, &first)) != 0)
        goto out;
    if (first_bind_outcome(&first, res) != BIND_SUPPORTED)
        goto out;
    if ((err = send_session_bind(t, opt, "second session-bind (authentication)", hostkey, false,
                                 false, &second)) != 0)
        goto out;
    type = reply_type(&second);
    if (type == SSH_AGENT_SUCCESS) {
        set_fail(res, &first, &second,
                 "a connection already bound for authentication must refuse further bindings "
                 "(OpenSSH: \"attempt to bind session ID to socket previously bound for "
                 "authentication attempt\"); accepting them lets a forwarded connection be "
                 "reused to reach other hosts");
        goto out;
    }
    if (!is_failure_reply(type)) {
        fail_lost(res, &first, &second, "a refused session-bind", REBIND_CONSEQUENCE);
        goto out;
    }
    if ((err = check_alive(t, opt, &second, "a refused session-bind", REBIND_CONSEQUENCE, res,
                           &alive)) != 0 ||
        !alive)
        goto out;
    set_verdict(res, PROBE_PASS,
                "second bind refused with %d (%s); the list still answered on the same "
                "connection",
                type, reply_name(type));
out:
    transport_close(t);
    key_free(hostkey);
    exchange_free(&first);
    exchange_free(&second);
    return err;
}

static int check_bind_bad_signature(const struct probe_options *opt, struct probe_result *res)
{
    static const char *const consequence =
        "clients that keep one agent connection lose the agent whenever a binding fails";
    struct transport *t = NULL;
    struct key *hostkey = NULL;
    enum bind_support support;
    struct exchange x;
    bool ok, alive;
    int err, type;

    exchange_init(&x);
    if ((err = key_generate(KEY_ED25519, 0, &hostkey)) != 0)
        goto out;
    if ((err = probe_bind_support(opt, hostkey, res, &support)) != 0 || support != BIND_SUPPORTED)
        goto out;
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    if ((err = send_session_bind(t, opt, "session-bind with a bad signature", hostkey, false, true,
                                 &x)) != 0)
        goto out;
    type = reply_type(&x);
    if (type == SSH_AGENT_SUCCESS) {
        set_fail(res, NULL, &x,
                 "the host key's signature over the session id did not verify, yet the agent "
                 "accepted the binding: anyone who can reach the socket can forge bindings and "
                 "defeat destination constraints");
        goto out;
    }
    if (!is_failure_reply(type)) {
        fail_lost(res, NULL, &x, "a session-bind with a bad signature", consequence);
        goto out;
    }
    if ((err = check_alive(t, opt, &x, "a session-bind with a bad signature", consequence, res,
                           &alive)) != 0 ||
        !alive)
        goto out;
    set_verdict(res, PROBE_PASS, "refused with %d (%s); the connection stayed alive", type,
                reply_name(type));
out:
    transport_close(t);
    key_free(hostkey);
    exchange_free(&x);
    return err;
}

static int check_bind_limit(const struct probe_options *opt, struct probe_result *res)
{
    static const char *const consequence =
        "a client forwarding the agent to many hosts over one connection loses the agent";
    struct transport *t = NULL;
    struct key *hostkey = NULL;
    struct exchange x;
    char label[96];
    bool ok, alive;
    int err, type, i;

    exchange_init(&x);
    if ((err = key_generate(KEY_ED25519, 0, &hostkey)) != 0)
        goto out;
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    for (i = 1; i <= PROBE_BINDINGS_MAX; i++) {
        snprintf(label, sizeof(label), "forwarding session-bind #%d", i);
        if ((err = send_session_bind(t, opt, label, hostkey, true, false, &x)) != 0)
            goto out;
        if (i == 1 && first_bind_outcome(&x, res) != BIND_SUPPORTED)
            goto out;
        if (reply_type(&x) < 0) {
            fail_lost(res, NULL, &x, "a forwarding session-bind", consequence);
            goto out;
        }
        if (reply_type(&x) != SSH_AGENT_SUCCESS || x.raw.len != 5) {
            set_fail(res, NULL, &x,
                     "binding #%d of %d was not accepted: OpenSSH records %d forwarding "
                     "bindings per connection, so forwarding chains that work with it break",
                     i, PROBE_BINDINGS_MAX, PROBE_BINDINGS_MAX);
            goto out;
        }
    }
    snprintf(label, sizeof(label), "forwarding session-bind #%d", PROBE_BINDINGS_MAX + 1);
    if ((err = send_session_bind(t, opt, label, hostkey, true, false, &x)) != 0)
        goto out;
    type = reply_type(&x);
    if (type == SSH_AGENT_SUCCESS) {
        set_fail(res, NULL, &x,
                 "the agent reported success for a binding past the %d-per-connection limit; "
                 "either it keeps unbounded state per connection or it claims a binding it "
                 "did not record, and destination constraints are then checked against the "
                 "wrong host",
                 PROBE_BINDINGS_MAX);
        goto out;
    }
    if (!is_failure_reply(type)) {
        fail_lost(res, NULL, &x, "a refused 17th binding", consequence);
        goto out;
    }
    if ((err = check_alive(t, opt, &x, "a refused 17th binding", consequence, res, &alive)) != 0 ||
        !alive)
        goto out;
    set_verdict(res, PROBE_PASS,
                "%d forwarding bindings accepted, the 17th refused with %d (%s); the connection "
                "stayed alive",
                PROBE_BINDINGS_MAX, type, reply_name(type));
out:
    transport_close(t);
    key_free(hostkey);
    exchange_free(&x);
    return err;
}

/*
 * Sends one message that the agent must answer with exactly
 * SSH_AGENT_FAILURE, then proves the connection is alive.
 */
static int expect_plain_failure(const struct probe_options *opt, const char *label,
                                const struct wire_writer *body, const char *what,
                                const char *consequence, struct probe_result *res)
{
    struct transport *t = NULL;
    struct exchange x;
    bool ok, alive;
    int err, type;

    exchange_init(&x);
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    if ((err = exchange_msg(t, opt, label, body, &x)) != 0)
        goto out;
    type = reply_type(&x);
    if (type == SSH_AGENT_EXTENSION_FAILURE) {
        set_fail(res, NULL, &x,
                 "RFC 9987 answers %s with SSH_AGENT_FAILURE (5); EXTENSION_FAILURE (28) means "
                 "\"a known extension failed\", so a client is told the agent has something it "
                 "lacks",
                 what);
        goto out;
    }
    if (type != SSH_AGENT_FAILURE) {
        if (type >= 0)
            set_fail(res, NULL, &x, "%s must be answered with SSH_AGENT_FAILURE (5): %s", what,
                     consequence);
        else
            fail_lost(res, NULL, &x, what, consequence);
        goto out;
    }
    if ((err = check_alive(t, opt, &x, what, consequence, res, &alive)) != 0 || !alive)
        goto out;
    set_verdict(res, PROBE_PASS, "answered 5 (SSH_AGENT_FAILURE); the connection stayed alive");
out:
    transport_close(t);
    exchange_free(&x);
    return err;
}

static int check_unknown_message(const struct probe_options *opt, struct probe_result *res)
{
    struct wire_writer body;
    int err;

    wire_writer_init(&body);
    wire_put_u8(&body, PROBE_UNKNOWN_TYPE);
    err = expect_plain_failure(opt, "message type 200", &body, "an unknown message type",
                               "clients trying newer protocol messages lose the agent", res);
    wire_writer_free(&body);
    return err;
}

static int check_unknown_extension(const struct probe_options *opt, struct probe_result *res)
{
    struct wire_writer body;
    int err;

    wire_writer_init(&body);
    wire_put_u8(&body, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&body, PROBE_UNKNOWN_EXTENSION);
    err = expect_plain_failure(opt, "extension \"" PROBE_UNKNOWN_EXTENSION "\"", &body,
                               "an unknown extension",
                               "clients that try an extension the agent lacks (as ssh does "
                               "with session-bind) lose the agent",
                               res);
    wire_writer_free(&body);
    return err;
}

/*
 * ADD_SMARTCARD_KEY for a module that cannot exist (a random name in a
 * directory that does not exist): every agent, with or without PKCS#11,
 * must refuse it, and keep the connection.
 */
static int check_smartcard_missing(const struct probe_options *opt, struct probe_result *res)
{
    struct wire_writer body;
    uint8_t rnd[8];
    char path[96];
    size_t i;
    int err;

    if ((err = random_bytes(rnd, sizeof(rnd))) != 0)
        return err;
    snprintf(path, sizeof(path), "/nonexistent-keyward-probe/");
    for (i = 0; i < sizeof(rnd); i++)
        text_add(path, sizeof(path), "%02x", rnd[i]);
    text_add(path, sizeof(path), ".so");
    wire_writer_init(&body);
    wire_put_u8(&body, SSH_AGENTC_ADD_SMARTCARD_KEY);
    wire_put_cstring(&body, path);
    wire_put_cstring(&body, "");
    err = expect_plain_failure(opt, "ADD_SMARTCARD_KEY of a module that does not exist", &body,
                               "a smartcard add of a missing module",
                               "a client whose PKCS#11 module is missing or mistyped loses the "
                               "agent",
                               res);
    wire_writer_free(&body);
    return err;
}

/*
 * A FIDO key (sk-ssh-ed25519@openssh.com, made here: a random key handle
 * no authenticator knows) added with an sk-provider@openssh.com constraint
 * naming a library that does not exist: OpenSSH's agent refuses it (its
 * realpath fails), and so must any agent, with the connection kept. An
 * agent that took it would hold a key nothing can sign with; modifies, so
 * --no-modify skips it.
 */
static int check_sk_missing_provider(const struct probe_options *opt, struct probe_result *res)
{
    struct wire_writer body;
    struct key *k = NULL;
    uint8_t rnd[8];
    char path[96];
    size_t i;
    int err;

    wire_writer_init(&body);
    if ((err = random_bytes(rnd, sizeof(rnd))) != 0 ||
        (err = key_generate(KEY_SK_ED25519, 0, &k)) != 0)
        goto out;
    snprintf(path, sizeof(path), "/nonexistent-keyward-probe/");
    for (i = 0; i < sizeof(rnd); i++)
        text_add(path, sizeof(path), "%02x", rnd[i]);
    text_add(path, sizeof(path), ".so");
    wire_put_u8(&body, SSH_AGENTC_ADD_ID_CONSTRAINED);
    if ((err = key_private_serialize(k, &body)) != 0)
        goto out;
    wire_put_cstring(&body, PROBE_KEY_COMMENT);
    wire_put_u8(&body, SSH_AGENT_CONSTRAIN_EXTENSION);
    wire_put_cstring(&body, "sk-provider@openssh.com");
    wire_put_cstring(&body, path);
    err =
        expect_plain_failure(opt, "ADD_ID_CONSTRAINED of a FIDO key whose provider does not exist",
                             &body, "a FIDO key added with a missing provider",
                             "a client whose FIDO middleware is missing or mistyped loses the "
                             "agent",
                             res);
out:
    key_free(k);
    wire_writer_free(&body);
    return err;
}

static int check_empty_message(const struct probe_options *opt, struct probe_result *res)
{
    struct wire_writer body;
    int err;

    /* A frame of length 0: trustworthy framing, but no message type. */
    wire_writer_init(&body);
    err = expect_plain_failure(opt, "empty message (frame length 0)", &body, "an empty message",
                               "a client that sends one loses its connection or waits forever, "
                               "and the agent may read the next request out of step",
                               res);
    wire_writer_free(&body);
    return err;
}

static int check_query(const struct probe_options *opt, struct probe_result *res)
{
    static const char *const consequence = "clients that ask which extensions exist lose the agent";
    struct transport *t = NULL;
    struct wire_writer body;
    struct wire_reader r;
    struct wire_view name;
    struct exchange x;
    char names[PROBE_TEXT_MAX / 2];
    bool ok, alive, first = true;
    int err, type;

    exchange_init(&x);
    wire_writer_init(&body);
    names[0] = '\0';
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    wire_put_u8(&body, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&body, EXT_QUERY);
    if ((err = exchange_msg(t, opt, "extension \"query\"", &body, &x)) != 0)
        goto out;
    type = reply_type(&x);
    if (type < 0) {
        fail_lost(res, NULL, &x, "a query extension request", consequence);
        goto out;
    }
    if (type != SSH_AGENT_EXTENSION_RESPONSE && type != SSH_AGENT_SUCCESS &&
        !is_failure_reply(type)) {
        set_fail(res, NULL, &x,
                 "query must be answered with EXTENSION_RESPONSE (29) or, by an agent without "
                 "it, a failure reply; a client misreads reply %d",
                 type);
        goto out;
    }
    if (type == SSH_AGENT_EXTENSION_RESPONSE || type == SSH_AGENT_SUCCESS) {
        /* RFC 9987: the reply repeats the name "query", then lists the names. */
        wire_reader_from_view(&r, reply_rest(&x));
        while (wire_remaining(&r) > 0 && r.error == 0) {
            name = wire_get_string(&r);
            if (r.error != 0)
                break;
            if (first && type == SSH_AGENT_EXTENSION_RESPONSE &&
                wire_view_eq_str(name, EXT_QUERY)) {
                first = false;
                continue;
            }
            first = false;
            add_printable(names, sizeof(names), names[0] ? ", " : "", name);
        }
        if (wire_reader_finish(&r) != 0) {
            set_fail(res, NULL, &x,
                     "the query reply is not a list of strings: clients that parse it fail");
            goto out;
        }
    }
    if ((err = check_alive(t, opt, &x, "a query extension request", consequence, res, &alive)) !=
            0 ||
        !alive)
        goto out;
    if (is_failure_reply(type))
        set_verdict(res, PROBE_UNSUPPORTED, "answered %d (%s); the connection stayed alive", type,
                    reply_name(type));
    else
        set_verdict(res, PROBE_PASS, "%s: %s",
                    type == SSH_AGENT_SUCCESS ? "answered SUCCESS (6), as early drafts did"
                                              : "answered 29 (EXTENSION_RESPONSE)",
                    names[0] ? names : "(no names)");
out:
    transport_close(t);
    wire_writer_free(&body);
    exchange_free(&x);
    return err;
}

static int check_extension_framing(const struct probe_options *opt, struct probe_result *res)
{
    static const uint8_t expected[] = {0x00, 0x00, 0x00, 0x01, SSH_AGENT_SUCCESS};
    static const uint8_t windows_form[] = {
        0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01, SSH_AGENT_SUCCESS};
    struct transport *t = NULL;
    struct key *hostkey = NULL;
    struct exchange x, extra;
    bool ok;
    int err, type, wait_ms;

    exchange_init(&x);
    exchange_init(&extra);
    if ((err = key_generate(KEY_ED25519, 0, &hostkey)) != 0)
        goto out;
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    if ((err = send_session_bind(t, opt, "session-bind (authentication)", hostkey, false, false,
                                 &x)) != 0)
        goto out;
    type = reply_type(&x);
    if (x.recv_st == TRANSPORT_OK && x.raw.len == sizeof(windows_form) &&
        memcmp(x.raw.buf, windows_form, sizeof(windows_form)) == 0) {
        set_fail(res, NULL, &x,
                 "the success reply carries an extra length field (00000005 00000001 06, as "
                 "the Windows port sends): a client reads message type 0 instead of SUCCESS "
                 "and treats the binding as failed or the stream as corrupt");
        goto out;
    }
    if (is_failure_reply(type) && x.raw.len == 5) {
        set_verdict(res, PROBE_UNSUPPORTED,
                    "session-bind refused with %d (%s), so no extension success reply to "
                    "inspect",
                    type, reply_name(type));
        goto out;
    }
    if (type < 0 && x.raw.len == 0) {
        fail_lost(res, NULL, &x, "a valid session-bind",
                  "ssh sends session-bind on every connection, so clients lose the agent");
        goto out;
    }
    if (x.recv_st != TRANSPORT_OK || x.raw.len != sizeof(expected) ||
        memcmp(x.raw.buf, expected, sizeof(expected)) != 0) {
        set_fail(res, NULL, &x,
                 "an extension's success reply must be exactly one frame 00000001 06; clients "
                 "read another byte as the message type and lose step with the agent");
        goto out;
    }
    /* Exactly one frame: nothing may follow it (a doubled or padded reply). */
    wait_ms = opt->timeout_ms < EXTRA_BYTES_WAIT_MS ? opt->timeout_ms : EXTRA_BYTES_WAIT_MS;
    if ((err = transport_recv_frame(t, wait_ms, WIRE_MAX_MESSAGE, &extra.raw, &extra.recv_st)) != 0)
        goto out;
    if (extra.raw.len > 0) {
        wire_put_bytes(&x.raw, extra.raw.buf, extra.raw.len);
        set_fail(res, NULL, &x,
                 "bytes followed the success reply before any new request: a client takes "
                 "them as the reply to its next request");
        goto out;
    }
    set_verdict(res, PROBE_PASS, "success reply is exactly 00000001 06");
out:
    transport_close(t);
    key_free(hostkey);
    exchange_free(&x);
    exchange_free(&extra);
    return err;
}

/* True if an IDENTITIES_ANSWER lists this key blob. */
static bool list_has_key(const struct exchange *x, const struct key *k)
{
    struct wire_reader r;
    struct wire_view blob;
    uint32_t n, i;

    if (reply_type(x) != SSH_AGENT_IDENTITIES_ANSWER)
        return false;
    wire_reader_from_view(&r, reply_rest(x));
    n = wire_get_u32(&r);
    for (i = 0; i < n && r.error == 0; i++) {
        blob = wire_get_string(&r);
        (void)wire_get_string(&r); /* comment */
        if (r.error == 0 && wire_view_eq(blob, k->blob, k->blob_len))
            return true;
    }
    return false;
}

/* ADD_IDENTITY of a throwaway key with the probe's comment. */
/* Room for throwaway_passphrase(): "probe-" and 24 hex digits. */
#define PROBE_PASS_SIZE 40

/* A lock passphrase nobody else knows, shown only if the agent stays locked. */
static int throwaway_passphrase(char *pass, size_t size)
{
    uint8_t rnd[12];
    size_t i;
    int err;

    if ((err = random_bytes(rnd, sizeof(rnd))) != 0)
        return err;
    snprintf(pass, size, "probe-");
    for (i = 0; i < sizeof(rnd); i++)
        text_add(pass, size, "%02x", rnd[i]);
    return 0;
}

/* A check that locked the agent and could not unlock it says how to. */
static void note_left_locked(struct probe_result *res, const char *pass)
{
    text_add(res->why, sizeof(res->why),
             "%sthe agent may be left LOCKED: unlock it with ssh-add -X, passphrase %s",
             res->why[0] ? "; " : "", pass);
}

static int add_throwaway(struct transport *t, const struct probe_options *opt, const char *label,
                         const struct key *k, struct exchange *x)
{
    struct wire_writer body;
    int err;

    wire_writer_init(&body);
    wire_put_u8(&body, SSH_AGENTC_ADD_IDENTITY);
    if ((err = key_private_serialize(k, &body)) != 0)
        goto out;
    wire_put_cstring(&body, PROBE_KEY_COMMENT);
    err = exchange_msg(t, opt, label, &body, x);
out:
    wire_writer_free(&body);
    return err;
}

/*
 * Removes a key the probe added, by its blob, on a fresh connection (the
 * check's own connection may be dead). Only ever this key: the user's keys
 * are never touched. A refusal turns a pass into a FAIL.
 */
static int remove_throwaway(const struct probe_options *opt, const struct key *k,
                            struct probe_result *res)
{
    struct transport *t = NULL;
    struct wire_writer body;
    struct exchange x;
    int err;

    exchange_init(&x);
    wire_writer_init(&body);
    if ((err = transport_connect(opt->address, opt->timeout_ms, &t, NULL, 0)) != 0) {
        /* The check has already said why the agent is unreachable. */
        err = err == KW_ERR_ALLOC ? err : 0;
        goto out;
    }
    wire_put_u8(&body, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&body, k->blob, k->blob_len);
    if ((err = exchange_msg(t, opt, "REMOVE_IDENTITY of the throwaway key", &body, &x)) != 0)
        goto out;
    if (reply_type(&x) != SSH_AGENT_SUCCESS && res->verdict == PROBE_PASS)
        set_fail(res, NULL, &x,
                 "the agent would not remove the throwaway key the probe added; remove it "
                 "with ssh-add -d (comment \"" PROBE_KEY_COMMENT "\")");
out:
    transport_close(t);
    wire_writer_free(&body);
    exchange_free(&x);
    return err;
}

static int check_lock_unlock(const struct probe_options *opt, struct probe_result *res)
{
    static const char *const consequence =
        "a long-lived client that locks or unlocks the agent (a desktop session, ssh-add -x) "
        "loses its connection";
    struct transport *t = NULL;
    struct key *k = NULL;
    struct wire_writer body;
    struct exchange add, lock, unlock, list;
    char pass[PROBE_PASS_SIZE];
    bool ok, alive, added = false, locked = false, shown_locked;
    int err, type;

    exchange_init(&add);
    exchange_init(&lock);
    exchange_init(&unlock);
    exchange_init(&list);
    wire_writer_init(&body);
    if ((err = throwaway_passphrase(pass, sizeof(pass))) != 0)
        goto out;
    if ((err = key_generate(KEY_ED25519, 0, &k)) != 0)
        goto out;
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;

    /*
     * A key of our own makes "unlocked afterwards" observable: a locked
     * agent hides its keys, an unlocked one lists them. If the agent will
     * not take it, the lock round trip is still checked.
     */
    if ((err = add_throwaway(t, opt, "ADD_IDENTITY of a throwaway Ed25519 key", k, &add)) != 0)
        goto out;
    type = reply_type(&add);
    if (type == SSH_AGENT_SUCCESS) {
        added = true;
    } else if (type != SSH_AGENT_FAILURE) {
        added = true; /* it may be there all the same */
        if (type >= 0)
            set_fail(res, NULL, &add, "ADD_IDENTITY must be answered with SUCCESS or FAILURE");
        else
            fail_lost(res, NULL, &add, "ADD_IDENTITY", "clients lose the agent when adding keys");
        goto out;
    }

    wire_put_u8(&body, SSH_AGENTC_LOCK);
    wire_put_cstring(&body, pass);
    if ((err = exchange_msg(t, opt, "LOCK with a throwaway passphrase", &body, &lock)) != 0)
        goto out;
    type = reply_type(&lock);
    if (type == SSH_AGENT_SUCCESS) {
        locked = true;
    } else if (type != SSH_AGENT_FAILURE) {
        if (type >= 0)
            set_fail(res, NULL, &lock, "LOCK must be answered with SUCCESS or FAILURE: %s",
                     consequence);
        else
            fail_lost(res, NULL, &lock, "LOCK", consequence);
        goto out;
    }
    if ((err = expect_alive(t, opt, &lock, locked ? "LOCK" : "a refused LOCK", consequence, res,
                            &list, &alive)) != 0 ||
        !alive)
        goto out;
    if (!locked) {
        set_verdict(res, PROBE_UNSUPPORTED,
                    "LOCK refused with 5 (SSH_AGENT_FAILURE), perhaps already locked; the "
                    "connection stayed alive");
        goto out;
    }
    shown_locked = added && list_has_key(&list, k);

    wire_writer_reset(&body);
    wire_put_u8(&body, SSH_AGENTC_UNLOCK);
    wire_put_cstring(&body, pass);
    if ((err = exchange_msg(t, opt, "UNLOCK with the same passphrase", &body, &unlock)) != 0)
        goto out;
    type = reply_type(&unlock);
    if (type == SSH_AGENT_SUCCESS) {
        locked = false;
    } else {
        if (type >= 0)
            set_fail(res, &lock, &unlock, "UNLOCK with the right passphrase was refused");
        else
            fail_lost(res, &lock, &unlock, "UNLOCK", consequence);
        goto out;
    }
    if ((err = expect_alive(t, opt, &unlock, "UNLOCK", consequence, res, &list, &alive)) != 0 ||
        !alive)
        goto out;
    if (added && !list_has_key(&list, k)) {
        set_fail(res, &unlock, &list,
                 "after a successful UNLOCK the throwaway key is not listed: the agent is "
                 "still locked or lost its keys");
        goto out;
    }
    if (added)
        set_verdict(res, PROBE_PASS,
                    "LOCK and UNLOCK answered SUCCESS; a throwaway key was %s while locked and "
                    "listed again after UNLOCK",
                    shown_locked ? "STILL LISTED" : "hidden");
    else
        set_verdict(res, PROBE_PASS,
                    "LOCK and UNLOCK answered SUCCESS (the agent refused a throwaway key, so "
                    "the unlocked state was not confirmed by a listing)");
out:
    if (locked)
        note_left_locked(res, pass);
    if (added && err == 0)
        err = remove_throwaway(opt, k, res);
    transport_close(t);
    key_free(k);
    wire_writer_free(&body);
    exchange_free(&add);
    exchange_free(&lock);
    exchange_free(&unlock);
    exchange_free(&list);
    return err;
}

/*
 * session-bind while the agent is locked. OpenSSH 10.5+ (and keyward)
 * accept it, so that ssh can bind its connection before the user unlocks;
 * earlier OpenSSH refuses every extension while locked. Either answer is
 * clean as long as the connection stays: refusing is "not supported".
 */
static int check_bind_while_locked(const struct probe_options *opt, struct probe_result *res)
{
    static const char *const consequence =
        "clients that keep one agent connection lose the agent while it is locked";
    struct transport *t = NULL;
    struct key *hostkey = NULL;
    struct wire_writer body;
    struct exchange lock, bind, unlock, list;
    char pass[PROBE_PASS_SIZE];
    bool ok, alive, locked = false;
    int err, type, bind_type;

    exchange_init(&lock);
    exchange_init(&bind);
    exchange_init(&unlock);
    exchange_init(&list);
    wire_writer_init(&body);
    if ((err = throwaway_passphrase(pass, sizeof(pass))) != 0)
        goto out;
    if ((err = key_generate(KEY_ED25519, 0, &hostkey)) != 0)
        goto out;
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;

    wire_put_u8(&body, SSH_AGENTC_LOCK);
    wire_put_cstring(&body, pass);
    if ((err = exchange_msg(t, opt, "LOCK with a throwaway passphrase", &body, &lock)) != 0)
        goto out;
    type = reply_type(&lock);
    if (type != SSH_AGENT_SUCCESS) {
        if (type == SSH_AGENT_FAILURE)
            set_verdict(res, PROBE_UNSUPPORTED,
                        "LOCK refused with 5 (SSH_AGENT_FAILURE), perhaps already locked: "
                        "session-bind while locked not tried");
        else if (type >= 0)
            set_fail(res, NULL, &lock, "LOCK must be answered with SUCCESS or FAILURE: %s",
                     consequence);
        else
            fail_lost(res, NULL, &lock, "LOCK", consequence);
        goto out;
    }
    locked = true;

    if ((err = send_session_bind(t, opt, "session-bind (authentication) while locked", hostkey,
                                 false, false, &bind)) != 0)
        goto out;
    bind_type = reply_type(&bind);
    if (bind_type != SSH_AGENT_SUCCESS && !is_failure_reply(bind_type)) {
        if (bind_type >= 0)
            set_fail(res, &lock, &bind,
                     "a session-bind while locked must be answered with SUCCESS or a failure "
                     "reply");
        else
            fail_lost(res, &lock, &bind, "a session-bind while locked", consequence);
        goto out;
    }
    if ((err = expect_alive(t, opt, &bind, "a session-bind while locked", consequence, res, &list,
                            &alive)) != 0 ||
        !alive)
        goto out;

    wire_writer_reset(&body);
    wire_put_u8(&body, SSH_AGENTC_UNLOCK);
    wire_put_cstring(&body, pass);
    if ((err = exchange_msg(t, opt, "UNLOCK with the same passphrase", &body, &unlock)) != 0)
        goto out;
    if (reply_type(&unlock) != SSH_AGENT_SUCCESS) {
        if (reply_type(&unlock) >= 0)
            set_fail(res, &bind, &unlock, "UNLOCK with the right passphrase was refused");
        else
            fail_lost(res, &bind, &unlock, "UNLOCK", consequence);
        goto out;
    }
    locked = false;
    if (bind_type == SSH_AGENT_SUCCESS)
        set_verdict(res, PROBE_PASS,
                    "session-bind accepted while locked (as OpenSSH 10.5+); the connection "
                    "stayed, and UNLOCK worked");
    else
        set_verdict(res, PROBE_UNSUPPORTED,
                    "session-bind refused while locked with %d (%s), as OpenSSH before 10.5; "
                    "the connection stayed, and UNLOCK worked",
                    bind_type, reply_name(bind_type));
out:
    if (locked)
        note_left_locked(res, pass);
    transport_close(t);
    key_free(hostkey);
    wire_writer_free(&body);
    exchange_free(&lock);
    exchange_free(&bind);
    exchange_free(&unlock);
    exchange_free(&list);
    return err;
}

/* One malformed request: its label and its message body. */
struct bad_request {
    const char *label;
    struct wire_writer body;
    bool extension;        /* EXTENSION_FAILURE (28) is a fine answer too */
    const struct key *key; /* added if the agent accepts: remove by blob */
};

/*
 * Sends each malformed request on ONE connection, in order, each followed
 * by a list; every request must get a failure reply and the connection
 * must keep answering. Keys an agent wrongly accepted are removed.
 */
static int run_bad_requests(const struct probe_options *opt, struct bad_request *reqs, size_t n,
                            struct probe_result *res)
{
    static const char *const consequence =
        "one bad request from a buggy or hostile client costs that client its connection";
    struct transport *t = NULL;
    struct wire_writer body;
    struct exchange x, rm;
    bool ok, alive;
    size_t i;
    int err = 0, type;

    exchange_init(&x);
    exchange_init(&rm);
    wire_writer_init(&body);
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    for (i = 0; i < n; i++) {
        if ((err = exchange_msg(t, opt, reqs[i].label, &reqs[i].body, &x)) != 0)
            goto out;
        type = reply_type(&x);
        if (type == SSH_AGENT_SUCCESS && reqs[i].key != NULL) {
            /* Undo what a lax parser did: remove only the key we made. */
            wire_writer_reset(&body);
            wire_put_u8(&body, SSH_AGENTC_REMOVE_IDENTITY);
            wire_put_string(&body, reqs[i].key->blob, reqs[i].key->blob_len);
            if ((err = exchange_msg(t, opt, "REMOVE_IDENTITY of the throwaway key", &body, &rm)) !=
                0)
                goto out;
        }
        if (type == SSH_AGENT_FAILURE ||
            (reqs[i].extension && type == SSH_AGENT_EXTENSION_FAILURE)) {
            if ((err = check_alive(t, opt, &x, reqs[i].label, consequence, res, &alive)) != 0 ||
                !alive)
                goto out;
            continue;
        }
        if (type >= 0)
            set_fail(res, NULL, &x,
                     "a malformed request must be refused with a failure reply; answering %d "
                     "means the agent acted on bytes it did not understand",
                     type);
        else
            fail_lost(res, NULL, &x, reqs[i].label, consequence);
        goto out;
    }
    set_verdict(res, PROBE_PASS,
                "%zu malformed requests each refused with a failure reply; the connection "
                "stayed alive",
                n);
out:
    transport_close(t);
    wire_writer_free(&body);
    exchange_free(&x);
    exchange_free(&rm);
    return err;
}

static int check_malformed_requests(const struct probe_options *opt, struct probe_result *res)
{
    struct bad_request reqs[5];
    struct key *k = NULL;
    size_t i, mark, n = sizeof(reqs) / sizeof(reqs[0]);
    int err;

    memset(reqs, 0, sizeof(reqs));
    for (i = 0; i < n; i++)
        wire_writer_init(&reqs[i].body);
    if ((err = key_generate(KEY_ED25519, 0, &k)) != 0)
        goto out;

    /* A key blob that names a type but holds 3 bytes of key. */
    reqs[0].label = "SIGN_REQUEST with a bad key blob";
    wire_put_u8(&reqs[0].body, SSH_AGENTC_SIGN_REQUEST);
    mark = wire_begin_string(&reqs[0].body);
    wire_put_cstring(&reqs[0].body, "ssh-ed25519");
    wire_put_string(&reqs[0].body, "\x01\x02\x03", 3);
    wire_end_string(&reqs[0].body, mark);
    wire_put_cstring(&reqs[0].body, "keyward-probe");
    wire_put_u32(&reqs[0].body, 0);

    /* The key blob's length field runs 4 KiB past the end of the message. */
    reqs[1].label = "SIGN_REQUEST whose key blob length runs past the end";
    wire_put_u8(&reqs[1].body, SSH_AGENTC_SIGN_REQUEST);
    wire_put_u32(&reqs[1].body, 4096);
    wire_put_bytes(&reqs[1].body, k->blob, 8);

    /* A sign request cut off before its flags. */
    reqs[2].label = "SIGN_REQUEST truncated before its flags";
    wire_put_u8(&reqs[2].body, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&reqs[2].body, k->blob, k->blob_len);
    wire_put_cstring(&reqs[2].body, "keyward-probe");

    /* A remove for a key nobody holds, with bytes after the blob. */
    reqs[3].label = "REMOVE_IDENTITY with trailing bytes";
    wire_put_u8(&reqs[3].body, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&reqs[3].body, k->blob, k->blob_len);
    wire_put_bytes(&reqs[3].body, "\x00\x00\x00", 3);

    /* An extension whose name length is far past the end. */
    reqs[4].label = "EXTENSION whose name length runs past the end";
    reqs[4].extension = true;
    wire_put_u8(&reqs[4].body, SSH_AGENTC_EXTENSION);
    wire_put_u32(&reqs[4].body, 0x7fffffff);
    wire_put_bytes(&reqs[4].body, "query", 5);

    err = run_bad_requests(opt, reqs, n, res);
out:
    for (i = 0; i < n; i++)
        wire_writer_free(&reqs[i].body);
    key_free(k);
    return err;
}

static int check_malformed_add(const struct probe_options *opt, struct probe_result *res)
{
    struct bad_request reqs[3];
    struct key *keys[3] = {NULL, NULL, NULL};
    struct wire_writer ser;
    struct wire_reader r;
    struct wire_view pk;
    size_t i, n = sizeof(reqs) / sizeof(reqs[0]);
    int err;

    memset(reqs, 0, sizeof(reqs));
    wire_writer_init(&ser);
    for (i = 0; i < n; i++)
        wire_writer_init(&reqs[i].body);
    /* A fresh key per request, so a wrongly accepted one is removed by its own blob. */
    for (i = 0; i < n; i++) {
        if ((err = key_generate(KEY_ED25519, 0, &keys[i])) != 0)
            goto out;
        reqs[i].key = keys[i];
    }

    /* Cut inside the private key field. */
    reqs[0].label = "ADD_IDENTITY truncated inside the private key";
    if ((err = key_private_serialize(keys[0], &ser)) != 0)
        goto out;
    wire_put_u8(&reqs[0].body, SSH_AGENTC_ADD_IDENTITY);
    wire_put_bytes(&reqs[0].body, ser.buf, ser.len - 40);

    /* An Ed25519 private key of 10 bytes instead of 64. */
    reqs[1].label = "ADD_IDENTITY with a bad private key";
    wire_writer_reset(&ser);
    if ((err = key_private_serialize(keys[1], &ser)) != 0)
        goto out;
    wire_reader_init(&r, ser.buf, ser.len);
    (void)wire_get_string(&r); /* key type */
    pk = wire_get_string(&r);
    if ((err = r.error) != 0)
        goto out;
    wire_put_u8(&reqs[1].body, SSH_AGENTC_ADD_IDENTITY);
    wire_put_cstring(&reqs[1].body, key_type_name(keys[1]));
    wire_put_view(&reqs[1].body, pk);
    wire_put_string(&reqs[1].body, "0123456789", 10);
    wire_put_cstring(&reqs[1].body, PROBE_KEY_COMMENT);

    /* A whole, valid add with one stray byte after the comment. */
    reqs[2].label = "ADD_IDENTITY with a trailing byte";
    wire_writer_reset(&ser);
    if ((err = key_private_serialize(keys[2], &ser)) != 0)
        goto out;
    wire_put_u8(&reqs[2].body, SSH_AGENTC_ADD_IDENTITY);
    wire_put_bytes(&reqs[2].body, ser.buf, ser.len);
    wire_put_cstring(&reqs[2].body, PROBE_KEY_COMMENT);
    wire_put_u8(&reqs[2].body, 0);

    err = run_bad_requests(opt, reqs, n, res);
out:
    for (i = 0; i < n; i++) {
        wire_writer_free(&reqs[i].body);
        key_free(keys[i]);
    }
    wire_writer_free(&ser);
    return err;
}

static int check_oversized_frame(const struct probe_options *opt, struct probe_result *res)
{
    struct transport *t = NULL, *t2 = NULL;
    struct exchange x;
    bool ok, alive;
    int err;

    exchange_init(&x);
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    /*
     * A header one byte over the limit, then that many bytes (a list request
     * and zeros), so an agent that reads on instead of closing gets a whole
     * frame to answer.
     */
    wire_put_u32(&x.sent, WIRE_MAX_MESSAGE + 1);
    wire_put_u8(&x.sent, SSH_AGENTC_REQUEST_IDENTITIES);
    while (x.sent.len < 4 + WIRE_MAX_MESSAGE + 1 && x.sent.error == 0)
        wire_put_u8(&x.sent, 0);
    if ((err = exchange_frame(t, opt, "frame of 256 KiB + 1 bytes", &x)) != 0)
        goto out;
    if (x.recv_st != TRANSPORT_CLOSED || x.raw.len != 0) {
        set_fail(res, NULL, &x,
                 "a frame over the protocol's 256 KiB limit must close the connection (its "
                 "framing can no longer be trusted); an agent that reads on lets one client "
                 "make it buffer without bound");
        goto out;
    }
    /* The bad client must not have cost anyone else the agent. */
    if ((err = open_conn(opt, "a new connection after the oversized frame", &t2, res, &ok)) != 0 ||
        !ok)
        goto out;
    if ((err = check_alive(t2, opt, &x, "an oversized frame on another connection",
                           "one bad client took the agent away from every other client", res,
                           &alive)) != 0 ||
        !alive)
        goto out;
    set_verdict(res, PROBE_PASS, "the connection was closed; a new connection was served");
out:
    transport_close(t);
    transport_close(t2);
    exchange_free(&x);
    return err;
}

/* Signs with one flag and checks the algorithm and the signature itself. */
static int sign_and_verify(struct transport *t, const struct probe_options *opt,
                           const struct key *k, uint32_t flags, const char *want_alg,
                           struct probe_result *res, bool *ok)
{
    struct wire_writer body;
    struct wire_reader r;
    struct wire_view sig;
    struct exchange x;
    uint8_t data[64];
    char label[64], alg[64];
    int err, type;

    *ok = false;
    exchange_init(&x);
    wire_writer_init(&body);
    if ((err = random_bytes(data, sizeof(data))) != 0)
        goto out;
    wire_put_u8(&body, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&body, k->blob, k->blob_len);
    wire_put_string(&body, data, sizeof(data));
    wire_put_u32(&body, flags);
    snprintf(label, sizeof(label), "SIGN_REQUEST with flags 0x%x (%s)", flags, want_alg);
    if ((err = exchange_msg(t, opt, label, &body, &x)) != 0)
        goto out;
    type = reply_type(&x);
    if (type != SSH_AGENT_SIGN_RESPONSE) {
        if (type >= 0)
            set_fail(res, NULL, &x, "the agent would not sign with its own freshly added key");
        else
            fail_lost(res, NULL, &x, "a sign request", "clients lose the agent while signing");
        goto out;
    }
    wire_reader_from_view(&r, reply_rest(&x));
    sig = wire_get_string(&r);
    if (wire_reader_finish(&r) != 0 ||
        key_signature_algorithm(sig.ptr, sig.len, alg, sizeof(alg)) != 0) {
        set_fail(res, NULL, &x, "the SIGN_RESPONSE does not hold a signature blob");
        goto out;
    }
    if (strcmp(alg, want_alg) != 0) {
        set_fail(res, NULL, &x,
                 "asked for %s, got a \"%s\" signature: servers that refuse SHA-1 (OpenSSH "
                 "since 8.8) reject the login",
                 want_alg, alg);
        goto out;
    }
    if (key_verify(k, sig.ptr, sig.len, data, sizeof(data)) != 0) {
        set_fail(res, NULL, &x, "the %s signature does not verify with the key's public half", alg);
        goto out;
    }
    *ok = true;
out:
    wire_writer_free(&body);
    exchange_free(&x);
    return err;
}

static int check_rsa_sha2(const struct probe_options *opt, struct probe_result *res)
{
    struct transport *t = NULL;
    struct key *k = NULL;
    struct exchange x;
    bool ok, added = false;
    int err, type;

    exchange_init(&x);
    if ((err = key_generate(KEY_RSA, PROBE_RSA_BITS, &k)) != 0)
        goto out;
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    if ((err = add_throwaway(t, opt, "ADD_IDENTITY of a throwaway RSA key", k, &x)) != 0)
        goto out;
    type = reply_type(&x);
    if (is_failure_reply(type)) {
        set_verdict(res, PROBE_UNSUPPORTED, "adding a throwaway %d-bit RSA key was refused (%d)",
                    PROBE_RSA_BITS, type);
        goto out;
    }
    /* Past here the key may be in the agent, even if the reply was odd. */
    added = true;
    if (type != SSH_AGENT_SUCCESS) {
        if (type >= 0)
            set_fail(res, NULL, &x, "ADD_IDENTITY must be answered with SUCCESS or FAILURE");
        else
            fail_lost(res, NULL, &x, "ADD_IDENTITY", "clients lose the agent when adding keys");
        goto out;
    }
    if ((err = sign_and_verify(t, opt, k, KEY_SIGN_RSA_SHA2_256, "rsa-sha2-256", res, &ok)) != 0 ||
        !ok)
        goto out;
    if ((err = sign_and_verify(t, opt, k, KEY_SIGN_RSA_SHA2_512, "rsa-sha2-512", res, &ok)) != 0 ||
        !ok)
        goto out;
    set_verdict(res, PROBE_PASS, "rsa-sha2-256 and rsa-sha2-512 signatures verified");
out:
    if (added && err == 0)
        err = remove_throwaway(opt, k, res);
    transport_close(t);
    key_free(k);
    exchange_free(&x);
    return err;
}

/*
 * LOCK and UNLOCK without their passphrase string. An agent that treats a
 * parse error here as fatal exits, taking every key with it, which is why
 * this check runs only when named.
 */
static int check_malformed_lock(const struct probe_options *opt, struct probe_result *res)
{
    static const char *const consequence =
        "one malformed request from any client costs that client its connection";
    static const uint8_t kinds[] = {SSH_AGENTC_LOCK, SSH_AGENTC_UNLOCK};
    struct transport *t = NULL, *t2 = NULL;
    struct wire_writer body;
    struct exchange x, undo;
    char label[64], why[256], phrase[128];
    bool ok, alive;
    size_t i;
    int err = 0, type;

    exchange_init(&x);
    exchange_init(&undo);
    wire_writer_init(&body);
    if ((err = open_conn(opt, "a connection", &t, res, &ok)) != 0 || !ok)
        goto out;
    for (i = 0; i < sizeof(kinds); i++) {
        snprintf(label, sizeof(label), "%s without a passphrase",
                 kinds[i] == SSH_AGENTC_LOCK ? "LOCK" : "UNLOCK");
        wire_writer_reset(&body);
        wire_put_u8(&body, kinds[i]);
        if ((err = exchange_msg(t, opt, label, &body, &x)) != 0)
            goto out;
        type = reply_type(&x);
        if (type == SSH_AGENT_FAILURE) {
            if ((err = check_alive(t, opt, &x, label, consequence, res, &alive)) != 0 || !alive)
                goto out;
            continue;
        }
        if (type == SSH_AGENT_SUCCESS && kinds[i] == SSH_AGENTC_LOCK) {
            /* It locked with some passphrase; an empty one is the likely guess. */
            wire_writer_reset(&body);
            wire_put_u8(&body, SSH_AGENTC_UNLOCK);
            wire_put_cstring(&body, "");
            if ((err = exchange_msg(t, opt, "UNLOCK with an empty passphrase", &body, &undo)) != 0)
                goto out;
            set_fail(res, NULL, &x, "the agent locked on a request without a passphrase%s",
                     reply_type(&undo) == SSH_AGENT_SUCCESS
                         ? " (an empty one; it was unlocked again)"
                         : "; it may be left LOCKED with a passphrase nobody chose");
            goto out;
        }
        if (type >= 0) {
            set_fail(res, NULL, &x, "a malformed %s must be refused with SSH_AGENT_FAILURE", label);
            goto out;
        }
        /* Dropping the connection is bad; a dead agent is far worse. */
        if (transport_connect(opt->address, opt->timeout_ms, &t2, why, sizeof(why)) != 0) {
            outcome_phrase(&x, phrase, sizeof(phrase));
            set_fail(res, NULL, &x,
                     "%s after %s, and the agent no longer accepts connections: its process is "
                     "gone, and every client has lost the agent and every key it held",
                     phrase, label);
            text_add(res->got, sizeof(res->got), "; then a new connection -> %s", why);
            goto out;
        }
        fail_lost(res, NULL, &x, label, consequence);
        goto out;
    }
    set_verdict(res, PROBE_PASS,
                "LOCK and UNLOCK without a passphrase each refused with 5; the connection stayed "
                "alive");
out:
    transport_close(t);
    transport_close(t2);
    wire_writer_free(&body);
    exchange_free(&x);
    exchange_free(&undo);
    return err;
}

static int check_concurrent(const struct probe_options *opt, struct probe_result *res)
{
    static const char *const consequence =
        "an agent serving many clients at once (editors, git, forwarded sessions) leaves some "
        "of them without an answer";
    struct transport **conns;
    struct wire_writer body;
    struct exchange x;
    char which[64];
    int64_t deadline, left;
    size_t i, answered = 0;
    bool ok;
    int err = 0;

    exchange_init(&x);
    wire_writer_init(&body);
    if ((conns = calloc(PROBE_CONCURRENT, sizeof(*conns))) == NULL) {
        err = KW_ERR_ALLOC;
        goto out;
    }
    /* All connections open at once before any request... */
    for (i = 0; i < PROBE_CONCURRENT; i++) {
        snprintf(which, sizeof(which), "connection %zu of %d", i + 1, PROBE_CONCURRENT);
        if ((err = open_conn(opt, which, &conns[i], res, &ok)) != 0 || !ok)
            goto out;
    }
    /* ...then a list request on each... */
    put_list_request(&body);
    wire_put_u32(&x.sent, (uint32_t)body.len);
    wire_put_bytes(&x.sent, body.buf, body.len);
    if ((err = x.sent.error) != 0)
        goto out;
    for (i = 0; i < PROBE_CONCURRENT; i++) {
        if ((err = transport_send(conns[i], x.sent.buf, x.sent.len, opt->timeout_ms, &x.send_st)) !=
            0)
            goto out;
        if (x.send_st != TRANSPORT_OK) {
            snprintf(x.label, sizeof(x.label), "REQUEST_IDENTITIES on connection %zu of %d", i + 1,
                     PROBE_CONCURRENT);
            x.timeout_ms = opt->timeout_ms;
            x.recv_st = x.send_st;
            fail_lost(res, NULL, &x, "opening many connections", consequence);
            goto out;
        }
    }
    /* ...then every reply, all within one timeout. */
    deadline = transport_now_ms() + opt->timeout_ms;
    for (i = 0; i < PROBE_CONCURRENT; i++) {
        left = deadline - transport_now_ms();
        x.timeout_ms = opt->timeout_ms;
        if ((err = transport_recv_frame(conns[i], left > 0 ? (int)left : 0, WIRE_MAX_MESSAGE,
                                        &x.raw, &x.recv_st)) != 0)
            goto out;
        if (reply_type(&x) == SSH_AGENT_IDENTITIES_ANSWER && list_count(&x) >= 0) {
            answered++;
            continue;
        }
        if (res->verdict != PROBE_FAIL) {
            snprintf(x.label, sizeof(x.label), "REQUEST_IDENTITIES on connection %zu of %d", i + 1,
                     PROBE_CONCURRENT);
            fail_lost(res, NULL, &x, "opening many connections", consequence);
        }
    }
    if (answered == PROBE_CONCURRENT)
        set_verdict(res, PROBE_PASS, "%zu of %d connections answered", answered, PROBE_CONCURRENT);
    else
        text_add(res->summary, sizeof(res->summary), " (%zu of %d answered)", answered,
                 PROBE_CONCURRENT);
out:
    if (conns != NULL) {
        for (i = 0; i < PROBE_CONCURRENT; i++)
            transport_close(conns[i]);
        free(conns);
    }
    wire_writer_free(&body);
    exchange_free(&x);
    return err;
}

const struct probe_check probe_checks[] = {
    {"rebind-keeps-connection",
     "a second session-bind after an authentication bind is refused and the connection lives",
     false, false, check_rebind},
    {"bind-bad-signature", "a session-bind with a bad host key signature is refused cleanly", false,
     false, check_bind_bad_signature},
    {"bind-limit", "16 forwarding bindings work, the 17th is refused and the connection lives",
     false, false, check_bind_limit},
    {"unknown-message", "an unknown message type gets SSH_AGENT_FAILURE (5), connection lives",
     false, false, check_unknown_message},
    {"unknown-extension", "an unknown extension gets SSH_AGENT_FAILURE (5), connection lives",
     false, false, check_unknown_extension},
    {"smartcard-missing-module",
     "ADD_SMARTCARD_KEY of a module that does not exist gets a failure, connection lives", false,
     false, check_smartcard_missing},
    {"sk-missing-provider",
     "a FIDO key added with a provider that does not exist gets a failure, connection lives", true,
     false, check_sk_missing_provider},
    {"empty-message", "a zero-length message gets SSH_AGENT_FAILURE (5), connection lives", false,
     false, check_empty_message},
    {"query", "the query extension lists extension names (29), or is refused cleanly", false, false,
     check_query},
    {"extension-reply-framing", "an extension's success reply is exactly one frame 00000001 06",
     false, false, check_extension_framing},
    {"lock-unlock", "LOCK and UNLOCK with a throwaway passphrase work or fail cleanly", true, false,
     check_lock_unlock},
    {"bind-while-locked",
     "a session-bind while locked is accepted (OpenSSH 10.5+) or refused cleanly", true, false,
     check_bind_while_locked},
    {"malformed-requests",
     "bad key blobs, overlong lengths, truncation, trailing bytes get failure replies", false,
     false, check_malformed_requests},
    {"malformed-add", "truncated, bad and over-long ADD_IDENTITY requests are refused cleanly",
     true, false, check_malformed_add},
    {"oversized-frame", "a frame over 256 KiB closes that connection; new connections work", false,
     false, check_oversized_frame},
    {"rsa-sha2-signatures",
     "a throwaway RSA key signs with rsa-sha2-256/512 as asked, and the signatures verify", true,
     false, check_rsa_sha2},
    {"concurrent-connections", "256 connections open at once each get an answer", false, false,
     check_concurrent},
    {"malformed-lock",
     "LOCK/UNLOCK without a passphrase are refused cleanly (can kill a defective agent)", true,
     true, check_malformed_lock},
};

const size_t probe_check_count = sizeof(probe_checks) / sizeof(probe_checks[0]);

const struct probe_check *probe_find_check(const char *name)
{
    size_t i;

    for (i = 0; i < probe_check_count; i++) {
        if (strcmp(probe_checks[i].name, name) == 0)
            return &probe_checks[i];
    }
    return NULL;
}

unsigned probe_max_connections(void)
{
    return PROBE_CONCURRENT + 4;
}

int probe_run_check(const struct probe_check *check, const struct probe_options *opt,
                    struct probe_result *res)
{
    int err;

    memset(res, 0, sizeof(*res));
    if (check->modifies && opt->no_modify) {
        set_verdict(res, PROBE_SKIPPED, "adds keys or locks the agent (--no-modify)");
        return 0;
    }
    /* A check that ends without a verdict is a bug in the check. */
    res->verdict = PROBE_ERROR;
    snprintf(res->summary, sizeof(res->summary), "the check reached no verdict");
    if ((err = check->run(opt, res)) != 0) {
        memset(res, 0, sizeof(*res));
        set_verdict(res, PROBE_ERROR, "the probe could not run this check: %s", kw_strerror(err));
    }
    return err;
}

const char *probe_verdict_label(enum probe_verdict v)
{
    switch (v) {
    case PROBE_PASS:
        return "pass";
    case PROBE_FAIL:
        return "FAIL";
    case PROBE_UNSUPPORTED:
        return "not supported";
    case PROBE_SKIPPED:
        return "skipped";
    case PROBE_ERROR:
        return "error";
    }
    return "error";
}

const char *probe_verdict_id(enum probe_verdict v)
{
    switch (v) {
    case PROBE_PASS:
        return "pass";
    case PROBE_FAIL:
        return "fail";
    case PROBE_UNSUPPORTED:
        return "unsupported";
    case PROBE_SKIPPED:
        return "skipped";
    case PROBE_ERROR:
        return "error";
    }
    return "error";
}
