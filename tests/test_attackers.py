"""Attackers on the host link, against the real firmware on the MicroPython VM.

Forged, replayed, reordered, truncated-tag and old-counter commands; commands
signed with another hub's key; a schema-mismatched peer; oversized and
malformed frames at line rate while the real operator presses the emergency
stop; an unbounded flood; and the key, which must never leave the hub over
the protocol. Each attack is judged by what the hub answers, what it does
(state, counter, parameters) and what its audit log says.
"""
import random
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest

from _waiting import wait_for

from _fuzzing import props  # noqa: F401  (repo on sys.path)
from nanohub.host.client import Hub
from nanohub.host.emulate.hub import EmulatedHub
from nanohub.host.errors import ProtocolMismatch
from nanohub.host.emulate.faultproxy import FaultProxy
from nanohub.protocol import auditlog, codec, model, schema

W = props.wire
UART_BPS = 115200 // 10          # bytes per second of a 115200 Bd UART


def connect(emu, url=None, **kw):
    return Hub.open(url or emu.url, key=emu.key_path.read_bytes(), timeout=2.0, **kw)


def send(h, name, raw, seq, tries=1, timeout=1.5):
    """Raw frame bytes (before COBS) out; the hub's ACK back (None if none)."""
    try:
        return h._transact(name, seq, props.wire_of(raw), timeout, tries)
    except Exception:
        return None


def payload(name, **fields):
    return codec.build_payload(schema.MSG[name], fields)


def records(h, event=None):
    recs = auditlog.parse_records(h.log_pull())
    assert auditlog.verify(recs).ok
    return [r for r in recs if event is None or r["event"] == event]


def test_forged_tags_are_refused_logged_and_alarmed(hub8):
    with connect(hub8) as h:
        state, counter = h.status()["state"], h.refresh_info()["counter"]
        rng = random.Random(1)
        refused = []
        for name in ("ARM", "TREAT_RESUME", "DOSE_SCALE", "CONSENT", "PARAM_SET", "KEY_ROTATE",
                     "ESTOP_RESET", "TREAT_START"):
            m = model.BY_NAME[name]
            seq = h._next_req()
            raw = props.raw_frame(m.id, bytes(m.size), seq=seq, counter=counter + 100,
                                  tag=bytes(rng.randrange(256) for _ in range(8)))
            ack = send(h, name, raw, seq)
            assert ack is not None and ack.rejected and ack.reason == "AUTH_BAD", (name, ack)
            refused.append((m.id, seq))
        assert h.status()["state"] == state
        assert h.refresh_info()["counter"] == counter           # a forgery burns nothing
        logged = {(r["a"], r["b"]) for r in records(h, W.EV_REJECT)}
        assert set(refused) <= logged
        assert any(a["code"] == "UNAUTHORIZED" for a in h.alarms())


def test_a_replayed_command_runs_once_then_is_refused_as_a_replay(hub8):
    with connect(hub8) as h:
        seq, wire = h.build("CONSENT", {"patient": 777})
        first = h._transact("CONSENT", seq, wire, 2.0, 2)
        again = h._transact("CONSENT", seq, wire, 2.0, 2)       # a retry: the cached ACK
        assert first.status == again.status == "DONE"
        for _ in range(20):                                       # the ACK cache moves on
            h.hold()
        late = h._transact("CONSENT", seq, wire, 2.0, 2)          # a captured frame, replayed
        assert late.rejected and late.reason == "AUTH_REPLAY"
        ran = [r for r in records(h, W.EV_CMD) if r["a"] == W.M_CONSENT and r["b"] == seq]
        assert len(ran) == 1


def test_reordered_signed_commands_refuse_the_older_counter(hub8):
    with connect(hub8) as h:
        s1, w1 = h.build("DOSE_SCALE", {"percent": 90})
        s2, w2 = h.build("DOSE_SCALE", {"percent": 80})           # signed after s1
        assert h._transact("DOSE_SCALE", s2, w2, 2.0, 2).status == "DONE"
        late = h._transact("DOSE_SCALE", s1, w1, 2.0, 2)
        assert late.rejected and late.reason == "AUTH_REPLAY"


def test_an_old_counter_is_refused_even_with_a_good_tag(hub8):
    with connect(hub8) as h:
        key = hub8.key_path.read_bytes()
        hw = h.refresh_info()["counter"]
        for counter in (hw, hw - 1, 0):
            seq = h._next_req()
            raw = codec.build("DOSE_SCALE", {"percent": 50}, seq=seq, key=key,
                              counter=max(counter, 0), expires=h.expires())
            ack = send(h, "DOSE_SCALE", raw, seq)
            assert ack.rejected and ack.reason == "AUTH_REPLAY", counter
        assert h.refresh_info()["counter"] == hw


def test_a_truncated_tag_is_dropped_as_a_bad_frame_and_never_runs(hub8):
    with connect(hub8) as h:
        key = hub8.key_path.read_bytes()
        bad0 = h.status()["rx_bad"]
        counter = h.refresh_info()["counter"] + 1
        sent = []
        for keep in (0, 1, 4, 7):
            seq = h._next_req()
            raw = props.raw_frame(W.M_DOSE_SCALE, b"\x32", seq=seq, key=key, counter=counter,
                                  tag_len=keep, expires=h.expires())
            assert send(h, "DOSE_SCALE", raw, seq, timeout=0.6) is None     # no ACK at all
            sent.append(seq)
        half = codec.build("DOSE_SCALE", {"percent": 50}, seq=h._next_req(), key=key,
                           counter=counter, expires=h.expires())
        body = bytearray(half[:-4])
        body[-4:] = bytes(4)                                      # half the tag zeroed
        ack = send(h, "DOSE_SCALE", bytes(body) + struct.pack("<I", zlib.crc32(body)),
                   struct.unpack_from("<H", half, 1)[0])
        assert ack.rejected and ack.reason == "AUTH_BAD"
        assert h.status()["rx_bad"] - bad0 == 4
        assert h.refresh_info()["counter"] == counter - 1
        assert not [r for r in records(h, W.EV_CMD) if r["b"] in sent]


def test_a_command_signed_with_another_hubs_key_is_refused(hub8):
    with connect(hub8) as h:
        counter = h.refresh_info()["counter"] + 1
        for name, fields in (("ARM", {}), ("PARAM_SET", {"index": 9, "value": 5000}),
                             ("CONSENT", {"patient": 1})):
            seq = h._next_req()
            raw = codec.build(name, fields, seq=seq, key=props.OTHER_KEY, counter=counter)
            ack = send(h, name, raw, seq)
            assert ack.rejected and ack.reason == "AUTH_BAD", name
        assert h.refresh_info()["counter"] == counter - 1
        assert h.param_get("lease_ms")["value"] == 2000


def test_a_schema_mismatched_peer_is_told_so_and_the_host_stops(hub8, monkeypatch):
    with connect(hub8) as h:
        seq = h._next_req()
        hello = props.raw_frame(W.M_HELLO, struct.pack("<IH", model.FINGERPRINT ^ 0xA5A5, 1),
                                seq=seq)
        got = []
        with h._wait_for(lambda f: f.name == "HELLO_REPLY" and f.seq == seq) as w:
            h.send_raw(props.wire_of(hello))
            got.append(w.get(2.0))
        assert got[0] is not None and got[0]["result"] == schema.enum_value("HELLO", "SCHEMA")
        assert h.status()["state"] == "SAFE"
    # the host library, built from another schema, refuses to go on (exit code 3)
    monkeypatch.setattr(model, "FINGERPRINT", model.FINGERPRINT ^ 0xA5A5)
    with pytest.raises(ProtocolMismatch) as e:
        connect(hub8)
    assert e.value.exit_code == 3 and "schema" in str(e.value)


def test_the_key_never_leaves_the_hub_over_the_protocol(hub8):
    key = hub8.key_path.read_bytes()
    seen = bytearray()
    with FaultProxy(("127.0.0.1", hub8.host_port)) as tap:
        tap.taps.append(lambda d, b: seen.extend(b) if d == "down" else None)
        with connect(hub8, tap.url) as h:
            h.status(), h.bots(), h.sites(), h.alarms(), h.estop_report()
            names = [p["name"].lower() for p in h.params()]
            for what in range(0, 9):
                try:
                    h.ask("REQUEST", {"what": what}, ("HUB_STATUS", "HELLO_REPLY", "BOT_STATES",
                                                      "SITE_READINGS", "ALARM", "ESTOP_REPORT"),
                          timeout=0.5, tries=1)
                except Exception:
                    pass
            for index in (props.P.COUNT, props.P.COUNT + 1, 200, 255):
                with pytest.raises(Exception):
                    h.param_at(index)
            h.log_pull()
            for start in (0, 1 << 31, 0xFFFFFFFF):
                h.ask("LOG_READ", {"start": start, "max": 255}, ("LOG_CHUNK",))
            h.consent(5)                                  # a signed exchange too
            wait_for(lambda: len(seen) > 2000, what="the hub's answers through the tap")
    stream = bytes(seen)
    assert len(stream) > 2000
    frames = [codec.decode(c) for c in stream.split(b"\0") if c]
    plain = b"".join(f.body for f in frames)
    for blob in (stream, plain):
        for i in range(len(key) - 3):                     # not even 4 bytes of it in a row
            assert key[i:i + 4] not in blob, "key bytes %d..%d went out" % (i, i + 4)
    assert len(names) == props.P.COUNT and not [n for n in names if "key" in n]


def _flood_chunk(rng, n):
    """n bytes of what an attacker sends: oversize runs, garbage, bad frames."""
    out = bytearray()
    good = props.raw_frame(W.M_REQUEST, b"\x01", seq=1)
    while len(out) < n:
        k = rng.randrange(5)
        if k == 0:
            out += bytes(rng.randrange(1, 256) for _ in range(700)) + b"\0"   # oversize
        elif k == 1:
            out += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        elif k == 2:
            w = bytearray(props.wire_of(good))
            w[rng.randrange(len(w) - 1)] ^= 0x40
            out += w
        elif k == 3:
            raw = bytearray(good)
            raw[3] = 0x7E                                    # unknown id, good CRC
            struct.pack_into("<I", raw, len(raw) - 4, zlib.crc32(bytes(raw[:-4])))
            out += props.wire_of(bytes(raw))
        else:
            out += b"\x05\x01\x02\x03\x04\0"                 # too short
    return bytes(out[:n])


def _flood(h, rate, stop, rng, sent):
    period = 0.02
    while not stop.is_set():
        t = time.monotonic()
        chunk = _flood_chunk(rng, max(1, int(rate * period))) if rate else _flood_chunk(rng, 8192)
        try:
            h.send_raw(chunk)
        except Exception:
            return
        sent[0] += len(chunk)
        if rate:
            time.sleep(max(0.0, period - (time.monotonic() - t)))     # the line rate


@pytest.mark.parametrize("line_rate", [UART_BPS, 10 * UART_BPS])
def test_an_operator_estop_gets_through_a_line_rate_flood_at_once(own_hub8, line_rate):
    with connect(own_hub8) as h:
        h.deploy(40, 3)
        boots = h.info["boots"]
        stop, sent = threading.Event(), [0]
        flood = threading.Thread(target=_flood, args=(h, line_rate, stop, random.Random(2),
                                                      sent), daemon=True)
        flood.start()
        wait_for(lambda: sent[0] >= line_rate, what="a second of flood")       # in full swing
        t0 = time.monotonic()
        res = h.estop(timeout=6.0)
        took = time.monotonic() - t0
        stop.set()
        flood.join(2.0)
        assert res.ack is not None and res.ack.status == "ACCEPTED"
        assert res.done and res.ok, res
        assert took < 2.0, "ESTOP took %.2f s through the flood" % took
        assert sent[0] > line_rate                            # it really was flooded
        assert h.refresh_info()["boots"] == boots             # no watchdog reset
        assert h.status()["rx_bad"] > 100


def test_an_unbounded_flood_does_not_starve_the_control_loop(home):
    """Found by the VM stream fuzzer: the hub read the host link until it was
    empty, so a sender faster than the parser kept it in the read loop: no
    tick, no safety rules, no watchdog feed, and a watchdog reset after 2 s.
    Reads are now bounded per poll."""
    with EmulatedHub(bots=4, gateway=False, seed=5) as e:
        with connect(e) as h:
            h.set_rates(status_hz=5, bots_hz=0, sites_hz=0)
            boots = h.info["boots"]
            sub = h.subscribe()
            stop, sent = threading.Event(), [0]
            flood = threading.Thread(target=_flood, args=(h, 0, stop, random.Random(3), sent),
                                     daemon=True)
            flood.start()
            times = []
            end = time.monotonic() + 4.0
            while time.monotonic() < end:
                f = sub.get(0.5)
                if f is not None and f.name == "HUB_STATUS":
                    times.append(f["t"])
            stop.set()
            flood.join(3.0)
            h.unsubscribe(sub)
            assert sent[0] > 1_000_000
            assert len(times) >= 10 and times[-1] - times[0] >= 2500, times
            assert e.alive() is None
        with connect(e) as h2:
            assert h2.info["boots"] == boots


def test_a_line_rate_flood_of_unsigned_commands_cannot_rotate_the_log_away(own_hub8):
    first = Path(own_hub8.store) / "log.0000000000"
    with connect(own_hub8) as h:
        h.consent(9)                                 # evidence the attacker wants gone
        hold = b"".join(props.wire_of(props.raw_frame(W.M_HOLD, b"\xff", seq=i))
                        for i in range(2000))
        step = UART_BPS // 50
        end = time.monotonic() + 12.0
        k = 0
        while time.monotonic() < end and first.exists():     # until the oldest segment goes
            h.send_raw(hold[k:k + step])
            k = (k + step) % (len(hold) - step)
            time.sleep(0.02)                                  # the line rate
        h.status()                                   # a round trip: the hub has read it all
        recs = records(h)
        assert recs[0]["index"] == 0, "records 0..%d rotated away" % (recs[0]["index"] - 1)
        floods = [r for r in recs if r["event"] == W.EV_CMD_FLOOD]
        assert floods and sum(r["c"] for r in floods) > 1000, "the flood is counted, not lost"


# ---------------------------------------------------------------- issue 14 --

@pytest.mark.parametrize("kind", ["garbage", "unsigned"])
def test_nanohub_estop_confirms_every_bot_through_a_full_speed_flood_on_the_same_link(
        home, kind):
    """The real CLI in a new process, sharing one hub connection with an
    attacker who writes as fast as the socket takes bytes. The stop goes out
    before any handshake, the hub finds it in front of the backlog, and the
    CLI exits 0 only with every bot confirmed. ``stop_seconds`` runs from the
    first ESTOP written to the final report (interpreter start-up aside: it
    says nothing about the link and everything about the machine's load)."""
    from bench import flood as fl
    bots = 8
    with EmulatedHub(bots=bots, scenario="nominal", seed=11) as e:
        line = fl.SharedLine(e.host_port)
        try:
            with Hub.open(line.url, key=e.key_path.read_bytes(), timeout=3.0) as op:
                op.deploy(40, bots)
                assert fl.settled(op, bots, "DEPLOYED")
                stops = []
                for trial in range(3):
                    fl.ready(op, bots)
                    attacker = fl.Flood(line.port, kind)
                    try:
                        rate = attacker.rate(1.0)
                        took, code, out = fl.cli_estop(line.url, dict(__import__("os").environ))
                    finally:
                        attacker.close()
                    assert rate > 1_000_000, "not a flood: %.0f B/s" % rate
                    assert code == 0 and out["ok"] and out["confirmed"] == bots, out
                    stops.append(out["stop_seconds"])
                fl.ready(op, bots)
                drained = [r for r in records(op) if r["event"] == W.EV_RX_DRAIN]
        finally:
            line.close()
    assert sorted(stops)[1] < fl.GOAL_S and max(stops) < 2 * fl.GOAL_S, stops
    assert sum(r["c"] for r in drained) > 3_000_000, "the flood is on record"


def test_a_deploy_resent_after_100_other_commands_does_not_run_again(hub8):
    with connect(hub8) as h:
        seq, wire = h.build("DEPLOY", {"site": 41, "count": 1})
        first = h._transact("DEPLOY", seq, wire, 2.0, 2)
        for _ in range(100):
            h.hold()
        again = h._transact("DEPLOY", seq, wire, 2.0, 2)
        assert first.status == "DONE"
        assert again.rejected and again.reason == "DUPLICATE", again
        ran = [r for r in records(h, W.EV_CMD) if r["a"] == W.M_DEPLOY and r["b"] == seq]
        assert len(ran) == 1
        h.recall()


def test_a_key_holder_cannot_burn_the_counter_in_one_command(hub8):
    with connect(hub8) as h:
        before = h.refresh_info()["counter"]
        key = hub8.key_path.read_bytes()
        for counter in (0xFFFFFFFF, before + schema.COUNTER_JUMP_MAX + 1):
            seq = h._next_req()
            wire = codec.encode("DOSE_SCALE", {"percent": 90}, seq=seq, key=key, counter=counter,
                                expires=h.expires())
            ack = h._transact("DOSE_SCALE", seq, wire, 2.0, 2)
            assert ack.rejected and ack.reason == "AUTH_JUMP", ack
        assert h.refresh_info()["counter"] == before
        assert h.dose_scale(100).status == "DONE"          # the operator signs on as before


def test_a_new_connection_cannot_take_the_link_from_the_operator(hub8):
    import socket
    with connect(hub8, url=hub8.hub_url) as h:
        h.status()
        intruders = []
        for _ in range(10):                            # a new connection every 100 ms
            try:
                s = socket.create_connection(("127.0.0.1", hub8.host_port), timeout=0.3)
                s.sendall(b"\0" + codec.encode("HELLO", {"schema": model.FINGERPRINT,
                                                         "host_version": 1}))
            except OSError:
                pass                                   # the listen queue is full: refused
            else:
                intruders.append(s)
            time.sleep(0.1)                            # the attack's pace
            assert h.status()["state"] in ("SAFE", "ESTOP")    # the operator keeps the link
        for s in intruders:
            s.settimeout(0.2)
            try:
                assert s.recv(4096) == b"", "an intruder was answered"
            except socket.timeout:
                pass                                   # queued, unanswered
            s.close()
        assert h.status()["state"] in ("SAFE", "ESTOP")


def test_a_peer_that_moves_the_request_id_mark_does_not_lock_the_operator_out(hub8):
    with connect(hub8, url=hub8.hub_url) as h:
        ahead = (h._req + 20000) & 0xFFFF               # a peer on the same link
        w = h._wait_for(lambda f: f.name == "ACK" and f["req"] == ahead)
        with w:
            h.send_raw(codec.encode("HOLD", {"bot": schema.ADDR_ALL}, seq=ahead))
            assert w.get(3.0) is not None, "the peer's HOLD was not answered"
        assert h.hold().status == "DONE"                # refused once, then above the mark
        assert (h._req - ahead) & 0xFFFF < 0x8000
