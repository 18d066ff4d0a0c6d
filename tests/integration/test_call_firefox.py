"""tsunagi's call page (web/) in Firefox: Firefox to Firefox, Firefox with Chromium, relay-only.

Debian's firefox-esr, driven by puppeteer-core through WebDriver BiDi
(tests/browser/firefox.mjs) with fake camera and microphone, runs the same
page scenarios as test_call_page.py (tests/browser/page_scenarios.mjs,
picked per person in tests/browser/firefox_scenarios.mjs): A starts a call, B
opens the copied link and joins (and, second in the room, makes the offer),
chat typed both ways over the data channel, a third person told the room is
full, A hangs up. Checked on each receiving side: video frames and audio
samples decoded and still growing, the chat, the call state, path and chart
on screen; between Firefox and Chromium in both directions of offer and
answer; and a relay-only call (?relay=1) whose selected pairs are relays in
tsunagi's relay port range. Skipped only when /usr/bin/firefox-esr is not
installed (scripts/deps.sh test installs it).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

import callharness as ch  # noqa: E402

FIREFOX = "/usr/bin/firefox-esr"


@unittest.skipUnless(os.path.exists(FIREFOX), FIREFOX + " is not installed (scripts/deps.sh test)")
class FirefoxCallTest(ch.CallTestCase):
    scenarios = ("firefox-page", "firefox-chromium", "chromium-firefox", "firefox-relay")
    # Four calls of about 15-25 s each, and two browsers to start.
    driver_timeout = 240

    def assert_browsers(self, rep, **expected):
        """Each person ran in the browser the scenario says (A, B and C)."""
        for who, browser in expected.items():
            ua = rep["userAgents"][who]
            if browser == "firefox":
                self.assertRegex(ua, r"Gecko/\d+ Firefox/\d+", (who, ua))
            else:
                self.assertRegex(ua, r"Chrome/\d+", (who, ua))
                self.assertNotIn("Firefox", ua, (who, ua))

    def assert_direct(self, rep):
        """Host to host on both sides, and the page says so."""
        for side in ("aMedia", "bMedia"):
            pair = rep[side]["second"]["pair"]
            self.assertEqual(pair["state"], "succeeded", (side, pair))
            self.assertEqual(pair["local"]["type"], "host", (side, pair))
            # Firefox keeps the type peer-reflexive for the other side's host
            # candidate when a connectivity check brought it before signaling
            # did; the page's path reads the type the other side signaled.
            self.assertIn(pair["remote"]["type"], ("host", "prflx"), (side, pair))
        for side in ("a", "b"):
            self.assertEqual(rep[side]["path"], "Direct (same network)", rep[side])
            self.assertEqual(rep[side]["pathKind"], "direct", rep[side])

    def assert_room_full(self, rep):
        c = rep["c"]
        self.assertEqual(c["notice"], "This room is full: two people are already in this call.")
        self.assertEqual(c["state"]["phase"], "full")
        self.assertEqual(rep["bAfterC"]["callState"], "Connected")
        self.assertIsNone(rep["bAfterC"]["notice"])

    def test_firefox_to_firefox(self):
        rep = self.report("firefox-page")
        self.assert_browsers(rep, A="firefox", B="firefox", C="firefox")
        self.assert_page_call(rep)
        self.assert_direct(rep)
        self.assert_room_full(rep)

    def test_firefox_starts_chromium_joins(self):
        # Chromium offers, Firefox answers.
        rep = self.report("firefox-chromium")
        self.assert_browsers(rep, A="firefox", B="chromium", C="firefox")
        self.assert_page_call(rep)
        self.assert_direct(rep)
        self.assert_room_full(rep)

    def test_chromium_starts_firefox_joins(self):
        # Firefox offers, Chromium answers.
        rep = self.report("chromium-firefox")
        self.assert_browsers(rep, A="chromium", B="firefox", C="firefox")
        self.assert_page_call(rep)
        self.assert_direct(rep)

    def test_firefox_relay_only(self):
        rep = self.report("firefox-relay")
        self.assert_browsers(rep, A="firefox", B="firefox")
        self.assertTrue(rep["a"]["state"]["relayOnly"])
        self.assert_page_call(rep)
        for side in ("aMedia", "bMedia"):
            pair = rep[side]["second"]["pair"]
            # Firefox does not name the TURN server of a relay candidate (no
            # url); its port in this server's random relay window says whose
            # relay it is.
            self.assert_relayed_by_tsunagi(pair, side, named=False)
            # The other side's relay, perhaps learned by a check (prflx).
            remote = pair["remote"]
            self.assertIn(remote["type"], ("relay", "prflx"), (side, pair))
            self.assertEqual(remote["address"], "127.0.0.1", (side, pair))
            self.assertTrue(self.server.in_relay_range(remote["port"]), (side, pair))
        for side in ("a", "b"):
            self.assertEqual(rep[side]["path"], "Through the TURN relay (both sides)", rep[side])
            self.assertEqual(rep[side]["pathKind"], "relay", rep[side])

    def test_no_script_errors(self):
        for name in self.scenarios:
            errors = [l for l in self.reports[name].get("console", []) if "pageerror" in l]
            self.assertEqual(errors, [], name)

    def test_tsunagi_survived(self):
        self.assert_server_clean()


if __name__ == "__main__":
    ch.main()
