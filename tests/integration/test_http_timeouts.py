"""Request and keep-alive timeouts: slow or idle clients are shed on time."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsunagi import Reader, ServerTestCase, get  # noqa: E402


class RequestTimeout(ServerTestCase):
    """--request-timeout 1 (a long keep-alive, so only the request timer acts)."""

    server_args = ("--request-timeout", "1", "--keepalive-timeout", "3")

    def expect_408(self, s, t0, low=0.8, high=2.5):
        rd = Reader(s)
        r = rd.response()
        took = time.monotonic() - t0
        self.assertEqual(r.status, 408)
        self.assertEqual((r.header("Connection") or "").lower(), "close")
        self.assertGreaterEqual(took, low, "408 came too early")
        self.assertLessEqual(took, high, "408 came too late")
        self.assertTrue(rd.closed(2), "connection open after 408")

    def test_half_head(self):
        s = self.sock()
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        self.expect_408(s, t0)
        self.assert_serving()

    def test_silent_client_closed_without_bytes(self):
        s = self.sock()
        t0 = time.monotonic()
        rd = Reader(s)
        self.assertTrue(rd.closed(3), "a client that sends nothing must be closed")
        took = time.monotonic() - t0
        self.assertEqual(rd.buf, b"", "nobody asked for a 408")
        self.assertGreaterEqual(took, 0.8)
        self.assertLessEqual(took, 2.5)

    def test_slowloris_head(self):
        # The timeout covers the whole head: a byte every 0.2 s must not extend it.
        s = self.sock()
        data = get("/healthz", extra=b"".join(b"X-%d: v\r\n" % i for i in range(20)))
        stop = threading.Event()

        def drip():
            for b in data[:-2]:
                if stop.is_set():
                    return
                try:
                    s.send(bytes([b]))
                except OSError:
                    return
                time.sleep(0.2)

        t0 = time.monotonic()
        t = threading.Thread(target=drip, daemon=True)
        t.start()
        try:
            self.expect_408(s, t0)
        finally:
            stop.set()
            t.join(2)

    def test_body_stall(self):
        s = self.sock()
        t0 = time.monotonic()
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
        self.expect_408(s, t0)

    def test_chunked_body_stall(self):
        s = self.sock()
        t0 = time.monotonic()
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        self.expect_408(s, t0)

    def test_second_request_stalls(self):
        s = self.sock()
        rd = Reader(s)
        s.sendall(get("/healthz"))
        self.assertEqual(rd.response().status, 200)
        time.sleep(0.5)  # idle, under the keep-alive timeout
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        self.expect_408(s, t0)

    def test_idle_longer_than_request_timeout(self):
        # Between requests the keep-alive timeout (3 s) applies, not the 1 s one.
        s = self.sock()
        rd = Reader(s)
        s.sendall(get("/healthz"))
        self.assertEqual(rd.response().status, 200)
        time.sleep(1.8)
        s.sendall(get("/healthz"))
        self.assertEqual(rd.response().status, 200)


class NonReadingClient(ServerTestCase):
    """A client that pipelines requests but never reads must not hold its
    connection (and the answers queued for it) for ever."""

    server_args = ("--request-timeout", "1", "--keepalive-timeout", "1")

    def test_closed_eventually(self):
        s = self.sock()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        data = get("/metrics") * 3000
        s.settimeout(0.5)
        try:
            s.sendall(data)
        except socket.timeout:
            pass  # the server stopped reading: as it should
        gauge = 'tsunagi_connections_open{protocol="http"}'
        deadline = time.monotonic() + 8
        while self.server.metrics()[gauge] > 1:
            if time.monotonic() > deadline:
                self.fail("a client that never reads is still connected after 8 s")
            time.sleep(0.2)


class KeepAliveTimeout(ServerTestCase):
    """--keepalive-timeout 1 (a longer request timeout, so only idleness acts)."""

    server_args = ("--keepalive-timeout", "1", "--request-timeout", "3")

    def test_idle_connection_closed(self):
        s = self.sock()
        rd = Reader(s)
        s.sendall(get("/healthz"))
        self.assertEqual(rd.response().status, 200)
        t0 = time.monotonic()
        self.assertTrue(rd.closed(3), "idle keep-alive connection not closed")
        took = time.monotonic() - t0
        self.assertEqual(rd.buf, b"")
        self.assertGreaterEqual(took, 0.8)
        self.assertLessEqual(took, 2.0)

    def test_http_client_sees_close(self):
        conn = self.server.http()
        try:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            sock = conn.sock
            time.sleep(1.6)
            self.assertEqual(sock.recv(1), b"", "server should have closed the idle connection")
        finally:
            conn.close()

    def test_busy_connection_kept(self):
        s = self.sock()
        rd = Reader(s)
        for _ in range(7):  # 2.8 s in all, 0.4 s apart: the timer restarts each time
            s.sendall(get("/healthz"))
            self.assertEqual(rd.response().status, 200)
            time.sleep(0.4)

    def test_request_started_while_idle_gets_request_timeout(self):
        # Once a head has begun, the (3 s) request timeout applies, not the idle one.
        s = self.sock(timeout=6)
        rd = Reader(s)
        s.sendall(get("/healthz"))
        self.assertEqual(rd.response().status, 200)
        time.sleep(0.5)
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        r = rd.response()
        took = time.monotonic() - t0
        self.assertEqual(r.status, 408)
        self.assertGreaterEqual(took, 2.5)
        self.assertLessEqual(took, 4.5)


if __name__ == "__main__":
    unittest.main()
