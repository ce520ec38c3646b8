"""Helpers for testing workflows: a controllable clock and replay-checked instances.

The replay check is the heart of testing an event-sourced workflow: after every step of a
scenario, a *fresh* instance rebuilt from the journal alone must reach exactly the state,
progress and expectations of the live one, without running any effect.
"""

from ._clock import TestClock
from ._replay import ReplayCheckedInstance, assert_replay_matches

__all__ = ["ReplayCheckedInstance", "TestClock", "assert_replay_matches"]
