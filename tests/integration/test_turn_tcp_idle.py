"""The idle rule for STUN/TURN clients on TCP and TLS, in real time.

A TCP or TLS client without an allocation is closed 30 s after its last
whole STUN message, or 30 s after connecting if none came; part of a message
does not count (the soak test once found a half header holding a socket for
an hour). A client holding an allocation is not subject to it: its
allocation's lifetime governs (src/turn/net.c, docs/turn.md).

No option scales the 30 s (coturn has none either, and a test-only option
would not be worth its surface), so the test pays it once: every client
below starts together against one server and a single poll loop records when
the server closes each, about 40 s in all. Each test file is its own ctest
entry, so this wait runs in parallel with the others.

Clients, with the moment their 30 s start (their "reference"):
- binding:   TCP, one Binding answered, then silence (reference: the answer);
- partial:   TCP, half a STUN header right after connecting (the connect);
- partial-late: TCP, a Binding, then half a header 15 s later: must still go
             30 s after the Binding, not 30 s after the half header;
- rebinding: TCP, a Binding, another 8 s later (the second answer): a whole
             message restarts the 30 s;
- tls:       the same as binding over --turns (TLS);
- deallocated: an allocation made and deleted (Refresh LIFETIME 0): the
             30 s apply again from the deletion;
- allocation: an allocation over TCP, then silence: still open when the last
             of the others has gone (past its own 30 s + margin), and still
             answering a Refresh.

Every closed client must go between LOW and HIGH seconds after its
reference: not at ~25 s, and by ~35 s.
"""

import os
import select
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "turn"))

import stunclient as sc  # noqa: E402
import turnharness as th  # noqa: E402

USER, PASSWORD = "idle", "s1lent"
IDLE = 30.0  # the server's rule (src/turn/net.c)
LOW, HIGH = IDLE - 3.0, IDLE + 5.0  # 5 s of slack for a loaded machine (ASan build)
PARTIAL_LATE_AT = 15.0  # seconds after its Binding
REBIND_AT = 8.0


def half_header():
    """The first 10 bytes of a Binding request's 20-byte header."""
    return sc.Message(sc.BINDING).encode()[:10]


class Watched:
    """One client socket whose close by the server is timed."""

    def __init__(self, name, sock, ref, expect_close=True):
        self.name, self.sock = name, sock
        self.ref = ref  # monotonic time its idle period starts
        self.expect_close = expect_close
        self.closed_at = None
        self.unexpected = None  # bytes the server sent while it should be silent

    def delay(self):
        return None if self.closed_at is None else self.closed_at - self.ref

    def poll_read(self, now):
        """The socket is readable: EOF (or a reset) is a close; data is a fault."""
        self.sock.settimeout(0)  # poll said readable; never wait here
        try:
            data = self.sock.recv(4096)
        except (ssl.SSLWantReadError, BlockingIOError):
            return  # TLS records that carry no data (a session ticket)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if data:
            self.unexpected = (self.unexpected or b"") + data
            return
        self.closed_at = now


class TurnTcpIdle(th.TurnTestCase):
    server_kwargs = {"users": ("%s:%s" % (USER, PASSWORD),), "tls": True}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.keep = []  # everything to close at the end
        try:
            cls.run_timeline()
        except BaseException:
            cls.close_all()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.close_all()
        super().tearDownClass()

    @classmethod
    def close_all(cls):
        for c in cls.keep:
            try:
                c.close()
            except OSError:
                pass

    # ------------------------------------------------------------ clients --

    @classmethod
    def tcp_client(cls, user=None, password=None):
        c = sc.Client(cls.server.turn_tcp_port, "tcp", user=user, password=password, timeout=5.0)
        cls.keep.append(c)
        return c

    @classmethod
    def binding(cls, client):
        r = client.binding()
        assert r.cls == sc.SUCCESS, r
        return time.monotonic()

    @classmethod
    def tls_binding(cls):
        ctx = ssl.create_default_context(cafile=cls.server.cert)
        raw = socket.create_connection(("127.0.0.1", cls.server.turns_port), timeout=5.0)
        sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        cls.keep.append(sock)
        t = sc.Transport(cls.server.turns_port, "tcp", sock=sock, timeout=5.0)
        req = sc.Message(sc.BINDING)
        t.send_raw(req.encode())
        r = sc.parse(t.recv_frame())
        assert r.cls == sc.SUCCESS and r.tid == req.tid, r
        return sock, time.monotonic()

    @classmethod
    def allocation(cls):
        c = cls.tcp_client(USER, PASSWORD)
        r = c.allocate()
        assert r.cls == sc.SUCCESS, r
        return c, time.monotonic()

    # ----------------------------------------------------------- timeline --

    @classmethod
    def run_timeline(cls):
        w = {}
        binding = cls.tcp_client()
        w["binding"] = Watched("binding", binding.t.sock, cls.binding(binding))

        partial = socket.create_connection(("127.0.0.1", cls.server.turn_tcp_port), timeout=5.0)
        cls.keep.append(partial)
        w["partial"] = Watched("partial", partial, time.monotonic())
        partial.sendall(half_header())

        late = cls.tcp_client()
        w["partial-late"] = Watched("partial-late", late.t.sock, cls.binding(late))

        rebind = cls.tcp_client()
        w["rebinding"] = Watched("rebinding", rebind.t.sock, cls.binding(rebind))

        tls_sock, tls_ref = cls.tls_binding()
        w["tls"] = Watched("tls", tls_sock, tls_ref)

        dealloc, _ = cls.allocation()
        r = dealloc.refresh(lifetime=0)
        assert r.cls == sc.SUCCESS and r.u32(sc.LIFETIME) == 0, r
        w["deallocated"] = Watched("deallocated", dealloc.t.sock, time.monotonic())

        holder, held_ref = cls.allocation()
        w["allocation"] = Watched("allocation", holder.t.sock, held_ref, expect_close=False)

        # Timed actions: (seconds after the client's reference, what).
        def send_late_half():
            late.t.send_raw(half_header())

        def rebind_again():
            w["rebinding"].ref = cls.binding(rebind)

        actions = [(w["partial-late"].ref + PARTIAL_LATE_AT, send_late_half),
                   (w["rebinding"].ref + REBIND_AT, rebind_again)]
        actions.sort(key=lambda a: a[0])

        poller = select.poll()
        by_fd = {}
        for x in w.values():
            poller.register(x.sock.fileno(), select.POLLIN)
            by_fd[x.sock.fileno()] = x
        # Until every client due to go has gone (or is overdue), and the
        # allocation holder has been silent past the rule's window.
        watch_until = held_ref + HIGH + 1.0
        while True:
            now = time.monotonic()
            while actions and actions[0][0] <= now:
                actions.pop(0)[1]()
            pending = [x for x in w.values() if x.expect_close and x.closed_at is None]
            last_due = max([x.ref + HIGH for x in pending] + [watch_until])
            if (not pending and now >= watch_until and not actions) or now > last_due + 1.0:
                break
            wake = min([a[0] for a in actions] + [last_due + 1.0]) - now
            for fd, _ in poller.poll(max(0.0, min(wake, 1.0)) * 1000):
                x = by_fd[fd]
                x.poll_read(time.monotonic())
                if x.closed_at is not None:
                    poller.unregister(fd)
        cls.watched = w
        cls.holder = holder

    # -------------------------------------------------------------- tests --

    def assert_closed_in_window(self, name):
        x = self.watched[name]
        self.assertIsNone(x.unexpected, "%s: the server sent %r" % (name, x.unexpected))
        self.assertIsNotNone(x.closed_at, "%s: still open %.1f s after its last whole message"
                             % (name, time.monotonic() - x.ref))
        self.assertGreaterEqual(x.delay(), LOW, "%s: closed after %.1f s" % (name, x.delay()))
        self.assertLessEqual(x.delay(), HIGH, "%s: closed after %.1f s" % (name, x.delay()))

    def test_binding_then_silence_is_closed_after_30_s(self):
        self.assert_closed_in_window("binding")

    def test_half_a_header_is_closed_30_s_after_connecting(self):
        self.assert_closed_in_window("partial")

    def test_half_a_header_does_not_restart_the_30_s(self):
        self.assert_closed_in_window("partial-late")

    def test_a_whole_message_restarts_the_30_s(self):
        # Its reference is the second Binding: closed ~30 s after it, so
        # ~38 s after connecting.
        self.assert_closed_in_window("rebinding")

    def test_tls_binding_then_silence_is_closed_after_30_s(self):
        self.assert_closed_in_window("tls")

    def test_deleted_allocation_falls_back_to_30_s(self):
        self.assert_closed_in_window("deallocated")

    def test_allocation_holder_is_not_closed_while_silent(self):
        x = self.watched["allocation"]
        self.assertIsNone(x.unexpected, "the server sent %r" % (x.unexpected,))
        self.assertIsNone(x.closed_at, "closed after %.1f s with an allocation" % (x.delay() or 0))
        silent = time.monotonic() - x.ref
        self.assertGreater(silent, HIGH, "the watch ended too early (%.1f s)" % silent)
        # Still a working TURN connection: the allocation answers a Refresh.
        r = self.holder.refresh()
        self.assertEqual(r.cls, sc.SUCCESS, r)
        self.assertGreater(r.u32(sc.LIFETIME), 0)

    def test_only_the_allocation_holder_is_left(self):
        key = 'tsunagi_connections_open{protocol="turn-tcp"}'
        left = th.wait_until(lambda: self.server.metrics()[key] == 1, timeout=3)
        self.assertTrue(left, "turn-tcp connections open: %s" % self.server.metrics()[key])


if __name__ == "__main__":
    unittest.main(verbosity=2)
