"""Scenarios: what happens in a simulated session, as data.

A scenario is a TOML file in ``sim/scenarios/`` (format: docs/sim.md,
"Scenario files"). ``load`` reads and validates one; every error names the
file and the field, so a typo in a safety study fails loudly instead of
silently testing something else.
"""
import os

from nanohub.host import tomlfile
from nanohub.protocol.facts import PLAN_SITES_MAX

from .mouth import parse_site

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
DEFAULT_BOTS = 64
MAX_BOTS = 255

_NUM = (int, float)
# kind -> (has targets, {param: (types, default, low, high)}); a default of
# None means required. Bounds are inclusive.
KINDS = {
    "runaway": (True, {
        "mode": (str, None, ("on_while_off", "above_command"), None),
        "level": (int, 0, 1, 100),          # 0: 100 (on_while_off) or 30 (above_command)
    }),
    "silent": (True, {}),
    "sensor_drift": (True, {
        "depth_um_per_s": (_NUM, 0.0, -500.0, 500.0),
        "temp_c_per_s": (_NUM, 0.0, -5.0, 5.0),
        "ph_per_s": (_NUM, 0.0, -1.0, 1.0),
    }),
    "battery_collapse": (True, {
        "fall_s": (_NUM, 3.0, 0.1, 60.0),
    }),
    "stuck_disable": (True, {
        "count": (int, 1, 1, 255),
    }),
    "health": (True, {
        "health": (int, None, 0, 100),
    }),
    "bus": (False, {
        "loss": (_NUM, 0.0, 0.0, 1.0),
        "corrupt": (_NUM, 0.0, 0.0, 1.0),
        "duplicate": (_NUM, 0.0, 0.0, 1.0),
        "reorder": (_NUM, 0.0, 0.0, 1.0),
        "delay_ms": (int, 0, 0, 10000),
    }),
    "host_link_loss": (False, {}),
    "sensitivity_spike": (False, {
        "amount": (_NUM, None, 0.0, 5.0),
        "rise_s": (_NUM, 1.0, 0.05, 60.0),
    }),
}

# operator verb -> {arg: (types, default, low, high)}; "site" args take a
# site index or "tooth/surface"
VERBS = {
    "consent": {"patient": (int, 1, 0, 0xFFFFFFFF)},
    "deploy": {"site": ("site", None, None, None), "count": (int, 1, 1, MAX_BOTS)},
    "arm": {},
    "treat_start": {
        "duration": (int, 40, 1, 65535),            # s
        "session_cap": (int, None, 0, 0xFFFFFFFF),  # uDU
        "site_cap": (int, None, 0, 0xFFFFFFFF),     # uDU
        "rate_cap": (int, None, 0, 0xFFFF),         # uDU per s per site
    },
    "pause": {},
    "resume": {},
    "stop": {},
    "dose_scale": {"percent": (int, None, 0, 100)},
    "hold": {"bot": (int, 255, 0, 255)},
    "recall": {"bot": (int, 255, 0, 255)},       # 255: every bot
    "estop": {"source": (int, 2, 0, 2)},         # 0 operator, 1 key, 2 script
    "ack": {"code": (int, 0, 0, 255)},           # 0: every alarm
}

_TOP = ("name", "description", "duration_s", "bots", "seed", "incipient_lesions",
        "lesion", "fault", "operator", "defect")


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid; says where."""


class Lesion:
    __slots__ = ("site", "depth_um", "target_um", "bots")

    def __init__(self, site, depth_um, target_um, bots):
        self.site, self.depth_um, self.target_um, self.bots = site, depth_um, target_um, bots

    def __repr__(self):
        return "Lesion(site=%d, depth_um=%d, target_um=%d, bots=%d)" % (
            self.site, self.depth_um, self.target_um, self.bots)


class Fault:
    """One ``[[fault]]``: times in s; ``targets`` is a bot count (int), a
    tuple of bot ids, the id of an earlier fault (str: the same bots), or None
    for faults that hit no bot (bus, host link, patient)."""
    __slots__ = ("index", "id", "at", "until", "kind", "targets", "params")

    def __init__(self, index, id, at, until, kind, targets, params):
        self.index, self.id, self.at, self.until = index, id, at, until
        self.kind, self.targets, self.params = kind, targets, params

    def active(self, t_s):
        return self.at <= t_s and (self.until is None or t_s < self.until)

    def __repr__(self):
        return "Fault(%d, %r, at=%g, until=%r, targets=%r, params=%r)" % (
            self.index, self.kind, self.at, self.until, self.targets, self.params)


class Scenario:
    defect = None                         # the cohort defect (sim/defect.py), or None

    def __init__(self, source, name, description, duration_s, bots, seed, incipient,
                 lesions, faults, operator):
        self.source = source              # file path, or a label
        self.name = name
        self.description = description
        self.duration_s = duration_s
        self.bots = bots
        self.seed = seed
        self.incipient = incipient        # unplanned early lesions placed by the seed
        self.lesions = lesions            # [Lesion]
        self.faults = faults              # [Fault]
        self.operator = operator          # [(t_s, verb, args)], sorted by time

    @property
    def plan(self):
        """The treatment plan: (site, target depth um, bots) per lesion."""
        return [(l.site, l.target_um, l.bots) for l in self.lesions]

    def __repr__(self):
        return "Scenario(%r, %d bots, %gs, %d faults)" % (
            self.name, self.bots, self.duration_s, len(self.faults))


def list_scenarios():
    """Names of the bundled scenarios."""
    return sorted(f[:-5] for f in os.listdir(HERE) if f.endswith(".toml"))


def load(name_or_path):
    """A bundled scenario by name (``"runaway"``) or any file by path."""
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text or "/" in text:
        path = text
    else:
        path = os.path.join(HERE, text + ".toml")
        if not os.path.exists(path):
            raise ScenarioError("no scenario named %r (bundled: %s)"
                                % (text, ", ".join(list_scenarios())))
    return from_dict(tomlfile.load(path, ScenarioError), os.path.basename(path))


def from_dict(data, source="<scenario>"):
    """Validate parsed TOML (a dict) into a Scenario; ``source`` names it in errors."""
    c = _Checker(source)
    c.unknown(data, _TOP, "")
    name = c.get(data, "name", str, None, None, None, "")
    if not name.strip():
        c.fail("name", "must not be empty")
    description = c.get(data, "description", str, "", None, None, "")
    duration = float(c.get(data, "duration_s", _NUM, None, 1.0, 3600.0, ""))
    bots = c.get(data, "bots", int, DEFAULT_BOTS, 1, MAX_BOTS, "")
    seed = c.get(data, "seed", int, 1, 0, 0xFFFFFFFF, "")
    incipient = c.get(data, "incipient_lesions", int, 3, 0, 20, "")

    lesions = []
    for i, t in enumerate(c.tables(data, "lesion")):
        where = "lesion[%d]." % i
        c.unknown(t, ("site", "depth_um", "target_um", "bots"), where)
        site = c.site(t, "site", where)
        depth = c.get(t, "depth_um", int, None, 1, 4000, where)
        target = c.get(t, "target_um", int, 0, 0, 4000, where)
        if target >= depth:
            c.fail(where + "target_um", "must be below depth_um (%d), got %d" % (depth, target))
        if any(l.site == site for l in lesions):
            c.fail(where + "site", "site %d already has a lesion" % site)
        lesions.append(Lesion(site, depth, target, c.get(t, "bots", int, 3, 1, 16, where)))
    if len(lesions) > PLAN_SITES_MAX:      # the plan treats every lesion: one site each
        c.fail("lesion", "%d lesions: a plan names at most %d sites" % (len(lesions), PLAN_SITES_MAX))

    faults = []
    ids = {}
    for i, t in enumerate(c.tables(data, "fault")):
        faults.append(_fault(c, t, i, duration, bots, ids))

    operator = []
    for i, t in enumerate(c.tables(data, "operator")):
        where = "operator[%d]." % i
        c.unknown(t, ("at", "do", "args"), where)
        at = float(c.get(t, "at", _NUM, None, 0.0, duration, where))
        verb = c.get(t, "do", str, None, tuple(VERBS), None, where)
        args = c.get(t, "args", dict, {}, None, None, where)
        operator.append((at, verb, c.params(args, VERBS[verb], where + "args.")))
    operator.sort(key=lambda op: op[0])     # stable: same-time verbs keep file order

    scenario = Scenario(source, name, description, duration, bots, seed, incipient,
                        lesions, faults, operator)
    if "defect" in data:
        scenario.defect = _defect(c, data["defect"], duration)
    return scenario


def _defect(c, t, duration):
    """The optional ``[defect]`` table (sim/defect.py)."""
    where = "defect."
    if not isinstance(t, dict):
        c.fail("defect", "expected a table")
    c.unknown(t, ("from_session", "fraction", "amount", "at", "until"), where)
    out = {"from_session": c.get(t, "from_session", int, None, 0, 0xFFFFFFFF, where),
           "fraction": float(c.get(t, "fraction", _NUM, None, 0.0, 1.0, where)),
           "amount": float(c.get(t, "amount", _NUM, None, 0.0, 5.0, where)),
           "at": float(c.get(t, "at", _NUM, 0.0, 0.0, duration, where))}
    until = c.get(t, "until", _NUM, None, 0.0, None, where, optional=True)
    if until is not None and until <= out["at"]:
        c.fail(where + "until", "must be after at (%g), got %g" % (out["at"], until))
    out["until"] = None if until is None else float(until)
    return out


def _fault(c, t, i, duration, bots, ids):
    where = "fault[%d]." % i
    c.unknown(t, ("id", "at", "until", "kind", "targets", "params"), where)
    kind = c.get(t, "kind", str, None, None, None, where).replace("-", "_")
    if kind not in KINDS:
        c.fail(where + "kind", "unknown kind %r (one of %s)" % (kind, ", ".join(KINDS)))
    has_targets, spec = KINDS[kind]
    fid = c.get(t, "id", str, "", None, None, where)
    at = float(c.get(t, "at", _NUM, None, 0.0, duration, where))
    until = c.get(t, "until", _NUM, None, 0.0, None, where, optional=True)
    if until is not None:
        until = float(until)
        if until <= at:
            c.fail(where + "until", "must be after at (%g), got %g" % (at, until))
    targets = None
    if has_targets:
        targets = t.get("targets")
        if targets is None:
            c.fail(where + "targets", "required for kind %r: a bot count, a list of bot "
                   "ids, or the id of an earlier fault" % kind)
        if isinstance(targets, bool):
            c.fail(where + "targets", "expected a count, a list or a fault id")
        if isinstance(targets, int):
            if not 1 <= targets <= bots:
                c.fail(where + "targets", "count must be 1..%d, got %d" % (bots, targets))
        elif isinstance(targets, list):
            if not targets or not all(isinstance(b, int) and not isinstance(b, bool)
                                      and 0 <= b < bots for b in targets):
                c.fail(where + "targets", "expected bot ids 0..%d, got %r" % (bots - 1, targets))
            targets = tuple(targets)
        elif isinstance(targets, str):
            if targets not in ids:
                c.fail(where + "targets", "no earlier fault with id %r (known: %s)"
                       % (targets, ", ".join(sorted(ids)) or "none"))
            if ids[targets] > at:
                c.fail(where + "targets", "fault %r starts later (%g s) than this one"
                       % (targets, ids[targets]))
        else:
            c.fail(where + "targets", "expected a count, a list or a fault id, got %r"
                   % (targets,))
    elif "targets" in t:
        c.fail(where + "targets", "kind %r hits no bot: remove targets" % kind)
    params = c.params(c.get(t, "params", dict, {}, None, None, where), spec, where + "params.")
    if kind == "runaway" and params["level"] == 0:
        params["level"] = 100 if params["mode"] == "on_while_off" else 30
    if kind in ("sensor_drift", "bus") and not any(params.values()):
        c.fail(where + "params", "every rate is zero: the fault would do nothing")
    if fid:
        if fid in ids:
            c.fail(where + "id", "duplicate fault id %r" % fid)
        ids[fid] = at
    return Fault(i, fid or None, at, until, kind, targets, params)


class _Checker:
    def __init__(self, source):
        self.source = source

    def fail(self, field, msg):
        raise ScenarioError("%s: %s: %s" % (self.source, field, msg))

    def unknown(self, table, known, where):
        if not isinstance(table, dict):
            self.fail(where.rstrip(".") or "file", "expected a table")
        for k in table:
            if k not in known:
                self.fail(where + k, "unknown field (known: %s)" % ", ".join(known))

    def tables(self, data, key):
        v = data.get(key, [])
        if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
            self.fail(key, "expected [[%s]] tables" % key)
        return v

    def get(self, t, key, types, default, low, high, where, optional=False):
        field = where + key
        if key not in t:
            if default is None and not optional:
                self.fail(field, "required")
            return default
        return self.value(t[key], types, low, high, field)

    def value(self, v, types, low, high, field):
        if types == "site":
            try:
                return parse_site(v)
            except ValueError as e:
                self.fail(field, str(e))
        if isinstance(v, bool) or not isinstance(v, types):
            names = {int: "an integer", float: "a number", str: "a string", dict: "a table"}
            want = names.get(types, "a number")
            self.fail(field, "expected %s, got %r" % (want, v))
        if isinstance(low, tuple):
            if v not in low:
                self.fail(field, "expected one of %s, got %r" % (", ".join(map(repr, low)), v))
        elif low is not None and (v < low or (high is not None and v > high)):
            self.fail(field, "must be %s..%s, got %r" % (low, high if high is not None else "", v))
        return v

    def site(self, t, key, where):
        if key not in t:
            self.fail(where + key, "required")
        return self.value(t[key], "site", None, None, where + key)

    def params(self, given, spec, where):
        self.unknown(given, tuple(spec), where)
        out = {}
        for key, (types, default, low, high) in spec.items():
            v = self.get(given, key, types, default, low, high, where)
            out[key] = float(v) if types is _NUM else v
        return out
