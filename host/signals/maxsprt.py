"""The maximized sequential probability ratio test (MaxSPRT).

Kulldorff M, Davis RL, Kolczak M, Lewis E, Lieu T, Platt R. "A maximized
sequential probability ratio test for drug and vaccine safety surveillance."
Sequential Analysis 30(1):58-78, 2011.

Continuous surveillance: after every observation the log likelihood ratio of
"the rate is raised" (maximized over the raised rate) against "the rate is as
expected" is compared with one flat critical value CV; the test signals the
first time LLR >= CV, and ends without a signal at the upper limit on the
length of surveillance. CV is chosen so that, when nothing is wrong, the
probability of any signal before the upper limit is alpha. No signal is
possible before ``min_events`` events (M).

* Poisson form: ``c`` events observed where ``mu`` were expected.
  LLR = (mu - c) + c ln(c / mu) if c > mu, else 0. Upper limit ``T``: the
  expected count at which surveillance ends.
* Binomial form: each event is a case (in the monitored stream) or a control
  (in the comparison stream), with ``z`` controls expected per case under the
  null (p = 1 / (1 + z) that an event is a case). With ``c`` cases among ``n``
  events: LLR = c ln(c (1+z) / n) + (n-c) ln((n-c)(1+z) / (n z)) if
  c / n > 1 / (1+z), else 0. Upper limit ``N``: the number of events.

The critical values are computed exactly, not simulated:

* Poisson: between events the LLR only falls (its derivative in mu is
  1 - c/mu < 0 while c > mu), so the test can only signal at the arrival of
  its c-th event, and does so iff that event arrives at an expected count
  mu <= a_c, where LLR(c, a_c) = CV. The probability under the null of no
  signal is then a boundary-crossing probability of a unit-rate Poisson
  process, N(a_c) <= c - 1 for every c >= M (and N(T) < c at the last one),
  computed by stepping the distribution of N from one a_c to the next and
  dropping the mass that crossed (Kulldorff et al. 2011, section 3).
* Binomial: the distribution of the number of cases among the first n events,
  stepped event by event, dropping the paths that signalled.
"""
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


# ------------------------------------------------------------------ Poisson --

def poisson_llr(c, mu):
    if c <= mu:
        return 0.0
    if mu <= 0:
        return math.inf
    return (mu - c) + c * math.log(c / mu)


def poisson_boundary(c, cv):
    """a_c: the largest expected count at which c events give LLR >= cv."""
    if c <= 0:
        return 0.0
    lo, hi = 0.0, float(c)              # LLR falls from +inf (mu -> 0) to 0 (mu = c)
    for _ in range(200):
        mid = (lo + hi) / 2
        if poisson_llr(c, mid) >= cv:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, c):
            break
    return lo


def _poisson_pmf(lam, n):
    k = np.arange(n)
    if lam <= 0:
        out = np.zeros(n)
        out[0] = 1.0
        return out
    from math import lgamma
    logs = k * math.log(lam) - lam - np.array([lgamma(i + 1) for i in range(n)])
    return np.exp(logs)


def poisson_alpha(cv, T, M=1):
    """P(the Poisson MaxSPRT with critical value cv signals by T | H0), exactly."""
    p = np.array([1.0])                 # distribution of N at the current time
    t = 0.0
    c = max(1, int(M))
    while True:
        a = min(poisson_boundary(c, cv), T)
        step = a - t
        if step > 0:
            p = np.convolve(p, _poisson_pmf(step, c + 1))[:c + 1]
        else:
            p = np.concatenate([p, np.zeros(max(0, c + 1 - len(p)))])[:c + 1]
        p = p[:c]                        # N(a) >= c: the c-th event came by a: signal
        t = a
        if a >= T:
            return float(1.0 - p.sum())
        c += 1


@lru_cache(maxsize=256)
def poisson_cv(T, alpha=0.05, M=1, tol=1e-7):
    """The critical value giving exactly ``alpha`` (to ``tol``) for upper limit T."""
    if not 0 < alpha < 1 or T <= 0:
        raise ValueError("need 0 < alpha < 1 and T > 0")
    lo, hi = 0.0, 1.0
    while poisson_alpha(hi, T, M) > alpha:
        lo, hi = hi, hi * 2
        if hi > 200:
            raise ValueError("no critical value reaches alpha %g for T=%g, M=%d" % (alpha, T, M))
    if poisson_alpha(0.0, T, M) <= alpha:
        return 0.0                      # M alone keeps alpha (a tiny T)
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if poisson_alpha(mid, T, M) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


# ----------------------------------------------------------------- binomial --

def _xlogy(x, y):
    return 0.0 if x == 0 else x * math.log(y)


def binomial_llr(c, n, z):
    if n <= 0 or c * (1 + z) <= n:
        return 0.0
    d = n - c
    return _xlogy(c, c * (1 + z) / n) + _xlogy(d, d * (1 + z) / (n * z))


def binomial_alpha(cv, N, z, M=1):
    """P(the binomial MaxSPRT with critical value cv signals within N events | H0)."""
    p0 = 1.0 / (1.0 + z)
    dist = np.array([1.0])              # P(c cases among n events, no signal yet)
    signalled = 0.0
    for n in range(1, int(N) + 1):
        nxt = np.zeros(n + 1)
        nxt[:n] += dist * (1 - p0)
        nxt[1:] += dist * p0
        for c in range(max(1, int(M)), n + 1):
            if nxt[c] and binomial_llr(c, n, z) >= cv - 1e-12:
                signalled += nxt[c]
                nxt[c] = 0.0
        dist = nxt
    return float(signalled)


@lru_cache(maxsize=256)
def binomial_cv(N, z, alpha=0.05, M=1):
    """(cv, attained alpha): the smallest LLR value among the test's possible
    outcomes whose signalling probability stays <= alpha (events are discrete,
    so the attained alpha is at or below the one asked for)."""
    values = sorted({round(binomial_llr(c, n, z), 12) for n in range(1, int(N) + 1)
                     for c in range(max(1, int(M)), n + 1)} - {0.0})
    lo, hi = 0, len(values)             # first value index whose alpha <= target
    while lo < hi:
        mid = (lo + hi) // 2
        if binomial_alpha(values[mid], N, z, M) <= alpha:
            hi = mid
        else:
            lo = mid + 1
    if lo == len(values):
        return math.inf, 0.0
    return values[lo], binomial_alpha(values[lo], N, z, M)


# ----------------------------------------------------------------- running --

@dataclass
class Look:
    """The test after one observation."""
    events: float
    expected: float
    llr: float
    signal: bool


class _Sequential:
    """What both forms share: the events so far (``c``), how much of its upper
    limit the test has spent (``spent`` of ``limit``), the looks and the first
    that signalled."""

    def __init__(self, alpha, M, limit):
        self.alpha, self.M, self.limit = alpha, int(M), limit
        self.c = 0
        self.spent = 0
        self.signal_at = None
        self.looks = []

    @property
    def ended(self):
        return self.signal_at is not None or self.spent >= self.limit

    def _look(self, llr, cv, within, expected):
        """Record one look; it signals (the first time only) when there are at
        least M events, the log-likelihood ratio reaches ``cv`` and the test is
        still ``within`` its upper limit."""
        sig = self.signal_at is None and self.c >= self.M and llr >= cv and within
        if sig:
            self.signal_at = len(self.looks)
        self.looks.append(Look(self.c, expected, llr, sig))
        return sig


class PoissonMaxSPRT(_Sequential):
    """Feed (events, expected) increments; ``signal_at`` is the first look that signalled."""

    form = "poisson"

    def __init__(self, T, alpha=0.05, M=1, cv=None):
        super().__init__(alpha, M, float(T))
        self.T = self.limit
        self.cv = poisson_cv(self.T, alpha, self.M) if cv is None else cv
        self.spent = 0.0

    mu = property(lambda self: self.spent, doc="events expected so far under H0")

    def add(self, events, expected):
        self.c += events
        self.spent += expected
        return self._look(poisson_llr(self.c, self.mu), self.cv, self.mu <= self.T + 1e-12,
                          self.mu)

    def describe(self):
        return {"form": self.form, "alpha": self.alpha, "min_events": self.M,
                "upper_limit_expected": self.T, "critical_value": round(self.cv, 4)}


class BinomialMaxSPRT(_Sequential):
    """Feed (cases, controls) increments; ``z`` controls expected per case under H0."""

    form = "binomial"

    def __init__(self, N, z, alpha=0.05, M=1):
        super().__init__(alpha, M, int(N))
        self.N, self.z = self.limit, float(z)
        self.cv, self.attained = binomial_cv(self.N, self.z, alpha, self.M)

    n = property(lambda self: self.spent, doc="cases and controls so far")

    def add(self, cases, controls):
        self.c += cases
        self.spent += cases + controls
        return self._look(binomial_llr(self.c, self.n, self.z), self.cv - 1e-12,
                          self.n <= self.N, self.n / (1 + self.z))

    def describe(self):
        return {"form": self.form, "alpha": self.alpha, "attained_alpha": round(self.attained, 5),
                "min_events": self.M, "upper_limit_events": self.N, "matching_ratio": self.z,
                "critical_value": round(self.cv, 4)}
