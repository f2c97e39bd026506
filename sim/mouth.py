"""The oral environment: every site of the mouth (teeth x surfaces, the protocol's geometry).

Each site carries a lesion depth, pH, bacterial load and temperature that
evolve on their own (plaque acid, bacterial growth, body heat) and under
treatment (remineralization, bacterial suppression, heating). Equations,
units and sources are in docs/sim.md; the constants below are named there.

Site index = tooth * len(SURFACES) + surface, tooth 0..TEETH-1 in Universal order (tooth
index 0 is Universal #1, the upper right third molar), surfaces in
``SURFACES`` order. Written for CPython (the simulator); time is compressed:
see docs/sim.md, "Time".
"""
import math
import random

from nanohub.protocol import facts

TEETH = facts.TEETH           # the site geometry is the protocol's
SURFACES = facts.SURFACES
NSITES = facts.SITES

# tooth type by position in an arch of 16 (Universal order, either arch)
_ARCH = ("molar",) * 3 + ("premolar",) * 2 + ("canine",) + ("incisor",) * 4 \
    + ("canine",) + ("premolar",) * 2 + ("molar",) * 3
# type: (enamel over cusps/incisal edge, enamel on the axial surfaces,
# dentine between enamel and pulp), micrometres
ANATOMY = {
    "molar": (2500, 1400, 3000),
    "premolar": (2000, 1200, 2800),
    "canine": (1800, 1100, 2800),
    "incisor": (1300, 900, 2300),
}

T_BODY = 36.8          # C, resting oral temperature
PH_REST = 7.0          # resting plaque/saliva pH
PH_CRIT = 5.5          # critical pH of enamel (hydroxyapatite)
PH_WIDTH = 0.12        # pH units: sharpness of the remineralization switch
TAU_PH = 3.0           # s, pH recovery after an acid challenge (Stephan curve, compressed)
TAU_ACID = 6.0         # s, decay of plaque acid production after a sugar intake
SUGAR_EVERY = 25.0     # s, mean interval between sugar intakes (Poisson)
ACID_GAIN = 0.5        # pH drop per log10 of plaque above 4, at full acid
PH_PLAQUE = 0.3        # resting pH lost per log10 of plaque above 6
PH_BUFFER = 0.2        # pH gained per bot at full output (calcium phosphate buffer)
PH_NOISE = 0.01        # pH units per sqrt(s)
GROWTH = 0.3           # 1/s, bacterial growth rate (logistic, compressed)
KILL = 0.07            # log10 per s per bot at full output
B_FLOOR = 2.0          # log10 CFU/mL, detection floor
K_REMIN = 10.0         # um per s per bot at full output, at pH well above critical
K_DEMIN = 4.0          # um per s per pH unit below critical
TAU_T = 2.5            # s, thermal relaxation of a site (not compressed)
HEAT = 0.48           # C per s per bot at full output (1.2 C steady rise per bot)
T_NOISE = 0.01         # C per sqrt(s)
CHEM_DT = 0.1          # s, integration step of the site chemistry


def tooth_type(tooth):
    return _ARCH[tooth % 16]


def site_index(tooth, surface):
    """Site of a tooth (index 0..31) and a surface (index or name)."""
    if isinstance(surface, str):
        surface = _surface(surface)
    if not (0 <= tooth < TEETH and 0 <= surface < len(SURFACES)):
        raise ValueError("no site for tooth %r surface %r" % (tooth, surface))
    return facts.site_index(tooth + 1, surface)


def _surface(name):
    name = name.strip().lower()
    for i, s in enumerate(SURFACES):
        if name == s or name == s[0]:
            return i
    raise ValueError("unknown surface %r (one of %s)" % (name, ", ".join(SURFACES)))


def parse_site(value):
    """A site from an index (0..NSITES-1) or ``"T/surface"`` with T the Universal
    tooth number 1..32, e.g. ``"30/occlusal"`` or ``"30/o"``."""
    if isinstance(value, bool):
        raise ValueError("site must be a number or 'tooth/surface', got %r" % (value,))
    if isinstance(value, int):
        if not 0 <= value < NSITES:
            raise ValueError("site %d out of range 0..%d" % (value, NSITES - 1))
        return value
    if isinstance(value, str) and "/" in value:
        tooth, surface = value.split("/", 1)
        try:
            number = int(tooth.strip().lstrip("#"))
        except ValueError:
            raise ValueError("bad tooth number in site %r" % value) from None
        if not 1 <= number <= TEETH:
            raise ValueError("tooth %d out of range 1..%d (Universal numbering) in %r"
                             % (number, TEETH, value))
        return site_index(number - 1, surface)
    raise ValueError("site must be 0..%d or 'tooth/surface' (e.g. '30/occlusal'), got %r"
                     % (NSITES - 1, value))


def site_name(site):
    tooth, surface = divmod(site, len(SURFACES))
    return "#%d %s" % (tooth + 1, SURFACES[surface])


def enamel_of(site):
    tooth, surface = divmod(site, len(SURFACES))
    cusp, axial, _ = ANATOMY[tooth_type(tooth)]
    return cusp if surface == 0 else axial


def dentine_of(site):
    return ANATOMY[tooth_type(site // len(SURFACES))][2]


class Mouth:
    """Every site of the mouth. ``lesions``: (site, depth um, plaque) triples; plaque
    (log10 CFU/mL carrying capacity) defaults to a lesion's typical 7.8."""

    def __init__(self, seed, lesions=(), incipient=0):
        self.rng = random.Random(seed)
        rng = self.rng
        self.enamel = [enamel_of(s) for s in range(NSITES)]
        self.dentine = [dentine_of(s) for s in range(NSITES)]
        self.depth = [0.0] * NSITES
        self.cap = [6.0 + rng.uniform(-0.3, 0.3) for _ in range(NSITES)]
        self.ph_rest = [PH_REST + rng.uniform(-0.1, 0.1) for _ in range(NSITES)]
        self.temp = [T_BODY] * NSITES
        for site, depth in lesions:
            self.depth[site] = float(depth)
            self.cap[site] = 7.8 + rng.uniform(-0.2, 0.2)
        taken = set(s for s, _ in lesions)
        free = [s for s in range(NSITES) if s not in taken]
        # a few early enamel lesions the plan does not name, as in a real mouth
        self.incipient = sorted(rng.sample(free, incipient))
        for site in self.incipient:
            self.depth[site] = float(rng.randint(80, 300))
            self.cap[site] = 7.0 + rng.uniform(-0.2, 0.2)
        self.bact = [c - 0.2 + rng.uniform(-0.2, 0.1) for c in self.cap]
        self.ph = [self._ph_eq(s, 0.0, 0.0) for s in range(NSITES)]
        self.acid = 0.0               # plaque acid production, 0..1, mouth-wide
        self.sugar = []               # times of sugar intakes, s
        self.t = 0.0
        self._acc = {}                # site -> activity x seconds since last chem step
        self._acc_t = 0.0
        self._next_sugar = rng.expovariate(1.0 / SUGAR_EVERY)

    def pulp_distance(self, site):
        """Micrometres of sound tissue left between the lesion and the pulp."""
        return max(0.0, self.enamel[site] + self.dentine[site] - self.depth[site])

    def readings(self, site):
        """True (temp C x 100, pH x 100, depth um, bacteria log10 x 100)."""
        return (int(round(self.temp[site] * 100)), int(round(self.ph[site] * 100)),
                int(round(self.depth[site])), int(round(self.bact[site] * 100)))

    def _ph_eq(self, s, activity, acid):
        b = self.bact[s]
        return (self.ph_rest[s] - PH_PLAQUE * max(0.0, b - 6.0)
                - acid * ACID_GAIN * max(0.0, b - 4.0) + PH_BUFFER * min(activity, 1.0))

    def step(self, dt, activity):
        """Advance by ``dt`` s with ``activity`` = {site: sum of bot outputs
        (1.0 = one bot at full)} over that interval. The chemistry runs on a
        fixed CHEM_DT grid; activity is averaged over each step."""
        for s, a in activity.items():
            self._acc[s] = self._acc.get(s, 0.0) + a * dt
        self._acc_t += dt
        n = int((self._acc_t + 1e-9) / CHEM_DT)
        if n == 0:
            return False
        mean = {s: v / self._acc_t for s, v in self._acc.items()}
        for _ in range(n):
            self._chem(CHEM_DT, mean)
        self._acc_t -= n * CHEM_DT
        if self._acc_t < 1e-9:
            self._acc_t = 0.0
        # what is left of the interval carries its share of the activity over
        self._acc = {s: a * self._acc_t for s, a in mean.items() if self._acc_t > 1e-9}
        return True

    def _chem(self, dt, mean):
        rng = self.rng
        self.t += dt
        if self.t >= self._next_sugar:
            self.sugar.append(round(self.t, 3))
            self.acid = min(1.0, self.acid + rng.uniform(0.6, 1.0))
            self._next_sugar = self.t + rng.expovariate(1.0 / SUGAR_EVERY)
        self.acid *= math.exp(-dt / TAU_ACID)
        k_ph = 1.0 - math.exp(-dt / TAU_PH)
        k_t = 1.0 - math.exp(-dt / TAU_T)
        sd_ph = PH_NOISE * math.sqrt(dt)
        sd_t = T_NOISE * math.sqrt(dt)
        growth = GROWTH / math.log(10.0) * dt
        acid = self.acid
        for s in range(NSITES):
            a = mean.get(s, 0.0)
            b = self.bact[s]
            b += growth * (1.0 - 10.0 ** (b - self.cap[s])) - KILL * a * dt
            self.bact[s] = max(B_FLOOR, b)
            ph = self.ph[s]
            ph += (self._ph_eq(s, a, acid) - ph) * k_ph + rng.gauss(0.0, sd_ph)
            self.ph[s] = ph
            d = self.depth[s]
            if d > 0.0 or ph < PH_CRIT:
                remin = K_REMIN * a / (1.0 + math.exp(-(ph - PH_CRIT) / PH_WIDTH))
                demin = K_DEMIN * max(0.0, PH_CRIT - ph)
                d += (demin - remin) * dt
                self.depth[s] = min(max(d, 0.0), self.enamel[s] + self.dentine[s])
            t = self.temp[s]
            self.temp[s] = t + (T_BODY - t) * k_t + HEAT * TAU_T * a * k_t \
                + rng.gauss(0.0, sd_t)
