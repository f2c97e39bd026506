"""Frames to the operator: replies, ACKs and rate-limited telemetry.

Telemetry is sent only to a host that said HELLO, at the rates the host set
(bounded by parameters), and only while the host link has room: telemetry
never starves ACKs or emergency-stop reports, and a host that stops reading
never stops the loop (``hub.hostout``).
"""
import struct

from hub import checks, frame, wire
from hub import params as P
from hub.alarms import CODES, PRIO
from hub.version import FW_VERSION
from hub.compat import const, ticks_add, ticks_diff

_H = const(5)  # wire.HEADER_SIZE


def hello_reply(hub, seq, result):
    st = hub.state_store
    tx = hub.htx
    o = tx.begin(wire.M_HELLO_REPLY, seq, 0, wire.F_REPLY)
    struct.pack_into(wire.HELLO_REPLY_FMT, tx.raw, o, result, wire.SCHEMA,
                     FW_VERSION[0], FW_VERSION[1], FW_VERSION[2],
                     hub.board.name.encode(), st.hub_id, 0x0007, hub.swarm.n,
                     hub.state, st.boots & 0xFFFF, st.reset_cause,
                     1 if st.keyed else 0, st.counter, 1 if st.estop else 0,
                     hub.now & wire.HUB_TIME_MASK, hub.params.get(P.P_FRESH_MS))
    hub.send_host(tx.finish(wire.HELLO_REPLY_SIZE))


def ack(hub, req, cmd, status, reason, detail):
    tx = hub.htx
    o = tx.begin(wire.M_ACK, -1, 0, wire.F_REPLY)
    struct.pack_into(wire.ACK_FMT, tx.raw, o, req, cmd, status, reason, detail)
    hub.send_host(tx.finish(wire.ACK_SIZE))


def status(hub, seq=-1):
    sw = hub.swarm
    c = hub.counts
    sw.counts(c)
    tx = hub.htx
    o = tx.begin(wire.M_HUB_STATUS, seq, 0, wire.F_REPLY if seq >= 0 else 0)
    bad = checks.failing(hub, hub.now) if hub.state == wire.HUB_SAFE else 0
    sens = hub.patient.sens if hub.patient.sens < 0xFFFF else 0xFFFF
    wr = hub.out.wr_us                      # this status's own writes go in the next one
    hub.out.wr_us = 0
    struct.pack_into(wire.HUB_STATUS_FMT, tx.raw, o, hub.state, hub.reason & 0xFF,
                     hub.now & 0x3FFFFFFF, sw.n, c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                     hub.alarms.count(), hub.alarms.unacked_high(),
                     hub.dose_total & 0x3FFFFFFF, hub.plan.session_cap & 0x3FFFFFFF, sens,
                     hub.scale, hub.bus.link, _rx_bad(hub) & 0xFFFF, bad,
                     hub.late if hub.late < 0xFFFF else 0xFFFF, hub.late_n, wr, hub.out.lost,
                     hub.log.next_index, hub.log.head_chain)
    if hub.send_host(tx.finish(wire.HUB_STATUS_SIZE)):
        hub.late = 0                        # reported: measure afresh
    elif wr > hub.out.wr_us:
        hub.out.wr_us = wr                  # not reported: keep it for the next one


def _rx_bad(hub):
    n = 0
    for k in hub.hrx.bad:
        n += k
    return n


def bot_states(hub, seq=-1):
    sw = hub.swarm
    tx = hub.htx
    first = 0
    size = wire.BOT_STATES_REC_SIZE
    records = frame._IMPL[7]
    while first < sw.n:
        count = sw.n - first
        if count > wire.BOT_STATES_MAX:
            count = wire.BOT_STATES_MAX
        o = tx.begin(wire.M_BOT_STATES, seq, 0, wire.F_REPLY if seq >= 0 else 0)
        r = tx.raw
        r[o] = first
        r[o + 1] = count
        o += 2
        records(sw, r, o, first, count)    # hub.viperbytes.states
        hub.send_host(tx.finish(2 + count * size))
        first += count


def site_readings(hub, seq=-1):
    plan = hub.plan
    tx = hub.htx
    o = tx.begin(wire.M_SITE_READINGS, seq, 0, wire.F_REPLY if seq >= 0 else 0)
    n = plan.n
    tx.raw[o] = n
    o += 1
    fmt = wire.SITE_READINGS_REC_FMT
    for k in range(n):
        struct.pack_into(fmt, tx.raw, o, plan.site[k], plan.ph[k], plan.bact[k],
                         plan.temp[k], plan.depth[k], plan.dose[k] & 0x3FFFFFFF)
        o += wire.SITE_READINGS_REC_SIZE
    hub.send_host(tx.finish(1 + n * wire.SITE_READINGS_REC_SIZE))


def alarm(hub, code, seq=-1):
    al = hub.alarms
    tx = hub.htx
    o = tx.begin(wire.M_ALARM, seq, 0, wire.F_REPLY if seq >= 0 else 0)
    st = al.state[code]
    struct.pack_into(wire.ALARM_FMT, tx.raw, o, code, PRIO[code], st if st < 3 else 2,
                     al.where[code], al.where[CODES + code], al.value[code],
                     al.value[CODES + code] & 0x3FFFFFFF)
    hub.send_host(tx.finish(wire.ALARM_SIZE))


def estop_report(hub, left, seq=-1):
    tx = hub.htx
    o = tx.begin(wire.M_ESTOP_REPORT, seq, 0, 0)
    n = hub.swarm.n
    r = tx.raw
    r[o] = 1 if hub.estop.done else 0
    r[o + 1] = n
    r[o + 2] = n - left
    r[o + 3] = left
    for k in range(32):
        r[o + 4 + k] = hub.estop_pending[k]
    hub.send_host(tx.finish(wire.ESTOP_REPORT_SIZE))


def param_value(hub, index, seq):
    pr = hub.params
    if index >= pr.count:
        ack(hub, seq, wire.M_PARAM_GET, wire.ACKS_REJECTED, wire.WHY_BAD_ARG, index)
        return
    name, unit, value, lo, hi, default = pr.info(index)
    tx = hub.htx
    o = tx.begin(wire.M_PARAM_VALUE, seq, 0, wire.F_REPLY)
    struct.pack_into(wire.PARAM_VALUE_FMT, tx.raw, o, index, pr.count, value, lo, hi,
                     default, name.encode(), unit.encode())
    hub.send_host(tx.finish(wire.PARAM_VALUE_SIZE))


def log_chunk(hub, start, most, seq):
    if most > wire.LOG_CHUNK_MAX or most == 0:
        most = wire.LOG_CHUNK_MAX
    tx = hub.htx
    o = tx.begin(wire.M_LOG_CHUNK, seq, 0, wire.F_REPLY)
    try:
        count, first, nxt = hub.log.read_into(start, most, tx.raw, o + wire.LOG_CHUNK_SIZE)
    except OSError:
        count, first, nxt = 0, 0, 0
    got = start if start >= first else first
    if count == 0:
        got = start if start <= nxt else nxt
    struct.pack_into(wire.LOG_CHUNK_FMT, tx.raw, o, got, first, nxt, count)
    hub.send_host(tx.finish(wire.LOG_CHUNK_SIZE + count * wire.LOG_SIZE))


def request(hub, what, seq):
    if what == wire.REQ_STATUS:
        status(hub, seq)
    elif what == wire.REQ_BOTS:
        bot_states(hub, seq)
    elif what == wire.REQ_SITES:
        site_readings(hub, seq)
    elif what == wire.REQ_ALARMS:
        al = hub.alarms
        for code in range(1, CODES):
            if al.active(code):
                alarm(hub, code, seq)
        status(hub, seq)
    elif what == wire.REQ_ESTOP:
        left = 0
        for b in hub.estop_pending:
            while b:
                left += b & 1
                b >>= 1
        estop_report(hub, left, seq)
    elif what == wire.REQ_INFO:
        hello_reply(hub, seq, wire.HELLO_OK)


def _next(now, due, period):
    """The next due time: from the last one, so a late tick does not slip the
    rate; from now if a whole period was missed (after idling)."""
    nxt = ticks_add(due, period)
    if ticks_diff(nxt, now) <= 0:
        nxt = ticks_add(now, period)
    return nxt


def status_soon(hub):
    hub.next_status = hub.now


def run(hub, now):
    """Periodic telemetry at the host's rates; alarm changes at once."""
    out = hub.out
    out.pump(now)
    if not hub.hello or not hub.board.host_connected():
        return
    al = hub.alarms
    if al.changed:
        ch = al.changed
        al.changed = 0
        for code in range(1, CODES):
            if ch & (1 << code):
                alarm(hub, code)
        al.forget_cleared()
    r = hub.rates
    if r[0] and ticks_diff(now, hub.next_status) >= 0:
        hub.next_status = _next(now, hub.next_status, 1000 // r[0])
        status(hub)
    room = out.room(now)                    # not worth building what would be dropped
    if r[1] and ticks_diff(now, hub.next_bots) >= 0:
        hub.next_bots = _next(now, hub.next_bots, 1000 // r[1])
        if room:
            bot_states(hub)
        else:
            out.skip(now)
    if r[2] and hub.plan.n and ticks_diff(now, hub.next_sites) >= 0:
        hub.next_sites = _next(now, hub.next_sites, 1000 // r[2])
        if room:
            site_readings(hub)
        else:
            out.skip(now)
