#!/usr/bin/python3
"""Generate the conformance case data: cases.json (Autobahn|Testsuite 1-7, 9,
10, 12, 13 re-implemented) and extra.json (cases Autobahn does not have).

The data is committed; run.py reads it and never imports this file. Rerun
after editing: /usr/bin/python3 tests/conformance/gen_cases.py

Each case mirrors the Autobahn fuzzing-client case of the same id: the same
frames in the same order, chopped the same way, the same waits, and the same
expected outcomes ("OK" / "NON-STRICT" event lists, the close expectation).
Where a case is changed (sizes scaled for the ASan build, a window size zlib
cannot honour) the case says so in "scaled" or "deviation". The format is
described in README.md next to this file.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

KiB = 1024
MiB = 1024 * 1024

# ----------------------------------------------------------------- helpers --


def text(s):
    return {"text": s}


def hexs(b):
    return {"hex": b.hex()}


def rep(unit, length):
    """unit repeated (and cut) to length octets; unit is bytes."""
    try:
        return {"repeat": {"text": unit.decode("ascii")}, "length": length}
    except UnicodeDecodeError:
        return {"repeat": {"hex": unit.hex()}, "length": length}


def frame(opcode, payload=None, fin=True, rsv=0, chop=None, sync=False, **kw):
    a = {"op": "frame", "opcode": opcode}
    if payload is not None:
        a["payload"] = payload
    if not fin:
        a["fin"] = False
    if rsv:
        a["rsv"] = rsv
    if chop:
        a["chop"] = chop
    if sync:
        a["sync"] = True
    a.update(kw)
    return a


def close(code=None, reason=None):
    a = {"op": "close"}
    if code is not None:
        a["code"] = code
    if reason is not None:
        a["reason"] = reason
    return a


def kill_after(s):
    return {"op": "kill_after", "seconds": s}


def close_after(s):
    return {"op": "close_after", "seconds": s}


def wait(s, tag):
    return {"op": "wait", "seconds": s, "tag": tag}


def msg(payload, binary=False):
    return ["message", payload, binary]


def pong(payload):
    return ["pong", payload]


def timeout(tag):
    return ["timeout", tag]


NORMAL, PROTO, INVALID = 1000, 1002, 1007

CLEAN_NORMAL = {"closed_by_me": True, "codes": [NORMAL], "require_clean": True}
FAIL_PROTO = {"closed_by_me": False, "codes": [PROTO], "require_clean": False}
FAIL_INVALID = {"closed_by_me": False, "codes": [INVALID], "require_clean": False}

CASES = []


def case(cid, desc, expectation, actions, ok=None, non_strict=None, close_exp=None,
         close_when_done=True, **extra):
    exp = {"events": {}, "close": close_exp or CLEAN_NORMAL}
    if ok is not None:
        exp["events"]["OK"] = ok
    if non_strict is not None:
        exp["events"]["NON-STRICT"] = non_strict
    if not close_when_done:
        exp["close_when_done"] = False
    c = {"id": cid, "category": cid.split(".")[0], "description": desc,
         "expectation": expectation, "actions": actions, "expect": exp}
    for k, v in extra.items():
        if k == "grade":
            exp["grade"] = v
        else:
            c[k] = v
    CASES.append(c)
    return c


# ------------------------------------------------------------- 1 Framing --


def gen_1():
    lengths = [0, 125, 126, 127, 128, 65535, 65536]
    for sub, opcode, unit, kind in ((1, 1, b"*", "text"), (2, 2, b"\xfe", "binary")):
        for i, n in enumerate(lengths + [65536], 1):
            chop = 997 if i == 8 else None
            kill = 1 if n <= 128 else 10
            d = "Send %s message with payload of length %d." % (kind, n)
            if chop:
                d = d[:-1] + ". Sent out data in chops of 997 octets."
            case("1.%d.%d" % (sub, i), d,
                 "Receive echo'ed %s message (with payload as sent). Clean close with normal code." % kind,
                 [frame(opcode, rep(unit, n), chop=chop), kill_after(kill)],
                 ok=[msg(rep(unit, n), opcode == 2)])


# ------------------------------------------------------- 2 Pings/Pongs --


def gen_2():
    pong_exp = "Pong with payload echo'ed is sent in reply to Ping. Clean close with normal code."
    case("2.1", "Send ping without payload.",
         "Pong (with empty payload) is sent in reply to Ping. Clean close with normal code.",
         [frame(9), close_after(1)], ok=[pong(text(""))])
    case("2.2", "Send ping with small text payload.", pong_exp,
         [frame(9, text("Hello, world!")), close_after(1)], ok=[pong(text("Hello, world!"))])
    p = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    case("2.3", "Send ping with small binary (non UTF-8) payload.", pong_exp,
         [frame(9, hexs(p)), close_after(1)], ok=[pong(hexs(p))])
    case("2.4", "Send ping with binary payload of 125 octets.", pong_exp,
         [frame(9, rep(b"\xfe", 125)), close_after(1)], ok=[pong(rep(b"\xfe", 125))])
    case("2.5", "Send ping with binary payload of 126 octets.",
         "Connection is failed immediately (1002/Protocol Error), since control frames are only "
         "allowed to have payload up to and including 125 octets.",
         [frame(9, rep(b"\xfe", 126)), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
    case("2.6", "Send ping with binary payload of 125 octets, send in octet-wise chops.",
         "Pong with payload echo'ed is sent in reply to Ping. Implementations must be TCP clean. "
         "Clean close with normal code.",
         [frame(9, rep(b"\xfe", 125), chop=1), close_after(2)], ok=[pong(rep(b"\xfe", 125))])
    case("2.7", "Send unsolicited pong without payload. Verify nothing is received. Clean close with normal code.",
         "Nothing.", [frame(10), close(NORMAL), close_after(1)], ok=[])
    case("2.8", "Send unsolicited pong with payload. Verify nothing is received. Clean close with normal code.",
         "Nothing.", [frame(10, text("unsolicited pong payload")), close(NORMAL), close_after(1)], ok=[])
    case("2.9", "Send unsolicited pong with payload. Send ping with payload. Verify pong for ping is received.",
         "Nothing in reply to own Pong, but Pong with payload echo'ed in reply to Ping. Clean close with normal code.",
         [frame(10, text("unsolicited pong payload")), frame(9, text("ping payload")), close_after(1)],
         ok=[pong(text("ping payload"))])
    for cid, chop, extra in (("2.10", None, ""), ("2.11", 1, " Send out octets in octet-wise chops.")):
        pings = ["payload-%d" % i for i in range(10)]
        case(cid, "Send 10 Pings with payload." + extra,
             "Pongs for our Pings with all the payloads. Note: This is not required by the Spec .. "
             "but we check for this behaviour anyway. Clean close with normal code.",
             [frame(9, text(p), chop=chop) for p in pings] + [close_after(3)],
             ok=[pong(text(p)) for p in pings])


# ----------------------------------------------------- 3 Reserved Bits --


def gen_3():
    hello = text("Hello, world!")
    rsv_fail = ("Echo for first message is received, but then connection is failed immediately, "
                "since RSV must be 0, when no extension defining RSV meaning has been negotiated. "
                "The Pong is not received.")
    case("3.1", "Send small text message with RSV = 1.",
         "The connection is failed immediately (1002/protocol error), since RSV must be 0, when no "
         "extension defining RSV meaning has been negoiated.",
         [frame(1, hello, rsv=1), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
    case("3.2", "Send small text message, then send again with RSV = 2, then send Ping.", rsv_fail,
         [frame(1, hello), frame(1, hello, rsv=2), frame(9), kill_after(1)],
         ok=[msg(hello)], non_strict=[], close_exp=FAIL_PROTO)
    case("3.3", "Send small text message, then send again with RSV = 3, then send Ping. Octets are "
         "sent in frame-wise chops.", rsv_fail,
         [frame(1, hello, sync=True), frame(1, hello, rsv=3, sync=True), frame(9, sync=True), kill_after(1)],
         ok=[msg(hello)], non_strict=[], close_exp=FAIL_PROTO)
    case("3.4", "Send small text message, then send again with RSV = 4, then send Ping. Octets are "
         "sent in octet-wise chops.", rsv_fail,
         [frame(1, hello, chop=1), frame(1, hello, rsv=4, chop=1), frame(9, chop=1), kill_after(1)],
         ok=[msg(hello)], non_strict=[], close_exp=FAIL_PROTO)
    p = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    case("3.5", "Send small binary message with RSV = 5.", "The connection is failed immediately, since RSV must be 0.",
         [frame(2, hexs(p), rsv=5), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
    # Autobahn's 3.6 says "Ping" but sends opcode 2; kept as Autobahn sends it.
    case("3.6", "Send Ping with RSV = 6.", "The connection is failed immediately, since RSV must be 0.",
         [frame(2, hello, rsv=6), kill_after(1)], ok=[], close_exp=FAIL_PROTO,
         autobahn="Autobahn's Case3_6 sends opcode 2 (binary), not 9, despite its description")
    case("3.7", "Send Close with RSV = 7.", "The connection is failed immediately, since RSV must be 0.",
         [frame(8, rsv=7), kill_after(1)], ok=[], close_exp=FAIL_PROTO)


# ------------------------------------------------------------ 4 Opcodes --


def gen_4():
    hello = text("Hello, world!")
    fail = ("Echo for first message is received, but then connection is failed immediately, since "
            "reserved opcode frame is used. A Pong is not received.")
    for sub, (a, b, c, d, e), kind in ((1, (3, 4, 5, 6, 7), "non-control"), (2, (11, 12, 13, 14, 15), "control")):
        case("4.%d.1" % sub, "Send frame with reserved %s Opcode = %d." % (kind, a),
             "The connection is failed immediately.", [frame(a), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
        case("4.%d.2" % sub, "Send frame with reserved %s Opcode = %d and non-empty payload." % (kind, b),
             "The connection is failed immediately.",
             [frame(b, text("reserved opcode payload")), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
        case("4.%d.3" % sub, "Send small text message, then send frame with reserved %s Opcode = %d, "
             "then send Ping." % (kind, c), fail,
             [frame(1, hello), frame(c), frame(9), kill_after(1)],
             ok=[msg(hello)], non_strict=[], close_exp=FAIL_PROTO)
        case("4.%d.4" % sub, "Send small text message, then send frame with reserved %s Opcode = %d and "
             "non-empty payload, then send Ping." % (kind, d), fail,
             [frame(1, hello), frame(d, hello), frame(9), kill_after(1)],
             ok=[msg(hello)], non_strict=[], close_exp=FAIL_PROTO)
        case("4.%d.5" % sub, "Send small text message, then send frame with reserved %s Opcode = %d and "
             "non-empty payload, then send Ping." % (kind, e), fail,
             [frame(1, hello, chop=1), frame(e, hello, chop=1), frame(9, chop=1), kill_after(1)],
             ok=[msg(hello)], non_strict=[], close_exp=FAIL_PROTO)


# ------------------------------------------------------ 5 Fragmentation --


def gen_5():
    f = [text("fragment%d" % i) for i in range(1, 6)]
    ctrl_fail = "Connection is failed immediately, since control message MUST NOT be fragmented."
    case("5.1", "Send Ping fragmented into 2 fragments.", ctrl_fail,
         [frame(9, f[0], fin=False), frame(0, f[1]), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
    case("5.2", "Send Pong fragmented into 2 fragments.", ctrl_fail,
         [frame(10, f[0], fin=False), frame(0, f[1]), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
    both = text("fragment1fragment2")
    for cid, how, kw in (("5.3", "", {}), ("5.4", ", octets are sent in frame-wise chops", {"sync": True}),
                         ("5.5", ", octets are sent in octet-wise chops", {"chop": 1})):
        case(cid, "Send text Message fragmented into 2 fragments%s." % how,
             "Message is processed and echo'ed back to us.",
             [frame(1, f[0], fin=False, **kw), frame(0, f[1], **kw), close_after(1)], ok=[msg(both)])
    pp = text("ping payload")
    for cid, how, kw in (("5.6", "", {}), ("5.7", " Octets are sent in frame-wise chops.", {"sync": True}),
                         ("5.8", " Octets are sent in octet-wise chops.", {"chop": 1})):
        case(cid, "Send text Message fragmented into 2 fragments, one ping with payload in-between." + how,
             "A pong is received, then the message is echo'ed back to us.",
             [frame(1, f[0], fin=False, **kw), frame(9, pp, **kw), frame(0, f[1], **kw), close_after(1)],
             ok=[pong(pp), msg(both)])
    nothing = "The connection is failed immediately, since there is no message to continue."
    for base, fin in ((9, True), (12, False)):
        for k, (how, kw) in enumerate((("sent in one chop", {}), ("sent in per-frame chops", {"sync": True}),
                                        ("sent in octet-wise chops", {"chop": 1}))):
            case("5.%d" % (base + k),
                 "Send unfragmented Text Message after Continuation Frame with FIN = %s, where there is "
                 "nothing to continue, %s." % ("true" if fin else "false", how), nothing,
                 [frame(0, text("non-continuation payload"), fin=fin, **kw),
                  frame(1, text("Hello, world!"), **kw), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
    case("5.15", "Send text Message fragmented into 2 fragments, then Continuation Frame with FIN = false "
         "where there is nothing to continue, then unfragmented Text Message, all sent in one chop.", nothing,
         [frame(1, f[0], fin=False), frame(0, f[1]), frame(0, text("fragment3"), fin=False),
          frame(1, text("fragment4")), kill_after(1)],
         ok=[msg(both)], non_strict=[], close_exp=FAIL_PROTO)
    for cid, fin in (("5.16", False), ("5.17", True)):
        acts = []
        for _ in range(2):
            acts += [frame(0, f[0], fin=fin), frame(1, f[1], fin=False), frame(0, text("fragment3"))]
        case(cid, "Repeated 2x: Continuation Frame with FIN = %s (where there is nothing to continue), "
             "then text Message fragmented into 2 fragments." % ("true" if fin else "false"), nothing,
             acts + [kill_after(1)], ok=[], close_exp=FAIL_PROTO)
    case("5.18", "Send text Message fragmented into 2 fragments, with both frame opcodes set to text, "
         "sent in one chop.",
         "The connection is failed immediately, since all data frames after the initial data frame "
         "must have opcode 0.",
         [frame(1, f[0], fin=False), frame(1, f[1]), kill_after(1)], ok=[], close_exp=FAIL_PROTO)
    pings = [text("pongme 1!"), text("pongme 2!")]
    for cid, sync in (("5.19", False), ("5.20", True)):
        kw = {"sync": True} if sync else {}
        case(cid, "A fragmented text message is sent in multiple frames. After sending the first 2 frames "
             "of the text message, a Ping is sent. Then we wait 1s, then we send 2 more text fragments, "
             "another Ping and then the final text fragment. Everything is legal." +
             (" All frames are sent with SYNC = True." if sync else ""),
             "The peer immediately answers the first Ping before it has received the last text message "
             "fragment. The peer pong's back the Ping's payload exactly, and echo's the payload of the "
             "fragmented message back to us.",
             [frame(1, f[0], fin=False, **kw), frame(0, f[1], fin=False, **kw), frame(9, pings[0], **kw),
              {"op": "sleep", "seconds": 1},
              frame(0, f[2], fin=False, **kw), frame(0, f[3], fin=False, **kw), frame(9, pings[1], **kw),
              frame(0, f[4], **kw), close_after(1)],
             ok=[pong(pings[0]), pong(pings[1]), msg(text("fragment1fragment2fragment3fragment4fragment5"))])


# ----------------------------------------------------- 6 UTF-8 Handling --


def utf8_sequences():
    """Autobahn's createUtf8TestSequences(), byte for byte (from Markus Kuhn's UTF-8-test.txt)."""
    seqs = []
    vss = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
    seqs.append(("Some valid UTF-8 sequences",
                 [(True, b"hello\x24world"), (True, b"hello\xc2\xa2world"), (True, b"hello\xe2\x82\xacworld"),
                  (True, b"hello\xf0\xa4\xad\xa2world"), (True, vss)]))
    seqs.append(("All prefixes of a valid UTF-8 string that contains multi-byte code points",
                 [(valid_utf8(vss[:i]), vss[:i]) for i in range(1, len(vss) + 1)]))
    seqs.append(("First possible sequence of a certain length",
                 [(True, b"\x00"), (True, b"\xc2\x80"), (True, b"\xe0\xa0\x80"), (True, b"\xf0\x90\x80\x80")]))
    seqs.append(("First possible sequence length 5/6 (invalid codepoints)",
                 [(False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")]))
    seqs.append(("Last possible sequence of a certain length",
                 [(True, b"\x7f"), (True, b"\xdf\xbf"), (True, b"\xef\xbf\xbf"), (True, b"\xf4\x8f\xbf\xbf")]))
    seqs.append(("Last possible sequence length 4/5/6 (invalid codepoints)",
                 [(False, b"\xf7\xbf\xbf\xbf"), (False, b"\xfb\xbf\xbf\xbf\xbf"), (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")]))
    seqs.append(("Other boundary conditions",
                 [(True, b"\xed\x9f\xbf"), (True, b"\xee\x80\x80"), (True, b"\xef\xbf\xbd"),
                  (True, b"\xf4\x8f\xbf\xbf"), (False, b"\xf4\x90\x80\x80")]))
    seqs.append(("Unexpected continuation bytes",
                 [(False, b"\x80"), (False, b"\xbf"), (False, b"\x80\xbf"), (False, b"\x80\xbf\x80"),
                  (False, b"\x80\xbf\x80\xbf"), (False, b"\x80\xbf\x80\xbf\x80"),
                  (False, b"\x80\xbf\x80\xbf\x80\xbf"), (False, bytes(range(0x80, 0xbf)))]))
    lonely = []
    for lo, hi in ((0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7), (0xf8, 0xfb), (0xfc, 0xfd)):
        lonely.append((False, b"".join(bytes([i, 0x20]) for i in range(lo, hi))))
    seqs.append(("Lonely start characters", lonely))
    k = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
         b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    seqs.append(("Sequences with last continuation byte missing", [(False, x) for x in k]))
    seqs.append(("Concatenation of incomplete sequences", [(False, b"".join(k))]))
    seqs.append(("Impossible bytes", [(False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")]))
    seqs.append(("Examples of an overlong ASCII character",
                 [(False, b"\xc0\xaf"), (False, b"\xe0\x80\xaf"), (False, b"\xf0\x80\x80\xaf"),
                  (False, b"\xf8\x80\x80\x80\xaf"), (False, b"\xfc\x80\x80\x80\x80\xaf")]))
    seqs.append(("Maximum overlong sequences",
                 [(False, b"\xc1\xbf"), (False, b"\xe0\x9f\xbf"), (False, b"\xf0\x8f\xbf\xbf"),
                  (False, b"\xf8\x87\xbf\xbf\xbf"), (False, b"\xfc\x83\xbf\xbf\xbf\xbf")]))
    seqs.append(("Overlong representation of the NUL character",
                 [(False, b"\xc0\x80"), (False, b"\xe0\x80\x80"), (False, b"\xf0\x80\x80\x80"),
                  (False, b"\xf8\x80\x80\x80\x80"), (False, b"\xfc\x80\x80\x80\x80\x80")]))
    seqs.append(("Single UTF-16 surrogates",
                 [(False, x) for x in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
                                       b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf")]))
    pairs = []
    for hi in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"):
        for lo in (b"\xed\xb0\x80", b"\xed\xbf\xbf"):
            pairs.append((False, hi + lo))
    seqs.append(("Paired UTF-16 surrogates", pairs))
    nonchars = [(True, b"\xef\xbf\xbe"), (True, b"\xef\xbf\xbf")]
    for z1 in b"\xf0\xf1\xf2\xf3\xf4":
        for z2 in b"\x8f\x9f\xaf\xbf":
            if not (z1 == 0xf4 and z2 != 0x8f):
                for z3 in b"\xbe\xbf":
                    zz = bytes([z1, z2, 0xbf, z3])
                    if zz not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):
                        nonchars.append((True, zz))
    seqs.append(("Non-character code points (valid UTF-8)", nonchars))
    seqs.append(("Unicode specials (i.e. replacement char)",
                 [(True, b"\xef\xbf" + bytes([c])) for c in range(0xb9, 0xc0)]))
    return seqs


def valid_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def gen_6():
    echo_empty = "A message is echo'ed back to us (with empty payload)."
    case("6.1.1", "Send text message of length 0.", echo_empty,
         [frame(1, text("")), close_after(1)], ok=[msg(text(""))])
    case("6.1.2", "Send fragmented text message, 3 fragments each of length 0.", echo_empty,
         [frame(1, text(""), fin=False), frame(0, text(""), fin=False), frame(0, text("")), close_after(1)],
         ok=[msg(text(""))])
    mid = text("middle frame payload")
    case("6.1.3", "Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.",
         "A message is echo'ed back to us (with payload = payload of middle fragment).",
         [frame(1, text(""), fin=False), frame(0, mid, fin=False), frame(0, text("")), close_after(1)],
         ok=[msg(mid)])
    p = "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!"
    echo = "The message is echo'ed back to us."
    case("6.2.1", "Send a valid UTF-8 text message in one fragment.", echo,
         [frame(1, text(p)), close_after(1)], ok=[msg(text(p))])
    case("6.2.2", "Send a valid UTF-8 text message in two fragments, fragmented on UTF-8 code point boundary.",
         echo, [frame(1, text(p[:11]), fin=False), frame(0, text(p[11:])), close_after(1)], ok=[msg(text(p))])
    case("6.2.3", "Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on "
         "positions which are not code point ends.", echo,
         [{"op": "message", "opcode": 1, "payload": text(p), "frag_size": 1}, close_after(1)], ok=[msg(text(p))])
    kappa = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
    case("6.2.4", "Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on "
         "positions which are not code point ends.", echo,
         [{"op": "message", "opcode": 1, "payload": hexs(kappa), "frag_size": 1}, close_after(1)],
         ok=[msg(hexs(kappa))])
    bad = kappa + b"\xed\xa0\x80" + b"edited"
    case("6.3.1", "Send invalid UTF-8 text message unfragmented.",
         "The connection is failed immediately, since the payload is not valid UTF-8.",
         [frame(1, hexs(bad)), kill_after(1)], ok=[], close_exp=FAIL_INVALID)
    case("6.3.2", "Send invalid UTF-8 text message in fragments of 1 octet, resulting in frames ending on "
         "positions which are not code point ends.",
         "The connection is failed immediately, since the payload is not valid UTF-8.",
         [{"op": "message", "opcode": 1, "payload": hexs(bad), "frag_size": 1}, kill_after(1)],
         ok=[], close_exp=FAIL_INVALID)
    # 6.4.x: fail fast. PART2 makes the text invalid (0xf4 0x90: above U+10FFFF); the server must
    # close during the second wait, before PART3 arrives.
    p1, p2, p3 = kappa, b"\xf4\x90\x80\x80", b"edited"
    whole = p1 + p2 + p3
    ff = {"ok": [timeout("A")], "non_strict": [timeout("A"), timeout("B")], "close_exp": FAIL_INVALID}
    ffx = ("The first %s is accepted, we expect to timeout on the first wait. The 2nd %s should be "
           "rejected immediately (fail fast on UTF-8). If we timeout, we expect the connection is "
           "failed at least then, since the complete message payload is not valid UTF-8.")
    case("6.4.1", "Send invalid UTF-8 text message in 3 fragments (frames). First frame payload is valid, "
         "then wait, then 2nd frame which contains the payload making the sequence invalid, then wait, "
         "then 3rd frame with rest. PART1 = %s, PART2 = %s, PART3 = %s" % (p1.hex(), p2.hex(), p3.hex()),
         ffx % ("frame", "frame"),
         [frame(1, hexs(p1), fin=False), wait(1, "A"), frame(0, hexs(p2), fin=False), wait(1, "B"),
          frame(0, hexs(p3)), kill_after(1)], **ff)
    case("6.4.2", "Same as Case 6.4.1, but in 2nd frame, we send only up to and including the octet making "
         "the complete payload invalid. PART1 = %s, PART2 = %s, PART3 = %s"
         % (whole[:12].hex(), whole[12:13].hex(), whole[13:].hex()),
         ffx % ("frame", "frame"),
         [frame(1, hexs(whole[:12]), fin=False), wait(1, "A"), frame(0, hexs(whole[12:13]), fin=False),
          wait(1, "B"), frame(0, hexs(whole[13:])), kill_after(1)], **ff)
    case("6.4.3", "Same as Case 6.4.1, but we send message not in 3 frames, but in 3 chops of the same "
         "message frame. PART1 = %s, PART2 = %s, PART3 = %s" % (p1.hex(), p2.hex(), p3.hex()),
         ffx % ("chop", "chop"),
         [{"op": "frame_begin", "opcode": 1, "length": len(whole)}, {"op": "frame_data", "payload": hexs(p1)},
          wait(1, "A"), {"op": "frame_data", "payload": hexs(p2)}, wait(1, "B"),
          {"op": "frame_data", "payload": hexs(p3)}, kill_after(1)], **ff)
    case("6.4.4", "Same as Case 6.4.2, but we send message not in 3 frames, but in 3 chops of the same "
         "message frame. PART1 = %s, PART2 = %s, PART3 = %s"
         % (whole[:12].hex(), whole[12:13].hex(), whole[13:].hex()),
         ffx % ("chop", "chop"),
         [{"op": "frame_begin", "opcode": 1, "length": len(whole)},
          {"op": "frame_data", "payload": hexs(whole[:12])}, wait(1, "A"),
          {"op": "frame_data", "payload": hexs(whole[12:13])}, wait(1, "B"),
          {"op": "frame_data", "payload": hexs(whole[13:])}, kill_after(1)], **ff)
    for i, (title, seqs) in enumerate(utf8_sequences(), 5):
        for j, (valid, payload) in enumerate(seqs, 1):
            if valid:
                case("6.%d.%d" % (i, j), "%s: send a text message with payload which is valid UTF-8 in one "
                     "fragment. Payload: 0x%s" % (title, payload.hex()), "The message is echo'ed back to us.",
                     [frame(1, hexs(payload)), kill_after(0.5)], ok=[msg(hexs(payload))])
            else:
                case("6.%d.%d" % (i, j), "%s: send a text message with payload which is not valid UTF-8 in "
                     "one fragment. Payload: 0x%s" % (title, payload.hex()),
                     "The connection is failed immediately, since the payload is not valid UTF-8.",
                     [frame(1, hexs(payload)), kill_after(0.5)], ok=[], close_exp=FAIL_INVALID)


# ----------------------------------------------------- 7 Close Handling --


def gen_7():
    hw = text("Hello World!")
    wrong_code = {"wrong_code_fails": True}
    case("7.1.1", "Send a message followed by a close frame",
         "Echoed message followed by clean close with normal code.",
         [frame(1, hw), kill_after(1)], ok=[msg(hw)], **wrong_code)
    case("7.1.2", "Send two close frames", "Clean close with normal code. Second close frame ignored.",
         [close(NORMAL), frame(8), kill_after(1)], ok=[], close_when_done=False, **wrong_code)
    case("7.1.3", "Send a ping after close message", "Clean close with normal code, no pong.",
         [close(NORMAL), frame(9), kill_after(1)], ok=[], close_when_done=False, **wrong_code)
    case("7.1.4", "Send text message after sending a close frame", "Clean close with normal code. Text message ignored.",
         [close(NORMAL), frame(1, hw), kill_after(1)], ok=[], close_when_done=False, **wrong_code)
    case("7.1.5", "Send message fragment1 followed by close then fragment", "Clean close with normal code.",
         [frame(1, text("fragment1"), fin=False), close(NORMAL), frame(0, text("fragment2")), kill_after(1)],
         ok=[], close_when_done=False, **wrong_code)
    case("7.1.6", "Send 256K message followed by close then a ping",
         "Case outcome depends on implementation defined close behavior. Message and close frame are sent "
         "back to back. If the close frame is processed before the text message write is complete (as can "
         "happen in asynchronous processing models) the close frame is processed first and the text message "
         "may not be received or may only be partially received.",
         [frame(1, rep(b"BAsd7&jh23", 256 * KiB)), frame(1, hw), close(NORMAL), frame(9), kill_after(1)],
         ok=[msg(hw)], non_strict=[], close_when_done=False, grade="INFORMATIONAL")
    case("7.3.1", "Send a close frame with payload length 0 (no close code, no close reason)",
         "Clean close with normal code.", [close(), kill_after(1)], ok=[], close_when_done=False, **wrong_code)
    case("7.3.2", "Send a close frame with payload length 1", "Clean close with protocol error or drop TCP.",
         [close(reason=text("a")), kill_after(1)], ok=[], close_when_done=False,
         close_exp={"closed_by_me": True, "codes": [PROTO], "require_clean": False}, **wrong_code)
    case("7.3.3", "Send a close frame with payload length 2 (regular close with a code)",
         "Clean close with normal code.", [close(NORMAL), kill_after(1)], ok=[], close_when_done=False, **wrong_code)
    case("7.3.4", "Send a close frame with close code and close reason", "Clean close with normal code.",
         [close(NORMAL, hw), kill_after(1)], ok=[], close_when_done=False, **wrong_code)
    case("7.3.5", "Send a close frame with close code and close reason of maximum length (123)",
         "Clean close with normal code.", [close(NORMAL, rep(b"*", 123)), kill_after(1)], ok=[],
         close_when_done=False, **wrong_code)
    case("7.3.6", "Send a close frame with close code and close reason which is too long (124) - total frame "
         "payload 126 octets", "Clean close with protocol error code or dropped TCP connection.",
         [close(NORMAL, rep(b"*", 124)), kill_after(1)], ok=[], close_when_done=False,
         close_exp={"closed_by_me": True, "codes": [PROTO], "require_clean": False}, **wrong_code)
    bad = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"
    case("7.5.1", "Send a close frame with invalid UTF8 payload",
         "Clean close with protocol error or invalid utf8 code or dropped TCP.",
         [close(NORMAL, hexs(bad)), kill_after(1)], ok=[], close_when_done=False,
         close_exp={"closed_by_me": True, "codes": [PROTO, INVALID], "require_clean": False}, **wrong_code)
    for i, code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999], 1):
        case("7.7.%d" % i, "Send close with valid close code %d" % code, "Clean close with normal or echoed code",
             [close(code), kill_after(1)], ok=[], close_when_done=False,
             close_exp={"closed_by_me": True, "codes": sorted({NORMAL, code}), "require_clean": True}, **wrong_code)
    for i, code in enumerate([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999], 1):
        case("7.9.%d" % i, "Send close with invalid close code %d" % code,
             "Clean close with protocol error code or drop TCP", [close(code), kill_after(1)], ok=[],
             close_when_done=False, close_exp={"closed_by_me": True, "codes": [PROTO], "require_clean": False},
             **wrong_code)
    for i, code in enumerate([5000, 65535], 1):
        case("7.13.%d" % i, "Send close with close code %d" % code, "Actual events are undefined by the spec.",
             [close(code), kill_after(1)], ok=[], close_when_done=False,
             close_exp={"closed_by_me": True, "codes": [NORMAL, code, PROTO], "require_clean": False},
             grade="INFORMATIONAL")


# ------------------------------------------------- 9 Limits/Performance --

# Autobahn's waits are generous (10..1000 s); ours bound each case so that the
# whole of 9.x stays near a minute on the ASan build with 2 cores.


def bound9(n, autobahn_wait):
    """Seconds to wait for the echo of n octets: Autobahn's wait, capped at 10 s + 2 s/MiB
    (run.py --time-scale multiplies it for slow builds)."""
    return min(autobahn_wait, 10 + 2 * n // MiB)


def gen_9():
    sizes = [64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 8 * MiB, 16 * MiB]
    names = ["64k", "256k", "1M", "4M", "8M", "16M"]
    for sub, opcode, unit in ((1, 1, b"BAsd7&jh23"), (2, 2, b"\x00\xfe\x23\xfa\xf0")):
        kind = "text" if opcode == 1 else "binary"
        for i, (n, name) in enumerate(zip(sizes, names), 1):
            wait9 = bound9(n, [10, 20, 30, 60, 80, 100][i - 1])
            case("9.%d.%d" % (sub, i), "Send %s message message with payload of length %d (%s)." % (kind, n, name),
                 "Receive echo'ed %s message (with payload as sent)." % kind,
                 [frame(opcode, rep(unit, n)), close_after(wait9)], ok=[msg(rep(unit, n), opcode == 2)],
                 timeout=wait9 + 10, heavy=True,
                 autobahn="Autobahn checks only type and length of the echo; this checks the bytes too")
    frags = [64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB]
    for sub, opcode, unit in ((3, 1, b"*"), (4, 2, b"\xfe")):
        kind = "text" if opcode == 1 else "binary"
        for i, fs in enumerate(frags, 1):
            case("9.%d.%d" % (sub, i), "Send fragmented %s message message with message payload of length "
                 "4 * 2**20 (4M). Sent out in fragments of %d." % (kind, fs),
                 "Receive echo'ed %s message (with payload as sent)." % kind,
                 [{"op": "message", "opcode": opcode, "payload": rep(unit, 4 * MiB), "frag_size": fs},
                  close_after(bound9(4 * MiB, 100))], ok=[msg(rep(unit, 4 * MiB), opcode == 2)],
                 timeout=bound9(4 * MiB, 100) + 10, heavy=True)
    chops = [64, 128, 256, 512, 1024, 2048]
    for sub, opcode, unit in ((5, 1, b"BAsd7&jh23"), (6, 2, b"\x00\xfe\x23\xfa\xf0")):
        kind = "text" if opcode == 1 else "binary"
        for i, ch in enumerate(chops, 1):
            case("9.%d.%d" % (sub, i), "Send %s message message with payload of length 1 * 2**20 (1M). Sent out "
                 "data in chops of %d octets." % (kind, ch),
                 "Receive echo'ed %s message (with payload as sent)." % kind,
                 [frame(opcode, rep(unit, 1 * MiB), chop=ch), close_after(bound9(1 * MiB, 1000))],
                 ok=[msg(rep(unit, 1 * MiB), opcode == 2)], timeout=bound9(1 * MiB, 1000) + 10, heavy=True)
    rtt = [(0, 60), (16, 60), (64, 60), (256, 120), (1024, 240), (4096, 480)]
    for sub, opcode, unit in ((7, 1, b"*"), (8, 2, b"\xfe")):
        kind = "text" if opcode == 1 else "binary"
        for i, (n, secs) in enumerate(rtt, 1):
            case("9.%d.%d" % (sub, i), "Send 1000 %s messages of payload size %d to measure implementation/network "
                 "RTT (round trip time) / latency." % (kind, n),
                 "Receive echo'ed %s messages (with payload as sent). Timeout case after %d secs." % (kind, secs),
                 [{"op": "echo_loop", "opcode": opcode, "payload": rep(unit, n), "count": 1000}],
                 close_when_done=False, timeout=min(secs, 60))


# ---------------------------------------------------------- 10 Misc --


def gen_10():
    case("10.1.1", "Send text message with payload of length 65536 auto-fragmented with autoFragmentSize = 1300.",
         "Receive echo'ed text message (with payload as sent and transmitted frame counts as expected). "
         "Clean close with normal code.",
         [{"op": "message", "opcode": 1, "payload": rep(b"*", 65536), "frag_size": 1300}, kill_after(10)],
         ok=[msg(rep(b"*", 65536))])


# ------------------------------------------------ 12, 13 Compression --

# (payload length, message count, Autobahn timeout, auto-fragment size)
MSG_SIZES = [(16, 0), (64, 0), (256, 0), (1024, 0), (4096, 0), (8192, 0), (16384, 0), (32768, 0),
             (65536, 0), (131072, 0), (8192, 256), (16384, 256), (32768, 256), (65536, 256),
             (131072, 256), (131072, 1024), (131072, 4096), (131072, 32768)]

# Autobahn sends each size 1000 times; that is 128 MiB per case at 128 KiB,
# far too slow through an ASan build (216 cases). The count is scaled so a
# case moves about 2 MiB, never fewer than 4 messages (context takeover
# needs a history) nor more than Autobahn's 1000.
AUTOBAHN_COUNT = 1000
CASE_BUDGET = 2 * MiB


def scaled_count(n):
    return max(4, min(AUTOBAHN_COUNT, CASE_BUDGET // n))


# Autobahn's test data are files (a Gutenberg text, a BMP, a PDF, JSON, HTML);
# these are generated stand-ins of the same kind (text / image / mixed binary
# / JSON / HTML), deterministic from a seed. Text corpora are ASCII so any
# slice of them is valid UTF-8, as Autobahn's are.
CORPORA = {
    "gutenberg_faust": {"desc": "Human readable text, German prose (sent as binary, as Autobahn does)",
                        "generator": "prose", "binary": True, "size": 262144, "seed": 1},
    "lena512": {"desc": "Bitmap 512x512 8-bit grayscale", "generator": "bitmap", "binary": True,
                "size": 263222, "seed": 2},
    "ooms": {"desc": "A larger PDF-like file (text objects and compressed streams)", "generator": "pdf",
             "binary": True, "size": 393216, "seed": 3},
    "json_data1": {"desc": "Large JSON data file", "generator": "json", "binary": False,
                   "size": 262144, "seed": 4},
    "html_data1": {"desc": "Large HTML file", "generator": "html", "binary": False, "size": 262144, "seed": 5},
}


def offer(nct=True, cmwb=True, snct=False, smwb=0):
    """An Autobahn PerMessageDeflateOffer(requestNoContextTakeover=snct, requestMaxWindowBits=smwb)."""
    o = {}
    if nct:
        o["client_no_context_takeover"] = True
    if cmwb:
        o["client_max_window_bits"] = True
    if snct:
        o["server_no_context_takeover"] = True
    if smwb:
        o["server_max_window_bits"] = smwb
    return o


def deflate_case(cid, offers, corpus, n, frag, desc_offer, **extra):
    count = scaled_count(n)
    c = case(cid, "Send %d%s compressed messages each of payload size %d, auto-fragment to %d octets. Use %s."
             % (count, "" if count == AUTOBAHN_COUNT else " (Autobahn: %d)" % AUTOBAHN_COUNT, n, frag, desc_offer),
             "Receive echo'ed messages (with payload as sent).",
             [{"op": "echo_loop", "corpus": corpus, "length": n, "count": count, "frag_size": frag,
               "compress": True}],
             close_when_done=False, handshake={"offers": offers}, timeout=60, **extra)
    if count != AUTOBAHN_COUNT:
        c["scaled"] = {"count": count, "autobahn_count": AUTOBAHN_COUNT,
                       "why": "ASan time budget: about %d KiB per case" % (CASE_BUDGET // KiB)}


def gen_12_13():
    for j, name in enumerate(["gutenberg_faust", "lena512", "ooms", "json_data1", "html_data1"], 1):
        for i, (n, frag) in enumerate(MSG_SIZES, 1):
            deflate_case("12.%d.%d" % (j, i), [offer()], name, n, frag,
                         "default permessage-deflate offer, test data %s" % name)
    params = [
        ([offer()], "[(False, 0)]"),
        ([offer(snct=True)], "[(True, 0)]"),
        ([offer(smwb=9)], "[(False, 9)]"),
        ([offer(smwb=15)], "[(False, 15)]"),
        ([offer(snct=True, smwb=9)], "[(True, 9)]"),
        ([offer(snct=True, smwb=15)], "[(True, 15)]"),
        ([offer(snct=True, smwb=9), offer(snct=True), offer()], "[(True, 9), (True, 0), (False, 0)]"),
    ]
    for j, (offers, desc) in enumerate(params, 1):
        extra = {}
        if "9" in desc:
            extra["deviation"] = ("Autobahn offers server_max_window_bits=8; zlib (>= 1.2.9) cannot "
                                  "produce raw deflate with an 8-bit window, so 9 is offered instead")
        for i, (n, frag) in enumerate(MSG_SIZES, 1):
            deflate_case("13.%d.%d" % (j, i), offers, "json_data1", n, frag,
                         "permessage-deflate client offers (requestNoContextTakeover, requestMaxWindowBits): "
                         + desc, **extra)


# ------------------------------------------------------- extra cases --

EXTRA = []


def extra(cid, desc, expectation, servers=None, **kw):
    c = {"id": cid, "category": "X", "description": desc, "expectation": expectation}
    if servers:
        c["servers"] = servers
    c.update(kw)
    EXTRA.append(c)
    return c


def handshake_headers(omit=(), **override):
    h = [["Host", "{host}"], ["Upgrade", "websocket"], ["Connection", "Upgrade"],
         ["Sec-WebSocket-Key", "{key}"], ["Sec-WebSocket-Version", "13"]]
    out = []
    for k, v in h:
        if k in omit:
            continue
        out.append([k, override.pop(k.replace("-", "_"), v)])
    for k, v in override.items():
        out.append([k.replace("_", "-"), v])
    return out


def gen_extra():
    TS = ["tsunagi"]
    # --- X.1 framing the client must get right
    extra("X.1.1", "Send an unmasked text frame (RFC 6455 5.1: a client MUST mask every frame).",
          "The connection is failed with 1002 (protocol error).",
          actions=[frame(1, text("Hello, world!"), mask=False), kill_after(1)],
          expect={"events": {"OK": []}, "close": FAIL_PROTO})
    extra("X.1.2", "Send an unmasked ping after a valid message.",
          "Echo of the message, then the connection is failed with 1002; no pong.",
          actions=[frame(1, text("Hello")), frame(9, text("ping"), mask=False), kill_after(1)],
          expect={"events": {"OK": [msg(text("Hello"))], "NON-STRICT": []}, "close": FAIL_PROTO})
    # --- X.2 opening handshake
    extra("X.2.1", "Upgrade request without Sec-WebSocket-Key.", "400 Bad Request.", kind="http",
          request={"headers": handshake_headers(omit=("Sec-WebSocket-Key",))}, expect={"status": [400]})
    extra("X.2.2", "Sec-WebSocket-Key is the base64 of 15 bytes, not 16.", "400 Bad Request.", kind="http",
          request={"headers": handshake_headers(Sec_WebSocket_Key="AAECAwQFBgcICQoLDA0O")},
          expect={"status": [400]})
    extra("X.2.3", "Sec-WebSocket-Key is 24 characters that are not base64.", "400 Bad Request.", kind="http",
          request={"headers": handshake_headers(Sec_WebSocket_Key="!!!!not-base64-at-all!!!")},
          expect={"status": [400]})
    extra("X.2.4", "Sec-WebSocket-Version: 8.",
          "426 Upgrade Required with Sec-WebSocket-Version: 13 (RFC 6455 4.4).", servers=TS, kind="http",
          request={"headers": handshake_headers(Sec_WebSocket_Version="8")},
          expect={"status": [426], "headers": {"Sec-WebSocket-Version": "13"}})
    extra("X.2.5", "Origin not in the allow-list (the server runs with --allowed-origin).", "403 Forbidden.",
          servers=TS, kind="http",
          request={"headers": handshake_headers(Origin="http://evil.example")}, expect={"status": [403]})
    extra("X.2.6", "Origin in the allow-list.", "101 Switching Protocols (the control for X.2.5).",
          servers=TS, kind="http",
          request={"headers": handshake_headers(Origin="{allowed_origin}")}, expect={"status": [101]})
    extra("X.2.7", "Send a request head that never finishes (no blank line), then nothing.",
          "The server answers 408 and closes, or closes, within --request-timeout (plus slack).",
          servers=TS, kind="http",
          request={"raw": "GET /echo HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"},
          expect={"status": [408, None], "closed_within": "request_timeout+3"})
    extra("X.2.8", "permessage-deflate offer with an unknown parameter (RFC 7692 5: decline it).",
          "101 without Sec-WebSocket-Extensions (NON-STRICT: 400 rejects the whole handshake).", kind="http",
          request={"headers": handshake_headers(Sec_WebSocket_Extensions="permessage-deflate; bogus_param=1")},
          expect={"status": [101], "non_strict_status": [400], "headers_absent": ["Sec-WebSocket-Extensions"]})
    extra("X.2.9", "Fallback offers: the first permessage-deflate offer has a bad value, the second is plain.",
          "101 accepting the second offer (no server_max_window_bits=7 in the answer).", kind="http",
          request={"headers": handshake_headers(
              Sec_WebSocket_Extensions="permessage-deflate; server_max_window_bits=7, permessage-deflate")},
          expect={"status": [101], "non_strict_status": [400], "extension_accepted": True})
    # --- X.3 limits
    extra("X.3.1", "Send the header of one binary frame announcing max_message + 1 octets, no payload.",
          "The server fails the connection with 1009 before any payload is sent.",
          actions=[{"op": "frame_begin", "opcode": 2, "length": {"max_message_plus": 1}}, kill_after(2)],
          expect={"events": {"OK": []}, "close": {"closed_by_me": False, "codes": [1009], "require_clean": False}})
    extra("X.3.2", "Fragmented binary message: a first fragment of max_message/2 + 1 octets, then the header "
          "of a second fragment of max_message/2 + 1 octets.",
          "The server fails the connection with 1009 once the total would exceed max_message.",
          actions=[frame(2, {"repeat": {"hex": "fe"}, "length": {"half_max_message_plus": 1}}, fin=False),
                   {"op": "frame_begin", "opcode": 0, "length": {"half_max_message_plus": 1}}, kill_after(5)],
          expect={"events": {"OK": []}, "close": {"closed_by_me": False, "codes": [1009], "require_clean": False}},
          heavy=True, timeout=30)
    extra("X.3.3", "A binary message of max_fragments + 1 fragments of 1 octet (tsunagi's cap is 1024 "
          "fragments per message unless the endpoint sets its own; run.py --max-fragments).",
          "The server fails the connection (1009 or 1008; which one is recorded), with no echo.",
          servers=TS,
          actions=[{"op": "message", "opcode": 2, "payload": {"repeat": {"hex": "fe"},
                                                               "length": {"max_fragments_plus": 1}},
                    "frag_size": 1}, kill_after(5)],
          expect={"events": {"OK": []}, "close": {"closed_by_me": False, "codes": [1008, 1009],
                                                   "require_clean": False}, "record_close_code": True})
    extra("X.3.4", "Compressed text message (one frame, ~16 KiB) that inflates to max_message + 1 octets.",
          "The server fails the connection with 1009 (inflation is bounded by the message limit).",
          handshake={"offers": [offer()]},
          actions=[{"op": "frame", "opcode": 1, "compress": True,
                    "payload": {"repeat": {"text": "a"}, "length": {"max_message_plus": 1}}}, kill_after(5)],
          expect={"events": {"OK": []}, "close": {"closed_by_me": False, "codes": [1009], "require_clean": False}},
          heavy=True, timeout=30)
    # --- X.4 permessage-deflate framing
    extra("X.4.1", "permessage-deflate negotiated: RSV1 set on a continuation frame.",
          "The connection is failed with 1002 (RSV1 is only valid on the first frame of a message).",
          handshake={"offers": [offer()]},
          actions=[frame(1, text("fragment1"), fin=False), frame(0, text("fragment2"), rsv=4), kill_after(1)],
          expect={"events": {"OK": []}, "close": FAIL_PROTO})
    extra("X.4.2", "permessage-deflate negotiated: RSV1 set on a ping.",
          "The connection is failed with 1002 (RSV1 is not valid on control frames).",
          handshake={"offers": [offer()]},
          actions=[frame(9, text("ping"), rsv=4), kill_after(1)],
          expect={"events": {"OK": []}, "close": FAIL_PROTO})
    extra("X.4.3", "permessage-deflate negotiated: a compressed frame whose data is not valid deflate "
          "(block type 3).", "The connection is failed (1007 or 1002).",
          handshake={"offers": [offer()]},
          actions=[frame(2, hexs(b"\xff\xff\xff\xff"), rsv=4), kill_after(1)],
          expect={"events": {"OK": []}, "close": {"closed_by_me": False, "codes": [1002, 1007],
                                                   "require_clean": False}})
    for k, (offers, d) in enumerate(
            (([{"client_max_window_bits": 9}], "client_max_window_bits=9"),
             ([{"client_max_window_bits": 15}], "client_max_window_bits=15"),
             ([{"client_no_context_takeover": True, "server_no_context_takeover": True,
                "client_max_window_bits": 9}],
              "client_no_context_takeover; server_no_context_takeover; client_max_window_bits=9")), 4):
        extra("X.4.%d" % k, "Offer permessage-deflate; %s, then 64 compressed text messages of 4096 octets."
              % d, "The offer is accepted and every message is echoed.",
              handshake={"offers": offers},
              actions=[{"op": "echo_loop", "corpus": "json_data1", "length": 4096, "count": 64, "frag_size": 0,
                        "compress": True}],
              expect={"events": {}, "close": CLEAN_NORMAL, "close_when_done": False}, timeout=30)
    extra("X.4.7", "Offer permessage-deflate; server_max_window_bits=8 (zlib cannot deflate raw with an "
          "8-bit window), then 16 compressed text messages of 4096 octets.",
          "Either the offer is declined (OK) or it is accepted and every echo inflates with an 8-bit window.",
          handshake={"offers": [offer(smwb=8)]},
          actions=[{"op": "echo_loop", "corpus": "json_data1", "length": 4096, "count": 16, "frag_size": 0,
                    "compress": True, "declined_ok": True}],
          expect={"events": {}, "close": CLEAN_NORMAL, "close_when_done": False}, timeout=30)
    extra("X.4.8", "permessage-deflate negotiated: a compressed message in frames of 10 octets with a ping "
          "after the first, then an uncompressed message (RSV1 clear).",
          "Pong, then both messages echoed.",
          handshake={"offers": [offer()]},
          actions=[{"op": "message", "opcode": 1, "payload": rep(b"compress me ", 3000), "frag_size": 10,
                    "compress": True, "ping_after_first": text("between")},
                   frame(1, text("plain")), close_after(3)],
          expect={"events": {"OK": [pong(text("between")), msg(rep(b"compress me ", 3000)), msg(text("plain"))]},
                  "close": CLEAN_NORMAL})
    for k, (n, frag, count) in enumerate(((16384, 256, 64), (64, 0, 500)), 9):
        extra("X.4.%d" % k, "Offer permessage-deflate; client_max_window_bits (what browsers offer: the client "
              "keeps its compression context), then %d compressed text messages of %d octets%s."
              % (count, n, ", each in frames of %d octets" % frag if frag else ""),
              "The offer is accepted and every message is echoed (the server inflates with context takeover).",
              handshake={"offers": [{"client_max_window_bits": True}]},
              actions=[{"op": "echo_loop", "corpus": "json_data1", "length": n, "count": count, "frag_size": frag,
                        "compress": True}],
              expect={"events": {}, "close": CLEAN_NORMAL, "close_when_done": False}, timeout=30)


def main():
    gen_1()
    gen_2()
    gen_3()
    gen_4()
    gen_5()
    gen_6()
    gen_7()
    gen_9()
    gen_10()
    gen_12_13()
    gen_extra()
    ids = [c["id"] for c in CASES + EXTRA]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    doc = {"format": 1,
           "source": "Autobahn|Testsuite fuzzingclient cases (crossbario/autobahn-testsuite), "
                     "re-implemented; generated by gen_cases.py",
           "corpora": CORPORA,
           "cases": CASES}
    write(os.path.join(HERE, "cases.json"), doc)
    write(os.path.join(HERE, "extra.json"),
          {"format": 1, "source": "tsunagi cases beyond Autobahn; generated by gen_cases.py", "cases": EXTRA})
    counts = {}
    for c in CASES + EXTRA:
        counts[c["category"]] = counts.get(c["category"], 0) + 1
    print("cases:", len(CASES), "extra:", len(EXTRA), counts)


def write(path, doc):
    # One case per line block: diffs stay readable and the file stays small.
    with open(path, "w") as f:
        f.write("{\n")
        keys = [k for k in doc if k != "cases"]
        for k in keys:
            f.write(" %s: %s,\n" % (json.dumps(k), json.dumps(doc[k], sort_keys=True)))
        f.write(' "cases": [\n')
        for i, c in enumerate(doc["cases"]):
            f.write("  " + json.dumps(c) + (",\n" if i + 1 < len(doc["cases"]) else "\n"))
        f.write(" ]\n}\n")


if __name__ == "__main__":
    main()
