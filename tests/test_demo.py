"""The demo (what ``./scripts/demo`` runs) works end to end, in a real subprocess."""

from __future__ import annotations

import re
from pathlib import Path

from example_script import run_example


def test_demo_survives_a_restart_and_runs_every_example(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    done = run_example("demo.py", "--db", str(db), timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    first, _, rest = out.partition("the first process has exited")
    assert "CI pipeline runs in this process: 1" in first
    assert "started wd-1, now Executed" in first
    assert "'initiate_execution': 1" in first
    # one runtime, one file: a single search lists the instances of both workflows
    found, _, rest = rest.partition("reopened pr-42")
    assert re.search(r"PullRequest +pr-42 +awaiting", found), found
    assert re.search(r"Withdrawal +wd-1 +awaiting", found), found
    assert ": Checked(commit='some-sha'" in rest
    assert "CI pipeline runs in this process: 0" in rest  # not re-run after the restart
    assert "after review: Merged(commit='some-sha'" in rest
    assert "wd-1 after the execution engine confirmed: Completed.Successfully()" in rest
    assert "withdrawal service calls in this process: {'release_funds': 1}" in rest
    assert re.search(r"PullRequest +pr-42 +finished", rest), rest
    assert "#1 workflows4py.Started" in rest  # the state the instance started from
    assert "#4 ReviewSubmitted" in rest
    assert "same state: True; CI pipeline calls during recovery: 0" in out
    assert "Closed(state=Empty(), reason=CommitNotFound())" in out
    assert "Amount must be positive" in out
    assert "Cancelled by operator-1. Comment: cancelled" in out
    assert db.exists()
