"""``nanohub treat start`` on an emulated hub: a refusal for lack of bots
names every plan site without bots, and a start without --watch says that
the treatment runs only while a client holds the link."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _waiting import arrived


ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "docs" / "plan-example.toml"


@pytest.fixture
def hub(home):
    from nanohub.host import EmulatedHub, Hub
    with EmulatedHub(bots=16) as emu:
        with Hub.open(emu.url, key=emu.key_path) as h:
            h.consent(4711)
            h.deploy(10, 3)                 # only the first of the plan's three sites
            arrived(h, [10])
            h.arm()
        yield emu


def cli(emu, *args):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "nanohub.host.cli", "--port", emu.url, *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_a_start_without_bots_at_some_sites_names_every_such_site(hub):
    proc = cli(hub, "treat", "start", str(PLAN))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "14-mesial, 30-buccal" in lines[0]
    assert "3-occlusal" not in lines[0]
    assert "nanohub swarm deploy 14-mesial 3" in lines[0]
    proc = cli(hub, "--json", "treat", "start", str(PLAN))
    obj = json.loads(proc.stdout)
    assert obj["ok"] is False and obj["reason"] == "NO_BOTS" and obj["exit"] == 1


def test_a_start_without_watch_says_the_treatment_needs_a_client_on_the_link(hub):
    from nanohub.host import Hub
    with Hub.open(hub.url, key=hub.key_path) as h:
        h.deploy(66, 3)
        h.deploy(148, 3)
        arrived(h, [10, 66, 148])
    proc = cli(hub, "treat", "start", str(PLAN))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first != "TREAT_START: done" and "pauses 1 s after this command exits" in first
    assert "only while a client holds the link" in proc.stdout
    assert "--watch" in proc.stdout
