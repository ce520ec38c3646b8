"""An instance's life from the command line, run for real: ``python -m workflows4py``
subprocesses over the Runtime of tests/cli_app.py, on SQLite (a tmp file) and PostgreSQL (a
fresh schema). Start (idempotent, with a signal), terminate, resume, fork, export and purge,
their output, their ``--json`` documents (the keys docs/cli.md gives) and their errors (one
line on stderr, status 1, nothing written); and the session of docs/cli.md, run as written.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import pty
import re
import select
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_app import BACKEND_ENV, OUTAGE_ENV
from test_bad_rows import Backend, backend_for
from test_docs import fenced_blocks, python_blocks

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cli.md"
APP = "cli_app:runtime"
PR = "PullRequest"
CREATE = ("--signal", "create-pr", "--request", '{"commit": "abc"}')
# a commit id longer than 8 characters: the pull request is closed at once (finished)
UNKNOWN_COMMIT = ("--signal", "create-pr", "--request", '{"commit": "0123456789abcdef"}')
CHECKED = {
    "type": "Checked",
    "state": {"commit": "abc", "pipeline_results": "<Some tests results>"},
}


def _keys(shape: str) -> set[str]:
    return set(re.findall(r'"(\w+)"', shape))


def documented_shapes() -> dict[str, set[str]]:
    """The keys of each command's ``--json`` document, as docs/cli.md gives them."""
    shapes: dict[str, set[str]] = {}
    for section in re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.M)[1:]:
        command = re.match(r"`(\w+)`", section)
        shape = re.search(r"(?:`--json`: |one JSON document, always: )`(\{[^`]*\})`", section)
        if command and shape:
            shapes[command[1]] = _keys(shape[1])
    return shapes


SHAPES = documented_shapes()
# the keys of each exported journal entry, as the export section gives them
ENTRY_KEYS = _keys(
    re.search(r"one entry per line, oldest first:\n`(\{[^`]*\})`", DOC.read_text())[1]  # type: ignore[index]
)


# the keys of each item of `instances --json`, as its section gives them
ROW_KEYS = _keys(re.search(r"`items` the rows shown, each `(\{[^`]*\})`", DOC.read_text())[1])  # type: ignore[index]


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


def command_line(cwd: Path, env: dict[str, str], args: list[str]) -> Done:
    done = subprocess.run(
        [sys.executable, "-m", "workflows4py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr)


@dataclass
class Cli:
    """The command, on one backend, from the user's side."""

    backend: Backend
    cwd: Path
    env: dict[str, str]

    def run(self, *args: str) -> Done:
        return command_line(self.cwd, self.env, list(args))

    def ok(self, *args: str) -> str:
        """Run a command that succeeds; its stdout (stderr stays empty)."""
        done = self.run(*args)
        assert (done.code, done.err) == (0, ""), done
        return done.out

    def json(self, *args: str) -> Any:
        """Run a command with ``--json``: one JSON document with the documented keys."""
        out = self.ok(*args, "--json")
        assert out.count("\n") == 1, out
        document = json.loads(out)
        assert set(document) == SHAPES[args[0]], document
        return document

    def rows(self, *args: str) -> list[dict[str, Any]]:
        """The items of ``instances --json`` (one document: the items and their total)."""
        rows: list[dict[str, Any]] = self.json("instances", APP, *args)["items"]
        assert all(set(row) == ROW_KEYS for row in rows)
        return rows

    def fails(self, *args: str, code: int = 1, nothing_written: bool = True) -> str:
        """Run a command that fails; its one line on stderr (the database is unchanged)."""
        before = self.backend.dump() if nothing_written else None
        done = self.run(*args)
        assert done.code == code, done
        assert done.out == "", done
        assert "Traceback" not in done.err, done.err
        if nothing_written:
            assert self.backend.dump() == before
        if code == 2:  # click's usage message
            return done.err
        (line,) = done.err.splitlines()
        assert line.startswith(f"workflows4py {args[0]}: "), line
        return line

    def journal(self, instance_id: str, workflow: str = PR) -> list[dict[str, Any]]:
        out = self.ok("export", APP, workflow, instance_id)
        return [json.loads(line) for line in out.splitlines()]

    def registered(self) -> set[str]:
        """The instance ids of the registry table, read with SQL."""
        query = f"SELECT instance_id FROM {self.backend.table('instances')}"
        if self.backend.kind == "sqlite":
            with sqlite3.connect(str(self.backend.path)) as conn:
                return {row[0] for row in conn.execute(query)}
        with psycopg.connect(self.backend.dsn, autocommit=True) as pg:
            return {row[0] for row in pg.execute(query.encode())}


def _environment(**extra: str) -> dict[str, str]:
    path = [str(ROOT / "tests"), str(ROOT), str(ROOT / "src")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **extra}


@pytest.fixture(params=["sqlite", "postgres"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    with backend_for(request.param, tmp_path) as backend:
        env = _environment(
            **{
                BACKEND_ENV: backend.spec,
                "WORKFLOWS4PY_PG_DSN": backend.dsn,
                OUTAGE_ENV: str(tmp_path / "outage"),
            }
        )
        cli = Cli(backend, tmp_path, env)
        cli.ok("start", APP, PR, "pr-0")  # the schema exists: what a failure leaves is seen
        yield cli


# -- start -------------------------------------------------------------------------------------


def test_start_is_idempotent_and_refuses_another_state(cli: Cli) -> None:
    assert cli.ok("start", APP, PR, "pr-1") == (
        "PullRequest / pr-1\n  status:       awaiting\n  state:        Empty()\n"
    )
    empty = '{"type": "Empty", "state": {}}'
    assert cli.json("start", APP, PR, "pr-1", "--state", empty) == {
        "workflow": PR,
        "instance": "pr-1",
        "status": "awaiting",
        "state": {"type": "Empty", "state": {}},
        "signal": None,
        "response": None,
    }
    other = '{"type": "Initiated", "state": {"commit": "abc"}}'
    line = cli.fails("start", APP, PR, "pr-1", "--state", other)
    assert "InstanceExists: instance 'pr-1' of PullRequest exists already" in line
    assert "Empty()" in line
    assert [e["type"] for e in cli.journal("pr-1")] == ["workflows4py.Started"]


def test_start_with_a_signal_prints_its_response_and_records_it_once(cli: Cli) -> None:
    document = cli.json("start", APP, PR, "pr-2", *CREATE)
    assert document == {
        "workflow": PR,
        "instance": "pr-2",
        "status": "awaiting",
        "state": CHECKED,
        "signal": "create-pr",
        "response": None,
    }
    out = cli.ok("start", APP, PR, "pr-2", *CREATE)  # a retried start: nothing new
    state = "Checked(commit='abc', pipeline_results='<Some tests results>')"
    assert out.endswith(f"  state:        {state}\n  response:     None\n")
    types = [e["type"] for e in cli.journal("pr-2")]
    assert types == ["workflows4py.Started", "Created", "PipelineFinished"]
    # a signal the instance does not await: it is started, the signal refused
    review = ("--signal", "review-pr", "--request", '{"approve": true}')
    line = cli.fails("start", APP, PR, "pr-3", *review, nothing_written=False)
    assert "started 'pr-3', but the signal was refused" in line
    assert "review-pr" in line
    assert "create-pr" in line  # what it awaits


# -- terminate, resume -------------------------------------------------------------------------


def test_terminate_once_then_it_is_done_already(cli: Cli) -> None:
    cli.ok("start", APP, PR, "pr-1")
    out = cli.ok("terminate", APP, PR, "pr-1", "--reason", "not needed")
    assert out == "terminated PullRequest / pr-1: not needed\n"
    again = cli.ok("terminate", APP, PR, "pr-1", "--reason", "not needed")
    assert again == "PullRequest / pr-1 was terminated already: nothing done\n"
    document = cli.json("terminate", APP, PR, "pr-1", "--reason", "not needed")
    assert (document["terminated"], document["status"]) == (False, "terminated")
    assert cli.journal("pr-1")[-1]["data"]["reason"] == "not needed"
    cli.ok("start", APP, PR, "pr-2", *UNKNOWN_COMMIT)  # closed at once: finished
    line = cli.fails("terminate", APP, PR, "pr-2", "--reason", "too late")
    assert "InstanceClosed: cannot terminate instance 'pr-2': it is finished" in line
    line = cli.fails("terminate", APP, PR, "nope", "--reason", "why not")
    assert "InstanceNotFound" in line
    assert "'nope'" in line


def test_resume_takes_a_parked_instance_up_again(cli: Cli) -> None:
    outage = Path(cli.env[OUTAGE_ENV])
    outage.touch()
    # the effect raises: one line (the runtime's own log left out), the instance parked
    quiet = ("--log-level", "critical")
    line = cli.fails("start", APP, "flaky", "job-1", *quiet, nothing_written=False)
    assert line == "workflows4py start: RuntimeError: the service is down"
    (row,) = cli.rows("--status", "parked")
    assert (row["instance"], row["failures"]) == ("job-1", 1)
    outage.unlink()  # the fix is deployed
    document = cli.json("resume", APP, "flaky", "job-1")
    assert document == {
        "workflow": "flaky",
        "instance": "job-1",
        "resumed": True,
        "status": "finished",
    }
    out = cli.ok("resume", APP, "flaky", "job-1")
    assert out == "flaky / job-1 is not parked (it is finished): nothing done\n"
    assert cli.json("resume", APP, PR, "pr-0")["resumed"] is False
    assert "InstanceNotFound" in cli.fails("resume", APP, PR, "nope")


# -- fork, export ------------------------------------------------------------------------------


def test_fork_runs_a_new_instance_from_a_prefix_of_the_journal(cli: Cli) -> None:
    cli.ok("start", APP, PR, "pr-2", *CREATE)
    original = cli.journal("pr-2")
    document = cli.json("fork", APP, PR, "pr-2", "pr-3", "--after-sequence", "2")
    assert document == {
        "workflow": PR,
        "instance": "pr-3",
        "forked_from": "pr-2",
        "after_sequence": 2,
        "status": "awaiting",
        "state": CHECKED,  # the pipeline ran again after the kept Created
    }
    forked = cli.journal("pr-3")
    assert [e["type"] for e in forked] == [e["type"] for e in original]
    assert forked[1]["data"] == original[1]["data"]
    assert cli.journal("pr-2") == original
    line = cli.fails("fork", APP, PR, "pr-2", "pr-3", "--after-sequence", "1")
    assert "InstanceExists" in line
    line = cli.fails("fork", APP, PR, "pr-2", "pr-4", "--after-sequence", "9")
    assert "ValueError: after_sequence must be between 1 and 3" in line
    out = cli.ok("fork", APP, PR, "pr-2", "pr-5", "--after-sequence", "1")
    assert out.startswith(
        "PullRequest / pr-5, forked from pr-2 after #1\n  status:       awaiting\n"
    )


def test_export_prints_the_journal_as_json_lines(cli: Cli) -> None:
    cli.ok("start", APP, PR, "pr-2", *CREATE)
    out = cli.ok("export", APP, PR, "pr-2")
    entries = [json.loads(line) for line in out.splitlines()]
    assert [e["sequence"] for e in entries] == list(range(1, len(entries) + 1))
    assert len(entries) == 3
    assert all(set(e) == ENTRY_KEYS for e in entries)
    assert {(e["workflow"], e["instance_id"]) for e in entries} == {(PR, "pr-2")}
    assert entries[1]["data"] == {"commit": "abc"}
    target = cli.cwd / "pr-2.jsonl"
    wrote = cli.ok("export", APP, PR, "pr-2", "-o", str(target))
    assert wrote == f"wrote 3 entries of PullRequest / pr-2 to {target}\n"
    assert target.read_text() == out
    document = cli.json("export", APP, PR, "pr-2")
    assert document == {
        "workflow": PR,
        "instance": "pr-2",
        "entries": 3,
        "file": None,
        "journal": entries,
    }
    missing = cli.cwd / "missing.jsonl"
    assert "InstanceNotFound" in cli.fails("export", APP, PR, "nope", "-o", str(missing))
    assert not missing.exists()


# -- purge -------------------------------------------------------------------------------------


def test_purge_counts_then_deletes_the_ended_instances(cli: Cli) -> None:
    cli.ok("start", APP, PR, "pr-2", *UNKNOWN_COMMIT)  # finished
    cli.ok("start", APP, PR, "pr-3")
    cli.ok("terminate", APP, PR, "pr-3", "--reason", "abandoned")  # terminated
    cli.ok("start", APP, "flaky", "job-1")  # finished
    everything = {"pr-0", "pr-2", "pr-3", "job-1"}
    assert cli.registered() == everything
    dry = cli.json("purge", APP, "--finished-before", "0s", "--dry-run")
    assert (dry["dry_run"], dry["count"], dry["workflows"]) == (True, 3, None)
    assert dry["statuses"] == ["finished", "failed", "terminated"]
    one = cli.json("purge", APP, "--finished-before", "0s", "--dry-run", "--workflow", "flaky")
    assert (one["count"], one["workflows"]) == (1, ["flaky"])
    assert cli.registered() == everything  # a dry run deletes nothing
    terminated = cli.json("purge", APP, "--finished-before", "1s", "--status", "terminated")
    assert (terminated["dry_run"], terminated["count"]) == (False, 1)
    assert cli.registered() == everything - {"pr-3"}
    out = cli.ok(
        "purge", APP, "--finished-before", "2100-01-01T00:00:00+00:00", "--batch-size", "1"
    )
    assert out == (
        "deleted 2 instance(s) finished/failed/terminated before 2100-01-01T00:00:00+00:00\n"
    )
    assert cli.registered() == {"pr-0"}  # the rows are gone; the one under way is kept
    assert "InstanceNotFound" in cli.fails("export", APP, PR, "pr-2")
    assert cli.journal("pr-0")  # the one under way still has its journal


# -- errors ------------------------------------------------------------------------------------

BAD_INPUT = [
    (["--state", "{not json"], "--state is not JSON: "),
    (["--state", '{"type": "Nope", "state": {}}'], "--state does not decode: DecodeError: "),
    (["--signal", "nope", "--request", "{}"], "ValueError: PullRequest has no signal 'nope'"),
    (["--signal", "create-pr", "--request", "[1,"], "--request is not JSON: "),
    (["--signal", "create-pr", "--request", '{"commit": 1}'], "--request does not decode: "),
]


def test_what_does_not_decode_or_exist_is_one_line_and_writes_nothing(cli: Cli) -> None:
    for extra, named in BAD_INPUT:
        assert named in cli.fails("start", APP, PR, "pr-9", *extra)
    line = cli.fails("start", APP, "Nope", "pr-9")
    assert "ValueError: no workflow with the id 'Nope'" in line
    assert "'PullRequest', 'flaky'" in line
    assert "InvalidInstanceId" in cli.fails("start", APP, PR, "not an id!")
    assert "must give a workflows4py.Runtime" in cli.fails("start", "cli_app:BACKEND_ENV", PR, "x")
    assert "cannot import 'nowhere'" in cli.fails("export", "nowhere:app", PR, "pr-0")
    assert "no workflow with the id 'nope'" in cli.fails(
        "purge", APP, "--finished-before", "0s", "--workflow", "nope"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["start", APP, PR, "pr-9", "--signal", "create-pr"],  # no --request
        ["start", APP, PR, "pr-9", "--request", "{}"],  # no --signal
        ["start", APP, PR],  # no ID
        ["terminate", APP, PR, "pr-0"],  # no --reason
        ["fork", APP, PR, "pr-0", "pr-9"],  # no --after-sequence
        ["purge", APP, "--finished-before", "yesterday"],
        ["purge", APP, "--finished-before", "2026-01-01T00:00:00"],  # no offset
        ["purge", APP, "--finished-before", "1d", "--status", "awaiting"],
        ["purge", APP, "--finished-before", "1d", "--batch-size", "0"],
    ],
)
def test_a_usage_error_exits_2(tmp_path: Path, args: list[str]) -> None:
    database = tmp_path / "workflows.db"
    done = command_line(tmp_path, _environment(**{BACKEND_ENV: f"sqlite:{database}"}), args)
    assert (done.code, done.out) == (2, "")
    assert f"Try 'workflows4py {args[0]} --help' for help." in done.err
    assert "Error: " in done.err
    assert not database.exists()  # refused before the store is opened


def test_a_store_that_fails_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is not an SQLite file, it is just text" * 100)
    env = _environment(**{BACKEND_ENV: f"sqlite:{path}"})
    for args in (["start", APP, PR, "pr-1"], ["purge", APP, "--finished-before", "0s"]):
        done = command_line(tmp_path, env, args)
        assert (done.code, done.out) == (1, "")
        (line,) = done.err.splitlines()
        assert line.startswith(f"workflows4py {args[0]}: StoreError: "), line


# -- on a terminal -----------------------------------------------------------------------------


def on_terminal(cwd: Path, env: dict[str, str], args: list[str]) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as stdin, stdout and stderr: status, output."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workflows4py", *args],
        cwd=cwd,
        env={**env, "COLUMNS": "160"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return proc.wait(timeout=60), output.decode()


def test_on_a_terminal_tables_colours_and_a_progress_bar(tmp_path: Path) -> None:
    env = _environment(**{BACKEND_ENV: f"sqlite:{tmp_path / 'workflows.db'}"})
    code, shown = on_terminal(tmp_path, env, ["start", APP, PR, "pr-1", *UNKNOWN_COMMIT])
    assert code == 0, shown
    assert "\x1b[" in shown  # colours
    assert "finished" in shown
    code, shown = on_terminal(tmp_path, env, ["instances", APP])
    assert code == 0, shown
    assert "───" in shown  # a rich table
    assert "pr-1" in shown
    code, shown = on_terminal(tmp_path, env, ["purge", APP, "--finished-before", "0s"])
    assert code == 0, shown
    assert "purging" in shown  # the progress bar, on stderr
    assert "deleted 1 instance(s)" in shown
    code, shown = on_terminal(tmp_path, env, ["instances", APP, "--json"])
    # no row; and --json has no colour, on a terminal too
    assert (code, shown) == (0, '{"exact": true, "items": [], "total": 0}\r\n')
    code, shown = on_terminal(tmp_path, env, ["resume", APP, PR, "pr-1", "--json"])
    assert code == 1
    assert "\x1b[" not in shown


NAPPER = """
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from workflows4py import WIO, Workflow
from workflows4py.runtime import Runtime


@dataclass(frozen=True)
class Nap:
    pass


class Napper(Workflow[Nap, Nap]):
    id = "napper"
    initial_state = Nap()
    definition = WIO.timer(timedelta(milliseconds=200), input=Nap, name="Nap")


runtime = Runtime.sqlite(Path(__file__).with_name("naps.db"), [Napper])
"""


def test_a_worker_on_a_terminal_shows_the_instances_due_when_it_starts(tmp_path: Path) -> None:
    (tmp_path / "naps.py").write_text(NAPPER)
    sys.path.insert(0, str(tmp_path))
    try:
        # the app the command serves, from this process: 40 naps, all due soon
        naps = importlib.import_module("naps")

        async def start_naps() -> None:
            async with naps.runtime as runtime:
                for n in range(40):
                    await runtime.start(naps.Napper, f"nap-{n}")

        asyncio.run(start_naps())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("naps", None)
    time.sleep(0.3)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workflows4py", "worker", "naps:runtime", "--poll-interval", "0.1"],
        cwd=tmp_path,
        env={**_environment(), "COLUMNS": "120"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 60
    while b"40/40" not in shown and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            shown += os.read(leader, 65536)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    os.close(leader)
    text = shown.decode()
    assert code == 0, text
    assert "due at start" in text  # the bar, on stderr
    assert "40/40" in text
    with sqlite3.connect(tmp_path / "naps.db") as conn:
        statuses = conn.execute("SELECT status, count(*) FROM instances GROUP BY status")
        assert statuses.fetchall() == [("finished", 40)]


# -- docs/cli.md -------------------------------------------------------------------------------

_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00")


def _pattern(expected: str) -> re.Pattern[str]:
    """An expected output line: an instant on the page stands for any of the same form."""
    pattern = ""
    end = 0
    for m in _INSTANT.finditer(expected):
        fraction = r"\.\d{6}" if m[1] else ""
        instant = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" + fraction + r"\+00:00"
        pattern += re.escape(expected[end : m.start()]) + instant
        end = m.end()
    return re.compile(pattern + re.escape(expected[end:]))


def session() -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` of the ``console`` blocks of docs/cli.md."""
    steps: list[tuple[str, list[str]]] = []
    for block in fenced_blocks(DOC.read_text(encoding="utf-8")):
        if block.info != "console":
            continue
        for line in block.code.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def test_the_documented_session_prints_what_the_page_shows(tmp_path: Path) -> None:
    (app,) = python_blocks(DOC)
    (tmp_path / "app.py").write_text(app.code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    steps = session()
    assert len(steps) > 15
    code = 0
    for command, expected in steps:
        if command == "echo $?":
            actual = [str(code)]
        else:
            argv = shlex.split(command)
            assert argv[0] == "workflows4py", command
            done = command_line(tmp_path, env, argv[1:])
            code = done.code
            actual = (done.out + done.err).splitlines()
            assert not (done.out and done.err), done  # the page shows one of them
            if "--json" in argv and code == 0:
                assert set(json.loads(done.out)) == SHAPES[argv[1]]
        assert len(actual) == len(expected), f"$ {command}\n" + "\n".join(actual)
        for want, got in zip(expected, actual, strict=True):
            assert _pattern(want).fullmatch(got), f"$ {command}\nwanted: {want}\ngot:    {got}"


def test_every_command_has_its_section_and_json_shape() -> None:
    done = command_line(ROOT, _environment(), ["--help"])
    listed = done.out.split("Commands:\n", 1)[1]
    commands = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert commands >= {
        "worker",
        "instances",
        "show",
        "start",
        "signal",
        "wakeup",
        "terminate",
        "resume",
        "fork",
        "export",
        "purge",
        "render",
        "lint",
        "check",
        "serve",
        "demo",
    }
    sections = set(re.findall(r"^## `(\w+)`", DOC.read_text(), flags=re.M))
    assert sections == commands
    # the worker's is told in words; the demo prints what the examples print; serve
    # answers over HTTP (tests/test_web_api.py); check's shape is tested in tests/test_gate.py
    assert set(SHAPES) == commands - {"worker", "demo", "serve", "check"}
