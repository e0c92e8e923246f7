/*
 * keyward: the request dispatcher.
 *
 * agent_handle() is the whole protocol decision: it takes the agent's
 * state, one connection's state and one request message, and produces
 * exactly one reply message. It does no I/O and has no way to ask for the
 * connection to be closed. A request that fails is answered with a failure
 * reply; that is the rule the seed report is about (a refused session-bind
 * must not cost the client its connection).
 *
 * The transport (server.c) owns framing: it alone may close a connection,
 * and only for end of stream, an I/O error or an oversized frame.
 */
#ifndef KEYWARD_AGENT_H
#define KEYWARD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/audit.h"
#include "agent/binding.h"
#include "agent/keystore.h"
#include "agent/lock.h"
#include "agent/provider.h"
#include "agent/persist.h"
#include "base/wire.h"

struct agent_conn;

struct agent {
    struct keystore keys;
    struct agent_lock lock;
    uint32_t default_lifetime_secs; /* keyward-agent -t; 0 = none */
    /*
     * Hand slow work (RSA signatures, the lock passphrase's scrypt) to the
     * transport as jobs for a worker thread instead of doing it inside
     * agent_handle(), so one client's RSA-4096 signature or unlock attempt
     * never delays another client's request.
     */
    bool offload_slow_work;
    /*
     * Asked before signing with a fast key (Ed25519, ECDSA) whether to hand
     * this connection's signature to a worker thread anyway: the transport
     * says yes when other clients are active and a worker and a core are
     * free for it, since one thread signing inline caps all clients
     * together at one core; a single client keeps the inline path, which
     * spares it the hand-off between threads. NULL: always inline.
     */
    bool (*offload_fast)(void *ctx, const struct agent_conn *c);
    void *offload_ctx;
    /* Where audit events go (keyward-agent -l); NULL for none. */
    audit_fn audit;
    void *audit_ctx;
    /* PKCS#11 modules loaded, who may load them, and the transport's hook to stop one. */
    struct provider_set providers;
    /*
     * FIDO keys' web origins (keyward-agent -O no-restrict-websafe and
     * websafe-allow=LIST): unless websafe_unrestricted, a FIDO key whose
     * application does not match websafe_allow (a pattern-list, "ssh:*"
     * by default) signs only SSH userauth requests and SSHSIG messages, as
     * OpenSSH's agent: anything else could be a web site's challenge.
     */
    bool websafe_unrestricted;
    const char *websafe_allow;
    /* Where added keys are kept across restarts (Windows); NULL: nowhere. */
    const struct agent_persist *persist;
};

/*
 * Work that cannot finish inside agent_handle() without blocking the event
 * loop: asking the user to confirm a key's use (a child process), or slow
 * computation (a worker thread: signatures, the lock passphrase hash). The
 * transport runs it and then calls agent_job_confirmed() or
 * agent_job_finish(), which write the reply. While a connection has a job
 * out, the transport reads no further request from it, so replies stay in
 * order; other connections are served meanwhile.
 *
 * Ownership: a job has exactly one owner at a time. A function given a
 * job either borrows it (agent_job_run(), on a worker thread) or consumes
 * it on every path, success or failure (agent_job_confirmed(),
 * agent_job_refuse(), agent_job_finish(), agent_job_free()): the caller
 * must not touch it afterwards. A job handed out in reply->job (by
 * agent_handle(), or by agent_job_confirmed(), which may hand back the
 * memory it was given, as a new job) belongs to whoever owns the reply;
 * agent_reply_free() and the next agent_handle() free one left there. So
 * the transport ends every job it is given by passing it to exactly one of
 * the four that consume; agent.c's own helpers follow the same rule.
 */
enum agent_job_kind {
    AGENT_JOB_CONFIRM = 1, /* run the askpass, then agent_job_confirmed() */
    AGENT_JOB_SIGN,        /* agent_job_run() on a worker, then agent_job_finish() */
    AGENT_JOB_LOCK,        /* likewise */
    AGENT_JOB_UNLOCK,      /* likewise */
    /*
     * PKCS#11 (docs/providers.md), carried out by the transport, which then
     * calls agent_job_finish(): PROVIDER_ADD starts a helper for the
     * module and LOADs it (struct agent_provider_job); PROVIDER_SIGN asks
     * the helper of the key's module for a signature (struct
     * agent_sign_job, with host set), or, for a FIDO key, a new
     * keyward-sk-helper for the key's provider (sk_provider set).
     */
    AGENT_JOB_PROVIDER_ADD,
    AGENT_JOB_PROVIDER_SIGN,
};

/*
 * Every job starts with this header, and each kind's state is a struct of
 * its own that begins with it: agent_sign_job() and agent_lock_job() turn a
 * job into its kind's struct. The transport needs only kind, the prompt of
 * a confirmation and whether a signature is fast.
 */
struct agent_job {
    enum agent_job_kind kind;
};

#define AGENT_JOB_PROMPT_SIZE 512

/*
 * AGENT_JOB_CONFIRM and AGENT_JOB_SIGN: a sign request carried past
 * agent_handle(). A confirmation the user approves becomes, in place, the
 * signature job for a worker (or is signed at once and ends). The struct
 * and everything its pointers point to are one allocation (agent.c's
 * sign_job_new()), so that offloading a signature costs one malloc and a
 * lock job carries none of this.
 */
struct agent_sign_job {
    struct agent_job job;
    uint32_t flags;      /* the request's flags */
    const uint8_t *blob; /* the identity asked for, by public blob */
    size_t blob_len;
    uint8_t *data; /* what to sign; cleared when the job is freed */
    size_t data_len;
    char *prompt;           /* CONFIRM: the question for the askpass (AGENT_JOB_PROMPT_SIZE) */
    struct key *key;        /* SIGN: a reference to the signing key */
    int run_err;            /* SIGN: status of agent_job_run() */
    bool fast;              /* SIGN: a fast key, offloaded to share the load */
    struct wire_writer sig; /* SIGN: the signature agent_job_run() made */
    struct key *subject;    /* the key asked for, for the audit log */
    const char *detail;     /* what the request was about, for the log */
    const char *comment;    /* for the audit log; "" if none */
    const char *dest_user;  /* likewise: the user of the userauth request signed */
    void *host;             /* PROVIDER_SIGN: the helper to ask (provider.h), or */
    char *sk_provider;      /* PROVIDER_SIGN: a FIDO key's provider (owned), for a new helper */
    char provider_why[160]; /* PROVIDER_SIGN: the helper's reason when it failed */
    /* With the stage timing on (base/timing.h): */
    uint64_t timing_start;   /* SIGN: when the transport handed it off (wall clock) */
    uint64_t timing_sign_ns; /* SIGN: key_sign()'s time (CPU) */
};

/*
 * AGENT_JOB_PROVIDER_ADD: ssh-add -s. The transport starts a helper for
 * path, sends it LOAD with the PIN (and clears pin right after), and fills
 * in host and keys (the KEYS reply's body after its type byte), or run_err
 * and why. agent_job_finish() then adds the identities.
 */
struct agent_provider_job {
    struct agent_job job;
    char *path;   /* canonical, allowed */
    uint8_t *pin; /* cleared once sent, and when the job is freed */
    size_t pin_len;
    uint64_t expires_ms; /* 0: none */
    bool confirm;
    struct dest_constraints dest;
    bool certs_only;
    struct key **certs; /* to graft onto the token's keys */
    size_t ncerts;
    void *host; /* the transport's helper, once started; released if the job ends */
    void (*release)(void *ctx, void *host); /* without the agent taking it (provider.h) */
    void *release_ctx;
    struct wire_writer keys; /* uint32 n, then n times string blob, string comment */
    int run_err;
    char why[200];
};

/* AGENT_JOB_LOCK and AGENT_JOB_UNLOCK: the passphrase's hash, made on a worker. */
struct agent_lock_job {
    struct agent_job job;
    int run_err; /* status of agent_job_run() */
    uint8_t salt[LOCK_SALT_LEN];
    uint8_t hash[LOCK_HASH_LEN]; /* result of agent_job_run() */
    struct agent_lock *gate;     /* AGENT_JOB_UNLOCK: the lock whose turn it holds, */
    unsigned long ticket;        /* given back (lock_attempt_done()) when it ends */
    uint64_t started_ms;         /* AGENT_JOB_UNLOCK: when the attempt began */
    size_t pass_len;
    uint8_t pass[]; /* the passphrase, cleared once hashed */
};

/* The job's own struct: for AGENT_JOB_CONFIRM and AGENT_JOB_SIGN only. */
static inline struct agent_sign_job *agent_sign_job(struct agent_job *job)
{
    return (struct agent_sign_job *)job; /* its first member */
}

/* The job's own struct: for AGENT_JOB_PROVIDER_ADD only. */
static inline struct agent_provider_job *agent_provider_job(struct agent_job *job)
{
    return (struct agent_provider_job *)job; /* its first member */
}

/* The job's own struct: for AGENT_JOB_LOCK and AGENT_JOB_UNLOCK only. */
static inline struct agent_lock_job *agent_lock_job(struct agent_job *job)
{
    return (struct agent_lock_job *)job; /* its first member */
}

struct agent_conn {
    unsigned long id; /* for log lines */
    struct binding_set bindings;
    struct audit_client client; /* who is on the other end, for the audit log */
};

struct agent_reply {
    struct wire_writer msg; /* one message body, without the frame length */
    uint32_t delay_ms;      /* hold the reply back this long (failed unlock) */
    /*
     * If set, msg is empty and the request was not handled: an unlock
     * attempt waits for its agent-wide turn. Offer the same request again
     * after retry_ms, reading nothing further from that connection before.
     */
    uint32_t retry_ms;
    struct agent_job *job; /* if set, msg is empty: run the job, then finish it */
};

void agent_init(struct agent *ag, uint32_t default_lifetime_secs);
/* Removes and clears every key and the lock hash. */
void agent_cleanup(struct agent *ag);

void agent_conn_init(struct agent_conn *c, unsigned long id);
void agent_conn_cleanup(struct agent_conn *c);

void agent_reply_init(struct agent_reply *reply);
void agent_reply_free(struct agent_reply *reply);

/* now_ms is a monotonic clock in milliseconds (the caller's loop time). */
void agent_handle(struct agent *ag, struct agent_conn *c, uint64_t now_ms, const uint8_t *msg,
                  size_t len, struct agent_reply *reply);

/* Worker side: does a job's computation. Touches nothing but the job. */
void agent_job_run(struct agent_job *job);

/*
 * Loop side: the user answered a confirmation (approved) or could not be
 * asked (!approved). Writes the reply, or hands back a signing job in
 * reply->job (made from the same memory). Consumes job.
 */
void agent_job_confirmed(struct agent *ag, struct agent_conn *c, struct agent_job *job,
                         bool approved, struct agent_reply *reply);

/*
 * Loop side: ends a job without carrying it out (a confirmation without
 * asking, an unlock whose client left) with a failure reply; why says why,
 * for the log and the audit log. Consumes job.
 */
void agent_job_refuse(struct agent *ag, struct agent_conn *c, struct agent_job *job,
                      const char *why, struct agent_reply *reply);

/*
 * Loop side: agent_job_run() is done. Writes the reply: for a signature, a
 * failure if meanwhile the agent was locked or the key removed (expired
 * keys must have been dropped with agent_expire() first). Consumes job.
 */
void agent_job_finish(struct agent *ag, struct agent_conn *c, struct agent_job *job,
                      struct agent_reply *reply);

/* Frees a job that will not be finished (its connection went away). Consumes job. */
void agent_job_free(struct agent_job *job);

/*
 * The helper host of a module died or stopped answering (the transport
 * has failed its pending requests): the module's identities are removed,
 * since they cannot sign any more, and it may be added again. why is for
 * the log.
 */
void agent_provider_lost(struct agent *ag, void *host, const char *why);

/* Drops expired keys; returns the next expiry (monotonic ms) or 0 if none. */
uint64_t agent_expire(struct agent *ag, uint64_t now_ms);

/*
 * Adds an identity a store kept (persist.h), at start, before any client.
 * pub is the public blob the store filed the entry under: the key must be
 * that one. Returns 0 (the audit log gets a "load" event), AGENT_RESTORE_EXPIRED
 * if the record's expiry has passed (nothing loaded: the caller deletes
 * the entry), or a KW_ERR_* code with why filled in. now_wall is seconds
 * since the epoch; now_ms the monotonic clock agent_handle() is given.
 */
#define AGENT_RESTORE_EXPIRED 1
int agent_restore(struct agent *ag, uint64_t now_ms, uint64_t now_wall,
                  const struct persist_record *rec, const uint8_t *pub, size_t pub_len, char *why,
                  size_t whysize);

/*
 * Sends an event that is not a request's to the audit log, if there is one
 * (a stored entry that could not be loaded, say). key and comment may be NULL.
 */
void agent_audit_note(struct agent *ag, const char *event, bool ok, const struct key *key,
                      const char *comment, const char *reason);

/* The extension names answered by "query", NULL-terminated. */
extern const char *const agent_extensions[];

#endif
