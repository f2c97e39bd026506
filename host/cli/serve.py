"""``nanohub serve``: own the hub's port and share it with any number of local clients."""
import os
import re
import sys
import time


def setup_serve(p):
    p.add_argument("--name", help="the name clients use, nanohub://NAME (default: from the port)")
    p.add_argument("--tcp", type=int, metavar="PORT",
                   help="also listen on loopback TCP PORT (0 picks a free one); clients then "
                        "use socket://127.0.0.1:PORT")
    p.epilog = ("examples:\n  nanohub --port /dev/ttyACM0 serve\n"
                "  nanohub --port rfc2217://127.0.0.1:7000 serve --name chair1 --tcp 7100\n"
                "  nanohub --port sim serve --name demo\n\n"
                "Prints the URLs clients connect to (first line: nanohub://NAME), then runs\n"
                "until Ctrl-C. In other terminals, at the same time:\n"
                "  nanohub --port nanohub://NAME treat start plan.toml --watch\n"
                "  nanohub --port nanohub://NAME status")


def default_name(url):
    if is_sim(url):
        return "sim"
    base = url.rsplit("/", 1)[-1] if "://" not in url else url.split("://", 1)[1]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.")
    return name or "hub"


def run_serve(ctx, args):
    import json

    from ..errors import UsageError
    from ..link import local
    from ..link.broker import Broker
    from ..simport import is_sim
    url = local.resolve(ctx.port_url())          # a name may stand for a sim's terminal
    if local.is_local(url):
        raise UsageError("%s is already a broker: connect to it directly" % ctx.port_url())
    name = args.name or default_name(url)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name):
        raise UsageError("--name %r: use letters, digits, '.', '_' or '-' (at most 40)" % name)
    hub_url, kind, emu = url, "serve", None
    if is_sim(url):
        emu = ctx.start_sim(url)
        hub_url, kind = emu.url, "sim"

    def log(text):
        print("nanohub serve: " + text, file=sys.stderr, flush=True)
    broker = ctx.stack.enter_context(Broker(hub_url, name, tcp=args.tcp, kind=kind, log=log))
    d = broker.describe()
    if emu is not None:
        d["sim"] = emu.describe()
    if ctx.json:
        print(json.dumps(d), flush=True)
    else:
        for u in broker.urls():
            print(u, flush=True)
        print("serving hub %s at %s to any number of clients; connect with: nanohub --port %s "
              "status   (Ctrl-C stops)" % (d["hub_id"], url, broker.name_url), flush=True)
    try:
        while True:
            if emu is not None:
                problem = emu.alive()
                if problem:
                    from ..errors import LinkError
                    raise LinkError(problem)
            time.sleep(0.2)
    except KeyboardInterrupt:
        st = broker.stats
        print("nanohub serve: stopped (pid %d): %d clients served, %d frames to the hub, "
              "%d reconnects, %d frames over a client's budget dropped"
              % (os.getpid(), st["clients"], st["to_hub"], st["reconnects"],
                 st["dropped_budget"]), file=sys.stderr, flush=True)
        return 0
