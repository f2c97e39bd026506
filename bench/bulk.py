"""Row 2: bulk decode of a recorded telemetry stream with numpy.

The recording is what the host link carries: BOT_STATES frames of 64 bots
each (the hub batches a 64-bot swarm into one frame), COBS-framed with their
delimiters, 1,000,000 bot-state records in all, built with the host codec.
The bulk decoder checks every frame as the codec does (COBS, CRC-32, version,
message id, record count against length), joins the payloads and views them
through a numpy structured dtype derived from the schema (``dtype_of``), so
there is no Python work per record. pymavlink parses a recording of the same
count of MAVLink 2 ATTITUDE frames (one vehicle state each) with
``parse_buffer`` in 64 KiB reads, its stream parser.
"""
import os
import random
import struct
import time
import zlib

os.environ.setdefault("MAVLINK20", "1")

from cobs import cobs  # noqa: E402

from nanohub.protocol import codec, model, schema  # noqa: E402

from .report import Row  # noqa: E402

GOAL = 100.0
RECORDS = 1_000_000
PER_FRAME = 64
_NP = {"B": "u1", "b": "i1", "H": "<u2", "h": "<i2", "I": "<u4", "i": "<i4"}


def dtype_of(record):
    """A packed numpy structured dtype for a schema record (``model.Record``)."""
    import numpy as np
    fields = []
    for f in record.fields:
        fields.append((f.name, "S%d" % f.size if f.is_bytes else _NP[f.code]))
    dt = np.dtype(fields)
    if dt.itemsize != record.size:
        raise AssertionError("dtype %s is %d B, the record %d B" % (dt, dt.itemsize, record.size))
    return dt


def recording(n_records, per_frame=PER_FRAME, seed=7):
    """Wire bytes of BOT_STATES frames holding ``n_records`` bot states."""
    rng = random.Random(seed)
    frames = []
    seq = 0
    left = n_records
    while left:
        k = min(per_frame, left)
        recs = [(rng.randrange(7), rng.randrange(160), rng.randrange(101), rng.randrange(101),
                 rng.randrange(101)) for _ in range(k)]
        seq = (seq + 1) & 0xFFFF
        frames.append(codec.encode("BOT_STATES", {"first": 0}, recs, seq=seq))
        left -= k
    return b"".join(frames)


_HDR = struct.Struct("<BHBB")
_CRC = struct.Struct("<I")


def bulk_decode(stream, dtype=None):
    """Every bot state in a BOT_STATES recording as one numpy array.

    Frames that fail a check are dropped and counted, as the stream decoder
    does; returns (array, dropped).
    """
    import numpy as np
    m = model.BY_NAME["BOT_STATES"]
    dtype = dtype if dtype is not None else dtype_of(m.tail)
    mid, fixed, rec = m.id, m.size, m.tail.size
    version = schema.VERSION
    parts = []
    dropped = 0
    decode, crc32, hdr, crc_of = cobs.decode, zlib.crc32, _HDR.unpack_from, _CRC.unpack_from
    for chunk in stream.split(b"\0"):
        if not chunk:
            continue
        try:
            raw = decode(chunk)
        except cobs.DecodeError:
            dropped += 1
            continue
        n = len(raw)
        if n < 9 + fixed or crc32(raw[:-4]) != crc_of(raw, n - 4)[0]:
            dropped += 1
            continue
        vf, _, msg, _ = hdr(raw)
        if vf >> 4 != version or msg != mid or vf & schema.F_AUTH \
                or n - 9 - fixed != raw[6] * rec:
            dropped += 1
            continue
        parts.append(raw[5 + fixed:n - 4])
    return np.frombuffer(b"".join(parts), dtype=dtype), dropped


def mav_recording(n):
    from pymavlink.dialects.v20 import common as ml
    tx = ml.MAVLink(None, 1, 1)
    out = bytearray()
    for i in range(n):
        tx.seq = i & 0xFF
        out += ml.MAVLink_attitude_message(i, 0.01 * (i % 7), -0.02, 1.57, 0.001, 0.002,
                                           -0.003).pack(tx)
    return bytes(out)


def mav_parse(stream, read=65536):
    from pymavlink.dialects.v20 import common as ml
    rx = ml.MAVLink(None, 255, 0)
    count = 0
    for off in range(0, len(stream), read):
        msgs = rx.parse_buffer(stream[off:off + read])
        if msgs:
            count += len(msgs)
    return count


def run(quick=False):
    import numpy as np
    n = 20_000 if quick else RECORDS
    rounds = 1 if quick else 2
    ours_stream = recording(n)
    theirs_stream = mav_recording(n)
    dt = dtype_of(model.RECORDS["BotState"])
    ours_t, theirs_t = [], []
    arr = None
    for _ in range(rounds):            # side by side: ours, theirs, ours, theirs
        t = time.perf_counter()
        arr, dropped = bulk_decode(ours_stream, dt)
        ours_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        count = mav_parse(theirs_stream)
        theirs_t.append(time.perf_counter() - t)
    if len(arr) != n or dropped or count != n:
        raise AssertionError("decoded %d of %d records (%d dropped), pymavlink %d"
                             % (len(arr), n, dropped, count))
    # the numbers are right: spot-check against the codec itself
    first = codec.decode(ours_stream[:ours_stream.index(b"\0") + 1]).records
    for k in (0, len(first) - 1):
        want = tuple(first[k][name] for name in dt.names)
        got = tuple(int(v) for v in arr[k])
        if got != want:
            raise AssertionError("record %d: numpy %r, codec %r" % (k, got, want))
    ours, theirs = min(ours_t), min(theirs_t)
    ratio = theirs / ours
    fig = "%.0fx: %.1fM vs %.2fM records/s (%s records: %.3f s vs %.2f s)" % (
        ratio, n / ours / 1e6, n / theirs / 1e6, "{:,}".format(n), ours, theirs)
    how = ("a recording of %s bot states in BOT_STATES frames of %d bots (%.1f MB on the "
           "wire) decoded with every frame checked (COBS, CRC-32, version, id, count vs "
           "length) and the payloads viewed through a numpy dtype derived from the schema "
           "(`bench.bulk.dtype_of(model.RECORDS['BotState'])`: %s); pymavlink "
           "`parse_buffer` over %s ATTITUDE frames (%.1f MB) in 64 KiB reads. Best of %d "
           "alternating runs each. numpy %s." % (
               "{:,}".format(n), PER_FRAME, len(ours_stream) / 1e6, dt.descr, "{:,}".format(n),
               len(theirs_stream) / 1e6,
               rounds, np.__version__))
    row = Row("2", "bulk decode, recorded telemetry stream", fig, ">= %gx pymavlink" % GOAL,
              ratio >= GOAL, how=how,
              why="" if ratio >= GOAL else
              "the per-frame checks run in Python (one COBS and one CRC call per frame); "
              "larger frames (up to 95 bots) or a vectorised CRC check would cut that.")
    return [row], {"ours_s": ours_t, "theirs_s": theirs_t, "n": n}
