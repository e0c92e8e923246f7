/*
 * keyward-agent: the options both agent mains share (tools/keyward-agent.c
 * on Unix, tools/keyward-agent-win.c on Windows), parsed and applied the
 * same way, so that the two command lines cannot drift apart:
 *
 *   -E fingerprint_hash
 *   -l file
 *   -O allow-remote-pkcs11 | no-restrict-websafe | websafe-allow=LIST
 *   -P allowed_providers
 *   -t life
 *
 * They are checked as ssh-agent checks them (keyward-agent(1)). Linked by
 * the two agent mains only: it needs the agent library and libcrypto,
 * which keyward-relay (tools/cli.c's other user) must not link.
 */
#ifndef KEYWARD_TOOLS_AGENT_OPTIONS_H
#define KEYWARD_TOOLS_AGENT_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/agent.h"
#include "crypto/key.h"

/* Their letters, for the mains' getopt strings. */
#define AGENT_OPTIONS_GETOPT "E:l:O:P:t:"

struct agent_options {
    uint32_t lifetime;             /* -t, in seconds; 0: none (agent_init()'s argument) */
    const char *audit_path;        /* -l; NULL: none. Each main opens its own kind of log */
    enum key_fp_hash fp_hash;      /* -E; sha256 unless given */
    const char *allowed_providers; /* -P; NULL: the main's default */
    bool allow_remote_providers;   /* -O allow-remote-pkcs11 */
    bool no_restrict_websafe;      /* -O no-restrict-websafe (FIDO keys) */
    const char *websafe_allow;     /* -O websafe-allow=LIST; NULL: "ssh:*" */
};

/* The defaults: what the agent does when none of these options is given. */
void agent_options_init(struct agent_options *ao);

/*
 * One option from getopt, with its argument: true if opt is one of these
 * (arg recorded), false if it is not (the main handles it). A bad value,
 * or -P or -O websafe-allow= given twice, ends the program with cli_die()
 * and the same message on both platforms.
 */
bool agent_options_parse(struct agent_options *ao, int opt, const char *arg);

/*
 * Sets the agent's provider allow-list and web-origin rules from ao.
 * default_providers is the allow-list when -P was not given; NULL keeps
 * the agent's own default (agent_init()). The rest is the mains' to use:
 * the lifetime is agent_init()'s argument, the audit log is a file on
 * Unix and a handle on Windows, and the fingerprint hash is the process's, not the agent's
 * (key_fingerprint_set_hash(), before anything prints a fingerprint).
 */
void agent_options_apply(const struct agent_options *ao, struct agent *ag,
                         const char *default_providers);

#endif
