"""Bytes on the wire per frame, next to MAVLink 2.

    python -m nanohub.protocol.overhead
"""
from . import codec, model

MAVLINK2_UNSIGNED = 12
MAVLINK2_SIGNED = 25
KEY = bytes(32)


def figures():
    """(what, payload bytes, wire bytes, overhead bytes) for typical frames."""
    bot = {"state": 2, "site": 17, "activity": 80, "battery": 91, "health": 99}
    rows = []

    def add(what, msg, fields=None, records=(), **kw):
        payload = len(codec.build_payload(model.BY_NAME[msg].id, fields, records))
        wire = len(codec.encode(msg, fields, records, seq=0x1234, **kw))
        rows.append((what, payload, wire, wire - payload))

    add("unsigned command (RECALL)", "RECALL", {"bot": 3})
    add("signed command (DOSE_SCALE)", "DOSE_SCALE", {"percent": 50}, key=KEY, counter=7)
    add("emergency stop", "ESTOP", {"source": 0})
    for n in (16, 64):
        add("telemetry, %d bots" % n, "BOT_STATES", {"first": 0}, [bot] * n)
    return rows


def main():
    print("%-30s %8s %6s %9s" % ("frame", "payload", "wire", "overhead"))
    for what, payload, wire, over in figures():
        print("%-30s %8d %6d %9d" % (what, payload, wire, over))
    print("MAVLink 2 overhead: %d B unsigned, %d B signed" % (MAVLINK2_UNSIGNED, MAVLINK2_SIGNED))


if __name__ == "__main__":
    main()
