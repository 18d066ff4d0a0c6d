"""tsunagi's /echo against the npm `ws` client (tests/node_modules/ws).

Each test runs tests/interop/ws_echo_client.mjs against a ws:// or wss://
URL; the script checks every echo byte for byte, pings and closes, and prints
a JSON report that is asserted here check by check.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "interop"))

import wsinterop  # noqa: E402


class NodeWsTest(wsinterop.EchoTestCase):
    server_kwargs = {"tls": True}

    def run_client(self, url, *flags):
        rc, out, err = wsinterop.run_node("ws_echo_client.mjs", url, *flags, timeout=70)
        report = wsinterop.last_json(out)
        for c in report["checks"]:
            with self.subTest(check=c["name"]):
                self.assertTrue(c["ok"], c["detail"])
        self.assertEqual(report["failures"], [], err[-2000:])
        self.assertEqual(rc, 0, err[-2000:])
        # Every size, both opcodes, 8 MiB, burst, pings, close: nothing skipped.
        self.assertEqual(len(report["checks"]), 8 * 3 + 3 + 1 + 3 + 2)
        return report

    def test_ws_with_permessage_deflate(self):
        report = self.run_client(self.server.ws_url())
        self.assertEqual(report["extensions"], "permessage-deflate")
        self.assertTrue(report["responseExtensions"].startswith("permessage-deflate"))
        self.assertIsNone(report["tls"])

    def test_ws_without_permessage_deflate(self):
        report = self.run_client(self.server.ws_url(), "--no-deflate")
        self.assertEqual(report["extensions"], "")
        self.assertIsNone(report["responseExtensions"])

    def test_wss_with_permessage_deflate(self):
        report = self.run_client(self.server.wss_url(), "--insecure")
        self.assertEqual(report["extensions"], "permessage-deflate")
        self.assertIn(report["tls"], ("TLSv1.2", "TLSv1.3"))

    def test_wss_without_permessage_deflate(self):
        report = self.run_client(self.server.wss_url(), "--insecure", "--no-deflate")
        self.assertEqual(report["extensions"], "")
        self.assertIn(report["tls"], ("TLSv1.2", "TLSv1.3"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
