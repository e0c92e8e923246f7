#!/usr/bin/env bash
# keyward: how much of src/ the fuzzing corpus reaches.
#
#     fuzz/coverage.sh [BUILD_DIR]        (default build-fuzz, after `make fuzz`)
#
# Builds every harness once more, with clang's source-based coverage and
# standalone_main.c instead of libFuzzer, runs each over what `make fuzz`
# left in BUILD_DIR (its working corpus, the seeds and the regression
# inputs), and prints llvm-cov's per-file report for src/. The HTML report
# goes to BUILD_DIR/coverage/html/index.html. Nothing here is part of the
# normal build.
set -euo pipefail

cd "$(dirname "$0")/.."
src=$PWD
build=${1:-build-fuzz}
out=$build/coverage
harnesses=(dispatch key privkey sig sessionbind destination userauth)
for tool in clang llvm-profdata llvm-cov; do
    command -v "$tool" >/dev/null || { echo "coverage: needs $tool (apt-get install clang llvm)" >&2; exit 1; }
done
[ -d "$build/seeds" ] || { echo "coverage: run make fuzz first (no $build/seeds)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/obj" "$out/profiles"
flags=(-O1 -g -fprofile-instr-generate -fcoverage-mapping -D_GNU_SOURCE -std=gnu11
    -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -DKEYWARD_VERSION=\"coverage\"
    "-DKEYWARD_FUZZ_KEY_DIRS=\"$src/../shared/corpus/keys:$src/fuzz/keys\""
    -I"$src/src" -I"$src/fuzz")
# The protocol core's sources, as CMakeLists.txt lists them for its layers.
mapfile -t core < <(sed -n '/^add_library(keyward_\(base\|proto\|crypto\|agent\) STATIC/,/)/p' \
    CMakeLists.txt | grep -o 'src/[a-z_/]*\.c')
for h in "${harnesses[@]}"; do
    clang "${flags[@]}" "${core[@]/#/$src/}" fuzz/support.c fuzz/keyfile.c fuzz/standalone_main.c \
        "fuzz/fuzz_$h.c" -lcrypto -o "$out/obj/cov_$h"
    dirs=("$build/seeds/$h")
    [ -d "$build/corpus/$h" ] && dirs+=("$build/corpus/$h")
    [ -d "tests/fuzz/regressions/$h" ] && dirs+=("tests/fuzz/regressions/$h")
    LLVM_PROFILE_FILE="$out/profiles/$h.profraw" "$out/obj/cov_$h" "${dirs[@]}" 2>/dev/null |
        tail -n 1
done
llvm-profdata merge -sparse "$out"/profiles/*.profraw -o "$out/all.profdata"
objs=()
for h in "${harnesses[@]}"; do objs+=(-object "$out/obj/cov_$h"); done
llvm-cov report "${objs[@]:1}" -instr-profile="$out/all.profdata" "${core[@]/#/$src/}"
llvm-cov show "${objs[@]:1}" -instr-profile="$out/all.profdata" -format=html \
    -output-dir="$out/html" "${core[@]/#/$src/}" >/dev/null
echo "coverage: HTML report in $out/html/index.html"
