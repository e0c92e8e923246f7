/*
 * keyward: the built-in FIDO provider ("internal"), over libfido2. See
 * fido.h.
 *
 * One assertion per signature, as OpenSSH's built-in provider makes one:
 * the relying party is the key's application, the only credential allowed
 * is its key handle, the client data hash is SHA-256 of the data, and user
 * presence (and verification) is asked for as the key's flags say. With
 * several authenticators plugged in, each is first asked without a touch
 * whether it knows the handle, so that only the right one blinks.
 */
#include "sk/fido.h"

#include <stdio.h>
#include <string.h>

#include <fido.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "base/err.h"
#include "crypto/key.h"
#include "proto/helper_msg.h"

#define MAX_DEVICES 16

/* An assertion for the key on dev; up says whether to ask for a touch. */
static int assert_once(fido_dev_t *dev, fido_assert_t *a, const char *application,
                       const uint8_t *hash, const uint8_t *key_handle, size_t key_handle_len,
                       uint8_t flags, bool up, const char *pin)
{
    int r;

    if ((r = fido_assert_set_clientdata_hash(a, hash, 32)) != FIDO_OK ||
        (r = fido_assert_set_rp(a, application)) != FIDO_OK ||
        (r = fido_assert_allow_cred(a, key_handle, key_handle_len)) != FIDO_OK ||
        (r = fido_assert_set_up(a, up ? FIDO_OPT_TRUE : FIDO_OPT_FALSE)) != FIDO_OK)
        return r;
    if (up && (flags & KEY_SK_USER_VERIFICATION_REQD) &&
        (r = fido_assert_set_uv(a, FIDO_OPT_TRUE)) != FIDO_OK)
        return r;
    return fido_dev_get_assert(dev, a, up ? pin : NULL);
}

/* Opens the authenticator that knows the key handle (asked without a touch). */
static fido_dev_t *find_device(const char *application, const uint8_t *hash,
                               const uint8_t *key_handle, size_t key_handle_len, char *why,
                               size_t whysize)
{
    fido_dev_info_t *list = fido_dev_info_new(MAX_DEVICES);
    fido_dev_t *dev = NULL, *found = NULL;
    fido_assert_t *a = NULL;
    size_t n = 0, i;
    int r;

    if (list == NULL || fido_dev_info_manifest(list, MAX_DEVICES, &n) != FIDO_OK || n == 0) {
        snprintf(why, whysize, "no FIDO authenticator found");
        goto out;
    }
    for (i = 0; i < n && found == NULL; i++) {
        const fido_dev_info_t *di = fido_dev_info_ptr(list, i);

        if ((dev = fido_dev_new()) == NULL)
            break;
        if (fido_dev_open(dev, fido_dev_info_path(di)) != FIDO_OK) {
            fido_dev_free(&dev);
            continue;
        }
        /* A lone authenticator is simply used; several are asked first. */
        if (n == 1) {
            found = dev;
            break;
        }
        if ((a = fido_assert_new()) != NULL) {
            r = assert_once(dev, a, application, hash, key_handle, key_handle_len, 0, false, NULL);
            fido_assert_free(&a);
            if (r == FIDO_OK) {
                found = dev;
                break;
            }
        }
        fido_dev_close(dev);
        fido_dev_free(&dev);
    }
    if (found == NULL)
        snprintf(why, whysize, "no FIDO authenticator plugged in knows this key (%lu tried)",
                 (unsigned long)n);
out:
    fido_dev_info_free(&list, MAX_DEVICES);
    return found;
}

int sk_fido_sign(uint32_t alg, const char *application, const uint8_t *key_handle,
                 size_t key_handle_len, uint8_t flags, const uint8_t *data, size_t data_len,
                 const char *pin, struct wire_writer *w, char *why, size_t whysize)
{
    uint8_t hash[32], rb[33], sb[33];
    unsigned int hlen = sizeof(hash);
    fido_dev_t *dev = NULL;
    fido_assert_t *a = NULL;
    ECDSA_SIG *es = NULL;
    const BIGNUM *br, *bs;
    const unsigned char *p;
    struct sk_signature sig;
    int r, err = KW_ERR_DENIED;

    fido_init(0);
    if (EVP_Digest(data, data_len, hash, &hlen, EVP_sha256(), NULL) != 1) {
        snprintf(why, whysize, "cannot hash the data");
        return KW_ERR_INTERNAL;
    }
    if ((dev = find_device(application, hash, key_handle, key_handle_len, why, whysize)) == NULL)
        return KW_ERR_NOT_FOUND;
    if ((a = fido_assert_new()) == NULL) {
        err = KW_ERR_ALLOC;
        goto out;
    }
    r = assert_once(dev, a, application, hash, key_handle, key_handle_len, flags,
                    (flags & KEY_SK_USER_PRESENCE_REQD) != 0, pin);
    if (r != FIDO_OK || fido_assert_count(a) != 1) {
        snprintf(why, whysize, "the authenticator refused: %s", fido_strerr(r));
        goto out;
    }
    memset(&sig, 0, sizeof(sig));
    sig.flags = fido_assert_flags(a, 0);
    sig.counter = fido_assert_sigcount(a, 0);
    if (alg == HELPER_SK_ALG_ED25519) {
        sig.sig_r = fido_assert_sig_ptr(a, 0);
        sig.sig_r_len = fido_assert_sig_len(a, 0);
    } else {
        /* The authenticator's ECDSA signature is DER; SSH wants r and s. */
        p = fido_assert_sig_ptr(a, 0);
        if (p == NULL || (es = d2i_ECDSA_SIG(NULL, &p, (long)fido_assert_sig_len(a, 0))) == NULL) {
            snprintf(why, whysize, "the authenticator's ECDSA signature is not DER");
            goto out;
        }
        ECDSA_SIG_get0(es, &br, &bs);
        if (BN_num_bytes(br) > (int)sizeof(rb) || BN_num_bytes(bs) > (int)sizeof(sb)) {
            snprintf(why, whysize, "the authenticator's ECDSA signature is too long");
            goto out;
        }
        sig.sig_r_len = (size_t)BN_bn2bin(br, rb);
        sig.sig_s_len = (size_t)BN_bn2bin(bs, sb);
        sig.sig_r = rb;
        sig.sig_s = sb;
    }
    if ((err = sk_signature_encode(alg, &sig, w)) != 0) {
        snprintf(why, whysize, "the authenticator's signature has the wrong shape");
        goto out;
    }
    err = 0;
out:
    ECDSA_SIG_free(es);
    fido_assert_free(&a);
    fido_dev_close(dev);
    fido_dev_free(&dev);
    return err;
}
