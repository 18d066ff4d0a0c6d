"""TURN TCP relays (RFC 6062) against real TCP peers on 127.0.0.1.

The client is tests/turn/stunclient.py (written from RFC 8489 and RFC 8656)
with the three RFC 6062 messages built here; the peers are Python sockets.
tsunagi runs with two worker threads, so a data connection often reaches
another worker than its allocation's, which must hand it over.

Checked: Allocate with REQUESTED-TRANSPORT 6 (and 400 over UDP); Connect to
a listening peer (the peer sees the relayed address as its client), then
ConnectionBind on a new connection and bytes both ways, a megabyte each way
(backpressure); Connect errors 403 (no permission), 446 (already connected)
and 447 (nobody listening); a peer connecting to the relayed address: the
ConnectionAttempt indication, ConnectionBind, bytes both ways; a peer
without a permission is refused; ConnectionBind with an unknown
CONNECTION-ID is 400; deleting the allocation closes the peer and data
connections. And coturn's turnutils_uclient -T -y: its clients reach each
other through TCP relays, one by Connect, the other by ConnectionAttempt.
"""

import os
import re
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "turn"))

import stunclient as sc  # noqa: E402
import turnharness as th  # noqa: E402

USER, PASSWORD = "u", "p"
CONNECT, CONNECTION_BIND, CONNECTION_ATTEMPT = 0x00A, 0x00B, 0x00C
CONNECTION_ID = 0x002A


class EchoPeer:
    """A TCP echo server on 127.0.0.1: remembers who connected."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.clients = []
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.clients.append(addr)
            self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def recv_exactly(sock, n, timeout=10.0):
    sock.settimeout(timeout)
    out = b""
    while len(out) < n:
        chunk = sock.recv(min(65536, n - len(out)))
        if not chunk:
            raise AssertionError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def wait_closed(sock, timeout=5.0):
    """True when sock reads end of stream (or a reset) within timeout."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return False


class TcpRelay(th.TurnTestCase):
    server_kwargs = {"users": ("%s:%s" % (USER, PASSWORD),), "loopback": True}

    def setUp(self):
        self.closers = []

    def tearDown(self):
        for c in reversed(self.closers):
            c.close()

    def client(self, proto="tcp"):
        port = self.server.turn_tcp_port if proto == "tcp" else self.server.turn_port
        c = sc.Client(port, proto, user=USER, password=PASSWORD, timeout=5.0)
        self.closers.append(c)
        return c

    def allocate(self):
        ctl = self.client()
        r = ctl.allocate(transport=sc.TCP_PROTO)
        self.assertEqual(r.cls, sc.SUCCESS, r)
        relayed = r.xor_addr(sc.XOR_RELAYED_ADDRESS)
        self.assertTrue(self.server.in_relay_range(relayed[1]), relayed)
        return ctl, relayed

    def connect(self, ctl, ip, port):
        def make():
            m = sc.Message(CONNECT)
            m.add_xor_addr(sc.XOR_PEER_ADDRESS, ip, port)
            return m
        return ctl.request(make)

    def bind(self, cid):
        """A data connection bound to cid: its socket, and bytes already read past the answer."""
        data = self.client()

        def make():
            m = sc.Message(CONNECTION_BIND)
            m.add(CONNECTION_ID, struct.pack("!I", cid))
            return m
        r = data.request(make)
        return data, r

    def expect_bound(self, cid):
        """The data connection's socket, and what it read past the answer."""
        data, r = self.bind(cid)
        self.assertEqual(r.cls, sc.SUCCESS, r)
        return data.t.sock, data.t.buf

    def peer_socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        self.closers.append(s)
        return s

    # ------------------------------------------------------------ Allocate --

    def test_tcp_allocation_needs_a_stream(self):
        r = self.client("udp").allocate(transport=sc.TCP_PROTO)
        self.assertEqual((r.cls, r.code()), (sc.ERROR, 400))

    # ------------------------------------------------------------- Connect --

    def test_connect_and_relay_both_ways(self):
        peer = EchoPeer()
        self.closers.append(peer)
        ctl, relayed = self.allocate()
        r = self.connect(ctl, "127.0.0.1", peer.port)
        self.assertEqual((r.cls, r.code() if r.cls == sc.ERROR else 0), (sc.ERROR, 403))
        self.assertEqual(ctl.create_permission("127.0.0.1").cls, sc.SUCCESS)
        r = self.connect(ctl, "127.0.0.1", peer.port)
        self.assertEqual(r.cls, sc.SUCCESS, r)
        cid = struct.unpack("!I", r.get(CONNECTION_ID))[0]
        # The peer's client is the relayed transport address.
        deadline = time.monotonic() + 5
        while not peer.clients and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(peer.clients, [relayed])
        # Already connected to that peer.
        r = self.connect(ctl, "127.0.0.1", peer.port)
        self.assertEqual((r.cls, r.code()), (sc.ERROR, 446))

        data, early = self.expect_bound(cid)
        self.assertEqual(early, b"")
        data.sendall(b"hello, peer")
        self.assertEqual(recv_exactly(data, 11), b"hello, peer")
        # A megabyte, written while the echo comes back: both directions
        # fill up and must be paused and resumed, never lose a byte.
        blob = os.urandom(1 << 20)
        got = []
        reader = threading.Thread(target=lambda: got.append(recv_exactly(data, len(blob), 30)))
        reader.start()
        data.sendall(blob)
        reader.join(35)
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0] == blob, "the echoed megabyte differs")

    def test_connect_nobody_listening_447(self):
        ctl, _ = self.allocate()
        self.assertEqual(ctl.create_permission("127.0.0.1").cls, sc.SUCCESS)
        r = self.connect(ctl, "127.0.0.1", free_tcp_port())
        self.assertEqual((r.cls, r.code()), (sc.ERROR, 447))

    def test_connect_on_udp_allocation_400(self):
        ctl = self.client()
        self.assertEqual(ctl.allocate().cls, sc.SUCCESS)
        self.assertEqual(ctl.create_permission("127.0.0.1").cls, sc.SUCCESS)
        r = self.connect(ctl, "127.0.0.1", 9)
        self.assertEqual((r.cls, r.code()), (sc.ERROR, 400))

    def test_unknown_connection_id_400(self):
        ctl, _ = self.allocate()
        _, r = self.bind(0x00ABCDEF)
        self.assertEqual((r.cls, r.code()), (sc.ERROR, 400))

    # ---------------------------------------------------- ConnectionAttempt --

    def test_peer_connects_to_relay(self):
        ctl, relayed = self.allocate()
        self.assertEqual(ctl.create_permission("127.0.0.1").cls, sc.SUCCESS)
        peer = self.peer_socket()
        peer.connect(relayed)
        m = sc.parse(ctl.next_frame(5))
        self.assertEqual((m.method, m.cls), (CONNECTION_ATTEMPT, sc.INDICATION))
        self.assertEqual(m.xor_addr(sc.XOR_PEER_ADDRESS), peer.getsockname())
        cid = struct.unpack("!I", m.get(CONNECTION_ID))[0]
        peer.sendall(b"sent before the bind")
        data, early = self.expect_bound(cid)
        # It may come in the same read as the answer.
        self.assertEqual(early + recv_exactly(data, 20 - len(early)), b"sent before the bind")
        data.sendall(b"to the peer")
        self.assertEqual(recv_exactly(peer, 11), b"to the peer")
        peer.sendall(b"to the client")
        self.assertEqual(recv_exactly(data, 13), b"to the client")
        # A second bind of the same id.
        _, r = self.bind(cid)
        self.assertEqual((r.cls, r.code()), (sc.ERROR, 400))
        # Deleting the allocation closes both.
        self.assertEqual(ctl.refresh(lifetime=0).cls, sc.SUCCESS)
        self.assertTrue(wait_closed(peer), "peer connection still open")
        self.assertTrue(wait_closed(data), "data connection still open")

    def test_peer_without_permission_refused(self):
        ctl, relayed = self.allocate()
        peer = self.peer_socket()
        peer.connect(relayed)
        self.assertTrue(wait_closed(peer), "a peer without permission was kept")
        self.assertRaises(sc.Timeout, ctl.next_frame, 0.5)

    # ------------------------------------------------------------- coturn --

    def test_turnutils_uclient_tcp_relay(self):
        """Clients of coturn's turnutils_uclient reach each other over TCP relays."""
        rc, out, err = th.run(["turnutils_uclient", "-T", "-y", "-n", "10", "-m", "2",
                               "-l", "200", "-u", USER, "-w", PASSWORD, "-L", "127.0.0.1",
                               "-p", self.server.turn_tcp_port, "127.0.0.1"], timeout=60)
        self.assertIsNotNone(rc, "turnutils_uclient timed out:\n%s%s" % (out[-3000:], err[-3000:]))
        text = out + err
        self.assertEqual(rc, 0, text[-3000:])
        sent = re.findall(r"tot_send_msgs=(\d+)", text)
        recv = re.findall(r"tot_recv_msgs=(\d+)", text)
        self.assertTrue(sent and recv, text[-3000:])
        self.assertGreater(int(sent[-1]), 0, text[-3000:])
        self.assertEqual(int(recv[-1]), int(sent[-1]), text[-3000:])


if __name__ == "__main__":
    unittest.main()
