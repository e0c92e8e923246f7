#!/bin/sh
# fuzz_seeds (CTest fixture): the seeds the fuzz_replay_* tests replay.
#     make_seeds.sh SEEDPREP CORPUS_AGENT_DIR OUT_DIR
# Without the shared corpus there are still the seeds made from the fuzz
# keys; the replay tests then run those and the regression inputs only.
set -eu
seedprep=$1 corpus=$2 out=$3
rm -rf "$out"
if [ ! -d "$corpus" ]; then
    echo "note: no shared corpus at $corpus: seeds from the fuzz keys only"
fi
exec "$seedprep" "$corpus" "$out"
