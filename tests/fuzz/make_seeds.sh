#!/bin/sh
# fuzz_seeds (CTest fixture): the seeds the fuzz_replay_* tests replay.
#     make_seeds.sh SEEDPREP CORPUS_AGENT_DIR OUT_DIR
# Without the shared corpus this fails: the replay tests would otherwise
# pass having replayed almost nothing (KEYWARD_CORPUS_DIR moves it).
set -eu
seedprep=$1 corpus=$2 out=$3
rm -rf "$out"
if [ ! -d "$corpus" ]; then
    echo "no shared corpus at $corpus: put it at ../shared/corpus beside the checkout," \
        "or configure with KEYWARD_CORPUS_DIR set" >&2
    exit 1
fi
exec "$seedprep" "$corpus" "$out"
