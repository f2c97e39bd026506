# heap: 512k
"""Memory discipline (DESIGN 4): once warmed up, the hub's tick allocates
nothing, with 64 bots, telemetry on and the bus busy. Only ``hub.tick`` is
measured: the rig (bot model, gateway, host) allocates as it likes."""
import struct

from mptest import eq, true

from hub import wire
from hubkit import Rig

SITES = ((10, 16), (11, 16), (12, 16), (13, 16))


def _big_treatment():
    rig = Rig(bots=64)
    rig.keep_bus_log = False              # keep the heap for the hub
    for site, _ in SITES:
        rig.lesion(site, 3000)
    rig.udu_per_um = 1000000              # the lesions barely move: a steady state
    rig.treating(SITES, target=100)
    rig.run(3000)                         # warm-up: every path and buffer used once
    eq(rig.state(), wire.HUB_TREATING)
    return rig


def _allocated(rig, ms):
    rig.allocated = 0
    rig.measure = True
    rig.run(ms)
    rig.measure = False
    return rig.allocated


def test_a_steady_state_treating_tick_with_64_bots_allocates_nothing():
    rig = _big_treatment()
    sent = rig.hub.btx.seq
    eq(_allocated(rig, 5000), 0)
    eq(rig.state(), wire.HUB_TREATING)
    # the measured ticks did the real work: leases renewed, telemetry sent
    true(rig.hub.btx.seq != sent, "bot commands sent while measuring")
    eq(rig.statuses[-1]["state"], wire.HUB_TREATING)


def test_report_frames_of_many_lengths_do_not_make_the_tick_allocate():
    rig = _big_treatment()
    for bot in (5, 20, 47):               # silent bots split the gateway's reports
        rig.sw.set_silent(bot)
    rig.run(3000)                         # lost, then quarantined: the log written
    eq(rig.state(), wire.HUB_TREATING)
    eq(_allocated(rig, 3000), 0)


def test_a_steady_state_paused_tick_allocates_nothing():
    rig = _big_treatment()
    rig.pause()
    rig.run(1000)
    eq(_allocated(rig, 2000), 0)


def test_a_steady_state_safe_tick_allocates_nothing():
    rig = Rig(bots=64)
    rig.keep_bus_log = False
    rig.ready(((10, 32),))
    rig.run(2000)
    eq(_allocated(rig, 2000), 0)


def test_a_steady_state_estop_tick_allocates_nothing():
    rig = _big_treatment()
    rig.sw.set_silent(5)                  # one bot never confirms: retries go on
    rig.estop()
    rig.run(4000)
    eq(_allocated(rig, 2000), 0)


def test_a_tick_while_the_host_does_not_read_allocates_nothing():
    rig = _big_treatment()
    rig.board.room = 0                    # the host stopped reading
    for _ in range(12):                   # more ACKs than the queue holds: drops happen
        rig.send(wire.M_REQUEST, struct.pack(wire.REQUEST_FMT, wire.REQ_INFO))
    rig.run(3000)
    true(rig.hub.out.lost > 0, "the queue overflowed while warming up")
    eq(_allocated(rig, 3000), 0)
    rig.board.room = 7                    # now a trickle: frames go out in pieces
    rig.run(2000)
    eq(_allocated(rig, 2000), 0)
    eq(rig.state(), wire.HUB_TREATING)
