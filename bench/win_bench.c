/*
 * keyward: win_bench, the rows of `make bench` for keyward-agent.exe on its
 * named pipe (issue 20). A Windows program, cross-built with the rest of
 * the Windows build and run under Wine by bench/wine_bench.sh.
 *
 *   win_bench -p \\.\pipe\NAME [-w SECONDS] [-r REPS]
 *
 * It generates the keys of agent_bench (ed25519, ecdsa-p256, rsa-2048,
 * rsa-4096), adds them over the pipe, and measures as agent_bench does:
 * closed-loop signatures over 1 and 4 connections (one thread each), the
 * same key_sign() in this process on one thread (raw), and list round trips
 * from one client, closed-loop and paced (one every 500 us) while four
 * other clients sign with rsa-4096. Medians of REPS runs.
 *
 * No targets and no OpenSSH column: Wine is not Windows, and these numbers
 * say how the .exe runs under Wine on this machine, nothing about Windows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <openssl/rand.h>

#include "agent/request.h"
#include "base/wire.h"
#include "crypto/key.h"

#define NKEYS      4
#define DATA_LEN   256
#define MAX_LOADS  8
#define MAX_REPS   16
#define PACE_US    500.0
#define MAX_SAMPLE 400000

static const char *pipe_name;
static double window_s = 2.0;
static int reps = 3;

struct bkey {
    const char *name;
    enum key_kind kind;
    unsigned bits;
    uint32_t flags;
    struct key *key;
    struct wire_writer sign; /* the SIGN_REQUEST body */
};

static struct bkey keys[NKEYS] = {
    {"ed25519", KEY_ED25519, 0, 0, NULL, {0}},
    {"ecdsa-p256", KEY_ECDSA_P256, 0, 0, NULL, {0}},
    {"rsa-2048", KEY_RSA, 2048, KEY_SIGN_RSA_SHA2_256, NULL, {0}},
    {"rsa-4096", KEY_RSA, 4096, KEY_SIGN_RSA_SHA2_256, NULL, {0}},
};
#define K_RSA4096 3

static uint8_t sign_data[DATA_LEN];
static struct wire_writer list_req;
static LARGE_INTEGER qpf;

static double now_s(void)
{
    LARGE_INTEGER t;

    QueryPerformanceCounter(&t);
    return (double)t.QuadPart / (double)qpf.QuadPart;
}

static void die(const char *what)
{
    fprintf(stderr, "win_bench: %s (error %lu)\n", what, (unsigned long)GetLastError());
    exit(1);
}

static HANDLE pipe_connect(void)
{
    wchar_t wname[300];
    HANDLE h;
    int i;

    if (MultiByteToWideChar(CP_UTF8, 0, pipe_name, -1, wname, 300) <= 0)
        die("bad pipe name");
    for (i = 0; i < 200; i++) {
        h = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (h != INVALID_HANDLE_VALUE)
            return h;
        if (GetLastError() == ERROR_PIPE_BUSY)
            (void)WaitNamedPipeW(wname, 1000);
        else
            Sleep(50);
    }
    die("cannot connect to the agent's pipe");
    return INVALID_HANDLE_VALUE;
}

static int io_all(HANDLE h, bool writing, void *buf, DWORD len)
{
    DWORD done;

    while (len > 0) {
        if (!(writing ? WriteFile(h, buf, len, &done, NULL) : ReadFile(h, buf, len, &done, NULL)) ||
            done == 0)
            return -1;
        buf = (uint8_t *)buf + done;
        len -= done;
    }
    return 0;
}

/* One request and its reply; returns the reply's type, or -1. buf holds at least 64 KiB. */
static int roundtrip(HANDLE h, const struct wire_writer *req, uint8_t *buf)
{
    uint8_t hdr[4];
    uint32_t len;

    wire_poke_u32(hdr, (uint32_t)req->len);
    if (io_all(h, true, hdr, 4) != 0 || io_all(h, true, req->buf, (DWORD)req->len) != 0 ||
        io_all(h, false, hdr, 4) != 0)
        return -1;
    len = wire_peek_u32(hdr);
    if (len == 0 || len > 65536 || io_all(h, false, buf, len) != 0)
        return -1;
    return buf[0];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- closed-loop load: one thread per connection ---- */

struct load {
    const struct wire_writer *req;
    int expect;
    double window; /* 0: until stop */
    volatile LONG *stop;
    HANDLE start;
    unsigned long ops, errors;
    double elapsed;
};

static DWORD WINAPI load_thread(LPVOID p)
{
    struct load *a = p;
    uint8_t *buf = malloc(65536);
    HANDLE h = pipe_connect();
    double t0, t;

    if (buf == NULL)
        die("out of memory");
    if (roundtrip(h, a->req, buf) != a->expect) /* warm-up */
        a->errors++;
    WaitForSingleObject(a->start, INFINITE);
    t0 = t = now_s();
    do {
        if (roundtrip(h, a->req, buf) != a->expect) {
            a->errors++;
            break;
        }
        a->ops++;
        t = now_s();
    } while (a->window > 0 ? t - t0 < a->window : !InterlockedCompareExchange(a->stop, 0, 0));
    a->elapsed = t - t0;
    CloseHandle(h);
    free(buf);
    return 0;
}

static void loads_start(struct load *l, HANDLE *th, int n, const struct wire_writer *req,
                        int expect, double window, volatile LONG *stop, HANDLE start)
{
    int i;

    for (i = 0; i < n; i++) {
        memset(&l[i], 0, sizeof(l[i]));
        l[i].req = req;
        l[i].expect = expect;
        l[i].window = window;
        l[i].stop = stop;
        l[i].start = start;
        if ((th[i] = CreateThread(NULL, 0, load_thread, &l[i], 0, NULL)) == NULL)
            die("CreateThread");
    }
}

static double loads_join(struct load *l, HANDLE *th, int n, unsigned long *errors)
{
    double rate = 0;
    int i;

    for (i = 0; i < n; i++) {
        WaitForSingleObject(th[i], INFINITE);
        CloseHandle(th[i]);
        *errors += l[i].errors;
        if (l[i].elapsed > 0)
            rate += (double)l[i].ops / l[i].elapsed;
    }
    return rate;
}

static double sign_rate(int k, int nconns, unsigned long *errors)
{
    struct load l[MAX_LOADS];
    HANDLE th[MAX_LOADS], start = CreateEventW(NULL, TRUE, FALSE, NULL);
    double rate;

    loads_start(l, th, nconns, &keys[k].sign, SSH_AGENT_SIGN_RESPONSE, window_s, NULL, start);
    Sleep(100); /* every thread connected and warmed up */
    SetEvent(start);
    rate = loads_join(l, th, nconns, errors);
    CloseHandle(start);
    return rate;
}

/* key_sign() in this process, one thread, for window_s. */
static double raw_rate(int k)
{
    struct wire_writer sig;
    unsigned long ops = 0;
    double t0 = now_s(), t;

    do {
        wire_writer_init(&sig);
        if (key_sign(keys[k].key, sign_data, sizeof(sign_data), keys[k].flags, &sig) != 0)
            die("key_sign failed");
        wire_writer_free(&sig);
        ops++;
    } while ((t = now_s()) - t0 < window_s / 2);
    return (double)ops / (t - t0);
}

/* ---- list latency: p50 and p99 in us, closed-loop or paced beside rsa-4096 signers ---- */

static double *samples;

static void list_latency(int nsigners, double *p50, double *p99, double *sign_rate_out,
                         unsigned long *errors)
{
    struct load l[MAX_LOADS];
    HANDLE th[MAX_LOADS], start = CreateEventW(NULL, TRUE, FALSE, NULL), h = pipe_connect();
    volatile LONG stop = 0;
    uint8_t *buf = malloc(65536);
    double t0, t, next, s0;
    int n = 0;

    if (buf == NULL || start == NULL)
        die("out of memory");
    loads_start(l, th, nsigners, &keys[K_RSA4096].sign, SSH_AGENT_SIGN_RESPONSE, 0, &stop, start);
    Sleep(100);
    SetEvent(start);
    t0 = next = now_s();
    do {
        if (nsigners > 0) /* paced: one list every PACE_US */
            while (now_s() < next)
                Sleep(0);
        next += PACE_US / 1e6;
        s0 = now_s();
        if (roundtrip(h, &list_req, buf) != SSH_AGENT_IDENTITIES_ANSWER) {
            (*errors)++;
            break;
        }
        t = now_s();
        if (n < MAX_SAMPLE)
            samples[n++] = (t - s0) * 1e6;
    } while (t - t0 < window_s);
    InterlockedExchange(&stop, 1);
    *sign_rate_out = loads_join(l, th, nsigners, errors);
    CloseHandle(h);
    CloseHandle(start);
    free(buf);
    qsort(samples, (size_t)n, sizeof(*samples), cmp_double);
    *p50 = n ? samples[n / 2] : -1;
    *p99 = n ? samples[(int)((double)(n - 1) * 0.99)] : -1;
}

int main(int argc, char **argv)
{
    double runs[2][MAX_REPS], raw[MAX_REPS], med[NKEYS][3];
    double l50[2][MAX_REPS], l99[2][MAX_REPS], lrate[2][MAX_REPS];
    unsigned long errors = 0;
    uint8_t *buf;
    HANDLE h;
    int i, k, m, r;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            pipe_name = argv[++i];
        else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc)
            window_s = atof(argv[++i]);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: win_bench -p \\\\.\\pipe\\NAME [-w SECONDS] [-r REPS]\n");
            return 2;
        }
    }
    if (pipe_name == NULL || reps < 1 || reps > MAX_REPS || window_s <= 0) {
        fprintf(stderr, "usage: win_bench -p \\\\.\\pipe\\NAME [-w SECONDS] [-r REPS]\n");
        return 2;
    }
    QueryPerformanceFrequency(&qpf);
    if ((samples = malloc(MAX_SAMPLE * sizeof(*samples))) == NULL ||
        (buf = malloc(65536)) == NULL || RAND_bytes(sign_data, sizeof(sign_data)) != 1)
        die("setup");
    wire_writer_init(&list_req);
    wire_put_u8(&list_req, SSH_AGENTC_REQUEST_IDENTITIES);

    /* The keys, added over one connection. */
    h = pipe_connect();
    for (k = 0; k < NKEYS; k++) {
        struct wire_writer add;

        if (key_generate(keys[k].kind, keys[k].bits, &keys[k].key) != 0)
            die("key_generate");
        wire_writer_init(&add);
        wire_put_u8(&add, SSH_AGENTC_ADD_IDENTITY);
        if (key_private_serialize(keys[k].key, &add) != 0)
            die("key_private_serialize");
        wire_put_cstring(&add, keys[k].name);
        if (roundtrip(h, &add, buf) != SSH_AGENT_SUCCESS)
            die("the agent refused a key");
        wire_writer_free(&add);
        wire_writer_init(&keys[k].sign);
        wire_put_u8(&keys[k].sign, SSH_AGENTC_SIGN_REQUEST);
        wire_put_string(&keys[k].sign, keys[k].key->blob, keys[k].key->blob_len);
        wire_put_string(&keys[k].sign, sign_data, sizeof(sign_data));
        wire_put_u32(&keys[k].sign, keys[k].flags);
    }
    CloseHandle(h);

    for (k = 0; k < NKEYS; k++) {
        for (r = 0; r < reps; r++) {
            raw[r] = raw_rate(k);
            for (m = 0; m < 2; m++)
                runs[m][r] = sign_rate(k, m ? 4 : 1, &errors);
        }
        med[k][0] = median(runs[0], reps);
        med[k][1] = median(runs[1], reps);
        med[k][2] = median(raw, reps);
        fprintf(stderr, "win_bench: %-10s 1 conn %.0f/s, 4 conns %.0f/s, raw %.0f/s\n",
                keys[k].name, med[k][0], med[k][1], med[k][2]);
    }
    for (r = 0; r < reps; r++)
        for (m = 0; m < 2; m++)
            list_latency(m ? 4 : 0, &l50[m][r], &l99[m][r], &lrate[m][r], &errors);

    printf("keyward-agent.exe under Wine -- Wine is not Windows: these numbers say how the\n"
           ".exe runs under Wine on this Linux machine, nothing about Windows. No targets.\n\n");
    printf("%-40s %10s %10s %8s\n", "metric (median of runs)", "keyward", "raw", "kw/raw");
    for (k = 0; k < NKEYS; k++)
        for (m = 0; m < 2; m++) {
            char name[64];

            snprintf(name, sizeof(name), "sign/s %s, %d conn%s", keys[k].name, m ? 4 : 1,
                     m ? "s" : "");
            printf("%-40s %10.0f %10.0f %8.2f\n", name, med[k][m], med[k][2],
                   med[k][m] / med[k][2]);
        }
    printf("%-40s %10.0f\n", "list p50 us, 1 client", median(l50[0], reps));
    printf("%-40s %10.0f\n", "list p99 us, 1 client", median(l99[0], reps));
    printf("%-40s %10.0f\n", "list p50 us, paced, 4 rsa-4096 signers", median(l50[1], reps));
    printf("%-40s %10.0f\n", "list p99 us, paced, 4 rsa-4096 signers", median(l99[1], reps));
    printf("\n  sign: 256-byte data, RSA with rsa-sha2-256, over \\\\.\\pipe\\...; %d runs of %.1f "
           "s.\n"
           "  raw: key_sign() in this .exe, one thread (no secure heap here).\n"
           "  list paced: one list every %.0f us while 4 clients sign with rsa-4096 (%.0f/s).\n"
           "  errors: %lu\n",
           reps, window_s, PACE_US, median(lrate[1], reps), errors);
    return errors != 0;
}
