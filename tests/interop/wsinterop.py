"""Shared pieces of the WebSocket interop tests (tests/integration/test_ws_interop_*.py).

Wraps the integration harness (tests/integration/tsunagi.py) with what it does
not do itself: a TLS listener with a throw-away self-signed certificate, the
https port from the log, and running the Node scripts next to this file
(ws client, Chromium through playwright-core) with a hard time limit.
"""

import base64
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import tsunagi  # noqa: E402  (path set just above)

REPO = tsunagi.REPO
TESTS = os.path.join(REPO, "tests")
NODE_MODULES = os.path.join(TESTS, "node_modules")
NODE = shutil.which("node") or "/usr/bin/node"
HTTPS_RE = r"listening on https://127\.0\.0\.1:(\d+)"

MiB = 1024 * 1024
# Payload lengths around the frame-length encodings (7-bit, 16-bit, 64-bit).
SMALL_SIZES = (0, 1, 3, 125, 126, 127, 65535, 65536)
BIG = 8 * MiB


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 made by the openssl command: (cert, key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class EchoServer(tsunagi.Server):
    """tsunagi with --echo, and with tls=True an https listener on a fresh cert."""

    def __init__(self, *args, tls=False, **kwargs):
        self.tls = tls
        self.tls_port = None
        self.certdir = None
        extra = ["--echo"]
        if tls:
            self.certdir = tempfile.mkdtemp(prefix="tsunagi-wsi-cert-")
            self.cert, self.key = make_cert(self.certdir)
            extra += ["--https", "127.0.0.1:0", "--cert", self.cert, "--pkey", self.key]
        super().__init__(*extra, *args, **kwargs)

    def start(self, timeout=20):
        super().start(timeout)
        if self.tls:
            self.tls_port = int(self.wait_for_log(HTTPS_RE, timeout=timeout).group(1))
        return self

    def ws_url(self, path="/echo"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def wss_url(self, path="/echo"):
        return "wss://127.0.0.1:%d%s" % (self.tls_port, path)

    def https_url(self, path="/"):
        return "https://127.0.0.1:%d%s" % (self.tls_port, path)

    def cleanup(self):
        super().cleanup()
        if self.certdir is not None:
            shutil.rmtree(self.certdir, ignore_errors=True)
            self.certdir = None


class EchoTestCase(tsunagi.OneServerPerClass):
    """One EchoServer per class; it must exit 0 with no sanitizer report."""

    server_class = EchoServer


# ----------------------------------------------------------- payloads --

# 1-, 2-, 3- and 4-byte UTF-8 sequences, so a text echo exercises the server's
# UTF-8 validator across frame and read boundaries.
_ALPHABET = "tsunagi-0123456789 \u00e9\u00df\u03bb\u0436\u3064\u306a\u304e\u7e4b\U0001f517\U0001f30a"


def text_of(nbytes, seed):
    """A str whose UTF-8 encoding is exactly nbytes long, mostly non-ASCII."""
    rnd = random.Random(seed)
    data = b""
    while len(data) < nbytes:
        data += "".join(rnd.choices(_ALPHABET, k=(nbytes - len(data)) // 2 + 1)).encode()
    data = data[:nbytes]
    # Cut at a character boundary, then pad with ASCII to the exact length.
    text = data.decode("utf-8", "ignore")
    return text + "x" * (nbytes - len(text.encode()))


def binary_of(nbytes, seed):
    """Incompressible bytes."""
    return random.Random(seed).randbytes(nbytes)


def compressible_of(nbytes, seed, block=3000):
    """Bytes that deflate well only by matching far back (a random block repeated)."""
    unit = random.Random(seed).randbytes(block)
    return (unit * (nbytes // block + 1))[:nbytes]


def digest(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------- node scripts --


def run_node(script, *args, timeout=60, cwd=None):
    """Run node on tests/interop/script: (returncode, stdout, stderr).

    A new session, so on timeout the whole group (node and any browser it
    launched) is killed, and nothing else.
    """
    env = dict(os.environ)
    env["NODE_PATH"] = NODE_MODULES
    proc = subprocess.Popen([NODE, os.path.join(HERE, script), *[str(a) for a in args]],
                            cwd=cwd or TESTS, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError("node %s did not finish within %d s\nstdout:\n%s\nstderr:\n%s"
                             % (script, timeout, out[-4000:], err[-4000:]))
    return proc.returncode, out, err


def last_json(stdout):
    """The report a node script prints as its last line of stdout."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError("no JSON report in the script's output:\n" + stdout[-4000:])


# ------------------------------------------------- raw WebSocket client --


def raw_handshake(port, path="/echo", extra=b"", timeout=5):
    """Open a WebSocket by hand: (socket, bytes after the 101 head). Asserts the 101."""
    key = base64.b64encode(os.urandom(16))
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\n" + extra + b"\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(4096)
        if not data:
            s.close()
            raise AssertionError("closed during the handshake: %r" % buf)
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    lines = head.split(b"\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    if not lines[0].startswith(b"HTTP/1.1 101") or fields.get(b"sec-websocket-accept") != accept:
        s.close()
        raise AssertionError("not a valid 101: %r" % head)
    return s, rest


def parse_frames(data):
    """Unmasked server frames in data: [(fin, opcode, payload)], and the leftover bytes."""
    frames = []
    while len(data) >= 2:
        b0, b1 = data[0], data[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            if len(data) < 4:
                break
            n, off = int.from_bytes(data[2:4], "big"), 4
        elif n == 127:
            if len(data) < 10:
                break
            n, off = int.from_bytes(data[2:10], "big"), 10
        if b1 & 0x80:
            raise AssertionError("server frame is masked: %r" % data[:16])
        if len(data) < off + n:
            break
        frames.append((bool(b0 & 0x80), b0 & 0x0F, data[off:off + n]))
        data = data[off + n:]
    return frames, data


def until_closed(sock, limit):
    """Read without ever sending until the peer closes or limit seconds pass.

    Returns (seconds until EOF/reset or None, [(t, fin, opcode, payload)]).
    """
    t0 = time.monotonic()
    buf, frames = b"", []
    while True:
        left = limit - (time.monotonic() - t0)
        if left <= 0:
            return None, frames
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None, frames
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        now = time.monotonic() - t0
        if not data:
            return now, frames
        buf += data
        got, buf = parse_frames(buf)
        frames += [(now,) + f for f in got]
