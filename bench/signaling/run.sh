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
# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=lib.sh
. "$here/../lib.sh"

# ---- parameters (environment overrides) ----------------------------------
bench_section signaling # root, TSUNAGI, BENCH_RAW, the CPUs (one core for every server: SERVER_CPU)
NODE=${NODE:-node}
SIG_NODE_PATH=${SIG_NODE_PATH:-$root/tests/node_modules}
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
QUIET_PAUSE=0.3
MAX_OTHER=${SIG_MAX_OTHER:-15}
MAX_RETRIES=${SIG_MAX_RETRIES:-6}

bench_need cc taskset timeout awk "$NODE" "$BENCH_PY"
[ -x "$TSUNAGI" ] || bench_die "tsunagi binary not found at $TSUNAGI (run: make build)"
[ -d "$SIG_NODE_PATH/peer" ] || bench_die "npm peer is missing in $SIG_NODE_PATH (run: scripts/deps.sh)"

bench_init
bench_raw_reset '*.txt' '*.log' '*.tsv' '*.md'
bench_samples_init
bench_notes_init # problems worth a line in method.md
failed=0

# Every process of this script may hold a socket per client: the soft limit
# goes up to the hard one (20,000 on the machine this was written on).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_fit 500
for v in HOLD_N RATE_CLIENTS; do
    if [ "${!v}" -gt "$fit" ]; then
        bench_note "$v=${!v} clients do not fit (ulimit -n $nofile per process, ephemeral ports $port_lo-$port_hi); using $fit"
        printf -v "$v" '%s' "$((fit / 2 * 2))"
    fi
done

# ---- tools ----------------------------------------------------------------
tools=$bench_tmp/bin
common=$root/bench/common # the WebSocket client side loadgen and sigload share
mkdir -p "$tools"
sigload=$tools/sigload
cc -O2 -Wall -Wextra -o "$sigload" "$here/sigload.c" "$common/wsclient.c" ||
    bench_die "could not build bench/signaling/sigload.c"
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
    local s=$1 tag=$2 log turn_port
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
    bench_await_side "$s" "$log" "does not relay on 127.0.0.1:$srv_port$(path_of "$s")" 50 0.2 \
        "$BENCH_RAW/ready-$s-$tag.txt" \
        timeout 5 "$sigload" relay -P "$(proto_of "$s")" -u "$(path_of "$s")" -p "$srv_port" -c 2 \
        -d 0.1 -w 0 -t 2
}

# Samples are filed under the side that made them; Ayame's are tsunagi's own
# figures with an _ayame id (there is no peer to put beside them).
fig_side() { [ "$1" = ayame ] && echo tsunagi || echo "$1"; }
fig_id() { [ "$2" = ayame ] && echo "${1}_ayame" || echo "$1"; }

# run_load SIDE OUT ARGS...: one sigload run against SIDE's running server,
# redone once when other work took more than MAX_OTHER % of the server core.
# Returns 1 when the load generator failed.
run_load() {
    local s=$1 out=$2
    shift 2
    bench_run_clean "$(basename "$out" .txt)" "$out" \
        timeout 300 "${cli_pin[@]}" "$sigload" "$@" -P "$(proto_of "$s")" \
        -u "$(path_of "$s")" -p "${port_of[$s]}" -C "$SERVER_CPU" -H "$HEARTBEAT" \
        -O "$OFFER_SDP" -A "$ANSWER_SDP" "${pid_of[$s]}"
}

run_failed() { # SIDE ROUND OUT: note it; forget a side whose server died
    bench_note "round $2 $1: the load generator failed: $(tail -n 2 "$3" | tr '\r\n' '  ')"
    bench_sample err "$(fig_side "$1")" "$2" 1
    failed=1
    if ! bench_alive "${pid_of[$1]}"; then
        bench_note "$1 died (log: raw/signaling/$1-main.log); no more runs against it"
        unset "up[$1]"
    fi
}

# ---- start every side once ---------------------------------------------------
declare -A up=() pid_of=() port_of=()
# shellcheck disable=SC2086  # word lists on purpose
all_sides=$(printf '%s\n' $SIDES $RATE_SIDES | awk '!seen[$0]++' | tr '\n' ' ')
# shellcheck disable=SC2086  # a word list
bench_start_sides main $all_sides || failed=1

# ---- phase 1: relay, closed loop ----------------------------------------------
bench_log "relay: sides {$SIDES} on CPU $SERVER_CPU, sigload on CPU $CLIENT_CPU; $CLIENTS clients," \
    "{$INFLIGHT} in flight per pair, ${WARMUP} s + ${DURATION} s x $ROUNDS rounds"
for ((r = 1; r <= ROUNDS; r++)); do
    for k in $INFLIGHT; do
        for s in $(bench_order "$r" "$SIDES"); do
            [ -n "${up[$s]:-}" ] || continue
            out=$BENCH_RAW/relay-$s-k$k-r$r.txt
            if ! run_load "$s" "$out" relay -c "$CLIENTS" -k "$k" -d "$DURATION" -w "$WARMUP" -t 60; then
                run_failed "$s" "$r" "$out"
                continue
            fi
            line=$(tail -n 1 "$out")
            fs=$(fig_side "$s")
            busy=$(bench_kv server_busy_pct "$line")
            bench_sample "$(fig_id "mcpu_k$k" "$s")" "$fs" "$r" "$(bench_kv msgs_per_cpu_s "$line")"
            bench_sample "$(fig_id "mps_k$k" "$s")" "$fs" "$r" "$(bench_kv msgs_per_s "$line")"
            bench_sample "$(fig_id "p99_k$k" "$s")" "$fs" "$r" "$(awk -v u="$(bench_kv p99_us "$line")" 'BEGIN { printf "%.4f", u / 1000 }')"
            bench_sample "$(fig_id "busy_k$k" "$s")" "$fs" "$r" "$busy"
            bench_sample "$(fig_id "client_k$k" "$s")" "$fs" "$r" "$(bench_kv client_busy_pct "$line")"
            bench_sample "$(fig_id "other_k$k" "$s")" "$fs" "$r" "$(awk -v a="$(bench_kv cpu_busy_pct "$line")" -v b="$busy" 'BEGIN { v = a - b; printf "%.1f", (v < 0 ? 0 : v) }')"
            bench_sample err "$fs" "$r" 0
            bench_log "  round $r k$k $s: $(bench_kv msgs_per_s "$line") msg/s, $(bench_kv msgs_per_cpu_s "$line") msg/CPU-s," \
                "p99 $(bench_kv p99_us "$line") us, server $busy%, sigload $(bench_kv client_busy_pct "$line")%," \
                "core $SERVER_CPU busy $(bench_kv cpu_busy_pct "$line")%"
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
    for s in $(bench_order "$r" "$RATE_SIDES"); do
        [ -n "${up[$s]:-}" ] || continue
        out=$BENCH_RAW/rate-$s-r$r.txt
        if ! run_load "$s" "$out" rate -c "$RATE_CLIENTS" -R "$RATE" -d "$RATE_DURATION" -w "$WARMUP" -t 120; then
            run_failed "$s" "$r" "$out"
            continue
        fi
        line=$(tail -n 1 "$out")
        fs=$(fig_side "$s")
        bench_sample "$(fig_id p99_rate "$s")" "$fs" "$r" "$(awk -v u="$(bench_kv p99_us "$line")" 'BEGIN { printf "%.4f", u / 1000 }')"
        bench_sample "$(fig_id p50_rate "$s")" "$fs" "$r" "$(awk -v u="$(bench_kv p50_us "$line")" 'BEGIN { printf "%.4f", u / 1000 }')"
        bench_sample "$(fig_id busy_rate "$s")" "$fs" "$r" "$(bench_kv server_busy_pct "$line")"
        bench_sample err "$fs" "$r" 0
        bench_log "  round $r $s: p50 $(bench_kv p50_us "$line") us, p99 $(bench_kv p99_us "$line") us," \
            "p99.9 $(bench_kv p999_us "$line") us, server $(bench_kv server_busy_pct "$line")%, connect $(bench_kv connect_s "$line") s"
    done
done

for s in "${!pid_of[@]}"; do
    bench_stop "${pid_of[$s]}"
done
cli_pin=("${cli_pin_relay[@]}")

# ---- phase 3: clients held, RSS per client -----------------------------------------
bench_log "hold: sides {$HOLD_SIDES}; $HOLD_N clients, a fresh server per side and round, $HOLD_ROUNDS round(s)"
for ((r = 1; r <= HOLD_ROUNDS; r++)); do
    for s in $(bench_order "$r" "$HOLD_SIDES"); do
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
            bench_note "hold round $r $s: $(tail -n 2 "$out" | tr '\r\n' '  ')"
            bench_sample err "$fs" "$r" 1
            failed=1
            bench_stop "$srv_pid"
            continue
        fi
        line=$(tail -n 1 "$out")
        bench_sample "$(fig_id held "$s")" "$fs" "$r" "$(bench_kv held "$line")"
        bench_sample "$(fig_id idle_kib "$s")" "$fs" "$r" "$(awk -v b="$(bench_kv idle_per_client_bytes "$line")" 'BEGIN { printf "%.3f", b / 1024 }')"
        bench_sample "$(fig_id active_kib "$s")" "$fs" "$r" "$(awk -v b="$(bench_kv active_per_client_bytes "$line")" 'BEGIN { printf "%.3f", b / 1024 }')"
        bench_sample "$(fig_id connect_s "$s")" "$fs" "$r" "$(bench_kv connect_s "$line")"
        bench_sample err "$fs" "$r" 0
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
