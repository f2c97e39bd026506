"""``nanohub demo`` and ``nanohub study``: whole sessions on the emulated hub."""
import json
import os

from .options import (DEFAULT_SCENARIO, FROM_SCENARIO, add_emulated_hub,
                      add_record_option)
from ..simport import HEAP


def setup_demo(p):
    p.description = ("Run the main job end to end on the emulated hub (firmware on the "
                     "MicroPython VM, simulated swarm): checks, arm, deploy, treat with live "
                     "telemetry, the presentation-night faults, containment, shutdown, audit "
                     "log pulled and verified, summary. About a minute.")
    p.epilog = "example: nanohub demo\n         nanohub demo --scenario runaway --seed 3 --json"
    add_emulated_hub(p, scenario=DEFAULT_SCENARIO, seed=FROM_SCENARIO, bots=FROM_SCENARIO,
                     heap=HEAP)
    p.add_argument("--out", metavar="DIR", help="where the recorded session and its report go "
                   "(default: a new nanohub-demo-YYYYmmdd-HHMMSS directory here)")
    add_record_option(p)


def run_demo(ctx, args):
    from ..study.demo import run
    from ..errors import UsageError
    from nanohub.sim.scenario import ScenarioError, load
    try:
        load(args.scenario)         # a bad scenario is refused before the output folder is made
        return run(args.scenario, seed=args.seed, bots=args.bots, heap=args.heap,
                   json_out=ctx.json, record=args.record, out=args.out)
    except ScenarioError as e:
        raise UsageError(str(e)) from None


def setup_study(p):
    p.description = ("Run N seeded sessions of the whole system (hub on the MicroPython VM + "
                     "simulator + scripted operator) in parallel and report outcome metrics "
                     "with 95 % confidence intervals.")
    p.epilog = "example: nanohub study --scenario presentation-night --runs 20 --seed 1"
    add_emulated_hub(p, help={"seed": "first seed; run i uses seed+i"}, scenario=DEFAULT_SCENARIO,
                     seed=1, bots=FROM_SCENARIO, heap=HEAP)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--workers", type=int, default=None,
                   help="sessions at once (default: 8 per core; sessions are mostly idle); "
                        "with --scheduler local, Dask worker processes (default 2)")
    p.add_argument("--scheduler", metavar="local|tcp://HOST:PORT", default=None,
                   help="run the sessions on a Dask cluster: 'local' starts one here, "
                        "tcp://HOST:PORT uses a running scheduler (docs/cluster.md); "
                        "default: a local process pool")
    p.add_argument("-o", "--output", help="also write every run's result as JSON lines here")
    p.add_argument("--record", metavar="DIR",
                   help="record every session into DIR/seed-N.db (SQLite; see nanohub report)")


def run_study(ctx, args):
    from ..errors import UsageError
    from ..study import print_table, run_study as study, summarize
    from nanohub.sim.scenario import ScenarioError, load
    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    if args.scheduler and args.scheduler != "local" and "://" not in args.scheduler:
        raise UsageError("--scheduler takes 'local' or tcp://HOST:PORT, not %r" % args.scheduler)
    try:
        load(args.scenario)
    except ScenarioError as e:
        raise UsageError(str(e)) from None

    from ..tui import Bar
    bar = Bar("study: sessions")

    def progress(done, total, res):
        if ctx.json:
            ctx.line({"ok": not res.get("error"), "run": done, "of": total, "seed": res["seed"],
                      "error": res.get("error")})
        else:
            bar(done, total)
            if res.get("error"):    # said at once, with its seed: a failed run is never lost
                import sys
                sys.stderr.write("\nstudy: run with seed %d failed: %s\n" % (res["seed"], res["error"]))

    if args.record:
        os.makedirs(args.record, exist_ok=True)
    try:
        results = study(args.scenario, args.runs, args.seed, args.workers, args.bots,
                        args.heap, progress=progress, record_dir=args.record,
                        scheduler=args.scheduler)
    finally:
        bar.end()
    if args.output:
        with open(args.output, "w") as f:
            for r in results:
                f.write(json.dumps(r, default=str) + "\n")
    summary = summarize(results)
    from ..study.inputs import ORDER, verdict
    out_of_bound = [k for k in ORDER if k in summary["inputs"]
                    and verdict(k, summary["inputs"][k]) in ("UNDER-COUNTED", "OUT OF BOUND")]
    bad = summary["failed_runs"] or summary["faults_not_contained"] or \
        summary["sessions_dose_after_disable"] or out_of_bound
    if ctx.json:
        ctx.line({"ok": not bad, "summary": summary})
    else:
        print_table(summary, args.scenario)
    return 1 if bad else 0
