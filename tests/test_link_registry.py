"""The endpoint registry: live endpoints listed, stale ones pruned, holders found."""
import os

import pytest

from nanohub.host.link import registry


@pytest.fixture(autouse=True)
def _runtime(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.ENV_DIR, str(tmp_path))


def test_register_find_and_unregister():
    path = registry.register("serve", "chair1", "nanohub://chair1", port="/dev/ttyACM0")
    assert registry.find("chair1")["pid"] == os.getpid()
    assert registry.holder("/dev/ttyACM0")["name"] == "chair1"
    assert registry.holder("/dev/ttyACM1") is None
    registry.unregister(path)
    assert registry.entries() == []


def test_dead_endpoint_is_pruned(tmp_path):
    registry.register("sim", "gone", "socket://127.0.0.1:1", pid=2 ** 22 + 12345)
    assert registry.find("gone") is None
    assert not list(tmp_path.glob("*.json"))
