"""On a MicroPython VM: the hub alone through a recorded session; its peak heap.

    node tests/wasm/run.mjs --path MPY_DIR:bench/mp bench/mp/replay.py SESSION BOTS

SESSION is ``sessionrec.py``'s recording: for each call into the hub (a tick
or a poll between ticks), the clock and the bytes it read from the host link
and the bus. Here a Hub on the null board with a file store (its files live
outside the heap, as on a board's flash) is fed the same bytes at the same
clock; what it writes is dropped. One call per ``wasm_step``: this port
collects only when control is back in JavaScript, so each call starts on a
collected heap and gc.mem_alloc() at its end is all it needed at once: the
largest is the smallest heap the session fits in, fragmentation aside. The
replay's own state (this script, the open recording, the line being fed)
is counted in it. Prints one JSON line.
"""
import gc
import json
import os
import sys

from boards.null import Board
from hub.core import Hub
from hub.store import Store

path = sys.argv[1]
bots = int(sys.argv[2]) if len(sys.argv) > 2 else 64
root = "/tmp/nanohub-replay"
try:
    os.mkdir(root)
except OSError:
    pass
for name in os.listdir(root):
    os.remove(root + "/" + name)
f = open(path)
line = f.readline()
store = Store(root)
store.write_atomic("hub.key", bytes.fromhex(line.split()[1]))
board = Board(store)


def _host_write(buf, off, n):
    return n                    # the host takes every byte (and they are dropped)


def _bus_write(buf, n):
    pass


board.host_write = _host_write
board.bus_write = _bus_write
hub = Hub(board, bots)
hub.boot(0)
out = {"bots": bots, "calls": 0, "peak": 0, "peak_call": 0, "after_boot": 0}
peak_at = [0, ""]


def wasm_step():
    now = gc.mem_alloc()
    if not out["after_boot"]:
        out["after_boot"] = now
    out["live_max"] = max(out.get("live_max", 0), now)
    line = f.readline()
    if not line:
        out["state"] = hub.state
        out["log"] = hub.log.next_index
        print(json.dumps(out))
        return False
    kind, t, host, bus = line.split()
    t = int(t)
    board.clock = t
    if host != "-":
        board.host_in.extend(bytes.fromhex(host))
    if bus != "-":
        board.bus_in.extend(bytes.fromhex(bus))
    host = bus = line = None
    if kind == "t":
        hub.tick(t)
    else:
        hub.poll(t)
    used = gc.mem_alloc()
    out["calls"] += 1
    if used > out["peak"]:
        out["peak"] = used
        out["peak_call"] = out["calls"]
        peak_at[1] = kind
    gc.collect()
    return True


gc.collect()                    # on the WebAssembly port: once this run returns
if sys.platform != "webassembly":
    while wasm_step():
        gc.collect()
