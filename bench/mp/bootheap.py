"""On the MicroPython VM: the heap after boot, as a board boots.

Prints the interned-name pool (``micropython.qstr_info()``'s line), then one
JSON line.

    node tests/wasm/run.mjs --board DIR bench/mp/bootheap.py BOTS   (32-bit VM)

``heapinfo.py`` takes the heap apart step by step, and its own names and
tables sit in the VM's interned-name pool before the firmware's; this script
does no more than a board's ``main.py``: import the hub, build it on the null
board (in-RAM store) and boot it, then read the interned-name pool (every
name the code loaded brought). One step per ``wasm_step`` call: on the
WebAssembly port a collection only happens once control is back in JavaScript.
"""
import gc
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
k = 0
a0 = 0
h = None


def wasm_step():
    global k, a0, h
    k += 1
    if k == 1:
        a0 = gc.mem_alloc()
    elif k == 2:
        from boards.null import Board, MemStore
        from hub.core import Hub
        s = MemStore()
        s.write_atomic("hub.key", bytes(32))
        h = Hub(Board(s), n, 1)
        h.boot(0)
    else:
        got = gc.mem_alloc() - a0
        import micropython      # its line first ("qstr pool: n_pool=..."), then ours
        micropython.qstr_info()
        print('{"after boot": %d}' % got)
        return False
    gc.collect()
    return True


gc.collect()
if sys.platform != "webassembly":
    while wasm_step():
        pass
