"""The durable runtime over SQLite (a file per test), against the runtime conformance suite,
including deliveries from several OS processes."""

from __future__ import annotations

from pathlib import Path

import pytest

# The shared suite's assertions get pytest's detailed messages.
pytest.register_assert_rewrite("runtime_conformance")

from runtime_conformance import (  # noqa: E402
    T0,
    ProcessConformance,
    RuntimeConformance,
    St,
    StoreFactory,
    StoreSpec,
    Timed,
)

from workflows4py import SqliteRuntime  # noqa: E402
from workflows4py.stores import SqliteStore  # noqa: E402
from workflows4py.testing import TestClock  # noqa: E402


class TestDurableSqlite(RuntimeConformance, ProcessConformance):
    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "workflows.db"

    @pytest.fixture
    def new_store(self, db_path: Path) -> StoreFactory:
        return lambda: SqliteStore(db_path)

    @pytest.fixture
    def store_spec(self, db_path: Path) -> StoreSpec:
        return ("sqlite", str(db_path))


class TestDurableSqliteThreaded(RuntimeConformance):
    """The same contract with the store's statements on a thread of its own."""

    @pytest.fixture
    def new_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: SqliteStore(tmp_path / "workflows.db", threaded=True)


async def test_sqlite_runtime_keeps_instances_in_its_file(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    clock = TestClock(T0)
    async with SqliteRuntime(Timed, path, initial_state=St(0), clock=clock) as runtime:
        await runtime.create_instance("t-1")
    assert path.exists()
    async with SqliteRuntime(Timed, str(path), initial_state=St(0), clock=clock) as runtime:
        instance = await runtime.get_instance("t-1")
        assert await instance.query_state() == St(1, ("a",))
        assert await runtime.instance_ids() == ["t-1"]


async def test_closing_a_runtime_frees_the_instances_it_held_at_once(tmp_path: Path) -> None:
    """The instances a runtime keeps in memory refer to it; closing it forgets them, so they
    are freed then (by reference counting), not at the next full collection of the heap."""
    import gc
    import weakref

    from workflows4py.runtime import Runtime

    clock = TestClock(T0)
    durable = SqliteRuntime(Timed, tmp_path / "d.db", initial_state=St(0), clock=clock)
    app = Runtime.sqlite(tmp_path / "a.db", [Timed], initial_states={Timed: St(0)}, clock=clock)
    gc.disable()
    try:
        async with durable, app:
            await durable.create_instance("t-1")
            await app.start(Timed, "t-1")
            held = [weakref.ref(durable._cache["t-1"]), weakref.ref(app.of(Timed)._cache["t-1"])]
            assert all(ref() is not None for ref in held)
        assert [ref() for ref in held] == [None, None]
    finally:
        gc.enable()
