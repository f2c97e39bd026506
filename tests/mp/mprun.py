"""Firmware test runner that runs inside MicroPython (which has no unittest/pytest).

    micropython tests/mp/mprun.py MODULE [MODULE...] [--list] [-k SUBSTR]

Runs each top-level ``test_*`` function of each module, sorted by name
(MicroPython module dicts are unordered).  Output, one line per test, parsed
by tests/test_firmware_mp.py:

    PASS mod.test_x
    FAIL mod.test_x: ExcType: message
      | <traceback lines>
    SKIP mod.test_x: reason
    SUMMARY passed=N failed=N skipped=N

A module that fails to import is reported as ``mod.<import>``.  Exit status
is 1 if anything failed.  ``--list`` only prints ``TEST mod.test_x`` lines.
"""

import gc
import sys

import mptest

try:
    import io
except ImportError:  # pragma: no cover - very small ports
    io = None


def _one_line(text):
    return text.replace("\r", "").replace("\n", "\\n")


def _describe(e):
    msg = str(e)
    name = type(e).__name__
    return _one_line(name + ": " + msg if msg else name)


def _traceback(e):
    if io is None:
        return []
    buf = io.StringIO()
    if hasattr(sys, "print_exception"):
        sys.print_exception(e, buf)
    else:  # CPython, handy for debugging a test outside the VM
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=buf)
    # Drop the runner's own frame: it is the same in every traceback.
    return [ln for ln in buf.getvalue().rstrip("\n").split("\n") if not ('File "' in ln and "mprun." in ln)]


def _report(status, name, e=None, reason=None):
    if status == "PASS":
        print("PASS " + name)
    elif status == "SKIP":
        print("SKIP %s: %s" % (name, _one_line(reason)))
    else:
        print("FAIL %s: %s" % (name, _describe(e)))
        for line in _traceback(e):
            print("  | " + line)


def _tests(mod):
    names = [n for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n))]
    names.sort()
    return names


def _module_name(arg):
    # Accept "tests/mp/test_x.py" as well as "test_x".
    arg = arg.replace("\\", "/").split("/")[-1]
    return arg[:-3] if arg.endswith(".py") else arg


def main(argv):
    listing = False
    substr = None
    modules = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--list":
            listing = True
        elif arg == "-k":
            i += 1
            substr = argv[i]
        else:
            modules.append(_module_name(arg))
        i += 1
    if not modules:
        print("usage: mprun.py MODULE [MODULE...] [--list] [-k SUBSTR]")
        sys.exit(2)

    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}

    def report(status, name, e=None, reason=None):
        counts[status] += 1
        _report(status, name, e, reason)

    for modname in modules:
        try:
            __import__(modname)
            mod = sys.modules[modname]
        except mptest.SkipTest as e:
            if listing:
                print("TEST %s.<import>" % modname)
            else:
                report("SKIP", modname + ".<import>", reason=str(e))
            continue
        except Exception as e:
            if listing:
                print("TEST %s.<import>" % modname)
            else:
                report("FAIL", modname + ".<import>", e)
            continue
        for fname in _tests(mod):
            name = modname + "." + fname
            if substr is not None and substr not in name:
                continue
            if listing:
                print("TEST " + name)
                continue
            gc.collect()
            try:
                getattr(mod, fname)()
            except mptest.SkipTest as e:
                report("SKIP", name, reason=str(e))
            except Exception as e:
                report("FAIL", name, e)
            else:
                report("PASS", name)
        # Drop the module so the next one gets the whole heap.
        del sys.modules[modname]
        mod = None
        gc.collect()

    if not listing:
        print("SUMMARY passed=%d failed=%d skipped=%d" % (counts["PASS"], counts["FAIL"], counts["SKIP"]))
        if counts["FAIL"]:
            sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
