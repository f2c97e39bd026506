"""Single key presses from the terminal, without waiting for Enter.

POSIX: the terminal in cbreak mode (``termios``), restored on exit whatever
happens, and ``select`` to wait. Windows: ``msvcrt``, polled.
"""
import os
import time

try:
    import termios
    import tty
except ImportError:                 # Windows
    termios = tty = None


class Keys:
    def __init__(self, stream):
        self.stream = stream
        self.saved = None

    def __enter__(self):
        if termios is not None:
            self.fd = self.stream.fileno()
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            self.saved = None

    def get(self, timeout):
        """One key pressed within ``timeout`` seconds, or None."""
        if termios is not None:
            import select
            ready, _, _ = select.select([self.fd], [], [], timeout)
            return os.read(self.fd, 1).decode("latin-1") if ready else None
        import msvcrt
        end = time.monotonic() + timeout
        while True:
            if msvcrt.kbhit():
                return msvcrt.getwch()
            if time.monotonic() >= end:
                return None
            time.sleep(0.02)
