/*
 * keyward fuzzing: what the harnesses share.
 *
 * Every harness is an ordinary libFuzzer target (LLVMFuzzerTestOneInput).
 * Built with clang and -fsanitize=fuzzer (fuzz/CMakeLists.txt, `make
 * fuzz`) it fuzzes; built with any compiler and standalone_main.c
 * (tests/CMakeLists.txt) it replays files, which is how the seeds and the
 * regression inputs under tests/fuzz/ run in `make test`.
 */
#ifndef KEYWARD_FUZZ_SUPPORT_H
#define KEYWARD_FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent.h"
#include "crypto/key.h"
#include "base/wire.h"

/* Stops the run with a crash libFuzzer reports, for broken invariants. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_assert_failed(__FILE__, __LINE__, #cond);                                         \
    } while (0)

void fuzz_assert_failed(const char *file, int line, const char *cond) __attribute__((noreturn));

/*
 * Log level from $KEYWARD_FUZZ_LOG ("error" by default, "info", "debug").
 * `make fuzz` uses debug with libFuzzer's -close_fd_mask=2, so every log
 * line is formatted (and so fuzzed) but none is printed.
 */
void fuzz_log_setup(void);

/*
 * The key directories: $KEYWARD_FUZZ_KEYS (colon-separated) if set, else
 * the corpus keys (../shared/corpus/keys beside the source tree) and the
 * extra keys committed in fuzz/keys (ECDSA P-384 and P-521, which the
 * corpus lacks). A missing directory is skipped with a warning.
 */
const char *fuzz_key_dirs(void);

/*
 * The ADD_IDENTITY request bodies for every private key file in the key
 * directories and for each one's -cert.pub, in a stable order. Returns
 * the number of requests; *msgs is an array of writers the caller frees
 * with fuzz_free_add_requests().
 */
size_t fuzz_add_requests(struct wire_writer **msgs);
void fuzz_free_add_requests(struct wire_writer *msgs, size_t n);

/*
 * Adds every key of fuzz_add_requests() to ag through agent_handle(), as
 * ssh-add would. Returns how many were added; warns about the others.
 */
size_t fuzz_load_keys(struct agent *ag);

/*
 * Makes ag a fresh agent (agent_init()) holding the same identities as
 * loaded (shared keys, copied comments, no constraints), set up as
 * keyward-agent runs it: RSA signatures and the lock KDF as jobs, events
 * to audit. Parsing the keys once into loaded and copying them per run
 * keeps the harnesses fast. Aborts if the harness itself runs out of memory.
 */
void fuzz_agent_from(struct agent *ag, const struct agent *loaded, audit_fn audit);

/*
 * Splits a client's byte stream into frames the way server.c does. Returns
 * true and the next body, or false at the end: a partial frame (the server
 * would wait for the rest) or an oversized one (the server closes).
 */
bool fuzz_next_frame(const uint8_t *data, size_t len, size_t *pos, struct wire_view *body);

#endif
