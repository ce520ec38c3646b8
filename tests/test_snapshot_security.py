"""Nothing read from a snapshot runs code, and a snapshot never changes what state is read.

An attacker with write access to the database (a leaked DSN, a shared SQLite file, a
backup restored from elsewhere) edits snapshot rows. Whatever they write, the state read
equals the journal's replay: a snapshot is refused (one warning naming the instance), the
instance is rebuilt from its journal and the snapshot rewritten.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pg import fresh_schema, require_postgres

from workflows4py import DurableRuntime, PostgresRuntime, SqliteRuntime, Workflow
from workflows4py.engine import (
    SnapshotRefused,
    decode_execution,
    encode_execution,
    event_digest,
    seal,
    unseal,
)
from workflows4py.examples import pull_request as pr
from workflows4py.stores import InstanceKey, Snapshot

KEY = "the application's snapshot key, 32+ bytes"
ROOT = Path(__file__).resolve().parents[1]
STATE = pr.Checked("abc", "<Some tests results>")  # after create-pr: Created, PipelineFinished
ID = "pr-1"
INSTANCE = InstanceKey(pr.PullRequest.name, ID)

Factory = Callable[..., DurableRuntime[Any, Any]]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    if request.param == "sqlite":
        yield ("sqlite", str(tmp_path / "wf.db"), "")
        return
    dsn = require_postgres()
    with fresh_schema(dsn) as schema:
        yield ("postgres", dsn, schema)


def make_runtime(backend: tuple[str, str, str], **options: Any) -> DurableRuntime[Any, Any]:
    kind, target, schema = backend
    options = {"snapshot_every": 2, "snapshot_key": KEY, **options}
    if kind == "sqlite":
        return SqliteRuntime(pr.PullRequest, target, initial_state=pr.Empty(), **options)
    return PostgresRuntime(
        pr.PullRequest, target, initial_state=pr.Empty(), schema=schema, **options
    )


@asynccontextmanager
async def opened(
    backend: tuple[str, str, str], **options: Any
) -> AsyncIterator[DurableRuntime[Any, Any]]:
    async with make_runtime(backend, **options) as runtime:
        yield runtime


async def prepare(backend: tuple[str, str, str]) -> Snapshot:
    """An instance at Checked with a genuine snapshot at #2; returns that snapshot."""
    async with opened(backend) as runtime:
        instance = await runtime.create_instance(ID)
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        assert await instance.query_state() == STATE
        snapshot: Snapshot | None = await runtime.store.load_snapshot(INSTANCE)
    assert snapshot is not None
    assert snapshot.sequence == 2
    return snapshot


async def last_digest(backend: tuple[str, str, str]) -> str:
    async with opened(backend) as runtime:
        entry = (await runtime.store.read(INSTANCE))[-1]
    return event_digest(entry.type, entry.data)


def body_of(snapshot: Snapshot) -> dict[str, Any]:
    return dict(json.loads(snapshot.data.split(":", 3)[3]))


async def write(backend: tuple[str, str, str], snapshot: Snapshot) -> None:
    async with opened(backend) as runtime:
        await runtime.store.save_snapshot(INSTANCE, snapshot, replace=True)


def probe(backend: tuple[str, str, str]) -> dict[str, Any]:
    """Load the instance in a fresh process; its state and log records."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "snapshot_probe.py"), *backend, KEY, ID],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout))


async def assert_snapshot_rewritten(backend: tuple[str, str, str]) -> None:
    async with opened(backend) as runtime:
        snapshot = await runtime.store.load_snapshot(INSTANCE)
    assert snapshot is not None
    assert snapshot.sequence == 2
    body = unseal(KEY.encode(), str(INSTANCE), 2, await last_digest(backend), snapshot.data)
    assert decode_execution(body, pr.PullRequest, pr.Empty()).state == STATE


def forged_bodies(marker: Path) -> dict[str, Callable[[dict[str, Any]], None]]:
    command = f"touch {marker}"

    def enum_os_system(body: dict[str, Any]) -> None:
        body["initial"] = {"$enum": "os:system", "v": command}

    def enum_in_the_tree(body: dict[str, Any]) -> None:
        body["tree"]["base"]["done"][0]["i"] = {"$enum": "os:system", "v": command}

    def model_subprocess(body: dict[str, Any]) -> None:
        body["tree"]["base"]["done"][0]["r"] = {"ok": {"$model": "subprocess:run", "v": [command]}}

    def dataclass_outside_the_definition(body: dict[str, Any]) -> None:
        # a real dataclass of an importable module, but not one of the workflow's types
        body["tree"]["base"]["done"][0]["r"] = {
            "ok": {
                "$dc": "workflows4py.stores._protocol:InstanceKey",
                "f": {"workflow": "x", "instance_id": "y"},
            }
        }

    def typed_dataclass_outside(body: dict[str, Any]) -> None:
        body["tree"]["base"]["done"][0]["r"] = {"ok": {"$v": "logging:LogRecord", "d": {}}}

    return {
        "enum os:system": enum_os_system,
        "enum os:system in the tree": enum_in_the_tree,
        "pydantic model subprocess:run": model_subprocess,
        "$dc outside the definition": dataclass_outside_the_definition,
        "$v outside the definition": typed_dataclass_outside,
    }


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed with the key", "unsealed"])
@pytest.mark.parametrize(
    "case",
    list(forged_bodies(Path("x"))),
)
async def test_a_forged_snapshot_runs_no_code_in_a_fresh_process(
    backend: tuple[str, str, str], tmp_path: Path, case: str, sealed: bool
) -> None:
    genuine = await prepare(backend)
    marker = tmp_path / "pwned"
    body = body_of(genuine)
    forged_bodies(marker)[case](body)
    text = json.dumps(body)
    if sealed:  # as if the key had leaked: the decoder itself must refuse the names
        data = seal(KEY.encode(), str(INSTANCE), 2, await last_digest(backend), text)
    else:
        data = text
    await write(backend, Snapshot(2, data))

    seen = probe(backend)

    assert not marker.exists(), "a command named by the snapshot ran"
    assert seen["state"] == repr(STATE)  # the journal's state
    warnings = [r for r in seen["logs"] if r["level"] == "WARNING"]
    assert len(warnings) == 1, seen["logs"]
    assert str(INSTANCE) in warnings[0]["message"]
    assert "rebuilt from the journal" in warnings[0]["message"]
    await assert_snapshot_rewritten(backend)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


def _other(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, -1, str(value)]
    if isinstance(value, str):
        return [value + "x", "", 7]
    return [0, "x"]


async def test_every_field_of_a_snapshot_row_forged_still_reads_the_journals_state(
    backend: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    genuine = await prepare(backend)
    prefix, body_text = genuine.data.rsplit(":", 1)[0], genuine.data.split(":", 3)[3]
    seal_head = genuine.data[: len(genuine.data) - len(body_text)]
    body = json.loads(body_text)
    forgeries: list[Snapshot] = []
    foreign: set[int] = set()  # a changed key id reads as another deployment's key
    for path, value in _leaves(body):  # every value of the body, the seal kept
        for new in _other(value):
            changed = json.loads(body_text)
            _set(changed, path, new)
            forgeries.append(Snapshot(2, seal_head + json.dumps(changed, separators=(",", ":"))))
    for sequence in (0, 1, 3, 10**9, -1):  # the position
        forgeries.append(Snapshot(sequence, genuine.data))
    tag, kid, mac, _ = genuine.data.split(":", 3)
    for part in range(3):  # the seal itself
        parts = [tag, kid, mac, body_text]
        parts[part] = parts[part][:-1] + ("0" if parts[part][-1] != "0" else "1")
        if part == 1:
            foreign.add(len(forgeries))
        forgeries.append(Snapshot(2, ":".join(parts)))
    forgeries.append(Snapshot(2, ""))
    forgeries.append(Snapshot(2, "w4p1:::"))
    assert prefix
    assert len(forgeries) > 40

    async with opened(backend) as writer:
        for n, forged in enumerate(forgeries):
            await writer.store.save_snapshot(INSTANCE, forged, replace=True)
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="workflows4py"):
                async with opened(backend) as fresh:
                    state = await (await fresh.get_instance(ID)).query_state()
            assert state == STATE, forged
            refusals = [r for r in caplog.records if "rebuilt from the journal" in r.message]
            assert len(refusals) == 1, (forged, caplog.records)
            level = logging.INFO if n in foreign else logging.WARNING
            assert refusals[0].levelno == level, forged


async def test_a_value_of_the_wrong_type_is_refused_even_with_a_valid_seal(
    backend: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    genuine = await prepare(backend)
    body = body_of(genuine)
    # the state after the pipeline: Checked(commit: str, ...); the commit made an int
    result = body["tree"]["base"]["done"][1]["r"]["ok"]
    assert result["$v"].endswith(":Checked")
    result["d"]["commit"] = 12345
    data = seal(KEY.encode(), str(INSTANCE), 2, await last_digest(backend), json.dumps(body))
    await write(backend, Snapshot(2, data))
    with caplog.at_level(logging.WARNING, logger="workflows4py"):
        async with opened(backend) as fresh:
            assert await (await fresh.get_instance(ID)).query_state() == STATE
    assert [r.message for r in caplog.records if "does not validate" in r.message]


async def test_a_snapshot_of_another_key_is_not_used_and_is_rewritten_quietly(
    backend: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    await prepare(backend)
    other = "another deployment's key, 32+ bytes"
    with caplog.at_level(logging.INFO, logger="workflows4py"):
        async with opened(backend, snapshot_key=other) as fresh:
            assert await (await fresh.get_instance(ID)).query_state() == STATE
    notes = [r for r in caplog.records if "another snapshot key" in r.message]
    assert len(notes) == 1
    assert notes[0].levelno == logging.INFO
    async with opened(backend, snapshot_key=other) as fresh:
        snapshot = await fresh.store.load_snapshot(INSTANCE)
    assert snapshot is not None
    unseal(other.encode(), str(INSTANCE), 2, await last_digest(backend), snapshot.data)


async def test_a_snapshot_over_a_changed_journal_is_refused(
    backend: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The snapshot is bound to the last event it covers: a journal whose event #2 was
    replaced (a restore from another backup, say) is replayed instead."""
    await prepare(backend)
    async with opened(backend) as runtime:
        journal = await runtime.store.read(INSTANCE)
    changed = json.dumps({"results": "other results"})
    await _rewrite_event(backend, 2, changed)
    with caplog.at_level(logging.WARNING, logger="workflows4py"):
        async with opened(backend) as fresh:
            state = await (await fresh.get_instance(ID)).query_state()
    assert state == pr.Checked("abc", "other results")
    assert journal[1].data != changed
    assert [r for r in caplog.records if "no event" in r.message or "seal" in r.message]


async def _rewrite_event(backend: tuple[str, str, str], sequence: int, data: str) -> None:
    kind, target, schema = backend
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(target) as conn:
            conn.execute("UPDATE journal SET data = ? WHERE sequence = ?", (data, sequence))
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {}.journal SET data = %s WHERE sequence = %s").format(
                sql.Identifier(schema)
            ),
            (data, sequence),
        )


async def test_without_a_key_snapshots_serve_the_process_that_wrote_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKFLOWS4PY_SNAPSHOT_KEY", raising=False)
    db = tmp_path / "wf.db"
    async with SqliteRuntime(
        pr.PullRequest, db, initial_state=pr.Empty(), snapshot_every=2
    ) as runtime:
        assert runtime.snapshot_key_shared is False
        instance = await runtime.create_instance(ID)
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        runtime._cache.clear()  # evicted: loaded again from the snapshot of this process
        reads: list[int] = []
        original = runtime.store.read

        async def spy(key: InstanceKey, after: int = 0) -> Any:
            reads.append(after)
            return await original(key, after)

        runtime.store.read = spy  # type: ignore[method-assign]
        assert await (await runtime.get_instance(ID)).query_state() == STATE
        assert reads == [1]


async def test_the_key_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOWS4PY_SNAPSHOT_KEY", KEY)
    runtime = SqliteRuntime(pr.PullRequest, tmp_path / "wf.db", initial_state=pr.Empty())
    assert runtime.snapshot_key_shared is True
    with pytest.raises(ValueError, match="at least 16 bytes"):
        SqliteRuntime(
            pr.PullRequest, tmp_path / "wf.db", initial_state=pr.Empty(), snapshot_key="short"
        )


def test_the_type_table_is_closed() -> None:
    from workflows4py.engine import snapshot_types

    table = snapshot_types(pr.PullRequest)
    names = set(table.by_name)
    for cls in (pr.Empty, pr.Checked, pr.Created, pr.CommitNotFound, pr.CreateRequest):
        assert f"{cls.__module__}:{cls.__qualname__}" in names
    assert not any(name.startswith(("os:", "subprocess:", "builtins:")) for name in names)
    with pytest.raises(SnapshotRefused, match="not one of the workflow's types"):
        table.dec({"$enum": "os:system", "v": "true"})


def test_no_module_of_the_library_imports_by_a_name_found_in_data() -> None:
    """The one import by name in src/ is the command line's APP argument (code the user
    names), in the CLI: no other layer imports anything by name."""
    offenders = []
    for path in sorted((ROOT / "src" / "workflows4py").rglob("*.py")):
        text = path.read_text()
        if "import_module" in text or "__import__(" in text:
            offenders.append(path.relative_to(ROOT / "src").as_posix())
    assert offenders
    assert all(name.startswith("workflows4py/cli/") for name in offenders), offenders


def test_encoding_refuses_a_value_outside_the_table() -> None:
    from dataclasses import dataclass

    from workflows4py.engine import Execution

    @dataclass(frozen=True)
    class Stranger:
        x: int

    ex = Execution.start(pr.PullRequest.definition, Stranger(1))
    with pytest.raises(Exception, match="not one of the workflow's declared types"):
        encode_execution(ex, pr.PullRequest)
    assert issubclass(pr.PullRequest, Workflow)


async def test_a_stored_snapshot_past_max_snapshot_bytes_is_refused(
    backend: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    await prepare(backend)
    with caplog.at_level(logging.WARNING, logger="workflows4py"):
        async with opened(backend, max_snapshot_bytes=50) as small:
            assert await (await small.get_instance(ID)).query_state() == STATE
    assert [r for r in caplog.records if "larger than max_snapshot_bytes" in r.getMessage()]


def test_every_value_of_a_declared_class_is_read_by_its_codec() -> None:
    """An enum, a dataclass, a model: named from the table, validated by the journal's
    codec (strictly: no value the enum lacks, no unknown field, no float for a Decimal)."""
    from workflows4py.engine import snapshot_types
    from workflows4py.examples import withdrawal as wd

    table = snapshot_types(wd.withdrawal_workflow(wd.FakeWithdrawalService()))
    status = f"{wd.__name__}:ExecutionStatus"
    assert table.enc(wd.ExecutionStatus.FAILED) == {"$v": status, "d": "Failed"}
    assert table.dec(table.enc(wd.ExecutionStatus.FAILED)) is wd.ExecutionStatus.FAILED
    assert table.dec({"$enum": status, "v": "Failed"}) is wd.ExecutionStatus.FAILED  # format 3
    fee = f"{wd.__name__}:FeeSet"
    forged = [
        ({"$v": status, "d": "Stolen"}, "'Stolen' is not a valid ExecutionStatus"),
        ({"$enum": status, "v": "Stolen"}, "'Stolen' is not a valid ExecutionStatus"),
        ({"$v": fee, "d": {"fee": "1", "by": "me"}}, "unknown field 'by'"),
        ({"$v": fee, "d": {"fee": 1.5}}, "expected a decimal string, got number"),
        ({"$dc": fee, "f": {"fee": {"$dec": "1"}}}, "written without its codec"),
    ]
    for value, reason in forged:
        with pytest.raises(SnapshotRefused, match=reason):
            table.dec(value)


def test_the_initial_state_must_be_one_of_the_workflows_states() -> None:
    from workflows4py.engine import Execution

    body = json.loads(
        encode_execution(Execution.start(pr.PullRequest.definition, pr.Empty()), pr.PullRequest)
    )
    body["own_initial"] = True
    body["initial"] = {"$v": "examples.pull_request:Created", "d": {"commit": "abc"}}  # an event
    with pytest.raises(SnapshotRefused, match="not one of the workflow's states"):
        decode_execution(json.dumps(body), pr.PullRequest, pr.Empty())
