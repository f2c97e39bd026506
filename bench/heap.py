"""Row 8: the smallest heap (``-X heapsize``) on which the hub, loaded from
compiled ``.mpy`` files, runs a whole session with 64 bots.

A probe starts the emulated hub (real swarm gateway, 64 bots) on the VM with
the given heap and plays ``bench.scenario.full_session`` through the host
library: consent, deploy 9 bots to three lesions, arm, treat for 3 s with
telemetry at its highest rates, read status, bots, sites and every
parameter, stop, recall, emergency stop confirmed bot by bot, pull and verify
the audit log. It passes when all of that worked, the hub still runs and its
output holds no MemoryError. Bisection over whole KiB steps.
"""
import tempfile
import time

from nanohub.host.client import Hub

from .emu import BenchHub, compile_firmware, isolated_home
from .report import Row

GOAL_KB, STRETCH_KB = 96, 64
STEP_KB = 4


def probe(kb, mpy_dir, bots=64):
    """(passed, why) for one heap size."""
    emu = BenchHub(bots=bots, scenario="nominal", seed=1, heap="%dk" % kb, mpy_dir=mpy_dir,
                   tap=False, start_timeout=10.0)
    why = ""
    try:
        emu.start()
        with Hub.open(emu.url, key=emu.key_path.read_bytes(), timeout=2.0, retries=3) as hub:
            from .scenario import full_session
            full_session(hub)
        problem = emu.alive()
        if problem:
            why = problem
    except Exception as e:          # noqa: BLE001 - any failure fails the probe
        why = "%s: %s" % (type(e).__name__, str(e)[:300])
    finally:
        log = emu.hub_log() if emu.store else ""
        emu.close()
    if "MemoryError" in log:
        why = why or "MemoryError in the hub's output"
        why += " [MemoryError]"
    return not why, why


def heap_info(mpy_dir, bots=64):
    """bench/mp/heapinfo.py on the compiled firmware: what the heap holds after boot."""
    from .firmware import run_mp
    from .report import ROOT
    try:
        return run_mp("heapinfo.py", [bots], heap="1m", path=[mpy_dir, ROOT / "bench" / "mp"])
    except Exception as e:          # noqa: BLE001 - the row still has its figure
        return {"error": str(e)}


def _breakdown(info):
    if "error" in info or not info:
        return "(heap breakdown unavailable: %s)" % info.get("error")
    code = info["code: firmware modules"]
    total = info["total after boot"] - info.get("start", 0)
    mods = sorted(info.get("modules", {}).items(), key=lambda kv: -kv[1])[:5]
    return ("after boot with 64 bots the firmware holds %.1f KB of heap, of which %.1f KB is the "
            "firmware's bytecode and module globals loaded from .mpy (largest: %s) and "
            "%.1f KB the hub's own objects (a Hub with 64 bots %.1f KB: swarm tables %.1f KB, "
            "each frame buffer ~%.1f KB)" % (
                total / 1024.0, code / 1024.0,
                ", ".join("%s %.1f KB" % (k, v / 1024.0) for k, v in mods),
                (total - code) / 1024.0, info["whole Hub (64 bots)"] / 1024.0,
                info["swarm tables (64 bots)"] / 1024.0, info["one frame Rx"] / 1024.0))


def run(quick=False):
    with isolated_home(), tempfile.TemporaryDirectory(prefix="nanohub-mpy-") as tmp:
        mpy_dir, mpy_bytes = compile_firmware(tmp)
        tried = {}

        def check(kb):
            ok, why = probe(kb, mpy_dir)
            if not ok and "MemoryError" not in why:
                time.sleep(0.5)             # not memory: give it one more chance
                ok, why = probe(kb, mpy_dir)
            tried[kb] = (ok, why)
            return ok
        hi, lo = 256, 16
        if quick:
            ok = check(GOAL_KB)
            best = GOAL_KB if ok else None
            info = {}
        else:
            if not check(hi):
                return [Row.failed("8", "smallest heap for a full session", "<= %d KB" % GOAL_KB,
                                   "the hub fails even with %d KB: %s" % (hi, tried[hi][1]))], tried
            if check(lo):
                hi = lo
            while hi - lo > STEP_KB:
                mid = (lo + hi) // 2 // STEP_KB * STEP_KB or lo + STEP_KB
                if mid <= lo or mid >= hi:
                    break
                if check(mid):
                    hi = mid
                else:
                    lo = mid
            best = hi
        info = heap_info(mpy_dir)
    fails = sorted(kb for kb, (ok, _) in tried.items() if not ok)
    fail_why = tried[max(fails)][1] if fails else ""
    probes = ", ".join("%d KB %s" % (kb, "ok" if tried[kb][0] else "fails")
                       for kb in sorted(tried))
    if best is None:
        fig = "more than %d KB (quick run: only %d KB probed)" % (GOAL_KB, GOAL_KB)
        ok = False
    else:
        fig = "%d KB (%s)" % (best, probes)
        if best <= STRETCH_KB:
            fig += ", stretch met"
        ok = best <= GOAL_KB
    how = ("firmware/ compiled with mpy-cross (%.1f KB of .mpy; main.py stays source), the "
           "emulated hub started from it with `micropython -X heapsize=N` for each probe "
           "(64 bots, the swarm gateway, nominal scenario) and a whole session played through "
           "the host library (`bench/scenario.py`: consent, deploy 9 bots, arm, treat 3 s with "
           "telemetry at its highest rates, status, bots, sites, every parameter, stop, recall, "
           "emergency stop confirmed, audit log pulled and verified). Pass = all of it worked, "
           "the hub still runs, no MemoryError in its output. Bisection between 16 and 256 KB "
           "to %d KB; a probe that fails without a MemoryError is run again once. On the unix "
           "port the loaded bytecode lives in the heap; a board with the firmware frozen into "
           "flash needs less." % (mpy_bytes / 1024.0, STEP_KB))
    why = ""
    if not ok:
        why = ("the largest failing probe said: %s. Profile (`bench/mp/heapinfo.py`): %s. "
               "What would reach %d KB: freeze the firmware into the board image (frozen "
               "bytecode and its constant tables run from flash, as MicroPython boards ship "
               "their libraries), which leaves the hub's objects and the transient buffers of a "
               "session in the heap; on the unix port, which cannot load frozen code without a "
               "custom build, only smaller modules (fewer globals and functions in the largest "
               "ones above) would." % (fail_why, _breakdown(info), GOAL_KB))
    return [Row("8", "smallest heap for a full session (64 bots, .mpy)", fig,
                "<= %d KB (stretch %d KB)" % (GOAL_KB, STRETCH_KB), ok, how=how, why=why,
                data={"tried": tried})], {"tried": tried, "best": best, "mpy_bytes": mpy_bytes,
                                          "info": info}
