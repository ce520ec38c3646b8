"""The PostgreSQL store against the conformance suite, each test in a fresh schema.

Skipped when no server is reachable (see ``tests/pg.py``), failed instead under
``WORKFLOWS4PY_CI=1``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

# Assertions in the shared suite get pytest's detailed messages.
from pg import fresh_schema, require_postgres
from store_conformance import KEY, T0, StoreConformance, StoreFactory

from workflows4py._store import StoreUnavailable
from workflows4py._store_postgres import PostgresStore


@pytest.fixture
def pg_dsn() -> str:
    return require_postgres()


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    with fresh_schema(pg_dsn) as schema:
        yield schema


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def new_store(self, pg_dsn: str, pg_schema: str) -> StoreFactory:
        return lambda: PostgresStore(pg_dsn, schema=pg_schema, max_size=4)


async def test_open_initializes(pg_dsn: str, pg_schema: str) -> None:
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    try:
        assert await store.create(KEY, T0)
    finally:
        await store.close()


async def test_unreachable_server_raises_store_unavailable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    start = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            await store.initialize()
        with pytest.raises(StoreUnavailable):
            await store.exists(KEY)
    finally:
        await store.close()
    assert time.monotonic() - start < 10
