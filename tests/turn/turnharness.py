"""Shared pieces of the TURN integration tests (tests/integration/test_turn_*.py).

Wraps the integration harness (tests/integration/tsunagi.py) with what TURN
tests need on top of it:

- TurnServer: tsunagi with its STUN/TURN listener on 127.0.0.1 port 0 (the
  harness already passes `--turn 127.0.0.1:0`; a later `--turn` would win,
  since the last occurrence of an option wins), relays on 127.0.0.1 in a
  random 200-port window of 40000-60000 (so files under `ctest -j2` do not
  compete for relay ports), optional `--turns` on a throw-away certificate,
  and the TURN ports read from the log.
- running the coturn utilities and node with a hard time limit, each in its
  own session so that a timeout kills that process group and nothing else.
- /api/ice-servers.

Every socket binds 127.0.0.1 and all traffic goes to 127.0.0.1.
"""

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
NODE = shutil.which("node") or "/usr/bin/node"

TURN_UDP_RE = r"listening on turn\+udp://127\.0\.0\.1:(\d+)"
TURN_TCP_RE = r"listening on turn://127\.0\.0\.1:(\d+)"
TURNS_RE = r"listening on turns://127\.0\.0\.1:(\d+)"

REALM = "tsunagi.test"
WINDOW = 200


def relay_window():
    """A random [lo, hi] window of WINDOW ports inside 40000-60000."""
    lo = random.SystemRandom().randrange(40000, 60000 - WINDOW)
    return lo, lo + WINDOW - 1


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


class TurnServer(tsunagi.Server):
    """tsunagi with TURN on 127.0.0.1:0, relays on 127.0.0.1 in a random window.

    users: ["name:pass", ...]; secret: --static-auth-secret; loopback:
    --allow-loopback-peers; tls: --turns 127.0.0.1:0 on a fresh certificate;
    args: anything else, appended last."""

    def __init__(self, *args, users=(), secret=None, realm=REALM, loopback=False, tls=False,
                 **kwargs):
        self.relay_lo, self.relay_hi = relay_window()
        self.realm = realm
        self.secret = secret
        self.tls = tls
        self.certdir = None
        self.turn_port = self.turn_tcp_port = self.turns_port = None
        extra = ["--relay-ip", "127.0.0.1", "--min-port", self.relay_lo,
                 "--max-port", self.relay_hi, "--realm", realm]
        for u in users:
            extra += ["--user", u]
        if secret is not None:
            extra += ["--static-auth-secret", secret]
        if loopback:
            extra += ["--allow-loopback-peers"]
        if tls:
            self.certdir = tempfile.mkdtemp(prefix="tsunagi-turn-cert-")
            self.cert, self.key = make_cert(self.certdir)
            extra += ["--turns", "127.0.0.1:0", "--cert", self.cert, "--pkey", self.key]
        super().__init__(*extra, *args, **kwargs)

    def start(self, timeout=20):
        super().start(timeout)
        try:
            self.turn_port = int(self.wait_for_log(TURN_UDP_RE, timeout=timeout).group(1))
            self.turn_tcp_port = int(self.wait_for_log(TURN_TCP_RE, timeout=timeout).group(1))
            if self.tls:
                self.turns_port = int(self.wait_for_log(TURNS_RE, timeout=timeout).group(1))
        except AssertionError:
            self.kill()
            raise
        return self

    def in_relay_range(self, port):
        return self.relay_lo <= port <= self.relay_hi

    def ice_servers(self):
        """GET /api/ice-servers: the parsed JSON."""
        status, headers, body = self.request("GET", "/api/ice-servers")
        if status != 200:
            raise AssertionError("/api/ice-servers answered %d: %r" % (status, body[:300]))
        return json.loads(body)

    def cleanup(self):
        super().cleanup()
        if self.certdir is not None:
            shutil.rmtree(self.certdir, ignore_errors=True)
            self.certdir = None


def turn_credentials(ice):
    """(username, credential, [turn urls]) of the first entry with turn: urls."""
    for entry in ice["iceServers"]:
        urls = entry["urls"] if isinstance(entry["urls"], list) else [entry["urls"]]
        turn = [u for u in urls if u.startswith("turn:")]
        if turn:
            return entry["username"], entry["credential"], turn
    raise AssertionError("no turn: url in %r" % (ice,))


class TurnTestCase(tsunagi.OneServerPerClass):
    """One TurnServer per class; it must exit 0 with no sanitizer report."""

    server_class = TurnServer


# ------------------------------------------------------ child processes --


def free_udp_port():
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(argv, timeout, env=None, cwd=None):
    """Run argv to completion in its own session: (returncode, stdout, stderr).

    On timeout the process group is killed (only ours) and the partial output
    returned with returncode None."""
    proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True, env=env,
                            cwd=cwd or tempfile.gettempdir())
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err
    return proc.returncode, out, err


class Background:
    """A long-running child (no children of its own), killed by its PID at stop()."""

    def __init__(self, argv, cwd=None):
        self.tmp = tempfile.mkdtemp(prefix="tsunagi-turn-bg-")
        self.out_path = os.path.join(self.tmp, "out.log")
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=cwd or self.tmp)

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_udp_echo_peer(timeout=5):
    """coturn's turnutils_peer (a UDP echo) on 127.0.0.1: (Background, port).

    Waits until it echoes a probe."""
    for _ in range(5):
        port = free_udp_port()
        peer = Background(["turnutils_peer", "-L", "127.0.0.1", "-p", port])
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(0.2)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and peer.proc.poll() is None:
                probe.sendto(b"probe", ("127.0.0.1", port))
                try:
                    data, _ = probe.recvfrom(100)
                    if data == b"probe":
                        return peer, port
                except (socket.timeout, ConnectionRefusedError):
                    pass
        finally:
            probe.close()
        out = peer.output()
        peer.stop()
    raise AssertionError("turnutils_peer did not start:\n" + out)


def run_node(script, *args, timeout=60):
    """node tests/turn/script with args: (returncode, stdout, stderr); fails on timeout."""
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(TESTS, "node_modules")
    rc, out, err = run([NODE, os.path.join(HERE, script), *args], timeout=timeout, env=env,
                       cwd=TESTS)
    if rc is None:
        raise AssertionError("node %s did not finish within %d s\nstdout:\n%s\nstderr:\n%s"
                             % (script, timeout, out[-4000:], err[-4000:]))
    return rc, out, err


def last_json(stdout):
    """The report a node script prints as its last line of stdout."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError("no JSON report in the script's output:\n" + stdout[-4000:])


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)
