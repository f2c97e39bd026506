"""The options several verbs share, declared once.

- connection and output, on every verb: ``--port --baud --json --key --timeout``
  (:func:`add_connection`);
- the emulated hub: ``--scenario --seed --bots --heap --speed`` on ``sim``,
  ``demo``, ``study`` and ``record --scenario`` (:func:`add_emulated_hub`), and
  the same names, with the same checks, in ``--port sim:bots=8,seed=3``
  (declared in :mod:`nanohub.host.simport`, which the emulated hub reads too);
- ``--record FILE`` on the verbs that talk to a hub (:func:`add_record_option`);
- ``--hub-id ID`` on ``flash``, ``sim``, ``key init`` and ``key provision``
  (:func:`add_hub_id`), read and checked while the command line is parsed.

Stdlib only: every verb's parser is built on each start.
"""
import argparse

from ..simport import EMULATED, bots, number, sim_port_options  # noqa: F401 - the CLI's too

DEFAULT_SCENARIO = "presentation-night"     # the demo's and the study's


def baud(text):
    return number(int, text, 0, 2 ** 32, ("baud rate", "give a number such as 115200"))


def timeout(text):
    return number(float, text, 0, 1e6, ("timeout", "give seconds above 0, such as 2"))


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


def hub_id(text):
    """A hub id as nanohub info shows it (0x1234abcd; bare hex too): 32 bits."""
    try:
        value = int(text, 0)
    except ValueError:
        try:
            value = int(text, 16)
        except ValueError:
            value = -1
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("bad hub id %r: give it as 0x1234abcd (nanohub info "
                                         "shows it)" % text)
    return value


def add_hub_id(parser, help):
    """``--hub-id ID`` (an int, or None if not given); ``help`` says what the id is for."""
    parser.add_argument("--hub-id", metavar="ID", type=hub_id, help=help)


def add_record_option(p):
    """``--record FILE`` for a verb that talks to a hub (watch, treat, swarm deploy, demo)."""
    p.add_argument("--record", metavar="FILE", help="record the whole session into FILE "
                   "(SQLite; see nanohub report)")
