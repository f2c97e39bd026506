"""A process's terminal carried to a pseudo-terminal any serial tool can open.

    relay = PtyRelay()
    child = subprocess.Popen(argv, stdin=relay.child_fd, stdout=relay.child_fd)
    relay.start()                 # closes our copy of the child's end
    print(relay.path)             # /dev/pts/N: pyserial, ser2net, socat, minicom

Two PTY pairs and a relay thread, like the USB-serial bridge of a board: the
child's terminal (raw) on one side, the user's PTY (``path``) on the other.
While nobody has ``path`` open, the child's output is dropped, as a bridge
drops what a closed port would receive, so the next opener starts on fresh
frames instead of tens of KB of stale ones, and the child is never stopped
by a full terminal buffer. Writes to a user that opened the port but does
not read are dropped the same way (counted in ``dropped``).
"""
import errno
import os
import pty
import select
import threading
import time
import tty

_CHUNK = 4096
_PROBE_S = 0.02         # how often a closed user side is looked at again


class PtyRelay:
    """Relay between a child's terminal and the user's PTY at ``path``."""

    def __init__(self):
        self._child_master, self.child_fd = pty.openpty()
        self._user_master, user_slave = pty.openpty()
        for fd in (self.child_fd, user_slave):
            tty.setraw(fd)      # no echo, no line editing, no signals: a binary line
        self.path = os.ttyname(user_slave)
        os.close(user_slave)    # a hang-up on our side then says: nobody has it open
        os.set_blocking(self._user_master, False)
        self.dropped = 0        # bytes of the child's output nobody took
        self.attached = False
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        """Start relaying (after the child has its end: ours is closed here)."""
        if self.child_fd is not None:
            os.close(self.child_fd)
            self.child_fd = None
        self._thread = threading.Thread(target=self._run, name="nanohub-pty-relay", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        for fd in (self.child_fd, self._child_master, self._user_master):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.child_fd = self._child_master = self._user_master = None

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------ relay --

    def _run(self):
        child, user = self._child_master, self._user_master
        poll = select.poll()
        poll.register(child, select.POLLIN)
        next_probe = 0.0
        while not self._stop.is_set():
            if not self.attached:
                now = time.monotonic()
                if now >= next_probe:
                    next_probe = now + _PROBE_S
                    if self._from_user(child, user):
                        poll.register(user, select.POLLIN)
            try:
                events = poll.poll(_PROBE_S * 1000 if not self.attached else 200)
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == child:
                    if not self._from_child(child, user):
                        return          # the child ended
                elif not self._from_user(child, user):
                    poll.unregister(user)

    def _from_child(self, child, user):
        try:
            data = os.read(child, _CHUNK)
        except OSError:
            return False
        if not data:
            return False
        if not self.attached:
            self.dropped += len(data)
            return True
        try:
            n = os.write(user, data)
        except BlockingIOError:
            n = 0
        except OSError:         # closed between two reads
            self.attached = False
            n = 0
        self.dropped += len(data) - n
        return True

    def _from_user(self, child, user):
        """Forward what the user sent; False (detached) when nobody has the port open."""
        try:
            data = os.read(user, _CHUNK)
        except BlockingIOError:
            self.attached = True
            return True
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            self.attached = False
            return False
        self.attached = True
        while data:
            try:
                n = os.write(child, data)
            except OSError:
                return True     # the child is gone: its side reports it
            data = data[n:]
        return True
