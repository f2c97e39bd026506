"""Short fuzzing of the firmware's command dispatcher: a whole Hub on the null board.

Fuzz bytes are read as a session (``fuzz/props.py``, ``run_actions``):
garbage, frames of any id and length, commands signed right, with a replayed
counter, with another hub's key, with a forged or truncated tag, or unsigned;
resends, bit flips, truncations, time passing, odd bot-bus frames, new
connections; starting in SAFE, ready, ARMED, TREATING, PAUSED or ESTOP. After
every step the host codec's verdicts are the oracle:

- nothing is done for a frame the host codec rejects (no ACK, no state,
  parameter, counter, key or consent change, no audit record), and every one
  is counted in its class, then logged (EV_RX_BAD) within a second;
- every command frame gets exactly one ACK; an identical resend gets the same
  ACK and is not executed again (one EV_CMD/EV_REJECT per distinct command);
- an energy command without a valid tag under the hub's key, or with an old
  counter, is refused;
- no dose is sent outside TREATING; the estop latch and the state agree;
  parameters stay in bounds; the audit log verifies.

``make fuzz`` runs the same checks coverage-guided (``fuzz/fuzz_dispatch.py``).
"""
import struct

from hypothesis import given
from hypothesis import strategies as st

from _examples import thorough
from _fuzzing import props, replay_corpus, wire

FAST = thorough(120)


@FAST
@given(st.binary(min_size=1, max_size=160))
def test_any_session_keeps_every_dispatch_property(data):
    props.run_actions(data)


@thorough(30)
@given(st.sampled_from(props.DispatchRig.START_STATES), st.binary(min_size=1, max_size=200))
def test_any_session_from_any_state_keeps_every_dispatch_property(start, data):
    props.run_actions(data, start=start)


def test_every_input_of_the_kept_corpus_still_passes():
    replay_corpus("dispatch", 20, props.run_actions)


def test_the_rig_reaches_each_starting_state():
    want = {"safe": wire.HUB_SAFE, "ready": wire.HUB_SAFE, "armed": wire.HUB_ARMED,
            "treating": wire.HUB_TREATING, "paused": wire.HUB_PAUSED, "estop": wire.HUB_ESTOP}
    for start, state in want.items():
        assert props.DispatchRig(start=start).hub.state == state, start


def test_a_bot_report_with_an_unknown_state_is_ignored_not_a_crash():
    """Found by the dispatcher fuzzer: a CRC-valid BOT_REPORTS record with a
    state byte above BOT_LOST went into the hub's table and crashed the next
    HUB_STATUS (IndexError in Swarm.counts). Now such a record is not a sign
    of life: the bot is not marked heard."""
    rig = props.DispatchRig(start="safe")
    rig.world.gateway = False                   # only our report reaches the hub
    rec = struct.pack(wire.BOT_REPORTS_REC_FMT, 200, 255, 0, 90, 90, 3700, 700, 0, 0, 0)
    payload = struct.pack(wire.BOT_REPORTS_FMT, 1, 1) + rec
    rig.board.bus_in.extend(props.wire_of(props.raw_frame(wire.M_BOT_REPORTS, payload, seq=7)))
    rig.ticks(30)                               # HUB_STATUS counts the bots by state
    sw = rig.hub.swarm
    assert sw.state[1] <= wire.BOT_LOST and sw.said[1] != 200 and not sw.heard_ever[1]
    rig.finish()


def test_a_forged_command_in_treating_changes_nothing_but_the_log():
    rig = props.DispatchRig(start="treating")
    before = rig.snapshot()
    rig.command(wire.M_DOSE_SCALE, b"\x64", mode=3)       # forged tag
    rig.command(wire.M_PARAM_SET, struct.pack("<Bi", 10, 1), mode=2)   # another hub's key
    rejected = rig.stats["rejected"]
    rig.command(wire.M_ARM, b"", mode=4)                   # truncated tag: no room for it
    after = rig.snapshot()
    assert after["params"] == before["params"] and after["counter"] == before["counter"]
    assert rig.hub.state == wire.HUB_TREATING and rig.stats["refused"] == 2
    assert rig.stats["rejected"] == rejected + 1           # dropped as a bad frame, counted
