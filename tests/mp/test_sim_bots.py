# heap: 128k
"""The bot model on the MicroPython VM: the bot-bus contract, and a
steady-state step that allocates nothing (it will run on a bare board as the
on-board virtual swarm)."""

import gc
import sys

from mptest import eq, true
from textbook import xorshift32

try:
    import bots
except ImportError:
    # the firmware runner's path has no sim/: find it from the repo root
    import os
    sys.path.append(os.getenv("NANOHUB_ROOT", ".") + "/sim")
    import bots
from hub import wire

SITE = 42


def _deployed(n=4, seed=3):
    sw = bots.Swarm(n, seed)
    for b in range(n):
        sw.command(b, wire.OP_DEPLOY, SITE, 0, 0, 0)
    t = 0
    while t < 1100:                      # travel takes at most 1.0 s
        t += 20
        sw.step(t)
    return sw, t


def test_xorshift32_matches_the_32_bit_reference():
    rng = bots.Xorshift32(12345)
    x = rng.state()
    for _ in range(100):
        x = xorshift32(x)
        eq(rng.next(), x >> 16)
    eq(rng.state(), x)


def test_deploy_travels_then_arrives_deployed_at_the_site():
    sw = bots.Swarm(2, 1)
    true(sw.command(0, wire.OP_DEPLOY, SITE, 0, 0, 0))
    r = sw.report(0)
    eq((r[0], r[1], r[2]), (wire.BOT_DEPLOYED, bots.NO_SITE, 0))   # on the way: no site yet
    eq(sw.moving[0], 1)
    sw.step(1000)
    sw.step(1020)
    eq(sw.moving[0], 0)
    eq(sw.report(0)[:3], (wire.BOT_DEPLOYED, SITE, 0))


def test_dose_delivers_until_the_lease_expires():
    sw, t = _deployed()
    sw.command(0, wire.OP_DOSE, 0, 50, 500, t)
    eq(sw.state[0], wire.BOT_ACTIVE)
    for _ in range(15):                  # 300 ms: output settles near 50 %
        t += 20
        sw.step(t)
    r = sw.report(0)
    eq(r[0], wire.BOT_ACTIVE)
    true(46 <= r[2] <= 54, "activity %d" % r[2])
    for _ in range(30):                  # lease runs out at +500 ms
        t += 20
        sw.step(t)
    eq(sw.state[0], wire.BOT_DEPLOYED)
    eq(sw.act[0], 0)
    eq(sw.report(0)[2], 0)


def test_disable_latches_and_even_stops_a_runaway():
    sw, t = _deployed()
    sw.set_runaway(1, False, 100)
    for _ in range(20):
        t += 20
        sw.step(t)
    true(sw.act[1] > 9000, "runaway at %d" % sw.act[1])
    sw.command(1, wire.OP_HOLD, 0, 0, 0, t)
    t += 200
    sw.step(t)
    true(sw.act[1] > 9000, "HOLD must not stop a runaway")
    sw.command(1, wire.OP_DISABLE, 0, 0, 0, t)
    eq(sw.act[1], 0)
    for op in (wire.OP_DEPLOY, wire.OP_DOSE, wire.OP_RECALL):
        sw.command(1, op, SITE, 80, 2000, t)
        t += 200
        sw.step(t)
        eq(sw.state[1], wire.BOT_DISABLED)
        eq(sw.act[1], 0)
    eq(sw.report(1)[0], wire.BOT_DISABLED)


def test_a_silent_bot_neither_reports_nor_hears():
    sw, t = _deployed()
    sw.set_silent(2)
    eq(sw.report(2), None)
    eq(sw.command(2, wire.OP_DISABLE, 0, 0, 0, t), False)
    sw.clear(2, bots.F_SILENT)
    true(sw.report(2) is not None)


def test_steady_state_step_of_64_bots_allocates_nothing():
    sw = bots.Swarm(64, 9)
    for b in range(48):
        sw.command(b, wire.OP_DEPLOY, b % 8, 0, 0, 0)
    sw.set_runaway(5, False, 100)
    sw.set_drift(6, 100, 0, 5000)
    sw.set_collapse(7, 60000)
    t = 0
    for _ in range(60):
        t += 20
        sw.step(t)
    for b in range(40):
        sw.command(b, wire.OP_DOSE, 0, 70, 60000, t)
    t += 20
    sw.step(t)
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        for _ in range(50):
            t += 20
            sw.step(t)
        used = gc.mem_alloc() - before
    finally:
        gc.enable()
    eq(used, 0, "bytes allocated by 50 steps")
    true(sw.act[0] > 0 and sw.act[5] > 0)
