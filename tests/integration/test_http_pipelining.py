"""Pipelining: many requests in one write, or split at awkward boundaries,
answered strictly in order on the same connection (RFC 9112 9.3.2)."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402
from tsunagi import Reader, ServerTestCase, get  # noqa: E402

with open(os.path.join(tsunagi.WEB, "style.css"), "rb") as _f:
    STYLE = _f.read()
with open(os.path.join(tsunagi.WEB, "index.html"), "rb") as _f:
    INDEX = _f.read()


def is_healthz(r):
    return r.status == 200 and r.body == b"ok\n"


def is_metrics(r):
    return r.status == 200 and b"\ntsunagi_workers 2\n" in r.body


def is_style(r):
    return r.status == 200 and r.body == STYLE and r.header("Content-Type").startswith("text/css")


def is_index(r):
    return r.status == 200 and r.body == INDEX


def is_404(r):
    return r.status == 404 and b'"not found"' in r.body


def is_405(r):
    return r.status == 405 and r.header("Allow") == "GET, HEAD"


def is_head_style(r):
    return r.status == 200 and r.body == b"" and int(r.header("Content-Length")) == len(STYLE)


# (request bytes, is this a HEAD, check of the answer)
MIXED = [
    (get("/healthz"), False, is_healthz),
    (get("/metrics"), False, is_metrics),
    (get("/style.css"), False, is_style),
    (get("/missing.txt"), False, is_404),
    (b"HEAD /style.css HTTP/1.1\r\nHost: t\r\n\r\n", True, is_head_style),
    (get("/healthz?x=1&y=2"), False, is_healthz),
    (b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nGET / HTT", False, is_405),
    (get("/"), False, is_index),
    (b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"4\r\nGET \r\n3;x=y\r\n/ H\r\n0\r\n\r\n", False, is_405),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: */*\r\nUser-Agent: pipeline\r\n\r\n", False, is_metrics),
    (get("/healthz"), False, is_healthz),
    (get("/nope/nope"), False, is_404),
    (get("/style.css", extra=b"If-None-Match: \"definitely-not\"\r\n"), False, is_style),
]


class Pipelining(ServerTestCase):

    def read_all(self, s, plan):
        rd = Reader(s)
        for i, (req, head, check) in enumerate(plan):
            r = rd.response(head=head)
            self.assertTrue(check(r), "response %d to %r was %r" % (i, req[:60], r))
        return rd

    def test_one_write(self):
        s = self.sock()
        s.sendall(b"".join(req for req, _, _ in MIXED))
        rd = self.read_all(s, MIXED)
        self.assertFalse(rd.closed(0.3), "nothing more was due, and no close")
        # The connection is still good for more.
        s.sendall(get("/healthz"))
        self.assertTrue(is_healthz(rd.response()))

    def send_in_pieces(self, s, data, cuts):
        prev = 0
        for cut in sorted(set(cuts)) + [len(data)]:
            if cut > prev:
                s.sendall(data[prev:cut])
                time.sleep(0.003)  # NODELAY + a pause: separate segments, separate reads
                prev = cut

    def test_awkward_splits(self):
        data = b"".join(req for req, _, _ in MIXED)
        cuts = []
        i = data.find(b"\r\n")
        while i >= 0:
            cuts += [i + 1]  # between CR and LF
            i = data.find(b"\r\n", i + 1)
        i = data.find(b"\r\n\r\n")
        while i >= 0:
            cuts += [i + 1, i + 2, i + 3]  # inside the blank line
            i = data.find(b"\r\n\r\n", i + 1)
        cuts += [data.find(b": ") + 1, data.find(b"HTTP/") + 3, data.find(b"0\r\n\r\n") + 1]
        s = self.sock()
        threading.Thread(target=self.send_in_pieces, args=(s, data, cuts), daemon=True).start()
        self.read_all(s, MIXED)

    def test_byte_at_a_time(self):
        plan = MIXED[:4] + MIXED[6:9]
        data = b"".join(req for req, _, _ in plan)
        s = self.sock(timeout=10)
        threading.Thread(target=self.send_in_pieces, args=(s, data, range(len(data))), daemon=True).start()
        self.read_all(s, plan)

    def test_post_then_get_in_one_write(self):
        s = self.sock()
        s.sendall(b"POST /style.css HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz" + get("/style.css"))
        rd = Reader(s)
        self.assertTrue(is_405(rd.response()))
        self.assertTrue(is_style(rd.response()))

    def test_body_split_from_head(self):
        s = self.sock()
        rd = Reader(s)
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
        time.sleep(0.1)
        s.sendall(b"56789" + get("/healthz")[:7])
        time.sleep(0.1)
        s.sendall(get("/healthz")[7:])
        self.assertTrue(is_405(rd.response()))
        self.assertTrue(is_healthz(rd.response()))

    def test_chunked_split_everywhere(self):
        req = (b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"1a;ext=\"q\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: 1\r\n\r\n") + get("/healthz")
        s = self.sock(timeout=10)
        threading.Thread(target=self.send_in_pieces, args=(s, req, range(len(req))), daemon=True).start()
        rd = Reader(s)
        self.assertTrue(is_405(rd.response()))
        self.assertTrue(is_healthz(rd.response()))

    def test_close_in_the_middle(self):
        s = self.sock()
        s.sendall(get("/healthz") + get("/style.css", extra=b"Connection: close\r\n") + get("/healthz"))
        rd = Reader(s)
        self.assertTrue(is_healthz(rd.response()))
        r = rd.response()
        self.assertTrue(is_style(r))
        self.assertEqual(r.header("Connection").lower(), "close")
        self.assertTrue(rd.closed(3), "the request after Connection: close must not be answered")

    def test_bad_request_in_the_middle(self):
        s = self.sock()
        s.sendall(get("/healthz") + get("/missing") + b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"
                  + get("/healthz"))
        rd = Reader(s)
        self.assertTrue(is_healthz(rd.response()))
        self.assertTrue(is_404(rd.response()))
        self.assertEqual(rd.response().status, 400)
        self.assertTrue(rd.closed(3))

    def test_deep_pipeline_with_backpressure(self):
        # ~1000 answers of ~1.5 KB each: far more than the socket buffers, so
        # the server must pause reading and resume when its output drains.
        kinds = [(get("/metrics"), is_metrics), (get("/healthz"), is_healthz),
                 (get("/style.css"), is_style), (get("/missing"), is_404)]
        plan = [(kinds[i % 4][0], False, kinds[i % 4][1]) for i in range(1200)]
        data = b"".join(req for req, _, _ in plan)
        s = self.sock(timeout=20)
        errors = []

        def send():
            try:
                s.sendall(data)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=send, daemon=True)
        t.start()
        time.sleep(0.3)  # let the server fill its output before we read anything
        self.read_all(s, plan)
        t.join(10)
        self.assertEqual(errors, [])

    def test_many_connections_pipelining_at_once(self):
        plan = MIXED

        def one(_):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
                s.sendall(b"".join(req for req, _, _ in plan))
                rd = Reader(s)
                for req, head, check in plan:
                    r = rd.response(head=head)
                    if not check(r):
                        raise AssertionError("bad answer to %r: %r" % (req[:60], r))

        tsunagi.in_threads(one, 20)


if __name__ == "__main__":
    unittest.main()
