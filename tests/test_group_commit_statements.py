"""A group commit of registry writes (create with a lease, update, update and release) must
answer and write exactly what each write alone does, in every situation an instance can be
in. PostgreSQL writes such a batch as one multi-row statement per kind; SQLite runs the
writes one after another in one transaction, a write of several statements in a savepoint
of its own (which a create that finds the lease taken rolls back).

The same situations are set up in two schemas (two files); the same operations then run at
once over a store with group commit and one by one over a store without; their answers and
the rows they leave (records, journals, leases, claims) must be the same, and the batch
must have gone together (not failed, then been written item by item).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from group_commit_app import registry_group
from pg import fresh_schema, require_postgres

from workflows4py.stores import (
    InstanceKey,
    NewEvent,
    PostgresStore,
    RegistryUpdate,
    SqliteStore,
    Store,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(seconds=10)  # when the operations run: a 1 s lease taken at T0 lapsed
SOON = T0 + timedelta(seconds=5)  # due at T1
LATER = T0 + timedelta(hours=1)  # not due at T1
EV = NewEvent("started", '{"n":1}', T0)

# each situation an instance is set up in, by name: a key per name and per operation
SITUATIONS = (
    "held",
    "other",
    "free",
    "claimed",
    "absent",
    "lapsed",
    "journal_only",
    "journal_leased",
)


def k(situation: str, n: int) -> InstanceKey:
    """The key of instance ``n`` in ``situation``: its operation (``n % 4``) first, so that
    the operations of one kind follow each other in key order, as a batch writes them."""
    return InstanceKey("wf", f"{n % 4}-{situation}-{n:02d}")


async def set_up(store: Store, count: int) -> None:
    """Every situation, ``count`` instances of each, one write at a time."""
    for n in range(count):
        await store.create_leased(k("held", n), "me", 30.0, T0, [EV])
        await store.create_leased(k("other", n), "other", 30.0, T0)
        await store.create_leased(k("free", n), "me", 30.0, T0)
        await store.release(k("free", n), "me")
        await store.create(k("claimed", n), T0, SOON)
        await store.create_leased(k("lapsed", n), "other", 1.0, T0)
        await store.append(k("journal_only", n), 0, [EV])
        await store.append(k("journal_leased", n), 0, [EV])
        await store.acquire(k("journal_leased", n), "other", 30.0, 0.0, T0)
    claimed = await store.claim_due(T0 + timedelta(seconds=6), 1000, 60.0)
    assert {c.key for c in claimed} == {k("claimed", n) for n in range(count)}
    # an unregistered key whose lease another owner holds, and one whose lease lapsed
    for n in range(count):
        await store.acquire(k("absent", n + 50), "other", 30.0, 0.0, T0)
        await store.acquire(k("absent", n + 60), "other", 1.0, 0.0, T0)
        await store.acquire(k("absent", n + 80), "other", 10.0, 0.0, T0)  # lapses at T1


def operations(store: Store, count: int) -> list[Callable[[], Awaitable[Any]]]:
    """One operation per (situation, kind, variant), on distinct keys."""
    ops: list[Callable[[], Awaitable[Any]]] = []
    for n in range(count):
        for s in SITUATIONS:
            key = k(s, n)
            if n % 4 == 0:  # update and release: done, a timer, the claimed instant, an error
                wakeup = (None, LATER, SOON, None)[SITUATIONS.index(s) % 4]
                error = "boom" if s in ("held", "claimed") else None
                update = RegistryUpdate("awaiting", wakeup, {"t": s}, T1, error)
                ops.append(partial(store.release, key, "me", update))
            elif n % 4 == 1:  # update alone, keeping or counting failures
                ops.append(
                    partial(
                        store.update,
                        key,
                        "running",
                        SOON if s == "claimed" else LATER if s == "free" else None,
                        {"u": s},
                        T1,
                        error="bad" if s == "other" else None,
                        keep_failures=s in ("held", "claimed"),
                    )
                )
            elif n % 4 == 2:  # create with a lease and the first events
                ops.append(partial(store.create_leased, key, "me", 30.0, T1, [EV, EV]))
            else:  # create with a lease, no events
                ops.append(partial(store.create_leased, key, "me", 30.0, T1))
        for m in (50, 60, 70, 80):
            ops.append(partial(store.create_leased, k("absent", n + m), "me", 30.0, T1, [EV]))
    return ops


def outcome(result: object) -> object:
    if isinstance(result, BaseException):
        return (type(result).__name__, str(result))
    return result


async def observe(store: Store, keys: list[InstanceKey]) -> dict[str, Any]:
    """What the rows say about each key, read through the store."""
    seen: dict[str, Any] = {}
    for key in keys:
        record = await store.get_record(key)
        journal = [(e.sequence, e.type) for e in await store.read(key)]
        fields = None
        if record is not None:
            fields = (
                record.status,
                record.next_wakeup,
                record.tags,
                record.failures,
                record.last_error,
            )
        seen[key.instance_id] = (fields, journal)
    # who holds a lease: a probe owner takes the free ones without waiting
    probes = await asyncio.gather(
        *(store.acquire(key, "probe", 30.0, 0.0, T1) for key in keys), return_exceptions=True
    )
    for key, probe in zip(keys, probes, strict=True):
        seen[key.instance_id] += (type(probe).__name__,)
    claims = await store.claim_due(T1, 1000, 60.0)
    seen["claims"] = sorted(c.key.instance_id for c in claims)
    return seen


@asynccontextmanager
async def a_store(backend: str, batched: bool, tmp_path: Path) -> AsyncIterator[Store]:
    """A new, initialized store on ``backend``, with group commit on or off."""
    store: PostgresStore | SqliteStore
    if backend == "sqlite":
        store = SqliteStore(tmp_path / f"batched-{batched}.db", group_commit=batched)
        try:
            await store.initialize()
            yield store
        finally:
            await store.close()
        return
    dsn = require_postgres()
    with fresh_schema(dsn) as schema:
        store = PostgresStore(dsn, schema=schema, group_commit=batched)
        try:
            await store.initialize()
            yield store
        finally:
            await store.close()


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_a_batch_of_registry_statements_writes_what_each_alone_does(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    count = 8
    results: dict[bool, tuple[list[object], dict[str, Any]]] = {}
    for batched in (False, True):
        async with a_store(backend, batched, tmp_path) as store:
            await set_up(store, count)
            ops = operations(store, count)
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="workflows4py.stores"):
                if batched:
                    before = registry_group(store).batches
                    answers = await asyncio.gather(*(op() for op in ops), return_exceptions=True)
                    assert registry_group(store).batches > before  # they did go together
                else:
                    answers = []
                    for op in ops:
                        try:
                            answers.append(await op())
                        except Exception as e:
                            answers.append(e)
            assert not [r for r in caplog.records if "writing each alone" in r.message]
            keys = sorted(
                {k(s, n) for s in SITUATIONS for n in range(count + 90)},
                key=lambda key: key.instance_id,
            )
            results[batched] = ([outcome(a) for a in answers], await observe(store, keys))
    alone, together = results[False], results[True]
    assert together[0] == alone[0]  # the same answers, in the same order
    assert together[1] == alone[1]  # the same rows
    kinds = {type(a).__name__ if isinstance(a, tuple) else repr(a) for a in alone[0]}
    assert len(kinds) >= 3  # the situations did differ: True, False, None and errors
