"""Journals and snapshots of a previous release still read: the golden fixtures.

``tests/fixtures/golden/`` holds journals and sealed snapshots of the two examples, written
by ``make_golden.py`` with the code of release 0.1.0 (the hand-written codec), and, at each
point of each scenario, the state the live run had. Read with the code of today, every
journal prefix replays to that state, every event re-encodes to the very text stored, and
every snapshot loads to the execution the journal replays to.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from workflows4py import JournalEntry, Workflow
from workflows4py.engine import (
    Execution,
    SnapshotRefused,
    decode_snapshot,
    event_digest,
    fingerprint,
    unseal,
)
from workflows4py.examples import checks
from workflows4py.examples import pull_request as pr
from workflows4py.examples import withdrawal as wd
from workflows4py.runtime import Runtime
from workflows4py.stores import InstanceKey, MemoryStore, Snapshot
from workflows4py.testing import TestClock

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
KEY = "workflows4py golden fixtures: a test key, not a secret"  # as in make_golden.py
STARTED = "workflows4py.Started"
SCENARIOS = sorted(p.name.removesuffix(".state.json") for p in GOLDEN.glob("*.state.json"))


@dataclass(frozen=True)
class Golden:
    name: str
    workflow: type[Workflow[Any, Any]]
    initial: Any
    instance_id: str
    journal: list[JournalEntry]
    snapshots: list[Snapshot]
    recorded: dict[str, Any]

    @property
    def key(self) -> InstanceKey:
        return InstanceKey(self.workflow.id, self.instance_id)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def withdrawal(recorded: dict[str, Any]) -> type[Workflow[Any, Any]]:
    """The withdrawal over a service offering the checks of the run (their keys are the
    checks' input, computed on replay too); no check runs on replay."""
    offered = [
        checks.StaticCheck(key, checks.CheckResult.PENDING) for key in recorded["check_keys"]
    ]
    return wd.withdrawal_workflow(wd.FakeWithdrawalService(checks=offered))


def load(name: str) -> Golden:
    recorded = json.loads((GOLDEN / f"{name}.state.json").read_text())
    workflow, initial = (
        (pr.PullRequest, pr.Empty())
        if name.startswith("pr_")
        else (withdrawal(recorded), wd.Empty())
    )
    assert recorded["workflow"] == workflow.id
    journal = [
        JournalEntry(e["sequence"], e["type"], e["data"], datetime.fromisoformat(e["recorded_at"]))
        for e in _lines(GOLDEN / f"{name}.jsonl")
    ]
    snapshots = [
        Snapshot(s["sequence"], s["data"]) for s in _lines(GOLDEN / f"{name}.snapshots.jsonl")
    ]
    return Golden(name, workflow, initial, recorded["instance_id"], journal, snapshots, recorded)


def engine_replay(golden: Golden, upto: int) -> Execution:
    """The execution the first ``upto`` entries describe, folded by the engine alone."""
    codecs = golden.workflow.codecs()
    execution: Execution | None = None
    for entry in golden.journal[:upto]:
        if entry.type == STARTED:
            body = json.loads(entry.data)
            state = codecs.state.decode(body["type"], json.dumps(body["state"]))
            execution = Execution.start(golden.workflow.definition, state)
            continue
        assert execution is not None
        nxt = execution.apply_event(codecs.events.decode(entry.type, entry.data))
        assert nxt is not None, f"{golden.name}: event #{entry.sequence} refused"
        execution = nxt
    assert execution is not None
    return execution


def test_every_scenario_is_here() -> None:
    assert len(SCENARIOS) >= 10
    assert {n.split("_")[0] for n in SCENARIOS} == {"pr", "wd"}


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_event_decodes_and_encodes_to_the_text_stored(name: str) -> None:
    golden = load(name)
    codecs = golden.workflow.codecs()
    for entry in golden.journal:
        if entry.type == STARTED:
            body = json.loads(entry.data)
            state = codecs.state.decode(body["type"], json.dumps(body["state"]))
            tag, data = codecs.state.encode(state)
            assert entry.data == '{"type":' + json.dumps(tag) + ',"state":' + data + "}"
            continue
        event = codecs.events.decode(entry.type, entry.data)
        assert codecs.events.encode(event) == (entry.type, entry.data)


@pytest.mark.parametrize("name", SCENARIOS)
async def test_every_point_replays_to_the_state_recorded(name: str) -> None:
    golden = load(name)
    codec = golden.workflow.codecs().state
    for point in golden.recorded["points"]:
        upto = point["events"]
        expected = codec.decode(point["state"]["type"], json.dumps(point["state"]["state"]))
        assert repr(expected) == point["repr"]
        execution = engine_replay(golden, upto)
        assert execution.state == expected
        assert sorted(s.id for s in execution.expected_signals()) == point["expected_signals"]

        async with Runtime.memory([golden.workflow], clock=TestClock()) as runtime:
            host = runtime.of(golden.workflow)
            instance = await host.restore_instance(golden.instance_id, golden.journal[:upto])
            assert await instance.query_state() == expected
            assert repr(await instance.query_state()) == point["repr"]
            assert str(await instance.status()) == point["status"]


def skip_if_another_definition(golden: Golden) -> None:
    """A snapshot is a cache of one definition: its fingerprint hashes the definition's
    code (bytecode, so the Python version too). Under another, the snapshot is refused by
    design, and the instance is rebuilt from its journal; only then is the test skipped."""
    if fingerprint(golden.workflow.definition) == golden.recorded["fingerprint"]:
        return
    body = golden.snapshots[-1].data.split(":", 3)[3]
    with pytest.raises(SnapshotRefused, match="another definition"):
        decode_snapshot(body, golden.workflow, golden.initial)
    pytest.skip(
        f"the definition's fingerprint changed (snapshots written by Python "
        f"{golden.recorded['python']}, now {sys.version_info.major}.{sys.version_info.minor})"
    )


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_snapshot_loads_to_the_execution_its_journal_replays_to(name: str) -> None:
    golden = load(name)
    assert golden.snapshots
    skip_if_another_definition(golden)
    for snapshot in golden.snapshots:
        entry = golden.journal[snapshot.sequence - 1]
        assert entry.sequence == snapshot.sequence
        body = unseal(
            KEY.encode(),
            str(golden.key),
            snapshot.sequence,
            event_digest(entry.type, entry.data),
            snapshot.data,
        )
        loaded, own_initial = decode_snapshot(body, golden.workflow, golden.initial)
        assert own_initial
        replayed = engine_replay(golden, snapshot.sequence)
        assert loaded.state == replayed.state
        assert loaded.progress() == replayed.progress()
        assert loaded.expected_signals() == replayed.expected_signals()
        assert loaded.wakeup_at() == replayed.wakeup_at()
        assert loaded.status == replayed.status
        assert loaded.initial_state == replayed.initial_state


@pytest.mark.parametrize("name", SCENARIOS)
async def test_a_runtime_loads_the_golden_snapshot_and_replays_only_the_tail(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    golden = load(name)
    skip_if_another_definition(golden)
    snapshot = golden.snapshots[-1]
    last = golden.recorded["points"][-1]
    store = MemoryStore()
    writer = Runtime(store, [golden.workflow], clock=TestClock(), snapshot_every=None)
    await writer.initialize()  # left open: closing it would close the store
    await writer.of(golden.workflow).restore_instance(golden.instance_id, golden.journal)
    await store.save_snapshot(golden.key, snapshot, replace=True)
    reads: list[int] = []
    original = store.read

    async def spy(key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        reads.append(after)
        return await original(key, after)

    store.read = spy  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="workflows4py"):
        async with Runtime(store, [golden.workflow], clock=TestClock(), snapshot_key=KEY) as rt:
            instance = await rt.get(golden.workflow, golden.instance_id)
            state = await instance.query_state()
    assert repr(state) == last["repr"]
    assert not [r for r in caplog.records if "rebuilt from the journal" in r.getMessage()]
    assert reads[0] == snapshot.sequence - 1
