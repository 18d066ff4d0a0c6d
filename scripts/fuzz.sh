#!/bin/sh
# Run every libFuzzer target of a build for a while, each on its seed corpus.
#   scripts/fuzz.sh FUZZ_BIN_DIR SECONDS
#
# Each FUZZ_BIN_DIR/fuzz_NAME runs for SECONDS seconds with
# tests/fuzz/corpus/NAME/ as read-only seeds and tests/fuzz/NAME.dict when
# there is one. New inputs go to a scratch corpus kept in FUZZ_BIN_DIR/work/,
# so the repository's corpus stays as committed while later runs carry on
# where earlier ones stopped. A crash, leak, timeout or out-of-memory in any
# target fails the run (exit 1), naming the target and its reproducer.
set -eu

usage() {
    echo "usage: $0 FUZZ_BIN_DIR SECONDS" >&2
    exit 2
}

[ $# -eq 2 ] || usage
case $2 in
'' | *[!0-9]* | 0) usage ;;
esac
[ -d "$1" ] || { echo "fuzz.sh: no such directory: $1" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
bindir=$(cd "$1" && pwd)
seconds=$2
failed=""
ran=0

for bin in "$bindir"/fuzz_*; do
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        continue
    fi
    target=$(basename "$bin")
    name=${target#fuzz_}
    seeds=$root/tests/fuzz/corpus/$name
    dict=$root/tests/fuzz/$name.dict
    work=$bindir/work/$name
    ran=$((ran + 1))

    # Old artifacts would be mistaken for this run's findings.
    rm -rf "$work/artifacts"
    mkdir -p "$work/corpus" "$work/artifacts"

    set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/"
    [ -f "$dict" ] && set -- "$@" -dict="$dict"
    set -- "$@" "$work/corpus"
    if [ -d "$seeds" ]; then
        set -- "$@" "$seeds"
    else
        echo "fuzz.sh: $target: no seed corpus at tests/fuzz/corpus/$name/, starting empty" >&2
    fi

    echo "fuzz.sh: $target for ${seconds}s"
    status=0
    ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" "$bin" "$@" >"$work/log" 2>&1 || status=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added)' \
        "$work/log" | sed "s|^|    |" || true

    findings=$(ls "$work/artifacts" 2>/dev/null || true)
    if [ "$status" -ne 0 ] || [ -n "$findings" ]; then
        echo "fuzz.sh: FAILED $target (exit $status)" >&2
        grep -E 'ERROR: |SUMMARY: |property failed|==[0-9]+==.*(deadly|timeout|leak)' \
            "$work/log" | head -n 10 | sed "s|^|    |" >&2 || true
        for f in $findings; do
            echo "    reproducer: $work/artifacts/$f (run: $bin $work/artifacts/$f)" >&2
        done
        echo "    full log: $work/log" >&2
        failed="$failed $target"
    fi
done

if [ "$ran" -eq 0 ]; then
    echo "fuzz.sh: no fuzz_* binaries in $bindir" >&2
    exit 1
fi
if [ -n "$failed" ]; then
    echo "fuzz.sh: failed:$failed" >&2
    exit 1
fi
echo "fuzz.sh: $ran target(s) ran ${seconds}s each, nothing found"
