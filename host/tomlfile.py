"""Reading a TOML file (a clinic, a scenario), with one wording for what goes wrong."""
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def load(path, error, name=None):
    """The parsed TOML file at ``path`` as a dict. When it cannot be read or is
    not valid TOML, raises ``error`` (an exception class) with one line that
    starts with ``name`` (default: the path)."""
    name = name or str(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise error("%s: cannot read: %s" % (name, e.strerror or e)) from None
    except tomllib.TOMLDecodeError as e:
        raise error("%s: not valid TOML: %s" % (name, e)) from None
