"""The soak test's hostile workload: garbage datagrams and truncated STUN to
the TURN port, random bytes and half-finished HTTP requests and WebSocket
handshakes over TCP, and half-open connections that connect and never send,
or send part of something and go silent.

Nothing here expects a particular answer to the garbage; what it checks is
what a client can observe of the server's health: a STUN Binding still gets
its answer between the datagrams, and every TCP connection left hanging is
closed by the server within a deadline (the server's own timeouts are set
short by the driver). A connection the server never closes is a stuck
connection and counts as an error.
"""

import asyncio
import base64
import os
import struct

import stunclient as sc
from workloads import SoakError, Workload, check

# How long the server may take to reap each kind of hanging connection: its
# timeout (set by soak.py, or fixed: 30 s for a silent TURN TCP client) plus
# a wide margin for a loaded machine. Errors only if this passes.
REAP_HTTP = 30  # --request-timeout 2, --keepalive-timeout 3
REAP_WS = 30  # --ws-idle-timeout 3: a Ping after 3 s, closed 3 s later
REAP_TURN_TCP = 75  # 30 s of silence before any STUN


def half_request(rng):
    return rng.choice((
        b"GET /healthz HTTP/1.1\r\nHost: soak\r\nX-Half: ",
        b"GET /echo HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        b"POST /api/ice-servers HTTP/1.1\r\nHost: soak\r\nContent-Length: 100\r\n\r\nhalf",
        b"GE",
    ))


class Garbage(Workload):
    """Each round sends a burst of UDP garbage with a Binding check and opens
    one hanging TCP connection (bounded: at most `hanging` at once), whose
    reaping is awaited in its own task."""

    name = "garbage"
    workers = 2
    pace = (0.1, 0.3)
    hanging = 24

    def __init__(self, ctx):
        super().__init__(ctx)
        self.slots = asyncio.Semaphore(self.hanging)
        self.tasks = set()

    async def once(self, worker):
        await self.udp_burst()
        if self.slots.locked():
            return
        kind = self.rng.choice(("http-silent", "http-half", "http-random", "ws-silent",
                                "turn-silent", "turn-random", "turn-partial"))
        await self.slots.acquire()
        t = asyncio.get_running_loop().create_task(self.hang(kind))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def drain(self):
        """Wait for every hanging connection's verdict (called after the load)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    # --------------------------------------------------------------- UDP --

    async def udp_burst(self):
        loop = asyncio.get_running_loop()
        answers = asyncio.Queue()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Collect(answers), local_addr=("127.0.0.1", 0),
            remote_addr=("127.0.0.1", self.ctx.turn_port))
        try:
            for _ in range(self.rng.randint(1, 8)):
                transport.sendto(self.datagram())
                self.op("udp-datagrams")
            await self.binding(transport, answers)
        finally:
            transport.close()

    def datagram(self):
        r = self.rng
        kind = r.randrange(5)
        binding = sc.Message(sc.BINDING).encode()
        if kind == 0:
            return os.urandom(r.randrange(1, 1500))
        if kind == 1:  # a STUN message cut short
            return binding[:r.randrange(1, len(binding))]
        if kind == 2:  # a header whose length overruns the datagram
            return binding[:2] + struct.pack("!H", 400) + binding[4:]
        if kind == 3:  # ChannelData on a channel nobody bound
            return struct.pack("!HH", 0x4000 + r.randrange(0x3fff), 8) + os.urandom(8)
        alloc = sc.Message(sc.ALLOCATE)  # unauthenticated: the server answers 401
        alloc.add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", sc.UDP_PROTO))
        return alloc.encode()

    async def binding(self, transport, answers):
        """A Binding request from the same socket still gets its answer."""
        req = sc.Message(sc.BINDING)
        data = req.encode()
        for _ in range(4):  # UDP: retransmit, as a real client does
            transport.sendto(data)
            try:
                while True:
                    got = await asyncio.wait_for(answers.get(), 2.0)
                    if sc.is_stun(got) and got[8:20] == req.tid:
                        m = sc.parse(got)
                        check(m.cls == sc.SUCCESS and m.xor_addr(sc.XOR_MAPPED_ADDRESS)
                              == transport.get_extra_info("sockname")[:2],
                              "Binding answer %r", m)
                        self.op("udp-binding-ok")
                        return
            except asyncio.TimeoutError:
                continue
        raise SoakError("no answer to a STUN Binding after the garbage datagrams")

    # --------------------------------------------------------------- TCP --

    async def hang(self, kind):
        try:
            await self.hang_one(kind)
        except Exception as e:  # noqa: B902 - every failure is reported
            self.ctx.stats.error(self.name, "%s: %s: %s" % (kind, type(e).__name__, e))
        finally:
            self.slots.release()

    async def hang_one(self, kind):
        r = self.rng
        port = self.ctx.turn_port if kind.startswith("turn") else self.ctx.http_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            reap = REAP_HTTP
            if kind == "http-half":
                writer.write(half_request(r))
            elif kind == "http-random":
                writer.write(os.urandom(r.randrange(1, 3000)) + r.choice((b"", b"\r\n\r\n")))
            elif kind == "ws-silent":
                reap = REAP_WS
                await self.ws_upgrade(reader, writer)
            elif kind == "turn-silent":
                reap = REAP_TURN_TCP
            elif kind == "turn-random":
                # Not STUN (first two bits set) nor ChannelData: closed at once.
                writer.write(bytes([0xC0 | r.randrange(64)]) + os.urandom(r.randrange(3, 200)))
            elif kind == "turn-partial":
                reap = REAP_TURN_TCP
                writer.write(sc.Message(sc.BINDING).encode()[:r.randrange(1, 20)])
            await writer.drain()
            await self.reaped(reader, kind, reap)
        finally:
            writer.transport.abort()

    async def ws_upgrade(self, reader, writer):
        """A raw WebSocket upgrade to /echo, then silence: Pings go unanswered."""
        key = base64.b64encode(os.urandom(16))
        writer.write(b"GET /echo HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key
                     + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        check(head.startswith(b"HTTP/1.1 101"), "raw upgrade answered %r", head[:60])

    async def reaped(self, reader, kind, seconds):
        """Read (and ignore) what the server says until it closes the connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while await asyncio.wait_for(reader.read(65536), max(0.0, deadline - loop.time())):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        except asyncio.TimeoutError:
            raise SoakError("the server did not close a hanging connection in %d s"
                            % seconds) from None
        self.op("reaped-" + kind)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self, queue):
        self.queue = queue

    def datagram_received(self, data, addr):
        self.queue.put_nowait(data)

    def error_received(self, exc):
        self.queue.put_nowait(b"")
