"""Fold the firmware's integer constants across modules (a build step).

MicroPython's compiler folds ``_NAME = const(N)`` inside one module, and drops
the name: it costs no RAM. A public ``NAME = const(N)`` stays a global (a
dictionary entry and an interned name on the board), and ``module.NAME`` in
another module is a global and an attribute lookup at run time, never folded.
The firmware keeps its constants public where other modules read them
(``supervisor.C_ESTOP``, ``P.P_LEASE_MS``); the build turns every such read
into the number and every such definition into a private one, so that what a
board loads holds none of those names. The source is left as written: the
simulator, the host and the tests import it under CPython, where the names are
ordinary globals.

What is folded: module-level ``NAME = const(expr)`` whose expression is an
integer built from literals and other such constants, in any firmware module
other than the generated ``hub/wire.py`` (whose constants
``gen.inline_consts`` inlines). Its reads are replaced as ``alias.NAME`` (an
alias bound by ``from hub import m``, ``from hub import m as A`` or ``A = m``
at module level), as a bare ``NAME`` in its own module, as a bare ``NAME``
brought in by ``from hub.m import NAME`` or ``from hub.m import *``. A name
that is assigned anywhere else, or deleted, is left alone. Line numbers are
kept: only spans inside lines are rewritten.
"""
import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
SKIP = ("hub.wire",)


def _module_name(rel):
    rel = rel.replace("\\", "/")
    if rel.endswith(".py"):
        rel = rel[:-3]
    return rel.replace("/", ".")


def _const_arg(node):
    """The argument of ``const(...)`` when ``node`` is that call, else None."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "const"
            and len(node.args) == 1 and not node.keywords):
        return node.args[0]
    return None


def _eval_int(expr, known):
    """The integer ``expr`` evaluates to from literals and ``known`` names, or None."""
    for n in ast.walk(expr):
        if isinstance(n, ast.Name) and n.id not in known:
            return None
        if not isinstance(n, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name,
                              ast.Load, ast.operator, ast.unaryop)):
            return None
    try:
        v = eval(compile(ast.Expression(expr), "<const>", "eval"), {"__builtins__": {}}, dict(known))
    except Exception:       # noqa: BLE001 - not a foldable constant
        return None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _stored_names(tree):
    """Names assigned or deleted anywhere other than a module-level const() definition."""
    out = set()
    defs = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and _const_arg(node.value) is not None:
            defs.update(id(t) for t in node.targets)
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)) and id(n) not in defs:
            out.add(n.id)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            out.update(n.names)
    return out


def _own_consts(tree, imported):
    """{NAME: value} of the module-level const() definitions ``tree`` makes."""
    known = dict(imported)
    own = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            continue
        arg = _const_arg(node.value)
        if arg is None:
            continue
        v = _eval_int(arg, known)
        if v is not None:
            known[node.targets[0].id] = v
            own[node.targets[0].id] = v
    return own


def _imports(tree):
    """(aliases {local name: module}, from-imports [(module, name, asname)], star modules)."""
    aliases, names, stars = {}, [], []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            for a in n.names:
                if a.name == "*":
                    stars.append(n.module)
                elif n.module in ("hub", "boards"):
                    aliases[a.asname or a.name] = n.module + "." + a.name
                else:
                    names.append((n.module, a.name, a.asname or a.name))
    for node in tree.body:          # A = module, at module level
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Name)
                and node.value.id in aliases):
            aliases[node.targets[0].id] = aliases[node.value.id]
    return aliases, names, stars


@lru_cache(maxsize=4)
def table(root=str(FIRMWARE)):
    """{module: {NAME: value}} for every firmware module: its foldable public constants
    (and those it takes in with ``from m import *``)."""
    root = Path(root)
    trees = {}
    for p in sorted(root.rglob("*.py")):
        mod = _module_name(p.relative_to(root).as_posix())
        if mod in SKIP:
            continue
        try:
            trees[mod] = ast.parse(p.read_text())
        except SyntaxError:
            continue
    out = {}

    def consts(mod, seen=()):
        if mod in out:
            return out[mod]
        tree = trees.get(mod)
        if tree is None or mod in seen:
            return {}
        _, names, stars = _imports(tree)
        imported = {}
        for m in stars:
            imported.update(consts(m, seen + (mod,)))
        for m, name, asname in names:
            v = consts(m, seen + (mod,)).get(name)
            if v is not None:
                imported[asname] = v
        stored = _stored_names(tree)
        own = {k: v for k, v in _own_consts(tree, imported).items()
               if not k.startswith("_") and k not in stored}
        star = {k: v for k, v in imported.items() if k not in stored}
        out[mod] = dict(star, **own)
        return out[mod]

    for mod in trees:
        consts(mod)
    return out


def fold(rel, text, root=None):
    """``text`` of the firmware file at ``rel`` (path in the firmware tree) with the
    constants of every firmware module folded, and its own made private."""
    tab = table(str(root or FIRMWARE))
    mod = _module_name(rel)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    aliases, names, stars = _imports(tree)
    stored = _stored_names(tree)
    bare = {}                                   # bare names that are a folded constant
    for m in stars:
        bare.update(tab.get(m, {}))
    for m, name, asname in names:
        v = tab.get(m, {}).get(name)
        if v is not None:
            bare[asname] = v
    own = {k: v for k, v in tab.get(mod, {}).items()}
    bare.update(own)
    bare = {k: v for k, v in bare.items() if k not in stored}
    edits = []                                  # (line, col, end col, new text)
    defs = set()
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in own
                and _const_arg(node.value) is not None):
            t = node.targets[0]
            defs.add(id(t))
            edits.append((t.lineno, t.col_offset, t.end_col_offset, "_" + t.id))
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) \
                and isinstance(n.value, ast.Name) and n.value.id in aliases:
            v = tab.get(aliases[n.value.id], {}).get(n.attr)
            if v is not None and n.lineno == n.end_lineno:
                edits.append((n.lineno, n.col_offset, n.end_col_offset, "%d" % v))
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in bare \
                and id(n) not in defs:
            edits.append((n.lineno, n.col_offset, n.end_col_offset, "%d" % bare[n.id]))
    for n in ast.walk(tree):        # a folded name in an import list: import nothing for it
        if isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            kept = [a for a in n.names
                    if a.name == "*" or tab.get(n.module, {}).get(a.name) is None]
            if len(kept) != len(n.names) and n.lineno == n.end_lineno:
                line = text.splitlines()[n.lineno - 1]
                indent = line[:n.col_offset]
                new = ("from %s import %s" % (n.module, ", ".join(
                    a.name + (" as " + a.asname if a.asname else "") for a in kept))
                    if kept else "pass")
                edits.append((n.lineno, n.col_offset, n.end_col_offset, new))
                del indent
    if not edits:
        return text
    lines = text.splitlines(keepends=True)
    # ast columns are UTF-8 byte offsets: edit each line as bytes, right to left
    by_line = {}
    for e in edits:
        by_line.setdefault(e[0], []).append(e)
    for ln, es in by_line.items():
        b = lines[ln - 1].encode()
        for _, c0, c1, new in sorted(es, key=lambda e: -e[1]):
            b = b[:c0] + new.encode() + b[c1:]
        lines[ln - 1] = b.decode()
    return "".join(lines)
