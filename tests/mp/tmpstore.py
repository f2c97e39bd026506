"""A Store in a fresh temporary directory, removed afterwards (MicroPython and CPython).

    with TmpStore() as st:
        st.write_atomic("x", b"1")
"""
import os

from hub.store import Store

_seq = [0]


def _rmtree(path):
    for name in os.listdir(path):
        p = path + "/" + name
        try:
            os.remove(p)
        except OSError:
            _rmtree(p)
    os.rmdir(path)


def _unique():
    _seq[0] += 1
    r = os.urandom(4) if hasattr(os, "urandom") else b"\0\0\0\0"
    return "%s-%d" % ("".join("%02x" % x for x in r), _seq[0])


class TmpStore:
    def __init__(self):
        base = os.getenv("TMPDIR") or "/tmp"
        self.path = base.rstrip("/") + "/nanohub-mp-" + _unique()
        self.store = None

    def __enter__(self):
        self.store = Store(self.path)
        return self.store

    def __exit__(self, *exc):
        try:
            _rmtree(self.path)
        except OSError:
            pass
        return False
