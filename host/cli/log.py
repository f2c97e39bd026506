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

from .. import logs


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


def _result_dict(res):
    return {"verified": res.ok, "records": res.count, "first_index": res.first_index,
            "last_index": res.last_index, "bad_index": res.bad_index,
            "bad_position": res.bad_position, "reason": res.reason or None,
            "anchored": res.anchored, "keyed": res.keyed, "checkpoints": res.checkpoints,
            "head_checked": res.head_checked}


def head_path(path):
    return str(path) + ".head"


def pull(ctx, args):
    from nanohub.protocol import auditlog

    from ..errors import CheckFailed, UsageError
    if args.out:        # a bad path is a usage error found before the hub is asked
        folder = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(folder):
            raise UsageError("cannot write %s: no such directory %s" % (args.out, folder))
    hub = ctx.hub()
    path = args.out or "nanohub-%08x.log" % hub.hub_id
    if os.path.exists(path) and os.path.getsize(path) > 0 and not (args.resume or args.force):
        raise UsageError("%s exists: add --resume to continue it, --force to overwrite it, "
                         "or choose another -o FILE" % path)
    key = logs.holder_key(hub)
    head = logs.hub_head(hub, key)      # before the pull: the file must reach it
    from ..tui import Bar
    progress = Bar("pulling audit log")
    try:
        start, added, first, end = logs.pull_into(hub, path, args.resume, progress)
    finally:
        progress.close()
    # the chain and the hub's head; the keyed checkpoints are log verify --key's
    # (a hub whose key was rotated holds checkpoints under the old key too)
    res = auditlog.verify(auditlog.parse_records(logs.read(path)), head=head)
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
    out["acked"], why = logs.ack(hub, key, res)
    if why:
        text += "; not acknowledged (%s): the hub keeps holding these records" % why
    ctx.emit(out, text)


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
            head = auditlog.Head.loads(logs.read(args.head or head_path(args.file)).decode())
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
        head = auditlog.Head.loads(logs.read(path).decode("utf-8", "replace"))
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
    data = logs.read(args.file)
    keys = _verify_keys(ctx, args)
    head = _verify_head(args, keys)
    res = auditlog.verify(auditlog.parse_records(data), keys=keys or None, head=head)
    out = dict(_result_dict(res), file=args.file)
    if not res.ok:
        raise CheckFailed("%s: %s" % (args.file, _what_is_wrong(data, res)), out)
    ctx.emit(out, "%s: %s" % (args.file, res))


def show(ctx, args):
    from nanohub.protocol import auditlog
    records = auditlog.parse_records(logs.read(args.file))
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
