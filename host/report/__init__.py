"""``nanohub report``: one self-contained HTML file from a session database.

    render(["session.db"], "report.html")            # one session
    render(["a.db", "b.db"], "compare.html")         # two, side by side

The file embeds its figures (PNG, matplotlib) and styles; a tiny inline
script only checks that every figure decoded and says so on the page. It
reads on a laptop screen and prints (sections do not split across pages).
"""
from html import escape
from pathlib import Path

from . import summary as report_summary
from .data import load
from .sections import SECTIONS

WIDTH = 10.5          # figure width (inches) for one session
WIDTH_PAIR = 6.6      # for each of two compared sessions

CSS = """
:root { --ok: #1b5e20; --okbg: #e8f5e9; --warn: #8d5a00; --warnbg: #fff8e1;
        --bad: #b71c1c; --badbg: #ffebee; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #212121; margin: 0 auto; padding: 16px 24px 48px; max-width: 1280px; }
h1 { font-size: 22px; margin: 4px 0; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 2px solid #3949ab; padding-bottom: 2px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
.sub { color: #616161; margin: 0 0 10px; }
nav a { margin-right: 12px; color: #3949ab; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid #e0e0e0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
table.summary { width: 100%; } table.summary td:first-child { font-weight: 600; width: 190px; }
tr.ok td, td.ok { background: var(--okbg); } tr.warn td, td.warn { background: var(--warnbg); }
tr.bad td, td.bad { background: var(--badbg); color: var(--bad); font-weight: 600; }
.verdict { padding: 8px 12px; border-radius: 4px; font-weight: 600; }
.verdict.ok { background: var(--okbg); color: var(--ok); }
.verdict.warn { background: var(--warnbg); color: var(--warn); }
.verdict.bad { background: var(--badbg); color: var(--bad); }
figure { margin: 6px 0; } img { max-width: 100%; height: auto; display: block; }
.note { color: #616161; font-size: 12px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.pair > div { min-width: 0; overflow-x: auto; } .pair h4 { margin: 4px 0; color: #3949ab; }
details summary { cursor: pointer; color: #3949ab; }
.broken { color: var(--bad); font-weight: 600; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; } nav { display: none; }
  figure, tr, table.summary { break-inside: avoid; } h2, h3 { break-after: avoid; }
  details > *:not(summary) { display: block; } table { font-size: 10px; }
}
"""

CHECK_JS = """
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { imgs[i].setAttribute("data-ok", "1"); ok++; }
    else { var p = document.createElement("p"); p.className = "broken";
           p.textContent = "This figure could not be displayed."; imgs[i].after(p); }
  }
  document.documentElement.setAttribute("data-figures", ok + "/" + imgs.length);
});
"""


def _summary(datas):
    per = [report_summary.rows(d) for d in datas]
    items = []
    for rows in per:
        for item, _, _ in rows:
            if item not in items:
                items.append(item)
    look = [{item: (text, level) for item, text, level in rows} for rows in per]
    head = "<tr><th></th>%s</tr>" % "".join("<th>%s</th>" % escape(d.name) for d in datas) \
        if len(datas) > 1 else ""
    body = []
    for item in items:
        cells = []
        for lk in look:
            text, level = lk.get(item, ("—", ""))
            cells.append('<td class="%s">%s</td>' % (level, escape(text)))
        body.append("<tr><td>%s</td>%s</tr>" % (escape(item), "".join(cells)))
    return '<table class="summary">%s%s</table>' % (head, "".join(body))


def build_html(datas, title=None):
    pair = len(datas) > 1
    width = WIDTH_PAIR if pair else WIDTH
    xmax = max(d.duration for d in datas)
    names = " vs ".join(d.name for d in datas)
    title = title or ("Session comparison: %s" % names if pair else "Session report: %s" % names)
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
             "<title>%s</title><style>%s</style><script>%s</script></head><body>"
             % (escape(title), CSS, CHECK_JS),
             "<header><h1>%s</h1><p class=\"sub\">nanohub session report · %s</p></header>"
             % (escape(title), escape(", ".join("%s recorded %s" % (
                 d.name, report_summary.when(d)) for d in datas))),
             "<nav>%s</nav>" % "".join('<a href="#%s">%s</a>' % (sid, escape(h.split(":")[0]))
                                       for sid, h, _ in (("summary", "Summary", None),) + SECTIONS),
             '<section id="summary"><h2>Summary</h2>%s</section>' % _summary(datas)]
    for sid, heading, fn in SECTIONS:
        if pair:
            body = '<div class="pair">%s</div>' % "".join(
                "<div><h4>%s</h4>%s</div>" % (escape(d.name), fn(d, width, xmax)) for d in datas)
        else:
            body = fn(datas[0], width, xmax)
        parts.append('<section id="%s"><h2>%s</h2>%s</section>' % (sid, escape(heading), body))
    parts.append("<footer class=\"note\">Generated by nanohub report from %s. Times are seconds "
                 "since each recording started.</footer></body></html>" % escape(names))
    return "\n".join(parts)


def default_output(paths):
    paths = [Path(p) for p in paths]
    if len(paths) == 1:
        return paths[0].with_suffix(".html")
    return paths[0].with_name("%s-vs-%s.html" % (paths[0].stem, paths[1].stem))


def render(paths, out=None, title=None, datas=None):
    """Write the report for one session (or two, compared); returns (path, datas).
    ``datas``: the sessions already loaded (so that a caller prints the same figures)."""
    datas = datas or [load(p) for p in paths]
    out = Path(out) if out else default_output(paths)
    html = build_html(datas, title)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out, datas
