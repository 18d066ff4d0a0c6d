"""The PeerJS server protocol under /peerjs, against PeerServer's behaviour.

HTTP with http.client (the routes the official peerjs 1.5.5 client requests:
/peerjs/KEY/id?ts=..., /peerjs/KEY/peers), the WebSocket at
/peerjs/peerjs?key=K&id=I&token=T&version=V with Python's websockets library:
OPEN, relay with src rewritten, messages waiting for a peer that is not yet
connected, EXPIRE, the alive timeout, takeover and ID-TAKEN, the concurrent
limit, bad input, and relay between clients on different workers.
"""

import asyncio
import json
import os
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402
from tsunagi import ServerTestCase  # noqa: E402

import websockets  # noqa: E402

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
BANNER = {"name": "PeerJS Server",
          "description": "A server side element to broker connections between PeerJS clients.",
          "website": "https://peerjs.com/"}


def arun(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Client:
    """A raw PeerJS client: the URL the official client builds, JSON messages."""

    def __init__(self, server, id, token="tok", key="peerjs", query=None, path="/peerjs/"):
        if query is None:
            query = "key=%s&id=%s&token=%s&version=1.5.5" % (
                urllib.parse.quote(key), urllib.parse.quote(id), urllib.parse.quote(token))
        # The client's URL: PATH + "peerjs?key=..." (PATH "/peerjs/" or the default "/").
        self.url = "ws://127.0.0.1:%d%speerjs?%s" % (server.port, path, query)
        self.id = id
        self.ws = None

    async def connect(self, expect="OPEN"):
        self.ws = await websockets.connect(self.url, ping_interval=None, max_size=None)
        if expect is not None:
            msg = await self.recv()
            assert msg["type"] == expect, msg
            return msg
        return None

    async def send(self, **msg):
        await self.ws.send(json.dumps(msg))

    async def recv(self, timeout=5):
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def silent(self, seconds):
        """Nothing arrives for seconds."""
        try:
            msg = await asyncio.wait_for(self.ws.recv(), seconds)
        except asyncio.TimeoutError:
            return True
        raise AssertionError("unexpected message: %r" % msg)

    async def closed(self, timeout=5):
        """Wait for the server's close; its code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed:
            pass
        return self.ws.close_code

    async def close(self):
        if self.ws is not None:
            await self.ws.close()


async def connected(server, *ids, token="tok"):
    clients = [Client(server, i, token) for i in ids]
    for c in clients:
        await c.connect()
    return clients


class Http(ServerTestCase):
    """The HTTP side with the defaults: banner, ids, CORS, no discovery."""

    def test_banner(self):
        for path in ("/peerjs", "/peerjs/"):
            status, headers, body = self.server.request("GET", path)
            self.assertEqual(status, 200, path)
            self.assertTrue(headers["Content-Type"].startswith("application/json"))
            self.assertEqual(json.loads(body), BANNER)

    def test_fresh_ids(self):
        ids = set()
        # The official client: PATH + KEY + "/id?ts=...&version=1.5.5".
        for i in range(20):
            status, headers, body = self.server.request(
                "GET", "/peerjs/peerjs/id?ts=%d0.123&version=1.5.5" % i)
            self.assertEqual(status, 200)
            self.assertTrue(headers["Content-Type"].startswith("text/html"))
            self.assertRegex(body.decode(), UUID_RE)
            ids.add(body)
        self.assertEqual(len(ids), 20)
        # A client left with the default path "/" (and key) asks /peerjs/id.
        status, _, body = self.server.request("GET", "/peerjs/id?ts=10.5&version=1.5.5")
        self.assertEqual(status, 200)
        self.assertRegex(body.decode(), UUID_RE)
        # As PeerServer: any key gets an id (the key is checked on the socket).
        status, _, body = self.server.request("GET", "/peerjs/otherkey/id")
        self.assertEqual(status, 200)
        self.assertRegex(body.decode(), UUID_RE)

    def test_cors(self):
        status, headers, _ = self.server.request(
            "GET", "/peerjs/peerjs/id", headers={"Origin": "http://app.example"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "http://app.example")
        self.assertIn("Origin", headers["Vary"])
        status, headers, _ = self.server.request("GET", "/peerjs/peerjs/id")
        self.assertIsNone(headers["Access-Control-Allow-Origin"])
        status, headers, body = self.server.request(
            "OPTIONS", "/peerjs/peerjs/id",
            headers={"Origin": "http://app.example", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "x-one"})
        self.assertEqual(status, 204)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "http://app.example")
        self.assertIn("GET", headers["Access-Control-Allow-Methods"])
        self.assertEqual(headers["Access-Control-Allow-Headers"], "x-one")

    def test_peers_needs_discovery(self):
        status, _, body = self.server.request("GET", "/peerjs/peerjs/peers")
        self.assertEqual((status, body), (401, b"Unauthorized"))

    def test_not_ours(self):
        for path in ("/peerjsx", "/peerjs/peerjs/nothing", "/peerjs/a/b/c", "/peerjs//id"):
            status, _, _ = self.server.request("GET", path)
            self.assertEqual(status, 404, path)
        # The socket path without an upgrade is no page either.
        status, _, _ = self.server.request("GET", "/peerjs/peerjs?key=peerjs&id=a&token=b")
        self.assertEqual(status, 404)
        status, _, _ = self.server.request("POST", "/peerjs/peerjs/id", body=b"x")
        self.assertEqual(status, 404)


class Discovery(ServerTestCase):
    """--peerjs-allow-discovery and a key of our own."""

    server_args = ("--peerjs-allow-discovery", "--peerjs-key", "s3cret")

    def peers(self, key="s3cret"):
        status, headers, body = self.server.request("GET", "/peerjs/%s/peers" % key)
        return status, body

    def test_peers_list(self):
        async def go():
            status, body = self.peers()
            self.assertEqual((status, json.loads(body)), (200, []))
            a = Client(self.server, "alice", key="s3cret")
            b = Client(self.server, "bob", key="s3cret")
            await a.connect()
            await b.connect()
            status, body = self.peers()
            self.assertEqual(status, 200)
            self.assertEqual(sorted(json.loads(body)), ["alice", "bob"])
            self.assertEqual(self.peers("peerjs")[0], 401)
            await a.close()
            for _ in range(100):
                if json.loads(self.peers()[1]) == ["bob"]:
                    break
                await asyncio.sleep(0.02)
            self.assertEqual(json.loads(self.peers()[1]), ["bob"])
            await b.close()
        arun(go())

    def test_wrong_key(self):
        async def go():
            c = Client(self.server, "mallory", key="peerjs")
            msg = await c.connect(expect="ERROR")
            self.assertEqual(msg["payload"]["msg"], "Invalid key provided")
            self.assertEqual(await c.closed(), 1008)
            # The right key still works, for the same id.
            c = Client(self.server, "mallory", key="s3cret")
            await c.connect()
            await c.close()
        arun(go())


class Relay(ServerTestCase):
    """Relay, waiting messages and EXPIRE, takeover, bad input; 4 workers."""

    server_args = ("--peerjs-expire-timeout", "1")
    server_kwargs = {"threads": 4}

    def test_relay_rewrites_src(self):
        async def go():
            a, b = await connected(self.server, "ra", "rb")
            for kind in ("OFFER", "ANSWER", "CANDIDATE"):
                payload = {"sdp": "v=0 " + kind, "connectionId": "dc_1", "n": [1, 2.5, None]}
                await a.send(type=kind, src="forged", dst="rb", payload=payload, extra=1)
                self.assertEqual(await b.recv(), {"type": kind, "src": "ra", "dst": "rb",
                                                  "payload": payload})
            await b.send(type="ANSWER", dst="ra", payload={"sdp": "x"})
            self.assertEqual(await a.recv(),
                             {"type": "ANSWER", "src": "rb", "dst": "ra", "payload": {"sdp": "x"}})
            # LEAVE is forwarded too (and has no payload here).
            await a.send(type="LEAVE", dst="rb")
            self.assertEqual(await b.recv(), {"type": "LEAVE", "src": "ra", "dst": "rb"})
            await a.close()
            await b.close()
        arun(go())

    def test_waits_for_peer(self):
        async def go():
            (a,) = await connected(self.server, "wa")
            await a.send(type="OFFER", dst="wb", payload={"sdp": "early"})
            await a.send(type="CANDIDATE", dst="wb", payload={"candidate": "c1"})
            # LEAVE for an absent peer is not kept.
            await a.send(type="LEAVE", dst="wb")
            await asyncio.sleep(0.3)
            (b,) = await connected(self.server, "wb")
            self.assertEqual(await b.recv(), {"type": "OFFER", "src": "wa", "dst": "wb",
                                              "payload": {"sdp": "early"}})
            self.assertEqual(await b.recv(), {"type": "CANDIDATE", "src": "wa", "dst": "wb",
                                              "payload": {"candidate": "c1"}})
            await b.silent(0.3)
            await a.silent(1.5)  # delivered: no EXPIRE later
            await a.close()
            await b.close()
        arun(go())

    def test_expire(self):
        async def go():
            (a,) = await connected(self.server, "ea")
            t0 = time.monotonic()
            await a.send(type="OFFER", dst="nobody", payload={"sdp": "x"})
            await a.send(type="CANDIDATE", dst="nobody", payload={"candidate": "y"})
            msg = await a.recv(timeout=4)
            took = time.monotonic() - t0
            # One EXPIRE per sender, from the peer that never came.
            self.assertEqual(msg, {"type": "EXPIRE", "src": "nobody", "dst": "ea"})
            self.assertGreaterEqual(took, 0.9)
            await a.silent(0.5)
            # Too late: the peer that connects now gets nothing.
            (n,) = await connected(self.server, "nobody")
            await n.silent(0.3)
            await a.close()
            await n.close()
        arun(go())

    def test_takeover_and_id_taken(self):
        async def go():
            (old,) = await connected(self.server, "tk", token="T1")
            thief = Client(self.server, "tk", token="other")
            msg = await thief.connect(expect="ID-TAKEN")
            self.assertEqual(msg["payload"]["msg"], "ID is taken")
            self.assertEqual(await thief.closed(), 1008)
            # The owner was not disturbed.
            (peer,) = await connected(self.server, "tk-peer")
            await peer.send(type="OFFER", dst="tk", payload=1)
            self.assertEqual((await old.recv())["payload"], 1)
            # The same token takes over: the old socket is closed.
            new = Client(self.server, "tk", token="T1")
            await new.connect()
            self.assertEqual(await old.closed(), 1000)
            await peer.send(type="OFFER", dst="tk", payload=2)
            self.assertEqual(await new.recv(), {"type": "OFFER", "src": "tk-peer", "dst": "tk",
                                                "payload": 2})
            await new.send(type="ANSWER", dst="tk-peer", payload=3)
            self.assertEqual((await peer.recv())["src"], "tk")
            await new.close()
            await peer.close()
        arun(go())

    def test_missing_parameters(self):
        async def go():
            for query in ("key=peerjs&id=x", "key=peerjs&token=t", "id=x&token=t",
                          "key=peerjs&id=&token=t", "key=peerjs&id=%01&token=t",
                          "key=peerjs&id=%s&token=t" % ("i" * 300)):
                c = Client(self.server, None, query=query)
                msg = await c.connect(expect="ERROR")
                self.assertEqual(msg["payload"]["msg"],
                                 "No id, token, or key supplied to websocket server", query)
                self.assertEqual(await c.closed(), 1008)
            # Escapes are decoded as URLSearchParams does.
            c = Client(self.server, None, query="key=peerjs&id=sp%20ace+d&token=t")
            await c.connect()
            (o,) = await connected(self.server, "sp-other")
            await o.send(type="OFFER", dst="sp ace d", payload=0)
            self.assertEqual((await c.recv())["dst"], "sp ace d")
            await c.close()
            await o.close()
        arun(go())

    def test_bad_input(self):
        async def go():
            a, b = await connected(self.server, "ba", "bb")

            async def fatal(data, code=1008, text=True):
                c = Client(self.server, "bad")
                await c.connect()
                await c.ws.send(data)
                if code in (1008,):
                    msg = await c.recv()
                    self.assertEqual(msg["type"], "ERROR")
                self.assertEqual(await c.closed(), code, data[:40])

            await fatal("not json")
            await fatal("[1,2]")
            await fatal('{"type": 5, "dst": "bb"}')
            await fatal('{"dst": "bb"}')
            await fatal(json.dumps({"type": "OFFER", "dst": "bb", "payload": "x" * 70000}), 1009)
            await fatal(b"\x00binary", 1003)
            # Not fatal: PeerServer would ignore these; the sender hears ERROR.
            await a.send(type="DANCE", dst="bb")
            self.assertEqual((await a.recv())["payload"]["msg"], "Unknown message type")
            await a.send(type="OFFER", payload={})
            self.assertEqual((await a.recv())["type"], "ERROR")
            await a.send(type="OFFER", dst=["bb"], payload={})
            self.assertEqual((await a.recv())["type"], "ERROR")
            # The others never noticed, and a still works.
            await a.send(type="HEARTBEAT")
            await a.send(type="OFFER", dst="bb", payload="still")
            self.assertEqual(await b.recv(), {"type": "OFFER", "src": "ba", "dst": "bb",
                                              "payload": "still"})
            await b.silent(0.2)
            await a.close()
            await b.close()
        arun(go())
        self.assertIn("peerjs id=bad: Invalid message", self.server.log())

    def test_default_path_client(self):
        async def go():
            a = Client(self.server, "dp-a", path="/")
            await a.connect()
            (b,) = await connected(self.server, "dp-b")
            await a.send(type="OFFER", dst="dp-b", payload=7)
            self.assertEqual(await b.recv(), {"type": "OFFER", "src": "dp-a", "dst": "dp-b",
                                              "payload": 7})
            await a.close()
            await b.close()
        arun(go())

    def test_sent_before_open_is_kept(self):
        async def go():
            (b,) = await connected(self.server, "eb")
            a = Client(self.server, "ea-early")
            a.ws = await websockets.connect(a.url, ping_interval=None)
            await a.send(type="OFFER", dst="eb", payload="first")
            self.assertEqual((await a.recv())["type"], "OPEN")
            self.assertEqual(await b.recv(), {"type": "OFFER", "src": "ea-early", "dst": "eb",
                                              "payload": "first"})
            await a.close()
            await b.close()
        arun(go())


class Alive(ServerTestCase):
    """--peerjs-alive-timeout 2: HEARTBEAT keeps a client, silence drops it."""

    server_args = ("--peerjs-alive-timeout", "2")

    def test_heartbeat_and_silence(self):
        async def go():
            beating, quiet = await connected(self.server, "beat", "quiet")
            t0 = time.monotonic()
            code = None
            closer = asyncio.ensure_future(quiet.closed(timeout=6))
            for _ in range(8):  # 4 s of heartbeats every 0.5 s
                await beating.send(type="HEARTBEAT")
                await asyncio.sleep(0.5)
                if closer.done() and code is None:
                    code = closer.result()
                    took = time.monotonic() - t0
            if code is None:
                code = await closer
                took = time.monotonic() - t0
            self.assertEqual(code, 1000)
            self.assertGreaterEqual(took, 1.9)
            self.assertLess(took, 3.9)
            # The beating client is still there and reachable.
            (other,) = await connected(self.server, "other")
            await other.send(type="OFFER", dst="beat", payload=1)
            self.assertEqual((await beating.recv())["src"], "other")
            # The dropped id is free again, whatever the token.
            (again,) = await connected(self.server, "quiet", token="new")
            await again.close()
            await other.close()
            await beating.close()
        arun(go())
        self.assertIn("peerjs id=quiet: silent past --peerjs-alive-timeout", self.server.log())


class Limit(ServerTestCase):
    """--peerjs-concurrent-limit 3, counted over both workers."""

    server_args = ("--peerjs-concurrent-limit", "3")

    def test_limit(self):
        async def go():
            clients = await connected(self.server, "l1", "l2", "l3")
            extra = Client(self.server, "l4")
            msg = await extra.connect(expect="ERROR")
            self.assertEqual(msg["payload"]["msg"], "Server has reached its concurrent user limit")
            self.assertEqual(await extra.closed(), 1008)
            # A takeover is no new client.
            again = Client(self.server, "l3")
            await again.connect()
            self.assertEqual(await clients[2].closed(), 1000)
            await clients[0].close()
            for _ in range(100):
                late = Client(self.server, "l5")
                msg = await late.connect(expect=None) or await late.recv()
                if msg["type"] == "OPEN":
                    break
                await late.closed()
                await asyncio.sleep(0.02)
            self.assertEqual(msg["type"], "OPEN")
            for c in (clients[1], again, late):
                await c.close()
        arun(go())


class RateLimit(ServerTestCase):
    """--signaling-rate 20 --signaling-burst 10: past it an ERROR, Close 1008,
    and the id is free again; HEARTBEATs count; a steady pace passes. Each
    client closed for the rate counts once in /metrics, under peerjs."""

    RATE, BURST = 20, 10
    server_args = ("--signaling-rate", str(RATE), "--signaling-burst", str(BURST))
    RATE_LIMITED = 'tsunagi_signaling_rate_limited_total{protocol="%s"}'

    def rate_limited(self):
        """/metrics: clients closed over --signaling-rate, (peerjs, ayame)."""
        m = self.server.metrics()
        return m[self.RATE_LIMITED % "peerjs"], m[self.RATE_LIMITED % "ayame"]

    async def flood(self, client, n, **msg):
        t0 = time.monotonic()
        for i in range(n):
            try:
                await client.send(n=i, **msg)
            except websockets.ConnectionClosed:
                break
        return time.monotonic() - t0

    async def refused(self, client):
        """The ERROR the server sent (after any relayed messages), and the close code."""
        msgs = []
        try:
            while True:
                msgs.append(await client.recv())
        except websockets.ConnectionClosed:
            pass
        return [m for m in msgs if m["type"] == "ERROR"], client.ws.close_code

    def test_burst_past_the_limit_closes(self):
        peerjs, ayame = self.rate_limited()

        async def go():
            a, b = await connected(self.server, "rl-a", "rl-b")
            took = await self.flood(a, 40, type="CANDIDATE", dst="rl-b")
            errors, code = await self.refused(a)
            self.assertEqual(errors, [{"type": "ERROR", "payload": {
                "msg": "Rate limit exceeded: too many messages"}}])
            self.assertEqual(code, 1008)
            got = []
            while True:
                try:
                    got.append(await b.recv(timeout=0.5))
                except asyncio.TimeoutError:
                    break
            self.assertTrue(all(m["type"] == "CANDIDATE" and m["src"] == "rl-a" for m in got), got)
            self.assertGreaterEqual(len(got), self.BURST)
            self.assertLessEqual(len(got), self.BURST + int(took * self.RATE) + 1)
            # The refused client's id is free again, for any token.
            (again,) = await connected(self.server, "rl-a", token="other")
            await again.close()
            await b.close()
        arun(go())
        self.assertIn("peerjs id=rl-a: past --signaling-rate: closed", self.server.log())
        # rl-a once, however many it sent past the limit; rl-b not at all.
        self.assertEqual(self.rate_limited(), (peerjs + 1, ayame))

    def test_heartbeats_count_too(self):
        peerjs, ayame = self.rate_limited()

        async def go():
            (a,) = await connected(self.server, "rl-beat")
            await self.flood(a, 40, type="HEARTBEAT")
            errors, code = await self.refused(a)
            self.assertEqual(len(errors), 1)
            self.assertEqual(code, 1008)
        arun(go())
        self.assertEqual(self.rate_limited(), (peerjs + 1, ayame))

    def test_steady_pace_under_the_rate_passes(self):
        before = self.rate_limited()

        async def go():
            a, b = await connected(self.server, "rl-s1", "rl-s2")
            for i in range(3 * self.BURST):
                await a.send(type="CANDIDATE", dst="rl-s2", payload={"n": i})
                self.assertEqual((await b.recv())["payload"], {"n": i})
                await asyncio.sleep(2.0 / self.RATE)
            await b.send(type="ANSWER", dst="rl-s1", payload={"sdp": "x"})
            self.assertEqual((await a.recv())["payload"], {"sdp": "x"})
            await a.close()
            await b.close()
        arun(go())
        self.assertEqual(self.rate_limited(), before)


class OneWorker(ServerTestCase):
    """One worker: dst's home and dst's socket are the sender's worker, so
    relays are delivered at once; they must keep their order, also while the
    messages that waited for dst are being flushed to it."""

    server_kwargs = {"threads": 1}
    N = 400

    def test_order_across_queue_flush(self):
        async def go():
            (a,) = await connected(self.server, "oa")

            async def stream():
                for n in range(self.N):
                    await a.send(type="CANDIDATE", dst="ob", payload=n)
                    if n % 20 == 19:
                        await asyncio.sleep(0.005)

            sender = asyncio.ensure_future(stream())
            await asyncio.sleep(0.03)  # some wait at the home, the rest go straight
            (b,) = await connected(self.server, "ob")
            got = [(await b.recv())["payload"] for _ in range(self.N)]
            await sender
            self.assertEqual(got, list(range(self.N)))
            # And back, in bursts much faster than one message per read.
            for n in range(self.N):
                await b.send(type="ANSWER", dst="oa", payload=n)
            got = [(await a.recv())["payload"] for _ in range(self.N)]
            self.assertEqual(got, list(range(self.N)))
            await a.close()
            await b.close()
        arun(go())


class CrossWorker(ServerTestCase):
    """Many pairs over 4 workers: every message reaches its peer, whichever
    worker each side landed on."""

    server_kwargs = {"threads": 4}
    PAIRS = 40

    def test_many_pairs(self):
        async def pair(i):
            a, b = await connected(self.server, "x%d-a" % i, "x%d-b" % i)
            await a.send(type="OFFER", dst=b.id, payload={"i": i})
            self.assertEqual(await b.recv(), {"type": "OFFER", "src": a.id, "dst": b.id,
                                              "payload": {"i": i}})
            await b.send(type="ANSWER", dst=a.id, payload={"i": -i})
            self.assertEqual((await a.recv())["payload"], {"i": -i})
            for n in range(5):
                await a.send(type="CANDIDATE", src=b.id, dst=b.id, payload=n)
            for n in range(5):
                self.assertEqual(await b.recv(), {"type": "CANDIDATE", "src": a.id,
                                                  "dst": b.id, "payload": n})
            await a.close()
            await b.close()

        async def go():
            await asyncio.gather(*(pair(i) for i in range(self.PAIRS)))
        arun(go(), timeout=90)
        workers = {}
        for m in re.finditer(r"conn=(\d+)\.\d+ peer=\S+ peerjs id=(x\d+-[ab]): registered",
                             self.server.log()):
            workers[m.group(2)] = int(m.group(1))
        self.assertEqual(len(workers), 2 * self.PAIRS)
        crossed = sum(workers["x%d-a" % i] != workers["x%d-b" % i] for i in range(self.PAIRS))
        self.assertGreater(crossed, 0)
        self.assertGreater(len(set(workers.values())), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
