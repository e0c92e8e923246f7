/*
 * service_store: writes and reads keys in the store of Windows' own agent
 * service ("OpenSSH Authentication Agent"), exactly in its format, for the
 * import tests (import_windows_agent.sh):
 *
 *   service_store add KIND COMMENT PUBFILE   a fresh key (ed25519, ecdsa, rsa);
 *                                            its OpenSSH .pub line goes to PUBFILE
 *   service_store bad WHAT                   an entry the import must skip:
 *                                            undecryptable, nopriv, mismatch, garbage,
 *                                            pkcs11 (a token's key: no private part)
 *   service_store dump                       every subkey and value, hashed, sorted
 *   service_store clear                      deletes the whole store
 *   service_store sysonly                    the store's DACL: SYSTEM only (an
 *                                            unelevated reader, as Wine can show one)
 *   service_store restore                    the service's own DACL back
 *   service_store dacl PATH                  prints a file's or folder's DACL as SDDL
 *                                            (keyward's own store, for key_store.sh)
 *
 * The format, as Win32-OpenSSH's agent (keyagent-request.c) writes it:
 * HKCU\SOFTWARE\OpenSSH\Agent\Keys\<SHA256 fingerprint>, with the default
 * value CryptProtectData() (user scope, no entropy, no prompt) of the key's
 * private part exactly as ADD_IDENTITY carries it, "pub" the public blob
 * (REG_BINARY), "type" OpenSSH's key type number (REG_DWORD) and "comment"
 * the comment's bytes (REG_BINARY); the keys are created with the DACL
 * D:P(A;;GA;;;SY)(A;;GA;;;BA).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <dpapi.h>
#include <aclapi.h>
#include <sddl.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/wire.h"
#include "crypto/key.h"

#define KEYS_PATH L"SOFTWARE\\OpenSSH\\Agent\\Keys"

/* OpenSSH's enum sshkey_types (sshkey.h). */
enum { SSH_KEY_RSA = 0, SSH_KEY_ECDSA = 2, SSH_KEY_ED25519 = 3 };

static void die(const char *what, long e)
{
    fprintf(stderr, "service_store: %s (error %ld)\n", what, e);
    exit(1);
}

static HKEY create_key(HKEY parent, const char *name)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_ATTRIBUTES sa;
    HKEY k;
    LSTATUS e;

    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA("D:P(A;;GA;;;SY)(A;;GA;;;BA)",
                                                              SDDL_REVISION_1, &sd, NULL))
        die("ConvertStringSecurityDescriptorToSecurityDescriptor", (long)GetLastError());
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = sd;
    sa.bInheritHandle = FALSE;
    e = RegCreateKeyExA(parent, name, 0, NULL, 0, KEY_WRITE | KEY_WOW64_64KEY, &sa, &k, NULL);
    LocalFree(sd);
    if (e != ERROR_SUCCESS)
        die("RegCreateKeyEx", e);
    return k;
}

static void set_binary(HKEY k, const wchar_t *name, const void *data, size_t len)
{
    LSTATUS e = RegSetValueExW(k, name, 0, REG_BINARY, data, (DWORD)len);

    if (e != ERROR_SUCCESS)
        die("RegSetValueEx", e);
}

/* Writes one entry; priv is protected here. fp names the subkey. */
static void write_entry(const char *fp, const uint8_t *priv, size_t priv_len, const uint8_t *pub,
                        size_t pub_len, DWORD type, const char *comment, bool with_priv)
{
    HKEY root, sub;
    DATA_BLOB in = {(DWORD)priv_len, (BYTE *)priv}, out = {0, NULL};
    LSTATUS e;

    root = create_key(HKEY_CURRENT_USER, "SOFTWARE\\OpenSSH\\Agent\\Keys");
    sub = create_key(root, fp);
    if (with_priv) {
        if (!CryptProtectData(&in, NULL, NULL, NULL, NULL, 0, &out))
            die("CryptProtectData", (long)GetLastError());
        set_binary(sub, NULL, out.pbData, out.cbData);
        LocalFree(out.pbData);
    }
    set_binary(sub, L"pub", pub, pub_len);
    if ((e = RegSetValueExW(sub, L"type", 0, REG_DWORD, (const BYTE *)&type, 4)) != ERROR_SUCCESS)
        die("RegSetValueEx type", e);
    set_binary(sub, L"comment", comment, strlen(comment));
    RegCloseKey(sub);
    RegCloseKey(root);
}

static struct key *fresh_key(const char *kind, DWORD *type)
{
    struct key *k = NULL;
    int r;

    if (strcmp(kind, "ed25519") == 0) {
        r = key_generate(KEY_ED25519, 0, &k);
        *type = SSH_KEY_ED25519;
    } else if (strcmp(kind, "ecdsa") == 0) {
        r = key_generate(KEY_ECDSA_P256, 0, &k);
        *type = SSH_KEY_ECDSA;
    } else if (strcmp(kind, "rsa") == 0) {
        r = key_generate(KEY_RSA, 2048, &k);
        *type = SSH_KEY_RSA;
    } else {
        die("unknown key kind", 0);
        return NULL;
    }
    if (r != 0)
        die("key_generate", r);
    return k;
}

static void write_pub(const char *path, const struct key *k, const char *comment)
{
    char *b64 = malloc(4 * ((k->blob_len + 2) / 3) + 1);
    FILE *f;

    if (b64 == NULL)
        die("out of memory", 0);
    EVP_EncodeBlock((unsigned char *)b64, k->blob, (int)k->blob_len);
    if ((f = fopen(path, "w")) == NULL)
        die("cannot write the .pub file", 0);
    fprintf(f, "%s %s %s\n", key_type_name(k), b64, comment);
    fclose(f);
    free(b64);
}

static void add(const char *kind, const char *comment, const char *pubfile)
{
    struct wire_writer w;
    struct key *k;
    DWORD type;
    char fp[KEY_FINGERPRINT_SIZE];

    k = fresh_key(kind, &type);
    wire_writer_init(&w);
    if (key_private_serialize(k, &w) != 0 || w.error != 0)
        die("key_private_serialize", w.error);
    key_fingerprint(k, fp, sizeof(fp));
    write_entry(fp, w.buf, w.len, k->blob, k->blob_len, type, comment, true);
    write_pub(pubfile, k, comment);
    printf("%s\n", fp);
    wire_writer_free(&w);
    key_free(k);
}

static void bad(const char *what)
{
    struct wire_writer w;
    struct key *k, *other;
    DWORD type;
    char fp[KEY_FINGERPRINT_SIZE];
    uint8_t junk[64];
    HKEY root, sub;

    k = fresh_key("ed25519", &type);
    wire_writer_init(&w);
    if (key_private_serialize(k, &w) != 0 || w.error != 0)
        die("key_private_serialize", w.error);
    key_fingerprint(k, fp, sizeof(fp));
    if (strcmp(what, "undecryptable") == 0) {
        /* The default value is not DPAPI output (another user's blob looks no better). */
        write_entry(fp, w.buf, w.len, k->blob, k->blob_len, type, what, false);
        RAND_bytes(junk, sizeof(junk));
        root = create_key(HKEY_CURRENT_USER, "SOFTWARE\\OpenSSH\\Agent\\Keys");
        sub = create_key(root, fp);
        set_binary(sub, NULL, junk, sizeof(junk));
        RegCloseKey(sub);
        RegCloseKey(root);
    } else if (strcmp(what, "nopriv") == 0) {
        write_entry(fp, w.buf, w.len, k->blob, k->blob_len, type, what, false);
    } else if (strcmp(what, "mismatch") == 0) {
        other = fresh_key("ed25519", &type);
        write_entry(fp, w.buf, w.len, other->blob, other->blob_len, type, what, true);
        key_free(other);
    } else if (strcmp(what, "pkcs11") == 0) {
        /* A token's key: the public blob as the default value, the provider as comment. */
        write_entry(fp, w.buf, w.len, k->blob, k->blob_len, type, "C:\\token\\pkcs11.dll", false);
        root = create_key(HKEY_CURRENT_USER, "SOFTWARE\\OpenSSH\\Agent\\Keys");
        sub = create_key(root, fp);
        set_binary(sub, NULL, k->blob, k->blob_len);
        RegCloseKey(sub);
        RegCloseKey(root);
    } else if (strcmp(what, "garbage") == 0) {
        /* Decrypts, but is not a private key: cut in the middle. */
        write_entry(fp, w.buf, w.len / 2, k->blob, k->blob_len, type, what, true);
    } else {
        die("unknown kind of bad entry", 0);
    }
    printf("%s\n", fp);
    wire_writer_free(&w);
    key_free(k);
}

/* Every subkey, and each value's name, type and SHA-256, one line each. */
static void dump(void)
{
    HKEY root, sub;
    wchar_t name[256], vname[256];
    DWORD i, j, n, vn, type, len;
    uint8_t data[65536], md[32];
    unsigned mdlen;
    LSTATUS e;

    e = RegOpenKeyExW(HKEY_CURRENT_USER, KEYS_PATH, 0, KEY_READ | KEY_WOW64_64KEY, &root);
    if (e == ERROR_FILE_NOT_FOUND) {
        printf("no store\n");
        return;
    }
    if (e != ERROR_SUCCESS)
        die("RegOpenKeyEx", e);
    for (i = 0;; i++) {
        n = 256;
        if (RegEnumKeyExW(root, i, name, &n, NULL, NULL, NULL, NULL) != ERROR_SUCCESS)
            break;
        if ((e = RegOpenKeyExW(root, name, 0, KEY_READ | KEY_WOW64_64KEY, &sub)) != ERROR_SUCCESS)
            die("RegOpenKeyEx subkey", e);
        for (j = 0;; j++) {
            vn = 256;
            len = sizeof(data);
            if (RegEnumValueW(sub, j, vname, &vn, NULL, &type, data, &len) != ERROR_SUCCESS)
                break;
            EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
            printf("%ls %ls %lu", name, vn ? vname : L"(default)", type);
            for (n = 0; n < mdlen; n++)
                printf("%02x", md[n]);
            printf("\n");
        }
        RegCloseKey(sub);
    }
    RegCloseKey(root);
}

int main(int argc, char **argv)
{
    LSTATUS e;

    if (argc == 5 && strcmp(argv[1], "add") == 0)
        add(argv[2], argv[3], argv[4]);
    else if (argc == 3 && strcmp(argv[1], "bad") == 0)
        bad(argv[2]);
    else if (argc == 2 && strcmp(argv[1], "dump") == 0)
        dump();
    else if (argc == 2 && strcmp(argv[1], "clear") == 0) {
        e = RegDeleteTreeW(HKEY_CURRENT_USER, KEYS_PATH);
        if (e != ERROR_SUCCESS && e != ERROR_FILE_NOT_FOUND)
            die("RegDeleteTree", e);
    } else if (argc == 3 && strcmp(argv[1], "dacl") == 0) {
        PSECURITY_DESCRIPTOR sd = NULL;
        char *sddl = NULL;
        DWORD r = GetNamedSecurityInfoA(argv[2], SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL,
                                        NULL, NULL, NULL, &sd);

        if (r != ERROR_SUCCESS)
            die("GetNamedSecurityInfo", (long)r);
        if (!ConvertSecurityDescriptorToStringSecurityDescriptorA(
                sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &sddl, NULL))
            die("ConvertSecurityDescriptorToStringSecurityDescriptor", (long)GetLastError());
        printf("%s\n", sddl);
        LocalFree(sddl);
        LocalFree(sd);
    } else if (argc == 2 && (strcmp(argv[1], "sysonly") == 0 || strcmp(argv[1], "restore") == 0)) {
        /* The owner may always change the DACL, so restore undoes sysonly. */
        const char *sddl =
            strcmp(argv[1], "sysonly") == 0 ? "D:P(A;;GA;;;SY)" : "D:P(A;;GA;;;SY)(A;;GA;;;BA)";
        PSECURITY_DESCRIPTOR sd = NULL;
        HKEY k;

        if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
            die("ConvertStringSecurityDescriptorToSecurityDescriptor", (long)GetLastError());
        if ((e = RegOpenKeyExW(HKEY_CURRENT_USER, KEYS_PATH, 0, WRITE_DAC | KEY_WOW64_64KEY, &k)) !=
            ERROR_SUCCESS)
            die("RegOpenKeyEx", e);
        if ((e = RegSetKeySecurity(k, DACL_SECURITY_INFORMATION, sd)) != ERROR_SUCCESS)
            die("RegSetKeySecurity", e);
        RegCloseKey(k);
        LocalFree(sd);
    } else {
        fprintf(stderr, "usage: service_store add KIND COMMENT PUBFILE | bad WHAT | dump | clear | "
                        "sysonly | restore | dacl PATH\n");
        return 2;
    }
    return 0;
}
