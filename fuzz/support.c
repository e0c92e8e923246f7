/*
 * keyward fuzzing: what the harnesses share. See support.h.
 */
#include "support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyfile.h"
#include "base/log.h"
#include "agent/request.h"

#ifndef KEYWARD_FUZZ_KEY_DIRS
#define KEYWARD_FUZZ_KEY_DIRS ""
#endif

void fuzz_assert_failed(const char *file, int line, const char *cond)
{
    fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, cond);
    fflush(stderr);
    abort();
}

void fuzz_log_setup(void)
{
    const char *v = getenv("KEYWARD_FUZZ_LOG");
    enum log_level level = LOG_LEVEL_ERROR;

    if (v != NULL && strcmp(v, "debug") == 0)
        level = LOG_LEVEL_DEBUG;
    else if (v != NULL && strcmp(v, "info") == 0)
        level = LOG_LEVEL_INFO;
    log_init("keyward-fuzz", level, LOG_SINK_STDERR);
}

const char *fuzz_key_dirs(void)
{
    const char *v = getenv("KEYWARD_FUZZ_KEYS");

    return v != NULL ? v : KEYWARD_FUZZ_KEY_DIRS;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends one writer to a growing array; returns false when out of memory. */
static bool push_msg(struct wire_writer **msgs, size_t *n, size_t *cap, struct wire_writer *w)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct wire_writer *nm = realloc(*msgs, ncap * sizeof(*nm));

        if (nm == NULL)
            return false;
        *msgs = nm;
        *cap = ncap;
    }
    (*msgs)[(*n)++] = *w;
    return true;
}

/* The requests for the private key files in one directory, sorted by name. */
static void add_requests_from_dir(const char *dir, struct wire_writer **msgs, size_t *n,
                                  size_t *cap)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL, path[4096], err[256];
    size_t count = 0, i, names_cap = 0;

    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "keyward-fuzz: warning: no key directory %s: running without its keys\n",
                dir);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (de->d_name[0] == '.' || (len > 4 && strcmp(de->d_name + len - 4, ".pub") == 0))
            continue;
        if (count == names_cap) {
            char **nn;

            names_cap = names_cap ? names_cap * 2 : 16;
            if ((nn = realloc(names, names_cap * sizeof(*nn))) == NULL)
                break;
            names = nn;
        }
        if ((names[count] = strdup(de->d_name)) != NULL)
            count++;
    }
    closedir(d);
    if (count > 0)
        qsort(names, count, sizeof(*names), name_cmp);

    for (i = 0; i < count; i++) {
        struct keyfile kf;
        struct wire_writer w;
        uint8_t *cert = NULL;
        size_t cert_len = 0;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (keyfile_load(path, &kf, err, sizeof(err)) != 0) {
            /* Not every file there is a private key (README, certificates). */
            continue;
        }
        wire_writer_init(&w);
        if (keyfile_add_request(&kf, &w) != 0 || !push_msg(msgs, n, cap, &w))
            wire_writer_free(&w);
        snprintf(path, sizeof(path), "%s/%s-cert.pub", dir, names[i]);
        if (pubfile_load(path, &cert, &cert_len) == 0) {
            wire_writer_init(&w);
            if (keyfile_add_cert_request(&kf, (struct wire_view){cert, cert_len}, &w) != 0 ||
                !push_msg(msgs, n, cap, &w))
                wire_writer_free(&w);
            free(cert);
        }
        keyfile_free(&kf);
    }
    for (i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

size_t fuzz_add_requests(struct wire_writer **msgs)
{
    char *dirs = strdup(fuzz_key_dirs()), *dir, *save = NULL;
    size_t n = 0, cap = 0;

    *msgs = NULL;
    if (dirs == NULL)
        return 0;
    for (dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save))
        add_requests_from_dir(dir, msgs, &n, &cap);
    free(dirs);
    return n;
}

void fuzz_free_add_requests(struct wire_writer *msgs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        wire_writer_free(&msgs[i]);
    free(msgs);
}

size_t fuzz_load_keys(struct agent *ag)
{
    struct wire_writer *msgs;
    struct agent_conn c;
    struct agent_reply reply;
    size_t n, i, added = 0;

    agent_conn_init(&c, 0);
    agent_reply_init(&reply);
    n = fuzz_add_requests(&msgs);
    for (i = 0; i < n; i++) {
        agent_handle(ag, &c, 0, msgs[i].buf, msgs[i].len, &reply);
        if (reply.msg.len == 1 && reply.msg.buf[0] == SSH_AGENT_SUCCESS)
            added++;
    }
    agent_reply_free(&reply);
    agent_conn_cleanup(&c);
    fuzz_free_add_requests(msgs, n);
    if (added != n)
        fprintf(stderr, "keyward-fuzz: warning: %zu of %zu keys could not be added\n", n - added,
                n);
    return added;
}

bool fuzz_next_frame(const uint8_t *data, size_t len, size_t *pos, struct wire_view *body)
{
    uint32_t n;

    if (len - *pos < 4)
        return false;
    n = wire_peek_u32(data + *pos);
    if (n > WIRE_MAX_MESSAGE || n > len - *pos - 4)
        return false;
    body->ptr = data + *pos + 4;
    body->len = n;
    *pos += 4 + (size_t)n;
    return true;
}

void fuzz_agent_from(struct agent *ag, const struct agent *loaded, audit_fn audit)
{
    size_t i;

    agent_init(ag, 0);
    ag->offload_slow_work = true;
    ag->audit = audit;
    for (i = 0; i < loaded->keys.count; i++) {
        const struct identity *id = loaded->keys.ids[i];
        char *comment = strdup(id->comment);

        if (comment == NULL ||
            keystore_add(&ag->keys, key_ref(id->key), comment, 0, false, NULL) != 0)
            abort();
    }
}
