/*
 * keyward hostile-client tests: a scripted client for the tests of the
 * server's state and timing (issue 22): requests pipelined in one write,
 * half-closes, resets with replies unread, floods.
 *
 *   hostile_script SOCK STEP...
 *
 * The steps run in order on one connection:
 *
 *   list | sign:PUBFILE[:FLAGS] | lock:PASS | unlock:PASS | remove:PUBFILE
 *                  queue one request (nothing is sent yet)
 *   send           write every queued request with one write()
 *   shut           shutdown(SHUT_WR): our end of stream; we still read
 *   wait           wait (up to 15 s) until a reply is there, without reading it;
 *                  prints readable=yes|no
 *   read:N         read N replies; prints replyI=TYPE (I counts from 1 over
 *                  the whole run), or the reason there was none
 *   eof            read on until end of stream; prints more=N then=...
 *   close          close the connection (a reset if replies are unread)
 *   sleep:MS       pause
 *   flood:N:PUB    N sign requests in one write (written by a child process)
 *                  while reading their N replies; prints flood_ok=, flood_fail=,
 *                  flood_ms=
 *   lists:MS       list round trips for MS milliseconds; prints lists=, p50_us=,
 *                  p99_us=, max_us=, and how many took over 5, 20, 50 and 100 ms
 *
 * It reuses hostile_client.c's helpers (die, read_frame, list_on, ...) by
 * including that file with its main() renamed; the socket and frame ones
 * under those are tests/fixtures/fixture_sock.h's. Exit status 0 if every
 * read got its reply, else 1.
 */
int hostile_client_main(int argc, char **argv);
#define main hostile_client_main
#include "hostile_client.c"
#undef main

static int conn_fd = -1;
static struct wire_writer queued; /* frames not yet sent */
static int reply_no;              /* replies read so far */

static void queue_frame(const struct wire_writer *body)
{
    wire_put_string(&queued, body->buf, body->len); /* u32 length, body: a frame */
}

static void put_sign(struct wire_writer *out, const char *pub, uint32_t flags)
{
    static const uint8_t data[] = "keyward hostile_script sign";
    struct wire_writer req;
    uint8_t *blob;
    size_t blob_len;

    if (pubfile_load(pub, &blob, &blob_len) != 0)
        die("%s: cannot read the public key", pub);
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, blob, blob_len);
    wire_put_string(&req, data, sizeof(data));
    wire_put_u32(&req, flags);
    wire_put_string(out, req.buf, req.len);
    wire_writer_free(&req);
    free(blob);
}

static void queue_simple(uint8_t type, const char *arg)
{
    struct wire_writer req;
    uint8_t *blob;
    size_t blob_len;

    wire_writer_init(&req);
    wire_put_u8(&req, type);
    if (type == SSH_AGENTC_LOCK || type == SSH_AGENTC_UNLOCK) {
        wire_put_cstring(&req, arg);
    } else if (type == SSH_AGENTC_REMOVE_IDENTITY) {
        if (pubfile_load(arg, &blob, &blob_len) != 0)
            die("%s: cannot read the public key", arg);
        wire_put_string(&req, blob, blob_len);
        free(blob);
    }
    queue_frame(&req);
    wire_writer_free(&req);
}

static const char *reply_name(const struct wire_writer *msg)
{
    return msg->len > 0 ? proto_type_name(msg->buf[0]) : "empty";
}

static bool step_read(int n)
{
    struct wire_writer msg;
    bool ok = true;
    int i, r;

    wire_writer_init(&msg);
    for (i = 0; i < n; i++) {
        reply_no++;
        if ((r = read_frame(conn_fd, &msg, REPLY_TIMEOUT_MS)) != 1) {
            printf("reply%d=%s\n", reply_no, read_result(r));
            ok = false;
            break;
        }
        printf("reply%d=%s\n", reply_no, reply_name(&msg));
    }
    wire_writer_free(&msg);
    return ok;
}

static void step_eof(void)
{
    struct wire_writer msg;
    int more = 0, r;

    wire_writer_init(&msg);
    while ((r = read_frame(conn_fd, &msg, REPLY_TIMEOUT_MS)) == 1)
        more++;
    printf("more=%d\nthen=%s\n", more, read_result(r));
    wire_writer_free(&msg);
}

static bool step_flood(int n, const char *pub)
{
    struct wire_writer out, msg;
    uint64_t t0 = now_us();
    int i, r = 1, ok = 0, fail = 0, status;
    pid_t pid;

    wire_writer_init(&out);
    wire_writer_init(&msg);
    for (i = 0; i < n; i++)
        put_sign(&out, pub, 0);
    fflush(stdout);
    /* A child writes, we read: neither side's buffers can fill up and stall. */
    if ((pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(fixture_write_all(conn_fd, out.buf, out.len) ? 0 : 1);
    for (i = 0; i < n; i++) {
        if ((r = read_frame(conn_fd, &msg, 30000)) != 1)
            break;
        if (msg.buf[0] == SSH_AGENT_SIGN_RESPONSE)
            ok++;
        else
            fail++;
    }
    waitpid(pid, &status, 0);
    printf("flood_ok=%d\nflood_fail=%d\nflood_ms=%llu\n", ok, fail,
           (unsigned long long)((now_us() - t0) / 1000));
    if (i < n)
        printf("flood_then=%s\n", read_result(r));
    wire_writer_free(&out);
    wire_writer_free(&msg);
    return i == n;
}

static bool step_lists(long ms)
{
    struct wire_writer msg;
    uint64_t *t = NULL, start = now_us(), t0;
    size_t n = 0, cap = 0, over5 = 0, over20 = 0, over50 = 0, over100 = 0;
    bool ok = true;
    int r;

    wire_writer_init(&msg);
    while (now_us() - start < (uint64_t)ms * 1000) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            if ((t = realloc(t, cap * sizeof(*t))) == NULL)
                die("out of memory");
        }
        t0 = now_us();
        if ((r = list_on(conn_fd, &msg, REPLY_TIMEOUT_MS)) != 1) {
            printf("lists_failed=%s\n", read_result(r));
            ok = false;
            break;
        }
        t[n] = now_us() - t0;
        over5 += t[n] > 5000;
        over20 += t[n] > 20000;
        over50 += t[n] > 50000;
        over100 += t[n] > 100000;
        n++;
    }
    if (n > 0) {
        qsort(t, n, sizeof(*t), cmp_u64);
        printf("lists=%zu\np50_us=%llu\np99_us=%llu\nmax_us=%llu\n", n,
               (unsigned long long)t[n / 2], (unsigned long long)t[n * 99 / 100],
               (unsigned long long)t[n - 1]);
        printf("over_5ms=%zu\nover_20ms=%zu\nover_50ms=%zu\nover_100ms=%zu\n", over5, over20,
               over50, over100);
    }
    free(t);
    wire_writer_free(&msg);
    return ok && n > 0;
}

int main(int argc, char **argv)
{
    struct pollfd pfd;
    bool ok = true;
    int i;

    progname = "hostile_script";
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 3) {
        fprintf(stderr, "usage: %s SOCK STEP... (see the top of script_client.c)\n", progname);
        return 2;
    }
    if ((conn_fd = agent_connect(argv[1])) < 0)
        die("connect %s: %s", argv[1], strerror(errno));
    wire_writer_init(&queued);
    for (i = 2; i < argc; i++) {
        const char *s = argv[i];
        char pub[4096];
        unsigned long flags = 0;
        int n;

        if (strcmp(s, "list") == 0) {
            queue_simple(SSH_AGENTC_REQUEST_IDENTITIES, NULL);
        } else if (strncmp(s, "sign:", 5) == 0) {
            snprintf(pub, sizeof(pub), "%s", s + 5);
            if (strchr(pub, ':') != NULL) {
                flags = strtoul(strchr(pub, ':') + 1, NULL, 0);
                *strchr(pub, ':') = '\0';
            }
            put_sign(&queued, pub, (uint32_t)flags);
        } else if (strncmp(s, "lock:", 5) == 0) {
            queue_simple(SSH_AGENTC_LOCK, s + 5);
        } else if (strncmp(s, "unlock:", 7) == 0) {
            queue_simple(SSH_AGENTC_UNLOCK, s + 7);
        } else if (strncmp(s, "remove:", 7) == 0) {
            queue_simple(SSH_AGENTC_REMOVE_IDENTITY, s + 7);
        } else if (strcmp(s, "send") == 0) {
            if (!fixture_write_all(conn_fd, queued.buf, queued.len))
                printf("send=%s\n", strerror(errno));
            wire_writer_reset(&queued);
        } else if (strcmp(s, "shut") == 0) {
            (void)shutdown(conn_fd, SHUT_WR);
        } else if (strcmp(s, "wait") == 0) {
            pfd.fd = conn_fd;
            pfd.events = POLLIN;
            pfd.revents = 0;
            printf("readable=%s\n", poll(&pfd, 1, REPLY_TIMEOUT_MS) == 1 ? "yes" : "no");
        } else if (sscanf(s, "read:%d", &n) == 1) {
            ok &= step_read(n);
        } else if (strcmp(s, "eof") == 0) {
            step_eof();
        } else if (strcmp(s, "close") == 0) {
            close(conn_fd);
            conn_fd = -1;
        } else if (sscanf(s, "sleep:%d", &n) == 1) {
            usleep((useconds_t)n * 1000);
        } else if (sscanf(s, "flood:%d:%4095s", &n, pub) == 2) {
            ok &= step_flood(n, pub);
        } else if (sscanf(s, "lists:%d", &n) == 1) {
            ok &= step_lists(n);
        } else {
            fprintf(stderr, "%s: unknown step \"%s\"\n", progname, s);
            return 2;
        }
        if (conn_fd < 0 && i + 1 < argc && strncmp(argv[i + 1], "sleep:", 6) != 0)
            die("step \"%s\" after close", argv[i + 1]);
    }
    if (conn_fd >= 0)
        close(conn_fd);
    wire_writer_free(&queued);
    return ok ? 0 : 1;
}
