"""A pulled audit log that was rewritten or cut short fails ``log verify --key``
(issue 14): the hub's keyed checkpoints catch records removed before one, the
head from HUB_STATUS kept beside the file catches a cut or a rewrite after the
last one. Real CLI against an emulated hub running the firmware."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nanohub.host import keys
from nanohub.host.client import Hub
from nanohub.host.emulate.hub import EmulatedHub
from nanohub.protocol import auditlog, schema

EMPTY_HOME = "/nonexistent-nanohub-home"


@pytest.fixture(scope="module")
def pulled(module_home):
    """(log path, key path): a hub's log with a few checkpoints, pulled by the CLI."""
    tmp = module_home
    with EmulatedHub(bots=4, scenario="nominal", seed=1) as emu:
        with Hub.open(emu.url, key=emu.key_path.read_bytes(), timeout=2.0) as hub:
            for i in range(3 * schema.LOG_CHECKPOINT_EVERY):     # PARAM records
                hub.param_set("hb_pause_ms", 1000 + i)
        path = tmp / "hub.log"
        out = ok_json(cli("--json", "log", "pull", "-o", str(path), port=emu, home=tmp / "home"))
        assert out["head_signed"] and out["head_checked"], out
        assert out["acked"] == out["last_index"] + 1, out     # the hub may now rotate them
        key = tmp / "hub.key"
        key.write_bytes(emu.key_path.read_bytes())
    return path, key


def cli(*args, port=None, timeout=60, home=None):
    """The CLI; ``home`` is its key store (default: an empty one, so that only
    --key gives it a key)."""
    argv = [sys.executable, "-m", "nanohub.host.cli"]
    if port is not None:
        argv += ["--port", port.url]
    env = dict(os.environ, NANOHUB_HOME=str(home or EMPTY_HOME))
    env.pop("NANOHUB_KEY", None)
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout,
                          env=env)


def ok_json(proc):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def refused(proc):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def copy(pulled, tmp_path, data=None):
    path, _ = pulled
    dst = tmp_path / "copy.log"
    dst.write_bytes(path.read_bytes() if data is None else data)
    (tmp_path / "copy.log.head").write_bytes((path.parent / "hub.log.head").read_bytes())
    return dst


def rewrite_without(data, drop):
    """The file without the records at positions ``drop``, indexes renumbered
    and the unkeyed chain recomputed: what anyone without the key can do."""
    recs = [r for i, r in enumerate(auditlog.parse_records(data)) if i not in drop]
    out, chain = [], auditlog.ZERO_CHAIN
    for i, r in enumerate(recs):
        r = dict(r, index=i)
        chain = auditlog.chain_of(chain, auditlog.head_bytes(r))
        out.append(auditlog.head_bytes(r) + chain)
    return b"".join(out)


def test_a_pulled_log_verifies_under_the_key_with_its_checkpoints_and_head(pulled):
    path, key = pulled
    out = ok_json(cli("--json", "log", "verify", str(path), "--key", str(key)))
    assert out["verified"] and out["keyed"] and out["head_checked"]
    assert out["checkpoints"] >= 3


def test_a_log_rewritten_without_some_records_fails_at_the_next_checkpoint(pulled, tmp_path):
    data = rewrite_without(pulled[0].read_bytes(), {3, 4})
    path = copy(pulled, tmp_path, data)
    assert ok_json(cli("--json", "log", "verify", str(path)))["verified"]   # unkeyed: passes
    line = refused(cli("log", "verify", str(path), "--key", str(pulled[1]), "--no-head"))
    assert "checkpoint" in line and "removed or rewritten" in line


def test_the_newest_record_rewritten_with_its_chain_recomputed_differs_from_the_head(
        pulled, tmp_path):
    data = pulled[0].read_bytes()
    recs = auditlog.parse_records(data)
    last = dict(recs[-1], t=recs[-1]["t"] + 1)
    forged = auditlog.head_bytes(last) + auditlog.chain_of(recs[-2]["chain"],
                                                          auditlog.head_bytes(last))
    path = copy(pulled, tmp_path, data[:-auditlog.SIZE] + forged)
    assert ok_json(cli("--json", "log", "verify", str(path)))["verified"]   # unkeyed: passes
    line = refused(cli("log", "verify", str(path), "--key", str(pulled[1])))
    assert "rewritten" in line


def test_a_truncated_log_fails_verify_with_the_key(pulled, tmp_path):
    data = pulled[0].read_bytes()
    path = copy(pulled, tmp_path, data[:len(data) - 3 * auditlog.SIZE])
    assert ok_json(cli("--json", "log", "verify", str(path)))["verified"]   # unkeyed: passes
    line = refused(cli("log", "verify", str(path), "--key", str(pulled[1])))
    assert "cut short" in line


def test_a_rewritten_head_file_fails_and_a_missing_one_is_named(pulled, tmp_path):
    data = pulled[0].read_bytes()
    cut = data[:len(data) - 3 * auditlog.SIZE]
    path = copy(pulled, tmp_path, cut)
    last = auditlog.parse_records(cut)[-1]
    head = auditlog.Head.loads((tmp_path / "copy.log.head").read_text())
    head.next, head.chain = last["index"] + 1, last["chain"]      # no key: the tag is stale
    (tmp_path / "copy.log.head").write_text(head.dumps())
    line = refused(cli("log", "verify", str(path), "--key", str(pulled[1])))
    assert "not tagged under the key" in line
    (tmp_path / "copy.log.head").unlink()
    line = refused(cli("log", "verify", str(path), "--key", str(pulled[1])))
    assert "no head file" in line


def test_a_log_verified_under_another_key_fails_at_its_first_checkpoint(pulled, tmp_path):
    other = tmp_path / "other.key"
    other.write_bytes(bytes(range(1, 33)))
    line = refused(cli("log", "verify", str(pulled[0]), "--key", str(other), "--no-head"))
    assert "checkpoint" in line
    out = ok_json(cli("--json", "log", "verify", str(pulled[0]), "--key", str(other),
                      "--old-key", str(pulled[1])))                  # an earlier key is accepted
    assert out["verified"]


def test_verify_takes_the_key_from_the_store_for_the_hub_the_head_file_names(
        pulled, tmp_path, monkeypatch):
    path, key = pulled
    home = tmp_path / "home"
    monkeypatch.setenv("NANOHUB_HOME", str(home))
    head = auditlog.Head.loads((path.parent / "hub.log.head").read_text())
    keys.save_key(head.hub_id, keys.load_key(key))       # as key init / the sim install it
    out = ok_json(cli("--json", "log", "verify", str(path), home=home))
    assert out["keyed"] and out["head_checked"] and out["checkpoints"] >= 3
    data = path.read_bytes()
    cut = copy(pulled, tmp_path, data[:len(data) - 2 * auditlog.SIZE])
    line = refused(cli("log", "verify", str(cut), home=home))
    assert "cut short" in line
