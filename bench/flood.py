"""Emergency stop through a flood on the same host link, and the hub's drain rate.

    python -m bench.flood                    # 20 trials per flood, 16 bots
    python -m bench.flood --trials 5 --json

The emulated hub (the firmware on the MicroPython VM, the real swarm gateway
on its bot bus) is reached through a ``SharedLine``: one connection to the hub
that carries the bytes of every client in arrival order, as one serial port
with two writers would. An attacker on that line sends as fast as the socket
takes bytes: first garbage (random bytes, delimiters included), then valid
unsigned commands (HOLD, each with its own request id). While it floods, the
real CLI is started as a new process, ``nanohub --port URL --json estop``; a
trial is the wall time from starting that process to its exit, counted as
confirmed only when it exits 0 with every bot confirmed disabled. Between
trials the flood pauses and the operator acknowledges the alarms, resets the
stop (signed) and deploys the bots again.

The drain rate is what the hub takes off the link during a full-speed flood:
TCP flow control holds the sender to the reader's pace, so the bytes the
attacker got into the line per second, once the socket buffers are full, are
the bytes the hub read per second. The hub's own count of what it dropped
unparsed (EV_RX_DRAIN records) is reported beside it.
"""
import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

from nanohub.host.client import Hub
from nanohub.host.emulate.hub import EmulatedHub
from nanohub.protocol import auditlog, codec, schema

GOAL_S = 2.0
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = 40
EV_RX_DRAIN = schema.enum_value("EV", "RX_DRAIN")


class SharedLine:
    """One hub connection shared by many clients, bytes merged in arrival order.

    A process of its own (``python -m bench.flood line HUB_PORT``), one
    thread, non-blocking sockets: no lock or interpreter lock of the flooding
    side can hold the operator's bytes. Each client's reads wait in a short
    queue of their own; the hub side takes them round robin, each read whole,
    so two writers interleave only between their writes (a client that writes
    whole frames keeps them whole) and a client that floods waits its turn
    instead of holding the line. What the hub sends goes to every client; a
    client that does not read loses it, never holds the line.
    """

    QUEUE = 1 << 16             # bytes a client may have waiting before it is not read

    def __init__(self, hub_port):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.flood", "line", str(hub_port)],
                                     stdout=subprocess.PIPE, cwd=_ROOT)
        self.port = int(self.proc.stdout.readline())
        self.url = "socket://127.0.0.1:%d" % self.port

    def close(self):
        self.proc.kill()
        self.proc.wait()


def serve_line(hub_port):
    import selectors
    up = socket.create_connection(("127.0.0.1", hub_port))
    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    up.setblocking(False)
    srv = socket.create_server(("127.0.0.1", 0))
    srv.setblocking(False)
    print(srv.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, "accept")
    sel.register(up, selectors.EVENT_READ, "up")
    queues = {}                 # client -> bytearray waiting for the hub
    order = []
    out = bytearray()           # the read being written to the hub
    paused = set()              # clients not read while their queue is full
    while True:
        want_up = selectors.EVENT_READ | (selectors.EVENT_WRITE if out or any(
            queues.values()) else 0)
        sel.modify(up, want_up, "up")
        for key, ev in sel.select(0.1):
            what = key.data
            if what == "accept":
                c, _ = srv.accept()
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.setblocking(False)
                queues[c] = bytearray()
                order.append(c)
                sel.register(c, selectors.EVENT_READ, "client")
            elif what == "client":
                c = key.fileobj
                q = queues.get(c)
                if q is None:
                    continue
                try:
                    data = c.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    if c not in paused:
                        sel.unregister(c)
                    c.close()
                    queues.pop(c, None)
                    order.remove(c)
                    continue
                q += data
                if len(q) >= SharedLine.QUEUE:
                    sel.unregister(c)               # not read until its queue drains
                    paused.add(c)
            elif what == "up":
                if ev & selectors.EVENT_READ:
                    try:
                        data = up.recv(65536)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        return
                    for c in order if data else ():
                        try:
                            c.send(data, socket.MSG_DONTWAIT)
                        except OSError:
                            pass        # a client that does not read loses output
                if ev & selectors.EVENT_WRITE:
                    if not out:
                        for c in list(order):   # round robin: one read each
                            q = queues[c]
                            if q:
                                out += q[:65536]
                                del q[:65536]
                                order.remove(c)
                                order.append(c)
                                if c in paused and len(q) < SharedLine.QUEUE:
                                    paused.discard(c)
                                    sel.register(c, selectors.EVENT_READ, "client")
                                break
                    try:
                        n = up.send(out)
                    except BlockingIOError:
                        n = 0
                    del out[:n]


def garbage(n, seed=1):
    return random.Random(seed).randbytes(n)


def unsigned_commands(n):
    """Valid HOLD frames, each with its own request id, about n bytes."""
    out = bytearray()
    seq = 0
    while len(out) < n:
        seq = (seq + 1) & 0xFFFF
        out += b"\0" + codec.encode("HOLD", {"bot": schema.ADDR_ALL}, seq=seq)
    return bytes(out)


class Flood:
    """An attacker on the line, a process of its own: writes one kind of flood
    over and over as fast as the socket takes it, and reports bytes sent."""

    def __init__(self, port, kind):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.flood", "attack", str(port),
                                      kind], stdout=subprocess.PIPE, text=True, cwd=_ROOT)
        self.proc.stdout.readline()         # connected
        self.sent = 0
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self):
        for line in self.proc.stdout:
            self.sent = int(line)

    def rate(self, seconds):
        """Bytes per second it gets into the line, over ``seconds``."""
        a, t0 = self.sent, time.monotonic()
        time.sleep(seconds)
        return (self.sent - a) / (time.monotonic() - t0)

    def close(self):
        self.proc.kill()
        self.proc.wait()


def attack(port, kind):
    """The flood process: one line of bytes sent so far every 50 ms."""
    data = garbage(1 << 20) if kind == "garbage" else unsigned_commands(1 << 20)
    s = socket.create_connection(("127.0.0.1", port))
    print(0, flush=True)
    sent = 0
    mv = memoryview(data)
    stamp = time.monotonic()
    while True:
        try:
            sent += s.send(mv[sent % len(data) // 4096 * 4096:][:65536])
        except OSError:
            return
        if time.monotonic() - stamp > 0.05:
            stamp = time.monotonic()
            print(sent, flush=True)


def cli_estop(url, env, wait=5.0):
    """Run ``nanohub --port URL --json estop``; (seconds, exit code, result dict)."""
    argv = [sys.executable, "-c", "import sys; from nanohub.host.cli import main; "
            "sys.exit(main())", "--port", url, "--json", "estop", "--wait", str(wait)]
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"stdout": p.stdout.strip(), "stderr": p.stderr.strip()[-300:]}
    return took, p.returncode, out


def settled(hub, bots, state, limit=20.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if sum(1 for b in hub.bots() if b["state"] == state) >= bots:
            return True
        time.sleep(0.2)
    return False


def ready(hub, bots):
    """Back to SAFE (the bots stay where the last stop left them: disabled
    bots confirm a DISABLE as any other bot does). Right after a flood the
    line may still be draining and the hub counting it as flooded: ask again."""
    from nanohub.host.errors import LinkTimeout
    end = time.monotonic() + 15.0
    while True:
        try:
            state = hub.status()["state"]
            break
        except LinkTimeout:
            if time.monotonic() > end:
                raise
    if state == "ESTOP":
        hub.ack_alarms()
        end = time.monotonic() + 10.0
        while True:
            try:
                hub.reset_estop()
                return
            except Exception:       # noqa: BLE001 - bots still settling: try again
                if time.monotonic() > end:
                    raise
                time.sleep(0.3)


def drained(hub, since):
    recs = auditlog.parse_records(hub.log_pull(since))
    return sum(r["c"] for r in recs if r["event"] == EV_RX_DRAIN), (
        recs[-1]["index"] + 1 if recs else since)


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def run(trials=20, bots=16, settle=1.0, log=print):
    """{flood name: {"times": [...], "ok": n, "rate": B/s, "drained": B/s}}."""
    results = {}
    env = dict(os.environ)
    with EmulatedHub(bots=bots, scenario="nominal", seed=7) as emu:
        line = SharedLine(emu.host_port)
        try:
            key = emu.key_path.read_bytes()
            with Hub.open(line.url, key=key, timeout=3.0) as op:
                log_at = op.log_chunks(0).__next__().next
                op.deploy(SITE, bots)                   # the first stop meets deployed bots
                if not settled(op, bots, "DEPLOYED"):
                    raise RuntimeError("the bots did not deploy")
                for name, kind in (("garbage", "garbage"), ("unsigned commands", "unsigned")):
                    res = results[name] = {"times": [], "ok": 0, "codes": {}}
                    rates = []
                    for k in range(trials):
                        ready(op, bots)
                        flood = Flood(line.port, kind)
                        try:
                            rates.append(flood.rate(settle))     # buffers full by now
                            took, code, out = cli_estop(line.url, env)
                        finally:
                            flood.close()
                        ok = code == 0 and out.get("ok") and out.get("confirmed") == bots
                        res["times"].append(took)
                        res.setdefault("inner", []).append(out.get("seconds", took))
                        res.setdefault("ack", []).append(out.get("ack_seconds") or took)
                        res["ok"] += bool(ok)
                        res["codes"][code] = res["codes"].get(code, 0) + 1
                        log("  %-18s trial %2d: %.2f s (connect+stop %.2f s, ACK after %s s) exit %d %s" % (
                            name, k + 1, took, out.get("seconds", took), out.get("ack_seconds"), code, "confirmed %s/%d" % (
                                out.get("confirmed"), bots) if "confirmed" in out else out))
                        time.sleep(0.3)
                    got, log_at = drained(op, log_at)
                    res["rate"] = sum(rates) / len(rates)
                    res["drained"] = got
                    res["flood_s"] = settle * trials
                ready(op, bots)
                op.recall()
        finally:
            line.close()
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["line"]:
        return serve_line(int(argv[1]))
    if argv[:1] == ["attack"]:
        return attack(int(argv[1]), argv[2])
    ap = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--bots", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.trials, args.bots, log=(lambda *a: None) if args.json else print)
    if args.json:
        print(json.dumps(res))
        return 0
    print("\nESTOP through a full-speed flood on the same link, %d trials each, %d bots "
          "(goal: p99 <= %.1f s, every bot confirmed); load average %.1f on %d cores"
          % (args.trials, args.bots, GOAL_S, os.getloadavg()[0], os.cpu_count() or 1))
    print("exit: process start to exit; stop: first ESTOP written to final report; "
          "ACK: first ESTOP written to its ACK")
    print("%-18s %14s %14s %14s %10s %12s %12s" % (
        "flood", "exit p50/p99", "stop p50/p99", "ACK p50/p99", "confirmed", "hub intake",
        "drained"))
    fails = 0
    for name, r in res.items():
        t, inner, ack = r["times"], r["inner"], r["ack"]
        fails += percentile(t, 99) > GOAL_S or r["ok"] < len(t)
        print("%-18s %6.2f/%5.2fs %6.2f/%5.2fs %6.2f/%5.2fs %6d/%-3d %7.1f MB/s %8.0f MB" % (
            name, percentile(t, 50), percentile(t, 99), percentile(inner, 50),
            percentile(inner, 99), percentile(ack, 50), percentile(ack, 99), r["ok"], len(t),
            r["rate"] / 1e6, r["drained"] / 1e6))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
