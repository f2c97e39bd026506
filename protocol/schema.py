"""The nanohub wire protocol, defined once.

Everything that crosses a wire is described here with ``construct``: the frame
layout, every message of the host link and the bot bus, and the enumerations
their fields carry (their rows are data, read from ``tables.toml``). The host
codec (:mod:`nanohub.protocol.codec`) interprets these definitions; the
generator (:mod:`nanohub.protocol.gen`) turns them into the firmware codec
(``firmware/hub/wire.py``) and ``docs/protocol.md``.

Frame, before COBS encoding (all integers little-endian)::

    +--------+-----+-----+------+-----------+-----------------------------+--------+
    | vf  u8 | seq | msg | addr | payload   | auth (if F_AUTH)            | crc32  |
    |        | u16 | u8  | u8   | 0..N B    | counter u32, expires u32,   | u32    |
    |        |     |     |      |           | tag 8 B                     |        |
    +--------+-----+-----+------+-----------+-----------------------------+--------+

``vf`` packs the protocol version (high nibble) and the flags (low nibble).
``seq`` is the sender's sequence number; for commands it is the request id that
the ACK echoes. ``addr`` is the bot address on the bot bus (``ADDR_ALL`` for a
broadcast) and ``ADDR_HUB`` on the host link. The CRC-32 covers every byte
before it. The wire form is COBS(frame) followed by one ``0x00`` delimiter.
"""
from construct import (
    Array, Bytes, Const, GreedyBytes, Int8ul, Int16sl, Int16ul, Int32sl, Int32ul,
    Struct, this,
)

from . import tables

VERSION = 1
MAX_PAYLOAD = 480
TAG_SIZE = 8                      # HMAC-SHA256 truncated to 64 bits
F_AUTH = 0x1                      # frame carries counter, expires and tag
F_REPLY = 0x2                     # frame answers a request (ACK, replies)
ACK_CACHE = 16                    # answers the hub keeps for identical resends
TELEM_FLOOR_HZ = 1                # no unsigned TELEM_RATE goes below this
HUB_TIME_MOD = 1 << 30            # hub time (ms) on the wire is modulo this
COUNTER_JUMP_MAX = 1 << 16        # a signed command may raise the counter by at most this
LOG_CHECKPOINT_EVERY = 16         # the hub writes a keyed EV_CHECKPOINT after this many records
ADDR_HUB = 0x00
ADDR_ALL = 0xFF
MAX_BOTS = 255

# ---------------------------------------------------------------- framing --

Header = Struct(
    "vf" / Int8ul,
    "seq" / Int16ul,
    "msg" / Int8ul,
    "addr" / Int8ul,
)
Auth = Struct(
    "counter" / Int32ul,          # above the hub's high-water mark (HEARTBEAT: not checked)
    "expires" / Int32ul,          # hub time (ms mod HUB_TIME_MOD) after which it is refused
    "tag" / Bytes(TAG_SIZE),      # HMAC-SHA256(key, header + payload + counter + expires)[:8]
)
Trailer = Struct("crc" / Int32ul)

HEADER_SIZE = Header.sizeof()
AUTH_SIZE = Auth.sizeof()
CRC_SIZE = Trailer.sizeof()
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + AUTH_SIZE + CRC_SIZE
# COBS adds one byte per 254 and the frame ends with one delimiter
MAX_WIRE = MAX_FRAME + MAX_FRAME // 254 + 2

# ------------------------------------------------------------ enumerations --
# Each enumeration is an ordered table of (NAME, value, meaning), kept as data
# with its comments in tables.toml. The generator emits them as constants for
# the firmware; the host imports them.

ENUMS = tables.ENUMS


def enum_value(enum, name):
    for n, v, _ in ENUMS[enum]:
        if n == name:
            return v
    raise KeyError("%s_%s" % (enum, name))


def enum_name(enum, value, default=None):
    for n, v, _ in ENUMS[enum]:
        if v == value:
            return n
    return default if default is not None else "%s_%d" % (enum, value)


# ---------------------------------------------------------------- records --

BotState = Struct(                 # one bot in telemetry
    "state" / Int8ul,              # BOT_*
    "site" / Int8ul,               # site index, 0xFF none
    "activity" / Int8ul,           # percent of full output
    "battery" / Int8ul,            # percent
    "health" / Int8ul,             # percent; self-test passes above 50
)

SiteReading = Struct(              # one treated site in telemetry
    "site" / Int8ul,
    "ph" / Int16ul,                # pH x 100
    "bacteria" / Int16ul,          # log10(CFU/mL) x 100
    "temp" / Int16sl,              # degrees C x 100
    "depth" / Int16ul,             # lesion depth, micrometres
    "dose" / Int32ul,              # delivered dose, micro dose units
)

PlanSite = Struct(
    "site" / Int8ul,
    "target" / Int16ul,            # target lesion depth, micrometres
    "bots" / Int8ul,               # bots to deploy there
)

BotCmd = Struct(                   # one bot-bus command record
    "bot" / Int8ul,
    "op" / Int8ul,                 # OP_*
    "site" / Int8ul,
    "rate" / Int8ul,               # percent of full output
    "lease" / Int16ul,             # ms until the command expires (DOSE)
)

BotReport = Struct(                # one bot as the swarm reports it
    "state" / Int8ul,              # BOT_* as the bot sees itself
    "site" / Int8ul,
    "activity" / Int8ul,           # measured output, percent
    "battery" / Int8ul,
    "health" / Int8ul,
    "temp" / Int16sl,              # tissue temperature at the bot, C x 100
    "ph" / Int16ul,                # pH x 100
    "depth" / Int16ul,             # lesion depth under the bot, um
    "bacteria" / Int16ul,          # log10(CFU/mL) x 100
    "dose" / Int16ul,              # the bot's own count of the dose it has delivered,
                                   # micro dose units rounded up, modulo 65536; it only
                                   # grows (restarts at 0 if the bot restarts), so the hub
                                   # adds the difference since the bot's last report and
                                   # lost or repeated reports neither hide nor double dose
)

LogRecord = Struct(                # one audit-log record, on disk and on the wire
    "index" / Int32ul,
    "t" / Int32ul,                 # hub time, ms since boot
    "event" / Int8ul,              # EV_*
    "a" / Int8ul,
    "b" / Int16ul,
    "c" / Int32sl,
    "chain" / Bytes(8),            # SHA-256(prev chain + record[:16])[:8], unkeyed (EV_CHECKPOINT is keyed)
)

# --------------------------------------------------------------- messages --
# (id, name, link, construct, description). link: "host" hub<->operator,
# "bus" hub<->swarm. A message has fixed fields and at most one tail: an
# Array of records whose count is the field just before it, or GreedyBytes.

MESSAGES = (
    # session
    (0x01, "HELLO", "host", Struct(
        "schema" / Int32ul,
        "host_version" / Int16ul,
    ), "host opens a session; schema is the host's fingerprint"),
    (0x02, "HELLO_REPLY", "host", Struct(
        "result" / Int8ul,             # HELLO_*
        "schema" / Int32ul,
        "fw_major" / Int8ul,
        "fw_minor" / Int8ul,
        "fw_patch" / Int8ul,
        "board" / Bytes(8),
        "hub_id" / Int32ul,
        "caps" / Int16ul,
        "bots" / Int8ul,
        "state" / Int8ul,
        "boots" / Int16ul,
        "reset_cause" / Int8ul,
        "keyed" / Int8ul,
        "counter" / Int32ul,           # highest authenticated counter seen
        "estop" / Int8ul,              # 1 while an emergency stop is latched
        "t" / Int32ul,                 # hub time, ms mod HUB_TIME_MOD: signed frames expire by it
        "fresh_ms" / Int16ul,          # how far ahead a signed frame may expire
    ), "hub identity; result SCHEMA refuses a mismatched peer"),
    (0x03, "HEARTBEAT", "host", Struct(
        "t" / Int32ul,
    ), "liveness, host to hub at 4 Hz and hub to host; only a signed one (fresh, expiring "
       "later than the last) keeps a treatment running"),
    # commands (host -> hub); each answered by exactly one ACK
    (0x10, "ACK", "host", Struct(
        "req" / Int16ul,               # request id being answered
        "cmd" / Int8ul,                # message id being answered
        "status" / Int8ul,             # ACKS_*
        "reason" / Int8ul,             # WHY_*
        "detail" / Int32sl,
    ), "the one answer to a command"),
    (0x20, "ARM", "host", Struct(), "SAFE to ARMED after pre-treatment checks [auth]"),
    (0x21, "DISARM", "host", Struct(), "ARMED or PAUSED to SAFE"),
    (0x22, "TREAT_START", "host", Struct(
        "session_cap" / Int32ul,       # micro dose units per session
        "site_cap" / Int32ul,          # micro dose units per site
        "rate_cap" / Int16ul,          # micro dose units per second per site
        "duration" / Int16ul,          # seconds
        "count" / Int8ul,
        "sites" / Array(this.count, PlanSite),
    ), "load the plan and start treating [auth]"),
    (0x23, "TREAT_PAUSE", "host", Struct(), "TREATING to PAUSED: bots hold"),
    (0x24, "TREAT_RESUME", "host", Struct(), "PAUSED to TREATING [auth]"),
    (0x25, "TREAT_STOP", "host", Struct(), "end treatment: bots hold, hub SAFE"),
    (0x26, "DOSE_SCALE", "host", Struct(
        "percent" / Int8ul,
    ), "scale the plan's dose rate, 0..100 [auth]"),
    (0x27, "DEPLOY", "host", Struct(
        "site" / Int8ul,
        "count" / Int8ul,
    ), "send docked bots to a site"),
    (0x28, "RECALL", "host", Struct(
        "bot" / Int8ul,                # ADDR_ALL for every bot
    ), "bring bots back to the dock"),
    (0x29, "HOLD", "host", Struct(
        "bot" / Int8ul,
    ), "bots stop delivering and stay"),
    (0x2A, "ESTOP", "host", Struct(
        "source" / Int8ul,             # 0 operator, 1 key, 2 script
    ), "emergency stop: disable every bot, latch; never needs a key"),
    (0x2B, "ESTOP_RESET", "host", Struct(), "leave ESTOP for SAFE after checks [auth]"),
    (0x2C, "ALARM_ACK", "host", Struct(
        "code" / Int8ul,               # ALARM_*, 0 for all
    ), "acknowledge latched alarms; a HIGH one only when signed [auth for HIGH]"),
    (0x2D, "CONSENT", "host", Struct(
        "patient" / Int32ul,
    ), "record the patient's consent [auth]"),
    (0x2E, "KEY_ROTATE", "host", Struct(
        "key" / Bytes(32),             # new key XOR HMAC(old key, counter)
    ), "replace the hub key [auth]"),
    (0x2F, "PARAM_GET", "host", Struct(
        "index" / Int8ul,
    ), "ask for one parameter: PARAM_VALUE"),
    (0x30, "PARAM_SET", "host", Struct(
        "index" / Int8ul,
        "value" / Int32sl,
    ), "set a parameter within its bounds [auth]"),
    (0x31, "PARAM_VALUE", "host", Struct(
        "index" / Int8ul,
        "count" / Int8ul,
        "value" / Int32sl,
        "min" / Int32sl,
        "max" / Int32sl,
        "default" / Int32sl,
        "name" / Bytes(16),
        "unit" / Bytes(6),
    ), "one parameter, its bounds and unit"),
    (0x32, "LOG_READ", "host", Struct(
        "start" / Int32ul,             # first record index wanted
        "max" / Int8ul,                # at most this many records
    ), "ask for audit-log records: LOG_CHUNK"),
    (0x33, "LOG_CHUNK", "host", Struct(
        "start" / Int32ul,             # index of the first record here
        "first" / Int32ul,             # oldest index still stored
        "next" / Int32ul,              # index the next record will get
        "count" / Int8ul,
        "records" / Array(this.count, LogRecord),
    ), "audit-log records, resumable by index"),
    (0x34, "REQUEST", "host", Struct(
        "what" / Int8ul,               # REQ_*
    ), "ask the hub to send telemetry now"),
    (0x35, "TELEM_RATE", "host", Struct(
        "status_hz" / Int8ul,
        "bots_hz" / Int8ul,
        "sites_hz" / Int8ul,
    ), "telemetry rates, bounded by the hub; below TELEM_FLOOR_HZ only when signed"),
    (0x36, "LOG_ACK", "host", Struct(
        "upto" / Int32ul,              # the host has stored and verified every record below this
    ), "the host stored the audit log up to here: the hub may rotate those records away [auth]"),
    # telemetry (hub -> host)
    (0x40, "HUB_STATUS", "host", Struct(
        "state" / Int8ul,              # HUB_*
        "reason" / Int8ul,             # ALARM_* or 0: why the hub is in state
        "t" / Int32ul,
        "bots" / Int8ul,
        "docked" / Int8ul,
        "deployed" / Int8ul,
        "active" / Int8ul,
        "returning" / Int8ul,
        "quarantined" / Int8ul,
        "disabled" / Int8ul,
        "lost" / Int8ul,
        "alarms" / Int8ul,             # active alarms
        "unacked" / Int8ul,            # unacknowledged HIGH alarms
        "dose" / Int32ul,              # delivered this session, micro dose units
        "dose_cap" / Int32ul,
        "sens" / Int16ul,              # sensitivity index, permille of limit
        "scale" / Int8ul,              # dose scale percent
        "link" / Int8ul,               # bot-bus frames received, percent
        "rx_bad" / Int16ul,            # bad frames dropped since boot
        "checks" / Int16ul,            # failing CHECK_* bits
        "late_ms" / Int16ul,           # worst tick start past its due time since the last HUB_STATUS
        "late_n" / Int16ul,            # ticks started over a quarter period late, since boot
        "host_us" / Int16ul,           # most time the host link's writes took in one pass of the loop
                                       # since the last HUB_STATUS, us (saturates)
        "host_lost" / Int16ul,         # ACKs, alarms, reports for the host dropped since boot
        "log_next" / Int32ul,          # index the next audit record gets
        "log_head" / Bytes(8),         # chain of the newest audit record (zeros if none)
    ), "hub state, reason, swarm counts, dose, patient, loop health"),
    (0x41, "BOT_STATES", "host", Struct(
        "first" / Int8ul,
        "count" / Int8ul,
        "bots" / Array(this.count, BotState),
    ), "batched bot states, bots first..first+count-1"),
    (0x42, "SITE_READINGS", "host", Struct(
        "count" / Int8ul,
        "sites" / Array(this.count, SiteReading),
    ), "per-site microbiome readings"),
    (0x43, "ALARM", "host", Struct(
        "code" / Int8ul,
        "prio" / Int8ul,
        "state" / Int8ul,              # ALST_*
        "bot" / Int8ul,
        "site" / Int8ul,
        "value" / Int32sl,
        "t" / Int32ul,
    ), "an alarm was raised, acknowledged or cleared"),
    (0x44, "ESTOP_REPORT", "host", Struct(
        "done" / Int8ul,               # 1 when confirmation has finished
        "total" / Int8ul,
        "confirmed" / Int8ul,
        "unconfirmed" / Int8ul,
        "pending" / Bytes(32),         # bitmap of bots not yet confirmed
    ), "emergency stop progress, bot by bot"),
    # bot bus (hub <-> swarm gateway)
    (0x60, "BOT_CMDS", "bus", Struct(
        "count" / Int8ul,
        "cmds" / Array(this.count, BotCmd),
    ), "commands to bots; bot ADDR_ALL broadcasts"),
    (0x61, "BOT_REPORTS", "bus", Struct(
        "first" / Int8ul,
        "count" / Int8ul,
        "bots" / Array(this.count, BotReport),
    ), "bot reports, bots first..first+count-1"),
    (0x62, "PATIENT", "bus", Struct(
        "sens" / Int16ul,              # sensitivity index, permille of limit
        "events" / Int8ul,             # nano-sensitivity events so far
    ), "patient monitor reading from the swarm gateway"),
    (0x63, "BUS_HELLO", "bus", Struct(
        "schema" / Int32ul,
        "bots" / Int8ul,
    ), "swarm gateway announces itself and its bot count"),
)

AUTH_REQUIRED = frozenset((
    "ARM", "TREAT_START", "TREAT_RESUME", "DOSE_SCALE", "ESTOP_RESET",
    "CONSENT", "KEY_ROTATE", "PARAM_SET", "LOG_ACK",
))
"""Commands that can start or increase energy delivery, or (LOG_ACK) let audit
records be rotated away: they need a tag."""

AUTH_TO_LOWER = ("ALARM_ACK", "TELEM_RATE")
"""Commands anyone may send, whose stronger effect needs a tag: acknowledging a
HIGH alarm (it blocks arming and reset until then), and a telemetry rate below
TELEM_FLOOR_HZ (it would blind the operator). A host holding the key signs them."""

READS = ("PARAM_GET", "LOG_READ", "REQUEST")
"""Requests answered with data (PARAM_VALUE, LOG_CHUNK, telemetry), not an ACK."""

COMMANDS = tuple(name for mid, name, link, _, _ in MESSAGES
                 if link == "host" and 0x20 <= mid < 0x40
                 and name not in ("PARAM_VALUE", "LOG_CHUNK") and name not in READS)
"""Messages the hub answers with exactly one ACK."""

BY_NAME = {m[1]: m for m in MESSAGES}
BY_ID = {m[0]: m for m in MESSAGES}
MSG = {m[1]: m[0] for m in MESSAGES}

Frame = Struct(                    # a whole unsigned frame, for documentation
    "header" / Header,
    "payload" / GreedyBytes,
)
_ = Const  # re-exported for schema authors
