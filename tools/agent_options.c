/*
 * keyward-agent: the options both agent mains share. See agent_options.h.
 */
#include "agent_options.h"

#include <string.h>

#include "base/convtime.h"
#include "cli.h"

#define WEBSAFE_ALLOW_PREFIX "websafe-allow="

void agent_options_init(struct agent_options *ao)
{
    memset(ao, 0, sizeof(*ao));
    ao->fp_hash = KEY_FP_SHA256;
}

/* -O: one option a time, as ssh-agent takes them; unknown ones are refused, not ignored. */
static void parse_o(struct agent_options *ao, const char *arg)
{
    size_t plen = strlen(WEBSAFE_ALLOW_PREFIX);

    if (strcmp(arg, "allow-remote-pkcs11") == 0) {
        ao->allow_remote_providers = true;
    } else if (strcmp(arg, "no-restrict-websafe") == 0) {
        ao->no_restrict_websafe = true;
    } else if (strncmp(arg, WEBSAFE_ALLOW_PREFIX, plen) == 0) {
        if (ao->websafe_allow != NULL)
            cli_die("-O websafe-allow= given twice");
        ao->websafe_allow = arg + plen;
    } else {
        cli_die("unknown -O option \"%s\": use allow-remote-pkcs11, "
                "no-restrict-websafe or websafe-allow=LIST",
                arg);
    }
}

bool agent_options_parse(struct agent_options *ao, int opt, const char *arg)
{
    switch (opt) {
    case 't':
        if (convtime(arg, &ao->lifetime) != 0)
            cli_die("invalid lifetime \"%s\": use seconds or a time like 10m or 1h30m", arg);
        return true;
    case 'l':
        ao->audit_path = arg;
        return true;
    case 'E':
        if (key_fp_hash_from_name(arg, &ao->fp_hash) != 0)
            cli_die("invalid fingerprint hash \"%s\": use sha256 or md5", arg);
        return true;
    case 'O':
        parse_o(ao, arg);
        return true;
    case 'P':
        if (ao->allowed_providers != NULL)
            cli_die("-P given twice");
        ao->allowed_providers = arg;
        return true;
    }
    return false;
}

void agent_options_apply(const struct agent_options *ao, struct agent *ag,
                         const char *default_providers)
{
    if (ao->allowed_providers != NULL)
        ag->providers.allowed = ao->allowed_providers;
    else if (default_providers != NULL)
        ag->providers.allowed = default_providers;
    ag->providers.allow_remote = ao->allow_remote_providers;
    ag->websafe_unrestricted = ao->no_restrict_websafe;
    ag->websafe_allow = ao->websafe_allow;
}
