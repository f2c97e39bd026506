"""The swarm gateway: plays the bots for the hub over the bot bus.

    python -m nanohub.sim.gateway --scenario nominal --seed 1 --bots 64 \\
        [--listen 127.0.0.1:0] [--hub-host 127.0.0.1:PORT --host-proxy 127.0.0.1:0] \\
        [--trace FILE] [--speed 1.0]

Prints one JSON line first: ``{"bus": PORT, "host": PORT}`` (``host`` only
with a proxy). The hub connects to the bus port; the simulated clock starts
when it does. The gateway speaks the bot-bus protocol exactly as a real swarm
gateway would, applying the scenario's wire faults (loss, corruption,
duplication, reordering, delay) in both directions. With ``--hub-host`` it
also relays the host link (``HostRelay``, on the library's TCP relay) and cuts
it while a ``host_link_loss`` fault is in force. The ground-truth trace is written on exit. SIGUSR1 plays the
clinician's hands: every bot still in the mouth is retrieved into the dock
(``World.retrieve``), the step after an emergency stop that the hub cannot
do by radio.
"""
import argparse
import json
import random
import selectors
import signal
import socket
import sys
import time

from nanohub.host.link.relay import Relay, hostport
from nanohub.protocol import codec, model, schema

from ..firmware.hub import wire
from .world import World

REPORT_MS = 100
PATIENT_MS = 100
QUIET_MS = 2 * REPORT_MS     # a longer gap between report rounds goes into the trace
MAX_REPORTS = model.BY_NAME["BOT_REPORTS"].max_count


class HostRelay(Relay):
    """The host link through the gateway: its bytes vanish while a
    ``host_link_loss`` fault of the scenario is in force."""

    name = "gateway-host"

    def __init__(self, gw, target, listen):
        super().__init__(target, listen)
        self.gw = gw

    def received(self, pipe, data, now):
        if not self.gw.world.host_link_down(self.gw.now()):
            self.send(pipe, data)
        return False


class FaultyPipe:
    """Frames out through the scenario's impairments, on the simulated clock."""

    def __init__(self, sock, rng):
        self.sock = sock
        self.rng = rng
        self.queue = []          # (due_ms, order, bytes)
        self.held = None
        self.order = 0
        self.stats = {"sent": 0, "lost": 0, "corrupted": 0, "duplicated": 0, "reordered": 0}

    def send(self, frame, faults, now):
        r = self.rng.random
        if faults.loss and r() < faults.loss:
            self.stats["lost"] += 1
            return
        if faults.corrupt and r() < faults.corrupt:
            b = bytearray(frame)
            k = self.rng.randrange(max(1, len(b) - 1))
            b[k] ^= 1 << self.rng.randrange(8)
            frame = bytes(b)
            self.stats["corrupted"] += 1
        copies = 1
        if faults.duplicate and r() < faults.duplicate:
            copies = 2
            self.stats["duplicated"] += 1
        due = now + faults.delay_ms
        for _ in range(copies):
            if faults.reorder and self.held is None and r() < faults.reorder:
                self.held = frame          # goes out after the next frame
                self.stats["reordered"] += 1
                continue
            self._queue(due, frame)
            if self.held is not None:
                self._queue(due, self.held)
                self.held = None

    def _queue(self, due, frame):
        self.order += 1
        self.queue.append((due, self.order, frame))

    def flush(self, now):
        if not self.queue:
            return
        self.queue.sort()
        out = bytearray()
        keep = []
        for item in self.queue:
            if item[0] <= now:
                out += item[2]
            else:
                keep.append(item)
        self.queue = keep
        if out:
            self.stats["sent"] += 1
            try:
                self.sock.sendall(out)
            except OSError:
                pass


class Gateway:
    def __init__(self, world, speed=1.0, seed=0):
        self.world = world
        self.speed = speed
        self.rng = random.Random(seed ^ 0x5EED)
        self.seq = 0
        self.t0 = None
        self.decoder = codec.StreamDecoder()
        self.next_report = 0
        self.next_patient = 0
        self.last_round = None
        self.urgent = set()
        self.bad_frames = 0
        self.frames_in = 0

    def now(self):
        if self.t0 is None:
            return 0
        return int((time.monotonic() - self.t0) * 1000 * self.speed)

    def frame(self, name, fields=None, records=()):
        self.seq = (self.seq + 1) & 0xFFFF
        return codec.encode(name, fields, records, seq=self.seq, addr=schema.ADDR_ALL)

    def hello(self):
        return self.frame("BUS_HELLO", {"schema": model.FINGERPRINT, "bots": self.world.n})

    def on_bytes(self, data, now):
        for f in self.decoder.feed(data):
            if isinstance(f, codec.CodecError):
                self.bad_frames += 1
                continue
            self.frames_in += 1
            if f.name != "BOT_CMDS":
                continue
            for c in f.records:
                self.world.command(c["bot"], c["op"], c["site"], c["rate"], c["lease"], now)
                if c["op"] in (wire.OP_DISABLE, wire.OP_PING, wire.OP_NOP):
                    if c["bot"] == schema.ADDR_ALL:
                        self.urgent.update(range(self.world.n))
                    else:
                        self.urgent.add(c["bot"])

    def reports(self, bots):
        """BOT_REPORTS frames for ``bots`` (sorted), in runs of consecutive bots."""
        out, run, first = [], [], None
        w = self.world
        for b in bots:
            rep = w.report(b)
            if rep is None:
                continue
            if run and (b != first + len(run) or len(run) == MAX_REPORTS):
                out.append(self._reports(first, run))
                run = []
            if not run:
                first = b
            run.append(rep)
        if run:
            out.append(self._reports(first, run))
        return out

    def _reports(self, first, run):
        names = model.BY_NAME["BOT_REPORTS"].tail.names
        return self.frame("BOT_REPORTS", {"first": first},
                          [dict(zip(names, r)) for r in run])

    def due(self, now):
        """Frames to send at ``now``."""
        out = []
        if self.urgent:
            out += self.reports(sorted(self.urgent))
            self.urgent.clear()
        if now >= self.next_report:
            self.next_report = now + REPORT_MS
            if self.last_round is not None and now - self.last_round > QUIET_MS:
                # the gateway ran late (a loaded host): no bot was heard meanwhile,
                # which is the truth the hub's silence rules are judged against
                self.world.trace.add("quiet", now, self.last_round)
            self.last_round = now
            out += self.reports(range(self.world.n))
        if now >= self.next_patient:
            self.next_patient = now + PATIENT_MS
            sens, events = self.world.patient()
            out.append(self.frame("PATIENT", {"sens": min(sens, 0xFFFF), "events": events}))
        return out


def serve(args):
    world = World(args.scenario, seed=args.seed, bots=args.bots)
    gw = Gateway(world, args.speed, world.seed)
    sel = selectors.DefaultSelector()
    lsock = socket.create_server(hostport(args.listen))
    ports = {"bus": lsock.getsockname()[1]}
    relay = None
    if args.hub_host:
        relay = HostRelay(gw, args.hub_host, args.host_proxy).start()
        ports["host"] = relay.port
    print(json.dumps(ports), flush=True)
    sel.register(lsock, selectors.EVENT_READ, "bus-accept")
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    retrieve = []                  # SIGUSR1: the clinician retrieves the bots by hand
    signal.signal(signal.SIGUSR1, lambda *a: retrieve.append(1))
    bus = pipe = None
    deadline = time.monotonic() + args.max_s if args.max_s else None
    try:
        while not stop:
            if deadline and time.monotonic() > deadline:
                break
            for key, _ in sel.select(timeout=0.005):
                what = key.data
                if what == "bus-accept":
                    s, _ = lsock.accept()
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    if bus is not None:
                        sel.unregister(bus)
                        bus.close()
                    bus = s
                    if gw.t0 is None:
                        gw.t0 = time.monotonic()
                    pipe = FaultyPipe(bus, gw.rng)
                    bus.sendall(gw.hello())
                    sel.register(bus, selectors.EVENT_READ, "bus")
                elif what == "bus":
                    try:
                        data = bus.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(bus)
                        bus.close()
                        bus = pipe = None
                        continue
                    now = gw.now()
                    world.step(now)
                    faults = world.bus_faults(now)
                    if faults.loss or faults.corrupt:
                        data = _impair_inbound(data, faults, gw.rng)
                    gw.on_bytes(data, now)
            now = gw.now()
            world.step(now)
            if retrieve:
                del retrieve[:]
                world.retrieve(now)
            if pipe is not None:
                faults = world.bus_faults(now)
                for fr in gw.due(now):
                    pipe.send(fr, faults, now)
                pipe.flush(now)
    finally:
        if relay is not None:
            relay.close()
        if args.trace:
            world.save_trace(args.trace)
        if args.stats:
            with open(args.stats, "w") as f:
                json.dump({"bus_out": pipe.stats if pipe else {}, "bad_in": gw.bad_frames,
                           "frames_in": gw.frames_in, "t_ms": gw.now()}, f)


def _impair_inbound(data, faults, rng):
    """Loss and corruption on the hub-to-swarm direction, frame by frame."""
    out = bytearray()
    for part in data.split(b"\0"):
        if not part:
            out += b"\0"
            continue
        if faults.loss and rng.random() < faults.loss:
            continue
        if faults.corrupt and rng.random() < faults.corrupt:
            b = bytearray(part)
            b[rng.randrange(len(b))] ^= 0x10
            part = bytes(b).replace(b"\0", b"\1")
        out += part + b"\0"
    return bytes(out)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nanohub.sim.gateway", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="nominal")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bots", type=int, default=None)
    ap.add_argument("--listen", default="127.0.0.1:0", help="bot-bus address the hub connects to")
    ap.add_argument("--hub-host", help="the hub's host-link address, to relay")
    ap.add_argument("--host-proxy", default="127.0.0.1:0", help="where the relayed host link listens")
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--trace", help="write the ground-truth trace here on exit")
    ap.add_argument("--stats", help="write wire statistics (JSON) here on exit")
    ap.add_argument("--max-s", type=float, default=0, help="exit after this many seconds")
    args = ap.parse_args(argv)
    try:
        serve(args)
    except (ValueError, OSError) as e:
        print("gateway: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
