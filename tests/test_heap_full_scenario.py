"""The hub as shipped (.mpy, constants inlined) runs a full scenario in 160 KB.

One real session: firmware from compiled bytecode on the MicroPython VM with
``-X heapsize=160k``, 64 bots, the presentation-night cascade, judged on the
simulator's ground truth.
"""
import shutil

import pytest

from nanohub.host import vm
from nanohub.host.study.session import outcome, run_session


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("fw")
    vm.compile_tree(vm.firmware_dir(), out)
    (out / "main.mpy").unlink()
    shutil.copy(vm.firmware_dir() / "main.py", out / "main.py")
    return out


def test_the_compiled_hub_survives_presentation_night_in_160k_with_64_bots(compiled, tmp_path):
    s = run_session("presentation-night", bots=64, heap="160k", workdir=tmp_path,
                    firmware=compiled)
    hub_log = (tmp_path / "hub" / "hub.log").read_text()
    assert "MemoryError" not in hub_log
    res = outcome(s)
    assert res["contained"], res
    assert res["log_ok"]
    assert res["bots_disabled_at_end"] == 64
    assert res["dose_after_disable"] == 0
