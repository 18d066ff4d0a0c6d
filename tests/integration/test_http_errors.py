"""Malformed, oversized and unsupported requests (RFC 9110, RFC 9112).

Every refusal must come as a well-formed response with the right status, the
connection must then be closed (nothing after the bad request is answered),
and the server must keep serving everyone else.
"""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tsunagi import Reader, ServerTestCase, get  # noqa: E402


def post(path, body, extra=b""):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def chunked(path, raw_body, extra=b""):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra
            + b"Transfer-Encoding: chunked\r\n\r\n" + raw_body)


class ErrorCase(ServerTestCase):

    def assert_refused(self, data, status, msg=None):
        """data draws one response with status, then the connection closes."""
        s = self.sock()
        try:
            # Follow the bad request with a good one: it must not be answered.
            s.sendall(data + get("/healthz"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        rd = Reader(s)
        r = rd.final()
        self.assertEqual(r.status, status, msg or data[:120])
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(json.loads(r.body)["status"], status)
        self.assertEqual((r.header("Connection") or "").lower(), "close", data[:120])
        self.assertTrue(rd.closed(3), "connection left open after %d: %r" % (status, data[:120]))
        self.assert_serving()
        return r


class Bodies(ErrorCase):

    def test_post_body_is_consumed(self):
        (r1, r2), _ = self.roundtrip(post("/healthz", b"hello world") + get("/healthz"), 2)
        self.assertEqual(r1.status, 405)
        self.assertEqual(r1.header("Allow"), "GET, HEAD")
        self.assertEqual((r2.status, r2.body), (200, b"ok\n"))

    def test_body_that_looks_like_a_request_is_not_one(self):
        smuggled = get("/missing-smuggled")
        (r1, r2), rd = self.roundtrip(post("/healthz", smuggled) + get("/healthz"), 2)
        self.assertEqual(r1.status, 405)
        self.assertEqual((r2.status, r2.body), (200, b"ok\n"))
        self.assertFalse(rd.closed(0.3), "no third response (and no close) was due")

    def test_get_with_body(self):
        (r1, r2), _ = self.roundtrip(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
                                     + get("/healthz"), 2)
        self.assertEqual((r1.status, r1.body, r2.status), (200, b"ok\n", 200))

    def test_many_tiny_chunks(self):
        body = b"1\r\nx\r\n" * 5000 + b"0\r\n\r\n"
        (r1, r2), _ = self.roundtrip(chunked("/healthz", body) + get("/healthz"), 2)
        self.assertEqual((r1.status, r2.status), (405, 200))

    def test_empty_body(self):
        (r1, r2), _ = self.roundtrip(post("/healthz", b"") + get("/healthz"), 2)
        self.assertEqual((r1.status, r2.status), (405, 200))

    def test_largest_body_allowed(self):
        (r1, r2), _ = self.roundtrip(post("/healthz", b"b" * 65536) + get("/healthz"), 2)
        self.assertEqual((r1.status, r2.status), (405, 200))

    def test_chunked_body_is_consumed(self):
        body = b"5\r\nhello\r\n6;name=value\r\n world\r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"
        (r1, r2), _ = self.roundtrip(chunked("/healthz", body) + get("/healthz"), 2)
        self.assertEqual(r1.status, 405)
        self.assertEqual((r2.status, r2.body), (200, b"ok\n"))

    def test_chunked_body_with_trailer(self):
        body = b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\nY-Trailer: 2\r\n\r\n"
        (r1, r2), _ = self.roundtrip(chunked("/healthz", body) + get("/healthz"), 2)
        self.assertEqual((r1.status, r2.status), (405, 200))

    def test_chunked_bad_size(self):
        self.assert_refused(chunked("/healthz", b"zz\r\nhello\r\n0\r\n\r\n"), 400)

    def test_chunked_negative_size(self):
        self.assert_refused(chunked("/healthz", b"-5\r\nhello\r\n0\r\n\r\n"), 400)

    def test_chunked_missing_crlf_after_data(self):
        self.assert_refused(chunked("/healthz", b"5\r\nhelloXX0\r\n\r\n"), 400)

    def test_chunked_size_overflow(self):
        s = self.sock()
        s.sendall(chunked("/healthz", b"1" + b"0" * 40 + b"\r\nx\r\n"))
        rd = Reader(s)
        self.assertIn(rd.response().status, (400, 413))
        self.assertTrue(rd.closed(3))
        self.assert_serving()

    def test_chunked_too_large(self):
        chunk = b"2000\r\n" + b"c" * 0x2000 + b"\r\n"
        self.assert_refused(chunked("/healthz", chunk * 9 + b"0\r\n\r\n"), 413)

    def test_content_length_too_large(self):
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 65537\r\n\r\n", 413)

    def test_content_length_overflow(self):
        # RFC 9110 8.6: a numeral past any integer type must not wrap around.
        s = self.sock()
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n")
        rd = Reader(s)
        self.assertIn(rd.response().status, (400, 413))
        self.assertTrue(rd.closed(3))
        s = self.sock()
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 18446744073709551617\r\n\r\nx")
        rd = Reader(s)
        self.assertIn(rd.response().status, (400, 413))
        self.assertTrue(rd.closed(3))
        self.assert_serving()

    def test_413_reaches_a_client_still_sending(self):
        # The server answers before the body is in; closing with unread input
        # would reset the connection and destroy the 413 (hence lingering).
        s = self.sock(timeout=10)
        s.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n")
        try:
            s.sendall(b"z" * 300000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = Reader(s).response()
        self.assertEqual(r.status, 413)

    def test_expect_with_too_large_body(self):
        s = self.sock()
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 70000\r\n\r\n")
        rd = Reader(s)
        r = rd.response()
        self.assertEqual(r.status, 413, "no 100 Continue for a body that will be refused")
        self.assertTrue(rd.closed(3))

    def test_unknown_expectation(self):
        self.assert_refused(get("/healthz", extra=b"Expect: something-else\r\n"), 417)

    def test_duplicate_content_length(self):
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                            b"Content-Length: 5\r\n\r\nhello", 400)
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                            b"Content-Length: 6\r\n\r\nhello!", 400)
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello", 400)

    def test_invalid_content_length(self):
        for value in (b"abc", b"-1", b"+5", b"5 5", b"0x10", b"", b"5;"):
            self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: " + value
                                + b"\r\n\r\nhello", 400, "Content-Length: %r" % value)

    def test_content_length_and_transfer_encoding(self):
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                            b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400)

    def test_unsupported_transfer_coding(self):
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501)
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                            b"0\r\n\r\n", 501)

    def test_chunked_not_final(self):
        # RFC 9112 6.3 (4): chunked not the final coding: MUST answer 400 and close.
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                            b"0\r\n\r\n", 400)

    def test_transfer_encoding_in_http10(self):
        # RFC 9112 6.1: faulty framing; the message must not be trusted.
        s = self.sock()
        s.sendall(b"POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get("/healthz"))
        rd = Reader(s)
        self.assertIn(rd.response().status, (400, 405))
        self.assertTrue(rd.closed(3))


class Limits(ErrorCase):

    def test_headers_over_8k(self):
        extra = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 900) for i in range(10))
        self.assert_refused(get("/healthz", extra=extra), 431)

    def test_one_huge_header(self):
        self.assert_refused(get("/healthz", extra=b"Cookie: " + b"c" * 9000 + b"\r\n"), 431)

    def test_headers_just_under_8k(self):
        extra = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 700) for i in range(10))
        (r,), _ = self.roundtrip(get("/healthz", extra=extra))
        self.assertEqual(r.status, 200)

    def test_100_headers_ok(self):
        extra = b"".join(b"X-H-%d: v\r\n" % i for i in range(99))  # + Host = 100
        (r,), _ = self.roundtrip(get("/healthz", extra=extra))
        self.assertEqual((r.status, r.body), (200, b"ok\n"))

    def test_101_headers(self):
        extra = b"".join(b"X-H-%d: v\r\n" % i for i in range(100))  # + Host = 101
        self.assert_refused(get("/healthz", extra=extra), 431)

    def test_long_uri(self):
        self.assert_refused(get("/" + "a" * 9000), 431)

    def test_long_uri_sent_without_line_end(self):
        # The limit must hold before the line is complete, or memory grows.
        s = self.sock()
        try:
            s.sendall(b"GET /" + b"a" * 20000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        rd = Reader(s)
        self.assertEqual(rd.response().status, 431)
        self.assertTrue(rd.closed(3))


class BadRequests(ErrorCase):

    def test_http_2_0(self):
        self.assert_refused(b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505)

    def test_http_3_0(self):
        self.assert_refused(b"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505)

    def test_higher_minor_version_is_http11(self):
        # RFC 9110 2.5: a higher minor version SHOULD be processed as the
        # highest minor version the recipient implements (here 1.1).
        (r,), _ = self.roundtrip(b"GET /healthz HTTP/1.2\r\nHost: t\r\n\r\n")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))

    def test_garbage(self):
        self.assert_refused(b"GARBAGE\r\n\r\n", 400)

    def test_bare_cr_in_request_line(self):
        self.assert_refused(b"GET / HTTP/1.1\rHost: t\r\n\r\n", 400)

    def test_bare_cr_in_header(self):
        self.assert_refused(get("/healthz", extra=b"X-A: a\rb\r\n"), 400)

    def test_nul_in_header(self):
        self.assert_refused(get("/healthz", extra=b"X-A: a\x00b\r\n"), 400)

    def test_control_char_in_header(self):
        self.assert_refused(get("/healthz", extra=b"X-A: a\x01b\r\n"), 400)

    def test_space_before_colon(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost : t\r\n\r\n", 400)
        self.assert_refused(get("/healthz", extra=b"X-A : v\r\n"), 400)

    def test_obs_fold(self):
        self.assert_refused(get("/healthz", extra=b"X-A: a\r\n  b\r\n"), 400)
        self.assert_refused(get("/healthz", extra=b"X-A: a\r\n\tb\r\n"), 400)

    def test_whitespace_before_first_header(self):
        # RFC 9112 2.2: reject, or ignore the line (then Host is missing): 400 either way.
        self.assert_refused(b"GET /healthz HTTP/1.1\r\n Host: t\r\n\r\n", 400)

    def test_missing_host(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\n\r\n", 400)

    def test_duplicate_host(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)

    def test_invalid_host(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400)

    def test_bad_header_names(self):
        self.assert_refused(get("/healthz", extra=b"X(y): 1\r\n"), 400)
        self.assert_refused(get("/healthz", extra=b": 1\r\n"), 400)
        self.assert_refused(get("/healthz", extra=b"NoColon\r\n"), 400)

    def test_bad_request_target(self):
        self.assert_refused(b"GET x HTTP/1.1\r\nHost: t\r\n\r\n", 400)
        self.assert_refused(b"GET /a\x7fb HTTP/1.1\r\nHost: t\r\n\r\n", 400)
        self.assert_refused(b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400)

    def test_http10_without_host_is_fine(self):
        (r,), _ = self.roundtrip(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))

    def test_empty_lines_before_request(self):
        # RFC 9112 2.2: SHOULD ignore at least one empty line before the request line.
        (r,), _ = self.roundtrip(b"\r\n" + get("/healthz"))
        self.assertEqual((r.status, r.body), (200, b"ok\n"))

    def test_unknown_method(self):
        for method in (b"BREW", b"get", b"PROPFIND"):
            (r,), _ = self.roundtrip(method + b" /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(r.status, 501, method)
            self.assertEqual(json.loads(r.body)["status"], 501)
        self.assert_serving()

    def test_error_then_normal_connections_unaffected(self):
        # A keep-alive connection opened before a flood of bad requests still works.
        keep = self.sock()
        rd = Reader(keep)
        keep.sendall(get("/healthz"))
        self.assertEqual(rd.response().status, 200)
        for data, status in ((b"GARBAGE\r\n\r\n", 400), (b"GET / HTTP/2.0\r\n\r\n", 505),
                             (b"\x00\x01\x02\r\n\r\n", 400),
                             (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)), 400)):
            s = self.sock()
            s.sendall(data)
            r = Reader(s)
            self.assertEqual(r.response().status, status, data)
            self.assertTrue(r.closed(3))
        keep.sendall(get("/healthz"))
        self.assertEqual(rd.response().status, 200)

    def test_client_disconnects_mid_request(self):
        for data in (b"GET /heal", get("/healthz")[:-2], chunked("/healthz", b"5\r\nhel")):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=3)
            s.sendall(data)
            s.close()
        self.assert_serving()


class ConnectionAccounting(ErrorCase):
    """After every kind of ending, the open-connection gauge comes back down."""

    def test_open_gauge_returns_to_one(self):
        endings = [get("/healthz"), b"GARBAGE\r\n\r\n", b"GET /heal", b"",
                   b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n",
                   chunked("/healthz", b"zz\r\n"), get("/healthz", extra=b"Connection: close\r\n")]
        for data in endings * 3:
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=0.3)
            if data:
                s.sendall(data)
                try:
                    s.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    pass
            s.close()
        gauge = 'tsunagi_connections_open{protocol="http"}'
        for _ in range(60):
            if self.server.metrics()[gauge] == 1:  # the /metrics connection itself
                return
            time.sleep(0.05)
        self.fail("connections_open stuck at %s" % self.server.metrics()[gauge])


if __name__ == "__main__":
    unittest.main()
