"""On the MicroPython VM: the hub's tick in a steady treatment, timed and
weighed (gc.mem_alloc). Prints one JSON line.

    micropython -X heapsize=2m bench/mp/tickbench.py BOTS TICKS
    (MICROPYPATH=firmware:bench/mp:tests/mp:sim:.frozen)

The rig (tests/mp/hubkit.py) plays host, gateway and swarm around the real
Hub on the null board with a fake clock; only ``hub.tick`` is measured.
Every bot is deployed over four sites and treating, telemetry runs at the
hub's highest rates (HUB_STATUS 10 Hz, BOT_STATES 25 Hz, SITE_READINGS 10 Hz).
"""
import gc
import json
import struct
import sys
import time

from hub import wire
from hubkit import Rig

SITES = (10, 11, 12, 13)


def steady(n):
    rig = Rig(bots=n)
    rig.keep_bus_log = False
    per = n // len(SITES)
    plan = []
    for k, site in enumerate(SITES):
        count = per + (1 if k < n - per * len(SITES) else 0)
        rig.lesion(site, 3000)
        plan.append((site, count))
    rig.udu_per_um = 1000000                # lesions barely move: a steady state
    # caps at the firmware's defaults and a low rate: the sites never finish here
    rig.treating(tuple(plan), target=100, session_cap=2000000, site_cap=200000, rate_cap=500)
    ack = rig.cmd(wire.M_TELEM_RATE, struct.pack(wire.TELEM_RATE_FMT, 10, 25, 10))
    if ack is None or ack[0] == wire.ACKS_REJECTED:
        raise AssertionError("TELEM_RATE refused: %r" % (ack,))
    rig.run(3000)                           # warm-up: every path used once
    if rig.state() != wire.HUB_TREATING:
        raise AssertionError("not treating after warm-up: state %d" % rig.state())
    return rig


def timed(rig, ticks):
    times = []
    hub = rig.hub
    ticks_us, ticks_diff = time.ticks_us, time.ticks_diff

    def tick(now):
        t = ticks_us()
        hub.tick(now)
        times.append(ticks_diff(ticks_us(), t))
    rig._tick = tick
    for _ in range(ticks):
        rig.step()
    del rig._tick
    return times


def stages(rig, ticks):
    """Time spent in each stage of the tick (wrapped, so a little inflated)."""
    from hub import commands, control, safety, telemetry
    hub = rig.hub
    spent = {}
    ticks_us, ticks_diff = time.ticks_us, time.ticks_diff

    def wrap(name, fn):
        spent[name] = 0

        def timed_call(*a):
            t = ticks_us()
            r = fn(*a)
            spent[name] += ticks_diff(ticks_us(), t)
            return r
        return timed_call
    mods = ((control, "account"), (control, "run"), (safety, "run"),
            (safety, "conditions"), (control, "limit"), (commands, "bus_send"),
            (telemetry, "run"))
    saved = [(m, a, getattr(m, a)) for m, a in mods]
    for m, a, fn in saved:
        setattr(m, a, wrap(m.__name__.split(".")[-1] + "." + a, fn))
    for a in ("poll", "apply", "estop_progress", "_log_rx_bad"):
        setattr(hub, a, wrap("hub." + a, getattr(hub, a)))
    total = timed(rig, ticks)
    for m, a, fn in saved:
        setattr(m, a, fn)
    for a in ("poll", "apply", "estop_progress", "_log_rx_bad"):
        delattr(hub, a)
    return spent, sum(total)


def main(n, ticks):
    rig = steady(n)
    frames = rig.hub.htx.seq
    times = timed(rig, ticks)
    sent = (rig.hub.htx.seq - frames) & 0xFFFF
    rig.allocated = 0
    rig.measure = True
    rig.run(ticks * 20)
    rig.measure = False
    state = rig.state()
    spent, whole = stages(rig, ticks)
    times.sort()
    print(json.dumps({
        "bots": n, "ticks": ticks, "state": state, "state_end": rig.state(),
        "mean_us": sum(times) / len(times), "median_us": times[len(times) // 2],
        "p99_us": times[min(len(times) - 1, (len(times) * 99 + 99) // 100 - 1)],
        "max_us": times[-1], "min_us": times[0],
        "alloc_bytes": rig.allocated, "host_frames": sent,
        "mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(),
        "stages_us": spent, "staged_total_us": whole,
    }))


if __name__ == "__main__":      # imported by the 32-bit VM's tests for ``steady``
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
