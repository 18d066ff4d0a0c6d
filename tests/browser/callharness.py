"""Shared pieces of the browser call tests (tests/integration/test_call_*.py).

One tsunagi per test file, as the TURN tests start it (tests/turn/turnharness.py:
HTTP and TURN on 127.0.0.1 port 0, relays on 127.0.0.1 in a random port
window, --allow-loopback-peers so TURN may relay between two browsers on the
same machine) and serving the repository's web/ as its web root. One Node
process, tests/browser/call_driver.mjs, drives one Chromium through every
scenario the test class names and prints one JSON report per scenario; the
tests judge the reports.
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
        raise AssertionError("could not drive Chromium (exit %s): %s\n%s"
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
        # Chromium's fake microphone beeps: decoded and played out, that is energy.
        self.assertGreater(a2["totalAudioEnergy"], 0, (who, a2))

    def assert_relayed_by_tsunagi(self, pair, who):
        """The selected pair's local candidate is a relay on tsunagi's TURN."""
        self.assertIsNotNone(pair, "%s: no selected candidate pair" % who)
        local = pair["local"]
        self.assertEqual(local["type"], "relay", (who, pair))
        self.assertEqual(local["address"], "127.0.0.1", (who, pair))
        self.assertTrue(self.server.in_relay_range(local["port"]),
                        "%s: relay port %s outside tsunagi's %d-%d"
                        % (who, local["port"], self.server.relay_lo, self.server.relay_hi))
        self.assertIn(local["relayProtocol"], ("udp", "tcp"), (who, pair))
        port = self.server.turn_port if local["relayProtocol"] == "udp" else self.server.turn_tcp_port
        # Chromium names the TURN server it allocated on.
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
