"""STATUS round-trip time through each kind of link.

    python -m bench.links                          # the standard set, started here
    python -m bench.links URL [URL ...]            # any pyserial or nanohub URL
    python -m bench.links --count 1000 --json
    python -m bench.links --what estop URL         # ESTOP to its ACK instead

The standard set: the emulated hub's own socket (``socket://``, the unix
board), the hub on a pseudo-terminal (the unix_tty board, a device path), and
Debian's ser2net serving that terminal as raw TCP (``socket://``) and as
RFC 2217 (``rfc2217://``, ``chardelay: false``). Each round trip is one
REQUEST STATUS answered by one HUB_STATUS, timed on the host from the write
to the decoded reply, one request at a time, after a warm-up. With
``--what estop`` each round trip is an ESTOP frame to its ACK (the hub stops
the swarm on the first and acknowledges every repeat: it latches).
"""
import argparse
import json
import statistics
import sys
import time
from contextlib import ExitStack


def _status(hub):
    hub.request("STATUS", "HUB_STATUS")


def _estop(hub):
    seq, wire = hub.build("ESTOP", {"source": 0})
    hub._transact("ESTOP", seq, wire)      # the ACK, whatever it says


WHAT = {"status": _status, "estop": _estop}


def measure(url, count=500, warmup=20, baudrate=115200, key=None, what="status"):
    """{url, what, n, p50_ms, p99_ms, mean_ms, max_ms, open_ms} for ``count`` round trips."""
    from nanohub.host import Hub
    ask = WHAT[what]
    t0 = time.perf_counter()
    with Hub.open(url, key=key, timeout=2.0, baudrate=baudrate) as hub:
        opened = time.perf_counter() - t0
        for _ in range(warmup):
            ask(hub)
        rtt = []
        for _ in range(count):
            t = time.perf_counter()
            ask(hub)
            rtt.append(time.perf_counter() - t)
    rtt.sort()
    ms = [x * 1000 for x in rtt]
    return {"url": url, "what": what, "n": count, "p50_ms": round(ms[len(ms) // 2], 3),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
            "mean_ms": round(statistics.fmean(ms), 3), "max_ms": round(ms[-1], 3),
            "open_ms": round(opened * 1000, 1)}


def standard_set(stack, bots=16, chardelay=False):
    """Start the standard links; returns [(label, url)]. ``chardelay`` adds
    ser2net with its default character delay, for comparison."""
    from nanohub.host.emulate.hub import EmulatedHub
    from nanohub.host.link.ser2net import Ser2net, find_ser2net
    links = []
    sock = stack.enter_context(EmulatedHub(bots=bots, gateway=False))
    links.append(("direct socket (unix board)", sock.hub_url))
    pty = stack.enter_context(EmulatedHub(bots=bots, gateway=False, pty=True))
    links.append(("direct PTY device (unix_tty board)", pty.url))
    if find_ser2net() is None:
        print("note: ser2net is not installed (scripts/ensure-ser2net.sh): no ser2net rows",
              file=sys.stderr)
        return links
    s2n = stack.enter_context(Ser2net(pty.url))
    links.append(("ser2net raw TCP -> PTY", s2n.raw_url))
    links.append(("ser2net RFC 2217 -> PTY", s2n.rfc2217_url))
    if chardelay:
        slow = stack.enter_context(EmulatedHub(bots=bots, gateway=False, pty=True))
        s2n = stack.enter_context(Ser2net(slow.url, chardelay=True))
        links.append(("ser2net raw, default chardelay", s2n.raw_url))
        links.append(("ser2net RFC 2217, default chardelay", s2n.rfc2217_url))
    return links


def table(rows):
    head = "%-36s %8s %8s %8s %8s %6s" % ("link", "p50 ms", "p99 ms", "mean ms", "max ms", "n")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append("%-36s %s" % (r["label"][:36], r["error"]))
            continue
        lines.append("%-36s %8.3f %8.3f %8.3f %8.3f %6d" % (
            r["label"][:36], r["p50_ms"], r["p99_ms"], r["mean_ms"], r["max_ms"], r["n"]))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.links", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("urls", nargs="*", metavar="URL",
                    help="links to measure (default: start the standard set)")
    ap.add_argument("--count", "-n", type=int, default=500, help="requests per link (500)")
    ap.add_argument("--baud", type=int, default=115200, help="baud rate where a link has one")
    ap.add_argument("--what", choices=sorted(WHAT), default="status",
                    help="the round trip: STATUS to HUB_STATUS (default) or ESTOP to its ACK")
    ap.add_argument("--json", action="store_true", help="one JSON object per link")
    ap.add_argument("--chardelay", action="store_true",
                    help="also measure ser2net with its default chardelay (the standard set)")
    args = ap.parse_args(argv)
    from nanohub.host.errors import NanohubError
    rows = []
    with ExitStack() as stack:
        links = [(u, u) for u in args.urls] or standard_set(stack, chardelay=args.chardelay)
        for label, url in links:
            try:
                row = measure(url, args.count, baudrate=args.baud, what=args.what)
            except NanohubError as e:
                row = {"url": url, "error": str(e)}
            row["label"] = label
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
    if not args.json:
        print("%s round trip, %d each" % (args.what.upper(), args.count))
        print(table(rows))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
