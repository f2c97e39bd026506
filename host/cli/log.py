"""``nanohub log pull|verify|show``: the audit log, downloaded and checked.

A pulled log is the hub's raw 24-byte records, concatenated, exactly as the
hub chained them; ``--resume`` continues a file from its last whole record.
Verification (``nanohub.protocol.auditlog``) checks the hash chain and the
continuity of indexes and names the first bad record.

The chain alone is unkeyed. ``log pull`` also saves ``FILE.head``: the hub's
newest index and chain head from HUB_STATUS, asked before the pull, tagged
under the hub key by this host. ``log verify --key`` then checks every keyed
checkpoint in the file and that the file reaches that head unchanged, so a
file rewritten without some records, or cut short, fails.

A pull by a host holding the key ends with a signed LOG_ACK of what it stored
and verified: only then may the hub rotate those records away.
"""
import os


def setup_log(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pull = sub.add_parser("pull", help="download the audit log to a file (resumable)")
    pull.add_argument("-o", "--out", metavar="FILE",
                      help="output file (default: nanohub-HUBID.log)")
    pull.add_argument("--resume", action="store_true",
                      help="continue FILE from its last whole record")
    pull.add_argument("--force", action="store_true", help="overwrite FILE")
    v = sub.add_parser("verify", help="check a pulled log's hash chain and indexes")
    v.add_argument("file")
    v.add_argument("--old-key", action="append", default=[], metavar="FILE",
                   help="an earlier key of the hub (checkpoints written before a key "
                        "rotation); repeatable")
    v.add_argument("--head", metavar="FILE",
                   help="the head file saved by log pull (default: FILE.head); without "
                        "--key, the key store's key for the hub it names is used")
    v.add_argument("--no-head", action="store_true",
                   help="with --key: check the checkpoints only, not that the file is complete")
    s = sub.add_parser("show", help="print a pulled log, one record a line")
    s.add_argument("file")
    s.add_argument("--tail", type=int, metavar="N", help="only the last N records")
    p.epilog = ("examples:\n  nanohub log pull -o session.log\n"
                "  nanohub log pull -o session.log --resume\n"
                "  nanohub log verify session.log --key hub.key\n"
                "  nanohub log show session.log --tail 20\n\n"
                "verify exits 1 and names the first bad record when the chain or the\n"
                "index sequence is broken; with --key also when a keyed checkpoint fails\n"
                "or the file does not reach the head saved beside it (FILE.head).")


def _read(path):
    from ..errors import UsageError
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror or e)) from None


def _result_dict(res):
    return {"verified": res.ok, "records": res.count, "first_index": res.first_index,
            "last_index": res.last_index, "bad_index": res.bad_index,
            "bad_position": res.bad_position, "reason": res.reason or None,
            "anchored": res.anchored, "keyed": res.keyed, "checkpoints": res.checkpoints,
            "head_checked": res.head_checked}


def head_path(path):
    return str(path) + ".head"


def _hub_key(hub):
    """The hub key this host holds, or None (a pull needs no key)."""
    from ..errors import UsageError
    try:
        return hub.signing_key()
    except UsageError:
        return None


def _hub_head(hub, key):
    """The hub's newest index and chain head, from HUB_STATUS, tagged under key."""
    from nanohub.protocol import auditlog
    st = hub.request("STATUS", "HUB_STATUS")[0]
    head = auditlog.Head(hub.hub_id, st["log_next"], bytes(st["log_head"]))
    return head.sign(key) if key is not None else head


def _resume_point(path, size):
    """(start index, bytes to keep, last whole record) of an existing pulled file."""
    from nanohub.protocol import auditlog
    with open(path, "rb") as f:
        data = f.read()
    keep = len(data) - len(data) % size
    if keep == 0:
        return 0, 0, None
    last = auditlog.parse_records(data[keep - size:keep])[0]
    return last["index"] + 1, keep, last


def _not_this_hub(path, last, hub_id, why):
    from ..errors import UsageError
    return UsageError("%s does not continue the log of hub 0x%08x (%s): it comes from another "
                      "hub or an earlier life of this one; pull to a new file (-o FILE) or "
                      "overwrite it (--force)" % (path, hub_id, why))


def _continues(path, last, hub_id, chunk):
    """Check, before anything is written, that the hub's records continue the file:
    the hub's copy of the file's last record is the same bytes, or (rotated away
    on the hub) the next record chains onto it."""
    from nanohub.protocol import auditlog
    if not chunk.records:
        if chunk.next <= last["index"]:
            raise _not_this_hub(path, last, hub_id, "the hub's log ends at record %d, the "
                                "file's at %d" % (chunk.next - 1, last["index"]))
        return
    if chunk.start == last["index"]:
        if chunk.records[0] != last["raw"]:
            raise _not_this_hub(path, last, hub_id, "record %d differs" % last["index"])
        return
    res = auditlog.verify(auditlog.parse_records(chunk.records[0]), anchor=last["chain"],
                          expect_start=last["index"] + 1)
    if not res.ok:
        raise _not_this_hub(path, last, hub_id, "record %s: %s" % (res.bad_index, res.reason))


def _open_out(path, mode):
    from ..errors import UsageError
    try:
        return open(path, mode)
    except OSError as e:
        raise UsageError("cannot write %s: %s" % (path, e.strerror or e)) from None


def pull(ctx, args):
    from nanohub.protocol import auditlog

    from ..errors import CheckFailed, UsageError
    if args.out:        # a bad path is a usage error found before the hub is asked
        folder = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(folder):
            raise UsageError("cannot write %s: no such directory %s" % (args.out, folder))
    hub = ctx.hub()
    path = args.out or "nanohub-%08x.log" % hub.hub_id
    start, keep, last = 0, 0, None
    exists = os.path.exists(path) and os.path.getsize(path) > 0
    if args.resume and exists:
        start, keep, last = _resume_point(path, auditlog.SIZE)
    elif exists and not args.force:
        raise UsageError("%s exists: add --resume to continue it, --force to overwrite it, "
                         "or choose another -o FILE" % path)
    key = _hub_key(hub)
    head = _hub_head(hub, key)      # before the pull: the file must reach it
    from ..tui import Bar
    progress = Bar("pulling audit log")
    added, first, end = 0, None, start
    chunks = hub.log_chunks(start - 1 if last is not None else start)
    try:
        with _open_out(path, "r+b" if keep else "wb") as f:
            f.truncate(keep)
            f.seek(keep)
            for chunk in chunks:
                if last is not None:        # the first chunk: does it continue the file?
                    _continues(path, last, hub.hub_id, chunk)
                    if chunk.records and chunk.start == last["index"]:
                        chunk.records, chunk.start = chunk.records[1:], chunk.start + 1
                    last = None
                first = chunk.first if first is None else first
                for rec in chunk.records:
                    f.write(rec)
                added += len(chunk.records)
                end = chunk.start + len(chunk.records)
                f.flush()
                progress(end - start, max(chunk.next - start, 1))
            os.fsync(f.fileno())
    finally:
        progress.close()
    # the chain and the hub's head; the keyed checkpoints are log verify --key's
    # (a hub whose key was rotated holds checkpoints under the old key too)
    res = auditlog.verify(auditlog.parse_records(_read(path)), head=head)
    hpath = head_path(path)
    try:
        with open(hpath, "w") as f:
            f.write(head.dumps())
    except OSError as e:
        raise UsageError("cannot write %s: %s" % (hpath, e.strerror or e)) from None
    out = dict(_result_dict(res), file=path, start=start, added=added, hub_first=first,
               hub_next=end, head_file=hpath, head_signed=bool(head.tag))
    text = "pulled %d new records (%d..%d) to %s; %s" % (added, start, end - 1, path, res) \
        if added else "no new records; %s holds %d records; %s" % (path, res.count, res)
    if not res.ok:
        raise CheckFailed("pulled %d records to %s, but the log does not verify: %s"
                          % (added, path, res), out)
    out["acked"], why = _ack(hub, key, res)
    if why:
        text += "; not acknowledged (%s): the hub keeps holding these records" % why
    ctx.emit(out, text)


def _ack(hub, key, res):
    """Acknowledge what is stored and verified, so the hub may rotate it away:
    (acknowledged up to, or None; why not). Needs the key: without one the hub
    keeps holding the records, which is safe, so a pull does not fail for it."""
    from ..errors import Refused
    if res.last_index is None:
        return None, ""
    if key is None:
        return None, "no key"
    try:
        hub.log_ack(res.last_index + 1)
    except Refused as e:
        return None, "refused: %s" % e
    return res.last_index + 1, ""


def _what_is_wrong(data, res):
    """The verifier's finding in words, also for files that are no log at all."""
    from nanohub.protocol import auditlog
    size = auditlog.SIZE
    if len(data) < size:
        return ("%d bytes, shorter than one %d-byte audit record: not a pulled audit log"
                % (len(data), size))
    if res.reason == auditlog.TRUNCATED:
        return ("%d records, then %d bytes that are not a whole %d-byte record: the file was "
                "cut short or is not a pulled audit log" % (res.count, len(data) % size, size))
    text = str(res)
    if res.bad_position is not None and res.bad_position <= 1:
        text += " (is it a pulled audit log? its first records do not chain)"
    return text


def _verify_keys(ctx, args):
    """--key (or $NANOHUB_KEY) and --old-key; else the key store's key for the
    hub named in the head file beside the log, if the store has one."""
    from nanohub.protocol import auditlog

    from .. import keys
    from ..errors import UsageError
    paths = ([ctx.key_arg()] if ctx.key_arg() else []) + list(args.old_key)
    if not paths and not args.no_head:
        try:
            head = auditlog.Head.loads(_read(args.head or head_path(args.file)).decode())
        except (ValueError, UsageError):    # no head file (UnicodeDecodeError is a ValueError)
            head = None
        if head is not None and keys.key_path(head.hub_id).exists():
            paths = [keys.key_path(head.hub_id)]
    return [keys.load_key(p) for p in paths]


def _verify_head(args, keys):
    """The saved head to check the file against, or None (no key, or --no-head)."""
    from nanohub.protocol import auditlog

    from ..errors import CheckFailed, UsageError
    if not keys or args.no_head:
        return None
    path = args.head or head_path(args.file)
    if not os.path.exists(path):
        raise CheckFailed("%s: no head file %s (log pull saves it): cannot tell whether the file "
                          "was cut short; pass --no-head to check the checkpoints only"
                          % (args.file, path), {"verified": False, "file": args.file})
    try:
        head = auditlog.Head.loads(_read(path).decode("utf-8", "replace"))
    except ValueError as e:
        raise UsageError("%s: %s" % (path, e)) from None
    if not head.signed_by(keys):
        raise CheckFailed("%s: head file %s is not tagged under the key: it was rewritten, or "
                          "pulled by a host without the key" % (args.file, path),
                          {"verified": False, "file": args.file})
    return head


def verify(ctx, args):
    from nanohub.protocol import auditlog

    from ..errors import CheckFailed
    data = _read(args.file)
    keys = _verify_keys(ctx, args)
    head = _verify_head(args, keys)
    res = auditlog.verify(auditlog.parse_records(data), keys=keys or None, head=head)
    out = dict(_result_dict(res), file=args.file)
    if not res.ok:
        raise CheckFailed("%s: %s" % (args.file, _what_is_wrong(data, res)), out)
    ctx.emit(out, "%s: %s" % (args.file, res))


def show(ctx, args):
    from nanohub.protocol import auditlog
    records = auditlog.parse_records(_read(args.file))
    if args.tail:
        records = records[-args.tail:]
    if ctx.json:
        rows = []
        for r in records:
            row = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.items() if k != "raw"}
            if r.get("index") is not None:
                row["event_name"] = auditlog.event_name(r["event"])
            row["text"] = auditlog.describe(r)
            rows.append(row)
        ctx.emit({"file": args.file, "records": rows})
        return
    ctx.emit({}, "\n".join(auditlog.describe(r) for r in records) or "(empty log)")


def run_log(ctx, args):
    return {"pull": pull, "verify": verify, "show": show}[args.action](ctx, args)
