"""The in-memory store against the conformance suite."""

from __future__ import annotations

import pytest
from store_conformance import KEY, T0

from workflows4py.stores import MemoryStore
from workflows4py.testing import StoreConformance, StoreFactory


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def new_store(self) -> StoreFactory:
        return MemoryStore().share


async def test_shared_handles_see_the_same_data() -> None:
    one = MemoryStore()
    two = one.share()
    await one.close()
    assert await two.create(KEY, T0)
    assert await two.share().exists(KEY)
    assert not await MemoryStore().exists(KEY)
