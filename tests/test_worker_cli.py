"""The ``workflows4py worker`` command, run for real: it completes a due timer, then exits
cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from worker_app import DB_ENV, Note, Sent, Wakeup, make_runtime

from workflows4py import DurableRuntime
from workflows4py.cli import load_runtimes
from workflows4py.stores import InstanceKey

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "workflows4py"


def commands() -> list[object]:
    module = [sys.executable, "-m", "workflows4py"]
    script = pytest.param(
        [str(SCRIPT)],
        id="script",
        marks=pytest.mark.skipif(not SCRIPT.exists(), reason="workflows4py script not installed"),
    )
    return [pytest.param(module, id="python-m"), script]


@pytest.mark.parametrize("command", commands())
async def test_worker_completes_a_due_timer_then_stops_on_sigterm(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "workflows.db"
    async with make_runtime(db) as runtime:
        instance = await runtime.create_instance("w-1")
        assert await instance.status() == "awaiting"
        assert await instance.next_wakeup() is not None
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = await _spawn(command, db, stdout=out, stderr=out)
    try:
        async with make_runtime(db) as runtime:
            instance = await runtime.get_instance("w-1")
            key = InstanceKey(Wakeup.name, "w-1")
            deadline = time.monotonic() + 20
            # the journal first, then the registry row (written after the events)
            while (row := await runtime.store.get_record(key)) is None or row.status != "finished":
                assert proc.returncode is None, log.read_text()
                assert time.monotonic() < deadline, f"not completed; log:\n{log.read_text()}"
                await asyncio.sleep(0.05)
            assert row.next_wakeup is None
            assert await instance.status() == "finished"
            assert await instance.query_state() == Note(proc.pid)  # the worker ran the effect
            assert (await instance.get_events())[-1] == Sent(proc.pid)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=5)
        assert code == 0, log.read_text()
        assert time.monotonic() - start < 5
        text = log.read_text()
        assert "worker started for Wakeup" in text
        assert "worker stopped" in text
        assert "Traceback" not in text, text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _spawn(
    command: list[str], db: Path, *options: str, stdout: IO[bytes], stderr: IO[bytes]
) -> asyncio.subprocess.Process:
    """The worker command on the app of tests/worker_app.py over ``db``."""
    env = {
        **os.environ,
        DB_ENV: str(db),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
    }
    app = "tests.worker_app:runtimes"
    return await asyncio.create_subprocess_exec(
        *command,
        "worker",
        app,
        "--poll-interval",
        "0.1",
        *options,
        cwd=ROOT,
        env=env,
        stdout=stdout,
        stderr=stderr,
    )


async def test_worker_json_logs_json_lines_and_prints_one_object_when_it_stops(
    tmp_path: Path,
) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = await _spawn(
            [sys.executable, "-m", "workflows4py"],
            tmp_path / "w.db",
            "--json",
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 20
        while "worker started" not in err.read_text():
            assert proc.returncode is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=5) == 0, err.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    records = [json.loads(line) for line in err.read_text().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert [r["message"] for r in records if r["message"] == "worker stopped"]
    assert json.loads(out.read_text()) == {"stopped": True, "workflows": ["Wakeup"]}


async def test_load_runtimes_accepts_a_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DB_ENV, str(tmp_path / "w.db"))
    (runtime,) = await load_runtimes("worker_app:runtimes")
    assert isinstance(runtime, DurableRuntime)
    assert runtime.workflow.name == "Wakeup"
    await runtime.close()


@pytest.mark.parametrize("target", ["worker_app", ":runtimes", "worker_app:"])
async def test_load_runtimes_refuses_a_malformed_target(target: str) -> None:
    with pytest.raises(SystemExit, match="MODULE:ATTRIBUTE"):
        await load_runtimes(target)


async def test_load_runtimes_refuses_what_is_not_a_runtime() -> None:
    with pytest.raises(SystemExit, match="must give durable runtimes"):
        await load_runtimes("worker_app:DB_ENV")
