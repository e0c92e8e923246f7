/*
 * keyward-probe: point at any SSH agent and report how it behaves.
 *
 *   keyward-probe [-a SOCKET] [--json] [--only NAME]... [--no-modify] [--timeout MS]
 *   keyward-probe --list | --help | --version
 *
 * On Windows the address is a named pipe (-a \\.\pipe\NAME), by default
 * $SSH_AUTH_SOCK or else \\.\pipe\openssh-ssh-agent, as OpenSSH for Windows.
 *
 * This file parses arguments and formats results; the checks themselves
 * live in src/probe/checks.c and talk to the agent through
 * src/probe/transport.h.
 *
 * Exit status: 0 when no check failed, 1 when one did, 2 on a usage error,
 * when the agent cannot be reached, or when the probe could not run a check.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <openssl/crypto.h>

#include "platform/win32_wide.h"
#endif

#include "base/err.h"
#include "probe/probe.h"
#include "probe/transport.h"

#ifndef KEYWARD_VERSION
#define KEYWARD_VERSION "unknown"
#endif

#define EXIT_PASS   0
#define EXIT_FAILED 1
#define EXIT_USAGE  2

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS     600000

/* What -a names, in the usage line and in its help. */
#ifdef _WIN32
#define ADDRESS_ARG "PIPE"
#define ADDRESS_HELP                                                                               \
    "  -a PIPE       the agent's named pipe (default: SSH_AUTH_SOCK if set, else\n"                \
    "                \\\\.\\pipe\\openssh-ssh-agent)\n"
#else
#define ADDRESS_ARG  "SOCKET"
#define ADDRESS_HELP "  -a SOCKET     the agent's socket (default: $SSH_AUTH_SOCK)\n"
#endif

static const char *progname = "keyward-probe";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-a %s] [--json] [--only NAME]... [--no-modify] [--timeout MS]\n"
            "       %s --list | --help | --version\n"
            "\n"
            "Connects to an SSH agent and checks how it handles refused session-binds,\n"
            "unknown and malformed requests, locking, oversized frames, RSA signature\n"
            "flags and many connections at once.\n"
            "\n" ADDRESS_HELP "  --json        print machine-readable results\n"
            "  --only NAME   run only this check (may be repeated; see --list); checks\n"
            "                marked [only with --only] can stop a defective agent and\n"
            "                run only when named\n"
            "  --no-modify   skip checks that add keys or lock the agent\n"
            "  --timeout MS  how long to wait for each reply (default %d)\n"
            "  --list        list the checks\n"
            "  --help        show this help\n"
            "  --version     show the version\n"
            "\n"
            "The probe never removes or changes your own keys: it removes only the\n"
            "throwaway keys it added. Exit status: 0 if no check failed, 1 if one did,\n"
            "2 on a usage error, if the agent cannot be reached or a check could not run.\n",
            progname, ADDRESS_ARG, progname, DEFAULT_TIMEOUT_MS);
}

static void list_checks(void)
{
    size_t i;

    for (i = 0; i < probe_check_count; i++)
        printf("%-26s %s%s%s\n", probe_checks[i].name, probe_checks[i].description,
               probe_checks[i].modifies ? " [modifies]" : "",
               probe_checks[i].explicit_only ? " [only with --only]" : "");
}

/* A JSON string literal; agent-supplied text was made printable already. */
static void json_string(FILE *out, const char *s)
{
    const unsigned char *p;

    fputc('"', out);
    for (p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void print_json_result(const struct probe_check *c, const struct probe_result *res,
                              bool first)
{
    printf("%s    {\"name\": ", first ? "" : ",\n");
    json_string(stdout, c->name);
    printf(", \"verdict\": ");
    json_string(stdout, probe_verdict_id(res->verdict));
    printf(", \"modifies\": %s, \"summary\": ", c->modifies ? "true" : "false");
    json_string(stdout, res->summary);
    printf(", \"sent\": ");
    json_string(stdout, res->sent);
    printf(", \"got\": ");
    json_string(stdout, res->got);
    printf(", \"why\": ");
    json_string(stdout, res->why);
    printf("}");
}

static void print_table_result(const struct probe_check *c, const struct probe_result *res)
{
    printf("%-26s %-14s %s\n", c->name, probe_verdict_label(res->verdict), res->summary);
    if (res->verdict == PROBE_FAIL) {
        printf("    sent: %s\n", res->sent);
        printf("    got:  %s\n", res->got);
        printf("    why:  %s\n", res->why);
    }
}

static int parse_timeout(const char *s, int *out)
{
    char *end;
    long v;

    v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > MAX_TIMEOUT_MS)
        return KW_ERR_BAD_FORMAT;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_ONLY, OPT_NO_MODIFY, OPT_TIMEOUT, OPT_LIST, OPT_VERSION };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"only", required_argument, NULL, OPT_ONLY},
        {"no-modify", no_argument, NULL, OPT_NO_MODIFY},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"list", no_argument, NULL, OPT_LIST},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct probe_options opt;
    struct probe_result res;
    struct transport *t = NULL;
    const struct probe_check *c;
    bool json = false, any_only = false, first = true;
    bool *selected = NULL;
    size_t i, total, counts[PROBE_ERROR + 1];
    char why[256];
    int ch, rc = EXIT_USAGE;

#ifdef _WIN32
    /*
     * First of all, as in keyward-agent.exe: the cross-built libcrypto has a
     * Linux OPENSSLDIR compiled in, which on Windows names a directory on
     * the current drive that any user may create. Never read an openssl.cnf
     * from there (nor from $OPENSSL_CONF). The first init decides, so this
     * comes before any other OpenSSL call.
     */
    if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL)) {
        fprintf(stderr, "%s: cannot initialise OpenSSL\n", progname);
        return EXIT_USAGE;
    }
    {
        /* -a's pipe name as UTF-8, as the pipe transport reads it. */
        char **utf8_argv = win32_utf8_argv(&argc);

        if (utf8_argv != NULL)
            argv = utf8_argv;
    }
#endif
    memset(&opt, 0, sizeof(opt));
    memset(counts, 0, sizeof(counts));
    opt.timeout_ms = DEFAULT_TIMEOUT_MS;
    if ((selected = calloc(probe_check_count, sizeof(*selected))) == NULL) {
        fprintf(stderr, "%s: out of memory\n", progname);
        goto out;
    }
    while ((ch = getopt_long(argc, argv, "a:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            opt.address = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_ONLY:
            if ((c = probe_find_check(optarg)) == NULL) {
                fprintf(stderr, "%s: no check named \"%s\" (see --list)\n", progname, optarg);
                goto out;
            }
            selected[c - probe_checks] = true;
            any_only = true;
            break;
        case OPT_NO_MODIFY:
            opt.no_modify = true;
            break;
        case OPT_TIMEOUT:
            if (parse_timeout(optarg, &opt.timeout_ms) != 0) {
                fprintf(stderr, "%s: --timeout wants milliseconds from 1 to %d\n", progname,
                        MAX_TIMEOUT_MS);
                goto out;
            }
            break;
        case OPT_LIST:
            list_checks();
            rc = EXIT_PASS;
            goto out;
        case 'h':
            usage(stdout);
            rc = EXIT_PASS;
            goto out;
        case OPT_VERSION:
            printf("keyward-probe %s\n", KEYWARD_VERSION);
            rc = EXIT_PASS;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", progname, argv[optind]);
        usage(stderr);
        goto out;
    }
    if (opt.address == NULL && (opt.address = transport_default_address()) == NULL) {
        fprintf(stderr, "%s: no agent: SSH_AUTH_SOCK is not set and no -a was given\n", progname);
        goto out;
    }
    if (transport_setup(probe_max_connections()) != 0) {
        fprintf(stderr, "%s: cannot prepare the process for probing\n", progname);
        goto out;
    }
    /* A quick connect first, so an unreachable agent is a usage-level error. */
    if (transport_connect(opt.address, opt.timeout_ms, &t, why, sizeof(why)) != 0) {
        fprintf(stderr, "%s: cannot connect to the agent at %s: %s\n", progname, opt.address, why);
        goto out;
    }
    transport_close(t);

    if (json) {
        printf("{\n  \"probe\": \"keyward-probe\", \"version\": ");
        json_string(stdout, KEYWARD_VERSION);
        printf(", \"agent\": ");
        json_string(stdout, opt.address);
        printf(", \"timeout_ms\": %d, \"no_modify\": %s,\n  \"results\": [\n", opt.timeout_ms,
               opt.no_modify ? "true" : "false");
    } else {
        printf("keyward-probe %s: agent at %s\n\n", KEYWARD_VERSION, opt.address);
        printf("%-26s %-14s %s\n", "CHECK", "VERDICT", "DETAIL");
    }
    fflush(stdout);
    for (i = 0; i < probe_check_count; i++) {
        if (any_only ? !selected[i] : probe_checks[i].explicit_only)
            continue;
        (void)probe_run_check(&probe_checks[i], &opt, &res);
        counts[res.verdict]++;
        if (json)
            print_json_result(&probe_checks[i], &res, first);
        else
            print_table_result(&probe_checks[i], &res);
        first = false;
        fflush(stdout);
    }
    if (json) {
        printf("\n  ],\n  \"summary\": {\"pass\": %zu, \"fail\": %zu, \"unsupported\": %zu, "
               "\"skipped\": %zu, \"error\": %zu}\n}\n",
               counts[PROBE_PASS], counts[PROBE_FAIL], counts[PROBE_UNSUPPORTED],
               counts[PROBE_SKIPPED], counts[PROBE_ERROR]);
    } else {
        total = counts[PROBE_PASS] + counts[PROBE_FAIL] + counts[PROBE_UNSUPPORTED] +
                counts[PROBE_SKIPPED] + counts[PROBE_ERROR];
        printf("\n%zu check%s: %zu pass, %zu FAIL, %zu not supported, %zu skipped", total,
               total == 1 ? "" : "s", counts[PROBE_PASS], counts[PROBE_FAIL],
               counts[PROBE_UNSUPPORTED], counts[PROBE_SKIPPED]);
        if (counts[PROBE_ERROR] > 0)
            printf(", %zu could not run", counts[PROBE_ERROR]);
        printf("\n");
    }
    if (counts[PROBE_FAIL] > 0)
        rc = EXIT_FAILED;
    else if (counts[PROBE_ERROR] > 0)
        rc = EXIT_USAGE;
    else
        rc = EXIT_PASS;
out:
    free(selected);
    return rc;
}
