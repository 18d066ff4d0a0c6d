"""The soak test's client workloads: WebSocket /echo churn, Ayame rooms,
PeerJS clients and TURN allocations (garbage and half-open connections are in
garbage.py).

Every workload is a class with a name, a number of concurrent workers and an
async `once()` that runs one bounded round and raises on anything the server
did that the round did not provoke. The driver (soak.py) runs the workers in
a loop until the load ends, pacing each one, and records every exception as
an error with its description. Rounds count what they did in ctx.stats.
"""

import asyncio
import json
import os
import random
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "turn"))

import websockets  # noqa: E402

import stunclient as sc  # noqa: E402  (path set just above)

RECV_TIMEOUT = 15  # seconds: generous, a loaded 2-core machine under ASan is slow


class SoakError(Exception):
    """The server did something the round did not provoke."""


def check(cond, what, *args):
    if not cond:
        raise SoakError(what % args if args else what)


async def ws_connect(ctx, path, deflate=False):
    return await websockets.connect("ws://127.0.0.1:%d%s" % (ctx.http_port, path),
                                    compression="deflate" if deflate else None,
                                    ping_interval=None, max_size=None, open_timeout=RECV_TIMEOUT,
                                    close_timeout=RECV_TIMEOUT)


def vanish(ws):
    """Drop the TCP connection without a Close frame (a client that dies)."""
    ws.transport.abort()


async def closed_code(ws, skip=lambda m: False):
    """Wait for the server to close ws: (close code, messages not skipped)."""
    got = []
    try:
        while True:
            msg = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
            if not skip(msg):
                got.append(msg)
    except websockets.ConnectionClosed:
        pass
    return ws.close_code, got


class Workload:
    name = "?"
    workers = 1
    pace = (0.05, 0.2)  # seconds between a worker's rounds: bounds the rate

    def __init__(self, ctx):
        self.ctx = ctx
        self.rng = ctx.rng
        self.seq = 0

    def op(self, what, n=1):
        self.ctx.stats.op(self.name, what, n)

    def next_id(self, prefix):
        self.seq += 1
        return "%s-%d-%d" % (prefix, self.ctx.run_id, self.seq)

    async def once(self, worker):
        raise NotImplementedError


# ------------------------------------------------------ WebSocket /echo --


class EchoChurn(Workload):
    """Connect to /echo (half of them with permessage-deflate), echo a few
    text and binary messages, then close; one in five vanishes instead."""

    name = "ws-echo"
    workers = 6

    def message(self):
        r = self.rng
        if r.random() < 0.3:  # the sizes where frame lengths change encoding, and big ones
            size = r.choice((0, 1, 125, 126, 1000, 20000, 70000))
        else:
            size = r.randrange(2000)
        if r.random() < 0.5:
            # Compressible text: deflate has something to do.
            return ("soak %d " % r.randrange(1000) * (size // 8 + 1))[:size]
        return os.urandom(size)

    async def once(self, worker):
        deflate = self.rng.random() < 0.5
        ws = await ws_connect(self.ctx, "/echo", deflate)
        try:
            check(bool(ws.extensions) == deflate, "deflate asked %s, extensions %r", deflate,
                  ws.extensions)
            for _ in range(self.rng.randint(1, 5)):
                msg = self.message()
                await ws.send(msg)
                got = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
                check(got == msg, "/echo sent back %d bytes (%s) for %d (%s)", len(got),
                      type(got).__name__, len(msg), type(msg).__name__)
                self.op("messages")
            if self.rng.random() < 0.2:
                vanish(ws)
                self.op("vanished")
            else:
                await ws.close()
                check(ws.close_code == 1000, "/echo close code %s", ws.close_code)
                self.op("closed")
        finally:
            if not ws.closed:
                vanish(ws)


# --------------------------------------------------------------- Ayame --


class AyameClient:
    def __init__(self, ws):
        self.ws = ws

    async def send(self, obj):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        await self.ws.send(text)
        return text

    async def recv(self):
        """The next message that is not a ping (pings are answered)."""
        while True:
            text = await asyncio.wait_for(self.ws.recv(), RECV_TIMEOUT)
            check(isinstance(text, str), "binary message on /signaling")
            if json.loads(text).get("type") == "ping":
                await self.ws.send('{"type":"pong"}')
                continue
            return text

    async def recv_json(self):
        return json.loads(await self.recv())

    async def gone(self):
        """Wait for the server's close: (code, non-ping messages before it)."""
        code, got = await closed_code(self.ws, lambda m: '"ping"' in m)
        return code, [json.loads(m) for m in got]


class AyameRooms(Workload):
    """Two clients per room, offer/answer/candidates relayed byte for byte,
    some rooms refuse a third client (full), then one member leaves (bye,
    close or vanishing) and the other must get bye and a 1000 close."""

    name = "ayame"
    workers = 3

    async def join(self, room, client_id):
        c = AyameClient(await ws_connect(self.ctx, "/signaling", self.rng.random() < 0.5))
        await c.send({"type": "register", "roomId": room, "clientId": client_id,
                      "ayameClient": "soak"})
        return c, await c.recv_json()

    async def once(self, worker):
        room = self.next_id("room")
        clients = []
        try:
            a, acc = await self.join(room, "a")
            clients.append(a)
            check(acc.get("type") == "accept" and acc.get("isExistClient") is False,
                  "first register in %s: %r", room, acc)
            b, acc = await self.join(room, "b")
            clients.append(b)
            check(acc.get("type") == "accept" and acc.get("isExistClient") is True,
                  "second register in %s: %r", room, acc)
            self.op("rooms")
            await self.relay(b, a, {"type": "offer", "sdp": "v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\n"
                                                           % self.rng.randrange(1 << 30)})
            await self.relay(a, b, {"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n"})
            for i in range(self.rng.randint(0, 4)):
                line = "candidate:%d 1 udp 1 127.0.0.1 %d typ host" % (i, 40000 + i)
                await self.relay(*((a, b) if i % 2 else (b, a)), {
                    "type": "candidate",
                    "ice": {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}})
            if self.rng.random() < 0.3:
                await self.third(room)
            await self.leave(a, b)
        finally:
            for c in clients:
                if not c.ws.closed:
                    vanish(c.ws)

    async def relay(self, src, dst, obj):
        text = await src.send(obj)
        got = await dst.recv()
        check(got == text, "relayed %s changed: %r -> %r", obj["type"], text[:80], got[:80])
        self.op("relayed")

    async def third(self, room):
        c, rej = await self.join(room, "c")
        try:
            check(rej == {"type": "reject", "reason": "full"}, "third register in %s: %r",
                  room, rej)
            code, rest = await c.gone()
            check(code == 1000 and not rest, "after reject full: close %s, %r", code, rest)
            self.op("rejected-full")
        finally:
            if not c.ws.closed:
                vanish(c.ws)

    async def leave(self, a, b):
        leaver, stayer = (a, b) if self.rng.random() < 0.5 else (b, a)
        how = self.rng.choice(("bye", "close", "vanish"))
        if how == "bye":
            await leaver.send({"type": "bye"})
            code, rest = await leaver.gone()
            check(code == 1000 and not rest, "after sending bye: close %s, %r", code, rest)
        elif how == "close":
            await leaver.ws.close()
        else:
            vanish(leaver.ws)
        code, got = await stayer.gone()
        check(code == 1000 and got == [{"type": "bye"}], "peer left by %s: close %s after %r",
              how, code, got)
        self.op("left-" + how)


# -------------------------------------------------------------- PeerJS --


class PeerClient:
    def __init__(self, ctx, peer_id, token):
        self.ctx, self.id, self.token = ctx, peer_id, token
        self.ws = None

    async def connect(self, deflate):
        path = "/peerjs/peerjs?key=peerjs&id=%s&token=%s&version=1.5.5" % (self.id, self.token)
        self.ws = await ws_connect(self.ctx, path, deflate)
        return await self.recv()

    async def send(self, mtype, dst=None, payload=None):
        msg = {"type": mtype}
        if dst is not None:
            msg["dst"] = dst
        if payload is not None:
            msg["payload"] = payload
        await self.ws.send(json.dumps(msg))

    async def recv(self):
        text = await asyncio.wait_for(self.ws.recv(), RECV_TIMEOUT)
        check(isinstance(text, str), "binary message on /peerjs")
        return json.loads(text)


class PeerJsClients(Workload):
    """Pairs of PeerJS clients: OPEN, OFFER/ANSWER/CANDIDATE relayed with the
    server's src, HEARTBEAT, a message to an id that never comes (EXPIRE), a
    message waiting for an id that comes later, takeover, LEAVE."""

    name = "peerjs"
    workers = 3

    async def once(self, worker):
        r = self.rng
        a = PeerClient(self.ctx, str(uuid.uuid4()), "ta%d" % r.randrange(1 << 20))
        b = PeerClient(self.ctx, str(uuid.uuid4()), "tb%d" % r.randrange(1 << 20))
        clients = [a, b]
        try:
            for c in (a, b):
                opened = await c.connect(r.random() < 0.5)
                check(opened == {"type": "OPEN"}, "%s got %r instead of OPEN", c.id, opened)
            self.op("opened", 2)
            await self.relay(a, b, "OFFER", {"sdp": {"type": "offer", "sdp": "v=0"},
                                             "type": "media",
                                             "connectionId": "mc_%d" % r.randrange(1 << 30)})
            await self.relay(b, a, "ANSWER", {"sdp": {"type": "answer", "sdp": "v=0"}})
            await self.relay(a, b, "CANDIDATE", {"candidate": {"candidate": "candidate:1"}})
            await a.send("HEARTBEAT")
            await b.send("HEARTBEAT")
            self.op("heartbeats", 2)
            if r.random() < 0.3:
                await self.expire(a)
            if r.random() < 0.3:
                clients.append(await self.late_peer(b))
            if r.random() < 0.2:
                clients.append(await self.takeover(a))
                a = clients[-1]
            await self.relay(a, b, "LEAVE", None)
            for c in (a, b):
                if r.random() < 0.2:
                    vanish(c.ws)
                else:
                    await c.ws.close()
        finally:
            for c in clients:
                if c.ws is not None and not c.ws.closed:
                    vanish(c.ws)

    async def relay(self, src, dst, mtype, payload):
        await src.send(mtype, dst.id, payload)
        got = await dst.recv()
        want = {"type": mtype, "src": src.id, "dst": dst.id}
        if payload is not None:
            want["payload"] = payload
        check(got == want, "%s relayed as %r", mtype, got)
        self.op("relayed")

    async def expire(self, a):
        absent = "absent-%s" % uuid.uuid4()
        await a.send("OFFER", absent, {"sdp": "v=0"})
        got = await a.recv()  # after --peerjs-expire-timeout
        check(got == {"type": "EXPIRE", "src": absent, "dst": a.id}, "waiting for EXPIRE: %r", got)
        self.op("expired")

    async def late_peer(self, b):
        """A message to an id that connects a moment later waits for it."""
        c = PeerClient(self.ctx, str(uuid.uuid4()), "tc")
        await b.send("OFFER", c.id, {"sdp": "late"})
        await asyncio.sleep(0.2)
        opened = await c.connect(False)
        check(opened == {"type": "OPEN"}, "late peer got %r instead of OPEN", opened)
        got = await c.recv()
        check(got == {"type": "OFFER", "src": b.id, "dst": c.id, "payload": {"sdp": "late"}},
              "late peer got %r", got)
        await c.ws.close()
        self.op("queued-delivered")
        return c

    async def takeover(self, a):
        """Same id and token again: the old socket is closed, the new one is a."""
        n = PeerClient(self.ctx, a.id, a.token)
        opened = await n.connect(False)
        check(opened == {"type": "OPEN"}, "takeover got %r instead of OPEN", opened)
        code, rest = await closed_code(a.ws)
        check(code == 1000 and not rest, "replaced socket: close %s, %r", code, rest)
        self.op("takeovers")
        return n


# ---------------------------------------------------------------- TURN --


class TurnAllocations(Workload):
    """Allocations over UDP and TCP with TURN REST credentials: permission and
    channel to a UDP echo peer, ChannelData and Send indications through the
    relay, Refresh, then delete (LIFETIME 0), close the TCP connection, or
    abandon a UDP allocation to expire — only when its lifetime (the server
    gives at least 600 s, RFC 8656 7.2) runs out before the driver's reap
    deadline. The TURN client is blocking (tests/turn/stunclient.py): each
    round runs in a thread."""

    name = "turn"
    workers = 3
    pace = (0.1, 0.4)

    async def once(self, worker):
        proto = "tcp" if self.rng.random() < 0.35 else "udp"
        seed = self.rng.randrange(1 << 30)
        await asyncio.get_running_loop().run_in_executor(self.ctx.executor, self.session, proto,
                                                         seed)

    def session(self, proto, seed):
        ctx = self.ctx
        rng = random.Random(seed)
        user, password = sc.rest_credentials(ctx.secret, "soak%d" % (seed % 1000), ttl=7200)
        c = sc.Client(ctx.turn_port, proto, user, password, timeout=3.0, retries=3)
        keep = False
        try:
            r = c.allocate(lifetime=rng.randint(30, 60))
            check(r.cls == sc.SUCCESS, "%s Allocate: %r", proto, r)
            lifetime = r.u32(sc.LIFETIME)
            check(lifetime is not None and lifetime >= 30, "Allocate LIFETIME %r", lifetime)
            relay = r.xor_addr(sc.XOR_RELAYED_ADDRESS)
            self.op("allocated-" + proto)
            peer = ("127.0.0.1", ctx.echo_port)
            r = c.create_permission("127.0.0.1")
            check(r.cls == sc.SUCCESS, "CreatePermission: %r", r)
            channel = 0x4000 + rng.randrange(0x1000)
            r = c.channel_bind(channel, *peer)
            check(r.cls == sc.SUCCESS, "ChannelBind: %r", r)
            for i in range(rng.randint(1, 4)):
                for how in ("channel", "send"):
                    payload = b"%s%d-" % (how.encode(), i) + os.urandom(rng.randrange(1200))
                    self.echo(c, how, channel, peer, relay, payload)
            if rng.random() < 0.5:
                r = c.refresh(lifetime=rng.randint(30, 60))
                check(r.cls == sc.SUCCESS and r.u32(sc.LIFETIME), "Refresh: %r", r)
                lifetime = r.u32(sc.LIFETIME)
                self.op("refreshed")
            keep = self.finish(c, proto, rng, lifetime)
        finally:
            if not keep:
                c.close()

    def finish(self, c, proto, rng, lifetime):
        """Delete, drop the TCP connection, or abandon; True if c must stay open."""
        ctx = self.ctx
        if proto == "udp" and rng.random() < 0.3 and ctx.may_abandon(lifetime):
            ctx.abandon(c, lifetime)
            self.op("abandoned-udp")
            return True
        if proto == "tcp" and rng.random() < 0.4:
            self.op("tcp-closed")  # the server must free the allocation with the connection
            return False
        r = c.refresh(lifetime=0)
        check(r.cls == sc.SUCCESS and r.u32(sc.LIFETIME) == 0, "Refresh LIFETIME 0: %r", r)
        self.op("deleted")
        return False

    def echo(self, c, how, channel, peer, relay, payload):
        """Payload to the echo peer through the relay and back; retried over UDP."""
        tries = 3 if not c.t.stream else 1
        for _ in range(tries):
            if how == "channel":
                c.send_channel(channel, payload)
            else:
                c.send_indication(peer[0], peer[1], payload)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                try:
                    kind, src, data = c.recv_data(max(0.05, deadline - time.monotonic()))
                except sc.Timeout:
                    break
                if data != payload:
                    continue  # a late echo of an earlier retry
                # The peer has a channel: its answers come as ChannelData (RFC 8656 12).
                check((kind, src) == ("channel", channel), "echo came as %s %r", kind, src)
                self.op("relayed-" + how)
                return
        raise SoakError("%s %s of %d bytes: no echo through relay %s"
                        % (c.t.proto, how, len(payload), relay))
