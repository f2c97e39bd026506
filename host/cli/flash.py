"""``nanohub flash``: put the firmware on a MicroPython board and start it."""
import sys

from .options import add_hub_id, bots

BOARDS = ("auto", "rp2", "stm32", "unix", "all")


def setup_flash(p):
    p.add_argument("--board", choices=BOARDS, default="auto",
                   help="target: auto (ask the board), rp2, stm32, unix (the unix port on a "
                        "terminal), all (--dry-run only)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (files, sizes, bytecode, memory needed) and write "
                        "nothing; without a port --board is required")
    add_hub_id(p, "hub id for a new hub (default: random 0x4exxxxxx; a board that has booted "
                  "the hub keeps its id)")
    p.add_argument("--bots", type=bots, default=16, metavar="N",
                   help="swarm size the hub serves, 1..255 (default 16)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="keep looking for the REPL for S seconds: reset the board meanwhile "
                        "when a nanohub already owns its console")
    p.epilog = ("examples:\n"
                "  nanohub flash --port /dev/ttyACM0 --key hub.key --hub-id 0x4e000001\n"
                "  nanohub flash --port /dev/ttyACM0 --dry-run     # check the board only\n"
                "  nanohub flash --dry-run --board all             # the plans, no board\n"
                "  nanohub flash --port /dev/ttyACM0 --wait 10     # reflash: reset the board now\n\n"
                "--key FILE provisions that key (nanohub key init makes one); without it a board\n"
                "that has a key keeps it, one without gets a new key, stored for the host under\n"
                "$NANOHUB_HOME/keys. Exit codes: 0 flashed and answering, 1 the board cannot\n"
                "take it (reason printed, nothing written), 2 usage, 3 link or not MicroPython.")


def _say(bar):
    def say(text):
        bar.end()
        print("nanohub flash: " + text, file=sys.stderr, flush=True)
    return say


def run_flash(ctx, args):
    import os

    from .. import flash
    from ..errors import UsageError
    from ..views import info_dict
    hub_id = args.hub_id
    if not 1 <= args.bots <= 255:
        raise UsageError("--bots must be 1..255, got %d" % args.bots)
    url = args.port
    if not url and not (args.dry_run and args.board != "auto"):
        url = os.environ.get("NANOHUB_PORT")    # a named board's dry run needs no hub
    if url and (url == "sim" or url.startswith("sim:") or url.startswith("sim?")):
        raise UsageError("--port sim is an emulated hub: there is nothing to flash "
                         "(nanohub sim runs the firmware from this checkout)")
    if args.board == "all" and not (args.dry_run and not url):
        raise UsageError("--board all is for --dry-run without a port")
    if not url:
        if not args.dry_run:
            ctx.port_url()      # raises the usual "no port given" usage error
        if args.board == "auto":
            raise UsageError("--dry-run without a port needs --board rp2, stm32, unix or all")
        plans = flash.dry_run(args.board, hub_id, args.bots)
        ctx.emit({"plans": [p.to_dict() for p in plans]},
                 "\n\n".join(p.text() for p in plans) + "\n\nnothing written (dry run)")
        return 0
    from ..tui import Bar
    bar = Bar("copied", lines=True, bytes=True)     # piped: a line per quarter
    flasher = flash.Flasher(url, args.board, key_file=args.key, hub_id=hub_id, bots=args.bots,
                            wait=args.wait, say=_say(bar), progress=bar, baudrate=args.baud)
    try:
        result = flasher.run(dry=args.dry_run)
    finally:
        bar.end()
    board = result["board"]
    plan = result["plan"]
    if args.dry_run:
        ctx.emit({"board": dict(board), "plan": plan, "dry_run": True},
                 "%s on %s can take nanohub:\n%s\nnothing written (dry run)"
                 % (board.describe(), url, result["text"]))
        return 0
    hub = info_dict(result["hub"])
    key = {"file": "provisioned from %s" % args.key, "new": "a new key provisioned",
           "kept": "the board's key kept"}[plan["key"]]
    if result.get("key_path"):
        key += "; host copy %s" % result["key_path"]
    text = ("flashed %d files (%.1f KB) to %s: %s\nkey: %s\n"
            "nanohub %s runs on %s: hub %s, board %s, %d bots, state %s, key %s"
            % (len(plan["files"]), plan["bytes"] / 1024, url, board.describe(), key,
               hub["firmware"], url, hub["hub_id"], hub["board"], hub["bots"], hub["state"],
               "provisioned" if hub["keyed"] else "MISSING"))
    ctx.emit({"board": dict(board), "plan": plan, "key_path": result.get("key_path"),
              "hub": hub}, text)
    return 0
