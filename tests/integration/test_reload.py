"""SIGHUP with real clients: what a reload changes, and that it drops nothing.

- TLS: the certificate files are replaced and SIGHUP sent; new HTTPS, TURN
  over TLS and TURN over DTLS sessions get the new certificate, sessions
  opened before keep working; a broken key leaves the certificate in force,
  with an error line.
- TURN credentials: static users and the REST API secret of the --config
  file change; the old ones get 401 from then on, the new ones allocate, and
  an allocation made before keeps relaying (its own Refresh is then a 401,
  as coturn answers: it lives until it expires).
- Limits: --max-connections-per-ip and --ws-max-message apply to what comes
  next; the connections already open stay. (Log level: test_lifecycle.py.)

Each test runs its own server. Everything is on 127.0.0.1; waits are bounded.
"""

import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "turn"))
sys.path.insert(0, HERE)

import stunclient as stun  # noqa: E402
from test_lifecycle import ServerPerTest, TurnRelay, ws_open  # noqa: E402
from tsunagi import Reader, get  # noqa: E402
from turnharness import TurnServer, turn_credentials  # noqa: E402

HTTPS_RE = r"listening on https://127\.0\.0\.1:(\d+)"
TURNS_UDP_RE = r"listening on turns\+udp://127\.0\.0\.1:(\d+)"
RELOADED_RE = r"configuration reloaded"


def make_cert(directory, name):
    """A self-signed EC certificate with CN name: (cert path, key path)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + name],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def der_of(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def install(src, dst):
    """Copy src over dst atomically (as certbot's renewal swaps files)."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst + ".new", "wb") as f:
        f.write(data)
    os.replace(dst + ".new", dst)


def tls_connect(port):
    """A TLS client socket to port (no verification: the test compares certificates)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def binding_request():
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12)


class DtlsClient:
    """openssl s_client over DTLS 1.2: the certificate it saw, and Bindings
    sent through its session."""

    def __init__(self, port):
        self.proc = subprocess.Popen(["openssl", "s_client", "-dtls1_2", "-connect",
                                      "127.0.0.1:%d" % port],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.out = b""

    def _read(self):
        chunk = self.proc.stdout.read(65536)
        if chunk:
            self.out += chunk
        return bool(chunk)

    def certificate(self, timeout=15):
        """The server certificate (DER) s_client printed."""
        deadline = time.monotonic() + timeout
        while b"-----END CERTIFICATE-----" not in self.out:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("no certificate from s_client: %r" % self.out[-500:])
            if not self._read():
                time.sleep(0.05)
        start = self.out.index(b"-----BEGIN CERTIFICATE-----")
        end = self.out.index(b"-----END CERTIFICATE-----") + len(b"-----END CERTIFICATE-----")
        return ssl.PEM_cert_to_DER_cert(self.out[start:end].decode())

    def binding(self, timeout=10):
        """Send Binding requests through the session until a success comes back."""
        req = binding_request()
        deadline, sent = time.monotonic() + timeout, 0
        mark = len(self.out)
        while True:
            now = time.monotonic()
            if now > deadline:
                return False
            if now - sent > 1:
                self.proc.stdin.write(req)
                self.proc.stdin.flush()
                sent = now
            if not self._read():
                time.sleep(0.05)
            # The answer's transaction id, among s_client's other output.
            i = self.out.find(req[4:], mark)
            if i >= 4 and self.out[i - 4:i - 2] == b"\x01\x01":
                return True

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


class Certificates(ServerPerTest):

    def setUp(self):
        super().setUp()
        self.a = make_cert(self.tmp, "tsunagi-a")
        self.b = make_cert(self.tmp, "tsunagi-b")
        self.cert = os.path.join(self.tmp, "live.crt")
        self.key = os.path.join(self.tmp, "live.key")
        install(self.a[0], self.cert)
        install(self.a[1], self.key)
        self.srv = TurnServer("--https", "127.0.0.1:0", "--turns", "127.0.0.1:0", "--cert",
                              self.cert, "--pkey", self.key, "--static-auth-secret", "s")
        self.servers.append(self.srv)
        self.srv.start()
        self.https = int(self.srv.wait_for_log(HTTPS_RE).group(1))
        self.turns = int(self.srv.wait_for_log(r"listening on turns://127\.0\.0\.1:(\d+)").group(1))
        self.dtls = int(self.srv.wait_for_log(TURNS_UDP_RE).group(1))

    def tls(self, port):
        s = tls_connect(port)
        self.socks.append(s)
        return s

    def dtls_client(self):
        c = DtlsClient(self.dtls)
        self.addCleanup(c.close)
        return c

    def https_get(self, s):
        s.sendall(get("/healthz"))
        return Reader(s).response().status

    def turns_binding(self, s):
        req = binding_request()
        s.sendall(req)
        s.settimeout(5)
        answer = b""
        while len(answer) < 20:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer[:2] == b"\x01\x01" and answer[8:20] == req[8:20]

    def reload(self):
        mark = len(self.srv.log())
        self.srv.signal(signal.SIGHUP)
        self.srv.wait_for_log(RELOADED_RE, timeout=5, after=mark)
        return mark

    def test_new_sessions_get_the_new_certificate(self):
        old_https, old_turns = self.tls(self.https), self.tls(self.turns)
        old_dtls = self.dtls_client()
        self.assertEqual(old_https.getpeercert(True), der_of(self.a[0]))
        self.assertEqual(old_turns.getpeercert(True), der_of(self.a[0]))
        self.assertEqual(old_dtls.certificate(), der_of(self.a[0]))
        self.assertEqual(self.https_get(old_https), 200)
        self.assertTrue(old_dtls.binding(), "no Binding answer over DTLS before the reload")

        install(self.b[0], self.cert)
        install(self.b[1], self.key)
        mark = self.reload()
        self.srv.wait_for_log(r"certificate reloaded", timeout=2, after=mark)

        for port in (self.https, self.turns):
            self.assertEqual(self.tls(port).getpeercert(True), der_of(self.b[0]),
                             "port %d still serves the old certificate" % port)
        self.assertEqual(self.dtls_client().certificate(), der_of(self.b[0]))
        # The sessions from before the reload go on, on the old certificate.
        self.assertEqual(self.https_get(old_https), 200)
        self.assertTrue(self.turns_binding(old_turns), "TURN over TLS session broken by reload")
        self.assertTrue(old_dtls.binding(), "DTLS session broken by the reload")
        self.assertTrue(self.srv.running())

    def test_broken_key_keeps_the_certificate(self):
        keep = self.tls(self.https)
        install(self.b[0], self.cert)
        with open(self.key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        mark = self.reload()
        self.srv.wait_for_log(r"error.*--pkey.*certificate in force stays", timeout=2, after=mark)
        self.assertNotIn("certificate reloaded", self.srv.log()[mark:])
        for port in (self.https, self.turns):
            self.assertEqual(self.tls(port).getpeercert(True), der_of(self.a[0]),
                             "a broken key replaced the certificate on port %d" % port)
        self.assertEqual(self.dtls_client().certificate(), der_of(self.a[0]))
        self.assertEqual(self.https_get(keep), 200)
        # A key that does not match the certificate is refused as well...
        install(self.a[1], self.key)
        mark = self.reload()
        self.srv.wait_for_log(r"error.*--pkey.*certificate in force stays", timeout=2, after=mark)
        # ... and the matching pair, once there, is taken.
        install(self.b[1], self.key)
        mark = self.reload()
        self.srv.wait_for_log(r"certificate reloaded", timeout=2, after=mark)
        self.assertEqual(self.tls(self.https).getpeercert(True), der_of(self.b[0]))


class Credentials(ServerPerTest):

    def start_turn(self, config):
        path = self.write_config(config)
        srv = TurnServer("--config", path, loopback=True)
        self.servers.append(srv)
        return srv.start()

    def reload(self, srv, config):
        self.write_config(config)
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(RELOADED_RE, timeout=5, after=mark)

    def allocate_code(self, srv, user, password):
        c = stun.Client(srv.turn_port, user=user, password=password)
        try:
            r = c.allocate()
            return 0 if r.cls == stun.SUCCESS else r.code()
        finally:
            c.close()

    def relay(self, srv, user, password, proto="udp"):
        r = TurnRelay(srv, proto, user=user, password=password)
        self.addCleanup(r.close)
        self.assertTrue(r.roundtrip(b"before"))
        return r

    def test_static_users(self):
        srv = self.start_turn("user = a:1\n")
        self.assertEqual(self.allocate_code(srv, "b", "2"), 401)
        udp = self.relay(srv, "a", "1")
        tcp = self.relay(srv, "a", "1", "tcp")
        self.reload(srv, "user = b:2\n")
        self.assertEqual(self.allocate_code(srv, "a", "1"), 401)
        self.assertEqual(self.allocate_code(srv, "b", "2"), 0)
        # What a has open keeps relaying, over UDP and over its TCP connection...
        self.assertTrue(udp.roundtrip(b"after"), "a's UDP allocation cut by the reload")
        self.assertTrue(tcp.roundtrip(b"after"), "a's TCP allocation cut by the reload")
        # ... but a cannot extend it any more: it runs out at its lifetime.
        r = udp.client.refresh(600)
        self.assertEqual((r.cls, r.code()), (stun.ERROR, 401), r)
        self.assertTrue(udp.roundtrip(b"after refresh"))

    def test_static_auth_secret(self):
        srv = self.start_turn("static-auth-secret = first\n")
        old_user, old_pass = stun.rest_credentials("first", "u")
        relay = self.relay(srv, old_user, old_pass)
        self.reload(srv, "static-auth-secret = second\n")
        self.assertEqual(self.allocate_code(srv, *stun.rest_credentials("first", "u2")), 401)
        self.assertEqual(self.allocate_code(srv, *stun.rest_credentials("second", "u3")), 0)
        self.assertTrue(relay.roundtrip(b"after"), "allocation cut by the secret change")
        # /api/ice-servers hands out credentials under the new secret.
        user, cred, _ = turn_credentials(srv.ice_servers())
        self.assertEqual(self.allocate_code(srv, user, cred), 0)


class Limits(ServerPerTest):

    def test_max_connections_per_ip(self):
        cfg = self.write_config("max-connections-per-ip = 0\n")
        srv = self.start("--config", cfg)
        held = [self.keepalive(srv) for _ in range(3)]
        self.write_config("max-connections-per-ip = 2\n")
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(RELOADED_RE, timeout=5, after=mark)
        # Three are open, two allowed: a newcomer is refused...
        s = self.sock(srv)
        s.sendall(get("/healthz"))
        self.assertEqual(Reader(s).response().status, 503)
        # ... and the three from before are not dropped.
        for h in held:
            h.sendall(get("/healthz"))
            self.assertEqual(Reader(h).response().status, 200)
        # Raised again: the newcomer is served.
        self.write_config("max-connections-per-ip = 10\n")
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(RELOADED_RE, timeout=5, after=mark)
        self.keepalive(srv)

    def ws_answer(self, s, payload, timeout=3):
        """Send one masked text message: the frames that come back up to and
        including a Close, as [(opcode, payload)] (a silent server: [])."""
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack("!H", n))
        s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        s.settimeout(timeout)
        buf, frames = b"", []
        while True:
            while len(buf) >= 2:
                op, n, hl = buf[0] & 0x0F, buf[1] & 0x7F, 2
                if n == 126 and len(buf) >= 4:
                    n, hl = struct.unpack("!H", buf[2:4])[0], 4
                if n > 126 or len(buf) < hl + n:
                    break
                frames.append((op, buf[hl:hl + n]))
                buf = buf[hl + n:]
                if op == 0x8:
                    return frames
            try:
                data = s.recv(65536)
            except socket.timeout:
                return frames
            if not data:
                return frames
            buf += data

    def ws_ping(self, s, timeout=3):
        """Send a Ping; True when its Pong comes back (other frames are skipped)."""
        s.sendall(b"\x89\x84" + b"\0\0\0\0" + b"ping")
        s.settimeout(timeout)
        buf = b""
        while True:
            while len(buf) >= 2 and (buf[1] & 0x7F) < 126 and len(buf) >= 2 + (buf[1] & 0x7F):
                op, n = buf[0] & 0x0F, buf[1] & 0x7F
                if op == 0xA:
                    return buf[2:2 + n] == b"ping"
                if op == 0x8:
                    return False
                buf = buf[2 + n:]
            data = s.recv(65536)
            if not data:
                return False
            buf += data

    def test_ws_max_message(self):
        cfg = self.write_config("ws-max-message = 4096\n")
        srv = self.start("--config", cfg, "--echo")
        big = b'{"type":"%s"}' % (b"x" * 2000)
        # /echo never allows less than 16 MiB: the limit is seen on /signaling.
        control = ws_open(srv.port, "/signaling")
        self.socks.append(control)
        frames = self.ws_answer(control, big)
        self.assertNotIn(b"size limit", b"".join(p for _, p in frames))
        self.assertNotIn((0x8, struct.pack("!H", 1009)), [(op, p[:2]) for op, p in frames])
        old = ws_open(srv.port, "/signaling")
        self.socks.append(old)
        self.write_config("ws-max-message = 1024\n")
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(RELOADED_RE, timeout=5, after=mark)
        # Over the new limit: refused with 1009 (Message Too Big)...
        new = ws_open(srv.port, "/signaling")
        self.socks.append(new)
        frames = self.ws_answer(new, big)
        self.assertTrue(frames and frames[-1][0] == 0x8, frames)
        self.assertEqual(struct.unpack("!H", frames[-1][1][:2])[0], 1009, frames)
        # ... while the connection opened before the reload stays open.
        self.assertTrue(self.ws_ping(old), "the connection from before the reload is gone")

if __name__ == "__main__":
    unittest.main()
