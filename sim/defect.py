"""A cohort defect: from session N on, a fraction of sessions carry a defect
that raises the patient's sensitivity.

A scenario's optional ``[defect]`` table::

    [defect]
    from_session = 200   # the first session that can carry it
    fraction = 0.3       # share of sessions from then on that do
    amount = 0.06        # added to every sensitivity transient of the session
    at = 4.0             # s; without transients in the scenario, one of
    until = 44.0         # `amount` acts from at (default 0) to until (or the end)

The session number is the run's seed (``nanohub study`` numbers its runs
seed0, seed0 + 1, ...). Whether a session carries the defect is decided by
its seed alone, through a hash independent of every random stream of the
world, so the same seed gives the same cohort and the same trace.
"""
import copy

from .scenario import Fault

_GOLDEN = 0x9E3779B97F4A7C15


def _unit(session):
    """A uniform number in [0, 1) from the session number (splitmix64)."""
    x = (int(session) * _GOLDEN + 0xD1B54A32D192ED03) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    return x / 2.0 ** 64


def carries(defect, session):
    """True when session number ``session`` carries the scenario's defect."""
    if not defect:
        return False
    return session >= defect["from_session"] and _unit(session) < defect["fraction"]


def apply(scenario, session):
    """The scenario for this session: when the session carries the defect,
    every sensitivity transient of the scenario is ``amount`` stronger (and
    one of ``amount`` acts from ``at`` to ``until`` if the scenario has none);
    otherwise the scenario itself."""
    defect = getattr(scenario, "defect", None)
    if not carries(defect, session):
        return scenario
    out = copy.copy(scenario)
    faults = []
    for f in scenario.faults:
        if f.kind == "sensitivity_spike":
            params = dict(f.params, amount=f.params["amount"] + defect["amount"])
            f = Fault(f.index, f.id, f.at, f.until, f.kind, f.targets, params)
        faults.append(f)
    if not any(f.kind == "sensitivity_spike" for f in faults):
        until = defect.get("until")
        faults.append(Fault(len(faults), "defect", float(defect.get("at", 0.0)),
                            None if until is None else float(until), "sensitivity_spike",
                            None, {"amount": float(defect["amount"]), "rise_s": 1.0}))
    out.faults = faults
    return out
