"""Persistent storage: named files in one directory of the board's filesystem.

Plain ``open``/``os`` so it works on every port with a VFS (littlefs, FAT, the
unix port's directory). Storage errors raise OSError for the caller.

Atomic replace (``write_atomic``), so that a power cut leaves the old or the
new content, never a torn one:

1. write ``NAME.tmp``, flush, sync, close;
2. ``os.rename(NAME.tmp, NAME)``: atomic on POSIX and littlefs.
3. If that rename fails (FAT cannot rename onto an existing file):
   rename ``NAME.tmp`` to ``NAME.new``, remove ``NAME``, rename ``NAME.new``
   to ``NAME``.

A ``.new`` file only ever appears by renaming a complete ``.tmp``, so it is
complete by construction; a ``.tmp`` may be torn and is never trusted. When
``NAME`` is missing and ``NAME.new`` exists (power cut inside step 3),
every access recovers from it. A leftover ``.tmp`` is overwritten by the next
write and never read.
"""
import os

try:
    from errno import ENOENT as _ENOENT
except ImportError:  # pragma: no cover - ports without errno
    _ENOENT = 2
_ENOENT_WASM = 44   # the WebAssembly port's filesystem raises Emscripten's ENOENT

_TMP = ".tmp"
_NEW = ".new"


_fsync = getattr(os, "fsync", None)    # CPython; MicroPython commits on close


def _sync(f):
    f.flush()
    if _fsync is not None:
        try:
            _fsync(f.fileno())
        except OSError:
            pass


def _missing(e):
    return e.args and (e.args[0] == _ENOENT or e.args[0] == _ENOENT_WASM)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError as e:
        if _missing(e):
            return False
        raise


def _recover(path):
    # NAME missing but NAME.new complete: a replace was cut short; finish it.
    if not _exists(path) and _exists(path + _NEW):
        os.rename(path + _NEW, path)


def _commit(path):
    # Replace path by its complete path.tmp.
    tmp = path + _TMP
    try:
        os.rename(tmp, path)
        return
    except OSError:
        pass
    new = path + _NEW  # FAT: no rename onto an existing file
    if _exists(new):
        if _exists(path):
            os.remove(new)
        else:
            os.rename(new, path)
    os.rename(tmp, new)
    if _exists(path):
        os.remove(path)
    os.rename(new, path)


class Store:
    def __init__(self, root):
        root = root.rstrip("/") or "/"
        self.root = root
        path = ""
        for i, part in enumerate(root.split("/")):
            path = part if i == 0 else path + "/" + part
            if part:
                try:
                    os.mkdir(path)
                except OSError:
                    pass  # exists (or cannot be made: stat below says so)
        os.stat(root)
        # the last name's path, and whether it is known whole since the last
        # change to the store: the audit log appends to one file over and
        # over, and each path or recovery check would allocate
        self._name = None
        self._full = None
        self._whole = False

    def _path(self, name):
        if name == self._name:
            return self._full
        if not name or "/" in name or name.endswith(_TMP) or name.endswith(_NEW):
            raise ValueError("bad store name")
        path = self.root + "/" + name
        self._name = name
        self._full = path
        self._whole = False
        return path

    def _recover(self, path):
        # as _recover(path), skipped while nothing changed since it last ran
        if path is self._full:
            if self._whole:
                return
            _recover(path)
            self._whole = True
            return
        _recover(path)

    def _changing(self):
        self._whole = False     # a replace or removal cut short may leave a .new

    def read(self, name):
        """The file's bytes, or None if it does not exist."""
        path = self._path(name)
        try:
            _recover(path)
        except OSError:  # read-only or failing medium: read the copy
            if not _exists(path):
                path = path + _NEW
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            if _missing(e):
                return None
            raise

    def read_at(self, name, offset, buf):
        """Read into buf (bytearray or memoryview) from offset; return the count."""
        path = self._path(name)
        self._recover(path)
        with open(path, "rb") as f:
            f.seek(offset)
            n = f.readinto(buf)
        return n or 0

    def write_atomic(self, name, data):
        path = self._path(name)
        self._changing()
        with open(path + _TMP, "wb") as f:
            f.write(data)
            _sync(f)
        _commit(path)

    def append(self, name, data):
        """Append and sync; a power cut may leave a torn tail (callers check)."""
        path = self._path(name)
        self._recover(path)
        with open(path, "ab") as f:
            f.write(data)
            _sync(f)

    def truncate(self, name, size):
        """Cut the file to size bytes, atomically (copy, then replace)."""
        path = self._path(name)
        _recover(path)
        self._changing()
        mv = memoryview(bytearray(256))
        with open(path, "rb") as src:
            with open(path + _TMP, "wb") as dst:
                left = size
                while left > 0:
                    n = src.readinto(mv[:min(left, 256)])
                    if not n:
                        break
                    dst.write(mv[:n])
                    left -= n
                _sync(dst)
        _commit(path)

    def size(self, name):
        """Size in bytes, or None if the file does not exist."""
        path = self._path(name)
        for p in (path, path + _NEW):
            try:
                return os.stat(p)[6]
            except OSError as e:
                if not _missing(e):
                    raise
        return None

    def remove(self, name):
        """Remove the file (and any half-finished replace); True if it existed."""
        path = self._path(name)
        self._changing()
        found = False
        for p in (path + _NEW, path, path + _TMP):
            try:
                os.remove(p)
                if p != path + _TMP:
                    found = True
            except OSError as e:
                if not _missing(e):
                    raise
        return found

    def names(self):
        """Sorted names of the stored files (a recoverable .new counts)."""
        out = []
        for n in os.listdir(self.root):
            if n.endswith(_TMP):
                continue
            if n.endswith(_NEW):
                n = n[:-len(_NEW)]
            if n not in out:
                out.append(n)
        out.sort()
        return out
