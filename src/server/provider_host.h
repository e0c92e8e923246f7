/*
 * keyward: the helper processes that hold PKCS#11 modules for the agent
 * (docs/providers.md). One helper per loaded module; the agent core decides
 * (src/agent/provider.h) and this file runs them: it starts a helper,
 * talks to it over the shared framed-connection module, answers the jobs
 * that need it, and stops it. FIDO keys' signatures go the same way, to a
 * keyward-sk-helper started for each signature (as OpenSSH's ssh-sk-helper).
 *
 * A helper that exits, closes its end, answers garbage or does not answer
 * within PROVIDER_HOST_TIMEOUT_MS is killed: every request waiting for it
 * fails, with the reason in the job, and the agent is told (lost) so that
 * the module's keys go and it can be loaded again. The agent and every
 * other client carry on.
 */
#ifndef KEYWARD_SERVER_PROVIDER_HOST_H
#define KEYWARD_SERVER_PROVIDER_HOST_H

#include <stdbool.h>

#include <uv.h>

#include "agent/agent.h"

/* How long a helper has for one answer: a LOAD (login) or a signature. */
#define PROVIDER_HOST_TIMEOUT_MS 30000
/*
 * How long a FIDO helper has for its signature, which waits for a touch:
 * 60 s, as long as OpenSSH's ssh-sk-helper is given in practice (libfido2's
 * own wait), so that a user is not cut short.
 */
#define PROVIDER_HOST_SK_TIMEOUT_MS 60000
/* How long a helper told to stop (its input closed) has before SIGKILL. */
#define PROVIDER_HOST_KILL_MS 2000

struct provider_host; /* one helper process; private to provider_host.c */
struct host_request;  /* one request waiting for a helper; likewise */

/* Called when a job given to provider_host_load()/_sign() has its answer (or failure). */
typedef void (*provider_host_done_cb)(void *arg);

struct provider_hosts {
    uv_loop_t *loop;
    /* The helper program; NULL: loading modules fails with a clear reason. */
    const char *helper_path;
    /* keyward-sk-helper, for FIDO keys' signatures (one per signature); NULL: they fail. */
    const char *sk_helper_path;
    struct provider_host *list; /* every helper whose memory is still in use */
    /* A helper the agent may hold died: tell the agent (agent_provider_lost()). */
    void (*lost)(void *ctx, void *host, const char *why);
    void *ctx;
    /* Failed requests handed back on the loop's next turn (provider_host.c says why). */
    struct host_request *failed;
    uv_idle_t drain;
    bool closing;
};

void provider_hosts_init(struct provider_hosts *hs, uv_loop_t *loop);

/*
 * AGENT_JOB_PROVIDER_ADD: starts a helper for pj->path and sends it LOAD
 * with the PIN (cleared from the job once sent). done(arg) comes once the
 * job holds the KEYS (pj->host set: the agent now owns the helper and
 * releases it with provider_host_release()) or a failure (run_err, why;
 * pj->host NULL, the helper stopped). done may come before this returns.
 */
void provider_host_load(struct provider_hosts *hs, struct agent_provider_job *pj,
                        provider_host_done_cb done, void *arg);

/*
 * AGENT_JOB_PROVIDER_SIGN: asks sj->host for a signature with sj->key over
 * sj->data; for a FIDO key (sj->sk_provider set) a keyward-sk-helper of its
 * own, stopped once it has answered, killed after
 * PROVIDER_HOST_SK_TIMEOUT_MS. done(arg) once sj->sig holds it, or run_err and provider_why
 * say why not. done may come before this returns.
 */
void provider_host_sign(struct provider_hosts *hs, struct agent_sign_job *sj,
                        provider_host_done_cb done, void *arg);

/* The agent's provider_set.release hook: stop the helper (host is a struct provider_host). */
void provider_host_release(void *hosts, void *host);

/* At shutdown: stop every helper; their requests fail. The loop then runs dry. */
void provider_hosts_close(struct provider_hosts *hs);

#endif
