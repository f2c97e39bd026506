"""Detail sections of docs/benchmarks.md, from what each bench returned."""
import re

from .timing import percentile


def sections(data):
    out = []
    for key, fn in (("codec", _codec), ("estop", _estop), ("firmware", _firmware),
                    ("instructions", _instructions), ("heap", _heap), ("vm32", _vm32),
                    ("study", _study)):
        if data.get(key):
            try:
                out.append(fn(data[key]))
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                continue
    out.append(("Method notes", _METHOD))
    return out


def _codec(d):
    lines = ["Best of the interleaved blocks, microseconds per frame. `lean` is the prototype "
             "in `bench/codec.py` (precompiled struct per message, positional values, tuples "
             "out): what the codec's generic per-frame work costs, not a shipped path. "
             "pymavlink's CRC path: %s." % d.get("crc_path", "?"), "",
             "| pair | codec encode | pymavlink encode | lean encode | codec decode | "
             "pymavlink decode | lean decode |", "|---|---|---|---|---|---|---|"]
    for pair in ("telemetry", "command", "signed command"):
        b = d.get(pair)
        if not b:
            continue

        def us(k):
            return "%.2f" % (b[k] * 1e6) if k in b else "-"
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            pair, us("ours-enc"), us("mav-enc"), us("lean-enc"), us("ours-dec"), us("mav-dec"),
            us("lean-dec")))
    return "Codec timings (rows 1a-1f)", "\n".join(lines)


def _estop(d):
    ps = (10, 50, 90, 99, 100)
    head = ["| run | part | " + " | ".join("p%d" % p if p < 100 else "max" for p in ps) + " |",
            "|---|---|" + "---|" * len(ps)]

    def line(run, part, vals):
        if vals:
            head.append("| %s | %s | %s |" % (run, part, " | ".join(
                "%.1f" % percentile(vals, p) for p in ps)))
    for run, data in (("row 5: store on disk", d), ("row 5d: store on tmpfs", d.get("diag"))):
        if not data:
            continue
        line(run, "whole: `Hub.estop()` to DISABLE at the simulator", data["lat"])
        line(run, "host + line: to the ESTOP frame off the 115200 Bd line",
             [a for a, _ in data.get("split", [])])
        line(run, "hub + bus: from there to DISABLE at the simulator",
             [b for _, b in data.get("split", [])])
    lines = ["Milliseconds per trial:", ""] + head + [
        "", "Host link during row 5's trials: %.0f B/s from the hub (%.0f %% of 11,520 B/s), "
        "%.1f %% payload; BOT_STATES requests every %.0f ms topped up the hub's own "
        "telemetry (%.0f B/s)." % (d["sat"]["down_Bps"], 100 * d["sat"]["down_Bps"] / 11520,
                                   d["sat"]["share"], 1000 * d["interval"], d["base"])]
    return "Emergency stop (rows 5, 5d)", "\n".join(lines)


def _firmware(d):
    lines = ["`hub.tick` on the MicroPython VM, microseconds, steady treatment, telemetry at "
             "its highest rates (best mean of the runs):", "",
             "| bots | mean | median | p99 | max | bytes allocated | host frames sent |",
             "|---|---|---|---|---|---|---|"]
    for n in sorted(d):
        r = d[n]
        lines.append("| %d | %.0f | %d | %d | %d | %d | %d |" % (
            n, r["mean_us"], r["median_us"], r["p99_us"], r["max_us"], r["alloc_bytes"],
            r["host_frames"]))
    if 64 in d and d[64].get("stages_us"):
        st = d[64]["stages_us"]
        tot = float(sum(st.values())) or 1.0
        lines += ["", "Where a 64-bot tick's time goes (each stage wrapped and timed, so the "
                  "sum is a little above the unwrapped tick):", "",
                  "| stage | share |", "|---|---|"]
        for k, v in sorted(st.items(), key=lambda kv: -kv[1]):
            lines.append("| %s | %.0f %% |" % (k, 100 * v / tot))
    return "Firmware tick (rows 6, 7)", "\n".join(lines)


def _instructions(d):
    from .instructions import CHIPS, ms
    lines = ["`hub.tick` counted in x86 instructions of the unix VM under callgrind, one count "
             "per tick (row 11's method), millions; milliseconds estimated at CPI 1.5 "
             "(Cortex-M0 ~= 1.0x the count, M3/M4 0.75x). `longest stretch` is the longest "
             "part of a tick between two reads of the host link: what an ESTOP can wait.", "",
             "| bots | ticks | mean | median | p99 | max | longest stretch | host reads per tick "
             "| %s |" % " | ".join("%s mean / p99 ms" % name for name, _, _ in CHIPS),
             "|---|---|---|---|---|---|---|---|%s" % ("---|" * len(CHIPS))]
    for n in sorted(d):
        r = d[n]
        lines.append("| %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %s |" % (
            n, r["ticks"], r["mean"] / 1e6, r.get("median", 0) / 1e6, r["p99"] / 1e6,
            r["max"] / 1e6, r["wait"] / 1e6,
            r["polls_per_tick"], " | ".join("%.1f / %.1f" % (ms(r["mean"], f, hz),
                                                            ms(r["p99"], f, hz))
                                            for _, f, hz in CHIPS)))
    return "Tick in instructions (rows 11, 12)", "\n".join(lines)


def _vm32(d):
    lines = ["Heap after boot on the 32-bit VM, 64 bots (`bench/mp/heapinfo.py`), bytes:", "",
             "| what | from source | from .mpy |", "|---|---|---|"]
    src, mpy = d["heap"]["source"], d["heap"]["mpy"]
    keys = [k for k in src if k not in ("modules", "vm", "free")]
    for k in sorted(keys, key=lambda k: -src[k] if not k.startswith("total") else 0):
        lines.append("| %s | %d | %s |" % (k, src[k], mpy.get(k, "-")))
    for k, v in sorted(src["modules"].items(), key=lambda kv: -kv[1])[:10]:
        lines.append("| module %s (with what it imports first) | %d | %s |" % (
            k, v, mpy["modules"].get(k, "-")))
    rep = d.get("session") or {}
    if rep:
        lines += ["", "Session replay (row 15): %d calls into the hub, heap after boot %d B, "
                  "largest heap on entry to a call (live) %d B, peak %d B at call %d." % (
                      rep["calls"], rep["after_boot"], rep.get("live_max", 0), rep["peak"],
                      rep["peak_call"])]
    return "The 32-bit VM (rows 13-15)", "\n".join(lines)


def _heap(d):
    lines = ["Probes (KB of `-X heapsize`): " + ", ".join(
        "%d %s" % (kb, "ok" if ok else "fails (%s)" % _short(why))
        for kb, (ok, why) in sorted(d["tried"].items()))]
    info = d.get("info") or {}
    if info.get("modules"):
        lines += ["", "Heap after boot, 64 bots, firmware from .mpy (`bench/mp/heapinfo.py`), "
                  "bytes:", "", "| what | bytes |", "|---|---|"]
        for k in ("start", "code: firmware modules", "whole Hub (64 bots)", "boot",
                  "total after boot"):
            if k in info:
                lines.append("| %s | %d |" % (k, info[k]))
        for k, v in sorted(info["modules"].items(), key=lambda kv: -kv[1])[:8]:
            lines.append("| module %s (with what it imports first) | %d |" % (k, v))
    return "Heap (row 8)", "\n".join(lines)


def _short(why):
    """The gist of a failed probe: the MemoryError if there was one."""
    m = re.search(r"MemoryError[^.\]\n]*", why)
    if m:
        text = m.group(0).strip()
        return text + (", at start-up" if "did not start" in why else ", during the session")
    return why[:160]


def _study(d):
    lines = ["| workers | sessions ok | wall s | sessions/min | mean session s | CPU of 2 cores |",
             "|---|---|---|---|---|---|"]
    for w in d["waves"]:
        lines.append("| %d | %d of %d | %.0f | %.1f | %.1f | %.0f %% |" % (
            w["workers"], w["ok"], w["runs"], w["wall_s"], w["per_min"], w["session_s"],
            100 * w["cpu_share"]))
    return "Study (row 10)", "\n".join(lines)


_METHOD = """\
- **Pacing proxy** (`host/emulate/pace.py`, `python -m nanohub.host.emulate.pace --to HOST:PORT --baud 115200`):
  a TCP relay that releases each direction at baud/10 bytes per second (8N1), in chunks of at
  most 16 bytes, never before a real line would have finished sending them; it reads from a
  socket only as fast as it releases. The kernel's socket buffers between the hub and the proxy
  are not a UART's: the hub's host output (`hub/hostout.py`) sees back-pressure only once they fill, so a
  hub that offers more than the line carries queues its telemetry there instead of skipping it.
  Row 5 therefore keeps the offered load just under the line rate.
- **Bot-bus tap** (`bench/emu.py`, `BusWatch`): the emulated hub's bot bus runs through an
  unpaced relay in the bench process; it decodes the hub's BOT_CMDS with the host codec and the
  gateway's BOT_REPORTS and timestamps them with the same clock as the host calls. The swarm
  gateway itself (`python -m nanohub.sim.gateway`) is unchanged.
- **Side by side**: the codec and pymavlink run in alternating blocks in one process, as do the
  bulk decoders; each side keeps its best block.
- **MicroPython figures** are from the unix port on this machine; a 125 MHz microcontroller runs
  the same bytecode 50-100x slower (shared/PLATFORM.md), which is why the tick's goal on the VM
  is 1 % of its period.
"""
