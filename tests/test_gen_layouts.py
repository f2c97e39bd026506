"""The wire module carries only the per-message layout names some code uses."""
from nanohub.protocol import gen


def test_every_layout_name_in_use_is_generated():
    assert gen.unlisted_layouts() == []


def test_a_layout_name_dropped_while_in_use_is_caught(monkeypatch):
    monkeypatch.setattr(gen, "LAYOUT_NAMES", gen.LAYOUT_NAMES - {"BOT_REPORTS_REC_SIZE"})
    assert gen.unlisted_layouts() == ["BOT_REPORTS_REC_SIZE"]
    assert "BOT_REPORTS_REC_SIZE" not in gen.wire_module()


def test_unused_layout_names_are_left_to_msgs():
    values = gen.wire_values()
    # (not named whole: the scan would count this file as a use)
    assert "ARM" + "_FMT" not in values and "KEY_ROTATE" + "_SIZE" not in values
    from nanohub.protocol import model
    rotate = next(m for m in model.MESSAGES if m.name == "KEY_ROTATE")
    assert values["MSGS"][rotate.id][0:2] == (rotate.fmt, rotate.size)
