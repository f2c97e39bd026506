"""On the 32-bit VM: the hub's steady treatment tick, what it allocates, an ESTOP.

    node tests/wasm/run.mjs --heap 4m --path firmware:bench/mp:tests/mp:sim \
        tests/wasm/tick.py BOTS TICKS

Builds the steady state of ``bench/mp/tickbench.py`` (the real Hub on the null
board, every bot treating, telemetry at its highest rates), then runs TICKS
ticks in chunks handed back to the runner (``wasm_step``): this port's
collector only runs once control is back in JavaScript, so each chunk starts
on a collected heap. What ``hub.tick`` allocates is read as gc.mem_alloc()
deltas with the collector off (the rig's own measure), and the frame layer's
share (``Rx.feed`` with its check, ``Tx.finish`` with CRC and COBS) is read the
same way around each call. Then an ESTOP: accepted, HUB_ESTOP at once, every
bot disabled. Prints one JSON line.
"""
import gc
import json
import sys

from hub import frame, wire
from tickbench import steady

CHUNK = 25

bots = int(sys.argv[1])
ticks = int(sys.argv[2]) if len(sys.argv) > 2 else 200
frame_alloc = [0, 0]            # bytes allocated in Rx.feed, in Tx.finish
frame_calls = [0, 0]
_feed = frame.Rx.feed
_finish = frame.Tx.finish
mem_alloc = gc.mem_alloc


def feed(self, data, i, n):
    a = mem_alloc()
    r = _feed(self, data, i, n)
    frame_alloc[0] += mem_alloc() - a
    frame_calls[0] += 1
    return r


def finish(self, plen, tagger=None, counter=0, expires=0):
    if tagger is not None:
        # the test host's own signed frames (its HMAC allocates): the hub never signs
        return _finish(self, plen, tagger, counter, expires)
    a = mem_alloc()
    r = _finish(self, plen, tagger, counter, expires)
    frame_alloc[1] += mem_alloc() - a
    frame_calls[1] += 1
    return r


rig = steady(bots)
rig.allocated = 0
done = 0
out = {"bots": bots, "ticks": ticks, "viper": getattr(frame, "viperbytes", None) is not None,
       "maxsize": sys.maxsize, "state": rig.state()}


def measured(run):
    frame.Rx.feed = feed
    frame.Tx.finish = finish
    rig.measure = True
    try:
        run()
    finally:
        rig.measure = False
        frame.Rx.feed = _feed
        frame.Tx.finish = _finish


def wasm_step():
    global done
    if done < ticks:
        k = min(CHUNK, ticks - done)
        measured(lambda: rig.run(k * 20))
        done += k
        return True
    out["alloc_bytes"] = rig.allocated
    out["frame_alloc"] = {"Rx.feed": frame_alloc[0], "Tx.finish": frame_alloc[1]}
    out["frame_calls"] = {"Rx.feed": frame_calls[0], "Tx.finish": frame_calls[1]}
    out["state_end"] = rig.state()
    ack = rig.estop()
    out["estop_ack"] = ack[0] if ack else None
    out["estop_state"] = rig.state()
    rig.run(500)
    out["disabled"] = sum(1 for i in range(rig.n) if rig.sw.state[i] == wire.BOT_DISABLED)
    out["acting"] = sum(1 for i in range(rig.n) if rig.sw.act[i])
    print(json.dumps(out))
    return False
