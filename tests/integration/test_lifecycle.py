"""Signals (SIGTERM drain, with TURN allocations too; SIGHUP reload) and --max-connections.

Each test runs its own server, since most of them end it.
"""

import os
import re
import signal
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402
from tsunagi import Reader, get  # noqa: E402


class ServerPerTest(tsunagi.ServerPerTest):

    tmp_prefix = "tsunagi-life-"

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


# ------------------------------------------------------- TURN and drain --

TURN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "turn")
sys.path.insert(0, TURN_DIR)
import stunclient as stun  # noqa: E402
from turnharness import TurnServer  # noqa: E402

TURN_USER, TURN_PASS = "drain", "drain-pw"


def ws_open(port, path):
    """A raw WebSocket client on path (handshake done): the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % path).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError("WebSocket handshake: connection closed after %r" % head)
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise AssertionError("WebSocket handshake refused: %r" % head[:200])
    return s


def ws_close_code(s, timeout=3):
    """Read frames until a Close: its status code (None: the stream ended first)."""
    s.settimeout(timeout)
    buf = b""
    while True:
        if len(buf) >= 2:
            op, n = buf[0] & 0x0F, buf[1] & 0x7F
            if n < 126 and len(buf) >= 2 + n:
                if op == 0x8:
                    return struct.unpack("!H", buf[2:4])[0] if n >= 2 else 0
                buf = buf[2 + n:]
                continue
        data = s.recv(4096)
        if not data:
            return None
        buf += data


class TurnRelay:
    """A UDP peer and a TURN client whose allocation relays to it over a channel."""

    CHANNEL = 0x4001

    def __init__(self, srv, proto="udp", user=TURN_USER, password=TURN_PASS):
        self.peer = stun.udp_peer()
        self.client = stun.Client(srv.turn_port if proto == "udp" else srv.turn_tcp_port, proto,
                                  user=user, password=password)
        r = self.client.allocate()
        if r.cls != stun.SUCCESS:
            raise AssertionError("Allocate refused: %r" % r)
        self.relay = r.xor_addr(stun.XOR_RELAYED_ADDRESS)
        r = self.client.channel_bind(self.CHANNEL, *self.peer.getsockname())
        if r.cls != stun.SUCCESS:
            raise AssertionError("ChannelBind refused: %r" % r)

    def roundtrip(self, tag, timeout=1.0):
        """Client -> peer and peer -> client once; True when both arrive."""
        out = b"to-peer " + tag
        self.client.send_channel(self.CHANNEL, out)
        got = stun.recv_or_none(self.peer, timeout)
        if got is None or got[0] != out:
            return False
        back = b"to-client " + tag
        self.peer.sendto(back, tuple(self.relay))
        try:
            kind, number, payload = self.client.recv_data(timeout)
        except (stun.Timeout, EOFError):
            return False
        return (kind, number, payload) == ("channel", self.CHANNEL, back)

    def close(self):
        self.client.close()
        self.peer.close()


class TurnDrain(ServerPerTest):
    """SIGTERM with TURN allocations: they keep relaying until they go or
    --drain-timeout passes; nothing new is taken meanwhile."""

    def start_turn(self, *args):
        srv = TurnServer("--drain-timeout", *args, users=["%s:%s" % (TURN_USER, TURN_PASS)],
                         loopback=True, log_level="debug")
        self.servers.append(srv)
        return srv.start()

    def relay(self, srv, proto="udp"):
        r = TurnRelay(srv, proto)
        self.addCleanup(r.close)
        self.assertTrue(r.roundtrip(b"before"), "the relay did not work before SIGTERM")
        return r

    def test_udp_allocation_relays_until_deadline(self):
        srv = self.start_turn("2", "--echo")
        relay = self.relay(srv)
        ws = ws_open(srv.port, "/echo")
        peerjs = ws_open(srv.port, "/peerjs/peerjs?key=peerjs&id=drainee&token=t")
        self.socks += [ws, peerjs]
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        # WebSocket clients are told at once that the server goes away
        # (PeerJS has no goodbye message of its own: only the Close).
        self.assertEqual(ws_close_code(ws), 1001)
        self.assertEqual(ws_close_code(peerjs), 1001)
        # Listeners stop accepting at once: TCP is refused (HTTP and TURN).
        # Each worker closes its own SO_REUSEPORT socket when its drain
        # message arrives, so allow the other workers a moment.
        for port in (srv.port, srv.turn_tcp_port):
            deadline = time.monotonic() + 1.0
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except ConnectionRefusedError:
                    break
                self.assertLess(time.monotonic(), deadline, "port %d still accepts" % port)
                time.sleep(0.02)
        # A newcomer's Binding is still answered, its Allocate refused with
        # 508, by whichever worker the kernel hands it to (several source
        # ports: the idle worker, done draining, answers too).
        for _ in range(6):
            late = stun.Client(srv.turn_port, user=TURN_USER, password=TURN_PASS)
            self.addCleanup(late.close)
            self.assertEqual(late.binding().cls, stun.SUCCESS)
            r = late.allocate()
            self.assertEqual((r.cls, r.code()), (stun.ERROR, 508), r)
        # The call in progress keeps its media, Refresh and permissions.
        r = relay.client.refresh(600)
        self.assertEqual(r.cls, stun.SUCCESS, r)
        self.assertEqual(relay.client.create_permission("127.0.0.1").cls, stun.SUCCESS)
        n = 0
        while time.monotonic() - t0 < 1.6:
            n += 1
            self.assertTrue(relay.roundtrip(b"drain %d" % n),
                            "relay cut %.2f s after SIGTERM" % (time.monotonic() - t0))
            time.sleep(0.1)
        self.assertTrue(srv.running(), "exited before the drain deadline")
        took = self.assert_exit_within(srv, 3, t0)
        self.assertGreaterEqual(took, 1.8, "did not wait for the allocation")
        srv.wait_for_log(r"drain timeout: closing \d+ connections, 1 TURN relays", timeout=1)

    def test_refresh_zero_ends_the_drain(self):
        # The last allocation going (LIFETIME 0) is the end of the drain.
        srv = self.start_turn("10")
        udp = self.relay(srv)
        tcp = self.relay(srv, "tcp")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertTrue(udp.roundtrip(b"udp") and tcp.roundtrip(b"tcp"))
        self.assertEqual(udp.client.refresh(0).cls, stun.SUCCESS)
        time.sleep(0.3)
        self.assertTrue(srv.running(), "exited with a TCP allocation left")
        self.assertTrue(tcp.roundtrip(b"tcp again"), "the TCP allocation stopped relaying")
        self.assertEqual(tcp.client.refresh(0).cls, stun.SUCCESS)
        # Its connection has nothing left to carry: closed after the answer.
        self.assertTrue(tcp.client.t.closed(2), "TURN TCP connection kept open")
        took = self.assert_exit_within(srv, 3, t0)
        self.assertLess(took, 3, "waited for the drain deadline")

    def test_idle_turn_server_exits_promptly(self):
        # No allocation: nothing to wait for (a TCP client without one is closed).
        srv = self.start_turn("10")
        idle = stun.Client(srv.turn_tcp_port, "tcp")
        self.addCleanup(idle.close)
        self.assertEqual(idle.binding().cls, stun.SUCCESS)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertTrue(idle.t.closed(2), "TURN TCP client without allocation kept")
        self.assert_exit_within(srv, 1.5, t0)

    def test_second_sigterm_cuts_allocations(self):
        srv = self.start_turn("30")
        relay = self.relay(srv)
        srv.signal(signal.SIGTERM)
        time.sleep(0.3)
        self.assertTrue(relay.roundtrip(b"held"))
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assert_exit_within(srv, 1, t0)


if __name__ == "__main__":
    unittest.main()
