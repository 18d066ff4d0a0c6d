"""Deployment: what `make install` lays out (binary, web root, example
configuration, operations guide, systemd unit and its user) works from where
it lands, and the unit passes systemd's own checks.

Installs the build under test (the directory of $TSUNAGI_BIN) into temporary
folders with `cmake --install`, as `make install` does for build/.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402
from tsunagi import Server  # noqa: E402

BUILD_DIR = os.path.dirname(os.path.abspath(tsunagi.BIN))
UNIT = "lib/systemd/system/tsunagi.service"


def install(prefix, destdir=None):
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir is not None:
        env["DESTDIR"] = destdir
    r = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], env=env,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("cmake --install failed:\n%s%s" % (r.stdout, r.stderr))


def unit_settings(text):
    """[Service] and [Unit] settings as {key: [values]} (comments dropped)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


class Install(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tsunagi-deploy-")
        cls.prefix = os.path.join(cls.tmp, "usr", "local")
        install(cls.prefix)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, rel):
        return os.path.join(self.prefix, rel)

    def test_layout(self):
        for rel in ("bin/tsunagi", "share/tsunagi/web/index.html",
                    "share/doc/tsunagi/tsunagi.conf.example", "share/doc/tsunagi/operations.md",
                    UNIT, "lib/sysusers.d/tsunagi.conf"):
            self.assertTrue(os.path.isfile(self.path(rel)), rel + " not installed")
        self.assertTrue(os.access(self.path("bin/tsunagi"), os.X_OK))
        with open(self.path("lib/sysusers.d/tsunagi.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^u tsunagi ")

    def test_unit_runs_the_installed_binary(self):
        with open(self.path(UNIT)) as f:
            s = unit_settings(f.read())
        self.assertEqual(s["ExecStart"],
                         [self.path("bin/tsunagi") + " --config /etc/tsunagi/tsunagi.conf"])
        self.assertEqual(s["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(s["KillSignal"], ["SIGTERM"])
        self.assertEqual(s["User"], ["tsunagi"])
        self.assertEqual(s["LimitNOFILE"], ["1048576"])
        # No privilege by default: the default ports are all above 1023.
        self.assertEqual(s["CapabilityBoundingSet"], [""])
        self.assertEqual(s["AmbientCapabilities"], [""])
        for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "MemoryDenyWriteExecute",
                    "LockPersonality", "ProtectKernelTunables", "ProtectKernelModules"):
            self.assertEqual(s[key], ["yes"], key)
        self.assertEqual(s["ProtectSystem"], ["strict"])
        # systemd must wait longer than the longest drain before SIGKILL.
        stop = int(s["TimeoutStopSec"][0])
        self.assertGreater(stop, 5)  # the default --drain-timeout

    def test_unit_passes_systemd_analyze(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        # verify exits 0 even for unknown keys: its warnings are the verdict.
        r = subprocess.run(["systemd-analyze", "verify", self.path(UNIT)], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout + r.stderr, "")

    def test_installed_binary_serves_the_installed_web_root(self):
        # Started outside the source tree, the binary finds ../share/tsunagi/web.
        srv = Server(cwd=self.tmp)
        srv.args[0] = self.path("bin/tsunagi")
        try:
            srv.start()
            status, _, body = srv.request("GET", "/")
            self.assertEqual(status, 200)
            with open(self.path("share/tsunagi/web/index.html"), "rb") as f:
                self.assertEqual(body, f.read())
            self.assertIn("web root " + self.path("share/tsunagi/web"), srv.log())
            srv.stop()
        finally:
            srv.cleanup()

    def test_example_config_runs_as_is(self):
        # Every line commented out: the defaults, which must start.
        example = self.path("share/doc/tsunagi/tsunagi.conf.example")
        srv = Server("--config", example, cwd=self.tmp)
        srv.args[0] = self.path("bin/tsunagi")
        try:
            srv.start()
            srv.stop()
        finally:
            srv.cleanup()


class InstallDestdir(unittest.TestCase):

    def test_destdir_keeps_the_final_paths(self):
        tmp = tempfile.mkdtemp(prefix="tsunagi-destdir-")
        try:
            install("/opt/tsunagi", destdir=tmp)
            unit = os.path.join(tmp, "opt/tsunagi", UNIT)
            with open(unit) as f:
                text = f.read()
            # Staged under DESTDIR, but pointing where the package will put it.
            self.assertRegex(text, r"(?m)^ExecStart=/opt/tsunagi/bin/tsunagi --config ")
            self.assertNotIn(tmp, text)
            self.assertTrue(os.path.isfile(os.path.join(tmp, "opt/tsunagi/bin/tsunagi")))
            self.assertTrue(os.path.isfile(
                os.path.join(tmp, "opt/tsunagi/share/doc/tsunagi/tsunagi.conf.example")))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
