/*
 * keyward fuzzing: the signature blob parser and verifier, key_verify(),
 * which checks session-bind signatures, certificate CA signatures and
 * (in tests) the agent's own signatures.
 *
 * Input: one signature blob (string algorithm, string signature). It is
 * verified over fixed data (sig_data.h) with the public half of every
 * fuzz key: Ed25519, ECDSA P-256, P-384 and P-521, RSA, and their
 * certificates (a certificate verifies as its key). seedprep seeds the
 * harness with real signatures by those keys over the same data, so the
 * fuzzer starts from blobs that verify and mutates from there.
 *
 * Beyond the sanitizers: a blob verifies under at most one key's public
 * half (the keys are distinct), and key_signature_algorithm() agrees with
 * the parser about the algorithm name.
 */
#include <string.h>

#include "agent/agent.h"
#include "crypto/key.h"
#include "agent/keystore.h"
#include "sig_data.h"
#include "support.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_KEYS 32

static struct key *pubs[MAX_KEYS];
static size_t npubs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct agent ag;
    size_t i;

    (void)argc;
    (void)argv;
    fuzz_log_setup();
    agent_init(&ag, 0);
    (void)fuzz_load_keys(&ag);
    /* Public halves only: what a verifier has. */
    for (i = 0; i < ag.keys.count && npubs < MAX_KEYS; i++) {
        const struct key *k = ag.keys.ids[i]->key;

        if (key_from_blob(k->blob, k->blob_len, &pubs[npubs]) == 0)
            npubs++;
    }
    agent_cleanup(&ag);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char alg[128];
    size_t i, verified = 0;
    const struct key *first = NULL;

    for (i = 0; i < npubs; i++) {
        if (key_verify(pubs[i], data, size, fuzz_sig_data, sizeof(fuzz_sig_data)) == 0) {
            /* A certificate and its key are the same public key. */
            if (first == NULL || !key_equal_public(first, pubs[i]))
                verified++;
            if (first == NULL)
                first = pubs[i];
        }
    }
    FUZZ_ASSERT(verified <= 1);
    if (key_signature_algorithm(data, size, alg, sizeof(alg)) == 0) {
        FUZZ_ASSERT(strlen(alg) < sizeof(alg));
    } else {
        FUZZ_ASSERT(verified == 0); /* a blob that verifies names its algorithm */
    }
    return 0;
}
