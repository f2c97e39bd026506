"""The nanohub host library: a connected hub with typed calls.

    from nanohub.host import Hub
    with Hub.open("socket://127.0.0.1:7000") as hub:
        print(hub.status()["state"])
        result = hub.estop()
        assert result.ok, result.unconfirmed

Errors are typed (:mod:`nanohub.host.errors`), each with its CLI exit code.
"""
import struct
import time

from nanohub.protocol import model, schema

from .errors import LinkTimeout, Refused, UsageError
from .link import Link
from .views import (
    Ack, EstopResult, enum_name, LogChunk, alarm_dict, bot_dicts, estop_dict, param_dict,
    site_dict, status_dict,
)

LOG_MAX = model.BY_NAME["LOG_CHUNK"].max_count
ESTOP_RESEND_S = 0.1       # an unanswered ESTOP is sent again this often
_SITES_MAX = model.BY_NAME["SITE_READINGS"].max_count
_LOG_RECORD = struct.Struct(model.RECORDS["LogRecord"].fmt)
_LOG_NAMES = model.RECORDS["LogRecord"].names


class Hub(Link):
    """A connected hub. Use :meth:`Hub.open`; close it, or use it as a context manager."""

    def status(self):
        st = status_dict(self.request("STATUS", "HUB_STATUS")[0])
        st["host_link"] = {"rx_frames": self.rx_frames,
                           "rx_errors": sum(self.decoder.errors.values())}
        return st

    def bots(self):
        """Every bot's state, sorted by id (collects the batched BOT_STATES)."""
        total = self.info.get("bots", 0)
        if not total:
            return []

        def complete(frames, f):
            return f["first"] + f["count"] >= total
        table = {}
        for f in self.request("BOTS", "BOT_STATES", complete):
            for b in bot_dicts(f):
                table[b["id"]] = b
        return [table[k] for k in sorted(table)]

    def sites(self):
        """Readings of every site of the current plan; [] without a plan."""
        def complete(frames, f):
            return f["count"] < _SITES_MAX
        table = {}
        for f in self.request("SITES", "SITE_READINGS", complete):
            for r in f.records:
                table[r["site"]] = site_dict(r)
        return [table[k] for k in sorted(table)]

    def alarms(self):
        """Active alarms: one ALARM frame each, closed by a HUB_STATUS."""
        found = {}
        for f in self.request("ALARMS", ("ALARM", "HUB_STATUS"),
                              lambda frames, f: f.name == "HUB_STATUS"):
            if f.name == "ALARM":
                a = alarm_dict(f)
                found[a["code"]] = a
        return list(found.values())

    def estop_report(self):
        return estop_dict(self.request("ESTOP", "ESTOP_REPORT")[0])

    def params(self):
        """Every parameter: PARAM_GET 0 tells the count, then one by one."""
        first = self.param_at(0)
        out = [first]
        for i in range(1, first["count"]):
            out.append(self.param_at(i))
        self._param_index = {p["name"].lower(): p["index"] for p in out}
        return out

    def param_at(self, index):
        f = self.ask("PARAM_GET", {"index": index}, ("PARAM_VALUE",))[0]
        d = param_dict(f)
        d["count"] = f["count"]
        return d

    def _param_lookup(self, name):
        names = getattr(self, "_param_index", None)
        if names is None or name.lower() not in names:
            self.params()
            names = self._param_index
        if name.lower() not in names:
            raise UsageError("unknown parameter %r: nanohub params list shows the names" % name)
        return names[name.lower()]

    def param_get(self, name):
        return self.param_at(self._param_lookup(name))

    def param_set(self, name, value):
        index = self._param_lookup(name)
        ack = self.command("PARAM_SET", {"index": index, "value": int(value)})
        return ack, self.param_at(index)

    def log_chunks(self, start=0):
        """Yield LogChunk objects from record ``start`` to the newest, resumably.

        The last chunk may be empty: it still tells the hub's ``first`` and ``next``.
        """
        skipped = False
        while True:
            f = self.ask("LOG_READ", {"start": start, "max": LOG_MAX}, ("LOG_CHUNK",))[0]
            records = [_LOG_RECORD.pack(*(r[n] for n in _LOG_NAMES)) for r in f.records]
            chunk = LogChunk(f["start"], f["first"], f["next"], records)
            if not records and start < chunk.first and not skipped:
                start, skipped = chunk.first, True      # rotated away: go on from the oldest
                continue
            yield chunk
            if not records:
                return
            start = chunk.start + len(records)
            if start >= chunk.next:
                return

    def log_ack(self, upto):
        """Tell the hub this host stored every record below ``upto`` (signed:
        only the key holder may let the hub rotate records away). Returns the ACK."""
        return self.command("LOG_ACK", {"upto": int(upto)})

    def log_pull(self, start=0, progress=None):
        """All records from ``start`` as bytes; ``progress(next_index, end_index)``."""
        out = []
        for chunk in self.log_chunks(start):
            out.extend(chunk.records)
            if progress:
                progress(chunk.start + len(chunk.records), chunk.next)
        return b"".join(out)

    def telemetry(self, timeout=None):
        """Yield telemetry frames as they come (until the link closes or timeout)."""
        sub = self.subscribe()
        try:
            while True:
                f = sub.get(timeout if timeout is not None else 3600.0)
                if f is None:
                    if timeout is not None:
                        return
                    continue
                yield f
        finally:
            self.unsubscribe(sub)

    # ------------------------------------------------------- controls --

    def arm(self):
        return self.command("ARM")

    def disarm(self):
        return self.command("DISARM")

    def deploy(self, site, count):
        return self.command("DEPLOY", {"site": site, "count": count})

    def recall(self, bot=schema.ADDR_ALL):
        return self.command("RECALL", {"bot": bot})

    def hold(self, bot=schema.ADDR_ALL):
        return self.command("HOLD", {"bot": bot})

    def treat_start(self, plan):
        fields, records = plan.to_frame()
        return self.command("TREAT_START", fields, records)

    def pause(self):
        return self.command("TREAT_PAUSE")

    def resume(self):
        return self.command("TREAT_RESUME")

    def stop_treatment(self):
        return self.command("TREAT_STOP")

    def dose_scale(self, percent):
        return self.command("DOSE_SCALE", {"percent": percent})

    def reset_estop(self):
        return self.command("ESTOP_RESET")

    def ack_alarms(self, code=0):
        return self.command("ALARM_ACK", {"code": code})

    def consent(self, patient):
        return self.command("CONSENT", {"patient": patient})

    def set_rates(self, status_hz=2, bots_hz=1, sites_hz=1):
        return self.command("TELEM_RATE", {"status_hz": status_hz, "bots_hz": bots_hz,
                                           "sites_hz": sites_hz})

    def estop(self, timeout=5.0, source=0, resend=ESTOP_RESEND_S):
        """Emergency stop: no key, no handshake needed. Waits for the final ESTOP_REPORT.

        The same ESTOP frame is sent at once and re-sent every ``resend``
        seconds until the hub's final report arrives: a flood on the link or a
        lost frame must not hold the stop back, and the hub answers a repeat
        from its ACK cache (stopping twice is harmless). Reports that arrive
        before the ACK predate this stop and are ignored. The result is ``ok``
        only when the hub has finished and confirmed every bot disabled.
        """
        seq, wire = self.build("ESTOP", {"source": source})
        msg = schema.MSG["ESTOP"]

        def match(f):
            return f.name == "ESTOP_REPORT" or (
                f.name == "ACK" and f["req"] == seq and f["cmd"] == msg)
        ack = last = None
        t_ack = None
        start = time.monotonic()
        ack_by = start + max(self.timeout, timeout)
        deadline = start + timeout
        next_send = start
        with self._wait_for(match) as w:
            while True:
                now = time.monotonic()
                if ack is None and now >= ack_by:
                    raise LinkTimeout("no answer from the hub to ESTOP within %.1f s"
                                      % (ack_by - start))
                if ack is not None and now >= deadline:
                    break
                if now >= next_send:
                    self.send_raw(wire)
                    # fast until the hub answers; then only to recover a lost report
                    next_send = now + (resend if ack is None else 5 * resend)
                f = w.get(min(next_send, ack_by if ack is None else deadline) - now)
                if f is None:
                    continue
                if f.name == "ACK":
                    if ack is None:
                        t_ack = time.monotonic() - start
                        ack = Ack("ESTOP", seq, enum_name("ACKS", f["status"]),
                                  enum_name("WHY", f["reason"]), f["detail"])
                        deadline = max(deadline, time.monotonic() + 0.5)
                elif ack is not None:
                    last = f
                    if f["done"]:
                        break
        report = estop_dict(last) if last is not None else None
        if report is None or not report["done"]:
            try:
                report = self.estop_report()
            except (LinkTimeout, Refused):
                pass
        if report is None:
            res = EstopResult(False, 0, 0, [], 0, ack)
        else:
            res = EstopResult(report["done"], report["total"], report["confirmed"],
                              report["pending"], report["unconfirmed"], ack)
        res.ack_seconds = t_ack                     # first ESTOP sent -> its ACK
        res.seconds = time.monotonic() - start      # first ESTOP sent -> final report
        return res
