/*
 * keyward: the request dispatcher. See agent.h.
 *
 * Each handler either writes its success reply and returns 0, or returns a
 * KW_ERR_* code with a reason; agent_handle() then discards anything the
 * handler wrote and sends the failure code that fits the request. Every
 * path ends in exactly one reply and one log line.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/request.h"
#include "agent/userauth.h"
#include "base/timing.h"
#include "base/err.h"
#include "base/log.h"
#include "base/match.h"
#include "base/memzero.h"
#include "base/path.h"
#include "proto/helper_msg.h"

const char *const agent_extensions[] = {EXT_QUERY, EXT_SESSION_BIND, NULL};

/* What a handler reports back to the dispatcher for the log line. */
struct outcome {
    const char *why;                   /* reason for a refusal; kw_strerror() if NULL */
    char detail[192];                  /* what the request was about: key, extension name */
    char whybuf[256];                  /* room for a reason built at run time */
    struct key *key;                   /* the key the request named, if it parsed (a reference) */
    char comment[128];                 /* its comment, when the agent holds it */
    char dest_user[USERAUTH_MAX_USER]; /* the user of the userauth request signed */
    char warning[256];                 /* done, but not all of it: an added key not stored */
    uint8_t fail_code;                 /* reply code on failure */
};

void agent_init(struct agent *ag, uint32_t default_lifetime_secs)
{
    /* Every field starts at zero (a field added later too): the rest is what differs. */
    memset(ag, 0, sizeof(*ag));
    keystore_init(&ag->keys);
    lock_init(&ag->lock);
    ag->default_lifetime_secs = default_lifetime_secs;
    ag->offload_slow_work = false;
    ag->offload_fast = NULL; /* read once offload_slow_work is set */
    ag->offload_ctx = NULL;
    ag->audit = NULL;
    ag->audit_ctx = NULL;
    provider_set_init(&ag->providers);
    ag->persist = NULL;
}

void agent_cleanup(struct agent *ag)
{
    keystore_clear(&ag->keys);
    provider_set_clear(&ag->providers); /* after the identities that point to them */
    lock_clear(&ag->lock);
}

void agent_conn_init(struct agent_conn *c, unsigned long id)
{
    c->id = id;
    binding_set_init(&c->bindings);
    c->client.pid = -1;
    c->client.uid = -1;
    c->client.exe[0] = '\0';
}

void agent_conn_cleanup(struct agent_conn *c)
{
    binding_set_clear(&c->bindings);
}

void agent_reply_init(struct agent_reply *reply)
{
    wire_writer_init(&reply->msg);
    reply->delay_ms = 0;
    reply->retry_ms = 0;
    reply->job = NULL;
}

void agent_reply_free(struct agent_reply *reply)
{
    wire_writer_free(&reply->msg);
    reply->delay_ms = 0;
    reply->retry_ms = 0;
    agent_job_free(reply->job);
    reply->job = NULL;
}

static bool is_lock_job(const struct agent_job *job)
{
    return job->kind == AGENT_JOB_LOCK || job->kind == AGENT_JOB_UNLOCK;
}

void agent_job_free(struct agent_job *job)
{
    struct agent_sign_job *sj;
    struct agent_lock_job *lj;

    if (job == NULL)
        return;
    if (job->kind == AGENT_JOB_PROVIDER_ADD) {
        struct agent_provider_job *pj = agent_provider_job(job);
        size_t i;

        if (pj->host != NULL && pj->release != NULL)
            pj->release(pj->release_ctx, pj->host); /* loaded, but the agent did not take it */
        kw_memzero(pj->pin, pj->pin_len);
        free(pj->pin);
        free(pj->path);
        dest_free(&pj->dest);
        for (i = 0; i < pj->ncerts; i++)
            key_free(pj->certs[i]);
        free(pj->certs);
        wire_writer_free(&pj->keys);
        free(pj);
        return;
    }
    if (is_lock_job(job)) {
        lj = agent_lock_job(job);
        /* An unlock attempt that ends unfinished (its client left) gives back its turn. */
        if (lj->gate != NULL)
            lock_attempt_done(lj->gate, lj->ticket);
        kw_memzero(lj->pass, lj->pass_len);
        kw_memzero(lj->hash, sizeof(lj->hash));
        free(lj);
        return;
    }
    sj = agent_sign_job(job);
    free(sj->sk_provider);
    key_free(sj->key);
    key_free(sj->subject);
    kw_memzero(sj->data, sj->data_len);
    wire_writer_free(&sj->sig);
    free(sj);
}

/* Copies len bytes to *tail and moves *tail past them; returns where they went. */
static uint8_t *tail_put(uint8_t **tail, const void *src, size_t len)
{
    uint8_t *at = *tail;

    if (len > 0)
        memcpy(at, src, len);
    *tail += len;
    return at;
}

/*
 * A CONFIRM or SIGN job for a sign request, and what the log and the audit
 * log will say about it (from o). Its variable parts follow the struct in
 * the same allocation: the key blob, the data, the log's strings and, for a
 * confirmation, the prompt's room (agent.h says why).
 */
static struct agent_sign_job *sign_job_new(enum agent_job_kind kind,
                                           const struct agent_request *req, const struct outcome *o)
{
    struct wire_view blob = req->u.sign.key_blob, data = req->u.sign.data;
    size_t detail_size = strlen(o->detail) + 1, comment_size = strlen(o->comment) + 1;
    size_t user_size = strlen(o->dest_user) + 1;
    size_t prompt_size = kind == AGENT_JOB_CONFIRM ? AGENT_JOB_PROMPT_SIZE : 0;
    struct agent_sign_job *sj;
    uint8_t *tail;

    sj = calloc(1, sizeof(*sj) + blob.len + data.len + detail_size + comment_size + user_size +
                       prompt_size);
    if (sj == NULL)
        return NULL;
    sj->job.kind = kind;
    sj->flags = req->u.sign.flags;
    wire_writer_init(&sj->sig);
    tail = (uint8_t *)(sj + 1);
    sj->blob = tail_put(&tail, blob.ptr, blob.len);
    sj->blob_len = blob.len;
    sj->data = tail_put(&tail, data.ptr, data.len);
    sj->data_len = data.len;
    sj->detail = (const char *)tail_put(&tail, o->detail, detail_size);
    sj->comment = (const char *)tail_put(&tail, o->comment, comment_size);
    sj->dest_user = (const char *)tail_put(&tail, o->dest_user, user_size);
    if (prompt_size > 0)
        sj->prompt = (char *)tail; /* zeroed by calloc: "" until confirm_prompt() */
    sj->subject = o->key ? key_ref(o->key) : NULL;
    return sj;
}

void agent_job_run(struct agent_job *job)
{
    struct agent_sign_job *sj;
    uint64_t t0;
    struct agent_lock_job *lj;

    switch (job->kind) {
    case AGENT_JOB_SIGN:
        sj = agent_sign_job(job);
        t0 = kw_timing_on ? kw_timing_now() : 0;
        sj->run_err = key_sign(sj->key, sj->data, sj->data_len, sj->flags, &sj->sig);
        if (kw_timing_on) {
            sj->timing_sign_ns = kw_timing_now() - t0;
            kw_timing_add(KW_TIMING_SIGN, sj->timing_sign_ns);
        }
        break;
    case AGENT_JOB_LOCK:
    case AGENT_JOB_UNLOCK:
        lj = agent_lock_job(job);
        lj->run_err = lock_derive(lj->pass, lj->pass_len, lj->salt, lj->hash);
        /* The passphrase is not needed any more: do not keep it around. */
        kw_memzero(lj->pass, lj->pass_len);
        break;
    case AGENT_JOB_CONFIRM: /* the transport's to carry out, not a worker's */
    case AGENT_JOB_PROVIDER_SIGN:
        agent_sign_job(job)->run_err = KW_ERR_INTERNAL;
        break;
    case AGENT_JOB_PROVIDER_ADD:
        agent_provider_job(job)->run_err = KW_ERR_INTERNAL;
        break;
    }
}

uint64_t agent_expire(struct agent *ag, uint64_t now_ms)
{
    struct audit_event ev;
    uint64_t next = 0;
    size_t i;

    if (ag->audit != NULL || ag->persist != NULL) {
        for (i = 0; i < ag->keys.count; i++) {
            const struct identity *id = ag->keys.ids[i];

            if (id->expires_ms == 0 || id->expires_ms > now_ms)
                continue;
            if (ag->persist != NULL)
                ag->persist->forget(ag->persist->ctx, id->key);
            if (ag->audit == NULL)
                continue;
            char comment[128];

            /* Cut like every other event's comment, so the line always fits. */
            snprintf(comment, sizeof(comment), "%s", id->comment);
            memset(&ev, 0, sizeof(ev));
            ev.event = "expire";
            ev.outcome = "ok";
            ev.key = id->key;
            ev.comment = comment[0] ? comment : NULL;
            ag->audit(ag->audit_ctx, &ev);
        }
    }
    keystore_expire(&ag->keys, now_ms, &next);
    return next;
}

static void describe_key(struct outcome *o, struct key *k)
{
    char fp[KEY_FINGERPRINT_SIZE];

    key_fingerprint(k, fp, sizeof(fp));
    snprintf(o->detail, sizeof(o->detail), "%s %s", key_short_name(k), fp);
    if (o->key == NULL)
        o->key = key_ref(k);
}

/* Like describe_key(), with the fingerprint computed when the key was added. */
static void describe_identity(struct outcome *o, const struct identity *id)
{
    snprintf(o->detail, sizeof(o->detail), "%s %s", key_short_name(id->key), id->fp);
    if (o->key == NULL)
        o->key = key_ref(id->key);
}

static void describe_blob(struct outcome *o, struct wire_view blob)
{
    struct key *k = NULL;

    if (key_from_blob(blob.ptr, blob.len, &k) == 0) {
        describe_key(o, k); /* takes its own reference */
        key_free(k);
    } else {
        snprintf(o->detail, sizeof(o->detail), "unparseable key blob (%zu bytes)", blob.len);
    }
}

/* ---- audit ---- */

/* The audit log's name for a request's event. */
static const char *audit_event_name(uint8_t type)
{
    switch (type) {
    case SSH_AGENTC_SIGN_REQUEST:
        return "sign";
    case SSH_AGENTC_ADD_IDENTITY:
    case SSH_AGENTC_ADD_ID_CONSTRAINED:
        return "add";
    case SSH_AGENTC_REMOVE_IDENTITY:
        return "remove";
    case SSH_AGENTC_REMOVE_ALL_IDENTITIES:
        return "remove-all";
    case SSH_AGENTC_LOCK:
        return "lock";
    case SSH_AGENTC_UNLOCK:
        return "unlock";
    case SSH_AGENTC_ADD_SMARTCARD_KEY:
    case SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED:
        return "pkcs11-add";
    case SSH_AGENTC_REMOVE_SMARTCARD_KEY:
        return "pkcs11-remove";
    }
    return NULL;
}

/*
 * Sends one event to the audit sink: every outcome of the requests named
 * above, and every refusal of any other request.
 */
static void audit_request(struct agent *ag, const struct agent_conn *c, uint8_t type, bool ok,
                          const struct key *key, const char *comment, const char *dest_user,
                          const char *reason, const char *warning)
{
    struct audit_event ev;
    const char *name = audit_event_name(type);

    if (ag->audit == NULL || (name == NULL && ok))
        return;
    memset(&ev, 0, sizeof(ev));
    ev.event = name ? name : "refused";
    ev.outcome = ok ? "ok" : "refused";
    ev.request = proto_type_name(type);
    ev.conn = c->id;
    ev.client = &c->client;
    ev.key = key;
    ev.comment = comment && comment[0] ? comment : NULL;
    ev.bound = c->bindings.count > 0;
    /* A forwarded connection's first binding is the forwarding hop. */
    ev.forwarded = ev.bound && c->bindings.slots[0].forwarding;
    ev.dest_hostkey = ev.bound ? c->bindings.slots[c->bindings.count - 1].hostkey : NULL;
    ev.dest_user = dest_user && dest_user[0] ? dest_user : NULL;
    ev.reason = ok ? NULL : reason;
    ev.warning = warning && warning[0] ? warning : NULL;
    ag->audit(ag->audit_ctx, &ev);
}

void agent_audit_note(struct agent *ag, const char *event, bool ok, const struct key *key,
                      const char *comment, const char *reason)
{
    struct audit_event ev;
    char cut[128];

    if (ag->audit == NULL)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.event = event;
    ev.outcome = ok ? "ok" : "refused";
    ev.key = key;
    if (comment != NULL && comment[0] != '\0') {
        snprintf(cut, sizeof(cut), "%s", comment); /* cut like every other event's */
        ev.comment = cut;
    }
    ev.reason = reason;
    ag->audit(ag->audit_ctx, &ev);
}

/* Remembers what the audit log says about the identity a request named. */
static void note_identity(struct outcome *o, const struct identity *id)
{
    snprintf(o->comment, sizeof(o->comment), "%s", id->comment);
}

/*
 * The user of a userauth request being signed, when the data is one. Only
 * the audit log says it, so without an audit sink the request is not parsed
 * (for a host-bound request that means a host key blob, and for an ECDSA
 * host key a public-key check costing more than the signature).
 */
static void note_sign_user(struct agent *ag, struct outcome *o, const struct identity *id,
                           struct wire_view data)
{
    struct userauth_request ua;

    if (ag->audit == NULL)
        return;
    if (userauth_parse(data.ptr, data.len, id->key, &ua) == 0) {
        snprintf(o->dest_user, sizeof(o->dest_user), "%s", ua.user);
        userauth_free(&ua);
    }
}

/* ---- handlers ---- */

/* Wall-clock seconds, for host certificate validity in destination checks. */
static uint64_t wall_now(void)
{
    time_t t = time(NULL);

    return t > 0 ? (uint64_t)t : 0;
}

static int handle_list(struct agent *ag, struct agent_conn *c, struct wire_writer *w,
                       struct outcome *o)
{
    char why[256];
    size_t i, count_at, shown = 0;

    wire_put_u8(w, SSH_AGENT_IDENTITIES_ANSWER);
    if (ag->lock.locked) {
        wire_put_u32(w, 0); /* a locked agent shows no keys */
        snprintf(o->detail, sizeof(o->detail), "0 keys (locked)");
        return w->error;
    }
    count_at = w->len;
    wire_put_u32(w, 0); /* filled in below */
    for (i = 0; i < ag->keys.count; i++) {
        const struct identity *id = ag->keys.ids[i];

        /* Keys that could not be used from this connection are not shown. */
        if (!dest_permitted(&id->dest, &c->bindings, NULL, wall_now(), why, sizeof(why))) {
            log_debug("conn %lu: hiding %s %s: %s", c->id, key_short_name(id->key), id->fp, why);
            continue;
        }
        wire_put_string(w, id->key->blob, id->key->blob_len);
        wire_put_cstring(w, id->comment);
        shown++;
    }
    if (w->error == 0)
        wire_poke_u32(w->buf + count_at, (uint32_t)shown);
    snprintf(o->detail, sizeof(o->detail), "%zu keys", shown);
    return w->error;
}

/*
 * Replaces a reply with a failure. Only allocation can fail here, and one
 * byte must still go out: a second try in a fresh buffer.
 */
static void put_failure(struct wire_writer *w, uint8_t code)
{
    wire_writer_reset(w);
    proto_put_status(w, code);
    if (w->error) {
        wire_writer_free(w);
        proto_put_status(w, code);
    }
}

/* Writes a SIGN_RESPONSE around a signature blob. */
static int put_sign_response(struct wire_writer *w, struct wire_view sig)
{
    wire_put_u8(w, SSH_AGENT_SIGN_RESPONSE);
    wire_put_view(w, sig);
    return w->error;
}

/* RSA signatures take milliseconds; the others tens of microseconds. */
static bool is_slow_to_sign(const struct key *k)
{
    return k->kind == KEY_RSA;
}

/* Whether a signature with key goes to a worker thread (agent.h: offload_*). */
static bool sign_offloaded(struct agent *ag, const struct agent_conn *c, const struct key *key)
{
    if (!ag->offload_slow_work)
        return false;
    return is_slow_to_sign(key) ||
           (ag->offload_fast != NULL && ag->offload_fast(ag->offload_ctx, c));
}

/* Signs on the loop thread, writing the SIGN_RESPONSE to w. */
static int sign_inline(const struct key *key, const uint8_t *data, size_t len, uint32_t flags,
                       struct wire_writer *w)
{
    struct wire_writer sig;
    int err;

    wire_writer_init(&sig);
    if ((err = key_sign(key, data, len, flags, &sig)) == 0)
        err = put_sign_response(w, wire_writer_view(&sig));
    wire_writer_free(&sig);
    return err;
}

/*
 * Makes sj (a new job, or an approved confirmation) the job that signs with
 * the identity's key: on a worker, or, for a token's key, by its module's
 * helper.
 */
static int become_sign_job(struct agent_sign_job *sj, const struct identity *id)
{
    if (id->sk_provider != NULL) {
        /* A FIDO key: a keyward-sk-helper runs its provider (provider_host.c). */
        if ((sj->sk_provider = strdup(id->sk_provider)) == NULL)
            return KW_ERR_ALLOC;
        sj->key = key_ref(id->key);
        sj->job.kind = AGENT_JOB_PROVIDER_SIGN;
        sj->host = NULL;
        return 0;
    }
    sj->key = key_ref(id->key);
    if (id->provider != NULL) {
        sj->job.kind = AGENT_JOB_PROVIDER_SIGN;
        sj->host = id->provider->host;
        return 0;
    }
    sj->job.kind = AGENT_JOB_SIGN;
    sj->fast = !is_slow_to_sign(id->key);
    return 0;
}

/* Signed elsewhere: by a PKCS#11 module's helper or a FIDO provider's. */
static bool signs_out_of_process(const struct identity *id)
{
    return id->provider != NULL || id->sk_provider != NULL;
}

static void confirm_prompt(const struct agent_conn *c, const struct identity *id, char *buf,
                           size_t size)
{
    char hfp[KEY_FINGERPRINT_SIZE], safe[128];
    const struct binding *b;
    int n;

    n = snprintf(buf, size, "Allow use of key %s?\nKey fingerprint %s.%s",
                 log_sanitize(id->comment, strlen(id->comment), safe, sizeof(safe)), id->fp,
                 id->sk_provider != NULL && (id->key->sk_flags & KEY_SK_USER_PRESENCE_REQD)
                     ? "\nYour security key will ask for a touch next."
                     : "");
    if (c->bindings.count > 0 && n > 0 && (size_t)n < size) {
        /* Name where the signature will be used: the latest bound host. */
        b = &c->bindings.slots[c->bindings.count - 1];
        key_fingerprint(b->hostkey, hfp, sizeof(hfp));
        snprintf(buf + n, size - (size_t)n, "\nDestination host key %s %s%s.",
                 key_short_name(b->hostkey), hfp, b->forwarding ? " (forwarded)" : "");
    }
}

/*
 * A destination-constrained key signs only a userauth request for the
 * host this connection is bound to, by a permitted path (OpenSSH's rules).
 */
static int check_destination(const struct identity *id, const struct agent_conn *c,
                             const uint8_t *data, size_t len, struct outcome *o)
{
    struct userauth_request ua;
    const struct binding *last;
    int err = KW_ERR_DENIED;

    if (id->dest.count == 0)
        return 0;
    if (c->bindings.count == 0) {
        o->why = "destination-constrained key on a connection with no session binding";
        return KW_ERR_DENIED;
    }
    if (userauth_parse(data, len, id->key, &ua) != 0) {
        o->why = "destination-constrained key may only sign a userauth request for itself";
        return KW_ERR_DENIED;
    }
    last = &c->bindings.slots[c->bindings.count - 1];
    if (!dest_permitted(&id->dest, &c->bindings, ua.user, wall_now(), o->whybuf,
                        sizeof(o->whybuf))) {
        o->why = o->whybuf;
    } else if (ua.sid.len != last->sid_len || memcmp(ua.sid.ptr, last->sid, last->sid_len)) {
        o->why = "userauth request is for a session other than the most recently bound one";
    } else if (c->bindings.count > 1 && ua.hostkey == NULL) {
        o->why = "forwarded userauth request does not name its host key";
    } else if (ua.hostkey != NULL && !key_equal(ua.hostkey, last->hostkey)) {
        o->why = "host key in the userauth request is not the bound host's";
    } else {
        err = 0;
    }
    userauth_free(&ua);
    return err;
}

/* The SSHSIG magic preamble (OpenSSH's PROTOCOL.sshsig): ssh-keygen -Y sign's messages. */
#define SSHSIG_MAGIC "SSHSIG"

/*
 * OpenSSH's web-origin rule for FIDO keys: unless keyward-agent -O
 * no-restrict-websafe, a key whose application is not allowed by -O
 * websafe-allow (default "ssh:*") signs only what cannot be a web site's
 * challenge: an SSH userauth request for this key, or an SSHSIG message.
 */
static int check_websafe(const struct agent *ag, const struct identity *id, const uint8_t *data,
                         size_t len, struct outcome *o)
{
    struct userauth_request ua;
    const char *allow = ag->websafe_allow != NULL ? ag->websafe_allow : "ssh:*";

    if (id->sk_provider == NULL || ag->websafe_unrestricted ||
        match_pattern_list(id->key->sk_application, allow) == 1)
        return 0;
    if (len >= sizeof(SSHSIG_MAGIC) - 1 &&
        memcmp(data, SSHSIG_MAGIC, sizeof(SSHSIG_MAGIC) - 1) == 0)
        return 0;
    if (userauth_parse(data, len, id->key, &ua) == 0) {
        userauth_free(&ua);
        return 0;
    }
    o->why = "FIDO key's application is not web-safe (keyward-agent -O websafe-allow) and the "
             "data is neither an SSH userauth request nor an SSHSIG message";
    return KW_ERR_DENIED;
}

static int handle_sign(struct agent *ag, struct agent_conn *c, const struct agent_request *req,
                       struct wire_writer *w, struct outcome *o, struct agent_reply *reply)
{
    const struct identity *id;
    struct agent_sign_job *sj;
    int err;

    id = keystore_find(&ag->keys, req->u.sign.key_blob.ptr, req->u.sign.key_blob.len);
    if (id == NULL) {
        /*
         * Only now parse the blob, for the refusal's log line. A held key
         * matched it byte for byte, so describing the key already parsed
         * says the same; parsing again would cost an ECDSA request a
         * public-key check (a scalar multiplication) that dwarfs its
         * signature.
         */
        describe_blob(o, req->u.sign.key_blob);
        return KW_ERR_NOT_FOUND;
    }
    describe_identity(o, id);
    note_identity(o, id);
    note_sign_user(ag, o, id, req->u.sign.data);
    if ((err = check_destination(id, c, req->u.sign.data.ptr, req->u.sign.data.len, o)) != 0)
        return err;
    if ((err = check_websafe(ag, id, req->u.sign.data.ptr, req->u.sign.data.len, o)) != 0)
        return err;
    if (id->confirm) {
        /* Never sign with a confirm-constrained key without asking. */
        if ((sj = sign_job_new(AGENT_JOB_CONFIRM, req, o)) == NULL)
            return KW_ERR_ALLOC;
        confirm_prompt(c, id, sj->prompt, AGENT_JOB_PROMPT_SIZE);
        reply->job = &sj->job;
        return 0;
    }
    if (!signs_out_of_process(id) && !sign_offloaded(ag, c, id->key))
        return sign_inline(id->key, req->u.sign.data.ptr, req->u.sign.data.len, req->u.sign.flags,
                           w);
    if ((sj = sign_job_new(AGENT_JOB_SIGN, req, o)) == NULL)
        return KW_ERR_ALLOC;
    if ((err = become_sign_job(sj, id)) != 0) {
        agent_job_free(&sj->job);
        return err;
    }
    if (id->sk_provider != NULL)
        log_debug("conn %lu: %s %s: asking FIDO provider %s%s", c->id, key_short_name(id->key),
                  id->fp, id->sk_provider,
                  (id->key->sk_flags & KEY_SK_USER_PRESENCE_REQD) ? " (touch required)" : "");
    reply->job = &sj->job;
    return 0;
}

/*
 * Whether one more identity (key, comment), replacing existing if that is
 * set, still fits: at most KEYSTORE_MAX_IDENTITIES, and every identity in
 * one IDENTITIES_ANSWER, since a list longer than a frame (256 KiB;
 * clients refuse longer ones too) would break listing for every client.
 */
static int check_room(const struct agent *ag, const struct identity *existing,
                      const struct key *key, const char *comment, struct outcome *o)
{
    size_t bytes = 5 + 8 + key->blob_len + strlen(comment), i;

    for (i = 0; i < ag->keys.count; i++)
        if (ag->keys.ids[i] != existing)
            bytes += 8 + ag->keys.ids[i]->key->blob_len + strlen(ag->keys.ids[i]->comment);
    if (bytes > WIRE_MAX_MESSAGE) {
        snprintf(o->whybuf, sizeof(o->whybuf),
                 "too many keys: the list of identities would exceed %u bytes",
                 (unsigned)WIRE_MAX_MESSAGE);
        o->why = o->whybuf;
        return KW_ERR_TOO_LARGE;
    }
    if (existing == NULL && ag->keys.count >= KEYSTORE_MAX_IDENTITIES) {
        snprintf(o->whybuf, sizeof(o->whybuf), "too many keys (the limit is %d)",
                 KEYSTORE_MAX_IDENTITIES);
        o->why = o->whybuf;
        return KW_ERR_TOO_LARGE;
    }
    return 0;
}

/*
 * Hands a key just added to the store: the private part as it came, and
 * the constraints, a lifetime as its absolute expiry. A store that fails
 * leaves the key in memory only: the add has succeeded, with a warning.
 */
static void persist_added(struct agent *ag, const struct agent_conn *conn,
                          const struct agent_request *req, const struct key *key,
                          const char *comment, uint32_t lifetime, struct outcome *o)
{
    const struct add_constraints *c = &req->u.add.constraints;
    struct persist_record rec;
    char why[200];

    memset(&rec, 0, sizeof(rec));
    rec.priv = req->u.add.priv;
    rec.comment.ptr = (const uint8_t *)comment;
    rec.comment.len = strlen(comment);
    rec.confirm = c->confirm;
    rec.dest = c->dest_raw;
    if (c->has_lifetime || lifetime != 0)
        rec.expires = wall_now() + lifetime;
    why[0] = '\0';
    if (ag->persist->put(ag->persist->ctx, key, &rec, why, sizeof(why)) != 0) {
        snprintf(o->warning, sizeof(o->warning), "kept in memory only, not stored: %s", why);
        log_error("conn %lu: %s %s", conn->id, o->detail, o->warning);
    }
}

static bool conn_is_remote(const struct agent_conn *c);

/*
 * A FIDO key's provider, as OpenSSH's agent decides it: the constraint's,
 * else "internal"; a library's path must exist (canonical: realpath) and be
 * allowed by -P, and a forwarded connection may name one only with -O
 * allow-remote-pkcs11. The constraint on another key is refused. *out is
 * the provider to keep (allocated), or NULL for a key that is not FIDO.
 */
static int sk_provider_for(const struct agent *ag, const struct agent_conn *conn,
                           const struct agent_request *req, struct outcome *o, char **out)
{
    const struct add_constraints *c = &req->u.add.constraints;
    char raw[4096], path[4096], safe[160];

    *out = NULL;
    if (!key_is_sk(req->u.add.key)) {
        if (!c->has_sk_provider)
            return 0;
        o->why = "a FIDO provider (sk-provider@openssh.com) given for a key that is not a FIDO key";
        return KW_ERR_CONSTRAINT;
    }
    if (!c->has_sk_provider || wire_view_eq_str(c->sk_provider, "internal")) {
        *out = strdup("internal");
        return *out != NULL ? 0 : KW_ERR_ALLOC;
    }
    memcpy(raw, c->sk_provider.ptr, c->sk_provider.len); /* shorter than 4096 (request.c) */
    raw[c->sk_provider.len] = '\0';
    log_sanitize(raw, c->sk_provider.len, safe, sizeof(safe));
    if (conn_is_remote(conn) && !ag->providers.allow_remote) {
        o->why = "a forwarded connection may not add a FIDO provider other than \"internal\" "
                 "(keyward-agent -O allow-remote-pkcs11)";
        return KW_ERR_DENIED;
    }
    if (kw_canonical_path(raw, path, sizeof(path)) != 0) {
        snprintf(o->whybuf, sizeof(o->whybuf), "FIDO provider %.150s: %s", safe, strerror(errno));
        o->why = o->whybuf;
        return KW_ERR_NOT_FOUND;
    }
    if (match_pattern_list(path, ag->providers.allowed) != 1) {
        snprintf(o->whybuf, sizeof(o->whybuf),
                 "FIDO provider %.150s not allowed by the allow-list (keyward-agent -P)",
                 log_sanitize(path, strlen(path), safe, sizeof(safe)));
        o->why = o->whybuf;
        return KW_ERR_DENIED;
    }
    *out = strdup(path);
    return *out != NULL ? 0 : KW_ERR_ALLOC;
}

static int handle_add(struct agent *ag, struct agent_conn *conn, uint64_t now_ms,
                      struct agent_request *req, struct wire_writer *w, struct outcome *o)
{
    char *sk_provider = NULL;
    struct add_constraints *c = &req->u.add.constraints;
    const struct identity *existing;
    uint64_t expires = 0;
    uint32_t lifetime = c->has_lifetime ? c->lifetime_secs : ag->default_lifetime_secs;
    size_t hops = c->dest.count;
    struct key *key;
    char *comment;
    int err;

    describe_key(o, req->u.add.key);
    snprintf(o->comment, sizeof(o->comment), "%s", req->u.add.comment);
    /* Re-adding must not let a connection lift restrictions it is subject to. */
    existing = keystore_find(&ag->keys, req->u.add.key->blob, req->u.add.key->blob_len);
    if (existing != NULL && !dest_permitted(&existing->dest, &conn->bindings, NULL, wall_now(),
                                            o->whybuf, sizeof(o->whybuf))) {
        o->why = o->whybuf;
        return KW_ERR_DENIED;
    }
    if (c->has_lifetime || lifetime != 0) {
        expires = now_ms + (uint64_t)lifetime * 1000;
        if (expires == 0)
            expires = 1; /* 0 means "never" */
    }
    if ((err = check_room(ag, existing, req->u.add.key, req->u.add.comment, o)) != 0)
        return err;
    if ((err = sk_provider_for(ag, conn, req, o, &sk_provider)) != 0)
        return err;
    key = req->u.add.key;
    comment = req->u.add.comment;
    if ((err = keystore_add(&ag->keys, key, comment, expires, c->confirm, &c->dest)) != 0) {
        free(sk_provider);
        return err;
    }
    req->u.add.key = NULL; /* now owned by the keystore */
    req->u.add.comment = NULL;
    keystore_find(&ag->keys, key->blob, key->blob_len)->sk_provider = sk_provider;
    /* A FIDO key's provider is not part of a stored record: such keys stay in memory. */
    if (ag->persist != NULL && sk_provider == NULL)
        persist_added(ag, conn, req, key, comment, lifetime, o);
    if (sk_provider != NULL) {
        size_t n = strlen(o->detail);

        snprintf(o->detail + n, sizeof(o->detail) - n, " (provider %s)", sk_provider);
    }
    if (expires != 0 || c->confirm || hops != 0) {
        size_t n = strlen(o->detail);

        snprintf(o->detail + n, sizeof(o->detail) - n, "%s%s", expires ? " (lifetime)" : "",
                 c->confirm ? " (confirm)" : "");
        n = strlen(o->detail);
        if (hops != 0)
            snprintf(o->detail + n, sizeof(o->detail) - n, " (%zu permitted hops)", hops);
    }
    proto_put_status(w, SSH_AGENT_SUCCESS);
    return w->error;
}

static int handle_remove(struct agent *ag, const struct agent_conn *conn,
                         const struct agent_request *req, struct wire_writer *w, struct outcome *o)
{
    const struct identity *id;
    char why[256];
    int err;

    /* As in handle_sign(): parse the blob only for a key the agent does not hold. */
    id = keystore_find(&ag->keys, req->u.remove.key_blob.ptr, req->u.remove.key_blob.len);
    if (id != NULL) {
        describe_identity(o, id);
        note_identity(o, id);
    } else {
        describe_blob(o, req->u.remove.key_blob);
    }
    /*
     * A key this connection may not see may not be removed from it either,
     * or a restricted place could delete the key and, from the answer,
     * learn that it is loaded. As OpenSSH: the same FAILURE as for a key
     * that is not there; the log line says why.
     */
    if (id != NULL &&
        !dest_permitted(&id->dest, &conn->bindings, NULL, wall_now(), why, sizeof(why))) {
        snprintf(o->whybuf, sizeof(o->whybuf), "key not visible on this connection (%.200s)", why);
        o->why = o->whybuf;
        return KW_ERR_NOT_FOUND;
    }
    if (id != NULL && ag->persist != NULL)
        ag->persist->forget(ag->persist->ctx, id->key);
    if ((err = keystore_remove(&ag->keys, req->u.remove.key_blob.ptr,
                               req->u.remove.key_blob.len)) != 0)
        return err;
    proto_put_status(w, SSH_AGENT_SUCCESS);
    return w->error;
}

static int handle_remove_all(struct agent *ag, struct wire_writer *w, struct outcome *o)
{
    size_t n = keystore_remove_all(&ag->keys), modules = ag->providers.count;

    if (ag->persist != NULL)
        ag->persist->forget_all(ag->persist->ctx);
    /*
     * The modules go too, their helpers stopped: with no identity left
     * they serve nothing, and ssh-add -s can load them again at once
     * (OpenSSH keeps them and refuses that until ssh-add -e).
     */
    provider_set_clear(&ag->providers);
    if (modules > 0)
        snprintf(o->detail, sizeof(o->detail), "%zu keys, %zu PKCS#11 modules", n, modules);
    else
        snprintf(o->detail, sizeof(o->detail), "%zu keys", n);
    proto_put_status(w, SSH_AGENT_SUCCESS);
    return w->error;
}

/* ---- PKCS#11 modules (docs/providers.md) ---- */

/*
 * OpenSSH's test for a forwarded connection: ssh binds every connection it
 * forwards, so one that ever tried to bind is taken for remote.
 */
static bool conn_is_remote(const struct agent_conn *c)
{
    return c->bindings.attempted || c->bindings.count > 0;
}

/* The module path of a smartcard request, canonical; fails with the reason in o. */
static int canonical_module(const struct agent_request *req, char *path, size_t size,
                            struct outcome *o)
{
    struct wire_view given = req->u.smartcard.provider;
    char raw[4096], safe[160];

    if (given.len >= sizeof(raw)) {
        o->why = "module path too long";
        return KW_ERR_TOO_LARGE;
    }
    memcpy(raw, given.ptr, given.len);
    raw[given.len] = '\0';
    snprintf(o->detail, sizeof(o->detail), "%s", log_sanitize(raw, given.len, safe, sizeof(safe)));
    if (kw_canonical_path(raw, path, size) != 0) {
        snprintf(o->whybuf, sizeof(o->whybuf), "module %s: %s", o->detail, strerror(errno));
        o->why = o->whybuf;
        return KW_ERR_NOT_FOUND;
    }
    snprintf(o->detail, sizeof(o->detail), "%s",
             log_sanitize(path, strlen(path), safe, sizeof(safe)));
    snprintf(o->comment, sizeof(o->comment), "%s", path);
    return 0;
}

static int handle_smartcard_add(struct agent *ag, struct agent_conn *c, uint64_t now_ms,
                                struct agent_request *req, struct outcome *o,
                                struct agent_reply *reply)
{
    struct add_constraints *cons = &req->u.smartcard.constraints;
    struct agent_provider_job *pj;
    uint32_t lifetime = cons->has_lifetime ? cons->lifetime_secs : ag->default_lifetime_secs;
    char path[4096];
    int err;

    if ((err = canonical_module(req, path, sizeof(path), o)) != 0)
        return err;
    if (conn_is_remote(c) && !ag->providers.allow_remote) {
        o->why = "loading PKCS#11 modules from a forwarded connection is disabled "
                 "(keyward-agent -O allow-remote-pkcs11)";
        return KW_ERR_DENIED;
    }
    if (match_pattern_list(path, ag->providers.allowed) != 1) {
        o->why = "module not allowed by the provider allow-list (keyward-agent -P)";
        return KW_ERR_DENIED;
    }
    if (provider_find_path(&ag->providers, path) != NULL) {
        o->why = "module already loaded (remove it first with ssh-add -e)";
        return KW_ERR_DENIED;
    }
    if (ag->providers.count >= PROVIDER_MAX) {
        snprintf(o->whybuf, sizeof(o->whybuf), "too many PKCS#11 modules (the limit is %d)",
                 PROVIDER_MAX);
        o->why = o->whybuf;
        return KW_ERR_TOO_LARGE;
    }
    if ((pj = calloc(1, sizeof(*pj))) == NULL)
        return KW_ERR_ALLOC;
    pj->job.kind = AGENT_JOB_PROVIDER_ADD;
    pj->release = ag->providers.release;
    pj->release_ctx = ag->providers.ctx;
    wire_writer_init(&pj->keys);
    pj->path = strdup(path);
    pj->pin_len = req->u.smartcard.pin.len;
    pj->pin = malloc(pj->pin_len + 1);
    if (pj->path == NULL || pj->pin == NULL) {
        agent_job_free(&pj->job);
        return KW_ERR_ALLOC;
    }
    if (pj->pin_len > 0)
        memcpy(pj->pin, req->u.smartcard.pin.ptr, pj->pin_len);
    pj->pin[pj->pin_len] = '\0';
    if (cons->has_lifetime || lifetime != 0) {
        pj->expires_ms = now_ms + (uint64_t)lifetime * 1000;
        if (pj->expires_ms == 0)
            pj->expires_ms = 1;
    }
    pj->confirm = cons->confirm;
    /* The constraints move to the job. */
    pj->dest = cons->dest;
    cons->dest.items = NULL;
    cons->dest.count = 0;
    pj->certs_only = cons->certs_only;
    pj->certs = cons->certs;
    pj->ncerts = cons->ncerts;
    cons->certs = NULL;
    cons->ncerts = 0;
    reply->job = &pj->job;
    return 0;
}

static int handle_smartcard_remove(struct agent *ag, const struct agent_request *req,
                                   struct wire_writer *w, struct outcome *o)
{
    struct provider *p;
    char path[4096];
    size_t n;
    int err;

    if ((err = canonical_module(req, path, sizeof(path), o)) != 0)
        return err;
    if ((p = provider_find_path(&ag->providers, path)) == NULL) {
        o->why = "module not loaded";
        return KW_ERR_NOT_FOUND;
    }
    n = keystore_remove_provider(&ag->keys, p);
    provider_remove(&ag->providers, p, true);
    {
        size_t len = strlen(o->detail);

        snprintf(o->detail + len, sizeof(o->detail) - len, " (%zu keys)", n);
    }
    proto_put_status(w, SSH_AGENT_SUCCESS);
    return w->error;
}

void agent_provider_lost(struct agent *ag, void *host, const char *why)
{
    struct provider *p = provider_find_host(&ag->providers, host);
    size_t n;

    if (p == NULL)
        return;
    n = keystore_remove_provider(&ag->keys, p);
    log_info("PKCS#11 module %s: %s; its %lu keys removed", p->path, why, (unsigned long)n);
    provider_remove(&ag->providers, p, false);
}

/*
 * One identity for a token's key: the plain key, or a certificate grafted
 * onto it. Adds to o's count; a failure is logged and skipped, as OpenSSH
 * skips keys it cannot add.
 */
static void add_token_identity(struct agent *ag, struct agent_provider_job *pj, struct provider *p,
                               struct key *key, const char *comment, unsigned *added)
{
    struct identity *existing = keystore_find(&ag->keys, key->blob, key->blob_len);
    struct dest_constraints dest = {0};
    struct outcome o;
    char *copy;

    memset(&o, 0, sizeof(o));
    if (existing != NULL) {
        /* A key the agent holds already is left as it is (OpenSSH does the same). */
        log_info("PKCS#11 module %s: %s %s is already held; not added again", pj->path,
                 key_short_name(key), existing->fp);
        key_free(key);
        return;
    }
    if (check_room(ag, NULL, key, comment, &o) != 0 || (copy = strdup(comment)) == NULL ||
        dest_copy(&pj->dest, &dest) != 0) {
        log_info("PKCS#11 module %s: %s not added: %s", pj->path, key_short_name(key),
                 o.why ? o.why : "out of memory");
        key_free(key);
        return;
    }
    if (keystore_add(&ag->keys, key, copy, pj->expires_ms, pj->confirm, &dest) != 0) {
        log_info("PKCS#11 module %s: %s not added: out of memory", pj->path, key_short_name(key));
        dest_free(&dest);
        free(copy);
        key_free(key);
        return;
    }
    keystore_find(&ag->keys, key->blob, key->blob_len)->provider = p;
    (*added)++;
}

/* ADD_SMARTCARD_KEY's end: the helper listed the token's keys (or failed). */
static int finish_provider_add(struct agent *ag, struct agent_provider_job *pj,
                               struct wire_writer *w, const char **why, char *whybuf,
                               size_t whysize)
{
    struct wire_reader r;
    struct provider *p;
    uint32_t n, i;
    unsigned added = 0;
    size_t j;

    if (pj->run_err != 0) {
        snprintf(whybuf, whysize, "%s", pj->why[0] ? pj->why : kw_strerror(pj->run_err));
        *why = whybuf;
        return pj->run_err;
    }
    /* The module may have been loaded by another client meanwhile. */
    /* On failure the job's end releases the helper (agent_job_free()). */
    if (provider_find_path(&ag->providers, pj->path) != NULL || ag->lock.locked) {
        *why = ag->lock.locked ? "agent was locked while the module loaded"
                               : "module was loaded by another client meanwhile";
        return KW_ERR_DENIED;
    }
    if ((p = provider_add(&ag->providers, pj->path, pj->host)) == NULL)
        return KW_ERR_ALLOC;
    pj->host = NULL; /* the provider's now */
    wire_reader_from_view(&r, wire_writer_view(&pj->keys));
    n = wire_get_u32(&r);
    for (i = 0; i < n && !r.error; i++) {
        struct wire_view blob, comment;
        char label[256];
        struct key *key;

        if (helper_keys_next(&r, &blob, &comment) != 0)
            break;
        if (key_from_plain_blob(blob.ptr, blob.len, &key) != 0) {
            log_info("PKCS#11 module %s: key %u of %u unusable, skipped", pj->path, i + 1, n);
            continue;
        }
        /* A key without a label is named after its module, as OpenSSH does. */
        if (comment.len == 0 || comment.len >= sizeof(label) ||
            memchr(comment.ptr, '\0', comment.len) != NULL) {
            snprintf(label, sizeof(label), "%s", pj->path);
        } else {
            memcpy(label, comment.ptr, comment.len);
            label[comment.len] = '\0';
        }
        for (j = 0; j < pj->ncerts; j++) {
            if (pj->certs[j]->plain_blob_len != key->plain_blob_len ||
                memcmp(pj->certs[j]->plain_blob, key->plain_blob, key->plain_blob_len) != 0)
                continue;
            add_token_identity(ag, pj, p, key_ref(pj->certs[j]), label, &added);
        }
        if (pj->certs_only)
            key_free(key);
        else
            add_token_identity(ag, pj, p, key, label, &added);
    }
    if (r.error)
        log_info("PKCS#11 module %s: malformed key list from its helper", pj->path);
    if (added == 0) {
        provider_remove(&ag->providers, p, true);
        *why = "the module offered no key that could be added";
        return KW_ERR_NOT_FOUND;
    }
    snprintf(whybuf, whysize, "%u keys", added);
    proto_put_status(w, SSH_AGENT_SUCCESS);
    return w->error;
}

/* A lock or unlock job carrying a copy of the passphrase for the worker. */
static struct agent_lock_job *lock_job_new(enum agent_job_kind kind, struct wire_view pass,
                                           const uint8_t salt[LOCK_SALT_LEN])
{
    struct agent_lock_job *lj = calloc(1, sizeof(*lj) + pass.len);

    if (lj == NULL)
        return NULL;
    lj->job.kind = kind;
    if (pass.len)
        memcpy(lj->pass, pass.ptr, pass.len);
    lj->pass_len = pass.len;
    memcpy(lj->salt, salt, LOCK_SALT_LEN);
    return lj;
}

/* Borrows lj: commits a finished lock or unlock job to the agent's lock. */
static int finish_lock(struct agent *ag, struct agent_lock_job *lj, struct wire_writer *w,
                       const char **why, uint32_t *delay_ms)
{
    bool was_locked = ag->lock.locked;
    int err;

    if (lj->gate != NULL) {
        /* The attempt is over: the next may start (after any delay set below). */
        lock_attempt_done(lj->gate, lj->ticket);
        lj->gate = NULL;
    }
    if (lj->run_err != 0)
        return lj->run_err;
    /* The reply's byte before the lock changes (see agent_handle()). */
    proto_put_status(w, SSH_AGENT_SUCCESS);
    if (w->error != 0)
        return w->error;
    if (lj->job.kind == AGENT_JOB_LOCK) {
        if ((err = lock_commit_engage(&ag->lock, lj->salt, lj->hash)) != 0) {
            *why = "already locked";
            return err;
        }
    } else if ((err = lock_commit_release(&ag->lock, lj->salt, lj->hash, lj->started_ms,
                                          delay_ms)) != 0) {
        *why = was_locked ? "wrong passphrase" : "agent is not locked";
        return err;
    }
    return 0;
}

static int handle_lock(struct agent *ag, uint64_t now_ms, const struct agent_request *req,
                       struct wire_writer *w, struct outcome *o, struct agent_reply *reply)
{
    bool engage = req->type == SSH_AGENTC_LOCK;
    uint8_t salt[LOCK_SALT_LEN];
    struct agent_lock_job *lj;
    unsigned long ticket = 0;
    uint32_t wait_ms = 0;
    int err;

    err = engage ? lock_prepare_engage(&ag->lock, req->u.lock.passphrase.len, salt)
                 : lock_prepare_release(&ag->lock, salt);
    if (err != 0) {
        if (engage)
            o->why = err == KW_ERR_LOCKED ? "already locked" : "empty passphrase";
        else
            o->why = "agent is not locked";
        return err;
    }
    /*
     * One unlock attempt at a time, agent wide, each after the delay the
     * last failure earned: a guesser gains nothing from more connections.
     * An attempt that must wait is not handled now but offered again.
     */
    if (!engage && lock_attempt_begin(&ag->lock, now_ms, &ticket, &wait_ms) != 0) {
        reply->retry_ms = wait_ms;
        return 0;
    }
    lj = lock_job_new(engage ? AGENT_JOB_LOCK : AGENT_JOB_UNLOCK, req->u.lock.passphrase, salt);
    if (lj == NULL) {
        lock_attempt_done(&ag->lock, ticket);
        return KW_ERR_ALLOC;
    }
    if (!engage) {
        lj->gate = &ag->lock;
        lj->ticket = ticket;
        lj->started_ms = now_ms;
    }
    if (ag->offload_slow_work) {
        reply->job = &lj->job;
        return 0;
    }
    agent_job_run(&lj->job);
    err = finish_lock(ag, lj, w, &o->why, &reply->delay_ms);
    if (reply->delay_ms)
        snprintf(o->detail, sizeof(o->detail), "reply delayed %u ms", reply->delay_ms);
    agent_job_free(&lj->job);
    return err;
}

static int handle_query(struct wire_writer *w)
{
    size_t i;

    /* RFC 9987: EXTENSION_RESPONSE, the extension's name, then the names. */
    wire_put_u8(w, SSH_AGENT_EXTENSION_RESPONSE);
    wire_put_cstring(w, EXT_QUERY);
    for (i = 0; agent_extensions[i] != NULL; i++)
        wire_put_cstring(w, agent_extensions[i]);
    return w->error;
}

static int handle_session_bind(struct agent_conn *c, struct wire_view body, struct wire_writer *w,
                               struct outcome *o)
{
    struct session_bind_request sb;
    enum binding_result res;
    char fp[KEY_FINGERPRINT_SIZE];
    const char *why = NULL;
    size_t slot = 0;
    int err;

    if ((err = proto_decode_session_bind(body, &sb)) != 0) {
        binding_note_failure(&c->bindings);
        snprintf(o->detail, sizeof(o->detail), "%s", EXT_SESSION_BIND);
        o->why = "malformed session-bind request";
        return err;
    }
    key_fingerprint(sb.hostkey, fp, sizeof(fp));
    snprintf(o->detail, sizeof(o->detail), "%s %s %s%s", EXT_SESSION_BIND,
             key_short_name(sb.hostkey), fp, sb.forwarding ? " (forwarding)" : "");
    /* The host's signature over the session id proves the binding is real. */
    if ((err = key_verify(sb.hostkey, sb.signature.ptr, sb.signature.len, sb.sid.ptr,
                          sb.sid.len)) != 0) {
        binding_note_failure(&c->bindings);
        o->why = "host key signature over session ID did not verify";
        proto_session_bind_free(&sb);
        return err;
    }
    res = binding_record(&c->bindings, sb.hostkey, sb.sid.ptr, sb.sid.len, sb.forwarding, &why,
                         &slot);
    if (res == BINDING_REFUSED) {
        o->why = why;
        proto_session_bind_free(&sb);
        return KW_ERR_DENIED;
    }
    if (res == BINDING_RECORDED) {
        sb.hostkey = NULL; /* owned by the binding set */
        snprintf(o->detail, sizeof(o->detail), "%s: recorded %s %s (slot %zu of %d)%s",
                 EXT_SESSION_BIND, key_short_name(c->bindings.slots[slot].hostkey), fp, slot,
                 BINDING_MAX, sb.forwarding ? " forwarding" : "");
    } else {
        snprintf(o->detail, sizeof(o->detail), "%s: already recorded %s (slot %zu of %d)",
                 EXT_SESSION_BIND, fp, slot, BINDING_MAX);
    }
    proto_session_bind_free(&sb);
    proto_put_status(w, SSH_AGENT_SUCCESS);
    return w->error;
}

static int handle_extension(struct agent *ag, struct agent_conn *c, const struct agent_request *req,
                            struct wire_writer *w, struct outcome *o)
{
    struct wire_view name = req->u.ext.name;
    char safe[64];

    if (wire_view_eq_str(name, EXT_SESSION_BIND)) {
        /* A known extension that fails answers EXTENSION_FAILURE. */
        o->fail_code = SSH_AGENT_EXTENSION_FAILURE;
        /* Allowed while locked: binding reveals and uses no key. */
        return handle_session_bind(c, req->u.ext.body, w, o);
    }
    if (wire_view_eq_str(name, EXT_QUERY)) {
        snprintf(o->detail, sizeof(o->detail), "%s", EXT_QUERY);
        o->fail_code = SSH_AGENT_EXTENSION_FAILURE;
        return handle_query(w);
    }
    (void)ag;
    snprintf(o->detail, sizeof(o->detail), "\"%s\"",
             log_sanitize(name.ptr, name.len, safe, sizeof(safe)));
    o->why = "unsupported extension";
    return KW_ERR_DENIED;
}

/* ---- dispatcher ---- */

static bool allowed_while_locked(const struct agent_request *req)
{
    switch (req->type) {
    case SSH_AGENTC_REQUEST_IDENTITIES: /* answered with an empty list */
    case SSH_AGENTC_UNLOCK:
    case SSH_AGENTC_EXTENSION: /* only session-bind; see below */
        return true;
    }
    return false;
}

void agent_handle(struct agent *ag, struct agent_conn *c, uint64_t now_ms, const uint8_t *msg,
                  size_t len, struct agent_reply *reply)
{
    struct agent_request req;
    struct outcome o;
    struct wire_writer *w = &reply->msg;
    int err;

    memset(&o, 0, sizeof(o));
    o.fail_code = SSH_AGENT_FAILURE;
    wire_writer_reset(w);
    reply->delay_ms = 0;
    reply->retry_ms = 0;
    agent_job_free(reply->job);
    reply->job = NULL;

    /* Expired keys must never serve, even if the expiry timer is late. */
    agent_expire(ag, now_ms);

    /*
     * The reply's buffer comes first: a request that changes the agent
     * (add, remove, lock, session-bind) must not then answer FAILURE for
     * want of the byte that says it succeeded (tests/oom/oom_dispatch.c).
     */
    wire_put_u8(w, SSH_AGENT_FAILURE);
    if (w->error != 0) {
        memset(&req, 0, sizeof(req));
        req.type = len > 0 ? msg[0] : 0;
        o.why = "out of memory";
        err = KW_ERR_ALLOC;
        goto done;
    }
    wire_writer_reset(w);

    /*
     * Parsing a private key allocates in the secure heap; once it is full,
     * keys already loaded cannot sign. So an add that would eat into the
     * reserve kept for signing is refused before its key is parsed.
     */
    if (len > 0 && (msg[0] == SSH_AGENTC_ADD_IDENTITY || msg[0] == SSH_AGENTC_ADD_ID_CONSTRAINED)) {
        size_t used, size;

        if (!key_secure_heap_has_room(&used, &size)) {
            memset(&req, 0, sizeof(req));
            req.type = msg[0];
            snprintf(o.whybuf, sizeof(o.whybuf),
                     "too many keys: secure heap reserve reached (%zu of %zu bytes in use, "
                     "1/%d kept for signing)",
                     used, size, KEY_SECURE_HEAP_RESERVE_DIV);
            o.why = o.whybuf;
            err = KW_ERR_TOO_LARGE;
            goto done;
        }
    }
    if ((err = proto_decode_request(msg, len, &req)) != 0) {
        o.why = err == KW_ERR_ALLOC        ? "out of memory"
                : err == KW_ERR_NO_SUPPORT ? key_unsupported_why()
                                           : "malformed request";
        if (req.type == SSH_AGENTC_EXTENSION)
            snprintf(o.detail, sizeof(o.detail), "(undecodable extension)");
        goto done;
    }
    if (ag->lock.locked && !allowed_while_locked(&req)) {
        err = KW_ERR_LOCKED;
        goto done;
    }
    switch (req.type) {
    case SSH_AGENTC_REQUEST_IDENTITIES:
        err = handle_list(ag, c, w, &o);
        break;
    case SSH_AGENTC_SIGN_REQUEST:
        err = handle_sign(ag, c, &req, w, &o, reply);
        break;
    case SSH_AGENTC_ADD_IDENTITY:
    case SSH_AGENTC_ADD_ID_CONSTRAINED:
        err = handle_add(ag, c, now_ms, &req, w, &o);
        break;
    case SSH_AGENTC_REMOVE_IDENTITY:
        err = handle_remove(ag, c, &req, w, &o);
        break;
    case SSH_AGENTC_REMOVE_ALL_IDENTITIES:
        err = handle_remove_all(ag, w, &o);
        break;
    case SSH_AGENTC_LOCK:
    case SSH_AGENTC_UNLOCK:
        err = handle_lock(ag, now_ms, &req, w, &o, reply);
        break;
    case SSH_AGENTC_EXTENSION:
        /*
         * While locked only session-bind, as OpenSSH 10.5+: ssh binds its
         * connection before the user unlocks, and a binding uses no key.
         * Every other extension, query too, fails as in OpenSSH.
         */
        if (ag->lock.locked && !wire_view_eq_str(req.u.ext.name, EXT_SESSION_BIND)) {
            err = KW_ERR_LOCKED;
            break;
        }
        err = handle_extension(ag, c, &req, w, &o);
        break;
    case SSH_AGENTC_ADD_SMARTCARD_KEY:
    case SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED:
        err = handle_smartcard_add(ag, c, now_ms, &req, &o, reply);
        break;
    case SSH_AGENTC_REMOVE_SMARTCARD_KEY:
        err = handle_smartcard_remove(ag, &req, w, &o);
        break;
    default:
        o.why = "unknown message type";
        err = KW_ERR_DENIED;
        break;
    }
done:
    if (err == 0 && reply->retry_ms > 0) {
        /* Not a reply yet: the transport offers the same request again later. */
        wire_writer_reset(w);
        log_debug("conn %lu: %s(%u) waits %u ms for the agent-wide unlock turn", c->id,
                  proto_type_name(req.type), (unsigned)req.type, reply->retry_ms);
    } else if (err != 0 || w->error != 0) {
        reply->retry_ms = 0;
        put_failure(w, o.fail_code);
        log_info("conn %lu: %s(%u)%s%s -> %s: %s", c->id, proto_type_name(req.type),
                 (unsigned)req.type, o.detail[0] ? " " : "", o.detail, proto_type_name(o.fail_code),
                 o.why ? o.why : kw_strerror(err));
        audit_request(ag, c, req.type, false, o.key, o.comment, o.dest_user,
                      o.why ? o.why : kw_strerror(err), NULL);
    } else if (reply->job != NULL) {
        log_debug("conn %lu: %s(%u) %s -> %s", c->id, proto_type_name(req.type), (unsigned)req.type,
                  o.detail,
                  reply->job->kind == AGENT_JOB_CONFIRM ? "asking for confirmation"
                                                        : "continuing on a worker thread");
    } else {
        log_debug("conn %lu: %s(%u)%s%s -> %s", c->id, proto_type_name(req.type),
                  (unsigned)req.type, o.detail[0] ? " " : "", o.detail, proto_type_name(w->buf[0]));
        audit_request(ag, c, req.type, true, o.key, o.comment, o.dest_user, NULL, o.warning);
    }
    key_free(o.key);
    proto_request_free(&req);
}

/* ---- finishing jobs ---- */

/* The signature algorithm a request for key with flags must get (RFC 9987). */
static const char *expected_algorithm(const struct key *key, uint32_t flags)
{
    if (key->kind != KEY_RSA)
        return NULL; /* one algorithm per key type: key_verify() checks it */
    if (flags & KEY_SIGN_RSA_SHA2_256)
        return "rsa-sha2-256";
    if (flags & KEY_SIGN_RSA_SHA2_512)
        return "rsa-sha2-512";
    return "ssh-rsa";
}

static bool provider_signature_ok(const struct agent_sign_job *sj, char *why, size_t whysize)
{
    const uint8_t *sig = sj->sig.buf;
    const char *want = expected_algorithm(sj->key, sj->flags);
    char alg[64];

    if (key_verify(sj->key, sig, sj->sig.len, sj->data, sj->data_len) != 0) {
        snprintf(why, whysize, "the %s's signature does not verify",
                 sj->sk_provider != NULL ? "FIDO provider" : "PKCS#11 module");
        return false;
    }
    if (want != NULL && (key_signature_algorithm(sig, sj->sig.len, alg, sizeof(alg)) != 0 ||
                         strcmp(alg, want) != 0)) {
        snprintf(why, whysize, "the module signed with another algorithm than %s", want);
        return false;
    }
    return true;
}

/* The request a job came from, for log lines. */
static uint8_t job_request_type(const struct agent_job *job)
{
    switch (job->kind) {
    case AGENT_JOB_LOCK:
        return SSH_AGENTC_LOCK;
    case AGENT_JOB_UNLOCK:
        return SSH_AGENTC_UNLOCK;
    case AGENT_JOB_PROVIDER_ADD:
        return SSH_AGENTC_ADD_SMARTCARD_KEY;
    default:
        return SSH_AGENTC_SIGN_REQUEST;
    }
}

/* What the log says the request was about: never the passphrase. */
static const char *job_detail(struct agent_job *job)
{
    if (job->kind == AGENT_JOB_PROVIDER_ADD)
        return agent_provider_job(job)->path;
    return is_lock_job(job) ? "(passphrase withheld)" : agent_sign_job(job)->detail;
}

/* The audit event for the end of a job's request. */
static void audit_job(struct agent *ag, const struct agent_conn *c, struct agent_job *job, bool ok,
                      const char *why)
{
    const struct agent_sign_job *sj;

    if (is_lock_job(job)) {
        audit_request(ag, c, job_request_type(job), ok, NULL, NULL, NULL, why, NULL);
        return;
    }
    if (job->kind == AGENT_JOB_PROVIDER_ADD) {
        audit_request(ag, c, SSH_AGENTC_ADD_SMARTCARD_KEY, ok, NULL, agent_provider_job(job)->path,
                      NULL, why, NULL);
        return;
    }
    sj = agent_sign_job(job);
    audit_request(ag, c, SSH_AGENTC_SIGN_REQUEST, ok, sj->subject, sj->comment, sj->dest_user, why,
                  NULL);
}

/*
 * Ends a job's request with a failure reply and a log line that says detail
 * (NULL: job_detail()) and why. Consumes job.
 */
static void job_fail_as(struct agent *ag, struct agent_conn *c, struct agent_job *job,
                        const char *detail, const char *why, struct agent_reply *reply)
{
    uint8_t type = job_request_type(job);

    put_failure(&reply->msg, SSH_AGENT_FAILURE);
    log_info("conn %lu: %s(%u) %s -> FAILURE: %s", c->id, proto_type_name(type), (unsigned)type,
             detail ? detail : job_detail(job), why);
    audit_job(ag, c, job, false, why);
    agent_job_free(job);
}

static void job_fail(struct agent *ag, struct agent_conn *c, struct agent_job *job, const char *why,
                     struct agent_reply *reply)
{
    job_fail_as(ag, c, job, NULL, why, reply);
}

void agent_job_refuse(struct agent *ag, struct agent_conn *c, struct agent_job *job,
                      const char *why, struct agent_reply *reply)
{
    agent_reply_free(reply);
    job_fail(ag, c, job, why, reply);
}

void agent_job_confirmed(struct agent *ag, struct agent_conn *c, struct agent_job *job,
                         bool approved, struct agent_reply *reply)
{
    struct agent_sign_job *sj = agent_sign_job(job);
    const struct identity *id;
    struct outcome o;
    int err;

    agent_reply_free(reply);
    if (!approved) {
        job_fail(ag, c, job, "user did not confirm the use of the key", reply);
        return;
    }
    /* The key may have been removed, or the agent locked, while asking. */
    if (ag->lock.locked) {
        job_fail(ag, c, job, kw_strerror(KW_ERR_LOCKED), reply);
        return;
    }
    if ((id = keystore_find(&ag->keys, sj->blob, sj->blob_len)) == NULL) {
        job_fail(ag, c, job, "key was removed while waiting for confirmation", reply);
        return;
    }
    memset(&o, 0, sizeof(o));
    /* It may have been re-added with a destination restriction meanwhile. */
    if (check_destination(id, c, sj->data, sj->data_len, &o) != 0) {
        job_fail(ag, c, job, o.why, reply);
        return;
    }
    if (signs_out_of_process(id) || sign_offloaded(ag, c, id->key)) {
        if ((err = become_sign_job(sj, id)) != 0) {
            job_fail(ag, c, job, kw_strerror(err), reply);
            return;
        }
        reply->job = job; /* the caller's again, to run and finish */
        return;
    }
    if ((err = sign_inline(id->key, sj->data, sj->data_len, sj->flags, &reply->msg)) != 0) {
        job_fail(ag, c, job, kw_strerror(err), reply);
        return;
    }
    log_debug("conn %lu: SIGN_REQUEST(%u) %s -> SIGN_RESPONSE (confirmed)", c->id,
              (unsigned)SSH_AGENTC_SIGN_REQUEST, sj->detail);
    audit_job(ag, c, job, true, NULL);
    agent_job_free(job);
}

void agent_job_finish(struct agent *ag, struct agent_conn *c, struct agent_job *job,
                      struct agent_reply *reply)
{
    const char *why = NULL;
    uint8_t type = job_request_type(job);
    char delayed[64];
    int err;

    agent_reply_free(reply);
    if (job->kind == AGENT_JOB_PROVIDER_ADD) {
        char whybuf[256];

        if ((err = finish_provider_add(ag, agent_provider_job(job), &reply->msg, &why, whybuf,
                                       sizeof(whybuf))) != 0) {
            job_fail(ag, c, job, why ? why : kw_strerror(err), reply);
            return;
        }
        log_info("conn %lu: %s(%u) %s -> SUCCESS: %s", c->id, proto_type_name(type), (unsigned)type,
                 job_detail(job), whybuf);
        audit_job(ag, c, job, true, NULL);
        agent_job_free(job);
        return;
    }
    if (is_lock_job(job)) {
        err = finish_lock(ag, agent_lock_job(job), &reply->msg, &why, &reply->delay_ms);
        if (err != 0) {
            snprintf(delayed, sizeof(delayed), "reply delayed %u ms", reply->delay_ms);
            job_fail_as(ag, c, job, reply->delay_ms ? delayed : NULL, why ? why : kw_strerror(err),
                        reply);
            return;
        }
    } else {
        struct agent_sign_job *sj = agent_sign_job(job);
        const struct identity *id = keystore_find(&ag->keys, sj->blob, sj->blob_len);

        /*
         * As after a confirmation: the agent may have been locked, or the
         * key removed (or expired: the transport drops expired keys first)
         * while the signature was being made. The identity must be the one
         * that was asked for, not the same key removed and added again,
         * perhaps with other constraints.
         */
        if (ag->lock.locked) {
            job_fail(ag, c, job, "agent was locked while signing", reply);
            return;
        }
        /* A module's failure says more than the key's removal that followed it. */
        if (job->kind == AGENT_JOB_PROVIDER_SIGN && sj->run_err != 0 && sj->provider_why[0]) {
            job_fail(ag, c, job, sj->provider_why, reply);
            return;
        }
        if (id == NULL || id->key != sj->key) {
            job_fail(ag, c, job, "key was removed or expired while signing", reply);
            return;
        }
        if (sj->run_err != 0 || sj->sig.error != 0) {
            job_fail(ag, c, job,
                     sj->provider_why[0] ? sj->provider_why
                                         : kw_strerror(sj->run_err ? sj->run_err : sj->sig.error),
                     reply);
            return;
        }
        /*
         * A token's signature comes from a helper running code the agent
         * does not trust: it must verify, with the algorithm asked for,
         * before anyone sees it.
         */
        if (job->kind == AGENT_JOB_PROVIDER_SIGN &&
            !provider_signature_ok(sj, sj->provider_why, sizeof(sj->provider_why))) {
            job_fail(ag, c, job, sj->provider_why, reply);
            return;
        }
        if (put_sign_response(&reply->msg, wire_writer_view(&sj->sig)) != 0) {
            job_fail(ag, c, job, kw_strerror(KW_ERR_ALLOC), reply);
            return;
        }
    }
    log_debug("conn %lu: %s(%u) %s -> %s", c->id, proto_type_name(type), (unsigned)type,
              job_detail(job), proto_type_name(reply->msg.buf[0]));
    audit_job(ag, c, job, true, NULL);
    agent_job_free(job);
}

/* ---- keys a store kept (persist.h) ---- */

int agent_restore(struct agent *ag, uint64_t now_ms, uint64_t now_wall,
                  const struct persist_record *rec, const uint8_t *pub, size_t pub_len, char *why,
                  size_t whysize)
{
    struct dest_constraints dest;
    const struct identity *id;
    struct key *key = NULL;
    char *comment = NULL;
    uint64_t expires = 0;
    size_t used, size;
    int err;

    memset(&dest, 0, sizeof(dest));
    if (rec->expires != 0 && rec->expires <= now_wall)
        return AGENT_RESTORE_EXPIRED;
    if (!key_secure_heap_has_room(&used, &size)) {
        snprintf(why, whysize, "too many keys: secure heap reserve reached");
        return KW_ERR_TOO_LARGE;
    }
    if (ag->keys.count >= KEYSTORE_MAX_IDENTITIES) {
        snprintf(why, whysize, "too many keys (the limit is %d)", KEYSTORE_MAX_IDENTITIES);
        return KW_ERR_TOO_LARGE;
    }
    if ((err = persist_record_key(rec, pub, pub_len, &key, why, whysize)) != 0)
        goto out;
    if ((comment = malloc(rec->comment.len + 1)) == NULL) {
        snprintf(why, whysize, "out of memory");
        err = KW_ERR_ALLOC;
        goto out;
    }
    if (rec->comment.len)
        memcpy(comment, rec->comment.ptr, rec->comment.len);
    comment[rec->comment.len] = '\0';
    if (rec->dest.len != 0 && (err = dest_decode(rec->dest, &dest)) != 0) {
        snprintf(why, whysize, "the destination constraints: %s", kw_strerror(err));
        goto out;
    }
    if (rec->expires != 0)
        expires = now_ms + (rec->expires - now_wall) * 1000;
    if ((err = keystore_add(&ag->keys, key, comment, expires, rec->confirm, &dest)) != 0) {
        snprintf(why, whysize, "%s", kw_strerror(err));
        goto out;
    }
    /* The keystore owns key, comment and dest now; the identity names them. */
    id = keystore_find(&ag->keys, key->blob, key->blob_len);
    log_info("loaded %s %s%s%s%s", key_short_name(key), id->fp, expires ? " (lifetime)" : "",
             rec->confirm ? " (confirm)" : "", id->dest.count != 0 ? " (permitted hops)" : "");
    agent_audit_note(ag, "load", true, key, comment, NULL);
    return 0;
out:
    key_free(key);
    dest_free(&dest);
    if (comment != NULL) {
        kw_memzero(comment, strlen(comment));
        free(comment);
    }
    return err;
}
