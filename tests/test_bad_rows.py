"""Rows corrupted behind the library's back, on SQLite and PostgreSQL, through the public API.

Whoever can write to the database can store what the library never writes: a payload that
is not JSON or not of the event's shape, an unknown type tag, an instant of the wrong type
(SQLite keeps any value in any column) or out of Python's range (PostgreSQL's 'infinity'),
registry tags that are not an object of strings, a garbage snapshot. Each case corrupts
the row of one instance, ``bad``, among good ones, and checks that:

- a journal row that does not decode is a DecodeError naming the instance and the event,
  from every read (query_state, get_events, deliver_signal; get_journal too when the row
  itself does not load, while a payload that is not JSON is returned as stored);
- a registry row that does not decode is left out of a search page and reported in
  ``Page.errors``, the rest of the page returned;
- a snapshot row that does not decode is ignored: the state is the journal's replay;
- a failed operation writes nothing, and the other instances keep working.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg import fresh_schema, require_postgres

from workflows4py import (
    DecodeError,
    DurableRuntime,
    InMemoryRuntime,
    PostgresRuntime,
    SqliteRuntime,
)
from workflows4py.examples import pull_request as pr
from workflows4py.stores import InstanceKey, SearchQuery
from workflows4py.testing import TestClock

__all__ = ["CASES", "Backend", "Case", "backend_for", "populate"]

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
GOOD = ("good-1", "good-2")
BAD = "bad"
IDS = ("good-1", BAD, "good-2")  # created in this order: the bad one in the middle
BAD_KEY = InstanceKey(pr.PullRequest.name, BAD)


@dataclass
class Backend:
    """One database (a SQLite file or a PostgreSQL schema) and raw SQL access to it."""

    kind: str  # "sqlite" or "postgres"
    path: Path | None = None
    dsn: str = ""
    schema: str = ""

    def runtime(self, **options: Any) -> DurableRuntime[pr.PRState, pr.PREvent]:
        """A new runtime (an empty cache) on this database, for the pull-request workflow."""
        options.setdefault("clock", TestClock(T0))
        if self.kind == "sqlite":
            assert self.path is not None
            return SqliteRuntime(pr.PullRequest, self.path, initial_state=pr.Empty(), **options)
        return PostgresRuntime(
            pr.PullRequest,
            self.dsn,
            schema=self.schema,
            initial_state=pr.Empty(),
            max_connections=2,
            **options,
        )

    def table(self, name: str) -> str:
        if self.kind == "sqlite":
            return name
        return '"' + self.schema.replace('"', '""') + '".' + name

    def _sql(self, statement: str) -> str:
        for name in ("journal", "instances", "snapshots"):
            statement = statement.replace("{" + name + "}", self.table(name))
        return statement

    def execute(self, statement: str) -> None:
        """Run raw SQL; ``{journal}``, ``{instances}``, ``{snapshots}`` name the tables."""
        statement = self._sql(statement)
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.path)  # type: ignore[arg-type]
            try:
                conn.executescript(statement)
                conn.commit()
            finally:
                conn.close()
            return
        with psycopg.connect(self.dsn, autocommit=True) as pg:
            pg.execute(statement.encode())

    def dump(self) -> list[tuple[str, ...]]:
        """Every row of the journal, registry and snapshots, as text (so any value loads)."""
        rows: list[tuple[str, ...]] = []
        for name, order in (
            ("journal", "workflow, instance_id, sequence"),
            ("instances", "workflow, instance_id"),
            ("snapshots", "workflow, instance_id"),
        ):
            table = self.table(name)
            if self.kind == "sqlite":
                conn = sqlite3.connect(self.path)  # type: ignore[arg-type]
                try:
                    found = conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                finally:
                    conn.close()
                rows += [(name, *map(repr, row)) for row in found]
            else:
                with psycopg.connect(self.dsn, autocommit=True) as pg:
                    query = f"SELECT t::text FROM {table} AS t ORDER BY {order}"
                    rows += [(name, row[0]) for row in pg.execute(query.encode()).fetchall()]
        return rows

    @property
    def spec(self) -> str:
        """How an app module finds this database again: ``sqlite:PATH``, ``postgres:SCHEMA``."""
        return f"sqlite:{self.path}" if self.kind == "sqlite" else f"postgres:{self.schema}"


@contextmanager
def backend_for(kind: str, tmp_path: Path) -> Iterator[Backend]:
    """A fresh database of ``kind`` (PostgreSQL: skipped unless a server is reachable)."""
    if kind == "sqlite":
        yield Backend("sqlite", path=tmp_path / "workflows.db")
        return
    dsn = require_postgres()
    with fresh_schema(dsn) as schema:
        yield Backend("postgres", dsn=dsn, schema=schema)


async def populate(backend: Backend, **options: Any) -> None:
    """Three pull requests awaiting review: events #1 Created, #2 PipelineFinished."""
    async with backend.runtime(**options) as runtime:
        for instance_id in IDS:
            instance = await runtime.create_instance(instance_id)
            await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))


@dataclass(frozen=True)
class Case:
    """A corruption of ``bad``'s rows: SQL per backend (None: impossible there)."""

    what: str  # "payload" (the journal row loads, its JSON does not decode), "row"
    # (the journal row does not load), "registry" or "snapshot"
    sqlite: str | None
    postgres: str | None
    sequence: int | None = 2  # the event named by the error

    def statement(self, kind: str) -> str | None:
        return self.sqlite if kind == "sqlite" else self.postgres


def _event(assignment: str) -> str:
    return f"UPDATE {{journal}} SET {assignment} WHERE instance_id = '{BAD}' AND sequence = 2"


def _registry(assignment: str) -> str:
    return f"UPDATE {{instances}} SET {assignment} WHERE instance_id = '{BAD}'"


def _snapshot(assignment: str) -> str:
    return f"UPDATE {{snapshots}} SET {assignment} WHERE instance_id = '{BAD}'"


CASES: dict[str, Case] = {
    # the payload: text that is not JSON, JSON of another shape, a type tag nobody declares
    "data-not-json": Case(
        "payload", _event("data = '{\"results\": tru'"), _event("data = '{\"results\": tru'")
    ),
    "data-wrong-shape": Case("payload", _event("data = '[1, 2]'"), _event("data = '[1, 2]'")),
    "data-wrong-field": Case(
        "payload", _event("data = '{\"results\": 5}'"), _event("data = '{\"results\": 5}'")
    ),
    "unknown-type": Case("payload", _event("type = 'Nope'"), _event("type = 'Nope'")),
    # the row itself: an instant that is not one (SQLite: TEXT; PostgreSQL: out of range),
    # a payload that is not text (SQLite: a BLOB)
    "recorded-at-wrong-type": Case(
        "row",
        _event("recorded_at = 'yesterday'"),
        _event("recorded_at = 'infinity'"),
    ),
    "recorded-at-out-of-range": Case(
        "row",
        _event("recorded_at = 9223372036854775807"),  # microseconds: year 294247
        _event("recorded_at = '10000-01-01'"),
    ),
    "data-not-text": Case("row", _event("data = x'00ff'"), None),
    # the registry row
    "tags-not-json": Case("registry", _registry("tags = 'not json'"), None, None),
    "tags-not-an-object": Case(
        "registry", _registry("tags = '[1, 2]'"), _registry("tags = '[1, 2]'"), None
    ),
    "tags-not-strings": Case(
        "registry", _registry("tags = '{\"a\": 1}'"), _registry("tags = '{\"a\": 1}'"), None
    ),
    "updated-at-wrong-type": Case(
        "registry", _registry("updated_at = 'soon'"), _registry("updated_at = 'infinity'"), None
    ),
    # the snapshot row
    "snapshot-garbage": Case(
        "snapshot", _snapshot("data = 'garbage'"), _snapshot("data = 'garbage'"), None
    ),
    "snapshot-not-json-object": Case(
        "snapshot", _snapshot("data = '[1, 2]'"), _snapshot("data = '[1, 2]'"), None
    ),
    "snapshot-bad-sequence": Case(
        "snapshot", _snapshot("sequence = 'x'"), _snapshot("sequence = -1"), None
    ),
    "snapshot-ahead-of-journal": Case(
        "snapshot", _snapshot("sequence = 7"), _snapshot("sequence = 7"), None
    ),
    "snapshot-data-not-text": Case("snapshot", _snapshot("data = x'00ff'"), None, None),
}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with backend_for(request.param, tmp_path) as found:
        yield found


def pairs(names: list[str]) -> list[Any]:
    """(backend, case) for each case the backend's column types allow at all (a timestamp
    column of PostgreSQL cannot hold text, say): those are not generated, not skipped."""
    return [
        pytest.param(kind, name, id=f"{kind}-{name}")
        for name in names
        for kind in ("sqlite", "postgres")
        if CASES[name].statement(kind) is not None
    ]


def _corrupt(backend: Backend, name: str) -> Case:
    case = CASES[name]
    statement = case.statement(backend.kind)
    assert statement is not None, f"{name} is not possible on {backend.kind}"
    backend.execute(statement)
    return case


def _journals(dump: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """A store's dump without its registry rows."""
    return [row for row in dump if row[0] != "instances"]


def _names_the_event(error: DecodeError, sequence: int | None) -> None:
    assert (error.workflow, error.instance_id, error.sequence) == (
        pr.PullRequest.name,
        BAD,
        sequence,
    ), str(error)
    assert f"'{BAD}'" in str(error), str(error)
    if sequence is not None:
        assert f"#{sequence}" in str(error), str(error)


async def _good_ones_work(runtime: DurableRuntime[pr.PRState, pr.PREvent]) -> None:
    first = await runtime.get_instance("good-1")
    assert await first.query_state() == pr.Checked("abc", "<Some tests results>")
    await first.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))
    assert await first.query_state() == pr.Merged("abc", "<Some tests results>")
    second = await runtime.get_instance("good-2")
    assert len(await second.get_events()) == 2


JOURNAL_CASES = [n for n, c in CASES.items() if c.what in ("payload", "row")]


@pytest.mark.parametrize(("backend", "name"), pairs(JOURNAL_CASES), indirect=["backend"])
async def test_a_journal_row_that_does_not_decode_names_instance_and_event(
    backend: Backend, name: str
) -> None:
    await populate(backend)
    case = _corrupt(backend, name)
    before = backend.dump()
    async with backend.runtime() as runtime:
        # the registry row is fine: the instance is listed like the others
        page = await runtime.search()
        assert sorted(r.key.instance_id for r in page.records) == sorted(IDS)
        assert (page.total, page.errors) == (3, [])
        instance = await runtime.get_instance(BAD)
        reads = {
            "query_state": instance.query_state,
            "get_events": instance.get_events,
            "get_progress": instance.get_progress,
            "deliver_signal": lambda: instance.deliver_signal(
                pr.review_pr_signal, pr.ReviewRequest(True)
            ),
            "wakeup": instance.wakeup,
        }
        for what, read in reads.items():
            with pytest.raises(DecodeError) as info:
                await read()
            _names_the_event(info.value, case.sequence)
            # reads change nothing; an operation parks the instance (its registry row)
            # and writes nothing else
            assert _journals(backend.dump()) == _journals(before), f"{what} changed a journal"
        record = await runtime.store.get_record(InstanceKey(pr.PullRequest.id, BAD))
        assert record is not None
        assert record.status == "parked"
        assert record.last_error is not None
        assert BAD in record.last_error
        if case.what == "row":
            with pytest.raises(DecodeError) as info:
                await instance.get_journal()
            _names_the_event(info.value, case.sequence)
        else:  # the journal as stored, corrupt payload included: what there is to inspect
            journal = await instance.get_journal()
            assert [e.sequence for e in journal] == [1, 2]
        await _good_ones_work(runtime)


REGISTRY_CASES = [n for n, c in CASES.items() if c.what == "registry"]


@pytest.mark.parametrize(("backend", "name"), pairs(REGISTRY_CASES), indirect=["backend"])
async def test_a_registry_row_that_does_not_decode_is_reported_by_search(
    backend: Backend, name: str
) -> None:
    await populate(backend)
    _corrupt(backend, name)
    before = backend.dump()
    async with backend.runtime() as runtime:
        for descending in (False, True):
            page = await runtime.search(SearchQuery(descending=descending))
            assert sorted(r.key.instance_id for r in page.records) == sorted(GOOD)
            assert page.total == 3
            (error,) = page.errors
            assert isinstance(error, DecodeError)
            _names_the_event(error, None)
        with pytest.raises(DecodeError) as info:
            await runtime.store.get_record(BAD_KEY)
        _names_the_event(info.value, None)
        assert backend.dump() == before
        # the journal is fine: the instance itself reads and runs...
        instance = await runtime.get_instance(BAD)
        assert await instance.query_state() == pr.Checked("abc", "<Some tests results>")
        assert len(await instance.get_journal()) == 2
        await _good_ones_work(runtime)
        # ...and its next operation writes the whole registry row anew
        await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))
        record = await runtime.store.get_record(BAD_KEY)
        assert record is not None
        assert (record.status, record.tags) == ("finished", {})
        page = await runtime.search()
        assert (len(page.records), page.errors) == (3, [])


async def test_instance_ids_skips_a_registry_row_that_does_not_decode(backend: Backend) -> None:
    await populate(backend)
    _corrupt(backend, "tags-not-an-object")
    async with backend.runtime() as runtime:
        assert sorted(await runtime.instance_ids()) == sorted(GOOD)


SNAPSHOT_CASES = [n for n, c in CASES.items() if c.what == "snapshot"]


@pytest.mark.parametrize(("backend", "name"), pairs(SNAPSHOT_CASES), indirect=["backend"])
async def test_a_snapshot_row_that_does_not_decode_is_ignored(backend: Backend, name: str) -> None:
    await populate(backend, snapshot_every=1)
    _corrupt(backend, name)
    async with backend.runtime(snapshot_every=1) as runtime:
        instance = await runtime.get_instance(BAD)
        journal = await instance.get_journal()
        model = await InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty()).restore_instance(
            BAD, journal
        )
        assert await instance.query_state() == await model.query_state()
        assert await instance.get_events() == await model.get_events()
        assert await instance.get_progress() == await model.get_progress()
        calls = pr.CI.calls
        await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))
        assert await instance.query_state() == pr.Merged("abc", "<Some tests results>")
        assert pr.CI.calls == calls  # the replay ran no effect
        await _good_ones_work(runtime)
    async with backend.runtime(snapshot_every=1) as again:  # from whatever is stored now
        instance = await again.get_instance(BAD)
        assert await instance.query_state() == pr.Merged("abc", "<Some tests results>")
        assert len(await instance.get_journal()) == 3


async def test_an_event_under_a_snapshot_that_does_not_decode_is_named_by_get_events(
    backend: Backend,
) -> None:
    # the snapshot at #2 is sound, event #1 under it is not: the state is not taken from it
    await populate(backend, snapshot_every=1)
    backend.execute(
        f"UPDATE {{journal}} SET data = 'not json' WHERE instance_id = '{BAD}' AND sequence = 1"
    )
    async with backend.runtime(snapshot_every=1) as runtime:
        instance = await runtime.get_instance(BAD)
        for read in (instance.get_events, instance.query_state):
            with pytest.raises(DecodeError) as info:
                await read()
            _names_the_event(info.value, 1)
        await _good_ones_work(runtime)
