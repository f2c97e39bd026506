"""A fault-injecting TCP proxy for a framed link (host <-> hub, hub <-> swarm).

    with FaultProxy(("127.0.0.1", hub_port), up=Faults(loss=0.05), seed=1) as px:
        with Hub.open(px.url) as hub:      # every frame crosses the proxy
            ...
    print(px.stats)

It cuts the byte stream at the 0x00 frame delimiters and impairs each frame
on its own, in each direction independently (``up``: client to target,
``down``: target to client):

- loss: the frame vanishes;
- corruption: one bit flips somewhere in the frame (the delimiter too, which
  merges it with the next frame, as line noise would);
- duplication: the frame is delivered twice;
- reordering: the frame is held back and delivered after the next one;
- delay: every frame waits ``delay_ms`` plus up to ``jitter_ms`` (order kept);
- disconnects: after a frame, the connection is cut (both sides see EOF);
  the proxy keeps listening, so the client can reconnect.

Rates are probabilities per frame. ``disconnect_all()`` pulls the cable now;
``taps`` (callables ``tap(direction, bytes)``) see every unit delivered, for
tests that inspect the traffic. Runs on one thread (``link.relay.Relay``); ``set_faults``
changes them while it runs (to let a final log pull through, say). Seeded:
the same seed and the same traffic give the same faults.

Command line (a manual rig: put it between ``nanohub`` and a hub)::

    python -m nanohub.host.emulate.faultproxy --target 127.0.0.1:7700 --listen 127.0.0.1:7800 \\
        --loss 0.05 --corrupt 0.01 --duplicate 0.01 [--reorder R --delay-ms D --jitter-ms J
        --disconnect P --seed S]
"""
import argparse
import heapq
import json
import random
import sys
from dataclasses import asdict, dataclass

from nanohub.host.link.relay import Relay, hostport, serve

MAX_UNIT = 4096          # bytes without a delimiter before they go as one unit
HOLD_S = 0.2             # a reordered frame waits at most this long for one to overtake it
KINDS = ("frames", "lost", "corrupted", "duplicated", "reordered", "delayed", "disconnects")


@dataclass
class Faults:
    """Per-frame impairment rates for one direction."""

    loss: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    disconnect: float = 0.0

    def __post_init__(self):
        for k in ("loss", "corrupt", "duplicate", "reorder", "disconnect"):
            v = getattr(self, k)
            if not 0.0 <= v <= 1.0:
                raise ValueError("%s must be a probability 0..1, got %r" % (k, v))
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError("delays must be >= 0")

    @property
    def any(self):
        return any(asdict(self).values())


NONE = Faults()


class _Dir:
    """One direction of one connection: cut frames, impair, schedule."""

    def __init__(self, proxy, pipe):
        self.proxy, self.pipe, self.name = proxy, pipe, pipe.name
        self.buf = bytearray()
        self.held = None              # a frame waiting to be overtaken (reorder)
        self.held_at = 0.0
        self.last_due = 0.0           # delays keep order unless a reorder says otherwise

    def take(self, data, now):
        """Bytes from src; returns True if the connection must be cut."""
        self.buf += data
        cut = False
        while True:
            end = self.buf.find(0)
            if end < 0:
                if len(self.buf) > MAX_UNIT:
                    unit, self.buf = bytes(self.buf), bytearray()
                    cut |= self._unit(unit, now)
                break
            unit = bytes(self.buf[:end + 1])
            del self.buf[:end + 1]
            cut |= self._unit(unit, now)
        return cut

    def _unit(self, unit, now):
        px = self.proxy
        f = px.faults[self.name]
        st = px.stats[self.name]
        rnd = px.rng.random
        if unit == b"\0":                 # a bare delimiter (sync): pass it on
            self._send(unit, now, f, count=False)
            return False
        st["frames"] += 1
        if f.loss and rnd() < f.loss:
            st["lost"] += 1
            return self._disconnect(f, st)
        if f.corrupt and rnd() < f.corrupt:
            b = bytearray(unit)
            b[px.rng.randrange(len(b))] ^= 1 << px.rng.randrange(8)
            unit = bytes(b)
            st["corrupted"] += 1
        copies = 1
        if f.duplicate and rnd() < f.duplicate:
            copies = 2
            st["duplicated"] += 1
        for _ in range(copies):
            if f.reorder and self.held is None and rnd() < f.reorder:
                self.held, self.held_at = unit, now
                st["reordered"] += 1
                continue
            self._send(unit, now, f)
            if self.held is not None:
                self._send(self.held, now, f)
                self.held = None
        return self._disconnect(f, st)

    def _disconnect(self, f, st):
        if f.disconnect and self.proxy.rng.random() < f.disconnect:
            st["disconnects"] += 1
            return True
        return False

    def _send(self, unit, now, f, count=True):
        delay = f.delay_ms
        if f.jitter_ms:
            delay += self.proxy.rng.random() * f.jitter_ms
        if delay <= 0 and self.last_due <= now:
            self.proxy.send(self.pipe, unit)
            return
        due = max(now + delay / 1000.0, self.last_due)
        self.last_due = due
        if delay > 0 and count:
            self.proxy.stats[self.name]["delayed"] += 1
        self.proxy._later(due, self.pipe, unit)

    def flush_held(self, now):
        """A held frame that nothing overtook goes out after HOLD_S anyway."""
        if self.held is not None and now - self.held_at >= HOLD_S:
            unit, self.held = self.held, None
            self.proxy.send(self.pipe, unit)


class FaultProxy(Relay):
    """Listens on ``listen``; each client is relayed to ``target`` through the faults."""

    name = "faultproxy"

    def __init__(self, target, listen=("127.0.0.1", 0), up=NONE, down=NONE, seed=0):
        super().__init__(target, listen)
        self.rng = random.Random(seed)
        self.faults = {"up": up, "down": down}
        self.stats.update({"up": dict.fromkeys(KINDS, 0), "down": dict.fromkeys(KINDS, 0)})
        self._dirs = {}                    # pipe -> _Dir
        self._timers = []                  # (due, order, pipe, bytes)
        self._order = 0
        self.taps = []                     # callables tap(direction, bytes): what was delivered

    def set_faults(self, up=None, down=None):
        """Change the rates while running (None keeps a direction as is)."""
        with self.lock:
            if up is not None:
                self.faults["up"] = up
            if down is not None:
                self.faults["down"] = down

    def injected(self):
        """Total faults injected so far, both directions (delays not counted)."""
        return sum(self.stats[d][k] for d in ("up", "down") for k in KINDS[1:]
                   if k != "delayed") + self.stats["pulled"]

    # --------------------------------------------------- relay hooks --
    def opened(self, up, down):
        for pipe in (up, down):
            self._dirs[pipe] = _Dir(self, pipe)

    def received(self, pipe, data, now):
        return self._dirs[pipe].take(data, now)

    def next_due(self):
        return self._timers[0][0] if self._timers else None

    def run_due(self, now):
        for d in list(self._dirs.values()):
            d.flush_held(now)
        while self._timers and self._timers[0][0] <= now:
            _, _, pipe, unit = heapq.heappop(self._timers)
            self.send(pipe, unit)

    def delivered(self, pipe, data, t):
        for tap in self.taps:
            tap(pipe.name, data)

    def drop(self, pipe):
        super().drop(pipe)
        for p in (pipe, pipe.peer):
            self._dirs.pop(p, None)     # the connection is gone: its frames too
        self._timers = [t for t in self._timers if t[2].open]
        heapq.heapify(self._timers)

    def _later(self, due, pipe, unit):
        self._order += 1
        heapq.heappush(self._timers, (due, self._order, pipe, unit))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nanohub.host.emulate.faultproxy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="HOST:PORT to relay to")
    ap.add_argument("--listen", default="127.0.0.1:0")
    for k in ("loss", "corrupt", "duplicate", "reorder", "disconnect"):
        ap.add_argument("--" + k, type=float, default=0.0, help="probability per frame")
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    f = Faults(a.loss, a.corrupt, a.duplicate, a.reorder, a.delay_ms, a.jitter_ms, a.disconnect)
    px = FaultProxy(a.target, hostport(a.listen), up=f, down=f, seed=a.seed)
    print(json.dumps({"listen": px.port}), flush=True)
    return serve(px, 5, lambda: print(json.dumps(px.stats), flush=True))


if __name__ == "__main__":
    sys.exit(main())
