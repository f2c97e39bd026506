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

The firmware's tick allocates nothing, but the rig does (its links, the
bots' frames): before each tick, outside the count, the rig's garbage is
collected, and collection is off inside a tick. Otherwise a collection, or
the allocator searching a long used stretch of the heap for a free block
for a link copy (up to ~3 M instructions), falls inside some tick: the
rig's cost, not the firmware's. Reads that find nothing copy nothing. ``--trace`` adds, per tick, the stages entered in each
piece (wrapped: for finding a long piece, not for counting).
"""
import gc
import json
import sys

from tickbench import steady


def c_links():
    """The null board's link copies (``boards.null._take``/``_put``, which its
    four link calls use) in C (slices) rather than byte by byte."""
    from boards import null

    def take(src, buf):
        # most reads find nothing: no slice then (an allocation inside the
        # tick costs the allocator's search for a free block, the rig's cost)
        n = len(src)
        if n == 0:
            return 0
        if n > len(buf):
            n = len(buf)
            buf[0:n] = memoryview(src)[0:n]
        else:
            buf[0:n] = src
        src[0:n] = b""
        return n

    def put(dst, buf, n, off=0):
        dst.extend(memoryview(buf)[off:off + n])

    null._take = take
    null._put = put


STAGES = (("control", "account"), ("control", "run"), ("control", "limit"),
          ("safety", "run"), ("safety", "conditions"), ("safety", "_sweep"),
          ("commands", "bus_send"), ("telemetry", "run"), ("telemetry", "status"),
          ("telemetry", "bot_states"), ("telemetry", "site_readings"), ("telemetry", "alarm"),
          ("dose", "accrue"), ("dose", "totals"))


def traced(hub, seen):
    """``--trace``: the stages entered between two host polls, per piece
    (wrapped, so a little dearer: for finding a long piece, not for counting)."""
    def wrapped(fn, name):
        def wrap(*args):
            seen.append(name)
            return fn(*args)
        return wrap
    for m, a in STAGES:
        mod = hub_mod(m)
        setattr(mod, a, wrapped(getattr(mod, a), m + "." + a))
    for a in ("_poll_bus", "record", "_log_rx_bad"):
        setattr(hub, a, wrapped(getattr(hub, a), "hub." + a))
    for name, obj in (("log", hub.log), ("state_store", hub.state_store), ("out", hub.out)):
        for a in dir(type(obj)):
            if not a.startswith("__") and callable(getattr(obj, a)):
                setattr(obj, a, wrapped(getattr(obj, a), name + "." + a))
    mod = hub_mod("commands")
    for a in ("host_frame", "check_heartbeat", "stop_found"):
        setattr(mod, a, wrapped(getattr(mod, a), "commands." + a))


def hub_mod(name):
    return __import__("hub." + name, None, None, [name])


def main(n, ticks, rig_io=False, trace=False):
    rig = steady(n)
    hub = rig.hub
    board = rig.board
    if not rig_io:
        c_links()
    session = board.host_session
    seen = []
    pieces = []
    if trace:
        traced(hub, seen)

    def host_session():
        hash(0)                 # a marker callgrind dumps before
        if trace:
            pieces.append(",".join(seen))
            seen[:] = []
        return session()
    board.host_session = host_session
    one = [0]

    per_tick = []

    def tick(now):
        one[0] = now
        gc.collect()            # the rig's garbage, collected outside the count
        gc.disable()            # and never inside it (a MemoryError if the heap ran out)
        for _ in filter(hub.tick, one):
            pass
        gc.enable()
        if trace:
            pieces.append(",".join(seen))
            seen[:] = []
            per_tick.append(pieces[:])
            pieces[:] = []
    rig._tick = tick
    for _ in range(ticks):
        rig.step()
    del rig._tick
    out = {"bots": n, "ticks": ticks, "state": rig.state()}
    if trace:
        out["trace"] = per_tick
    print(json.dumps(out))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]), int(args[1]) if len(args) > 1 else 100, "--rig-io" in sys.argv,
         "--trace" in sys.argv)
