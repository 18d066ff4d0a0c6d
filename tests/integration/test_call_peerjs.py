"""The official peerjs client (1.5.5) in Chromium, through tsunagi's PeerJS server.

Two pages with peerjs (tests/browser/www/peerjs.html, the client served to
them under tsunagi's origin) connect to tsunagi's /peerjs (A with its own id,
B with an id fetched from the server), B calls A and opens a data
connection, with the ICE servers of tsunagi's /api/ice-servers: audio and
video decoded on each receiving side and a message each way.
tests/browser/peerjs_scenarios.mjs drives the browser.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

import callharness as ch  # noqa: E402


class PeerJsCallTest(ch.CallTestCase):
    scenarios = ("peerjs",)

    def test_peerjs_call(self):
        rep = self.report("peerjs")
        self.assertEqual(rep["a"]["id"], rep["idA"])
        self.assertTrue(rep["idB"], rep)
        self.assertNotEqual(rep["idA"], rep["idB"])
        self.assert_media_flowed(rep["aMedia"], "A")
        self.assert_media_flowed(rep["bMedia"], "B")
        for side in ("a", "b"):
            s = rep[side]
            self.assertEqual(s["errors"], [], s)
            self.assertTrue(s["dataOpen"], s)
            self.assertIn("stream", s["events"], s)
        self.assertIn("call", rep["a"]["events"])
        self.assertIn("connection", rep["a"]["events"])
        self.assertEqual(rep["a"]["received"], ["hello from B"])
        self.assertEqual(rep["b"]["received"], ["hello from A"])

    def test_tsunagi_survived(self):
        self.assert_server_clean()


if __name__ == "__main__":
    ch.main()
