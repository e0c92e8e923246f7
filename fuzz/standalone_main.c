/*
 * keyward fuzzing: a main() for the harnesses without libFuzzer.
 *
 *     fuzzrun_dispatch FILE_OR_DIR...
 *
 * Runs LLVMFuzzerTestOneInput() once on every file named, and on every
 * regular file in every directory named (sorted, not recursive). This is
 * how the seeds and the regression inputs under tests/fuzz/ replay in
 * `make test` with gcc, under ASan/UBSan in the sanitizer build, with no
 * clang needed. A crash is the harness's own abort or a sanitizer report;
 * an empty or missing directory is not an error (there may be no
 * regressions yet).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "keyfile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long inputs;

static int run_file(const char *path)
{
    uint8_t *data;
    size_t len;

    if (file_read_all(path, &data, &len) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    /* Name the input first, so a crash report says which one it was. */
    if (getenv("KEYWARD_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "running %s (%zu bytes)\n", path, len);
    (void)LLVMFuzzerTestOneInput(data, len);
    free(data);
    inputs++;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0, i;
    struct stat st;
    int r = 0;

    if ((d = opendir(dir)) == NULL) {
        /* A directory given and not there is a mistake, not an empty replay. */
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **nn;

            cap = cap ? cap * 2 : 256;
            if ((nn = realloc(names, cap * sizeof(*nn))) == NULL) {
                r = -1;
                break;
            }
            names = nn;
        }
        if ((names[n] = strdup(de->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), name_cmp);
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        /* README files document a directory; they are not inputs. */
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && strncmp(names[i], "README", 6) != 0 &&
            run_file(path) != 0)
            r = -1;
        free(names[i]);
    }
    free(names);
    return r;
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    struct stat st;
    int i, r = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i]) != 0)
                r = 1;
        } else if (run_file(argv[i]) != 0) {
            r = 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %lu inputs in %.1f s, no crash\n", argv[0], inputs,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return r;
}
