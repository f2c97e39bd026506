"""The hub: a deterministic superloop at a fixed tick.

Each tick: read host frames -> dispatch commands -> exchange with the bot
bus -> treatment controller -> safety rules and supervisor -> telemetry ->
feed the watchdog. Host frames are also read between ticks, so an emergency
stop never waits for the next tick. Time is passed in (``tick(now)``): tests
own the clock. The steady-state tick allocates nothing.
"""
from array import array

from hub import alarms as _alarms
from hub import commands, control, frame, safety, supervisor, telemetry, wire
from hub.acks import Acks
from hub.bushealth import BusHealth
from hub.estop import EStop
from hub.hostout import HostOut
from hub.audit import AuditLog
from hub.patient import Patient
from hub.compat import const, ticks_add, ticks_diff
from hub.params import Params
from hub import params as P
from hub.state import State
from hub.stopscan import StopScan
from hub.swarm import Swarm

from hub.version import FW_VERSION  # noqa: F401 (re-exported)
_IO = const(512)
_READS = const(8)         # reads per link per poll (4 KB): the rest waits for the next poll
_PARSE_BYTES = const(4096)   # host bytes parsed per tick; past that, only searched for stops
_PARSE_FRAMES = const(64) # good host frames parsed per poll (the read in hand is finished)
_FLOOD_MS = const(100)    # a host link backlogged this long is flooded
_DRAIN = const(256)       # host reads per poll past the parse budget: searched for stops, dropped
_MAX_SITES = const(36)  # wire.PLAN_SITES_MAX
_RXBAD_LOG_MS = const(1000)


class Plan:
    """The running treatment plan, in preallocated arrays.

    The dose tables are 32-bit ``"i"`` on every port (``"l"`` is 64-bit on
    some): the report bookkeeping in viper (``hub.viperbytes.book``) addresses
    them as 32-bit words. Their values stay below 2**30."""

    def __init__(self):
        self.n = 0
        # the site -> plan index map (255 none) and, after it, the per-site
        # byte tables: one block, each table a view of it (a table of its own
        # would be a 16-byte header and a block rounded up to 16 bytes more)
        slot = self.slot = bytearray(256 + 6 * _MAX_SITES)
        for s in range(256):
            slot[s] = 255
        mv = memoryview(slot)
        self.site = mv[256:256 + _MAX_SITES]
        self.target = array("H", [0] * _MAX_SITES)
        self.dose = array("i", [0] * _MAX_SITES)      # udu per site: confirmed + provisional
        self.dconf = array("i", [0] * _MAX_SITES)     # confirmed from the bots' counters
        self.pset = array("i", [0] * _MAX_SITES)      # provisional, folded to udu
        self.pfine = array("i", [0] * _MAX_SITES)     # provisional, live, pct x ms
        self.prs = array("i", [0] * _MAX_SITES)       # sum of provisional rates, percent
        self.out = mv[256 + _MAX_SITES:256 + 2 * _MAX_SITES]    # rate written to the site's bots
        self.live = 0                                 # bots may hold a treating rate
        self.rate = mv[256 + 2 * _MAX_SITES:256 + 3 * _MAX_SITES]   # percent commanded per bot
        self.depth = array("H", [0] * _MAX_SITES)     # conservative estimate
        self.fresh = mv[256 + 3 * _MAX_SITES:256 + 4 * _MAX_SITES]
        self.temp = array("h", [0] * _MAX_SITES)
        self.ph = array("H", [0] * _MAX_SITES)
        self.bact = array("H", [0] * _MAX_SITES)
        self.done = mv[256 + 4 * _MAX_SITES:256 + 5 * _MAX_SITES]
        self.nb = mv[256 + 5 * _MAX_SITES:256 + 6 * _MAX_SITES]   # usable bots at the site
        self.session_cap = self.site_cap = self.rate_cap = 0      # udu, udu, udu/s
        self.left_ms = -1           # treatment time still to go, ms; 0 done, -1 no limit

    def reindex(self):
        """Rebuild the site -> plan index map after the sites changed."""
        slot = self.slot
        for s in range(256):
            slot[s] = 255
        for k in range(self.n):
            slot[self.site[k]] = k

    def index(self, site):
        k = self.slot[site]
        return -1 if k == 255 else k


class Hub:
    def __init__(self, board, bots=16, hub_id=0):
        self.board = board
        store = board.store()
        self.params = Params(store)
        self.state_store = State(store, hub_id)
        self.log = AuditLog(store, hold=True)
        self.alarms = _alarms.Alarms()
        self.swarm = Swarm(bots)
        self.plan = Plan()
        self.hrx = frame.Rx()
        self.htx = frame.Tx()
        self.out = HostOut(self)
        self.brx = frame.Rx(False)  # its drops by class go uncounted: BusHealth counts losses
        # one set of transmit buffers for both links: a bus frame is built and
        # written in one go (bus_send writes what it built before reading the
        # host link), and so is a host frame (sent, or copied into the queue)
        self.btx = frame.Tx(self.htx)
        self.iobuf = bytearray(_IO)
        self.stops = StopScan()
        self._stop_act = self._stop_found
        self.drained_logged = 0
        self.flooded = False        # backlogged for _FLOOD_MS: searched for stops, dropped
        self.parse_left = _PARSE_BYTES  # host bytes this tick may still parse
        self.backlog_at = -1        # when the host link was first left unread
        self.counts = bytearray(7)
        # hub state: changed only by the supervisor
        supervisor.power_on(self)
        self.now = 0
        self.last_tick = 0
        self.late = 0           # worst tick start past due, ms, since the last HUB_STATUS
        self.late_n = 0         # ticks started over a quarter period late, since boot
        # host link
        self.session = -1
        self.hello = False
        self.host_heard = 0         # the operator: a signed heartbeat or command
        self.host_ever = False
        self.link_heard = 0         # anyone: any valid frame
        self.hb_expires = -1        # expiry of the last signed heartbeat taken
        # a signed heartbeat awaiting its check: header, payload, counter, expiry, tag
        self.hb_buf = bytearray(wire.HEADER_SIZE + wire.HEARTBEAT_SIZE + wire.AUTH_SIZE)
        self.hb_len = 0
        self.hb_at = 0
        self.hb_next = 0
        self.next_status = 0
        self.next_bots = 0
        self.next_sites = 0
        self.rates = bytearray(3)
        # components, each owning its data
        self.acks = Acks()          # exactly-once
        self.patient = Patient()    # patient monitor (via the swarm gateway)
        self.bus = BusHealth()      # bot bus health
        self.estop = EStop()        # emergency stop confirmations
        self.estop_pending = self.estop.pending     # the same bytes (read by the bot side)
        self.cmd_signed = False     # the command being run carried a good tag
        self.scale = 100            # operator's dose scale, percent
        self.dose_total = 0
        # checks
        self.armed_at = 0
        self.log_ok = True
        self.rx_bad_logged = array("l", [0] * 16)
        self.cmd_logged = 0         # keyless command records this second
        self.cmd_flood = 0          # and those over the budget, to summarize
        self.cmd_flood_msg = 0
        self.next_rxbad = 0

    # ------------------------------------------------------------ boot --
    def boot(self, now):
        """Come up SAFE (or ESTOP if latched): never resume a treatment."""
        self.now = now
        self.swarm.acc_t = now
        self.swarm.sweep_at = now
        cause = self.board.reset_cause()
        st = self.state_store
        try:
            st.boot(cause)
        except OSError:
            pass
        try:
            self.params.load()
        except OSError:
            self.params.defaults()
        self.board.wdt_set(self.params.get(P.P_WDT_MS))   # started by the first feed
        try:
            torn = self.log.open(now)
            ok, bad = self.log.verify()
            self.log_ok = ok
        except OSError:
            torn = 0
            self.log_ok = False
        if torn:
            self.alarms.raise_(wire.ALARM_LOG_TORN, now, value=torn)
        self.record(wire.EV_BOOT, cause, 0, st.boots)
        if cause == wire.RESET_WATCHDOG:
            self.alarms.raise_(wire.ALARM_WATCHDOG, now)
            self.record(wire.EV_ALARM, wire.ALARM_WATCHDOG, 0, 0)
        supervisor.boot(self, now)          # SAFE, or ESTOP if latched (DISABLE again)
        self.last_tick = now
        pr = self.params
        self.rates[0] = pr.get(P.P_TLM_STATUS_HZ)
        self.rates[1] = pr.get(P.P_TLM_BOTS_HZ)
        self.rates[2] = pr.get(P.P_TLM_SITES_HZ)

    def record(self, event, a=0, b=0, c=0):
        """Append to the audit log; a failing log only marks the check."""
        log = self.log
        try:
            if log.append(self.now, event, a, b, c) < 0:    # full of unpulled records
                self.alarms.raise_(wire.ALARM_LOG_FULL, self.now, value=log.unwritten)
                return
            if log.unwritten:
                n, log.unwritten = log.unwritten, 0
                log.append(self.now, wire.EV_LOG_LOST, 0, 0, n)
            if log.dropped_first >= 0:
                first, n = log.dropped_first, log.dropped_n
                log.dropped_first = -1
                log.append(self.now, wire.EV_LOG_DROP, 0, n, first)
            if log.checkpoint_due():
                st = self.state_store
                log.append(self.now, wire.EV_CHECKPOINT, 1 if st.keyed else 0, 0,
                           st.checkpoint_tag(log.next_index, log.head_chain))
        except OSError:
            self.log_ok = False

    # ------------------------------------------------------------ loop --
    def run(self):
        """The superloop. Returns only if the board says stop."""
        board = self.board
        now = board.ticks_ms()
        self.boot(now)
        nxt = now
        while not board.stopping():
            now = board.ticks_ms()
            period = 1000 // self.params.get(P.P_TICK_HZ)
            late = ticks_diff(now, nxt)
            if late >= 0:
                if late > self.late:
                    self.late = late
                if late > period >> 2 and self.late_n < 0xFFFF:
                    self.late_n += 1
                self.tick(now)
                nxt = ticks_add(nxt, period)
                if late > period:
                    nxt = ticks_add(now, period)   # fell behind: skip, don't burst
            else:
                self.idle()
                board.wait(-late)
                self.poll(board.ticks_ms())

    def poll(self, now):
        """Read whatever the links hold; act on it now."""
        self.now = now
        self._poll_host(now)
        self._poll_bus(now)

    def idle(self):
        """Work that allocates, kept off the tick: a signed heartbeat's HMAC."""
        commands.check_heartbeat(self)

    def tick(self, now):
        """One tick. Per-bot work happened as reports arrived (in the poll);
        the stages here are per site or per change. The host link is read
        again between the stages, so an emergency stop waits for one stage
        at most, never a whole tick."""
        dt = ticks_diff(now, self.last_tick)
        if dt < 0 or dt > 1000:
            dt = 0
        self.last_tick = now
        self.parse_left = _PARSE_BYTES      # per tick, however often the link is polled
        self.poll(now)
        self._poll_host(now)                # the bus (reports) may have taken a while
        control.account(self, now, dt)
        safety.run(self, now)
        self._poll_host(now)
        control.run(self, now, dt)
        self._poll_host(now)
        self.apply(safety.conditions(self, now))
        control.limit(self, now)
        sw = self.swarm
        if sw.changed:
            sw.send_all = 1                 # a state or target moved: bus_send looks at all
        sw.changed = 0
        self._poll_host(now)
        commands.bus_send(self, now, True)
        self.estop_progress(now)
        self._poll_host(now)
        telemetry.run(self, now)
        self._log_rx_bad(now)
        self.board.wdt_feed()

    # ------------------------------------------------------- state change --
    def apply(self, cond):
        """The tick's conditions (and emergency stops): ``supervisor.step``."""
        if not cond:
            return False                # the usual tick: no call further
        return supervisor.step(self, cond, self.now)

    def estop_progress(self, now):
        if self.state == wire.HUB_ESTOP:
            self.estop.progress(self, now)

    # ------------------------------------------------------------- links --
    def _poll_host(self, now):
        board = self.board
        s = board.host_session()
        if s != self.session:
            self.session = s
            self.hello = False
            self.acks.new_session()
        buf = self.iobuf
        into = buf
        if self.swarm.mid:
            # called from inside a bus read (Swarm.ingest, between reports):
            # the back half of the buffer holds bus bytes not yet consumed
            into = frame.split(buf, _IO // 2)[1]
        rx = self.hrx
        sc = self.stops
        act = self._stop_act
        # Bounded: a flood must not starve the tick. Every read is searched for
        # emergency stops first. A poll parses up to _PARSE_BYTES and leaves the
        # rest queued for the next one (a burst is parsed whole, a few polls
        # later). A link still backlogged after _FLOOD_MS is flooded: then polls
        # only search and drop (EV_RX_DRAIN), so the bytes in front of a stop
        # leave the link at memory speed, until a poll finds the link empty.
        # Parsing junk byte by byte, and answering a flood of commands, is what
        # a flood costs the hub and every reader of the link: only stops get
        # through it.
        flooded = self.flooded
        left = self.parse_left
        f0 = rx.frames
        for _ in range(_READS + _DRAIN):
            if not flooded and (left <= 0 or rx.frames - f0 >= _PARSE_FRAMES):
                if self.backlog_at < 0:
                    self.backlog_at = now
                elif ticks_diff(now, self.backlog_at) >= _FLOOD_MS:
                    self.flooded = flooded = True       # from the next read on
                if not flooded:
                    self.parse_left = left
                    return                              # the rest waits for the next tick
            n = board.host_read(into)
            if n <= 0:
                self.flooded = False
                self.backlog_at = -1
                self.parse_left = left
                return
            sc.scan(buf, n, act)
            if flooded:
                sc.drained += n
                continue
            left -= n
            i = 0
            while i < n:
                i = rx.feed(buf, i, n)
                if rx.ready:
                    commands.host_frame(self, now)
                    if not rx.err and rx.msg != wire.M_HEARTBEAT:
                        sw = self.swarm
                        sw.changed = 1          # a command may have moved or held bots
                        sw.dirty = 1
                        sw.send_all = 1
        self.parse_left = left

    def _stop_found(self, seq, source, crc):
        commands.stop_found(self, seq, source, crc, self.now)

    def _poll_bus(self, now):
        board = self.board
        buf = self.iobuf
        base = _IO // 2
        into = frame.split(buf, base)[2]    # the back half: see _poll_host
        rx = self.brx
        sw = self.swarm
        held = self.bus.held
        for k in range(2 * _READS):
            if k:
                # a read's reports cost up to ~0.3 M instructions: read the host
                # link between reads (and between reports: Swarm.ingest), so an
                # emergency stop waits for a few reports' worth at most
                self._poll_host(now)
            n = board.bus_read(into)
            if n <= 0:
                self.bus.held = -1
                return
            i = base
            n += base
            sw.mid = 1
            while i < n:
                i = rx.feed(buf, i, n)
                if rx.ready:
                    self._bus_frame(now)
            sw.mid = 0
        # more than one poll reads: what is left may date from this poll on
        # (dose accounting counts the provisional dose of its reports from here)
        self.bus.held = held if held >= 0 else now

    def _bus_frame(self, now):
        rx = self.brx
        bus = self.bus
        if rx.err:
            bus.bad += 1                        # lost, unless the next gap counts it
            return
        late = bus.frame(rx.seq)
        if late < 0:
            return                              # a duplicate: already acted on
        msg = rx.msg
        if msg == wire.M_BOT_REPORTS:
            if not late:                        # newer reports were applied: not these
                self.swarm.ingest(self, rx.buf, rx.pend, now, safety.on_report)
        elif msg == wire.M_PATIENT:
            self.patient.take(rx.buf, now)
        elif msg == wire.M_BUS_HELLO:
            bus.hello(rx.buf[9])

    def _log_rx_bad(self, now):
        if ticks_diff(now, self.next_rxbad) < 0:
            return
        self.next_rxbad = ticks_add(now, _RXBAD_LOG_MS)
        bad = self.hrx.bad
        logged = self.rx_bad_logged
        for k in range(1, 16):
            if bad[k] != logged[k]:
                self.record(wire.EV_RX_BAD, k, 0, bad[k] - logged[k])
                logged[k] = bad[k]
        if self.stops.drained != self.drained_logged:
            self.record(wire.EV_RX_DRAIN, 0, 0, (self.stops.drained - self.drained_logged)
                        & 0x3FFFFFFF)
            self.drained_logged = self.stops.drained
        if self.cmd_flood:
            self.record(wire.EV_CMD_FLOOD, self.cmd_flood_msg, 0, self.cmd_flood)
            self.cmd_flood = 0
        self.cmd_logged = 0

    # ------------------------------------------------------------ output --
    def send_host(self, n):
        """True if the frame went out or waits its turn (``hub.hostout``)."""
        return self.out.send(n, self.now)

    def send_bus(self, n):
        self.board.bus_write(self.btx.out, n)
