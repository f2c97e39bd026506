"""Tap a connected :class:`~nanohub.host.client.Hub`: every frame it sends and
receives reaches a callback (the session recorder's input, :mod:`.record`).
"""
from nanohub.protocol import codec


class _Tap:
    """A catch-all waiter on the link: sees every received frame."""

    def __init__(self, hub, on_frame):
        self.hub, self.on_frame = hub, on_frame

    def match(self, frame):
        return True

    def put(self, item):
        from ..link import _DEAD
        if item is _DEAD:
            self.on_frame("closed" if self.hub.closed else "lost", self.hub.error)
        else:
            self.on_frame("rx", item)


def tap(hub, on_frame):
    """Feed ``on_frame(direction, item)`` with everything on ``hub``'s link.

    ``("info", hub.info)`` first, then ``("rx", Frame)`` and ``("tx", Frame)``
    as frames pass (a frame sent is reported just before its bytes go out),
    and ``("closed"|"lost", error)`` when the link ends.
    Returns a function that removes the tap.
    """
    on_frame("info", hub.info)
    t = _Tap(hub, on_frame)
    send = hub.send_raw

    def send_raw(data):
        # queued before it goes out, so that its ACK can never be seen first
        try:
            on_frame("tx", codec.decode(bytes(data).lstrip(b"\0")))
        except codec.CodecError:
            pass
        send(data)

    hub.send_raw = send_raw
    with hub._lock:
        hub._waiters.append(t)

    def untap():
        hub._unwait(t)
        hub.__dict__.pop("send_raw", None)
    return untap
