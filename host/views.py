"""Typed results and JSON-ready views of hub frames, enum values by name.

Every constant comes from the schema: nothing here retypes a bit position.
"""
from dataclasses import dataclass, field

from nanohub.protocol import schema


def enum_name(enum, value):
    return schema.enum_name(enum, value)


def enum_value(enum, name):
    return schema.enum_value(enum, name)


def check_names(bits):
    """Names of the CHECK_* bits set in ``bits``."""
    return [n for n, v, _ in schema.ENUMS["CHECK"] if bits & v]


def check_meanings(bits):
    return ["%s (%s)" % (n, m) for n, v, m in schema.ENUMS["CHECK"] if bits & v]


def bitmap_ids(bitmap):
    """Bot ids whose bit is set (bit i of byte i // 8, least significant first)."""
    return [i for i in range(len(bitmap) * 8) if bitmap[i // 8] >> (i % 8) & 1]


def text(raw):
    return raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()


# ------------------------------------------------------------- results --

@dataclass
class Ack:
    command: str
    req: int
    status: str
    reason: str
    detail: int

    @property
    def rejected(self):
        return self.status == "REJECTED"

    def to_dict(self):
        return {"command": self.command, "req": self.req, "status": self.status,
                "reason": self.reason, "detail": self.detail}


@dataclass
class EstopResult:
    done: bool
    total: int
    confirmed: int
    unconfirmed: list = field(default_factory=list)   # bot ids not confirmed disabled
    unconfirmed_count: int = 0
    ack: Ack = None

    @property
    def ok(self):
        """True only when the hub finished and confirmed every bot disabled."""
        return (self.done and not self.unconfirmed and not self.unconfirmed_count
                and self.confirmed >= self.total)

    def to_dict(self):
        return {"ok": self.ok, "done": self.done, "total": self.total,
                "confirmed": self.confirmed, "unconfirmed": self.unconfirmed,
                "unconfirmed_count": max(self.unconfirmed_count, len(self.unconfirmed))}


@dataclass
class LogChunk:
    start: int
    first: int
    next: int
    records: list          # raw 24-byte records


def status_dict(f):
    s = f.fields
    return {
        "state": enum_name("HUB", s["state"]),
        "reason": enum_name("ALARM", s["reason"]) if s["reason"] else "NONE",
        "t_ms": s["t"],
        "bots": {"total": s["bots"], "docked": s["docked"], "deployed": s["deployed"],
                 "active": s["active"], "returning": s["returning"],
                 "quarantined": s["quarantined"], "disabled": s["disabled"], "lost": s["lost"]},
        "alarms": {"active": s["alarms"], "unacked_high": s["unacked"]},
        "dose": {"used": s["dose"], "cap": s["dose_cap"],
                 "percent": round(100.0 * s["dose"] / s["dose_cap"], 1) if s["dose_cap"] else 0.0},
        "sens_permille": s["sens"],
        "scale_percent": s["scale"],
        "bus_link_percent": s["link"],
        "rx_bad": s["rx_bad"],
        "failing_checks": check_names(s["checks"]),
        "log": {"next": s["log_next"], "head": bytes(s["log_head"]).hex()},
    }


def bot_dicts(f):
    return [{"id": f["first"] + i, "state": enum_name("BOT", r["state"]),
             "site": None if r["site"] == 0xFF else r["site"], "activity": r["activity"],
             "battery": r["battery"], "health": r["health"]} for i, r in enumerate(f.records)]


def site_dict(r):
    return {"site": r["site"], "ph": r["ph"] / 100, "bacteria_log10": r["bacteria"] / 100,
            "temp_c": r["temp"] / 100, "depth_um": r["depth"], "dose": r["dose"]}


def alarm_dict(f):
    a = f.fields
    return {"code": enum_name("ALARM", a["code"]), "prio": enum_name("PRIO", a["prio"]),
            "state": enum_name("ALST", a["state"]), "bot": a["bot"], "site": a["site"],
            "value": a["value"], "t_ms": a["t"]}


def estop_dict(f):
    e = f.fields
    return {"done": bool(e["done"]), "total": e["total"], "confirmed": e["confirmed"],
            "unconfirmed": e["unconfirmed"], "pending": bitmap_ids(e["pending"])}


def param_dict(f):
    p = f.fields
    return {"index": p["index"], "name": text(p["name"]), "value": p["value"], "min": p["min"],
            "max": p["max"], "default": p["default"], "unit": text(p["unit"])}


def frame_dict(f):
    """A JSON-ready view of a frame, enum values by name."""
    name = f.name
    if name == "HUB_STATUS":
        body = status_dict(f)
    elif name == "BOT_STATES":
        body = {"bots": bot_dicts(f)}
    elif name == "SITE_READINGS":
        body = {"sites": [site_dict(r) for r in f.records]}
    elif name == "ALARM":
        body = alarm_dict(f)
    elif name == "ESTOP_REPORT":
        body = estop_dict(f)
    elif name == "PARAM_VALUE":
        body = param_dict(f)
    else:
        body = {k: v.hex() if isinstance(v, bytes) else v for k, v in f.fields.items()}
    return dict({"msg": name}, **body)


_REFUSALS = {
    "AUTH_MISSING": "the command must be signed: select the hub key with --key FILE",
    "AUTH_BAD": "the key{key} is not this hub's key: select the right one with --key FILE "
                "or provision it (nanohub flash --key FILE)",
    "AUTH_REPLAY": "the command counter is stale even after resynchronising: retry, and "
                   "check that no other host is signing with this key",
    "AUTH_JUMP": "the host's counter is far above the hub's (a lost hub state, or a key "
                 "used elsewhere): see docs/boards.md, recovering a hub's counter",
    "DUPLICATE": "the hub has answered this request id before and does not run it again: "
                 "check nanohub status before sending it anew",
    "NO_KEY": "the hub has no key provisioned: provision one (nanohub flash --key FILE)",
    "STATE": "not allowed while the hub is {state} (see nanohub status)",
    "BOUNDS": "value out of bounds: the limit is {detail}",
    "BAD_ARG": "malformed or unknown argument (detail {detail})",
    "ESTOP_LATCHED": "the emergency stop is latched: clear it with nanohub reset-estop once "
                     "the cause is resolved",
    "ALARM": "an unacknowledged HIGH alarm blocks this: review with nanohub alarms list, "
             "then nanohub alarms ack",
    "NO_BOTS": "no docked bot available (every docked bot is deployed, lost or quarantined)",
    "BUSY": "another operation is running: wait and retry",
    "UNCONFIRMED": "{detail} bots did not confirm",
    "NO_PLAN": "no treatment plan: start one with nanohub treat start PLAN.toml",
    "STORAGE": "the hub's persistent storage failed: do not treat; service the hub",
}


def refusal_message(ack, hub_id=None, key_path=None):
    """One line saying what the hub refused, why, and what to do."""
    hub = "hub 0x%08x" % hub_id if hub_id is not None else "the hub"
    if ack.reason == "NO_BOTS" and ack.command == "TREAT_START" and ack.detail < 160:
        from .plan import site_name
        why = ("no usable bot at plan site %s (site %d): deploy bots there first "
               "(nanohub swarm deploy %s N)" % (site_name(ack.detail), ack.detail,
                                                  site_name(ack.detail)))
    elif ack.reason == "CHECKS":
        failing = check_meanings(ack.detail) or ["(no check named: detail %d)" % ack.detail]
        why = "pre-treatment checks failed: " + "; ".join(failing)
    else:
        why = _REFUSALS.get(ack.reason, "reason {reason}, detail {detail}").format(
            key=" " + str(key_path) if key_path else "", state=enum_name("HUB", ack.detail),
            detail=ack.detail,
            reason=ack.reason)
    return "%s refused %s: %s" % (hub, ack.command, why)


def info_dict(info):
    """HELLO_REPLY fields as an operator reads them."""
    return {"hub_id": "0x%08x" % info["hub_id"],
            "firmware": "%d.%d.%d" % (info["fw_major"], info["fw_minor"], info["fw_patch"]),
            "board": info["board"], "schema": "0x%08x" % info["schema"], "caps": info["caps"],
            "bots": info["bots"], "state": enum_name("HUB", info["state"]),
            "boots": info["boots"], "reset_cause": enum_name("RESET", info["reset_cause"]),
            "keyed": bool(info["keyed"]), "counter": info["counter"],
            "estop_latched": bool(info["estop"])}


def estop_text(result):
    """One line for an :class:`EstopResult`: confirmed, or which bots are not."""
    if result.ok:
        return "EMERGENCY STOP: all %d bots confirmed disabled" % result.total
    ids = ", ".join(str(i) for i in result.unconfirmed) or "unknown"
    if not result.done:
        return ("EMERGENCY STOP NOT CONFIRMED: the hub has not finished (%d of %d bots "
                "confirmed); unconfirmed bots: %s" % (result.confirmed, result.total, ids))
    return ("EMERGENCY STOP NOT CONFIRMED: %d of %d bots confirmed disabled; unconfirmed "
            "bots: %s" % (result.confirmed, result.total, ids))
