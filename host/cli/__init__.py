# PYTHON_ARGCOMPLETE_OK
"""``nanohub``: the operator's command line.

    nanohub [--port URL] [--json] [--key FILE] [--timeout S] VERB ...

Exit codes: 0 done; 1 the hub refused (reason printed), or an emergency stop
or log verification did not confirm; 2 usage error (nothing was sent);
3 link error (no port, timeout, not a nanohub, protocol mismatch);
130 interrupted; 70 an internal bug (a traceback is printed: please report it).

Verbs live in the modules of this package; each row of ``VERBS`` registers one
(``setup_<verb>(parser)`` and ``run_<verb>(ctx, args)`` in its module).
A verb's module is imported only when that verb runs (or shows its help), and
heavy modules (construct, pyserial, numpy) only inside the verbs that use them.
"""
import argparse
import json
import os
import signal
import sys
import threading
from contextlib import ExitStack
from functools import partial
from importlib import import_module

from .options import add_connection

EXIT_BUG = 70
EXIT_INTERRUPTED = 130

# verb, module (None: not available yet), one-line help
VERBS = (
    ("ports", "tools", "list serial ports, marking likely MicroPython boards"),
    ("info", "hub", "show the hub's identity: firmware, board, hub id, key"),
    ("status", "hub", "show state and reason, bots by state, dose, alarms, link"),
    ("watch", "hub", "live dashboard; keys: p pause, r resume, e/space EMERGENCY STOP, q quit"),
    ("swarm", "hub", "list bots, deploy them to a site, recall or hold them"),
    ("treat", "hub", "start a treatment plan, pause, resume, scale, stop"),
    ("estop", "hub", "EMERGENCY STOP: disable every bot and confirm each one"),
    ("arm", "hub", "arm the hub after the pre-treatment checks pass"),
    ("disarm", "hub", "return an armed or paused hub to SAFE"),
    ("reset-estop", "hub", "clear a latched emergency stop once checks pass"),
    ("alarms", "hub", "list active alarms or acknowledge them"),
    ("consent", "hub", "record the patient's consent"),
    ("params", "hub", "list, get or set the hub's bounded parameters"),
    ("log", "log", "pull, verify and show the hub's audit log"),
    ("key", "tools", "create a hub key, or provision it to a board"),
    ("sim", "tools", "run an emulated hub (firmware on the MicroPython VM + swarm)"),
    ("serve", "serve", "own the hub's port and share it with any number of local clients"),
    ("flash", "flash", "flash the firmware to a board"),
    ("demo", "demo", "run the end-to-end demonstration on the emulated hub"),
    ("study", "demo", "run many seeded sessions and report outcome statistics"),
    ("record", "record", "record a whole session (telemetry, commands, audit log) into SQLite"),
    ("report", "record", "write a session's HTML report (two sessions: side by side)"),
    ("fleet", "nanohub.host.fleet.cli", "every chair of a clinic at once: status, watch, "
                                        "EMERGENCY STOP, audit logs"),
    ("signals", "nanohub.host.signals.cli", "safety signals across recorded sessions "
                                            "(maximized SPRT)"),
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2), and under
    --json also one JSON object on stdout, like every other failure."""

    json = False            # set by main() from the raw arguments: parsing has failed
    setup = None            # a verb's parser: adds the verb's own arguments when first used

    def ready(self):
        """Add the verb's own arguments now (importing its module), once."""
        setup, self.setup = self.setup, None
        if setup is not None:
            setup(self)
        return self

    def parse_known_args(self, args=None, namespace=None):
        return super(Parser, self.ready()).parse_known_args(args, namespace)

    def format_usage(self):
        return super(Parser, self.ready()).format_usage()

    def format_help(self):
        return super(Parser, self.ready()).format_help()

    def error(self, message):
        text = "%s: error: %s (see %s --help)" % (self.prog, message, self.prog)
        if Parser.json:
            print(json.dumps({"ok": False, "error": "UsageError", "exit": 2, "message": text}),
                  flush=True)
        self.exit(2, text + "\n")


def build_parser(lazy=True):
    """The whole command line. A verb's module is imported only when that verb
    is parsed or its help shown (``lazy``), so ``nanohub estop`` loads the
    stop's code and not the report's or the study's."""
    parser = Parser(prog="nanohub",
                    description="Operate a dental nanobot swarm hub: connect, check, treat, "
                                "watch, stop.",
                    epilog="Exit codes: 0 done, 1 refused by the hub (or a check did not "
                           "confirm), 2 usage error, 3 link error, 130 interrupted, 70 an "
                           "internal bug (please report the traceback). Run 'nanohub VERB "
                           "--help' for examples.")
    add_connection(parser, True)
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    for verb, module, text in VERBS:
        p = sub.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_connection(p, False)
        p.setup = partial(_setup_verb, verb, module)
        if not lazy:
            p.ready()
    return parser


def _setup_verb(verb, module, p):
    if module is None:
        p.epilog = "Not available yet in this release."
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(run=_not_yet)
        return
    mod = import_module(_module_name(module))
    name = verb.replace("-", "_")
    getattr(mod, "setup_" + name)(p)
    p.set_defaults(run=getattr(mod, "run_" + name))
    _nested_globals(p)


def _nested_globals(parser):
    """Let global options follow an action too: nanohub swarm list --json."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_connection(child, False)
                _nested_globals(child)


def _module_name(module):
    return module if module.startswith("nanohub.") else "nanohub.host.cli." + module


class _Version(argparse.Action):
    """--version, looked up only when asked (importlib.metadata is slow to import)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print("nanohub %s" % _version(), flush=True)     # on stdout, as --help
        parser.exit(0)


def _version():
    try:
        from importlib.metadata import version
        return version("nanohub")
    except Exception:
        return "unknown"


def _not_yet(ctx, args):
    from ..errors import UsageError
    raise UsageError("%s: not available yet" % args.verb)


class Context:
    """What a verb needs: the parsed arguments, output, and a connected hub."""

    def __init__(self, args):
        self.args = args
        self.json = args.json
        self.stack = ExitStack()
        self.emulator = None
        self._hub = None

    def port_url(self):
        from ..errors import UsageError
        url = self.args.port or os.environ.get("NANOHUB_PORT")
        if not url:
            raise UsageError("no port given: pass --port URL or set NANOHUB_PORT "
                             "(nanohub ports lists serial ports; --port sim starts an emulated hub)")
        return url

    def key_arg(self):
        return self.args.key or os.environ.get("NANOHUB_KEY") or None

    def start_sim(self, url):
        """Start a private emulated hub for ``sim`` or ``sim:bots=8,scenario=S,seed=N``,
        closed when the command ends."""
        from ..emulate.hub import from_port
        self.emulator = from_port(url)
        self.stack.push(self.emulator)
        return self.emulator

    def hub(self, heartbeat=True, handshake=True):
        """The connected hub (opened once per command, closed when it ends)."""
        if self._hub is not None:
            return self._hub
        from ..client import Hub
        from ..simport import is_sim
        url = self.port_url()
        key = self.key_arg()
        if is_sim(url):
            emu = self.start_sim(url)
            url, key = emu.url, key or emu.key_path
        hub = Hub.open(url, key=key, timeout=self.args.timeout, heartbeat=heartbeat,
                       baudrate=self.args.baud, handshake=handshake)
        self._hub = self.stack.enter_context(hub)
        return self._hub

    def emit(self, obj, text=None):
        """Print the verb's result: JSON object, or text lines."""
        if self.json:
            print(json.dumps(dict({"ok": True}, **obj), default=str), flush=True)
        elif text is not None:
            print(text, flush=True)

    def line(self, obj):
        """One JSON line of a stream."""
        print(json.dumps(obj, default=str), flush=True)


def _on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def _fail(ctx_json, err, code):
    from ..errors import CheckFailed, Refused
    message = str(err)
    if ctx_json:
        obj = {"ok": False, "error": type(err).__name__, "exit": code, "message": message}
        if isinstance(err, CheckFailed):
            obj.update(err.data, ok=False)
        if isinstance(err, Refused):
            obj.update(reason=err.reason, detail=err.detail)
            if err.reason == "CHECKS":
                from ..views import check_names
                obj["failing_checks"] = check_names(err.detail)
        print(json.dumps(obj), flush=True)
    print("nanohub: " + message, file=sys.stderr, flush=True)
    return code


def _json_failure(ctx_json, kind, code, message):
    """Under --json every ending is one JSON object, interrupts and bugs too."""
    if ctx_json:
        try:
            print(json.dumps({"ok": False, "error": kind, "exit": code, "message": message}),
                  flush=True)
        except (BrokenPipeError, ValueError):
            pass


def _from_the_link(err):
    """True when an unexpected exception came out of pyserial or mpremote: the
    link failed in a way they did not type (e.g. a server's odd answer)."""
    if type(err).__module__.split(".")[0] in ("serial", "mpremote"):
        return True
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return name.split(".")[0] in ("serial", "mpremote")


def _quiet_threads(hook=threading.excepthook):
    """pyserial's RFC 2217 reader thread prints a traceback when a server hangs
    up; the link error the verb reports says it in one line instead."""
    def excepthook(info):
        if info.thread is not None and info.thread.name.startswith("pySerial"):
            return
        hook(info)
    threading.excepthook = excepthook


def _complete(parser):
    """Tab completion when the shell asks (argcomplete, an optional dependency:
    pip install 'nanohub[completion]'); it prints the choices and exits."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def main(argv=None):
    parser = build_parser(lazy="_ARGCOMPLETE" not in os.environ)
    _complete(parser)
    Parser.json = "--json" in (sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    from ..errors import UsageError
    if not args.verb:
        if not args.json:
            parser.print_help(sys.stderr)
            return 2
        return _fail(True, UsageError("no verb given (see nanohub --help)"), 2)
    # SIGINT too: a shell starting us in the background ignores it, and every
    # verb must clean up (emulated hubs above all) however it is stopped
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in ("SIGTERM", "SIGHUP"):          # Windows has no SIGHUP
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _on_signal)
    _quiet_threads()
    ctx = Context(args)
    try:
        with ctx.stack:
            rc = args.run(ctx, args)
        return rc or 0
    except KeyboardInterrupt:
        _json_failure(ctx.json, "Interrupted", EXIT_INTERRUPTED, "interrupted")
        print("nanohub: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:             # e.g. nanohub watch --json | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:
        from ..errors import NanohubError
        if isinstance(err, NanohubError):
            return _fail(ctx.json, err, err.exit_code)
        if _from_the_link(err):
            from ..errors import LinkError
            text = str(err).strip().splitlines()
            link = LinkError("link error on %s: %s%s" % (
                args.port or os.environ.get("NANOHUB_PORT") or "the port", type(err).__name__,
                ": " + text[0] if text else ""))
            return _fail(ctx.json, link, link.exit_code)
        import traceback
        traceback.print_exc()
        _json_failure(ctx.json, "InternalError", EXIT_BUG, "internal error: %s: %s" % (
            type(err).__name__, err))
        print("nanohub: internal error (a bug: please report the traceback above)",
              file=sys.stderr)
        return EXIT_BUG

