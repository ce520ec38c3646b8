"""Lifecycle operations across real processes, on SQLite and PostgreSQL: two processes
starting one id at once make one instance with one first signal, and a waiter in this
process sees the result of an operation another process ran."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lifecycle_common import Order, Orders, Paid, Ticket, Tickets
from pg import dsn, fresh_schema, require_postgres

from workflows4py import Runtime, TimerStarted

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the processes meet: a SQLite file, or ``postgres:SCHEMA``."""
    if request.param == "sqlite":
        yield str(tmp_path / "app.db")
        return
    with fresh_schema(require_postgres()) as schema:
        yield f"postgres:{schema}"


def open_runtime(target: str) -> Runtime:
    if target.startswith("postgres:"):
        return Runtime.postgres(dsn(), [Orders, Tickets], schema=target.removeprefix("postgres:"))
    return Runtime.sqlite(target, [Orders, Tickets])


async def other_process(target: str, *args: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "WORKFLOWS4PY_TEST_DB": target,
        "WORKFLOWS4PY_PG_DSN": dsn(),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), str(ROOT / "src")]),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "lifecycle_app.py"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(proc: asyncio.subprocess.Process) -> str:
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def test_two_processes_starting_one_id_at_once_make_one_instance(target: str) -> None:
    async with open_runtime(target) as runtime:  # the schema exists before they race
        at = time.time() + 3  # both have started and opened the database by then
        procs = [await other_process(target, "start-paid", "o-1", str(at)) for _ in range(2)]
        answers = [await finished(proc) for proc in procs]
        assert answers == ["paid 5", "paid 5"]
        assert (await runtime.search()).total == 1
        order = await runtime.get(Orders, "o-1")
        assert [type(e) for e in await order.get_events()] == [Paid, TimerStarted]
        assert await order.query_state() == Order("pen", 1, paid=True)


async def test_a_waiter_sees_the_result_another_process_brings_about(target: str) -> None:
    async with open_runtime(target) as runtime:
        ticket = await runtime.start(Tickets, "t-1")
        proc = await other_process(target, "close", "t-1", str(time.time() + 1))
        final = await ticket.wait_result(timeout=30)
        assert final == Ticket("(no text)", closed=True)
        assert await finished(proc) == "closed"
