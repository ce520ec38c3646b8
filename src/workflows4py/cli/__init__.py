"""The command line: ``workflows4py [--version] COMMAND ...`` (docs/cli.md).

``main`` is the console script's entry point; ``load_runtimes`` resolves a ``module:attr``
argument to the durable runtimes it names.
"""

from ._app import load_runtimes
from ._main import main

__all__ = ["load_runtimes", "main"]
