"""The swarm: every simulated nanobot, as preallocated arrays.

This module is the bot side of the bot-bus contract (docs/sim.md, "Bots").
It runs unchanged on CPython (inside the simulator) and on MicroPython (as the
on-board virtual swarm of a bare dev board), so it keeps to the subset both
share: no dataclasses, no f-strings, no ``random``; per-bot state lives in
``bytearray``/``array`` columns rather than objects, all arithmetic is on
integers that stay below 2**30 (a small int even on a 32-bit MCU), and a
steady-state ``Swarm.step`` allocates nothing.

Units inside: time in ms; output ("activity") in 0.01 % (0..10000); battery in
micro-percent; dose in micro dose units (uDU, one bot at 100 % delivers
1000 uDU/s); sensor errors in thousandths of the wire unit.
"""
import array

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

try:
    from ..firmware.hub import wire   # CPython: the package nanohub.sim
except (ImportError, KeyError, ValueError):  # MicroPython: firmware/ and sim/ on the path
    from hub import wire

DOCKED = wire.BOT_DOCKED
DEPLOYED = wire.BOT_DEPLOYED
ACTIVE = wire.BOT_ACTIVE
RETURNING = wire.BOT_RETURNING
DISABLED = wire.BOT_DISABLED
OP_DEPLOY = wire.OP_DEPLOY
OP_DOSE = wire.OP_DOSE
OP_HOLD = wire.OP_HOLD
OP_RECALL = wire.OP_RECALL
OP_DISABLE = wire.OP_DISABLE

NO_SITE = const(0xFF)
FULL = const(10000)           # activity units per 100 %
BATTERY_FULL = const(100000000)

# fault flags (the ``flags`` column)
F_RUNAWAY_OFF = const(1)      # output at ``level`` % whatever it is told
F_RUNAWAY_ABOVE = const(2)    # output = command + ``level`` % while dosing
F_SILENT = const(4)           # radio dead: no reports, commands not heard
F_DRIFT = const(8)            # sensor error grows at ``drift`` per second
F_COLLAPSE = const(16)        # battery falling to 0 at ``fall`` per ms
F_DEAD = const(32)            # battery empty: no output, no radio

_TAU_MS = const(100)          # output lag (first order): drivers are not instant
_CUTOFF = const(100)          # below 1 % the emitter cannot sustain output
_NOISE = const(40)            # output noise, +-0.4 % (triangular)
_TRAVEL_MIN = const(300)      # travel time 0.3..1.0 s
_TRAVEL_SPAN = const(701)
_IDLE_DRAIN = const(20000)    # micro-% per s away from the dock (radio, motion)
_ACT_DRAIN = const(80)        # micro-% per s per 0.01 % output: 0.8 %/s at full
_CHARGE = const(500000)       # micro-% per s in the dock
_MAX_DT = const(1000)         # longer gaps are integrated as 1 s (keeps ints small)

# what a bot's sensor reads away from a site (in the dock): body temperature,
# neutral pH, no lesion, no plaque
_DOCK_TEMP = const(3680)
_DOCK_PH = const(700)


class Xorshift32:
    """Marsaglia's xorshift32 (13, 17, 5), computed on two 16-bit halves.

    Halves keep every intermediate below 2**30, so the generator allocates
    nothing on a 32-bit MicroPython port either. ``next()`` returns the high 16
    bits of the 32-bit state; the sequence equals the textbook xorshift32.
    """

    def __init__(self, seed):
        seed &= 0xFFFFFFFF
        if seed == 0:
            seed = 0x9E3779B9        # the one state xorshift cannot leave
        self.hi = seed >> 16
        self.lo = seed & 0xFFFF
        for _ in range(8):           # decorrelate nearby seeds
            self.next()

    def next(self):
        hi = self.hi
        lo = self.lo
        # x ^= x << 13
        nhi = ((hi << 13) | (lo >> 3)) & 0xFFFF
        lo ^= (lo << 13) & 0xFFFF
        hi ^= nhi
        # x ^= x >> 17
        lo ^= hi >> 1
        # x ^= x << 5
        nhi = ((hi << 5) | (lo >> 11)) & 0xFFFF
        lo ^= (lo << 5) & 0xFFFF
        hi ^= nhi
        self.hi = hi
        self.lo = lo
        return hi

    def state(self):
        return (self.hi << 16) | self.lo

    def below(self, n):
        """Uniform integer in 0..n-1, for n <= 16384."""
        return (self.next() * n) >> 16

    def spread(self, k):
        """Triangular integer noise in -k..k, for k < 8192."""
        return self.below(k + 1) + self.below(k + 1) - k

    def random(self):
        """Uniform float in [0, 1) with 32-bit resolution (allocates a float)."""
        a = self.next()
        return (a * 65536 + self.next()) / 4294967296.0


def _zeros(code, n):
    return array.array(code, [0] * n)


class Swarm:
    """``n`` bots sharing one site-reading table of ``nsites`` sites.

    Columns are public: the simulator reads them as ground truth. The
    environment (``nanohub.sim.world`` or an on-board stand-in) writes the true
    site readings into ``s_temp``, ``s_ph``, ``s_depth`` and ``s_bact`` (wire
    units); bots report them plus their own sensor error and noise.
    """

    def __init__(self, n, seed=1, nsites=160):
        self.n = n
        self.nsites = nsites
        self.t = 0                              # time of the last step, ms
        self.rng = Xorshift32(seed)
        # reports draw their noise from their own stream, so how often anyone
        # reads a bot never changes what the bot really does
        self.noise = Xorshift32(seed ^ 0x5A5A5A5A)
        rng = self.rng
        self.state = bytearray([DOCKED] * n)
        self.site = bytearray([NO_SITE] * n)
        self.moving = bytearray(n)              # 1 while travelling
        self.until = _zeros("i", n)             # end of travel, ms
        self.rate = bytearray(n)                # commanded output, %
        self.lease = _zeros("i", n)             # DOSE lease expiry, ms
        self.out = _zeros("h", n)               # true output, lagged
        self.act = _zeros("h", n)               # true output with noise
        self.battery = _zeros("i", n)
        self.health = bytearray(n)
        self.dose = _zeros("i", n)              # delivered at a site, uDU
        self.dose_rem = _zeros("h", n)          # remainder, 0.01 % x ms
        self.base = _zeros("i", n)              # dose when the bot's counter last restarted
        self.flags = bytearray(n)
        self.level = bytearray(n)               # runaway output, %
        self.stuck = bytearray(n)               # DISABLEs still to be lost
        self.fall = _zeros("i", n)              # collapse drain, micro-% per ms
        self.err = _zeros("i", 3 * n)           # sensor error: temp, ph, depth
        self.drift = _zeros("i", 3 * n)         # its growth per second
        self.due = bytearray(n)                 # a report is owed
        self.s_temp = array.array("h", [_DOCK_TEMP] * nsites)
        self.s_ph = array.array("H", [_DOCK_PH] * nsites)
        self.s_depth = _zeros("H", nsites)
        self.s_bact = array.array("H", [500] * nsites)
        for i in range(n):
            # no two bots come out of the factory alike
            self.battery[i] = BATTERY_FULL - rng.below(15001) * 1000
            self.health[i] = 75 + rng.below(26)
            self.err[3 * i] = rng.spread(8) * 1000          # +-0.08 C
            self.err[3 * i + 1] = rng.spread(3) * 1000      # +-0.03 pH
            self.err[3 * i + 2] = rng.spread(10) * 1000     # +-10 um

    # ----------------------------------------------------------- commands --

    def _cut(self, bot):
        """Output off at once (no lag) and the bot stays where it is."""
        self.rate[bot] = 0
        self.moving[bot] = 0
        self.out[bot] = 0
        self.act[bot] = 0

    def command(self, bot, op, site, rate, lease_ms, now_ms):
        """Deliver one bot-bus command. Returns False if the bot did not hear it."""
        if bot < 0 or bot >= self.n or self.flags[bot] & (F_SILENT | F_DEAD):
            return False
        self.due[bot] = 1
        s = self.state[bot]
        if op == OP_DISABLE:
            if self.stuck[bot]:
                self.stuck[bot] -= 1           # heard, but the kill path failed
                return True
            # hardware kill: output cut at once, no lag; latched
            self.state[bot] = DISABLED
            self._cut(bot)
            return True
        if s == DISABLED:
            return True
        if op == OP_DEPLOY:
            if (s == DOCKED or s == DEPLOYED) and 0 <= site < self.nsites:
                if s == DEPLOYED and self.site[bot] == site and not self.moving[bot]:
                    return True                # already there
                self.site[bot] = site
                self.state[bot] = DEPLOYED
                self.rate[bot] = 0
                self._travel(bot, now_ms)
        elif op == OP_DOSE:
            if s == DEPLOYED or s == ACTIVE:
                if rate < 0:
                    rate = 0
                elif rate > 100:
                    rate = 100
                self.rate[bot] = rate
                self.lease[bot] = now_ms + lease_ms
                if rate and not self.moving[bot] and lease_ms > 0:
                    self.state[bot] = ACTIVE
                else:
                    self.state[bot] = DEPLOYED
        elif op == OP_HOLD:
            if s == DEPLOYED or s == ACTIVE:
                self.rate[bot] = 0
                self.state[bot] = DEPLOYED
        elif op == OP_RECALL:
            if s == DEPLOYED or s == ACTIVE:
                self.rate[bot] = 0
                self.state[bot] = RETURNING
                self._travel(bot, now_ms)
        return True                            # NOP, PING: a report is due

    def _travel(self, bot, now_ms):
        self.moving[bot] = 1
        self.until[bot] = now_ms + _TRAVEL_MIN + self.rng.below(_TRAVEL_SPAN)

    # --------------------------------------------------------------- step --

    def step(self, now_ms):
        """Advance every bot to ``now_ms``. Allocates nothing."""
        dt = now_ms - self.t
        if dt <= 0:
            return
        self.t = now_ms
        if dt > _MAX_DT:
            dt = _MAX_DT
        rng = self.rng
        state = self.state
        moving = self.moving
        rate = self.rate
        out = self.out
        act = self.act
        battery = self.battery
        flags = self.flags
        for i in range(self.n):
            fl = flags[i]
            s = state[i]
            if fl & F_DEAD:
                continue
            if moving[i] and now_ms >= self.until[i]:
                moving[i] = 0
                if s == RETURNING:
                    s = DOCKED
                    self.site[i] = NO_SITE
            if s == DEPLOYED or s == ACTIVE:
                # the lease: a bot that stops hearing from the hub stops
                if rate[i] and now_ms >= self.lease[i]:
                    rate[i] = 0
                if rate[i] and not moving[i]:
                    s = ACTIVE
                else:
                    s = DEPLOYED
            state[i] = s

            tgt = 0
            if s == ACTIVE:
                tgt = rate[i] * 100
                if fl & F_RUNAWAY_ABOVE:
                    tgt += self.level[i] * 100
            if fl & F_RUNAWAY_OFF and s != DISABLED:
                tgt = self.level[i] * 100
            if tgt > FULL:
                tgt = FULL

            o = out[i]
            if dt >= _TAU_MS:
                o = tgt
            else:
                o += (tgt - o) * dt // _TAU_MS
            if tgt == 0 and o < _CUTOFF:
                o = 0
            out[i] = o
            a = 0
            if o:
                a = o + rng.spread(_NOISE)
                if a < 1:
                    a = 1                     # noise never fakes a switch-off
                elif a > FULL:
                    a = FULL
            act[i] = a
            if a and not moving[i] and self.site[i] != NO_SITE:
                r = self.dose_rem[i] + a * dt
                self.dose[i] += r // 10000
                self.dose_rem[i] = r % 10000

            b = battery[i] - a * _ACT_DRAIN // 1000 * dt
            if s == DOCKED and not moving[i]:
                b += _CHARGE // 1000 * dt
                if b > BATTERY_FULL:
                    b = BATTERY_FULL
            else:
                b -= _IDLE_DRAIN // 1000 * dt
            if fl & F_COLLAPSE:
                b -= self.fall[i] * dt
            if b <= 0:
                b = 0
                flags[i] = fl | F_DEAD        # no power: no output, no radio
                out[i] = 0
                act[i] = 0
            battery[i] = b

            if fl & F_DRIFT:
                j = 3 * i
                self.err[j] += self.drift[j] * dt // 1000
                self.err[j + 1] += self.drift[j + 1] * dt // 1000
                self.err[j + 2] += self.drift[j + 2] * dt // 1000

    # ------------------------------------------------------------- report --

    def report(self, bot):
        """What the bot says about itself, in wire units, or None if silent.

        ``(state, site, activity, battery, health, temp, ph, depth, bacteria, dose)``;
        ``dose`` is the bot's own counter of what it delivered since it (re)started,
        rounded up, modulo 65536.
        """
        if self.flags[bot] & (F_SILENT | F_DEAD):
            return None
        self.due[bot] = 0
        rng = self.noise
        site = self.site[bot]
        a = self.act[bot]
        pct = 0
        if a:
            pct = (a + 50) // 100 + rng.spread(1)
            pct = 0 if pct < 0 else (100 if pct > 100 else pct)
        if site != NO_SITE and not self.moving[bot]:
            temp = self.s_temp[site]
            ph = self.s_ph[site]
            depth = self.s_depth[site]
            bact = self.s_bact[site]
        else:
            temp, ph, depth, bact = _DOCK_TEMP, _DOCK_PH, 0, 0
        j = 3 * bot
        temp += self.err[j] // 1000 + rng.spread(3)
        ph += self.err[j + 1] // 1000 + rng.spread(2)
        depth += self.err[j + 2] // 1000 + rng.spread(4)
        bact += rng.spread(4)
        # a bot names its site only once it is there: readings taken on the
        # way are the dock's, and must not pass for the lesion's
        return (self.state[bot], NO_SITE if self.moving[bot] else site, pct,
                self.battery[bot] // 1000000,
                self.health[bot], _clip(temp, -32768, 32767), _clip(ph, 0, 65535),
                _clip(depth, 0, 65535), _clip(bact, 0, 65535), self.counter(bot))

    def counter(self, bot):
        """The dose counter a report carries: udu delivered since the bot's last
        restart, rounded up by its remainder, modulo 65536."""
        d = self.dose[bot] - self.base[bot]
        if self.dose_rem[bot]:
            d += 1
        return d & 0xFFFF

    def restart(self, bot):
        """The bot's controller restarts: its dose counter starts again at 0
        (the dose it delivered stays delivered: ``dose`` is the truth)."""
        self.base[bot] = self.dose[bot] + (1 if self.dose_rem[bot] else 0)

    def retrieve(self, bot):
        """The clinician's hands: the bot is taken out of the mouth and put in
        the dock. A latched kill stays latched (the bot stays DISABLED); any
        other bot is DOCKED, holding. Returns True if the bot was in the mouth."""
        if self.site[bot] == NO_SITE and not self.moving[bot]:
            return False
        self.site[bot] = NO_SITE
        self._cut(bot)
        if self.state[bot] != DISABLED:
            self.state[bot] = DOCKED
        self.due[bot] = 1
        return True

    # ------------------------------------------------------------- faults --
    # Each fault is a flag plus its parameters; clearing restores normal
    # behaviour from then on (a drifted sensor keeps its accumulated error).

    def set_runaway(self, bot, above, level):
        """Runaway: on while off (``above`` false) or ``level`` % above command."""
        self.flags[bot] &= ~(F_RUNAWAY_OFF | F_RUNAWAY_ABOVE) & 0xFF
        self.flags[bot] |= F_RUNAWAY_ABOVE if above else F_RUNAWAY_OFF
        self.level[bot] = level

    def set_silent(self, bot):
        self.flags[bot] |= F_SILENT

    def set_drift(self, bot, temp, ph, depth):
        """Sensor drift per second, in thousandths of the wire unit."""
        j = 3 * bot
        self.drift[j] = temp
        self.drift[j + 1] = ph
        self.drift[j + 2] = depth
        self.flags[bot] |= F_DRIFT

    def set_collapse(self, bot, fall_ms):
        """Battery falls from full to 0 in ``fall_ms``, then the bot is dead."""
        self.fall[bot] = BATTERY_FULL // (fall_ms if fall_ms > 0 else 1) + 1
        self.flags[bot] |= F_COLLAPSE

    def set_stuck(self, bot, count):
        """The next ``count`` DISABLE commands are lost inside the bot."""
        self.stuck[bot] = count

    def set_health(self, bot, pct):
        self.health[bot] = pct

    def clear(self, bot, flag):
        self.flags[bot] &= ~flag & 0xFF


def _clip(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)
