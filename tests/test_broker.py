"""The broker (``nanohub serve``): many clients on one hub link, against the real
firmware on the MicroPython VM and the swarm gateway."""
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from _waiting import wait_for

from nanohub.host.client import Hub
from nanohub.host.errors import LinkError
from nanohub.host.emulate.faultproxy import FaultProxy
from nanohub.host.link import local
from nanohub.host.link.broker import Broker
from nanohub.protocol import codec, schema


def _target(emu):
    return ("127.0.0.1", int(emu.url.rsplit(":", 1)[1]))


@pytest.fixture
def broker(hub8):
    with Broker(hub8.url, "t1") as b:
        yield b


def _acks_seen(hub):
    """Record the request id of every ACK this client receives."""
    seen = []
    route = hub._route

    def spy(f):
        if f.name == "ACK":
            seen.append(f["req"])
        route(f)
    hub._route = spy
    return seen


def test_each_client_sees_only_the_acks_to_its_own_requests(hub8, broker):
    a = Hub.open(broker.unix_url)
    b = Hub.open("nanohub://t1")
    try:
        a._req = b._req = 1000          # the same ids on both: the broker keeps them apart
        seen = {a: _acks_seen(a), b: _acks_seen(b)}
        sent = {a: [], b: []}

        def work(hub):
            # unsigned, as from a host without the key: the broker renumbers these
            # (a signed one keeps its id, which must rise above the hub's mark)
            for i in range(25):
                seq = hub._next_req()
                wire = codec.encode("ALARM_ACK", {"code": 0}, seq=seq)
                ack = hub._transact("ALARM_ACK", seq, wire)
                assert ack.status == "DONE", ack
                sent[hub].append(ack.req)
        threads = [threading.Thread(target=work, args=(h,)) for h in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for hub in (a, b):
            assert len(sent[hub]) == 25
            assert sorted(seen[hub]) == sorted(sent[hub])       # each ACK once, only its own
        assert sent[a] == sent[b]                                # same client ids, both served
        assert broker.stats["acks_unrouted"] == 0
    finally:
        a.close()
        b.close()


def test_the_hub_sees_one_rising_stream_of_request_ids_and_signed_frames_unaltered(
        hub8, module_home):
    upstream = []

    def tap(direction, unit):
        if direction == "up" and unit.strip(b"\0"):
            upstream.append(unit.strip(b"\0"))
    with FaultProxy(_target(hub8)) as px, Broker(px.url, "mono") as b:
        px.taps.append(tap)
        a = Hub.open(b.unix_url, key=hub8.key_path)
        c = Hub.open(b.unix_url, key=hub8.key_path)
        try:
            a._req = c._req = 500                   # both clients use the same ids
            for _ in range(10):
                a.command("ALARM_ACK", {"code": 0})
                c.request("STATUS", "HUB_STATUS")
            seq, signed = a.build("CONSENT", {"patient": 4711})
            assert a._transact("CONSENT", seq, signed).status == "DONE"
        finally:
            a.close()
            c.close()
    frames = [codec.decode(u) for u in upstream]
    ids = [f.seq for f in frames if f.name in ("ALARM_ACK", "REQUEST")]
    assert len(ids) == 20 and all(0 < (y - x) & 0xFFFF < 100 for x, y in zip(ids, ids[1:]))
    assert signed.strip(b"\0") in upstream                     # byte for byte
    assert b.stats["refused_duplicate"] > 0     # a's ids fell behind c's renumbered reads


def test_loopback_tcp_clients_share_the_hub_too(hub8, module_home):
    with Broker(hub8.url, "tcp", tcp=0) as b:
        assert b.tcp_url.startswith("socket://127.0.0.1:") and b.tcp_url in b.urls()
        with Hub.open(b.tcp_url) as a, Hub.open(b.unix_url) as c:
            assert a.status()["state"] == c.status()["state"] == "SAFE"


def test_a_client_from_another_schema_is_refused_as_the_hub_would(broker):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(broker.socket_path)
        raw = bytearray(codec.build("HELLO", {"schema": 0x12345678, "host_version": 1}, seq=9))
        s.sendall(b"\0" + codec.cobs.encode(bytes(raw)) + b"\0")
        s.settimeout(5)
        data = b""
        while b"\0" not in data.lstrip(b"\0"):
            data += s.recv(4096)
    reply = codec.decode(data.lstrip(b"\0").split(b"\0")[0])
    assert reply.name == "HELLO_REPLY" and reply.seq == 9
    assert reply["result"] == schema.enum_value("HELLO", "SCHEMA")


def test_a_retried_command_runs_once_signed_or_not(hub8, broker):
    with Hub.open(broker.unix_url, key=hub8.key_path) as hub:
        docked = hub.status()["bots"]["docked"]
        seq, wire = hub.build("DEPLOY", {"site": 40, "count": 1})
        first = hub._transact("DEPLOY", seq, wire)
        again = hub._transact("DEPLOY", seq, wire)              # the same bytes: a retry
        assert first.status == again.status == "DONE" and first.detail == again.detail == 1
        wait_for(lambda: hub.status()["bots"]["docked"] < docked, what="the bot to leave")
        time.sleep(0.3)                         # the window a second bot would leave in
        assert hub.status()["bots"]["docked"] == docked - 1     # one bot went, not two
        # a signed command passes the broker unaltered: its retry hits the hub's
        # ACK cache (a re-run would be refused as a replayed counter)
        seq, wire = hub.build("CONSENT", {"patient": 4711})
        first = hub._transact("CONSENT", seq, wire)
        again = hub._transact("CONSENT", seq, wire)
        assert (first.status, first.reason) == (again.status, again.reason) == ("DONE", "NONE")
        # leave the shared hub as found: one bot alone in the mouth is the whole
        # swarm, and a single late report on a loaded machine would stop the hub
        # (SYSTEMIC) under the tests that come after
        hub.command("RECALL", {"bot": 255})
        wait_for(lambda: hub.status()["bots"]["docked"] == docked, what="the bot to dock")


# the bench's flooding client: unsigned commands and junk as fast as the socket takes them
FLOOD = [sys.executable, "-m", "bench.broker", "--flood-into"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_estop_from_a_second_client_is_confirmed_within_half_a_second_while_another_floods(
        own_hub8):
    with Broker(own_hub8.url, "flood") as broker, Hub.open(broker.unix_url) as op:
        op.command("DEPLOY", {"site": 40, "count": 4})
        flooder = subprocess.Popen(FLOOD + [broker.socket_path], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert flooder.stdout.readline().strip() == "flooding"
            wait_for(lambda: broker.stats["dropped_budget"] > 500, what="the flood to overrun "
                     "its budget")
            t0 = time.monotonic()
            result = op.estop()
            took = time.monotonic() - t0
            assert flooder.poll() is None                   # it was still flooding
        finally:
            flooder.kill()
            flooder.wait()
        assert result.ok and result.confirmed == 8, result
        assert took < 0.5, "ESTOP took %.3f s behind the flood" % took


def test_a_client_may_stop_the_hub_before_any_handshake(own_hub8):
    with Broker(own_hub8.url, "early") as broker, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(broker.socket_path)
        s.sendall(b"\0" + codec.encode("ESTOP", {"source": 2}, seq=7))
        with Hub.open(broker.unix_url) as other:
            wait_for(lambda: other.status()["state"] == "ESTOP", what="the hub to stop")


def test_the_broker_heartbeats_only_while_a_client_does(hub8, broker):
    with Hub.open(broker.unix_url, heartbeat=False) as quiet:
        time.sleep(0.4)                         # a window with a silent client: nothing goes out
        assert broker.stats["heartbeats"] == 0              # a silent client keeps nothing alive
        with Hub.open(broker.unix_url):
            wait_for(lambda: broker.stats["heartbeats"] >= 3, what="broker heartbeats")
        # its frames are all handled once the broker has let it go
        wait_for(lambda: len(broker.clients) == 1, what="the broker to let the client go")
        beats = broker.stats["heartbeats"]
        time.sleep(0.4)                         # a window without a heartbeating client
        assert broker.stats["heartbeats"] == beats          # gone with the last heartbeating client
        assert quiet.status()["state"] == "SAFE"


def test_a_dropped_hub_link_is_reopened_and_the_clients_are_told(hub8, module_home):
    with FaultProxy(_target(hub8)) as px, Broker(px.url, "t2") as b:
        with Hub.open("nanohub://t2") as hub:
            notices = []
            hub.on_notice = lambda code, text: notices.append(local.NOTICES[code])
            assert hub.status()["state"] == "SAFE"
            px.disconnect_all()
            wait_for(lambda: notices == ["lost", "back"], what="lost and back notices")
            assert hub.status()["state"] == "SAFE"              # the same session carries on
            assert b.stats["reconnects"] == 1 and hub.error is None


def test_a_hub_that_stays_away_ends_its_clients_with_lost_the_link(hub8, module_home):
    px = FaultProxy(_target(hub8)).start()
    try:
        with Broker(px.url, "t3", give_up=0.5) as b, Hub.open(b.unix_url) as hub:
            hub.on_notice = None
            px.close()
            wait_for(lambda: hub.error is not None, what="the broker to give up")
            with pytest.raises(LinkError, match="lost the link to the hub behind nanohub"):
                hub.status()
    finally:
        px.close()


def test_a_direct_opener_of_a_served_port_is_told_who_holds_it(hub8, module_home):
    with Broker(hub8.url, "chair1"):
        proc = subprocess.run([sys.executable, "-m", "nanohub.host.cli", "--port", hub8.url,
                               "status"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.strip() == ("nanohub: port busy: held by nanohub serve (pid %d); use "
                                   "--port nanohub://chair1" % os.getpid())


def _status_rate(hubs, seconds):
    """HUB_STATUS telemetry frames a second on each client, counted together."""
    subs = {h: h.subscribe() for h in hubs}
    counts = {h: 0 for h in hubs}

    def count(h):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            f = subs[h].get(0.05)
            if f is not None and getattr(f, "name", None) == "HUB_STATUS":
                counts[h] += 1
    threads = [threading.Thread(target=count, args=(h,)) for h in hubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 5)
    for h in hubs:
        h.unsubscribe(subs[h])
    return {h: counts[h] / seconds for h in hubs}


def test_each_client_gets_telemetry_at_its_own_rate_and_the_hub_the_highest(own_hub8, home):
    with Broker(own_hub8.url, "rates") as b:
        slow = Hub.open(b.unix_url, key=own_hub8.key_path)   # signs: passes byte for byte
        fast = Hub.open(b.unix_url)                          # unsigned: rewritten
        plain = Hub.open(b.unix_url)                         # never sets rates: the hub's
        try:
            assert slow.set_rates(status_hz=1, bots_hz=1, sites_hz=1).status == "DONE"
            seq = fast._next_req()
            wire = codec.encode("TELEM_RATE", {"status_hz": 5, "bots_hz": 2, "sites_hz": 1},
                                seq=seq)
            assert fast._transact("TELEM_RATE", seq, wire).status == "DONE"
            wait_for(lambda: b.hub_rates == (5, 2, 1) and b.own_rates is None,
                     what="the hub at the highest rates")
            r = _status_rate((slow, fast, plain), 4.0)
            assert 0.5 <= r[slow] <= 1.5, r              # what it asked for
            assert 4.0 <= r[fast] <= 6.0, r
            assert 4.0 <= r[plain] <= 6.0, r             # the hub runs at the highest
            # the fast one asks for less: the slow one's signed request is the most now
            seq = fast._next_req()
            wire = codec.encode("TELEM_RATE", {"status_hz": 2, "bots_hz": 1, "sites_hz": 1},
                                seq=seq)
            assert fast._transact("TELEM_RATE", seq, wire).status == "DONE"
            wait_for(lambda: b.hub_rates == (2, 1, 1), what="the hub at 2 Hz")
            fast.close()                                 # leaves: the rest's highest
            wait_for(lambda: b.hub_rates == (1, 1, 1) and b.own_rates is None,
                     what="the hub back at the slow client's rate")
            r = _status_rate((slow, plain), 4.0)
            assert 0.5 <= r[slow] <= 1.5 and 0.5 <= r[plain] <= 1.5, r
            assert b.stats["own_telem_rate"] >= 1 and b.stats["acks_unrouted"] == 0
        finally:
            for h in (slow, fast, plain):
                h.close()
