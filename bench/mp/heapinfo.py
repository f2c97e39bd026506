"""On the MicroPython VM: where the hub's heap goes. Prints one JSON line.

    micropython -X heapsize=1m bench/mp/heapinfo.py BOTS   (MICROPYPATH: firmware, .mpy or .py)
    node tests/wasm/run.mjs --path firmware:bench/mp bench/mp/heapinfo.py BOTS   (32-bit VM)

Each figure is gc.mem_alloc() after a step minus before it, both read on a
collected heap: the code each firmware module loads (and what it pulls in
first), then each long-lived object the Hub builds, measured alone and let go
(so the Hub's own copy is the only one left), then the whole Hub (on the null
board: no sockets) and its boot. The steps run one per ``wasm_step`` call: on
the WebAssembly port a collection only happens once control is back in
JavaScript, so each reading there is taken at the start of the next call.
"""
import gc
import json
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
MODULES = ("hub.compat", "hub.wire", "hub.crc", "hub.viperbytes", "hub.hmac", "hub.frame",
           "hub.store", "hub.params", "hub.state", "hub.audit", "hub.alarms", "hub.swarm",
           "hub.supervisor", "hub.checks", "hub.telemetry", "hub.control", "hub.safety",
           "hub.commands", "hub.version", "hub.core", "boards.base", "boards.null")
out = {}
code = {}
held = {}                       # what the current step made, kept until it is measured


def _import(name):
    try:
        __import__(name)
    except (ImportError, SyntaxError, ValueError):
        return None             # not on this port (viper without a native emitter)
    return True


def _component(name):
    def make():
        from boards.null import Board, MemStore
        from hub import alarms, core, frame, swarm
        if name == "swarm":
            return swarm.Swarm(n)
        if name == "rx":
            return frame.Rx()
        if name == "tx":
            return frame.Tx()
        if name == "plan":
            return core.Plan()
        if name == "alarms":
            return alarms.Alarms()
        store = MemStore()
        store.write_atomic("hub.key", bytes(32))
        return core.Hub(Board(store), n, 1)
    return make


def _boot():
    held["hub"].boot(0)
    return True


# (figure, what makes it, keep it after measuring)
STEPS = [("module " + m, (lambda m=m: _import(m)), True) for m in MODULES] + [
    ("swarm tables (%d bots)" % n, _component("swarm"), False),
    ("one frame Rx", _component("rx"), False),
    ("one frame Tx", _component("tx"), False),
    ("plan", _component("plan"), False),
    ("alarms", _component("alarms"), False),
    ("whole Hub (%d bots)" % n, _component("hub"), True),
    ("boot", _boot, True),
]
k = 0
pending = None                  # (figure, heap before it, keep)


def wasm_step():
    """Read the heap the last step left (collected), then run the next step."""
    global k, pending
    now = gc.mem_alloc()
    if pending is not None:
        name, before, keep = pending
        pending = None
        if name.startswith("module "):
            if held.pop(name, None):
                code[name[7:]] = now - before
        else:
            out[name] = now - before
            if not keep:
                held.pop(name, None)
                gc.collect()
                return True     # read the next step's start once this is gone
    elif k == 0:
        out["start"] = now
    if k < len(STEPS):
        name, fn, keep = STEPS[k]
        k += 1
        pending = (name, now, keep)
        r = fn()
        if name == "whole Hub (%d bots)" % n:
            held["hub"] = r
        else:
            held[name] = r
        gc.collect()
        return True
    out["code: firmware modules"] = sum(code.values())
    out["total after boot"] = now
    out["free"] = gc.mem_free()
    out["modules"] = code
    out["vm"] = sys.platform
    print(json.dumps(out))
    return False


gc.collect()                    # on the WebAssembly port: once this run returns
if sys.platform != "webassembly":
    while wasm_step():
        gc.collect()
