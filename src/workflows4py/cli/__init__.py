"""The command line: ``workflows4py [--version] COMMAND ...`` (docs/cli.md).

``main`` is the console script's entry point; ``load_runtimes`` resolves a ``module:attr``
argument to the durable runtimes it names.
"""

from ._cli import main
from ._main import load_runtimes

__all__ = ["load_runtimes", "main"]
