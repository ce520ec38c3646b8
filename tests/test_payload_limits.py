"""Bounded input: a signal request, an event or a snapshot past the runtime's limit.

The caller gets PayloadTooLarge naming the limit and the option that sets it, and nothing
is journaled; snapshots past their limit are simply not kept (they are a cache).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pg import fresh_schema, require_postgres

from workflows4py import (
    WIO,
    DefinitionError,
    DurableRuntime,
    InMemoryRuntime,
    PayloadTooLarge,
    PostgresRuntime,
    SignalDef,
    SqliteRuntime,
    Workflow,
    WorkflowError,
)
from workflows4py.examples import pull_request as pr
from workflows4py.stores import InstanceKey

MiB = 1024 * 1024


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    if request.param == "postgres":
        dsn = require_postgres()
        with fresh_schema(dsn) as schema:
            yield ("postgres", dsn, schema)
        return
    yield (request.param, str(tmp_path / "wf.db"), "")


@asynccontextmanager
async def runtime_on(backend: tuple[str, str, str], **options: Any) -> AsyncIterator[Any]:
    kind, target, schema = backend
    if kind == "memory":
        yield InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty(), **options)
        return
    durable: DurableRuntime[Any, Any]
    if kind == "sqlite":
        durable = SqliteRuntime(pr.PullRequest, target, initial_state=pr.Empty(), **options)
    else:
        durable = PostgresRuntime(
            pr.PullRequest, target, initial_state=pr.Empty(), schema=schema, **options
        )
    async with durable:
        yield durable


async def test_a_50_mib_signal_request_is_refused_and_nothing_is_journaled(
    backend: tuple[str, str, str],
) -> None:
    async with runtime_on(backend) as runtime:
        instance = await runtime.create_instance("pr-1")
        huge = pr.CreateRequest(commit="x" * (50 * MiB))
        with pytest.raises(PayloadTooLarge) as caught:
            await instance.deliver_signal(pr.create_pr_signal, huge)
        error = caught.value
        assert isinstance(error, WorkflowError)
        assert error.what == "signal request"
        assert error.limit == 4 * MiB
        assert error.size > 50 * MiB
        assert error.option == "max_request_bytes"
        assert "max_request_bytes" in str(error)
        assert "'create-pr'" in str(error)
        assert "nothing was journaled" in str(error)
        assert await instance.get_journal() == []
        assert await instance.query_state() == pr.Empty()
        # the instance still takes a request of a sensible size
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        assert await instance.query_state() == pr.Checked("abc", "<Some tests results>")


async def test_the_request_limit_is_set_per_runtime(backend: tuple[str, str, str]) -> None:
    async with runtime_on(backend, max_request_bytes=64) as runtime:
        instance = await runtime.create_instance("pr-1")
        with pytest.raises(PayloadTooLarge, match="more than the limit of 64 bytes"):
            await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("c" * 100))
        assert await instance.get_journal() == []
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        assert len(await instance.get_journal()) == 2


async def test_an_event_past_its_limit_is_not_journaled(backend: tuple[str, str, str]) -> None:
    async with runtime_on(backend, max_event_bytes=1000) as runtime:
        instance = await runtime.create_instance("pr-1")
        with pytest.raises(PayloadTooLarge) as caught:
            # the request is small enough; the Created event it makes is not
            await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("c" * 2000))
        assert caught.value.what == "event"
        assert caught.value.option == "max_event_bytes"
        assert "'Created'" in str(caught.value)
        assert await instance.get_journal() == []
        assert await instance.query_state() == pr.Empty()


async def test_the_limit_counts_utf8_bytes(backend: tuple[str, str, str]) -> None:
    async with runtime_on(backend, max_request_bytes=200) as runtime:
        instance = await runtime.create_instance("pr-1")
        # 60 characters of 4 bytes each: 240 bytes in UTF-8, though 60 characters
        with pytest.raises(PayloadTooLarge) as caught:
            await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("😀" * 60))
        assert caught.value.size > 240


async def test_an_imported_journal_with_an_event_past_the_limit_is_refused(
    backend: tuple[str, str, str],
) -> None:
    async with runtime_on(backend) as runtime:
        source = await runtime.create_instance("pr-1")
        await source.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        journal = await source.get_journal()
    async with runtime_on(backend, max_event_bytes=20) as small:
        with pytest.raises(PayloadTooLarge, match="max_event_bytes"):
            await small.restore_instance("pr-2", journal)
        with pytest.raises(WorkflowError):
            await small.get_instance("pr-2")


@pytest.mark.parametrize("option", ["max_request_bytes", "max_event_bytes"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "4MiB"])
def test_limits_must_be_positive_byte_counts(tmp_path: Path, option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty(), **{option: value})
    with pytest.raises(ValueError, match=option):
        SqliteRuntime(
            pr.PullRequest, tmp_path / "x.db", initial_state=pr.Empty(), **{option: value}
        )
    with pytest.raises(ValueError, match="max_snapshot_bytes"):
        SqliteRuntime(
            pr.PullRequest, tmp_path / "x.db", initial_state=pr.Empty(), max_snapshot_bytes=0
        )


async def test_a_snapshot_past_its_limit_is_not_kept(tmp_path: Path) -> None:
    options: dict[str, Any] = {"snapshot_every": 1, "max_snapshot_bytes": 100}
    db = tmp_path / "wf.db"
    async with SqliteRuntime(pr.PullRequest, db, initial_state=pr.Empty(), **options) as rt:
        instance = await rt.create_instance("pr-1")
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        assert await instance.query_state() == pr.Checked("abc", "<Some tests results>")
        assert await rt.store.load_snapshot(InstanceKey(pr.PullRequest.name, "pr-1")) is None
    async with SqliteRuntime(pr.PullRequest, db, initial_state=pr.Empty(), snapshot_every=1) as rt:
        instance = await rt.get_instance("pr-1")
        await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
        assert await rt.store.load_snapshot(InstanceKey(pr.PullRequest.name, "pr-1")) is not None


class Opaque:
    """A request type the codec cannot encode (not a dataclass): refused by every runtime."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob


@dataclass(frozen=True)
class Count:
    n: int


@dataclass(frozen=True)
class Counted:
    n: int


opaque_signal = SignalDef("opaque", request=Opaque)


class Opaques(Workflow[Count, Counted]):
    take = (
        WIO.handle_signal(opaque_signal, input=Count)
        .purely(lambda state, request: Counted(len(request.blob)), event=Counted)
        .handle_event(lambda state, event: Count(event.n))
        .void_response()
    )
    definition = take


def test_a_request_type_the_codec_cannot_encode_is_refused_so_every_request_is_measured() -> None:
    with pytest.raises(DefinitionError, match="handles signal 'opaque', whose request type Opaque"):
        InMemoryRuntime(Opaques, initial_state=Count(0), max_request_bytes=10)
