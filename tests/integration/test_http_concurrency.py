"""Concurrency smoke: many keep-alive clients at once, all answered."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsunagi  # noqa: E402
from tsunagi import ServerTestCase, status_count  # noqa: E402

CLIENTS = 50
REQUESTS = 20
PATHS = ("/healthz", "/style.css", "/", "/healthz?q=1")


class Concurrency(ServerTestCase):

    def test_many_keepalive_clients(self):
        total = 'tsunagi_connections_total{protocol="http"}'
        m0 = self.server.metrics()

        def client(i):
            conn = self.server.http(timeout=30)
            try:
                conn.connect()
                sock = conn.sock
                for j in range(REQUESTS):
                    conn.request("GET", PATHS[(i + j) % len(PATHS)])
                    r = conn.getresponse()
                    body = r.read()
                    if r.status != 200 or not body:
                        raise AssertionError("client %d request %d: %d %r" % (i, j, r.status, body[:80]))
                    if conn.sock is not sock:
                        raise AssertionError("client %d: connection was not kept alive" % i)
            finally:
                conn.close()

        tsunagi.in_threads(client, CLIENTS)
        m1 = self.server.metrics()
        # Perhaps + 1: the first /metrics response, if counted after its body was made.
        self.assertIn(status_count(m1, 200) - status_count(m0, 200),
                      (CLIENTS * REQUESTS, CLIENTS * REQUESTS + 1))
        self.assertEqual(m1[total] - m0[total], CLIENTS + 1)  # + the second /metrics


if __name__ == "__main__":
    unittest.main()
