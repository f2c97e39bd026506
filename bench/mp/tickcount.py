"""On the MicroPython VM under callgrind: the hub's tick marked for counting.

    valgrind --tool=callgrind --toggle-collect=filter_next \
        --dump-before=mp_builtin_hash --dump-after=filter_next \
        micropython -X heapsize=2m bench/mp/tickcount.py BOTS TICKS

The steady treatment of ``tickbench.py``; then each ``hub.tick`` runs inside
``filter()`` (nothing else calls it) so callgrind counts the tick alone and
dumps after each one, and every host-link poll (``board.host_session``, once
per poll) calls ``hash()`` first so callgrind also dumps there: the dumps
between two tick ends are the tick's stretches between polls, the longest an
ESTOP can wait inside a tick. Prints one JSON line at the end.
"""
import json
import sys

from tickbench import steady


def main(n, ticks):
    rig = steady(n)
    hub = rig.hub
    board = rig.board
    session = board.host_session

    def host_session():
        hash(0)                 # a marker callgrind dumps before
        return session()
    board.host_session = host_session
    one = [0]

    def tick(now):
        one[0] = now
        for _ in filter(hub.tick, one):
            pass
    rig._tick = tick
    for _ in range(ticks):
        rig.step()
    del rig._tick
    print(json.dumps({"bots": n, "ticks": ticks, "state": rig.state()}))


main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 100)
