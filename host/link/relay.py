"""A TCP relay: listen, connect each client to a target, pass the bytes on.

    with Relay("127.0.0.1:7000") as r:             # socket://127.0.0.1:r.port
        ...

The one relay under every proxy of the project: the fault-injecting proxy
(``faultproxy``), the serial-line pacer (``pace``) and the swarm gateway's
host-link relay (``sim/gateway.py``). It owns the sockets and runs on one
thread: a selector wakes it for new clients, for data, and when something a
subclass scheduled falls due. A subclass shapes the bytes through three
hooks, each called on that thread:

- ``received(pipe, data, now)``: what one side sent (default: pass it on
  with ``send``); returning True cuts the connection;
- ``next_due()``: the ``time.monotonic()`` at which it wants ``run_due``
  called (None: nothing scheduled);
- ``run_due(now)``: send what has fallen due.

A ``Pipe`` is one direction of one connection: ``name`` is ``"up"`` (client
to target) or ``"down"``, ``src`` the socket it reads, ``dst`` the one it
writes. With ``single``, one client at a time: a new connection replaces the
old one, as a serial port has one user. ``disconnect_all()`` pulls the cable.

With ``threaded`` (a class attribute), each pipe instead gets a thread of its
own that reads ``src`` and calls ``received`` (without the lock), which may
then sleep to hold bytes back: the pacer's line timing comes out exact that
way, and a direction that waits is not read meanwhile (back-pressure).
"""
import contextlib
import selectors
import socket
import threading
import time


def hostport(s):
    """(host, port) for "HOST:PORT", ":PORT" or a (host, port) pair."""
    if isinstance(s, (tuple, list)):
        return s[0], int(s[1])
    host, _, port = str(s).rpartition(":")
    return host or "127.0.0.1", int(port)


class Pipe:
    """One direction of one relayed connection."""

    def __init__(self, relay, name, src, dst):
        self.relay, self.name, self.src, self.dst = relay, name, src, dst
        self.peer = None            # the other direction
        self.open = True
        self.asked = time.monotonic()   # when its reader last asked for bytes


class Relay:
    """Listens on ``listen``; relays each client to ``target`` on one thread."""

    selector = selectors.DefaultSelector
    threaded = False
    name = "relay"
    recv_size = 65536
    timeout_s = 2.0             # connect, and a send to a peer that does not read
    tick_s = 0.05               # the longest sleep with nothing due

    def __init__(self, target, listen="127.0.0.1:0", single=False):
        self.target = hostport(target)
        self.single = single
        self.stats = {"connections": 0, "refused": 0, "pulled": 0}
        self._lsock = socket.create_server(hostport(listen))
        self.port = self._lsock.getsockname()[1]
        self._sel = self.selector()
        self._sel.register(self._lsock, selectors.EVENT_READ, None)
        self._pipes = []            # open pipes, two per connection
        self._threads = []
        self._plock = threading.RLock()     # the pipes
        self.lock = threading.Lock()    # hooks run under it; callers change settings with it
        self._stop = threading.Event()
        self._cut_all = False
        self._thread = None

    # ---------------------------------------------------------- life --
    @property
    def url(self):
        return "socket://127.0.0.1:%d" % self.port

    def start(self):
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        for t in [self._thread] + self._threads:
            if t is not None and t is not threading.current_thread():
                t.join(2.0)
        for p in list(self._pipes):
            self.drop(p)
        self._lsock.close()
        self._sel.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def disconnect_all(self):
        """Cut every relayed connection now (a cable pulled)."""
        with self.lock:
            self._cut_all = True

    # --------------------------------------------------------- hooks --
    def tune(self, sock):
        """Socket options for both ends of a new connection."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def opened(self, up, down):
        """A client connected: ``up`` and ``down`` are its two pipes."""

    def received(self, pipe, data, now):
        self.send(pipe, data)
        return False

    def next_due(self):
        return None

    def run_due(self, now):
        pass

    def delivered(self, pipe, data, t):
        """``data`` went out through ``pipe`` at ``t``."""

    # ----------------------------------------------------------- use --
    def send(self, pipe, data):
        """Write ``data`` to the pipe's destination; False if the connection is gone."""
        if not pipe.open:
            return False
        t = time.monotonic()
        try:
            pipe.dst.sendall(data)
        except OSError:
            self.drop(pipe)
            return False
        self.delivered(pipe, data, t)
        return True

    def drop(self, pipe):
        """Close the connection ``pipe`` belongs to (both directions)."""
        with self._plock:
            for p in (pipe, pipe.peer):
                if p is None or not p.open:
                    continue
                p.open = False
                if p in self._pipes:
                    self._pipes.remove(p)
                if not self.threaded:
                    try:
                        self._sel.unregister(p.src)
                    except (KeyError, ValueError):
                        pass
                with contextlib.suppress(OSError):
                    p.src.shutdown(socket.SHUT_RDWR)    # the peer sees EOF at once
                p.src.close()

    # ---------------------------------------------------------- loop --
    def _loop(self):
        while not self._stop.is_set():
            timeout = self.tick_s
            with self.lock:
                due = self.next_due()
            if due is not None:
                timeout = max(0.0, min(timeout, due - time.monotonic()))
            try:
                events = self._sel.select(timeout)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                raise
            for key, _ in events:
                if key.fileobj is self._lsock:
                    self._accept()
                    continue
                pipe = key.data
                if not pipe.open:
                    continue
                try:
                    data = pipe.src.recv(self.recv_size)
                except OSError:
                    data = b""
                if not data:
                    self.drop(pipe)
                    continue
                with self.lock:
                    cut = self.received(pipe, data, time.monotonic())
                if cut:
                    self.drop(pipe)
            with self.lock:
                self.run_due(time.monotonic())
                cut_all, self._cut_all = self._cut_all, False
            if cut_all:
                if self._pipes:
                    self.stats["pulled"] += 1
                for p in list(self._pipes):
                    self.drop(p)

    def _accept(self):
        try:
            c, _ = self._lsock.accept()
        except OSError:
            return
        try:
            h = socket.create_connection(self.target, timeout=self.timeout_s)
        except OSError:
            self.stats["refused"] += 1
            c.close()
            return
        if self.single:
            for p in list(self._pipes):
                self.drop(p)
        for s in (c, h):
            self.tune(s)
            s.settimeout(self.timeout_s)
        up, down = Pipe(self, "up", c, h), Pipe(self, "down", h, c)
        up.peer, down.peer = down, up
        with self._plock:
            self._pipes += [up, down]
        self.stats["connections"] += 1
        with self.lock:
            self.opened(up, down)
        if not self.threaded:
            self._sel.register(c, selectors.EVENT_READ, up)
            self._sel.register(h, selectors.EVENT_READ, down)
            return
        self._threads = [t for t in self._threads if t.is_alive()]
        for pipe in (up, down):
            t = threading.Thread(target=self._pump, args=(pipe,),
                                 name="%s-%s" % (self.name, pipe.name), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, pipe):
        """A threaded pipe's reader."""
        while pipe.open and not self._stop.is_set():
            pipe.asked = time.monotonic()
            try:
                data = pipe.src.recv(self.recv_size)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data or self.received(pipe, data, time.monotonic()):
                break
        self.drop(pipe)


def serve(relay, every_s=None, report=None):
    """Run ``relay`` until Ctrl-C (a command line's main); ``report()`` every ``every_s``."""
    relay.start()
    try:
        while True:
            time.sleep(every_s or 3600)
            if report is not None:
                report()
    except KeyboardInterrupt:
        pass
    finally:
        relay.close()
    return 0
