"""Host codec: frames to and from bytes on the wire.

The layouts come from :mod:`nanohub.protocol.model`, read off the construct
schema; this module compiles them to ``struct`` objects once, so a frame costs
a COBS call (C), a ``struct`` call and a ``zlib.crc32`` call. ``reference_*``
parse and build the same frames with construct itself: the tests hold the two
to byte-for-byte agreement.
"""
import hashlib
import hmac
import struct
import zlib

from cobs import cobs

from . import model, schema
from .schema import (
    ADDR_HUB, AUTH_SIZE, CRC_SIZE, F_AUTH, HEADER_SIZE, MAX_FRAME, MAX_WIRE,
    TAG_SIZE, VERSION,
)

ERR = {name: value for name, value, _ in schema.ENUMS["ERR"]}
ERR_NAME = {value: name for name, value in ERR.items()}

_HDR = struct.Struct("<BHBB")
_CRC = struct.Struct("<I")
_AUTH = struct.Struct("<II%ds" % TAG_SIZE)
_COUNTER = struct.Struct("<II")
_SCHEMA_CHECKED = (schema.MSG["HELLO"], schema.MSG["BUS_HELLO"])


class CodecError(ValueError):
    """A frame that must be dropped; ``code`` is one of ``ERR``."""

    def __init__(self, code, detail=""):
        self.code = code
        self.kind = ERR_NAME.get(code, str(code))
        super().__init__("%s%s" % (self.kind, ": " + detail if detail else ""))


class Frame:
    """One decoded frame."""

    __slots__ = ("msg", "name", "seq", "addr", "flags", "fields", "records",
                 "counter", "tag", "body", "expires")

    def __init__(self, msg, seq, addr, flags, fields, records, counter=None,
                 tag=None, body=b"", expires=None):
        self.msg, self.seq, self.addr, self.flags = msg, seq, addr, flags
        self.name = model.BY_ID[msg].name
        self.fields, self.records = fields, records
        self.counter, self.tag, self.body = counter, tag, body
        self.expires = expires

    def __getitem__(self, key):
        return self.fields[key]

    def __repr__(self):
        return "Frame(%s seq=%d addr=%d %r%s)" % (
            self.name, self.seq, self.addr, self.fields,
            " +%d records" % len(self.records) if self.records else "")

    @property
    def signed_part(self):
        """The bytes the tag covers: header, payload, counter and expires."""
        return self.body[:len(self.body) - TAG_SIZE] if self.tag else b""


class _Layout:
    __slots__ = ("msg", "fixed", "rec", "names", "rec_names", "size",
                 "rec_size", "bytes_tail", "max_count")

    def __init__(self, m):
        self.msg = m
        self.fixed = struct.Struct(m.fmt)
        self.names = m.names
        self.size = m.size
        self.bytes_tail = m.tail == "bytes"
        if isinstance(m.tail, model.Record):
            self.rec = struct.Struct(m.tail.fmt)
            self.rec_names = m.tail.names
            self.rec_size = m.tail.size
        else:
            self.rec, self.rec_names, self.rec_size = None, (), 0
        self.max_count = m.max_count


LAYOUTS = {m.id: _Layout(m) for m in model.MESSAGES}


def tag_of(key, signed_part):
    """HMAC-SHA256 over header + payload + counter, truncated."""
    return hmac.new(key, signed_part, hashlib.sha256).digest()[:TAG_SIZE]


def build_payload(msg, fields=None, records=()):
    lay = LAYOUTS[msg]
    fields = dict(fields or {})
    if lay.rec is not None:
        fields[lay.msg.count_field] = len(records)
        if len(records) > lay.max_count:
            raise ValueError("%s holds at most %d records, got %d"
                             % (lay.msg.name, lay.max_count, len(records)))
    try:
        values = [fields.get(n, b"" if f.is_bytes else 0)
                  for n, f in zip(lay.names, lay.msg.fields)]
        out = lay.fixed.pack(*values)
        if lay.rec is not None:
            out += b"".join(lay.rec.pack(*(r.get(n, 0) for n in lay.rec_names))
                            if isinstance(r, dict) else lay.rec.pack(*r)
                            for r in records)
        elif lay.bytes_tail:
            out += bytes(records)
    except struct.error as e:
        raise ValueError("%s: %s" % (lay.msg.name, e)) from None
    unknown = set(fields) - set(lay.names)
    if unknown:
        raise ValueError("%s has no field %s" % (lay.msg.name, ", ".join(sorted(unknown))))
    return out


def build(msg, fields=None, records=(), *, seq=0, addr=ADDR_HUB, flags=0,
          key=None, counter=None, expires=0):
    """A frame as raw bytes (before COBS). ``msg`` is an id or a name."""
    if isinstance(msg, str):
        msg = schema.MSG[msg]
    payload = build_payload(msg, fields, records)
    if key is not None:
        flags |= F_AUTH
    body = _HDR.pack((VERSION << 4) | (flags & 0xF), seq & 0xFFFF, msg, addr) + payload
    if flags & F_AUTH:
        if key is None or counter is None:
            raise ValueError("a signed frame needs a key and a counter")
        body += _COUNTER.pack(counter, expires)
        body += tag_of(key, body)
    return body + _CRC.pack(zlib.crc32(body))


def encode(msg, fields=None, records=(), **kw):
    """A frame as it goes on the wire: COBS, then the 0x00 delimiter."""
    return cobs.encode(build(msg, fields, records, **kw)) + b"\0"


def parse(raw):
    """Check and decode a raw frame (COBS already removed)."""
    n = len(raw)
    if n > MAX_FRAME:
        raise CodecError(ERR["OVERSIZE"], "%d bytes" % n)
    if n < HEADER_SIZE + CRC_SIZE:
        raise CodecError(ERR["SHORT"], "%d bytes" % n)
    if zlib.crc32(memoryview(raw)[:n - CRC_SIZE]) != _CRC.unpack_from(raw, n - CRC_SIZE)[0]:
        raise CodecError(ERR["CRC"])
    vf, seq, msg, addr = _HDR.unpack_from(raw)
    if vf >> 4 != VERSION:
        raise CodecError(ERR["VERSION"], "version %d" % (vf >> 4))
    lay = LAYOUTS.get(msg)
    if lay is None:
        raise CodecError(ERR["MSGID"], "0x%02x" % msg)
    flags = vf & 0xF
    end = n - CRC_SIZE
    counter = tag = expires = None
    if flags & F_AUTH:
        end -= AUTH_SIZE
        if end < HEADER_SIZE:
            raise CodecError(ERR["LENGTH"], "no room for the auth block")
        counter, expires, tag = _AUTH.unpack_from(raw, end)
    plen = end - HEADER_SIZE
    if plen < lay.size:
        raise CodecError(ERR["LENGTH"], "%s needs %d bytes, got %d" % (lay.msg.name, lay.size, plen))
    fields = dict(zip(lay.names, lay.fixed.unpack_from(raw, HEADER_SIZE)))
    records = ()
    if lay.rec is not None:
        count = fields[lay.msg.count_field]
        if plen != lay.size + count * lay.rec_size:
            raise CodecError(ERR["LENGTH"], "%s with %d records needs %d bytes, got %d"
                             % (lay.msg.name, count, lay.size + count * lay.rec_size, plen))
        names, rec = lay.rec_names, lay.rec
        records = [dict(zip(names, v)) for v in
                   rec.iter_unpack(raw[HEADER_SIZE + lay.size:end])]
    elif lay.bytes_tail:
        records = bytes(raw[HEADER_SIZE + lay.size:end])
    elif plen != lay.size:
        raise CodecError(ERR["LENGTH"], "%s needs %d bytes, got %d" % (lay.msg.name, lay.size, plen))
    if msg in _SCHEMA_CHECKED and fields["schema"] != model.FINGERPRINT:
        raise CodecError(ERR["SCHEMA"], "peer schema 0x%08x, ours 0x%08x"
                         % (fields["schema"], model.FINGERPRINT))
    return Frame(msg, seq, addr, flags, fields, records, counter, tag,
                 bytes(raw[:n - CRC_SIZE]), expires)


def decode(wire):
    """Decode one wire frame (COBS, with or without its trailing delimiter)."""
    if wire[-1:] == b"\0":
        wire = wire[:-1]
    if len(wire) > MAX_WIRE:
        raise CodecError(ERR["OVERSIZE"], "%d bytes on the wire" % len(wire))
    try:
        raw = cobs.decode(wire)
    except cobs.DecodeError as e:
        raise _cobs_error(wire, e) from None
    return parse(raw)


def _cobs_error(wire, e):
    """The drop class of a chunk whose COBS is broken (its last block cut short).

    Length is judged first, as for the wire length: a chunk that decodes to
    more than MAX_FRAME bytes before the cut is OVERSIZE, else COBS. A
    streaming receiver (the hub) decodes as bytes arrive and stops at
    MAX_FRAME, before it can see the cut: both ends give the same class.
    What it decodes: every byte but the code bytes, and a zero for each code
    byte after the first whose block before it was shorter than 0xFF.
    """
    n = len(wire)
    i = full = 0
    while i < n:
        code = wire[i]
        if code == 0:               # a zero where a code byte belongs: not one chunk
            return CodecError(ERR["COBS"], str(e))
        if i + code >= n:           # the last code byte
            break
        full += code == 0xFF
        i += code
    if n - 1 - full > MAX_FRAME:
        return CodecError(ERR["OVERSIZE"], "more than %d bytes before a cut COBS block"
                          % MAX_FRAME)
    return CodecError(ERR["COBS"], str(e))


def verify(frame, key):
    """True when a signed frame's tag is right for ``key`` (constant time)."""
    if frame.tag is None:
        return False
    return hmac.compare_digest(frame.tag, tag_of(key, frame.signed_part))


def split_frames(buf, data):
    """Append ``data`` to ``buf`` (a bytearray); yield each whole frame in it
    (COBS bytes, without the 0x00 delimiter) and keep the unfinished rest in ``buf``.

    Empty frames (sync delimiters) are skipped. A rest longer than any frame
    has no delimiter in sight: it is garbage, dropped, and None is yielded in
    its place.
    """
    buf += data
    start = 0
    while True:
        end = buf.find(0, start)
        if end < 0:
            break
        chunk = bytes(buf[start:end])
        start = end + 1
        if chunk:
            yield chunk
    del buf[:start]
    if len(buf) > MAX_WIRE:
        del buf[:]
        yield None


class StreamDecoder:
    """Splits a byte stream at 0x00 delimiters and decodes each frame.

    Garbage between frames costs at most the frame it lands in: the decoder
    resynchronises at the next delimiter. Every dropped frame is counted.
    """

    def __init__(self):
        self._buf = bytearray()
        self.errors = {}
        self.frames = 0

    def feed(self, data):
        """Yield Frame objects and CodecError instances, in stream order."""
        for chunk in split_frames(self._buf, data):
            if chunk is None:       # an overlong run without a delimiter: resyncing
                self.errors["OVERSIZE"] = self.errors.get("OVERSIZE", 0) + 1
                yield CodecError(ERR["OVERSIZE"], "no delimiter within %d bytes" % MAX_WIRE)
                continue
            try:
                frame = decode(chunk)
            except CodecError as e:
                self.errors[e.kind] = self.errors.get(e.kind, 0) + 1
                yield e
                continue
            self.frames += 1
            yield frame


# ----------------------------------------------------------- reference --

def reference_parse_payload(msg, payload):
    """Parse a payload with construct, the schema's own interpreter."""
    st = schema.BY_ID[msg][3]
    parsed = st.parse(payload)
    m = model.BY_ID[msg]
    fields = {f.name: parsed[f.name] for f in m.fields}
    records = []
    if isinstance(m.tail, model.Record):
        records = [{n: r[n] for n in m.tail.names} for r in parsed[m.tail.field]]
    return fields, records


def reference_build_payload(msg, fields, records=()):
    st = schema.BY_ID[msg][3]
    m = model.BY_ID[msg]
    data = dict(fields)
    if isinstance(m.tail, model.Record):
        data[m.count_field] = len(records)
        data[m.tail.field] = list(records)
    return st.build(data)


# ------------------------------------------------------------ fast path --
# Positional values instead of dicts, one struct call for header + payload:
# what a recorder or a high-rate telemetry consumer uses. Same bytes, same
# checks and errors as encode/decode (the tests hold them together).

_VF = VERSION << 4
_FAST = {}
_RESIDUE = 0x2144DF1C


def _fast(msg, count):
    key = (msg, count)
    st = _FAST.get(key)
    if st is None:
        lay = LAYOUTS[msg]
        fmt = "<BHBB" + lay.msg.fmt[1:]
        if lay.rec is not None:
            fmt += lay.msg.tail.fmt[1:] * count
        st = _FAST[key] = struct.Struct(fmt)
    return st


def pack(msg, values, seq=0, addr=ADDR_HUB, records=None, count=0):
    """Wire bytes of an unsigned frame from positional field values.

    ``values``: the fixed fields in schema order (the count field included);
    ``records``: the tail's record values flattened, ``count`` records.
    """
    st = _fast(msg, count)
    if records:
        body = st.pack(_VF, seq, msg, addr, *values, *records)
    else:
        body = st.pack(_VF, seq, msg, addr, *values)
    return cobs.encode(body + _CRC.pack(zlib.crc32(body))) + b"\0"


def unpack(wire):
    """(msg, seq, addr, flags, values) of an unsigned wire frame.

    ``values`` holds the fixed fields then the flattened records. Raises
    CodecError exactly as :func:`decode` would; signed frames and bytes tails
    take :func:`decode`.
    """
    try:
        wire = wire[:-1] if wire[-1] == 0 else wire
        raw = cobs.decode(wire)
    except cobs.DecodeError as e:
        raise _cobs_error(wire, e) from None
    n = len(raw)
    if n > MAX_FRAME or n < HEADER_SIZE + CRC_SIZE:
        return _slow(raw)
    # CRC-32 over a frame followed by its own CRC (little-endian) leaves a
    # constant residue: one C call checks it, no slicing
    if zlib.crc32(raw) != _RESIDUE:
        raise CodecError(ERR["CRC"])
    st = _PLAIN[raw[3]]
    if st is not None and raw[0] == _VF and st.size == n - HEADER_SIZE - CRC_SIZE:
        return raw[3], raw[1] | raw[2] << 8, raw[4], 0, st.unpack_from(raw, HEADER_SIZE)
    lay = LAYOUTS.get(raw[3])
    if raw[0] != _VF or lay is None or lay.rec is None:
        return _slow(raw)
    end = n - CRC_SIZE
    if end - HEADER_SIZE < lay.size:
        return _slow(raw)
    count = raw[HEADER_SIZE + lay.size - 1]
    st = _fast(raw[3], count)
    if st.size != end:
        return _slow(raw)
    v = st.unpack_from(raw)
    return raw[3], v[1], v[3], 0, v[4:]


# payload structs of the messages the fast path takes whole (no tail, no schema check)
_PLAIN = [None] * 256
for _m in model.MESSAGES:
    if _m.tail is None and _m.id not in _SCHEMA_CHECKED:
        _PLAIN[_m.id] = struct.Struct(_m.fmt)


def _slow(raw):
    f = parse(raw)                          # raises the precise CodecError
    vals = tuple(f.fields.values())
    for r in f.records:
        vals += tuple(r.values())
    return f.msg, f.seq, f.addr, f.flags, vals
