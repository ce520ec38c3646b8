"""Test-local names for the store tests of this repository: the suites' own instants,
keys and events (public in ``workflows4py.testing``), under the short names these tests use.
"""

from __future__ import annotations

from typing import Any

from workflows4py.stores import SearchQuery, Store
from workflows4py.testing import SUITE_KEY as KEY
from workflows4py.testing import SUITE_OTHER_KEY as OTHER
from workflows4py.testing import SUITE_T0 as T0
from workflows4py.testing import settle_wakeups as settle
from workflows4py.testing import suite_at as at
from workflows4py.testing import suite_event as event

__all__ = ["KEY", "OTHER", "T0", "at", "event", "found_ids", "settle"]


async def found_ids(store: Store, **criteria: Any) -> list[str]:
    """The instance ids of the page ``store`` finds for ``SearchQuery(**criteria)``."""
    page = await store.search(SearchQuery(**criteria))
    return [r.key.instance_id for r in page.records]
