"""The semantics of draft leaves: they report their progress (what diagrams draw) and refuse
to run, to take an event or to be waited for. The draft node classes and builders are part
of the definition layer (``workflows4py.definition``); ``draft`` itself is completed here
with ``draft.progress``, which needs the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from workflows4py._errors import DefinitionError
from workflows4py.definition import (
    WIO,
    DraftBuilders,
    DraftRecovery,
    DraftSignal,
    DraftStep,
    DraftTimer,
    draft_refusal,
)

from ._core import Ctx, Frame, Leaf, Semantics, register
from ._execution import progress_of
from ._progress import (
    RecoveryProgress,
    RunIOProgress,
    SignalProgress,
    StepProgress,
    TimerProgress,
)

__all__ = ["Drafts", "draft"]

Node = WIO[Any, Any, Any]
N = TypeVar("N", bound=WIO[Any, Any, Any])


class _Refusing(Semantics[N]):
    """A draft leaf: it has a progress, but it is never run, offered an event, or awaited."""

    def advance(self, w: N, f: Frame, c: Ctx) -> Node:
        raise draft_refusal(w)

    def apply(self, w: N, f: Frame, event: Any, c: Ctx) -> Node | None:
        raise draft_refusal(w)

    def frontier(self, w: N, f: Frame) -> Iterator[Leaf]:
        raise draft_refusal(w)


@register(DraftStep)
class _DraftStepSemantics(_Refusing[DraftStep]):
    def progress(self, w: DraftStep, active: bool) -> StepProgress:
        return RunIOProgress(
            name=w.display_name, errors=w.errors, description=w.description, draft=True
        )


@register(DraftSignal)
class _DraftSignalSemantics(_Refusing[DraftSignal]):
    def progress(self, w: DraftSignal, active: bool) -> StepProgress:
        return SignalProgress(
            name=w.step_name,
            signal_id=None,
            signal_name=w.awaited,
            errors=w.errors,
            description=w.description,
            draft=True,
        )


@register(DraftTimer)
class _DraftTimerSemantics(_Refusing[DraftTimer]):
    def progress(self, w: DraftTimer, active: bool) -> StepProgress:
        return TimerProgress(
            name=w.display_name, duration=w.static, description=w.description, draft=True
        )


@register(DraftRecovery)
class _DraftRecoverySemantics(_Refusing[DraftRecovery]):
    def progress(self, w: DraftRecovery, active: bool) -> StepProgress:
        return RecoveryProgress(name=w.display_name, description=w.description, draft=True)


class Drafts(DraftBuilders):
    """The draft namespace: the builders of ``DraftBuilders`` and ``progress``."""

    __slots__ = ()

    @staticmethod
    def progress(definition: WIO[Any, Any, Any]) -> StepProgress:
        """The progress model of a definition that has not run: what diagrams draw (the same
        as :func:`progress_of`).

        Works for drafts and real definitions alike; draft parts have ``draft`` set, and
        draft steps their ``description``.
        """
        if not isinstance(definition, WIO):
            raise DefinitionError(f"draft: definition must be a WIO, got {definition!r}")
        return progress_of(definition)


draft: Drafts = Drafts()
"""The draft builders: ``draft.step()``, ``draft.signal()``, ``draft.choice(...)``, ..."""
