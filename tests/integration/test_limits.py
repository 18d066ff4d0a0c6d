"""Connection limits: --max-connections-per-ip across workers and listeners,
accept backing off when the process runs out of descriptors, and the open
file limit raised (and warned about) at start-up.

Loopback has many addresses: a client bound to 127.0.0.2 is another client
address than one on 127.0.0.1, which lets one machine play two clients.
"""

import os
import re
import resource
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402
from tsunagi import Reader, get  # noqa: E402

TURN_LISTEN_RE = re.compile(r"listening on turn://127\.0\.0\.1:(\d+)")


class LimitTest(tsunagi.ServerPerTest):

    tmp_prefix = "tsunagi-limits-"

    def sock(self, srv, source="127.0.0.1", port=None, timeout=5):
        s = socket.create_connection(("127.0.0.1", port or srv.port), timeout=timeout,
                                     source_address=(source, 0))
        self.socks.append(s)
        return s

    def drop(self, s):
        s.close()
        self.socks.remove(s)

    def answered(self, srv, source="127.0.0.1", timeout=5):
        """A keep-alive connection from source that got a 200, retrying while
        the server is still freeing the slot of one just closed."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.sock(srv, source)
            s.sendall(get("/healthz"))
            try:
                r = Reader(s).response()
            except (EOFError, ConnectionResetError):
                r = None
            if r is not None and r.status == 200:
                return s
            self.drop(s)
            if time.monotonic() > deadline:
                self.fail("no connection from %s admitted: last answer %r" % (source, r))
            time.sleep(0.05)

    def assert_refused_503(self, s):
        s.sendall(get("/healthz"))
        rd = Reader(s)
        r = rd.response()
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("Connection").lower(), "close")
        self.assertIn(b"too many connections", r.body)
        self.assertTrue(rd.closed(3))

    def metric(self, s, name):
        s.sendall(get("/metrics"))
        r = Reader(s).response()
        self.assertEqual(r.status, 200)
        return tsunagi.parse_metrics(r.body.decode())[name]


class PerIp(LimitTest):

    def test_limit_per_address_across_workers(self):
        # Six connections from one address: SO_REUSEPORT spreads them over
        # both workers, and the count is the sum.
        srv = self.start("--max-connections-per-ip", "6", threads=2)
        held = [self.answered(srv) for _ in range(6)]
        self.assert_refused_503(self.sock(srv))
        workers = set(re.findall(r"conn=(\d+)\.\d+ peer=127\.0\.0\.1:\d+ http open", srv.log()))
        self.assertTrue(workers, "no connection logged")

        # Another address is another client, with a budget of its own.
        other = self.answered(srv, "127.0.0.2")
        # At least the one above (the harness's start-up probe, closed but
        # perhaps not yet freed, may have cost answered() a retry).
        self.assertGreaterEqual(self.metric(other, "tsunagi_connections_refused_per_ip_total"), 1)
        self.assertEqual(self.metric(other, "tsunagi_connections_refused_total"), 0)

        # A held connection was never disturbed; closing one frees its slot.
        self.assertGreaterEqual(
            self.metric(held[0], "tsunagi_connections_refused_per_ip_total"), 1)
        self.drop(held[1])
        self.answered(srv)
        self.assert_refused_503(self.sock(srv))

    def test_turn_tcp_counts_and_is_closed_silently(self):
        srv = self.start("--max-connections-per-ip", "1")
        turn_port = int(TURN_LISTEN_RE.search(srv.log()).group(1))
        self.answered(srv)
        # TURN over TCP from the same address: no HTTP answer, just a close.
        t = self.sock(srv, port=turn_port)
        self.assertTrue(Reader(t).closed(3))
        srv.wait_for_log(r"peer=127\.0\.0\.1:\d+ refused: --max-connections-per-ip 1 reached")

    def test_reload_applies_to_open_connections(self):
        conf = os.path.join(self.tmp, "tsunagi.conf")
        with open(conf, "w") as f:
            f.write("max-connections-per-ip = 0\n")
        srv = self.start("--config", conf)
        for _ in range(3):
            self.answered(srv)
        with open(conf, "w") as f:
            f.write("max-connections-per-ip = 3\n")
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"configuration reloaded", after=mark)
        # The three opened before the limit existed count against it.
        self.assert_refused_503(self.sock(srv))
        self.answered(srv, "127.0.0.2")

    def test_max_connections_still_wins(self):
        srv = self.start("--max-connections", "2", "--max-connections-per-ip", "5")
        a = self.answered(srv)
        self.answered(srv, "127.0.0.2")
        self.assert_refused_503(self.sock(srv, "127.0.0.3"))
        self.assertGreaterEqual(self.metric(a, "tsunagi_connections_refused_total"), 1)
        self.assertEqual(self.metric(a, "tsunagi_connections_refused_per_ip_total"), 0)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Descriptors(LimitTest):

    def test_accept_pauses_on_emfile_and_resumes(self):
        srv = self.start(threads=1)
        pid = srv.proc.pid
        hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
        # Room for exactly two more descriptors, counted once the harness's
        # start-up probe connection is freed (the debug log says when).
        deadline = time.monotonic() + 5
        while srv.log().count(" http open") != srv.log().count(" http closed"):
            self.assertLess(time.monotonic(), deadline, "the probe connection stays open")
            time.sleep(0.02)
        time.sleep(0.1)  # the line is written just before the close(2)
        settled = open_fds(pid)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (settled + 2, hard))
        try:
            held = [self.answered(srv) for _ in range(2)]
            # The third waits in the listen backlog: accept() fails with EMFILE.
            waiting = self.sock(srv)
            waiting.sendall(get("/healthz"))
            srv.wait_for_log(r"accept: Too many open files; pausing accept for 100 ms")
            # Paused, not spinning on a listener that stays readable: about
            # one retry per 100 ms, and next to no CPU.
            pause = r"accept: Too many open files; pausing accept"
            t0, c0, n0 = time.monotonic(), cpu_seconds(pid), len(re.findall(pause, srv.log()))
            time.sleep(1.0)
            took = time.monotonic() - t0
            busy = (cpu_seconds(pid) - c0) / took
            retries = len(re.findall(pause, srv.log())) - n0
            self.assertLessEqual(retries, 15 * took, "accept retried %d times in %.1f s"
                                 % (retries, took))
            self.assertGreaterEqual(retries, 3, "accept stopped retrying")
            self.assertLess(busy, 0.3, "accept spins at %.0f%% CPU while out of descriptors"
                            % (busy * 100))
            self.assertTrue(srv.running())
            # A descriptor comes free: the waiting connection is served.
            self.drop(held[0])
            waiting.settimeout(5)
            self.assertEqual(Reader(waiting).response().status, 200)
            self.assertGreaterEqual(self.metric(held[1], "tsunagi_accept_errors_total"), 1)
        finally:
            # Give the descriptors back, so the exit is not judged by them.
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (hard, hard))


class NofileAtStartup(LimitTest):

    def start_with_soft_limit(self, soft, *args):
        """Start a server whose soft RLIMIT_NOFILE begins at soft."""
        old = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, old[1]), old[1]))
        try:
            return self.start(*args), old[1]
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, old)

    def test_raised_to_hard_limit(self):
        srv, hard = self.start_with_soft_limit(256)
        srv.wait_for_log(r"open file limit: %d\b" % hard)
        self.assertEqual(resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE)[0], hard)
        self.assertNotIn("too low for --max-connections", srv.log())

    def test_warns_when_limit_is_below_max_connections(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        srv, _ = self.start_with_soft_limit(256, "--max-connections", str(hard + 1))
        srv.wait_for_log(r"warn .*open file limit %d is too low for --max-connections %d"
                         % (hard, hard + 1))


if __name__ == "__main__":
    unittest.main()
