"""Rows 3 and 4: bytes on the wire, and what a 115200-baud line can carry.

Frames are built by the host codec, which the golden vectors hold
byte-for-byte equal to the firmware's (the estop bench also checks the sizes
against frames captured from the emulated hub). Payload means the message's
own bytes; overhead is header, auth block, CRC, COBS and the delimiter.
"""
from nanohub.protocol import codec, model
from nanohub.protocol.overhead import MAVLINK2_SIGNED, MAVLINK2_UNSIGNED

from .report import Row

BAUD = 115200
LINE = BAUD // 10                 # bytes per second, 8N1
KEY = bytes(32)
BOT = {"state": 2, "site": 17, "activity": 80, "battery": 91, "health": 99}
STATUS_HZ = 5                     # the hub's default HUB_STATUS rate
BOTS_HZ = 25                      # the goal's update rate (the hub's maximum)
SHARE_GOAL = 85.0


def _sizes(msg, fields=None, records=(), **kw):
    payload = len(codec.build_payload(model.BY_NAME[msg].id, fields, records))
    wire = len(codec.encode(msg, fields, records, seq=0x1234, **kw))
    return payload, wire


def bot_states_wire(n):
    """(payload, wire) bytes of the BOT_STATES frames the hub sends for n bots."""
    most = model.BY_NAME["BOT_STATES"].max_count
    payload = wire = 0
    first = 0
    while first < n:
        k = min(most, n - first)
        p, w = _sizes("BOT_STATES", {"first": first}, [BOT] * k)
        payload += p
        wire += w
        first += k
    return payload, wire


def status_wire():
    return _sizes("HUB_STATUS", {"state": 2, "t": 123456, "bots": 64, "dose": 1000,
                                 "dose_cap": 300000})


def capacity(hz=BOTS_HZ, status_hz=STATUS_HZ, line=LINE):
    """Most bots whose states fit the line at ``hz``, next to HUB_STATUS."""
    _, sw = status_wire()
    n = 0
    while n < 255 and hz * bot_states_wire(n + 1)[1] + status_hz * sw <= line:
        n += 1
    return n


def _overhead_row(num, what, msg, fields, goal, whose, sign=None, **notes):
    """Row ``num``: the overhead of a command, whose goal is below ``whose`` ``goal`` bytes;
    ``sign`` the codec's signing arguments, ``notes`` the row's how and why."""
    p, w = _sizes(msg, fields, **(sign or {}))
    return Row(num, "%s (%s), overhead" % (what, msg), "%d B (payload %d, wire %d)"
               % (w - p, p, w), "< %d B (%s)" % (goal, whose), w - p < goal, **notes)


def run(quick=False):
    rows = [
        _overhead_row(
            "3a", "unsigned command", "RECALL", {"bot": 3}, MAVLINK2_UNSIGNED, "MAVLink 2",
            how="frames built by the host codec; overhead = wire bytes (COBS, delimiter "
                "included) minus payload bytes: header 5 B, CRC-32 4 B, COBS 1 B per 254, "
                "delimiter 1 B; signed adds counter 4 B, expiry 4 B and HMAC-SHA256 tag 8 B."),
        _overhead_row(
            "3b", "signed command", "DOSE_SCALE", {"percent": 50}, MAVLINK2_SIGNED,
            "MAVLink 2 signed", sign={"key": KEY, "counter": 7},
            why="the auth block carries an expiry in hub time (4 B) so that a held-back "
                "command is refused as stale (issue 14); MAVLink 2's 13-byte signature "
                "block carries a timestamp for the same purpose. A 6-byte tag would "
                "reach the goal at a lower forgery margin."),
    ]
    shares = {}
    for n in (16, 64):
        bp, bw = bot_states_wire(n)
        shares[n] = 100.0 * bp / bw
        rows.append(Row("3c" if n == 16 else "3d", "telemetry of %d bots (BOT_STATES)" % n,
                        "%d B wire for %d B payload: %.1f %% payload, %.2f B per bot"
                        % (bw, bp, shares[n], bw / n), "report", None))
    sp, sw = status_wire()
    bp, bw = bot_states_wire(64)
    mix = 100.0 * (BOTS_HZ * bp + 10 * sp) / (BOTS_HZ * bw + 10 * sw)
    rows.append(Row("3e", "payload share, saturated telemetry (64 bots)",
                    "%.1f %% (BOT_STATES at %d Hz + HUB_STATUS at 10 Hz, computed)"
                    % (mix, BOTS_HZ), ">= %g %%" % SHARE_GOAL, mix >= SHARE_GOAL,
                    how="the mix the hub sends at its highest telemetry rates, from frame "
                        "sizes; row 5 measures the same share on the paced link."))
    cap = capacity()
    per_bot = bot_states_wire(64)[1] / 64.0
    upd = int((LINE - STATUS_HZ * sw) / per_bot)
    rows.append(Row("4", "telemetry capacity at 115200 Bd",
                    "%d bots at %d Hz (%d bot updates/s; %.2f B per update at 64 bots/frame)"
                    % (cap, BOTS_HZ, upd, per_bot), ">= 64 bots at 25 Hz", cap >= 64,
                    how="the largest swarm whose BOT_STATES frames (as the hub batches them, up "
                        "to %d bots a frame) fit %d B/s at 25 Hz next to HUB_STATUS at its "
                        "default %d Hz; updates/s = remaining line bytes / bytes per bot "
                        "update in a 64-bot frame. Row 5 measures the delivered rate on a "
                        "paced link." % (model.BY_NAME["BOT_STATES"].max_count, LINE,
                                         STATUS_HZ)))
    return rows, {"shares": shares, "mix": mix, "capacity": cap, "updates": upd}
