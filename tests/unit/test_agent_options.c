/*
 * Unit tests: the options both agent mains take (tools/agent_options.c),
 * parsed into the struct and applied to a real struct agent, with each
 * main's default allow-list. The messages of the refusals are checked
 * against the programs themselves (e2e_cli, win_agent_cli); here only
 * that each bad value is refused.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/provider.h"
#include "agent_options.h"
#include "check.h"
#include "cli.h"

const char *const cli_progname = "test_agent_options";

/* cli_die() runs its cleanup before exit(1): coming back here stands for that exit. */
static jmp_buf died;

static void back_from_die(void)
{
    longjmp(died, 1);
}

/* Whether parsing opt with arg (after the options in ao already) ends the program. */
static bool refused(struct agent_options *ao, int opt, const char *arg)
{
    if (setjmp(died) != 0)
        return true;
    (void)agent_options_parse(ao, opt, arg);
    return false;
}

static void test_parse(void)
{
    struct agent_options ao;

    agent_options_init(&ao);
    CHECK_EQ(ao.fp_hash, KEY_FP_SHA256);
    CHECK_EQ(ao.lifetime, 0);
    CHECK(ao.audit_path == NULL && ao.allowed_providers == NULL && ao.websafe_allow == NULL);
    CHECK(!ao.allow_remote_providers && !ao.no_restrict_websafe);

    /* The mains' own options are left to them. */
    CHECK(!agent_options_parse(&ao, 'a', "x"));
    CHECK(!agent_options_parse(&ao, 'd', NULL));
    CHECK(!agent_options_parse(&ao, '?', NULL));

    CHECK(agent_options_parse(&ao, 'E', "md5"));
    CHECK_EQ(ao.fp_hash, KEY_FP_MD5);
    CHECK(agent_options_parse(&ao, 't', "1h30m"));
    CHECK_EQ(ao.lifetime, 5400);
    CHECK(agent_options_parse(&ao, 'l', "audit.jsonl"));
    CHECK_STR(ao.audit_path, "audit.jsonl");
    CHECK(agent_options_parse(&ao, 'O', "allow-remote-pkcs11"));
    CHECK(ao.allow_remote_providers && !ao.no_restrict_websafe);
    CHECK(agent_options_parse(&ao, 'O', "no-restrict-websafe"));
    CHECK(ao.no_restrict_websafe);
    CHECK(agent_options_parse(&ao, 'O', "websafe-allow=web:*,ssh:*"));
    CHECK_STR(ao.websafe_allow, "web:*,ssh:*");
    CHECK(agent_options_parse(&ao, 'P', "/opt/sk/*"));
    CHECK_STR(ao.allowed_providers, "/opt/sk/*");

    /* Refused, as ssh-agent refuses them; what was given stays. */
    CHECK(refused(&ao, 'E', "sha1"));
    CHECK_EQ(ao.fp_hash, KEY_FP_MD5);
    CHECK(refused(&ao, 't', "soon"));
    CHECK_EQ(ao.lifetime, 5400);
    CHECK(refused(&ao, 'O', "frobnicate"));
    CHECK(refused(&ao, 'O', "websafe-allow"));
    CHECK(refused(&ao, 'O', "websafe-allow=again"));
    CHECK_STR(ao.websafe_allow, "web:*,ssh:*");
    CHECK(refused(&ao, 'P', "/usr/lib/*"));
    CHECK_STR(ao.allowed_providers, "/opt/sk/*");
}

static void test_apply(void)
{
    struct agent_options ao;
    struct agent ag;

    /* Nothing given: Unix (NULL) keeps the agent's list, Windows gives its own ("*"). */
    agent_options_init(&ao);
    agent_init(&ag, 0);
    ag.websafe_unrestricted = true;
    ag.providers.allow_remote = true;
    agent_options_apply(&ao, &ag, NULL);
    CHECK_STR(ag.providers.allowed, PROVIDER_DEFAULT_ALLOWED);
    CHECK(!ag.providers.allow_remote && !ag.websafe_unrestricted && ag.websafe_allow == NULL);
    agent_options_apply(&ao, &ag, "*");
    CHECK_STR(ag.providers.allowed, "*");
    agent_cleanup(&ag);

    /* Everything given: -P wins over either default. */
    CHECK(agent_options_parse(&ao, 'P', "/opt/sk/*"));
    CHECK(agent_options_parse(&ao, 'O', "allow-remote-pkcs11"));
    CHECK(agent_options_parse(&ao, 'O', "no-restrict-websafe"));
    CHECK(agent_options_parse(&ao, 'O', "websafe-allow=web:*"));
    agent_init(&ag, 0);
    agent_options_apply(&ao, &ag, "*");
    CHECK_STR(ag.providers.allowed, "/opt/sk/*");
    CHECK(ag.providers.allow_remote);
    CHECK(ag.websafe_unrestricted);
    CHECK_STR(ag.websafe_allow, "web:*");
    agent_options_apply(&ao, &ag, NULL);
    CHECK_STR(ag.providers.allowed, "/opt/sk/*");
    agent_cleanup(&ag);
}

int main(void)
{
    cli_set_die_cleanup(back_from_die);
    test_parse();
    test_apply();
    return check_finish("test_agent_options");
}
