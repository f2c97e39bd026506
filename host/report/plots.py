"""The report's figures (matplotlib, Agg, no pyplot): each returns PNG bytes.

Every plot shares one time axis (seconds since the recording started, or
minutes:seconds for long sessions) so that sections line up when read
together; ``xmax`` keeps two compared sessions on the same scale.
"""
import io

from ..plan import site_name

DPI = 110
STATE_COLOR = {"SAFE": "#4caf50", "ARMED": "#29b6f6", "TREATING": "#1b5e20", "PAUSED": "#ffb300",
               "ESTOP": "#d50000"}
PRIO_COLOR = {"HIGH": "#d50000", "MEDIUM": "#ff8f00", "LOW": "#607d8b"}
BOT_COLOR = {"DOCKED": "#bdbdbd", "DEPLOYED": "#90caf9", "ACTIVE": "#2e7d32",
             "RETURNING": "#ab47bc", "QUARANTINED": "#ff9800", "DISABLED": "#b71c1c",
             "LOST": "#212121"}
ACK_COLOR = {"DONE": "#1565c0", "ACCEPTED": "#1565c0", "REJECTED": "#d50000"}


def _figure(width, height):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig


def _png(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _time_axis(ax, xmax, label=True):
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    ax.set_xlim(0, max(xmax, 1.0))
    if xmax > 300:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 6, 10]))
        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda v, _: "%d:%02d" % (int(v) // 60, int(v) % 60) if v >= 0 else ""))
        unit = "min:s"
    else:
        unit = "s"
    if label:
        ax.set_xlabel("time since the recording started (%s)" % unit)
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)


def _gaps(ax, d):
    """Hatch the spans without telemetry (over the data: nothing there is known)."""
    for t0, t1 in d.gaps():
        ax.axvspan(t0, t1, facecolor=(1, 1, 1, 0.55), edgecolor="#9e9e9e", hatch="///",
                   linewidth=0, zorder=5)


def _broken(d, t, y):
    """t, y with NaN at each telemetry gap, so lines do not bridge it."""
    import numpy as np
    gaps = d.gaps()
    if not gaps or not len(t):
        return t, y
    at = np.searchsorted(t, [g[1] for g in gaps])
    return np.insert(t.astype(float), at, np.nan), np.insert(y.astype(float), at, np.nan)


# ---------------------------------------------------------------- timeline --

def _clusters(cmds, gap):
    """Commands close in time share one label: 'deploy ×3, arm'."""
    out = []
    for c in cmds:
        if out and c["t"] - out[-1][-1]["t"] < gap:
            out[-1].append(c)
        else:
            out.append([c])
    labels = []
    for group in out:
        names = []
        for c in group:
            n = c["name"].lower()
            if names and names[-1][0] == n:
                names[-1][1] += 1
            else:
                names.append([n, 1])
        refused = any(c["status"] == "REJECTED" for c in group)
        labels.append((group[0]["t"], ", ".join(n + (" ×%d" % k if k > 1 else "")
                                                for n, k in names), refused))
    return labels


def timeline(d, width, xmax):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from nanohub.protocol import auditlog
    faults = d.faults
    lanes = [("hub state", 1.0), ("alarms", 1.0), ("operator", 1.3)]
    if faults:
        lanes.append(("faults\n(ground truth)", max(1.0, 0.42 * len(faults))))
    total = sum(h for _, h in lanes)
    fig = _figure(width, 1.1 + 0.62 * total)
    ax = fig.add_subplot()
    base, y = {}, total
    for name, h in lanes:
        y -= h
        base[name] = (y, h)
    yh = base["hub state"][0] + 0.5
    for t0, t1, state, reason in d.state_segments():
        ax.broken_barh([(t0, max(t1 - t0, 0.01))], (yh - 0.35, 0.7),
                       facecolors=STATE_COLOR.get(state, "#9e9e9e"))
        if (t1 - t0) > xmax / 12:
            ax.text((t0 + t1) / 2, yh, state + (" (%s)" % reason if reason and (t1 - t0) > xmax / 5
                                                else ""), ha="center", va="center", fontsize=8,
                    color="white" if state in ("TREATING", "ESTOP") else "black", clip_on=True)
    ya = base["alarms"][0] + 0.5
    for prio, dy in (("HIGH", 0.25), ("MEDIUM", 0.0), ("LOW", -0.25)):
        ts = [a[0] for a in d.raised() if a[2] == prio]
        if ts:
            ax.scatter(ts, [ya + dy] * len(ts), marker="D", s=24, color=PRIO_COLOR[prio], zorder=3)
    logged = [d.hub_time(r["t"]) for r in d.log_window()
              if auditlog.event_name(r["event"]) == "ALARM"]
    if logged:
        ax.scatter(logged, [ya] * len(logged), marker="D", s=46, facecolors="none",
                   edgecolors="#6a1b9a", linewidths=1.0, zorder=4)
    yo = base["operator"][0] + 0.35
    for c in d.operator_commands():
        ax.plot([c["t"]], [yo], marker="v", markersize=7, zorder=3,
                color=ACK_COLOR.get(c["status"], "#757575"))
    for i, (t, label, refused) in enumerate(_clusters(d.operator_commands(), xmax / 30)):
        ax.annotate(label, (t, yo), xytext=(-2, 6 + 10 * (i % 2)), textcoords="offset points",
                    fontsize=7, color="#d50000" if refused else "#0d47a1", clip_on=True)
    if faults:
        y0, h = base["faults\n(ground truth)"]
        row = h / len(faults)
        for i, f in enumerate(faults):
            yc = y0 + h - (i + 0.5) * row
            end = f.get("until") or (f["t"] + (f.get("contained_s") or 0))
            ax.broken_barh([(f["t"], max(end - f["t"], xmax / 300))], (yc - 0.3 * row, 0.6 * row),
                           facecolors="#ef9a9a", edgecolors="#c62828", linewidth=0.6)
            ax.text(f["t"] + xmax / 200, yc, f["kind"], fontsize=7, va="center", ha="left",
                    color="#4a0000", clip_on=True)
    for t0, t1 in d.gaps():
        ax.axvspan(t0, t1, facecolor="none", edgecolor="#9e9e9e", hatch="///", linewidth=0,
                   zorder=0)
    for name, (y0, h) in base.items():
        ax.axhline(y0, color="#e0e0e0", linewidth=0.6)
    ax.set_yticks([y0 + h / 2 for y0, h in base.values()], list(base), fontsize=8)
    ax.set_ylim(0, total)
    _time_axis(ax, xmax)
    handles = [Patch(color=c, label=s) for s, c in STATE_COLOR.items()]
    handles += [Line2D([], [], marker="D", linestyle="", color=PRIO_COLOR[p], label="alarm " + p)
                for p in ("HIGH", "MEDIUM", "LOW")]
    handles += [Line2D([], [], marker="D", linestyle="", markerfacecolor="none",
                       markeredgecolor="#6a1b9a", label="alarm (hub log)"),
                Line2D([], [], marker="v", linestyle="", color="#1565c0", label="command"),
                Patch(facecolor="none", edgecolor="#9e9e9e", hatch="///", label="no telemetry")]
    fig.legend(handles=handles, fontsize=7, ncol=6, loc="outside lower center", frameon=False)
    return _png(fig)


# ------------------------------------------------------------------- sites --

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", (0, (6, 2)), (0, (2, 1.5)), "-.", (0, (8, 2, 2, 2)))


def _staggered(n, i, k, marks=12):
    """markevery: about ``marks`` markers, line i's shifted by i/k of the spacing."""
    step = max(1, n // marks)
    return (min(n - 1, (i * step) // max(1, k)) if n else 0, step)


def _say_overlap(ax, items, within=0.03):
    """Say so on the plot when the sites' dose curves end within 3 % of each other."""
    ends = [int(r["dose"][-1]) for _, r in items if len(r["dose"])]
    if len(ends) < 2 or max(ends) <= 0 or (max(ends) - min(ends)) > within * max(ends):
        return
    ax.text(0.99, 0.04, "the %d sites' dose curves overlap (end: %s µDU)" % (
        len(ends), ", ".join(map(str, ends))), transform=ax.transAxes, ha="right",
        va="bottom", fontsize=7, color="#424242",
        bbox=dict(facecolor="white", edgecolor="#bdbdbd", linewidth=0.5))


def sites(d, width, xmax):
    import matplotlib
    fig = _figure(width, 4.6)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    colors = matplotlib.colormaps["tab10"]
    truth = getattr(d, "truth_sites", {})
    items = sorted(d.sites.items())
    for i, (s, r) in enumerate(items):
        c = colors(i % 10)
        label = "site %d (%s)" % (s, site_name(s))
        # sites treated alike draw the same curve: a marker and a dash style of
        # their own (markers staggered along the line) keep each one visible
        style = dict(color=c, linewidth=1.4, marker=MARKERS[i % len(MARKERS)], markersize=4,
                     markevery=_staggered(len(r["t"]), i, len(items)))
        ax1.plot(*_broken(d, r["t"], r["depth"]), label=label, **style)
        if s in d.targets:
            ax1.axhline(d.targets[s], color=c, linestyle="--", linewidth=0.9)
        if s in truth:
            ax1.plot(truth[s]["t"], truth[s]["depth"], color=c, linestyle=":", linewidth=1.0)
        ax2.plot(*_broken(d, r["t"], r["dose"]), label=label,
                 linestyle=DASHES[i % len(DASHES)], **style)
    _say_overlap(ax2, items)
    if d.plan and d.plan.get("site_cap"):
        ax2.axhline(d.plan["site_cap"], color="#d50000", linestyle="--", linewidth=0.9,
                    label="site cap (plan)")
    ax1.set_ylabel("lesion depth (µm)")
    ax1.set_title("reported depth (solid), plan target (dashed)%s" % (
        ", ground truth (dotted)" if truth else ""), fontsize=9, loc="left")
    ax2.set_ylabel("dose delivered (µDU)")
    for ax in (ax1, ax2):
        ax.grid(axis="y", color="#eeeeee")
        _gaps(ax, d)
    _time_axis(ax1, xmax, label=False)
    _time_axis(ax2, xmax)
    if d.sites:
        ax2.legend(fontsize=7, loc="upper left", ncol=2)
    else:
        ax1.text(0.5, 0.5, "no site readings recorded", transform=ax1.transAxes, ha="center")
    return _png(fig)


# ------------------------------------------------------------- sensitivity --

def sensitivity(d, width, xmax):
    fig = _figure(width, 2.9)
    ax = fig.add_subplot()
    t, s = d.st["t"], d.st["sens"] / 1000.0
    ax.plot(*_broken(d, t, s), color="#283593", linewidth=1.3, label="sensitivity index (hub)")
    tp = getattr(d, "truth_patient", None)
    if tp is not None and len(tp["t"]):
        ax.plot(tp["t"], tp["sens"] / 1000.0, color="#7986cb", linestyle=":", linewidth=1.0,
                label="ground truth")
    top = max([1.05] + [float(s.max()) + 0.05 if len(s) else 0])
    shade = {"throttle": "#fff3e0", "pause": "#ffebee"}
    for (v, label), nxt in zip(d.thresholds(), [x[0] for x in d.thresholds()[1:]] + [top]):
        ax.axhspan(v, nxt, color=shade.get(label, "#fafafa"), zorder=0)
        ax.axhline(v, color="#e65100" if label == "throttle" else "#c62828", linestyle="--",
                   linewidth=0.9)
        ax.text(0.005, v, " %s %.2f" % (label, v), transform=ax.get_yaxis_transform(),
                fontsize=7, va="bottom", color="#bf360c")
    ax.axhline(1.0, color="#000000", linewidth=0.8)
    ax.text(0.005, 1.0, " limit 1.00", transform=ax.get_yaxis_transform(), fontsize=7,
            va="bottom")
    for ev in getattr(d, "truth_events", []) or []:
        ax.axvline(ev[0], color="#c62828", linewidth=1.2)
    ax.set_ylim(0, top)
    ax.set_ylabel("of the patient's limit")
    _gaps(ax, d)
    _time_axis(ax, xmax)
    ax.legend(fontsize=7, loc="upper right")
    return _png(fig)


# -------------------------------------------------------------------- bots --

def bots(d, width, xmax):
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    fig = _figure(width, 4.8 if d.bot_matrix is not None else 2.6)
    axes = fig.subplots(2 if d.bot_matrix is not None else 1, 1, sharex=True, squeeze=False)
    ax = axes[0][0]
    names = [n.upper() for n in ("docked", "deployed", "active", "returning", "quarantined",
                                 "disabled", "lost")]
    ys = [d.st[k] for k in ("docked", "deployed", "active", "returning", "quarantined",
                            "disabled", "lost")]
    if len(d.st["t"]):
        ax.stackplot(d.st["t"], ys, colors=[BOT_COLOR[n] for n in names], labels=names,
                     step="post")
    ax.set_ylabel("bots")
    ax.legend(handles=[Patch(color=BOT_COLOR[n], label=n.lower()) for n in names], fontsize=7,
              ncol=7, loc="upper center", bbox_to_anchor=(0.5, 1.22), frameon=False)
    _gaps(ax, d)
    _time_axis(ax, xmax, label=d.bot_matrix is None)
    if d.bot_matrix is not None:
        hx = axes[1][0]
        cmap = ListedColormap([BOT_COLOR[n] for n in names])
        cmap.set_bad("white")
        t = d.bot_times
        edges = np.concatenate([t, [t[-1] + (t[-1] - t[-2] if len(t) > 1 else 1.0)]])
        hx.pcolormesh(edges, np.arange(d.bot_matrix.shape[0] + 1) - 0.5,
                      np.ma.masked_invalid(d.bot_matrix), cmap=cmap, vmin=-0.5, vmax=6.5,
                      shading="flat", rasterized=True)
        hx.set_ylabel("bot id")
        hx.invert_yaxis()
        hx.set_title("each bot's reported state", fontsize=9, loc="left")
        _time_axis(hx, xmax)
    return _png(fig)


# ------------------------------------------------------------------ faults --

def faults(d, width, xmax):
    fs = d.faults
    fig = _figure(width, 0.9 + 0.34 * len(fs))
    ax = fig.add_subplot()
    for i, f in enumerate(fs):
        end = f.get("until")
        if end:
            ax.broken_barh([(f["t"], end - f["t"])], (i - 0.35, 0.7), facecolors="#ffcdd2")
        c = f.get("contained_s")
        if c is not None:
            ax.broken_barh([(f["t"], max(c, xmax / 400))], (i - 0.2, 0.4), facecolors="#c62828")
        elif "contained_s" in f:
            ax.annotate("NOT CONTAINED", (f["t"], i), fontsize=7, color="#d50000",
                        xytext=(4, -3), textcoords="offset points")
        if f.get("detected_s") is not None:
            ax.plot([f["t"] + f["detected_s"]], [i], marker="D", color="#ff8f00", markersize=5)
    ax.set_yticks(range(len(fs)), ["%s %s" % (f["kind"], _bots(f["bots"])) for f in fs],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_title("fault active (light), until contained (dark), hub alarm (diamond)",
                 fontsize=9, loc="left")
    _time_axis(ax, xmax)
    return _png(fig)


def _bots(bots):
    if not bots:
        return ""
    return "bots " + ",".join(str(b) for b in bots[:6]) + ("…" if len(bots) > 6 else "")
