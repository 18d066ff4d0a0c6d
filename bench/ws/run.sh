#!/usr/bin/env bash
# bench/ws/run.sh — tsunagi's WebSocket /echo side by side with libwebsockets,
# Node `ws` and a minimal C echo (the kernel-limit reference).
#
# Run by bench/run.sh (which sets BENCH_RAW and friends); can be run alone:
#   bench/ws/run.sh              (writes into bench/results/raw/ws/)
#
# Every server runs pinned to the same single core (the first of
# BENCH_SERVER_CPUS), the load generator (bench/ws/loadgen.c) on the first
# of BENCH_CLIENT_CPUS, all on 127.0.0.1 with ports picked at run time.
#   1. echo: all four servers up at once; for each round, each scenario
#      (CONNS:SIZE:INFLIGHT), each server in turn (the order rotates every
#      round): WARMUP s unmeasured, then DURATION s measured. The load generator
#      reads the server's utime+stime from /proc/PID/stat at the edges of the
#      measured window: messages per server CPU-second. Medians over rounds.
#   2. idle: a fresh server, IDLE_N WebSocket connections opened and held idle;
#      (VmRSS after - VmRSS before) / IDLE_N.
#
# Output (the interface bench/report.py reads): figures.tsv, charts.tsv,
# samples.tsv, sides.tsv, method.md in $BENCH_RAW, plus every raw log beside them.
# A server that cannot be started or fails a run is reported (its figures are
# missing, the "failed runs" figure counts it) and the others carry on; the
# script then exits 1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=lib.sh
. "$here/../lib.sh"

# ---- parameters (environment overrides) ----------------------------------
bench_section ws # root, TSUNAGI, BENCH_RAW, the CPUs (one core for every server: SERVER_CPU)
NODE=${NODE:-node}
WS_NODE_PATH=${WS_NODE_PATH:-$root/tests/node_modules}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    def_rounds=1 def_duration=2 def_warmup=0.5 def_idle_n=2000
else
    def_rounds=5 def_duration=3 def_warmup=0.5 def_idle_n=19000
fi
ROUNDS=${WS_ROUNDS:-$def_rounds}
DURATION=${WS_DURATION:-$def_duration} # measured seconds per run
WARMUP=${WS_WARMUP:-$def_warmup}       # unmeasured seconds before each window
# CONNS:SIZE:INFLIGHT; the targets below are keyed on these three.
SCENARIOS=${WS_SCENARIOS:-100:64:1 1000:64:4 10:65536:1}
SERVERS=${WS_SERVERS:-tsunagi lws ws minimal}
IDLE_N=${WS_IDLE_N:-$def_idle_n}
IDLE_ROUNDS=${WS_IDLE_ROUNDS:-1}
IDLE_SETTLE_MS=${WS_IDLE_SETTLE_MS:-1000}
LWS_RX=${WS_LWS_RX:-0} # lws rx_buffer_size; 0 = lws's default
# A shared machine: before a run, wait (at most QUIET_WAIT s) until the server's
# core is less than QUIET_PCT % busy; redo a run once when something else took
# more than MAX_OTHER % of that core during it (at most MAX_RETRIES redos).
QUIET_PCT=${WS_QUIET_PCT:-10}
QUIET_WAIT=${WS_QUIET_WAIT:-1}
QUIET_PAUSE=0.5
MAX_OTHER=${WS_MAX_OTHER:-15}
MAX_RETRIES=${WS_MAX_RETRIES:-6}

bench_need cc taskset timeout awk pkg-config "$BENCH_PY"
[ -x "$TSUNAGI" ] || bench_die "tsunagi binary not found at $TSUNAGI (run: make build)"
pkg-config --exists libwebsockets || bench_die "libwebsockets-dev is missing (run: scripts/deps.sh bench)"

bench_init
bench_raw_reset '*.txt' '*.log' '*.tsv' '*.md'
bench_samples_init
bench_notes_init # problems worth a line in method.md
failed=0

# ---- the idle connection count: both processes must stay under their fd limit --
bench_fit 1000 # the server's own files (node has a few dozen)
idle_capped=''
if [ "$IDLE_N" -gt "$fit" ]; then
    bench_note "idle: $IDLE_N connections do not fit (ulimit -n $nofile, ephemeral ports $port_lo-$port_hi); using $fit"
    idle_capped=" (not the $IDLE_N asked for: ulimit -n $nofile and ephemeral ports $port_lo–$port_hi allow no more)"
    IDLE_N=$fit
fi

# ---- tools ----------------------------------------------------------------
tools=$bench_tmp/bin
common=$root/bench/common # the WebSocket client side loadgen and sigload share
mkdir -p "$tools"
loadgen=$tools/loadgen
cc -O2 -Wall -Wextra -o "$loadgen" "$here/loadgen.c" "$common/wsclient.c" ||
    bench_die "could not build bench/ws/loadgen.c"
cc -O2 -Wall -Wextra -o "$tools/minimal_echo" "$here/minimal_echo.c" ||
    bench_die "could not build bench/ws/minimal_echo.c"
# shellcheck disable=SC2046  # pkg-config output is a word list
cc -O2 -Wall -Wextra -o "$tools/lws_echo" "$here/lws_echo.c" $(pkg-config --cflags --libs libwebsockets) ||
    bench_die "could not build bench/ws/lws_echo.c against libwebsockets-dev"

lws_version=$(pkg-config --modversion libwebsockets | sed 's/-$//')
node_version=''
ws_version=''
tsunagi_args=''
if "$TSUNAGI" --help 2>&1 | grep -q -- '--ws-deflate'; then
    tsunagi_args='--ws-deflate=false'
fi

# ---- servers ----------------------------------------------------------------
# start_server NAME TAG: starts it on a fresh port, pinned to SERVER_CPU, waits
# until it echoes, and sets srv_port and srv_pid. Returns 1 (with a note) when
# it does not come up.
srv_port='' srv_pid=''

start_server() {
    local s=$1 tag=$2 log turn_port
    srv_port=$(bench_free_port)
    log=$BENCH_RAW/$s-$tag.log
    case $s in
    tsunagi)
        turn_port=$(bench_free_port)
        # shellcheck disable=SC2086  # word lists on purpose
        taskset -c "$SERVER_CPU" "$TSUNAGI" --http "127.0.0.1:$srv_port" --turn "127.0.0.1:$turn_port" \
            --threads 1 --echo --log-level warn $tsunagi_args ${BENCH_TSUNAGI_ARGS:-} >"$log" 2>&1 &
        ;;
    lws)
        taskset -c "$SERVER_CPU" "$tools/lws_echo" -p "$srv_port" -r "$LWS_RX" >"$log" 2>&1 &
        ;;
    ws)
        NODE_PATH=$WS_NODE_PATH taskset -c "$SERVER_CPU" "$NODE" "$here/ws_echo.js" "$srv_port" \
            >"$log" 2>&1 &
        ;;
    minimal)
        taskset -c "$SERVER_CPU" "$tools/minimal_echo" -p "$srv_port" >"$log" 2>&1 &
        ;;
    esac
    srv_pid=$!
    bench_track "$srv_pid"
    # Ready when one connection completes the upgrade and gets an echo back.
    bench_await_side "$s" "$log" "does not echo on ws://127.0.0.1:$srv_port/echo" 100 0.1 \
        "$BENCH_RAW/ready-$s-$tag.txt" \
        timeout 5 "$loadgen" echo -p "$srv_port" -c 1 -s 16 -k 1 -d 0.05 -w 0 -t 2
}

sc_id() { # 100:64:1 → c100s64k1
    local c s k
    IFS=: read -r c s k <<<"$1"
    echo "c${c}s${s}k${k}"
}

sc_label() { # 100:64:1 → "100 conns × 64 B × 1 in flight"
    local c s k size
    IFS=: read -r c s k <<<"$1"
    if [ $((s % 1024)) -eq 0 ]; then size="$((s / 1024)) KiB"; else size="$s B"; fi
    printf '%s conns × %s × %s in flight' "$c" "$size" "$k"
}

# The targets, as messages per server CPU-second (see the issue): rule and text.
sc_rule() {
    case $1 in
    100:64:1) printf 'ge_x:lws:1&ge_x:minimal:0.95\t≥ lws and ≥ 0.95 × minimal echo' ;;
    1000:64:4) printf 'ge_x:lws:3&ge_x:ws:6\t≥ 3 × lws and ≥ 6 × ws' ;;
    10:65536:1) printf 'ge_x:lws:1\t≥ lws' ;;
    *) printf 'none\t—' ;;
    esac
}

# ---- phase 0: start everything once, for the record ---------------------------
declare -A up=() pid_of=() port_of=()
# shellcheck disable=SC2086  # a word list
bench_start_sides main $SERVERS || failed=1
if [ -n "${up[ws]:-}" ]; then
    node_version=$("$NODE" --version)
    ws_version=$(NODE_PATH=$WS_NODE_PATH "$NODE" -p 'require("ws/package.json").version' 2>/dev/null || echo '?')
fi

# ---- phase 1: echo throughput and latency -------------------------------------
bench_log "echo: servers {$SERVERS} on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU;" \
    "scenarios {$SCENARIOS}, ${WARMUP} s + ${DURATION} s x $ROUNDS rounds"
for ((r = 1; r <= ROUNDS; r++)); do
    for sc in $SCENARIOS; do
        IFS=: read -r c sz k <<<"$sc"
        id=$(sc_id "$sc")
        for s in $(bench_order "$r" "$SERVERS"); do
            [ -n "${up[$s]:-}" ] || continue
            out=$BENCH_RAW/echo-$s-$id-r$r.txt
            if ! bench_run_clean "round $r $id $s" "$out" \
                timeout $((${DURATION%.*} + ${WARMUP%.*} + 60)) taskset -c "$CLIENT_CPU" "$loadgen" echo \
                -p "${port_of[$s]}" -c "$c" -s "$sz" -k "$k" -d "$DURATION" -w "$WARMUP" \
                -C "$SERVER_CPU" "${pid_of[$s]}"; then
                bench_note "round $r $id $s: the load generator failed: $(tail -n 2 "$out" | tr '\r\n' '  ')"
                bench_sample err "$s" "$r" 1
                failed=1
                if ! bench_alive "${pid_of[$s]}"; then
                    bench_note "$s died (log: raw/ws/$s-main.log); no more runs against it"
                    unset "up[$s]"
                fi
                continue
            fi
            line=$(tail -n 1 "$out")
            mcpu=$(bench_kv msgs_per_cpu_s "$line")
            mps=$(bench_kv msgs_per_s "$line")
            p99=$(bench_kv p99_us "$line")
            busy=$(bench_kv server_busy_pct "$line")
            client=$(bench_kv client_busy_pct "$line")
            cpub=$(bench_kv cpu_busy_pct "$line")
            bench_sample "mcpu_$id" "$s" "$r" "$mcpu"
            bench_sample "mps_$id" "$s" "$r" "$mps"
            bench_sample "p99_$id" "$s" "$r" "$(awk -v u="$p99" 'BEGIN { printf "%.4f", u / 1000 }')"
            bench_sample "busy_$id" "$s" "$r" "$busy"
            bench_sample "client_$id" "$s" "$r" "$client"
            bench_sample "other_$id" "$s" "$r" "$(awk -v a="$cpub" -v b="$busy" 'BEGIN { v = a - b; printf "%.1f", (v < 0 ? 0 : v) }')"
            bench_sample err "$s" "$r" 0
            bench_log "  round $r $id $s: $mps msg/s, $mcpu msg/CPU-s, p99 $p99 us," \
                "server $busy%, loadgen $client%, core $SERVER_CPU busy $cpub%"
        done
    done
done

for s in $SERVERS; do
    if [ -n "${pid_of[$s]:-}" ]; then
        bench_stop "${pid_of[$s]}"
    fi
done

# ---- phase 2: RSS per idle WebSocket connection -----------------------------------
bench_log "idle memory: $IDLE_N WebSocket connections, $IDLE_ROUNDS fresh start(s) per server"
for ((r = 1; r <= IDLE_ROUNDS; r++)); do
    for s in $(bench_order "$r" "$SERVERS"); do
        [ -n "${pid_of[$s]:-}" ] || continue # never started
        start_server "$s" "idle-$r" || {
            failed=1
            continue
        }
        out=$BENCH_RAW/idle-$s-r$r.txt
        sleep 0.5 # let start-up allocations settle before the first reading
        if ! timeout 180 taskset -c "$CLIENT_CPU" "$loadgen" idle -p "$srv_port" -c "$IDLE_N" \
            -S "$IDLE_SETTLE_MS" -t 150 "$srv_pid" >"$out" 2>&1; then
            bench_note "idle round $r $s: $(tail -n 2 "$out" | tr '\r\n' '  ')"
            failed=1
            bench_stop "$srv_pid"
            continue
        fi
        line=$(tail -n 1 "$out")
        per=$(bench_kv per_conn_bytes "$line")
        bench_sample idle_kib "$s" "$r" "$(awk -v b="$per" 'BEGIN { printf "%.3f", b / 1024 }')"
        bench_sample idle_rss_before "$s" "$r" "$(awk -v k="$(bench_kv before_kib "$line")" 'BEGIN { printf "%.2f", k / 1024 }')"
        bench_sample idle_rss_after "$s" "$r" "$(awk -v k="$(bench_kv after_kib "$line")" 'BEGIN { printf "%.2f", k / 1024 }')"
        bench_log "  round $r $s: $line"
        bench_stop "$srv_pid"
    done
done

# ---- the figures and how they were made ---------------------------------------
peers=''
for s in $SERVERS; do [ "$s" = tsunagi ] || peers="$peers,$s"; done
peers=${peers#,}
# row ID CHART LABEL UNIT BETTER [RULE TARGET] (median over rounds)
row() { bench_fig_row "$1" "$2" "$3" "$4" "$peers" median "$5" "${6:-none}" "${7:-—}"; }
# per_sc ID CHART LABEL UNIT BETTER: one row per scenario, ID_<scenario>, "LABEL, <scenario>"
per_sc() {
    local sc
    for sc in $SCENARIOS; do
        row "${1}_$(sc_id "$sc")" "$2" "$3, $(sc_label "$sc")" "$4" "$5"
    done
}
{
    bench_fig_head
    for sc in $SCENARIOS; do
        IFS=$'\t' read -r rule target <<<"$(sc_rule "$sc")"
        row "mcpu_$(sc_id "$sc")" mcpu "msgs per server CPU-s, $(sc_label "$sc")" msg/CPU-s higher \
            "$rule" "$target"
    done
    per_sc mps mps messages/s msg/s higher
    per_sc p99 p99 'p99 latency' ms lower
    row idle_kib idle 'RSS per idle WebSocket connection' KiB lower le:1 '≤ 1 KiB'
    row idle_rss_before - 'RSS before the idle connections' MiB lower
    row idle_rss_after - "RSS holding $IDLE_N idle connections" MiB lower
    per_sc busy - 'server CPU busy' % none
    per_sc client - 'load generator CPU busy' % none
    per_sc other - 'other load on the server core' % lower
    bench_fig_row err - 'failed load generator runs' count "$peers" sum lower eq:0 0
} >"$BENCH_RAW/figures.tsv"

{
    printf 'side\tlabel\n'
    printf 'tsunagi\ttsunagi\n'
    printf 'lws\tlibwebsockets %s\n' "$lws_version"
    printf 'ws\tNode ws %s\n' "${ws_version:-?}"
    printf 'minimal\tminimal C echo\n'
} >"$BENCH_RAW/sides.tsv"

{
    printf 'id\ttitle\tylabel\n'
    printf 'mcpu\tWebSocket echo: messages per server CPU-second (median of %s x %s s; one core)\tmessages / CPU-s\n' \
        "$ROUNDS" "$DURATION"
    printf 'mps\tWebSocket echo: messages/s (median of %s x %s s; one core)\tmessages/s\n' "$ROUNDS" "$DURATION"
    printf 'p99\tWebSocket echo: p99 latency (median of %s x %s s)\tms\n' "$ROUNDS" "$DURATION"
    printf 'idle\tRSS per idle WebSocket connection (%s connections; target ≤ 1 KiB)\tKiB\n' "$IDLE_N"
} >"$BENCH_RAW/charts.tsv"

quick=''
[ "${BENCH_QUICK:-0}" = 1 ] && quick=' **Quick mode (BENCH_QUICK=1): too short to quote.**'
problems=$(bench_problems)
cat >"$BENCH_RAW/method.md" <<EOF
Four WebSocket echo servers, each alone on CPU ${SERVER_CPU} (\`taskset -c ${SERVER_CPU}\`),
against one load generator on CPU ${CLIENT_CPU}, all on 127.0.0.1 with ports picked at run time:
**tsunagi** (\`--threads 1 --echo --log-level warn${tsunagi_args:+ $tsunagi_args}\`, path \`/echo\`),
**lws**: libwebsockets ${lws_version} from Debian (\`bench/ws/lws_echo.c\`: reassembles each
message, one \`lws_write\` per writable callback, rx_buffer_size ${LWS_RX}$([ "$LWS_RX" = 0 ] && echo " (lws's default, 4096)")), **ws**: the npm package ws ${ws_version:-?} on Node ${node_version:-?} (\`bench/ws/ws_echo.js\`,
perMessageDeflate off, no native add-ons), and **minimal**: \`bench/ws/minimal_echo.c\`, which
only unmasks and writes back everything one read produced in one write — the kernel's
loopback TCP cost plus one pass over the bytes, the "kernel limit".${quick}

- **Load.** \`bench/ws/loadgen.c\` (one thread, epoll) opens the connections (real
  Sec-WebSocket-Key, checks the 101 and Sec-WebSocket-Accept, no extension offered),
  keeps INFLIGHT binary messages of SIZE bytes in flight on each, every frame masked
  with a fresh random mask, and checks every echoed byte and the order. New messages
  go out as echoes come in, those of one read in one write. ${WARMUP} s unmeasured, then
  ${DURATION} s measured; ${ROUNDS} rounds, in each round every scenario against every server,
  the order of servers rotating from round to round. All servers stay up during this phase.
- **messages per server CPU-second** = messages echoed in the window ÷ the server's
  utime+stime over exactly that window (\`/proc/PID/stat\`, all threads, in units of
  1/$(getconf CLK_TCK) s; the kernel charges softirq time to the task it interrupts). It is the fair figure when the load
  generator, not the server, is the bottleneck ("server CPU busy" below 100 %).
  "other load on the server core" is core ${SERVER_CPU}'s busy time (\`/proc/stat\`) minus the server's:
  anything else that ran there (on a shared machine, other people's work) — read the
  figures of a run with high values there with care.
- **Latency** is from the write that carried a message to the read that completed its
  echo, in a log-linear histogram (about 3 % resolution); the median of the rounds' p99.
- **Noise.** Before each run the script waits up to ${QUIET_WAIT} s for core ${SERVER_CPU} to be under
  ${QUIET_PCT} % busy, and runs again (once, at most ${MAX_RETRIES} times in all; ${bench_retries} this time) a run in
  which other work took more than ${MAX_OTHER} % of it, keeping the cleaner one. On a shared
  machine the same server still moves by several per cent from round to round, so a
  target margin of 5 % is only as sure as the spread in "Every round" below.
- **Idle connections.** A fresh server per round (${IDLE_ROUNDS} round(s)). The load generator
  reads the server's VmRSS, opens ${IDLE_N} WebSocket connections${idle_capped}
  (at most 200 handshakes at a time), holds them idle for ${IDLE_SETTLE_MS} ms, reads VmRSS again:
  per connection = (after − before) / ${IDLE_N}. Kernel socket buffers are not in RSS.
  ulimit -n is ${nofile} for each of the server and the load generator.
${problems}
EOF

bench_log "done; raw logs in $BENCH_RAW"
exit "$failed"
