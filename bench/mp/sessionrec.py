"""On the MicroPython VM: record what a hub reads during a full 64-bot session.

    micropython -X heapsize=4m bench/mp/sessionrec.py OUT [BOTS]
    (MICROPYPATH=firmware:bench/mp:tests/mp:sim:.frozen)

The rig (tests/mp/hubkit.py) plays host, gateway and swarm around the real
Hub: rates at their highest, consent, nine bots deployed to three lesions,
arm, treat 3 s, status, bots, sites and every parameter read, stop, recall,
an emergency stop confirmed bot by bot, the whole audit log read. Each call
into the hub (a tick or a poll between ticks) is one record of OUT (binary,
after the store's 32-byte key): ``REC`` (kind ``t`` or ``p``, clock, the
counts of bytes it read from the host link and from the bus), then those
bytes. Replaying it (``replay.py``) runs the same hub through the same
session alone.
"""
import struct
import sys

from hub import wire
from hubkit import Rig

SITES = ((10, 3), (11, 3), (12, 3))
REC = "<BIHH"                           # kind, clock, host bytes, bus bytes

out_path = sys.argv[1]
bots = int(sys.argv[2]) if len(sys.argv) > 2 else 64
rig = Rig(bots=bots, hello=False)
out = open(out_path, "wb")
out.write(rig.key)                      # the store's key: signed commands must verify
got = [bytearray(), bytearray()]
board = rig.board
hub = rig.hub
_host_read, _bus_read = board.host_read, board.bus_read


def host_read(buf):
    n = _host_read(buf)
    got[0].extend(buf[:n])
    return n


def bus_read(buf):
    n = _bus_read(buf)
    got[1].extend(buf[:n])
    return n


board.host_read, board.bus_read = host_read, bus_read


def _line(kind, now):
    out.write(struct.pack(REC, ord(kind), now, len(got[0]), len(got[1])))
    out.write(got[0])
    out.write(got[1])
    got[0][:] = b""
    got[1][:] = b""


_tick, _poll = hub.tick, hub.poll


def tick(now):
    _tick(now)
    _line("t", now)


def poll(now):
    _poll(now)
    _line("p", now)


hub.tick, hub.poll = tick, poll
rig.hello()
ack = rig.cmd(wire.M_TELEM_RATE, struct.pack(wire.TELEM_RATE_FMT, 10, 25, 10))
assert ack and ack[0] != wire.ACKS_REJECTED, ack
rig.treating(SITES, target=100, session_cap=300000, site_cap=100000, rate_cap=2400)
assert rig.state() == wire.HUB_TREATING, rig.state()
for _ in range(12):                     # 3 s, a status request every 250 ms
    rig.run(250)
    rig.request(wire.REQ_STATUS)
rig.request(wire.REQ_BOTS)
rig.request(wire.REQ_SITES)
for i in range(hub.params.count):
    rig.send(wire.M_PARAM_GET, struct.pack(wire.PARAM_GET_FMT, i))
    rig.poll()
ack = rig.stop()
assert ack and ack[0] != wire.ACKS_REJECTED, ack
rig.run(200)
ack = rig.cmd(wire.M_RECALL, struct.pack(wire.RECALL_FMT, 0))
assert ack and ack[0] != wire.ACKS_REJECTED, ack
rig.run(1000)
ack = rig.estop()
assert ack and ack[0] != wire.ACKS_REJECTED, ack
rig.run(1500)
assert rig.state() == wire.HUB_ESTOP
start = 0
while start < hub.log.next_index:       # the audit log, chunk by chunk
    rig.send(wire.M_LOG_READ, struct.pack(wire.LOG_READ_FMT, start, wire.LOG_CHUNK_MAX))
    rig.poll()
    start += wire.LOG_CHUNK_MAX
rig.run(100)
out.close()
print('{"bots": %d, "state": %d, "log": %d}' % (bots, rig.state(), hub.log.next_index))
