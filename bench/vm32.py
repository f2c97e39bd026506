"""Rows 13-15: the firmware on a 32-bit MicroPython (the WebAssembly port under
Node, see ``bench/wasm.py``): what a steady tick allocates, the heap after boot.

A 32-bit port boxes every int of 2**30 or more (a CRC-32, a hash word): the
64-bit unix VM cannot show that cost, this VM does.
"""
import tempfile

from . import wasm
from .emu import compile_firmware
from .report import ROOT, Row

GOAL_HEAP_KB, GOAL_OBJECTS_KB = 64, 12


def _tick(bots, ticks):
    return wasm.run_json(ROOT / "tests" / "wasm" / "tick.py", [bots, ticks],
                         path=[ROOT / "firmware", ROOT / "bench" / "mp", ROOT / "tests" / "mp",
                               ROOT / "sim"], timeout=1800)


def _heap(code_dir, bots=64):
    return wasm.run_json(ROOT / "bench" / "mp" / "heapinfo.py", [bots],
                         path=[code_dir, ROOT / "bench" / "mp"], heap="1m")


def _kb(b):
    return b / 1024.0


def heap_figures(info, bots=64):
    total = info["total after boot"] - info.get("start", 0)
    code = info["code: firmware modules"]
    return {"total": total, "code": code, "objects": total - code,
            "hub": info["whole Hub (%d bots)" % bots] + info.get("boot", 0)}


def run(quick=False):
    missing = wasm.missing()
    if missing:
        raise RuntimeError(missing)
    ticks = 50 if quick else 250
    res = {n: _tick(n, ticks) for n in (16, 64)}
    alloc = {n: res[n]["alloc_bytes"] for n in res}
    ok = all(v == 0 for v in alloc.values()) and all(r["state_end"] == 2 for r in res.values())
    rows = [Row("13", "bytes allocated per tick, 32-bit VM",
                ", ".join("%.1f B/tick at %d bots" % (alloc[n] / float(ticks), n) for n in res),
                "0 at 16 and 64 bots", ok,
                how="`tests/wasm/tick.py` on MicroPython %s (WebAssembly port, 32-bit: 31-bit "
                    "small ints) under Node: the steady treatment of `bench/mp/tickbench.py`, %d "
                    "ticks in chunks of 25 handed back to JavaScript (this port collects only "
                    "then); gc.mem_alloc() before and after each `hub.tick` with the collector "
                    "off. The frame layer (`Rx.feed`, `Tx.finish`) measured the same way: %s."
                    % (wasm.VERSION, ticks, ", ".join(
                        "%d bots %r" % (n, res[n]["frame_alloc"]) for n in res)),
                why="" if ok else "some tick allocated: %r" % alloc, data=res)]
    src = _heap(ROOT / "firmware")
    with tempfile.TemporaryDirectory(prefix="nanohub-mpy32-") as tmp:
        mpy_dir, _ = compile_firmware(tmp)
        mpy = _heap(mpy_dir)
    fs, fm = heap_figures(src), heap_figures(mpy)
    ok = _kb(fs["total"]) <= GOAL_HEAP_KB and _kb(fs["hub"]) <= GOAL_OBJECTS_KB
    mods = sorted(src["modules"].items(), key=lambda kv: -kv[1])[:5]
    rows.append(Row("14", "heap after boot, 64 bots, 32-bit VM",
                    "%.1f KB from source (%.1f KB code, Hub %.1f KB); %.1f KB from .mpy "
                    "(%.1f KB code, Hub %.1f KB)" % (
                        _kb(fs["total"]), _kb(fs["code"]), _kb(fs["hub"]), _kb(fm["total"]),
                        _kb(fm["code"]), _kb(fm["hub"])),
                    "<= %d KB; hub objects <= %d KB" % (GOAL_HEAP_KB, GOAL_OBJECTS_KB), ok,
                    how="`bench/mp/heapinfo.py` on the 32-bit VM: gc.mem_alloc() on a collected "
                        "heap before and after each step, one step per return to JavaScript: "
                        "each firmware module's import, each of the Hub's parts built alone and "
                        "let go, then the Hub (null board) and its boot. Code from source (as "
                        "the goal states) and from `.mpy` (mpy-cross; the viper module is left "
                        "out, this port has no native emitter).",
                    why="" if ok else "the code is most of it: largest modules from source %s. "
                    "Frozen into a board's flash, code leaves the heap." % ", ".join(
                        "%s %.1f KB" % (k, _kb(v)) for k, v in mods),
                    data={"source": src, "mpy": mpy}))
    return rows, {"ticks": res, "heap": {"source": src, "mpy": mpy}}
