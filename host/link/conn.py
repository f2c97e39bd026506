"""One client's connection to the broker: its socket, request queue and output.

A reader thread cuts the client's byte stream into frames and hands each to
the broker, within a byte budget (``READ_RATE``: far above what any operator's
program sends, so only a flood waits); a writer thread sends what the broker
queued for the client. ACKs
and replies are never dropped (a client that lets ``OUT_LIMIT`` of them pile
up has stopped reading and is let go); telemetry is, beyond
``TELEMETRY_BACKLOG`` frames not yet sent.
"""
import collections
import socket
import threading
import time

from nanohub.protocol import codec

TELEMETRY_BACKLOG = 256
OUT_LIMIT = 4096
READ_RATE = 128 * 1024      # bytes per second a client may send, sustained
READ_BURST = 64 * 1024


def frames_in(buf, data):
    """Append ``data`` to ``buf``; yield each whole frame (COBS, no delimiter) in it.

    A run longer than any frame without a delimiter is garbage and is dropped
    (:func:`nanohub.protocol.codec.split_frames`, the protocol's own stream splitter).
    """
    return (chunk for chunk in codec.split_frames(buf, data) if chunk is not None)


class ClientConn:
    """One connected client: its socket, request queue, retry map and output."""

    def __init__(self, broker, sock, cid, peer):
        self.broker, self.sock, self.id, self.peer = broker, sock, cid, peer
        self.queue = collections.deque()
        self.retry = collections.OrderedDict()
        self.out = collections.deque()
        self.telemetry_queued = 0
        self.cond = threading.Condition()
        self.last_hb = None
        self.last_signed_hb = 0.0     # a signed heartbeat last heard from it
        self.last_signed_fwd = 0.0    # and last sent on to the hub
        self.dropped = self.bad = self.frames = 0
        self.alive = True

    def start(self):
        for fn, what in ((self._read, "read"), (self._write, "write")):
            threading.Thread(target=fn, name="nanohub-serve-%d-%s" % (self.id, what),
                             daemon=True).start()

    def send(self, wire, telemetry=False):
        with self.cond:
            if not self.alive:
                return
            if telemetry:
                if self.telemetry_queued >= TELEMETRY_BACKLOG:
                    return                          # a reader this far behind misses telemetry
                self.telemetry_queued += 1
            elif len(self.out) >= OUT_LIMIT:
                self.alive = False                  # it stopped reading: let it go
            self.out.append((wire, telemetry))
            self.cond.notify()

    def _write(self):
        while True:
            with self.cond:
                while self.alive and not self.out:
                    self.cond.wait()
                if not self.alive:
                    break
                batch = []
                while self.out:
                    wire, telemetry = self.out.popleft()
                    self.telemetry_queued -= telemetry
                    batch.append(wire)
            try:
                self.sock.sendall(b"".join(batch))
            except OSError:
                break
        self.broker._drop(self)

    def _read(self):
        buf = bytearray()
        tokens, last = READ_BURST, time.monotonic()
        while self.alive:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            for chunk in frames_in(buf, data):
                self.broker._from_client(self, chunk)
            # a byte budget: a client sending far more than any operator's program
            # waits for its own backlog, and costs the others no CPU
            now = time.monotonic()
            tokens = min(READ_BURST, tokens + (now - last) * READ_RATE) - len(data)
            last = now
            if tokens < 0:
                time.sleep(-tokens / READ_RATE)
        self.broker._drop(self)

    def close(self):
        with self.cond:
            self.alive = False
            self.cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
