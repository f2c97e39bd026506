"""A short whole session through the host library, for probes (row 8) and
warm-ups: consent, deploy, arm, treat, read everything, stop, recall,
emergency stop, pull and verify the audit log."""
import time

from nanohub.host.errors import Refused
from nanohub.host.plan import Plan, PlanSite
from nanohub.protocol import auditlog


def full_session(hub, treat_s=3.0, scenario="nominal"):
    """Returns a dict of what happened; raises on any failure."""
    from nanohub.sim.scenario import load
    sc = load(scenario)
    out = {}
    hub.set_rates(status_hz=10, bots_hz=25, sites_hz=10)
    hub.consent(4711)
    for les in sc.lesions:
        hub.deploy(les.site, les.bots)
    plan = Plan(session_cap=300000, site_cap=100000, rate_cap=2400, duration_s=60,
                sites=[PlanSite(l.site, l.target_um, l.bots) for l in sc.lesions],
                name="bench")
    time.sleep(1.5)           # bots travel 0.3-1 s; their first readings come after
    deadline = time.monotonic() + 10.0
    while True:
        try:
            hub.arm()
            break
        except Refused as e:
            if time.monotonic() > deadline or e.reason != "CHECKS":
                raise
            time.sleep(0.2)
    hub.treat_start(plan)
    t = time.monotonic()
    while time.monotonic() - t < treat_s:
        time.sleep(0.25)
        st = hub.status()
    out["state_treating"] = st["state"]
    out["bots"] = len(hub.bots())
    out["sites"] = len(hub.sites())
    out["params"] = len(hub.params())
    if hub.status()["state"] in ("TREATING", "PAUSED"):
        hub.stop_treatment()
    else:
        out["ended_by_itself"] = True
    hub.recall()
    res = hub.estop(timeout=4.0)
    if not res.ok:
        raise RuntimeError("emergency stop not confirmed: %r" % (res,))
    out["estop_confirmed"] = res.confirmed
    raw = hub.log_pull()
    recs = auditlog.parse_records(raw)
    ver = auditlog.verify(recs)
    if not ver.ok:
        raise RuntimeError("audit log does not verify: %s" % ver)
    out["log_records"] = len(recs)
    return out
