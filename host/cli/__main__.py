# PYTHON_ARGCOMPLETE_OK
"""``python -m nanohub.host.cli``: the ``nanohub`` command."""
import sys

from . import main

sys.exit(main())
