"""The clinic: many chairs, each a hub, driven at once.

    from nanohub.host.fleet import load_clinic, estop_all
    chairs = load_clinic("clinic.toml")
    results = estop_all(chairs)

A clinic file names each chair's hub and its port URL (``clinic``); the
operations reach every hub concurrently with bounded waits (``ops``); the
``nanohub fleet`` verbs print them (``cli``).
"""
from .clinic import Chair, load_clinic
from .ops import ChairResult, estop_all, pull_logs_all, status_all

__all__ = ["Chair", "ChairResult", "load_clinic", "estop_all", "pull_logs_all", "status_all"]
