"""The process ``test_group_commit_crash.py`` kills between a group commit and its
acknowledgements (run as ``python tests/group_commit_app.py run|recover``).

Environment: ``GC_BACKEND`` (``sqlite`` or ``postgres``), ``GC_DB`` (the file or the DSN),
``GC_SCHEMA``, ``GC_EFFECTS`` (the effects log: one fsynced line ``<instance> <n> <pid>``
per execution of a step's side effect), ``GC_INSTANCES``.

``run`` starts every instance at once, so their steps' appends commit in batches. With
``GC_CRASH_AT=k`` the process dies (``os._exit``) right after the k-th batch of appends
has committed, before any of its callers is told: it first writes the ids in that batch to
``GC_BATCH``. ``recover`` resumes what the dead process left running, until every instance
has finished.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workflows4py import WIO, DurableRuntime, PostgresRuntime, SqliteRuntime, Workflow
from workflows4py.stores import GroupCommit, PostgresStore, Store

STEPS = 5


@dataclass(frozen=True)
class Count:
    n: int


@dataclass(frozen=True)
class Counted:
    n: int


def _log_effect(instance: str, n: int) -> None:
    with open(os.environ["GC_EFFECTS"], "a") as log:
        log.write(f"{instance} {n} {os.getpid()}\n")
        log.flush()
        os.fsync(log.fileno())


async def count_one(state: Count) -> Counted:
    from workflows4py import current_step

    _log_effect(current_step().instance_id, state.n + 1)
    return Counted(state.n + 1)


class Counting(Workflow[Count, Counted]):
    name = "gc-counting"
    definition = (
        WIO.repeat(WIO.run_io(Count, count_one).handle_event(lambda s, e: Count(e.n)))
        .until(lambda s: s.n >= STEPS)
        .named("count")
    )


def runtime() -> DurableRuntime[Count, Counted]:
    options: dict[str, Any] = {"lease_ttl": 1.0, "snapshot_every": None}
    if os.environ["GC_BACKEND"] == "sqlite":
        return SqliteRuntime(Counting, os.environ["GC_DB"], initial_state=Count(0), **options)
    return PostgresRuntime(
        Counting,
        os.environ["GC_DB"],
        schema=os.environ["GC_SCHEMA"],
        initial_state=Count(0),
        **options,
    )


def _crash_after(rt: DurableRuntime[Count, Counted], batch: int) -> None:
    """Make the process die right after the ``batch``-th group commit holding appends."""
    group = rt.store._group  # type: ignore[attr-defined]
    write_many = group._write_many
    seen = 0

    async def committing_then_dying(items: Sequence[Any]) -> Sequence[Any]:
        nonlocal seen
        outcomes: Sequence[Any] = await write_many(items)  # committed
        # PostgreSQL's group holds appends alone; SQLite's holds every write, each named
        appended = [
            item[0].instance_id
            for item, o in zip(items, outcomes, strict=True)
            if (len(item) == 3 or item[1] == "append") and o is None
        ]
        if not appended:
            return outcomes
        seen += 1
        if seen == batch:
            ids = appended
            with open(os.environ["GC_BATCH"], "w") as out:
                out.write("\n".join(ids))
                out.flush()
                os.fsync(out.fileno())
            os._exit(17)  # before any caller of the batch hears that it committed
        return outcomes

    group._write_many = committing_then_dying


async def run() -> None:
    rt = runtime()
    async with rt:
        await rt.initialize()
        crash_at = int(os.environ.get("GC_CRASH_AT", "0"))
        if crash_at:
            _crash_after(rt, crash_at)
        count = int(os.environ["GC_INSTANCES"])
        await asyncio.gather(*(rt.start(f"i{n:03d}") for n in range(count)))


async def recover() -> None:
    rt = runtime()
    async with rt:
        await rt.initialize()
        count = int(os.environ["GC_INSTANCES"])
        ids = [f"i{n:03d}" for n in range(count)]
        statuses: list[str] = []
        for _ in range(200):
            await rt.resume_stale()
            await rt.run_due_wakeups()
            statuses = [await (await rt.get_instance(i)).status() for i in ids]
            if all(s == "finished" for s in statuses):
                return
            await asyncio.sleep(0.1)
        raise SystemExit(f"not all finished: {statuses}")


if __name__ == "__main__":
    asyncio.run(run() if sys.argv[1] == "run" else recover())


def registry_group(store: Store) -> GroupCommit[Any, Any]:
    """The group commit that batches the store's registry writes (PostgreSQL has one of its
    own for them; SQLite's one group holds every write)."""
    group = store._writes if isinstance(store, PostgresStore) else store._group  # type: ignore[attr-defined]
    assert isinstance(group, GroupCommit)
    return group
