"""tsunagi's /echo against Python's websockets library (Debian's python3-websockets).

A client someone else wrote, with and without permessage-deflate, over ws://
and wss://: every echo is checked byte for byte, and the handshake, ping/pong,
the close handshake, the message size limit, the Origin allow-list and the
keepalive are checked as that client sees them.
"""

import asyncio
import logging
import os
import signal
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "interop"))

import websockets  # noqa: E402
from websockets.extensions import permessage_deflate as pmd  # noqa: E402

import wsinterop  # noqa: E402
from wsinterop import BIG, MiB, SMALL_SIZES, binary_of, compressible_of, text_of  # noqa: E402

LIMIT = 16 * MiB  # the /echo endpoint's message limit


def arun(coro, timeout=60):
    """Run a coroutine to completion with an overall time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class FrameLog(logging.Handler):
    """Collects a connection's debug log: websockets logs every frame ('< PING ...')."""

    count = 0

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []
        FrameLog.count += 1
        self.logger = logging.getLogger("wsi.conn%d" % FrameLog.count)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record):
        self.lines.append((time.monotonic(), record.getMessage()))

    def received(self, kind):
        return [t for t, line in self.lines if line.startswith("< " + kind)]


class RecordingDeflate(pmd.ClientPerMessageDeflateFactory):
    """The standard permessage-deflate offer, remembering (opcode, rsv1, wire length)
    of every data frame the server sends."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.frames = []

    def process_response_params(self, params, accepted):
        ext = super().process_response_params(params, accepted)
        decode, frames = ext.decode, self.frames

        def recording_decode(frame, *, max_size=None):
            frames.append((frame.opcode, frame.rsv1, len(frame.data)))
            return decode(frame, max_size=max_size)

        ext.decode = recording_decode
        return ext


class EchoMixin:
    """Connecting and checking echoes byte for byte."""

    def connect(self, compression="deflate", **kwargs):
        kwargs.setdefault("max_size", None)
        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("open_timeout", 10)
        kwargs.setdefault("close_timeout", 5)
        return websockets.connect(self.url, compression=compression, **kwargs)

    async def echo(self, ws, msg, what):
        await ws.send(msg)
        got = await asyncio.wait_for(ws.recv(), 30)
        self.assertIs(type(got), type(msg), "%s: echo came back as the other opcode" % what)
        if got != msg:
            self.fail("%s: echo differs (sent %d bytes sha256 %s, got %d bytes sha256 %s)"
                      % (what, len(msg), wsinterop.digest(msg)[:16], len(got),
                         wsinterop.digest(got)[:16]))

    def check_small(self, compression):
        async def go():
            async with self.connect(compression) as ws:
                for i, n in enumerate(SMALL_SIZES):
                    await self.echo(ws, text_of(n, i), "text %d bytes" % n)
                    await self.echo(ws, binary_of(n, i), "binary %d bytes" % n)
                    await self.echo(ws, compressible_of(n, i), "compressible binary %d bytes" % n)
        arun(go())

    def check_big(self, compression):
        async def go():
            async with self.connect(compression) as ws:
                await self.echo(ws, text_of(BIG, 1), "8 MiB text")
                await self.echo(ws, binary_of(BIG, 2), "8 MiB binary")
                await self.echo(ws, compressible_of(BIG, 3), "8 MiB compressible binary")
        arun(go(), 80)


class EchoTest(EchoMixin, unittest.TestCase):
    """ws:// and wss:// on one server."""

    @classmethod
    def setUpClass(cls):
        cls.server = wsinterop.EchoServer(tls=True)
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            raise
        cls.url = cls.server.ws_url()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.cleanup()

    # ------------------------------------------------------ negotiation --

    def test_deflate_negotiated_when_offered(self):
        async def go():
            async with self.connect("deflate") as ws:
                ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
                self.assertTrue(ext.startswith("permessage-deflate"), ext)
                self.assertEqual([e.name for e in ws.extensions], ["permessage-deflate"])
        arun(go())

    def test_no_extension_when_not_offered(self):
        async def go():
            async with self.connect(None) as ws:
                self.assertNotIn("Sec-WebSocket-Extensions", ws.response_headers)
                self.assertEqual(ws.extensions, [])
        arun(go())

    # ------------------------------------------------------------- echo --

    def test_echo_small_deflate(self):
        self.check_small("deflate")

    def test_echo_small_uncompressed(self):
        self.check_small(None)

    def test_echo_8mib_deflate(self):
        self.check_big("deflate")

    def test_echo_8mib_uncompressed(self):
        self.check_big(None)

    def test_echo_fragmented_messages(self):
        # websockets sends an iterable as one message in several frames;
        # with deflate, only the first frame carries RSV1 (RFC 7692 6.1).
        async def go(compression):
            async with self.connect(compression) as ws:
                parts = [text_of(n, n) for n in (1, 0, 125, 70000, 3)]
                await ws.send(parts)
                got = await asyncio.wait_for(ws.recv(), 20)
                self.assertEqual(got, "".join(parts))
                parts = [binary_of(n, n) for n in (65536, 0, 1, 300000)]
                await ws.send(parts)
                got = await asyncio.wait_for(ws.recv(), 20)
                self.assertEqual(got, b"".join(parts))
        for compression in ("deflate", None):
            with self.subTest(compression=compression):
                arun(go(compression))

    def test_pipelined_messages_echo_in_order(self):
        async def go(compression):
            async with self.connect(compression) as ws:
                sent = []
                for i in range(300):
                    n = (i * 7919) % 4000
                    sent.append(text_of(n, i) if i % 2 else binary_of(n, i))
                for m in sent:
                    await ws.send(m)
                for i, m in enumerate(sent):
                    got = await asyncio.wait_for(ws.recv(), 20)
                    self.assertEqual(got, m, "message %d of the burst" % i)
        for compression in ("deflate", None):
            with self.subTest(compression=compression):
                arun(go(compression))

    def test_client_context_takeover(self):
        # websockets keeps its compression context between messages, so the
        # second and third copies are mostly back-references into the first:
        # the server must keep its inflater's window across messages.
        async def go():
            async with self.connect("deflate") as ws:
                block = binary_of(20000, 7)
                for i in range(3):
                    await self.echo(ws, block, "copy %d" % i)
                text = text_of(20000, 8)
                for i in range(3):
                    await self.echo(ws, text, "text copy %d" % i)
        arun(go())

    def test_server_compresses_its_echo(self):
        ext = RecordingDeflate()

        async def go():
            async with self.connect(None, extensions=[ext]) as ws:
                await self.echo(ws, compressible_of(MiB, 9), "1 MiB compressible")
                await self.echo(ws, b"ab", "2 bytes")
        arun(go())
        big = [f for f in ext.frames if f[0] == websockets.frames.Opcode.BINARY]
        self.assertEqual(len(big), 2, ext.frames)
        op, rsv1, wire = big[0]
        self.assertTrue(rsv1, "1 MiB of repeated 3000-byte blocks came back uncompressed")
        self.assertLess(wire, MiB // 20)

    def test_window_bits_offers(self):
        # Data whose matches lie 300 and 3000 bytes back: a server that
        # accepts server_max_window_bits=N but compresses with a larger
        # window produces distances the client cannot inflate.
        payloads = [compressible_of(200000, 11, block=300), compressible_of(200000, 12, block=3000),
                    text_of(50000, 13)]
        offers = [dict(server_max_window_bits=b) for b in (8, 9, 10, 12, 15)]
        # (client_max_window_bits=8 is left out: zlib, hence websockets, cannot
        # compress with a 256-byte raw window, whatever the server answers.)
        offers += [dict(client_max_window_bits=b) for b in (9, 11, 15)]
        offers += [dict(client_max_window_bits=None),  # Firefox's offer: no window parameter
                   dict(server_no_context_takeover=True, client_no_context_takeover=True),
                   dict(server_max_window_bits=9, client_max_window_bits=9,
                        client_no_context_takeover=True)]

        async def go(offer):
            factory = pmd.ClientPerMessageDeflateFactory(**offer)
            # websockets checks the answer against the offer itself
            # (NegotiationError if the server answers a wider window).
            async with self.connect(None, extensions=[factory]) as ws:
                accepted = [e for e in ws.extensions if e.name == "permessage-deflate"]
                if offer.get("server_max_window_bits", 9) >= 9:
                    self.assertTrue(accepted, "offer %r declined" % offer)
                if accepted and offer.get("server_max_window_bits"):
                    self.assertLessEqual(accepted[0].remote_max_window_bits,
                                         offer["server_max_window_bits"])
                for i, p in enumerate(payloads):
                    for rep in range(2):
                        await self.echo(ws, p, "offer %r payload %d #%d" % (offer, i, rep))
        for offer in offers:
            with self.subTest(offer=offer):
                arun(go(offer))

    # ---------------------------------------------------- control frames --

    def test_ping_pong(self):
        # websockets resolves a ping's waiter only on a Pong with the same payload.
        async def go(compression):
            async with self.connect(compression) as ws:
                for payload in (b"", b"x", binary_of(125, 5), "ping text"):
                    waiter = await ws.ping(payload)
                    await asyncio.wait_for(waiter, 5)
                # A Ping right behind a big message is answered too.
                await ws.send(binary_of(2 * MiB, 6))
                waiter = await ws.ping(b"after")
                got = await asyncio.wait_for(ws.recv(), 20)
                self.assertEqual(len(got), 2 * MiB)
                await asyncio.wait_for(waiter, 10)
        for compression in ("deflate", None):
            with self.subTest(compression=compression):
                arun(go(compression))

    def test_clean_close(self):
        async def go(code):
            log = FrameLog()
            ws = await self.connect(logger=log.logger, close_timeout=5)
            await self.echo(ws, "before close", "text")
            t0 = time.monotonic()
            await ws.close(code, "bye")
            took = time.monotonic() - t0
            self.assertEqual(ws.close_code, code, "the server's Close carried another code")
            self.assertEqual(len(log.received("CLOSE")), 1, "no Close frame from the server")
            # RFC 6455 7.1.1: after the close handshake the server closes TCP
            # first; websockets would wait close_timeout (5 s) for it.
            self.assertLess(took, 2.5, "server did not close TCP after the close handshake")
            self.assertFalse(any("timed out waiting for TCP close" in line
                                 for _, line in log.lines), log.lines)
        for code in (1000, 4321):
            with self.subTest(code=code):
                arun(go(code))

    # ---------------------------------------------------------- limits --

    def test_16mib_message_is_echoed(self):
        async def go(compression):
            async with self.connect(compression) as ws:
                await self.echo(ws, binary_of(LIMIT, 20), "16 MiB binary")
        for compression in (None, "deflate"):
            with self.subTest(compression=compression):
                arun(go(compression), 80)

    def test_too_big_message_closes_1009(self):
        async def go(compression, msg):
            async with self.connect(compression) as ws:
                try:
                    await ws.send(msg)
                except websockets.ConnectionClosed:
                    pass
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 30)
                self.assertEqual(ws.close_code, 1009)
        # Uncompressed, the frame header alone is over the limit; compressed,
        # 17 MiB of zeros is 17 KB on the wire and must stop inflating at 16 MiB.
        cases = [(None, binary_of(LIMIT + 1, 21)), ("deflate", bytes(LIMIT + MiB))]
        for compression, msg in cases:
            with self.subTest(compression=compression):
                arun(go(compression, msg), 60)
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)

    # ------------------------------------------------------------- wss --

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=self.server.cert)
        self.assertTrue(ctx.check_hostname)
        return ctx

    def test_wss_echo(self):
        async def go(compression):
            async with websockets.connect(self.server.wss_url(), ssl=self.tls_context(),
                                          compression=compression, max_size=None,
                                          ping_interval=None, close_timeout=5) as ws:
                tls = ws.transport.get_extra_info("ssl_object")
                self.assertIsNotNone(tls)
                self.assertIn(tls.version(), ("TLSv1.2", "TLSv1.3"))
                ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
                self.assertEqual(ext.startswith("permessage-deflate"), compression is not None)
                for i, n in enumerate(SMALL_SIZES):
                    await self.echo(ws, text_of(n, i), "wss text %d" % n)
                    await self.echo(ws, binary_of(n, i), "wss binary %d" % n)
                await self.echo(ws, binary_of(BIG, 30), "wss 8 MiB binary")
                await self.echo(ws, text_of(BIG, 31), "wss 8 MiB text")
                await asyncio.wait_for(await ws.ping(b"tls"), 5)
                await ws.close(1000)
                self.assertEqual(ws.close_code, 1000)
        for compression in ("deflate", None):
            with self.subTest(compression=compression):
                arun(go(compression), 80)


class OriginTest(wsinterop.EchoTestCase):
    """--allowed-origin as a real client sees it."""

    server_args = ("--allowed-origin", "http://good.example")

    def test_allowed_origin_connects(self):
        async def go():
            async with websockets.connect(self.server.ws_url(), origin="http://good.example",
                                          ping_interval=None) as ws:
                await ws.send("hi from a good origin")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "hi from a good origin")
        arun(go())

    def test_other_origins_get_403(self):
        async def go(origin):
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                async with websockets.connect(self.server.ws_url(), origin=origin,
                                              ping_interval=None):
                    pass
            self.assertEqual(cm.exception.status_code, 403)
        for origin in ("http://evil.example", "http://good.example.evil.example",
                       "http://good.example:8080", "https://good.example"):
            with self.subTest(origin=origin):
                arun(go(origin))


class KeepaliveTest(unittest.TestCase):
    """--ws-idle-timeout 1: the server pings a silent client and drops a dead one."""

    @classmethod
    def setUpClass(cls):
        cls.server = wsinterop.EchoServer("--ws-idle-timeout", "1")
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

    def test_live_client_that_never_pings_stays_connected(self):
        log = FrameLog()

        async def go():
            async with websockets.connect(self.server.ws_url(), ping_interval=None,
                                          logger=log.logger) as ws:
                t0 = time.monotonic()
                await asyncio.sleep(3.5)
                self.assertTrue(ws.open, "closed after %.1f s: code %s"
                                % (time.monotonic() - t0, ws.close_code))
                await ws.send("still here")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "still here")
        arun(go())
        # websockets answered the server's Pings on its own; there were some.
        self.assertGreaterEqual(len(log.received("PING")), 2, log.lines)

    def test_dead_client_is_closed(self):
        sock, rest = wsinterop.raw_handshake(self.server.port)
        try:
            self.assertEqual(rest, b"")
            closed_at, frames = wsinterop.until_closed(sock, 6)
        finally:
            sock.close()
        self.assertIsNotNone(closed_at, "connection still open 6 s after the handshake")
        pings = [f for f in frames if f[2] == 0x9]
        self.assertTrue(pings, "closed without a keepalive Ping first: %r" % frames)
        self.assertGreaterEqual(pings[0][0], 0.5, "Ping long before the idle timeout")
        self.assertGreaterEqual(closed_at, 1.5, "closed before the Ping could be answered")
        self.assertLessEqual(closed_at, 3.5)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_sends_going_away(self):
        server = wsinterop.EchoServer()
        try:
            server.start()

            async def go():
                async with websockets.connect(server.ws_url(), ping_interval=None) as ws:
                    await ws.send("x")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "x")
                    server.signal(signal.SIGTERM)
                    with self.assertRaises(websockets.ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), 10)
                    self.assertEqual(ws.close_code, 1001)
            arun(go())
            rc = server.wait(15)
            self.assertIsNotNone(rc, "tsunagi still running after SIGTERM")
            server.assert_clean_exit(rc)
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
