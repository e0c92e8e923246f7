/*
 * keyward fuzzing: the userauth request inside a sign request,
 * userauth_parse(), which decides what a destination-constrained key may
 * sign.
 *
 * Input: the data of a sign request. It is parsed for every fuzz key (a
 * request is only valid for the key it names). Beyond the sanitizers:
 * what parses names a non-empty user that fits its buffer, a non-empty
 * session id inside the input, and the key it was parsed for.
 */
#include <string.h>

#include "agent/agent.h"
#include "agent/keystore.h"
#include "support.h"
#include "agent/userauth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct agent ag;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_setup();
    agent_init(&ag, 0);
    (void)fuzz_load_keys(&ag);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct userauth_request ua;
    size_t i, ulen;

    for (i = 0; i < ag.keys.count; i++) {
        if (userauth_parse(data, size, ag.keys.ids[i]->key, &ua) != 0)
            continue;
        ulen = strnlen(ua.user, sizeof(ua.user));
        FUZZ_ASSERT(ulen > 0 && ulen < sizeof(ua.user));
        FUZZ_ASSERT(ua.sid.len > 0 && ua.sid.ptr >= data && ua.sid.ptr + ua.sid.len <= data + size);
        userauth_free(&ua);
    }
    return 0;
}
