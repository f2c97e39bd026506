"""On a MicroPython VM: the hub alone through a recorded session; its peak heap.

    node tests/wasm/run.mjs --path MPY_DIR:bench/mp bench/mp/replay.py SESSION BOTS

SESSION is ``sessionrec.py``'s recording: for each call into the hub (a tick
or a poll between ticks), the clock and the bytes it read from the host link
and the bus (binary: reading it makes no strings). Here a Hub on the null board with a file store (its files live
outside the heap, as on a board's flash) is fed the same bytes at the same
clock; what it writes is dropped.

Two ``wasm_step`` calls per hub call: this port collects only when control is
back in JavaScript. The first reads the call's record into two bytearrays
(what the links will hand the hub: a board's UART keeps them in its driver's
buffers); the second, on the heap collected since, makes the call. At its end
gc.mem_alloc() is what the call needed at once, less those bytes (measured as
they were allocated): the largest is the smallest heap the session fits in,
fragmentation aside. The replay's own state (this script's code, its globals,
the open recording) is counted in it. Prints one JSON line.
"""
import gc
import json
import os
import struct
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
REC = "<BIHH"                   # sessionrec.REC: kind, clock, host bytes, bus bytes
f = open(path, "rb")
store = Store(root)
store.write_atomic("hub.key", f.read(32))
head = bytearray(struct.calcsize(REC))
board = Board(store)
_EMPTY = b""
# the call's bytes: host data, read position, bus data, read position,
# the heap they take, the call's kind and clock
src = [_EMPTY, 0, _EMPTY, 0, 0, None, 0]


def _read(k, buf):
    data = src[k]
    pos = src[k + 1]
    n = len(data) - pos
    if n > len(buf):
        n = len(buf)
    for j in range(n):
        buf[j] = data[pos + j]
    src[k + 1] = pos + n
    return n


def _host_read(buf):
    return _read(0, buf)


def _bus_read(buf):
    return _read(2, buf)


def _host_write(buf, off, n):
    return n                    # the host takes every byte (and they are dropped)


def _bus_write(buf, n):
    pass


board.host_read = _host_read
board.bus_read = _bus_read
board.host_write = _host_write
board.bus_write = _bus_write
hub = Hub(board, bots)
hub.boot(0)
out = {"bots": bots, "calls": 0, "peak": 0, "peak_call": 0, "after_boot": 0, "call_max": 0,
       "call_max_at": 0}


def _feed():
    """Read the next call's bytes; False at the end of the recording."""
    if f.readinto(head) != len(head):
        return False
    kind, t, nh, nb = struct.unpack(REC, head)
    before = gc.mem_alloc()
    src[0] = bytearray(nh) if nh else _EMPTY
    src[2] = bytearray(nb) if nb else _EMPTY
    src[4] = gc.mem_alloc() - before
    for k in (0, 2):
        if src[k] and f.readinto(src[k]) != len(src[k]):
            return False
    src[1] = src[3] = 0
    src[5] = "t" if kind == 0x74 else "p"
    src[6] = t
    return True


def wasm_step():
    """Alternately: read the next call's bytes, then (on the heap collected
    since) make the call."""
    kind = src[5]
    if kind is None:
        if _feed():
            return True
        out["state"] = hub.state
        out["log"] = hub.log.next_index
        import micropython      # the interned-name pool at the end, on a line of its own
        micropython.qstr_info()
        print(json.dumps(out))
        return False
    src[5] = None
    now = gc.mem_alloc()
    if not out["after_boot"]:
        out["after_boot"] = now - src[4]
    t = src[6]
    board.clock = t
    if kind == "t":
        hub.tick(t)
    else:
        hub.poll(t)
    used = gc.mem_alloc() - src[4]
    src[0] = src[2] = _EMPTY
    out["calls"] += 1
    if now - src[4] > out.get("live_max", 0):
        out["live_max"] = now - src[4]
    if used - now + src[4] > out["call_max"]:
        out["call_max"] = used - now + src[4]
        out["call_max_at"] = out["calls"]
    if used > out["peak"]:
        out["peak"] = used
        out["peak_call"] = out["calls"]
    gc.collect()
    return True


gc.collect()                    # on the WebAssembly port: once this run returns
if sys.platform != "webassembly":
    while wasm_step():
        gc.collect()
