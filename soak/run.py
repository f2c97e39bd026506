"""``make soak``: presentation night on repeat through faulty links, then the figures.

    python -m soak.run [--minutes 10] [--bots 64] [--loss 0.05 --corrupt 0.01
        --duplicate 0.01] [--scenario presentation-night] [--seed 1] [--json FILE]

Each round is one presentation night (60 s of simulated session): the real
firmware on the MicroPython VM with 64 bots, the host link through
``nanohub.host.emulate.faultproxy`` (loss, corruption, duplication in both
directions), the bot bus with the same rates added to the scenario's own
network faults by the simulator (``noisy_scenario`` below). The
operator plays the scenario's script with ``nanohub.host.emulate.operator.Operator``
(reconnects, identical resends, UNKNOWN when it cannot tell) as a clinician
would: it arms once the pre-treatment checks pass (the bots may still be on
their way when a lost frame cost a resend) and starts the treatment; it
presses the emergency stop, waits for the confirmation, acknowledges the
alarms, pulls the new audit records and resets the stop. A reset the hub
refuses must name its failing checks; the documented recovery follows
(recall, retrieve the disabled bots by hand: SIGUSR1 to the simulator, then
acknowledge and reset) and must succeed. Rounds repeat until the time is up;
each prints one line of what happened.

The hub and the swarm stand for hardware of their own; only the operator
shares the loaded host. Their emulators therefore run at a raised priority
where the system permits it (the figures say whether it did).

The hub keeps one store for the whole soak, so its audit log is verified end
to end across rounds (each pull continues the chain of the previous one). The
hub restarts between rounds, as a clinic powers it between sessions: after an
emergency stop it keeps every bot disabled until a reboot, so the next night
needs one. Memory: the hub has no protocol field for its heap, so the figure
is the resident size (VmRSS, /proc/PID/status) of the MicroPython VM process,
sampled every 2 s.

Invariants checked every round (violations are counted, goal 0):
- the hub is TREATING before the scenario's first fault strikes;
- a refused ESTOP_RESET names its checks, and recall, retrieve, reset then
  succeeds without the stop latching again;
- no command executed twice; every command the hub ran or refused is ACKed
  at the host or reported UNKNOWN (``nanohub.host.emulate.operator.check_commands``);
- the emergency stop ends done, with confirmed + unconfirmed = total, the
  unconfirmed named, and only bots that truly could not answer (radio silent,
  battery dead, or the gateway itself running late) unconfirmed; by the end of
  the night every bot is confirmed; every bot reported confirmed is disabled in
  the simulator's ground truth; no bot is still delivering at the end;
- no audit record lost: the pulled log continues the previous pull exactly
  and its chain verifies; the segments on the medium verify too;
- the hub boots SAFE (never treating) every round.
"""
from nanohub.host.simport import HEAP
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from nanohub.host.emulate.hub import EmulatedHub
from nanohub.host.errors import NanohubError
from nanohub.host.emulate.faultproxy import Faults, FaultProxy
from nanohub.host.emulate.operator import UNKNOWN, Operator, check_commands
from nanohub.protocol import auditlog

from nanohub.host.views import check_names

HUB_ID = 0x50AC0001


def vm_rss_kb(pid):
    """Resident memory of a process (VmRSS, kB), or None."""
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def noisy_scenario(base, path, loss=0.05, corrupt=0.01, duplicate=0.01, reorder=0.0,
                   delay_ms=0, until=100000.0):
    """Write scenario ``base`` (a bundled name) to ``path`` with a bot-bus fault
    in force from the start: the simulator's wire faults between hub and swarm
    (they compound with the scenario's own bus faults)."""
    from nanohub.sim import scenario as sc
    text = Path(sc.HERE, base + ".toml").read_text()
    text += ("\n# ---- added by the fault-injection rig ----\n[[fault]]\nid = \"rig-bus\"\n"
             "at = 0.0\nuntil = %.1f\nkind = \"bus\"\nparams = { loss = %g, corrupt = %g, "
             "duplicate = %g, reorder = %g, delay_ms = %d }\n"
             % (until, loss, corrupt, duplicate, reorder, delay_ms))
    Path(path).write_text(text)
    sc.load(str(path))                 # fails loudly if the file is not a valid scenario
    return str(path)


class SoakHub(EmulatedHub):
    """The emulated hub, with the gateway also writing its wire statistics."""

    def __init__(self, *a, stats=None, **kw):
        super().__init__(*a, **kw)
        self.stats_path = stats

    def retrieve(self):
        """The clinician's hands: the gateway takes every bot out of the mouth."""
        if self.gateway is not None and self.gateway.poll() is None:
            os.kill(self.gateway.pid, signal.SIGUSR1)

    def _spawn(self, argv, name, **kw):
        if name == "gateway" and self.stats_path:
            argv = list(argv) + ["--stats", str(self.stats_path)]
        proc = super()._spawn(argv, name, **kw)
        raise_priority(proc)
        return proc


PRIORITY = -10
priority_raised = []


def raise_priority(proc):
    """The hub and the swarm stand for hardware of their own (a board, the
    bots); only the operator's side shares the loaded host. So their
    emulators get priority over the host's other work where the system allows
    it (the children and any they start later: the whole process group)."""
    try:
        os.setpriority(os.PRIO_PGRP, proc.pid, PRIORITY)
        priority_raised.append(True)
    except (OSError, AttributeError):
        priority_raised.append(False)


class Sampler(threading.Thread):
    def __init__(self, pid, t0, rnd, out, every=2.0):
        super().__init__(daemon=True)
        self.pid, self.t0, self.rnd, self.out, self.every = pid, t0, rnd, out, every
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            kb = vm_rss_kb(self.pid)
            if kb:
                self.out.append((round(time.monotonic() - self.t0, 1), self.rnd, kb))
            self.stop.wait(self.every)


class Soak:
    def __init__(self, args):
        self.a = args
        self.work = Path(tempfile.mkdtemp(prefix="nanohub-soak-"))
        self.store = self.work / "hub"
        self.store.mkdir()
        from nanohub.host import keys
        self.key = keys.new_key()
        keys.write_private(self.store / "hub.key", self.key)
        self.faults = Faults(loss=args.loss, corrupt=args.corrupt, duplicate=args.duplicate)
        self.t0 = time.monotonic()
        self.rss = []                        # (t s, round, kB)
        self.violations = []
        self.fig = {"rounds": 0, "commands": 0, "acked": 0, "unknown": 0, "refused": 0,
                    "resends": 0, "reconnects": 0, "host_frames": 0, "host_faults": 0,
                    "bus_frames": 0, "bus_faults": 0, "log_records": 0, "estops": 0,
                    "unconfirmed_at_report": 0, "unconfirmed_at_end": 0,
                    "treatments": 0, "boots_not_safe": 0, "boots_in_estop": 0,
                    "auto_estops": 0, "relatched_after_reset": 0, "rounds_treating": 0,
                    "resets_refused": 0}
        self.stories = []
        self.seq = 1
        self.log_next = 0
        self.log_head = None
        self.all_outcomes = []
        self.round_lines = []

    def bad(self, rnd, what):
        self.violations.append("round %d: %s" % (rnd, what))
        print("  VIOLATION round %d: %s" % (rnd, what), flush=True)

    # ----------------------------------------------------------- one night --
    def night(self, rnd):
        from nanohub.sim.scenario import load
        a = self.a
        scen = noisy_scenario(a.scenario, self.work / ("night%d.toml" % rnd), a.loss,
                              a.corrupt, a.duplicate)
        sc = load(scen)
        # the scenario's own faults (not the rig's link noise, in force from the start)
        self.first_fault = min([f.at for f in load(a.scenario).faults] or [sc.duration_s])
        trace = self.work / ("trace%d.jsonl.gz" % rnd)
        stats = self.work / ("bus%d.json" % rnd)
        emu = SoakHub(bots=a.bots, scenario=scen, seed=a.seed + rnd, store=self.store,
                      hub_id=HUB_ID, trace=trace, stats=stats, heap=a.heap)
        with emu:
            for p in (emu.hub, emu.gateway):       # and the VM the launcher started
                if p is not None:
                    raise_priority(p)
            sampler = Sampler(emu.hub.pid, self.t0, rnd, self.rss)
            sampler.start()
            with FaultProxy(("127.0.0.1", emu.proxy_port or emu.host_port), up=self.faults,
                            down=self.faults, seed=a.seed * 1000 + rnd) as px:
                op = Operator(px.url, self.key, timeout=1.0, seq0=self.seq)
                try:
                    self._play(rnd, sc, op, emu)
                finally:
                    self.seq = op.seq
                    op.close()
                    sampler.stop.set()
                    if emu.gateway is not None:   # first, so it still has the bus to report on
                        emu.gateway.terminate()
                        try:
                            emu.gateway.wait(5)
                        except Exception:
                            pass
                f = self.fig
                f["host_frames"] += px.stats["up"]["frames"] + px.stats["down"]["frames"]
                f["host_faults"] += px.injected()
        self._truth(rnd, trace, stats)
        self._tell(rnd)

    def _play(self, rnd, sc, op, emu):
        t0 = time.monotonic()
        clock = lambda: time.monotonic() - t0          # noqa: E731
        story = self.story = {"round": rnd, "treating_s": None, "stops": [], "estop": None,
                              "reset": None}
        info = op.read(lambda h: h.refresh_info())
        if info["state"] == 4:
            # latched by the last night (a reset can be undone at once by a rule that still
            # holds, e.g. quarantined bots left deployed): the stop survives the reboot
            self.fig["boots_in_estop"] += 1
            op.command("ALARM_ACK", {"code": 0})
            op.command("ESTOP_RESET")
            info = op.read(lambda h: h.refresh_info())
        if info["state"] != 0:
            self.fig["boots_not_safe"] += 1
            self.bad(rnd, "the hub booted in state %d, neither SAFE nor a latched ESTOP"
                     % info["state"])
        op.command("TELEM_RATE", {"status_hz": 5, "bots_hz": 1, "sites_hz": 2})
        strike = self.first_fault
        report = None
        for t_op, verb, args in sc.operator:
            while clock() < t_op:
                time.sleep(0.02)
            if verb == "estop":
                ack, report = op.estop(within=12.0)
                self.fig["estops"] += 1
                if ack is None or ack.rejected:
                    self.bad(rnd, "ESTOP not accepted: %r" % (ack,))
                self._check_report(rnd, report, "at the report")
                if report:
                    self.fig["unconfirmed_at_report"] += report["unconfirmed"]
                    story["estop"] = {"at_s": round(t_op, 1), "first": report}
            elif verb == "arm":
                self._arm(rnd, op, clock, strike)
            else:
                self._operate(sc, op, verb, args)
                if verb == "treat_start":
                    self._treating(rnd, op, clock, strike)
        while clock() < sc.duration_s:
            time.sleep(0.1)
        if report is not None:                         # the hub keeps asking: ask it again
            try:
                report = op.read(lambda h: h.estop_report())
                self.fig["unconfirmed_at_end"] += report["unconfirmed"]
                self._check_report(rnd, report, "at the end")
                self.final_pending = set(report["pending"])
                story["estop"]["end"] = report
                if report["unconfirmed"]:
                    self.bad(rnd, "the emergency stop never confirmed bots %s"
                             % report["pending"])
            except NanohubError as e:
                self.bad(rnd, "no final ESTOP report: %s" % e)
        op.command("ALARM_ACK", {"code": 0})
        st = op.read(lambda h: h.status())
        if st["state"] == "ESTOP":                     # so that the next night boots SAFE
            self._reset(rnd, op, emu)
        self._log(rnd, op, emu)
        self._commands(rnd, op)
        self._ack_log(rnd, op)

    def _ack_log(self, rnd, op):
        """What a clinic does after a keyed pull: acknowledge what is stored and
        verified, so the hub may rotate it away and never fills its log
        (LOG_FULL). Its record is in the next night's pull; unanswered, the
        next night acknowledges again."""
        if self.log_next:
            ack = op.command("LOG_ACK", {"upto": self.log_next})
            if ack is not None and ack.status == "REJECTED":
                self.bad(rnd, "LOG_ACK up to %d refused: %s" % (self.log_next, ack.reason))

    def _arm(self, rnd, op, clock, strike):
        """Arm when the pre-treatment checks pass, as an operator would: the bots
        may still be on their way (a lost frame costs a resend). A refusal
        names the failing checks; it is retried until the faults are due."""
        why = []
        while clock() < strike:
            try:
                st = op.read(lambda h: h.status(), within=2.0)
            except NanohubError:
                continue
            if st["state"] != "SAFE":
                why.append("state %s" % st["state"])
                break
            if st["failing_checks"]:
                why.append("checks " + "+".join(st["failing_checks"]))
                time.sleep(0.2)
                continue
            ack = op.command("ARM", within=4)
            if ack is not None and not ack.rejected:
                return True
            if ack is not None and ack.reason == "CHECKS":
                why.append("ARM refused: " + "+".join(check_names(ack.detail)))
                time.sleep(0.2)
                continue
            if ack is not None:
                why.append("ARM refused: %s" % ack.reason)
            else:
                why.append("ARM unknown")
                st = op.read(lambda h: h.status())
                if st["state"] == "ARMED":
                    return True
        self.bad(rnd, "not armed before the faults (%.0f s): %s"
                 % (strike, "; ".join(why[-3:]) or "no time"))
        return False

    def _treating(self, rnd, op, clock, strike):
        """The round must be treating before its faults strike."""
        while clock() < strike:
            try:
                st = op.read(lambda h: h.status(), within=2.0)
            except NanohubError:
                continue
            if st["state"] == "TREATING":
                self.story["treating_s"] = round(clock(), 1)
                self.fig["rounds_treating"] += 1
                return True
            if st["state"] != "ARMED":
                break
            time.sleep(0.1)
        self.bad(rnd, "not TREATING before the faults (%.0f s)" % strike)
        return False

    def _reset(self, rnd, op, emu):
        """ESTOP_RESET; if the hub refuses, the refusal must name its checks and
        the documented recovery (recall, retrieve by hand, acknowledge, reset)
        must then succeed, without the stop latching again."""
        story = self.story
        ack = op.command("ESTOP_RESET")
        if ack is None:
            self.bad(rnd, "ESTOP_RESET unknown (no ACK)")
            return
        if ack.rejected:
            names = check_names(ack.detail) if ack.reason == "CHECKS" else []
            story["reset"] = "refused %s (%s)" % (ack.reason, "+".join(names) or ack.detail)
            self.fig["resets_refused"] += 1
            if ack.reason != "CHECKS" or not names:
                self.bad(rnd, "ESTOP_RESET refused without naming a check: %r" % (ack,))
                return
            op.command("RECALL", {"bot": 255})
            emu.retrieve()
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:     # the retrieved bots report from the dock
                st = op.read(lambda h: h.status())
                if st["bots"]["docked"] + st["bots"]["disabled"] + st["bots"]["quarantined"] \
                        == st["bots"]["total"]:
                    break
                time.sleep(0.2)
            time.sleep(0.5)
            op.command("ALARM_ACK", {"code": 0})
            ack = op.command("ESTOP_RESET")
            if ack is None or ack.rejected:
                self.bad(rnd, "ESTOP_RESET refused after recall and retrieval: %r" % (ack,))
                story["reset"] += "; recall, retrieve, reset: %s" % (
                    "unknown" if ack is None else "refused " + ack.reason)
                return
            story["reset"] += "; recall, retrieve, reset: done"
        else:
            story["reset"] = "done"
        time.sleep(1.0)                            # no rule may latch the stop again
        st = op.read(lambda h: h.status())
        if st["state"] != "SAFE":
            self.bad(rnd, "after an accepted reset the hub is %s (%s)" % (st["state"],
                                                                          st["reason"]))

    def _operate(self, sc, op, verb, args):
        from nanohub.sim.mouth import parse_site
        if verb == "consent":
            op.command("CONSENT", {"patient": int(args.get("patient", 1))}, within=4)
        elif verb == "deploy":
            # refused NO_BOTS while the swarm was not heard for a moment: deploy again
            deadline = time.monotonic() + 4
            while True:
                ack = op.command("DEPLOY", {"site": parse_site(args["site"]),
                                            "count": int(args.get("count", 1))}, within=4)
                if ack is None or not ack.rejected or ack.reason != "NO_BOTS" or \
                        time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        elif verb == "arm":
            op.command("ARM", within=4)
        elif verb == "treat_start":
            ack = op.command("TREAT_START", {
                "session_cap": int(args.get("session_cap", 300000)),
                "site_cap": int(args.get("site_cap", 100000)),
                "rate_cap": int(args.get("rate_cap", 2400)),
                "duration": int(args.get("duration", 40))},
                [{"site": l.site, "target": l.target_um, "bots": l.bots} for l in sc.lesions],
                within=4)
            if ack is not None and not ack.rejected:
                self.fig["treatments"] += 1
        elif verb in ("pause", "resume", "stop"):
            op.command({"pause": "TREAT_PAUSE", "resume": "TREAT_RESUME",
                        "stop": "TREAT_STOP"}[verb], within=4)
        elif verb in ("recall", "hold"):
            op.command(verb.upper(), {"bot": int(args.get("bot", 255))}, within=4)
        elif verb == "dose_scale":
            op.command("DOSE_SCALE", {"percent": int(args["percent"])}, within=4)
        elif verb == "ack":
            op.command("ALARM_ACK", {"code": int(args.get("code", 0))}, within=4)

    def _check_report(self, rnd, report, when):
        if report is None:
            self.bad(rnd, "no ESTOP report %s" % when)
            return
        if not report["done"]:
            self.bad(rnd, "ESTOP not done %s: %r" % (when, report))
        if report["confirmed"] + report["unconfirmed"] != report["total"] or \
                len(report["pending"]) != report["unconfirmed"]:
            self.bad(rnd, "ESTOP report inconsistent %s: %r" % (when, report))

    def _log(self, rnd, op, emu):
        try:
            raw, nxt = op.pull_log(self.log_next)
        except NanohubError as e:
            self.bad(rnd, "audit log pull failed: %s" % e)
            return
        recs = auditlog.parse_records(raw)
        res = auditlog.verify(recs, anchor=self.log_head, expect_start=self.log_next)
        if not res.ok:
            self.bad(rnd, "audit log: %s" % res)
        elif recs and recs[0]["index"] != self.log_next:
            self.bad(rnd, "audit log: records %d..%d lost (rotated before the pull)"
                     % (self.log_next, recs[0]["index"] - 1))
        if recs and res.ok:
            self.log_next, self.log_head = res.last_index + 1, res.head
        self.fig["log_records"] += len(recs)
        self.round_records = recs
        ev_state, ev_cmd = 2, 3
        for k, r in enumerate(recs):
            if r["event"] == ev_state and r["a"] == 4 and r["c"] not in (0, 13):
                self.fig["auto_estops"] += 1
                if k and recs[k - 1]["event"] == ev_cmd and recs[k - 1]["a"] == 0x2b:
                    self.fig["relatched_after_reset"] += 1
        segs = sorted(p for p in Path(emu.store).iterdir()
                      if p.name.startswith("log.") and p.name[4:].isdigit())
        disk = auditlog.verify_segments([p.read_bytes() for p in segs])
        if not disk.ok:
            self.bad(rnd, "the log segments on the medium: %s" % disk)

    def _commands(self, rnd, op):
        recs = getattr(self, "round_records", [])
        for v in check_commands(op.outcomes, recs):
            self.bad(rnd, v)
        f = self.fig
        for o in op.outcomes:
            f["commands"] += 1
            f["resends"] += max(0, o["tries"] - 1)
            if o["status"] == UNKNOWN:
                f["unknown"] += 1
            elif o["status"] == "REJECTED":
                f["refused"] += 1
            else:
                f["acked"] += 1
        f["reconnects"] += op.reconnects
        self.all_outcomes += op.outcomes

    def _truth(self, rnd, trace, stats):
        from nanohub.firmware.hub import wire as w
        from nanohub.sim.world import load_trace
        try:
            st = json.loads(Path(stats).read_text())
            bus = st.get("bus_out", {})
            self.fig["bus_frames"] += st.get("frames_in", 0)
            self.fig["bus_faults"] += sum(bus.get(k, 0) for k in
                                          ("lost", "corrupted", "duplicated", "reordered"))
        except (OSError, ValueError):
            pass
        try:
            tr = load_trace(trace)
            last = tr.samples()[-1]
        except (OSError, ValueError, IndexError) as e:
            self.bad(rnd, "no ground-truth trace: %s" % e)
            return
        story = getattr(self, "story", {})
        est = story.get("estop") or {}
        if est.get("first"):
            # bots unconfirmed at the first report must be ones that truly could not
            # answer when the stop was pressed: radio silent, battery dead, or the
            # swarm's gateway itself running late (the trace's "quiet" rows)
            deaf = set(tr.fault_bots("silent")) | set(tr.fault_bots("battery_collapse"))
            stops = [r[1] for r in tr.rows if r[0] == "cmd" and r[2] == 255
                     and r[3] == w.OP_DISABLE]
            late = any(r[0] == "quiet" and any(t - 3500 <= r[1] and r[2] <= t + 3500
                                               for t in stops) for r in tr.rows)
            heard = sorted(set(est["first"]["pending"]) - deaf)
            est["deaf"] = sorted(set(est["first"]["pending"]) & deaf)
            if heard and late:
                est["late"] = heard
            elif heard:
                self.bad(rnd, "bots %s unconfirmed at the report though they could hear" % heard)
        pending = getattr(self, "final_pending", set())
        for b, row in enumerate(last[2]):
            if b not in pending and row[0] != w.BOT_DISABLED:
                self.bad(rnd, "bot %d confirmed disabled but truly in state %d" % (b, row[0]))
        delivering = [b for b, row in enumerate(last[2]) if row[2] > 0]
        if delivering:
            self.bad(rnd, "bots still delivering at the end: %s" % delivering)
        self.final_pending = set()

    def _tell(self, rnd):
        """One line per round: what happened."""
        st = getattr(self, "story", {})
        recs = getattr(self, "round_records", [])
        stops = ["%s (%s)" % ("operator" if r["c"] in (0, 13) else "automatic",
                              _alarm(r["c"]) if r["c"] not in (0, 13) else "ESTOP")
                 for r in recs if r["event"] == 2 and r["a"] == 4]
        est = st.get("estop") or {}
        first, end = est.get("first"), est.get("end")
        parts = ["treating at %.1f s" % st["treating_s"] if st.get("treating_s") is not None
                 else "NOT TREATING"]
        parts.append("stops: %s" % (", ".join(stops) or "none"))
        if first:
            why = []
            if est.get("deaf"):
                why.append("%s radio silent" % est["deaf"])
            if est.get("late"):
                why.append("%s behind a late gateway" % est["late"])
            parts.append("ESTOP report %d/%d confirmed%s" % (
                first["confirmed"], first["total"],
                " (unconfirmed: %s)" % ", ".join(why) if why else ""))
        if end:
            parts.append("at the end %d/%d" % (end["confirmed"], end["total"]))
        parts.append("reset: %s" % (st.get("reset") or "not needed"))
        line = "round %d: %s" % (rnd, "; ".join(parts))
        self.round_lines.append(line)
        print("  " + line, flush=True)

    # ----------------------------------------------------------------- run --
    def run(self):
        a = self.a
        end = self.t0 + a.minutes * 60
        rnd = 0
        while True:
            rnd += 1
            print("round %d (%.0f s in)" % (rnd, time.monotonic() - self.t0), flush=True)
            self.night(rnd)
            self.fig["rounds"] = rnd
            left = end - time.monotonic()
            if left < 62:
                break
        return self.report()

    def report(self):
        f = self.fig
        rss = self.rss
        out = dict(f)
        out["minutes"] = round((time.monotonic() - self.t0) / 60, 1)
        out["violations"] = len(self.violations)
        out["round_lines"] = list(self.round_lines)
        if rss:
            by_round = {}
            for t, r, kb in rss:
                by_round.setdefault(r, []).append(kb)
            out["rss_kb_start"] = rss[0][2]
            out["rss_kb_end"] = rss[-1][2]
            out["rss_kb_by_round"] = {r: (v[0], max(v), v[-1]) for r, v in by_round.items()}
            # in-process growth: from just after boot to the end of the night, worst round
            out["rss_growth_kb"] = max(v[-1] - v[0] for v in by_round.values())
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m soak.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 10)))
    ap.add_argument("--bots", type=int, default=64)
    ap.add_argument("--scenario", default="presentation-night")
    ap.add_argument("--loss", type=float, default=0.05)
    ap.add_argument("--corrupt", type=float, default=0.01)
    ap.add_argument("--duplicate", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--heap", default=HEAP)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (store, traces)")
    a = ap.parse_args(argv)
    home = tempfile.mkdtemp(prefix="nanohub-soak-home-")
    os.environ["NANOHUB_HOME"] = home              # the soak's key never lands in ~/.config
    soak = Soak(a)
    print("soak: %s x %d bots, %.1f min, host and bus links: %.0f %% loss, %.0f %% corruption, "
          "%.0f %% duplication; work in %s" % (a.scenario, a.bots, a.minutes, a.loss * 100,
                                              a.corrupt * 100, a.duplicate * 100, soak.work),
          flush=True)
    print("  load on this host: %.1f (1 min average), %d cores" % (os.getloadavg()[0],
                                                                 os.cpu_count() or 1), flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        out = soak.run()
    except KeyboardInterrupt:
        print("interrupted: figures so far", flush=True)
        out = soak.report()
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if soak.violations and not a.keep:
            print("violations: the work folder stays for a look: %s" % soak.work, flush=True)
        elif not a.keep:
            shutil.rmtree(soak.work, ignore_errors=True)
    _print(out, soak.violations)
    if a.json:
        Path(a.json).write_text(json.dumps({"figures": out, "violations": soak.violations},
                                           indent=1))
    return 1 if soak.violations else 0


def _alarm(code):
    from nanohub.protocol import schema
    return schema.enum_name("ALARM", code)


def _interrupt(*_):
    raise KeyboardInterrupt


def _print(out, violations):
    print()
    print("soak figures (%s min, %d rounds of presentation night)" % (out["minutes"], out["rounds"]))
    print("  commands tried          %6d  (acked %d, refused %d, unknown %d; %d resends, "
          "%d connections)" % (out["commands"], out["acked"], out["refused"], out["unknown"],
                               out["resends"], out["reconnects"]))
    print("  host-link frames        %6d  faults injected %d (proxy, both directions)"
          % (out["host_frames"], out["host_faults"]))
    print("  bot-bus faults injected %6d  (simulator, swarm to hub: lost, corrupted, duplicated, "
          "reordered; hub to swarm impaired too); %d hub frames reached the swarm"
          % (out["bus_faults"], out["bus_frames"]))
    print("  treatments started      %6d  rounds treating before the faults %d of %d"
          % (out["treatments"], out["rounds_treating"], out["rounds"]))
    print("  emergency stops         %6d  bots unconfirmed at the first report %d (radio "
          "silent), at the end %d" % (out["estops"], out["unconfirmed_at_report"],
                                      out["unconfirmed_at_end"]))
    print("  resets refused          %6d  (each naming its checks; then recall, retrieve, reset)"
          % out["resets_refused"])
    print("  automatic stops         %6d  (re-latched right after an accepted reset: %d; "
          "boots into a latched stop: %d)" % (out["auto_estops"], out["relatched_after_reset"],
                                              out["boots_in_estop"]))
    print("  audit records pulled    %6d  (one chain, verified end to end)" % out["log_records"])
    if "rss_kb_start" in out:
        print("  hub memory (VmRSS of the MicroPython VM process, every 2 s): %d kB at start, "
              "%d kB at end; worst growth within a night %+d kB" % (
                  out["rss_kb_start"], out["rss_kb_end"], out["rss_growth_kb"]))
        for r, (s, m, e) in sorted(out["rss_kb_by_round"].items()):
            print("    round %2d: %d kB after boot, %d kB peak, %d kB at the end" % (r, s, m, e))
    for line in out.get("round_lines", []):
        print("  " + line)
    print("  hub and swarm emulators at nice %d (they stand for hardware of their own): %s"
          % (PRIORITY, "yes" if priority_raised and all(priority_raised) else
             "no (not permitted here)"))
    print("  invariant violations    %6d  (goal 0)" % len(violations))
    for v in violations[:30]:
        print("    " + v)


if __name__ == "__main__":
    sys.exit(main())
