"""The host link: opening ports (``port``) and the framed session over one (``session``)."""
from .port import open_port
from .session import HOST_VERSION, HEARTBEAT_S, REPL_MARKERS, TELEMETRY, HubInfo, Link, _DEAD

__all__ = ["HOST_VERSION", "HEARTBEAT_S", "REPL_MARKERS", "TELEMETRY", "HubInfo", "Link",
           "open_port", "_DEAD"]
