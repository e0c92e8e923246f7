#!/usr/bin/env bash
# keyward: `make fuzz` -- build the libFuzzer harnesses with clang and run
# each one for a while, seeded from the agent protocol corpus.
#
#     fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]
#     make fuzz FUZZ_SECONDS=60 [FUZZ_HARNESSES="dispatch key"]
#
# BUILD_DIR (build-fuzz) gets:
#   seeds/HARNESS/    made afresh by fuzz_seedprep from ../shared/corpus/agent
#                     and the fuzz keys (fuzz/README.md says what goes where)
#   corpus/HARNESS/   libFuzzer's working corpus: what it found worth keeping;
#                     kept between runs, so each run starts where the last ended
#   artifacts/HARNESS/  crashing, leaking or slow inputs, if any
#   logs/HARNESS.log  libFuzzer's output of the last run
#   fuzz-stats.tsv    one line per harness per run: the numbers docs/security.md cites
#
# Every harness also reads tests/fuzz/regressions/HARNESS/ (inputs that once
# crashed), so a regression is found again within the first second.
#
# Two more "harnesses" are not libFuzzer's: state and state-relay run
# tests/hostile/state_fuzz.c (hostile_state_fuzz, issue 22) against the real
# keyward-agent, directly and through keyward-relay, with a random seed for
# SECONDS each. They are built with ASan/UBSan (gcc, like make build-asan)
# in BUILD_DIR/state/; a finding prints the seed, the failing round and the
# command that replays it; the run's output is logs/state*.log.
#
# Exit status: 0 if no harness found anything, 1 otherwise (the artifacts
# are listed, with the command that keeps one as a regression case).
set -euo pipefail

cd "$(dirname "$0")/.."
src=$PWD
build=${1:-build-fuzz}
seconds=${2:-60}
shift 2 || shift $#
all=(dispatch key privkey sig sessionbind destination userauth helper state state-relay)
if [ $# -gt 0 ]; then harnesses=("$@"); else harnesses=("${all[@]}"); fi
corpus=${KEYWARD_CORPUS_DIR:-$src/../shared/corpus}/agent

# clang with libFuzzer: Debian's clang and libclang-rt-dev. Installed here
# like scripts/setup.sh installs the rest, only if missing and only as root.
have_libfuzzer() {
    command -v clang >/dev/null 2>&1 &&
        [ -e "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]
}
if ! have_libfuzzer; then
    if [ "$(id -u)" = 0 ]; then
        echo "fuzz: installing clang and libclang-rt-dev" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >&2
    fi
    have_libfuzzer || {
        echo "fuzz: needs clang with libFuzzer: apt-get install clang libclang-rt-dev" >&2
        exit 1
    }
fi

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKEYWARD_FUZZ=ON -DKEYWARD_WERROR=ON -DKEYWARD_CORPUS_DIR="$(dirname "$corpus")" >/dev/null
cmake --build "$build" --target fuzzers -j"${JOBS:-2}"

# The stateful harness drives real processes: an ASan/UBSan build of them.
want_state=
for h in "${harnesses[@]}"; do
    case $h in state | state-relay) want_state=1 ;; esac
done
if [ -n "$want_state" ]; then
    cmake -S . -B "$build/state" -DCMAKE_C_COMPILER="${STATE_CC:-cc}" -DCMAKE_BUILD_TYPE=Debug \
        -DKEYWARD_SANITIZE=ON -DKEYWARD_WERROR=ON -DKEYWARD_CORPUS_DIR="$(dirname "$corpus")" >/dev/null
    cmake --build "$build/state" --target keyward-agent keyward-relay hostile_state_fuzz \
        -j"${JOBS:-2}"
fi

if [ ! -d "$corpus" ]; then
    echo "fuzz: no corpus at $corpus (../shared/corpus beside the checkout, or KEYWARD_CORPUS_DIR)" >&2
    exit 1
fi
rm -rf "$build/seeds"
"$build/fuzz/fuzz_seedprep" "$corpus" "$build/seeds"

stats=$build/fuzz-stats.tsv
[ -s "$stats" ] || printf 'date\tharness\tseconds\texecutions\texec_per_sec\tnew_units\tcorpus_units\tpeak_rss_mb\tresult\n' >"$stats"
mkdir -p "$build/logs"
found=()
total=0
printf '\n%-12s %8s %12s %10s %10s  %s\n' harness seconds executions exec/s "new units" result
# run_state NAME LOG: hostile_state_fuzz for $seconds with a random seed.
run_state() {
    local sb=$build/state extra=() rc=0
    [ "$1" = state-relay ] && extra=(--relay "$sb/keyward-relay")
    ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        LSAN_OPTIONS=suppressions=$src/tests/lsan.supp:print_suppressions=0 \
        "$sb/tests/hostile_state_fuzz" "$sb/keyward-agent" "${extra[@]}" \
        --seconds "$seconds" >"$2" 2>&1 || rc=$?
    return "$rc"
}
for h in "${harnesses[@]}"; do
    if [ "$h" = state ] || [ "$h" = state-relay ]; then
        log=$build/logs/$h.log
        rc=0
        run_state "$h" "$log" || rc=$?
        rounds=$(sed -n 's/^ok - \([0-9]*\) round(s).*/\1/p' "$log" | tail -n 1)
        [ -n "$rounds" ] || rounds=$(sed -n 's/.*FAIL seed [0-9]* after \([0-9]*\) round.*/\1/p' "$log")
        result=ok
        if [ "$rc" != 0 ]; then
            result="FOUND SOMETHING (exit $rc)"
            found+=("$h")
        fi
        # executions: rounds; exec/s: rounds a second; new units: none.
        printf '%-12s %8s %12s %10s %10s  %s\n' "$h" "$seconds" "${rounds:-?}" \
            "$(awk -v r="${rounds:-0}" -v s="$seconds" 'BEGIN { printf "%.2f", r / s }')" - "$result"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$h" \
            "$seconds" "${rounds:-0}" "" "" "" "" "$result" >>"$stats"
        total=$((total + ${rounds:-0}))
        continue
    fi
    work=$build/corpus/$h
    art=$build/artifacts/$h
    log=$build/logs/$h.log
    # A crash file from an earlier run would be reported again as this run's.
    rm -rf "$art"
    mkdir -p "$work" "$art"
    extra=()
    dirs=("$work" "$build/seeds/$h")
    [ -d "$src/tests/fuzz/regressions/$h" ] && dirs+=("$src/tests/fuzz/regressions/$h")
    # The dispatcher gets whole wire streams: room for a frame over 256 KiB.
    [ "$h" = dispatch ] && extra+=(-max_len=300000)
    rc=0
    # KEYWARD_FUZZ_LOG=debug: every log line is formatted (its code fuzzed
    # too); -close_fd_mask=2 sends them to /dev/null, while libFuzzer and
    # the sanitizers still report on the original stderr (the log file).
    KEYWARD_FUZZ_LOG=debug "$build/fuzz/fuzz_$h" -max_total_time="$seconds" -timeout=60 \
        -rss_limit_mb=2048 -close_fd_mask=2 -print_final_stats=1 -artifact_prefix="$art/" \
        "${extra[@]}" "${dirs[@]}" >"$log" 2>&1 || rc=$?
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
    execs=$(stat number_of_executed_units)
    result=ok
    if [ "$rc" != 0 ] || [ -n "$(ls -A "$art")" ]; then
        result="FOUND SOMETHING (exit $rc)"
        found+=("$h")
    fi
    printf '%-12s %8s %12s %10s %10s  %s\n' "$h" "$seconds" "${execs:-?}" \
        "$(stat average_exec_per_sec)" "$(stat new_units_added)" "$result"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$h" \
        "$seconds" "${execs:-0}" "$(stat average_exec_per_sec)" "$(stat new_units_added)" \
        "$(ls "$work" | wc -l)" "$(stat peak_rss_mb)" "$result" >>"$stats"
    total=$((total + ${execs:-0}))
done
printf '%-12s %8s %12s\n' total "" "$total"
echo "statistics of every run so far: $stats"

if [ ${#found[@]} -gt 0 ]; then
    echo
    for h in "${found[@]}"; do
        if [ "$h" = state ] || [ "$h" = state-relay ]; then
            # Its whole report: the seed, the round's plan, the agent's log.
            echo "hostile_state_fuzz ($h) found something; see $build/logs/$h.log:"
            grep -E '^(not ok|# (seed|reproduce|FAIL|hostile_state_fuzz))' "$build/logs/$h.log" |
                sed 's/^/    /'
            grep -q '^# reproduce' "$build/logs/$h.log" ||
                echo "    (no round to replay: the failure came at the end of the run)"
            continue
        fi
        echo "fuzz_$h found something; see $build/logs/$h.log. Inputs:"
        ls -l "$build/artifacts/$h/" | sed 's/^/    /'
        echo "  reproduce:  $build/fuzz/fuzz_$h $build/artifacts/$h/<file>"
        echo "  keep it:    cp $build/artifacts/$h/<file> tests/fuzz/regressions/$h/"
        # CI keeps this output, not necessarily the build directory: print
        # each input (up to 64 KiB) so it can be recreated from the log.
        for f in "$build/artifacts/$h"/*; do
            [ -f "$f" ] || continue
            size=$(wc -c <"$f")
            if [ "$size" -gt 65536 ]; then
                echo "  $(basename "$f"): $size bytes, too large to print here"
                continue
            fi
            echo "  $(basename "$f") in base64 ($size bytes); to recreate it, pipe the lines"
            echo "  between the markers to: base64 -d >tests/fuzz/regressions/$h/$(basename "$f")"
            echo "-----BEGIN $(basename "$f")-----"
            base64 "$f"
            echo "-----END $(basename "$f")-----"
        done
    done
    exit 1
fi
