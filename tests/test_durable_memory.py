"""The durable runtime over the in-memory store, against the runtime conformance suite.

``MemoryStore.share()`` gives each runtime its own handle on the same data, as a second
process opening one database would get.
"""

from __future__ import annotations

import pytest

# The shared suite's assertions get pytest's detailed messages.
pytest.register_assert_rewrite("runtime_conformance")

from runtime_conformance import RuntimeConformance, StoreFactory  # noqa: E402

from workflows4py._store_memory import MemoryStore  # noqa: E402


class TestDurableMemory(RuntimeConformance):
    @pytest.fixture
    def new_store(self) -> StoreFactory:
        return MemoryStore().share
