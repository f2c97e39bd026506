"""Rows 13-15: the firmware on a 32-bit MicroPython (the WebAssembly port under
Node, see ``bench/wasm.py``): what a steady tick allocates, the heap after boot,
the heap a whole session needs.

A 32-bit port boxes every int of 2**30 or more (a CRC-32, a hash word): the
64-bit unix VM cannot show that cost, this VM does.
"""
import json
import re
import tempfile

from nanohub.firmware.hub import wire as W

from . import wasm
from .emu import compile_firmware
from .firmware import run_mp
from .report import ROOT, Row
from nanohub.host.simport import HEAP

GOAL_HEAP_KB, GOAL_OBJECTS_KB, GOAL_SESSION_KB = 64, 12, 32


def _tick(bots, ticks):
    return wasm.run_json(ROOT / "tests" / "wasm" / "tick.py", [bots, ticks],
                         path=[ROOT / "firmware", ROOT / "bench" / "mp", ROOT / "tests" / "mp",
                               ROOT / "sim"], timeout=1800)


def _heap(code_dir, bots=64):
    return wasm.run_json(ROOT / "bench" / "mp" / "heapinfo.py", [bots],
                         path=[ROOT / "bench" / "mp"], board=code_dir, heap="1m")


def _pooled(script, args, code_dir, heap="1m", files=(), timeout=600):
    """Run a script that prints ``micropython.qstr_info()`` and then its JSON line:
    that line, with the interned-name pool (``pools``, ``names``, ``names_bytes``)."""
    rc, out, err = wasm.run(script, args, [ROOT / "bench" / "mp"], heap, timeout, files, code_dir)
    got = re.search(r"n_pool=(\d+), n_qstr=(\d+), n_str_data_bytes=\d+, n_total_bytes=(\d+)", out)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if rc != 0 or not got or not lines:
        raise RuntimeError("%s on the 32-bit VM failed (%s): %s" % (
            script.name, rc, (err or out)[-1500:]))
    return dict(json.loads(lines[-1]), pools=int(got.group(1)), names=int(got.group(2)),
                names_bytes=int(got.group(3)))


def _boot(code_dir, bots=64):
    """``bench/mp/bootheap.py``: the heap after boot as a board boots, and its interned names."""
    return _pooled(ROOT / "bench" / "mp" / "bootheap.py", [bots], code_dir)


def _kb(b):
    return b / 1024.0


# heapinfo's figures that are a part of the Hub measured alone (how many it holds)
PARTS = (("swarm tables (64 bots)", "swarm tables", 1), ("plan", "plan", 1),
         ("one frame Rx", "frame receivers", 2), ("one frame Tx", "frame builder (both links)", 1),
         ("host output queue", "host output queue", 1), ("audit log", "audit log", 1),
         ("alarms", "alarms", 1), ("ACK cache", "ACK cache", 1), ("params", "params", 1),
         ("stop scan", "stop scan", 1))


def _parts(info, bots=64):
    """The Hub's parts, largest first, and the rest (its fields, the link read buffer...)."""
    hub = info["whole Hub (%d bots)" % bots] + info.get("boot", 0)
    got = [(info[k] * k_n, name, k_n) for k, name, k_n in PARTS if k in info]
    got.sort(key=lambda g: -g[0])
    rest = hub - sum(g[0] for g in got)
    return ", ".join("%s %.1f KB" % (name + (" x%d" % k_n if k_n > 1 else ""), _kb(b))
                     for b, name, k_n in got) + ", the rest %.1f KB (the Hub's own fields, " \
        "link read buffer, heartbeat copy, state, estop, patient, bus health, boot)" % _kb(rest)


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
    ok = all(v == 0 for v in alloc.values()) and all(r["state_end"] == W.HUB_TREATING for r in res.values())
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
    bsrc = _boot(ROOT / "firmware")
    with tempfile.TemporaryDirectory(prefix="nanohub-mpy32-") as tmp:
        mpy_dir, _ = compile_firmware(tmp + "/mpy")
        mpy = _heap(mpy_dir)
        bmpy = _boot(mpy_dir)
        session = tmp + "/session.txt"
        rec = run_mp("sessionrec.py", [session, 64], heap="8m")
        rep = _pooled(ROOT / "bench" / "mp" / "replay.py", [session, 64], mpy_dir,
                      heap=HEAP, files=[session], timeout=1800)
    fs, fm = heap_figures(src), heap_figures(mpy)
    ts, tm = bsrc["after boot"], bmpy["after boot"]
    cs, cm = ts - fs["objects"], tm - fm["objects"]     # the code, as a board boots
    ok = _kb(ts) <= GOAL_HEAP_KB and _kb(fs["hub"]) <= GOAL_OBJECTS_KB
    mods = sorted(src["modules"].items(), key=lambda kv: -kv[1])[:5]
    rows.append(Row("14", "heap after boot, 64 bots, 32-bit VM",
                    "%.1f KB from source, %.1f KB from .mpy (Hub %.1f KB; code %.1f and %.1f KB, "
                    "%d and %d interned names)" % (
                        _kb(ts), _kb(tm), _kb(fs["hub"]), _kb(cs), _kb(cm),
                        bsrc["names"], bmpy["names"]),
                    "<= %d KB; hub objects <= %d KB" % (GOAL_HEAP_KB, GOAL_OBJECTS_KB), ok,
                    how="the total: `bench/mp/bootheap.py` on the 32-bit VM does what a board's "
                        "`main.py` does (import the hub, build it on the null board with its "
                        "in-RAM store, boot) between two readings of gc.mem_alloc() on a "
                        "collected heap, then reads the interned-name pool: from source %d names "
                        "in %d pools (%.1f KB), from .mpy %d in %d (%.1f KB). The parts: "
                        "`bench/mp/heapinfo.py`, one step per return to JavaScript: each firmware "
                        "module's import, each of the Hub's parts built alone and let go, then "
                        "the null board (%.1f KB, the board's), the Hub on it and its boot (what "
                        "the boot writes into that store counts); its own names sit in the pool "
                        "before the firmware's, so its totals (%.1f and %.1f KB) run higher. "
                        "Hub: %s. Code from source (as the goal states) and from `.mpy` "
                        "(mpy-cross; the viper module is left out, this port has no native "
                        "emitter); the code is the total less the objects." % (
                            bsrc["names"], bsrc["pools"], _kb(bsrc["names_bytes"]),
                            bmpy["names"], bmpy["pools"], _kb(bmpy["names_bytes"]),
                            _kb(src.get("board", 0)), _kb(fs["total"]), _kb(fm["total"]),
                            _parts(src)),
                    why="" if ok else "%s%s" % (
                        "" if _kb(fs["hub"]) <= GOAL_OBJECTS_KB else
                        "the hub's objects: %s; " % _parts(src),
                        "" if _kb(ts) <= GOAL_HEAP_KB else
                        "the code is most of it: %.1f KB as the .mpy files `nanohub flash` "
                        "writes (constants and formats folded, `protocol/fold.py`), %.1f KB from "
                        "source (largest modules %s), against the %.1f KB the goal leaves it "
                        "beside the hub's objects. Frozen into a board's flash (or in a ROMFS "
                        "partition), code leaves the heap: row 15." % (
                            _kb(cm), _kb(cs), ", ".join(
                                "%s %.1f KB" % (k, _kb(v)) for k, v in mods),
                            GOAL_HEAP_KB - _kb(fm["objects"]))),
                    data={"source": src, "mpy": mpy, "boot": {"source": bsrc, "mpy": bmpy}}))
    code = cm            # the code as a board loads it (the replay's own names may add a pool)
    peak = rep["peak"]
    rep["estop"] = rep["state"] == W.HUB_ESTOP
    ok = rep["estop"] and rep["calls"] > 0 and _kb(peak - code) <= GOAL_SESSION_KB
    rows.append(Row("15", "heap a full 64-bot session needs, 32-bit VM (.mpy)",
                    "%.1f KB at its peak, %.1f KB of it loaded code: %.1f KB without the code "
                    "(what a board with the firmware frozen into flash keeps in its heap, module "
                    "dictionaries aside)" % (_kb(peak), _kb(code), _kb(peak - code)),
                    "<= %d KB with the firmware frozen" % GOAL_SESSION_KB, ok,
                    how="the session (`bench/mp/sessionrec.py`: rates at their highest, consent, "
                        "9 of 64 bots deployed to three lesions, arm, treat 3 s with a status "
                        "every 250 ms, bots, sites, every parameter, stop, recall, emergency "
                        "stop confirmed, the whole audit log read) recorded on the unix VM as "
                        "the bytes the hub read per call, then replayed (`bench/mp/replay.py`) "
                        "into the hub alone, loaded from .mpy on the 32-bit VM with its store on "
                        "files: %d calls, each in two returns to JavaScript (this port collects "
                        "only then; its heap grows on demand, so no size can be imposed): one "
                        "reads the call's recorded bytes, the next makes the call on the heap "
                        "collected since; gc.mem_alloc() at its end, less those bytes (what a "
                        "board's UART driver holds; measured as they are allocated), the "
                        "largest is the figure (fragmentation not counted; the replay's own "
                        "code and globals are, and its %d names of its own, which take the "
                        "interned-name pool to %d pools, %.1f KB, where a board's boot leaves "
                        "%d, %.1f KB). Live heap after boot %.1f KB, at most %.1f KB on "
                        "entry to a call; the largest call allocated %.1f KB (call %d). Ended in "
                        "ESTOP: %s." % (rep["calls"], rep["names"] - bmpy["names"], rep["pools"],
                                        _kb(rep["names_bytes"]), bmpy["pools"],
                                        _kb(bmpy["names_bytes"]), _kb(rep["after_boot"] - code),
                                        _kb(rep.get("live_max", 0) - code),
                                        _kb(rep.get("call_max", 0)),
                                        rep.get("call_max_at", 0),
                                        rep["estop"]),
                    why="" if ok else "the hub's objects and its largest call's transient "
                    "allocations exceed the goal; see row 14's parts.",
                    data={"replay": rep, "record": rec}))
    return rows, {"ticks": res, "heap": {"source": src, "mpy": mpy,
                                         "boot": {"source": bsrc, "mpy": bmpy}}, "session": rep}
