"""Golden test vectors, derived from the schema.

Every message gets vectors automatically: all fields zero, all fields at
their maximum (with a full-length tail), signed fields at their minimum, and a
signed variant for commands that need authentication. Then the invalid frames
that both codecs must reject with the same error.

    python -m nanohub.protocol.vectors           # write protocol/vectors.json
    python -m nanohub.protocol.vectors --check   # exit 1 if out of date
"""
import argparse
import json
import sys
import zlib
from pathlib import Path

from cobs import cobs

from . import codec, model, schema

PATH = Path(__file__).resolve().parent / "vectors.json"
KEY = bytes(range(32))           # the vectors' key; never a real hub's
OTHER_KEY = bytes(range(1, 33))

_MAX = {"B": 0xFF, "H": 0xFFFF, "I": 0xFFFFFFFF, "b": 0x7F, "h": 0x7FFF, "i": 0x7FFFFFFF}
_MIN = {"b": -0x80, "h": -0x8000, "i": -0x80000000}


def _value(f, kind):
    if f.is_bytes:
        return bytes([0xFF if kind == "max" else 0]) * f.size if kind != "pattern" else \
            bytes((i * 37 + 11) & 0xFF for i in range(f.size))
    if kind == "max":
        return _MAX[f.code]
    if kind == "min":
        return _MIN.get(f.code, 0)
    return 0


def _values(fields, kind, skip=()):
    return {f.name: _value(f, kind) for f in fields if f.name not in skip}


def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return {"hex": bytes(v).hex()}
    return v


def _entry(name, wire, frame):
    return {
        "name": name,
        "wire": wire.hex(),
        "msg": frame.name,
        "seq": frame.seq,
        "addr": frame.addr,
        "flags": frame.flags,
        "fields": {k: _jsonable(v) for k, v in frame.fields.items()},
        "records": [{k: _jsonable(v) for k, v in r.items()} for r in frame.records],
        "counter": frame.counter,
        "tag": frame.tag.hex() if frame.tag else None,
    }


def _fix_schema(m, fields):
    if m.name in ("HELLO", "BUS_HELLO"):
        fields["schema"] = model.FINGERPRINT


def valid():
    out = []
    for m in model.MESSAGES:
        rec = m.tail if isinstance(m.tail, model.Record) else None
        skip = (m.count_field,) if rec else ()
        for kind in ("zero", "max", "min"):
            if kind == "min" and not any(f.code in _MIN for f in m.fields) and \
                    not (rec and any(f.code in _MIN for f in rec.fields)):
                continue
            fields = _values(m.fields, kind, skip)
            _fix_schema(m, fields)
            records = []
            if rec:
                n = {"zero": 0, "max": m.max_count, "min": 1}[kind]
                records = [_values(rec.fields, kind) for _ in range(n)]
            seq = {"zero": 0, "max": 0xFFFF, "min": 1}[kind]
            addr = {"zero": 0, "max": 0xFF, "min": 1}[kind]
            wire = codec.encode(m.id, fields, records, seq=seq, addr=addr)
            out.append(_entry("%s/%s" % (m.name, kind), wire, codec.decode(wire)))
        if m.auth:
            fields = _values(m.fields, "pattern", skip)
            wire = codec.encode(m.id, fields, seq=0x1234, key=KEY, counter=0x01020304)
            out.append(_entry("%s/signed" % m.name, wire, codec.decode(wire)))
    return out


def _wire(raw):
    return cobs.encode(raw) + b"\0"


def _with_crc(body):
    return body + zlib.crc32(body).to_bytes(4, "little")


def invalid():
    good = codec.build("HEARTBEAT", {"t": 1000}, seq=5)
    body = good[:-4]
    big = model.BY_NAME["BOT_STATES"]
    cases = [
        ("bad-crc", _wire(good[:-1] + bytes([good[-1] ^ 0x01])), "CRC"),
        ("flipped-payload-bit", _wire(body[:-1] + bytes([body[-1] ^ 0x80]) + good[-4:]), "CRC"),
        ("truncated", _wire(good[:7]), "SHORT"),
        ("empty-header", _wire(b"\x10\x00"), "SHORT"),
        ("oversize", _wire(_with_crc(codec.build("BOT_STATES", {"first": 0},
                                                 [{}] * big.max_count, seq=1)[:-4]
                                     + bytes(schema.MAX_FRAME))), "OVERSIZE"),
        ("unknown-msgid", _wire(_with_crc(bytes([schema.VERSION << 4, 1, 0, 0x7E, 0]))), "MSGID"),
        ("wrong-version", _wire(_with_crc(bytes([(schema.VERSION + 1) << 4]) + body[1:])), "VERSION"),
        ("version-zero", _wire(_with_crc(bytes([0x00]) + body[1:])), "VERSION"),
        ("payload-too-short", _wire(_with_crc(body[:-1])), "LENGTH"),
        ("payload-too-long", _wire(_with_crc(body + b"\x00")), "LENGTH"),
        ("records-miscounted", _wire(_with_crc(codec.build(
            "BOT_STATES", {"first": 0}, [{}] * 3)[:-4] + b"\x01\x02")), "LENGTH"),
        ("auth-flag-without-block", _wire(_with_crc(bytes([(schema.VERSION << 4) | schema.F_AUTH,
                                                           0, 0, schema.MSG["ARM"], 0]))), "LENGTH"),
        ("schema-mismatch", codec.encode("HELLO", {"schema": model.FINGERPRINT ^ 0x5A5A5A5A,
                                                   "host_version": 1}), "SCHEMA"),
        ("bus-schema-mismatch", codec.encode("BUS_HELLO", {"schema": 0, "bots": 8}), "SCHEMA"),
        ("bad-cobs-code", bytes([0x05, 0x11, 0x22, 0x00]), "COBS"),
        # within MAX_WIRE, its last block cut short, but 507 bytes decode
        # before the cut: too long is judged first (a streaming receiver stops
        # at MAX_FRAME before it sees the cut)
        ("oversize-cobs-cut-short", bytes([0xFE]) + b"\x11" * 253 + bytes([0xFF])
         + b"\x11" * 253 + b"\x00", "OVERSIZE"),
        ("bad-cobs-zero-code", bytes([0x03, 0x11, 0x22, 0x00]), None),
    ]
    out = []
    for name, wire, err in cases:
        if err is None:
            continue
        assert wire.index(0) == len(wire) - 1, name
        out.append({"name": "invalid/" + name, "wire": wire.hex(), "error": err})
    # a stream: valid frames with garbage between them; receivers must find
    # exactly the valid frames and count the garbage as dropped frames
    frames = [codec.encode("HEARTBEAT", {"t": i}, seq=i) for i in range(3)]
    bad_crc = _wire(b"\x10\x05\x00\x03\x00\x00\x00\x00\x01")
    stream = (bytes([0x13, 0x37, 0x00]) + frames[0] + b"\x02\x11\x00" + frames[1]
              + bad_crc + b"\x00\x00" + frames[2] + b"\x02\x01")
    errors = ["COBS", "SHORT", "CRC"]
    got = [e.kind for e in codec.StreamDecoder().feed(stream) if isinstance(e, codec.CodecError)]
    assert got == errors, got
    out.append({"name": "stream/garbage-between-frames", "stream": stream.hex(),
                "frames": [0, 1, 2], "errors": errors, "tail": "0201"})
    return out


def build_all():
    return {
        "generated": "nanohub.protocol.vectors from protocol/schema.py; do not edit",
        "schema": model.FINGERPRINT,
        "key": KEY.hex(),
        "other_key": OTHER_KEY.hex(),
        "valid": valid(),
        "invalid": invalid(),
    }


def text():
    return json.dumps(build_all(), indent=1, sort_keys=True) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nanohub.protocol.vectors")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    t = text()
    if a.check:
        if not PATH.exists() or PATH.read_text() != t:
            print("out of date: protocol/vectors.json (run: python -m nanohub.protocol.vectors)")
            return 1
        return 0
    PATH.write_text(t)
    print("wrote", PATH.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
