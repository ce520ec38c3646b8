from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The shared store conformance suite lives in a helper module: let pytest rewrite its asserts.
pytest.register_assert_rewrite("store_conformance")

# The examples are documentation that runs: make them importable as `examples.*`.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
