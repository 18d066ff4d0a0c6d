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

# Wait (at most ~10 s) until PID answers 200 on PORT/PATH; die with the log
# tail when it exits or never answers.
bench_wait_http() {
    local pid=$1 port=$2 path=$3 body=$4 log=$5 name=$6 i
    for ((i = 0; i < 100; i++)); do
        if ! bench_alive "$pid"; then
            tail -n 20 "$log" >&2 2>/dev/null
            bench_die "$name exited during start-up (log: $log)"
        fi
        if bench_http_check "$port" "$path" "$body"; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2 2>/dev/null
    bench_die "$name did not answer 200 on http://127.0.0.1:$port$path within 10 s (log: $log)"
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

# "BUSY TOTAL" clock ticks since boot summed over the CPUs named ("0 1"):
# BUSY is user+nice+system (time some process ran, without interrupt and
# softirq work), TOTAL every column but guest. Two readings give how busy
# the cores were in between.
bench_core_ticks() {
    awk -v l=" $* " '
    $1 ~ /^cpu[0-9]+$/ && index(l, " " substr($1, 4) " ") {
        b += $2 + $3 + $4
        t += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
    }
    END { print b + 0, t + 0 }' /proc/stat
}

# Percent of the CPUs ("0 1") busy with processes over SECONDS.
bench_cores_busy() {
    local cpus=$1 secs=$2 a b
    a=$(bench_core_ticks "$cpus")
    sleep "$secs"
    b=$(bench_core_ticks "$cpus")
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
