"""nanohub host: the library and the ``nanohub`` CLI.

    from nanohub.host import Hub, EmulatedHub

Names are imported on first use, so ``nanohub --help`` starts fast.
"""

_EXPORTS = {
    "Hub": "client", "Ack": "views", "EstopResult": "views", "open_port": "link",
    "EmulatedHub": "emulate.hub", "Plan": "plan", "load_plan": "plan:load",
    "NanohubError": "errors", "LinkError": "errors", "LinkTimeout": "errors",
    "NotANanohub": "errors", "ProtocolMismatch": "errors", "Refused": "errors",
    "UsageError": "errors", "KeyMissing": "errors", "PlanError": "errors",
    "CheckFailed": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    spec = _EXPORTS.get(name)
    if spec is None:
        raise AttributeError("module 'nanohub.host' has no attribute %r" % name)
    module, _, attr = spec.partition(":")
    from importlib import import_module
    value = getattr(import_module("." + module, __name__), attr or name)
    globals()[name] = value
    return value
