"""``workflows4py instances`` and ``workflows4py show``: the registry and one instance, from
the command line (in process, on the SQLite app of tests/worker_app.py); and what they do
with rows that do not decode, on SQLite and PostgreSQL (the app is :func:`pull_requests`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg import dsn
from test_bad_rows import BAD, CASES, Backend, backend_for, populate
from worker_app import DB_ENV, make_runtime

from workflows4py import DurableRuntime
from workflows4py.cli import main
from workflows4py.stores import InstanceKey

APP = "worker_app:runtimes"
PR_APP = "test_cli_inspect:pull_requests"
BACKEND_ENV = "WORKFLOWS4PY_TEST_BACKEND"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "workflows.db"
    monkeypatch.setenv(DB_ENV, str(path))

    async def populate() -> None:
        async with make_runtime(path) as runtime:
            for n in range(3):
                await runtime.create_instance(f"w-{n}")
            # w-2's effect keeps failing: what the registry says after two attempts
            key = InstanceKey(runtime.workflow.name, "w-2")
            for _ in range(2):
                await runtime.store.update(
                    key, "awaiting", None, {"team": "ops"}, runtime.clock.now(), error="Boom: no"
                )

    asyncio.run(populate())
    return path


def test_instances_lists_the_registry(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["instances", APP]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["workflow", "instance", "status", "updated"]
    assert [line.split()[1] for line in out[1:4]] == ["w-0", "w-1", "w-2"]
    assert out[-1] == "3 shown of 3 matching"


def test_instances_filters_and_prints_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["instances", APP, "--failing", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    assert document["total"] == 1
    (row,) = document["items"]
    assert (row["instance"], row["failures"], row["last_error"]) == ("w-2", 2, "Boom: no")
    assert row["tags"] == {"team": "ops"}
    assert main(["instances", APP, "--tag", "team=ops", "--status", "finished"]) == 0
    assert capsys.readouterr().out.splitlines() == ["no instance matches", "0 shown of 0 matching"]
    assert main(["instances", APP, "--limit", "1", "--recent"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[1] == "w-2"  # the most recently updated
    assert out[-1] == "1 shown of 3 matching"


def test_instances_sort_by_creation_or_update(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def touch_the_first() -> None:  # w-0: created first, now updated last
        async with make_runtime(db) as runtime:
            key = InstanceKey(runtime.workflow.name, "w-0")
            await runtime.store.update(key, "awaiting", None, {}, runtime.clock.now())

    asyncio.run(touch_the_first())

    def listed(*options: str) -> tuple[list[str], list[str]]:
        assert main(["instances", APP, *options]) == 0
        header, *rows, _ = capsys.readouterr().out.splitlines()
        return header.split(), [row.split()[1] for row in rows]

    header, ids = listed()
    assert (header[3], ids) == ("updated", ["w-1", "w-2", "w-0"])
    assert listed("--sort", "updated", "--recent")[1] == ["w-0", "w-2", "w-1"]
    header, ids = listed("--sort", "created")
    assert (header[3:5], ids) == (["created", "updated"], ["w-0", "w-1", "w-2"])
    assert listed("--sort", "created", "--recent")[1] == ["w-2", "w-1", "w-0"]
    assert listed("--sort", "created", "--limit", "1", "--offset", "1")[1] == ["w-1"]
    assert main(["instances", APP, "--sort", "created", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [row["instance"] for row in document["items"]] == ["w-0", "w-1", "w-2"]
    with pytest.raises(SystemExit):  # not a sort
        main(["instances", APP, "--sort", "name"])


def test_bad_arguments_are_refused(db: Path) -> None:
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        main(["instances", APP, "--tag", "team"])
    with pytest.raises(SystemExit, match="no runtime for a workflow named 'Nope'"):
        main(["instances", APP, "--workflow", "Nope"])
    with pytest.raises(SystemExit):  # argparse: not a status
        main(["instances", APP, "--status", "sleeping"])


def test_show_prints_one_instance(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", APP, "w-1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Wakeup / w-1\n")
    assert "  status:       awaiting\n" in out
    assert '  state:        {"state": {"sent_by": 0}, "type": "Note"}\n' in out
    assert "[timer] Wait A Second" in out
    assert "journal (1 events):\n  #1 " in out
    assert "workflows4py.TimerStarted" in out
    assert main(["show", APP, "w-2"]) == 0
    assert "  failures:     2 in a row: Boom: no\n" in capsys.readouterr().out


def test_show_json_and_a_missing_instance(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", APP, "w-0", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["registry"]["status"] == "awaiting"
    assert [e["type"] for e in shown["journal"]] == ["workflows4py.TimerStarted"]
    assert shown["journal"][0]["data"]["timer"] == "Wait A Second"
    assert main(["show", APP, "nope"]) == 1
    assert "no instance 'nope'" in capsys.readouterr().err


# -- rows that do not decode ---------------------------------------------------------------------


def pull_requests() -> DurableRuntime[Any, Any]:
    """The app of the tests below: pull requests on the database named by BACKEND_ENV."""
    kind, _, where = os.environ[BACKEND_ENV].partition(":")
    if kind == "sqlite":
        return Backend("sqlite", path=Path(where)).runtime()
    return Backend("postgres", dsn=dsn(), schema=where).runtime()


@pytest.fixture(params=["sqlite", "postgres"])
def prs(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """Pull requests good-1, bad, good-2 awaiting review, on each backend."""
    with backend_for(request.param, tmp_path) as backend:
        monkeypatch.setenv(BACKEND_ENV, backend.spec)
        asyncio.run(populate(backend))
        yield backend


def _corrupt(backend: Backend, name: str) -> None:
    statement = CASES[name].statement(backend.kind)
    assert statement is not None
    backend.execute(statement)


def _one_error_line(err: str, *parts: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("name", ["tags-not-an-object", "updated-at-wrong-type"])
def test_instances_lists_the_good_rows_and_reports_the_bad_one(
    prs: Backend, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _corrupt(prs, name)
    assert main(["instances", PR_APP]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[1] for line in lines[1:3]] == ["good-1", "good-2"]
    assert lines[-1] == "2 shown of 3 matching; 1 unreadable (reported on stderr)"
    line = _one_error_line(err, "workflows4py instances: DecodeError: ", "instance 'bad'")
    assert ": instances." in line
    # the same with --json: the good rows on stdout, the same line on stderr
    assert main(["instances", PR_APP, "--json"]) == 1
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert [row["instance"] for row in document["items"]] == ["good-1", "good-2"]
    assert document["total"] == 3
    assert _one_error_line(err) == line


@pytest.mark.parametrize("name", ["data-not-json", "unknown-type", "recorded-at-wrong-type"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_show_of_a_journal_row_that_does_not_decode_is_one_line_naming_it(
    prs: Backend, name: str, as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    _corrupt(prs, name)
    before = prs.dump()
    assert main(["show", PR_APP, BAD, *(["--json"] if as_json else [])]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    _one_error_line(err, "workflows4py show: DecodeError: ", "instance 'bad'", "event #2")
    assert prs.dump() == before
    # the others show as before, and the registry lists every instance
    assert main(["show", PR_APP, "good-1"]) == 0
    assert '  state:        {"state": {"commit": ' in capsys.readouterr().out
    assert main(["instances", PR_APP]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 shown of 3 matching"


def test_show_of_a_registry_row_that_does_not_decode(
    prs: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    _corrupt(prs, "tags-not-strings")
    assert main(["show", PR_APP, BAD]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    _one_error_line(err, "DecodeError: ", "instance 'bad'", "instances.tags")


def test_a_store_that_fails_is_one_line_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is not an SQLite file, it is just text" * 100)
    monkeypatch.setenv(BACKEND_ENV, f"sqlite:{path}")
    for argv in (["instances", PR_APP], ["show", PR_APP, "pr-1", "--json"]):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == ""
        _one_error_line(err, f"workflows4py {argv[0]}: ", "Error: ")


def test_the_real_command_exits_1_without_a_traceback(prs: Backend) -> None:
    _corrupt(prs, "data-wrong-shape")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")])}
    done = subprocess.run(
        [sys.executable, "-m", "workflows4py", "show", PR_APP, BAD],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    _one_error_line(done.stderr, "DecodeError: ", "instance 'bad'", "event #2")


def test_instances_counts_up_to_its_count_limit_and_says_when_there_are_more(db: Path) -> None:
    """The total is counted up to ``--count-limit`` past ``--offset`` (a count walks every
    match, which at millions of rows costs more than the page), and says ``N+`` when the
    count stopped there; in the real command, a subprocess."""
    paths = [str(ROOT / "tests"), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}

    def instances(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "workflows4py", "instances", APP, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert instances("--limit", "1").splitlines()[-1] == "1 shown of 3 matching"
    assert instances("--limit", "1", "--count-limit", "2").splitlines()[-1] == (
        "1 shown of 2+ matching"
    )
    assert instances("--limit", "1", "--count-limit", "3").splitlines()[-1] == (
        "1 shown of 3 matching"
    )
    # past the offset: 1 skipped, then up to 1 more counted
    assert instances("--offset", "1", "--count-limit", "1").splitlines()[-1] == (
        "2 shown of 2+ matching"
    )
    assert instances("--count-limit", "0").splitlines()[-1] == "3 shown of 0+ matching"
    document = json.loads(instances("--json", "--count-limit", "2"))
    assert (len(document["items"]), document["total"], document["exact"]) == (3, 2, False)
    document = json.loads(instances("--json"))
    assert (document["total"], document["exact"]) == (3, True)
