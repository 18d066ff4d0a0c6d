"""TURN over DTLS on the UDP side of tsunagi's --turns port.

- coturn's turnutils_uclient -S (without -t: DTLS over UDP) with
  turnutils_peer (a UDP echo on 127.0.0.1) as the peer: a static user
  (-u/-w) and TURN REST API credentials (-W), channels and Send indications;
  uclient's summary must show every message relayed.
- A Binding over DTLS with `openssl s_client -dtls1_2`.
- Hand-made ClientHellos on a plain UDP socket: one without a cookie gets a
  HelloVerifyRequest and makes no session (/metrics), a wrong cookie the
  same; one with the cookie gets the ServerHello flight, retransmitted, and
  the half-done handshake is dropped after its 10 s deadline (log, metrics).
- Garbage datagrams get no answer; thousands of hellos from many ports
  leave no session behind and do not grow the server's memory.

Every socket binds 127.0.0.1; every wait is bounded.
"""

import os
import select
import socket
import struct
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "turn"))
sys.path.insert(0, HERE)

import turnharness as th  # noqa: E402
from test_turn_coturn_clients import UclientResult  # noqa: E402

SECRET = "dtls-clients-s3cret"
USER, PASSWORD = "alice", "wonderland"
TURNS_UDP_RE = r"listening on turns\+udp://127\.0\.0\.1:(\d+)"

HANDSHAKE, CLIENT_HELLO, SERVER_HELLO, HELLO_VERIFY = 22, 1, 2, 3
RANDOM = bytes(range(32))


def client_hello(cookie=b"", record_seq=0, msg_seq=0):
    """A DTLS 1.2 ClientHello in one record: ECDHE-ECDSA with P-256, which
    the test certificate (an EC key) can serve."""
    exts = (struct.pack("!HHH H", 0x000a, 4, 2, 0x0017)        # supported_groups: P-256
            + struct.pack("!HH BB", 0x000b, 2, 1, 0)           # ec_point_formats
            + struct.pack("!HHH HH", 0x000d, 6, 4, 0x0403, 0x0804)  # signature_algorithms
            + struct.pack("!HH", 0x0017, 0))                   # extended_master_secret
    suites = struct.pack("!HHH", 4, 0xc02b, 0xc02c)
    body = (b"\xfe\xfd" + RANDOM + b"\x00" + bytes([len(cookie)]) + cookie + suites
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    n = len(body)
    msg = (bytes([CLIENT_HELLO]) + n.to_bytes(3, "big") + struct.pack("!H", msg_seq)
           + b"\x00\x00\x00" + n.to_bytes(3, "big") + body)
    return (bytes([HANDSHAKE]) + b"\xfe\xff" + b"\x00\x00" + record_seq.to_bytes(6, "big")
            + struct.pack("!H", len(msg)) + msg)


def handshake_type(datagram):
    """The handshake message type of a datagram's first record, or None."""
    if len(datagram) < 25 or datagram[0] != HANDSHAKE or datagram[1] != 0xfe:
        return None
    return datagram[13]


def hello_verify_cookie(datagram):
    assert handshake_type(datagram) == HELLO_VERIFY, datagram[:32].hex()
    body = datagram[25:]
    return body[3:3 + body[2]]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class DtlsTest(th.TurnTestCase):
    server_kwargs = {"users": ("%s:%s" % (USER, PASSWORD),), "secret": SECRET,
                     "loopback": True, "tls": True}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.dtls_port = int(cls.server.wait_for_log(TURNS_UDP_RE).group(1))
            cls.peer, cls.peer_port = th.start_udp_echo_peer()
        except Exception:
            cls.server.kill()
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.peer.stop()
        super().tearDownClass()

    def metric(self, name):
        return self.server.metrics().get(name, 0.0)

    def udp(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        self.addCleanup(s.close)
        return s

    def recv_or_none(self, s, timeout):
        s.settimeout(timeout)
        try:
            return s.recv(4096)
        except socket.timeout:
            return None

    # --------------------------------------------------------------- coturn --

    def test_dtls_shares_the_tls_port(self):
        self.assertEqual(self.dtls_port, self.server.turns_port)

    def test_ice_servers_offer_no_dtls_url(self):
        # Browsers have no DTLS transport for TURN: only turns: over TCP.
        ice = self.server.ice_servers()
        urls = [u for e in ice["iceServers"]
                for u in (e["urls"] if isinstance(e["urls"], list) else [e["urls"]])]
        turns = [u for u in urls if u.startswith("turns:")]
        self.assertTrue(turns, urls)
        for u in turns:
            self.assertTrue(u.endswith(":%d?transport=tcp" % self.server.turns_port), u)

    def uclient(self, *flags, n=20, m=1, length=200, secret=None, timeout=45):
        argv = ["turnutils_uclient", "-S", *flags, "-L", "127.0.0.1", "-p", self.dtls_port,
                "-e", "127.0.0.1", "-r", self.peer_port, "-n", n, "-m", m, "-l", length,
                "-z", 10]
        argv += ["-W", secret, "-u", "uclient"] if secret else ["-u", USER, "-w", PASSWORD]
        argv.append("127.0.0.1")
        rc, out, err = th.run(argv, timeout=timeout)
        self.assertIsNotNone(rc, "uclient timed out:\n%s%s" % (out[-3000:], err[-3000:]))
        return UclientResult(rc, out, err)

    def assert_relayed(self, r, n, length):
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.errors, [], r)
        self.assertIn("method=DTLSv1.2", r.text, r)
        self.assertEqual(r.sent, n * r.msz, r)
        self.assertEqual(r.sent_bytes, r.sent * length, r)
        lost_allowed = max(1, r.sent // 50)  # the relay-peer hop is UDP
        self.assertGreaterEqual(r.received, r.sent - lost_allowed, r)
        self.assertLessEqual(r.lost, lost_allowed, r)
        self.assertEqual(r.dropped, 0, r)

    def test_uclient_channels_static_user(self):
        before = self.metric("tsunagi_dtls_sessions_total")
        allocs = self.metric("tsunagi_turn_allocations_total")
        # RTP/RTCP pairs from two sockets each: some reach the other worker.
        r = self.uclient(n=20, m=2, length=200)
        self.assert_relayed(r, 20, 200)
        self.assertGreaterEqual(self.metric("tsunagi_dtls_sessions_total") - before, r.msz, r)
        self.assertGreaterEqual(self.metric("tsunagi_turn_allocations_total") - allocs, r.msz)

    def test_uclient_send_indications_rest_secret(self):
        r = self.uclient("-s", "-c", n=20, m=2, length=500, secret=SECRET)
        self.assert_relayed(r, 20, 500)

    def test_uclient_wrong_password_is_refused(self):
        argv = ["turnutils_uclient", "-S", "-L", "127.0.0.1", "-p", self.dtls_port, "-e",
                "127.0.0.1", "-r", self.peer_port, "-n", 5, "-m", 1, "-u", USER, "-w",
                "not-" + PASSWORD, "127.0.0.1"]
        rc, out, err = th.run(argv, timeout=30)
        r = UclientResult(rc, out, err)
        self.assertNotEqual(r.rc, 0, r)
        self.assertFalse(r.received, r)

    def test_binding_over_dtls(self):
        tid = os.urandom(12)
        request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid
        proc = subprocess.Popen(["openssl", "s_client", "-dtls1_2", "-quiet", "-connect",
                                 "127.0.0.1:%d" % self.dtls_port],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            os.set_blocking(proc.stdout.fileno(), False)
            answer, deadline, sent_at = b"", time.monotonic() + 15, 0
            while len(answer) < 20 or len(answer) < 20 + struct.unpack("!H", answer[2:4])[0]:
                now = time.monotonic()
                self.assertLess(now, deadline, "no Binding answer over DTLS: %r" % answer)
                if now - sent_at > 1:  # until the handshake is done and it is read
                    proc.stdin.write(request)
                    proc.stdin.flush()
                    sent_at = now
                chunk = proc.stdout.read(4096)
                if chunk:
                    answer += chunk
                else:
                    time.sleep(0.05)
        finally:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()
        msg_type, length, cookie = struct.unpack("!HHI", answer[:8])
        self.assertEqual(msg_type, 0x0101, answer.hex())  # Binding success
        self.assertEqual(cookie, 0x2112A442)
        self.assertEqual(answer[8:20], tid)
        # XOR-MAPPED-ADDRESS: 127.0.0.1 and the client's port.
        attrs, found = answer[20:20 + length], None
        while attrs:
            t, n = struct.unpack("!HH", attrs[:4])
            if t == 0x0020:
                port = struct.unpack("!H", attrs[6:8])[0] ^ 0x2112
                ip = bytes(a ^ b for a, b in zip(attrs[8:12], b"\x21\x12\xa4\x42"))
                found = (socket.inet_ntoa(ip), port)
            attrs = attrs[4 + ((n + 3) & ~3):]
        self.assertIsNotNone(found, answer.hex())
        self.assertEqual(found[0], "127.0.0.1")

    # -------------------------------------------------------------- negative --

    def test_garbage_gets_no_answer(self):
        s = self.udp()
        dropped = self.metric("tsunagi_dtls_dropped_total")
        sessions = self.metric("tsunagi_dtls_sessions")
        garbage = [b"", b"\x00", b"GET / HTTP/1.1\r\n\r\n", os.urandom(100), os.urandom(1400),
                   b"\x16\xfe\xfd" + os.urandom(40),           # handshake, not a hello
                   b"\x17\xfe\xfd" + os.urandom(60),           # application data, no session
                   client_hello()[:30],                         # a truncated hello
                   struct.pack("!HHI", 1, 0, 0x2112A442) + os.urandom(12)]  # plain STUN
        for g in garbage:
            s.sendto(g, ("127.0.0.1", self.dtls_port))
        self.assertIsNone(self.recv_or_none(s, 1.0))
        self.assertGreaterEqual(self.metric("tsunagi_dtls_dropped_total") - dropped, 6)
        self.assertEqual(self.metric("tsunagi_dtls_sessions"), sessions)
        # Still answering hellos.
        s.sendto(client_hello(), ("127.0.0.1", self.dtls_port))
        self.assertEqual(len(hello_verify_cookie(s.recv(4096))), 21)

    def test_hello_without_cookie_makes_no_session(self):
        s = self.udp()
        verify = self.metric("tsunagi_dtls_hello_verify_total")
        sessions = self.metric("tsunagi_dtls_sessions")
        s.sendto(client_hello(), ("127.0.0.1", self.dtls_port))
        cookie = hello_verify_cookie(s.recv(4096))
        self.assertEqual(len(cookie), 21)
        # A wrong cookie is no cookie: another HelloVerifyRequest.
        bad = bytes([cookie[0]]) + bytes(b ^ 0xff for b in cookie[1:])
        s.sendto(client_hello(bad, record_seq=1, msg_seq=1), ("127.0.0.1", self.dtls_port))
        self.assertEqual(hello_verify_cookie(s.recv(4096)), cookie)
        self.assertGreaterEqual(self.metric("tsunagi_dtls_hello_verify_total") - verify, 2)
        self.assertEqual(self.metric("tsunagi_dtls_sessions"), sessions)
        # A cookie is bound to the address: another port's is refused too.
        other = self.udp()
        other.sendto(client_hello(cookie, 1, 1), ("127.0.0.1", self.dtls_port))
        self.assertEqual(handshake_type(other.recv(4096)), HELLO_VERIFY)
        self.assertEqual(self.metric("tsunagi_dtls_sessions"), sessions)

    def test_abandoned_handshake_is_dropped(self):
        s = self.udp()
        failed = self.metric("tsunagi_dtls_handshakes_failed_total")
        s.sendto(client_hello(), ("127.0.0.1", self.dtls_port))
        cookie = hello_verify_cookie(s.recv(4096))
        start = time.monotonic()
        s.sendto(client_hello(cookie, 1, 1), ("127.0.0.1", self.dtls_port))
        self.assertEqual(handshake_type(s.recv(4096)), SERVER_HELLO)
        self.assertEqual(self.metric("tsunagi_dtls_handshakes"), 1)
        # The flight is retransmitted while nobody answers (1 s, then 2 s...).
        hellos, deadline = 1, time.monotonic() + 4
        while time.monotonic() < deadline:
            d = self.recv_or_none(s, 0.5)
            if d is not None and handshake_type(d) == SERVER_HELLO:
                hellos += 1
        self.assertGreaterEqual(hellos, 2, "no retransmission of the server's flight")
        # Dropped at the 10 s deadline, not before.
        port = s.getsockname()[1]
        pattern = r"dtls: peer=127\.0\.0\.1:%d session handshake failed: handshake timed out" % port
        self.server.wait_for_log(pattern, timeout=15)
        self.assertGreaterEqual(time.monotonic() - start, 9.5)
        self.assertEqual(self.metric("tsunagi_dtls_handshakes"), 0)
        self.assertGreaterEqual(self.metric("tsunagi_dtls_handshakes_failed_total") - failed, 1)
        # Nothing is sent for it any more.
        while self.recv_or_none(s, 0.2) is not None:
            pass
        self.assertIsNone(self.recv_or_none(s, 1.5))



class DtlsFloodTest(th.TurnTestCase):
    """Its own server: ASan's quarantine of freed memory (up to 256 MiB) would
    make every malloc/free pair look like growth, so it is off here, and
    only here."""

    server_kwargs = {"tls": True}

    @classmethod
    def setUpClass(cls):
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = ((saved + ":") if saved else
                                      "detect_leaks=1:abort_on_error=0:exitcode=66:") \
            + "quarantine_size_mb=0"
        try:
            super().setUpClass()
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved
        cls.dtls_port = int(cls.server.wait_for_log(TURNS_UDP_RE).group(1))

    def metric(self, name):
        return self.server.metrics().get(name, 0.0)

    def udp(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        return s

    def test_many_hellos_do_not_grow_memory(self):
        socks = [self.udp() for _ in range(64)]
        for s in socks:
            s.setblocking(False)
        dest = ("127.0.0.1", self.dtls_port)

        def drain(wait):
            n = 0
            while select.select(socks, [], [], wait)[0]:
                for s in socks:
                    try:
                        while s.recv(4096):
                            n += 1
                    except BlockingIOError:
                        pass
            return n

        def flood(rounds):
            answered = 0
            for r in range(rounds):
                for i, s in enumerate(socks):
                    # No cookie, then a forged one.
                    s.sendto(client_hello(os.urandom(21) if (r + i) & 1 else b""), dest)
                answered += drain(0)
            return answered + drain(0.3)

        sessions = self.metric("tsunagi_dtls_sessions")
        self.assertGreater(flood(20), 0)  # warm up
        before = rss_kib(self.server.proc.pid)
        answered = flood(150)
        after = rss_kib(self.server.proc.pid)
        self.assertGreater(answered, 150 * 64 // 2, "most hellos get a HelloVerifyRequest")
        # No new session (one left by an earlier test may have gone meanwhile).
        self.assertLessEqual(self.metric("tsunagi_dtls_sessions"), sessions)
        # 9,600 hellos: not even a kilobyte each.
        self.assertLess(after - before, 8 * 1024, "RSS grew from %d to %d KiB" % (before, after))

if __name__ == "__main__":
    unittest.main(verbosity=2)
