"""A test rig: the real Hub on the null board, a virtual swarm on its bus, a fake clock.

    rig = Rig(bots=8)                       # keyed store, booted, HELLO said
    rig.lesion(SITE, 300)
    rig.ready(((SITE, 4),))                 # consent, deploy, wait until deployed
    eq(rig.cmd(wire.M_ARM)[0], wire.ACKS_DONE)
    rig.run(500)                            # 20 ms ticks: bus, bots, reports, hub

Each tick (``step``): the BOT_CMDS the hub wrote are delivered to the bot
model (``sim/bots.py``), the bots and a tiny environment advance (a site's
lesion depth shrinks with the dose delivered there), the gateway sends
BOT_REPORTS and a PATIENT frame every 100 ms, the host sends a HEARTBEAT
every 250 ms, the hub ticks, and everything it wrote to the host is decoded:
ACKs by request id, HUB_STATUS, ALARM, ESTOP_REPORT, ...

Host commands are signed with the rig's key and a rising counter when the
schema says they need it; ``sign``, ``counter``, ``tag``, ``key`` and ``req``
override that for attack tests. Everything the rig does allocates freely: the
memory test measures ``hub.tick`` alone.
"""
import gc
import os
import struct
import sys

from mptest import eq, true

from boards.null import Board, MemStore
from hub import frame, hmac, wire
from hub.core import Hub
from wire_names import NAMES

try:
    import bots
except ImportError:
    sys.path.append(os.getenv("NANOHUB_ROOT", ".") + "/sim")
    import bots

KEY = bytes(range(101, 133))
OTHER_KEY = bytes(range(1, 33))
TICK = 20                  # ms, the hub's default 50 Hz
REPORT_MS = 100            # gateway: BOT_REPORTS and PATIENT
HB_MS = 250                # host heartbeat, 4 Hz
PATIENT_ID = 4242


class Rig:
    def __init__(self, bots=8, seed=1, store=None, key=KEY, reset=None, hello=True, sens=100):
        if store is None:
            store = MemStore()
        if key is not None:
            store.write_atomic("hub.key", key)
        self.store = store
        self.key = key if key is not None else KEY
        self.n = bots
        self.sw = _swarm(bots, seed)
        self.now = 0
        self.counter = 0             # host's authentication counter
        self.req = 0                 # host's request ids
        self.sens = sens             # patient sensitivity index, permille
        self.patient_events = 0      # adverse events the patient monitor counts
        self.heartbeat = True        # host sends heartbeats
        self.sign_hb = True          # signed, as the operator's are
        self.gateway = True          # bot reports and patient frames reach the hub
        self.patient = True          # the patient monitor is heard
        self.alive = True            # the hub's loop runs (False: it hangs)
        self.last_hb = -1            # when the host last sent a heartbeat
        self.commands = True         # BOT_CMDS reach the bots
        self.drop = 0                # gateway frames lost out of every 10
        self.udu_per_um = 50         # environment: dose that removes 1 um of lesion
        self.depth0 = {}             # site -> initial lesion depth, um
        self.site_dose = {}          # site -> dose delivered there, udu
        self._seen = [0] * bots      # bot dose already credited to its site
        self.bus_seq = 0
        self.bus_frames = 0
        self.htx = frame.Tx()        # host -> hub
        self.gtx = frame.Tx()        # gateway -> hub
        self.hrx = frame.Rx()        # hub -> host
        self.brx = frame.Rx()        # hub -> gateway
        self.acks = {}               # req -> (status, reason, detail)
        self.ack_log = []            # (req, cmd, status, reason, detail) in order
        self.alarms = []             # ALARM frames as dicts
        self.estop_reports = []      # ESTOP_REPORT frames as dicts
        self.statuses = []           # HUB_STATUS frames as dicts
        self.last = {}               # msg id -> last frame of that kind, as a dict
        self.bus_log = []            # (t, bot, op, site, rate, lease) delivered, the latest
        self.keep_bus_log = True
        self.host_bad = 0
        self.measure = False         # count what hub.tick alone allocates
        self.allocated = 0
        self.board = self.hub = None
        self.boot(reset, hello)

    # ---------------------------------------------------------------- life --
    def boot(self, reset=None, hello=True):
        """A (new) board and Hub on the same store: a reboot. Bots keep going."""
        self.board = Board(self.store, reset)
        self.board.clock = self.now
        self.hub = Hub(self.board, self.n)
        self.hub.boot(self.now)
        self.next_report = self.now
        self.next_hb = self.now
        self._collect()
        if hello:
            self.hello()

    reboot = boot

    def hello(self):
        self.send(wire.M_HELLO, struct.pack(wire.HELLO_FMT, wire.SCHEMA, 1), sign=False)
        self.poll()
        return self.last.get(wire.M_HELLO_REPLY)

    def lesion(self, site, depth, temp=3700, ph=650, bact=3000):
        """Put a lesion of ``depth`` um at ``site`` (the environment's truth)."""
        sw = self.sw
        sw.s_depth[site] = depth
        sw.s_temp[site] = temp
        sw.s_ph[site] = ph
        sw.s_bact[site] = bact
        self.depth0[site] = depth
        self.site_dose[site] = 0

    # ---------------------------------------------------------------- time --
    def step(self):
        """One tick of the whole world (``_tick_ms``: 20 ms)."""
        self.now += self._tick_ms()
        now = self.now
        self.board.clock = now
        self._deliver()
        self.sw.step(now)
        self._environment()
        if now - self.next_report >= 0:
            self.next_report += REPORT_MS
            if now - self.next_report >= 0:     # a late clock: the next report a period on
                self.next_report = now + REPORT_MS
            if self.gateway:
                self._reports()
                if self.patient:
                    self._patient()
        if now - self.next_hb >= 0:
            self.next_hb += HB_MS
            if self.heartbeat:
                # the operator's heartbeat is signed (counter unchecked): only
                # that keeps a treatment running; sign_hb False plays a keyless peer
                self.send(wire.M_HEARTBEAT, struct.pack(wire.HEARTBEAT_FMT, now),
                          sign=self.sign_hb, counter=self.counter if self.sign_hb else None)
                self.last_hb = now
        if self.alive:
            self._tick(now)
            self.hub.idle()                  # between ticks, as Hub.run does
        self._collect()

    def _tick_ms(self):
        return TICK

    def _tick(self, now):
        if not self.measure:
            self.hub.tick(now)
            return
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        self.hub.tick(now)
        self.allocated += gc.mem_alloc() - a
        gc.enable()

    def run(self, ms):
        end = self.now + ms
        while self.now < end:
            self.step()

    def run_until(self, cond, limit_ms, what="condition"):
        """Step until ``cond()`` is true; returns the ms it took. Fails at the limit."""
        t0 = self.now
        while not cond():
            if self.now - t0 >= limit_ms:
                raise AssertionError("%s not reached within %d ms" % (what, limit_ms))
            self.step()
        return self.now - t0

    def poll(self):
        """Let the hub read its links now (between ticks), then decode its output."""
        self.hub.poll(self.now)
        self._collect()

    # ------------------------------------------------------------ commands --
    def frame(self, msg, payload=b"", req=None, sign=None, counter=None, tag=None, key=None,
              expires=None):
        """Wire bytes of a host frame; (req, bytes). Signed by default iff the
        schema marks ``msg`` auth; ``counter``/``tag``/``key`` force a signature."""
        if req is None:
            self.req = (self.req + 1) & 0xFFFF
            req = self.req
        if sign is None:
            # the operator's host signs what needs it, and what is stronger signed
            sign = bool(wire.MSGS[msg][4] & wire.MF_AUTH) or counter is not None \
                or tag is not None or key is not None \
                or msg == wire.M_ALARM_ACK or msg == wire.M_TELEM_RATE
        tx = self.htx
        o = tx.begin(msg, req, wire.ADDR_HUB)
        tx.raw[o:o + len(payload)] = payload
        tagger = None
        if sign:
            if counter is None:
                self.counter += 1
                counter = self.counter
            elif counter > self.counter:
                self.counter = counter
            k = key if key is not None else self.key

            def tagger(view, out, off):
                t = tag if tag is not None else hmac.tag(k, view, wire.TAG_SIZE)
                out[off:off + wire.TAG_SIZE] = t
        if expires is None:
            expires = self.now + 500        # hub time by which it must arrive
        n = tx.finish(len(payload), tagger, counter or 0, expires & wire.HUB_TIME_MASK)
        return req, bytes(tx.out[:n])

    def send(self, msg, payload=b"", **kw):
        """Queue a host frame for the hub; returns its request id."""
        req, data = self.frame(msg, payload, **kw)
        self.board.host_in.extend(data)
        return req

    def send_raw(self, data):
        self.board.host_in.extend(data)

    def cmd(self, msg, payload=b"", **kw):
        """Send a command, let the hub poll, return its ACK (status, reason, detail)."""
        req = self.send(msg, payload, **kw)
        self.poll()
        return self.acks.get(req)

    def ack_count(self, req):
        return len([a for a in self.ack_log if a[0] == req])

    # the operator's commands
    def consent(self, patient=PATIENT_ID, **kw):
        return self.cmd(wire.M_CONSENT, struct.pack(wire.CONSENT_FMT, patient), **kw)

    def deploy(self, site, count, **kw):
        return self.cmd(wire.M_DEPLOY, struct.pack(wire.DEPLOY_FMT, site, count), **kw)

    def arm(self, **kw):
        return self.cmd(wire.M_ARM, **kw)

    def start(self, plan, session_cap=1000000, site_cap=100000, rate_cap=2000, duration=0, **kw):
        """TREAT_START; ``plan`` is ((site, target um, bots), ...)."""
        return self.cmd(wire.M_TREAT_START,
                        plan_payload(plan, session_cap, site_cap, rate_cap, duration), **kw)

    def pause(self, **kw):
        return self.cmd(wire.M_TREAT_PAUSE, **kw)

    def resume(self, **kw):
        return self.cmd(wire.M_TREAT_RESUME, **kw)

    def stop(self, **kw):
        return self.cmd(wire.M_TREAT_STOP, **kw)

    def estop(self, source=1, **kw):
        return self.cmd(wire.M_ESTOP, struct.pack(wire.ESTOP_FMT, source), **kw)

    def estop_reset(self, **kw):
        return self.cmd(wire.M_ESTOP_RESET, **kw)

    def alarm_ack(self, code=0, **kw):
        return self.cmd(wire.M_ALARM_ACK, struct.pack(wire.ALARM_ACK_FMT, code), **kw)

    def param_set(self, index, value, **kw):
        return self.cmd(wire.M_PARAM_SET, struct.pack(wire.PARAM_SET_FMT, index, value), **kw)

    def request(self, what):
        self.send(wire.M_REQUEST, struct.pack(wire.REQUEST_FMT, what))
        self.poll()

    def ready(self, sites, patient=PATIENT_ID, settle_ms=1200):
        """Consent, deploy ``count`` bots at each ``(site, count)``, wait until
        the hub sees them all DEPLOYED and reporting: ready to arm."""
        _done(self.consent(patient), "CONSENT")
        self.run(2 * REPORT_MS)              # the hub hears every bot once
        for site, count in sites:
            if site not in self.depth0:
                self.lesion(site, 300)
            _done(self.deploy(site, count), "DEPLOY")
        self.run(settle_ms)
        sw = self.hub.swarm
        want = sum(c for _, c in sites)

        def deployed():
            k = 0
            for i in range(sw.n):
                if sw.in_mouth(i) and sw.state[i] == wire.BOT_DEPLOYED and not self.sw.moving[i]:
                    k += 1
            return k == want
        self.run_until(deployed, 2000, "bots deployed")
        self.run(REPORT_MS)                  # fresh reports from where they stand

    def armed(self, sites=((10, 4),), depth=300):
        """From SAFE to ARMED: lesions, consent, deploy, arm."""
        for site, _ in sites:
            self.lesion(site, depth)
        self.ready(sites)
        _done(self.arm(), "ARM")

    def treating(self, sites=((10, 4),), target=100, depth=300, **kw):
        """From SAFE to TREATING: lesions, consent, deploy, arm, start."""
        self.armed(sites, depth)
        plan = tuple((site, target, count) for site, count in sites)
        _done(self.start(plan, **kw), "TREAT_START")
        return plan

    # ------------------------------------------------------------- queries --
    def state(self):
        return self.hub.state

    def bot_state(self, i):
        return self.hub.swarm.state[i]

    def alarm_active(self, code):
        return self.hub.alarms.active(code)

    def alarm_frames(self, code):
        return [a for a in self.alarms if a["code"] == code]

    def log(self):
        """Every audit record still stored: (index, t, event, a, b, c)."""
        out = []
        buf = bytearray(wire.LOG_SIZE * 16)
        start = 0
        while True:
            count, first, nxt = self.hub.log.read_into(start, 16, buf)
            if count == 0:
                return out
            for k in range(count):
                out.append(struct.unpack_from(wire.LOG_FMT, buf, k * wire.LOG_SIZE)[:6])
            start = out[-1][0] + 1

    def events(self, ev, since=0):
        return [r for r in self.log() if r[2] == ev and r[0] >= since]

    def log_next(self):
        return self.hub.log.next_index

    def peek_bus(self):
        """The bot commands the hub has written and the bots not yet received."""
        return _bot_cmds(self.brx, bytes(self.board.bus_out))

    def pending_bots(self, report):
        """Bot numbers named in an ESTOP_REPORT's pending bitmap."""
        p = report["pending"]
        return [i for i in range(self.n) if p[i >> 3] & (1 << (i & 7))]

    # ------------------------------------------------------------ the links --
    def _deliver(self):
        data = take(self.board.bus_out)
        if not data:
            return
        now = self.now
        for rec in _bot_cmds(self.brx, data):
            bot, op, site, rate, lease = rec
            if self.keep_bus_log:
                self.bus_log.append((now, bot, op, site, rate, lease))
            if not self.commands:
                continue
            if bot == wire.ADDR_ALL:
                for b in range(self.n):
                    self.sw.command(b, op, site, rate, lease, now)
            else:
                self.sw.command(bot, op, site, rate, lease, now)
        if len(self.bus_log) > 1000:
            self.bus_log = self.bus_log[-500:]

    def _environment(self):
        sw = self.sw
        for i in range(self.n):
            d = sw.dose[i]
            delta = d - self._seen[i]
            if delta:
                self._seen[i] = d
                s = sw.site[i]
                if s in self.depth0:
                    self.site_dose[s] += delta
                    v = self.depth0[s] - self.site_dose[s] // self.udu_per_um
                    sw.s_depth[s] = v if v > 0 else 0

    def _bus_send(self, n):
        self.bus_frames += 1
        if self.drop and (self.bus_frames % 10) < self.drop:
            return                           # lost on the wire: the seq still moves on
        self.board.bus_in.extend(self.gtx.out[:n])

    def _next_seq(self):
        self.bus_seq = (self.bus_seq + 1) & 0xFFFF
        return self.bus_seq

    def _reports(self):
        sw = self.sw
        run = []
        first = 0
        for i in range(self.n):
            r = sw.report(i)
            if r is None:
                self._report_frame(first, run)
                run = []
                first = i + 1
                continue
            if not run:
                first = i
            run.append(r)
            if len(run) == wire.BOT_REPORTS_MAX:
                self._report_frame(first, run)
                run = []
                first = i + 1
        self._report_frame(first, run)

    def _report_frame(self, first, run):
        if not run:
            return
        tx = self.gtx
        o = tx.begin(wire.M_BOT_REPORTS, self._next_seq(), wire.ADDR_HUB)
        struct.pack_into(wire.BOT_REPORTS_FMT, tx.raw, o, first, len(run))
        o += wire.BOT_REPORTS_SIZE
        for r in run:
            struct.pack_into(wire.BOT_REPORTS_REC_FMT, tx.raw, o, *r)
            o += wire.BOT_REPORTS_REC_SIZE
        self._bus_send(tx.finish(wire.BOT_REPORTS_SIZE + len(run) * wire.BOT_REPORTS_REC_SIZE))

    def _patient(self):
        tx = self.gtx
        o = tx.begin(wire.M_PATIENT, self._next_seq(), wire.ADDR_HUB)
        struct.pack_into(wire.PATIENT_FMT, tx.raw, o, self.sens, self.patient_events)
        self._bus_send(tx.finish(wire.PATIENT_SIZE))

    def _collect(self):
        data = take(self.board.host_out)
        if not data:
            return
        rx = self.hrx
        i, n = 0, len(data)
        while i < n:
            i = rx.feed(data, i, n)
            if not rx.ready:
                continue
            if rx.err:
                self.host_bad += 1
                continue
            self._got(rx)

    def _got(self, rx):
        msg = rx.msg
        info = wire.MSGS[msg]
        d = dict(zip(NAMES[msg][0], fields(rx)))
        d["seq"] = rx.seq
        if info[3]:
            d["records"] = records(rx)
        if msg == wire.M_ACK:
            self.acks[d["req"]] = (d["status"], d["reason"], d["detail"])
            self.ack_log.append((d["req"], d["cmd"], d["status"], d["reason"], d["detail"]))
        elif msg == wire.M_ALARM:
            self.alarms.append(d)
        elif msg == wire.M_ESTOP_REPORT:
            self.estop_reports.append(d)
        elif msg == wire.M_HUB_STATUS:
            self.statuses.append(d)
            if len(self.statuses) > 200:
                self.statuses = self.statuses[-100:]
        self.last[msg] = d


BENCH_SITES = (10, 11, 12, 13)


def bench_treating(n, run_ms):
    """The tick benchmark's steady state (bench/mp/tickbench.py): ``n`` bots
    over four sites, all treating at 3 %, the rate cap splitting 500 udu/s per
    site, run for ``run_ms``; the rig, asserted TREATING."""
    rig = Rig(bots=n)
    rig.keep_bus_log = False
    per = n // len(BENCH_SITES)
    plan = []
    for k, site in enumerate(BENCH_SITES):
        rig.lesion(site, 3000)
        plan.append((site, per + (1 if k < n - per * len(BENCH_SITES) else 0)))
    rig.udu_per_um = 1000000
    rig.treating(tuple(plan), target=100, session_cap=2000000, site_cap=200000, rate_cap=500)
    rig.run(run_ms)
    if rig.state() != wire.HUB_TREATING:
        raise AssertionError("the bench's steady state is not treating: state %d" % rig.state())
    return rig


def plan_payload(plan, session_cap=1000000, site_cap=100000, rate_cap=2000, duration=0):
    p = bytearray(wire.TREAT_START_SIZE + len(plan) * wire.TREAT_START_REC_SIZE)
    struct.pack_into(wire.TREAT_START_FMT, p, 0, session_cap, site_cap, rate_cap, duration,
                     len(plan))
    o = wire.TREAT_START_SIZE
    for site, target, count in plan:
        struct.pack_into(wire.TREAT_START_REC_FMT, p, o, site, target, count)
        o += wire.TREAT_START_REC_SIZE
    return bytes(p)


def fields(rx):
    """The payload's fixed fields of the frame in ``rx`` as a tuple."""
    return struct.unpack_from(wire.MSGS[rx.msg][0], rx.buf, wire.HEADER_SIZE)


def records(rx):
    """The tail records of the frame in ``rx`` as a list of tuples."""
    info = wire.MSGS[rx.msg]
    out = []
    if info[3]:
        off = wire.HEADER_SIZE + info[1]
        while off < rx.pend:
            out.append(struct.unpack_from(info[2], rx.buf, off))
            off += info[3]
    return out


def _bot_cmds(rx, data):
    out = []
    i, n = 0, len(data)
    while i < n:
        i = rx.feed(data, i, n)
        if rx.ready and not rx.err and rx.msg == wire.M_BOT_CMDS:
            out.extend(records(rx))
    return out


def _swarm(n, seed):
    return bots.Swarm(n, seed)   # (Rig's ``bots`` argument hides the module there)


def take(out):
    """What a board buffer holds (what the hub wrote since the last look), emptied."""
    data = bytes(out)
    out[:] = b""
    return data


def refused(ack, why, detail=None):
    """The ACK says the command was refused for ``why`` (and ``detail``)."""
    eq(ack[0], wire.ACKS_REJECTED, "status of %r" % (ack,))
    eq(ack[1], why, "reason of %r" % (ack,))
    if detail is not None:
        eq(ack[2], detail, "detail of %r" % (ack,))


def accepted(ack):
    """The ACK says the command was not refused."""
    true(ack is not None and ack[0] != wire.ACKS_REJECTED, "expected success, got %r" % (ack,))


def _done(ack, what):
    if ack is None or ack[0] == wire.ACKS_REJECTED:
        raise AssertionError("%s refused: %r" % (what, ack))
    return ack
