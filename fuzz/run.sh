#!/usr/bin/env bash
# Run every fuzz target of fuzz/ (built by fuzz/build.sh) from the seeds of fuzz/make_seeds.py:
#   fuzz/run.sh SECONDS_PER_TARGET [RUNS_PER_TARGET] [BUILD_DIR]
# stops a target at whichever limit comes first (RUNS 0: time only), keeps each target's
# corpus in BUILD_DIR/corpus/, prints each target's execution count, and fails on the first
# crash, sanitizer report or leak (the reproducer is left in BUILD_DIR/crashes/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:?seconds per target}
RUNS=${2:-0}
B=${3:-build/fuzz}
[ -d "$B/seeds" ] || python fuzz/make_seeds.py "$B/seeds" > /dev/null
mkdir -p "$B/crashes"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for target in safetensors wordpiece t5; do
    mkdir -p "$B/corpus/$target"
    log="$B/fuzz_$target.log"
    limit=(-max_total_time="$SECS")
    [ "$RUNS" -gt 0 ] && limit+=(-runs="$RUNS")
    if ! "$B/fuzz_$target" "${limit[@]}" -max_len=16384 -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
            -artifact_prefix="$B/crashes/$target-" "$B/corpus/$target" "$B/seeds/$target" > "$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz $target: FAILED (reproducer in $B/crashes/)" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "fuzz $target: $runs executions in $(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | cut -c4-) s, no crash, leak or sanitizer report"
done
