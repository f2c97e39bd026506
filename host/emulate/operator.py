"""The operator's side of a faulty link: reconnect, resend the same bytes, never guess.

    from nanohub.host.emulate.operator import Operator, check_commands
    op = Operator(url, key)
    ack = op.command("DEPLOY", {"site": 10, "count": 3})   # an Ack, or None: unknown
    report = op.estop()                                     # the final ESTOP_REPORT
    records, head = op.pull_log(start=0)

A command is encoded once (its request id, counter and tag fixed) and the
identical bytes are re-sent, across timeouts and reconnections, until its ACK
arrives or the deadline passes: then its outcome is UNKNOWN and it is never
re-signed (a re-signed copy would be a second command), unless the hub
refused it STALE (its expiry passed on the way: not run). The hub's ACK cache
answers a repeat without running it again. Every outcome is kept in
``outcomes`` for the invariant checks (``check_commands``). Reads
(``read(fn)``, ``pull_log``) reconnect and retry until their deadline.
"""
import time

from nanohub.protocol import codec, schema

from nanohub.host.client import Hub
from nanohub.host.errors import LinkError, LinkTimeout, NanohubError

UNKNOWN = "UNKNOWN"


class Operator:
    def __init__(self, url, key, timeout=1.0, seq0=1):
        self.url, self.key, self.timeout = url, key, timeout
        self.seq = seq0 & 0xFFFF
        self.counter = 0
        self.hub = None
        self.outcomes = []          # dicts: name, msg, seq, counter, status, reason, detail
        self.reconnects = 0
        self.link_errors = 0
        self.sent = 0

    # ----------------------------------------------------------- link --
    def drop(self):
        if self.hub is not None:
            try:
                self.hub.close()
            except Exception:
                pass
        self.hub = None

    def link(self, deadline):
        while True:
            h = self.hub
            if h is not None and h.error is None and not h.closed:
                return h
            self.drop()
            try:
                self.hub = Hub.open(self.url, key=self.key, timeout=self.timeout, retries=3)
                self.reconnects += 1
                self.counter = max(self.counter, self.hub.info.get("counter", 0))
                return self.hub
            except NanohubError:
                self.link_errors += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def read(self, fn, within=10.0):
        """``fn(hub)`` with reconnects until it succeeds or ``within`` s pass."""
        deadline = time.monotonic() + within
        while True:
            try:
                return fn(self.link(deadline))
            except LinkTimeout:
                if time.monotonic() > deadline:
                    raise
            except LinkError:
                self.link_errors += 1
                self.drop()
                if time.monotonic() > deadline:
                    raise

    # ------------------------------------------------------- commands --
    def command(self, name, fields=None, records=(), within=10.0):
        """Send once, re-send the same bytes until ACKed; None if unknown.

        A signed command carries an expiry (the hub's clock plus its fresh
        window): copies that all arrive too late are refused STALE, never run,
        so only then is the command signed again, as a new request."""
        deadline = time.monotonic() + within
        wire = out = None
        while time.monotonic() < deadline:
            try:
                h = self.link(deadline)
                if wire is None:
                    wire, out = self._encode(h, name, fields, records)
                out["tries"] += 1
                self.sent += 1
                ack = h._transact(name, out["seq"], wire, self.timeout, 1)
                out.update(status=ack.status, reason=ack.reason, detail=ack.detail)
                if ack.reason == "STALE" and out["counter"] is not None:
                    wire = None                 # refused unrun: sign it anew
                    continue
                return ack
            except LinkTimeout:
                continue
            except LinkError:
                self.link_errors += 1
                self.drop()
        return None

    def _encode(self, h, name, fields, records):
        """(wire bytes, outcome) of a new request: its id, counter, tag and expiry fixed."""
        self.seq = (self.seq + 1) & 0xFFFF
        counter = None
        extra = {}
        # signed when the schema asks for it, and where a signature lowers a
        # restriction (a HIGH alarm takes a signed ALARM_ACK), as the library signs
        if name in schema.AUTH_REQUIRED or name in schema.AUTH_TO_LOWER:
            self.counter += 1
            counter = self.counter
            extra = {"key": self.key, "expires": h.expires()}
        wire = codec.encode(name, fields, records, seq=self.seq, counter=counter, **extra)
        out = {"name": name, "msg": schema.MSG[name], "seq": self.seq, "counter": counter,
               "status": UNKNOWN, "reason": "", "detail": 0, "tries": 0}
        self.outcomes.append(out)
        return wire, out

    def estop(self, within=12.0):
        """ESTOP until ACKed, then the hub's report until it says done."""
        end = time.monotonic() + within
        ack = self.command("ESTOP", {"source": 0}, within=within)
        report = None
        while time.monotonic() < end:
            try:
                report = self.read(lambda h: h.estop_report(), within=max(0.5, end - time.monotonic()))
            except NanohubError:
                continue
            if report and report["done"]:
                break
            time.sleep(0.2)
        return ack, report

    def pull_log(self, start=0, within=60.0):
        """Every record from ``start`` to the hub's newest, resuming after any
        fault. Returns (raw record bytes, the hub's next index)."""
        out = []
        nxt = start
        deadline = time.monotonic() + within
        while True:
            try:
                h = self.link(deadline)
                for chunk in h.log_chunks(start):
                    if chunk.records and chunk.start != start:
                        start = chunk.start          # rotated away before we got there
                    out.extend(chunk.records)
                    start = chunk.start + len(chunk.records)
                    nxt = chunk.next
                return b"".join(out), nxt
            except (LinkError, LinkTimeout):
                self.link_errors += 1
                self.drop()
                if time.monotonic() > deadline:
                    raise

    def close(self):
        self.drop()


def check_commands(outcomes, records):
    """The exactly-once and ACK-or-unknown invariants, against the audit log.

    Returns a list of violations (empty: all hold):
    - no command frame of ours executed twice (one EV_CMD/EV_REJECT per request);
    - each command the hub ACKed is in the log with the matching verdict;
    - each command the log shows was run came back ACKed or was reported UNKNOWN
      (never silently run while the host believes otherwise).
    """
    bad = []
    ours = {(o["msg"], o["seq"]): o for o in outcomes}
    seen = {}
    for r in records:
        if r.get("event") in (schema.enum_value("EV", "CMD"), schema.enum_value("EV", "REJECT")):
            k = (r["a"], r["b"])
            if k in ours:
                seen.setdefault(k, []).append(r)
    for k, rs in seen.items():
        if len(rs) > 1:
            bad.append("%s req %d executed %d times" % (ours[k]["name"], k[1], len(rs)))
    ev_cmd = schema.enum_value("EV", "CMD")
    for k, o in ours.items():
        rs = seen.get(k, [])
        if o["status"] == UNKNOWN:
            continue
        if not rs:
            bad.append("%s req %d ACKed %s but not in the audit log" % (o["name"], k[1],
                                                                        o["status"]))
            continue
        ran = rs[0]["event"] == ev_cmd
        if ran != (o["status"] != "REJECTED"):
            bad.append("%s req %d: ACK %s, log %s" % (o["name"], k[1], o["status"],
                                                     "ran" if ran else "refused"))
    return bad
