"""The host link: open a port, handshake, keep the heartbeat, exchange frames.

A reader thread decodes every frame and routes it: ACKs and replies to the
request waiting for them, telemetry to subscribers and to a latest-value
cache. A heartbeat thread keeps the hub's link-loss failsafe from pausing a
treatment while the connection is open. A command is retried by re-sending
the identical bytes (same request id, counter and tag): the hub answers a
repeated request from its ACK cache and never executes it twice.
"""
import random
import threading
import time

from nanohub.protocol import codec, model, schema
from nanohub.protocol.rules import HOST_VERSION  # noqa: F401 (the document states it)

from .. import keys
from .port import (  # noqa: F401 (_link_error re-exported)
    DEFAULT_BAUD, _link_error, in_use_error, open_port, probe_in_use, says_in_use, scheme_of,
)
from ..errors import (
    LinkError, LinkTimeout, NanohubError, NotANanohub, ProtocolMismatch, Refused, UsageError,
)
from ..views import (
    Ack, alarm_dict, bot_dicts, enum_name, enum_value, refusal_message, site_dict, text,
)
from . import local

HEARTBEAT_S = 0.25
TELEMETRY = frozenset(("HUB_STATUS", "BOT_STATES", "SITE_READINGS", "ALARM", "ESTOP_REPORT"))
REPL_MARKERS = (b">>>", b"MicroPython", b"raw REPL")
_DEAD = object()
_RESENDS = 4               # fresh signatures for a command refused before it ran
_EXPIRY_MARGIN_MS = 50     # signed frames expire this much inside the hub's fresh_ms
_open_serial = open_port


def open_port(url, *args, **kw):  # noqa: F811 (the session's opener wraps the serial one)
    """Any pyserial URL, or a broker's own (``nanohub://NAME``, ``nanohub+unix:///path``)."""
    target = local.resolve(url)
    if target.startswith(local.SCHEME_UNIX):
        return local.open_local(target, shown=url)
    local.check_held(target)
    return _open_serial(target, *args, **kw)


def _print_notice(code, message):
    import sys
    print("nanohub: " + message, file=sys.stderr, flush=True)


class HubInfo(dict):
    """HELLO_REPLY fields (board decoded); calling it asks the hub again.

    ``hub.info["hub_id"]`` reads what the handshake said; ``hub.info()``
    refreshes it (REQUEST INFO) and returns the new mapping.
    """

    def __init__(self, fields, link=None):
        super().__init__(fields)
        self._link = link

    def __call__(self):
        return self._link.refresh_info()


class _Waiter:
    """Frames for one reader; a slow reader loses the oldest, never the link error."""

    LIMIT = 10000

    def __init__(self, hub, match):
        self.hub, self.match = hub, match
        self.items = []
        self.cond = threading.Condition()

    def put(self, item):
        with self.cond:
            if len(self.items) >= self.LIMIT and self.items[0] is not _DEAD:
                del self.items[0]
            self.items.append(item)
            self.cond.notify_all()

    def get(self, timeout):
        """The next matching frame, None on timeout; raises if the link died."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self.cond:
            while not self.items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            item = self.items[0]
            if item is _DEAD:
                raise self.hub.error
            del self.items[0]
            return item

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.hub._unwait(self)


class Link:
    """A connected hub link: frames, waiters, commands. :class:`Hub` adds the typed calls."""

    def __init__(self, port, *, url=None, key=None, timeout=2.0, retries=3):
        self.port = port
        self.url = url or getattr(port, "portstr", None) or "?"
        self.timeout = timeout
        self.retries = max(1, retries)
        self.info = HubInfo({}, self)
        self.hub_id = None
        self.key_path = None
        self.error = None
        self.latest = {}            # telemetry name -> last Frame
        self.bot_table = {}         # bot id -> dict
        self.site_table = {}        # site -> dict
        self.alarm_table = {}       # alarm code name -> dict
        self.raw_tail = bytearray()  # last bytes received, for diagnosing a silent peer
        self.decoder = codec.StreamDecoder()
        self.rx_frames = 0
        self.last_rx = None
        self.sent = 0
        self.broker_notice = None
        self.on_notice = _print_notice     # called with (code, message) on a broker's notice
        self._key_arg = key
        self._key = None
        self._counter = None
        self._sign_lock = threading.Lock()     # the key and its counter, set together
        self._lock = threading.Lock()
        self._wlock = threading.Lock()
        self._waiters = []
        self._subs = []
        self._closed = threading.Event()
        self._req = random.randrange(1 << 16)
        self._seq = random.randrange(1 << 16)
        self._t0 = time.monotonic()
        self._heart = None
        self._clock = None          # (hub time ms, time.monotonic() when heard)
        self._answered_first = False
        self.fresh_ms = 1000        # the hub's bound on how far ahead a signed frame expires
        self._reader = threading.Thread(target=self._read_loop, name="nanohub-reader", daemon=True)
        self._reader.start()

    @classmethod
    def open(cls, url, key=None, timeout=2.0, retries=3, heartbeat=True, baudrate=DEFAULT_BAUD,
             handshake=True):
        """Open ``url``, handshake, start heartbeats; raise a typed error on failure.

        ``handshake=False`` opens the port only: an emergency stop needs no
        handshake and must not wait for one (a flooded link may not answer
        HELLO in time).
        """
        hub = cls(open_port(url, baudrate), url=url, key=key, timeout=timeout, retries=retries)
        try:
            if handshake:
                hub.handshake()
            if heartbeat:
                hub.start_heartbeat()
        except BaseException:
            hub.close()
            raise
        return hub

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._closed.is_set():
            return
        self._closed.set()
        for thread in (self._heart, self._reader):
            if thread is not None and thread is not threading.current_thread():
                thread.join(1.0)
        try:
            self.port.close()
        except Exception:
            pass
        self._fail(LinkError("the connection to %s is closed" % self.url))

    @property
    def closed(self):
        return self._closed.is_set()

    # ------------------------------------------------------- plumbing --

    def _read_loop(self):
        port = self.port
        while not self._closed.is_set():
            try:
                data = port.read(port.in_waiting or 1)
            except Exception as e:          # pyserial raises several kinds once a link drops
                if not self._closed.is_set():
                    self._fail(self._lost(e))
                return
            if not data:
                continue
            tail = self.raw_tail
            tail += data
            if len(tail) > 4096:
                del tail[:-4096]
            for item in self.decoder.feed(data):
                if not isinstance(item, codec.CodecError):
                    self._route(item)

    def _lost(self, exc):
        """The error for a link that dropped: a serial server's refusal says so."""
        if says_in_use(self.raw_tail) or (not self.rx_frames and scheme_of(self.url) in
                                          ("socket", "rfc2217") and probe_in_use(self.url)):
            return in_use_error(self.url)
        return LinkError("lost the link to the hub at %s (%s): check the cable or that the hub "
                         "is still running" % (self.url, str(exc).strip() or type(exc).__name__))

    def _route(self, f):
        self.rx_frames += 1
        self.last_rx = time.monotonic()
        if f.name in ("HUB_STATUS", "HELLO_REPLY"):
            self._clock = (f["t"], self.last_rx)     # hub time, no later than now
        if f.name in TELEMETRY:
            self._cache(f)
        with self._lock:
            waiters, subs = list(self._waiters), list(self._subs)
        for w in waiters:
            if w.match(f):
                w.put(f)
        if f.name in TELEMETRY:
            for q in subs:
                q.put(f)
        elif f.addr == local.ADDR_BROKER and f.name == "HEARTBEAT":
            self._broker_notice(f["t"])

    def _cache(self, f):
        self.latest[f.name] = f
        if f.name == "BOT_STATES":
            for bot in bot_dicts(f):
                self.bot_table[bot["id"]] = bot
        elif f.name == "SITE_READINGS":        # every site of the plan, in one frame
            self.site_table = {r["site"]: site_dict(r) for r in f.records}
        elif f.name == "ALARM":                # the hub keeps one state per alarm code
            a = alarm_dict(f)
            self.alarm_table[a["code"]] = a

    def _broker_notice(self, code):
        """A broker (nanohub serve) speaks about its link to the hub."""
        self.broker_notice = local.NOTICES.get(code, str(code))
        if code == local.NOTICE_GONE:
            self._fail(LinkError("lost the link to the hub behind %s: nanohub serve cannot "
                                 "reach it (check the hub; the broker keeps trying)" % self.url))
        elif self.on_notice is not None:
            self.on_notice(code, "the hub link behind %s dropped; nanohub serve is reconnecting"
                           % self.url if code == local.NOTICE_LOST else
                           "the hub link behind %s is back" % self.url)

    def _fail(self, err):
        if self.error is None:
            self.error = err
        with self._lock:
            targets = list(self._waiters) + list(self._subs)
        for t in targets:
            t.put(_DEAD)

    def _wait_for(self, match):
        w = _Waiter(self, match)
        with self._lock:
            self._waiters.append(w)
        return w

    def _unwait(self, w):
        with self._lock:
            if w in self._waiters:
                self._waiters.remove(w)

    def subscribe(self):
        """A waiter receiving every telemetry frame from now on (``get(timeout)``)."""
        w = _Waiter(self, None)
        with self._lock:
            self._subs.append(w)
        if self.error is not None:
            w.put(_DEAD)
        return w

    def unsubscribe(self, w):
        with self._lock:
            if w in self._subs:
                self._subs.remove(w)

    def send_raw(self, data):
        if self.error is not None:
            raise self.error
        if data[:1] != b"\0":
            # a leading delimiter closes whatever the line holds (noise, a cut
            # frame), so this frame is never merged into it; the hub skips
            # empty frames
            data = b"\0" + bytes(data)
        with self._wlock:
            try:
                self.port.write(data)
            except Exception as e:
                import serial
                if isinstance(e, serial.SerialTimeoutException):
                    raise LinkTimeout("writing to %s timed out: the device does not take data; "
                                      "unplug and replug it" % self.url) from None
                err = LinkError("lost the link to the hub at %s (%s)" % (self.url, e))
                self._fail(err)
                raise err from None
        self.sent += 1

    def _next_seq(self):
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _next_req(self):
        with self._lock:
            self._req = (self._req + 1) & 0xFFFF
            return self._req

    def elapsed_ms(self):
        return int((time.monotonic() - self._t0) * 1000) & 0xFFFFFFFF

    # ------------------------------------------------------ handshake --

    def handshake(self):
        """HELLO / HELLO_REPLY; fills ``info``. Raises a LinkError subclass on failure."""
        wire = b"\0" + codec.encode("HELLO", {"schema": model.FINGERPRINT,
                                               "host_version": HOST_VERSION},
                                    seq=self._next_seq())
        deadline = time.monotonic() + self.timeout
        reply = None
        try:
            with self._wait_for(lambda f: f.name == "HELLO_REPLY") as w:
                while reply is None:
                    self.send_raw(wire)         # at least once, however short the timeout
                    left = deadline - time.monotonic()
                    reply = w.get(max(0.0, min(0.5, left)))
                    if left <= 0:
                        break
                # a reply just after a very short --timeout is a slow answer, not a stranger
                late = w.get(0.5) if reply is None else None
        except LinkError as e:
            # a REPL may end on what it read of the HELLO (Ctrl-D quits the
            # unix port's, a board's resets) and take the link with it
            if self._repl_seen():
                raise self._not_a_nanohub() from e
            raise
        if late is not None:
            raise LinkTimeout("the hub on %s answered, but later than --timeout %g s: "
                              "give it longer (e.g. --timeout 2)" % (self.url, self.timeout))
        if reply is None:
            raise self._diagnose_silence(wire)
        self._take_info(reply)
        return self.info

    def _take_info(self, reply):
        info = dict(reply.fields)
        if (info["result"] == enum_value("HELLO", "SCHEMA")
                or info["schema"] != model.FINGERPRINT):
            raise ProtocolMismatch(
                "protocol mismatch: the hub at %s speaks schema 0x%08x, this host 0x%08x; "
                "flash firmware built from the same release (nanohub flash) or install the "
                "matching nanohub host" % (self.url, info["schema"], model.FINGERPRINT))
        info["board"] = text(info["board"])
        self.fresh_ms = info.get("fresh_ms") or self.fresh_ms
        self.info = HubInfo(info, self)
        self.hub_id = info["hub_id"]

    def _repl_seen(self):
        return any(m in self.raw_tail for m in REPL_MARKERS)

    def _not_a_nanohub(self):
        return NotANanohub("a MicroPython REPL answered on %s: the nanohub firmware is not "
                           "running; flash it with nanohub flash" % self.url)

    def _diagnose_silence(self, hello=b""):
        if says_in_use(self.raw_tail):
            return in_use_error(self.url)
        if self.error is not None:
            return self.error
        errors = self.decoder.errors
        foreign = {k: n for k, n in errors.items() if k in ("VERSION", "MSGID", "LENGTH", "SCHEMA")}
        if foreign:
            return ProtocolMismatch(
                "protocol mismatch: the device at %s sends frames this host cannot read (%s): "
                "its firmware and this host come from different releases; update one of them"
                % (self.url, ", ".join(sorted(foreign))))
        try:
            self.send_raw(b"\r\x03")
        except NanohubError:
            pass
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            if self._repl_seen():
                return self._not_a_nanohub()
            time.sleep(0.05)
        if hello and hello.strip(b"\0") in self.raw_tail:
            return NotANanohub("the port %s echoes what the host sends (a loopback such as "
                               "loop://, or a terminal with echo on): no hub answers there"
                               % self.url)
        if self.raw_tail:
            return NotANanohub("the device on %s answered, but not as a nanohub: is it the right "
                               "port (nanohub ports)?" % self.url)
        return LinkTimeout("no answer from %s within %.1f s: is the hub powered and running the "
                           "nanohub firmware? (nanohub ports lists ports; --timeout waits longer)"
                           % (self.url, self.timeout))

    # ------------------------------------------------------ heartbeat --

    def start_heartbeat(self):
        if self._heart is None:
            self._heart = threading.Thread(target=self._heartbeat_loop, name="nanohub-heartbeat",
                                           daemon=True)
            self._heart.start()

    def _heartbeat_loop(self):
        while not self._closed.is_set():
            try:
                self.send_raw(self._heartbeat())
            except NanohubError:
                return
            self._closed.wait(HEARTBEAT_S)

    def _heartbeat(self):
        """A HEARTBEAT, signed when this host holds the hub's key: only a signed
        one keeps a treatment running. Its counter is the hub's mark (not
        checked, not used up); its expiry orders it, so a replay is refused."""
        fields = {"t": self.elapsed_ms()}
        try:
            key = self.signing_key() if self.hub_id is not None or self._key_arg else None
        except NanohubError:
            key = None
        if key is None or self._clock is None:
            return codec.encode("HEARTBEAT", fields, seq=self._next_seq())
        return codec.encode("HEARTBEAT", fields, seq=self._next_seq(), key=key,
                            counter=self.info.get("counter", 0), expires=self.expires())

    def expires(self):
        """Hub time by which a frame signed now must arrive: the hub's clock as
        last heard plus the time since (a lower bound of the hub's time, so the
        hub never finds it too far ahead), plus fresh_ms less a margin: the hub
        judges against the start of its tick, a few ms before the frame came."""
        t, at = self._clock or (0, time.monotonic())
        now = t + int((time.monotonic() - at) * 1000)
        margin = min(_EXPIRY_MARGIN_MS, self.fresh_ms // 4)
        return (now + self.fresh_ms - margin) % schema.HUB_TIME_MOD

    # ------------------------------------------------------- commands --

    def signing_key(self):
        """The hub's key, loaded on first use. The heartbeat thread and the
        caller's both sign: the key is set only with its counter, under a lock,
        so no thread sees a key whose counter is not there yet."""
        with self._sign_lock:
            if self._key is None:
                arg = self._key_arg
                if isinstance(arg, (bytes, bytearray)):
                    if len(arg) != keys.KEY_SIZE:
                        raise UsageError("a hub key is %d bytes, got %d"
                                         % (keys.KEY_SIZE, len(arg)))
                    key = bytes(arg)
                else:
                    if self.hub_id is None:
                        raise UsageError("signing needs the hub id: handshake first")
                    key, self.key_path = keys.find_key(self.hub_id, arg)
                self._counter = keys.Counter(self.hub_id or 0)
                self._key = key
            return self._key

    def _can_sign(self):
        try:
            return self.signing_key() is not None
        except NanohubError:
            return False

    def build(self, name, fields=None, records=()):
        """(request id, wire bytes) of a command, signed when the schema says so."""
        key = counter = None
        extra = {}
        if name in schema.AUTH_REQUIRED or (name in schema.AUTH_TO_LOWER and self._can_sign()):
            key = self.signing_key()
            counter = self._counter.next(self.info.get("counter", 0))
            extra["expires"] = self.expires()
        seq = self._next_req()
        return seq, codec.encode(name, fields, records, seq=seq, key=key, counter=counter,
                                 **extra)

    def command(self, name, fields=None, records=(), timeout=None, retries=None):
        """Send a command and return its Ack; raise Refused if the hub rejects it.

        A refusal that proves the command never ran (a signed frame overtaken
        by another host's, or one that arrived late; an id below a mark
        another sender in the session moved) is signed anew, up to
        ``_RESENDS`` times: two clients signing in lockstep through a broker
        can collide more than once."""
        seq, wire = self.build(name, fields, records)
        ack = self._transact(name, seq, wire, timeout, retries)
        signed = name in schema.AUTH_REQUIRED or name in schema.AUTH_TO_LOWER
        for _ in range(_RESENDS):
            if ack.rejected and ack.reason in ("AUTH_REPLAY", "STALE") and signed:
                # another host signed in between, or the retries took longer than
                # the frame's freshness: learn the hub's mark and clock, sign anew
                self.refresh_info()
            elif ack.rejected and ack.reason == "DUPLICATE" and self._answered_first:
                # refused the first time the hub saw it: this id never ran; another
                # sender in the session moved the hub's request-id mark ahead. Go on
                # above the mark. (A DUPLICATE answering a resend may mean it ran:
                # that one is reported, never sent again.)
                with self._lock:
                    self._req = ack.detail & 0xFFFF
            else:
                break
            seq, wire = self.build(name, fields, records)
            ack = self._transact(name, seq, wire, timeout, retries)
        if ack.rejected:
            raise self.refused(ack)
        return ack

    def _transact(self, name, seq, wire, timeout=None, retries=None):
        tries = max(1, retries or self.retries)
        total = timeout or self.timeout
        msg = schema.MSG[name]
        match = (lambda f: f.name == "ACK" and f["req"] == seq and f["cmd"] == msg)
        with self._wait_for(match) as w:
            for k in range(tries):
                self.send_raw(wire)
                frame = w.get(total / tries)
                if frame is not None:
                    self._answered_first = k == 0   # the answer to the first sending
                    a = frame.fields
                    return Ack(name, seq, enum_name("ACKS", a["status"]),
                               enum_name("WHY", a["reason"]), a["detail"])
        raise LinkTimeout("no answer from the hub to %s after %d tries in %.1f s (it may or may "
                          "not have run: check with nanohub status); check the link or raise "
                          "--timeout" % (name, tries, total))

    def state_name(self):
        """The hub state as last seen (telemetry, else the handshake)."""
        f = self.latest.get("HUB_STATUS")
        if f is not None:
            return enum_name("HUB", f["state"])
        return enum_name("HUB", self.info["state"]) if self.info else "unknown"

    def ask(self, name, fields, replies, complete=None, timeout=None, tries=None):
        """Send a read (REQUEST, PARAM_GET, LOG_READ) and collect its reply frames.

        Replies carry the request id as their ``seq``; ``replies`` names the
        frames wanted. ``complete(frames, frame)`` says when the answer is
        whole (default: one frame). Reads are not cached by the hub but are
        safe to repeat, so a lost reply is asked for again with the same
        bytes. An ACK that rejects the read raises Refused.
        """
        seq, wire = self.build(name, fields)
        msg = schema.MSG[name]

        def match(f):
            if f.name == "ACK":
                return f["req"] == seq and f["cmd"] == msg
            return f.seq == seq and f.name in replies and (
                f.flags & schema.F_REPLY or f.name == "ESTOP_REPORT")
        total = timeout or self.timeout
        tries = max(1, tries or self.retries)
        frames = []
        with self._wait_for(match) as w:
            for _ in range(tries):
                self.send_raw(wire)
                deadline = time.monotonic() + total / tries
                while True:
                    f = w.get(deadline - time.monotonic())
                    if f is None:
                        break
                    if f.name == "ACK":
                        self._check_ack(name, seq, f)
                        deadline = time.monotonic() + total / tries   # accepted: reply follows
                        continue
                    frames.append(f)
                    if complete is None or complete(frames, f):
                        return frames
        if frames:
            return frames
        raise LinkTimeout("no reply from the hub to %s after %d tries in %.1f s: check the "
                          "link, or raise --timeout" % (name, tries, total))

    def refused(self, ack):
        """The Refused error for a rejected Ack, with a message saying what to do."""
        return Refused(ack.reason, ack.detail, refusal_message(ack, self.hub_id, self.key_path),
                       ack)

    def _check_ack(self, name, seq, frame):
        a = frame.fields
        ack = Ack(name, seq, enum_name("ACKS", a["status"]), enum_name("WHY", a["reason"]),
                  a["detail"])
        if ack.rejected:
            raise self.refused(ack)
        return ack

    def request(self, what, replies, complete=None, timeout=None, tries=None):
        """REQUEST{what: REQ_<what>} and its reply frames."""
        if isinstance(replies, str):
            replies = (replies,)
        return self.ask("REQUEST", {"what": enum_value("REQ", what)}, replies, complete,
                        timeout, tries)

    def refresh_info(self):
        """Ask the hub for HELLO_REPLY again (e.g. its current counter)."""
        self._take_info(self.request("INFO", "HELLO_REPLY")[0])
        return self.info
