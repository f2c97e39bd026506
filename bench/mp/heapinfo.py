"""On the MicroPython VM: where the hub's heap goes. Prints one JSON line.

    micropython -X heapsize=1m bench/mp/heapinfo.py BOTS   (MICROPYPATH: firmware, .mpy or .py)

Each step's figure is gc.mem_alloc() after it minus before it, after a
collection: code loaded by the imports, then each long-lived object the Hub
builds (on the null board: no sockets), then boot.
"""
import gc
import json
import sys

out = {}


def step(name, fn):
    gc.collect()
    a = gc.mem_alloc()
    r = fn()
    gc.collect()
    out[name] = gc.mem_alloc() - a
    return r


MODULES = ("hub.compat", "hub.wire", "hub.crc", "hub.hmac", "hub.frame", "hub.store",
           "hub.params", "hub.state", "hub.audit", "hub.alarms", "hub.swarm",
           "hub.supervisor", "hub.checks", "hub.telemetry", "hub.control", "hub.safety",
           "hub.commands", "hub.version", "hub.core", "boards.base", "boards.null")
code = {}


def imports():
    for name in MODULES:        # each figure: that module and what it pulls in first
        gc.collect()
        a = gc.mem_alloc()
        try:
            __import__(name)
        except ImportError:
            continue
        gc.collect()
        code[name] = gc.mem_alloc() - a


n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
gc.collect()
out["start"] = gc.mem_alloc()
step("code: firmware modules", imports)
from boards.null import Board, MemStore   # noqa: E402
from hub import frame                      # noqa: E402
from hub.swarm import Swarm                # noqa: E402
from hub.core import Hub, Plan             # noqa: E402
from hub.alarms import Alarms              # noqa: E402
keep = []
keep.append(step("swarm tables (%d bots)" % n, lambda: Swarm(n)))
keep.append(step("one frame Rx", frame.Rx))
keep.append(step("one frame Tx", frame.Tx))
keep.append(step("plan", Plan))
keep.append(step("alarms", Alarms))
store = MemStore()
store.write_atomic("hub.key", bytes(32))
board = Board(store)
hub = step("whole Hub (%d bots)" % n, lambda: Hub(board, n, 1))
step("boot", lambda: hub.boot(0))
gc.collect()
out["total after boot"] = gc.mem_alloc()
out["free"] = gc.mem_free()
out["modules"] = code
print(json.dumps(out))
