"""The declarative tables (protocol/tables.toml): what the loader accepts, and
that schema and facts give exactly its rows under their usual names."""
import pytest

from nanohub.protocol import facts, schema, tables
from nanohub.protocol.tables import tomllib


def test_schema_and_facts_give_the_rows_of_the_data_file():
    data = tomllib.loads(tables.PATH.read_text())
    assert list(schema.ENUMS) == list(data["enums"])      # file order: the fingerprint's order
    for name, rows in data["enums"].items():
        assert schema.ENUMS[name] == tuple(tuple(r) for r in rows)
    assert facts.PARAMS == tuple(tuple(r) for r in data["params"]["table"])
    assert facts.PARAM_LESS == tuple(tuple(r) for r in data["params"]["less"])
    assert schema.enum_value("CHECK", "DEPLOYED") == 0x80   # hex values read as ints


@pytest.mark.parametrize("row", [
    ["OK", "0", "a value written as a string"],
    ["OK", 0],
    ["OK", 0, "meaning", "one cell too many"],
    ["OK", True, "a bool is not a value"],
])
def test_a_malformed_enum_row_is_refused_by_row_number(row):
    with pytest.raises(ValueError, match=r"tables.toml: enums.X row 2 is .*not \[str, int, str\]"):
        tables.enum("X", [["NONE", 0, "fine"], row])


@pytest.mark.parametrize("rows, twice", [
    ([["A", 0, "a"], ["A", 1, "b"]], "'A'"),
    ([["A", 0, "a"], ["B", 0, "b"]], "0"),
])
def test_an_enum_name_or_value_given_twice_is_refused(rows, twice):
    with pytest.raises(ValueError, match="enums.X has %s twice" % twice):
        tables.enum("X", rows)


def test_a_parameter_row_with_a_missing_cell_is_refused():
    with pytest.raises(ValueError, match=r"params.table row 1 .*\[int, str, str, int, int, int, str\]"):
        tables.rows([[0, "tick_hz", "Hz", 50, 10, 100]], tables.PARAM_ROW, "params.table")
