"""The README works as written: its walkthrough and library example run
unchanged against an emulated hub, so the README cannot drift from the CLI.

The shell blocks run under ``bash -e`` in a scratch directory that holds the
checkout's ``docs/`` (the walkthrough names docs/plan-example.toml), with this
interpreter's ``bin`` first on PATH and a private NANOHUB_HOME; the
walkthrough (a treatment's seconds of real time) in the background from the
start of the test session (tests/_background.py).
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import _background

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def blocks(lang):
    return re.findall(r"```%s\n(.*?)```" % lang, README, re.S)


def block_after(marker, lang="sh"):
    """The first ``lang`` block after the line containing ``marker``."""
    at = README.index(marker)
    found = re.search(r"```%s\n(.*?)```" % lang, README[at:], re.S)
    assert found, "no %s block after %r" % (lang, marker)
    return found.group(1)


def _docs(cwd):
    (cwd / "docs").symlink_to(ROOT / "docs")


PATH = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}


@pytest.fixture
def scratch(tmp_path):
    _docs(tmp_path)
    env = dict(os.environ, NANOHUB_HOME=str(tmp_path / "home"), **PATH)
    env.pop("NANOHUB_PORT", None)
    env.pop("NANOHUB_KEY", None)
    return tmp_path, env


def bash(script):
    # whatever fails, the emulated hub the script started in the background goes too
    return ["bash", "-e", "-c", "trap '[ -n \"$SIM\" ] && kill $SIM 2>/dev/null' EXIT\n" + script]


def run_sh(script, cwd, env, timeout):
    return subprocess.run(bash(script), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _walkthrough():
    return _background.Run("readme", bash(block_after("A treatment, step by step")),
                           timeout=150, setup=_docs, env=PATH)


BACKGROUND = ("readme", _walkthrough)      # a treatment's seconds, beside the other tests


def test_the_readme_walkthrough_deploys_to_every_site_of_the_example_plan():
    walk = block_after("A treatment, step by step")
    plan = (ROOT / "docs" / "plan-example.toml").read_text()
    from nanohub.host.plan import parse
    sites = {s.site for s in parse(plan).sites}
    from nanohub.host.plan import parse_site
    deployed = {parse_site(m) for m in re.findall(r"nanohub swarm deploy (\S+)", walk)}
    assert sites <= deployed, "the walkthrough does not deploy to %s" % (sites - deployed)


def test_the_readme_walkthrough_runs_as_written():
    walk = block_after("A treatment, step by step")
    assert "treat start docs/plan-example.toml" in walk and "nanohub estop" in walk
    run = _background.get(*BACKGROUND)
    rc, stdout, stderr = run.result()
    out = stdout + stderr
    assert rc == 0, out[-4000:]
    assert "refused" not in out, out
    assert "PAUSED (reason: LINK_LOST)" in stdout      # what the README says to expect
    assert "EMERGENCY STOP: all 16 bots confirmed disabled" in stdout
    assert (run.dir / "session.log").stat().st_size > 0
    assert (run.dir / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_the_readme_first_commands_run_as_written(scratch):
    cwd, env = scratch
    first = block_after("the command lives in `.venv/bin/`")
    proc = run_sh(first.replace('"$PWD/.venv/bin', '"%s' % Path(sys.executable).parent),
                  cwd, env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "state    SAFE" in proc.stdout


def test_the_readme_library_example_runs_as_written(scratch):
    cwd, env = scratch
    code = block_after("**Library.**", "python")
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "SAFE" in proc.stdout
    assert "CONSENT" in proc.stdout         # the arm refusal names the failing check


def test_every_nanohub_line_of_the_readme_parses():
    """Each nanohub command line in the README's shell blocks is valid syntax."""
    import shlex
    from nanohub.host.cli import build_parser
    seen = 0
    for block in blocks("sh"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if not words or not words[0].endswith("nanohub"):
                continue
            argv = []
            for w in words[1:]:
                if w in ("&&", "&", ";", "|", ">", "||"):
                    break
                argv.append(w)
            try:
                build_parser().parse_args(argv)
            except SystemExit as e:
                raise AssertionError("README line does not parse: %s" % line) from e
            seen += 1
    assert seen >= 15
