"""On the MicroPython VM: what the audit log's keyed checkpoint costs.

    micropython bench/mp/auditcost.py STORE_DIR N     (MICROPYPATH=firmware:...)

Times N appends to a real store directory (open, write, sync, close each),
the unkeyed chain alone, and the checkpoint tag (HMAC-SHA256 under the hub
key) that the hub adds after every LOG_CHECKPOINT_EVERY records.
"""
import json
import os
import sys
import time

from hub import wire
from hub.audit import AuditLog, chain_of
from hub.state import State
from hub.store import Store

root, n = sys.argv[1], int(sys.argv[2])
try:
    os.mkdir(root)
except OSError:
    pass
store = Store(root)
store.write_atomic("hub.key", bytes(range(1, 33)))
state = State(store, 0x1234)
state.load()
assert state.keyed
log = AuditLog(store)
log.open(0)


def per_call_us(fn, k):
    t0 = time.ticks_us()
    for i in range(k):
        fn(i)
    return time.ticks_diff(time.ticks_us(), t0) / k


head = bytes(16)
chain_us = per_call_us(lambda i: chain_of(log.head_chain, head), n)
tag_us = per_call_us(lambda i: state.checkpoint_tag(i, log.head_chain), n)
append_us = per_call_us(lambda i: log.append(i, wire.EV_PARAM, 1, 0, i), n)
print(json.dumps({"records": n, "append_us": round(append_us, 1), "chain_us": round(chain_us, 1),
                  "checkpoint_tag_us": round(tag_us, 1), "every": wire.LOG_CHECKPOINT_EVERY,
                  "added_per_record_us": round(tag_us / wire.LOG_CHECKPOINT_EVERY
                                               + append_us / wire.LOG_CHECKPOINT_EVERY, 1)}))
