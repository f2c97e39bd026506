"""Row 9: pulling and verifying the audit log over a 115200-baud link.

The hub's store is prepared by the firmware's own AuditLog (on the VM) with
10,000 records, then the emulated hub boots on it and the host pulls the log
with ``Hub.log_pull`` (LOG_READ / LOG_CHUNK, stop and wait, 19 records a
chunk) through ``nanohub.host.emulate.pace`` at 115200 Bd, and verifies the hash
chain and the indexes with ``nanohub.protocol.auditlog``.
"""
import os
import tempfile
import time
from pathlib import Path

from nanohub.host.client import Hub
from nanohub.host.emulate.pace import Pacer
from nanohub.protocol import auditlog

from .emu import BenchHub, isolated_home
from .firmware import run_mp
from .link import LinkMeter
from .report import ROOT, Row
from nanohub.host.simport import HEAP

BAUD = 115200
LINE = BAUD / 10.0
RECORDS = 10_000
GOAL = 80.0


def _tmpdir():
    shm = Path("/dev/shm")
    return tempfile.TemporaryDirectory(prefix="nanohub-bench-log-",
                                       dir=str(shm) if shm.is_dir() and os.access(shm, os.W_OK)
                                       else None)


def pull(hub, want):
    """Pull the stored log again and again until ``want`` records crossed the
    link; verify each pass. Returns (records, seconds, passes, first, next)."""
    got = passes = 0
    first = nxt = None
    t0 = time.monotonic()
    while got < want:
        raw = hub.log_pull()
        recs = auditlog.parse_records(raw)
        res = auditlog.verify(recs)
        if not res.ok or not recs:
            raise RuntimeError("pulled log does not verify: %s" % res)
        first, nxt = recs[0]["index"], recs[-1]["index"] + 1
        got += len(recs)
        passes += 1
    return got, time.monotonic() - t0, passes, first, nxt


def run(quick=False):
    fill_n = 300 if quick else RECORDS
    want = fill_n
    rows = []
    with isolated_home(), _tmpdir() as tmp:
        store = Path(tmp) / "hub"
        fill = run_mp("fill_log.py", [store, fill_n], heap=HEAP,
                      path=[ROOT / "firmware", ROOT / "bench" / "mp"])
        meter = LinkMeter()
        with BenchHub(bots=64, scenario="nominal", seed=1, store=store, tap=False) as emu:
            with Pacer("127.0.0.1:%d" % emu.host_port, baud=BAUD, tap=meter) as line:
                with Hub.open(line.url, key=emu.key_path.read_bytes(), timeout=3.0,
                              retries=3) as hub:
                    # quiet link: HUB_STATUS at its lowest rate, no bot or site telemetry
                    hub.set_rates(status_hz=1, bots_hz=0, sites_hz=0)
                    time.sleep(0.5)
                    t_a = time.monotonic()
                    n, secs, passes, first, nxt = pull(hub, want)
                    down = meter.rate("down", t_a, time.monotonic())
                    # as the CLI meets it after a session: the hub's default telemetry on
                    defaults = {p["name"]: p["value"] for p in hub.params()}
                    hub.set_rates(status_hz=defaults.get("tlm_status_hz", 5),
                                  bots_hz=defaults.get("tlm_bots_hz", 5),
                                  sites_hz=defaults.get("tlm_sites_hz", 2))
                    time.sleep(0.5)
                    n2, secs2, _, _, _ = pull(hub, 1 if quick else n // passes)
    share = 100.0 * n * 24 / (secs * LINE)
    share2 = 100.0 * n2 * 24 / (secs2 * LINE)
    retained = nxt - first
    note = ""
    if retained < want:
        note = ("; the hub keeps only its newest %d records (8 segments of 256), so the %d "
                "records crossed the link in %d pulls of the whole stored log" %
                (retained, n, passes))
    ok = share >= GOAL
    rows.append(Row("9", "audit-log pull + verify at 115200 Bd",
                    "%.1f %% of line rate: %d records in %.1f s = %.0f B/s of records "
                    "(link %.0f %% busy)" % (share, n, secs, n * 24 / secs, 100.0 * down / LINE),
                    ">= %g %% of line rate" % GOAL, ok,
                    how="a store filled by the firmware's AuditLog on the VM (%d records "
                        "appended, indexes %d..%d retained, on tmpfs so the fill is fast), the "
                        "emulated hub booted on it (64 bots), `Hub.log_pull()` through the "
                        "115200 Bd pacing proxy with HUB_STATUS at 1 Hz and no bot/site "
                        "telemetry, each pass verified with `auditlog.verify`. Share = record "
                        "bytes (24 B each) per second / 11,520 B/s%s." % (
                            fill.get("appended", 0), first, nxt - 1, note),
                    why="" if ok else
                    "LOG_READ/LOG_CHUNK is stop and wait: each 19-record chunk (481 B, 42 ms "
                    "on the line) waits for the request's trip up and the hub's next poll; "
                    "asking for the next chunk before the current one arrives (two requests "
                    "in flight) would fill the gaps.",
                    data={"fill": fill}))
    rows.append(Row("9b", "audit-log pull with the hub's default telemetry on",
                    "%.1f %% of line rate (%d records in %.1f s)" % (share2, n2, secs2),
                    "report", None,
                    how="same, with telemetry back at the hub's defaults (HUB_STATUS %s Hz, "
                        "BOT_STATES of 64 bots %s Hz, sites %s Hz): telemetry shares the line."
                        % (defaults.get("tlm_status_hz"), defaults.get("tlm_bots_hz"),
                           defaults.get("tlm_sites_hz"))))
    return rows, {"share": share, "secs": secs, "n": n, "passes": passes, "retained": retained,
                  "share_default": share2}
