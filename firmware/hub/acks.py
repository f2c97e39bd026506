"""Exactly-once: the ACK cache and the session's request-id high-water mark.

The last ``wire.ACK_CACHE`` answers, keyed by request id and the frame's CRC:
a command re-sent with the same bytes gets its cached ACK and is not run
again. Request ids of one host session rise, so a command at or below the
mark was answered before even when its ACK has left the cache.
"""
from array import array

from hub import wire


class Acks:
    """Slot ``k`` of the cache: ``key[3k:3k + 3]`` the request id, the
    frame's CRC and the ACK's detail; ``ans[3k:3k + 3]`` its command, status
    and reason. Two tables, not six: each is an object and a field."""

    def __init__(self, n=wire.ACK_CACHE):
        self.key = array("l", [-1, 0, 0] * n)
        self.ans = bytearray(3 * n)
        self.next = 0
        self.hw = -1                # highest command request id of this host session

    def find(self, seq, crc):
        """The slot holding the answer to (seq, crc), or -1."""
        key = self.key
        for j in range(0, len(key), 3):
            if key[j] == seq and key[j + 1] == crc:
                return j // 3
        return -1

    def remember(self, seq, crc, cmd, status, why, detail):
        k = self.next
        self.next = (k + 1) % (len(self.ans) // 3)
        j = 3 * k
        key = self.key
        key[j] = seq
        key[j + 1] = crc
        key[j + 2] = detail
        ans = self.ans
        ans[j] = cmd
        ans[j + 1] = status
        ans[j + 2] = why

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
