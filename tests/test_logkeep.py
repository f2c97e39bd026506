"""A long-running operator acknowledges the hub's audit log, as a clinic does.

The hub never rotates away a record no signed LOG_ACK acknowledged: a hub
that writes more than its log holds (9 segments of 256 records) in one life
latches the HIGH alarm LOG_FULL and stops writing unless a keyed host pulls
and acknowledges. Here the hub's store starts with a log written by the
firmware's own code a few records short of that hold, and one short session
(firmware on the MicroPython VM, swarm gateway, scripted operator) drives it
past the capacity: with the session runner keeping the log, the hub never
latches LOG_FULL and loses nothing; without, it does. The two sessions run
side by side.
"""
import json
import subprocess
import textwrap

import pytest

from _scenario import side_by_side, treatment

from nanohub.host import vm
from nanohub.host.study.session import run_session
from nanohub.protocol import auditlog, schema

PER_SEG, HELD_SEGS = 256, 9           # the hub's AuditLog(store, hold=True): 8 + 1 reserve
ROOM = 8                              # records left when the hub boots

FILL = textwrap.dedent("""
    import sys, json
    from hub import wire
    from hub.audit import AuditLog
    from hub.store import Store
    root, per_seg, segs, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    log = AuditLog(Store(root), per_seg, segs)
    log.open(0)
    for i in range(n):
        log.append(10 * i, wire.EV_PARAM, i & 0xFF, 0, i)
    print(json.dumps({"next": log.next_index, "first": log.first_index}))
""")

SCENARIO = treatment("short", "one site treated for 6 s", 13, [("3/occlusal", 1100, 500)],
                     treat_s=6, last=(11.0, "recall", None))

LOG_FULL = schema.enum_value("ALARM", "LOG_FULL")


def nearly_full_store(tmp_path):
    """A hub store whose log holds HELD_SEGS * PER_SEG - ROOM unacknowledged records."""
    store = tmp_path / "work" / "hub"
    store.mkdir(parents=True)
    script = tmp_path / "fill.py"
    script.write_text(FILL)
    n = HELD_SEGS * PER_SEG - ROOM
    argv, env = vm.vm_command([script, store, PER_SEG, HELD_SEGS, n], heap="256k")
    proc = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"next": n, "first": 0}
    return store.parent, n


def session(tmp_path, log_keep):
    workdir, n = nearly_full_store(tmp_path)
    s = run_session("short.toml", workdir=workdir, settle_s=1.0, log_keep=log_keep,
                    keep_trace=str(tmp_path / "trace.jsonl.gz"))
    latched = [st for _, st in s.statuses if st["reason"] == LOG_FULL] + \
        [a for a in s.alarms if a[1] == "LOG_FULL"]
    recs = auditlog.parse_records(s.log)
    return s, n, recs, latched, workdir / "hub"


@pytest.fixture(scope="module")
def sessions(micropython, tmp_path_factory):
    """The same session with the log kept and without, side by side:
    {log_keep: (Session, records before it, records pulled, LOG_FULL seen, the
    hub's store)}."""
    tmp = tmp_path_factory.mktemp("logkeep")
    (tmp / "short.toml").write_text(SCENARIO)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)                       # the gateway finds the scenario by its name
        return side_by_side(lambda keep: session(tmp / ("kept" if keep else "not-kept"), keep),
                            (True, False))


def test_a_session_runner_pulls_and_acknowledges_so_the_hub_never_fills_its_log(sessions):
    s, n, recs, latched, store = sessions[True]
    assert s.error is None
    assert not latched, latched
    assert s.log_result.ok, s.log_result
    # every record since index 0, the session's own past the hub's hold
    assert recs[0]["index"] == 0 and len(recs) > HELD_SEGS * PER_SEG
    events = {r["event"] for r in recs[n:]}
    assert schema.enum_value("EV", "LOG_LOST") not in events
    assert schema.enum_value("EV", "LOG_DROP") in events    # acknowledged, then rotated
    assert any(e[1] == "log" and "audit log:" in e[2] for e in s.events)
    # what the hub kept on its medium: the first segment went once acknowledged
    segs = sorted(p.name for p in store.iterdir()
                  if p.name.startswith("log.") and p.name[4:].isdigit())
    assert segs[0] != "log.%010d" % 0


def test_without_the_acknowledgements_the_same_session_fills_the_log(sessions):
    s, n, recs, latched, _ = sessions[False]
    assert latched
    assert len(recs) == HELD_SEGS * PER_SEG          # full: nothing past the hold
