"""Verbs that need no hub: ports, key, sim."""
import sys
import time

from .options import add_emulated_hub, add_hub_id
from ..simport import HEAP

# USB vendor ids of boards that usually run MicroPython
VENDORS = {
    0x2E8A: "Raspberry Pi",
    0xF055: "MicroPython",
    0x0483: "STMicroelectronics",
    0x239A: "Adafruit",
    0x303A: "Espressif",
}


# ----------------------------------------------------------------- ports --

NETWORK_HINT = ("serial servers (ser2net, RFC 2217) are not discovered: reach one with "
                "--port rfc2217://HOST:PORT?ign_set_control or --port socket://HOST:PORT "
                "(raw TCP); docs/boards.md shows a ser2net setup")


def setup_ports(p):
    p.epilog = ("examples:\n  nanohub ports\n  nanohub ports --json\n\n"
                "Lists serial ports (those whose USB vendor usually ships MicroPython boards\n"
                "are marked), then the running nanohub serve and nanohub sim endpoints with\n"
                "the URL to pass as --port.")


def serial_ports():
    """pyserial's serial ports, likely MicroPython boards marked."""
    from serial.tools import list_ports
    ports = []
    for info in sorted(list_ports.comports(), key=lambda i: i.device):
        vendor = VENDORS.get(info.vid) if info.vid is not None else None
        ports.append({
            "device": info.device, "description": info.description, "hwid": info.hwid,
            "vid": info.vid, "pid": info.pid, "serial_number": info.serial_number,
            "manufacturer": info.manufacturer, "micropython_likely": vendor is not None,
            "vendor": vendor,
        })
    return ports


def run_ports(ctx, args):
    from ..link import registry
    ports = serial_ports()
    endpoints = registry.entries()
    lines = []
    for port in ports:
        ids = "%04x:%04x" % (port["vid"], port["pid"]) if port["vid"] is not None else "-"
        mark = "  <- likely MicroPython board (%s)" % port["vendor"] if port["vendor"] else ""
        holder = registry.holder(port["device"])
        if holder is not None:
            mark += "  (held by nanohub %s %s: use --port %s)" % (
                holder["kind"], holder["name"], holder["url"])
        lines.append("%-20s %-10s %s%s" % (port["device"], ids, port["description"], mark))
    if not lines:
        lines = ["no serial ports found"]
    if endpoints:
        lines.append("")
        lines.append("running nanohub endpoints:")
        for e in endpoints:
            what = ("emulated hub" if e["kind"] == "sim" else
                    "broker for %s" % e["port"] if e.get("port") else e["kind"])
            lines.append("  %-5s %-16s --port %-32s pid %-7s %s" % (
                e["kind"], e["name"], e["url"], e["pid"], what))
    else:
        lines.append("no running nanohub serve or sim (nanohub sim starts an emulated hub)")
    lines.append(NETWORK_HINT)
    ctx.emit({"ports": ports, "endpoints": endpoints, "network": NETWORK_HINT},
             "\n".join(lines))


# ------------------------------------------------------------------- key --

def setup_key(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    i = sub.add_parser("init", help="create a random 32-byte hub key")
    i.add_argument("--out", "-o", metavar="FILE", help="key file to write (default: hub.key)")
    add_hub_id(i, "also install it in the key store for this hub id (e.g. 0x1234abcd)")
    i.add_argument("--force", action="store_true", help="overwrite an existing key file")
    pv = sub.add_parser("provision", help="write a key (--key FILE) to a board at its "
                                          "MicroPython REPL, over mpremote")
    pv.add_argument("--dest", default="hub.key",
                    help="file on the board the firmware reads the key from (default hub.key)")
    add_hub_id(pv, "also install the key in the host key store for this hub id")
    p.epilog = ("examples:\n  nanohub key init --out hub.key\n"
                "  nanohub key init --out hub.key --hub-id 0x1234abcd\n"
                "  nanohub --port /dev/ttyACM0 --key hub.key key provision --hub-id 0x1234abcd\n"
                "  nanohub flash --key hub.key     # or provision at flash time\n\n"
                "provision needs the board at its MicroPython REPL (the nanohub firmware not\n"
                "running: it never takes a key in the clear) and mpremote (pip install\n"
                "'nanohub[mcu]').\n\n"
                "Keys live in $NANOHUB_HOME/keys/<hub id>.key (default ~/.config/nanohub),\n"
                "mode 0600, with the command counter beside them.")


def run_key(ctx, args):
    from .. import keys
    from ..errors import UsageError
    if args.action == "provision":
        return provision(ctx, args)
    import os
    path = args.out or "hub.key"
    hub_id = args.hub_id
    if os.path.exists(path) and not args.force:
        raise UsageError("%s exists: refusing to overwrite a key (add --force, or choose "
                         "--out FILE)" % path)
    key = keys.new_key()
    keys.write_private(path, key)
    out = {"key": os.path.abspath(path)}
    text = "wrote a new hub key to %s (mode 0600)" % path
    if hub_id is not None:
        stored = keys.save_key(hub_id, key)
        out.update(hub_id="0x%08x" % hub_id, stored=str(stored))
        text += "\ninstalled for hub 0x%08x in %s" % (hub_id, stored)
    text += "\nnext: provision it to the hub with nanohub flash --key %s" % path
    ctx.emit(out, text)


def provision(ctx, args):
    """Copy the key to the board's storage with mpremote (raw REPL), then read it back."""
    import hashlib
    import shutil
    import subprocess
    from pathlib import Path

    from .. import keys
    from ..client import Hub
    from ..errors import LinkError, NotANanohub, UsageError
    url = ctx.port_url()
    if url == "sim" or url.startswith("sim:"):
        raise UsageError("an emulated hub gets its key from nanohub sim (see its --json key path)")
    if not ctx.key_arg():
        raise UsageError("say which key to provision: --key FILE (create one with nanohub key init)")
    key = keys.load_key(ctx.key_arg())
    try:
        Hub.open(url, timeout=min(ctx.args.timeout, 1.5), heartbeat=False,
                 baudrate=ctx.args.baud).close()
    except NotANanohub:
        pass                             # a REPL (or something else): mpremote will tell
    else:
        raise UsageError("the nanohub firmware is running on %s and never takes a key in the "
                         "clear: stop it at the REPL, or provision at flash time with "
                         "nanohub flash --key FILE" % url)
    import sys
    mpremote = shutil.which("mpremote", path=str(Path(sys.executable).parent)) or \
        shutil.which("mpremote")
    if not mpremote:
        raise UsageError("mpremote is not installed: pip install 'nanohub[mcu]'")
    dest = args.dest.lstrip(":")
    check = ("import hashlib,binascii;print(binascii.hexlify(hashlib.sha256("
             "open(%r,'rb').read()).digest()).decode())" % dest)
    argv = [mpremote, "connect", url, "resume", "fs", "cp", str(ctx.key_arg()), ":" + dest,
            "+", "exec", check]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise LinkError("mpremote did not finish within 60 s on %s" % url) from None
    digest = hashlib.sha256(key).hexdigest()
    if proc.returncode != 0 or digest not in proc.stdout:
        why = (proc.stderr or proc.stdout).strip().splitlines()
        raise LinkError("provisioning over %s failed: %s" % (url, why[-1] if why else
                                                              "the key did not read back"))
    out = {"port": url, "dest": dest, "sha256": digest}
    text = "key written to %s on %s and read back (sha256 %s...)" % (dest, url, digest[:16])
    if args.hub_id is not None:
        hub_id = args.hub_id
        out.update(hub_id="0x%08x" % hub_id, stored=str(keys.save_key(hub_id, key)))
        text += "\ninstalled for hub 0x%08x in %s" % (hub_id, out["stored"])
    ctx.emit(out, text)


# ------------------------------------------------------------------- sim --

def setup_sim(p):
    add_emulated_hub(p, scenario="nominal", seed=1, bots=16, heap=HEAP, speed=1.0)
    p.add_argument("--store", metavar="DIR",
                   help="keep the hub's storage (key, params, log) in DIR (default: temporary)")
    add_hub_id(p, "hub id to assign (default: random 0x51xxxxxx)")
    p.add_argument("--pty", action="store_true",
                   help="run the hub on a pseudo-terminal (the unix_tty board) and print its "
                        "path, for ser2net, socat, minicom or mpremote")
    p.add_argument("--name", metavar="NAME",
                   help="the name clients use, nanohub://NAME, and nanohub ports shows "
                        "(default sim-HUBID)")
    p.epilog = ("examples:\n  nanohub sim\n  nanohub sim --bots 64 --scenario runaway --seed 7\n"
                "  nanohub sim --name chair1    # clients use --port nanohub://chair1\n"
                "  nanohub sim --json            # one JSON object: url, key, hub_id, pids\n"
                "  nanohub sim --pty             # the hub on /dev/pts/N (see docs/boards.md)\n\n"
                "Prints the URL to connect on its first line, then runs until Ctrl-C;\n"
                "any number of terminals can use it at once (a broker shares the hub):\n"
                "nanohub --port URL status")


def _sim_broker(ctx, emu, name):
    """The broker in front of the emulated hub: any number of clients share it,
    and none takes the hub from another."""
    from ..link.broker import Broker
    return ctx.stack.enter_context(Broker(emu.url, name, kind="sim"))


def run_sim(ctx, args):
    import json

    from ..emulate.hub import EmulatedHub
    from ..errors import LinkError
    hub_id = args.hub_id
    from ..link import registry
    emu = ctx.stack.enter_context(EmulatedHub(
        bots=args.bots, scenario=args.scenario, seed=args.seed, heap=args.heap,
        speed=args.speed, store=args.store, hub_id=hub_id, pty=args.pty))
    name = args.name or "sim-%08x" % emu.hub_id
    if args.pty:
        # the bare pseudo-terminal, for serial tools (nanohub serve --port PATH shares it)
        entry = registry.register("sim", name, emu.url)
        ctx.stack.callback(registry.unregister, entry)
        d = dict(emu.describe(), name=name)
        urls, connect = [emu.url], emu.url
    else:
        broker = _sim_broker(ctx, emu, name)
        d = dict(emu.describe(), url=broker.unix_url, urls=broker.urls(), name=name,
                 direct_url=emu.url)
        urls, connect = broker.urls(), broker.name_url
    if ctx.json:
        print(json.dumps(dict({"ok": True}, **d)), flush=True)
    else:
        for url in urls:
            print(url, flush=True)
        print("emulated hub %s: %d bots, scenario %s, seed %d; key %s" % (
            d["hub_id"], emu.bots, emu.scenario, emu.seed, d["key"]), flush=True)
        for note in emu.notes:
            print("note: " + note, flush=True)
        print("connect with: nanohub --port %s status   (Ctrl-C stops the hub)" % connect,
              flush=True)
    try:
        while True:
            problem = emu.alive()
            if problem:
                raise LinkError(problem)
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("nanohub sim: stopped", file=sys.stderr, flush=True)
        return 0
