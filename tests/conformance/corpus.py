"""Test data for the compression cases (12.x, 13.x), generated deterministically.

Autobahn ships five files (Goethe's Faust from Project Gutenberg, a 512x512
bitmap, a PDF, a JSON file, an HTML file). These generators make stand-ins of
the same kinds from a seed, so the bytes are the same on every run and the
compression behaves like it does on real data: prose and markup compress
well, the bitmap moderately, the PDF's embedded streams not at all. Text
corpora are pure ASCII, so any slice is valid UTF-8.
"""

import json
import math
import random
import struct
import threading
import zlib

_cache = {}
_lock = threading.Lock()

GERMAN = ("der die das und ist nicht ich du er sie wir ihr mich dich sich mein dein sein ihr unser "
          "Faust Mephistopheles Gretchen Wagner Marthe Valentin Himmel Erde Geist Teufel Herz Welt "
          "Nacht Morgen Zeit Leben Seele Liebe Wissen Kunst Natur Gott Mensch Blut Feuer Wasser "
          "habe hat haben bin bist sind war waren wird werden kann k\u00f6nnen muss m\u00fcssen soll "
          "will wollen mag m\u00f6gen darf gehen kommen sehen sagen sprechen f\u00fchlen denken "
          "wissen glauben lieben streben irren f\u00fcrchten hoffen tr\u00e4umen schweigen "
          "sch\u00f6n gro\u00df klein alt jung dunkel hell tief hoch s\u00fc\u00df bitter frei "
          "ewig heilig leer voll wahr falsch gleich \u00fcber unter vor nach mit ohne durch f\u00fcr "
          "gegen zwischen auf aus bei von zu im am vom zum noch schon nur auch doch ja nein wohl "
          "Studierzimmer Auerbachs Keller Hexenk\u00fcche Stra\u00dfe Garten Kerker Walpurgisnacht").split()


def _prose(rng, size):
    out, line, n = [], [], 0
    while n < size:
        words = [rng.choice(GERMAN) for _ in range(rng.randint(4, 14))]
        s = " ".join(words)
        s = s[0].upper() + s[1:] + rng.choice([".", ".", ".", "!", "?", ";", ","])
        for w in s.split(" "):
            line.append(w)
            if sum(len(x) + 1 for x in line) > 68:
                t = " ".join(line) + "\n"
                out.append(t)
                n += len(t.encode())
                line = []
        if rng.random() < 0.1:
            out.append("\n" + rng.choice(["FAUST", "MEPHISTOPHELES", "MARGARETE", "WAGNER"]) + ":\n")
    return "".join(out).encode("utf-8")[:size]


def _bitmap(rng, size):
    w = h = 512
    header = b"BM" + struct.pack("<IHHI", 54 + 1024 + w * h, 0, 0, 54 + 1024)
    header += struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 0, w * h, 2835, 2835, 256, 256)
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    rows = []
    for y in range(h):
        row = bytearray(w)
        for x in range(w):
            v = 128 + 60 * math.sin(x / 23.0) * math.cos(y / 17.0) + 40 * math.sin((x + y) / 71.0)
            row[x] = max(0, min(255, int(v + rng.gauss(0, 6))))
        rows.append(bytes(row))
    data = header + palette + b"".join(rows)
    return data[:size]


def _pdf(rng, size):
    out = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    n, obj = len(out[0]), 1
    while n < size:
        if rng.random() < 0.5:
            text = " ".join(rng.choice(GERMAN) for _ in range(40)).encode("utf-8")
            body = b"BT /F1 12 Tf 72 %d Td (%s) Tj ET" % (rng.randint(72, 720), text)
        else:
            raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(512, 4096)))
            body = zlib.compress(raw)
        s = b"%d 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % (obj, len(body)) + body + \
            b"\nendstream\nendobj\n"
        out.append(s)
        n += len(s)
        obj += 1
    return b"".join(out)[:size]


def _json(rng, size):
    first = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas"]
    last = ["Meyer", "Schmidt", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Koch"]
    tags = ["alpha", "beta", "gamma", "delta", "eu", "us", "asia", "vip", "new", "churn"]
    recs, n, i = [], 0, 0
    while n < size + 64:
        f, l = rng.choice(first), rng.choice(last)
        r = {"id": i, "guid": "%032x" % rng.getrandbits(128), "isActive": rng.random() < 0.5,
             "balance": round(rng.uniform(0, 10000), 2), "age": rng.randint(18, 90),
             "name": "%s %s" % (f, l), "email": "%s.%s@example.com" % (f.lower(), l.lower()),
             "tags": rng.sample(tags, 3), "registered": "20%02d-%02d-%02dT%02d:%02d:%02d" % (
                 rng.randint(10, 24), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                 rng.randint(0, 59), rng.randint(0, 59)),
             "latitude": round(rng.uniform(-90, 90), 6), "longitude": round(rng.uniform(-180, 180), 6)}
        s = json.dumps(r, indent=2)
        recs.append(s)
        n += len(s) + 2
        i += 1
    return ("[\n" + ",\n".join(recs) + "\n]\n").encode("ascii")[:size]


def _html(rng, size):
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
    out = ["<!DOCTYPE html>\n<html>\n<head><title>Data</title></head>\n<body>\n"]
    n = len(out[0])
    while n < size:
        k = rng.random()
        if k < 0.5:
            s = '<div class="c%d"><p>%s</p></div>\n' % (rng.randint(1, 9),
                                                     " ".join(rng.choice(words) for _ in range(30)))
        elif k < 0.8:
            s = '<ul>%s</ul>\n' % "".join('<li><a href="/p/%d">%s</a></li>' % (rng.randint(1, 9999),
                                                                            rng.choice(words)) for _ in range(5))
        else:
            s = "<table>%s</table>\n" % "".join("<tr><td>%d</td><td>%s</td></tr>" % (rng.randint(0, 999),
                                                                                 rng.choice(words)) for _ in range(4))
        out.append(s)
        n += len(s)
    return "".join(out).encode("ascii")[:size]


GENERATORS = {"prose": _prose, "bitmap": _bitmap, "pdf": _pdf, "json": _json, "html": _html}


def corpus(spec):
    """The bytes of a corpus described in cases.json."""
    key = (spec["generator"], spec["seed"], spec["size"])
    with _lock:
        if key not in _cache:
            data = GENERATORS[spec["generator"]](random.Random(spec["seed"]), spec["size"])
            if len(data) != spec["size"]:
                raise ValueError("corpus %r is %d bytes, not %d" % (key, len(data), spec["size"]))
            _cache[key] = data
        return _cache[key]


class Slider:
    """Autobahn's sendOne(): consecutive slices of the data, wrapping around."""

    def __init__(self, data):
        self.data, self.ptr = data, 0

    def next(self, n):
        if n == 0:
            return b""
        a, b = self.ptr, (self.ptr + n) % len(self.data)
        self.ptr = b
        return self.data[a:b] if b > a else self.data[a:] + self.data[:b]
