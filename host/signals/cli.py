"""``nanohub signals DB...``: safety signals across recorded sessions."""
from pathlib import Path

from . import detect
from .sessions import METRICS, read_sessions


def setup_signals(p):
    p.add_argument("db", nargs="+", help="session files (nanohub record), or folders of them")
    p.add_argument("--metric", choices=METRICS, default="nano",
                   help="what to watch (default nano: nano-sensitivity episodes)")
    p.add_argument("--form", choices=("poisson", "binomial"), default="poisson",
                   help="poisson: against a baseline rate per session (default); binomial: "
                        "each group against the other sessions")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="probability of any false signal per group over the whole "
                        "surveillance (default 0.05)")
    p.add_argument("--min-events", type=int, default=1, metavar="M",
                   help="no signal before M events (default 1; 4 is a common choice)")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--baseline", type=float, metavar="RATE",
                   help="expected events per session when nothing is wrong")
    b.add_argument("--reference", type=int, metavar="K",
                   help="estimate the baseline from the K oldest sessions (then not "
                        "surveilled; default: a fifth of the sessions, at least 1)")
    p.add_argument("--upper", type=float, metavar="T",
                   help="upper limit of the surveillance: expected events (poisson; default "
                        "the group's sessions x baseline) or events (binomial; default all)")
    p.add_argument("--html", metavar="FILE", help="also write the signals report (HTML)")
    p.epilog = (
        "examples:\n"
        "  nanohub signals sessions/\n"
        "  nanohub signals --baseline 0.4 --upper 60 --min-events 4 sessions/*.db\n"
        "  nanohub signals --form binomial --metric adverse sessions/ --html signals.html\n\n"
        "Exit 0 when no group signals, 1 when one does (named with the session that\n"
        "raised it), 2 on a usage error.")


def _paths(items):
    from ..errors import UsageError
    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(str(x) for x in p.glob("*.db")))
        else:
            out.append(item)
    if not out:
        raise UsageError("no session files in %s" % ", ".join(items))
    return out


def run_signals(ctx, args):
    from ..errors import CheckFailed, UsageError
    if not 0 < args.alpha < 0.5:
        raise UsageError("--alpha must be between 0 and 0.5, got %g" % args.alpha)
    if args.min_events < 1:
        raise UsageError("--min-events must be at least 1")
    sessions = read_sessions(_paths(args.db))
    ref = args.reference
    if args.baseline is None and ref is None:
        ref = max(1, len(sessions) // 5)
    ref = ref or 0
    if args.baseline is None and not 0 < ref < len(sessions):
        raise UsageError("--reference %d leaves no session to surveil (%d sessions)"
                         % (ref, len(sessions)))
    watch, base, results = detect.run(sessions, args.metric, args.form, args.baseline, ref,
                                      args.alpha, args.min_events, args.upper)
    if args.form == "poisson" and not base:
        raise UsageError("the baseline rate of %s is 0: give --baseline RATE (events per "
                         "session expected when nothing is wrong)" % args.metric)
    data = {"sessions": len(sessions), "reference_sessions": ref if args.baseline is None else 0,
            "surveilled": len(watch), "metric": args.metric, "form": args.form,
            "baseline_per_session": base, "alpha": args.alpha, "min_events": args.min_events,
            "groups": [r.to_dict() for r in results],
            "signals": [{"group": r.group, "value": r.value, "session": r.signal_path}
                        for r in results if r.signal]}
    if args.html:
        from .report import write
        write(args.html, sessions, watch, results, data)
        data["html"] = args.html
    text = render(sessions, watch, results, data)
    if data["signals"]:
        if not ctx.json:
            print(text, flush=True)
        raise CheckFailed("SIGNAL: %s" % "; ".join(
            "%s %s at session %d (%s)" % (r.group, r.value, r.signal_session + 1, r.signal_path)
            for r in results if r.signal), data)
    ctx.emit(data, text + "\nno signal")


def render(sessions, watch, results, data):
    lines = ["%d sessions; %s surveilled; metric %s; %s MaxSPRT, alpha %g per group, "
             "at least %d event(s) to signal" % (
                 len(sessions), len(watch), data["metric"], data["form"], data["alpha"],
                 data["min_events"])]
    if data["form"] == "poisson":
        lines.append("baseline %.4f %s events per session (%s)" % (
            data["baseline_per_session"], data["metric"],
            "given" if not data["reference_sessions"] else
            "from the %d oldest sessions" % data["reference_sessions"]))
    lines.append("")
    lines.append("%-9s %-16s %5s %7s %8s %7s %7s  %-8s %6s %6s %7s  %s" % (
        "group", "value", "sess", "nano/s", "advrs/s", "thrt/s", "quar/s", "test", "CV",
        "limit", "max LLR", "result"))
    for r in results:
        t = r.test
        limit = t.get("upper_limit_expected", t.get("upper_limit_events"))
        res = ("SIGNAL at session %d: %g events vs %g expected" % (
            r.signal_session + 1, r.events, r.expected) if r.signal else
            "no signal (%g events vs %g expected)" % (r.events, r.expected))
        lines.append("%-9s %-16s %5d %7.3f %8.3f %7.3f %7.3f  %-8s %6.3f %6g %7.3f  %s" % (
            r.group, r.value[:16], r.sessions, r.rates["nano"], r.rates["adverse"],
            r.rates["throttles"], r.rates["quarantines"], r.form, t["critical_value"],
            round(limit, 2), r.max_llr, res))
    binom = [r for r in results if r.form == "binomial"]
    if binom:
        lines.append("binomial: matching ratio z = sessions outside the group per session in it; "
                     "attained alpha per group: %s" % ", ".join(
                         "%s %s %.4f" % (r.group, r.value, r.test["attained_alpha"])
                         for r in binom))
    return "\n".join(lines)
