"""Version pinning from the user's side: a workflow keeps its old definition beside the new
one; new instances start on the newest, stored ones replay on the version they started on,
on the memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lifecycle_common import STORES, deployments

from workflows4py import WIO, DefinitionError, JournalError, SignalDef, UnexpectedEvent, Workflow
from workflows4py.runtime import Runtime, Worker, check_journals
from workflows4py.stores import JournalEntry, MemoryStore
from workflows4py.testing import TestClock

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Parcel:
    to: str
    approved: bool = False
    paid: int = 0


@dataclass(frozen=True)
class Approved:
    by: str


@dataclass(frozen=True)
class Paid:
    amount: int


@dataclass(frozen=True)
class Approve:
    by: str


@dataclass(frozen=True)
class Pay:
    amount: int


approve = SignalDef("shipping.approve", request=Approve)
pay = SignalDef("shipping.pay", request=Pay)

paying = (
    WIO.handle_signal(pay, input=Parcel)
    .purely(lambda p, r: Paid(r.amount), event=Paid)
    .handle_event(lambda p, e: replace(p, paid=e.amount))
    .void_response()
)
approving = (
    WIO.handle_signal(approve, input=Parcel)
    .purely(lambda p, r: Approved(r.by), event=Approved)
    .handle_event(lambda p, e: replace(p, approved=True))
    .void_response()
)


class ShippingV1(Workflow[Parcel, Paid]):
    """The first definition, as deployed before versions: pay, then ship a day later."""

    id = "versions.shipping"
    initial_state = Parcel("nobody")
    definition = paying >> WIO.timer(timedelta(days=1), input=Parcel, name="Ship")


class Shipping(Workflow[Parcel, Approved | Paid]):
    """Version 2: an approval before the payment, and two days before shipping."""

    id = "versions.shipping"
    version = 2
    previous_versions = (ShippingV1,)
    initial_state = Parcel("nobody")
    definition = approving >> paying >> WIO.timer(timedelta(days=2), input=Parcel, name="Ship")


class ShippingV3(Workflow[Parcel, Approved | Paid]):
    """A version 3 the deployment of version 2 does not know."""

    id = "versions.shipping"
    version = 3
    previous_versions = (ShippingV1, Shipping)
    initial_state = Parcel("nobody")
    definition = approving >> paying


Build = Callable[..., Runtime]


@pytest.fixture(params=STORES)
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Build]:
    """``deploy(workflows, clock, **options)``: a runtime of ``workflows`` over the test's
    data (each call: another deployment over the same data)."""
    with deployments(request.param, tmp_path) as build:
        yield functools.partial(build, memory=MemoryStore())


async def test_two_versions_served_by_one_runtime_and_worker(deploy: Build) -> None:
    clock = TestClock(T0)
    async with deploy([ShippingV1], clock) as before:
        started = await before.start(ShippingV1, "old", initial_state=Parcel("ada"))
        first = (await started.get_journal())[0]
        assert json.loads(first.data) == {  # no version recorded: as before versions
            "type": "Parcel",
            "state": {"to": "ada", "approved": False, "paid": 0},
        }
    async with deploy([Shipping], clock) as runtime:
        new = await runtime.start(Shipping, "new", initial_state=Parcel("bob"))
        assert json.loads((await new.get_journal())[0].data)["version"] == 2
        old = await runtime.get(Shipping, "old")
        assert (await old.version(), await new.version()) == (1, 2)
        # each awaits what its own definition says: v1 has no approval step
        assert [s.id for s in await old.expected_signals()] == ["shipping.pay"]
        assert [s.id for s in await new.expected_signals()] == ["shipping.approve"]
        assert await old.deliver_signal(pay, Pay(5)) is None
        assert await new.deliver_signal(approve, Approve("eve")) is None
        assert await new.deliver_signal(pay, Pay(7)) is None
        assert await old.next_wakeup() == T0 + timedelta(days=1)
        assert await new.next_wakeup() == T0 + timedelta(days=2)
        report = await check_journals(runtime)
        assert report.ok
        assert dict(report.workflows[0].versions) == {1: 1, 2: 1}
        assert report.to_json()["workflows"][0]["versions"] == {"1": 1, "2": 1}
        worker = Worker(runtime)
        clock.advance(timedelta(days=1))
        assert await worker.run_once() == 1
        assert (await old.status(), await new.status()) == ("finished", "awaiting")
        clock.advance(timedelta(days=1))
        assert await worker.run_once() == 1
        assert await new.wait_result(1) == Parcel("bob", approved=True, paid=7)
        assert await old.wait_result(1) == Parcel("ada", paid=5)
        # the history of each replays on its own version too
        assert await old.state_at(2) == Parcel("ada", paid=5)
        assert await new.state_at(2) == Parcel("bob", approved=True)
        assert (await old.progress_at(3)).children  # its timer replays as v1's


async def test_a_journal_without_start_entry_replays_on_version_1(deploy: Build) -> None:
    clock = TestClock(T0)
    tag, data = ShippingV1.codecs().events.encode(Paid(3))
    async with deploy([Shipping], clock) as runtime:
        legacy = await runtime.of(Shipping).restore_instance(
            "legacy", [JournalEntry(1, tag, data, T0)]
        )
        assert await legacy.version() == 1
        assert await legacy.query_state() == Parcel("nobody", paid=3)
        await legacy.wakeup()  # starts v1's timer (v2 would await an approval first)
        assert await legacy.next_wakeup() == T0 + timedelta(days=1)
        assert await legacy.status() == "awaiting"


async def test_a_version_the_workflow_no_longer_has_parks_the_instance(deploy: Build) -> None:
    clock = TestClock(T0)
    async with deploy([ShippingV3], clock) as later:
        await later.start(ShippingV3, "ahead")
    async with deploy([Shipping], clock) as runtime:
        ahead = await runtime.get(Shipping, "ahead")
        with pytest.raises(JournalError) as raised:
            await ahead.wakeup()
        message = str(raised.value)
        assert "started on version 3 of workflow versions.shipping" in message
        assert "(its versions: 1, 2)" in message
        assert await ahead.status() == "parked"
        record = (await runtime.search()).records[0]
        assert record.status == "parked"
        assert "version 3" in (record.last_error or "")
        report = await check_journals(runtime)
        (broken,) = report.broken
        assert dict(report.workflows[0].versions) == {3: 1}
        assert "previous_versions" in broken.suggestion
        assert "version 3" in broken.suggestion


async def test_snapshots_of_a_v1_instance_load_after_v2_is_deployed(
    deploy: Build, caplog: pytest.LogCaptureFixture
) -> None:
    clock = TestClock(T0)
    options = {"snapshot_every": 1, "snapshot_key": "versions-test-snapshot-key"}
    async with deploy([ShippingV1], clock, **options) as before:
        started = await before.start(ShippingV1, "old", initial_state=Parcel("ada"))
        await started.deliver_signal(pay, Pay(5))
    caplog.set_level(logging.INFO, logger="workflows4py")
    async with deploy([Shipping], clock, **options) as runtime:
        old = await runtime.get(Shipping, "old")
        assert await old.version() == 1
        assert await old.query_state() == Parcel("ada", paid=5)
        clock.advance(timedelta(days=1))
        await old.wakeup()
        assert await old.status() == "finished"
    assert not [r for r in caplog.records if "snapshot" in r.getMessage()]


async def test_a_stored_snapshot_of_another_version_is_refused_not_misread() -> None:
    """A v1 instance's snapshot laid over v2's definition is refused by its fingerprint:
    loading tries each version, and the instance stays on v1."""
    store = MemoryStore()
    options: dict[str, Any] = {"snapshot_every": 1, "snapshot_key": "versions-test-snapshot-key"}
    async with Runtime(store.share(), [ShippingV1], **options) as before:
        await before.start(ShippingV1, "old")
    async with Runtime(store.share(), [ShippingV3], **options) as runtime:
        old = await runtime.get(ShippingV3, "old")
        assert await old.version() == 1
        assert [s.id for s in await old.expected_signals()] == ["shipping.pay"]


def test_new_instances_of_an_unversioned_workflow_record_no_version() -> None:
    assert ShippingV1.versions() == {1: ShippingV1}
    assert Shipping.versions() == {2: Shipping, 1: ShippingV1}
    assert list(ShippingV3.versions()) == [3, 2, 1]


def _declare(**body: Any) -> type[Workflow[Any, Any]]:
    namespace = {"id": "versions.shipping", "definition": paying, **body}
    return types.new_class("Later", (Workflow[Parcel, Paid],), {}, lambda ns: ns.update(namespace))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": 0}, "Later.version must be a positive int, got 0"),
        ({"version": True}, "Later.version must be a positive int, got True"),
        ({"version": 2, "previous_versions": [ShippingV1]}, "must be a tuple"),
        ({"version": 2, "previous_versions": (Parcel,)}, "holds <class"),
        (
            {"version": 1, "previous_versions": (ShippingV1,)},
            "ShippingV1 is version 1, not below Later's version 1; give Later a higher version",
        ),
        (
            {"version": 3, "previous_versions": (ShippingV1, ShippingV1)},
            "ShippingV1 and ShippingV1 are both version 1",
        ),
        (
            {"id": "elsewhere", "version": 2, "previous_versions": (ShippingV1,)},
            "ShippingV1 has the id 'versions.shipping', not 'elsewhere'",
        ),
    ],
)
def test_definition_errors_name_the_problem(body: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message.replace("(", r"\(")):
        _declare(**body)


def test_a_previous_version_needs_a_definition_of_its_own() -> None:
    class Abstract(Workflow[Parcel, Paid]):
        id = "versions.shipping"

    with pytest.raises(DefinitionError, match="Abstract has no definition of its own"):
        _declare(version=2, previous_versions=(Abstract,))


async def test_restored_and_forked_instances_keep_their_version(deploy: Build) -> None:
    clock = TestClock(T0)
    async with deploy([ShippingV1], clock) as before:
        started = await before.start(ShippingV1, "old", initial_state=Parcel("ada"))
        await started.deliver_signal(pay, Pay(5))
    async with deploy([Shipping], clock) as runtime:
        new = await runtime.start(Shipping, "new", initial_state=Parcel("bob"))
        await new.deliver_signal(approve, Approve("eve"))
        old = await runtime.get(Shipping, "old")
        shipping = runtime.of(Shipping)
        # a journal: the version its start entry records
        on_v2 = await shipping.restore_instance("journal-new", await new.get_journal())
        on_v1 = await shipping.restore_instance("journal-old", await old.get_journal())
        assert (await on_v2.version(), await on_v1.version()) == (2, 1)
        assert [s.id for s in await on_v1.expected_signals()] == []  # v1's timer is next
        assert await on_v1.next_wakeup() == T0 + timedelta(days=1)
        # events: the newest version they replay on ([Paid] does not fit v2: no approval)
        from_v2 = await shipping.restore_from_events("events-new", await new.get_events())
        from_v1 = await shipping.restore_from_events("events-old", await old.get_events())
        assert (await from_v2.version(), await from_v1.version()) == (2, 1)
        assert await from_v2.query_state() == Parcel("nobody", approved=True)
        assert await from_v1.query_state() == Parcel("nobody", paid=5)
        assert json.loads((await from_v2.get_journal())[0].data)["version"] == 2
        assert (await from_v1.get_journal())[0].type == "Paid"  # no start entry: as before versions
        # a fork: the source's version, whatever the prefix
        fork_v2 = await runtime.fork(Shipping, "new", "fork-new", after_sequence=1)
        fork_v1 = await runtime.fork(Shipping, "old", "fork-old", after_sequence=1)
        assert (await fork_v2.version(), await fork_v1.version()) == (2, 1)
        assert [s.id for s in await fork_v2.expected_signals()] == ["shipping.approve"]
        assert [s.id for s in await fork_v1.expected_signals()] == ["shipping.pay"]
        assert json.loads((await fork_v2.get_journal())[0].data)["version"] == 2
        assert "version" not in json.loads((await fork_v1.get_journal())[0].data)
        report = await check_journals(runtime)
        assert report.ok
        assert dict(report.workflows[0].versions) == {1: 4, 2: 4}


async def test_events_no_version_replays_raise_the_newest_versions_refusal() -> None:
    runtime = Runtime.memory([Shipping])  # v1 does not know Approved, v2 awaits it first
    with pytest.raises(UnexpectedEvent) as raised:
        await runtime.of(Shipping).restore_from_events("x", [Paid(1), Approved("eve")])
    assert (raised.value.sequence, raised.value.steps) == (2, ("Handle Approve",))
    assert await runtime.of(Shipping).instance_ids() == []


VERSIONS_DB = "WORKFLOWS4PY_VERSIONS_DB"


def check_app() -> Runtime:
    """The app the command test gives ``workflows4py check``: version 2 over the test's file."""
    return Runtime.sqlite(os.environ[VERSIONS_DB], [Shipping])


def test_the_check_command_counts_the_instances_on_each_version(tmp_path: Path) -> None:
    path = tmp_path / "app.db"

    async def store() -> None:
        clock = TestClock(T0)
        async with Runtime.sqlite(path, [ShippingV1], clock=clock) as before:
            await before.start(ShippingV1, "old")
        async with Runtime.sqlite(path, [Shipping], clock=clock) as runtime:
            await runtime.start(Shipping, "new-1")
            await runtime.start(Shipping, "new-2")

    asyncio.run(store())
    env = os.environ | {VERSIONS_DB: str(path), "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        [sys.executable, "-m", "workflows4py", "check", "test_versions:check_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "versions.shipping: 3 of 3 replay (1 on version 1, 2 on version 2)" in done.stdout
