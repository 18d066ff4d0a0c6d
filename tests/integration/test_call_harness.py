"""The browser call tests' own waits (tests/browser/lib.mjs) in Chromium.

playwright's waitForFunction does not await an async predicate: the Promise
it gets back is truthy, so the wait ends at once. mediaFlow's wait for
decoded media was such a predicate and never waited; the call tests then
sampled a connection that had just connected (a few audio packets, no video
yet) and failed under load. Here a call within one page
(tests/browser/www/loopback.html) is sampled from the moment it starts: the
first sample must already show decoded video and audio. And waits for
something that never comes must run out their time and fail.
tests/browser/harness_scenarios.mjs drives the browser.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

import callharness as ch  # noqa: E402


class HarnessWaitTest(ch.CallTestCase):
    scenarios = ("harness-waits",)

    def test_media_flow_waits_for_decoded_media(self):
        rep = self.report("harness-waits")
        self.assertIsNone(rep["loopError"], rep)
        self.assert_media_flowed(rep["media"], "loopback")

    def test_waits_time_out(self):
        rep = self.report("harness-waits")
        for name, limit in (("noCall", 1500), ("asyncNever", 1000)):
            r = rep[name]
            self.assertIsNotNone(r["error"], (name, "returned instead of timing out", r))
            self.assertIn("waiting for", r["error"], (name, r))
            self.assertGreaterEqual(r["ms"], limit, (name, r))
        self.assertIn("decoded audio and video", rep["noCall"]["error"])

    def test_async_predicate_value(self):
        self.assertEqual(self.report("harness-waits")["asyncThird"], 3)

    def test_tsunagi_survived(self):
        self.assert_server_clean()


if __name__ == "__main__":
    ch.main()
