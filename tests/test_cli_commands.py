"""``render``, ``lint``, ``signal``, ``wakeup``, ``demo``, ``--debug``, the read-only commands
that create no schema, and output piped to ``head``: the real command in a subprocess, over
the Runtime of tests/cli_app.py on SQLite and PostgreSQL (the fixture of
tests/test_cli_lifecycle.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_app import BACKEND_ENV
from pg import dsn, fresh_schema, require_postgres
from test_cli_lifecycle import APP, CREATE, PR, Cli, _environment, cli, command_line

from workflows4py import WIO, Caught, SignalDef
from workflows4py.examples.pull_request import PullRequest
from workflows4py.render import bpmn, mermaid, mermaid_live_url, text

__all__ = ["cli", "messy"]


# a definition the linter finds an issue in: a handler around steps that cannot fail
def _keep(failure: Caught[int, Any]) -> int:
    return failure.state


_tick = SignalDef("tick", request=int)
messy: WIO[Any, Any, Any] = (
    WIO.handle_signal(_tick, input=int)
    .purely(lambda n, r: r, event=int)
    .handle_event(lambda n, e: n + e)
    .void_response()
    .handle_error_with(WIO.pure(_keep))
)
definition = PullRequest.definition


def test_render_draws_a_definition_in_each_format(tmp_path: Path) -> None:
    env = _environment()
    target = "cli_app:PullRequest"
    assert command_line(tmp_path, env, ["render", target]).out == text(PullRequest) + "\n"
    done = command_line(tmp_path, env, ["render", target, "--format", "mermaid"])
    assert (done.code, done.out) == (0, mermaid(PullRequest))
    done = command_line(tmp_path, env, ["render", target, "--format", "bpmn", "--technical"])
    assert done.out == bpmn(PullRequest, technical=True)
    # a WIO (the definition alone) draws the same tree
    done = command_line(tmp_path, env, ["render", "test_cli_commands:definition"])
    assert done.out == text(PullRequest) + "\n"
    done = command_line(tmp_path, env, ["render", target, "--live-url"])
    assert done.out == mermaid_live_url(mermaid(PullRequest)) + "\n"
    done = command_line(tmp_path, env, ["render", target, "--live-url", "--format", "bpmn"])
    assert done.code == 2
    done = command_line(tmp_path, env, ["render", target, "--progress", "pr-1"])
    assert (done.code, done.out) == (1, "")
    assert done.err == (
        "workflows4py render: --progress needs a runtime, and cli_app:PullRequest gives a "
        "definition\n"
    )


def test_render_of_a_runtime_and_of_an_instance(cli: Cli) -> None:
    done = cli.run("render", APP)
    assert done.code == 1
    assert "has several workflows ('PullRequest', 'flaky'): choose one with --workflow" in (
        done.err
    )
    assert cli.ok("render", APP, "--workflow", PR) == text(PullRequest) + "\n"
    cli.ok("start", APP, PR, "pr-2", *CREATE)
    now = cli.ok("render", APP, "--workflow", PR, "--progress", "pr-2")
    assert "[run_io] Run Pipeline (may fail with Pipeline Failed)  ✓ #1" in now
    assert "[signal] Process Review" in now
    assert "… waiting" in now
    before = cli.ok("render", APP, "--workflow", PR, "--progress", "pr-2", "--at", "1")
    assert "✓" not in before  # after the start entry only: nothing ran yet
    assert before.count("… waiting") == 1
    target = cli.cwd / "pr-2.bpmn"
    out = cli.ok("render", APP, "--workflow", PR, "--progress", "pr-2", "--format", "bpmn")
    assert out.startswith("<?xml")
    wrote = cli.ok(
        "render", APP, "--workflow", PR, "--progress", "pr-2", "--format", "bpmn", "-o", str(target)
    )
    assert wrote == f"wrote the bpmn drawing of PullRequest / pr-2 to {target}\n"
    assert target.read_text() == out
    document = cli.json("render", APP, "--workflow", PR, "--progress", "pr-2", "--at", "2")
    assert (document["workflow"], document["instance"], document["at"]) == (PR, "pr-2", 2)
    assert (document["format"], document["file"], document["live_url"]) == ("text", None, None)
    assert "[signal] Create PR" in document["diagram"]
    assert "InstanceNotFound" in cli.fails("render", APP, "--workflow", PR, "--progress", "no")
    assert cli.run("render", APP, "--at", "1").code == 2  # --at without --progress


def test_lint_prints_the_issues_and_exits_1_when_any(tmp_path: Path) -> None:
    env = _environment()
    done = command_line(tmp_path, env, ["lint", "test_cli_commands:messy"])
    assert done.code == 1
    lines = done.out.splitlines()
    assert lines[0].startswith("[unnecessary-error-handler] root: ")
    assert lines[-1] == "1 issue(s) in test_cli_commands:messy"
    done = command_line(tmp_path, env, ["lint", "test_cli_commands:messy", "--json"])
    document = json.loads(done.out)
    assert done.code == 1
    assert document["count"] == 1
    assert document["workflows"] == [None]
    assert document["issues"][0]["rule"] == "unnecessary-error-handler"
    assert document["issues"][0]["path"] == ["root"]
    clean = command_line(tmp_path, env, ["lint", "cli_app:PullRequest"])
    assert (clean.code, clean.out) == (0, "no issues in PullRequest\n")


def test_lint_of_a_runtime_lints_each_workflow(cli: Cli) -> None:
    assert cli.ok("lint", APP) == "no issues in PullRequest, flaky\n"
    assert cli.json("lint", APP, "--workflow", "flaky") == {
        "issues": [],
        "count": 0,
        "workflows": ["flaky"],
    }


def _signal(cli: Cli, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_python(), "signal", APP, *args],
        cwd=cli.cwd,
        env=cli.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _python() -> list[str]:
    import sys

    return [sys.executable, "-m", "workflows4py"]


def test_signal_validates_answers_and_exits_3_when_unexpected(cli: Cli) -> None:
    line = cli.fails("signal", APP, "pr-0", "create-pr", "--json", '{"commit": 1}')
    assert "--json does not decode: DecodeError: $.commit" in line
    line = cli.fails("signal", APP, "pr-0", "nope", "--json", "{}")
    assert "ValueError: PullRequest has no signal 'nope' (it has 'create-pr', 'review-pr')" in line
    assert "InstanceNotFound" in cli.fails("signal", APP, "nobody", "create-pr", "--json", "{}")
    line = cli.fails("signal", APP, "pr-0", "review-pr", "--json", '{"approve": true}', code=3)
    assert "UnexpectedSignal" in line
    assert line.endswith("(it awaits create-pr)")  # what it expects
    done = _signal(cli, "pr-0", "create-pr", "--json", "-", stdin='{"commit": "abc"}')
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == {
        "workflow": PR,
        "instance": "pr-0",
        "signal": "create-pr",
        "response": None,
        "status": "awaiting",
    }
    types = [e["type"] for e in cli.journal("pr-0")]
    assert types == ["workflows4py.Started", "Created", "PipelineFinished"]
    assert cli.run("signal", APP, "pr-0", "create-pr").code == 2  # no --json


def test_wakeup_runs_the_instance_and_prints_its_status(cli: Cli) -> None:
    out = cli.ok("wakeup", APP, "pr-0")
    assert out == "PullRequest / pr-0\n  status:       awaiting\n  next wakeup:  -\n"
    assert cli.json("wakeup", APP, "pr-0", "--workflow", PR) == {
        "workflow": PR,
        "instance": "pr-0",
        "status": "awaiting",
        "next_wakeup": None,
    }
    assert "InstanceNotFound" in cli.fails("wakeup", APP, "nobody")


def test_debug_prints_the_traceback_before_the_one_line(cli: Cli) -> None:
    done = cli.run("--debug", "wakeup", APP, "nobody")
    assert done.code == 1
    assert done.err.startswith("Traceback (most recent call last):")
    assert done.err.splitlines()[-1].startswith("workflows4py wakeup: InstanceNotFound")
    assert "Traceback" not in cli.run("wakeup", APP, "nobody").err


READ_ONLY = [
    ["instances", APP],
    ["show", APP, "pr-1"],
    ["export", APP, PR, "pr-1"],
    ["render", APP, "--workflow", PR, "--progress", "pr-1"],
]


@pytest.mark.parametrize(
    "args", READ_ONLY, ids=lambda a: a[0] + ("-progress" if len(a) > 3 else "")
)
def test_a_read_only_command_creates_no_sqlite_file(tmp_path: Path, args: list[str]) -> None:
    database = tmp_path / "workflows.db"
    done = command_line(tmp_path, _environment(**{BACKEND_ENV: f"sqlite:{database}"}), args)
    assert (done.code, done.out) == (1, "")
    (line,) = done.err.splitlines()
    assert "StoreError: the database has no workflows4py schema (or an older one)" in line
    assert "run a command that writes, e.g. `workflows4py worker`, to create/migrate it" in line
    assert list(tmp_path.iterdir()) == []  # no file, no -wal, no -shm


def test_a_read_only_command_creates_nothing_on_postgres(tmp_path: Path) -> None:
    conninfo = require_postgres()
    with fresh_schema(conninfo) as schema:
        env = _environment(**{BACKEND_ENV: f"postgres:{schema}", "WORKFLOWS4PY_PG_DSN": dsn()})
        for args in READ_ONLY:
            done = command_line(tmp_path, env, args)
            assert done.code == 1, done
            assert "has no workflows4py schema" in done.err
        with psycopg.connect(conninfo, autocommit=True) as conn:
            found = conn.execute(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                (schema,),
            ).fetchone()
        assert found == (0,)


def test_output_piped_to_head_ends_quietly(tmp_path: Path) -> None:
    database = tmp_path / "workflows.db"
    env = _environment(**{BACKEND_ENV: f"sqlite:{database}"})
    command_line(tmp_path, env, ["start", APP, PR, "pr-0"])  # the schema
    import sqlite3

    with sqlite3.connect(database) as conn:  # many rows: more than a pipe's buffer holds
        row = conn.execute("SELECT * FROM instances").fetchone()
        marks = ", ".join("?" * len(row))
        columns = [d[0] for d in conn.execute("SELECT * FROM instances").description]
        at = columns.index("instance_id")
        rows = [(*row[:at], f"pr-{n:05}", *row[at + 1 :]) for n in range(1, 4000)]
        conn.executemany(f"INSERT INTO instances VALUES ({marks})", rows)
    shell = f"{' '.join(_python())} instances {APP} --limit 4000 | head -1"
    done = subprocess.run(
        ["bash", "-c", shell], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.stdout.split()[:2] == ["workflow", "instance"]
    assert done.stderr == ""
    assert done.returncode == 0  # head's status


def test_demo_runs_the_packaged_demo(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    done = command_line(tmp_path, _environment(), ["demo", "--db", str(database)])
    assert done.code == 0, done.err
    assert "== 2. Pull-request outcomes, in memory" in done.out
    assert "== 3. Withdrawals" in done.out
    assert "Progress of pr-3:" in done.out
    assert "- [signal] Create PR" in done.out  # the render.text tree
    assert database.exists()
