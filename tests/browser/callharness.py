"""Shared pieces of the browser call tests (tests/integration/test_call_*.py).

One tsunagi per test file, as the TURN tests start it (tests/turn/turnharness.py:
HTTP and TURN on 127.0.0.1 port 0, relays on 127.0.0.1 in a random port
window, --allow-loopback-peers so TURN may relay between two browsers on the
same machine) and serving the repository's web/ as its web root. One Node
process, tests/browser/call_driver.mjs, drives one Chromium (and one Firefox,
if a scenario uses it) through every scenario the test class names and
prints one JSON report per scenario; the tests judge the reports.
"""

import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "turn"))

import turnharness as th  # noqa: E402  (path set just above)

tsunagi = th.tsunagi
DRIVER = os.path.join(HERE, "call_driver.mjs")
ROOM_RE = r"^[A-Za-z0-9_-]{22}$"  # 128 random bits, base64url


def run_driver(base, scenarios, timeout):
    """node call_driver.mjs base scenario...: {scenario: report}."""
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(th.TESTS, "node_modules")
    rc, out, err = th.run([th.NODE, DRIVER, base, *scenarios], timeout=timeout, env=env,
                          cwd=th.TESTS)
    if rc is None:
        raise AssertionError("the browser driver did not finish within %d s\nstdout:\n%s\n"
                             "stderr:\n%s" % (timeout, out[-4000:], err[-4000:]))
    result = th.last_json(out)
    if rc != 0 or "error" in result:
        raise AssertionError("could not drive the browsers (exit %s): %s\n%s"
                             % (rc, result.get("error"), err[-3000:]))
    return result["reports"]


class CallTestCase(tsunagi.OneServerPerClass):
    """A TurnServer serving web/, and the reports of the class's scenarios."""

    server_class = th.TurnServer
    server_args = ("--web-root", tsunagi.WEB)
    server_kwargs = {"loopback": True}
    scenarios = ()
    driver_timeout = 150

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.reports = run_driver(cls.server.url("").rstrip("/"), cls.scenarios,
                                     cls.driver_timeout)
        except Exception:
            cls.tearDownClass()
            raise

    def report(self, name):
        rep = self.reports[name]
        if "error" in rep:
            self.fail("scenario %s failed in the browser: %s\nbrowser console:\n%s\n"
                      "tsunagi log:\n%s" % (name, rep["error"], "\n".join(rep.get("console", [])),
                                            self.server.log_tail(40)))
        return rep

    # ---------------------------------------------------------- checks --

    def assert_media_flowed(self, media, who):
        """media = {first, second} read gapMs apart on the receiving side:
        video frames and audio samples decoded, and still growing."""
        first, second = media["first"], media["second"]
        self.assertEqual(second["connectionState"], "connected", (who, second))
        for kind in ("audio", "video"):
            self.assertIn(kind, first["inbound"], (who, first))
            self.assertIn(kind, second["inbound"], (who, second))
        v1, v2 = first["inbound"]["video"], second["inbound"]["video"]
        a1, a2 = first["inbound"]["audio"], second["inbound"]["audio"]
        self.assertGreater(v1["framesDecoded"], 0, (who, v1))
        self.assertGreater(v2["framesDecoded"], v1["framesDecoded"], (who, v1, v2))
        self.assertGreater(v2["frameWidth"] or 0, 0, (who, v2))
        self.assertGreater(a1["totalSamplesReceived"], 0, (who, a1))
        self.assertGreater(a2["totalSamplesReceived"], a1["totalSamplesReceived"], (who, a1, a2))
        self.assertGreater(a2["packetsReceived"], a1["packetsReceived"], (who, a1, a2))
        # The fake microphones (Chromium's beeps, Firefox's 1 kHz tone) make
        # sound: decoded and played out, that is energy.
        self.assertGreater(a2["totalAudioEnergy"], 0, (who, a2))

    def assert_page_call(self, rep):
        """A report of page_scenarios.mjs's call(): A started, B joined by the
        link and offered, media both ways, chat both ways, A hung up."""
        self.assertEqual(rep["homeStatus"], 200)
        self.assertEqual(rep["homeTitle"], "Start a call")
        self.assertEqual(rep["joinTitle"], "Join the call")
        waiting = rep["aWaiting"]
        self.assertEqual(waiting["callState"], "Waiting for the other person")
        self.assertRegex(waiting["state"]["roomId"], ROOM_RE)
        self.assertEqual(rep["link"], self.server.url("/?room=" + waiting["state"]["roomId"])
                         + ("&relay=1" if waiting["state"]["relayOnly"] else ""))
        # accept.iceServers: tsunagi's own STUN/TURN, with REST credentials.
        urls = [u for s in waiting["state"]["iceServers"]
                for u in (s["urls"] if isinstance(s["urls"], list) else [s["urls"]])]
        self.assertIn("turn:127.0.0.1:%d?transport=udp" % self.server.turn_port, urls)
        self.assert_media_flowed(rep["aMedia"], "A")
        self.assert_media_flowed(rep["bMedia"], "B")
        for side in ("a", "b"):
            v = rep[side]
            self.assertEqual(v["screen"], "call", v)
            self.assertEqual(v["callState"], "Connected", v)
            self.assertEqual(v["server"], "connected", v)
            self.assertEqual(v["state"]["connection"], "connected", v)
            self.assertGreater(v["remoteVideo"]["width"], 0, v["remoteVideo"])
            self.assertFalse(v["remoteVideo"]["paused"], v["remoteVideo"])
            # The chart has points and says in words what it draws.
            self.assertGreaterEqual(v["history"], 3, v)
            self.assertRegex(v["chartLabel"], r"^Now receiving \d+(\.\d)? [kM]bit/s, sending ")
        # The second to join makes the offer, as with the Ayame SDK.
        self.assertFalse(rep["a"]["state"]["isOfferer"])
        self.assertTrue(rep["b"]["state"]["isOfferer"])
        tag = "relay" if rep["a"]["state"]["relayOnly"] else "direct"
        self.assertEqual(rep["a"]["chat"], {"sent": ["hello from A " + tag],
                                            "received": ["hello from B " + tag]})
        self.assertEqual(rep["b"]["chat"], {"sent": ["hello from B " + tag],
                                            "received": ["hello from A " + tag]})
        self.assertIn("Them: hello from B " + tag, rep["a"]["chatLog"])
        self.assertIn("You: hello from A " + tag, rep["a"]["chatLog"])
        # A hung up: A sees the end, B is told and waits for someone new.
        self.assertEqual(rep["aEnded"]["screen"], "ended")
        self.assertEqual(rep["aEnded"]["callState"], "Ended")
        b = rep["bAfterHangup"]
        self.assertEqual(b["notice"], "The other person left the call.")
        self.assertEqual(b["callState"], "Waiting for the other person")
        self.assertEqual(b["server"], "connected")
        # tsunagi closed the room after A's bye; B registered again, alone.
        self.assertEqual(b["state"]["registrations"], 2, b)
        self.assertEqual(b["state"]["signaling"], "registered", b)

    def assert_relayed_by_tsunagi(self, pair, who, named=True):
        """The selected pair's local candidate is a relay on tsunagi's TURN.
        named: the browser names the TURN server of a relay candidate (the
        stats' url: Chromium does, Firefox does not)."""
        self.assertIsNotNone(pair, "%s: no selected candidate pair" % who)
        local = pair["local"]
        self.assertEqual(local["type"], "relay", (who, pair))
        self.assertEqual(local["address"], "127.0.0.1", (who, pair))
        self.assertTrue(self.server.in_relay_range(local["port"]),
                        "%s: relay port %s outside tsunagi's %d-%d"
                        % (who, local["port"], self.server.relay_lo, self.server.relay_hi))
        self.assertIn(local["relayProtocol"], ("udp", "tcp"), (who, pair))
        if local.get("url") is None and not named:
            return
        port = self.server.turn_port if local["relayProtocol"] == "udp" else self.server.turn_tcp_port
        self.assertIsNotNone(local["url"], (who, pair))
        m = re.match(r"^turn:127\.0\.0\.1:(\d+)\?transport=(udp|tcp)$", local["url"])
        self.assertIsNotNone(m, (who, pair))
        self.assertEqual(int(m.group(1)), port, (who, pair))

    def assert_server_clean(self):
        log = self.server.log()
        marker = tsunagi.sanitizer_report(log)
        if marker is not None:
            self.fail("sanitizer report in tsunagi's log:\n" + self.server.log_tail(80))
        self.assertTrue(self.server.running(), self.server.log_tail())


def main():
    unittest.main(verbosity=2)
