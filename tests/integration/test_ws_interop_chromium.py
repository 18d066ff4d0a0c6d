"""tsunagi's /echo against Chromium's WebSocket (Debian's chromium + playwright-core).

tsunagi serves the test page itself (--web-root tests/interop/www), so the
page and /echo share an origin, over http:// and https://. The page sends text
and binary messages (small, 8 MiB, a burst), checks every echo by SHA-256, and
closes with 1000; tests/interop/chromium_ws_echo.mjs drives it and prints the
page's report, asserted here check by check.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "interop"))

import tsunagi  # noqa: E402
import wsinterop  # noqa: E402

WWW = os.path.join(wsinterop.HERE, "www")


def run_page(url):
    rc, out, err = wsinterop.run_node("chromium_ws_echo.mjs", url, timeout=75)
    result = wsinterop.last_json(out)
    if rc != 0 or "error" in result:
        raise AssertionError("could not drive Chromium (exit %d): %s\n%s"
                             % (rc, result.get("error"), err[-3000:]))
    return result


class ChromiumEchoTest(wsinterop.EchoTestCase):
    server_args = ("--web-root", WWW)
    server_kwargs = {"tls": True}

    def check_report(self, result):
        self.assertEqual(result["pageStatus"], 200)
        report = result["report"]
        self.assertTrue(report["opened"], report)
        # Chromium always offers permessage-deflate; tsunagi accepts it.
        self.assertTrue(report["extensions"].startswith("permessage-deflate"), report["extensions"])
        for c in report["checks"]:
            with self.subTest(check=c["name"]):
                self.assertTrue(c["ok"], c["detail"])
        self.assertEqual(report["failures"], [], result.get("console"))
        self.assertEqual(len(report["checks"]), 8 * 3 + 3 + 1 + 2)
        return report

    def test_ws_echo(self):
        report = self.check_report(run_page(self.server.url("/")))
        self.assertTrue(report["url"].startswith("ws://"))

    def test_wss_echo(self):
        report = self.check_report(run_page(self.server.https_url("/")))
        self.assertTrue(report["url"].startswith("wss://"))


class ChromiumOriginTest(wsinterop.EchoTestCase):
    """A page whose origin is not on --allowed-origin cannot open /echo."""

    server_args = ("--web-root", WWW, "--allowed-origin", "http://good.example")

    def test_foreign_page_is_refused(self):
        before = tsunagi.status_count(self.server.metrics(), 403)
        result = run_page(self.server.url("/"))
        self.assertEqual(result["pageStatus"], 200)
        report = result["report"]
        self.assertFalse(report["opened"], "Chromium opened /echo from http://127.0.0.1")
        self.assertEqual(report["close"]["code"], 1006, report)
        # The refusal was tsunagi's 403, not some other failure.
        self.assertEqual(tsunagi.status_count(self.server.metrics(), 403), before + 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
