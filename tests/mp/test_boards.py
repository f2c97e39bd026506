"""The MCU board modules (rp2, stm32) and the terminal SITL board (unix_tty)
on the MicroPython VM, against a fake ``machine`` that records what they did.

The host link is a real console object over a loopback TCP pair (select.poll
and readinto work on it as on a board's stdin); ``micropython.kbd_intr`` is
a recording fake while a board is built.
"""
import os
import socket
import struct
import sys

import mptest
from mptest import eq, true

_file = getattr(mptest, "__file__", "mptest.py")
_here = _file.rsplit("/", 1)[0] if "/" in _file else "."
sys.path.insert(0, _here + "/fake_machine")
import machine  # noqa: E402  (the fake one)

if not hasattr(machine, "calls"):
    raise AssertionError("the fake machine module was not found in " + _here + "/fake_machine")

from hub import frame, wire  # noqa: E402
from tmpstore import _rmtree, _unique  # noqa: E402
from wire_names import NAMES  # noqa: E402


def fields(rx):
    return struct.unpack_from(wire.MSGS[rx.msg][0], rx.buf, wire.HEADER_SIZE)


BOARD_MODULES = ("boards.console", "boards.tcpbus", "boards.rp2", "boards.stm32", "boards.unix_tty")


class FakeMicropython:
    def __init__(self):
        self.kbd = []

    def kbd_intr(self, c):
        self.kbd.append(c)


class Pair:
    """Two connected loopback sockets: ``board`` side and ``host`` side."""

    def __init__(self):
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        port = 0
        for k in range(50):
            port = 20000 + (os.urandom(2)[0] << 8 | os.urandom(1)[0]) % 30000
            try:
                srv.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
                break
            except OSError:
                continue
        srv.listen(1)
        self.host = socket.socket()
        self.host.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        self.board, _ = srv.accept()
        srv.close()
        self.host.setblocking(False)

    def recv_all(self, want, tries=200):
        out = bytearray()
        import time
        for _ in range(tries):
            try:
                d = self.host.read(4096)
            except OSError:
                d = None
            if d:
                out.extend(d)
                if len(out) >= want:
                    break
            else:
                time.sleep_ms(5)
        return bytes(out)

    def close(self):
        self.host.close()
        self.board.close()


class Rig:
    """A board of ``kind`` on a temporary store, its console on a Pair."""

    def __init__(self, kind="rp2", cause=1, wiring=None, **changes):
        machine.clear(cause)
        self.fake = FakeMicropython()
        self.path = (os.getenv("TMPDIR") or "/tmp").rstrip("/") + "/nanohub-board-" + _unique()
        self.pair = Pair()
        old = sys.modules.get("micropython")
        sys.modules["micropython"] = self.fake
        try:
            from boards.console import Console
            con = Console(self.pair.board, self.pair.board)
            if kind == "unix_tty":
                from boards.unix_tty import Board
                self.board = Board(None, self.path, console=con)
            else:
                mod = __import__("boards." + kind, None, None, ["Board"])
                w = dict(wiring if wiring is not None else mod.WIRING)
                w["store"] = self.path
                w.update(changes)
                self.board = mod.Board(w, console=con)
        finally:
            if old is None:
                del sys.modules["micropython"]
            else:
                sys.modules["micropython"] = old

    def uart(self):
        return machine.made["UART"][0]

    def close(self):
        self.board.close()
        self.pair.close()
        try:
            _rmtree(self.path)
        except OSError:
            pass


def _call(name):
    return [c for c in machine.calls if c[0] == name]


def _hello():
    tx = frame.Tx()
    o = tx.begin(wire.M_HELLO, 7, wire.ADDR_HUB)
    payload = struct.pack(wire.HELLO_FMT, wire.SCHEMA, 1)
    tx.raw[o:o + len(payload)] = payload
    n = tx.finish(len(payload))
    return bytes(tx.out[:n])


def _frames(data):
    rx = frame.Rx()
    out = []
    i = 0
    while i < len(data):
        i = rx.feed(data, i, len(data))
        if rx.ready and not rx.err:
            out.append((rx.msg, dict(zip(NAMES[rx.msg][0], fields(rx)))))
    return out


# ------------------------------------------------------------------ tests --

def test_importing_the_board_modules_touches_no_hardware():
    machine.clear()
    for name in BOARD_MODULES:
        sys.modules.pop(name, None)
    old = sys.modules.get("micropython")
    fake = FakeMicropython()
    sys.modules["micropython"] = fake
    try:
        for name in BOARD_MODULES:
            __import__(name)
    finally:
        if old is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = old
    eq(machine.calls, [])
    eq(fake.kbd, [])


def test_rp2_wires_the_bus_uart_and_led_from_its_wiring_and_takes_over_ctrl_c():
    from boards import rp2
    r = Rig("rp2")
    try:
        eq(r.fake.kbd, [-1])
        uarts = _call("UART")
        eq(len(uarts), 1)
        _, uid, baud, kw = uarts[0]
        eq(uid, rp2.WIRING["bus_uart"])
        eq(baud, r.board.wiring["bus_baud"])
        eq(kw["timeout"], 0)
        eq(kw["rxbuf"], r.board.wiring["bus_rxbuf"])
        eq(kw["txbuf"], rp2.WIRING["bus_txbuf"])
        eq((kw["tx"].id, kw["rx"].id), (rp2.WIRING["bus_tx"], rp2.WIRING["bus_rx"]))
        true(("Pin", "LED", machine.Pin.OUT) in machine.calls, "LED pin made as output")
        eq(_call("WDT"), [])                      # not before the loop runs
        eq(r.board.name, "rp2")
    finally:
        r.close()
    eq(r.fake.kbd, [-1, 3])                       # close gives Ctrl-C back


def test_stm32_keeps_the_uarts_fixed_pins_and_has_no_txbuf():
    from boards import stm32
    r = Rig("stm32")
    try:
        _, uid, baud, kw = _call("UART")[0]
        eq(uid, 2)
        eq(baud, 460800)                          # MCU_WIRING's
        true("tx" not in kw and "rx" not in kw and "txbuf" not in kw, repr(kw))
        true(("Pin", "LED_GREEN", machine.Pin.OUT) in machine.calls)
        eq(r.board.name, "stm32")
        eq(stm32.WIRING["store"], "/flash/nanohub")
    finally:
        r.close()


def test_the_watchdog_starts_at_the_first_feed_and_is_fed_every_time():
    r = Rig("rp2")
    try:
        eq(machine.made["WDT"], [])
        r.board.wdt_feed()
        eq(_call("WDT"), [("WDT", 2000)])
        r.board.wdt_feed()
        r.board.wdt_feed()
        eq(len(machine.made["WDT"]), 1)
        eq(machine.made["WDT"][0].fed, 3)
    finally:
        r.close()


def test_reset_causes_map_to_the_wire_codes():
    cases = ((machine.PWRON_RESET, wire.RESET_POWER), (machine.WDT_RESET, wire.RESET_WATCHDOG),
             (machine.SOFT_RESET, wire.RESET_SOFT), (machine.HARD_RESET, wire.RESET_HARD),
             (machine.DEEPSLEEP_RESET, wire.RESET_HARD), (99, wire.RESET_HARD))
    for cause, want in cases:
        r = Rig("stm32", cause=cause)
        try:
            eq(r.board.reset_cause(), want, "machine cause %d" % cause)
        finally:
            r.close()


def test_the_console_carries_every_byte_value_both_ways():
    r = Rig("rp2")
    try:
        data = bytes(range(256))
        r.pair.host.write(data)
        got = bytearray()
        buf = bytearray(100)
        import time
        for _ in range(200):
            n = r.board.host_read(buf)
            got.extend(buf[:n])
            if len(got) >= 256:
                break
            if not n:
                time.sleep_ms(5)
        eq(bytes(got), data)
        out = bytearray(data)
        eq(r.board.host_write(out, 0, 200), 200)
        eq(r.pair.recv_all(200), data[:200])
    finally:
        r.close()


def test_the_bus_uart_reads_what_arrived_and_writes_only_n_bytes():
    r = Rig("rp2")
    try:
        u = r.uart()
        buf = bytearray(8)
        eq(r.board.bus_read(buf), 0)
        u.feed(b"0123456789")
        eq(r.board.bus_read(buf), 8)
        eq(bytes(buf), b"01234567")
        eq(r.board.bus_read(buf), 2)
        out = bytearray(b"abcdefgh")
        r.board.bus_write(out, 5)
        r.board.bus_write(out, 3)
        eq(bytes(u.tx), b"abcdeabc")
    finally:
        r.close()


def test_a_board_without_bus_uart_or_led_still_runs():
    machine.clear()
    r = Rig("rp2", bus_uart=None, led=None)
    try:
        eq(_call("UART"), [])
        eq(_call("Pin"), [])
        eq(r.board.bus_read(bytearray(4)), 0)
        r.board.bus_write(bytearray(4), 4)
        r.board.led(True)
        r.board.wdt_feed()
    finally:
        r.close()


def test_a_missing_led_pin_is_tolerated():
    from boards import rp2
    machine.clear()
    machine.missing_pins.append("LED")
    w = dict(rp2.WIRING)
    w["bus_uart"] = None
    # Rig clears the fake; build by hand so the missing pin stays missing
    fake = FakeMicropython()
    pair = Pair()
    path = "/tmp/nanohub-board-" + _unique()
    sys.modules["micropython"] = fake
    try:
        from boards.console import Console
        from boards.rp2 import Board
        w["store"] = path
        b = Board(w, console=Console(pair.board, pair.board))
    finally:
        del sys.modules["micropython"]
    try:
        b.led(True)
        b.wdt_feed()
        eq(machine.made["Pin"], [])
    finally:
        b.close()
        pair.close()
        _rmtree(path)


def _ticks_until(r, hub, enough, ticks=40):
    """Tick the hub 5 ms apart on the board's clock until ``enough(frames)``
    holds for the frames it wrote to the console, or ``ticks`` pass: those frames."""
    import time
    got = []
    for _ in range(ticks):
        time.sleep_ms(5)
        hub.tick(r.board.ticks_ms())
        got += _frames(r.pair.recv_all(1, tries=2))
        if enough(got):
            break
    return got


def test_the_hub_runs_on_the_rp2_board_and_answers_hello_on_the_console():
    from hub.core import Hub
    r = Rig("rp2", cause=machine.WDT_RESET)
    try:
        hub = Hub(r.board, 4, 0x1234ABCD)
        now = r.board.ticks_ms()
        hub.boot(now)
        r.pair.host.write(_hello())
        got = _ticks_until(r, hub, lambda got: any(m == wire.M_HELLO_REPLY for m, _ in got))
        replies = [f for m, f in got if m == wire.M_HELLO_REPLY]
        true(replies, "no HELLO_REPLY on the console; got %r" % [m for m, _ in got])
        f = replies[0]
        eq(bytes(f["board"]).rstrip(b"\0"), b"rp2")
        eq(f["hub_id"], 0x1234ABCD)
        eq(f["reset_cause"], wire.RESET_WATCHDOG)
        true(machine.made["WDT"] and machine.made["WDT"][0].fed > 0, "watchdog fed by the tick")
        true(r.board.store().read("state.bin") is not None, "state stored on the board store")
    finally:
        r.close()


def test_unix_tty_serves_the_console_and_stops_when_the_terminal_hangs_up():
    from hub.core import Hub
    r = Rig("unix_tty")
    try:
        eq(r.fake.kbd, [-1])
        hub = Hub(r.board, 4, 7)
        hub.boot(r.board.ticks_ms())
        r.pair.host.write(_hello())
        got = _ticks_until(r, hub, lambda got: got)
        eq([m for m, _ in got][:1], [wire.M_HELLO_REPLY])
        eq(bytes(got[0][1]["board"]).rstrip(b"\0"), b"unix_tty")
        eq(r.board.stopping(), False)
        r.pair.host.close()
        for k in range(20):
            r.board.host_read(bytearray(16))
            if r.board.stopping():
                break
            time.sleep_ms(5)
        eq(r.board.stopping(), True)
    finally:
        r.close()


def _escape(data, ms):
    from boards.console import boot_escape
    pair = Pair()
    fake = FakeMicropython()
    sys.modules["micropython"] = fake
    try:
        pair.host.write(data)
        return boot_escape(ms, pair.board), fake.kbd
    finally:
        del sys.modules["micropython"]
        pair.close()


def test_the_boot_escape_needs_three_ctrl_c_in_a_row():
    eq(_escape(b"\x03\x01\x03\x03\x03", 300), (True, [-1, 3]))     # REPL back, Ctrl-C on
    eq(_escape(b"\x03\x03x\x03\x00\x03\x03", 100), (False, [-1]))  # hub next, Ctrl-C off
    eq(_escape(b"", 50), (False, [-1]))


def _big_frame():
    tx = frame.Tx()
    o = tx.begin(wire.M_BOT_STATES, 3, 0)
    count = wire.BOT_STATES_MAX
    tx.raw[o] = 0
    tx.raw[o + 1] = count
    for k in range(count * wire.BOT_STATES_REC_SIZE):
        tx.raw[o + 2 + k] = (k * 7 + 1) & 0xFF
    n = tx.finish(2 + count * wire.BOT_STATES_REC_SIZE)
    return bytearray(tx.out[:n])


class _Counter:
    """Whole and broken frames in a byte stream, fed in pieces."""

    def __init__(self):
        self.rx = frame.Rx()
        self.good = self.bad = 0

    def feed(self, data):
        rx = self.rx
        i = 0
        while i < len(data):
            i = rx.feed(data, i, len(data))
            if rx.ready:
                if rx.err:
                    self.bad += 1
                else:
                    self.good += 1


def test_a_console_nobody_reads_refuses_bytes_instead_of_blocking_and_never_tears_a_frame():
    import time
    from hub.compat import ticks_diff, ticks_ms
    r = Rig("rp2")
    try:
        # small socket buffers (Linux SO_SNDBUF 7, SO_RCVBUF 8): filled in a few
        # hundred frames rather than megabytes
        r.pair.board.setsockopt(socket.SOL_SOCKET, 7, 4096)
        r.pair.host.setsockopt(socket.SOL_SOCKET, 8, 4096)
        buf = _big_frame()
        n = len(buf)
        whole = off = worst = 0
        refused = False
        for _ in range(50000):
            t = ticks_ms()
            w = r.board.host_write(buf, off, n - off)
            dt = ticks_diff(ticks_ms(), t)
            worst = dt if dt > worst else worst
            off += w
            if off == n:
                whole += 1
                off = 0
            if w == 0:
                refused = True
                break
        true(refused, "the console never filled")
        true(worst < 50, "a console write took %d ms" % worst)
        got = _Counter()
        idle = 0
        while idle < 20:                    # the host reads again; the hub finishes its frame
            try:
                chunk = r.pair.host.read(65536)
            except OSError:
                chunk = None
            if chunk:
                got.feed(chunk)
                idle = 0
            else:
                idle += 1
                time.sleep_ms(1)
            if off:
                off += r.board.host_write(buf, off, n - off)
                if off == n:
                    whole += 1
                    off = 0
        eq((got.good, got.bad), (whole, 0))
        true(whole >= 5, "only %d frames fitted" % whole)
    finally:
        r.close()


def test_the_board_is_named_by_option_then_board_py_then_the_platform():
    from hub import config
    o = {"board": "null", "bots": "4"}
    eq(config.board_name(o), "null")
    eq(o, {"bots": "4"})                        # the board's own options stay for it
    eq(config.DEFAULTS["pyboard"], "stm32")     # the stm32 port calls itself "pyboard"

    class Written:                              # what nanohub flash writes as board.py
        NAME = "rp2"
    sys.modules["board"] = Written
    try:
        eq(config.board_name({}), "rp2")
    finally:
        del sys.modules["board"]
    eq(config.board_name({}), config.DEFAULTS[sys.platform])


def test_make_builds_the_named_board_from_the_options_it_takes():
    from hub import config
    board, hub = config.make(["--board", "null", "--bots", "4", "--hub-id", "0x10"])
    eq((board.name, hub.state_store.hub_id, hub.board is board), ("null", 0x10, True))
    for argv in (["--board", "null", "--store", "x"], ["--board", "null", "--bogus", "1"]):
        try:
            config.make(argv)
        except ValueError as e:
            true("--" + argv[2][2:] in str(e), str(e))
        else:
            raise AssertionError("%r was taken" % (argv,))


def test_the_watchdog_timeout_is_the_wdt_ms_parameter_at_boot():
    from hub import params
    from hub.core import Hub
    from hub.params import Params
    r = Rig("rp2")
    try:
        stored = Params(r.board.store())
        eq(stored.set(params.P_WDT_MS, 3500)[0], True)
        hub = Hub(r.board, 4, 1)
        hub.boot(r.board.ticks_ms())
        eq(machine.made["WDT"], [], "the watchdog starts at the first feed, after boot")
        hub.tick(r.board.ticks_ms())
        eq(_call("WDT"), [("WDT", 3500)])
    finally:
        r.close()
