"""Rows of the SQLite store that do not hold what the schema says: a DecodeError naming the row.

SQLite does not enforce column types, so a TEXT can sit where an INTEGER of microseconds is
expected (written by a tool, a hand-made fix, a damaged file). Whatever reads such a row
raises DecodeError with the workflow, the instance id and, for an event or a snapshot, the
sequence number: never a bare TypeError or ValueError. A search reports the row in
``Page.errors`` and returns the rest of the page.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from store_conformance import KEY, T0, event

from workflows4py import DecodeError
from workflows4py.stores import InstanceKey, SearchQuery, Snapshot, SqliteStore

LATER = T0.replace(year=T0.year + 1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "w.db")
    await store.initialize()
    await store.create(KEY, T0)
    await store.append(KEY, 0, [event(1), event(2), event(3)])
    await store.save_snapshot(KEY, Snapshot(2, "{}"))
    await store.update(KEY, "awaiting", None, {"team": "ops"}, T0)
    yield store
    await store.close()


def _damage(store: SqliteStore, sql: str, *params: Any) -> None:
    """Change the file as something other than workflows4py would."""
    conn = sqlite3.connect(store._file, isolation_level=None)
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        assert conn.execute(sql, params).rowcount >= 1
    finally:
        conn.close()


def _names(error: DecodeError, workflow: str, instance_id: str, sequence: int | None) -> None:
    assert (error.workflow, error.instance_id, error.sequence) == (workflow, instance_id, sequence)


# -- the journal ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("recorded_at", "yesterday", "TEXT 'yesterday'"),
        ("recorded_at", 1.5, "REAL 1.5"),
        ("data", b"{}", "BLOB b'{}'"),
        ("type", b"Ev", "BLOB b'Ev'"),
    ],
)
async def test_a_journal_row_of_the_wrong_type(
    store: SqliteStore, column: str, value: object, shown: str
) -> None:
    _damage(store, f"UPDATE journal SET {column} = ? WHERE sequence = 2", value)
    with pytest.raises(DecodeError) as info:
        await store.read(KEY)
    _names(info.value, KEY.workflow, KEY.instance_id, 2)
    assert info.value.path == f"journal.{column}"
    assert str(info.value).startswith(
        f"instance {KEY.instance_id!r} of {KEY.workflow}, event #2: journal.{column}: "
        f"the stored journal row holds {shown}, expected "
    )
    assert [e.sequence for e in await store.read(KEY, after=2)] == [3]  # the others still read


async def test_an_instant_out_of_range(store: SqliteStore) -> None:
    _damage(store, "UPDATE journal SET recorded_at = ? WHERE sequence = 3", 2**62)
    with pytest.raises(DecodeError, match="too far from 1970 to be an instant") as info:
        await store.read(KEY, after=1)
    _names(info.value, KEY.workflow, KEY.instance_id, 3)


async def test_a_sequence_that_is_not_a_number(store: SqliteStore) -> None:
    _damage(store, "UPDATE journal SET sequence = '3x' WHERE sequence = 3")
    with pytest.raises(DecodeError) as info:
        await store.read(KEY)
    _names(info.value, KEY.workflow, KEY.instance_id, None)
    assert "journal row after event #2 holds TEXT '3x', expected an INTEGER" in str(info.value)


# -- the registry --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("tags", "{oops", "holds TEXT '{oops', which is not JSON"),
        ("tags", "[1, 2]", "expected a JSON object of strings"),
        ("tags", '{"team": 7}', "expected a JSON object of strings"),
        ("created_at", "monday", "holds TEXT 'monday', expected an INTEGER (microseconds"),
        ("next_wakeup", "soon", "holds TEXT 'soon', expected an INTEGER"),
        ("failures", "many", "holds TEXT 'many', expected an INTEGER"),
        ("status", "sleeping", "holds TEXT 'sleeping', expected one of 'running'"),
    ],
)
async def test_a_registry_row_that_does_not_decode(
    store: SqliteStore, column: str, value: str, problem: str
) -> None:
    others = [InstanceKey(KEY.workflow, "o-0"), InstanceKey(KEY.workflow, "o-9")]
    for key in others:
        await store.create(key, T0)
    _damage(store, f"UPDATE instances SET {column} = ? WHERE instance_id = ?", value, "o-1")

    with pytest.raises(DecodeError, match=re.escape(problem)) as info:
        await store.get_record(KEY)
    _names(info.value, KEY.workflow, KEY.instance_id, None)
    assert info.value.path == f"instances.{column}"

    page = await store.search(SearchQuery())
    assert sorted(r.key for r in page.records) == others  # the rest of the page
    assert page.total == 3  # the bad row still counts
    (error,) = page.errors
    assert str(error) == str(info.value)


async def test_a_registry_key_that_is_not_text(store: SqliteStore) -> None:
    _damage(store, "UPDATE instances SET instance_id = x'6f2d31', status = 'running'")
    page = await store.search(SearchQuery())
    assert (page.records, page.total) == ([], 1)
    _names(page.errors[0], KEY.workflow, "b'o-1'", None)
    with pytest.raises(DecodeError, match=r"instances.instance_id: .* holds BLOB"):
        await store.stale(LATER, 10)


async def test_a_wakeup_of_the_wrong_type(store: SqliteStore) -> None:
    # TEXT sorts after every number: next_wakeup finds it when no number is later
    _damage(store, "UPDATE instances SET next_wakeup = 'noon'")
    with pytest.raises(DecodeError, match=r"instances.next_wakeup: .* holds TEXT 'noon'") as info:
        await store.next_wakeup(T0)
    _names(info.value, KEY.workflow, KEY.instance_id, None)


async def test_a_bad_due_row_does_not_stop_the_others_from_being_claimed(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    good = InstanceKey(KEY.workflow, "o-0")
    await store.create(good, T0, next_wakeup=T0)
    other = InstanceKey(KEY.workflow, "o-2")
    await store.create(other, T0, next_wakeup=T0)
    # a wakeup of the wrong type: claimed as due now (its operation writes a sound one)
    _damage(store, "UPDATE instances SET next_wakeup = 0.5 WHERE instance_id = 'o-1'")
    # a key that is not text: skipped, with a warning naming the row
    _damage(store, "UPDATE instances SET instance_id = x'6f2d32' WHERE instance_id = 'o-2'")
    claims = await store.claim_due(LATER, 10, 30)
    assert sorted(c.key.instance_id for c in claims) == ["o-0", "o-1"]
    assert next(c for c in claims if c.key.instance_id == "o-1").wakeup_at == LATER
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("due wakeup skipped" in m and "BLOB" in m for m in warnings), warnings


# -- snapshots and leases ------------------------------------------------------------------


async def test_a_snapshot_row_of_the_wrong_type(store: SqliteStore) -> None:
    _damage(store, "UPDATE snapshots SET data = x'00'")
    with pytest.raises(DecodeError, match=r"snapshots.data: .* holds BLOB b'\\x00'") as info:
        await store.load_snapshot(KEY)
    _names(info.value, KEY.workflow, KEY.instance_id, 2)
    _damage(store, "UPDATE snapshots SET sequence = 'two', data = '{}'")
    with pytest.raises(DecodeError, match=r"snapshots.sequence: .* holds TEXT 'two'") as info:
        await store.load_snapshot(KEY)
    _names(info.value, KEY.workflow, KEY.instance_id, None)


async def test_a_lease_row_of_the_wrong_type(store: SqliteStore) -> None:
    await store.acquire(KEY, "other", 30, 0, T0)
    _damage(store, "UPDATE leases SET until = 'forever'")  # never lapses, never decodes
    with pytest.raises(DecodeError, match=r"leases.until: .* holds TEXT 'forever'") as info:
        await store.acquire(KEY, "me", 30, 0, LATER)
    _names(info.value, KEY.workflow, KEY.instance_id, None)
