/*
 * keyward: audit log lines, and the file they go to. See audit.h.
 */
#include "agent/audit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#endif

#include "base/log.h"

struct out {
    char *buf;
    size_t size;
    size_t len;
    bool overflow;
};

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len) {
        o->overflow = true;
        return;
    }
    o->len += (size_t)n;
}

/*
 * How many bytes of s to write: at most AUDIT_FIELD_MAX, and when cut, not
 * in the middle of a UTF-8 sequence (a cut sequence would make the line
 * invalid for JSON readers).
 */
static size_t field_length(const unsigned char *s)
{
    size_t n = 0, keep;

    while (n < AUDIT_FIELD_MAX && s[n] != '\0')
        n++;
    if (s[n] == '\0')
        return n;
    /* Back up over continuation bytes to the start of the cut sequence. */
    keep = n;
    while (keep > 0 && (s[keep] & 0xc0) == 0x80)
        keep--;
    return keep > 0 && n - keep < 4 ? keep : n;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_string(struct out *o, const char *name, const char *s)
{
    const unsigned char *p, *end;

    if (s == NULL)
        return;
    put(o, ",\"%s\":\"", name);
    end = (const unsigned char *)s + field_length((const unsigned char *)s);
    for (p = (const unsigned char *)s; p < end && !o->overflow; p++) {
        if (*p == '"' || *p == '\\')
            put(o, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            put(o, "\\u%04x", *p);
        else
            put(o, "%c", *p);
    }
    put(o, "\"");
}

static void format_time(time_t now, char *stamp, size_t size)
{
    struct tm tm;

#ifdef _WIN32
    gmtime_s(&tm, &now);
#else
    gmtime_r(&now, &tm);
#endif
    strftime(stamp, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

size_t audit_format_json(const struct audit_event *ev, time_t now, char *buf, size_t size)
{
    struct out o = {buf, size, 0, false};
    char fp[KEY_FINGERPRINT_SIZE], stamp[32];

    if (size == 0)
        return 0;
    format_time(now, stamp, sizeof(stamp));
    put(&o, "{\"time\":\"%s\"", stamp);
    put_string(&o, "event", ev->event);
    put_string(&o, "outcome", ev->outcome);
    put_string(&o, "request", ev->request);
    if (ev->conn != 0)
        put(&o, ",\"conn\":%lu", ev->conn);
    if (ev->key != NULL) {
        key_fingerprint_sha256(ev->key, fp, sizeof(fp));
        put_string(&o, "key_type", key_type_name(ev->key));
        put_string(&o, "key_fingerprint", fp);
    }
    put_string(&o, "comment", ev->comment);
    if (ev->client != NULL) {
        if (ev->client->pid >= 0)
            put(&o, ",\"client_pid\":%ld", ev->client->pid);
        if (ev->client->uid >= 0)
            put(&o, ",\"client_uid\":%ld", ev->client->uid);
        if (ev->client->exe[0] != '\0')
            put_string(&o, "client_exe", ev->client->exe);
        put(&o, ",\"bound\":%s,\"forwarded\":%s", ev->bound ? "true" : "false",
            ev->forwarded ? "true" : "false");
    }
    if (ev->dest_hostkey != NULL) {
        key_fingerprint_sha256(ev->dest_hostkey, fp, sizeof(fp));
        put_string(&o, "dest_hostkey_type", key_type_name(ev->dest_hostkey));
        put_string(&o, "dest_hostkey_fingerprint", fp);
    }
    put_string(&o, "dest_user", ev->dest_user);
    put_string(&o, "reason", ev->reason);
    put_string(&o, "warning", ev->warning);
    put(&o, "}");
    if (o.overflow) {
        buf[0] = '\0';
        return 0;
    }
    return o.len;
}

size_t audit_format_lost(unsigned long dropped, unsigned long failed, time_t now, char *buf,
                         size_t size)
{
    struct out o = {buf, size, 0, false};
    char stamp[32];

    if (size == 0)
        return 0;
    format_time(now, stamp, sizeof(stamp));
    put(&o, "{\"time\":\"%s\",\"event\":\"audit-lost\",\"dropped\":%lu,\"failed\":%lu}", stamp,
        dropped, failed);
    if (o.overflow) {
        buf[0] = '\0';
        return 0;
    }
    return o.len;
}
