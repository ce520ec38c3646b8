"""The durable runtime over PostgreSQL (a fresh schema per test), against the runtime
conformance suite, including deliveries from several OS processes.

Skipped when no server is reachable (see ``tests/pg.py``), failed instead under
``WORKFLOWS4PY_CI=1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

# The shared suite's assertions get pytest's detailed messages.
pytest.register_assert_rewrite("runtime_conformance")

from pg import fresh_schema, require_postgres  # noqa: E402
from runtime_conformance import (  # noqa: E402
    T0,
    ProcessConformance,
    RuntimeConformance,
    St,
    StoreFactory,
    StoreSpec,
    Timed,
)

from workflows4py import PostgresRuntime, Worker  # noqa: E402
from workflows4py.stores import PostgresStore, SearchQuery  # noqa: E402
from workflows4py.testing import TestClock  # noqa: E402


@pytest.fixture
def pg_dsn() -> str:
    return require_postgres()


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    with fresh_schema(pg_dsn) as schema:
        yield schema


class TestDurablePostgres(RuntimeConformance, ProcessConformance):
    @pytest.fixture
    def new_store(self, pg_dsn: str, pg_schema: str) -> StoreFactory:
        return lambda: PostgresStore(pg_dsn, schema=pg_schema, max_size=4)

    @pytest.fixture
    def store_spec(self, pg_dsn: str, pg_schema: str) -> StoreSpec:
        return ("postgres", pg_dsn, pg_schema)


async def test_postgres_runtime_keeps_instances_in_its_schema(pg_dsn: str, pg_schema: str) -> None:
    clock = TestClock(T0)
    options: dict[str, Any] = {"schema": pg_schema, "max_connections": 2, "clock": clock}
    async with PostgresRuntime(Timed, pg_dsn, initial_state=St(0), **options) as runtime:
        await runtime.create_instance("t-1")
    async with PostgresRuntime(Timed, pg_dsn, initial_state=St(0), **options) as runtime:
        instance = await runtime.get_instance("t-1")
        assert await instance.query_state() == St(1, ("a",))
        assert await runtime.instance_ids() == ["t-1"]


async def test_a_worker_runs_more_instances_at_once_than_the_pool_has_connections(
    pg_dsn: str, pg_schema: str
) -> None:
    # an operation holds a connection only while one of its statements runs: 16 at once
    # over a pool of 2 all finish
    clock = TestClock(T0)
    options: dict[str, Any] = {"schema": pg_schema, "max_connections": 2, "clock": clock}
    async with PostgresRuntime(Timed, pg_dsn, initial_state=St(0), **options) as runtime:
        for n in range(40):
            await runtime.create_instance(f"t-{n:02}")
        clock.advance(timedelta(hours=2))
        ran: list[bool] = []
        worker = Worker(
            [runtime], concurrency=16, prefetch=4, after_run=lambda k, ok: ran.append(ok)
        )
        assert await worker.run_once() == 40
        page = await runtime.search(SearchQuery(limit=100))
        assert {r.status for r in page.records} == {"finished"}
        assert len(page.records) == 40
        assert ran == [True] * 40
