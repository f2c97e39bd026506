"""Errors of the host library, each with the CLI exit code it maps to.

Exit codes (DESIGN.md section 7): 0 done, 1 the hub refused (or a check such
as an emergency-stop confirmation or a log verification failed), 2 usage
error on the host, 3 link error. Every message says what to do next.
"""


class NanohubError(Exception):
    """Base of every expected failure; ``exit_code`` is the CLI's exit status."""

    exit_code = 1

    @property
    def kind(self):
        return type(self).__name__


class LinkError(NanohubError):
    """The link to the hub failed: no such port, busy, refused, disconnected."""

    exit_code = 3


class LinkTimeout(LinkError):
    """The hub did not answer in time."""


class NotANanohub(LinkError):
    """Something answered, but not the nanohub firmware (e.g. a bare REPL)."""


class ProtocolMismatch(LinkError):
    """The hub speaks another protocol version or schema."""


class Refused(NanohubError):
    """The hub refused a command; ``reason`` is a WHY_* name without prefix."""

    exit_code = 1

    def __init__(self, reason, detail=0, message=None, ack=None):
        self.reason = reason
        self.detail = detail
        self.ack = ack
        super().__init__(message or "the hub refused: %s" % reason)


class CheckFailed(NanohubError):
    """A result the operator asked for is not there (unconfirmed bots, bad log).

    ``data`` is the result itself, for machine-readable output.
    """

    exit_code = 1

    def __init__(self, message, data=None):
        self.data = data or {}
        super().__init__(message)


class UsageError(NanohubError):
    """The command line or an input file is wrong; nothing was sent."""

    exit_code = 2


class KeyMissing(UsageError):
    """A signed command needs the hub key and none was found."""


class PlanError(UsageError):
    """A treatment plan file is invalid."""
