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

The null board moves link bytes one by one in bytecode (it must allocate
nothing in the memory tests); a board's UART reads and writes them in C.
Here its four link calls copy by slice instead, in C as on a board (they
allocate a little, which this count does not mind): what is counted is the
firmware, not the rig's byte loops. ``--rig-io`` keeps the byte loops.
"""
import json
import sys

from tickbench import steady


def c_links(board):
    """The null board's link calls, copying in C (slices) rather than byte by byte."""
    def take(src, buf):
        n = len(src)
        if n > len(buf):
            n = len(buf)
        buf[0:n] = src[0:n]
        src[0:n] = b""
        return n

    def host_read(buf):
        return take(board.host_in, buf)

    def bus_read(buf):
        return take(board.bus_in, buf)

    def host_write(buf, off, n):
        if not board.connected:
            return 0
        room = board.room
        if room is not None:
            if n > room:
                n = room
            board.room = room - n
        board.host_out.extend(memoryview(buf)[off:off + n])
        return n

    def bus_write(buf, n):
        board.bus_out.extend(memoryview(buf)[0:n])
    board.host_read = host_read
    board.bus_read = bus_read
    board.host_write = host_write
    board.bus_write = bus_write


def main(n, ticks, rig_io=False):
    rig = steady(n)
    hub = rig.hub
    board = rig.board
    if not rig_io:
        c_links(board)
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


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]), int(args[1]) if len(args) > 1 else 100, "--rig-io" in sys.argv)
