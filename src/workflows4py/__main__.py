"""``python -m workflows4py``: the same as the ``workflows4py`` command."""

import sys

from ._cli import main

sys.exit(main())
