# shellcheck shell=bash
# bench/signaling/figures.sh — the figures of the signaling section and how
# they were made: figures.tsv, sides.tsv, charts.tsv and method.md in
# $BENCH_RAW (the format is at the top of bench/report.py). Sourced by
# bench/signaling/run.sh at the end of a run, with its variables set.
# shellcheck disable=SC2154  # the variables are run.sh's

# row ID CHART LABEL UNIT AGG BETTER RULE TARGET
sig_row() {
    bench_fig_row "$1" "$2" "$3" "$4" peer,minimal "$5" "$6" "$7" "$8"
}

sig_write_figures() {
    local k c1 ft
    c1=$(printf "%'d" "$CLIENTS" 2>/dev/null || echo "$CLIENTS")
    {
        bench_fig_head
        for k in $INFLIGHT; do
            ft=$([ "$k" = 1 ] && echo "1 message" || echo "$k messages")
            sig_row "mcpu_k$k" mcpu "msgs relayed per server CPU-s, PeerJS, $c1 clients, $ft in flight per pair" \
                msg/CPU-s median higher 'ge_x:peer:3.5' '≥ 3.5 × PeerServer'
        done
        for k in $INFLIGHT; do
            ft=$([ "$k" = 1 ] && echo "1 message" || echo "$k messages")
            sig_row "mcpu_k${k}_ayame" mcpu "msgs relayed per server CPU-s, Ayame (tsunagi only), $c1 clients, $ft in flight per pair" \
                msg/CPU-s median higher none '— (no Ayame peer)'
        done
        sig_row p99_rate p99 "p99 relay latency, PeerJS, $(printf "%'d" "$RATE_CLIENTS") clients, $RATE msg/s per pair" \
            ms median lower 'le:1' '< 1 ms'
        sig_row p99_rate_ayame p99 "p99 relay latency, Ayame, $(printf "%'d" "$RATE_CLIENTS") clients, $RATE msg/s per pair" \
            ms median lower 'le:1' '< 1 ms'
        sig_row held - "clients held, PeerJS (of $(printf "%'d" "$HOLD_N"))" clients median higher none '—'
        sig_row idle_kib mem "RSS per client, PeerJS, registered and idle" KiB median lower 'le:2' '≤ 2 KiB'
        sig_row active_kib mem "RSS per client, PeerJS, while relaying" KiB median lower none '—'
        sig_row held_ayame - "clients held, Ayame (of $(printf "%'d" "$HOLD_N"))" clients median higher none '—'
        sig_row idle_kib_ayame mem "RSS per client, Ayame, registered and idle" KiB median lower 'le:2' '≤ 2 KiB'
        sig_row active_kib_ayame mem "RSS per client, Ayame, while relaying" KiB median lower none '—'
        for k in $INFLIGHT; do
            sig_row "mps_k$k" - "PeerJS: messages/s, $c1 clients, $k in flight" msg/s median higher none '—'
            sig_row "p99_k$k" - "PeerJS: p99 latency, $c1 clients, $k in flight" ms median lower none '—'
        done
        for k in $INFLIGHT; do
            sig_row "mps_k${k}_ayame" - "Ayame: messages/s, $c1 clients, $k in flight" msg/s median higher none '—'
            sig_row "p99_k${k}_ayame" - "Ayame: p99 latency, $c1 clients, $k in flight" ms median lower none '—'
        done
        sig_row p50_rate - "PeerJS: p50 relay latency, $(printf "%'d" "$RATE_CLIENTS") clients, $RATE msg/s per pair" ms median lower none '—'
        sig_row p50_rate_ayame - "Ayame: p50 relay latency, $(printf "%'d" "$RATE_CLIENTS") clients, $RATE msg/s per pair" ms median lower none '—'
        for k in $INFLIGHT; do
            sig_row "busy_k$k" - "PeerJS: server CPU busy, $k in flight" % median none none '—'
            sig_row "client_k$k" - "PeerJS: load generator CPU busy, $k in flight" % median none none '—'
            sig_row "other_k$k" - "PeerJS: other load on the server core, $k in flight" % median lower none '—'
            sig_row "busy_k${k}_ayame" - "Ayame: server CPU busy, $k in flight" % median none none '—'
            sig_row "other_k${k}_ayame" - "Ayame: other load on the server core, $k in flight" % median lower none '—'
        done
        sig_row busy_rate - "PeerJS: server CPU busy, $RATE msg/s per pair" % median none none '—'
        sig_row busy_rate_ayame - "Ayame: server CPU busy, $RATE msg/s per pair" % median none none '—'
        sig_row connect_s - "PeerJS: seconds to register the held clients" s median lower none '—'
        sig_row connect_s_ayame - "Ayame: seconds to register the held clients" s median lower none '—'
        sig_row err - "failed load generator runs" count sum lower 'eq:0' 0
    } >"$BENCH_RAW/figures.tsv"

    {
        printf 'side\tlabel\n'
        printf 'tsunagi\ttsunagi\n'
        printf 'peer\tPeerServer %s (Node %s)\n' "$peer_version" "$node_version"
        printf 'minimal\tminimal C relay\n'
    } >"$BENCH_RAW/sides.tsv"

    {
        printf 'id\ttitle\tylabel\n'
        printf 'mcpu\tSignaling relay: messages per server CPU-second (median of %s x %s s; one core)\tmessages / CPU-s\n' \
            "$ROUNDS" "$DURATION"
        printf 'p99\tSignaling: p99 relay latency, %s clients, %s msg/s per pair (median of %s)\tms\n' \
            "$RATE_CLIENTS" "$RATE" "$RATE_ROUNDS"
        printf 'mem\tRSS per client, %s clients held (target for idle: ≤ 2 KiB)\tKiB\n' "$HOLD_N"
    } >"$BENCH_RAW/charts.tsv"

    sig_write_method
}

sig_write_method() {
    local quick='' problems='' nice_note='' rate_nice_note=''
    [ "$RATE_NICE" != "$NICE" ] && rate_nice_note="
  In this phase every server and sigload run at nice ${RATE_NICE}: they are mostly idle (see
  \"server CPU busy\" below), and it keeps other people's runnable work on the shared cores from
  queueing ahead of a message for a scheduler slice (~10 ms, which would be all the p99 shows)."
    [ "$NICE" != 0 ] && nice_note=" The servers and the load generator ran at nice ${NICE} (\`SIG_NICE\`), every side alike, so that other people's work on the shared machine took less of their cores."
    [ "${BENCH_QUICK:-0}" = 1 ] && quick=' **Quick mode (BENCH_QUICK=1): too short to quote.**'
    problems=$(bench_problems)
    cat >"$BENCH_RAW/method.md" <<EOF
Signaling servers, each alone on CPU ${SERVER_CPU} (\`taskset -c ${SERVER_CPU}\`), against
one load generator on CPU ${CLIENT_CPU}, all on 127.0.0.1 with ports picked at run time:
**tsunagi** (\`${tsunagi_args}\`; the PeerJS server protocol at \`/peerjs/peerjs\`, and, as
tsunagi-only figures, the Ayame protocol at \`/signaling\`), **peer**: PeerServer, the npm
package \`peer\` ${peer_version} on Node ${node_version} (\`bench/signaling/peerserver.js\`,
mounted at \`/\`, concurrent_limit ${LIMIT}, other options its defaults), and **minimal**:
\`bench/signaling/minimal_relay.c\`, which answers the upgrade, sends \`{"type":"OPEN"}\`
and then only unmasks each frame and writes it to the partner's socket — the kernel's
loopback TCP cost plus one pass over the bytes, the floor any relay sits on.${quick}
See \`bench/signaling/README.md\` for the method in full.

- **Load.** \`bench/signaling/sigload.c\` (one thread, epoll) opens the clients in pairs
  (real WebSocket handshakes, every frame masked), registers them (PeerJS: \`OPEN\` after
  connecting with \`key\`, \`id\`, \`token\`; Ayame: \`register\` in a room of two, then
  \`accept\`), and starts only when all are registered. PeerJS clients send \`HEARTBEAT\`
  every ${HEARTBEAT} s as the peerjs client does; Ayame clients answer \`ping\` with \`pong\`.
  Each side of a pair sends, in a loop, an offer (${OFFER_SDP} B of SDP), an answer
  (${ANSWER_SDP} B) and four ~300 B candidates, wrapped as the official clients wrap them;
  each carries its send time and a sequence number, and the receiver checks order, type,
  the sender's id (\`src\`, PeerJS) and length.
- **Relay** (${CLIENTS} clients, {${INFLIGHT}} messages in flight per pair): whoever
  receives a message sends the next one back. ${WARMUP} s unmeasured, then ${DURATION} s
  measured; ${ROUNDS} rounds, the order of sides rotating. **messages per server CPU-second**
  = messages relayed in the window ÷ the server's utime+stime over exactly that window
  (\`/proc/PID/stat\`, all threads; the kernel charges loopback softirq work to the task
  it interrupts, so part of the TCP cost lands on whichever side is running).
  It does not depend on which side is the bottleneck: tsunagi and PeerServer saturate their
  core here, while the minimal relay is held back by the load generator ("load generator
  CPU busy"). With 8 in flight a read carries several messages, so every side spends fewer
  system calls per message; the minimal relay's figure there is mostly that batching.
- **Latency** (${RATE_CLIENTS} clients, each pair sending ${RATE} message/s, the two sides
  taking turns, sends of all pairs spread evenly over the second; no replies):
  from the write that carried a message to the read that completed it on the other
  client, log-linear histogram (about 3 %), ${RATE_DURATION} s per round, ${RATE_ROUNDS} rounds; median of the rounds' p99.${rate_nice_note}
- **Held clients** (a fresh server per side and round, ${HOLD_ROUNDS} round(s)): VmRSS read before,
  ${HOLD_N} clients registered and held idle ${HOLD_SETTLE_MS} ms (**idle**), then every pair
  relaying one message in flight for ${HOLD_ACTIVE} s, VmRSS read while that runs (**while
  relaying**); per client = (RSS − RSS before) ÷ clients held. Kernel socket buffers are
  not in RSS. ulimit -n is ${nofile} for each process (the load generator holds one socket
  per client, the server one per client), so ${HOLD_N} is what one process fits here.
- **Noise.** Before each run the script waits up to ${QUIET_WAIT} s for core ${SERVER_CPU} to be under
  ${QUIET_PCT} % busy, and runs again (once, at most ${MAX_RETRIES} times in all; ${bench_retries} this time)
  a run in which other work took more than ${MAX_OTHER} % of it, keeping the cleaner one.${nice_note}
${problems}
EOF
}
