"""The hub's persistent identity and safety state.

One record, written atomically to two files in turn (``state.bin``, then the
mirror ``state.bak``), each with a CRC, so a power cut leaves old or new and a
corrupt file still leaves the other copy. Load picks the valid copy with the
higher save sequence. Little-endian::

    magic "NHST" | version u16 | seq u32 | hub_id u32 | counter u32 |
    boots u32 | estop u8 | estop_reason u8 | reset_cause u8 | reserved u8 |
    crc32 u32 of everything before it                        (30 bytes)

The key is the raw 32-byte file ``hub.key``, written at flash time (and by
``rotate_key``). It is only ever used for HMAC here: no method returns it.

Decisions:
- counter: the highest authenticated counter accepted. ``accept_counter``
  persists it before the command runs, so a reboot cannot reopen a replay.
  One command may raise it by at most COUNTER_JUMP_MAX: a holder of the key
  cannot exhaust it (0xFFFFFFFF) in one frame and lock every signed command
  out; docs/boards.md gives the recovery at the REPL.
  A key rotation restarts it at 0 (after the new key is stored).
- estop: latched with the first reason (an ALARM_* code); a later latch
  keeps it. Latching never fails in RAM even if storage does; clearing needs
  the clear to be persisted first.
- consent: per session, RAM only. Cleared by ``load()`` (so at every boot):
  a reboot never resumes treatment, and a new treatment after a reboot needs
  consent again. The caller also clears it when a treatment ends.
- both copies unreadable: come up with the estop latched (ALARM_ESTOP),
  ``loaded`` = LOAD_CORRUPT; the counter high-water is then lost (0).
"""
import struct

from hub import hmac, wire
from hub.compat import const, crc32

FILE = "state.bin"
MIRROR = "state.bak"
KEY_FILE = "hub.key"
KEY_SIZE = const(32)

LOAD_OK = const(0)       # primary copy valid
LOAD_FRESH = const(1)    # no state yet: a new hub
LOAD_MIRROR = const(2)   # primary missing or corrupt: mirror used
LOAD_CORRUPT = const(3)  # no valid copy: estop latched

_MAGIC = b"NHST"
_VERSION = const(1)
_FMT = "<4sHIIIIBBBB"
_SIZE = const(30)
_U32 = const(0xFFFFFFFF)


class State:
    def __init__(self, store, hub_id=0):
        self.store = store
        self.hub_id = hub_id  # used only when no state exists yet
        self.counter = 0
        self.estop = False
        self.estop_reason = 0
        self.boots = 0
        self.reset_cause = wire.RESET_POWER
        self.consent = None
        self.keyed = False
        self.loaded = LOAD_FRESH
        self._seq = 0
        self._key = None

    # ------------------------------------------------------------ storage --
    def _unpack(self, data):
        if data is None or len(data) != _SIZE:
            return None
        if struct.unpack_from("<I", data, _SIZE - 4)[0] != crc32(data[:-4]):
            return None
        rec = struct.unpack_from(_FMT, data, 0)
        if rec[0] != _MAGIC or rec[1] != _VERSION:
            return None
        return rec

    def load(self):
        """Read state and key; clear consent. Returns a LOAD_* code (kept in
        .loaded). Storage errors raise OSError."""
        self.consent = None
        self._load_key()
        a = self.store.read(FILE)
        b = self.store.read(MIRROR)
        ra, rb = self._unpack(a), self._unpack(b)
        rec = ra
        if rb is not None and (ra is None or rb[2] > ra[2]):
            rec = rb
        if rec is None:
            self._seq = self.counter = self.boots = self.estop_reason = 0
            self.estop = False
            self.reset_cause = wire.RESET_POWER
            if not self.hub_id:
                self.hub_id = _random_id()
            code = LOAD_FRESH
            if a is not None or b is not None:
                code = LOAD_CORRUPT
                self.estop = True
                self.estop_reason = wire.ALARM_ESTOP
        else:
            code = LOAD_OK if rec is ra else LOAD_MIRROR
            (_, _, self._seq, self.hub_id, self.counter, self.boots,
             estop, self.estop_reason, self.reset_cause, _) = rec
            self.estop = bool(estop)
        self.loaded = code
        return code

    def _load_key(self):
        k = self.store.read(KEY_FILE)
        ok = k is not None and len(k) == KEY_SIZE and k != bytes(KEY_SIZE)
        self._key = bytes(k) if ok else None
        self.keyed = ok

    def pack(self):
        body = struct.pack(_FMT, _MAGIC, _VERSION, self._seq & _U32,
                           self.hub_id & _U32, self.counter & _U32,
                           self.boots & _U32, 1 if self.estop else 0,
                           self.estop_reason & 0xFF, self.reset_cause & 0xFF, 0)
        return body + struct.pack("<I", crc32(body))

    def save(self):
        """Write both copies atomically; raises OSError."""
        self._seq += 1
        data = self.pack()
        self.store.write_atomic(FILE, data)
        self.store.write_atomic(MIRROR, data)

    def boot(self, reset_cause):
        """At start-up: load, count the boot, record the reset cause, save.
        Returns the load code. Raises OSError if the save fails."""
        code = self.load()
        self.boots += 1
        self.reset_cause = reset_cause
        self.save()
        return code

    # ----------------------------------------------------- authentication --
    def check_counter(self, c):
        """True if c is above the high-water mark (would not be a replay) and
        at most COUNTER_JUMP_MAX above it (one command cannot burn the counter)."""
        return self.counter < c <= _U32 and c - self.counter <= wire.COUNTER_JUMP_MAX

    def accept_counter(self, c):
        """Raise the high-water mark to c and persist it, before the command
        runs. False if c is a replay. Raises OSError if it cannot be persisted
        (the mark stays raised in RAM; the command must be refused)."""
        if not self.check_counter(c):
            return False
        self.counter = c
        self.save()
        return True

    def verify_tag(self, signed, tag):
        """Constant-time check of a TAG_SIZE tag over the signed bytes."""
        if self._key is None or len(tag) != wire.TAG_SIZE:
            return False
        return hmac.equal(hmac.tag(self._key, signed, wire.TAG_SIZE), tag)

    def pseudonym(self, value):
        """A keyed pseudonym of a u32 (a patient id) for the audit log: the
        first 31 bits of HMAC-SHA256(key, "patient" + value). Whoever holds the
        key can check a known id against it; a reader of the log learns nothing.
        Without a key: 0 (no id is recorded at all)."""
        if self._key is None:
            return 0
        d = hmac.hmac_sha256(self._key, b"patient" + struct.pack("<I", value & _U32))
        return (d[0] | (d[1] << 8) | (d[2] << 16) | ((d[3] & 0x7F) << 24)) or 1

    def checkpoint_tag(self, index, chain):
        """The keyed tag of an audit-log checkpoint: the first 31 bits of
        HMAC-SHA256(key, "log" + index u32 LE + the 8-byte chain before it).
        Whoever holds the key can check that no record before it was removed
        or rewritten; without the key it cannot be recomputed. 0 without a key."""
        if self._key is None:
            return 0
        d = hmac.hmac_sha256(self._key, b"log" + struct.pack("<I", index & _U32) + bytes(chain))
        return (d[0] | (d[1] << 8) | (d[2] << 16) | ((d[3] & 0x7F) << 24)) or 1

    def authorize(self, signed, counter, tag):
        """The whole check for an authenticated command, in order: key, tag,
        replay, persist the counter. Returns WHY_NONE or the WHY_* refusal."""
        if self._key is None:
            return wire.WHY_NO_KEY
        if not self.verify_tag(signed, tag):
            return wire.WHY_AUTH_BAD
        return self.take_counter(counter)

    def take_counter(self, counter):
        """For a frame whose tag verified: replay, jump, persist. WHY_*."""
        if counter <= self.counter:
            return wire.WHY_AUTH_REPLAY
        if not self.check_counter(counter):
            return wire.WHY_AUTH_JUMP
        try:
            self.accept_counter(counter)
        except OSError:
            return wire.WHY_STORAGE
        return wire.WHY_NONE

    def rotate_key(self, wrapped, counter):
        """KEY_ROTATE: new key = wrapped XOR HMAC-SHA256(old key, counter as
        u32 little-endian), counter being the command's authenticated counter.
        Persists hub.key atomically, then restarts the counter at 0 (frames
        under the old key no longer verify, so none can be replayed; this is
        how an exhausted counter is renewed). Raises ValueError without a key
        or for a bad length, OSError on storage failure (if the key file was
        not replaced, the old key stays; the counter is reset only after)."""
        if self._key is None or len(wrapped) != KEY_SIZE:
            raise ValueError("no key or bad length")
        pad = hmac.hmac_sha256(self._key, struct.pack("<I", counter & _U32))
        new = bytes(wrapped[i] ^ pad[i] for i in range(KEY_SIZE))
        if new == bytes(KEY_SIZE):
            raise ValueError("zero key")
        self.store.write_atomic(KEY_FILE, new)
        self._key = new
        self.counter = 0
        self.save()

    # --------------------------------------------------------------- estop --
    def latch_estop(self, reason):
        """Latch (first reason wins) and try to persist. Never raises: the
        latch holds in RAM regardless; returns False if not persisted."""
        if not self.estop:
            self.estop = True
            self.estop_reason = reason
        try:
            self.save()
        except OSError:
            return False
        return True

    def clear_estop(self):
        """Clear the latch (after an authorized reset). Persisted first: on
        OSError the latch stays and the error propagates."""
        was = self.estop, self.estop_reason
        self.estop, self.estop_reason = False, 0
        try:
            self.save()
        except OSError:
            self.estop, self.estop_reason = was
            raise

    # ------------------------------------------------------------- consent --
    def set_consent(self, patient):
        self.consent = patient

    def clear_consent(self):
        self.consent = None


def _random_id():
    try:
        from os import urandom
        return struct.unpack("<I", urandom(4))[0] or 1
    except ImportError:
        from random import getrandbits
        return getrandbits(32) or 1
