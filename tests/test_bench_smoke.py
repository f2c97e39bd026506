"""The benchmarks (``make bench``, issue 7) run with tiny sizes and give sane
figures. No timing is asserted: a slow machine must not fail these."""
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _cli import tcp_peer  # noqa: E402
from bench import report  # noqa: E402
from nanohub.host.emulate.pace import Pacer  # noqa: E402
from nanohub.host import vm  # noqa: E402


def _vm_or_skip():
    try:
        vm.find_micropython()
    except vm.VMNotFound as e:
        pytest.skip(str(e))


def _by_num(rows):
    return {r.num: r for r in rows}


def _sane(rows):
    for r in rows:
        assert r.status != report.ERROR, (r.num, r.error)
        assert r.figure and r.goal and r.what
        if r.status == report.SHORT:
            assert r.why, "row %s falls short without saying why" % r.num


def test_the_pacing_proxy_relays_every_byte_both_ways_unchanged():
    srv = tcp_peer(lambda conn, d: conn.sendall(d))         # an echo
    seen = []
    data = bytes(range(256)) * 4
    with Pacer("127.0.0.1:%d" % srv.getsockname()[1], baud=921600,
               tap=lambda way, d, t: seen.append((way, len(d)))) as line:
        with socket.create_connection(("127.0.0.1", line.port), timeout=10) as s:
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                chunk = s.recv(4096)
                assert chunk, "the proxy closed the link"
                got += chunk
    srv.close()
    assert got == data
    assert line.stats["up"] == line.stats["down"] == len(data)
    assert sum(n for way, n in seen if way == "up") == len(data)
    assert line.url.startswith("socket://127.0.0.1:")


def test_wire_figures_are_computed_from_the_codec():
    from bench import wire
    rows, data = wire.run(quick=True)
    _sane(rows)
    by = _by_num(rows)
    assert set(by) >= {"3a", "3b", "3c", "3d", "3e", "4"}
    assert 0 < data["shares"][16] < data["shares"][64] < 100
    assert 1 <= data["capacity"] <= 255
    assert wire.bot_states_wire(0) == (0, 0)
    assert wire.bot_states_wire(96)[1] > wire.bot_states_wire(95)[1]   # two frames


def test_codec_and_bulk_benches_run_against_pymavlink():
    pytest.importorskip("pymavlink", reason="make bench installs the bench extra")
    pytest.importorskip("numpy")
    from bench import bulk, codec
    rows, data = codec.run(quick=True)
    _sane(rows)
    assert [r.num for r in rows] == ["1a", "1a'", "1b", "1b'", "1c", "1c'", "1d", "1d'", "1e", "1f"]
    for pair in ("telemetry", "command", "signed command"):
        assert all(v > 0 for v in data[pair].values())
    rows, data = bulk.run(quick=True)
    _sane(rows)
    assert data["n"] == 20000


def test_the_bulk_decoder_drops_bad_frames_and_reads_the_schema_dtype():
    np = pytest.importorskip("numpy")
    from bench import bulk
    from nanohub.protocol import model
    stream = bulk.recording(130, per_frame=64)
    frames = stream.split(b"\0")
    bad = bytearray(frames[1])
    bad[5] = 0x55 if bad[5] != 0x55 else 0x56      # never a delimiter
    arr, dropped = bulk.bulk_decode(frames[0] + b"\0" + bytes(bad) + b"\0" + frames[2] + b"\0")
    assert dropped == 1
    assert len(arr) == 64 + 2
    dt = bulk.dtype_of(model.RECORDS["LogRecord"])
    assert dt.itemsize == model.RECORDS["LogRecord"].size
    assert isinstance(arr, np.ndarray) and arr.dtype.names == model.RECORDS["BotState"].names


def test_firmware_tick_bench_runs_on_the_vm():
    _vm_or_skip()
    from bench import firmware
    rows, data = firmware.run(quick=True)
    _sane(rows)
    for n in (16, 64):
        assert data[n]["state"] == 2                  # treating throughout
        assert data[n]["mean_us"] > 0 and data[n]["host_frames"] > 0
    assert "7" in _by_num(rows)


def test_the_tick_is_counted_in_instructions_one_tick_at_a_time():
    _vm_or_skip()
    import shutil
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    from bench import instructions
    ticks = instructions.count(16, 5)
    assert len(ticks) == 5
    for pieces in ticks:
        assert sum(pieces) > 100_000            # a treating tick of 16 bots, not an empty one
        assert len(pieces) >= 2                 # split at least once by a host-link read
    s = instructions.summary(ticks)
    assert s["min"] <= s["mean"] <= s["p99"] <= s["max"] and 0 < s["wait"] <= s["max"]


def test_estop_bench_measures_a_few_trials_through_a_paced_link():
    _vm_or_skip()
    from bench import estop
    rows, data = estop.run(quick=True, trials=3)
    _sane(rows)
    by = _by_num(rows)
    assert {"5", "5c", "3f", "4b"} <= set(by)
    assert len(data["lat"]) == 3 and all(ms > 0 for ms in data["lat"])
    assert 0 < data["sat"]["share"] < 100


def test_log_pull_bench_pulls_and_verifies_a_small_log():
    _vm_or_skip()
    from bench import logpull
    rows, data = logpull.run(quick=True)
    _sane(rows)
    assert data["n"] >= 300 and data["passes"] >= 1
    assert 0 < data["share"] < 100


def test_heap_probe_reports_a_size():
    _vm_or_skip()
    from bench import heap
    rows, data = heap.run(quick=True)
    _sane(rows)
    assert list(data["tried"]) == [heap.GOAL_KB]


def test_the_runner_prints_the_table_and_writes_markdown(tmp_path, capsys):
    from bench.__main__ import main
    out = tmp_path / "bench.md"
    assert main(["--quick", "--only", "3,4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "telemetry capacity" in printed and "pass" in printed
    text = out.read_text()
    assert text.startswith("# Benchmarks")
    assert "| # | what | figure | goal | result |" in text
    assert "| CPU |" in text and "| date |" in text
