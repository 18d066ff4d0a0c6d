"""HTTP basics: /healthz, /metrics, static files, keep-alive, curl."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402
from tsunagi import Reader, ServerTestCase, get, status_count  # noqa: E402


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


class ApiEndpoints(ServerTestCase):
    """/healthz and /metrics with the default web root."""

    def test_healthz(self):
        status, headers, body = self.server.request("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain")
        self.assertEqual(body, b"ok\n")
        self.assertEqual(headers["Content-Length"], "3")
        self.assertIsNotNone(headers["Date"], "RFC 9110 6.6.1: an origin server with a clock sends Date")

    def test_healthz_with_query_string(self):
        status, _, body = self.server.request("GET", "/healthz?probe=1")
        self.assertEqual((status, body), (200, b"ok\n"))

    def test_healthz_head(self):
        # HEAD then GET on one connection, strictly parsed.
        s = self.sock()
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + get("/healthz"))
        rd = Reader(s)
        head = rd.response(head=True)
        nxt = rd.response()
        self.assertEqual(head.status, 200)
        self.assertEqual(head.header("Content-Length"), "3")
        self.assertEqual(head.body, b"")
        # Had HEAD carried a body, "ok\n" would sit in front of the next status line.
        self.assertEqual((nxt.status, nxt.body), (200, b"ok\n"))

    def test_metrics_format(self):
        status, headers, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"), headers["Content-Type"])
        text = body.decode()
        m = tsunagi.parse_metrics(text)  # every sample line is well formed
        for name in ('tsunagi_connections_open{protocol="http"}',
                     'tsunagi_connections_total{protocol="http"}',
                     "tsunagi_received_bytes_total", "tsunagi_sent_bytes_total"):
            self.assertIn(name, m)
        self.assertEqual(m["tsunagi_workers"], 2)
        self.assertGreaterEqual(m['tsunagi_connections_open{protocol="http"}'], 1)
        self.assertRegex(text, r'(?m)^tsunagi_build_info\{version="[^"]+",commit="[^"]+"\} 1$')
        self.assertRegex(text, r"(?m)^# TYPE tsunagi_connections_total counter$")

    def test_metrics_counters_move(self):
        m0 = self.server.metrics()
        for _ in range(3):
            self.assertEqual(self.server.request("GET", "/healthz")[0], 200)
        self.assertEqual(self.server.request("GET", "/no-such-file")[0], 404)
        m1 = self.server.metrics()
        self.assertEqual(status_count(m1, 404) - status_count(m0, 404), 1)
        ok = status_count(m1, 200) - status_count(m0, 200)
        self.assertGreaterEqual(ok, 3)
        self.assertLessEqual(ok, 4)  # 3 x /healthz, perhaps the first /metrics itself
        # Five connections: four requests and the second /metrics.
        total = 'tsunagi_connections_total{protocol="http"}'
        self.assertEqual(m1[total] - m0[total], 5)
        self.assertGreater(m1["tsunagi_received_bytes_total"], m0["tsunagi_received_bytes_total"])
        self.assertGreater(m1["tsunagi_sent_bytes_total"], m0["tsunagi_sent_bytes_total"])

    def test_post_healthz_is_405(self):
        status, headers, body = self.server.request("POST", "/healthz", body=b"x")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(body.rstrip(b"\n"), b'{"error":"method not allowed","status":405}')


class StaticDefaultRoot(ServerTestCase):
    """The repo's web/ served by default (no --web-root)."""

    def test_index(self):
        status, headers, body = self.server.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        self.assertEqual(body, read_file(os.path.join(tsunagi.WEB, "index.html")))
        self.assertEqual(int(headers["Content-Length"]), len(body))

    def test_index_html_by_name(self):
        status, headers, body = self.server.request("GET", "/index.html")
        self.assertEqual(status, 200)
        self.assertEqual(body, read_file(os.path.join(tsunagi.WEB, "index.html")))

    def test_style_css(self):
        status, headers, body = self.server.request("GET", "/style.css")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/css"), headers["Content-Type"])
        self.assertEqual(body, read_file(os.path.join(tsunagi.WEB, "style.css")))
        self.assertTrue(headers["ETag"], "static files carry an ETag")

    def test_percent_encoded_name(self):
        status, _, body = self.server.request("GET", "/style%2Ecss")
        self.assertEqual(status, 200)
        self.assertEqual(body, read_file(os.path.join(tsunagi.WEB, "style.css")))

    def test_etag_304(self):
        _, headers, _ = self.server.request("GET", "/style.css")
        etag = headers["ETag"]
        self.assertRegex(etag, r'^(W/)?"[^"]*"$')
        s = self.sock()
        s.sendall(get("/style.css", extra=b"If-None-Match: " + etag.encode() + b"\r\n") + get("/healthz"))
        rd = Reader(s)
        r = rd.response()
        self.assertEqual(r.status, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("ETag"), etag, "RFC 9110 15.4.5: 304 repeats the ETag")
        self.assertIsNone(r.header("Content-Length"), "304 must not promise a body here")
        # No stray body bytes between the 304 and the next answer.
        self.assertEqual(rd.response().body, b"ok\n")

    def test_etag_weak_list_and_star(self):
        _, headers, _ = self.server.request("GET", "/style.css")
        etag = headers["ETag"]
        strong = etag[2:] if etag.startswith("W/") else etag
        for inm in ('"nope", W/' + strong, '"a", ' + etag + ', "b"', "*"):
            status, _, body = self.server.request("GET", "/style.css", headers={"If-None-Match": inm})
            self.assertEqual((status, body), (304, b""), "If-None-Match: %s" % inm)
        status, _, body = self.server.request("GET", "/style.css", headers={"If-None-Match": '"other"'})
        self.assertEqual(status, 200)
        self.assertTrue(body)

    def test_not_found_json(self):
        status, headers, body = self.server.request("GET", "/no/such/file.txt")
        self.assertEqual(status, 404)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(body.strip(), b'{"error":"not found","status":404}')

    def test_post_static_405(self):
        for path in ("/", "/style.css", "/no-such-file"):
            status, headers, body = self.server.request("POST", path, body=b"a=1")
            self.assertEqual(status, 405, path)
            self.assertEqual(headers["Allow"], "GET, HEAD", path)
            self.assertEqual(body.rstrip(b"\n"), b'{"error":"method not allowed","status":405}', path)

    def test_head_static(self):
        s = self.sock()
        s.sendall(b"HEAD /style.css HTTP/1.1\r\nHost: t\r\n\r\n" + get("/healthz"))
        rd = Reader(s)
        head = rd.response(head=True)
        self.assertEqual(head.status, 200)
        self.assertEqual(int(head.header("Content-Length")),
                         len(read_file(os.path.join(tsunagi.WEB, "style.css"))))
        self.assertTrue(head.header("Content-Type").startswith("text/css"))
        self.assertEqual(rd.response().body, b"ok\n")

    def test_head_404_has_no_body(self):
        s = self.sock()
        s.sendall(b"HEAD /missing HTTP/1.1\r\nHost: t\r\n\r\n" + get("/healthz"))
        rd = Reader(s)
        head = rd.response(head=True)
        self.assertEqual(head.status, 404)
        self.assertEqual(rd.response().body, b"ok\n")

    def test_long_valid_path(self):
        # Well-formed and within the head limit, it names no file: 404 (or
        # 414 if the server will not look that far), never "bad encoding".
        for path in ("/" + "a" * 3000, "/" + "d/" * 1500 + "x.css"):
            (r,), _ = self.roundtrip(get(path))
            self.assertIn(r.status, (404, 414), "%s... answered %r" % (path[:20], r.body))

    def test_traversal(self):
        for path in ("/../x", "/%2e%2e/x", "/%2E%2E%2Fetc/passwd", "/a/../../x", "//etc/passwd",
                     "/../../../../../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                     "/..%2f..%2f..%2f..%2fetc%2fpasswd", "/.%2e/.%2e/.%2e/.%2e/etc/passwd",
                     "/web/../../../../etc/passwd", "/../CMakeLists.txt", "/%2e%2e/CMakeLists.txt"):
            (r,), _ = self.roundtrip(get(path))
            self.assertEqual(r.status, 404, path)
            self.assertNotIn(b"root:", r.body, path)
            self.assertNotIn(b"cmake_minimum_required", r.body, path)


class StaticTempRoot(ServerTestCase):
    """A temporary web root with symlinks in and out, and files that change."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tsunagi-web-")
        root = os.path.join(cls.tmp, "root")
        outside = os.path.join(cls.tmp, "outside")
        os.makedirs(os.path.join(root, "sub"))
        os.makedirs(outside)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<p>temp root</p>\n")
        with open(os.path.join(root, "sub", "index.html"), "w") as f:
            f.write("<p>sub</p>\n")
        with open(os.path.join(root, "real.txt"), "w") as f:
            f.write("inside\n")
        with open(os.path.join(root, "app.js"), "w") as f:
            f.write("console.log(1);\n")
        with open(os.path.join(outside, "secret.txt"), "w") as f:
            f.write("SECRET\n")
        cls.big = os.urandom(3 * 1024 * 1024 + 17)
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(cls.big)
        open(os.path.join(root, "empty.txt"), "w").close()
        with open(os.path.join(root, "caf\u00e9 menu.txt"), "w", encoding="utf-8") as f:
            f.write("caf\u00e9\n")
        os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "leak.txt"))
        os.symlink("../outside/secret.txt", os.path.join(root, "leak-rel.txt"))
        os.symlink(outside, os.path.join(root, "outdir"))
        os.symlink("real.txt", os.path.join(root, "alias.txt"))
        os.symlink(os.path.join(root, "sub"), os.path.join(root, "subalias"))
        cls.root = root
        cls.server_args = ("--web-root", root)
        try:
            super().setUpClass()
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_index_of_root_and_subdir(self):
        self.assertEqual(self.server.request("GET", "/")[2], b"<p>temp root</p>\n")
        self.assertEqual(self.server.request("GET", "/sub/")[2], b"<p>sub</p>\n")

    def test_content_types(self):
        self.assertEqual(self.server.request("GET", "/real.txt")[1]["Content-Type"],
                         "text/plain; charset=utf-8")
        ctype = self.server.request("GET", "/app.js")[1]["Content-Type"]
        self.assertTrue(ctype.startswith("text/javascript"), ctype)

    def test_symlink_outside_is_404(self):
        for path in ("/leak.txt", "/leak-rel.txt", "/outdir/secret.txt", "/../outside/secret.txt",
                     "/%2e%2e/outside/secret.txt", "/sub/../../outside/secret.txt"):
            status, _, body = self.server.request("GET", path)
            self.assertEqual(status, 404, path)
            self.assertNotIn(b"SECRET", body, path)

    def test_symlink_inside_is_served(self):
        status, _, body = self.server.request("GET", "/alias.txt")
        self.assertEqual((status, body), (200, b"inside\n"))
        status, _, body = self.server.request("GET", "/subalias/index.html")
        self.assertEqual((status, body), (200, b"<p>sub</p>\n"))

    def test_changed_file_gets_new_etag(self):
        path = os.path.join(self.root, "changing.txt")
        with open(path, "w") as f:
            f.write("one\n")
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
        status, h1, body = self.server.request("GET", "/changing.txt")
        self.assertEqual((status, body), (200, b"one\n"))
        etag1 = h1["ETag"]
        with open(path, "w") as f:
            f.write("two\n")  # same size: the ETag must still change
        os.utime(path, ns=(1_000_000_002_000_000_000, 1_000_000_002_000_000_000))
        status, h2, body = self.server.request("GET", "/changing.txt", headers={"If-None-Match": etag1})
        self.assertEqual((status, body), (200, b"two\n"))
        etag2 = h2["ETag"]
        self.assertNotEqual(etag1, etag2)
        status, _, body = self.server.request("GET", "/changing.txt", headers={"If-None-Match": etag2})
        self.assertEqual((status, body), (304, b""))

    def test_large_file(self):
        status, headers, body = self.server.request("GET", "/big.bin", timeout=20)
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["Content-Length"]), len(self.big))
        self.assertTrue(body == self.big, "3 MiB body differs")
        self.assertEqual(headers["Content-Type"], "application/octet-stream")

    def test_empty_file(self):
        s = self.sock()
        s.sendall(get("/empty.txt") + get("/healthz"))
        rd = Reader(s)
        r = rd.response()
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, "0", b""))
        self.assertEqual(rd.response().body, b"ok\n")

    def test_encoded_names(self):
        status, _, body = self.server.request("GET", "/caf%C3%A9%20menu.txt")
        self.assertEqual((status, body), (200, "caf\u00e9\n".encode()))

    def test_range_ignored_or_honoured(self):
        status, headers, body = self.server.request("GET", "/real.txt", headers={"Range": "bytes=0-1"})
        if status == 206:
            self.assertEqual((body, headers["Content-Range"]), (b"in", "bytes 0-1/7"))
        else:
            self.assertEqual((status, body), (200, b"inside\n"))

    def test_new_and_deleted_files(self):
        path = os.path.join(self.root, "late.txt")
        self.assertEqual(self.server.request("GET", "/late.txt")[0], 404)
        with open(path, "w") as f:
            f.write("late\n")
        self.assertEqual(self.server.request("GET", "/late.txt")[2], b"late\n")
        os.unlink(path)
        self.assertEqual(self.server.request("GET", "/late.txt")[0], 404)


class FifoInWebRoot(ServerTestCase):
    """A named pipe in the web root must not block a worker (open() of a
    FIFO for reading waits for a writer unless O_NONBLOCK)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tsunagi-web-")
        cls.fifo = os.path.join(cls.tmp, "pipe")
        os.mkfifo(cls.fifo)
        with open(os.path.join(cls.tmp, "a.txt"), "w") as f:
            f.write("a\n")
        cls.server_args = ("--web-root", cls.tmp)
        try:
            super().setUpClass()
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        # Release a worker stuck in open(), so the server can stop.
        try:
            os.close(os.open(cls.fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # ENXIO: nobody is blocked on it
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_fifo_is_not_served_and_does_not_block(self):
        try:
            status, _, _ = self.server.request("GET", "/pipe", timeout=2)
        except socket.timeout:
            self.fail("GET of a FIFO hung")
        self.assertIn(status, (403, 404))
        for i in range(6):  # with 2 workers, a stuck one would stall about half of these
            try:
                status, _, body = self.server.request("GET", "/a.txt", timeout=2)
            except socket.timeout:
                self.fail("request %d hung after the FIFO was requested" % i)
            self.assertEqual((status, body), (200, b"a\n"))


class KeepAlive(ServerTestCase):

    def test_http_client_reuses_one_socket(self):
        conn = self.server.http()
        try:
            total = 'tsunagi_connections_total{protocol="http"}'
            m0 = self.server.metrics(conn)
            sock0, name0 = conn.sock, conn.sock.getsockname()
            for path in ("/healthz", "/style.css", "/missing", "/", "/healthz"):
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                self.assertIn(r.status, (200, 404))
                self.assertIs(conn.sock, sock0, "http.client reconnected after %s" % path)
            m1 = self.server.metrics(conn)
            self.assertIs(conn.sock, sock0)
            self.assertEqual(conn.sock.getsockname(), name0)
            self.assertEqual(m1[total], m0[total], "a new connection was opened")
        finally:
            conn.close()

    def test_http10_closes(self):
        s = self.sock()
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        rd = Reader(s)
        r = rd.response()
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        self.assertTrue(rd.closed(3), "HTTP/1.0 without keep-alive must be closed")

    def test_http10_keep_alive(self):
        s = self.sock()
        rd = Reader(s)
        for _ in range(2):
            s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = rd.response()
            self.assertEqual((r.status, r.body), (200, b"ok\n"))
            self.assertEqual((r.header("Connection") or "").lower(), "keep-alive",
                             "a 1.0 client learns of persistence only from this header")

    def test_connection_close(self):
        s = self.sock()
        # The second request must not be answered: the first one closed.
        s.sendall(get("/healthz", extra=b"Connection: close\r\n") + get("/healthz"))
        rd = Reader(s)
        r = rd.response()
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        self.assertEqual(r.header("Connection").lower(), "close")
        self.assertTrue(rd.closed(3))

    def test_connection_close_token_list(self):
        s = self.sock()
        s.sendall(get("/healthz", extra=b"Connection: foo, Close\r\n"))
        rd = Reader(s)
        self.assertEqual(rd.response().status, 200)
        self.assertTrue(rd.closed(3))

    def test_peer_half_close_still_answered(self):
        s = self.sock()
        s.sendall(get("/healthz"))
        s.shutdown(socket.SHUT_WR)
        rd = Reader(s)
        r = rd.response()
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        self.assertTrue(rd.closed(3))


class Curl(ServerTestCase):

    def curl(self, *args):
        p = subprocess.run(["curl", "--max-time", "10", *args], capture_output=True, timeout=20)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")

    def test_curl_reuses_connection(self):
        rc, out, err = self.curl("-sv", self.server.url("/healthz"), self.server.url("/healthz"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"ok\nok\n")
        self.assertIn("Re-using existing connection", err)

    def test_curl_http10(self):
        rc, out, err = self.curl("-sv", "--http1.0", self.server.url("/healthz"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"ok\n")
        self.assertIn("> GET /healthz HTTP/1.0", err)
        self.assertRegex(err, r"< HTTP/1\.[01] 200")

    def test_curl_head(self):
        rc, out, err = self.curl("-sI", self.server.url("/style.css"))
        self.assertEqual(rc, 0, err)
        self.assertRegex(out.decode(), r"^HTTP/1\.1 200 ")
        self.assertRegex(out.decode(), r"(?i)\r\ncontent-length: \d+\r\n")

    def test_curl_expect_100_continue(self):
        with tempfile.NamedTemporaryFile(prefix="tsunagi-body-") as f:
            f.write(b"x" * 10000)
            f.flush()
            t0 = time.monotonic()
            rc, out, err = self.curl("-sv", "-o", "/dev/null", "-w", "%{http_code}",
                                     "-H", "Expect: 100-continue", "--data-binary", "@" + f.name,
                                     self.server.url("/healthz"))
            took = time.monotonic() - t0
        self.assertEqual(rc, 0, err)
        self.assertIn("< HTTP/1.1 100 Continue", err)
        self.assertEqual(out, b"405")
        self.assertLess(took, 0.9, "curl waited for its expect timeout:\n" + err)

    def test_curl_chunked_upload(self):
        with tempfile.NamedTemporaryFile(prefix="tsunagi-body-") as f:
            f.write(b"y" * 20000)
            f.flush()
            t0 = time.monotonic()
            rc, out, err = self.curl("-sv", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code}",
                                     "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + f.name,
                                     self.server.url("/healthz"), self.server.url("/healthz"))
            took = time.monotonic() - t0
        self.assertEqual(rc, 0, err)
        self.assertIn("> Transfer-Encoding: chunked", err)
        self.assertEqual(out, b"405405")
        self.assertIn("Re-using existing connection", err, "the chunked body was not consumed")
        self.assertLess(took, 1.8, "curl waited for its expect timeout:\n" + err)

    def test_raw_expect_100_continue(self):
        s = self.sock(timeout=2)
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        rd = Reader(s)
        cont = rd.response()  # must come before we send the body
        self.assertEqual(cont.status, 100)
        s.sendall(b"hello" + get("/healthz"))
        r = rd.response()
        self.assertEqual(r.status, 405)
        self.assertEqual(rd.response().body, b"ok\n")

    def test_http10_expect_ignored(self):
        # RFC 9110 10.1.1: a 100-continue expectation in HTTP/1.0 MUST be ignored.
        s = self.sock(timeout=2)
        s.sendall(b"POST /healthz HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        s.settimeout(0.5)
        try:
            early = s.recv(100)
        except socket.timeout:
            early = b""
        self.assertEqual(early, b"", "nothing is owed before the body arrives")
        s.settimeout(3)
        s.sendall(b"hello")
        r = Reader(s).response()
        self.assertEqual(r.status, 405)

    def test_absolute_form(self):
        # RFC 9112 3.2.2: a server MUST accept the absolute-form.
        host = "127.0.0.1:%d" % self.server.port
        (r,), _ = self.roundtrip(b"GET http://" + host.encode() + b"/healthz HTTP/1.1\r\nHost: "
                                 + host.encode() + b"\r\n\r\n")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))


if __name__ == "__main__":
    unittest.main()
