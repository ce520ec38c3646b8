"""``python -m workflows4py``: the same as the ``workflows4py`` command."""

import sys

from .cli import main

sys.exit(main())
