/*
 * keyward hardening test: every audit event fits keyward-agent's audit line.
 *
 *     audit_line_fits
 *
 * keyward-agent -l formats each event into an AUDIT_LINE_MAX buffer (one
 * byte or two kept for the line ending) and cannot write an event that does
 * not fit. A client chooses its executable's name and the user name in the
 * userauth request it asks the agent to sign, and JSON escapes a control
 * character as six bytes, so before audit_format_json() cut every string
 * to AUDIT_FIELD_MAX bytes a same-uid process could make its refused
 * attempts vanish from the log (docs/security.md, "Findings").
 *
 * This builds events whose strings are far over the bound and made of
 * characters JSON must escape, and checks that the line fits, that each
 * field was cut to the bound, and that a cut never splits a UTF-8 sequence.
 */
#include <stdio.h>
#include <string.h>

#include "agent/audit.h"
#include "crypto/key.h"

static int failures, tests;

static void check(int ok, const char *what)
{
    tests++;
    if (!ok)
        failures++;
    printf("%s %d - %s\n", ok ? "ok" : "not ok", tests, what);
}

/* Counts occurrences of needle in haystack. */
static size_t count(const char *haystack, const char *needle)
{
    size_t n = 0;
    const char *p = haystack;

    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

int main(void)
{
    static char huge[4][4096], line[65536], utf8[1024];
    struct key *k = NULL;
    struct audit_client client;
    struct audit_event ev;
    size_t n, i;
    const char *field;

    if (key_generate(KEY_ED25519, 0, &k) != 0) {
        printf("not ok 1 - cannot generate a key\n1..1\n");
        return 1;
    }
    /* Every string far over the bound, every byte one that JSON must escape. */
    for (i = 0; i < 4; i++) {
        memset(huge[i], 0x01, sizeof(huge[i]) - 1);
        huge[i][sizeof(huge[i]) - 1] = '\0';
    }
    memset(&client, 0, sizeof(client));
    client.pid = 2147483647;
    client.uid = 2147483647;
    memset(client.exe, 0x01, sizeof(client.exe) - 1);

    memset(&ev, 0, sizeof(ev));
    ev.event = "refused";
    ev.outcome = "refused";
    ev.request = "ADD_ID_CONSTRAINED"; /* the longest request name */
    ev.conn = 4294967295ul;
    ev.client = &client;
    ev.key = k;
    ev.comment = huge[0];
    ev.bound = true;
    ev.forwarded = true;
    ev.dest_hostkey = k;
    ev.dest_user = huge[1];
    ev.reason = huge[2];
    ev.warning = huge[3];
    n = audit_format_json(&ev, 1700000000, line, sizeof(line));
    printf("# the largest event takes %zu bytes; keyward-agent's line holds %d\n", n,
           AUDIT_LINE_MAX - 2);
    check(n != 0 && n <= AUDIT_LINE_MAX - 2, "the largest possible event fits the agent's line");
    /* comment, client_exe, dest_user, reason, warning: each cut to the bound. */
    check(count(line, "\\u0001") == 5 * AUDIT_FIELD_MAX, "each string field is cut to the bound");
    n = audit_format_json(&ev, 1700000000, line, AUDIT_LINE_MAX - 2);
    check(n != 0, "formatted directly into a buffer of the agent's size");

    /* A cut inside a two-byte character keeps only whole characters. */
    for (i = 0; i + 2 < sizeof(utf8); i += 2)
        memcpy(utf8 + i, "\xc3\xa9", 2); /* e with acute accent */
    utf8[i] = '\0';
    memset(&ev, 0, sizeof(ev));
    ev.event = "add";
    ev.outcome = "ok";
    ev.comment = utf8;
    n = audit_format_json(&ev, 1700000000, line, sizeof(line));
    field = strstr(line, "\"comment\":\"");
    check(n != 0 && field != NULL, "an event with a long UTF-8 comment is formatted");
    if (field != NULL) {
        field += strlen("\"comment\":\"");
        n = (size_t)(strchr(field, '"') - field);
        printf("# comment cut to %zu bytes\n", n);
        check(n <= AUDIT_FIELD_MAX && n >= AUDIT_FIELD_MAX - 3 && n % 2 == 0,
              "the cut comment ends on a character boundary");
    }
    printf("1..%d\n", tests);
    key_free(k);
    return failures == 0 ? 0 : 1;
}
