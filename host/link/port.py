"""Opening a port: any pyserial URL, with failures mapped to one clear LinkError."""
import errno
import re

from ..errors import LinkError, UsageError


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


def _link_error(url, exc):
    code = getattr(exc, "errno", None)
    if not isinstance(code, int):
        match = re.search(r"\[Errno (\d+)\]", str(exc))
        code = int(match.group(1)) if match else None
    if code is None and "timed out" in str(exc):
        code = errno.ETIMEDOUT
    hint = _HINTS.get(code)
    return LinkError(hint.format(url=url) if hint else "cannot open %s: %s" % (url, exc))


def open_port(url, baudrate=115200):
    """Open any pyserial URL, mapping failures to one clear LinkError."""
    import serial
    kw = {"timeout": 0.05, "write_timeout": 2.0}
    if "://" not in url:
        kw.update(baudrate=baudrate, exclusive=True)
    try:
        return serial.serial_for_url(url, **kw)
    except ValueError as e:
        raise UsageError("invalid port %r: %s (try a device such as /dev/ttyACM0, "
                         "socket://HOST:PORT or sim)" % (url, e)) from None
    except (serial.SerialException, OSError) as e:
        raise _link_error(url, e) from None


