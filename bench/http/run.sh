#!/usr/bin/env bash
# bench/http/run.sh — tsunagi's HTTP /healthz side by side with nginx.
#
# Run by bench/run.sh (which sets BENCH_RAW and friends); can be run alone:
#   bench/http/run.sh            (writes into bench/results/raw/http/)
#
# Two phases, each server pinned to the same core(s), the load generator to
# the other(s), both on 127.0.0.1:
#   1. idle memory: a fresh server, IDLE_N keep-alive connections that each did
#      one GET /healthz and then sit idle; (RSS after - RSS before) / IDLE_N.
#      IDLE_ROUNDS fresh starts per server, alternating, median.
#   2. throughput: both servers up, wrk --latency against each in turn,
#      ROUNDS rounds x each connection count, alternating which goes first;
#      medians of requests/s and p99 latency.
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
bench_section http # root, TSUNAGI, BENCH_RAW, SERVER_CPUS, CLIENT_CPUS
NGINX=${NGINX:-/usr/sbin/nginx}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    def_rounds=1 def_duration=3 def_idle_n=2000 def_idle_rounds=1 def_warmup=1
else
    def_rounds=5 def_duration=10 def_idle_n=10000 def_idle_rounds=3 def_warmup=2
fi
ROUNDS=${HTTP_ROUNDS:-$def_rounds}           # throughput rounds
DURATION=${HTTP_DURATION:-$def_duration}     # seconds per wrk run
WARMUP=${HTTP_WARMUP:-$def_warmup}           # seconds of unmeasured wrk per server and -c
CONNS=${HTTP_CONNS:-50 200}                  # wrk -c values
IDLE_N=${HTTP_IDLE_N:-$def_idle_n}           # idle keep-alive connections
IDLE_ROUNDS=${HTTP_IDLE_ROUNDS:-$def_idle_rounds}
IDLE_SETTLE_MS=${HTTP_IDLE_SETTLE_MS:-1000}  # hold time before the second RSS reading
# A shared machine: before each wrk run wait until the cores are at most
# QUIET_PCT % busy (QUIET_BUDGET s of waiting in all); redo a run when other
# processes took more than MAX_OTHER % of the server's core during it (at most
# MAX_REDOS redos in all). Both budgets keep the section's time bounded.
QUIET_PCT=${HTTP_QUIET_PCT:-15}
QUIET_BUDGET=${HTTP_QUIET_BUDGET:-30}
MAX_OTHER=${HTTP_MAX_OTHER:-15}
MAX_REDOS=${HTTP_MAX_REDOS:-3}
THREADS=$(bench_cpu_count "$SERVER_CPUS")    # tsunagi --threads = nginx worker_processes
WRK_THREADS=$(bench_cpu_count "$CLIENT_CPUS")

bench_need wrk cc taskset timeout awk "$BENCH_PY"
[ -x "$NGINX" ] || bench_die "nginx not found at $NGINX (run: scripts/deps.sh bench)"
[ -x "$TSUNAGI" ] || bench_die "tsunagi binary not found at $TSUNAGI (run: make build)"
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] || [ "$((IDLE_N + 500))" -le "$nofile" ] ||
    bench_die "IDLE_N=$IDLE_N needs a file limit above $((IDLE_N + 500)); ulimit -n is $nofile"

bench_init
bench_lock
# Only what this script writes (an earlier bench/run.sh kept its log in here).
bench_raw_reset '*.txt' 'tsunagi-*.log' 'nginx-*.log' '*.tsv' '*.md' nginx.conf 'chart-*'
bench_samples_init
clk_tck=$(getconf CLK_TCK)
server_cpu_list=$(bench_cpu_expand "$SERVER_CPUS")
all_cpu_list=$(bench_cpu_expand "$SERVER_CPUS,$CLIENT_CPUS")
bench_quiet_left=$QUIET_BUDGET
redos_left=$MAX_REDOS

idleconn=$bench_tmp/idleconn
cc -O2 -Wall -Wextra -o "$idleconn" "$here/idleconn.c" || bench_die "could not build bench/http/idleconn.c"

# ---- servers ---------------------------------------------------------------
# start_server NAME TAG: starts tsunagi or nginx on a fresh port and sets
# srv_port, srv_pid (the process started) and srv_all (it plus its workers).
# TAG names the log files.
srv_port='' srv_pid='' srv_all=''

start_tsunagi() {
    local tag=$1 turn_port log
    srv_port=$(bench_free_port)
    turn_port=$(bench_free_port)
    log=$BENCH_RAW/tsunagi-$tag.log
    # shellcheck disable=SC2086  # BENCH_TSUNAGI_ARGS is a word list on purpose
    taskset -c "$SERVER_CPUS" "$TSUNAGI" --http "127.0.0.1:$srv_port" \
        --turn "127.0.0.1:$turn_port" --threads "$THREADS" --log-level warn \
        ${BENCH_TSUNAGI_ARGS:-} >"$log" 2>&1 &
    srv_pid=$!
    bench_track "$srv_pid"
    bench_wait_http "$srv_pid" "$srv_port" /healthz 'ok\n' "$log" tsunagi
    srv_all=$srv_pid
}

start_nginx() {
    local tag=$1 prefix log conf i kids
    srv_port=$(bench_free_port)
    prefix=$bench_tmp/nginx-$tag
    mkdir -p "$prefix"
    conf=$prefix/nginx.conf
    sed -e "s|@WORKERS@|$THREADS|" -e "s|@PORT@|$srv_port|" -e "s|@PREFIX@|$prefix|g" \
        -e "s|@WORKER_CONNECTIONS@|$((IDLE_N + 1024))|" -e "s|@NOFILE@|$((IDLE_N + 2048))|" \
        "$here/nginx.conf.in" >"$conf"
    cp "$conf" "$BENCH_RAW/nginx.conf"
    log=$BENCH_RAW/nginx-$tag.log
    taskset -c "$SERVER_CPUS" "$NGINX" -c "$conf" -p "$prefix" -g 'daemon off;' >"$log" 2>&1 &
    srv_pid=$!
    bench_track "$srv_pid"
    bench_wait_http "$srv_pid" "$srv_port" /healthz 'ok\n' "$log" nginx
    for ((i = 0; i < 50; i++)); do
        kids=$(bench_children "$srv_pid" | tr '\n' ' ')
        [ "$(echo "$kids" | wc -w)" -ge "$THREADS" ] && break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    [ "$(echo $kids | wc -w)" -ge "$THREADS" ] || bench_die "nginx did not start $THREADS worker(s)"
    # shellcheck disable=SC2086
    bench_track $kids
    srv_all="$srv_pid $kids"
}

start_server() {
    case $1 in
    tsunagi) start_tsunagi "$2" ;;
    nginx) start_nginx "$2" ;;
    esac
}

# The process started first (an nginx master stops its own workers), then
# whatever is left.
stop_server() {
    bench_stop "$srv_pid"
    # shellcheck disable=SC2086
    bench_stop $srv_all
}

side_of() {
    if [ "$1" = tsunagi ]; then echo tsunagi; else echo peer; fi
}

# Servers in the order for round R: tsunagi first in odd rounds.
order() {
    bench_order "$1" "tsunagi nginx"
}

# ---- phase 0: what each server answers, for the record ----------------------
for s in tsunagi nginx; do
    start_server "$s" probe
    bench_http_check "$srv_port" /healthz 'ok\n' "$BENCH_RAW/response-$s.txt" ||
        bench_die "$s: GET /healthz is not 200 with body ok"
    stop_server
done

# ---- phase 1: RSS per idle keep-alive connection ----------------------------
bench_log "idle memory: $IDLE_N keep-alive connections, $IDLE_ROUNDS fresh start(s) per server"
for ((r = 1; r <= IDLE_ROUNDS; r++)); do
    for s in $(order "$r"); do
        start_server "$s" "idle-$r"
        out=$BENCH_RAW/idle-$s-r$r.txt
        sleep 0.5 # let start-up allocations finish before the first reading
        # shellcheck disable=SC2086
        if ! timeout 120 taskset -c "$CLIENT_CPUS" "$idleconn" -p "$srv_port" -n "$IDLE_N" \
            -s "$IDLE_SETTLE_MS" -t 90 $srv_all >"$out" 2>&1; then
            cat "$out" >&2
            bench_die "$s: idle-connection run failed (see $out)"
        fi
        bench_alive "$srv_pid" || bench_die "$s died during the idle-connection run"
        line=$(cat "$out")
        per=$(echo "$line" | sed -n 's/.*per_conn_bytes=\([0-9.-]*\).*/\1/p')
        after=$(echo "$line" | sed -n 's/.*after_kib=\([0-9-]*\).*/\1/p')
        before=$(echo "$line" | sed -n 's/.*before_kib=\([0-9-]*\).*/\1/p')
        [ -n "$per" ] || bench_die "$s: cannot read idleconn output: $line"
        side=$(side_of "$s")
        bench_sample idle_kib "$side" "$r" "$(awk -v b="$per" 'BEGIN { printf "%.3f", b / 1024 }')"
        bench_sample idle_rss_before "$side" "$r" "$(awk -v k="$before" 'BEGIN { printf "%.2f", k / 1024 }')"
        bench_sample idle_rss_after "$side" "$r" "$(awk -v k="$after" 'BEGIN { printf "%.2f", k / 1024 }')"
        bench_log "  round $r $s: $line"
        stop_server
    done
done

# ---- phase 2: throughput and latency with wrk --------------------------------
# wrk_parse FILE → "rps p99_ms errors" (errors: socket errors + non-2xx/3xx).
wrk_parse() {
    awk '
    function ms(v) {
        if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
        if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
        if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
        return v + 0
    }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" { p99 = ms($2) }
    /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { err += $NF }
    END {
        if (rps == "" || p99 == "") exit 1
        printf "%s %.3f %d\n", rps, p99, err
    }' "$1"
}

# run_wrk SERVER PORT CONNS SECONDS LOGFILE PIDS... → sets w_rps w_p99 w_err
# w_cpu (server's CPU %, 100 = one core) and w_other (% of the server's
# core(s) that other processes used meanwhile).
run_wrk() {
    local s=$1 port=$2 c=$3 secs=$4 log=$5 t0 t1 c0 c1 k0 k1 parsed
    shift 5
    k0=$(bench_core_ticks "$server_cpu_list")
    c0=$(bench_cpu_ticks "$@")
    t0=$(date +%s.%N)
    timeout $((secs + 30)) taskset -c "$CLIENT_CPUS" wrk -t"$WRK_THREADS" -c"$c" -d"${secs}s" \
        --latency "http://127.0.0.1:$port/healthz" >"$log" 2>&1 ||
        bench_die "$s: wrk failed (see $log)"
    t1=$(date +%s.%N)
    c1=$(bench_cpu_ticks "$@")
    k1=$(bench_core_ticks "$server_cpu_list")
    parsed=$(wrk_parse "$log") || bench_die "$s: cannot parse wrk output (see $log)"
    read -r w_rps w_p99 w_err <<<"$parsed"
    w_cpu=$(awk -v d=$((c1 - c0)) -v hz="$clk_tck" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "%.1f", 100 * d / hz / (t1 - t0) }')
    # Ticks of /proc/stat and of /proc/PID/stat are both USER_HZ.
    w_other=$(awk -v a="$k0" -v b="$k1" -v own=$((c1 - c0)) 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; o = y[1] - x[1] - own
        if (o < 0) o = 0
        printf "%.1f", (t > 0 ? 100 * o / t : 0) }')
}

bench_log "throughput: both servers up; wrk -t$WRK_THREADS -c{${CONNS// /,}} -d${DURATION}s x $ROUNDS rounds"
start_server tsunagi main
ts_port=$srv_port ts_pid=$srv_pid ts_all=$srv_all
start_server nginx main
ng_port=$srv_port ng_pid=$srv_pid ng_all=$srv_all

port_of() { if [ "$1" = tsunagi ]; then echo "$ts_port"; else echo "$ng_port"; fi; }
pids_of() { if [ "$1" = tsunagi ]; then echo "$ts_all"; else echo "$ng_all"; fi; }
pid_of() { if [ "$1" = tsunagi ]; then echo "$ts_pid"; else echo "$ng_pid"; fi; }

if [ "$WARMUP" -gt 0 ]; then
    for c in $CONNS; do
        for s in tsunagi nginx; do
            # shellcheck disable=SC2046
            run_wrk "$s" "$(port_of "$s")" "$c" "$WARMUP" "$BENCH_RAW/wrk-warmup-$s-c$c.txt" $(pids_of "$s")
        done
    done
fi

for ((r = 1; r <= ROUNDS; r++)); do
    for c in $CONNS; do
        for s in $(order "$r"); do
            log=$BENCH_RAW/wrk-$s-c$c-r$r.txt
            while :; do
                # Our own servers are idle between runs: wait for the others.
                bench_quiet_budget "$all_cpu_list" "$QUIET_PCT"
                # shellcheck disable=SC2046
                run_wrk "$s" "$(port_of "$s")" "$c" "$DURATION" "$log" $(pids_of "$s")
                awk -v o="$w_other" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m) }' || break
                [ "$redos_left" -gt 0 ] || break
                redos_left=$((redos_left - 1))
                bench_log "  round $r -c$c $s: other processes took $w_other% of CPU $SERVER_CPUS; running it again ($redos_left redo(s) left)"
                mv "$log" "${log%.txt}-noisy-$redos_left.txt"
            done
            bench_alive "$(pid_of "$s")" || bench_die "$s died during wrk (see $log)"
            side=$(side_of "$s")
            bench_sample "rps_c$c" "$side" "$r" "$w_rps"
            bench_sample "p99_c$c" "$side" "$r" "$w_p99"
            bench_sample "cpu_c$c" "$side" "$r" "$w_cpu"
            bench_sample "eff_c$c" "$side" "$r" "$(awk -v q="$w_rps" -v u="$w_cpu" \
                'BEGIN { if (u > 0) printf "%.0f", q * 100 / u; else print "nan" }')"
            bench_sample "other_c$c" "$side" "$r" "$w_other"
            bench_sample "err" "$side" "$r" "$w_err"
            bench_log "  round $r -c$c $s: $w_rps req/s, p99 $w_p99 ms, server CPU $w_cpu%, others $w_other%, errors $w_err"
        done
    done
done

# ---- the figures and how they were made ---------------------------------------
# row ID CHART LABEL UNIT BETTER [RULE TARGET] (median over rounds, against nginx)
row() { bench_fig_row "$1" "$2" "$3" "$4" nginx median "$5" "${6:-none}" "${7:-—}"; }
# per_c ID CHART LABEL UNIT BETTER [RULE TARGET]: one row per wrk -c, ID_cN, "LABEL, wrk -cN"
per_c() {
    local c
    for c in $CONNS; do
        row "${1}_c$c" "$2" "$3 wrk -c$c" "$4" "$5" "${6:-none}" "${7:-—}"
    done
}
{
    bench_fig_head
    per_c rps rps 'requests/s,' req/s higher ge_peer '≥ nginx'
    per_c eff eff 'requests per server CPU-second,' req/CPU-s higher
    per_c p99 p99 'p99 latency,' ms lower
    row idle_kib idle 'RSS per idle keep-alive connection' KiB lower le:2 '≤ 2 KiB'
    row idle_rss_before - 'RSS before the idle connections' MiB lower
    row idle_rss_after - "RSS holding $IDLE_N idle connections" MiB lower
    per_c cpu - 'server CPU busy during' % none
    per_c other - 'other processes on the server core,' % none
    bench_fig_row err - 'wrk socket errors + non-2xx, all runs' count nginx sum lower eq:0 0
} >"$BENCH_RAW/figures.tsv"

{
    printf 'id\ttitle\tylabel\n'
    printf 'rps\tHTTP GET /healthz, requests/s (median of %s x %s s; %s worker, CPU %s)\trequests/s\n' \
        "$ROUNDS" "$DURATION" "$THREADS" "$SERVER_CPUS"
    printf 'eff\tHTTP GET /healthz, requests per second of server CPU time (median of %s x %s s)\trequests per CPU-second\n' \
        "$ROUNDS" "$DURATION"
    printf 'p99\tHTTP GET /healthz, p99 latency (median of %s x %s s)\tms\n' "$ROUNDS" "$DURATION"
    printf 'idle\tRSS per idle keep-alive connection (%s connections; target ≤ 2 KiB)\tKiB\n' "$IDLE_N"
} >"$BENCH_RAW/charts.tsv"

nginx_version=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
wrk_version=$( (wrk -v 2>&1 || true) | head -n 1 | awk '{ print $1, $2 }')
quick=''
[ "${BENCH_QUICK:-0}" = 1 ] && quick=' **Quick mode (BENCH_QUICK=1): too short to quote.**'
cat >"$BENCH_RAW/method.md" <<EOF
tsunagi's \`GET /healthz\` (200, \`text/plain\`, \`ok\\n\`) against ${nginx_version} answering
the same path with \`return 200 "ok\\n"\` (\`default_type text/plain\`, \`access_log off\`,
keep-alive with \`keepalive_requests 1000000000\`; the generated config is
\`raw/http/nginx.conf\`, the template \`bench/http/nginx.conf.in\`). Each answer as
received is in \`raw/http/response-*.txt\`.${quick}

- **Pinning.** Both servers run with ${THREADS} worker (\`--threads ${THREADS}\` /
  \`worker_processes ${THREADS}\`) on CPU ${SERVER_CPUS} (\`taskset -c ${SERVER_CPUS}\`); the load
  generator runs on CPU ${CLIENT_CPUS}. Everything on 127.0.0.1, ports picked at run time.
- **Throughput and latency.** Both servers up at once; \`${wrk_version} -t${WRK_THREADS} -c{${CONNS// /,}}
  -d${DURATION}s --latency\`, first ${WARMUP} s per server and connection count unmeasured,
  then ${ROUNDS} rounds; in each round every connection count against each server,
  tsunagi first in odd rounds and nginx first in even ones. Figures are medians
  over rounds. "server CPU busy" is the server's user+system time over the run's
  wall time (100 % = one core saturated; below that, the client or the
  machine was the limit). With one core each, a single wrk thread is close to
  the limit of what it can send, so requests/s measures the client nearly as
  much as the server; "requests per server CPU-second" (requests/s ÷ server
  CPU busy) is what each server spends per request, and is also the figure
  least moved by other processes on the machine.
- **Noise.** This is a shared machine. Before each run the benchmark waits until
  CPUs ${SERVER_CPUS},${CLIENT_CPUS} are at most ${QUIET_PCT} % busy (at most ${QUIET_BUDGET} s of waiting in all), and
  a run during which other processes took more than ${MAX_OTHER} % of CPU ${SERVER_CPUS} is
  run again (at most ${MAX_REDOS} times in all; this run: $((MAX_REDOS - redos_left)) redo(s), $((QUIET_BUDGET - bench_quiet_left)) s of waiting).
  "other processes on the server core" is what was left after that: read the
  rows of a round with a high figure with care.
- **Idle connections.** A fresh server per round (${IDLE_ROUNDS} rounds, servers
  alternating). \`bench/http/idleconn.c\` reads the server's VmRSS (nginx: master +
  workers), opens ${IDLE_N} connections (at most 100 connecting at a time), sends one
  \`GET /healthz\` on each and reads the answer, holds them all idle for
  ${IDLE_SETTLE_MS} ms, reads VmRSS again: per connection = (after − before) / ${IDLE_N}.
  Kernel socket buffers are not in RSS and not counted. nginx allocates its
  connection table (\`worker_connections $((IDLE_N + 1024))\`) at start-up, so its
  "before" already holds that part.
EOF

bench_log "done; raw logs in $BENCH_RAW"
exit
}
