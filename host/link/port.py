"""Opening a port: any pyserial URL, with failures mapped to one clear error.

Each URL kind gets only the options its pyserial handler supports: pyserial
3.5's RFC 2217 client raises NotImplementedError for ``write_timeout``, and a
``socket://`` has no baud rate. The baud rate goes to every kind that has one
(a device, ``rfc2217://``, ``loop://``, ``spy://``): without it an RFC 2217
server such as ser2net is asked for 9600 Bd.
"""
import errno
import re
import socket
from urllib.parse import urlsplit

from ..errors import LinkError, UsageError

DEFAULT_BAUD = 115200
READ_TIMEOUT = 0.05
WRITE_TIMEOUT = 2.0

# what ser2net writes to a client when another client holds its port ("Port
# already in use") or, through another of its ports, the device ("Port's device
# already in use"), before it hangs up
IN_USE_BANNERS = (b"already in use",)

_HINTS = {
    errno.ENOENT: "no such port {url}: list ports with nanohub ports, or use --port sim",
    errno.ENODEV: "no such port {url}: list ports with nanohub ports, or use --port sim",
    errno.ENXIO: "no such port {url}: list ports with nanohub ports, or use --port sim",
    errno.EACCES: "permission denied on {url}: add your user to the dialout group "
                  "(sudo usermod -aG dialout $USER) and log in again",
    errno.EPERM: "permission denied on {url}: add your user to the dialout group "
                 "(sudo usermod -aG dialout $USER) and log in again",
    errno.EBUSY: "port {url} is busy: another program (mpremote, a serial monitor, another "
                 "nanohub) has it open; close it and retry",
    errno.EAGAIN: "port {url} is busy: another program (mpremote, a serial monitor, another "
                  "nanohub) has it open; close it and retry",
    errno.ECONNREFUSED: "connection refused at {url}: nothing listens there; is the hub "
                        "running (nanohub sim starts an emulated one)?",
    errno.EHOSTUNREACH: "cannot reach {url}: check the address",
    errno.ETIMEDOUT: "no answer connecting to {url}: check the address",
}

# scheme -> (has a baud rate, takes write_timeout, takes exclusive)
_KINDS = {
    "": (True, True, True),             # a device: /dev/ttyACM0, COM3, /dev/pts/N
    "spy": (True, True, True),          # spy://DEVICE wraps a device
    "hwgrep": (True, True, True),       # resolves to a device
    "alt": (True, True, True),          # a device opened with another Serial class
    "loop": (True, True, False),
    "rfc2217": (True, False, False),    # write_timeout: NotImplementedError in pyserial 3.5
    "socket": (False, True, False),
    "cp2110": (True, True, False),
}

_NETWORK_FORM = {
    "socket": "socket://HOST:PORT (e.g. socket://127.0.0.1:7000)",
    "rfc2217": "rfc2217://HOST:PORT[?ign_set_control] (e.g. rfc2217://127.0.0.1:7000)",
}


def free_port():
    """A loopback TCP port nobody listens on now (another process may take
    it before the caller binds it: callers that can, retry)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scheme_of(url):
    """The URL kind: "" for a device path, else the part before ``://`` (lower case)."""
    if "://" not in url:
        return ""
    return url.split("://", 1)[0].lower()


def port_options(url, baudrate=DEFAULT_BAUD):
    """The keyword arguments pyserial's handler for ``url`` accepts."""
    baud, write_timeout, exclusive = _KINDS.get(scheme_of(url), (False, False, False))
    kw = {"timeout": READ_TIMEOUT}
    if baud:
        kw["baudrate"] = baudrate
    if write_timeout:
        kw["write_timeout"] = WRITE_TIMEOUT
    if exclusive:
        kw["exclusive"] = True
    return kw


def network_address(url):
    """(host, port) of a ``socket://`` or ``rfc2217://`` URL, else None.

    Raises UsageError for a malformed one, before pyserial sees it.
    """
    kind = scheme_of(url)
    if kind not in _NETWORK_FORM:
        return None
    bad = UsageError("invalid port %r: write it as %s" % (url, _NETWORK_FORM[kind]))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise bad from None
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise bad
    return parts.hostname, port


def _link_error(url, exc):
    code = getattr(exc, "errno", None)
    if not isinstance(code, int):
        match = re.search(r"\[Errno (\d+)\]", str(exc))
        code = int(match.group(1)) if match else None
    if code is None and "timed out" in str(exc):
        code = errno.ETIMEDOUT
    hint = _HINTS.get(code)
    if hint:
        return LinkError(hint.format(url=url))
    return LinkError("cannot open %s: %s" % (url, _one_line(exc)))


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return "%s%s" % (type(exc).__name__ if not text else "", text[0] if text else "")


def in_use_error(url):
    return LinkError("port in use by another program: the serial server at %s serves its "
                     "device to one client at a time and another client has it; close that "
                     "client (or share one link with nanohub serve) and retry" % url)


def says_in_use(data):
    return any(b in data for b in IN_USE_BANNERS)


def probe_in_use(url, wait=0.5):
    """True when the server at a network URL answers a new connection with a
    'port in use' banner (ser2net does, then hangs up)."""
    addr = network_address(url)
    if addr is None:
        return False
    import time
    got = b""
    try:
        with socket.create_connection(addr, timeout=wait) as s:
            deadline = time.monotonic() + wait
            while len(got) < 512:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                chunk = s.recv(512)
                if not chunk:
                    break
                got += chunk
                if says_in_use(got):
                    return True
    except OSError:
        return False
    return says_in_use(got)


def _no_delay(port):
    """TCP_NODELAY on a socket:// link (pyserial sets it for rfc2217:// only):
    otherwise a request sent while the last heartbeat is not yet acknowledged
    waits for the peer's delayed ACK, up to 40 ms on Linux."""
    sock = getattr(port, "_socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def open_port(url, baudrate=DEFAULT_BAUD):
    """Open any pyserial URL, mapping every failure to UsageError or LinkError."""
    import serial
    network_address(url)                # a malformed socket:// or rfc2217:// is a usage error
    try:
        port = serial.serial_for_url(url, **port_options(url, baudrate))
        _no_delay(port)
        return port
    except ValueError as e:
        raise UsageError("invalid port %r: %s (try a device such as /dev/ttyACM0, "
                         "socket://HOST:PORT, rfc2217://HOST:PORT or sim)" % (url, e)) from None
    except (serial.SerialException, OSError) as e:
        if scheme_of(url) in _NETWORK_FORM and probe_in_use(url):
            raise in_use_error(url) from None
        if "expected a string in the form" in str(e):
            raise UsageError("invalid port %r: %s" % (url, _one_line(e))) from None
        raise _link_error(url, e) from None
    except Exception as e:              # anything else pyserial raises is still the link
        raise LinkError("cannot open %s: %s: %s" % (url, type(e).__name__, _one_line(e))) from None
