"""hub/loops.py, the portable build of hub/viperbytes.py's loops: what the
translation does, and that the generated COBS loops agree with the reference
codec (the MicroPython tests compare the two builds on the VM)."""
from array import array

import pytest
from cobs import cobs
from hypothesis import given, settings, strategies as st

from _examples import examples

from nanohub.protocol import gen, genloops

SOURCE = '''import micropython


@micropython.viper
def feed(data, i: int, n: int,
         st) -> int:
    """Doc."""
    d = ptr8(data)      # bytes
    s = ptr32(st)
    m = int(wire.MAX)
    s[0] = int(d[i] & 1) + m
    return i


def cobs_encode(src, n: int, dst) -> int:
    return int(len(src))


@micropython.viper
def gather(plan, sw):
    x = ptr16(plan.depth)


@micropython.viper
def states(sw, raw, o: int, first: int, count: int):
    pass


@micropython.viper
def counts(state, n: int, out):
    pass


@micropython.viper
def book(sw, plan, buf, off: int, count: int, i: int, pend: int, now: int, t0: int,
         io) -> int:
    return 0
'''


def test_the_translation_drops_the_decorator_the_casts_and_the_types():
    text = genloops.loops_module("HEADER", SOURCE)
    assert text.startswith("# HEADER\n")
    assert "micropython" not in text and "ptr" not in text and ": int" not in text
    assert "def feed(data, i, n,\n         st):\n" in text
    assert "    d = data      # bytes\n" in text
    assert "    m = wire.MAX\n" in text
    assert "    s[0] = (d[i] & 1) + m\n" in text      # a compound cast keeps its parentheses
    assert "    return (len(src))\n" in text
    assert "def book(sw, plan, buf, off, count, i, pend, now, t0,\n         io):\n" in text
    compile(text, "loops.py", "exec")


def test_a_loop_on_crc_words_is_refused():
    bad = SOURCE.replace("return int(len(src))", "return uint(0xFFFFFFFF)")
    with pytest.raises(ValueError, match="CRC words"):
        genloops.loops_module("HEADER", bad)


def test_the_checked_in_loops_are_the_generated_ones():
    path = gen.ROOT / "firmware" / "hub" / "loops.py"
    assert gen.outputs()[path] == path.read_text()


def _loops():
    ns = {}
    text = (gen.ROOT / "firmware" / "hub" / "loops.py").read_text()
    exec(compile(text.replace("from hub import", "# from hub import"), "loops.py", "exec"), ns)
    return ns


@settings(max_examples=examples(100))
@given(st.binary(max_size=600))
def test_the_generated_cobs_loops_agree_with_the_reference_codec(data):
    loops = _loops()
    out = bytearray(len(data) + len(data) // 254 + 2)
    n = loops["cobs_encode"](data, len(data), out)
    assert bytes(out[:n]) == cobs.encode(data) + b"\0"
    got = bytearray(len(data) + 1)
    state = array("i", (0, 0, 0, 0, len(got), 99))
    i = loops["feed"](out, 0, n, got, state)
    assert i == -1 - n and bytes(got[:state[0]]) == data
