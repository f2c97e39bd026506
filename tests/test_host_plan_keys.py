"""Treatment plans are checked in full before sending; the host key store."""
import os
import stat
from pathlib import Path

import pytest

from nanohub.host import keys, plan
from nanohub.host.errors import KeyMissing, PlanError, UsageError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
session_cap = 300000
site_cap = 100000
rate_cap = 2000
duration_s = 40

[[site]]
tooth = 3
surface = "occlusal"
target_um = 500
bots = 3

[[site]]
site = 148
target_um = 900
"""


def bad(text, match):
    with pytest.raises(PlanError, match=match) as err:
        plan.parse(text, "p.toml")
    assert err.value.exit_code == 2
    return str(err.value)


def test_a_good_plan_becomes_a_treat_start_frame():
    p = plan.parse(GOOD, "p.toml")
    fields, records = p.to_frame()
    assert fields == {"session_cap": 300000, "site_cap": 100000, "rate_cap": 2000,
                      "duration": 40}
    assert records == [{"site": 10, "target": 500, "bots": 3},
                       {"site": 148, "target": 900, "bots": 1}]


def test_the_shipped_example_plan_is_valid():
    p = plan.load(ROOT / "docs" / "plan-example.toml")
    assert [plan.site_name(s.site) for s in p.sites] == ["3-occlusal", "14-mesial", "30-buccal"]


def test_an_out_of_range_value_names_file_line_and_range():
    message = bad(GOOD.replace("target_um = 900", "target_um = 70000"), "out of range 0..65535")
    assert message.startswith("p.toml:14:")


@pytest.mark.parametrize("text, reason", [
    pytest.param(GOOD.replace("rate_cap = 2000\n", ""), "rate_cap is missing",
                 id="a-missing-cap"),
    pytest.param(GOOD.replace("site_cap = 100000", "site_cap = 400000"), "above session_cap",
                 id="a-site-cap-above-the-session-cap"),
    pytest.param(GOOD.replace("bots = 3", "bot = 3"), "unknown site #1 field 'bot'",
                 id="an-unknown-field-a-likely-typo"),
    pytest.param(GOOD.replace('"occlusal"', '"palatal"'),
                 "occlusal, mesial, distal, buccal, lingual",
                 id="an-unknown-surface-the-allowed-ones-listed"),
    pytest.param(GOOD.replace("tooth = 3\n", "tooth = 3\nsite = 11\n"),
                 "tooth 3 occlusal is site 10", id="a-tooth-and-a-site-that-disagree"),
    pytest.param(GOOD.replace("site = 148", "site = 10"), "repeats site 10",
                 id="a-repeated-site"),
    pytest.param(GOOD.split("[[site]]")[0], "no \\[\\[site\\]\\] entry", id="no-sites"),
    pytest.param(GOOD.replace("duration_s = 40", "duration_s = true"), "must be an integer",
                 id="a-boolean-for-a-number"),
    pytest.param("session_cap = = 3", "not valid TOML", id="broken-TOML"),
])
def test_a_bad_plan_is_refused_saying_why(text, reason):
    bad(text, reason)


def test_a_missing_file_is_a_plan_error(tmp_path):
    with pytest.raises(PlanError, match="not found"):
        plan.load(tmp_path / "none.toml")


@pytest.mark.parametrize("text, site", [("17", 17), ("14-occlusal", 65), ("14-mes", 66),
                                        ("32-lingual", 159)])
def test_sites_on_the_command_line(text, site):
    assert plan.parse_site(text) == site


@pytest.mark.parametrize("text", ["160", "33-occlusal", "14-x", "fourteen"])
def test_bad_sites_on_the_command_line(text):
    with pytest.raises(PlanError):
        plan.parse_site(text)


# ------------------------------------------------------------------ keys --

def test_keys_are_stored_per_hub_with_mode_0600(home):
    key = keys.new_key()
    path = keys.save_key(0x1234ABCD, key)
    assert path == home / "keys" / "1234abcd.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keys.find_key(0x1234ABCD) == (key, path)


def test_a_missing_key_says_how_to_get_one(home):
    with pytest.raises(KeyMissing, match="no key for hub 0x00000007.*--key FILE"):
        keys.find_key(7)


def test_a_key_file_must_hold_32_bytes(home, tmp_path):
    path = tmp_path / "short.key"
    path.write_bytes(b"x" * 10)
    with pytest.raises(UsageError, match="not a nanohub key"):
        keys.load_key(path)
    path.write_text(bytes(range(32)).hex() + "\n")
    assert keys.load_key(path) == bytes(range(32))


def test_the_counter_rises_strictly_and_persists(home):
    counter = keys.Counter(5)
    assert counter.next(0) == 1
    assert counter.next(0) == 2
    assert counter.next(10) == 11          # the hub saw more: jump past it
    assert keys.Counter(5).next(3) == 12   # a new process continues
    assert keys.Counter(5).last() == 12


def test_a_torn_counter_file_falls_back_to_the_hubs_mark(home):
    keys.write_private(keys.counter_path(5), b"\xff\x00garbage")
    assert keys.Counter(5).next(40) == 41


def test_remove_key_forgets_key_and_counter(home):
    keys.save_key(9, keys.new_key())
    keys.Counter(9).next(0)
    keys.remove_key(9)
    assert list((home / "keys").iterdir()) == []
