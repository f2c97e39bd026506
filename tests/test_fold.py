"""The firmware build folds integer constants across modules (protocol/fold.py):
a board loads none of their names, and the code computes the same."""
import subprocess

import pytest

from nanohub.host import vm
from nanohub.firmware.hub import wire as W
from nanohub.protocol import fold, gen


def _tree(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    fold.table.cache_clear()
    return tmp_path


def test_reads_through_any_alias_become_numbers_and_definitions_private(tmp_path):
    root = _tree(tmp_path, {
        "hub/sup.py": "A = const(4)\nB = const(A | 1)\n_C = const(2)\nLIST = (A, B)\n"
                      "def f(x=B):\n    return x & A\n",
        "hub/tab.py": "P_X = const(7)\n",
        "hub/par.py": "from hub.tab import *\nCOUNT = const(P_X + 1)\n",
        "hub/use.py": "from hub import sup\nfrom hub import par as P\nfrom hub.sup import A, f\n"
                      "_S = sup\n\ndef g():\n    return sup.B + _S.A + P.P_X + P.COUNT + A + f()\n",
    })
    out = {rel: fold.fold(rel, (root / rel).read_text(), root=root)
           for rel in ("hub/sup.py", "hub/par.py", "hub/use.py")}
    assert out["hub/sup.py"].splitlines()[:2] == ["_A = const(4)", "_B = const(4 | 1)"]
    assert "LIST = (4, 5)" in out["hub/sup.py"] and "def f(x=5):" in out["hub/sup.py"]
    assert "return 5 + 4 + 7 + 8 + 4 + f()" in out["hub/use.py"]
    assert "from hub.sup import f\n" in out["hub/use.py"]     # A is no longer imported
    assert "_COUNT = const(7 + 1)" in out["hub/par.py"]
    # the same number of lines: tracebacks on a board point at the source
    for rel, text in out.items():
        assert len(text.splitlines()) == len((root / rel).read_text().splitlines())


def test_a_name_assigned_elsewhere_or_not_an_int_is_left_alone(tmp_path):
    root = _tree(tmp_path, {
        "hub/m.py": "N = const(3)\nS = const('x')\nG = const(1)\n\ndef reset():\n"
                    "    global G\n    G = 2\n",
        "hub/u.py": "from hub import m\nv = m.N + m.G\n",
    })
    assert fold.table(str(root))["hub.m"] == {"N": 3}
    assert fold.fold("hub/u.py", (root / "hub/u.py").read_text(), root=root) == \
        "from hub import m\nv = 3 + m.G\n"


def _on_vm(path, script):
    argv, env = vm.vm_command(["-c", script], heap="1m", path=[path])
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.split()


def test_the_built_firmware_holds_none_of_the_folded_names(tmp_path):
    fold.table.cache_clear()
    folded = {m: sorted(c) for m, c in fold.table().items() if c}
    assert "C_ESTOP" in folded["hub.supervisor"] and "P_LEASE_MS" in folded["hub.params"]
    left = ("left = []\nfor m, names in %r.items():\n"
            "    mod = __import__(m, None, None, ['x'])\n"
            "    left += [n for n in names if hasattr(mod, n)]\n"
            "print(len(left))\n" % folded)
    table = ("from hub import supervisor as S, params as P\n"
             "print([S.update(s, 1 << k) for s in range(5) for k in range(16)])\n"
             "print(P.Params().count, P.TABLE[%d][0])\n" % fold.table()["hub.params"]["P_LEASE_MS"])
    try:
        vm.compile_tree(vm.firmware_dir(), tmp_path)
        built = _on_vm(tmp_path, left + table)
        source = _on_vm(vm.firmware_dir(), left + table)
    except vm.VMNotFound as e:
        pytest.skip(str(e))
    assert built[0] == "0" and int(source[0]) == sum(map(len, folded.values()))
    assert built[1:] == source[1:] and source[-1] == "lease_ms"


def test_the_build_step_folds(tmp_path):
    text = (vm.firmware_dir() / "hub" / "safety.py").read_text()
    assert "supervisor.C_" in text
    assert "supervisor.C_" not in gen.build_text("hub/safety.py", text)


def test_the_build_writes_struct_formats_into_their_readers():
    text = (vm.firmware_dir() / "hub" / "telemetry.py").read_text()
    assert "wire.HUB_STATUS_FMT" in text
    built = gen.build_text("hub/telemetry.py", text)
    assert "wire.HUB_STATUS_FMT" not in built
    assert repr(W.HUB_STATUS_FMT) in built
    slim = gen.build_text("hub/wire.py", "")
    assert "_FMT" not in slim and "MSGS = " in slim      # the tables stay, their formats go


def test_a_built_module_is_named_by_its_module_name(tmp_path):
    """The source name in a .mpy is the module's dotted name, an interned
    string the board holds anyway: a traceback reads ``File "hub.patient"``."""
    try:
        out = vm.compile_tree(vm.firmware_dir(), tmp_path)
    except vm.VMNotFound as e:
        pytest.skip(str(e))
    data = (tmp_path / "hub" / "patient.mpy").read_bytes()
    assert out and b"hub.patient" in data and b"hub/patient.py" not in data
