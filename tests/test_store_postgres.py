"""The PostgreSQL store against the conformance suite, each test in a fresh schema.

Skipped when no server is reachable (see ``tests/pg.py``), failed instead under
``WORKFLOWS4PY_CI=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

# Assertions in the shared suite get pytest's detailed messages.
from pg import fresh_schema, require_postgres
from store_conformance import KEY, T0, StoreConformance, StoreFactory

from workflows4py._store import InstanceKey, StoreUnavailable
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


async def test_more_callers_than_connections_all_get_one(pg_dsn: str, pg_schema: str) -> None:
    # the store keeps the connections it used for itself; callers waiting for the pool must
    # still get them back
    store = await PostgresStore.open(pg_dsn, schema=pg_schema, max_size=2, connect_timeout=5)
    try:
        keys = [InstanceKey("wf", f"i{n}") for n in range(40)]
        created = await asyncio.gather(*(store.create(k, T0) for k in keys))
        assert all(created)
        assert all(await asyncio.gather(*(store.exists(k) for k in keys)))
    finally:
        await store.close()


async def test_a_connection_killed_by_the_server_is_replaced(pg_dsn: str, pg_schema: str) -> None:
    store = await PostgresStore.open(pg_dsn, schema=pg_schema, max_size=2)
    try:
        await store.create(KEY, T0)
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                "AND query LIKE %s",
                (f"%{pg_schema.split(chr(34))[1]}%instances%",),
            )
            row = await cur.fetchone()
            assert row is not None
            assert row[0] >= 1
        # the warm connection died with its server process: one call may fail, typed...
        with contextlib.suppress(StoreUnavailable):
            await store.exists(KEY)
        # ...and the next ones get a working connection
        assert await store.exists(KEY)
    finally:
        await store.close()


async def test_a_version_1_schema_is_migrated_and_keeps_its_data(
    pg_dsn: str, pg_schema: str
) -> None:
    from psycopg import sql

    from workflows4py._store_postgres import _MIGRATIONS, _SQL

    ident = sql.Identifier(pg_schema)
    version, description, statements = _MIGRATIONS[0]
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL(_SQL["migrations_schema"]).format(s=ident))
        await conn.execute(sql.SQL(_SQL["migrations_table"]).format(s=ident))
        for statement in statements:
            await conn.execute(sql.SQL(statement).format(s=ident))
        await conn.execute(
            sql.SQL(_SQL["migrations_record"]).format(s=ident), (version, description)
        )
        await conn.execute(
            sql.SQL(
                "INSERT INTO {s}.instances (workflow, instance_id, status, created_at, "
                "updated_at, tags) VALUES (%s, %s, 'awaiting', %s, %s, '{{\"k\": \"v\"}}')"
            ).format(s=ident),
            (KEY.workflow, KEY.instance_id, T0, T0),
        )
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    try:
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.tags, record.failures, record.last_error) == (
            "awaiting",
            {"k": "v"},
            0,
            None,
        )
        await store.update(KEY, "awaiting", None, {}, T0, error="boom")
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.failures, record.last_error) == (1, "boom")
    finally:
        await store.close()


async def test_a_role_without_create_privilege_uses_an_existing_schema(
    pg_dsn: str, pg_schema: str
) -> None:
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    owner = await PostgresStore.open(pg_dsn, schema=pg_schema)
    await owner.close()
    role = f"w4p_app_{uuid.uuid4().hex[:8]}"
    ident = sql.Identifier(pg_schema)
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            await admin.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, sql.Identifier(role))
            )
            await admin.execute(
                sql.SQL(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}"
                ).format(ident, sql.Identifier(role))
            )
            app = await PostgresStore.open(make_conninfo(pg_dsn, user=role), schema=pg_schema)
            try:
                assert await app.create(KEY, T0)
                assert await app.exists(KEY)
            finally:
                await app.close()
        finally:
            await admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            await admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
