/*
 * keyward fuzzing: the private key parser of ADD_IDENTITY,
 * key_from_private(), for plain keys and certificates.
 *
 * Input: what follows the message type in an add request (key type name,
 * the type's fields, then anything: the comment and constraints are not
 * this parser's business and are left unread).
 *
 * Beyond the sanitizers, a key that parses must be usable and be what it
 * claims to be:
 *   - it signs, and its signature verifies with its own public blob
 *     parsed separately (so a key whose private half does not match its
 *     public half can never get in);
 *   - a plain key serialises back to fields that parse to the same
 *     identity.
 * RSA keys sign with SHA-512 here; the other flags are fuzz_dispatch's.
 *
 * The first check found that an RSA key whose d is not e's inverse was
 * accepted (and then signed garbage); fixed in 08eed50, the corpus case
 * that showed it is tests/fuzz/regressions/privkey/rsa-d-not-inverse-of-e.
 */
#include <string.h>

#include "base/err.h"
#include "crypto/key.h"
#include "support.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t msg[] = "keyward fuzz_privkey";
    struct wire_reader r, r2;
    struct wire_writer sig, ser;
    struct key *k = NULL, *pub = NULL, *again = NULL;

    wire_reader_init(&r, data, size);
    if (key_from_private(&r, &k) != 0) {
        FUZZ_ASSERT(k == NULL);
        return 0;
    }
    FUZZ_ASSERT(k != NULL && k->has_private && k->pkey != NULL);
    FUZZ_ASSERT(r.error == 0 && r.pos <= size);

    wire_writer_init(&sig);
    FUZZ_ASSERT(key_from_blob(k->blob, k->blob_len, &pub) == 0);
    FUZZ_ASSERT(key_equal(k, pub) && key_equal_public(k, pub));
    if (key_is_sk(k)) {
        /* A FIDO key's private half is its authenticator's: key_sign() never signs. */
        FUZZ_ASSERT(k->sk_application != NULL && k->sk_key_handle_len > 0);
        FUZZ_ASSERT(key_sign(k, msg, sizeof(msg), 0, &sig) == KW_ERR_KEY_TYPE);
    } else {
        FUZZ_ASSERT(key_sign(k, msg, sizeof(msg), KEY_SIGN_RSA_SHA2_512, &sig) == 0);
        FUZZ_ASSERT(key_verify(pub, sig.buf, sig.len, msg, sizeof(msg)) == 0);
    }

    if (!k->is_cert) {
        wire_writer_init(&ser);
        FUZZ_ASSERT(key_private_serialize(k, &ser) == 0);
        wire_reader_init(&r2, ser.buf, ser.len);
        FUZZ_ASSERT(key_from_private(&r2, &again) == 0);
        FUZZ_ASSERT(wire_reader_finish(&r2) == 0);
        FUZZ_ASSERT(key_equal(k, again));
        key_free(again);
        wire_writer_free(&ser);
    }
    key_free(pub);
    wire_writer_free(&sig);
    key_free(k);
    return 0;
}
