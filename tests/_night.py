"""One presentation night (64 bots), recorded, on the hub as shipped: compiled
bytecode in a 160 KB heap. The heap test and the recorder's tests judge this
one session (tests/conftest.py, ``presentation_night``); a minute of real time
and little CPU, so it runs in the background from the start of the test
session (tests/_background.py).

In the run's directory: ``fw/`` (the firmware as shipped),
``presentation-night.db`` (the recording) and ``session/`` (the session's
work directory).
"""
import shutil
from pathlib import Path

import _background

NAME = "presentation-night"


def _start():
    return _background.call(NAME, "_night", "record")


BACKGROUND = (NAME, _start)


def result():
    """(db path, Session, session workdir) of the run, started now unless it already is."""
    run = _background.get(*BACKGROUND)
    s = run.value()
    return run.dir / ("%s.db" % NAME), s, run.dir / "session"


def record():
    from nanohub.host import vm
    from nanohub.host.study.record import record_session
    here = Path.cwd()
    fw = here / "fw"
    fw.mkdir()
    vm.compile_tree(vm.firmware_dir(), fw)
    (fw / "main.mpy").unlink()
    shutil.copy(vm.firmware_dir() / "main.py", fw / "main.py")
    return record_session(here / ("%s.db" % NAME), NAME, bots=64, heap="160k",
                          workdir=here / "session", firmware=fw)
