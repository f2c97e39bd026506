"""Run every benchmark, print one table, write docs/benchmarks.md.

    python -m bench                  # everything (make bench)
    python -m bench --quick          # tiny sizes, a smoke run (writes nothing by default)
    python -m bench --only 1,2,5     # some rows
    python -m bench --out FILE       # write the Markdown elsewhere ('-' for none)
    python -m bench --only 5,11 --update   # bring those rows of docs/benchmarks.md up
                                           # to date, keeping the others
"""
import argparse
import sys
import time
import traceback
from typing import NamedTuple

from . import report
from .report import ROOT, Row


class Bench(NamedTuple):
    rows: tuple         # the rows of the table it fills
    module: str         # bench.MODULE, whose run(quick) fills them
    what: str
    goal: str           # what its rows must reach, shown for a bench that failed


# In the order they run: the CPU-bound microbenchmarks first, while the
# machine is quiet; the study last.
BENCHES = (
    Bench(("1",), "codec", "host codec vs pymavlink", ">= 5x pymavlink"),
    Bench(("2",), "bulk", "bulk decode with numpy", ">= 100x pymavlink"),
    Bench(("3", "4"), "wire", "wire efficiency and capacity", "see rows"),
    Bench(("6", "7"), "firmware", "firmware tick on the VM", "<= 1 % of tick; 0 B"),
    Bench(("11", "12"), "instructions", "tick instructions under callgrind", "<= 0.8 M mean"),
    Bench(("13", "14", "15"), "vm32", "the 32-bit VM: allocation and heap",
          "0 B/tick; <= 64 KB"),
    Bench(("5",), "estop", "emergency-stop latency (also 3f, 4b)", "p99 <= 25 ms"),
    Bench(("9",), "logpull", "audit-log transfer", ">= 80 % of line rate"),
    Bench(("8",), "heap", "smallest heap", "<= 96 KB"),
    Bench(("10",), "study", "study throughput", ">= 10 sessions/min"),
    Bench(("16",), "fleet", "fleet emergency stop (8 hubs)", "report"),
    Bench(("17",), "study_cluster", "study throughput on a Dask LocalCluster", "report"),
)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--only", help="comma-separated row numbers (1..17)")
    ap.add_argument("--out", help="Markdown output (default docs/benchmarks.md; '-' for none; "
                                  "--quick and --only write nothing unless given)")
    ap.add_argument("--update", action="store_true",
                    help="with --only: merge the rows run into docs/benchmarks.md (or --out), "
                         "keeping the other rows and sections of the previous run")
    args = ap.parse_args(argv)
    if args.update and not args.only:
        ap.error("--update needs --only (a whole run rewrites the document anyway)")
    only = set(args.only.split(",")) if args.only else None
    out = args.out
    if out is None:
        out = "-" if ((args.quick or only) and not args.update) \
            else str(ROOT / "docs" / "benchmarks.md")
    t0 = time.monotonic()
    rows, data = [], {}
    for nums, module, what, goal in BENCHES:
        if only and not only & set(nums):
            continue
        report.stderr("bench: %s (row %s) ..." % (what, ",".join(nums)))
        t = time.monotonic()
        try:
            mod = __import__("bench." + module, fromlist=["run"])
            got, detail = mod.run(quick=args.quick)
            rows.extend(got)
            data[module] = detail
        except Exception as e:      # noqa: BLE001 - one broken bench must not hide the rest
            report.stderr(traceback.format_exc())
            rows.append(Row.failed(nums[0], what, goal, "%s: %s" % (type(e).__name__, e)))
        report.stderr("bench: %s done in %.0f s" % (what, time.monotonic() - t))
    rows.sort(key=report.sort_key)
    elapsed = time.monotonic() - t0
    print()
    print(report.text_table(rows))
    print("\n%d rows: %d pass, %d fall short, %d report, %d errors; %.0f s" % (
        len(rows), *(sum(1 for r in rows if r.status == s)
                     for s in (report.PASS, report.SHORT, report.REPORT, report.ERROR)),
        elapsed))
    if out != "-":
        from .sections import sections
        info = report.machine()
        argv_shown = ["python -m bench"] + (sys.argv[1:] if argv is None else list(argv))
        text = report.markdown(rows, info, sections(data), elapsed, argv_shown)
        if args.update:
            groups = set()
            for bench in BENCHES:
                if only & set(bench.rows):
                    groups.update(bench.rows)
            try:
                with open(out) as f:
                    text = report.merged(f.read(), text, groups)
            except FileNotFoundError:
                pass
        with open(out, "w") as f:
            f.write(text)
        print("wrote %s" % out)
    return 1 if any(r.status == report.ERROR for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
