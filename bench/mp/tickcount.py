"""Instructions per hub tick, counted by valgrind (callgrind) on the unix VM.

    python bench/mp/tickcount.py BOTS [TICKS]        (CPython: runs the VM under valgrind)

The VM side (this file run by MicroPython) builds the steady treatment of
``bench/mp/tickbench.py`` (every bot treating over four sites, telemetry at
its highest rates), then runs TICKS ticks of the whole rig. Around each
``hub.tick`` it calls ``gc.isenabled()``, a C function nothing else in the
tick calls; callgrind's ``--dump-before=gc_isenabled`` then writes one
profile part per call, so every other part holds exactly one tick (plus the
marker call itself, a few hundred instructions). The CPython side reads
those parts and prints one JSON line: mean, p99 and largest instruction
count per tick. The unix VM's x86 count is close to a Cortex-M0's (M3/M4
about 0.75 x), so these figures budget the tick on a board.
"""
import gc
import sys

SITES = (10, 11, 12, 13)


def steady(n):
    import struct
    from hub import wire
    from hubkit import Rig
    rig = Rig(bots=n)
    rig.keep_bus_log = False
    per = n // len(SITES)
    plan = []
    for k, site in enumerate(SITES):
        count = per + (1 if k < n - per * len(SITES) else 0)
        rig.lesion(site, 3000)
        plan.append((site, count))
    rig.udu_per_um = 1000000
    rig.treating(tuple(plan), target=100, session_cap=2000000, site_cap=200000, rate_cap=500)
    ack = rig.cmd(wire.M_TELEM_RATE, struct.pack(wire.TELEM_RATE_FMT, 10, 25, 10))
    if ack is None or ack[0] == wire.ACKS_REJECTED:
        raise AssertionError("TELEM_RATE refused: %r" % (ack,))
    rig.run(3000)
    if rig.state() != wire.HUB_TREATING:
        raise AssertionError("not treating after warm-up: state %d" % rig.state())
    return rig


STAGES = (("hub", "poll"), ("control", "account"), ("control", "run"), ("safety", "run"),
          ("safety", "conditions"), ("control", "limit"), ("commands", "bus_send"),
          ("hub", "estop_progress"), ("telemetry", "run"), ("hub", "_log_rx_bad"))


def vm_main(n, ticks, staged):
    rig = steady(n)
    hub = rig.hub
    mark = gc.isenabled
    names = ["rig", "tick"]
    # one code per marker call, preallocated: nothing allocates inside a tick
    labels = bytearray(ticks * (2 + 2 * len(STAGES) * 2) + 16)
    at = [0]

    def put(code):
        labels[at[0]] = code
        at[0] += 1

    def tick(now):
        gc.collect()                      # the rig's garbage: never collected inside a tick
        mark()
        put(0)
        hub.tick(now)
        mark()
        put(1)
    if staged:
        def wrap(code, fn):
            def call(*a):
                mark()
                put(1)
                r = fn(*a)
                mark()
                put(code)
                return r
            return call
        for mod, name in STAGES:
            names.append(mod + "." + name)
            code = len(names) - 1
            if mod == "hub":
                if hasattr(hub, name):
                    setattr(hub, name, wrap(code, getattr(hub, name)))
                continue
            m = __import__("hub." + mod, None, None, (name,))
            if hasattr(m, name):
                setattr(m, name, wrap(code, getattr(m, name)))
    rig._tick = tick
    for _ in range(ticks):
        rig.step()
    print("done", rig.state())
    print("labels", " ".join(names[labels[k]] for k in range(at[0])))


def host_main(argv):
    import json
    import os
    import subprocess
    import tempfile
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    staged = "--stages" in argv
    argv = [a for a in argv if a != "--stages"]
    n = int(argv[1])
    ticks = int(argv[2]) if len(argv) > 2 else 250
    from nanohub.host import vm
    args = [Path(__file__).resolve(), str(n), str(ticks)] + (["stages"] if staged else [])
    argv_vm, env = vm.vm_command(args, heap="16m",
                                 path=(root / "firmware", root / "tests" / "mp", root / "sim"))
    env["NANOHUB_ROOT"] = str(root)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", "--dump-before=gc_isenabled",
               "--callgrind-out-file=" + out, "--dump-instr=no", "--compress-strings=no"] + \
            [str(a) for a in argv_vm]
        p = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
        if p.returncode != 0 or "done" not in p.stdout:
            sys.exit("valgrind run failed:\n" + p.stdout[-2000:] + p.stderr[-4000:])
        parts = []
        for f in os.listdir(tmp):
            if f.startswith("cg.out."):
                k = int(f.rsplit(".", 1)[1])
                with open(os.path.join(tmp, f)) as fh:
                    for line in fh:
                        if line.startswith("summary:") or line.startswith("totals:"):
                            parts.append((k, int(line.split()[1])))
                            break
    parts.sort()
    labels = p.stdout.split("labels", 1)[1].split()
    # part k ran before marker call k; labels[k - 1] names it (part 1: set-up)
    per = [0] * ticks
    stages = {}
    t = -1
    for k, c in parts:
        if k < 1 or k - 1 >= len(labels):
            continue
        lab = labels[k - 1]
        if lab == "rig":
            t += 1
            continue
        if 0 <= t < ticks:
            per[t] += c
            stages[lab] = stages.get(lab, 0) + c
    per.sort()
    out = {
        "bots": n, "ticks": len(per),
        "mean": sum(per) // len(per), "median": per[len(per) // 2],
        "p99": per[min(len(per) - 1, (len(per) * 99 + 99) // 100 - 1)], "max": per[-1],
    }
    if staged:
        out["stages"] = {k: v // ticks for k, v in sorted(stages.items())}
    print(json.dumps(out))


if sys.implementation.name == "micropython":
    vm_main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 250,
            len(sys.argv) > 3 and sys.argv[3] == "stages")
elif __name__ == "__main__":
    host_main(sys.argv)
