"""Treatment plans: a TOML file, checked in full before anything is sent.

    session_cap = 200000     # micro dose units for the whole session
    site_cap = 50000         # micro dose units per site
    rate_cap = 500           # micro dose units per second per site
    duration_s = 600         # 0: no time limit

    [[site]]
    tooth = 14               # universal numbering 1..32
    surface = "occlusal"     # occlusal, mesial, distal, buccal, lingual
    target_um = 40           # target lesion depth, micrometres
    bots = 2                 # bots to deploy there (default 1)

    [[site]]
    site = 17                # or the site index directly (docs/parameters.md)

A site index is (tooth - 1) * 5 + surface index. The limits (sites per
plan, the caps' hard maxima, bots per site...) come from the schema
(``nanohub.protocol.facts``, docs/parameters.md), and the hub checks the same
ones; it also refuses caps above its current parameters. This module rejects
what no hub would accept.
"""
import re
import sys
from dataclasses import dataclass, field

from nanohub.protocol import facts

from .errors import PlanError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SURFACES = facts.SURFACES
TEETH = facts.TEETH
SITES = facts.SITES
MAX_SITES = facts.PLAN_SITES_MAX   # the hub holds this many plan sites

_TOP = {key: (lo, hi, True) for key, _, lo, hi, _ in facts.PLAN_LIMITS}  # key: (min, max, required)
_TEXT = ("name", "notes")
_LIMIT = {key: (lo, hi) for key, _, lo, hi, _ in facts.PLAN_SITE_LIMITS}
_SITE = {
    "site": _LIMIT["site"] + (False,),
    "tooth": (1, TEETH, False),
    "target_um": _LIMIT["target_um"] + (True,),
    "bots": _LIMIT["bots"] + (False,),        # default: the minimum
}
_FIELD = {row[0]: row[1] for row in facts.PLAN_LIMITS + facts.PLAN_SITE_LIMITS}  # key: wire field


def site_index(tooth, surface):
    return facts.site_index(tooth, surface)


def site_name(site):
    """'14-occlusal' for a site index; the bare number if out of range."""
    if 0 <= site < SITES:
        return "%d-%s" % facts.site_tooth(site)
    return str(site)


@dataclass
class PlanSite:
    site: int
    target_um: int
    bots: int = 1


@dataclass
class Plan:
    session_cap: int
    site_cap: int
    rate_cap: int
    duration_s: int
    sites: list = field(default_factory=list)
    name: str = ""
    source: str = ""

    def to_frame(self):
        """(fields, records) of a TREAT_START frame."""
        fields = {_FIELD[k]: getattr(self, k) for k, *_ in facts.PLAN_LIMITS}
        records = [{_FIELD[k]: getattr(s, k) for k, *_ in facts.PLAN_SITE_LIMITS}
                   for s in self.sites]
        return fields, records

    def above_defaults(self):
        """Notes for caps above the hub parameter's default: a hub with default
        parameters refuses them (BOUNDS) until the parameter is raised."""
        out = []
        for key in ("session_cap", "site_cap", "rate_cap"):
            default = facts.param_default(key)
            if getattr(self, key) > default:
                out.append("%s %d is above the hub's default %s parameter (%d): a hub refuses "
                           "it unless that parameter was raised (nanohub params set %s ...)"
                           % (key, getattr(self, key), key, default, key))
        return out

    def to_dict(self):
        return {"name": self.name, "session_cap": self.session_cap, "site_cap": self.site_cap,
                "rate_cap": self.rate_cap, "duration_s": self.duration_s,
                "sites": [{"site": s.site, "name": site_name(s.site), "target_um": s.target_um,
                           "bots": s.bots} for s in self.sites]}


class _Where:
    """Finds the line of a key in the TOML text, for error messages."""

    def __init__(self, path, text):
        self.path, self.lines = path, text.splitlines()

    def line(self, key=None, site=None):
        block, seen = None, -1
        for n, raw in enumerate(self.lines, 1):
            line = raw.strip()
            if re.match(r"\[\[\s*site\s*\]\]", line):
                seen += 1
                block = seen
                if site == seen and key is None:
                    return n
                continue
            if line.startswith("["):
                block = "other"
                continue
            if key and block == site and re.match(r"%s\s*=" % re.escape(key), line):
                return n
        return None

    def error(self, message, key=None, site=None):
        n = self.line(key, site)
        where = "%s:%d" % (self.path, n) if n else str(self.path)
        return PlanError("%s: %s" % (where, message))


def _int(where, table, key, lo, hi, required, site=None):
    label = key if site is None else "site #%d %s" % (site + 1, key)
    if key not in table:
        if required:
            raise where.error("%s is missing (an integer %d..%d)" % (label, lo, hi), site=site)
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error("%s must be an integer %d..%d, not %r" % (label, lo, hi, value), key, site)
    if not lo <= value <= hi:
        raise where.error("%s = %d is out of range %d..%d" % (label, value, lo, hi), key, site)
    return value


def _unknown(where, table, allowed, site=None):
    for key in table:
        if key not in allowed:
            what = "field" if site is None else "site #%d field" % (site + 1)
            raise where.error("unknown %s %r (allowed: %s)" % (what, key, ", ".join(allowed)),
                              key, site)


def _site(where, n, entry):
    if not isinstance(entry, dict):
        raise where.error("site #%d must be a [[site]] table" % (n + 1), site=n)
    _unknown(where, entry, tuple(_SITE) + ("surface",), n)
    values = {k: _int(where, entry, k, *spec, site=n) for k, spec in _SITE.items()}
    index = values["site"]
    tooth, surface = values["tooth"], entry.get("surface")
    if tooth is not None or surface is not None:
        if tooth is None or surface is None:
            raise where.error("site #%d needs both tooth (1..%d) and surface (%s)"
                              % (n + 1, TEETH, ", ".join(SURFACES)), site=n)
        if not isinstance(surface, str) or surface.lower() not in SURFACES:
            raise where.error("site #%d surface %r is not one of %s"
                              % (n + 1, surface, ", ".join(SURFACES)), "surface", n)
        by_tooth = site_index(tooth, surface.lower())
        if index is not None and index != by_tooth:
            raise where.error("site #%d: site = %d but tooth %d %s is site %d"
                              % (n + 1, index, tooth, surface, by_tooth), "site", n)
        index = by_tooth
    if index is None:
        raise where.error("site #%d needs site = 0..%d or tooth + surface" % (n + 1, SITES - 1),
                          site=n)
    return PlanSite(index, values["target_um"], values["bots"] or _LIMIT["bots"][0])


def parse(text, path="<plan>"):
    """A validated Plan from TOML text; raises PlanError naming file and line."""
    where = _Where(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError("%s: not valid TOML: %s" % (path, e)) from None
    _unknown(where, data, tuple(_TOP) + _TEXT + ("site",))
    values = {k: _int(where, data, k, *spec) for k, spec in _TOP.items()}
    if values["site_cap"] > values["session_cap"]:
        raise where.error("site_cap (%d) is above session_cap (%d)"
                          % (values["site_cap"], values["session_cap"]), "site_cap")
    entries = data.get("site", [])
    if not isinstance(entries, list) or not entries:
        raise where.error("the plan has no [[site]] entry: add at least one")
    if len(entries) > MAX_SITES:
        raise where.error("%d sites: a plan names at most %d (the hub holds no more)"
                          % (len(entries), MAX_SITES))
    sites, seen = [], {}
    for n, entry in enumerate(entries):
        s = _site(where, n, entry)
        if s.site in seen:
            raise where.error("site #%d repeats site %d (%s) of site #%d"
                              % (n + 1, s.site, site_name(s.site), seen[s.site] + 1), site=n)
        seen[s.site] = n
        sites.append(s)
    name = data.get("name", "")
    if not isinstance(name, str):
        raise where.error("name must be a string", "name")
    return Plan(sites=sites, name=name, source=str(path), **values)


def load(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise PlanError("plan file %s not found" % path) from None
    except OSError as e:
        raise PlanError("cannot read plan file %s: %s" % (path, e.strerror or e)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanError("%s: not a UTF-8 text file" % path) from None
    return parse(text, path)


def parse_site(text):
    """A site from the command line: an index (17) or tooth-surface (14-occlusal)."""
    text = str(text).strip().lower()
    if text.isdigit():
        site = int(text)
        if site < SITES:
            return site
        raise PlanError("site %s is out of range 0..%d" % (text, SITES - 1))
    tooth, sep, surface = text.partition("-")
    matches = [s for s in SURFACES if surface and s.startswith(surface)]
    if sep and tooth.isdigit() and 1 <= int(tooth) <= TEETH and len(matches) == 1:
        return site_index(int(tooth), matches[0])
    raise PlanError("bad site %r: give an index 0..%d or TOOTH-SURFACE such as 14-occlusal "
                    "(teeth 1..%d; surfaces %s)" % (text, SITES - 1, TEETH, ", ".join(SURFACES)))
