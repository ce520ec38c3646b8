"""The type checker rejects mis-composed workflows and accepts well-composed ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

CASES = Path(__file__).parent / "typing_cases"
pytestmark = pytest.mark.typing


def _mypy(path: Path) -> list[tuple[int, str]]:
    stdout, stderr, _status = api.run(
        ["--strict", "--no-error-summary", "--hide-error-context", "--no-color-output", str(path)]
    )
    assert not stderr, stderr
    errors = []
    for line in stdout.splitlines():
        m = re.match(r".*?:(\d+): error: (.*)", line)
        if m:
            errors.append((int(m.group(1)), m.group(2)))
    return errors


def test_well_typed_compositions_pass() -> None:
    assert _mypy(CASES / "well_typed.py") == []


def test_mis_composed_workflows_are_rejected_where_marked() -> None:
    path = CASES / "ill_typed.py"
    expected = {
        number
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if text.rstrip().endswith("# expect-error")
    }
    reported = {line for line, _ in _mypy(path)}
    assert len(expected) >= 5
    assert reported == expected
