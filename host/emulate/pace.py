"""A pacing proxy: a TCP link throttled to the rate of a serial line.

    with Pacer("127.0.0.1:7000", baud=115200) as line:
        with Hub.open(line.url) as hub:          # socket://127.0.0.1:PORT
            ...

    python -m nanohub.host.emulate.pace --to 127.0.0.1:7000 --baud 115200 [--listen 127.0.0.1:0]

A UART at ``baud`` with 8N1 framing moves ten bit times per byte, so each
direction releases at most ``baud / 10`` bytes per second, byte after byte
(in small chunks), and a byte leaves no earlier than a real line would have
finished sending it. The proxy reads from a socket only as fast as it can
release, so back-pressure reaches the sender as it would on a serial port
(within the kernel's socket buffers, kept small here). ``baud=None`` relays
without pacing: a plain tap.

``tap(direction, data, t)`` (optional) sees every chunk after it was
released: ``direction`` is ``"up"`` (client to target) or ``"down"``, ``t``
the ``time.monotonic()`` at which it was handed to the receiver. ``stats``
counts bytes each way. One client at a time; a new connection replaces the
old one, as a serial port has one user.
"""
import argparse
import socket
import sys
import threading
import time

_SLACK_S = 0.002         # how far a late pump may catch up (sleep overshoot)
_IDLE_S = 0.0003         # a read that waited this long found the line idle
_RCVBUF = 4096           # keep what the kernel buffers close to a UART's FIFO


def _hostport(s):
    host, _, port = str(s).rpartition(":")
    return host or "127.0.0.1", int(port)


def _tune(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _RCVBUF)
    except OSError:
        pass


class Pacer:
    """Listen on ``listen``; relay each client to ``target`` at ``baud``."""

    def __init__(self, target, baud=115200, listen="127.0.0.1:0", chunk=16, tap=None):
        self.target = _hostport(target)
        self.baud = baud
        self.rate = baud / 10.0 if baud else None     # bytes per second, 8N1
        self.chunk = chunk if baud else 65536
        self.tap = tap
        self.stats = {"up": 0, "down": 0, "connections": 0}
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _tune(self._srv)
        self._srv.bind(_hostport(listen))
        self._srv.listen(1)
        self._srv.settimeout(0.2)
        self.port = self._srv.getsockname()[1]
        self._closed = threading.Event()
        self._pair = None
        self._lock = threading.Lock()
        self._threads = []
        self._acceptor = None

    @property
    def url(self):
        return "socket://127.0.0.1:%d" % self.port

    @property
    def bytes_per_s(self):
        return self.rate

    def start(self):
        self._acceptor = threading.Thread(target=self._accept_loop, name="pace-accept",
                                          daemon=True)
        self._acceptor.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._closed.set()
        self._drop()
        try:
            self._srv.close()
        except OSError:
            pass
        for t in [self._acceptor] + self._threads:
            if t is not None and t is not threading.current_thread():
                t.join(1.0)

    # ------------------------------------------------------------ relay --

    def _drop(self):
        with self._lock:
            pair, self._pair = self._pair, None
        for s in pair or ():
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept_loop(self):
        while not self._closed.is_set():
            try:
                cli, _ = self._srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                dst = socket.create_connection(self.target, timeout=5.0)
            except OSError:
                cli.close()
                continue
            for s in (cli, dst):
                _tune(s)
                s.settimeout(0.2)
            self._drop()
            with self._lock:
                self._pair = (cli, dst)
            self.stats["connections"] += 1
            self._threads = [t for t in self._threads if t.is_alive()]
            for src, out, way in ((cli, dst, "up"), (dst, cli, "down")):
                t = threading.Thread(target=self._pump, args=(src, out, way),
                                     name="pace-" + way, daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src, dst, way):
        rate, chunk, tap, stats = self.rate, self.chunk, self.tap, self.stats
        due = time.monotonic()          # when the line finishes what it was given
        while not self._closed.is_set():
            asked = time.monotonic()
            try:
                data = src.recv(chunk)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            if rate:
                now = time.monotonic()
                if now - asked > _IDLE_S:
                    due = max(due, now)         # the line fell idle: it starts now
                elif due < now - _SLACK_S:
                    due = now - _SLACK_S        # we are late: catch up, within the slack
                due += len(data) / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            t = time.monotonic()
            try:
                dst.sendall(data)
            except OSError:
                break
            stats[way] += len(data)
            if tap is not None:
                tap(way, data, t)
        if self._pair is not None and src in self._pair:
            self._drop()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nanohub.host.emulate.pace", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--to", required=True, metavar="HOST:PORT", help="where to relay to")
    ap.add_argument("--baud", type=int, default=115200, help="line rate (0: no pacing)")
    ap.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    args = ap.parse_args(argv)
    pacer = Pacer(args.to, baud=args.baud or None, listen=args.listen).start()
    print("socket://127.0.0.1:%d" % pacer.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        pacer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
