"""On the MicroPython VM: append N records to the audit log in a store
directory with the firmware's own code (rotation, chain and all).

    micropython bench/mp/fill_log.py STORE_DIR N    (MICROPYPATH=firmware:...)
"""
import json
import os
import sys
import time

from hub import wire
from hub.audit import AuditLog
from hub.store import Store

root, n = sys.argv[1], int(sys.argv[2])
try:
    os.mkdir(root)
except OSError:
    pass
log = AuditLog(Store(root))
log.open(0)
t0 = time.ticks_ms()
events = (wire.EV_CMD, wire.EV_STATE, wire.EV_BOT, wire.EV_ALARM, wire.EV_PARAM)
for i in range(n):
    log.append(i * 7, events[i % len(events)], i & 0xFF, i & 0xFFFF, i * 3)
ok, bad = log.verify()
print(json.dumps({"appended": n, "first": log.first_index, "next": log.next_index,
                  "verified": ok, "ms": time.ticks_diff(time.ticks_ms(), t0)}))
