# heap: 2m
"""The golden vectors, decoded and re-encoded by the firmware codec on the VM.

The vectors are generated from the construct schema on CPython; the firmware
codec must agree with them byte for byte and error for error, on both of its
paths: the viper byte loops (where the port has a native emitter) and the
portable ones.
"""
import json
import struct
from array import array

from hub import frame, wire
from hubkit import fields, records
from hub.hmac import tag as hmac_tag
from mptest import SkipTest, eq, true
from wire_names import ERR, M, NAMES

_V = None


def both_paths(fn):
    """Run a test on the viper loops (when the port has them), then the portable ones."""
    def run():
        try:
            for viper in (True, False):
                used = frame.select(viper)
                if viper and not used:
                    continue            # no native emitter here: portable only
                try:
                    fn()
                except AssertionError as e:
                    raise AssertionError("%s path: %s" % ("viper" if viper else "portable", e))
        finally:
            frame.select(True)
    return run


def vectors():
    global _V
    if _V is None:
        import os
        root = os.getenv("NANOHUB_ROOT") or "."
        with open(root + "/protocol/vectors.json") as f:
            _V = json.load(f)
    return _V


def unhex(s):
    return bytes(int(s[i:i + 2], 16) for i in range(0, len(s), 2))


def _value(v):
    return unhex(v["hex"]) if isinstance(v, dict) else v


def decode_one(wire_bytes):
    rx = frame.Rx()
    i = rx.feed(wire_bytes, 0, len(wire_bytes))
    assert rx.ready, "no frame completed"
    eq(i, len(wire_bytes))
    return rx


def test_the_vectors_match_this_schema():
    eq(vectors()["schema"], wire.SCHEMA)


@both_paths
def test_every_valid_vector_decodes_to_its_fields():
    for v in vectors()["valid"]:
        rx = decode_one(unhex(v["wire"]))
        eq(rx.err, 0, v["name"])
        eq(rx.msg, M[v["msg"]], v["name"])
        eq((rx.seq, rx.buf[4], rx.buf[0] & 0xF), (v["seq"], v["addr"], v["flags"]), v["name"])
        names = NAMES[rx.msg][0]
        got = fields(rx)
        for k, name in enumerate(names):
            eq(got[k], _value(v["fields"][name]), v["name"] + "." + name)
        rnames = NAMES[rx.msg][1]
        recs = records(rx)
        eq(len(recs), len(v["records"]), v["name"])
        for r, want in zip(recs, v["records"]):
            for k, name in enumerate(rnames):
                eq(r[k], _value(want[name]), v["name"] + " record." + name)
        if v["counter"] is not None:
            eq(rx.counter, v["counter"], v["name"])


@both_paths
def test_every_valid_vector_encodes_to_the_same_bytes():
    tx = frame.Tx()
    key = unhex(vectors()["key"])
    for v in vectors()["valid"]:
        msg = M[v["msg"]]
        info = wire.MSGS[msg]
        off = tx.begin(msg, v["seq"], v["addr"], v["flags"] & ~wire.F_AUTH)
        vals = [_value(v["fields"][n]) for n in NAMES[msg][0]]
        struct.pack_into(info[0], tx.raw, off, *vals)
        plen = info[1]
        for r in v["records"]:
            struct.pack_into(info[2], tx.raw, off + plen, *[_value(r[n]) for n in NAMES[msg][1]])
            plen += info[3]
        tagger = None
        if v["tag"]:
            def tagger(view, out, at):
                out[at:at + wire.TAG_SIZE] = hmac_tag(key, view, wire.TAG_SIZE)
        n = tx.finish(plen, tagger, v["counter"] or 0)
        eq(bytes(tx.out[:n]), unhex(v["wire"]), v["name"])


@both_paths
def test_signed_vectors_carry_a_tag_the_firmware_verifies():
    key = unhex(vectors()["key"])
    other = unhex(vectors()["other_key"])
    n = 0
    for v in vectors()["valid"]:
        if not v["tag"]:
            continue
        rx = decode_one(unhex(v["wire"]))
        at = rx.tag_at()
        got = bytes(rx.buf[at:at + wire.TAG_SIZE])
        eq(got, hmac_tag(key, rx.signed_view(), wire.TAG_SIZE), v["name"])
        assert got != hmac_tag(other, rx.signed_view(), wire.TAG_SIZE)
        n += 1
    assert n >= 5


@both_paths
@both_paths
def test_a_frame_is_encoded_in_place_over_what_it_was_built_from():
    """Tx builds in ``out``'s tail and COBS-encodes forward over it: the
    largest frame, its payload without a 0 (a code byte more per 254), all 0
    or mixed, decodes back to what was built."""
    tx = frame.Tx()
    eq(len(tx.raw), wire.MAX_FRAME)
    eq(len(tx.out), wire.MAX_WIRE)
    tag = bytes(range(0x70, 0x70 + wire.TAG_SIZE))

    def tagger(view, out, at):
        out[at:at + wire.TAG_SIZE] = tag
    for fill in ("ones", "zeros", "mixed"):
        off = tx.begin(wire.M_BOT_REPORTS, 0x0100, 7)
        for k in range(wire.MAX_PAYLOAD):
            tx.raw[off + k] = 1 + k % 255 if fill == "ones" else 0 if fill == "zeros" \
                else (k * 7) & 0xFF
        built = bytearray(tx.raw[:off + wire.MAX_PAYLOAD])
        built[0] |= wire.F_AUTH                 # finish marks it signed
        n = tx.finish(wire.MAX_PAYLOAD, tagger, 0x01020304, 0x05060708)
        eq(n, wire.MAX_WIRE if fill == "ones" else n, fill)
        true(n <= wire.MAX_WIRE, fill)
        eq(tx.out[n - 1], 0, fill)
        rx = frame.Rx()
        eq(rx.feed(tx.out, 0, n), n, fill)
        true(rx.ready, fill)
        eq(rx.pend, wire.MAX_FRAME - wire.CRC_SIZE - wire.AUTH_SIZE, fill)  # the CRC was good
        eq(rx.err, wire.ERR_LENGTH, fill)     # the count byte makes the length wrong
        true(rx.buf[:len(built)] == built, fill + ": decoded differs from built")
        eq(bytes(rx.buf[rx.tag_at():rx.tag_at() + wire.TAG_SIZE]), tag, fill)


def test_every_invalid_vector_is_dropped_with_the_same_error():
    for v in vectors()["invalid"]:
        if "wire" not in v:
            continue
        rx = decode_one(unhex(v["wire"]))
        eq(rx.err, ERR[v["error"]], v["name"])
        eq(rx.bad[rx.err], 1, v["name"] + " counted")


@both_paths
def test_a_stream_with_garbage_yields_exactly_the_valid_frames():
    for v in vectors()["invalid"]:
        if "stream" not in v:
            continue
        data = unhex(v["stream"])
        rx = frame.Rx()
        seqs, errs, i = [], [], 0
        while i < len(data):
            i = rx.feed(data, i, len(data))
            if rx.ready:
                if rx.err:
                    errs.append(rx.err)
                else:
                    seqs.append(rx.seq)
        eq(seqs, v["frames"], v["name"])
        eq(errs, [ERR[e] for e in v["errors"]], v["name"])


@both_paths
def test_frames_split_across_reads_reassemble():
    v = vectors()["valid"][-1]
    data = unhex(v["wire"])
    rx = frame.Rx()
    for k in range(len(data)):
        i = rx.feed(data, k, k + 1)
        eq(i, k + 1)
        eq(rx.ready, k == len(data) - 1)
    eq(rx.err, 0)


def test_the_python_crc_fallback_matches_the_port():
    from hub.crc import crc32 as slow
    from hub.compat import crc32 as fast
    for v in vectors()["valid"][:20]:
        d = unhex(v["wire"])
        eq(slow(d), fast(d))


def _lcg_frames(count):
    """Deterministic pseudo-random payloads of every awkward shape (zeros, 0xFF runs)."""
    x = 12345
    out = []
    for k in range(count):
        n = (k * 37) % 480 + 1
        b = bytearray(n + 4)
        for i in range(n):
            x = (x * 1103515245 + 12345) & 0x7FFFFFF
            r = x >> 16
            b[i] = 0 if r % 5 == 0 else (0xFF if r % 7 == 0 else r & 0xFF)
        if k % 4 == 0:
            for i in range(min(n, 300)):
                b[i] = 0x11               # long runs without a zero: 0xFF COBS blocks
        out.append((b, n))
    return out


def test_the_crc_halves_match_the_port_crc():
    from hub import crc
    from hub.compat import crc32
    import struct as st
    for b, n in _lcg_frames(12):
        crc.crc(b, n, 1)
        eq(bytes(b[n:n + 4]), st.pack("<I", crc32(bytes(b[:n]))))
        assert crc.crc(b, n + 4, 0)
        b[n // 2] ^= 0x40
        assert not crc.crc(b, n + 4, 0)


def test_the_viper_loops_match_the_portable_ones_byte_for_byte():
    if frame.viperbytes is None:
        raise SkipTest("no native emitter on this port: only the portable loops exist")
    from hub import crc, loops
    v = frame.viperbytes
    out_v = bytearray(wire.MAX_WIRE)
    out_p = bytearray(wire.MAX_WIRE)
    for b, n in _lcg_frames(40):
        c = bytearray(b)
        v.crc(b, n, 1)
        crc.crc(c, n, 1)
        eq(bytes(b), bytes(c), "crc of %d bytes" % n)
        assert v.crc(b, n + 4, 0)
        k = v.cobs_encode(b, n + 4, out_v)
        eq(k, loops.cobs_encode(b, n + 4, out_p))
        eq(bytes(out_v[:k]), bytes(out_p[:k]))
        for feed in (v.feed, loops.feed):
            got = bytearray(wire.MAX_FRAME)
            st = array("i", (0, 0, 0, 0, wire.MAX_FRAME, wire.ERR_OVERSIZE))
            i = feed(out_v, 0, k, got, st)
            eq(i, -1 - k)
            eq(st[0], n + 4)
            eq(bytes(got[:n + 4]), bytes(b[:n + 4]))
        b[n // 3] ^= 0x01
        assert not v.crc(b, n + 4, 0)


def test_viper_is_used_wherever_the_port_compiles_it():
    try:
        exec("import micropython\n@micropython.viper\ndef f(x: int) -> int:\n    return x\n")
        native = True
    except SyntaxError:
        native = False
    eq(frame.viperbytes is not None, native)
    eq(frame.select(True), native)


@both_paths
def test_decoding_and_encoding_telemetry_allocates_nothing():
    import gc
    tx = frame.Tx()
    rx = frame.Rx()
    for _ in range(2):           # warm the view caches
        off = tx.begin(wire.M_BOT_STATES)
        n = tx.finish(2 + 64 * wire.BOT_STATES_REC_SIZE)
        rx.feed(tx.out, 0, n)
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(20):
        off = tx.begin(wire.M_BOT_STATES)
        tx.raw[off] = 0
        tx.raw[off + 1] = 64
        n = tx.finish(2 + 64 * wire.BOT_STATES_REC_SIZE)
        i = rx.feed(tx.out, 0, n)
    used = gc.mem_alloc() - a
    gc.enable()
    eq(rx.err, 0)
    eq(used, 0, "bytes allocated")
