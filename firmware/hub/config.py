"""Pick and build the board: the core imports no board but the one it runs on.

The board is, in this order: ``--board NAME``; ``NAME`` in ``board.py`` (a
one-line module ``nanohub flash`` writes next to ``main.py``); the default of
the port's ``sys.platform`` below. ``NAME`` is a module in ``boards/``, which
takes the options the hub leaves (``Board.from_opts``). A new board is one
new file in ``boards/`` (plus a row here if it is a port's default).
"""
import sys

# sys.platform -> the board module a port runs without being told: names only
DEFAULTS = {"linux": "unix", "darwin": "unix", "rp2": "rp2", "pyboard": "stm32"}


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


def board_name(o):
    """The board module's name for options ``o`` (takes ``board`` out of them)."""
    name = o.pop("board", None)
    if name:
        return name
    try:
        import board            # written at flash time
        return board.NAME
    except ImportError:
        pass
    name = DEFAULTS.get(sys.platform)
    if name is None:
        raise ValueError("no default board for platform %s: pass --board NAME or write "
                         "board.py (NAME = \"...\")" % sys.platform)
    return name


def make(argv):
    import gc
    from hub.core import Hub
    gc.collect()            # loading bytecode leaves garbage: clear it before the big buffers
    o = _opts(argv)
    name = board_name(o)
    bots = int(o.pop("bots", "16"))
    hub_id = int(o.pop("hub-id", "0"), 0)
    board = __import__("boards." + name, None, None, ["Board"]).Board.from_opts(o)
    gc.collect()
    hub = Hub(board, bots, hub_id)
    gc.collect()
    return board, hub
