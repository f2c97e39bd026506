"""What a paced host link carries, frame by frame (a ``Pacer`` tap).

The byte streams are cut into frames by the library's splitter (the one the
broker reads clients with), so a frame counts here as it does there.
"""
import bisect
import threading

from nanohub.host.link.conn import frames_in
from nanohub.protocol import codec, schema


class LinkMeter:
    """Counts bytes each way and decodes the hub-to-host frames with their
    wire sizes and release times. Queries bisect on time, so asking costs
    the tap (which holds the same lock) next to nothing."""

    def __init__(self):
        self.lock = threading.Lock()
        self._t = {"up": [], "down": []}        # release times
        self._cum = {"up": [0], "down": [0]}    # bytes released before each entry
        self.frames = []                        # (t, name, flags, wire B, payload B, records)
        self._ft = []
        self._buf = bytearray()
        self._up = bytearray()
        self.up_frames = []                     # (t, name) of host-to-hub frames

    def __call__(self, way, data, t):
        with self.lock:
            self._t[way].append(t)
            self._cum[way].append(self._cum[way][-1] + len(data))
            if way == "down":
                self._frames(data, t)
            else:
                self._upward(data, t)

    def _upward(self, data, t):
        for chunk in frames_in(self._up, data):
            try:
                self.up_frames.append((t, codec.decode(chunk).name))
            except codec.CodecError:
                pass

    def sent_up(self, name, since):
        """When the first ``name`` frame at or after ``since`` had fully left the proxy."""
        found = None
        with self.lock:
            for t, n in reversed(self.up_frames):
                if t < since:
                    break
                if n == name:
                    found = t
        return found

    def _frames(self, data, t):
        for chunk in frames_in(self._buf, data):
            try:
                f = codec.decode(chunk)
            except codec.CodecError:
                continue
            auth = schema.AUTH_SIZE if f.flags & schema.F_AUTH else 0
            payload = len(f.body) - schema.HEADER_SIZE - auth
            n = len(f.records) if isinstance(f.records, list) else 0
            self.frames.append((t, f.name, f.flags, len(chunk) + 1, payload, n))
            self._ft.append(t)

    def rate(self, way, t0, t1):
        """Bytes per second released in [t0, t1)."""
        with self.lock:
            ts, cum = self._t[way], self._cum[way]
            a, b = bisect.bisect_left(ts, t0), bisect.bisect_left(ts, t1)
            n = cum[b] - cum[a]
        return n / (t1 - t0) if t1 > t0 else 0.0

    def window(self, t0, t1):
        with self.lock:
            a, b = bisect.bisect_left(self._ft, t0), bisect.bisect_left(self._ft, t1)
            return self.frames[a:b]
