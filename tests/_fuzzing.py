"""Hypothesis strategies shared by the short fuzz tests (tests/test_fuzz_*.py)."""
import struct
import sys
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import props, seed  # noqa: E402

WIRES = props.vector_wires()
wire = props.wire


def replay_corpus(name, at_least, check):
    """``check(data)`` on every input of the kept corpus ``name``, which must
    hold at least ``at_least`` of them."""
    inputs = seed.corpus(name)
    assert len(inputs) >= at_least, "the %s corpus is missing: python fuzz/seed.py" % name
    for data in inputs:
        check(data)


@st.composite
def frames(draw):
    """A frame with a good CRC: any known or unknown id, any length, maybe signed."""
    msg = draw(st.sampled_from(props.MSG_IDS) | st.integers(0, 255))
    payload = draw(st.binary(max_size=40) | st.binary(min_size=470, max_size=520))
    info = wire.MSGS.get(msg)
    if info is not None and draw(st.booleans()):
        payload = draw(st.binary(min_size=info[1], max_size=info[1]))
        if info[3]:
            count = draw(st.integers(0, 5))
            payload = payload[:-1] + bytes((count,)) + draw(
                st.binary(min_size=count * info[3], max_size=count * info[3]))
    flags = draw(st.integers(0, 15))
    key = draw(st.sampled_from((None, props.KEY, props.OTHER_KEY)))
    return props.raw_frame(msg, payload, seq=draw(st.integers(0, 0xFFFF)), flags=flags, key=key,
                           counter=draw(st.integers(0, 0xFFFFFFFF)),
                           tag_len=draw(st.sampled_from((8, 8, 8, 0, 3, 7))),
                           addr=draw(st.integers(0, 255)))


@st.composite
def segments(draw):
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(st.sampled_from(WIRES))
    if kind == 1:
        return props.wire_of(draw(frames()))
    if kind == 2:                                      # one bit flipped
        w = bytearray(draw(st.sampled_from(WIRES)))
        k = draw(st.integers(0, len(w) - 1))
        w[k] ^= 1 << draw(st.integers(0, 7))
        return bytes(w)
    if kind == 3:                                      # cut short
        w = draw(st.sampled_from(WIRES))
        return w[:draw(st.integers(0, len(w) - 1))] + b"\0"
    if kind == 4:
        return draw(st.binary(max_size=60))
    if kind == 5:                                      # no delimiter for a long time
        return draw(st.binary(min_size=500, max_size=700).map(lambda b: b.replace(b"\0", b"\1")))
    if kind == 6:
        return b"\0" * draw(st.integers(1, 3))
    raw = bytearray(draw(frames()))                    # a good CRC over a bad header
    raw[0] = draw(st.integers(0, 255))
    struct.pack_into("<I", raw, len(raw) - 4, __import__("zlib").crc32(bytes(raw[:-4])))
    return props.wire_of(bytes(raw))


streams = st.lists(segments(), max_size=25).map(b"".join)
cuts = st.lists(st.integers(1, 3000), max_size=12)
