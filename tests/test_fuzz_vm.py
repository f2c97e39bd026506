"""A random stream into the emulated hub: the real firmware on the MicroPython VM.

Garbage, oversize runs, mutated and truncated frames, unknown versions and
ids with good CRCs, foreign-schema HELLOs, reads, forged/unsigned/wrong-key/
truncated-tag energy commands and harmless stop commands, in bursts; after
each burst a read answered in order proves the hub judged every byte. The
hub must not crash, hang or reboot, must count exactly what the host codec
rejects and log it by class, must answer each command frame once and refuse
every energy command without a valid tag, and must stay SAFE with its
counter unchanged. ``make fuzz`` runs it for longer (``fuzz/vm_stream.py``).
"""
import pytest

from _fuzzing import ROOT  # noqa: F401  (puts the repo on sys.path)
from fuzz import vm_stream


@pytest.mark.vm
def test_a_random_stream_never_crashes_the_hub_nor_makes_it_act(tmp_path):
    figures, violations = vm_stream.run_stream(seconds=4.0, seed=8, home=tmp_path / "home")
    assert violations == []
    assert figures["bursts"] >= 10 and figures["rejected"] > 100 and figures["commands"] > 50
