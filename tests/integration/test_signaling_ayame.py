"""tsunagi's Ayame signaling (/signaling) with a raw WebSocket client.

Python's websockets library (Debian's python3-websockets) speaks the Ayame
protocol by hand, as @open-ayame/ayame-web-sdk does: register, accept with
both flags and iceServers, relay of offer/answer/candidate byte for byte,
full rooms, bye, signaling keys, the authn and disconnect webhooks (a local
HTTP server in a thread), ping/pong, every bad input (an error message, then
close 1008 or 1009, and the other member sees nothing of it), the fragment
limit, and rooms whose members live on different workers (--threads 4).
"""

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import websockets  # noqa: E402

import tsunagi  # noqa: E402

SECRET = "ayame-test-secret"
RATE_LIMITED = 'tsunagi_signaling_rate_limited_total{protocol="%s"}'


def rate_limited(server):
    """/metrics: clients closed over --signaling-rate, (ayame, peerjs)."""
    m = server.metrics()
    return m[RATE_LIMITED % "ayame"], m[RATE_LIMITED % "peerjs"]


def arun(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(server):
    return await websockets.connect("ws://127.0.0.1:%d/signaling" % server.port,
                                    ping_interval=None, max_size=None, open_timeout=5)


async def recv_json(ws, timeout=5):
    msg = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(msg, str), "binary message from the server: %r" % msg[:100]
    return json.loads(msg)


async def recv_raw(ws, timeout=5):
    return await asyncio.wait_for(ws.recv(), timeout)


async def nothing(ws, seconds=0.3, allow_ping=True):
    """Assert no message (other than ping) arrives within seconds."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except asyncio.TimeoutError:
            return
        if allow_ping and json.loads(msg).get("type") == "ping":
            continue
        raise AssertionError("unexpected message: %r" % msg[:200])


async def closed_with(ws, timeout=5):
    """Wait for the close; returns (code, messages received before it)."""
    got = []
    try:
        while True:
            got.append(await asyncio.wait_for(ws.recv(), timeout))
    except websockets.ConnectionClosed:
        pass
    return ws.close_code, got


async def register(server, room, **fields):
    ws = await connect(server)
    msg = {"type": "register", "roomId": room, "clientId": fields.pop("clientId", None)}
    msg.update(fields)
    await ws.send(json.dumps({k: v for k, v in msg.items() if v is not None}))
    return ws, await recv_json(ws)


async def pair(server, room):
    a, acc_a = await register(server, room)
    b, acc_b = await register(server, room)
    assert acc_a["type"] == "accept" and acc_b["type"] == "accept", (acc_a, acc_b)
    return a, b, acc_a, acc_b


def rest_password(username):
    return base64.b64encode(hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()


class AyameBasic(tsunagi.OneServerPerClass):
    server_args = ("--static-auth-secret", SECRET)

    def test_register_accept_flags_and_ice_servers(self):
        async def go():
            a, b, acc_a, acc_b = await pair(self.server, "basic-accept")
            for acc in (acc_a, acc_b):
                self.assertRegex(acc["connectionId"], r"^[0-9A-HJKMNP-TV-Z]{26}$")
                self.assertNotIn("authzMetadata", acc)
            self.assertNotEqual(acc_a["connectionId"], acc_b["connectionId"])
            self.assertIs(acc_a["isExistClient"], False)
            self.assertIs(acc_a["isExistUser"], False)
            self.assertIs(acc_b["isExistClient"], True)
            self.assertIs(acc_b["isExistUser"], True)
            ice = acc_a["iceServers"]
            urls = [u for s in ice for u in s["urls"]]
            self.assertTrue(any(u.startswith("stun:127.0.0.1:") for u in urls), urls)
            self.assertTrue(any(u.startswith("turn:127.0.0.1:") and u.endswith("transport=udp")
                                for u in urls), urls)
            turn = [s for s in ice if "username" in s][0]
            expiry, _, name = turn["username"].partition(":")
            self.assertGreater(int(expiry), time.time())
            self.assertTrue(name.startswith("ayame-"), name)
            self.assertEqual(turn["credential"], rest_password(turn["username"]))
            # Fresh credentials per client.
            names = {[s for s in acc["iceServers"] if "username" in s][0]["username"]
                     for acc in (acc_a, acc_b)}
            self.assertEqual(len(names), 2)
            await a.close()
            await b.close()
        arun(go())

    def test_relay_unchanged_both_ways(self):
        async def go():
            a, b, _, _ = await pair(self.server, "basic-relay")
            # Odd spacing, key order and unknown fields: forwarded byte for byte.
            offer = '{ "sdp" : "v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n",\n "type":"offer", "x":[1,2] }'
            await b.send(offer)
            self.assertEqual(await recv_raw(a), offer)
            answer = '{"type":"answer","sdp":"v=0\\r\\n\u00e9"}'
            await a.send(answer)
            self.assertEqual(await recv_raw(b), answer)
            for src, dst in ((a, b), (b, a)):
                cand = json.dumps({"type": "candidate", "ice": {
                    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host",
                    "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}})
                await src.send(cand)
                self.assertEqual(await recv_raw(dst), cand)
            # Nothing echoes back to the sender.
            await nothing(a)
            await nothing(b)
            await a.close()
            await b.close()
        arun(go())

    def test_alone_in_room_messages_are_dropped(self):
        async def go():
            a, acc = await register(self.server, "basic-alone")
            self.assertIs(acc["isExistClient"], False)
            await a.send('{"type":"candidate","ice":{"candidate":"x"}}')
            b, acc_b = await register(self.server, "basic-alone")
            self.assertIs(acc_b["isExistClient"], True)
            await nothing(b)
            await a.close()
            await b.close()
        arun(go())

    def test_third_client_gets_full(self):
        async def go():
            a, b, _, _ = await pair(self.server, "basic-full")
            c, rej = await register(self.server, "basic-full")
            self.assertEqual(rej, {"type": "reject", "reason": "full"})
            code, rest = await closed_with(c)
            self.assertEqual((code, rest), (1000, []))
            # The members are undisturbed.
            await a.send('{"type":"offer","sdp":"s"}')
            self.assertEqual(await recv_raw(b), '{"type":"offer","sdp":"s"}')
            await a.close()
            await b.close()
        arun(go())

    def test_leave_sends_bye_and_frees_the_room(self):
        async def go():
            a, b, _, _ = await pair(self.server, "basic-leave")
            await a.close()
            self.assertEqual(await recv_json(b), {"type": "bye"})
            code, rest = await closed_with(b)
            self.assertEqual((code, rest), (1000, []))
            # The room is gone: a newcomer is first again.
            c, acc = await register(self.server, "basic-leave")
            self.assertIs(acc["isExistClient"], False)
            await c.close()
        arun(go())

    def test_client_bye(self):
        async def go():
            a, b, _, _ = await pair(self.server, "basic-bye")
            await b.send('{"type":"bye"}')
            self.assertEqual(await recv_json(a), {"type": "bye"})
            self.assertEqual((await closed_with(b))[0], 1000)
            self.assertEqual((await closed_with(a))[0], 1000)
        arun(go())

    def test_bad_input(self):
        """Each bad input: an error saying what, close 1008, and neither the
        peer nor another room sees any of it."""
        cases = [
            ("not json", None, "invalid JSON"),
            ("[1,2]", None, "JSON object"),
            ('{"roomId":"x"}', None, "JSON object with a string type"),
            ('{"type":7}', None, "string type"),
            ('{"type":"dance"}', None, 'unknown message type "dance"'),
            ('{"type":"offer","sdp":"x"}', None, "register first"),
            ('{"type":"register"}', None, "roomId is missing"),
            ('{"type":"register","roomId":""}', None, "roomId is missing"),
            ('{"type":"register","roomId":5}', None, "roomId must be a string"),
            ('{"type":"register","roomId":"r","clientId":{}}', None, "clientId must be a string"),
            ('{"type":"register","roomId":"%s"}' % ("r" * 256), None, "longer than 255"),
            (b"\x01\x02", None, "binary"),
            ('{"type":"register","roomId":"again"}', "joined", "already registered"),
            ("{broken", "joined", "invalid JSON"),
            ('{"type":"nope"}', "joined", "unknown message type"),
        ]

        async def go():
            x, y, _, _ = await pair(self.server, "bad-bystanders")
            for i, (payload, when, reason) in enumerate(cases):
                with self.subTest(payload=payload, when=when):
                    peer = None
                    if when == "joined":
                        ws, peer, _, _ = await pair(self.server, "bad-%d" % i)
                    else:
                        ws = await connect(self.server)
                    await ws.send(payload)
                    err = await recv_json(ws)
                    self.assertEqual(err["type"], "error")
                    self.assertIn(reason, err["reason"])
                    code, rest = await closed_with(ws)
                    self.assertEqual((code, rest), (1008, []))
                    if peer is not None:
                        # The peer sees the bye of a member gone, not the input.
                        self.assertEqual(await recv_json(peer), {"type": "bye"})
                        await closed_with(peer)
            await nothing(x)
            await nothing(y)
            await x.send('{"type":"offer","sdp":"still"}')
            self.assertEqual(await recv_raw(y), '{"type":"offer","sdp":"still"}')
            await x.close()
            await y.close()
        arun(go())

    def test_oversized_message(self):
        async def go():
            a, b, _, _ = await pair(self.server, "big")
            await a.send('{"type":"offer","sdp":"' + "x" * (1 << 20) + '"}')
            err = await recv_json(a)
            self.assertEqual(err["type"], "error")
            self.assertIn("too big", err["reason"])
            self.assertEqual((await closed_with(a))[0], 1009)
            self.assertEqual(await recv_json(b), {"type": "bye"})
            await closed_with(b)
        arun(go())

    def test_1025_fragments_refused(self):
        async def go():
            a, b, _, _ = await pair(self.server, "frags")
            # websockets sends an iterable as one frame per item and then an
            # empty final frame: n items are n + 1 frames.
            ok = ['{"type":"offer",', '"sdp":"'] + ["y"] * 1020 + ['"}']
            self.assertEqual(len(ok) + 1, 1024)
            await a.send(ok)  # one message in 1,024 frames: fine
            self.assertEqual(await recv_raw(b), "".join(ok))
            bad = ['{"type":"offer",', '"sdp":"'] + ["y"] * 1021 + ['"}']
            self.assertEqual(len(bad) + 1, 1025)
            try:
                await a.send(bad)
            except websockets.ConnectionClosed:
                pass
            code, got = await closed_with(a)
            self.assertEqual(code, 1009)
            self.assertEqual(len(got), 1)
            self.assertEqual(json.loads(got[0])["type"], "error")
            self.assertIn("fragments", json.loads(got[0])["reason"])
            self.assertEqual(await recv_json(b), {"type": "bye"})
            await closed_with(b)
        arun(go())


class AyameOneWorker(tsunagi.OneServerPerClass):
    """One worker: both members sit on the room's home worker, so relays are
    delivered at once. Bursts, many messages a read, keep their order and
    their bytes."""

    server_kwargs = {"threads": 1}
    N = 400

    def test_burst_order(self):
        async def relayed(ws, n):
            got = []
            while len(got) < n:
                raw = await recv_raw(ws)
                if json.loads(raw).get("type") != "ping":
                    got.append(raw)
            return got

        async def go():
            a, b, _, _ = await pair(self.server, "one-worker-burst")
            for src, dst in ((a, b), (b, a)):
                sent = [json.dumps({"type": "candidate", "ice": {"candidate": "c%d" % n,
                                                                  "sdpMid": "0",
                                                                  "sdpMLineIndex": 0}})
                        for n in range(self.N)]
                for text in sent:
                    await src.send(text)
                self.assertEqual(await relayed(dst, self.N), sent)
            await a.close()
            await b.close()
        arun(go())


class AyameKey(tsunagi.OneServerPerClass):
    server_args = ("--signaling-key", "k3y")

    def test_keys(self):
        async def go():
            for fields, ok in (({}, False), ({"signalingKey": "wrong"}, False),
                               ({"key": "wrong"}, False), ({"signalingKey": "k3y"}, True),
                               ({"key": "k3y"}, True),
                               ({"key": "k3y", "signalingKey": "bad"}, False),
                               ({"key": "bad", "signalingKey": "k3y"}, True)):
                with self.subTest(fields=fields):
                    ws, ans = await register(self.server, "key-room-%d" % len(str(fields)), **fields)
                    if ok:
                        self.assertEqual(ans["type"], "accept")
                        await ws.close()
                    else:
                        self.assertEqual(ans, {"type": "reject", "reason": "InvalidSignalingKey"})
                        self.assertEqual((await closed_with(ws))[0], 1000)
        arun(go())


class Hook(http.server.BaseHTTPRequestHandler):
    """The authn webhook answers by the roomId's prefix; both hooks record."""

    calls = []
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Hook.lock:
            Hook.calls.append((self.path, self.headers.get("Content-Type"), body))
        if self.path == "/disconnect":
            return self.answer(200, b"{}")
        room = body["roomId"]
        kind = room.split("-")[0]
        if kind == "allow":
            reply = {"allowed": True, "authzMetadata": {"role": "host", "n": [1, 2]},
                     "iceServers": [{"urls": ["turn:turn.example:3478"], "username": "u",
                                     "credential": "c"}]}
        elif kind == "plain":
            reply = {"allowed": True}
        elif kind == "deny":
            reply = {"allowed": False, "reason": "not today"}
        elif kind == "denynoreason":
            reply = {"allowed": False}
        elif kind == "noallowed":
            reply = {"reason": "whatever", "iceServers": []}
        elif kind == "garbage":
            return self.answer(200, b"<html>not json")
        elif kind == "status":
            return self.answer(403, b'{"allowed":true}')
        elif kind == "slow":
            time.sleep(2.5)
            reply = {"allowed": True}
        else:
            reply = {"allowed": False, "reason": "unknown test room"}
        self.answer(200, json.dumps(reply).encode())

    def answer(self, status, body):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class AyameWebhooks(tsunagi.OneServerPerClass):
    @classmethod
    def setUpClass(cls):
        cls.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        cls.httpd.daemon_threads = True
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        base = "http://127.0.0.1:%d" % cls.httpd.server_address[1]
        cls.server_args = ("--authn-webhook-url", base + "/authn",
                           "--disconnect-webhook-url", base + "/disconnect",
                           "--webhook-timeout", "1")
        try:
            super().setUpClass()
        except Exception:
            cls.httpd.shutdown()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.httpd.shutdown()
            cls.httpd.server_close()

    def calls(self, path, room):
        with Hook.lock:
            return [(ct, b) for p, ct, b in Hook.calls if p == path and b.get("roomId") == room]

    def wait_calls(self, path, room, n=1, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.calls(path, room)
            if len(got) >= n:
                return got
            time.sleep(0.02)
        self.fail("no %s webhook for %s" % (path, room))

    def test_allow_fields_ice_and_authz(self):
        async def go():
            a, acc = await register(self.server, "allow-1", clientId="alice", signalingKey="sk",
                                    authnMetadata={"token": "t", "list": [1]},
                                    ayameClient="test/1.0", libwebrtc="m120",
                                    environment="python", standalone=False)
            self.assertEqual(acc["type"], "accept")
            self.assertEqual(acc["authzMetadata"], {"role": "host", "n": [1, 2]})
            self.assertEqual(acc["iceServers"], [{"urls": ["turn:turn.example:3478"],
                                                  "username": "u", "credential": "c"}])
            [(ctype, body)] = self.calls("/authn", "allow-1")
            self.assertEqual(ctype, "application/json")
            self.assertEqual(body, {"roomId": "allow-1", "clientId": "alice",
                                    "connectionId": acc["connectionId"], "signalingKey": "sk",
                                    "authnMetadata": {"token": "t", "list": [1]},
                                    "ayameClient": "test/1.0", "libwebrtc": "m120",
                                    "environment": "python"})
            self.assertEqual(self.calls("/disconnect", "allow-1"), [])
            await a.close()
            [(_, gone)] = self.wait_calls("/disconnect", "allow-1")
            self.assertEqual(gone, {"roomId": "allow-1", "clientId": "alice",
                                    "connectionId": acc["connectionId"]})
        arun(go())

    def test_default_client_id_and_own_ice_servers(self):
        async def go():
            a, acc = await register(self.server, "plain-1")
            self.assertEqual(acc["type"], "accept")
            self.assertNotIn("authzMetadata", acc)
            self.assertTrue(any(u.startswith("turn:") for s in acc["iceServers"] for u in s["urls"]))
            [(_, body)] = self.calls("/authn", "plain-1")
            self.assertEqual(body["clientId"], acc["connectionId"])
            self.assertNotIn("signalingKey", body)
            self.assertNotIn("authnMetadata", body)
            await a.close()
        arun(go())

    def test_rejections(self):
        async def go():
            for room, reason in (("deny-1", "not today"), ("denynoreason-1", "InternalServerError"),
                                 ("noallowed-1", "InternalServerError"),
                                 ("garbage-1", "InternalServerError"),
                                 ("status-1", "InternalServerError"),
                                 ("slow-1", "InternalServerError")):
                with self.subTest(room=room):
                    t0 = time.monotonic()
                    ws, ans = await register(self.server, room)
                    self.assertEqual(ans, {"type": "reject", "reason": reason})
                    self.assertEqual((await closed_with(ws))[0], 1000)
                    if room.startswith("slow"):
                        self.assertLess(time.monotonic() - t0, 2.4)  # --webhook-timeout 1
                    self.assertEqual(len(self.calls("/authn", room)), 1)
            # Rejected clients were never accepted: no disconnect webhook.
            time.sleep(0.3)
            self.assertEqual(self.calls("/disconnect", "deny-1"), [])
        arun(go())

    def test_close_while_webhook_runs(self):
        async def go():
            ws = await connect(self.server)
            await ws.send('{"type":"register","roomId":"slow-2"}')
            self.wait_calls("/authn", "slow-2")
            await ws.close()
            # Meanwhile the worker goes on serving.
            a, acc = await register(self.server, "plain-2")
            self.assertEqual(acc["type"], "accept")
            await a.close()
        arun(go())
        self.assertEqual(self.calls("/disconnect", "slow-2"), [])

    def test_webhook_does_not_block_the_worker(self):
        async def go():
            slow = [await connect(self.server) for _ in range(4)]
            for i, ws in enumerate(slow):
                await ws.send('{"type":"register","roomId":"slow-b%d"}' % i)
            t0 = time.monotonic()
            a, b, _, _ = await pair(self.server, "plain-fast")
            self.assertLess(time.monotonic() - t0, 0.8)
            for ws in slow:
                self.assertEqual((await recv_json(ws))["reason"], "InternalServerError")
            await a.close()
            await b.close()
        arun(go())


class AyamePing(tsunagi.OneServerPerClass):
    server_args = ("--signaling-ping-interval", "1", "--signaling-ping-timeout", "2")

    def test_ping_and_pong_keeps_alive(self):
        async def go():
            a, _ = await register(self.server, "ping-1")
            t0 = time.monotonic()
            for _ in range(4):
                self.assertEqual(await recv_json(a, timeout=2), {"type": "ping"})
                await a.send('{"type":"pong"}')
            self.assertGreater(time.monotonic() - t0, 3)
            self.assertEqual(a.close_code, None)
            await a.close()
        arun(go())

    def test_no_pong_closes(self):
        async def go():
            a, b, _, _ = await pair(self.server, "ping-2")
            t0 = time.monotonic()

            async def keep_ponging():
                # b answers every ping; returns the first other message.
                while True:
                    try:
                        msg = await recv_json(b, timeout=5)
                    except websockets.ConnectionClosed:
                        return None
                    if msg["type"] != "ping":
                        return msg
                    try:
                        await b.send('{"type":"pong"}')
                    except websockets.ConnectionClosed:
                        pass  # closing already: what was queued is still read
            waiter = asyncio.ensure_future(keep_ponging())
            code, got = await closed_with(a, timeout=5)
            took = time.monotonic() - t0
            self.assertEqual(code, 1000)
            self.assertTrue(all(json.loads(m)["type"] == "ping" for m in got), got)
            self.assertGreater(took, 1.5)
            self.assertLess(took, 4.5)
            self.assertEqual(await waiter, {"type": "bye"})
        arun(go())


class AyameRateLimit(tsunagi.OneServerPerClass):
    """--signaling-rate 20 --signaling-burst 10: a burst past it gets an error
    and Close 1008, the peer hears only bye; a steady pace under the rate
    passes; SIGHUP changes the limit for clients already connected. Each
    client closed for the rate counts once in /metrics, under ayame."""

    RATE, BURST = 20, 10
    server_args = ("--signaling-rate", str(RATE), "--signaling-burst", str(BURST))

    def test_burst_past_the_limit_closes(self):
        ayame, peerjs = rate_limited(self.server)

        async def go():
            a, b, _, _ = await pair(self.server, "rate-burst")
            # register took a token; 40 candidates back to back are far past
            # the remaining 9 (plus 20 a second).
            t0 = time.monotonic()
            for i in range(40):
                try:
                    await a.send(json.dumps({"type": "candidate", "ice": {"n": i}}))
                except websockets.ConnectionClosed:
                    break
            sent_in = time.monotonic() - t0
            code, got = await closed_with(a)
            self.assertEqual(code, 1008)
            self.assertEqual(a.close_reason, "rate limit exceeded")
            self.assertEqual([json.loads(m) for m in got],
                             [{"type": "error", "reason": "rate limit exceeded"}])
            # b saw the candidates within the budget, in order, then bye.
            msgs = []
            while not msgs or msgs[-1]["type"] != "bye":
                msgs.append(await recv_json(b))
            cands = [m["ice"]["n"] for m in msgs if m["type"] == "candidate"]
            self.assertEqual(msgs[-1], {"type": "bye"})
            self.assertEqual(cands, list(range(len(cands))))
            self.assertGreaterEqual(len(cands), self.BURST - 1)
            self.assertLessEqual(len(cands), self.BURST - 1 + int(sent_in * self.RATE) + 1)
            await b.close()
        arun(go())
        self.assertRegex(self.server.log(), r"ayame: rate limit exceeded")
        # a only: the messages it sent after the first refused one, and b,
        # count nothing.
        self.assertEqual(rate_limited(self.server), (ayame + 1, peerjs))

    def test_pongs_count_too(self):
        ayame, peerjs = rate_limited(self.server)

        async def go():
            a, _ = await register(self.server, "rate-pong")
            for _ in range(40):
                try:
                    await a.send('{"type":"pong"}')
                except websockets.ConnectionClosed:
                    break
            code, got = await closed_with(a)
            self.assertEqual(code, 1008)
            self.assertIn({"type": "error", "reason": "rate limit exceeded"},
                          [json.loads(m) for m in got])
        arun(go())
        self.assertEqual(rate_limited(self.server), (ayame + 1, peerjs))

    def test_steady_pace_under_the_rate_passes(self):
        before = rate_limited(self.server)

        async def go():
            a, b, _, _ = await pair(self.server, "rate-steady")
            # 3 * BURST messages at half the rate: never more than the burst.
            for i in range(3 * self.BURST):
                await a.send(json.dumps({"type": "candidate", "ice": {"n": i}}))
                self.assertEqual((await recv_json(b))["ice"], {"n": i})
                await asyncio.sleep(2.0 / self.RATE)
            # Still open: the pair goes on.
            await b.send('{"type":"answer","sdp":"x"}')
            self.assertEqual(await recv_json(a), {"type": "answer", "sdp": "x"})
            await a.close()
            await b.close()
        arun(go())
        self.assertEqual(rate_limited(self.server), before)


class AyameRateReload(unittest.TestCase):
    """The limit is read per message: SIGHUP applies to connected clients."""

    def test_reload_changes_the_limit(self):
        tmp = tempfile.mkdtemp(prefix="tsunagi-rate-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "tsunagi.conf")
        with open(path, "w") as f:
            f.write("signaling-rate = 0\n")
        server = tsunagi.Server("--config", path).start()
        self.addCleanup(server.cleanup)

        async def go():
            a, b, _, _ = await pair(server, "rate-reload")
            for i in range(200):  # unlimited
                await a.send(json.dumps({"type": "candidate", "ice": {"n": i}}))
            for i in range(200):
                self.assertEqual((await recv_json(b))["ice"], {"n": i})
            self.assertEqual(rate_limited(server), (0, 0))  # 0: unlimited
            mark = len(server.log())
            with open(path, "w") as f:
                f.write("signaling-rate = 1\nsignaling-burst = 5\n")
            server.signal(signal.SIGHUP)
            server.wait_for_log("configuration reloaded", timeout=5, after=mark)
            # The bucket is cut down to the new burst at once.
            for i in range(10):
                try:
                    await a.send(json.dumps({"type": "candidate", "ice": {"n": i}}))
                except websockets.ConnectionClosed:
                    break
            code, got = await closed_with(a)
            self.assertEqual(code, 1008)
            self.assertIn({"type": "error", "reason": "rate limit exceeded"},
                          [json.loads(m) for m in got])
            await b.close()
        arun(go())
        self.assertEqual(rate_limited(server), (1, 0))
        server.stop()


class AyameShutdown(unittest.TestCase):
    """SIGTERM: joined clients hear bye, then Close 1001; the server exits 0."""

    def test_sigterm_says_bye_then_going_away(self):
        server = tsunagi.Server("--static-auth-secret", SECRET).start()
        self.addCleanup(server.cleanup)

        async def go():
            a, b, _, _ = await pair(server, "shutdown")
            lone, acc = await register(server, "shutdown-alone")
            self.assertEqual(acc["type"], "accept")
            waiting = await connect(server)  # never registers: no bye for it
            server.signal(signal.SIGTERM)
            for ws in (a, b, lone):
                code, got = await closed_with(ws)
                msgs = [json.loads(m) for m in got]
                self.assertIn({"type": "bye"}, msgs)
                self.assertEqual(code, 1001)
            code, got = await closed_with(waiting)
            self.assertEqual(code, 1001)
            self.assertNotIn("bye", "".join(got))
        arun(go())
        self.assertEqual(server.wait(10), 0)
        server.assert_clean_exit()


class AyameCrossWorker(tsunagi.OneServerPerClass):
    server_kwargs = {"threads": 4}
    PAIRS = 40

    def test_many_rooms_across_workers(self):
        async def one(i):
            room = "xw-%d" % i
            a, b, acc_a, acc_b = await pair(self.server, room)
            self.assertIs(acc_a["isExistClient"], False)
            self.assertIs(acc_b["isExistClient"], True)
            offer = json.dumps({"type": "offer", "sdp": "offer %d" % i})
            await b.send(offer)
            self.assertEqual(await recv_raw(a, 10), offer)
            answer = json.dumps({"type": "answer", "sdp": "answer %d" % i})
            await a.send(answer)
            self.assertEqual(await recv_raw(b, 10), answer)
            for k in range(5):
                cand = json.dumps({"type": "candidate", "ice": {"candidate": "c%d-%d" % (i, k)}})
                await a.send(cand)
                await b.send(cand)
                self.assertEqual(await recv_raw(b, 10), cand)
                self.assertEqual(await recv_raw(a, 10), cand)
            await a.close()
            self.assertEqual(await recv_json(b, 10), {"type": "bye"})
            await closed_with(b)

        async def go():
            await asyncio.gather(*(one(i) for i in range(self.PAIRS)))
        arun(go(), timeout=120)
        # The log names each member's connection (worker.sequence): members
        # of one room on different workers, and rooms homed on each worker.
        workers = {}
        for m in re.finditer(r"conn=(\d+)\.\d+ ayame: register room=(xw-\d+)", self.server.log()):
            workers.setdefault(m.group(2), []).append(int(m.group(1)))
        self.assertEqual(len(workers), self.PAIRS)
        split = [r for r, ws in workers.items() if len(set(ws)) == 2]
        self.assertGreater(len(split), 0, workers)
        self.assertGreater(len({w for ws in workers.values() for w in ws}), 1)


if __name__ == "__main__":
    unittest.main()
