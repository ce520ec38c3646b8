"""Claims of docs/performance.md, checked through the public API."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from claims_common import Counted, St, counting

from workflows4py import WIO, PostgresRuntime, SqliteRuntime, Worker, Workflow
from workflows4py.runtime import Runtime
from workflows4py.stores import PostgresStore, SqliteStore, Store
from workflows4py.testing import TestClock


class Three(Workflow[St, Counted]):
    definition = counting() >> counting() >> counting()


class Woken(Workflow[St, Counted]):
    definition = WIO.timer(timedelta(minutes=1), input=St, name="Later") >> counting() >> counting()


WRITES = {"create", "create_leased", "acquire", "append", "update", "release", "save_snapshot"}
READS = {"exists", "read", "load_snapshot", "get_record"}


class Counting:
    """Wraps a runtime's store and counts the calls by method (a ``Store`` by delegation:
    ``__getattr__`` forwards every method, so it is installed with ``cast(Store, ...)``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if not inspect.iscoroutinefunction(method):
            return method

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted

    def writes(self) -> int:
        return sum(n for name, n in self.calls.items() if name in WRITES)

    def reads(self) -> Counter[str]:
        return Counter({name: n for name, n in self.calls.items() if name in READS})


def test_the_defaults_of_the_knobs(tmp_path: Path) -> None:
    def default(fn: Any, name: str) -> Any:
        return inspect.signature(fn).parameters[name].default

    for embedded in (Runtime.sqlite, SqliteRuntime):
        assert default(embedded, "synchronous") == "FULL"
        assert default(embedded, "threaded") is False
    for batching in (Runtime.sqlite, Runtime.postgres, SqliteStore, PostgresStore):
        assert default(batching, "group_commit") is True
    assert default(Runtime.postgres, "max_connections") == 10
    assert default(PostgresRuntime, "max_connections") == 10
    assert default(Worker, "concurrency") == 32
    assert default(Worker, "prefetch") == 8
    assert default(Worker, "poll_interval") == 1.0
    runtime = Runtime.sqlite(tmp_path / "unused.db", [Three]).of(Three)
    assert runtime.snapshot_every == 100
    assert runtime.failure_backoff == timedelta(minutes=1)


def test_the_worker_command_runs_32_at_once_and_claims_8_ahead_by_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workflows4py", "worker", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    help_text = " ".join(done.stdout.split())
    for option, value in (("concurrency", "32"), ("prefetch", "8")):
        default = re.search(rf"--{option} .*?\[default: (\d+)", help_text)
        assert default is not None, help_text
        assert default[1] == value


def test_the_worker_command_refuses_a_negative_prefetch() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workflows4py", "worker", "app:runtime", "--prefetch", "-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--prefetch" in done.stderr
    assert "-1 is not in the range x>=0" in done.stderr


def test_constructing_runtimes_touches_no_database(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    Runtime.sqlite(path, [Three, Woken])
    SqliteRuntime(Three, path, initial_state=St())
    assert not path.exists()
    # no server listens there: building the runtime does not connect
    nowhere = "postgresql://nobody@127.0.0.1:1/none"
    shared = Runtime.postgres(nowhere, [Three, Woken], max_connections=3)
    assert Worker(shared, concurrency=3).concurrency == 3
    alone = PostgresRuntime(Three, nowhere, initial_state=St(), max_connections=3)
    assert Worker([alone], concurrency=3).concurrency == 3


def test_one_runtime_has_one_store_for_all_its_workflows() -> None:
    nowhere = "postgresql://nobody@127.0.0.1:1/none"
    shared = Runtime.postgres(nowhere, [Three, Woken])
    assert [host.store for host in shared.hosts] == [shared.store, shared.store]
    assert Worker(shared).runtimes == list(shared.hosts)  # one worker serves both
    # one-workflow runtimes: a store (a pool, a listener) each
    alone = [PostgresRuntime(w, nowhere, initial_state=St()) for w in (Three, Woken)]
    assert alone[0].store is not alone[1].store


async def test_create_instance_of_k_effects_costs_k_plus_two_commits(tmp_path: Path) -> None:
    runtime = SqliteRuntime(Three, tmp_path / "c.db", initial_state=St())
    async with runtime:
        counting = Counting(runtime.store)
        runtime.store = cast(Store, counting)
        instance = await runtime.create_instance("c-1")
        assert counting.writes() == 3 + 2
        assert counting.calls["append"] == 3
        assert counting.reads() == Counter()
        assert await instance.query_state() == St(3)


async def test_a_woken_instance_costs_one_commit_per_event_plus_three(tmp_path: Path) -> None:
    clock = TestClock(datetime(2024, 1, 1, tzinfo=UTC))
    path = tmp_path / "w.db"
    async with SqliteRuntime(Woken, path, initial_state=St(), clock=clock) as app:
        await app.create_instance("w-1")  # records the timer's start, then waits
    clock.advance(timedelta(minutes=1))
    worker_side = SqliteRuntime(Woken, path, initial_state=St(), clock=clock)
    async with worker_side:
        counting = Counting(worker_side.store)
        worker_side.store = cast(Store, counting)
        assert await worker_side.run_due_wakeups() == ["w-1"]
        events = counting.calls["append"]
        assert events == 3  # the timer's release and two effects
        claims = counting.calls["claim_due"]
        assert claims == 1
        assert counting.writes() == events + 3
        # the worker had not seen the instance: whether it exists, its snapshot, its journal
        assert counting.reads() == Counter({"exists": 1, "load_snapshot": 1, "read": 1})

        counting.calls.clear()
        instance = await worker_side.get_instance("w-1")
        assert await instance.query_state() == St(2)  # in memory: only the journal's tail
        assert counting.calls["read"] == 1
        assert counting.calls["load_snapshot"] == 0


async def test_a_runtime_keeps_a_tenth_of_its_cache_for_ended_instances(tmp_path: Path) -> None:
    """docs/durable.md (current limits): of the ``cache_size`` instances kept in memory, at
    most a tenth are ended ones; the least recently used beyond that are loaded again when
    read, the others are read from the journal's tail only."""
    runtime = SqliteRuntime(Three, tmp_path / "e.db", initial_state=St(), cache_size=30)
    async with runtime:
        for n in range(5):
            await runtime.create_instance(f"e-{n}")  # three effects: finished
        counting = Counting(runtime.store)
        runtime.store = cast(Store, counting)
        for n in reversed(range(5)):  # the last ended first
            counting.calls.clear()
            assert await (await runtime.get_instance(f"e-{n}")).query_state() == St(3)
            loaded = counting.calls["load_snapshot"]
            assert loaded == (1 if n < 2 else 0), n  # the 3 ended last are still in memory
