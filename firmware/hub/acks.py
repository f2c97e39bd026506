"""Exactly-once: the ACK cache and the session's request-id high-water mark.

The last ``wire.ACK_CACHE`` answers, keyed by request id and the frame's CRC:
a command re-sent with the same bytes gets its cached ACK and is not run
again. Request ids of one host session rise, so a command at or below the
mark was answered before even when its ACK has left the cache.
"""
from array import array

from hub import wire


class Acks:
    def __init__(self, n=wire.ACK_CACHE):
        self.seq = array("l", [-1] * n)
        self.crc = array("l", [0] * n)
        self.cmd = bytearray(n)
        self.status = bytearray(n)
        self.reason = bytearray(n)
        self.detail = array("l", [0] * n)
        self.next = 0
        self.hw = -1                # highest command request id of this host session

    def find(self, seq, crc):
        """The slot holding the answer to (seq, crc), or -1."""
        s = self.seq
        c = self.crc
        for k in range(len(s)):
            if s[k] == seq and c[k] == crc:
                return k
        return -1

    def remember(self, seq, crc, cmd, status, why, detail):
        k = self.next
        self.next = (k + 1) % len(self.seq)
        self.seq[k] = seq
        self.crc[k] = crc
        self.cmd[k] = cmd
        self.status[k] = status
        self.reason[k] = why
        self.detail[k] = detail

    def seen(self, seq):
        """Whether ``seq`` is at or below the mark (serial-number order on 16
        bits); raises the mark otherwise."""
        hw = self.hw
        if hw >= 0:
            d = (seq - hw) & 0xFFFF
            if d == 0 or d >= 0x8000:
                return True
        self.hw = seq
        return False

    def new_session(self):
        """HELLO or a new connection: its request ids start anywhere."""
        self.hw = -1
