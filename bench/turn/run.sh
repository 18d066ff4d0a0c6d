#!/usr/bin/env bash
# bench/turn/run.sh — tsunagi's STUN/TURN side by side with coturn.
#
# Run by bench/run.sh (which sets BENCH_RAW and friends); can be run alone:
#   bench/turn/run.sh            (writes into bench/results/raw/turn/)
# or through the top-level runner, which also writes the README:
#   BENCH_SECTIONS=turn bench/run.sh
#
# Both servers pinned to the server CPU(s) with taskset, with one worker
# thread each (tsunagi --threads 1, coturn --relay-threads 1); the load
# generators (bench/turn/stunflood.c, bench/turn/turnfleet.c, built here) on
# the client CPU(s). Everything on 127.0.0.1, listener ports picked at run
# time. ROUNDS rounds; in each:
#   1. per server, a fresh server alone: IDLE_N allocations (each with a
#      permission and a channel) held at once; (VmRSS after - before) / IDLE_N.
#   2. both servers fresh and up at once, each run against one and then the
#      other (tsunagi first in odd rounds): a Binding flood; Allocate/Refresh(0)
#      cycles; ChannelData echoed by a UDP peer through the relays, closed loop
#      (CLOSED_CLIENTS clients x CLOSED_K in flight) and at fixed rates (FIXED:
#      clients x packets/s each).
# The server's CPU time (all its threads, /proc/PID/task/*/schedstat) is
# read by the load generator over each measured window: the figures to
# compare are work per server CPU-second, since on two cores the load
# generator saturates its own core before the server does.
#
# Output (the interface bench/report.py reads): figures.tsv, charts.tsv,
# samples.tsv, method.md in $BENCH_RAW, plus every raw log beside them.
set -euo pipefail
# The braces make bash read the whole script before running it, so an edit
# to this file during a run cannot change what the run does.
{

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=lib.sh
. "$here/../lib.sh"

# ---- parameters (environment overrides) ----------------------------------
bench_section turn # root, TSUNAGI, BENCH_RAW, SERVER_CPUS, CLIENT_CPUS
TURNSERVER=${TURNSERVER:-/usr/bin/turnserver}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    def_rounds=1 def_duration=2 def_warmup=0.5 def_idle_n=500
else
    def_rounds=3 def_duration=5 def_warmup=1 def_idle_n=2000
fi
ROUNDS=${TURN_ROUNDS:-$def_rounds}
DURATION=${TURN_DURATION:-$def_duration}       # seconds measured per run
WARMUP=${TURN_WARMUP:-$def_warmup}             # seconds of unmeasured load before each
BIND_SOCKS=${TURN_BIND_SOCKS:-8}               # stunflood sockets
BIND_WINDOW=${TURN_BIND_WINDOW:-32}            # Binding requests outstanding per socket
BIND_BATCH=${TURN_BIND_BATCH:-32}              # sendmmsg/recvmmsg batch
ALLOC_SOCKS=${TURN_ALLOC_SOCKS:-64}            # Allocate/Refresh cycles in flight
CLOSED_CLIENTS=${TURN_CLOSED_CLIENTS:-50}      # closed-loop relay clients
CLOSED_K=${TURN_CLOSED_K:-4}                   # ... packets in flight each
FIXED=${TURN_FIXED:-50x1000 500x100}           # fixed-rate runs: clients x packets/s each
PAYLOAD=${TURN_PAYLOAD:-160}                   # ChannelData payload bytes (an Opus frame or so)
IDLE_N=${TURN_IDLE_N:-$def_idle_n}             # allocations held for RSS per allocation
IDLE_SETTLE_MS=${TURN_IDLE_SETTLE_MS:-1000}
# Relay port ranges, the same size, apart (both servers run at once), below
# the kernel's ephemeral ports.
RELAY_PORTS_TSUNAGI=${TURN_RELAY_PORTS_TSUNAGI:-10000-19999}
RELAY_PORTS_COTURN=${TURN_RELAY_PORTS_COTURN:-20000-29999}
# A shared machine: before each run wait until the cores are at most
# QUIET_PCT % busy (QUIET_BUDGET s of waiting in all); redo a run when other
# processes took more than MAX_OTHER % of the server's core during it (at
# most MAX_REDOS redos in all).
QUIET_PCT=${TURN_QUIET_PCT:-15}
QUIET_BUDGET=${TURN_QUIET_BUDGET:-40}
MAX_OTHER=${TURN_MAX_OTHER:-15}
MAX_REDOS=${TURN_MAX_REDOS:-3}
SERVERS=${TURN_SERVERS:-tsunagi coturn}        # for trying one alone
USER_NAME=bench
USER_PASS=secret
REALM=bench

bench_need cc taskset timeout awk pgrep "$BENCH_PY"
[ -x "$TURNSERVER" ] || bench_die "coturn not found at $TURNSERVER (run: scripts/deps.sh bench)"
[ -x "$TSUNAGI" ] || bench_die "tsunagi binary not found at $TSUNAGI (run: make build)"
for range in "$RELAY_PORTS_TSUNAGI" "$RELAY_PORTS_COTURN"; do
    [ $((${range#*-} - ${range%-*} + 1)) -ge $((IDLE_N + 1000)) ] ||
        bench_die "relay port range $range is too small for IDLE_N=$IDLE_N"
done
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$((IDLE_N + 500))" -le "$nofile" ] ||
    bench_die "IDLE_N=$IDLE_N needs a file limit above $((IDLE_N + 500)); ulimit -Hn is $nofile"

bench_init
bench_lock
bench_raw_reset '*.txt' '*.log' '*.out' '*.tsv' '*.md' 'chart-*'
samples=$BENCH_RAW/samples.tsv
# Every sample first goes to all-samples.tsv with the pair (phase and round)
# it belongs to and how noisy that pair was; samples.tsv is chosen from it
# at the end (see "clean pairs" below).
all_samples=$BENCH_RAW/all-samples.tsv
printf 'id\tside\tround\tvalue\tpair\tnoise\n' >"$all_samples"
server_cpu_list=$(bench_cpu_expand "$SERVER_CPUS")
client_cpu_list=$(bench_cpu_expand "$CLIENT_CPUS")
all_cpu_list=$(bench_cpu_expand "$SERVER_CPUS,$CLIENT_CPUS")
bench_quiet_left=$QUIET_BUDGET
redos_left=$MAX_REDOS
phase_failures=0

tools=$bench_tmp/tools
mkdir -p "$tools"
for t in stunflood turnfleet; do
    cc -O2 -Wall -Wextra -o "$tools/$t" "$here/$t.c" -lcrypto -lz ||
        bench_die "could not build bench/turn/$t.c (needs libssl-dev, zlib1g-dev)"
done
stunflood=$tools/stunflood
turnfleet=$tools/turnfleet

# ---- servers ---------------------------------------------------------------
# start_server NAME TAG: a fresh server on a fresh port; sets srv_port and
# srv_pid (the server the phases below measure). TAG names the log file.
srv_port='' srv_pid=''

# The kernel picks a free UDP port on 127.0.0.1; the server then binds UDP
# and TCP on it (a race with another process shows up as a failed start).
free_udp_port() {
    "$BENCH_PY" -c '
import socket
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        t.close(); u.close()'
}

# Wait (at most ~10 s) until the server answers a STUN Binding request.
wait_stun() {
    local pid=$1 port=$2 log=$3 name=$4
    bench_ready_or_die "$pid" "$log" "$name" \
        "did not answer a STUN Binding request on 127.0.0.1:$port within 10 s" 50 0.1 \
        "$stunflood" -s "127.0.0.1:$port" -n 1 -w 1 -d 0.1 -W 0
}

start_tsunagi() {
    local tag=$1 log cmd
    srv_port=$(free_udp_port)
    log=$BENCH_RAW/tsunagi-$tag.log
    # The whole load comes from one address: tsunagi's per-address request
    # limit (--turn-request-rate) would cut it, and coturn has none.
    # shellcheck disable=SC2206  # BENCH_TSUNAGI_ARGS is a word list on purpose
    cmd=(taskset -c "$SERVER_CPUS" "$TSUNAGI" --turn "127.0.0.1:$srv_port" --http 127.0.0.1:0
        --threads 1 --relay-ip 127.0.0.1 --allow-loopback-peers --turn-request-rate 0
        --user "$USER_NAME:$USER_PASS" --realm "$REALM"
        --min-port "${RELAY_PORTS_TSUNAGI%-*}" --max-port "${RELAY_PORTS_TSUNAGI#*-}"
        --drain-timeout 1 --log-level warn
        ${BENCH_TSUNAGI_ARGS:-})
    printf '+ %s\n' "${cmd[*]}" >"$log"
    "${cmd[@]}" >>"$log" 2>&1 &
    srv_pid=$!
    bench_track "$srv_pid"
    wait_stun "$srv_pid" "$srv_port" "$log" tsunagi
}

start_coturn() {
    local tag=$1 log dir cmd
    srv_port=$(free_udp_port)
    dir=$bench_tmp/coturn-$tag
    mkdir -p "$dir"
    log=$BENCH_RAW/coturn-$tag.log
    # -n: no config file. One relay thread; no TLS/DTLS, CLI, RFC 5780; a
    # private (empty) SQLite user DB; the static user of the command line.
    # shellcheck disable=SC2206  # BENCH_COTURN_ARGS is a word list on purpose
    cmd=(taskset -c "$SERVER_CPUS" "$TURNSERVER" -n --listening-ip=127.0.0.1
        --listening-port="$srv_port" --relay-ip=127.0.0.1 --relay-threads=1
        --lt-cred-mech --user="$USER_NAME:$USER_PASS" --realm="$REALM"
        --allow-loopback-peers --no-cli --no-tls --no-dtls --no-rfc5780
        --min-port="${RELAY_PORTS_COTURN%-*}" --max-port="${RELAY_PORTS_COTURN#*-}"
        --userdb="$dir/turndb" --pidfile="$dir/turnserver.pid"
        --log-file="$log" --simple-log --no-stdout-log
        ${BENCH_COTURN_ARGS:-})
    printf '+ %s\n' "${cmd[*]}" >"$log.out"
    "${cmd[@]}" >>"$log.out" 2>&1 &
    srv_pid=$!
    bench_track "$srv_pid"
    wait_stun "$srv_pid" "$srv_port" "$log.out" coturn
}

start_server() {
    case $1 in
    tsunagi) start_tsunagi "$2" ;;
    coturn) start_coturn "$2" ;;
    esac
    sleep 0.3 # let start-up work finish before anything is measured
}

stop_server() {
    bench_stop "$srv_pid"
}

side_of() {
    if [ "$1" = tsunagi ]; then echo tsunagi; else echo peer; fi
}

# Servers in the order for round R: tsunagi first in odd rounds; only those
# of SERVERS.
order() {
    local s out=''
    for s in $(bench_order "$1" "tsunagi coturn"); do
        case " $SERVERS " in *" $s "*) out="$out $s" ;; esac
    done
    echo "$out"
}

# sample ID SIDE ROUND VALUE: into the current pair's attempt.
sample() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$pair_file"
}

# kv FILE KEY: the value of key=value in the tool's output; empty if none.
kv() {
    bench_kv "$2" "$(cat "$1")"
}

# CPU ticks (user + system) of this shell's children that have been waited
# for: the load generators run so far.
children_ticks() {
    sed 's/^.*) //' "/proc/$$/stat" | awk '{ print $14 + $15 }'
}

# The ksoftirqd threads of the CPUs named: the packets they handle are ours.
ksoftirqd_pids() {
    local n
    for n in "$@"; do
        pgrep -x "ksoftirqd/$n" || true
    done | tr '\n' ' '
}

# other_pct BUSY_TOTAL_BEFORE BUSY_TOTAL_AFTER OWN_TICKS: % of the cores
# that processes other than ours used in between.
other_pct() {
    awk -v a="$1" -v b="$2" -v own="$3" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; o = y[1] - x[1] - own
        if (o < 0) o = 0
        printf "%.1f", (t > 0 ? 100 * o / t : 0) }'
}

# run_tool NAME OUT CMD...: quiet wait, then CMD on the client CPUs, its
# output in OUT; sets r_other and r_cli_other (% of the server core / of
# the client core that other processes used meanwhile) and raises
# pair_noise to the larger. A failure is logged and counted.
run_tool() {
    local name=$1 out=$2 rc k0 k1 c0 c1 l0 l1 g0 g1
    shift 2
    bench_quiet_budget "$all_cpu_list" "$QUIET_PCT"
    # The cores' BUSY counts interrupt, softirq and steal time (bench_core_ticks
    # -a): the hypervisor running someone else is as bad for a run as another
    # process.
    # shellcheck disable=SC2086  # PID lists
    {
        k0=$(bench_core_ticks -a $server_cpu_list)
        l0=$(bench_core_ticks -a $client_cpu_list)
        c0=$(bench_cpu_ticks "$srv_pid" $srv_softirqd)
        g0=$(($(children_ticks) + $(bench_cpu_ticks $cli_softirqd)))
        rc=0
        timeout 120 taskset -c "$CLIENT_CPUS" "$@" >"$out" 2>&1 || rc=$?
        g1=$(($(children_ticks) + $(bench_cpu_ticks $cli_softirqd)))
        c1=$(bench_cpu_ticks "$srv_pid" $srv_softirqd)
        l1=$(bench_core_ticks -a $client_cpu_list)
        k1=$(bench_core_ticks -a $server_cpu_list)
    }
    r_other=$(other_pct "$k0" "$k1" $((c1 - c0)))
    r_cli_other=$(other_pct "$l0" "$l1" $((g1 - g0)))
    pair_noise=$(awk -v a="$pair_noise" -v b="$r_other" -v c="$r_cli_other" \
        'BEGIN { m = a; if (b > m) m = b; if (c > m) m = c; print m }')
    pair_outs+=("$out")
    bench_alive "$srv_pid" || bench_die "$name: the server died (see $out and its log)"
    if [ "$rc" -ne 0 ]; then
        phase_failures=$((phase_failures + 1))
        bench_log "  $name: load generator exited $rc: $(head -c 600 "$out")"
    fi
    return 0
}

# run_pair PHASE R ARGS...: phase_PHASE against each server in turn (the
# order of round R). When other processes took more than MAX_OTHER % of the
# server core during either run, the pair is run again (at most MAX_REDOS
# times in the whole section); the samples of the attempt kept go to
# all-samples.tsv with its noise, a discarded attempt's output files get
# -noisy-N in their names.
run_pair() {
    local phase=$1 r=$2 s f
    shift 2
    while :; do
        pair_noise=0
        pair_outs=()
        : >"$pair_file"
        for s in $(order "$r"); do
            use_server "$s"
            "phase_$phase" "$s" "$r" "$@"
        done
        awk -v o="$pair_noise" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m) }' || break
        [ "$redos_left" -gt 0 ] || break
        redos_left=$((redos_left - 1))
        bench_log "  round $r $phase ${1:-}: other processes took up to $pair_noise% of a core; running the pair again ($redos_left redo(s) left)"
        for f in "${pair_outs[@]}"; do
            mv "$f" "${f%.txt}-noisy-$redos_left.txt"
        done
    done
    awk -v pair="$phase${1:-}" -v n="$pair_noise" 'NF { print $0 "\t" pair "\t" n }' \
        "$pair_file" >>"$all_samples"
}

# ---- the phases ----------------------------------------------------------------

phase_idle() {
    local s=$1 r=$2 side out v
    side=$(side_of "$s")
    out=$BENCH_RAW/idle-$s-r$r.txt
    a=(-s "127.0.0.1:$srv_port" -u "$USER_NAME" -p "$USER_PASS")
    run_tool "round $r $s idle" "$out" "$turnfleet" "${a[@]}" -m idle -n "$IDLE_N" \
        -S "$IDLE_SETTLE_MS" -P "$srv_pid" -T 60
    v=$(kv "$out" bytes_per_alloc)
    if [ -n "$v" ] && [ "$(kv "$out" ready)" = "$IDLE_N" ]; then
        sample rss_alloc "$side" "$r" "$(awk -v b="$v" 'BEGIN { printf "%.3f", b / 1024 }')"
        sample rss_before "$side" "$r" "$(awk -v k="$(kv "$out" rss_before_kib)" 'BEGIN { printf "%.2f", k / 1024 }')"
    fi
    bench_log "  round $r $s idle: $(cat "$out")"
}

# shellcheck disable=SC2317  # called through run_pair
phase_bind() {
    local s=$1 r=$2 side out v
    side=$(side_of "$s")
    out=$BENCH_RAW/bind-$s-r$r.txt
    run_tool "round $r $s bind" "$out" "$stunflood" -s "127.0.0.1:$srv_port" -n "$BIND_SOCKS" \
        -w "$BIND_WINDOW" -b "$BIND_BATCH" -d "$DURATION" -W "$WARMUP" -P "$srv_pid" -f
    v=$(kv "$out" answers_per_cpu_s)
    if [ -n "$v" ] && [ "$(kv "$out" bad)" = 0 ]; then
        sample bind_cpu_s "$side" "$r" "$v"
        sample bind_rps "$side" "$r" "$(kv "$out" answers_per_s)"
        sample bind_loss "$side" "$r" "$(kv "$out" loss_pct)"
        sample bind_srv_cpu "$side" "$r" "$(kv "$out" server_cpu_pct)"
        sample bind_cli_cpu "$side" "$r" "$(kv "$out" client_cpu_pct)"
        sample bind_other "$side" "$r" "$r_other"
        sample bind_cli_other "$side" "$r" "$r_cli_other"
    fi
    bench_log "  round $r $s bind: $(cat "$out")"
}

# shellcheck disable=SC2317  # called through run_pair
phase_alloc() {
    local s=$1 r=$2 side out v
    side=$(side_of "$s")
    out=$BENCH_RAW/alloc-$s-r$r.txt
    a=(-s "127.0.0.1:$srv_port" -u "$USER_NAME" -p "$USER_PASS")
    run_tool "round $r $s alloc" "$out" "$turnfleet" "${a[@]}" -m alloc -n "$ALLOC_SOCKS" \
        -d "$DURATION" -W "$WARMUP" -P "$srv_pid"
    v=$(kv "$out" allocations_per_cpu_s)
    if [ -n "$v" ] && [ "$(kv "$out" failed)" = 0 ]; then
        sample alloc_cpu_s "$side" "$r" "$v"
        sample alloc_rps "$side" "$r" "$(kv "$out" allocations_per_s)"
        sample alloc_srv_cpu "$side" "$r" "$(kv "$out" server_cpu_pct)"
        sample alloc_other "$side" "$r" "$r_other"
        sample alloc_cli_other "$side" "$r" "$r_cli_other"
    fi
    bench_log "  round $r $s alloc: $(cat "$out")"
}

# phase_relay S R ID CLIENTS (k K | rate R)
# shellcheck disable=SC2317  # called through run_pair
phase_relay() {
    local s=$1 r=$2 id=$3 n=$4 how=$5 x=$6 side out v flag
    side=$(side_of "$s")
    out=$BENCH_RAW/relay-$id-$s-r$r.txt
    a=(-s "127.0.0.1:$srv_port" -u "$USER_NAME" -p "$USER_PASS")
    if [ "$how" = k ]; then flag=-k; else flag=-R; fi
    run_tool "round $r $s relay $id" "$out" "$turnfleet" "${a[@]}" -m relay -n "$n" "$flag" "$x" \
        -l "$PAYLOAD" -d "$DURATION" -W "$WARMUP" -P "$srv_pid" -T 60
    # A load generator that fell more than 100 ms behind its schedule did not
    # offer the rate asked for: the pair counts as noisy.
    if [ "$(kv "$out" skipped)" != 0 ]; then
        pair_noise=100
    fi
    v=$(kv "$out" relayed_per_cpu_s)
    if [ -n "$v" ] && [ "$(kv "$out" ready)" = "$n" ] && [ "$(kv "$out" bad_data)" = 0 ]; then
        sample "${id}_cpu_s" "$side" "$r" "$v"
        sample "${id}_pps" "$side" "$r" "$(kv "$out" relayed_pps)"
        sample "${id}_p99" "$side" "$r" "$(kv "$out" rtt_p99_us)"
        sample "${id}_p50" "$side" "$r" "$(kv "$out" rtt_p50_us)"
        sample "${id}_loss" "$side" "$r" "$(kv "$out" loss_pct)"
        sample "${id}_srv_cpu" "$side" "$r" "$(kv "$out" server_cpu_pct)"
        sample "${id}_cli_cpu" "$side" "$r" "$(kv "$out" client_cpu_pct)"
        sample "${id}_other" "$side" "$r" "$r_other"
        sample "${id}_cli_other" "$side" "$r" "$r_cli_other"
    fi
    bench_log "  round $r $s relay $id: $(cat "$out")"
}

coturn_version=$("$TURNSERVER" --version 2>/dev/null | head -n 1 || true)
[ -n "$coturn_version" ] || coturn_version=$(dpkg-query -W -f='${Version}' coturn 2>/dev/null || echo unknown)
bench_log "tsunagi vs coturn $coturn_version: $ROUNDS round(s), ${DURATION} s runs after ${WARMUP} s warm-up, server CPU $SERVER_CPUS, clients CPU $CLIENT_CPUS"

# Both main servers run at once (the idle one costs nothing) so that each
# run of one is right next to the same run of the other: on a shared
# machine the two of a pair see the same neighbours.
declare -A port_of pid_of
use_server() {
    srv_port=${port_of[$1]}
    srv_pid=${pid_of[$1]}
}

# shellcheck disable=SC2086
srv_softirqd=$(ksoftirqd_pids $server_cpu_list)
# shellcheck disable=SC2086
cli_softirqd=$(ksoftirqd_pids $client_cpu_list)
pair_file=$bench_tmp/pair.tsv
pair_noise=0
pair_outs=()
for ((r = 1; r <= ROUNDS; r++)); do
    # Memory: a fresh server each, alone; never run again on the same server
    # (the freed allocations' memory would be reused), and not noise-sensitive.
    for s in $(order "$r"); do
        : >"$pair_file"
        start_server "$s" "idle-$r"
        phase_idle "$s" "$r"
        stop_server
        awk 'NF { print $0 "\tidle\t0" }' "$pair_file" >>"$all_samples"
    done

    for s in $(order "$r"); do
        start_server "$s" "main-$r"
        port_of[$s]=$srv_port
        pid_of[$s]=$srv_pid
    done
    run_pair bind "$r"
    run_pair alloc "$r"
    run_pair relay "$r" closed "$CLOSED_CLIENTS" k "$CLOSED_K"
    for f in $FIXED; do
        run_pair relay "$r" "fixed$f" "${f%x*}" rate "${f#*x}"
    done
    for s in $(order "$r"); do
        use_server "$s"
        stop_server
    done
done

# ---- clean pairs ---------------------------------------------------------------
# For each phase, the rounds whose pair ran clean (other processes at most
# MAX_OTHER % of either core during both runs) give the figures; when no
# round of a phase was clean, its least noisy round alone. The noise figures
# (*_other) keep every round.
"$BENCH_PY" - "$all_samples" "$samples" "$MAX_OTHER" <<'EOF'
import csv, sys
src, dst, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(src, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
noise = {(row["pair"], row["round"]): float(row["noise"]) for row in rows}
keep = set()
for pair in {p for p, _ in noise}:
    rounds = {r: n for (p, r), n in noise.items() if p == pair}
    clean = {r for r, n in rounds.items() if n <= limit}
    keep |= {(pair, r) for r in (clean or {min(rounds, key=rounds.get)})}
with open(dst, "w", encoding="utf-8") as out:
    out.write("id\tside\tround\tvalue\n")
    for row in rows:
        if row["id"].endswith("_other") or (row["pair"], row["round"]) in keep:
            out.write(f"{row['id']}\t{row['side']}\t{row['round']}\t{row['value']}\n")
EOF
dropped=$(($(wc -l <"$all_samples") - $(wc -l <"$samples")))
bench_log "clean pairs: $dropped sample(s) of noisy rounds left out of the figures (all in all-samples.tsv)"

# ---- the figures and how they were made ---------------------------------------
# Labels of charted figures stay short: they are the charts' x labels.
fixed_label() { printf '%s clients × %s/s' "${1%x*}" "${1#*x}"; }
{
    bench_fig_head
    row() { bench_fig_row "$1" "$2" "$3" "$4" coturn median "$5" "$6" "$7"; }
    row bind_cpu_s stun 'Binding requests answered per server CPU-second' /CPU-s higher ge_x:peer:2 '≥ 2× coturn'
    row alloc_cpu_s alloc 'allocations per server CPU-second' /CPU-s higher ge_x:peer:2 '≥ 2× coturn'
    row closed_cpu_s relay "relayed packets, closed loop ${CLOSED_CLIENTS} × ${CLOSED_K}" /CPU-s higher ge_x:peer:1.5 '≥ 1.5× coturn'
    for f in $FIXED; do
        row "fixed${f}_p99" p99 "p99 round trip, $(fixed_label "$f")" µs lower le_peer '≤ coturn'
        row "fixed${f}_loss" - "loss, $(fixed_label "$f")" % lower le_peer '≤ coturn'
    done
    row rss_alloc mem 'RSS per allocation (with a permission and a channel)' KiB lower le_peer '≤ coturn'
    for f in $FIXED; do
        row "fixed${f}_cpu_s" relay "relayed packets, $(fixed_label "$f")" /CPU-s higher none —
    done
    row bind_rps - 'Binding requests answered per second' /s higher none —
    row alloc_rps - 'allocations per second' /s higher none —
    row closed_pps - "relayed packets per second, closed loop ${CLOSED_CLIENTS} × ${CLOSED_K}" /s higher none —
    row closed_p99 p99 "p99 round trip, closed loop ${CLOSED_CLIENTS} × ${CLOSED_K}" µs lower none —
    row closed_loss - 'loss, closed loop' % lower none —
    for f in $FIXED; do
        row "fixed${f}_pps" - "relayed packets per second, $(fixed_label "$f")" /s higher none —
        row "fixed${f}_p50" - "median round trip, $(fixed_label "$f")" µs lower none —
    done
    row bind_loss - 'Binding requests unanswered' % lower none —
    row bind_srv_cpu - 'server CPU, Binding flood' % none none —
    row alloc_srv_cpu - 'server CPU, Allocate/Refresh cycles' % none none —
    row closed_srv_cpu - 'server CPU, closed-loop relay' % none none —
    for f in $FIXED; do
        row "fixed${f}_srv_cpu" - "server CPU, $(fixed_label "$f")" % none none —
    done
    row bind_cli_cpu - 'load generator CPU, Binding flood' % none none —
    row closed_cli_cpu - 'load generator CPU, closed-loop relay' % none none —
    for f in $FIXED; do
        row "fixed${f}_cli_cpu" - "load generator CPU, $(fixed_label "$f")" % none none —
    done
    row rss_before - 'RSS of a fresh server' MiB lower none —
    row bind_other - 'other processes on the server core, Binding flood' % none none —
    row alloc_other - 'other processes on the server core, allocations' % none none —
    row closed_other - 'other processes on the server core, closed-loop relay' % none none —
    for f in $FIXED; do
        row "fixed${f}_other" - "other processes on the server core, $(fixed_label "$f")" % none none —
    done
    row bind_cli_other - 'other processes on the client core, Binding flood' % none none —
    row alloc_cli_other - 'other processes on the client core, allocations' % none none —
    row closed_cli_other - 'other processes on the client core, closed-loop relay' % none none —
    for f in $FIXED; do
        row "fixed${f}_cli_other" - "other processes on the client core, $(fixed_label "$f")" % none none —
    done
} >"$BENCH_RAW/figures.tsv"

{
    printf 'id\ttitle\tylabel\n'
    printf 'stun\tSTUN Binding requests answered per server CPU-second (target ≥ 2× coturn)\tper CPU-second\n'
    printf 'alloc\tTURN allocations (Allocate 401 + Allocate + Refresh 0) per server CPU-second (target ≥ 2× coturn)\tper CPU-second\n'
    printf 'relay\tChannelData relayed (both ways) per server CPU-second (closed loop: target ≥ 1.5× coturn)\tpackets per CPU-second\n'
    printf 'p99\tRound trip client → relay → peer → relay → client, p99 (fixed rates: target ≤ coturn)\tµs\n'
    printf 'mem\tRSS per allocation (%s allocations, each with a permission and a channel)\tKiB\n' "$IDLE_N"
} >"$BENCH_RAW/charts.tsv"

quick=''
[ "${BENCH_QUICK:-0}" = 1 ] && quick=' **Quick mode (BENCH_QUICK=1): too short to quote.**'
fixed_text=$(for f in $FIXED; do printf '%s clients × %s packets/s, ' "${f%x*}" "${f#*x}"; done)
cat >"$BENCH_RAW/method.md" <<EOF
STUN and TURN over UDP: tsunagi against coturn ${coturn_version} (Debian package), both
with one worker thread (\`--threads 1\` / \`--relay-threads=1\`; coturn's listener, auth
and other helper threads run too and are counted), the same static long-term
credential user and realm, no TLS/DTLS, relays on 127.0.0.1 (ports ${RELAY_PORTS_TSUNAGI} / ${RELAY_PORTS_COTURN}),
\`--allow-loopback-peers\`, the servers' log at warning level / coturn's default
log in a file. The exact command lines head \`raw/turn/tsunagi-*.log\` and \`raw/turn/coturn-*.log.out\`.${quick}

- **Pinning.** Both servers on CPU ${SERVER_CPUS} (\`taskset\`), the load generators on
  CPU ${CLIENT_CPUS}. ${ROUNDS} rounds; in each, both servers start fresh and every run is made
  against one and right after against the other (tsunagi first in odd rounds),
  so that the two of a pair share the machine's conditions. Figures are medians
  over rounds.
- **Work per server CPU-second** is the figure to compare: the load generator
  reads the server's CPU time (all threads, user + system, from
  \`/proc/PID/task/*/schedstat\`) at the start and end of each ${DURATION} s window
  (after ${WARMUP} s of warm-up) and divides the work done by it. With two cores the
  load generator's own core is the limit before the server's. Over loopback a
  sender's system time includes the kernel's delivery of its datagrams to the
  receiving socket (softirq work in its context, about a quarter of tsunagi's
  time): both servers pay it for every packet they send.
- **Binding** (\`bench/turn/stunflood.c\`): ${BIND_SOCKS} sockets, each keeping ${BIND_WINDOW} Binding
  requests (RFC 5389, FINGERPRINT) outstanding, sent and read in batches of ${BIND_BATCH}
  (\`sendmmsg\`/\`recvmmsg\`); every answer's XOR-MAPPED-ADDRESS and FINGERPRINT checked.
- **Allocations** (\`bench/turn/turnfleet.c -m alloc\`): ${ALLOC_SOCKS} cycles in flight, each
  Allocate → 401 → Allocate with MESSAGE-INTEGRITY (key MD5(user:realm:pass)) →
  Refresh LIFETIME 0, every cycle from a new socket (a new 5-tuple: source
  addresses 127.x.y.z, since coturn refuses a 5-tuple it has just freed for a while).
- **Relay** (\`turnfleet -m relay\`): each client allocates, CreatePermission and
  ChannelBind to a UDP echo peer in the same process, then sends ChannelData
  of ${PAYLOAD} payload bytes; the peer echoes each datagram to the relay address it
  came from. Closed loop: ${CLOSED_CLIENTS} clients × ${CLOSED_K} packets in flight. Fixed rate:
  ${fixed_text%, } (sends spread evenly). *Relayed packets* counts
  the server's forwarding both ways (arrivals at the peer + at the clients); the
  round trip is client → server → peer → server → client, timed by a timestamp
  in the payload; *loss* is the share of packets sent in the window that did
  not come back within 300 ms after it.
- **Memory.** A fresh server; ${IDLE_N} clients each allocate, create a permission and
  bind a channel; VmRSS ${IDLE_SETTLE_MS} ms after the last is ready minus VmRSS before,
  over ${IDLE_N}. Kernel socket memory is not in RSS and not counted.
- **Noise.** A shared machine: before each run the benchmark waits until CPUs
  ${SERVER_CPUS},${CLIENT_CPUS} are at most ${QUIET_PCT} % busy (at most ${QUIET_BUDGET} s of waiting in all), and runs a
  pair again when other processes (or the hypervisor: steal time) took more than
  ${MAX_OTHER} % of CPU ${SERVER_CPUS} or of CPU ${CLIENT_CPUS} during either of its runs (at most ${MAX_REDOS} times; this run: $((MAX_REDOS - redos_left)) redo(s), $((QUIET_BUDGET - bench_quiet_left)) s of waiting). A
  fixed-rate pair also counts as noisy when the load generator fell more than
  100 ms behind its schedule. A phase's figures then come from its clean rounds only, or from its least noisy
  round when none was clean (this run: ${dropped} sample(s) left out; every sample
  is in \`raw/turn/all-samples.tsv\`). "Other processes on the server/client core"
  keep every round: read a figure whose rounds were all noisy with care.
EOF

if [ "$phase_failures" -gt 0 ]; then
    bench_die "$phase_failures load-generator run(s) failed; see the logs above and $BENCH_RAW"
fi
bench_log "done; raw logs in $BENCH_RAW"
exit
}
