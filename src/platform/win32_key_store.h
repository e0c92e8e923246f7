/*
 * keyward on Windows: where keyward-agent.exe keeps keys across restarts,
 * and reading the keys Windows' own agent service kept.
 *
 * keyward's store is a folder, by default %LOCALAPPDATA%\keyward\keys,
 * created with a protected DACL for the user and SYSTEM only (docs/windows.md
 * says why a folder rather than the registry). One file per key, NAME.key:
 *
 *   byte[8] "KWKEYST\n"
 *   uint32  format (WIN_KEY_STORE_FORMAT)
 *   string  the owner's user SID ("S-1-5-21-...")
 *   string  the key's public blob, in the clear (log lines name the key)
 *   string  CryptProtectData() of the secret, user scope
 *
 * Every write goes to NAME.PID.tmp, flushed, and then replaces NAME.key in
 * one MoveFileEx(): a process killed mid-write leaves a .tmp file (removed
 * at the next load), never a half entry. The store knows nothing of what
 * the secret means (src/agent/persist.h); it only keeps it.
 */
#ifndef KEYWARD_PLATFORM_WIN32_KEY_STORE_H
#define KEYWARD_PLATFORM_WIN32_KEY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#define WIN_KEY_STORE_FORMAT 1
/* An entry larger than this is damaged: no key comes near it. */
#define WIN_KEY_STORE_ENTRY_MAX (1024u * 1024)

struct win_key_store {
    wchar_t *dir; /* the folder, without a trailing backslash */
    char *path;   /* the same, as UTF-8, for messages */
};

/*
 * Opens the store at dir (UTF-8; NULL: %LOCALAPPDATA%\keyward\keys),
 * creating the folder with its DACL, or setting that DACL on a folder that
 * is there. Needs platform_init_user() first. Returns 0 or a KW_ERR_* code
 * with err filled in.
 */
int win_key_store_open(struct win_key_store *s, const char *dir, char *err, size_t errsize);
void win_key_store_close(struct win_key_store *s);

/*
 * Writes entry name (a file name without extension), replacing any, in
 * one atomic step. Returns 0 or a KW_ERR_* code with why filled in.
 */
int win_key_store_put(struct win_key_store *s, const char *name, const uint8_t *pub, size_t pub_len,
                      const uint8_t *secret, size_t secret_len, char *why, size_t whysize);
/* Deletes entry name; a missing one is no error. Returns 0 or KW_ERR_SYSTEM (logged). */
int win_key_store_delete(struct win_key_store *s, const char *name);
/* Deletes every entry. Returns 0 or KW_ERR_SYSTEM if one could not go (logged). */
int win_key_store_delete_all(struct win_key_store *s);

struct win_key_store_entry {
    const char *name;   /* the file name without .key */
    const uint8_t *pub; /* NULL if the entry could not be read that far */
    size_t pub_len;
    const uint8_t *secret; /* decrypted; NULL if error is set. Cleared after the call */
    size_t secret_len;
    const char *error; /* why the entry cannot be used: damaged, newer, another user's, ... */
};

typedef void (*win_key_store_fn)(void *ctx, const struct win_key_store_entry *e);

/*
 * Calls fn for every entry, good or bad, in name order. Temporary files a
 * killed writer left are removed first, each with a log line.
 */
int win_key_store_each(struct win_key_store *s, win_key_store_fn fn, void *ctx);

/* ---- Windows' own agent service ("OpenSSH Authentication Agent") ---- */

/* Where the service keeps each key, under HKEY_CURRENT_USER: a subkey per fingerprint. */
#define WIN_OPENSSH_KEYS_PATH "SOFTWARE\\OpenSSH\\Agent\\Keys"

struct win_openssh_key {
    const char *name;    /* the subkey: the key's "SHA256:..." fingerprint */
    const uint8_t *priv; /* the default value, decrypted: the private part as in ADD_IDENTITY */
    size_t priv_len;
    const uint8_t *pub; /* the "pub" value */
    size_t pub_len;
    const uint8_t *comment; /* the "comment" value */
    size_t comment_len;
    const char *error; /* why the entry cannot be used; the fields above may then be NULL */
};

typedef void (*win_openssh_key_fn)(void *ctx, const struct win_openssh_key *k);

/*
 * Calls fn for every key of the service's store, reading only (the store
 * is never written). Returns 0; KW_ERR_NOT_FOUND if there is no store;
 * KW_ERR_DENIED if it cannot be read (the service's DACL: SYSTEM and
 * Administrators only), with err saying so. The decrypted private part is
 * cleared after each call.
 */
int win_openssh_keys_each(win_openssh_key_fn fn, void *ctx, char *err, size_t errsize);

/* True if this process runs elevated (an administrator's full token). */
bool win_process_elevated(void);

#endif
