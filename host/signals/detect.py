"""Run the MaxSPRT over sessions in time order, for every group.

Groups: every session together (``all``), and each value of the firmware
version, the plan and the bot batch. For each group and the chosen metric:

* Poisson form: the group's sessions in time order, each expected to carry
  ``baseline`` events (a rate per session under the null hypothesis): from
  ``--baseline`` or estimated from the ``reference`` oldest sessions, which
  are then not surveilled. Upper limit T in expected events.
* Binomial form (groups other than ``all``): each event in a session of the
  group is a case, each event in a session outside it a control; the
  matching ratio z is the number of outside sessions per group session over
  the period in which both have sessions (it starts at the later of their
  first sessions; both stated in the output). Upper limit N in events.
"""
from dataclasses import dataclass, field

from .maxsprt import BinomialMaxSPRT, PoissonMaxSPRT
from .sessions import GROUPS, METRICS


@dataclass
class GroupResult:
    group: str               # all, firmware, plan, batch
    value: str
    sessions: int
    rates: dict              # metric -> events per session
    form: str
    test: dict               # the test's stated parameters
    events: float = 0
    expected: float = 0
    llr: float = 0.0
    max_llr: float = 0.0
    signal: bool = False
    signal_session: int = None      # index (in the surveilled sessions) of the signalling one
    signal_path: str = None
    series: list = field(default_factory=list)   # (session index, events, expected, llr)

    def to_dict(self):
        d = dict(self.__dict__)
        d["series"] = [list(s) for s in self.series]
        return d


def rates(sessions):
    n = len(sessions) or 1
    return {m: round(sum(getattr(s, m) for s in sessions) / n, 4) for m in METRICS}


def baseline_rate(sessions, metric):
    if not sessions:
        return None
    return sum(getattr(s, metric) for s in sessions) / len(sessions)


def run(sessions, metric="nano", form="poisson", baseline=None, reference=0, alpha=0.05,
        min_events=1, upper=None, groups=GROUPS):
    """(surveilled sessions, baseline, results); results: one GroupResult per group value."""
    if metric not in METRICS:
        raise ValueError("metric must be one of %s" % ", ".join(METRICS))
    ref, watch = sessions[:reference], sessions[reference:]
    if baseline is None:
        baseline = baseline_rate(ref, metric)
    out = []
    cells = [("all", "all", watch)]
    for g in groups:
        for value in sorted({getattr(s, g) for s in watch}):
            cells.append((g, value, [s for s in watch if getattr(s, g) == value]))
    for g, value, members in cells:
        if form == "binomial":
            if g == "all":
                continue
            out.append(_binomial(g, value, members, watch, metric, alpha, min_events, upper))
        else:
            out.append(_poisson(g, value, members, metric, baseline, alpha, min_events, upper))
    return watch, baseline, out


def _poisson(g, value, members, metric, baseline, alpha, M, upper):
    T = upper if upper else max(1.0, baseline * len(members))
    test = PoissonMaxSPRT(T, alpha, M)
    r = GroupResult(g, value, len(members), rates(members), "poisson",
                    dict(test.describe(), baseline_per_session=round(baseline, 4)))
    for i, s in enumerate(members):
        if test.ended:
            break
        if test.add(getattr(s, metric), baseline):
            r.signal, r.signal_session, r.signal_path = True, i, s.path
        look = test.looks[-1]
        r.series.append((i, look.events, round(look.expected, 4), round(look.llr, 4)))
        r.max_llr = max(r.max_llr, look.llr)
    r.events, r.expected = test.c, round(test.mu, 4)
    r.llr = test.looks[-1].llr if test.looks else 0.0
    return r


def _binomial(g, value, members, watch, metric, alpha, M, upper):
    inside = set(id(s) for s in members)
    # a comparison needs both streams at once: from when both have sessions
    first_in = next((i for i, s in enumerate(watch) if id(s) in inside), len(watch))
    first_out = next((i for i, s in enumerate(watch) if id(s) not in inside), len(watch))
    start = max(first_in, first_out)
    window = watch[start:]
    n_in = sum(1 for s in window if id(s) in inside)
    z = max(len(window) - n_in, 1) / max(n_in, 1)
    total = sum(getattr(s, metric) for s in window)
    N = int(upper) if upper else max(1, total)
    test = BinomialMaxSPRT(N, z, alpha, M)
    r = GroupResult(g, value, len(members), rates(members), "binomial",
                    dict(test.describe(), from_session=start + 1))
    for i, s in enumerate(watch):
        if i < start:
            continue
        if test.ended:
            break
        k = getattr(s, metric)
        if not k:
            continue
        hit = test.add(k, 0) if id(s) in inside else test.add(0, k)
        if hit:
            r.signal, r.signal_session, r.signal_path = True, i, s.path
        look = test.looks[-1]
        r.series.append((i, look.events, round(look.expected, 4), round(look.llr, 4)))
        r.max_llr = max(r.max_llr, look.llr)
    r.events, r.expected = test.c, round(test.n / (1 + z), 4)
    r.llr = test.looks[-1].llr if test.looks else 0.0
    return r
