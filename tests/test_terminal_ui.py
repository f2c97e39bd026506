"""The terminal UI on rich: tables that read the same piped, progress bars
only on a terminal (plain lines when asked), tab completion, and nothing
POSIX-only on the Windows paths of the CLI."""
import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nanohub.host import tui

HOST = Path(__file__).resolve().parent.parent / "host"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_piped_table_is_plain_aligned_text():
    out = tui.table(("alarm", "prio", "value>"), [("BOT_LOST", "HIGH", 3),
                                                   ("SENS_PAUSE", "MEDIUM", 812)],
                    stream=io.StringIO())
    assert "\x1b" not in out
    lines = out.splitlines()
    assert lines[0].split() == ["alarm", "prio", "value"]
    assert lines[1].split() == ["BOT_LOST", "HIGH", "3"]
    assert len(lines) == 3
    assert lines[1].index("HIGH") == lines[2].index("MEDIUM")       # columns line up
    assert lines[1].rstrip().endswith("3") and lines[2].rstrip().endswith("812")


def test_a_piped_table_is_never_wrapped():
    wide = "x" * 300
    out = tui.table(("name", "value"), [("long", wide)], stream=io.StringIO())
    assert wide in out


def test_status_reads_as_name_value_lines():
    from nanohub.host.cli.hub import status_text
    st = {"state": "PAUSED", "reason": "LINK_LOST",
          "bots": dict(total=16, docked=7, deployed=9, active=0, returning=0, quarantined=0,
                       disabled=0, lost=0),
          "dose": {"used": 10, "cap": 100, "percent": 10.0}, "scale_percent": 100,
          "sens_permille": 120, "alarms": {"active": 1, "unacked_high": 0},
          "failing_checks": [], "bus_link_percent": 100, "rx_bad": 0}
    text = status_text(st)
    assert text.splitlines()[0] == "state    PAUSED (reason: LINK_LOST)"
    assert "checks   all passing" in text and "\x1b" not in text


def test_a_progress_bar_draws_on_a_terminal_and_is_silent_when_piped():
    term = Terminal()
    bar = tui.Bar("pulling audit log", stream=term)
    for done in range(0, 5):
        bar(done, 4)
    bar.end()
    assert "pulling audit log" in term.getvalue() and "4/4" in term.getvalue()
    piped = io.StringIO()
    bar = tui.Bar("pulling audit log", stream=piped)
    bar(4, 4)
    bar.end()
    assert piped.getvalue() == ""


def test_a_piped_progress_bar_with_lines_prints_each_quarter_once():
    piped = io.StringIO()
    bar = tui.Bar("copied", stream=piped, lines=True, bytes=True)
    for done in range(0, 4097, 256):
        bar(done, 4096)
    bar.end()
    lines = piped.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["0%", "25%", "50%", "75%", "100%"]
    assert "4.0 / 4.0 KB" in lines[-1]


# POSIX-only modules may be imported at the top only where guarded (keyboard.py)
# or in modules that only POSIX features load (the --pty relay)
POSIX_ONLY_OK = {"keyboard.py", "ptyport.py"}


def test_no_hand_written_escape_codes_or_bare_posix_imports_in_the_host():
    for path in HOST.rglob("*.py"):
        text = path.read_text()
        assert "\\x1b[" not in text and "\\033[" not in text, path
        if path.name not in POSIX_ONLY_OK:
            bare = re.search(r"^import (termios|tty|fcntl|pty)\b", text, re.M)
            assert not bare, (path, bare)


def test_the_cli_runs_where_signal_has_no_sighup(monkeypatch, capsys):
    from nanohub.host import cli
    monkeypatch.delattr(signal, "SIGHUP")
    saved = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["--json", "ports"]) == 0
    finally:
        signal.signal(signal.SIGTERM, saved)
    assert '"ok": true' in capsys.readouterr().out


def test_tab_completion_offers_verbs_and_actions(tmp_path):
    pytest.importorskip("argcomplete")
    out = tmp_path / "completions"

    def complete(line):
        env = dict(os.environ, _ARGCOMPLETE="1", COMP_LINE=line, COMP_POINT=str(len(line)),
                   _ARGCOMPLETE_STDOUT_FILENAME=str(out))
        proc = subprocess.run([sys.executable, "-m", "nanohub.host.cli"], env=env,
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return out.read_text().split("\013")

    assert "swarm" in [w.strip() for w in complete("nanohub sw")]
    assert {"list", "deploy", "recall", "hold"} <= set(complete("nanohub swarm "))
