"""The hub as shipped (.mpy, constants inlined) runs a full scenario in 160 KB.

One real session: firmware from compiled bytecode on the MicroPython VM with
``-X heapsize=160k``, 64 bots, the presentation-night cascade, judged on the
simulator's ground truth. The session is the one the recorder's tests read
(tests/conftest.py, ``presentation_night``).
"""
import pytest

from _night import BACKGROUND     # noqa: F401 (the session hook starts it)

from nanohub.host.study.session import outcome

pytestmark = pytest.mark.vm


def test_the_compiled_hub_survives_presentation_night_in_160k_with_64_bots(presentation_night):
    _, s, workdir = presentation_night
    hub_log = (workdir / "hub" / "hub.log").read_text()
    assert "MemoryError" not in hub_log
    res = outcome(s)
    assert res["contained"], res
    assert res["log_ok"]
    assert res["bots_disabled_at_end"] == 64
    assert res["dose_after_disable"] == 0
