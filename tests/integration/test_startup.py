"""Start-up: --help, --version, and configuration refused before serving."""

import os
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402


class Startup(unittest.TestCase):

    def run_bin(self, *args):
        p = tsunagi.run(*args)
        marker = tsunagi.sanitizer_report(p.stderr + p.stdout)
        self.assertIsNone(marker, "sanitizer report:\n" + p.stderr)
        self.assertNotEqual(p.returncode, 66, "ASan leak report:\n" + p.stderr)
        self.assertGreaterEqual(p.returncode, 0, "killed by a signal:\n" + p.stderr)
        return p

    def assert_refused(self, p, line):
        self.assertGreater(p.returncode, 0)
        self.assertIn(line, (p.stderr + p.stdout).splitlines(), "stderr:\n" + p.stderr)
        self.assertNotIn("listening on", p.stderr)

    def test_help(self):
        p = self.run_bin("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        for opt in ("--http", "--config", "--web-root", "--threads", "--log-level", "--max-connections"):
            self.assertIn(opt, p.stdout)

    def test_version(self):
        p = self.run_bin("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^tsunagi \d+\.\d+\.\d+")

    def test_min_port_above_max_port(self):
        p = self.run_bin("--http", "127.0.0.1:0", "--min-port", "60000", "--max-port", "50000")
        self.assert_refused(p, "tsunagi: --min-port 60000 is above --max-port 50000")

    def test_port_taken(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            p = self.run_bin("--http", "127.0.0.1:%d" % port, "--turn", "127.0.0.1:0", "--threads", "2")
        self.assertGreater(p.returncode, 0)
        lines = [l for l in p.stderr.splitlines() if "--http" in l and "127.0.0.1:%d" % port in l]
        self.assertTrue(lines, "no line naming --http and the address:\n" + p.stderr)
        self.assertRegex(lines[0], r"(?i)address already in use")

    def test_unknown_option(self):
        p = self.run_bin("--http", "127.0.0.1:0", "--no-such-option")
        self.assertGreater(p.returncode, 0)
        self.assertIn("--no-such-option", p.stderr)
        self.assertNotIn("listening on", p.stderr)

    def test_bad_values(self):
        for args, culprit in ((("--threads", "0"), "--threads"), (("--threads", "abc"), "abc"),
                              (("--http", "127.0.0.1:99999"), "99999"), (("--log-level", "loud"), "loud"),
                              (("--web-root", "/nonexistent-tsunagi"), "/nonexistent-tsunagi"),
                              (("--config", "/nonexistent-tsunagi.conf"), "/nonexistent-tsunagi.conf"),
                              (("--request-timeout", "-1"), "--request-timeout")):
            p = self.run_bin("--http", "127.0.0.1:0", *args)
            self.assertGreater(p.returncode, 0, args)
            self.assertIn(culprit, p.stderr, args)
            self.assertNotIn("listening on", p.stderr, args)

    def test_config_file_error_names_the_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="tsunagi-") as f:
            f.write("# comment\nlog-level = debug\nbogus = 1\n")
            f.flush()
            p = self.run_bin("--http", "127.0.0.1:0", "--config", f.name)
        self.assertGreater(p.returncode, 0)
        self.assertRegex(p.stderr, r"%s:3\b" % f.name.replace(".", r"\."))
        self.assertIn("bogus", p.stderr)


if __name__ == "__main__":
    unittest.main()
