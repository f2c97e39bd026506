"""Simulated cohorts: how fast the detector finds a defect, how often it cries wolf.

    python -m nanohub.host.signals.cohort --pool 150 --out cohort/   # sessions + study

Sessions are simulated with the swarm, mouth and patient model of
``nanohub.sim.world`` on CPython, driven by ``world.Baseline`` (the
scenario's operator script played straight onto the bot bus: no firmware, no
supervisor), because a session on the MicroPython VM takes its full real
time. Only the patient's nano-sensitivity episodes matter here, and they come
from the same model either way. The scenario is ``cohort`` (sim/scenarios):
a routine session whose ``[defect]`` table makes, from session N on, a
fraction of sessions carry a defect that raises the sensitivity index.

The study draws long cohorts from two pools of simulated sessions (clean
ones, and ones carrying the defect) and runs the Poisson MaxSPRT over them:

* detection delay: cohorts whose sessions from N on carry the defect with
  the scenario's fraction; the delay is the number of sessions from N to the
  signal (a signal before N is a false one, counted apart);
* false signals: clean cohorts, surveillance restarted after every signal,
  signals per 1,000 clean sessions.
"""
import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from .maxsprt import PoissonMaxSPRT

NANO_KINDS = ("sensory_disruption", "migraine")


def simulate_one(scenario, session, defect=True):
    """(events, carries): the patient's adverse events of one simulated session."""
    from nanohub.sim import defect as cohort_defect
    from nanohub.sim.scenario import load
    from nanohub.sim.world import Baseline, World
    sc = load(scenario)
    if not defect:
        sc.defect = None
    carries = cohort_defect.carries(sc.defect, session)
    w = World(sc, seed=session)
    Baseline(w).run()
    return list(w.subject.events), carries


def _one(args):
    return args[1], args[2], simulate_one(*args)


def simulate(scenario, sessions, defect=True, workers=None, progress=None):
    """{session: (events, carries)} for the given session numbers, in parallel."""
    out = {}
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for session, _, res in pool.map(_one, [(scenario, s, defect) for s in sessions],
                                         chunksize=4):
            out[session] = res
            if progress:
                progress(len(out), len(sessions))
    return out


def write_session(path, scenario, session, events, carries, started_at):
    """A session store file for one simulated session (what ``signals`` reads).

    It holds the simulator's ground truth (``truth_event``) and says in
    ``meta.source`` that no firmware ran; ``meta.bot_batch`` names the bot
    batch: B2 (the defective one) when the session carries the defect, else B1.
    """
    from ..report.db import FORMAT, SCHEMA_VERSION, create
    db = create(path)
    try:
        meta = {"format": FORMAT, "schema_version": str(SCHEMA_VERSION),
                "created_at": str(time.time()), "started_at": str(started_at),
                "source": "sim/world model on CPython, world.Baseline operator (no firmware)",
                "kind": "cohort", "scenario": scenario, "seed": str(session),
                "bot_batch": "B2" if carries else "B1",
                "trace_meta": json.dumps({"scenario": scenario, "seed": session}),
                "ended": "complete"}
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items())
        db.executemany("INSERT INTO truth_event (t, sim_ms, kind, sens) VALUES (?, ?, ?, ?)",
                       [(t / 1000.0, t, kind, sens) for t, kind, sens in events])
        db.commit()
        db.execute("PRAGMA journal_mode = DELETE")
    finally:
        db.close()


def write_cohort(folder, scenario, sessions, defect=True, workers=None, progress=None):
    """Simulate ``sessions`` (numbers) and write one store file each into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    sims = simulate(scenario, sessions, defect, workers, progress)
    t0 = 1.7e9
    paths = []
    for s in sessions:
        events, carries = sims[s]
        path = os.path.join(folder, "session-%05d.db" % s)
        write_session(path, scenario, s, events, carries, t0 + 3600.0 * s)
        paths.append(path)
    return paths


# -------------------------------------------------------------------- study --

def _var(xs):
    m = sum(xs) / len(xs)
    return sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1)


def nano(events):
    return sum(1 for _, kind, _ in events if kind in NANO_KINDS)


def delays(clean, bad, onset, fraction, baseline, T, alpha, M, cohorts, lead=50, seed=1):
    """Detection delays (sessions from ``onset`` to the signal; None: none by the
    upper limit) and the count of signals before ``onset``, over ``cohorts``
    cohorts drawn from the pools of per-session counts ``clean`` and ``bad``.
    Surveillance starts ``lead`` sessions before the onset."""
    rng = random.Random(seed)
    cv = PoissonMaxSPRT(T, alpha, M).cv
    out, early = [], 0
    for _ in range(cohorts):
        test = PoissonMaxSPRT(T, alpha, M, cv=cv)
        got = None
        i = onset - lead
        while not test.ended:
            after = i >= onset and rng.random() < fraction
            k = rng.choice(bad) if after else rng.choice(clean)
            if test.add(k, baseline):
                got = i
            i += 1
        if got is not None and got < onset:
            early += 1
        elif got is not None:
            out.append(got - onset)
        else:
            out.append(None)
    return out, early


def false_signals(clean, baseline, T, alpha, M, sessions, seed=2):
    """Signals per 1,000 clean sessions, surveillance restarted after each
    signal or at the upper limit."""
    rng = random.Random(seed)
    cv = PoissonMaxSPRT(T, alpha, M).cv
    signals = 0
    test = PoissonMaxSPRT(T, alpha, M, cv=cv)
    for _ in range(sessions):
        if test.add(rng.choice(clean), baseline):
            signals += 1
        if test.ended:
            test = PoissonMaxSPRT(T, alpha, M, cv=cv)
    return 1000.0 * signals / sessions


SETTINGS = (
    {"name": "A", "alpha": 0.05, "M": 1, "T": 150.0},
    {"name": "B", "alpha": 0.01, "M": 4, "T": 150.0},
)


def study(clean, bad, baseline, onset=200, fraction=0.3, cohorts=400, clean_sessions=200000,
          settings=SETTINGS):
    rows = []
    for s in settings:
        d, early = delays(clean, bad, onset, fraction, baseline, s["T"], s["alpha"], s["M"],
                          cohorts)
        found = sorted(x for x in d if x is not None)
        fs = false_signals(clean, baseline, s["T"], s["alpha"], s["M"], clean_sessions)
        cv = PoissonMaxSPRT(s["T"], s["alpha"], s["M"]).cv

        def q(p):
            return found[min(len(found) - 1, int(p * len(found)))] if found else None
        rows.append(dict(s, cv=round(cv, 4), cohorts=cohorts, detected=len(found),
                         missed=len(d) - len(found), early=early, delay_median=q(0.5),
                         delay_p10=q(0.1), delay_p90=q(0.9),
                         false_per_1000=round(fs, 2), clean_sessions=clean_sessions))
    return rows


def simulate_pools(scenario, d, onset, size, workers=None):
    """Per-session episode counts of ``size`` clean sessions (1..size, defect
    off) and ``size`` sessions that carry the defect (numbers from the onset
    on that the defect's hash picks)."""
    from nanohub.sim import defect as cohort_defect
    clean_s = simulate(scenario, list(range(1, size + 1)), defect=False, workers=workers)
    picks, s = [], onset
    while len(picks) < size:
        if cohort_defect.carries(d, s):
            picks.append(s)
        s += 1
    bad_s = simulate(scenario, picks, workers=workers)
    assert all(c for _, c in bad_s.values())
    return {"scenario": scenario, "clean": [nano(e) for e, _ in clean_s.values()],
            "defect": [nano(e) for e, _ in bad_s.values()]}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nanohub.host.signals.cohort",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="cohort")
    ap.add_argument("--pool", type=int, default=150,
                    help="simulated sessions in each pool (clean, defect)")
    ap.add_argument("--cohorts", type=int, default=400)
    ap.add_argument("--out", help="also write a small cohort of session files here")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--pools", metavar="JSON",
                    help="read the pools' per-session counts from this file if it exists, "
                         "else simulate them and write it")
    args = ap.parse_args(argv)
    from nanohub.sim.scenario import load
    sc = load(args.scenario)
    d = sc.defect or {}
    onset, fraction = d.get("from_session", 200), d.get("fraction", 0.3)
    t = time.time()
    if args.pools and os.path.exists(args.pools):
        with open(args.pools) as f:
            pools = json.load(f)
    else:
        pools = simulate_pools(args.scenario, d, onset, args.pool, args.workers)
        if args.pools:
            with open(args.pools, "w") as f:
                json.dump(pools, f)
    clean, bad = pools["clean"], pools["defect"]
    baseline = sum(clean) / len(clean)
    print("pools: %d clean sessions, %.3f episodes each (variance %.3f); %d defect sessions, "
          "%.3f each (%.0f s)" % (len(clean), baseline, _var(clean), len(bad),
                                  sum(bad) / len(bad), time.time() - t))
    rows = study(clean, bad, baseline, onset, fraction, args.cohorts)
    print(json.dumps(rows, indent=1))
    if args.out:
        write_cohort(args.out, args.scenario, list(range(1, 41)), workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
