"""tsunagi's TURN server against aioice (python3-aioice), an ICE agent others wrote.

Two aioice agents in one event loop: agent A has one host candidate on
127.0.0.1 and no TURN server; agent B has no host address at all and gathers
only a relay candidate from tsunagi (over UDP or TCP). B hands A only that
relay candidate, so every ICE check and every data packet must go through
tsunagi's relay. The agents connect and send data both ways.

Credentials: a static user (--user), and the TURN REST API credentials that
tsunagi's own /api/ice-servers hands out. Also: both agents behind TURN
(relay to relay, one over UDP, one over TCP), and a wrong password.

aioice gathers host candidates on every interface except 127.0.0.1; its
address list is replaced here so that A binds 127.0.0.1 only and B binds
nothing but its TURN client socket.
"""

import asyncio
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "turn"))

import turnharness as th  # noqa: E402

import aioice  # noqa: E402
from aioice import ice  # noqa: E402

USER, PASSWORD = "alice", "wonderland"
MESSAGES = 20


def host_addresses(addrs):
    """Make aioice gather host candidates on addrs only (its next gather)."""
    ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(addrs)


async def gather(addrs, **kw):
    host_addresses(addrs)
    conn = aioice.Connection(use_ipv6=False, **kw)
    await asyncio.wait_for(conn.gather_candidates(), 15)
    return conn


async def exchange(a, b):
    for c in b.local_candidates:
        await a.add_remote_candidate(c)
    await a.add_remote_candidate(None)
    for c in a.local_candidates:
        await b.add_remote_candidate(c)
    await b.add_remote_candidate(None)
    a.remote_username, a.remote_password = b.local_username, b.local_password
    b.remote_username, b.remote_password = a.local_username, a.local_password


async def talk(a, b):
    """Send MESSAGES each way; the payloads received, in order."""
    got_b, got_a = [], []
    for i in range(MESSAGES):
        await a.send(b"a->b %d " % i + os.urandom(i * 50))
        await b.send(b"b->a %d " % i)
    for _ in range(MESSAGES):
        got_b.append(await asyncio.wait_for(b.recv(), 5))
        got_a.append(await asyncio.wait_for(a.recv(), 5))
    return got_a, got_b


def relay_of(conn):
    relays = [c for c in conn.local_candidates if c.type == "relay"]
    return relays


class AioiceTest(th.TurnTestCase):
    server_kwargs = {"users": ("%s:%s" % (USER, PASSWORD),), "loopback": True}

    def run_async(self, coro, timeout=40):
        return asyncio.run(asyncio.wait_for(coro, timeout))

    def check_relay_candidate(self, conn, transport):
        relays = relay_of(conn)
        self.assertEqual(len(relays), 1, conn.local_candidates)
        r = relays[0]
        self.assertEqual(r.host, "127.0.0.1")
        self.assertTrue(self.server.in_relay_range(r.port),
                        "relay port %d outside %d-%d" % (r.port, self.server.relay_lo, self.server.relay_hi))
        # The related address is the client's address as tsunagi saw it
        # (XOR-MAPPED-ADDRESS of the Allocate answer).
        self.assertEqual(r.related_address, "127.0.0.1")
        self.assertTrue(r.related_port, r)
        return r

    async def relay_pair(self, transport, user, password):
        a = await gather(["127.0.0.1"], ice_controlling=True)
        b = await gather([], ice_controlling=False, turn_server=("127.0.0.1", self.port_for(transport)),
                         turn_username=user, turn_password=password, turn_transport=transport,
                         transport_policy=ice.TransportPolicy.RELAY)
        try:
            self.assertEqual([c.type for c in a.local_candidates], ["host"])
            self.assertEqual([c.type for c in b.local_candidates], ["relay"])
            relay = self.check_relay_candidate(b, transport)
            await exchange(a, b)
            await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 20)
            pa, pb = a._nominated.get(1), b._nominated.get(1)
            self.assertIsNotNone(pa)
            self.assertIsNotNone(pb)
            # A reaches B at B's relayed address; B's pair is its relay one.
            self.assertEqual(pa.remote_addr, (relay.host, relay.port))
            self.assertEqual(pb.local_candidate.type, "relay")
            self.assertEqual(pb.remote_addr, (a.local_candidates[0].host, a.local_candidates[0].port))
            got_a, got_b = await talk(a, b)
            return got_a, got_b
        finally:
            await a.close()
            await b.close()

    def port_for(self, transport):
        return self.server.turn_port if transport == "udp" else self.server.turn_tcp_port

    def check_talk(self, got_a, got_b):
        self.assertEqual(len(got_b), MESSAGES)
        self.assertEqual(len(got_a), MESSAGES)
        for i in range(MESSAGES):
            self.assertTrue(got_b[i].startswith(b"a->b %d " % i), got_b[i][:20])
            self.assertEqual(len(got_b[i]), len(b"a->b %d " % i) + i * 50)
            self.assertEqual(got_a[i], b"b->a %d " % i)

    def test_udp_static_user(self):
        self.check_talk(*self.run_async(self.relay_pair("udp", USER, PASSWORD)))

    def test_tcp_static_user(self):
        self.check_talk(*self.run_async(self.relay_pair("tcp", USER, PASSWORD)))

    def test_udp_ice_servers_credentials(self):
        user, password, urls = th.turn_credentials(self.server.ice_servers())
        self.assertIn("turn:127.0.0.1:%d?transport=udp" % self.server.turn_port, urls)
        self.check_talk(*self.run_async(self.relay_pair("udp", user, password)))

    def test_tcp_ice_servers_credentials(self):
        user, password, urls = th.turn_credentials(self.server.ice_servers())
        self.assertIn("turn:127.0.0.1:%d?transport=tcp" % self.server.turn_tcp_port, urls)
        self.check_talk(*self.run_async(self.relay_pair("tcp", user, password)))

    def test_relay_to_relay(self):
        """Both agents behind tsunagi, A over UDP, B over TCP: two allocations
        that relay to each other."""
        user, password, _ = th.turn_credentials(self.server.ice_servers())

        async def go():
            a = await gather([], ice_controlling=True, turn_server=("127.0.0.1", self.server.turn_port),
                             turn_username=user, turn_password=password, turn_transport="udp",
                             transport_policy=ice.TransportPolicy.RELAY)
            b = await gather([], ice_controlling=False,
                             turn_server=("127.0.0.1", self.server.turn_tcp_port),
                             turn_username=USER, turn_password=PASSWORD, turn_transport="tcp",
                             transport_policy=ice.TransportPolicy.RELAY)
            try:
                ra = self.check_relay_candidate(a, "udp")
                rb = self.check_relay_candidate(b, "tcp")
                self.assertNotEqual(ra.port, rb.port)
                await exchange(a, b)
                await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 20)
                self.assertEqual(a._nominated[1].remote_addr, (rb.host, rb.port))
                self.assertEqual(b._nominated[1].remote_addr, (ra.host, ra.port))
                return await talk(a, b)
            finally:
                await a.close()
                await b.close()

        self.check_talk(*self.run_async(go()))

    def test_wrong_password_gets_no_relay(self):
        async def go():
            host_addresses([])
            conn = aioice.Connection(ice_controlling=True, use_ipv6=False,
                                     turn_server=("127.0.0.1", self.server.turn_port),
                                     turn_username=USER, turn_password="not-" + PASSWORD,
                                     turn_transport="udp",
                                     transport_policy=ice.TransportPolicy.RELAY)
            try:
                await asyncio.wait_for(conn.gather_candidates(), 15)
                return conn.local_candidates
            finally:
                await conn.close()

        try:
            candidates = self.run_async(go())
        except asyncio.TimeoutError:
            self.fail("aioice's Allocate with a wrong password was never answered")
        except Exception as e:  # aioice raises TransactionFailed(401)
            self.assertIn("401", str(e), repr(e))
            return
        self.fail("a wrong password gave candidates %r" % (candidates,))


if __name__ == "__main__":
    unittest.main(verbosity=2)
