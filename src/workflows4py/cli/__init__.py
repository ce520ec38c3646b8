"""The command line: ``workflows4py [--version] {worker,instances,show} ...``.

``main`` is the console script's entry point; ``load_runtimes`` resolves a ``module:attr``
argument to the runtimes it names.
"""

from ._main import load_runtimes, main

__all__ = ["load_runtimes", "main"]
