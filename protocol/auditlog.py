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

The chain is unkeyed: it finds damage, and anyone can recompute it. Forgery is
found with the hub key: every EV_CHECKPOINT record carries 31 bits of
HMAC-SHA256(key, "log" + its index + the chain before it) (``checkpoint_tag``),
and ``verify(..., keys=[key])`` checks each one; the records after the last
checkpoint are covered by the hub's reported head (``Head``: ``log_next`` and
``log_head`` from HUB_STATUS, kept beside a pulled file under a host tag).
"""
from __future__ import annotations

import hashlib
import hmac
import json
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
CHECKPOINT_BAD = "checkpoint tag does not verify under the key: records before it were removed or rewritten"
CHECKPOINT_UNKEYED = "checkpoint carries no tag (written by a hub without a key, or rewritten)"
HEAD_SHORT = "file ends before the newest record the hub reported: cut short"
HEAD_DIFFERS = "record differs from the head the hub reported: rewritten"
EV_CHECKPOINT = next(v for n, v, _ in schema.ENUMS["EV"] if n == "CHECKPOINT")

_EV = {v: (n, doc) for n, v, doc in schema.ENUMS["EV"]}


def chain_of(prev: bytes, head: bytes) -> bytes:
    return hashlib.sha256(bytes(prev) + bytes(head)).digest()[:CHAIN_SIZE]


def _tag31(d: bytes) -> int:
    return (d[0] | (d[1] << 8) | (d[2] << 16) | ((d[3] & 0x7F) << 24)) or 1


def checkpoint_tag(key: bytes, index: int, prev_chain: bytes) -> int:
    """What a hub with ``key`` writes in ``c`` of the checkpoint at ``index``."""
    return _tag31(hmac.new(key, b"log" + struct.pack("<I", index & 0xFFFFFFFF)
                           + bytes(prev_chain), hashlib.sha256).digest())


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
    keyed: bool = False             # checkpoints were checked under a key
    checkpoints: int = 0            # checkpoints that verified under a key
    head_checked: bool = False      # the end of the file matched the hub's reported head

    def __bool__(self):
        return self.ok

    def __str__(self):
        if self.count == 0 and self.ok:
            return "empty log"
        span = "records %s..%s" % (self.first_index, self.last_index)
        if self.ok:
            note = "" if self.anchored else " (first record unanchored)"
            if self.keyed:
                note += "; %d keyed checkpoints verify" % self.checkpoints
                note += "; end matches the hub's head" if self.head_checked else ""
            else:
                note += "; unkeyed check only (pass --key to check the checkpoints)"
            return "OK: %d %s verify%s" % (self.count, span, note)
        return "BAD at record %s (position %s): %s" % (self.bad_index, self.bad_position,
                                                     self.reason)


def verify(records, anchor: bytes | None = None, expect_start: int | None = None,
           keys=None, head: "Head | None" = None) -> Result:
    """Verify chain and index continuity; the Result names the first bad record.

    With ``keys`` (the hub's key, and its earlier keys after a rotation) every
    checkpoint whose previous record is present must carry a tag under one of
    them. With ``head`` the file must reach the hub's reported newest record
    and end in the same chain there."""
    keys = [bytes(k) for k in keys] if keys else []
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
        if keys and rec["event"] == EV_CHECKPOINT and prev_chain is not None:
            if rec["a"] == 0:
                return bad(pos, index, CHECKPOINT_UNKEYED)
            if not any(checkpoint_tag(k, index, prev_chain) == rec["c"] for k in keys):
                return bad(pos, index, CHECKPOINT_BAD)
            res.checkpoints += 1
        prev_chain, prev_index = chain, index
        res.count, res.last_index, res.head = pos + 1, index, chain
        if head is not None and index == head.next - 1:
            if chain != head.chain:
                return bad(pos, index, HEAD_DIFFERS)
            res.head_checked = True
    res.keyed = bool(keys)
    if head is not None and not res.head_checked and head.next > 0:
        return bad(len(records), res.last_index + 1 if res.last_index is not None else None,
                   HEAD_SHORT + " (the hub reported record %d, the file ends at %s)"
                   % (head.next - 1, res.last_index))
    return res


@dataclass
class Head:
    """The hub's newest record as HUB_STATUS reported it (``log_next``,
    ``log_head``), kept beside a pulled file. ``tag`` is the host's HMAC of it
    under the hub key, so that whoever rewrites the file cannot rewrite it too."""
    hub_id: int
    next: int
    chain: bytes
    tag: bytes = b""

    def signed_bytes(self) -> bytes:
        return b"nanohub log head" + struct.pack("<II", self.hub_id & 0xFFFFFFFF,
                                                 self.next & 0xFFFFFFFF) + bytes(self.chain)

    def sign(self, key: bytes) -> "Head":
        self.tag = hmac.new(key, self.signed_bytes(), hashlib.sha256).digest()[:16]
        return self

    def signed_by(self, keys) -> bool:
        return any(hmac.compare_digest(self.tag, hmac.new(bytes(k), self.signed_bytes(),
                                                          hashlib.sha256).digest()[:16])
                   for k in keys) if self.tag else False

    def dumps(self) -> str:
        return json.dumps({"hub_id": "%08x" % self.hub_id, "log_next": self.next,
                           "log_head": bytes(self.chain).hex(), "tag": self.tag.hex()}) + "\n"

    @classmethod
    def loads(cls, text: str) -> "Head":
        """Raises ValueError for anything that is not a head file."""
        try:
            d = json.loads(text)
            return cls(int(d["hub_id"], 16), int(d["log_next"]), bytes.fromhex(d["log_head"]),
                       bytes.fromhex(d.get("tag") or ""))
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as e:
            raise ValueError("not a log head file (%s)" % e) from None


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
        return "patient pseudonym %08x" % c     # keyed: pseudonym(key, id) checks an id
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
    if ev == "LOG_DROP":
        return "%d records from #%d rotated away" % (b, c)
    if ev == "CHECKPOINT":
        return "keyed checkpoint %08x" % c if a else "checkpoint (hub without a key)"
    if ev == "TREAT":
        return {1: "start", 2: "done", 3: "stop"}.get(a, "a=%d" % a)
    return "a=%d b=%d c=%d" % (a, b, c)


def describe(rec: dict) -> str:
    """One human-readable line for a record."""
    if rec.get("truncated") or rec.get("index") is None:
        return "(truncated record: %d bytes)" % len(rec.get("raw", b""))
    return "#%-7d %10.3f s  %-10s %s" % (rec["index"], rec["t"] / 1000.0,
                                        event_name(rec["event"]), _detail(rec))


def patient_pseudonym(key, patient):
    """The pseudonym a hub with ``key`` records for a patient id (EV_CONSENT c)."""
    import hashlib
    import hmac
    import struct
    d = hmac.new(key, b"patient" + struct.pack("<I", patient & 0xFFFFFFFF),
                 hashlib.sha256).digest()
    return (d[0] | (d[1] << 8) | (d[2] << 16) | ((d[3] & 0x7F) << 24)) or 1
