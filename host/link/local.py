"""Local broker endpoints: their URLs, a serial-like socket, and the broker's notices.

``nanohub serve`` (and ``nanohub sim``) offer one hub to many clients on a
Unix socket. Two URL forms reach it:

- ``nanohub+unix:///path/to/socket``: the socket itself;
- ``nanohub://NAME``: the endpoint registered under NAME (``registry.find``).

pyserial cannot open a Unix socket, so :class:`UnixPort` gives the session the
small part of the pyserial API it uses: ``read``, ``write``, ``close``,
``timeout``, ``in_waiting`` and ``portstr``.

The broker speaks the hub's own frames to its clients. Frames it originates
itself (not relayed from the hub) carry ``addr = ADDR_BROKER``; the only one is
a HEARTBEAT whose ``t`` is a notice code (``NOTICE_*``) about the hub link.
"""
import os
import select
import socket

from ..errors import LinkError, UsageError

SCHEME_NAME = "nanohub://"
SCHEME_UNIX = "nanohub+unix://"

ADDR_BROKER = 0xFE          # on a broker's client links only: the broker speaking, not the hub
NOTICE_LOST = 1             # the hub link dropped; the broker is reconnecting
NOTICE_BACK = 2             # the hub link is back
NOTICE_GONE = 3             # the hub has stayed unreachable: clients should give up
NOTICES = {NOTICE_LOST: "lost", NOTICE_BACK: "back", NOTICE_GONE: "gone"}


def is_local(url):
    return url.startswith((SCHEME_NAME, SCHEME_UNIX))


def unix_url(path):
    return SCHEME_UNIX + os.path.abspath(path)


def resolve(url):
    """What ``nanohub://NAME`` stands for: the URL its endpoint announced.

    A broker announces its socket (``nanohub+unix://``); ``nanohub sim --pty``
    its terminal's path. Any other URL is returned as it is.
    """
    from . import registry
    if not url.startswith(SCHEME_NAME):
        return url
    name = url[len(SCHEME_NAME):].strip("/")
    if not name:
        raise UsageError("invalid port %r: use nanohub://NAME (nanohub ports lists them)" % url)
    entry = registry.find(name)
    if entry is None or not entry.get("url"):
        raise LinkError("no nanohub serve or sim called %r is running (nanohub ports lists "
                        "them; start one with nanohub serve --name %s)" % (name, name))
    return entry["url"]


def socket_path(url):
    """The path of a ``nanohub+unix://`` URL."""
    path = url[len(SCHEME_UNIX):]
    if not path.startswith("/"):
        raise UsageError("invalid port %r: use nanohub+unix:///absolute/path" % url)
    return path


class UnixPort:
    """A connected Unix stream socket with the pyserial calls the session makes."""

    def __init__(self, path, url=None, timeout=0.05, write_timeout=2.0):
        self.portstr = url or unix_url(path)
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(write_timeout)        # bounds sendall; reads wait in select
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise

    @property
    def in_waiting(self):
        return 0                                    # read() returns all that is there

    def fileno(self):
        return self._sock.fileno()

    def read(self, size=1):
        """Whatever has arrived (at least one byte) within ``timeout``, else b"".

        Returns more than ``size`` when more is there: the session reads in bulk.
        """
        r, _, _ = select.select([self._sock], [], [], self.timeout)
        if not r:
            return b""
        data = self._sock.recv(max(size, 65536))
        if not data:
            raise OSError("the broker closed the connection")
        return data

    def write(self, data):
        self._sock.sendall(data)
        return len(data)

    def flush(self):
        pass

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def check_held(url):
    """A port owned by a running ``nanohub serve`` is reached through it, never beside it."""
    from . import registry
    held = registry.holder(url)
    if held is not None and held.get("pid") != os.getpid():
        raise LinkError("port busy: held by nanohub %s (pid %s); use --port nanohub://%s"
                        % (held.get("kind", "serve"), held.get("pid"), held.get("name")))


def open_local(url, shown=None):
    """Connect to a ``nanohub+unix://`` URL, mapping failures to one clear LinkError."""
    path = socket_path(url)
    url = shown or url
    try:
        return UnixPort(path, url=url)
    except FileNotFoundError:
        raise LinkError("no broker listens at %s (is nanohub serve still running?)" % url) from None
    except ConnectionRefusedError:
        raise LinkError("the broker at %s refused the connection: it has stopped "
                        "(start nanohub serve again)" % url) from None
    except OSError as e:
        raise LinkError("cannot connect to %s: %s" % (url, e)) from None
