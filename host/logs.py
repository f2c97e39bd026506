"""Pulling a hub's audit log into a file, resumably, and acknowledging it.

A pulled log is the hub's raw 24-byte records, concatenated, exactly as the
hub chained them. A pull into an existing file continues it from its last
whole record: the hub is asked for that record again, and nothing is written
until the hub's log is shown to continue the file (:class:`NotThisHub` if
not). ``nanohub log pull`` and ``nanohub fleet logs`` both pull through
:func:`pull_into`; :func:`ack` then lets the hub rotate away what is stored
and verified.
"""
import os

from .errors import Refused, UsageError


class NotThisHub(UsageError):
    """The file holds another hub's log, or an earlier life of this one."""


def holder_key(hub):
    """The hub key this host holds, or None (a pull needs no key)."""
    try:
        return hub.signing_key()
    except UsageError:
        return None


def hub_head(hub, key):
    """The hub's newest index and chain head, from HUB_STATUS, tagged under key."""
    from nanohub.protocol import auditlog
    st = hub.request("STATUS", "HUB_STATUS")[0]
    head = auditlog.Head(hub.hub_id, st["log_next"], bytes(st["log_head"]))
    return head.sign(key) if key is not None else head


def resume_point(path):
    """(start index, bytes to keep, last whole record) of an existing pulled file."""
    from nanohub.protocol import auditlog
    size = auditlog.SIZE
    with open(path, "rb") as f:
        data = f.read()
    keep = len(data) - len(data) % size
    if keep == 0:
        return 0, 0, None
    last = auditlog.parse_records(data[keep - size:keep])[0]
    return last["index"] + 1, keep, last


def _not_this_hub(path, hub_id, why):
    return NotThisHub("%s does not continue the log of hub 0x%08x (%s): it comes from another "
                      "hub or an earlier life of this one; pull to a new file (-o FILE) or "
                      "overwrite it (--force)" % (path, hub_id, why))


def check_continues(path, last, hub_id, chunk):
    """Check, before anything is written, that the hub's records continue the file:
    the hub's copy of the file's last record is the same bytes, or (rotated away
    on the hub) the next record chains onto it."""
    from nanohub.protocol import auditlog
    if not chunk.records:
        if chunk.next <= last["index"]:
            raise _not_this_hub(path, hub_id, "the hub's log ends at record %d, the "
                                "file's at %d" % (chunk.next - 1, last["index"]))
        return
    if chunk.start == last["index"]:
        if chunk.records[0] != last["raw"]:
            raise _not_this_hub(path, hub_id, "record %d differs" % last["index"])
        return
    res = auditlog.verify(auditlog.parse_records(chunk.records[0]), anchor=last["chain"],
                          expect_start=last["index"] + 1)
    if not res.ok:
        raise _not_this_hub(path, hub_id, "record %s: %s" % (res.bad_index, res.reason))


def read(path):
    """The bytes of a file; UsageError names the file when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror or e)) from None


def _open_out(path, mode):
    try:
        return open(path, mode)
    except OSError as e:
        raise UsageError("cannot write %s: %s" % (path, e.strerror or e)) from None


def pull_into(hub, path, resume=True, progress=None):
    """Write the hub's audit log to ``path``: continued from the file's last
    whole record when ``resume`` and the file holds one, else from the hub's
    oldest record into a new file. ``progress(done, total)`` after each chunk.

    Returns (first index asked for, records added, the hub's first index, the
    index after the last record written). Raises NotThisHub before writing
    when the hub's log does not continue the file.
    """
    start, keep, last = 0, 0, None
    if resume and os.path.exists(path) and os.path.getsize(path) > 0:
        start, keep, last = resume_point(path)
    added, first, end = 0, None, start
    # ask for the file's last record again: the hub's copy must match it
    chunks = hub.log_chunks(start - 1 if last is not None else start)
    with _open_out(path, "r+b" if keep else "wb") as f:
        f.truncate(keep)
        f.seek(keep)
        for chunk in chunks:
            if last is not None:        # the first chunk: does it continue the file?
                check_continues(path, last, hub.hub_id, chunk)
                if chunk.records and chunk.start == last["index"]:
                    chunk.records, chunk.start = chunk.records[1:], chunk.start + 1
                last = None
            first = chunk.first if first is None else first
            for rec in chunk.records:
                f.write(rec)
            added += len(chunk.records)
            end = chunk.start + len(chunk.records)
            f.flush()
            if progress is not None:
                progress(end - start, max(chunk.next - start, 1))
        os.fsync(f.fileno())
    return start, added, first, end


def ack(hub, key, res):
    """Acknowledge what is stored and verified, so the hub may rotate it away:
    (acknowledged up to, or None; why not). Needs the key: without one the hub
    keeps holding the records, which is safe, so a pull does not fail for it."""
    if res.last_index is None:
        return None, ""
    if key is None:
        return None, "no key"
    try:
        hub.log_ack(res.last_index + 1)
    except Refused as e:
        return None, "refused: %s" % e
    return res.last_index + 1, ""
