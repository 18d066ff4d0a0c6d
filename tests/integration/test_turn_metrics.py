"""/metrics reports STUN/TURN: Binding requests, allocations open and made,
authentication failures, relayed packets, summed over the workers."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "turn"))
import stunclient as sc  # noqa: E402
import turnharness as th  # noqa: E402


class TurnMetricsTest(th.TurnTestCase):
    server_kwargs = dict(users=("alice:wonder",), loopback=True)

    def turn_metrics(self):
        m = self.server.metrics()
        return {k: v for k, v in m.items() if k.startswith(("tsunagi_turn", "tsunagi_stun"))}

    def test_counters_move(self):
        before = self.turn_metrics()
        for name in ("tsunagi_turn_allocations", "tsunagi_turn_allocations_total",
                     "tsunagi_stun_binding_requests_total", "tsunagi_turn_relayed_packets_total",
                     "tsunagi_turn_auth_failures_total"):
            self.assertIn(name, before)

        c = sc.Client(self.server.turn_port, user="alice", password="wonder")
        try:
            self.assertEqual(c.binding().cls, sc.SUCCESS)
            self.assertEqual(c.allocate().cls, sc.SUCCESS)
            mid = self.turn_metrics()
            self.assertEqual(mid["tsunagi_stun_binding_requests_total"],
                             before["tsunagi_stun_binding_requests_total"] + 1)
            self.assertEqual(mid["tsunagi_turn_allocations"], before["tsunagi_turn_allocations"] + 1)
            self.assertEqual(mid["tsunagi_turn_allocations_total"],
                             before["tsunagi_turn_allocations_total"] + 1)
            self.assertEqual(c.refresh(lifetime=0).cls, sc.SUCCESS)
        finally:
            c.close()
        bad = sc.Client(self.server.turn_port, user="alice", password="wrong")
        try:
            r = bad.allocate()
            self.assertEqual((r.cls, r.code()), (sc.ERROR, 401))
        finally:
            bad.close()
        after = self.turn_metrics()
        self.assertEqual(after["tsunagi_turn_allocations"], before["tsunagi_turn_allocations"])
        self.assertGreater(after["tsunagi_turn_auth_failures_total"],
                           before["tsunagi_turn_auth_failures_total"])


if __name__ == "__main__":
    unittest.main()
