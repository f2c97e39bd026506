"""Tiny assertion helpers for firmware tests; runs on MicroPython and CPython.

MicroPython has no unittest, and bare ``assert`` gives no values on failure.
"""


class SkipTest(Exception):
    """Raise to skip the current test (or a whole module at import)."""


def _first_diff(a, b):
    # Where two sequences of the same type first differ, e.g. bytes of a frame.
    if type(a) is not type(b) or not isinstance(a, (bytes, bytearray, str, list, tuple)):
        return ""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return " (first difference at index %d)" % i
    return " (lengths %d != %d)" % (len(a), len(b))


def eq(a, b, msg=None):
    """Assert a == b, showing both values."""
    if a != b:
        text = "%r != %r%s" % (a, b, _first_diff(a, b))
        raise AssertionError(msg + ": " + text if msg else text)


def true(x, msg=None):
    """Assert x is truthy."""
    if not x:
        raise AssertionError(msg or "expected a true value, got %r" % (x,))


def raises(exc_type, fn, *args, **kwargs):
    """Call fn(*args, **kwargs), assert it raises exc_type, return the exception."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s not raised by %s" % (exc_type.__name__, getattr(fn, "__name__", fn)))
