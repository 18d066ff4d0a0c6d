"""A small STUN/TURN client for tsunagi's TURN tests (RFC 8489, RFC 8656).

Written from the RFCs, independently of src/stun/msg.c, so that the tests do
not share the server's mistakes. It builds and parses messages
(MESSAGE-INTEGRITY with the long-term key MD5(user:realm:pass), FINGERPRINT
CRC32 ^ 0x5354554e, XOR addresses), frames them over UDP and TCP (RFC 8656
11.5: ChannelData padded to 4 over streams), and runs the long-term
credential dance (401 -> REALM/NONCE -> retry, 438 -> fresh nonce -> retry).

Everything talks to 127.0.0.1 only.
"""

import base64
import hashlib
import hmac
import os
import socket
import struct
import time
import zlib

MAGIC = 0x2112A442
MAGIC_BYTES = struct.pack("!I", MAGIC)
FINGERPRINT_XOR = 0x5354554E
HEADER_LEN = 20

# Classes.
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
CLASS_NAMES = {REQUEST: "request", INDICATION: "indication", SUCCESS: "success", ERROR: "error"}

# Methods.
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009

# Attributes.
MAPPED_ADDRESS = 0x0001
CHANGE_REQUEST = 0x0003
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA_ATTR = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
EVEN_PORT = 0x0018
REQUESTED_TRANSPORT = 0x0019
DONT_FRAGMENT = 0x001A
MESSAGE_INTEGRITY_SHA256 = 0x001C
USERHASH = 0x001E
XOR_MAPPED_ADDRESS = 0x0020
RESERVATION_TOKEN = 0x0022
PASSWORD_ALGORITHMS = 0x8002
SOFTWARE = 0x8022
ALTERNATE_SERVER = 0x8023
FINGERPRINT = 0x8028

ATTR_NAMES = {v: k for k, v in dict(globals()).items()
              if k.isupper() and isinstance(v, int) and k not in ("MAGIC", "HEADER_LEN",
                                                                "FINGERPRINT_XOR")
              and k not in ("REQUEST", "INDICATION", "SUCCESS", "ERROR", "BINDING", "ALLOCATE",
                            "REFRESH", "SEND", "DATA", "CREATE_PERMISSION", "CHANNEL_BIND")}

UDP_PROTO = 17
TCP_PROTO = 6


class StunError(Exception):
    pass


def pad4(n):
    return (n + 3) & ~3


def msg_type(method, cls):
    """The 14-bit message type of RFC 8489 5 (method bits M0..M11, class C0 C1)."""
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


def split_type(t):
    method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    cls = ((t >> 4) & 1) | ((t >> 7) & 2)
    return method, cls


def long_term_key(user, realm, password):
    return hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode()).digest()


def rest_credentials(secret, name, ttl=3600, expiry=None):
    """A TURN REST API username and password (coturn's use-auth-secret)."""
    if expiry is None:
        expiry = int(time.time()) + ttl
    user = "%d:%s" % (expiry, name) if name is not None else "%d" % expiry
    password = base64.b64encode(hmac.new(secret.encode(), user.encode(), hashlib.sha1).digest()).decode()
    return user, password


# ------------------------------------------------------------ addresses --


def xor_address(ip, port, tid):
    """The value of an XOR-*-ADDRESS attribute for (ip, port)."""
    xport = port ^ (MAGIC >> 16)
    if ":" in ip:
        raw = socket.inet_pton(socket.AF_INET6, ip)
        mask = MAGIC_BYTES + tid
        return struct.pack("!BBH", 0, 2, xport) + bytes(a ^ b for a, b in zip(raw, mask))
    raw = socket.inet_aton(ip)
    return struct.pack("!BBH", 0, 1, xport) + bytes(a ^ b for a, b in zip(raw, MAGIC_BYTES))


def parse_address(value, tid=None):
    """(ip, port) from a (XOR-)MAPPED-ADDRESS value; tid None: not XOR-ed."""
    if len(value) < 4:
        raise StunError("address attribute of %d bytes" % len(value))
    _, family, port = struct.unpack("!BBH", value[:4])
    raw = value[4:]
    if family == 1:
        if len(raw) != 4:
            raise StunError("IPv4 address attribute of %d bytes" % len(value))
        if tid is not None:
            raw = bytes(a ^ b for a, b in zip(raw, MAGIC_BYTES))
        ip = socket.inet_ntoa(raw)
    elif family == 2:
        if len(raw) != 16:
            raise StunError("IPv6 address attribute of %d bytes" % len(value))
        if tid is not None:
            raw = bytes(a ^ b for a, b in zip(raw, MAGIC_BYTES + tid))
        ip = socket.inet_ntop(socket.AF_INET6, raw)
    else:
        raise StunError("address family %d" % family)
    if tid is not None:
        port ^= MAGIC >> 16
    return ip, port


# -------------------------------------------------------------- message --


class Message:
    """A STUN message: method, class, transaction id and attributes in order."""

    def __init__(self, method, cls=REQUEST, tid=None, attrs=None):
        self.method = method
        self.cls = cls
        self.tid = tid if tid is not None else os.urandom(12)
        self.attrs = list(attrs or [])  # [(type, bytes)]
        self.raw = b""
        self.integrity_ok = None  # set by parse() when a key was given
        self.fingerprint_ok = None

    # --- building

    def add(self, atype, value):
        if isinstance(value, str):
            value = value.encode()
        self.attrs.append((atype, value))
        return self

    def add_u32(self, atype, v):
        return self.add(atype, struct.pack("!I", v))

    def add_xor_addr(self, atype, ip, port):
        return self.add(atype, xor_address(ip, port, self.tid))

    def encode(self, key=None, fingerprint=True, cookie=MAGIC_BYTES):
        """Wire bytes; MESSAGE-INTEGRITY (key) and FINGERPRINT appended last."""
        body = b""
        for t, v in self.attrs:
            body += struct.pack("!HH", t, len(v)) + v + b"\0" * (pad4(len(v)) - len(v))
        head = lambda extra: struct.pack("!HH", msg_type(self.method, self.cls),
                                         len(body) + extra) + cookie + self.tid
        if key is not None:
            mac = hmac.new(key, head(24) + body, hashlib.sha1).digest()
            body += struct.pack("!HH", MESSAGE_INTEGRITY, 20) + mac
        if fingerprint:
            crc = (zlib.crc32(head(8) + body) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
            body += struct.pack("!HHI", FINGERPRINT, 4, crc)
        self.raw = head(0) + body
        return self.raw

    # --- reading

    def get(self, atype):
        for t, v in self.attrs:
            if t == atype:
                return v
        return None

    def has(self, atype):
        return any(t == atype for t, _ in self.attrs)

    def types(self):
        return [t for t, _ in self.attrs]

    def error(self):
        """(code, reason) of ERROR-CODE, or None."""
        v = self.get(ERROR_CODE)
        if v is None:
            return None
        if len(v) < 4:
            raise StunError("ERROR-CODE of %d bytes" % len(v))
        return (v[2] & 7) * 100 + v[3], v[4:].decode("utf-8", "replace")

    def code(self):
        e = self.error()
        return e[0] if e else None

    def xor_addr(self, atype):
        v = self.get(atype)
        return None if v is None else parse_address(v, self.tid)

    def u32(self, atype):
        v = self.get(atype)
        return None if v is None else struct.unpack("!I", v)[0]

    def text(self, atype):
        v = self.get(atype)
        return None if v is None else v.decode("utf-8", "replace")

    def __repr__(self):
        attrs = ", ".join("%s(%d)" % (ATTR_NAMES.get(t, hex(t)), len(v)) for t, v in self.attrs)
        extra = " %s" % (self.error(),) if self.cls == ERROR else ""
        return "<STUN %s %s%s [%s] %d bytes>" % (hex(self.method), CLASS_NAMES[self.cls], extra,
                                                 attrs, len(self.raw))


def is_stun(data):
    return len(data) >= HEADER_LEN and data[0] & 0xC0 == 0 and data[4:8] == MAGIC_BYTES


def parse(data, key=None, strict_padding=True):
    """A Message from wire bytes; checks FINGERPRINT and, given key, MESSAGE-INTEGRITY.

    Padding must be zero unless strict_padding is False (RFC 5769's vectors
    pad with spaces; tsunagi always pads with zeros)."""
    if len(data) < HEADER_LEN:
        raise StunError("%d bytes: shorter than a STUN header" % len(data))
    t, length = struct.unpack("!HH", data[:4])
    if t & 0xC000:
        raise StunError("first two bits not zero: %r" % data[:4])
    if data[4:8] != MAGIC_BYTES:
        raise StunError("no magic cookie")
    if length % 4 or HEADER_LEN + length != len(data):
        raise StunError("length field %d for %d bytes" % (length, len(data)))
    method, cls = split_type(t)
    m = Message(method, cls, data[8:20])
    m.raw = bytes(data)
    off = HEADER_LEN
    while off < len(data):
        if off + 4 > len(data):
            raise StunError("attribute header truncated at %d" % off)
        at, al = struct.unpack("!HH", data[off:off + 4])
        if off + 4 + al > len(data):
            raise StunError("attribute 0x%04x overruns the message" % at)
        value = data[off + 4:off + 4 + al]
        padding = data[off + 4 + al:off + 4 + pad4(al)]
        if strict_padding and padding.strip(b"\0"):
            raise StunError("attribute 0x%04x has non-zero padding %r" % (at, padding))
        if at == MESSAGE_INTEGRITY and key is not None:
            head = struct.pack("!HH", t, off + 24 - HEADER_LEN) + data[4:20]
            mac = hmac.new(key, head + data[HEADER_LEN:off], hashlib.sha1).digest()
            m.integrity_ok = hmac.compare_digest(mac, value)
        if at == FINGERPRINT:
            if off + 8 != len(data):
                raise StunError("FINGERPRINT is not the last attribute")
            head = struct.pack("!HH", t, length) + data[4:20]
            crc = (zlib.crc32(head + data[HEADER_LEN:off]) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
            m.fingerprint_ok = struct.unpack("!I", value)[0] == crc
        m.attrs.append((at, bytes(value)))
        off += 4 + pad4(al)
    return m


def channel_data(number, payload, stream=False):
    """A ChannelData message (RFC 8656 12.4); padded to 4 over a stream."""
    data = struct.pack("!HH", number, len(payload)) + payload
    if stream:
        data += b"\0" * (pad4(len(data)) - len(data))
    return data


# ------------------------------------------------------------ transport --


class Timeout(Exception):
    pass


class Transport:
    """One client 5-tuple to the server: UDP or TCP, on 127.0.0.1."""

    def __init__(self, port, proto="udp", host="127.0.0.1", timeout=2.0, sock=None):
        self.server = (host, port)
        self.proto = proto
        self.timeout = timeout
        self.buf = b""
        if sock is not None:
            self.sock = sock
        elif proto == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.connect(self.server)
        elif proto == "tcp":
            self.sock = socket.create_connection(self.server, timeout=timeout,
                                                 source_address=("127.0.0.1", 0))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            raise ValueError(proto)

    @property
    def stream(self):
        return self.proto != "udp"

    def local(self):
        return self.sock.getsockname()[:2]

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        if self.stream:
            self.sock.sendall(data)
        else:
            self.sock.send(data)

    def recv_frame(self, timeout=None):
        """The next datagram, or the next STUN/ChannelData frame of the stream.

        Raises Timeout when nothing comes, EOFError when a stream closes."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self.stream:
            self.sock.settimeout(timeout)
            try:
                return self.sock.recv(65536)
            except socket.timeout:
                raise Timeout("nothing within %.1f s" % timeout) from None
        while True:
            n = self._frame_len()
            if n is not None and len(self.buf) >= n:
                frame, self.buf = self.buf[:n], self.buf[n:]
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("no whole frame within %.1f s (%d bytes buffered)"
                              % (timeout, len(self.buf)))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise EOFError("connection closed with %d bytes buffered" % len(self.buf))
            self.buf += data

    def _frame_len(self):
        if len(self.buf) < 4:
            return None
        first = self.buf[0]
        length = struct.unpack("!H", self.buf[2:4])[0]
        if first & 0xC0 == 0:
            return HEADER_LEN + length
        if 0x40 <= first <= 0x7F:
            return pad4(4 + length)
        raise StunError("stream bytes are neither STUN nor ChannelData: %r" % self.buf[:16])

    def closed(self, timeout=2.0):
        """Stream: True if the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


# --------------------------------------------------------------- client --


class Client:
    """A TURN client on one Transport, with the long-term credential dance."""

    def __init__(self, port, proto="udp", user=None, password=None, timeout=2.0, retries=2):
        self.t = Transport(port, proto, timeout=timeout)
        self.user, self.password = user, password
        self.realm = None
        self.nonce = None
        self.key = None
        self.timeout = timeout
        self.retries = retries  # UDP retransmissions of a request
        self.pending = []  # frames read while waiting for an answer

    def close(self):
        self.t.close()

    def local(self):
        return self.t.local()

    # --- raw exchange

    def transact(self, msg, key=None, fingerprint=True, timeout=None):
        """Send a request, return the answer with its transaction id.

        Over UDP the request is retransmitted (same bytes) up to self.retries
        times. Other frames that arrive meanwhile are kept in self.pending."""
        data = msg.encode(key=key, fingerprint=fingerprint)
        tries = 1 + (self.retries if not self.t.stream else 0)
        timeout = self.timeout if timeout is None else timeout
        for _ in range(tries):
            self.t.send_raw(data)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    frame = self.t.recv_frame(left)
                except Timeout:
                    break
                if is_stun(frame) and frame[8:20] == msg.tid:
                    return parse(frame, key=key)
                self.pending.append(frame)
        raise Timeout("no answer to %r" % msg)

    def expect_silence(self, data, timeout=0.5):
        """Send raw bytes; return whatever comes back within timeout (None: nothing)."""
        self.t.send_raw(data)
        try:
            return self.t.recv_frame(timeout)
        except Timeout:
            return None

    # --- authenticated requests

    def request(self, msg_factory, auth=True):
        """Send msg_factory() with credentials, following 401 and 438 once each.

        msg_factory builds a fresh Message (new transaction id) per try."""
        if not auth:
            return self.transact(msg_factory())
        if self.nonce is None:
            first = self.transact(msg_factory())
            if first.cls != ERROR or first.code() != 401:
                return first
            self._learn(first)
        seen_438 = False
        while True:
            m = msg_factory()
            self._credentials(m)
            r = self.transact(m, key=self.key)
            if r.cls == ERROR and r.code() == 438 and not seen_438:
                seen_438 = True
                self._learn(r)
                continue
            if r.has(NONCE) and r.cls == ERROR:
                self.nonce = r.text(NONCE)
            return r

    def _learn(self, r):
        if r.has(REALM):
            self.realm = r.text(REALM)
        if r.has(NONCE):
            self.nonce = r.text(NONCE)
        if self.user is not None and self.realm is not None:
            self.key = long_term_key(self.user, self.realm, self.password)

    def _credentials(self, m):
        m.add(USERNAME, self.user)
        m.add(REALM, self.realm)
        m.add(NONCE, self.nonce)

    # --- TURN methods

    def binding(self):
        return self.transact(Message(BINDING))

    def allocate(self, lifetime=None, transport=UDP_PROTO, extra=()):
        def make():
            m = Message(ALLOCATE)
            m.add(REQUESTED_TRANSPORT, struct.pack("!B3x", transport))
            if lifetime is not None:
                m.add_u32(LIFETIME, lifetime)
            for t, v in extra:
                m.add(t, v)
            return m
        return self.request(make)

    def refresh(self, lifetime=None):
        def make():
            m = Message(REFRESH)
            if lifetime is not None:
                m.add_u32(LIFETIME, lifetime)
            return m
        return self.request(make)

    def create_permission(self, *ips):
        def make():
            m = Message(CREATE_PERMISSION)
            for ip in ips:
                m.add_xor_addr(XOR_PEER_ADDRESS, ip, 0)
            return m
        return self.request(make)

    def channel_bind(self, number, ip, port):
        def make():
            m = Message(CHANNEL_BIND)
            m.add(CHANNEL_NUMBER, struct.pack("!HH", number, 0))
            m.add_xor_addr(XOR_PEER_ADDRESS, ip, port)
            return m
        return self.request(make)

    def send_indication(self, ip, port, payload):
        m = Message(SEND, INDICATION)
        m.add_xor_addr(XOR_PEER_ADDRESS, ip, port)
        m.add(DATA_ATTR, payload)
        self.t.send_raw(m.encode())

    def send_channel(self, number, payload):
        self.t.send_raw(channel_data(number, payload, stream=self.t.stream))

    def next_frame(self, timeout=None):
        """A frame kept from an earlier wait, or the next one from the server."""
        if self.pending:
            return self.pending.pop(0)
        return self.t.recv_frame(self.timeout if timeout is None else timeout)

    def recv_data(self, timeout=None):
        """The next relayed payload: ('data', (ip, port), payload) for a Data
        indication, ('channel', number, payload) for ChannelData."""
        frame = self.next_frame(timeout)
        if is_stun(frame):
            m = parse(frame)
            if m.method != DATA or m.cls != INDICATION:
                raise StunError("expected a Data indication, got %r" % m)
            return "data", m.xor_addr(XOR_PEER_ADDRESS), m.get(DATA_ATTR)
        number, length = struct.unpack("!HH", frame[:4])
        return "channel", number, frame[4:4 + length]


def udp_peer():
    """A UDP socket on 127.0.0.1 playing a TURN peer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def recv_or_none(sock, timeout=0.5):
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(65536)
    except socket.timeout:
        return None
