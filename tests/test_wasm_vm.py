"""The firmware's tick on a 32-bit MicroPython: the WebAssembly port under Node.

Small ints there are 31-bit, as on every 32-bit board: an int of 2**30 or more
(a CRC-32, a hash word) is a heap object, which the unix VM (64-bit) cannot
show. Here: the codec's golden vectors, a steady treatment tick at 16 and 64
bots allocating nothing, and an ESTOP. ``scripts/ensure-mpwasm.sh`` installs
the VM (make test runs it); without Node or the package these tests skip and
say why.
"""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import wasm  # noqa: E402
from nanohub.firmware.hub import wire as W  # noqa: E402

pytestmark = pytest.mark.skipif(wasm.missing() is not None, reason=str(wasm.missing()))

TICKS = 100
_RESULT = re.compile(r"(PASS|FAIL|SKIP) (\S+?)(?:: (.*))?$")
_ticks = {}


def _tick(bots):
    if bots not in _ticks:
        _ticks[bots] = wasm.run_json(
            ROOT / "tests" / "wasm" / "tick.py", [bots, TICKS],
            path=[ROOT / "firmware", ROOT / "bench" / "mp", ROOT / "tests" / "mp", ROOT / "sim"],
            timeout=600)
    return _ticks[bots]


def test_the_vm_is_32_bit_and_boxes_ints_of_2_to_the_30():
    rc, out, err = wasm.run(ROOT / "tests" / "wasm" / "probe.py")
    assert rc == 0, err
    maxsize, boxed = map(int, out.split())
    assert maxsize == 2**31 - 1
    assert boxed > 0


def test_the_golden_vectors_pass_on_the_32_bit_vm():
    rc, out, err = wasm.run(ROOT / "tests" / "mp" / "mprun.py", ["test_frame_vectors"],
                            path=[ROOT / "firmware", ROOT / "tests" / "mp", ROOT / "sim"], heap="2m")
    results = [m.groups() for m in map(_RESULT.match, out.splitlines()) if m]
    failed = [r for r in results if r[0] == "FAIL"]
    passed = [r for r in results if r[0] == "PASS"]
    assert rc == 0 and not failed, out + err
    assert len(passed) >= 10, out
    # the portable loops are what runs here: this port has no native emitter
    assert ("SKIP", "test_frame_vectors.test_the_viper_loops_match_the_portable_ones_byte_for_byte",
            "no native emitter on this port: only the portable loops exist") in results


@pytest.mark.parametrize("bots", [16, 64])
def test_a_steady_treatment_tick_allocates_nothing_on_32_bit(bots):
    r = _tick(bots)
    assert r["maxsize"] == 2**31 - 1
    assert r["state"] == r["state_end"] == W.HUB_TREATING, r
    assert r["frame_calls"]["Rx.feed"] >= TICKS and r["frame_calls"]["Tx.finish"] >= TICKS, r
    assert r["frame_alloc"] == {"Rx.feed": 0, "Tx.finish": 0}, r
    assert r["alloc_bytes"] == 0, "hub.tick allocated %d B over %d ticks at %d bots: %r" % (
        r["alloc_bytes"], TICKS, bots, r)


@pytest.mark.parametrize("bots", [16, 64])
def test_an_estop_during_treatment_stops_every_bot_on_32_bit(bots):
    r = _tick(bots)
    assert r["estop_ack"] == W.ACKS_ACCEPTED, r
    assert r["estop_state"] == W.HUB_ESTOP, r            # in the same poll
    assert (r["disabled"], r["acting"]) == (bots, 0), r


def test_a_board_boots_the_built_firmware_in_less_heap_than_its_source(tmp_path):
    """bench/mp/bootheap.py (row 14's total) as a board boots: from the .mpy
    files ``nanohub flash`` writes, the heap and the interned names are
    smaller than from source (constants, formats and source names folded)."""
    from bench import vm32
    from bench.emu import compile_firmware
    built, _ = compile_firmware(tmp_path / "mpy")
    mpy, src = vm32._boot(built), vm32._boot(ROOT / "firmware")
    assert 0 < mpy["after boot"] < src["after boot"]
    assert 0 < mpy["names"] < src["names"] and mpy["pools"] <= src["pools"]
