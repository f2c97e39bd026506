"""The host package's layout: no import cycles, and every module imports alone.

The graph is read from the source (every ``import`` and ``from ... import``,
also those inside functions), so an import made only when a verb runs counts
as much as one at the top of a module.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

HOST = Path(__file__).resolve().parent.parent / "host"
PACKAGE = "nanohub.host"


def modules():
    """{dotted name: source path} of every module under host/."""
    found = {}
    for path in sorted(HOST.rglob("*.py")):
        parts = list(path.relative_to(HOST).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([PACKAGE] + parts)] = path
    return found


def _imports(name, path, known):
    """The nanohub.host modules that module ``name`` imports."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            # from X import n: the submodule X.n when there is one, else X itself
            targets = [source + "." + alias.name if source + "." + alias.name in known
                       else source for alias in node.names]
        else:
            continue
        for target in targets:
            # import a.b.c names a.b.c; keep the longest prefix that is one of ours
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph():
    known = modules()
    return {name: _imports(name, path, known) for name, path in known.items()}


def cycles(graph):
    """Every strongly connected component of more than one module (Tarjan),
    each as one cycle through it: [a, b, ..., a]."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(_cycle_in(graph, set(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _cycle_in(graph, comp):
    """A shortest path from the component's first module back to itself."""
    start = min(comp)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return sorted(comp)


def test_the_graph_sees_function_local_and_relative_imports():
    graph = import_graph()
    # at the top of the module, relative
    assert "nanohub.host.errors" in graph["nanohub.host.client"]
    # inside a function, from a sub-package up to the library
    assert "nanohub.host.emulate.hub" in graph["nanohub.host.cli"]
    # from . import name, where name is a module
    assert "nanohub.host.report.db" in graph["nanohub.host.study.record"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_host_modules():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_rooms_depend_one_way():
    """The CLI may use everything; the rooms (report, emulate, study, signals)
    and the link use the library and never the CLI; the library uses none of
    the rooms but the link (docs/design-notes.md, "Host layout")."""
    rooms = ("report", "emulate", "study", "fleet", "signals", "link", "cli")
    allowed = {
        "cli": set(rooms),
        "study": {"report", "emulate", "link"},
        "fleet": {"link", "emulate"},
        "signals": {"report"},
        "report": set(),
        "emulate": {"link"},
        "link": set(),
        "": {"link"},                   # the library
    }
    wrong = []
    for name, targets in import_graph().items():
        room = _room(name)
        for target in targets:
            other = _room(target)
            if other and other != room and other not in allowed[room]:
                wrong.append("%s -> %s" % (name, target))
    assert not wrong, "imports against the layout:\n" + "\n".join(sorted(wrong))


def _room(name):
    parts = name.split(".")
    return parts[2] if len(parts) > 3 or (len(parts) == 3 and (HOST / parts[2]).is_dir()) else ""


def test_every_module_imports_alone():
    """Each module in a fresh interpreter of its own would be slow; one child
    imports them one by one, unloading every nanohub module in between.
    (A ``__main__`` module runs the program: the ``python -m`` tests cover it.)"""
    names = sorted(n for n in import_graph() if not n.endswith(".__main__"))
    code = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('nanohub')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException:\n"
        "        failed.append(name + ': ' + traceback.format_exc().strip().splitlines()[-1])\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code] + names, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, "modules that fail to import alone:\n" + proc.stdout + proc.stderr


HEAVY = ("numpy", "matplotlib", "rich", "dask", "distributed", "sqlite3", "nanohub.sim",
         "nanohub.host.report", "nanohub.host.study", "nanohub.host.emulate")
_RUN = """import json, sys
from nanohub.host.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
loaded = sorted(m for m in sys.modules if m == "construct" or any(
    m == h or m.startswith(h + ".") for h in %r))
print("LOADED " + json.dumps(loaded), file=sys.stderr)
sys.exit(rc)
"""


def _loaded(*argv):
    """(exit status, the heavy modules and construct if loaded) of ``nanohub ARGV``."""
    proc = subprocess.run([sys.executable, "-c", _RUN % (HEAVY,)] + list(argv),
                          capture_output=True, text=True, timeout=60)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("LOADED "), proc.stderr
    return proc.returncode, json.loads(last[7:])


def test_the_stop_loads_only_the_link_and_the_protocol():
    """nanohub estop is the command that must start fastest (a hardware stop
    waits on it): no plotting, no tables, no session database, no simulator."""
    rc, loaded = _loaded("--port", "socket://127.0.0.1:1", "--timeout", "0.5", "estop")
    assert rc == 3
    assert loaded == ["construct"]      # it did reach the codec, and nothing heavy


def test_help_loads_no_verb():
    assert _loaded("--help") == (0, [])
    assert _loaded("estop", "--help") == (0, [])
