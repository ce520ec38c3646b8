"""The blocking facade from the user's side: plain synchronous code, no event loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workflows4py import (
    WIO,
    BlockingDurableRuntime,
    BlockingRuntime,
    InMemoryRuntime,
    InstanceNotFound,
    InvalidInstanceId,
    SignalDef,
    SqliteRuntime,
    Workflow,
    WorkflowError,
)


@dataclass(frozen=True)
class Jar:
    coins: int = 0


@dataclass(frozen=True)
class Dropped:
    coins: int


@dataclass(frozen=True)
class Drop:
    coins: int


drop_signal = SignalDef("drop", request=Drop, response=int)


class PiggyBank(Workflow[Jar, Dropped]):
    """Takes coins, twice; then it is full."""

    drop = (
        WIO.handle_signal(drop_signal, input=Jar)
        .purely(lambda jar, request: Dropped(request.coins), event=Dropped)
        .handle_event(lambda jar, e: Jar(jar.coins + e.coins))
        .produce_response(lambda jar, e, request: jar.coins + e.coins)
    )
    definition = drop >> drop


Facade = Callable[[Path], BlockingRuntime[Jar, Dropped]]
KINDS: dict[str, Facade] = {
    "in-memory": lambda tmp: InMemoryRuntime(PiggyBank, initial_state=Jar()).blocking(),
    "sqlite": lambda tmp: SqliteRuntime(PiggyBank, tmp / "jar.db", initial_state=Jar()).blocking(),
}


def portal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "workflows4py-portal"]


@pytest.fixture(params=sorted(KINDS))
def facade(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[BlockingRuntime[Jar, Dropped]]:
    with KINDS[request.param](tmp_path) as runtime:
        yield runtime


def test_one_class_serves_both_runtimes() -> None:
    assert BlockingDurableRuntime is BlockingRuntime


def test_sync_code_drives_an_instance_end_to_end(facade: BlockingRuntime[Jar, Dropped]) -> None:
    jar = facade.create_instance("jar-1")
    assert repr(jar) == "<BlockingInstance PiggyBank:jar-1>"
    assert [s.id for s in jar.expected_signals()] == ["drop"]
    assert jar.deliver_signal(drop_signal, Drop(3)) == 3
    assert jar.query_state() == Jar(3)
    assert jar.status() == "awaiting"
    assert jar.result() is None
    assert jar.deliver_signal(drop_signal, Drop(4)) == 7
    assert jar.status() == "finished"
    assert jar.get_events() == [Dropped(3), Dropped(4)]
    assert [e.sequence for e in jar.get_journal()] == [1, 2]
    assert jar.next_wakeup() is None
    assert facade.get_instance("jar-1").query_state() == Jar(7)
    assert facade.instance_ids() == ["jar-1"]
    assert facade.run_due_wakeups() == []


def test_errors_keep_their_type(facade: BlockingRuntime[Jar, Dropped]) -> None:
    with pytest.raises(InvalidInstanceId):
        facade.create_instance("no spaces please")
    with pytest.raises(InstanceNotFound, match="'jar-404' does not exist"):
        facade.get_instance("jar-404")
    facade.create_instance("jar-2")  # the facade still works after an error
    assert facade.instance_ids() == ["jar-2"]


def test_every_kind_of_runtime_offers_every_operation(tmp_path: Path) -> None:
    """The in-memory runtime is a durable runtime over the memory store: the facade's
    store operations work on it as on SQLite."""
    for kind in ("in-memory", "sqlite"):
        with KINDS[kind](tmp_path) as runtime:
            runtime.initialize()
            assert runtime.search().records == []
            assert runtime.resume_stale() == []
            restored = runtime.restore_from_events(f"{kind}-jar", [])
            assert runtime.search().total == 1
            assert runtime.run_claimed(restored.id) is True


def test_two_threads_at_once(facade: BlockingRuntime[Jar, Dropped]) -> None:
    shared = facade.create_instance("shared")
    start = threading.Barrier(2)
    answers: list[int] = []
    failures: list[BaseException] = []

    def customer(own_id: str) -> None:
        try:
            start.wait()
            own = facade.create_instance(own_id)
            answer = shared.deliver_signal(drop_signal, Drop(1))
            assert isinstance(answer, int)
            answers.append(answer)
            assert own.deliver_signal(drop_signal, Drop(5)) == 5
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=customer, args=(f"own-{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(answers) == [1, 2]  # the shared instance took them one after the other
    assert shared.query_state() == Jar(2)
    assert sorted(facade.instance_ids()) == ["own-0", "own-1", "shared"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_closing_leaves_no_portal_thread(kind: str, tmp_path: Path) -> None:
    before = portal_threads()
    runtime = KINDS[kind](tmp_path)
    runtime.__enter__()
    runtime.create_instance("jar-1")
    assert len(portal_threads()) == len(before) + 1
    runtime.close()
    assert portal_threads() == before
    runtime.close()  # a second close does nothing
    with pytest.raises(WorkflowError, match="closed"):
        runtime.instance_ids()
    assert portal_threads() == before


def test_a_facade_never_used_starts_no_thread(tmp_path: Path) -> None:
    before = portal_threads()
    for kind in sorted(KINDS):
        facade = KINDS[kind](tmp_path)
        assert portal_threads() == before
        facade.close()  # closes the store on a short-lived thread
        assert portal_threads() == before


def test_a_call_from_a_running_event_loop_is_a_clear_error(tmp_path: Path) -> None:
    with KINDS["in-memory"](tmp_path) as runtime:
        runtime.create_instance("jar-1")

        async def from_async_code() -> None:
            with pytest.raises(WorkflowError, match="running event loop: await"):
                runtime.instance_ids()
            jar = await runtime.runtime.get_instance("jar-1")  # the async API works there
            assert jar.id == "jar-1"

        asyncio.run(from_async_code())
        assert runtime.instance_ids() == ["jar-1"]


def test_a_facade_left_open_does_not_hold_the_process_at_exit(tmp_path: Path) -> None:
    script = (
        "from test_blocking_facade import KINDS\n"
        "from pathlib import Path\n"
        f"runtime = KINDS['sqlite'](Path({str(tmp_path)!r})).__enter__()\n"
        "runtime.create_instance('jar-1')\n"
        "print('done')\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == "done\n"
