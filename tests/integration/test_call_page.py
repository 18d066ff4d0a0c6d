"""tsunagi's own call page (web/) in Chromium, two people calling through tsunagi.

Two browser contexts click through the page as people would (camera box,
Start, the copied link, Join, chat box, Hang up) against tsunagi's /signaling
(Ayame protocol), with Chromium's fake camera and microphone. Checked: audio
and video decoded on each receiving side and still flowing, chat both ways
over the data channel, the visible call state, path and chart; a relay-only
call (?relay=1) whose selected candidate pair is a relay on tsunagi's TURN;
a third person told the room is full; hang-up seen by the other side; a cut
signaling socket that reconnects by itself while the call goes on; a denied
microphone; a 360 px wide screen. tests/browser/page_scenarios.mjs drives
the browser.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

import callharness as ch  # noqa: E402


class CallPageTest(ch.CallTestCase):
    scenarios = ("page", "page-relay", "page-reconnect", "page-denied", "page-phone")

    def test_direct_call(self):
        rep = self.report("page")
        self.assert_page_call(rep)
        for side in ("aMedia", "bMedia"):
            pair = rep[side]["second"]["pair"]
            self.assertEqual((pair["local"]["type"], pair["remote"]["type"]), ("host", "host"), pair)
        for side in ("a", "b"):
            self.assertEqual(rep[side]["path"], "Direct (same network)")
            self.assertEqual(rep[side]["pathKind"], "direct")

    def test_relay_call(self):
        rep = self.report("page-relay")
        self.assertTrue(rep["a"]["state"]["relayOnly"])
        self.assert_page_call(rep)
        for side in ("aMedia", "bMedia"):
            self.assert_relayed_by_tsunagi(rep[side]["second"]["pair"], side)
            self.assertEqual(rep[side]["second"]["pair"]["remote"]["type"], "relay")
        for side in ("a", "b"):
            self.assertEqual(rep[side]["path"], "Through the TURN relay (both sides)")
            self.assertEqual(rep[side]["pathKind"], "relay")

    def test_room_full(self):
        rep = self.report("page")
        c = rep["c"]
        self.assertEqual(c["notice"], "This room is full: two people are already in this call.")
        self.assertEqual(c["state"]["phase"], "full")
        self.assertEqual(c["screen"], "home")
        # The two in the call did not notice the third.
        self.assertEqual(rep["bAfterC"]["callState"], "Connected")
        self.assertIsNone(rep["bAfterC"]["notice"])

    def test_signaling_reconnects_during_call(self):
        rep = self.report("page-reconnect")
        # Cut once, the first reconnection refused, the second let through.
        self.assertEqual((rep["routed"], rep["refused"]), (3, 1), rep)
        lost = rep["aLost"]
        self.assertRegex(lost["notice"], r"^Lost the connection to the server\. Reconnecting in \d+ s"
                         r" — the call goes on meanwhile\.$")
        self.assertRegex(lost["server"], r"^lost, reconnecting in \d+ s$")
        self.assertEqual(lost["callState"], "Connected")
        # Media kept flowing to B while A had no signaling.
        vid = lambda s: s["inbound"]["video"]["framesDecoded"]  # noqa: E731
        self.assertGreater(vid(rep["during"]), vid(rep["before"]))
        self.assertGreater(vid(rep["after"]), vid(rep["during"]))
        self.assertEqual(rep["bDuring"]["callState"], "Connected")
        self.assertIsNone(rep["bDuring"]["notice"], rep["bDuring"])
        for side in ("aBack", "bBack"):
            v = rep[side]
            self.assertEqual((v["server"], v["callState"]), ("connected", "Connected"), v)
            self.assertEqual(v["state"]["signaling"], "registered", v)
        self.assertEqual(rep["aBack"]["notice"], "Reconnected to the server.")
        self.assertEqual(rep["aAfter"]["chat"]["received"], ["hello from B after reconnect"])
        self.assertEqual(rep["after"]["connectionState"], "connected")
        # A came back second: it restarted ICE with an offer on the same
        # connection (B had made the first offer), and B answered it.
        self.assertEqual(rep["aAfter"]["state"]["offers"], {"sent": 1, "received": 1})
        self.assertEqual(rep["bBack"]["state"]["offers"], {"sent": 1, "received": 1})
        self.assertEqual(rep["aAfter"]["state"]["connection"], "connected")

    def test_microphone_denied(self):
        rep = self.report("page-denied")
        n = rep["notice"]
        self.assertTrue(n["notice"].startswith("The browser was not allowed to use your microphone"), n)
        self.assertEqual(n["screen"], "home")
        self.assertEqual(rep["buttons"], ["Try again", "Join without microphone"])
        # Listening only: in the room, waiting, no microphone to mute.
        v = rep["listenOnly"]
        self.assertEqual((v["screen"], v["callState"]), ("call", "Waiting for the other person"), v)

    def test_phone_screen(self):
        rep = self.report("page-phone")
        self.assertEqual(rep["innerWidth"], 360)
        self.assertLessEqual(rep["scrollWidth"], 360, rep)
        self.assertEqual(rep["wide"], [])
        for b in ("hangup", "mute", "camera", "copy"):
            self.assertGreaterEqual(rep[b]["h"], 44, (b, rep[b]))
            self.assertLessEqual(rep[b]["right"], 360, (b, rep[b]))

    def test_no_script_errors(self):
        for name in self.scenarios:
            errors = [l for l in self.reports[name].get("console", []) if "pageerror" in l]
            self.assertEqual(errors, [], name)

    def test_tsunagi_survived(self):
        self.assert_server_clean()


if __name__ == "__main__":
    ch.main()
