"""Running endpoints (``nanohub serve``, ``nanohub sim``) announce themselves here.

Each endpoint writes one small JSON file into a per-user runtime directory while
it runs and removes it when it stops; ``nanohub ports`` lists them and a direct
opener of a held port finds the holder. A file whose process is gone is stale
and is pruned on read, so a crashed endpoint never shows as running.

Entry fields: ``kind`` ("serve" or "sim"), ``name`` (what ``nanohub://NAME``
resolves), ``url`` (what a client passes as ``--port``), ``pid``, ``port`` (the
device or URL the endpoint owns, "" for an emulated hub) and ``started``
(Unix time).
"""
import json
import os
import tempfile
import time

ENV_DIR = "NANOHUB_RUNTIME_DIR"


def runtime_dir():
    """Per-user directory for endpoint files (created 0700 on first use)."""
    path = os.environ.get(ENV_DIR)
    if not path:
        base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
        path = os.path.join(base, "nanohub-%d" % os.getuid())
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register(kind, name, url, port="", pid=None):
    """Announce an endpoint; returns the file path to pass to ``unregister``."""
    entry = {"kind": kind, "name": name, "url": url, "pid": pid or os.getpid(),
             "port": port, "started": round(time.time(), 3)}
    path = os.path.join(runtime_dir(), "%s-%s.json" % (kind, name))
    tmp = path + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(entry, f)
    os.replace(tmp, path)
    return path


def unregister(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def entries():
    """Live endpoints, oldest first; stale files are removed."""
    out = []
    d = runtime_dir()
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".json"):
            continue
        path = os.path.join(d, fn)
        try:
            with open(path) as f:
                e = json.load(f)
            pid = int(e["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            unregister(path)
            continue
        out.append(e)
    out.sort(key=lambda e: e.get("started", 0))
    return out


def find(name):
    """The live endpoint called ``name``, or None."""
    for e in entries():
        if e.get("name") == name:
            return e
    return None


def holder(port):
    """The live endpoint that owns device or URL ``port``, or None."""
    for e in entries():
        if port and e.get("port") == port:
            return e
    return None
