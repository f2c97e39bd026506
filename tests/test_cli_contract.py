"""The CLI contract on every path (DESIGN section 7): exit 0 done, 1 refused,
2 usage, 3 link; one line and no traceback for an expected failure; under
--json one JSON object with ``ok`` (JSON lines for streams)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _waiting import arrived, wait_for

from _cli import nanohub, one_line, short_scenario
from nanohub.host.cli import VERBS
from nanohub.protocol import auditlog, model

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "docs" / "plan-example.toml"
NOWHERE = "socket://127.0.0.1:1"        # nothing listens: a verb that connects exits 3


def one_json_failure(proc, code):
    """Exactly one JSON object on stdout, saying ok false and the exit code."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    obj = json.loads(lines[0])
    assert obj["ok"] is False and obj["exit"] == code and obj["message"]
    one_line(proc)
    return obj


pytestmark = pytest.mark.usefixtures("home")


# --------------------------------------------------- without a hub --

# A bad argument for each verb, found before anything is sent. Verbs not named
# here get an unknown option.
BAD = {
    "ports": ["--timeout", "0"],
    "info": ["--timeout", "-1"],
    "status": ["--baud", "0"],
    "watch": ["--duration", "soon"],
    "swarm": ["deploy", "99-occlusal", "1"],
    "treat": ["start", "/nonexistent/plan.toml"],
    "estop": ["--wait", "x"],
    "arm": ["--timeout", "nan"],
    "disarm": ["extra"],
    "reset-estop": ["--timeout", "0"],
    "alarms": ["ack", "NO_SUCH_ALARM"],
    "consent": ["not-a-patient"],
    "params": ["frob"],
    "log": ["verify", "/nonexistent/x.log"],
    "key": ["init", "--hub-id", "zz"],
    "sim": ["--seed", "x"],
    "flash": ["--bots", "0"],
    "demo": ["--scenario", "no-such-scenario"],
    "study": ["--runs", "0"],
    "record": ["--duration", "x"],
    "report": ["/nonexistent/session.db"],
}


@pytest.mark.parametrize("verb", [v for v, _, _ in VERBS])
def test_every_verb_with_json_and_a_bad_argument_prints_one_json_failure_and_exits_2(
        verb, tmp_path):
    args = BAD.get(verb, ["--no-such-option"])
    proc = subprocess.run([sys.executable, "-m", "nanohub.host.cli", "--json", "--port", NOWHERE,
                           verb, *args], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={k: v for k, v in os.environ.items()
                                             if k != "NANOHUB_PORT"})
    one_json_failure(proc, 2)
    assert list(tmp_path.iterdir()) == [], "a usage error wrote files"    # nothing was done


def test_a_usage_error_from_the_parser_is_json_under_json():
    obj = one_json_failure(nanohub("--json", "frobnicate"), 2)
    assert obj["error"] == "UsageError" and "frobnicate" in obj["message"]
    one_json_failure(nanohub("--json"), 2)


@pytest.mark.parametrize("value", ["0", "-1", "inf"])
def test_a_timeout_of_zero_or_less_is_a_usage_error(value):
    proc = nanohub("--port", NOWHERE, "--timeout=" + value, "status")
    assert proc.returncode == 2
    assert "bad timeout" in one_line(proc)


def test_log_pull_into_a_missing_directory_is_one_line_and_exit_2():
    proc = nanohub("--port", NOWHERE, "log", "pull", "-o", "/nonexistent/dir/x.log")
    assert proc.returncode == 2
    assert "no such directory" in one_line(proc)
    one_json_failure(nanohub("--json", "--port", NOWHERE, "log", "pull", "-o",
                             "/nonexistent/dir/x.log"), 2)


def test_log_verify_of_junk_says_what_is_wrong(tmp_path):
    short = tmp_path / "short.log"
    short.write_bytes(b"not a log")
    proc = nanohub("log", "verify", str(short))
    assert proc.returncode == 1
    line = one_line(proc)
    assert "not a pulled audit log" in line and "None" not in line
    junk = tmp_path / "junk.log"
    junk.write_bytes(bytes(range(200)) * 3)          # 600 bytes: 25 "records" of junk
    line = one_line(nanohub("log", "verify", str(junk)))
    assert "is it a pulled audit log" in line and "None" not in line
    cut = tmp_path / "cut.log"
    cut.write_bytes(_log([(1, 0, 0, 0)] * 3)[:-5])
    line = one_line(nanohub("log", "verify", str(cut)))
    assert "2 records, then 19 bytes" in line and "None" not in line


def _log(events):
    out, chain = b"", auditlog.ZERO_CHAIN
    for i, (event, a, b, c) in enumerate(events):
        rec = {"index": i, "t": i, "event": event, "a": a, "b": b, "c": c}
        chain = auditlog.chain_of(chain, auditlog.head_bytes(rec))
        out += auditlog.head_bytes(rec) + chain
    return out


def test_log_show_names_every_event_instead_of_raw_codes(tmp_path):
    from nanohub.protocol import schema
    ev = {n: v for n, v, _ in schema.ENUMS["EV"]}
    alarm = {n: v for n, v, _ in schema.ENUMS["ALARM"]}
    hub = {n: v for n, v, _ in schema.ENUMS["HUB"]}
    treat = model.BY_NAME["TREAT_START"].id
    events = [(ev["STATE"], hub["ESTOP"], hub["TREATING"], alarm["ESTOP"]),
              (ev["ADVERSE"], 1, 0, 812), (ev["CLAMP"], 17, 1, 900), (ev["KEY"], 1, 0, 0),
              (ev["CMD_FLOOD"], treat, 0, 40)]
    path = tmp_path / "a.log"
    path.write_bytes(_log(events))
    proc = nanohub("log", "show", str(path))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "a=" not in text and "reason 13" not in text
    for word in ("TREATING", "ESTOP", "ADVERSE", "CLAMP", "KEY", "CMD_FLOOD"):
        assert word in text


def test_help_lists_every_exit_code_and_version_goes_to_stdout():
    proc = nanohub("--help")
    assert proc.returncode == 0
    for code in ("0 done", "1 refused", "2 usage", "3 link", "130 interrupted", "70 an"):
        assert code in " ".join(proc.stdout.split())
    proc = nanohub("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("nanohub ") and not proc.stderr


@pytest.mark.slow
def test_flash_dry_run_for_a_named_board_prints_the_plan_without_the_hub_in_nanohub_port():
    proc = nanohub("flash", "--dry-run", "--board", "rp2", env={"NANOHUB_PORT": NOWHERE})
    assert proc.returncode == 0, proc.stderr
    assert "nothing written (dry run)" in proc.stdout


# ------------------------------------------------------- with a hub --

@pytest.fixture(scope="module")
def emu(module_home):
    from nanohub.host import EmulatedHub
    with EmulatedHub(bots=16) as e:
        yield e


def at(emu, *args, **kw):
    return nanohub("--port", emu.url, "--key", str(emu.key_path), *args, **kw)


@pytest.mark.vm
def test_a_tiny_timeout_says_it_timed_out_not_that_the_peer_is_a_stranger(emu):
    proc = at(emu, "--timeout", "0.001", "status")
    if proc.returncode == 0:
        # a quiet loopback hub can answer inside a millisecond (no delayed ACKs
        # since TCP_NODELAY); then there is no timeout to describe
        assert "state" in proc.stdout
        return
    assert proc.returncode == 3
    line = one_line(proc)
    assert "not a nanohub" not in line and "answered, but not" not in line
    assert "timeout" in line or "no answer" in line


@pytest.mark.slow
@pytest.mark.vm
def test_swarm_refuses_a_bot_or_count_the_hub_lacks_and_says_how_many_went(emu):
    proc = at(emu, "swarm", "recall", "99")
    assert proc.returncode == 2 and "no bot 99" in one_line(proc)
    one_json_failure(at(emu, "--json", "swarm", "recall", "99"), 2)
    proc = at(emu, "swarm", "deploy", "10", "99")
    assert proc.returncode == 2 and "16 bots" in one_line(proc)
    first = at(emu, "--json", "swarm", "deploy", "10", "14", "--wait", "0")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["sent"] == 14
    part = at(emu, "--json", "swarm", "deploy", "11", "5", "--wait", "0")
    obj = json.loads(part.stdout)
    assert part.returncode == 0 and obj["ok"] and obj["partial"] and obj["sent"] == 2
    text = at(emu, "swarm", "deploy", "12", "3", "--wait", "0")
    assert text.returncode == 1 and "no docked bot" in one_line(text)
    assert at(emu, "swarm", "recall").returncode == 0
    _wait_docked(emu)


def _wait_docked(emu, deadline_s=30.0):
    from nanohub.host import Hub
    with Hub.open(emu.url, key=emu.key_path) as h:
        wait_for(lambda: all(b["state"] == "DOCKED" for b in h.bots()), deadline_s,
                 "the bots to dock again", interval=0.2)


@pytest.mark.slow
@pytest.mark.vm
def test_log_pull_resume_refuses_another_hubs_log_and_continues_its_own(emu, tmp_path):
    from nanohub.host import EmulatedHub
    mine = tmp_path / "mine.log"
    proc = at(emu, "log", "pull", "-o", str(mine))
    assert proc.returncode == 0, proc.stderr
    with EmulatedHub(bots=4) as other:
        theirs = tmp_path / "theirs.log"
        proc = nanohub("--port", other.url, "log", "pull", "-o", str(theirs))
        assert proc.returncode == 0, proc.stderr
        before = theirs.read_bytes()
        proc = at(emu, "log", "pull", "-o", str(theirs), "--resume")
        assert proc.returncode == 2, proc.stderr
        assert "does not continue the log of hub" in one_line(proc)
        assert theirs.read_bytes() == before
    at(emu, "consent", "4711")          # a new record to continue with
    proc = at(emu, "--json", "log", "pull", "-o", str(mine), "--resume")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["ok"] and obj["verified"] and obj["added"] >= 1


@pytest.mark.slow
@pytest.mark.vm
def test_piped_treat_start_watch_prints_only_json_lines(emu):
    from nanohub.host import Hub
    with Hub.open(emu.url, key=emu.key_path) as h:
        h.consent(4711)
        for site in (10, 66, 148):
            h.deploy(site, 3)
        arrived(h, (10, 66, 148))
        h.arm()
    proc = at(emu, "treat", "start", str(PLAN), "--watch", "--duration", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    objs = [json.loads(line) for line in lines]        # every line is JSON
    assert objs[0]["ok"] is True and objs[0]["command"] == "TREAT_START"
    assert len(objs) > 1
    assert "watching" not in proc.stderr
    with Hub.open(emu.url, key=emu.key_path) as h:
        h.stop_treatment()


@pytest.mark.vm
def test_sim_json_carries_ok():
    env = dict(os.environ)
    env.pop("NANOHUB_PORT", None)
    proc = subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--json", "sim",
                             "--bots", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        obj = json.loads(proc.stdout.readline())
        assert obj["ok"] is True and obj["hub_id"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.vm
def test_study_json_lines_carry_ok_and_its_table_reads_the_same(tmp_path):
    short_scenario(tmp_path)
    env = dict(os.environ)
    env.pop("NANOHUB_PORT", None)
    proc = subprocess.run([sys.executable, "-m", "nanohub.host.cli", "--json", "study",
                           "--scenario", "short.toml", "--runs", "1", "--workers", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(o["ok"] is True for o in objs), objs
    summary = objs[-1]["summary"]
    assert summary["runs"] == 1 and summary["failed_runs"] == 0
    import io
    from nanohub.host.study import print_table
    out = io.StringIO()
    print_table(summary, "short", out)
    text = out.getvalue()
    assert "\x1b" not in text and "study: short, 1 runs (0 failed)" in text
    for what, value, n in summary["rows"]:
        assert any(what in line and value in line and line.rstrip().endswith(str(n))
                   for line in text.splitlines()), (what, text)
    assert "audit logs verified:" in text


def test_an_interrupted_one_shot_verb_under_json_ends_with_one_json_object():
    import signal
    import socket
    silent = socket.create_server(("127.0.0.1", 0))     # accepts, never answers
    env = dict(os.environ)
    env.pop("NANOHUB_PORT", None)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--json", "--port",
                                 "socket://127.0.0.1:%d" % silent.getsockname()[1],
                                 "--timeout", "120", "status"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        conn, _ = silent.accept()       # it is connected and waiting for the hub
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        conn.close()
    finally:
        silent.close()
    assert proc.returncode == 130, err
    assert [json.loads(line) for line in out.strip().splitlines()] == [
        {"ok": False, "error": "Interrupted", "exit": 130, "message": "interrupted"}]
    assert "Traceback" not in err
