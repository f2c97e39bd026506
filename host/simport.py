"""The port URL of a private emulated hub: ``sim``, or ``sim:`` (or ``sim?``)
followed by settings, ``sim:bots=8,scenario=runaway,seed=3``.

The settings are the emulated hub's options (``--scenario --seed --bots --heap
--speed``), with the same types and checks: :data:`EMULATED` is their one
declaration, which the CLI's options and :func:`nanohub.host.emulate.hub.from_port`
both read. Stdlib only: the CLI builds its parser from it on each start.
"""
import argparse


def number(kind, text, low, high, what):
    """``kind(text)`` strictly between ``low`` and ``high``; else an
    ArgumentTypeError naming ``what`` (its name, what to give instead)."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not low < value < high:      # also refuses nan and inf
        raise argparse.ArgumentTypeError("bad %s %r: %s" % (what[0], text, what[1]))
    return value


def bots(text):
    return number(int, text, 0, 256, ("swarm size", "give 1..255 bots"))


def speed(text):
    return number(float, text, 0, 1e6, ("speed", "give a factor above 0, such as 1"))


HEAP = "320k"
"""The emulated hub's MicroPython heap (``-X heapsize``) unless told otherwise:
the hub loaded from source compiles each module as it imports it, and that
needs more than the hub's running state (a flashed board loads .mpy)."""

# name -> (type, metavar, what it is); the order of --help and of sim:KEY=VALUE
EMULATED = {
    "scenario": (str, "NAME", "simulator scenario, a name (nominal, runaway, "
                              "presentation-night...) or a file"),
    "seed": (int, "N", "random seed"),
    "bots": (bots, "N", "swarm size, 1..255"),
    "heap": (str, "SIZE", "MicroPython heap, as -X heapsize"),
    "speed": (speed, "X", "simulated time speed"),
}


def is_sim(url):
    """Whether ``url`` names a private emulated hub rather than a port."""
    return url == "sim" or url.startswith(("sim:", "sim?"))


def sim_port_options(spec):
    """``bots=8,scenario=runaway`` of ``--port sim:...`` as EmulatedHub keyword
    arguments, checked as the options are; ValueError names the bad part."""
    options = {}
    for item in filter(None, spec.replace("&", ",").split(",")):
        name, sep, value = item.partition("=")
        if not sep or name not in EMULATED:
            raise ValueError("use sim or sim:%s" % ",".join(
                "%s=%s" % (n, m) for n, (_, m, _) in EMULATED.items()))
        try:
            options[name] = EMULATED[name][0](value)
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise ValueError("%s: %s" % (name, e)) from None
    return options


def url_options(url):
    """The EmulatedHub keyword arguments of a whole ``sim`` URL; ValueError
    names the bad part."""
    if not is_sim(url):
        raise ValueError("not a sim port URL")
    return sim_port_options(url[4:].lstrip(":?"))
