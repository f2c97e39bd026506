"""Pick and build the board from arguments (unix) or the platform (boards)."""
import sys


def _opts(argv):
    out = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and i + 1 < len(argv):
            out[a[2:]] = argv[i + 1]
            i += 2
        else:
            raise ValueError("bad argument: " + a)
    return out


def make(argv):
    import gc
    from hub.core import Hub
    gc.collect()            # loading bytecode leaves garbage: clear it before the big buffers
    o = _opts(argv)
    name = o.get("board") or ("unix" if sys.platform in ("linux", "darwin") else sys.platform)
    bots = int(o.get("bots", "16"))
    hub_id = int(o.get("hub-id", "0"), 0)
    if name == "unix":
        from boards.unix import Board
        board = Board(o.get("host", "127.0.0.1:7700"), o.get("bus"),
                      o.get("store", "hubdata"), hang_after_ms=int(o.get("hang-after-ms", "0")))
    elif name == "unix_tty":
        from boards.unix_tty import Board
        board = Board(o.get("bus"), o.get("store", "hubdata"))
    elif name == "null":
        from boards.null import Board
        board = Board()
    elif name == "rp2":
        from boards.rp2 import Board
        board = Board()
    elif name == "stm32":
        from boards.stm32 import Board
        board = Board()
    else:
        raise ValueError("no board module for " + name)
    gc.collect()
    hub = Hub(board, bots, hub_id)
    gc.collect()
    return board, hub
