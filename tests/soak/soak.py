#!/usr/bin/python3
"""tsunagi soak test: a mixed load for --seconds under the ASan+UBSan build,
then proof that the server gave everything back.

    TSUNAGI_BIN=build-asan/tsunagi tests/soak/soak.py --seconds 120

One server (tests/integration/tsunagi.py starts it on 127.0.0.1 port 0, with
short HTTP/WebSocket timeouts so hanging clients are reaped quickly) gets,
all at once (workloads.py, garbage.py): WebSocket /echo churn with and
without permessage-deflate, Ayame rooms joining and leaving, PeerJS pairs,
TURN allocations over UDP and TCP relaying to a local UDP echo peer, and
garbage datagrams, random bytes and half-open TCP connections.

Pass criteria, checked after the load stops and the server's timeouts (and
the lifetimes of abandoned allocations) have run out:
  - no client saw an error it did not provoke;
  - /metrics: no connection open but the one asking, no TURN allocation;
  - open descriptors (/proc/PID/fd) equal the baseline, +-FD_MARGIN;
  - RSS (VmRSS) at most --rss-margin-mib above the baseline;
  - SIGTERM: exit 0, and no sanitizer report in the log.
The baseline is taken after start-up and a warm-up round of every workload,
so pools, tables and allocator caches that legitimately stay grown after
the first load are in it. Exits 1 on failure, after the summary.
"""

import argparse
import asyncio
import concurrent.futures
import os
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "turn"))
sys.path.insert(0, os.path.join(TESTS, "integration"))
sys.path.insert(0, HERE)

import tsunagi  # noqa: E402
import turnharness  # noqa: E402
from garbage import Garbage  # noqa: E402
from workloads import AyameRooms, EchoChurn, PeerJsClients, TurnAllocations  # noqa: E402

WORKLOADS = (EchoChurn, AyameRooms, PeerJsClients, TurnAllocations, Garbage)
FD_MARGIN = 2
# RSS: the ASan allocator keeps freed chunks in per-size-class free lists
# and its quarantine (capped at 8 MiB below) and returns whole pages to the
# kernel only now and then (allocator_release_to_os_interval_ms), so RSS
# creeps up while those fill and levels off. Measured on 2 cores: +2.3 to
# +3.6 MiB after 120 s, +4.6 MiB after 600 s (flat from 400 s on); the same
# load on the glibc-malloc build: +0.5 MiB. A leak of 100 bytes per
# WebSocket connection would add about 3 MiB every 10 minutes on top.
RSS_MARGIN_MIB = 8
ASAN_SOAK = ("detect_leaks=1:abort_on_error=0:exitcode=66:quarantine_size_mb=8:"
             "thread_local_quarantine_size_kb=256:allocator_release_to_os_interval_ms=500")
WARMUP_SECONDS = 10
REAP_SECONDS = 120  # after the load: the slowest timeout is a silent TURN TCP client (30 s)
ABANDON_CAP = 40  # abandoned UDP allocations alive at once
ROUND_TIMEOUT = 180


class Stats:
    def __init__(self):
        self.ops = {}  # workload -> {what: count}
        self.rounds = {}
        self.errors = {}  # workload -> [descriptions] (first few)
        self.nerrors = {}

    def op(self, workload, what, n=1):
        d = self.ops.setdefault(workload, {})
        d[what] = d.get(what, 0) + n

    def round(self, workload):
        self.rounds[workload] = self.rounds.get(workload, 0) + 1

    def error(self, workload, text):
        self.nerrors[workload] = self.nerrors.get(workload, 0) + 1
        kept = self.errors.setdefault(workload, [])
        if len(kept) < 10:
            kept.append(text)
        print("soak: ERROR %s: %s" % (workload, text), flush=True)

    def total_errors(self):
        return sum(self.nerrors.values())


class EchoPeer(asyncio.DatagramProtocol):
    """The TURN peer: a UDP socket that sends every datagram back."""

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class Context:
    """What the workloads share: ports, secret, randomness, counters."""

    def __init__(self, server, seed, stats):
        self.server = server
        self.http_port = server.port
        self.turn_port = server.turn_port
        self.secret = server.secret
        self.rng = random.Random(seed)
        self.run_id = seed % 100000
        self.stats = stats
        self.echo_port = None
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        self.abandon_until = 0.0  # monotonic time after which nothing may be abandoned
        self.abandoned = []  # [(expires, client)]: sockets kept so their 5-tuple stays taken
        self.latest_expiry = 0.0

    def may_abandon(self, lifetime):
        return (time.monotonic() + lifetime + 5 < self.abandon_until
                and len(self.abandoned) < ABANDON_CAP)

    def abandon(self, client, lifetime):
        # Called from TURN threads: list.append is atomic under the GIL.
        expires = time.monotonic() + lifetime
        self.abandoned.append((expires, client))
        self.latest_expiry = max(self.latest_expiry, expires)

    def close_expired(self, grace=5.0):
        now = time.monotonic()
        keep = []
        for expires, c in list(self.abandoned):
            if expires + grace < now:
                c.close()
            else:
                keep.append((expires, c))
        self.abandoned[:] = keep


# ----------------------------------------------------------- measuring --


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def leftovers(server):
    """What is still open in the server per /metrics (our own request excluded)."""
    m = server.metrics()
    left = {}
    for proto in ("http", "websocket", "turn-tcp"):
        n = m.get('tsunagi_connections_open{protocol="%s"}' % proto, 0) - (proto == "http")
        if n:
            left[proto] = n
    if m.get("tsunagi_turn_allocations", 0):
        left["allocations"] = m["tsunagi_turn_allocations"]
    return left


async def settle(server, deadline, fd_target=None):
    """Poll until nothing is left open (and fds are near fd_target): (left, fds)."""
    pid = server.proc.pid
    while True:
        left = await asyncio.to_thread(leftovers, server)
        fds = fd_count(pid)
        fds_ok = fd_target is None or abs(fds - fd_target) <= FD_MARGIN
        if (not left and fds_ok) or time.monotonic() > deadline:
            return left, fds
        await asyncio.sleep(1.0)


async def rss_sample(pid, seconds=4.0):
    """The lowest RSS seen over a few seconds (pages go back in batches)."""
    low = rss_kib(pid)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.5)
        low = min(low, rss_kib(pid))
    return low


# ------------------------------------------------------------- running --


async def worker_loop(ctx, wl, i, end):
    while time.monotonic() < end:
        try:
            await asyncio.wait_for(wl.once(i), ROUND_TIMEOUT)
            ctx.stats.round(wl.name)
        except Exception as e:  # noqa: B902 - every unprovoked failure is reported
            ctx.stats.error(wl.name, "%s: %s" % (type(e).__name__, e))
        await asyncio.sleep(ctx.rng.uniform(*wl.pace))


async def run_load(ctx, workloads, seconds, label):
    end = time.monotonic() + seconds
    tasks = [asyncio.create_task(worker_loop(ctx, wl, i, end))
             for wl in workloads for i in range(wl.workers)]
    tasks.append(asyncio.create_task(monitor(ctx, end, label)))
    await asyncio.gather(*tasks)
    for wl in workloads:
        if hasattr(wl, "drain"):
            await wl.drain()


async def monitor(ctx, end, label, every=30.0):
    """A progress line now and then; also notices a server that died."""
    pid = ctx.server.proc.pid
    start = time.monotonic()
    while time.monotonic() < end:
        await asyncio.sleep(min(every, max(0.1, end - time.monotonic())))
        if not ctx.server.running():
            ctx.stats.error("server", "exited with %s during the load" % ctx.server.proc.returncode)
            return
        ctx.close_expired()
        rounds = sum(ctx.stats.rounds.values())
        print("soak: %s %4.0f s: %d rounds, %d errors, fds %d, RSS %.1f MiB, %d abandoned"
              % (label, time.monotonic() - start, rounds, ctx.stats.total_errors(),
                 fd_count(pid), rss_kib(pid) / 1024, len(ctx.abandoned)), flush=True)


def start_server(args):
    lo = random.SystemRandom().randrange(40000, 59000)
    server = turnharness.TurnServer(
        "--echo", "--request-timeout", 2, "--keepalive-timeout", 3, "--ws-idle-timeout", 3,
        "--peerjs-expire-timeout", 2, "--min-port", lo, "--max-port", lo + 999,
        secret="soak-secret-%d" % os.getpid(), loopback=True, threads=args.threads,
        log_level="info")
    server.relay_lo, server.relay_hi = lo, lo + 999
    return server.start()


async def soak(args, server, stats):
    ctx = Context(server, args.seed, stats)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(EchoPeer, local_addr=("127.0.0.1", 0))
    ctx.echo_port = transport.get_extra_info("sockname")[1]
    pid = server.proc.pid
    result = {}
    try:
        workloads = [cls(ctx) for cls in WORKLOADS]
        # Warm-up: every workload at full concurrency, without the hanging
        # TURN TCP connections whose 30 s would only make it longer.
        warm = [wl for wl in workloads if wl.name != "garbage"] + [WarmGarbage(ctx)]
        await run_load(ctx, warm, WARMUP_SECONDS, "warm-up")
        left, _ = await settle(server, time.monotonic() + REAP_SECONDS)
        if left:
            stats.error("baseline", "still open after the warm-up: %r" % left)
        result["base_fds"] = fd_count(pid)
        result["base_rss"] = await rss_sample(pid)
        print("soak: baseline after warm-up: %d fds, RSS %.1f MiB"
              % (result["base_fds"], result["base_rss"] / 1024), flush=True)

        ctx.abandon_until = time.monotonic() + args.seconds + REAP_SECONDS - 30
        t0 = time.monotonic()
        await run_load(ctx, workloads, args.seconds, "load")
        result["load_seconds"] = time.monotonic() - t0

        # Reap: the server's timeouts, and abandoned allocations' lifetimes.
        t1 = time.monotonic()
        deadline = max(t1 + REAP_SECONDS, ctx.latest_expiry + 60)
        while ctx.abandoned and time.monotonic() < deadline:
            ctx.close_expired(grace=2.0)
            await asyncio.sleep(1.0)
        left, fds = await settle(server, deadline, result["base_fds"])
        result["reap_seconds"] = time.monotonic() - t1
        result["left"] = left
        result["fds"] = fds
        result["rss"] = await rss_sample(pid)
        result["metrics"] = await asyncio.to_thread(server.metrics)
    finally:
        for _, c in ctx.abandoned:
            c.close()
        transport.close()
        ctx.executor.shutdown(wait=True)
    return result


class WarmGarbage(Garbage):
    def once(self, worker):
        return self.udp_burst()


def verdict(args, stats, result, server_ok):
    failures = []
    if stats.total_errors():
        failures.append("%d client errors" % stats.total_errors())
    if "left" not in result:
        return failures + ["the load did not complete"]
    if result["left"]:
        failures.append("still open after %.0f s: %r" % (result["reap_seconds"], result["left"]))
    if abs(result["fds"] - result["base_fds"]) > FD_MARGIN:
        failures.append("fds %d, baseline %d (margin %d)" % (result["fds"], result["base_fds"],
                                                              FD_MARGIN))
    grown = (result["rss"] - result["base_rss"]) / 1024
    if grown > args.rss_margin_mib:
        failures.append("RSS grew %.1f MiB (margin %d MiB)" % (grown, args.rss_margin_mib))
    if not server_ok:
        failures.append("unclean exit (see above)")
    return failures


def summary(args, stats, result, failures, server):
    print("\n==== tsunagi soak: %d s of load, seed %d ====" % (args.seconds, args.seed))
    for wl in [w.name for w in WORKLOADS] + sorted(set(stats.errors) - {w.name for w in WORKLOADS}):
        ops = stats.ops.get(wl, {})
        print("%-8s rounds %-6d errors %-4d %s" % (
            wl, stats.rounds.get(wl, 0), stats.nerrors.get(wl, 0),
            " ".join("%s=%d" % kv for kv in sorted(ops.items()))))
        for e in stats.errors.get(wl, []):
            print("         ! %s" % e)
    if "base_fds" in result:
        print("fds      baseline %d, after %s" % (result["base_fds"], result.get("fds", "-")))
        print("RSS      baseline %.1f MiB, after %s MiB (margin %d MiB)" % (
            result["base_rss"] / 1024,
            "%.1f" % (result["rss"] / 1024) if "rss" in result else "-", args.rss_margin_mib))
    if "reap_seconds" in result:
        print("reaped   in %.0f s; left open: %s"
              % (result["reap_seconds"], result["left"] or "none"))
    m = result.get("metrics", {})
    shown = [k for k in sorted(m) if k.startswith(("tsunagi_connections_total",
                                                   "tsunagi_turn_allocations_total",
                                                   "tsunagi_turn_relayed_packets_total",
                                                   "tsunagi_stun_requests_total"))
             or "rate_limited" in k or "refused" in k or re.search(r'status="5', k)]
    if shown:
        print("metrics  " + "\n         ".join("%s %g" % (k, m[k]) for k in shown))
    log = server.log() if server is not None else ""
    noisy = [ln for ln in log.splitlines() if re.search(r"Z (warn|error) ", ln)]
    print("log      %d lines, %d warn/error%s" % (len(log.splitlines()), len(noisy),
                                                  "".join("\n         " + ln for ln in noisy[:10])))
    print("RESULT   %s" % ("PASS" if not failures else "FAIL: " + "; ".join(failures)), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=1800, help="length of the load (default 1800)")
    p.add_argument("--threads", type=int, default=2, help="server worker threads")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--rss-margin-mib", type=int, default=RSS_MARGIN_MIB)
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    # Freed memory must not sit in ASan's quarantine (256 MiB by default), or
    # RSS could not come back to its baseline.
    os.environ["ASAN_OPTIONS"] = ASAN_SOAK
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    print("soak: %s, %d s, seed %d" % (tsunagi.BIN, args.seconds, args.seed), flush=True)

    stats, result, server, server_ok = Stats(), {}, None, False
    try:
        server = start_server(args)
        result = asyncio.run(soak(args, server, stats))
        try:
            took = server.stop(timeout=30)
            print("soak: SIGTERM: exited 0 in %.1f s, no sanitizer report" % took)
            server_ok = True
        except AssertionError as e:
            print("soak: %s" % str(e)[-6000:])
    except Exception as e:  # noqa: B902 - reported in the summary
        stats.error("driver", "%s: %s" % (type(e).__name__, e))
    finally:
        failures = verdict(args, stats, result, server_ok)
        summary(args, stats, result, failures, server)
        if server is not None:
            server.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
