"""The portable byte and table loops, generated from their viper source.

``firmware/hub/viperbytes.py`` holds the hub's hot loops in
``@micropython.viper``; a port without a native emitter cannot import it and
runs the same loops as bytecode from ``firmware/hub/loops.py``, which this
module writes from the viper source (``nanohub.protocol.gen`` calls it; its
``--check`` fails when the two differ): one truth, two compilations.

The translation is textual and small: the decorator goes, the viper casts
(``ptr8(x)``, ``ptr16(x)``, ``ptr32(x)``, ``int(x)``) become ``x`` (a pointer
indexes as the buffer or array it points into; an object's int is the int)
and the type annotations go. The loops that work on CRC-32 words
(``uint``) are not translated: as bytecode on a 32-bit port a word of 2**30
or more would be a heap object, so ``hub.crc`` computes the CRC in 16-bit
halves there instead.
"""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "firmware" / "hub" / "viperbytes.py"
# the loops translated, in the source's order
LOOPS = ("feed", "cobs_encode", "gather", "states", "counts", "book")
_CAST = re.compile(r"\b(ptr8|ptr16|ptr32|int)\(")
_SIMPLE = re.compile(r"^[\w.]+$")
_PARAM = re.compile(r"(\w+): \w+")
_RETURNS = re.compile(r"\) -> \w+:$")


def _uncast(line):
    """``ptr8(x)`` and ``int(x)`` as ``x`` (parenthesized unless a plain name)."""
    while True:
        m = _CAST.search(line)
        if m is None:
            return line
        depth = 0
        for j in range(m.end() - 1, len(line)):
            depth += {"(": 1, ")": -1}.get(line[j], 0)
            if depth == 0:
                break
        else:
            raise ValueError("unbalanced cast: %r" % line)
        inner = line[m.end():j]
        if not _SIMPLE.match(inner):
            inner = "(" + inner + ")"
        line = line[:m.start()] + inner + line[j + 1:]


def _translate(lines):
    out = []
    head = False                # in the def line(s)
    for line in lines:
        s = line.strip()
        if s == "@micropython.viper":
            continue
        if "uint(" in line:
            raise ValueError("a loop on CRC words cannot run portably: %r" % s)
        head = head or s.startswith("def ")
        if head:
            line = _RETURNS.sub("):", _PARAM.sub(r"\1", line))
            head = not line.endswith(":")
        out.append(_uncast(line))
    return out


def loops_module(header, source=None):
    """The text of ``firmware/hub/loops.py`` (``header``: the generated-file line)."""
    text = source if source is not None else SOURCE.read_text()
    lines = text.splitlines()
    funcs = {node.name: node for node in ast.parse(text).body
             if isinstance(node, ast.FunctionDef)}
    out = ["# " + header,
           '"""The portable twins of ``hub.viperbytes``\' loops (where the port has no',
           "native emitter): the same source with the viper types dropped, written",
           'by ``nanohub.protocol.gen``. ``hub.frame.select`` picks one set."""',
           "from hub import dose as _dose",
           "from hub import wire"]
    for name in LOOPS:
        node = funcs[name]
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        out += ["", ""] + _translate(lines[start - 1:node.end_lineno])
    return "\n".join(out) + "\n"
