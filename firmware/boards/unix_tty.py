"""SITL board on a terminal: the unix port with the console as the host link.

Like a real board: the hub owns stdin/stdout (``kbd_intr(-1)``), so the host
reaches it through whatever terminal the process has: a pseudo-terminal
made by socat or Python's pty, which pyserial opens like a USB port. This is
what ``nanohub flash --board unix`` installs and starts over a PTY.

    micropython main.py --board unix_tty --store nanohub --hub-id 1
        [--bus 127.0.0.1:7701]

Bot bus: optional, a TCP connection out to the swarm gateway (reconnects;
``boards/tcpbus.py``, as on the socket ``unix`` board).
No watchdog (the socket ``unix`` board has one); the reset cause is POWER.
Host writes never block: the terminal is switched to O_NONBLOCK and
``Console.write`` polls for room first, then keeps what a short write left
(``hub.hostout``). Polling alone is not enough on a Linux PTY: at the edge
of its buffer it reports room, takes part of a frame and then sleeps until
the other side reads. The unix port has no ``fcntl``; ``dd oflag=nonblock``
run with the hub's stdout sets the flag on the open terminal they share (it
stays set after the hub exits, as for any program that sets it).
"""
from boards.console import Console, ConsoleBoard
from boards.tcpbus import TcpBus
from hub import wire

STORE = "nanohub"       # the hub's files, under the working directory (nanohub flash)


def _nonblocking_stdout():
    """O_NONBLOCK on the terminal behind stdout; True if it was set."""
    import os
    try:
        return os.system("dd if=/dev/null count=0 oflag=nonblock 2>/dev/null") == 0
    except (OSError, AttributeError):
        return False            # no shell: POLLOUT before each write still guards most of it


class Board(ConsoleBoard):
    name = "unix_tty"

    @classmethod
    def from_opts(cls, o):
        bus = o.pop("bus", None)
        store = o.pop("store", STORE)
        cls.refuse(o)
        return cls(bus, store)

    def __init__(self, bus=None, store=STORE, console=None):
        # a tty that reports POLLOUT takes a whole frame (pty: below its 64 KB
        # limit; UART: under 256 bytes queued of 4 KB): write frames in one piece
        self.nonblocking = False
        if console is None:
            self.nonblocking = _nonblocking_stdout()
        ConsoleBoard.__init__(self, store, console if console is not None
                              else Console(chunk=wire.MAX_WIRE))
        self._bus = TcpBus(bus, self._poll)

    def stopping(self):
        return self._con.eof    # the terminal hung up: nobody can reach the hub

    def bus_read(self, buf):
        return self._bus.read(buf)

    def bus_write(self, buf, n):
        self._bus.write(buf, n)
