"""Harness for tsunagi's integration tests: start the real binary, talk to it.

The binary comes from $TSUNAGI_BIN (ctest sets it to the ASan+UBSan build).
Every server listens on 127.0.0.1 port 0 and announces the kernel's choice in
its log, so test files can run in parallel. Stopping a server sends SIGTERM to
its own PID and fails unless it exits 0 with no sanitizer report.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("TS_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("TSUNAGI_BIN") or os.path.join(REPO, "build", "tsunagi")
WEB = os.path.join(REPO, "web")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
LISTEN_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def server_env():
    env = dict(os.environ)
    # Run directly (not from ctest): still make a leak fail the exit status.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def sanitizer_report(text):
    """The first sanitizer marker found in text, or None."""
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


def run(*args, timeout=20):
    """Run the binary to completion (start-up checks): CompletedProcess, text."""
    return subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          env=server_env(), cwd=REPO, timeout=timeout, text=True,
                          errors="replace")


class Server:
    """One tsunagi process. args are appended after the harness's own."""

    def __init__(self, *args, threads=2, log_level="debug", cwd=None):
        # TURN on port 0 too: its default (3478) would collide between files
        # that ctest runs in parallel once that listener exists.
        self.args = [BIN, "--http", "127.0.0.1:0", "--turn", "127.0.0.1:0"]
        if threads is not None:
            self.args += ["--threads", str(threads)]
        if log_level is not None:
            self.args += ["--log-level", log_level]
        self.args += [str(a) for a in args]
        self.cwd = cwd or REPO
        self.proc = None
        self.port = None
        self.tmp = None
        self.returncode = None

    # ---------------------------------------------------------- lifecycle --

    def start(self, timeout=20):
        self.tmp = tempfile.mkdtemp(prefix="tsunagi-integ-")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.stdout_path = os.path.join(self.tmp, "stdout.log")
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=server_env(), cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while self.port is None:
            m = LISTEN_RE.search(self.log())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise AssertionError("tsunagi exited with %d before listening:\n%s"
                                     % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("tsunagi did not announce its port:\n" + self.log())
            time.sleep(0.02)
        # The listener exists once announced; wait until the workers answer.
        while True:
            try:
                status, _, _ = self.request("GET", "/healthz", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("tsunagi never answered /healthz:\n" + self.log())
            time.sleep(0.05)

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        """Exit status, or None if still running after timeout seconds."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=10):
        """SIGTERM, wait, and fail unless the exit is clean. Returns seconds taken."""
        t0 = time.monotonic()
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        took = time.monotonic() - t0
        if rc is None:
            self.kill()
            raise AssertionError("tsunagi did not exit within %.0f s of SIGTERM:\n%s"
                                 % (timeout, self.log_tail()))
        self.assert_clean_exit(rc)
        return took

    def assert_clean_exit(self, rc=None):
        rc = self.proc.returncode if rc is None else rc
        text = self.log()
        marker = sanitizer_report(text)
        if marker is not None:
            raise AssertionError("sanitizer report (%s) in tsunagi's stderr:\n%s" % (marker, text))
        if rc != 0:
            raise AssertionError("tsunagi exited with %s (66: ASan leak report):\n%s"
                                 % (rc, self.log_tail()))

    def cleanup(self):
        self.kill()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    # ---------------------------------------------------------------- log --

    def log(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_for_log(self, pattern, timeout=5, after=0):
        """Wait until regex pattern appears in the log past offset after; the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log(), after)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %s s:\n%s"
                                     % (pattern, timeout, self.log_tail()))
            time.sleep(0.02)

    # ------------------------------------------------------------ clients --

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def connect(self, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def http(self, timeout=5):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=5):
        """One request on a fresh connection: (status, HTTPMessage, body bytes)."""
        conn = self.http(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def metrics(self, conn=None):
        """/metrics as {'name{labels}': float}; on conn if given."""
        if conn is None:
            status, _, body = self.request("GET", "/metrics")
        else:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            status, body = r.status, r.read()
        if status != 200:
            raise AssertionError("/metrics answered %d" % status)
        return parse_metrics(body.decode())


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if m is None:
            raise AssertionError("not a Prometheus sample line: %r" % line)
        out[m.group(1)] = float(m.group(2))
    return out


def status_count(metrics, status):
    return metrics.get('tsunagi_http_requests_total{status="%d"}' % status, 0.0)


# ------------------------------------------------------ raw HTTP reading --


class Response:
    def __init__(self, version, status, reason, headers, body, raw):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers  # [(name, value)] as sent
        self.body, self.raw = body, raw

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


class Reader:
    """Reads HTTP/1.1 responses off a raw socket, strictly."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed with %d bytes unread: %r" % (len(self.buf), self.buf[:200]))
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise AssertionError("line too long in response")
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def response(self, head=False):
        """The next response; head=True for an answer to HEAD (no body)."""
        raw = b""
        status_line = self._line()
        raw += status_line + b"\r\n"
        m = re.match(rb"^(HTTP/1\.[01]) ([1-5][0-9][0-9]) ?(.*)$", status_line)
        if m is None:
            raise AssertionError("bad status line: %r" % status_line)
        version, status, reason = m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1")
        headers = []
        while True:
            line = self._line()
            raw += line + b"\r\n"
            if line == b"":
                break
            name, sep, value = line.partition(b":")
            if not sep or name != name.strip() or not name:
                raise AssertionError("bad header line: %r" % line)
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        resp = Response(version, status, reason, headers, b"", raw)
        if head or status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header_all("Content-Length")
        if te is not None:
            raise AssertionError("unexpected Transfer-Encoding from tsunagi: %r" % te)
        if len(cl) != 1 or not cl[0].isdigit():
            raise AssertionError("response without one valid Content-Length: %r" % headers)
        resp.body = self._take(int(cl[0]))
        resp.raw += resp.body
        return resp

    def final(self, head=False):
        """The next final (non-1xx) response, skipping interim ones."""
        while True:
            r = self.response(head)
            if r.status >= 200:
                return r

    def closed(self, timeout=3):
        """True if the peer closes (EOF or reset) within timeout with nothing more sent."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            if self.buf:
                raise AssertionError("unexpected bytes before close: %r" % self.buf[:200])
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False
            if not data:
                return True
            self.buf += data
            if time.monotonic() > deadline:
                return False


class ServerPerTest(unittest.TestCase):
    """A fresh server (or several) per test, started with start(); the
    sockets a test keeps in self.socks, the servers and self.tmp go with it."""

    tmp_prefix = "tsunagi-test-"

    def setUp(self):
        self.servers = []
        self.socks = []
        self.tmp = tempfile.mkdtemp(prefix=self.tmp_prefix)

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


class OneServerPerClass(unittest.TestCase):
    """One server_class(*server_args, **server_kwargs) per test class,
    started before its tests; its exit must be clean."""

    server_class = None  # set by subclasses (defaults to Server)
    server_args = ()
    server_kwargs = {}

    @classmethod
    def setUpClass(cls):
        cls.server = (cls.server_class or Server)(*cls.server_args, **cls.server_kwargs)
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.cleanup()


class ServerTestCase(OneServerPerClass):
    """One server per test class, with helpers for raw HTTP."""

    def setUp(self):
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()

    def sock(self, timeout=5):
        s = self.server.connect(timeout)
        self.socks.append(s)
        return s

    def assert_serving(self):
        """A fresh connection still gets 200 from /healthz."""
        status, _, body = self.server.request("GET", "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))

    def roundtrip(self, data, n=1, head=False, timeout=5):
        s = self.sock(timeout)
        s.sendall(data)
        rd = Reader(s)
        return [rd.response(head) for _ in range(n)], rd


def get(path, host="t", extra=b""):
    """Raw bytes of a GET request."""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + extra + b"\r\n"


def in_threads(fn, n):
    """Run fn(i) in n threads; re-raise the first failure."""
    errors = []

    def wrap(i):
        try:
            fn(i)
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
