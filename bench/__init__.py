"""nanohub benchmarks (issue 7): ``python -m bench`` or ``make bench``.

Each module measures one or a few rows of the table and returns
:class:`bench.report.Row` objects; ``__main__`` runs them in one process,
prints the table and writes ``docs/benchmarks.md``. Peers are measured side
by side in the same process (interleaved repeats), so that their ratio holds
on a noisy machine.
"""
