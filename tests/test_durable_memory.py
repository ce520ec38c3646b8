"""The durable runtime over the in-memory store, against the runtime conformance suite.

``MemoryStore.share()`` gives each runtime its own handle on the same data, as a second
process opening one database would get.
"""

from __future__ import annotations

import pytest

# The shared suite's assertions get pytest's detailed messages.
pytest.register_assert_rewrite("runtime_conformance")

from runtime_conformance import RuntimeConformance, StoreFactory  # noqa: E402

from workflows4py.stores import MemoryStore  # noqa: E402


class TestDurableMemory(RuntimeConformance):
    @pytest.fixture
    def new_store(self) -> StoreFactory:
        return MemoryStore().share


def test_failure_backoff_doubles_up_to_its_maximum() -> None:
    from datetime import timedelta

    from runtime_conformance import St, Timed

    from workflows4py import DurableRuntime

    runtime = DurableRuntime(
        Timed,
        MemoryStore(),
        initial_state=St(0),
        failure_backoff=timedelta(seconds=30),
        max_failure_backoff=timedelta(minutes=5),
    )
    waits = [runtime.backoff_after(n).total_seconds() for n in range(1, 8)]
    assert waits == [30, 60, 120, 240, 300, 300, 300]
    assert runtime.backoff_after(10_000) == timedelta(minutes=5)
    for bad in (
        {"failure_backoff": timedelta(0)},
        {"failure_backoff": timedelta(minutes=2), "max_failure_backoff": timedelta(minutes=1)},
    ):
        with pytest.raises(ValueError, match="failure_backoff"):
            DurableRuntime(Timed, MemoryStore(), initial_state=St(0), **bad)  # type: ignore[arg-type]
