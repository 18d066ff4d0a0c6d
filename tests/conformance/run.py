#!/usr/bin/python3
"""Run the WebSocket conformance cases against an echo endpoint.

    run.py --url ws://127.0.0.1:PORT/echo [--cases 1.*,6.4.*] [--report FILE]

Reads the case data (cases.json: Autobahn|Testsuite 1-7, 9, 10, 12, 13;
extra.json: cases Autobahn does not have), runs the cases in a thread pool,
prints one line per case (id, OK / NON-STRICT / INFORMATIONAL / FAILED, why)
and a summary line "N passed, M failed". Exit status 1 on any FAILED.

Grading follows Autobahn's: the events received (messages, pongs, timeouts)
must equal one of the case's expected lists ("OK" or "NON-STRICT"), and the
closing behaviour must match (who closed first, close code, clean close).
Two points are stricter than Autobahn's report, which shows them only in
colour: a wrong close code or an unclean close where one is required is
FAILED; and when the server must fail the connection but does nothing, so
the client has to drop it, the case is FAILED (Autobahn: "failed by
client"). A client-side drop after a correct close is NON-STRICT.
"""

import argparse
import concurrent.futures
import fnmatch
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import corpus  # noqa: E402
import wsclient  # noqa: E402
from wsclient import CLOSED, OPEN  # noqa: E402

OK, NON_STRICT, INFORMATIONAL, FAILED = "OK", "NON-STRICT", "INFORMATIONAL", "FAILED"
RANK = {OK: 0, INFORMATIONAL: 1, NON_STRICT: 2, FAILED: 3}
DATA_FILES = ("cases.json", "extra.json")


class Config:
    def __init__(self, args):
        u = urllib.parse.urlparse(args.url)
        if u.scheme != "ws" or not u.hostname:
            raise SystemExit("--url must be ws://HOST:PORT/PATH")
        self.host = u.hostname
        self.port = u.port or 80
        self.path = u.path or "/"
        self.host_header = "%s:%d" % (self.host, self.port)
        self.server = args.server
        self.allowed_origin = args.allowed_origin
        self.request_timeout = args.request_timeout
        self.max_message = args.max_message
        self.max_fragments = args.max_fragments
        self.scale = args.time_scale
        self.verbose = args.verbose
        self.corpora = {}
        self.budget_end = time.monotonic() + args.budget if args.budget else None
        # Cases still running 45 s after the budget are cut short (and fail).
        self.hard_end = self.budget_end + 45 if args.budget else None


# ---------------------------------------------------------------- payloads --


def resolve_len(v, cfg):
    if isinstance(v, int):
        return v
    if "max_message_plus" in v:
        return cfg.max_message + v["max_message_plus"]
    if "max_fragments_plus" in v:
        return cfg.max_fragments + v["max_fragments_plus"]
    if "half_max_message_plus" in v:
        return cfg.max_message // 2 + v["half_max_message_plus"]
    raise ValueError("bad length %r" % (v,))


def payload(spec, cfg):
    """Bytes of a payload spec: {"text"}, {"hex"}, {"repeat": {...}, "length": n}."""
    if spec is None:
        return b""
    if "text" in spec:
        return spec["text"].encode("utf-8")
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if "repeat" in spec:
        unit = payload(spec["repeat"], cfg)
        n = resolve_len(spec["length"], cfg)
        return (unit * (n // len(unit) + 1))[:n]
    raise ValueError("bad payload spec %r" % (spec,))


def event_value(ev, cfg):
    kind = ev[0]
    if kind == "message":
        return ("message", payload(ev[1], cfg), bool(ev[2]))
    if kind == "pong":
        return ("pong", payload(ev[1], cfg))
    if kind == "timeout":
        return ("timeout", ev[1])
    raise ValueError("bad event %r" % (ev,))


def show(data, limit=24):
    if len(data) <= limit:
        try:
            return repr(data.decode("utf-8"))
        except UnicodeDecodeError:
            return "0x" + data.hex()
    return "%d octets %s..." % (len(data), show(data[:limit], limit))


def show_events(evs, limit=6):
    out = []
    for e in evs[:limit]:
        if e[0] == "message":
            out.append("%s message %s" % ("binary" if e[2] else "text", show(e[1])))
        elif e[0] == "pong":
            out.append("pong %s" % show(e[1]))
        else:
            out.append("timeout %s" % e[1])
    if len(evs) > limit:
        out.append("... %d more" % (len(evs) - limit))
    return "[" + ", ".join(out) + "]"


# --------------------------------------------------------------- WS cases --


class Result:
    def __init__(self, case, status, why="", info=None):
        self.case, self.status, self.why, self.info = case, status, why, info or {}
        self.duration = 0.0


class WsCase:
    """One Autobahn-style case: handshake, actions, timers, grading."""

    def __init__(self, case, cfg):
        self.case = case
        self.cfg = cfg
        self.exp = case.get("expect", {})
        self.close_exp = self.exp.get("close", {"closed_by_me": True, "codes": [1000], "require_clean": True})
        self.rng = random.Random(case["id"])
        self.sess = None
        self.kill_at = None
        self.close_at = None
        self.killed_open = False
        self.loop_result = None  # (status, why) from an echo_loop
        self.notes = []
        self.expected = None

    def t(self, secs):
        return secs * self.cfg.scale

    def run(self):
        cfg = self.cfg
        self.deadline = time.monotonic() + self.t(self.case.get("timeout", 20))
        if cfg.hard_end is not None:
            self.deadline = min(self.deadline, cfg.hard_end)
        offers = self.case.get("handshake", {}).get("offers")
        ext = ", ".join(wsclient.offer_string(o) for o in offers) if offers else None
        sock = wsclient.connect(cfg.host, cfg.port, self.t(5))
        try:
            resp, rest, err = wsclient.handshake(sock, cfg.host_header, cfg.path, self.rng, self.t(5),
                                                 extensions=ext)
            if err:
                return FAILED, err, {}
            deflate = None
            if offers:
                params, nerr = wsclient.negotiate(offers, resp.header("Sec-WebSocket-Extensions"))
                if nerr:
                    return FAILED, "permessage-deflate negotiation: " + nerr, {}
                if params:
                    deflate = wsclient.Deflate(params)
                    self.notes.append("negotiated %r" % params["response"])
                else:
                    self.notes.append("offer declined")
            self.sess = wsclient.Session(sock, rest, deflate, self.rng, close_timeout=self.t(1),
                                         drop_timeout=self.t(1))
            sock = None
            return self.drive()
        finally:
            if sock is not None:
                sock.close()
            if self.sess is not None and self.sess.state != CLOSED:
                self.sess.drop("case ended")

    # ------------------------------------------------------------ actions --

    def needs_deflate(self):
        for a in self.case["actions"]:
            if a.get("compress") or (a.get("rsv", 0) & 4 and self.case.get("handshake")):
                return True
        return False

    def drive(self):
        s = self.sess
        if self.needs_deflate() and s.deflate is None:
            for a in self.case["actions"]:
                if a.get("declined_ok"):
                    s.send_close(1000)
                    self.loop_result = (OK, "offer declined (allowed for this case)")
                    return self.finish()
            return FAILED, "server declined the permessage-deflate offer: " + "; ".join(self.notes), {}
        self.expected = {k: [event_value(e, self.cfg) for e in v]
                         for k, v in self.exp.get("events", {}).items()}
        for a in self.case["actions"]:
            if s.state == CLOSED:
                break
            op = a["op"]
            if op == "wait":
                self.pump_until(time.monotonic() + self.t(a["seconds"]), lambda: s.state != OPEN)
                if s.state != OPEN:
                    break
                s.events.append(("timeout", a["tag"]))
            elif op == "sleep":
                self.pump_until(time.monotonic() + self.t(a["seconds"]))
            elif op == "kill_after":
                self.kill_at = time.monotonic() + self.t(a["seconds"])
            elif op == "close_after":
                self.close_at = time.monotonic() + self.t(a["seconds"])
            elif op == "echo_loop":
                self.echo_loop(a)
            else:
                self.send_action(a)
        return self.finish()

    def send_action(self, a):
        s, cfg = self.sess, self.cfg
        op = a["op"]
        if op == "frame":
            data = payload(a.get("payload"), cfg)
            rsv = a.get("rsv", 0)
            if a.get("compress"):
                data = s.deflate.compress(data)
                if data is None:
                    raise RuntimeError("negotiated client_max_window_bits=8: zlib cannot compress for it")
                rsv |= 4
            s.send_frame(a["opcode"], data, a.get("fin", True), rsv, a.get("mask", True), a.get("chop"),
                         a.get("sync", False), a.get("chop_delay", self.default_chop_delay(a, data)))
        elif op == "message":
            self.send_message(a["opcode"], payload(a["payload"], cfg), a.get("frag_size", 0), a.get("compress"),
                              a.get("ping_after_first"))
        elif op == "close":
            reason = payload(a.get("reason"), cfg)
            s.send_close(a.get("code"), reason)
        elif op == "frame_begin":
            n = resolve_len(a["length"], cfg)
            self.frame_key = s.mask_key()
            self.frame_off = 0
            s.send_raw(wsclient.frame_header(a["opcode"], n, a.get("fin", True), a.get("rsv", 0), self.frame_key))
        elif op == "frame_data":
            data = payload(a["payload"], cfg)
            s.send_raw(wsclient.mask_bytes(data, self.frame_key, self.frame_off))
            self.frame_off += len(data)
        else:
            raise ValueError("unknown op %r" % op)

    @staticmethod
    def default_chop_delay(a, data):
        # Octet-wise chops of small frames: pause so each octet is its own read.
        if a.get("chop") == 1 and len(data) <= 256:
            return 0.001
        return 0.0

    def send_message(self, opcode, data, frag_size, compress=False, ping_after_first=None):
        """Autobahn's sendMessage: optionally compressed, fragmented into frames of frag_size."""
        s = self.sess
        rsv = 0
        if compress:
            c = s.deflate.compress(data)
            if c is not None:
                data, rsv = c, 4
        if not frag_size or len(data) <= frag_size:
            s.send_frame(opcode, data, True, rsv)
            return
        frames = []
        n = len(data)
        for i in range(0, n, frag_size):
            first = i == 0
            frames.append(s.build_frame(opcode if first else 0, data[i:i + frag_size], i + frag_size >= n,
                                        rsv if first else 0))
            if first and ping_after_first is not None:
                frames.append(s.build_frame(9, payload(ping_after_first, self.cfg)))
        if frag_size <= 2 and len(frames) <= 4096:
            # 1-octet fragments: one write each, as Autobahn's per-frame writes.
            for f in frames:
                if not s.send_raw(f):
                    return
        else:
            s.send_raw(b"".join(frames))

    def echo_loop(self, a):
        """Send count messages one at a time, each after the previous echo (9.7, 9.8, 12, 13)."""
        s, cfg = self.sess, self.cfg
        if "corpus" in a:
            spec = self.case_corpus(a["corpus"])
            slider = corpus.Slider(corpus.corpus(spec))
            opcode = 2 if spec["binary"] else 1
            make = lambda: slider.next(a["length"])  # noqa: E731
        else:
            fixed = payload(a["payload"], cfg)
            opcode = a["opcode"]
            make = lambda: fixed  # noqa: E731
        count = a["count"]
        for k in range(count):
            msg = make()
            t_sent = time.monotonic()
            self.send_message(opcode, msg, a.get("frag_size", 0), a.get("compress"))
            n0 = len(s.events)
            until = min(self.deadline, time.monotonic() + self.t(a.get("echo_timeout", 5)))
            self.pump_until(until, lambda: len(s.events) > n0 or s.state != OPEN)
            if len(s.events) == n0:
                why = ("connection closed" if s.state != OPEN else "no echo within %.0f s" % (until - t_sent)) + \
                      " waiting for echo %d of %d" % (k + 1, count)
                s.send_close(1000)
                self.loop_result = (FAILED, why)
                return
            ev = s.events.pop()
            del s.events[:]
            if ev[0] != "message" or ev[2] != (opcode == 2) or ev[1] != msg:
                got = show_events([ev])
                self.loop_result = (FAILED, "echo %d of %d differs: sent %s %s, got %s" % (
                    k + 1, count, "binary" if opcode == 2 else "text", show(msg), got))
                s.send_close(1000)
                return
        self.loop_result = (OK, "%d messages echoed" % count)
        s.send_close(1000)

    def case_corpus(self, name):
        return self.cfg.corpora[name]

    # ------------------------------------------------------------- events --

    def pump_until(self, until, stop=None):
        """Pump the session, honouring the case timers and finish-when-done."""
        s = self.sess
        while s.state != CLOSED:
            if stop is not None and stop():
                return
            now = time.monotonic()
            if now >= self.deadline:
                self.notes.append("case time limit reached")
                self.killed_open = self.killed_open or s.state == OPEN
                s.drop("case time limit (%.0f s) reached" % self.t(self.case.get("timeout", 20)))
                return
            if self.kill_at is not None and now >= self.kill_at:
                self.killed_open = s.state == OPEN
                s.drop("kill timer (Autobahn killAfter) fired in state %s" % s.state)
                return
            if self.close_at is not None and now >= self.close_at:
                self.close_at = None
                s.send_close(None)  # Autobahn's closeAfter: sendClose() without a code
                continue
            end = min(x for x in (until, self.deadline, self.kill_at, self.close_at) if x is not None)
            if now >= end:
                return
            n0 = len(s.events)
            s.pump(end, lambda: len(s.events) != n0 or (stop is not None and stop()))
            if len(s.events) != n0:
                self.finish_when_done()

    def finish_when_done(self):
        """Autobahn's Case.finishWhenDone: close once the events match every expected list."""
        if not self.exp.get("close_when_done", True) or not self.close_exp["closed_by_me"]:
            return
        if self.loop_result is not None or not self.expected:
            return
        s = self.sess
        if s.state == OPEN and all(s.events == v for v in self.expected.values()):
            s.send_close(self.close_exp["codes"][0])

    def finish(self):
        self.pump_until(self.deadline)
        return self.grade()

    # ------------------------------------------------------------ grading --

    def grade(self):
        s, ce = self.sess, self.close_exp
        info = {"remote_close_code": s.remote_close_code, "remote_close_reason": s.remote_close_reason,
                "closed_by_me": s.closed_by_me, "dropped_by_me": s.dropped_by_me, "was_clean": s.was_clean,
                "events": show_events(s.events)}
        if self.notes:
            info["notes"] = self.notes
        # Behaviour: the events.
        if self.loop_result is not None:
            behavior, bwhy = self.loop_result
        else:
            behavior, bwhy = FAILED, None
            for name in (OK, NON_STRICT, INFORMATIONAL):
                if name in self.expected and s.events == self.expected[name]:
                    behavior = name
                    break
            if behavior == FAILED:
                bwhy = "received %s, expected %s" % (show_events(s.events), " or ".join(
                    "%s %s" % (k, show_events(v)) for k, v in self.expected.items()))
            elif behavior != OK:
                bwhy = "received %s" % show_events(s.events)
        # Closing behaviour.
        code = s.remote_close_code
        codes = ce["codes"]
        if s.violation:
            cstatus, cwhy = FAILED, "server protocol violation: " + s.violation
        elif not ce["closed_by_me"] and not s.server_initiated:
            cstatus, cwhy = FAILED, ("server did not fail the connection (no close frame, TCP left open); "
                                     "expected close %s" % "/".join(map(str, codes)))
        elif ce["closed_by_me"] != s.closed_by_me:
            if s.closed_by_me:
                cstatus, cwhy = FAILED, "connection was closed by the client, expected the server to fail it"
            elif s.server_initiated:
                cstatus, cwhy = FAILED, ("server failed the connection (%s), expected a clean close "
                                         "started by the client" % close_desc(s))
            else:
                cstatus, cwhy = FAILED, "client never started the closing handshake (" + (s.drop_reason or "?") + ")"
        elif s.closed_by_me and not s.close_received and not s.tcp_closed_by_peer:
            cstatus, cwhy = FAILED, ("server ignored the client's close frame: no close frame back and TCP "
                                     "left open (%s)" % (s.drop_reason or "?"))
        elif ce["require_clean"] and not s.was_clean:
            cstatus, cwhy = FAILED, "UNCLEAN close: " + (s.unclean_reason or "?")
        elif code is not None and code not in codes:
            cstatus, cwhy = FAILED, "WRONG CODE: server closed with %s, expected %s" % (
                close_desc(s), " or ".join(map(str, codes)))
        elif s.dropped_by_me:
            cstatus, cwhy = NON_STRICT, "FAILED BY CLIENT: " + (s.drop_reason or "client dropped TCP")
        else:
            cstatus, cwhy = OK, None
        status = max(behavior, cstatus, key=lambda x: RANK[x])
        whys = [w for w in (bwhy, cwhy) if w]
        if self.exp.get("grade") == INFORMATIONAL and not s.violation:
            status = INFORMATIONAL
            whys = ["events %s, close code %s" % (show_events(s.events), code)]
        elif self.exp.get("record_close_code") and status != FAILED:
            whys.append("server closed with %s" % close_desc(s))
        return status, "; ".join(whys), info


def close_desc(s):
    if not s.close_received:
        return "no close frame, TCP dropped"
    if s.remote_close_code is None:
        return "close frame without a code"
    return "close %d%s" % (s.remote_close_code, " %r" % s.remote_close_reason if s.remote_close_reason else "")


# ------------------------------------------------------------- HTTP cases --


def run_http_case(case, cfg):
    req = case["request"]
    exp = case["expect"]
    rng = random.Random(case["id"])
    subst = {"{host}": cfg.host_header, "{key}": wsclient.new_key(rng), "{allowed_origin}": cfg.allowed_origin}

    def fill(v):
        for k, x in subst.items():
            v = v.replace(k, x)
        return v

    if "raw" in req:
        data = fill(req["raw"]).encode()
    else:
        lines = ["GET %s HTTP/1.1" % cfg.path] + ["%s: %s" % (k, fill(v)) for k, v in req["headers"]]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    sock = wsclient.connect(cfg.host, cfg.port, cfg.scale * 5)
    try:
        sock.sendall(data)
        if "closed_within" in exp:
            return stall_result(sock, cfg, exp)
        resp, rest, eof = wsclient.read_head(sock, time.monotonic() + cfg.scale * 5)
        if resp is None:
            return FAILED, "connection closed without a response", {}
        info = {"status": resp.status, "headers": resp.headers}
        status = resp.status
        if status in exp["status"]:
            grade, why = OK, "%d" % status
        elif status in exp.get("non_strict_status", []):
            grade, why = NON_STRICT, "answered %d (%s)" % (status, resp.reason)
        else:
            return FAILED, "answered %d %s, expected %s" % (status, resp.reason,
                                                            " or ".join(map(str, exp["status"]))), info
        for name, want in exp.get("headers", {}).items():
            got = resp.header(name)
            if got is None or want not in [t.strip() for t in got.split(",")]:
                return FAILED, "%d without %s: %s (got %r)" % (status, name, want, got), info
        for name in exp.get("headers_absent", []):
            if status == 101 and resp.header(name) is not None:
                return FAILED, "101 with %s: %r" % (name, resp.header(name)), info
        if exp.get("extension_accepted") and status == 101:
            ext = resp.header("Sec-WebSocket-Extensions")
            if ext is None:
                return FAILED, "101 without accepting the valid second offer", info
            if "=7" in ext:
                return FAILED, "101 accepting the invalid first offer: %r" % ext, info
            why += " accepting %r" % ext
        if status == 101:
            close_ws(sock, rng)
        return grade, why, info
    finally:
        sock.close()


def stall_result(sock, cfg, exp):
    """A request head that never ends: the server must answer 408 and/or close in time."""
    spec = exp["closed_within"]
    limit = cfg.request_timeout + float(spec.split("+")[1]) if spec.startswith("request_timeout") else float(spec)
    t0 = time.monotonic()
    got = b""
    sock.settimeout(0.5)
    while time.monotonic() - t0 < limit * cfg.scale:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, OSError):
            d = b""
        if not d:
            took = time.monotonic() - t0
            status = None
            if got:
                try:
                    status = wsclient.parse_head(got.split(b"\r\n\r\n")[0]).status
                except ValueError:
                    return FAILED, "garbage before close: %r" % got[:100], {}
            if status not in exp["status"]:
                return FAILED, "closed after %.1f s with status %s, expected %s" % (took, status, exp["status"]), {}
            return OK, "closed after %.1f s (%s)" % (took, "%d" % status if status else "no response"), {}
        got += d
    return FAILED, "connection still open %.1f s after the request head stalled (request timeout %s s)" % (
        time.monotonic() - t0, cfg.request_timeout), {}


def close_ws(sock, rng):
    key = bytes(rng.getrandbits(8) for _ in range(4))
    try:
        sock.sendall(wsclient.frame_header(8, 2, True, 0, key) + wsclient.mask_bytes(struct.pack("!H", 1000), key))
        sock.settimeout(1)
        while sock.recv(4096):
            pass
    except OSError:
        pass


# ------------------------------------------------------------------ runner --


def run_case(case, cfg, heavy_sem):
    t0 = time.monotonic()
    if cfg.budget_end is not None and t0 > cfg.budget_end:
        return Result(case, FAILED, "not run: the run's time budget (--budget) was used up")
    sem = heavy_sem if case.get("heavy") else None
    if sem:
        sem.acquire()
        t0 = time.monotonic()  # the case's own time, not its wait for a heavy slot
    try:
        if case.get("kind") == "http":
            status, why, info = run_http_case(case, cfg)
        else:
            status, why, info = WsCase(case, cfg).run()
    except Exception as e:  # a harness or connection error is a failure, with the trace
        status, why, info = FAILED, "%s: %s" % (type(e).__name__, e), {"trace": traceback.format_exc()}
    finally:
        if sem:
            sem.release()
    r = Result(case, status, why, info)
    r.duration = time.monotonic() - t0
    return r


def id_key(cid):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in cid.split(".")]


def load_cases(cfg, patterns, excludes):
    cases = []
    for name in DATA_FILES:
        with open(os.path.join(HERE, name)) as f:
            doc = json.load(f)
        cfg.corpora.update(doc.get("corpora", {}))
        cases += doc["cases"]
    selected, skipped = [], []
    for c in cases:
        if patterns and not any(fnmatch.fnmatchcase(c["id"], p) or c["id"] == p for p in patterns):
            continue
        if any(fnmatch.fnmatchcase(c["id"], p) for p in excludes):
            continue
        servers = c.get("servers")
        if servers and cfg.server not in servers:
            skipped.append(c)
            continue
        selected.append(c)
    return selected, skipped


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="ws://HOST:PORT/PATH of an echo endpoint")
    ap.add_argument("--cases", default="", help="comma-separated id patterns (1.*,6.4.*); default all")
    ap.add_argument("--exclude", default="", help="comma-separated id patterns to leave out")
    ap.add_argument("--report", help="write a JSON report here")
    ap.add_argument("--server", default="tsunagi",
                    help="server under test: cases tagged for other servers are skipped (default tsunagi)")
    ap.add_argument("--allowed-origin", default="http://allowed.example",
                    help="the Origin the server allows (--allowed-origin of tsunagi)")
    ap.add_argument("--request-timeout", type=float, default=10.0, help="the server's --request-timeout")
    ap.add_argument("--max-message", type=int, default=16 * 1024 * 1024,
                    help="largest message the endpoint accepts (default 16 MiB)")
    ap.add_argument("--max-fragments", type=int, default=1024,
                    help="most fragments the endpoint accepts in one message (default 1024)")
    ap.add_argument("--jobs", type=int, default=8, help="cases run at once")
    ap.add_argument("--heavy-jobs", type=int, default=2, help="large-message cases run at once")
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="multiply every wait and timeout (slow builds: ASan)")
    ap.add_argument("--budget", type=float, default=0,
                    help="seconds: cases not started by then are FAILED as not run (default: no limit)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    cfg = Config(args)
    patterns = [p.strip() for p in args.cases.split(",") if p.strip()]
    excludes = [p.strip() for p in args.exclude.split(",") if p.strip()]
    cases, skipped = load_cases(cfg, patterns, excludes)
    if not cases:
        print("no cases selected")
        return 2
    t0 = time.monotonic()
    heavy_sem = threading.Semaphore(max(1, args.heavy_jobs))
    order = sorted(range(len(cases)), key=lambda i: id_key(cases[i]["id"]))
    # Heavy and slow cases first, so they overlap with the many short ones.
    submit = sorted(order, key=lambda i: (not cases[i].get("heavy"), cases[i].get("timeout", 20) < 60))
    results = [None] * len(cases)
    printed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {pool.submit(run_case, cases[i], cfg, heavy_sem): i for i in submit}
        for fut in concurrent.futures.as_completed(futs):
            results[futs[fut]] = fut.result()
            while printed < len(order) and results[order[printed]] is not None:
                print_result(results[order[printed]], args.verbose)
                printed += 1
    counts = {OK: 0, NON_STRICT: 0, INFORMATIONAL: 0, FAILED: 0}
    for r in results:
        counts[r.status] += 1
    for c in skipped:
        print("%-8s SKIPPED  (only for %s)" % (c["id"], ", ".join(c["servers"])))
    took = time.monotonic() - t0
    for st in (NON_STRICT, INFORMATIONAL, FAILED):
        ids = [r.case["id"] for r in sorted(results, key=lambda r: id_key(r.case["id"])) if r.status == st]
        if ids:
            print("%s (%d): %s" % (st, len(ids), " ".join(ids)))
    print("%d cases in %.1f s: %d OK, %d NON-STRICT, %d INFORMATIONAL, %d FAILED, %d skipped"
          % (len(results), took, counts[OK], counts[NON_STRICT], counts[INFORMATIONAL], counts[FAILED], len(skipped)))
    print("%d passed, %d failed" % (len(results) - counts[FAILED], counts[FAILED]))
    sys.stdout.flush()
    if args.report:
        write_report(args.report, results, skipped, took)
    return 1 if counts[FAILED] else 0


def print_result(r, verbose):
    line = "%-8s %-13s %5.2fs  %s" % (r.case["id"], r.status, r.duration, r.why)
    print(line.rstrip())
    if (verbose or r.status == FAILED) and r.info.get("trace"):
        print(r.info["trace"])
    if verbose and r.info:
        print("         " + json.dumps({k: v for k, v in r.info.items() if k != "trace"}, default=str))
    sys.stdout.flush()


def write_report(path, results, skipped, took):
    doc = {"duration": round(took, 1), "results": [], "skipped": [c["id"] for c in skipped]}
    for r in sorted(results, key=lambda r: id_key(r.case["id"])):
        doc["results"].append({"id": r.case["id"], "status": r.status, "why": r.why,
                               "duration": round(r.duration, 3), "description": r.case["description"],
                               "info": {k: v for k, v in r.info.items()}})
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(main())
