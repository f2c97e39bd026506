"""Store: atomic replace leaves old or new across power cuts at every step."""
import os

from mptest import eq, raises, true

from hub import store as store_mod
from hub.store import Store
from tmpstore import TmpStore


class PowerCut(Exception):
    """Not an OSError: the store must not mistake it for a failed rename."""


class CutOs:
    """os for hub.store that loses power before the n-th rename/remove, and
    can behave like FAT (no rename onto an existing file)."""

    def __init__(self, cut_at, fat):
        self.cut_at, self.fat, self.ops = cut_at, fat, 0
        self.stat, self.mkdir, self.listdir = os.stat, os.mkdir, os.listdir

    def _op(self):
        if self.ops == self.cut_at:
            raise PowerCut()
        self.ops += 1

    def rename(self, a, b):
        self._op()
        if self.fat:
            try:
                os.stat(b)
                raise OSError(17)  # EEXIST
            except OSError as e:
                if e.args[0] != 2:
                    raise
        os.rename(a, b)

    def remove(self, p):
        self._op()
        os.remove(p)


def with_os(fake, fn, *args):
    store_mod.os = fake
    try:
        return fn(*args)
    finally:
        store_mod.os = os


def test_read_write_size_remove_names():
    with TmpStore() as st:
        eq(st.read("a"), None)
        eq(st.size("a"), None)
        st.write_atomic("a", b"hello")
        eq(st.read("a"), b"hello")
        eq(st.size("a"), 5)
        st.write_atomic("a", b"bye")
        eq(st.read("a"), b"bye")
        st.append("b", b"12")
        st.append("b", bytearray(b"34"))
        eq(st.read("b"), b"1234")
        eq(st.names(), ["a", "b"])
        true(st.remove("a"))
        true(not st.remove("a"))
        eq(st.names(), ["b"])


def test_read_at_and_truncate():
    with TmpStore() as st:
        st.write_atomic("f", bytes(range(100)))
        buf = bytearray(10)
        eq(st.read_at("f", 95, buf), 5)
        eq(bytes(buf[:5]), bytes(range(95, 100)))
        eq(st.read_at("f", 10, memoryview(buf)[2:6]), 4)
        eq(bytes(buf[2:6]), bytes(range(10, 14)))
        st.truncate("f", 600 // 10)
        eq(st.read("f"), bytes(range(60)))


def test_helper_files_are_not_names_and_bad_names_are_refused():
    with TmpStore() as st:
        st.write_atomic("x", b"1")
        with open(st.root + "/y.tmp", "wb") as f:
            f.write(b"torn")
        eq(st.names(), ["x"])
        for bad in ("", "a/b", "x.tmp", "x.new"):
            raises(ValueError, st.read, bad)


def test_storage_errors_raise_oserror():
    with TmpStore() as st:
        st.write_atomic("file", b"1")
        raises(OSError, Store, st.root + "/file/sub")
        os.mkdir(st.root + "/dir")
        raises(OSError, st.read, "dir")


def test_torn_tmp_is_never_read():
    with TmpStore() as st:
        with open(st.root + "/first.tmp", "wb") as f:
            f.write(b"to")  # first write ever, cut while writing
        eq(st.read("first"), None)
        st.write_atomic("old", b"OLD")
        with open(st.root + "/old.tmp", "wb") as f:
            f.write(b"NE")
        eq(st.read("old"), b"OLD")
        st.write_atomic("old", b"NEW")
        eq(st.read("old"), b"NEW")


def test_complete_copy_is_recovered_when_the_file_is_missing():
    with TmpStore() as st:
        with open(st.root + "/p.new", "wb") as f:
            f.write(b"NEW")  # cut between remove(p) and rename(p.new, p)
        eq(st.names(), ["p"])
        eq(st.size("p"), 3)
        eq(st.read("p"), b"NEW")
        eq(sorted(os.listdir(st.root)), ["p"])


def every_cut(fat, setup, op, check):
    """Run ``op(st)`` on a fresh store (``setup(st)`` first), the power cut before
    its first rename/remove, then before the second, ... until it completes;
    ``check(st, cut, finished)`` after each run. Returns the runs cut short."""
    cut = 0
    while True:
        with TmpStore() as st:
            setup(st)
            try:
                with_os(CutOs(cut, fat), op, st)
                finished = True
            except PowerCut:
                finished = False
            check(st, cut, finished)
        if finished:
            return cut
        cut += 1


def test_power_cut_at_every_step_leaves_old_or_new():
    for fat in (False, True):
        for first_write in (False, True):
            old = None if first_write else b"old"

            def setup(st):
                if not first_write:
                    st.write_atomic("f", b"old")

            def check(st, cut, finished):
                got = Store(st.root).read("f")
                what = "fat=%s first=%s cut=%d" % (fat, first_write, cut)
                true(got in (old, b"new contents"), what + ": got %r" % (got,))
                if finished:
                    eq(got, b"new contents", what)
                # and the next write always works
                Store(st.root).write_atomic("f", b"next")
                eq(Store(st.root).read("f"), b"next", what)
            true(every_cut(fat, setup, lambda st: st.write_atomic("f", b"new contents"),
                           check) >= 1)


def test_appends_after_a_replace_cut_short_in_the_same_store_recover_first():
    # the store remembers that the file it appends to is whole; a replace of
    # that file cut short (FAT: removed, its complete copy still a .new) must
    # make the next append finish the replace before writing
    def setup(st):
        st.append("f", b"A")
        st.append("f", b"B")                    # the file is known whole now

    def check(st, cut, finished):
        st.append("f", b"+")
        got = st.read("f")
        true(got in (b"AB+", b"new+"), "cut=%d: got %r" % (cut, got))
        if finished:
            eq(got, b"new+")
        eq(st.names(), ["f"])
    true(every_cut(True, setup, lambda st: st.write_atomic("f", b"new"), check) >= 3)


def test_power_cut_while_truncating_leaves_old_or_new():
    def check(st, cut, finished):
        true(Store(st.root).size("log") in (20, 50), "cut=%d" % cut)
    every_cut(True, lambda st: st.write_atomic("log", bytes(50)),
              lambda st: st.truncate("log", 20), check)


def test_fat_fallback_replaces_existing_files():
    with TmpStore() as st:
        st.write_atomic("f", b"1")
        with_os(CutOs(-1, True), st.write_atomic, "f", b"2")
        eq(st.read("f"), b"2")
        eq(sorted(os.listdir(st.root)), ["f"])
