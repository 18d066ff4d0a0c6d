"""A raw WebSocket client for conformance testing (RFC 6455, RFC 7692).

Standard library only. Unlike a normal client it sends whatever it is told
(reserved bits, bad opcodes, unmasked or chopped frames) and judges what the
server sends back strictly: every server frame is checked against RFC 6455
and any violation is recorded, never silently tolerated.

The Session mirrors the parts of Autobahn's WebSocketProtocol its fuzzing
client relies on: who started the closing handshake (closed_by_me), who
dropped TCP (dropped_by_me), whether the close was clean (close frames both
ways and the server closed TCP), and the peer's close code and reason.
"""

import base64
import errno
import hashlib
import select
import socket
import struct
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Close codes a server may put on the wire (RFC 6455 7.4, IANA registry).
VALID_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}

OPEN, CLOSING, CLOSED = "OPEN", "CLOSING", "CLOSED"


def close_code_valid(code):
    return code in VALID_CLOSE_CODES or 3000 <= code <= 4999


def mask_bytes(data, key, offset=0):
    """XOR data with the 4-byte mask key, as payload bytes offset.. (big-int XOR: fast on MiBs)."""
    n = len(data)
    if n == 0:
        return b""
    r = offset % 4
    key = key[r:] + key[:r]
    m = key * ((n + 3) // 4)
    if len(m) != n:
        m = m[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


def frame_header(opcode, length, fin=True, rsv=0, mask_key=None):
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    m = 0x80 if mask_key is not None else 0
    if length < 126:
        h = struct.pack("!BB", b0, m | length)
    elif length < 65536:
        h = struct.pack("!BBH", b0, m | 126, length)
    else:
        h = struct.pack("!BBQ", b0, m | 127, length)
    return h + (mask_key or b"")


def new_key(rng):
    return base64.b64encode(bytes(rng.getrandbits(8) for _ in range(16))).decode()


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


# ------------------------------------------------------ permessage-deflate --


def offer_string(offer):
    """One permessage-deflate offer dict -> extension string."""
    s = "permessage-deflate"
    for name in ("client_no_context_takeover", "client_max_window_bits", "server_no_context_takeover",
                 "server_max_window_bits"):
        v = offer.get(name)
        if v is True:
            s += "; " + name
        elif v:
            s += "; %s=%d" % (name, v)
    return s


def parse_extensions(value):
    """'a; x=1; y, b' -> [(name, [(param, value or True)])]."""
    out = []
    for ext in split_outside_quotes(value, ","):
        ext = ext.strip()
        if not ext:
            continue
        parts = [p.strip() for p in split_outside_quotes(ext, ";")]
        params = []
        for p in parts[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                v = v.strip()
                if len(v) >= 2 and v[0] == v[-1] == '"':
                    v = v[1:-1]
                params.append((k.strip().lower(), v))
            else:
                params.append((p.lower(), True))
        out.append((parts[0].lower(), params))
    return out


def split_outside_quotes(s, sep):
    parts, cur, q = [], [], False
    for ch in s:
        if ch == '"':
            q = not q
        if ch == sep and not q:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def negotiate(offers, header):
    """Judge the server's Sec-WebSocket-Extensions answer to our offers.

    Returns (params, error): params is None when no extension was accepted,
    else a dict with the negotiated parameters for both directions.
    """
    if header is None or header.strip() == "":
        return None, None
    exts = parse_extensions(header)
    if len(exts) != 1:
        return None, "server accepted %d extensions (%r); exactly one permessage-deflate expected" % (len(exts), header)
    name, params = exts[0]
    if name != "permessage-deflate":
        return None, "server accepted an extension that was not offered: %r" % header
    if not offers:
        return None, "server answered an extension although none was offered: %r" % header
    resp = {}
    for k, v in params:
        if k in resp:
            return None, "duplicate parameter %s in %r" % (k, header)
        if k in ("server_no_context_takeover", "client_no_context_takeover"):
            if v is not True:
                return None, "parameter %s must have no value: %r" % (k, header)
        elif k in ("server_max_window_bits", "client_max_window_bits"):
            if v is True or not v.isdigit() or v != str(int(v)) or not 8 <= int(v) <= 15:
                return None, "bad value for %s in %r" % (k, header)
            v = int(v)
        else:
            return None, "unknown parameter %s in %r" % (k, header)
        resp[k] = v
    for o in offers:
        if o.get("server_no_context_takeover") and "server_no_context_takeover" not in resp:
            continue
        if o.get("server_max_window_bits"):
            if resp.get("server_max_window_bits", 99) > o["server_max_window_bits"]:
                continue
        if "client_max_window_bits" in resp:
            cm = o.get("client_max_window_bits")
            if not cm:
                continue
            if cm is not True and resp["client_max_window_bits"] > cm:
                continue
        cm = o.get("client_max_window_bits")
        client_bits = resp.get("client_max_window_bits") or (cm if cm not in (None, True) else 15)
        return {"server_no_context_takeover": "server_no_context_takeover" in resp,
                "client_no_context_takeover": "client_no_context_takeover" in resp,
                "server_max_window_bits": resp.get("server_max_window_bits", 15),
                "client_max_window_bits": client_bits,
                "response": header}, None
    return None, "the answer %r fits none of the offers %r" % (header, [offer_string(o) for o in offers])


class Deflate:
    """Both directions of permessage-deflate as negotiated."""

    def __init__(self, params):
        self.p = params
        self.comp = None
        self.decomp = None

    def compress(self, data):
        """Compressed payload (without the 00 00 ff ff tail), or None to send uncompressed."""
        bits = self.p["client_max_window_bits"]
        if bits < 9:
            return None  # zlib cannot produce raw deflate with an 8-bit window
        if self.comp is None or self.p["client_no_context_takeover"]:
            self.comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits, 8)
        out = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def decompress(self, data):
        # The inflater is sized to what the server promised (server_max_window_bits),
        # and reset per message when it promised server_no_context_takeover, so a
        # server that breaks either promise produces data that fails to inflate.
        if self.decomp is None or self.p["server_no_context_takeover"]:
            self.decomp = zlib.decompressobj(-self.p["server_max_window_bits"])
        out = self.decomp.decompress(data + b"\x00\x00\xff\xff")
        if self.decomp.unconsumed_tail or self.decomp.eof:
            raise zlib.error("trailing data after the deflate block")
        return out


# ------------------------------------------------------------- handshake --


class HandshakeResponse:
    def __init__(self, status, reason, headers, raw):
        self.status, self.reason, self.headers, self.raw = status, reason, headers, raw

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else None


def read_head(sock, deadline, limit=65536):
    """Read an HTTP response head: (HandshakeResponse or None, leftover bytes, eof)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete HTTP response head (got %r)" % buf[:200])
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            return (parse_head(buf) if buf else None), b"", True
        buf += data
        if len(buf) > limit:
            raise ValueError("HTTP response head too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    return parse_head(head), rest, False


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError("bad status line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, sep, v = line.partition(":")
        if not sep:
            raise ValueError("bad header line %r" % line)
        headers.append((k.strip(), v.strip()))
    return HandshakeResponse(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, head)


def connect(host, port, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def handshake(sock, host_header, path, rng, timeout, extra_headers=(), extensions=None):
    """Send an upgrade request, read the answer. Returns (response, leftover, error)."""
    key = new_key(rng)
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host_header, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
    if extensions:
        lines.append("Sec-WebSocket-Extensions: %s" % extensions)
    lines += ["%s: %s" % kv for kv in extra_headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    resp, rest, eof = read_head(sock, time.monotonic() + timeout)
    if resp is None:
        return None, b"", "connection closed before any response"
    if resp.status != 101:
        return resp, rest, "handshake answered %d %s" % (resp.status, resp.reason)
    if (resp.header("Upgrade") or "").lower() != "websocket":
        return resp, rest, "101 without Upgrade: websocket"
    if "upgrade" not in [t.strip().lower() for t in (resp.header("Connection") or "").split(",")]:
        return resp, rest, "101 without Connection: Upgrade"
    if resp.header("Sec-WebSocket-Accept") != accept_for(key):
        return resp, rest, "bad Sec-WebSocket-Accept %r" % resp.header("Sec-WebSocket-Accept")
    return resp, rest, None


# --------------------------------------------------------------- session --


class Session:
    """One open WebSocket connection, driven by the caller's pump() calls."""

    def __init__(self, sock, leftover=b"", deflate=None, rng=None, close_timeout=1.0, drop_timeout=1.0):
        self.sock = sock
        self.sock.setblocking(False)
        self.rx = bytearray(leftover)
        self.pos = 0
        self.deflate = deflate
        self.rng = rng
        self.close_timeout = close_timeout  # Autobahn's closeHandshakeTimeout
        self.drop_timeout = drop_timeout    # Autobahn's serverConnectionDropTimeout
        self.write_stall = 30.0
        self.stream_cut = False  # a write was abandoned mid-frame: nothing more can be sent
        self._in_write = False
        self._deferred = []     # pongs owed for pings read during a write
        self.state = OPEN
        self.events = []
        self.closed_by_me = False     # we sent the first close frame
        self.server_initiated = False  # the server sent close first, or dropped TCP while open
        self.dropped_by_me = False
        self.drop_reason = None
        self.close_sent = False
        self.close_received = False
        self.remote_close_code = None
        self.remote_close_reason = None
        self.tcp_closed_by_peer = False
        self.was_clean = False
        self.unclean_reason = None
        self.violation = None
        self.pings_answered = 0
        self.deadline = None  # internal: close handshake / TCP drop timeout
        self.deadline_why = None
        self._msg_op = None
        self._msg_parts = []
        self._msg_compressed = False
        self._unparsed = bool(leftover)
        self.bytes_received = 0

    # ----------------------------------------------------------- sending --

    def build_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
        key = self.mask_key() if mask else None
        n = len(payload) if length is None else length
        body = mask_bytes(payload, key) if key else payload
        return frame_header(opcode, n, fin, rsv, key) + body

    def mask_key(self):
        return bytes(self.rng.getrandbits(8) for _ in range(4))

    def send_raw(self, data, chop=None, chop_delay=0.0, sync=False):
        """Write bytes (optionally in chops); False if the peer is gone."""
        if self.state == CLOSED or self.stream_cut:
            return False
        mv = memoryview(data)
        self._in_write = True
        try:
            if chop:
                for i in range(0, len(data), chop):
                    if not self._write(mv[i:i + chop]):
                        return False
                    if chop_delay:
                        time.sleep(chop_delay)
            elif not self._write(mv):
                return False
        finally:
            self._in_write = False
            deferred, self._deferred = self._deferred, []
            for pong in deferred:
                if self.state == OPEN and not self.stream_cut:
                    self.send_frame(10, pong)
        if sync:
            time.sleep(0.005)
        return True

    def _write(self, mv):
        """Write all of mv, reading whatever arrives meanwhile (no deadlock on big echoes)."""
        stalled = 0.0
        while len(mv) and self.state != CLOSED:
            try:
                n = self.sock.send(mv)
                mv = mv[n:]
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError, OSError) as e:
                if isinstance(e, OSError) and e.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN,
                                                              errno.ESHUTDOWN, None):
                    raise
                self._read_rest()
                self._peer_gone("write failed: %s" % e)
                return False
            r, w, _ = select.select([self.sock], [self.sock], [], 5.0)
            if r:
                if not self._recv_some():
                    # EOF while we still have bytes to send: the server closed.
                    self._parse()
                    self._peer_gone("server closed TCP while the client was sending")
                    return False
                self._parse()
                if self.close_received or self.state == CLOSED:
                    # The server failed the connection while we were sending: stop here.
                    # What we leave unsent may be mid-frame, so nothing more can follow.
                    if len(mv):
                        self.stream_cut = True
                    return not len(mv)
            if not r and not w:
                stalled += 5.0
                if stalled >= self.write_stall:
                    self.drop("server read nothing for %.0f s while the client was sending" % stalled)
                    return False
            else:
                stalled = 0.0
        return not len(mv)

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True, chop=None, sync=False, chop_delay=0.0):
        return self.send_raw(self.build_frame(opcode, payload, fin, rsv, mask), chop, chop_delay, sync)

    def send_close(self, code=None, reason=b""):
        """Start the closing handshake (Autobahn's sendCloseFrame): only when open."""
        if self.state != OPEN:
            return False
        payload = b"" if code is None else struct.pack("!H", code) + reason
        if code is None and reason:
            payload = reason  # a malformed close payload (e.g. one octet)
        self.state = CLOSING
        self.closed_by_me = True
        self.close_sent = True
        self._set_deadline(self.close_timeout, "no close frame from the server within %.1f s of ours"
                           % self.close_timeout)
        self.send_frame(8, payload)
        return True

    def drop(self, why):
        """Drop TCP (Autobahn's dropConnection by us)."""
        if self.state == CLOSED:
            return
        self.dropped_by_me = True
        self.drop_reason = why
        self.was_clean = False
        if self.unclean_reason is None:
            self.unclean_reason = why
        self.state = CLOSED
        try:
            self.sock.close()
        except OSError:
            pass

    # --------------------------------------------------------- receiving --

    def pump(self, until, stop=None):
        """Process incoming data until time until, the connection closes, or stop() holds."""
        while self.state != CLOSED:
            if stop is not None and stop():
                return
            now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                self.drop(self.deadline_why)
                return
            end = until if self.deadline is None else min(until, self.deadline)
            if self._unparsed:
                self._parse()  # bytes read while sending
                continue
            if now >= end:
                return
            r, _, _ = select.select([self.sock], [], [], max(0.0, end - now))
            if r:
                if not self._recv_some():
                    self._parse()
                    self._peer_gone(None)
                    return
                self._parse()

    def _recv_some(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return True
        except (ConnectionResetError, OSError):
            return False
        if not data:
            return False
        self.bytes_received += len(data)
        self.rx += data
        self._unparsed = True
        return True

    def _read_rest(self):
        """After a failed write: keep what the server sent before closing (its close frame)."""
        for _ in range(64):
            try:
                data = self.sock.recv(1 << 20)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            self.rx += data
        self._parse()

    def _peer_gone(self, why):
        if self.state == CLOSED:
            return
        self.tcp_closed_by_peer = True
        if self.state == OPEN:
            self.server_initiated = True
            self.unclean_reason = "server dropped TCP without a closing handshake"
        if self.close_sent and self.close_received:
            self.was_clean = True
        else:
            self.was_clean = False
            if self.unclean_reason is None:
                self.unclean_reason = why or "TCP closed by the server before the closing handshake completed"
        self.state = CLOSED
        try:
            self.sock.close()
        except OSError:
            pass

    def _set_deadline(self, secs, why):
        self.deadline = time.monotonic() + secs
        self.deadline_why = why

    def _violate(self, what):
        """The server broke the protocol: record it and fail the connection (drop TCP)."""
        if self.violation is None:
            self.violation = what
        self.drop("client failed the connection: " + what)

    def _parse(self):
        self._unparsed = False
        rx = self.rx
        while self.state != CLOSED:
            avail = len(rx) - self.pos
            if avail < 2:
                break
            p = self.pos
            b0, b1 = rx[p], rx[p + 1]
            n = b1 & 0x7F
            hl = 2
            if n == 126:
                hl = 4
            elif n == 127:
                hl = 10
            masked = b1 & 0x80
            if masked:
                hl += 4
            if avail < hl:
                break
            if n == 126:
                n = struct.unpack_from("!H", rx, p + 2)[0]
            elif n == 127:
                n = struct.unpack_from("!Q", rx, p + 2)[0]
            if avail < hl + n:
                if n > (1 << 31):
                    self._violate("frame length %d" % n)
                break
            payload = bytes(rx[p + hl:p + hl + n])
            self.pos = p + hl + n
            self._frame(b0 & 0x80, (b0 >> 4) & 7, b0 & 0xF, masked, payload)
        if self.pos > (1 << 20) or self.pos == len(rx):
            del rx[:self.pos]
            self.pos = 0

    def _frame(self, fin, rsv, opcode, masked, payload):
        if masked:
            return self._violate("server frame is masked (RFC 6455 5.1)")
        if self.close_received:
            return self._violate("frame (opcode %d) after the server's close frame" % opcode)
        if rsv & 3:
            return self._violate("server frame with RSV2/RSV3 set (rsv=%d)" % rsv)
        if opcode >= 8:
            if rsv:
                return self._violate("server control frame with RSV1 set")
            if not fin:
                return self._violate("fragmented control frame from the server")
            if len(payload) > 125:
                return self._violate("server control frame of %d octets" % len(payload))
            if opcode == 8:
                return self._close_frame(payload)
            if opcode == 9:
                if self.state == OPEN:
                    self.pings_answered += 1
                    if self._in_write:
                        self._deferred.append(payload)  # after the frame being written
                    else:
                        self.send_frame(10, payload)
                return
            if opcode == 10:
                self.events.append(("pong", payload))
                return
            return self._violate("reserved control opcode %d from the server" % opcode)
        if opcode in (1, 2):
            if self._msg_op is not None:
                return self._violate("new data frame while a fragmented message is in progress")
            if rsv and self.deflate is None:
                return self._violate("RSV1 set without permessage-deflate negotiated")
            self._msg_op = opcode
            self._msg_parts = [payload]
            self._msg_compressed = bool(rsv)
        elif opcode == 0:
            if self._msg_op is None:
                return self._violate("continuation frame with no message in progress")
            if rsv:
                return self._violate("RSV1 set on a continuation frame")
            self._msg_parts.append(payload)
        else:
            return self._violate("reserved data opcode %d from the server" % opcode)
        if fin:
            data = b"".join(self._msg_parts)
            op, compressed = self._msg_op, self._msg_compressed
            self._msg_op, self._msg_parts = None, []
            if compressed:
                try:
                    data = self.deflate.decompress(data)
                except zlib.error as e:
                    return self._violate("compressed message from the server does not inflate: %s" % e)
            if op == 1:
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as e:
                    return self._violate("text message from the server is not valid UTF-8: %s" % e)
            self.events.append(("message", data, op == 2))

    def _close_frame(self, payload):
        code = reason = None
        if len(payload) == 1:
            return self._violate("server close frame with a 1-octet payload")
        if len(payload) >= 2:
            code = struct.unpack("!H", payload[:2])[0]
            if not close_code_valid(code):
                return self._violate("server close frame with invalid code %d" % code)
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                return self._violate("server close reason is not valid UTF-8")
        self.close_received = True
        self.remote_close_code = code
        self.remote_close_reason = reason
        if self.state == OPEN:
            # The server starts the closing handshake (or fails the connection):
            # reply as Autobahn does, with 1000, and expect the server to drop TCP.
            # Not while a frame of ours is half written: the reply would land inside it.
            self.server_initiated = True
            self.state = CLOSING
            if not self._in_write:
                self.close_sent = True
                self.send_frame(8, struct.pack("!H", 1000))
            else:
                self.unclean_reason = "the server's close frame arrived while the client was mid-write; no reply"
        self._set_deadline(self.drop_timeout, "server did not close TCP within %.1f s of the closing handshake"
                           % self.drop_timeout)
