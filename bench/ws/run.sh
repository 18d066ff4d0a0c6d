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
root=$(cd "$here/../.." && pwd)
BENCH_SECTION=ws
# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=lib.sh
. "$root/bench/lib.sh"

# ---- parameters (environment overrides) ----------------------------------
TSUNAGI=${TSUNAGI:-$root/build/tsunagi}
NODE=${NODE:-node}
WS_NODE_PATH=${WS_NODE_PATH:-$root/tests/node_modules}
BENCH_RAW=${BENCH_RAW:-$root/bench/results/raw/ws}
ncpu=$(nproc)
SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
if [ "$ncpu" -ge 2 ]; then CLIENT_CPUS=${BENCH_CLIENT_CPUS:-1}; else CLIENT_CPUS=${BENCH_CLIENT_CPUS:-0}; fi
SERVER_CPU=${SERVER_CPUS%%[,-]*} # one core for every server, the first of the list
CLIENT_CPU=${CLIENT_CPUS%%[,-]*}
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
MAX_OTHER=${WS_MAX_OTHER:-15}
MAX_RETRIES=${WS_MAX_RETRIES:-6}

bench_need cc taskset timeout awk pkg-config "$BENCH_PY"
[ -x "$TSUNAGI" ] || bench_die "tsunagi binary not found at $TSUNAGI (run: make build)"
pkg-config --exists libwebsockets || bench_die "libwebsockets-dev is missing (run: scripts/deps.sh bench)"

bench_init
mkdir -p "$BENCH_RAW"
rm -f "$BENCH_RAW"/*.txt "$BENCH_RAW"/*.log "$BENCH_RAW"/*.tsv "$BENCH_RAW"/*.md
samples=$BENCH_RAW/samples.tsv
printf 'id\tside\tround\tvalue\n' >"$samples"
notes=$BENCH_RAW/notes.txt # problems worth a line in method.md
: >"$notes"
failed=0

note() {
    bench_log "$*"
    printf '%s\n' "$*" >>"$notes"
}

# ---- the idle connection count: both processes must stay under their fd limit --
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] && nofile=1048576
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
idle_fit=$((nofile - 1000)) # the server's own files (node has a few dozen)
eph=$((port_hi - port_lo - 1000))
[ "$eph" -lt "$idle_fit" ] && idle_fit=$eph
idle_capped=''
if [ "$IDLE_N" -gt "$idle_fit" ]; then
    note "idle: $IDLE_N connections do not fit (ulimit -n $nofile, ephemeral ports $port_lo-$port_hi); using $idle_fit"
    idle_capped=" (not the $IDLE_N asked for: ulimit -n $nofile and ephemeral ports $port_lo–$port_hi allow no more)"
    IDLE_N=$idle_fit
fi

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

# Wait until the server core is quiet (our servers are idle between runs).
quiet_wait() {
    local t0=$SECONDS b
    while :; do
        b=$(core_busy 0.3)
        [ "$b" -le "$QUIET_PCT" ] && return 0
        if [ $((SECONDS - t0)) -ge "$QUIET_WAIT" ]; then
            bench_log "  core $SERVER_CPU is still ${b}% busy with other work after ${QUIET_WAIT} s; running anyway"
            return 0
        fi
        sleep 0.5
    done
}
retries=0

# ---- tools ----------------------------------------------------------------
tools=$bench_tmp/bin
mkdir -p "$tools"
loadgen=$tools/loadgen
cc -O2 -Wall -Wextra -o "$loadgen" "$here/loadgen.c" || bench_die "could not build bench/ws/loadgen.c"
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
    local s=$1 tag=$2 log i turn_port
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
    for ((i = 0; i < 100; i++)); do
        if ! bench_alive "$srv_pid"; then
            note "$s did not start (log: raw/ws/$s-$tag.log: $(tail -n 3 "$log" | tr '\r\n' '  '))"
            bench_stop "$srv_pid"
            return 1
        fi
        if timeout 5 "$loadgen" echo -p "$srv_port" -c 1 -s 16 -k 1 -d 0.05 -w 0 -t 2 \
            >"$BENCH_RAW/ready-$s-$tag.txt" 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    note "$s does not echo on ws://127.0.0.1:$srv_port/echo: $(head -n 2 "$BENCH_RAW/ready-$s-$tag.txt" | tr '\r\n' '  ')"
    bench_stop "$srv_pid"
    return 1
}

sample() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$samples"
}

# Servers in the order for round R: the list rotated by R-1.
order() {
    local r=$1 arr i n
    read -r -a arr <<<"$SERVERS"
    n=${#arr[@]}
    for ((i = 0; i < n; i++)); do
        printf '%s ' "${arr[$(((i + r - 1) % n))]}"
    done
}

kv() { # kv KEY LINE → value of KEY=value in LINE
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
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
for s in $SERVERS; do
    if start_server "$s" main; then
        up[$s]=1
        pid_of[$s]=$srv_pid
        port_of[$s]=$srv_port
    else
        failed=1
    fi
done
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
        for s in $(order "$r"); do
            [ -n "${up[$s]:-}" ] || continue
            out=$BENCH_RAW/echo-$s-$id-r$r.txt
            try=1
            while :; do
                quiet_wait
                if ! timeout $((${DURATION%.*} + ${WARMUP%.*} + 60)) taskset -c "$CLIENT_CPU" "$loadgen" echo \
                    -p "${port_of[$s]}" -c "$c" -s "$sz" -k "$k" -d "$DURATION" -w "$WARMUP" \
                    -C "$SERVER_CPU" "${pid_of[$s]}" >"$out.try$try" 2>&1; then
                    cp "$out.try$try" "$out"
                    break
                fi
                line=$(tail -n 1 "$out.try$try")
                other=$(awk -v a="$(kv cpu_busy_pct "$line")" -v b="$(kv server_busy_pct "$line")" \
                    'BEGIN { printf "%.0f", a - b }')
                # Keep the cleaner of the tries.
                if [ "$try" -eq 1 ] || [ "$other" -lt "$best_other" ]; then
                    cp "$out.try$try" "$out"
                    best_other=$other
                fi
                if [ "$other" -le "$MAX_OTHER" ] || [ "$try" -ge 2 ] || [ "$retries" -ge "$MAX_RETRIES" ]; then
                    break
                fi
                bench_log "  round $r $id $s: other work took ${other}% of core $SERVER_CPU; running it again"
                retries=$((retries + 1))
                try=$((try + 1))
            done
            rm -f "$out".try*
            if ! grep -q '^mode=echo' "$out"; then
                note "round $r $id $s: the load generator failed: $(tail -n 2 "$out" | tr '\r\n' '  ')"
                sample err "$s" "$r" 1
                failed=1
                if ! bench_alive "${pid_of[$s]}"; then
                    note "$s died (log: raw/ws/$s-main.log); no more runs against it"
                    unset "up[$s]"
                fi
                continue
            fi
            line=$(tail -n 1 "$out")
            mcpu=$(kv msgs_per_cpu_s "$line")
            mps=$(kv msgs_per_s "$line")
            p99=$(kv p99_us "$line")
            busy=$(kv server_busy_pct "$line")
            client=$(kv client_busy_pct "$line")
            cpub=$(kv cpu_busy_pct "$line")
            sample "mcpu_$id" "$s" "$r" "$mcpu"
            sample "mps_$id" "$s" "$r" "$mps"
            sample "p99_$id" "$s" "$r" "$(awk -v u="$p99" 'BEGIN { printf "%.4f", u / 1000 }')"
            sample "busy_$id" "$s" "$r" "$busy"
            sample "client_$id" "$s" "$r" "$client"
            sample "other_$id" "$s" "$r" "$(awk -v a="$cpub" -v b="$busy" 'BEGIN { v = a - b; printf "%.1f", (v < 0 ? 0 : v) }')"
            sample err "$s" "$r" 0
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
    for s in $(order "$r"); do
        [ -n "${pid_of[$s]:-}" ] || continue # never started
        start_server "$s" "idle-$r" || {
            failed=1
            continue
        }
        out=$BENCH_RAW/idle-$s-r$r.txt
        sleep 0.5 # let start-up allocations settle before the first reading
        if ! timeout 180 taskset -c "$CLIENT_CPU" "$loadgen" idle -p "$srv_port" -c "$IDLE_N" \
            -S "$IDLE_SETTLE_MS" -t 150 "$srv_pid" >"$out" 2>&1; then
            note "idle round $r $s: $(tail -n 2 "$out" | tr '\r\n' '  ')"
            failed=1
            bench_stop "$srv_pid"
            continue
        fi
        line=$(tail -n 1 "$out")
        per=$(kv per_conn_bytes "$line")
        sample idle_kib "$s" "$r" "$(awk -v b="$per" 'BEGIN { printf "%.3f", b / 1024 }')"
        sample idle_rss_before "$s" "$r" "$(awk -v k="$(kv before_kib "$line")" 'BEGIN { printf "%.2f", k / 1024 }')"
        sample idle_rss_after "$s" "$r" "$(awk -v k="$(kv after_kib "$line")" 'BEGIN { printf "%.2f", k / 1024 }')"
        bench_log "  round $r $s: $line"
        bench_stop "$srv_pid"
    done
done

# ---- the figures and how they were made ---------------------------------------
peers=''
for s in $SERVERS; do [ "$s" = tsunagi ] || peers="$peers,$s"; done
peers=${peers#,}
{
    printf 'id\tchart\tlabel\tunit\tpeer\tagg\tbetter\trule\ttarget\n'
    for sc in $SCENARIOS; do
        IFS=$'\t' read -r rule target <<<"$(sc_rule "$sc")"
        printf 'mcpu_%s\tmcpu\tmsgs per server CPU-s, %s\tmsg/CPU-s\t%s\tmedian\thigher\t%s\t%s\n' \
            "$(sc_id "$sc")" "$(sc_label "$sc")" "$peers" "$rule" "$target"
    done
    for sc in $SCENARIOS; do
        printf 'mps_%s\tmps\tmessages/s, %s\tmsg/s\t%s\tmedian\thigher\tnone\t—\n' \
            "$(sc_id "$sc")" "$(sc_label "$sc")" "$peers"
    done
    for sc in $SCENARIOS; do
        printf 'p99_%s\tp99\tp99 latency, %s\tms\t%s\tmedian\tlower\tnone\t—\n' \
            "$(sc_id "$sc")" "$(sc_label "$sc")" "$peers"
    done
    printf 'idle_kib\tidle\tRSS per idle WebSocket connection\tKiB\t%s\tmedian\tlower\tle:1\t≤ 1 KiB\n' "$peers"
    printf 'idle_rss_before\t-\tRSS before the idle connections\tMiB\t%s\tmedian\tlower\tnone\t—\n' "$peers"
    printf 'idle_rss_after\t-\tRSS holding %s idle connections\tMiB\t%s\tmedian\tlower\tnone\t—\n' "$IDLE_N" "$peers"
    for sc in $SCENARIOS; do
        printf 'busy_%s\t-\tserver CPU busy, %s\t%%\t%s\tmedian\tnone\tnone\t—\n' \
            "$(sc_id "$sc")" "$(sc_label "$sc")" "$peers"
    done
    for sc in $SCENARIOS; do
        printf 'client_%s\t-\tload generator CPU busy, %s\t%%\t%s\tmedian\tnone\tnone\t—\n' \
            "$(sc_id "$sc")" "$(sc_label "$sc")" "$peers"
    done
    for sc in $SCENARIOS; do
        printf 'other_%s\t-\tother load on the server core, %s\t%%\t%s\tmedian\tlower\tnone\t—\n' \
            "$(sc_id "$sc")" "$(sc_label "$sc")" "$peers"
    done
    printf 'err\t-\tfailed load generator runs\tcount\t%s\tsum\tlower\teq:0\t0\n' "$peers"
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
problems=''
if [ -s "$notes" ]; then
    problems=$(printf '\n**Problems in this run:**\n\n'; sed 's/^/- /' "$notes")
fi
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
  ${QUIET_PCT} % busy, and runs again (once, at most ${MAX_RETRIES} times in all; ${retries} this time) a run in
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
