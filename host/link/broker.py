"""One hub link, many clients: the broker behind ``nanohub serve`` and ``nanohub sim``.

The broker owns the hub's port and offers it on a Unix socket (and loopback TCP
on request). It speaks the hub's own framed protocol to its clients, so a
client is the ordinary session (:class:`nanohub.host.link.Link`).

What it does with each frame a client sends:

- HELLO is answered from the broker's cached handshake (the hub's state,
  counter and clock as last seen, the clock advanced by the time since), so a
  new client never disturbs the hub's session.
- HEARTBEAT goes on to the hub, at most every ``HB_GAP`` whichever client sent
  it: the hub hears heartbeats exactly while at least one client sends them, so
  its operator-gone failsafe fires as on a direct link when every operator's
  program is gone or hung. A signed heartbeat is forwarded as is, from one
  client at a time (``_heartbeat_owner``).
- ESTOP jumps every queue, before or without a handshake, and is kept across
  a reconnect (it is sent first when the hub is back).
- Unsigned commands and reads are rewritten into one monotonic stream of
  request ids to the hub (the header ``seq``; the CRC is recomputed). A
  client's retry (same request id, same bytes) maps to the same upstream id,
  so the hub answers it from its ACK cache and never runs it twice.
- Signed commands are forwarded byte for byte: the tag covers the header, so
  their request id cannot be rewritten. The hub's request ids must rise within
  its session (the broker's), so the rewritten ids go on above every signed id
  sent, and a signed command the hub marks (ALARM_ACK, TELEM_RATE) whose id is
  at or below the stream's mark is refused DUPLICATE with the mark, as the hub
  would: it never ran, and its sender signs it anew above the mark. Routing still cannot confuse them:
  an ACK names the request id *and* the message it answers, and a route is
  keyed on both. Rewritten ids are only ever given to unsigned messages, so
  they never meet a signed command's key; two clients sending the same signed
  message with the same 16-bit id at the same time is the one clash left, and
  the later frame waits until the earlier one is answered or its route expires.
- Each ACK or reply goes only to the client whose request it answers, with
  that client's own request id put back. Telemetry is fanned out to every
  client; a client that does not read loses old telemetry, never its ACKs.
- Telemetry rates are each client's own. The hub is asked for the highest rate
  any client asked for (per kind: status, bot states, site readings), and the
  fan-out gives each client that set rates only what it asked for (a change of
  hub state or alarms in HUB_STATUS goes at once, as the hub sends one at
  once). An unsigned TELEM_RATE is rewritten to the highest rates before it
  goes on; a signed one passes byte for byte and, once accepted, the broker
  follows it with its own unsigned TELEM_RATE of the highest rates if they
  differ. When a client that set rates leaves, the hub's rates fall to the
  highest of those still asked for (never below ``TELEM_FLOOR_HZ`` by the
  broker's own frame, which is unsigned; the clients' share is thinned all the
  same). A client that never set rates gets the hub's.

Budgets: each client has a queue of ``QUEUE`` frames (beyond it frames are
dropped and counted; the client's retry brings them back), clients are served
round robin, and at most ``WINDOW`` requests are in flight to the hub, so the
hub's input never holds more than a few frames in front of an ESTOP. Once an
ESTOP has gone, the other requests wait until the hub reports the stop
confirmed (at most ``STOP_HOLD_S``): the hub's link is the stop's alone.

When the hub link drops the broker tells every client (``NOTICE_LOST``),
drops queued requests (clients retry; nothing runs late behind their back),
keeps ESTOPs, and reopens the port. When it is back (``NOTICE_BACK``)
clients carry on; after ``GIVE_UP_S`` without the hub it says ``NOTICE_GONE``
and the clients report a lost link, while the broker keeps trying.
"""
import collections
import os
import socket
import struct
import threading
import time
import zlib

from cobs import cobs

from nanohub.protocol import codec, model, schema

from ..errors import LinkError, NanohubError
from . import local, registry
from .conn import ClientConn, frames_in

M = schema.MSG
_HELLO, _HELLO_REPLY, _HB, _ACK = M["HELLO"], M["HELLO_REPLY"], M["HEARTBEAT"], M["ACK"]
_ESTOP, _REQUEST, _HUB_STATUS, _ESTOP_REPORT = (M["ESTOP"], M["REQUEST"], M["HUB_STATUS"],
                                                M["ESTOP_REPORT"])
_ASKED = frozenset(M[n] for n in schema.COMMANDS + schema.READS)
_REPLY_TO = {M["PARAM_VALUE"]: M["PARAM_GET"], M["LOG_CHUNK"]: M["LOG_READ"]}   # else REQUEST
_REQ_ESTOP = schema.enum_value("REQ", "ESTOP")
_ACKS_REJECTED = schema.enum_value("ACKS", "REJECTED")
_WHY_DUPLICATE = schema.enum_value("WHY", "DUPLICATE")
# commands whose request id the hub holds to its session's rising mark (all but
# the signed-class ones, which have their counter, and ESTOP, always run)
_MARKED = frozenset(M[n] for n in schema.COMMANDS
                    if n not in schema.AUTH_REQUIRED and n != "ESTOP")
_REFUSED = object()             # _assign: answered here as the hub would, not sent
_HELLO_OK, _HELLO_SCHEMA = schema.enum_value("HELLO", "OK"), schema.enum_value("HELLO", "SCHEMA")
_HUB_ESTOP = schema.enum_value("HUB", "ESTOP")
_HUB_TIME_MOD = getattr(schema, "HUB_TIME_MOD", 1 << 32)     # hub time wraps here
_TELEM_RATE = M["TELEM_RATE"]
_BOT_STATES = M["BOT_STATES"]
_RATE_FIELDS = ("status_hz", "bots_hz", "sites_hz")
_RATE_OF = {_HUB_STATUS: 0, _BOT_STATES: 1, M["SITE_READINGS"]: 2}   # telemetry -> rate index
_FLOOR_HZ = schema.TELEM_FLOOR_HZ
RATE_SLACK = 0.25      # a telemetry frame this share of a period early still counts as due
_CRC = struct.Struct("<I")
_U16 = struct.Struct("<H")
_H = schema.HEADER_SIZE
_ALWAYS = frozenset((_ESTOP, _HELLO, _HB))      # taken even from a client over its budget

WINDOW = 8             # requests in flight to the hub
INFLIGHT_S = 1.0       # a request unanswered this long no longer holds a window slot
QUEUE = 32             # frames queued per client
ROUTE_TTL = 30.0       # how long a request's route (and its retries) is kept
RETRY_MAP = 512        # remembered (client id, bytes) -> upstream id, per client
HB_GAP = 0.2          # heartbeats sent on to the hub at most this often
HB_GRACE = 0.75       # a signed heartbeater this long silent hands over to another
HANDSHAKE_S = 1.0
RECONNECT_S = 0.25
GIVE_UP_S = 5.0
STOP_HOLD_S = 1.0      # after an ESTOP, other requests wait for its final report (at most this)


def _wire(raw):
    return cobs.encode(bytes(raw)) + b"\0"


def _above(seq, mark):
    """Whether ``seq`` is above ``mark`` in serial-number order on 16 bits."""
    d = (seq - mark) & 0xFFFF
    return 0 < d < 0x8000


def _rates_of(raw):
    """(status, bots, sites) Hz of a TELEM_RATE frame's bytes."""
    return tuple(raw[_H:_H + 3])


def _rewrite(raw, seq=None, req=None):
    """Wire bytes of ``raw`` with a new header seq and/or ACK req, CRC recomputed."""
    b = bytearray(raw)
    if seq is not None:
        _U16.pack_into(b, 1, seq & 0xFFFF)
    if req is not None:
        _U16.pack_into(b, _H, req & 0xFFFF)
    n = len(b) - 4
    _CRC.pack_into(b, n, zlib.crc32(memoryview(b)[:n]))
    return _wire(b)


class _Route:
    __slots__ = ("client", "seq", "msg", "sent", "answered", "counter", "what")

    def __init__(self, client, seq, msg, counter=None, what=None):
        self.client, self.seq, self.msg = client, seq, msg
        self.sent = time.monotonic()
        self.answered = False
        self.counter, self.what = counter, what


class _Item:
    __slots__ = ("raw", "frame", "client")

    def __init__(self, client, raw, frame):
        self.client, self.raw, self.frame = client, raw, frame


class Broker:
    """Own the hub at ``url``; serve clients on a Unix socket (and TCP on request).

    ``opener(url)`` opens the hub's port (default: the CLI's port opener).
    ``start()`` raises LinkError when the hub cannot be reached at first.
    """

    def __init__(self, url, name, socket_path=None, tcp=None, opener=None, kind="serve",
                 announce=True, give_up=GIVE_UP_S, log=None):
        self.url, self.name, self.kind = url, name, kind
        self.socket_path = socket_path or os.path.join(registry.runtime_dir(),
                                                       "%s-%s.sock" % (kind, name))
        self.tcp = tcp
        self.tcp_port = None
        self.give_up = give_up
        self._opener = opener
        self._announce = announce
        self._log = log or (lambda text: None)
        self._reg = None
        self.port = None
        self.up = False
        self.down_since = None
        self.gone_told = False
        self.hello = None               # the hub's last HELLO_REPLY fields
        self.hub_state = None
        self.hub_clock = None           # (hub time ms, time.monotonic() when heard)
        self.hb_owner = None            # the client whose signed heartbeats go to the hub
        self.last_hb_sent = 0.0
        self.counter = 0
        self.clients = []
        self.routes = {}                # (upstream id, msg) -> _Route
        self.pending = {}               # (upstream id, msg) -> sent time, unanswered
        self.estops = collections.deque()
        self.cond = threading.Condition()
        self.wlock = threading.Lock()
        self.closed = threading.Event()
        self.next_id = int.from_bytes(os.urandom(2), "little")
        self.own_seq = 0
        self.rr = 0
        self.cid = 0
        self.stopping_until = 0.0       # the hub is confirming a stop: the rest waits
        self.asked = {}                 # client -> (status, bots, sites) Hz the hub accepted
        self.hub_rates = None           # the rates the hub last accepted through the broker
        self.own_rates = None           # rates the broker still has to ask the hub for
        self.tlm_due = {}               # (client, msg, first) -> when the next one is due
        self.tlm_seen = {}              # client -> the last HUB_STATUS state and alarms sent
        self.stats = collections.Counter()
        self._listeners = []
        self._hs_seq = None
        self._hs_event = threading.Event()
        self._decoder_buf = bytearray()

    # ------------------------------------------------------------ life --

    @property
    def unix_url(self):
        return local.unix_url(self.socket_path)

    @property
    def name_url(self):
        return local.SCHEME_NAME + self.name

    @property
    def tcp_url(self):
        return "socket://127.0.0.1:%d" % self.tcp_port if self.tcp_port else None

    def urls(self):
        return [u for u in (self.name_url if self._announce else None, self.unix_url,
                            self.tcp_url) if u]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def start(self):
        try:
            self._connect(first=True)
            self._listen()
            for fn, what in ((self._upstream_loop, "hub-read"), (self._writer_loop, "hub-write")):
                threading.Thread(target=fn, name="nanohub-serve-" + what, daemon=True).start()
            if self._announce:
                self._reg = registry.register(self.kind, self.name, self.unix_url,
                                              port=self.url if self.kind == "serve" else "")
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        if self.closed.is_set():
            return
        self.closed.set()
        if self._reg:
            registry.unregister(self._reg)
        for s in self._listeners:
            try:
                s.close()
            except OSError:
                pass
        if self._listeners:
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
        with self.cond:
            clients = list(self.clients)
            self.cond.notify_all()
        for c in clients:
            c.close()
        self._close_port()

    def _listen(self):
        path = self.socket_path
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)                     # left over by a broker that died
            else:
                raise LinkError("another broker already serves %s (nanohub ports lists it); "
                                "choose another --name" % self.unix_url)
            finally:
                probe.close()
        us = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)                       # the hub is the user's alone
        try:
            us.bind(path)
        finally:
            os.umask(old)
        us.listen(64)
        self._listeners.append(us)
        if self.tcp is not None:
            ts = socket.create_server(("127.0.0.1", int(self.tcp)))
            self.tcp_port = ts.getsockname()[1]
            self._listeners.append(ts)
        for s in self._listeners:
            threading.Thread(target=self._accept_loop, args=(s,), name="nanohub-serve-accept",
                             daemon=True).start()

    def _accept_loop(self, lsock):
        while not self.closed.is_set():
            try:
                sock, peer = lsock.accept()
            except OSError:
                return
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.cond:
                self.cid += 1
                c = ClientConn(self, sock, self.cid, peer)
                self.clients.append(c)
            self.stats["clients"] += 1
            c.start()
            if not self.up and self.down_since is not None:
                c.send(self._notice(local.NOTICE_GONE if self.gone_told else local.NOTICE_LOST))

    def _drop(self, c):
        with self.cond:
            if c in self.clients:
                self.clients.remove(c)
            c.queue.clear()
            self.tlm_seen.pop(c, None)
            for k in [k for k in self.tlm_due if k[0] is c]:
                del self.tlm_due[k]
            if self.asked.pop(c, None) is not None:
                self._follow_rates()            # the rest's highest rates, if they differ
        c.close()

    # ------------------------------------------------------- hub side --

    def _open(self):
        if self._opener is not None:
            return self._opener(self.url)
        from .port import open_port
        return open_port(self.url)

    def _connect(self, first=False):
        """Open the port and handshake; True when the hub answered."""
        try:
            port = self._open()
        except NanohubError:
            if first:
                raise
            return False
        self.port = port
        self._decoder_buf = bytearray()
        self._hs_event.clear()
        self._hs_seq = self._own_seq()
        hello = codec.encode("HELLO", {"schema": model.FINGERPRINT, "host_version": 1},
                             seq=self._hs_seq)
        deadline = time.monotonic() + HANDSHAKE_S * (3 if first else 1)
        next_try = 0.0
        while not self._hs_event.is_set():
            now = time.monotonic()
            if now > deadline:
                break
            try:
                if now >= next_try:
                    self._write(b"\0" + hello)
                    next_try = now + 0.3
                self._read_once()
            except (OSError, NanohubError, Exception) as e:  # any pyserial failure
                self._close_port()
                if first:
                    raise LinkError("cannot reach the hub at %s: %s" % (self.url, e)) from None
                return False
        if not self._hs_event.is_set():
            self._close_port()
            if first:
                raise LinkError("no answer from a nanohub at %s within %.1f s: is the hub "
                                "running?" % (self.url, HANDSHAKE_S * 3))
            return False
        with self.cond:
            self.up = True
            was_down = self.down_since is not None
            self.down_since = None
            self.gone_told = False
            self.cond.notify_all()
        if was_down:
            with self.cond:
                if self.asked:                  # the hub may have rebooted to its defaults
                    self.hub_rates = None
                    self._follow_rates()
            self.stats["reconnects"] += 1
            self._log("the hub at %s is back" % self.url)
            self._tell_all(local.NOTICE_BACK)
        return True

    def _close_port(self):
        port, self.port = self.port, None
        if port is not None:
            try:
                port.close()
            except Exception:
                pass

    def _down(self, err):
        with self.cond:
            if not self.up:
                return
            self.up = False
            self.down_since = time.monotonic()
            for c in self.clients:
                c.queue.clear()                     # they retry; nothing runs late
            self.pending.clear()
        self._close_port()
        self.stats["drops"] += 1
        self._log("lost the hub at %s (%s); reconnecting" % (self.url, err))
        self._tell_all(local.NOTICE_LOST)

    def _own_seq(self):
        self.own_seq = (self.own_seq + 1) & 0xFFFF
        return self.own_seq

    def _write(self, data):
        port = self.port
        if port is None:
            raise LinkError("the hub link is down")
        with self.wlock:
            port.write(data)

    def _read_once(self):
        port = self.port
        if port is None:
            raise LinkError("the hub link is down")
        data = port.read(port.in_waiting or 1)
        if data:
            for chunk in frames_in(self._decoder_buf, data):
                self._from_hub(chunk)

    def _upstream_loop(self):
        while not self.closed.is_set():
            if not self.up:
                if not self._connect():
                    since = self.down_since or time.monotonic()
                    if not self.gone_told and time.monotonic() - since > self.give_up:
                        self.gone_told = True
                        self._tell_all(local.NOTICE_GONE)
                    self.closed.wait(RECONNECT_S)
                continue
            try:
                self._read_once()
            except Exception as e:                  # pyserial raises several kinds
                if not self.closed.is_set():
                    self._down(e)

    def _from_hub(self, chunk):
        try:
            raw = cobs.decode(chunk)
            f = codec.parse(raw)
        except (cobs.DecodeError, codec.CodecError):
            self.stats["hub_bad"] += 1
            return
        msg = f.msg
        if msg == _HUB_STATUS:
            self.hub_state = f["state"]
            self.hub_clock = (f["t"], time.monotonic())
        if f.flags & schema.F_REPLY:
            if msg == _ACK:
                self._route_ack(raw, f)
                return
            if msg == _HELLO_REPLY:
                self._take_hello(f)
                if f.seq == self._hs_seq and not self._hs_event.is_set():
                    self._hs_event.set()            # the broker's own handshake
                    return
            r = self.routes.get((f.seq, _REPLY_TO.get(msg, _REQUEST)))
            if r is not None and r.client is not None:
                self._answered(f.seq, r)
                r.client.send(_rewrite(raw, seq=r.seq))
            return
        if msg == _HB:
            return
        if msg == _ESTOP_REPORT:                    # a REQUEST ESTOP's answer carries its id
            if f["done"] and self.stopping_until:
                with self.cond:
                    self.stopping_until = 0.0       # confirmed: the others may go on
                    self.cond.notify_all()
            r = self.routes.get((f.seq, _REQUEST))
            if r is not None and r.what == _REQ_ESTOP and r.client is not None:
                self._answered(f.seq, r)
                r.client.send(_rewrite(raw, seq=r.seq))
                self._fan_out(chunk + b"\0", skip=r.client)
                return
        self._fan_out(chunk + b"\0", f)

    def _route_ack(self, raw, f):
        key = (f["req"], f["cmd"])
        r = self.routes.get(key)
        if r is not None and r.msg == _TELEM_RATE and r.what is not None:
            self._rates_acked(r, f["status"] != _ACKS_REJECTED)
        if r is None or r.client is None:
            if r is not None:
                self._answered(key[0], r)       # the broker's own request
            else:
                self.stats["acks_unrouted"] += 1
            return
        self._answered(key[0], r)
        if r.counter is not None and f["status"] != _ACKS_REJECTED:
            self.counter = max(self.counter, r.counter)
        if r.client.alive:
            r.client.send(_rewrite(raw, req=r.seq))
            self.stats["acks"] += 1

    def _answered(self, uid, r):
        if not r.answered:
            r.answered = True
            with self.cond:
                if self.pending.pop((uid, r.msg), None) is not None:
                    self.cond.notify_all()

    def _take_hello(self, f):
        fields = dict(f.fields)
        self.hello = fields
        self.hub_state = fields["state"]
        self.counter = max(self.counter, fields["counter"])
        if "t" in fields:
            self.hub_clock = (fields["t"], time.monotonic())

    def _fan_out(self, wire, f=None, skip=None):
        k = _RATE_OF.get(f.msg) if f is not None else None
        now = time.monotonic()
        for c in list(self.clients):
            if c is skip:
                continue
            if k is not None and c in self.asked and not self._due(c, k, f, now):
                self.stats["telemetry_thinned"] += 1
                continue
            c.send(wire, telemetry=True)

    # ------------------------------------------------------- rates --

    def _due(self, c, k, f, now):
        """Whether telemetry frame ``f`` (rate index ``k``) goes to ``c``, at the
        rate ``c`` asked for: the next is due a period after the last one due
        (so the average rate holds when the hub's frames do not fall on it),
        restarting from now after a gap."""
        hz = self.asked[c][k]
        if hz <= 0:
            return False
        if k == 0:
            seen = (f["state"], f["reason"], f["alarms"], f["unacked"])
            if self.tlm_seen.get(c) != seen:    # a change goes at once
                self.tlm_seen[c] = seen
                self.tlm_due[(c, f.msg, 0)] = now + 1.0 / hz
                return True
        key = (c, f.msg, f["first"] if f.msg == _BOT_STATES else 0)
        period = 1.0 / hz
        due = self.tlm_due.get(key)
        if due is not None and now < due - RATE_SLACK * period:
            return False
        self.tlm_due[key] = due + period if due is not None and now - due < period \
            else now + period
        return True

    def _want(self, extra=None):
        """The highest rates asked for, per kind (with ``extra``: (client, rates)
        in place of that client's own); None if no client asked."""
        asked = dict(self.asked)
        if extra is not None:
            asked[extra[0]] = extra[1]
        if not asked:
            return None
        return tuple(max(r[k] for r in asked.values()) for k in range(3))

    def _follow_rates(self):
        """Ask the hub (the broker's own TELEM_RATE, next in line) for the highest
        rates asked for, if it is not running at them. Holds ``cond``."""
        want = self._want()
        if want is None or want == self.hub_rates:
            self.own_rates = None
            return
        self.own_rates = tuple(max(v, _FLOOR_HZ) for v in want)     # unsigned: not below
        if self.own_rates == self.hub_rates:
            self.own_rates = None
        self.cond.notify_all()

    def _rates_acked(self, r, accepted):
        """A TELEM_RATE answered: ``r.what`` is (rates the client asked, rates sent)."""
        if not accepted:
            return
        with self.cond:
            asked, sent = r.what
            self.hub_rates = sent
            if r.client is not None and r.client in self.clients:
                self.asked[r.client] = asked
            self._follow_rates()

    def _notice(self, code):
        return codec.encode("HEARTBEAT", {"t": code}, seq=self._own_seq(), addr=local.ADDR_BROKER)

    def _tell_all(self, code):
        wire = self._notice(code)
        for c in list(self.clients):
            c.send(wire)

    # ---------------------------------------------------- client side --

    def _from_client(self, c, chunk):
        try:
            raw = cobs.decode(chunk)
            if len(c.queue) >= QUEUE and len(raw) > _H and raw[3] not in _ALWAYS:
                c.dropped += 1                      # over budget: not worth a parse
                self.stats["dropped_budget"] += 1
                return
            f = codec.parse(raw)
        except (cobs.DecodeError, codec.CodecError) as e:
            c.bad += 1
            if getattr(e, "kind", "") == "SCHEMA" and raw[3:4] == bytes((_HELLO,)):
                self._hello_reply(c, _U16.unpack_from(raw, 1)[0], _HELLO_SCHEMA)
            return
        c.frames += 1
        msg = f.msg
        if msg == _HELLO:
            self._hello_reply(c, f.seq, _HELLO_OK)
            return
        if msg == _HB:
            self._heartbeat(c, raw, f)
            return
        if msg not in _ASKED:
            c.bad += 1                              # telemetry from a confused client
            return
        item = _Item(c, raw, f)
        with self.cond:
            if msg == _ESTOP:
                if not any(e.client is c and e.raw == raw for e in self.estops):
                    self.estops.append(item)
                    self.cond.notify_all()
                return
            if not self.up:
                self.stats["dropped_down"] += 1     # the client retries once the hub is back
                return
            if len(c.queue) >= QUEUE:
                c.dropped += 1
                self.stats["dropped_budget"] += 1
                return
            c.queue.append(item)
            self.cond.notify_all()

    def _heartbeat(self, c, raw, f):
        """Pass a client's heartbeat on to the hub, so that the hub's operator-gone
        rule follows the clients' own: it stops the moment the last one stops.

        Unsigned ones are re-sent as the broker's own, at most every ``HB_GAP``
        whichever client sent them; a signed one (it means the operator) goes
        unaltered, from one client at a time.
        """
        now = time.monotonic()
        c.last_hb = now
        if f.flags & schema.F_AUTH:
            if self._heartbeat_owner(c, now):
                self._passthrough(raw)
            return
        with self.cond:
            if now - self.last_hb_sent < HB_GAP:
                return
            self.last_hb_sent = now
        self._passthrough(codec.build("HEARTBEAT", {"t": f["t"]}, seq=self._own_seq()))

    def _heartbeat_owner(self, c, now):
        """Whether ``c``'s signed heartbeat goes to the hub (at most 10 a second).

        One client's at a time: the hub takes a signed heartbeat only if it
        expires later than the last one, and each client reckons the hub's clock
        from the frames it hears, so several clients' heartbeats would refuse
        each other in turn. The owner is the first to heartbeat; another takes
        over once it has been silent for ``HB_GRACE``.
        """
        with self.cond:
            owner = self.hb_owner
            if owner is not c and (owner is None or not owner.alive
                                   or now - owner.last_signed_hb >= HB_GRACE):
                self.hb_owner = owner = c
            c.last_signed_hb = now
            if owner is not c or now - c.last_signed_fwd < 0.1:
                return False
            c.last_signed_fwd = now
            return True

    def _passthrough(self, raw):
        if not self.up:
            return
        try:
            self._write(b"\0" + _wire(raw))
            self.stats["heartbeats"] += 1
        except Exception:
            pass

    def _hello_reply(self, c, seq, result):
        if self.hello is None:
            return                                  # no handshake yet: the client retries
        fields = dict(self.hello, result=result, counter=self.counter)
        if self.hub_state is not None:
            fields["state"] = self.hub_state
            fields["estop"] = 1 if self.hub_state == _HUB_ESTOP else 0
        if "t" in fields and self.hub_clock is not None:
            # the hub's time now, as a lower bound (heard time plus time since):
            # a client signs against it, so a cached value would make it stale
            t, at = self.hub_clock
            fields["t"] = (t + int((time.monotonic() - at) * 1000)) % _HUB_TIME_MOD
        c.send(codec.encode("HELLO_REPLY", fields, seq=seq, flags=schema.F_REPLY))

    # ---------------------------------------------------------- writer --

    def _live(self, key, now):
        r = self.routes.get(key)
        return r is not None and now - r.sent < ROUTE_TTL

    def _alloc(self, msg, now):
        for _ in range(0x10000):
            self.next_id = (self.next_id + 1) & 0xFFFF
            if not self._live((self.next_id, msg), now):
                return self.next_id
        raise LinkError("no free request id")

    def _assign(self, item, now):
        """Wire bytes for ``item`` with its route registered; None to hold it back."""
        c, raw, f = item.client, item.raw, item.frame
        msg = f.msg
        if f.flags & schema.F_AUTH:
            uid, wire = f.seq, _wire(raw)
            r = self.routes.get((uid, msg))
            live = r is not None and now - r.sent < ROUTE_TTL
            if live and r.client is not c and not r.answered:
                return None                         # another client's request holds this key
            if msg in _MARKED and not (live and r.client is c and r.seq == uid):
                if not _above(uid, self.next_id):   # (a retry passes: the hub's cache answers)
                    return _REFUSED
                self.next_id = uid                  # the rewritten ids go on above it
        else:
            rkey = (f.seq, bytes(raw[3:-4]))        # msg, addr, payload: what a retry repeats
            uid = c.retry.get(rkey)
            if uid is None or not self._live((uid, msg), now):
                uid = self._alloc(msg, now)
            c.retry[rkey] = uid
            c.retry.move_to_end(rkey)
            while len(c.retry) > RETRY_MAP:
                c.retry.popitem(last=False)
            if msg == _TELEM_RATE:
                raw = self._rates_for_hub(c, raw, f, self.routes.get((uid, msg)))
            wire = _rewrite(raw, seq=uid)
        key = (uid, msg)
        old = self.routes.get(key)
        if old is not None and old.client is c and old.seq == f.seq:
            old.sent = now                          # a retry: same route
            old.answered = False
        else:
            what = raw[_H] if msg == _REQUEST and len(raw) > _H + 4 else None
            if msg == _TELEM_RATE:                  # (asked by the client, sent to the hub)
                what = (_rates_of(item.raw), _rates_of(raw))
            self.routes[key] = _Route(c, f.seq, msg, f.counter, what)
            if len(self.routes) > 8192:
                self._expire(now)
        self.pending[key] = now
        return wire

    def _rates_for_hub(self, c, raw, f, old):
        """An unsigned TELEM_RATE's frame with the highest rates any client asked
        for, this one's request included. One below the floor goes as it is (the
        hub refuses it, as on a direct link); a retry repeats its first bytes,
        so that the hub answers it from its ACK cache."""
        asked = _rates_of(raw)
        if old is not None and old.client is c and old.seq == f.seq and old.what:
            sent = old.what[1]
        elif min(asked) < _FLOOR_HZ:
            return raw
        else:
            sent = self._want((c, asked))
        b = bytearray(raw)
        b[_H:_H + 3] = bytes(sent)
        return bytes(b)

    def _own_rates_frame(self, now):
        """(wire, item) of the broker's own TELEM_RATE, its route registered."""
        rates, self.own_rates = self.own_rates, None
        uid = self._alloc(_TELEM_RATE, now)
        raw = codec.build("TELEM_RATE", dict(zip(_RATE_FIELDS, rates)), seq=uid)
        self.routes[(uid, _TELEM_RATE)] = _Route(None, uid, _TELEM_RATE, None, (rates, rates))
        self.pending[(uid, _TELEM_RATE)] = now
        self.stats["own_telem_rate"] += 1
        return _wire(raw), _Item(None, raw, codec.parse(raw))

    def _expire(self, now):
        for key in [k for k, r in self.routes.items() if now - r.sent >= ROUTE_TTL]:
            del self.routes[key]

    def _inflight(self, now):
        stale = [k for k, t in self.pending.items() if now - t >= INFLIGHT_S]
        for k in stale:
            del self.pending[k]
        return len(self.pending)

    def _pick(self, now):
        """(wire, item) of the next frame for the hub (ESTOP first, then round robin)."""
        if self.estops:
            item = self.estops.popleft()
            self.stopping_until = now + STOP_HOLD_S
            return self._assign(item, now) or _wire(item.raw), item
        if now < self.stopping_until or self._inflight(now) >= WINDOW:
            return None, None
        if self.own_rates is not None:
            return self._own_rates_frame(now)
        n = len(self.clients)
        for i in range(n):
            c = self.clients[(self.rr + i) % n]
            while c.queue:
                wire = self._assign(c.queue[0], now)
                if wire is not _REFUSED:
                    break
                self._refuse_duplicate(c.queue.popleft())
            if c.queue:
                if wire is not None:
                    item = c.queue.popleft()
                    self.rr = (self.rr + i + 1) % n
                    return wire, item
        return None, None

    def _refuse_duplicate(self, item):
        f = item.frame
        item.client.send(codec.encode("ACK", {
            "req": f.seq, "cmd": f.msg, "status": _ACKS_REJECTED, "reason": _WHY_DUPLICATE,
            "detail": self.next_id}, seq=self._own_seq(), flags=schema.F_REPLY))
        self.stats["refused_duplicate"] += 1

    def _writer_loop(self):
        while not self.closed.is_set():
            with self.cond:
                wire = item = None
                while not self.closed.is_set():
                    if self.up:
                        wire, item = self._pick(time.monotonic())
                        if wire is not None:
                            break
                    # woken by new frames and answers; the timeout frees stale window slots
                    self.cond.wait(0.05 if self.pending or self.stopping_until else 0.5)
                if wire is None:
                    return
            try:
                self._write(b"\0" + wire)
                self.stats["to_hub"] += 1
            except Exception as e:
                if item.frame.msg == _ESTOP:
                    with self.cond:                 # never lose a stop: it goes first when back
                        self.estops.appendleft(item)
                self._down(e)

    # ----------------------------------------------------------- info --

    def describe(self):
        return {"name": self.name, "urls": self.urls(), "url": self.unix_url, "port": self.url,
                "pid": os.getpid(), "up": self.up, "clients": len(self.clients),
                "hub_id": "0x%08x" % self.hello["hub_id"] if self.hello else None}
