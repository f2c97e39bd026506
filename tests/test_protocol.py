"""The host codec against the construct schema, the golden vectors and
random input."""
import json
import struct

import pytest

from hypothesis import given, settings, strategies as st

from _examples import examples

from nanohub.protocol import codec, gen, model, schema, vectors

VECTORS = json.loads(vectors.PATH.read_text())


def _value(v):
    return bytes.fromhex(v["hex"]) if isinstance(v, dict) else v


def test_generated_files_match_the_schema():
    assert gen.stale() == [], "run: make gen"


def test_golden_vectors_match_the_schema():
    assert vectors.PATH.read_text() == vectors.text(), "run: make gen"


def test_editing_the_schema_without_regenerating_is_caught(monkeypatch):
    wire_path = gen.ROOT / "firmware" / "hub" / "wire.py"
    text = gen.wire_module()
    monkeypatch.setattr(gen, "wire_module", lambda: text.replace("MAX_PAYLOAD = const(", "MAX_PAYLOAD = const(1"))
    assert wire_path in gen.stale()


@pytest.mark.parametrize("v", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vector_decodes_and_reencodes_byte_for_byte(v):
    wire = bytes.fromhex(v["wire"])
    f = codec.decode(wire)
    assert (f.name, f.seq, f.addr, f.flags) == (v["msg"], v["seq"], v["addr"], v["flags"])
    assert f.fields == {k: _value(x) for k, x in v["fields"].items()}
    kw = {}
    if v["tag"]:
        kw = {"key": bytes.fromhex(VECTORS["key"]), "counter": v["counter"]}
        assert codec.verify(f, kw["key"])
        assert not codec.verify(f, bytes.fromhex(VECTORS["other_key"]))
    again = codec.encode(f.msg, f.fields, f.records, seq=f.seq, addr=f.addr,
                         flags=f.flags & ~schema.F_AUTH, **kw)
    assert again == wire


@pytest.mark.parametrize("v", VECTORS["valid"], ids=lambda v: v["name"])
def test_construct_parses_every_payload_like_the_fast_codec(v):
    f = codec.decode(bytes.fromhex(v["wire"]))
    payload = f.body[schema.HEADER_SIZE:len(f.body) - (schema.AUTH_SIZE if f.tag else 0)]
    fields, records = codec.reference_parse_payload(f.msg, payload)
    assert fields == f.fields
    assert records == list(f.records)
    assert codec.reference_build_payload(f.msg, fields, records) == payload


@pytest.mark.parametrize("v", [v for v in VECTORS["invalid"] if "wire" in v], ids=lambda v: v["name"])
def test_invalid_vector_is_rejected_with_its_error(v):
    with pytest.raises(codec.CodecError) as e:
        codec.decode(bytes.fromhex(v["wire"]))
    assert e.value.kind == v["error"]


def test_every_message_has_vectors():
    names = {v["msg"] for v in VECTORS["valid"]}
    assert names == set(model.BY_NAME)
    signed = {v["msg"] for v in VECTORS["valid"] if v["tag"]}
    assert signed == set(schema.AUTH_REQUIRED)


def test_frame_overhead_stays_at_mavlinks():
    # MAVLink 2: 12 bytes unsigned, 25 signed (its signature block carries a
    # 48-bit timestamp for freshness); ours carries counter, expiry and tag
    unsigned = len(codec.encode("TREAT_PAUSE")) - model.BY_NAME["TREAT_PAUSE"].size
    signed = len(codec.encode("ARM", key=b"k" * 32, counter=1))
    assert unsigned < 12 and signed <= 27


def _fields(m):
    out = {}
    for f in m.fields:
        if f.is_bytes:
            out[f.name] = st.binary(min_size=f.size, max_size=f.size)
        else:
            bits = struct.calcsize("<" + f.code) * 8
            if f.code.islower():
                out[f.name] = st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
            else:
                out[f.name] = st.integers(0, (1 << bits) - 1)
    return out


@st.composite
def frames(draw):
    m = draw(st.sampled_from(model.MESSAGES))
    strategies = _fields(m)
    fields = {k: draw(s) for k, s in strategies.items() if k != m.count_field}
    if m.name in ("HELLO", "BUS_HELLO"):
        fields["schema"] = model.FINGERPRINT
    records = []
    if isinstance(m.tail, model.Record):
        rec = _fields(m.tail)
        n = draw(st.integers(0, min(m.max_count, 8)))
        records = [{k: draw(s) for k, s in rec.items()} for _ in range(n)]
    seq = draw(st.integers(0, 0xFFFF))
    addr = draw(st.integers(0, 0xFF))
    signed = draw(st.booleans())
    kw = {"key": b"\x07" * 32, "counter": draw(st.integers(0, 0xFFFFFFFF))} if signed else {}
    return m, fields, records, seq, addr, kw


@settings(max_examples=examples(300), deadline=None)
@given(frames())
def test_every_message_round_trips(frame):
    m, fields, records, seq, addr, kw = frame
    f = codec.decode(codec.encode(m.id, fields, records, seq=seq, addr=addr, **kw))
    assert f.msg == m.id and f.seq == seq and f.addr == addr
    for k, v in fields.items():
        assert f.fields[k] == v
    assert list(f.records) == records
    if kw:
        assert f.counter == kw["counter"] and codec.verify(f, kw["key"])


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(frames(), st.binary(max_size=40)), min_size=1, max_size=6))
def test_garbage_between_frames_costs_only_the_garbage(items):
    stream, want = b"", []
    for (m, fields, records, seq, addr, kw), junk in items:
        stream += junk.replace(b"\0", b"") + b"\0"      # garbage always ends at a delimiter
        stream += codec.encode(m.id, fields, records, seq=seq, addr=addr, **kw)
        want.append((m.id, seq))
    dec = codec.StreamDecoder()
    got = [(f.msg, f.seq) for f in dec.feed(stream) if isinstance(f, codec.Frame)]
    assert got == want


@settings(max_examples=examples(500), deadline=None)
@given(st.binary(max_size=700))
def test_random_bytes_raise_only_codec_errors(data):
    try:
        codec.decode(data)
    except codec.CodecError:
        pass
    dec = codec.StreamDecoder()
    for item in dec.feed(data):
        assert isinstance(item, (codec.Frame, codec.CodecError))


@settings(max_examples=examples(300), deadline=None)
@given(frames())
def test_the_fast_path_gives_the_same_bytes_and_values(frame):
    m, fields, records, seq, addr, kw = frame
    if kw or m.tail == "bytes":
        return
    wire = codec.encode(m.id, fields, records, seq=seq, addr=addr)
    f = codec.decode(wire)
    values = tuple(f.fields[n] for n in m.names)
    flat = tuple(v for r in f.records for v in r.values())
    assert codec.pack(m.id, values, seq=seq, addr=addr, records=flat, count=len(f.records)) == wire
    assert codec.unpack(wire) == (m.id, seq, addr, 0, values + flat)


@pytest.mark.parametrize("v", [v for v in VECTORS["invalid"] if "wire" in v], ids=lambda v: v["name"])
def test_the_fast_path_rejects_invalid_vectors_with_the_same_error(v):
    with pytest.raises(codec.CodecError) as e:
        codec.unpack(bytes.fromhex(v["wire"]))
    assert e.value.kind == v["error"]
