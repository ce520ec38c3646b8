"""Durable runtimes from code without an event loop (the blocking facade), and reads that do
not wait for an operation in progress."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

from workflows4py import WIO, SignalDef, SqliteRuntime, Workflow


@dataclass(frozen=True)
class Tab:
    total: int = 0
    charged: bool = False


@dataclass(frozen=True)
class Added:
    amount: int


@dataclass(frozen=True)
class Charged:
    pass


@dataclass(frozen=True)
class Add:
    amount: int


add_signal = SignalDef("add", request=Add, response=int)
CHARGE_GATES: list[asyncio.Event] = []  # a charge waits for these to be set


async def charge(tab: Tab) -> Charged:
    for gate in CHARGE_GATES:
        await gate.wait()
    return Charged()


class Bar(Workflow[Tab, Added | Charged]):
    """Three rounds, then the bill."""

    add = (
        WIO.handle_signal(add_signal, input=Tab)
        .purely(lambda tab, request: Added(request.amount), event=Added)
        .handle_event(lambda tab, e: Tab(tab.total + e.amount))
        .produce_response(lambda tab, e, request: tab.total + e.amount)
    )
    bill = WIO.run_io(Tab, charge, event=Charged).handle_event(
        lambda tab, e: Tab(tab.total, charged=True)
    )
    definition = add >> add >> add >> bill


def test_blocking_facade_over_sqlite_survives_a_new_runtime(tmp_path: Path) -> None:
    path = tmp_path / "bar.db"
    with SqliteRuntime(Bar, path, initial_state=Tab()).blocking() as runtime:
        tab = runtime.create_instance("table-7")
        answers: list[int] = []

        def add_five() -> None:
            answer = tab.deliver_signal(add_signal, Add(5))
            assert isinstance(answer, int)
            answers.append(answer)

        threads = [threading.Thread(target=add_five) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == [5, 10]  # serialized: each saw the other's round or none
        assert tab.query_state() == Tab(10)
        assert runtime.instance_ids() == ["table-7"]
        assert [r.status for r in runtime.search().records] == ["awaiting"]
    # a new runtime (as after a restart) reads it back from the file
    with SqliteRuntime(Bar, path, initial_state=Tab()).blocking() as runtime:
        tab = runtime.get_instance("table-7")
        assert tab.deliver_signal(add_signal, Add(1)) == 11
        assert tab.query_state() == Tab(11, charged=True)
        assert tab.status() == "finished"
        assert len(tab.get_journal()) == 4


async def test_reads_answer_while_an_operation_runs(tmp_path: Path) -> None:
    gate = asyncio.Event()
    CHARGE_GATES.append(gate)
    try:
        async with SqliteRuntime(Bar, tmp_path / "bar.db", initial_state=Tab()) as runtime:
            tab = await runtime.create_instance("table-8")
            await tab.deliver_signal(add_signal, Add(1))
            await tab.deliver_signal(add_signal, Add(2))
            last_round = asyncio.create_task(tab.deliver_signal(add_signal, Add(3)))
            for _ in range(500):
                if await asyncio.wait_for(tab.status(), 1) == "running":
                    break
                await asyncio.sleep(0.01)
            # the charge waits on the gate, inside the operation: reads still answer, as of
            # the latest recorded event
            assert await asyncio.wait_for(tab.status(), 1) == "running"
            assert await asyncio.wait_for(tab.query_state(), 1) == Tab(6)
            assert len(await asyncio.wait_for(tab.get_events(), 1)) == 3
            gate.set()
            assert await last_round == 6
            assert await tab.query_state() == Tab(6, charged=True)
            assert await tab.status() == "finished"
    finally:
        CHARGE_GATES.remove(gate)
