"""A clinic file: one entry per chair, with a name and a port URL.

    # clinic.toml
    [[chair]]
    name = "chair-1"
    port = "socket://10.0.0.11:7000"     # any URL the CLI accepts
    [[chair]]
    name = "chair-2"
    port = "nanohub://chair-2"           # a `nanohub serve` endpoint
    key = "keys/chair-2.key"             # optional: for signed commands
    [[chair]]
    name = "bench"
    port = "sim:bots=8"                  # a private emulated hub

Relative key paths are taken from the clinic file's folder.
"""
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Chair:
    name: str
    port: str
    key: str = None

    @property
    def is_sim(self):
        from ..simport import is_sim
        return is_sim(self.port)


def load_clinic(path):
    """The chairs of a clinic file, in file order; UsageError names what is wrong."""
    from ..tomlfile import load
    path = Path(path)
    data = load(path, UsageError, "clinic file %s" % path)
    return parse_clinic(data, path)


def parse_clinic(data, path="clinic file"):
    entries = data.get("chair")
    if not isinstance(entries, list) or not entries:
        raise UsageError("%s names no chairs: add [[chair]] entries with name and port" % path)
    chairs, seen = [], set()
    base = Path(path).parent if isinstance(path, Path) else Path(".")
    for i, e in enumerate(entries, 1):
        if not isinstance(e, dict):
            raise UsageError("%s: chair %d is not a table" % (path, i))
        extra = set(e) - {"name", "port", "key"}
        if extra:
            raise UsageError("%s: chair %d has unknown field(s) %s (name, port, key)"
                             % (path, i, ", ".join(sorted(extra))))
        name, port, key = e.get("name"), e.get("port"), e.get("key")
        if not isinstance(name, str) or not _NAME.match(name):
            raise UsageError("%s: chair %d needs a name of letters, digits, '.', '_' or '-' "
                             "(got %r)" % (path, i, name))
        if name in seen:
            raise UsageError("%s: two chairs are named %r" % (path, name))
        if not isinstance(port, str) or not port.strip():
            raise UsageError("%s: chair %r needs a port URL" % (path, name))
        if key is not None:
            if not isinstance(key, str):
                raise UsageError("%s: chair %r: key must be a file path" % (path, name))
            key = str(base / key)
        seen.add(name)
        chairs.append(Chair(name, port.strip(), key))
    return chairs
