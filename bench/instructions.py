"""Rows 11 and 12: the hub's tick counted in instructions, and the longest
stretch inside a tick in which an ESTOP waits for the host link to be read.

``bench/mp/tickcount.py`` runs the steady treatment of ``tickbench.py`` on the
unix VM under ``valgrind --tool=callgrind``: each ``hub.tick`` runs inside
``filter()``, the only caller of the C function ``filter_iternext``, so
``--toggle-collect`` counts the tick alone and ``--dump-after`` writes one
profile per tick; each host-link poll calls ``hash()`` first and
``--dump-before=mp_builtin_hash`` splits the tick there. A tick's count is the
sum of its pieces; the longest piece is the longest an ESTOP that arrives just
after a read waits inside a tick. Per-tick counts give the mean and p99 directly.

x86 instructions of the unix VM are the budget's unit: measured on emulated
Cortex-M, an M0 (RP2040) runs about 1.0x as many, an M3/M4 (STM32F4) 0.75x.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from nanohub.host import vm

from .firmware import mp_path
from .report import ROOT, Row

SIZES = (16, 64, 255)
SKIP = 5                        # first ticks dropped: first calls, caches warming
CPI = 1.5
CHIPS = (("RP2040", 1.0, 125e6), ("STM32F4", 0.75, 168e6))
GOAL_MEAN, STRETCH_MEAN, GOAL_P99, GOAL_255, GOAL_ESTOP = 0.8e6, 0.42e6, 1.6e6, 1.6e6, 0.25e6


def _vm_argv():
    """The VM under valgrind: the real interpreter, not a shell script around it."""
    exe = vm.find_micropython()
    with open(exe, "rb") as f:
        head = f.read(2)
    if head == b"#!":               # the wheel's console script: run it with its Python
        return [sys.executable, exe]
    return [exe]


def count(bots, ticks, path=None, timeout=3600, rig_io=False):
    """Per-tick instruction counts and per-piece counts (between host polls).

    ``rig_io`` keeps the null board's byte-by-byte link copies in the count
    (by default they copy in C, as a board's UART does: see tickcount.py)."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="nanohub-cg-") as tmp:
        out = os.path.join(tmp, "cg.out")
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                "--toggle-collect=filter_iternext", "--dump-after=filter_iternext",
                "--dump-before=mp_builtin_hash", "--dump-instr=no", "--dump-line=no",
                *_vm_argv(), "-X", "heapsize=4m",
                str(ROOT / "bench" / "mp" / "tickcount.py"), str(bots), str(ticks + SKIP)] + (["--rig-io"] if rig_io else [])
        env = dict(os.environ, MICROPYPATH=os.pathsep.join(
            [str(p) for p in (path or mp_path())] + [".frozen"]), NANOHUB_ROOT=str(ROOT))
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0 or '"state": 2' not in proc.stdout:
            raise RuntimeError("tickcount.py %d under callgrind failed (%s): %s" % (
                bots, proc.returncode, (proc.stderr or proc.stdout)[-1500:]))
        dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        ticks_pieces, cur = [], []
        for p in dumps:
            trigger, ir = "", 0
            with open(p) as f:
                for line in f:
                    if line.startswith("desc: Trigger:"):
                        trigger = line
                    elif line.startswith("summary:"):
                        ir = int(line.split()[1])
                        break
            cur.append(ir)
            if "filter_iternext" in trigger:        # the end of a tick
                ticks_pieces.append(cur)
                cur = []
    return ticks_pieces[SKIP:]


def pct(vals, q):
    s = sorted(vals)
    return s[min(len(s) - 1, max(0, int(len(s) * q + 0.999999) - 1))]


def ms(ir, factor, hz):
    return ir * factor * CPI / hz * 1000.0


def chips(ir):
    return ", ".join("%s %.1f ms" % (name, ms(ir, f, hz)) for name, f, hz in CHIPS)


def summary(ticks_pieces):
    per_tick = [sum(p) for p in ticks_pieces]
    return {"ticks": len(per_tick), "mean": sum(per_tick) / float(len(per_tick)),
            "median": pct(per_tick, 0.5), "p99": pct(per_tick, 0.99), "max": max(per_tick), "min": min(per_tick),
            "wait": max(max(p) for p in ticks_pieces),
            "polls_per_tick": sum(len(p) - 1 for p in ticks_pieces) / float(len(per_tick))}


def run(quick=False):
    ticks = 25 if quick else 200
    sizes = (16, 64) if quick else SIZES
    res = {n: summary(count(n, ticks)) for n in sizes}
    r64 = res[64]
    how = ("`bench/mp/tickcount.py` on the unix VM under `valgrind --tool=callgrind`: the steady "
           "treatment of `bench/mp/tickbench.py` (every bot treating over four sites, telemetry at "
           "the hub's highest rates), %d ticks counted one by one after %d dropped (callgrind "
           "toggled on `hub.tick` alone and dumped after each; see the module's docstring). x86 "
           "instructions of the VM ~= Cortex-M0 instructions, M3/M4 0.75x (measured on emulated "
           "Cortex-M); milliseconds at CPI %.1f: RP2040 125 MHz, STM32F4 168 MHz. p99 is the "
           "value below which 99 %% of the %d ticks fall. The null board's link calls copy in C "
           "(slices) as a board's UART does, not byte by byte in bytecode as in the memory "
           "tests: the count is the firmware's (`tickcount.py --rig-io` keeps the byte loops); "
           "the rig's own garbage is collected before each tick, outside the count, and "
           "collection is off inside it (the firmware's tick allocates nothing). "
           "Viper loops run (the VM has a native emitter, as boards flashed with their `arch` "
           "do)." % (ticks, SKIP, CPI, ticks))
    per = "; ".join("%d bots: mean %.2f M, median %.2f M, p99 %.2f M, max %.2f M" % (
        n, res[n]["mean"] / 1e6, res[n]["median"] / 1e6, res[n]["p99"] / 1e6,
        res[n]["max"] / 1e6) for n in sizes)
    why_mean = ("%s. One tick in five reads every bot's report (10 Hz), and that tick is "
                "most of the mean: the report's fields and its state and dose bookkeeping run "
                "in viper (`hub.viperbytes.book`), the frame's decoding and the "
                "host-link reads between reports remain." % per)
    rows = [
        Row("11", "instructions per tick, 64 bots (mean)",
            "%.2f M, median %.2f M (mean: %s)" % (r64["mean"] / 1e6, r64["median"] / 1e6,
                                                 chips(r64["mean"])),
            "<= 0.8 M (stretch <= 0.42 M)", r64["mean"] <= GOAL_MEAN, how=how,
            why="" if r64["mean"] <= GOAL_MEAN else why_mean, data=res),
        Row("11b", "instructions per tick, 64 bots (p99)",
            "%.2f M (%s)" % (r64["p99"] / 1e6, chips(r64["p99"])),
            "<= 1.6 M", r64["p99"] <= GOAL_P99, how="row 11's runs.",
            why="" if r64["p99"] <= GOAL_P99 else "the tick that reads every bot's report "
            "(one in five) is the p99 (see row 11). The host link is read every 16 reports, "
            "so it delays no stop (row 12). What would reach it: the reports of a frame "
            "spread over the ticks until the next frame (100 ms): %s." % per),
        Row("11d", "instructions per tick, 16 bots (mean, p99)",
            "%.2f M, %.2f M (mean: %s)" % (res[16]["mean"] / 1e6, res[16]["p99"] / 1e6,
                                          chips(res[16]["mean"])),
            "report", None, how="row 11's method."),
    ]
    if 255 in res:
        r = res[255]
        rows.append(Row("11c", "instructions per tick, 255 bots (mean)",
                        "%.2f M, p99 %.2f M (%s)" % (r["mean"] / 1e6, r["p99"] / 1e6,
                                                    chips(r["mean"])),
                        "<= 1.6 M", r["mean"] <= GOAL_255, how="row 11's method.",
                        why="" if r["mean"] <= GOAL_255 else "the report tick grows with "
                        "the swarm, and so do the per-bot passes that still run on a timer "
                        "(`commands.bus_send`'s look at every bot when renewals fall due, "
                        "the silent-bot sweep): %s." % per))
    wait = max(res[n]["wait"] for n in sizes)
    others = ", ".join("%.2f M at %d bots" % (res[n]["wait"] / 1e6, n) for n in sizes if n != 64)
    rows.append(Row("12", "worst ESTOP wait inside a tick (instructions)",
                    "%.2f M at 64 bots (%s; %.1f host reads per tick); %s" % (
                        r64["wait"] / 1e6, chips(r64["wait"]), r64["polls_per_tick"], others),
                    "<= 0.25 M at 64 bots", r64["wait"] <= GOAL_ESTOP,
                    how="row 11's runs: the longest stretch of a tick between two reads of the "
                        "host link (or the tick's start or end), over all ticks of a size "
                        "(largest of all sizes: %.2f M)." % (wait / 1e6),
                    why="" if r64["wait"] <= GOAL_ESTOP else "the host link is read between "
                    "the tick's stages and inside the long ones (every 16 reports, 8 bots of "
                    "`bus_send`, 16 bots of the sweep); a stretch longer than the goal is left "
                    "at 64 bots."))
    return rows, res
