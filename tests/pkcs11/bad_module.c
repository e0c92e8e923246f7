/*
 * A misbehaving PKCS#11 module, for testing that keyward-pkcs11-helper and
 * keyward-agent survive one (test fixture only, never installed).
 *
 * It offers one slot with one token holding one ECDSA P-256 key (label
 * "bad-module-key"), whose public key is the curve's generator: a valid
 * point, so the key passes every public key check, and no signature this
 * module makes is ever valid. What goes wrong is chosen by the environment
 * variable KEYWARD_BAD_MODULE, read in C_Initialize:
 *
 *   abort       C_Sign calls abort() (the helper dies in the middle of a request)
 *   abort-init  C_Initialize calls abort() (the helper dies loading the module)
 *   hang        C_Sign never returns
 *   garbage     C_Sign returns 10 bytes: a malformed ECDSA signature (P-256's is 64)
 *   nokeys      the token holds no objects at all
 *   removed     C_Sign says the device was removed (CKR_DEVICE_REMOVED)
 *   (unset or anything else) C_Sign fails with CKR_FUNCTION_FAILED
 *
 * Any PIN logs in. Only the functions keyward-pkcs11-helper calls are
 * implemented; the others are NULL in the function list, as a broken
 * module's might be.
 */
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
/* The header then declares C_GetFunctionList as exported, not imported. */
#define CRYPTOKI_EXPORTS
#define MODULE_EXPORT
#else
#include <unistd.h>
#define MODULE_EXPORT __attribute__((visibility("default")))
#endif

#include <p11-kit/pkcs11.h>

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

enum mode { MODE_FAIL, MODE_ABORT, MODE_HANG, MODE_GARBAGE, MODE_NOKEYS, MODE_REMOVED };

static enum mode mode;
static int initialized;
static int signing;

#define SLOT     1
#define SESSION  7
#define PRIV_KEY 1
#define PUB_KEY  2

/* DER of the P-256 OID, and its generator as an uncompressed point in an OCTET STRING (facts). */
static const unsigned char ec_params[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                          0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char ec_point[] = {
    0x04, 0x41, 0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6,
    0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4,
    0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f,
    0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b,
    0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};
static const unsigned char key_id[] = {0x42};
static const char label[] = "bad-module-key";

/* The current search: which of the two objects are still to be returned. */
static int found[2];
static int nfound, next_found;

static CK_RV bad_initialize(CK_VOID_PTR args)
{
    const char *m = getenv("KEYWARD_BAD_MODULE");

    (void)args;
    mode = MODE_FAIL;
    if (m != NULL) {
        if (strcmp(m, "abort") == 0)
            mode = MODE_ABORT;
        else if (strcmp(m, "abort-init") == 0)
            abort();
        else if (strcmp(m, "hang") == 0)
            mode = MODE_HANG;
        else if (strcmp(m, "garbage") == 0)
            mode = MODE_GARBAGE;
        else if (strcmp(m, "nokeys") == 0)
            mode = MODE_NOKEYS;
        else if (strcmp(m, "removed") == 0)
            mode = MODE_REMOVED;
    }
    if (initialized)
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    initialized = 1;
    return CKR_OK;
}

static CK_RV bad_finalize(CK_VOID_PTR reserved)
{
    (void)reserved;
    if (!initialized)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    initialized = 0;
    return CKR_OK;
}

static CK_RV bad_get_info(CK_INFO_PTR info)
{
    memset(info, ' ', sizeof(*info));
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    info->flags = 0;
    info->libraryVersion.major = 1;
    info->libraryVersion.minor = 0;
    return CKR_OK;
}

static CK_RV bad_get_slot_list(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    (void)present;
    if (list == NULL) {
        *count = 1;
        return CKR_OK;
    }
    if (*count < 1) {
        *count = 1;
        return CKR_BUFFER_TOO_SMALL;
    }
    list[0] = SLOT;
    *count = 1;
    return CKR_OK;
}

static CK_RV bad_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    if (slot != SLOT)
        return CKR_SLOT_ID_INVALID;
    memset(info, ' ', sizeof(*info));
    info->flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED;
    return CKR_OK;
}

static CK_RV bad_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR session)
{
    (void)flags;
    (void)app;
    (void)notify;
    if (slot != SLOT)
        return CKR_SLOT_ID_INVALID;
    *session = SESSION;
    return CKR_OK;
}

static CK_RV bad_close_session(CK_SESSION_HANDLE session)
{
    return session == SESSION ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
}

static CK_RV bad_login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                       CK_ULONG len)
{
    (void)user;
    (void)pin;
    (void)len;
    return session == SESSION ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
}

static CK_RV bad_logout(CK_SESSION_HANDLE session)
{
    return session == SESSION ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
}

static int object_matches(CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
    CK_OBJECT_CLASS cls = obj == PRIV_KEY ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
    CK_ULONG i;

    for (i = 0; i < n; i++) {
        if (tmpl[i].type == CKA_CLASS) {
            if (tmpl[i].ulValueLen != sizeof(cls) || memcmp(tmpl[i].pValue, &cls, sizeof(cls)) != 0)
                return 0;
        } else if (tmpl[i].type == CKA_ID) {
            if (tmpl[i].ulValueLen != sizeof(key_id) ||
                memcmp(tmpl[i].pValue, key_id, sizeof(key_id)) != 0)
                return 0;
        } else if (tmpl[i].type == CKA_SIGN) {
            if (obj != PRIV_KEY)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

static CK_RV bad_find_init(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
    if (session != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    nfound = next_found = 0;
    if (mode == MODE_NOKEYS)
        return CKR_OK;
    if (object_matches(PRIV_KEY, tmpl, n))
        found[nfound++] = PRIV_KEY;
    if (object_matches(PUB_KEY, tmpl, n))
        found[nfound++] = PUB_KEY;
    return CKR_OK;
}

static CK_RV bad_find(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max,
                      CK_ULONG_PTR count)
{
    *count = 0;
    if (session != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    while (*count < max && next_found < nfound)
        objs[(*count)++] = (CK_OBJECT_HANDLE)found[next_found++];
    return CKR_OK;
}

static CK_RV bad_find_final(CK_SESSION_HANDLE session)
{
    return session == SESSION ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
}

static CK_RV put_attr(CK_ATTRIBUTE_PTR a, const void *v, CK_ULONG len)
{
    if (a->pValue == NULL) {
        a->ulValueLen = len;
        return CKR_OK;
    }
    if (a->ulValueLen < len) {
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(a->pValue, v, len);
    a->ulValueLen = len;
    return CKR_OK;
}

static CK_RV bad_get_attr(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
                          CK_ULONG n)
{
    static const CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
    static const CK_KEY_TYPE kt = CKK_EC;
    CK_RV rv = CKR_OK, r;
    CK_ULONG i;

    if (session != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    if (obj != PRIV_KEY && obj != PUB_KEY)
        return CKR_OBJECT_HANDLE_INVALID;
    for (i = 0; i < n; i++) {
        switch (tmpl[i].type) {
        case CKA_CLASS:
            r = put_attr(&tmpl[i], obj == PRIV_KEY ? &priv_cls : &pub_cls, sizeof(priv_cls));
            break;
        case CKA_KEY_TYPE:
            r = put_attr(&tmpl[i], &kt, sizeof(kt));
            break;
        case CKA_ID:
            r = put_attr(&tmpl[i], key_id, sizeof(key_id));
            break;
        case CKA_LABEL:
            r = put_attr(&tmpl[i], label, sizeof(label) - 1);
            break;
        case CKA_EC_PARAMS:
            r = put_attr(&tmpl[i], ec_params, sizeof(ec_params));
            break;
        case CKA_EC_POINT:
            if (obj == PUB_KEY) {
                r = put_attr(&tmpl[i], ec_point, sizeof(ec_point));
                break;
            }
            /* fall through */
        default:
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            r = CKR_ATTRIBUTE_TYPE_INVALID;
            break;
        }
        if (r != CKR_OK)
            rv = r;
    }
    return rv;
}

static CK_RV bad_sign_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    if (session != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    if (key != PRIV_KEY)
        return CKR_KEY_HANDLE_INVALID;
    if (mech->mechanism != CKM_ECDSA)
        return CKR_MECHANISM_INVALID;
    signing = 1;
    return CKR_OK;
}

static CK_RV bad_sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                      CK_ULONG_PTR siglen)
{
    (void)data;
    (void)len;
    if (session != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    if (!signing)
        return CKR_OPERATION_NOT_INITIALIZED;
    signing = 0;
    switch (mode) {
    case MODE_ABORT:
        abort();
    case MODE_HANG:
        for (;;) {
#ifdef _WIN32
            Sleep(INFINITE);
#else
            sleep(3600);
#endif
        }
    case MODE_GARBAGE:
        if (sig == NULL || *siglen < 10) {
            *siglen = 10;
            return sig == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
        }
        memset(sig, 0x5a, 10);
        *siglen = 10;
        return CKR_OK;
    case MODE_REMOVED:
        return CKR_DEVICE_REMOVED; /* the card was pulled out after it was loaded */
    default:
        return CKR_FUNCTION_FAILED;
    }
}

static CK_FUNCTION_LIST functions = {
    .version = {2, 40},
    .C_Initialize = bad_initialize,
    .C_Finalize = bad_finalize,
    .C_GetInfo = bad_get_info,
    .C_GetFunctionList = C_GetFunctionList,
    .C_GetSlotList = bad_get_slot_list,
    .C_GetTokenInfo = bad_get_token_info,
    .C_OpenSession = bad_open_session,
    .C_CloseSession = bad_close_session,
    .C_Login = bad_login,
    .C_Logout = bad_logout,
    .C_GetAttributeValue = bad_get_attr,
    .C_FindObjectsInit = bad_find_init,
    .C_FindObjects = bad_find,
    .C_FindObjectsFinal = bad_find_final,
    .C_SignInit = bad_sign_init,
    .C_Sign = bad_sign,
};

MODULE_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    *list = &functions;
    return CKR_OK;
}
