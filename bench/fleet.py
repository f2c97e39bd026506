"""Fleet emergency stop: 8 emulated hubs of 64 bots under the presentation-night
faults, from the command to the last DISABLE broadcast, next to one hub's.

    python -m bench.fleet            # 8 hubs x 64 bots, 30 trials
    python -m bench.fleet --quick    # 2 hubs x 16 bots, 5 trials

Every hub is an emulated hub (firmware on the MicroPython VM, the swarm
gateway) with a tap on its bot bus (``bench.emu.BusWatch``). The swarm plays
a bench copy of the presentation-night scenario whose faults start a few
seconds in and never end: the bot bus degraded (12 % loss, 3 % corruption,
duplication, reordering, 80 ms delay), two runaways that each lose their
first two DISABLE commands, three silent radios. The host-link cut is left
out: no ESTOP crosses a cut link (the hub's own link-loss rule covers that,
and ``fleet estop`` then names the hub as unreached).

A trial reads the clock and calls ``nanohub.host.fleet.estop_all`` (what
``nanohub fleet estop`` runs: a link opened to every hub at once, ESTOP on
each, wait for each final report); the figure is the time at which the last
hub's tap saw a DISABLE covering every bot. Between trials each hub's alarms
are acknowledged and its latch reset (signed). The one-hub figure runs the
same trials with a clinic of the first hub alone.
"""
import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from nanohub.host import tomlfile
from nanohub.host.client import Hub
from nanohub.host.fleet.clinic import Chair
from nanohub.host.fleet.ops import Target, estop_all

from .emu import BenchHub, isolated_home
from .report import Row
from .timing import percentile
from nanohub.host.simport import HEAP

FAULTS_AT = 3.0          # seconds after each gateway starts


def scenario_file(folder, bots):
    """The bench's presentation night: its faults from FAULTS_AT on, for good."""
    src = _scenario_dir() / "presentation-night.toml"
    data = tomlfile.load(src, RuntimeError)
    out = ['name = "bench-fleet"', 'description = "presentation-night faults, held"',
           "duration_s = 3600", "bots = %d" % bots, "seed = %d" % data["seed"], ""]
    for les in data["lesion"]:
        out += ["[[lesion]]", 'site = "%s"' % les["site"], "depth_um = %d" % les["depth_um"],
                "target_um = %d" % les["target_um"], "bots = %d" % les["bots"], ""]
    runaways, silent = [0, 1], [2, 3, 4]     # named: no bot need be at a site first
    for f in data["fault"]:
        if f["kind"] == "host_link_loss":
            continue
        out += ["[[fault]]", 'id = "%s"' % f["id"], "at = %.1f" % FAULTS_AT,
                'kind = "%s"' % f["kind"]]
        if "targets" in f:
            targets = f["targets"]
            if f["kind"] == "runaway":
                targets = runaways
            elif f["kind"] == "silent":
                targets = silent
            out.append("targets = %s" % (('"%s"' % targets) if isinstance(targets, str)
                                         else repr(list(targets))))
        if "params" in f:
            out.append("params = { %s }" % ", ".join(
                "%s = %s" % (k, ('"%s"' % v) if isinstance(v, str) else v)
                for k, v in f["params"].items()))
        out.append("")
    path = Path(folder) / "bench-fleet.toml"
    path.write_text("\n".join(out))
    return path


def _scenario_dir():
    import nanohub.sim
    return Path(nanohub.sim.__file__).resolve().parent / "scenarios"


def _targets(emus):
    return [Target(Chair("hub-%d" % i, e.url), e.url, str(e.key_path))
            for i, e in enumerate(emus)]


def _reset(emu):
    """ALARM_ACK and the signed ESTOP_RESET; False when the hub refused or could
    not be reached (the next trial measures a latched hub, which still broadcasts)."""
    for attempt in range(3):
        try:
            with Hub.open(emu.url, key=emu.key_path.read_bytes(), timeout=4.0, retries=4,
                          heartbeat=False) as hub:
                hub.ack_alarms(0)
                try:
                    hub.reset_estop()
                    return True
                except Exception:       # noqa: BLE001 - refused: the latch stays
                    return False
        except Exception:               # noqa: BLE001 - the last link still closing: retry
            time.sleep(0.5)
    return False


def _trials(emus, trials, label):
    targets = _targets(emus)
    lat, host_s, bad, unreset = [], [], 0, 0
    for _ in range(trials):
        for e in emus:
            unreset += not _reset(e)
        time.sleep(0.3)
        t0 = time.monotonic()
        results = estop_all(targets, wait=8.0, timeout=4.0)
        t_host = time.monotonic()
        ends = [e.watch.all_disabled(t0) for e in emus]
        if any(t is None for t in ends):
            bad += 1
            sys.stderr.write("\n%s: no DISABLE seen from %d hub(s): %s\n" % (
                label, sum(t is None for t in ends), "; ".join(
                    "%s %s" % (r.name, r.error) for r in results if r.error)[:300]))
            continue
        lat.append((max(ends) - t0) * 1000.0)
        host_s.append(t_host - t0)
        confirmed = sum(1 for r in results if r.reached)
        if confirmed < len(emus):
            bad += 1
        sys.stderr.write("\r%s: %d/%d" % (label, len(lat), trials))
        sys.stderr.flush()
    sys.stderr.write("\n")
    return {"lat": lat, "host_s": host_s, "bad": bad, "unreset": unreset}


def run(quick=False, hubs=None, bots=None, trials=None):
    hubs = hubs or (2 if quick else 8)
    bots = bots or (16 if quick else 64)
    trials = trials or (5 if quick else 30)
    with isolated_home(), tempfile.TemporaryDirectory(prefix="nanohub-bench-fleet-") as tmp:
        scen = scenario_file(tmp, bots)
        with contextlib.ExitStack() as stack:
            emus = []
            for i in range(hubs):
                emus.append(stack.enter_context(BenchHub(bots=bots, scenario=str(scen),
                                                         seed=i + 1, heap=HEAP)))
            time.sleep(FAULTS_AT + 2.0)          # the last hub's faults are on too
            one = _trials(emus[:1], trials, "1 hub")
            many = _trials(emus, trials, "%d hubs" % hubs)
            alive = [e.alive() for e in emus if e.alive()]
    return _rows(hubs, bots, one, many, alive)


def _fig(m):
    if not m["lat"]:
        return "no trial completed"
    return "p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d trials%s)" % (
        percentile(m["lat"], 50), percentile(m["lat"], 99), max(m["lat"]), len(m["lat"]),
        ", %d not confirmed" % m["bad"] if m["bad"] else "") + (
        "; %d resets refused" % m["unreset"] if m["unreset"] else "")


def _rows(hubs, bots, one, many, alive):
    how = ("%d emulated hubs (MicroPython VM + swarm gateway each, %d bots) on this machine, "
           "the swarm playing the presentation-night faults held from %.0f s on (bus "
           "degraded, 2 runaways deaf to their first 2 DISABLEs, 3 silent radios; no host-link "
           "cut). A trial: `nanohub.host.fleet.estop_all` (what `nanohub fleet estop` runs: "
           "opens a link to every hub in parallel, ESTOP on each, waits for each final report); "
           "latency = from the call to the moment the last hub's bot-bus tap saw a DISABLE "
           "covering all its bots. Alarms acknowledged and latch reset (signed) between "
           "trials%s. The one-hub row: the same trials with a clinic of the first hub alone."
           % (hubs, bots, FAULTS_AT, "; %s" % "; ".join(alive) if alive else ""))
    host = many["host_s"]
    rows = [
        Row("16", "fleet emergency stop, %d hubs x %d bots, presentation-night faults"
            % (hubs, bots), _fig(many), "report", None, how=how,
            data={"lat": many["lat"]}),
        Row("16b", "the same, one hub", _fig(one), "report", None, how=how,
            data={"lat": one["lat"]}),
    ]
    if host:
        rows.append(Row("16c", "fleet estop: command to every hub's final report (%d hubs)"
                        % hubs, "p50 %.2f s, p99 %.2f s" % (percentile(host, 50),
                                                            percentile(host, 99)),
                        "report", None, how="same trials: until `estop_all` returned with "
                        "each hub's final ESTOP_REPORT (the silent radios stay unconfirmed, so "
                        "each hub waits out its confirmation round)."))
    return rows, {"hubs": hubs, "bots": bots, "one": one, "many": many}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 hubs x 16 bots, 5 trials")
    ap.add_argument("--hubs", type=int)
    ap.add_argument("--bots", type=int)
    ap.add_argument("--trials", type=int)
    args = ap.parse_args(argv)
    rows, _ = run(quick=args.quick, hubs=args.hubs, bots=args.bots, trials=args.trials)
    for r in rows:
        print("%-5s %-70s %s" % (r.num, r.what, r.figure))
    return 0 if all(r.error is None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
