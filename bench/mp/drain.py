"""On the MicroPython VM: how fast the hub takes a flood off its host link.

    micropython -X heapsize=2m bench/mp/drain.py [MB]
    (MICROPYPATH=firmware:bench/mp:tests/mp:sim:.frozen)

The real Hub on the null board, whose host link reads from an in-memory
stream (``readinto`` at C speed, as a socket or UART driver would give),
holding MB of flood followed by one ESTOP. ``hub.poll`` runs until the
stream is empty; the clock is the VM's ``ticks_us``. Prints one JSON line per
flood kind: bytes per second taken off the link, and whether the ESTOP at the
end was acted on.
"""
import io
import json
import struct
import sys
import time

from hub import wire
from hubkit import Rig


def _garbage(n):
    out = bytearray(n)
    r = 12345
    for i in range(n):
        r = (r * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (r >> 16) & 0xFF
    return out


def _commands(rig, n):
    one = bytearray()
    for k in range(256):
        one += b"\0" + rig.frame(wire.M_HOLD, b"\xff")[1]
    out = bytearray()
    while len(out) < n:
        out += one
    return out


def run(kind, size):
    rig = Rig(bots=16)
    data = _garbage(size) if kind == "garbage" else _commands(rig, size)
    req, stop = rig.frame(wire.M_ESTOP, struct.pack(wire.ESTOP_FMT, 0))
    stream = io.BytesIO(bytes(data) + b"\0" + stop)
    total = len(data) + 1 + len(stop)
    board = rig.board
    board.host_read = stream.readinto
    hub = rig.hub
    polls = 0
    t0 = time.ticks_us()
    while stream.tell() < total:
        hub.poll(rig.now)
        polls += 1
    us = time.ticks_diff(time.ticks_us(), t0)
    rig._collect()
    return {"flood": kind, "bytes": total, "seconds": us / 1e6,
            "mb_per_s": total / us, "polls": polls, "parsed_frames": hub.hrx.frames,
            "drained": hub.stops.drained, "estop": rig.state() == wire.HUB_ESTOP,
            "acked": req in rig.acks}


def heartbeat_cost(n=200):
    """A signed heartbeat on the hub: the copy on the tick, the HMAC off it."""
    import gc
    from hub import commands
    rig = Rig(bots=16)
    hub = rig.hub
    tick_us = check_us = 0
    alloc = 0
    for k in range(n):
        rig.now += 250
        _, hb = rig.frame(wire.M_HEARTBEAT, struct.pack(wire.HEARTBEAT_FMT, rig.now),
                          sign=True, counter=0)
        rig.board.host_in.extend(hb)
        gc.collect()
        t = time.ticks_us()
        hub.poll(rig.now)                          # parse + copy (on the tick path)
        t2 = time.ticks_us()
        a = gc.mem_alloc()
        commands.check_heartbeat(hub)              # HMAC (Hub.idle, between ticks)
        t3 = time.ticks_us()
        alloc += gc.mem_alloc() - a
        tick_us += time.ticks_diff(t2, t)
        check_us += time.ticks_diff(t3, t2)
    return {"heartbeat": "signed", "poll_us": tick_us / n, "hmac_check_us": check_us / n,
            "hmac_check_bytes": alloc // n, "taken": hub.host_heard == rig.now,
            "per_second_at_4hz_us": 4 * (tick_us + check_us) / n}


def main():
    mb = float(sys.argv[1]) if len(sys.argv) > 1 else 4
    size = int(mb * 1000000)
    for kind in ("garbage", "unsigned commands"):
        print(json.dumps(run(kind, size)))
    print(json.dumps(heartbeat_cost()))


if __name__ == "__main__":
    main()
