"""Fuzzing properties shared by the atheris harnesses and the pytest runs.

Three targets, each a function of plain bytes so that a coverage-guided
fuzzer (atheris), a property-based generator (hypothesis) and the corpus kept
in ``fuzz/corpus/`` all drive the same checks:

- ``check_rx(data)``: the firmware's streaming frame parser (``hub.frame.Rx``)
  against an independent oracle, the host codec (``nanohub.protocol.codec``).
- ``check_codec(data)``: the host codec on its own (decode, stream decode,
  rebuild).
- ``check_dispatch(data)``: the firmware's command dispatcher (``hub.core.Hub``
  on the in-memory ``null`` board with a simulated swarm), driven by a small
  action language decoded from the bytes (garbage, frames, signed commands,
  replays, mutations, truncations, ticks, bus frames, reconnects).

Properties (issue 8): never crash or hang; never act on an invalid frame;
count every rejected frame. A violation raises ``Violation``; any other
exception is a crash. Every check is deterministic for given bytes.
"""
import hashlib
import hmac as _hmac
import os
import struct
import sys
import zlib
from collections import deque
from pathlib import Path

from cobs import cobs

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "firmware") not in sys.path:
    sys.path.insert(0, str(ROOT / "firmware"))

from boards.null import Board, MemStore  # noqa: E402
from hub import frame, wire  # noqa: E402
from hub import params as P  # noqa: E402
from hub.core import Hub  # noqa: E402
from nanohub.protocol import codec, schema  # noqa: E402
from nanohub.protocol.codec import CodecError  # noqa: E402

KEY = bytes(range(101, 133))
OTHER_KEY = bytes(range(1, 33))      # "another hub's key"
HUB_ID = 0x51000001
MAX_STEPS = 200                      # actions per input
FEED_GUARD = 10 * wire.MAX_WIRE      # feed() calls per piece before we call it a hang


class Violation(AssertionError):
    """A fuzzing property does not hold."""


def need(cond, what, *detail):
    if not cond:
        raise Violation(what + ("" if not detail else ": " + " ".join(map(repr, detail))))


# ------------------------------------------------------------------ oracle --

def split(data, pending=b""):
    """Reference delimiter split: (complete non-empty chunks, pending tail)."""
    parts = (bytes(pending) + bytes(data)).split(b"\0")
    return [p for p in parts[:-1] if p], parts[-1]


def oracle(chunk):
    """The host codec's verdict on one chunk (COBS, no delimiter)."""
    try:
        f = codec.decode(chunk)
    except CodecError as e:
        return ("err", e.code)
    auth = bool(f.flags & schema.F_AUTH)
    end = len(f.body) - (schema.AUTH_SIZE if auth else 0)
    return ("ok", f.msg, f.seq, f.addr, f.flags, bytes(f.body[schema.HEADER_SIZE:end]),
            f.counter if auth else None, bytes(f.tag) if auth else None)


def _rx_result(rx):
    if rx.err:
        return ("err", rx.err)
    auth = bool(rx.buf[0] & wire.F_AUTH)
    at = rx.tag_at()
    return ("ok", rx.msg, rx.seq, rx.buf[4], rx.buf[0] & 0xF, bytes(rx.buf[wire.HEADER_SIZE:rx.pend]),
            rx.counter if auth else None,
            bytes(rx.buf[at:at + wire.TAG_SIZE]) if auth else None)


def same_verdict(fw, host, chunk):
    """Firmware and host agree: same fields for a valid frame, same error class
    for a dropped one. A chunk both too long and broken COBS is OVERSIZE on
    both ends: length is judged first (``codec._cobs_error``)."""
    return fw == host


# ----------------------------------------------------------------- parser --

def feed_all(rx, data, cuts=()):
    """Feed data to rx in pieces cut at ``cuts``; the results of every completed
    frame, in order. Checks progress (no hang) and bounds of every call."""
    out = []
    bounds = sorted(set(c for c in cuts if 0 < c < len(data))) + [len(data)]
    a = 0
    for b in bounds:
        i = a
        calls = 0
        while i < b:
            j = rx.feed(data, i, b)
            need(i < j <= b, "feed made no progress or overran", i, j, b)
            i = j
            calls += 1
            need(calls <= FEED_GUARD, "feed does not terminate")
            if rx.ready:
                out.append(_rx_result(rx))
        a = b
    return out


def check_rx(data, cuts=()):
    """Property of the firmware parser on an arbitrary stream. Returns figures."""
    data = bytes(data)
    rx = frame.Rx()
    got = feed_all(rx, data, cuts)
    chunks, _ = split(data)
    need(len(got) == len(chunks), "frames completed != delimited chunks", len(got), len(chunks))
    for k, chunk in enumerate(chunks):
        host = oracle(chunk)
        need(same_verdict(got[k], host, chunk), "firmware and host codec disagree",
             chunk.hex(), got[k], host)
    ok = sum(1 for g in got if g[0] == "ok")
    need(rx.frames == ok, "accepted frames miscounted", rx.frames, ok)
    need(sum(rx.bad) == len(got) - ok, "rejected frames miscounted", list(rx.bad), len(got) - ok)
    need(rx.bad[0] == 0, "a rejection counted as class 0")
    return {"frames": len(got), "accepted": ok, "rejected": len(got) - ok}


# ------------------------------------------------------------------ codec --

def check_codec(data, cut=0):
    """Host codec on arbitrary bytes: only CodecError, rebuilds what it accepts."""
    data = bytes(data)
    dec = codec.StreamDecoder()
    items = []
    c = cut % (len(data) + 1) if data else 0
    for part in (data[:c], data[c:]):
        for item in dec.feed(part):
            need(isinstance(item, (codec.Frame, CodecError)), "stream decoder yielded", type(item))
            items.append(item)
    chunks, _ = split(data)
    bad = sum(dec.errors.values())
    need(dec.frames + bad == len(items), "stream decoder miscounts", dec.frames, bad, len(items))
    for chunk in chunks:
        try:
            f = codec.decode(chunk)
        except CodecError as e:
            need(e.code in codec.ERR_NAME, "unknown error class", e.code)
            continue
        raw = cobs.decode(chunk)
        lay = codec.LAYOUTS[f.msg]
        auth = bool(f.flags & schema.F_AUTH)
        end = len(raw) - schema.CRC_SIZE - (schema.AUTH_SIZE if auth else 0)
        payload = codec.build_payload(f.msg, f.fields, f.records)
        need(payload == bytes(raw[schema.HEADER_SIZE:end]), "payload does not rebuild",
             chunk.hex())
        if not auth:
            rebuilt = codec.build(f.msg, f.fields, f.records, seq=f.seq, addr=f.addr,
                                  flags=f.flags)
            need(rebuilt == raw, "frame does not rebuild", chunk.hex())
        need(lay.msg.id == f.msg, "layout mismatch")
    return {"frames": len(chunks), "accepted": dec.frames, "rejected": bad}


# ------------------------------------------------------------- dispatcher --

def raw_frame(msg, payload, seq=0, addr=wire.ADDR_HUB, flags=0, key=None, counter=0,
              tag=None, tag_len=wire.TAG_SIZE, expires=0):
    """A frame's bytes before COBS, built here (not by either codec under test)."""
    if key is not None or tag is not None:
        flags |= wire.F_AUTH
    body = struct.pack("<BHBB", (wire.VERSION << 4) | (flags & 0xF), seq & 0xFFFF,
                       msg & 0xFF, addr & 0xFF) + bytes(payload)
    if flags & wire.F_AUTH and (key is not None or tag is not None):
        body += struct.pack("<II", counter & 0xFFFFFFFF, expires & 0xFFFFFFFF)
        t = tag if tag is not None else _hmac.new(key, body, hashlib.sha256).digest()
        body += bytes(t)[:tag_len]
    return body + struct.pack("<I", zlib.crc32(body))


def wire_of(raw):
    return cobs.encode(raw) + b"\0"


def fix_crcs(data):
    """Give every chunk that COBS-decodes to >= 4 bytes a correct CRC, so a
    mutating fuzzer gets past the CRC to the checks behind it."""
    parts = bytes(data).split(b"\0")
    out = []
    for p in parts[:-1]:
        try:
            raw = bytearray(cobs.decode(p)) if p else None
        except cobs.DecodeError:
            raw = None
        if raw is not None and len(raw) >= 4:
            struct.pack_into("<I", raw, len(raw) - 4, zlib.crc32(raw[:-4]))
            p = cobs.encode(bytes(raw))
        out.append(p)
    out.append(parts[-1])
    return b"\0".join(out)


class Reader:
    """Deterministic reads from fuzz bytes; zeros once exhausted."""

    def __init__(self, data):
        self.d = bytes(data)
        self.i = 0

    def left(self):
        return len(self.d) - self.i

    def u8(self):
        if self.i >= len(self.d):
            return 0
        self.i += 1
        return self.d[self.i - 1]

    def u16(self):
        return self.u8() | (self.u8() << 8)

    def take(self, n):
        b = self.d[self.i:self.i + n]
        self.i += len(b)
        return b + bytes(n - len(b))


MSG_IDS = sorted(wire.MSGS)
COMMAND_IDS = [m for m in MSG_IDS if wire.MSGS[m][4] & wire.MF_COMMAND]
READ_IDS = [wire.M_REQUEST, wire.M_PARAM_GET, wire.M_LOG_READ]
SITE = 10                            # the lesion the world puts in the mouth


class World:
    """The bot side for the null board: the simulator's bots, a gateway that
    sends BOT_REPORTS and PATIENT every 100 ms, and a host heartbeat."""

    def __init__(self, board, n, seed=1):
        from nanohub.sim.bots import Swarm
        self.board = board
        self.sw = Swarm(n, seed)
        self.sw.s_depth[SITE] = 300
        self.sw.s_temp[SITE] = 3700
        self.tx = frame.Tx()
        self.rx = frame.Rx()
        self.seq = 0
        self.next_report = 0
        self.sens = 100
        self.gateway = True

    def deliver(self, now):
        out = self.board.bus_out
        if not out:
            return []
        data = bytes(out)
        out[:] = b""
        rx = self.rx
        cmds = []
        i, n = 0, len(data)
        while i < n:
            i = rx.feed(data, i, n)
            if rx.ready and not rx.err and rx.msg == wire.M_BOT_CMDS:
                info = wire.MSGS[rx.msg]
                tail = bytes(rx.buf[wire.HEADER_SIZE + info[1]:rx.pend])
                for bot, op, site, rate, lease in struct.iter_unpack(info[2], tail):
                    cmds.append((bot, op, rate))
                    bots = range(self.sw.n) if bot == wire.ADDR_ALL else (bot,)
                    for b in bots:
                        if b < self.sw.n:
                            self.sw.command(b, op, site, rate, lease, now)
        return cmds

    def step(self, now):
        self.sw.step(now)
        if now - self.next_report >= 0:
            self.next_report = now + 100
            if self.gateway:
                self._reports()
                self._patient()

    def _send(self, n):
        self.board.bus_in.extend(self.tx.out[:n])

    def _reports(self):
        sw = self.sw
        tx = self.tx
        size = wire.BOT_REPORTS_REC_SIZE
        first = 0
        while first < sw.n:
            count = min(sw.n - first, wire.BOT_REPORTS_MAX)
            self.seq = (self.seq + 1) & 0xFFFF
            o = tx.begin(wire.M_BOT_REPORTS, self.seq, wire.ADDR_HUB)
            struct.pack_into(wire.BOT_REPORTS_FMT, tx.raw, o, first, count)
            o += wire.BOT_REPORTS_SIZE
            for i in range(first, first + count):
                r = sw.report(i) or (0, 255, 0, 0, 0, 0, 0, 0, 0, 0)
                struct.pack_into(wire.BOT_REPORTS_REC_FMT, tx.raw, o, *r)
                o += size
            self._send(tx.finish(wire.BOT_REPORTS_SIZE + count * size))
            first += count

    def _patient(self):
        tx = self.tx
        self.seq = (self.seq + 1) & 0xFFFF
        o = tx.begin(wire.M_PATIENT, self.seq, wire.ADDR_HUB)
        struct.pack_into(wire.PATIENT_FMT, tx.raw, o, self.sens, 0)
        self._send(tx.finish(wire.PATIENT_SIZE))


class DispatchRig:
    """A booted Hub on the null board, a simulated swarm, and a host that
    checks everything the hub does against the host codec's verdicts."""

    START_STATES = ("safe", "ready", "armed", "treating", "paused", "estop")

    def __init__(self, bots=6, start="safe", key=KEY):
        store = MemStore()
        if key is not None:
            store.write_atomic("hub.key", key)
        self.key = key
        self.store = store
        self.board = Board(store)
        self.hub = Hub(self.board, bots, HUB_ID)
        self.hub.boot(0)
        self.world = World(self.board, bots)
        self.now = 0
        self.counter = 0
        self.req = 0
        self.last_wire = b""
        self.pending = b""            # host-link bytes the hub holds without a delimiter
        self.cache = deque(maxlen=len(self.hub.acks.ans) // 3)   # model of the ACK cache
        self.acks = {}                # (req, crc31) -> ACK tuple first given
        self.stats = {"actions": 0, "frames": 0, "rejected": 0, "commands": 0,
                      "executed": 0, "refused": 0, "ticks": 0}
        self.decoder = codec.StreamDecoder()
        self._queue = []              # chunks sent, not yet read by the hub
        self._verdicts = []
        self._hello(True)
        self._go(start)

    # ----------------------------------------------------------- driving --
    def _go(self, start):
        if start == "safe":
            return
        self.command(wire.M_CONSENT, struct.pack("<I", 4242))
        self.ticks(10)
        self.command(wire.M_DEPLOY, bytes((SITE, 3)))
        for _ in range(150):
            self.ticks(5)
            sw = self.hub.swarm
            if sum(1 for i in range(sw.n) if sw.in_mouth(i) and sw.state[i] == wire.BOT_DEPLOYED
                   and not self.world.sw.moving[i]) == 3:
                break
        self.ticks(6)
        if start == "ready":
            return
        if start == "estop":
            self.command(wire.M_ESTOP, b"\x00")
            self.ticks(10)
            return
        self.command(wire.M_ARM, b"")
        if start == "armed":
            return
        plan = struct.pack(wire.TREAT_START_FMT, 100000, 50000, 2000, 0, 1) + \
            struct.pack(wire.TREAT_START_REC_FMT, SITE, 100, 3)
        self.command(wire.M_TREAT_START, plan)
        self.ticks(10)
        if start == "paused":
            self.command(wire.M_TREAT_PAUSE, b"")

    def _hello(self, good):
        schema_id = wire.SCHEMA if good else wire.SCHEMA ^ 0x5A5A
        self.send(wire_of(raw_frame(wire.M_HELLO, struct.pack("<IH", schema_id, 1),
                                    seq=self._next_req())))

    def _next_req(self):
        self.req = (self.req + 1) & 0xFFFF
        return self.req

    def sign_counter(self):
        self.counter = max(self.counter, self.hub.state_store.counter) + 1
        return self.counter

    def command(self, msg, payload, mode=0):
        """Send a command frame (signed as the schema says, with ``mode``)."""
        info = wire.MSGS[msg]
        seq = self._next_req()
        key = tag = None
        counter = 0
        tag_len = wire.TAG_SIZE
        if info[4] & wire.MF_AUTH and mode != 5 or mode in (1, 2, 3, 4):
            key = self.key or KEY
            counter = self.sign_counter()
            if mode == 1:
                counter = self.hub.state_store.counter       # a replayed counter
            elif mode == 2:
                key = OTHER_KEY                               # another hub's key
            elif mode == 3:
                tag = hashlib.sha256(payload + bytes((seq & 0xFF,))).digest()[:8]
            elif mode == 4:
                tag_len = 1 + seq % (wire.TAG_SIZE - 1)       # a truncated tag
        raw = raw_frame(msg, payload, seq=seq, key=key, counter=counter, tag=tag,
                        tag_len=tag_len, expires=(self.now + 500) & wire.HUB_TIME_MASK)
        self.send(wire_of(raw))

    def tick_once(self):
        self.now += 20
        self.board.clock = self.now
        self.world.step(self.now)
        if self.now % 240 == 0:
            self.send(wire_of(raw_frame(wire.M_HEARTBEAT, struct.pack("<I", self.now),
                                        seq=self._next_req())), poll=False)
        before = self.snapshot()
        self._expect()
        self.hub.tick(self.now)
        self._check_after(before, tick=True)
        self.stats["ticks"] += 1

    def ticks(self, n):
        for _ in range(n):
            self.tick_once()

    def _bus_check(self):
        """Deliver what the hub sent to the bots; no dose outside TREATING."""
        for bot, op, rate in self.world.deliver(self.now):
            if op == wire.OP_DOSE and rate:
                need(self.hub.state == wire.HUB_TREATING,
                     "a dose went out while not treating", self.hub.state, bot, rate)

    # ------------------------------------------------------------ checks --
    def snapshot(self):
        h = self.hub
        st = h.state_store
        return {"state": h.state, "counter": st.counter, "estop": st.estop,
                "consent": st.consent, "params": list(h.params._v),
                "log": h.log.next_index, "bad": list(h.hrx.bad), "frames": h.hrx.frames,
                "key": st._key, "scale": h.scale, "flood": h.cmd_flood}

    def send(self, data, poll=True):
        """Host bytes to the hub; poll it; check what it did against the oracle."""
        data = bytes(data)
        self.last_wire = data
        chunks, self.pending = split(data, self.pending)
        if len(self.pending) > 4 * wire.MAX_WIRE:
            self.pending = self.pending[-4 * wire.MAX_WIRE:]   # only its length class matters
        self.board.host_in.extend(data)
        self._queue += chunks
        if poll:
            before = self.snapshot()
            self._expect()
            self.hub.poll(self.now)
            self._check_after(before, tick=False)

    def _expect(self):
        """Verdicts for the chunks the hub is about to read."""
        self._verdicts = [(c, oracle(c)) for c in self._queue]
        self._queue = []

    def _replies(self):
        out = self.board.host_out
        data = bytes(out)
        out[:] = b""
        frames = []
        for item in self.decoder.feed(data):
            need(not isinstance(item, CodecError), "the hub sent a bad frame", str(item))
            frames.append(item)
        return frames

    def _check_after(self, before, tick):
        self._bus_check()
        h = self.hub
        replies = self._replies()
        acks = [f for f in replies if f.name == "ACK"]
        new_records = self._records(before["log"])
        verdicts = self._verdicts
        self._verdicts = []
        invalid = [(c, v) for c, v in verdicts if v[0] == "err"]
        valid = [(c, v) for c, v in verdicts if v[0] == "ok"]
        self.stats["frames"] += len(verdicts)
        self.stats["rejected"] += len(invalid)
        # every frame counted, each in its class
        bad_delta = [a - b for a, b in zip(h.hrx.bad, before["bad"])]
        need(h.hrx.frames - before["frames"] == len(valid), "accepted frames miscounted",
             h.hrx.frames - before["frames"], len(valid))
        need(sum(bad_delta) == len(invalid), "rejected frames miscounted", bad_delta,
             [v for _, v in invalid])
        for c, v in invalid:
            k = v[1]
            if c and len(c) <= wire.MAX_WIRE:
                need(bad_delta[k] > 0, "a rejected frame counted in another class", k, bad_delta)
        # never act on an invalid frame: only a HELLO with a foreign schema is answered
        schema_hellos = sum(1 for c, v in invalid if v[1] == wire.ERR_SCHEMA
                            and _msg_of(c) == wire.M_HELLO)
        if not valid:
            need(not acks, "an ACK for no valid frame", acks)
        if not valid and not tick:        # a tick runs the safety rules: they may act
            now = self.snapshot()
            for key in ("state", "counter", "estop", "consent", "params", "key", "scale"):
                need(before[key] == now[key], "state changed on invalid input", key)
            need(not new_records, "audit records for invalid input", new_records)
        hellos = [f for f in replies if f.name == "HELLO_REPLY"
                  and f["result"] == schema.enum_value("HELLO", "SCHEMA")]
        need(len(hellos) == schema_hellos, "schema replies", len(hellos), schema_hellos)
        self._check_commands(valid, acks, new_records, before)
        self._invariants()

    def _records(self, since):
        out = []
        buf = bytearray(wire.LOG_SIZE * 16)
        start = since
        log = self.hub.log
        while start < log.next_index:
            count, first, nxt = log.read_into(start, 16, buf)
            if count == 0:
                break
            for k in range(count):
                out.append(struct.unpack_from(wire.LOG_FMT, buf, k * wire.LOG_SIZE)[:6])
            start = out[-1][0] + 1
        return out

    def _check_commands(self, valid, acks, records, before):
        """Exactly one ACK per command frame; cached repeats run once; a signed
        command with a bad tag (or none) never runs."""
        hub_cmds = [r for r in records if r[2] in (wire.EV_CMD, wire.EV_REJECT)]
        expect_records = []
        expect_acks = []
        for c, v in valid:
            msg, seq = v[1], v[2]
            if not wire.MSGS[msg][4] & wire.MF_COMMAND:
                continue
            self.stats["commands"] += 1
            raw = cobs.decode(c)
            crc31 = struct.unpack_from("<I", raw, len(raw) - 4)[0] & 0x7FFFFFFF
            k = (seq, crc31)
            cached = k in self.cache
            expect_acks.append((seq, msg, k, cached, v))
            if not cached:
                self.cache.append(k)
                expect_records.append((msg, seq))
        refusals = sum(1 for c, v in valid if v[1] == wire.M_PARAM_GET
                       and v[5][0] >= self.hub.params.count)
        need(len(acks) == len(expect_acks) + refusals,
             "not exactly one ACK per command", len(acks), len(expect_acks), refusals)
        cmd_acks = [a for a in acks if a["cmd"] != wire.M_PARAM_GET]
        for a, (seq, msg, k, cached, v) in zip(cmd_acks, expect_acks):
            need(a["req"] == seq and a["cmd"] == msg, "ACK out of order or mislabelled",
                 a.fields, seq, msg)
            ack = (a["status"], a["reason"], a["detail"])
            if cached:
                need(self.acks.get(k) == ack, "a repeat got a different ACK", self.acks.get(k), ack)
                continue
            self.acks[k] = ack
            if a["status"] == wire.ACKS_REJECTED:
                self.stats["refused"] += 1
            else:
                self.stats["executed"] += 1
            if wire.MSGS[msg][4] & wire.MF_AUTH:
                signed_ok = self._tag_ok(v, c)
                if not signed_ok:
                    need(a["status"] == wire.ACKS_REJECTED and a["reason"] in (
                        wire.WHY_AUTH_MISSING, wire.WHY_AUTH_BAD, wire.WHY_NO_KEY),
                        "a command without a valid tag was not refused", a.fields)
                elif v[6] is not None and v[6] <= before["counter"]:
                    need(a["status"] == wire.ACKS_REJECTED, "an old counter was accepted",
                         v[6], before["counter"])
            if msg == wire.M_KEY_ROTATE and a["status"] != wire.ACKS_REJECTED:
                pad = _hmac.new(self.key, struct.pack("<I", v[6]), hashlib.sha256).digest()
                self.key = bytes(x ^ y for x, y in zip(v[5][:32], pad))
        got = [(r[3], r[4]) for r in hub_cmds]
        # keyless command records over the per-second budget are counted into
        # EV_CMD_FLOOD (written on the next tick) instead of one record each
        flooded = sum(r[5] for r in records if r[2] == wire.EV_CMD_FLOOD)
        flooded += self.hub.cmd_flood - before["flood"]
        it = iter(expect_records)
        need(all(g in it for g in got), "command records out of order or unexpected", got,
             expect_records)
        need(len(expect_records) - len(got) == flooded,
             "command records (run once each) differ", got, expect_records, flooded)

    def _tag_ok(self, v, chunk):
        if v[7] is None or self.key is None:
            return False
        raw = cobs.decode(chunk)        # the tag covers everything before it
        signed = bytes(raw[:len(raw) - wire.CRC_SIZE - wire.TAG_SIZE])
        return _hmac.compare_digest(
            _hmac.new(self.key, signed, hashlib.sha256).digest()[:wire.TAG_SIZE], v[7])

    def _invariants(self):
        h = self.hub
        need(h.state in (wire.HUB_SAFE, wire.HUB_ARMED, wire.HUB_TREATING, wire.HUB_PAUSED,
                         wire.HUB_ESTOP), "unknown hub state", h.state)
        need(h.state_store.estop == (h.state == wire.HUB_ESTOP),
             "the estop latch and the state disagree", h.state_store.estop, h.state)
        need(h.params.valid(), "parameters out of bounds")

    def finish(self):
        """End of an input: let the hub log its drop counters, then check the log."""
        self.ticks(55)
        ok, bad = self.hub.log.verify()
        need(ok, "the audit log does not verify", bad)
        if self.hub.log.first_index == 0:
            per = [0] * 16
            for r in self._records(0):
                if r[2] == wire.EV_RX_BAD:
                    per[r[3]] += r[5]
            need(per[1:] == list(self.hub.hrx.bad[1:]),
                 "logged rejects differ from the counters", per, list(self.hub.hrx.bad))
        return self.stats


def _msg_of(chunk):
    try:
        raw = cobs.decode(chunk)
    except cobs.DecodeError:
        return -1
    return raw[3] if len(raw) > 3 else -1


def _payload_for(msg, r):
    """A payload of the right length for ``msg`` with fuzz-chosen contents."""
    info = wire.MSGS[msg]
    size, rsize = info[1], info[3]
    if msg == wire.M_TREAT_START:
        count = r.u8() % 5
        fixed = bytearray(struct.pack(wire.TREAT_START_FMT, r.u16() * 16, r.u16() * 8,
                                      r.u16() % 6000, r.u8() % 4, count))
        if r.u8() & 1:
            struct.pack_into("<II", fixed, 0, 100000, 50000)
        recs = b""
        for _ in range(count):
            site = SITE if r.u8() & 1 else r.u8()
            recs += struct.pack(wire.TREAT_START_REC_FMT, site, r.u16() % 400, r.u8() % 5)
        return bytes(fixed) + recs
    if msg == wire.M_PARAM_SET:
        return struct.pack("<Bi", r.u8() % (P.COUNT + 2), struct.unpack("<i", r.take(4))[0])
    if rsize:
        count = r.u8() % 4
        fixed = bytearray(r.take(size))
        fixed[size - 1] = count
        return bytes(fixed) + r.take(count * rsize)
    return r.take(size)


def run_actions(data, start=None):
    """Interpret fuzz bytes as a session against the dispatcher; check it."""
    r = Reader(data)
    if start is None:
        start = DispatchRig.START_STATES[r.u8() % len(DispatchRig.START_STATES)]
    rig = DispatchRig(start=start)
    steps = 0
    while r.left() > 0 and steps < MAX_STEPS:
        steps += 1
        rig.stats["actions"] += 1
        op = r.u8() % 11
        if op == 0:                                    # garbage
            rig.send(r.take(r.u8()))
        elif op == 1:                                  # any frame, any signature
            msg = MSG_IDS[r.u8() % len(MSG_IDS)] if r.u8() & 1 else r.u8()
            flags = r.u8() & 0xF
            seq = r.u16()
            payload = r.take(r.u8() if r.u8() & 1 else r.u8() % 40)
            mode = r.u8() % 6
            key = tag = None
            if mode in (1, 2):
                key = rig.key or KEY if mode == 1 else OTHER_KEY
            elif mode == 3:
                tag = r.take(8)
            raw = raw_frame(msg, payload, seq=seq, flags=flags, key=key, tag=tag,
                            counter=rig.sign_counter() if mode else 0,
                            tag_len=wire.TAG_SIZE if mode != 4 else r.u8() % 8)
            rig.send(wire_of(raw))
        elif op in (2, 3):                             # a well-formed command
            msg = COMMAND_IDS[r.u8() % len(COMMAND_IDS)]
            rig.command(msg, _payload_for(msg, r), mode=r.u8() % 8)
        elif op == 4:                                  # a read
            msg = READ_IDS[r.u8() % len(READ_IDS)]
            rig.command(msg, r.take(wire.MSGS[msg][1]), mode=5)
        elif op == 5:                                  # the last bytes again
            rig.send(rig.last_wire)
        elif op == 6:                                  # the last frame, one bit flipped
            w = bytearray(rig.last_wire or b"\x01")
            k = r.u16() % len(w)
            w[k] ^= 1 << (r.u8() & 7)
            rig.send(bytes(w))
        elif op == 7:                                  # the last frame, cut short
            w = rig.last_wire or b"\x01\x00"
            rig.send(w[:max(0, len(w) - 1 - r.u8() % 16)] + b"\0")
        elif op == 8:                                  # time passes
            rig.ticks(1 + r.u8() % 40)
        elif op == 9:                                  # the bot bus says something odd
            _bus_noise(rig, r)
        else:                                          # a new host connection
            rig.board.session += 1
            rig._hello(bool(r.u8() & 1))
    return rig.finish()


def _bus_noise(rig, r):
    kind = r.u8() % 4
    if kind == 0:
        rig.board.bus_in.extend(r.take(r.u8()))
    else:
        msg = (wire.M_BOT_REPORTS, wire.M_PATIENT, wire.M_BUS_HELLO)[kind - 1]
        if msg == wire.M_BUS_HELLO:
            payload = struct.pack("<IB", wire.SCHEMA if r.u8() & 1 else r.u16(), r.u8())
        else:
            payload = _payload_for(msg, r)
        rig.board.bus_in.extend(wire_of(raw_frame(msg, payload, seq=r.u16())))
    rig.tick_once()


# ------------------------------------------------------- fuzz entries --
# One entry per target: how the raw fuzz input is read (shared by the atheris
# harnesses, the corpus replay and the hypothesis tests).

def rx_input(data):
    """Byte 0: read size (low 7 bits) and CRC fix-up (top bit); then the stream."""
    if not data:
        return {}
    step = (data[0] & 0x7F) % 97 + 1
    body = bytes(data[1:])
    if data[0] & 0x80:
        body = fix_crcs(body)
    return check_rx(body, cuts=range(step, len(body), step))


def codec_input(data):
    """Byte 0: where the stream splits in two reads, CRC fix-up (top bit)."""
    if not data:
        return {}
    body = bytes(data[1:])
    if data[0] & 0x80:
        body = fix_crcs(body)
    return check_codec(body, cut=(data[0] & 0x7F) * 7)


dispatch_input = run_actions


# ------------------------------------------------------------- seeds --

def vector_wires():
    import json
    v = json.loads((ROOT / "protocol" / "vectors.json").read_text())
    return [bytes.fromhex(e["wire"]) for e in v["valid"] + v["invalid"] if e.get("wire")]


def seed_actions():
    """A few action scripts that reach deep states: seeds for the corpus."""
    seeds = []
    for start in range(len(DispatchRig.START_STATES)):
        s = bytearray([start])
        s += bytes([8, 20])                              # tick 20
        s += bytes([2, COMMAND_IDS.index(wire.M_ESTOP), 0, 0])
        s += bytes([5])                                  # resend
        s += bytes([6, 3, 0, 5])                         # mutate
        s += bytes([8, 30])
        s += bytes([2, COMMAND_IDS.index(wire.M_ALARM_ACK), 0, 0])
        s += bytes([2, COMMAND_IDS.index(wire.M_ESTOP_RESET), 0])
        seeds.append(bytes(s))
    for k, msg in enumerate(COMMAND_IDS):          # each command, signed five ways
        s = bytearray([k % len(DispatchRig.START_STATES)])
        for mode in (0, 1, 2, 3, 4, 5):
            s += bytes([2, k, 7, 7, 7, 7, 7, 7, 7, 7, mode])
            s += bytes([5])                            # and again, identical
        s += bytes([8, 60, 9, 1, 0, 0, 0, 0])          # time, bus noise
        seeds.append(bytes(s))
    return seeds


if __name__ == "__main__":   # python fuzz/props.py: one quick pass over the seeds
    for d in seed_actions():
        print(run_actions(d))
    print(check_rx(b"".join(vector_wires())))
    print(os.path.basename(__file__), "ok")
