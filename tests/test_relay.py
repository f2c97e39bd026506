"""The one TCP relay (``nanohub.host.link.relay``) and the proxies built on it:
bytes pass unchanged both ways, one client at a time where asked, a pulled
cable cuts every connection, and the swarm gateway's host relay drops the
host link's bytes exactly while the scenario's host-link fault is in force."""
import socket
import threading
import time

from nanohub.host.link.relay import Relay, hostport
from nanohub.sim.gateway import HostRelay


def _echo_server():
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(c,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return srv


def _echo(c):
    with c:
        while True:
            try:
                d = c.recv(4096)
            except OSError:
                return
            if not d:
                return
            c.sendall(d)


def _roundtrip(port, data, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    return got


def _closed(sock, timeout=3.0):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_hostport_takes_strings_and_pairs():
    assert hostport("10.0.0.1:7000") == ("10.0.0.1", 7000)
    assert hostport(":7000") == ("127.0.0.1", 7000)
    assert hostport(("::1", "9")) == ("::1", 9)


def test_the_relay_passes_every_byte_both_ways_and_counts_connections():
    srv = _echo_server()
    data = bytes(range(256)) * 64
    with Relay(srv.getsockname()) as r:
        assert _roundtrip(r.port, data) == data
        assert _roundtrip(r.port, b"again") == b"again"
        assert r.stats["connections"] == 2 and r.stats["refused"] == 0
    srv.close()


def test_a_single_client_relay_lets_a_new_client_replace_the_old_one():
    srv = _echo_server()
    with Relay(srv.getsockname(), single=True) as r:
        first = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        first.sendall(b"x")
        assert first.recv(1) == b"x"
        assert _roundtrip(r.port, b"second") == b"second"
        assert _closed(first)
        first.close()
    srv.close()


def test_disconnect_all_pulls_the_cable_and_a_dead_target_is_refused():
    srv = _echo_server()
    with Relay(srv.getsockname()) as r:
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        r.disconnect_all()
        assert _closed(s)
        s.close()
        assert r.stats["pulled"] == 1
    srv.close()
    dead = socket.create_server(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    with Relay(("127.0.0.1", port)) as r:
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        assert _closed(s)
        s.close()
        deadline = time.monotonic() + 3
        while r.stats["refused"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.stats["refused"] == 1


class _World:
    def __init__(self):
        self.down = False

    def host_link_down(self, now_ms):
        return self.down


class _Gw:
    def __init__(self):
        self.world = _World()

    def now(self):
        return 0


def test_the_gateway_host_relay_drops_bytes_while_the_host_link_is_down():
    srv = _echo_server()
    gw = _Gw()
    with HostRelay(gw, "127.0.0.1:%d" % srv.getsockname()[1], "127.0.0.1:0") as r:
        with socket.create_connection(("127.0.0.1", r.port), timeout=5) as s:
            s.sendall(b"up")
            assert s.recv(2) == b"up"
            gw.world.down = True
            s.sendall(b"lost")
            s.settimeout(0.3)
            try:
                got = s.recv(4)
            except socket.timeout:
                got = b""
            assert got == b""
            gw.world.down = False
            s.settimeout(5)
            s.sendall(b"back")
            assert s.recv(4) == b"back"
    srv.close()
