#!/usr/bin/env bash
# bench/signaling/run.sh — tsunagi's signaling (PeerJS at /peerjs, Ayame at
# /signaling) side by side with PeerServer (npm `peer` on Node) and a minimal
# C relay (the kernel-floor reference).
#
# Run by bench/run.sh (which sets BENCH_RAW and friends); can be run alone:
#   bench/signaling/run.sh       (writes into bench/results/raw/signaling/)
# or through the top-level runner, which also writes the README:
#   BENCH_SECTIONS=signaling bench/run.sh
#
# Sides (each its own server process, alone on the first of BENCH_SERVER_CPUS;
# the load generator, bench/signaling/sigload.c, on the first of
# BENCH_CLIENT_CPUS; 127.0.0.1, ports picked at run time):
#   tsunagi  tsunagi's PeerJS server protocol, /peerjs/peerjs
#   peer     PeerServer (bench/signaling/peerserver.js), /peerjs
#   minimal  bench/signaling/minimal_relay.c (forwards bytes, PeerJS-shaped OPEN)
#   ayame    tsunagi's Ayame protocol, /signaling (no peer speaks it: tsunagi only)
# Phases, ROUNDS rounds each, the order of sides rotating from round to round:
#   1. relay: CLIENTS clients in pairs, INFLIGHT messages in flight per pair
#      (offer, answer, four candidates, in a loop); WARMUP s, then DURATION s
#      measured: messages relayed per server CPU-second, messages/s, p99.
#   2. rate: RATE_CLIENTS clients, each pair sending RATE messages a second: p99.
#   3. hold: a fresh server per side and round; HOLD_N clients registered and
#      held idle (RSS per client), then all pairs relaying one message in
#      flight for HOLD_ACTIVE s (RSS per client while active).
#
# Output (the interface bench/report.py reads): figures.tsv, charts.tsv,
# samples.tsv, sides.tsv, method.md in $BENCH_RAW, plus every raw log beside them.
# A side that cannot be started (tsunagi without a PeerJS endpoint yet, say)
# or fails a run is reported and the others carry on; the script then exits 1.
set -euo pipefail
# The braces make bash read the whole script before running it, so an edit
# to this file during a run cannot change what the run does.
{

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BENCH_SECTION=signaling
# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=lib.sh
. "$root/bench/lib.sh"

# ---- parameters (environment overrides) ----------------------------------
TSUNAGI=${TSUNAGI:-$root/build/tsunagi}
NODE=${NODE:-node}
SIG_NODE_PATH=${SIG_NODE_PATH:-$root/tests/node_modules}
BENCH_RAW=${BENCH_RAW:-$root/bench/results/raw/signaling}
ncpu=$(nproc)
SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
if [ "$ncpu" -ge 2 ]; then CLIENT_CPUS=${BENCH_CLIENT_CPUS:-1}; else CLIENT_CPUS=${BENCH_CLIENT_CPUS:-0}; fi
SERVER_CPU=${SERVER_CPUS%%[,-]*} # one core for every server, the first of the list
CLIENT_CPU=${CLIENT_CPUS%%[,-]*}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    def_rounds=1 def_duration=2 def_warmup=0.5 def_rate_n=2000 def_hold_n=2000 def_rate_dur=3
    def_rate_rounds=1
else
    def_rounds=3 def_duration=3 def_warmup=1 def_rate_n=10000 def_hold_n=19000 def_rate_dur=5
    def_rate_rounds=5
fi
ROUNDS=${SIG_ROUNDS:-$def_rounds}
DURATION=${SIG_DURATION:-$def_duration} # measured seconds per relay run
WARMUP=${SIG_WARMUP:-$def_warmup}       # unmeasured seconds before each window
CLIENTS=${SIG_CLIENTS:-1000}            # relay: clients (pairs of two)
INFLIGHT=${SIG_INFLIGHT:-1 8}           # relay: messages in flight per pair, one run each
RATE_CLIENTS=${SIG_RATE_CLIENTS:-$def_rate_n}
RATE=${SIG_RATE:-1} # messages a second per pair
RATE_DURATION=${SIG_RATE_DURATION:-$def_rate_dur}
RATE_ROUNDS=${SIG_RATE_ROUNDS:-$def_rate_rounds} # a p99 moves most with the machine's noise
HOLD_N=${SIG_HOLD_N:-$def_hold_n}
HOLD_ROUNDS=${SIG_HOLD_ROUNDS:-$ROUNDS}
HOLD_SETTLE_MS=${SIG_HOLD_SETTLE_MS:-1000}
HOLD_ACTIVE=${SIG_HOLD_ACTIVE:-2}
OFFER_SDP=${SIG_OFFER_SDP:-2300}   # bytes of SDP in an offer (the JSON adds ~100)
ANSWER_SDP=${SIG_ANSWER_SDP:-1500} # ... in an answer
HEARTBEAT=${SIG_HEARTBEAT:-5}      # PeerJS clients' HEARTBEAT interval, s (the client's default)
SIDES=${SIG_SIDES:-tsunagi peer minimal ayame}
RATE_SIDES=${SIG_RATE_SIDES:-tsunagi peer minimal ayame}
HOLD_SIDES=${SIG_HOLD_SIDES:-tsunagi peer ayame}
LIMIT=${SIG_LIMIT:-30000} # concurrent client limit given to tsunagi and PeerServer
# A shared machine: before a run, wait (at most QUIET_WAIT s) until the server's
# core is less than QUIET_PCT % busy; redo a run once when something else took
# more than MAX_OTHER % of that core during it (at most MAX_RETRIES redos).
# SIG_NICE < 0 (root only) runs the servers and the load generator at that
# nice level, so other people's work on a busy shared machine takes less of
# their cores during a run; 0 (the default) leaves the scheduler alone.
NICE=${SIG_NICE:-0}
# The rate phase measures latency, which other people's runnable work on the
# same core inflates by whole scheduler slices (~10 ms). There the servers
# and sigload are mostly idle (a third of a core), so they run at RATE_NICE
# (root: -10 by default): they are served first when a message arrives, yet
# take little from anyone. The relay phase, where the servers are saturated,
# stays at NICE so as not to starve the machine.
if [ "$(id -u)" = 0 ]; then RATE_NICE=${SIG_RATE_NICE:--10}; else RATE_NICE=${SIG_RATE_NICE:-0}; fi
QUIET_PCT=${SIG_QUIET_PCT:-10}
QUIET_WAIT=${SIG_QUIET_WAIT:-2}
MAX_OTHER=${SIG_MAX_OTHER:-15}
MAX_RETRIES=${SIG_MAX_RETRIES:-6}

bench_need cc taskset timeout awk "$NODE" "$BENCH_PY"
[ -x "$TSUNAGI" ] || bench_die "tsunagi binary not found at $TSUNAGI (run: make build)"
[ -d "$SIG_NODE_PATH/peer" ] || bench_die "npm peer is missing in $SIG_NODE_PATH (run: scripts/deps.sh)"

bench_init
mkdir -p "$BENCH_RAW"
rm -f "$BENCH_RAW"/*.txt "$BENCH_RAW"/*.log "$BENCH_RAW"/*.tsv "$BENCH_RAW"/*.md
samples=$BENCH_RAW/samples.tsv
printf 'id\tside\tround\tvalue\n' >"$samples"
notes=$BENCH_RAW/notes.txt
: >"$notes"
failed=0

note() {
    bench_log "$*"
    printf '%s\n' "$*" >>"$notes"
}

# Every process of this script may hold a socket per client: the soft limit
# goes up to the hard one (20,000 on the machine this was written on).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] && nofile=1048576
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
fit=$((nofile - 500))
[ $((port_hi - port_lo - 1000)) -lt "$fit" ] && fit=$((port_hi - port_lo - 1000))
for v in HOLD_N RATE_CLIENTS; do
    if [ "${!v}" -gt "$fit" ]; then
        note "$v=${!v} clients do not fit (ulimit -n $nofile per process, ephemeral ports $port_lo-$port_hi); using $fit"
        printf -v "$v" '%s' "$((fit / 2 * 2))"
    fi
done

# Busy % of the server's core over SECONDS (everything but idle and iowait).
core_busy() {
    local a b
    a=$(awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep "$1"
    b=$(awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%.0f", (busy + idle > 0 ? 100 * busy / (busy + idle) : 0) }'
}

# Wait until the server core is quiet (our servers are idle between runs,
# once they have finished closing the last run's clients).
quiet_wait() {
    local t0=$SECONDS b
    while :; do
        b=$(core_busy 0.3)
        [ "$b" -le "$QUIET_PCT" ] && return 0
        if [ $((SECONDS - t0)) -ge "$QUIET_WAIT" ]; then
            bench_log "  core $SERVER_CPU is still ${b}% busy after ${QUIET_WAIT} s; running anyway"
            return 0
        fi
        sleep 0.3
    done
}
retries=0

# ---- tools ----------------------------------------------------------------
tools=$bench_tmp/bin
mkdir -p "$tools"
sigload=$tools/sigload
cc -O2 -Wall -Wextra -o "$sigload" "$here/sigload.c" || bench_die "could not build bench/signaling/sigload.c"
cc -O2 -Wall -Wextra -o "$tools/minimal_relay" "$here/minimal_relay.c" ||
    bench_die "could not build bench/signaling/minimal_relay.c"
node_version=$("$NODE" --version)
# (peer's package "exports" hide package.json from require)
peer_version=$("$BENCH_PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$SIG_NODE_PATH/peer/package.json" 2>/dev/null || echo '?')
# PeerServer has no per-client message rate limit, and the throughput phase
# sends as fast as each client is answered: tsunagi's is turned off too.
tsunagi_args="--threads 1 --log-level warn --peerjs-concurrent-limit $LIMIT --signaling-rate 0"

# Command prefixes: pinned to a core, at NICE (nice and taskset exec the
# command, so $! is the server's own PID).
srv_pin=(taskset -c "$SERVER_CPU")
cli_pin=(taskset -c "$CLIENT_CPU")
if [ "$NICE" != 0 ]; then
    srv_pin=(nice -n "$NICE" "${srv_pin[@]}")
    cli_pin=(nice -n "$NICE" "${cli_pin[@]}")
fi
cli_pin_relay=("${cli_pin[@]}")

# ---- servers ----------------------------------------------------------------
proto_of() { case $1 in ayame) echo ayame ;; minimal) echo raw ;; *) echo peerjs ;; esac; }
path_of() {
    case $1 in tsunagi) echo /peerjs/peerjs ;; ayame) echo /signaling ;; *) echo /peerjs ;; esac
}

# start_server SIDE TAG: on a fresh port, pinned to SERVER_CPU; waits until one
# pair relays through it; sets srv_port and srv_pid. Returns 1 (with a note)
# when it does not come up.
srv_port='' srv_pid=''
start_server() {
    local s=$1 tag=$2 log i turn_port
    srv_port=$(bench_free_port)
    log=$BENCH_RAW/$s-$tag.log
    case $s in
    tsunagi | ayame)
        turn_port=$(bench_free_port)
        # shellcheck disable=SC2086  # word lists on purpose
        "${srv_pin[@]}" "$TSUNAGI" --http "127.0.0.1:$srv_port" --turn "127.0.0.1:$turn_port" \
            $tsunagi_args ${BENCH_TSUNAGI_ARGS:-} >"$log" 2>&1 &
        ;;
    peer)
        NODE_PATH=$SIG_NODE_PATH "${srv_pin[@]}" "$NODE" "$here/peerserver.js" "$srv_port" \
            "$LIMIT" >"$log" 2>&1 &
        ;;
    minimal)
        "${srv_pin[@]}" "$tools/minimal_relay" -p "$srv_port" >"$log" 2>&1 &
        ;;
    esac
    srv_pid=$!
    bench_track "$srv_pid"
    for ((i = 0; i < 50; i++)); do
        if ! bench_alive "$srv_pid"; then
            note "$s did not start (log: raw/signaling/$s-$tag.log: $(tail -n 3 "$log" | tr '\r\n' '  '))"
            bench_stop "$srv_pid"
            return 1
        fi
        if timeout 5 "$sigload" relay -P "$(proto_of "$s")" -u "$(path_of "$s")" -p "$srv_port" -c 2 \
            -d 0.1 -w 0 -t 2 >"$BENCH_RAW/ready-$s-$tag.txt" 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    note "$s does not relay on 127.0.0.1:$srv_port$(path_of "$s"): $(tail -n 2 "$BENCH_RAW/ready-$s-$tag.txt" | tr '\r\n' '  ')"
    bench_stop "$srv_pid"
    return 1
}

sample() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$samples"
}

# Sides in the order for round R: the list rotated by R-1.
order() {
    local r=$1 arr i n
    read -r -a arr <<<"$2"
    n=${#arr[@]}
    for ((i = 0; i < n; i++)); do
        printf '%s ' "${arr[$(((i + r - 1) % n))]}"
    done
}

kv() { # kv KEY LINE → value of KEY=value in LINE
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Samples are filed under the side that made them; Ayame's are tsunagi's own
# figures with an _ayame id (there is no peer to put beside them).
fig_side() { [ "$1" = ayame ] && echo tsunagi || echo "$1"; }
fig_id() { [ "$2" = ayame ] && echo "${1}_ayame" || echo "$1"; }

# run_load SIDE OUT ARGS...: one sigload run against SIDE's running server,
# redone once when other work took more than MAX_OTHER % of the server core.
# Returns 1 when the load generator failed.
run_load() {
    local s=$1 out=$2 try=1 line other best_other=100
    shift 2
    while :; do
        quiet_wait
        if ! timeout 300 "${cli_pin[@]}" "$sigload" "$@" -P "$(proto_of "$s")" \
            -u "$(path_of "$s")" -p "${port_of[$s]}" -C "$SERVER_CPU" -H "$HEARTBEAT" \
            -O "$OFFER_SDP" -A "$ANSWER_SDP" "${pid_of[$s]}" >"$out.try$try" 2>&1; then
            cp "$out.try$try" "$out"
            break
        fi
        line=$(tail -n 1 "$out.try$try")
        other=$(awk -v a="$(kv cpu_busy_pct "$line")" -v b="$(kv server_busy_pct "$line")" \
            'BEGIN { printf "%.0f", a - b }')
        if [ "$try" -eq 1 ] || [ "$other" -lt "$best_other" ]; then
            cp "$out.try$try" "$out"
            best_other=$other
        fi
        if [ "$other" -le "$MAX_OTHER" ] || [ "$try" -ge 2 ] || [ "$retries" -ge "$MAX_RETRIES" ]; then
            break
        fi
        bench_log "  $(basename "$out" .txt): other work took ${other}% of core $SERVER_CPU; running it again"
        retries=$((retries + 1))
        try=$((try + 1))
    done
    rm -f "$out".try*
    grep -q '^mode=' "$out"
}

run_failed() { # SIDE ROUND OUT: note it; forget a side whose server died
    note "round $2 $1: the load generator failed: $(tail -n 2 "$3" | tr '\r\n' '  ')"
    sample err "$(fig_side "$1")" "$2" 1
    failed=1
    if ! bench_alive "${pid_of[$1]}"; then
        note "$1 died (log: raw/signaling/$1-main.log); no more runs against it"
        unset "up[$1]"
    fi
}

# ---- start every side once ---------------------------------------------------
declare -A up=() pid_of=() port_of=()
# shellcheck disable=SC2086  # word lists on purpose
all_sides=$(printf '%s\n' $SIDES $RATE_SIDES | awk '!seen[$0]++' | tr '\n' ' ')
for s in $all_sides; do
    if start_server "$s" main; then
        up[$s]=1
        pid_of[$s]=$srv_pid
        port_of[$s]=$srv_port
    else
        failed=1
    fi
done

# ---- phase 1: relay, closed loop ----------------------------------------------
bench_log "relay: sides {$SIDES} on CPU $SERVER_CPU, sigload on CPU $CLIENT_CPU; $CLIENTS clients," \
    "{$INFLIGHT} in flight per pair, ${WARMUP} s + ${DURATION} s x $ROUNDS rounds"
for ((r = 1; r <= ROUNDS; r++)); do
    for k in $INFLIGHT; do
        for s in $(order "$r" "$SIDES"); do
            [ -n "${up[$s]:-}" ] || continue
            out=$BENCH_RAW/relay-$s-k$k-r$r.txt
            if ! run_load "$s" "$out" relay -c "$CLIENTS" -k "$k" -d "$DURATION" -w "$WARMUP" -t 60; then
                run_failed "$s" "$r" "$out"
                continue
            fi
            line=$(tail -n 1 "$out")
            fs=$(fig_side "$s")
            busy=$(kv server_busy_pct "$line")
            sample "$(fig_id "mcpu_k$k" "$s")" "$fs" "$r" "$(kv msgs_per_cpu_s "$line")"
            sample "$(fig_id "mps_k$k" "$s")" "$fs" "$r" "$(kv msgs_per_s "$line")"
            sample "$(fig_id "p99_k$k" "$s")" "$fs" "$r" "$(awk -v u="$(kv p99_us "$line")" 'BEGIN { printf "%.4f", u / 1000 }')"
            sample "$(fig_id "busy_k$k" "$s")" "$fs" "$r" "$busy"
            sample "$(fig_id "client_k$k" "$s")" "$fs" "$r" "$(kv client_busy_pct "$line")"
            sample "$(fig_id "other_k$k" "$s")" "$fs" "$r" "$(awk -v a="$(kv cpu_busy_pct "$line")" -v b="$busy" 'BEGIN { v = a - b; printf "%.1f", (v < 0 ? 0 : v) }')"
            sample err "$fs" "$r" 0
            bench_log "  round $r k$k $s: $(kv msgs_per_s "$line") msg/s, $(kv msgs_per_cpu_s "$line") msg/CPU-s," \
                "p99 $(kv p99_us "$line") us, server $busy%, sigload $(kv client_busy_pct "$line")%," \
                "core $SERVER_CPU busy $(kv cpu_busy_pct "$line")%"
        done
    done
done

# ---- phase 2: paced messages, many clients --------------------------------------
bench_log "rate: sides {$RATE_SIDES}; $RATE_CLIENTS clients, $RATE msg/s per pair, ${WARMUP} s + ${RATE_DURATION} s x $RATE_ROUNDS rounds, nice $RATE_NICE"
if [ "$RATE_NICE" != "$NICE" ]; then
    for s in $RATE_SIDES; do
        if [ -n "${up[$s]:-}" ]; then
            # Every thread: on Linux a nice value belongs to a thread.
            for t in /proc/"${pid_of[$s]}"/task/*; do
                renice -n "$RATE_NICE" -p "${t##*/}" >/dev/null || true
            done
        fi
    done
    cli_pin=(nice -n "$RATE_NICE" taskset -c "$CLIENT_CPU")
fi
for ((r = 1; r <= RATE_ROUNDS; r++)); do
    for s in $(order "$r" "$RATE_SIDES"); do
        [ -n "${up[$s]:-}" ] || continue
        out=$BENCH_RAW/rate-$s-r$r.txt
        if ! run_load "$s" "$out" rate -c "$RATE_CLIENTS" -R "$RATE" -d "$RATE_DURATION" -w "$WARMUP" -t 120; then
            run_failed "$s" "$r" "$out"
            continue
        fi
        line=$(tail -n 1 "$out")
        fs=$(fig_side "$s")
        sample "$(fig_id p99_rate "$s")" "$fs" "$r" "$(awk -v u="$(kv p99_us "$line")" 'BEGIN { printf "%.4f", u / 1000 }')"
        sample "$(fig_id p50_rate "$s")" "$fs" "$r" "$(awk -v u="$(kv p50_us "$line")" 'BEGIN { printf "%.4f", u / 1000 }')"
        sample "$(fig_id busy_rate "$s")" "$fs" "$r" "$(kv server_busy_pct "$line")"
        sample err "$fs" "$r" 0
        bench_log "  round $r $s: p50 $(kv p50_us "$line") us, p99 $(kv p99_us "$line") us," \
            "p99.9 $(kv p999_us "$line") us, server $(kv server_busy_pct "$line")%, connect $(kv connect_s "$line") s"
    done
done

for s in "${!pid_of[@]}"; do
    bench_stop "${pid_of[$s]}"
done
cli_pin=("${cli_pin_relay[@]}")

# ---- phase 3: clients held, RSS per client -----------------------------------------
bench_log "hold: sides {$HOLD_SIDES}; $HOLD_N clients, a fresh server per side and round, $HOLD_ROUNDS round(s)"
for ((r = 1; r <= HOLD_ROUNDS; r++)); do
    for s in $(order "$r" "$HOLD_SIDES"); do
        [ -n "${pid_of[$s]:-}" ] || continue # never started
        start_server "$s" "hold-$r" || {
            failed=1
            continue
        }
        out=$BENCH_RAW/hold-$s-r$r.txt
        fs=$(fig_side "$s")
        sleep 0.5 # let start-up allocations settle before the first reading
        if ! timeout 300 "${cli_pin[@]}" "$sigload" hold -P "$(proto_of "$s")" -u "$(path_of "$s")" \
            -p "$srv_port" -c "$HOLD_N" -S "$HOLD_SETTLE_MS" -d "$HOLD_ACTIVE" -H "$HEARTBEAT" \
            -O "$OFFER_SDP" -A "$ANSWER_SDP" -t 200 "$srv_pid" >"$out" 2>&1; then
            note "hold round $r $s: $(tail -n 2 "$out" | tr '\r\n' '  ')"
            sample err "$fs" "$r" 1
            failed=1
            bench_stop "$srv_pid"
            continue
        fi
        line=$(tail -n 1 "$out")
        sample "$(fig_id held "$s")" "$fs" "$r" "$(kv held "$line")"
        sample "$(fig_id idle_kib "$s")" "$fs" "$r" "$(awk -v b="$(kv idle_per_client_bytes "$line")" 'BEGIN { printf "%.3f", b / 1024 }')"
        sample "$(fig_id active_kib "$s")" "$fs" "$r" "$(awk -v b="$(kv active_per_client_bytes "$line")" 'BEGIN { printf "%.3f", b / 1024 }')"
        sample "$(fig_id connect_s "$s")" "$fs" "$r" "$(kv connect_s "$line")"
        sample err "$fs" "$r" 0
        bench_log "  round $r $s: $line"
        bench_stop "$srv_pid"
    done
done

# ---- the figures and how they were made ---------------------------------------
# shellcheck source-path=SCRIPTDIR
# shellcheck source=figures.sh
. "$here/figures.sh"
sig_write_figures

bench_log "done; raw logs in $BENCH_RAW"
exit "$failed"
}
