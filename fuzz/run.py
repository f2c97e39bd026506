"""``make fuzz``: long fuzzing runs, then the figures.

    python fuzz/run.py [--seconds 60] [--vm-seconds 60] [--targets rx,codec,dispatch,vm]

Each atheris target runs for ``--seconds`` on the corpus kept in
``fuzz/corpus/<target>/``; new inputs go to a scratch folder first and only
those that add coverage are merged back into the repo's corpus (libFuzzer
``-merge=1``), so it grows slowly and stays small. A crash or a violated
property is saved as ``fuzz/crashes/<target>-crash-*`` with a line to replay
it. Then the random stream runs into the emulated hub on the MicroPython VM
for ``--vm-seconds``. Exit status 1 if anything was found.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CRASHES = HERE / "crashes"
TARGETS = ("rx", "codec", "dispatch")
MAX_CORPUS = 250        # beyond this, the corpus is minimized (make test replays all of it)


def _minimize(harness, corpus, scratch, env):
    """Keep a smallest set of inputs with the same coverage (libFuzzer merge into an
    empty folder), so the replay in ``make test`` stays fast."""
    small = scratch / "min"
    small.mkdir()
    proc = subprocess.run([harness, "-merge=1", str(small), str(corpus)], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    kept = list(small.iterdir())
    if proc.returncode == 0 and kept:
        for p in corpus.iterdir():
            p.unlink()
        for p in kept:
            shutil.move(str(p), corpus / p.name)


def _stat(text, name):
    m = re.search(r"stat::%s:\s*(\d+)" % name, text)
    return int(m.group(1)) if m else None


def fuzz_target(target, seconds, jobs=1):
    corpus = HERE / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    CRASHES.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="nanohub-fuzz-%s-" % target))
    stats = scratch / "stats.json"
    before = len(list(corpus.iterdir()))
    # libFuzzer's merge re-runs argv[0]: the harness, via its shebang, must find
    # this Python (the venv's, with atheris) first on PATH
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    env = dict(os.environ, NANOHUB_FUZZ_STATS=str(stats), PATH=path)
    harness = str(HERE / ("fuzz_%s.py" % target))
    argv = [harness, str(scratch / "new"), str(corpus),
            "-max_total_time=%d" % seconds, "-timeout=20", "-rss_limit_mb=3072",
            "-print_final_stats=1", "-artifact_prefix=%s/%s-" % (CRASHES, target)]
    (scratch / "new").mkdir()
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
    took = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    crashed = proc.returncode != 0
    try:
        figures = json.loads(stats.read_text())
    except (OSError, ValueError):
        figures = {}
    env.pop("NANOHUB_FUZZ_STATS")
    merged = subprocess.run([harness, "-merge=1", str(corpus), str(scratch / "new")],
                            env=env, capture_output=True, text=True, cwd=ROOT)
    if len(list(corpus.iterdir())) > MAX_CORPUS:
        _minimize(harness, corpus, scratch, env)
    after = len(list(corpus.iterdir()))
    row = {"target": target, "seconds": round(took), "runs": _stat(out, "number_of_executed_units"),
           "peak_rss_mb": _stat(out, "peak_rss_mb"), "corpus_before": before,
           "corpus_after": after, "violations": 1 if crashed else 0, **figures}
    if crashed:
        tail = "\n".join(l for l in out.splitlines() if "Uses:" not in l)[-4000:]
        row["crash"] = tail
    if merged.returncode != 0:
        row["merge_error"] = merged.stderr[-500:]
    shutil.rmtree(scratch, ignore_errors=True)
    return row


def vm_target(seconds, seed):
    sys.path.insert(0, str(ROOT))
    from fuzz import vm_stream
    home = tempfile.mkdtemp(prefix="nanohub-fuzz-home-")
    try:
        figures, violations = vm_stream.run_stream(seconds, seed, home=home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {"target": "vm-stream", "seed": seed, **figures, "violations": len(violations),
            "found": violations[:10]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 60)))
    ap.add_argument("--vm-seconds", type=int, default=int(os.environ.get("FUZZ_VM_SECONDS", 60)))
    ap.add_argument("--targets", default="rx,codec,dispatch,vm")
    ap.add_argument("--seed", type=int, default=int(time.time()) & 0xFFFF)
    a = ap.parse_args(argv)
    targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    try:
        import atheris  # noqa: F401
    except ImportError:
        if any(t != "vm" for t in targets):     # the VM stream needs only the VM
            print("atheris is not installed: pip install -e '.[fuzz]' (make fuzz does it)")
            return 2
    rows = []
    for t in targets:
        print("fuzzing %s ..." % t, flush=True)
        row = vm_target(a.vm_seconds, a.seed) if t == "vm" else fuzz_target(t, a.seconds)
        rows.append(row)
        print("  " + json.dumps({k: v for k, v in row.items() if k not in ("crash", "found")}),
              flush=True)
        if row.get("crash"):
            print(row["crash"])
        for v in row.get("found", []):
            print("  VIOLATION:", v)
    print()
    print("%-10s %8s %10s %10s %10s %10s %8s %12s" % (
        "target", "seconds", "inputs", "frames", "commands", "rejected", "corpus", "violations"))
    for r in rows:
        print("%-10s %8s %10s %10s %10s %10s %8s %12s" % (
            r["target"], r.get("seconds"), r.get("runs") or r.get("inputs") or r.get("bursts"),
            r.get("frames", r.get("chunks", "-")), r.get("commands", "-"),
            r.get("rejected", "-"),
            "%s->%s" % (r["corpus_before"], r["corpus_after"]) if "corpus_after" in r else "-",
            r["violations"]))
    vm = [r for r in rows if r["target"] == "vm-stream"]
    if vm:
        print("hub VM memory (VmRSS of the MicroPython process): %s kB at start, %s kB at end"
              % (vm[0].get("rss_kb_start"), vm[0].get("rss_kb_end")))
    bad = sum(r["violations"] for r in rows)
    print("invariant violations: %d (goal 0)" % bad)
    if bad:
        print("replay a saved input: python fuzz/fuzz_<target>.py fuzz/crashes/<file>")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
