"""A neutral model of the schema: what every back end (host codec, firmware
codec generator, documentation, numpy dtypes) needs, read off the construct
definitions once.
"""
import zlib

import construct as c

from . import schema

_FMT = {  # construct format string -> struct code, little-endian only
    "<B": "B", "<H": "H", "<L": "I", "<I": "I",
    "<b": "b", "<h": "h", "<l": "i", "<i": "i",
}


class Field:
    __slots__ = ("name", "code", "size", "offset")

    def __init__(self, name, code, size, offset):
        self.name, self.code, self.size, self.offset = name, code, size, offset

    @property
    def is_bytes(self):
        return self.code.endswith("s")


class Record:
    """A flat struct: fixed fields only."""

    def __init__(self, name, fields):
        self.name = name
        self.fields = fields
        self.fmt = "<" + "".join(f.code for f in fields)
        self.size = sum(f.size for f in fields)
        self.names = tuple(f.name for f in fields)


class Message(Record):
    """A record plus at most one tail (an array of records or bytes)."""

    def __init__(self, mid, name, link, doc, fields, tail=None, count_field=None):
        super().__init__(name, fields)
        self.id = mid
        self.link = link
        self.doc = doc
        self.tail = tail                  # Record, "bytes" or None
        self.count_field = count_field    # name of the field holding the count
        self.auth = name in schema.AUTH_REQUIRED
        self.command = name in schema.COMMANDS
        if isinstance(tail, Record):
            room = schema.MAX_PAYLOAD - self.size
            self.max_count = min(room // tail.size, 255)
        else:
            self.max_count = 0

    @property
    def max_size(self):
        if isinstance(self.tail, Record):
            return self.size + self.max_count * self.tail.size
        if self.tail == "bytes":
            return schema.MAX_PAYLOAD
        return self.size


def _unwrap(sc):
    name = sc.name
    while isinstance(sc, c.Renamed):
        sc = sc.subcon
    return name, sc


def _fixed_field(name, sc, offset):
    if isinstance(sc, c.FormatField):
        code = _FMT[sc.fmtstr]
        return Field(name, code, sc.sizeof(), offset)
    if isinstance(sc, c.Bytes) and isinstance(sc.length, int):
        return Field(name, "%ds" % sc.length, sc.length, offset)
    return None


def record_of(name, struct):
    fields, off = [], 0
    for sub in struct.subcons:
        fname, sc = _unwrap(sub)
        f = _fixed_field(fname, sc, off)
        if f is None:
            raise TypeError("record %s field %s is not fixed-size" % (name, fname))
        fields.append(f)
        off += f.size
    return Record(name, fields)


def message_of(mid, name, link, struct, doc):
    fields, off, tail, count_field = [], 0, None, None
    subs = list(struct.subcons)
    for i, sub in enumerate(subs):
        fname, sc = _unwrap(sub)
        f = _fixed_field(fname, sc, off)
        if f is not None:
            if tail is not None:
                raise TypeError("%s: fixed field %s after the tail" % (name, fname))
            fields.append(f)
            off += f.size
            continue
        if i != len(subs) - 1:
            raise TypeError("%s: the tail %s must be the last field" % (name, fname))
        if isinstance(sc, c.Array):
            _, inner = _unwrap(sc.subcon)
            rec_name = getattr(sc.subcon, "name", None) or fname
            tail = record_of(rec_name, inner)
            tail.field = fname
            count_field = fields[-1].name
        elif sc is c.GreedyBytes or isinstance(sc, type(c.GreedyBytes)):
            tail = "bytes"
        else:
            raise TypeError("%s: unsupported field %s" % (name, fname))
    return Message(mid, name, link, doc, fields, tail, count_field)


MESSAGES = tuple(message_of(*m) for m in schema.MESSAGES)
BY_ID = {m.id: m for m in MESSAGES}
BY_NAME = {m.name: m for m in MESSAGES}
RECORDS = {
    "BotState": record_of("BotState", schema.BotState),
    "SiteReading": record_of("SiteReading", schema.SiteReading),
    "PlanSite": record_of("PlanSite", schema.PlanSite),
    "BotCmd": record_of("BotCmd", schema.BotCmd),
    "BotReport": record_of("BotReport", schema.BotReport),
    "LogRecord": record_of("LogRecord", schema.LogRecord),
}


def canonical():
    """The schema as text: what the fingerprint is computed over."""
    lines = ["v%d max%d tag%d" % (schema.VERSION, schema.MAX_PAYLOAD, schema.TAG_SIZE)]
    for m in MESSAGES:
        tail = ""
        if isinstance(m.tail, Record):
            tail = " [%s:%s]" % (m.count_field, m.tail.fmt)
        elif m.tail:
            tail = " [bytes]"
        lines.append("%02x %s %s %s%s%s" % (m.id, m.name, m.link, m.fmt,
                                            tail, " auth" if m.auth else ""))
    for ename, members in schema.ENUMS.items():
        lines.append(ename + " " + " ".join("%s=%d" % (n, v) for n, v, _ in members))
    return "\n".join(lines) + "\n"


FINGERPRINT = zlib.crc32(canonical().encode())
"""Schema fingerprint: peers with different schemas refuse each other."""
