#!/bin/sh
# Run libFuzzer targets of a build for a while, each on its seed corpus.
#   scripts/fuzz.sh [-t NAME] [-f] FUZZ_BIN_DIR SECONDS
#
#   -t NAME   run fuzz_NAME only (ctest has one entry per target)
#   -f        fresh: start from the seeds alone, in FUZZ_BIN_DIR/work-fresh/,
#             so a test run explores the same ground every time and leaves
#             the corpus that make fuzz grows in FUZZ_BIN_DIR/work/ alone
#
# Each FUZZ_BIN_DIR/fuzz_NAME first replays tests/fuzz/regressions/NAME/
# (inputs that once crashed it: any failure there fails at once) and then
# runs for SECONDS seconds with tests/fuzz/corpus/NAME/ and the regressions
# as read-only seeds and tests/fuzz/NAME.dict when there is one. New inputs go
# to a scratch corpus in FUZZ_BIN_DIR/work/NAME/, so the repository's corpus
# stays as committed. A crash, leak, timeout or out-of-memory in any target
# fails the run (exit 1), naming the target and its reproducer.
set -eu

usage() {
    echo "usage: $0 [-t NAME] [-f] FUZZ_BIN_DIR SECONDS" >&2
    exit 2
}

only=""
fresh=0
while getopts t:f opt; do
    case $opt in
    t) only=$OPTARG ;;
    f) fresh=1 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
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

# Report a failed target: what the sanitizer said and how to reproduce it.
report() { # target status work bin
    echo "fuzz.sh: FAILED $1 (exit $2)" >&2
    grep -E 'ERROR: |SUMMARY: |property failed|==[0-9]+==.*(deadly|timeout|leak)' \
        "$3/log" | head -n 10 | sed "s|^|    |" >&2 || true
    for f in $(ls "$3/artifacts" 2>/dev/null || true); do
        echo "    reproducer: $3/artifacts/$f (run: $4 $3/artifacts/$f)" >&2
        echo "    once fixed, keep it: cp $3/artifacts/$f $root/tests/fuzz/regressions/${1#fuzz_}/" >&2
    done
    echo "    full log: $3/log" >&2
    failed="$failed $1"
}

for bin in "$bindir"/fuzz_*; do
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        continue
    fi
    target=$(basename "$bin")
    name=${target#fuzz_}
    [ -z "$only" ] || [ "$only" = "$name" ] || continue
    seeds=$root/tests/fuzz/corpus/$name
    regressions=$root/tests/fuzz/regressions/$name
    dict=$root/tests/fuzz/$name.dict
    work=$bindir/work/$name
    [ "$fresh" -eq 0 ] || work=$bindir/work-fresh/$name
    ran=$((ran + 1))

    # Old artifacts would be mistaken for this run's findings.
    rm -rf "$work/artifacts"
    [ "$fresh" -eq 0 ] || rm -rf "$work/corpus"
    mkdir -p "$work/corpus" "$work/artifacts"
    : >"$work/log"

    # Known crashers first: each runs once, and the first failure stops it.
    if [ -d "$regressions" ] && [ -n "$(ls "$regressions")" ]; then
        echo "fuzz.sh: $target replays $(ls "$regressions" | wc -l) regression input(s)"
        status=0
        ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" "$bin" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$work/artifacts/" "$regressions"/* >>"$work/log" 2>&1 || status=$?
        if [ "$status" -ne 0 ]; then
            report "$target" "$status" "$work" "$bin"
            continue
        fi
    fi

    set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/"
    [ -f "$dict" ] && set -- "$@" -dict="$dict"
    set -- "$@" "$work/corpus"
    if [ -d "$seeds" ]; then
        set -- "$@" "$seeds"
    else
        echo "fuzz.sh: $target: no seed corpus at tests/fuzz/corpus/$name/, starting empty" >&2
    fi
    [ -d "$regressions" ] && set -- "$@" "$regressions"

    echo "fuzz.sh: $target for ${seconds}s"
    status=0
    ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" "$bin" "$@" >>"$work/log" 2>&1 || status=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added)' \
        "$work/log" | sed "s|^|    |" || true

    if [ "$status" -ne 0 ] || [ -n "$(ls "$work/artifacts")" ]; then
        report "$target" "$status" "$work" "$bin"
    fi
done

if [ "$ran" -eq 0 ]; then
    echo "fuzz.sh: no fuzz_${only:-*} binary in $bindir" >&2
    exit 1
fi
if [ -n "$failed" ]; then
    echo "fuzz.sh: failed:$failed" >&2
    exit 1
fi
echo "fuzz.sh: $ran target(s) ran ${seconds}s each, nothing found"
