"""The demo (what ``./scripts/demo`` runs) works end to end, in a real subprocess."""

from __future__ import annotations

from pathlib import Path

from example_script import run_example


def test_demo_survives_a_restart_and_runs_every_example(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    done = run_example("demo.py", "--db", str(db), timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    first, _, rest = out.partition("the first process has exited")
    assert "CI pipeline runs in this process: 1" in first
    assert "reopened pr-42: Checked(commit='some-sha'" in rest
    assert "CI pipeline runs in this process: 0" in rest  # not re-run after the restart
    assert "after review: Merged(commit='some-sha'" in rest
    assert "#3 ReviewSubmitted" in rest
    assert "same state: True; CI pipeline calls during recovery: 0" in out
    assert "Closed(state=Empty(), reason=CommitNotFound())" in out
    assert "Amount must be positive" in out
    assert "Cancelled by operator-1. Comment: cancelled" in out
    assert db.exists()
