"""The hub's byte loops in ``@micropython.viper``: machine words, no boxing.

The frame layer's COBS and CRC, and the per-bot table loops of the report
ingest, the controller's gather, the BOT_STATES frame and the state counts.

Importing this module fails on ports without a native emitter (SyntaxError
from source, ValueError for a .mpy of another architecture); ``hub.frame``
then runs ``hub.loops``: these loops as bytecode, generated from this source
by ``nanohub.protocol.gen`` (the CRC aside: ``hub.crc`` computes it in 16-bit
halves there). Write a loop so that it reads right both ways: the golden-vector
tests and tests/mp/test_tick_bench.py run both. Every function works in place
on buffers the caller owns and returns small ints only: a CRC-32 never exists
as an object.
"""
import micropython
from array import array

from hub import dose as _dose
from hub import wire

# Rx decoder state (Rx.state), an array("i") shared with hub.frame
# 0 bytes decoded, 1 bytes left in the COBS block, 2 a zero is due before
# the next block, 3 error code (0 none), 4 capacity, 5 ERR_OVERSIZE


@micropython.viper
def _fill(t):
    # machine words: on a 32-bit port the same loop in bytecode would box
    # every value of 2**30 or more (~130 KB of garbage at import)
    p = ptr32(t)
    i = 0
    while i < 256:
        c = uint(i)
        k = 0
        while k < 8:
            if c & 1:
                c = (c >> 1) ^ uint(0xEDB88320)
            else:
                c = c >> 1
            k += 1
        p[i] = c
        i += 1


def table():
    """The CRC-32 lookup table as 32-bit words (built once, at import)."""
    t = array("I", bytes(1024))
    _fill(t)
    return t


TABLE = table()


@micropython.viper
def feed(data, i: int, n: int, buf, st) -> int:
    """COBS-decode ``data[i:n]`` into ``buf`` up to the first delimiter.

    Returns the index after what was consumed, negated minus one when a
    delimiter ended a frame (so the caller learns both in one small int).
    """
    d = ptr8(data)
    out = ptr8(buf)
    s = ptr32(st)
    cnt = s[0]
    left = s[1]
    zero = s[2]
    err = s[3]
    cap = s[4]
    end = 0
    while i < n:
        b = d[i]
        i += 1
        if b == 0:
            if cnt or left or err or zero:
                end = 1
                break
            continue
        if err:
            continue
        if left == 0:
            if zero:
                if cnt >= cap:
                    err = s[5]
                    continue
                out[cnt] = 0
                cnt += 1
            left = b - 1
            zero = 1 if b < 0xFF else 0
        else:
            if cnt >= cap:
                err = s[5]
                continue
            out[cnt] = b
            cnt += 1
            left -= 1
    s[0] = cnt
    s[1] = left
    s[2] = zero
    s[3] = err
    if end:
        return -1 - i
    return i


@micropython.viper
def cobs_encode(src, n: int, dst) -> int:
    """COBS-encode ``src[:n]`` into ``dst`` with the delimiter; the wire length."""
    s = ptr8(src)
    d = ptr8(dst)
    code_at = 0
    o = 1
    code = 1
    i = 0
    while i < n:
        b = s[i]
        i += 1
        if b == 0:
            d[code_at] = code
            code_at = o
            o += 1
            code = 1
        else:
            d[o] = b
            o += 1
            code += 1
            if code == 0xFF and i < n:
                d[code_at] = code
                code_at = o
                o += 1
                code = 1
    d[code_at] = code
    d[o] = 0
    return o + 1


@micropython.viper
def crc(buf, n: int, put: int) -> int:
    """The CRC-32 of ``buf[:n]``: with ``put`` written little-endian into
    ``buf[n:n + 4]`` (returns 1), else whether ``buf[:n]`` ends in the CRC
    of what precedes it (over data and its CRC the register ends at the
    residue). One function for both: a call between viper functions goes
    through objects, and a CRC-32 returned that way would be boxed."""
    p = ptr8(buf)
    t = ptr32(TABLE)
    c = uint(0xFFFFFFFF)
    i = 0
    while i < n:
        c = uint(t[(c ^ p[i]) & 0xFF]) ^ (c >> 8)
        i += 1
    c = c ^ uint(0xFFFFFFFF)
    if not put:
        return int(c == uint(0x2144DF1C))
    p[n] = c & 0xFF
    p[n + 1] = (c >> 8) & 0xFF
    p[n + 2] = (c >> 16) & 0xFF
    p[n + 3] = (c >> 24) & 0xFF
    return 1


@micropython.viper
def gather(plan, sw):
    """``control.gather``: each plan site's freshest conservative readings
    and usable bots, one pass over the bots."""
    fresh = ptr8(plan.fresh)
    nb = ptr8(plan.nb)
    slot = ptr8(plan.slot)
    pdepth = ptr16(plan.depth)
    ptemp = ptr16(plan.temp)      # int16 bits
    pph = ptr16(plan.ph)
    pbact = ptr16(plan.bact)
    target = ptr8(sw.target)
    site = ptr8(sw.site)
    state = ptr8(sw.state)
    heard = ptr8(sw.heard_ever)
    sdepth = ptr16(sw.depth)
    stemp = ptr16(sw.temp)
    sph = ptr16(sw.ph)
    sbact = ptr16(sw.bacteria)
    deployed = int(wire.BOT_DEPLOYED)
    active = int(wire.BOT_ACTIVE)
    quar = int(wire.BOT_QUARANTINED)
    lost = int(wire.BOT_LOST)
    np = int(plan.n)
    k = 0
    while k < np:
        fresh[k] = 0
        nb[k] = 0
        k += 1
    n = int(sw.n)
    i = 0
    while i < n:
        t = target[i]
        k = 255
        if t != 255:
            k = slot[t]
        if k != 255:
            s = state[i]
            if s == deployed or s == active:
                nb[k] += 1
            if site[i] == t and s != quar and s != lost and heard[i]:
                d = sdepth[i]
                tp = stemp[i]
                if tp > 32767:
                    tp -= 65536
                if not fresh[k]:
                    pdepth[k] = d
                    ptemp[k] = tp
                else:
                    if d < pdepth[k]:
                        pdepth[k] = d
                    cur = ptemp[k]
                    if cur > 32767:
                        cur -= 65536
                    if tp > cur:
                        ptemp[k] = tp
                fresh[k] += 1
                pph[k] = sph[i]
                pbact[k] = sbact[i]
        i += 1


@micropython.viper
def states(sw, raw, o: int, first: int, count: int):
    """A BOT_STATES frame's records (state, site, activity, battery, health
    of bots ``first`` on) into ``raw`` from offset ``o``."""
    r = ptr8(raw)
    state = ptr8(sw.state)
    site = ptr8(sw.site)
    act = ptr8(sw.activity)
    batt = ptr8(sw.battery)
    health = ptr8(sw.health)
    size = int(wire.BOT_STATES_REC_SIZE)
    i = first
    end = first + count
    while i < end:
        r[o] = state[i]
        r[o + 1] = site[i]
        r[o + 2] = act[i]
        r[o + 3] = batt[i]
        r[o + 4] = health[i]
        o += size
        i += 1


@micropython.viper
def counts(state, n: int, out):
    """Bots by state (``Swarm.counts``): ``out[s]`` is how many of
    ``state[:n]`` are ``s`` (``out`` a bytearray of 7)."""
    st = ptr8(state)
    o = ptr8(out)
    k = 0
    while k < 7:
        o[k] = 0
        k += 1
    i = 0
    while i < n:
        o[st[i]] += 1
        i += 1


@micropython.viper
def book(sw, plan, buf, off: int, count: int, i: int, pend: int, now: int, t0: int,
         io) -> int:
    """The per-report work of ``Swarm.ingest`` for the records of a
    BOT_REPORTS frame from ``buf[off]`` (the first for bot ``i``): the fields
    (state said, site, activity, battery, health, temperature, pH, depth,
    bacteria), the bot heard, the hub-view state, the confirmed and
    provisional dose (``hub.dose``). Records of bots past the swarm and of no
    known state are left out (a garbled report is not a sign of life). Stops
    after the record that leaves ``count & io[3]`` 0 (the ingest reads the
    host link there) or one that needs the caller: ``io[2]`` bit 0 the safety
    rules may trip (``check`` for bot i - 1), bit 1 the counter went
    backwards (``io[1]`` the counter). ``io[0]`` the records that were a sign
    of life. ``io[4:7]``: the runaway margin, the heat limit and the lease
    (``Swarm.io``). Returns the records consumed. The swarm's totals are
    read and written back on every call, so the caller sees them current."""
    b = ptr8(buf)
    state = ptr8(sw.state)
    said_a = ptr8(sw.said)
    site_a = ptr8(sw.site)
    target = ptr8(sw.target)
    heard = ptr32(sw.heard)
    ever = ptr8(sw.heard_ever)
    act = ptr8(sw.activity)
    batt = ptr8(sw.battery)
    health = ptr8(sw.health)
    sent = ptr8(sw.sent_rate)
    cmd = ptr8(sw.cmd_rate)
    temp = ptr16(sw.temp)       # int16 bits
    ph = ptr16(sw.ph)
    depth = ptr16(sw.depth)
    bact = ptr16(sw.bacteria)
    run = ptr8(sw.runaway)
    dose = ptr32(sw.dose)
    ctr = ptr16(sw.ctr)
    ok = ptr8(sw.ctr_ok)
    prate = ptr8(sw.prate)
    prevr = ptr8(sw.prev_rate)
    dec = ptr32(sw.dec_at)
    pt = ptr32(sw.pt)
    pdose = ptr32(sw.pdose)
    pk = ptr8(sw.pk)
    slot = ptr8(plan.slot)
    dconf = ptr32(plan.dconf)
    pset = ptr32(plan.pset)
    pfine = ptr32(plan.pfine)
    prs = ptr32(plan.prs)
    res = ptr32(io)
    n = int(sw.n)
    size = int(wire.BOT_REPORTS_REC_SIZE)
    o_st = int(wire.R_BOT_REPORTS_STATE)
    o_si = int(wire.R_BOT_REPORTS_SITE)
    o_ac = int(wire.R_BOT_REPORTS_ACTIVITY)
    o_ba = int(wire.R_BOT_REPORTS_BATTERY)
    o_he = int(wire.R_BOT_REPORTS_HEALTH)
    o_te = int(wire.R_BOT_REPORTS_TEMP)
    o_ph = int(wire.R_BOT_REPORTS_PH)
    o_de = int(wire.R_BOT_REPORTS_DEPTH)
    o_bc = int(wire.R_BOT_REPORTS_BACTERIA)
    o_do = int(wire.R_BOT_REPORTS_DOSE)
    lost = int(wire.BOT_LOST)
    quar = int(wire.BOT_QUARANTINED)
    disabled = int(wire.BOT_DISABLED)
    active = int(wire.BOT_ACTIVE)
    every = res[3]
    margin = res[4]
    heat = res[5]
    conf_total = int(sw.conf_total)
    pset_total = int(sw.pset_total)
    pfine_total = int(sw.pfine_total)
    prs_total = int(sw.prs_total)
    sat = int(_dose.SAT)
    slack = int(_dose.SLACK_MS)
    rmarg = int(_dose.MARGIN)
    lease = res[6]
    half = 0x20000000           # ticks_diff: ticks wrap at 2**30
    mask = 0x3FFFFFFF
    seen = 0
    changed = 0
    back = 0
    why = 0
    restart = 0
    done = 0
    while count > 0 and off + size <= pend:
        said = b[off + o_st]
        if i < n and said <= lost:      # else no such state: not a sign of life
            prev = heard[i]
            site = b[off + o_si]
            said_a[i] = said
            site_a[i] = site
            act[i] = b[off + o_ac]
            batt[i] = b[off + o_ba]
            health[i] = b[off + o_he]
            tp = b[off + o_te] | (b[off + o_te + 1] << 8)
            if tp > 32767:              # signed: the bytecode build stores it in an "h" array
                tp -= 65536
            temp[i] = tp
            ph[i] = b[off + o_ph] | (b[off + o_ph + 1] << 8)
            depth[i] = b[off + o_de] | (b[off + o_de + 1] << 8)
            bact[i] = b[off + o_bc] | (b[off + o_bc + 1] << 8)
            heard[i] = now
            ever[i] = 1
            seen += 1
            st = state[i]
            if st == quar or st == disabled:
                if said == disabled and site == 255 and target[i] != 255:
                    target[i] = 255
                    changed = 1
            else:
                if said == disabled:
                    st = disabled
                elif said != quar and said != lost:
                    st = said
                if st != state[i]:
                    if state[i] == lost:
                        back = 1
                    state[i] = st
                    changed = 1
            # the dose (hub.dose): the counter's step since the last report is
            # confirmed; the provisional dose so far (rounded up) is replaced
            c = b[off + o_do] | (b[off + o_do + 1] << 8)
            k0 = pk[i]
            k = k0
            if site != 255:
                k = slot[site]
            r0 = prate[i]
            pd = pdose[i]
            live = 0
            if r0:
                live = r0 * (((now - pt[i] + half) & mask) - half)
            if ok[i]:
                d = (c - ctr[i]) & 0xFFFF
                if d:
                    # at most 1 udu per ms (100 %), with the arrival jitter
                    e = (((now - prev + half) & mask) - half) + slack
                    if d <= e:
                        if e >= 65536:
                            d += ((e - d) >> 16) << 16     # it may have wrapped: the most
                    else:
                        d = pd + (live + 99) // 100 + c    # restarted: keep what was counted
                        restart = c
                        why |= 2
                    if conf_total < sat:
                        dose[i] = dose[i] + d
                        conf_total += d
                        if k != 255:
                            dconf[k] = dconf[k] + d
            ok[i] = 1                   # (the first report is the baseline)
            ctr[i] = c
            # the new rate bound, from the report and the hub's commands
            r = 0
            if said != disabled:
                a = act[i]
                r = a
                x = cmd[i]
                if x > r:
                    r = x
                x = sent[i]
                if x > r:
                    r = x
                x = prevr[i]            # a decrease the bot may not have heard
                if x:
                    if (((now - dec[i] + half) & mask) - half) < lease:
                        if x > r:
                            r = x
                    else:
                        prevr[i] = 0
                if r:
                    r += rmarg
                if r < r0 and (t0 != now or (said == active and not a)):
                    # a report that waited unread predates commands sent since; one
                    # that is active yet reads 0 is ramping up: keep their bound
                    r = r0
            if r0 or pd or r:
                live2 = 0
                if r:
                    live2 = r * (((now - t0 + half) & mask) - half)
                pfine_total += live2 - live
                pset_total -= pd
                prs_total += r - r0
                if k0 != k:
                    if k0 != 255:
                        pfine[k0] = pfine[k0] - live
                        pset[k0] = pset[k0] - pd
                        prs[k0] = prs[k0] - r0
                    if k != 255:
                        pfine[k] = pfine[k] + live2
                        prs[k] = prs[k] + r
                elif k != 255:          # the same site: one update each
                    pfine[k] = pfine[k] + live2 - live
                    pset[k] = pset[k] - pd
                    prs[k] = prs[k] + r - r0
                pdose[i] = 0
                prate[i] = r
            pt[i] = t0
            pk[i] = k
            # the safety rules only for a report that could trip one
            tp = temp[i]
            if tp > 32767:
                tp -= 65536
            if act[i] > sent[i] + margin or tp >= heat or run[i]:
                why |= 1
        i += 1
        off += size
        count -= 1
        done += 1
        if why or (count & every) == 0:
            break
    sw.conf_total = conf_total
    sw.pset_total = pset_total
    sw.pfine_total = pfine_total
    sw.prs_total = prs_total
    if changed:
        sw.changed = 1
    if back:
        sw.sweep_at = now       # a LOST bot is back: the sweep clears the alarm at once
    res[0] = seen
    res[1] = restart
    res[2] = why
    return done
