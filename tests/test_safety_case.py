"""The safety case (docs/safety.md) stays true to the code and the tests.

Fails when a hazard has no test, when a test it names does not exist, when a
rule of the firmware's supervisor or an alarm code is covered by no hazard, or
when a property required by issue 8 has no row.
"""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "safety.md"
COLUMNS = ["ID", "Hazard", "Cause", "Effect", "Risk control", "Requirement", "Tests"]
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)(\[[^\]]*\])?`")

# Issue 8's properties, each a row of the table: parser and dispatcher (never
# act on an invalid frame, never crash or hang, count every drop), link faults
# (exactly once, ACK or unknown, ESTOP confirmed or named, no record lost),
# power cuts (log, parameters, counter, boot state), attackers (forged ...,
# flood with ESTOP, key), soak (memory).
REQUIRED = {
    "H-02": "estop confirmed or named", "H-16": "boots SAFE or ESTOP, never treating",
    "H-20": "never acts on an invalid frame", "H-21": "never crashes or hangs",
    "H-22": "every rejected frame counted", "H-23": "no command executed twice",
    "H-24": "ACK reaches the host or it reports unknown", "H-25": "ESTOP through a flood",
    "H-26": "no audit record lost", "H-27": "parameters old or new",
    "H-28": "counter survives a cut", "H-29": "the key never leaves the hub",
    "H-30": "schema-mismatched peer", "H-10": "forged, replayed, reordered, truncated, old",
    "H-31": "flood does not starve the loop", "H-33": "memory",
}


def _table(columns):
    """The rows of the table in DOC whose header row is ``columns``, as dicts
    (``_cells``: how many cells the row really has)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("| %s |" % columns[0]))
    assert [c.strip() for c in lines[start].strip("|").split("|")] == columns
    out = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        out.append(dict(zip(columns, cells)) | {"_cells": len(cells)})
    return out


def rows():
    return _table(COLUMNS)


def test_every_row_is_complete_and_has_a_test():
    table = rows()
    assert len(table) >= 30
    ids = [r["ID"] for r in table]
    assert len(ids) == len(set(ids)), "duplicate hazard ids"
    for r in table:
        assert r["_cells"] == len(COLUMNS), "%s: %d cells" % (r["ID"], r["_cells"])
        for c in COLUMNS:
            assert r[c], "%s has an empty %s" % (r["ID"], c)
        assert TEST_ID.findall(r["Tests"]), "%s maps to no test" % r["ID"]


@pytest.mark.parametrize("row", rows(), ids=lambda r: r["ID"])
def test_every_mapped_test_exists(row):
    for path, name, _ in TEST_ID.findall(row["Tests"]):
        f = ROOT / path
        assert f.is_file(), "%s: %s does not exist" % (row["ID"], path)
        assert re.search(r"^def %s\(" % name, f.read_text(encoding="utf-8"), re.M), \
            "%s: %s has no %s" % (row["ID"], path, name)


def _firmware():
    sys.path.insert(0, str(ROOT / "firmware"))
    from hub import supervisor, wire
    return supervisor, wire


def test_every_supervisor_rule_is_a_risk_control():
    supervisor, _ = _firmware()
    names = {v: k for k, v in vars(supervisor).items() if k.startswith("C_")}
    text = " ".join(r["Risk control"] for r in rows())
    for trigger, *_ in supervisor.TABLE:
        assert "`%s`" % names[trigger] in text, "supervisor rule %s has no hazard" % names[trigger]


def test_every_alarm_is_a_risk_control():
    from nanohub.protocol import schema
    alarms = ["ALARM_" + name for name, _, _ in schema.ENUMS["ALARM"] if name != "NONE"]
    text = " ".join(r["Risk control"] for r in rows())
    assert len(alarms) >= 16
    for a in alarms:
        assert "`%s`" % a in text, "%s appears in no hazard's risk control" % a


def test_the_properties_of_issue_8_each_have_their_row():
    ids = {r["ID"] for r in rows()}
    missing = {k: v for k, v in REQUIRED.items() if k not in ids}
    assert not missing


def test_every_robustness_test_file_backs_some_hazard():
    named = {p for r in rows() for p, _, _ in TEST_ID.findall(r["Tests"])}
    for f in ("test_fuzz_frame.py", "test_fuzz_codec.py", "test_fuzz_dispatch.py",
              "test_fuzz_vm.py", "test_link_faults.py", "test_powercut.py",
              "test_attackers.py"):
        assert "tests/" + f in named, "tests/%s backs no hazard" % f


# ------------------------------------------------------------- threats --

THREAT_COLUMNS = ["Threat", "Attacker", "Capability", "Control", "Tests"]
# issue 14: what an attacker built from docs/protocol.md could still do
THREATS_REQUIRED = {
    "T-01": "flood blocks the stop", "T-02": "link taken by a new connection",
    "T-03": "keyless heartbeats keep energy", "T-04": "held-back signed command",
    "T-06": "forged attempt hidden in a summary", "T-07": "evidence rotated away",
    "T-08": "exactly-once beyond the cache", "T-09": "counter burn",
    "T-10": "unsigned HIGH alarm ack", "T-11": "telemetry blinded",
    "T-12": "patient id readable", "T-14": "protocol document incomplete",
    "T-15": "pulled log rewritten or cut",
}


def threats():
    return _table(THREAT_COLUMNS)


def test_every_threat_row_is_complete_and_names_existing_tests():
    table = threats()
    ids = [r["Threat"] for r in table]
    assert len(ids) == len(set(ids)), "duplicate threat ids"
    assert not set(THREATS_REQUIRED) - set(ids), "issue 14 threats without a row"
    for r in table:
        assert r["_cells"] == len(THREAT_COLUMNS), r["Threat"]
        for c in THREAT_COLUMNS:
            assert r[c], "%s has an empty %s" % (r["Threat"], c)
        found = TEST_ID.findall(r["Tests"])
        assert found, "%s maps to no test" % r["Threat"]
        for path, name, _ in found:
            f = ROOT / path
            assert f.is_file(), "%s: %s does not exist" % (r["Threat"], path)
            assert re.search(r"^def %s\(" % name, f.read_text(encoding="utf-8"), re.M), \
                "%s: %s has no %s" % (r["Threat"], path, name)
