"""Host library logic without the firmware: routing, retries, signing, errors.

A scripted fake hub sits behind a pyserial-like port object. It is only a
stand-in for timing and routing (which frames come, when, in which order);
the end-to-end tests (test_host_e2e.py) drive the real firmware.
"""
import threading
import time

import pytest

from nanohub.host import keys
from nanohub.host.client import Hub
from _waiting import wait_for
from nanohub.host.errors import (
    KeyMissing, LinkError, LinkTimeout, NotANanohub, ProtocolMismatch, Refused,
)
from nanohub.host.link.session import HEARTBEAT_S
from nanohub.protocol import auditlog, codec, model, schema

KEY = bytes(range(32))
HUB_ID = 0x5100AB12
REPLY = schema.F_REPLY
E = {e: {n: v for n, v, _ in members} for e, members in schema.ENUMS.items()}

pytestmark = pytest.mark.usefixtures("home")


class FakePort:
    """A pyserial-like port; ``handler(port, frame)`` scripts the hub."""

    def __init__(self, handler=None, on_raw=None):
        self.handler = handler or (lambda port, f: None)
        self.on_raw = on_raw
        self.writes = []
        self.frames = []
        self.times = []             # when each frame was written (time.monotonic())
        self.decoder = codec.StreamDecoder()
        self.rx = bytearray()
        self.cond = threading.Condition()
        self.broken = False

    def write(self, data):
        self.writes.append(bytes(data))
        if self.on_raw:
            self.on_raw(self, bytes(data))
        for f in self.decoder.feed(data):
            if isinstance(f, codec.Frame):
                self.frames.append(f)
                self.times.append(time.monotonic())
                self.handler(self, f)
        return len(data)

    def push(self, data):
        with self.cond:
            self.rx += data
            self.cond.notify_all()

    def send(self, name, fields=None, records=(), seq=0, flags=REPLY):
        self.push(codec.encode(name, fields, records, seq=seq, flags=flags))

    @property
    def in_waiting(self):
        return len(self.rx)

    def read(self, n=1):
        with self.cond:
            if not self.rx:
                self.cond.wait(0.02)
            if self.broken:
                raise OSError("device disconnected")
            data = bytes(self.rx[:n])
            del self.rx[:n]
            return data

    def close(self):
        pass

    def sent(self, name):
        return [f for f in self.frames if f.name == name]


def hello_fields(**over):
    fields = dict(result=0, schema=model.FINGERPRINT, fw_major=0, fw_minor=1, fw_patch=2,
                  board=b"unix\0\0\0\0", hub_id=HUB_ID, caps=7, bots=4, state=0, boots=3,
                  reset_cause=0, keyed=1, counter=41, estop=0, t=5000, fresh_ms=1000)
    fields.update(over)
    return fields


def ack(port, f, status="DONE", reason="NONE", detail=0):
    port.send("ACK", {"req": f.seq, "cmd": f.msg, "status": E["ACKS"][status],
                      "reason": E["WHY"][reason], "detail": detail})


def hub_script(**behaviour):
    """A hub that answers HELLO and ACKs every command DONE unless told otherwise."""
    def handler(port, f):
        if f.name == "HELLO":
            port.send("HELLO_REPLY", hello_fields(**behaviour.get("hello", {})), seq=f.seq)
        elif f.name in behaviour:
            behaviour[f.name](port, f)
        elif f.msg in (schema.MSG[n] for n in schema.COMMANDS) and f.name not in (
                "REQUEST", "PARAM_GET", "LOG_READ"):
            ack(port, f)
    return handler


def connect(handler, key=None, timeout=1.0, retries=3):
    port = FakePort(handler)
    hub = Hub(port, url="fake://", key=key, timeout=timeout, retries=retries)
    hub.handshake()
    return hub, port


# ------------------------------------------------------------- handshake --

def test_handshake_reads_the_hub_identity():
    def request(port, f):
        port.send("HELLO_REPLY", hello_fields(counter=77), seq=f.seq)
    hub, _ = connect(hub_script(REQUEST=request))
    with hub:
        assert hub.hub_id == HUB_ID
        assert hub.info["board"] == "unix"
        assert hub.info["counter"] == 41
        assert hub.info()["counter"] == 77 and hub.info["counter"] == 77


def test_a_hub_of_another_schema_is_a_protocol_mismatch_naming_both_fingerprints():
    other = model.FINGERPRINT ^ 0x1234
    script = hub_script(hello={"result": E["HELLO"]["SCHEMA"], "schema": other})
    with pytest.raises(ProtocolMismatch) as err:
        connect(script)
    assert "0x%08x" % other in str(err.value)
    assert "0x%08x" % model.FINGERPRINT in str(err.value)
    assert err.value.exit_code == 3


def test_a_micropython_repl_is_not_a_nanohub():
    def repl(port, data):
        if b"\x03" in data:
            port.push(b"\r\nKeyboardInterrupt\r\nMicroPython v1.22 on unix\r\n>>> ")
    port = FakePort(on_raw=repl)
    hub = Hub(port, url="fake://", timeout=0.3)
    with pytest.raises(NotANanohub) as err:
        hub.handshake()
    hub.close()
    assert "nanohub flash" in str(err.value)


def test_a_repl_that_ends_on_the_hello_is_still_named_a_repl():
    # the unix port's REPL quits on a Ctrl-D in the HELLO's bytes (a board's
    # may reset): its banner came first, so the link's end is not the news
    def repl(port, data):
        with port.cond:
            while port.rx:                  # the banner read first, as on the wire
                port.cond.wait(0.01)
            port.broken = True
    port = FakePort(on_raw=repl)
    port.push(b"MicroPython v1.22 on unix\r\nType \"help()\" for more information.\r\n>>> ")
    hub = Hub(port, url="fake://", timeout=1.0)
    with pytest.raises(NotANanohub) as err:
        hub.handshake()
    hub.close()
    assert "MicroPython REPL answered" in str(err.value)


def test_a_silent_port_times_out():
    hub = Hub(FakePort(), url="fake://", timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(LinkTimeout):
        hub.handshake()
    hub.close()
    assert time.monotonic() - t0 < 2.0


def test_frames_of_another_protocol_version_are_a_protocol_mismatch():
    def v2(port, f):
        raw = bytearray(codec.build("HELLO_REPLY", hello_fields(), seq=f.seq, flags=REPLY))
        raw[0] = (2 << 4) | REPLY
        import zlib
        from cobs import cobs
        raw[-4:] = zlib.crc32(bytes(raw[:-4])).to_bytes(4, "little")
        port.push(cobs.encode(bytes(raw)) + b"\0")
    with pytest.raises(ProtocolMismatch):
        connect(v2, timeout=0.3)


def test_loop_url_echo_is_not_a_nanohub():
    with pytest.raises(NotANanohub):
        Hub.open("loop://", timeout=0.3)


# -------------------------------------------------------------- commands --

def test_a_retry_resends_the_identical_bytes():
    seen = []

    def deploy(port, f):
        seen.append(f)
        if len(seen) == 3:
            ack(port, f, detail=2)
    hub, port = connect(hub_script(DEPLOY=deploy), timeout=0.6)
    with hub:
        result = hub.deploy(17, 2)
    assert result.status == "DONE" and result.detail == 2
    copies = [w for w in port.writes if codec.decode(w.lstrip(b"\0")).name == "DEPLOY"]
    assert len(copies) == 3 and len(set(copies)) == 1


def test_no_ack_after_every_try_is_a_link_timeout_that_says_it_may_have_run():
    hub, port = connect(hub_script(DEPLOY=lambda port, f: None), timeout=0.3, retries=2)
    with hub, pytest.raises(LinkTimeout) as err:
        hub.deploy(1, 1)
    assert len(port.sent("DEPLOY")) == 2
    assert "may or may not have run" in str(err.value)


def test_each_command_gets_a_new_request_id():
    hub, port = connect(hub_script())
    with hub:
        hub.pause()
        hub.pause()
    a, b = port.sent("TREAT_PAUSE")
    assert b.seq == (a.seq + 1) & 0xFFFF


def test_an_ack_for_another_request_does_not_answer_this_one():
    def stop(port, f):
        port.send("ACK", {"req": (f.seq + 7) & 0xFFFF, "cmd": f.msg, "status": 2, "reason": 5})
        ack(port, f)
    hub, _ = connect(hub_script(TREAT_STOP=stop))
    with hub:
        assert hub.stop_treatment().status == "DONE"


def test_a_refusal_names_the_failing_checks():
    def arm(port, f):
        ack(port, f, "REJECTED", "CHECKS", E["CHECK"]["CONSENT"] | E["CHECK"]["DEPLOYED"])
    keys.save_key(HUB_ID, KEY)
    hub, _ = connect(hub_script(ARM=arm))
    with hub, pytest.raises(Refused) as err:
        hub.arm()
    assert err.value.reason == "CHECKS" and err.value.exit_code == 1
    assert "CONSENT" in str(err.value) and "DEPLOYED" in str(err.value)


def test_a_state_refusal_names_the_hub_state():
    def pause(port, f):
        ack(port, f, "REJECTED", "STATE", E["HUB"]["SAFE"])
    hub, _ = connect(hub_script(TREAT_PAUSE=pause))
    with hub, pytest.raises(Refused, match="while the hub is SAFE"):
        hub.pause()


# --------------------------------------------------------------- signing --

def test_signed_commands_carry_a_valid_tag_and_a_counter_above_the_hubs():
    keys.save_key(HUB_ID, KEY)
    hub, port = connect(hub_script())
    with hub:
        hub.arm()
        hub.consent(4711)
    arm, consent = port.sent("ARM")[0], port.sent("CONSENT")[0]
    assert codec.verify(arm, KEY) and codec.verify(consent, KEY)
    assert arm.counter == 42 and consent.counter == 43       # hub said 41
    assert keys.Counter(HUB_ID).last() == 43


def test_the_local_counter_wins_when_it_is_ahead_of_the_hub():
    keys.save_key(HUB_ID, KEY)
    keys.write_private(keys.counter_path(HUB_ID), b"100\n")
    hub, port = connect(hub_script())
    with hub:
        hub.arm()
    assert port.sent("ARM")[0].counter == 101


def answering_in_turn(*answers):
    """A command's behaviour for hub_script: the n-th frame gets ``answers[n]``
    (None: silence; else ack's status and reason), frames past the last the last
    answer; and the list of the frames it got."""
    got = []

    def answer(port, f):
        got.append(f)
        what = answers[min(len(got), len(answers)) - 1]
        if what is not None:
            ack(port, f, *what)
    return answer, got


def test_two_threads_signing_first_at_once_both_get_a_counter(monkeypatch):
    # the heartbeat thread and the operator's both sign: the one that loads the
    # key must not let the other see the key before its counter
    entered, release = threading.Event(), threading.Event()

    class SlowCounter(keys.Counter):
        def __init__(self, hub_id):
            entered.set()
            assert release.wait(5)
            super().__init__(hub_id)

    monkeypatch.setattr(keys, "Counter", SlowCounter)
    hub, port = connect(hub_script(), key=KEY)
    built = []
    with hub:
        first = threading.Thread(target=hub.signing_key)
        first.start()
        assert entered.wait(5)
        second = threading.Thread(target=lambda: built.append(hub.build("ARM")))
        second.start()
        second.join(0.3)            # it reached the key while the first loads it
        release.set()
        first.join(5)
        second.join(5)
    assert len(built) == 1
    f = next(x for x in codec.StreamDecoder().feed(built[0][1]) if isinstance(x, codec.Frame))
    assert codec.verify(f, KEY) and f.counter == 42


def test_a_retried_signed_command_keeps_its_counter_and_tag():
    keys.save_key(HUB_ID, KEY)
    arm, tries = answering_in_turn(None, ("DONE",))     # the first try goes unanswered
    hub, port = connect(hub_script(ARM=arm), timeout=0.6)
    with hub:
        hub.arm()
    assert tries[0].counter == tries[1].counter and tries[0].tag == tries[1].tag


def test_a_replayed_counter_resynchronises_with_the_hub_and_signs_anew():
    keys.save_key(HUB_ID, KEY)
    arm, arms = answering_in_turn(("REJECTED", "AUTH_REPLAY"), ("DONE",))

    def request(port, f):
        if f["what"] == E["REQ"]["INFO"]:
            port.send("HELLO_REPLY", hello_fields(counter=500), seq=f.seq)
    hub, _ = connect(hub_script(ARM=arm, REQUEST=request))
    with hub:
        assert hub.arm().status == "DONE"
    assert arms[1].counter == 501 and arms[1].seq != arms[0].seq


def test_a_signed_command_without_a_key_is_a_usage_error_before_sending():
    hub, port = connect(hub_script())
    with hub, pytest.raises(KeyMissing) as err:
        hub.arm()
    assert err.value.exit_code == 2
    assert "0x%08x" % HUB_ID in str(err.value)
    assert not port.sent("ARM")


def test_stop_direction_commands_need_no_key():
    hub, port = connect(hub_script())
    with hub:
        hub.pause()
        hub.recall()
    assert all(f.tag is None for f in port.frames)


# ----------------------------------------------------------- replies and telemetry --

def status_fields(state="SAFE", **over):
    fields = {n: 0 for n in model.BY_NAME["HUB_STATUS"].names}
    fields.update(state=E["HUB"][state], bots=4, docked=4, dose_cap=1000, scale=100, link=100,
                  log_head=bytes(8))
    fields.update(over)
    return fields


def test_status_takes_the_reply_to_its_request_not_periodic_telemetry():
    def request(port, f):
        port.send("HUB_STATUS", status_fields("SAFE"), seq=f.seq ^ 0x55, flags=0)
        port.send("HUB_STATUS", status_fields("ARMED", checks=E["CHECK"]["CONSENT"]), seq=f.seq)
    hub, _ = connect(hub_script(REQUEST=request))
    with hub:
        st = hub.status()
    assert st["state"] == "ARMED" and st["failing_checks"] == ["CONSENT"]


def test_telemetry_reaches_subscribers_and_the_latest_value_cache():
    hub, port = connect(hub_script())
    with hub:
        sub = hub.subscribe()
        port.send("HUB_STATUS", status_fields("TREATING"), seq=9, flags=0)
        port.send("BOT_STATES", {"first": 2}, [{"state": E["BOT"]["ACTIVE"], "site": 17,
                                                "activity": 50, "battery": 90, "health": 99}],
                  seq=10, flags=0)
        got = [sub.get(1.0), sub.get(1.0)]
        assert [f.name for f in got] == ["HUB_STATUS", "BOT_STATES"]
        assert hub.bot_table[2]["state"] == "ACTIVE"
        assert hub.latest["HUB_STATUS"]["state"] == E["HUB"]["TREATING"]


def test_alarms_are_collected_until_the_closing_status():
    def request(port, f):
        for code in ("BOT_LOST", "ESTOP"):
            port.send("ALARM", {"code": E["ALARM"][code], "prio": 3, "state": 0, "bot": 255,
                                "site": 255}, seq=f.seq)
        port.send("HUB_STATUS", status_fields(alarms=2), seq=f.seq)
    hub, _ = connect(hub_script(REQUEST=request))
    with hub:
        assert [a["code"] for a in hub.alarms()] == ["BOT_LOST", "ESTOP"]


def test_a_lost_reply_is_asked_for_again():
    asked = []

    def request(port, f):
        asked.append(f)
        if len(asked) == 2:
            port.send("HUB_STATUS", status_fields(), seq=f.seq)
    hub, _ = connect(hub_script(REQUEST=request), timeout=0.6)
    with hub:
        assert hub.status()["state"] == "SAFE"


def test_a_rejected_read_is_a_refusal():
    def param_get(port, f):
        ack(port, f, "REJECTED", "BAD_ARG", f["index"])
    hub, _ = connect(hub_script(PARAM_GET=param_get))
    with hub, pytest.raises(Refused):
        hub.param_at(99)


def test_a_dropped_link_wakes_every_waiter_with_a_link_error():
    hub, port = connect(hub_script(DEPLOY=lambda port, f: None), timeout=5.0)
    with hub:
        threading.Timer(0.2, lambda: (setattr(port, "broken", True), port.push(b"x"))).start()
        t0 = time.monotonic()
        with pytest.raises(LinkError, match="lost the link"):
            hub.deploy(1, 1)
        assert time.monotonic() - t0 < 2.0


def test_heartbeats_flow_at_about_4_hz():
    hub, port = connect(hub_script())

    def beats():
        return [t for f, t in zip(port.frames, port.times) if f.name == "HEARTBEAT"]

    with hub:
        hub.start_heartbeat()
        wait_for(lambda: len(beats()) >= 6, timeout=10.0, what="six heartbeats")
    gaps = sorted(b - a for a, b in zip(beats(), beats()[1:]))
    median = gaps[len(gaps) // 2]
    assert abs(median - HEARTBEAT_S) < 0.08, "heartbeats %.3f s apart (%s)" % (median, gaps)
    assert gaps[0] > HEARTBEAT_S / 2, "two heartbeats %.3f s apart" % gaps[0]


# ------------------------------------------------------------------ estop --

def report(done, total, pending_ids):
    bitmap = bytearray(32)
    for i in pending_ids:
        bitmap[i // 8] |= 1 << (i % 8)
    return {"done": done, "total": total, "confirmed": total - len(pending_ids),
            "unconfirmed": len(pending_ids), "pending": bytes(bitmap)}


def test_estop_waits_for_the_final_report_and_lists_unconfirmed_bots():
    def estop(port, f):
        port.send("ESTOP_REPORT", report(1, 4, []), seq=1, flags=0)       # stale: before the ACK
        ack(port, f, "ACCEPTED", detail=4)
        port.send("ESTOP_REPORT", report(0, 4, [1, 3]), seq=2, flags=0)
        port.send("ESTOP_REPORT", report(1, 4, [3]), seq=3, flags=0)
    hub, port = connect(hub_script(ESTOP=estop))
    with hub:
        result = hub.estop(timeout=2)
    assert not result.ok and result.unconfirmed == [3] and result.confirmed == 3
    assert port.sent("ESTOP")[0].tag is None


def test_estop_is_ok_only_when_every_bot_is_confirmed():
    def estop(port, f):
        ack(port, f, "ACCEPTED", detail=4)
        port.send("ESTOP_REPORT", report(1, 4, []), seq=3, flags=0)
    hub, _ = connect(hub_script(ESTOP=estop))
    with hub:
        result = hub.estop(timeout=2)
    assert result.ok and result.unconfirmed == [] and result.total == 4


# -------------------------------------------------------------------- log --

def make_log(n):
    records, chain = [], auditlog.ZERO_CHAIN
    for i in range(n):
        rec = {"index": i, "t": 10 * i, "event": 3, "a": 1, "b": i, "c": -i}
        chain = auditlog.chain_of(chain, auditlog.head_bytes(rec))
        rec["chain"] = chain
        records.append(rec)
    return records


def test_log_chunks_resume_from_an_index_and_verify():
    log = make_log(50)

    def log_read(port, f):
        start = f["start"]
        part = log[start:start + min(f["max"], 19)]
        port.send("LOG_CHUNK", {"start": start, "first": 0, "next": len(log)}, part, seq=f.seq)
    hub, _ = connect(hub_script(LOG_READ=log_read))
    with hub:
        head = hub.log_pull(0)[:20 * auditlog.SIZE]
        tail = hub.log_pull(20)
    records = auditlog.parse_records(head + tail)
    assert [r["index"] for r in records] == list(range(50))
    assert auditlog.verify(records).ok
