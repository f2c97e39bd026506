"""The bot bus as a TCP connection out to the swarm gateway (the unix-port boards).

``TcpBus(hostport, poll)`` connects on the first read, and again at most every
500 ms after the gateway went away; ``poll`` (the board's wait) then also
wakes on bus data. Reads take what has arrived, never waiting. Writes never
block either: what the socket refuses now waits in a fixed buffer and goes
out before the next frame, so a short write never tears a frame; when that
buffer is full the frame is dropped whole and counted in ``dropped`` (the
hub's bus rules treat a lost command like any other lost frame).
"""
import select
import socket

from hub.compat import ticks_diff, ticks_ms

_PEND = 1536
_RECONNECT_MS = 500


def addr(hostport):
    """A socket address for "HOST:PORT"."""
    host, port = hostport.rsplit(":", 1)
    return socket.getaddrinfo(host, int(port))[0][-1]


def recv_into(sock, buf):
    """Bytes from a non-blocking socket into ``buf``: the count, 0 when none
    has arrived, -1 when the peer closed the connection."""
    try:
        n = sock.readinto(buf)
    except OSError:
        return 0
    if n is None:
        return 0
    return n if n else -1


def forget(poll, sock):
    """Close ``sock`` and take it out of ``poll`` (if it was there)."""
    try:
        poll.unregister(sock)
    except (OSError, ValueError):
        pass
    sock.close()


class TcpBus:
    def __init__(self, hostport, poll):
        self._addr = addr(hostport) if hostport else None
        self._poll = poll
        self._sock = None
        self._try = 0
        self._pend = bytearray(_PEND)
        self._pn = 0
        self.dropped = 0

    def read(self, buf):
        """Bytes into ``buf``; 0 when none (or no gateway)."""
        if self._sock is None and not self._connect():
            return 0
        n = recv_into(self._sock, buf)
        if n >= 0:
            return n
        self.close()            # the gateway went away: reconnect on a later read
        return 0

    def write(self, buf, n):
        """Write pending bytes, then the frame; keep what the socket refuses."""
        s = self._sock
        if s is None:
            return
        pend = self._pend
        pn = self._pn
        try:
            if pn:
                w = s.write(pend, 0, pn) or 0
                if w:
                    pend[0:pn - w] = pend[w:pn]
                    pn -= w
            if pn == 0:
                w = s.write(buf, 0, n) or 0
                if w < n:
                    pend[0:n - w] = buf[w:n]
                    pn = n - w
            elif pn + n <= len(pend):
                pend[pn:pn + n] = buf[0:n]
                pn += n
            else:
                self.dropped += 1
        except OSError:
            pn = 0              # reset by the gateway: the next read sees it and reconnects
        self._pn = pn

    def _connect(self):
        """True once connected (at most one try per _RECONNECT_MS)."""
        if self._addr is None:
            return False
        now = ticks_ms()
        if self._try and ticks_diff(now, self._try) < _RECONNECT_MS:
            return False
        self._try = now
        s = socket.socket()
        try:
            s.connect(self._addr)
        except OSError:
            s.close()
            return False
        s.setblocking(False)
        self._sock = s
        self._pn = 0
        self._poll.register(s, select.POLLIN)
        return True

    def close(self):
        if self._sock is not None:
            forget(self._poll, self._sock)
            self._sock = None
