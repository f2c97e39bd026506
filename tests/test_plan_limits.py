"""The host's plan check and the hub agree on every plan limit.

Each limit of ``nanohub.protocol.facts`` (sites per plan, the site index, a
site named twice, bots per site, target depth, the caps, the duration) is
tried at its bounds and one step beyond, as a TOML plan given to ``nanohub
treat start --check`` (the host, offline) and as the same TREAT_START sent to
an emulated hub (the firmware on the MicroPython VM, bots at every site the
plans name, its cap parameters at their hard maxima). Both must accept what
the limits allow and refuse the rest; a value the wire field cannot carry is
refused by the host and cannot be encoded for the hub.
"""
import os
import subprocess
import sys

import pytest

from nanohub.protocol import facts, schema

from _waiting import wait_for

TOP = {key: (field, lo, hi) for key, field, lo, hi, _ in facts.PLAN_LIMITS}
SITE = {key: (field, lo, hi) for key, field, lo, hi, _ in facts.PLAN_SITE_LIMITS}
BASE = {"session_cap": 1000, "site_cap": 500, "rate_cap": 100, "duration_s": 10}
FULL = list(range(facts.PLAN_SITES_MAX))          # the sites of the largest plan
LAST = facts.SITES - 1
BOT_SITES = FULL + [LAST]                          # every site an acceptable case names


def plan(sites=(0,), **top):
    p = dict(BASE, **top)
    p["sites"] = [dict({"site": s, "target_um": 100, "bots": 1}, **extra)
                  for s, extra in ((s if isinstance(s, tuple) else (s, {})) for s in sites)]
    return p


def cases():
    """(label, plan, allowed) at and beyond every limit."""
    out = [
        ("PLAN_SITES_MAX sites", plan(FULL), True),
        ("PLAN_SITES_MAX + 1 sites", plan(FULL + [LAST]), False),
        ("no site", plan(()), False),
        ("a site named twice", plan((0, 1, 0)), False),
        ("site_cap = session_cap", plan(site_cap=BASE["session_cap"]), True),
        ("site_cap above session_cap", plan(site_cap=BASE["session_cap"] + 1), False),
    ]
    for key, (_, lo, hi) in TOP.items():
        for v, ok in ((lo, True), (lo - 1, False), (hi, True), (hi + 1, False)):
            top = {key: v}
            if key == "session_cap":            # keep site_cap <= session_cap
                top["site_cap"] = max(0, min(BASE["site_cap"], v))
            if key == "site_cap":
                top["session_cap"] = max(BASE["session_cap"], v)
            out.append(("%s = %d" % (key, v), plan(**top), ok))
    for key, (_, lo, hi) in SITE.items():
        for v, ok in ((lo, True), (lo - 1, False), (hi, True), (hi + 1, False)):
            site = v if key == "site" else 0
            if key == "site" and ok:
                assert site in BOT_SITES
            out.append(("site %s = %d" % (key, v), plan([(site, {key: v})]), ok))
    return out


def toml(p):
    lines = ["%s = %d" % (k, p[k]) for k in TOP]
    for s in p["sites"]:
        lines += ["", "[[site]]"] + ["%s = %d" % (k, s[k]) for k in SITE]
    return "\n".join(lines) + "\n"


def frame(p):
    """TREAT_START (fields, records), or None if the wire cannot carry the values."""
    fields = {TOP[k][0]: p[k] for k in TOP}
    records = [{SITE[k][0]: s[k] for k in SITE} for s in p["sites"]]
    construct = schema.BY_NAME["TREAT_START"][3]
    try:
        construct.build(dict(fields, count=len(records), sites=records))
    except Exception:
        return None
    return fields, records


def host_verdicts(tmp_path, all_cases):
    out = {}
    env = dict(os.environ, NANOHUB_HOME=str(tmp_path / "home"))
    env.pop("NANOHUB_PORT", None)
    for n, (label, p, _) in enumerate(all_cases):
        path = tmp_path / ("plan%d.toml" % n)
        path.write_text(toml(p))
        proc = subprocess.run([sys.executable, "-m", "nanohub.host.cli", "treat", "start",
                               "--check", str(path)], capture_output=True, text=True,
                              timeout=60, env=env)
        assert proc.returncode in (0, 2), (label, proc.returncode, proc.stderr)  # 2: bad plan file
        assert "Traceback" not in proc.stderr, proc.stderr
        out[label] = proc.returncode == 0
    return out


def test_the_cases_reach_every_limit():
    labels = [c[0] for c in cases()]
    assert len(labels) == len(set(labels))
    for key in list(TOP) + list(SITE):
        assert sum(key in label for label in labels) >= 4, key
    assert facts.PLAN_SITES_MAX < len(BOT_SITES) <= facts.SITES


def _ready(h):
    return not {"BOTS", "DEPLOYED"} & set(h.status()["failing_checks"])


def _deploy_everywhere(h, sites, deadline_s=60.0):
    for s in sites:
        h.deploy(s, 1)

    def there():
        at = {b["site"] for b in h.bots() if b["state"] in facts.BOT_AT_SITE}
        return set(sites) <= at and _ready(h)
    wait_for(there, deadline_s, "a bot reporting at each of %d sites" % len(sites), interval=0.1)


def hub_verdict(h, p):
    """(accepted, why): the hub's answer to the plan; stops a started treatment."""
    from nanohub.host.errors import Refused
    f = frame(p)
    if f is None:
        return False, "not encodable"
    st = h.status()
    if st["state"] != "ARMED":
        if "CONSENT" in st["failing_checks"]:
            h.consent(4711)                 # recorded for one treatment
        # a loaded machine may delay a report after the last stop: wait for it
        wait_for(lambda: _ready(h), 30, "the bots reporting again, ready to arm")
        h.arm()
    try:
        h.command("TREAT_START", *f)
    except Refused as e:
        return False, e.reason
    try:
        h.stop_treatment()
    except Refused:
        pass                                # it may have ended by itself (a tiny cap)
    return True, "DONE"


@pytest.mark.vm
def test_host_check_and_hub_agree_at_and_beyond_every_limit(tmp_path, monkeypatch):
    all_cases = cases()
    host = host_verdicts(tmp_path, all_cases)
    monkeypatch.setenv("NANOHUB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NANOHUB_PORT", raising=False)
    from nanohub.host import EmulatedHub, Hub
    hub = {}
    with EmulatedHub(bots=len(BOT_SITES) + 3) as emu:
        with Hub.open(emu.url, key=emu.key_path) as h:
            for name in ("session_cap", "site_cap", "rate_cap"):
                h.param_set(name, facts.param_bounds(name)[1])
            h.consent(4711)
            _deploy_everywhere(h, BOT_SITES)
            for label, p, _ in all_cases:
                hub[label] = hub_verdict(h, p)
    rows = ["%-34s allowed=%-5s host=%-5s hub=%s" % (label, ok, host[label], hub[label])
            for label, _, ok in all_cases]
    report = "\n".join(rows)
    print(report)
    for label, _, ok in all_cases:
        assert host[label] == ok, report
        assert hub[label][0] == ok, report
        if not ok:      # refused for the plan itself, never for the hub's state or swarm
            assert hub[label][1] in ("not encodable", "BAD_ARG", "BOUNDS"), report


def test_check_notes_a_cap_a_hub_with_default_parameters_refuses(tmp_path):
    import json
    env = dict(os.environ, NANOHUB_HOME=str(tmp_path / "home"))
    for key in ("session_cap", "site_cap", "rate_cap"):
        default = facts.param_default(key)
        for v, noted in ((default, False), (default + 1, True)):
            top = {key: v}
            if key == "site_cap":
                top["session_cap"] = max(BASE["session_cap"], v)
            path = tmp_path / "p.toml"
            path.write_text(toml(plan(**top)))
            proc = subprocess.run([sys.executable, "-m", "nanohub.host.cli", "--json", "treat",
                                   "start", "--check", str(path)], capture_output=True,
                                  text=True, timeout=60, env=env)
            assert proc.returncode == 0, proc.stderr
            notes = json.loads(proc.stdout)["notes"]
            assert bool([n for n in notes if n.startswith(key + " ")]) == noted, (key, v, notes)
