"""``workflows4py instances`` and ``workflows4py show``: the registry and one instance, from
the command line (in process, on the SQLite app of tests/worker_app.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from worker_app import DB_ENV, make_runtime

from workflows4py import InstanceKey
from workflows4py._cli import main

APP = "worker_app:runtimes"


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
    row = json.loads(line)
    assert (row["instance"], row["failures"], row["last_error"]) == ("w-2", 2, "Boom: no")
    assert row["tags"] == {"team": "ops"}
    assert main(["instances", APP, "--tag", "team=ops", "--status", "finished"]) == 0
    assert capsys.readouterr().out.splitlines() == ["no instance matches", "0 shown of 0 matching"]
    assert main(["instances", APP, "--limit", "1", "--recent"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[1] == "w-2"  # the most recently updated
    assert out[-1] == "1 shown of 3 matching"


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
    assert "  state:        Note(sent_by=0)\n" in out
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
