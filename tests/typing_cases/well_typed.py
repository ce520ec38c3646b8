"""Compositions that must type-check under mypy --strict."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Never

from workflows4py import WIO, Caught, Err, Ok, Result, SignalDef


@dataclass(frozen=True)
class Draft:
    text: str


@dataclass(frozen=True)
class Submitted:
    text: str


@dataclass(frozen=True)
class Published:
    url: str


@dataclass(frozen=True)
class Rejected:
    reason: str


@dataclass(frozen=True)
class SubmittedEvent:
    text: str


@dataclass(frozen=True)
class PublishedEvent:
    url: str


@dataclass(frozen=True)
class Approve:
    ok: bool


approve = SignalDef("approve", request=Approve, response=str)


async def publish(s: Submitted) -> PublishedEvent:
    return PublishedEvent(f"https://example.org/{s.text}")


def on_published(s: Submitted, e: PublishedEvent) -> Result[Published, Rejected]:
    return Ok(Published(e.url)) if e.url else Err(Rejected("no url"))


submit: WIO[Draft, Never, Submitted] = WIO.pure(Draft, lambda d: Submitted(d.text))
review: WIO[Submitted, Never, Submitted] = (
    WIO.handle_signal(approve, input=Submitted)
    .purely(lambda s, req: SubmittedEvent(s.text))
    .handle_event(lambda s, e: Submitted(e.text))
    .produce_response(lambda s, e, req: "thanks")
)
release: WIO[Submitted, Rejected, Published] = WIO.run_io(publish).handle_event_with_error(
    on_published
)
flow: WIO[Draft, Rejected, Published] = submit >> review >> release


def give_up(c: Caught[object, Rejected]) -> Published:
    return Published(f"rejected: {c.error.reason}")


total: WIO[Draft, Never, Published] = flow.handle_error_with(WIO.pure(give_up))
dynamic: WIO[Draft, Rejected, Published] = submit.flat_map(lambda s: review >> release)
mapped: WIO[Draft, Rejected, str] = flow.map(lambda p: p.url)


def publish_now(s: Submitted) -> PublishedEvent:
    return PublishedEvent(f"https://example.org/{s.text}")


def on_event(s: Submitted, e: PublishedEvent) -> Published:
    return Published(e.url)


def release_with(
    effect: Callable[[Submitted], PublishedEvent]
    | Callable[[Submitted], Awaitable[PublishedEvent]],
) -> WIO[Submitted, Never, Published]:
    # sync or async: the event is PublishedEvent, not PublishedEvent | Awaitable[...]
    return WIO.run_io(Submitted, effect).handle_event(on_event)


sync_release: WIO[Submitted, Never, Published] = WIO.run_io(publish_now).handle_event(on_event)
either: WIO[Submitted, Never, Published] = release_with(publish)


def approve_with(
    handler: Callable[[Submitted, Approve], SubmittedEvent]
    | Callable[[Submitted, Approve], Awaitable[SubmittedEvent]],
) -> WIO[Submitted, Never, Submitted]:
    return (
        WIO.handle_signal(approve, input=Submitted)
        .with_side_effects(handler)
        .handle_event(lambda s, e: Submitted(e.text))
        .produce_response(lambda s, e, req: "thanks")
    )


# without input=, the handler's annotation gives the signal step's input type
def ask_for_approval(s: Submitted, req: Approve) -> SubmittedEvent:
    return SubmittedEvent(s.text)


async def ask_remotely(s: Submitted, req: Approve) -> SubmittedEvent:
    return SubmittedEvent(s.text)


def resubmit(s: Submitted, e: SubmittedEvent) -> Submitted:
    return Submitted(e.text)


untyped_review: WIO[Submitted, Never, Submitted] = (
    WIO.handle_signal(approve)
    .purely(ask_for_approval)
    .handle_event(resubmit)
    .produce_response(lambda s, e, req: "thanks")
)
untyped_remote: WIO[Submitted, Never, Submitted] = (
    WIO.handle_signal(approve)
    .with_side_effects(ask_remotely)
    .handle_event(resubmit)
    .produce_response(lambda s, e, req: "thanks")
)
untyped_flow: WIO[Draft, Never, Submitted] = submit >> untyped_review >> untyped_remote
