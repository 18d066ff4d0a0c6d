# shellcheck shell=bash
# bench/lib.sh — helpers shared by bench/run.sh and every bench/<section>/run.sh.
# Sourced, never run. Needs bash (arrays, $BASHPID-free, /proc).
#
# Process hygiene: every process a script starts is recorded with bench_track;
# bench_cleanup (run from the EXIT trap that bench_init installs) stops exactly
# those PIDs, politely first, and nothing else.

BENCH_PY=${BENCH_PY:-/usr/bin/python3}
bench_pids=()

bench_log() {
    printf '%s bench[%s]: %s\n' "$(date -u +%H:%M:%S)" "${BENCH_SECTION:-main}" "$*" >&2
}

bench_die() {
    printf 'bench[%s]: error: %s\n' "${BENCH_SECTION:-main}" "$*" >&2
    exit 1
}

bench_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || bench_die "'$c' is missing (run: scripts/deps.sh bench)"
    done
}

bench_track() {
    bench_pids+=("$@")
}

bench_alive() {
    kill -0 "$1" 2>/dev/null
}

# Stop the given PIDs: TERM, up to 5 s grace, then KILL. Each PID is one this
# script started (or a worker of one, found with bench_children).
bench_stop() {
    local pid i alive
    for pid in "$@"; do
        bench_alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "$@"; do
            bench_alive "$pid" && alive=1
        done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "$@"; do
        bench_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    done
    for pid in "$@"; do
        wait "$pid" 2>/dev/null || true
    done
    bench_untrack "$@"
    return 0
}

# Forget PIDs once they are stopped, so a later clean-up never signals a
# number the kernel has since given to someone else's process.
bench_untrack() {
    local keep=() p q drop
    for p in "${bench_pids[@]}"; do
        drop=0
        for q in "$@"; do
            [ "$p" = "$q" ] && drop=1
        done
        [ "$drop" -eq 0 ] && keep+=("$p")
    done
    bench_pids=("${keep[@]}")
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # One at a time, in start order: an nginx master before its workers, so
    # the master never sees a worker die early and starts a new one.
    local pid
    for pid in "${bench_pids[@]}"; do
        bench_stop "$pid"
    done
    [ -n "${bench_tmp:-}" ] && [ -d "$bench_tmp" ] && rm -rf "$bench_tmp"
    exit "$rc"
}

# Install the traps and make a private scratch folder ($bench_tmp).
bench_init() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    bench_tmp=$(mktemp -d "${TMPDIR:-/tmp}/tsunagi-bench.XXXXXX") || bench_die "mktemp failed"
}

# A free TCP port on 127.0.0.1 (the kernel picks it; a race with another
# process is possible and shows up as a server that fails to start).
bench_free_port() {
    "$BENCH_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Direct children of a PID (nginx workers of a master).
bench_children() {
    local pid=$1 t
    for t in /proc/"$pid"/task/*/children; do
        [ -r "$t" ] && cat "$t"
    done | tr ' ' '\n' | sed '/^$/d'
}

# GET http://127.0.0.1:PORT/PATH once; exit 0 when the answer is 200 with body
# BODY. With a third argument FILE, the raw response head and body go there.
bench_http_check() {
    "$BENCH_PY" - "$@" <<'EOF'
import socket, sys
port, path, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode().decode("unicode_escape").encode()
out = sys.argv[4] if len(sys.argv) > 4 else None
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=1)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        rest += chunk
    if out:
        with open(out, "wb") as f:
            f.write(head + b"\r\n\r\n" + rest)
    ok = head.startswith(b"HTTP/1.1 200") and rest == body
    sys.exit(0 if ok else 1)
except OSError:
    sys.exit(1)
EOF
}

# bench_poll TRIES PAUSE PID OUT CMD...: run CMD (its output in OUT) every
# PAUSE s, at most TRIES times, until it succeeds. Returns 0 when it did, 1
# when PID (the server CMD probes) exited first, 2 when CMD never succeeded.
bench_poll() {
    local tries=$1 pause=$2 pid=$3 out=$4 i
    shift 4
    for ((i = 0; i < tries; i++)); do
        bench_alive "$pid" || return 1
        "$@" >"$out" 2>&1 && return 0
        sleep "$pause"
    done
    return 2
}

# bench_ready_or_die PID LOG NAME WHAT TRIES PAUSE CMD...: bench_poll, and die
# with the tail of the server's LOG when PID exits or CMD never succeeds
# (WHAT says what it did not do, for the message).
bench_ready_or_die() {
    local pid=$1 log=$2 name=$3 what=$4 tries=$5 pause=$6 rc=0
    shift 6
    bench_poll "$tries" "$pause" "$pid" /dev/null "$@" || rc=$?
    [ "$rc" -eq 0 ] && return 0
    tail -n 20 "$log" >&2 2>/dev/null
    [ "$rc" -eq 1 ] && bench_die "$name exited during start-up (log: $log)"
    bench_die "$name $what (log: $log)"
}

# Wait (at most ~10 s) until PID answers 200 on PORT/PATH; die with the log
# tail when it exits or never answers.
bench_wait_http() {
    local pid=$1 port=$2 path=$3 body=$4 log=$5 name=$6
    bench_ready_or_die "$pid" "$log" "$name" \
        "did not answer 200 on http://127.0.0.1:$port$path within 10 s" 100 0.1 \
        bench_http_check "$port" "$path" "$body"
}

# Sum of VmRSS (KiB) over PIDs.
bench_rss_kib() {
    local pid sum=0 v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# Sum of utime+stime (clock ticks) over PIDs and all their threads.
bench_cpu_ticks() {
    local pid sum=0 v
    for pid in "$@"; do
        # Fields after the ")" of comm: utime is the 12th, stime the 13th.
        v=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# CPU list "0" / "0-1" / "0,2" → number of CPUs in it.
bench_cpu_count() {
    "$BENCH_PY" -c '
import sys
n = 0
for part in sys.argv[1].split(","):
    lo, _, hi = part.partition("-")
    n += int(hi or lo) - int(lo) + 1
print(n)' "$1"
}

# CPU list "0-1,3" → "0 1 3".
bench_cpu_expand() {
    "$BENCH_PY" -c '
import sys
out = []
for part in sys.argv[1].split(","):
    lo, _, hi = part.partition("-")
    out += range(int(lo), int(hi or lo) + 1)
print(" ".join(map(str, out)))' "$1"
}

# bench_core_ticks [-a] CPU...: "BUSY TOTAL" clock ticks since boot summed
# over the CPUs named ("0 1"): BUSY is user+nice+system (time some process
# ran, without interrupt and softirq work), with -a also irq, softirq (a
# process's system time includes the softirq work done in its context, the
# loopback delivery of what it sends, which /proc/stat counts as softirq) and
# steal (the hypervisor ran someone else on this virtual CPU); TOTAL every
# column but guest. Two readings give how busy the cores were in between.
bench_core_ticks() {
    local all=0
    [ "${1:-}" = -a ] && all=1 && shift
    awk -v l=" $* " -v all="$all" '
    $1 ~ /^cpu[0-9]+$/ && index(l, " " substr($1, 4) " ") {
        b += $2 + $3 + $4 + (all ? $7 + $8 + $9 : 0)
        t += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
    }
    END { print b + 0, t + 0 }' /proc/stat
}

# bench_cores_busy [-a] CPUS SECONDS: percent of the CPUs ("0 1") busy over
# SECONDS (-a: counting interrupt, softirq and steal time, see above).
bench_cores_busy() {
    local all=() a b
    [ "$1" = -a ] && all=(-a) && shift
    a=$(bench_core_ticks "${all[@]}" "$1")
    sleep "$2"
    b=$(bench_core_ticks "${all[@]}" "$1")
    awk -v a="$a" -v b="$b" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[2] - x[2]
        printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

# One benchmark at a time on this machine: two runs on the same cores would
# spoil each other's figures. Waits up to BENCH_LOCK_WAIT s for a run in
# progress. bench/run.sh takes the lock for all its sections (they see
# BENCH_LOCK_HELD=1); a section run on its own takes it itself.
bench_lock() {
    local lock=${BENCH_LOCK:-/tmp/tsunagi-bench.lock} wait=${BENCH_LOCK_WAIT:-1200}
    [ "${BENCH_LOCK_HELD:-0}" = 1 ] && return 0
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>>"$lock"
    if ! flock -n 9; then
        bench_log "another benchmark run holds $lock; waiting up to $wait s for it to end"
        flock -w "$wait" 9 || bench_die "another benchmark run still holds $lock after $wait s"
    fi
    export BENCH_LOCK_HELD=1
}

# ---- what every section does --------------------------------------------------
# A section script sources this file, then calls bench_section NAME before
# reading its own parameters.

# bench_section NAME: BENCH_SECTION (for the log), root (the checkout), and
# the defaults every section shares: TSUNAGI, BENCH_RAW (its folder under
# bench/results/raw/ when run alone), and the cores: SERVER_CPUS and
# CLIENT_CPUS (lists, from BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS; the client
# gets core 1 when there are two or more), SERVER_CPU and CLIENT_CPU (the
# first of each list).
# shellcheck disable=SC2034  # the section script reads them
bench_section() {
    BENCH_SECTION=$1
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    TSUNAGI=${TSUNAGI:-$root/build/tsunagi}
    BENCH_RAW=${BENCH_RAW:-$root/bench/results/raw/$BENCH_SECTION}
    SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
    if [ "$(nproc)" -ge 2 ]; then
        CLIENT_CPUS=${BENCH_CLIENT_CPUS:-1}
    else
        CLIENT_CPUS=${BENCH_CLIENT_CPUS:-0}
    fi
    SERVER_CPU=${SERVER_CPUS%%[,-]*}
    CLIENT_CPU=${CLIENT_CPUS%%[,-]*}
}

# bench_raw_reset GLOB...: make BENCH_RAW, without the files an earlier run
# of the section left there (GLOBs relative to it; nothing else is touched).
bench_raw_reset() {
    local g
    mkdir -p "$BENCH_RAW"
    for g in "$@"; do
        # shellcheck disable=SC2086  # a glob on purpose
        rm -f "$BENCH_RAW"/$g
    done
}

# Start samples.tsv (bench_sample appends to it).
bench_samples_init() {
    printf 'id\tside\tround\tvalue\n' >"$BENCH_RAW/samples.tsv"
}

# Start notes.txt (bench_note appends to it).
bench_notes_init() {
    : >"$BENCH_RAW/notes.txt"
}

# bench_sample ID SIDE ROUND VALUE: one figure of one run.
bench_sample() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$BENCH_RAW/samples.tsv"
}

# A problem worth a line in method.md (and in the log now).
bench_note() {
    bench_log "$*"
    printf '%s\n' "$*" >>"$BENCH_RAW/notes.txt"
}

# The notes as method.md's "Problems in this run" paragraph; empty if none.
bench_problems() {
    if [ -s "$BENCH_RAW/notes.txt" ]; then
        printf '\n**Problems in this run:**\n\n'
        sed 's/^/- /' "$BENCH_RAW/notes.txt"
    fi
}

# bench_kv KEY TEXT: the value of KEY=value in a tool's key=value output
# (the last one when several lines carry it); empty when there is none.
bench_kv() {
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -n 1
}

# bench_order R LIST: the sides of LIST in the order for round R, the list
# rotated by R-1, so that each goes first in turn.
bench_order() {
    local r=$1 arr i n
    read -r -a arr <<<"$2"
    n=${#arr[@]}
    for ((i = 0; i < n; i++)); do
        printf '%s ' "${arr[$(((i + r - 1) % n))]}"
    done
}

# bench_fit MARGIN: how many connections one process may hold with MARGIN
# files to spare (ulimit -n) and, bound to one address, ephemeral ports with
# 1000 to spare. Sets nofile, port_lo, port_hi and fit.
bench_fit() {
    nofile=$(ulimit -n)
    [ "$nofile" = unlimited ] && nofile=1048576
    read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
    fit=$((nofile - $1))
    [ $((port_hi - port_lo - 1000)) -lt "$fit" ] && fit=$((port_hi - port_lo - 1000))
    return 0
}

# The head of figures.tsv (its columns are described in bench/report.py).
bench_fig_head() {
    printf 'id\tchart\tlabel\tunit\tpeer\tagg\tbetter\trule\ttarget\n'
}

# bench_fig_row ID CHART LABEL UNIT PEER AGG BETTER RULE TARGET: one row of it.
bench_fig_row() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"
}

# ---- a shared machine: quiet cores, clean runs -----------------------------------

# bench_quiet_core CPU PCT WAIT PAUSE: wait until core CPU is at most PCT %
# busy (bench_cores_busy -a over 0.3 s), at most WAIT s, checking every
# PAUSE s; after that the run goes ahead anyway.
bench_quiet_core() {
    local cpu=$1 pct=$2 wait=$3 pause=$4 t0=$SECONDS b
    while :; do
        b=$(bench_cores_busy -a "$cpu" 0.3)
        [ "$b" -le "$pct" ] && return 0
        if [ $((SECONDS - t0)) -ge "$wait" ]; then
            bench_log "  core $cpu is still ${b}% busy with other work after ${wait} s; running anyway"
            return 0
        fi
        sleep "$pause"
    done
}

# bench_quiet_budget CPUS PCT: wait until the CPUs are at most PCT % busy,
# drawing on bench_quiet_left, the seconds of waiting the whole section may
# spend (set it first); once that is spent the runs go ahead at once.
bench_quiet_budget() {
    local busy
    while :; do
        busy=$(bench_cores_busy "$1" 0.5)
        [ "$busy" -le "$2" ] && return 0
        [ "$bench_quiet_left" -gt 0 ] || return 0
        bench_quiet_left=$((bench_quiet_left - 1))
        sleep 0.5
    done
}

# bench_run_clean LABEL OUT CMD...: run a load generator (CMD, its output in
# OUT) once core SERVER_CPU is quiet (QUIET_PCT, QUIET_WAIT, QUIET_PAUSE); when
# other work took more than MAX_OTHER % of that core during it (its
# cpu_busy_pct minus server_busy_pct), run it once more and keep the cleaner
# of the two, at most MAX_RETRIES times in the section (bench_retries counts
# them). Returns 1 when the load generator failed (no mode= line).
bench_retries=0
bench_run_clean() {
    local label=$1 out=$2 try=1 line other best_other=100
    shift 2
    while :; do
        bench_quiet_core "$SERVER_CPU" "$QUIET_PCT" "$QUIET_WAIT" "$QUIET_PAUSE"
        if ! "$@" >"$out.try$try" 2>&1; then
            cp "$out.try$try" "$out"
            break
        fi
        line=$(tail -n 1 "$out.try$try")
        other=$(awk -v a="$(bench_kv cpu_busy_pct "$line")" -v b="$(bench_kv server_busy_pct "$line")" \
            'BEGIN { printf "%.0f", a - b }')
        if [ "$try" -eq 1 ] || [ "$other" -lt "$best_other" ]; then
            cp "$out.try$try" "$out"
            best_other=$other
        fi
        if [ "$other" -le "$MAX_OTHER" ] || [ "$try" -ge 2 ] || [ "$bench_retries" -ge "$MAX_RETRIES" ]; then
            break
        fi
        bench_log "  $label: other work took ${other}% of core $SERVER_CPU; running it again"
        bench_retries=$((bench_retries + 1))
        try=$((try + 1))
    done
    rm -f "$out".try*
    grep -q '^mode=' "$out"
}

# ---- the servers of a section ------------------------------------------------------

# bench_await_side SIDE LOG WHAT TRIES PAUSE OUT CMD...: the server srv_pid
# just started for SIDE (log LOG) is ready once CMD (a short load generator
# run, output in OUT) succeeds; polls as bench_poll does. When it exits or
# never gets there, notes why (WHAT: what it did not do), stops it and
# returns 1.
# shellcheck disable=SC2154  # srv_pid is the section's
bench_await_side() {
    local s=$1 log=$2 what=$3 tries=$4 pause=$5 out=$6 rc=0
    shift 6
    bench_poll "$tries" "$pause" "$srv_pid" "$out" "$@" || rc=$?
    [ "$rc" -eq 0 ] && return 0
    if [ "$rc" -eq 1 ]; then
        bench_note "$s did not start (log: raw/$BENCH_SECTION/${log##*/}: $(tail -n 3 "$log" | tr '\r\n' '  '))"
    else
        bench_note "$s $what: $(tail -n 2 "$out" | tr '\r\n' '  ')"
    fi
    bench_stop "$srv_pid"
    return 1
}

# bench_start_sides TAG SIDE...: start_server SIDE TAG (the section's: it
# sets srv_pid and srv_port) for each side; those that come up get up[SIDE],
# pid_of[SIDE] and port_of[SIDE] (associative arrays the section declares).
# Returns 1 when one did not.
# shellcheck disable=SC2034,SC2154  # the arrays and srv_* are the section's
bench_start_sides() {
    local tag=$1 s rc=0
    shift
    declare -gA up pid_of port_of
    for s in "$@"; do
        if start_server "$s" "$tag"; then
            up[$s]=1
            pid_of[$s]=$srv_pid
            port_of[$s]=$srv_port
        else
            rc=1
        fi
    done
    return "$rc"
}
