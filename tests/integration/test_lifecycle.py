"""Signals (SIGTERM drain, SIGHUP reload) and --max-connections.

Each test runs its own server, since most of them end it.
"""

import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402
from tsunagi import Reader, Server, get  # noqa: E402


class ServerPerTest(unittest.TestCase):

    def setUp(self):
        self.servers = []
        self.socks = []
        self.tmp = tempfile.mkdtemp(prefix="tsunagi-life-")

    def tearDown(self):
        for s in self.socks:
            s.close()
        for srv in self.servers:
            try:
                if srv.running():
                    srv.stop()
            finally:
                srv.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *args, **kwargs):
        srv = Server(*args, **kwargs)
        self.servers.append(srv)
        return srv.start()

    def sock(self, srv, timeout=5):
        s = srv.connect(timeout)
        self.socks.append(s)
        return s

    def keepalive(self, srv):
        """An idle keep-alive connection that has completed one request."""
        s = self.sock(srv)
        s.sendall(get("/healthz"))
        self.assertEqual(Reader(s).response().status, 200)
        return s

    def write_config(self, text):
        path = os.path.join(self.tmp, "tsunagi.conf")
        # Replace atomically: the server may read it at any moment.
        with open(path + ".new", "w") as f:
            f.write(text)
        os.replace(path + ".new", path)
        return path

    def assert_exit_within(self, srv, seconds, since):
        rc = srv.wait(max(0.0, seconds - (time.monotonic() - since)))
        if rc is None:
            srv.kill()
            self.fail("still running %.1f s after the signal:\n%s" % (seconds, srv.log_tail()))
        srv.assert_clean_exit(rc)
        return time.monotonic() - since


class Drain(ServerPerTest):

    def test_request_in_flight_completes(self):
        srv = self.start("--drain-timeout", "5")
        s = self.sock(srv)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertTrue(srv.running(), "exited with a request in flight")
        # Draining: no new connection is served.
        try:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=2) as n:
                n.sendall(get("/healthz"))
                self.assertNotIn(b" 200 ", n.recv(100) or b"", "a new connection was served during drain")
        except (ConnectionRefusedError, ConnectionResetError):
            pass
        s.sendall(b"\r\n")
        rd = Reader(s)
        r = rd.response()
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        self.assertEqual(r.header("Connection").lower(), "close")
        self.assertTrue(rd.closed(2))
        s.close()
        self.assert_exit_within(srv, 5, t0)

    def test_idle_keepalive_exits_promptly(self):
        srv = self.start()
        conns = [self.keepalive(srv) for _ in range(4)]
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        took = self.assert_exit_within(srv, 1, t0)
        self.assertLess(took, 1)
        for s in conns:
            self.assertTrue(Reader(s).closed(1), "idle client was not closed")

    def test_idle_server_sigint(self):
        srv = self.start()
        t0 = time.monotonic()
        srv.signal(signal.SIGINT)
        self.assert_exit_within(srv, 1, t0)

    def test_second_sigterm_exits_at_once(self):
        srv = self.start("--drain-timeout", "30")
        s = self.sock(srv)
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(0.2)
        srv.signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertTrue(srv.running(), "exited with a request in flight")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assert_exit_within(srv, 1, t0)

    def test_drain_timeout_cuts_stalled_clients(self):
        srv = self.start("--drain-timeout", "1", "--request-timeout", "30")
        s = self.sock(srv)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        took = self.assert_exit_within(srv, 3, t0)
        self.assertGreaterEqual(took, 0.8, "did not wait for the stalled client at all")
        rd = Reader(s)
        s.settimeout(1)
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        self.assertNotIn(b" 200 ", data)

    def test_large_response_in_flight(self):
        # SIGTERM while a response larger than the socket buffers is still
        # queued: it is delivered whole, and once it is out the connection
        # is done, so the process exits then, not at the drain deadline.
        root = os.path.join(self.tmp, "root")
        os.mkdir(root)
        big = os.urandom(12 * 1024 * 1024)
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(big)
        srv = self.start("--web-root", root, "--drain-timeout", "8")
        s = self.sock(srv, timeout=10)
        s.sendall(get("/big.bin"))
        rd = Reader(s)
        rd._fill()  # the answer has started
        time.sleep(0.3)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        time.sleep(0.3)
        r = rd.response()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body == big, "the body was cut or changed")
        done = time.monotonic()
        self.assertTrue(rd.closed(3), "connection kept open after its last answer during drain")
        self.assertLess(time.monotonic() - done, 1.5)
        s.close()
        took = self.assert_exit_within(srv, 8, t0)
        self.assertLess(took - (done - t0), 1.5, "exit waited for the drain deadline")

    def test_keepalive_answer_during_drain_says_close(self):
        # A keep-alive client whose next request arrives during drain gets
        # its answer, told that the connection closes.
        srv = self.start("--drain-timeout", "5")
        s = self.sock(srv)
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(0.2)
        srv.signal(signal.SIGTERM)
        time.sleep(0.3)
        s.sendall(b"Host: t\r\n\r\n" + get("/healthz"))
        rd = Reader(s)
        r = rd.response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Connection").lower(), "close")
        self.assertTrue(rd.closed(2), "pipelined request answered after Connection: close")
        s.close()
        self.assert_exit_within(srv, 3, time.monotonic())


DEBUG_LINE = r'"GET %s HTTP/1\.1" 200'


class Reload(ServerPerTest):

    def request_logged(self, srv, path):
        """Make a request; report whether its debug log line appears."""
        status, _, _ = srv.request("GET", path)
        self.assertEqual(status, 200)
        try:
            srv.wait_for_log(DEBUG_LINE % re.escape(path), timeout=0.5)
            return True
        except AssertionError:
            return False

    def wait_until_logged(self, srv, tag, timeout=5):
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            n += 1
            if self.request_logged(srv, "/healthz?%s=%d" % (tag, n)):
                return
        self.fail("requests never logged at debug level:\n" + srv.log_tail())

    def test_sighup_changes_log_level(self):
        cfg = self.write_config("log-level = info\n")
        srv = self.start("--config", cfg, log_level=None)
        conn = srv.http()
        try:
            conn.request("GET", "/healthz")
            self.assertEqual(conn.getresponse().read(), b"ok\n")
            sock = conn.sock
            self.assertFalse(self.request_logged(srv, "/healthz?before=1"),
                             "debug line logged at log-level info")
            self.write_config("log-level = debug\n")
            srv.signal(signal.SIGHUP)
            self.wait_until_logged(srv, "after")
            # The keep-alive connection from before the reload still answers.
            conn.request("GET", "/healthz?kept=1")
            self.assertEqual(conn.getresponse().read(), b"ok\n")
            self.assertIs(conn.sock, sock, "the connection did not survive the reload")
            srv.wait_for_log(DEBUG_LINE % re.escape("/healthz?kept=1"), timeout=2)
        finally:
            conn.close()
        self.assertTrue(srv.running())

    def test_bad_config_keeps_old_settings(self):
        cfg = self.write_config("log-level = info\n")
        srv = self.start("--config", cfg, log_level=None)
        keep = self.keepalive(srv)
        for bad, culprit in (("log-level = debug\nno-such-option = 1\n", "no-such-option"),
                             ("log-level = loud\n", "loud"),
                             ("log-level = debug\nthreads = many\n", "many")):
            mark = len(srv.log())
            self.write_config(bad)
            srv.signal(signal.SIGHUP)
            # The operator is told what is wrong, naming the culprit.
            srv.wait_for_log(re.escape(culprit), timeout=5, after=mark)
            time.sleep(0.2)
            self.assertTrue(srv.running())
            self.assertFalse(self.request_logged(srv, "/healthz?bad=%d" % mark),
                             "a rejected file changed the log level: %r" % bad)
        keep.sendall(get("/healthz"))
        self.assertEqual(Reader(keep).response().status, 200)
        # A good file afterwards is still picked up.
        self.write_config("log-level = debug\n")
        srv.signal(signal.SIGHUP)
        self.wait_until_logged(srv, "fixed")

    def test_threads_cannot_change(self):
        cfg = self.write_config("threads = 2\nlog-level = debug\n")
        srv = self.start("--config", cfg, threads=None, log_level=None)
        mark = len(srv.log())
        self.write_config("threads = 3\nlog-level = debug\n")
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"threads.*cannot change at run time", timeout=5, after=mark)
        self.assertEqual(srv.metrics()["tsunagi_workers"], 2)
        self.assertTrue(srv.running())

    def test_unchanged_reload_is_quiet(self):
        # Nothing changed: nothing may be reported as changed. (Listening on
        # port 0 must not count as "--http changed" because the kernel chose.)
        cfg = self.write_config("log-level = debug\n")
        srv = self.start("--config", cfg, log_level=None)
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertTrue(srv.running())
        self.assertEqual(srv.request("GET", "/healthz")[0], 200)
        self.assertNotRegex(srv.log()[mark:], r"cannot change at run time")

    def test_reload_many_times_under_load(self):
        cfg = self.write_config("log-level = info\n")
        srv = self.start("--config", cfg, log_level=None)
        conn = srv.http()
        try:
            for i in range(20):
                self.write_config("log-level = %s\n" % ("debug" if i % 2 else "info"))
                srv.signal(signal.SIGHUP)
                conn.request("GET", "/healthz")
                self.assertEqual(conn.getresponse().read(), b"ok\n")
                time.sleep(0.02)
        finally:
            conn.close()
        self.assertTrue(srv.running())


class MaxConnections(ServerPerTest):

    def open_answered(self, srv, timeout=3):
        """A keep-alive connection that got a 200 (retrying while slots free up)."""
        deadline = time.monotonic() + timeout
        while True:
            s = srv.connect()
            s.sendall(get("/healthz"))
            try:
                r = Reader(s).response()
            except (EOFError, ConnectionResetError):
                r = None
            if r is not None and r.status == 200:
                self.socks.append(s)
                return s
            s.close()
            if time.monotonic() > deadline:
                self.fail("no connection slot became free: last answer %r" % r)
            time.sleep(0.05)

    def test_third_connection_refused(self):
        srv = self.start("--max-connections", "2")
        a = self.open_answered(srv)
        b = self.open_answered(srv)
        c = self.sock(srv)
        c.sendall(get("/healthz"))
        rd = Reader(c)
        r = rd.response()
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("Connection").lower(), "close")
        self.assertTrue(rd.closed(2))
        # Closing one frees a slot for a newcomer.
        a.close()
        self.socks.remove(a)
        self.open_answered(srv)
        # The other held connection was never disturbed, and counts the refusal.
        b.sendall(get("/metrics"))
        r = Reader(b).response()
        self.assertEqual(r.status, 200)
        refused = tsunagi.parse_metrics(r.body.decode())["tsunagi_connections_refused_total"]
        self.assertGreaterEqual(refused, 1)


if __name__ == "__main__":
    unittest.main()
