"""Talk to a MicroPython board's REPL: raw REPL exec/eval, banner, what it is.

    with Mcu.open("/dev/ttyACM0") as mcu:
        board = mcu.probe()        # version, .mpy bytecode, free RAM and filesystem
        mcu.eval("1 + 1")

Any pyserial URL works: a USB port, a pseudo-terminal, ``socket://`` (QEMU,
Renode). Built on mpremote's serial transport (raw REPL, raw-paste with
fallback for old firmware such as the micro:bit's 1.9.2). It never
soft-resets: Ctrl-D ends the unix port's process and reruns a board's
main.py. Failures raise the host's typed errors (exit code 3).
"""
import ast
import contextlib
import io
import time

from .errors import LinkError, LinkTimeout

__all__ = ["Mcu", "BoardInfo", "NotMicroPython", "DeviceError", "parse_banner"]

_RAW_TIMEOUT = 1.5       # s for the raw REPL banner after Ctrl-A, per attempt
_EXEC_TIMEOUT = 10.0     # s of silence before an exec is given up
_SLOW_CHUNK = 32         # bytes per 10 ms to a board without raw-paste
_RESENDS = 2             # code such a board read garbled, sent again at half the pace

# Small enough for a 16 KB micro:bit; Python 3.4 syntax (MicroPython 1.9).
_PROBE = """import sys,gc
i=sys.implementation
f=None
c=None
try:
 import os
 c=os.getcwd()
 s=os.statvfs(c)
 f=(s[0],s[3],s[2])
except:
 pass
m=getattr(i,'_machine','')
if not m:
 try:
  m=os.uname()[4]
 except:
  pass
gc.collect()
print(repr((i.name,tuple(i.version),getattr(i,'_mpy',-1),sys.platform,m,gc.mem_free(),f,c)))
"""


class NotMicroPython(LinkError):
    """No MicroPython REPL answered on the port."""


class DeviceError(LinkError):
    """Code sent to the board raised; the message is its last traceback line."""

    def __init__(self, message, output=""):
        self.output = output
        super().__init__(message)


def parse_banner(text):
    """(version tuple, rest) from 'MicroPython v1.9.2-34-g...; micro:bit ...'."""
    import re
    m = re.search(r"MicroPython v(\d+)\.(\d+)(?:\.(\d+))?[^;\r\n]*(?:;\s*([^\r\n]*))?", text)
    if not m:
        return None, ""
    return tuple(int(g or 0) for g in m.groups()[:3]), (m.group(4) or "").strip()


class BoardInfo(dict):
    """What ``Mcu.probe`` found: a dict with attribute access.

    name, version (tuple), version_text, mpy (major, minor) or None, arch (the
    native-code index of ``_mpy``), platform, machine, mem_free (bytes),
    fs_block, fs_free (bytes) or None (unknown), cwd.
    """

    __getattr__ = dict.__getitem__

    @classmethod
    def from_probe(cls, t):
        name, version, mpy, platform, machine, mem_free, fs, cwd = t
        version = tuple(v for v in version if isinstance(v, int))
        d = cls(name=name, version=version, platform=platform, machine=machine or "",
                mem_free=mem_free, cwd=cwd, mpy=None, arch=None, fs_block=None, fs_free=None)
        d["version_text"] = ".".join(str(v) for v in version)
        if isinstance(mpy, int) and mpy >= 0:
            d["mpy"] = (mpy & 0xFF, (mpy >> 8) & 3)
            d["arch"] = mpy >> 10
        if fs:
            d["fs_block"] = fs[0]
            d["fs_free"] = fs[0] * fs[1]
        return d

    def describe(self):
        where = self.machine or self.platform
        mpy = " (.mpy v%d.%d)" % self.mpy if self.mpy else ""
        return "MicroPython %s on %s%s" % (self.version_text, where, mpy)


class Mcu:
    """A MicroPython REPL in raw mode on one open port. Use :meth:`open`."""

    def __init__(self, transport, url):
        self.t = transport
        self.url = url
        self.chunk = _SLOW_CHUNK     # bytes per 10 ms without raw-paste (halved on loss)
        transport.exec_raw_no_follow = self._send_code   # paced on old firmware (below)

    # ------------------------------------------------------------ life --
    @classmethod
    def open(cls, url, wait=0.0, baudrate=115200):
        """Open ``url`` and enter the raw REPL, interrupting what runs.

        ``wait``: keep trying that long (seconds), reopening the port (a USB
        board re-enumerates when reset) and sending three Ctrl-C in a row
        (the nanohub main.py's boot escape) every 0.3 s, so that the user can
        reset a board whose hub owns the console.
        """
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            last = time.monotonic() >= deadline
            try:
                mcu = cls(cls._transport(url, baudrate), url)
            except LinkError:
                if last:
                    raise
                time.sleep(0.1)
                continue
            try:
                mcu.enter_raw(_RAW_TIMEOUT if last else 0.3)
                mcu._settle()
                return mcu
            except BaseException as e:
                mcu.close()
                if last or not isinstance(e, LinkError):
                    raise

    @staticmethod
    def _transport(url, baudrate):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return SerialTransport(url, baudrate=baudrate, timeout=1.0)
        except TransportError:
            from .link import open_port
            open_port(url, baudrate).close()    # raises the precise LinkError
            raise LinkError("cannot open %s" % url) from None

    def close(self):
        """Close the port, whatever the line does: mpremote first drops RTS and
        DTR, which an RFC 2217 server serving a PTY (ser2net) never confirms;
        the port must still be closed, or the server keeps refusing the next
        client (the hub's own handshake after a flash)."""
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.t.close()
        except Exception:
            pass
        try:
            self.t.serial.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def enter_raw(self, timeout=_RAW_TIMEOUT):
        """Ctrl-C (three: the boot escape), Ctrl-A; NotMicroPython if no raw REPL answers."""
        from mpremote.transport import TransportError
        out = io.StringIO()
        try:
            self.t.serial.write(b"\x03\x03\x03")
            with contextlib.redirect_stdout(out):
                self.t.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
            return
        except TransportError:
            heard = out.getvalue().strip()
        except OSError as e:
            raise LinkError("lost the link to %s (%s)" % (self.url, e)) from None
        if heard and heard not in ("b''", "b'\\r\\n'"):
            raise NotMicroPython(
                "the device on %s answered, but no MicroPython REPL (it sent %s): is it the "
                "right port, and does the board run MicroPython?" % (self.url, heard[:60]))
        raise NotMicroPython(
            "no MicroPython REPL answered on %s: check the port (nanohub ports) and that the "
            "board runs MicroPython" % self.url)

    def _send_code(self, command):
        """mpremote's send, but paced where the board has no raw-paste flow control.

        Without raw-paste (MicroPython before 1.13, e.g. the micro:bit's 1.9.2)
        nothing slows the host down, and a small UART ring buffer drops what
        the board cannot take yet (mpremote sends 256 B per 10 ms): send
        32 B per 10 ms instead, below what a 115200 Bd line carries.
        """
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport
        t = self.t
        if t.use_raw_paste:            # first use finds out (with a short command: _settle)
            return SerialTransport.exec_raw_no_follow(t, command)
        data = command if isinstance(command, bytes) else command.encode()
        if not t.read_until(1, b">").endswith(b">"):
            raise TransportError("could not enter raw repl")
        for i in range(0, len(data), self.chunk):
            t.serial.write(data[i:i + self.chunk])
            time.sleep(0.01)
        t.serial.write(b"\x04")
        answer = t.serial.read(2)
        if answer != b"OK":
            raise TransportError("could not exec command (response: %r)" % answer)

    def _settle(self):
        """Run nothing until no Ctrl-C is left pending (old ports keep one from
        the interrupts sent while entering the raw REPL and raise it in the next
        code run)."""
        for _ in range(3):
            try:
                self.exec("pass", timeout=3)
                return
            except DeviceError as e:
                if "KeyboardInterrupt" not in e.output:
                    raise

    # ------------------------------------------------------------ code --
    def _do(self, fn, *args, **kw):
        from mpremote.transport import TransportError, TransportExecError
        try:
            return fn(*args, **kw)
        except TransportExecError as e:
            text = (e.error_output or "").strip()
            last = text.splitlines()[-1] if text else "an error"
            raise DeviceError("the board at %s raised %s" % (self.url, last), text) from None
        except TransportError as e:
            raise LinkTimeout("the board at %s stopped answering (%s): reset it and retry"
                              % (self.url, e)) from None
        except OSError as e:
            if type(e) is OSError and e.errno:     # mpremote's report of a board-side OSError
                import errno
                raise DeviceError("the board at %s failed on %s: %s" % (
                    self.url, e.strerror, errno.errorcode.get(e.errno, e.errno))) from None
            raise LinkError("lost the link to %s (%s)" % (self.url, e)) from None

    def exec(self, code, timeout=_EXEC_TIMEOUT):
        """Run code; return what it printed (str). DeviceError if it raised.

        Without raw-paste nothing tells the host that the board's UART dropped
        bytes (a busy board, an emulator starved of CPU): the board then finds
        a SyntaxError in code that has none. What a SyntaxError stops never
        ran, so such code is sent again at half the pace, ``_RESENDS`` times."""
        def run():
            out, err = self.t.exec_raw(code, timeout=timeout)
            if err:
                from mpremote.transport import TransportExecError
                raise TransportExecError(out, err.decode(errors="replace"))
            return out
        for resend in range(_RESENDS + 1):
            try:
                return self._do(run).decode(errors="replace")
            except DeviceError as e:
                if resend == _RESENDS or not self._garbled(code, e):
                    raise
                self.chunk = max(4, self.chunk // 2)

    def _garbled(self, code, err):
        """The board's SyntaxError is bytes lost on the way: no raw-paste flow
        control, and the code as sent compiles."""
        lines = err.output.strip().splitlines()
        if self.t.use_raw_paste or not lines or not lines[-1].startswith("SyntaxError"):
            return False
        try:
            compile(code, "<board>", "exec")
        except SyntaxError:
            return False
        return True

    def eval(self, expr):
        """The value of a Python literal expression evaluated on the board."""
        return self._literal("print(repr(%s))" % expr, "to %s, not a value" % expr)

    def _literal(self, code, what):
        """The Python literal that ``code`` prints on the board; DeviceError says
        what it answered instead, and ``what`` was asked."""
        text = self.exec(code).strip()
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise DeviceError("the board at %s answered %r %s"
                              % (self.url, text[:80], what)) from None

    def run(self, code):
        """Start code without waiting for it to end (e.g. ``import main``)."""
        self._do(self.t.exec_raw_no_follow, code)

    def banner(self):
        """The friendly REPL's banner line (Ctrl-B), then back to raw mode."""
        s = self.t.serial
        self._do(s.write, b"\r\x02")
        data = self._do(self.t.read_until, 1, b">>> ", timeout=2)
        self.t.in_raw_repl = False
        text = data.decode(errors="replace")
        line = next((ln.strip() for ln in text.splitlines() if "MicroPython" in ln), "")
        self.enter_raw()
        return line

    def probe(self):
        """BoardInfo: version, bytecode, platform, free RAM, free filesystem."""
        text = self.exec(_PROBE).strip()
        try:
            return BoardInfo.from_probe(ast.literal_eval(text.splitlines()[-1]))
        except (ValueError, SyntaxError, IndexError, TypeError):
            raise DeviceError("the board at %s gave an unreadable description: %r"
                              % (self.url, text[:120])) from None

    # ----------------------------------------------------------- files --
    def files(self, dirs=(), names=()):
        """{path: size} of the plain files in ``dirs`` (not recursive) and ``names``."""
        code = ("import os\nr={}\n"
                "for d in %r:\n try:\n  for e in os.ilistdir(d):\n"
                "   if not e[1]&0x4000:\n    r[d+'/'+e[0]]=os.stat(d+'/'+e[0])[6]\n"
                " except OSError:\n  pass\n"
                "for n in %r:\n try:\n  r[n]=os.stat(n)[6]\n except OSError:\n  pass\n"
                "print(repr(r))" % (tuple(dirs), tuple(names)))
        return self._literal(code, "listing files")

    def read_file(self, path):
        """Bytes of a small file, or None if it does not exist."""
        code = ("try:\n f=open(%r,'rb')\n d=f.read()\n f.close()\nexcept OSError:\n d=None\n"
                "print(repr(d))" % path)
        return self._literal(code, "reading %s" % path)

    def mkdir(self, path):
        """Make a directory and its parents; existing ones are fine."""
        self.exec("import os\np=%r\nfor x in %r.split('/'):\n if x:\n"
                  "  p=p+x if p in('','/') else p+'/'+x\n  try:\n   os.mkdir(p)\n"
                  "  except OSError:\n   pass\nos.stat(%r)"
                  % ("/" if path.startswith("/") else "", path, path))

    def write_file(self, path, data, progress=None, chunk=512):
        """Write bytes to ``path`` (via ``path.tmp`` then rename: never half a file)."""
        tmp = path + ".tmp"
        self._do(self.t.fs_writefile, tmp, bytes(data), chunk_size=chunk,
                 progress_callback=progress)
        self.exec("import os\ntry:\n os.rename(%r,%r)\nexcept OSError:\n"
                  " os.remove(%r)\n os.rename(%r,%r)" % (tmp, path, path, tmp, path))

    def remove(self, path):
        self.exec("import os\ntry:\n os.remove(%r)\nexcept OSError:\n pass" % path)
