"""Host frames in, ACKs out; bot-bus commands out.

Every command gets exactly one ACK. A command re-sent with the same request
id and the same bytes gets the cached ACK and is not executed again (a retried
dose must never double-dose). Commands that can start or increase energy
delivery must carry a valid tag with a fresh counter; stop-direction commands
and reads never need one.

``COMMANDS`` is the command table: per command its handler, how it is signed
and the states it is allowed in; ``execute`` looks the command up there.
Every state change is the supervisor's (``supervisor.request``/``step``).
"""
import struct

from hub import alarms as _alarms
from hub import dose, plancheck, supervisor, telemetry, wire
from hub import params as P
from hub.compat import const, ticks_add, ticks_diff

_H = const(5)          # wire.HEADER_SIZE: payload offset
_NONE = const(255)
_HOLD_RETRY_MS = const(100)
_DEPLOY_RETRY_MS = const(500)  # a bot still docked this long after its DEPLOY did not hear it
_GRACE_RETRIES = const(3)     # resent stops that restart the runaway grace
_REFRESH_MS = const(1000)     # bus_send looks at every bot at least this often
_POLL_BOTS = const(7)         # ... and reads the host link every 8 bots (from the tick)
# Lease renewals (rate unchanged) sent in one tick at most; the rest go in the
# next ticks. A lease is renewed at a quarter of its life, so a renewal a few
# ticks late still lands with most of the lease left, and bots deployed
# together stop renewing together: their renewals spread over the ticks
# instead of all 64 landing in one (the tick's worst case).
_RENEW_PER_TICK = const(16)
_REC = wire.BOT_CMDS_REC_SIZE
_CMD_BUDGET = const(10)       # keyless command records per second, then summarized


# ------------------------------------------------------------ host side --

def host_frame(hub, now):
    rx = hub.hrx
    if rx.err:
        if rx.err == wire.ERR_SCHEMA and rx.msg == wire.M_HELLO:
            telemetry.hello_reply(hub, rx.seq, wire.HELLO_SCHEMA)
        return
    hub.link_heard = now
    msg = rx.msg
    if msg == wire.M_HEARTBEAT:
        if rx.buf[0] & wire.F_AUTH:
            _signed_heartbeat(hub, rx, now)
        return
    if msg == wire.M_HELLO:
        hub.hello = True
        hub.acks.new_session()              # a new session: its request ids start anywhere
        telemetry.hello_reply(hub, rx.seq, wire.HELLO_OK)
        telemetry.status_soon(hub)
        return
    if msg == wire.M_REQUEST:
        telemetry.request(hub, rx.buf[_H], rx.seq)
        return
    if msg == wire.M_PARAM_GET:
        telemetry.param_value(hub, rx.buf[_H], rx.seq)
        return
    if msg == wire.M_LOG_READ:
        b = rx.buf
        start = b[_H] | (b[_H + 1] << 8) | (b[_H + 2] << 16) | (b[_H + 3] << 24)
        telemetry.log_chunk(hub, start, b[_H + 4], rx.seq)
        return
    if msg == wire.M_ESTOP and rx.buf[0] & 0xF == 0 and rx.pend == _H + 1:
        return          # the stop search found this very frame first and answered it
    info = wire.MSGS[msg]
    if not info[4] & wire.MF_COMMAND:
        return                              # telemetry from a confused peer
    acks = hub.acks
    crc = _frame_crc(rx)
    k = acks.find(rx.seq, crc)
    if k >= 0:
        j = 3 * k                           # (hub.acks: the slot's answer)
        a = acks.ans
        telemetry.ack(hub, rx.seq, a[j], a[j + 1], a[j + 2], acks.key[j + 2])
        return
    row = _BY_MSG.get(msg)
    signed = row[2] if row else _schema_signing(msg)
    if signed != SIGNED and msg != wire.M_ESTOP and acks.seen(rx.seq):
        # answered before and out of the cache: never run it twice. Signed
        # commands have their own exactly-once (the counter), and a stop is
        # always run: stopping again is harmless.
        if not _over_budget(hub, msg, info, wire.ACKS_REJECTED):
            hub.record(wire.EV_REJECT, msg, rx.seq, wire.WHY_DUPLICATE)
        telemetry.ack(hub, rx.seq, msg, wire.ACKS_REJECTED, wire.WHY_DUPLICATE, acks.hw)
        return
    status, why, detail = _authorize(hub, rx, signed, now)
    if why == wire.WHY_NONE:
        if signed == SIGNED:
            _operator(hub, now)             # a signed command: the operator is there
        status, why, detail = execute(hub, msg, rx, now)
    if _over_budget(hub, msg, info, status):
        pass                                # counted; summarized once a second
    elif status == wire.ACKS_REJECTED:
        hub.record(wire.EV_REJECT, msg, rx.seq, why)
    else:
        hub.record(wire.EV_CMD, msg, rx.seq, detail)
    if status == wire.ACKS_REJECTED and (why == wire.WHY_AUTH_MISSING or why == wire.WHY_AUTH_BAD
                                         or why == wire.WHY_AUTH_REPLAY
                                         or why == wire.WHY_AUTH_JUMP or why == wire.WHY_STALE):
        if hub.alarms.raise_(wire.ALARM_UNAUTHORIZED, now, value=msg):
            hub.record(wire.EV_ALARM, wire.ALARM_UNAUTHORIZED, 0, msg)
    acks.remember(rx.seq, crc, msg, status, why, detail)
    telemetry.ack(hub, rx.seq, msg, status, why, detail)
    if msg == wire.M_ESTOP and status != wire.ACKS_REJECTED:
        hub.estop.report_now(hub, now)      # the operator wants the report now


def stop_found(hub, seq, source, crc, now):
    """An ESTOP frame found by the stop search, ahead of everything queued.

    The same bytes met again (a resend, or the parser reaching the frame
    later) get the cached ACK, as any repeated command does, and the latest
    ESTOP_REPORT again: a client repeats its stop until it has the final
    report, so a report lost on a congested link is recovered.
    """
    hub.link_heard = now                    # the host is there: it may be answered
    acks = hub.acks
    est = hub.estop
    k = acks.find(seq, crc)
    if k >= 0:
        j = 3 * k                           # (hub.acks: the slot's answer)
        a = acks.ans
        telemetry.ack(hub, seq, a[j], a[j + 1], a[j + 2], acks.key[j + 2])
        if est.done:
            est.report_now(hub, now)        # the final report again, if it was lost
        return
    est.source = source
    supervisor.step(hub, supervisor.C_ESTOP, now)   # in ESTOP: DISABLE again
    n = hub.swarm.n
    hub.record(wire.EV_CMD, wire.M_ESTOP, seq, n)
    acks.remember(seq, crc, wire.M_ESTOP, wire.ACKS_ACCEPTED, wire.WHY_NONE, n)
    telemetry.ack(hub, seq, wire.M_ESTOP, wire.ACKS_ACCEPTED, wire.WHY_NONE, n)
    est.report_now(hub, now)


def _over_budget(hub, msg, info, status):
    """Whether this command's record is summarized instead of written.

    Signed-class commands (those that need a tag), accepted or refused, and
    emergency stops are always recorded one by one: a forged ARM is evidence
    and never hides in a summary. Everything else a keyless peer can send
    (unsigned commands and their refusals) has a budget of records per second;
    the rest is counted and summarized in one EV_CMD_FLOOD record a second, so
    a flood cannot rotate the audit log away in seconds (and a rotation that
    does drop records says so: EV_LOG_DROP).
    """
    if msg == wire.M_ESTOP or info[4] & wire.MF_AUTH:
        return False
    if hub.cmd_logged < _CMD_BUDGET:
        hub.cmd_logged += 1
        return False
    hub.cmd_flood += 1
    hub.cmd_flood_msg = msg
    return True


def _frame_crc(rx):
    b = rx.buf
    e = rx.pend + wire.AUTH_SIZE if rx.buf[0] & wire.F_AUTH else rx.pend    # the CRC's
    return (b[e] | (b[e + 1] << 8) | (b[e + 2] << 16) | (b[e + 3] << 24)) & 0x7FFFFFFF


def _operator(hub, now):
    """Proof that the operator is there: a signed heartbeat or command. Only
    this keeps a treatment running (the operator-gone rule reads host_heard)."""
    hub.host_heard = now
    hub.host_ever = True


def _late(hub, expires, now):
    """0 if a signed frame is fresh: it expires after now, and no further ahead
    than fresh_ms (so it cannot be held back for longer); else hub time."""
    t = now & wire.HUB_TIME_MASK
    d = (expires - t) & wire.HUB_TIME_MASK
    if d >= wire.HUB_TIME_HALF:
        d = d - wire.HUB_TIME_HALF - wire.HUB_TIME_HALF   # small ints all the way
    if d < 0 or d > hub.params.get(P.P_FRESH_MS):
        return t or 1
    return 0


def _signed_heartbeat(hub, rx, now):
    """A signed heartbeat keeps the treatment alive: fresh, expiring later than
    the last one taken (a replay within its window is refused), and its tag
    good. The HMAC allocates and costs a few hash blocks, so it is checked off
    the tick (``check_heartbeat`` from ``Hub.idle``): here the frame is only
    copied. Nothing is persisted: 4 Hz of flash writes would wear a board out.
    """
    if _late(hub, rx.expires, now):
        return
    if hub.hb_expires >= 0:
        d = (rx.expires - hub.hb_expires) & wire.HUB_TIME_MASK
        if d == 0 or d >= wire.HUB_TIME_HALF:
            return
    n = rx.tag_at() + wire.TAG_SIZE
    src = rx.buf
    dst = hub.hb_buf
    if n > len(dst):
        return                  # longer than a heartbeat: not one
    for i in range(n):
        dst[i] = src[i]
    hub.hb_len = n
    hub.hb_at = now
    hub.hb_next = rx.expires


def check_heartbeat(hub):
    """Verify the heartbeat copied by ``_signed_heartbeat`` (off the tick)."""
    n = hub.hb_len
    if not n:
        return
    hub.hb_len = 0
    at = n - wire.TAG_SIZE
    b = hub.hb_buf
    if hub.state_store.verify_tag(memoryview(b)[:at], b[at:n]):     # off the tick: may allocate
        hub.hb_expires = hub.hb_next
        if ticks_diff(hub.hb_at, hub.host_heard) > 0 or not hub.host_ever:
            _operator(hub, hub.hb_at)


def _authorize(hub, rx, signed, now):
    hub.cmd_signed = False
    if signed == SIGNED:
        return _signed(hub, rx, now)
    if signed == OPTIONAL and rx.buf[0] & wire.F_AUTH:
        # signed, to acknowledge a HIGH alarm or go below the telemetry floor:
        # the tag is checked as for any signed command, and refused if bad
        res = _signed(hub, rx, now)
        hub.cmd_signed = res[1] == wire.WHY_NONE
        return res
    return wire.ACKS_DONE, wire.WHY_NONE, 0


def _signed(hub, rx, now):
    if not rx.buf[0] & wire.F_AUTH:
        return wire.ACKS_REJECTED, wire.WHY_AUTH_MISSING, 0
    at = rx.tag_at()
    tag = bytes(rx.buf[at:at + wire.TAG_SIZE])
    if not hub.state_store.keyed:
        return wire.ACKS_REJECTED, wire.WHY_NO_KEY, 0
    if not hub.state_store.verify_tag(rx.signed_view(), tag):
        return wire.ACKS_REJECTED, wire.WHY_AUTH_BAD, 0
    late = _late(hub, rx.expires, now)
    if late:
        return wire.ACKS_REJECTED, wire.WHY_STALE, late
    why = hub.state_store.take_counter(rx.counter)
    if why != wire.WHY_NONE:
        return wire.ACKS_REJECTED, why, 0
    return wire.ACKS_DONE, wire.WHY_NONE, 0


def _reject(why, detail=0):
    return wire.ACKS_REJECTED, why, detail


def _done(detail=0):
    return wire.ACKS_DONE, wire.WHY_NONE, detail


def execute(hub, msg, rx, now):
    """Run one authorized command; returns (status, reason, detail).

    The command's row (``COMMANDS``) names the states it is allowed in: in
    another, it is refused ESTOP_LATCHED while latched, else STATE (detail:
    the state). A command id with no row is refused BAD_ARG (detail: the id).
    """
    row = _BY_MSG.get(msg)
    if row is None:
        return _reject(wire.WHY_BAD_ARG, msg)
    state = hub.state
    if not row[3] & (1 << state):
        if state == wire.HUB_ESTOP:
            return _reject(wire.WHY_ESTOP_LATCHED)
        return _reject(wire.WHY_STATE, state)
    return row[1](hub, rx, now, row[4])


# ------------------------------------------------------------ handlers --
# handler(hub, rx, now, trigger): (status, reason, detail); ``trigger`` is
# the row's supervisor trigger (0 for commands that change no state).

def _request(hub, rx, now, trigger):
    """A state change: the supervisor decides, and names any refusal."""
    return supervisor.request(hub, trigger, now)


def _estop(hub, rx, now, trigger):
    hub.estop.source = rx.buf[_H]
    supervisor.step(hub, supervisor.C_ESTOP, now)   # in ESTOP: DISABLE again
    return wire.ACKS_ACCEPTED, wire.WHY_NONE, hub.swarm.n


def _hold(hub, rx, now, trigger):
    return _done(hold(hub, rx.buf[_H]))


def _recall(hub, rx, now, trigger):
    if hub.state == wire.HUB_TREATING:
        supervisor.step(hub, supervisor.C_STOP, now)
    return _done(recall(hub, rx.buf[_H]))


def _alarm_ack(hub, rx, now, trigger):
    code = rx.buf[_H]
    al = hub.alarms
    if not hub.cmd_signed and code and code < len(_alarms.PRIO) and \
            _alarms.PRIO[code] == wire.PRIO_HIGH and al.state[code] == wire.ALST_RAISED:
        return _reject(wire.WHY_AUTH_MISSING, code)   # a HIGH alarm blocks arming
    n = al.ack(code, hub.cmd_signed)
    if n:
        hub.record(wire.EV_ALARM_ACK, code)
        if not al.active(wire.ALARM_SENS_PAUSE):
            hub.patient.adverse = False
    telemetry.status_soon(hub)
    return _done(n)


def _deploy(hub, rx, now, trigger):
    b = rx.buf
    return deploy(hub, b[_H], b[_H + 1], now)


def _dose_scale(hub, rx, now, trigger):
    pct = rx.buf[_H]
    if pct > 100:
        return _reject(wire.WHY_BOUNDS, 100)
    hub.scale = pct
    return _done(pct)


def _consent(hub, rx, now, trigger):
    patient = struct.unpack_from("<I", rx.buf, _H)[0]
    hub.state_store.set_consent(patient)
    hub.record(wire.EV_CONSENT, 0, 0, hub.state_store.pseudonym(patient))
    return _done(0)


def _param_set(hub, rx, now, trigger):
    index, value = struct.unpack_from("<Bi", rx.buf, _H)
    if index >= hub.params.count:
        return _reject(wire.WHY_BAD_ARG, index)
    ok, why, bound = hub.params.set(index, value)   # persists atomically
    if not ok:
        return _reject(why, bound)
    hub.record(wire.EV_PARAM, index, 0, value)
    return _done(value)


def _log_ack(hub, rx, now, trigger):
    upto = struct.unpack_from("<I", rx.buf, _H)[0]
    if upto > hub.log.next_index:
        return _reject(wire.WHY_BAD_ARG, hub.log.next_index)
    try:
        mark = hub.log.ack(upto)
    except OSError:
        return _reject(wire.WHY_STORAGE)
    if not hub.log.full():
        hub.alarms.clear(wire.ALARM_LOG_FULL)   # HIGH: stays until acknowledged
    return _done(mark)


def _key_rotate(hub, rx, now, trigger):
    b = rx.buf
    try:
        hub.state_store.rotate_key(bytes(b[_H:_H + 32]), rx.counter)
    except ValueError:
        return _reject(wire.WHY_BAD_ARG)
    except OSError:
        return _reject(wire.WHY_STORAGE)
    hub.record(wire.EV_KEY, 1)
    return _done(0)

def _rates(hub, rx, now, trigger):
    b = rx.buf
    pr = hub.params
    for k, p in ((0, P.P_TLM_STATUS_HZ), (1, P.P_TLM_BOTS_HZ), (2, P.P_TLM_SITES_HZ)):
        v = b[_H + k]
        if v < wire.TELEM_FLOOR_HZ and not hub.cmd_signed:
            return _reject(wire.WHY_AUTH_MISSING, wire.TELEM_FLOOR_HZ)   # no blinding
        ok, why, bound = pr.check(p, v)
        if not ok:
            return _reject(why, bound)
    for k in range(3):
        hub.rates[k] = b[_H + k]
    return _done(0)


def _start(hub, rx, now, trigger):
    session_cap, site_cap, rate_cap, duration, count = struct.unpack_from(
        wire.TREAT_START_FMT, rx.buf, _H)
    pr = hub.params
    for p, v in ((P.P_SESSION_CAP, session_cap), (P.P_SITE_CAP, site_cap), (P.P_RATE_CAP, rate_cap)):
        if v == 0 or v > pr.get(p):
            return _reject(wire.WHY_BOUNDS, pr.get(p))
    if count == 0 or count > len(hub.plan.site) or plancheck.bad(rx.buf, _H):
        return _reject(wire.WHY_BAD_ARG, count)
    plan = hub.plan
    off = _H + wire.TREAT_START_SIZE
    sw = hub.swarm
    for k in range(count):
        site = rx.buf[off]
        if site >= wire.SITES:
            return _reject(wire.WHY_BAD_ARG, site)
        have = 0
        for i in range(sw.n):
            if sw.target[i] == site and sw.usable(i):
                have += 1
        if not have:
            return _reject(wire.WHY_NO_BOTS, site)
        off += wire.TREAT_START_REC_SIZE
    off = _H + wire.TREAT_START_SIZE
    for k in range(count):
        plan.site[k] = rx.buf[off]
        plan.target[k] = rx.buf[off + 1] | (rx.buf[off + 2] << 8)
        plan.dose[k] = 0
        plan.rate[k] = 0
        plan.done[k] = 0
        off += wire.TREAT_START_REC_SIZE
    plan.n = count
    plan.reindex()
    plan.session_cap = session_cap
    plan.site_cap = site_cap
    plan.rate_cap = rate_cap
    plan.left_ms = duration * 1000 if duration else -1      # s -> ms (16 bits: a small int)
    dose.reset(hub, now)                     # counts restart; counter baselines stay
    return supervisor.request(hub, trigger, now)   # EV_TREAT 1 on entry


# ------------------------------------------------------- command table --
# How a command is authorized (``_authorize``): SIGNED and UNSIGNED come from
# the schema (MF_AUTH); OPTIONAL commands are unsigned there, but a good tag
# unlocks more (acknowledging a HIGH alarm, telemetry below the floor).
UNSIGNED = const(0)
SIGNED = const(1)
OPTIONAL = const(2)


def _schema_signing(msg):
    return SIGNED if wire.MSGS[msg][4] & wire.MF_AUTH else UNSIGNED


def _row(msg, handler, states=0, trigger=0, optional=False):
    signing = _schema_signing(msg)
    if optional and signing == UNSIGNED:
        signing = OPTIONAL
    return (msg, handler, signing, states or supervisor.sources(trigger), trigger)


_S = supervisor
# (message, handler, signing, states allowed (S_* mask), supervisor trigger):
# the states of a state change are the sources of its trigger's rows
COMMANDS = (
    _row(wire.M_ESTOP, _estop, _S.S_ANY),
    _row(wire.M_TREAT_PAUSE, _request, trigger=_S.C_PAUSE),
    _row(wire.M_TREAT_STOP, _request, trigger=_S.C_STOP),
    _row(wire.M_DISARM, _request, trigger=_S.C_DISARM),
    _row(wire.M_HOLD, _hold, _S.S_ANY),
    _row(wire.M_RECALL, _recall, _S.S_ANY),
    _row(wire.M_ALARM_ACK, _alarm_ack, _S.S_ANY, optional=True),
    _row(wire.M_TELEM_RATE, _rates, _S.S_ANY, optional=True),
    _row(wire.M_DEPLOY, _deploy, _S.S_SAFE | _S.S_ARMED | _S.S_PAUSED),
    _row(wire.M_ARM, _request, trigger=_S.C_ARM),
    _row(wire.M_TREAT_START, _start, trigger=_S.C_START),
    _row(wire.M_TREAT_RESUME, _request, trigger=_S.C_RESUME),
    _row(wire.M_DOSE_SCALE, _dose_scale, _S.S_ANY),
    _row(wire.M_ESTOP_RESET, _request, trigger=_S.C_RESET),
    _row(wire.M_CONSENT, _consent, _S.S_ANY_BUT_ESTOP),
    _row(wire.M_PARAM_SET, _param_set, _S.S_SAFE | _S.S_ESTOP),
    _row(wire.M_LOG_ACK, _log_ack, _S.S_ANY),
    _row(wire.M_KEY_ROTATE, _key_rotate, _S.S_ANY),
)
_BY_MSG = {}
for _r in COMMANDS:
    _BY_MSG[_r[0]] = _r


# -------------------------------------------------------------- bot side --

def deploy(hub, site, count, now):
    if hub.state == wire.HUB_ESTOP:
        return _reject(wire.WHY_ESTOP_LATCHED)
    if hub.state == wire.HUB_TREATING:
        return _reject(wire.WHY_STATE, hub.state)
    if site >= wire.SITES or count == 0:
        return _reject(wire.WHY_BAD_ARG, site)
    sw = hub.swarm
    sent = 0
    lost = hub.params.get(P.P_BOT_LOST_MS)
    for i in range(sw.n):
        if sent >= count:
            break
        # only a bot heard within the silence limit: a bot sent while silent would
        # be LOST the moment it is in the mouth (and count toward the systemic rule)
        if sw.state[i] == wire.BOT_DOCKED and sw.target[i] == _NONE and sw.heard_ever[i] \
                and sw.health[i] >= 50 and sw.silent_ms(i, now) <= lost:
            sw.target[i] = site
            _queue(sw, i, wire.OP_DEPLOY, 0)
            sent += 1
    if not sent:
        return _reject(wire.WHY_NO_BOTS, 0)
    bus_send(hub, now)
    return _done(sent)


def _queue(sw, i, op, rate):
    sw.cmd_op[i] = op
    sw.cmd_rate[i] = rate
    sw.sent_op[i] = 255                      # force a send on the next pass
    sw.send_all = 1


def hold(hub, bot):
    sw = hub.swarm
    n = 0
    for i in range(sw.n):
        if (bot == wire.ADDR_ALL or bot == i) and sw.cmd_rate[i]:
            sw.cmd_rate[i] = 0
            n += 1
    if n:
        _touch(sw)
    return n


def hold_all(hub):
    sw = hub.swarm
    for i in range(sw.n):
        sw.cmd_rate[i] = 0
    _touch(sw)


def recall(hub, bot):
    sw = hub.swarm
    n = 0
    for i in range(sw.n):
        if bot != wire.ADDR_ALL and bot != i:
            continue
        s = sw.state[i]
        if s == wire.BOT_QUARANTINED or s == wire.BOT_DISABLED:
            continue
        if sw.target[i] != _NONE or s != wire.BOT_DOCKED:
            sw.target[i] = _NONE
            _queue(sw, i, wire.OP_RECALL, 0)
            n += 1
    return n


def quarantine(hub, i, cause):
    sw = hub.swarm
    if sw.state[i] == wire.BOT_QUARANTINED or sw.state[i] == wire.BOT_DISABLED:
        return
    sw.state[i] = wire.BOT_QUARANTINED
    sw.cause[i] = cause
    _queue(sw, i, wire.OP_DISABLE, 0)
    hub.record(wire.EV_BOT, i, wire.BOT_QUARANTINED, cause)


def disable_all(hub, now):
    """Broadcast DISABLE at once, before anything else is written."""
    sw = hub.swarm
    for i in range(sw.n):
        sw.cmd_op[i] = wire.OP_DISABLE
        sw.cmd_rate[i] = 0
    _touch(sw)
    tx = hub.btx
    o = tx.begin(wire.M_BOT_CMDS, -1, wire.ADDR_ALL)
    r = tx.raw
    r[o] = 1
    o += 1
    r[o] = wire.ADDR_ALL
    r[o + 1] = wire.OP_DISABLE
    r[o + 2] = _NONE
    r[o + 3] = 0
    r[o + 4] = 0
    r[o + 5] = 0
    hub.send_bus(tx.finish(1 + wire.BOT_CMDS_REC_SIZE))
    for i in range(sw.n):
        if sw.sent_rate[i]:
            sw.dec_at[i] = now               # output lags the stop: no false runaway
        sw.sent_op[i] = wire.OP_DISABLE
        sw.sent_rate[i] = 0
        sw.sent_at[i] = now


def disable_pending(hub, now):
    """Retry DISABLE to each bot that has not confirmed."""
    sw = hub.swarm
    pend = hub.estop_pending
    for i in range(sw.n):
        if pend[i >> 3] & (1 << (i & 7)):
            sw.sent_op[i] = 255
    _touch(sw)
    bus_send(hub, now)


def _touch(sw):
    """A bot's command, state or target changed: the next ``bus_send`` looks at every bot."""
    sw.send_all = 1


def bus_send(hub, now, poll=False):
    """Send what changed and renew leases, batched into BOT_CMDS frames.

    Looks at every bot only when something a send depends on may have
    changed: a command, a bot's state or target (``swarm.send_all``, set by
    whoever writes them), the hub's state or the lease parameter, a report
    while a bot waits on one (``send_all == 2``), or the earliest time a
    retry or a lease renewal falls due (``swarm.send_due``; at most
    ``_REFRESH_MS`` away). Otherwise the tick costs a few comparisons.

    With ``poll`` (the tick's call, never one made inside a host command)
    the host link is read every ``_POLL_BOTS`` bots, once the frame built
    so far has gone out: an emergency stop waits for a few bots' worth.
    """
    sw = hub.swarm
    lease = hub.params.get(P.P_LEASE_MS)
    hst = hub.state
    key = (lease << 4) | hst
    if sw.send_all != 1 and key == sw.send_key and ticks_diff(now, sw.send_due) < 0:
        return
    sw.send_key = key
    sw.send_all = 0                     # taken: a command run meanwhile sets it again
    renew = lease >> 2
    estop = hst == wire.HUB_ESTOP
    tx = hub.btx
    o0 = 0
    cnt = 0
    renewals = 0                        # sent this tick, at most _RENEW_PER_TICK
    r = tx.raw
    due = _REFRESH_MS
    wait = 0
    cmd_op = sw.cmd_op
    cmd_rate = sw.cmd_rate
    state = sw.state
    sent_op = sw.sent_op
    sent_at = sw.sent_at
    sent_rate = sw.sent_rate
    said = sw.said
    target = sw.target
    dec_at = sw.dec_at
    prev_rate = sw.prev_rate
    dec_n = sw.dec_n
    n = sw.n
    # the wire constants the loop compares with, in locals (looked up once)
    OP_DISABLE = wire.OP_DISABLE
    OP_DEPLOY = wire.OP_DEPLOY
    OP_DOSE = wire.OP_DOSE
    OP_HOLD = wire.OP_HOLD
    BOT_QUARANTINED = wire.BOT_QUARANTINED
    BOT_DISABLED = wire.BOT_DISABLED
    BOT_DEPLOYED = wire.BOT_DEPLOYED
    BOT_ACTIVE = wire.BOT_ACTIVE
    BOT_DOCKED = wire.BOT_DOCKED
    most = wire.BOT_CMDS_MAX
    for i in range(n):
        if poll and i & _POLL_BOTS == _POLL_BOTS and i + 1 < n:
            if cnt:
                r[o0 - 1] = cnt
                hub.send_bus(tx.finish(1 + cnt * _REC))
                cnt = 0
            hub._poll_host(now)
            estop = hub.state == wire.HUB_ESTOP
        op = cmd_op[i]
        rate = cmd_rate[i]
        st = state[i]
        send = sent_op[i] == 255
        age = ticks_diff(now, sent_at[i])
        left = 0x3FFFFFFF               # ms until this bot's retry or renewal
        if op == OP_DISABLE:
            if st == BOT_QUARANTINED or estop:
                left = _HOLD_RETRY_MS - age
                if left <= 0:
                    if said[i] != BOT_DISABLED:
                        send = True
                    else:
                        wait = 1        # a report may say it is not disabled after all
        elif op == OP_DEPLOY or op == OP_DOSE or op == OP_HOLD:
            if st == BOT_DEPLOYED or st == BOT_ACTIVE:
                if rate:
                    op = OP_DOSE
                    left = renew - age
                    if rate != sent_rate[i]:
                        send = True
                    elif left <= 0:
                        if renewals < _RENEW_PER_TICK:
                            renewals += 1
                            send = True
                        else:
                            left = 1    # the next tick
                elif sent_rate[i]:
                    op = OP_HOLD
                    send = True
                else:
                    left = _HOLD_RETRY_MS - age
                    if left <= 0:
                        if sw.activity[i]:
                            op = OP_HOLD
                            send = True
                        else:
                            wait = 1    # a report of output would call for a HOLD
            elif op == OP_DEPLOY and st == BOT_DOCKED and target[i] != _NONE:
                # the DEPLOY was lost on the bus: the bot still says it is docked
                left = _DEPLOY_RETRY_MS - age
                if left <= 0:
                    if said[i] == BOT_DOCKED:
                        send = True
                    else:
                        wait = 1
        if not send:
            if 0 < left < due:
                due = left
            continue
        if cnt == 0:
            o0 = tx.begin(wire.M_BOT_CMDS, -1, wire.ADDR_ALL) + 1
        o = o0 + cnt * _REC
        r[o] = i
        r[o + 1] = op
        r[o + 2] = target[i]
        if op == OP_DOSE:
            new = rate
            r[o + 3] = rate
            r[o + 4] = lease & 0xFF
            r[o + 5] = lease >> 8
        else:
            new = 0
            r[o + 3] = r[o + 4] = r[o + 5] = 0
        if new < sent_rate[i]:
            # until the bot hears this it follows the rate it had (a lost
            # command: up to that command's lease): the dose bound keeps it
            if sent_rate[i] > prev_rate[i] or ticks_diff(now, dec_at[i]) >= lease:
                prev_rate[i] = sent_rate[i]
            dec_at[i] = now                  # output may lag: runaway grace
            dec_n[i] = 0
        elif new == 0 and dec_n[i] < _GRACE_RETRIES:
            dec_at[i] = now                  # a resent stop (the first may be lost)
            dec_n[i] += 1
        sent_op[i] = op
        sent_rate[i] = new
        sent_at[i] = now
        # sent now: due again after its renewal or retry
        nxt = renew if op == OP_DOSE else (
            _HOLD_RETRY_MS if op == OP_DISABLE or op == OP_HOLD else _DEPLOY_RETRY_MS)
        if nxt < due:
            due = nxt
        cnt += 1
        if cnt == most:
            r[o0 - 1] = cnt
            hub.send_bus(tx.finish(1 + cnt * _REC))
            cnt = 0
    if cnt:
        r[o0 - 1] = cnt
        hub.send_bus(tx.finish(1 + cnt * _REC))
    if wait and not sw.send_all:
        sw.send_all = 2
    sw.send_due = ticks_add(now, due if due > 0 else 1)
