"""tsunagi's STUN/TURN server against a raw client: what it must refuse.

The client is tests/turn/stunclient.py, written from RFC 8489 and RFC 8656
(not from tsunagi's codec). Each class starts its own tsunagi with TURN on
127.0.0.1 port 0 and relays in a random 200-port window; every socket is on
127.0.0.1.

Checked: Binding over UDP and TCP; the long-term credential dance (401 with
REALM and NONCE, wrong password, unknown user, REST API credentials, a nonce
the server did not make); the peer filter (403 for loopback and private
peers, nothing relayed to them); quotas (486 per user, 508 in all);
allocation errors (400 for a TCP relay over UDP, 437, 441, 442,
retransmissions); garbage that must get no
answer; the amplification bound on answers to unauthenticated requests; the
data path (Send/Data indications, channels, over UDP and TCP); and deleting
an allocation while its peer is sending to it.

438 (Stale Nonce) with a server started with --stale-nonce 1, so that a
nonce goes stale during the run (a nonce cannot be forged to look old: it
carries an HMAC under a per-process key).
"""

import errno
import os
import random
import select
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "turn"))

import stunclient as sc  # noqa: E402
import turnharness as th  # noqa: E402

SECRET = "negative-s3cret"
USERS = ("alice:wonderland", "bob:builder")


def attr_size(n):
    return 4 + sc.pad4(n)


class Base(th.TurnTestCase):
    def setUp(self):
        self.closers = []

    def tearDown(self):
        for c in self.closers:
            c.close()

    def client(self, proto="udp", user="alice", password="wonderland", **kw):
        c = sc.Client(self.server.turn_port if proto == "udp" else self.server.turn_tcp_port,
                      proto, user=user, password=password, **kw)
        self.closers.append(c)
        return c

    def peer(self):
        p = sc.udp_peer()
        self.closers.append(p)
        return p

    def assert_success(self, r, what=""):
        self.assertEqual(r.cls, sc.SUCCESS, "%s: %r" % (what, r))

    def assert_error(self, r, code, what=""):
        self.assertEqual((r.cls, r.code()), (sc.ERROR, code), "%s: %r" % (what, r))

    def allocated(self, c, **kw):
        r = c.allocate(**kw)
        self.assert_success(r, "Allocate")
        self.assertTrue(r.integrity_ok, "the Allocate success has no valid MESSAGE-INTEGRITY: %r" % r)
        ip, port = r.xor_addr(sc.XOR_RELAYED_ADDRESS)
        self.assertEqual(ip, "127.0.0.1")
        self.assertTrue(self.server.in_relay_range(port),
                        "relay port %d outside %d-%d" % (port, self.server.relay_lo, self.server.relay_hi))
        return r, (ip, port)

    def assert_binding_works(self, proto="udp"):
        c = self.client(proto)
        r = c.binding()
        self.assert_success(r, "Binding")
        self.assertEqual(r.xor_addr(sc.XOR_MAPPED_ADDRESS), c.local())


# ===================================================================== #


class AuthAndFilterTest(Base):
    """Default peer filter (loopback and private peers denied), two static
    users and a REST API secret."""

    server_kwargs = {"users": USERS, "secret": SECRET}

    # ------------------------------------------------------- Binding --

    def test_binding_udp(self):
        c = self.client()
        m = sc.Message(sc.BINDING)
        r = c.transact(m)
        self.assert_success(r)
        self.assertEqual(r.tid, m.tid)
        self.assertEqual(r.xor_addr(sc.XOR_MAPPED_ADDRESS), c.local())
        if r.has(sc.FINGERPRINT):
            self.assertTrue(r.fingerprint_ok, r)

    def test_binding_tcp(self):
        c = self.client("tcp")
        for _ in range(3):  # several on one connection
            r = c.binding()
            self.assert_success(r)
            self.assertEqual(r.xor_addr(sc.XOR_MAPPED_ADDRESS), c.local())

    def test_binding_tcp_split_and_coalesced(self):
        """Framing over TCP: a request in two writes, and two in one."""
        c = self.client("tcp")
        m1, m2, m3 = sc.Message(sc.BINDING), sc.Message(sc.BINDING), sc.Message(sc.BINDING)
        raw = m1.encode()
        c.t.send_raw(raw[:7])
        time.sleep(0.1)
        c.t.send_raw(raw[7:])
        self.assertEqual(sc.parse(c.t.recv_frame()).tid, m1.tid)
        c.t.send_raw(m2.encode() + m3.encode())
        got = {sc.parse(c.t.recv_frame()).tid, sc.parse(c.t.recv_frame()).tid}
        self.assertEqual(got, {m2.tid, m3.tid})

    def test_binding_with_fingerprint_is_answered_with_one(self):
        """ICE relies on FINGERPRINT (RFC 8445 7.2.3): a request that has
        one gets an answer that has a valid one."""
        c = self.client()
        r = c.transact(sc.Message(sc.BINDING), fingerprint=True)
        self.assertTrue(r.has(sc.FINGERPRINT), r)
        self.assertTrue(r.fingerprint_ok, r)

    def test_rfc3489_binding(self):
        """A classic RFC 3489 request (no magic cookie) gets MAPPED-ADDRESS
        and its whole 16-byte transaction id back (RFC 8489 12)."""
        c = self.client()
        tid16 = os.urandom(16)
        c.t.send_raw(struct.pack("!HH", 0x0001, 0) + tid16)
        data = c.t.recv_frame()
        t, length = struct.unpack("!HH", data[:4])
        self.assertEqual(t, 0x0101, data)
        self.assertEqual(data[4:20], tid16)
        self.assertEqual(20 + length, len(data))
        # Attributes: find MAPPED-ADDRESS (not XOR-ed).
        off, mapped = 20, None
        while off + 4 <= len(data):
            at, al = struct.unpack("!HH", data[off:off + 4])
            if at == sc.MAPPED_ADDRESS:
                mapped = sc.parse_address(data[off + 4:off + 4 + al])
            off += 4 + sc.pad4(al)
        self.assertEqual(mapped, c.local())

    # ---------------------------------------------------- credentials --

    def test_allocate_without_credentials_is_401(self):
        c = self.client()
        m = sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))
        r = c.transact(m)
        self.assert_error(r, 401)
        self.assertEqual(r.text(sc.REALM), th.REALM)
        nonce = r.get(sc.NONCE)
        self.assertTrue(nonce, r)
        self.assertFalse(r.has(sc.XOR_RELAYED_ADDRESS), r)
        self.assertFalse(r.has(sc.MESSAGE_INTEGRITY), r)
        # Two challenges, two usable nonces; neither creates an allocation:
        # a second unauthenticated Allocate is 401 again, not 437.
        self.assert_error(c.transact(sc.Message(sc.ALLOCATE).add(
            sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))), 401)

    def test_wrong_password_is_401(self):
        c = self.client(password="not-the-password")
        r = c.allocate()
        self.assert_error(r, 401, "wrong password")
        # RFC 8489 9.2.4: REALM and NONCE, no MESSAGE-INTEGRITY.
        self.assertEqual(r.text(sc.REALM), th.REALM)
        self.assertTrue(r.has(sc.NONCE))
        self.assertFalse(r.has(sc.MESSAGE_INTEGRITY), r)
        # The 5-tuple holds nothing: the right password now allocates.
        c.password = "wonderland"
        c.key = sc.long_term_key(c.user, c.realm, c.password)
        self.allocated(c)

    def test_unknown_user_is_401(self):
        c = self.client(user="mallory", password="x")
        self.assert_error(c.allocate(), 401, "unknown user")

    def test_credentials_of_another_user_are_401(self):
        """bob's name with alice's password."""
        c = self.client(user="bob", password="wonderland")
        self.assert_error(c.allocate(), 401)

    def test_missing_nonce_is_400(self):
        """MESSAGE-INTEGRITY and USERNAME but no NONCE/REALM: RFC 8489 9.2.4
        says 400."""
        c = self.client()
        key = sc.long_term_key("alice", th.REALM, "wonderland")
        m = sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))
        m.add(sc.USERNAME, "alice")
        r = c.transact(m, key=key)
        self.assert_error(r, 400)

    def test_right_password_allocates(self):
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                c = self.client(proto)
                r, relay = self.allocated(c)
                self.assertEqual(r.xor_addr(sc.XOR_MAPPED_ADDRESS), c.local())
                lifetime = r.u32(sc.LIFETIME)
                self.assertIsNotNone(lifetime, r)
                self.assertTrue(0 < lifetime <= 3600, lifetime)
                self.assert_success(c.refresh(0), "Refresh 0 (delete)")

    def test_rest_api_credentials(self):
        user, password = sc.rest_credentials(SECRET, "carol")
        c = self.client(user=user, password=password)
        self.allocated(c)
        self.assert_success(c.refresh(0))

    def test_rest_api_credentials_expired_or_forged(self):
        cases = {
            "expired": sc.rest_credentials(SECRET, "carol", expiry=int(time.time()) - 60),
            "other secret": sc.rest_credentials("not-" + SECRET, "carol"),
            "expiry not digits": ("%dx:carol" % (time.time() + 3600),
                                  sc.rest_credentials(SECRET, None)[1]),
        }
        # An expiry changed after signing: the HMAC covers it.
        u, p = sc.rest_credentials(SECRET, "carol")
        cases["stretched"] = (str(int(u.split(":")[0]) + 86400) + ":carol", p)
        for what, (user, password) in cases.items():
            with self.subTest(what=what):
                c = self.client(user=user, password=password)
                self.assert_error(c.allocate(), 401, what)

    def test_tampered_nonce_is_401_with_a_fresh_one(self):
        c = self.client()
        first = c.transact(sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT,
                                                       struct.pack("!B3x", 17)))
        self.assert_error(first, 401)
        nonce = first.text(sc.NONCE)
        key = sc.long_term_key("alice", th.REALM, "wonderland")
        tampered = {
            "one character changed": nonce[:-1] + ("A" if nonce[-1] != "A" else "B"),
            "truncated": nonce[:-2],
            "empty": "",
            "longer": nonce + "AAAA",
        }
        for what, bad in tampered.items():
            with self.subTest(what=what):
                m = sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))
                m.add(sc.USERNAME, "alice").add(sc.REALM, th.REALM).add(sc.NONCE, bad)
                r = c.transact(m, key=key)
                self.assert_error(r, 401, what)
                fresh = r.text(sc.NONCE)
                self.assertTrue(fresh and fresh != bad, r)
        # Recovery with a fresh nonce.
        c.realm, c.nonce, c.key = th.REALM, fresh, key
        self.allocated(c)

    def test_password_algorithms_only_with_the_nonce_cookie(self):
        """RFC 8489 9.2.4: "If the server adds a PASSWORD-ALGORITHMS
        attribute, it MUST set the STUN Security Feature 'Password
        algorithms' bit to 1", i.e. the NONCE starts with the nonce cookie
        "obMatJos2" and its feature bits have that bit. docs/turn.md says
        tsunagi's nonces carry no cookie and PASSWORD-ALGORITHMS is not
        offered. A large request, so that no size bound strips attributes."""
        c = self.client()
        for method in (sc.ALLOCATE, sc.REFRESH):
            m = sc.Message(method).add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))
            m.add(0x8077, b"p" * 300)
            r = c.transact(m)
            self.assert_error(r, 401)
            nonce = r.text(sc.NONCE)
            if r.has(sc.PASSWORD_ALGORITHMS):
                self.assertTrue(nonce.startswith("obMatJos2"),
                                "PASSWORD-ALGORITHMS offered with a NONCE without the "
                                "nonce cookie: %r, NONCE %r" % (r, nonce))
                import base64
                features = base64.b64decode(nonce[9:13])
                self.assertTrue(features[0] & 0x80, "Password algorithms bit not set: %r" % nonce)

    def test_nonces_differ_between_sources(self):
        """RFC 8489 9.2.4: "The server MUST NOT choose the same NONCE for two
        requests unless they have the same source IP address and port."
        Two sockets challenged in the same instant, 30 times."""
        same = 0
        for _ in range(30):
            a, b = sc.Transport(self.server.turn_port), sc.Transport(self.server.turn_port)
            try:
                for t in (a, b):
                    t.send_raw(sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT,
                                                           struct.pack("!B3x", 17)).encode())
                na = sc.parse(a.recv_frame()).text(sc.NONCE)
                nb = sc.parse(b.recv_frame()).text(sc.NONCE)
                same += na == nb
            finally:
                a.close()
                b.close()
        self.assertEqual(same, 0, "%d of 30 pairs of sources got the same NONCE" % same)

    def test_nonce_from_udp_is_good_over_tcp(self):
        """Nonces are stateless and shared by the workers: one issued to a UDP
        5-tuple authenticates a request on a TCP connection at once."""
        u = self.client()
        self.assert_error(u.transact(sc.Message(sc.ALLOCATE).add(
            sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))), 401)
        nonce = u.transact(sc.Message(sc.ALLOCATE).add(
            sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))).text(sc.NONCE)
        t = self.client("tcp")
        t.realm, t.nonce = th.REALM, nonce
        t.key = sc.long_term_key("alice", th.REALM, "wonderland")
        m = sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))
        m.add(sc.USERNAME, "alice").add(sc.REALM, th.REALM).add(sc.NONCE, nonce)
        r = t.transact(m, key=t.key)
        self.assert_success(r, "Allocate over TCP with a UDP nonce")

    def test_answers_to_authenticated_requests_carry_integrity(self):
        """RFC 8489 9.2.4: the success answer (and an error after the
        integrity check) has MESSAGE-INTEGRITY made with the same key."""
        c = self.client()
        r, _ = self.allocated(c)
        self.assertTrue(r.integrity_ok)
        r = c.create_permission("8.8.8.8")
        self.assert_success(r)
        self.assertTrue(r.integrity_ok, r)
        r = c.create_permission("127.0.0.1")
        self.assert_error(r, 403)
        self.assertTrue(r.integrity_ok, r)

    # ------------------------------------------------- allocation errors --

    def test_refresh_without_allocation_is_437(self):
        c = self.client()
        self.assert_error(c.refresh(600), 437)
        self.assert_error(c.create_permission("8.8.8.8"), 437)
        self.assert_error(c.channel_bind(0x4000, "8.8.8.8", 5000), 437)

    def test_second_allocate_is_437_and_retransmitted_refresh_gets_the_same_answer(self):
        c = self.client()
        self.allocated(c)
        # RFC 8656 7.2: a retransmitted Allocate (same transaction id) gets
        # the same success answer; a new one on this 5-tuple gets 437.
        m = sc.Message(sc.REFRESH).add_u32(sc.LIFETIME, 600)
        m.add(sc.USERNAME, c.user).add(sc.REALM, c.realm).add(sc.NONCE, c.nonce)
        a1 = c.transact(m, key=c.key)
        c.t.send_raw(m.raw)
        a2 = sc.parse(c.t.recv_frame())
        self.assert_success(a1)
        self.assertEqual(a1.raw, a2.raw, "a retransmitted Refresh got a different answer")
        r2 = c.allocate()
        self.assert_error(r2, 437, "second Allocate on one 5-tuple")

    def test_retransmitted_allocate_gets_the_same_relay(self):
        c = self.client()
        c.binding()
        first = c.transact(sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT,
                                                       struct.pack("!B3x", 17)))
        c._learn(first)
        m = sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))
        m.add(sc.USERNAME, c.user).add(sc.REALM, c.realm).add(sc.NONCE, c.nonce)
        a1 = c.transact(m, key=c.key)
        self.assert_success(a1)
        c.t.send_raw(m.raw)  # the same bytes, as a client retransmits them
        a2 = sc.parse(c.t.recv_frame(), key=c.key)
        self.assert_success(a2, "retransmitted Allocate")
        self.assertEqual(a2.xor_addr(sc.XOR_RELAYED_ADDRESS), a1.xor_addr(sc.XOR_RELAYED_ADDRESS))

    def test_allocation_of_another_user_is_441(self):
        """RFC 8656 5: a request on a 5-tuple whose allocation another
        username made gets 441 (Wrong Credentials)."""
        a = self.client()
        self.allocated(a)
        # bob on alice's 5-tuple: the same socket, bob's credentials.
        a.user, a.password = "bob", "builder"
        a.key = sc.long_term_key("bob", a.realm, "builder")
        self.assert_error(a.refresh(600), 441)

    def test_allocate_errors(self):
        c = self.client()
        c.binding()
        # RFC 8656 7.2: no REQUESTED-TRANSPORT -> 400.
        r = c.request(lambda: sc.Message(sc.ALLOCATE))
        self.assert_error(r, 400, "Allocate without REQUESTED-TRANSPORT")
        # TCP relays (RFC 6062) are for TCP and TLS clients: over UDP -> 400.
        r = c.allocate(transport=sc.TCP_PROTO)
        self.assert_error(r, 400, "REQUESTED-TRANSPORT TCP over UDP")
        # Any other transport -> 442.
        r = c.allocate(transport=1)
        self.assert_error(r, 442, "REQUESTED-TRANSPORT ICMP")
        # None of that allocated anything.
        self.assert_error(c.refresh(600), 437)

    def test_even_port_reservation_holds_the_next_port(self):
        """EVEN-PORT with the R bit: an even relay port, and port + 1 stays
        bound by the server until the RESERVATION-TOKEN claims it, so nothing
        else can take it meanwhile; the claim, from another 5-tuple, gets
        exactly port + 1."""
        c = self.client()
        r, (_, port) = self.allocated(c, extra=[(sc.EVEN_PORT, b"\x80")])
        self.assertEqual(port % 2, 0, r)
        token = r.get(sc.RESERVATION_TOKEN)
        self.assertEqual(len(token or b""), 8, r)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            with self.assertRaises(OSError, msg="port + 1 of a reservation is free") as e:
                s.bind(("127.0.0.1", port + 1))
            self.assertEqual(e.exception.errno, errno.EADDRINUSE)
        finally:
            s.close()
        d = self.client()
        _, (_, claimed) = self.allocated(d, extra=[(sc.RESERVATION_TOKEN, token)])
        self.assertEqual(claimed, port + 1)
        self.assert_error(self.client().allocate(extra=[(sc.RESERVATION_TOKEN, token)]), 508,
                          "a token used twice")

    def test_lifetime_is_capped(self):
        c = self.client()
        r, _ = self.allocated(c, lifetime=100000)
        self.assertTrue(600 <= r.u32(sc.LIFETIME) <= 3600, r.u32(sc.LIFETIME))
        r = c.refresh(100000)
        self.assert_success(r)
        self.assertTrue(r.u32(sc.LIFETIME) <= 3600, r.u32(sc.LIFETIME))

    def test_delete_then_refresh_is_437(self):
        c = self.client()
        self.allocated(c)
        r = c.refresh(0)
        self.assert_success(r)
        self.assertEqual(r.u32(sc.LIFETIME), 0, r)
        self.assert_error(c.refresh(600), 437, "Refresh after delete")

    # ----------------------------------------------------- peer filter --

    def test_permission_to_denied_peers_is_403(self):
        c = self.client()
        self.allocated(c)
        for ip in ("127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1",
                   "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255"):
            with self.subTest(peer=ip):
                self.assert_error(c.create_permission(ip), 403, ip)
        # A public address passes the filter; a CreatePermission sends nothing.
        self.assert_success(c.create_permission("8.8.8.8"), "8.8.8.8")
        # All or nothing (RFC 8656 9.2): one denied address refuses the lot.
        self.assert_error(c.create_permission("8.8.4.4", "127.0.0.1"), 403, "mixed")

    def test_ipv6_forms_of_loopback_are_refused(self):
        c = self.client()
        self.allocated(c)
        for ip in ("::ffff:127.0.0.1", "::1", "64:ff9b::7f00:1", "2002:7f00:1::"):
            with self.subTest(peer=ip):
                r = c.create_permission(ip)
                # 403, or 443 (Peer Address Family Mismatch: the relay is IPv4).
                self.assertEqual(r.cls, sc.ERROR, r)
                self.assertIn(r.code(), (403, 443), r)

    def test_channel_bind_to_denied_peer_is_403(self):
        c = self.client()
        self.allocated(c)
        p = self.peer()
        self.assert_error(c.channel_bind(0x4000, "127.0.0.1", p.getsockname()[1]), 403)
        self.assert_error(c.channel_bind(0x4001, "10.0.0.1", 5000), 403)

    def test_nothing_is_relayed_to_a_denied_peer(self):
        """A Send indication or ChannelData to a loopback peer reaches nobody."""
        c = self.client()
        _, relay = self.allocated(c)
        p = self.peer()
        pip, pport = p.getsockname()
        c.create_permission(pip)
        c.channel_bind(0x4000, pip, pport)
        c.send_indication(pip, pport, b"should not arrive")
        c.send_channel(0x4000, b"nor this")
        self.assertIsNone(sc.recv_or_none(p, 0.6), "tsunagi relayed to a denied loopback peer")
        # And the peer cannot reach the client through the relay.
        p.sendto(b"from the peer", relay)
        with self.assertRaises(sc.Timeout):
            c.next_frame(0.5)

    # --------------------------------------------------------- garbage --

    def garbage_udp(self):
        rnd = random.Random(8656)
        good = sc.Message(sc.BINDING).encode()
        huge = bytearray(good)
        huge[2:4] = struct.pack("!H", 0xFFFC)
        odd = bytearray(good)
        odd[2:4] = struct.pack("!H", len(good) - 20 + 2)
        bad_fp = bytearray(good)
        bad_fp[-1] ^= 0xFF
        overrun = sc.Message(sc.BINDING)
        raw_overrun = bytearray(overrun.encode(fingerprint=False) + struct.pack("!HH", 0x8022, 40) + b"x" * 4)
        raw_overrun[2:4] = struct.pack("!H", len(raw_overrun) - 20)
        success = sc.Message(sc.BINDING, sc.SUCCESS).add_xor_addr(sc.XOR_MAPPED_ADDRESS, "1.2.3.4", 5)
        error = sc.Message(sc.ALLOCATE, sc.ERROR).add(sc.ERROR_CODE, b"\0\0\4\1")
        return [
            ("empty", b""),
            ("one byte", b"\x00"),
            ("random 4", bytes([0x00]) + rnd.randbytes(3)),
            ("random 100", bytes([0x80]) + rnd.randbytes(99)),
            ("random 1200", bytes([0xC0]) + rnd.randbytes(1199)),
            ("19-byte header", good[:19]),
            ("header only, length 0xFFFC", bytes(huge[:20])),
            ("length 0xFFFC, short body", bytes(huge)),
            ("length not a multiple of 4", bytes(odd)),
            ("no magic cookie, STUN-like", good[:4] + b"\xde\xad\xbe\xef" + good[8:20]),
            ("bad FINGERPRINT", bytes(bad_fp)),
            ("attribute overruns", bytes(raw_overrun)),
            ("a success response", success.encode()),
            ("an error response", error.encode()),
            ("Binding indication", sc.Message(sc.BINDING, sc.INDICATION).encode()),
            ("Data indication from a client", sc.Message(sc.DATA, sc.INDICATION)
             .add_xor_addr(sc.XOR_PEER_ADDRESS, "8.8.8.8", 53).add(sc.DATA_ATTR, b"x").encode()),
            ("Send indication, no allocation", sc.Message(sc.SEND, sc.INDICATION)
             .add_xor_addr(sc.XOR_PEER_ADDRESS, "8.8.8.8", 53).add(sc.DATA_ATTR, b"x").encode()),
            ("ChannelData, unbound channel", sc.channel_data(0x4001, b"hello")),
            ("ChannelData, length past the end", struct.pack("!HH", 0x4000, 500) + b"abc"),
            ("ChannelData, reserved number 0x7FFF+", struct.pack("!HH", 0x7FFF, 4) + b"abcd"),
            ("ChannelData header only", b"\x40\x00"),
        ]

    def test_garbage_udp_gets_no_answer(self):
        c = self.client()
        for what, data in self.garbage_udp():
            with self.subTest(what=what):
                got = c.expect_silence(data, timeout=0.25)
                self.assertIsNone(got, "%s: tsunagi answered %r" % (what, got))
        self.assertTrue(self.server.running())
        self.assert_binding_works("udp")
        self.assert_binding_works("tcp")

    def test_garbage_udp_on_an_allocation_gets_no_answer(self):
        """The same garbage from a 5-tuple that holds an allocation, with a
        peer listening: nothing is answered and nothing is relayed."""
        c = self.client()
        self.allocated(c)
        p = self.peer()
        self.assert_success(c.create_permission("8.8.8.8"))
        for what, data in self.garbage_udp():
            with self.subTest(what=what):
                got = c.expect_silence(data, timeout=0.15)
                self.assertIsNone(got, "%s: tsunagi answered %r" % (what, got))
        self.assertIsNone(sc.recv_or_none(p, 0.1))
        # The allocation still works.
        self.assert_success(c.refresh(600))

    def test_garbage_tcp(self):
        # Bytes that are neither STUN nor ChannelData: the stream cannot be
        # framed, the connection is closed without an answer.
        c = self.client("tcp")
        c.t.send_raw(b"\xc0\xff\xee" + os.urandom(61))
        self.assertTrue(c.t.closed(3), "tsunagi kept a TCP connection that sent non-STUN bytes")
        # A TLS ClientHello on the plain port: STUN-like first byte, no magic
        # cookie. (HTTP is not a good probe: "GE" reads as a ChannelData
        # header announcing 21536 bytes, which a server rightly waits for.)
        c = self.client("tcp")
        c.t.send_raw(bytes.fromhex("160301020001 0001fc0303".replace(" ", "")) + os.urandom(64))
        self.assertTrue(c.t.closed(3), "tsunagi kept a TCP connection that sent a TLS ClientHello")
        # ChannelData for an unbound channel, a response, an indication: no
        # answer, and the connection still serves a Binding.
        c = self.client("tcp")
        for data in (sc.channel_data(0x4002, b"abc", stream=True),
                     sc.Message(sc.BINDING, sc.SUCCESS).encode(),
                     sc.Message(sc.BINDING, sc.INDICATION).encode()):
            self.assertIsNone(c.expect_silence(data, timeout=0.3))
        r = c.binding()
        self.assert_success(r)
        self.assertEqual(r.xor_addr(sc.XOR_MAPPED_ADDRESS), c.local())
        # A header announcing 65532 bytes, then silence: no answer, and the
        # server goes on serving others.
        c = self.client("tcp")
        huge = bytearray(sc.Message(sc.BINDING).encode(fingerprint=False))
        huge[2:4] = struct.pack("!H", 0xFFFC)
        self.assertIsNone(c.expect_silence(bytes(huge), timeout=0.3))
        self.assert_binding_works("tcp")
        self.assert_binding_works("udp")

    def test_unknown_comprehension_required_attribute_is_420(self):
        """RFC 8489 6.3.1: 420 with UNKNOWN-ATTRIBUTES listing it."""
        c = self.client()
        m = sc.Message(sc.BINDING).add(0x0077, b"\1\2\3\4")
        r = c.transact(m)
        self.assert_error(r, 420)
        v = r.get(sc.UNKNOWN_ATTRIBUTES)
        self.assertIsNotNone(v, r)
        self.assertIn(0x0077, struct.unpack("!%dH" % (len(v) // 2), v))
        # Comprehension-optional unknown attributes are ignored.
        r = c.transact(sc.Message(sc.BINDING).add(0x8077, b"\1\2\3\4"))
        self.assert_success(r)
        # CHANGE-REQUEST (RFC 5780, not served): 420 too.
        r = c.transact(sc.Message(sc.BINDING).add_u32(sc.CHANGE_REQUEST, 6))
        self.assert_error(r, 420)

    def test_unknown_method_is_an_error(self):
        c = self.client()
        r = c.transact(sc.Message(0x0FF))
        self.assertEqual(r.cls, sc.ERROR, r)
        self.assertEqual(r.code(), 400, r)
        # Send as a request (it is an indication only).
        r = c.transact(sc.Message(sc.SEND))
        self.assertEqual(r.cls, sc.ERROR, r)

    # --------------------------------------------------- amplification --

    def test_amplification_bound(self):
        """Over UDP the source of an unauthenticated request may be forged, so
        its answer is not larger than the request, except for the minimum
        each answer must carry (RFC 8489 / 8656 MUSTs):

        - Binding success: XOR-MAPPED-ADDRESS (+ FINGERPRINT if the request had one);
        - 401: ERROR-CODE, REALM, NONCE (+ FINGERPRINT);
        - 400 / 420: ERROR-CODE (+ UNKNOWN-ATTRIBUTES with one type) (+ FINGERPRINT).
        The ERROR-CODE reason phrase is optional (RFC 8489 14.8: SHOULD)."""
        realm = attr_size(len(th.REALM))
        fp = 8
        binding_min = 20 + attr_size(8)
        challenge_min = 20 + attr_size(4) + realm + attr_size(len("A" * 24))
        cases = []
        m = sc.Message(sc.BINDING)
        cases.append(("Binding, 20 bytes", m.encode(fingerprint=False), binding_min))
        m = sc.Message(sc.BINDING)
        cases.append(("Binding + FINGERPRINT", m.encode(), binding_min + fp))
        m = sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))
        cases.append(("Allocate, no credentials", m.encode(fingerprint=False), challenge_min))
        m = sc.Message(sc.ALLOCATE)
        cases.append(("Allocate, bare header", m.encode(fingerprint=False), challenge_min))
        m = sc.Message(sc.REFRESH)
        cases.append(("Refresh, bare header", m.encode(fingerprint=False), challenge_min))
        m = sc.Message(sc.CREATE_PERMISSION)
        cases.append(("CreatePermission, bare", m.encode(), challenge_min + fp))
        m = sc.Message(sc.ALLOCATE).add(sc.USERNAME, "alice")
        cases.append(("Allocate with a wrong MESSAGE-INTEGRITY", None, None))
        m = sc.Message(sc.BINDING).add(0x0077, b"")
        cases.append(("Binding with an unknown attribute", m.encode(fingerprint=False),
                      20 + attr_size(4) + attr_size(2)))
        m = sc.Message(0x0FF)
        cases.append(("unknown method", m.encode(fingerprint=False), 20 + attr_size(4)))
        for what, raw, minimum in cases:
            if raw is None:
                # USERNAME/REALM/NONCE with a wrong key: the answer is a 401.
                c = self.client()
                first = c.transact(sc.Message(sc.ALLOCATE))
                m = sc.Message(sc.ALLOCATE).add(sc.USERNAME, "alice").add(sc.REALM, th.REALM)
                m.add(sc.NONCE, first.text(sc.NONCE))
                raw = m.encode(key=b"\0" * 16, fingerprint=False)
                minimum = challenge_min
            with self.subTest(what=what):
                c = self.client()
                c.t.send_raw(raw)
                try:
                    answer = c.t.recv_frame(1.0)
                except sc.Timeout:
                    self.fail("%s: no answer" % what)
                bound = max(len(raw), minimum)
                self.assertLessEqual(len(answer), bound,
                                     "%s: %d-byte request, %d-byte answer %r (allowed %d)"
                                     % (what, len(raw), len(answer), sc.parse(answer), bound))
                r = sc.parse(answer)
                self.assertNotEqual(r.cls, sc.REQUEST)

    def test_big_requests_get_full_answers(self):
        """The bound limits answers to the request's size, it does not strip
        them: a Binding padded with a comprehension-optional attribute is
        answered with at least XOR-MAPPED-ADDRESS, and a padded Allocate
        with a 401 whose ERROR-CODE carries its reason phrase."""
        c = self.client()
        r = c.transact(sc.Message(sc.BINDING).add(0x8077, b"p" * 200))
        self.assert_success(r)
        self.assertEqual(r.xor_addr(sc.XOR_MAPPED_ADDRESS), c.local())
        r = c.transact(sc.Message(sc.ALLOCATE).add(sc.REQUESTED_TRANSPORT, struct.pack("!B3x", 17))
                       .add(0x8077, b"p" * 200))
        self.assert_error(r, 401)
        self.assertTrue(r.error()[1], "no reason phrase in a 401 to a 260-byte request: %r" % r)


# ===================================================================== #


class StaleNonceTest(Base):
    """--stale-nonce 1: a nonce more than a second old gets 438 (Stale Nonce)
    with a fresh NONCE and the REALM (RFC 8489 9.2.5), only after the
    integrity check; the client retries with the fresh nonce, and the
    allocation made with the old one is not affected."""

    server_args = ("--stale-nonce", "1")
    server_kwargs = {"users": USERS}

    def refresh_with(self, c, nonce, key):
        m = sc.Message(sc.REFRESH).add_u32(sc.LIFETIME, 600)
        m.add(sc.USERNAME, "alice").add(sc.REALM, th.REALM).add(sc.NONCE, nonce)
        return c.transact(m, key=key)

    def test_stale_nonce_gets_438_then_recovers(self):
        c = self.client()
        self.allocated(c)
        old, key = c.nonce, c.key
        self.assert_success(self.refresh_with(c, old, key), "Refresh with a young nonce")
        time.sleep(1.3)

        r = self.refresh_with(c, old, key)
        self.assert_error(r, 438, "Refresh with a nonce older than --stale-nonce")
        fresh = r.text(sc.NONCE)
        self.assertTrue(fresh and fresh != old, r)
        self.assertEqual(r.text(sc.REALM), th.REALM)
        # Only a client that holds the key learns that its nonce is stale.
        wrong = sc.long_term_key("alice", th.REALM, "not-the-password")
        self.assert_error(self.refresh_with(c, old, wrong), 401, "stale nonce, wrong key")

        r = self.refresh_with(c, fresh, key)
        self.assert_success(r, "Refresh with the nonce of the 438")
        self.assertTrue(r.integrity_ok, r)
        self.assertEqual(r.u32(sc.LIFETIME), 600)

    def test_client_follows_438_by_itself(self):
        """stunclient follows one 438 the way browsers do: the next request
        after the nonce went stale succeeds without new credentials."""
        c = self.client()
        self.allocated(c)
        old = c.nonce
        time.sleep(1.3)
        r = c.create_permission("8.8.8.8")
        self.assert_success(r, "CreatePermission after the nonce went stale")
        self.assertNotEqual(c.nonce, old)


class RelayTest(Base):
    """--allow-loopback-peers: the data path with this client as both ends."""

    server_kwargs = {"users": USERS, "secret": SECRET, "loopback": True}

    def data_path(self, proto):
        c = self.client(proto)
        _, relay = self.allocated(c)
        p = self.peer()
        pip, pport = p.getsockname()

        # No permission yet: a Send indication is dropped (RFC 8656 11.2) and
        # the peer's packets do not reach the client (RFC 8656 11.3 / 9).
        c.send_indication(pip, pport, b"too early")
        self.assertIsNone(sc.recv_or_none(p, 0.4), "relayed without a permission")
        p.sendto(b"unsolicited", relay)
        with self.assertRaises(sc.Timeout):
            c.next_frame(0.4)

        self.assert_success(c.create_permission(pip))
        # Client -> peer: a Send indication leaves from the relayed address.
        payload = os.urandom(300)
        c.send_indication(pip, pport, payload)
        got = sc.recv_or_none(p, 2)
        self.assertIsNotNone(got, "the Send indication did not reach the peer")
        self.assertEqual(got, (payload, relay))
        # Peer -> client: a Data indication naming the peer.
        payload = os.urandom(301)
        p.sendto(payload, relay)
        kind, src, data = c.recv_data(2)
        self.assertEqual((kind, src, data), ("data", (pip, pport), payload))

        # Channels: bind, then ChannelData both ways.
        self.assert_success(c.channel_bind(0x4000, pip, pport))
        payload = os.urandom(5)  # not a multiple of 4: padding over TCP
        c.send_channel(0x4000, payload)
        self.assertEqual(sc.recv_or_none(p, 2), (payload, relay))
        payload = os.urandom(1001)
        p.sendto(payload, relay)
        self.assertEqual(c.recv_data(2), ("channel", 0x4000, payload))
        # An empty payload is valid ChannelData.
        c.send_channel(0x4000, b"")
        self.assertEqual(sc.recv_or_none(p, 2), (b"", relay))

        # Channel number rules (RFC 8656 12.2).
        for number in (0x3FFF, 0x8000, 0x0001):
            self.assert_error(c.channel_bind(number, pip, pport), 400, hex(number))
        self.assert_error(c.channel_bind(0x4001, pip, pport), 400, "peer already on 0x4000")
        q = self.peer()
        self.assert_error(c.channel_bind(0x4000, pip, q.getsockname()[1]), 400,
                          "0x4000 already bound to another peer")
        self.assert_success(c.channel_bind(0x4000, pip, pport), "rebinding the same pair refreshes")

        # ChannelData on an unbound channel goes nowhere.
        c.send_channel(0x4005, b"lost")
        self.assertIsNone(sc.recv_or_none(p, 0.3))
        self.assertIsNone(sc.recv_or_none(q, 0.1))

        # Delete: the relay port stops relaying.
        self.assert_success(c.refresh(0))
        p.sendto(b"after delete", relay)
        with self.assertRaises(sc.Timeout):
            c.next_frame(0.4)
        self.assert_error(c.refresh(600), 437)

    def test_data_path_udp(self):
        self.data_path("udp")

    def test_data_path_tcp(self):
        self.data_path("tcp")

    def test_bursts_arrive_datagram_by_datagram(self):
        """A burst of equal-size datagrams to one address leaves the server
        as one UDP GSO message (docs/turn.md, Listeners and sockets); each
        must still arrive as its own datagram, in order and intact: runs of
        one size, a shorter one ending a run, empty ChannelData (never
        packed), datagrams too large to pack."""
        c = self.client()
        _, relay = self.allocated(c)
        p = self.peer()
        pip, pport = p.getsockname()
        self.assert_success(c.channel_bind(0x4000, pip, pport))
        sizes = [160] * 12 + [100] + [160] * 3 + [0, 0, 0] + [1300] * 3 + [7, 7]
        burst = [os.urandom(n) for n in sizes]
        for d in burst:
            c.send_channel(0x4000, d)
        got = [sc.recv_or_none(p, 2) for _ in burst]
        self.assertEqual(got, [(d, relay) for d in burst])
        for d in burst:
            p.sendto(d, relay)
        got = [c.recv_data(2) for _ in burst]
        self.assertEqual(got, [("channel", 0x4000, d) for d in burst])

    def test_closing_tcp_frees_the_allocation(self):
        """RFC 8656 3.1: over TCP the allocation lives as long as the connection."""
        c = self.client("tcp")
        _, relay = self.allocated(c)
        p = self.peer()
        self.assert_success(c.create_permission("127.0.0.1"))
        c.close()
        self.closers.remove(c)
        # The relay port is closed or no longer relays: nothing comes back,
        # and (Linux) a UDP send to a closed port may report ECONNREFUSED.
        time.sleep(0.3)
        p.sendto(b"anyone?", relay)
        self.assertIsNone(sc.recv_or_none(p, 0.3))
        # Its port is usable again: bind it ourselves.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            ok = th.wait_until(lambda: _try_bind(probe, relay), 3)
            self.assertTrue(ok, "relay port %d still bound after its TCP connection closed" % relay[1])
        finally:
            probe.close()

    def test_allocations_get_distinct_relays(self):
        relays = set()
        for i in range(6):
            c = self.client("udp" if i % 2 else "tcp")
            _, relay = self.allocated(c)
            relays.add(relay)
        self.assertEqual(len(relays), 6)


def _try_bind(sock, addr):
    try:
        sock.bind(addr)
        return True
    except OSError:
        return False


# ===================================================================== #


class DeleteUnderTrafficTest(Base):
    """An allocation deleted while its peer is sending to it.

    The Refresh (lifetime 0) or the closing TCP connection that frees the
    allocation and the peer's datagram on the relay socket can arrive in the
    same event-loop batch; the relay socket must outlive that batch (STYLE.md:
    never free inside the batch that may still hold its events)."""

    server_kwargs = {"users": USERS, "loopback": True}

    # A server per test, so that a crash is blamed on the test that caused it.
    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        super().setUp()
        self.server = th.TurnServer(*self.server_args, **self.server_kwargs)
        try:
            self.server.start()
        except Exception:
            self.server.cleanup()
            raise

    def tearDown(self):
        super().tearDown()
        try:
            if self.server.running():
                self.server.stop()
        finally:
            self.server.cleanup()

    def assert_server_alive(self, what):
        time.sleep(0.2)
        log = self.server.log()
        marker = th.tsunagi.sanitizer_report(log)
        if marker is not None or not self.server.running():
            lines = log.splitlines()
            first = next((i for i, l in enumerate(lines) if "Sanitizer" in l or "runtime error" in l), 0)
            self.fail("%s: tsunagi %s:\n%s" % (what, "died" if not self.server.running() else marker,
                                                "\n".join(lines[max(0, first - 3):first + 30])))

    def churn(self, proto, how, rounds=25):
        for i in range(rounds):
            try:
                c = sc.Client(self.server.turn_port if proto == "udp" else self.server.turn_tcp_port,
                              proto, user="alice", password="wonderland")
                p = sc.udp_peer()
                try:
                    r = c.allocate()
                    self.assert_success(r)
                    relay = r.xor_addr(sc.XOR_RELAYED_ADDRESS)
                    self.assert_success(c.create_permission("127.0.0.1"))
                    if how == "refresh":
                        m = sc.Message(sc.REFRESH).add_u32(sc.LIFETIME, 0)
                        m.add(sc.USERNAME, c.user).add(sc.REALM, c.realm).add(sc.NONCE, c.nonce)
                        c.t.send_raw(m.encode(key=c.key))
                    else:
                        c.close()
                    for _ in range(20):
                        p.sendto(b"x" * 100, relay)
                    time.sleep(0.02)
                finally:
                    c.close()
                    p.close()
            except (OSError, sc.Timeout) as e:
                self.assert_server_alive("%s %s, round %d (%r)" % (proto, how, i, e))
                raise
        self.assert_server_alive("%s %s" % (proto, how))
        self.assert_binding_works(proto)

    def test_refresh_0_udp_while_the_peer_sends(self):
        self.churn("udp", "refresh")

    def test_refresh_0_tcp_while_the_peer_sends(self):
        self.churn("tcp", "refresh")

    def test_tcp_close_while_the_peer_sends(self):
        self.churn("tcp", "close")


# ===================================================================== #


class UserQuotaTest(Base):
    server_kwargs = {"users": USERS, "secret": SECRET}
    server_args = ("--user-quota", "1")

    def test_user_quota(self):
        a1 = self.client()
        self.allocated(a1)
        # The same user from another 5-tuple (UDP and TCP): 486.
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                a2 = self.client(proto)
                self.assert_error(a2.allocate(), 486, "alice's second allocation over " + proto)
        # Another user is not affected.
        b = self.client(user="bob", password="builder")
        self.allocated(b)
        # Freeing alice's allocation frees her quota.
        self.assert_success(a1.refresh(0))
        a3 = self.client()
        self.allocated(a3)

    def test_rest_users_count_under_their_name(self):
        """EXPIRY:NAME credentials with different expiries share NAME's quota."""
        u1, p1 = sc.rest_credentials(SECRET, "dave", ttl=3600)
        u2, p2 = sc.rest_credentials(SECRET, "dave", ttl=7200)
        c1 = self.client(user=u1, password=p1)
        self.allocated(c1)
        c2 = self.client(user=u2, password=p2)
        self.assert_error(c2.allocate(), 486, "dave's second credential")
        u3, p3 = sc.rest_credentials(SECRET, "erin")
        self.allocated(self.client(user=u3, password=p3))
        self.assert_success(c1.refresh(0))
        self.allocated(c2)
        self.assert_success(c2.refresh(0))


class TotalQuotaTest(Base):
    server_kwargs = {"users": USERS, "secret": SECRET}
    server_args = ("--total-quota", "1")

    def test_total_quota(self):
        a = self.client()
        self.allocated(a)
        # RFC 8656 6.2 / 7.2: a server out of capacity answers 508
        # (Insufficient Capacity); 486 is for a per-user quota.
        b = self.client(user="bob", password="builder")
        self.assert_error(b.allocate(), 508, "bob past --total-quota 1")
        t = self.client("tcp", user="bob", password="builder")
        self.assert_error(t.allocate(), 508, "bob over TCP past --total-quota 1")
        self.assert_success(a.refresh(0))
        self.allocated(b)
        self.assert_success(b.refresh(0))


class RequestRateTest(Base):
    """--turn-request-rate 5 --turn-request-burst 10: per source address,
    requests past the burst get no answer at all and are counted; one second
    later 5 more are answered; the media of an allocation is never limited.
    Each test sends from a loopback address of its own (127.0.0.N), so the
    tests do not share a budget. One worker: each worker counts on its own,
    and the kernel spreads a client's sockets over them (docs/turn.md)."""

    RATE, BURST = 5, 10
    server_args = ("--turn-request-rate", str(RATE), "--turn-request-burst", str(BURST))
    server_kwargs = {"users": USERS, "loopback": True, "threads": 1}

    def limited(self):
        return self.server.metrics()["tsunagi_turn_requests_rate_limited_total"]

    def udp_from(self, ip):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
        s.connect(("127.0.0.1", self.server.turn_port))
        self.closers.append(s)
        return s

    def bindings(self, *socks, n):
        """Send n Binding requests from each socket, back to back; how many
        were answered (waiting until 0.2 s pass without an answer)."""
        tids = set()
        for _ in range(n):
            for s in socks:
                m = sc.Message(sc.BINDING)
                tids.add(m.tid)
                s.send(m.encode())
        got = 0
        while True:
            ready, _, _ = select.select(socks, [], [], 0.2)
            if not ready:
                return got
            for s in ready:
                r = sc.parse(s.recv(65536))
                self.assertIn(r.tid, tids)
                self.assertEqual(r.cls, sc.SUCCESS, r)
                got += 1

    def test_udp_burst_then_silence_then_refill(self):
        s, s2 = self.udp_from("127.0.0.2"), self.udp_from("127.0.0.2")
        before = self.limited()
        # Two ports of one address share one budget: BURST answers in all.
        t0 = time.monotonic()
        got = self.bindings(s, s2, n=2 * self.BURST)
        self.assertGreaterEqual(got, self.BURST)
        self.assertLessEqual(got, self.BURST + 1 + int(self.RATE * (time.monotonic() - t0)))
        self.assertEqual(self.limited() - before, 4 * self.BURST - got)
        # Another address has its own.
        self.assertEqual(self.bindings(self.udp_from("127.0.0.3"), n=self.BURST), self.BURST)
        # A second later, RATE a second again (and what came back while the
        # answers above were awaited).
        time.sleep(1.0)
        got = self.bindings(s, n=3 * self.BURST)
        self.assertGreaterEqual(got, self.RATE)
        self.assertLessEqual(got, 1 + int(self.RATE * (time.monotonic() - t0)))

    def test_tcp_counts_too(self):
        t = sc.Transport(self.server.turn_tcp_port, "tcp", sock=socket.create_connection(
            ("127.0.0.1", self.server.turn_tcp_port), timeout=2, source_address=("127.0.0.4", 0)))
        self.closers.append(t)
        before = self.limited()
        for _ in range(3 * self.BURST):
            t.send_raw(sc.Message(sc.BINDING).encode())
        got = 0
        while True:
            try:
                self.assertEqual(sc.parse(t.recv_frame(0.2)).cls, sc.SUCCESS)
            except sc.Timeout:
                break
            got += 1
        self.assertGreaterEqual(got, self.BURST)
        self.assertLess(got, 2 * self.BURST)
        self.assertEqual(self.limited() - before, 3 * self.BURST - got)
        self.assertFalse(t.closed(0.2), "the connection was closed")

    def test_media_is_not_limited(self):
        c = self.client()
        c.t.close()
        c.t = sc.Transport(self.server.turn_port, "udp", sock=self.udp_from("127.0.0.5"))
        _, relay = self.allocated(c)  # 401, then Allocate: 2 requests
        p = self.peer()
        pip, pport = p.getsockname()
        self.assert_success(c.channel_bind(0x4000, pip, pport))  # 1 more
        # Spend the rest of the budget, and then some.
        s = self.udp_from("127.0.0.5")
        self.assertLess(self.bindings(s, n=2 * self.BURST), self.BURST)
        before = self.limited()
        t0 = time.monotonic()
        want = {b"c%02d" % i for i in range(50)} | {b"s%02d" % i for i in range(50)}
        for i in range(50):
            c.send_channel(0x4000, b"c%02d" % i)
            c.send_indication(pip, pport, b"s%02d" % i)
        got = set()
        while got != want:
            r = sc.recv_or_none(p, 2)
            self.assertIsNotNone(r, "relayed %d of 100" % len(got))
            got.add(r[0])
        for i in range(50):
            p.sendto(b"p%02d" % i, relay)
        for i in range(50):
            self.assertEqual(c.recv_data(2), ("channel", 0x4000, b"p%02d" % i))
        self.assertEqual(self.limited(), before)
        # Requests from the address are still held back.
        got = self.bindings(s, n=2 * self.BURST)
        self.assertLessEqual(got, 1 + int(self.RATE * (time.monotonic() - t0)))
        self.assertEqual(self.limited() - before, 2 * self.BURST - got)

if __name__ == "__main__":
    unittest.main(verbosity=2)
