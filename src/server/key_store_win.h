/*
 * keyward-agent.exe's kept keys: the agent's persist hooks (src/agent/persist.h)
 * on the DPAPI-protected folder of src/platform/win32_key_store.h, loading
 * at start, and importing the keys of Windows' own agent service.
 */
#ifndef KEYWARD_SERVER_KEY_STORE_WIN_H
#define KEYWARD_SERVER_KEY_STORE_WIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/agent.h"
#include "platform/win32_key_store.h"

struct key_store_win {
    struct win_key_store files;
    struct agent_persist hooks;
    struct agent *agent; /* for audit events; NULL when importing */
    unsigned loaded, skipped, expired;
    char broken[400]; /* why the store could not be opened; "" if it was */
};

/*
 * Opens the store (dir NULL: the default). 0 or a KW_ERR_* code with err
 * filled in; a store that failed to open may still be attached, and then
 * loads nothing and refuses every put with that reason.
 */
int key_store_win_open(struct key_store_win *ks, const char *dir, char *err, size_t errsize);
void key_store_win_close(struct key_store_win *ks);

/*
 * Loads every stored key into ag (an entry that cannot be used is skipped
 * with a log line and an audit event; an expired one is deleted), then
 * makes ag keep what it is given from now on (ag->persist).
 */
void key_store_win_attach(struct key_store_win *ks, struct agent *ag, uint64_t now_ms);

/*
 * keyward-agent --import-windows-agent: copies every key of Windows' agent
 * service into the store at dir (NULL: the default; opened, and made, only
 * once there is a key to write; with dry_run never), printing what it
 * imported and what it skipped, and why, to out; audit events go to audit
 * (NULL: none). Never writes the service's store. Returns the exit status:
 * 0 if every key was imported (or there were none), 1 otherwise.
 */
int key_store_win_import(const char *dir, bool dry_run, audit_fn audit, void *audit_ctx, FILE *out);

#endif
