"""Host-side audit-log verifier (CPython).

Checks what the hub's ``firmware/hub/audit.py`` writes: records laid out as
``LogRecord`` in the schema, each carrying ``chain = SHA-256(prev chain +
record[:16])[:8]`` (the chain before index 0 is 8 zero bytes), with indexes
increasing by one. Works on records pulled over the link (LOG_CHUNK, decoded
to dicts by the codec) or on raw bytes (``parse_records``), and on raw segment
files copied off the board (``parse_segment``: an 8-byte anchor, then records).

Without an anchor, a log that starts after index 0 (older segments rotated
out) cannot have its first record's chain checked: it is then the trust root,
and ``Result.anchored`` is False. Keep the head of the last pull (``Result.head``)
and pass it as ``anchor`` with ``expect_start`` next time to close that gap.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from nanohub.protocol import model, schema

LAYOUT = model.RECORDS["LogRecord"]
FMT = LAYOUT.fmt
SIZE = LAYOUT.size
NAMES = LAYOUT.names
_CHAIN = next(f for f in LAYOUT.fields if f.name == "chain")
CHAIN_SIZE = _CHAIN.size
HEAD_SIZE = _CHAIN.offset           # bytes covered by the chain hash
HEAD_FMT = "<" + "".join(f.code for f in LAYOUT.fields if f.name != "chain")
ZERO_CHAIN = bytes(CHAIN_SIZE)

# why a record fails
CHAIN_BREAK = "chain break"
INDEX_GAP = "index gap"
INDEX_ORDER = "index not increasing"
TRUNCATED = "truncated"

_EV = {v: (n, doc) for n, v, doc in schema.ENUMS["EV"]}


def chain_of(prev: bytes, head: bytes) -> bytes:
    return hashlib.sha256(bytes(prev) + bytes(head)).digest()[:CHAIN_SIZE]


def parse_records(data: bytes) -> list[dict]:
    """Split raw records into dicts (the LogRecord field names plus ``raw``).
    A trailing partial record becomes ``{"index": None, "truncated": True,
    "raw": tail}`` so that ``verify`` reports it."""
    data = bytes(data)
    whole = len(data) - len(data) % SIZE
    out = []
    for off in range(0, whole, SIZE):
        rec = dict(zip(NAMES, struct.unpack_from(FMT, data, off)))
        rec["raw"] = data[off:off + SIZE]
        out.append(rec)
    if whole < len(data):
        out.append({"index": None, "truncated": True, "raw": data[whole:]})
    return out


def parse_segment(data: bytes) -> tuple[bytes, list[dict]]:
    """A segment file: (anchor, records)."""
    data = bytes(data)
    if len(data) < CHAIN_SIZE:
        return b"", [{"index": None, "truncated": True, "raw": data}]
    return data[:CHAIN_SIZE], parse_records(data[CHAIN_SIZE:])


def head_bytes(rec: dict) -> bytes:
    """The bytes the chain covers, rebuilt from the fields (raw not needed)."""
    return struct.pack(HEAD_FMT, *(rec[n] for n in NAMES if n != "chain"))


@dataclass
class Result:
    ok: bool
    count: int = 0                  # records checked
    first_index: int | None = None
    last_index: int | None = None   # last good record
    bad_index: int | None = None    # index the first bad record has (or should have)
    bad_position: int | None = None # its position in the list
    reason: str = ""
    anchored: bool = False          # the first record's chain was checked too
    head: bytes = ZERO_CHAIN        # chain of the last good record

    def __bool__(self):
        return self.ok

    def __str__(self):
        if self.count == 0 and self.ok:
            return "empty log"
        span = "records %s..%s" % (self.first_index, self.last_index)
        if self.ok:
            note = "" if self.anchored else " (first record unanchored)"
            return "OK: %d %s verify%s" % (self.count, span, note)
        return "BAD at record %s (position %s): %s" % (self.bad_index, self.bad_position,
                                                     self.reason)


def verify(records, anchor: bytes | None = None, expect_start: int | None = None) -> Result:
    """Verify chain and index continuity; the Result names the first bad record."""
    records = list(records)
    res = Result(ok=True, count=0)
    if records and records[0].get("index") is not None:
        res.first_index = records[0]["index"]
    if anchor is None and res.first_index == 0:
        anchor = ZERO_CHAIN  # the start of the log is its own anchor
    prev_chain = None if anchor is None else bytes(anchor)
    res.anchored = prev_chain is not None
    prev_index = None if expect_start is None else expect_start - 1

    def bad(pos, index, why):
        res.ok, res.bad_position, res.bad_index, res.reason = False, pos, index, why
        return res

    for pos, rec in enumerate(records):
        expect = None if prev_index is None else prev_index + 1
        if rec.get("truncated") or rec.get("index") is None:
            return bad(pos, expect, TRUNCATED)
        index = rec["index"]
        if expect is not None and index != expect:
            return bad(pos, expect, INDEX_ORDER if index < expect else INDEX_GAP)
        chain = bytes(rec["chain"])
        if prev_chain is not None and chain_of(prev_chain, head_bytes(rec)) != chain:
            return bad(pos, index, CHAIN_BREAK)
        prev_chain, prev_index = chain, index
        res.count, res.last_index, res.head = pos + 1, index, chain
    return res


def verify_segments(segments) -> Result:
    """Verify raw segment files in order (oldest first): each anchor must be
    the chain before its first record, and together they must be continuous."""
    records, anchor = [], None
    for i, data in enumerate(segments):
        seg_anchor, recs = parse_segment(data)
        if i == 0:
            anchor = seg_anchor
        elif records and seg_anchor != bytes(records[-1]["chain"]):
            # Mark the break on this segment's first record.
            res = verify(records, anchor)
            if not res.ok:
                return res
            return Result(ok=False, count=res.count, first_index=res.first_index,
                          last_index=res.last_index,
                          bad_index=recs[0]["index"] if recs else None,
                          bad_position=len(records), reason=CHAIN_BREAK,
                          anchored=res.anchored, head=res.head)
        records.extend(recs)
    return verify(records, anchor)


def event_name(event: int) -> str:
    return _EV.get(event, ("EV_%d" % event, ""))[0]


def _detail(rec: dict) -> str:
    ev, a, b, c = event_name(rec["event"]), rec["a"], rec["b"], rec["c"]
    if ev == "STATE":
        return "%s -> %s%s" % (schema.enum_name("HUB", b), schema.enum_name("HUB", a),
                               " (%s)" % schema.enum_name("ALARM", c, "reason %d" % c) if c else "")
    if ev == "BOOT":
        return "reset %s, boot %d" % (schema.enum_name("RESET", a), c)
    if ev in ("CMD", "REJECT"):
        msg = model.BY_ID.get(a)
        name = msg.name if msg else "msg 0x%02x" % a
        if ev == "REJECT":
            return "%s req %d: %s" % (name, b, schema.enum_name("WHY", c))
        return "%s req %d detail %d" % (name, b, c)
    if ev == "ALARM":
        return "%s bot %d value %d" % (schema.enum_name("ALARM", a), b, c)
    if ev == "ALARM_ACK":
        return "all alarms" if a == 0 else schema.enum_name("ALARM", a)
    if ev == "TORN":
        return "%d bytes dropped" % c
    if ev == "BOT":
        return "bot %d -> %s (%s)" % (a, schema.enum_name("BOT", b),
                                      schema.enum_name("ALARM", c, "silent %d ms" % c))
    if ev == "ESTOP":
        return "DISABLE broadcast to %d bots (source %d)" % (c, a)
    if ev == "ESTOP_DONE":
        return "%d confirmed, %d unconfirmed" % (c, b)
    if ev == "PARAM":
        return "parameter %d = %d" % (a, c)
    if ev == "RX_BAD":
        return "%d dropped: %s" % (c, schema.enum_name("ERR", a))
    if ev == "CONSENT":
        return "patient %d" % c
    if ev == "HOST_DROP":
        return "host not reading: %d telemetry and %d priority frames dropped" % (b, c)
    if ev == "ADVERSE":
        return "adverse event kind %d, sensitivity %d permille" % (a, c)
    if ev == "CLAMP":
        return "dose clamped at site %d (rule %d): %d" % (a, b, c)
    if ev == "KEY":
        return "hub key provisioned" if a == 1 else "hub key changed (%d)" % a
    if ev == "CMD_FLOOD":
        msg = model.BY_ID.get(a)
        return "%d unsigned or refused commands in one second (last %s)" % (
            c, msg.name if msg else "msg 0x%02x" % a)
    if ev == "TREAT":
        return {1: "start", 2: "done", 3: "stop"}.get(a, "a=%d" % a)
    return "a=%d b=%d c=%d" % (a, b, c)


def describe(rec: dict) -> str:
    """One human-readable line for a record."""
    if rec.get("truncated") or rec.get("index") is None:
        return "(truncated record: %d bytes)" % len(rec.get("raw", b""))
    return "#%-7d %10.3f s  %-10s %s" % (rec["index"], rec["t"] / 1000.0,
                                        event_name(rec["event"]), _detail(rec))
