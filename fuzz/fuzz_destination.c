/*
 * keyward fuzzing: destination constraints (restrict-destination-v00,
 * `ssh-add -h`): dest_decode() of the constraint's body and
 * dest_permitted() of what decodes, against fixed session bindings.
 *
 * Input: the body of the restrict-destination-v00@openssh.com constraint
 * (a list of {from hop, to hop, reserved}).
 *
 * The bindings are made once from the fuzz keys' public halves, including
 * a host certificate for fuzz.example.org (fuzz/keys): none; one for
 * authentication; a failed attempt; a forwarding hop then authentication;
 * two forwarding hops (a forwarded listing); the host certificate. Each
 * decoded constraint is evaluated against each set for listing (no user)
 * and for a few users, at a fixed time so that results are reproducible.
 *
 * Beyond the sanitizers: decoding is all or nothing (a failure leaves
 * nothing allocated, a success at least one constraint), and the answer
 * for a set with a failed binding attempt and no bindings is always no.
 */
#include <string.h>

#include "agent/agent.h"
#include "agent/binding.h"
#include "agent/destination.h"
#include "agent/keystore.h"
#include "support.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSETS     7
#define FIXED_NOW 1700000000u /* inside the host certificate's validity */

static struct binding_set sets[NSETS];

/* Host keys for the bindings: the public halves of the fuzz keys. */
static struct key *hostkeys[16];
static size_t nhostkeys;

static void bind(struct binding_set *bs, size_t key, uint8_t sidbyte, bool forwarding)
{
    uint8_t sid[32];
    const char *why;
    size_t slot;

    if (nhostkeys == 0)
        return;
    memset(sid, sidbyte, sizeof(sid));
    if (binding_record(bs, key_ref(hostkeys[key % nhostkeys]), sid, sizeof(sid), forwarding, &why,
                       &slot) != BINDING_RECORDED)
        key_free(hostkeys[key % nhostkeys]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct agent ag;
    size_t i, cert = 0;

    (void)argc;
    (void)argv;
    fuzz_log_setup();
    agent_init(&ag, 0);
    (void)fuzz_load_keys(&ag);
    for (i = 0; i < ag.keys.count && nhostkeys < 16; i++) {
        const struct key *k = ag.keys.ids[i]->key;

        if (key_from_blob(k->blob, k->blob_len, &hostkeys[nhostkeys]) != 0)
            continue;
        if (k->is_cert && k->cert != NULL && k->cert->type == KEY_CERT_HOST)
            cert = nhostkeys;
        nhostkeys++;
    }
    agent_cleanup(&ag);
    for (i = 0; i < NSETS; i++)
        binding_set_init(&sets[i]);
    /* sets[0]: a local client, no bindings. */
    bind(&sets[1], 0, 1, false); /* ssh authenticating to host 0 */
    binding_note_failure(&sets[2]);
    bind(&sets[3], 0, 1, true); /* forwarded through host 0, authenticating to host 1 */
    bind(&sets[3], 1, 2, false);
    bind(&sets[4], 0, 1, true); /* listing through two forwarding hops */
    bind(&sets[4], 2, 2, true);
    bind(&sets[5], cert, 3, false); /* authenticating to a host with a certificate */
    bind(&sets[6], cert, 3, true);  /* forwarded through it to host 3 */
    bind(&sets[6], 3, 4, false);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const users[] = {NULL, "root", "fuzz", ""};
    struct dest_constraints dc;
    char why[256];
    size_t s, u;

    if (dest_decode((struct wire_view){data, size}, &dc) != 0) {
        FUZZ_ASSERT(dc.items == NULL && dc.count == 0);
        return 0;
    }
    FUZZ_ASSERT(dc.count >= 1 && dc.count <= DEST_MAX_CONSTRAINTS);
    for (s = 0; s < NSETS; s++) {
        for (u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
            bool ok;

            why[0] = '\0';
            ok = dest_permitted(&dc, &sets[s], users[u], FIXED_NOW, why, sizeof(why));
            FUZZ_ASSERT(ok || why[0] != '\0'); /* a refusal says why */
            if (s == 2)
                FUZZ_ASSERT(!ok);
        }
    }
    dest_free(&dc);
    FUZZ_ASSERT(dc.items == NULL && dc.count == 0);
    return 0;
}
