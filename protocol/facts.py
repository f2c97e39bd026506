"""Facts the hub, the host, the simulator and the documents share, defined once.

The wire layout and the enumerations (hub, bot and alarm states, check bits,
alarm codes, with their meanings) are in :mod:`nanohub.protocol.schema`. This
module holds the rest: capacities, the site geometry, the limits a treatment
plan must keep, and the parameter table. The host and the simulator import it;
the generator (:mod:`nanohub.protocol.gen`) writes what the firmware needs
(``firmware/hub/wire.py``, ``firmware/hub/paramtab.py``) and the documents
(``docs/parameters.md``, the parameter values quoted in ``docs/design-notes.md``).
"""
from . import model, schema

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
# (id, name <= 16 chars, unit <= 6 chars, default, min, max, meaning). Every
# value is an int (fixed point where needed: permille, centi-degrees C); min
# and max are the hub's hard bounds. Setting any parameter (PARAM_SET) must be
# signed. The id is the PARAM_GET/PARAM_SET index: never reuse or renumber one.

PARAMS = (
    (0, "tick_hz", "Hz", 50, 10, 100, "control loop rate"),
    (1, "hb_pause_ms", "ms", 1000, 200, 5000,
     "host link without a signed heartbeat this long: treatment paused"),
    (2, "hb_recall_ms", "ms", 30000, 2000, 120000,
     "host link without a signed heartbeat this long: swarm recalled"),
    (3, "bot_lost_ms", "ms", 500, 100, 5000, "bot silent this long: marked LOST"),
    (4, "bot_quar_ms", "ms", 2000, 200, 20000, "bot silent this long: quarantined"),
    (5, "runaway_ticks", "tick", 1, 1, 10,
     "reports showing a runaway before the bot is quarantined"),
    (6, "runaway_margin", "%", 10, 2, 50,
     "output above the command (percentage points) that counts as a runaway"),
    (7, "systemic_pct", "%", 20, 5, 50,
     "share of the bots in the mouth LOST or quarantined (heat aside) that stops everything"),
    (8, "bus_loss_pct", "%", 30, 5, 90, "bot-bus frame loss over 1 s that raises BUS_LOSS"),
    (9, "lease_ms", "ms", 2000, 100, 5000,
     "lifetime of a DOSE command: a bot not renewed stops delivering"),
    (10, "site_cap", "udu", 200000, 0, 1000000,
     "hard dose cap per site; a plan's site_cap may not exceed it"),
    (11, "session_cap", "udu", 2000000, 0, 10000000,
     "hard dose cap per session; a plan's session_cap may not exceed it"),
    (12, "rate_cap", "udu/s", 5000, 1, 10000,
     "hard dose rate per site; a plan's rate_cap may not exceed it"),
    (13, "sens_throttle", "permil", 600, 300, 900,
     "sensitivity index (of the limit) at which dosing is throttled"),
    (14, "sens_pause", "permil", 800, 400, 1000,
     "sensitivity index at which treatment pauses and an adverse event is recorded"),
    (15, "heat_throttle", "cdegC", 4100, 3800, 4200,
     "tissue temperature (C x 100) at which a site's dosing is throttled"),
    (16, "heat_quar", "cdegC", 4200, 3900, 4300,
     "tissue temperature (C x 100) at which a site's bots are quarantined"),
    (17, "wdt_ms", "ms", 2000, 500, 8000,
     "hardware watchdog timeout, applied at the next boot"),
    (18, "check_ttl_ms", "ms", 30000, 5000, 300000,
     "how long an ARMED hub's pre-treatment checks stay valid"),
    (19, "tlm_status_hz", "Hz", 5, 1, 10,
     "HUB_STATUS rate at boot (TELEM_RATE changes it within the bounds)"),
    (20, "tlm_bots_hz", "Hz", 5, 0, 25,
     "BOT_STATES rate at boot (TELEM_RATE changes it within the bounds)"),
    (21, "tlm_sites_hz", "Hz", 2, 0, 10,
     "SITE_READINGS rate at boot (TELEM_RATE changes it within the bounds)"),
    (22, "runaway_grace", "ms", 700, 100, 3000,
     "after a bot's command went down, time its output may lag before the runaway rule applies"),
    (23, "fresh_ms", "ms", 1000, 100, 5000, "a signed frame may expire at most this far ahead"),
)
PARAM_SIGNED = "PARAM_SET" in schema.AUTH_REQUIRED
"""Whether setting a parameter needs a signed frame (every parameter alike)."""

PARAM_LESS = (  # the first parameter's value must stay strictly below the second's
    ("sens_throttle", "sens_pause"),
    ("heat_throttle", "heat_quar"),
    ("hb_pause_ms", "hb_recall_ms"),
    ("bot_lost_ms", "bot_quar_ms"),
)

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
