"""Runs one of the packaged examples (``workflows4py.examples``) as a script, in a
subprocess, the way its docs say to (``python -m workflows4py.examples.NAME``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m workflows4py.examples.<name>`` (``name`` given as ``demo.py`` or
    ``demo``) with ``args``; the caller checks the return code and reads the output."""
    return subprocess.run(
        [sys.executable, "-m", f"workflows4py.examples.{name.removesuffix('.py')}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
