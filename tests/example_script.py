"""Runs one of examples/*.py as a script, in a subprocess, the way its docs say to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs ``examples/<name>`` with ``args``, the repository root on its PYTHONPATH; the
    caller checks the return code and reads the output."""
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
