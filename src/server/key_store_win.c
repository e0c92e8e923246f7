/*
 * keyward-agent.exe's kept keys. See key_store_win.h.
 *
 * An entry is named by the SHA-256 of the identity's public blob in hex,
 * so that adding the same key again replaces its entry, and removing it
 * needs no search. The record (persist.h), which holds the private key, is
 * put together in OpenSSL's secure heap and cleared before it is freed;
 * DPAPI's own copies are cleared by the platform layer.
 */
#include "server/key_store_win.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/err.h"
#include "base/log.h"

#define ENTRY_NAME_SIZE 65 /* SHA-256 in hex, and the NUL */

static void entry_name(const uint8_t *blob, size_t len, char name[ENTRY_NAME_SIZE])
{
    unsigned char md[32];
    unsigned int mdlen = 0, i;

    name[0] = '\0';
    if (!EVP_Digest(blob, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof(md))
        return;
    for (i = 0; i < mdlen; i++)
        snprintf(name + 2 * i, 3, "%02x", md[i]);
}

static uint64_t wall_now(void)
{
    time_t t = time(NULL);

    return t > 0 ? (uint64_t)t : 0;
}

/* Writes rec as entry for key, the record in secure memory while it exists. */
static int store_record(struct win_key_store *files, const struct key *key,
                        const struct persist_record *rec, char *why, size_t whysize)
{
    char name[ENTRY_NAME_SIZE];
    size_t size = persist_record_size(rec);
    uint8_t *buf;
    int r;

    entry_name(key->blob, key->blob_len, name);
    if (name[0] == '\0') {
        snprintf(why, whysize, "cannot hash the key");
        return KW_ERR_INTERNAL;
    }
    if ((buf = OPENSSL_secure_malloc(size)) == NULL) {
        snprintf(why, whysize, "out of memory");
        return KW_ERR_ALLOC;
    }
    persist_record_write(rec, buf);
    r = win_key_store_put(files, name, key->blob, key->blob_len, buf, size, why, whysize);
    OPENSSL_secure_clear_free(buf, size);
    return r;
}

/* ---- the agent's hooks ---- */

static int hook_put(void *ctx, const struct key *key, const struct persist_record *rec, char *why,
                    size_t whysize)
{
    struct key_store_win *ks = ctx;

    if (ks->broken[0] != '\0') {
        snprintf(why, whysize, "%s", ks->broken);
        return KW_ERR_SYSTEM;
    }
    return store_record(&ks->files, key, rec, why, whysize);
}

static void hook_forget(void *ctx, const struct key *key)
{
    struct key_store_win *ks = ctx;
    char name[ENTRY_NAME_SIZE];

    if (ks->broken[0] != '\0')
        return;
    entry_name(key->blob, key->blob_len, name);
    if (name[0] != '\0')
        (void)win_key_store_delete(&ks->files, name); /* logs a failure */
}

static void hook_forget_all(void *ctx)
{
    struct key_store_win *ks = ctx;

    if (ks->broken[0] != '\0')
        return;
    (void)win_key_store_delete_all(&ks->files); /* logs a failure */
}

int key_store_win_open(struct key_store_win *ks, const char *dir, char *err, size_t errsize)
{
    int r;

    memset(ks, 0, sizeof(*ks));
    ks->hooks.put = hook_put;
    ks->hooks.forget = hook_forget;
    ks->hooks.forget_all = hook_forget_all;
    ks->hooks.ctx = ks;
    if ((r = win_key_store_open(&ks->files, dir, err, errsize)) != 0)
        snprintf(ks->broken, sizeof(ks->broken), "%s", err);
    return r;
}

void key_store_win_close(struct key_store_win *ks)
{
    win_key_store_close(&ks->files);
}

/* ---- loading ---- */

struct load_ctx {
    struct key_store_win *ks;
    uint64_t now_ms, now_wall;
};

/* A stored entry that will not load: a log line and an audit event, naming the key if it can. */
static void skip_entry(struct key_store_win *ks, const struct win_key_store_entry *e,
                       const char *why)
{
    struct key *key = NULL;
    char fp[KEY_FINGERPRINT_SIZE] = "", reason[400];

    if (e->pub != NULL && key_from_blob(e->pub, e->pub_len, &key) == 0)
        key_fingerprint(key, fp, sizeof(fp));
    log_error("key store: skipped %s.key%s%s: %s", e->name, fp[0] ? " " : "", fp, why);
    snprintf(reason, sizeof(reason), "entry %s.key: %s", e->name, why);
    agent_audit_note(ks->agent, "load", false, key, NULL, reason);
    key_free(key);
    ks->skipped++;
}

static void load_entry(void *arg, const struct win_key_store_entry *e)
{
    struct load_ctx *lc = arg;
    struct key_store_win *ks = lc->ks;
    struct persist_record rec;
    char why[256];
    int r;

    if (e->error != NULL) {
        skip_entry(ks, e, e->error);
        return;
    }
    if ((r = persist_record_read(e->secret, e->secret_len, &rec)) != 0) {
        skip_entry(ks, e,
                   r == KW_ERR_KEY_TYPE ? "written by a newer keyward (record format)"
                                        : "corrupt: the decrypted record does not parse");
        return;
    }
    why[0] = '\0';
    r = agent_restore(ks->agent, lc->now_ms, lc->now_wall, &rec, e->pub, e->pub_len, why,
                      sizeof(why));
    if (r == AGENT_RESTORE_EXPIRED) {
        struct key *key = NULL;

        log_info("key store: %s.key expired while the agent was stopped; deleted", e->name);
        if (key_from_blob(e->pub, e->pub_len, &key) == 0)
            agent_audit_note(ks->agent, "expire", true, key, NULL, NULL);
        key_free(key);
        (void)win_key_store_delete(&ks->files, e->name);
        ks->expired++;
    } else if (r != 0) {
        skip_entry(ks, e, why);
    } else {
        ks->loaded++;
    }
}

void key_store_win_attach(struct key_store_win *ks, struct agent *ag, uint64_t now_ms)
{
    struct load_ctx lc = {ks, now_ms, wall_now()};

    ks->agent = ag;
    ag->persist = &ks->hooks;
    if (ks->broken[0] != '\0') {
        agent_audit_note(ag, "load", false, NULL, NULL, ks->broken);
        return;
    }
    if (win_key_store_each(&ks->files, load_entry, &lc) != 0)
        log_error("key store: cannot list %s", ks->files.path);
    log_info("key store %s: %u keys loaded, %u skipped, %u expired", ks->files.path, ks->loaded,
             ks->skipped, ks->expired);
}

/* ---- importing Windows' agent's keys ---- */

struct import_ctx {
    struct key_store_win ks;
    const char *dir; /* keyward's store, opened for the first key to write */
    bool opened;
    bool dry_run;
    audit_fn audit;
    void *audit_ctx;
    FILE *out;
    unsigned imported, skipped;
};

static void import_audit(struct import_ctx *ic, const struct key *key, const char *comment,
                         const char *reason)
{
    struct audit_event ev;

    if (ic->audit == NULL || ic->dry_run) /* a dry run imports nothing */
        return;
    memset(&ev, 0, sizeof(ev));
    ev.event = "import";
    ev.outcome = reason == NULL ? "ok" : "refused";
    ev.key = key;
    ev.comment = comment != NULL && comment[0] ? comment : NULL;
    ev.reason = reason;
    ic->audit(ic->audit_ctx, &ev);
}

static void import_key(void *arg, const struct win_openssh_key *k)
{
    struct import_ctx *ic = arg;
    struct persist_record rec;
    struct key *key = NULL;
    char why[300], comment[256], fp[KEY_FINGERPRINT_SIZE];

    memset(&rec, 0, sizeof(rec));
    comment[0] = '\0';
    if (k->error != NULL) {
        snprintf(why, sizeof(why), "%s", k->error);
        goto skip;
    }
    rec.priv.ptr = k->priv;
    rec.priv.len = k->priv_len;
    rec.comment.ptr = k->comment;
    rec.comment.len = k->comment_len;
    if (persist_record_key(&rec, k->pub, k->pub_len, &key, why, sizeof(why)) != 0)
        goto skip;
    snprintf(comment, sizeof(comment), "%.*s", (int)k->comment_len, (const char *)k->comment);
    key_fingerprint(key, fp, sizeof(fp));
    if (ic->dry_run) {
        fprintf(ic->out, "would import %s %s %s\n", key_short_name(key), fp, comment);
        ic->imported++;
        key_free(key);
        return;
    }
    if (!ic->opened) {
        /* Once: a store that does not open (ks.broken says why) skips every key. */
        ic->opened = true;
        if (key_store_win_open(&ic->ks, ic->dir, why, sizeof(why)) == 0)
            fprintf(ic->out, "key store: %s\n", ic->ks.files.path);
    }
    if (ic->ks.broken[0] != '\0') {
        snprintf(why, sizeof(why), "%s", ic->ks.broken);
        goto skip;
    }
    if (store_record(&ic->ks.files, key, &rec, why, sizeof(why)) != 0)
        goto skip;
    fprintf(ic->out, "imported %s %s %s\n", key_short_name(key), fp, comment);
    import_audit(ic, key, comment, NULL);
    ic->imported++;
    key_free(key);
    return;
skip:
    fprintf(ic->out, "skipped %s: %s\n", k->name, why);
    {
        char reason[400];

        snprintf(reason, sizeof(reason), "entry %s: %s", k->name, why);
        import_audit(ic, key, comment, reason);
    }
    ic->skipped++;
    key_free(key);
}

int key_store_win_import(const char *dir, bool dry_run, audit_fn audit, void *audit_ctx, FILE *out)
{
    struct import_ctx ic;
    char err[1024];
    int r;

    memset(&ic, 0, sizeof(ic));
    ic.dir = dir;
    ic.dry_run = dry_run;
    ic.audit = audit;
    ic.audit_ctx = audit_ctx;
    ic.out = out;
    r = win_openssh_keys_each(import_key, &ic, err, sizeof(err));
    if (ic.opened)
        key_store_win_close(&ic.ks);
    if (r == KW_ERR_NOT_FOUND) {
        fprintf(out, "nothing to import: %s\n", err);
        return 0;
    }
    if (r != 0) {
        fprintf(out, "%s\n", err);
        if (r == KW_ERR_DENIED)
            fprintf(out, "%s\n",
                    win_process_elevated()
                        ? "(This shell is elevated, and was refused all the same: the store's "
                          "DACL is not the service's.)"
                        : "(This shell is not elevated.)");
        if (audit != NULL) {
            struct audit_event ev;

            memset(&ev, 0, sizeof(ev));
            ev.event = "import";
            ev.outcome = "refused";
            ev.reason = r == KW_ERR_DENIED ? "the service's store may not be read (not elevated)"
                                           : "the service's store cannot be read";
            audit(audit_ctx, &ev);
        }
        return 1;
    }
    if (dry_run)
        fprintf(out, "dry run: %u keys would be imported, %u skipped; nothing written\n",
                ic.imported, ic.skipped);
    else
        fprintf(out,
                "%u keys imported, %u skipped. Windows' agent's store is unchanged.\n"
                "keyward-agent loads them when it starts (again, if it is running).\n",
                ic.imported, ic.skipped);
    return ic.skipped == 0 ? 0 : 1;
}
