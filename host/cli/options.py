"""The options several verbs share, declared once.

- connection and output, on every verb: ``--port --baud --json --key --timeout``
  (:func:`add_connection`);
- the emulated hub: ``--scenario --seed --bots --heap --speed`` on ``sim``,
  ``demo``, ``study`` and ``record --scenario`` (:func:`add_emulated_hub`), and
  the same names, with the same checks, in ``--port sim:bots=8,seed=3``
  (:func:`sim_port_options`);
- ``--record FILE`` on the verbs that talk to a hub (:func:`add_record_option`).

Stdlib only: every verb's parser is built on each start.
"""
import argparse

DEFAULT_SCENARIO = "presentation-night"     # the demo's and the study's


def _number(kind, text, low, high, what):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not low < value < high:      # also refuses nan and inf
        raise argparse.ArgumentTypeError("bad %s %r: %s" % (what[0], text, what[1]))
    return value


def baud(text):
    return _number(int, text, 0, 2 ** 32, ("baud rate", "give a number such as 115200"))


def timeout(text):
    return _number(float, text, 0, 1e6, ("timeout", "give seconds above 0, such as 2"))


def bots(text):
    return _number(int, text, 0, 256, ("swarm size", "give 1..255 bots"))


def speed(text):
    return _number(float, text, 0, 1e6, ("speed", "give a factor above 0, such as 1"))


def add_connection(parser, defaults):
    """The global options; on a verb's parser (``defaults`` False) they only
    override what was given before the verb: nanohub --json status == nanohub status --json."""
    def d(value):
        return value if defaults else argparse.SUPPRESS
    g = parser.add_argument_group("connection and output")
    g.add_argument("--port", "-p", metavar="URL", default=d(None),
                   help="hub port: /dev/ttyACM0, COM3, socket://HOST:PORT, rfc2217://..., or "
                        "sim for a private emulated hub (default: $NANOHUB_PORT)")
    g.add_argument("--baud", "-b", metavar="N", type=baud, default=d(115200),
                   help="baud rate for ports that have one: devices, rfc2217:// (default "
                        "115200; ignored by socket://)")
    g.add_argument("--json", action="store_true", default=d(False),
                   help="machine-readable output: one JSON object (JSON lines for streams)")
    g.add_argument("--key", "-k", metavar="FILE", default=d(None),
                   help="hub key for signed commands (default: $NANOHUB_KEY, else the key "
                        "store entry for the hub id)")
    g.add_argument("--timeout", "-t", metavar="S", type=timeout, default=d(2.0),
                   help="seconds to wait for the hub to answer (default 2)")


# name -> (type, metavar, what it is); the order of --help and of sim:KEY=VALUE
EMULATED = {
    "scenario": (str, "NAME", "simulator scenario, a name (nominal, runaway, "
                              "presentation-night...) or a file"),
    "seed": (int, "N", "random seed"),
    "bots": (bots, "N", "swarm size, 1..255"),
    "heap": (str, "SIZE", "MicroPython heap, as -X heapsize"),
    "speed": (speed, "X", "simulated time speed"),
}
FROM_SCENARIO = object()        # a default: the scenario's own value


def add_emulated_hub(parser, when=None, help=None, **defaults):
    """``--NAME`` for each emulated-hub setting in ``defaults`` (its default,
    or :data:`FROM_SCENARIO`); ``when`` prefixes the help (e.g. "with
    --scenario"), ``help`` replaces the text of some (name -> text)."""
    group = parser.add_argument_group("emulated hub")
    for name, (kind, metavar, text) in EMULATED.items():
        if name not in defaults:
            continue
        default = defaults[name]
        text = (help or {}).get(name, text)
        text += " (default: the scenario's)" if default is FROM_SCENARIO else \
            " (default %s)" % default
        if when:
            text = "%s: %s" % (when, text)
        group.add_argument("--" + name, type=kind, metavar=metavar,
                           default=None if default is FROM_SCENARIO else default,
                           help=text.replace("%", "%%"))


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


def add_record_option(p):
    """``--record FILE`` for a verb that talks to a hub (watch, treat, swarm deploy, demo)."""
    p.add_argument("--record", metavar="FILE", help="record the whole session into FILE "
                   "(SQLite; see nanohub report)")
