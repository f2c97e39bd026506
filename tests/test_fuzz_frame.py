"""Short fuzzing of the firmware's frame parser (``hub.frame.Rx``) on CPython.

The host codec is the oracle: on any byte stream, cut into reads anywhere,
the firmware completes exactly one result per delimited chunk, accepts
exactly what the host codec accepts (same fields), drops the rest with the
same error class, and counts every drop. ``make fuzz`` runs the same
property coverage-guided (atheris, ``fuzz/fuzz_rx.py``) for longer.
"""
from hypothesis import given

from _examples import thorough
from _fuzzing import cuts, props, replay_corpus, streams, wire

FAST = thorough(250)


@FAST
@given(streams, cuts)
def test_the_parser_agrees_with_the_host_codec_and_counts_every_drop(data, at):
    props.check_rx(data, at)


@FAST
@given(streams)
def test_a_good_crc_over_any_bytes_is_judged_like_the_host_codec(data):
    props.check_rx(props.fix_crcs(data), ())


def test_every_input_of_the_kept_corpus_still_passes():
    replay_corpus("rx", 50, props.rx_input)


def test_a_byte_at_a_time_gives_the_same_frames_as_one_read():
    stream = b"".join(props.vector_wires())
    one = props.feed_all(props.frame.Rx(), stream)
    each = props.feed_all(props.frame.Rx(), stream, range(1, len(stream)))
    assert one == each and len(one) == len(props.vector_wires())


def test_an_endless_run_without_delimiter_is_dropped_once_as_oversize():
    rx = props.frame.Rx()
    junk = bytes((i % 255) + 1 for i in range(100000))
    got = props.feed_all(rx, junk + b"\0" + props.vector_wires()[0])
    assert got[0] == ("err", wire.ERR_OVERSIZE)
    assert got[1][0] == "ok" and rx.bad[wire.ERR_OVERSIZE] == 1 and rx.frames == 1
