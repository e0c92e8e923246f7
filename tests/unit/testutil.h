/*
 * keyward: helpers shared by unit tests.
 */
#ifndef KEYWARD_TESTUTIL_H
#define KEYWARD_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/*
 * Reads an OpenSSH .pub line ("type base64 comment") from the test data
 * directory and decodes its blob. Returns the blob length or 0.
 */
static inline size_t read_pub_blob(const char *name, unsigned char *out, size_t outsize)
{
    char path[1024], line[8192], *b64, *end;
    FILE *f;
    int n;
    size_t len, pad = 0;

    snprintf(path, sizeof(path), "%s/%s", KEYWARD_TEST_DATA, name);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fgets(line, sizeof(line), f) == NULL) {
        fclose(f);
        return 0;
    }
    fclose(f);
    if ((b64 = strchr(line, ' ')) == NULL)
        return 0;
    b64++;
    if ((end = strchr(b64, ' ')) != NULL)
        *end = '\0';
    len = strcspn(b64, "\r\n");
    b64[len] = '\0';
    if (len == 0 || len % 4 != 0 || (len / 4) * 3 > outsize)
        return 0;
    while (pad < 2 && b64[len - 1 - pad] == '=')
        pad++;
    n = EVP_DecodeBlock(out, (unsigned char *)b64, (int)len);
    if (n < 0)
        return 0;
    return (size_t)n - pad;
}

#endif
