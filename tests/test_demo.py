"""The demo (what ``./scripts/demo`` runs) works end to end, in a real subprocess."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def test_demo_serve_fills_a_database_and_serves_the_web_ui_over_it(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "workflows4py.examples.demo", "--serve", "--db", str(db)]
    with subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as server:
        try:
            assert server.stdout is not None
            assert server.stderr is not None
            filled = server.stdout.readline()
            assert "8 instances in" in filled, filled + server.stderr.read()
            assert server.stdout.readline().strip() == (
                f"serving the web UI at http://127.0.0.1:{port}/ (Ctrl-C stops it)"
            )
            deadline = time.monotonic() + 30
            while True:
                try:
                    url = f"http://127.0.0.1:{port}/api/v1/instances?limit=50"
                    with urllib.request.urlopen(url, timeout=5) as answer:
                        listed = json.load(answer)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the demo server did not answer"
                    time.sleep(0.2)
            statuses = {item["id"]: item["status"] for item in listed["items"]}
            assert statuses == {
                "pr-review": "awaiting",
                "pr-merged": "finished",
                "pr-rejected": "finished",
                "pr-unknown-commit": "finished",
                "pr-stopped": "terminated",
                "wd-pending": "awaiting",
                "wd-paid": "awaiting",
                "wd-cancelled": "awaiting",
            }
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                assert "<html" in page.read().decode().lower()
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    assert db.exists()
