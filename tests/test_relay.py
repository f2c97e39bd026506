"""The one TCP relay (``nanohub.host.link.relay``) and the proxies built on it:
bytes pass unchanged both ways, one client at a time where asked, a pulled
cable cuts every connection, and the swarm gateway's host relay drops the
host link's bytes exactly while the scenario's host-link fault is in force."""
import socket
import socketserver
import threading

from nanohub.host.link.relay import Relay, hostport

from _waiting import wait_for
from nanohub.sim.gateway import HostRelay


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            try:
                d = self.request.recv(4096)
            except OSError:
                return
            if not d:
                return
            self.request.sendall(d)


def _echo_server():
    """An echo server on a free port: its address is ``server_address``."""
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _stop(srv):
    srv.shutdown()
    srv.server_close()


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
    with Relay(srv.server_address) as r:
        assert _roundtrip(r.port, data) == data
        assert _roundtrip(r.port, b"again") == b"again"
        assert r.stats["connections"] == 2 and r.stats["refused"] == 0
    _stop(srv)


def test_a_single_client_relay_lets_a_new_client_replace_the_old_one():
    srv = _echo_server()
    with Relay(srv.server_address, single=True) as r:
        first = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        first.sendall(b"x")
        assert first.recv(1) == b"x"
        assert _roundtrip(r.port, b"second") == b"second"
        assert _closed(first)
        first.close()
    _stop(srv)


def test_disconnect_all_pulls_the_cable_and_a_dead_target_is_refused():
    srv = _echo_server()
    with Relay(srv.server_address) as r:
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        r.disconnect_all()
        assert _closed(s)
        s.close()
        assert r.stats["pulled"] == 1
    _stop(srv)
    dead = socket.create_server(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    with Relay(("127.0.0.1", port)) as r:
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        assert _closed(s)
        s.close()
        wait_for(lambda: r.stats["refused"] >= 1, 3, "the relay counting the refused connection")
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
    with HostRelay(gw, "127.0.0.1:%d" % srv.server_address[1], "127.0.0.1:0") as r:
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
    _stop(srv)
