"""Terminal output on ``rich``: tables and progress bars.

Colour and live bars only on a terminal; piped, a table is plain aligned text
(as wide as it needs, never wrapped) and a bar prints nothing or a few plain
lines, so that scripts and logs read the same words. JSON output never comes
here.
"""
import sys

WIDE = 10000        # piped output is never wrapped


def console(stream=None):
    from rich.console import Console
    stream = stream or sys.stdout
    tty = _isatty(stream)
    return Console(file=stream, highlight=False, soft_wrap=False, emoji=False,
                   force_terminal=tty, no_color=not tty, width=None if tty else WIDE)


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def render(renderable, stream=None):
    """The text of a renderable as it would print on ``stream`` (default stdout)."""
    out = console(stream)
    with out.capture() as cap:
        out.print(renderable)
    return "\n".join(line.rstrip() for line in cap.get().rstrip("\n").split("\n"))


def table(columns, rows, title=None, stream=None):
    """A table as text. ``columns``: names; a name ending in '>' is right-aligned."""
    from rich import box
    from rich.table import Table
    # a rule under the header on a terminal; piped, plain aligned columns
    t = Table(box=box.SIMPLE_HEAD if _isatty(stream or sys.stdout) else None, title=title,
              title_justify="left", pad_edge=False, show_edge=False)
    for name in columns:
        right = name.endswith(">")
        t.add_column(name.rstrip(">"), justify="right" if right else "left", no_wrap=True)
    for row in rows:
        t.add_row(*[str(cell) for cell in row])
    return render(t, stream)


def fields(pairs, stream=None):
    """Name-value lines, names in one column: ``state    SAFE``."""
    from rich.table import Table
    t = Table.grid(padding=(0, 2))
    t.add_column(min_width=7, no_wrap=True)
    t.add_column(no_wrap=True)
    for name, value in pairs:
        t.add_row(name, value)
    return render(t, stream)


def status(text, stream=None):
    """A live one-line status with a spinner (``with status(...) as s: s.update(text)``);
    only for a terminal: the caller checks, as a log has no use for it."""
    return console(stream or sys.stderr).status(text)


class Bar:
    """A progress bar on stderr while it is a terminal. Piped, it is silent, or
    with ``lines`` prints a plain line at each quarter. ``bytes`` shows sizes."""

    def __init__(self, label, stream=None, lines=False, bytes=False):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = _isatty(self.stream)
        self.lines = lines
        self.bytes = bytes
        self.shown = -1
        self.live = None
        self.task = None

    def __call__(self, done, total):
        if self.tty:
            if self.live is None:
                self._start()
            self.live.update(self.task, completed=done, total=max(total, 1))
            return
        if not self.lines:
            return
        frac = done / total if total else 1.0
        quarter = int(frac * 4)
        if quarter != self.shown:
            self.shown = quarter
            size = ("  %.1f / %.1f KB" % (done / 1024, total / 1024)) if self.bytes else \
                ("  %d/%d" % (done, total))
            self.stream.write("  %s %3d%%%s\n" % (self.label, frac * 100, size))
            self.stream.flush()

    def _start(self):
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress,
                                   TaskProgressColumn, TextColumn, TimeRemainingColumn)
        count = DownloadColumn() if self.bytes else MofNCompleteColumn()
        self.live = Progress(TextColumn("{task.description}"), BarColumn(),
                             TaskProgressColumn(), count, TimeRemainingColumn(),
                             console=console(self.stream))
        self.live.start()
        self.task = self.live.add_task(self.label, total=None)

    def end(self):
        if self.live is not None:
            self.live.stop()
            self.live = None

    close = end
