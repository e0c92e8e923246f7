/*
 * keyward fuzzing: the data fuzz_sig verifies signatures over. seedprep
 * signs the same bytes with every fuzz key, so those seeds verify.
 */
#ifndef KEYWARD_FUZZ_SIG_DATA_H
#define KEYWARD_FUZZ_SIG_DATA_H

#include <stdint.h>

static const uint8_t fuzz_sig_data[] = "keyward fuzz_sig: the data every seed signature signs";

#endif
