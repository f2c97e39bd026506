"""What every atheris harness shares: instrumented imports, figures, the entry.

A harness module defines ``one(data) -> dict of figures`` and calls
``main(one)``. Figures (frames tried, commands tried, ...) are summed over
the run and written as JSON every second to ``$NANOHUB_FUZZ_STATS`` (libFuzzer
ends the process without running Python's exit handlers), so ``fuzz/run.py``
can print them.
"""
import importlib
import json
import os
import sys
import time

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "firmware"))

# Coverage for the code under test. hub.core is left out: atheris 2.3's
# bytecode rewriting breaks its polling loop on Python 3.11 (a local turns into
# an int); everything it calls is instrumented.
INSTRUMENT = ["hub.frame", "hub.commands", "hub.telemetry", "hub.state", "hub.params",
              "hub.audit", "hub.safety", "hub.control", "hub.supervisor", "hub.swarm",
              "hub.checks", "hub.alarms", "hub.hmac", "nanohub.protocol.codec"]

with atheris.instrument_imports(include=["hub", "nanohub"]):
    for _name in INSTRUMENT:
        importlib.import_module(_name)
import hub.core  # noqa: E402,F401  (imported after the block: not instrumented)

from fuzz import props  # noqa: E402  (after the instrumented imports)

TOTALS = {"inputs": 0}
_PATH = os.environ.get("NANOHUB_FUZZ_STATS")
_last = [0.0]


def _save():
    if not _PATH:
        return
    tmp = _PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(TOTALS, f)
    os.replace(tmp, _PATH)


def main(one):
    def test_one_input(data):
        figures = one(data)
        TOTALS["inputs"] += 1
        for k, v in (figures or {}).items():
            TOTALS[k] = TOTALS.get(k, 0) + v
        now = time.monotonic()
        if now - _last[0] >= 1.0:
            _last[0] = now
            _save()

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
