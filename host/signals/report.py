"""The signals report: one HTML file, a figure per group over the sessions.

For each group, two panels over the surveilled sessions in time order: the
observed events against the expected (Poisson) or cases against the null
share (binomial), and the log likelihood ratio against the critical value,
with the signalling session marked. Styles and the figure check come from
the session report, so both look alike.
"""
import io
from html import escape

GROUP_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def figure_png(results, width=9.0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, 5.2), sharex=True)
    for k, r in enumerate(results):
        if not r.series:
            continue
        color = GROUP_COLORS[k % len(GROUP_COLORS)]
        x = [s[0] + 1 for s in r.series]
        label = "%s %s" % (r.group, r.value) if r.group != "all" else "all sessions"
        top.step(x, [s[1] for s in r.series], where="post", color=color, label=label + " observed")
        top.plot(x, [s[2] for s in r.series], color=color, linestyle=":", linewidth=1)
        bottom.step(x, [s[3] for s in r.series], where="post", color=color, label=label)
        bottom.axhline(r.test["critical_value"], color=color, linestyle="--", linewidth=0.8)
        if r.signal:
            at = [s for s in r.series if s[0] == r.signal_session]
            if at:
                bottom.plot([at[0][0] + 1], [at[0][3]], marker="o", color=color, markersize=8)
    top.set_ylabel("events (dotted: expected)")
    bottom.set_ylabel("log likelihood ratio\n(dashed: critical value)")
    bottom.set_xlabel("surveilled session, oldest first")
    top.legend(fontsize=7, loc="upper left")
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def section(results, data):
    """The report's HTML fragment: a figure per group kind, and the table."""
    from ..report.sections import figure, table
    parts = []
    for kind in ("all", "firmware", "plan", "batch"):
        rs = [r for r in results if r.group == kind]
        if rs and any(r.series for r in rs):
            parts.append("<h3>%s</h3>" % escape("All sessions" if kind == "all" else "By " + kind))
            parts.append(figure(figure_png(rs), "%s over sessions" % kind))
    head = ("group", "value", "sessions", "test", "CV", "alpha", "min events", "events",
            "expected", "max LLR", "result")
    rows, levels = [], []
    for r in results:
        rows.append((r.group, r.value, r.sessions, r.form, r.test["critical_value"],
                     r.test["alpha"], r.test["min_events"], r.events, r.expected,
                     round(r.max_llr, 3), "SIGNAL at session %d" % (r.signal_session + 1)
                     if r.signal else "no signal"))
        levels.append("bad" if r.signal else "")
    parts.append(table(head, rows, levels=levels))
    return "".join(parts)


def write(path, sessions, watch, results, data):
    from ..report import CHECK_JS, CSS
    title = "Safety signals: %s, %d sessions" % (data["metric"], len(sessions))
    html = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>"
            "<style>%s</style><script>%s</script></head><body><header><h1>%s</h1>"
            "<p class=\"sub\">%s MaxSPRT, alpha %g per group, at least %d event(s) to signal; "
            "%d sessions surveilled</p></header><section id=\"signals\"><h2>Signals over time"
            "</h2>%s</section></body></html>" % (
                escape(title), CSS, CHECK_JS, escape(title), data["form"], data["alpha"],
                data["min_events"], len(watch), section(results, data)))
    tmp = str(path) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(html)
    import os
    os.replace(tmp, path)
    return path
