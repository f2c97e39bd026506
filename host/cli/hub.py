"""Verbs that read or drive the hub: info, status, watch, swarm, treat, estop, arm."""
import time
import sys


def _facts():
    """The schema's shared facts, imported when a verb needs them: the
    protocol module builds the codec, which ``nanohub estop --help`` should
    not wait for."""
    from nanohub.protocol import facts
    return facts


def bot_states():
    """Bot state names as HUB_STATUS counts them, in order."""
    return tuple(n.lower() for n in _facts().BOT_STATES)


def _examples(parser, *lines):
    parser.epilog = "examples:\n" + "\n".join("  " + line for line in lines)


def ack_text(ack):
    if ack.status == "ACCEPTED":
        return "%s: accepted, running on the hub" % ack.command
    return "%s: done" % ack.command


def emit_ack(ctx, ack, **extra):
    ctx.emit(dict(ack.to_dict(), **extra), ack_text(ack))


def parse_bot(text):
    from ..errors import UsageError
    if text is None or str(text).lower() == "all":
        return 0xFF
    try:
        bot = int(text, 0)
    except ValueError:
        bot = -1
    if not 0 <= bot < 0xFF:
        raise UsageError("bad bot %r: give a bot id 0..254 or all" % text)
    return bot


# ------------------------------------------------------------------ info --

def setup_info(p):
    _examples(p, "nanohub --port /dev/ttyACM0 info", "nanohub --port sim --json info")


def run_info(ctx, args):
    from ..errors import NanohubError, NotANanohub
    from ..views import info_dict
    try:
        hub = ctx.hub()
    except NotANanohub as e:
        from ..flash import explain
        why = explain(ctx.port_url(), ctx.args.baud)   # version, memory: can nanohub run there?
        if why:
            raise NotANanohub("%s; %s" % (e, why)) from None
        raise
    info = dict(info_dict(hub.info), url=hub.url)
    try:
        hub.signing_key()
        key = str(hub.key_path or ctx.key_arg() or "given")
    except NanohubError:
        key = None
    info["host_key"] = key
    text = ("hub %(hub_id)s  firmware %(firmware)s  board %(board)s  schema %(schema)s\n"
            "state %(state)s  bots %(bots)d  boots %(boots)d (last reset: %(reset_cause)s)\n"
            % info)
    text += "hub key: %s  counter %d  host key: %s" % (
        "provisioned" if info["keyed"] else "NONE (signed commands will be refused)",
        info["counter"], key or "none (signed commands need --key FILE)")
    if info["estop_latched"]:
        text += "\nEMERGENCY STOP LATCHED: clear with nanohub reset-estop once safe"
    ctx.emit(info, text)


# ---------------------------------------------------------------- status --

def setup_status(p):
    _examples(p, "nanohub --port sim status", "nanohub status --json   # port from $NANOHUB_PORT")


def status_text(st):
    bots = st["bots"]
    counts = ", ".join("%s %d" % (k, bots[k]) for k in bot_states())
    dose = st["dose"]
    from ..tui import fields
    rows = [
        ("state", "%s%s" % (st["state"], "" if st["reason"] == "NONE"
                            else " (reason: %s)" % st["reason"])),
        ("bots", "%d: %s" % (bots["total"], counts)),
        ("dose", "%d / %d micro units (%.1f %%), scale %d %%"
         % (dose["used"], dose["cap"], dose["percent"], st["scale_percent"])),
        ("patient", "sensitivity %.3f of limit" % (st["sens_permille"] / 1000)),
        ("alarms", "%d active, %d unacknowledged HIGH" % (st["alarms"]["active"],
                                                          st["alarms"]["unacked_high"])),
        ("checks", "failing: " + ", ".join(st["failing_checks"])
         if st["failing_checks"] else "all passing"),
        ("link", "bot bus %d %%, hub dropped %d bad frames" % (st["bus_link_percent"],
                                                              st["rx_bad"])),
    ]
    if "host_link" in st:
        rows[-1] = ("link", rows[-1][1] + "; host received %d frames, %d bad" % (
            st["host_link"]["rx_frames"], st["host_link"]["rx_errors"]))
    return fields(rows)


def run_status(ctx, args):
    st = ctx.hub().status()
    ctx.emit(st, status_text(st))


# ----------------------------------------------------------------- watch --

def setup_watch(p):
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: until q or Ctrl-C)")
    from .options import add_record_option
    add_record_option(p)
    _examples(p, "nanohub --port sim watch",
              "nanohub watch --json --duration 10 > telemetry.jsonl")


def run_watch(ctx, args):
    from . import watch
    from .record import maybe_recording
    hub = ctx.hub()
    with maybe_recording(ctx, hub, args):
        return watch.run(ctx, hub, duration=args.duration)


# ----------------------------------------------------------------- swarm --

def setup_swarm(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="every bot with state, site, activity, battery, health")
    d = sub.add_parser("deploy", help="send docked bots to a site")
    d.add_argument("site", help="site index 0..159 or TOOTH-SURFACE, e.g. 14-occlusal")
    d.add_argument("count", type=int, help="how many bots")
    d.add_argument("--wait", type=float, default=5.0, metavar="S",
                   help="seconds to wait for the bots to report from the site (default 5; "
                        "0: do not wait)")
    r = sub.add_parser("recall", help="bring bots back to the dock")
    r.add_argument("bot", nargs="?", default="all", help="bot id (default: all)")
    h = sub.add_parser("hold", help="bots stop delivering and stay at their site")
    h.add_argument("bot", nargs="?", default="all", help="bot id (default: all)")
    _examples(p, "nanohub swarm list", "nanohub swarm deploy 14-occlusal 3",
              "nanohub swarm recall        # every bot", "nanohub swarm recall 7")


def run_swarm(ctx, args):
    from ..errors import UsageError
    from ..plan import parse_site, site_name
    if args.action == "deploy":
        site = parse_site(args.site)
        if not 1 <= args.count <= 255:
            raise UsageError("count must be 1..255, got %d" % args.count)
        hub = ctx.hub()
        if args.count > hub.info["bots"]:
            raise UsageError("count %d is more than the swarm's %d bots (nothing sent)"
                             % (args.count, hub.info["bots"]))
        ack = hub.deploy(site, args.count)
        if ack.detail == 0:
            from ..errors import CheckFailed
            raise CheckFailed("DEPLOY: no bot sent to %s: no docked bot is available (nanohub "
                              "swarm list shows where they are)" % site_name(site),
                              dict(ack.to_dict(), site=site, sent=0, asked=args.count))
        arrived = _arrival(hub, site, ack.detail, args.wait) if args.wait > 0 else None
        text = ack_text(ack)
        if ack.detail < args.count:
            text = "DEPLOY: only %d of %d bots sent (no more docked bots are available)" % (
                ack.detail, args.count)
        if arrived is not None:
            text += "; %d bot(s) at %s%s" % (arrived, site_name(site), "" if _ready(hub) else
                                            " (still on the way: nanohub swarm list shows them)")
        ctx.emit(dict(ack.to_dict(), site=site, sent=ack.detail, asked=args.count,
                      partial=ack.detail < args.count, arrived=arrived), text)
        return
    if args.action in ("recall", "hold"):
        bot = parse_bot(args.bot)
        hub = ctx.hub()
        if bot != 0xFF and bot >= hub.info["bots"]:
            raise UsageError("no bot %d: this hub's swarm has bots 0..%d (nothing sent)"
                             % (bot, hub.info["bots"] - 1))
        emit_ack(ctx, hub.recall(bot) if args.action == "recall" else hub.hold(bot),
                 bot="all" if bot == 0xFF else bot)
        return
    from ..tui import table
    bots = ctx.hub().bots()
    rows = [(b["id"], b["state"], "-" if b["site"] is None else site_name(b["site"]),
             "%d%%" % b["activity"], "%d%%" % b["battery"], "%d%%" % b["health"]) for b in bots]
    counts = {}
    for b in bots:
        counts[b["state"]] = counts.get(b["state"], 0) + 1
    ctx.emit({"bots": bots, "counts": counts}, "%s\n%d bots: %s" % (
        table(("bot>", "state", "site", "activity>", "battery>", "health>"), rows),
        len(bots), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))


def _ready(hub):
    """No deployed bot is still on its way (the BOTS and DEPLOYED checks pass)."""
    return not {"BOTS", "DEPLOYED"} & set(hub.status()["failing_checks"])


def _arrival(hub, site, sent, wait):
    """Bots reporting from ``site`` once the ``sent`` ones do and every deployed bot
    reports, or at the deadline (they take about a second: arming before that is
    refused by the BOTS check)."""
    import time
    end = time.monotonic() + wait
    while True:
        at = sum(1 for b in hub.bots() if b["site"] == site
                 and b["state"] in _facts().BOT_AT_SITE)
        if (at >= max(1, sent) and _ready(hub)) or time.monotonic() >= end:
            return at
        time.sleep(0.1)


# ----------------------------------------------------------------- treat --

def setup_treat(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("start", help="check a plan file and start treating [signed]")
    s.add_argument("plan", help="treatment plan (TOML, see docs/plan-example.toml)")
    s.add_argument("--check", action="store_true", help="only validate the plan; send nothing")
    s.add_argument("--watch", action="store_true",
                   help="stay connected and show the dashboard (keeps the heartbeat)")
    s.add_argument("--duration", type=float, metavar="S",
                   help="with --watch: leave after S seconds (default: until q or Ctrl-C)")
    from .options import add_record_option
    add_record_option(s)
    sub.add_parser("pause", help="pause: bots hold")
    sub.add_parser("resume", help="resume a paused treatment [signed]")
    sub.add_parser("stop", help="end the treatment: bots hold, hub SAFE")
    c = sub.add_parser("scale", help="scale the dose rate, 0..100 %% [signed]")
    c.add_argument("percent", type=int)
    _examples(p, "nanohub treat start --check docs/plan-example.toml",
              "nanohub treat start plan.toml --watch", "nanohub treat pause",
              "nanohub treat stop",
              "",
              "A treatment runs only while a client holds the link and sends",
              "heartbeats: the hub pauses it 1 s after the last one. Without --watch",
              "this command exits at once, so keep 'nanohub watch' running (or use",
              "--watch); 'nanohub treat resume' continues a paused treatment.")


HEARTBEAT_NOTE = ("the treatment runs only while a client holds the link and sends heartbeats: "
                  "the hub pauses it 1 s after this command exits. Keep 'nanohub watch' "
                  "running, or use 'treat start PLAN --watch'; 'nanohub treat resume' "
                  "continues a paused treatment")


def _sites_without_bots(hub, plan):
    """Plan sites where no usable bot reports itself (for a NO_BOTS refusal)."""
    from ..errors import NanohubError
    try:
        bots = hub.bots()
    except NanohubError:
        return None
    usable = _facts().BOT_AT_SITE
    have = {b["site"] for b in bots if b["state"] in usable and b["site"] is not None}
    return [s for s in plan.sites if s.site not in have]


def _no_bots(err, hub, plan):
    """Name every plan site without bots and how to send them."""
    from ..errors import Refused
    from ..plan import site_name
    missing = _sites_without_bots(hub, plan)
    if not missing:
        return err
    names = ", ".join(site_name(s.site) for s in missing)
    first = missing[0]
    return Refused(err.reason, err.detail,
                   "%s refused TREAT_START: no bots at %d plan site(s): %s; deploy them "
                   "first, e.g. nanohub swarm deploy %s %d" % (
                       "hub 0x%08x" % hub.info["hub_id"], len(missing), names,
                       site_name(first.site), first.bots), err.ack)


def run_treat(ctx, args):
    from ..errors import UsageError
    if args.action == "start":
        from ..plan import load
        plan = load(args.plan)          # validated in full before anything is sent
        if args.check:
            notes = plan.above_defaults()
            ctx.emit({"plan": plan.to_dict(), "checked": True, "notes": notes},
                     "%s: plan valid (%d sites, %d bots)" % (
                         args.plan, len(plan.sites), sum(s.bots for s in plan.sites))
                     + "".join("\nnote: " + n for n in notes))
            return
        if args.duration is not None and not args.watch:
            raise UsageError("--duration goes with --watch")
        from .record import maybe_recording
        from ..errors import Refused
        hub = ctx.hub()
        with maybe_recording(ctx, hub, args):
            try:
                ack = hub.treat_start(plan)
            except Refused as e:
                if e.reason != "NO_BOTS":
                    raise
                raise _no_bots(e, hub, plan) from None
            if args.watch:
                from . import watch
                if watch.streams(ctx):      # JSON lines only, the ack first
                    ctx.line(dict({"ok": True}, **ack.to_dict(), plan=plan.to_dict()))
                else:
                    print("%s; watching (the treatment pauses 1 s after this ends)"
                          % ack_text(ack), file=sys.stderr, flush=True)
                return watch.run(ctx, hub, duration=args.duration)
            ctx.emit(dict(ack.to_dict(), plan=plan.to_dict(), note=HEARTBEAT_NOTE),
                     "%s: treatment started, and it pauses 1 s after this command exits\n"
                     "note: %s" % (ack.command, HEARTBEAT_NOTE))
        return
    hub = ctx.hub()
    if args.action == "scale":
        if not 0 <= args.percent <= 100:
            raise UsageError("percent must be 0..100, got %d" % args.percent)
        emit_ack(ctx, hub.dose_scale(args.percent))
        return
    call = {"pause": hub.pause, "resume": hub.resume, "stop": hub.stop_treatment}[args.action]
    emit_ack(ctx, call())


# ----------------------------------------------------------------- estop --

def setup_estop(p):
    p.add_argument("--wait", type=float, default=5.0, metavar="S",
                   help="seconds to wait for every bot's confirmation (default 5)")
    _examples(p, "nanohub estop", "nanohub --port sim estop --json",
              "",
              "Needs no key and no handshake: ESTOP is the first frame sent, and it is",
              "re-sent every 0.1 s until the hub reports every bot confirmed.",
              "Exit 0 only when the hub confirms every bot disabled;",
              "otherwise the unconfirmed bot ids are printed and the exit status is 1.")


def run_estop(ctx, args):
    from ..errors import CheckFailed, LinkError, NanohubError
    from ..views import estop_text
    try:
        # the stop goes first: no handshake, no heartbeat in front of it
        t0 = time.monotonic()
        result = ctx.hub(heartbeat=False, handshake=False).estop(timeout=args.wait)
        took = time.monotonic() - t0
    except NanohubError as e:
        e.args = ("EMERGENCY STOP NOT CONFIRMED: %s; use the hardware stop" % e,)
        raise
    except Exception as e:      # whatever the port raised: the stop did not get through
        raise LinkError("EMERGENCY STOP NOT CONFIRMED: the hub could not be reached (%s: %s); "
                        "use the hardware stop" % (type(e).__name__, e)) from None
    text = estop_text(result)
    out = dict(result.to_dict(), seconds=round(took, 3),
               ack_seconds=None if result.ack_seconds is None else round(result.ack_seconds, 3),
               stop_seconds=round(result.seconds, 3))
    if not result.ok:
        raise CheckFailed(text, out)
    ctx.emit(out, text)


# ------------------------------------------------------ arm, disarm, reset --

def _one_command(method, *notes):
    """(setup, run) of a verb that sends the hub one command without arguments
    (``Hub.METHOD()``) and prints its ACK; ``notes`` follow the example in --help."""
    verb = "nanohub " + method.replace("_", "-")

    def setup(p):
        _examples(p, verb, *notes)

    def run(ctx, args):
        emit_ack(ctx, getattr(ctx.hub(), method)())
    return setup, run


setup_arm, run_arm = _one_command(
    "arm", "",
    "Signed: needs the hub key. A refusal names the failing pre-treatment",
    "checks, e.g. CONSENT (patient consent recorded).")
setup_disarm, run_disarm = _one_command("disarm")
setup_reset_estop, run_reset_estop = _one_command(
    "reset_estop", "",
    "Signed: needs the hub key. Refused while the pre-treatment checks fail;",
    "the refusal names them.")


# ---------------------------------------------------------------- alarms --

def setup_alarms(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="active alarms with priority and state")
    a = sub.add_parser("ack", help="acknowledge latched alarms")
    a.add_argument("code", nargs="?", default="all",
                   help="alarm code name (e.g. BOT_LOST) or number (default: all)")
    _examples(p, "nanohub alarms list", "nanohub alarms ack", "nanohub alarms ack SENS_PAUSE")


def _alarm_code(text):
    from nanohub.protocol import schema

    from ..errors import UsageError
    text = str(text).upper()
    if text in ("ALL", "0"):
        return 0
    if text.isdigit() and int(text) in [v for _, v, _ in schema.ENUMS["ALARM"]]:
        return int(text)
    name = text[6:] if text.startswith("ALARM_") else text
    for n, v, _ in schema.ENUMS["ALARM"]:
        if n == name:
            return v
    raise UsageError("unknown alarm %r: one of %s, or all" % (
        text, ", ".join(n for n, _, _ in schema.ENUMS["ALARM"])))


def run_alarms(ctx, args):
    if args.action == "ack":
        code = _alarm_code(args.code)
        emit_ack(ctx, ctx.hub().ack_alarms(code), code=code)
        return
    from ..tui import table
    alarms = ctx.hub().alarms()
    text = table(("alarm", "prio", "state", "bot>", "site>", "value>"),
                 [(a["code"], a["prio"], a["state"], a["bot"], a["site"], a["value"])
                  for a in alarms]) if alarms else "no active alarms"
    ctx.emit({"alarms": alarms}, text)


# --------------------------------------------------------------- consent --

def setup_consent(p):
    p.add_argument("patient", help="patient id (an integer 0..4294967295)")
    _examples(p, "nanohub consent 104233", "", "Signed: needs the hub key.")


def run_consent(ctx, args):
    from ..errors import UsageError
    try:
        patient = int(args.patient)
    except ValueError:
        patient = -1
    if not 0 <= patient <= 0xFFFFFFFF:
        raise UsageError("patient id must be an integer 0..4294967295, got %r" % args.patient)
    emit_ack(ctx, ctx.hub().consent(patient), patient=patient)


# ---------------------------------------------------------------- params --

def setup_params(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="every parameter with value, bounds, default and unit")
    g = sub.add_parser("get", help="one parameter")
    g.add_argument("name")
    s = sub.add_parser("set", help="set a parameter within its bounds [signed]")
    s.add_argument("name")
    s.add_argument("value", help="an integer, in the parameter's unit")
    _examples(p, "nanohub params list", "nanohub params get hb_pause_ms",
              "nanohub params set hb_pause_ms 800")


PARAM_COLUMNS = ("parameter", "value>", "unit", "min>", "max>", "default>")


def param_row(p):
    return (p["name"], p["value"], p["unit"], p["min"], p["max"], p["default"])


def param_line(p):
    from ..tui import table
    return table(PARAM_COLUMNS, [param_row(p)])


def _public(p):
    return {k: p[k] for k in ("index", "name", "value", "min", "max", "default", "unit")}


def run_params(ctx, args):
    from ..errors import UsageError
    hub = ctx.hub()
    if args.action == "list":
        params = [_public(p) for p in hub.params()]
        from ..tui import table
        ctx.emit({"params": params}, table(PARAM_COLUMNS, [param_row(p) for p in params]))
    elif args.action == "get":
        p = _public(hub.param_get(args.name))
        ctx.emit({"param": p}, param_line(p))
    else:
        try:
            value = int(args.value, 0)
        except ValueError:
            raise UsageError("value must be an integer, got %r" % args.value) from None
        if not -(1 << 31) <= value < (1 << 31):
            raise UsageError("value %d does not fit a 32-bit parameter" % value)
        ack, p = hub.param_set(args.name, value)
        ctx.emit(dict(ack.to_dict(), param=_public(p)), "%s\n%s" % (ack_text(ack), param_line(p)))


def warn(text):
    print("nanohub: " + text, file=sys.stderr, flush=True)
