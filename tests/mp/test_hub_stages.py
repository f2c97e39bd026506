# heap: 512k
"""The tick's shape: the host link is read between the tick's stages, so an
emergency stop that arrives while a tick runs is acted on before the tick
ends, not a whole tick later; per-bot work is not repeated every tick."""
import struct

from mptest import eq, true

from hub import control, telemetry, wire
from hubkit import Rig

SITE = 10


def test_an_estop_that_arrives_during_a_tick_stops_the_swarm_before_the_tick_ends():
    rig = Rig(bots=8)
    rig.treating(((SITE, 8),), depth=3000)
    rig.run(300)
    _, data = rig.frame(wire.M_ESTOP, struct.pack(wire.ESTOP_FMT, 1))
    limit, run = control.limit, telemetry.run
    seen = []

    def late_limit(hub, now):
        limit(hub, now)
        if not seen:
            rig.board.host_in.extend(data)   # arrives while this tick runs
            seen.append(hub.state)

    def watch(hub, now):
        seen.append(hub.state)
        run(hub, now)
    control.limit, telemetry.run = late_limit, watch
    try:
        rig.step()
    finally:
        control.limit, telemetry.run = limit, run
    eq(seen[0], wire.HUB_TREATING)
    eq(seen[1], wire.HUB_ESTOP, "acted on in the same tick")
    rig.run(200)
    for i in range(rig.n):
        eq(rig.sw.state[i], wire.BOT_DISABLED, "bot %d" % i)


def test_a_tick_without_reports_or_commands_does_not_revisit_the_bots():
    rig = Rig(bots=8)
    rig.treating(((SITE, 8),), depth=3000)
    rig.run(300)
    while rig.now % 100 != 40:            # between two gateway reports
        rig.step()
    sw = rig.hub.swarm
    gathered = []
    gather = control.gather

    def count(hub):
        gathered.append(hub.now)
        gather(hub)
    control.gather = count
    try:
        rig.step()                        # no report, no command
        eq(gathered, [])
        true(not sw.changed and not sw.dirty)
        while not gathered:
            rig.step()                    # the next report batch
    finally:
        control.gather = gather
    eq(len(gathered), 1)
    eq(rig.state(), wire.HUB_TREATING)
