"""Long real-time runs, started in the background when the test session begins.

A scripted session takes a minute of wall clock but little CPU (the hub's VM
ticks at 50 Hz, the swarm is simulated): it need not hold up the rest of the
suite. A test module names its run in ``BACKGROUND = (name, start)`` (or its
runs, in a list of such pairs); when pytest has collected that module's tests
the session hook (tests/conftest.py) calls ``start`` at once, and the
module's fixture takes the result with ``get(name, start).result()`` when its
tests come. Run alone, the fixture starts the run itself and waits for it. A
run that is CPU work, not real time, may go there too when the suite leaves
a core idle most of the time (the recorder's synthetic hour).

Only for runs that a busy machine does not disturb: not beside a flood of a
link as fast as the machine goes (beside the attack tests' floods the demo's
hub stalled), so the tests that flood run after all others (tests/conftest.py,
``FLOOD_FILES``).
"""
import importlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_RUNS = {}


class Run:
    """One command in a scratch directory of its own, with a private nanohub home
    (``env``: more variables for it; ``setup(directory)`` runs first)."""

    def __init__(self, name, argv, timeout=300, setup=None, env=None):
        self.dir = Path(tempfile.mkdtemp(prefix="nanohub-bg-%s-" % name))
        if setup is not None:
            setup(self.dir)
        env = dict(os.environ, **(env or {}))
        env.update(NANOHUB_HOME=str(self.dir / "home"), NANOHUB_RUNTIME_DIR=str(self.dir / "run"))
        for var in ("NANOHUB_PORT", "NANOHUB_KEY", "NANOHUB_CLINIC"):
            env.pop(var, None)
        self._out = open(self.dir / "stdout.txt", "wb")
        self._err = open(self.dir / "stderr.txt", "wb")
        self.timeout = timeout
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdout=self._out,
                                     stderr=self._err, start_new_session=True)
        self.returncode = None

    def result(self):
        """(exit status, stdout, stderr) once the run has ended; a run still going
        ``timeout`` seconds after its start is killed (exit status None)."""
        if self.returncode is None:
            try:
                self.proc.wait(max(0.0, self.started + self.timeout - time.monotonic()))
                self.returncode = self.proc.returncode
            except subprocess.TimeoutExpired:
                self._kill()
            self._out.close()
            self._err.close()
        return (self.returncode, (self.dir / "stdout.txt").read_text(errors="replace"),
                (self.dir / "stderr.txt").read_text(errors="replace"))

    def value(self):
        """What the function of a :func:`call` returned, once the run has ended."""
        rc, out, err = self.result()
        assert rc == 0, "background run: exit status %s\n%s%s" % (rc, out[-2000:], err[-3000:])
        with open(self.dir / "value.pickle", "rb") as f:
            return pickle.load(f)

    def _kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self._kill()
        for f in (self._out, self._err):
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def call(name, module, function, timeout=300):
    """A run of ``module.function()`` (a module of tests/) in an interpreter of its
    own, in the run's directory; :meth:`Run.value` is what it returned."""
    return Run(name, [sys.executable, str(Path(__file__).resolve()), module, function],
               timeout=timeout)


def get(name, start):
    """The run ``name``, started now by ``start()`` unless it already is."""
    if name not in _RUNS:
        _RUNS[name] = start()
    return _RUNS[name]


def close_all():
    while _RUNS:
        _RUNS.popitem()[1].close()


if __name__ == "__main__":         # the interpreter of a call()
    value = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])()
    with open("value.pickle", "wb") as f:
        pickle.dump(value, f)
