"""What the docs-claims tests (``test_docs_claims_*.py``) share: a counter state, the event
that sets it, a signal that carries nothing, and the few steps and workflows built of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workflows4py import WIO, SignalDef, Workflow


@dataclass(frozen=True)
class St:
    n: int = 0


@dataclass(frozen=True)
class Counted:
    n: int


@dataclass(frozen=True)
class Poke:
    pass


poke = SignalDef("claims.poke", request=Poke)


def count(s: St) -> Counted:
    return Counted(s.n + 1)


def on_count(s: St, e: Counted) -> St:
    return St(e.n)


def counting() -> WIO[St, Any, St]:
    """An effect: records ``Counted(n + 1)``, and the state takes its ``n``."""
    return WIO.run_io(count).handle_event(on_count)


def poked(counted: Callable[[St], Counted] = count) -> WIO[St, Any, St]:
    """Awaits a poke, records what ``counted`` computes, and the state takes its ``n``."""
    return (
        WIO.handle_signal(poke, input=St)
        .purely(lambda s, r: counted(s), event=Counted)
        .handle_event(on_count)
        .void_response()
    )


class Still(Workflow[St, Counted]):
    """One pure step that keeps the state: finished as soon as created."""

    definition = WIO.pure(St, lambda s: s)
