"""The options several verbs share are declared once (nanohub.host.cli.options):
the same names, types, checks and help on every verb, and in --port sim:...."""
import pytest

from nanohub.host.cli import build_parser, main
from nanohub.host.cli.options import EMULATED, sim_port_options

EMULATED_VERBS = {"sim": ("scenario", "seed", "bots", "heap", "speed"),
                  "demo": ("scenario", "seed", "bots", "heap"),
                  "study": ("scenario", "seed", "bots", "heap"),
                  "record": ("scenario", "seed", "bots")}
REQUIRED = {"record": ["-o", "session.db"]}         # the verb's own required arguments


def _usage_error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("verb", sorted(EMULATED_VERBS))
def test_every_emulated_hub_verb_checks_the_swarm_size_alike(verb, capsys):
    for bad in ("0", "256", "many"):
        err = _usage_error(capsys, [verb, "--bots", bad])
        assert "bad swarm size %r: give 1..255 bots" % bad in err
    argv = [verb, "--bots", "255", "--seed", "7"] + REQUIRED.get(verb, [])
    args = build_parser().parse_args(argv)
    assert args.bots == 255 and args.seed == 7


@pytest.mark.parametrize("verb", sorted(EMULATED_VERBS))
def test_the_emulated_hub_options_have_one_help_text(verb):
    parser = build_parser(lazy=False)
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices)
    actions = {a.dest: a for a in sub.choices[verb]._actions}
    for name in EMULATED_VERBS[verb]:
        assert name in actions, name
        if name in ("bots", "heap", "speed"):
            assert actions[name].type is EMULATED[name][0]
            assert actions[name].help.replace("%%", "%").split(" (default")[0].endswith(
                EMULATED[name][2])


def test_the_sim_port_takes_the_same_names_and_checks():
    assert sim_port_options("bots=8,seed=3,scenario=runaway,heap=512k,speed=2") == {
        "bots": 8, "seed": 3, "scenario": "runaway", "heap": "512k", "speed": 2.0}
    assert sim_port_options("") == {}
    for bad, says in (("bots=0", "swarm size"), ("seed=x", "seed"), ("speed=0", "speed"),
                      ("color=red", "use sim or sim:scenario=NAME"), ("bots", "use sim")):
        with pytest.raises(ValueError, match=says):
            sim_port_options(bad)


def test_a_bad_sim_port_is_a_usage_error_before_anything_starts(capsys):
    assert main(["--port", "sim:bots=300", "status"]) == 2
    assert "bad --port 'sim:bots=300'" in capsys.readouterr().err


def test_the_fleet_reads_a_sim_port_as_the_cli_does():
    """One reading of a sim port URL (nanohub.host.simport) for --port and for
    a clinic's emulated chair, which starts through emulate.hub.from_port."""
    from nanohub.host import simport
    from nanohub.host.emulate.hub import from_port
    from nanohub.host.errors import UsageError
    from nanohub.host.fleet.clinic import Chair
    for url in ("sim", "sim:bots=2", "sim?seed=1"):
        assert simport.is_sim(url) and Chair("c", url).is_sim
    for url in ("simulator", "socket://sim:7000", "/dev/ttyACM0"):
        assert not simport.is_sim(url) and not Chair("c", url).is_sim
    assert simport.url_options("sim?bots=2&seed=5") == {"bots": 2, "seed": 5}
    with pytest.raises(UsageError, match="bad --port 'sim:bots=300'.*swarm size"):
        from_port("sim:bots=300")
