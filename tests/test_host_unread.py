"""A console nobody reads, for minutes, during a treatment with a failing bot
(issue: the hub blocked in the kernel's tty write when its PTY went unread).

The hub runs on the ``unix_tty`` board with its console on a pseudo-terminal;
a host opens it, starts a treatment, then keeps sending heartbeats (1 Hz) but reads
nothing for NANOHUB_UNREAD_S seconds (default 300) while one bot falls
silent for good. The stretch runs in the background from the start of the
pytest session (tests/_unread.py); this test runs last and takes the result.

What the console costs the loop is measured by the hub itself: ``host_us`` in
every HUB_STATUS is the most time its writes to the host link took in one
pass of the loop since the status before. That must stay within 5 ms for
every pass. How late the ticks started (``late_ms``, ``late_n``) is reported
beside it: on a shared machine that is mostly the operating system's doing
(a real-time sleeper beside the hub measures the machine alone), and only a
stall that lasts a good part of the stretch, which is what a hub blocked on
the unread terminal shows, fails the test.
"""
import json

import pytest

import _unread

pytestmark = [pytest.mark.vm, pytest.mark.slow]

HOST_US = 5000         # the host link's writes may take at most this long in one pass
STALL_SHARE = 4        # and none by a quarter of the stretch: a write waiting for a reader
                       # stalls from the moment the terminal is full to the end of it
CONNECT_S = 0.2        # the next reader's HELLO answered within


@pytest.fixture(scope="session")
def unread_hub():
    return _unread.start()      # already running if the session hook saw this test


@pytest.mark.late
def test_a_console_unread_for_minutes_keeps_the_ticks_on_time_and_the_safety_rules_acting(
        unread_hub):
    r = unread_hub.result()
    shown = json.dumps({k: v for k, v in r.items() if k != "traceback"}, indent=1)
    assert "error" not in r, "the unread-hub run failed: %s\n%s\n%s" % (
        r["error"], r.get("traceback", ""), unread_hub.logs())
    assert r["host_us_max"] <= HOST_US, (
        "while the console was unread the hub's writes to it took %d us in one pass of the "
        "loop (at most %d us): %s" % (r["host_us_max"], HOST_US, shown))
    # Tick lateness: reported (see the session summary), failed only on a stall.
    stall_ms = int(r["seconds"] * 1000 / STALL_SHARE)
    assert r["late_max_ms"] <= stall_ms, (
        "a tick started %d ms late while the console was unread (a stall; at most %d ms; "
        "a sleeper beside the hub: %s): %s" % (r["late_max_ms"], stall_ms, r.get("machine"), shown))
    assert r["states"] == ["TREATING"], "the treatment did not run throughout: %s" % shown
    assert r["quarantined"], "the silent bot was never quarantined while unread: %s" % shown
    assert r["connect_s"] is not None and r["connect_s"] < CONNECT_S, (
        "the next reader's HELLO took %s s (limit %s s): %s" % (r["connect_s"], CONNECT_S, shown))
    if r["seconds"] >= 60:      # long enough for the terminal's buffer to fill
        assert r["host_drop"], "telemetry was dropped but no HOST_DROP was audited: %s" % shown
        lost = sum(h["priority"] for h in r["host_drop"])
        assert lost == r["end"]["host_lost"], (
            "ACKs, alarms or reports dropped (%d) differ from those audited (%d): %s"
            % (r["end"]["host_lost"], lost, shown))
