"""Facts the hub, the host, the simulator and the documents share, defined once.

The wire layout and the enumerations (hub, bot and alarm states, check bits,
alarm codes, with their meanings) are in :mod:`nanohub.protocol.schema`. This
module holds the rest: capacities, the site geometry, the limits a treatment
plan must keep, and the parameter table (its rows are data, read from
``tables.toml``). The host and the simulator import it; the generator
(:mod:`nanohub.protocol.gen`) writes what the firmware needs
(``firmware/hub/wire.py``, ``firmware/hub/paramtab.py``) and the documents
(``docs/parameters.md``, the parameter values quoted in ``docs/design-notes.md``).
"""
from . import model, schema, tables

# ------------------------------------------------------------- capacities --

HEADER_SIZE = schema.HEADER_SIZE
MAX_BOTS = schema.MAX_BOTS
PLAN_SITES_MAX = 36
"""Sites one treatment plan may name: the hub preallocates its plan arrays for
this many (RAM), and refuses a larger TREAT_START with BAD_ARG."""

_TREAT_START = model.BY_NAME["TREAT_START"]
assert 1 <= PLAN_SITES_MAX <= _TREAT_START.max_count, "a full plan must fit one TREAT_START frame"

BOT_STATES = tuple(n for n, _, _ in schema.ENUMS["BOT"])
"""Bot state names in value order (meanings: ``schema.ENUMS["BOT"]``)."""
HUB_STATES = tuple(n for n, _, _ in schema.ENUMS["HUB"])
"""Hub state names in value order (meanings: ``schema.ENUMS["HUB"]``)."""
BOT_AT_SITE = ("DEPLOYED", "ACTIVE")
"""Bot states (``schema.ENUMS["BOT"]``) of a bot at its site: the hub doses
only through such bots, and a plan site needs one (else NO_BOTS)."""
assert set(BOT_AT_SITE) <= set(BOT_STATES)

# ---------------------------------------------------------- site geometry --
# Site index = (tooth - 1) * len(SURFACES) + surface index, tooth the
# Universal number 1..TEETH (1: upper right third molar).

TEETH = 32
SURFACES = ("occlusal", "mesial", "distal", "buccal", "lingual")
SITES = TEETH * len(SURFACES)
assert SITES <= 255, "a site index is a u8 on the wire (0xFF: no site)"


def site_index(tooth, surface):
    """Site of Universal tooth number ``tooth`` (1..TEETH) and a surface (name or index)."""
    if isinstance(surface, str):
        surface = SURFACES.index(surface)
    if not (1 <= tooth <= TEETH and 0 <= surface < len(SURFACES)):
        raise ValueError("no site for tooth %r surface %r" % (tooth, surface))
    return (tooth - 1) * len(SURFACES) + surface


def site_tooth(site):
    """(Universal tooth number 1..TEETH, surface name) of a site index."""
    tooth, surface = divmod(site, len(SURFACES))
    return tooth + 1, SURFACES[surface]


# ------------------------------------------------------------- parameters --
# (id, name <= 16 chars, unit <= 6 chars, default, min, max, meaning), one row
# per parameter in id order, kept as data with its comments in tables.toml.
# The id is the PARAM_GET/PARAM_SET index: never reuse or renumber one.

PARAMS = tables.PARAMS
PARAM_SIGNED = "PARAM_SET" in schema.AUTH_REQUIRED
"""Whether setting a parameter needs a signed frame (every parameter alike)."""

PARAM_LESS = tables.PARAM_LESS
"""Pairs of parameters whose first value must stay strictly below the second's (tables.toml)."""

PARAM = {p[1]: p for p in PARAMS}
PARAM_ID = {p[1]: p[0] for p in PARAMS}


def param_default(name):
    return PARAM[name][3]


def param_bounds(name):
    return PARAM[name][4], PARAM[name][5]


# ------------------------------------------------------------ plan limits --
# What a TREAT_START must keep, checked alike by the host (``nanohub treat
# start --check``, before anything is sent) and the hub. The caps are bounded
# by the hard maximum of their parameter: a hub refuses a cap above the
# parameter's current value (at most that maximum).

U16 = 0xFFFF
PLAN_LIMITS = (  # (plan key, TREAT_START field, min, max, meaning)
    ("session_cap", "session_cap", 1, PARAM["session_cap"][5],
     "micro dose units for the whole session (the hub: at most its session_cap parameter)"),
    ("site_cap", "site_cap", 1, PARAM["site_cap"][5],
     "micro dose units per site, at most session_cap (the hub: at most its site_cap parameter)"),
    ("rate_cap", "rate_cap", 1, PARAM["rate_cap"][5],
     "micro dose units per second per site (the hub: at most its rate_cap parameter)"),
    ("duration_s", "duration", 0, U16, "seconds of treatment; 0: no time limit"),
)
PLAN_SITE_LIMITS = (  # per [[site]] entry / TREAT_START record
    ("site", "site", 0, SITES - 1, "site index; every site at most once in a plan"),
    ("target_um", "target", 0, U16, "target lesion depth, micrometres"),
    ("bots", "bots", 1, MAX_BOTS, "bots to deploy there"),
)
