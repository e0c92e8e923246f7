/*
 * keyward fuzzing: session-bind@openssh.com, from the request body to the
 * binding rules: proto_decode_session_bind(), key_verify() of the host's
 * signature over the session id, and binding_record().
 *
 * Input: the bodies of the session-bind requests one connection sends
 * (what follows the extension name), each as an SSH string, one after
 * another; at most 32 are used.
 *
 * Each body is decoded and verified, and recorded on two binding sets:
 *   - `real` only when the signature verifies, as agent.c does (its
 *     failures noted with binding_note_failure());
 *   - `rules` whenever it decodes, so that the binding rules are fuzzed
 *     even where the fuzzer cannot forge a signature.
 * The rules are checked as invariants after every step: never more than
 * BINDING_MAX bindings; nothing recorded after a binding for
 * authentication; a recorded binding holds exactly the session id it was
 * given; a repeat changes nothing; a refusal is remembered.
 *
 * Destination constraints (restrict-destination-v00@openssh.com), which
 * are checked against these bindings, have their own harness,
 * fuzz_destination.c.
 */
#include <string.h>

#include "agent/binding.h"
#include "base/err.h"
#include "agent/request.h"
#include "support.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BINDS 32

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_setup();
    return 0;
}

static void check_set(const struct binding_set *bs)
{
    size_t i;

    FUZZ_ASSERT(bs->count <= BINDING_MAX);
    FUZZ_ASSERT(bs->count == 0 || bs->attempted);
    for (i = 0; i < bs->count; i++) {
        FUZZ_ASSERT(bs->slots[i].hostkey != NULL);
        FUZZ_ASSERT(bs->slots[i].sid_len <= BINDING_MAX_SID);
        /* A binding for authentication is the last one a connection gets. */
        FUZZ_ASSERT(bs->slots[i].forwarding || i == bs->count - 1);
    }
}

/* Records a binding and checks that the result is consistent with the set. */
static void record(struct binding_set *bs, const struct session_bind_request *sb)
{
    size_t before = bs->count, slot = BINDING_MAX;
    const char *why = NULL;
    enum binding_result res;
    struct key *hostkey = key_ref(sb->hostkey);

    res = binding_record(bs, hostkey, sb->sid.ptr, sb->sid.len, sb->forwarding, &why, &slot);
    switch (res) {
    case BINDING_RECORDED:
        FUZZ_ASSERT(bs->count == before + 1 && slot == before);
        FUZZ_ASSERT(bs->slots[slot].hostkey == hostkey); /* the set owns this reference */
        FUZZ_ASSERT(wire_view_eq(sb->sid, bs->slots[slot].sid, bs->slots[slot].sid_len));
        FUZZ_ASSERT(sb->sid.len <= BINDING_MAX_SID);
        break;
    case BINDING_ALREADY:
        FUZZ_ASSERT(bs->count == before && slot < before);
        FUZZ_ASSERT(key_equal(bs->slots[slot].hostkey, sb->hostkey));
        key_free(hostkey);
        break;
    case BINDING_REFUSED:
        FUZZ_ASSERT(bs->count == before && why != NULL);
        key_free(hostkey);
        break;
    default:
        FUZZ_ASSERT(!"unknown binding_result");
    }
    FUZZ_ASSERT(bs->attempted);
    check_set(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct binding_set real, rules;
    struct session_bind_request sb;
    struct wire_reader r;
    struct wire_view body;
    int n;

    binding_set_init(&real);
    binding_set_init(&rules);
    wire_reader_init(&r, data, size);
    for (n = 0; n < MAX_BINDS && wire_remaining(&r) > 0; n++) {
        body = wire_get_string(&r);
        if (r.error)
            break;
        if (proto_decode_session_bind(body, &sb) != 0) {
            FUZZ_ASSERT(sb.hostkey == NULL);
            binding_note_failure(&real);
            continue;
        }
        FUZZ_ASSERT(sb.hostkey != NULL);
        record(&rules, &sb);
        if (key_verify(sb.hostkey, sb.signature.ptr, sb.signature.len, sb.sid.ptr, sb.sid.len) == 0)
            record(&real, &sb);
        else
            binding_note_failure(&real);
        proto_session_bind_free(&sb);
    }
    check_set(&real);
    binding_set_clear(&real);
    binding_set_clear(&rules);
    return 0;
}
