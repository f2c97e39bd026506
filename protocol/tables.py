"""The protocol's declarative tables, read from ``tables.toml``.

The enumerations and the parameter table are rows of data, kept as data (with
the comments that explain them) in ``protocol/tables.toml``. This module reads
that file once and gives the rows as tuples; :mod:`nanohub.protocol.schema`
(``ENUMS``) and :mod:`nanohub.protocol.facts` (``PARAMS``, ``PARAM_LESS``)
re-export them under their usual names.
"""
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PATH = Path(__file__).resolve().parent / "tables.toml"

# the shape of a row in each table: the type of every cell, in order
ENUM_ROW = (str, int, str)                          # NAME, value, meaning
PARAM_ROW = (int, str, str, int, int, int, str)     # id, name, unit, default, min, max, meaning
LESS_ROW = (str, str)                               # lower parameter, higher parameter


def rows(table, shape, where):
    """``table`` (a list of lists) as a tuple of tuples, each cell checked against ``shape``."""
    out = []
    for i, row in enumerate(table):
        if len(row) != len(shape) or not all(type(c) is t for c, t in zip(row, shape)):
            raise ValueError("%s: %s row %d is %r, not [%s]" % (
                PATH.name, where, i + 1, row, ", ".join(t.__name__ for t in shape)))
        out.append(tuple(row))
    return tuple(out)


def unique(table, column, where):
    """``table`` unchanged, once no two of its rows share the cell at ``column``."""
    seen = set()
    for row in table:
        if row[column] in seen:
            raise ValueError("%s: %s has %r twice" % (PATH.name, where, row[column]))
        seen.add(row[column])
    return table


def enum(name, table):
    """One enumeration's rows: names and values each unique within it."""
    where = "enums." + name
    return unique(unique(rows(table, ENUM_ROW, where), 0, where), 1, where)


with open(PATH, "rb") as _f:
    _DATA = tomllib.load(_f)

ENUMS = {name: enum(name, table) for name, table in _DATA["enums"].items()}
"""Enumeration name -> ((NAME, value, meaning), ...) in file order."""
PARAMS = unique(rows(_DATA["params"]["table"], PARAM_ROW, "params.table"), 1, "params.table")
"""((id, name, unit, default, min, max, meaning), ...) in id order."""
PARAM_LESS = rows(_DATA["params"]["less"], LESS_ROW, "params.less")
"""((lower, higher), ...): the first parameter's value stays strictly below the second's."""
