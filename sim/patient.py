"""The patient: the nano-sensitivity index and the adverse events it causes.

The sensitivity index S is dimensionless; 1.0 is the limit. It has three
parts (docs/sim.md, "Patient"):

* acute: follows the current drive (bot output near deep lesions, weighted by
  how little tissue is left between the lesion and the pulp) with a lag;
* exposure: the drive integrated over time, forgetting with a long time
  constant, so that a long treatment sensitizes more than a short one;
* spike: a transient a scenario injects (``sensitivity_spike`` fault).

Nano-sensitivity events (sensory disruption, migraine) happen at random once
S passes their thresholds, more often the higher S is. Pulp heating is judged
against the +5.5 C injury threshold and recorded as a separate adverse event.
"""
import math
import random

from .mouth import NSITES, T_BODY

K_ACUTE = 0.6          # S per unit of drive at steady state
TAU_ACUTE = 3.0        # s
K_EXPOSURE = 0.006     # S per (drive x s) of remembered exposure
TAU_EXPOSURE = 60.0    # s, how long exposure is remembered
L_PULP = 1500.0        # um, e-folding distance of the pulp proximity weight
S_NOISE = 0.004        # physiological fluctuation of S (standard deviation)
TAU_SPIKE_FALL = 6.0   # s, how fast a spike fades once it ends

# kind: (threshold on S, events per s at the threshold, extra per s per unit above)
NANO = {
    "sensory_disruption": (0.9, 0.2, 3.0),
    "migraine": (1.0, 0.3, 3.0),
}
REFRACTORY = 5.0       # s: one episode of a kind is one event, not fifty
PULP_INJURY = 5.5      # C rise at the pulp (Zach & Cohen 1965)
L_HEAT = 2000.0        # um, attenuation of a surface temperature rise toward the pulp


class Patient:
    def __init__(self, mouth, seed):
        self.mouth = mouth
        self.rng = random.Random(seed)
        self.acute = 0.0
        self.exposure = 0.0           # drive x s, leaky
        self.spike = 0.0
        self._spike_to = 0.0
        self._spike_tau = 1.0
        self.S = 0.0
        self.pulp_rise = 0.0          # C, worst site
        self.events = []              # (t_ms, kind, S permille)
        self._last = {}               # kind -> t_ms of its last event

    def weight(self, site):
        """How strongly output at ``site`` reaches the nerve: 1 at the pulp."""
        return math.exp(-self.mouth.pulp_distance(site) / L_PULP)

    def drive(self, activity):
        return sum(a * self.weight(s) for s, a in activity.items())

    def start_spike(self, amount, rise_s):
        self._spike_to = amount
        self._spike_tau = max(rise_s, 0.05)

    def end_spike(self):
        self._spike_to = 0.0
        self._spike_tau = TAU_SPIKE_FALL

    def sens_permille(self):
        return min(65535, max(0, int(round(self.S * 1000))))

    def nano_events(self):
        """Nano-sensitivity events so far (what the PATIENT message counts)."""
        return sum(1 for _, kind, _ in self.events if kind in NANO)

    def step(self, dt, activity, t_ms):
        """Advance by ``dt`` s under ``activity`` = {site: sum of bot outputs}.
        Returns the events that happened, as (t_ms, kind, S permille)."""
        d = self.drive(activity)
        self.acute += (K_ACUTE * d - self.acute) * (1.0 - math.exp(-dt / TAU_ACUTE))
        self.exposure += d * dt - self.exposure * (1.0 - math.exp(-dt / TAU_EXPOSURE))
        self.spike += (self._spike_to - self.spike) * (1.0 - math.exp(-dt / self._spike_tau))
        s = self.acute + K_EXPOSURE * self.exposure + self.spike
        self.S = max(0.0, s + self.rng.gauss(0.0, S_NOISE))
        self.pulp_rise = self._pulp_rise()
        new = []
        for kind, (at, base, slope) in NANO.items():
            if self.S > at and self._rested(kind, t_ms):
                rate = base + slope * (self.S - at)
                if self.rng.random() < 1.0 - math.exp(-rate * dt):
                    new.append(self._event(t_ms, kind))
        if self.pulp_rise > PULP_INJURY and self._rested("pulp_heat", t_ms):
            new.append(self._event(t_ms, "pulp_heat"))
        return new

    def _rested(self, kind, t_ms):
        last = self._last.get(kind)
        return last is None or t_ms - last >= REFRACTORY * 1000

    def _event(self, t_ms, kind):
        self._last[kind] = t_ms
        ev = (t_ms, kind, self.sens_permille())
        self.events.append(ev)
        return ev

    def _pulp_rise(self):
        m = self.mouth
        worst = 0.0
        for site in range(NSITES):
            rise = m.temp[site] - T_BODY
            if rise > 0.05:
                worst = max(worst, rise * math.exp(-m.pulp_distance(site) / L_HEAT))
        return worst
