"""tsunagi's TURN server against Chromium's WebRTC (Debian's chromium + playwright-core).

tsunagi serves tests/turn/www/turn.html from a temporary --web-root. The page
fetches /api/ice-servers from tsunagi itself, keeps only the turn: URL of one
transport (udp, then tcp), and connects two RTCPeerConnections with
iceTransportPolicy 'relay': every candidate is a tsunagi relay, so the call
goes client -> tsunagi -> relay -> relay -> tsunagi -> client. Over it: a
data channel (messages both ways, one of 8 KB) and fake-device audio and
video both ways. tests/turn/chromium_turn.mjs drives the page and prints its
report, judged here: connectionState 'connected', the selected candidate pair
relay/relay over the right relay protocol on both sides, messages in order,
RTP bytes received for audio and video.

tsunagi runs with --allow-loopback-peers: both relays are on 127.0.0.1.
"""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "turn"))

import turnharness as th  # noqa: E402

PAGE = os.path.join(th.HERE, "www", "turn.html")


class ChromiumTurnTest(th.TurnTestCase):
    @classmethod
    def setUpClass(cls):
        cls.webroot = tempfile.mkdtemp(prefix="tsunagi-turn-www-")
        shutil.copy(PAGE, os.path.join(cls.webroot, "turn.html"))
        cls.server_args = ("--web-root", cls.webroot)
        cls.server_kwargs = {"loopback": True}
        try:
            super().setUpClass()
        except Exception:
            shutil.rmtree(cls.webroot, ignore_errors=True)
            raise
        try:
            rc, out, err = th.run_node("chromium_turn.mjs", cls.server.url("/turn.html"), "udp",
                                       "tcp", timeout=80)
            cls.result = th.last_json(out)
            cls.driver = (rc, err)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.webroot, ignore_errors=True)

    def report(self, transport):
        rc, err = self.driver
        if rc != 0 or "error" in self.result:
            self.fail("could not drive Chromium (exit %d): %s\n%s"
                      % (rc, self.result.get("error"), err[-3000:]))
        self.assertEqual(self.result["pageStatus"], 200)
        return self.result["reports"][transport]

    def check(self, transport):
        rep = self.report(transport)
        ctx = {k: rep.get(k) for k in ("errors", "state", "candidates", "data")}
        self.assertEqual(rep["errors"], [], ctx)
        self.assertEqual(rep.get("iceStatus"), 200, ctx)
        # The iceServers came from tsunagi: its own TURN port, REST credentials.
        self.assertEqual(len(rep["iceServers"]), 1, rep["iceServers"])
        entry = rep["iceServers"][0]
        port = self.server.turn_port if transport == "udp" else self.server.turn_tcp_port
        self.assertEqual(entry["urls"], ["turn:127.0.0.1:%d?transport=%s" % (port, transport)])
        self.assertRegex(entry["username"], r"^\d+:")
        # Only relay candidates, all on tsunagi's relay address and range.
        for side in ("pc1", "pc2"):
            cands = rep["candidates"][side]
            self.assertTrue(cands, "%s gathered no candidate: %r" % (side, ctx))
            for c in cands:
                f = c.split()
                self.assertEqual(f[7], "relay", c)
                self.assertEqual(f[4], "127.0.0.1", c)
                self.assertTrue(self.server.in_relay_range(int(f[5])), c)
        state = rep["state"]
        self.assertEqual((state["pc1"], state["pc2"]), ("connected", "connected"), ctx)
        self.assertIn(state["ice1"], ("connected", "completed"), ctx)
        self.assertIn(state["ice2"], ("connected", "completed"), ctx)
        data = rep["data"]
        self.assertEqual((data["pc2Got"], data["pc1Got"]), (data["sent"], data["sent"]), data)
        self.assertTrue(data["pc2InOrder"] and data["pc1InOrder"] and data["bigOk"], data)
        pairs = {}
        for side in ("pc1", "pc2"):
            s = rep[side]
            pair = s["pair"]
            self.assertIsNotNone(pair, "%s: no selected candidate pair" % side)
            self.assertEqual(pair["local"]["type"], "relay", pair)
            self.assertEqual(pair["remote"]["type"], "relay", pair)
            self.assertEqual(pair["local"]["relayProtocol"], transport, pair)
            self.assertEqual(pair["local"]["address"], "127.0.0.1", pair)
            self.assertTrue(self.server.in_relay_range(pair["local"]["port"]), pair)
            kinds = {x["kind"]: x["bytesReceived"] for x in s["inbound"]}
            self.assertEqual(set(kinds), {"audio", "video"}, s["inbound"])
            for kind, n in kinds.items():
                self.assertGreater(n, 0, "%s received no %s: %r" % (side, kind, s["inbound"]))
            pairs[side] = pair
        # Each side's remote is one of the other side's relayed addresses.
        # (Chromium allocates once per network interface, all to 127.0.0.1,
        # and may still be switching pairs when the stats are read, so the
        # two selected pairs need not mirror each other, and the byte counts
        # of a freshly selected pair may be 0: the RTP counters above are
        # what shows that media flowed.)
        ports = {side: {int(c.split()[5]) for c in rep["candidates"][side]} for side in ("pc1", "pc2")}
        self.assertIn(pairs["pc1"]["remote"]["port"], ports["pc2"], (pairs, ports))
        self.assertIn(pairs["pc2"]["remote"]["port"], ports["pc1"], (pairs, ports))

    def test_tsunagi_survived_the_calls(self):
        """Both calls are over (the page closed its connections, which
        deletes the allocations while media may still arrive on them)."""
        log = self.server.log()
        marker = th.tsunagi.sanitizer_report(log)
        if marker is not None:
            lines = log.splitlines()
            first = next(i for i, l in enumerate(lines) if marker in l)
            self.fail("sanitizer report in tsunagi's log:\n" + "\n".join(lines[first:first + 30]))
        self.assertTrue(self.server.running(), self.server.log_tail())

    def test_turn_udp(self):
        self.check("udp")

    def test_turn_tcp(self):
        self.check("tcp")


if __name__ == "__main__":
    unittest.main(verbosity=2)
