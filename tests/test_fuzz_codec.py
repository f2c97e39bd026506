"""Short fuzzing of the host codec (``nanohub.protocol.codec``).

On any stream it raises nothing but CodecError, counts what it drops, and a
frame it accepts rebuilds to the same bytes. Encoding then decoding any
message gives back its fields. ``make fuzz`` runs it coverage-guided.
"""
import struct

from hypothesis import given
from hypothesis import strategies as st

from _examples import thorough
from _fuzzing import props, replay_corpus, streams
from nanohub.protocol import codec, model

FAST = thorough(250)


@FAST
@given(streams, st.integers(0, 900))
def test_the_host_codec_only_raises_codec_errors_and_rebuilds_what_it_accepts(data, cut):
    props.check_codec(data, cut)


@FAST
@given(st.sampled_from(model.MESSAGES), st.data())
def test_any_message_decodes_to_what_was_encoded(m, data):
    lay = codec.LAYOUTS[m.id]
    fields = dict(zip(lay.names, lay.fixed.unpack(data.draw(
        st.binary(min_size=lay.size, max_size=lay.size)))))
    records = ()
    if lay.rec is not None:
        n = data.draw(st.integers(0, min(lay.max_count, 6)))
        records = [dict(zip(lay.rec_names, lay.rec.unpack(data.draw(
            st.binary(min_size=lay.rec_size, max_size=lay.rec_size))))) for _ in range(n)]
        fields[m.count_field] = n                      # the codec counts the records itself
    if m.name in ("HELLO", "BUS_HELLO"):
        fields["schema"] = model.FINGERPRINT
    seq = data.draw(st.integers(0, 0xFFFF))
    f = codec.decode(codec.encode(m.id, fields, records, seq=seq))
    assert (f.msg, f.seq, f.fields) == (m.id, seq, fields)
    assert list(f.records) == list(records)


def test_every_input_of_the_kept_corpus_still_passes():
    replay_corpus("codec", 50, props.codec_input)


def test_a_signed_frame_verifies_only_under_its_key():
    raw = props.raw_frame(0x20, b"", seq=9, key=props.KEY, counter=5)
    f = codec.decode(props.wire_of(raw))
    assert codec.verify(f, props.KEY) and not codec.verify(f, props.OTHER_KEY)
    assert struct.unpack("<I", raw[5:9])[0] == 5
