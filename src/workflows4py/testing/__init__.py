"""Helpers for testing workflows and stores: a controllable clock, replay-checked instances,
and the store conformance suites.

The replay check is the heart of testing an event-sourced workflow: after every step of a
scenario, a *fresh* instance rebuilt from the journal alone must reach exactly the state,
progress and expectations of the live one, without running any effect.

The store conformance suites (``StoreConformance`` for a whole ``Store``, and one suite per
capability: ``JournalConformance``, ``SnapshotConformance``, ``RegistryConformance``,
``LeaseConformance``, ``WakeupConformance``, ``RetentionConformance``) are pytest test
classes: subclass one and override its ``new_store`` fixture. They need pytest and
pytest-asyncio, and are imported on first use, so the other helpers work without them. For
pytest's detailed assertion messages, call
``pytest.register_assert_rewrite("workflows4py.testing")`` in a ``conftest.py`` before the
suites are imported. ``SUITE_T0``, ``SUITE_KEY``,
``SUITE_OTHER_KEY``, ``suite_at``, ``suite_event`` and ``settle_wakeups`` are the instants,
keys and events the suites use, for a store's own tests beside them.
"""

import typing

from ._clock import TestClock
from ._replay import ReplayCheckedInstance, assert_replay_matches
from ._store_data import KEY as SUITE_KEY
from ._store_data import OTHER as SUITE_OTHER_KEY
from ._store_data import T0 as SUITE_T0
from ._store_data import at as suite_at
from ._store_data import event as suite_event
from ._store_data import settle as settle_wakeups

if typing.TYPE_CHECKING:
    from ._store_suite import (
        JournalConformance,
        LeaseConformance,
        RegistryConformance,
        RetentionConformance,
        SnapshotConformance,
        StoreConformance,
        StoreFactory,
        WakeupConformance,
    )

__all__ = [
    "SUITE_KEY",
    "SUITE_OTHER_KEY",
    "SUITE_T0",
    "JournalConformance",
    "LeaseConformance",
    "RegistryConformance",
    "ReplayCheckedInstance",
    "RetentionConformance",
    "SnapshotConformance",
    "StoreConformance",
    "StoreFactory",
    "TestClock",
    "WakeupConformance",
    "assert_replay_matches",
    "settle_wakeups",
    "suite_at",
    "suite_event",
]

_LAZY = (  # imported on first use: they need pytest and pytest-asyncio
    "JournalConformance",
    "LeaseConformance",
    "RegistryConformance",
    "RetentionConformance",
    "SnapshotConformance",
    "StoreConformance",
    "StoreFactory",
    "WakeupConformance",
)


def __getattr__(name: str) -> typing.Any:
    if name in _LAZY:
        try:
            from . import _store_suite
        except ImportError as error:  # pytest or pytest-asyncio missing
            raise ImportError(
                f"{name} is a pytest suite: pip install pytest pytest-asyncio"
            ) from error
        return getattr(_store_suite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
