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

from ._core import Ctx, Frame, Leaf, Semantics, progress, register
from ._progress import StepProgress

__all__ = ["Drafts", "draft"]

Node = WIO[Any, Any, Any]
N = TypeVar("N", bound=WIO[Any, Any, Any])


def _meta(description: str | None, **extra: Any) -> dict[str, Any]:
    return {"draft": True, "description": description, **extra}


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
    def progress(self, w: DraftStep) -> StepProgress:
        return StepProgress(
            kind="run_io", name=w.display_name, errors=w.errors, meta=_meta(w.description)
        )


@register(DraftSignal)
class _DraftSignalSemantics(_Refusing[DraftSignal]):
    def progress(self, w: DraftSignal) -> StepProgress:
        return StepProgress(
            kind="signal",
            name=w.step_name,
            signal=w.awaited,
            errors=w.errors,
            meta=_meta(w.description),
        )


@register(DraftTimer)
class _DraftTimerSemantics(_Refusing[DraftTimer]):
    def progress(self, w: DraftTimer) -> StepProgress:
        return StepProgress(
            kind="timer", name=w.display_name, meta=_meta(w.description, duration=w.static)
        )


@register(DraftRecovery)
class _DraftRecoverySemantics(_Refusing[DraftRecovery]):
    def progress(self, w: DraftRecovery) -> StepProgress:
        return StepProgress(kind="recovery", name=w.display_name, meta=_meta(w.description))


class Drafts(DraftBuilders):
    """The draft namespace: the builders of ``DraftBuilders`` and ``progress``."""

    __slots__ = ()

    @staticmethod
    def progress(definition: WIO[Any, Any, Any]) -> StepProgress:
        """The progress model of a definition that has not run: what diagrams draw.

        Works for drafts and real definitions alike; draft leaves carry
        ``meta["draft"] = True`` and their description.
        """
        if not isinstance(definition, WIO):
            raise DefinitionError(f"draft: definition must be a WIO, got {definition!r}")
        return progress(definition)


draft: Drafts = Drafts()
"""The draft builders: ``draft.step()``, ``draft.signal()``, ``draft.choice(...)``, ..."""
