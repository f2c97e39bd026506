"""An in-memory filesystem that loses power on a chosen operation.

The firmware's store (``hub/store.py``) reaches storage through ``open`` and
``os`` only; the tests swap both for this one. Every mutating step (create or
truncate, each ``write``, ``rename``, ``remove``, ``mkdir``) is numbered.
With ``cut_at = k`` the k-th step does not complete: a write leaves a prefix
of its bytes (length chosen by the seed, as a medium losing its last page
would), a rename or remove does not happen, and ``PowerCut`` (not an
OSError, so no firmware ``except`` swallows it) unwinds to the test. What
completed before stays: the store syncs every write.
"""
import errno
import random


class PowerCut(BaseException):
    pass


def _enoent(path):
    return OSError(errno.ENOENT, "No such file or directory", path)


class CutFS:
    def __init__(self, files=None, seed=0):
        self.files = {k: bytearray(v) for k, v in (files or {}).items()}
        self.dirs = {""}
        self.steps = 0
        self.cut_at = None
        self.rng = random.Random(seed)
        self.cut_what = None
        self.os = _Os(self)

    def image(self):
        return {k: bytes(v) for k, v in self.files.items()}

    def step(self, what):
        """Count one mutating step; True if power fails during it."""
        self.steps += 1
        if self.cut_at is not None and self.steps == self.cut_at:
            self.cut_what = what
            return True
        return False

    def open(self, path, mode="r"):
        if "r" in mode:
            if path not in self.files:
                raise _enoent(path)
            return _File(self, path, "r")
        if self.step(("open", mode, path)):
            if "w" in mode:
                self.files[path] = bytearray()       # the truncate happened, nothing after
            raise PowerCut()
        if "w" in mode or path not in self.files:
            self.files[path] = bytearray()
        return _File(self, path, "a")


class _Os:
    def __init__(self, fs):
        self.fs = fs

    def mkdir(self, path):
        if path in self.fs.dirs:
            raise OSError(errno.EEXIST, "exists", path)
        if self.fs.step(("mkdir", path)):
            raise PowerCut()
        self.fs.dirs.add(path)

    def stat(self, path):
        if path in self.fs.files:
            return (0o100644, 0, 0, 1, 0, 0, len(self.fs.files[path]), 0, 0, 0)
        if path in self.fs.dirs:
            return (0o040755, 0, 0, 1, 0, 0, 0, 0, 0, 0)
        raise _enoent(path)

    def rename(self, a, b):
        if a not in self.fs.files:
            raise _enoent(a)
        if self.fs.step(("rename", a, b)):
            raise PowerCut()
        self.fs.files[b] = self.fs.files.pop(a)

    def remove(self, path):
        if path not in self.fs.files:
            raise _enoent(path)
        if self.fs.step(("remove", path)):
            raise PowerCut()
        del self.fs.files[path]

    def listdir(self, root):
        pre = root.rstrip("/") + "/"
        return [p[len(pre):] for p in self.fs.files if p.startswith(pre) and "/" not in p[len(pre):]]

    def fsync(self, fd):
        pass


class _File:
    def __init__(self, fs, path, mode):
        self.fs, self.path, self.mode, self.pos = fs, path, mode, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self):
        d = bytes(self.fs.files[self.path][self.pos:])
        self.pos += len(d)
        return d

    def readinto(self, buf):
        d = self.fs.files[self.path][self.pos:self.pos + len(buf)]
        buf[:len(d)] = d
        self.pos += len(d)
        return len(d)

    def seek(self, off):
        self.pos = off

    def write(self, data):
        data = bytes(data)
        f = self.fs.files[self.path]
        if self.fs.step(("write", self.path, len(data))):
            f.extend(data[:self.fs.rng.randrange(len(data) + 1)])
            raise PowerCut()
        f.extend(data)
        return len(data)

    def flush(self):
        pass

    def fileno(self):
        return 3
