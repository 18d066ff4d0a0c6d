#!/usr/bin/env bash
# bench/run.sh — every benchmark section, then bench/results/README.md and charts.
#
#   bench/run.sh                      all sections (make bench runs this after make build)
#   BENCH_SECTIONS="http" bench/run.sh   only the sections named
#   BENCH_QUICK=1 bench/run.sh        a short smoke run (numbers not to be quoted)
#   BENCH_STRICT=1 bench/run.sh       exit 3 when a target is missed
#
# A section is a folder bench/<name>/ with an executable run.sh. It is run
# with BENCH_RAW (its own empty folder under results/raw/), TSUNAGI (the
# binary), BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS and BENCH_QUICK in the
# environment, and leaves figures.tsv, samples.tsv, charts.tsv and method.md
# in BENCH_RAW (the format is described at the top of bench/report.py).
# A section that fails does not stop the others; the run then exits 1.
set -euo pipefail
# The braces make bash read the whole script before running it, so an edit
# to this file during a run cannot change what the run does.
{

bench=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$bench/.." && pwd)
results=$bench/results
raw=$results/raw
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$bench/lib.sh"

export TSUNAGI=${TSUNAGI:-$root/build/tsunagi}
export BENCH_QUICK=${BENCH_QUICK:-0}
ncpu=$(nproc)
export BENCH_SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
if [ "$ncpu" -ge 2 ]; then
    export BENCH_CLIENT_CPUS=${BENCH_CLIENT_CPUS:-$((ncpu - 1))}
else
    bench_log "only one CPU: server and load generator share it; figures are not comparable with a 2-core run"
    export BENCH_CLIENT_CPUS=${BENCH_CLIENT_CPUS:-0}
fi
SECTION_TIMEOUT=${BENCH_SECTION_TIMEOUT:-900} # seconds; a hung section is stopped

bench_need "$BENCH_PY" gnuplot
[ -x "$TSUNAGI" ] || bench_die "no tsunagi binary at $TSUNAGI (run: make build)"

if [ -n "${BENCH_SECTIONS:-}" ]; then
    sections=$BENCH_SECTIONS
else
    sections=''
    for d in "$bench"/*/; do
        [ -x "$d/run.sh" ] && sections="$sections $(basename "$d")"
    done
fi
[ -n "${sections// /}" ] || bench_die "no bench sections found (bench/<name>/run.sh)"

mkdir -p "$raw"
# sections.tsv lists what the README shows: the sections run now, and those
# of earlier runs on this machine that this one did not repeat (their raw
# figures are still there), so running one section keeps the others' results.
index=$raw/sections.tsv
bench_init
bench_lock
kept=$bench_tmp/sections.tsv
printf 'section\tstatus\tseconds\tdate\n' >"$kept"
if [ -f "$index" ]; then
    tail -n +2 "$index" | while IFS=$'\t' read -r s st secs when; do
        case " $sections " in *" $s "*) continue ;; esac
        if [ -f "$raw/$s/figures.tsv" ]; then
            printf '%s\t%s\t%s\t%s\n' "$s" "$st" "$secs" "${when:-earlier}"
        fi
    done >>"$kept"
fi
failed=0
for s in $sections; do
    [ -x "$bench/$s/run.sh" ] || bench_die "no section '$s' (bench/$s/run.sh)"
    rm -rf "${raw:?}/$s"
    mkdir -p "$raw/$s"
    rm -f "$results/$s"-*.png
    bench_log "section $s: start (log: $raw/$s.log)"
    t0=$(date +%s)
    status=ok
    # The section's own output goes to its log and, line by line, to the terminal.
    if ! BENCH_RAW=$raw/$s timeout --signal=TERM --kill-after=60 "$SECTION_TIMEOUT" \
        "$bench/$s/run.sh" 2>&1 9>&- | tee "$raw/$s.log"; then
        status=failed
        failed=1
    fi
    secs=$(($(date +%s) - t0))
    if [ "$secs" -ge "$SECTION_TIMEOUT" ]; then
        status="stopped after ${SECTION_TIMEOUT} s"
    fi
    bench_log "section $s: $status in $secs s"
    printf '%s\t%s\t%s\t%s\n' "$s" "$status" "$secs" "$(date -u '+%Y-%m-%d %H:%M UTC')" >>"$kept"
done
# Sections in name order, whichever run they come from.
{
    head -n 1 "$kept"
    tail -n +2 "$kept" | sort
} >"$index"

report_rc=0
"$BENCH_PY" "$bench/report.py" "$results" || report_rc=$?
[ "$report_rc" -eq 0 ] || [ "$report_rc" -eq 3 ] || bench_die "bench/report.py failed"
bench_log "wrote $results/README.md"

[ "$failed" -eq 0 ] || bench_die "a section failed; see $raw/<section>.log"
if [ "$report_rc" -eq 3 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then
    exit 3
fi
exit 0
}
