"""The host's key store: one 32-byte key per hub, and its command counter.

Layout under ``$NANOHUB_HOME`` (default ``~/.config/nanohub``)::

    keys/<hub id as 8 hex digits>.key       32 raw bytes, mode 0600
    keys/<hub id as 8 hex digits>.counter   last counter used, decimal

The counter of signed commands must rise strictly. The host signs with
max(its own last counter, the hub's reported high-water mark) + 1 and
persists it before sending, so neither a lost file nor another host that
talked to the hub in between leaves it stuck on a stale counter.
"""
try:
    import fcntl
except ImportError:             # Windows: msvcrt locks instead
    fcntl = None
import os
import secrets
from pathlib import Path

from .errors import KeyMissing, UsageError

KEY_SIZE = 32
COUNTER_MAX = 0xFFFFFFFF


def home():
    return Path(os.environ.get("NANOHUB_HOME") or Path.home() / ".config" / "nanohub")


def store_dir():
    return home() / "keys"


def key_path(hub_id):
    return store_dir() / ("%08x.key" % hub_id)


def counter_path(hub_id):
    return store_dir() / ("%08x.counter" % hub_id)


def new_key():
    return secrets.token_bytes(KEY_SIZE)


def write_private(path, data):
    """Write bytes atomically (temp file, then rename) with mode 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp%d" % os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_key(path):
    """Read a key file: 32 raw bytes (or 64 hex digits, for hand-made files)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError("key file %s not found: create one with nanohub key init" % path) from None
    except OSError as e:
        raise UsageError("cannot read key file %s: %s" % (path, e.strerror or e)) from None
    if len(data) != KEY_SIZE:
        try:
            data = bytes.fromhex(data.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            pass
    if len(data) != KEY_SIZE:
        raise UsageError("key file %s is not a nanohub key (want %d raw bytes): "
                         "create one with nanohub key init" % (path, KEY_SIZE))
    return data


def find_key(hub_id, explicit=None):
    """(key bytes, path) for a hub: ``explicit`` path if given, else the store."""
    if explicit is not None:
        return load_key(explicit), Path(explicit)
    path = key_path(hub_id)
    if not path.exists():
        raise KeyMissing("no key for hub 0x%08x in %s: pass --key FILE, or store the hub's key "
                         "there (nanohub key init --hub-id 0x%08x, then flash it with "
                         "nanohub flash --key FILE)" % (hub_id, store_dir(), hub_id))
    return load_key(path), path


def save_key(hub_id, key):
    """Install a key in the store for a hub; returns its path."""
    path = key_path(hub_id)
    write_private(path, key)
    return path


def remove_key(hub_id):
    """Forget a hub: its key, counter and counter lock."""
    counter = counter_path(hub_id)
    for path in (key_path(hub_id), counter, counter.with_name(counter.name + ".lock")):
        path.unlink(missing_ok=True)


class Counter:
    """The persisted counter of signed commands for one hub."""

    def __init__(self, hub_id):
        self.path = counter_path(hub_id)

    def _read(self):
        try:
            return int(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            return 0           # a torn file: the hub's high-water mark takes over

    def last(self):
        return self._read()

    def next(self, hub_counter=0):
        """Reserve and persist the next counter above both marks."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a") as lf:
            _lock(lf)
            value = max(self._read(), hub_counter) + 1
            if value > COUNTER_MAX:
                raise UsageError("the command counter of hub %s is exhausted: rotate the key"
                                 % self.path.stem)
            write_private(self.path, b"%d\n" % value)
            return value


def _lock(f):
    """An exclusive lock on open file ``f`` until it closes (one signer at a time)."""
    if fcntl is not None:
        fcntl.flock(f, fcntl.LOCK_EX)
        return
    import msvcrt
    f.seek(0)
    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
