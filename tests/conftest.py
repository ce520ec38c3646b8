from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The store conformance suites live in the library: let pytest rewrite their asserts (before
# anything imports them), as a user's conftest.py would.
pytest.register_assert_rewrite("workflows4py.testing")
# the lifecycle tests' shared workflows and fixtures (a plugin of those test modules)
pytest.register_assert_rewrite("lifecycle_common")

# The examples are documentation that runs: make them importable as `examples.*`.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
