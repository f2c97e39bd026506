"""Operations on every chair at once: status, emergency stop, audit logs.

Each hub is reached in its own thread, so that a slow or dead hub delays no
other one, and the caller waits at most a stated deadline: a hub that has not
answered by then is reported with the error, never waited for. Emulated
chairs (``sim``) are started first, from the calling thread (an emulated hub
dies with the thread that started it).

Everything goes through the host library (:class:`nanohub.host.client.Hub`):
``Hub.estop`` sends the ESTOP, re-sends it until it is acknowledged and waits
for the hub's final ESTOP_REPORT, exactly as ``nanohub estop`` does.
"""
import os
import threading
import time
from dataclasses import dataclass, field

from ..errors import CheckFailed, LinkError, NanohubError

OPEN_RETRIES = 2
MARGIN_S = 1.0           # on top of the library's own bounded waits


@dataclass
class ChairResult:
    """What one chair answered; ``error`` is one line when it did not."""
    name: str
    port: str
    reached: bool = False
    error: str = None
    data: dict = field(default_factory=dict)
    elapsed_s: float = 0.0

    def to_dict(self):
        return dict({"chair": self.name, "port": self.port, "reached": self.reached,
                     "error": self.error, "elapsed_s": round(self.elapsed_s, 3)}, **self.data)


@dataclass
class Target:
    """A chair as it is reached: the URL and key to open (an emulated chair's own)."""
    chair: object
    url: str
    key: str = None


def resolve(chairs, stack, timeout=2.0):
    """Targets for ``chairs``; emulated ones are started here and closed with ``stack``."""
    from ..emulate.hub import from_port
    out = []
    for c in chairs:
        if not c.is_sim:
            out.append(Target(c, c.port, c.key))
            continue
        emu = stack.push(from_port(c.port))
        out.append(Target(c, emu.url, c.key or str(emu.key_path)))
    return out


def open_hub(target, timeout=2.0, baud=115200):
    from ..client import Hub
    return Hub.open(target.url, key=target.key, timeout=timeout, retries=OPEN_RETRIES,
                    heartbeat=False, baudrate=baud)


def each(targets, work, deadline):
    """Run ``work(target) -> dict`` for every target in parallel threads.

    Returns a ChairResult per target, in order, within ``deadline`` seconds:
    a target whose work has not ended by then is reported as not answering
    (its thread is a daemon and is left behind).
    """
    results = [None] * len(targets)
    t0 = time.monotonic()

    def run(i, t):
        r = ChairResult(t.chair.name, t.chair.port)
        try:
            r.data = work(t) or {}
            r.reached = True
        except _Unreached as e:
            r.error = str(e)
        except _Reached as e:
            r.reached, r.error, r.data = True, str(e), e.data
        except NanohubError as e:
            r.error = str(e)
        except Exception as e:      # noqa: BLE001 - whatever a port raised is that chair's error
            r.error = "%s: %s" % (type(e).__name__, e)
        r.elapsed_s = time.monotonic() - t0
        results[i] = r

    threads = [threading.Thread(target=run, args=(i, t), daemon=True,
                                name="fleet-%s" % t.chair.name) for i, t in enumerate(targets)]
    for th in threads:
        th.start()
    end = t0 + deadline
    for th in threads:
        th.join(max(0.0, end - time.monotonic()))
    for i, t in enumerate(targets):
        if results[i] is None:
            results[i] = ChairResult(t.chair.name, t.chair.port, error="no answer within %.1f s"
                                     % deadline, elapsed_s=time.monotonic() - t0)
    return results


class _Unreached(Exception):
    """The hub could not be opened."""


class _Reached(Exception):
    """The hub was reached, but the operation did not complete."""

    def __init__(self, message, data=None):
        super().__init__(message)
        self.data = data or {}


def _connect(target, timeout, baud):
    try:
        return open_hub(target, timeout, baud)
    except NanohubError as e:
        raise _Unreached(str(e)) from None
    except Exception as e:          # noqa: BLE001
        raise _Unreached("link error on %s: %s: %s" % (target.url, type(e).__name__, e)) from None


def _open_budget(timeout):
    return timeout * OPEN_RETRIES + MARGIN_S


# ---------------------------------------------------------------- status --

def hub_row(hub):
    """One chair's row: identity, state and reason, bots by state, alarms, link."""
    from ..views import info_dict
    info = info_dict(hub.info)
    st = hub.status()
    return {"hub_id": info["hub_id"], "firmware": info["firmware"], "board": info["board"],
            "state": st["state"], "reason": st["reason"], "bots": st["bots"],
            "alarms": st["alarms"], "bus_link_percent": st["bus_link_percent"],
            "rx_bad": st["rx_bad"], "failing_checks": st["failing_checks"],
            "sens_permille": st["sens_permille"]}


def status_all(targets, timeout=2.0, baud=115200):
    def work(t):
        with _connect(t, timeout, baud) as hub:
            return hub_row(hub)
    return each(targets, work, _open_budget(timeout) + timeout * 3 + MARGIN_S)


class Watcher:
    """Keeps one link per chair and refreshes its row every ``interval`` s.

    A chair that fails is reconnected on the next round; its row holds the
    error meanwhile. ``rows()`` is a snapshot, in chair order.
    """

    def __init__(self, targets, interval=1.0, timeout=2.0, baud=115200):
        self.targets, self.interval, self.timeout, self.baud = targets, interval, timeout, baud
        self._rows = {t.chair.name: ChairResult(t.chair.name, t.chair.port, error="connecting")
                      for t in targets}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(t,), daemon=True,
                                          name="fleet-watch-%s" % t.chair.name)
                         for t in targets]

    def __enter__(self):
        for th in self._threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for th in self._threads:
            th.join(self.timeout + MARGIN_S)

    def rows(self):
        with self._lock:
            return [self._rows[t.chair.name] for t in self.targets]

    def fresh(self):
        """True once every chair has answered or failed at least once."""
        return all(r.error != "connecting" for r in self.rows())

    def _set(self, r):
        with self._lock:
            self._rows[r.name] = r

    def _run(self, t):
        hub = None
        while not self._stop.is_set():
            t0 = time.monotonic()
            r = ChairResult(t.chair.name, t.chair.port)
            try:
                if hub is None:
                    hub = open_hub(t, self.timeout, self.baud)
                r.data, r.reached = hub_row(hub), True
            except Exception as e:  # noqa: BLE001 - a failing chair is a row, never a crash
                r.error = str(e) if isinstance(e, NanohubError) else "%s: %s" % (
                    type(e).__name__, e)
                if hub is not None:
                    hub.close()
                    hub = None
            r.elapsed_s = time.monotonic() - t0
            self._set(r)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))
        if hub is not None:
            hub.close()


# ----------------------------------------------------------------- estop --

def estop_all(targets, wait=5.0, timeout=2.0, baud=115200, source=0):
    """ESTOP to every hub at once; each result holds the hub's EstopResult.

    Every hub's ESTOP leaves as soon as its own link is open: no hub waits for
    another. ``data["ok"]`` is True only when that hub confirmed every bot.
    """
    def work(t):
        hub = _connect(t, timeout, baud)
        try:
            try:
                res = hub.estop(timeout=wait, source=source)
            except NanohubError as e:
                raise _Reached("no confirmation: %s" % e, {"ok": False, "hub_id":
                                                            "0x%08x" % hub.hub_id}) from None
            out = dict(res.to_dict(), hub_id="0x%08x" % hub.hub_id)
            if not res.ok:
                raise _Reached(_estop_problem(res), out)
            return out
        finally:
            hub.close()
    # the library's ESTOP: tries within max(timeout, 2) s for the ACK, then
    # ``wait`` for the report, then one STATUS-like request
    budget = _open_budget(timeout) + max(timeout, 2.0) + wait + timeout * 3 + MARGIN_S
    return each(targets, work, budget)


def _estop_problem(res):
    ids = ", ".join(str(i) for i in res.unconfirmed)
    if not ids and res.total > res.confirmed:
        ids = "%d bot(s), ids not reported" % (res.total - res.confirmed)
    return "%s: %d of %d bots confirmed disabled; unconfirmed bots: %s" % (
        "hub still stopping" if not res.done else "not confirmed", res.confirmed, res.total,
        ids or "none")


def estop_verdict(results):
    """(ok, one-line text): ok only when every hub confirmed every bot."""
    bad = [r for r in results if not (r.reached and r.data.get("ok") and not r.error)]
    total = sum(r.data.get("total", 0) for r in results if r.reached)
    if not bad:
        return True, "FLEET EMERGENCY STOP: all %d hubs confirmed every bot disabled (%d bots)" % (
            len(results), total)
    unreached = [r for r in bad if not r.reached]
    unconfirmed = [r for r in bad if r.reached]
    parts = []
    if unconfirmed:
        parts.append("unconfirmed: " + "; ".join("%s (%s)" % (r.name, r.error)
                                                 for r in unconfirmed))
    if unreached:
        parts.append("could not reach: " + "; ".join("%s (%s)" % (r.name, r.error)
                                                     for r in unreached))
    return False, ("FLEET EMERGENCY STOP NOT CONFIRMED on %d of %d hubs: %s; use the hardware "
                   "stop there" % (len(bad), len(results), "; ".join(parts)))


# ------------------------------------------------------------- audit logs --

def pull_logs_all(targets, out_dir, timeout=2.0, baud=115200, deadline=120.0):
    """Every hub's audit log into ``out_dir/CHAIR/nanohub-HUBID.log``, resumed
    when the file is there, then verified; ``out_dir/index.json`` lists them."""
    from nanohub.protocol import auditlog

    from .. import logs

    def work(t):
        with _connect(t, timeout, baud) as hub:
            folder = os.path.join(out_dir, t.chair.name)
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "nanohub-%08x.log" % hub.hub_id)
            try:
                added = logs.pull_into(hub, path)[1]
            except logs.NotThisHub as e:
                raise _Reached(str(e), {"hub_id": "0x%08x" % hub.hub_id}) from None
            res = auditlog.verify(auditlog.parse_records(logs.read(path)))
            data = {"hub_id": "0x%08x" % hub.hub_id, "file": os.path.relpath(path, out_dir),
                    "added": added, "records": res.count, "first_index": res.first_index,
                    "last_index": res.last_index, "verified": res.ok,
                    "problem": None if res.ok else str(res)}
            if not res.ok:
                raise _Reached("log does not verify: %s" % res, data)
            # stored and verified: the hub may rotate these away (signed; a
            # keyless pull leaves the hub holding them)
            data["acked"], why = logs.ack(hub, logs.holder_key(hub), res)
            if why:
                data["not_acked"] = why
            return data
    results = each(targets, work, deadline)
    write_index(out_dir, results)
    return results


def write_index(out_dir, results):
    import json
    os.makedirs(out_dir, exist_ok=True)
    index = {"pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "chairs": [r.to_dict() for r in results]}
    path = os.path.join(out_dir, "index.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path


def raise_for(results, what):
    """CheckFailed (exit 1) if a reached hub failed, LinkError (3) if one was not reached."""
    failed = [r for r in results if r.reached and r.error]
    unreached = [r for r in results if not r.reached]
    data = {"chairs": [r.to_dict() for r in results]}
    if failed:
        raise CheckFailed("%s: %s" % (what, "; ".join("%s: %s" % (r.name, r.error)
                                                      for r in failed + unreached)), data)
    if unreached:
        err = LinkError("%s: could not reach %s" % (what, "; ".join(
            "%s (%s)" % (r.name, r.error) for r in unreached)))
        raise err
