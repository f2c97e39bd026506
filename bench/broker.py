"""What the broker costs: STATUS round trip and ESTOP latency, direct and through ``nanohub serve``.

    python -m bench.broker                 # 300 STATUS, 20 ESTOP trials per path
    python -m bench.broker --status 100 --estops 10 --json

Two identical emulated hubs (firmware on the MicroPython VM, 16 bots, the
swarm gateway): the direct path is the session on one hub's socket, the broker
path the same session on ``nanohub+unix://`` with the broker owning the other
hub in its own process (``nanohub serve``, as an operator runs it), so the two
paths differ only by the broker. Trials alternate between the paths, so that
load on the machine hits both alike. Round trip: ``Hub.status()`` (REQUEST STATUS to its HUB_STATUS
reply). ESTOP: from calling ``Hub.estop()`` to the ESTOP frame reaching the
hub's door (a relay in front of each hub, the same on both paths: this is the
broker's own added latency), to its ACK, and to the final report with every
bot confirmed; ALARM_ACK and the signed ESTOP_RESET bring the
hub back between trials. Last, the same ESTOP trials through the broker while
another client floods it (unsigned commands and junk, as fast as its socket
takes them, from its own process).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from nanohub.host.client import Hub
from nanohub.host.emulate.hub import EmulatedHub
from nanohub.protocol import codec

from .emu import isolated_home
from .timing import percentile


def _serve(url, name):
    proc = subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--port", url, "--json",
                             "serve", "--name", name], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise SystemExit("nanohub serve did not start")
    return proc, json.loads(line)["url"]


NAMES = ("status_rt_ms", "estop_to_hub_ms", "estop_ack_ms", "estop_confirmed_ms")


def _stats(ms):
    return {"n": len(ms), "p50": round(percentile(ms, 50), 3), "p90": round(percentile(ms, 90), 3),
            "p99": round(percentile(ms, 99), 3), "max": round(max(ms), 3)}


class _Door:
    """A relay in front of a hub that notes when an ESTOP frame passes toward it."""

    def __init__(self, emu):
        from nanohub.host.emulate.faultproxy import FaultProxy
        self.proxy = FaultProxy(("127.0.0.1", int(emu.url.rsplit(":", 1)[1]))).start()
        self.url = self.proxy.url
        self.seen = []
        self.proxy.taps.append(self._tap)

    def _tap(self, direction, unit):
        if direction == "up" and unit.rstrip(b"\0"):
            try:
                if codec.decode(unit.strip(b"\0")).name == "ESTOP":
                    self.seen.append(time.perf_counter())
            except codec.CodecError:
                pass

    def close(self):
        self.proxy.close()


def _estop_once(hub, door):
    del door.seen[:]
    t0 = time.perf_counter()
    acked = []
    route = hub._route

    def spy(f):                                   # the ACK's arrival, seen by the reader
        if f.name == "ACK" and f["cmd"] == 0x2A and not acked:
            acked.append(time.perf_counter())
        route(f)
    hub._route = spy
    try:
        result = hub.estop()
    finally:
        hub._route = route
    done = time.perf_counter()
    if not result.ok or not acked or not door.seen:
        raise SystemExit("an ESTOP was not confirmed: %r" % (result,))
    hub.command("ALARM_ACK", {"code": 0})
    hub.command("ESTOP_RESET")
    return (door.seen[0] - t0) * 1000, (acked[0] - t0) * 1000, (done - t0) * 1000


def flood(path):
    """Push unsigned commands and junk into the broker at ``path`` as fast as it takes them."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    junk = os.urandom(300).replace(b"\0", b"\1") + b"\0"
    burst = b"".join(codec.encode("ALARM_ACK", {"code": 0}, seq=i) for i in range(50)) + junk
    print("flooding", flush=True)
    try:
        while True:
            s.sendall(burst)
    except OSError:
        pass


def _flooded_estops(hub, door, socket_path, n):
    """ESTOP trials from one client while another floods the broker."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.broker", "--flood-into", socket_path],
                            stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "flooding":
            raise SystemExit("the flooding client did not start")
        time.sleep(0.5)
        return [_estop_once(hub, door)[2] for _ in range(n)]
    finally:
        proc.kill()
        proc.wait()


def run(status_n=300, estop_n=20, bots=16):
    os.environ.setdefault("NANOHUB_RUNTIME_DIR", tempfile.mkdtemp(prefix="nanohub-bench-run-"))
    with isolated_home(), EmulatedHub(bots=bots, scenario="nominal", seed=1) as emu_d, \
            EmulatedHub(bots=bots, scenario="nominal", seed=1) as emu_b:
        doors = {"direct": _Door(emu_d), "broker": _Door(emu_b)}
        serve, broker_url = _serve(doors["broker"].url, "bench-%d" % os.getpid())
        try:
            with Hub.open(doors["direct"].url, key=emu_d.key_path) as direct, \
                    Hub.open(broker_url, key=emu_b.key_path) as brokered:
                paths = {"direct": direct, "broker": brokered}
                rt, door, ack, whole = ({k: [] for k in paths} for _ in range(4))
                for hub in paths.values():
                    for _ in range(20):
                        hub.status()                  # warm up
                for _ in range(status_n):
                    for k, hub in paths.items():
                        t0 = time.perf_counter()
                        hub.status()
                        rt[k].append((time.perf_counter() - t0) * 1000)
                for _ in range(estop_n):
                    for k, hub in paths.items():
                        d, a, w = _estop_once(hub, doors[k])
                        door[k].append(d)
                        ack[k].append(a)
                        whole[k].append(w)
                path = broker_url[len("nanohub+unix://"):]
                flooded = _flooded_estops(brokered, doors["broker"], path, estop_n)
        finally:
            serve.terminate()
            serve.wait(10)
            for d in doors.values():
                d.close()
    out = {"bots": bots}
    for name, res in zip(NAMES, (rt, door, ack, whole)):
        out[name] = {k: _stats(v) for k, v in res.items()}
    out["estop_confirmed_flooded_ms"] = {"broker": _stats(flooded)}
    out["broker_added_ms"] = {
        name: round(out[name]["broker"]["p50"] - out[name]["direct"]["p50"], 3) for name in NAMES}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.broker", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--status", type=int, default=300, help="STATUS round trips per path")
    ap.add_argument("--estops", type=int, default=20, help="ESTOP trials per path")
    ap.add_argument("--bots", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--flood-into", metavar="SOCKET", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.flood_into:
        flood(args.flood_into)
        return 0
    out = run(args.status, args.estops, args.bots)
    if args.json:
        print(json.dumps(out))
        return 0
    print("%-30s %8s %8s %8s %8s" % ("ms", "p50", "p90", "p99", "max"))
    for name in NAMES + ("estop_confirmed_flooded_ms",):
        for k in ("direct", "broker"):
            if k not in out[name]:
                continue
            s = out[name][k]
            print("%-30s %8.2f %8.2f %8.2f %8.2f" % ("%s %s" % (name[:-3], k), s["p50"], s["p90"],
                                                     s["p99"], s["max"]))
    print("broker adds (p50): " + ", ".join("%s %+.2f ms" % (k[:-3], v)
                                            for k, v in out["broker_added_ms"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
