"""Write the seed inputs of the fuzz corpus (``fuzz/corpus/<target>/``).

    python fuzz/seed.py

Seeds: every golden vector (valid and invalid) as a stream, alone and all
together, in both CRC modes; for the dispatcher, action scripts that start in
each hub state and exercise stop, replay, mutation and reset. File names are
the SHA-1 of the contents (libFuzzer's convention), so re-running adds nothing
twice. ``make fuzz`` merges what the fuzzers find into the same folders.
"""
import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fuzz import props  # noqa: E402

CORPUS = HERE / "corpus"


def seeds():
    wires = props.vector_wires()
    stream = b"".join(wires)
    rx = [bytes([m]) + w for w in wires for m in (0x05,)]
    rx += [bytes([0x01]) + stream, bytes([0x85]) + stream, bytes([0x10]) + b"\0\0" + stream]
    codec = [bytes([0x03]) + w for w in wires] + [bytes([0x83]) + stream]
    dispatch = props.seed_actions()
    return {"rx": rx, "codec": codec, "dispatch": dispatch}


def write():
    added = 0
    for target, items in seeds().items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for data in items:
            p = d / hashlib.sha1(data).hexdigest()
            if not p.exists():
                p.write_bytes(data)
                added += 1
    return added


def corpus(target):
    """Every input kept for ``target``, sorted by name (for the pytest replay)."""
    d = CORPUS / target
    return [p.read_bytes() for p in sorted(d.iterdir())] if d.is_dir() else []


if __name__ == "__main__":
    print("added %d seed inputs under %s" % (write(), CORPUS))
