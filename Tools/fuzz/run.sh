#!/bin/sh
# Builds the libFuzzer targets (Docs/reliability.md, Fuzzing) and runs each for N seconds (default 60).
#   Tools/fuzz/run.sh [seconds] [target...]
# Targets: FuzzRecordBatch, FuzzCheckpoint, FuzzOpenDirectory, FuzzOffsetIndex, FuzzQueueRecord,
# FuzzEngineRecord, FuzzVisibilityQuery. Corpora grow in
# Tools/fuzz/corpus/<target> (not committed); a crash leaves crash-* files in the working directory.
set -e
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-"FuzzRecordBatch FuzzCheckpoint FuzzOpenDirectory FuzzOffsetIndex FuzzQueueRecord FuzzEngineRecord FuzzVisibilityQuery"}
swift build -c release --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -enable-testing
for target in $TARGETS; do
    mkdir -p "corpus/$target"
    # An empty corpus starts from real encodings (the targets that have a seed generator write them).
    if [ -z "$(ls -A "corpus/$target")" ]; then
        SPOOL_FUZZ_WRITE_SEEDS="corpus/$target" ".build-fuzz/release/$target" >/dev/null 2>&1 || true
    fi
    echo "== $target: $SECONDS_EACH s"
    ".build-fuzz/release/$target" "corpus/$target" -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -print_final_stats=1 2>&1 \
        | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)" || true
done
