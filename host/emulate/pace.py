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
old one, as a serial port has one user. The relay is ``link.relay.Relay``
with a thread per direction.
"""
import argparse
import socket
import sys
import time

from nanohub.host.link.relay import Relay, serve

_SLACK_S = 0.002         # how far a late pump may catch up (sleep overshoot)
_IDLE_S = 0.0003         # a read that waited this long found the line idle
_RCVBUF = 4096           # keep what the kernel buffers close to a UART's FIFO


class Pacer(Relay):
    """Listen on ``listen``; relay each client to ``target`` at ``baud``."""

    name = "pace"
    threaded = True             # each direction sleeps on its own thread
    timeout_s = 0.2

    def __init__(self, target, baud=115200, listen="127.0.0.1:0", chunk=16, tap=None):
        super().__init__(target, listen, single=True)
        self.baud = baud
        self.rate = baud / 10.0 if baud else None     # bytes per second, 8N1
        self.recv_size = chunk if baud else 65536
        self.tap = tap
        self.stats.update({"up": 0, "down": 0})

    @property
    def bytes_per_s(self):
        return self.rate

    # --------------------------------------------------- relay hooks --
    def opened(self, up, down):
        for pipe in (up, down):
            pipe.due = time.monotonic()         # when the line finishes what it was given

    def tune(self, sock):
        super().tune(sock)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _RCVBUF)
        except OSError:
            pass

    def received(self, pipe, data, now):
        """On the pipe's own thread: hold ``data`` until the line would have sent it."""
        rate = self.rate
        if rate:
            due = pipe.due
            if now - pipe.asked > _IDLE_S:
                due = max(due, now)             # the line fell idle: it starts now
            elif due < now - _SLACK_S:
                due = now - _SLACK_S            # we are late: catch up, within the slack
            due += len(data) / rate
            pipe.due = due
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        return not self.send(pipe, data)

    def delivered(self, pipe, data, t):
        self.stats[pipe.name] += len(data)
        if self.tap is not None:
            self.tap(pipe.name, data, t)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nanohub.host.emulate.pace", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--to", required=True, metavar="HOST:PORT", help="where to relay to")
    ap.add_argument("--baud", type=int, default=115200, help="line rate (0: no pacing)")
    ap.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    args = ap.parse_args(argv)
    pacer = Pacer(args.to, baud=args.baud or None, listen=args.listen)
    print("socket://127.0.0.1:%d" % pacer.port, flush=True)
    return serve(pacer)


if __name__ == "__main__":
    sys.exit(main())
