"""The nanohub CLI contract where no hub is needed: usage and link errors,
exit codes, one-line messages, --json, key and log files, help texts."""
import json
import socket
import stat
import threading

import pytest

from _cli import nanohub, one_line
from nanohub.host.cli import VERBS
from nanohub.protocol import auditlog

PLAN = """\
session_cap = 1000
site_cap = 500
rate_cap = 100
duration_s = 10

[[site]]
site = 17
target_um = 99999
"""


pytestmark = pytest.mark.usefixtures("home")


class Server:
    """A TCP peer that is not a nanohub: silent, or a MicroPython REPL look-alike."""

    def __init__(self, answer=None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.talk, args=(conn,), daemon=True).start()

    def talk(self, conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                if self.answer and b"\x03" in data:
                    conn.sendall(self.answer)

    def close(self):
        self.sock.close()


def test_no_verb_is_a_usage_error():
    assert nanohub().returncode == 2


def test_an_unknown_verb_is_one_line_and_exit_2():
    proc = nanohub("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice" in one_line(proc)


def test_a_missing_port_says_where_to_find_one():
    proc = nanohub("status")
    assert proc.returncode == 2
    line = one_line(proc)
    assert "nanohub ports" in line and "--port sim" in line


def test_a_refused_connection_is_a_link_error():
    proc = nanohub("--port", "socket://127.0.0.1:1", "status")
    assert proc.returncode == 3
    assert "connection refused" in one_line(proc)


def test_a_missing_device_is_a_link_error():
    proc = nanohub("--port", "/dev/ttyNANOHUB-NONE", "info")
    assert proc.returncode == 3
    assert "no such port" in one_line(proc)


def test_an_invalid_url_is_a_usage_error():
    proc = nanohub("--port", "bogus://x", "status")
    assert proc.returncode == 2
    assert "invalid port" in one_line(proc)


def test_errors_in_json_mode_are_a_json_object_too():
    proc = nanohub("--json", "--port", "socket://127.0.0.1:1", "status")
    assert proc.returncode == 3
    obj = json.loads(proc.stdout)
    assert obj["ok"] is False and obj["exit"] == 3 and obj["error"] == "LinkError"


def test_global_options_may_follow_the_verb_and_its_action():
    proc = nanohub("swarm", "list", "--port", "socket://127.0.0.1:1", "--json")
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["ok"] is False


def _against(answer, verb):
    """``nanohub VERB`` (0.5 s timeout) against a Server(answer): the finished process."""
    server = Server(answer)
    try:
        return nanohub("--port", "socket://127.0.0.1:%d" % server.port, "--timeout", "0.5", verb)
    finally:
        server.close()


def test_a_silent_peer_times_out():
    proc = _against(None, "status")
    assert proc.returncode == 3
    assert "no answer" in one_line(proc)


def test_a_micropython_repl_is_not_a_nanohub():
    proc = _against(b"\r\nMicroPython v1.22.0 on 2024-01-01; linux\r\n>>> ", "info")
    assert proc.returncode == 3
    assert "MicroPython REPL answered" in one_line(proc)
    assert "nanohub flash" in proc.stderr


def test_a_bad_plan_is_refused_before_anything_is_sent(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    proc = nanohub("--port", "socket://127.0.0.1:1", "treat", "start", str(path))
    assert proc.returncode == 2
    line = one_line(proc)
    assert "plan.toml:8" in line and "target_um" in line and "0..65535" in line


def test_a_plan_can_be_checked_alone(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text(PLAN.replace("99999", "50"))
    proc = nanohub("--json", "treat", "start", "--check", str(path))
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["plan"]["sites"][0]["site"] == 17


def test_every_listed_verb_is_available():
    assert [v for v, module, _ in VERBS if module is None] == []


@pytest.mark.parametrize("verb", [v for v, _, _ in VERBS])
def test_every_verb_explains_itself_with_an_example(verb):
    proc = nanohub(verb, "--help")
    assert proc.returncode == 0
    assert "example" in proc.stdout


def test_ports_lists_ports_as_json():
    proc = nanohub("--json", "ports")
    assert proc.returncode == 0
    assert isinstance(json.loads(proc.stdout)["ports"], list)


def test_key_init_writes_a_private_key_and_never_overwrites(tmp_path):
    path = tmp_path / "hub.key"
    proc = nanohub("--json", "key", "init", "--out", str(path), "--hub-id", "0x1234abcd")
    assert proc.returncode == 0, proc.stderr
    assert len(path.read_bytes()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(proc.stdout)["stored"]
    assert open(stored, "rb").read() == path.read_bytes()
    again = nanohub("key", "init", "--out", str(path))
    assert again.returncode == 2 and "refusing to overwrite" in one_line(again)


def test_key_provision_needs_a_key_and_refuses_an_emulated_hub():
    proc = nanohub("--port", "socket://127.0.0.1:1", "key", "provision")
    assert proc.returncode == 2 and "--key FILE" in one_line(proc)
    proc = nanohub("--port", "sim", "key", "provision")
    assert proc.returncode == 2 and "nanohub sim" in one_line(proc)


def _log(n):
    out, chain = b"", auditlog.ZERO_CHAIN
    for i in range(n):
        rec = {"index": i, "t": i, "event": 1, "a": 0, "b": 0, "c": i}
        chain = auditlog.chain_of(chain, auditlog.head_bytes(rec))
        out += auditlog.head_bytes(rec) + chain
    return out


def test_log_verify_accepts_an_intact_log_and_names_the_first_bad_record(tmp_path):
    path = tmp_path / "a.log"
    data = bytearray(_log(10))
    path.write_bytes(data)
    ok = nanohub("--json", "log", "verify", str(path))
    assert ok.returncode == 0 and json.loads(ok.stdout)["records"] == 10
    data[4 * auditlog.SIZE + 12] ^= 1           # tamper with record 4's data
    path.write_bytes(data)
    proc = nanohub("--json", "log", "verify", str(path))
    assert proc.returncode == 1
    obj = json.loads(proc.stdout)
    assert obj["ok"] is False and obj["bad_index"] == 4 and obj["reason"] == "chain break"
    assert "record 4" in one_line(proc)


def test_log_show_prints_one_line_per_record(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(_log(3))
    proc = nanohub("log", "show", str(path))
    assert proc.returncode == 0 and len(proc.stdout.strip().splitlines()) == 3
    obj = json.loads(nanohub("--json", "log", "show", str(path), "--tail", "2").stdout)
    assert [r["index"] for r in obj["records"]] == [1, 2]


def test_log_verify_of_a_missing_file_is_a_usage_error(tmp_path):
    proc = nanohub("log", "verify", str(tmp_path / "none.log"))
    assert proc.returncode == 2
