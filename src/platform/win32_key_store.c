/*
 * keyward on Windows: the key store's folder and files, and the service's
 * registry store. See win32_key_store.h.
 */
#include "platform/win32_key_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <aclapi.h>
#include <dpapi.h>
#include <sddl.h>

#include "base/err.h"
#include "base/log.h"
#include "base/wire.h"
#include "platform/platform.h"
#include "platform/win32_wide.h"

static const uint8_t store_magic[8] = {'K', 'W', 'K', 'E', 'Y', 'S', 'T', '\n'};

/*
 * win32_wide_to_utf8(w), and if it returns NULL, why in *r: KW_ERR_BAD_FORMAT
 * if w is not valid UTF-16 (Windows allows a lone surrogate in a file or
 * registry name), KW_ERR_ALLOC if out of memory. A name that cannot be
 * written as UTF-8 is skipped; running out of memory stops the operation.
 */
static char *name_to_utf8(const wchar_t *w, int *r)
{
    char *s;

    SetLastError(ERROR_SUCCESS);
    if ((s = win32_wide_to_utf8(w)) == NULL)
        *r = GetLastError() == ERROR_NO_UNICODE_TRANSLATION ? KW_ERR_BAD_FORMAT : KW_ERR_ALLOC;
    return s;
}

/* dir\name.ext as a fresh wide string; NULL if out of memory or name is not UTF-8. */
static wchar_t *entry_path(const struct win_key_store *s, const char *name, const char *ext)
{
    char buf[256];
    wchar_t *wname, *p;
    size_t n;

    if (snprintf(buf, sizeof(buf), "%s%s", name, ext) >= (int)sizeof(buf) ||
        (wname = win32_utf8_to_wide(buf)) == NULL)
        return NULL;
    n = wcslen(s->dir) + 1 + wcslen(wname) + 1;
    if ((p = calloc(n, sizeof(*p))) != NULL)
        swprintf(p, n, L"%ls\\%ls", s->dir, wname);
    free(wname);
    return p;
}

/* The protected DACL of the folder and, inherited, of every file in it. */
static int store_security(PSECURITY_DESCRIPTOR *sd)
{
    char sddl[320];

    snprintf(sddl, sizeof(sddl), "D:P(A;OICI;FA;;;%s)(A;OICI;FA;;;SY)", platform_user_sid());
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, sd, NULL))
        return KW_ERR_SYSTEM;
    return 0;
}

/* Creates dir with the store's DACL, or puts that DACL on the dir that is there. */
static int make_store_dir(const wchar_t *dir, char *err, size_t errsize)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_ATTRIBUTES sa;
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    DWORD e = 0, attrs;
    int r = 0;

    if (store_security(&sd) != 0) {
        snprintf(err, errsize, "cannot build the store's DACL (error %lu)", GetLastError());
        return KW_ERR_SYSTEM;
    }
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = sd;
    sa.bInheritHandle = FALSE;
    if (CreateDirectoryW(dir, &sa))
        goto out;
    if ((e = GetLastError()) != ERROR_ALREADY_EXISTS) {
        snprintf(err, errsize, "cannot create the folder (error %lu)", e);
        r = KW_ERR_SYSTEM;
        goto out;
    }
    /* There already: it must be a folder, and have our DACL whoever made it. */
    attrs = GetFileAttributesW(dir);
    if (attrs == INVALID_FILE_ATTRIBUTES || !(attrs & FILE_ATTRIBUTE_DIRECTORY)) {
        snprintf(err, errsize, "it is not a folder");
        r = KW_ERR_SYSTEM;
        goto out;
    }
    if (GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) && present) {
        e = SetNamedSecurityInfoW((wchar_t *)dir, SE_FILE_OBJECT,
                                  DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                                  NULL, NULL, dacl, NULL);
        if (e != ERROR_SUCCESS)
            log_error("key store: cannot set the folder's DACL (error %lu); "
                      "it keeps the one it has",
                      e);
    }
out:
    LocalFree(sd);
    return r;
}

int win_key_store_open(struct win_key_store *s, const char *dir, char *err, size_t errsize)
{
    wchar_t base[MAX_PATH];
    DWORD n, e;
    size_t len;
    int r;

    memset(s, 0, sizeof(*s));
    if (dir != NULL) {
        if ((s->dir = win32_utf8_to_wide(dir)) == NULL) {
            snprintf(err, errsize, "the store's path is not valid UTF-8");
            return KW_ERR_BAD_FORMAT;
        }
        len = wcslen(s->dir);
        while (len > 3 && (s->dir[len - 1] == L'\\' || s->dir[len - 1] == L'/'))
            s->dir[--len] = L'\0';
    } else {
        n = GetEnvironmentVariableW(L"LOCALAPPDATA", base, MAX_PATH);
        if (n == 0 || n >= MAX_PATH) {
            snprintf(err, errsize, "%%LOCALAPPDATA%% is not set");
            return KW_ERR_NOT_FOUND;
        }
        len = n + wcslen(L"\\keyward\\keys") + 1;
        if ((s->dir = calloc(len, sizeof(wchar_t))) == NULL) {
            snprintf(err, errsize, "out of memory");
            return KW_ERR_ALLOC;
        }
        /* %LOCALAPPDATA%\keyward as any folder of the profile, then keys\ with our DACL. */
        swprintf(s->dir, len, L"%ls\\keyward", base);
        if (!CreateDirectoryW(s->dir, NULL) && (e = GetLastError()) != ERROR_ALREADY_EXISTS) {
            char *p = win32_wide_to_utf8(s->dir);

            snprintf(err, errsize, "cannot create %s (error %lu)",
                     p != NULL ? p : "%LOCALAPPDATA%\\keyward", e);
            free(p);
            win_key_store_close(s);
            return KW_ERR_SYSTEM;
        }
        swprintf(s->dir, len, L"%ls\\keyward\\keys", base);
    }
    if ((s->path = name_to_utf8(s->dir, &r)) == NULL) {
        snprintf(err, errsize, "%s",
                 r == KW_ERR_ALLOC ? "out of memory"
                                   : "the store's path is not valid UTF-16 and cannot be shown");
        win_key_store_close(s);
        return r;
    }
    if ((r = make_store_dir(s->dir, err, errsize)) != 0) {
        char what[256];

        snprintf(what, sizeof(what), "%s", err);
        snprintf(err, errsize, "key store %s: %s", s->path, what);
        win_key_store_close(s);
    }
    return r;
}

void win_key_store_close(struct win_key_store *s)
{
    free(s->dir);
    s->dir = NULL;
    free(s->path);
    s->path = NULL;
}

/* Writes all of buf to a new file at path; flushed to disk before it returns 0. */
static DWORD write_file(const wchar_t *path, const uint8_t *buf, size_t len)
{
    HANDLE h;
    DWORD written = 0, e = 0;

    h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return GetLastError();
    if (!WriteFile(h, buf, (DWORD)len, &written, NULL))
        e = GetLastError();
    else if (written != len)
        e = ERROR_WRITE_FAULT;
    else if (!FlushFileBuffers(h))
        e = GetLastError();
    CloseHandle(h);
    return e;
}

int win_key_store_put(struct win_key_store *s, const char *name, const uint8_t *pub, size_t pub_len,
                      const uint8_t *secret, size_t secret_len, char *why, size_t whysize)
{
    DATA_BLOB in, out = {0, NULL};
    struct wire_writer w;
    wchar_t *tmp = NULL, *final = NULL;
    char tmpext[32];
    DWORD e;
    int r = KW_ERR_SYSTEM;

    wire_writer_init(&w);
    in.cbData = (DWORD)secret_len;
    in.pbData = (BYTE *)secret;
    if (!CryptProtectData(&in, L"keyward key", NULL, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &out)) {
        snprintf(why, whysize, "DPAPI cannot protect it (error %lu)", GetLastError());
        goto out;
    }
    wire_put_bytes(&w, store_magic, sizeof(store_magic));
    wire_put_u32(&w, WIN_KEY_STORE_FORMAT);
    wire_put_cstring(&w, platform_user_sid());
    wire_put_string(&w, pub, pub_len);
    wire_put_string(&w, out.pbData, out.cbData);
    if (w.error != 0) {
        snprintf(why, whysize, "out of memory");
        r = w.error;
        goto out;
    }
    snprintf(tmpext, sizeof(tmpext), ".%lu.tmp", GetCurrentProcessId());
    if ((tmp = entry_path(s, name, tmpext)) == NULL ||
        (final = entry_path(s, name, ".key")) == NULL) {
        snprintf(why, whysize, "out of memory");
        r = KW_ERR_ALLOC;
        goto out;
    }
    if ((e = write_file(tmp, w.buf, w.len)) != 0) {
        snprintf(why, whysize, "cannot write to %s (error %lu)", s->path, e);
        DeleteFileW(tmp);
        goto out;
    }
    if (!MoveFileExW(tmp, final, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        snprintf(why, whysize, "cannot replace the entry in %s (error %lu)", s->path,
                 GetLastError());
        DeleteFileW(tmp);
        goto out;
    }
    r = 0;
out:
    free(tmp);
    free(final);
    wire_writer_free(&w);
    LocalFree(out.pbData);
    return r;
}

int win_key_store_delete(struct win_key_store *s, const char *name)
{
    wchar_t *path = entry_path(s, name, ".key");
    DWORD e;
    int r = 0;

    if (path == NULL)
        return KW_ERR_ALLOC;
    if (!DeleteFileW(path) && (e = GetLastError()) != ERROR_FILE_NOT_FOUND) {
        log_error("key store: cannot delete %s.key in %s (error %lu)", name, s->path, e);
        r = KW_ERR_SYSTEM;
    }
    free(path);
    return r;
}

struct found {
    char *name;        /* UTF-8, without the extension */
    ULONGLONG created; /* the file's creation time */
};

/* Oldest first: the order the keys were added in; by name among equals. */
static int found_cmp(const void *a, const void *b)
{
    const struct found *x = a, *y = b;

    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->name, y->name);
}

/*
 * Calls fn(s, name, ctx) for each dir\*ext, name as UTF-8 without the
 * extension, oldest file first: so that keys load in the order they were
 * added (an entry replaced by adding its key again counts from then), and
 * ssh offers them in that order after a restart as before it.
 */
static int each_file(struct win_key_store *s, const wchar_t *ext,
                     void (*fn)(struct win_key_store *s, const char *name, void *ctx), void *ctx)
{
    WIN32_FIND_DATAW fd;
    wchar_t *pattern;
    size_t n = wcslen(s->dir) + 3 + wcslen(ext), count = 0, cap = 0, i, len, extlen = wcslen(ext);
    struct found *all = NULL, *grown;
    HANDLE h;
    char *name;
    int r = 0;

    if ((pattern = calloc(n, sizeof(*pattern))) == NULL)
        return KW_ERR_ALLOC;
    swprintf(pattern, n, L"%ls\\*%ls", s->dir, ext);
    h = FindFirstFileW(pattern, &fd);
    free(pattern);
    if (h == INVALID_HANDLE_VALUE)
        return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : KW_ERR_SYSTEM;
    do {
        len = wcslen(fd.cFileName);
        /* FindFirstFile matches 8.3 names too: check the real name's ending. */
        if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || len <= extlen ||
            _wcsicmp(fd.cFileName + len - extlen, ext) != 0)
            continue;
        if ((name = name_to_utf8(fd.cFileName, &r)) == NULL) {
            if (r == KW_ERR_ALLOC)
                break;
            /* No UTF-8 name could open it again (entry_path()): leave it be. */
            log_error("key store: skipped a file in %s whose name is not valid UTF-16", s->path);
            r = 0;
            continue;
        }
        /* The extension is ASCII, and name has a byte or more for each of its characters. */
        name[strlen(name) - extlen] = '\0';
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            if ((grown = realloc(all, cap * sizeof(*all))) == NULL) {
                free(name);
                r = KW_ERR_ALLOC;
                break;
            }
            all = grown;
        }
        all[count].name = name;
        all[count++].created =
            ((ULONGLONG)fd.ftCreationTime.dwHighDateTime << 32) | fd.ftCreationTime.dwLowDateTime;
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    if (r == 0 && count > 1)
        qsort(all, count, sizeof(*all), found_cmp);
    for (i = 0; i < count; i++) {
        if (r == 0)
            fn(s, all[i].name, ctx);
        free(all[i].name);
    }
    free(all);
    return r;
}

static void delete_one(struct win_key_store *s, const char *name, void *ctx)
{
    int *r = ctx;

    if (win_key_store_delete(s, name) != 0)
        *r = KW_ERR_SYSTEM;
}

int win_key_store_delete_all(struct win_key_store *s)
{
    int r = 0, e = each_file(s, L".key", delete_one, &r);

    return e != 0 ? e : r;
}

static void delete_tmp(struct win_key_store *s, const char *name, void *ctx)
{
    wchar_t *path = entry_path(s, name, ".tmp");

    (void)ctx;
    if (path != NULL && DeleteFileW(path))
        log_info("key store: removed %s.tmp, a write that was cut short", name);
    free(path);
}

/* Reads a whole file into a malloc'd buffer. */
static DWORD read_file(const wchar_t *path, uint8_t **buf, size_t *len)
{
    HANDLE h;
    LARGE_INTEGER size;
    DWORD got = 0, e = 0;
    uint8_t *b = NULL;

    *buf = NULL;
    h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL,
                    NULL);
    if (h == INVALID_HANDLE_VALUE)
        return GetLastError();
    if (!GetFileSizeEx(h, &size)) {
        e = GetLastError();
    } else if (size.QuadPart > WIN_KEY_STORE_ENTRY_MAX) {
        e = ERROR_FILE_TOO_LARGE;
    } else if ((b = malloc(size.QuadPart ? (size_t)size.QuadPart : 1)) == NULL) {
        e = ERROR_NOT_ENOUGH_MEMORY;
    } else if (!ReadFile(h, b, (DWORD)size.QuadPart, &got, NULL)) {
        e = GetLastError();
    } else if (got != size.QuadPart) {
        e = ERROR_READ_FAULT;
    }
    CloseHandle(h);
    if (e != 0) {
        free(b);
        return e;
    }
    *buf = b;
    *len = got;
    return 0;
}

struct each_ctx {
    win_key_store_fn fn;
    void *ctx;
};

static void load_one(struct win_key_store *s, const char *name, void *arg)
{
    struct each_ctx *ec = arg;
    struct win_key_store_entry e;
    struct wire_reader r;
    struct wire_view magic, sid, pub, prot;
    DATA_BLOB in, out = {0, NULL};
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t format;
    wchar_t *path = entry_path(s, name, ".key");
    char why[256];
    DWORD err;

    memset(&e, 0, sizeof(e));
    e.name = name;
    e.error = why;
    if (path == NULL) {
        snprintf(why, sizeof(why), "out of memory");
        goto out;
    }
    if ((err = read_file(path, &buf, &len)) != 0) {
        snprintf(why, sizeof(why), "cannot be read (error %lu)", err);
        goto out;
    }
    wire_reader_init(&r, buf, len);
    magic = wire_get_bytes(&r, sizeof(store_magic));
    if (r.error != 0 || memcmp(magic.ptr, store_magic, sizeof(store_magic)) != 0) {
        snprintf(why, sizeof(why), "corrupt: not a keyward key entry");
        goto out;
    }
    format = wire_get_u32(&r);
    if (r.error == 0 && format > WIN_KEY_STORE_FORMAT) {
        snprintf(why, sizeof(why),
                 "written by a newer keyward (entry format %lu; this one reads %d)",
                 (unsigned long)format, WIN_KEY_STORE_FORMAT);
        goto out;
    }
    sid = wire_get_string(&r);
    pub = wire_get_string(&r);
    prot = wire_get_string(&r);
    if (r.error == 0 && format != WIN_KEY_STORE_FORMAT) {
        snprintf(why, sizeof(why), "corrupt: entry format %lu", (unsigned long)format);
        goto out;
    }
    if (wire_reader_finish(&r) != 0) {
        snprintf(why, sizeof(why), "corrupt or truncated (%zu bytes)", len);
        goto out;
    }
    e.pub = pub.ptr;
    e.pub_len = pub.len;
    if (!wire_view_eq_str(sid, platform_user_sid())) {
        snprintf(why, sizeof(why), "belongs to another user (%.*s)",
                 (int)(sid.len > 100 ? 100 : sid.len), (const char *)sid.ptr);
        goto out;
    }
    in.cbData = (DWORD)prot.len;
    in.pbData = (BYTE *)prot.ptr;
    if (!CryptUnprotectData(&in, NULL, NULL, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &out)) {
        snprintf(why, sizeof(why), "cannot be decrypted (DPAPI error %lu)", GetLastError());
        goto out;
    }
    e.secret = out.pbData;
    e.secret_len = out.cbData;
    e.error = NULL;
out:
    ec->fn(ec->ctx, &e);
    if (out.pbData != NULL) {
        SecureZeroMemory(out.pbData, out.cbData);
        LocalFree(out.pbData);
    }
    free(buf);
    free(path);
}

int win_key_store_each(struct win_key_store *s, win_key_store_fn fn, void *ctx)
{
    struct each_ctx ec = {fn, ctx};
    int r;

    if ((r = each_file(s, L".tmp", delete_tmp, NULL)) != 0)
        return r;
    return each_file(s, L".key", load_one, &ec);
}

/* ---- the service's store ---- */

bool win_process_elevated(void)
{
    HANDLE token = NULL;
    TOKEN_ELEVATION el = {0};
    DWORD size = 0;
    bool r = false;

    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        if (GetTokenInformation(token, TokenElevation, &el, sizeof(el), &size))
            r = el.TokenIsElevated != 0;
        CloseHandle(token);
    }
    return r;
}

/* A value of key, malloc'd; its type in *type. A Windows error code, or 0. */
static LSTATUS get_value(HKEY key, const wchar_t *name, DWORD *type, uint8_t **buf, DWORD *len)
{
    LSTATUS e;
    DWORD size = 0;

    *buf = NULL;
    *len = 0;
    if ((e = RegQueryValueExW(key, name, NULL, type, NULL, &size)) != ERROR_SUCCESS)
        return e;
    if ((*buf = malloc(size ? size : 1)) == NULL)
        return ERROR_NOT_ENOUGH_MEMORY;
    if ((e = RegQueryValueExW(key, name, NULL, type, *buf, &size)) != ERROR_SUCCESS) {
        free(*buf);
        *buf = NULL;
        return e;
    }
    *len = size;
    return 0;
}

/* One subkey of the service's store. Returns ERROR_ACCESS_DENIED if it may not be read. */
static LSTATUS read_service_key(HKEY keys, const wchar_t *wname, const char *name,
                                win_openssh_key_fn fn, void *ctx)
{
    struct win_openssh_key k;
    HKEY sub = NULL;
    uint8_t *blob = NULL, *pub = NULL, *comment = NULL;
    DWORD blob_len = 0, pub_len = 0, comment_len = 0, type = 0;
    DATA_BLOB in, out = {0, NULL};
    char why[200];
    LSTATUS e;

    memset(&k, 0, sizeof(k));
    k.name = name;
    k.error = why;
    e = RegOpenKeyExW(keys, wname, 0, KEY_QUERY_VALUE | KEY_WOW64_64KEY, &sub);
    if (e == ERROR_ACCESS_DENIED)
        return e;
    if (e != ERROR_SUCCESS) {
        snprintf(why, sizeof(why), "cannot be opened (error %ld)", (long)e);
        goto out;
    }
    if ((e = get_value(sub, L"pub", &type, &pub, &pub_len)) != 0 || type != REG_BINARY) {
        snprintf(why, sizeof(why), "incomplete: no \"pub\" value");
        goto out;
    }
    k.pub = pub;
    k.pub_len = pub_len;
    if (get_value(sub, L"comment", &type, &comment, &comment_len) == 0 && type == REG_BINARY) {
        k.comment = comment;
        k.comment_len = comment_len;
    }
    if ((e = get_value(sub, NULL, &type, &blob, &blob_len)) != 0 || type != REG_BINARY) {
        snprintf(why, sizeof(why), "%s",
                 e == ERROR_ACCESS_DENIED ? "access denied" : "incomplete: no private key");
        if (e == ERROR_ACCESS_DENIED)
            goto denied;
        goto out;
    }
    /*
     * A key of a PKCS#11 token (ssh-add -s) is kept with its public blob as
     * the default value (and the provider in "comment" or "provider"): its
     * private part never left the token.
     */
    if ((blob_len == pub_len && memcmp(blob, pub, pub_len) == 0) ||
        RegQueryValueExW(sub, L"provider", NULL, NULL, NULL, NULL) == ERROR_SUCCESS) {
        snprintf(why, sizeof(why),
                 "a PKCS#11 token's key (its private part is on the token, and keyward "
                 "does not load PKCS#11 providers)");
        goto out;
    }
    in.cbData = blob_len;
    in.pbData = blob;
    if (!CryptUnprotectData(&in, NULL, NULL, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &out)) {
        snprintf(why, sizeof(why),
                 "cannot be decrypted (DPAPI error %lu): stored by another user, or the "
                 "user's password was reset",
                 GetLastError());
        goto out;
    }
    k.priv = out.pbData;
    k.priv_len = out.cbData;
    k.error = NULL;
out:
    fn(ctx, &k);
    e = 0;
denied:
    if (out.pbData != NULL) {
        SecureZeroMemory(out.pbData, out.cbData);
        LocalFree(out.pbData);
    }
    if (sub != NULL)
        RegCloseKey(sub);
    free(blob);
    free(pub);
    free(comment);
    return e;
}

int win_openssh_keys_each(win_openssh_key_fn fn, void *ctx, char *err, size_t errsize)
{
    HKEY keys = NULL;
    wchar_t wname[256];
    char *name;
    DWORD i, n;
    LSTATUS e;
    int r = 0;

    e = RegOpenKeyExW(HKEY_CURRENT_USER, L"" WIN_OPENSSH_KEYS_PATH, 0, KEY_READ | KEY_WOW64_64KEY,
                      &keys);
    if (e == ERROR_FILE_NOT_FOUND) {
        snprintf(err, errsize, "HKEY_CURRENT_USER\\%s does not exist: the service holds no keys",
                 WIN_OPENSSH_KEYS_PATH);
        return KW_ERR_NOT_FOUND;
    }
    if (e == ERROR_ACCESS_DENIED)
        goto denied;
    if (e != ERROR_SUCCESS) {
        snprintf(err, errsize, "cannot open HKEY_CURRENT_USER\\%s (error %ld)",
                 WIN_OPENSSH_KEYS_PATH, (long)e);
        return KW_ERR_SYSTEM;
    }
    for (i = 0;; i++) {
        n = sizeof(wname) / sizeof(wname[0]);
        e = RegEnumKeyExW(keys, i, wname, &n, NULL, NULL, NULL, NULL);
        if (e == ERROR_NO_MORE_ITEMS)
            break;
        if (e == ERROR_ACCESS_DENIED)
            goto denied;
        if (e != ERROR_SUCCESS) {
            snprintf(err, errsize, "cannot list HKEY_CURRENT_USER\\%s (error %ld)",
                     WIN_OPENSSH_KEYS_PATH, (long)e);
            r = KW_ERR_SYSTEM;
            break;
        }
        if ((name = name_to_utf8(wname, &r)) == NULL) {
            if (r == KW_ERR_ALLOC) {
                snprintf(err, errsize, "out of memory");
                break;
            }
            log_error("import: skipped a key in HKEY_CURRENT_USER\\%s whose name is not "
                      "valid UTF-16",
                      WIN_OPENSSH_KEYS_PATH);
            r = 0;
            continue;
        }
        e = read_service_key(keys, wname, name, fn, ctx);
        free(name);
        if (e == ERROR_ACCESS_DENIED)
            goto denied;
    }
    RegCloseKey(keys);
    return r;
denied:
    if (keys != NULL)
        RegCloseKey(keys);
    snprintf(err, errsize,
             "access denied to HKEY_CURRENT_USER\\%s.\n"
             "Windows' agent service lets only SYSTEM and Administrators read its keys, so the\n"
             "import needs an elevated shell (\"Run as administrator\"). It must be YOUR account,\n"
             "elevated, not another administrator: the keys are encrypted with your own logon\n"
             "credentials (DPAPI), which only you can decrypt.",
             WIN_OPENSSH_KEYS_PATH);
    return KW_ERR_DENIED;
}
