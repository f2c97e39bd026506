"""The supervisor is the only place where the hub's state changes.

An AST walk over every firmware module finds each assignment whose target is
an attribute named ``state`` (plain, augmented, annotated, in a tuple, or a
``setattr`` with the name): outside ``firmware/hub/supervisor.py`` it is
allowed only as ``self.state = ...`` inside ``__init__`` of a class other
than ``Hub``: the swarm's and the alarms' own per-bot / per-code tables.
Item assignments (``sw.state[i] = ...``) change those tables, not the hub,
and are not attribute assignments. ``hub.reason``, which goes with the
state, is held to the same rule.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
SUPERVISOR = FIRMWARE / "hub" / "supervisor.py"
GUARDED = ("state", "reason")
# classes with a ``state`` (or ``reason``) table of their own, set once in __init__
OWN_TABLES = {("hub/swarm.py", "Swarm", "state"), ("hub/alarms.py", "Alarms", "state"),
              ("hub/frame.py", "Rx", "state")}


def _targets(node):
    if isinstance(node, (ast.Assign,)):
        out = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        out = [node.target]
    elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
        out = [node.target]
    elif isinstance(node, ast.withitem) and node.optional_vars is not None:
        out = [node.optional_vars]
    elif isinstance(node, ast.NamedExpr):
        out = [node.target]
    else:
        return []
    flat = []
    while out:
        t = out.pop()
        if isinstance(t, (ast.Tuple, ast.List)):
            out.extend(t.elts)
        elif isinstance(t, ast.Starred):
            out.append(t.value)
        else:
            flat.append(t)
    return flat


def state_writes(source, filename="<firmware>"):
    """(line, class, function, text, own) of every write to ``X.state`` /
    ``X.reason``; ``own`` names the attribute when the write is ``self.X = ...``
    in the ``__init__`` of a class other than Hub (a table of its own), else None."""
    tree = ast.parse(source, filename)
    found = []

    def visit(node, cls, fn):
        if isinstance(node, ast.ClassDef):
            cls, fn = node.name, None
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            fn = getattr(node, "name", "<lambda>")
        for t in _targets(node):
            if isinstance(t, ast.Attribute) and t.attr in GUARDED:
                own = (isinstance(t.value, ast.Name) and t.value.id == "self"
                       and fn == "__init__" and cls not in (None, "Hub")
                       and isinstance(node, ast.Assign))
                found.append((node.lineno, cls, fn, ast.unparse(node).splitlines()[0],
                              t.attr if own else None))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("setattr", "delattr") and len(node.args) >= 2:
            name = node.args[1]
            if not (isinstance(name, ast.Constant) and name.value not in GUARDED):
                found.append((node.lineno, cls, fn, ast.unparse(node), False))
        if isinstance(node, ast.Delete):
            for t in node.targets:
                if isinstance(t, ast.Attribute) and t.attr in GUARDED:
                    found.append((node.lineno, cls, fn, ast.unparse(node), False))
        for child in ast.iter_child_nodes(node):
            visit(child, cls, fn)

    visit(tree, None, None)
    return found


def _modules():
    return sorted(p for p in FIRMWARE.rglob("*.py") if p != SUPERVISOR)


def test_no_firmware_module_but_the_supervisor_assigns_the_hub_state():
    bad = []
    own = set()
    for path in _modules():
        rel = path.relative_to(FIRMWARE).as_posix()
        for line, cls, fn, text, is_own in state_writes(path.read_text(encoding="utf-8"), rel):
            if is_own and (rel, cls, is_own) in OWN_TABLES:
                own.add((rel, cls, is_own))
            else:
                bad.append("%s:%d (%s.%s): %s" % (rel, line, cls, fn, text))
    assert not bad, "the hub's state changes outside the supervisor:\n" + "\n".join(bad)
    assert own == OWN_TABLES, "each class with a table of its own still sets it up"


def test_the_supervisor_does_assign_it():
    writes = state_writes(SUPERVISOR.read_text(encoding="utf-8"))
    fns = {fn for _, _, fn, text, _ in writes if text.startswith("hub.state")}
    assert fns == {"power_on", "_enter"}


def test_the_walk_finds_every_form_of_assignment():
    src = '''
class Hub:
    def __init__(self):
        self.state = 0
    def boot(self):
        self.reason = 3
def f(hub, h, rig):
    hub.state = 1
    h.state += 1
    a, (b, hub.state) = 1, (2, 3)
    hub.state: int = 4
    setattr(hub, "state", 5)
    setattr(hub, name, 6)
    for hub.state in range(3):
        pass
    del hub.state
class Swarm:
    def __init__(self, n):
        self.state = bytearray(n)
    def reset(self):
        self.state = bytearray(3)
def g(sw, i):
    sw.state[i] = 2
    x = sw.state
'''
    found = state_writes(src)
    flagged = sorted((line, text) for line, _, _, text, own in found if not own)
    assert [line for line, _ in flagged] == [4, 6, 8, 9, 10, 11, 12, 13, 14, 16, 21]
    assert [(line, own) for line, _, _, _, own in found if own] == [(19, "state")]


# ------------------------------------------------------ the design note --

NOTES = ROOT / "docs" / "design-notes.md"


def table_rows():
    """The supervisor's table as the design note prints it, one line a row."""
    import sys
    sys.path.insert(0, str(FIRMWARE))
    from hub import supervisor as S, wire
    from nanohub.protocol import schema
    states = {v: k[4:] for k, v in vars(wire).items() if k.startswith("HUB_") and isinstance(v, int)
              and k[4:] in ("SAFE", "ARMED", "TREATING", "PAUSED", "ESTOP")}
    alarms = {v: "ALARM_" + k for k, v, _ in schema.ENUMS["ALARM"]}

    def names(prefix, mask):
        bits = sorted((v, k) for k, v in vars(S).items() if k.startswith(prefix) and v & mask)
        return ", ".join(k[len(prefix):] if prefix == "A_" else "`%s`" % k for _, k in bits) or "-"

    trig = {v: k for k, v in vars(S).items() if k.startswith("C_")}
    out = []
    for t, src, to, reason, blockers, act in S.TABLE:
        frm = "any but ESTOP" if src == S.S_ANY_BUT_ESTOP else \
            ", ".join(states[s] for s in sorted(states) if src & (1 << s))
        out.append("  | `%s` | %s | %s | %s | %s | %s |" % (
            trig[t], frm, states[to], "`%s`" % alarms[reason] if reason else "-",
            names("B_", blockers), names("A_", act)))
    return out


def test_the_design_note_prints_the_table_the_firmware_has():
    lines = NOTES.read_text(encoding="utf-8").splitlines()
    start = lines.index("  | Trigger | From | To | Reason | Blockers | Entry actions |") + 2
    doc = []
    for line in lines[start:]:
        if not line.startswith("  |"):
            break
        doc.append(line)
    assert doc == table_rows()
