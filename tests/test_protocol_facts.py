"""The shared facts (protocol/facts.py) reach every consumer, and drift is caught.

Generated: the firmware's wire constants and parameter table, docs/parameters.md.
Mirrored: firmware constants kept folded (``_X = const(N)  # wire.NAME``) and
parameter defaults quoted in the documents. Imported: the host's plan check,
the simulator's geometry, the report's defaults. ``gen --check`` fails on any
difference; these tests prove it does, and that the consumers really use them.
"""
import ast
import re
import subprocess
import sys

from nanohub.protocol import facts, gen, model, schema

ROOT = gen.ROOT


def _table(path, name):
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == name:
            return ast.literal_eval(node.value)
    raise AssertionError("%s not in %s" % (name, path))


def test_gen_check_passes_and_names_the_new_outputs():
    assert gen.stale() == []
    out = gen.outputs()
    assert ROOT / "firmware" / "hub" / "paramtab.py" in out
    assert ROOT / "docs" / "parameters.md" in out
    proc = subprocess.run([sys.executable, "-m", "nanohub.protocol.gen", "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_firmware_parameter_table_is_the_schemas():
    path = ROOT / "firmware" / "hub" / "paramtab.py"
    table = _table(path, "TABLE")
    assert table == tuple(p[1:6] for p in facts.PARAMS)
    text = path.read_text()
    for p in facts.PARAMS:
        assert "P_%s = const(%d)" % (p[1].upper(), p[0]) in text
    params_py = (ROOT / "firmware" / "hub" / "params.py").read_text()
    assert "TABLE = (" not in params_py and "from hub.paramtab import" in params_py


def test_a_changed_parameter_makes_the_table_and_the_doc_stale(monkeypatch):
    rows = list(facts.PARAMS)
    i = facts.PARAM_ID["runaway_grace"]
    rows[i] = rows[i][:3] + (rows[i][3] + 1,) + rows[i][4:]
    monkeypatch.setattr(facts, "PARAMS", tuple(rows))
    monkeypatch.setattr(facts, "PARAM", {p[1]: p for p in rows})
    bad = gen.stale()
    for rel in ("firmware/hub/paramtab.py", "docs/parameters.md", "docs/design-notes.md"):
        assert ROOT / rel in bad, rel


def test_a_changed_capacity_reaches_the_firmware_constant_that_mirrors_it(monkeypatch):
    monkeypatch.setattr(facts, "PLAN_SITES_MAX", facts.PLAN_SITES_MAX - 1)
    bad = gen.stale()
    assert ROOT / "firmware" / "hub" / "wire.py" in bad
    assert ROOT / "firmware" / "hub" / "core.py" in bad     # _MAX_SITES = const(..)  # wire.PLAN_SITES_MAX


def test_a_hand_edited_mirror_is_caught_and_rewritten(tmp_path):
    text = "_H = const(7)  # wire.HEADER_SIZE: payload offset\n_X = const(3)\n"
    fixed = gen._fw_mirror(text)
    assert fixed.startswith("_H = const(%d)  # wire.HEADER_SIZE" % schema.HEADER_SIZE)
    assert fixed.endswith("_X = const(3)\n")
    doc = "for `runaway_grace` (default 300) ms and `fresh_ms` (parameter, default 9)"
    assert gen._doc_mirror(doc) == ("for `runaway_grace` (default %d) ms and `fresh_ms` "
                                    "(parameter, default %d)" % (facts.param_default("runaway_grace"),
                                                                 facts.param_default("fresh_ms")))


def test_the_header_size_is_not_retyped_in_the_firmware():
    for path in sorted((ROOT / "firmware").rglob("*.py")):
        if path.name in ("wire.py", "paramtab.py"):
            continue
        for line in path.read_text().splitlines():
            m = re.match(r"\s*_[A-Z0-9_]+ = const\((\d+)\)(.*)", line)
            if m and "payload offset" in line:
                assert "# wire.HEADER_SIZE" in m.group(2), (path, line)


def test_no_copy_of_the_site_count_or_the_plan_capacity_is_left():
    core = (ROOT / "firmware" / "hub" / "core.py").read_text()
    assert "_MAX_SITES = const(%d)  # wire.PLAN_SITES_MAX" % facts.PLAN_SITES_MAX in core
    commands = (ROOT / "firmware" / "hub" / "commands.py").read_text()
    assert not re.search(r"\b%d\b" % facts.SITES, commands)
    plan = (ROOT / "host" / "plan.py").read_text()
    assert not re.search(r"\b(%d|116|32)\b" % facts.SITES, plan.split('"""', 2)[2])
    from nanohub.host import plan as host_plan
    from nanohub.sim import mouth
    assert host_plan.MAX_SITES == facts.PLAN_SITES_MAX
    assert (host_plan.SITES, host_plan.SURFACES) == (facts.SITES, facts.SURFACES)
    assert (mouth.NSITES, mouth.TEETH, mouth.SURFACES) == (facts.SITES, facts.TEETH, facts.SURFACES)
    for tooth in (1, 14, facts.TEETH):
        for surface in facts.SURFACES:
            s = host_plan.site_index(tooth, surface)
            assert mouth.site_index(tooth - 1, surface) == s
            assert mouth.parse_site("%d/%s" % (tooth, surface)) == s
            assert host_plan.parse_site("%d-%s" % (tooth, surface)) == s


def test_a_full_plan_fits_one_frame_and_the_hub_counts_match_the_bot_states():
    assert facts.PLAN_SITES_MAX <= model.BY_NAME["TREAT_START"].max_count
    names = model.BY_NAME["HUB_STATUS"].names
    for state in facts.BOT_STATES:
        assert state.lower() in names
    from nanohub.host.cli import hub as cli_hub
    from nanohub.host.report import data as report_data
    assert cli_hub.bot_states() == report_data.STATUS_BOTS == tuple(
        n.lower() for n, _, _ in schema.ENUMS["BOT"])


def test_the_report_reads_the_schemas_parameter_table():
    from nanohub.host.report import data as report_data
    assert report_data.firmware_defaults() == {p[1]: p[3] for p in facts.PARAMS}
    assert "import ast" not in (ROOT / "host" / "report" / "data.py").read_text()


def test_every_parameter_is_documented_with_its_meaning():
    doc = (ROOT / "docs" / "parameters.md").read_text()
    for p in facts.PARAMS:
        row = "| %d | `%s` | %s | %d | %d | %d |" % (p[0], p[1], p[2], p[3], p[4], p[5])
        assert row in doc, row
        assert p[6] and len(p[6]) < 120, p[1]
    design = (ROOT / "docs" / "design-notes.md").read_text()
    assert "`runaway_grace` (default %d)" % facts.param_default("runaway_grace") in design


def test_params_help_names_real_parameters_within_their_bounds():
    proc = subprocess.run([sys.executable, "-m", "nanohub.host.cli", "params", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    gets = re.findall(r"nanohub params get (\w+)", proc.stdout)
    sets = re.findall(r"nanohub params set (\w+) (-?\d+)", proc.stdout)
    assert gets and sets, proc.stdout
    for name in gets:
        assert name in facts.PARAM, name
    for name, value in sets:
        lo, hi = facts.param_bounds(name)
        assert lo <= int(value) <= hi, (name, value)


def test_the_host_shows_every_hub_and_bot_state_of_the_schema():
    from nanohub.host.cli import watch
    from nanohub.host.report import plots as report_plots
    assert set(watch.BOT_MARK) == set(report_plots.BOT_COLOR) == set(facts.BOT_STATES)
    assert set(watch.STATE_STYLE) == set(report_plots.STATE_COLOR) == set(facts.HUB_STATES)


def test_a_scenario_with_more_lesions_than_a_plan_holds_is_refused():
    import pytest
    from nanohub.sim.scenario import ScenarioError, from_dict

    def scenario(n):
        return from_dict({"name": "x", "duration_s": 30, "bots": 64, "incipient_lesions": 0,
                          "lesion": [{"site": s, "depth_um": 300, "target_um": 100, "bots": 1}
                                     for s in range(n)]})
    assert len(scenario(facts.PLAN_SITES_MAX).lesions) == facts.PLAN_SITES_MAX
    with pytest.raises(ScenarioError, match="at most %d sites" % facts.PLAN_SITES_MAX):
        scenario(facts.PLAN_SITES_MAX + 1)
