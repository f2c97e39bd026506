"""``nanohub log pull|verify|show``: the audit log, downloaded and checked.

A pulled log is the hub's raw 24-byte records, concatenated, exactly as the
hub chained them; ``--resume`` continues a file from its last whole record.
Verification (``nanohub.protocol.auditlog``) checks the hash chain and the
continuity of indexes and names the first bad record.
"""
import os
import sys


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
    s = sub.add_parser("show", help="print a pulled log, one record a line")
    s.add_argument("file")
    s.add_argument("--tail", type=int, metavar="N", help="only the last N records")
    p.epilog = ("examples:\n  nanohub log pull -o session.log\n"
                "  nanohub log pull -o session.log --resume\n"
                "  nanohub log verify session.log\n  nanohub log show session.log --tail 20\n\n"
                "verify exits 1 and names the first bad record when the chain or the\n"
                "index sequence is broken.")


def _read(path):
    from .errors import UsageError
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror or e)) from None


def _result_dict(res):
    return {"verified": res.ok, "records": res.count, "first_index": res.first_index,
            "last_index": res.last_index, "bad_index": res.bad_index,
            "bad_position": res.bad_position, "reason": res.reason or None,
            "anchored": res.anchored}


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label):
        self.label = label
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done, total):
        if not self.tty:
            return
        width = 30
        frac = min(1.0, done / total) if total else 1.0
        bar = "#" * int(frac * width)
        sys.stderr.write("\r%s [%-*s] %d/%d" % (self.label, width, bar, done, total))
        sys.stderr.flush()
        self.shown = True

    def close(self):
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _resume_point(path, size):
    """(start index, bytes to keep) of an existing pulled file."""
    from nanohub.protocol import auditlog
    with open(path, "rb") as f:
        data = f.read()
    keep = len(data) - len(data) % size
    if keep == 0:
        return 0, 0
    last = auditlog.parse_records(data[keep - size:keep])[0]
    return last["index"] + 1, keep


def pull(ctx, args):
    from nanohub.protocol import auditlog

    from .errors import CheckFailed, UsageError
    hub = ctx.hub()
    path = args.out or "nanohub-%08x.log" % hub.hub_id
    start, keep = 0, 0
    exists = os.path.exists(path) and os.path.getsize(path) > 0
    if args.resume and exists:
        start, keep = _resume_point(path, auditlog.SIZE)
    elif exists and not args.force:
        raise UsageError("%s exists: add --resume to continue it, --force to overwrite it, "
                         "or choose another -o FILE" % path)
    progress = Progress("pulling audit log")
    added, first, end = 0, None, start
    try:
        with open(path, "r+b" if keep else "wb") as f:
            f.truncate(keep)
            f.seek(keep)
            for chunk in hub.log_chunks(start):
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
    res = auditlog.verify(auditlog.parse_records(_read(path)))
    out = dict(_result_dict(res), file=path, start=start, added=added, hub_first=first,
               hub_next=end)
    text = "pulled %d new records (%d..%d) to %s; %s" % (added, start, end - 1, path, res) \
        if added else "no new records; %s holds %d records; %s" % (path, res.count, res)
    if not res.ok:
        raise CheckFailed("pulled %d records to %s, but the log does not verify: %s"
                          % (added, path, res), out)
    ctx.emit(out, text)


def verify(ctx, args):
    from nanohub.protocol import auditlog

    from .errors import CheckFailed
    res = auditlog.verify(auditlog.parse_records(_read(args.file)))
    out = dict(_result_dict(res), file=args.file)
    if not res.ok:
        raise CheckFailed("%s: %s" % (args.file, res), out)
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
