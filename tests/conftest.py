from __future__ import annotations

import sys
from pathlib import Path

# The examples are documentation that runs: make them importable as `examples.*`.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
