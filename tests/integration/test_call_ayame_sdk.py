"""The official Ayame Web SDK (@open-ayame/ayame-web-sdk) in Chromium, through tsunagi.

Two pages with the SDK (tests/browser/www/ayame_sdk.html, the SDK's ES module
served to them under tsunagi's origin) call each other through tsunagi's
/signaling: audio and video decoded on each receiving side, a data-channel
message each way, and 'bye' to the one who stays when the other disconnects.
Then the SDK and tsunagi's own page (web/) call each other, which shows the
page speaks the protocol the way the SDK expects. tests/browser/sdk_scenarios.mjs
drives the browser.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

import callharness as ch  # noqa: E402


class AyameSdkCallTest(ch.CallTestCase):
    scenarios = ("ayame-sdk", "ayame-sdk-page")

    def assert_tsunagi_ice(self, ice_servers, who):
        """The SDK took accept.iceServers: tsunagi's STUN/TURN with credentials."""
        urls = [u for s in ice_servers for u in (s["urls"] if isinstance(s["urls"], list) else [s["urls"]])]
        self.assertIn("stun:127.0.0.1:%d" % self.server.turn_port, urls, who)
        self.assertIn("turn:127.0.0.1:%d?transport=udp" % self.server.turn_port, urls, who)
        turn = [s for s in ice_servers if "username" in s]
        self.assertTrue(turn and turn[0]["username"] and turn[0]["credential"], (who, ice_servers))

    def test_sdk_to_sdk(self):
        rep = self.report("ayame-sdk")
        self.assert_media_flowed(rep["aMedia"], "A")
        self.assert_media_flowed(rep["bMedia"], "B")
        for side in ("a", "b"):
            s = rep[side]
            self.assertEqual((s["state"], s["connectionState"]), ("connected", "connected"), s)
            self.assertIn("addstream", s["events"], s)
            self.assert_tsunagi_ice(s["iceServers"], side)
        # B made the offer and the channel; A got it through 'datachannel'.
        self.assertIn("datachannel", rep["a"]["events"])
        self.assertEqual(rep["a"]["received"], ["hello from B"])
        self.assertEqual(rep["b"]["received"], ["hello from A"])
        self.assertIn("bye", rep["bAfterBye"]["events"])

    def test_sdk_with_tsunagi_page(self):
        rep = self.report("ayame-sdk-page")
        self.assert_media_flowed(rep["aMedia"], "SDK")
        self.assert_media_flowed(rep["bMedia"], "page")
        self.assertEqual(rep["a"]["state"], "connected", rep["a"])
        self.assertEqual(rep["b"]["callState"], "Connected")
        self.assertEqual(rep["b"]["path"], "Direct (same network)")
        # The page joined second, so it made the offer, as the SDK would have.
        self.assertTrue(rep["b"]["state"]["isOfferer"])

    def test_tsunagi_survived(self):
        self.assert_server_clean()


if __name__ == "__main__":
    ch.main()
