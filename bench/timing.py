"""Side-by-side timing: peers run in alternating blocks in one process, and
each keeps its best block, so a slow moment of the machine hits both."""
import gc
import math
import time


def race(contenders, number, repeat=7):
    """Best seconds per call of each zero-argument callable in ``contenders``.

    Blocks of ``number`` calls alternate between the contenders ``repeat``
    times (the order rotates each round); the garbage collector is off inside
    a block, as ``timeit`` does.
    """
    names = list(contenders)
    best = {n: float("inf") for n in names}
    for rnd in range(repeat):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for name in order:
            fn = contenders[name]
            gc.collect()
            gc.disable()
            try:
                t = time.perf_counter()
                for _ in range(number):
                    fn()
                dt = time.perf_counter() - t
            finally:
                gc.enable()
            best[name] = min(best[name], dt / number)
    return best


def once(fn):
    """(seconds, result) of one call."""
    gc.collect()
    t = time.perf_counter()
    res = fn()
    return time.perf_counter() - t, res


def percentile(values, p):
    """The p-th percentile (0..100), nearest rank on sorted values."""
    vals = sorted(values)
    if not vals:
        return float("nan")
    k = max(0, min(len(vals) - 1, math.ceil(p / 100.0 * len(vals)) - 1))
    return vals[k]
