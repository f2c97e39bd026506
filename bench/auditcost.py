"""The keyed audit checkpoint's cost on the MicroPython VM.

    python -m bench.auditcost [N]

Prints one JSON line: the time of an append (synced to a real directory), of
the unkeyed chain, of a checkpoint tag (HMAC-SHA256), and what the checkpoint
adds per record (one tag and one extra append every LOG_CHECKPOINT_EVERY).
"""
import json
import sys
import tempfile

from .firmware import run_mp
from nanohub.host.simport import HEAP


def run(n=200):
    with tempfile.TemporaryDirectory(prefix="nanohub-auditcost-") as tmp:
        return run_mp("auditcost.py", [tmp + "/store", n], heap=HEAP)


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200)))
